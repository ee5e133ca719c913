//! User accounts and authentication: passwords, access tokens and sessions with rotating
//! refresh tokens, API keys, one-time email tokens, TOTP second factor and lockout.
//!
//! [`Auth`] holds the keys and the database; the HTTP handlers in `http/auth` call it.

pub mod api_keys;
pub mod crypto;
pub mod jwt;
pub mod one_time;
pub mod password;
pub mod sessions;
pub mod totp;
pub mod users;

use crate::data::{Db, Rows, Value};
use crate::error::ApiError;

pub use sessions::Tokens;
pub use users::User;

/// The auth service: database access plus the server's signing and sealing keys.
pub struct Auth {
    db: Db,
    jwt: jwt::JwtKeys,
    sealer: crypto::SecretBox,
    /// API keys (by a digest of the key) that authenticated on this instance, and their
    /// users: only these spend their user's rate-limit budget. Any other key counts against
    /// its client's IP, or each made-up key would bring a fresh budget.
    known_api_keys: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Auth {
    /// `secret` is the server's JWT secret; the key that seals TOTP secrets is derived from it.
    pub fn new(db: Db, secret: &str) -> Self {
        let sealing_key = crypto::hmac_sha256(secret.as_bytes(), b"ferrobase totp sealing key");
        Auth {
            db,
            jwt: jwt::JwtKeys::new(secret.as_bytes()),
            sealer: crypto::SecretBox::new(&sealing_key),
            known_api_keys: Default::default(),
        }
    }

    /// The user a valid access token names, checked by signature and expiry only (no
    /// database read): what the rate limiter keys a user's budget by.
    pub fn token_subject(&self, token: &str) -> Option<String> {
        self.jwt.verify(token).ok().map(|claims| claims.sub)
    }

    /// A page of an admin listing and the total: `select` ends with `LIMIT ? OFFSET ?`, and
    /// `select` and `count` share the filter `params` that come before.
    async fn paged(
        &self,
        select: &str,
        count: &str,
        params: Vec<Value>,
        limit: u32,
        offset: u64,
    ) -> Result<(Rows, i64), ApiError> {
        let mut page_params = params.clone();
        page_params.push(i64::from(limit).into());
        page_params.push((offset as i64).into());
        let mut results =
            self.db.read_many(vec![self.db.stmt(select, page_params), self.db.stmt(count, params)]).await?;
        let total = results[1].rows.first().and_then(|r| r[0].as_int()).unwrap_or(0);
        Ok((std::mem::take(&mut results[0]), total))
    }
}
