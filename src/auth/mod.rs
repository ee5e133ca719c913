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

use crate::data::Db;

pub use sessions::Tokens;
pub use users::User;

/// The auth service: database access plus the server's signing and sealing keys.
pub struct Auth {
    db: Db,
    jwt: jwt::JwtKeys,
    sealer: crypto::SecretBox,
}

impl Auth {
    /// `secret` is the server's JWT secret; the key that seals TOTP secrets is derived from it.
    pub fn new(db: Db, secret: &str) -> Self {
        let sealing_key = crypto::hmac_sha256(secret.as_bytes(), b"ferrobase totp sealing key");
        Auth { db, jwt: jwt::JwtKeys::new(secret.as_bytes()), sealer: crypto::SecretBox::new(&sealing_key) }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}
