//! Uploads that race something: the client going away once its file is sent, other uploads
//! to the same key, a change of the bucket while the file streams in; and hostile multipart
//! forms. On both metadata backends and both blob stores.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::all_stores;
use crate::harness::{ADMIN_SECRET, TestServer, read};

async fn bucket(s: &TestServer, name: &str, extra: Value) {
    let mut body = json!({"name": name, "is_public": true});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let resp = s.admin_post("/api/v1/admin/buckets", body).await;
    assert_eq!(resp.status, 201, "{}", resp.text);
}

fn addr(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_owned()
}

/// The head of an admin's raw upload of `len` bytes to `target` (`bucket/key`).
fn upload_head(s: &TestServer, target: &str, len: usize, extra: &str) -> String {
    format!(
        "POST /api/v1/storage/{target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN_SECRET}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {len}\r\n{extra}\r\n",
        addr(s)
    )
}

/// The files the server lists, as (key, size).
async fn listed(s: &TestServer, bucket: &str) -> Vec<(String, u64)> {
    let resp = s.admin_get(&format!("/api/v1/storage/{bucket}?limit=1000")).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["key"].as_str().unwrap().to_owned(), f["size"].as_u64().unwrap()))
        .collect()
}

/// Sends a whole request head and body, then answers nothing.
async fn send_and_vanish(s: &TestServer, target: &str, body: &[u8], reset: bool) {
    let mut stream = TcpStream::connect(addr(s)).await.unwrap();
    stream.write_all(upload_head(s, target, body.len(), "").as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream.flush().await.unwrap();
    if reset {
        // Closed with a reset, as a client killed mid-request.
        stream.set_zero_linger().unwrap();
    } else {
        stream.shutdown().await.unwrap();
    }
    drop(stream);
}

/// Reads the interim `100 Continue` the server sends once it wants the body.
async fn read_interim(stream: &mut TcpStream) {
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        interim.push(stream.read_u8().await.unwrap());
    }
    assert!(interim.starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&interim));
}

