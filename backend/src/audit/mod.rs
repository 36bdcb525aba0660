//! The audit log: every mutation, ops command and denied access, as leaves of an
//! RFC 6962 Merkle tree so an outside verifier can check inclusion and consistency.
//!
//! Appends are serialized (the single SQLite writer; `pg_advisory_xact_lock` on
//! PostgreSQL) so the tree never forks across replicas. Each append stores its leaf hash
//! and every perfect subtree it completes, so roots and proofs read O(log² n) stored
//! nodes and never rehash the log.

pub mod area;
pub mod compliance;
pub mod heads;
pub mod merkle;

use std::collections::HashMap;

use serde_json::Value;
use sqlx::Row as _;

use crate::model::{AuditChain, AuditConsistency, AuditReceipt, AuditRecord, AuditVerify};
use crate::store::{in_table, is_corrupt_row, Dialect, Json, Store, Tx};
use merkle::{Hash, MemTree};

/// Arbitrary constant key of the advisory lock that serializes appends on PostgreSQL.
const PG_AUDIT_LOCK: i64 = 0x6962_0001;
/// Ids below this are level-0 nodes (leaf hashes), i.e. the leaf index itself.
const LEVEL1_BASE: i64 = 1 << 48;

/// The right edge of the tree: at most one node per bit of the size (64 slots).
static FRONTIER_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let slots: Vec<String> = (1..=64).map(|k| format!("${k}")).collect();
    format!(
        "SELECT id, hash FROM audit_nodes WHERE id IN ({})",
        slots.join(", ")
    )
});

/// A record to append; `seq` and `ts` are assigned by the log.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub tenant_id: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub request_id: String,
    pub detail: Value,
}

