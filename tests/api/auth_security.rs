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
        // A lock that has run out lets the user in again.
        s.register("brief@example.com", "password1").await;
        s.set_settings(json!({"lockout_duration_ms": 1})).await;
        for _ in 0..3 {
            s.login("brief@example.com", "wrong").await;
        }
        assert_eq!(s.login("brief@example.com", "password1").await.status, 200);
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
}
