//! Email flows through a real SMTP server and a Resend-protocol server: verification,
//! password reset, magic links. Tokens are read from the mail that arrived.

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::mailbox::{next, resend_server, use_smtp};

both_backends! {
    async fn verification_mail_over_smtp(s) {
        let mut mail = use_smtp(&s).await;
        let reg = s.register("v@example.com", "password1").await;
        let message = next(&mut mail).await;
        assert_eq!(message.to, vec!["v@example.com"]);
        assert!(message.text.contains("https://app.example/verify-email?token="), "{}", message.text);
        assert!(message.text.contains("noreply@ferrobase.test"));
        let t = reg["access_token"].as_str().unwrap();
        assert_eq!(s.post("/api/v1/auth/verify-email", json!({"token": "made-up"})).await.status, 400);
        let verified = s.post("/api/v1/auth/verify-email", json!({"token": message.token()})).await;
        assert_eq!(verified.status, 200, "{}", verified.text);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", t, None).await.body["email_verified"], true);
        assert_eq!(s.post("/api/v1/auth/verify-email", json!({"token": message.token()})).await.status, 400, "single use");

        // Resend: already verified → nothing sent. An email change mails the new address
        // its link, and a resend another one.
        let resent = s.as_user(Method::POST, "/api/v1/auth/resend-verification", t, None).await;
        assert_eq!(resent.status, 200);
        s.as_user(Method::PATCH, "/api/v1/auth/user", t, Some(json!({"email": "v2@example.com", "current_password": "password1"}))).await;
        let changed = next(&mut mail).await;
        assert_eq!(changed.to, vec!["v2@example.com"]);
        assert_eq!(s.as_user(Method::POST, "/api/v1/auth/resend-verification", t, None).await.status, 200);
        let again = next(&mut mail).await;
        assert_eq!(again.to, vec!["v2@example.com"]);
        assert_eq!(s.post("/api/v1/auth/verify-email", json!({"token": again.token()})).await.status, 200);
        assert_eq!(s.post("/api/v1/auth/resend-verification", json!({})).await.status, 401);
    }

    async fn password_reset_over_smtp(s) {
        let mut mail = use_smtp(&s).await;
        let reg = s.register("r@example.com", "old password").await;
        let _verification = next(&mut mail).await;
        let old_token = reg["access_token"].as_str().unwrap().to_owned();
        let key = s.as_user(Method::POST, "/api/v1/auth/api-keys", &old_token, Some(json!({"name": "k"}))).await.body["key"].as_str().unwrap().to_owned();

        let unknown = s.post("/api/v1/auth/forgot-password", json!({"email": "nobody@example.com"})).await;
        let known = s.post("/api/v1/auth/forgot-password", json!({"email": "R@example.com"})).await;
        assert_eq!((unknown.status, known.status), (200, 200));
        assert_eq!(unknown.body, known.body, "the answer does not tell whether the address exists");
        let message = next(&mut mail).await;
        assert_eq!(message.to, vec!["r@example.com"], "no mail for the unknown address");
        assert!(message.text.contains("/reset-password?token="));
        let reset_token = message.token();

        assert_eq!(s.post("/api/v1/auth/reset-password", json!({"token": reset_token, "password": "short"})).await.status, 400);
        assert_eq!(s.post("/api/v1/auth/reset-password", json!({"token": "made-up", "password": "new password"})).await.status, 400);
        let reset = s.post("/api/v1/auth/reset-password", json!({"token": reset_token, "password": "new password"})).await;
        assert_eq!(reset.status, 200, "{}", reset.text);
        assert_eq!(reset.body["sessions_revoked"], 1);
        assert_eq!(reset.body["api_keys_revoked"], 1);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &old_token, None).await.status, 401, "old sessions end");
        assert_eq!(s.client.get(s.url("/api/v1/auth/me")).header("x-api-key", key).send().await.unwrap().status(), 401);
        assert_eq!(s.login("r@example.com", "old password").await.status, 401);
        assert_eq!(s.login("r@example.com", "new password").await.status, 200);
        let reused = s.post("/api/v1/auth/reset-password", json!({"token": reset_token, "password": "third password"})).await;
        assert_eq!(reused.status, 400, "a used reset token is refused");
        assert_eq!(s.login("r@example.com", "new password").await.status, 200);
    }

    async fn magic_links_over_smtp(s) {
        let mut mail = use_smtp(&s).await;
        s.register("m@example.com", "password1").await;
        let _verification = next(&mut mail).await;
        let asked = s.post("/api/v1/auth/magic-link", json!({"email": "m@example.com"})).await;
        assert_eq!(asked.status, 200);
        let link = next(&mut mail).await;
        assert!(link.text.contains("/magic-link?token="));
        let signed_in = s.post("/api/v1/auth/magic-link/verify", json!({"token": link.token()})).await;
        assert_eq!(signed_in.status, 200, "{}", signed_in.text);
        assert_eq!(signed_in.body["user"]["email"], "m@example.com");
        assert_eq!(signed_in.body["user"]["email_verified"], true, "following the link proves the address");
        assert_eq!(s.post("/api/v1/auth/magic-link/verify", json!({"token": link.token()})).await.status, 400, "single use");

        // Tables surface: request with /magiclink, verify with GET ?token=.
        s.post("/api/v1/auth/magiclink", json!({"email": "m@example.com"})).await;
        let link = next(&mut mail).await;
        let via_get = s.get(&format!("/api/v1/auth/magiclink/verify?token={}", link.token())).await;
        assert_eq!(via_get.status, 200, "{}", via_get.text);
        assert!(via_get.body["access_token"].is_string());
        assert_eq!(s.get("/api/v1/auth/magiclink/verify").await.status, 400);

        // An address without an account gets one on verification.
        s.post("/api/v1/auth/magiclink", json!({"email": "New@Example.com"})).await;
        let link = next(&mut mail).await;
        assert_eq!(link.to, vec!["new@example.com"]);
        let created = s.post("/api/v1/auth/magiclink/verify", json!({"token": link.token()})).await;
        assert_eq!(created.status, 200, "{}", created.text);
        assert_eq!(created.body["user"]["email"], "new@example.com");
        assert_eq!(s.post("/api/v1/auth/magic-link", json!({"email": "bad"})).await.status, 400);

        // A link that would make an account after registration closed is refused as such,
        // and kept for when it opens again.
        s.post("/api/v1/auth/magiclink", json!({"email": "later@example.com"})).await;
        let link = next(&mut mail).await;
        s.set_settings(json!({"registration_open": false})).await;
        let closed = s.post("/api/v1/auth/magiclink/verify", json!({"token": link.token()})).await;
        assert_eq!(closed.status, 403, "{}", closed.text);
        s.set_settings(json!({"registration_open": true})).await;
        let opened = s.post("/api/v1/auth/magiclink/verify", json!({"token": link.token()})).await;
        assert_eq!(opened.status, 200, "{}", opened.text);
    }

    async fn a_magic_link_racing_a_sign_up_of_its_address_still_signs_in(s) {
        let mut mail = use_smtp(&s).await;
        for round in 0..8 {
            let email = format!("race{round}@example.com");
            assert_eq!(s.post("/api/v1/auth/magic-link", json!({"email": email})).await.status, 200);
            let link = loop {
                let message = next(&mut mail).await;
                if message.to == vec![email.clone()] && message.text.contains("/magic-link?token=") {
                    break message;
                }
            };
            let sign_up = s.post("/api/v1/auth/register", json!({"email": email, "password": "password1"}));
            let verify = s.post("/api/v1/auth/magic-link/verify", json!({"token": link.token()}));
            let (signed_up, verified) = futures_util::future::join(sign_up, verify).await;
            assert!(signed_up.status == 201 || signed_up.status == 409, "{}", signed_up.text);
            // Whichever made the account, the link signs in to it.
            assert_eq!(verified.status, 200, "{}", verified.text);
            assert_eq!(verified.body["user"]["email"], email.as_str());
            assert_eq!(s.post("/api/v1/auth/magic-link/verify", json!({"token": link.token()})).await.status, 400, "single use");
        }
    }

    async fn links_in_the_mailbox_end_with_a_new_password_or_the_end_of_every_session(s) {
        let mut mail = use_smtp(&s).await;
        s.register("links@example.com", "password1").await;
        let _verification = next(&mut mail).await;
        let forgot = || s.post("/api/v1/auth/forgot-password", json!({"email": "links@example.com"}));
        forgot().await;
        let first = next(&mut mail).await.token();
        forgot().await;
        let second = next(&mut mail).await.token();
        let reset = s.post("/api/v1/auth/reset-password", json!({"token": second, "password": "password2"})).await;
        assert_eq!(reset.status, 200, "{}", reset.text);
        let earlier = s.post("/api/v1/auth/reset-password", json!({"token": first, "password": "password3"})).await;
        assert_eq!(earlier.status, 400, "an earlier reset link ends with the reset: {}", earlier.text);

        // A magic link and a reset link asked for before a password change, or before the
        // end of every session, no longer sign in.
        let t = s.login("links@example.com", "password2").await.body["access_token"].as_str().unwrap().to_owned();
        s.post("/api/v1/auth/magic-link", json!({"email": "links@example.com"})).await;
        let magic = next(&mut mail).await.token();
        let changed = s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(json!({"password": "password4", "current_password": "password2"}))).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        assert_eq!(s.post("/api/v1/auth/magic-link/verify", json!({"token": magic})).await.status, 400);
        forgot().await;
        let pending = next(&mut mail).await.token();
        assert_eq!(s.as_user(Method::POST, "/api/v1/auth/logout-all", &t, None).await.status, 200);
        assert_eq!(s.post("/api/v1/auth/reset-password", json!({"token": pending, "password": "password5"})).await.status, 400);
        assert_eq!(s.login("links@example.com", "password4").await.status, 200);
    }

    async fn a_magic_link_makes_an_unproven_account_its_owners(s) {
        let mut mail = use_smtp(&s).await;
        // Someone registers an address that is not theirs, and sets up a key before its owner comes.
        let squatter = s.register("owner@example.com", "squatter1").await;
        let _verification = next(&mut mail).await;
        let t = squatter["access_token"].as_str().unwrap().to_owned();
        let key = s.as_user(Method::POST, "/api/v1/auth/api-keys", &t, Some(json!({"name": "k"}))).await;
        assert_eq!(key.status, 201, "{}", key.text);
        let key = key.body["key"].as_str().unwrap().to_owned();
        // The owner opens a magic link: the account is theirs, and nothing set up before stays.
        s.post("/api/v1/auth/magic-link", json!({"email": "owner@example.com"})).await;
        let link = next(&mut mail).await;
        let owner = s.post("/api/v1/auth/magic-link/verify", json!({"token": link.token()})).await;
        assert_eq!(owner.status, 200, "{}", owner.text);
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &t, None).await.status, 401, "the earlier session ended");
        let by_key = s.send_with(Method::GET, "/api/v1/auth/me", None, &[("x-api-key", key.as_str())], None).await;
        assert_eq!(by_key.status, 401, "the earlier key was revoked: {}", by_key.text);
        assert_eq!(s.login("owner@example.com", "squatter1").await.status, 401, "the earlier password is gone");
        let mine = owner.body["access_token"].as_str().unwrap();
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", mine, None).await.body["email_verified"], true);
        // A proven account keeps its password through later links.
        s.post("/api/v1/auth/forgot-password", json!({"email": "owner@example.com"})).await;
        let reset = next(&mut mail).await;
        assert_eq!(s.post("/api/v1/auth/reset-password", json!({"token": reset.token(), "password": "owners-own1"})).await.status, 200);
        s.post("/api/v1/auth/magic-link", json!({"email": "owner@example.com"})).await;
        let link = next(&mut mail).await;
        assert_eq!(s.post("/api/v1/auth/magic-link/verify", json!({"token": link.token()})).await.status, 200);
        assert_eq!(s.login("owner@example.com", "owners-own1").await.status, 200);
    }

    async fn a_reset_link_mailed_to_an_old_address_ends_with_the_move(s) {
        let mut mail = use_smtp(&s).await;
        let reg = s.register("gina@example.com", "password1").await;
        let _verification = next(&mut mail).await;
        let t = reg["access_token"].as_str().unwrap().to_owned();
        s.post("/api/v1/auth/forgot-password", json!({"email": "gina@example.com"})).await;
        let old_reset = next(&mut mail).await.token();
        let moved = s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(json!({"email": "gina.new@example.com", "current_password": "password1"}))).await;
        if moved.status == 202 {
            let confirmation = next(&mut mail).await;
            let confirmed = s.post("/api/v1/auth/confirm-email-change", json!({"token": confirmation.token()})).await;
            assert_eq!(confirmed.status, 200, "{}", confirmed.text);
        } else {
            assert_eq!(moved.status, 200, "{}", moved.text);
        }
        let taken = s.post("/api/v1/auth/reset-password", json!({"token": old_reset, "password": "takeover99"})).await;
        assert_eq!(taken.status, 400, "{}", taken.text);
        assert_eq!(s.login("gina.new@example.com", "takeover99").await.status, 401);
    }

    async fn an_account_without_a_password_sets_one_only_from_a_mailed_link(s) {
        let mut mail = use_smtp(&s).await;
        s.post("/api/v1/auth/magic-link", json!({"email": "nopass@example.com"})).await;
        let link = next(&mut mail).await;
        let signed_in = s.post("/api/v1/auth/magic-link/verify", json!({"token": link.token()})).await;
        assert_eq!(signed_in.status, 200, "{}", signed_in.text);
        let t = signed_in.body["access_token"].as_str().unwrap().to_owned();
        // A token alone sets no password: with one, it could move the account to another
        // address at once, skipping the confirmation mailed to the current one.
        let set = s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(json!({"password": "attacker1"}))).await;
        assert_eq!(set.status, 403, "{}", set.text);
        let moved = s.as_user(Method::PATCH, "/api/v1/auth/user", &t, Some(json!({"email": "atk@example.com", "current_password": "attacker1"}))).await;
        assert_eq!(moved.status, 202, "still only a pending change: {}", moved.text);
        let _confirmation = next(&mut mail).await;
        assert_eq!(s.as_user(Method::GET, "/api/v1/auth/me", &t, None).await.body["email"], "nopass@example.com");
        // The reset link, mailed to the address, sets the first password.
        s.post("/api/v1/auth/forgot-password", json!({"email": "nopass@example.com"})).await;
        let reset = next(&mut mail).await;
        let done = s.post("/api/v1/auth/reset-password", json!({"token": reset.token(), "password": "password1"})).await;
        assert_eq!(done.status, 200, "{}", done.text);
        assert_eq!(s.login("nopass@example.com", "password1").await.status, 200);
    }

    async fn resend_provider_sends_what_the_api_expects(s) {
        let (base, mut mail) = resend_server("re_test_key").await;
        s.set_settings(json!({"email_provider": "resend", "resend_api_url": base, "resend_api_key": "re_test_key", "email_from": "hello@ferrobase.test"})).await;
        s.register("rs@example.com", "password1").await;
        let message = next(&mut mail).await;
        assert_eq!(message.to, vec!["rs@example.com"]);
        s.post("/api/v1/auth/forgot-password", json!({"email": "rs@example.com"})).await;
        let reset = next(&mut mail).await;
        assert!(reset.text.contains("Reset your"));
        let done = s.post("/api/v1/auth/reset-password", json!({"token": reset.token(), "password": "password2"})).await;
        assert_eq!(done.status, 200, "{}", done.text);
        assert_eq!(s.login("rs@example.com", "password2").await.status, 200);
    }
}
