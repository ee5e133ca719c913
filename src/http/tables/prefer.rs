//! The tables surface's request headers: `Prefer`, `Range`/`Range-Unit` and the `Accept` of
//! a single object; and the `Content-Range` of answers.

use axum::http::HeaderMap;

use crate::data::tables::Resolution;
use crate::data::write::Affected;
use crate::error::ApiError;

/// `Prefer: return=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Minimal,
    Representation,
    HeadersOnly,
}

/// The preferences Ferrobase honours; others (`missing=default`, `tx=…`, `timezone=…`) are
/// accepted and ignored, as PostgREST does, and any other is ignored too unless
/// `handling=strict` asks for every preference to be honoured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prefer {
    pub ret: Option<Return>,
    pub count: bool,
    pub resolution: Option<Resolution>,
    /// `max-affected=N`, which PostgREST applies under `handling=strict` only.
    pub max_affected: Option<u64>,
}

/// Preferences PostgREST knows and Ferrobase takes without acting on them.
const ACCEPTED: [&str; 3] = ["missing", "tx", "timezone"];

impl Prefer {
    /// How many rows a write by filter may change: exactly one for a single object asked
    /// for, at most `max-affected` under strict handling.
    pub fn affected(&self, format: Format) -> Affected {
        match (format, self.max_affected) {
            (Format::Object, _) => Affected::ExactlyOne,
            (_, Some(most)) => Affected::AtMost(most),
            _ => Affected::Any,
        }
    }
}

/// Reads every `Prefer` header (each may list several comma-separated preferences).
pub fn prefer(headers: &HeaderMap) -> Result<Prefer, ApiError> {
    let mut prefer = Prefer::default();
    let (mut strict, mut unknown) = (false, None);
    for header in headers.get_all("prefer") {
        let text = header.to_str().map_err(|_| ApiError::bad_request("the Prefer header must be ASCII"))?;
        for item in text.split([',', ';']) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (item.trim(), ""),
            };
            let invalid = || {
                let shown: String = item.trim().chars().take(64).collect();
                ApiError::bad_request(format!("invalid preference '{shown}'"))
            };
            match key {
                "return" => {
                    prefer.ret = Some(match value {
                        "minimal" => Return::Minimal,
                        "representation" => Return::Representation,
                        "headers-only" => Return::HeadersOnly,
                        _ => return Err(invalid()),
                    })
                }
                "count" => {
                    prefer.count = crate::data::query::parse::count_option(value).map_err(|_| invalid())?;
                }
                "resolution" => {
                    prefer.resolution = Some(match value {
                        "merge-duplicates" => Resolution::Merge,
                        "ignore-duplicates" => Resolution::Ignore,
                        _ => return Err(invalid()),
                    })
                }
                "handling" => {
                    strict = match value {
                        "strict" => true,
                        "lenient" => false,
                        _ => return Err(invalid()),
                    }
                }
                "max-affected" => prefer.max_affected = Some(value.parse().map_err(|_| invalid())?),
                "" => {}
                known if ACCEPTED.contains(&known) => {}
                _ => unknown = unknown.or(Some(item.trim().chars().take(64).collect::<String>())),
            }
        }
    }
    if !strict {
        prefer.max_affected = None;
    } else if let Some(unknown) = unknown {
        return Err(ApiError::bad_input(
            crate::error::codes::INVALID_PREFERENCE,
            format!("invalid preference '{unknown}' with handling=strict"),
        ));
    }
    Ok(prefer)
}

/// `Range: 0-9` (or `items=0-9`, `10-`) → offset and limit. `Range-Unit`, when sent, must
/// be `items`.
pub fn range(headers: &HeaderMap) -> Result<Option<(u64, Option<u32>)>, ApiError> {
    if let Some(unit) = headers.get("range-unit")
        && unit.as_bytes() != b"items"
    {
        return Err(ApiError::bad_request("Range-Unit must be 'items'"));
    }
    let Some(header) = headers.get("range") else { return Ok(None) };
    let text = header.to_str().map_err(|_| ApiError::bad_request("the Range header must be ASCII"))?;
    parse_range(text).map(Some)
}

pub fn parse_range(text: &str) -> Result<(u64, Option<u32>), ApiError> {
    let invalid = || {
        let shown: String = text.chars().take(64).collect();
        ApiError::bad_request(format!("invalid Range '{shown}': use first-last, e.g. 0-9"))
    };
    let spec = text.trim();
    let spec = spec.strip_prefix("items=").unwrap_or(spec);
    let (first, last) = spec.split_once('-').ok_or_else(invalid)?;
    let first: u64 = first.trim().parse().map_err(|_| invalid())?;
    if first > i64::MAX as u64 {
        return Err(invalid());
    }
    if last.trim().is_empty() {
        return Ok((first, None));
    }
    let last: u64 = last.trim().parse().map_err(|_| invalid())?;
    if last < first {
        return Err(invalid());
    }
    let limit = (last - first).saturating_add(1).min(u64::from(crate::data::query::parse::TABLE_MAX_LIMIT));
    Ok((first, Some(limit as u32)))
}

/// The representation a read answers in, from `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    /// One object (`application/vnd.pgrst.object+json`, postgrest-js's `.single()`).
    Object,
    /// `text/csv` (postgrest-js's `.csv()`).
    Csv,
}

