//! Accounts and sessions through both surfaces, API keys, owner and role rules, admin users,
//! sessions and settings.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;

fn token(v: &Value) -> String {
    v["access_token"].as_str().unwrap_or_else(|| panic!("no access token in {v}")).to_owned()
}

both_backends! {
    async fn register_login_refresh_logout(s) {
        let reg = s.register("  Ada@Example.COM ", "correct horse").await;
        assert_eq!(reg["user"]["email"], "ada@example.com");
        assert_eq!(reg["token_type"], "bearer");
        assert_eq!(reg["expires_in"], 900);
        assert!(reg["refresh_token"].as_str().unwrap().len() > 32);
        assert!(reg["user"].get("password_hash").is_none());
        let me = s.as_user(Method::GET, "/api/v1/auth/me", &token(&reg), None).await;
        assert_eq!(me.status, 200);
        assert_eq!(me.body["email"], "ada@example.com");
        assert_eq!(me.body["email_verified"], false);

        for (body, status) in [
            (json!({"email": "ADA@example.com", "password": "another one"}), 409),
            (json!({"email": "bob@example.com", "password": "short"}), 400),
            (json!({"email": "not-an-email", "password": "long enough"}), 400),
            (json!({"email": "bob@example.com"}), 400),
            (json!({"password": "long enough"}), 400),
            (json!({"email": "bob@example.com", "password": "long enough", "metadata": [1]}), 400),
        ] {
            let resp = s.post("/api/v1/auth/register", body.clone()).await;
            assert_eq!(resp.status, status, "{body}: {}", resp.text);
        }
        assert_eq!(s.admin_get("/api/v1/admin/users").await.body["total"], 1);
        let number = s.post("/api/v1/auth/register", json!({"email": "num@example.com", "password": 12345678})).await;
        assert_eq!((number.status, number.error()), (400, "'password' must be a string"), "{}", number.text);
        let null_metadata = s.post("/api/v1/auth/register", json!({"email": "null@example.com", "password": "long enough", "metadata": null})).await;
        assert_eq!(null_metadata.status, 201, "a null is no metadata: {}", null_metadata.text);

        let wrong = s.login("ada@example.com", "wrong password").await;
        let unknown = s.login("nobody@example.com", "wrong password").await;
        assert_eq!((wrong.status, unknown.status), (401, 401));
        assert_eq!(wrong.error(), unknown.error(), "no hint whether the account exists");
        let login = s.login("ADA@example.com", "correct horse").await;
        assert_eq!(login.status, 200, "{}", login.text);

        // Refresh rotates; the old refresh token is spent, and reusing it ends the session.
        let refreshed = s.post("/api/v1/auth/refresh", json!({"refresh_token": login.body["refresh_token"]})).await;
        assert_eq!(refreshed.status, 200, "{}", refreshed.text);
        assert_ne!(refreshed.body["refresh_token"], login.body["refresh_token"]);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &token(&refreshed.body), None).await.status, 200);
        let reused = s.post("/api/v1/auth/refresh", json!({"refresh_token": login.body["refresh_token"]})).await;
        assert_eq!(reused.status, 401);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &token(&refreshed.body), None).await.status, 401, "the session was revoked");
        let after = s.post("/api/v1/auth/refresh", json!({"refresh_token": refreshed.body["refresh_token"]})).await;
        assert_eq!(after.status, 401, "the whole session ended, newest token included");
        assert_eq!(s.post("/api/v1/auth/refresh", json!({"refresh_token": "fbr_made_up"})).await.status, 401);
        assert_eq!(s.post("/api/v1/auth/refresh", json!({})).await.status, 400);

        // The registration's session still works; logout ends it at once.
        let reg_token = token(&reg);
        let out = s.as_user(Method::POST, "/api/v1/auth/logout", &reg_token, None).await;
        assert_eq!(out.status, 200);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &reg_token, None).await.status, 401);
        assert_eq!(s.get("/api/v1/auth/me").await.status, 401);
    }

    async fn both_surfaces_share_accounts(s) {
        let up = s.post("/api/v1/auth/signup", json!({"email": "t@example.com", "password": "password1", "data": {"plan": "pro"}})).await;
        assert_eq!(up.status, 201, "{}", up.text);
        assert_eq!(up.body["user"]["metadata"], json!({"plan": "pro"}));
        // Signed up on the tables surface, logs in on the collections surface, and back.
        assert_eq!(s.login("t@example.com", "password1").await.status, 200);
        s.register("c@example.com", "password2").await;
        let signin = s.post("/api/v1/auth/signin", json!({"email": "c@example.com", "password": "password2"})).await;
        assert_eq!(signin.status, 200, "{}", signin.text);
        let t = token(&signin.body);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/user", &t, None).await.body["email"], "c@example.com");

        let meta = s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(json!({"data": {"name": "C"}}))).await;
        assert_eq!(meta.status, 200, "{}", meta.text);
        assert_eq!(meta.body["metadata"], json!({"name": "C"}));
        let no_current = s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(json!({"password": "newpassword"}))).await;
        assert_eq!(no_current.status, 400);
        let wrong_current = s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(json!({"password": "newpassword", "current_password": "nope"}))).await;
        assert_eq!(wrong_current.status, 400);
        assert_eq!(s.login("c@example.com", "password2").await.status, 200, "nothing changed");
        let changed = s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(json!({"password": "newpassword", "current_password": "password2"}))).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        assert_eq!(s.login("c@example.com", "password2").await.status, 401);
        assert_eq!(s.login("c@example.com", "newpassword").await.status, 200);
        let taken = s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(json!({"email": "T@example.com", "current_password": "newpassword"}))).await;
        assert_eq!(taken.status, 409);
        let moved = s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(json!({"email": "c2@example.com", "current_password": "newpassword"}))).await;
        assert_eq!(moved.body["email"], "c2@example.com");
        assert_eq!(moved.body["email_verified"], false);
        assert_eq!(s.as_user(Method::POST, "/api/v1/auth/signout", &t, None).await.status, 200);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/user", &t, None).await.status, 401);
    }

    async fn api_keys_act_as_their_user(s) {
        let reg = s.register("k@example.com", "password1").await;
        let t = token(&reg);
        let made = s.as_user(Method::POST, "/api/v1/auth/api-keys", &t, Some(json!({"name": "ci"}))).await;
        assert_eq!(made.status, 201, "{}", made.text);
        let key = made.body["key"].as_str().unwrap().to_owned();
        assert!(key.starts_with("fb_"));
        assert!(key.starts_with(made.body["prefix"].as_str().unwrap()));
        for bad in [json!({}), json!({"name": ""}), json!({"name": "x", "expires_at": 1}), json!({"name": "x", "expires_at": "soon"}), json!({"name": "x", "scopes": ["read"]})] {
            assert_eq!(s.as_user(Method::POST, "/api/v1/auth/api-keys", &t, Some(bad.clone())).await.status, 400, "{bad}");
        }
        // No text holds NUL, on either backend, and the answer names the field.
        let nul = s.as_user(Method::POST, "/api/v1/auth/api-keys", &t, Some(json!({"name": "a\u{0}b"}))).await;
        assert_eq!((nul.status, nul.body["field"].as_str()), (400, Some("name")), "{}", nul.text);
        let list = s.as_user(Method::GET, "/api/v1/auth/api-keys", &t, None).await;
        assert_eq!(list.body["api_keys"].as_array().unwrap().len(), 1);
        assert!(!list.text.contains(&key), "the key is shown only once");

        let with_key = |path: &str| s.client.get(s.url(path)).header("x-api-key", key.clone()).send();
        let me = crate::harness::read(with_key("/api/v1/auth/me").await.unwrap()).await;
        assert_eq!(me.status, 200);
        assert_eq!(me.body["email"], "k@example.com");
        s.open_collection("notes").await;
        let note = s.client.post(s.url("/api/v1/notes")).header("x-api-key", key.clone()).json(&json!({"t": 1})).send().await.unwrap();
        let note = crate::harness::read(note).await;
        assert_eq!(note.body["_owner_id"], reg["user"]["id"]);
        let used = s.as_user(Method::GET, "/api/v1/auth/api-keys", &t, None).await;
        assert!(used.body["api_keys"][0]["last_used_at"].is_i64());

        let id = made.body["id"].as_str().unwrap();
        assert_eq!(s.as_user(Method::DELETE, &format!("/api/v1/auth/api-keys/{id}"), &t, None).await.status, 200);
        assert_eq!(s.as_user(Method::DELETE, &format!("/api/v1/auth/api-keys/{id}"), &t, None).await.status, 404);
        assert_eq!(with_key("/api/v1/auth/me").await.unwrap().status(), 401, "a revoked key is refused");
        let bogus = s.client.get(s.url("/api/v1/auth/me")).header("x-api-key", "fb_not_a_key").send().await.unwrap();
        assert_eq!(bogus.status(), 401);

        // logout-all revokes sessions and keys, and says how many.
        let k2 = s.as_user(Method::POST, "/api/v1/auth/api-keys", &t, Some(json!({"name": "two"}))).await.body["key"].as_str().unwrap().to_owned();
        let second = token(&s.login("k@example.com", "password1").await.body);
        let all = s.as_user(Method::POST, "/api/v1/auth/logout-all", &second, None).await;
        assert_eq!(all.status, 200, "{}", all.text);
        assert_eq!(all.body["sessions_revoked"], 2);
        assert_eq!(all.body["api_keys_revoked"], 1);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &t, None).await.status, 401);
        assert_eq!(s.client.get(s.url("/api/v1/auth/me")).header("x-api-key", k2).send().await.unwrap().status(), 401);
    }

    async fn owner_and_role_rules(s) {
        s.admin_post("/api/v1/admin/collections", json!({"name": "diary", "rules": {"read": "owner", "create": "authenticated"}})).await;
        let a = token(&s.register("a@example.com", "password1").await);
        let b = token(&s.register("b@example.com", "password1").await);
        let a_id = s.as_user(Method::GET, "/api/v1/auth/me", &a, None).await.body["id"].clone();
        let entry = s.as_user(Method::POST, "/api/v1/diary", &a, Some(json!({"text": "a's"}))).await;
        assert_eq!(entry.status, 201, "{}", entry.text);
        assert_eq!(entry.body["_owner_id"], a_id);
        s.as_user(Method::POST, "/api/v1/diary", &b, Some(json!({"text": "b's"}))).await;
        let id = entry.body["_id"].as_str().unwrap();
        let path = format!("/api/v1/diary/{id}");

        // Owner read: each user lists and counts only their own; another's record is a 404.
        let a_list = s.as_user(Method::GET, "/api/v1/diary", &a, None).await;
        assert_eq!(a_list.body["total"], 1);
        assert_eq!(a_list.body["items"][0]["text"], "a's");
        assert_eq!(s.as_user(Method::GET, "/api/v1/diary/count", &b, None).await.body["count"], 1);
        assert_eq!(s.as_user(Method::GET, &path, &b, None).await.status, 404);
        assert_eq!(s.as_user(Method::PATCH, &path, &b, Some(json!({"text": "hacked"}))).await.status, 404);
        assert_eq!(s.as_user(Method::DELETE, &path, &b, None).await.status, 404);
        assert_eq!(s.get(&path).await.status, 401);
        assert_eq!(s.as_user(Method::GET, &path, &a, None).await.body["text"], "a's");

        // Public read, owner update/delete: B sees the record but may not change it (403).
        s.admin_patch("/api/v1/admin/collections/diary", json!({"rules": {"read": "public"}})).await;
        assert_eq!(s.as_user(Method::GET, &path, &b, None).await.status, 200);
        assert_eq!(s.as_user(Method::PATCH, &path, &b, Some(json!({"text": "hacked"}))).await.status, 403);
        assert_eq!(s.as_user(Method::DELETE, &path, &b, None).await.status, 403);
        assert_eq!(s.as_user(Method::POST, &format!("{path}/restore"), &b, None).await.status, 404);
        assert_eq!(s.get(&path).await.body["text"], "a's", "nothing changed");
        assert_eq!(s.as_user(Method::PATCH, &path, &a, Some(json!({"text": "edited"}))).await.status, 200);
        assert_eq!(s.as_user(Method::DELETE, &path, &a, None).await.status, 200);
        assert_eq!(s.as_user(Method::POST, &format!("{path}/restore"), &a, None).await.status, 200);

        // Role rule: refused until an admin grants the role (effective at once). A role no
        // user could hold is refused as a rule too.
        for role in ["r".repeat(65), " editor".to_owned()] {
            let refused = s.admin_patch("/api/v1/admin/collections/diary", json!({"rules": {"create": {"role": role}}})).await;
            assert_eq!(refused.status, 400, "{}", refused.text);
            assert!(refused.error().contains("MAX_ROLE_NAME_BYTES"), "{}", refused.text);
        }
        let refused = s.admin_post("/api/v1/admin/collections", json!({"name": "longrole", "rules": {"read": {"role": "r".repeat(65)}}})).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert_eq!(s.admin_get("/api/v1/admin/collections/longrole").await.status, 404, "nothing made");
        s.admin_patch("/api/v1/admin/collections/diary", json!({"rules": {"create": {"role": "editor"}}})).await;
        assert_eq!(s.as_user(Method::POST, "/api/v1/diary", &b, Some(json!({"text": "x"}))).await.status, 403);
        let b_id = s.as_user(Method::GET, "/api/v1/auth/me", &b, None).await.body["id"].as_str().unwrap().to_owned();
        let roles = s.admin_patch(&format!("/api/v1/admin/users/{b_id}/roles"), json!({"roles": [" editor ", "editor"]})).await;
        assert_eq!(roles.status, 200, "{}", roles.text);
        assert_eq!(roles.body["roles"], json!(["editor"]), "trimmed, and held once");
        assert_eq!(s.as_user(Method::POST, "/api/v1/diary", &b, Some(json!({"text": "x"}))).await.status, 201);
        // Users cannot reach the admin API.
        assert_eq!(s.as_user(Method::GET, "/api/v1/admin/users", &b, None).await.status, 403);
    }

    async fn admin_users_and_sessions(s) {
        for i in 0..3 {
            s.register(&format!("user{i}@example.com"), "password1").await;
        }
        s.register("other@test.org", "password1").await;
        let all = s.admin_get("/api/v1/admin/users?limit=2").await;
        assert_eq!(all.status, 200);
        assert_eq!(all.body["total"], 4);
        assert_eq!(all.body["items"].as_array().unwrap().len(), 2);
        let found = s.admin_get("/api/v1/admin/users?search=TEST.org").await;
        assert_eq!(found.body["total"], 1);
        assert_eq!(found.body["items"][0]["email"], "other@test.org");
        assert_eq!(s.admin_get("/api/v1/admin/users?search=%25").await.body["total"], 0, "wildcards are literal");
        assert_eq!(s.admin_get("/api/v1/admin/users?bogus=1").await.status, 400);
        let id = found.body["items"][0]["id"].as_str().unwrap().to_owned();

        for bad in [json!({}), json!({"roles": "admin"}), json!({"roles": [1]}), json!({"roles": [""]})] {
            assert_eq!(s.admin_patch(&format!("/api/v1/admin/users/{id}/roles"), bad.clone()).await.status, 400, "{bad}");
        }
        assert_eq!(s.admin_patch("/api/v1/admin/users/nope/roles", json!({"roles": []})).await.status, 404);

        // Impersonation: a 15-minute token marked as such, that cannot be refreshed.
        let imp = s.admin_post(&format!("/api/v1/admin/users/{id}/impersonate"), json!({})).await;
        assert_eq!(imp.status, 200, "{}", imp.text);
        assert_eq!(imp.body["expires_in"], 900);
        assert!(imp.body.get("refresh_token").is_none());
        let imp_token = token(&imp.body);
        let payload = imp_token.split('.').nth(1).unwrap();
        use base64::Engine;
        let claims: Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["imp"], true);
        assert_eq!(claims["sub"], id.as_str());
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &imp_token, None).await.body["email"], "other@test.org");
        // It cannot mint a credential that would outlive it.
        let key = s.as_user(Method::POST, "/api/v1/auth/api-keys", &imp_token, Some(json!({"name": "stay"}))).await;
        assert_eq!(key.status, 403, "{}", key.text);
        // Nor a signed URL: one asked for a week ends with the impersonation.
        let week = s.as_user(Method::POST, "/api/v1/storage/sign", &imp_token, Some(json!({"expires_in": 604_800}))).await;
        assert_eq!(week.status, 200, "{}", week.text);
        let seconds = week.body["expires_in"].as_i64().unwrap();
        assert!((1..=900).contains(&seconds), "{}", week.text);
        // And the resumable upload it starts hands out a token that ends with it too.
        let resumable = week.body["resumable_url"].as_str().unwrap();
        let started = s.client.post(s.url(resumable)).header("tus-resumable", "1.0.0").header("upload-length", "3").send().await.unwrap();
        assert_eq!(started.status(), 201);
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let payload = location.split("token=").nth(1).unwrap().split('.').next().unwrap();
        let grant: Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let ends = claims["exp"].as_i64().unwrap();
        assert!(grant["x"].as_i64().unwrap() <= ends + 1, "resume token {grant} outlives the impersonation ({ends})");

        let own = token(&s.login("other@test.org", "password1").await.body);
        let own_week = s.as_user(Method::POST, "/api/v1/storage/sign", &own, Some(json!({"expires_in": 604_800}))).await;
        assert_eq!(own_week.body["expires_in"], 604_800, "the user's own token signs for as long as asked");
        let sessions = s.admin_get(&format!("/api/v1/admin/sessions?user_id={id}")).await;
        assert_eq!(sessions.status, 200);
        assert_eq!(sessions.body["total"], 3, "registration, impersonation, login: {}", sessions.text);
        let imp_session = sessions.body["items"].as_array().unwrap().iter().find(|x| x["impersonated"] == true).unwrap()["id"].as_str().unwrap().to_owned();
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/sessions/{imp_session}")).await.status, 200);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &imp_token, None).await.status, 401);
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/sessions/{imp_session}")).await.status, 404);
        let purged = s.admin_post("/api/v1/admin/sessions/purge", json!({})).await;
        assert_eq!(purged.body["purged"], 1);
        assert_eq!(s.admin_get("/api/v1/admin/sessions").await.body["total"], 5);

        // Deleting a user ends their sessions and keys.
        let key = s.as_user(Method::POST, "/api/v1/auth/api-keys", &own, Some(json!({"name": "k"}))).await.body["key"].as_str().unwrap().to_owned();
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/users/{id}")).await.status, 200);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &own, None).await.status, 401);
        assert_eq!(s.client.get(s.url("/api/v1/auth/me")).header("x-api-key", key).send().await.unwrap().status(), 401);
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/users/{id}")).await.status, 404);
        assert_eq!(s.login("other@test.org", "password1").await.status, 401);
    }

    async fn deleting_your_account(s) {
        let t = token(&s.register("gone@example.com", "password1").await);
        assert_eq!(s.as_user(Method::DELETE, "/api/v1/auth/me", &t, None).await.status, 200);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &t, None).await.status, 401);
        assert_eq!(s.login("gone@example.com", "password1").await.status, 401);
        s.register("gone@example.com", "password2").await;
    }

    async fn settings_are_typed_and_masked(s) {
        let got = s.admin_get("/api/v1/admin/settings").await;
        assert_eq!(got.status, 200);
        assert_eq!(got.body["settings"]["registration_open"], true);
        assert_eq!(got.body["settings"]["smtp_password"], "");
        s.set_settings(json!({"smtp_password": "hunter2", "app_name": "Demo"})).await;
        let got = s.admin_get("/api/v1/admin/settings").await;
        assert_eq!(got.body["settings"]["smtp_password"], "********");
        assert_eq!(got.body["settings"]["app_name"], "Demo");
        assert!(!got.text.contains("hunter2"));
        for bad in [json!({"nope": 1}), json!({"registration_open": "no"}), json!({"lockout_max_attempts": -1}), json!({"app_name": 5}), json!([1])] {
            let resp = s.admin_patch("/api/v1/admin/settings", bad.clone()).await;
            assert_eq!(resp.status, 400, "{bad}: {}", resp.text);
        }
        let mixed = s.admin_patch("/api/v1/admin/settings", json!({"app_name": "Changed", "nope": 1})).await;
        assert_eq!(mixed.status, 400);
        assert_eq!(s.admin_get("/api/v1/admin/settings").await.body["settings"]["app_name"], "Demo", "all or nothing");
        assert_eq!(s.get("/api/v1/admin/settings").await.status, 401);
    }
}