impl NewAudit {
    pub fn new(
        tenant_id: &str,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
        request_id: &str,
    ) -> Self {
        NewAudit {
            tenant_id: tenant_id.into(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            outcome: outcome.into(),
            request_id: request_id.into(),
            detail: Value::Object(Default::default()),
        }
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Canonical JSON: object keys sorted, no insignificant whitespace. Deterministic
/// regardless of serde_json features, so a verifier can recompute it.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The exact bytes hashed for a record's leaf.
pub fn leaf_string(r: &AuditRecord) -> String {
    canonical_json(&serde_json::json!({
        "seq": r.seq,
        "ts": r.ts,
        "tenant_id": r.tenant_id,
        "actor": r.actor,
        "action": r.action,
        "target": r.target,
        "outcome": r.outcome,
        "request_id": r.request_id,
        "detail": r.detail,
    }))
}

/// An `audit_nodes` row: a perfect-subtree hash, id = (level << 48) | index.
#[derive(sqlx::FromRow)]
struct NodeRow {
    id: i64,
    hash: Vec<u8>,
}

impl NodeRow {
    /// The hash as 32 bytes; any other length is a corrupt row, named.
    fn hash(&self) -> Result<Hash, sqlx::Error> {
        self.hash
            .as_slice()
            .try_into()
            .map_err(|_| sqlx::Error::ColumnDecode {
                index: format!("audit_nodes.hash (id {})", self.id),
                source: format!("{} bytes, expected 32", self.hash.len()).into(),
            })
    }
}

/// Append one record inside the caller's write transaction, so the mutation and its
/// audit record commit or roll back together.
pub async fn append(store: &Store, tx: &mut Tx, rec: NewAudit) -> Result<AuditRecord, sqlx::Error> {
    let mut out = append_many(store, tx, vec![rec]).await?;
    Ok(out.pop().expect("one record appended"))
}

/// Append records (in order) inside the caller's write transaction: one lock, one read
/// of the tree's right edge, and multi-row inserts however many records there are. This
/// is what lets a group commit of N mutations cost about as much as one.
pub async fn append_many(
    store: &Store,
    tx: &mut Tx,
    recs: Vec<NewAudit>,
) -> Result<Vec<AuditRecord>, sqlx::Error> {
    if recs.is_empty() {
        return Ok(Vec::new());
    }
    if store.dialect() == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_AUDIT_LOCK)
            .execute(&mut **tx)
            .await?;
    }
    let size: i64 = sqlx::query_scalar(&format!(
        "SELECT COALESCE(MAX(id) + 1, 0) FROM audit_nodes WHERE id < {LEVEL1_BASE}"
    ))
    .fetch_one(&mut **tx)
    .await?;
    // The right edge: one perfect subtree per set bit of the size. Every left sibling a
    // new node needs is one of these or a node made earlier in this batch.
    let n = size as u64;
    let edge: Vec<(u32, u64)> = (0..64u32)
        .filter(|l| (n >> l) & 1 == 1)
        .map(|l| (l, (n >> l) - 1))
        .collect();
    // One constant statement (ids bound, unused slots -1, which no node has), so it is
    // prepared once per connection instead of once per append.
    let mut q = sqlx::query_as::<_, NodeRow>(FRONTIER_SQL.as_str());
    for k in 0..64 {
        q = q.bind(edge.get(k).map_or(-1, |(l, i)| merkle::node_id(*l, *i)));
    }
    let mut stored = HashMap::with_capacity(edge.len());
    for node in q.fetch_all(&mut **tx).await? {
        stored.insert(node.id, node.hash()?);
    }
    let mut known: HashMap<(u32, u64), Hash> = HashMap::with_capacity(edge.len() + 2 * recs.len());
    for (l, i) in edge {
        let h = stored.get(&merkle::node_id(l, i)).ok_or_else(|| {
            sqlx::Error::Protocol(format!(
                "audit tree node (level {l}, index {i}) is missing from the store"
            ))
        })?;
        known.insert((l, i), *h);
    }
    let ts = crate::util::rfc3339_ms(crate::util::now_ms());
    let mut records = Vec::with_capacity(recs.len());
    let mut nodes: Vec<(i64, Hash)> = Vec::with_capacity(2 * recs.len());
    for (k, rec) in recs.into_iter().enumerate() {
        let record = AuditRecord {
            seq: size + k as i64,
            ts: ts.clone(),
            tenant_id: rec.tenant_id,
            actor: rec.actor,
            action: rec.action,
            target: rec.target,
            outcome: rec.outcome,
            request_id: rec.request_id,
            detail: rec.detail,
        };
        let seq = record.seq as u64;
        let mut current = merkle::leaf_hash(leaf_string(&record).as_bytes());
        known.insert((0, seq), current);
        nodes.push((merkle::node_id(0, seq), current));
        for (level, index) in merkle::completed_by_append(seq) {
            let left = known.get(&(level - 1, 2 * index)).ok_or_else(|| {
                sqlx::Error::Protocol(format!(
                    "audit tree node (level {}, index {}) is missing",
                    level - 1,
                    2 * index
                ))
            })?;
            current = merkle::node_hash(left, &current);
            known.insert((level, index), current);
            nodes.push((merkle::node_id(level, index), current));
        }
        records.push(record);
    }
    // 9 parameters per row: 400 rows stay far below both engines' parameter limits.
    for chunk in records.chunks(400) {
        let sql = format!(
            "INSERT INTO audit_log (seq, ts, tenant_id, actor, action, target, outcome, request_id, detail) VALUES {}",
            crate::store::values_rows(chunk.len(), 9)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.seq)
                .bind(&r.ts)
                .bind(&r.tenant_id)
                .bind(&r.actor)
                .bind(&r.action)
                .bind(&r.target)
                .bind(&r.outcome)
                .bind(&r.request_id)
                .bind(canonical_json(&r.detail));
        }
        q.execute(&mut **tx).await?;
    }
    for chunk in nodes.chunks(1000) {
        let sql = format!(
            "INSERT INTO audit_nodes (id, hash) VALUES {}",
            crate::store::values_rows(chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for (id, h) in chunk {
            q = q.bind(*id).bind(h.to_vec());
        }
        q.execute(&mut **tx).await?;
    }
    for r in &records {
        crate::logging::audit_event(r);
    }
    Ok(records)
}

/// Append in a transaction of its own (for records not tied to another write, such as
/// denied accesses).
pub async fn record(store: &Store, rec: NewAudit) -> Result<AuditRecord, sqlx::Error> {
    let mut tx = store.begin_write().await?;
    let r = append(store, &mut tx, rec).await?;
    tx.commit().await?;
    Ok(r)
}

/// Number of leaves in the tree.
pub async fn size(store: &Store) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT COALESCE(MAX(id) + 1, 0) FROM audit_nodes WHERE id < {LEVEL1_BASE}"
    ))
    .fetch_one(store.reader())
    .await
}

/// Fetch stored nodes by id in one query. Ids are computed integers, never user input.
async fn fetch_nodes(store: &Store, ids: &[i64]) -> Result<HashMap<i64, Hash>, sqlx::Error> {
    let mut conn = store.reader().acquire().await?;
    fetch_nodes_on(&mut conn, ids).await
}

