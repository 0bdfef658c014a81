//! `sgsim serve`: the EC2 Query API and the ECS RPC API on localhost, for the CLIs, SDKs and
//! scripts people already use (feature `serve`).
//!
//! One endpoint answers both APIs at `/`. A request's API is told by, in order: ACS3
//! signatures and `x-acs-*` headers (ECS); SigV4 (EC2); `Version` (`2016-11-15` EC2,
//! `2014-05-26` ECS); Alibaba's common parameters (`SignatureMethod`, `Format`, `RegionId`);
//! the action's name; and finally the providers the state holds. The request is read by
//! [`RawRequest::from_http`], the same reader `--request` text with header lines uses.
//!
//! - Revokes go through [`store::Store::revoke`], i.e. the providers' own revoke code, and
//!   answer byte for byte what `sgsim revoke` prints for the same request but for the
//!   request ID: every answer of the server, errors and ClientToken replays included,
//!   carries an ID of its own (as both clouds do); `sgsim revoke`'s is derived from the
//!   request, so that its output is reproducible. An accepted revoke
//!   swaps the served state in one atomic store; describes load a snapshot and never wait.
//! - Describes ([`ec2`], [`ecs`]) are rendered from the model.
//! - `GET /sgsim/changes`, `GET /sgsim/report.json` / `report.html` (the what-if of the
//!   session: baseline against now), `GET /sgsim/state.json` (the served state as a
//!   snapshot) and `POST /sgsim/reset`.
//! - Signatures ([`sign`]) are accepted as sent, or verified against a credentials file:
//!   the signature, the signed payload hash against the body, the request's age (15
//!   minutes either way, presigned expiry) by [`Config::clock`], and Alibaba's nonces.
//! - Limits: bodies of at most [`Limits::body`] bytes, header blocks of at most
//!   [`Limits::header_bytes`] and [`Limits::headers`] headers, a header read timeout and a
//!   request timeout; anything malformed gets the provider's error, never a panic.
//!
//! Unlike the rest of the library this module reads the clock (the log's times, timeouts,
//! request IDs; signatures' age by [`Config::clock`], which tests replace).

pub mod ec2;
pub mod ecs;
pub mod sign;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Request, State as AxState};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::model::{Provider, State};
use crate::provider::{request_id, ApiError, Params, RawRequest, RequestError};
use crate::whatif;
use store::{Api, Store};

/// A hook that adds the traffic sections to the session's report (the binary judges its
/// `--traffic` files with it). Given the plan and the baseline state.
pub type TrafficHook =
    Arc<dyn Fn(&mut whatif::Plan, &State) -> Result<(), String> + Send + Sync + 'static>;

/// Bounds on what a client may send: [`Limits::default`], then the fields to change.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Largest body, bytes.
    pub body: usize,
    /// Largest header block, bytes.
    pub header_bytes: usize,
    /// Most headers in one request.
    pub headers: usize,
    /// Time a client has to send its headers.
    pub header_timeout: Duration,
    /// Time the server has to answer one request.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body: 1 << 20,
            header_bytes: 64 << 10,
            headers: 100,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// What the server needs: [`Config::new`], then the fields to change.
#[non_exhaustive]
pub struct Config {
    /// The served state.
    pub store: Store,
    /// When set, signatures are verified with these.
    pub credentials: Option<sign::Credentials>,
    /// Adds traffic to the session report.
    pub traffic: Option<TrafficHook>,
    /// Bounds.
    pub limits: Limits,
    /// Print one line per request on stderr.
    pub log: bool,
    /// The time signatures are checked against (their age, presigned expiry, nonces).
    pub clock: Clock,
}

impl Config {
    /// Serves `store`: no signature checks, no traffic, default [`Limits`], no log.
    pub fn new(store: Store) -> Config {
        Config {
            store,
            credentials: None,
            traffic: None,
            limits: Limits::default(),
            log: false,
            clock: Arc::new(SystemTime::now),
        }
    }
}

struct Shared {
    store: Store,
    credentials: Option<sign::Credentials>,
    traffic: Option<TrafficHook>,
    limits: Limits,
    log: bool,
    ids: Ids,
    clock: Clock,
    nonces: sign::Nonces,
}

