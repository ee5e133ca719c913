//! The test harness: starts the real server in-process on an ephemeral port, over a fresh
//! SQLite data dir or a fresh PostgreSQL schema, and talks to it over real HTTP.
//!
//! PostgreSQL comes from `FERROBASE_TEST_DATABASE_URL`. Without it the PostgreSQL variants
//! are skipped with a loud notice, unless `CI` is set, where that is a failure.

use std::io::Write;
use std::sync::Once;

use ferrobase::{Config, Server};
use reqwest::Method;
use serde_json::Value;
use tokio::sync::oneshot;

pub const ADMIN_SECRET: &str = "test-admin-secret-0123456789abcdef";
/// The JWT secret of test servers, so tests can forge tokens to attack them with.
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef-0123";

/// Every rate limit off (`0`): what test servers start with.
pub const RATE_LIMITS_OFF: [(&str, i64); 5] = [
    ("rate_limit_public_reads", 0),
    ("rate_limit_auth", 0),
    ("rate_limit_crud", 0),
    ("rate_limit_admin", 0),
    ("rate_limit_uploads", 0),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server for one test. Dropping it stops the server and removes its data.
pub struct TestServer {
    pub base: String,
    config: Config,
    pub backend: Backend,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    /// The running server's state: for what no endpoint shows yet (the change feed).
    state: ferrobase::AppState,
    _dir: tempfile::TempDir,
    _pg: Option<PgSchema>,
}

/// Another server on a test server's database; stops when dropped.
pub struct Instance {
    pub base: String,
    state: ferrobase::AppState,
    _shutdown: oneshot::Sender<()>,
}

impl Instance {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<ferrobase::data::feed::ChangeEvent>> {
        self.state.store().feed.subscribe()
    }
}

pub struct PgSchema {
    url: String,
    schema: String,
}

/// An HTTP answer: status, headers and the body parsed as JSON (`Null` when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The error message of an error answer; panics when the body is not `{"error": "..."}`.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_else(|| panic!("not an error body: {} {}", self.status, self.text))
    }
}

/// The PostgreSQL URL for tests, or `None` (after a loud notice) when it is not configured.
pub fn pg_url() -> Option<String> {
    match std::env::var("FERROBASE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "CI is set but FERROBASE_TEST_DATABASE_URL is not: the PostgreSQL tests cannot be skipped in CI"
                );
            }
            static NOTICE: Once = Once::new();
            NOTICE.call_once(|| {
                // Written straight to stderr so the test harness does not swallow it.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** SKIPPING every PostgreSQL test variant: FERROBASE_TEST_DATABASE_URL is not set ***\n"
                );
            });
            None
        }
    }
}

