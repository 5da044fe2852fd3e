//! The dashboard's chart reads the event log condensed to what its hourly
//! points can see: each namespace's last change in each hour. However fast
//! Deployments come and go, that is at most the pool's size per hour of the
//! window, and the chart is the one the whole log gives.

use crate::support::{POOL_OF_5, TestApp};
use chrono::{DurationRound, TimeDelta, Utc};
use nspool::pool::History;
use sqlx::PgPool;

#[sqlx::test]
async fn churn_costs_the_chart_no_more_than_the_pool_per_hour(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
    let start = hour - TimeDelta::hours(4);
    // 30,000 claims and releases of two namespaces over three hours, as a
    // script creating and hard-deleting Deployments would leave them.
    sqlx::query(
        "insert into events (kind, cluster_id, namespace, actor, at)
         select case when i % 2 = 0 then 'claim' else 'release' end,
                (select id from clusters where name = 'default'),
                case when i % 3 = 0 then 'pool-b' else 'pool-a' end,
                'churn', $1 + (i * interval '350 milliseconds')
         from generate_series(0, 29999) as i",
    )
    .bind(start + TimeDelta::minutes(20))
    .execute(&db)
    .await
    .unwrap();
    let store = app.service.store();
    let condensed = store.state_changes(start, hour).await.unwrap();
    let every = store.every_state_change(start, hour).await.unwrap();
    assert!(every.len() >= 30_000, "{}", every.len());
    // Two namespaces over at most four hours (the add events at start are
    // outside the window).
    assert!(condensed.len() <= 2 * 4, "{} rows", condensed.len());
    let before = store.states_before(start).await.unwrap();
    let chart = |changes| {
        let mut history = History::default();
        history.fold(&before, start);
        history.fold(changes, hour);
        history.points_with(nspool::pool::HistoryPoint {
            hour,
            free: 0,
            held: 0,
            soft_deleted: 0,
        })
    };
    assert_eq!(chart(&condensed), chart(&every));
}
