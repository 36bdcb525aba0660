//! Event ingestion: each event of a batch is checked on its own (a bad one is answered
//! 422 in its own result, the others are stored), then every good event of the request
//! is written in one transaction with multi-row inserts whose rows are one JSON array
//! parameter (`ON CONFLICT DO NOTHING RETURNING uuid` tells new from repeated uuids),
//! together with the dirty-day marks the roller recomputes from.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{day_of, Analytics, DAY_MS};
use crate::store::Dialect;
use crate::util::now_ms;

pub const MAX_BATCH: usize = 1000;
pub const MAX_NAME: usize = 200;
/// Largest `properties` object, as JSON.
pub const MAX_PROPERTIES_BYTES: usize = 8 * 1024;
/// How far ahead of the server clock an event's `ts` may be (client clock skew).
pub const MAX_FUTURE_MS: i64 = DAY_MS;

const FIELDS: [&str; 5] = ["uuid", "event", "distinct_id", "ts", "properties"];
/// Rows per INSERT (one JSON parameter each): a batch of 1,000 is two statements.
const ROWS_PER_INSERT: usize = 500;

/// One checked event, ready to store.
#[derive(Debug, Clone)]
pub struct Event {
    pub uuid: String,
    pub event: String,
    pub distinct_id: String,
    pub ts: i64,
    pub feature: Option<String>,
    pub properties: String,
}

/// The answer for one event of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventResult {
    /// Position in the request's `events`.
    pub index: usize,
    /// The event's uuid (generated when the event had none); absent for an event refused
    /// before one was known.
    pub uuid: Option<String>,
    /// 201 stored, 200 already stored (same uuid: nothing changed), 422 refused.
    #[schema(minimum = 200, maximum = 422)]
    pub status: u16,
    /// `created`, `duplicate` or `rejected`.
    pub result: String,
    /// Why an event was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The answer of `POST /api/v1/analytics/events`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IngestResponse {
    pub tenant: String,
    pub created: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<EventResult>,
}

/// A name (`event`, `distinct_id`, `properties.feature`, funnel step): 1-200 characters,
/// no control characters.
pub fn check_name(s: &str) -> Result<(), String> {
    let n = s.chars().count();
    if n == 0 || n > MAX_NAME {
        return Err(format!("must be 1-{MAX_NAME} characters, got {n}"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

fn check_uuid(s: &str) -> Result<(), String> {
    if s.is_empty()
        || s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("must be 1-64 characters of A-Z, a-z, 0-9, '-' or '_' (a UUID)".into());
    }
    Ok(())
}

/// A UUIDv7 (RFC 9562) for `now_ms`: 48 bits of Unix milliseconds, then random bits.
/// Time-ordered like the browser client's ids, so the primary-key index of
/// `analytics_events` grows at its end instead of taking a page write per event.
pub fn uuid_v7(now_ms: i64) -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b[6..]);
    let ms = (now_ms.max(0) as u64) & 0xFFFF_FFFF_FFFF;
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0F) | 0x70;
    b[8] = (b[8] & 0x3F) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

fn string_field<'a>(o: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{key}: must be a string")),
    }
}