impl TestServer {
    /// Starts a server on `backend`; `None` when PostgreSQL is not configured (skipped).
    pub async fn start(backend: Backend) -> Option<TestServer> {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestServer> {
        let dir = tempfile::tempdir().expect("a temporary data dir");
        let mut config = Config::new(dir.path());
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.admin_secret = Some(ADMIN_SECRET.into());
        config.jwt_secret = Some(JWT_SECRET.into());
        config.sqlite_readers = 2;
        config.pg_pool_size = 4;
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let pg = fresh_schema(&pg_url()?).await;
                config.database_url = Some(pg.schema_url());
                Some(pg)
            }
        };
        adjust(&mut config);
        capture_logs();
        let (base, tx, state) = launch(config.clone()).await;
        let server = TestServer {
            base,
            config,
            backend,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            state,
            _dir: dir,
            _pg: pg,
        };
        // Tests make requests faster than the default limits allow; those about rate limits
        // set their own.
        let off = RATE_LIMITS_OFF.iter().map(|(key, value)| ((*key).to_owned(), (*value).into())).collect();
        server.set_settings(Value::Object(off)).await;
        Some(server)
    }

    /// Stops the server and starts a new one on the same data (directory or schema).
    pub async fn restart(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let (base, tx, state) = launch(self.config.clone()).await;
        self.base = base;
        self.state = state;
        self.shutdown = Some(tx);
    }

    /// The server's PostgreSQL URL (its own schema); `None` on SQLite.
    pub fn database_url(&self) -> Option<&str> {
        self.config.database_url.as_deref()
    }

    /// The server's data directory (the SQLite database lives here).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Runs plain SQL on the server's database behind its back, as another program would:
    /// the SQLite file through rusqlite, or the test's PostgreSQL schema.
    pub async fn exec_sql(&self, sql: &str) {
        match &self._pg {
            None => {
                let conn =
                    rusqlite::Connection::open(self.data_dir().join("ferrobase.db")).expect("the database opens");
                conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
                conn.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            Some(pg) => {
                let (client, conn) = tokio_postgres::connect(&pg.schema_url(), tokio_postgres::NoTls)
                    .await
                    .expect("PostgreSQL connects");
                let task = tokio::spawn(conn);
                client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                drop(client);
                let _ = task.await;
            }
        }
    }

    /// Runs a query that answers one integer on the server's database behind its back: for
    /// what no endpoint shows (whether a search index was built, how many rows a system table
    /// holds).
    pub async fn sql_i64(&self, sql: &str) -> i64 {
        match &self._pg {
            None => {
                let conn =
                    rusqlite::Connection::open(self.data_dir().join("ferrobase.db")).expect("the database opens");
                conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
                conn.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            Some(pg) => {
                let (client, conn) = tokio_postgres::connect(&pg.schema_url(), tokio_postgres::NoTls)
                    .await
                    .expect("PostgreSQL connects");
                let task = tokio::spawn(conn);
                let row = client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                drop(client);
                let _ = task.await;
                row.get(0)
            }
        }
    }

    /// A second server on the same database (SQLite data dir or PostgreSQL schema), as a
    /// second instance behind a load balancer would be.
    /// On PostgreSQL it returns once both instances listen for each other's changes.
    pub async fn another_instance(&self) -> Instance {
        let (base, shutdown, state) = launch(self.config.clone()).await;
        if self._pg.is_some() {
            for store in [self.state.store(), state.store()] {
                let mut listening = store.listening.subscribe();
                tokio::time::timeout(std::time::Duration::from_secs(20), listening.wait_for(|on| *on))
                    .await
                    .expect("an instance listens for the others' changes")
                    .unwrap();
            }
        }
        Instance { base, state, _shutdown: shutdown }
    }

    /// The running server's store: for what no endpoint shows (query plans).
    pub fn store(&self) -> &ferrobase::data::Store {
        self.state.store()
    }

    /// A consumer of the server's change feed: every record written from now on.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<ferrobase::data::feed::ChangeEvent>> {
        self.state.store().feed.subscribe()
    }

    /// Sends a request with extra headers; `auth` is a bearer token, `body` a JSON body.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = auth {
            req = req.bearer_auth(token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        read(req.send().await.expect("the request is sent")).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request; `auth` is a bearer token (or `None`), `body` a JSON body.
    pub async fn send(&self, method: Method, path: &str, auth: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = auth {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        read(req.send().await.expect("the request is sent")).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn admin_get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(ADMIN_SECRET), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, None, Some(body)).await
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(ADMIN_SECRET), Some(body)).await
    }

    pub async fn admin_patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(ADMIN_SECRET), Some(body)).await
    }

    /// Changes runtime settings through the admin API.
    pub async fn set_settings(&self, settings: Value) {
        let resp = self.admin_patch("/api/v1/admin/settings", settings).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
    }

    /// Registers a user; returns the sign-in answer (`access_token`, `refresh_token`, `user`).
    pub async fn register(&self, email: &str, password: &str) -> Value {
        let resp = self.post("/api/v1/auth/register", serde_json::json!({"email": email, "password": password})).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        resp.body
    }

    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.post("/api/v1/auth/login", serde_json::json!({"email": email, "password": password})).await
    }

    /// A request as the holder of `token`.
    pub async fn as_user(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
        self.send(method, path, Some(token), body).await
    }

    pub async fn admin_delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(ADMIN_SECRET), None).await
    }

    /// Creates a collection whose rules let anyone do anything, for tests about records.
    pub async fn open_collection(&self, name: &str) {
        let rules = serde_json::json!({"read": "public", "create": "public", "update": "public", "delete": "public"});
        let resp =
            self.admin_post("/api/v1/admin/collections", serde_json::json!({"name": name, "rules": rules})).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
    }

    /// Creates records as admin and returns them.
    pub async fn seed(&self, collection: &str, records: &[Value]) -> Vec<Value> {
        let mut out = Vec::new();
        for record in records {
            let resp = self.admin_post(&format!("/api/v1/{collection}"), record.clone()).await;
            assert_eq!(resp.status, 201, "{}", resp.text);
            out.push(resp.body);
        }
        out
    }
}

