//! Backups taken while writes run: `POST /admin/backup` streams a consistent snapshot, and
//! `ferrobase restore` puts it back into a database that opens and holds every write
//! acknowledged before the backup began. SQLite, and PostgreSQL through pg_dump/pg_restore.

use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::harness::{ADMIN_SECRET, Backend, TestServer, pg_url, until_status};

/// Writes records until told to stop; returns the ids acknowledged so far through `acked`.
fn start_writer(
    s: &TestServer,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let (client, url) = (s.client.clone(), s.url("/api/v1/notes"));
    tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            n += 1;
            let resp = client.post(&url).bearer_auth(ADMIN_SECRET).json(&json!({"n": n})).send().await.unwrap();
            assert_eq!(resp.status(), 201);
            let body: serde_json::Value = resp.json().await.unwrap();
            acked.lock().unwrap().push(body["_id"].as_str().unwrap().to_owned());
        }
    })
}

/// Takes a backup while the writer runs; returns it and the ids acknowledged before it began.
async fn backup_under_writes(s: &TestServer) -> (Vec<u8>, Vec<String>) {
    s.open_collection("notes").await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = start_writer(s, acked.clone(), stop.clone());
    // Some writes first, acknowledged before the backup starts.
    while acked.lock().unwrap().len() < 30 {
        tokio::task::yield_now().await;
    }
    let before: Vec<String> = acked.lock().unwrap().clone();
    let resp = s.client.post(s.url("/api/v1/admin/backup")).bearer_auth(ADMIN_SECRET).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    let bytes = resp.bytes().await.unwrap().to_vec();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    assert!(acked.lock().unwrap().len() > before.len(), "writes went on during the backup");
    (bytes, before)
}