async fn fetch_nodes_on(
    conn: &mut sqlx::AnyConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Hash>, sqlx::Error> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        if chunk.is_empty() {
            continue;
        }
        let list = chunk
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let rows = sqlx::query_as::<_, NodeRow>(&format!(
            "SELECT id, hash FROM audit_nodes WHERE id IN ({list})"
        ))
        .fetch_all(&mut *conn)
        .await?;
        for node in rows {
            out.insert(node.id, node.hash()?);
        }
    }
    Ok(out)
}

/// Run a tree algorithm against stored nodes: dry-run to learn the ids, fetch, run.
async fn with_nodes<T>(
    store: &Store,
    run: impl Fn(&mut dyn FnMut(u32, u64) -> Hash) -> T,
) -> Result<T, sqlx::Error> {
    let ids = merkle::needed_nodes(|f| {
        run(f);
    });
    let nodes = fetch_nodes(store, &ids).await?;
    let mut missing = None;
    let out = run(&mut |l, i| {
        let id = merkle::node_id(l, i);
        match nodes.get(&id) {
            Some(h) => *h,
            None => {
                missing.get_or_insert(id);
                [0u8; 32]
            }
        }
    });
    match missing {
        Some(id) => Err(sqlx::Error::Protocol(format!(
            "audit tree node {id} is missing from the store"
        ))),
        None => Ok(out),
    }
}

/// An `audit_log` row as stored. `outcome` stays text: the log is append-only and
/// hashed, so a record must read back byte-for-byte whatever a past build wrote.
#[derive(sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    ts: String,
    tenant_id: String,
    actor: String,
    action: String,
    target: String,
    outcome: String,
    request_id: String,
    detail: Json<Value>,
}

impl From<AuditRow> for AuditRecord {
    fn from(r: AuditRow) -> Self {
        AuditRecord {
            seq: r.seq,
            ts: r.ts,
            tenant_id: r.tenant_id,
            actor: r.actor,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            request_id: r.request_id,
            detail: r.detail.0,
        }
    }
}

/// Decode a row; corrupt JSON is an error naming `audit_log.detail` and the seq.
fn row_to_record(row: &crate::store::Row) -> Result<AuditRecord, sqlx::Error> {
    use sqlx::FromRow;
    AuditRow::from_row(row).map(AuditRecord::from).map_err(|e| {
        let key = format!("seq {}", row.try_get::<i64, _>("seq").unwrap_or(-1));
        let e = in_table("audit_log", Some(&key))(e);
        e
    })
}

const RECORD_COLS: &str = "seq, ts, tenant_id, actor, action, target, outcome, request_id, detail";

pub async fn get_record(store: &Store, seq: i64) -> Result<Option<AuditRecord>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {RECORD_COLS} FROM audit_log WHERE seq = $1"
    ))
    .bind(seq)
    .fetch_optional(store.reader())
    .await?;
    row.as_ref().map(row_to_record).transpose()
}

