//! Store-level tests, run on SQLite always and on PostgreSQL when ECHOPILOT_TEST_PG_URL is
//! set; each test gets its own fresh database.

use echopilot_backend::audit::{self, merkle, NewAudit};
use echopilot_backend::auth::{self, Actor};
use echopilot_backend::model::Role;
use echopilot_backend::store::testing;
use echopilot_backend::Store;

fn rec(i: usize) -> NewAudit {
    NewAudit::new(
        "t",
        "key_x",
        "test.append",
        &format!("obj-{i}"),
        "ok",
        "rid",
    )
    .detail(serde_json::json!({"i": i, "nested": {"b": 2, "a": [1, "x"]}}))
}

fn hashes(hex_list: &[String]) -> Vec<merkle::Hash> {
    hex_list
        .iter()
        .map(|h| hex::decode(h).unwrap().try_into().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_are_idempotent_and_ready() {
    for backend in testing::backends() {
        let (store, db) = testing::fresh(backend).await;
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        store.ready().await.unwrap();
        // A second process opening the same database migrates nothing and is ready.
        let other = Store::connect(&db.url, 2).await.unwrap();
        other.migrate().await.unwrap();
        other.ready().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_tree_matches_reference_and_proofs_verify() {
    for backend in testing::backends() {
        let (store, _db) = testing::fresh(backend).await;
        let mut reference = merkle::MemTree::default();
        for i in 0..70 {
            let r = audit::record(&store, rec(i)).await.unwrap();
            assert_eq!(r.seq, i as i64);
            reference.push_leaf_hash(merkle::leaf_hash(audit::leaf_string(&r).as_bytes()));
            let n = i as u64 + 1;
            let root = audit::root_at(&store, n as i64).await.unwrap();
            assert_eq!(root, reference.root(n), "root at size {n} on {backend}");
        }
        for n in [1u64, 2, 3, 7, 8, 9, 31, 64, 70] {
            for m in (0..n).step_by(3) {
                let r = audit::receipt(&store, m as i64, Some(n as i64))
                    .await
                    .unwrap();
                let leaf: merkle::Hash = hex::decode(&r.leaf_hash).unwrap().try_into().unwrap();
                assert!(merkle::verify_inclusion(
                    &leaf,
                    m,
                    n,
                    &hashes(&r.proof),
                    &reference.root(n)
                ));
            }
            let from = (n / 2).max(1);
            let c = audit::consistency(&store, from as i64, 70).await.unwrap();
            assert!(merkle::verify_consistency(
                from,
                70,
                &hashes(&c.proof),
                &reference.root(from),
                &reference.root(70)
            ));
        }
        let v = audit::verify(&store).await.unwrap();
        assert!(v.ok && v.size == 70, "{v:?}");
    }
}

/// Batched appends (group commit) build exactly the tree one-at-a-time appends would:
/// batches of every size land on every alignment of the right edge.
#[tokio::test(flavor = "multi_thread")]
async fn batched_appends_match_the_reference_tree() {
    for backend in testing::backends() {
        let (store, _db) = testing::fresh(backend).await;
        let mut reference = merkle::MemTree::default();
        let mut next = 0usize;
        for batch in [1usize, 2, 3, 1, 5, 8, 13, 1, 64, 7, 500, 2] {
            let mut tx = store.begin_write().await.unwrap();
            let recs = (next..next + batch).map(rec).collect();
            let out = audit::append_many(&store, &mut tx, recs).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(out.len(), batch);
            for (k, r) in out.iter().enumerate() {
                assert_eq!(r.seq, (next + k) as i64, "gapless, in order");
                reference.push_leaf_hash(merkle::leaf_hash(audit::leaf_string(r).as_bytes()));
            }
            next += batch;
            let root = audit::root_at(&store, next as i64).await.unwrap();
            assert_eq!(
                root,
                reference.root(next as u64),
                "root at {next} on {backend}"
            );
        }
        let n = next as u64;
        for m in [0u64, 1, 17, 300, n - 1] {
            let r = audit::receipt(&store, m as i64, None).await.unwrap();
            let leaf: merkle::Hash = hex::decode(&r.leaf_hash).unwrap().try_into().unwrap();
            assert!(merkle::verify_inclusion(
                &leaf,
                m,
                n,
                &hashes(&r.proof),
                &reference.root(n)
            ));
        }
        // A rolled-back batch leaves no trace: the next append continues the same tree.
        let mut tx = store.begin_write().await.unwrap();
        audit::append_many(&store, &mut tx, (0..10).map(rec).collect())
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        let r = audit::record(&store, rec(next)).await.unwrap();
        assert_eq!(r.seq, next as i64);
        let v = audit::verify(&store).await.unwrap();
        assert!(v.ok && v.size == next as i64 + 1, "{backend}: {v:?}");
    }
}

/// Two store handles (two "replicas") appending concurrently never fork the tree:
/// sequence numbers are gapless and the recomputed tree verifies.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_appends_from_two_replicas_serialize() {
    for backend in testing::backends() {
        let (a, db) = testing::fresh(backend).await;
        let b = Store::connect(&db.url, 4).await.unwrap();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let s = if t % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    audit::record(&s, rec(t * 100 + i)).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(audit::size(&a).await.unwrap(), 200);
        let v = audit::verify(&b).await.unwrap();
        assert!(v.ok, "{backend}: {v:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_authenticate_and_revoke() {
    for backend in testing::backends() {
        let (store, _db) = testing::fresh(backend).await;
        let actor = || Actor {
            id: "test",
            request_id: "rid",
        };
        let k = auth::create_key(&store, Role::Operator, "acme", Some("ci"), None, actor())
            .await
            .unwrap();
        let row = auth::authenticate(&store, &k.key).await.unwrap().unwrap();
        assert_eq!(
            (row.role, row.tenant_id.as_str(), row.revoked),
            (Role::Operator, "acme", false)
        );
        assert!(auth::authenticate(&store, "ep_wrong")
            .await
            .unwrap()
            .is_none());
        // Other tenants cannot revoke it; its own tenant can.
        assert!(matches!(
            auth::revoke_key(&store, &k.id, Some("globex"), actor())
                .await
                .unwrap(),
            auth::RevokeOutcome::NotFound
        ));
        assert!(matches!(
            auth::revoke_key(&store, &k.id, Some("acme"), actor())
                .await
                .unwrap(),
            auth::RevokeOutcome::Revoked(_)
        ));
        assert!(
            auth::authenticate(&store, &k.key)
                .await
                .unwrap()
                .unwrap()
                .revoked
        );
        // The key's hash, not the key, is stored.
        let stored: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
            .fetch_all(store.reader())
            .await
            .unwrap();
        assert!(stored.iter().all(|h| h.len() == 64 && !h.contains(&k.key)));
        // Both mutations are in the audit log, newest first.
        let recs = audit::list_records(&store, Some("acme"), None, None, 10)
            .await
            .unwrap();
        let actions: Vec<&str> = recs.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, vec!["keys.revoke", "keys.create"]);
    }
}

/// `verify_and_root` (the restore check's single read of the log) returns exactly the root
/// `recompute_root` and the reference tree give at every size up to the verified one, and
/// no root once a record no longer matches its leaf.
#[tokio::test(flavor = "multi_thread")]
async fn verify_and_root_gives_the_recomputed_root_in_one_pass() {
    for backend in testing::backends() {
        let (store, _db) = testing::fresh(backend).await;
        let mut reference = merkle::MemTree::default();
        for i in 0..37 {
            let r = audit::record(&store, rec(i)).await.unwrap();
            reference.push_leaf_hash(merkle::leaf_hash(audit::leaf_string(&r).as_bytes()));
        }
        for at in [0i64, 1, 16, 17, 36, 37] {
            let (v, root) = audit::verify_and_root(&store, Some(at)).await.unwrap();
            assert!(v.ok && v.size == 37, "{backend}: {v:?}");
            assert_eq!(root, Some(reference.root(at as u64)), "{backend} at {at}");
            assert_eq!(
                root,
                Some(audit::recompute_root(&store, at).await.unwrap()),
                "{backend} at {at}"
            );
        }
        // Past the verified size, or not asked: no root.
        assert_eq!(
            audit::verify_and_root(&store, Some(38)).await.unwrap().1,
            None
        );
        assert_eq!(audit::verify_and_root(&store, None).await.unwrap().1, None);
        sqlx::query("UPDATE audit_log SET outcome = 'denied' WHERE seq = 5")
            .execute(store.writer())
            .await
            .unwrap();
        let (v, root) = audit::verify_and_root(&store, Some(37)).await.unwrap();
        assert!(!v.ok && v.first_bad_seq == Some(5), "{backend}: {v:?}");
        assert_eq!(root, None);
    }
}
