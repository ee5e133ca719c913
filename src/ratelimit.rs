//! Rate limits: requests per minute per class of route and per caller (an IP or a user), as a
//! token bucket (the generic cell rate algorithm): a caller may spend the whole minute's
//! budget at once, after which one request is allowed every `60 s / limit`. Unlike fixed
//! windows there is no boundary at which twice the budget passes. Counted in this process by
//! default; with `REDIS_URL`, in Redis (one atomic script per request), so that every
//! instance shares one budget. Should Redis fail, the count falls back to this process (and
//! the failure is logged): a limiter never takes the API down.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

/// The classes of the contract's table; each has its setting (requests per minute, `0` off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Anonymous requests, by client IP.
    PublicReads,
    /// Sign-in, registration, refresh, magic links, password resets: by client IP.
    Auth,
    /// Signed-in users' requests, by user.
    Crud,
    /// The admin API (and the admin secret anywhere), by client IP.
    Admin,
    /// Uploads, by user (or IP for signed uploads).
    Uploads,
}

impl Class {
    pub fn setting(self) -> &'static str {
        match self {
            Class::PublicReads => "rate_limit_public_reads",
            Class::Auth => "rate_limit_auth",
            Class::Crud => "rate_limit_crud",
            Class::Admin => "rate_limit_admin",
            Class::Uploads => "rate_limit_uploads",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::PublicReads => "public",
            Class::Auth => "auth",
            Class::Crud => "crud",
            Class::Admin => "admin",
            Class::Uploads => "uploads",
        }
    }
}

/// What one counted request learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the whole budget is back.
    pub reset_secs: u64,
    /// Seconds until one more request is allowed (when refused), rounded up.
    pub retry_after_secs: u64,
    /// The same, in milliseconds.
    pub retry_after_ms: u64,
}

/// The period a limit is counted over, in milliseconds.
const PERIOD_MS: f64 = 60_000.0;
const SHARDS: usize = 16;
/// Callers a shard remembers before it forgets those whose budget is whole again.
const SHARD_TIDY_AT: usize = 4096;

/// One bucket's state: the theoretical arrival time of the next request, in ms.
type Tat = f64;

pub struct RateLimiter {
    shards: Vec<Mutex<HashMap<(Class, String), Tat>>>,
    redis: Option<redis::aio::ConnectionManager>,
    /// Keeps this deployment's Redis keys apart from another's on the same Redis.
    namespace: String,
    /// Until when (ms) Redis is left alone after it failed: meanwhile this process counts, so
    /// that a Redis that is down costs requests no time.
    redis_down_until: std::sync::atomic::AtomicI64,
}

/// How long a Redis command (or a connection to Redis) may take before it counts as failed.
const REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
/// How long Redis is left alone after it failed before it is tried again.
const REDIS_RETRY_MS: i64 = 5_000;

