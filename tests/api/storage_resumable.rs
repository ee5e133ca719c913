//! Resumable uploads (tus 1.0) on both metadata backends and both blob stores: the protocol
//! spoken by hand, bad input included, and the unmodified `tus-js-client` resuming an upload
//! whose connection was cut and uploading through a signed URL (`tests/js/tus_resume.mjs`).

use reqwest::Method;
use serde_json::json;

use crate::all_stores;
use crate::harness::{ADMIN_SECRET, TestServer, read};
use crate::postgrest_js::{js_dir, node_ready};
use crate::storage::PNG;

const BASE: &str = "/api/v1/storage/resumable";

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A tus request: `Tus-Resumable: 1.0.0` and these headers, as `token`'s holder.
async fn tus(
    s: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> crate::harness::Resp {
    let mut req = s.client.request(method, s.url(path)).bearer_auth(token).header("tus-resumable", "1.0.0");
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    read(req.body(body).send().await.unwrap()).await
}

async fn create(s: &TestServer, token: &str, length: usize, metadata: &str) -> crate::harness::Resp {
    tus(
        s,
        Method::POST,
        BASE,
        token,
        &[("upload-length", length.to_string()), ("upload-metadata", metadata.to_owned())],
        vec![],
    )
    .await
}

/// A tus request without credentials (a signed upload URL's holder).
async fn tus_anonymous(
    s: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> crate::harness::Resp {
    let mut req = s.client.request(method, s.url(path)).header("tus-resumable", "1.0.0");
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    read(req.body(body).send().await.unwrap()).await
}

fn patch_headers(offset: usize) -> Vec<(&'static str, String)> {
    vec![("upload-offset", offset.to_string()), ("content-type", "application/offset+octet-stream".into())]
}

all_stores! {
    async fn the_tus_protocol_by_hand(s) {
        let alice = s.register("alice@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
        let bob = s.register("bob@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
        let options = s.send(Method::OPTIONS, BASE, None, None).await;
        assert_eq!(options.status, 204);
        assert_eq!(options.header("tus-version"), Some("1.0.0"));
        assert_eq!(options.header("tus-extension"), Some("creation,expiration,termination"));
        // From a page (an Origin, not a preflight): the same answer, readable by the page.
        let from_page = s.send_with(Method::OPTIONS, BASE, None, &[("origin", "https://app.example"), ("tus-resumable", "1.0.0")], None).await;
        assert_eq!((from_page.status, from_page.header("tus-version")), (204, Some("1.0.0")), "{}", from_page.text);
        assert_eq!(from_page.header("access-control-allow-origin"), Some("*"));
        assert!(from_page.header("access-control-expose-headers").is_some_and(|h| h.contains("tus-version")));
        // A preflight is still answered as one.
        let preflight = s.send_with(Method::OPTIONS, BASE, None, &[("origin", "https://app.example"), ("access-control-request-method", "POST")], None).await;
        assert!(preflight.header("access-control-allow-methods").is_some(), "{:?}", preflight.text);

        let metadata = format!("filename {},filetype {},relativePath {}", b64("notes.txt"), b64("text/plain"), b64("x"));
        let created = create(&s, &alice, 11, &metadata).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let location = created.header("location").unwrap().to_owned();
        assert!(location.starts_with(&format!("{BASE}/")), "{location}");
        assert!(created.header("upload-expires").is_some_and(|d| d.ends_with("GMT")));
        assert_eq!(created.header("upload-offset"), Some("0"));

        // Two appends, the second one completing the file.
        let first = tus(&s, Method::PATCH, &location, &alice, &patch_headers(0), b"hello ".to_vec()).await;
        assert_eq!(first.status, 204, "{}", first.text);
        assert_eq!(first.header("upload-offset"), Some("6"));
        let wrong = tus(&s, Method::PATCH, &location, &alice, &patch_headers(2), b"xx".to_vec()).await;
        assert_eq!(wrong.status, 409, "{}", wrong.text);
        // Refusals carry the protocol's version too.
        assert_eq!(wrong.header("tus-resumable"), Some("1.0.0"));
        let head = tus(&s, Method::HEAD, &location, &alice, &[], vec![]).await;
        assert_eq!((head.status, head.header("upload-offset"), head.header("upload-length")), (200, Some("6"), Some("11")));
        assert_eq!(head.header("upload-metadata"), Some(metadata.as_str()));
        assert_eq!(head.header("cache-control"), Some("no-store"));
        assert_eq!(tus(&s, Method::HEAD, &location, &bob, &[], vec![]).await.status, 403);
        let last = tus(&s, Method::PATCH, &location, &alice, &patch_headers(6), b"world".to_vec()).await;
        assert_eq!(last.status, 204, "{}", last.text);
        assert_eq!(last.header("upload-offset"), Some("11"));
        let url = last.header("ferrobase-file-url").unwrap().to_owned();
        let file = s.as_user(Method::GET, &url, &alice, None).await;
        assert_eq!((file.status, file.text.as_str()), (200, "hello world"));
        // A complete upload takes no more bytes, and says why.
        let after = tus(&s, Method::PATCH, &location, &alice, &patch_headers(11), vec![]).await;
        assert_eq!(after.status, 409, "{}", after.text);
        assert!(after.text.contains("complete"), "{}", after.text);
        assert_eq!(file.header("content-type"), Some("text/plain"));
        // The chunks are gone; the file's blob stays.
        s.sweep().await;
        assert_eq!(s.blob_count().await, 1);

        // Bad input.
        let no_version = s.client.post(s.url(BASE)).bearer_auth(&alice).header("upload-length", "5").send().await.unwrap();
        assert_eq!(no_version.status(), 412);
        // A version not spoken here: the answer names the one that is.
        let old = s.client.post(s.url(BASE)).bearer_auth(&alice).header("tus-resumable", "0.2.2").header("upload-length", "5").send().await.unwrap();
        assert_eq!(old.status(), 412);
        assert_eq!(old.headers().get("tus-version").and_then(|v| v.to_str().ok()), Some("1.0.0"));
        assert_eq!(old.headers().get("tus-resumable").and_then(|v| v.to_str().ok()), Some("1.0.0"));
        assert_eq!(create(&s, &alice, 5, "filename !!!").await.status, 400);
        // NUL is refused alike on both backends, wherever it hides.
        for key in ["filetype", "bucket", "record_id", "key"] {
            let nul = create(&s, &alice, 5, &format!("{key} {}", b64("text/plain; charset=\0"))).await;
            assert_eq!(nul.status, 400, "{key}: {}", nul.text);
            assert!(nul.error().contains(key), "{key}: {}", nul.text);
        }
        // Raw UTF-8 in the metadata is refused, not read as no metadata; a length has digits only.
        let raw = reqwest::header::HeaderValue::from_bytes("note café".as_bytes()).unwrap();
        let accented = s.client.post(s.url(BASE)).bearer_auth(&alice).header("tus-resumable", "1.0.0").header("upload-length", "5").header("upload-metadata", raw).send().await.unwrap();
        assert_eq!(accented.status(), 400);
        assert_eq!(tus(&s, Method::POST, BASE, &alice, &[("upload-length", "+5".into())], vec![]).await.status, 400);
        assert_eq!(tus(&s, Method::POST, BASE, &alice, &[], vec![]).await.status, 400, "Upload-Length is required");
        assert_eq!(s.send(Method::POST, BASE, None, None).await.status, 412);
        let anonymous = s.client.post(s.url(BASE)).header("tus-resumable", "1.0.0").header("upload-length", "5").send().await.unwrap();
        assert_eq!(anonymous.status(), 401);
        // Refusals made before the protocol's handlers run carry its version too.
        assert_eq!(anonymous.headers().get("tus-resumable").and_then(|v| v.to_str().ok()), Some("1.0.0"));
        let put = s.client.put(s.url(&location)).bearer_auth(&alice).header("tus-resumable", "1.0.0").send().await.unwrap();
        assert_eq!(put.status(), 405);
        assert_eq!(put.headers().get("tus-resumable").and_then(|v| v.to_str().ok()), Some("1.0.0"));
        let allow = put.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let mut methods: Vec<&str> = allow.split(',').map(str::trim).collect();
        methods.sort_unstable();
        assert_eq!(methods, ["DELETE", "HEAD", "PATCH"], "each method once: {allow}");
        let long = s.client.post(s.url(&format!("{BASE}?x={}", "a".repeat(40_000)))).bearer_auth(&alice).header("tus-resumable", "1.0.0").send().await.unwrap();
        assert_eq!(long.status(), 414);
        assert_eq!(long.headers().get("tus-resumable").and_then(|v| v.to_str().ok()), Some("1.0.0"));
        // Where GET and HEAD both have routes, too.
        let put = s.client.put(s.url("/api/v1/storage/default/x.txt")).bearer_auth(&alice).send().await.unwrap();
        assert_eq!(put.status(), 405);
        let allow = put.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let mut methods: Vec<&str> = allow.split(',').map(str::trim).collect();
        methods.sort_unstable();
        assert_eq!(methods, ["DELETE", "GET", "HEAD", "POST"], "each method once: {allow}");
        assert!(put.headers().get("tus-resumable").is_none(), "only the protocol's paths carry it");
        let missing = create(&s, &alice, 5, &format!("bucket {}", b64("nope"))).await;
        assert_eq!(missing.status, 404, "{}", missing.text);
        // A key that holds a file is refused before any byte is sent.
        let keyed = |key: &str| format!("filename {},key {}", b64("k.txt"), b64(key));
        let taken = create(&s, &alice, 3, &keyed("taken.txt")).await.header("location").unwrap().to_owned();
        assert_eq!(tus(&s, Method::PATCH, &taken, &alice, &patch_headers(0), b"abc".to_vec()).await.status, 204);
        let again = create(&s, &alice, 3, &keyed("taken.txt")).await;
        assert_eq!(again.status, 409, "{}", again.text);
        let second = create(&s, &alice, 4, "").await.header("location").unwrap().to_owned();
        let not_octets = tus(&s, Method::PATCH, &second, &alice, &[("upload-offset", "0".into()), ("content-type", "text/plain".into())], b"abcd".to_vec()).await;
        assert_eq!(not_octets.status, 415);
        let past_end = tus(&s, Method::PATCH, &second, &alice, &patch_headers(0), b"abcdef".to_vec()).await;
        assert_eq!(past_end.status, 413, "{}", past_end.text);
        assert_eq!(tus(&s, Method::PATCH, &second, &bob, &patch_headers(0), b"ab".to_vec()).await.status, 403);
        // Termination.
        assert_eq!(tus(&s, Method::PATCH, &second, &alice, &patch_headers(0), b"ab".to_vec()).await.status, 204);
        assert_eq!(tus(&s, Method::DELETE, &second, &alice, &[], vec![]).await.status, 204);
        assert_eq!(tus(&s, Method::HEAD, &second, &alice, &[], vec![]).await.status, 404);
        s.sweep().await;
        assert_eq!(s.blob_count().await, 2, "a terminated upload's chunks are deleted");
        // A declared charset is kept: a UTF-16 text is served as one.
        let utf16 = format!("filename {},filetype {}", b64("u.txt"), b64("text/plain; charset=UTF-16LE"));
        let text: Vec<u8> = "hé".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let wide = create(&s, &alice, text.len(), &utf16).await.header("location").unwrap().to_owned();
        let done = tus(&s, Method::PATCH, &wide, &alice, &patch_headers(0), text.clone()).await;
        let served = s.client.get(s.url(done.header("ferrobase-file-url").unwrap())).bearer_auth(&alice).send().await.unwrap();
        assert_eq!(served.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("text/plain; charset=utf-16le"));
        assert_eq!(served.bytes().await.unwrap().to_vec(), text);

        // A bucket made for an upload is written with its file: a refused or ended upload
        // leaves none.
        assert_eq!(s.admin_patch("/api/v1/admin/settings", json!({"auto_create_buckets": true})).await.status, 200);
        let buckets = || async { s.admin_get("/api/v1/admin/buckets").await.body["buckets"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>() };
        let into_new = format!("filename {},filetype {},bucket {}", b64("p.png"), b64("image/png"), b64("made-late"));
        let refused = create(&s, &alice, 6, &into_new).await.header("location").unwrap().to_owned();
        assert!(!buckets().await.contains(&"made-late".to_owned()), "not made at creation");
        let html = tus(&s, Method::PATCH, &refused, &alice, &patch_headers(0), b"<html>".to_vec()).await;
        assert_eq!(html.status, 415, "{}", html.text);
        let ended = create(&s, &alice, 6, &into_new).await.header("location").unwrap().to_owned();
        assert_eq!(tus(&s, Method::DELETE, &ended, &alice, &[], vec![]).await.status, 204);
        assert!(!buckets().await.contains(&"made-late".to_owned()), "a refused or ended upload leaves no bucket");
        let fine = create(&s, &alice, PNG.len(), &into_new).await.header("location").unwrap().to_owned();
        let done = tus(&s, Method::PATCH, &fine, &alice, &patch_headers(0), PNG.to_vec()).await;
        assert_eq!(done.status, 204, "{}", done.text);
        assert!(buckets().await.contains(&"made-late".to_owned()), "made with the file");
    }

    async fn a_signed_upload_url_starts_one_resumable_upload(s) {
        let alice = s.register("alice@example.com", "password-123").await;
        let (alice_id, alice) = (alice["user"]["id"].as_str().unwrap().to_owned(), alice["access_token"].as_str().unwrap().to_owned());
        let sign = |body: serde_json::Value| {
            let (s, alice) = (&s, alice.clone());
            async move {
                let signed = s.as_user(Method::POST, "/api/v1/storage/sign", &alice, Some(body)).await;
                assert_eq!(signed.status, 200, "{}", signed.text);
                signed.body["resumable_url"].as_str().unwrap().to_owned()
            }
        };
        let url = sign(json!({"max_size_bytes": 20, "mime_type": "text/*"})).await;
        assert!(url.starts_with(&format!("{BASE}?token=")), "{url}");
        let notes = format!("filename {},filetype {}", b64("notes.txt"), b64("text/plain"));
        let create_signed = |url: String, length: usize, metadata: String| {
            let s = &s;
            async move {
                let headers = [("upload-length", length.to_string()), ("upload-metadata", metadata)];
                tus_anonymous(s, Method::POST, &url, &headers, vec![]).await
            }
        };

        // Refusals before the upload starts leave the URL unspent: past the signed size, a type
        // outside the signed pattern, another bucket than the signed one.
        assert_eq!(create_signed(url.clone(), 21, notes.clone()).await.status, 413);
        let image = format!("filename {},filetype {}", b64("a.png"), b64("image/png"));
        assert_eq!(create_signed(url.clone(), 5, image).await.status, 415);
        let elsewhere = format!("{notes},bucket {}", b64("other"));
        assert_eq!(create_signed(url.clone(), 5, elsewhere).await.status, 403);
        let mut tampered = url.clone();
        tampered.insert(url.len() - 3, 'x');
        assert_eq!(create_signed(tampered, 5, notes.clone()).await.status, 403);

        let created = create_signed(url.clone(), 11, notes.clone()).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let location = created.header("location").unwrap().to_owned();
        assert!(location.starts_with(&format!("{BASE}/")) && location.contains("?token="), "{location}");
        // The URL's single use is spent by the upload it started.
        let again = create_signed(url.clone(), 11, notes.clone()).await;
        assert_eq!(again.status, 403, "{}", again.text);
        assert!(again.text.contains("already been used"), "{}", again.text);

        // The location's token goes on with this upload and no other.
        let head = tus_anonymous(&s, Method::HEAD, &location, &[], vec![]).await;
        assert_eq!((head.status, head.header("upload-offset")), (200, Some("0")));
        let path = location.split('?').next().unwrap().to_owned();
        assert_eq!(tus_anonymous(&s, Method::HEAD, &path, &[], vec![]).await.status, 401);
        let other = create(&s, &alice, 4, "").await.header("location").unwrap().to_owned();
        let token = location.split_once("?token=").unwrap().1;
        let borrowed = format!("{other}?token={token}");
        assert_eq!(tus_anonymous(&s, Method::PATCH, &borrowed, &patch_headers(0), b"abcd".to_vec()).await.status, 403);
        let mut forged = location.clone();
        forged.insert(location.len() - 3, 'x');
        assert_eq!(tus_anonymous(&s, Method::HEAD, &forged, &[], vec![]).await.status, 403);
        // The signer sees the upload as hers.
        assert_eq!(tus(&s, Method::HEAD, &path, &alice, &[], vec![]).await.status, 200);

        let first = tus_anonymous(&s, Method::PATCH, &location, &patch_headers(0), b"hello ".to_vec()).await;
        assert_eq!((first.status, first.header("upload-offset")), (204, Some("6")), "{}", first.text);
        let last = tus_anonymous(&s, Method::PATCH, &location, &patch_headers(6), b"world".to_vec()).await;
        assert_eq!(last.status, 204, "{}", last.text);
        let file_url = last.header("ferrobase-file-url").unwrap().to_owned();
        let file = s.as_user(Method::GET, &file_url, &alice, None).await;
        assert_eq!((file.status, file.text.as_str()), (200, "hello world"));
        let mine = s.as_user(Method::GET, "/api/v1/storage", &alice, None).await;
        let listed = mine.body["items"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "{}", mine.text);
        assert_eq!(listed[0]["owner_id"], alice_id.as_str());
        assert_eq!(s.send(Method::GET, &file_url, None, None).await.status, 401, "the file is private");

        // A signed key is the key; the upload cannot name another.
        let keyed = sign(json!({"key": "docs/fixed.txt"})).await;
        let wrong_key = format!("{notes},key {}", b64("docs/other.txt"));
        assert_eq!(create_signed(keyed.clone(), 3, wrong_key).await.status, 403);
        let made = create_signed(keyed, 3, notes.clone()).await;
        assert_eq!(made.status, 201, "{}", made.text);
        let location = made.header("location").unwrap().to_owned();
        let done = tus_anonymous(&s, Method::PATCH, &location, &patch_headers(0), b"abc".to_vec()).await;
        assert_eq!(done.status, 204, "{}", done.text);
        let fixed = s.as_user(Method::GET, "/api/v1/storage/default/docs/fixed.txt", &alice, None).await;
        assert_eq!((fixed.status, fixed.text.as_str()), (200, "abc"));
        // Abandoned by its holder: the token terminates the upload too.
        let dropped = create_signed(sign(json!({})).await, 8, notes.clone()).await.header("location").unwrap().to_owned();
        assert_eq!(tus_anonymous(&s, Method::DELETE, &dropped, &[], vec![]).await.status, 204);
        assert_eq!(tus_anonymous(&s, Method::HEAD, &dropped, &[], vec![]).await.status, 404);
    }

    async fn a_cut_append_keeps_what_arrived(s) {
        use tokio::io::AsyncWriteExt;
        let alice = s.register("alice@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
        let location = create(&s, &alice, 1_000_000, &format!("filename {}", b64("big.bin"))).await.header("location").unwrap().to_owned();
        // A PATCH that announces the whole file and stops after 300,000 bytes: the connection
        // is closed in order (FIN), so every byte sent reaches the server.
        let addr = s.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {alice}\r\nTus-Resumable: 1.0.0\r\n\
             Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 1000000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&vec![b'a'; 300_000]).await.unwrap();
        stream.shutdown().await.unwrap();
        // The server records what it got, then answers the broken request on the half of the
        // connection that is still open.
        let mut answer = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        let head = tus(&s, Method::HEAD, &location, &alice, &[], vec![]).await;
        assert_eq!(head.header("upload-offset"), Some("300000"), "{head:?}");
        let rest = tus(&s, Method::PATCH, &location, &alice, &patch_headers(300_000), vec![b'b'; 700_000]).await;
        assert_eq!(rest.status, 204, "{}", rest.text);
        let url = rest.header("ferrobase-file-url").unwrap().to_owned();
        let file = s.client.get(s.url(&url)).bearer_auth(&alice).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(file.len(), 1_000_000);
        assert!(file[..300_000].iter().all(|b| *b == b'a') && file[300_000..].iter().all(|b| *b == b'b'));
    }

    async fn resumable_uploads_keep_the_buckets_rules(s) {
        let alice = s.register("alice@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
        let created = s.admin_post("/api/v1/admin/buckets", json!({"name": "pics", "allowed_mime_types": ["image/*"], "max_size_bytes": 100})).await;
        assert_eq!(created.status, 201);
        let pics = |t: &str| format!("bucket {},filetype {},filename {}", b64("pics"), b64(t), b64("a.png"));
        assert_eq!(create(&s, &alice, 101, &pics("image/png")).await.status, 413);
        assert_eq!(create(&s, &alice, 10, &pics("text/plain")).await.status, 415);
        // Declared a PNG, sent as HTML: refused when complete, and the upload ends.
        let lie = create(&s, &alice, 20, &pics("image/png")).await.header("location").unwrap().to_owned();
        let refused = tus(&s, Method::PATCH, &lie, &alice, &patch_headers(0), b"<html>not a png</html"[..20].to_vec()).await;
        assert_eq!(refused.status, 415, "{}", refused.text);
        assert_eq!(tus(&s, Method::HEAD, &lie, &alice, &[], vec![]).await.status, 404);
        s.sweep().await;
        assert_eq!(s.blob_count().await, 0);
        assert_eq!(s.admin_get("/api/v1/admin/storage").await.body["total"], 0);
        // A key given twice is refused (tus 1.0: keys are unique).
        let twice = format!("bucket {},bucket {}", b64("pics"), b64("default"));
        let refused = create(&s, &alice, 10, &twice).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert!(refused.error().contains("'bucket' is given twice"), "{}", refused.text);
        // A bucket deleted during an upload ends it at the next append, not after the last.
        assert_eq!(s.admin_post("/api/v1/admin/buckets", json!({"name": "docs"})).await.status, 201);
        let docs = format!("bucket {},filename {}", b64("docs"), b64("a.txt"));
        let upload = create(&s, &alice, 20, &docs).await.header("location").unwrap().to_owned();
        assert_eq!(tus(&s, Method::PATCH, &upload, &alice, &patch_headers(0), b"first half".to_vec()).await.status, 204);
        assert_eq!(s.admin_delete("/api/v1/admin/buckets/docs").await.status, 200);
        let refused = tus(&s, Method::PATCH, &upload, &alice, &patch_headers(10), b"other half".to_vec()).await;
        assert_eq!(refused.status, 404, "{}", refused.text);
        assert!(refused.error().contains("bucket 'docs' not found"), "{}", refused.text);
        assert_eq!(tus(&s, Method::HEAD, &upload, &alice, &[], vec![]).await.status, 404, "the upload ended");
        s.sweep().await;
        assert_eq!(s.blob_count().await, 0, "its chunks went with it");
        // An empty file is complete on creation.
        let empty = create(&s, &alice, 0, &format!("filename {}", b64("empty.txt"))).await;
        assert_eq!(empty.status, 201, "{}", empty.text);
        assert!(empty.header("ferrobase-file-id").is_some());
        assert_eq!(s.send(Method::GET, "/api/v1/admin/storage", Some(ADMIN_SECRET), None).await.body["total"], 1);
    }

    async fn tus_js_client_resumes_a_cut_upload(s) {
        if !node_ready("tus-js-client") {
            return;
        }
        let token = s.register("alice@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
        let base = s.base.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("node").arg("tus_resume.mjs").arg(base).arg(token).current_dir(js_dir()).output().expect("node runs")
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "tus_resume.mjs failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        s.sweep().await;
        assert_eq!(s.blob_count().await, 2, "only the two finished files' blobs are left");
    }
}
