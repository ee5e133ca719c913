//! Backups and restores. SQLite: `VACUUM INTO` a file, a consistent snapshot taken while
//! writes go on, which is itself a database (restored by putting it in place). PostgreSQL:
//! `pg_dump --format=custom` of this deployment's schema, one consistent snapshot, which
//! `pg_restore` (or `ferrobase restore`) takes back; `pg_dump` and `pg_restore` (Debian's
//! `postgresql-client`) must be installed.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::{Db, DbError};

/// What a backup is.
pub enum Backup {
    /// An SQLite database file (a temporary one, to be streamed and deleted).
    SqliteFile(PathBuf),
    /// `pg_dump`'s output, streamed as it is produced.
    PgDump(tokio::process::Child),
}

/// Starts a backup. `scratch` is a directory on the data disk for SQLite's copy.
pub async fn start(db: &Db, database_url: Option<&str>, scratch: &Path) -> Result<Backup, DbError> {
    match (db, database_url) {
        (Db::Sqlite(pool), _) => {
            let path = scratch.join(format!("backup-{}.db", uuid::Uuid::new_v4().simple()));
            // Made first, empty and private (VACUUM INTO fills an empty file): SQLite would
            // make it readable by all.
            crate::util::create_private(&path).map_err(|e| DbError::Other(format!("{}: {e}", path.display())))?;
            if let Err(err) = pool.vacuum_into(&path).await {
                let _ = std::fs::remove_file(&path);
                return Err(err);
            }
            Ok(Backup::SqliteFile(path))
        }
        (Db::Postgres(_), Some(url)) => {
            let schema = current_schema(db).await?;
            let child = pg_tool("pg_dump", url)
                .args(["--format=custom", "--no-owner", "--no-privileges", "--schema", &schema])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    DbError::Other(format!("pg_dump could not start (is postgresql-client installed?): {e}"))
                })?;
            Ok(Backup::PgDump(child))
        }
        (Db::Postgres(_), None) => Err(DbError::Other("a PostgreSQL backup needs the database URL".into())),
    }
}

/// The schema this deployment's tables live in.
async fn current_schema(db: &Db) -> Result<String, DbError> {
    let rows = db.read(super::Stmt::new("SELECT current_schema()::text", vec![])).await?;
    Ok(rows.rows.first().and_then(|r| r[0].text()).unwrap_or_else(|| "public".into()))
}

/// `pg_dump` or `pg_restore` for the database of `url`: the connection goes in the
/// environment (libpq reads `PGOPTIONS` for the search path), never on the command line.
fn pg_tool(program: &str, url: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    let (base, options) = split_options(url);
    command.arg("--dbname").arg(base);
    if let Some(options) = options {
        command.env("PGOPTIONS", options);
    }
    command
}

/// Splits `options=…` (which `pg_dump` refuses inside a URL it must also name a schema with)
/// from a connection URL, decoded.
fn split_options(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut options = None;
    let kept: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter_map(|(key, value)| {
            if key == "options" {
                options = Some(value.into_owned());
                None
            } else {
                Some(form_urlencoded::Serializer::new(String::new()).append_pair(&key, &value).finish())
            }
        })
        .collect();
    let base = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    (base, options)
}

