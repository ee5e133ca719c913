//! The text forms of the types SQLite does not check. A table made with plain SQL may declare
//! a column `DATE`, `TIMESTAMP`, `TIME` or `UUID`; PostgreSQL refuses a value that is not one
//! (400), but SQLite keeps any text in it, and a date column would fill with `31/12/2026` and
//! `someday`, which sort and compare as nothing useful. On SQLite, the values written to such
//! columns and the values filters and keys compare with are read in their ISO 8601 forms (the
//! ones SQLite's own date functions read) or the UUID form, and stored in one canonical
//! spelling, PostgreSQL's: text then compares as the instants do, and both backends refuse,
//! store and answer the same values. Bytes (`BLOB`) are the exception to storing text: they are
//! read from PostgreSQL's text forms of `bytea` and stored as a BLOB, as other programs store
//! them, and answered in PostgreSQL's hex form.

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta};

/// What a column declared in one of these types holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// `YYYY-MM-DD`.
    Date,
    /// A date, then optionally `T` or a space and a time of day; a zone is read and, as
    /// PostgreSQL does for `timestamp`, ignored.
    Timestamp,
    /// As [`TextFormat::Timestamp`], converted to UTC by its zone (UTC without one).
    TimestampTz,
    /// `HH:MM[:SS[.fraction]]`; a zone is read and ignored.
    Time,
    /// A time of day with its zone.
    TimeTz,
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hexadecimal digits in either case.
    Uuid,
    /// Bytes (`BLOB`, `bytea`) in either of PostgreSQL's text forms (see [`bytes`]), answered
    /// in its hex form, `\x0a1b`. On SQLite they are stored as a BLOB, as other programs
    /// store them.
    Bytes,
}

/// The most fraction digits a time may carry (nanoseconds); PostgreSQL keeps microseconds.
const MAX_FRACTION_DIGITS: usize = 9;

impl TextFormat {
    /// The format a declared SQL type asks for, if it is one of these.
    pub fn of(declared: &str) -> Option<TextFormat> {
        let d = declared.trim().to_ascii_lowercase();
        let zoned = d.contains("with time zone") && !d.contains("without");
        if d.starts_with("timestamp") || d.starts_with("datetime") {
            Some(if zoned || d == "timestamptz" { TextFormat::TimestampTz } else { TextFormat::Timestamp })
        } else if d == "date" {
            Some(TextFormat::Date)
        } else if d == "timetz" || (d.starts_with("time") && zoned) {
            Some(TextFormat::TimeTz)
        } else if d == "time" || d.starts_with("time ") || d.starts_with("time(") {
            Some(TextFormat::Time)
        } else if d == "uuid" {
            Some(TextFormat::Uuid)
        } else if d.contains("blob") || d == "bytea" {
            Some(TextFormat::Bytes)
        } else {
            None
        }
    }

    /// The SQLSTATE PostgreSQL answers for a value not in this format.
    pub fn code(self) -> &'static str {
        match self {
            TextFormat::Uuid | TextFormat::Bytes => crate::error::codes::INVALID_VALUE,
            _ => crate::error::codes::DATETIME_FORMAT,
        }
    }

    /// The text as stored and compared, in PostgreSQL's spelling (`2026-01-02 10:00:00+00`,
    /// a UUID in lowercase); `Err` with the form expected when `text` is not one.
    pub fn canonical(self, text: &str) -> Result<String, &'static str> {
        let bytes = text.as_bytes();
        let canonical = match self {
            TextFormat::Date => date(bytes)
                .and_then(|(date, rest)| rest.is_empty().then_some(date))
                .map(|d| d.format("%Y-%m-%d").to_string()),
            TextFormat::Timestamp => timestamp(bytes).map(|(at, _)| spelled(at)),
            TextFormat::TimestampTz => timestamp(bytes)
                .and_then(|(at, zone)| at.checked_sub_signed(TimeDelta::seconds(zone.unwrap_or(0).into())))
                .and_then(within_years)
                .map(|utc| format!("{}+00", spelled(utc))),
            TextFormat::Time => time_of_day(bytes).map(|(clock, _)| clock.spelled()),
            TextFormat::TimeTz => time_of_day(bytes).map(|(clock, zone)| clock.spelled() + &offset(zone.unwrap_or(0))),
            TextFormat::Uuid => uuid(bytes).then(|| text.to_ascii_lowercase()),
            TextFormat::Bytes => self::bytes(text).map(|b| hex_form(&b)),
        };
        canonical.ok_or(self.expected())
    }

    /// The form a value must have, for the refusal of one that does not.
    pub fn expected(self) -> &'static str {
        match self {
            TextFormat::Date => "a date: YYYY-MM-DD",
            TextFormat::Timestamp | TextFormat::TimestampTz => {
                "a timestamp: YYYY-MM-DD, then optionally HH:MM[:SS[.fraction]] and Z or ±HH[:MM]"
            }
            TextFormat::Time | TextFormat::TimeTz => "a time: HH:MM[:SS[.fraction]], then optionally Z or ±HH[:MM]",
            TextFormat::Uuid => "a UUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
            TextFormat::Bytes => {
                r"bytes: \x and pairs of hexadecimal digits, or text where \\ is a backslash and \ooo an octal byte"
            }
        }
    }
}

