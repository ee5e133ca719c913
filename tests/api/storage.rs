//! File storage through the HTTP API, on both metadata backends and both blob stores (local
//! disk and a real S3-protocol server): both surfaces, buckets, limits, types, signed URLs,
//! files of records, and uploads that fail half way.

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::all_stores;
use crate::harness::{ADMIN_SECRET, JWT_SECRET, Resp, TestServer, read};

pub(crate) const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// A multipart upload to `path` (`/api/v1/storage/upload` unless a signed URL's path).
async fn upload(
    s: &TestServer,
    path: &str,
    auth: Option<&str>,
    fields: &[(&str, &str)],
    file: (&str, &str, Vec<u8>),
) -> Resp {
    let mut form = Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    let (filename, mime, bytes) = file;
    form = form.part("file", Part::bytes(bytes).file_name(filename.to_owned()).mime_str(mime).unwrap());
    let mut req = s.client.post(s.url(path)).multipart(form);
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    read(req.send().await.unwrap()).await
}

/// A raw-body upload to `/api/v1/storage/{bucket}/{key}`.
async fn put(
    s: &TestServer,
    target: &str,
    auth: Option<&str>,
    mime: &str,
    bytes: Vec<u8>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = s.client.post(s.url(&format!("/api/v1/storage/{target}"))).header("content-type", mime).body(bytes);
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    read(req.send().await.unwrap()).await
}

/// A download: status, headers and the bytes.
async fn fetch(
    s: &TestServer,
    method: Method,
    path: &str,
    auth: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = s.client.request(method, s.url(path));
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

fn header<'h>(headers: &'h reqwest::header::HeaderMap, name: &str) -> &'h str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn user(s: &TestServer, email: &str) -> (String, String) {
    let body = s.register(email, "password-123").await;
    (body["access_token"].as_str().unwrap().to_owned(), body["user"]["id"].as_str().unwrap().to_owned())
}

async fn public_bucket(s: &TestServer, name: &str, extra: Value) {
    let mut body = json!({"name": name, "is_public": true});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let resp = s.admin_post("/api/v1/admin/buckets", body).await;
    assert_eq!(resp.status, 201, "{}", resp.text);
}

