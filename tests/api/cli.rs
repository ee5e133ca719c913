//! The `ferrobase` binary: `serve` starts, generates and persists the admin secret on first
//! start (printing it once), and exits cleanly on SIGTERM after finishing in-flight requests.

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

/// Reads one HTTP/1.1 response (headers and a Content-Length body) from `stream`.
fn read_response(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the connection closed mid-response");
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

/// SIGTERM while a request is half-sent: the request is still answered, then the server exits.
fn terminate_with_request_in_flight(mut started: Started) {
    use std::io::Write;
    let addr = started.base.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    // A first request makes sure the server has accepted this connection.
    stream.write_all(format!("GET /api/v1/admin/health HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).unwrap();
    assert!(read_response(&mut stream).starts_with("HTTP/1.1 200"));
    let body = r#"{"email": "inflight@example.com", "password": "password1"}"#;
    // `Expect: 100-continue`: the server answers `100 Continue` once the handler starts reading
    // the body, which proves the request is in flight before the signal is sent.
    write!(
        stream,
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    let interim = read_response(&mut stream);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    let status = Command::new("kill").args(["-TERM", &started.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    stream.write_all(body.as_bytes()).unwrap();
    let response = read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 201"), "the in-flight request is answered: {response}");
    let exit = started.child.wait().unwrap();
    assert!(exit.success(), "the server exits cleanly after finishing the request: {exit:?}");
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
    terminate_with_request_in_flight(second);
}

/// A secret file that holds no secret (a backup written over it, say) stops the start: a new
/// secret in its place would end every session and leave sealed 2FA secrets unreadable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_secret_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwt_secret"), b"SQLite format 3\0\xff\xfe").unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("DATA_DIR")
        .env_remove("JWT_SECRET")
        .env("ADMIN_SECRET", "a-test-admin-secret-of-enough-length-0123456789")
        .output();
    // A bound for a server that would start anyway, not a synchronisation.
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), run).await.expect("the server stopped").unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds no secret"), "{stderr}");
    assert_eq!(std::fs::read(dir.path().join("jwt_secret")).unwrap(), b"SQLite format 3\0\xff\xfe", "left as it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_generates_persists_and_stops_sqlite() {
    serve_generates_persists_and_stops(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_generates_persists_and_stops_postgres() {
    serve_generates_persists_and_stops(Backend::Postgres).await;
}

/// `--sqlite-synchronous full` serves; an unknown mode and a short secret stop the start with a
/// message that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durability_mode_and_secret_length_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrobase"));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--sqlite-synchronous", "full", "--data-dir"]).arg(dir.path());
    cmd.env_remove("ADMIN_SECRET").env_remove("JWT_SECRET").env_remove("DATABASE_URL");
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("the binary starts");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines().map(Result::unwrap);
    let base = lines.filter_map(|l| l.strip_prefix("Ferrobase listening on ").map(str::to_owned)).next();
    let base = base.expect("the server listens with synchronous=FULL");
    let health = reqwest::get(format!("{base}/api/v1/admin/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    terminate(Started { child, base, generated_secret: None });

    for (env, args, says) in [
        (("JWT_SECRET", "too-short"), vec!["--sqlite-synchronous", "normal"], "JWT_SECRET must be at least 32 bytes"),
        (("ADMIN_SECRET", "short"), vec![], "ADMIN_SECRET must be at least 32 bytes"),
        (("FERROBASE_LOG", "info"), vec!["--sqlite-synchronous", "sometimes"], "sometimes"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ferrobase"))
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(&args)
            .env_remove("ADMIN_SECRET")
            .env_remove("JWT_SECRET")
            .env(env.0, env.1)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{env:?} {args:?} must not start");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{env:?} {args:?}: {stderr}");
    }
}

/// The binary started with its standard output in a file (which outlives the process, unlike
/// a pipe, so a restarted successor can still write to it), on `dir/data`.
struct Logged {
    log: std::path::PathBuf,
}

impl Logged {
    fn spawn(dir: &std::path::Path, admin_secret: &str, extra: &[&str]) -> (Child, Logged) {
        let log = dir.join("server.log");
        let child = Command::new(env!("CARGO_BIN_EXE_ferrobase"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env_remove("DATABASE_URL")
            .env_remove("FERROBASE_ADDR")
            .env_remove("DATA_DIR")
            .env_remove("FERROBASE_LOG")
            .env("ADMIN_SECRET", admin_secret)
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (child, Logged { log })
    }

    /// The addresses of the "listening" lines written so far.
    fn listening(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines().filter_map(|l| l.strip_prefix("Ferrobase listening on ")).map(|a| a.trim().to_owned()).collect()
    }

    /// The first server's address, once `count` servers said they listen (bounded).
    async fn listening_at(&self, count: usize) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let lines = self.listening();
            if lines.len() >= count {
                return lines[0].clone();
            }
            assert!(std::time::Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// POSTs `body` as JSON (with `token` as the bearer, if any) and reads the JSON answer.
async fn post_json(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: serde_json::Value,
) -> serde_json::Value {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// `--log-format json`: every log line is a JSON object, each request has an access line
/// (method, route template, status, duration, request id, user), and no secret that the
/// requests carried appears anywhere in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_access_logs_carry_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let admin = "json-log-admin-secret-0123456789abcdef";
    let (mut child, logged) = Logged::spawn(dir.path(), admin, &["--log-format", "json"]);
    let log_path = logged.log.clone();
    let base = logged.listening_at(1).await;
    let client = reqwest::Client::new();
    let password = "a-password-that-must-never-be-logged";
    let registered = post_json(
        &client,
        format!("{base}/api/v1/auth/register"),
        None,
        serde_json::json!({"email": "log@example.com", "password": password}),
    )
    .await;
    let token = registered["access_token"].as_str().unwrap().to_owned();
    let refresh = registered["refresh_token"].as_str().unwrap().to_owned();
    let user_id = registered["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(client.get(format!("{base}/api/v1/auth/me")).bearer_auth(&token).send().await.unwrap().status(), 200);
    let key =
        post_json(&client, format!("{base}/api/v1/auth/api-keys"), Some(&token), serde_json::json!({"name": "logs"}))
            .await;
    let api_key = key["key"].as_str().unwrap().to_owned();
    assert_eq!(
        client.get(format!("{base}/api/v1/auth/me")).header("x-api-key", &api_key).send().await.unwrap().status(),
        200
    );
    let refreshed = client
        .post(format!("{base}/api/v1/auth/refresh"))
        .json(&serde_json::json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let uploaded = client
        .post(format!("{base}/api/v1/storage/default/secret.txt"))
        .bearer_auth(&token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);
    let signed = post_json(
        &client,
        format!("{base}/api/v1/storage/default/secret.txt/signed-url"),
        Some(&token),
        serde_json::json!({}),
    )
    .await;
    let signed_url = signed["signed_url"].as_str().unwrap().to_owned();
    assert_eq!(client.get(format!("{base}{signed_url}")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(format!("{base}/api/v1/admin/stats")).bearer_auth(admin).send().await.unwrap().status(), 200);
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());

    let log = std::fs::read_to_string(&log_path).unwrap();
    let signature = signed_url.split("token=").nth(1).unwrap();
    for secret in [password, token.as_str(), refresh.as_str(), api_key.as_str(), admin, signature] {
        assert!(!log.contains(secret), "the log holds a secret ({}…):\n{log}", &secret[..8]);
    }
    let entries: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&serde_json::Value> = entries.iter().filter(|e| e["target"] == "ferrobase::access").collect();
    let me = access
        .iter()
        .find(|e| e["route"] == "/api/v1/auth/me" && e["user_id"] == user_id.as_str())
        .expect("an access line for /auth/me");
    assert_eq!((me["method"].clone(), me["status"].clone()), (serde_json::json!("GET"), serde_json::json!(200)));
    assert!(me["duration_ms"].as_f64().is_some() && !me["request_id"].as_str().unwrap().is_empty());
    assert!(access.iter().any(|e| e["route"] == "/api/v1/admin/stats" && e["user_id"] == "admin"));
    assert!(access.iter().any(|e| e["route"] == "/api/v1/storage/{bucket}/{*key}" && e["status"] == 201));
    assert!(access.len() >= 9, "{} access lines", access.len());
}

/// The setting `log_level` applies at once: at `warn` a request writes no access line (they
/// are `info`), back at `info` it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_level_applies_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let admin = "log-level-admin-secret-0123456789abcdef";
    let (mut child, logged) = Logged::spawn(dir.path(), admin, &["--log-format", "json"]);
    let base = logged.listening_at(1).await;
    let client = reqwest::Client::new();
    let admin_get = |path: &str| client.get(format!("{base}{path}")).bearer_auth(admin).send();
    let set_level = |level: &str| {
        client
            .patch(format!("{base}/api/v1/admin/settings"))
            .bearer_auth(admin)
            .json(&serde_json::json!({ "log_level": level }))
            .send()
    };
    assert_eq!(admin_get("/api/v1/admin/stats").await.unwrap().status(), 200);
    assert_eq!(set_level("warn").await.unwrap().status(), 200);
    assert_eq!(admin_get("/api/v1/admin/collections").await.unwrap().status(), 200);
    assert_eq!(set_level("loud").await.unwrap().status(), 400);
    assert_eq!(set_level("info").await.unwrap().status(), 200);
    assert_eq!(admin_get("/api/v1/admin/sessions").await.unwrap().status(), 200);
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());

    let log = std::fs::read_to_string(&logged.log).unwrap();
    let routes: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["target"] == "ferrobase::access")
        .filter_map(|e| e["route"].as_str().map(str::to_owned))
        .collect();
    assert!(routes.iter().any(|r| r == "/api/v1/admin/stats"), "{routes:?}");
    assert!(!routes.iter().any(|r| r == "/api/v1/admin/collections"), "logged at warn: {routes:?}");
    assert!(routes.iter().any(|r| r == "/api/v1/admin/sessions"), "{routes:?}");
}

/// `POST /admin/restart` under load: while the old process hands its socket to a new one and
/// exits, a client loop sees no refused connection and no 5xx; the new process serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_under_load_loses_no_request() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let admin = "restart-admin-secret-0123456789abcdef";
    let (mut child, logged) = Logged::spawn(dir.path(), admin, &[]);
    let data = dir.path().join("data");
    let base = logged.listening_at(1).await;
    let listening = |count: usize| logged.listening().len() >= count;

    // Two clients, a new connection per request, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut loops = Vec::new();
    for _ in 0..2 {
        let (stop, served, failures, url) =
            (stop.clone(), served.clone(), failures.clone(), format!("{base}/api/v1/admin/health"));
        loops.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(resp) if resp.status() == 200 => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(resp) => failures.lock().unwrap().push(format!("status {}", resp.status())),
                    Err(err) => failures.lock().unwrap().push(format!("{err:?}")),
                }
            }
        }));
    }
    let wait_for = |n: usize| {
        let served = served.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while served.load(Ordering::Relaxed) < n {
                assert!(std::time::Instant::now() < deadline, "requests stopped being served");
                tokio::task::yield_now().await;
            }
        }
    };
    wait_for(50).await;
    let restart =
        reqwest::Client::new().post(format!("{base}/api/v1/admin/restart")).bearer_auth(admin).send().await.unwrap();
    assert_eq!(restart.status(), 202);
    // The old process exits once its successor serves and its own requests are done.
    let exited = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(exited.success());
    assert!(listening(2), "the successor announced itself");
    let after = served.load(Ordering::Relaxed);
    wait_for(after + 50).await;
    // The successor restarts in turn (it got the socket through a restart itself).
    let again =
        reqwest::Client::new().post(format!("{base}/api/v1/admin/restart")).bearer_auth(admin).send().await.unwrap();
    assert_eq!(again.status(), 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let running = Command::new("pgrep").args(["-f"]).arg(data.to_str().unwrap()).output().unwrap();
        let count = String::from_utf8_lossy(&running.stdout).lines().count();
        if listening(3) && count == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the second restart did not complete ({count} processes)");
        tokio::task::yield_now().await;
    }
    let after = served.load(Ordering::Relaxed);
    wait_for(after + 50).await;
    stop.store(true, Ordering::Relaxed);
    for task in loops {
        task.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    // The successor is found by its data dir, the only thing of this test on its command line.
    let _ = Command::new("pkill").args(["-TERM", "-f"]).arg(data.to_str().unwrap()).status();
    assert!(
        failures.is_empty(),
        "{} requests failed around the restart: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}
