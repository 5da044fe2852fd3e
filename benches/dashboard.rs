//! The pool dashboard's server time against an ordinary API read, in one run.
//!
//! The in-process router on a scratch database with a 1,000-namespace pool
//! (500 held) and 100,000 events over two weeks. A signed-in `GET /` (every
//! namespace, the 7-day chart from the event log, runs and events) is sent
//! BENCH_REPEAT times, one at a time; so is `availableNamespaces` through
//! `POST /v1` as the baseline. Reported: p50, p99 and worst wall time of each
//! (in process, so that is the server's time), the ratio, and the one-time
//! read of the event log that `serve` does in the background at start.
//!
//!   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench dashboard
//!
//! Knobs: BENCH_REPEAT (50).

#[path = "support/common.rs"]
mod common;
#[path = "support/fixture.rs"]
mod fixture;

use axum::body::Body;
use common::{knob, with_scratch_database};
use sqlx::postgres::PgPoolOptions;
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

async fn timed(
    router: &axum::Router,
    request: impl Fn() -> http::Request<Body>,
    repeat: usize,
) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(repeat);
    let mut bytes = 0;
    for _ in 0..repeat {
        let started = Instant::now();
        let response = router.clone().oneshot(request()).await.expect("infallible");
        assert_eq!(response.status(), 200);
        bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
            .len();
        times.push(started.elapsed());
    }
    times.sort();
    (times, bytes)
}

fn line(name: &str, times: &[Duration], bytes: usize) -> String {
    let ms = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    format!(
        "{name:<34} p50 {:>7.2} ms  p99 {:>7.2} ms  worst {:>7.2} ms  {bytes:>8} B",
        ms(0.5),
        ms(0.99),
        ms(1.0)
    )
}

fn main() -> anyhow::Result<()> {
    let repeat = knob("BENCH_REPEAT", 50);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(with_scratch_database("dashboard", |options| async move {
        let pool = PgPoolOptions::new().max_connections(16).connect_with(options).await?;
        let fixture = fixture::pool_with_history(&pool).await?;
        let session = fixture
            .service
            .sign_in(&fixture.admin)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let router = nspool::http::router(nspool::app::state(fixture.service.clone()));
        let admin = fixture.admin.clone();
        let (api, api_bytes) = timed(
            &router,
            || {
                http::Request::post("/v1")
                    .header("content-type", "application/json")
                    .header("authorization", admin.as_str())
                    .body(Body::from(r#"{"query": "{ availableNamespaces { name } }"}"#))
                    .expect("request")
            },
            repeat,
        )
        .await;
        let cookie = format!("nspool_session={}", session.id);
        // The first read folds two weeks of events in: `serve` does it in the
        // background at start; here it is timed on its own.
        let started = Instant::now();
        fixture.service.warm_dashboard().await;
        let warm_up = started.elapsed();
        let (page, page_bytes) = timed(
            &router,
            || {
                http::Request::get("/")
                    .header("cookie", cookie.as_str())
                    .body(Body::empty())
                    .expect("request")
            },
            repeat,
        )
        .await;
        println!("1,000 namespaces (500 held), 100,000 events over 14 days; {repeat} requests each, one at a time");
        println!("{}", line("availableNamespaces (baseline)", &api, api_bytes));
        println!("{}", line("GET / (the dashboard)", &page, page_bytes));
        println!(
            "reading the event log for the chart, once at start: {:.1} ms",
            warm_up.as_secs_f64() * 1e3
        );
        let p50 = |t: &[Duration]| t[(t.len() - 1) / 2].as_secs_f64();
        println!("dashboard / baseline at p50: ×{:.1}", p50(&page) / p50(&api));
        Ok(())
    }))
}
