//! Signed URLs: a grant (what may be done, to which object, until when, within which limits)
//! carried in a `token` query parameter as `base64url(JSON).base64url(HMAC-SHA256)`. The key
//! is derived from the JWT secret, which every instance of one deployment shares. A grant
//! to upload also carries a nonce, spent on first use, so that it works once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::auth::crypto::hmac_sha256;
use crate::error::ApiError;
use crate::util::constant_time_eq;

/// What a signed URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Download (and `HEAD`) one object.
    #[serde(rename = "GET")]
    Download,
    /// Upload one file, once (as one request, or as a resumable upload started with it).
    #[serde(rename = "POST")]
    Upload,
    /// Go on with one resumable upload that a signed upload URL started: ask its offset,
    /// append to it, abandon it.
    #[serde(rename = "PATCH")]
    Resume,
}

/// The signed content of a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "m")]
    pub action: Action,
    #[serde(rename = "b")]
    pub bucket: String,
    /// The object (download), or the key the upload must take (when the signer fixed one).
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Expiry, in Unix seconds.
    #[serde(rename = "x")]
    pub expires: i64,
    /// The user who signed (`None`: the admin), whom the URL acts for: an upload's file will
    /// be theirs, and a download is served only while they may still read the file.
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Upload: the single-use nonce and the limits signed with it.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub is_public: Option<bool>,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// Upload to a signed key: whether the file there may be replaced (`x-upsert`).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub upsert: Option<bool>,
    /// Download: the id of the file signed, so that the URL never serves another file put at
    /// its key later (perhaps someone else's).
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Upload: the latest expiry (Unix seconds) of the tokens it leads to, a resumable
    /// upload's; set when an impersonation token signed it, whose links end with it.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub lasts_until: Option<i64>,
}

impl Grant {
    /// A download grant for file `file`, at `key` of `bucket`, signed by user `signer` (or by
    /// the admin).
    pub fn download(bucket: &str, key: &str, file: &str, signer: Option<&str>, expires: i64) -> Grant {
        Grant {
            file: Some(file.to_owned()),
            owner: signer.map(str::to_owned),
            ..Grant::of(Action::Download, bucket, key, expires)
        }
    }

    /// An upload grant's nonce, with how long it must be kept once spent (Unix ms): until
    /// the grant stops verifying, which is at the end of its last second.
    pub fn spent_nonce(&self) -> Option<(String, i64)> {
        let kept_until = self.expires.saturating_add(1).saturating_mul(1000);
        self.nonce.clone().map(|nonce| (nonce, kept_until))
    }

    /// A grant to go on with resumable upload `upload` of `bucket` until `expires`.
    pub fn resume(bucket: &str, upload: &str, expires: i64) -> Grant {
        Grant::of(Action::Resume, bucket, upload, expires)
    }

    fn of(action: Action, bucket: &str, key: &str, expires: i64) -> Grant {
        Grant {
            action,
            bucket: bucket.to_owned(),
            key: Some(key.to_owned()),
            expires,
            owner: None,
            nonce: None,
            max_size: None,
            mime_type: None,
            is_public: None,
            collection: None,
            record_id: None,
            upsert: None,
            file: None,
            lasts_until: None,
        }
    }
}

/// Signs and checks grants.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    /// A signer whose key is derived from `secret` (the JWT secret) for this purpose only.
    pub fn new(secret: &[u8]) -> Signer {
        Signer { key: hmac_sha256(secret, b"ferrobase storage signed urls v1") }
    }

    pub fn sign(&self, grant: &Grant) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(grant).expect("a grant serialises"));
        let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(&self.key, payload.as_bytes()));
        format!("{payload}.{signature}")
    }

    /// The grant of a token that this server signed, for `action`, not expired at `now`
    /// (Unix seconds). Anything else is a 403.
    pub fn verify(&self, token: &str, action: Action, now: i64) -> Result<Grant, ApiError> {
        let invalid = || ApiError::Forbidden("invalid signature".into());
        let (payload, signature) = token.split_once('.').ok_or_else(invalid)?;
        let expected = URL_SAFE_NO_PAD.encode(hmac_sha256(&self.key, payload.as_bytes()));
        if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let grant: Grant = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if grant.action != action {
            return Err(ApiError::Forbidden("this signed URL does not allow this method".into()));
        }
        if grant.expires < now {
            return Err(ApiError::Forbidden("the signed URL has expired".into()));
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer() -> Signer {
        Signer::new(b"a secret of at least thirty-two bytes!!")
    }

    #[test]
    fn a_signed_grant_verifies_until_it_expires() {
        let grant = Grant::download("photos", "a/b.png", "f1", Some("u1"), 1_000);
        let token = signer().sign(&grant);
        assert_eq!(signer().verify(&token, Action::Download, 999).unwrap(), grant);
        assert_eq!(signer().verify(&token, Action::Download, 1_000).unwrap(), grant);
        assert!(
            matches!(signer().verify(&token, Action::Download, 1_001), Err(ApiError::Forbidden(m)) if m.contains("expired"))
        );
        assert!(signer().verify(&token, Action::Upload, 999).is_err(), "a download grant is no upload grant");
        assert!(signer().verify(&token, Action::Resume, 999).is_err(), "a download grant resumes nothing");
        let resume = signer().sign(&Grant::resume("photos", "an-upload", 1_000));
        assert_eq!(signer().verify(&resume, Action::Resume, 999).unwrap().key.as_deref(), Some("an-upload"));
        assert!(signer().verify(&resume, Action::Download, 999).is_err(), "a resume grant downloads nothing");
        assert!(
            Signer::new(b"another secret of thirty-two bytes or more").verify(&token, Action::Download, 0).is_err()
        );
    }

    #[test]
    fn a_spent_nonce_is_kept_while_its_grant_verifies() {
        let grant = Grant { nonce: Some("n".into()), ..Grant::download("photos", "a.png", "f1", None, 1_000) };
        let (_, kept_until_ms) = grant.spent_nonce().unwrap();
        let token = signer().sign(&grant);
        // The last moment the token verifies is second 1,000's last millisecond.
        assert!(signer().verify(&token, Action::Download, (kept_until_ms - 1) / 1000).is_ok());
        assert!(signer().verify(&token, Action::Download, kept_until_ms / 1000).is_err());
    }

    #[test]
    fn a_changed_payload_or_signature_is_refused() {
        let token = signer().sign(&Grant::download("photos", "a.png", "f1", None, 1_000));
        let (payload, signature) = token.split_once('.').unwrap();
        let forged =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Grant::download("photos", "b.png", "f1", None, 1_000)).unwrap());
        for bad in [format!("{forged}.{signature}"), format!("{payload}.{forged}"), payload.to_owned(), String::new()] {
            assert!(signer().verify(&bad, Action::Download, 0).is_err(), "{bad} accepted");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_never_verify(token in "\\PC{0,200}") {
            prop_assert!(signer().verify(&token, Action::Download, 0).is_err());
        }
    }
}
