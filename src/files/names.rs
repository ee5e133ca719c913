//! What a bucket name, an object key and a filename may be. Keys become paths on a disk or
//! in S3 only through the blob id (never the key itself), but they still travel in URLs and
//! listings, so anything that could be read as a path trick is refused outright.

use crate::error::ApiError;
use crate::limits::{MAX_FILENAME_BYTES, MAX_KEY_BYTES, MAX_NAME_BYTES};

/// First path segments under `/storage` that are endpoints, never buckets.
pub const RESERVED_BUCKETS: &[&str] = &["buckets", "upload", "sign", "resumable"];

/// The last key segment that names the signing endpoint (`POST /storage/{bucket}/{key}/signed-url`).
pub const SIGNED_URL_SEGMENT: &str = "signed-url";

/// Whether `text` is a file id: ids are UUIDs, and no bucket name parses as one, so
/// `/storage/{x}` is a file when `x` is a UUID and a bucket otherwise.
pub fn is_file_id(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::parse_str(text).is_ok()
}

/// A bucket name: 1–63 of `a-z 0-9 . _ -`, starting with a letter or digit; not a UUID and
/// not one of the storage endpoints.
pub fn check_bucket_name(name: &str) -> Result<(), ApiError> {
    let valid_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    let starts_well = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if name.is_empty() || name.len() > MAX_NAME_BYTES || !valid_chars || !starts_well {
        return Err(ApiError::bad_field(
            "bucket",
            format!(
                "invalid bucket name '{}': 1 to {MAX_NAME_BYTES} (MAX_NAME_BYTES) lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
                truncate(name, 80)
            ),
        ));
    }
    if RESERVED_BUCKETS.contains(&name) || is_file_id(name) {
        return Err(ApiError::bad_field("bucket", format!("'{name}' cannot name a bucket (reserved, or a file id)")));
    }
    Ok(())
}

/// An object key: 1–1,024 bytes of `/`-separated segments, none empty, `.` or `..`; no NUL,
/// control character or backslash; not absolute; not ending in `/signed-url`.
pub fn check_key(key: &str) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::bad_field("key", format!("invalid key '{}': {why}", truncate(key, 80)));
    if key.is_empty() {
        return Err(bad("empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(bad(&format!("longer than {MAX_KEY_BYTES} bytes (MAX_KEY_BYTES)")));
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Err(bad("control characters and backslashes are not allowed"));
    }
    if key.starts_with('/') {
        return Err(bad("a key is relative (no leading '/')"));
    }
    if key.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..") {
        return Err(bad("empty, '.' and '..' segments are not allowed"));
    }
    if key.rsplit('/').next() == Some(SIGNED_URL_SEGMENT) && key.contains('/') {
        return Err(bad("a key may not end in '/signed-url' (that path signs the key before it)"));
    }
    Ok(())
}

/// The filename kept with a file: the client's, without any directory part, control
/// characters or path separators, at most 255 bytes; `file` when nothing is left.
pub fn clean_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    let cleaned = if cleaned.is_empty() || cleaned == "." || cleaned == ".." { "file" } else { cleaned };
    truncate(cleaned, MAX_FILENAME_BYTES).to_owned()
}

/// The last segment of the key `{id}/{filename}` a file uploaded without a key gets: its
/// filename, except that `signed-url` (which no key may end in) becomes `signed-url_`.
pub fn key_segment(filename: &str) -> std::borrow::Cow<'_, str> {
    if filename == SIGNED_URL_SEGMENT { format!("{filename}_").into() } else { filename.into() }
}

/// `text` cut to at most `max` bytes on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_that_could_escape_are_refused() {
        for key in ["", "/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "a/", "a\\b", "a\0b", "a\nb", "x/signed-url"]
        {
            assert!(check_key(key).is_err(), "{key:?} accepted");
        }
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES + 1)).is_err());
        for key in ["a", "photos/2024/cat.png", "a..b", "résumé.pdf", "signed-url", &"k".repeat(MAX_KEY_BYTES)] {
            assert!(check_key(key).is_ok(), "{key:?} refused");
        }
    }

    #[test]
    fn bucket_names_never_collide_with_ids_or_endpoints() {
        for name in [
            "",
            "Photos",
            "-x",
            "a/b",
            "buckets",
            "upload",
            "sign",
            "resumable",
            "0191c2f0-7c4e-7b7a-9d3a-0a1b2c3d4e5f",
        ] {
            assert!(check_bucket_name(name).is_err(), "{name:?} accepted");
        }
        for name in ["default", "avatars", "my-bucket.v2", "0abc"] {
            assert!(check_bucket_name(name).is_ok(), "{name:?} refused");
        }
        assert!(is_file_id("0191c2f0-7c4e-7b7a-9d3a-0a1b2c3d4e5f"));
        assert!(!is_file_id("default"));
    }

    #[test]
    fn filenames_lose_their_directories() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\Users\\me\\photo.png"), "photo.png");
        assert_eq!(clean_filename("a\u{0}b.txt"), "ab.txt");
        assert_eq!(clean_filename(".."), "file");
        assert_eq!(clean_filename(""), "file");
        assert_eq!(clean_filename(&"é".repeat(300)).len(), 254);
    }

    proptest! {
        #[test]
        fn accepted_keys_have_no_path_tricks(key in "\\PC{0,40}") {
            if check_key(&key).is_ok() {
                prop_assert!(!key.starts_with('/') && !key.contains('\\') && !key.contains('\0'));
                prop_assert!(key.split('/').all(|s| !s.is_empty() && s != ".." && s != "."));
            }
        }

        #[test]
        fn cleaned_filenames_are_plain(raw in "\\PC{0,300}") {
            let name = clean_filename(&raw);
            prop_assert!(!name.is_empty() && name.len() <= MAX_FILENAME_BYTES);
            prop_assert!(!name.contains('/') && !name.contains('\\') && !name.chars().any(char::is_control));
        }

        #[test]
        fn a_filename_always_makes_a_valid_key(raw in "\\PC{0,300}|(\\.\\./)?signed-url") {
            let key = format!("0191c2f0-7c4e-7b7a-9d3a-0a1b2c3d4e5f/{}", key_segment(&clean_filename(&raw)));
            prop_assert!(check_key(&key).is_ok(), "{key:?}");
        }
    }
}