/// Writes a backup to `output` (what `ferrobase backup` does); returns its size in bytes.
/// SQLite works while a server is running on the same data dir.
pub async fn backup_to_file(data_dir: &Path, database_url: Option<&str>, output: &Path) -> Result<u64, String> {
    if is_live_database(data_dir, output) {
        return Err(format!(
            "{} is the live database (or its journal, or a secret of the server): a backup must be written elsewhere",
            output.display()
        ));
    }
    let db = match database_url {
        Some(url) => Db::connect_postgres(url, 1).await,
        None if !data_dir.join("ferrobase.db").exists() => {
            return Err(format!("no database in {} (ferrobase.db)", data_dir.display()));
        }
        None => Db::open_sqlite(data_dir, 1, super::Synchronous::Normal),
    }
    .map_err(|e| format!("database: {e}"))?;
    let scratch = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match start(&db, database_url, scratch).await.map_err(|e| e.to_string())? {
        Backup::SqliteFile(path) => std::fs::rename(&path, output).map_err(|e| format!("{}: {e}", output.display()))?,
        Backup::PgDump(child) => {
            // Written beside the target and renamed once whole: a failed dump leaves an
            // earlier backup at `output` as it was.
            let staged = scratch.join(format!(".backup-{}.dump", uuid::Uuid::new_v4().simple()));
            let written = dump_to(child, &staged).await;
            let placed = written
                .and_then(|()| std::fs::rename(&staged, output).map_err(|e| format!("{}: {e}", output.display())));
            if placed.is_err() {
                let _ = std::fs::remove_file(&staged);
            }
            placed?;
        }
    }
    std::fs::metadata(output).map(|m| m.len()).map_err(|e| e.to_string())
}

/// Copies `pg_dump`'s output into a new file at `path`; an error when it fails.
async fn dump_to(mut child: tokio::process::Child, path: &Path) -> Result<(), String> {
    let mut stdout = child.stdout.take().ok_or("pg_dump has no output")?;
    let file = crate::util::create_private(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut file = tokio::fs::File::from_std(file);
    tokio::io::copy(&mut stdout, &mut file).await.map_err(|e| format!("writing the dump: {e}"))?;
    file.sync_all().await.map_err(|e| format!("writing the dump: {e}"))?;
    let result = child.wait_with_output().await.map_err(|e| e.to_string())?;
    if !result.status.success() {
        return Err(format!("pg_dump failed: {}", String::from_utf8_lossy(&result.stderr).trim()));
    }
    Ok(())
}

/// Whether `output` is the SQLite database of `data_dir`, one of its journal files or one of
/// the server's secrets (as the same file, whatever the path's spelling): a backup written
/// there would replace the file the server writes to, or the secrets its tokens and sealed
/// TOTP keys depend on.
fn is_live_database(data_dir: &Path, output: &Path) -> bool {
    let resolve = |path: &Path| -> Option<PathBuf> {
        let name = path.file_name()?;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let resolved = parent.canonicalize().ok()?.join(name);
        // A symbolic link to the database counts as the database.
        Some(resolved.canonicalize().unwrap_or(resolved))
    };
    let Some(target) = resolve(output) else { return false };
    ["ferrobase.db", "ferrobase.db-wal", "ferrobase.db-shm", "ferrobase.db-journal", "jwt_secret", "admin_secret"]
        .iter()
        .filter_map(|name| resolve(&data_dir.join(name)))
        .any(|live| live == target)
}

/// Restores a backup made by [`start`]: SQLite, into `data_dir` (the server must be stopped:
/// the current database is kept beside it as `ferrobase.db.before-restore-<ms>`); PostgreSQL, into
/// the database of `url`, replacing the dumped schema (see [`restore_postgres`]).
pub async fn restore(data_dir: &Path, database_url: Option<&str>, input: &Path) -> Result<String, String> {
    match database_url {
        None => restore_sqlite(data_dir, input),
        Some(url) => restore_postgres(url, input).await,
    }
}

/// Replaces the dumped schema by the dump's, in one transaction: the schema is dropped with
/// everything in it (a collection made after the backup included, which `pg_restore --clean`
/// alone cannot drop), then the dump's script runs. Any failure rolls all of it back.
async fn restore_postgres(url: &str, input: &Path) -> Result<String, String> {
    let schema = dumped_schema(input).await?;
    let script = std::env::temp_dir().join(format!("ferrobase-restore-{}.sql", uuid::Uuid::new_v4().simple()));
    let result = restore_script(url, input, &schema, &script).await;
    let _ = std::fs::remove_file(&script);
    result?;
    Ok(format!("restored schema {schema} into the PostgreSQL database"))
}

async fn restore_script(url: &str, input: &Path, schema: &str, script: &Path) -> Result<(), String> {
    // The whole script is written before any of it runs: a script cut short by a failing
    // pg_restore would otherwise be committed as far as it went.
    let mut sql = restore_prelude(schema).into_bytes();
    sql.extend_from_slice(format!("DROP SCHEMA IF EXISTS {} CASCADE;\n", super::sql::quote_ident(schema)).as_bytes());
    let dumped = tokio::process::Command::new("pg_restore")
        .args(["--clean", "--if-exists", "--no-owner", "--no-privileges", "--file=-"])
        .arg(input)
        .output()
        .await
        .map_err(|e| format!("pg_restore could not start (is postgresql-client installed?): {e}"))?;
    if !dumped.status.success() {
        return Err(format!("pg_restore failed: {}", String::from_utf8_lossy(&dumped.stderr).trim()));
    }
    sql.extend_from_slice(&dumped.stdout);
    sql.extend_from_slice(restore_epilogue(schema).as_bytes());
    write_private(script, &sql).map_err(|e| format!("{}: {e}", script.display()))?;
    let applied = pg_tool("psql", url)
        .args(["--no-psqlrc", "--quiet", "--single-transaction", "--set", "ON_ERROR_STOP=1", "--file"])
        .arg(script)
        .output()
        .await
        .map_err(|e| format!("psql could not start (is postgresql-client installed?): {e}"))?;
    if !applied.status.success() {
        return Err(format!(
            "the restore failed and changed nothing: {}",
            String::from_utf8_lossy(&applied.stderr).trim()
        ));
    }
    Ok(())
}

/// The restore script's opening: it keeps the table versions of the schema it replaces (see
/// [`restore_epilogue`]).
fn restore_prelude(schema: &str) -> String {
    format!(
        "SET standard_conforming_strings = on;\n\
         SELECT pg_catalog.set_config('ferrobase.restored_schema', {}, true);\n\
         CREATE TEMP TABLE fb_versions_before (name text PRIMARY KEY, version bigint NOT NULL) ON COMMIT DROP;\n\
         DO $fb$ DECLARE replaced text := current_setting('ferrobase.restored_schema'); BEGIN\n\
           IF to_regclass(format('%I._fb_table_versions', replaced)) IS NOT NULL THEN\n\
             EXECUTE format('INSERT INTO pg_temp.fb_versions_before SELECT name, %s FROM %I._fb_table_versions', \
               CASE WHEN {has_schema_version} THEN 'GREATEST(version, schema_version)' ELSE 'version' END, replaced);\n\
           END IF;\n\
         END $fb$;\n",
        quote_literal(schema),
        has_schema_version = has_schema_version("replaced"),
    )
}

/// SQL that is true when the schema named by the PL/pgSQL variable `schema` has the schema
/// versions of `_fb_table_versions` (a dump made before they existed has not).
fn has_schema_version(schema: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = {schema} \
         AND table_name = '_fb_table_versions' AND column_name = 'schema_version')"
    )
}

