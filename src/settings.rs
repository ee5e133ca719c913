//! Runtime settings: typed values stored in `_fb_settings`, read through this one module.
//! Values are cached; the cache is re-read from the database periodically (so a change made
//! by another instance takes effect within [`REFRESH_INTERVAL`]) and at once on the instance
//! that made the change. Every change is recorded in `_fb_settings_audit`, secrets masked.
//! Secret settings are stored sealed (AES-256-GCM, a key derived from the JWT secret): the
//! database, and every backup of it, holds no mail password or API key in clear.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value as Json, json};

use crate::auth::crypto::SecretBox;
use crate::data::{Db, DbError, Stmt, Value};
use crate::error::ApiError;

/// How often every instance re-reads the settings.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// How a secret setting is shown: set or not, never its value.
pub const MASK: &str = "********";

/// What begins a sealed secret's stored text; a secret without it was stored in clear by an
/// earlier version, and is sealed at the next start.
const SEALED_PREFIX: &str = "sealed:";

/// The values a setting takes.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool,
    /// A whole number within these bounds.
    Int(i64, i64),
    Text,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// Comma-separated IP addresses and CIDR ranges.
    Networks,
    /// `*`, or comma-separated web origins.
    Origins,
    /// An absolute `http://` or `https://` URL.
    Url,
    /// A mailbox: `name@host`, or `Name <name@host>`.
    Mailbox,
}

/// One known setting.
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: &'static str,
    pub default: Json,
    pub kind: Kind,
    /// Write-only: shown and exported masked, recorded masked in the audit log.
    pub secret: bool,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

fn setting(key: &'static str, default: Json, kind: Kind) -> Setting {
    Setting { key, default, kind, secret: false }
}

/// Every known setting: its default and the values it takes.
pub fn registry() -> Vec<Setting> {
    use Kind::*;
    vec![
        setting("auto_create_collections", json!(true), Bool),
        setting("auto_create_buckets", json!(false), Bool),
        setting("maintenance_mode", json!(false), Bool),
        setting("registration_open", json!(true), Bool),
        setting("single_session_mode", json!(false), Bool),
        setting("lockout_max_attempts", json!(10), Int(1, 1_000_000)),
        setting("lockout_duration_ms", json!(900_000), Int(0, 365 * DAY_MS)),
        setting("access_token_ttl_seconds", json!(900), Int(1, 365 * 24 * 3600)),
        setting("refresh_token_ttl_days", json!(30), Int(1, 3650)),
        setting("refresh_token_reuse_interval_seconds", json!(0), Int(0, 300)),
        setting("password_min_length", json!(8), Int(1, 1024)),
        setting("require_email_verification", json!(false), Bool),
        setting("email_provider", json!("console"), OneOf(&["console", "smtp", "resend"])),
        setting("email_from", json!("noreply@localhost"), Mailbox),
        setting("app_name", json!("Ferrobase"), Text),
        setting("app_url", json!("http://localhost:8080"), Url),
        setting("smtp_host", json!(""), Text),
        setting("smtp_port", json!(587), Int(1, 65_535)),
        setting("smtp_username", json!(""), Text),
        Setting { secret: true, ..setting("smtp_password", json!(""), Text) },
        setting("smtp_tls", json!("starttls"), OneOf(&["tls", "starttls", "none"])),
        Setting { secret: true, ..setting("resend_api_key", json!(""), Text) },
        setting("resend_api_url", json!("https://api.resend.com"), Url),
        Setting { secret: true, ..setting("metrics_token", json!(""), Text) },
        setting("rate_limit_public_reads", json!(200), Int(0, 1_000_000)),
        setting("rate_limit_auth", json!(10), Int(0, 1_000_000)),
        setting("rate_limit_crud", json!(500), Int(0, 1_000_000)),
        setting("rate_limit_admin", json!(50), Int(0, 1_000_000)),
        setting("rate_limit_uploads", json!(20), Int(0, 1_000_000)),
        setting("trusted_proxies", json!(""), Networks),
        setting("client_ip_header", json!("x-forwarded-for"), OneOf(&["x-forwarded-for", "forwarded"])),
        setting("cors_origins", json!("*"), Origins),
        setting("log_level", json!(crate::logging::DEFAULT_LEVEL), OneOf(crate::logging::LEVELS)),
    ]
}

