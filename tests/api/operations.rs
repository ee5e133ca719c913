//! Operating the server: runtime settings (typed, audited, exported and imported, a test
//! email), maintenance mode and the health check, on both backends.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, until_status};
use crate::mailbox;

both_backends! {
    async fn settings_are_typed_and_all_or_nothing(s) {
        for bad in [
            json!({"registration_open": "yes"}),
            json!({"smtp_port": 70000}),
            json!({"smtp_port": 25.5}),
            json!({"email_provider": "carrier-pigeon"}),
            json!({"lockout_max_attempts": 0}),
            json!({"app_name": 7}),
            json!({"no_such_setting": true}),
            json!({"app_name": "Changed", "smtp_tls": "maybe"}),
        ] {
            let resp = s.admin_patch("/api/v1/admin/settings", bad.clone()).await;
            assert_eq!(resp.status, 400, "{bad}: {}", resp.text);
            assert!(!resp.error().is_empty());
        }
        let settings = s.admin_get("/api/v1/admin/settings").await.body["settings"].clone();
        assert_eq!(settings["app_name"], "Ferrobase", "a refused change changes nothing");
        let audited = s.admin_get("/api/v1/admin/settings/audit").await.body["items"].clone();
        assert!(audited.as_array().unwrap().iter().all(|i| i["key"].as_str().unwrap().starts_with("rate_limit_")), "only the test server's own set-up: {audited}");
    }

    async fn every_change_is_audited_with_secrets_masked(s) {
        let before = s.admin_get("/api/v1/admin/settings/audit").await.body["total"].as_i64().unwrap();
        s.set_settings(json!({"app_name": "Demo", "smtp_password": "hunter2-secret"})).await;
        s.set_settings(json!({"app_name": "Demo 2"})).await;
        s.set_settings(json!({"app_name": "Demo 2"})).await;
        let audit = s.admin_get("/api/v1/admin/settings/audit").await;
        assert_eq!(audit.status, 200, "{}", audit.text);
        assert_eq!(audit.body["total"], before + 3, "an unchanged value is no change: {}", audit.text);
        let items = audit.body["items"].as_array().unwrap();
        assert_eq!((items[0]["key"].clone(), items[0]["old_value"].clone(), items[0]["new_value"].clone()), (json!("app_name"), json!("Demo"), json!("Demo 2")));
        assert_eq!(items[0]["actor"], "admin");
        assert!(items[0]["changed_at"].as_i64().unwrap() > 0);
        let password = items.iter().find(|i| i["key"] == "smtp_password").unwrap();
        assert_eq!((password["old_value"].clone(), password["new_value"].clone()), (json!(""), json!("********")));
        assert!(!audit.text.contains("hunter2"), "the audit log never shows a secret");
        let page = s.admin_get("/api/v1/admin/settings/audit?limit=1&offset=1").await;
        assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(page.body["items"][0]["key"], items[1]["key"]);
        assert_eq!(s.admin_get("/api/v1/admin/settings/audit?limit=0").await.status, 400);
        assert_eq!(s.get("/api/v1/admin/settings/audit").await.status, 401);
    }

    async fn settings_export_and_import_round_trip(s) {
        s.set_settings(json!({"app_name": "Exported", "registration_open": false, "resend_api_key": "re_secret_key"})).await;
        let export = s.admin_get("/api/v1/admin/settings/export").await;
        assert_eq!(export.status, 200);
        assert!(export.header("content-disposition").unwrap().starts_with("attachment;"));
        assert_eq!(export.body["settings"]["resend_api_key"], "********", "secrets are masked in exports");
        assert!(!export.text.contains("re_secret_key"));
        // Change things, then import the export back: every value returns, and the masked
        // secret keeps the stored one.
        s.set_settings(json!({"app_name": "Changed", "registration_open": true})).await;
        let imported = s.admin_post("/api/v1/admin/settings/import", export.body.clone()).await;
        assert_eq!(imported.status, 200, "{}", imported.text);
        let mut keys: Vec<Value> = imported.body["imported"].as_array().unwrap().clone();
        keys.sort_by_key(|k| k.as_str().unwrap().to_owned());
        assert_eq!(keys, [json!("app_name"), json!("registration_open")]);
        let now = s.admin_get("/api/v1/admin/settings").await.body["settings"].clone();
        assert_eq!(now, export.body["settings"]);
        let register = s.post("/api/v1/auth/register", json!({"email": "x@example.com", "password": "password-123"})).await;
        assert_eq!(register.status, 403, "the imported registration_open applies at once");
        // A plain object imports too; a bad one imports nothing.
        assert_eq!(s.admin_post("/api/v1/admin/settings/import", json!({"app_name": "Plain"})).await.status, 200);
        let refused = s.admin_post("/api/v1/admin/settings/import", json!({"settings": {"app_name": "Never", "smtp_port": "25"}})).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert_eq!(s.admin_get("/api/v1/admin/settings").await.body["settings"]["app_name"], "Plain");
        assert_eq!(s.admin_post("/api/v1/admin/settings/import", json!({"settings": 3})).await.status, 400);
        // A setting beside an export's `settings` is not dropped without a word.
        let beside = s.admin_post("/api/v1/admin/settings/import", json!({"settings": {"app_name": "Inner"}, "app_name": "Outer"})).await;
        assert_eq!((beside.status, beside.body["field"].as_str()), (400, Some("app_name")), "{}", beside.text);
        let dated = s.admin_post("/api/v1/admin/settings/import", json!({"exported_at": "yesterday", "settings": {"app_name": "Dated"}})).await;
        assert_eq!((dated.status, dated.body["field"].as_str()), (400, Some("exported_at")), "{}", dated.text);
        // An export of a format this server does not know is refused whole.
        for format in [json!(2), json!("1")] {
            let later = s.admin_post("/api/v1/admin/settings/import", json!({"ferrobase_settings": format, "settings": {"app_name": "Later"}})).await;
            assert_eq!((later.status, later.body["field"].as_str()), (400, Some("ferrobase_settings")), "{}", later.text);
        }
        // A setting is one line, and of a bounded length (MAX_SETTING_BYTES).
        for value in [json!("Ferro\r\nBcc: x@example.com"), json!("tab\there"), json!("x".repeat(4097))] {
            let refused = s.admin_patch("/api/v1/admin/settings", json!({"app_name": value})).await;
            assert_eq!(refused.status, 400, "{value}: {}", refused.text);
        }
        assert_eq!(s.admin_get("/api/v1/admin/settings").await.body["settings"]["app_name"], "Plain");
    }

    async fn a_test_email_goes_through_the_configured_provider(s) {
        let console = s.admin_post("/api/v1/admin/settings/test-email", json!({"to": "ops@example.com"})).await;
        assert_eq!(console.status, 200, "{}", console.text);
        assert_eq!((console.body["sent"].clone(), console.body["provider"].clone()), (json!(true), json!("console")));
        let mut inbox = mailbox::use_smtp(&s).await;
        let sent = s.admin_post("/api/v1/admin/settings/test-email", json!({"to": "ops@example.com"})).await;
        assert_eq!((sent.body["sent"].clone(), sent.body["provider"].clone()), (json!(true), json!("smtp")), "{}", sent.text);
        let mail = mailbox::next(&mut inbox).await;
        assert_eq!(mail.to, ["ops@example.com"]);
        assert!(mail.text.contains("test email"), "{}", mail.text);
        // A provider that cannot be reached is reported, not a server error.
        s.set_settings(json!({"smtp_port": 1})).await;
        let failed = s.admin_post("/api/v1/admin/settings/test-email", json!({"to": "ops@example.com"})).await;
        assert_eq!(failed.status, 200);
        assert_eq!(failed.body["sent"], false);
        assert!(!failed.body["error"].as_str().unwrap().is_empty());
        // So is one that accepts the connection and never speaks: the send gives up in time.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((conn, _)) = silent.accept().await {
                open.push(conn);
            }
        });
        s.set_settings(json!({"smtp_port": port})).await;
        let waited = s.admin_post("/api/v1/admin/settings/test-email", json!({"to": "ops@example.com"})).await;
        held.abort();
        assert_eq!((waited.status, waited.body["sent"].clone()), (200, json!(false)), "{}", waited.text);
        assert!(waited.body["error"].as_str().unwrap().contains("did not answer"), "{}", waited.text);
        assert_eq!(s.admin_post("/api/v1/admin/settings/test-email", json!({"to": "not an address"})).await.status, 400);
    }

    async fn maintenance_mode_turns_away_everyone_but_the_admin(s) {
        s.open_collection("posts").await;
        let token = s.register("alice@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
        s.set_settings(json!({"maintenance_mode": true})).await;
        for resp in [
            s.get("/api/v1/posts").await,
            s.as_user(Method::GET, "/api/v1/auth/me", &token, None).await,
            s.post("/api/v1/auth/login", json!({"email": "alice@example.com", "password": "password-123"})).await,
            s.get("/api/v1/tables/posts").await,
        ] {
            assert_eq!(resp.status, 503, "{}", resp.text);
            assert_eq!(resp.header("retry-after"), Some("60"));
            assert!(resp.error().contains("maintenance"));
        }
        // The admin, on any path, and the health check keep working.
        assert_eq!(s.get("/api/v1/admin/health").await.status, 200);
        assert_eq!(s.send(Method::GET, "/api/v1/posts", Some(ADMIN_SECRET), None).await.status, 200);
        assert_eq!(s.admin_get("/api/v1/admin/collections").await.status, 200);
        s.set_settings(json!({"maintenance_mode": false})).await;
        assert_eq!(s.get("/api/v1/posts").await.status, 200);
    }

    async fn health_checks_the_database_and_the_file_store(s) {
        let health = s.get("/api/v1/admin/health").await;
        assert_eq!(health.status, 200, "{}", health.text);
        assert_eq!(health.body["status"], "ok");
        assert_eq!((&health.body["checks"]["database"], &health.body["checks"]["storage"]), (&json!("ok"), &json!("ok")));
        assert_eq!(health.body["storage"], "local");
        // The file store gone: 503, naming what is down.
        let storage = s.data_dir().join("storage");
        std::fs::remove_dir_all(&storage).unwrap();
        std::fs::write(&storage, b"not a directory").unwrap();
        let down = s.get("/api/v1/admin/health").await;
        assert_eq!(down.status, 503, "{}", down.text);
        assert_eq!(down.body["checks"]["storage"], "unavailable");
        assert_eq!(down.body["checks"]["database"], "ok");
        // An upload meanwhile is a 503 too (the store failed, not the request), and leaves no
        // file behind.
        let upload = s
            .client
            .post(s.url("/api/v1/storage/default/notes.txt"))
            .bearer_auth(crate::harness::ADMIN_SECRET)
            .header("content-type", "text/plain")
            .body("while the store is down")
            .send()
            .await
            .unwrap();
        let upload = crate::harness::read(upload).await;
        assert_eq!(upload.status, 503, "{}", upload.text);
        assert!(!upload.text.contains("storage"), "no path or detail of the store: {}", upload.text);
        assert_eq!(s.admin_get("/api/v1/admin/storage").await.body["total"], 0);
        std::fs::remove_file(&storage).unwrap();
        std::fs::create_dir(&storage).unwrap();
        assert_eq!(s.get("/api/v1/admin/health").await.status, 200);
    }
}

