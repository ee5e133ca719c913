//! Hashing, random tokens and the sealed storage of secrets that must be read back (TOTP).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// SHA-256 of `input`, hex-encoded: how every bearer secret (refresh tokens, API keys,
/// one-time tokens, recovery codes) is stored. These are long random values, so a fast hash
/// is enough; passwords use Argon2id instead.
pub fn sha256_hex(input: &str) -> String {
    hex::encode(Sha256::digest(input.as_bytes()))
}

/// A random URL-safe token carrying `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// HMAC-SHA256 of `message` under `key`, for deriving purpose-bound keys from one secret.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, message).as_ref().to_vec()
}

/// AES-256-GCM sealing for secrets the server must read back.
pub struct SecretBox {
    key: LessSafeKey,
}

impl SecretBox {
    /// `key_material` must be 32 bytes.
    pub fn new(key_material: &[u8]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, key_material).expect("a 32-byte key");
        SecretBox { key: LessSafeKey::new(key) }
    }

    /// `base64(nonce || ciphertext || tag)`.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce[..]);
        let mut data = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .expect("sealing cannot fail for in-memory data");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        URL_SAFE_NO_PAD.encode(out)
    }

    pub fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, data) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::empty(), &mut data).ok()?;
        Some(plain.to_vec())
    }
}

/// RFC 4648 base32 without padding, as authenticator apps expect TOTP secrets.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let a = SecretBox::new(&[7u8; 32]);
        let sealed = a.seal(b"totp secret");
        assert!(!sealed.contains("totp"));
        assert_eq!(a.open(&sealed).unwrap(), b"totp secret");
        assert!(SecretBox::new(&[8u8; 32]).open(&sealed).is_none());
        assert!(a.open("garbage").is_none());
        assert!(a.open("").is_none());
        assert_ne!(a.seal(b"x"), a.seal(b"x"), "a fresh nonce each time");
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        assert_ne!(random_token(32), random_token(32));
        assert_eq!(random_token(32).len(), 43);
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
