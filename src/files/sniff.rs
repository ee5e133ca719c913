//! Content types: what a file declares, whether a bucket allows it, and whether its first
//! bytes agree. The check is deliberately one-sided: bytes no signature recognises are taken
//! at their word, but bytes that are recognisably something else (a PNG that is really a
//! JPEG, an "image" that is an HTML page) are refused, since a browser would render the
//! latter as a page on this server's origin.

/// How many leading bytes the sniffer looks at.
pub const HEAD_BYTES: usize = 4096;

const OCTET_STREAM: &str = "application/octet-stream";

/// The type a file is stored and served with: the declared one, lowercased, keeping of its
/// parameters only a well-formed `charset` (a text file in UTF-16 must be served as such);
/// when none (or `application/octet-stream`) was declared, the one the filename's extension
/// suggests; else `application/octet-stream`. Checks look at its [`essence`] only.
pub fn declared_type(declared: Option<&str>, filename: &str) -> String {
    let chosen = declared.and_then(|value| {
        let mime = essence(value).to_ascii_lowercase();
        (!mime.is_empty() && mime != OCTET_STREAM && is_plausible(&mime)).then(|| match charset(value) {
            Some(charset) => format!("{mime}; charset={charset}"),
            None => mime,
        })
    });
    chosen.unwrap_or_else(|| {
        mime_guess::from_path(filename)
            .first()
            .map(|m| m.essence_str().to_owned())
            .unwrap_or_else(|| OCTET_STREAM.into())
    })
}

/// `type/subtype` of a Content-Type value, without its parameters.
pub fn essence(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

/// The longest `charset` kept; IANA's longest registered name has 45 characters.
const MAX_CHARSET_LEN: usize = 64;

/// A Content-Type value's first `charset` parameter, lowercased, when it is a plain token
/// (quotes around it allowed); anything else is dropped rather than served back.
fn charset(value: &str) -> Option<String> {
    let value = value.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim().eq_ignore_ascii_case("charset").then_some(value.trim())
    })?;
    let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    (!value.is_empty() && value.len() <= MAX_CHARSET_LEN && value.bytes().all(token))
        .then(|| value.to_ascii_lowercase())
}

/// A `type/subtype` made of token characters, short enough to store.
fn is_plausible(mime: &str) -> bool {
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
    mime.len() <= 127 && mime.split_once('/').is_some_and(|(t, s)| token(t) && token(s))
}

/// Whether `patterns` (a bucket's `allowed_mime_types`) admit `mime`. An empty list admits
/// everything; `image/*` admits every image; `*/*` or `*` everything.
pub fn allowed(patterns: &[String], mime: &str) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| {
            let p = p.trim().to_ascii_lowercase();
            p == "*"
                || p == "*/*"
                || p == mime
                || p.strip_suffix("/*").is_some_and(|top| mime.split('/').next() == Some(top))
        })
}

/// Whether `pattern` may be listed in `allowed_mime_types`: `type/subtype`, `type/*` or `*/*`.
pub fn is_valid_pattern(pattern: &str) -> bool {
    let p = pattern.trim().to_ascii_lowercase();
    p == "*"
        || p == "*/*"
        || is_plausible(&p)
        || p.strip_suffix("/*").is_some_and(|top| is_plausible(&format!("{top}/x")))
}

/// Checks the first bytes of a file against its type: `Err` with the reason when they are
/// recognisably something else.
pub fn check_content(mime: &str, head: &[u8]) -> Result<(), String> {
    if is_markup(head) && !takes_markup(mime) {
        return Err(format!("the content is HTML or XML markup, not {mime}"));
    }
    if mime == OCTET_STREAM {
        return Ok(());
    }
    match infer::get(head) {
        Some(kind) if !same_type(kind.mime_type(), mime) => {
            Err(format!("the content is {}, not {mime}", kind.mime_type()))
        }
        _ => Ok(()),
    }
}

/// Types under which markup is what the file says it is, or harmless: any text type (served
/// as such, with `nosniff`, a browser never renders it as a page), any XML-based type
/// (`application/rss+xml`, `image/svg+xml`, …) and XML itself.
fn takes_markup(mime: &str) -> bool {
    mime.starts_with("text/") || mime.ends_with("+xml") || mime == "application/xml"
}

