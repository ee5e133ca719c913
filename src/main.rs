//! The `ferrobase` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::io::Write;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: under load the request threads and the SQLite
/// threads allocate concurrently, and glibc's arena locks showed up as a tenth of the
/// server's time (see docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ferrobase::{Config, Server};

#[derive(Parser)]
#[command(name = "ferrobase", version, about = "A backend-as-a-service in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "FERROBASE_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Directory for the SQLite database, secrets and local files.
        #[arg(long, env = "DATA_DIR", default_value = "./ferrobase_data")]
        data_dir: PathBuf,
        /// PostgreSQL connection URL; without it the embedded SQLite store is used.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Largest JSON request body, in bytes.
        #[arg(long, env = "FERROBASE_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
        max_body_bytes: usize,
        /// SQLite durability: `normal` (a process crash loses nothing acknowledged; a power
        /// loss may lose the last commits) or `full` (an fsync per commit: survives power loss).
        #[arg(long, env = "SQLITE_SYNCHRONOUS", default_value = "normal", value_parser = ["normal", "full"])]
        sqlite_synchronous: String,
        /// Log format: `text` (for people) or `json` (one object per line, with an access log
        /// line per request).
        #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
        /// Largest upload to a bucket without its own limit, in bytes.
        #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = ferrobase::limits::DEFAULT_MAX_UPLOAD_BYTES)]
        max_upload_bytes: u64,
        /// Seconds a client has to send a request's head; also how long an idle connection
        /// stays open.
        #[arg(long, env = "FERROBASE_HEADER_TIMEOUT_SECS", default_value_t = ferrobase::limits::DEFAULT_HEADER_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
        header_timeout_secs: u64,
        /// Seconds of silence tolerated in the middle of a request body.
        #[arg(long, env = "FERROBASE_BODY_IDLE_TIMEOUT_SECS", default_value_t = ferrobase::limits::DEFAULT_BODY_IDLE_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
        body_idle_timeout_secs: u64,
    },
    /// Write a consistent backup to a file: SQLite's database file (while a server runs on
    /// it, too) or `pg_dump`'s custom format of the deployment's schema.
    Backup {
        #[arg(long, env = "DATA_DIR", default_value = "./ferrobase_data")]
        data_dir: PathBuf,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Where to write the backup.
        #[arg(long)]
        output: PathBuf,
    },
    /// Restore a backup made by `ferrobase backup` or `POST /api/v1/admin/backup`. SQLite:
    /// stop the server first (the current database is kept as `ferrobase.db.before-restore`).
    Restore {
        #[arg(long, env = "DATA_DIR", default_value = "./ferrobase_data")]
        data_dir: PathBuf,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// The backup file.
        #[arg(long)]
        input: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let json_logs = matches!(&cli.command, Command::Serve { log_format, .. } if log_format == "json");
    ferrobase::logging::init(json_logs);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the async runtime starts");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve {
                addr,
                data_dir,
                database_url,
                max_body_bytes,
                sqlite_synchronous,
                max_upload_bytes,
                log_format,
                header_timeout_secs,
                body_idle_timeout_secs,
            } => {
                let mut config = Config::new(data_dir);
                config.addr = addr;
                config.database_url = database_url.filter(|url| !url.is_empty());
                config.admin_secret = std::env::var("ADMIN_SECRET").ok().filter(|s| !s.is_empty());
                config.jwt_secret = std::env::var("JWT_SECRET").ok().filter(|s| !s.is_empty());
                config.max_body_bytes = max_body_bytes;
                config.max_upload_bytes = max_upload_bytes;
                config.timeouts.header_read = std::time::Duration::from_secs(header_timeout_secs);
                config.timeouts.body_idle = std::time::Duration::from_secs(body_idle_timeout_secs);
                config.s3 = ferrobase::config::S3Config::from_env();
                config.redis_url = std::env::var("REDIS_URL").ok().filter(|url| !url.is_empty());
                config.access_log = log_format == "json";
                config.restartable = cfg!(unix);
                if sqlite_synchronous == "full" {
                    config.sqlite_synchronous = ferrobase::data::Synchronous::Full;
                }
                serve(config).await
            }
            Command::Backup { data_dir, database_url, output } => {
                let url = database_url.filter(|u| !u.is_empty());
                let size = ferrobase::data::backup::backup_to_file(&data_dir, url.as_deref(), &output).await?;
                println!("backup written to {} ({size} bytes)", output.display());
                Ok(())
            }
            Command::Restore { data_dir, database_url, input } => {
                let url = database_url.filter(|u| !u.is_empty());
                let done = ferrobase::data::backup::restore(&data_dir, url.as_deref(), &input).await?;
                println!("{done}");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ferrobase: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::start(config).await?;
    if let Some(secret) = server.state().generated_admin_secret() {
        // Printed once, on the start that generated it; later starts read it from the data dir.
        println!("Generated admin secret (stored in the data dir): {secret}");
    }
    // Not println!: after a restart the predecessor's stdout may be gone, and a failed write
    // must not stop the server.
    let _ = writeln!(std::io::stdout(), "Ferrobase listening on http://{}", server.addr());
    server.run_until(shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM so that in-flight requests can finish before exit.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
