//! A hand-written stand-in for the Kubernetes API server, kept ONLY for the
//! tests that must inject a fault on demand: a status code on one path
//! (403, a one-off 409 or 500), or latency (a timeout, a pass cut short
//! mid-flight). Everything else nspool does with Kubernetes is tested against
//! the real API server (`cluster.rs`, `tests/control-plane`); don't add
//! behaviour tests here.
//!
//! Over real HTTP, for the kinds nspool touches: Namespaces, Roles,
//! RoleBindings (server-side apply, per field manager), SubjectAccessReviews,
//! Events (events.k8s.io/v1), API discovery, and lists of what a namespace
//! holds. Every DELETE and every ownerReference is recorded so tests can
//! fail on them.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct StoredObject {
    /// What each field manager applied last.
    pub managers: BTreeMap<String, Value>,
    pub resource_version: u64,
    pub live: Value,
}

pub struct Fault {
    pub method: Option<Method>,
    pub path_contains: String,
    pub status: u16,
    /// How many requests it hits; `None`: all.
    pub remaining: Option<usize>,
}

#[derive(Default)]
pub struct FakeState {
    /// Keyed by (kind, namespace or "", name).
    pub objects: HashMap<(String, String, String), StoredObject>,
    pub requests: Vec<(String, String)>,
    pub deletes: Vec<String>,
    pub owner_references: Vec<String>,
    /// (namespace, resource, verb) that SubjectAccessReviews deny; "*" matches any namespace.
    pub denied: HashSet<(String, String, String)>,
    pub faults: Vec<Fault>,
    pub latency: Duration,
    pub writes: u64,
    pub next_version: u64,
    /// Events created, in order (events.k8s.io/v1 objects as stored).
    pub events: Vec<Value>,
}

