//! User accounts in `_fb_users`.

use serde_json::{Value as Json, json};
use unicode_normalization::UnicodeNormalization;

use super::Auth;
use super::crypto::sha256_hex;
use crate::data::{DbError, Value};
use crate::error::ApiError;
use crate::util::now_ms;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub email_verified: bool,
    pub roles: Vec<String>,
    pub metadata: Json,
    /// Sealed (never in clear); set once 2FA setup has begun.
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, email, password_hash, email_verified, roles, metadata, totp_secret, totp_enabled, \
                       failed_logins, locked_until, created_at, updated_at";

impl User {
    fn from_row(row: &[Value]) -> User {
        User {
            id: row[0].text().unwrap_or_default(),
            email: row[1].text().unwrap_or_default(),
            password_hash: row[2].text(),
            email_verified: row[3].as_bool(),
            roles: serde_json::from_value(row[4].as_json()).unwrap_or_default(),
            metadata: row[5].as_json(),
            totp_secret: row[6].text(),
            totp_enabled: row[7].as_bool(),
            failed_logins: row[8].as_int().unwrap_or(0),
            locked_until: row[9].as_int(),
            created_at: row[10].as_int().unwrap_or(0),
            updated_at: row[11].as_int().unwrap_or(0),
        }
    }

    /// The user as every API answer shows it: never a hash or secret.
    pub fn view(&self) -> Json {
        json!({
            "id": self.id,
            "email": self.email,
            "email_verified": self.email_verified,
            "roles": self.roles,
            "metadata": self.metadata,
            "totp_enabled": self.totp_enabled,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// Trims and lower-cases an email address and checks its shape.
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    // One spelling per address: composed (NFC), so that an `é` typed as one character or as
    // `e` and an accent is one account, then lowercase.
    let invalid = || ApiError::bad_field("email", "a valid email address is required");
    let email = raw.trim().nfc().collect::<String>().to_lowercase();
    // The domain as UTS 46 reads it, in Unicode: `xn--e1afmkfd.xn--p1ai` and `пример.рф`, or
    // full-width letters and their ASCII, are one domain.
    let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
    let (domain, mapped) = idna::domain_to_unicode(domain);
    let email = format!("{local}@{domain}");
    if mapped.is_ok() && is_email(&email) { Ok(email) } else { Err(invalid()) }
}

/// The addresses of the HTML standard's "valid email address" (what `<input type=email>`
/// takes), with letters beyond ASCII allowed: a local part of letters, digits and
/// ``.!#$%&'*+/=?^_`{|}~-`` (no leading, trailing or doubled dot), `@`, and at least two
/// dot-separated labels of letters, digits and inner hyphens. No quoting, comments, angle
/// brackets, lists or IP literals: each address has one spelling, which mail goes to.
fn is_email(email: &str) -> bool {
    const LOCAL_SYMBOLS: &str = ".!#$%&'*+/=?^_`{|}~-";
    let Some((local, domain)) = email.split_once('@') else { return false };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.chars().all(|c| c.is_alphanumeric() || LOCAL_SYMBOLS.contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    email.len() <= 254 && local_ok && domain.split('.').count() >= 2 && domain.split('.').all(label_ok)
}

/// How a change to a user's profile is given (`PATCH /auth/user`).
#[derive(Default)]
pub struct UserChange {
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub metadata: Option<Json>,
}

/// One sign-in attempt counted against the lockout ([`Auth::claim_sign_in`]).
pub struct SignInClaim {
    /// Failures counted so far, this attempt included.
    pub count: i64,
    /// The end of a lock in force.
    pub locked_until: Option<i64>,
}

impl Auth {
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, ApiError> {
        self.one_user(&format!("SELECT {COLUMNS} FROM _fb_users WHERE id = ?"), id).await
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, ApiError> {
        self.one_user(&format!("SELECT {COLUMNS} FROM _fb_users WHERE email = ?"), email).await
    }

    async fn one_user(&self, sql: &str, key: &str) -> Result<Option<User>, ApiError> {
        let rows = self.db.read(self.db.stmt(sql, vec![key.into()])).await?;
        Ok(rows.rows.first().map(|r| User::from_row(r)))
    }

    /// Creates a user; 409 when the email is taken.
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: Option<String>,
        email_verified: bool,
        metadata: Json,
    ) -> Result<User, ApiError> {
        let now = now_ms();
        let id = uuid::Uuid::now_v7().to_string();
        let sql = format!(
            "INSERT INTO _fb_users (id, email, password_hash, email_verified, roles, metadata, totp_enabled, \
             failed_logins, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?) RETURNING {COLUMNS}"
        );
        let params = vec![
            id.into(),
            email.into(),
            password_hash.into(),
            email_verified.into(),
            Value::Json(json!([])),
            Value::Json(metadata),
            false.into(),
            now.into(),
            now.into(),
        ];
        let rows = self.db.write(self.db.stmt(&sql, params)).await.map_err(|err| match err {
            DbError::UniqueViolation(_) => ApiError::Conflict("a user with this email already exists".into()),
            other => other.into(),
        })?;
        rows.rows.first().map(|r| User::from_row(r)).ok_or_else(|| ApiError::internal("insert returned no user"))
    }

    /// Deletes a user; their sessions, API keys and tokens go with them.
    pub async fn delete_user(&self, id: &str) -> Result<bool, ApiError> {
        let rows = self.db.write(self.db.stmt("DELETE FROM _fb_users WHERE id = ?", vec![id.into()])).await?;
        Ok(rows.affected > 0)
    }

    pub async fn update_user(&self, id: &str, change: UserChange) -> Result<User, ApiError> {
        let mut sets = vec!["updated_at = ?"];
        let mut params: Vec<Value> = vec![now_ms().into()];
        let moves = change.email.is_some();
        if let Some(email) = change.email {
            // A new address must be verified again.
            sets.push("email = ?");
            sets.push("email_verified = ?");
            params.push(email.into());
            params.push(false.into());
        }
        if let Some(hash) = change.password_hash {
            sets.push("password_hash = ?");
            params.push(hash.into());
        }
        if let Some(metadata) = change.metadata {
            sets.push("metadata = ?");
            params.push(Value::Json(metadata));
        }
        params.push(id.into());
        let sql = format!("UPDATE _fb_users SET {} WHERE id = ? RETURNING {COLUMNS}", sets.join(", "));
        let mut stmts = vec![self.db.stmt(&sql, params)];
        if moves {
            // Links mailed to the old address must not get back into the account.
            use super::one_time::Purpose;
            stmts.push(self.spend_tokens(id, now_ms(), &[Purpose::ResetPassword, Purpose::MagicLink]));
        }
        let results = self.db.write_many(stmts).await.map_err(|err| {
            let err = match err {
                DbError::InStatement { source, .. } => *source,
                other => other,
            };
            match err {
                DbError::UniqueViolation(_) => ApiError::Conflict("a user with this email already exists".into()),
                other => other.into(),
            }
        })?;
        let updated = results.first().and_then(|rows| rows.rows.first());
        updated.map(|r| User::from_row(r)).ok_or_else(|| ApiError::not_found("user not found"))
    }

    /// The first proof of an account's address (a magic link opened): the account may have
    /// been made by whoever typed the address, not by its owner, so the ways in set up before
    /// the proof go: the password, sessions, API keys and outstanding links. The owner sets a
    /// password from a reset link. 2FA stays: a link never skips the second factor. Answers
    /// whether the account was unproven.
    pub async fn claim_unproven_account(&self, id: &str) -> Result<bool, ApiError> {
        let claimed = self
            .db
            .write(self.db.stmt(
                "UPDATE _fb_users SET email_verified = ?, password_hash = NULL, updated_at = ? \
                 WHERE id = ? AND email_verified = ?",
                vec![true.into(), now_ms().into(), id.into(), false.into()],
            ))
            .await?;
        if claimed.affected == 0 {
            return Ok(false);
        }
        self.revoke_everything(id).await?;
        Ok(true)
    }

    pub async fn set_password(&self, id: &str, password_hash: &str) -> Result<(), ApiError> {
        let sql = "UPDATE _fb_users SET password_hash = ?, failed_logins = 0, locked_until = NULL, updated_at = ? WHERE id = ?";
        self.db.write(self.db.stmt(sql, vec![password_hash.into(), now_ms().into(), id.into()])).await?;
        Ok(())
    }

    pub async fn mark_email_verified(&self, id: &str) -> Result<(), ApiError> {
        let sql = "UPDATE _fb_users SET email_verified = ?, updated_at = ? WHERE id = ?";
        self.db.write(self.db.stmt(sql, vec![true.into(), now_ms().into(), id.into()])).await?;
        Ok(())
    }

    pub async fn set_roles(&self, id: &str, roles: &[String]) -> Result<Option<User>, ApiError> {
        let sql = format!("UPDATE _fb_users SET roles = ?, updated_at = ? WHERE id = ? RETURNING {COLUMNS}");
        let params = vec![Value::Json(json!(roles)), now_ms().into(), id.into()];
        let rows = self.db.write(self.db.stmt(&sql, params)).await?;
        Ok(rows.rows.first().map(|r| User::from_row(r)))
    }

    /// A page of users, newest first, optionally those whose email contains `search`.
    pub async fn list_users(
        &self,
        search: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<User>, i64), ApiError> {
        let pattern = search.map(|s| {
            let escaped: String = s
                .to_lowercase()
                .chars()
                .flat_map(|c| match c {
                    '\\' | '%' | '_' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            format!("%{escaped}%")
        });
        let filter = if pattern.is_some() { " WHERE email LIKE ? ESCAPE '\\'" } else { "" };
        let params: Vec<Value> = pattern.into_iter().map(Into::into).collect();
        let select =
            format!("SELECT {COLUMNS} FROM _fb_users{filter} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?");
        let count = format!("SELECT COUNT(*) FROM _fb_users{filter}");
        let (rows, total) = self.paged(&select, &count, params, limit, offset).await?;
        let users = rows.rows.iter().map(|r| User::from_row(r)).collect();
        Ok((users, total))
    }

    /// Records a failed login; locks the account once `max_attempts` is reached. Returns
    /// the time the lock ends, when it is locked now.
    pub async fn record_failed_login(
        &self,
        id: &str,
        max_attempts: i64,
        lock_ms: i64,
    ) -> Result<Option<i64>, ApiError> {
        let count = self.db.stmt(
            "UPDATE _fb_users SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins",
            vec![id.into()],
        );
        let lock = "UPDATE _fb_users SET failed_logins = 0, locked_until = ? WHERE id = ?";
        self.count_failure(count, lock, id.into(), max_attempts, lock_ms).await
    }

    /// Runs `count` (which answers the failures so far); once they reach `max_attempts`, runs
    /// `lock` (its parameters: the lock's end, then `key`) and returns the lock's end.
    async fn count_failure(
        &self,
        count: crate::data::Stmt,
        lock: &str,
        key: Value,
        max_attempts: i64,
        lock_ms: i64,
    ) -> Result<Option<i64>, ApiError> {
        let rows = self.db.write(count).await?;
        let failures = rows.rows.first().and_then(|r| r[0].as_int()).unwrap_or(0);
        if max_attempts <= 0 || failures < max_attempts {
            return Ok(None);
        }
        let until = now_ms() + lock_ms;
        self.db.write(self.db.stmt(lock, vec![until.into(), key])).await?;
        Ok(Some(until))
    }

    /// Counts one password sign-in attempt of an account (`user`) or of an email without one,
    /// before the password is checked: the failures so far with this one, and the end of a lock
    /// in force (during which nothing is counted). Emails without an account are kept as
    /// SHA-256 hashes, so that the lockout's answers do not tell which emails have one.
    pub async fn claim_sign_in(&self, user: Option<&str>, email: &str) -> Result<SignInClaim, ApiError> {
        let now = now_ms();
        let stmt = match user {
            Some(id) => self.db.stmt(
                "UPDATE _fb_users SET failed_logins = CASE WHEN locked_until > ? THEN failed_logins \
                 ELSE failed_logins + 1 END WHERE id = ? RETURNING failed_logins, locked_until",
                vec![now.into(), id.into()],
            ),
            None => self.db.stmt(
                "INSERT INTO _fb_login_failures (email_hash, failed_logins, updated_at) VALUES (?, 1, ?) \
                 ON CONFLICT (email_hash) DO UPDATE SET failed_logins = CASE \
                 WHEN _fb_login_failures.locked_until > ? THEN _fb_login_failures.failed_logins \
                 ELSE _fb_login_failures.failed_logins + 1 END, updated_at = excluded.updated_at \
                 RETURNING failed_logins, locked_until",
                vec![sha256_hex(email).into(), now.into(), now.into()],
            ),
        };
        let rows = self.db.write(stmt).await?;
        let row = rows.rows.first();
        Ok(SignInClaim {
            count: row.and_then(|r| r[0].as_int()).unwrap_or(0),
            locked_until: row.and_then(|r| r[1].as_int()).filter(|until| *until > now),
        })
    }

    /// Locks the sign-ins of an account or of an email without one until `until`.
    pub async fn lock_sign_in(&self, user: Option<&str>, email: &str, until: i64) -> Result<(), ApiError> {
        let stmt = match user {
            Some(id) => self.db.stmt(
                "UPDATE _fb_users SET failed_logins = 0, locked_until = ? WHERE id = ?",
                vec![until.into(), id.into()],
            ),
            None => self.db.stmt(
                "UPDATE _fb_login_failures SET failed_logins = 0, locked_until = ? WHERE email_hash = ?",
                vec![until.into(), sha256_hex(email).into()],
            ),
        };
        self.db.write(stmt).await?;
        Ok(())
    }

    /// A right password of an account with 2FA on: the attempt counted for it is taken back,
    /// the failures counted before it (wrong codes among them) stay.
    pub async fn release_sign_in_attempt(&self, id: &str) -> Result<(), ApiError> {
        let sql = "UPDATE _fb_users SET failed_logins = CASE WHEN failed_logins > 0 THEN failed_logins - 1 ELSE 0 END \
                   WHERE id = ?";
        self.db.write(self.db.stmt(sql, vec![id.into()])).await?;
        Ok(())
    }

    /// A successful sign-in: the failures counted so far are forgotten.
    pub async fn reset_sign_in(&self, id: &str) -> Result<(), ApiError> {
        let sql = "UPDATE _fb_users SET failed_logins = 0, locked_until = NULL WHERE id = ?";
        self.db.write(self.db.stmt(sql, vec![id.into()])).await?;
        Ok(())
    }

    pub async fn clear_failed_logins(&self, user: &User) -> Result<(), ApiError> {
        if user.failed_logins == 0 && user.locked_until.is_none() {
            return Ok(());
        }
        let sql = "UPDATE _fb_users SET failed_logins = 0, locked_until = NULL WHERE id = ?";
        self.db.write(self.db.stmt(sql, vec![user.id.as_str().into()])).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalize_email("  Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in
            ["", "ada", "@example.com", "ada@", "ada@example", "a da@example.com", "ada@.com", "ada@example.com."]
        {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        // Forms a mail system reads as another address, or as several.
        for bad in [
            "<x@example.com>",
            "x@example.com>",
            "<x@example.com",
            "a@b@example.com",
            "a,b@example.com",
            "a;b@example.com",
            "\"a b\"@example.com",
            "x@-example.com",
            "x@example-.com",
            "x@exa_mple.com",
            "x@[127.0.0.1]",
            ".x@example.com",
            "x.@example.com",
            "x..y@example.com",
            "x(comment)@example.com",
            "x@example..com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        for good in ["first.last+tag@sub.example.co.uk", "o'brien@example.ie", "x_y-z@a-b.example", "zoë@例え.jp"] {
            assert!(normalize_email(good).is_ok(), "{good}");
        }
        // One address, however its letters are composed.
        assert_eq!(
            normalize_email("Zoe\u{0308}@example.com").unwrap(),
            normalize_email("zo\u{00eb}@example.com").unwrap()
        );
    }
}
