//! HTTP front: URL routing, query parsing, content negotiation, responses and watch streams.
//!
//! Owns mapping real Kubernetes REST paths (`/api/v1/...`, `/apis/<g>/<v>/...`,
//! `/api/v1/namespaces/<ns>/<resource>/<name>[/status]`, legacy `/watch/` paths) to the verbs of
//! the `ops` module, the discovery and OpenAPI endpoints, health endpoints, the simulator's own
//! `POST /sim/reset`, and streaming watch events.
//!
//! Rules kept here:
//! - Every error is a `Status` body with the matching HTTP code; unknown paths are 404
//!   `the server could not find the requested resource`.
//! - `Accept: ...;as=Table` gets a `Table` for get and list (always JSON). Built-in kinds are
//!   read from `application/vnd.kubernetes.protobuf` bodies and answered in protobuf (objects,
//!   lists, `Status` errors, watch frames) when `Accept` prefers it (see `protobuf`); custom
//!   resources are JSON only, as on a real server (415 for a protobuf body).
//! - `scale` is served for Deployments, ReplicaSets and StatefulSets (see `scale`).
//! - Warnings (dropped unknown fields) go out as `Warning: 299 - "..."` headers.
//! - A watch starts with synthetic ADDED events for the current objects when no (or "0")
//!   resourceVersion is given, else replays the log after that version (an ERROR event with a
//!   410 Expired Status if it is too old), then streams new events that pass the namespace and
//!   selectors until `timeoutSeconds`, the client leaving, or shutdown.
//!   `sendInitialEvents=true` ends the initial batch with the `k8s.io/initial-events-end` bookmark.

use crate::discovery;
use crate::error::ApiError;
use crate::kinds::ResourceType;
use crate::openapi;
use crate::ops::{Params, Resp, State};
use crate::protobuf::{self, Accept};
use crate::scale;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::EventType;
use crate::table;
use crate::validation::Directive;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc, watch};

/// Everything a request handler needs.
pub struct Shared {
    pub state: Arc<Mutex<State>>,
    pub notify: Arc<Notify>,
    pub server_addr: String,
    pub k8s_version: String,
    pub shutdown: watch::Receiver<bool>,
    /// The Kubernetes protobuf messages (from `k8s-pb`), for protobuf bodies and answers.
    pub proto: Arc<protobuf::Table>,
}

fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append("Warning", v);
        }
    }
    r
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code(), &e.to_status(), &[])
}

/// How answers of one request are encoded: JSON, or protobuf for built-in kinds when asked.
#[derive(Clone)]
struct Answer {
    accept: Accept,
    /// The request is about a custom resource (no protobuf form).
    custom: bool,
    proto: Arc<protobuf::Table>,
}

impl Answer {
    fn protobuf(&self) -> bool {
        self.accept.protobuf() && !self.custom
    }

    /// Whether the answer is JSON (neither protobuf nor refused).
    fn json(&self) -> bool {
        !self.protobuf() && (!self.custom || self.accept != Accept::ProtobufOnly)
    }

    /// An object (or list, or Status) answer.
    fn send(&self, code: u16, body: &Value, warnings: &[String]) -> Response {
        if self.custom && self.accept == Accept::ProtobufOnly {
            // a real server offers custom resources in JSON only
            return json_response(
                406,
                &ApiError::NotAcceptable {
                    message: "only the following media types are accepted: application/json, application/yaml".into(),
                }
                .to_status(),
                &[],
            );
        }
        if self.protobuf()
            && let Ok(bytes) = protobuf::encode_envelope(&self.proto, body)
        {
            let mut r = json_response(code, &Value::Null, warnings);
            *r.body_mut() = Body::from(bytes);
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(protobuf::MEDIA_TYPE));
            return r;
        }
        json_response(code, body, warnings)
    }

    fn error(&self, e: &ApiError) -> Response {
        self.send(e.code(), &e.to_status(), &[])
    }
}

fn not_found_path() -> Response {
    json_response(
        404,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "the server could not find the requested resource", "reason": "NotFound", "details": {}, "code": 404}),
        &[],
    )
}