/// `/metrics` parsed by the Prometheus Python client: `{family: [[sample, labels, value], …]}`.
fn parse_metrics(text: &str) -> Value {
    use std::io::Write;
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        families = {f.name: [[s.name, s.labels, s.value] for s in f.samples] for f in text_string_to_metric_families(sys.stdin.read())}\n\
        print(json.dumps(families))\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    // A parser that fails to start closes its stdin: the assertion below shows its stderr.
    let _ = child.stdin.take().unwrap().write_all(text.as_bytes());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Value>(&output.stdout).unwrap()
}

fn samples<'v>(families: &'v Value, family: &str) -> &'v Vec<Value> {
    families[family].as_array().unwrap_or_else(|| panic!("no family {family} in {families}"))
}

both_backends! {
    async fn metrics_parse_and_count_requests_by_route(s) {
        s.open_collection("posts").await;
        for _ in 0..3 {
            assert_eq!(s.get("/api/v1/posts").await.status, 200);
        }
        assert_eq!(s.get("/api/v1/posts/01900000-0000-7000-8000-000000000000").await.status, 404);
        // Methods a client makes up share one label: they cannot add series without end.
        for i in 0..5 {
            let method = Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
            s.client.request(method, s.url("/api/v1/posts")).send().await.unwrap();
        }
        let resp = s.client.get(s.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = resp.text().await.unwrap();
        let families = parse_metrics(&text);
        let requests = samples(&families, "ferrobase_http_requests");
        let count = |route: &str, status: &str| {
            requests
                .iter()
                .filter(|s| s[0] == "ferrobase_http_requests_total" && s[1]["route"] == route && s[1]["status"] == status && s[1]["method"] == "GET")
                .map(|s| s[2].as_f64().unwrap())
                .sum::<f64>()
        };
        assert!(count("/api/v1/{collection}", "200") >= 3.0, "{requests:?}");
        assert!(count("/api/v1/{collection}/{id}", "404") >= 1.0);
        assert!(!text.contains("01900000-0000"), "series are labelled by route template, not path");
        assert!(!text.contains("MADEUP"), "a made-up method is labelled other");
        let other: f64 = requests.iter().filter(|s| s[0] == "ferrobase_http_requests_total" && s[1]["method"] == "other").map(|s| s[2].as_f64().unwrap()).sum();
        assert!(other >= 5.0, "{other}: the recorder is the process's, shared by the tests running in it");
        let latency = samples(&families, "ferrobase_http_request_duration_seconds");
        assert!(latency.iter().any(|s| s[0] == "ferrobase_http_request_duration_seconds_bucket" && s[1]["le"] == "0.005"));
        for gauge in ["ferrobase_http_requests_in_flight", "ferrobase_db_connections", "ferrobase_sessions_active", "ferrobase_storage_bytes", "ferrobase_storage_files", "ferrobase_uptime_seconds"] {
            assert!(!samples(&families, gauge).is_empty(), "{gauge}");
        }
        assert!(!samples(&families, "ferrobase_db_pool_wait_seconds").is_empty());
        if s.backend == crate::harness::Backend::Sqlite {
            assert!(!samples(&families, "ferrobase_sqlite_wal_bytes").is_empty());
        }
        // An optional bearer token protects it.
        s.set_settings(json!({"metrics_token": "scrape-token-0123456789"})).await;
        assert_eq!(s.get("/metrics").await.status, 401);
        assert_eq!(s.send(Method::GET, "/metrics", Some("wrong"), None).await.status, 401);
        let scraped = s.client.get(s.url("/metrics")).bearer_auth("scrape-token-0123456789").send().await.unwrap();
        assert_eq!(scraped.status(), 200);
        // The scheme's name is case-insensitive, as scrapers may send it.
        let lower = s.client.get(s.url("/metrics")).header("authorization", "bearer scrape-token-0123456789").send().await.unwrap();
        assert_eq!(lower.status(), 200);
        assert_eq!(s.send(Method::GET, "/metrics", Some(ADMIN_SECRET), None).await.status, 200);
        assert_eq!(s.admin_get("/api/v1/admin/settings").await.body["settings"]["metrics_token"], "********");
    }

    async fn stats_count_what_the_server_holds(s) {
        s.open_collection("posts").await;
        s.register("a@example.com", "password-123").await;
        let b = s.register("b@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
        let posts = s.seed("posts", &[json!({"t": 1}), json!({"t": 2}), json!({"t": 3})]).await;
        let id = posts[0]["_id"].as_str().unwrap();
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/posts/{id}"), Some(ADMIN_SECRET), None).await.status, 200);
        let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(vec![7u8; 1234]).file_name("x.bin"));
        let up = s.client.post(s.url("/api/v1/storage/upload")).bearer_auth(&b).multipart(form).send().await.unwrap();
        assert_eq!(up.status(), 201);
        let stats = s.admin_get("/api/v1/admin/stats").await;
        assert_eq!(stats.status, 200, "{}", stats.text);
        let body = &stats.body;
        assert_eq!((body["users"].clone(), body["collections"].clone(), body["records"].clone()), (json!(2), json!(1), json!(2)), "{body}");
        assert_eq!((body["buckets"].clone(), body["files"].clone(), body["file_bytes"].clone()), (json!(1), json!(1), json!(1234)));
        assert_eq!(body["sessions_active"], 2);
        assert!(body["database_bytes"].as_i64().unwrap() > 0);
        assert!(body["requests"].as_u64().unwrap() >= 8);
        assert!(body["uptime_seconds"].as_u64().is_some());
        assert_eq!(s.get("/api/v1/admin/stats").await.status, 401);
    }
}

both_backends! {
    async fn each_class_has_its_own_budget_and_answers_429(s) {
        s.open_collection("posts").await;
        let alice = s.register("alice@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
        let bob = s.register("bob@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
        s.set_settings(json!({"rate_limit_public_reads": 3, "rate_limit_auth": 2, "rate_limit_crud": 2, "rate_limit_uploads": 1})).await;

        // Anonymous reads, by IP.
        for remaining in ["2", "1", "0"] {
            let resp = s.get("/api/v1/posts").await;
            assert_eq!(resp.status, 200, "{}", resp.text);
            assert_eq!((resp.header("x-ratelimit-limit"), resp.header("x-ratelimit-remaining")), (Some("3"), Some(remaining)));
            let reset: u64 = resp.header("x-ratelimit-reset").unwrap().parse().unwrap();
            assert!((1..=60).contains(&reset));
        }
        let asked = std::time::Instant::now();
        let refused = s.get("/api/v1/posts").await;
        assert_eq!(refused.status, 429);
        assert!(asked.elapsed() >= std::time::Duration::from_millis(900), "a refusal is held for RATE_LIMIT_HOLD_MS");
        assert_eq!(refused.error(), "Rate limit exceeded. Try again later.");
        let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
        assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
        assert_eq!(s.get("/api/v1/admin/health").await.status, 200, "health checks are not counted");

        // Signed-in users, each by themselves: anonymous refusals do not touch them.
        for _ in 0..2 {
            assert_eq!(s.as_user(Method::GET, "/api/v1/posts", &alice, None).await.status, 200);
        }
        assert_eq!(s.as_user(Method::GET, "/api/v1/posts", &alice, None).await.status, 429);
        assert_eq!(s.as_user(Method::GET, "/api/v1/posts", &bob, None).await.status, 200);
        // A made-up token or API key brings no budget of its own: it spends its client IP's,
        // which the anonymous reads above used up.
        let made_up = s.send_with(Method::GET, "/api/v1/posts", None, &[("x-api-key", "fb_madeup1")], None).await;
        assert_eq!(made_up.status, 429);
        assert_eq!(s.send(Method::GET, "/api/v1/posts", Some("made-up"), None).await.status, 429);

        // Sign-ins, by IP, whether they succeed or not, and whatever token comes along.
        let login = |password: &str| json!({"email": "alice@example.com", "password": password});
        let path = "/api/v1/auth/login";
        assert_eq!(s.send(Method::POST, path, Some("made-up"), Some(login("wrong-password"))).await.status, 401);
        assert_eq!(s.send(Method::POST, path, Some(&bob), Some(login("password-123"))).await.status, 200);
        let locked_out = s.send(Method::POST, path, Some(&bob), Some(login("password-123"))).await;
        assert_eq!(locked_out.status, 429);
        assert!(locked_out.header("retry-after").is_some());
        let forgot = s.send(Method::POST, "/api/v1/auth/forgot-password", Some(&bob), Some(json!({"email": "alice@example.com"}))).await;
        assert_eq!(forgot.status, 429, "mail is sent within the same budget");

        // Uploads, by user, apart from the user's other requests.
        let upload = |token: String| {
            let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x.txt"));
            s.client.post(s.url("/api/v1/storage/upload")).bearer_auth(token).multipart(form).send()
        };
        assert_eq!(upload(bob.clone()).await.unwrap().status(), 201);
        assert_eq!(upload(bob.clone()).await.unwrap().status(), 429);

        // The admin's budget, by IP: a client behind a trusted proxy, so that the admin calls
        // this test made before (under the default limit) do not count.
        s.set_settings(json!({"rate_limit_admin": 2, "trusted_proxies": "127.0.0.1, ::1"})).await;
        let stats = || s.send_with(Method::GET, "/api/v1/admin/stats", Some(ADMIN_SECRET), &[("x-forwarded-for", "7.7.7.7")], None);
        assert_eq!(stats().await.status, 200);
        assert_eq!(stats().await.status, 200);
        assert_eq!(stats().await.status, 429);
        // The admin secret on the data API is the operator's backend: not counted, neither in
        // the admin API's budget, which 7.7.7.7 has just spent, nor in the CRUD one (2).
        for n in 0..4 {
            let written = s.send_with(Method::POST, "/api/v1/admin_writes", Some(ADMIN_SECRET), &[("x-forwarded-for", "7.7.7.7")], Some(json!({"n": n}))).await;
            assert_eq!(written.status, 201, "{}", written.text);
        }
        let metrics = s.get("/metrics").await;
        assert!(metrics.text.contains("ferrobase_rate_limited_total{class=\"public\"}"), "{}", metrics.text);
    }

    async fn a_users_keys_and_tokens_share_one_budget(s) {
        s.open_collection("posts").await;
        let alice = s.register("alice@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
        s.set_settings(json!({"rate_limit_crud": 4})).await;
        let mut keys = Vec::new();
        for name in ["one", "two"] {
            let created = s.as_user(Method::POST, "/api/v1/auth/api-keys", &alice, Some(json!({"name": name}))).await;
            assert_eq!(created.status, 201, "{}", created.text);
            keys.push(created.body["key"].as_str().unwrap().to_owned());
        }
        // Two creations and one read with the token spend 3 of alice's 4; each key's first
        // use is an anonymous read (a key is not known before it authenticates).
        assert_eq!(s.as_user(Method::GET, "/api/v1/posts", &alice, None).await.status, 200);
        let mut statuses = Vec::new();
        for key in [&keys[0], &keys[1], &keys[0], &keys[1]] {
            statuses.push(s.send_with(Method::GET, "/api/v1/posts", None, &[("x-api-key", key.as_str())], None).await.status);
        }
        // The second use of a key spends the last of alice's budget; another key of hers
        // spends the same budget.
        assert_eq!(statuses, [200, 200, 200, 429]);
        assert_eq!(s.as_user(Method::GET, "/api/v1/posts", &alice, None).await.status, 429);
    }

    async fn forwarded_addresses_count_only_through_trusted_proxies(s) {
        s.open_collection("posts").await;
        s.set_settings(json!({"rate_limit_public_reads": 1})).await;
        let s = &s;
        let from = |ip: &'static str| async move { s.send_with(Method::GET, "/api/v1/posts", None, &[("x-forwarded-for", ip)], None).await };
        // Not a trusted proxy: the header is the client's own claim and is ignored.
        assert_eq!(from("1.1.1.1").await.status, 200);
        assert_eq!(from("2.2.2.2").await.status, 429);
        assert_eq!(s.admin_patch("/api/v1/admin/settings", json!({"trusted_proxies": "localhost"})).await.status, 400);
        s.set_settings(json!({"trusted_proxies": "127.0.0.1, ::1"})).await;
        assert_eq!(from("3.3.3.3").await.status, 200);
        assert_eq!(from("3.3.3.3").await.status, 429);
        assert_eq!(from("4.4.4.4").await.status, 200, "each forwarded client has its own budget");
        // Only the header the proxies manage is read: a Forwarded the client sent through a
        // proxy that sets X-Forwarded-For cannot pick its budget.
        let both = |forwarded: &'static str| async move {
            s.send_with(Method::GET, "/api/v1/posts", None, &[("x-forwarded-for", "4.4.4.4"), ("forwarded", forwarded)], None).await
        };
        assert_eq!(both("for=5.5.5.5").await.status, 429, "4.4.4.4 spent its budget");
        assert_eq!(s.admin_patch("/api/v1/admin/settings", json!({"client_ip_header": "x-real-ip"})).await.status, 400);
        s.set_settings(json!({"client_ip_header": "forwarded"})).await;
        assert_eq!(both("for=5.5.5.5").await.status, 200);
        assert_eq!(both("for=5.5.5.5").await.status, 429);
        assert_eq!(both("for=6.6.6.6").await.status, 200, "X-Forwarded-For is now the client's own");
        s.set_settings(json!({"client_ip_header": "x-forwarded-for"})).await;
        // Sessions record the forwarded address too.
        s.set_settings(json!({"rate_limit_public_reads": 0})).await;
        s.register("ip@example.com", "password-123").await;
        let login = s.send_with(Method::POST, "/api/v1/auth/login", None, &[("x-forwarded-for", "9.9.9.9")], Some(json!({"email": "ip@example.com", "password": "password-123"}))).await;
        assert_eq!(login.status, 200);
        let sessions = s.admin_get("/api/v1/admin/sessions").await;
        assert!(sessions.body["items"].as_array().unwrap().iter().any(|s| s["ip"] == "9.9.9.9"), "{}", sessions.text);
    }

}

/// Two instances with one `REDIS_URL` count one budget, on either backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_one_budget_through_redis() {
    use crate::harness::{Backend, TestServer};
    let redis = crate::harness::redis_url();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(server) = TestServer::start_with(backend, |c| c.redis_url = Some(redis.clone())).await else {
            continue;
        };
        server.open_collection("posts").await;
        server.set_settings(json!({"rate_limit_public_reads": 4})).await;
        let other = server.another_instance().await;
        let mut statuses = Vec::new();
        for n in 0..6 {
            let url = if n % 2 == 0 { server.url("/api/v1/posts") } else { other.url("/api/v1/posts") };
            statuses.push(server.client.get(url).send().await.unwrap().status().as_u16());
        }
        assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "{backend:?}: one budget across both instances");
    }
}

