//! The tables surface driven by the unmodified Python `postgrest` client (PyPI,
//! `tests/py/postgrest_client.py`). Without the client the test is skipped with a notice,
//! unless `CI` is set, where that is a failure.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use crate::both_backends;
use crate::harness::ADMIN_SECRET;
use crate::tables_read::serial;

/// Whether the client is installed; skipping is loud, and a failure in CI.
fn client_ready() -> bool {
    let ok = Command::new("python3").args(["-c", "import postgrest"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but the Python postgrest client is not installed (python3 -m pip install postgrest)");
        }
        let _ =
            writeln!(std::io::stderr(), "\n*** SKIPPING the postgrest-py test: python3 -m pip install postgrest ***\n");
    }
    ok
}

both_backends! {
    async fn unmodified_postgrest_py_client(s) {
        if !client_ready() {
            return;
        }
        let (pk, _) = serial(&s);
        s.exec_sql(&format!(
            "CREATE TABLE notes (id {pk}, body TEXT NOT NULL UNIQUE);
             CREATE TABLE tag (id {pk}, name TEXT NOT NULL);
             INSERT INTO tag (name) VALUES ('red');"
        ))
        .await;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/postgrest_client.py");
        let url = s.url("/api/v1/tables");
        let output = tokio::task::spawn_blocking(move || {
            Command::new("python3").arg(script).arg(url).arg(ADMIN_SECRET).output().expect("python3 runs")
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "postgrest_client.py failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