/// Check one event of a request. `oldest` is the retention cut-off, `now` the server clock.
pub fn parse_event(v: &Value, now: i64, oldest: i64) -> Result<Event, (Option<String>, String)> {
    let Value::Object(o) = v else {
        return Err((None, "an event must be a JSON object".into()));
    };
    let uuid = string_field(o, "uuid").map_err(|e| (None, e))?;
    if let Some(u) = uuid {
        check_uuid(u).map_err(|e| (None, format!("uuid: {e}")))?;
    }
    let uuid = uuid.map(str::to_string).unwrap_or_else(|| uuid_v7(now));
    let fail = |msg: String| (Some(uuid.clone()), msg);
    if let Some(k) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(fail(format!(
            "unknown field {k:?}; an event has uuid, event, distinct_id, ts and properties"
        )));
    }
    let event = string_field(o, "event")
        .map_err(&fail)?
        .ok_or_else(|| fail("event: required".into()))?;
    check_name(event).map_err(|e| fail(format!("event: {e}")))?;
    let distinct_id = string_field(o, "distinct_id")
        .map_err(&fail)?
        .ok_or_else(|| fail("distinct_id: required".into()))?;
    check_name(distinct_id).map_err(|e| fail(format!("distinct_id: {e}")))?;
    let ts = match o.get("ts") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| fail(format!("ts: {s:?} is not an RFC 3339 time")))?,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| fail("ts: a number must be whole Unix milliseconds".into()))?,
        Some(_) => {
            return Err(fail(
                "ts: must be an RFC 3339 string or Unix milliseconds".into(),
            ))
        }
    };
    if ts > now + MAX_FUTURE_MS {
        return Err(fail("ts: more than a day ahead of the server clock".into()));
    }
    if ts < oldest {
        return Err(fail(
            "ts: older than the retention period ([analytics] retention_days)".into(),
        ));
    }
    let (feature, properties) = match o.get("properties") {
        None | Some(Value::Null) => (None, "{}".to_string()),
        Some(Value::Object(p)) => {
            let feature = match p.get("feature") {
                None | Some(Value::Null) => None,
                Some(Value::String(f)) => {
                    check_name(f).map_err(|e| fail(format!("properties.feature: {e}")))?;
                    Some(f.clone())
                }
                Some(_) => return Err(fail("properties.feature: must be a string".into())),
            };
            let text = serde_json::to_string(p).unwrap_or_default();
            if text.len() > MAX_PROPERTIES_BYTES {
                return Err(fail(format!(
                    "properties: {} bytes as JSON, at most {MAX_PROPERTIES_BYTES}",
                    text.len()
                )));
            }
            (feature, text)
        }
        Some(_) => return Err(fail("properties: must be a JSON object".into())),
    };
    Ok(Event {
        uuid,
        event: event.to_string(),
        distinct_id: distinct_id.to_string(),
        ts,
        feature,
        properties,
    })
}

impl Analytics {
    /// Check and store a batch (already known to hold 1..=1000 items).
    pub async fn ingest(
        &self,
        tenant: &str,
        items: &[Value],
    ) -> Result<IngestResponse, sqlx::Error> {
        let now = now_ms();
        let oldest = now - self.cfg.retention_days * DAY_MS;
        let mut results: Vec<EventResult> = Vec::with_capacity(items.len());
        let mut good: Vec<(usize, Event)> = Vec::with_capacity(items.len());
        let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
        for (index, v) in items.iter().enumerate() {
            match parse_event(v, now, oldest) {
                Ok(e) if !seen.insert(e.uuid.clone()) => results.push(EventResult {
                    index,
                    uuid: Some(e.uuid),
                    status: 200,
                    result: "duplicate".into(),
                    detail: None,
                }),
                Ok(e) => {
                    // Filled in once the insert says whether the uuid was new.
                    results.push(EventResult {
                        index,
                        uuid: Some(e.uuid.clone()),
                        status: 201,
                        result: "created".into(),
                        detail: None,
                    });
                    good.push((index, e));
                }
                Err((uuid, detail)) => results.push(EventResult {
                    index,
                    uuid,
                    status: 422,
                    result: "rejected".into(),
                    detail: Some(detail),
                }),
            }
        }
        let (indexes, events): (Vec<usize>, Vec<Event>) = good.into_iter().unzip();
        let created = self.writer.write(tenant, events, now).await?;
        for index in indexes {
            if results[index]
                .uuid
                .as_ref()
                .is_some_and(|u| !created.contains(u))
            {
                results[index].status = 200;
                results[index].result = "duplicate".into();
            }
        }
        let count = |r: &str| results.iter().filter(|x| x.result == r).count();
        let resp = IngestResponse {
            tenant: tenant.to_string(),
            created: count("created"),
            duplicates: count("duplicate"),
            rejected: count("rejected"),
            results,
        };
        self.counters.record(&resp);
        Ok(resp)
    }
}

