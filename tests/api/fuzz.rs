//! API fuzzing: `schemathesis` (PyPI) drives the live server from its own OpenAPI document,
//! as an anonymous caller, a signed-in user and the admin. No answer may be a 5xx, and the
//! server must still answer afterwards. Bounded in time: [`SECONDS_PER_CALLER`] per caller.

use std::io::Write;
use std::process::Command;
use std::sync::Once;

use serde_json::json;

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, TestServer, captured_logs};

/// How long schemathesis runs for each kind of caller, per backend.
const SECONDS_PER_CALLER: u32 = 20;

/// Whether schemathesis is installed; without it the fuzz run is skipped with a loud notice,
/// unless `CI` is set, where that is a failure.
fn installed() -> bool {
    let ok = Command::new("python3")
        .args(["-m", "schemathesis.cli", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but schemathesis is not installed (python3 -m pip install schemathesis)");
        }
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPING the API fuzz run: schemathesis is not installed (python3 -m pip install schemathesis) ***\n"
            );
        });
    }
    ok
}

/// Runs schemathesis against `s` with `extra` arguments; panics with its report on a failure.
fn fuzz(s: &TestServer, caller: &str, extra: &[&str]) {
    let workdir = tempfile::tempdir().expect("a working directory for schemathesis");
    let out = Command::new("python3")
        .current_dir(workdir.path())
        .args(["-m", "schemathesis.cli", "run", &s.url("/api/v1/openapi.json")])
        .args(["--checks", "not_a_server_error", "--workers", "1", "--request-timeout", "30"])
        .args(["--max-time", &SECONDS_PER_CALLER.to_string()])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        return;
    }
    // Schemathesis also fails a run on its own errors (a flaky data generator, say); only
    // server errors, or a run that tested nothing, fail the test.
    let tested = report.contains(" generated, ");
    if tested && !report.contains("Server error") {
        let _ =
            writeln!(std::io::stderr(), "schemathesis as {caller} had errors of its own, and found no server error");
        return;
    }
    // The report's failures and errors, then what the server logged at error level.
    let start = report.find("=== FAILURES").or_else(|| report.find("=== ERRORS")).unwrap_or(0);
    let failures: String = report[start..].chars().take(8000).collect();
    let logged: Vec<String> = captured_logs().lines().filter(|l| l.contains("ERROR")).map(str::to_owned).collect();
    panic!(
        "schemathesis as {caller} failed:\n{failures}\n{}\nserver errors logged:\n{}",
        String::from_utf8_lossy(&out.stderr),
        logged.join("\n")
    );
}

both_backends! {
    async fn no_request_from_any_caller_is_a_server_error(s) {
        if !installed() {
            return;
        }
        s.admin_post("/api/v1/admin/collections", json!({"name": "posts", "rules": {"read": "public", "create": "authenticated"}})).await;
        s.open_collection("notes").await;
        let user = s.register("fuzz@example.com", "password1").await;
        let token = user["access_token"].as_str().unwrap().to_owned();
        for i in 0..3 {
            let body = json!({"title": format!("post {i}"), "views": i, "draft": i % 2 == 0, "tags": ["a", "b"]});
            s.as_user(reqwest::Method::POST, "/api/v1/posts", &token, Some(body)).await;
        }
        s.seed("notes", &[json!({"text": "hello world", "n": 1.5})]).await;
        s.exec_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)").await;
        s.exec_sql("INSERT INTO items (id, name, price) VALUES (1, 'one', 1.5)").await;

        let user_auth = format!("Authorization: Bearer {token}");
        let admin_auth = format!("Authorization: Bearer {ADMIN_SECRET}");
        fuzz(&s, "anonymous", &[]);
        // The user's own sign-out and account deletion would end the run's credentials.
        fuzz(&s, "a signed-in user", &["-H", &user_auth, "--exclude-path-regex", "^/api/v1/auth/(logout|logout-all|signout|me)$"]);
        fuzz(&s, "the admin", &["-H", &admin_auth]);

        let health = s.get("/api/v1/admin/health").await;
        assert_eq!(health.status, 200, "the server is alive after the fuzz run: {}", health.text);
        assert_eq!(s.admin_get("/api/v1/admin/collections").await.status, 200);
    }
}
