//! Two replicas with different configs: the pool does not flip between
//! them. The config in force stays while a live replica asks for it; the
//! other's reload (or start-up sync) is held back, reported (metrics, the
//! dashboard), and applied once the replicas agree.

use crate::support::{TestApp, another_pool, pool_config};
use nspool::config::Settings;
use sqlx::PgPool;

fn parse(yaml: &str) -> Result<Settings, nspool::config::ConfigErrors> {
    Settings::parse(yaml, &|_| None)
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|n| (*n).to_owned()).collect()
}

async fn retired(db: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select name from pool_namespaces where retired_at is not null order by name",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

async fn pool_events(db: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from events where kind in ('retire', 'restore', 'add')")
        .fetch_one(db)
        .await
        .unwrap()
}

async fn dashboard(app: &TestApp, token: &str) -> String {
    crate::dashboard_actions::signed_in_page(app, token, "").await
}

#[sqlx::test]
async fn replicas_with_different_configs_do_not_flip_the_pool(db: PgPool) {
    let with_c = pool_config(&names(&["ns-a", "ns-b", "ns-c"]), "");
    let without_c = pool_config(&names(&["ns-a", "ns-b"]), "");
    let a = TestApp::spawn(&with_c, db.clone()).await;
    a.service.agreement_heartbeat().await.unwrap();
    let events_before = pool_events(&db).await;

    // B starts with a config that drops ns-c while A still asks for it:
    // its start-up sync is held back, and it serves all the same.
    let b = TestApp::spawn(&without_c, another_pool(&db).await).await;
    assert!(
        retired(&db).await.is_empty(),
        "B's start retired ns-c under A"
    );
    b.service.agreement_heartbeat().await.unwrap();
    a.service.agreement_heartbeat().await.unwrap();
    for app in [&a, &b] {
        let metrics = app.metrics().await;
        assert!(
            metrics.contains("nspool_config_replicas_disagree 1"),
            "{metrics}"
        );
    }
    assert!(b.metrics().await.contains("nspool_config_held_back 1"));
    assert!(a.metrics().await.contains("nspool_config_held_back 0"));
    let admin = a.admin().await;
    let page = dashboard(&a, &admin).await;
    assert!(page.contains("id=\"replicas-disagree\""), "{page}");
    assert!(page.contains("(held back)"), "{page}");

    // Every reload either way changes nothing: no flip, no events. A
    // reload of B to yet another pool is refused and reported.
    let only_a = pool_config(&names(&["ns-a"]), "");
    for _ in 0..3 {
        let _ = b.service.reload(parse(&without_c)).await;
        let _ = a.service.reload(parse(&with_c)).await;
        b.service.agreement_heartbeat().await.unwrap();
        assert!(
            b.service.reload(parse(&only_a)).await.is_none(),
            "held back"
        );
        b.service.agreement_heartbeat().await.unwrap();
    }
    assert!(retired(&db).await.is_empty());
    assert_eq!(pool_events(&db).await, events_before, "the pool flipped");
    let failing = b.service.reload_status().failing.expect("reported");
    assert!(
        failing.1[0].contains("runs the pool config in force"),
        "{failing:?}"
    );
    // B's file goes back to what B runs: nothing is held for it any more
    // but its start-up sync.
    assert!(b.service.reload(parse(&without_c)).await.is_some());

    // The operator fixes A's config: A applies it (nobody else asks for the
    // old one), B's held config is the one in force now, and they agree.
    assert!(a.service.reload(parse(&without_c)).await.is_some());
    assert_eq!(retired(&db).await, ["ns-c"]);
    // Within two heartbeats each (20 s in `serve`).
    for _ in 0..2 {
        b.service.agreement_heartbeat().await.unwrap();
        a.service.agreement_heartbeat().await.unwrap();
    }
    for app in [&a, &b] {
        let metrics = app.metrics().await;
        assert!(
            metrics.contains("nspool_config_replicas_disagree 0"),
            "{metrics}"
        );
        assert!(metrics.contains("nspool_config_held_back 0"), "{metrics}");
    }
    assert!(!dashboard(&a, &admin).await.contains("replicas-disagree"));
    assert_eq!(
        pool_events(&db).await,
        events_before + 1,
        "exactly one retire, no flip back"
    );
}

/// A replica that stopped cleanly asks for nothing: the next one may bring
/// another config at once; one that vanished holds nothing after its
/// heartbeats went stale.
#[sqlx::test]
async fn a_replica_that_left_holds_nothing_back(db: PgPool) {
    let with_c = pool_config(&names(&["ns-a", "ns-c"]), "");
    let without_c = pool_config(&names(&["ns-a"]), "");
    let a = TestApp::spawn(&with_c, db.clone()).await;
    a.service.agreement_heartbeat().await.unwrap();
    a.service.leave_agreement().await;
    let b = TestApp::spawn(&without_c, another_pool(&db).await).await;
    assert_eq!(retired(&db).await, ["ns-c"]);

    // A stale heartbeat (a replica killed 31 s ago) holds nothing either:
    // C brings ns-c back and asks for it; B's reload waits while C is live,
    // and applies at B's next heartbeat once C's went stale.
    let c = TestApp::spawn(&with_c, another_pool(&db).await).await;
    assert!(retired(&db).await.is_empty());
    c.service.agreement_heartbeat().await.unwrap();
    let with_d = pool_config(&names(&["ns-a", "ns-d"]), "");
    assert!(
        b.service.reload(parse(&with_d)).await.is_none(),
        "held back by C"
    );
    assert!(retired(&db).await.is_empty());
    sqlx::query("update replica_configs set seen_at = now() - interval '31 seconds'")
        .execute(&db)
        .await
        .unwrap();
    drop(c);
    b.service.agreement_heartbeat().await.unwrap();
    assert_eq!(retired(&db).await, ["ns-c"]);
    assert!(b.service.reload_status().failing.is_none());
    assert!(b.metrics().await.contains("nspool_config_held_back 0"));
}
