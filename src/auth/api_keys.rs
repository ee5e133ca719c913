//! API keys: long random secrets with a recognisable prefix, shown once, stored as SHA-256
//! hashes, sent as `X-API-Key`, acting as their user.

use serde_json::{Value as Json, json};

use super::Auth;
use super::crypto::{random_token, sha256_hex};
use crate::data::Value;
use crate::data::access::Principal;
use crate::error::ApiError;
use crate::util::now_ms;

/// Every key starts with this, so leaked keys are easy to spot and scan for.
pub const KEY_PREFIX: &str = "fb_";

fn view(row: &[Value]) -> Json {
    json!({
        "id": row[0].to_json(),
        "name": row[1].to_json(),
        "prefix": row[2].to_json(),
        "created_at": row[3].to_json(),
        "expires_at": row[4].to_json(),
        "last_used_at": row[5].to_json(),
    })
}

/// How many keys [`Auth::limiter_id_of_key`] remembers; past it the memory starts over
/// (a key then counts against its IP until it authenticates again).
const KNOWN_KEYS: usize = 10_000;

/// The name a key is remembered by: a prefix of its hash, never the key.
fn key_digest(key: &str) -> String {
    sha256_hex(key.trim())[..24].to_owned()
}

impl Auth {
    fn remember_api_key(&self, key: &str, user_id: &str) {
        let mut known = self.known_api_keys.lock().expect("known keys lock");
        if known.len() >= KNOWN_KEYS {
            known.clear();
        }
        known.insert(key_digest(key), user_id.to_owned());
    }

    /// The user of an API key that authenticated here before, whose rate-limit budget the
    /// key spends (all of a user's keys and tokens share one); `None` for any other key (no
    /// database is read: this runs before authentication).
    pub fn limiter_id_of_key(&self, key: &str) -> Option<String> {
        self.known_api_keys.lock().expect("known keys lock").get(&key_digest(key)).cloned()
    }

    /// Creates a key for the user of the session `session_id`; the answer holds the key
    /// itself, which is never shown again. The key is written only while the session is live,
    /// in one statement that (on PostgreSQL) holds the session's row against a concurrent
    /// "end everything": that either waits for the key and revokes it, or ends the session
    /// first, and no key is made (401).
    pub async fn create_api_key(
        &self,
        session_id: &str,
        user_id: &str,
        name: &str,
        expires_at: Option<i64>,
    ) -> Result<Json, ApiError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::bad_field("name", "an API key needs a name of 1 to 100 characters"));
        }
        let now = now_ms();
        if expires_at.is_some_and(|at| at <= now) {
            return Err(ApiError::bad_field("expires_at", "expires_at must be in the future (Unix milliseconds)"));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let key = format!("{KEY_PREFIX}{}", random_token(32));
        let prefix: String = key.chars().take(KEY_PREFIX.len() + 8).collect();
        let lock = if self.db.dialect() == crate::data::Dialect::Postgres { " FOR SHARE" } else { "" };
        let sql = format!(
            "INSERT INTO _fb_api_keys (id, user_id, name, prefix, key_hash, created_at, expires_at) \
             SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), \
             CAST(? AS BIGINT), CAST(? AS BIGINT) \
             WHERE EXISTS (SELECT 1 FROM _fb_sessions WHERE id = ? AND user_id = ? AND revoked_at IS NULL{lock}) \
             RETURNING id, name, prefix, created_at, expires_at, last_used_at"
        );
        let params = vec![
            id.into(),
            user_id.into(),
            name.into(),
            prefix.into(),
            sha256_hex(&key).into(),
            now.into(),
            expires_at.into(),
            session_id.into(),
            user_id.into(),
        ];
        let rows = self.db.write(self.db.stmt(&sql, params)).await?;
        let row = rows.rows.first().ok_or_else(|| ApiError::Unauthorized("the session has ended".into()))?;
        let mut out = view(row);
        out["key"] = key.into();
        Ok(out)
    }

    /// The user's live keys, without the keys themselves.
    pub async fn list_api_keys(&self, user_id: &str) -> Result<Vec<Json>, ApiError> {
        let rows = self
            .db
            .read(self.db.stmt(
                "SELECT id, name, prefix, created_at, expires_at, last_used_at FROM _fb_api_keys \
                 WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC",
                vec![user_id.into()],
            ))
            .await?;
        Ok(rows.rows.iter().map(|r| view(r)).collect())
    }

    pub async fn revoke_api_key(&self, user_id: &str, id: &str) -> Result<bool, ApiError> {
        let rows = self
            .db
            .write(self.db.stmt(
                "UPDATE _fb_api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
                vec![now_ms().into(), id.into(), user_id.into()],
            ))
            .await?;
        Ok(rows.affected > 0)
    }

    /// The user behind an API key, if it is live. Records its use at most once a minute, so
    /// a busy key does not turn every read into a write.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Principal, ApiError> {
        let invalid = || ApiError::Unauthorized("invalid API key".into());
        if !key.starts_with(KEY_PREFIX) {
            return Err(invalid());
        }
        let now = now_ms();
        let rows = self
            .db
            .read(self.db.stmt(
                "SELECT k.id, u.id, u.email, u.roles, k.last_used_at FROM _fb_api_keys k JOIN _fb_users u ON u.id = k.user_id \
                 WHERE k.key_hash = ? AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?)",
                vec![sha256_hex(key).into(), now.into()],
            ))
            .await?;
        let row = rows.rows.first().ok_or_else(invalid)?;
        self.remember_api_key(key, &row[1].text().unwrap_or_default());
        let key_id = row[0].text().unwrap_or_default();
        if row[4].as_int().is_none_or(|last| now - last > 60_000) {
            self.db
                .write(self.db.stmt(
                    "UPDATE _fb_api_keys SET last_used_at = ? WHERE id = ?",
                    vec![now.into(), key_id.as_str().into()],
                ))
                .await?;
        }
        Ok(Principal {
            id: row[1].text().unwrap_or_default(),
            email: row[2].text().unwrap_or_default(),
            roles: serde_json::from_value(row[3].as_json()).unwrap_or_default(),
            session_id: None,
            api_key_id: Some(key_id),
            impersonated: false,
            session_ends_ms: None,
        })
    }
}