/// Every known setting and its default.
pub fn defaults() -> Vec<(&'static str, Json)> {
    registry().into_iter().map(|s| (s.key, s.default)).collect()
}

impl Setting {
    /// `value` when this setting takes it; else the reason, naming the setting.
    fn check(&self, value: &Json) -> Result<(), String> {
        let key = self.key;
        // PostgreSQL's JSON text cannot hold NUL; refused on both backends alike.
        if value.as_str().is_some_and(|s| s.contains('\0')) {
            return Err(format!("setting '{key}' holds a NUL character"));
        }
        if let Json::String(text) = value {
            if text.len() > crate::limits::MAX_SETTING_BYTES {
                return Err(format!(
                    "setting '{key}' is longer than {} bytes (MAX_SETTING_BYTES)",
                    crate::limits::MAX_SETTING_BYTES
                ));
            }
            // Every setting is one line: a line break in a name or host could start a new
            // header of the mail it goes into.
            if text.chars().any(char::is_control) {
                return Err(format!("setting '{key}' holds a control character (a line break, a tab…)"));
            }
        }
        match (self.kind, value) {
            (Kind::Bool, Json::Bool(_)) | (Kind::Text, Json::String(_)) => Ok(()),
            (Kind::Bool, _) => Err(format!("setting '{key}' is true or false")),
            (Kind::Text, _) => Err(format!("setting '{key}' is a string")),
            (Kind::Int(min, max), value) => match value.as_i64() {
                Some(n) if (min..=max).contains(&n) => Ok(()),
                _ => Err(format!("setting '{key}' is a whole number from {min} to {max}")),
            },
            (Kind::OneOf(words), Json::String(word)) if words.contains(&word.as_str()) => Ok(()),
            (Kind::OneOf(words), _) => Err(format!("setting '{key}' is one of {}", words.join(", "))),
            (Kind::Networks, Json::String(list)) => {
                crate::net::parse_proxies(list).map(|_| ()).map_err(|why| format!("setting '{key}': {why}"))
            }
            (Kind::Networks, _) => Err(format!("setting '{key}' is a string of IPs and CIDR ranges, comma-separated")),
            (Kind::Origins, Json::String(list)) => {
                crate::net::Origins::parse(list).map(|_| ()).map_err(|why| format!("setting '{key}': {why}"))
            }
            (Kind::Origins, _) => Err(format!("setting '{key}' is '*' or a string of origins, comma-separated")),
            // Links in mail are built on it: nothing but a web address may stand there.
            (Kind::Url, Json::String(url)) if is_web_url(url) => Ok(()),
            (Kind::Url, _) => Err(format!("setting '{key}' is an absolute http:// or https:// URL")),
            (Kind::Mailbox, Json::String(mailbox)) if mailbox.parse::<lettre::message::Mailbox>().is_ok() => Ok(()),
            (Kind::Mailbox, _) => Err(format!("setting '{key}' is an email address (or 'Name <address>')")),
        }
    }

    /// The value as the API shows it.
    fn shown(&self, value: Json) -> Json {
        if !self.secret {
            return value;
        }
        json!(if value.as_str().is_some_and(|s| !s.is_empty()) { MASK } else { "" })
    }
}

/// A stored setting's value: JSON text on SQLite, JSON on PostgreSQL.
fn stored_json(value: &Value) -> Json {
    match value {
        Value::Text(text) => serde_json::from_str(text).unwrap_or(Json::Null),
        other => other.to_json(),
    }
}

/// `http://host…` or `https://host…`, without white space or control characters.
fn is_web_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// The stored settings as one re-read found them; `number` orders re-reads by their start.
struct StoredRead {
    number: u64,
    rows: Vec<Vec<Value>>,
}

pub struct Settings {
    db: Db,
    /// Seals and opens the secret settings' stored values.
    sealer: SecretBox,
    values: RwLock<Applied>,
    /// Numbers the re-reads in the order they start: a re-read that started before the one
    /// applied last is dropped when it ends, so a slow read made before a change committed
    /// never puts the old values back after the change's own re-read (the instance that took
    /// a change applies it at once, and keeps it).
    reads_started: AtomicU64,
}

