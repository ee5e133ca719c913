//! The `ferrobase` binary: `serve` starts, generates and persists the admin secret on first
//! start (printing it once), and exits cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::harness::{Backend, fresh_pg};

struct Started {
    child: Child,
    base: String,
    generated_secret: Option<String>,
}

/// Starts the binary and reads its stdout up to the "listening" line.
fn start(data_dir: &std::path::Path, database_url: Option<&str>) -> Started {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrobase"));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
    cmd.env_remove("ADMIN_SECRET").env_remove("DATABASE_URL").env_remove("FERROBASE_ADDR").env_remove("DATA_DIR");
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut generated_secret = None;
    let mut base = None;
    // Ends at the listening line, or at EOF if the process died.
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(secret) = line.strip_prefix("Generated admin secret (stored in the data dir): ") {
            generated_secret = Some(secret.trim().to_owned());
        }
        if let Some(addr) = line.strip_prefix("Ferrobase listening on ") {
            base = Some(addr.trim().to_owned());
            break;
        }
    }
    Started { child, base: base.expect("the server printed its address"), generated_secret }
}

fn terminate(mut started: Started) {
    let status = Command::new("kill").args(["-TERM", &started.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = started.child.wait().unwrap();
    assert!(exit.success(), "SIGTERM ends the server cleanly: {exit:?}");
}

async fn admin_status(base: &str, secret: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/admin/collections"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn serve_generates_persists_and_stops(backend: Backend) {
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => match fresh_pg().await {
            Some(pg) => Some(pg),
            None => return,
        },
    };
    let url = pg.as_ref().map(|p| p.schema_url());
    let dir = tempfile::tempdir().unwrap();

    let first = start(dir.path(), url.as_deref());
    let secret = first.generated_secret.clone().expect("the first start prints the generated secret");
    assert!(secret.len() >= 32);
    assert_eq!(admin_status(&first.base, &secret).await, 200);
    assert_eq!(admin_status(&first.base, "guess").await, 401);
    terminate(first);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("admin_secret")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the secret file is private");
    }

    let second = start(dir.path(), url.as_deref());
    assert!(second.generated_secret.is_none(), "the secret is printed only when generated");
    assert_eq!(admin_status(&second.base, &secret).await, 200, "the persisted secret still works");
    terminate(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_generates_persists_and_stops_sqlite() {
    serve_generates_persists_and_stops(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_generates_persists_and_stops_postgres() {
    serve_generates_persists_and_stops(Backend::Postgres).await;
}
