//! The text forms of the types SQLite does not check. A table made with plain SQL may declare
//! a column `DATE`, `TIMESTAMP`, `TIME` or `UUID`; PostgreSQL refuses a value that is not one
//! (400), but SQLite keeps any text in it, and a date column would fill with `31/12/2026` and
//! `someday`, which sort and compare as nothing useful. On SQLite, writes to such columns are
//! checked against the ISO 8601 forms (the ones SQLite's own date functions read) and the
//! canonical UUID form, so that both backends refuse the same values, in writes and in the
//! values that filters and keys compare with.

/// What a column declared in one of these types holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// `YYYY-MM-DD`.
    Date,
    /// `YYYY-MM-DD`, then optionally `T` or a space, `HH:MM[:SS[.fraction]]` and a zone.
    Timestamp,
    /// `HH:MM[:SS[.fraction]]` and optionally a zone.
    Time,
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hexadecimal digits in either case.
    Uuid,
}

impl TextFormat {
    /// The format a declared SQL type asks for, if it is one of these.
    pub fn of(declared: &str) -> Option<TextFormat> {
        let d = declared.trim().to_ascii_lowercase();
        if d.starts_with("timestamp") || d.starts_with("datetime") {
            Some(TextFormat::Timestamp)
        } else if d == "date" {
            Some(TextFormat::Date)
        } else if d == "time" || d.starts_with("time ") || d.starts_with("time(") || d == "timetz" {
            Some(TextFormat::Time)
        } else if d == "uuid" {
            Some(TextFormat::Uuid)
        } else {
            None
        }
    }

    /// The SQLSTATE PostgreSQL answers for a value not in this format.
    pub fn code(self) -> &'static str {
        match self {
            TextFormat::Uuid => crate::error::codes::INVALID_VALUE,
            _ => crate::error::codes::DATETIME_FORMAT,
        }
    }

    /// The text as stored: a UUID in lowercase, as PostgreSQL stores and compares it (the
    /// same UUID written in capitals is then the same key); anything else as it is.
    pub fn stored(self, text: &str) -> String {
        match self {
            TextFormat::Uuid => text.to_ascii_lowercase(),
            _ => text.to_owned(),
        }
    }

    /// `Err` with the form expected when `text` is not in this format.
    pub fn check(self, text: &str) -> Result<(), &'static str> {
        let fits = match self {
            TextFormat::Date => date(text.as_bytes()).is_some_and(<[u8]>::is_empty),
            TextFormat::Timestamp => timestamp(text.as_bytes()),
            TextFormat::Time => time_with_zone(text.as_bytes()),
            TextFormat::Uuid => uuid(text.as_bytes()),
        };
        if fits {
            return Ok(());
        }
        Err(match self {
            TextFormat::Date => "a date: YYYY-MM-DD",
            TextFormat::Timestamp => "a timestamp: YYYY-MM-DD, then optionally HH:MM[:SS[.fraction]] and Z or ±HH[:MM]",
            TextFormat::Time => "a time: HH:MM[:SS[.fraction]], then optionally Z or ±HH[:MM]",
            TextFormat::Uuid => "a UUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
        })
    }
}