/// The values in force, and the number of the re-read they came from.
#[derive(Default)]
struct Applied {
    read: u64,
    values: HashMap<String, Json>,
}

impl Settings {
    /// Loads the settings, sealing any secret an earlier version stored in clear.
    /// `jwt_secret` is the server's JWT secret; the key that seals secret settings is derived
    /// from it.
    pub async fn load(db: Db, jwt_secret: &str) -> Result<Settings, DbError> {
        let sealing_key = crate::auth::crypto::hmac_sha256(jwt_secret.as_bytes(), b"ferrobase settings sealing key");
        let settings = Settings {
            db,
            sealer: SecretBox::new(&sealing_key),
            values: RwLock::default(),
            reads_started: AtomicU64::new(0),
        };
        let in_clear = settings.reread().await?;
        settings.seal(in_clear).await?;
        Ok(settings)
    }

    /// Rewrites sealed the secret settings `in_clear` (key, stored value). Each update names
    /// the clear value, so a change another instance makes meanwhile is never overwritten.
    async fn seal(&self, in_clear: Vec<(String, String)>) -> Result<(), DbError> {
        let stmts: Vec<Stmt> = in_clear
            .into_iter()
            .map(|(key, clear)| {
                self.db.stmt(
                    "UPDATE _fb_settings SET value = ? WHERE key = ? AND value = ?",
                    vec![self.sealed(&clear), key.into(), Value::Json(json!(clear))],
                )
            })
            .collect();
        if !stmts.is_empty() {
            self.db.write_many(stmts).await?;
        }
        Ok(())
    }

    /// How a secret's value is stored: sealed, or the empty string for "not set".
    fn sealed(&self, clear: &str) -> Value {
        if clear.is_empty() {
            return Value::Json(json!(""));
        }
        Value::Json(json!(format!("{SEALED_PREFIX}{}", self.sealer.seal(clear.as_bytes()))))
    }

    /// A secret's value from its stored form. One sealed under another JWT secret (a backup
    /// restored elsewhere, a rotated secret) cannot be opened: it reads as not set, and the
    /// admin must enter it again.
    fn opened(&self, key: &str, stored: Json) -> Json {
        let Some(sealed) = stored.as_str().and_then(|s| s.strip_prefix(SEALED_PREFIX)) else {
            return stored;
        };
        match self.sealer.open(sealed).and_then(|clear| String::from_utf8(clear).ok()) {
            Some(clear) => Json::String(clear),
            None => {
                tracing::warn!(setting = key, "a secret setting was sealed under another JWT secret; set it again");
                json!("")
            }
        }
    }

    /// Re-reads every stored value over the defaults.
    pub async fn refresh(&self) -> Result<(), DbError> {
        self.reread().await.map(|_| ())
    }

    /// [`Settings::refresh`]; returns the secrets found stored in clear (by an earlier
    /// version), with their values.
    async fn reread(&self) -> Result<Vec<(String, String)>, DbError> {
        let read = self.read_stored().await?;
        Ok(self.apply(read))
    }

    /// The stored values as one re-read finds them, numbered in the order re-reads start.
    async fn read_stored(&self) -> Result<StoredRead, DbError> {
        let number = self.reads_started.fetch_add(1, Ordering::SeqCst) + 1;
        let rows = self.db.read(Stmt::new("SELECT key, value FROM _fb_settings", vec![])).await?;
        Ok(StoredRead { number, rows: rows.rows })
    }

    /// Puts a re-read's values over the defaults in force, unless a re-read that started
    /// later was applied first; returns the secrets found stored in clear.
    fn apply(&self, read: StoredRead) -> Vec<(String, String)> {
        let secrets: Vec<&str> = registry().into_iter().filter(|s| s.secret).map(|s| s.key).collect();
        let mut values: HashMap<String, Json> = defaults().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let mut in_clear = Vec::new();
        for row in read.rows {
            let Some(key) = row[0].as_text() else {
                continue;
            };
            let stored = stored_json(&row[1]);
            let value = if secrets.contains(&key) {
                if let Some(clear) = stored.as_str().filter(|s| !s.is_empty() && !s.starts_with(SEALED_PREFIX)) {
                    in_clear.push((key.to_owned(), clear.to_owned()));
                }
                self.opened(key, stored)
            } else {
                stored
            };
            values.insert(key.to_owned(), value);
        }
        let level = values.get("log_level").and_then(Json::as_str).map(str::to_owned);
        let previous = {
            let mut current = self.values.write().expect("settings lock");
            if read.number < current.read {
                return in_clear;
            }
            current.read = read.number;
            std::mem::replace(&mut current.values, values)
        };
        if let Some(level) = level
            && previous.get("log_level").and_then(Json::as_str) != Some(level.as_str())
        {
            crate::logging::apply(&level);
        }
        in_clear
    }

