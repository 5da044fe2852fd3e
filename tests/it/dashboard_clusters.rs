//! The dashboard when nspool serves several clusters: a summary of each
//! cluster (counts, reachability, pool cordon), the namespace table with a
//! cluster column and a per-cluster filter that keeps the search and the
//! pages, the chart of the cluster shown, and forms that act in their row's
//! cluster only. With one cluster none of it shows (`dashboard.rs` and
//! `dashboard_actions.rs` run unchanged); `/metrics`' per-cluster series are
//! in `monitoring.rs`.

use crate::dashboard_actions::{page, session};
use crate::support::{POOL_OF_5, TestApp};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

pub const PROD: &str = "11111111-1111-4111-8111-111111111111";
pub const STAGING: &str = "22222222-2222-4222-8222-222222222222";

/// Two clusters with `team-a` in both; Kubernetes off (no API server).
pub const TWO_CLUSTERS: &str = r#"
nspool:
  kubernetes: {mode: "off"}
  clusters:
    - {id: 11111111-1111-4111-8111-111111111111, name: prod, namespacePools: {enabled: true, namespaces: {names: [team-a, team-b]}}}
    - {id: 22222222-2222-4222-8222-222222222222, name: staging, namespacePools: {enabled: true, namespaces: {names: [team-a, team-c]}}}
"#;

fn id(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

/// Two clusters: staging's team-a held by a Deployment, prod reachable,
/// staging's API server not answering. Kubernetes is on in the config (so
/// the checks show) but the test app starts no worker: no API server is
/// needed, and the checks are the ones written here.
pub async fn two_clusters(db: PgPool) -> TestApp {
    // With Kubernetes on, each cluster but one names its kubeconfig (never
    // read here: no worker starts).
    let config = TWO_CLUSTERS.replace("mode: \"off\"", "mode: auto").replace(
        "name: staging,",
        "name: staging, kubeconfig: /nonexistent/staging.kubeconfig,",
    );
    two_clusters_of(&config, db).await
}

/// [`two_clusters`] from another config of the same two clusters.
pub async fn two_clusters_of(config: &str, db: PgPool) -> TestApp {
    let app = TestApp::spawn(config, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "data-team").await;
    app.ok(
        Some(&admin),
        "mutation($ws: Uuid!, $cluster: Uuid) { createDeployment(workspaceUuid: $ws, label: \"etl\", executor: LocalExecutor, namespace: \"team-a\", clusterId: $cluster) { id } }",
        json!({"ws": ws, "cluster": STAGING}),
    )
    .await;
    let store = app.service.store();
    store.record_reachability(id(PROD), None).await.unwrap();
    store
        .record_reachability(id(STAGING), Some("connection refused (10.0.0.9:6443)"))
        .await
        .unwrap();
    app
}

/// The HTML of the element whose id is `id`, up to the end of `until`.
fn element<'a>(html: &'a str, id: &str, until: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in\n{html}"));
    let rest = &html[start..];
    &rest[..rest.find(until).unwrap_or(rest.len())]
}

