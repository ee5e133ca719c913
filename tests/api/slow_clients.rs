//! Clients that hold a connection without finishing what they send (slowloris): a request
//! head that never ends, a kept-alive connection left idle, a body that stops half way. Each
//! is cut off after its timeout, so such clients cannot pile up until nobody else can connect.

use std::time::Duration;

use ferrobase::http::serve::Timeouts;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{ADMIN_SECRET, Backend, TestServer};

/// What the server sends on a connection until it closes it. The bound only keeps a broken
/// server from hanging the test: the server closes well before.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection after its timeout")
        .expect("the connection reads");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn start(backend: Backend) -> Option<TestServer> {
    let timeouts = Timeouts { header_read: Duration::from_secs(1), body_idle: Duration::from_secs(1) };
    let mut s = TestServer::start_with(backend, |c| c.timeouts = timeouts).await?;
    // The server closes a kept-alive connection after a second idle, which is about when a
    // test sends its next request after waiting for a timeout: a pooled connection could be
    // closed under that request. Each request here opens its own.
    s.client = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("a client");
    Some(s)
}

async fn connect(s: &TestServer) -> TcpStream {
    TcpStream::connect(s.base.trim_start_matches("http://")).await.unwrap()
}

async fn a_request_head_that_never_ends_is_cut_off(backend: Backend) {
    let Some(s) = start(backend).await else { return };
    s.open_collection("posts").await;
    let mut slow = connect(&s).await;
    slow.write_all(b"GET /api/v1/posts HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n").await.unwrap();
    // Others are served meanwhile.
    assert_eq!(s.get("/api/v1/posts").await.status, 200);
    assert_eq!(read_until_closed(&mut slow).await, "", "no answer to a request never finished");
}

async fn an_idle_kept_alive_connection_is_closed(backend: Backend) {
    let Some(s) = start(backend).await else { return };
    s.open_collection("posts").await;
    let mut idle = connect(&s).await;
    idle.write_all(b"GET /api/v1/posts HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
}

async fn a_body_that_stops_half_way_is_answered_408_and_writes_nothing(backend: Backend) {
    let Some(s) = start(backend).await else { return };
    s.open_collection("posts").await;
    let mut stalled = connect(&s).await;
    let body = r#"{"title": "never finished", "#;
    let head = format!(
        "POST /api/v1/posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_SECRET}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len() + 100
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#"{"error":"#), "{answer}");
    assert!(answer.contains("--body-idle-timeout-secs"), "{answer}");
    assert_eq!(s.get("/api/v1/posts/count").await.body["count"], 0);
    assert_eq!(s.post("/api/v1/posts", json!({"title": "whole"})).await.status, 201);
}

async fn an_upload_that_stops_half_way_is_answered_408_and_leaves_nothing(backend: Backend) {
    let Some(s) = start(backend).await else { return };
    let form_start = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"stalled.bin\"\r\n\
        Content-Type: application/octet-stream\r\n\r\n";
    // A raw body, and a form's file part on either surface.
    let uploads = [
        ("/api/v1/storage/default/stalled.bin", "application/octet-stream", ""),
        ("/api/v1/storage/upload", "multipart/form-data; boundary=b", form_start),
        ("/api/v1/storage/default/stalled-form.bin", "multipart/form-data; boundary=b", form_start),
    ];
    for (target, content_type, opening) in uploads {
        let mut stalled = connect(&s).await;
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_SECRET}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{opening}",
            1024 * 1024
        );
        stalled.write_all(head.as_bytes()).await.unwrap();
        stalled.write_all(&vec![7u8; 64 * 1024]).await.unwrap();
        let answer = read_until_closed(&mut stalled).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{target}: {answer}");
        assert!(answer.contains(r#"{"error":"#), "{answer}");
        assert_eq!(s.admin_get("/api/v1/admin/storage").await.body["total"], 0);
        assert_eq!(s.blob_count().await, 0, "the partial blob is removed before the answer");
    }
    assert_eq!(s.get("/api/v1/storage/default/stalled.bin").await.status, 404);
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use crate::harness::Backend;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(Backend::Postgres).await;
                }
            }
        )*
    };
}

on_both_backends!(
    a_request_head_that_never_ends_is_cut_off,
    an_idle_kept_alive_connection_is_closed,
    a_body_that_stops_half_way_is_answered_408_and_writes_nothing,
    an_upload_that_stops_half_way_is_answered_408_and_leaves_nothing,
);