/// `n` ASCII digits at the start of `s`, as a number, and the rest.
fn digits(s: &[u8], n: usize) -> Option<(u32, &[u8])> {
    let (head, rest) = (s.get(..n)?, &s[n..]);
    head.iter().all(u8::is_ascii_digit).then(|| (head.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0')), rest))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A calendar date at the start of `s`; the rest.
fn date(s: &[u8]) -> Option<&[u8]> {
    let (year, s) = digits(s, 4)?;
    let (month, s) = digits(s.strip_prefix(b"-")?, 2)?;
    let (day, s) = digits(s.strip_prefix(b"-")?, 2)?;
    ((1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day)).then_some(s)
}

/// `HH:MM[:SS[.fraction]]` at the start of `s` (24:00:00 and a leap second allowed, as
/// PostgreSQL does); the rest.
fn time(s: &[u8]) -> Option<&[u8]> {
    let (hour, s) = digits(s, 2)?;
    let (minute, mut s) = digits(s.strip_prefix(b":")?, 2)?;
    let mut second = 0;
    if let Some(after) = s.strip_prefix(b":") {
        (second, s) = digits(after, 2)?;
        if let Some(fraction) = s.strip_prefix(b".") {
            let count = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if count == 0 {
                return None;
            }
            s = &fraction[count..];
        }
    }
    let in_range = (hour < 24 && minute < 60 && second <= 60) || (hour == 24 && minute == 0 && second == 0);
    in_range.then_some(s)
}

/// Nothing, `Z`, or `±HH[[:]MM]`.
fn zone(s: &[u8]) -> bool {
    match s {
        [] | [b'Z' | b'z'] => true,
        [b'+' | b'-', rest @ ..] => match digits(rest, 2) {
            Some((hours, [])) => hours <= 15,
            Some((hours, rest)) => {
                let rest = rest.strip_prefix(b":").unwrap_or(rest);
                hours <= 15 && digits(rest, 2).is_some_and(|(minutes, rest)| minutes < 60 && rest.is_empty())
            }
            None => false,
        },
        _ => false,
    }
}

fn time_with_zone(s: &[u8]) -> bool {
    time(s).is_some_and(zone)
}

fn timestamp(s: &[u8]) -> bool {
    match date(s) {
        Some([]) => true,
        Some([b'T' | b't' | b' ', rest @ ..]) => time_with_zone(rest),
        _ => false,
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

    #[test]
    fn declared_types_name_their_format() {
        assert_eq!(TextFormat::of("DATE"), Some(TextFormat::Date));
        assert_eq!(TextFormat::of("TIMESTAMP"), Some(TextFormat::Timestamp));
        assert_eq!(TextFormat::of("timestamp with time zone"), Some(TextFormat::Timestamp));
        assert_eq!(TextFormat::of("DATETIME"), Some(TextFormat::Timestamp));
        assert_eq!(TextFormat::of("TIME"), Some(TextFormat::Time));
        assert_eq!(TextFormat::of("UUID"), Some(TextFormat::Uuid));
        for other in ["TEXT", "VARCHAR(10)", "DATEDIFF", "TIMELINE", "", "uuid[]"] {
            assert_eq!(TextFormat::of(other), None, "{other}");
        }
    }

    #[test]
    fn iso_forms_are_taken() {
        for ok in ["2026-01-02", "2024-02-29", "2000-02-29", "0001-12-31"] {
            assert_eq!(TextFormat::Date.check(ok), Ok(()), "{ok}");
        }
        for ok in [
            "2026-01-02",
            "2026-01-02 10:00",
            "2026-01-02T10:00:00Z",
            "2026-01-02 10:00:00+00",
            "2026-01-02T10:00:00.123456-05:30",
            "2026-01-02t23:59:60+0530",
            "2026-01-02 24:00:00",
        ] {
            assert_eq!(TextFormat::Timestamp.check(ok), Ok(()), "{ok}");
        }
        for ok in ["10:00", "10:00:59.5", "23:59:59Z", "00:00:00+02:00"] {
            assert_eq!(TextFormat::Time.check(ok), Ok(()), "{ok}");
        }
        assert_eq!(TextFormat::Uuid.check("3F2504E0-4f89-11d3-9a0c-0305e82c3301"), Ok(()));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "31/12/2026",
            "someday",
            "2026-13-01",
            "2026-02-30",
            "2023-02-29",
            "1900-02-29",
            "2026-1-02",
            "2026-01-02 ",
            " 2026-01-02",
            "２０２６-01-02",
            "",
        ] {
            assert!(TextFormat::Date.check(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "2026-01-02T",
            "2026-01-02 25:00",
            "2026-01-02 10:60",
            "2026-01-02 10:00:61",
            "2026-01-02 24:00:01",
            "2026-01-02 10:00:00.",
            "2026-01-02 10:00:00+16",
            "2026-01-02 10:00:00+05:60",
            "2026-01-02 10:00:00 UTC",
            "2026-01-02x10:00",
        ] {
            assert!(TextFormat::Timestamp.check(bad).is_err(), "{bad:?}");
        }
        for bad in ["10", "10:0", "1:00", "10:00:00:00", "noon"] {
            assert!(TextFormat::Time.check(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "3f2504e04f8911d39a0c0305e82c3301",
            "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}",
            "3f2504e0-4f89-11d3-9a0c-0305e82c330g",
        ] {
            assert!(TextFormat::Uuid.check(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Any text is answered, never a panic; what is taken has the format's shape.
        #[test]
        fn any_text_is_judged(text in "\\PC{0,40}") {
            for format in [TextFormat::Date, TextFormat::Timestamp, TextFormat::Time, TextFormat::Uuid] {
                if format.check(&text).is_ok() {
                    proptest::prop_assert!(text.is_ascii());
                }
            }
        }

        /// Every real calendar day is a date, and a timestamp with any time of it.
        #[test]
        fn every_day_is_taken(year in 1u32..=9999, month in 1u32..=12, day in 1u32..=31, h in 0u32..24, m in 0u32..60, s in 0u32..60) {
            let text = format!("{year:04}-{month:02}-{day:02}");
            let real = day <= days_in_month(year, month);
            proptest::prop_assert_eq!(TextFormat::Date.check(&text).is_ok(), real);
            let stamp = format!("{text}T{h:02}:{m:02}:{s:02}Z");
            proptest::prop_assert_eq!(TextFormat::Timestamp.check(&stamp).is_ok(), real);
        }
    }
}
