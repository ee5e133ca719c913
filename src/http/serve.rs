//! Serving connections: HTTP/1.1 over each accepted socket, with the time limits a client
//! cannot get round by never finishing what it sends, and a graceful end that lets the
//! requests in flight finish.
//!
//! `axum::serve` sets no timer on hyper, so hyper's header timeout never runs there: a client
//! could hold a connection (and a file descriptor) for good by sending a request's head a byte
//! at a time, or by stopping half way through a body. Thousands of such clients exhaust the
//! process's descriptors and nobody else can connect.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

/// How long connections may dawdle.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// How long a client has to send a request's whole head (request line and headers): from
    /// its first byte, or, on a kept-alive connection, from the end of the previous answer
    /// (so it is also how long an idle connection stays open).
    pub header_read: Duration,
    /// The longest wait for the next piece of a request body once the handler asks for it.
    pub body_idle: Duration,
}

/// Serves `router` on every connection `listener` accepts until `shutdown` resolves; then
/// stops accepting, lets each connection finish the request it is serving and returns once all
/// are closed.
pub async fn serve<L>(mut listener: L, router: Router, timeouts: Timeouts, shutdown: impl Future<Output = ()>)
where
    L: axum::serve::Listener<Io = TcpStream, Addr = SocketAddr>,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(timeouts.header_read);
    // Every connection task holds a receiver: `closing.closed()` resolves once all have ended.
    let (closing, connections) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        // Streamed answers (file downloads) are written as headers, then body chunks: without
        // TCP_NODELAY each would wait for the client's delayed ACK (40 ms on Linux).
        if let Err(err) = socket.set_nodelay(true) {
            tracing::debug!(%err, "TCP_NODELAY could not be set");
        }
        let body_idle = timeouts.body_idle;
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(|body| axum::body::Body::new(TimeoutBody::new(body_idle, body)));
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = http.serve_connection(TokioIo::new(socket), service).with_upgrades();
        let mut shutting_down = connections.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = shutting_down.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = ended {
                // A client that goes away or times out is not the server's fault.
                tracing::debug!(%err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(connections);
    // Tell every connection to finish its current request and close, then wait for them.
    closing.send_replace(());
    closing.closed().await;
}

/// Whether a body failed because the client fell silent for longer than `body_idle`: such a
/// request is answered 408, not 400.
pub fn body_stalled(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = err.source();
    }
    false
}

/// The answer to a request whose body stalled.
pub fn stalled_body_error() -> crate::error::ApiError {
    crate::error::ApiError::RequestTimeout(
        "the request body stopped arriving (the server waits --body-idle-timeout-secs for each part of it)".into(),
    )
}
