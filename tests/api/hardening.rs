//! Hostile input, authorization edges and account-takeover paths found by review: each is a
//! clear 4xx that changes nothing, never a 500, a crash or a change someone was refused.

use ferrobase::auth::totp::code_for;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, Backend, TestServer};
use crate::mailbox::{next, use_smtp};

fn token(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_owned()
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

/// The names of a collection's fields, from the admin schema.
async fn fields(s: &TestServer, collection: &str) -> Vec<String> {
    let schema = s.admin_get(&format!("/api/v1/admin/collections/{collection}/schema")).await;
    assert_eq!(schema.status, 200, "{}", schema.text);
    schema.body["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

/// `or=(or(or(…a.eq.1…)))`, `depth` groups deep.
fn nested_or(column: &str, depth: usize) -> String {
    format!("({}{column}.eq.1{})", "or(".repeat(depth - 1), ")".repeat(depth - 1))
}

fn secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Turns TOTP 2FA on for the holder of `t`.
async fn enable_totp(s: &TestServer, t: &str) -> String {
    let setup = s.as_user(Method::POST, "/api/v1/auth/2fa/setup", t, None).await;
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    // The code of the previous step: the current one stays unspent for the sign-in.
    let code = code_for(&secret, secs() - 30).unwrap();
    let enabled = s.as_user(Method::POST, "/api/v1/auth/2fa/enable", t, Some(json!({"code": code}))).await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    secret
}

both_backends! {
    async fn deeply_nested_filters_are_refused_and_the_server_lives(s) {
        s.open_collection("posts").await;
        s.seed("posts", &[json!({"title": "a"})]).await;
        // About 20 KB of query string, sent anonymously: once enough to overflow the stack.
        for column in ["nosuch", "title"] {
            for depth in [9, 3_000, 5_000] {
                let value = nested_or(column, depth);
                for path in ["/api/v1/posts", "/api/v1/posts/count", "/api/v1/tables/posts"] {
                    let resp = s.get(&format!("{path}?or={value}")).await;
                    assert_eq!(resp.status, 400, "{path} depth {depth}: {}", resp.text);
                    assert!(resp.error().contains("MAX_FILTER_DEPTH"), "{}", resp.error());
                }
            }
        }
        let deepest = s.get(&format!("/api/v1/posts?or={}", nested_or("title", 8))).await;
        assert_eq!(deepest.status, 200, "{}", deepest.text);
        assert_eq!(deepest.body["total"], 0);

        // Too many conditions, too many `in` values, too long a URL: each names its limit.
        let many: Vec<String> = (0..101).map(|i| format!("title.eq.{i}")).collect();
        let resp = s.get(&format!("/api/v1/tables/posts?or=({})", many.join(","))).await;
        assert_eq!(resp.status, 400);
        assert!(resp.error().contains("MAX_CONDITIONS"), "{}", resp.error());
        let values: Vec<String> = (0..501).map(|i| i.to_string()).collect();
        let resp = s.get(&format!("/api/v1/posts?filter=title:in:{}", values.join("|"))).await;
        assert_eq!(resp.status, 400);
        assert!(resp.error().contains("MAX_IN_VALUES"), "{}", resp.error());
        for keys in [33, 2_000] {
            let sort = vec!["title"; keys].join(",");
            for path in [format!("/api/v1/posts?sort={sort}"), format!("/api/v1/tables/posts?order={sort}")] {
                let resp = s.get(&path).await;
                assert_eq!(resp.status, 400, "{keys} sort keys: {}", resp.text);
                assert!(resp.error().contains("MAX_SORT_KEYS"), "{}", resp.error());
            }
        }
        let sort = vec!["-title"; 32].join(",");
        assert_eq!(s.get(&format!("/api/v1/posts?sort={sort}")).await.status, 200);
        let resp = s.get(&format!("/api/v1/posts?title=eq.{}", "x".repeat(40_000))).await;
        assert_eq!(resp.status, 414, "{}", resp.text);
        assert!(resp.error().contains("MAX_URL_BYTES"));
        // Headers past MAX_HEADER_BYTES, in one header or spread over several.
        let big = "x".repeat(70_000);
        let quarter = "y".repeat(17_000);
        let spread: Vec<(&str, &str)> = ["x-a", "x-b", "x-c", "x-d"].into_iter().map(|n| (n, quarter.as_str())).collect();
        for headers in [vec![("x-padding", big.as_str())], spread] {
            let resp = s.send_with(Method::GET, "/api/v1/posts", None, &headers, None).await;
            assert_eq!(resp.status, 431, "{}", resp.text);
            assert!(resp.error().contains("MAX_HEADER_BYTES"), "{}", resp.error());
        }
        let within = "z".repeat(60_000);
        let resp = s.send_with(Method::GET, "/api/v1/posts", None, &[("x-padding", within.as_str())], None).await;
        assert_eq!(resp.status, 200, "{}", resp.text);

        let alive = s.get("/api/v1/posts").await;
        assert_eq!(alive.status, 200);
        assert_eq!(alive.body["total"], 1);
    }

    async fn a_refused_delete_changes_no_related_record(s) {
        // Default rules: anyone reads, the owner changes and deletes.
        for c in ["authors", "posts", "notes"] {
            s.admin_post("/api/v1/admin/collections", json!({"name": c})).await;
        }
        for (collection, on_delete) in [("posts", "cascade"), ("notes", "set_null")] {
            let body = json!({"collection": collection, "field": "author", "target": "authors", "on_delete": on_delete});
            assert_eq!(s.admin_post("/api/v1/admin/relations", body).await.status, 201);
        }
        let a = token(&s.register("a@example.com", "password1").await);
        let b = token(&s.register("b@example.com", "password1").await);
        let author = id(&s.as_user(Method::POST, "/api/v1/authors", &a, Some(json!({"name": "A"}))).await.body);
        let post = id(&s.as_user(Method::POST, "/api/v1/posts", &a, Some(json!({"author": author}))).await.body);
        let note = id(&s.as_user(Method::POST, "/api/v1/notes", &a, Some(json!({"author": author}))).await.body);

        let refused = [
            s.as_user(Method::DELETE, &format!("/api/v1/authors/{author}"), &b, None).await,
            s.as_user(Method::POST, "/api/v1/authors/batch", &b, Some(json!({"operations": [{"op": "delete", "id": author}]}))).await,
            s.as_user(Method::DELETE, &format!("/api/v1/tables/authors/{author}"), &b, None).await,
            s.as_user(Method::DELETE, &format!("/api/v1/tables/authors?_id=eq.{author}"), &b, None).await,
        ];
        assert_eq!(refused[0].status, 403, "{}", refused[0].text);
        assert_eq!(refused[1].status, 404, "{}", refused[1].text);
        assert_eq!(refused[2].status, 403, "{}", refused[2].text);
        assert_eq!(refused[3].status, 204, "matches none of b's rows: {}", refused[3].text);
        // Nothing changed: the author, the cascaded post and the nulled reference are all there.
        assert_eq!(s.get(&format!("/api/v1/authors/{author}")).await.status, 200);
        assert_eq!(s.get(&format!("/api/v1/posts/{post}")).await.status, 200, "the cascade did not run");
        assert_eq!(s.get(&format!("/api/v1/notes/{note}")).await.body["author"], author.as_str(), "set_null did not run");

        // The owner's delete runs the effects.
        assert_eq!(s.as_user(Method::DELETE, &format!("/api/v1/authors/{author}"), &a, None).await.status, 200);
        assert_eq!(s.get(&format!("/api/v1/posts/{post}")).await.status, 404);
        assert!(s.get(&format!("/api/v1/notes/{note}")).await.body["author"].is_null());
    }

    async fn a_restrict_relation_is_not_revealed_to_a_stranger(s) {
        s.admin_post("/api/v1/admin/collections", json!({"name": "authors", "rules": {"read": "owner"}})).await;
        s.open_collection("posts").await;
        let rel = json!({"collection": "posts", "field": "author", "target": "authors", "on_delete": "restrict"});
        assert_eq!(s.admin_post("/api/v1/admin/relations", rel).await.status, 201);
        let a = token(&s.register("a@example.com", "password1").await);
        let b = token(&s.register("b@example.com", "password1").await);
        let author = id(&s.as_user(Method::POST, "/api/v1/authors", &a, Some(json!({"name": "A"}))).await.body);
        s.seed("posts", &[json!({"author": author})]).await;
        // B may not see A's author: a 404 as for a missing record, not the 409 of the restrict.
        let resp = s.as_user(Method::DELETE, &format!("/api/v1/authors/{author}"), &b, None).await;
        assert_eq!(resp.status, 404, "{}", resp.text);
        let resp = s.as_user(Method::DELETE, &format!("/api/v1/authors/{author}"), &a, None).await;
        assert_eq!(resp.status, 409, "{}", resp.text);
    }

    async fn a_2fa_setup_racing_its_enable_never_leaves_a_secret_the_authenticator_lacks(s) {
        for round in 0..6 {
            let email = format!("otp{round}@example.com");
            let t = token(&s.register(&email, "password1").await);
            let setup = s.as_user(Method::POST, "/api/v1/auth/2fa/setup", &t, None).await;
            let secret = setup.body["secret"].as_str().unwrap().to_owned();
            let code = code_for(&secret, secs() - 30).unwrap();
            let (enabled, set_up_again) = futures_util::future::join(
                s.as_user(Method::POST, "/api/v1/auth/2fa/enable", &t, Some(json!({"code": code}))),
                s.as_user(Method::POST, "/api/v1/auth/2fa/setup", &t, None),
            )
            .await;
            assert!([200, 400, 409].contains(&enabled.status), "{}", enabled.text);
            assert!([200, 409].contains(&set_up_again.status), "{}", set_up_again.text);
            let on = s.as_user(Method::GET, "/api/v1/auth/me", &t, None).await.body["totp_enabled"] == true;
            assert_eq!(on, enabled.status == 200, "enable answered {}: {}", enabled.status, enabled.text);
            if !on {
                continue;
            }
            // Enabled: the secret the authenticator confirmed is the one sign-ins check.
            assert_eq!(set_up_again.status, 409, "{}", set_up_again.text);
            let challenge = s.login(&email, "password1").await;
            let totp_token = challenge.body["totp_token"].as_str().unwrap();
            let code = code_for(&secret, secs()).unwrap();
            let done = s.post("/api/v1/auth/2fa/verify", json!({"totp_token": totp_token, "code": code})).await;
            assert_eq!(done.status, 200, "{}", done.text);
        }
    }

    async fn a_magic_link_ends_in_the_second_factor(s) {
        let mut mail = use_smtp(&s).await;
        let reg = s.register("otp@example.com", "password1").await;
        let _verification = next(&mut mail).await;
        let secret = enable_totp(&s, &token(&reg)).await;

        s.post("/api/v1/auth/magic-link", json!({"email": "otp@example.com"})).await;
        let link = next(&mut mail).await;
        let challenge = s.post("/api/v1/auth/magic-link/verify", json!({"token": link.token()})).await;
        assert_eq!(challenge.status, 200, "{}", challenge.text);
        assert_eq!(challenge.body["totp_required"], true, "{}", challenge.text);
        assert!(challenge.body.get("access_token").is_none(), "no tokens before the second factor");
        let totp_token = challenge.body["totp_token"].as_str().unwrap();
        let wrong = s.post("/api/v1/auth/2fa/verify", json!({"totp_token": totp_token, "code": "000000"})).await;
        assert_eq!(wrong.status, 401);
        let code = code_for(&secret, secs()).unwrap();
        let done = s.post("/api/v1/auth/2fa/verify", json!({"totp_token": totp_token, "code": code})).await;
        assert_eq!(done.status, 200, "{}", done.text);
        assert!(done.body["access_token"].is_string());

        // The tables surface's spellings end in its own challenge.
        for verify in ["post", "get"] {
            s.post("/api/v1/auth/magiclink", json!({"email": "otp@example.com"})).await;
            let link = next(&mut mail).await;
            let resp = if verify == "post" {
                s.post("/api/v1/auth/magiclink/verify", json!({"token": link.token()})).await
            } else {
                s.get(&format!("/api/v1/auth/magiclink/verify?token={}", link.token())).await
            };
            assert_eq!(resp.status, 200, "{}", resp.text);
            assert_eq!(resp.body["requires_2fa"], true, "{verify}: {}", resp.text);
            assert!(resp.body.get("access_token").is_none());
        }
    }

    async fn an_access_token_alone_cannot_take_the_account(s) {
        let mut mail = use_smtp(&s).await;
        let first = token(&s.register("owner@example.com", "password1").await);
        let _verification = next(&mut mail).await;
        let second = token(&s.login("owner@example.com", "password1").await.body);
        let patch = |t: &str, body: Value| {
            let t = t.to_owned();
            let s = &s;
            async move { s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(body)).await }
        };

        // Email changes need the current password.
        let resp = patch(&first, json!({"email": "thief@example.com"})).await;
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert_eq!(resp.body["field"], "current_password");
        let resp = patch(&first, json!({"email": "thief@example.com", "current_password": "guess"})).await;
        assert_eq!(resp.status, 400);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &first, None).await.body["email"], "owner@example.com");
        let resp = patch(&first, json!({"email": "new@example.com", "current_password": "password1"})).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.body["email"], "new@example.com");
        let verification = next(&mut mail).await;
        assert_eq!(verification.to, vec!["new@example.com"], "the new address gets its verification link");
        assert!(verification.text.contains("/verify-email?token="), "{}", verification.text);

        // A password change ends the user's other sessions, and keeps the one that asked.
        let resp = patch(&first, json!({"password": "password2", "current_password": "password1"})).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &second, None).await.status, 401);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &first, None).await.status, 200);

        // An account without a password confirms a new address from its current one.
        s.post("/api/v1/auth/magic-link", json!({"email": "nopass@example.com"})).await;
        let link = next(&mut mail).await;
        let nopass = token(&s.post("/api/v1/auth/magic-link/verify", json!({"token": link.token()})).await.body);
        let resp = patch(&nopass, json!({"email": "moved@example.com"})).await;
        assert_eq!(resp.status, 202, "{}", resp.text);
        assert_eq!(resp.body["email_change_pending"], true);
        assert_eq!(resp.body["user"]["email"], "nopass@example.com", "not changed yet");
        let confirm = next(&mut mail).await;
        assert_eq!(confirm.to, vec!["nopass@example.com"], "the confirmation goes to the current address");
        assert!(confirm.text.contains("/confirm-email-change?token="), "{}", confirm.text);
        let bad = s.post("/api/v1/auth/confirm-email-change", json!({"token": "made-up"})).await;
        assert_eq!(bad.status, 400);
        let done = s.post("/api/v1/auth/confirm-email-change", json!({"token": confirm.token()})).await;
        assert_eq!(done.status, 200, "{}", done.text);
        assert_eq!(done.body["email"], "moved@example.com");
        assert_eq!(done.body["email_verified"], false, "the new address is verified anew");
        let verification = next(&mut mail).await;
        assert_eq!(verification.to, vec!["moved@example.com"], "from the link mailed to it");
        assert_eq!(s.post("/api/v1/auth/verify-email", json!({"token": verification.token()})).await.status, 200);
        let again = s.post("/api/v1/auth/confirm-email-change", json!({"token": confirm.token()})).await;
        assert_eq!(again.status, 400, "single use");
    }

    async fn refused_writes_change_no_schema(s) {
        // Default rules: the owner updates; the create rule is then closed to anonymous callers.
        s.admin_post("/api/v1/admin/collections", json!({"name": "posts"})).await;
        let rules = json!({"title": {"type": "string", "required": true}});
        assert_eq!(s.send(Method::PUT, "/api/v1/admin/collections/posts/rules", Some(ADMIN_SECRET), Some(rules)).await.status, 200);
        let a = token(&s.register("a@example.com", "password1").await);
        let b = token(&s.register("b@example.com", "password1").await);
        let post = id(&s.as_user(Method::POST, "/api/v1/posts", &a, Some(json!({"title": "t"}))).await.body);
        let before = fields(&s, "posts").await;
        let missing = "01900000-0000-7000-8000-000000000000";

        let attempts = [
            (s.as_user(Method::PATCH, &format!("/api/v1/posts/{post}"), &b, Some(json!({"b1": 1}))).await, 403),
            (s.as_user(Method::PATCH, &format!("/api/v1/posts/{missing}"), &a, Some(json!({"b2": 1}))).await, 404),
            (s.as_user(Method::POST, "/api/v1/posts/batch", &b, Some(json!({"operations": [
                {"op": "create", "data": {"title": "x", "b3": 1}},
                {"op": "update", "id": post, "data": {"b4": 1}},
            ]}))).await, 404),
            (s.as_user(Method::POST, "/api/v1/posts/batch", &a, Some(json!({"operations": [
                {"op": "update", "id": missing, "data": {"b5": 1}},
            ]}))).await, 404),
            (s.post("/api/v1/posts", json!({"title": "x", "b6": 1})).await, 401),
            (s.send(Method::POST, "/api/v1/posts/bulk", None, Some(json!([{"title": "x", "b7": 1}]))).await, 401),
            // A write that fails validation or a type check adds no field either.
            (s.as_user(Method::POST, "/api/v1/posts", &a, Some(json!({"b8": 1}))).await, 400),
            (s.as_user(Method::POST, "/api/v1/posts", &a, Some(json!({"title": 5, "b9": 1}))).await, 400),
            (s.as_user(Method::POST, "/api/v1/posts/bulk", &a, Some(json!([{"title": "ok", "b10": 1}, {"b11": 1}]))).await, 400),
            (s.as_user(Method::PATCH, &format!("/api/v1/posts/{post}"), &a, Some(json!({"title": null, "b12": 1}))).await, 400),
        ];
        for (i, (resp, status)) in attempts.iter().enumerate() {
            assert_eq!(resp.status, *status, "attempt {i}: {}", resp.text);
        }
        assert_eq!(fields(&s, "posts").await, before, "no refused write added a field");
        assert_eq!(s.get("/api/v1/posts/count").await.body["count"], 1);
        // An allowed write still adds its field.
        let ok = s.as_user(Method::PATCH, &format!("/api/v1/posts/{post}"), &a, Some(json!({"extra": 1}))).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        assert!(fields(&s, "posts").await.contains(&"extra".to_owned()));
    }

    async fn engine_reserved_field_names_are_refused(s) {
        s.open_collection("posts").await;
        s.seed("posts", &[json!({"title": "hello world"})]).await;
        for name in ["rank", "RANK", "rowid", "oid", "_rowid_", "xmin", "ctid", "tableoid"] {
            let resp = s.post("/api/v1/posts", json!({"title": "x", name: "y"})).await;
            assert_eq!(resp.status, 400, "{name}: {}", resp.text);
            if !name.starts_with('_') {
                assert_eq!(resp.body["field"], name);
            }
        }
        let rules = json!({"rank": {"type": "string"}});
        assert_eq!(s.send(Method::PUT, "/api/v1/admin/collections/posts/rules", Some(ADMIN_SECRET), Some(rules)).await.status, 400);
        let fields_then = fields(&s, "posts").await;
        assert!(!fields_then.iter().any(|f| f.eq_ignore_ascii_case("rank") || f == "rowid"), "{fields_then:?}");
        let found = s.get("/api/v1/posts?search=hello").await;
        assert_eq!(found.status, 200, "{}", found.text);
        assert_eq!(found.body["total"], 1);
    }

    async fn new_fields_and_columns_are_capped(s) {
        s.open_collection("wide").await;
        let body = |from: usize, n: usize| -> Value {
            Value::Object((from..from + n).map(|i| (format!("f{i}"), json!(i))).collect())
        };
        let resp = s.post("/api/v1/wide", body(0, 51)).await;
        assert_eq!(resp.status, 400);
        assert!(resp.error().contains("MAX_NEW_FIELDS_PER_WRITE"), "{}", resp.error());
        let resp = s.post("/api/v1/wide/bulk", json!([body(0, 30), body(30, 30)])).await;
        assert_eq!(resp.status, 400);
        assert_eq!(fields(&s, "wide").await.len(), 5, "only the system fields");
        // Up to MAX_COLUMNS (500, system fields included), 50 new fields a write.
        for batch in 0..9 {
            assert_eq!(s.post("/api/v1/wide", body(batch * 50, 50)).await.status, 201);
        }
        assert_eq!(s.post("/api/v1/wide", body(450, 45)).await.status, 201);
        assert_eq!(fields(&s, "wide").await.len(), 500);
        let resp = s.post("/api/v1/wide", body(495, 1)).await;
        assert_eq!(resp.status, 400);
        assert!(resp.error().contains("MAX_COLUMNS"), "{}", resp.error());
        let rules = json!({"another": {"type": "string"}});
        assert_eq!(s.send(Method::PUT, "/api/v1/admin/collections/wide/rules", Some(ADMIN_SECRET), Some(rules)).await.status, 400);
        assert_eq!(fields(&s, "wide").await.len(), 500);
        assert_eq!(s.post("/api/v1/wide", body(0, 50)).await.status, 201, "existing fields are still written");
    }

    async fn collections_are_capped(s) {
        // Up to MAX_COLLECTIONS (1,000), made 25 at a time.
        for chunk in 0..40 {
            let made = (0..25).map(|i| {
                let req = s.client.post(s.url("/api/v1/admin/collections")).bearer_auth(ADMIN_SECRET).json(&json!({"name": format!("c{}", chunk * 25 + i)}));
                async move { crate::harness::read(req.send().await.unwrap()).await }
            });
            for resp in futures_util::future::join_all(made).await {
                assert_eq!(resp.status, 201, "{}", resp.text);
            }
        }
        let refused = s.admin_post("/api/v1/admin/collections", json!({"name": "one_more"})).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert!(refused.error().contains("MAX_COLLECTIONS"), "{}", refused.error());
        // A first write to a collection that does not exist is refused alike, and makes nothing.
        let refused = s.send(Method::POST, "/api/v1/one_more", Some(ADMIN_SECRET), Some(json!({"a": 1}))).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert!(refused.error().contains("MAX_COLLECTIONS"), "{}", refused.error());
        assert_eq!(s.admin_get("/api/v1/admin/collections/one_more").await.status, 404);
        // Dropping one makes room for one.
        assert_eq!(s.admin_delete("/api/v1/admin/collections/c7").await.status, 200);
        assert_eq!(s.admin_post("/api/v1/admin/collections", json!({"name": "one_more"})).await.status, 201);
        assert_eq!(s.admin_post("/api/v1/admin/collections", json!({"name": "two_more"})).await.status, 400);
    }

    async fn a_user_holds_at_most_max_sessions_and_the_oldest_end_first(s) {
        let first = s.register("many@example.com", "password1").await;
        let second = s.login("many@example.com", "password1").await;
        assert_eq!(second.status, 200, "{}", second.text);
        // 99 more sign-ins: 101 in all, one past MAX_SESSIONS_PER_USER (100). (Three at a time:
        // more sign-ins of one account at once than `lockout_max_attempts` are refused.)
        for _ in 0..33 {
            let logins = (0..3).map(|_| s.login("many@example.com", "password1"));
            for resp in futures_util::future::join_all(logins).await {
                assert_eq!(resp.status, 200, "{}", resp.text);
            }
        }
        // The oldest session ended: its access and refresh tokens are refused.
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &token(&first), None).await.status, 401);
        let refreshed = s.post("/api/v1/auth/refresh", json!({"refresh_token": first["refresh_token"]})).await;
        assert_eq!(refreshed.status, 401, "{}", refreshed.text);
        // The next one lives on, and so do the newest.
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &token(&second.body), None).await.status, 200);
        let user = first["user"]["id"].as_str().unwrap();
        let sessions = s.admin_get(&format!("/api/v1/admin/sessions?user_id={user}&limit=200")).await;
        assert_eq!(sessions.status, 200, "{}", sessions.text);
        let items = sessions.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 101, "{}", sessions.text);
        assert_eq!(items.iter().filter(|x| x["active"] == true).count(), 100);
    }

    async fn many_relation_values_are_bounded_and_lookups_chunked(s) {
        for c in ["tags", "posts"] {
            s.open_collection(c).await;
        }
        let rel = json!({"collection": "posts", "field": "tags", "target": "tags", "many": true});
        assert_eq!(s.admin_post("/api/v1/admin/relations", rel).await.status, 201);
        // MAX_RELATION_IDS (1,000) tags, made in two bulks; `name` is the tag's number.
        let mut real: Vec<String> = Vec::new();
        for half in 0..2 {
            let tags: Vec<Value> = (0..500).map(|i| json!({"name": format!("t{}", half * 500 + i)})).collect();
            let made = s.admin_post("/api/v1/tags/bulk", json!(tags)).await;
            assert_eq!(made.status, 201, "{}", made.text);
            real.extend(made.body["items"].as_array().unwrap().iter().map(id));
        }
        // The real ids, turned by `turn` places, and one more (made up) past the limit.
        let ids = |turn: usize, over: bool| -> Vec<String> {
            let mut ids = real.clone();
            ids.rotate_left(turn);
            if over {
                ids.push("01900000-0000-7000-8000-000000000000".to_owned());
            }
            ids
        };
        let resp = s.post("/api/v1/posts", json!({"tags": ids(0, true)})).await;
        assert_eq!(resp.status, 400);
        assert_eq!(resp.body["field"], "tags");
        assert!(resp.error().contains("MAX_RELATION_IDS"), "{}", resp.error());
        let first = id(&s.post("/api/v1/posts", json!({"tags": []})).await.body);
        let resp = s.send(Method::PATCH, &format!("/api/v1/posts/{first}"), None, Some(json!({"tags": ids(1, true)}))).await;
        assert_eq!(resp.status, 400);
        let resp = s.post("/api/v1/tables/posts", json!({"tags": ids(2, true)})).await;
        assert_eq!(resp.status, 400, "{}", resp.text);

        // At the limit, pages that hold several such records expand and embed, in the order
        // each record lists its ids.
        for turn in [3, 4, 5] {
            assert_eq!(s.post("/api/v1/posts", json!({"tags": ids(turn, false)})).await.status, 201);
        }
        let names = |turn: usize| -> Vec<Value> { (0..1000).map(|i| json!(format!("t{}", (i + turn) % 1000))).collect() };
        let page = s.get("/api/v1/posts?expand=tags&sort=_created_at").await;
        assert_eq!(page.status, 200, "{}", page.text);
        let expanded = page.body["items"][1]["expand"]["tags"].as_array().unwrap_or_else(|| panic!("{}", page.text));
        let expanded: Vec<Value> = expanded.iter().map(|t| t["name"].clone()).collect();
        assert_eq!(expanded, names(3));
        let embedded = s.get("/api/v1/tables/posts?select=_id,tags(name)&order=_created_at").await;
        assert_eq!(embedded.status, 200, "{}", embedded.text);
        let embedded: Vec<Value> = embedded.body[3]["tags"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect();
        assert_eq!(embedded, names(5));
    }

    async fn values_past_the_databases_own_limits_and_trigger_refusals_are_4xx(s) {
        // A unique field's index takes about 2.7 KB of text on PostgreSQL; SQLite has no such
        // limit. Either way the answer is not a 500, and a refusal writes nothing.
        s.open_collection("tags").await;
        let rules = s.send(Method::PUT, "/api/v1/admin/collections/tags/rules", Some(ADMIN_SECRET), Some(json!({"t": {"type": "string", "unique": true}}))).await;
        assert_eq!(rules.status, 200, "{}", rules.text);
        // Random letters (xorshift), which PostgreSQL's compression cannot shrink below the limit.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let long: String = (0..4000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'a' + (state % 26) as u8)
            })
            .collect();
        let resp = s.post("/api/v1/tags", json!({"t": long})).await;
        match s.backend {
            Backend::Sqlite => assert_eq!(resp.status, 201, "{}", resp.text),
            Backend::Postgres => {
                assert_eq!(resp.status, 400, "{}", resp.text);
                assert!(resp.error().contains("too large"), "{}", resp.error());
                assert_eq!(s.get("/api/v1/tags/count").await.body["count"], 0);
            }
        }
        // A trigger of a table made with plain SQL refuses a row: 400 with its message.
        let trigger = match s.backend {
            Backend::Sqlite => "CREATE TABLE guarded (id INTEGER PRIMARY KEY, v INTEGER); \
                CREATE TRIGGER no_negatives BEFORE INSERT ON guarded WHEN NEW.v < 0 \
                BEGIN SELECT RAISE(ABORT, 'v must not be negative'); END;",
            Backend::Postgres => "CREATE TABLE guarded (id SERIAL PRIMARY KEY, v INTEGER); \
                CREATE FUNCTION no_negatives() RETURNS trigger AS $$ BEGIN \
                IF NEW.v < 0 THEN RAISE EXCEPTION 'v must not be negative'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
                CREATE TRIGGER no_negatives BEFORE INSERT ON guarded FOR EACH ROW EXECUTE FUNCTION no_negatives();",
        };
        s.exec_sql(trigger).await;
        let refused = s.send(Method::POST, "/api/v1/tables/guarded", Some(ADMIN_SECRET), Some(json!({"v": -1}))).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert!(refused.error().contains("v must not be negative"), "{}", refused.error());
        let kept = s.send(Method::POST, "/api/v1/tables/guarded", Some(ADMIN_SECRET), Some(json!({"v": 1}))).await;
        assert_eq!(kept.status, 201, "{}", kept.text);
        let rows = s.send(Method::GET, "/api/v1/tables/guarded?select=v", Some(ADMIN_SECRET), None).await;
        assert_eq!(rows.body, json!([{"v": 1}]));
        // PostgreSQL's integer ranges and vectors are served as their text, not as integers.
        if s.backend == Backend::Postgres {
            s.exec_sql("CREATE TABLE spans (id INTEGER PRIMARY KEY, r int4range, v int2vector); \
                INSERT INTO spans VALUES (1, '[1,5)', '1 2')").await;
            let rows = s.send(Method::GET, "/api/v1/tables/spans", Some(ADMIN_SECRET), None).await;
            assert_eq!(rows.status, 200, "{}", rows.text);
            assert_eq!(rows.body, json!([{"id": 1, "r": "[1,5)", "v": "1 2"}]));
        }
    }

    async fn a_unique_rule_takes_the_place_of_a_plain_index_on_its_field(s) {
        // `tags` holds one "small", `dupes` two.
        for (name, copies) in [("tags", 1), ("dupes", 2)] {
            s.open_collection(name).await;
            for _ in 0..copies {
                assert_eq!(s.post(&format!("/api/v1/{name}"), json!({"t": "small"})).await.status, 201);
            }
            let index = s.admin_post(&format!("/api/v1/admin/collections/{name}/indexes"), json!({"column": "t"})).await;
            assert_eq!(index.status, 201, "{}", index.text);
        }
        let unique = json!({"t": {"unique": true}});
        let indexes = |name: &'static str| {
            let s = &s;
            async move {
                let listed = s.admin_get(&format!("/api/v1/admin/collections/{name}/indexes")).await;
                let on_t: Vec<Value> = listed.body["indexes"].as_array().unwrap().iter().filter(|ix| ix["columns"][0] == "t").cloned().collect();
                on_t
            }
        };
        let rules = s.send(Method::PUT, "/api/v1/admin/collections/tags/rules", Some(ADMIN_SECRET), Some(unique.clone())).await;
        assert_eq!(rules.status, 200, "{}", rules.text);
        let on_t = indexes("tags").await;
        assert_eq!((on_t.len(), &on_t[0]["unique"]), (1, &json!(true)), "{on_t:?}");
        assert_eq!(s.post("/api/v1/tags", json!({"t": "small"})).await.status, 409);
        // Values that break the rule refuse it, and the plain index stays.
        let refused = s.send(Method::PUT, "/api/v1/admin/collections/dupes/rules", Some(ADMIN_SECRET), Some(unique)).await;
        assert_eq!(refused.status, 409, "{}", refused.text);
        let on_t = indexes("dupes").await;
        assert_eq!((on_t.len(), &on_t[0]["unique"]), (1, &json!(false)), "{on_t:?}");
    }

    async fn answers_embedding_too_many_copies_of_related_records_are_refused(s) {
        for c in ["labels", "boards"] {
            s.open_collection(c).await;
        }
        let rel = json!({"collection": "boards", "field": "labels", "target": "labels", "many": true});
        assert_eq!(s.admin_post("/api/v1/admin/relations", rel).await.status, 201);
        let mut labels = Vec::new();
        for half in 0..2 {
            let records: Vec<Value> = (0..500).map(|i| json!({"n": half * 500 + i})).collect();
            let made = s.admin_post("/api/v1/labels/bulk", json!(records)).await;
            assert_eq!(made.status, 201, "{}", made.text);
            labels.extend(made.body["items"].as_array().unwrap().iter().map(id));
        }
        // 60 boards that each list the same 1,000 labels: 60,000 copies in one full answer.
        let boards: Vec<Value> = (0..60).map(|_| json!({"labels": labels})).collect();
        assert_eq!(s.admin_post("/api/v1/boards/bulk", json!(boards)).await.status, 201);
        for path in ["/api/v1/boards?expand=labels&limit=60", "/api/v1/tables/boards?select=_id,labels(n)"] {
            let resp = s.get(path).await;
            assert_eq!(resp.status, 400, "{path}: {}", &resp.text[..resp.text.len().min(300)]);
            assert!(resp.error().contains("MAX_EMBEDDED_RECORDS"), "{}", resp.error());
        }
        // A smaller page embeds them all.
        let page = s.get("/api/v1/boards?expand=labels&limit=40").await;
        assert_eq!(page.status, 200);
        assert_eq!(page.body["items"][39]["expand"]["labels"].as_array().unwrap().len(), 1000);
        let rows = s.get("/api/v1/tables/boards?select=_id,labels(n)&limit=40").await;
        assert_eq!(rows.status, 200);
        assert_eq!(rows.body[0]["labels"].as_array().unwrap().len(), 1000);
        // The limit holds for all the embeds of an answer together: the same relation
        // embedded twice under two names holds twice the copies.
        let twice = s.get("/api/v1/tables/boards?select=_id,a:labels(n),b:labels(n)&limit=40").await;
        assert_eq!(twice.status, 400, "{}", &twice.text[..twice.text.len().min(300)]);
        assert!(twice.error().contains("MAX_EMBEDDED_RECORDS"), "{}", twice.error());
        let halves = s.get("/api/v1/tables/boards?select=_id,a:labels(n),b:labels(n)&limit=20").await;
        assert_eq!(halves.status, 200, "{}", &halves.text[..halves.text.len().min(300)]);
    }

    async fn the_search_index_is_not_built_for_a_refused_caller(s) {
        s.admin_post("/api/v1/admin/collections", json!({"name": "secret", "rules": {"read": "authenticated"}})).await;
        s.seed("secret", &[json!({"title": "hidden words"})]).await;
        let index_built = match s.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE name = '_fb_fts_secret'",
            Backend::Postgres => "SELECT COUNT(*) FROM information_schema.columns \
                                  WHERE table_schema = current_schema() AND table_name = 'secret' AND column_name = '_fb_search'",
        };
        for path in [
            "/api/v1/secret?search=hidden",
            "/api/v1/secret/count?search=hidden",
            "/api/v1/secret/aggregate?op=count&search=hidden",
            "/api/v1/tables/secret?title=fts.hidden",
        ] {
            let resp = s.get(path).await;
            assert_eq!(resp.status, 401, "{path}: {}", resp.text);
        }
        let del = s.send(Method::DELETE, "/api/v1/tables/secret?title=fts.hidden", None, None).await;
        assert!(del.status == 401 || del.status == 403, "{}", del.text);
        assert_eq!(s.sql_i64(index_built).await, 0, "no index was built for refused callers");
        let found = s.admin_get("/api/v1/secret?search=hidden").await;
        assert_eq!(found.body["total"], 1);
        assert_eq!(s.sql_i64(index_built).await, 1, "an allowed search builds it");
    }

    async fn bad_input_that_was_a_500_is_a_4xx(s) {
        for name in ["sqlite_x", "sqlite_stat1", "pg_x", "pg_class"] {
            let resp = s.admin_post("/api/v1/admin/collections", json!({"name": name})).await;
            assert_eq!(resp.status, 400, "{name}: {}", resp.text);
            let resp = s.admin_post(&format!("/api/v1/{name}"), json!({"a": 1})).await;
            assert_eq!(resp.status, 400, "{name}: {}", resp.text);
        }
        // A table name longer than PostgreSQL's identifiers.
        let long = "t".repeat(100);
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let resp = s.send(method.clone(), &format!("/api/v1/tables/{long}/1"), None, Some(json!({}))).await;
            assert_eq!(resp.status, 404, "{method}: {}", resp.text);
        }
        // A sum past the 64-bit range.
        s.open_collection("nums").await;
        s.seed("nums", &[json!({"n": i64::MAX}), json!({"n": i64::MAX})]).await;
        let resp = s.get("/api/v1/nums/aggregate?op=sum&field=n").await;
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert_eq!(s.get("/api/v1/nums/aggregate?op=avg&field=n").await.status, 200);
        // A number past i64 makes a real field, not an integer field it cannot fit.
        let big = s.post("/api/v1/nums", json!({"huge": 18446744073709551615u64})).await;
        assert_eq!(big.status, 201, "{}", big.text);

        // A single-object upsert that answers no row is a 406, not a crash.
        s.exec_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)").await;
        s.exec_sql("INSERT INTO items (id, name) VALUES (1, 'one')").await;
        let headers = [("prefer", "resolution=ignore-duplicates,return=representation"), ("accept", "application/vnd.pgrst.object+json")];
        let resp = s.send_with(Method::POST, "/api/v1/tables/items", Some(ADMIN_SECRET), &headers, Some(json!({"id": 1, "name": "again"}))).await;
        assert_eq!(resp.status, 406, "{}", resp.text);
        let plain = [("prefer", "resolution=ignore-duplicates")];
        let resp = s.send_with(Method::POST, "/api/v1/tables/items", Some(ADMIN_SECRET), &plain, Some(json!({"id": 1, "name": "again"}))).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        assert_eq!(s.send(Method::GET, "/api/v1/tables/items/1", Some(ADMIN_SECRET), None).await.body["name"], "one");
    }

    async fn validation_rule_types_take_json_type_names(s) {
        s.open_collection("scores").await;
        s.seed("scores", &[json!({"n": 1, "r": 0.5, "label": "x", "meta": {}})]).await;
        let rules = json!({
            "n": {"type": "number", "min": 0},
            "r": {"type": "number", "max": 1},
            "label": {"type": "string", "max_length": 3},
            "meta": {"type": "object"},
            "tags": {"type": "array"},
            "done": {"type": "boolean"},
            "count": {"type": "integer"},
        });
        let resp = s.send(Method::PUT, "/api/v1/admin/collections/scores/rules", Some(ADMIN_SECRET), Some(rules)).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let types: Vec<(String, String)> = s.admin_get("/api/v1/admin/collections/scores/schema").await.body["columns"]
            .as_array().unwrap().iter()
            .map(|c| (c["name"].as_str().unwrap().to_owned(), c["type"].as_str().unwrap().to_owned()))
            .collect();
        for (field, ty) in [("tags", "json"), ("done", "boolean"), ("count", "integer"), ("n", "integer")] {
            assert!(types.contains(&(field.to_owned(), ty.to_owned())), "{field} {ty}: {types:?}");
        }
        for (body, field) in [
            (json!({"n": -1}), "n"),
            (json!({"r": 2.0}), "r"),
            (json!({"label": "long"}), "label"),
            (json!({"meta": [1]}), "meta"),
            (json!({"tags": {"a": 1}}), "tags"),
        ] {
            let resp = s.post("/api/v1/scores", body.clone()).await;
            assert_eq!(resp.status, 400, "{body}: {}", resp.text);
            assert_eq!(resp.body["field"], field);
        }
        assert_eq!(s.post("/api/v1/scores", json!({"n": 2, "tags": ["a"], "meta": {"k": 1}})).await.status, 201);
        for rules in [json!({"label": {"type": "number"}}), json!({"n": {"type": "array"}}), json!({"n": {"type": "float64"}})] {
            let resp = s.send(Method::PUT, "/api/v1/admin/collections/scores/rules", Some(ADMIN_SECRET), Some(rules.clone())).await;
            assert_eq!(resp.status, 400, "{rules}: {}", resp.text);
        }
    }

    async fn a_field_of_another_type_under_the_same_name_reads_and_writes(s) {
        s.open_collection("posts").await;
        let first = id(&s.post("/api/v1/posts", json!({"x": "text"})).await.body);
        assert_eq!(s.get("/api/v1/posts").await.status, 200);
        assert_eq!(s.get(&format!("/api/v1/posts/{first}")).await.status, 200);
        // Through the API: the same statements now read an integer where text was.
        assert_eq!(s.admin_delete("/api/v1/admin/collections/posts/schema/x").await.status, 200);
        let second = s.post("/api/v1/posts", json!({"x": 5})).await;
        assert_eq!(second.status, 201, "{}", second.text);
        let list = s.get("/api/v1/posts?sort=_created_at").await;
        assert_eq!(list.status, 200, "{}", list.text);
        assert_eq!(list.body["items"][1]["x"], 5);
        // Behind the server's back (another instance, a migration): the cached plans go stale.
        s.exec_sql("ALTER TABLE posts DROP COLUMN x; ALTER TABLE posts ADD COLUMN x BIGINT").await;
        let list = s.get("/api/v1/posts?sort=_created_at").await;
        assert_eq!(list.status, 200, "{}", list.text);
        assert!(list.body["items"][1]["x"].is_null());
    }

    async fn spent_tokens_and_expired_sessions_are_purged(s) {
        let mut mail = use_smtp(&s).await;
        let reg = s.register("p@example.com", "password1").await;
        let _verification = next(&mut mail).await;
        s.post("/api/v1/auth/magic-link", json!({"email": "p@example.com"})).await;
        let link = next(&mut mail).await;
        assert_eq!(s.post("/api/v1/auth/magic-link/verify", json!({"token": link.token()})).await.status, 200);
        let tokens = "SELECT COUNT(*) FROM _fb_auth_tokens";
        let before = s.sql_i64(tokens).await;
        assert!(before >= 2, "the verification and the magic link");
        s.exec_sql("UPDATE _fb_sessions SET expires_at = 1").await;
        let purged = s.admin_post("/api/v1/admin/sessions/purge", json!({})).await;
        assert_eq!(purged.status, 200, "{}", purged.text);
        assert_eq!(purged.body["purged"], 2, "both sessions had expired");
        assert_eq!(purged.body["tokens_purged"], 1, "the spent magic link; the verification link is live");
        assert_eq!(s.sql_i64(tokens).await, before - 1);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &token(&reg), None).await.status, 401);
        let again = s.admin_post("/api/v1/admin/sessions/purge", json!({})).await;
        assert_eq!((again.body["purged"].as_i64(), again.body["tokens_purged"].as_i64()), (Some(0), Some(0)));
    }
}

/// Configured secrets shorter than 256 bits are refused at start.
#[tokio::test]
async fn short_secrets_are_refused_at_start() {
    for (admin, jwt, refused) in
        [(Some("short"), None, "ADMIN_SECRET"), (None, Some("0123456789abcdef0123456789abcde"), "JWT_SECRET")]
    {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ferrobase::Config::new(dir.path());
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.admin_secret = admin.map(str::to_owned);
        config.jwt_secret = jwt.map(str::to_owned);
        let err = ferrobase::Server::start(config).await.err().expect("a short secret is refused");
        assert!(err.to_string().contains(refused), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = ferrobase::Config::new(dir.path());
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.admin_secret = Some("a".repeat(32));
    config.jwt_secret = Some("b".repeat(32));
    assert!(ferrobase::Server::start(config).await.is_ok());
}