fn text(code: u16, s: &str) -> Response {
    let mut r = Response::new(Body::from(s.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn params(q: &HashMap<String, String>, headers: &HeaderMap) -> Result<Params, ApiError> {
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            )));
        }
    };
    let force = match q.get("force").map(String::as_str) {
        None => None,
        Some("true") | Some("1") => Some(true),
        Some(_) => Some(false),
    };
    let limit = match q.get("limit") {
        Some(l) if !l.is_empty() => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        ),
        _ => None,
    };
    let fm = q.get("fieldManager").cloned();
    if fm.as_ref().is_some_and(|m| m.len() > 128) {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![crate::error::Cause {
                reason: "FieldValueTooLong".into(),
                message: "Too long: may not be more than 128 bytes".into(),
                field: "fieldManager".into(),
            }],
        ));
    }
    Ok(Params {
        dry_run,
        field_manager: fm,
        field_validation: Directive::parse(q.get("fieldValidation").map(String::as_str))?,
        force,
        label_selector: q.get("labelSelector").filter(|s| !s.is_empty()).cloned(),
        field_selector: q.get("fieldSelector").filter(|s| !s.is_empty()).cloned(),
        limit,
        continue_token: q.get("continue").filter(|s| !s.is_empty()).cloned(),
        propagation_policy: q.get("propagationPolicy").cloned(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
    })
}

/// The request's media type without parameters.
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').next().is_some_and(|first| first.contains("as=Table")))
}

fn body_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json: {e}"
        ))
    })
}