/// A Redis that does not answer keeps no server from starting, and the limits still hold,
/// counted in the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_is_down_leaves_the_limits_to_the_process() {
    use crate::harness::{Backend, TestServer};
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = format!("redis://127.0.0.1:{port}");
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.redis_url = Some(down)).await.expect("the server starts");
    server.open_collection("posts").await;
    server.set_settings(json!({"rate_limit_public_reads": 3})).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(server.get("/api/v1/posts").await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
}

/// Two instances on one PostgreSQL database behave as one service: a setting changed on one
/// applies on the other (announced through the change feed), a session revoked on one is
/// refused by the other at once, and a collection made on one is served by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behave_as_one_service() {
    use crate::harness::{Backend, TestServer};
    let Some(s) = TestServer::start(Backend::Postgres).await else { return };
    let other = s.another_instance().await;
    let client = &s.client;

    // The other instance listens once a record written here reaches its feed.
    let mut feed = other.changes();
    let health = client.get(other.url("/api/v1/admin/health")).send().await.unwrap();
    assert_eq!(health.json::<serde_json::Value>().await.unwrap()["checks"]["feed"], "listening");
    s.open_collection("pings").await;
    s.seed("pings", &[json!({"n": 1})]).await;
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if feed.recv().await.unwrap().collection == "pings" {
                return;
            }
        }
    });
    heard.await.expect("the other instance listens");

    // A setting: the other instance's feed carries the news and it re-reads at once.
    s.set_settings(json!({"registration_open": false})).await;
    let news = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let event = feed.recv().await.unwrap();
            if event.collection == ferrobase::data::SETTINGS_TABLE {
                return event;
            }
        }
    })
    .await
    .expect("the other instance hears of the change");
    assert!(news.record.is_none());
    let register = || {
        client
            .post(other.url("/api/v1/auth/register"))
            .json(&json!({"email": "late@example.com", "password": "password-123"}))
            .send()
    };
    // The re-read follows the news on the other instance's own task; bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = register().await.unwrap().status().as_u16();
        if status == 403 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the other instance still registers ({status})");
        tokio::task::yield_now().await;
    }
    s.set_settings(json!({"registration_open": true})).await;

    // A session revoked on one instance is refused by the other at once.
    let token = s.register("both@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
    let me = || client.get(other.url("/api/v1/auth/me")).bearer_auth(&token).send();
    assert_eq!(me().await.unwrap().status(), 200);
    assert_eq!(s.as_user(Method::POST, "/api/v1/auth/logout", &token, None).await.status, 200);
    assert_eq!(me().await.unwrap().status(), 401);

    // A collection and its rules made on one instance are served by the other.
    let created = s.admin_post("/api/v1/admin/collections", json!({"name": "shared", "rules": {"read": "public", "create": "disabled", "update": "disabled", "delete": "disabled"}})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    s.seed("shared", &[json!({"title": "from one"})]).await;
    // The field the seed added reaches the other instance with the news of the change.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let listed: Value = client.get(other.url("/api/v1/shared")).send().await.unwrap().json().await.unwrap();
        if listed["items"][0]["title"] == "from one" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the other instance lists {listed}");
        tokio::task::yield_now().await;
    }
    let refused = client.post(other.url("/api/v1/shared")).json(&json!({"title": "anonymous"})).send().await.unwrap();
    assert_eq!(refused.status(), 401, "the rule made on one instance applies on the other");
    let by_user = client
        .post(other.url("/api/v1/shared"))
        .bearer_auth(s.register("writer@example.com", "password-123").await["access_token"].as_str().unwrap())
        .json(&json!({"title": "a user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_user.status(), 403, "disabled for signed-in users too");
}

/// Rules, validation and fields changed through one instance apply on the other at once: the
/// other never accepts a write the new rules refuse for the length of a periodic re-read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_and_rules_changed_on_one_instance_apply_on_the_other_at_once() {
    use crate::harness::{Backend, TestServer};
    let Some(s) = TestServer::start(Backend::Postgres).await else { return };
    let other = s.another_instance().await;
    let client = &s.client;
    let token = s.register("writer@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
    let created = s.admin_post("/api/v1/admin/collections", json!({"name": "notes"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let post =
        |title: &str| client.post(other.url("/api/v1/notes")).bearer_auth(&token).json(&json!({"title": title})).send();
    let status = |resp: reqwest::Result<reqwest::Response>| resp.unwrap().status().as_u16();
    // The other instance knows the collection as it was made.
    until_status("made", 201, || async { status(post("first").await) }).await;

    let patched = s.admin_patch("/api/v1/admin/collections/notes", json!({"rules": {"create": "disabled"}})).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    until_status("create disabled", 403, || async { status(post("refused").await) }).await;
    s.admin_patch("/api/v1/admin/collections/notes", json!({"rules": {"create": "authenticated"}})).await;
    until_status("create allowed again", 201, || async { status(post("allowed").await) }).await;

    let rules = s
        .send(
            Method::PUT,
            "/api/v1/admin/collections/notes/rules",
            Some(ADMIN_SECRET),
            Some(json!({"title": {"max_length": 3}})),
        )
        .await;
    assert_eq!(rules.status, 200, "{}", rules.text);
    until_status("validation", 400, || async { status(post("far too long").await) }).await;

    // A field one instance's write adds is known to the other.
    s.seed("notes", &[json!({"title": "abc", "views": 3})]).await;
    let views = || client.get(other.url("/api/v1/notes?filter=views:gt:1")).send();
    until_status("new field", 200, || async { status(views().await) }).await;
    let dropped = s.send(Method::DELETE, "/api/v1/admin/collections/notes", Some(ADMIN_SECRET), None).await;
    assert!(dropped.status < 300, "{}", dropped.text);
    until_status("dropped", 404, || async { status(client.get(other.url("/api/v1/notes")).send().await) }).await;
}

/// Connections the database ends (a restart, a failover) are answered 503, never 500, and the
/// server recovers on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_database_connections_are_a_503_and_heal() {
    use crate::harness::{Backend, TestServer};
    let Some(s) = TestServer::start(Backend::Postgres).await else { return };
    s.open_collection("notes").await;
    s.seed("notes", &[json!({"title": "kept"})]).await;
    // Requests run while the connections are ended under them.
    let reads = async {
        let mut statuses = Vec::new();
        for _ in 0..200 {
            statuses.push(s.get("/api/v1/notes?limit=500").await.status);
        }
        statuses
    };
    let ends = async {
        for _ in 0..10 {
            // This server's connections carry the test schema's name as their application name.
            s.exec_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = current_setting('application_name') AND pid <> pg_backend_pid()",
            )
            .await;
        }
    };
    let (statuses, ()) = tokio::join!(reads, ends);
    assert!(statuses.iter().all(|s| [200, 503].contains(s)), "{statuses:?}");
    until_status("healed", 200, || async { s.get("/api/v1/notes").await.status }).await;
    let health = s.get("/api/v1/admin/health").await;
    assert_eq!(health.status, 200, "{}", health.text);
}

both_backends! {
    async fn operations_endpoints_are_the_admins(s) {
        let user = s.register("ops-user@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
        let before = s.admin_get("/api/v1/admin/settings").await.body.clone();
        for (method, path) in [
            (Method::GET, "/api/v1/admin/stats"),
            (Method::POST, "/api/v1/admin/backup"),
            (Method::POST, "/api/v1/admin/restart"),
            (Method::GET, "/api/v1/admin/settings/audit"),
            (Method::GET, "/api/v1/admin/settings/export"),
            (Method::POST, "/api/v1/admin/settings/import"),
            (Method::POST, "/api/v1/admin/settings/test-email"),
            (Method::GET, "/api/v1/admin/storage"),
            (Method::GET, "/api/v1/admin/buckets"),
        ] {
            let body = Some(json!({"app_name": "Taken", "to": "x@example.com"}));
            let anonymous = s.send(method.clone(), path, None, body.clone()).await;
            assert_eq!(anonymous.status, 401, "{method} {path}: {}", anonymous.text);
            assert!(!anonymous.error().is_empty());
            let signed_in = s.as_user(method.clone(), path, &user, body).await;
            assert!(signed_in.status == 401 || signed_in.status == 403, "{method} {path}: {}", signed_in.text);
        }
        assert_eq!(s.admin_get("/api/v1/admin/settings").await.body, before, "refused imports change nothing");
        // A server embedded in another program (this test's) cannot restart itself.
        let restart = s.send(Method::POST, "/api/v1/admin/restart", Some(ADMIN_SECRET), None).await;
        assert_eq!(restart.status, 409, "{}", restart.text);
        assert!(restart.error().contains("restart"));
        assert_eq!(s.get("/api/v1/admin/health").await.status, 200);
    }
}
