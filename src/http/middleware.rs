//! Middleware shared by every route: request ids, panics turned into JSON 500s, and JSON
//! answers for unknown routes and wrong methods.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::MatchedPath;
use axum::http::{HeaderName, HeaderValue, Method, Request, Uri, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};

use crate::app::AppState;
use crate::error::ApiError;
use crate::limits::{MAX_HEADER_BYTES, MAX_URL_BYTES};
use crate::net::Origins;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids: a per-process random prefix and a counter; cheaper than a random UUID per
/// request, unique across instances. A client-supplied `X-Request-Id` is kept.
#[derive(Clone)]
pub struct RequestIds {
    prefix: std::sync::Arc<str>,
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.prefix).parse().ok().map(RequestId::new)
    }
}

type Layers = Stack<
    PropagateRequestIdLayer,
    Stack<
        CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> Response>,
        Stack<SetRequestIdLayer<RequestIds>, Identity>,
    >,
>;

pub fn layers() -> ServiceBuilder<Layers> {
    let ids = RequestIds { prefix: crate::util::random_hex(4).into() };
    ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(X_REQUEST_ID.clone(), ids))
        .layer(CatchPanicLayer::custom(panic_response as fn(Box<dyn std::any::Any + Send>) -> Response))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
}

/// CORS as the setting `cors_origins` allows it. Credentials travel in the `Authorization`
/// and `X-API-Key` headers, never in cookies, so the default `*` lets any page call the API
/// and gains no page anything; an operator narrows it to the app's own origins.
pub fn cors(allow_origin: AllowOrigin) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(Any)
        // The headers asked for, named back: a `*` never covers `Authorization` (Fetch), so
        // browsers that enforce that would refuse every call with a token.
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(exposed_headers())
        .max_age(std::time::Duration::from_secs(3600))
}

/// The origins `cors_origins` lists, read at each request so that a change applies at once.
pub fn listed_origins(state: AppState) -> AllowOrigin {
    AllowOrigin::predicate(move |origin, _| origin.to_str().is_ok_and(|origin| origin_listed(&state, origin)))
}

/// Whether `cors_origins` admits every origin (`*`, its default).
pub fn any_origin_allowed(state: &AppState) -> bool {
    state.settings().with_str("cors_origins", |origins| origins.trim() == "*").unwrap_or(true)
}

/// Whether `cors_origins` lists `origin`.
fn origin_listed(state: &AppState, origin: &str) -> bool {
    state
        .settings()
        .with_str("cors_origins", |listed| Origins::parse(listed).is_ok_and(|origins| origins.admits(origin)))
        .unwrap_or(false)
}

/// The headers of a CORS answer to a request that `CorsLayer` would take for a preflight but
/// is not one (an `OPTIONS` without `Access-Control-Request-Method`), as `cors` would give
/// them to any other request from `origin`.
pub fn simple_cors(state: &AppState, origin: &HeaderValue, response: &mut Response) {
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    let allowed = if any_origin_allowed(state) {
        HeaderValue::from_static("*")
    } else if origin.to_str().is_ok_and(|origin| origin_listed(state, origin)) {
        origin.clone()
    } else {
        return;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    let exposed: Vec<String> = exposed_headers().iter().map(|h| h.as_str().to_owned()).collect();
    if let Ok(value) = HeaderValue::from_str(&exposed.join(",")) {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value);
    }
}

/// Headers a browser app may read: ids, limits, file and range answers, and the tus protocol's.
fn exposed_headers() -> Vec<HeaderName> {
    use axum::http::header;
    let mut names = vec![
        X_REQUEST_ID.clone(),
        header::RETRY_AFTER,
        header::ETAG,
        header::CONTENT_RANGE,
        header::CONTENT_DISPOSITION,
        header::LOCATION,
    ];
    for name in crate::http::storage::resumable::EXPOSED_HEADERS {
        names.push(HeaderName::from_static(name));
    }
    names
}

fn panic_response(panic: Box<dyn std::any::Any + Send>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".into());
    ApiError::Internal(format!("handler panicked: {detail}")).into_response()
}

/// How long clients are told to wait while the server is in maintenance mode.
const MAINTENANCE_RETRY_SECS: u32 = 60;

/// The setting `maintenance_mode`: 503 with `Retry-After` for every request but the admin's
/// (the admin API, or any path with the admin secret), health checks and metrics.
pub fn maintenance_refusal(state: &crate::app::AppState, request: &Request<axum::body::Body>) -> Option<Response> {
    if !state.settings().get_bool("maintenance_mode") || exempt_from_maintenance(request, state) {
        return None;
    }
    let mut response =
        ApiError::Unavailable("the service is in maintenance mode; try again later".into()).into_response();
    response.headers_mut().insert(axum::http::header::RETRY_AFTER, MAINTENANCE_RETRY_SECS.into());
    Some(response)
}

fn exempt_from_maintenance(request: &Request<axum::body::Body>, state: &crate::app::AppState) -> bool {
    let path = request.uri().path();
    if path.starts_with("/api/v1/admin/") || path == "/metrics" {
        return true;
    }
    super::extract::bearer(request.headers()).is_some_and(|token| state.is_admin_secret(token))
}

/// 414 for a request target longer than [`MAX_URL_BYTES`] and 431 for headers past
/// [`MAX_HEADER_BYTES`], before any handler parses them. Past these, hyper's own parser
/// refuses the request with a bare status (a target of 64 KiB, over 100 headers, a head larger
/// than its read buffer).
pub async fn limit_request_head(request: Request<axum::body::Body>, next: axum::middleware::Next) -> Response {
    let length = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if length > MAX_URL_BYTES {
        return ApiError::UriTooLong(format!(
            "the request URL has {length} bytes; at most {MAX_URL_BYTES} are allowed (MAX_URL_BYTES)"
        ))
        .into_response();
    }
    let header_bytes: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge(format!(
            "the request headers have {header_bytes} bytes; at most {MAX_HEADER_BYTES} are allowed (MAX_HEADER_BYTES)"
        ))
        .into_response();
    }
    next.run(request).await
}

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

pub async fn method_not_allowed(method: Method, uri: Uri, matched: Option<MatchedPath>) -> ApiError {
    // `POST /api/v1/auth/nothing` reaches the collection routes, which take no POST there; the
    // path names no route at all, as `GET` on it says.
    if matched.is_some_and(|m| m.as_str().starts_with("/api/v1/{collection}")) {
        let segment = uri.path().trim_start_matches("/api/v1/").split('/').next().unwrap_or_default();
        if let Some(err) = super::records::reserved_segment(segment) {
            return err;
        }
    }
    ApiError::MethodNotAllowed(format!("method {method} is not allowed on {}", uri.path()))
}

/// What every answer of a kind carries, whichever layer gave it (a handler, the gate, the URL
/// limit, axum's own 405): `Tus-Resumable` on the tus protocol's paths, and an `Allow` that
/// lists each method once.
pub fn finish_answer(response: &mut Response, tus: bool) {
    if tus {
        super::storage::resumable::mark_tus(response);
    }
    // A 405, and the answer to `OPTIONS`, carry `Allow`.
    if response.headers().contains_key(header::ALLOW) {
        list_allowed_once(response);
    }
}

/// axum adds `HEAD` beside every `GET`, also where `HEAD` has a route of its own, and would
/// list it twice.
fn list_allowed_once(response: &mut Response) {
    let Some(allow) = response.headers().get(header::ALLOW).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let mut methods: Vec<&str> = Vec::new();
    for method in allow.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&methods.join(",")) {
        response.headers_mut().insert(header::ALLOW, value);
    }
}
