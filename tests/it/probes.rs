//! `/readyz` and `/metrics` need no token and stand outside the request caps,
//! so their database reads are budgeted apart: however many clients poll
//! them at once, each probe reads the database once at a time and at most
//! about once a second, and token holders are served meanwhile.

use crate::support::{POOL_OF_5, TestApp, metric_value};
use sqlx::PgPool;
use std::time::{Duration, Instant};

#[sqlx::test]
async fn a_flood_of_probes_costs_the_database_about_one_read_a_second(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let reads = |metrics: &str, probe: &str| {
        metric_value(
            metrics,
            &format!("nspool_probe_database_reads_total{{probe=\"{probe}\"}}"),
        )
        .unwrap_or_else(|| panic!("no probe_database_reads for {probe}"))
    };
    let before = app.metrics().await;
    let started = Instant::now();
    // 400 pollers at once, each asking 5 times: 2,000 probes.
    let client = reqwest::Client::new();
    let mut pollers = Vec::new();
    for i in 0..400 {
        let url = app.url(if i % 2 == 0 { "/readyz" } else { "/metrics" });
        let client = client.clone();
        pollers.push(tokio::spawn(async move {
            for _ in 0..5 {
                let answer = client.get(&url).send().await.unwrap();
                assert_eq!(answer.status(), 200, "{url}");
                answer.bytes().await.unwrap();
            }
        }));
    }
    // Served meanwhile, from the database.
    assert_eq!(app.available(&admin).await.len(), 5);
    app.ok(
        Some(&admin),
        "{ workspaces { id } }",
        serde_json::Value::Null,
    )
    .await;
    for poller in pollers {
        poller.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = app.metrics().await;
    for probe in ["readyz", "metrics"] {
        let made = reads(&after, probe) - reads(&before, probe);
        // One read per second of the flood at most (the first may still be
        // fresh from the scrape before it).
        assert!(
            made <= seconds.ceil() + 1.0,
            "{probe}: {made} database reads for 1,000 probes in {seconds:.1} s"
        );
    }
    // The figures stay fresh: a second later, a scrape reads again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = app.metrics().await;
    assert!(reads(&again, "metrics") > reads(&after, "metrics"));
}