/// One request's checked events, waiting for the group writer.
struct Job {
    tenant: String,
    events: Vec<Event>,
    now: i64,
    reply: tokio::sync::oneshot::Sender<Result<HashSet<String>, sqlx::Error>>,
}

/// Most events one group transaction takes (jobs beyond it wait for the next one).
const GROUP_EVENTS: usize = 20_000;

/// Group commit: ingestion requests that arrive while a transaction is being written are
/// written together in the next one. Each request's events are still stored atomically
/// (its rows are in exactly one transaction) and it is answered only after the commit.
/// Nothing waits to fill a group — an idle writer takes the first request alone — so a
/// lone client sees no added latency. Why: the index pages of `analytics_events` that a
/// transaction dirties are written to the WAL once per transaction however many events
/// share them, so under concurrent ingestion fewer, larger transactions write far fewer
/// pages per event (`scripts/bench/analytics_ingest.sh`). When a group fails, each of its
/// requests is retried in a transaction of its own, so one request's failure is its own.
#[derive(Clone)]
pub(crate) struct GroupWriter {
    tx: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl GroupWriter {
    /// Spawns the writer task; it ends when the last handle is dropped.
    pub(crate) fn start(store: crate::store::Store) -> GroupWriter {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                let mut n = group[0].events.len();
                while n < GROUP_EVENTS {
                    match rx.try_recv() {
                        Ok(j) => {
                            n += j.events.len();
                            group.push(j);
                        }
                        Err(_) => break,
                    }
                }
                write_group(&store, group).await;
            }
        });
        GroupWriter { tx }
    }

    /// Store `events` of `tenant` (in the next group transaction); the uuids that were new.
    pub(crate) async fn write(
        &self,
        tenant: &str,
        events: Vec<Event>,
        now: i64,
    ) -> Result<HashSet<String>, sqlx::Error> {
        if events.is_empty() {
            return Ok(HashSet::new());
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            tenant: tenant.to_string(),
            events,
            now,
            reply,
        };
        self.tx.send(job).map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn write_group(store: &crate::store::Store, group: Vec<Job>) {
    if group.len() > 1 {
        let mut created = Vec::with_capacity(group.len());
        let result: Result<(), sqlx::Error> = async {
            let mut tx = store.begin_write().await?;
            for j in &group {
                created.push(insert_events(store, &mut tx, &j.tenant, &j.events, j.now).await?);
            }
            tx.commit().await
        }
        .await;
        if result.is_ok() {
            for (j, c) in group.into_iter().zip(created) {
                let _ = j.reply.send(Ok(c));
            }
            return;
        }
    }
    // Alone, or the group failed: each request in a transaction of its own.
    for j in group {
        let r = async {
            let mut tx = store.begin_write().await?;
            let c = insert_events(store, &mut tx, &j.tenant, &j.events, j.now).await?;
            tx.commit().await?;
            Ok(c)
        }
        .await;
        let _ = j.reply.send(r);
    }
}

/// Insert one request's events and mark their days dirty, inside `tx`; returns the uuids
/// that were new.
///
/// The rows travel as **one JSON array parameter** that the database expands
/// (`json_each` on SQLite, `jsonb_array_elements` on PostgreSQL), not as thousands of
/// bound parameters: SQLite looks a parameter's name up by a linear scan, so binding
/// 8 × 500 parameters per statement cost O(n²) and was half of the CPU time of
/// ingestion (`scripts/bench/analytics_ingest.sh`, perf: `sqlite3_bind_parameter_name`).
async fn insert_events(
    store: &crate::store::Store,
    tx: &mut crate::store::Tx,
    tenant: &str,
    events: &[Event],
    now: i64,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut created = HashSet::with_capacity(events.len());
    let sql = match store.dialect() {
        Dialect::Sqlite => {
            "INSERT INTO analytics_events (tenant_id, uuid, event, distinct_id, ts, feature, \
             properties, received_at) \
             SELECT $1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
             json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
             json_extract(value, '$[4]'), json_extract(value, '$[5]'), $3 \
             FROM json_each($2) WHERE true \
             ON CONFLICT (tenant_id, uuid) DO NOTHING RETURNING uuid"
        }
        Dialect::Postgres => {
            "INSERT INTO analytics_events (tenant_id, uuid, event, distinct_id, ts, feature, \
             properties, received_at) \
             SELECT $1, r->>0, r->>1, r->>2, CAST(r->>3 AS BIGINT), r->>4, r->>5, $3 \
             FROM jsonb_array_elements(CAST($2 AS JSONB)) AS r \
             ON CONFLICT (tenant_id, uuid) DO NOTHING RETURNING uuid"
        }
    };
    for chunk in events.chunks(ROWS_PER_INSERT) {
        let rows: Vec<Value> = chunk
            .iter()
            .map(|e| {
                serde_json::json!([
                    e.uuid,
                    e.event,
                    e.distinct_id,
                    e.ts,
                    e.feature,
                    e.properties
                ])
            })
            .collect();
        created.extend(
            sqlx::query_scalar::<_, String>(sql)
                .bind(tenant)
                .bind(Value::Array(rows).to_string())
                .bind(now)
                .fetch_all(&mut **tx)
                .await?,
        );
    }
    let days: BTreeSet<i64> = events
        .iter()
        .filter(|e| created.contains(&e.uuid))
        .map(|e| day_of(e.ts))
        .collect();
    super::rollup::mark_dirty(tx, tenant, &days, now).await?;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_checked_one_by_one() {
        let now = 1_800_000_000_000;
        let ok = parse_event(
            &json!({"uuid": "u-1", "event": "signup", "distinct_id": "alice",
                    "ts": "2027-01-15T08:00:00Z", "properties": {"feature": "billing", "n": 1}}),
            now,
            0,
        )
        .unwrap();
        assert_eq!(ok.feature.as_deref(), Some("billing"));
        assert_eq!(ok.ts, now);
        let bad = |v: Value| parse_event(&v, now, now - 10 * DAY_MS).unwrap_err().1;
        assert!(bad(json!({"event": "x"})).contains("distinct_id"));
        assert!(bad(json!({"event": "", "distinct_id": "a"})).contains("event"));
        assert!(
            bad(json!({"event": "x", "distinct_id": "a", "extra": 1})).contains("unknown field")
        );
        assert!(
            bad(json!({"event": "x", "distinct_id": "a", "ts": "yesterday"})).contains("RFC 3339")
        );
        assert!(
            bad(json!({"event": "x", "distinct_id": "a", "ts": now + 2 * DAY_MS}))
                .contains("ahead")
        );
        assert!(
            bad(json!({"event": "x", "distinct_id": "a", "ts": now - 11 * DAY_MS}))
                .contains("retention")
        );
        assert!(
            bad(json!({"event": "x", "distinct_id": "a", "properties": []})).contains("object")
        );
        assert!(
            bad(json!({"event": "x", "distinct_id": "a", "properties": {"feature": 3}}))
                .contains("feature")
        );
        assert!(
            bad(json!({"uuid": "has space", "event": "x", "distinct_id": "a"})).contains("uuid")
        );
        assert!(bad(json!(42)).contains("object"));
        // Generated ids are UUIDv7 of the server clock, ordered by time.
        let gen = parse_event(&json!({"event": "x", "distinct_id": "a"}), now, 0).unwrap();
        let u = uuid::Uuid::parse_str(&gen.uuid).unwrap();
        assert_eq!(u.get_version_num(), 7);
        assert_eq!(&gen.uuid.replace('-', "")[..12], format!("{now:012x}"));
        assert!(uuid_v7(now) < uuid_v7(now + 1));
        let big = "x".repeat(MAX_PROPERTIES_BYTES);
        assert!(
            bad(json!({"event": "x", "distinct_id": "a", "properties": {"p": big}}))
                .contains("bytes")
        );
    }
}