fn restore(args: &[&str], input: &std::path::Path) {
    let out = try_restore(args, input);
    assert!(out.status.success(), "restore failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn try_restore(args: &[&str], input: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .arg("restore")
        .args(args)
        .arg("--input")
        .arg(input)
        .env_remove("DATABASE_URL")
        .env_remove("DATA_DIR")
        .output()
        .unwrap()
}

async fn assert_holds(restored: &TestServer, ids: &[String]) {
    for id in ids {
        let resp = restored.send(reqwest::Method::GET, &format!("/api/v1/notes/{id}"), Some(ADMIN_SECRET), None).await;
        assert_eq!(resp.status, 200, "record {id} acknowledged before the backup is missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_backup_taken_under_writes_restores() {
    let mut s = TestServer::start(Backend::Sqlite).await.unwrap();
    let (bytes, before) = backup_under_writes(&s).await;
    assert!(bytes.starts_with(b"SQLite format 3\0"), "a database file");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.db");
    std::fs::write(&file, &bytes).unwrap();
    let restored_dir = dir.path().join("restored");
    restore(&["--data-dir", restored_dir.to_str().unwrap()], &file);
    let restored = TestServer::start_with(Backend::Sqlite, |c| c.data_dir = restored_dir.clone()).await.unwrap();
    assert_holds(&restored, &before).await;
    // No temporary copy is left in the data dir.
    let leftovers: Vec<_> = std::fs::read_dir(s.data_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("backup-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The CLI takes one too, while the server runs; a file that is no backup is refused.
    let cli = dir.path().join("cli.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .args(["backup", "--data-dir", s.data_dir().to_str().unwrap(), "--output", cli.to_str().unwrap()])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(&cli).unwrap().starts_with(b"SQLite format 3\0"));
    // Every copy of the records and password hashes is its owner's alone: the live database
    // and its log, a backup, a restored database (from a backup readable by all) and its dir.
    let mode = |path: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
    };
    for private in [
        s.data_dir().join("ferrobase.db"),
        s.data_dir().join("ferrobase.db-wal"),
        cli.clone(),
        restored_dir.join("ferrobase.db"),
    ] {
        assert_eq!(mode(&private), 0o600, "{}", private.display());
    }
    assert_eq!(mode(&restored_dir), 0o700);
    std::fs::write(dir.path().join("junk.db"), b"not a database").unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .args(["restore", "--data-dir", restored_dir.to_str().unwrap(), "--input"])
        .arg(dir.path().join("junk.db"))
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    // Nor is a damaged backup: every page after the first has its header scrambled.
    let mut damaged = std::fs::read(&cli).unwrap();
    assert!(damaged.len() > 3 * 4096);
    for page in (4096..damaged.len()).step_by(4096) {
        damaged[page..page + 12].iter_mut().for_each(|b| *b ^= 0xa5);
    }
    std::fs::write(dir.path().join("damaged.db"), &damaged).unwrap();
    let damaged_dir = dir.path().join("damaged");
    let refused = try_restore(&["--data-dir", damaged_dir.to_str().unwrap()], &dir.path().join("damaged.db"));
    assert!(!refused.status.success(), "a damaged backup was restored");
    assert!(!damaged_dir.join("ferrobase.db").exists());
    // A backup is never written over the live database: the server's later writes would go
    // to a file no longer there.
    let live = s.data_dir().join("ferrobase.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .args(["backup", "--data-dir", s.data_dir().to_str().unwrap(), "--output", live.to_str().unwrap()])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("live database"), "{}", String::from_utf8_lossy(&out.stderr));
    // Nor is a restore made under a running server: it would go on writing to a file set
    // aside.
    let refused = try_restore(&["--data-dir", s.data_dir().to_str().unwrap()], &file);
    assert!(!refused.status.success(), "a restore under the running server");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("stop the server"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let later = s.post("/api/v1/notes", json!({"n": 999_999})).await;
    assert_eq!(later.status, 201);
    s.restart().await;
    assert_eq!(s.get(&format!("/api/v1/notes/{}", later.body["_id"].as_str().unwrap())).await.status, 200);
}

/// A data dir as a crash leaves it: writes acknowledged into the write-ahead log, not yet
/// copied into the database file. A restore keeps them in the copy it sets aside, and a second
/// restore keeps the first one's copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_keeps_the_replaced_database_whole() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let crashed = dir.path().join("crashed");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::create_dir_all(&crashed).unwrap();
    let conn = rusqlite::Connection::open(live.join("ferrobase.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute_batch("CREATE TABLE kept (n INTEGER)").unwrap();
    for n in 0..50 {
        conn.execute("INSERT INTO kept (n) VALUES (?1)", [n]).unwrap();
    }
    // The files as they are on disk while the writer runs: the rows are in the log only.
    for name in ["ferrobase.db", "ferrobase.db-wal"] {
        std::fs::copy(live.join(name), crashed.join(name)).unwrap();
    }
    drop(conn);
    // A backup to restore: any Ferrobase database, made by a server's first start.
    let backup = dir.path().join("backup.db");
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let taken = s.client.post(s.url("/api/v1/admin/backup")).bearer_auth(ADMIN_SECRET).send().await.unwrap();
    assert_eq!(taken.status(), 200);
    std::fs::write(&backup, taken.bytes().await.unwrap()).unwrap();
    for _ in 0..2 {
        restore(&["--data-dir", crashed.to_str().unwrap()], &backup);
    }
    let mut kept: Vec<_> = std::fs::read_dir(&crashed)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            name.starts_with("ferrobase.db.before-restore-") && !name.ends_with("-wal") && !name.ends_with("-shm")
        })
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 2, "each restore keeps its own copy: {kept:?}");
    let first = rusqlite::Connection::open(crashed.join(&kept[0])).unwrap();
    let rows: i64 = first.query_row("SELECT COUNT(*) FROM kept", [], |row| row.get(0)).unwrap();
    assert_eq!(rows, 50, "the rows that were only in the log are in the copy");
    // A file with a migrations table but none of Ferrobase's others is no backup.
    let fake = dir.path().join("fake.db");
    let conn = rusqlite::Connection::open(&fake).unwrap();
    conn.execute_batch("CREATE TABLE _fb_migrations (version INTEGER, name TEXT, applied_at INTEGER); INSERT INTO _fb_migrations VALUES (1, 'x', 0);").unwrap();
    drop(conn);
    let refused = try_restore(&["--data-dir", crashed.to_str().unwrap()], &fake);
    assert!(!refused.status.success(), "a file without Ferrobase's tables was restored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_backup_taken_under_writes_restores() {
    let Some(url) = pg_url() else { return };
    let s = TestServer::start(Backend::Postgres).await.unwrap();
    let (bytes, before) = backup_under_writes(&s).await;
    assert!(bytes.starts_with(b"PGDMP"), "pg_dump's custom format");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.dump");
    std::fs::write(&file, &bytes).unwrap();
    // Into a database of its own: the dump recreates the schema there.
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let database = format!("fbt_restore_{}", uuid::Uuid::new_v4().simple());
    admin.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
    let schema: String = s.store().database_identity().await.unwrap().rsplit('.').next().unwrap().to_owned();
    let base = url.rsplit_once('/').unwrap().0;
    let target = format!("{base}/{database}?options=-csearch_path%3D{schema}");
    restore(&["--database-url", &target], &file);
    {
        let restored =
            TestServer::start_with(Backend::Postgres, |c| c.database_url = Some(target.clone())).await.unwrap();
        assert_holds(&restored, &before).await;
        // A collection made after the backup does not stop it from being restored again.
        restored.open_collection("later").await;
        restored.seed("later", &[json!({"n": 1})]).await;
    }
    restore(&["--database-url", &target], &file);
    {
        let restored =
            TestServer::start_with(Backend::Postgres, |c| c.database_url = Some(target.clone())).await.unwrap();
        assert_holds(&restored, &before).await;
        assert_eq!(restored.get("/api/v1/later").await.status, 404, "the backup had no such collection");
    }
    // A pg_dump archive that is not Ferrobase's is refused before anything is dropped.
    let foreign = dir.path().join("foreign.dump");
    let (restored_db, conn) =
        tokio_postgres::connect(&format!("{base}/{database}"), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    restored_db.batch_execute("CREATE SCHEMA other_app; CREATE TABLE other_app.t (x int);").await.unwrap();
    let dumped = std::process::Command::new("pg_dump")
        .args(["--dbname", &format!("{base}/{database}"), "--format=custom", "--schema", "other_app", "--file"])
        .arg(&foreign)
        .output()
        .unwrap();
    assert!(dumped.status.success(), "{}", String::from_utf8_lossy(&dumped.stderr));
    drop(restored_db);
    let refused = try_restore(&["--database-url", &target], &foreign);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not a Ferrobase backup"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    {
        let restored =
            TestServer::start_with(Backend::Postgres, |c| c.database_url = Some(target.clone())).await.unwrap();
        assert_holds(&restored, &before).await;
    }
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await;
}

/// A PostgreSQL restore under a running server: the server reads the restored tables and
/// settings at once (not at its next periodic re-read), and counts it kept of the replaced
/// data are never served as current, though the restored tables' versions were lower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_sees_a_postgres_restore_at_once() {
    let Some(s) = TestServer::start(Backend::Postgres).await else { return };
    s.open_collection("notes").await;
    let originals = s.seed("notes", &[json!({"n": 1}), json!({"n": 2}), json!({"n": 3})]).await;
    let resp = s.client.post(s.url("/api/v1/admin/backup")).bearer_auth(ADMIN_SECRET).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.dump");
    std::fs::write(&file, resp.bytes().await.unwrap()).unwrap();

    // After the backup: two more notes, counted (and the count kept); a new collection; the
    // server in maintenance.
    s.seed("notes", &[json!({"n": 4}), json!({"n": 5})]).await;
    assert_eq!(s.get("/api/v1/notes").await.body["total"], 5);
    s.open_collection("later").await;
    s.set_settings(json!({"maintenance_mode": true})).await;
    assert_eq!(s.get("/api/v1/notes").await.status, 503);

    restore(&["--database-url", s.database_url().unwrap()], &file);

    let client = &s.client;
    let status = |path: &'static str| {
        let url = s.url(path);
        async move { client.get(&url).send().await.unwrap().status().as_u16() }
    };
    until_status("an anonymous read once the restored settings are read", 200, || status("/api/v1/notes")).await;
    until_status("the collection made after the backup", 404, || status("/api/v1/later")).await;
    // Two writes bring the restored table's version back to where the kept count of five was
    // taken; the count must be of the rows there are (three, one added and one deleted).
    s.seed("notes", &[json!({"n": 6})]).await;
    let id = originals[0]["_id"].as_str().unwrap();
    let deleted = s.send(reqwest::Method::DELETE, &format!("/api/v1/notes/{id}"), None, None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let listed = s.get("/api/v1/notes").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 3, "{}", listed.text);
    assert_eq!(listed.body["total"], 3, "a count of the replaced data was served: {}", listed.text);
}