#[derive(Clone)]
pub struct FakeKube {
    pub url: String,
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeKube {
    pub async fn start() -> FakeKube {
        let state = Arc::new(Mutex::new(FakeState {
            next_version: 100,
            ..FakeState::default()
        }));
        let app = Router::new()
            .route("/apis", get(discovery))
            .route(
                "/api/v1/namespaces/{name}",
                get(get_namespace)
                    .patch(apply_namespace)
                    .delete(refuse_delete),
            )
            .route(
                "/api/v1/namespaces/{ns}/{plural}",
                get(list_core).delete(refuse_delete),
            )
            .route(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{kind}/{name}",
                get(get_rbac).patch(apply_rbac).delete(refuse_delete),
            )
            .route(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                post(review),
            )
            .route(
                "/apis/events.k8s.io/v1/namespaces/{ns}/events",
                post(create_event),
            )
            .fallback(unknown)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeKube { url, state }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<(Value, u64)> {
        self.with(|s| {
            s.objects
                .get(&(kind.to_owned(), namespace.to_owned(), name.to_owned()))
                .map(|o| (o.live.clone(), o.resource_version))
        })
    }

    /// A namespace made by hand (option 2), owned by `kubectl`.
    #[allow(dead_code)] // benches/release_storm.rs
    pub fn create_namespace(&self, name: &str) {
        self.with(|s| {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            let key = ("Namespace".to_owned(), String::new(), name.to_owned());
            let _ = store(s, key, "kubectl", body);
        });
    }

    /// An object a Deployment (or anyone but nspool) put in a namespace:
    /// `kind` as Kubernetes spells it, `extra` merged into the object (`type` of a Secret).
    #[allow(dead_code)] // benches/release_storm.rs
    pub fn put(&self, kind: &str, namespace: &str, name: &str, extra: Value) {
        self.with(|s| {
            let mut body = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}});
            merge(&mut body, &extra);
            let key = (kind.to_owned(), namespace.to_owned(), name.to_owned());
            let _ = store(s, key, "helm", body);
        });
    }

    pub fn fail(
        &self,
        method: Option<Method>,
        path_contains: &str,
        status: u16,
        remaining: Option<usize>,
    ) {
        self.with(|s| {
            s.faults.push(Fault {
                method,
                path_contains: path_contains.to_owned(),
                status,
                remaining,
            })
        });
    }

    /// One Kubernetes pass of `service`'s worker against this server.
    pub async fn pass(
        &self,
        service: &nspool::pool::PoolService,
    ) -> nspool::kube::reconcile::PassReport {
        let kube = nspool::kube::client::KubeClient::for_url(&self.url, 16).unwrap();
        nspool::kube::reconcile::KubeWorker::new(service, kube)
            .pass(false)
            .await
            .unwrap()
    }

    /// The Events created in `namespace`, as (reason, note), in order.
    pub fn events_in(&self, namespace: &str) -> Vec<(String, String)> {
        self.with(|s| {
            s.events
                .iter()
                .filter(|e| e["metadata"]["namespace"] == namespace)
                .map(|e| {
                    (
                        e["reason"].as_str().unwrap_or_default().to_owned(),
                        e["note"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
    }

    /// Fails the test if nspool ever sent a DELETE or an ownerReference.
    pub fn assert_never_deleted(&self) {
        self.with(|s| {
            assert!(s.deletes.is_empty(), "DELETE sent: {:?}", s.deletes);
            assert!(
                s.owner_references.is_empty(),
                "ownerReferences sent: {:?}",
                s.owner_references
            );
        });
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

/// Latency and injected faults, applied to every request.
async fn gate(state: &Arc<Mutex<FakeState>>, method: &Method, uri: &Uri) -> Option<Response> {
    let (latency, fault) = {
        let mut s = state.lock().unwrap();
        s.requests.push((method.to_string(), uri.to_string()));
        let path = uri.to_string();
        let fault = s.faults.iter_mut().find_map(|f| {
            let hits = f.method.as_ref().is_none_or(|m| m == method)
                && path.contains(&f.path_contains)
                && f.remaining != Some(0);
            if hits {
                if let Some(n) = f.remaining.as_mut() {
                    *n -= 1;
                }
                Some(f.status)
            } else {
                None
            }
        });
        (s.latency, fault)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    fault.map(|code| match code {
        403 => status(403, "Forbidden", "injected: forbidden"),
        409 => status(409, "Conflict", "injected: conflict"),
        code => status(code, "InternalError", "injected: server error"),
    })
}

fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

fn without_server_fields(mut object: Value) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for server_field in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
        ] {
            meta.remove(server_field);
        }
    }
    object
}

/// Server-side apply: the live object is every manager's applied config
/// merged, so what a manager stops applying is gone unless another applies it.
fn store(s: &mut FakeState, key: (String, String, String), manager: &str, body: Value) -> Value {
    if body.pointer("/metadata/ownerReferences").is_some() {
        s.owner_references.push(format!("{key:?}"));
    }
    let body = without_server_fields(body);
    if key.0 == "Namespace" && !s.objects.contains_key(&key) {
        seed_namespace(s, &key.2);
    }
    let object = s.objects.entry(key.clone()).or_default();
    if object.managers.get(manager) == Some(&body) {
        return object.live.clone();
    }
    object.managers.insert(manager.to_owned(), body);
    let mut content = Value::Object(Map::new());
    for applied in object.managers.values() {
        merge(&mut content, applied);
    }
    let changed = without_server_fields(object.live.clone()) != content;
    let managers: Vec<Value> = object
        .managers
        .keys()
        .map(|m| json!({"manager": m, "operation": "Apply"}))
        .collect();
    if changed {
        s.next_version += 1;
        s.writes += 1;
    }
    let version = s.next_version;
    let object = s.objects.get_mut(&key).unwrap();
    if changed {
        object.resource_version = version;
    }
    content["metadata"]["resourceVersion"] = json!(object.resource_version.to_string());
    // A uid for as long as the object lives (the claim labels carry it; the
    // stand-in does not check it: the real server's refusal is tested there).
    content["metadata"]["uid"] = json!(format!("uid-{}-{}-{}", key.0, key.1, key.2));
    content["metadata"]["managedFields"] = Value::Array(managers);
    object.live = content.clone();
    content
}

/// What a real cluster puts into every new namespace: the `default`
/// ServiceAccount (token controller) and the `kube-root-ca.crt` ConfigMap
/// (root CA publisher). Neither is a leftover.
fn seed_namespace(s: &mut FakeState, namespace: &str) {
    // The cluster's own controllers write these: not counted as client writes.
    let writes = s.writes;
    for (kind, name, extra) in [
        ("ServiceAccount", "default", json!({})),
        (
            "ConfigMap",
            "kube-root-ca.crt",
            json!({"data": {"ca.crt": "-----BEGIN CERTIFICATE-----"}}),
        ),
    ] {
        let mut body = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}});
        merge(&mut body, &extra);
        let key = (kind.to_owned(), namespace.to_owned(), name.to_owned());
        let manager = if kind == "ServiceAccount" {
            "kube-controller-manager"
        } else {
            "kube-root-ca-publisher"
        };
        let _ = store(s, key, manager, body);
    }
    s.writes = writes;
}

fn core_kind(plural: &str) -> Option<&'static str> {
    match plural {
        "pods" => Some("Pod"),
        "persistentvolumeclaims" => Some("PersistentVolumeClaim"),
        "services" => Some("Service"),
        "secrets" => Some("Secret"),
        "configmaps" => Some("ConfigMap"),
        "serviceaccounts" => Some("ServiceAccount"),
        _ => None,
    }
}

#[derive(serde::Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

/// `GET /api/v1/namespaces/{ns}/{plural}`: a list, in name order, at most
/// `limit` items (with a `continue` token when more are left, as the API does).
async fn list_core(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    Path((ns, plural)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Some(fault) = gate(&state, &method, &uri).await {
        return fault;
    }
    let Some(kind) = core_kind(&plural) else {
        return status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({plural})"),
        );
    };
    let s = state.lock().unwrap();
    let mut items: Vec<(&String, Value)> = s
        .objects
        .iter()
        .filter(|((k, n, _), _)| k == kind && *n == ns)
        .map(|((_, _, name), o)| (name, o.live.clone()))
        .collect();
    items.sort_by(|a, b| a.0.cmp(b.0));
    let limit = query.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
    let more = items.len() > limit;
    let items: Vec<Value> = items.into_iter().take(limit).map(|(_, v)| v).collect();
    let mut metadata = json!({"resourceVersion": s.next_version.to_string()});
    if more {
        metadata["continue"] = json!("more");
    }
    axum::Json(json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": metadata, "items": items}))
        .into_response()
}

#[derive(serde::Deserialize)]
struct ApplyQuery {
    #[serde(rename = "fieldManager")]
    field_manager: Option<String>,
}

async fn get_namespace(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    Path(name): Path<String>,
) -> Response {
    if let Some(fault) = gate(&state, &method, &uri).await {
        return fault;
    }
    let s = state.lock().unwrap();
    match s
        .objects
        .get(&("Namespace".to_owned(), String::new(), name.clone()))
    {
        Some(o) => axum::Json(o.live.clone()).into_response(),
        None => status(404, "NotFound", &format!("namespaces \"{name}\" not found")),
    }
}

async fn apply_namespace(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    Path(name): Path<String>,
    Query(query): Query<ApplyQuery>,
    body: Bytes,
) -> Response {
    if let Some(fault) = gate(&state, &method, &uri).await {
        return fault;
    }
    let Some(manager) = query.field_manager else {
        return status(400, "BadRequest", "fieldManager is required for apply");
    };
    let body: Value = serde_json::from_slice(&body).unwrap();
    let mut s = state.lock().unwrap();
    let live = store(
        &mut s,
        ("Namespace".to_owned(), String::new(), name),
        &manager,
        body,
    );
    axum::Json(live).into_response()
}

fn rbac_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "roles" => Some("Role"),
        "rolebindings" => Some("RoleBinding"),
        _ => None,
    }
}

