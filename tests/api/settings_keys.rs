//! Every runtime setting drives the behaviour it names, at once. The keys that other suites
//! already show at work are listed in [`SHOWN_ELSEWHERE`]; the rest are shown here. A key
//! added without a test showing it fails `every_setting_is_shown_at_work`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::mailbox;

/// Keys shown at work by other suites, and the test that shows each.
const SHOWN_ELSEWHERE: &[(&str, &str)] = &[
    ("auto_create_buckets", "storage::missing_buckets_are_created_only_when_the_setting_says"),
    ("maintenance_mode", "operations::maintenance_mode_turns_away_everyone_but_the_admin"),
    ("registration_open", "auth_security::single_session_mode_and_closed_registration"),
    ("single_session_mode", "auth_security::single_session_mode_and_closed_registration"),
    ("lockout_max_attempts", "auth_security::lockout_after_failed_logins_survives_a_restart"),
    ("lockout_duration_ms", "auth_security::lockout_after_failed_logins_survives_a_restart"),
    ("email_provider", "operations::a_test_email_goes_through_the_configured_provider"),
    ("app_url", "auth_email::verification_mail_over_smtp"),
    ("smtp_host", "auth_email::verification_mail_over_smtp"),
    ("smtp_port", "operations::a_test_email_goes_through_the_configured_provider"),
    ("smtp_tls", "auth_email::verification_mail_over_smtp"),
    ("resend_api_key", "auth_email::resend_provider_sends_what_the_api_expects"),
    ("resend_api_url", "auth_email::resend_provider_sends_what_the_api_expects"),
    ("metrics_token", "operations::metrics_parse_and_count_requests_by_route"),
    ("rate_limit_public_reads", "operations::each_class_has_its_own_budget_and_answers_429"),
    ("rate_limit_auth", "operations::each_class_has_its_own_budget_and_answers_429"),
    ("rate_limit_crud", "operations::each_class_has_its_own_budget_and_answers_429"),
    ("rate_limit_admin", "operations::forwarded_addresses_count_only_through_trusted_proxies"),
    ("rate_limit_uploads", "operations::each_class_has_its_own_budget_and_answers_429"),
    ("trusted_proxies", "operations::forwarded_addresses_count_only_through_trusted_proxies"),
    ("client_ip_header", "operations::forwarded_addresses_count_only_through_trusted_proxies"),
    ("log_level", "cli::log_level_applies_at_once"),
];

/// Keys shown at work in this file.
const SHOWN_HERE: &[&str] = &[
    "auto_create_collections",
    "access_token_ttl_seconds",
    "refresh_token_ttl_days",
    "refresh_token_reuse_interval_seconds",
    "password_min_length",
    "require_email_verification",
    "smtp_username",
    "smtp_password",
    "cors_origins",
    "app_name",
    "email_from",
];

/// The claims of a JWT (not verified: the server that issued it is the one under test).
fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn access_token(answer: &Value) -> String {
    answer["access_token"].as_str().unwrap().to_owned()
}

const DAY_MS: i64 = 24 * 3600 * 1000;

