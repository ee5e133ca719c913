//! The tables surface driven by the unmodified `@supabase/postgrest-js` client
//! (`tests/js/postgrest.mjs`). Needs `node` and `npm ci` in `tests/js`: without them the test
//! is skipped with a notice, unless `CI` is set, where that is a failure.

use std::io::Write;
use std::path::PathBuf;

use crate::both_backends;
use crate::harness::ADMIN_SECRET;
use crate::tables_read::serial;

pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// Whether node and the installed `package` are there; skipping is loud, and a failure in CI.
pub fn node_ready(package: &str) -> bool {
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let client = js_dir().join(format!("node_modules/{package}/package.json")).exists();
    if node && client {
        return true;
    }
    let why =
        if node { "tests/js/node_modules is missing (run `npm ci` in tests/js)" } else { "node is not installed" };
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {why}: the {package} test cannot be skipped in CI");
    }
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPING the {package} test: {why} ***\n");
    false
}

both_backends! {
    async fn unmodified_postgrest_js_client(s) {
        if !node_ready("@supabase/postgrest-js") {
            return;
        }
        let (pk, jsonb) = serial(&s);
        s.exec_sql(&format!(
            "CREATE TABLE authors (id {pk}, name TEXT NOT NULL);
             CREATE TABLE books (id {pk}, title TEXT NOT NULL UNIQUE, author_id INTEGER REFERENCES authors(id),
                                 pages INTEGER, tags {jsonb});
             CREATE TABLE author (id {pk}, name TEXT NOT NULL);
             INSERT INTO author (name) VALUES ('ann');"
        ))
        .await;
        let url = s.url("/api/v1/tables");
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("node")
                .arg("postgrest.mjs")
                .arg(url)
                .arg(ADMIN_SECRET)
                .current_dir(js_dir())
                .output()
                .expect("node runs")
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "postgrest.mjs failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