impl RateLimiter {
    /// A limiter counting in this process, or in Redis at `redis_url` under keys that start
    /// with `namespace` (the same for every instance of one deployment).
    pub async fn new(redis_url: Option<&str>, namespace: &str) -> Result<RateLimiter, String> {
        let redis = match redis_url {
            None => None,
            Some(url) => {
                let client = redis::Client::open(url).map_err(|e| format!("REDIS_URL: {e}"))?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(1);
                match redis::aio::ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                    Ok(manager) => Some(manager),
                    // A Redis that is down does not keep the server from starting: it counts in
                    // this process until Redis answers.
                    Err(err) => {
                        tracing::warn!(%err, "rate limit: Redis at REDIS_URL does not answer; counting in this process until it does");
                        Some(
                            redis::aio::ConnectionManager::new_lazy_with_config(client, config)
                                .map_err(|e| format!("REDIS_URL: {e}"))?,
                        )
                    }
                }
            }
        };
        let shards = (0..SHARDS).map(|_| Mutex::default()).collect();
        Ok(RateLimiter { shards, redis, namespace: namespace.to_owned(), redis_down_until: Default::default() })
    }

    /// Spends one request of `class` by `caller` from a budget of `limit` per minute.
    pub async fn hit(&self, class: Class, caller: &str, limit: u64) -> Verdict {
        let now = crate::util::now_ms() as f64;
        let interval = PERIOD_MS / limit.max(1) as f64;
        use std::sync::atomic::Ordering::Relaxed;
        let redis = self.redis.as_ref().filter(|_| (now as i64) >= self.redis_down_until.load(Relaxed));
        let outcome = match redis {
            Some(redis) => match self.shared(redis.clone(), class, caller, now, interval).await {
                Ok(outcome) => outcome,
                Err(err) => {
                    tracing::warn!(%err, "rate limit: Redis failed; counting in this process for {REDIS_RETRY_MS} ms");
                    self.redis_down_until.store(now as i64 + REDIS_RETRY_MS, Relaxed);
                    self.local(class, caller, now, interval)
                }
            },
            None => self.local(class, caller, now, interval),
        };
        verdict(limit, interval, outcome)
    }

    /// The bucket in this process: `(allowed, ms the bucket is ahead of now)`.
    fn local(&self, class: Class, caller: &str, now: f64, interval: f64) -> (bool, f64) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (class, caller).hash(&mut hasher);
        let mut shard = self.shards[hasher.finish() as usize % SHARDS].lock().expect("rate limit shard");
        if shard.len() >= SHARD_TIDY_AT {
            shard.retain(|_, tat| *tat > now);
        }
        let tat = shard.get(&(class, caller.to_owned())).copied().unwrap_or(now).max(now);
        let next = tat + interval;
        if next - now > PERIOD_MS {
            return (false, tat - now);
        }
        shard.insert((class, caller.to_owned()), next);
        (true, next - now)
    }

    /// The bucket in Redis, updated by one script so that instances never race.
    async fn shared(
        &self,
        mut redis: redis::aio::ConnectionManager,
        class: Class,
        caller: &str,
        now: f64,
        interval: f64,
    ) -> Result<(bool, f64), redis::RedisError> {
        let key = format!("ferrobase:{}:ratelimit:{}:{caller}", self.namespace, class.name());
        let (allowed, ahead): (i64, f64) = redis::cmd("EVAL")
            .arg(GCRA_SCRIPT)
            .arg(1)
            .arg(key)
            .arg(now)
            .arg(interval)
            .arg(PERIOD_MS)
            .query_async(&mut redis)
            .await?;
        Ok((allowed == 1, ahead))
    }
}

/// The same rule as [`RateLimiter::local`], in Redis: returns `{allowed, ms ahead of now}`.
const GCRA_SCRIPT: &str = r#"
local now, interval, period = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local next = tat + interval
if next - now > period then
  return {0, tostring(tat - now)}
end
redis.call('SET', KEYS[1], tostring(next), 'PX', math.ceil(next - now))
return {1, tostring(next - now)}
"#;

fn verdict(limit: u64, interval: f64, (allowed, ahead): (bool, f64)) -> Verdict {
    let remaining = if allowed { ((PERIOD_MS - ahead) / interval).floor().max(0.0) as u64 } else { 0 };
    // How long until the bucket has room for one more: it must fall to `period - interval`.
    let wait = (ahead + interval - PERIOD_MS).max(0.0);
    Verdict {
        allowed,
        limit,
        remaining: remaining.min(limit),
        reset_secs: (ahead / 1000.0).ceil().max(1.0) as u64,
        retry_after_secs: (wait / 1000.0).ceil().max(1.0) as u64,
        retry_after_ms: wait.ceil() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_budget_is_per_class_and_caller() {
        let limiter = RateLimiter::new(None, "test").await.unwrap();
        for n in 1..=3 {
            let verdict = limiter.hit(Class::Auth, "1.2.3.4", 3).await;
            assert!(verdict.allowed);
            assert_eq!(verdict.remaining, 3 - n);
            assert!((1..=60).contains(&verdict.reset_secs));
        }
        let refused = limiter.hit(Class::Auth, "1.2.3.4", 3).await;
        assert!(!refused.allowed);
        assert!((1..=20).contains(&refused.retry_after_secs), "{refused:?}");
        assert!(limiter.hit(Class::Auth, "5.6.7.8", 3).await.allowed, "another caller has its own budget");
        assert!(limiter.hit(Class::PublicReads, "1.2.3.4", 3).await.allowed, "another class too");
    }

    #[test]
    fn the_budget_refills_one_request_per_interval() {
        let limiter = futures_util::FutureExt::now_or_never(RateLimiter::new(None, "test")).unwrap().unwrap();
        let interval = PERIOD_MS / 2.0;
        assert!(limiter.local(Class::Crud, "u", 0.0, interval).0);
        assert!(limiter.local(Class::Crud, "u", 0.0, interval).0);
        assert!(!limiter.local(Class::Crud, "u", 0.0, interval).0, "the burst is spent");
        assert!(!limiter.local(Class::Crud, "u", interval - 1.0, interval).0);
        assert!(limiter.local(Class::Crud, "u", interval, interval).0, "one interval later, one more");
        assert!(!limiter.local(Class::Crud, "u", interval, interval).0);
    }
}
