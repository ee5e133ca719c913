//! Which names may be collections and fields. Names are checked here before they reach a
//! schema change; every other use of a name is checked against the live catalog.

use crate::error::ApiError;

/// First path segments under `/api/v1` that belong to the server, never to a collection.
pub const RESERVED_COLLECTIONS: &[&str] = &[
    "admin",
    "api",
    "auth",
    "docs",
    "files",
    "functions",
    "health",
    "hooks",
    "metrics",
    "openapi",
    "realtime",
    "rpc",
    "settings",
    "storage",
    "tables",
];

/// Prefixes of table names the engines keep for themselves: SQLite refuses to create a
/// `sqlite_…` table, and PostgreSQL's own catalogs are `pg_…`.
const ENGINE_TABLE_PREFIXES: &[&str] = &["sqlite_", "pg_"];

/// Column names the engines or the search index already give a meaning: SQLite's row id
/// aliases, FTS5's hidden `rank` column, PostgreSQL's system columns. A field of such a name
/// would shadow the engine's column or break every search of its collection. Compared
/// without case, as SQLite compares column names.
pub const RESERVED_FIELDS: &[&str] =
    &["rowid", "oid", "_rowid_", "rank", "ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"];

/// The system columns every collection has, in the order records show them.
pub const SYSTEM_COLUMNS: &[&str] = &["_id", "_created_at", "_updated_at", "_owner_id", "_deleted_at"];

use crate::limits::MAX_NAME_BYTES as MAX_NAME_LEN;

/// A new collection's name: lower-case ASCII letters, digits and `_`, starting with a letter,
/// at most 63 characters, not reserved. (Lower case only, because SQLite compares table names
/// without case and PostgreSQL with it: one rule keeps both backends alike.)
pub fn check_collection_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(ApiError::bad_request(format!(
            "invalid collection name '{}': use lower-case letters, digits and '_', starting with a letter (at most {MAX_NAME_LEN} bytes, MAX_NAME_BYTES)",
            truncate(name)
        )));
    }
    if RESERVED_COLLECTIONS.contains(&name) {
        return Err(ApiError::bad_request(format!("'{name}' is a reserved name and cannot be a collection")));
    }
    if let Some(prefix) = ENGINE_TABLE_PREFIXES.iter().find(|p| name.starts_with(*p)) {
        return Err(ApiError::bad_request(format!(
            "invalid collection name '{}': names starting with '{prefix}' belong to the database engine",
            truncate(name)
        )));
    }
    Ok(())
}

/// A new field's name: ASCII letters, digits and `_`, starting with a letter, at most 63
/// characters. Names starting with `_` belong to the system.
pub fn check_field_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(ApiError::bad_field(
            name,
            format!(
                "invalid field name '{}': use letters, digits and '_', starting with a letter (at most {MAX_NAME_LEN} bytes, MAX_NAME_BYTES)",
                truncate(name)
            ),
        ));
    }
    if is_reserved_field(name) {
        return Err(ApiError::bad_field(
            name,
            format!("'{name}' is reserved by the database engine or the search index and cannot be a field"),
        ));
    }
    Ok(())
}

pub fn is_reserved_field(name: &str) -> bool {
    RESERVED_FIELDS.iter().any(|r| r.eq_ignore_ascii_case(name))
}

pub fn is_system_column(name: &str) -> bool {
    SYSTEM_COLUMNS.contains(&name)
}

