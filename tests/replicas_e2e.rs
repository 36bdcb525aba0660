//! Replicas started at the same moment on one fresh PostgreSQL database all come up.

mod common;

use common::{Opts, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_started_together_on_a_fresh_database_all_start() {
    if !common::backends().contains(&"postgres") {
        return; // SQLite is one process per database file.
    }
    for _round in 0..3 {
        let url = common::fresh_database("postgres").await;
        let key = common::random_key();
        let starts: Vec<_> = (0..3)
            .map(|i| {
                let opts = Opts {
                    database_url: url.clone(),
                    key: Some(key.clone()),
                    env: vec![("ECHOPILOT_REPLICA_ID".into(), format!("replica-{i}"))],
                    ..Default::default()
                };
                std::thread::spawn(move || Server::start_with(opts))
            })
            .collect();
        let servers: Vec<Server> = starts
            .into_iter()
            .map(|t| t.join().expect("every replica starts"))
            .collect();
        for s in &servers {
            let r = s.client().get("/api/v1/keys").await;
            assert_eq!(r.status, 200, "{}", r.text);
            // One bootstrap key, installed once.
            assert_eq!(r.body["keys"].as_array().unwrap().len(), 1, "{}", r.text);
        }
    }
}