/// Request IDs, one of its own for every answer: the request's text, the server's start
/// time and a counter, hashed into the provider's shape. (`sgsim revoke` keeps the ID
/// derived from the request alone, so its output stays reproducible.)
struct Ids {
    boot: u128,
    next: std::sync::atomic::AtomicU64,
}

impl Ids {
    fn new() -> Ids {
        Ids {
            boot: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A new ID (upper-case UUID shape; EC2 answers it in lower case).
    fn fresh(&self, seed: &str) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        request_id(&format!("{seed}|{}|{n}", self.boot))
    }
}

/// The current time as RFC 3339 (UTC, milliseconds).
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (year, month, day, h, m, sec) = crate::model::time::civil(d.as_secs() as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{:03}Z",
        d.subsec_millis()
    )
}

/// The clock signatures are judged by (the system's unless a test says otherwise).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync + 'static>;

/// Seconds since the Unix epoch (negative before it).
fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// What a handler tells the request log.
#[derive(Clone, Debug, Default)]
struct LogNote(String);

/// The router: both APIs on `/` (any path not under `/sgsim/`), the session endpoints.
fn router(shared: Arc<Shared>) -> Router {
    let limits = shared.limits;
    Router::new()
        .route("/sgsim/changes", get(changes))
        .route("/sgsim/report.json", get(report_json))
        .route("/sgsim/report.html", get(report_html))
        .route("/sgsim/state.json", get(state_json))
        .route("/sgsim/reset", post(reset))
        .fallback(api)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            log_line,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .with_state(shared)
}