both_backends! {
    async fn every_setting_is_shown_at_work(s) {
        let settings = s.admin_get("/api/v1/admin/settings").await.body["settings"].clone();
        let keys: Vec<&String> = settings.as_object().unwrap().keys().collect();
        for key in &keys {
            let shown = SHOWN_HERE.contains(&key.as_str()) || SHOWN_ELSEWHERE.iter().any(|(k, _)| k == key);
            assert!(shown, "no test shows the setting '{key}' at work");
        }
        for key in SHOWN_HERE.iter().copied().chain(SHOWN_ELSEWHERE.iter().map(|(k, _)| *k)) {
            assert!(keys.iter().any(|k| *k == key), "'{key}' is listed but is no setting");
        }
    }

    async fn auto_create_collections_decides_whether_a_write_creates(s) {
        let token = access_token(&s.register("writer@example.com", "password-123").await);
        let created = s.as_user(Method::POST, "/api/v1/notes", &token, Some(json!({"title": "first"}))).await;
        assert_eq!(created.status, 201, "on by default: a write creates its collection: {}", created.text);
        let added = s.as_user(Method::POST, "/api/v1/notes", &token, Some(json!({"title": "second", "pinned": true}))).await;
        assert_eq!(added.status, 201, "and adds the fields it brings: {}", added.text);

        // A refused first write leaves no collection behind: the collection is made by the
        // write's own transaction.
        let refusals = [
            ("/api/v1/ghosts", json!({"bad name": 1})),
            ("/api/v1/ghosts/bulk", json!([{"n": 1}, {"n": "one"}])),
            ("/api/v1/ghosts/batch", json!({"operations": [{"op": "create", "data": {"n": 1}}, {"op": "delete", "id": "nope"}]})),
        ];
        for (path, body) in refusals {
            let refused = s.as_user(Method::POST, path, &token, Some(body.clone())).await;
            assert!(matches!(refused.status, 400 | 404), "{path} {body}: {} {}", refused.status, refused.text);
            assert_eq!(s.admin_get("/api/v1/admin/collections/ghosts").await.status, 404, "{path} {body} left a collection");
        }
        let first = s.as_user(Method::POST, "/api/v1/ghosts/bulk", &token, Some(json!([{"n": 1}, {"n": 2, "label": "b"}]))).await;
        assert_eq!(first.status, 201, "{}", first.text);
        let listed = s.admin_get("/api/v1/ghosts?sort=n").await;
        assert_eq!(listed.body["total"], 2, "{}", listed.text);
        assert_eq!(listed.body["items"][1]["label"], "b");

        s.set_settings(json!({"auto_create_collections": false})).await;
        let missing = s.as_user(Method::POST, "/api/v1/drafts", &token, Some(json!({"title": "x"}))).await;
        assert_eq!(missing.status, 404, "{}", missing.text);
        assert!(missing.error().contains("drafts"), "{}", missing.text);
        let unknown = s.as_user(Method::POST, "/api/v1/notes", &token, Some(json!({"title": "third", "colour": "red"}))).await;
        assert_eq!(unknown.status, 400, "{}", unknown.text);
        assert!(unknown.error().contains("colour"), "{}", unknown.text);
        let schema = s.admin_get("/api/v1/admin/collections/notes").await;
        assert!(!schema.text.contains("colour"), "a refused field adds no column: {}", schema.text);
        assert_eq!(s.admin_get("/api/v1/admin/collections/drafts").await.status, 404);
        let known = s.as_user(Method::POST, "/api/v1/notes", &token, Some(json!({"title": "third", "pinned": false}))).await;
        assert_eq!(known.status, 201, "known fields still write: {}", known.text);
    }

    async fn access_token_ttl_seconds_sets_the_token_lifetime(s) {
        let first = s.register("ttl@example.com", "password-123").await;
        assert_eq!(first["expires_in"], 900);
        let c = claims(&access_token(&first));
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);

        s.set_settings(json!({"access_token_ttl_seconds": 120})).await;
        let login = s.login("ttl@example.com", "password-123").await;
        assert_eq!(login.body["expires_in"], 120, "{}", login.text);
        let c = claims(&access_token(&login.body));
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 120);
        let refresh = login.body["refresh_token"].as_str().unwrap();
        let refreshed = s.post("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await;
        assert_eq!(refreshed.body["expires_in"], 120, "a refreshed token too: {}", refreshed.text);
    }

    async fn refresh_token_reuse_interval_seconds_lets_racing_refreshes_through(s) {
        let user = s.register("race@example.com", "password-123").await;
        let first = user["refresh_token"].clone();
        s.set_settings(json!({"refresh_token_reuse_interval_seconds": 60})).await;
        let a = s.post("/api/v1/auth/refresh", json!({"refresh_token": first})).await;
        let b = s.post("/api/v1/auth/refresh", json!({"refresh_token": first})).await;
        assert_eq!((a.status, b.status), (200, 200), "{} {}", a.text, b.text);
        assert_ne!(a.body["refresh_token"], b.body["refresh_token"]);
        for answer in [&a.body, &b.body] {
            assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &access_token(answer), None).await.status, 200);
        }
        // Without the interval, the same reuse is a replay: the session ends, every token of it.
        s.set_settings(json!({"refresh_token_reuse_interval_seconds": 0})).await;
        let replayed = s.post("/api/v1/auth/refresh", json!({"refresh_token": first})).await;
        assert_eq!(replayed.status, 401, "{}", replayed.text);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &access_token(&a.body), None).await.status, 401);
        let after = s.post("/api/v1/auth/refresh", json!({"refresh_token": b.body["refresh_token"]})).await;
        assert_eq!(after.status, 401, "{}", after.text);
        let refused = s.admin_patch("/api/v1/admin/settings", json!({"refresh_token_reuse_interval_seconds": 301})).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
    }

    async fn refresh_token_ttl_days_sets_the_session_lifetime(s) {
        s.set_settings(json!({"refresh_token_ttl_days": 2})).await;
        let user = s.register("days@example.com", "password-123").await;
        let id = user["user"]["id"].as_str().unwrap();
        let sessions = s.admin_get(&format!("/api/v1/admin/sessions?user_id={id}")).await;
        let session = &sessions.body["items"][0];
        let lifetime = session["expires_at"].as_i64().unwrap() - session["created_at"].as_i64().unwrap();
        assert_eq!(lifetime, 2 * DAY_MS, "{}", sessions.text);

        // A refresh extends the session by the lifetime in force at the time.
        s.set_settings(json!({"refresh_token_ttl_days": 7})).await;
        let refreshed = s.post("/api/v1/auth/refresh", json!({"refresh_token": user["refresh_token"]})).await;
        assert_eq!(refreshed.status, 200, "{}", refreshed.text);
        let sessions = s.admin_get(&format!("/api/v1/admin/sessions?user_id={id}")).await;
        let session = &sessions.body["items"][0];
        let lifetime = session["expires_at"].as_i64().unwrap() - session["last_used_at"].as_i64().unwrap();
        assert_eq!(lifetime, 7 * DAY_MS, "{}", sessions.text);
    }

    async fn password_min_length_applies_to_new_passwords(s) {
        s.set_settings(json!({"password_min_length": 12})).await;
        let short = s.post("/api/v1/auth/register", json!({"email": "short@example.com", "password": "elevenchars"})).await;
        assert_eq!(short.status, 400, "{}", short.text);
        assert!(short.error().contains("12"), "the answer names the minimum: {}", short.text);
        assert_eq!(s.login("short@example.com", "elevenchars").await.status, 401, "a refused registration creates no user");
        let long = s.post("/api/v1/auth/signup", json!({"email": "long@example.com", "password": "twelve-chars"})).await;
        assert_eq!(long.status, 201, "{}", long.text);

        s.set_settings(json!({"password_min_length": 4})).await;
        let four = s.post("/api/v1/auth/register", json!({"email": "four@example.com", "password": "four"})).await;
        assert_eq!(four.status, 201, "a lower minimum applies at once: {}", four.text);
    }

    async fn require_email_verification_holds_sign_in_until_verified(s) {
        let mut inbox = mailbox::use_smtp(&s).await;
        s.set_settings(json!({"require_email_verification": true})).await;
        let registered = s.post("/api/v1/auth/register", json!({"email": "unverified@example.com", "password": "password-123"})).await;
        assert_eq!(registered.status, 201, "{}", registered.text);
        assert_eq!(registered.body["email_verification_required"], true);
        assert!(registered.body.get("access_token").is_none(), "no session before verification: {}", registered.text);
        let refused = s.login("unverified@example.com", "password-123").await;
        assert_eq!(refused.status, 403, "{}", refused.text);
        assert!(refused.error().contains("verify"), "{}", refused.text);

        let mail = mailbox::next(&mut inbox).await;
        assert_eq!(s.post("/api/v1/auth/verify-email", json!({"token": mail.token()})).await.status, 200);
        assert_eq!(s.login("unverified@example.com", "password-123").await.status, 200);

        // Off again: an address not verified signs in.
        s.register("later@example.com", "password-123").await;
        let _ = mailbox::next(&mut inbox).await;
        s.set_settings(json!({"require_email_verification": false})).await;
        assert_eq!(s.login("later@example.com", "password-123").await.status, 200);
    }

    async fn app_name_and_email_from_appear_in_mail(s) {
        let mut inbox = mailbox::use_smtp(&s).await;
        s.set_settings(json!({"app_name": "Acme Notes", "email_from": "hello@acme.test"})).await;
        s.register("named@example.com", "password-123").await;
        let mail = mailbox::next(&mut inbox).await;
        assert!(mail.text.contains("Subject: Verify your email for Acme Notes"), "{}", mail.text);
        assert!(mail.text.contains("From: \"Acme Notes\" <hello@acme.test>"), "{}", mail.text);

        s.set_settings(json!({"app_name": "Acme 2"})).await;
        s.post("/api/v1/auth/forgot-password", json!({"email": "named@example.com"})).await;
        let reset = mailbox::next(&mut inbox).await;
        assert!(reset.text.contains("Acme 2"), "{}", reset.text);
    }

    async fn smtp_username_and_password_sign_in_to_the_mail_server(s) {
        let mut s = s;
        let (port, mut inbox) = mailbox::smtp_server_requiring("mailer", "relay-password").await;
        s.set_settings(json!({
            "email_provider": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none",
        }))
        .await;
        let test_email = || s.admin_post("/api/v1/admin/settings/test-email", json!({"to": "ops@example.com"}));
        let anonymous = test_email().await;
        assert_eq!(anonymous.body["sent"], false, "the relay refuses mail without a login: {}", anonymous.text);

        s.set_settings(json!({"smtp_username": "mailer", "smtp_password": "wrong-password"})).await;
        let wrong = test_email().await;
        assert_eq!(wrong.body["sent"], false, "{}", wrong.text);

        s.set_settings(json!({"smtp_password": "relay-password"})).await;
        let sent = test_email().await;
        assert_eq!(sent.body["sent"], true, "{}", sent.text);
        assert_eq!(mailbox::next(&mut inbox).await.to, ["ops@example.com"]);
        assert_eq!(s.admin_get("/api/v1/admin/settings").await.body["settings"]["smtp_password"], "********");

        // Stored sealed: neither the database nor a backup of it holds the password in clear.
        let in_clear = "SELECT COUNT(*) FROM _fb_settings WHERE CAST(value AS TEXT) LIKE '%relay-password%'";
        assert_eq!(s.sql_i64(in_clear).await, 0);
        assert_eq!(s.sql_i64("SELECT COUNT(*) FROM _fb_settings WHERE key = 'smtp_password'").await, 1);
        s.restart().await;
        let after_restart = s.admin_post("/api/v1/admin/settings/test-email", json!({"to": "ops@example.com"})).await;
        assert_eq!(after_restart.body["sent"], true, "the sealed password opens again: {}", after_restart.text);
        assert_eq!(mailbox::next(&mut inbox).await.to, ["ops@example.com"]);
    }

    async fn a_secret_an_earlier_version_stored_in_clear_is_sealed_at_start(s) {
        let mut s = s;
        let (port, mut inbox) = mailbox::smtp_server_requiring("mailer", "old-password").await;
        s.set_settings(json!({
            "email_provider": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none",
            "smtp_username": "mailer",
        }))
        .await;
        s.exec_sql(
            "INSERT INTO _fb_settings (key, value, updated_at) VALUES ('smtp_password', '\"old-password\"', 0)",
        )
        .await;
        s.restart().await;
        let in_clear = "SELECT COUNT(*) FROM _fb_settings WHERE CAST(value AS TEXT) LIKE '%old-password%'";
        assert_eq!(s.sql_i64(in_clear).await, 0, "sealed at start");
        let sent = s.admin_post("/api/v1/admin/settings/test-email", json!({"to": "ops@example.com"})).await;
        assert_eq!(sent.body["sent"], true, "{}", sent.text);
        assert_eq!(mailbox::next(&mut inbox).await.to, ["ops@example.com"]);
    }

    async fn cors_origins_decide_which_pages_may_call(s) {
        let preflight = |origin: &'static str| {
            s.client
                .request(Method::OPTIONS, s.url("/api/v1/auth/login"))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "content-type")
                .send()
        };
        let allowed = |resp: &reqwest::Response| {
            resp.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
        };
        let any = preflight("https://anywhere.example").await.unwrap();
        assert_eq!(allowed(&any).as_deref(), Some("*"), "any origin by default");
        // The headers asked for are named back: a `*` would not cover Authorization.
        let with_token = s.client.request(Method::OPTIONS, s.url("/api/v1/posts"))
            .header("Origin", "https://anywhere.example")
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization, x-api-key")
            .send().await.unwrap();
        let headers = with_token.headers().get("access-control-allow-headers").map(|v| v.to_str().unwrap().to_ascii_lowercase());
        assert_eq!(headers.as_deref(), Some("authorization, x-api-key"));

        s.set_settings(json!({"cors_origins": "https://app.example.com, https://*.preview.example.com"})).await;
        let app = preflight("https://app.example.com").await.unwrap();
        assert_eq!(allowed(&app).as_deref(), Some("https://app.example.com"));
        assert!(app.headers()["vary"].to_str().unwrap().to_ascii_lowercase().contains("origin"));
        let preview = preflight("https://pr-12.preview.example.com").await.unwrap();
        assert_eq!(allowed(&preview).as_deref(), Some("https://pr-12.preview.example.com"));
        for other in ["https://anywhere.example", "http://app.example.com", "https://app.example.com.evil.example"] {
            assert_eq!(allowed(&preflight(other).await.unwrap()), None, "{other}");
        }
        let read = s.client.get(s.url("/api/v1/admin/health")).header("Origin", "https://anywhere.example").send().await.unwrap();
        assert!(read.headers().get("access-control-allow-origin").is_none());

        for bad in [json!({"cors_origins": "app.example.com"}), json!({"cors_origins": "https://app.example.com/path"}), json!({"cors_origins": 1})] {
            let refused = s.admin_patch("/api/v1/admin/settings", bad.clone()).await;
            assert_eq!(refused.status, 400, "{bad}: {}", refused.text);
        }
        s.set_settings(json!({"cors_origins": "*"})).await;
        assert_eq!(allowed(&preflight("https://anywhere.example").await.unwrap()).as_deref(), Some("*"));
    }
}