all_stores! {
    async fn a_file_whose_contents_are_gone_is_a_404(s) {
        let (alice, _) = user(&s, "alice@example.com").await;
        let up = upload(&s, "/api/v1/storage/upload", Some(&alice), &[], ("gone.txt", "text/plain", b"soon gone".to_vec())).await;
        assert_eq!(up.status, 201, "{}", up.text);
        let id = up.body["id"].as_str().unwrap().to_owned();
        s.lose_blob(&id).await;
        let whole = s.as_user(Method::GET, &format!("/api/v1/storage/{id}"), &alice, None).await;
        assert_eq!(whole.status, 404, "{}", whole.text);
        assert!(whole.error().contains("missing"), "{}", whole.text);
        let part = s.send_with(Method::GET, &format!("/api/v1/storage/{id}"), Some(&alice), &[("range", "bytes=0-3")], None).await;
        assert_eq!(part.status, 404, "{}", part.text);
        // HEAD answers as GET would, without reading the contents.
        let key = up.body["key"].as_str().unwrap();
        for path in [format!("/api/v1/storage/{id}"), format!("/api/v1/storage/default/{key}")] {
            let head = s.as_user(Method::HEAD, &path, &alice, None).await;
            assert_eq!(head.status, 404, "{path}");
        }
        // The record can still be deleted.
        assert_eq!(s.as_user(Method::DELETE, &format!("/api/v1/storage/{id}"), &alice, None).await.status, 200);
    }

    async fn a_file_uploaded_by_id_is_served_with_http_semantics(s) {
        let (alice, alice_id) = user(&s, "alice@example.com").await;
        let (bob, _) = user(&s, "bob@example.com").await;
        let content = b"hello, file storage".to_vec();
        let up = upload(&s, "/api/v1/storage/upload", Some(&alice), &[], ("hello \"world\" é.txt", "text/plain", content.clone())).await;
        assert_eq!(up.status, 201, "{}", up.text);
        let file = up.body.clone();
        assert_eq!(file["filename"], "hello \"world\" é.txt");
        assert_eq!(file["mime_type"], "text/plain");
        assert_eq!(file["size"], content.len());
        assert_eq!(file["bucket"], "default");
        assert_eq!(file["is_public"], false, "the default bucket is private");
        assert_eq!(file["owner_id"], alice_id.as_str());
        let id = file["id"].as_str().unwrap();
        let url = file["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("/api/v1/storage/{id}/")), "{url}");

        for path in [format!("/api/v1/storage/{id}"), url.to_owned()] {
            let (status, headers, bytes) = fetch(&s, Method::GET, &path, Some(&alice), &[]).await;
            assert_eq!(status, 200, "{path}");
            assert_eq!(bytes, content);
            assert_eq!(header(&headers, "content-type"), "text/plain");
            assert_eq!(header(&headers, "content-length"), content.len().to_string());
            assert_eq!(header(&headers, "etag"), file["etag"].as_str().unwrap());
            let disposition = header(&headers, "content-disposition");
            assert!(disposition.starts_with("inline; filename=\"hello _world_ _.txt\""), "{disposition}");
            assert!(disposition.contains("filename*=UTF-8''hello%20%22world%22%20%C3%A9%2Etxt"), "{disposition}");
            assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        }
        // Private: the owner and the admin read it; others do not.
        assert_eq!(fetch(&s, Method::GET, url, None, &[]).await.0, 401);
        assert_eq!(fetch(&s, Method::GET, url, Some(&bob), &[]).await.0, 403);
        assert_eq!(fetch(&s, Method::GET, url, Some(ADMIN_SECRET), &[]).await.0, 200);

        // Conditional and partial reads.
        let etag = file["etag"].as_str().unwrap();
        let (status, headers, bytes) = fetch(&s, Method::GET, url, Some(&alice), &[("if-none-match", etag)]).await;
        assert_eq!((status, bytes.len()), (304, 0));
        assert_eq!(header(&headers, "etag"), etag);
        // A 304 to HEAD says the length a 200 would, or none (RFC 9110, 8.6).
        for path in [format!("/api/v1/storage/{id}"), url.to_owned()] {
            let (status, headers, _) = fetch(&s, Method::HEAD, &path, Some(&alice), &[("if-none-match", etag)]).await;
            assert_eq!(status, 304, "{path}");
            assert!(matches!(header(&headers, "content-length"), "" | "19"), "{path}: {headers:?}");
        }
        let (status, headers, bytes) = fetch(&s, Method::GET, url, Some(&alice), &[("range", "bytes=0-4")]).await;
        assert_eq!((status, bytes.as_slice()), (206, &b"hello"[..]));
        assert_eq!(header(&headers, "content-range"), format!("bytes 0-4/{}", content.len()));
        let (status, _, bytes) = fetch(&s, Method::GET, url, Some(&alice), &[("range", "bytes=-7")]).await;
        assert_eq!((status, bytes.as_slice()), (206, &b"storage"[..]));
        let (status, headers, _) = fetch(&s, Method::GET, url, Some(&alice), &[("range", "bytes=500-")]).await;
        assert_eq!(status, 416);
        assert_eq!(header(&headers, "content-range"), format!("bytes */{}", content.len()));
        let (status, _, bytes) = fetch(&s, Method::GET, url, Some(&alice), &[("range", "bytes=0-4"), ("if-range", "\"other\"")]).await;
        assert_eq!((status, bytes.len()), (200, content.len()), "a stale If-Range gets the whole file");
        let odd = s.client.get(s.url(url)).bearer_auth(&alice).header("range", "bytes=0-4")
            .header("if-range", reqwest::header::HeaderValue::from_bytes(b"\xff").unwrap()).send().await.unwrap();
        assert_eq!(odd.status(), 200, "an If-Range that is not text matches nothing");
        let (_, headers, _) = fetch(&s, Method::HEAD, url, Some(&alice), &[]).await;
        let last_modified = header(&headers, "last-modified").to_owned();
        for if_range in [etag, last_modified.as_str()] {
            let (status, _, bytes) = fetch(&s, Method::GET, url, Some(&alice), &[("range", "bytes=0-4"), ("if-range", if_range)]).await;
            assert_eq!((status, bytes.as_slice()), (206, &b"hello"[..]), "If-Range: {if_range}");
        }
        let (status, _, bytes) = fetch(&s, Method::GET, url, Some(&alice), &[("range", "Bytes=0-99999999999999999999999")]).await;
        assert_eq!((status, bytes.len()), (206, content.len()), "a last position past the end is the end");
        let (status, headers, bytes) = fetch(&s, Method::HEAD, url, Some(&alice), &[]).await;
        assert_eq!((status, bytes.len()), (200, 0));
        assert_eq!(header(&headers, "content-length"), content.len().to_string());
        assert_eq!(header(&headers, "etag"), etag);
        let (_, headers, _) = fetch(&s, Method::GET, &format!("{url}?download=1"), Some(&alice), &[]).await;
        assert!(header(&headers, "content-disposition").starts_with("attachment;"));

        // The owner's list.
        let mine = s.as_user(Method::GET, "/api/v1/storage", &alice, None).await;
        assert_eq!(mine.status, 200);
        assert_eq!(mine.body["total"], 1);
        assert_eq!(mine.body["items"][0], file, "the upload answers the file as it is stored");
        assert_eq!(s.as_user(Method::GET, "/api/v1/storage", &bob, None).await.body["total"], 0);
        assert_eq!(s.get("/api/v1/storage").await.status, 401);

        // Delete: not by another user; by the owner; then it is gone, blob and all.
        assert_eq!(s.blob_count().await, 1);
        assert_eq!(s.as_user(Method::DELETE, &format!("/api/v1/storage/{id}"), &bob, None).await.status, 403);
        let deleted = s.as_user(Method::DELETE, &format!("/api/v1/storage/{id}"), &alice, None).await;
        assert_eq!(deleted.status, 200, "{}", deleted.text);
        assert_eq!(fetch(&s, Method::GET, url, Some(&alice), &[]).await.0, 404);
        s.sweep().await;
        assert_eq!(s.blob_count().await, 0);
        assert_eq!(s.as_user(Method::DELETE, &format!("/api/v1/storage/{id}"), &alice, None).await.status, 404);

        // The URL with the filename deletes as it downloads: by id.
        let up = upload(&s, "/api/v1/storage/upload", Some(&alice), &[], ("named.txt", "text/plain", b"n".to_vec())).await;
        let named = up.body["url"].as_str().unwrap().to_owned();
        assert_eq!(s.as_user(Method::DELETE, &named, &bob, None).await.status, 403);
        let deleted = s.as_user(Method::DELETE, &named, &alice, None).await;
        assert_eq!((deleted.status, &deleted.body["id"]), (200, &up.body["id"]), "{}", deleted.text);
        assert_eq!(fetch(&s, Method::GET, &named, Some(&alice), &[]).await.0, 404);
    }

    async fn both_surfaces_serve_the_same_files(s) {
        let (alice, alice_id) = user(&s, "alice@example.com").await;
        public_bucket(&s, "photos", json!({})).await;
        let by_form = upload(&s, "/api/v1/storage/upload", Some(&alice), &[("bucket", "photos")], ("cat.png", "image/png", PNG.to_vec())).await;
        assert_eq!(by_form.status, 201, "{}", by_form.text);
        assert_eq!(by_form.body["is_public"], true, "a public bucket's files are public");
        let key = by_form.body["key"].as_str().unwrap().to_owned();

        // The tables surface lists and serves it by key, to anyone (public).
        let listing = s.get("/api/v1/storage/photos").await;
        assert_eq!(listing.status, 200, "{}", listing.text);
        assert_eq!(listing.body.as_array().unwrap().len(), 1);
        assert_eq!(listing.body[0]["key"], key.as_str());
        let (status, headers, bytes) = fetch(&s, Method::GET, &format!("/api/v1/storage/photos/{key}"), None, &[]).await;
        assert_eq!((status, bytes.as_slice()), (200, PNG));
        assert_eq!(header(&headers, "etag"), by_form.body["etag"].as_str().unwrap());

        // A raw upload to a nested key is served by id on the collections surface.
        let by_key = put(&s, "photos/2024/trips/beach.png", Some(&alice), "image/png", PNG.to_vec(), &[]).await;
        assert_eq!(by_key.status, 201, "{}", by_key.text);
        assert_eq!(by_key.body["key"], "2024/trips/beach.png");
        assert_eq!(by_key.body["filename"], "beach.png");
        let id = by_key.body["id"].as_str().unwrap();
        let (status, _, bytes) = fetch(&s, Method::GET, &format!("/api/v1/storage/{id}"), None, &[]).await;
        assert_eq!((status, bytes.as_slice()), (200, PNG));
        let (status, headers, bytes) = fetch(&s, Method::HEAD, "/api/v1/storage/photos/2024/trips/beach.png", None, &[]).await;
        assert_eq!((status, bytes.len()), (200, 0));
        assert_eq!(header(&headers, "content-type"), "image/png");
        assert_eq!(header(&headers, "content-length"), PNG.len().to_string());

        // Prefix, limit and offset.
        put(&s, "photos/2024/trips/dune.png", Some(&alice), "image/png", PNG.to_vec(), &[]).await;
        put(&s, "photos/2025/snow.png", Some(&alice), "image/png", PNG.to_vec(), &[]).await;
        let keys = |r: &Resp| r.body.as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        assert_eq!(keys(&s.get("/api/v1/storage/photos?prefix=2024/").await), ["2024/trips/beach.png", "2024/trips/dune.png"]);
        assert_eq!(keys(&s.get("/api/v1/storage/photos?prefix=2024/&limit=1&offset=1").await), ["2024/trips/dune.png"]);
        let mut answered = by_key.body.clone();
        answered.as_object_mut().unwrap().retain(|field, _| field != "Key" && field != "Id");
        assert_eq!(s.get("/api/v1/storage/photos?prefix=2024/trips/beach").await.body[0], answered);
        assert_eq!(s.get("/api/v1/storage/photos?limit=0").await.status, 400);
        assert_eq!(s.get("/api/v1/storage/photos?nope=1").await.status, 400);
        assert_eq!(s.get("/api/v1/storage/nosuchbucket").await.status, 404);

        // Replacing a key takes x-upsert, and only its owner (or the admin) may.
        let again = put(&s, "photos/2025/snow.png", Some(&alice), "image/png", PNG.to_vec(), &[]).await;
        assert_eq!(again.status, 409, "{}", again.text);
        let (bob, _) = user(&s, "bob@example.com").await;
        let stolen = put(&s, "photos/2025/snow.png", Some(&bob), "image/png", PNG.to_vec(), &[("x-upsert", "true")]).await;
        assert_eq!(stolen.status, 403, "{}", stolen.text);
        let (_, before, _) = fetch(&s, Method::GET, "/api/v1/storage/photos/2025/snow.png", None, &[]).await;
        let old_etag = header(&before, "etag").to_owned();
        let mut bigger = PNG.to_vec();
        bigger.extend_from_slice(&[0; 100]);
        let replaced = put(&s, "photos/2025/snow.png", Some(&alice), "image/png", bigger.clone(), &[("x-upsert", "true")]).await;
        assert_eq!(replaced.status, 201, "{}", replaced.text);
        let (status, after, bytes) =
            fetch(&s, Method::GET, "/api/v1/storage/photos/2025/snow.png", None, &[("if-none-match", old_etag.as_str())]).await;
        assert_eq!(status, 200, "the old ETag no longer matches: the new content comes back");
        assert_eq!(bytes, bigger);
        assert_ne!(header(&after, "etag"), old_etag);
        s.sweep().await;
        assert_eq!(s.blob_count().await, 4, "the replaced blob is gone");
        // The admin's new version of Alice's file stays hers.
        let by_admin = put(&s, "photos/2025/snow.png", Some(ADMIN_SECRET), "image/png", bigger.clone(), &[("x-upsert", "true")]).await;
        assert_eq!(by_admin.status, 201, "{}", by_admin.text);
        assert_eq!(by_admin.body["owner_id"], alice_id.as_str());

        // Delete by key: not by another user; by the owner.
        assert_eq!(s.as_user(Method::DELETE, "/api/v1/storage/photos/2025/snow.png", &bob, None).await.status, 403);
        let deleted = s.as_user(Method::DELETE, "/api/v1/storage/photos/2025/snow.png", &alice, None).await;
        assert_eq!((deleted.status, deleted.text.as_str()), (204, ""), "the tables surface answers a delete with 204");
        assert_eq!(s.get("/api/v1/storage/photos/2025/snow.png").await.status, 404);
        assert_eq!(s.as_user(Method::DELETE, "/api/v1/storage/photos/2025/snow.png", &alice, None).await.status, 404);
    }

    async fn a_form_upload_by_key_takes_its_settings_or_refuses_them(s) {
        let (alice, _) = user(&s, "alice@example.com").await;
        // Parts in the order given: text fields as (name, value), the file as ("file", None).
        let post_form = |target: String, parts: Vec<(&'static str, Option<&'static str>)>| {
            let (s, alice) = (&s, alice.clone());
            async move {
                let mut form = Form::new();
                for (name, value) in parts {
                    form = match value {
                        Some(value) => form.text(name, value),
                        None => form.part(name, Part::bytes(b"hello".to_vec()).file_name("hi.txt").mime_str("text/plain").unwrap()),
                    };
                }
                let req = s.client.post(s.url(&format!("/api/v1/storage/{target}"))).bearer_auth(alice).multipart(form);
                read(req.send().await.unwrap()).await
            }
        };
        // `is_public` before or after the file; text fields of other clients are read and not kept.
        for (key, parts) in [
            ("before.txt", vec![("is_public", Some("true")), ("cacheControl", Some("3600")), ("file", None)]),
            ("after.txt", vec![("file", None), ("is_public", Some("true")), ("bucket", Some("default"))]),
        ] {
            let resp = post_form(format!("default/{key}"), parts).await;
            assert_eq!(resp.status, 201, "{key}: {}", resp.text);
            assert_eq!(resp.body["is_public"], true);
            let (status, _, bytes) = fetch(&s, Method::GET, &format!("/api/v1/storage/default/{key}"), None, &[]).await;
            assert_eq!((status, bytes.as_slice()), (200, &b"hello"[..]), "{key} is public in a private bucket");
        }
        assert_eq!(fetch(&s, Method::GET, "/api/v1/storage/default/before.txt", None, &[]).await.0, 200);
        // A setting the surface cannot honour is refused, before or after the file, and nothing is kept.
        let blobs = s.blob_count().await;
        for parts in [
            vec![("bucket", Some("elsewhere")), ("file", None)],
            vec![("file", None), ("bucket", Some("elsewhere"))],
            vec![("file", None), ("collection", Some("notes")), ("record_id", Some("x"))],
            vec![("is_public", Some("true")), ("is_public", Some("false")), ("file", None)],
            vec![("file", None), ("is_public", Some("maybe"))],
            vec![("file", None), ("file", None)],
            vec![("is_public", Some("true"))],
        ] {
            let resp = post_form("default/refused.txt".into(), parts.clone()).await;
            assert_eq!(resp.status, 400, "{parts:?}: {}", resp.text);
            assert!(resp.body["error"].is_string(), "{}", resp.text);
        }
        assert_eq!(s.as_user(Method::GET, "/api/v1/storage/default/refused.txt", &alice, None).await.status, 404);
        assert_eq!(s.blob_count().await, blobs);
        // Through a signed URL, the form may repeat what was signed but not publish the file.
        let signed = s.as_user(Method::POST, "/api/v1/storage/sign", &alice, Some(json!({"key": "signed.txt"}))).await;
        let target = signed.body["url"].as_str().unwrap().trim_start_matches("/api/v1/storage/").to_owned();
        let resp = post_form(target, vec![("is_public", Some("true")), ("file", None)]).await;
        assert_eq!(resp.status, 403, "{}", resp.text);
        assert_eq!(s.blob_count().await, blobs);
    }

    async fn preconditions_and_odd_requests(s) {
        let (alice, _) = user(&s, "alice@example.com").await;
        public_bucket(&s, "pub", json!({})).await;
        assert_eq!(put(&s, "pub/a.txt", Some(&alice), "text/plain", b"0123456789".to_vec(), &[]).await.status, 201);
        let url = "/api/v1/storage/pub/a.txt";
        let (_, full, _) = fetch(&s, Method::GET, url, None, &[]).await;
        let (etag, modified) = (header(&full, "etag").to_owned(), header(&full, "last-modified").to_owned());
        assert_eq!(header(&full, "cache-control"), "public, max-age=3600");

        // 304 carries what the 200 would say of the version (RFC 9110, 15.4.5).
        for asked in [("if-none-match", etag.as_str()), ("if-modified-since", modified.as_str())] {
            let (status, headers, body) = fetch(&s, Method::GET, url, None, &[asked]).await;
            assert_eq!((status, body.len()), (304, 0), "{asked:?}");
            assert_eq!(header(&headers, "etag"), etag);
            assert_eq!(header(&headers, "last-modified"), modified);
            assert_eq!(header(&headers, "cache-control"), "public, max-age=3600");
        }
        let old = "Mon, 01 Jan 1990 00:00:00 GMT";
        assert_eq!(fetch(&s, Method::GET, url, None, &[("if-modified-since", old)]).await.0, 200);
        // If-Match and If-Unmodified-Since: 412 when the file is not the version named.
        assert_eq!(fetch(&s, Method::GET, url, None, &[("if-match", "\"nope\"")]).await.0, 412);
        assert_eq!(fetch(&s, Method::HEAD, url, None, &[("if-match", "\"nope\"")]).await.0, 412);
        assert_eq!(fetch(&s, Method::GET, url, None, &[("if-match", etag.as_str())]).await.0, 200);
        assert_eq!(fetch(&s, Method::GET, url, None, &[("if-unmodified-since", old)]).await.0, 412);
        assert_eq!(fetch(&s, Method::GET, url, None, &[("if-unmodified-since", modified.as_str())]).await.0, 200);

        // A range is digits only: a signed number makes it no range at all.
        for range in ["bytes=+1-2", "bytes=-+3"] {
            let (status, _, body) = fetch(&s, Method::GET, url, None, &[("range", range)]).await;
            assert_eq!((status, body.len()), (200, 10), "{range}");
        }
        // ?download takes the false spellings every flag takes.
        for (query, kind) in [("download", "attachment"), ("download=1", "attachment"), ("download=no", "inline"), ("download=OFF", "inline")] {
            let (_, headers, _) = fetch(&s, Method::GET, &format!("{url}?{query}"), None, &[]).await;
            assert!(header(&headers, "content-disposition").starts_with(kind), "{query}: {headers:?}");
        }

        // Every XML type is downloaded, never shown inline.
        assert_eq!(put(&s, "pub/feed.xml", Some(&alice), "application/rss+xml", b"<rss></rss>".to_vec(), &[]).await.status, 201);
        let (_, headers, _) = fetch(&s, Method::GET, "/api/v1/storage/pub/feed.xml", None, &[]).await;
        assert!(header(&headers, "content-disposition").starts_with("attachment"), "{headers:?}");
        // The optional JSON body of a signing request has a named limit: 413.
        let big = json!({"expires_in": 60, "padding": "x".repeat(70_000)});
        let resp = s.as_user(Method::POST, &format!("{url}/signed-url"), &alice, Some(big)).await;
        assert_eq!(resp.status, 413, "{}", resp.text);
        assert!(resp.error().contains("MAX_OPTIONS_BODY_BYTES"), "{}", resp.error());
        // A new version of a private file in a public bucket stays private.
        let private = upload(&s, "/api/v1/storage/upload", Some(&alice), &[("bucket", "pub"), ("is_public", "false")], ("p.txt", "text/plain", b"p".to_vec())).await;
        assert_eq!(private.status, 201, "{}", private.text);
        let private = format!("pub/{}", private.body["key"].as_str().unwrap());
        let again = put(&s, &private, Some(&alice), "text/plain", b"p2".to_vec(), &[("x-upsert", "true")]).await;
        assert_eq!((again.status, &again.body["is_public"]), (201, &json!(false)), "{}", again.text);
        assert_eq!(s.get(&format!("/api/v1/storage/{private}")).await.status, 401);

        // An offset past what the databases take is a 400 naming it; the largest is an empty page.
        let past = s.get("/api/v1/storage/pub?offset=9223372036854775808").await;
        assert_eq!((past.status, past.body["field"].as_str()), (400, Some("offset")), "{}", past.text);
        let last = s.get("/api/v1/storage/pub?offset=9223372036854775807").await;
        assert_eq!((last.status, last.body.clone()), (200, json!([])), "{}", last.text);

        // A JSON array is no object, although serde would read one as a struct's fields in order.
        let arrays = [
            (Method::POST, "/api/v1/admin/buckets", json!(["arrb", true, ["image/png"], 5])),
            (Method::PATCH, "/api/v1/admin/buckets/pub", json!([null, false])),
            (Method::POST, "/api/v1/storage/sign", json!(["default", "k.txt"])),
            (Method::POST, "/api/v1/admin/relations", json!(["a", "b", "c"])),
        ];
        for (method, path, body) in arrays {
            let token = if path.contains("/admin/") { ADMIN_SECRET } else { alice.as_str() };
            let resp = s.send(method.clone(), path, Some(token), Some(body)).await;
            assert_eq!(resp.status, 400, "{method} {path}: {}", resp.text);
            assert!(resp.error().contains("JSON object"), "{}", resp.error());
        }
        let buckets = s.admin_get("/api/v1/admin/buckets").await;
        assert!(!buckets.text.contains("arrb"), "{}", buckets.text);
        let (_, headers, _) = fetch(&s, Method::GET, url, None, &[]).await;
        assert_eq!(header(&headers, "cache-control"), "public, max-age=3600", "the bucket is still public");
    }

    async fn repeated_and_odd_spellings_are_read_as_the_rfcs_say(s) {
        let (alice, _) = user(&s, "alice@example.com").await;
        public_bucket(&s, "pub", json!({})).await;
        let made = put(&s, "pub/a.txt", Some(&alice), "text/plain", b"0123456789".to_vec(), &[]).await;
        assert_eq!(made.status, 201, "{}", made.text);
        let url = "/api/v1/storage/pub/a.txt";
        let (_, full, _) = fetch(&s, Method::GET, url, None, &[]).await;
        let etag = header(&full, "etag").to_owned();

        // A list header sent on several lines is one list (RFC 9110, 5.3), in either order.
        for lines in [[("if-none-match", "\"x\""), ("if-none-match", etag.as_str())], [("if-none-match", etag.as_str()), ("if-none-match", "\"x\"")]] {
            assert_eq!(fetch(&s, Method::GET, url, None, &lines).await.0, 304, "{lines:?}");
        }
        assert_eq!(fetch(&s, Method::GET, url, None, &[("if-match", "\"x\""), ("if-match", etag.as_str())]).await.0, 200);
        assert_eq!(fetch(&s, Method::GET, url, None, &[("if-match", "\"x\""), ("if-match", "\"y\"")]).await.0, 412);

        // A UUID is read whatever its case.
        let id = made.body["id"].as_str().unwrap().to_owned();
        let (status, _, body) = fetch(&s, Method::GET, &format!("/api/v1/storage/{}", id.to_ascii_uppercase()), None, &[]).await;
        assert_eq!((status, body.as_slice()), (200, &b"0123456789"[..]));

        // An empty file satisfies a suffix range with all of itself (RFC 9110, 14.1.1).
        assert_eq!(put(&s, "pub/empty.txt", Some(&alice), "text/plain", Vec::new(), &[]).await.status, 201);
        let empty = "/api/v1/storage/pub/empty.txt";
        let (status, headers, body) = fetch(&s, Method::GET, empty, None, &[("range", "bytes=-5")]).await;
        assert_eq!((status, body.len(), header(&headers, "content-length")), (200, 0, "0"));
        assert_eq!(fetch(&s, Method::GET, empty, None, &[("range", "bytes=0-")]).await.0, 416);

        // A setting given twice, or two ways that disagree, is refused: nothing is replaced.
        for (query, headers) in [("?upsert=true&upsert=false", vec![]), ("?upsert=true", vec![("x-upsert", "false")]), ("", vec![("x-upsert", "true"), ("x-upsert", "false")])] {
            let resp = put(&s, &format!("pub/a.txt{query}"), Some(&alice), "text/plain", b"replaced".to_vec(), &headers).await;
            assert_eq!((resp.status, resp.body["field"].as_str()), (400, Some("upsert")), "{query} {headers:?}: {}", resp.text);
        }
        let agreeing = put(&s, "pub/a.txt?upsert=true", Some(&alice), "text/plain", b"0123456789".to_vec(), &[("x-upsert", "true")]).await;
        assert_eq!(agreeing.status, 201, "{}", agreeing.text);
        let id = agreeing.body["id"].as_str().unwrap().to_owned();
        for path in ["/api/v1/storage/pub?prefix=a&prefix=zz", "/api/v1/storage/pub?limit=1&limit=2", "/api/v1/storage?page=1&page=2"] {
            let resp = s.as_user(Method::GET, path, &alice, None).await;
            assert_eq!(resp.status, 400, "{path}: {}", resp.text);
            assert!(resp.error().contains("more than once"), "{}", resp.text);
        }
        let (_, headers, bytes) = fetch(&s, Method::GET, url, None, &[]).await;
        assert_eq!((bytes.as_slice(), header(&headers, "content-length")), (&b"0123456789"[..], "10"));
        let signed = s.as_user(Method::POST, &format!("{url}/signed-url"), &alice, Some(json!({"expires_in": 60}))).await;
        let signed = signed.body["signed_url"].as_str().unwrap().to_owned();
        let token = signed.split("token=").nth(1).unwrap();
        assert_eq!(fetch(&s, Method::GET, &format!("{signed}&token={token}"), None, &[]).await.0, 400);

        // `?download=name` saves the file under that name (supabase-js's `download: 'name'`).
        for path in [format!("{url}?download=report%20final.txt"), format!("/api/v1/storage/{id}?download=report%20final.txt"), format!("{signed}&download=report%20final.txt")] {
            let (status, headers, _) = fetch(&s, Method::GET, &path, None, &[]).await;
            assert_eq!(status, 200, "{path}");
            assert!(header(&headers, "content-disposition").starts_with("attachment; filename=\"report final.txt\""), "{path}: {headers:?}");
        }
        let (_, headers, _) = fetch(&s, Method::GET, &format!("{url}?download=..%2F..%2Fetc%2Fpasswd"), None, &[]).await;
        assert!(header(&headers, "content-disposition").starts_with("attachment; filename=\"passwd\""), "{headers:?}");

        // Markup behind any run of byte order marks, or in UTF-16 without one, is no image.
        public_bucket(&s, "imgs", json!({"allowed_mime_types": ["image/*"]})).await;
        let pages: [&[u8]; 3] = [b"  \xEF\xBB\xBF<div>x</div>", b"\xEF\xBB\xBF\xEF\xBB\xBF<html>", b"<\0h\0t\0m\0l\0>\0"];
        for (i, page) in pages.into_iter().enumerate() {
            let resp = put(&s, &format!("imgs/{i}.png"), Some(&alice), "image/png", page.to_vec(), &[]).await;
            assert_eq!(resp.status, 415, "{page:?}: {}", resp.text);
        }
        assert_eq!(s.get("/api/v1/storage/imgs").await.body, json!([]), "nothing kept of the refusals");
    }

    async fn buckets_hold_their_limits_and_types(s) {
        let (alice, _) = user(&s, "alice@example.com").await;
        public_bucket(&s, "avatars", json!({"allowed_mime_types": ["image/*"], "max_size_bytes": 1000})).await;
        let refused = [
            // A type the bucket does not take.
            upload(&s, "/api/v1/storage/upload", Some(&alice), &[("bucket", "avatars")], ("notes.txt", "text/plain", b"hi".to_vec())).await,
            // An HTML page that calls itself a PNG.
            upload(&s, "/api/v1/storage/upload", Some(&alice), &[("bucket", "avatars")], ("x.png", "image/png", b"<!DOCTYPE html><script>alert(1)</script>".to_vec())).await,
            put(&s, "avatars/x.png", Some(&alice), "image/png", b"<html><body>hi</body></html>".to_vec(), &[]).await,
            // A JPEG that calls itself a PNG.
            put(&s, "avatars/y.png", Some(&alice), "image/png", b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01".to_vec(), &[]).await,
            // A charset does not make a type an image.
            put(&s, "avatars/t.png", Some(&alice), "text/plain; charset=utf-8", b"hi".to_vec(), &[]).await,
        ];
        for resp in &refused {
            assert_eq!(resp.status, 415, "{}", resp.text);
            assert!(!resp.error().is_empty());
        }
        let mut big = PNG.to_vec();
        big.resize(1001, 0);
        // Announced too large: refused before a byte is read.
        let too_big = put(&s, "avatars/big.png", Some(&alice), "image/png", big.clone(), &[]).await;
        assert_eq!(too_big.status, 413, "{}", too_big.text);
        // Found too large while streaming (the form gives no length of its own).
        let too_big = upload(&s, "/api/v1/storage/upload", Some(&alice), &[("bucket", "avatars")], ("big.png", "image/png", big.clone())).await;
        assert_eq!(too_big.status, 413, "{}", too_big.text);
        // The bucket named after the file: checked on the whole.
        let mut form = Form::new().part("file", Part::bytes(big.clone()).file_name("big.png").mime_str("image/png").unwrap());
        form = form.text("bucket", "avatars");
        let late = read(s.client.post(s.url("/api/v1/storage/upload")).bearer_auth(&alice).multipart(form).send().await.unwrap()).await;
        assert_eq!(late.status, 413, "{}", late.text);
        big.truncate(1000);
        assert_eq!(put(&s, "avatars/ok.png", Some(&alice), "image/png", big, &[]).await.status, 201);
        // Nothing of the refused uploads is left: one row, one blob.
        let all = s.admin_get("/api/v1/admin/storage").await;
        assert_eq!(all.body["total"], 1, "{}", all.text);
        assert_eq!(s.blob_count().await, 1);
        // A changed limit applies at once.
        let patched = s.admin_patch("/api/v1/admin/buckets/avatars", json!({"max_size_bytes": null, "allowed_mime_types": []})).await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        assert_eq!(patched.body["max_size_bytes"], Value::Null);
        assert_eq!(put(&s, "avatars/notes.txt", Some(&alice), "text/plain", b"any".to_vec(), &[]).await.status, 201);
        // A declared charset is kept (lowercased), on both surfaces; other parameters are not.
        let latin = upload(&s, "/api/v1/storage/upload", Some(&alice), &[("bucket", "avatars")], ("l.csv", "text/csv; charset=ISO-8859-1", b"caf\xe9".to_vec())).await;
        assert_eq!(latin.status, 201, "{}", latin.text);
        assert_eq!(latin.body["mime_type"], "text/csv; charset=iso-8859-1");
        let put_latin = put(&s, "avatars/l2.txt", Some(&alice), "text/plain; format=flowed; charset=\"windows-1252\"", b"x".to_vec(), &[]).await;
        assert_eq!(put_latin.body["mime_type"], "text/plain; charset=windows-1252", "{}", put_latin.text);
        let head = s.client.head(s.url("/api/v1/storage/avatars/l2.txt")).send().await.unwrap();
        assert_eq!(head.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("text/plain; charset=windows-1252"));
        // Malformed or non-ASCII parameters are dropped; the type they follow still counts.
        public_bucket(&s, "txt", json!({"allowed_mime_types": ["text/plain"]})).await;
        let odd = reqwest::header::HeaderValue::from_bytes("text/plain; charset=\u{e9}".as_bytes()).unwrap();
        let raw = s.client.post(s.url("/api/v1/storage/txt/raw.txt")).bearer_auth(&alice).header("content-type", odd).body("x").send().await.unwrap();
        let raw = read(raw).await;
        assert_eq!((raw.status, raw.body["mime_type"].as_str()), (201, Some("text/plain")), "{}", raw.text);
        let form = "--b\r\nContent-Disposition: form-data; name=\"bucket\"\r\n\r\ntxt\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\nContent-Type: text/plain ; charset=\"utf-8\r\n\r\nhello\r\n--b--\r\n";
        let part = s.client.post(s.url("/api/v1/storage/upload")).bearer_auth(&alice).header("content-type", "multipart/form-data; boundary=b").body(form).send().await.unwrap();
        let part = read(part).await;
        assert_eq!((part.status, part.body["mime_type"].as_str()), (201, Some("text/plain")), "{}", part.text);
        for field in ["bucket", "record_id"] {
            let form = Form::new().text(field, "default\0").part("file", Part::bytes(b"x".to_vec()).file_name("n.txt"));
            let nul = read(s.client.post(s.url("/api/v1/storage/upload")).bearer_auth(&alice).multipart(form).send().await.unwrap()).await;
            assert_eq!(nul.status, 400, "{field}: {}", nul.text);
        }
    }

    async fn missing_buckets_are_created_only_when_the_setting_says(s) {
        let (alice, _) = user(&s, "alice@example.com").await;
        let missing = upload(&s, "/api/v1/storage/upload", Some(&alice), &[("bucket", "later")], ("a.txt", "text/plain", b"a".to_vec())).await;
        assert_eq!(missing.status, 404, "{}", missing.text);
        assert_eq!(put(&s, "later/a.txt", Some(&alice), "text/plain", b"a".to_vec(), &[]).await.status, 404);
        s.set_settings(json!({"auto_create_buckets": true})).await;
        // A refused upload makes no bucket, on any of the three ways in.
        let lie = b"<html><script>x</script></html>".to_vec();
        assert_eq!(put(&s, "never/x.png", Some(&alice), "image/png", lie.clone(), &[]).await.status, 415);
        let form = upload(&s, "/api/v1/storage/upload", Some(&alice), &[("bucket", "never")], ("x.png", "image/png", lie)).await;
        assert_eq!(form.status, 415, "{}", form.text);
        let tus = s.client.post(s.url("/api/v1/storage/resumable")).bearer_auth(&alice).header("tus-resumable", "1.0.0")
            .header("upload-length", (6u64 << 30).to_string()).header("upload-metadata", "bucket bmV2ZXI=").send().await.unwrap();
        assert_eq!(tus.status(), 413);
        let names = s.admin_get("/api/v1/admin/buckets").await;
        assert!(!names.text.contains("never"), "{}", names.text);
        let created = upload(&s, "/api/v1/storage/upload", Some(&alice), &[("bucket", "later")], ("a.txt", "text/plain", b"a".to_vec())).await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.body["is_public"], false, "a created bucket is private");
        assert_eq!(put(&s, "sooner/a.txt", Some(&alice), "text/plain", b"a".to_vec(), &[]).await.status, 201);
        let names: Vec<Value> = s.admin_get("/api/v1/admin/buckets").await.body["buckets"].as_array().unwrap().iter().map(|b| b["name"].clone()).collect();
        assert_eq!(names, [json!("default"), json!("later"), json!("sooner")]);
        // Names that could be read as something else are never buckets.
        for bad in ["Upper", "0191c2f0-7c4e-7b7a-9d3a-0a1b2c3d4e5f"] {
            let resp = upload(&s, "/api/v1/storage/upload", Some(&alice), &[("bucket", bad)], ("a.txt", "text/plain", b"a".to_vec())).await;
            assert_eq!(resp.status, 400, "{bad}: {}", resp.text);
        }
    }

    async fn buckets_are_managed_by_the_admin_on_both_surfaces(s) {
        let (alice, _) = user(&s, "alice@example.com").await;
        let listed = s.admin_get("/api/v1/admin/buckets").await;
        assert_eq!(listed.body["buckets"][0]["name"], "default");
        assert_eq!(listed.body["buckets"][0]["is_public"], false);
        let dated = listed.body["buckets"][0]["created_at"].as_i64().unwrap_or(0);
        assert!(dated > 1_700_000_000_000, "the default bucket is dated when it is made: {}", listed.text);
        assert_eq!(s.admin_post("/api/v1/admin/buckets", json!({"name": "docs"})).await.status, 201);
        assert_eq!(s.admin_post("/api/v1/admin/buckets", json!({"name": "docs"})).await.status, 409);
        for bad in [json!({"name": "buckets"}), json!({"name": "a/b"}), json!({}), json!({"name": "x", "allowed_mime_types": ["nope"]}), json!({"name": "x", "max_size_bytes": 0}), json!({"name": "x", "colour": "red"})] {
            let resp = s.admin_post("/api/v1/admin/buckets", bad.clone()).await;
            assert_eq!(resp.status, 400, "{bad}: {}", resp.text);
        }
        assert_eq!(s.as_user(Method::POST, "/api/v1/admin/buckets", &alice, Some(json!({"name": "mine"}))).await.status, 403);
        // The tables surface's bucket endpoints.
        let created = s.send(Method::POST, "/api/v1/storage/buckets/media", Some(ADMIN_SECRET), Some(json!({"public": true, "file_size_limit": 5000}))).await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!((created.body["is_public"].clone(), created.body["max_size_bytes"].clone()), (json!(true), json!(5000)));
        assert_eq!(s.as_user(Method::POST, "/api/v1/storage/buckets/other", &alice, None).await.status, 403);
        let buckets = s.as_user(Method::GET, "/api/v1/storage/buckets", &alice, None).await;
        assert_eq!(buckets.status, 200);
        assert_eq!(buckets.body.as_array().unwrap().len(), 3);
        assert_eq!(s.get("/api/v1/storage/buckets").await.status, 401);

        // A bucket with files is deleted only with force, and its files go with it.
        assert_eq!(put(&s, "media/a.txt", Some(&alice), "text/plain", b"a".to_vec(), &[]).await.status, 201);
        let refused = s.admin_delete("/api/v1/admin/buckets/media").await;
        assert_eq!(refused.status, 409, "{}", refused.text);
        assert_eq!(s.get("/api/v1/storage/media/a.txt").await.status, 200);
        let forced = s.send(Method::DELETE, "/api/v1/storage/buckets/media?force=true", Some(ADMIN_SECRET), None).await;
        assert_eq!((forced.status, forced.text.as_str()), (204, ""));
        assert_eq!(s.get("/api/v1/storage/media/a.txt").await.status, 404);
        s.sweep().await;
        assert_eq!(s.blob_count().await, 0);
        let docs = s.admin_delete("/api/v1/admin/buckets/docs").await;
        assert_eq!((docs.status, docs.body["files_deleted"].clone()), (200, json!(0)), "{}", docs.text);
        assert_eq!(s.admin_delete("/api/v1/admin/buckets/docs").await.status, 404);
        assert_eq!(s.admin_delete("/api/v1/admin/buckets/default").await.status, 400);
        // The admin's forced delete says how many files went.
        public_bucket(&s, "full", json!({})).await;
        for key in ["full/a.txt", "full/b/c.txt"] {
            assert_eq!(put(&s, key, Some(&alice), "text/plain", b"x".to_vec(), &[]).await.status, 201);
        }
        let refused = s.admin_delete("/api/v1/admin/buckets/full").await;
        assert_eq!(refused.status, 409, "{}", refused.text);
        assert!(refused.body["error"].as_str().unwrap().contains("holds 2 file(s)"), "{}", refused.text);
        let full = s.admin_delete("/api/v1/admin/buckets/full?force=true").await;
        assert_eq!((full.status, full.body["files_deleted"].clone()), (200, json!(2)), "{}", full.text);
        s.sweep().await;
        assert_eq!(s.blob_count().await, 0);
    }

    async fn keys_that_could_escape_are_refused(s) {
        let (alice, _) = user(&s, "alice@example.com").await;
        public_bucket(&s, "b", json!({})).await;
        let long = "k".repeat(1025);
        for key in ["a%2F..%2Fb", "..%2Fx", "a%5Cb", "a%00b", "%2Fetc%2Fpasswd", "a%2F%2Fb", long.as_str()] {
            let resp = put(&s, &format!("b/{key}"), Some(&alice), "text/plain", b"x".to_vec(), &[]).await;
            assert_eq!(resp.status, 400, "{key}: {}", resp.text);
            assert!(resp.error().contains("key"), "{}", resp.error());
        }
        // A setting sent as a query parameter is refused, not ignored, on every upload route.
        let resp = put(&s, "b/k.txt?is_public=false", Some(&alice), "text/plain", b"x".to_vec(), &[]).await;
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert!(resp.error().contains("unknown query parameter 'is_public'"), "{}", resp.text);
        let resp = upload(&s, "/api/v1/storage/upload?bucket=b", Some(&alice), &[], ("a.txt", "text/plain", b"x".to_vec())).await;
        assert_eq!(resp.status, 400, "{}", resp.text);
        let resp = s
            .send_with(Method::POST, "/api/v1/storage/resumable?bucket=b", Some(&alice), &[("tus-resumable", "1.0.0"), ("upload-length", "1")], None)
            .await;
        assert_eq!(resp.status, 400, "{}", resp.text);
        // An upload to a key ending in `/signed-url` reaches URL signing, which says why.
        let resp = put(&s, "b/docs/signed-url", Some(&alice), "text/plain", b"hello".to_vec(), &[]).await;
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert!(resp.error().contains("may not end in '/signed-url'"), "{}", resp.text);
        assert_eq!(s.blob_count().await, 0);
        assert_eq!(s.admin_get("/api/v1/admin/storage").await.body["total"], 0);
        // A file named `signed-url` uploaded without a key gets a key that can be signed and
        // replaced like any other.
        let named = upload(&s, "/api/v1/storage/upload", Some(&alice), &[("bucket", "b")], ("signed-url", "text/plain", b"v1".to_vec())).await;
        assert_eq!(named.status, 201, "{}", named.text);
        let key = named.body["key"].as_str().unwrap().to_owned();
        assert!(key.ends_with("/signed-url_"), "{key}");
        assert_eq!(named.body["filename"], "signed-url");
        let replaced = put(&s, &format!("b/{key}"), Some(&alice), "text/plain", b"v2".to_vec(), &[("x-upsert", "true")]).await;
        assert_eq!((replaced.status, &replaced.body["key"]), (201, &json!(key)), "{}", replaced.text);
        let signed = s.as_user(Method::POST, &format!("/api/v1/storage/b/{key}/signed-url"), &alice, Some(json!({}))).await;
        assert_eq!(signed.status, 200, "{}", signed.text);
    }

    async fn signed_download_urls_work_once_signed_and_only_as_signed(s) {
        let (alice, alice_id) = user(&s, "alice@example.com").await;
        let (bob, _) = user(&s, "bob@example.com").await;
        assert_eq!(put(&s, "default/private/report.txt", Some(&alice), "text/plain", b"secret".to_vec(), &[]).await.status, 201);
        assert_eq!(s.get("/api/v1/storage/default/private/report.txt").await.status, 401);
        let signed = s.as_user(Method::POST, "/api/v1/storage/default/private/report.txt/signed-url", &alice, Some(json!({"expires_in": 60}))).await;
        assert_eq!(signed.status, 200, "{}", signed.text);
        assert_eq!(signed.body["expires_in"], 60);
        let url = signed.body["signed_url"].as_str().unwrap().to_owned();
        let (status, _, bytes) = fetch(&s, Method::GET, &url, None, &[]).await;
        assert_eq!((status, bytes.as_slice()), (200, &b"secret"[..]));
        assert_eq!(fetch(&s, Method::HEAD, &url, None, &[]).await.0, 200);

        // A changed signature, a token of another object, an expired token: 403.
        let tampered = format!("{}{}", &url[..url.len() - 1], if url.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(fetch(&s, Method::GET, &tampered, None, &[]).await.0, 403);
        assert_eq!(put(&s, "default/other.txt", Some(&alice), "text/plain", b"other".to_vec(), &[]).await.status, 201);
        let token = url.split("token=").nth(1).unwrap();
        assert_eq!(fetch(&s, Method::GET, &format!("/api/v1/storage/default/other.txt?token={token}"), None, &[]).await.0, 403);
        let signer = ferrobase::files::signing::Signer::new(JWT_SECRET.as_bytes());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let listing = s.as_user(Method::GET, "/api/v1/storage/default", &alice, None).await;
        let report = listing.body.as_array().unwrap().iter().find(|f| f["key"] == "private/report.txt").unwrap();
        let report = report["id"].as_str().unwrap().to_owned();
        let grant = |expires| ferrobase::files::signing::Grant::download("default", "private/report.txt", &report, Some(&alice_id), expires);
        let expired = signer.sign(&grant(now - 1));
        let resp = s.get(&format!("/api/v1/storage/default/private/report.txt?token={expired}")).await;
        assert_eq!(resp.status, 403);
        assert!(resp.error().contains("expired"), "{}", resp.error());
        let forged = ferrobase::files::signing::Signer::new(b"not the server's secret at all, but long").sign(&grant(now + 60));
        assert_eq!(s.get(&format!("/api/v1/storage/default/private/report.txt?token={forged}")).await.status, 403);
        assert_eq!(s.get(&format!("/api/v1/storage/default/private/report.txt?token={}", signer.sign(&grant(now + 60)))).await.status, 200);

        // Only a reader may sign; lifetimes are bounded.
        assert_eq!(s.as_user(Method::POST, "/api/v1/storage/default/private/report.txt/signed-url", &bob, Some(json!({}))).await.status, 403);
        for bad in [json!({"expires_in": 0}), json!({"expires_in": 604801}), json!({"expires_in": "soon"})] {
            let resp = s.as_user(Method::POST, "/api/v1/storage/default/private/report.txt/signed-url", &alice, Some(bad.clone())).await;
            assert_eq!(resp.status, 400, "{bad}: {}", resp.text);
        }
        assert_eq!(s.as_user(Method::POST, "/api/v1/storage/default/nothing.txt/signed-url", &alice, Some(json!({}))).await.status, 404);

        // A URL serves the file it was signed for, never another one put at its key later:
        // here, after Alice deletes hers, Bob's private file.
        assert_eq!(s.as_user(Method::DELETE, "/api/v1/storage/default/private/report.txt", &alice, None).await.status, 204);
        assert_eq!(put(&s, "default/private/report.txt", Some(&bob), "text/plain", b"bob's".to_vec(), &[]).await.status, 201);
        let resp = s.get(&url).await;
        assert_eq!(resp.status, 403, "{}", resp.text);
        assert!(resp.error().contains("replaced or deleted"), "{}", resp.error());
        // Nor the file that replaced it at its owner's own request.
        let own = s.as_user(Method::POST, "/api/v1/storage/default/other.txt/signed-url", &alice, Some(json!({}))).await;
        let own = own.body["signed_url"].as_str().unwrap().to_owned();
        assert_eq!(s.get(&own).await.status, 200);
        let replaced = put(&s, "default/other.txt", Some(&alice), "text/plain", b"newer".to_vec(), &[("x-upsert", "true")]).await;
        assert_eq!(replaced.status, 201, "{}", replaced.text);
        assert_eq!(s.get(&own).await.status, 403);
    }

    async fn a_signed_download_ends_with_its_signers_access(s) {
        let rules = json!({"read": "authenticated", "create": "authenticated", "update": "owner", "delete": "owner"});
        let created = s.admin_post("/api/v1/admin/collections", json!({"name": "shared", "rules": rules})).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let (alice, _) = user(&s, "alice@example.com").await;
        let (bob, _) = user(&s, "bob@example.com").await;
        let record = s.as_user(Method::POST, "/api/v1/shared", &alice, Some(json!({"t": "x"}))).await;
        let record = record.body["_id"].as_str().unwrap().to_owned();
        let fields = [("collection", "shared"), ("record_id", record.as_str())];
        let file = upload(&s, "/api/v1/storage/upload", Some(&alice), &fields, ("plan.txt", "text/plain", b"plan".to_vec())).await;
        assert_eq!(file.status, 201, "{}", file.text);
        let path = file.body["path"].as_str().unwrap().to_owned();
        let sign = |token: Option<String>| {
            let (s, path) = (&s, &path);
            async move { s.send(Method::POST, &format!("{path}/signed-url"), token.as_deref(), Some(json!({}))).await }
        };
        // Bob reads the record, so he may link to its file; so may the admin.
        let by_bob = sign(Some(bob.clone())).await;
        assert_eq!(by_bob.status, 200, "{}", by_bob.text);
        let by_bob = by_bob.body["signed_url"].as_str().unwrap().to_owned();
        let by_admin = sign(Some(ADMIN_SECRET.to_owned())).await.body["signed_url"].as_str().unwrap().to_owned();
        assert_eq!(fetch(&s, Method::GET, &by_bob, None, &[]).await.2, b"plan");

        // The read rule tightened: Bob's link ends with his access, the admin's goes on.
        let tightened = s.admin_patch("/api/v1/admin/collections/shared", json!({"rules": {"read": "owner"}})).await;
        assert_eq!(tightened.status, 200, "{}", tightened.text);
        assert_eq!(fetch(&s, Method::GET, &path, Some(&bob), &[]).await.0, 403);
        for method in [Method::GET, Method::HEAD] {
            let resp = s.send(method.clone(), &by_bob, None, None).await;
            assert_eq!(resp.status, 403, "{method}: {}", resp.text);
        }
        assert!(s.get(&by_bob).await.error().contains("may no longer read"));
        assert_eq!(fetch(&s, Method::GET, &by_admin, None, &[]).await.0, 200);

        // A link ends with its signer's account.
        assert_eq!(put(&s, "default/own.txt", Some(&alice), "text/plain", b"own".to_vec(), &[]).await.status, 201);
        let own = s.as_user(Method::POST, "/api/v1/storage/default/own.txt/signed-url", &alice, Some(json!({}))).await;
        let own = own.body["signed_url"].as_str().unwrap().to_owned();
        assert_eq!(s.get(&own).await.status, 200);
        assert_eq!(s.as_user(Method::DELETE, "/api/v1/auth/me", &alice, None).await.status, 200);
        let resp = s.get(&own).await;
        assert_eq!(resp.status, 403, "{}", resp.text);
        assert!(resp.error().contains("no longer exists"), "{}", resp.error());

        // Nobody answers for a link signed anonymously, so none is signed, even to a public file.
        public_bucket(&s, "pub", json!({})).await;
        assert_eq!(put(&s, "pub/open.txt", Some(&bob), "text/plain", b"open".to_vec(), &[]).await.status, 201);
        assert_eq!(s.get("/api/v1/storage/pub/open.txt").await.status, 200);
        let resp = s.send(Method::POST, "/api/v1/storage/pub/open.txt/signed-url", None, Some(json!({}))).await;
        assert_eq!(resp.status, 401, "{}", resp.text);
    }

    async fn signed_upload_urls_upload_once_within_their_limits(s) {
        let (alice, alice_id) = user(&s, "alice@example.com").await;
        let signed = s.as_user(Method::POST, "/api/v1/storage/sign", &alice, Some(json!({"max_size_bytes": 100, "mime_type": "text/*", "expires_in": 600}))).await;
        assert_eq!(signed.status, 200, "{}", signed.text);
        let url = signed.body["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with("/api/v1/storage/upload?token="), "{url}");
        // Refusals do not spend it.
        assert_eq!(upload(&s, &url, None, &[], ("big.txt", "text/plain", vec![b'a'; 101])).await.status, 413);
        assert_eq!(upload(&s, &url, None, &[], ("x.png", "image/png", PNG.to_vec())).await.status, 415);
        assert_eq!(upload(&s, &url, None, &[("bucket", "elsewhere")], ("a.txt", "text/plain", b"a".to_vec())).await.status, 403);
        // The holder may not publish the signer's file: visibility is the signer's to sign.
        let public = upload(&s, &url, None, &[("is_public", "true")], ("a.txt", "text/plain", b"a".to_vec())).await;
        assert_eq!(public.status, 403, "{}", public.text);
        let used = upload(&s, &url, None, &[], ("note.txt", "text/plain", b"from a client without a token".to_vec())).await;
        assert_eq!(used.status, 201, "{}", used.text);
        assert_eq!(used.body["owner_id"], alice_id.as_str(), "the file is the signer's");
        assert_eq!(used.body["is_public"], false, "the bucket's visibility: {}", used.text);
        let published = s.as_user(Method::POST, "/api/v1/storage/sign", &alice, Some(json!({"is_public": true}))).await;
        let published = published.body["url"].as_str().unwrap().to_owned();
        let shown = upload(&s, &published, None, &[("is_public", "true")], ("shown.txt", "text/plain", b"shown".to_vec())).await;
        assert_eq!((shown.status, &shown.body["is_public"]), (201, &json!(true)), "{}", shown.text);
        assert_eq!(s.get(shown.body["url"].as_str().unwrap()).await.status, 200);
        let again = upload(&s, &url, None, &[], ("note2.txt", "text/plain", b"again".to_vec())).await;
        assert_eq!(again.status, 403, "{}", again.text);
        assert_eq!(s.admin_get("/api/v1/admin/storage").await.body["total"], 2, "note.txt and shown.txt");
        assert_eq!(s.blob_count().await, 2);
        let tampered = format!("{}x", url);
        assert_eq!(upload(&s, &tampered, None, &[], ("a.txt", "text/plain", b"a".to_vec())).await.status, 403);
        // A key fixed at signing: the upload goes to that key on the tables surface.
        let keyed = s.as_user(Method::POST, "/api/v1/storage/sign", &alice, Some(json!({"key": "inbox/one.txt"}))).await;
        let keyed_url = keyed.body["url"].as_str().unwrap();
        let resp = s.client.post(s.url(keyed_url)).header("content-type", "text/plain").body("keyed").send().await.unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(fetch(&s, Method::GET, "/api/v1/storage/default/inbox/one.txt", Some(&alice), &[]).await.2, b"keyed");
        // A URL for a new file replaces none, unless signed to replace the file at its key.
        let loose = s.as_user(Method::POST, "/api/v1/storage/sign", &alice, Some(json!({}))).await.body["token"].as_str().unwrap().to_owned();
        let over = put(&s, &format!("default/inbox/one.txt?token={loose}"), None, "text/plain", b"over".to_vec(), &[("x-upsert", "true")]).await;
        assert_eq!(over.status, 403, "{}", over.text);
        assert_eq!(fetch(&s, Method::GET, "/api/v1/storage/default/inbox/one.txt", Some(&alice), &[]).await.2, b"keyed");
        assert_eq!(s.as_user(Method::POST, "/api/v1/storage/sign", &alice, Some(json!({"upsert": true}))).await.status, 400);
        let replacing = s.as_user(Method::POST, "/api/v1/storage/sign", &alice, Some(json!({"key": "inbox/one.txt", "upsert": true}))).await;
        let replacing = replacing.body["url"].as_str().unwrap().trim_start_matches("/api/v1/storage/").to_owned();
        let over = put(&s, &replacing, None, "text/plain", b"over".to_vec(), &[("x-upsert", "true")]).await;
        assert_eq!(over.status, 201, "{}", over.text);
        assert_eq!(over.body["owner_id"], alice_id.as_str());
        assert_eq!(fetch(&s, Method::GET, "/api/v1/storage/default/inbox/one.txt", Some(&alice), &[]).await.2, b"over");
        // A deleted user's URLs upload nothing more.
        let (carol, carol_id) = user(&s, "carol@example.com").await;
        let orphaned = s.as_user(Method::POST, "/api/v1/storage/sign", &carol, Some(json!({}))).await.body["url"].as_str().unwrap().to_owned();
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/users/{carol_id}")).await.status, 200);
        let resp = upload(&s, &orphaned, None, &[], ("c.txt", "text/plain", b"c".to_vec())).await;
        assert_eq!(resp.status, 403, "{}", resp.text);
        // Signing needs a user and an existing bucket.
        assert_eq!(s.post("/api/v1/storage/sign", json!({})).await.status, 401);
        assert_eq!(s.as_user(Method::POST, "/api/v1/storage/sign", &alice, Some(json!({"bucket": "nope"}))).await.status, 404);
        assert_eq!(s.as_user(Method::POST, "/api/v1/storage/sign", &alice, Some(json!({"expires_in": -1}))).await.status, 400);
    }

    async fn a_records_files_follow_the_records_rules(s) {
        let created = s.admin_post("/api/v1/admin/collections", json!({"name": "notes", "rules": {"read": {"role": "reviewer"}, "create": "authenticated", "update": "owner", "delete": "owner"}})).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let (_, alice_id) = user(&s, "alice@example.com").await;
        let (bob, _) = user(&s, "bob@example.com").await;
        let (_, rita_id) = user(&s, "rita@example.com").await;
        // Alice reviews too: a record is changed only by who may also read it.
        for id in [&alice_id, &rita_id] {
            assert_eq!(s.admin_patch(&format!("/api/v1/admin/users/{id}/roles"), json!({"roles": ["reviewer"]})).await.status, 200);
        }
        let alice = s.login("alice@example.com", "password-123").await.body["access_token"].as_str().unwrap().to_owned();
        let rita = s.login("rita@example.com", "password-123").await.body["access_token"].as_str().unwrap().to_owned();
        let note = s.as_user(Method::POST, "/api/v1/notes", &alice, Some(json!({"title": "mine"}))).await;
        assert_eq!(note.status, 201, "{}", note.text);
        let note_id = note.body["_id"].as_str().unwrap().to_owned();

        // Only who may update the record attaches files to it.
        let fields = [("collection", "notes"), ("record_id", note_id.as_str())];
        let refused = upload(&s, "/api/v1/storage/upload", Some(&bob), &fields, ("x.txt", "text/plain", b"x".to_vec())).await;
        assert_eq!(refused.status, 403, "{}", refused.text);
        assert_eq!(upload(&s, "/api/v1/storage/upload", Some(&alice), &[("collection", "notes")], ("x.txt", "text/plain", b"x".to_vec())).await.status, 400);
        let attached = upload(&s, "/api/v1/storage/upload", Some(&alice), &fields, ("scan.txt", "text/plain", b"scan".to_vec())).await;
        assert_eq!(attached.status, 201, "{}", attached.text);
        assert_eq!(attached.body["record_id"], note_id.as_str());
        let url = attached.body["url"].as_str().unwrap().to_owned();

        // A reader of the record reads the file; others do not.
        assert_eq!(fetch(&s, Method::GET, &url, Some(&rita), &[]).await.0, 200);
        assert_eq!(fetch(&s, Method::GET, &url, Some(&bob), &[]).await.0, 403);
        assert_eq!(fetch(&s, Method::GET, &url, None, &[]).await.0, 401);
        // So does a file uploaded at a key through a URL signed for the record.
        let signed = s.as_user(Method::POST, "/api/v1/storage/sign", &alice, Some(json!({"key": "notes/att.txt", "collection": "notes", "record_id": note_id}))).await;
        assert_eq!(signed.status, 200, "{}", signed.text);
        let target = signed.body["url"].as_str().unwrap().trim_start_matches("/api/v1/storage/").to_owned();
        let keyed = put(&s, &target, None, "text/plain", b"att".to_vec(), &[]).await;
        assert_eq!((keyed.status, &keyed.body["record_id"]), (201, &json!(note_id)), "{}", keyed.text);
        assert_eq!(fetch(&s, Method::GET, "/api/v1/storage/default/notes/att.txt", Some(&rita), &[]).await.0, 200);
        assert_eq!(fetch(&s, Method::GET, "/api/v1/storage/default/notes/att.txt", Some(&bob), &[]).await.0, 403);
        // Its new version still belongs to the record.
        let newer = put(&s, "default/notes/att.txt", Some(&alice), "text/plain", b"att2".to_vec(), &[("x-upsert", "true")]).await;
        assert_eq!((newer.status, &newer.body["record_id"]), (201, &json!(note_id)), "{}", newer.text);
        assert_eq!(fetch(&s, Method::GET, "/api/v1/storage/default/notes/att.txt", Some(&rita), &[]).await.0, 200);
        // A URL signed for a record that is then deleted for good keeps nothing.
        let other = s.as_user(Method::POST, "/api/v1/notes", &alice, Some(json!({"title": "brief"}))).await;
        let other_id = other.body["_id"].as_str().unwrap().to_owned();
        let signed = s.as_user(Method::POST, "/api/v1/storage/sign", &alice, Some(json!({"collection": "notes", "record_id": other_id}))).await;
        let late = signed.body["url"].as_str().unwrap().to_owned();
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/collections/notes/records/{other_id}")).await.status, 200);
        let blobs = s.blob_count().await;
        let refused = upload(&s, &late, None, &[], ("late.txt", "text/plain", b"late".to_vec())).await;
        assert_eq!(refused.status, 404, "{}", refused.text);
        assert_eq!(s.blob_count().await, blobs);

        // A soft delete keeps the file; deleting the record for good deletes it.
        assert_eq!(s.as_user(Method::DELETE, &format!("/api/v1/notes/{note_id}"), &alice, None).await.status, 200);
        assert_eq!(fetch(&s, Method::GET, &url, Some(&alice), &[]).await.0, 200);
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/collections/notes/records/{note_id}")).await.status, 200);
        assert_eq!(fetch(&s, Method::GET, &url, Some(ADMIN_SECRET), &[]).await.0, 404);
        s.sweep().await;
        assert_eq!(s.blob_count().await, 0);

        // Dropping a collection drops its records' files; other files stay.
        let note = s.as_user(Method::POST, "/api/v1/notes", &alice, Some(json!({"title": "again"}))).await;
        let fields = [("collection", "notes"), ("record_id", note.body["_id"].as_str().unwrap())];
        assert_eq!(upload(&s, "/api/v1/storage/upload", Some(&alice), &fields, ("a.txt", "text/plain", b"a".to_vec())).await.status, 201);
        assert_eq!(upload(&s, "/api/v1/storage/upload", Some(&alice), &[], ("b.txt", "text/plain", b"b".to_vec())).await.status, 201);
        assert_eq!(s.admin_delete("/api/v1/admin/collections/notes").await.status, 200);
        let left = s.admin_get("/api/v1/admin/storage").await;
        assert_eq!(left.body["total"], 1, "{}", left.text);
        assert_eq!(left.body["items"][0]["filename"], "b.txt");
        s.sweep().await;
        assert_eq!(s.blob_count().await, 1);
    }

    async fn blobs_a_crash_left_behind_are_swept(s) {
        let (alice, _) = user(&s, "alice@example.com").await;
        assert_eq!(put(&s, "default/keep.txt", Some(&alice), "text/plain", b"kept".to_vec(), &[]).await.status, 201);
        // An unfinished resumable upload: its chunk is named by its row and stays.
        let started = s.client.post(s.url("/api/v1/storage/resumable")).bearer_auth(&alice).header("tus-resumable", "1.0.0")
            .header("upload-length", "6").send().await.unwrap();
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let patch = |offset: usize, body: &'static [u8]| {
            s.client.patch(s.url(&location)).bearer_auth(&alice).header("tus-resumable", "1.0.0")
                .header("upload-offset", offset.to_string()).header("content-type", "application/offset+octet-stream").body(body).send()
        };
        assert_eq!(patch(0, b"abc").await.unwrap().status(), 204);
        let left = s.leave_crash_debris().await;
        assert_eq!(s.blob_count().await, 2 + left);
        assert_eq!(s.sweep_orphans().await as u64, left);
        assert_eq!(s.blob_count().await, 2, "the file's blob and the upload's chunk stay");
        assert_eq!(fetch(&s, Method::GET, "/api/v1/storage/default/keep.txt", Some(&alice), &[]).await.2, b"kept");
        let done = patch(3, b"def").await.unwrap();
        assert_eq!(done.status(), 204);
        let url = done.headers()["ferrobase-file-url"].to_str().unwrap().to_owned();
        assert_eq!(fetch(&s, Method::GET, &url, Some(&alice), &[]).await.2, b"abcdef");
        // The upload's chunks went to the trash; nothing a row names is ever swept.
        s.sweep().await;
        s.sweep_orphans().await;
        assert_eq!(s.blob_count().await, 2);
        assert_eq!(fetch(&s, Method::GET, &url, Some(&alice), &[]).await.2, b"abcdef");
        assert_eq!(fetch(&s, Method::GET, "/api/v1/storage/default/keep.txt", Some(&alice), &[]).await.2, b"kept");
    }

    async fn a_refusal_before_a_large_body_says_the_connection_ends(s) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (alice, _) = user(&s, "alice@example.com").await;
        let addr = s.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = |length: usize| {
            format!(
                "POST /api/v1/storage/nosuchbucket/x.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {alice}\r\n\
                 Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
            )
        };
        // The head of the next answer on the connection, lower-cased.
        async fn answer_head(stream: &mut tokio::net::TcpStream) -> String {
            let mut answer = Vec::new();
            let mut buf = [0u8; 4096];
            while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the connection closed before an answer");
                answer.extend_from_slice(&buf[..n]);
            }
            String::from_utf8_lossy(&answer).to_ascii_lowercase()
        }
        // A small body, sent whole and left unread: the connection goes on.
        stream.write_all(format!("{}0123456789", request(10)).as_bytes()).await.unwrap();
        let small = answer_head(&mut stream).await;
        assert!(small.starts_with("http/1.1 404") && !small.contains("connection: close"), "{small}");
        // A large one, refused before most of it is sent: the answer says the connection ends.
        stream.write_all(request(4 << 20).as_bytes()).await.unwrap();
        stream.write_all(&vec![1u8; 64 * 1024]).await.unwrap();
        let large = answer_head(&mut stream).await;
        assert!(large.contains("404") && large.contains("connection: close"), "{large}");
    }

    async fn an_upload_cut_off_half_way_leaves_nothing(s) {
        use tokio::io::AsyncWriteExt;
        let (alice, _) = user(&s, "alice@example.com").await;
        let addr = s.base.trim_start_matches("http://").to_owned();
        // A raw upload that announces 4 MiB and stops after 3.
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/v1/storage/default/cut.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {alice}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            4 * 1024 * 1024
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..48 {
            stream.write_all(&chunk).await.unwrap();
        }
        stream.flush().await.unwrap();
        drop(stream);
        // The server notices, aborts the blob and writes no row; wait for it, bounded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while s.blob_count().await > 0 {
            assert!(std::time::Instant::now() < deadline, "a partial blob was left behind");
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(s.admin_get("/api/v1/admin/storage").await.body["total"], 0);
        assert_eq!(s.get("/api/v1/storage/default/cut.bin").await.status, 404);
        // The server is fine and the key is free.
        let ok = put(&s, "default/cut.bin", Some(&alice), "application/octet-stream", vec![1; 10], &[]).await;
        assert_eq!(ok.status, 201, "{}", ok.text);
    }

    async fn an_upload_into_a_bucket_deleted_meanwhile_leaves_nothing(s) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        public_bucket(&s, "doomed", json!({})).await;
        let addr = s.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let half = vec![5u8; 512 * 1024];
        let head = format!(
            "POST /api/v1/storage/doomed/late.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_SECRET}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\nExpect: 100-continue\r\n\r\n",
            2 * half.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The server asks for the body only once it has found the bucket: from then on the
        // bucket is deleted mid-upload, never before the upload looked at it.
        let mut interim = Vec::new();
        while !interim.ends_with(b"\r\n\r\n") {
            interim.push(stream.read_u8().await.unwrap());
        }
        assert!(interim.starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&interim));
        stream.write_all(&half).await.unwrap();
        stream.flush().await.unwrap();
        // The bucket goes while the file is half sent (it holds no file yet: no force needed).
        let deleted = s.admin_delete("/api/v1/admin/buckets/doomed").await;
        assert_eq!(deleted.status, 200, "{}", deleted.text);
        stream.write_all(&half).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        assert!(answer.contains("bucket 'doomed' not found"), "{answer}");
        // No row, and once swept no blob; a bucket of the same name starts empty.
        assert_eq!(s.admin_get("/api/v1/admin/storage").await.body["total"], 0);
        s.sweep().await;
        assert_eq!(s.blob_count().await, 0);
        public_bucket(&s, "doomed", json!({})).await;
        assert_eq!(s.get("/api/v1/storage/doomed").await.body, json!([]));
    }

    async fn files_of_every_size_come_back_byte_for_byte(s) {
        // Sizes about the sniffed head (4 KiB) and the blob stores' parts (1 MiB on disk,
        // 8 MiB on S3), where an upload changes from one write to several.
        const MIB: usize = 1024 * 1024;
        for size in [0, 1, 4095, 4096, 4097, MIB - 1, MIB, MIB + 1, 2 * MIB + 3, 8 * MIB + 1] {
            let mut state = size as u32 ^ 0x9e37_79b9;
            let bytes: Vec<u8> = (0..size).map(|_| { state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223); (state >> 24) as u8 }).collect();
            let key = format!("default/sizes/{size}.bin");
            let up = put(&s, &key, Some(ADMIN_SECRET), "application/octet-stream", bytes.clone(), &[]).await;
            assert_eq!(up.status, 201, "{size}: {}", up.text);
            assert_eq!(up.body["size"], size, "{size}");
            let (status, headers, back) = fetch(&s, Method::GET, &format!("/api/v1/storage/{key}"), Some(ADMIN_SECRET), &[]).await;
            assert_eq!(status, 200, "{size}");
            assert_eq!(header(&headers, "content-length"), size.to_string());
            assert!(back == bytes, "{size} bytes came back changed");
            if size > 2 * MIB {
                // A range across the boundary between two chunks read from the store.
                let (first, last) = (MIB - 5, 2 * MIB + 1);
                let range = format!("bytes={first}-{last}");
                let (status, _, part) = fetch(&s, Method::GET, &format!("/api/v1/storage/{key}"), Some(ADMIN_SECRET), &[("range", range.as_str())]).await;
                assert_eq!(status, 206, "{size}");
                assert!(part == bytes[first..=last], "{size}: the range came back changed");
            }
        }
        assert_eq!(s.blob_count().await, 10);
    }

    async fn the_admin_lists_uploads_and_deletes_any_file(s) {
        let (alice, _) = user(&s, "alice@example.com").await;
        upload(&s, "/api/v1/storage/upload", Some(&alice), &[], ("a.txt", "text/plain", b"a".to_vec())).await;
        let mut form = Form::new().part("file", Part::bytes(b"ownerless".to_vec()).file_name("o.txt").mime_str("text/plain").unwrap());
        form = form.text("is_public", "true");
        let admin_up = read(s.client.post(s.url("/api/v1/admin/storage/upload")).bearer_auth(ADMIN_SECRET).multipart(form).send().await.unwrap()).await;
        assert_eq!(admin_up.status, 201, "{}", admin_up.text);
        assert_eq!(admin_up.body["owner_id"], Value::Null);
        assert_eq!(admin_up.body["is_public"], true);
        let all = s.admin_get("/api/v1/admin/storage?limit=1").await;
        assert_eq!((all.body["total"].clone(), all.body["items"].as_array().unwrap().len()), (json!(2), 1));
        assert_eq!(s.as_user(Method::GET, "/api/v1/admin/storage", &alice, None).await.status, 403);
        let id = admin_up.body["id"].as_str().unwrap();
        assert_eq!(fetch(&s, Method::GET, &format!("/api/v1/storage/{id}"), None, &[]).await.0, 200);
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/storage/{id}")).await.status, 200);
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/storage/{id}")).await.status, 404);
        // Bad forms are 400s that store nothing.
        let no_file = read(s.client.post(s.url("/api/v1/storage/upload")).bearer_auth(&alice).multipart(Form::new().text("bucket", "default")).send().await.unwrap()).await;
        assert_eq!(no_file.status, 400, "{}", no_file.text);
        let unknown = upload(&s, "/api/v1/storage/upload", Some(&alice), &[("colour", "red")], ("a.txt", "text/plain", b"a".to_vec())).await;
        assert_eq!(unknown.status, 400, "{}", unknown.text);
        let not_form = s.as_user(Method::POST, "/api/v1/storage/upload", &alice, Some(json!({"file": "x"}))).await;
        assert!(not_form.status == 400 || not_form.status == 415, "{}", not_form.text);
        assert_eq!(s.admin_get("/api/v1/admin/storage").await.body["total"], 1);
    }
}
