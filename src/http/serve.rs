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
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use futures_util::future::Either;
use hyper::body::{Body, Frame, Incoming, SizeHint};
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
            let (request, ended) = watched(request);
            let mut request = request.map(|body| axum::body::Body::new(TimeoutBody::new(body_idle, body)));
            request.extensions_mut().insert(ConnectInfo(peer));
            let answer = router.clone().oneshot(request);
            // Most requests have no body to watch, and their answer goes out as it is.
            match ended {
                None => Either::Left(answer),
                Some(ended) => Either::Right(async move {
                    let mut response = answer.await?;
                    if !ended.load(Ordering::Relaxed) {
                        close_after(&mut response);
                    }
                    Ok(response)
                }),
            }
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

/// A request body that records whether it was read to its end; `None` for a request without
/// one (most reads) or with a small one, which pay nothing: hyper drains what is left of a
/// body that has arrived whole, and the connection goes on.
fn watched<B: Body + Unpin>(request: hyper::Request<B>) -> (hyper::Request<Watched<B>>, Option<Arc<AtomicBool>>) {
    let small = request.body().size_hint().upper().is_some_and(|n| n <= UNDRAINED_BODY_BYTES);
    let ended = (!request.body().is_end_stream() && !small).then(|| Arc::new(AtomicBool::new(false)));
    let watch = ended.clone();
    (request.map(|inner| Watched { inner, ended: watch }), ended)
}

/// A body larger than this that is left unread may not have arrived whole: hyper then closes
/// the connection rather than wait for the rest.
const UNDRAINED_BODY_BYTES: u64 = 64 * 1024;

/// An answer given before its request's body was read to its end (a refusal that needs no
/// more of it) ends the connection: what is left of the body would otherwise be read as the
/// next request. hyper closes such a connection itself; `Connection: close` tells the client,
/// which would otherwise send its next request into a closed socket.
fn close_after(response: &mut axum::response::Response) {
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
}

struct Watched<B> {
    inner: B,
    /// Set once the body has ended; `None` when it never had anything to read.
    ended: Option<Arc<AtomicBool>>,
}

impl<B: Body + Unpin> Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Some(ended) = &self.ended
            && (matches!(frame, Poll::Ready(None)) || self.inner.is_end_stream())
        {
            ended.store(true, Ordering::Relaxed);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
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
