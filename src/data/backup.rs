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
            pool.vacuum_into(&path).await?;
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
        Backup::PgDump(mut child) => {
            let mut stdout = child.stdout.take().ok_or("pg_dump has no output")?;
            let mut file = tokio::fs::File::create(output).await.map_err(|e| format!("{}: {e}", output.display()))?;
            tokio::io::copy(&mut stdout, &mut file).await.map_err(|e| format!("writing the dump: {e}"))?;
            let result = child.wait_with_output().await.map_err(|e| e.to_string())?;
            if !result.status.success() {
                return Err(format!("pg_dump failed: {}", String::from_utf8_lossy(&result.stderr).trim()));
            }
        }
    }
    std::fs::metadata(output).map(|m| m.len()).map_err(|e| e.to_string())
}

/// Restores a backup made by [`start`]: SQLite, into `data_dir` (the server must be stopped:
/// the current database is kept beside it as `ferrobase.db.before-restore`); PostgreSQL, with
/// `pg_restore --clean` into the database of `url`.
pub async fn restore(data_dir: &Path, database_url: Option<&str>, input: &Path) -> Result<String, String> {
    match database_url {
        None => restore_sqlite(data_dir, input),
        Some(url) => {
            let output = pg_tool("pg_restore", url)
                .args(["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction"])
                .arg(input)
                .output()
                .await
                .map_err(|e| format!("pg_restore could not start (is postgresql-client installed?): {e}"))?;
            if !output.status.success() {
                return Err(format!("pg_restore failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
            }
            Ok("restored into the PostgreSQL database".into())
        }
    }
}

fn restore_sqlite(data_dir: &Path, input: &Path) -> Result<String, String> {
    // A backup is a database that opens and holds Ferrobase's tables.
    let check = rusqlite::Connection::open_with_flags(input, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|conn| conn.query_row("SELECT COUNT(*) FROM _fb_migrations", [], |row| row.get::<_, i64>(0)))
        .map_err(|e| format!("{} is not a Ferrobase SQLite backup: {e}", input.display()))?;
    if check == 0 {
        return Err(format!("{} holds no Ferrobase tables", input.display()));
    }
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let target = data_dir.join("ferrobase.db");
    let staged = data_dir.join("ferrobase.db.restoring");
    std::fs::copy(input, &staged).map_err(|e| format!("copying the backup: {e}"))?;
    if target.exists() {
        std::fs::rename(&target, data_dir.join("ferrobase.db.before-restore")).map_err(|e| e.to_string())?;
    }
    for stale in ["ferrobase.db-wal", "ferrobase.db-shm"] {
        let _ = std::fs::remove_file(data_dir.join(stale));
    }
    std::fs::rename(&staged, &target).map_err(|e| e.to_string())?;
    Ok(format!("restored into {}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_leave_the_url_for_the_environment() {
        assert_eq!(split_options("postgres://u@h/db"), ("postgres://u@h/db".into(), None));
        assert_eq!(
            split_options("postgres://u@h/db?options=-csearch_path%3Dfbt_1&sslmode=disable"),
            ("postgres://u@h/db?sslmode=disable".into(), Some("-csearch_path=fbt_1".into()))
        );
    }
}