async fn log_line(
    AxState(shared): AxState<Arc<Shared>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    if shared.log {
        let note = resp
            .extensions()
            .get::<LogNote>()
            .map(|n| n.0.clone())
            .unwrap_or_default();
        eprintln!(
            "{} {method} {path} {} {:.1}ms {note}",
            now_rfc3339(),
            resp.status().as_u16(),
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    resp
}

fn with_note(mut resp: Response, note: String) -> Response {
    resp.extensions_mut().insert(LogNote(note));
    resp
}

fn body(status: u16, content_type: &'static str, text: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, [(header::CONTENT_TYPE, content_type)], text).into_response()
}

const XML: &str = "text/xml;charset=UTF-8";
const JSON: &str = "application/json;charset=UTF-8";

async fn changes(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let changes = shared.store.changes();
    body(
        200,
        JSON,
        serde_json::to_string_pretty(&json!({ "changes": changes })).unwrap_or_default(),
    )
}

async fn state_json(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let state = shared.store.current();
    let mut v = serde_json::to_value(&*state).unwrap_or_default();
    if let serde_json::Value::Object(o) = &mut v {
        o.insert("sgsim_snapshot".into(), json!(1));
    }
    body(200, JSON, v.to_string())
}

async fn reset(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let s = Arc::clone(&shared);
    match tokio::task::spawn_blocking(move || s.store.reset()).await {
        Ok(Ok(())) => body(200, JSON, json!({"reset": true}).to_string()),
        Ok(Err(e)) => body(500, JSON, json!({"error": e.to_string()}).to_string()),
        Err(e) => body(500, JSON, json!({"error": e.to_string()}).to_string()),
    }
}

async fn plan(shared: &Arc<Shared>) -> Result<whatif::report::Report, String> {
    let s = Arc::clone(shared);
    tokio::task::spawn_blocking(move || {
        let mut plan = s.store.plan().map_err(|e| e.to_string())?;
        if let Some(hook) = &s.traffic {
            let baseline = s.store.baseline();
            hook(&mut plan, &baseline)?;
        }
        Ok(plan.report)
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn report_json(AxState(shared): AxState<Arc<Shared>>) -> Response {
    match plan(&shared).await {
        Ok(r) => body(
            200,
            JSON,
            serde_json::to_string_pretty(&r).unwrap_or_default(),
        ),
        Err(e) => body(500, JSON, json!({ "error": e }).to_string()),
    }
}

async fn report_html(AxState(shared): AxState<Arc<Shared>>) -> Response {
    match plan(&shared).await {
        Ok(r) => body(200, "text/html;charset=UTF-8", whatif::render::html(&r)),
        Err(e) => body(500, JSON, json!({ "error": e }).to_string()),
    }
}

/// Which API a request speaks, when its headers or parameters say so (see the module
/// docs); `None` leaves it to the request's shape ([`crate::provider::provider_of`]).
fn which_api(headers: &HeaderMap, params: &Params) -> Option<Api> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.starts_with("ACS3-") || headers.keys().any(|k| k.as_str().starts_with("x-acs-")) {
        return Some(Api::Ecs);
    }
    if auth.starts_with("AWS4-") || params.get("X-Amz-Algorithm").is_some() {
        return Some(Api::Ec2);
    }
    match params.get("Version") {
        Some("2016-11-15") => return Some(Api::Ec2),
        Some("2014-05-26") => return Some(Api::Ecs),
        _ => {}
    }
    if ["SignatureMethod", "SignatureNonce", "Format", "RegionId"]
        .iter()
        .any(|k| params.get(k).is_some())
    {
        return Some(Api::Ecs);
    }
    match params.get("Action").unwrap_or("") {
        "RevokeSecurityGroupIngress"
        | "DescribeSecurityGroupRules"
        | "DescribeVpcs"
        | "DescribeManagedPrefixLists"
        | "GetManagedPrefixListEntries" => Some(Api::Ec2),
        "RevokeSecurityGroup" | "DescribeSecurityGroupAttribute" => Some(Api::Ecs),
        _ => None,
    }
}

/// The API of the providers the state holds: ECS when it holds Alibaba groups only.
fn state_api(state: &State) -> Api {
    let aws = state.groups.iter().any(|g| g.provider == Provider::Aws);
    let ali = state.groups.iter().any(|g| g.provider == Provider::Aliyun);
    if ali && !aws {
        Api::Ecs
    } else {
        Api::Ec2
    }
}

/// The provider's error response, with the request ID `id`.
fn api_error(api: Api, e: &ApiError, id: &str, xml: bool) -> Response {
    match api {
        Api::Ec2 => {
            let (status, text) = ec2::error(&id.to_ascii_lowercase(), e);
            body(status, XML, text)
        }
        Api::Ecs => {
            let text = ecs::error(id, e, xml);
            body(e.status, if xml { XML } else { JSON }, text)
        }
    }
}

fn auth_error(api: Api, verdict: &sign::Verdict) -> ApiError {
    use sign::Verdict;
    const EC2_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
    const ECS_MISMATCH: &str = "Specified signature is not matched with our calculation.";
    match (api, verdict) {
        (Api::Ec2, Verdict::UnknownKey(_)) | (Api::Ec2, Verdict::Missing) => ApiError::new(
            "AuthFailure",
            401,
            "AWS was not able to validate the provided access credentials",
        ),
        (Api::Ec2, Verdict::BodyMismatch { claimed, computed }) => ApiError::new(
            "XAmzContentSHA256Mismatch",
            400,
            format!("The provided 'x-amz-content-sha256' header does not match what was computed. Client: {claimed}, computed: {computed}"),
        ),
        (Api::Ec2, Verdict::Expired(why)) => ApiError::new("RequestExpired", 403, why.clone()),
        (Api::Ec2, Verdict::ScopeDate(why)) => {
            ApiError::new("SignatureDoesNotMatch", 403, why.clone())
        }
        (Api::Ec2, Verdict::Malformed(why)) => {
            ApiError::new("IncompleteSignature", 403, why.clone())
        }
        (Api::Ec2, _) => ApiError::new("SignatureDoesNotMatch", 403, EC2_MISMATCH),
        (Api::Ecs, Verdict::UnknownKey(_)) => ApiError::new(
            "InvalidAccessKeyId.NotFound",
            404,
            "Specified access key is not found.",
        ),
        (Api::Ecs, Verdict::Missing) | (Api::Ecs, Verdict::Malformed(_)) => ApiError::new(
            "IncompleteSignature",
            400,
            "The request signature does not conform to Aliyun standards.",
        ),
        (Api::Ecs, Verdict::Mismatch(Some(to_sign))) => ApiError::new(
            "SignatureDoesNotMatch",
            400,
            format!("{ECS_MISMATCH} server string to sign is:{to_sign}"),
        ),
        (Api::Ecs, Verdict::MissingParameter(name)) => ApiError::new(
            "MissingParameter",
            400,
            format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
        ),
        (Api::Ecs, Verdict::BadTime(_)) => ApiError::new(
            "InvalidTimeStamp.Format",
            400,
            "Specified time stamp or date value is not well formatted.",
        ),
        (Api::Ecs, Verdict::Expired(_)) => ApiError::new(
            "InvalidTimeStamp.Expired",
            400,
            "Specified time stamp or date value is expired.",
        ),
        (Api::Ecs, Verdict::NonceUsed) => ApiError::new(
            "SignatureNonceUsed",
            400,
            "Specified signature nonce was used already.",
        ),
        // A body that differs from the signed payload hash is a signature mismatch to ECS.
        (Api::Ecs, _) => ApiError::new("SignatureDoesNotMatch", 400, ECS_MISMATCH),
    }
}

fn request_error(api: Api, e: &RequestError) -> ApiError {
    match (api, e) {
        (Api::Ec2, RequestError::UnknownAction(a)) if a.is_empty() => ApiError::new(
            "MissingAction",
            400,
            "The request must contain the parameter Action",
        ),
        (Api::Ec2, RequestError::UnknownAction(a)) => ec2::invalid_action(a),
        (Api::Ecs, RequestError::UnknownAction(a)) if a.is_empty() => ApiError::new(
            "MissingParameter",
            400,
            "The input parameter \"Action\" that is mandatory for processing this request is not supplied.",
        ),
        (Api::Ecs, RequestError::UnknownAction(_)) => ecs::invalid_action(),
        (Api::Ec2, other) => ApiError::new("InvalidParameterValue", 400, other.to_string()),
        (Api::Ecs, other) => ApiError::new("InvalidParameter", 400, other.to_string()),
    }
}

/// Both APIs.
async fn api(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let (parts, raw_body) = req.into_parts();
    let state = shared.store.current();
    let query = parts.uri.query().unwrap_or("").to_string();
    let bytes: Bytes = match axum::body::to_bytes(raw_body, shared.limits.body).await {
        Ok(b) => b,
        Err(_) => {
            let params = Params::from_query(&query);
            let api = which_api(&parts.headers, &params).unwrap_or_else(|| state_api(&state));
            let e = ApiError::new(
                "RequestEntityTooLarge",
                413,
                format!(
                    "The request body is larger than {} bytes.",
                    shared.limits.body
                ),
            );
            let id = shared.ids.fresh(&query);
            return with_note(api_error(api, &e, &id, false), "body too large".into());
        }
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let is_form = !text.trim_start().starts_with('{');
    let mut all = Params::from_query(&query);
    if is_form {
        all.0.extend(Params::from_query(&text).0);
    }
    let told = which_api(&parts.headers, &all);
    let mut api = told.unwrap_or_else(|| state_api(&state));
    let xml = api == Api::Ecs && ecs::wants_xml(&all);
    let id = shared.ids.fresh(&format!("{query}&{text}"));
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if let Some(creds) = &shared.credentials {
        let signed = sign::Signed {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: &query,
            headers: &headers,
            body: &bytes,
        };
        let now = unix_secs((shared.clock)());
        let verdict = signed.verify(creds, &all.0, now, &shared.nonces);
        if verdict != sign::Verdict::Good {
            let e = auth_error(api, &verdict);
            return with_note(
                api_error(api, &e, &id, xml),
                format!(
                    "{api:?} {} auth {}",
                    all.get("Action").unwrap_or("-"),
                    e.code
                ),
            );
        }
    }
    if !matches!(parts.method, Method::GET | Method::POST) {
        let e = match api {
            Api::Ec2 => ApiError::new(
                "InvalidHttpRequest",
                400,
                "The HTTP method is not supported.",
            ),
            Api::Ecs => ecs::invalid_action(),
        };
        return with_note(api_error(api, &e, &id, xml), format!("{api:?} bad method"));
    }
    let request = match RawRequest::from_http(
        &query,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &text,
    ) {
        Ok(r) => r,
        Err(e) => {
            let e = request_error(api, &e);
            return with_note(
                api_error(api, &e, &id, xml),
                format!("{api:?} - {}", e.code),
            );
        }
    };
    if told.is_none() && request.action().is_some_and(|a| a.starts_with("Revoke")) {
        api = match crate::provider::provider_of(&state, &request) {
            Ok(Provider::Aliyun) => Api::Ecs,
            _ => Api::Ec2,
        };
    }
    let action = request.action().unwrap_or("").to_string();
    let note = |code: &str| {
        format!(
            "{api:?} {} {code}",
            if action.is_empty() { "-" } else { &action }
        )
    };
    let revoke = match api {
        Api::Ec2 => matches!(
            action.as_str(),
            "RevokeSecurityGroupIngress" | "RevokeSecurityGroupEgress"
        ),
        Api::Ecs => matches!(
            action.as_str(),
            "RevokeSecurityGroup" | "RevokeSecurityGroupEgress"
        ),
    };
    if revoke {
        let s = Arc::clone(&shared);
        let rid = id.clone();
        let done = tokio::task::spawn_blocking(move || {
            s.store
                .revoke(api, &request, &rid, now_rfc3339(), |o| match api {
                    Api::Ec2 => o.body(None),
                    Api::Ecs if xml => o.xml.clone(),
                    Api::Ecs => o.json.to_string(),
                })
        })
        .await;
        return match done {
            Ok(Ok(Ok(applied))) => {
                let code = applied
                    .change
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("ok revoked={}", applied.change.revoked.len()));
                let ct = if api == Api::Ec2 || xml { XML } else { JSON };
                with_note(
                    body(applied.outcome.status, ct, applied.change.response),
                    note(&code),
                )
            }
            Ok(Ok(Err(e))) => with_note(
                body(500, JSON, json!({"error": e.to_string()}).to_string()),
                note("data-dir-failure"),
            ),
            Ok(Err(e)) => {
                let e = request_error(api, &e);
                with_note(api_error(api, &e, &id, xml), note(&e.code))
            }
            Err(e) => with_note(
                body(500, JSON, json!({"error": e.to_string()}).to_string()),
                note("internal"),
            ),
        };
    }
    let RawRequest::Query(params) = &request else {
        let e = request_error(api, &RequestError::NotARequest);
        return with_note(api_error(api, &e, &id, xml), note(&e.code));
    };
    match api {
        Api::Ec2 if ec2::is_describe(&action) => {
            match ec2::describe(&state, &action, params, &id.to_ascii_lowercase()) {
                Ok(text) => with_note(body(200, XML, text), note("ok")),
                Err(e) => with_note(api_error(api, &e, &id, xml), note(&e.code)),
            }
        }
        Api::Ecs if ecs::is_describe(&action) => {
            match ecs::describe(&state, &action, params, &id) {
                Ok(v) if xml => with_note(body(200, XML, ecs::to_xml(&action, &v)), note("ok")),
                Ok(v) => with_note(body(200, JSON, v.to_string()), note("ok")),
                Err(e) => with_note(api_error(api, &e, &id, xml), note(&e.code)),
            }
        }
        _ => {
            let e = request_error(api, &RequestError::UnknownAction(action.clone()));
            with_note(api_error(api, &e, &id, xml), note(&e.code))
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Only loopback addresses are served.
    #[error("{0}: sgsim serve binds loopback addresses only (127.0.0.1 or ::1)")]
    NotLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The runtime failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Serves until SIGTERM or Ctrl-C, then lets requests in flight finish (up to 5 s).
/// `ready` is called with the bound address once the server listens.
pub async fn serve(
    config: Config,
    bind: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), Error> {
    if !bind.ip().is_loopback() {
        return Err(Error::NotLoopback(bind));
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| Error::Bind { addr: bind, source })?;
    let addr = listener.local_addr()?;
    let limits = config.limits;
    let shared = Arc::new(Shared {
        store: config.store,
        credentials: config.credentials,
        traffic: config.traffic,
        limits,
        log: config.log,
        ids: Ids::new(),
        clock: config.clock,
        nonces: sign::Nonces::default(),
    });
    let app = router(shared);
    ready(addr);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.header_bytes.max(8192))
            .max_headers(limits.headers);
        let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

/// Runs [`serve`] on a new multi-threaded tokio runtime.
pub fn run(config: Config, bind: SocketAddr, ready: impl FnOnce(SocketAddr)) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config, bind, ready))
}
