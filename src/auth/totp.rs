//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of skew), with
//! replay protection (a step is accepted once) and one-time recovery codes. The secret is
//! stored sealed, never in clear.

use totp_rs::Builder;

use super::crypto::{base32, random_token, sha256_hex};
use super::{Auth, User};
use crate::data::DbError;
use crate::error::ApiError;
use crate::util::now_ms;

const RECOVERY_CODES: usize = 10;

fn already_enabled() -> ApiError {
    ApiError::Conflict("two-factor authentication is already enabled".into())
}

/// What `2fa/setup` answers.
pub struct Setup {
    pub secret: String,
    pub otpauth_url: String,
}

fn totp_for(secret: &[u8], account: &str, issuer: &str) -> Result<totp_rs::Totp, ApiError> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_account_name(account.replace(':', "_"))
        .with_issuer(Some(issuer.replace(':', "_")))
        .build()
        .map_err(ApiError::internal)
}

impl Auth {
    /// Starts 2FA setup: a new secret, stored sealed, not yet enabled.
    pub async fn totp_setup(&self, user: &User, issuer: &str) -> Result<Setup, ApiError> {
        if user.totp_enabled {
            return Err(already_enabled());
        }
        let mut secret = [0u8; 20];
        rand::fill(&mut secret[..]);
        let totp = totp_for(&secret, &user.email, issuer)?;
        let otpauth_url = totp.to_url().map_err(ApiError::internal)?;
        // Only while 2FA is still off: an enable that committed since the user was read keeps
        // the secret it confirmed.
        self.db
            .write(
                self.db
                    .stmt(
                        "UPDATE _fb_users SET totp_secret = ?, totp_last_step = NULL, updated_at = ? \
                         WHERE id = ? AND totp_enabled = ?",
                        vec![self.sealer.seal(&secret).into(), now_ms().into(), user.id.as_str().into(), false.into()],
                    )
                    .must_change(),
            )
            .await
            .map_err(|err| match err {
                DbError::NoRowChanged(_) => already_enabled(),
                other => other.into(),
            })?;
        Ok(Setup { secret: base32(&secret), otpauth_url })
    }

    /// Enables 2FA once a code from the new secret proves the app has it. Answers the
    /// recovery codes, which are shown this once.
    pub async fn totp_enable(&self, user: &User, code: &str) -> Result<Vec<String>, ApiError> {
        if user.totp_enabled {
            return Err(already_enabled());
        }
        if user.totp_secret.is_none() {
            return Err(ApiError::bad_request("call 2fa/setup first"));
        }
        if !self.totp_code_ok(user, code).await? {
            return Err(ApiError::bad_field("code", "invalid code"));
        }
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| {
                let raw = random_token(8).to_lowercase().replace(['-', '_'], "x");
                format!("{}-{}", &raw[..5], &raw[5..10])
            })
            .collect();
        // First, and only while the secret is the one the code was checked against and 2FA
        // is still off: a setup that committed since the user was read (a new secret the
        // authenticator does not have) or another enable refuses this one.
        let mut stmts = vec![
            self.db
                .stmt(
                    "UPDATE _fb_users SET totp_enabled = ?, updated_at = ? WHERE id = ? AND totp_enabled = ? AND totp_secret = ?",
                    vec![
                        true.into(),
                        now_ms().into(),
                        user.id.as_str().into(),
                        false.into(),
                        user.totp_secret.clone().into(),
                    ],
                )
                .must_change(),
            self.db.stmt("DELETE FROM _fb_recovery_codes WHERE user_id = ?", vec![user.id.as_str().into()]),
        ];
        for code in &codes {
            stmts.push(self.db.stmt(
                "INSERT INTO _fb_recovery_codes (code_hash, user_id) VALUES (?, ?)",
                vec![sha256_hex(code).into(), user.id.as_str().into()],
            ));
        }
        self.db.write_many(stmts).await.map_err(|err| match err {
            DbError::InStatement { index: 0, source } if matches!(*source, DbError::NoRowChanged(_)) => {
                ApiError::Conflict(
                    "two-factor authentication was set up again or enabled during this request; start again with 2fa/setup"
                        .into(),
                )
            }
            other => other.into(),
        })?;
        Ok(codes)
    }

    /// Turns 2FA off; needs a current code or a recovery code.
    pub async fn totp_disable(&self, user: &User, code: &str) -> Result<(), ApiError> {
        if !user.totp_enabled {
            return Err(ApiError::bad_request("two-factor authentication is not enabled"));
        }
        if !self.second_factor_ok(user, code).await? {
            return Err(ApiError::bad_field("code", "invalid code"));
        }
        self.db
            .write_many(vec![
                self.db.stmt(
                    "UPDATE _fb_users SET totp_enabled = ?, totp_secret = NULL, totp_last_step = NULL, updated_at = ? WHERE id = ?",
                    vec![false.into(), now_ms().into(), user.id.as_str().into()],
                ),
                self.db.stmt("DELETE FROM _fb_recovery_codes WHERE user_id = ?", vec![user.id.as_str().into()]),
            ])
            .await?;
        Ok(())
    }

    /// A TOTP code or an unused recovery code (which is then spent).
    pub async fn second_factor_ok(&self, user: &User, code: &str) -> Result<bool, ApiError> {
        if self.totp_code_ok(user, code).await? {
            return Ok(true);
        }
        let normalized = code.trim().to_lowercase();
        let rows = self
            .db
            .write(self.db.stmt(
                "UPDATE _fb_recovery_codes SET used_at = ? WHERE code_hash = ? AND user_id = ? AND used_at IS NULL",
                vec![now_ms().into(), sha256_hex(&normalized).into(), user.id.as_str().into()],
            ))
            .await?;
        Ok(rows.affected > 0)
    }

    /// Checks a TOTP code and records its step, so the same code cannot be used twice.
    async fn totp_code_ok(&self, user: &User, code: &str) -> Result<bool, ApiError> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(false);
        }
        let Some(secret) = user.totp_secret.as_deref().and_then(|s| self.sealer.open(s)) else {
            return Ok(false);
        };
        let totp = totp_for(&secret, &user.email, "ferrobase")?;
        let now = (now_ms() / 1000) as u64;
        let Some(step) = totp.check(code, now) else { return Ok(false) };
        // Accept a step only if it is newer than the last one accepted (atomic against races).
        let rows = self
            .db
            .write(self.db.stmt(
                "UPDATE _fb_users SET totp_last_step = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)",
                vec![(step as i64).into(), user.id.as_str().into(), (step as i64).into()],
            ))
            .await?;
        Ok(rows.affected > 0)
    }
}

/// The current code for a base32 secret: what an authenticator app shows (used by tests).
pub fn code_for(secret_base32: &str, unix_seconds: u64) -> Option<String> {
    let secret = decode_base32(secret_base32)?;
    let totp = Builder::new().with_secret(secret).build().ok()?;
    Some(totp.generate(unix_seconds).to_string())
}

fn decode_base32(s: &str) -> Option<Vec<u8>> {
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for ch in s.trim_end_matches('=').chars() {
        let value = match ch {
            'A'..='Z' => ch as u32 - 'A' as u32,
            '2'..='7' => ch as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_rfc6238() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890", T = 59 → 94287082 (8 digits);
        // the 6-digit code is its last six digits.
        let secret = base32(b"12345678901234567890");
        assert_eq!(code_for(&secret, 59).unwrap(), "287082");
        assert_eq!(code_for(&secret, 1111111109).unwrap(), "081804");
        assert_eq!(decode_base32(&secret).unwrap(), b"12345678901234567890");
        assert!(decode_base32("not base32!").is_none());
    }
}