async fn launch(config: Config) -> (String, oneshot::Sender<()>, ferrobase::AppState) {
    let server = Server::start(config).await.expect("the server starts");
    let base = format!("http://{}", server.addr());
    let state = server.state().clone();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(server.run_until(async move {
        let _ = rx.await;
    }));
    (base, tx, state)
}

/// Everything the servers of this test process log, so tests can check that no secret is
/// ever written to the log.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,hyper=info,h2=info,tokio_postgres=info,rustls=info,reqwest=info")
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .try_init();
    });
}

pub async fn read(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("the body is read");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
    Resp { status, headers, body, text }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // The test's runtime may be shutting down: drop the schema from a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
                }
            });
        })
        .join();
    }
}

/// A fresh PostgreSQL schema for one test, dropped with it; `None` when PostgreSQL is not
/// configured.
pub async fn fresh_pg() -> Option<PgSchema> {
    Some(fresh_schema(&pg_url()?).await)
}

async fn fresh_schema(url: &str) -> PgSchema {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to FERROBASE_TEST_DATABASE_URL: {e}"));
    tokio::spawn(conn);
    let schema = format!("fbt_{}", uuid::Uuid::new_v4().simple());
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.expect("a test schema is created");
    PgSchema { url: url.to_owned(), schema }
}

impl PgSchema {
    /// The URL with `search_path` set to the test's own schema, and the schema's name as the
    /// connections' `application_name` (so that a test can find its server's connections).
    pub fn schema_url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}&application_name={}", self.url, self.schema, self.schema)
    }
}

/// Writes each test once and runs it on both backends: `mod NAME { sqlite, postgres }`.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($srv:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($srv: $crate::harness::TestServer) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let server = $crate::harness::TestServer::start($crate::harness::Backend::Sqlite).await;
                    run(server.expect("SQLite always starts")).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(server) = $crate::harness::TestServer::start($crate::harness::Backend::Postgres).await {
                        run(server).await;
                    }
                }
            }
        )*
    };
}

/// The S3-protocol server that the storage tests run against: one `moto_server` (PyPI
/// `moto[server]`) per test process, started on first use on a free port.
pub fn s3_endpoint() -> String {
    static ENDPOINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ENDPOINT
        .get_or_init(|| {
            let port = free_port();
            let argv = ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()].map(str::to_owned);
            spawn_for_process(&argv, "Running on");
            format!("http://127.0.0.1:{port}")
        })
        .clone()
}

/// The Redis server that the shared rate-limit tests run against (`redis-server`, Debian's
/// `redis-server` package), one per test process, started on first use on a free port.
pub fn redis_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let port = free_port();
        let argv =
            ["redis-server", "--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
                .map(str::to_owned);
        spawn_for_process(&argv, "Ready to accept connections");
        format!("redis://127.0.0.1:{port}")
    })
    .clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `argv` for the life of the test process and returns once its output shows `ready`.
/// A small Python wrapper runs it and stops it when its stdin, a pipe from this process,
/// closes: when the test process exits, however it exits.
fn spawn_for_process(argv: &[String], ready: &str) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let wrapper = "import subprocess, sys\n\
        server = subprocess.Popen(sys.argv[1:], stdout=sys.stderr)\n\
        sys.stdin.read()\n\
        server.terminate()\n";
    let mut child = Command::new("python3")
        .args(["-c", wrapper])
        .args(argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {argv:?}: {e}"));
    // The rest of its log is drained and dropped.
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains(ready) => break,
            Some(Ok(line)) => seen.push(line),
            _ => panic!("{argv:?} stopped before it was ready:\n{}", seen.join("\n")),
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    // Kept open for the life of the process: closing it stops the server.
    std::mem::forget(child.stdin.take());
    std::mem::forget(child);
}

