//! Signed audit tree heads (issue 9, item 6), against the real binary on both engines:
//! publish, check a head offline, and catch a truncated or rewritten history that still
//! matches its own stored hashes; the witness gets every head, failures retried.

mod common;

use std::time::Duration;

use common::{Client, Opts, Server};
use echopilot_backend::audit::merkle;
use serde_json::{json, Value};

async fn start(backend: &str, env: &[(&str, String)]) -> Server {
    Server::start_with(Opts {
        database_url: common::fresh_database(backend).await,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..Default::default()
    })
}

/// Some audit records: each key creation appends one.
async fn append_records(c: &Client, n: usize) {
    for i in 0..n {
        let r = c
            .post(
                "/api/v1/keys",
                json!({"role": "readonly", "tenant": format!("t{i}")}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
}

/// The backend's store on the server's database, for tampering "directly in the database".
async fn store_of(srv: &Server) -> echopilot_backend::Store {
    let mut cfg = echopilot_backend::Config::for_data_dir(&srv.data_dir);
    cfg.database_url = srv.database_url.clone();
    echopilot_backend::Store::open(&cfg).await.unwrap()
}

/// An independent check of a head's signature (what an auditor runs offline).
fn head_signature_ok(public_key: &str, h: &Value) -> bool {
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let pk: [u8; 32] = hex::decode(public_key).unwrap().try_into().unwrap();
    let sig =
        Signature::from_slice(&hex::decode(h["signature"].as_str().unwrap()).unwrap()).unwrap();
    let msg = format!(
        "echopilot-audit-tree-head:v1\n{}\n{}\n{}",
        h["tree_size"],
        h["root"].as_str().unwrap(),
        h["ts_ms"]
    );
    VerifyingKey::from_bytes(&pk)
        .unwrap()
        .verify(msg.as_bytes(), &sig)
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_are_signed_listed_logged_and_checkable_offline() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let c = srv.client();
        append_records(&c, 3).await;
        let h = c.post("/api/v1/audit/heads", json!({})).await;
        assert_eq!(h.status, 201, "{backend}: {}", h.text);
        let chain = c.get("/api/v1/audit/chain").await.body;
        assert_eq!(h.body["tree_size"], chain["size"], "{backend}");
        assert_eq!(h.body["root"], chain["root"], "{backend}");
        let list = c.get("/api/v1/audit/heads").await;
        assert_eq!(list.status, 200, "{backend}: {}", list.text);
        let pk = list.body["public_key"].as_str().unwrap();
        assert_eq!(list.body["heads"][0]["id"], h.body["id"], "{backend}");
        assert!(head_signature_ok(pk, &list.body["heads"][0]), "{backend}");
        let mut forged = list.body["heads"][0].clone();
        forged["tree_size"] = json!(forged["tree_size"].as_i64().unwrap() - 1);
        assert!(!head_signature_ok(pk, &forged), "{backend}");
        // The private key lives in the data dir, owner-only, and never in an answer.
        let key_file = srv.data_dir.join("audit_head.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{backend}");
        }
        let seed = std::fs::read_to_string(&key_file).unwrap();
        assert!(!list.text.contains(seed.trim()), "{backend}");
        let sig = h.body["signature"].as_str().unwrap().to_string();
        common::eventually(
            Duration::from_secs(10),
            "the head in audit_heads.ndjson",
            || async {
                let logs = std::fs::read_dir(srv.data_dir.join("logs"))
                    .unwrap()
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("audit_heads."))
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect::<String>();
                logs.contains(&sig).then_some(())
            },
        )
        .await;
        let v = c.get("/api/v1/audit/verify").await.body;
        assert_eq!(v["ok"], true, "{backend}: {v}");
        assert_eq!(v["head"]["id"], h.body["id"], "{backend}: {v}");
        let s = c.get("/api/v1/status/summary").await.body;
        assert!(
            s["audit"]["heads_published"].as_u64().unwrap() >= 1,
            "{backend}: {s}"
        );
        assert!(s["audit"]["last_head_age_secs"].is_u64(), "{backend}: {s}");
        let m = reqwest::get(format!("{}/metrics", srv.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            m.contains("echopilot_audit_heads_published_total"),
            "{backend}"
        );
        // Publishing is an admin action; reading is for every role.
        let ro = c
            .post(
                "/api/v1/keys",
                json!({"role": "readonly", "tenant": "default"}),
            )
            .await;
        let ro = c.with_key(ro.body["key"].as_str().unwrap());
        ro.post("/api/v1/audit/heads", json!({}))
            .await
            .assert_problem(403);
        assert_eq!(ro.get("/api/v1/audit/heads").await.status, 200, "{backend}");
        c.get("/api/v1/audit/heads?limit=0")
            .await
            .assert_problem(422);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_a_truncated_tail_even_when_every_remaining_row_matches() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let c = srv.client();
        append_records(&c, 6).await;
        let head = c.post("/api/v1/audit/heads", json!({})).await.body;
        let size = head["tree_size"].as_i64().unwrap();
        let cut = size - 3;
        // The attacker's edit: drop the last records and every tree node over them.
        let store = store_of(&srv).await;
        sqlx::query("DELETE FROM audit_log WHERE seq >= $1")
            .bind(cut)
            .execute(store.writer())
            .await
            .unwrap();
        for level in 0..48u32 {
            let lo = merkle::node_id(level, (cut as u64) >> level);
            let hi = merkle::node_id(level + 1, 0);
            sqlx::query("DELETE FROM audit_nodes WHERE id >= $1 AND id < $2")
                .bind(lo)
                .bind(hi)
                .execute(store.writer())
                .await
                .unwrap();
        }
        store.close().await;
        let v = c.get("/api/v1/audit/verify").await.body;
        assert_eq!(v["ok"], false, "{backend}: truncation not reported: {v}");
        assert_eq!(v["size"], cut, "{backend}: {v}");
        assert_eq!(v["first_bad_seq"], cut, "{backend}: {v}");
        let reason = v["reason"].as_str().unwrap();
        assert!(reason.contains("truncated"), "{backend}: {reason}");
        assert!(
            reason.contains(&format!("head #{}", head["id"])),
            "{backend}: {reason}"
        );
        assert!(
            reason.contains(&format!("covers {size}")),
            "{backend}: {reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_a_rewritten_history_with_recomputed_hashes() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let c = srv.client();
        append_records(&c, 5).await;
        let head = c.post("/api/v1/audit/heads", json!({})).await.body;
        append_records(&c, 2).await;
        // The attacker rewrites record 1 and recomputes every stored hash, so the rows
        // match the nodes again.
        let store = store_of(&srv).await;
        sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1")
            .execute(store.writer())
            .await
            .unwrap();
        let records = echopilot_backend::audit::list_records(&store, None, Some(-1), None, 10_000)
            .await
            .unwrap();
        let mut tree = merkle::MemTree::default();
        let mut nodes = Vec::new();
        for r in &records {
            let seq = r.seq as u64;
            tree.push_leaf_hash(merkle::leaf_hash(
                echopilot_backend::audit::leaf_string(r).as_bytes(),
            ));
            nodes.push((merkle::node_id(0, seq), tree.node(0, seq)));
            for (l, i) in merkle::completed_by_append(seq) {
                nodes.push((merkle::node_id(l, i), tree.node(l, i)));
            }
        }
        sqlx::query("DELETE FROM audit_nodes")
            .execute(store.writer())
            .await
            .unwrap();
        for (id, h) in nodes {
            sqlx::query("INSERT INTO audit_nodes (id, hash) VALUES ($1, $2)")
                .bind(id)
                .bind(h.to_vec())
                .execute(store.writer())
                .await
                .unwrap();
        }
        store.close().await;
        let v = c.get("/api/v1/audit/verify").await.body;
        assert_eq!(v["ok"], false, "{backend}: rewrite not reported: {v}");
        let reason = v["reason"].as_str().unwrap();
        assert!(reason.contains("not consistent"), "{backend}: {reason}");
        assert!(
            reason.contains(&format!("head #{}", head["id"])),
            "{backend}: {reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_gets_every_head_and_failures_are_retried() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    for backend in common::backends() {
        let witness = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/heads"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&witness)
            .await;
        Mock::given(method("POST"))
            .and(path("/heads"))
            .respond_with(ResponseTemplate::new(200))
            .with_priority(2)
            .mount(&witness)
            .await;
        let srv = start(
            backend,
            &[(
                "ECHOPILOT_AUDIT__WITNESS_URL",
                format!("{}/heads", witness.uri()),
            )],
        )
        .await;
        let c = srv.client();
        let first = c.post("/api/v1/audit/heads", json!({})).await;
        assert_eq!(
            first.status, 201,
            "{backend}: a witness failure must not fail the publish"
        );
        common::eventually(
            Duration::from_secs(10),
            "a counted witness failure",
            || async {
                let s = c.get("/api/v1/status/summary").await.body;
                (s["audit"]["witness_failures"].as_u64().unwrap_or(0) >= 1).then_some(())
            },
        )
        .await;
        let second = c.post("/api/v1/audit/heads", json!({})).await;
        assert_eq!(second.status, 201, "{backend}");
        let heads = common::eventually(Duration::from_secs(10), "both heads witnessed", || async {
            let l = c.get("/api/v1/audit/heads").await.body;
            l["heads"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["witnessed"] == true)
                .then_some(l)
        })
        .await;
        let got: Vec<Value> = witness
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        for h in heads["heads"].as_array().unwrap() {
            assert!(
                got.iter()
                    .any(|g| g["id"] == h["id"] && g["signature"] == h["signature"]),
                "{backend}: head {} never reached the witness",
                h["id"]
            );
        }
        // First attempt of head 1 failed; it was sent again with head 2.
        assert_eq!(
            got.iter().filter(|g| g["id"] == first.body["id"]).count(),
            2,
            "{backend}"
        );
    }
}
