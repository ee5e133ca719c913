//! Argon2id password hashing (tens of milliseconds of CPU and 19 MiB of memory per hash, by
//! design), run on dedicated threads, one per core, off the async runtime. More would not
//! finish sooner; and with hashes on arbitrary blocking threads a burst of 64 sign-ins measured
//! 1.3 GiB of peak memory, 19 MiB each at once, much of it kept by the allocator afterwards.
//! A few long-lived threads reuse the same memory.

use std::sync::OnceLock;

use crossbeam_channel::Sender;
use tokio::sync::oneshot;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::ApiError;

type Work = Box<dyn FnOnce() + Send>;

fn hashing_threads() -> &'static Sender<Work> {
    static QUEUE: OnceLock<Sender<Work>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded::<Work>();
        for i in 0..std::thread::available_parallelism().map_or(2, |n| n.get()) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("ferrobase-argon2-{i}"))
                .spawn(move || {
                    while let Ok(work) = rx.recv() {
                        work();
                    }
                })
                .expect("a hashing thread starts");
        }
        tx
    })
}

/// Runs `work` on a hashing thread and waits for its answer.
async fn on_hashing_thread<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> Result<R, ApiError> {
    let (tx, rx) = oneshot::channel();
    hashing_threads()
        .send(Box::new(move || {
            let _ = tx.send(work());
        }))
        .map_err(|_| ApiError::internal("the hashing threads stopped"))?;
    rx.await.map_err(ApiError::internal)
}

pub async fn hash(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    on_hashing_thread(move || {
        Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(ApiError::internal)
    })
    .await?
}

/// Checks `password` against `stored`. Without a stored hash (unknown user, passwordless
/// account) a dummy hash is checked instead, so the answer takes as long either way and
/// timing does not tell whether an account exists.
pub async fn verify(password: &str, stored: Option<&str>) -> bool {
    let password = password.to_owned();
    let stored = stored.map(str::to_owned);
    on_hashing_thread(move || {
        let (hash, real) = match &stored {
            Some(h) => (h.as_str(), true),
            None => (dummy_hash(), false),
        };
        let Ok(parsed) = PasswordHash::new(hash) else { return false };
        Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && real
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = crate::util::random_hex(16);
        Argon2::default().hash_password(random.as_bytes()).map(|h| h.to_string()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let a = hash("correct horse").await.unwrap();
        let b = hash("correct horse").await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify("correct horse", Some(&a)).await);
        assert!(!verify("wrong", Some(&a)).await);
        assert!(!verify("correct horse", None).await);
        assert!(!verify("x", Some("not a hash")).await);
    }
}