/// The first media range of `Accept` this server can answer in (JSON without the header);
/// 406 when it names none of them.
pub fn format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let mut ranges =
        headers.get_all("accept").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).peekable();
    if ranges.peek().is_none() {
        return Ok(Format::Json);
    }
    let mut named = Vec::new();
    for range in ranges {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        if parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0")) {
            continue;
        }
        match media.as_str() {
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => return Ok(Format::Object),
            "application/json" | "application/*" | "*/*" | "" => return Ok(Format::Json),
            "text/csv" | "text/*" => return Ok(Format::Csv),
            _ => named.push(media),
        }
    }
    let shown: String = named.join(", ").chars().take(200).collect();
    Err(ApiError::UnacceptableMediaType(format!(
        "cannot answer in {shown}: rows are answered as application/json, application/vnd.pgrst.object+json or text/csv"
    )))
}

/// `Content-Range` of a page: `0-9/123`, `0-9/*` without a count, `*/0` when empty.
pub fn content_range(offset: u64, rows: usize, total: Option<i64>) -> String {
    let total = total.map_or_else(|| "*".to_owned(), |t| t.to_string());
    if rows == 0 { format!("*/{total}") } else { format!("{offset}-{}/{total}", offset + rows as u64 - 1) }
}

/// The status of a counted page, as PostgREST answers it: 416 when it starts past the last
/// row, 206 when it holds only part of the rows, else 200. Without a count: 200.
pub fn range_status(offset: u64, rows: usize, total: Option<i64>) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    let Some(total) = total.map(|t| u64::try_from(t).unwrap_or(0)) else { return StatusCode::OK };
    if offset > total {
        StatusCode::RANGE_NOT_SATISFIABLE
    } else if (rows as u64) < total {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(list: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn preferences() {
        let p = prefer(&headers(&[
            ("prefer", "return=representation, count=exact"),
            ("prefer", "resolution=merge-duplicates,missing=default"),
        ]))
        .unwrap();
        assert_eq!(
            p,
            Prefer {
                ret: Some(Return::Representation),
                count: true,
                resolution: Some(Resolution::Merge),
                max_affected: None
            }
        );
        assert_eq!(prefer(&headers(&[("prefer", "return=minimal")])).unwrap().ret, Some(Return::Minimal));
        assert_eq!(prefer(&headers(&[("prefer", "return=headers-only")])).unwrap().ret, Some(Return::HeadersOnly));
        assert_eq!(
            prefer(&headers(&[("prefer", "resolution=ignore-duplicates")])).unwrap().resolution,
            Some(Resolution::Ignore)
        );
        assert_eq!(prefer(&HeaderMap::new()).unwrap(), Prefer::default());
        assert_eq!(prefer(&headers(&[("prefer", "tx=commit, handling=lenient")])).unwrap(), Prefer::default());
        // max-affected holds under strict handling only, which refuses what it cannot honour.
        assert_eq!(prefer(&headers(&[("prefer", "max-affected=5")])).unwrap().max_affected, None);
        let strict = prefer(&headers(&[("prefer", "handling=strict"), ("prefer", "max-affected=5, missing=default")]));
        assert_eq!(strict.unwrap().max_affected, Some(5));
        assert_eq!(prefer(&headers(&[("prefer", "odd=1")])).unwrap(), Prefer::default());
        let refused = prefer(&headers(&[("prefer", "handling=strict, odd=1")])).unwrap_err();
        assert_eq!((refused.status(), refused.code()), (axum::http::StatusCode::BAD_REQUEST, "PGRST122"));
        for bad in [
            "return=everything",
            "count=maybe",
            "resolution=merge",
            "return='; drop table x",
            "handling=loose",
            "handling=strict, max-affected=-1",
        ] {
            assert_eq!(prefer(&headers(&[("prefer", bad)])).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("0-9").unwrap(), (0, Some(10)));
        assert_eq!(parse_range("items=5-5").unwrap(), (5, Some(1)));
        assert_eq!(parse_range("20-").unwrap(), (20, None));
        assert_eq!(parse_range("0-99999999999999999").unwrap(), (0, Some(1000)));
        for bad in ["", "-", "9-0", "a-b", "-5", "1-2-3", "99999999999999999999-", "0 - x"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
        assert!(range(&headers(&[("range-unit", "bytes"), ("range", "0-1")])).is_err());
        assert_eq!(range(&headers(&[("range-unit", "items"), ("range", "0-1")])).unwrap(), Some((0, Some(2))));
        assert_eq!(range(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn accept_and_content_range() {
        assert_eq!(format(&headers(&[("accept", "application/vnd.pgrst.object+json")])).unwrap(), Format::Object);
        assert_eq!(format(&headers(&[("accept", "application/json")])).unwrap(), Format::Json);
        assert_eq!(format(&headers(&[("accept", "text/csv")])).unwrap(), Format::Csv);
        assert_eq!(content_range(0, 10, Some(123)), "0-9/123");
        assert_eq!(content_range(10, 5, None), "10-14/*");
        assert_eq!(content_range(0, 0, Some(0)), "*/0");
        assert_eq!(content_range(50, 0, None), "*/*");
    }
}