/// The status line and body of a raw answer.
async fn read_answer(mut stream: TcpStream) -> (String, Value) {
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Starts an upload of `2 * half` bytes to `target`, sends the first half once the server
/// asks for the body, and hands back the connection.
async fn half_sent(s: &TestServer, target: &str, half: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr(s)).await.unwrap();
    let head = upload_head(s, target, 2 * half.len(), "Connection: close\r\nExpect: 100-continue\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    read_interim(&mut stream).await;
    stream.write_all(half).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// A multipart form by hand: `parts` are (headers, content).
fn form(boundary: &str, parts: &[(String, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (headers, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

fn assert_json_error(status: u16, body: &Value, expected_status: u16, needle: &str) {
    assert_eq!(status, expected_status, "{body}");
    let error = body["error"].as_str().unwrap_or_else(|| panic!("no JSON error: {body}"));
    assert!(error.contains(needle), "{error}");
}

all_stores! {
    async fn an_upload_whose_client_goes_away_keeps_its_file_whole_or_nothing(s) {
        bucket(&s, "gone", json!({})).await;
        // Small files go in one write, larger ones through the writer task; half the clients
        // reset the connection, half close their side.
        let sizes = [100usize, 64 * 1024, 1024 * 1024 + 7];
        for i in 0..24 {
            let size = sizes[i % sizes.len()];
            send_and_vanish(&s, &format!("gone/k{i}"), &vec![i as u8; size], i % 2 == 0).await;
        }
        // The server finishes or abandons each upload in its own time: wait until every blob
        // left is a listed file's (staging files and unclaimed blobs are gone).
        let deadline = Instant::now() + Duration::from_secs(30);
        let files = loop {
            s.sweep().await;
            let files = listed(&s, "gone").await;
            if s.blob_count().await == files.len() as u64 {
                break files;
            }
            assert!(Instant::now() < deadline, "blobs without a file remain: {} blobs, {} files", s.blob_count().await, files.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Every file kept is whole.
        for (key, size) in files {
            let i: usize = key.trim_start_matches('k').parse().unwrap();
            assert_eq!(size as usize, sizes[i % sizes.len()], "{key}");
            let resp = s.client.get(s.url(&format!("/api/v1/storage/gone/{key}"))).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{key}");
            let bytes = resp.bytes().await.unwrap();
            assert!(bytes.len() == size as usize && bytes.iter().all(|&b| b == i as u8), "{key} came back changed");
        }
    }

    async fn concurrent_replacements_of_one_key_all_succeed_and_one_file_stays(s) {
        bucket(&s, "race", json!({})).await;
        let first = s.client.post(s.url("/api/v1/storage/race/k")).bearer_auth(ADMIN_SECRET).body("v0").send().await.unwrap();
        assert_eq!(first.status(), 201);
        let uploads = (1..=8).map(|i| {
            let req = s.client.post(s.url("/api/v1/storage/race/k")).bearer_auth(ADMIN_SECRET).header("x-upsert", "true").body(format!("v{i}"));
            async move { read(req.send().await.unwrap()).await }
        });
        for resp in futures_util::future::join_all(uploads).await {
            assert_eq!(resp.status, 201, "{}", resp.text);
        }
        let files = listed(&s, "race").await;
        assert_eq!(files.len(), 1, "{files:?}");
        s.sweep().await;
        assert_eq!(s.blob_count().await, 1);
        let kept = s.client.get(s.url("/api/v1/storage/race/k")).send().await.unwrap().text().await.unwrap();
        assert!((1..=8).any(|i| kept == format!("v{i}")), "{kept}");
    }

    async fn a_bucket_changed_while_a_file_streams_in_is_checked_again(s) {
        let half = vec![7u8; 256 * 1024];
        // Its types narrowed: the file is no longer one it takes.
        bucket(&s, "narrowed", json!({})).await;
        let stream = half_sent(&s, "narrowed/a.bin", &half).await;
        let patched = s.admin_patch("/api/v1/admin/buckets/narrowed", json!({"allowed_mime_types": ["image/*"]})).await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        let mut stream = stream;
        stream.write_all(&half).await.unwrap();
        let (status, body) = read_answer(stream).await;
        assert!(status.starts_with("HTTP/1.1 415"), "{status} {body}");
        // Its limit lowered below the file's size.
        assert_eq!(s.admin_patch("/api/v1/admin/buckets/narrowed", json!({"allowed_mime_types": []})).await.status, 200);
        let stream = half_sent(&s, "narrowed/b.bin", &half).await;
        let patched = s.admin_patch("/api/v1/admin/buckets/narrowed", json!({"max_size_bytes": 1000})).await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        let mut stream = stream;
        stream.write_all(&half).await.unwrap();
        let (status, body) = read_answer(stream).await;
        assert!(status.starts_with("HTTP/1.1 413"), "{status} {body}");
        // Deleted and made again, for images only.
        bucket(&s, "remade", json!({})).await;
        let stream = half_sent(&s, "remade/c.bin", &half).await;
        assert_eq!(s.admin_delete("/api/v1/admin/buckets/remade").await.status, 200);
        bucket(&s, "remade", json!({"allowed_mime_types": ["image/*"]})).await;
        let mut stream = stream;
        stream.write_all(&half).await.unwrap();
        let (status, body) = read_answer(stream).await;
        assert!(status.starts_with("HTTP/1.1 415"), "{status} {body}");
        // Nothing was kept, and a change that still admits the file lets it in.
        assert!(listed(&s, "narrowed").await.is_empty());
        assert!(listed(&s, "remade").await.is_empty());
        assert_eq!(s.blob_count().await, 0);
        assert_eq!(s.admin_patch("/api/v1/admin/buckets/narrowed", json!({"max_size_bytes": null})).await.status, 200);
        let stream = half_sent(&s, "narrowed/d.bin", &half).await;
        let patched = s.admin_patch("/api/v1/admin/buckets/narrowed", json!({"max_size_bytes": 1024 * 1024})).await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        let mut stream = stream;
        stream.write_all(&half).await.unwrap();
        let (status, body) = read_answer(stream).await;
        assert!(status.starts_with("HTTP/1.1 201"), "{status} {body}");
        assert_eq!(listed(&s, "narrowed").await, vec![("d.bin".to_owned(), 2 * half.len() as u64)]);
    }

    async fn hostile_forms_are_refused_as_json_and_keep_nothing(s) {
        bucket(&s, "forms", json!({})).await;
        let boundary = "XyZ";
        let multipart = format!("multipart/form-data; boundary={boundary}");
        let disposition = "Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"".to_owned();
        // Just past the limit (16 KiB), so that the whole request is read before the answer:
        // a server that answers early and closes with bytes unread resets the connection.
        let past_limit = 16 * 1024 + 100;
        let long_header = format!("{disposition}\r\nX-Junk: {}", "A".repeat(past_limit));
        let long_name = format!("Content-Disposition: form-data; name=\"file\"; filename=\"{}.txt\"", "n".repeat(past_limit));
        for path in ["/api/v1/storage/upload", "/api/v1/admin/storage/upload", "/api/v1/storage/forms/f.txt"] {
            // Not a form with a boundary.
            for content_type in ["multipart/form-data", "text/plain", "application/json"] {
                let resp = s.client.post(s.url(path)).bearer_auth(ADMIN_SECRET).header("content-type", content_type).body("{}").send().await.unwrap();
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                if path.ends_with("f.txt") && content_type != "multipart/form-data" {
                    // A raw body to the tables surface is a file of its own type.
                    assert!(status == 201 || status == 409, "{path} {content_type}: {status} {body}");
                    continue;
                }
                assert_json_error(status, &body, 400, "multipart");
            }
            s.admin_delete("/api/v1/storage/forms/f.txt").await;
            // A part whose headers are too long, or whose filename is.
            for headers in [&long_header, &long_name] {
                let body = form(boundary, &[(headers.clone(), b"hello")]);
                let resp = s.client.post(s.url(path)).bearer_auth(ADMIN_SECRET).header("content-type", &multipart).body(body).send().await.unwrap();
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                assert_json_error(status, &body, 400, "MAX_PART_HEADER_BYTES");
            }
            // Headers of an ordinary size pass.
            let body = form(boundary, &[(format!("{disposition}\r\nContent-Type: text/plain"), b"hello")]);
            let resp = s.client.post(s.url(path)).bearer_auth(ADMIN_SECRET).header("content-type", &multipart).body(body).send().await.unwrap();
            assert_eq!(resp.status(), 201, "{path}: {}", resp.text().await.unwrap());
        }
        // A field given twice is not settled by whichever came last.
        let twice = form(boundary, &[
            ("Content-Disposition: form-data; name=\"bucket\"".to_owned(), b"forms"),
            ("Content-Disposition: form-data; name=\"bucket\"".to_owned(), b"default"),
            (format!("{disposition}\r\nContent-Type: text/plain"), b"hello"),
        ]);
        let resp = s.client.post(s.url("/api/v1/storage/upload")).bearer_auth(ADMIN_SECRET).header("content-type", &multipart).body(twice).send().await.unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_json_error(status, &body, 400, "twice");
        assert_eq!(s.admin_get("/api/v1/admin/storage").await.body["total"], 3);
        s.sweep().await;
        assert_eq!(s.blob_count().await, 3);
    }
}
