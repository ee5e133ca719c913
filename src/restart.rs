//! Graceful restart (`POST /api/v1/admin/restart`, Unix): a new process of the same binary,
//! with the same arguments, is handed the listening socket and starts serving on it; once it
//! says it is ready, this process stops accepting, lets its in-flight requests finish and
//! exits. Both accept on the one socket meanwhile, so no connection is refused.
//!
//! The socket reaches the successor as file descriptor 3 (`FERROBASE_LISTEN_FD`), and a pipe
//! as descriptor 4 (`FERROBASE_READY_FD`) on which it writes one byte once it serves.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::time::Duration;

const LISTEN_FD_ENV: &str = "FERROBASE_LISTEN_FD";
const READY_FD_ENV: &str = "FERROBASE_READY_FD";
const LISTEN_FD: RawFd = 3;
const READY_FD: RawFd = 4;
/// How long the successor has to start serving before the restart is given up.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// The listening socket handed over by a predecessor, if this process is a successor.
pub fn inherited_listener() -> Option<std::net::TcpListener> {
    let fd: RawFd = std::env::var(LISTEN_FD_ENV).ok()?.parse().ok()?;
    // SAFETY: the predecessor put its listening socket at this descriptor for us alone, and
    // nothing else in this process owns it. Close-on-exec again, so that programs this process
    // runs (pg_dump) do not hold the socket; a restart hands it on explicitly.
    let listener = unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        std::net::TcpListener::from_raw_fd(fd)
    };
    listener.set_nonblocking(true).ok()?;
    Some(listener)
}

/// Tells the predecessor, if any, that this process now serves.
pub fn signal_ready() {
    let Some(fd) = std::env::var(READY_FD_ENV).ok().and_then(|v| v.parse::<RawFd>().ok()) else {
        return;
    };
    // SAFETY: the predecessor put the pipe's write end at this descriptor for us alone.
    let pipe = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(pipe);
    let _ = std::io::Write::write_all(&mut file, b"1");
}

/// Starts the successor with `listener`'s socket and waits until it serves.
pub async fn start_successor(listener: RawFd) -> Result<(), String> {
    let (read_end, write_end) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let write_fd = OwnedFd::from(write_end);
    let write_raw = write_fd.as_raw_fd();
    let exe = std::env::current_exe().map_err(|e| format!("the binary's path: {e}"))?;
    let mut command = std::process::Command::new(exe);
    command
        .args(std::env::args_os().skip(1))
        .env(LISTEN_FD_ENV, LISTEN_FD.to_string())
        .env(READY_FD_ENV, READY_FD.to_string());
    // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl) are made. dup2
    // leaves the new descriptors without close-on-exec, so the successor inherits these two.
    unsafe {
        command.pre_exec(move || {
            for (from, to) in [(listener, LISTEN_FD), (write_raw, READY_FD)] {
                // dup2 onto itself changes nothing, close-on-exec included: clear it then.
                let done = if from == to { libc::fcntl(to, libc::F_SETFD, 0) } else { libc::dup2(from, to) };
                if done < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| format!("starting the successor: {e}"))?;
    drop(write_fd);
    let ready = tokio::task::spawn_blocking(move || {
        let mut byte = [0u8; 1];
        std::io::Read::read(&mut &read_end, &mut byte).map(|n| n == 1)
    });
    match tokio::time::timeout(READY_WITHIN, ready).await {
        Ok(Ok(Ok(true))) => {
            tracing::info!(pid = child.id(), "the successor serves; finishing in-flight requests");
            Ok(())
        }
        _ => Err(format!("the successor (pid {}) did not start serving", child.id())),
    }
}
