//! Sessions: an access token (JWT naming the session) plus an opaque refresh token that is
//! rotated on every use. A rotated token presented again means it was stolen or replayed: the
//! session is revoked (unless within `refresh_token_reuse_interval_seconds` of its use, off by
//! default, where it renews the session again). Every request's session is checked in the database, so revocation
//! (logout, logout-all, admin, password reset) takes effect at once.

use serde_json::{Value as Json, json};

use super::crypto::{random_token, sha256_hex};
use super::jwt::Claims;
use super::{Auth, User};
use crate::data::Value;
use crate::data::access::Principal;
use crate::error::ApiError;
use crate::util::now_ms;

/// How long a revoked session stays listed (`GET /admin/sessions`) before the background
/// purge deletes it.
const REVOKED_KEPT_MS: i64 = 24 * 3600 * 1000;

/// The tokens a sign-in hands out.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: String,
    /// `None` for impersonation tokens, which cannot be refreshed.
    pub refresh_token: Option<String>,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
    pub session_id: String,
}

/// How a session is made: lifetimes come from the runtime settings.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    pub access_ttl_secs: i64,
    pub refresh_ttl_ms: i64,
    /// How long after its use a refresh token may be spent again (two tabs or requests
    /// refreshing at once) before a reuse counts as a replay (0: never).
    pub reuse_interval_ms: i64,
    /// Revoke the user's other sessions (`single_session_mode`).
    pub single_session: bool,
    pub impersonated: bool,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl Auth {
    pub async fn start_session(&self, user: &User, opts: &SessionOptions) -> Result<Tokens, ApiError> {
        let now = now_ms();
        let session_id = uuid::Uuid::now_v7().to_string();
        let expires_at = now + if opts.impersonated { opts.access_ttl_secs * 1000 } else { opts.refresh_ttl_ms };
        // First, in the same transaction: the account must still hold the password the caller
        // proved (or none, as it did), and its row stays locked until the session is in. A
        // password reset or change that committed since the check refuses this sign-in; one
        // that commits later waits for it, then revokes the session with the others. Sign-ins
        // of one user also run one at a time, so `single_session_mode` leaves exactly one.
        let same = match self.db.dialect() {
            crate::data::Dialect::Postgres => "IS NOT DISTINCT FROM",
            crate::data::Dialect::Sqlite => "IS",
        };
        let mut stmts = vec![
            self.db
                .stmt(
                    &format!("UPDATE _fb_users SET updated_at = updated_at WHERE id = ? AND password_hash {same} ?"),
                    vec![user.id.as_str().into(), user.password_hash.clone().into()],
                )
                .must_change(),
        ];
        if opts.single_session && !opts.impersonated {
            stmts.push(self.db.stmt(
                "UPDATE _fb_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                vec![now.into(), user.id.as_str().into()],
            ));
        }
        stmts.push(self.db.stmt(
            "INSERT INTO _fb_sessions (id, user_id, impersonated, created_at, expires_at, last_used_at, user_agent, ip) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                session_id.as_str().into(),
                user.id.as_str().into(),
                opts.impersonated.into(),
                now.into(),
                expires_at.into(),
                now.into(),
                opts.user_agent.clone().into(),
                opts.ip.clone().into(),
            ],
        ));
        // The user's oldest sessions past MAX_SESSIONS_PER_USER end: signing in again and
        // again must not grow a user's sessions without bound.
        stmts.push(self.db.stmt(
            "UPDATE _fb_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND id NOT IN \
             (SELECT id FROM _fb_sessions WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id DESC LIMIT ?)",
            vec![
                now.into(),
                user.id.as_str().into(),
                user.id.as_str().into(),
                (crate::limits::MAX_SESSIONS_PER_USER as i64).into(),
            ],
        ));
        let refresh_token = if opts.impersonated {
            None
        } else {
            let token = format!("fbr_{}", random_token(32));
            stmts.push(self.insert_refresh(&token, &session_id, now, expires_at));
            Some(token)
        };
        self.db.write_many(stmts).await.map_err(|err| match err {
            crate::data::DbError::InStatement { index: 0, source }
                if matches!(*source, crate::data::DbError::NoRowChanged(_)) =>
            {
                ApiError::Unauthorized(
                    "the account's password changed (or the account was deleted) during this sign-in; sign in again"
                        .into(),
                )
            }
            other => other.into(),
        })?;
        let access_token = self.sign_access(user, &session_id, opts)?;
        Ok(Tokens { access_token, refresh_token, expires_in: opts.access_ttl_secs, session_id })
    }

    fn insert_refresh(&self, token: &str, session_id: &str, now: i64, expires_at: i64) -> crate::data::Stmt {
        self.db.stmt(
            "INSERT INTO _fb_refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            vec![sha256_hex(token).into(), session_id.into(), now.into(), expires_at.into()],
        )
    }

    fn sign_access(&self, user: &User, session_id: &str, opts: &SessionOptions) -> Result<String, ApiError> {
        let now = now_ms() / 1000;
        self.jwt.sign(&Claims {
            sub: user.id.clone(),
            email: user.email.clone(),
            roles: user.roles.clone(),
            role: "authenticated".into(),
            sid: session_id.to_owned(),
            iat: now,
            exp: now + opts.access_ttl_secs,
            imp: opts.impersonated,
        })
    }

    /// Exchanges a refresh token for a new pair. The old token is spent; spending it again
    /// revokes the session.
    pub async fn refresh(&self, refresh_token: &str, opts: &SessionOptions) -> Result<(Tokens, User), ApiError> {
        let invalid = || ApiError::Unauthorized("invalid or expired refresh token".into());
        let now = now_ms();
        let hash = sha256_hex(refresh_token);
        let spent = self
            .db
            .write(self.db.stmt(
                "UPDATE _fb_refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? \
                 RETURNING session_id",
                vec![now.into(), hash.as_str().into(), now.into()],
            ))
            .await?;
        let session_id = match spent.rows.first().and_then(|r| r[0].text()) {
            Some(session_id) => session_id,
            None => self.spent_again(&hash, now, opts).await?,
        };
        let session = self
            .db
            .read(self.db.stmt(
                "SELECT user_id FROM _fb_sessions WHERE id = ? AND revoked_at IS NULL AND expires_at > ?",
                vec![session_id.as_str().into(), now.into()],
            ))
            .await?;
        let user_id = session.rows.first().and_then(|r| r[0].text()).ok_or_else(invalid)?;
        let user = self.user_by_id(&user_id).await?.ok_or_else(invalid)?;
        let expires_at = now + opts.refresh_ttl_ms;
        let token = format!("fbr_{}", random_token(32));
        self.db
            .write_many(vec![
                self.insert_refresh(&token, &session_id, now, expires_at),
                self.db.stmt(
                    "UPDATE _fb_sessions SET expires_at = ?, last_used_at = ? WHERE id = ?",
                    vec![expires_at.into(), now.into(), session_id.as_str().into()],
                ),
            ])
            .await?;
        let access_token = self.sign_access(&user, &session_id, opts)?;
        let tokens = Tokens { access_token, refresh_token: Some(token), expires_in: opts.access_ttl_secs, session_id };
        Ok((tokens, user))
    }

    /// A refresh token presented after it was spent: within the reuse interval (a client's
    /// requests racing to refresh), its session is renewed again; after it, the token was
    /// stolen or replayed, and its session is revoked.
    async fn spent_again(&self, hash: &str, now: i64, opts: &SessionOptions) -> Result<String, ApiError> {
        let known = self
            .db
            .read(self.db.stmt(
                "SELECT session_id, used_at, expires_at FROM _fb_refresh_tokens WHERE token_hash = ? AND used_at IS NOT NULL",
                vec![hash.into()],
            ))
            .await?;
        let Some(row) = known.rows.first() else {
            return Err(ApiError::Unauthorized("invalid or expired refresh token".into()));
        };
        let session_id = row[0].text().unwrap_or_default();
        let (used_at, expires_at) = (row[1].as_int().unwrap_or(0), row[2].as_int().unwrap_or(0));
        if now - used_at < opts.reuse_interval_ms && expires_at > now {
            return Ok(session_id);
        }
        tracing::warn!(session = %session_id, "a rotated refresh token was reused: revoking its session");
        self.revoke_session(&session_id, None).await?;
        Err(ApiError::Unauthorized("refresh token already used: the session has been revoked".into()))
    }

    /// The user behind an access token, if its signature, expiry and session all hold.
    pub async fn authenticate_token(&self, token: &str) -> Result<Principal, ApiError> {
        let claims = self.jwt.verify(token)?;
        let rows = self
            .db
            .read(self.db.stmt(
                "SELECT u.id, u.email, u.roles, s.impersonated, s.expires_at FROM _fb_sessions s JOIN _fb_users u ON u.id = s.user_id \
                 WHERE s.id = ? AND s.revoked_at IS NULL AND s.expires_at > ?",
                vec![claims.sid.as_str().into(), now_ms().into()],
            ))
            .await?;
        let row = rows.rows.first().ok_or_else(|| ApiError::Unauthorized("the session has ended".into()))?;
        Ok(Principal {
            id: row[0].text().unwrap_or_default(),
            email: row[1].text().unwrap_or_default(),
            roles: serde_json::from_value(row[2].as_json()).unwrap_or_default(),
            session_id: Some(claims.sid),
            api_key_id: None,
            impersonated: row[3].as_bool(),
            session_ends_ms: row[4].as_int(),
        })
    }

    /// Revokes one session (of `user_id` only, when given). Returns whether one was revoked.
    pub async fn revoke_session(&self, session_id: &str, user_id: Option<&str>) -> Result<bool, ApiError> {
        let mut sql = String::from("UPDATE _fb_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL");
        let mut params: Vec<Value> = vec![now_ms().into(), session_id.into()];
        if let Some(user_id) = user_id {
            sql.push_str(" AND user_id = ?");
            params.push(user_id.into());
        }
        Ok(self.db.write(self.db.stmt(&sql, params)).await?.affected > 0)
    }

    /// Revokes every session of a user but `keep` (the one that asked); returns how many.
    pub async fn revoke_other_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64, ApiError> {
        let now = now_ms();
        let results = self
            .db
            .write_many(vec![
                self.db.stmt(
                    "UPDATE _fb_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND id <> ?",
                    vec![now.into(), user_id.into(), keep.unwrap_or("").into()],
                ),
                self.spend_sign_in_tokens(user_id, now),
            ])
            .await?;
        Ok(results[0].affected)
    }

    /// Revokes every session and API key of a user, and spends the links that would sign
    /// in again: `(sessions, api_keys)` revoked.
    pub async fn revoke_everything(&self, user_id: &str) -> Result<(u64, u64), ApiError> {
        let now = now_ms();
        let results = self
            .db
            .write_many(vec![
                self.db.stmt(
                    "UPDATE _fb_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                    vec![now.into(), user_id.into()],
                ),
                self.db.stmt(
                    "UPDATE _fb_api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                    vec![now.into(), user_id.into()],
                ),
                self.spend_sign_in_tokens(user_id, now),
            ])
            .await?;
        Ok((results[0].affected, results[1].affected))
    }

    /// Spends a user's outstanding password resets, magic links, email changes and 2FA
    /// sign-in steps: a new password or the end of every session must not leave a link in
    /// someone's mailbox (or a half-finished sign-in) that gets back in.
    fn spend_sign_in_tokens(&self, user_id: &str, now: i64) -> crate::data::Stmt {
        use super::one_time::Purpose;
        let signing_in = [Purpose::ResetPassword, Purpose::MagicLink, Purpose::ChangeEmail, Purpose::SecondFactor];
        self.spend_tokens(user_id, now, &signing_in)
    }

    /// The statement that spends a user's outstanding tokens of these purposes.
    pub(super) fn spend_tokens(
        &self,
        user_id: &str,
        now: i64,
        purposes: &[super::one_time::Purpose],
    ) -> crate::data::Stmt {
        let mut params: Vec<crate::data::Value> = vec![now.into(), user_id.into()];
        params.extend(purposes.iter().map(|purpose| purpose.kind().into()));
        let kinds = vec!["?"; purposes.len()].join(", ");
        self.db.stmt(
            &format!(
                "UPDATE _fb_auth_tokens SET used_at = ? WHERE user_id = ? AND used_at IS NULL AND kind IN ({kinds})"
            ),
            params,
        )
    }

    /// A page of sessions, newest first, of one user or of everyone.
    pub async fn list_sessions(
        &self,
        user_id: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<Json>, i64), ApiError> {
        let filter = if user_id.is_some() { " WHERE user_id = ?" } else { "" };
        let params: Vec<Value> = user_id.map(|u| vec![u.into()]).unwrap_or_default();
        let select = format!(
            "SELECT id, user_id, impersonated, created_at, expires_at, last_used_at, revoked_at, user_agent, ip \
             FROM _fb_sessions{filter} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        );
        let count = format!("SELECT COUNT(*) FROM _fb_sessions{filter}");
        let (rows, total) = self.paged(&select, &count, params, limit, offset).await?;
        let now = now_ms();
        let items = rows
            .rows
            .iter()
            .map(|r| {
                let active = r[6].is_null() && r[4].as_int().unwrap_or(0) > now;
                json!({
                    "id": r[0].to_json(), "user_id": r[1].to_json(), "impersonated": r[2].as_bool(),
                    "created_at": r[3].to_json(), "expires_at": r[4].to_json(), "last_used_at": r[5].to_json(),
                    "revoked_at": r[6].to_json(), "user_agent": r[7].to_json(), "ip": r[8].to_json(), "active": active,
                })
            })
            .collect();
        Ok((items, total))
    }

    /// The background purge: sessions that have expired or were revoked a day ago or more
    /// (their refresh tokens go with them), and one-time tokens that are used or expired.
    /// Returns `(sessions, tokens)` deleted.
    pub async fn purge_expired(&self) -> Result<(u64, u64), ApiError> {
        let now = now_ms();
        let results = self
            .db
            .write_many(vec![
                self.db.stmt(
                    "DELETE FROM _fb_sessions WHERE expires_at <= ? OR revoked_at <= ?",
                    vec![now.into(), (now - REVOKED_KEPT_MS).into()],
                ),
                self.db
                    .stmt("DELETE FROM _fb_auth_tokens WHERE expires_at <= ? OR used_at IS NOT NULL", vec![now.into()]),
                // Failed sign-ins of emails without an account, a day after the last.
                self.db.stmt(
                    "DELETE FROM _fb_login_failures WHERE updated_at <= ? AND (locked_until IS NULL OR locked_until <= ?)",
                    vec![(now - REVOKED_KEPT_MS).into(), now.into()],
                ),
            ])
            .await?;
        Ok((results[0].affected, results[1].affected))
    }

    /// Deletes sessions that have expired or were revoked; returns how many.
    pub async fn purge_sessions(&self) -> Result<u64, ApiError> {
        let rows = self
            .db
            .write(self.db.stmt(
                "DELETE FROM _fb_sessions WHERE expires_at <= ? OR revoked_at IS NOT NULL",
                vec![now_ms().into()],
            ))
            .await?;
        Ok(rows.affected)
    }
}
