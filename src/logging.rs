//! The log: one tracing subscriber, text or JSON, whose filter the runtime setting
//! `log_level` replaces while the server runs. `FERROBASE_LOG` in the environment pins the
//! filter instead (an operator debugging one module keeps it through setting changes).

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// The environment variable that pins the filter.
pub const PINNED_FILTER_VAR: &str = "FERROBASE_LOG";

/// The level before the settings are read, and the setting's default.
pub const DEFAULT_LEVEL: &str = "info";

/// Replaces the installed subscriber's filter; absent when the filter is pinned, or when this
/// process logs through a subscriber of its own (a program embedding the server).
static RELOAD: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the process's subscriber: JSON lines or text, to standard output.
pub fn init(json: bool) {
    let pinned = std::env::var(PINNED_FILTER_VAR).ok().and_then(|directives| EnvFilter::try_new(directives).ok());
    let is_pinned = pinned.is_some();
    let (filter, handle) = reload::Layer::new(pinned.unwrap_or_else(|| filter_for(DEFAULT_LEVEL)));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if json {
        registry.with(tracing_subscriber::fmt::layer().json().flatten_event(true)).try_init()
    } else {
        registry.with(tracing_subscriber::fmt::layer().with_target(false)).try_init()
    };
    if installed.is_ok() && !is_pinned {
        let _ = RELOAD.set(handle);
    }
}

/// The levels the setting takes, quietest first.
pub const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// The filter for a level: at `debug` and `trace` only Ferrobase's own events are that
/// verbose; the libraries under it stay at `info`, or their wire traces drown the log.
fn filter_for(level: &str) -> EnvFilter {
    match level {
        "debug" | "trace" => EnvFilter::new(format!("info,ferrobase={level},tower_http={level}")),
        level => EnvFilter::new(level),
    }
}

/// Makes `level` (one of [`LEVELS`]) the log's level, unless the filter is pinned.
pub fn apply(level: &str) {
    let Some(handle) = RELOAD.get() else {
        return;
    };
    if !LEVELS.contains(&level) {
        tracing::warn!(level, "the stored log level is not one; keeping the current one");
        return;
    }
    if let Err(err) = handle.reload(filter_for(level)) {
        tracing::warn!(%err, "the log filter could not be replaced");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_makes_a_filter() {
        for level in LEVELS {
            let filter = filter_for(level).to_string();
            assert!(filter.contains(level), "{level}: {filter}");
        }
    }
}
