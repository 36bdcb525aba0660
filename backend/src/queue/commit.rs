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
/// Most jobs in one combined transaction (a single larger unit still commits alone).
const MAX_GROUP_JOBS: usize = 5000;

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
        for units in groups(std::mem::take(&mut buf)) {
            commit_group(&q, units).await;
        }
    }
}

/// Split what arrived into transactions of at most [`MAX_GROUP_JOBS`] jobs (a unit is
/// never split: it is all-or-nothing), so batch requests arriving together do not make
/// one huge transaction.
fn groups(units: Vec<Unit>) -> Vec<Vec<Unit>> {
    let mut out: Vec<Vec<Unit>> = Vec::new();
    let mut jobs = 0;
    for u in units {
        match out.last_mut() {
            Some(g) if jobs + u.jobs.len() <= MAX_GROUP_JOBS => {
                jobs += u.jobs.len();
                g.push(u);
            }
            _ => {
                jobs = u.jobs.len();
                out.push(vec![u]);
            }
        }
    }
    out
}

async fn commit_group(q: &Queue, units: Vec<Unit>) {
    metrics::histogram!("echopilot_queue_enqueue_group_size").record(units.len() as f64);
    if units.len() > 1 {
        match q.write_units(&units).await {
            Ok(results) => {
                for (u, r) in units.into_iter().zip(results) {
                    let _ = u.reply.send(Ok(r));
                }
                return;
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
            .map(|mut v| v.pop().unwrap_or_default());
        let _ = u.reply.send(r);
    }
}

impl Queue {
    /// Write units in one transaction; returns each unit's results in order.
    async fn write_units(&self, units: &[Unit]) -> Result<Vec<Vec<Enqueued>>, EnqueueError> {
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
            for (i, j) in u.jobs.iter().enumerate() {
                if j.idempotency_key.is_none() {
                    out.push(plain_ids.next().expect("one id per plain job"));
                } else {
                    let e = self.insert_job(&mut tx, &u.tenant, j).await;
                    out.push(e.map_err(|e| match e {
                        EnqueueError::Invalid(m) if u.jobs.len() > 1 => {
                            EnqueueError::Invalid(format!("jobs[{i}]: {m}"))
                        }
                        other => other,
                    })?);
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
        let any_created = results.iter().flatten().any(|e| e.created);
        if any_created {
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
        if any_created {
            self.wake.notify_one();
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(jobs: usize) -> Unit {
        Unit {
            tenant: "t".into(),
            jobs: (0..jobs)
                .map(|_| NewJob::new("echo", Value::Null))
                .collect(),
            audit: None,
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn groups_cap_jobs_per_transaction_and_never_split_a_unit() {
        let sizes = |g: &Vec<Vec<Unit>>| -> Vec<Vec<usize>> {
            g.iter()
                .map(|u| u.iter().map(|u| u.jobs.len()).collect())
                .collect()
        };
        let g = groups((0..10).map(|_| unit(1)).collect());
        assert_eq!(sizes(&g), vec![vec![1; 10]]);
        let g = groups(vec![
            unit(1000),
            unit(3000),
            unit(1000),
            unit(1),
            unit(7000),
            unit(2),
        ]);
        assert_eq!(
            sizes(&g),
            vec![vec![1000, 3000, 1000], vec![1], vec![7000], vec![2]]
        );
        assert!(groups(Vec::new()).is_empty());
    }
}