    fn value(&self, key: &str) -> Option<Json> {
        self.values.read().expect("settings lock").values.get(key).cloned()
    }

    /// Reads one value in place: the getters run on every request, so nothing is cloned.
    fn with<T>(&self, key: &str, read: impl FnOnce(&Json) -> Option<T>) -> Option<T> {
        self.values.read().expect("settings lock").values.get(key).and_then(read)
    }

    pub fn get_bool(&self, key: &str) -> bool {
        self.with(key, Json::as_bool).unwrap_or(false)
    }

    pub fn get_str(&self, key: &str) -> String {
        self.with_str(key, str::to_owned).unwrap_or_default()
    }

    /// Reads a text value in place, without copying it.
    pub fn with_str<T>(&self, key: &str, read: impl FnOnce(&str) -> T) -> Option<T> {
        self.with(key, |v| v.as_str().map(read))
    }

    pub fn get_i64(&self, key: &str) -> i64 {
        self.with(key, Json::as_i64).unwrap_or(0)
    }

    /// Every setting, secrets masked: what the admin API shows and exports.
    pub fn snapshot(&self) -> Map<String, Json> {
        registry()
            .into_iter()
            .map(|s| {
                let value = self.value(s.key).unwrap_or_else(|| s.default.clone());
                (s.key.to_owned(), s.shown(value))
            })
            .collect()
    }

    /// Validates and stores several settings at once, records each change in the audit log
    /// (as `actor`), then reloads. Every key must be known and every value one its setting
    /// takes; one bad pair refuses them all. A secret given as [`MASK`] keeps its value (so an
    /// export imports back without erasing credentials). Returns the keys that changed.
    pub async fn update(&self, changes: &Map<String, Json>, actor: &str) -> Result<Vec<String>, ApiError> {
        let known = registry();
        let mut stmts = Vec::new();
        let mut changed = Vec::new();
        let now = crate::util::now_ms();
        for (key, value) in changes {
            let Some(setting) = known.iter().find(|s| s.key == key) else {
                return Err(ApiError::bad_field(key, format!("unknown setting '{key}'")));
            };
            setting.check(value).map_err(|why| ApiError::bad_field(key, why))?;
            let old = self.value(key).unwrap_or_else(|| setting.default.clone());
            if (setting.secret && value.as_str() == Some(MASK)) || &old == value {
                continue;
            }
            let stored = match value.as_str() {
                Some(clear) if setting.secret => self.sealed(clear),
                _ => Value::Json(value.clone()),
            };
            stmts.push(self.db.stmt(
                "INSERT INTO _fb_settings (key, value, updated_at) VALUES (?, ?, ?) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                vec![key.as_str().into(), stored, now.into()],
            ));
            stmts.push(self.db.stmt(
                "INSERT INTO _fb_settings_audit (id, changed_at, actor, key, old_value, new_value) VALUES (?, ?, ?, ?, ?, ?)",
                vec![
                    uuid::Uuid::now_v7().to_string().into(),
                    now.into(),
                    actor.into(),
                    key.as_str().into(),
                    Value::Json(setting.shown(old)),
                    Value::Json(setting.shown(value.clone())),
                ],
            ));
            changed.push(key.clone());
        }
        if !stmts.is_empty() {
            self.db.write_many(stmts).await?;
        }
        self.refresh().await?;
        Ok(changed)
    }

