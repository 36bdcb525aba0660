//! Group commit for enqueues.
//!
//! Every enqueue is a mutation with an audit record in the same transaction, and audit
//! appends are serialized (one SQLite writer; an advisory lock on PostgreSQL so replicas
//! never fork the tree). One transaction per request therefore caps throughput at one
//! commit (fsync + lock) per job. Instead, callers hand their enqueue to one committer
//! task per process, which takes everything waiting, writes it in one transaction —
//! multi-row job inserts, one audit append for all records — and answers each caller.
//! Nothing waits for a batch to fill: an idle queue commits a lone request at once, and
//! under load the batch is whatever arrived during the previous commit.
//!
//! If a combined transaction fails, each request is retried in a transaction of its own,
//! so one bad request cannot fail its neighbours and every caller gets its own answer.

use std::sync::{Arc, Weak};

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::{EnqueueError, Enqueued, NewJob, Queue, QueueInner};
use crate::audit::{self, NewAudit};

/// Most requests combined into one transaction.
const MAX_GROUP: usize = 256;

/// One caller's enqueue: one job (the enqueue route) or several (the batch route), and
/// the audit record to append when anything is created.
pub(crate) struct Unit {
    pub tenant: String,
    pub jobs: Vec<NewJob>,
    pub audit: Option<NewAudit>,
    pub reply: oneshot::Sender<Result<Vec<Enqueued>, EnqueueError>>,
}

pub(crate) fn spawn(q: &Arc<QueueInner>) -> mpsc::Sender<Unit> {
    let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
    tokio::spawn(run(Arc::downgrade(q), rx));
    tx
}

/// Holds only a weak handle, so dropping the queue drops the sender and ends the task.
async fn run(q: Weak<QueueInner>, mut rx: mpsc::Receiver<Unit>) {
    let mut buf = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut buf, MAX_GROUP).await > 0 {
        let Some(inner) = q.upgrade() else { break };
        let q = Queue(inner);
        let units = std::mem::take(&mut buf);
        metrics::histogram!("echopilot_queue_enqueue_group_size").record(units.len() as f64);
        if units.len() > 1 {
            match q.write_units(&units).await {
                Ok(results) => {
                    for (u, r) in units.into_iter().zip(results) {
                        let _ = u.reply.send(Ok(r));
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(target: "queue", error = %e, requests = units.len(),
                        "group commit failed; committing each request on its own");
                }
            }
        }
        for u in units {
            let r = q
                .write_units(std::slice::from_ref(&u))
                .await
                .map(|mut v| v.pop().unwrap_or_default())
                .map_err(EnqueueError::Db);
            let _ = u.reply.send(r);
        }
    }
}

impl Queue {
    /// Write units in one transaction; returns each unit's results in order.
    async fn write_units(&self, units: &[Unit]) -> Result<Vec<Vec<Enqueued>>, sqlx::Error> {
        let mut tx = self.store.begin_write().await?;
        let mut results: Vec<Vec<Enqueued>> = Vec::with_capacity(units.len());
        // Jobs without an idempotency key cannot conflict: many rows per statement.
        let plain: Vec<(&str, &NewJob)> = units
            .iter()
            .flat_map(|u| {
                u.jobs
                    .iter()
                    .filter(|j| j.idempotency_key.is_none())
                    .map(move |j| (u.tenant.as_str(), j))
            })
            .collect();
        let mut plain_ids = Vec::with_capacity(plain.len());
        for chunk in plain.chunks(500) {
            plain_ids.extend(self.insert_plain(&mut tx, chunk).await?);
        }
        let mut plain_ids = plain_ids.into_iter();
        let mut records = Vec::new();
        for u in units {
            let mut out = Vec::with_capacity(u.jobs.len());
            for j in &u.jobs {
                if j.idempotency_key.is_none() {
                    out.push(plain_ids.next().expect("one id per plain job"));
                } else {
                    out.push(self.insert_job(&mut tx, &u.tenant, j).await?);
                }
            }
            let created: Vec<&str> = out
                .iter()
                .filter(|e| e.created)
                .map(|e| e.id.as_str())
                .collect();
            if let (Some(rec), false) = (&u.audit, created.is_empty()) {
                let mut rec = rec.clone();
                if u.jobs.len() == 1 {
                    rec.target = created[0].to_string();
                } else if let Value::Object(d) = &mut rec.detail {
                    d.insert("job_ids".into(), json!(created));
                }
                records.push(rec);
            }
            results.push(out);
        }
        audit::append_many(&self.store, &mut tx, records).await?;
        if results.iter().flatten().any(|e| e.created) {
            self.notify_tx(&mut tx).await?;
        }
        tx.commit().await?;
        for (u, out) in units.iter().zip(&results) {
            for (j, e) in u.jobs.iter().zip(out) {
                if e.created {
                    metrics::counter!("echopilot_queue_enqueued_total", "kind" => j.kind.clone())
                        .increment(1);
                    tracing::debug!(target: "queue", job_id = %e.id, kind = %j.kind,
                        tenant = %u.tenant, "job enqueued");
                }
            }
        }
        if results.iter().flatten().any(|e| e.created) {
            self.wake.notify_one();
        }
        Ok(results)
    }
}
