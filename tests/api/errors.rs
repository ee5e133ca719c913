//! Errors and hostile input: every bad request is a clear JSON 4xx that changes nothing.

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, Backend, TestServer};

both_backends! {
    async fn unknown_routes_and_methods_answer_json(s) {
        let resp = s.get("/nope").await;
        assert_eq!(resp.status, 404);
        assert!(resp.error().contains("/nope"));
        let resp = s.get("/api/v1/posts/a/b/c").await;
        assert_eq!(resp.status, 404);
        let resp = s.send(Method::PUT, "/api/v1/posts", None, Some(json!({}))).await;
        assert_eq!(resp.status, 405);
        assert!(!resp.error().is_empty());
        let resp = s.send(Method::PUT, "/api/v1/admin/health", None, None).await;
        assert_eq!(resp.status, 405);
        for path in ["/api/v1/auth", "/api/v1/auth/nothing", "/api/v1/storage/x/y", "/api/v1/admin/nothing"] {
            let resp = s.get(path).await;
            assert_eq!(resp.status, 404, "{path}: {}", resp.text);
            assert!(!resp.error().is_empty());
        }
        // A path no route names is a 404 whatever the method, also where the collection
        // routes would take its shape; a real route asked with the wrong method stays a 405.
        for method in [Method::POST, Method::DELETE, Method::PATCH] {
            for path in ["/api/v1/auth/nothing", "/api/v1/admin/nothing"] {
                let resp = s.send(method.clone(), path, Some(ADMIN_SECRET), Some(json!({}))).await;
                assert_eq!(resp.status, 404, "{method} {path}: {}", resp.text);
            }
        }
        assert_eq!(s.send(Method::GET, "/api/v1/auth/login", None, None).await.status, 405);
        assert_eq!(s.send(Method::DELETE, "/api/v1/admin/health", Some(ADMIN_SECRET), None).await.status, 405);
    }

    async fn every_response_carries_a_request_id(s) {
        let ok = s.get("/api/v1/admin/health").await;
        let err = s.get("/nope").await;
        let a = ok.header("x-request-id").expect("request id on success").to_owned();
        let b = err.header("x-request-id").expect("request id on errors").to_owned();
        assert_ne!(a, b);
        let mine = s.client.get(s.url("/api/v1/admin/health")).header("x-request-id", "client-chosen-1").send().await.unwrap();
        assert_eq!(mine.headers()["x-request-id"], "client-chosen-1");
    }

    async fn malformed_bodies_are_400(s) {
        s.open_collection("posts").await;
        for body in ["{not json", "", "[1,", "{\"a\": }"] {
            let resp = s.client.post(s.url("/api/v1/posts")).header("content-type", "application/json").body(body).send().await.unwrap();
            let resp = crate::harness::read(resp).await;
            assert_eq!(resp.status, 400, "{body:?}: {}", resp.text);
            assert!(!resp.error().is_empty());
        }
        let admin = s.client.post(s.url("/api/v1/admin/collections")).bearer_auth(ADMIN_SECRET).body("nope").send().await.unwrap();
        assert_eq!(admin.status(), 400);
        // A compressed body is refused as such (415), not misread as broken JSON.
        let gzip_magic = vec![0x1f_u8, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03];
        for coding in ["gzip", "br", "deflate, gzip"] {
            let resp = s.client.post(s.url("/api/v1/posts")).header("content-type", "application/json")
                .header("content-encoding", coding).body(gzip_magic.clone()).send().await.unwrap();
            let resp = crate::harness::read(resp).await;
            assert_eq!(resp.status, 415, "{coding}: {}", resp.text);
            assert!(resp.error().contains("Content-Encoding"), "{}", resp.text);
        }
        assert_eq!(s.get("/api/v1/posts/count").await.body["count"], 0);
        let identity = s.client.post(s.url("/api/v1/posts")).header("content-type", "application/json")
            .header("content-encoding", "identity").body(r#"{"title": "plain"}"#).send().await.unwrap();
        assert_eq!(identity.status(), 201);
    }

    async fn bad_collection_names_in_paths(s) {
        s.open_collection("posts").await;
        for (method, path, status) in [
            (Method::GET, "/api/v1/..%2Fx", 400),
            (Method::POST, "/api/v1/..%2Fx", 400),
            (Method::GET, "/api/v1/a%3Bdrop%20table", 400),
            (Method::POST, "/api/v1/a%3Bdrop%20table%20posts", 400),
            (Method::GET, "/api/v1/_fb_collections", 400),
            (Method::POST, "/api/v1/_fb_settings", 400),
            (Method::GET, "/api/v1/Posts", 400),
            (Method::POST, "/api/v1/tables", 404),
            // `GET /storage` lists the caller's files; nothing else is done there.
            (Method::POST, "/api/v1/storage", 405),
            (Method::POST, "/api/v1/auth", 404),
            (Method::GET, "/api/v1/unknown", 404),
            (Method::GET, "/api/v1/unknown/count", 404),
            (Method::GET, "/api/v1/unknown/01900000-0000-7000-8000-000000000000", 404),
        ] {
            let resp = s.send(method.clone(), path, Some(ADMIN_SECRET), Some(json!({"x": 1}))).await;
            assert_eq!(resp.status, status, "{method} {path}: {}", resp.text);
            assert!(!resp.error().is_empty());
        }
        let list = s.admin_get("/api/v1/admin/collections").await;
        assert_eq!(list.body["collections"].as_array().unwrap().len(), 1, "nothing was created: {}", list.text);
        assert_eq!(s.get("/api/v1/posts/01900000-0000-7000-8000-000000000000").await.status, 404);
        assert_eq!(s.get("/api/v1/posts/not-even-an-id").await.status, 404);
    }

    async fn bad_list_parameters_are_400(s) {
        s.open_collection("posts").await;
        s.seed("posts", &[json!({"title": "a", "n": 1})]).await;
        for query in [
            "filter=title:regex:a",
            "filter=nope:eq:1",
            "filter=title",
            "filter=n:eq:one",
            "sort=nope",
            "sort=title:up",
            "fields=title,nope",
            "limit=501",
            "limit=0",
            "limit=abc",
            "page=0",
            "after=not-a-record",
            "after=01900000-0000-7000-8000-000000000000",
            "bogus=1",
            "title=wat.1",
            "nope=eq.1",
            "or=(title.eq.a",
            "n=like.1",
            "title=is.maybe",
        ] {
            let resp = s.get(&format!("/api/v1/posts?{query}")).await;
            assert_eq!(resp.status, 400, "{query}: {}", resp.text);
            assert!(!resp.error().is_empty(), "{query}");
        }
        let resp = s.get("/api/v1/posts?filter=nope:eq:1").await;
        assert!(resp.error().contains("nope"), "the error names the column: {}", resp.text);
        let resp = s.get("/api/v1/posts?filter=title:regex:a").await;
        assert!(resp.error().contains("regex"), "the error names the operator: {}", resp.text);
        assert_eq!(s.get("/api/v1/posts/count?nope=eq.1").await.status, 400);
        let id = s.get("/api/v1/posts").await.body["items"][0]["_id"].as_str().unwrap().to_owned();
        assert_eq!(s.get(&format!("/api/v1/posts/{id}?fields=nope")).await.status, 400);
        assert_eq!(s.get(&format!("/api/v1/posts/{id}?bogus=1")).await.status, 400);
    }

    async fn injection_attempts_are_plain_values(s) {
        s.open_collection("posts").await;
        s.seed("posts", &[json!({"title": "safe"})]).await;
        for query in [
            "filter=title:eq:x'%20OR%20'1'='1",
            "title=eq.x%27%3B%20DROP%20TABLE%20posts%3B--",
            "filter=title:like:%25'%20OR%201=1--",
        ] {
            let resp = s.get(&format!("/api/v1/posts?{query}")).await;
            assert_eq!(resp.status, 200, "{query}: {}", resp.text);
            assert_eq!(resp.body["total"], 0, "{query}");
        }
        let weird = s.post("/api/v1/posts", json!({"title": "'); DROP TABLE posts; --"})).await;
        assert_eq!(weird.status, 201);
        assert_eq!(weird.body["title"], "'); DROP TABLE posts; --");
        let bad_field = s.post("/api/v1/posts", json!({"a\"; DROP TABLE posts; --": 1})).await;
        assert_eq!(bad_field.status, 400);
        assert_eq!(s.get("/api/v1/posts/count").await.body["count"], 2);
    }
}

/// Bodies over the limit are refused with 413 before they are read.
async fn oversized_bodies(backend: Backend) {
    let Some(s) = TestServer::start_with(backend, |c| c.max_body_bytes = 1024).await else {
        return;
    };
    s.open_collection("posts").await;
    let big = json!({"title": "x".repeat(2048)});
    let resp = s.post("/api/v1/posts", big).await;
    assert_eq!(resp.status, 413, "{}", resp.text);
    assert!(!resp.error().is_empty());
    assert_eq!(s.get("/api/v1/posts/count").await.body["count"], 0);
    assert_eq!(s.post("/api/v1/posts", json!({"title": "small"})).await.status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_sqlite() {
    oversized_bodies(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_postgres() {
    oversized_bodies(Backend::Postgres).await;
}

both_backends! {
    async fn browsers_on_other_origins_may_call_the_api(s) {
        let preflight = s
            .client
            .request(Method::OPTIONS, s.url("/api/v1/posts"))
            .header("Origin", "https://app.example")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization, content-type")
            .send()
            .await
            .unwrap();
        assert!(preflight.status().is_success(), "{}", preflight.status());
        assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
        let allowed = preflight.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
        assert!(allowed.contains("POST") || allowed == "*", "{allowed}");
        let resp = s.client.get(s.url("/api/v1/admin/health")).header("Origin", "https://app.example").send().await.unwrap();
        assert_eq!(resp.headers()["access-control-allow-origin"], "*");
        let exposed = resp.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
        assert!(exposed.contains("x-request-id"), "{exposed}");
    }
}
