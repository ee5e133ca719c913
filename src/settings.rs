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
    ]
}

pub struct Settings {
    db: Db,
    values: RwLock<HashMap<String, Json>>,
}

impl Settings {
    pub async fn load(db: Db) -> Result<Settings, DbError> {
        let settings = Settings {
            db,
            values: RwLock::new(HashMap::new()),
        };
        settings.refresh().await?;
        Ok(settings)
    }

    /// Re-reads every stored value over the defaults.
    pub async fn refresh(&self) -> Result<(), DbError> {
        let rows = self
            .db
            .read(Stmt::new("SELECT key, value FROM _fb_settings", vec![]))
            .await?;
        let mut values: HashMap<String, Json> = defaults()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
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

    pub fn get(&self, key: &str) -> Option<Json> {
        self.values.read().expect("settings lock").get(key).cloned()
    }

    pub fn get_bool(&self, key: &str) -> bool {
        self.values
            .read()
            .expect("settings lock")
            .get(key)
            .and_then(Json::as_bool)
            .unwrap_or(false)
    }

    pub fn get_i64(&self, key: &str) -> i64 {
        self.values
            .read()
            .expect("settings lock")
            .get(key)
            .and_then(Json::as_i64)
            .unwrap_or(0)
    }
}