/// Settings for a fresh bucket of the S3 test server.
pub async fn fresh_s3() -> ferrobase::config::S3Config {
    let endpoint = s3_endpoint();
    let bucket = format!("fbt-{}", uuid::Uuid::new_v4().simple());
    let resp = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.expect("moto answers");
    assert!(resp.status().is_success(), "creating the S3 bucket: {}", resp.status());
    ferrobase::config::S3Config {
        endpoint: Some(endpoint),
        bucket,
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        path_style: true,
    }
}

impl TestServer {
    /// The file store's blobs: how many there are (on disk, staging files included).
    pub async fn blob_count(&self) -> u64 {
        if self.config.s3.is_some() {
            return self.state.files().blobs.usage().await.expect("the blob store lists").0;
        }
        fn files_under(dir: &std::path::Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
            entries.flatten().map(|e| if e.path().is_dir() { files_under(&e.path()) } else { 1 }).sum()
        }
        files_under(&self.config.data_dir.join("storage"))
    }

    /// Removes a blob behind the server's back, as a database restored without its file
    /// store leaves a file's record.
    pub async fn lose_blob(&self, blob: &str) {
        self.state.files().blobs.delete(blob).await.expect("the blob store deletes");
    }

    /// Runs the file store's sweeper once, as its background task would.
    pub async fn sweep(&self) {
        self.state.files().sweep().await.expect("the sweeper runs");
    }

    /// What a crash leaves in the blob store: a finished blob whose row was never written and,
    /// on local disk, the staging file of an upload cut off half way; how many things it left.
    pub async fn leave_crash_debris(&self) -> u64 {
        let orphan = uuid::Uuid::now_v7().to_string();
        let bytes = vec![bytes::Bytes::from_static(b"orphan")];
        self.state.files().blobs.put(&orphan, bytes).await.expect("the blob store writes");
        if self.config.s3.is_some() {
            return 1;
        }
        let fan = self.config.data_dir.join("storage/blobs/ab");
        std::fs::create_dir_all(&fan).unwrap();
        std::fs::write(fan.join(format!("{}#3", uuid::Uuid::now_v7())), b"half").unwrap();
        2
    }

    /// Runs the file store's daily search for blobs no row names, with no grace period;
    /// how many it deleted.
    pub async fn sweep_orphans(&self) -> usize {
        self.state.files().sweep_orphans(std::time::Duration::ZERO).await.expect("the orphan sweep runs")
    }
}

/// Writes each storage test once and runs it on both metadata backends and both blob
/// stores (local disk and S3).
#[macro_export]
macro_rules! all_stores {
    ($(async fn $name:ident($srv:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                use $crate::harness::{Backend, TestServer, fresh_s3};

                async fn run($srv: TestServer) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite_local() {
                    run(TestServer::start(Backend::Sqlite).await.expect("SQLite always starts")).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres_local() {
                    if let Some(server) = TestServer::start(Backend::Postgres).await {
                        run(server).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite_s3() {
                    let s3 = fresh_s3().await;
                    let server = TestServer::start_with(Backend::Sqlite, |c| c.s3 = Some(s3)).await;
                    run(server.expect("SQLite always starts")).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres_s3() {
                    let s3 = fresh_s3().await;
                    if let Some(server) = TestServer::start_with(Backend::Postgres, |c| c.s3 = Some(s3)).await {
                        run(server).await;
                    }
                }
            }
        )*
    };
}

/// Polls `status` until it answers `expected`, for at most 5 seconds: far less than the
/// periodic re-read of settings and tables (30 s), so passing shows that news went round at once.
pub async fn until_status<F, Fut>(what: &str, expected: u16, mut status: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = status().await;
        if got == expected {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: still {got}, not {expected}");
        tokio::task::yield_now().await;
    }
}