/// Whether the bytes open like an HTML or XML document: a tag (`<` and a letter, whatever its
/// name: browsers render `<img onerror=…>` or `<form>` as readily as `<html>`), a closing tag, a
/// declaration or comment (`<!`), or a processing instruction (`<?xml`, `<?php`), after any
/// run of white space, NULs and byte order marks. NULs are passed over between the opening's
/// characters too, so that the same opening in UTF-16 or UTF-32 (which browsers decode as
/// well, with a byte order mark or without) is markup too. No binary format a sniffer knows
/// opens that way.
fn is_markup(head: &[u8]) -> bool {
    const BOMS: [&[u8]; 3] = [b"\xEF\xBB\xBF", b"\xFF\xFE", b"\xFE\xFF"];
    let mut rest = head;
    loop {
        if let Some(after) = BOMS.iter().find_map(|bom| rest.strip_prefix(*bom)) {
            rest = after;
            continue;
        }
        match rest.split_first() {
            Some((byte, after)) if byte.is_ascii_whitespace() || *byte == 0 => rest = after,
            _ => break,
        }
    }
    let mut opening = rest.iter().filter(|&&byte| byte != 0);
    match (opening.next(), opening.next()) {
        (Some(b'<'), Some(next)) => next.is_ascii_alphabetic() || matches!(next, b'!' | b'?' | b'/'),
        _ => false,
    }
}