/// The restore script's closing, in the same transaction. Running servers keep counts by table
/// version (`read/counts.rs`), and the dump brings back older versions, which later writes
/// would count up to again, making a kept count of the replaced data look current: every
/// version is raised above any the replaced schema held. So are the schema versions, which
/// writes planned on the replaced schema are checked against. Then the servers of the schema are
/// told (at commit) that every table and the settings changed, so they read them again at once.
fn restore_epilogue(schema: &str) -> String {
    use super::feed_pg::{Announcer, CATALOG_NEWS, SETTINGS_TABLE, channel_of_schema};
    let announcer = Announcer { channel: channel_of_schema(schema), instance: "restore".into() };
    format!(
        "DO $fb$ DECLARE restored text := current_setting('ferrobase.restored_schema'); raise_by bigint; BEGIN\n\
           IF to_regclass(format('%I._fb_table_versions', restored)) IS NOT NULL THEN\n\
             SELECT COALESCE(max(version), 0) + 1 INTO raise_by FROM pg_temp.fb_versions_before;\n\
             EXECUTE format('UPDATE %I._fb_table_versions SET version = version + $1', restored) USING raise_by;\n\
             IF {has_schema_version} THEN\n\
               EXECUTE format('UPDATE %I._fb_table_versions SET schema_version = schema_version + $1', restored) USING raise_by;\n\
               EXECUTE format('INSERT INTO %I._fb_table_versions (name, version, schema_version) SELECT name, $1, $1 \
                 FROM pg_temp.fb_versions_before ON CONFLICT (name) DO NOTHING', restored) USING raise_by;\n\
             ELSE\n\
               EXECUTE format('INSERT INTO %I._fb_table_versions (name, version) SELECT name, $1 \
                 FROM pg_temp.fb_versions_before ON CONFLICT (name) DO NOTHING', restored) USING raise_by;\n\
             END IF;\n\
           END IF;\n\
         END $fb$;\n\
         SELECT pg_catalog.pg_notify({channel}, {catalog}), pg_catalog.pg_notify({channel}, {settings});\n",
        channel = quote_literal(&announcer.channel),
        catalog = quote_literal(&announcer.news(CATALOG_NEWS, None)),
        settings = quote_literal(&announcer.news(SETTINGS_TABLE, None)),
        has_schema_version = has_schema_version("restored"),
    )
}