async fn get_rbac(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    Path((ns, kind, name)): Path<(String, String, String)>,
) -> Response {
    if let Some(fault) = gate(&state, &method, &uri).await {
        return fault;
    }
    let Some(kind) = rbac_kind(&kind) else {
        return status(404, "NotFound", "no such kind");
    };
    let s = state.lock().unwrap();
    match s.objects.get(&(kind.to_owned(), ns, name.clone())) {
        Some(o) => axum::Json(o.live.clone()).into_response(),
        None => status(404, "NotFound", &format!("{kind} \"{name}\" not found")),
    }
}

async fn apply_rbac(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    Path((ns, kind, name)): Path<(String, String, String)>,
    Query(query): Query<ApplyQuery>,
    body: Bytes,
) -> Response {
    if let Some(fault) = gate(&state, &method, &uri).await {
        return fault;
    }
    let Some(kind) = rbac_kind(&kind) else {
        return status(404, "NotFound", "no such kind");
    };
    let Some(manager) = query.field_manager else {
        return status(400, "BadRequest", "fieldManager is required for apply");
    };
    let mut s = state.lock().unwrap();
    if !s
        .objects
        .contains_key(&("Namespace".to_owned(), String::new(), ns.clone()))
    {
        return status(404, "NotFound", &format!("namespaces \"{ns}\" not found"));
    }
    let body: Value = serde_json::from_slice(&body).unwrap();
    let live = store(&mut s, (kind.to_owned(), ns, name), &manager, body);
    axum::Json(live).into_response()
}

async fn review(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    if let Some(fault) = gate(&state, &method, &uri).await {
        return fault;
    }
    let mut review: Value = serde_json::from_slice(&body).unwrap();
    let attrs = &review["spec"]["resourceAttributes"];
    let ns = attrs["namespace"].as_str().unwrap_or("").to_owned();
    let resource = attrs["resource"].as_str().unwrap_or("").to_owned();
    let verb = attrs["verb"].as_str().unwrap_or("").to_owned();
    let s = state.lock().unwrap();
    let denied = s
        .denied
        .contains(&(ns.clone(), resource.clone(), verb.clone()))
        || s.denied.contains(&("*".to_owned(), resource, verb));
    review["status"] = json!({"allowed": !denied});
    axum::Json(review).into_response()
}