/// The count a summary row shows in `state`.
fn summary_count(html: &str, cluster: &str, state: &str) -> i64 {
    let row = element(html, &format!("cluster-{cluster}"), "</tr>");
    let cell = row
        .split(&format!("data-state=\"{state}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("no {state} in {row}"));
    cell[..cell.find('<').unwrap()].parse().unwrap()
}

/// The number in a count box.
fn shown_count(html: &str, state: &str) -> i64 {
    let boxed = element(html, &format!("count-{state}"), "</div>");
    let number = boxed.split("<b>").nth(1).unwrap();
    number[..number.find('<').unwrap()].parse().unwrap()
}

/// The largest count on the chart (the top of its scale).
fn chart_top(html: &str) -> i64 {
    let label = "<text class=\"axis\" x=\"2\" y=\"12\">";
    let at = html.find(label).unwrap() + label.len();
    html[at..at + html[at..].find('<').unwrap()]
        .parse()
        .unwrap()
}

#[sqlx::test]
async fn the_clusters_are_summarised_and_every_row_names_its_cluster(db: PgPool) {
    let app = two_clusters(db).await;
    let viewer = session(&app, &app.token("SYSTEM_VIEWER", None).await).await;
    let html = page(&app, &viewer, "").await;

    // Each cluster: its name (a link showing it alone), id, counts, reachability.
    let prod = element(&html, "cluster-prod", "</tr>");
    assert!(prod.contains(PROD) && prod.contains(&format!("href=\"/?cluster={PROD}\"")));
    assert!(prod.contains(">default</span>"), "the first is the default");
    assert!(prod.contains(">reachable</span>") && prod.contains("checked "));
    let staging = element(&html, "cluster-staging", "</tr>");
    assert!(staging.contains(">unreachable</span>"), "{staging}");
    assert!(staging.contains("connection refused (10.0.0.9:6443)"));
    assert!(html.contains("id=\"unreachable-staging\""));
    assert!(!html.contains("id=\"unreachable-prod\""));
    assert_eq!(summary_count(&html, "prod", "free"), 2);
    assert_eq!(summary_count(&html, "prod", "held"), 0);
    assert_eq!(summary_count(&html, "staging", "free"), 1);
    assert_eq!(summary_count(&html, "staging", "held"), 1);
    // Without a cluster chosen the boxes count the whole pool.
    assert!(html.contains("<h2 id=\"scope\">The whole pool</h2>"));
    assert_eq!(shown_count(&html, "free"), 3);
    assert_eq!(shown_count(&html, "held"), 1);

    // One row per (cluster, namespace): team-a twice, each in its cluster.
    for (cluster, name, state) in [
        ("prod", "team-a", "free"),
        ("prod", "team-b", "free"),
        ("staging", "team-a", "held"),
        ("staging", "team-c", "free"),
    ] {
        let row = element(&html, &format!("ns-{cluster}_{name}"), "</tr>");
        assert!(
            row.contains(&format!("<td class=\"cluster\">{cluster}</td>")),
            "{row}"
        );
        assert!(row.contains(&format!(">{state}</span>")), "{row}");
        assert!(html.contains(&format!("title=\"{cluster}/{name}: {state}\"")));
    }
    // The claim's event names its cluster.
    let events = html.split("Latest events").nth(1).unwrap();
    assert!(
        events.contains("<td>claim</td><td>staging</td><td>team-a</td>"),
        "{events}"
    );
    // A viewer gets no forms.
    assert!(!html.contains("action=\"/actions\""));
}

#[sqlx::test]
async fn with_kubernetes_off_no_check_is_shown(db: PgPool) {
    // The rows keep what a worker found before Kubernetes was switched off.
    let app = two_clusters_of(TWO_CLUSTERS, db).await;
    let html = page(&app, &session(&app, &app.admin().await).await, "").await;
    for cluster in ["prod", "staging"] {
        let row = element(&html, &format!("cluster-{cluster}"), "</tr>");
        assert!(
            row.contains("Kubernetes off") && !row.contains("reachable"),
            "{row}"
        );
    }
    assert!(!html.contains("id=\"unreachable-staging\""));
}

#[sqlx::test]
async fn with_one_cluster_nothing_is_grouped(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let html = page(&app, &session(&app, &app.admin().await).await, "").await;
    for part in [
        "id=\"clusters\"",
        "id=\"scope\"",
        "name=\"cluster\"",
        "<th>cluster</th>",
        "aria-label=\"show one cluster\"",
    ] {
        assert!(!html.contains(part), "{part} with one cluster");
    }
    assert!(html.contains("id=\"ns-pool-a\"") && html.contains("id=\"cordon-pool\""));
    // A cluster in the address changes nothing with one cluster.
    let default: Uuid = sqlx::query_scalar("select id from clusters")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let cookie = session(&app, &app.admin().await).await;
    let chosen = page(&app, &cookie, &format!("?cluster={default}")).await;
    assert!(!chosen.contains("id=\"scope\"") && chosen.contains("id=\"ns-pool-e\""));
}

#[sqlx::test]
async fn a_cluster_is_shown_alone_and_the_search_and_pages_keep_it(db: PgPool) {
    // prod: 205 namespaces (two pages); staging: 3.
    let prod_names: Vec<String> = (0..205).map(|i| format!("ns-{i:03}")).collect();
    let config = TWO_CLUSTERS
        .replace("[team-a, team-b]", &format!("[{}]", prod_names.join(", ")))
        .replace("[team-a, team-c]", "[ns-000, ns-001, team-c]");
    let app = TestApp::spawn(&config, db).await;
    let cookie = session(&app, &app.token("SYSTEM_VIEWER", None).await).await;

    let staging = page(&app, &cookie, &format!("?cluster={STAGING}")).await;
    assert!(staging.contains("<h2 id=\"scope\">Cluster staging</h2>"));
    assert!(staging.contains("Cluster staging over the last 7 days"));
    assert!(staging.contains(&format!(
        "href=\"/?cluster={STAGING}\" aria-current=\"page\""
    )));
    assert!(
        staging.contains("Namespaces 1–3 of 3"),
        "only staging's rows"
    );
    assert!(staging.contains("id=\"ns-staging_ns-000\"") && !staging.contains("id=\"ns-prod_"));
    assert_eq!(shown_count(&staging, "free"), 3, "staging's counts");
    // The summary still has every cluster.
    assert_eq!(summary_count(&staging, "prod", "free"), 205);
    // The search box keeps the cluster.
    assert!(staging.contains(&format!(
        "<input type=\"hidden\" name=\"cluster\" value=\"{STAGING}\">"
    )));

    // By name as operators say it; an unknown one is said, not ignored
    // (escaped, shortened), and every cluster is shown.
    let by_name = page(&app, &cookie, "?cluster=staging").await;
    assert!(by_name.contains("<h2 id=\"scope\">Cluster staging</h2>"));
    assert!(!by_name.contains("id=\"cluster-unknown\""));
    let unknown = page(&app, &cookie, "?cluster=%3Cb%3Eqa%3C%2Fb%3E").await;
    assert!(
        unknown.contains("id=\"cluster-unknown\"")
            && unknown.contains("\u{201c}&lt;b&gt;qa&lt;/b&gt;\u{201d}: showing every cluster")
            && unknown.contains("<h2 id=\"scope\">The whole pool</h2>"),
        "{unknown}"
    );

    let prod = page(&app, &cookie, &format!("?cluster={PROD}")).await;
    assert!(prod.contains("Namespaces 1–200 of 205"), "prod is paged");
    assert!(prod.contains(&format!(
        "href=\"/?cluster={PROD}&amp;page=2\" rel=\"next\""
    )));
    let second = page(&app, &cookie, &format!("?cluster={PROD}&page=2")).await;
    assert!(
        second.contains("Namespaces 201–205 of 205") && second.contains("id=\"ns-prod_ns-204\"")
    );

    // A search within a cluster: its pages and "show all" keep the cluster.
    let found = page(&app, &cookie, &format!("?q=ns-00&cluster={STAGING}")).await;
    assert!(
        found.contains("Namespaces 1–2 of 2 matching"),
        "staging's ns-000 and ns-001"
    );
    assert!(found.contains(&format!("href=\"/?cluster={STAGING}\">show all</a>")));
    // Every cluster's link keeps the search.
    assert!(found.contains(&format!("href=\"/?q=ns-00&amp;cluster={PROD}\"")));
    assert!(found.contains("href=\"/?q=ns-00\""));
    let everywhere = page(&app, &cookie, "?q=ns-00").await;
    assert!(
        everywhere.contains("Namespaces 1–12 of 12 matching"),
        "10 in prod, 2 in staging"
    );

    // An id the config does not list, or no id at all, shows every cluster.
    for query in [
        "?cluster=nope",
        "?cluster=33333333-3333-4333-8333-333333333333",
    ] {
        let all = page(&app, &cookie, query).await;
        assert!(
            all.contains("<h2 id=\"scope\">The whole pool</h2>"),
            "{query}"
        );
        assert!(all.contains("of 208"), "{query}");
    }
}

#[sqlx::test]
async fn the_chart_shows_the_cluster_chosen(db: PgPool) {
    let app = TestApp::spawn(TWO_CLUSTERS, db).await;
    // Three hours ago staging had five more namespaces (since retired).
    for n in 1..=5 {
        sqlx::query(
            "insert into events (at, kind, cluster_id, namespace, actor)
             values (now() - interval '3 hours', 'add', $1, $2, 'test')",
        )
        .bind(id(STAGING))
        .bind(format!("old-{n}"))
        .execute(&app.db)
        .await
        .unwrap();
    }
    let cookie = session(&app, &app.token("SYSTEM_VIEWER", None).await).await;
    // prod: 2 free now and never more; staging: 5 free hours ago; together 5 + 2.
    // (At least: a test that spans the turn of an hour sees today's adds too.)
    let prod = page(&app, &cookie, &format!("?cluster={PROD}")).await;
    assert_eq!(chart_top(&prod), 2, "none of staging's history");
    let staging = page(&app, &cookie, &format!("?cluster={STAGING}")).await;
    assert!(chart_top(&staging) >= 5);
    let whole = page(&app, &cookie, "").await;
    assert!(chart_top(&whole) >= chart_top(&staging));
    assert!(whole.contains("The whole pool over the last 7 days"));
}

/// The CSRF token the page put in its forms.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    html[at..at + 64].to_owned()
}

async fn post(app: &TestApp, cookie: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/actions"))
        .header("cookie", cookie)
        .header("sec-fetch-site", "same-origin")
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// Each cluster's `team-a` cordon reason (prod, staging).
async fn team_a_cordons(app: &TestApp) -> (Option<String>, Option<String>) {
    let reason = |cluster: &'static str| {
        sqlx::query_scalar::<_, Option<String>>(
            "select cordon_reason from pool_namespaces where cluster_id = $1 and name = 'team-a'",
        )
        .bind(id(cluster))
        .fetch_one(&app.db)
    };
    (reason(PROD).await.unwrap(), reason(STAGING).await.unwrap())
}

#[sqlx::test]
async fn each_form_acts_in_its_rows_cluster_only(db: PgPool) {
    let app = two_clusters(db).await;
    let admin = session(&app, &app.admin().await).await;
    let html = page(&app, &admin, "").await;
    let csrf = csrf_of(&html);
    // Each row's forms say its cluster; the ids tell the two team-a apart.
    let staging_row = element(&html, "ns-staging_team-a", "</tr>");
    assert!(staging_row.contains(&format!("name=\"cluster\" value=\"{STAGING}\"")));
    assert!(staging_row.contains("id=\"cordon-staging_team-a\""));
    let prod_row = element(&html, "ns-prod_team-a", "</tr>");
    assert!(prod_row.contains(&format!("name=\"cluster\" value=\"{PROD}\"")));

    let done = post(
        &app,
        &admin,
        &[
            ("csrf", &csrf),
            ("action", "cordon"),
            ("name", "team-a"),
            ("reason", "etcd restore"),
            ("cluster", STAGING),
        ],
    )
    .await;
    assert_eq!(done.status(), 303);
    assert_eq!(
        done.headers()["location"],
        format!("/?cluster={STAGING}&done=cordon&ns=team-a#ns-staging_team-a").as_str()
    );
    assert_eq!(
        team_a_cordons(&app).await,
        (None, Some("etcd restore".into()))
    );
    let after = page(
        &app,
        &admin,
        &format!("?cluster={STAGING}&done=cordon&ns=team-a"),
    )
    .await;
    assert!(
        after.contains("Cordoned: team-a (cluster staging)."),
        "{after}"
    );
    assert!(after.contains("id=\"uncordon-staging_team-a\""));
    let whole = page(&app, &admin, "").await;
    assert!(
        whole.contains("id=\"cordon-prod_team-a\""),
        "prod's team-a is not cordoned"
    );

    // Without its cluster the form is refused: the name alone is two namespaces.
    let refused = post(
        &app,
        &admin,
        &[("csrf", &csrf), ("action", "uncordon"), ("name", "team-a")],
    )
    .await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("several clusters"));
    let unknown = post(
        &app,
        &admin,
        &[
            ("csrf", &csrf),
            ("action", "uncordon"),
            ("name", "team-a"),
            ("cluster", "33333333-3333-4333-8333-333333333333"),
        ],
    )
    .await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(
        team_a_cordons(&app).await,
        (None, Some("etcd restore".into()))
    );
    let undone = post(
        &app,
        &admin,
        &[
            ("csrf", &csrf),
            ("action", "uncordon"),
            ("name", "team-a"),
            ("cluster", STAGING),
        ],
    )
    .await;
    assert_eq!(undone.status(), 303);
    assert_eq!(team_a_cordons(&app).await, (None, None));

    // Mark clean: both team-a releasing; staging's is marked, prod's waits.
    sqlx::query(
        "update pool_namespaces set releasing_since = now(), holder_deployment_id = null
         where name = 'team-a'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let clean = post(
        &app,
        &admin,
        &[
            ("csrf", &csrf),
            ("action", "mark-clean"),
            ("name", "team-a"),
            ("reason", "checked by hand"),
            ("cluster", PROD),
        ],
    )
    .await;
    assert_eq!(clean.status(), 303);
    let releasing: Vec<String> = sqlx::query_scalar(
        "select k.name from pool_namespaces p join clusters k on k.id = p.cluster_id
         where p.name = 'team-a' and p.releasing_since is not null",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(releasing, ["staging"]);

    // The pool cordon: prod's only, from prod's row of the summary.
    let summary = element(&html, "cluster-prod", "</tr>");
    assert!(summary.contains("id=\"cordon-pool-prod\""), "{summary}");
    assert!(summary.contains(&format!("name=\"cluster\" value=\"{PROD}\"")));
    let cordoned = post(
        &app,
        &admin,
        &[
            ("csrf", &csrf),
            ("action", "cordon-pool"),
            ("reason", "upgrade tonight"),
            ("cluster", PROD),
        ],
    )
    .await;
    assert_eq!(cordoned.status(), 303);
    assert_eq!(
        cordoned.headers()["location"],
        format!("/?cluster={PROD}&done=cordon-pool").as_str()
    );
    let cordons: Vec<Uuid> = sqlx::query_scalar("select cluster_id from pool_cordon")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(cordons, [id(PROD)]);
    let html = page(&app, &admin, "").await;
    assert!(
        html.contains("id=\"pool-cordon-prod\"") && !html.contains("id=\"pool-cordon-staging\"")
    );
    assert!(element(&html, "cluster-prod", "</tr>").contains("upgrade tonight"));
    assert!(element(&html, "cluster-staging", "</tr>").contains("id=\"cordon-pool-staging\""));
    // Staging still offers its free namespace; prod offers none.
    let token = app.admin().await;
    for (cluster, offered) in [(PROD, json!([])), (STAGING, json!([{"name": "team-c"}]))] {
        let data = app
            .ok(
                Some(&token),
                "query($c: Uuid) { availableNamespaces(clusterId: $c) { name } }",
                json!({"c": cluster}),
            )
            .await;
        assert_eq!(data["availableNamespaces"], offered, "{cluster}");
    }
    let opened = post(
        &app,
        &admin,
        &[
            ("csrf", &csrf),
            ("action", "uncordon-pool"),
            ("cluster", PROD),
        ],
    )
    .await;
    assert_eq!(opened.status(), 303);
    let left: i64 = sqlx::query_scalar("select count(*) from pool_cordon")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[sqlx::test]
async fn a_grouped_page_stays_within_the_dashboards_page_bound(db: PgPool) {
    // The longest names there are (63 characters, for clusters and
    // namespaces), an admin's forms, a full page of rows.
    let names: Vec<String> = (0..210)
        .map(|i| format!("{}-{i:03}", "n".repeat(59)))
        .collect();
    let (prod, staging) = ("p".repeat(63), "s".repeat(63));
    let config = TWO_CLUSTERS
        .replace("name: prod", &format!("name: {prod}"))
        .replace("name: staging", &format!("name: {staging}"))
        .replace("[team-a, team-c]", &format!("[{}]", names.join(", ")));
    let app = TestApp::spawn(&config, db).await;
    let html = page(&app, &session(&app, &app.admin().await).await, "").await;
    assert!(html.contains("Namespaces 1–200 of 212"));
    assert!(html.contains(&format!("id=\"ns-{staging}_{}\"", names[0])));
    // The bound `scale.rs` holds every page to (one cluster: about 230 KB).
    // (333 KB measured.)
    assert!(html.len() <= 512 * 1024, "{} bytes", html.len());
}