/// A request body as JSON: protobuf bodies of built-in kinds are decoded from their envelope.
fn body_value(headers: &HeaderMap, body: &[u8], rt: &ResourceType, proto: &protobuf::Table) -> Result<Value, ApiError> {
    if !protobuf::request_is_protobuf(&content_type(headers)) {
        return body_json(body);
    }
    if rt.is_custom() {
        return Err(ApiError::UnsupportedMediaType {
            message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml".into(),
        });
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    protobuf::decode_envelope(proto, body)
        .map(|d| d.object)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// What a resource URL names.
struct Target {
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    name: Option<String>,
    sub: String,
}

fn resolve(st: &State, group: &str, version: &str, segs: &[&str]) -> Option<Target> {
    let kinds = st.kinds();
    if segs.len() >= 3
        && segs[0] == "namespaces"
        && let Some(rt) = kinds.by_resource(group, version, segs[2]).filter(|t| t.namespaced)
    {
        let rest = &segs[3..];
        return match rest {
            [] => Some(Target {
                rt,
                namespace: Some(segs[1].into()),
                name: None,
                sub: String::new(),
            }),
            [name] => Some(Target {
                rt,
                namespace: Some(segs[1].into()),
                name: Some((*name).into()),
                sub: String::new(),
            }),
            [name, sub] => Some(Target {
                rt,
                namespace: Some(segs[1].into()),
                name: Some((*name).into()),
                sub: (*sub).into(),
            }),
            _ => None,
        };
    }
    let rt = kinds.by_resource(group, version, segs.first()?)?;
    match &segs[1..] {
        [] => Some(Target {
            rt,
            namespace: None,
            name: None,
            sub: String::new(),
        }),
        [name] if !rt.namespaced => Some(Target {
            rt,
            namespace: None,
            name: Some((*name).into()),
            sub: String::new(),
        }),
        [name, sub] if !rt.namespaced => Some(Target {
            rt,
            namespace: None,
            name: Some((*name).into()),
            sub: (*sub).into(),
        }),
        _ => None,
    }
}

/// The one request handler.
pub async fn handle(shared: Arc<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 16 << 20).await {
        Ok(b) => b,
        Err(_) => return error_response(&ApiError::bad_request("request body too large")),
    };
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let q = parse_query(parts.uri.query());
    let method = parts.method.clone();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method.clone(), segs.as_slice()) {
        (Method::GET, ["healthz" | "livez" | "readyz", ..]) => return text(200, "ok"),
        (Method::GET, ["version"]) => return json_response(200, &discovery::version(&shared.k8s_version), &[]),
        (Method::POST, ["sim", "reset"]) => {
            shared.state.lock().expect("state lock").reset();
            shared.notify.notify_one();
            return json_response(
                200,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "message": "simulator state reset"}),
                &[],
            );
        }
        (Method::GET, []) => {
            return json_response(
                200,
                &json!({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v3", "/readyz", "/sim/reset", "/version"]}),
                &[],
            );
        }
        (Method::GET, ["openapi", "v2"]) => return not_found_path(),
        (Method::GET, ["openapi", "v3"]) => {
            let st = shared.state.lock().expect("state lock");
            return json_response(200, &openapi::index(st.kinds(), &shared.k8s_version), &[]);
        }
        (Method::GET, ["openapi", "v3", "api", v]) => {
            let st = shared.state.lock().expect("state lock");
            return match openapi::document(st.kinds(), "", v, &shared.k8s_version) {
                Some(d) => json_response(200, &d, &[]),
                None => not_found_path(),
            };
        }
        (Method::GET, ["openapi", "v3", "apis", g, v]) => {
            let st = shared.state.lock().expect("state lock");
            return match openapi::document(st.kinds(), g, v, &shared.k8s_version) {
                Some(d) => json_response(200, &d, &[]),
                None => not_found_path(),
            };
        }
        (Method::GET, ["api"]) => return json_response(200, &discovery::core_versions(&shared.server_addr), &[]),
        (Method::GET, ["apis"]) => {
            let st = shared.state.lock().expect("state lock");
            return json_response(200, &discovery::groups(st.kinds()), &[]);
        }
        (Method::GET, ["api", v]) => {
            let st = shared.state.lock().expect("state lock");
            return match discovery::resources(st.kinds(), "", v) {
                Some(d) => json_response(200, &d, &[]),
                None => not_found_path(),
            };
        }
        (Method::GET, ["apis", g]) => {
            let st = shared.state.lock().expect("state lock");
            return match discovery::group(st.kinds(), g) {
                Some(d) => json_response(200, &d, &[]),
                None => not_found_path(),
            };
        }
        (Method::GET, ["apis", g, v]) => {
            let st = shared.state.lock().expect("state lock");
            return match discovery::resources(st.kinds(), g, v) {
                Some(d) => json_response(200, &d, &[]),
                None => not_found_path(),
            };
        }
        _ => {}
    }
    let (group, version, mut rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (g, v, rest),
        _ => return not_found_path(),
    };
    let mut watch_path = false;
    if rest.first() == Some(&"watch") {
        watch_path = true;
        rest = &rest[1..];
    }
    let p = match params(&q, &parts.headers) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let target = {
        let st = shared.state.lock().expect("state lock");
        resolve(&st, group, version, rest)
    };
    let Some(t) = target else { return not_found_path() };
    let answer = Answer {
        accept: Accept::parse(parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())),
        custom: t.rt.is_custom(),
        proto: shared.proto.clone(),
    };
    let is_watch = watch_path || matches!(q.get("watch").map(String::as_str), Some("true") | Some("1"));
    let sub_ok = t.sub.is_empty()
        || (t.sub == "status" && t.rt.status_subresource)
        || (t.sub == "scale" && scale::has_scale(&t.rt));
    if !sub_ok {
        return not_found_path();
    }
    if is_watch && method == Method::GET {
        let mut p = p;
        if let Some(name) = &t.name {
            // watching one object is a watch with a name field selector
            let sel = format!("metadata.name={name}");
            p.field_selector = Some(match p.field_selector.take() {
                Some(s) => format!("{s},{sel}"),
                None => sel,
            });
        }
        return start_watch(shared, t.rt, t.namespace, p, &q, answer);
    }
    if method == Method::GET && t.name.is_none() && t.sub.is_empty() && answer.json() && !wants_table(&parts.headers) {
        // A plain JSON list is written from the stored objects, without copying them.
        let listed = shared
            .state
            .lock()
            .expect("state lock")
            .list_json(&t.rt, t.namespace.as_deref(), &p);
        return match listed {
            Ok(bytes) => {
                let mut r = json_response(200, &Value::Null, &[]);
                *r.body_mut() = Body::from(bytes);
                r
            }
            Err(e) => answer.error(&e),
        };
    }
    let result = dispatch(&shared, &method, &t, &p, &parts.headers, &body, &q);
    match result {
        Ok(resp) => {
            if method != Method::GET {
                shared.notify.notify_one();
            }
            if wants_table(&parts.headers) && method == Method::GET {
                return json_response(resp.code, &resp.body, &resp.warnings);
            }
            answer.send(resp.code, &resp.body, &resp.warnings)
        }
        Err(e) => answer.error(&e),
    }
}