/// Records filtered by tenant (None = all tenants), newest first unless `after` is given
/// (then ascending from after+1, for tailing).
pub async fn list_records(
    store: &Store,
    tenant: Option<&str>,
    after: Option<i64>,
    action: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditRecord>, sqlx::Error> {
    let mut sql = format!("SELECT {RECORD_COLS} FROM audit_log WHERE 1=1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if tenant.is_some() {
        sql += &format!(" AND tenant_id = {}", next());
    }
    if after.is_some() {
        sql += &format!(" AND seq > {}", next());
    }
    if action.is_some() {
        sql += &format!(" AND action = {}", next());
    }
    sql += if after.is_some() {
        " ORDER BY seq ASC"
    } else {
        " ORDER BY seq DESC"
    };
    sql += &format!(" LIMIT {}", next());
    let mut q = sqlx::query(&sql);
    if let Some(t) = tenant {
        q = q.bind(t.to_string());
    }
    if let Some(a) = after {
        q = q.bind(a);
    }
    if let Some(a) = action {
        q = q.bind(a.to_string());
    }
    q = q.bind(limit);
    q.fetch_all(store.reader())
        .await?
        .iter()
        .map(row_to_record)
        .collect()
}

pub async fn chain(store: &Store) -> Result<AuditChain, sqlx::Error> {
    let size = size(store).await?;
    let root = root_at(store, size).await?;
    let head = if size > 0 {
        get_record(store, size - 1).await?
    } else {
        None
    };
    Ok(AuditChain {
        size,
        root: hex::encode(root),
        head,
    })
}

/// Size and root of the tree as `conn` sees it: inside the caller's snapshot transaction
/// (or on a snapshot copy), so a backup records the head of exactly the rows it holds.
pub async fn head_on(conn: &mut sqlx::AnyConnection) -> Result<(i64, Hash), sqlx::Error> {
    let size: i64 = sqlx::query_scalar(&format!(
        "SELECT COALESCE(MAX(id) + 1, 0) FROM audit_nodes WHERE id < {LEVEL1_BASE}"
    ))
    .fetch_one(&mut *conn)
    .await?;
    let n = size as u64;
    let ids = merkle::needed_nodes(|f| {
        merkle::root(n, f);
    });
    let nodes = fetch_nodes_on(conn, &ids).await?;
    let mut missing = None;
    let root = merkle::root(n, &mut |l, i| {
        let id = merkle::node_id(l, i);
        *nodes.get(&id).unwrap_or_else(|| {
            missing.get_or_insert(id);
            &[0u8; 32]
        })
    });
    match missing {
        Some(id) => Err(sqlx::Error::Protocol(format!(
            "audit tree node {id} is missing from the store"
        ))),
        None => Ok((size, root)),
    }
}

/// The root over the first `size` records recomputed from the records themselves (leaf
/// hashes and inner nodes rebuilt, stored nodes not read): what a restore check compares
/// with the head a backup recorded.
pub async fn recompute_root(store: &Store, size: i64) -> Result<Hash, sqlx::Error> {
    const PAGE: i64 = 5000;
    let mut tree = MemTree::default();
    let mut after = -1i64;
    while (tree.size() as i64) < size {
        let want = PAGE.min(size - tree.size() as i64);
        let page = list_records(store, None, Some(after), None, want).await?;
        if page.is_empty() {
            return Err(sqlx::Error::Protocol(format!(
                "audit log has {} records, the head expects {size}",
                tree.size()
            )));
        }
        for r in &page {
            if r.seq != tree.size() as i64 {
                return Err(sqlx::Error::Protocol(format!(
                    "audit record {} is missing",
                    tree.size()
                )));
            }
            tree.push_leaf_hash(merkle::leaf_hash(leaf_string(r).as_bytes()));
            after = r.seq;
        }
    }
    Ok(tree.root(size as u64))
}

pub async fn root_at(store: &Store, size: i64) -> Result<Hash, sqlx::Error> {
    let n = size as u64;
    with_nodes(store, |f| merkle::root(n, f)).await
}

#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("{0}")]
    Invalid(String),
    #[error("record {0} does not exist")]
    NotFound(i64),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Receipt for `seq` against the tree of `size` (default: current size).
pub async fn receipt(
    store: &Store,
    seq: i64,
    size: Option<i64>,
) -> Result<AuditReceipt, ProofError> {
    let current = self::size(store).await?;
    let size = size.unwrap_or(current);
    if seq < 0 {
        return Err(ProofError::Invalid("seq must be ≥ 0".into()));
    }
    if size < 1 || size > current {
        return Err(ProofError::Invalid(format!(
            "size must be between 1 and the current tree size {current}, got {size}"
        )));
    }
    if seq >= size {
        return Err(ProofError::Invalid(format!(
            "seq {seq} is not in the tree of size {size}"
        )));
    }
    let record = get_record(store, seq)
        .await?
        .ok_or(ProofError::NotFound(seq))?;
    let (m, n) = (seq as u64, size as u64);
    let (proof, root, leaf_hash) = with_nodes(store, |f| {
        let proof = merkle::inclusion_proof(m, n, f);
        let root = merkle::root(n, f);
        let leaf = f(0, m);
        (proof, root, leaf)
    })
    .await?;
    Ok(AuditReceipt {
        seq,
        size,
        leaf: leaf_string(&record),
        leaf_hash: hex::encode(leaf_hash),
        proof: proof.iter().map(hex::encode).collect(),
        root: hex::encode(root),
    })
}

pub async fn consistency(
    store: &Store,
    from: i64,
    to: i64,
) -> Result<AuditConsistency, ProofError> {
    let current = size(store).await?;
    if from < 1 || from > to || to > current {
        return Err(ProofError::Invalid(format!(
            "need 1 ≤ from ≤ to ≤ current size {current}, got from={from} to={to}"
        )));
    }
    let (m, n) = (from as u64, to as u64);
    let (proof, rm, rn) = with_nodes(store, |f| {
        (
            merkle::consistency_proof(m, n, f),
            merkle::root(m, f),
            merkle::root(n, f),
        )
    })
    .await?;
    Ok(AuditConsistency {
        from,
        to,
        proof: proof.iter().map(hex::encode).collect(),
        from_root: hex::encode(rm),
        to_root: hex::encode(rn),
    })
}

/// Recompute every leaf from the stored records and every perfect node from the leaves,
/// and compare with what is stored. Names the first record that no longer matches.
pub async fn verify(store: &Store) -> Result<AuditVerify, sqlx::Error> {
    verify_and_root(store, None).await.map(|(v, _)| v)
}

/// [`verify`], and when it passes, the root at `at` (≤ the verified size) of the tree it
/// recomputed from the records alone — what [`recompute_root`] returns, without reading
/// every record a second time (a restore check of a large log reads it once).
pub async fn verify_and_root(
    store: &Store,
    at: Option<i64>,
) -> Result<(AuditVerify, Option<Hash>), sqlx::Error> {
    let (v, tree) = verify_tree(store).await?;
    let root = match at {
        Some(n) if v.ok && (0..=v.size).contains(&n) => Some(tree.root(n as u64)),
        _ => None,
    };
    Ok((v, root))
}

async fn verify_tree(store: &Store) -> Result<(AuditVerify, MemTree), sqlx::Error> {
    const PAGE: i64 = 5000;
    // One consistent snapshot: appends that land while we read must not look like
    // records outside the tree.
    let mut tx = match store.dialect() {
        crate::store::Dialect::Postgres => {
            store
                .reader()
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?
        }
        // A SQLite read transaction in WAL mode sees one snapshot from its first read.
        crate::store::Dialect::Sqlite => store.reader().begin().await?,
    };
    let size: i64 = sqlx::query_scalar(&format!(
        "SELECT COALESCE(MAX(id) + 1, 0) FROM audit_nodes WHERE id < {LEVEL1_BASE}"
    ))
    .fetch_one(&mut *tx)
    .await?;
    // The latest head, in the same snapshot: one published after it must not look like
    // a truncation.
    let head: Option<crate::model::AuditHead> =
        sqlx::query_as::<_, heads::HeadRow>(heads::LATEST_SQL)
            .fetch_optional(&mut *tx)
            .await?
            .map(Into::into);
    let bad = |seq: i64, reason: String| AuditVerify {
        ok: false,
        size,
        first_bad_seq: Some(seq),
        reason: Some(reason),
        head: head.clone(),
    };
    let mut tree = MemTree::default();
    let mut next_seq = 0i64;
    while next_seq < size {
        let end = (next_seq + PAGE).min(size);
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLS} FROM audit_log WHERE seq >= $1 AND seq < $2 ORDER BY seq"
        ))
        .bind(next_seq)
        .bind(end)
        .fetch_all(&mut *tx)
        .await?;
        let leaves = sqlx::query_as::<_, NodeRow>(
            "SELECT id, hash FROM audit_nodes WHERE id >= $1 AND id < $2",
        )
        .bind(next_seq)
        .bind(end)
        .fetch_all(&mut *tx)
        .await?;
        let mut stored_leaf = HashMap::with_capacity(leaves.len());
        for node in leaves {
            stored_leaf.insert(node.id, node.hash);
        }
        let mut expect = next_seq;
        let mut completed: Vec<(i64, Hash)> = Vec::new();
        for row in &rows {
            let rec = match row_to_record(row) {
                Ok(rec) => rec,
                // A record that no longer decodes no longer matches its leaf: report it
                // as the first bad record rather than failing the whole check.
                Err(e) if is_corrupt_row(&e) => {
                    let seq: i64 = row.try_get("seq")?;
                    return Ok((bad(seq, format!("record {seq} is corrupt: {e}")), tree));
                }
                Err(e) => return Err(e),
            };
            if rec.seq != expect {
                return Ok((bad(expect, format!("record {expect} is missing")), tree));
            }
            let h = merkle::leaf_hash(leaf_string(&rec).as_bytes());
            match stored_leaf.get(&rec.seq) {
                Some(s) if s.as_slice() == h.as_slice() => {}
                Some(_) => {
                    return Ok((
                        bad(
                            rec.seq,
                            format!("record {} does not match its committed leaf hash", rec.seq),
                        ),
                        tree,
                    ))
                }
                None => {
                    return Ok((
                        bad(
                            rec.seq,
                            format!("leaf hash of record {} is missing", rec.seq),
                        ),
                        tree,
                    ))
                }
            }
            tree.push_leaf_hash(h);
            for (level, index) in merkle::completed_by_append(rec.seq as u64) {
                completed.push((merkle::node_id(level, index), tree.node(level, index)));
            }
            expect += 1;
        }
        if expect < end {
            return Ok((bad(expect, format!("record {expect} is missing")), tree));
        }
        let ids: Vec<i64> = completed.iter().map(|(id, _)| *id).collect();
        let stored = fetch_nodes_on(&mut tx, &ids).await?;
        for (id, h) in completed {
            if stored.get(&id) != Some(&h) {
                let level = (id >> 48) as u32;
                let first = (id & (LEVEL1_BASE - 1)) << level;
                return Ok((
                    bad(
                        first,
                        format!(
                            "stored tree node (level {level}) over records from {first} does not match"
                        ),
                    ),
                    tree,
                ));
            }
        }
        next_seq = end;
    }
    // Rows beyond the committed tree are records whose leaves were never committed.
    let extra: Option<i64> = sqlx::query_scalar("SELECT MIN(seq) FROM audit_log WHERE seq >= $1")
        .bind(size)
        .fetch_one(&mut *tx)
        .await?;
    if let Some(seq) = extra {
        return Ok((
            bad(
                seq,
                format!("record {seq} is not part of the committed tree"),
            ),
            tree,
        ));
    }
    if let Some(h) = &head {
        if let Some((first_bad, reason)) = against_head(&tree, size, h) {
            return Ok((
                AuditVerify {
                    first_bad_seq: first_bad,
                    ..bad(0, reason)
                },
                tree,
            ));
        }
    }
    Ok((
        AuditVerify {
            ok: true,
            size,
            first_bad_seq: None,
            reason: None,
            head,
        },
        tree,
    ))
}