async fn discovery(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
) -> Response {
    if let Some(fault) = gate(&state, &method, &uri).await {
        return fault;
    }
    let groups: Vec<Value> = [
        "apps",
        "batch",
        "autoscaling",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "authorization.k8s.io",
        "authentication.k8s.io",
        "policy",
    ]
    .iter()
    .map(|g| {
        json!({"name": g, "versions": [{"groupVersion": format!("{g}/v1"), "version": "v1"}],
        "preferredVersion": {"groupVersion": format!("{g}/v1"), "version": "v1"}})
    })
    .collect();
    axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        .into_response()
}

async fn refuse_delete(State(state): State<Arc<Mutex<FakeState>>>, uri: Uri) -> Response {
    state.lock().unwrap().deletes.push(uri.to_string());
    status(405, "MethodNotAllowed", "nspool must never delete")
}

/// What the API server's validation of an events.k8s.io/v1 create refuses
/// (`ValidateEventCreate`): the reasons, empty when the Event is valid.
fn event_problems(ns: &str, event: &Value) -> Vec<String> {
    let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str).unwrap_or("");
    let mut problems = Vec::new();
    let name = text("/metadata/name");
    let dns_subdomain = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if !dns_subdomain {
        problems.push(format!("metadata.name {name:?}: not a DNS subdomain"));
    }
    if !matches!(text("/metadata/namespace"), "") && text("/metadata/namespace") != ns {
        problems.push("metadata.namespace: does not match the request".into());
    }
    if text("/eventTime").is_empty() {
        problems.push("eventTime: Required value".into());
    }
    if !matches!(text("/type"), "Normal" | "Warning") {
        problems.push(format!("type: invalid {:?}", text("/type")));
    }
    let controller = text("/reportingController");
    let qualified = |name: &str| {
        let last = name.rsplit('/').next().unwrap_or("");
        !last.is_empty()
            && last.len() <= 63
            && last
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && last.starts_with(|c: char| c.is_ascii_alphanumeric())
            && last.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if !qualified(controller) || controller.len() > 128 {
        problems.push(format!(
            "reportingController {controller:?}: not a qualified name"
        ));
    }
    for (field, limit) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
        let value = text(&format!("/{field}"));
        if value.is_empty() || value.len() > limit {
            problems.push(format!("{field}: required, at most {limit} characters"));
        }
    }
    if text("/note").len() > 1024 {
        problems.push("note: more than 1024 bytes".into());
    }
    if event.get("regarding").is_none() {
        problems.push("regarding: Required value".into());
    }
    if text("/regarding/namespace").is_empty() && !matches!(ns, "default" | "kube-system") {
        problems.push("regarding.namespace: does not match event.namespace".into());
    }
    for deprecated in [
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
        "deprecatedCount",
    ] {
        if event.get(deprecated).is_some_and(|v| !v.is_null()) {
            problems.push(format!("{deprecated}: needs to be unset"));
        }
    }
    problems
}

async fn create_event(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    Path(ns): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(fault) = gate(&state, &method, &uri).await {
        return fault;
    }
    let Ok(mut event) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "not JSON");
    };
    let problems = event_problems(&ns, &event);
    if !problems.is_empty() {
        return status(
            422,
            "Invalid",
            &format!("Event is invalid: {}", problems.join("; ")),
        );
    }
    let mut s = state.lock().unwrap();
    let namespace_key = ("Namespace".to_owned(), String::new(), ns.clone());
    if !s.objects.contains_key(&namespace_key) {
        return status(404, "NotFound", &format!("namespaces \"{ns}\" not found"));
    }
    let name = event["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if s.events.iter().any(|e| {
        e["metadata"]["namespace"] == ns.as_str() && e["metadata"]["name"] == name.as_str()
    }) {
        return status(
            409,
            "AlreadyExists",
            &format!("events.events.k8s.io \"{name}\" already exists"),
        );
    }
    s.next_version += 1;
    event["metadata"]["namespace"] = json!(ns);
    event["metadata"]["resourceVersion"] = json!(s.next_version.to_string());
    s.events.push(event.clone());
    (StatusCode::CREATED, axum::Json(event)).into_response()
}

async fn unknown(State(state): State<Arc<Mutex<FakeState>>>, method: Method, uri: Uri) -> Response {
    let mut s = state.lock().unwrap();
    if method == Method::DELETE {
        s.deletes.push(uri.to_string());
    }
    s.requests.push((method.to_string(), uri.to_string()));
    status(
        404,
        "NotFound",
        &format!("the fake API server does not serve {method} {uri}"),
    )
}