fn dispatch(
    shared: &Shared,
    method: &Method,
    t: &Target,
    p: &Params,
    headers: &HeaderMap,
    body: &Bytes,
    q: &HashMap<String, String>,
) -> Result<Resp, ApiError> {
    let mut st = shared.state.lock().expect("state lock");
    let rt = t.rt.clone();
    let ns = t.namespace.clone().unwrap_or_default();
    let table_for = |items: Vec<Value>, rv: &str| -> Value {
        table::table(
            &rt,
            &items,
            rv,
            q.get("includeObject").map(String::as_str).unwrap_or("Metadata"),
        )
    };
    match (&t.name, method) {
        (None, &Method::GET) => {
            let list = st.list(&rt, t.namespace.as_deref(), p)?;
            if wants_table(headers) {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let items: Vec<Value> = items.iter().map(|o| State::present(&rt, o)).collect();
                let mut tbl = table_for(items, list["metadata"]["resourceVersion"].as_str().unwrap_or_default());
                if let Some(c) = list["metadata"].get("continue") {
                    tbl["metadata"]["continue"] = c.clone();
                }
                return Ok(Resp {
                    code: 200,
                    body: tbl,
                    warnings: vec![],
                });
            }
            Ok(Resp {
                code: 200,
                body: list,
                warnings: vec![],
            })
        }
        (None, &Method::POST) => {
            if rt.namespaced && t.namespace.is_none() {
                return Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource (post {})",
                    rt.plural
                )));
            }
            st.create(&rt, &ns, body_value(headers, body, &rt, &shared.proto)?, p)
        }
        (None, &Method::DELETE) => {
            let opts = body_value(headers, body, &rt, &shared.proto)?;
            st.delete_collection(&rt, t.namespace.as_deref(), &opts, p)
        }
        (Some(name), &Method::GET) if t.sub == "scale" => scale::get(&st, &rt, &ns, name),
        (Some(name), &Method::PUT) if t.sub == "scale" => {
            let body = body_value(headers, body, &rt, &shared.proto)?;
            scale::put(&mut st, &rt, &ns, name, &body, p)
        }
        (Some(name), &Method::PATCH) if t.sub == "scale" => {
            scale::patch(&mut st, &rt, &ns, name, &content_type(headers), body, p)
        }
        (Some(name), &Method::GET) => {
            let obj = st.get(&rt, &ns, name)?;
            if wants_table(headers) {
                let rv = st.store.rv().to_string();
                return Ok(Resp {
                    code: 200,
                    body: table_for(vec![obj], &rv),
                    warnings: vec![],
                });
            }
            Ok(Resp {
                code: 200,
                body: obj,
                warnings: vec![],
            })
        }
        (Some(name), &Method::PUT) => st.update(
            &rt,
            &ns,
            name,
            &t.sub,
            body_value(headers, body, &rt, &shared.proto)?,
            p,
        ),
        (Some(name), &Method::PATCH) => st.patch(&rt, &ns, name, &t.sub, &content_type(headers), body, p),
        (Some(name), &Method::DELETE) if t.sub.is_empty() => {
            let opts = body_value(headers, body, &rt, &shared.proto)?;
            st.delete(&rt, &ns, name, &opts, p)
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            method.as_str().to_lowercase(),
            rt.plural
        ))),
    }
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// Watch events as JSON lines, or as length-prefixed protobuf `WatchEvent` frames.
struct WatchEncoder {
    proto: Option<Arc<protobuf::Table>>,
}