/// Check the recomputed tree against a signed head with an RFC 6962 consistency proof:
/// the tree must contain the head's tree as a prefix. `None` when it does.
fn against_head(
    tree: &MemTree,
    size: i64,
    h: &crate::model::AuditHead,
) -> Option<(Option<i64>, String)> {
    let name = format!(
        "head #{} (size {}, signed {})",
        h.id, h.tree_size, h.timestamp
    );
    if !heads::signature_ok(h) {
        return Some((None, format!("{name} does not carry a valid signature")));
    }
    if h.tree_size > size {
        return Some((
            Some(size),
            format!(
                "the log has {size} records but {name} covers {}: records {size}..{} were removed (truncated)",
                h.tree_size,
                h.tree_size - 1
            ),
        ));
    }
    let Some(head_root) = hex::decode(&h.root)
        .ok()
        .and_then(|b| Hash::try_from(b.as_slice()).ok())
    else {
        return Some((None, format!("{name} has a malformed root")));
    };
    let (m, n) = (h.tree_size as u64, size as u64);
    let consistent = if m == 0 {
        head_root == merkle::empty_root()
    } else {
        let node = |l: u32, i: u64| tree.node(l, i);
        let proof = merkle::consistency_proof(m, n, &mut |l, i| node(l, i));
        merkle::verify_consistency(m, n, &proof, &head_root, &tree.root(n))
    };
    if consistent {
        return None;
    }
    // Name the first record that differs from what the head committed to, if the tree
    // still has the head's leaves (it does: m ≤ n).
    Some((
        None,
        format!(
            "the log is not consistent with {name}: the first {} records were rewritten since it was signed",
            h.tree_size
        ),
    ))
}

/// The tree head (size, root) recomputed from the stored records themselves, not from
/// the stored nodes (e.g. to check a restored backup against a recorded head). Errors
/// when the records no longer match their committed hashes.
pub async fn recompute_head(store: &Store) -> anyhow::Result<(i64, Hash)> {
    let v = verify(store).await?;
    if !v.ok {
        anyhow::bail!(
            "audit log does not verify: {}",
            v.reason.unwrap_or_default()
        );
    }
    // verify checked every stored node against the records, so the stored root is the
    // recomputed one.
    Ok((v.size, root_at(store, v.size).await?))
}