/// The sniffed type and the declared one name the same format (allowing for the aliases
/// and for formats that are ZIP archives inside).
fn same_type(sniffed: &str, declared: &str) -> bool {
    let alias = |m: &str| match m {
        "image/jpg" | "image/pjpeg" => "image/jpeg".to_owned(),
        "audio/mp3" => "audio/mpeg".to_owned(),
        "image/x-png" => "image/png".to_owned(),
        "application/x-zip-compressed" => "application/zip".to_owned(),
        other => other.to_owned(),
    };
    let zip_based = ["openxmlformats", "opendocument", "epub", "java-archive", "android.package", "vnd.apple"];
    alias(sniffed) == alias(declared)
        || (sniffed == "application/zip" && zip_based.iter().any(|z| declared.contains(z)))
        || (sniffed.starts_with("application/vnd.openxmlformats") && declared == "application/zip")
        || takes_markup(sniffed) && takes_markup(declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01";

    #[test]
    fn declared_types_fall_back_to_the_extension() {
        assert_eq!(declared_type(Some("image/PNG; charset=x"), "a.bin"), "image/png; charset=x");
        assert_eq!(declared_type(None, "photo.jpg"), "image/jpeg");
        assert_eq!(declared_type(Some("application/octet-stream"), "notes.txt"), "text/plain");
        assert_eq!(declared_type(Some("not a type"), "x"), OCTET_STREAM);
        assert_eq!(declared_type(None, "noext"), OCTET_STREAM);
    }

    #[test]
    fn a_declared_charset_is_kept_and_nothing_else() {
        assert_eq!(declared_type(Some("Text/Plain; Charset=UTF-16LE"), "a.txt"), "text/plain; charset=utf-16le");
        assert_eq!(declared_type(Some("text/csv;charset=\"iso-8859-1\""), "a"), "text/csv; charset=iso-8859-1");
        assert_eq!(declared_type(Some("text/plain; format=flowed; charset=utf-8"), "a"), "text/plain; charset=utf-8");
        assert_eq!(declared_type(Some("text/plain; format=flowed"), "a"), "text/plain");
        for hostile in ["charset=", "charset=\"\"", "charset=a b", "charset=utf-8\r\nX-A: b", "charset=\"a\"b\""] {
            assert_eq!(declared_type(Some(&format!("text/plain; {hostile}")), "a"), "text/plain", "{hostile}");
        }
        // The first charset counts, well-formed or not.
        assert_eq!(declared_type(Some("text/plain; charset=bad value; charset=utf-7"), "a"), "text/plain");
        assert_eq!(
            declared_type(Some("text/plain; charset=\"utf-8\"; charset=utf-7"), "a"),
            "text/plain; charset=utf-8"
        );
        // Malformed parameters never cost the type itself.
        for odd in
            ["text/plain ; charset=utf-8", "text/plain; a", "text/plain; charset=\"utf-8", "text/plain; charset=\u{e9}"]
        {
            assert!(declared_type(Some(odd), "a").starts_with("text/plain"), "{odd}");
        }
        let long = "x".repeat(MAX_CHARSET_LEN + 1);
        assert_eq!(declared_type(Some(&format!("text/plain; charset={long}")), "a"), "text/plain");
        assert_eq!(essence("text/plain; charset=utf-8"), "text/plain");
    }

    proptest::proptest! {
        /// Whatever is declared, the stored type is a valid header value whose essence is a
        /// plain `type/subtype`.
        #[test]
        fn any_declared_type_is_served_safely(declared in "\\PC{0,80}") {
            let stored = declared_type(Some(&declared), "a");
            proptest::prop_assert!(axum::http::HeaderValue::from_str(&stored).is_ok());
            proptest::prop_assert!(is_plausible(essence(&stored)));
        }
    }

    #[test]
    fn wildcards_admit_a_whole_family() {
        let patterns = vec!["image/*".to_owned(), "application/pdf".to_owned()];
        assert!(allowed(&patterns, "image/png"));
        assert!(allowed(&patterns, "application/pdf"));
        assert!(!allowed(&patterns, "text/html"));
        assert!(!allowed(&patterns, "imagex/png"));
        assert!(allowed(&[], "text/html"));
        assert!(allowed(&["*/*".to_owned()], "text/html"));
        assert!(is_valid_pattern("image/*") && is_valid_pattern("text/plain") && !is_valid_pattern("image"));
    }

    #[test]
    fn content_that_lies_about_its_type_is_refused() {
        assert!(check_content("image/png", PNG).is_ok());
        assert!(check_content("image/png", JPEG).is_err());
        assert!(check_content("image/jpg", JPEG).is_ok());
        assert!(check_content("image/png", b"  <!DOCTYPE html><script>alert(1)</script>").is_err());
        assert!(check_content("image/png", b"\xEF\xBB\xBF<html>").is_err());
        assert!(check_content("image/png", b"\xFF\xFE<\0h\0t\0m\0l\0>\0").is_err(), "UTF-16LE");
        assert!(check_content("image/png", b"\xFE\xFF\0 \0<\0s\0v\0g\0>").is_err(), "UTF-16BE");
        assert!(check_content("text/plain", b"\xFF\xFEh\0i\0").is_ok());
        // Byte order marks anywhere in the opening run, and wide text without one.
        for page in [
            &b"  \xEF\xBB\xBF<div>x</div>"[..],
            b"\xEF\xBB\xBF\xEF\xBB\xBF<html>",
            b"<\0h\0t\0m\0l\0>\0",
            b"\0<\0h\0t\0m\0l\0>",
            b"\xFF\xFE\0\0<\0\0\0h\0\0\0",
            b"\0\0\xFE\xFF\0\0\0<\0\0\0h",
            b"\xFF\xFE \0\n\0<\0!\0",
        ] {
            assert!(check_content("image/png", page).is_err(), "{page:?}");
        }
        assert!(check_content("image/png", b"\xFF\xFE<\0\x00\x01").is_ok(), "a `<` before no ASCII letter");
        assert!(check_content("application/octet-stream", b"<svg onload=alert(1)>").is_err());
        assert!(check_content("text/html", b"<html></html>").is_ok());
        // Markup under a text or XML-based type is what it says, or harmless.
        for mime in ["text/plain", "text/markdown", "text/css", "application/xhtml+xml"] {
            assert!(check_content(mime, b"<!DOCTYPE html><html></html>").is_ok(), "{mime}");
        }
        assert!(check_content("application/rss+xml", b"<?xml version=\"1.0\"?><rss/>").is_ok());
        assert!(check_content("application/json", b"<html>").is_err());
        assert!(check_content("image/svg+xml", b"<?xml version=\"1.0\"?><svg/>").is_ok());
        // Any tag opens a page, not only the document's own.
        for page in [
            &b"<img src=x onerror=alert(1)>"[..],
            b"<form action=//evil>",
            b"<details open ontoggle=alert(1)>",
            b"<x:script xmlns:x=\"http://www.w3.org/1999/xhtml\">",
            b"\0<script>",
            b"</p><p>",
            b"<?php echo 1; ?>",
            b"\r\n\t<META http-equiv=refresh>",
        ] {
            assert!(check_content("image/png", page).is_err(), "{}", String::from_utf8_lossy(page));
        }
        // A `<` that opens no tag is not markup.
        for text in [&b"< 3"[..], b"<3", b"<", b"a<b>"] {
            assert!(!is_markup(text), "{}", String::from_utf8_lossy(text));
        }
        // Bytes no signature knows are taken at their word.
        assert!(check_content("image/png", b"fake png bytes").is_ok());
        assert!(check_content("text/plain", b"hello").is_ok());
        assert!(check_content("application/octet-stream", PNG).is_ok());
    }
}
