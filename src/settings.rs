//! Runtime settings: typed values stored in `_fb_settings`, read through this one module.
//! Values are cached; the cache is re-read from the database periodically (so a change made
//! by another instance takes effect within [`REFRESH_INTERVAL`]) and at once on the instance
//! that made the change.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::data::{Db, DbError, Stmt};

/// How often every instance re-reads the settings.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Every known setting and its default.
pub fn defaults() -> Vec<(&'static str, Json)> {
    vec![
        ("auto_create_collections", json!(true)),
        ("auto_create_buckets", json!(false)),
        ("maintenance_mode", json!(false)),
        ("registration_open", json!(true)),
        ("single_session_mode", json!(false)),
        ("lockout_max_attempts", json!(10)),
        ("lockout_duration_ms", json!(900_000)),
        ("access_token_ttl_seconds", json!(900)),
        ("refresh_token_ttl_days", json!(30)),
        ("password_min_length", json!(8)),
        ("require_email_verification", json!(false)),
        ("email_provider", json!("console")),
        ("email_from", json!("noreply@localhost")),
        ("app_name", json!("Ferrobase")),
        ("app_url", json!("http://localhost:8080")),
        ("smtp_host", json!("")),
        ("smtp_port", json!(587)),
        ("smtp_username", json!("")),
        ("smtp_password", json!("")),
        ("smtp_tls", json!("starttls")),
        ("resend_api_key", json!("")),
        ("resend_api_url", json!("https://api.resend.com")),
    ]
}

/// Settings whose values are never shown back (only whether they are set).
pub const WRITE_ONLY: &[&str] = &["smtp_password", "resend_api_key"];

pub struct Settings {
    db: Db,
    values: RwLock<HashMap<String, Json>>,
}

impl Settings {
    pub async fn load(db: Db) -> Result<Settings, DbError> {
        let settings = Settings { db, values: RwLock::new(HashMap::new()) };
        settings.refresh().await?;
        Ok(settings)
    }

    /// Re-reads every stored value over the defaults.
    pub async fn refresh(&self) -> Result<(), DbError> {
        let rows = self.db.read(Stmt::new("SELECT key, value FROM _fb_settings", vec![])).await?;
        let mut values: HashMap<String, Json> = defaults().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        for row in rows.rows {
            let (Some(key), value) = (row[0].as_text(), &row[1]) else {
                continue;
            };
            let parsed = match value {
                crate::data::Value::Text(text) => serde_json::from_str(text).unwrap_or(Json::Null),
                other => other.to_json(),
            };
            values.insert(key.to_owned(), parsed);
        }
        *self.values.write().expect("settings lock") = values;
        Ok(())
    }

    pub fn get_bool(&self, key: &str) -> bool {
        self.values.read().expect("settings lock").get(key).and_then(Json::as_bool).unwrap_or(false)
    }

    pub fn get_str(&self, key: &str) -> String {
        self.values.read().expect("settings lock").get(key).and_then(Json::as_str).unwrap_or("").to_owned()
    }

    /// Every setting, write-only ones masked: what the admin API shows.
    pub fn snapshot(&self) -> serde_json::Map<String, Json> {
        let values = self.values.read().expect("settings lock");
        defaults()
            .into_iter()
            .map(|(key, default)| {
                let value = values.get(key).cloned().unwrap_or(default);
                let shown = if WRITE_ONLY.contains(&key) {
                    json!(if value.as_str().is_some_and(|s| !s.is_empty()) { "********" } else { "" })
                } else {
                    value
                };
                (key.to_owned(), shown)
            })
            .collect()
    }

    /// Validates and stores several settings at once, then reloads. Every key must be known
    /// and every value of its default's JSON type.
    pub async fn update(&self, changes: &serde_json::Map<String, Json>) -> Result<(), crate::error::ApiError> {
        use crate::error::ApiError;
        let known = defaults();
        let mut stmts = Vec::new();
        for (key, value) in changes {
            let Some((_, default)) = known.iter().find(|(k, _)| k == key) else {
                return Err(ApiError::bad_field(key, format!("unknown setting '{key}'")));
            };
            let same_type =
                matches!((default, value), (Json::Bool(_), Json::Bool(_)) | (Json::String(_), Json::String(_)))
                    || (default.is_number() && value.as_i64().is_some_and(|n| n >= 0));
            if !same_type {
                return Err(ApiError::bad_field(key, format!("setting '{key}' must be of the same type as {default}")));
            }
            stmts.push(self.db.stmt(
                "INSERT INTO _fb_settings (key, value, updated_at) VALUES (?, ?, ?) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                vec![key.as_str().into(), crate::data::Value::Json(value.clone()), crate::util::now_ms().into()],
            ));
        }
        self.db.write_many(stmts).await?;
        self.refresh().await?;
        Ok(())
    }

    pub fn get_i64(&self, key: &str) -> i64 {
        self.values.read().expect("settings lock").get(key).and_then(Json::as_i64).unwrap_or(0)
    }
}
