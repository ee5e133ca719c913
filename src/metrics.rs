//! Prometheus metrics through the `metrics` facade: any module records its own series with
//! the `metrics` macros (`counter!`, `gauge!`, `histogram!`) and they appear in `GET /metrics`
//! without the exporter knowing of them. This module installs the process's recorder, names
//! the series it describes, and measures every request ([`Measure`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::AppState;

/// Latency buckets, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use; every server in the process shares it.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Only fails when another recorder was installed first (an embedding program's): ours
        // then renders nothing, which is that program's choice.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        // Histograms keep their samples until folded into buckets: without a scrape they
        // would grow with every request, so the folding runs every few seconds regardless.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("ferrobase-metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            })
            .expect("the metrics upkeep thread starts");
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("ferrobase_http_requests_total", "HTTP requests answered, by method, route template and status");
    describe_histogram!(
        "ferrobase_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to the response's headers, by method and route template"
    );
    describe_gauge!("ferrobase_http_requests_in_flight", "HTTP requests being handled");
    describe_histogram!(
        "ferrobase_db_pool_wait_seconds",
        metrics::Unit::Seconds,
        "Time a database call waited for a connection (PostgreSQL) or a reader thread (SQLite)"
    );
    describe_gauge!("ferrobase_db_connections", "Database connections by state: size, idle, waiting");
    describe_gauge!("ferrobase_sqlite_wal_bytes", "Size of SQLite's write-ahead log");
    describe_gauge!("ferrobase_database_bytes", "Size of the database");
    describe_gauge!("ferrobase_sessions_active", "Sessions neither expired nor revoked");
    describe_gauge!("ferrobase_storage_files", "Stored files");
    describe_gauge!("ferrobase_storage_bytes", "Bytes of the stored files");
    describe_gauge!("ferrobase_uptime_seconds", "Seconds since this server started");
}

/// One request being measured: counted and timed under its route template
/// (`/api/v1/{collection}/{id}`, never the concrete path, so the series stay few), and in
/// flight until it is finished or dropped.
pub struct Measure {
    route: Option<MatchedPath>,
    method: &'static str,
    started: Instant,
    _in_flight: InFlight,
}

impl Measure {
    pub fn start(state: &AppState, request: &Request) -> Measure {
        state.requests_served().fetch_add(1, Ordering::Relaxed);
        Measure {
            route: request.extensions().get::<MatchedPath>().cloned(),
            method: method_label(request.method()),
            started: Instant::now(),
            _in_flight: InFlight::enter(),
        }
    }

    pub fn finish(self, response: &Response) {
        let route = self.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        let (requests, latency) = series(route, self.method, response.status().as_u16());
        latency.record(self.started.elapsed().as_secs_f64());
        requests.increment(1);
    }
}

type Series = (metrics::Counter, metrics::Histogram);
/// A route's series, by method and status.
type RouteSeries = HashMap<(&'static str, u16), Series>;

/// The `method` label: the standard methods by name, any other as `other`. A client may send
/// any token as a method; labelled as sent, each would add series for good.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

thread_local! {
    /// Each thread's handles of the request series it has seen, by route, then method and
    /// status: the registry's lookup (labels built, hashed, a lock taken) happens once per
    /// series and thread, not per request.
    static SERIES: RefCell<HashMap<Box<str>, RouteSeries>> = RefCell::new(HashMap::new());
}

fn series(route: &str, method: &'static str, status: u16) -> Series {
    SERIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(found) = cache.get(route).and_then(|by_status| by_status.get(&(method, status))) {
            return found.clone();
        }
        let labels = [("method", method.to_owned()), ("route", route.to_owned())];
        let counter = metrics::counter!(
            "ferrobase_http_requests_total",
            "method" => labels[0].1.clone(),
            "route" => labels[1].1.clone(),
            "status" => status.to_string()
        );
        let histogram = metrics::histogram!("ferrobase_http_request_duration_seconds", &labels);
        let found = (counter, histogram);
        cache.entry(route.into()).or_default().insert((method, status), found.clone());
        found
    })
}

/// The in-flight gauge, decremented however the request ends (a panic included).
struct InFlight;

/// The in-flight gauge's handle, looked up once.
fn in_flight() -> &'static metrics::Gauge {
    static GAUGE: OnceLock<metrics::Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| metrics::gauge!("ferrobase_http_requests_in_flight"))
}

impl InFlight {
    fn enter() -> InFlight {
        in_flight().increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        in_flight().decrement(1.0);
    }
}