/// Tables Ferrobase keeps for itself are never exposed.
pub fn is_internal_table(name: &str) -> bool {
    name.starts_with("_fb_") || ENGINE_TABLE_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Common English nouns whose plural follows no rule, as a name's last word.
const IRREGULAR_PLURALS: &[(&str, &str)] = &[
    ("person", "people"),
    ("child", "children"),
    ("man", "men"),
    ("woman", "women"),
    ("mouse", "mice"),
    ("goose", "geese"),
    ("foot", "feet"),
    ("tooth", "teeth"),
    ("ox", "oxen"),
    ("leaf", "leaves"),
    ("life", "lives"),
    ("wife", "wives"),
    ("knife", "knives"),
    ("half", "halves"),
    ("shelf", "shelves"),
    ("wolf", "wolves"),
];

/// `name` split before its last word (words are joined by `_`): (`blog_`, `person`).
fn last_word(name: &str) -> (&str, &str) {
    name.rfind('_').map_or(("", name), |at| name.split_at(at + 1))
}

/// The English plural of a table's name, as the tables surface's reference spells its
/// endpoints: `post` → `posts`, `category` → `categories`, `box` → `boxes`, `person` →
/// `people` (and `team_person` → `team_people`).
pub fn plural(name: &str) -> String {
    let (head, word) = last_word(name);
    if let Some((_, many)) = IRREGULAR_PLURALS.iter().find(|(one, _)| *one == word) {
        return format!("{head}{many}");
    }
    if let Some(stem) = name.strip_suffix('y')
        && stem.ends_with(|c: char| c.is_ascii_alphabetic() && !"aeiouAEIOU".contains(c))
    {
        return format!("{stem}ies");
    }
    if ["s", "x", "z", "ch", "sh"].iter().any(|end| name.ends_with(end)) {
        return format!("{name}es");
    }
    format!("{name}s")
}

/// The names whose plural is `name`.
pub fn singulars(name: &str) -> Vec<String> {
    let (head, word) = last_word(name);
    let irregular = IRREGULAR_PLURALS.iter().filter(|(_, many)| *many == word).map(|(one, _)| format!("{head}{one}"));
    let mut found: Vec<String> = [("ies", "y"), ("es", ""), ("s", "")]
        .iter()
        .filter_map(|(end, with)| name.strip_suffix(end).map(|stem| format!("{stem}{with}")))
        .chain(irregular)
        .filter(|candidate| !candidate.is_empty() && plural(candidate) == name)
        .collect();
    found.dedup();
    found
}

/// Shortens a name for an error message so a hostile megabyte-long name is not echoed back.
fn truncate(name: &str) -> String {
    if name.chars().count() <= 80 { name.to_owned() } else { name.chars().take(80).collect::<String>() + "…" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names() {
        for ok in ["posts", "a", "user_profiles2", "x".repeat(63).as_str()] {
            assert!(check_collection_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a;drop table",
            "_fb_users",
            "Posts",
            "1abc",
            "a b",
            "a-b",
            "a\"b",
            "é",
            "auth",
            "admin",
            "storage",
            "tables",
            "sqlite_master",
            "sqlite_x",
            "pg_class",
            "pg_x",
            &"x".repeat(64),
        ] {
            assert!(check_collection_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plurals_and_back() {
        for (one, many) in [
            ("post", "posts"),
            ("category", "categories"),
            ("box", "boxes"),
            ("day", "days"),
            ("status", "statuses"),
            ("match", "matches"),
            ("wish", "wishes"),
            ("quiz", "quizes"),
            ("person", "people"),
            ("team_person", "team_people"),
            ("child", "children"),
            ("shelf", "shelves"),
            ("human", "humans"),
        ] {
            assert_eq!(plural(one), many);
            assert!(singulars(many).contains(&one.to_owned()), "{many} → {:?}", singulars(many));
        }
        assert!(singulars("news").iter().all(|s| plural(s) == "news"));
        assert!(singulars("s").is_empty());
        assert!(singulars("data").is_empty());
    }

    #[test]
    fn field_names() {
        for ok in ["title", "Title", "a1_b"] {
            assert!(check_field_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "_id",
            "_x",
            "1a",
            "a-b",
            "a b",
            "a\"b",
            "a;b",
            "rank",
            "RANK",
            "rowid",
            "RowId",
            "oid",
            "ctid",
            "xmin",
            "tableoid",
            &"x".repeat(64),
        ] {
            assert!(check_field_name(bad).is_err(), "{bad}");
        }
    }
}