/// `n` ASCII digits at the start of `s`, as a number, and the rest.
fn digits(s: &[u8], n: usize) -> Option<(u32, &[u8])> {
    let (head, rest) = (s.get(..n)?, &s[n..]);
    head.iter().all(u8::is_ascii_digit).then(|| (head.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0')), rest))
}

/// A calendar date at the start of `s` (years 1 to 9999); the rest.
fn date(s: &[u8]) -> Option<(NaiveDate, &[u8])> {
    let (year, s) = digits(s, 4)?;
    let (month, s) = digits(s.strip_prefix(b"-")?, 2)?;
    let (day, s) = digits(s.strip_prefix(b"-")?, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day).filter(|_| year >= 1)?;
    Some((date, s))
}

/// A time of day as written: 24:00:00 and a leap second (:60) are allowed, as PostgreSQL
/// allows them, but neither with a fraction.
#[derive(Debug, Clone, Copy)]
struct Clock {
    seconds: u32,
    nanos: u32,
}

impl Clock {
    /// `HH:MM:SS[.ffffff]`, rounded to microseconds; 24:00:00 (also a leap second's minute
    /// end) stays 24:00:00.
    fn spelled(self) -> String {
        let micros = u64::from(self.seconds) * 1_000_000 + rounded_micros(self.nanos);
        let (seconds, fraction) = (micros / 1_000_000, micros % 1_000_000);
        let mut text = format!("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
        push_fraction(&mut text, fraction);
        text
    }
}

/// Nanoseconds to the nearest microsecond, as PostgreSQL rounds.
fn rounded_micros(nanos: u32) -> u64 {
    (u64::from(nanos) + 500) / 1000
}

/// `.ffffff` without its trailing zeros, when there is a fraction: trimmed fractions compare
/// as text as they do as numbers.
fn push_fraction(text: &mut String, micros: u64) {
    if micros > 0 {
        let digits = format!("{micros:06}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
}

/// `HH:MM[:SS[.fraction]]` at the start of `s`; the rest.
fn clock(s: &[u8]) -> Option<(Clock, &[u8])> {
    let (hour, s) = digits(s, 2)?;
    let (minute, mut s) = digits(s.strip_prefix(b":")?, 2)?;
    let (mut second, mut nanos) = (0, 0);
    if let Some(after) = s.strip_prefix(b":") {
        (second, s) = digits(after, 2)?;
        if let Some(fraction) = s.strip_prefix(b".") {
            let count = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if count == 0 || count > MAX_FRACTION_DIGITS {
                return None;
            }
            let (value, rest) = digits(fraction, count)?;
            nanos = value * 10u32.pow((MAX_FRACTION_DIGITS - count) as u32);
            s = rest;
        }
    }
    let whole = (hour, minute, second, nanos);
    let in_range =
        (hour < 24 && minute < 60 && (second < 60 || (second == 60 && nanos == 0))) || whole == (24, 0, 0, 0);
    in_range.then_some((Clock { seconds: hour * 3600 + minute * 60 + second, nanos }, s))
}

/// Nothing (`None`), `Z`, or `±HH[[:]MM]`, as seconds east of UTC.
fn zone(s: &[u8]) -> Option<Option<i32>> {
    let (sign, rest) = match s {
        [] => return Some(None),
        [b'Z' | b'z'] => return Some(Some(0)),
        [b'+', rest @ ..] => (1, rest),
        [b'-', rest @ ..] => (-1, rest),
        _ => return None,
    };
    let (hours, rest) = digits(rest, 2)?;
    let minutes = match rest {
        [] => 0,
        _ => {
            let (minutes, rest) = digits(rest.strip_prefix(b":").unwrap_or(rest), 2)?;
            if !rest.is_empty() || minutes >= 60 {
                return None;
            }
            minutes
        }
    };
    (hours <= 15).then(|| Some(sign * i32::try_from(hours * 3600 + minutes * 60).unwrap_or(0)))
}

/// A time of day and its zone, the whole of `s`.
fn time_of_day(s: &[u8]) -> Option<(Clock, Option<i32>)> {
    let (clock, rest) = clock(s)?;
    Some((clock, zone(rest)?))
}

/// A date, then optionally a time of day and a zone, the whole of `s`: the moment as written
/// (24:00:00 and a leap second roll over, as in PostgreSQL), rounded to microseconds.
fn timestamp(s: &[u8]) -> Option<(NaiveDateTime, Option<i32>)> {
    let (date, rest) = date(s)?;
    let midnight = date.and_hms_opt(0, 0, 0)?;
    let (clock, zone) = match rest {
        [] => (Clock { seconds: 0, nanos: 0 }, None),
        [b'T' | b't' | b' ', rest @ ..] => time_of_day(rest)?,
        _ => return None,
    };
    let micros = i64::try_from(rounded_micros(clock.nanos)).ok()?;
    let at = midnight.checked_add_signed(TimeDelta::seconds(clock.seconds.into()) + TimeDelta::microseconds(micros))?;
    Some((within_years(at)?, zone))
}

/// A moment of years 1 to 9999 (a rollover or a zone can leave them).
fn within_years(at: NaiveDateTime) -> Option<NaiveDateTime> {
    (1..=9999).contains(&at.year()).then_some(at)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`.
fn spelled(at: NaiveDateTime) -> String {
    let mut text = at.format("%Y-%m-%d %H:%M:%S").to_string();
    push_fraction(&mut text, u64::from(at.and_utc().timestamp_subsec_micros()));
    text
}

/// A zone as PostgreSQL writes it: `+HH`, or `+HH:MM` when it has minutes.
fn offset(seconds: i32) -> String {
    let (sign, seconds) = if seconds < 0 { ('-', -seconds) } else { ('+', seconds) };
    match seconds % 3600 {
        0 => format!("{sign}{:02}", seconds / 3600),
        rest => format!("{sign}{:02}:{:02}", seconds / 3600, rest / 60),
    }
}

/// The bytes a text stands for, read as PostgreSQL reads `bytea`: `\x` then pairs of
/// hexadecimal digits (white space allowed between pairs), or else the text's own bytes, where
/// `\\` stands for a backslash and `\ooo` for the byte of that octal number (any other
/// backslash is an error).
pub fn bytes(text: &str) -> Option<Vec<u8>> {
    match text.strip_prefix("\\x") {
        Some(hex) => hex_pairs(hex.as_bytes()),
        None => escaped(text.as_bytes()),
    }
}

/// PostgreSQL's hex form of bytes: `\x` and two lowercase digits a byte.
pub fn hex_form(bytes: &[u8]) -> String {
    format!("\\x{}", hex::encode(bytes))
}

fn hex_pairs(mut s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 2);
    let digit = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    loop {
        match s {
            [] => return Some(out),
            [space, rest @ ..] if space.is_ascii_whitespace() => s = rest,
            [high, low, rest @ ..] => {
                out.push(digit(*high)? << 4 | digit(*low)?);
                s = rest;
            }
            [_] => return None,
        }
    }
}

fn escaped(mut s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let octal = |b: &u8| (b'0'..=b'7').contains(b);
    loop {
        match s {
            [] => return Some(out),
            [b'\\', b'\\', rest @ ..] => {
                out.push(b'\\');
                s = rest;
            }
            [b'\\', a @ b'0'..=b'3', b, c, rest @ ..] if octal(b) && octal(c) => {
                out.push((a - b'0') << 6 | (b - b'0') << 3 | (c - b'0'));
                s = rest;
            }
            [b'\\', ..] => return None,
            [byte, rest @ ..] => {
                out.push(*byte);
                s = rest;
            }
        }
    }
}

fn uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(format: TextFormat, text: &str) -> String {
        format.canonical(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn declared_types_name_their_format() {
        assert_eq!(TextFormat::of("DATE"), Some(TextFormat::Date));
        assert_eq!(TextFormat::of("TIMESTAMP"), Some(TextFormat::Timestamp));
        assert_eq!(TextFormat::of("timestamp without time zone"), Some(TextFormat::Timestamp));
        assert_eq!(TextFormat::of("timestamp with time zone"), Some(TextFormat::TimestampTz));
        assert_eq!(TextFormat::of("TIMESTAMPTZ"), Some(TextFormat::TimestampTz));
        assert_eq!(TextFormat::of("DATETIME"), Some(TextFormat::Timestamp));
        assert_eq!(TextFormat::of("TIME"), Some(TextFormat::Time));
        assert_eq!(TextFormat::of("time with time zone"), Some(TextFormat::TimeTz));
        assert_eq!(TextFormat::of("UUID"), Some(TextFormat::Uuid));
        for other in ["TEXT", "VARCHAR(10)", "DATEDIFF", "TIMELINE", "", "uuid[]"] {
            assert_eq!(TextFormat::of(other), None, "{other}");
        }
    }

    #[test]
    fn iso_forms_are_stored_as_postgresql_spells_them() {
        use TextFormat::*;
        for (format, written, stored) in [
            (Date, "2024-02-29", "2024-02-29"),
            (Date, "0001-12-31", "0001-12-31"),
            (Timestamp, "2026-01-02", "2026-01-02 00:00:00"),
            (Timestamp, "2026-01-02T10:00", "2026-01-02 10:00:00"),
            (Timestamp, "2026-01-02t10:00:00.500Z", "2026-01-02 10:00:00.5"),
            (Timestamp, "2026-01-02 10:00:00+02:00", "2026-01-02 10:00:00"),
            (Timestamp, "2026-01-02 10:00:00.1234567", "2026-01-02 10:00:00.123457"),
            (Timestamp, "2026-12-31 24:00:00", "2027-01-01 00:00:00"),
            (Timestamp, "2026-12-31 23:59:60", "2027-01-01 00:00:00"),
            (TimestampTz, "2026-01-02 10:00:00+02", "2026-01-02 08:00:00+00"),
            (TimestampTz, "2026-01-02T01:30:00-05:30", "2026-01-02 07:00:00+00"),
            (TimestampTz, "2026-01-01T00:00:00+0100", "2025-12-31 23:00:00+00"),
            (TimestampTz, "2026-01-02", "2026-01-02 00:00:00+00"),
            (Time, "10:00", "10:00:00"),
            (Time, "10:00:59.5Z", "10:00:59.5"),
            (Time, "24:00:00", "24:00:00"),
            (Time, "23:59:60", "24:00:00"),
            (TimeTz, "10:00:00+05:30", "10:00:00+05:30"),
            (TimeTz, "10:00:00-02", "10:00:00-02"),
            (TimeTz, "10:00", "10:00:00+00"),
            (Uuid, "3F2504E0-4f89-11d3-9a0c-0305e82c3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
        ] {
            assert_eq!(canon(format, written), stored, "{format:?} {written}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        use TextFormat::*;
        let refused = [
            (
                Date,
                &["31/12/2026", "someday", "2026-13-01", "2026-02-30", "2023-02-29", "1900-02-29", "0000-01-01"][..],
            ),
            (Date, &["2026-1-02", "2026-01-02 ", " 2026-01-02", "２０２６-01-02", "", "2026-01-02T00:00"][..]),
            (
                Timestamp,
                &[
                    "2026-01-02T",
                    "2026-01-02 25:00",
                    "2026-01-02 10:60",
                    "2026-01-02 10:00:61",
                    "2026-01-02 24:00:01",
                    "2026-01-02 24:00:00.5",
                    "2026-01-02 23:59:60.5",
                    "2026-01-02 10:00:00.",
                    "2026-01-02 10:00:00.1234567890",
                    "2026-01-02 10:00:00+16",
                    "2026-01-02 10:00:00+05:60",
                    "2026-01-02 10:00:00 UTC",
                    "2026-01-02x10:00",
                    "0000-01-01 00:00:00",
                ][..],
            ),
            (Time, &["10", "10:0", "1:00", "10:00:00:00", "noon", "24:00:00.000001"][..]),
            (Uuid, &["3f2504e04f8911d39a0c0305e82c3301", "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}"][..]),
        ];
        for (format, texts) in refused {
            for text in texts {
                assert!(format.canonical(text).is_err(), "{format:?} {text:?}");
            }
        }
    }

    proptest::proptest! {
        /// Any text is answered, never a panic; what is taken is ASCII, and taken again as
        /// itself (the canonical spelling is a fixed point).
        #[test]
        fn any_text_is_judged(text in "\\PC{0,40}") {
            use TextFormat::*;
            for format in [Date, Timestamp, TimestampTz, Time, TimeTz, Uuid] {
                if let Ok(stored) = format.canonical(&text) {
                    proptest::prop_assert!(text.is_ascii());
                    proptest::prop_assert_eq!(format.canonical(&stored), Ok(stored.clone()));
                }
            }
        }

        /// Every real calendar day is a date, and a timestamp with any time of it; the
        /// canonical spellings sort as the moments do.
        #[test]
        fn moments_sort_as_their_spellings(
            year in 1u32..=9998, month in 1u32..=12, day in 1u32..=31,
            a in 0u32..86_400, b in 0u32..86_400, fa in 0u32..1_000_000, fb in 0u32..1_000_000,
        ) {
            let text = format!("{year:04}-{month:02}-{day:02}");
            let real = NaiveDate::from_ymd_opt(year as i32, month, day).is_some();
            proptest::prop_assert_eq!(TextFormat::Date.canonical(&text).is_ok(), real);
            if real {
                let at = |s: u32, f: u32| format!("{text}T{:02}:{:02}:{:02}.{f:06}Z", s / 3600, s / 60 % 60, s % 60);
                let (x, y) = (canon(TextFormat::TimestampTz, &at(a, fa)), canon(TextFormat::TimestampTz, &at(b, fb)));
                proptest::prop_assert_eq!(x.cmp(&y), (a, fa).cmp(&(b, fb)), "{} {}", x, y);
            }
        }

        /// Any bytes survive their hex form, and any text without a backslash is its own bytes.
        #[test]
        fn bytes_survive_their_hex_form(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..64), text in "[^\\\\]{0,32}") {
            proptest::prop_assert_eq!(bytes(&hex_form(&raw)), Some(raw.clone()));
            proptest::prop_assert_eq!(bytes(&text), Some(text.as_bytes().to_vec()));
            proptest::prop_assert_eq!(TextFormat::Bytes.canonical(&hex_form(&raw)), Ok(hex_form(&raw)));
        }
    }

    #[test]
    fn bytes_in_either_of_postgresql_forms() {
        assert_eq!(bytes("\\x0A 1b\t2c"), Some(vec![0x0a, 0x1b, 0x2c]));
        assert_eq!(bytes("\\x"), Some(vec![]));
        assert_eq!(bytes("a\\\\b\\101\\000"), Some(b"a\\bA\0".to_vec()));
        for bad in ["\\x0", "\\x0 a", "\\xg0", "\\x\u{e9}0", "a\\b", "\\400", "\\12", "\\"] {
            assert_eq!(bytes(bad), None, "{bad:?}");
        }
    }
}