    /// The audit log, newest first, and how many entries there are.
    pub async fn audit(&self, limit: u32, offset: u64) -> Result<(Vec<Json>, i64), ApiError> {
        let page = self.db.stmt(
            "SELECT id, changed_at, actor, key, old_value, new_value FROM _fb_settings_audit \
             ORDER BY changed_at DESC, id DESC LIMIT ? OFFSET ?",
            vec![Value::Int(limit.into()), Value::Int(offset as i64)],
        );
        let count = self.db.stmt("SELECT COUNT(*) FROM _fb_settings_audit", vec![]);
        let mut results = self.db.read_many(vec![page, count]).await?;
        let total = results.pop().and_then(|r| r.rows.first().and_then(|row| row[0].as_int())).unwrap_or(0);
        let items = results
            .pop()
            .map(|r| r.rows)
            .unwrap_or_default()
            .into_iter()
            .map(|row| {
                json!({
                    "id": row[0].to_json(),
                    "changed_at": row[1].to_json(),
                    "actor": row[2].to_json(),
                    "key": row[3].to_json(),
                    "old_value": row[4].as_json(),
                    "new_value": row[5].as_json(),
                })
            })
            .collect();
        Ok((items, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(key: &str) -> Setting {
        registry().into_iter().find(|s| s.key == key).unwrap()
    }

    #[tokio::test]
    async fn a_read_made_before_a_change_never_undoes_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(dir.path(), 2, crate::data::Synchronous::Normal).unwrap();
        crate::data::Store::open(db.clone()).await.unwrap();
        let settings = Settings::load(db, "a JWT secret of thirty-two bytes or more").await.unwrap();
        let before = settings.get_i64("lockout_duration_ms");
        // A re-read (a peer's news, the periodic one) reads the old values, then stalls ...
        let stale = settings.read_stored().await.unwrap();
        let change: Map<String, Json> = [("lockout_duration_ms".to_owned(), json!(before + 1))].into_iter().collect();
        settings.update(&change, "admin").await.unwrap();
        assert_eq!(settings.get_i64("lockout_duration_ms"), before + 1);
        // ... and ends after the change's own re-read: its old values are dropped.
        settings.apply(stale);
        assert_eq!(settings.get_i64("lockout_duration_ms"), before + 1);
        // A re-read started after the change applies as usual.
        let fresh = settings.read_stored().await.unwrap();
        settings.apply(fresh);
        assert_eq!(settings.get_i64("lockout_duration_ms"), before + 1);
    }

    #[test]
    fn every_default_is_a_value_its_setting_takes() {
        for s in registry() {
            assert!(s.check(&s.default).is_ok(), "{}", s.key);
        }
    }

    #[test]
    fn values_are_checked_by_kind_and_bounds() {
        assert!(find("registration_open").check(&json!("yes")).is_err());
        assert!(find("smtp_port").check(&json!(0)).is_err());
        assert!(find("smtp_port").check(&json!(65_536)).is_err());
        assert!(find("smtp_port").check(&json!(25.5)).is_err());
        assert!(find("smtp_port").check(&json!(25)).is_ok());
        assert!(find("email_provider").check(&json!("carrier-pigeon")).is_err());
        assert!(find("email_provider").check(&json!("smtp")).is_ok());
        assert!(find("app_name").check(&json!(1)).is_err());
        assert!(find("app_name").check(&json!("a\u{0}b")).is_err());
        assert!(find("log_level").check(&json!("loud")).is_err());
        assert!(find("log_level").check(&json!("debug")).is_ok());
        assert!(find("cors_origins").check(&json!("app.example.com")).is_err());
        assert!(find("cors_origins").check(&json!("https://app.example.com, http://localhost:5173")).is_ok());
        for bad in ["javascript:alert(1)", "//evil.example", "https://", "https://a b.example", "ftp://files.example"] {
            assert!(find("app_url").check(&json!(bad)).is_err(), "{bad}");
        }
        assert!(find("app_url").check(&json!("https://app.example.com/base")).is_ok());
        for bad in ["not an email", "a@", "<x@example.com", "x@example.com\r\nBcc: y@example.com"] {
            assert!(find("email_from").check(&json!(bad)).is_err(), "{bad}");
        }
        assert!(find("email_from").check(&json!("Acme <hello@acme.test>")).is_ok());
        assert!(find("email_from").check(&json!("hello@acme.test")).is_ok());
    }

    #[test]
    fn secrets_are_shown_masked() {
        assert_eq!(find("smtp_password").shown(json!("hunter2")), json!(MASK));
        assert_eq!(find("smtp_password").shown(json!("")), json!(""));
        assert_eq!(find("app_name").shown(json!("x")), json!("x"));
    }
}
