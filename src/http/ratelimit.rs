//! The rate-limit middleware: sorts each request into a class of the contract's table and a
//! caller, counts it ([`crate::ratelimit`]), and answers 429 with `Retry-After` past the
//! class's setting. Every counted answer carries `X-RateLimit-Limit`, `-Remaining` and
//! `-Reset` (seconds until the budget starts over). Health checks and metrics are not counted.

use std::time::Duration;

use axum::extract::Request;
use axum::http::header::CONNECTION;
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::app::AppState;
use crate::error::ApiError;
use crate::limits::{MAX_HELD_REFUSALS, RATE_LIMIT_HOLD_MS};
use crate::ratelimit::{Class, Verdict};

/// What a request will spend, decided from its path and headers before anything is awaited
/// (a request body is not `Sync`, so the request itself cannot be held across an await).
pub struct Ticket {
    class: Class,
    caller: String,
    limit: u64,
}

/// The request's class, caller and limit; `None` when it is not counted.
pub fn ticket(state: &AppState, request: &Request) -> Option<Ticket> {
    // The class first: when its limit is off (or the path is not counted), no budget is
    // looked up.
    let (class, user) = class_of(state, request)?;
    let limit = u64::try_from(state.settings().get_i64(class.setting())).ok().filter(|l| *l > 0)?;
    Some(Ticket { class, caller: caller_of(state, request, user), limit })
}

/// Spends a ticket from its caller's budget: `Ok` with the budget to report, or the 429 to
/// answer instead.
pub async fn spend(state: &AppState, ticket: Ticket) -> Result<Verdict, Response> {
    let verdict = state.limiter().hit(ticket.class, &ticket.caller, ticket.limit).await;
    if verdict.allowed {
        return Ok(verdict);
    }
    metrics::counter!("ferrobase_rate_limited_total", "class" => ticket.class.name()).increment(1);
    let mut response = ApiError::TooManyRequests { retry_after_secs: verdict.retry_after_secs }.into_response();
    budget_headers(&mut response, &verdict);
    hold_refusal(&verdict, &mut response).await;
    Err(response)
}

/// Refusals being held now, at most [`MAX_HELD_REFUSALS`].
static HELD_REFUSALS: Semaphore = Semaphore::const_new(MAX_HELD_REFUSALS);

