//! The dashboard's HTML (maud templates, escaped by construction): readable
//! and usable with JavaScript off; one small script (a file nspool serves,
//! so the page's CSP allows no inline script) reloads it while the tab is
//! visible and nobody is typing.

use super::action_forms::{self, Done, InCluster, namespace_key};
use super::chart::chart;
use crate::pool::{DASHBOARD_PAGE_SIZE, Dashboard, DashboardCluster, PoolNamespaceView};
use crate::store::PoolStateCounts;
use chrono::{DateTime, SecondsFormat, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use uuid::Uuid;

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 78rem; padding: 1rem 1.5rem; color: #1d2330; }
header { display: flex; align-items: baseline; gap: 1.5rem; flex-wrap: wrap; }
header h1 { font-size: 1.4rem; margin: 0.5rem 0; }
header nav { display: flex; gap: 1rem; align-items: baseline; }
h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid #e3e6ec; vertical-align: top; }
th { background: #f5f6f9; }
.counts { display: flex; gap: 1rem; flex-wrap: wrap; }
.count { border: 1px solid #e3e6ec; border-radius: 6px; padding: 0.5rem 1rem; min-width: 7rem; }
.count b { display: block; font-size: 1.6rem; }
.grid-cells { display: flex; flex-wrap: wrap; gap: 2px; }
.cell { width: 12px; height: 12px; border-radius: 2px; display: inline-block; }
.free { background: #2e9e5b; } .held { background: #3b6fd6; } .soft-deleted { background: #e0a21b; }
.retired { background: #9aa1ad; } .broken { background: #d64545; } .releasing { background: #8e5bd6; }
.cordoned { background: #c2410c; } .pending { background: #6b7280; }
.banner { border-radius: 6px; padding: 0.6rem 1rem; margin: 0.8rem 0; }
.banner.warn { background: #fff4e5; border: 1px solid #f0b45b; }
.banner.error { background: #fdecea; border: 1px solid #e59a94; }
.banner ul { margin: 0.3rem 0 0; }
.banner.ok { background: #e9f7ef; border: 1px solid #8fd1a8; }
form.action { display: flex; gap: 0.3rem; margin: 0.15rem 0; }
form.action input { font: inherit; width: 11rem; }
form.search input { font: inherit; width: 28rem; max-width: 100%; }
.pool-actions { margin: 0.5rem 0; }
.pager { margin: 0.6rem 0; display: flex; gap: 0.8rem; flex-wrap: wrap; align-items: baseline; }
.state { display: inline-block; padding: 0 0.4rem; border-radius: 4px; color: #fff; font-size: 0.8rem; }
.chart { width: 100%; max-width: 60rem; height: auto; background: #fbfbfd; border: 1px solid #e3e6ec; }
.chart .grid { stroke: #dde1e8; stroke-width: 1; }
.chart .axis { font-size: 10px; fill: #687083; }
.chart .line { fill: none; stroke-linejoin: round; }
.chart .line.free { stroke: #2e9e5b; background: none; } .chart .line.held { stroke: #3b6fd6; background: none; }
.chart .line.soft-deleted { stroke: #e0a21b; background: none; }
.legend .key { width: 10px; height: 10px; display: inline-block; border-radius: 2px; }
.muted { color: #687083; }
.error { color: #b42318; }
form.inline { display: inline; }
button { font: inherit; padding: 0.2rem 0.8rem; }
label input { font: inherit; width: 32rem; max-width: 100%; }
nav.clusters { margin: 0.8rem 0; display: flex; gap: 0.8rem; flex-wrap: wrap; align-items: baseline; }
nav.clusters a[aria-current] { font-weight: bold; color: inherit; text-decoration: none; }
.reach { font-weight: bold; } .reach.up { color: #1f7a45; } .reach.down { color: #b42318; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.tag { font-size: 0.75rem; border: 1px solid #c9ced8; border-radius: 4px; padding: 0 0.3rem; }
code.cluster-id { font-size: 0.72rem; white-space: nowrap; }
tr.shown-cluster td { background: #eef3fd; }
#clusters td.kube { min-width: 9rem; }
#clusters form.action input { width: 7rem; }
"#;

/// What the page shows besides the pool: who is signed in, their CSRF token
/// when they may act (system admins), the search, the last action's result.
pub struct View<'a> {
    pub role: &'a str,
    pub csrf: Option<String>,
    pub search: String,
    pub done: Option<Done>,
    /// A `?cluster=` that names no cluster of the config (shortened): the
    /// page says so and shows every cluster.
    pub unknown_cluster: Option<String>,
}

/// Characters of a search kept (the box says so with `maxlength`).
pub const MAX_SEARCH: usize = 128;

/// The states the counts show, in the page's order.
const STATES: [&str; 8] = [
    "free",
    "held",
    "soft-deleted",
    "releasing",
    "cordoned",
    "retired",
    "broken",
    "pending",
];

/// The whole pool's count in one shown state.
fn count(counts: &PoolStateCounts, state: &str) -> i64 {
    match state {
        "free" => counts.free,
        "held" => counts.held,
        "soft-deleted" => counts.soft_deleted,
        "releasing" => counts.releasing,
        "cordoned" => counts.cordoned,
        "retired" => counts.retired,
        "broken" => counts.broken,
        "pending" => counts.pending,
        _ => 0,
    }
}

/// `text` as one value of a query string (RFC 3986's unreserved characters
/// as they are, every other byte escaped).
fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A link to the dashboard with the query `pairs` that have a value.
fn link(pairs: &[(&str, Option<String>)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}={v}")))
        .collect();
    if query.is_empty() {
        "/".to_owned()
    } else {
        format!("/?{}", query.join("&"))
    }
}

/// This search (and cluster) shown: `q` and `cluster` as a link keeps them.
fn kept(search: &str, cluster: Option<Uuid>) -> [(&'static str, Option<String>); 2] {
    [
        ("q", (!search.is_empty()).then(|| query_value(search))),
        ("cluster", cluster.map(|id| id.to_string())),
    ]
}

/// The address of `page` of this search in the cluster shown.
fn page_link(search: &str, cluster: Option<Uuid>, page: usize) -> String {
    let [q, cluster] = kept(search, cluster);
    link(&[q, cluster, ("page", Some(page.to_string()))])
}

/// The address of this search in `cluster` (every cluster: `None`), from its first page.
fn cluster_link(search: &str, cluster: Option<Uuid>) -> String {
    link(&kept(search, cluster))
}

/// First, previous, where we are, next, last: plain links.
fn pager(data: &Dashboard, search: &str) -> Markup {
    let (page, pages) = (data.page, data.pages);
    let page_link = |page| page_link(search, data.cluster, page);
    let first = (page - 1) * DASHBOARD_PAGE_SIZE + 1;
    let last = (first + data.namespaces.len()).saturating_sub(1);
    html! {
        nav class="pager" aria-label="pages of namespaces" {
            @if data.matches == 0 {
                span { "No namespace matches." }
            } @else {
                span { "Namespaces " (first) "–" (last) " of " (data.matches)
                    @if !search.is_empty() { " matching" }
                    " (page " (page) " of " (pages) ", " (DASHBOARD_PAGE_SIZE) " a page)" }
            }
            @if page > 1 {
                " " a href=(page_link(1)) rel="first" { "« first" }
                " " a href=(page_link(page - 1)) rel="prev" { "‹ previous" }
            }
            @if page < pages {
                " " a href=(page_link(page + 1)) rel="next" { "next ›" }
                " " a href=(page_link(pages)) rel="last" { "last »" }
            }
        }
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How long ago `at` was, in the largest whole unit: "4 s ago", "3 min ago".
fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds().max(0);
    match seconds {
        0..120 => format!("{seconds} s ago"),
        120..7200 => format!("{} min ago", seconds / 60),
        7200..172_800 => format!("{} h ago", seconds / 3600),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

/// A check older than this is stale: the worker checks every 5 s while it
/// leads (the alert NspoolClusterUnreachable waits a minute too).
const STALE_CHECK_SECONDS: i64 = 60;

fn page(title: &str, body: Markup, refresh: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (body)
                @if refresh { script src=(crate::http::assets::DASHBOARD_SCRIPT) {} }
            }
        }
    }
}

/// The sign-in form; `problem` says why the last try failed.
pub fn sign_in(problem: Option<&str>) -> Markup {
    page(
        "nspool: sign in",
        html! {
            header { h1 { "nspool pool dashboard" } nav { a href="/v1" { "GraphiQL" } a href="/metrics" { "metrics" } } }
            @if let Some(problem) = problem { p class="error" role="alert" { (problem) } }
            p { "Paste an API token of a system role (SYSTEM_VIEWER, SYSTEM_EDITOR or SYSTEM_ADMIN). "
                "The token is checked once and kept by nobody: the browser gets a session cookie for "
                (crate::pool::SESSION_HOURS) " hours." }
            form method="post" action="/login" {
                label { "Token " input type="password" name="token" autocomplete="off" required autofocus; }
                " "
                button type="submit" { "Sign in" }
            }
            p class="muted" { "No token yet? On the machine that runs nspool: "
                code { "nspool token create --config config.yaml --role SYSTEM_VIEWER --label dashboard" }
                " (with the server's config file: the embedded database it names, or the same "
                code { "DATABASE_URL" } " as the server)." }
        },
        false,
    )
}

/// A refused action: why, and the way back.
pub fn refused(message: &str) -> Markup {
    page(
        "nspool: refused",
        html! {
            header { h1 { "nspool pool dashboard" } }
            p class="error" role="alert" { (message) }
            p { a href="/" { "Back to the dashboard" } }
        },
        false,
    )
}

fn details(view: &PoolNamespaceView) -> Markup {
    let missing = &view.rbac_missing;
    let leftovers = &view.leftovers;
    let labels_missing = &view.labels_missing;
    html! {
        @if view.rbac_state == "missing" { div { "the namespace does not exist in the cluster" } }
        @if !leftovers.is_empty() { div { "left behind: " (leftovers.join(", ")) } }
        @if let Some(at) = view.leftovers_checked_at { @if view.releasing_since.is_some() { div { "last checked " (time(at)) } } }
        @if !labels_missing.is_empty() { div { "labels missing: " (labels_missing.join(", ")) } }
        @if !missing.is_empty() { div { "Commander cannot: " (missing.join(", ")) } }
        @if let Some(at) = view.reclaimable_at { div { "reclaimable after " (time(at)) } }
        @if let Some(cordon) = &view.cordon {
            div class="cordon" { "cordoned: " (cordon.reason)
                " (" (cordon.by)
                @if let Some(until) = cordon.until { ", until " (time(until)) } ")" }
        }
        @if let Some(error) = &view.kube_error {
            div class="error" { "Kubernetes: " (error)
                @if let Some(next) = view.kube_next_attempt_at { " (next try " (time(next)) ")" } }
        }
    }
}

/// Whether the cluster's API server answered its worker, and when it was asked.
fn reachability(cluster: &DashboardCluster, kubernetes: bool, now: DateTime<Utc>) -> Markup {
    if !kubernetes {
        return html! { span class="muted" { "Kubernetes off" } };
    }
    html! {
        @match cluster.reachable {
            Some(true) => span class="reach up" { "reachable" },
            Some(false) => span class="reach down" { "unreachable" },
            None => span class="muted" title="Kubernetes is off, or its worker has not checked yet" { "not checked" },
        }
        @if let Some(at) = cluster.checked_at {
            br;
            span class="muted" title=(time(at)) { "checked " (ago(at, now)) }
            @if (now - at).num_seconds() > STALE_CHECK_SECONDS {
                " " strong class="error" { "(stale: is a replica leading its Kubernetes work?)" }
            }
        }
        @if let (Some(false), Some(error)) = (cluster.reachable, &cluster.check_error) {
            div class="error" { (error) }
        }
    }
}

/// Each cluster: its name (a link that shows it alone) and id, its counts,
/// whether its API server answers, and its pool cordon (with an admin's
/// forms to cordon or uncordon it).
fn clusters_summary(data: &Dashboard, shown: &View<'_>) -> Markup {
    let now = Utc::now();
    html! {
        h2 { "Clusters" }
        table id="clusters" {
            thead { tr {
                th { "cluster" }
                @for state in STATES { th { (state) } }
                th { "Kubernetes API" }
                th { "pool cordon" }
            } }
            tbody {
                @for cluster in &data.clusters {
                    tr id=(format!("cluster-{}", cluster.name)) class=[(data.cluster == Some(cluster.id)).then_some("shown-cluster")] {
                        td {
                            a href=(cluster_link(&shown.search, Some(cluster.id))) { strong { (cluster.name) } }
                            @if cluster.is_default { " " span class="tag" title="claims that name no cluster go here" { "default" } }
                            br; code class="muted cluster-id" { (cluster.id) }
                        }
                        @for state in STATES {
                            td class="n" data-state=(state) { (count(&cluster.counts, state)) }
                        }
                        td class="kube" { (reachability(cluster, data.kubernetes, now)) }
                        td {
                            @if let Some(cordon) = &cluster.cordon {
                                strong { "cordoned: no claims. " } (cordon.reason) " (by " (cordon.by) " at " (time(cordon.at))
                                @if let Some(until) = cordon.until { ", until " (time(until)) } ")"
                            } @else {
                                span class="muted" { "open" }
                            }
                            @if let Some(csrf) = &shown.csrf {
                                (action_forms::pool_actions(cluster.cordon.as_ref(), csrf, Some(InCluster { id: cluster.id, name: &cluster.name })))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Links that show one cluster, or every one (the search is kept).
fn cluster_filter(data: &Dashboard, search: &str) -> Markup {
    html! {
        nav class="clusters" aria-label="show one cluster" {
            span class="muted" { "Show:" }
            a href=(cluster_link(search, None)) aria-current=[data.cluster.is_none().then_some("page")] { "every cluster" }
            @for cluster in &data.clusters {
                a href=(cluster_link(search, Some(cluster.id)))
                    aria-current=[(data.cluster == Some(cluster.id)).then_some("page")] { (cluster.name) }
            }
        }
    }
}

/// What the counts, the chart and the table show: a cluster, or the whole pool.
fn scope(data: &Dashboard) -> String {
    match data.shown_cluster() {
        Some(cluster) => format!("Cluster {}", cluster.name),
        None => "The whole pool".to_owned(),
    }
}

/// The cluster a namespace is in, as the page names it: its name, or its
/// id when the config no longer lists it.
fn cluster_label(data: &Dashboard, view: &PoolNamespaceView) -> String {
    data.cluster_name(view.cluster_id)
        .map_or_else(|| view.cluster_id.to_string(), str::to_owned)
}

pub fn dashboard(data: &Dashboard, shown: &View<'_>) -> Markup {
    let role = shown.role;
    let grouped = data.grouped();
    let states: Vec<&str> = data
        .namespaces
        .iter()
        .map(PoolNamespaceView::shown_state)
        .collect();
    page(
        "nspool: pool dashboard",
        html! {
            header {
                h1 { "nspool pool dashboard" }
                nav {
                    a href="/v1" { "GraphiQL" }
                    a href="/metrics" { "metrics" }
                    span class="muted" { "signed in as " (role) }
                    form class="inline" method="post" action="/logout" { button type="submit" { "Sign out" } }
                }
            }
            @if let Some(done) = &shown.done {
                p class="banner ok" role="status" id="done" { (done.sentence()) }
            }
            @if let Some(asked) = &shown.unknown_cluster {
                p class="banner warn" role="status" id="cluster-unknown" {
                    "No cluster nspool serves is named or has the id \u{201c}" (asked) "\u{201d}: showing every cluster."
                }
            }
            @if grouped {
                @for cluster in data.clusters.iter().filter(|c| c.cordon.is_some()) {
                    p class="banner warn" id=(format!("pool-cordon-{}", cluster.name)) {
                        strong { "The pool of cluster " (cluster.name) " is cordoned: no claims there." }
                    }
                }
                @for cluster in data.clusters.iter().filter(|c| data.kubernetes && c.reachable == Some(false)) {
                    p class="banner error" id=(format!("unreachable-{}", cluster.name)) {
                        strong { "The API server of cluster " (cluster.name) " does not answer: " }
                        "its Kubernetes work waits; claims go on in every cluster."
                    }
                }
            } @else {
                @if let Some(cordon) = &data.pool_cordon {
                    p class="banner warn" id="pool-cordon" {
                        strong { "The pool is cordoned: no claims. " }
                        (cordon.reason) " (by " (cordon.by) " at " (time(cordon.at))
                        @if let Some(until) = cordon.until { ", until " (time(until)) } ")"
                    }
                }
                @if let Some(csrf) = &shown.csrf {
                    div class="pool-actions" { span class="muted" { "Whole pool: " } (action_forms::pool_actions(data.pool_cordon.as_ref(), csrf, None)) }
                }
            }
            @if let Some((at, errors)) = &data.reload.failing {
                div class="banner error" id="reload-failed" {
                    strong { "The config reload at " (time(*at)) " was refused; the last good config stays in force:" }
                    ul { @for error in errors { li { code { (error) } } } }
                }
            }
            @if !data.reload.disagreeing.is_empty() {
                div class="banner error" id="replicas-disagree" {
                    strong { "Replicas ask for different pool configs: the one in force stays until they agree (docs/operations.md, Replicas with different configs)." }
                    ul { @for replica in &data.reload.disagreeing { li { code { (replica) } } } }
                }
            }
            @if grouped {
                (clusters_summary(data, shown))
                (cluster_filter(data, &shown.search))
                h2 id="scope" { (scope(data)) }
            }
            section class="counts" aria-label="namespaces by state" {
                @for state in STATES {
                    div class="count" id=(format!("count-{state}")) {
                        span class=(format!("cell {state}")) {} " " (state) b { (count(data.shown_counts(), state)) }
                    }
                }
            }
            @if grouped {
                h2 { (scope(data)) " over the last 7 days" }
            } @else {
                h2 { "The pool over the last 7 days" }
            }
            (chart(&data.history))
            h2 { "Namespaces" }
            form class="search" method="get" action="/" role="search" {
                input type="search" name="q" value=(shown.search) maxlength=(MAX_SEARCH)
                    placeholder="namespace, release, Deployment label or workspace" aria-label="search namespaces";
                @if let Some(cluster) = data.cluster { input type="hidden" name="cluster" value=(cluster); }
                " " button type="submit" { "Search" }
                @if !shown.search.is_empty() { " " a href=(cluster_link("", data.cluster)) { "show all" } }
            }
            (pager(data, &shown.search))
            div class="grid-cells" aria-label="one cell per namespace of this page" {
                @for (view, state) in data.namespaces.iter().zip(&states) {
                    @if grouped {
                        span class=(format!("cell {state}")) title=(format!("{}/{}: {state}", cluster_label(data, view), view.name)) {}
                    } @else {
                        span class=(format!("cell {state}")) title=(format!("{}: {state}", view.name)) {}
                    }
                }
            }
            table id="namespaces" {
                thead { tr { @if grouped { th { "cluster" } } th { "namespace" } th { "state" } th { "holder" } th { "since" } th { "details" }
                    @if shown.csrf.is_some() { th { "actions" } } } }
                tbody {
                    @for (view, state) in data.namespaces.iter().zip(&states) {
                        @let cluster = cluster_label(data, view);
                        @let in_cluster = grouped.then_some(InCluster { id: view.cluster_id, name: &cluster });
                        tr id=(format!("ns-{}", namespace_key(in_cluster.map(|c| c.name), &view.name))) {
                            @if grouped { td class="cluster" { (cluster) } }
                            td { (view.name) }
                            td { span class=(format!("state {state}")) { (state) } }
                            td {
                                @if let Some(d) = &view.holder {
                                    (d.workspace.label) " / " (d.label) " " span class="muted" { "(" (d.release_name) ")" }
                                }
                            }
                            td {
                                @match (view.retired_at, view.holder.as_ref()) {
                                    (Some(at), _) => (time(at)),
                                    (None, Some(d)) => (time(d.deleted_at.unwrap_or(view.claimed_at.unwrap_or(d.created_at)))),
                                    // Since when it is in this state: released, cordoned, or offered.
                                    (None, None) => (time(view.releasing_since.or(view.cordon.as_ref().map(|c| c.at)).unwrap_or(view.offered_changed_at))),
                                }
                            }
                            td { (details(view)) }
                            @if let Some(csrf) = &shown.csrf {
                                td { (action_forms::namespace_actions(view, csrf, in_cluster)) }
                            }
                        }
                    }
                }
            }
            @if data.pages > 1 { (pager(data, &shown.search)) }
            p class="muted" id="config-reload" {
                @match data.reload.last_success {
                    Some(at) => { "Config last reloaded at " (time(at)) " (SIGHUP or a change of the file)." }
                    None => { "Config as read at start (a SIGHUP or a change of the file reloads it)." }
                }
            }
            h2 { "The reclaim job" }
            p {
                @if data.cleanup.enabled { "Runs " code { (data.cleanup.schedule.as_str()) } " (UTC)" } @else { "Disabled" }
                "; reclaims Deployments soft-deleted more than " (data.cleanup.older_than_days) " days ago"
                @if data.cleanup.dry_run { " (dry run: lists only)" } "."
                @if let Some(next) = data.next_reclaim { " Next run: " (time(next)) "." }
                @if let Some(note) = data.cleanup.never_reclaims_note() { " " strong { (note) } }
            }
            table {
                thead { tr { th { "run" } th { "started" } th { "trigger" } th { "reclaimed" } th { "finished" } th { "errors" } } }
                tbody {
                    @for run in &data.runs {
                        tr {
                            td { (run.id) @if run.dry_run { " (dry run)" } }
                            td { (time(run.started_at)) }
                            td { (run.trigger) " on " (run.replica) }
                            td { (run.reclaimed) }
                            td { @if let Some(at) = run.finished_at { (time(at)) } @else { "running" } }
                            td { @if let Some(e) = &run.errors { (e) } }
                        }
                    }
                }
            }
            h2 { "Latest events" }
            table {
                thead { tr { th { "at" } th { "kind" } @if grouped { th { "cluster" } } th { "namespace" } th { "Deployment" } th { "actor" } th { "reason" } } }
                tbody {
                    @for event in &data.events {
                        tr {
                            td { (time(event.at)) }
                            td { (event.kind) }
                            @if grouped {
                                td { @if let Some(id) = event.cluster_id { (data.cluster_name(id).map_or_else(|| id.to_string(), str::to_owned)) } }
                            }
                            td { @if let Some(n) = &event.namespace { (n) } }
                            td { @if let Some(r) = &event.release_name { (r) } }
                            td { (event.actor) }
                            td { @if let Some(r) = &event.reason { (r) } }
                        }
                    }
                }
            }
        },
        true,
    )
}