/// A text as an SQL string literal (`standard_conforming_strings` is on in the script).
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Writes a new file only its owner may read: the script holds every row, password hashes
/// included.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    crate::util::create_private(path)?.write_all(bytes)
}

/// The schema of a Ferrobase dump: the one its `_fb_migrations` table is in. A dump without
/// that table is not Ferrobase's, and is refused before anything is dropped.
async fn dumped_schema(input: &Path) -> Result<String, String> {
    let listed = tokio::process::Command::new("pg_restore")
        .arg("--list")
        .arg(input)
        .output()
        .await
        .map_err(|e| format!("pg_restore could not start (is postgresql-client installed?): {e}"))?;
    if !listed.status.success() {
        return Err(format!(
            "{} is not a pg_dump archive: {}",
            input.display(),
            String::from_utf8_lossy(&listed.stderr).trim()
        ));
    }
    migrations_schema(&String::from_utf8_lossy(&listed.stdout))
        .ok_or_else(|| format!("{} is not a Ferrobase backup: it holds no _fb_migrations table", input.display()))
}

/// In `pg_restore --list`'s lines (`215; 1259 16390 TABLE public _fb_migrations owner`), the
/// schema of the `_fb_migrations` table.
fn migrations_schema(listing: &str) -> Option<String> {
    listing.lines().filter(|line| !line.starts_with(';')).find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.windows(3).find(|w| w[0] == "TABLE" && w[2] == "_fb_migrations").map(|w| w[1].to_owned())
    })
}

/// Tables every Ferrobase database holds since its first migrations: a file without them is
/// not one, whatever else it holds.
const CORE_TABLES: [&str; 5] = ["_fb_migrations", "_fb_collections", "_fb_settings", "_fb_users", "_fb_sessions"];

