//! Attacks and protections: forged, unsigned, expired and revoked tokens; TOTP with replay
//! protection and recovery codes; lockout (surviving a restart); single-session mode; closed
//! registration; and no secret in any log or later answer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferrobase::auth::totp::code_for;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{JWT_SECRET, captured_logs};

fn token(v: &Value) -> String {
    v["access_token"].as_str().unwrap_or_else(|| panic!("no access token in {v}")).to_owned()
}

fn claims_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

fn forge(header: &Value, claims: &Value, key: &[u8]) -> String {
    let signing =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let tag = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key), signing.as_bytes());
    format!("{signing}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

both_backends! {
    async fn forged_expired_and_revoked_tokens_are_refused(s) {
        let reg = s.register("sec@example.com", "password1").await;
        let good = token(&reg);
        let claims = claims_of(&good);
        assert_eq!(claims["role"], "authenticated");
        assert_eq!(claims["email"], "sec@example.com");
        assert!(claims["sid"].is_string() && claims["exp"].as_i64() > claims["iat"].as_i64());
        // The harness's secret really is the server's: a token forged with it is accepted.
        let hs256 = json!({"alg": "HS256", "typ": "JWT"});
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &forge(&hs256, &claims, JWT_SECRET.as_bytes()), None).await.status, 200);

        let mut expired = claims.clone();
        expired["exp"] = json!(now_secs() as i64 - 10);
        let mut admin_claims = claims.clone();
        admin_claims["roles"] = json!(["admin"]);
        let unsigned = format!("{}.{}.", URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut other_sid = claims.clone();
        other_sid["sid"] = json!("01900000-0000-7000-8000-000000000000");
        for (name, bad) in [
            ("alg none", unsigned),
            ("wrong key", forge(&hs256, &claims, b"not the server's secret")),
            ("expired", forge(&hs256, &expired, JWT_SECRET.as_bytes())),
            ("unknown session", forge(&hs256, &other_sid, JWT_SECRET.as_bytes())),
            ("tampered claims", format!("{}.{}.{}", good.split('.').next().unwrap(), URL_SAFE_NO_PAD.encode(admin_claims.to_string()), good.split('.').nth(2).unwrap())),
            ("HS512 header", forge(&json!({"alg": "HS512"}), &claims, JWT_SECRET.as_bytes())),
            ("garbage", "a.b.c".to_owned()),
        ] {
            let resp = s.as_user(Method::GET, "/api/v1/auth/me", &bad, None).await;
            assert_eq!(resp.status, 401, "{name}: {}", resp.text);
        }
        // A record write with a bad token changes nothing.
        s.open_collection("notes").await;
        let resp = s.as_user(Method::POST, "/api/v1/notes", &forge(&hs256, &expired, JWT_SECRET.as_bytes()), Some(json!({"x": 1}))).await;
        assert_eq!(resp.status, 401);
        assert_eq!(s.get("/api/v1/notes/count").await.body["count"], 0);
        // A token of a revoked session stops working at once.
        s.as_user(Method::POST, "/api/v1/auth/logout", &good, None).await;
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &good, None).await.status, 401);
    }

    async fn totp_second_factor(s) {
        let reg = s.register("otp@example.com", "password1").await;
        let t = token(&reg);
        assert_eq!(s.as_user(Method::POST, "/api/v1/auth/2fa/enable", &t, Some(json!({"code": "123456"}))).await.status, 400, "setup first");
        let setup = s.as_user(Method::POST, "/api/v1/auth/2fa/setup", &t, None).await;
        assert_eq!(setup.status, 200, "{}", setup.text);
        let secret = setup.body["secret"].as_str().unwrap().to_owned();
        assert!(setup.body["otpauth_url"].as_str().unwrap().starts_with("otpauth://totp/"));
        assert!(setup.body["otpauth_url"].as_str().unwrap().contains(&secret));
        let now = now_secs();
        let wrong = s.as_user(Method::POST, "/api/v1/auth/2fa/enable", &t, Some(json!({"code": "000000"}))).await;
        assert_eq!(wrong.status, 400);
        let enabled = s.as_user(Method::POST, "/api/v1/auth/2fa/enable", &t, Some(json!({"code": code_for(&secret, now - 30).unwrap()}))).await;
        assert_eq!(enabled.status, 200, "{}", enabled.text);
        let recovery: Vec<String> = enabled.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
        assert_eq!(recovery.len(), 10);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &t, None).await.body["totp_enabled"], true);
        assert!(!s.as_user(Method::GET, "/api/v1/auth/me", &t, None).await.text.contains(&secret));

        // Login now asks for the second factor, in each surface's words.
        let challenge = s.login("otp@example.com", "password1").await;
        assert_eq!(challenge.body["totp_required"], true, "{}", challenge.text);
        assert!(challenge.body.get("access_token").is_none());
        let tables = s.post("/api/v1/auth/signin", json!({"email": "otp@example.com", "password": "password1"})).await;
        assert_eq!(tables.body["requires_2fa"], true);
        assert_eq!(tables.body["user_id"], reg["user"]["id"]);
        let totp_token = challenge.body["totp_token"].as_str().unwrap().to_owned();
        let bad = s.post("/api/v1/auth/2fa/verify", json!({"totp_token": totp_token, "code": "000000"})).await;
        assert_eq!(bad.status, 401);
        let code = code_for(&secret, now).unwrap();
        let ok = s.post("/api/v1/auth/2fa/verify", json!({"totp_token": totp_token, "code": code})).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        assert!(ok.body["access_token"].is_string());
        assert_eq!(s.post("/api/v1/auth/2fa/verify", json!({"totp_token": totp_token, "code": code})).await.status, 401, "the 2FA token is spent");
        // The same code cannot be used again, even with a fresh challenge.
        let replay = s.post("/api/v1/auth/2fa/verify", json!({"totp_token": tables.body["totp_token"], "code": code})).await;
        assert_eq!(replay.status, 401, "a replayed code is refused");
        // A recovery code works, once.
        let again = s.login("otp@example.com", "password1").await.body["totp_token"].as_str().unwrap().to_owned();
        let with_recovery = s.post("/api/v1/auth/2fa/verify", json!({"totp_token": again, "code": recovery[0]})).await;
        assert_eq!(with_recovery.status, 200, "{}", with_recovery.text);
        let again = s.login("otp@example.com", "password1").await.body["totp_token"].as_str().unwrap().to_owned();
        assert_eq!(s.post("/api/v1/auth/2fa/verify", json!({"totp_token": again, "code": recovery[0]})).await.status, 401);

        // Disabling needs a valid code; afterwards login is one step again.
        assert_eq!(s.send(Method::DELETE, "/api/v1/auth/2fa/disable", Some(&t), Some(json!({"code": "000000"}))).await.status, 400);
        let off = s.send(Method::DELETE, "/api/v1/auth/2fa/disable", Some(&t), Some(json!({"code": recovery[1]}))).await;
        assert_eq!(off.status, 200, "{}", off.text);
        assert!(s.login("otp@example.com", "password1").await.body["access_token"].is_string());
    }

    async fn lockout_after_failed_logins_survives_a_restart(s) {
        let mut s = s;
        s.register("lock@example.com", "password1").await;
        s.set_settings(json!({"lockout_max_attempts": 3, "lockout_duration_ms": 600000})).await;
        assert_eq!(s.login("lock@example.com", "wrong1").await.status, 401);
        assert_eq!(s.login("lock@example.com", "wrong2").await.status, 401);
        let locked = s.login("lock@example.com", "wrong3").await;
        assert_eq!(locked.status, 423, "{}", locked.text);
        assert!(locked.header("retry-after").unwrap().parse::<u64>().unwrap() > 500);
        assert_eq!(s.login("lock@example.com", "password1").await.status, 423, "even the right password");
        // An email without an account is answered the same way, so the lockout does not tell
        // which emails have one.
        for (attempt, expected) in [(1, 401), (2, 401), (3, 423), (4, 423)] {
            let resp = s.login("nobody@example.com", "wrong").await;
            assert_eq!(resp.status, expected, "attempt {attempt}: {}", resp.text);
            if expected == 423 {
                assert!(resp.error().starts_with("too many failed sign-ins"), "{}", resp.text);
                assert!(resp.header("retry-after").unwrap().parse::<u64>().unwrap() > 500);
            }
        }
        // Parallel attempts cannot outrun the lock: at most the allowed number of passwords is
        // tried (two answered 401, the third locks), whatever arrives at once.
        s.register("rush@example.com", "password1").await;
        let attempts = (0..20).map(|i| {
            let req = s.client.post(s.url("/api/v1/auth/login")).json(&json!({"email": "rush@example.com", "password": format!("wrong{i}")}));
            async move { req.send().await.unwrap().status().as_u16() }
        });
        let statuses = futures_util::future::join_all(attempts).await;
        assert!(statuses.iter().all(|s| *s == 401 || *s == 423), "{statuses:?}");
        assert!(statuses.iter().filter(|s| **s == 401).count() <= 2, "{statuses:?}");
        assert_eq!(s.login("rush@example.com", "password1").await.status, 423);
        s.restart().await;
        assert_eq!(s.login("lock@example.com", "password1").await.status, 423, "the lock survives a restart");
        // A lock that has run out lets the user in again (one of no length has run out by
        // the next request, whatever the clock's resolution).
        s.register("brief@example.com", "password1").await;
        s.set_settings(json!({"lockout_duration_ms": 0})).await;
        for _ in 0..3 {
            s.login("brief@example.com", "wrong").await;
        }
        assert_eq!(s.login("brief@example.com", "password1").await.status, 200);
    }

    async fn simultaneous_correct_sign_ins_never_claim_failures_nor_lock(s) {
        s.register("busy@example.com", "password1").await;
        s.set_settings(json!({"lockout_max_attempts": 3, "lockout_duration_ms": 600000})).await;
        let attempts = (0..12).map(|_| {
            let req = s.client.post(s.url("/api/v1/auth/login")).json(&json!({"email": "busy@example.com", "password": "password1"}));
            async move { crate::harness::read(req.send().await.unwrap()).await }
        });
        let answers = futures_util::future::join_all(attempts).await;
        assert!(answers.iter().any(|r| r.status == 200), "at least the first attempts are tried");
        for answer in &answers {
            match answer.status {
                200 => assert!(answer.body["access_token"].is_string()),
                // Tried too many at once: not a failure, and worth retrying at once.
                423 => {
                    assert!(answer.error().contains("under way at once"), "{}", answer.text);
                    assert_eq!(answer.header("retry-after"), Some("1"));
                }
                other => panic!("{other}: {}", answer.text),
            }
        }
        assert_eq!(s.login("busy@example.com", "password1").await.status, 200, "the account is not locked");
    }

    async fn single_session_mode_and_closed_registration(s) {
        s.register("one@example.com", "password1").await;
        s.set_settings(json!({"single_session_mode": true})).await;
        let first = token(&s.login("one@example.com", "password1").await.body);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &first, None).await.status, 200);
        let second = token(&s.login("one@example.com", "password1").await.body);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &first, None).await.status, 401, "the older session ended");
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &second, None).await.status, 200);

        s.set_settings(json!({"registration_open": false})).await;
        for path in ["/api/v1/auth/register", "/api/v1/auth/signup"] {
            let resp = s.post(path, json!({"email": "late@example.com", "password": "password1"})).await;
            assert_eq!(resp.status, 403, "{path}");
        }
        assert_eq!(s.admin_get("/api/v1/admin/users").await.body["total"], 1);
    }

    async fn no_secret_appears_in_logs_or_later_answers(s) {
        let (port, mut mail) = crate::mailbox::smtp_server().await;
        s.set_settings(json!({"email_provider": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none"})).await;
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        let reg = s.register(&email, &password).await;
        let _ = crate::mailbox::next(&mut mail).await;
        let t = token(&reg);
        let refresh = reg["refresh_token"].as_str().unwrap().to_owned();
        let key = s.as_user(Method::POST, "/api/v1/auth/api-keys", &t, Some(json!({"name": "k"}))).await.body["key"].as_str().unwrap().to_owned();
        let totp_secret = s.as_user(Method::POST, "/api/v1/auth/2fa/setup", &t, None).await.body["secret"].as_str().unwrap().to_owned();
        s.login(&email, "a wrong password").await;
        s.post("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await;
        s.post("/api/v1/auth/forgot-password", json!({"email": email})).await;
        let reset_mail = crate::mailbox::next(&mut mail).await;
        let reset_token = reset_mail.token();

        let later = [
            s.as_user(Method::GET, "/api/v1/auth/me", &t, None).await.text,
            s.as_user(Method::GET, "/api/v1/auth/api-keys", &t, None).await.text,
            s.admin_get("/api/v1/admin/users").await.text,
            s.admin_get("/api/v1/admin/sessions").await.text,
            s.admin_get("/api/v1/admin/settings").await.text,
        ]
        .join("\n");
        let logs = captured_logs();
        assert!(logs.contains("applied migration"), "logs are being captured");
        for (name, secret) in [("password", &password), ("refresh token", &refresh), ("API key", &key), ("TOTP secret", &totp_secret), ("reset token", &reset_token)] {
            assert!(!logs.contains(secret.as_str()), "the {name} appears in the logs");
            assert!(!later.contains(secret.as_str()), "the {name} appears in a later answer");
        }
        assert!(!later.contains("password_hash") && !later.contains("$argon2"));
    }

    async fn credentials_change_only_through_the_users_own_session(s) {
        let reg = s.register("own@example.com", "password1").await;
        let (t, id) = (token(&reg), reg["user"]["id"].as_str().unwrap().to_owned());
        let key = s.as_user(Method::POST, "/api/v1/auth/api-keys", &t, Some(json!({"name": "k"}))).await.body["key"].as_str().unwrap().to_owned();
        let imp = s.admin_post(&format!("/api/v1/admin/users/{id}/impersonate"), json!({})).await.body["access_token"].as_str().unwrap().to_owned();
        let with_key = |method: Method, path: &'static str, body: Option<Value>| {
            let mut req = s.client.request(method, s.url(path)).header("x-api-key", key.clone());
            if let Some(body) = body {
                req = req.json(&body);
            }
            async move { req.send().await.unwrap().status().as_u16() }
        };
        // An API key cannot make keys (they would outlive its expiry and revocation), nor
        // change the password, the email or 2FA; an impersonation token neither.
        let attempts = [
            (Method::POST, "/api/v1/auth/api-keys", Some(json!({"name": "minted"}))),
            (Method::PATCH, "/api/v1/auth/user", Some(json!({"password": "password2", "current_password": "password1"}))),
            (Method::PATCH, "/api/v1/auth/user", Some(json!({"email": "other@example.com", "current_password": "password1"}))),
            (Method::POST, "/api/v1/auth/2fa/setup", None),
            (Method::DELETE, "/api/v1/auth/me", None),
        ];
        for (method, path, body) in attempts {
            assert_eq!(with_key(method.clone(), path, body.clone()).await, 403, "{method} {path} with an API key");
            let impersonated = s.send(method.clone(), path, Some(&imp), body).await;
            assert_eq!(impersonated.status, 403, "{method} {path} impersonated: {}", impersonated.text);
        }
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/api-keys", &t, None).await.body["api_keys"].as_array().unwrap().len(), 1);
        assert_eq!(s.login("own@example.com", "password1").await.status, 200, "the password is unchanged");
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &t, None).await.status, 200, "the account is still there");
        // A user's key on an admin path is a known caller without the right (403, as the
        // user's token gets); an unknown key is no caller at all (401).
        assert_eq!(with_key(Method::GET, "/api/v1/admin/settings", None).await, 403);
        let unknown = s.client.get(s.url("/api/v1/admin/settings")).header("x-api-key", "fb_unknown").send().await.unwrap();
        assert_eq!(unknown.status(), 401);
        // Other changes of the profile are theirs to make.
        let metadata = s.send(Method::PATCH, "/api/v1/auth/user", Some(&imp), Some(json!({"metadata": {"theme": "dark"}}))).await;
        assert_eq!(metadata.status, 200, "{}", metadata.text);
        assert_eq!(with_key(Method::PATCH, "/api/v1/auth/user", Some(json!({"metadata": {"theme": "light"}}))).await, 200);
        // The user's own session can.
        let made = s.as_user(Method::POST, "/api/v1/auth/api-keys", &t, Some(json!({"name": "second"}))).await;
        assert_eq!(made.status, 201, "{}", made.text);
    }

    async fn keys_made_while_everything_ends_do_not_survive_it(s) {
        let reg = s.register("race@example.com", "password1").await;
        let t = token(&reg);
        let creations = (0..10).map(|i| s.as_user(Method::POST, "/api/v1/auth/api-keys", &t, Some(json!({"name": format!("k{i}")}))));
        let (created, ended) = futures_util::future::join(
            futures_util::future::join_all(creations),
            s.as_user(Method::POST, "/api/v1/auth/logout-all", &t, None),
        )
        .await;
        assert_eq!(ended.status, 200, "{}", ended.text);
        for resp in created {
            match resp.status {
                201 => {
                    let key = resp.body["key"].as_str().unwrap();
                    let me = s.client.get(s.url("/api/v1/auth/me")).header("x-api-key", key).send().await.unwrap();
                    assert_eq!(me.status(), 401, "a key made before the end was revoked with the rest");
                }
                status => assert_eq!(status, 401, "{}", resp.text),
            }
        }
    }

    async fn sign_ins_racing_a_new_password_do_not_outlive_it(s) {
        // Sign-ins with the old password run while the password changes: whichever proved the
        // old password before the change, none of their sessions may survive it.
        for round in 0..4 {
            let email = format!("racer{round}@example.com");
            let own = token(&s.register(&email, "old-password").await);
            let logins = (0..6).map(|_| s.login(&email, "old-password"));
            let change = s.as_user(
                Method::PATCH,
                "/api/v1/auth/user",
                &own,
                Some(json!({"password": "new-password", "current_password": "old-password"})),
            );
            let (logins, changed) = futures_util::future::join(futures_util::future::join_all(logins), change).await;
            assert_eq!(changed.status, 200, "{}", changed.text);
            for login in logins {
                match login.status {
                    200 => {
                        let me = s.as_user(Method::GET, "/api/v1/auth/me", &token(&login.body), None).await;
                        assert_eq!(me.status, 401, "a session of the old password outlived the change");
                        let refresh = login.body["refresh_token"].as_str().unwrap();
                        let renewed = s.post("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await;
                        assert_eq!(renewed.status, 401, "{}", renewed.text);
                    }
                    status => assert_eq!(status, 401, "{}", login.text),
                }
            }
            assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &own, None).await.status, 200, "the changer's own session stays");
        }
    }

    async fn simultaneous_sign_ins_leave_one_session_in_single_session_mode(s) {
        s.set_settings(json!({"single_session_mode": true})).await;
        for round in 0..4 {
            let email = format!("solo{round}@example.com");
            s.register(&email, "password1").await;
            let logins = futures_util::future::join_all((0..8).map(|_| s.login(&email, "password1"))).await;
            let mut alive = 0;
            for login in logins {
                assert_eq!(login.status, 200, "{}", login.text);
                if s.as_user(Method::GET, "/api/v1/auth/me", &token(&login.body), None).await.status == 200 {
                    alive += 1;
                }
            }
            assert_eq!(alive, 1, "sessions left by eight simultaneous sign-ins");
        }
    }

    async fn wrong_codes_to_enable_or_disable_2fa_count_towards_the_lockout(s) {
        let reg = s.register("guess@example.com", "password1").await;
        let t = token(&reg);
        s.set_settings(json!({"lockout_max_attempts": 3, "lockout_duration_ms": 600000})).await;
        assert_eq!(s.as_user(Method::POST, "/api/v1/auth/2fa/setup", &t, None).await.status, 200);
        let statuses: Vec<u16> = {
            let mut out = Vec::new();
            for code in ["000000", "000001", "000002", "000003"] {
                out.push(s.as_user(Method::POST, "/api/v1/auth/2fa/enable", &t, Some(json!({"code": code}))).await.status);
            }
            out
        };
        // As at sign-in: the attempt that reaches the limit is answered with the lock.
        assert_eq!(statuses, [400, 400, 423, 423]);
        assert_eq!(s.login("guess@example.com", "password1").await.status, 423, "the account is locked for sign-ins too");
    }

    async fn signing_in_again_buys_no_more_guesses_of_the_second_factor(s) {
        let reg = s.register("rounds@example.com", "password1").await;
        let t = token(&reg);
        let secret = s.as_user(Method::POST, "/api/v1/auth/2fa/setup", &t, None).await.body["secret"].as_str().unwrap().to_owned();
        let enabled = s.as_user(Method::POST, "/api/v1/auth/2fa/enable", &t, Some(json!({"code": code_for(&secret, now_secs()).unwrap()}))).await;
        assert_eq!(enabled.status, 200, "{}", enabled.text);
        s.set_settings(json!({"lockout_max_attempts": 3, "lockout_duration_ms": 600000})).await;
        let server = &s;
        let challenge = || async move {
            server.login("rounds@example.com", "password1").await.body["totp_token"].as_str().unwrap().to_owned()
        };
        let guess = |totp_token: String, code: &'static str| async move {
            server.post("/api/v1/auth/2fa/verify", json!({"totp_token": totp_token, "code": code})).await.status
        };
        let first = challenge().await;
        assert_eq!((guess(first.clone(), "000000").await, guess(first, "000001").await), (401, 401));
        // A right password again does not clear the wrong codes: the next one locks.
        let second = challenge().await;
        assert_eq!(guess(second, "000002").await, 423);
        assert_eq!(s.login("rounds@example.com", "password1").await.status, 423);
    }

    async fn account_details_are_bounded_and_checked(s) {
        for email in ["<x@example.com>", "x@example.com>", "a@b@example.com", "a,b@example.com", "x@-example.com"] {
            let resp = s.post("/api/v1/auth/register", json!({"email": email, "password": "password1"})).await;
            assert_eq!(resp.status, 400, "{email}: {}", resp.text);
        }
        // One address, however its letters are composed: one account.
        let composed = s.post("/api/v1/auth/register", json!({"email": "zo\u{00eb}@example.com", "password": "password1"})).await;
        assert_eq!(composed.status, 201, "{}", composed.text);
        let decomposed = s.post("/api/v1/auth/register", json!({"email": "Zoe\u{0308}@example.com", "password": "password1"})).await;
        assert_eq!(decomposed.status, 409, "{}", decomposed.text);
        assert_eq!(s.login("ZOE\u{0308}@example.com", "password1").await.status, 200);
        // One domain, however it is spelled: in punycode, or in full-width letters.
        let cyrillic = s.post("/api/v1/auth/register", json!({"email": "a@пример.рф", "password": "password1"})).await;
        assert_eq!(cyrillic.status, 201, "{}", cyrillic.text);
        let punycode = s.post("/api/v1/auth/register", json!({"email": "A@XN--E1AFMKFD.XN--P1AI", "password": "password1"})).await;
        assert_eq!(punycode.status, 409, "{}", punycode.text);
        let wide = s.post("/api/v1/auth/register", json!({"email": "ann@ｅｘａｍｐｌｅ.com", "password": "password1"})).await;
        assert_eq!((wide.status, wide.body["user"]["email"].as_str()), (201, Some("ann@example.com")), "{}", wide.text);
        assert_eq!(s.login("ann@example.com", "password1").await.status, 200);

        let t = token(&composed.body);
        let big = json!({"metadata": {"blob": "x".repeat(20_000)}});
        assert_eq!(s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(big.clone())).await.status, 400);
        let mut registration = big.clone();
        registration["email"] = json!("big@example.com");
        registration["password"] = json!("password1");
        assert_eq!(s.post("/api/v1/auth/register", registration).await.status, 400);
        assert_eq!(s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(json!([]))).await.status, 400);
        let id = composed.body["user"]["id"].as_str().unwrap();
        let roles: Vec<String> = (0..101).map(|i| format!("role{i}")).collect();
        let too_many = s.send(Method::PATCH, &format!("/api/v1/admin/users/{id}/roles"), Some(crate::harness::ADMIN_SECRET), Some(json!({"roles": roles}))).await;
        assert_eq!(too_many.status, 400, "{}", too_many.text);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &t, None).await.body["roles"], json!([]));
    }
}