/// Holds a refusal for [`RATE_LIMIT_HOLD_MS`] (less when the budget allows the next request
/// sooner): a flooding client waits for its answers instead of taking the CPU that other
/// callers' requests need. When too many are held already, the refusal goes out at once and
/// closes its connection.
async fn hold_refusal(verdict: &Verdict, response: &mut Response) {
    let hold = Duration::from_millis(RATE_LIMIT_HOLD_MS.min(verdict.retry_after_ms));
    match HELD_REFUSALS.try_acquire() {
        Ok(_permit) => tokio::time::sleep(hold).await,
        Err(_) => {
            response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

fn bearer(request: &Request) -> Option<&str> {
    super::extract::bearer(request.headers())
}

fn is_admin(state: &AppState, request: &Request) -> bool {
    bearer(request).is_some_and(|token| state.is_admin_secret(token))
}

/// A user is told apart by a valid token's subject or by an API key that authenticated
/// before (no database read here); a made-up token or key counts against its IP.
fn user_of(state: &AppState, request: &Request) -> Option<String> {
    bearer(request).and_then(|token| state.auth().token_subject(token)).or_else(|| {
        let key = request.headers().get("x-api-key")?.to_str().ok()?;
        state.auth().limiter_id_of_key(key)
    })
}

/// The class of a request, by its route as the contract's table has it, and the user whose
/// budget it spends (CRUD and uploads by a valid token or a known key; `None`: its client
/// IP's); `None` for what is never counted: health checks, metrics, and the data API called
/// with the admin secret. Its holder is the operator's own backend (what a service key is
/// elsewhere), which may write as fast as the server takes it; the admin API stays counted
/// by client IP whoever calls.
fn class_of(state: &AppState, request: &Request) -> Option<(Class, Option<String>)> {
    let path = request.uri().path();
    if path == "/api/v1/admin/health" || path == "/metrics" {
        return None;
    }
    if path.starts_with("/api/v1/admin/") {
        return Some((Class::Admin, None));
    }
    if is_admin(state, request) {
        return None;
    }
    // Telling a user apart verifies a token: not done when no class it could decide counts.
    let counted = |class: Class| state.settings().get_i64(class.setting()) > 0;
    if ![Class::PublicReads, Class::Auth, Class::Crud, Class::Uploads].into_iter().any(counted) {
        return None;
    }
    // Only a valid token or a known key makes a caller a user: a made-up one buys no
    // larger budget than its IP's.
    let user = user_of(state, request);
    if is_upload(request.method(), path) {
        return Some((Class::Uploads, user));
    }
    if let Some(rest) = path.strip_prefix("/api/v1/auth/") {
        // Signing in, tokens and mail count by client IP whatever credentials come along,
        // so that no token, made-up or valid, buys more password guesses or more mail. Only
        // a signed-in user's own account (profile, keys, 2FA set-up, signing out) is CRUD.
        return Some(match user {
            Some(user) if is_own_account(rest) => (Class::Crud, Some(user)),
            _ => (Class::Auth, None),
        });
    }
    Some(match user {
        Some(user) => (Class::Crud, Some(user)),
        None => (Class::PublicReads, None),
    })
}

/// The routes under `/api/v1/auth/` that act on the signed-in user's own account; the others
/// sign in, exchange tokens or send mail.
fn is_own_account(rest: &str) -> bool {
    let first = rest.split('/').next().unwrap_or_default();
    matches!(first, "me" | "user" | "logout" | "signout" | "logout-all" | "api-keys")
        || matches!(rest, "2fa/setup" | "2fa/enable" | "2fa/disable")
}

/// Whose budget a request spends: its user's, or its client IP's.
fn caller_of(state: &AppState, request: &Request, user: Option<String>) -> String {
    user.unwrap_or_else(|| {
        super::client_ip::of(state, request.extensions(), request.headers())
            .map_or_else(|| "unknown".to_owned(), network_of)
    })
}

/// The budget an address spends from: an IPv4 address's own, an IPv6 address's /64. One
/// subscriber is handed a whole /64 and may send from any address in it.
fn network_of(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
        v4 => v4.to_string(),
    }
}

/// `POST /storage/upload`, `POST /storage/{bucket}/{key}` and the start of a resumable upload.
fn is_upload(method: &Method, path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/api/v1/storage/") else {
        return false;
    };
    method == Method::POST
        && (rest == "upload"
            || rest == "resumable"
            || (rest.contains('/') && !rest.starts_with("buckets/") && !rest.ends_with("/signed-url")))
}

pub fn budget_headers(response: &mut Response, verdict: &Verdict) {
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(verdict.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(verdict.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(verdict.reset_secs));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_spends_its_64s_budget() {
        let net = |ip: &str| network_of(ip.parse().unwrap());
        assert_eq!(net("2001:db8:1:2:aaaa::1"), net("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(net("2001:db8:1:2::9"), "2001:db8:1:2::/64");
        assert_ne!(net("2001:db8:1:2::1"), net("2001:db8:1:3::1"));
        assert_eq!(net("::ffff:10.0.0.1"), "10.0.0.1", "a mapped IPv4 address is the IPv4 address");
        assert_eq!(net("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn only_a_users_own_account_is_crud_under_auth() {
        for rest in ["me", "user", "logout", "logout-all", "api-keys", "api-keys/abc", "2fa/setup", "2fa/disable"] {
            assert!(is_own_account(rest), "{rest}");
        }
        for rest in [
            "login",
            "signin",
            "register",
            "refresh",
            "2fa/verify",
            "forgot-password",
            "reset-password",
            "magic-link",
            "magiclink/verify",
            "verify-email",
            "resend-verification",
            "confirm-email-change",
            "me-not",
        ] {
            assert!(!is_own_account(rest), "{rest}");
        }
    }

    #[test]
    fn uploads_are_the_storage_writes_of_files() {
        for path in ["/api/v1/storage/upload", "/api/v1/storage/resumable", "/api/v1/storage/photos/a/b.png"] {
            assert!(is_upload(&Method::POST, path), "{path}");
        }
        for path in
            ["/api/v1/storage/sign", "/api/v1/storage/buckets/x", "/api/v1/storage/b/k/signed-url", "/api/v1/posts"]
        {
            assert!(!is_upload(&Method::POST, path), "{path}");
        }
        assert!(!is_upload(&Method::GET, "/api/v1/storage/photos/a.png"));
    }
}