fn restore_sqlite(data_dir: &Path, input: &Path) -> Result<String, String> {
    check_sqlite_backup(input)?;
    crate::util::create_private_dir(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let target = data_dir.join("ferrobase.db");
    if target.exists() {
        settle(&target)?;
    }
    let staged = data_dir.join("ferrobase.db.restoring");
    std::fs::copy(input, &staged).map_err(|e| format!("copying the backup: {e}"))?;
    // The copy took the backup's mode; the database is its owner's alone.
    #[cfg(unix)]
    std::fs::set_permissions(&staged, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", staged.display()))?;
    let mut kept = None;
    if target.exists() {
        // Never over an earlier restore's copy: that may be the only one of the real data.
        let name = format!("ferrobase.db.before-restore-{}", crate::util::now_ms());
        std::fs::rename(&target, data_dir.join(&name)).map_err(|e| e.to_string())?;
        kept = Some(name);
    }
    for stale in ["ferrobase.db-wal", "ferrobase.db-shm"] {
        let _ = std::fs::remove_file(data_dir.join(stale));
    }
    std::fs::rename(&staged, &target).map_err(|e| e.to_string())?;
    Ok(match kept {
        Some(name) => format!("restored into {}; the database it replaced is kept as {name}", target.display()),
        None => format!("restored into {}", target.display()),
    })
}

/// A backup is a whole database that opens, passes its integrity check and holds
/// Ferrobase's tables.
fn check_sqlite_backup(input: &Path) -> Result<(), String> {
    let not_a_backup = |e: &dyn std::fmt::Display| format!("{} is not a Ferrobase SQLite backup: {e}", input.display());
    let conn = rusqlite::Connection::open_with_flags(input, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| not_a_backup(&e))?;
    for table in CORE_TABLES {
        let found: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |row| {
                row.get(0)
            })
            .map_err(|e| not_a_backup(&e))?;
        if found == 0 {
            return Err(not_a_backup(&format!("it has no table {table}")));
        }
    }
    let migrations: i64 =
        conn.query_row("SELECT COUNT(*) FROM _fb_migrations", [], |row| row.get(0)).map_err(|e| not_a_backup(&e))?;
    if migrations == 0 {
        return Err(format!("{} holds no Ferrobase tables", input.display()));
    }
    let integrity: String = conn
        .query_row("PRAGMA integrity_check(1)", [], |row| row.get(0))
        .map_err(|e| format!("{} is damaged: {e}", input.display()))?;
    if integrity != "ok" {
        return Err(format!("{} is damaged ({integrity}); nothing was restored", input.display()));
    }
    Ok(())
}

/// Makes the current database whole before it is set aside: it is refused while another
/// process (a running server) has it open, and its write-ahead log, which may hold the last
/// acknowledged writes (after a crash, say), is copied into it.
fn settle(database: &Path) -> Result<(), String> {
    let in_use = || format!("{} is in use: stop the server before restoring", database.display());
    let conn = rusqlite::Connection::open(database).map_err(|e| format!("{}: {e}", database.display()))?;
    conn.busy_timeout(std::time::Duration::ZERO).map_err(|e| e.to_string())?;
    // Exclusive, before the first read: no other connection may have the file open, and the
    // log is read without the shared memory of the others.
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE").map_err(|e| e.to_string())?;
    conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;").map_err(|_| in_use())?;
    let busy: i64 =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0)).map_err(|e| e.to_string())?;
    if busy != 0 {
        return Err(in_use());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dumped_schema_is_that_of_the_migrations_table() {
        let listing = ";\n; Archive created at 2026-12-06\n213; 1259 16386 TABLE app _fb_migrations postgres\n\
                       3350; 0 16386 TABLE DATA app _fb_migrations postgres\n214; 1259 16390 TABLE app posts postgres\n";
        assert_eq!(migrations_schema(listing).as_deref(), Some("app"));
        assert_eq!(migrations_schema("214; 1259 16390 TABLE public posts postgres\n"), None);
        assert_eq!(migrations_schema("; TABLE public _fb_migrations\n"), None);
    }

    #[test]
    fn the_live_database_is_no_place_for_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ferrobase.db"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for live in ["ferrobase.db", "sub/../ferrobase.db", "ferrobase.db-wal", "./ferrobase.db", "jwt_secret"] {
            assert!(is_live_database(dir.path(), &dir.path().join(live)), "{live}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("ferrobase.db"), dir.path().join("link.db")).unwrap();
            assert!(is_live_database(dir.path(), &dir.path().join("link.db")));
        }
        assert!(!is_live_database(dir.path(), &dir.path().join("backup.db")));
        assert!(!is_live_database(dir.path(), &dir.path().join("sub/ferrobase.db")));
    }

    #[test]
    fn options_leave_the_url_for_the_environment() {
        assert_eq!(split_options("postgres://u@h/db"), ("postgres://u@h/db".into(), None));
        assert_eq!(
            split_options("postgres://u@h/db?options=-csearch_path%3Dfbt_1&sslmode=disable"),
            ("postgres://u@h/db?sslmode=disable".into(), Some("-csearch_path=fbt_1".into()))
        );
    }
}
