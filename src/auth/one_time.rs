//! Single-use, expiring tokens: email verification, password reset, magic links, and the
//! short-lived token between a password and a TOTP code. Stored as SHA-256 hashes.

use super::Auth;
use super::crypto::{random_token, sha256_hex};
use crate::error::ApiError;
use crate::util::now_ms;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
    MagicLink,
    /// Between a correct password and the TOTP code of a 2FA login.
    SecondFactor,
    /// A new email of an account without a password, confirmed from its current address.
    ChangeEmail,
}

impl Purpose {
    pub(super) fn kind(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
            Purpose::MagicLink => "magic_link",
            Purpose::SecondFactor => "second_factor",
            Purpose::ChangeEmail => "change_email",
        }
    }

    /// How long a token of this purpose lives.
    pub fn ttl_ms(self) -> i64 {
        match self {
            Purpose::VerifyEmail => 24 * 3600 * 1000,
            Purpose::ResetPassword => 3600 * 1000,
            Purpose::MagicLink => 15 * 60 * 1000,
            Purpose::SecondFactor => 5 * 60 * 1000,
            Purpose::ChangeEmail => 3600 * 1000,
        }
    }
}

/// Whom a token is for: a user, or (magic links to new addresses) just an email.
#[derive(Debug, Clone)]
pub struct Holder {
    pub user_id: Option<String>,
    pub email: Option<String>,
}

impl Auth {
    pub async fn issue_token(&self, purpose: Purpose, holder: &Holder) -> Result<String, ApiError> {
        let token = random_token(32);
        let now = now_ms();
        self.db
            .write(self.db.stmt(
                "INSERT INTO _fb_auth_tokens (token_hash, kind, user_id, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                vec![
                    sha256_hex(&token).into(),
                    purpose.kind().into(),
                    holder.user_id.clone().into(),
                    holder.email.clone().into(),
                    now.into(),
                    (now + purpose.ttl_ms()).into(),
                ],
            ))
            .await?;
        Ok(token)
    }

    /// Whom a live token is for, without spending it.
    pub async fn peek_token(&self, purpose: Purpose, token: &str) -> Result<Option<Holder>, ApiError> {
        let rows = self
            .db
            .read(self.db.stmt(
                "SELECT user_id, email FROM _fb_auth_tokens WHERE token_hash = ? AND kind = ? AND used_at IS NULL AND expires_at > ?",
                vec![sha256_hex(token).into(), purpose.kind().into(), now_ms().into()],
            ))
            .await?;
        Ok(rows.rows.first().map(|r| Holder { user_id: r[0].text(), email: r[1].text() }))
    }

    /// Spends a live token, once: a second call with the same token finds nothing.
    pub async fn consume_token(&self, purpose: Purpose, token: &str) -> Result<Option<Holder>, ApiError> {
        let now = now_ms();
        let rows = self
            .db
            .write(self.db.stmt(
                "UPDATE _fb_auth_tokens SET used_at = ? WHERE token_hash = ? AND kind = ? AND used_at IS NULL AND expires_at > ? \
                 RETURNING user_id, email",
                vec![now.into(), sha256_hex(token).into(), purpose.kind().into(), now.into()],
            ))
            .await?;
        Ok(rows.rows.first().map(|r| Holder { user_id: r[0].text(), email: r[1].text() }))
    }
}