impl WatchEncoder {
    fn event(&self, kind: &str, object: &Value) -> Bytes {
        match &self.proto {
            Some(t) => match protobuf::watch_frame(t, kind, object) {
                Ok(frame) => Bytes::from(frame),
                Err(e) => {
                    let status = ApiError::internal(format!("cannot encode watch event: {e}")).to_status();
                    Bytes::from(protobuf::watch_frame(t, "ERROR", &status).unwrap_or_default())
                }
            },
            None => event_line(kind, object),
        }
    }
}

fn start_watch(
    shared: Arc<Shared>,
    rt: Arc<ResourceType>,
    ns: Option<String>,
    p: Params,
    q: &HashMap<String, String>,
    answer: Answer,
) -> Response {
    let enc = WatchEncoder {
        proto: answer.protobuf().then(|| answer.proto.clone()),
    };
    let ct = if enc.proto.is_some() {
        protobuf::WATCH_MEDIA_TYPE
    } else {
        "application/json"
    };
    let ls = match p.label_selector.as_deref().map(LabelSelector::parse).transpose() {
        Ok(l) => l.unwrap_or_default(),
        Err(e) => return answer.error(&ApiError::bad_request(e)),
    };
    let fs = match p
        .field_selector
        .as_deref()
        .map(|s| FieldSelector::parse(s, &rt.kind))
        .transpose()
    {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => return answer.error(&ApiError::bad_request(e)),
    };
    let rv_param = q.get("resourceVersion").cloned().unwrap_or_default();
    let send_initial = q.get("sendInitialEvents").map(String::as_str) == Some("true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let ns = if rt.namespaced { ns } else { None };
    let matches = {
        let rt = rt.clone();
        let ns = ns.clone();
        move |key: &crate::store::ObjKey, obj: &Value| {
            key.group == rt.group
                && key.resource == rt.plural
                && ns.as_ref().is_none_or(|n| &key.namespace == n)
                && ls.matches(obj)
                && fs.matches(obj)
        }
    };
    let mut initial: Vec<Bytes> = vec![];
    let (mut rx, mut last_rv) = {
        let st = shared.state.lock().expect("state lock");
        let rx = st.store.subscribe();
        let now_rv = st.store.rv();
        if rv_param.is_empty() || rv_param == "0" || send_initial {
            for (k, o) in st.store.list(&rt.group, &rt.plural, ns.as_deref()) {
                if matches(k, o) {
                    initial.push(enc.event("ADDED", &State::present(&rt, o)));
                }
            }
            if send_initial {
                let bm = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": now_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
                initial.push(enc.event("BOOKMARK", &bm));
            }
            (rx, now_rv)
        } else {
            let Ok(from) = rv_param.parse::<u64>() else {
                return answer.error(&ApiError::bad_request(format!("invalid resource version: {rv_param}")));
            };
            match st.store.events_since(from) {
                Some(events) => {
                    for ev in events {
                        if matches(&ev.key, &ev.object) {
                            initial.push(enc.event(ev.kind.as_str(), &State::present(&rt, &ev.object)));
                        }
                    }
                }
                None => {
                    let e = ApiError::Gone {
                        message: format!("too old resource version: {from} ({now_rv})"),
                    };
                    initial.push(enc.event("ERROR", &e.to_status()));
                }
            }
            (rx, now_rv.max(from))
        }
    };
    let (tx, body_rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let mut shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        for line in initial {
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(timeout);
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= last_rv || !matches(&ev.key, &ev.object) {
                            continue;
                        }
                        last_rv = ev.rv;
                        let kind = match ev.kind { EventType::Added => "ADDED", EventType::Modified => "MODIFIED", EventType::Deleted => "DELETED" };
                        if tx.send(Ok(enc.event(kind, &State::present(&rt, &ev.object)))).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let e = ApiError::Gone { message: "too old resource version: watch fell behind".into() };
                        let _ = tx.send(Ok(enc.event("ERROR", &e.to_status()))).await;
                        return;
                    }
                    Err(_) => return,
                },
                _ = tx.closed() => return,
                _ = tokio::time::sleep_until(deadline) => return,
                _ = shutdown.changed() => return,
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(body_rx);
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    r
}
