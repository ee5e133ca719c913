//! Request parameters → [`Query`]. Both surfaces' filter spellings parse into the same tree:
//! the collections surface's `filter=field:op:value,…` and PostgREST's `col=op.value`,
//! `col.op=value`, `not.` and nested `or=(…)` / `and=(…)`. Anything not understood is a
//! 400 that names it; nothing is silently dropped.

use super::{Filter, MAX_LIMIT, Op, Operand, ParseError, Query, SelectItem, SortKey, TableQuery};

/// Keywords of the collections surface's list parameters.
pub const COLLECTION_KEYWORDS: &[&str] =
    &["limit", "page", "after", "sort", "filter", "fields", "expand", "search", "include_deleted"];

/// Parses the query string of a collections-surface list (or count) request.
pub fn collection_query(pairs: &[(String, String)]) -> Result<Query, ParseError> {
    let mut query = Query::default();
    let mut seen = Vec::new();
    for (key, value) in pairs {
        // `filter` may repeat (its conditions are ANDed); every other keyword is given once.
        if key != "filter" {
            once(&mut seen, key, COLLECTION_KEYWORDS, "sort=a,-b sorts by both")?;
        }
        match key.as_str() {
            "limit" => query.limit = Some(limit(value)?),
            "page" => query.page = Some(page(value)?),
            "after" => query.after = Some(non_empty("after", value)?.to_owned()),
            "sort" => query.sort.extend(collection_sort(value)?),
            "filter" => query.filters.extend(collection_filter(value)?),
            "fields" => query.fields = Some(field_list("fields", value)?),
            "include_deleted" => query.include_deleted = boolean("include_deleted", value)?,
            "expand" => query.expand = field_list("expand", value)?,
            "search" => query.search = Some(crate::data::search::parse(value)?),
            _ => query.filters.push(postgrest_param(key, value)?),
        }
    }
    check_filter_limits(&query.filters)?;
    Ok(query)
}

/// Refuses a keyword given twice, which would have to drop one of its values. Filters are not
/// keywords: those repeat freely (they are ANDed).
fn once<'k>(seen: &mut Vec<&'k str>, key: &'k str, keywords: &[&str], hint: &str) -> Result<(), ParseError> {
    if !keywords.contains(&key) {
        return Ok(());
    }
    if seen.contains(&key) {
        return Err(ParseError::new(format!("'{key}' is given twice; give it once ({hint})")));
    }
    seen.push(key);
    Ok(())
}

/// Keywords of the tables surface (PostgREST); every other key is a filter.
pub const TABLE_KEYWORDS: &[&str] = &["select", "order", "limit", "offset", "count", "on_conflict", "columns"];

/// The largest page the tables surface answers (also its default page size).
pub const TABLE_MAX_LIMIT: u32 = crate::limits::MAX_TABLE_PAGE;

/// Parses the query string of a tables-surface request (PostgREST dialect).
pub fn table_query(pairs: &[(String, String)]) -> Result<TableQuery, ParseError> {
    let mut tq = TableQuery::default();
    let mut seen = Vec::new();
    for (key, value) in pairs {
        once(&mut seen, key, TABLE_KEYWORDS, "order=a,b.desc orders by both")?;
        match key.as_str() {
            "select" => tq.query.select = Some(select_list(value)?),
            "order" => tq.query.sort.extend(postgrest_order(value)?),
            "limit" => {
                tq.query.limit = Some(match value.trim().parse::<u32>() {
                    Ok(n) if n <= TABLE_MAX_LIMIT => n,
                    _ => {
                        return Err(ParseError::new(format!(
                            "limit must be a whole number from 0 to {TABLE_MAX_LIMIT} (MAX_TABLE_PAGE)"
                        )));
                    }
                })
            }
            "offset" => {
                tq.query.offset =
                    Some(value.trim().parse::<u64>().ok().filter(|n| *n <= i64::MAX as u64).ok_or_else(|| {
                        ParseError::new(format!("offset must be a whole number from 0 to {}", i64::MAX))
                    })?)
            }
            "count" => tq.count = count_option(value)?,
            "on_conflict" => tq.on_conflict = Some(column_names("on_conflict", value)?),
            "columns" => tq.columns = Some(column_names("columns", value)?),
            _ => tq.query.filters.push(postgrest_param(key, value)?),
        }
    }
    check_filter_limits(&tq.query.filters)?;
    Ok(tq)
}

/// Refuses filters with more than [`MAX_CONDITIONS`] conditions or [`MAX_IN_VALUES`] `in`
/// values in all: each becomes a bound parameter (twice for a counted page), and a statement
/// has a bounded number of those.
pub fn check_filter_limits(filters: &[Filter]) -> Result<(), ParseError> {
    fn tally(filter: &Filter, conditions: &mut usize, values: &mut usize) {
        match filter {
            Filter::And(children) | Filter::Or(children) => {
                children.iter().for_each(|c| tally(c, conditions, values));
            }
            Filter::Not(inner) => tally(inner, conditions, values),
            Filter::Cond(cond) => {
                *conditions += 1;
                if let Operand::List(list) = &cond.value {
                    *values += list.len();
                }
            }
        }
    }
    let (mut conditions, mut values) = (0, 0);
    filters.iter().for_each(|f| tally(f, &mut conditions, &mut values));
    at_most("the filters hold", conditions, "conditions", MAX_CONDITIONS, "MAX_CONDITIONS")?;
    at_most("the in lists hold", values, "values", MAX_IN_VALUES, "MAX_IN_VALUES")
}

/// 400 when a request holds `count` things of a kind where `limit` may hold at most `max`:
/// "the filters hold 120 conditions; at most 100 are allowed (MAX_CONDITIONS)".
fn at_most(subject: &str, count: usize, things: &str, max: usize, limit: &str) -> Result<(), ParseError> {
    if count > max {
        return Err(ParseError::new(format!("{subject} {count} {things}; at most {max} are allowed ({limit})")));
    }
    Ok(())
}

/// `count=exact|planned|estimated` (all counted exactly) → whether to count.
pub fn count_option(value: &str) -> Result<bool, ParseError> {
    match value.trim() {
        "exact" | "planned" | "estimated" => Ok(true),
        other => {
            let shown: String = other.chars().take(40).collect();
            Err(ParseError::new(format!("invalid count '{shown}': use exact, planned or estimated")))
        }
    }
}

/// `a,b` or `"a","b"` (as postgrest-js writes `columns=`).
fn column_names(keyword: &str, value: &str) -> Result<Vec<String>, ParseError> {
    let names: Vec<String> = split_top_level(value, ',')?.iter().map(|v| unquote(v.trim())).collect();
    if names.iter().any(String::is_empty) {
        return Err(ParseError::new(format!("{keyword} must be a comma-separated list of column names")));
    }
    at_most(&format!("{keyword} names"), names.len(), "columns", MAX_COLUMNS, "MAX_COLUMNS")?;
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = names.iter().find(|name| !seen.insert(name.as_str())) {
        let shown: String = twice.chars().take(64).collect();
        return Err(ParseError::new(format!("{keyword} names '{shown}' twice")));
    }
    Ok(names)
}

use crate::limits::{
    MAX_COLUMNS, MAX_CONDITIONS, MAX_FILTER_DEPTH, MAX_IN_VALUES, MAX_SELECT_BYTES as MAX_SELECT_LEN, MAX_SELECT_DEPTH,
    MAX_SELECT_EMBEDS, MAX_SELECT_ITEMS, MAX_SORT_KEYS,
};

/// PostgREST's `select=*,alias:col,rel(*),alias:rel(a,b)`.
pub fn select_list(value: &str) -> Result<Vec<SelectItem>, ParseError> {
    if value.len() > MAX_SELECT_LEN {
        return Err(ParseError::new(format!("select is longer than {MAX_SELECT_LEN} bytes (MAX_SELECT_BYTES)")));
    }
    let items = select_items(value, 0)?;
    let (columns, embeds) = count_select(&items);
    at_most("select names", columns, "columns", MAX_SELECT_ITEMS, "MAX_SELECT_ITEMS")?;
    at_most("select embeds", embeds, "resources", MAX_SELECT_EMBEDS, "MAX_SELECT_EMBEDS")?;
    Ok(items)
}

/// The columns named (each `*` counting as one) and the embeds of a select, at every level.
fn count_select(items: &[SelectItem]) -> (usize, usize) {
    items.iter().fold((0, 0), |(columns, embeds), item| match item {
        SelectItem::Star | SelectItem::Column { .. } => (columns + 1, embeds),
        SelectItem::Embed { select, .. } => {
            let (c, e) = count_select(select);
            (columns + c, embeds + e + 1)
        }
    })
}

fn select_items(value: &str, depth: usize) -> Result<Vec<SelectItem>, ParseError> {
    if depth > MAX_SELECT_DEPTH {
        return Err(ParseError::new(format!(
            "select nests embeds deeper than {MAX_SELECT_DEPTH} levels (MAX_SELECT_DEPTH)"
        )));
    }
    split_top_level(value, ',')?.iter().map(|part| select_item(part.trim(), depth)).collect()
}

fn select_item(part: &str, depth: usize) -> Result<SelectItem, ParseError> {
    let shown = || part.chars().take(64).collect::<String>();
    if part == "*" {
        return Ok(SelectItem::Star);
    }
    if part.is_empty() {
        return Err(ParseError::new("select has an empty item"));
    }
    if part.contains("::") || part.contains("->") || part.starts_with("...") {
        return Err(ParseError::new(format!(
            "select item '{}': casts, JSON paths and spreads are not supported",
            shown()
        )));
    }
    // The alias is what comes before a ':' outside parentheses and quotes.
    let head_end = part.find('(').unwrap_or(part.len());
    let (alias, rest) = match part[..head_end].find(':') {
        Some(i) => (Some(unquote(part[..i].trim())), part[i + 1..].trim()),
        None => (None, part),
    };
    if alias.as_deref() == Some("") {
        return Err(ParseError::new(format!("select item '{}' has an empty alias", shown())));
    }
    if let Some(open) = rest.find('(') {
        let inner = rest[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| ParseError::new(format!("select item '{}' must end with ')'", shown())))?;
        let (name, hint) = embed_head(rest[..open].trim()).ok_or_else(|| {
            ParseError::new(format!(
                "select item '{}': write relation(columns) or relation!foreign_key(columns) (the '!inner' join is not supported)",
                shown()
            ))
        })?;
        let select = if inner.trim().is_empty() { vec![SelectItem::Star] } else { select_items(inner, depth + 1)? };
        return Ok(SelectItem::Embed { name, alias, hint, select });
    }
    if rest.contains(')') || rest.contains('!') || rest == "*" && alias.is_some() {
        return Err(ParseError::new(format!("invalid select item '{}'", shown())));
    }
    Ok(SelectItem::Column { name: unquote(rest), alias })
}

/// `authors`, `authors!author_id` or `authors!posts_author_id_fkey!left` → the name and the
/// foreign key hint. `!left` is how embeds join anyway; `!inner` (which would drop the rows
/// without a related one) is not supported, nor is more than one hint.
fn embed_head(head: &str) -> Option<(String, Option<String>)> {
    let mut parts = head.split('!').map(str::trim);
    let name = unquote(parts.next().filter(|n| !n.is_empty())?);
    let mut hint = None;
    for part in parts {
        match part {
            "left" => {}
            "" | "inner" => return None,
            key if hint.is_none() => hint = Some(unquote(key)),
            _ => return None,
        }
    }
    Some((name, hint))
}

pub fn limit(value: &str) -> Result<u32, ParseError> {
    match value.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ParseError::new(format!("limit must be a whole number from 1 to {MAX_LIMIT} (MAX_PAGE)"))),
    }
}

fn page(value: &str) -> Result<u32, ParseError> {
    match value.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ParseError::new(format!("page must be a whole number from 1 to {}", u32::MAX))),
    }
}

fn non_empty<'a>(name: &str, value: &'a str) -> Result<&'a str, ParseError> {
    let value = value.trim();
    if value.is_empty() { Err(ParseError::new(format!("{name} must not be empty"))) } else { Ok(value) }
}

pub fn boolean(name: &str, value: &str) -> Result<bool, ParseError> {
    match value.trim() {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ParseError::new(format!("{name} must be true or false"))),
    }
}

/// `fields=a,b,c`.
pub fn field_list(param: &str, value: &str) -> Result<Vec<String>, ParseError> {
    let mut fields: Vec<String> = Vec::new();
    for field in value.split(',').map(str::trim) {
        if field.is_empty() {
            return Err(ParseError::new(format!("{param} must be a comma-separated list of field names")));
        }
        // A field named twice is shown once (a JSON object has each key once).
        if !fields.iter().any(|f| f == field) {
            fields.push(field.to_owned());
        }
    }
    Ok(fields)
}

/// `sort=field:asc,-other,third:desc`.
pub fn collection_sort(value: &str) -> Result<Vec<SortKey>, ParseError> {
    at_most_sort_keys("sort", value)?;
    value
        .split(',')
        .map(|part| {
            let part = part.trim();
            let (column, descending) = if let Some(rest) = part.strip_prefix('-') {
                (rest, true)
            } else if let Some((col, dir)) = part.split_once(':') {
                match dir.to_ascii_lowercase().as_str() {
                    "asc" => (col, false),
                    "desc" => (col, true),
                    _ => {
                        return Err(ParseError::new(format!("invalid sort direction '{dir}': use asc or desc")));
                    }
                }
            } else {
                (part, false)
            };
            if column.is_empty() {
                return Err(ParseError::new("sort must be a comma-separated list of field[:asc|desc]"));
            }
            Ok(SortKey { column: column.to_owned(), descending, nulls_first: None })
        })
        .collect()
}

/// PostgREST's `order=col.desc.nullslast,col2`. Without `nullsfirst` or `nullslast`, nulls
/// sort as PostgreSQL (and so PostgREST) sorts them: as the largest value, last ascending and
/// first descending.
pub fn postgrest_order(value: &str) -> Result<Vec<SortKey>, ParseError> {
    at_most_sort_keys("order", value)?;
    value
        .split(',')
        .map(|part| {
            let mut pieces = part.trim().split('.');
            let column = pieces.next().unwrap_or("");
            if column.is_empty() {
                return Err(ParseError::new(
                    "order must be a comma-separated list of column[.asc|.desc][.nullsfirst|.nullslast]",
                ));
            }
            let mut key = SortKey::asc(column);
            for modifier in pieces {
                match modifier {
                    "asc" => key.descending = false,
                    "desc" => key.descending = true,
                    "nullsfirst" => key.nulls_first = Some(true),
                    "nullslast" => key.nulls_first = Some(false),
                    other => return Err(ParseError::new(format!("invalid order modifier '{other}'"))),
                }
            }
            key.nulls_first.get_or_insert(key.descending);
            Ok(key)
        })
        .collect()
}

/// Refuses a sort of more than [`MAX_SORT_KEYS`] keys before parsing it: each is a term of the
/// statement's `ORDER BY` (and of the cursor's condition), which SQLite caps.
fn at_most_sort_keys(keyword: &str, value: &str) -> Result<(), ParseError> {
    at_most(&format!("{keyword} has"), value.split(',').count(), "keys", MAX_SORT_KEYS, "MAX_SORT_KEYS")
}

/// `filter=field:op:value,field2:op:value2` (values may be double-quoted to hold `,`).
pub fn collection_filter(value: &str) -> Result<Vec<Filter>, ParseError> {
    split_top_level(value, ',')?
        .into_iter()
        .map(|part| {
            let mut pieces = part.splitn(3, ':');
            let (Some(column), Some(op), Some(raw)) = (pieces.next(), pieces.next(), pieces.next()) else {
                return Err(ParseError::new(format!("invalid filter '{part}': use field:operator:value")));
            };
            let (op, negated) = operator(op)?;
            let operand = match op {
                // Values are taken as written, white space included (`title:eq: lead` is not
                // `title:eq:lead`); only the names around them may be spaced out.
                Op::In => Operand::List(raw.split('|').map(unquote).collect()),
                _ => operand(op, &unquote(raw))?,
            };
            Ok(condition(column.trim(), op, operand, negated))
        })
        .collect()
}

/// One PostgREST-style query parameter that is not a keyword: `col=op.value`,
/// `col=not.op.value`, `col.op=value`, `col.is.null` (with no value), `or=(…)`, `and=(…)`,
/// `not.or=(…)`.
pub fn postgrest_param(key: &str, value: &str) -> Result<Filter, ParseError> {
    match key {
        "or" | "and" | "not.or" | "not.and" => {
            let negated = key.starts_with("not.");
            let tree = logic_tree(key.trim_start_matches("not."), value)?;
            return Ok(if negated { Filter::Not(Box::new(tree)) } else { tree });
        }
        _ => {}
    }
    if let Some((column, rest)) = key.split_once('.') {
        // `col.op=value`, `col.not.op=value`, or the value inside the key: `col.is.null`.
        let (negated, rest) = match rest.strip_prefix("not.") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let (op_name, raw) = match rest.split_once('.') {
            Some((op, v)) if value.is_empty() => (op, v.to_owned()),
            _ => (rest, value.to_owned()),
        };
        let (op, op_negated) = operator(op_name).map_err(|err| embedded_parameter(key, rest, value).unwrap_or(err))?;
        let operand = postgrest_operand(op, &raw, Verbatim)?;
        return Ok(condition(column, op, operand, negated ^ op_negated));
    }
    postgrest_condition(key, value, Verbatim).map_err(|err| {
        if value.contains('.') {
            err
        } else {
            ParseError::new(format!("unknown query parameter '{key}' (filters are written column=operator.value)"))
        }
    })
}

/// `authors.name=eq.Ann`, `authors.order=name`: PostgREST's parameters of an embedded
/// resource, which this server does not take; they are named as such rather than as an
/// unknown operator.
fn embedded_parameter(key: &str, rest: &str, value: &str) -> Option<ParseError> {
    let named = rest.split('.').next()?;
    let keyword = matches!(named, "order" | "limit" | "offset" | "select" | "or" | "and");
    let value = value.strip_prefix("not.").unwrap_or(value);
    let filter = value.split_once('.').is_some_and(|(op, _)| operator(op).is_ok());
    if !keyword && !filter {
        return None;
    }
    let shown: String = key.chars().take(64).collect();
    Some(ParseError::new(format!(
        "'{shown}' filters, orders or limits an embedded resource by '{named}', which this server does not support: filter the embedded table with its own request"
    )))
}

/// How a scalar value is read: PostgREST takes a top-level filter's value as written
/// (`title=eq."x"` matches the text `"x"` with its quotes), and unquotes a value only inside
/// `or=(…)`/`and=(…)` where a comma or parenthesis must be quoted (`or=(title.eq."a,b")`).
/// An `in.(…)` list is read alike in both.
#[derive(Clone, Copy, PartialEq)]
enum ValueForm {
    Verbatim,
    MayBeQuoted,
}
use ValueForm::{MayBeQuoted, Verbatim};

/// `op.value` or `not.op.value` applied to `column`.
fn postgrest_condition(column: &str, expr: &str, form: ValueForm) -> Result<Filter, ParseError> {
    let (negated, expr) = match expr.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, expr),
    };
    let Some((op_name, raw)) = expr.split_once('.') else {
        return Err(ParseError::new(format!("invalid filter on '{column}': use {column}=operator.value")));
    };
    let (op, op_negated) = operator(op_name)?;
    let operand = postgrest_operand(op, raw, form)?;
    Ok(condition(column, op, operand, negated ^ op_negated))
}

/// The body of `or=(…)` / `and=(…)`: conditions `col.op.value` and nested `or(…)`/`and(…)`,
/// parsed in one pass over the text (no copies of the rest per level) and at most
/// [`MAX_FILTER_DEPTH`] groups deep, so a hostile query string can neither take quadratic time
/// nor exhaust the stack.
fn logic_tree(kind: &str, value: &str) -> Result<Filter, ParseError> {
    let value = value.trim();
    if !value.starts_with('(') {
        return Err(ParseError::new(format!("{kind} must be written {kind}=(condition,condition,…)")));
    }
    let mut parser = LogicParser { text: value, pos: 0 };
    let tree = parser.group(kind, 1)?;
    if parser.pos != value.len() {
        return Err(ParseError::new(format!("unexpected text after the closing ')' of {kind}=(…)")));
    }
    Ok(tree)
}

/// A cursor over the text of an `or=(…)` / `and=(…)` value.
struct LogicParser<'a> {
    text: &'a str,
    pos: usize,
}

impl LogicParser<'_> {
    /// `(item,item,…)` at the cursor, as an `or` or `and` of its items.
    fn group(&mut self, kind: &str, depth: usize) -> Result<Filter, ParseError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(ParseError::new(format!(
                "filters nest or/and groups deeper than {MAX_FILTER_DEPTH} levels (MAX_FILTER_DEPTH)"
            )));
        }
        self.pos += 1; // the '('
        let mut children = Vec::new();
        loop {
            children.push(self.item(kind, depth)?);
            match self.text[self.pos..].chars().next() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(ParseError::new("unbalanced parentheses in filter")),
            }
        }
        Ok(if kind == "or" { Filter::Or(children) } else { Filter::And(children) })
    }

    /// One item of a group: `[not.]or(…)`, `[not.]and(…)` or `[not.]column.op.value`.
    fn item(&mut self, kind: &str, depth: usize) -> Result<Filter, ParseError> {
        let rest = self.text[self.pos..].trim_start();
        self.pos = self.text.len() - rest.len();
        let negated = rest.starts_with("not.");
        if negated {
            self.pos += 4;
        }
        let rest = &self.text[self.pos..];
        let nested = ["or(", "and("].into_iter().find(|p| rest.starts_with(p));
        let filter = match nested {
            Some(prefix) => {
                self.pos += prefix.len() - 1;
                self.group(&prefix[..prefix.len() - 1], depth + 1)?
            }
            None => {
                let part = self.condition_text()?.trim();
                if part.is_empty() && !negated {
                    return Err(ParseError::new(format!("{kind}=() needs at least one condition")));
                }
                let Some((column, expr)) = part.split_once('.') else {
                    return Err(ParseError::new(format!(
                        "invalid condition '{}' in {kind}: use column.operator.value",
                        part.chars().take(64).collect::<String>()
                    )));
                };
                postgrest_condition(column, expr, MayBeQuoted)?
            }
        };
        Ok(if negated { Filter::Not(Box::new(filter)) } else { filter })
    }

    /// The text of one condition: up to the next `,` or `)` outside quotes and the
    /// parentheses of its own value (`in.(a,b)`).
    fn condition_text(&mut self) -> Result<&str, ParseError> {
        let start = self.pos;
        let (mut depth, mut in_quotes, mut escaped) = (0usize, false, false);
        for (i, ch) in self.text[start..].char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match ch {
                '\\' if in_quotes => escaped = true,
                '"' => in_quotes = !in_quotes,
                ')' | ',' if !in_quotes && depth == 0 => {
                    self.pos = start + i;
                    return Ok(&self.text[start..start + i]);
                }
                '(' if !in_quotes => depth += 1,
                ')' if !in_quotes => depth -= 1,
                _ => {}
            }
        }
        Err(ParseError::new("unbalanced quotes or parentheses in filter"))
    }
}

/// An operator name → the operator and whether it is negated (`nin` is `not in`).
fn operator(name: &str) -> Result<(Op, bool), ParseError> {
    Ok(match name {
        "eq" => (Op::Eq, false),
        "neq" | "ne" => (Op::Neq, false),
        "gt" => (Op::Gt, false),
        "gte" => (Op::Gte, false),
        "lt" => (Op::Lt, false),
        "lte" => (Op::Lte, false),
        "like" => (Op::Like, false),
        "ilike" => (Op::Ilike, false),
        "in" => (Op::In, false),
        "nin" => (Op::In, true),
        "is" => (Op::Is, false),
        "contains" => (Op::Contains, false),
        "startsWith" | "startswith" => (Op::StartsWith, false),
        "cs" => (Op::Cs, false),
        "cd" => (Op::Cd, false),
        "fts" | "wfts" => (Op::Fts, false),
        "plfts" => (Op::Plfts, false),
        "phfts" => (Op::Phfts, false),
        // PostgREST's text search configuration, `fts(english)`: searches always use the
        // `simple` configuration, so that both backends find the same records.
        fts if fts.ends_with(')') && fts.split_once('(').is_some_and(|(op, _)| op.ends_with("fts")) => {
            return operator(fts.split_once('(').map_or(fts, |(op, _)| op));
        }
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(ParseError::new(format!("unknown operator '{shown}'")));
        }
    })
}

fn postgrest_operand(op: Op, raw: &str, form: ValueForm) -> Result<Operand, ParseError> {
    match op {
        Op::In => {
            let inner = raw.trim();
            let inner = inner.strip_prefix('(').and_then(|v| v.strip_suffix(')')).unwrap_or(inner);
            if inner.is_empty() {
                return Ok(Operand::List(Vec::new()));
            }
            Ok(Operand::List(split_top_level(inner, ',')?.iter().map(|v| unquote(v.trim())).collect()))
        }
        _ if form == MayBeQuoted => operand(op, &unquote(raw)),
        _ => operand(op, raw),
    }
}

fn operand(op: Op, raw: &str) -> Result<Operand, ParseError> {
    if op != Op::Is {
        return Ok(Operand::Scalar(raw.to_owned()));
    }
    match raw.to_ascii_lowercase().as_str() {
        "null" => Ok(Operand::Null),
        "true" => Ok(Operand::Bool(true)),
        "false" => Ok(Operand::Bool(false)),
        _ => Err(ParseError::new("the is operator takes null, true or false")),
    }
}

fn condition(column: &str, op: Op, value: Operand, negated: bool) -> Filter {
    let cond = Filter::Cond(super::Condition { column: column.to_owned(), op, value });
    if negated { Filter::Not(Box::new(cond)) } else { cond }
}

/// Splits on `sep` outside parentheses and double quotes.
fn split_top_level(s: &str, sep: char) -> Result<Vec<String>, ParseError> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut depth, mut in_quotes, mut escaped) = (0usize, false, false);
    for ch in s.chars() {
        if escaped {
            current.push(ch);
            escaped = false;
            continue;
        }
        match ch {
            '\\' if in_quotes => {
                current.push(ch);
                escaped = true;
                continue;
            }
            '"' => in_quotes = !in_quotes,
            '(' if !in_quotes => depth += 1,
            ')' if !in_quotes => {
                depth = depth.checked_sub(1).ok_or_else(|| ParseError::new("unbalanced parentheses in filter"))?;
            }
            c if c == sep && !in_quotes && depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    if in_quotes || depth != 0 {
        return Err(ParseError::new("unbalanced quotes or parentheses in filter"));
    }
    parts.push(current);
    Ok(parts)
}

/// `"a \"b\", c"` → `a "b", c`; anything not fully quoted is returned as is.
fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|v| v.strip_suffix('"')).filter(|_| s.len() >= 2) else {
        return s.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Condition;
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn cond(column: &str, op: Op, value: Operand) -> Filter {
        Filter::Cond(Condition { column: column.into(), op, value })
    }

    fn scalar(v: &str) -> Operand {
        Operand::Scalar(v.into())
    }

    #[test]
    fn field_lists_name_each_field_once() {
        assert_eq!(field_list("fields", "title, n,title").unwrap(), vec!["title".to_owned(), "n".to_owned()]);
        assert!(field_list("fields", "title,,n").is_err());
        assert!(field_list("expand", "").unwrap_err().message.starts_with("expand must"));
    }

    #[test]
    fn collection_keywords() {
        let q = collection_query(&pairs(&[
            ("limit", "20"),
            ("page", "3"),
            ("sort", "-score,title:asc"),
            ("fields", "title, score"),
            ("include_deleted", "true"),
        ]))
        .unwrap();
        assert_eq!(q.limit, Some(20));
        assert_eq!(q.offset(), 40);
        assert_eq!(
            q.sort,
            vec![SortKey { column: "score".into(), descending: true, nulls_first: None }, SortKey::asc("title")]
        );
        assert_eq!(q.fields, Some(vec!["title".into(), "score".into()]));
        assert!(q.include_deleted);
    }

    #[test]
    fn bad_keywords_are_refused() {
        for (k, v) in [
            ("limit", "0"),
            ("limit", "501"),
            ("limit", "-1"),
            ("limit", "ten"),
            ("page", "0"),
            ("sort", "title:sideways"),
            ("sort", ""),
            ("fields", "a,,b"),
            ("include_deleted", "maybe"),
            ("after", ""),
            ("bogus", "value"),
            ("search", "\"x"),
            ("search", "NOT x"),
            ("expand", "a,,b"),
        ] {
            assert!(collection_query(&pairs(&[(k, v)])).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn collection_filters() {
        let f = collection_filter("status:eq:active,score:gte:10,tag:in:a|b,title:contains:\"x, y\"").unwrap();
        assert_eq!(
            f,
            vec![
                cond("status", Op::Eq, scalar("active")),
                cond("score", Op::Gte, scalar("10")),
                cond("tag", Op::In, Operand::List(vec!["a".into(), "b".into()])),
                cond("title", Op::Contains, scalar("x, y")),
            ]
        );
        let nin = collection_filter("tag:nin:a|b").unwrap();
        assert_eq!(nin, vec![Filter::Not(Box::new(cond("tag", Op::In, Operand::List(vec!["a".into(), "b".into()]))))]);
        // A value may hold colons.
        assert_eq!(collection_filter("url:eq:http://x").unwrap(), vec![cond("url", Op::Eq, scalar("http://x"))]);
        // Values as written; names may be spaced out.
        assert_eq!(collection_filter("s:eq: lead").unwrap(), vec![cond("s", Op::Eq, scalar(" lead"))]);
        assert_eq!(collection_filter("a:eq:1, s:eq:  ").unwrap()[1], cond("s", Op::Eq, scalar("  ")));
        for bad in ["status", "status:eq", "a:nope:1", "a:eq:\"open", "a:is:maybe"] {
            assert!(collection_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn postgrest_forms() {
        assert_eq!(postgrest_param("age", "gt.18").unwrap(), cond("age", Op::Gt, scalar("18")));
        assert_eq!(postgrest_param("age.gt", "18").unwrap(), cond("age", Op::Gt, scalar("18")));
        assert_eq!(postgrest_param("deleted_at.is.null", "").unwrap(), cond("deleted_at", Op::Is, Operand::Null));
        assert_eq!(
            postgrest_param("age", "not.eq.3").unwrap(),
            Filter::Not(Box::new(cond("age", Op::Eq, scalar("3"))))
        );
        assert_eq!(
            postgrest_param("status", "in.(active,\"on,hold\")").unwrap(),
            cond("status", Op::In, Operand::List(vec!["active".into(), "on,hold".into()]))
        );
        assert_eq!(
            postgrest_param("status.in", "(a,b)").unwrap(),
            cond("status", Op::In, Operand::List(vec!["a".into(), "b".into()]))
        );
        assert_eq!(postgrest_param("name", "eq.a.b").unwrap(), cond("name", Op::Eq, scalar("a.b")));
        // A top-level value is taken as written, quotes and all (postgrest-js sends
        // `.eq('title', '"x"')` so); inside or=(…) quotes protect commas and parentheses.
        assert_eq!(postgrest_param("title", "eq.\"x\"").unwrap(), cond("title", Op::Eq, scalar("\"x\"")));
        assert_eq!(postgrest_param("title", "like.\"x*").unwrap(), cond("title", Op::Like, scalar("\"x*")));
        assert_eq!(postgrest_param("title.eq", "\"x\"").unwrap(), cond("title", Op::Eq, scalar("\"x\"")));
        assert_eq!(
            postgrest_param("or", "(title.eq.\"a,(b)\",title.eq.\"\\\"q\\\"\")").unwrap(),
            Filter::Or(vec![cond("title", Op::Eq, scalar("a,(b)")), cond("title", Op::Eq, scalar("\"q\""))])
        );
    }

    #[test]
    fn nested_logic() {
        let f =
            postgrest_param("or", "(age.lt.18,and(status.eq.active,not.score.is.null),not.or(a.eq.1,b.eq.2))").unwrap();
        assert_eq!(
            f,
            Filter::Or(vec![
                cond("age", Op::Lt, scalar("18")),
                Filter::And(vec![
                    cond("status", Op::Eq, scalar("active")),
                    Filter::Not(Box::new(cond("score", Op::Is, Operand::Null))),
                ]),
                Filter::Not(Box::new(Filter::Or(vec![cond("a", Op::Eq, scalar("1")), cond("b", Op::Eq, scalar("2"))]))),
            ])
        );
    }

    #[test]
    fn hostile_filters_are_refused_not_panicking() {
        for (k, v) in [
            ("or", "(a.eq.1"),
            ("or", "a.eq.1)"),
            ("or", "()"),
            ("or", "((("),
            ("and", "(a)"),
            ("age", "gt"),
            ("age", "xx.1"),
            ("age", "not.nope.1"),
            ("a.b.c.d", "1"),
            ("x", "'; drop table users; --"),
        ] {
            assert!(postgrest_param(k, v).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn table_keywords_and_filters() {
        let tq = table_query(&pairs(&[
            ("select", "id,title"),
            ("order", "a.desc.nullslast"),
            ("limit", "10"),
            ("offset", "20"),
            ("count", "exact"),
            ("on_conflict", "a,b"),
            ("columns", "\"a\",\"b\""),
            ("done", "is.true"),
        ]))
        .unwrap();
        assert_eq!(tq.query.limit, Some(10));
        assert_eq!(tq.query.offset, Some(20));
        assert!(tq.count);
        assert_eq!(tq.on_conflict, Some(vec!["a".into(), "b".into()]));
        assert_eq!(tq.columns, Some(vec!["a".into(), "b".into()]));
        assert_eq!(tq.query.filters, vec![cond("done", Op::Is, Operand::Bool(true))]);
        assert_eq!(tq.query.sort.len(), 1);
        for (k, v) in [
            ("limit", "1001"),
            ("limit", "x"),
            ("offset", "-1"),
            ("count", "sometimes"),
            ("columns", "a,,b"),
            ("on_conflict", ""),
            ("select", "a,"),
            ("bogus", "value"),
            ("page", "2"),
        ] {
            assert!(table_query(&pairs(&[(k, v)])).is_err(), "{k}={v}");
        }
        let err = table_query(&pairs(&[("bogus", "value")])).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn a_keyword_given_twice_is_refused() {
        for key in ["select", "order", "limit", "offset", "count", "on_conflict", "columns"] {
            let value = if key == "count" {
                "exact"
            } else if key == "limit" || key == "offset" {
                "1"
            } else {
                "a"
            };
            let err = table_query(&pairs(&[(key, value), ("a", "eq.1"), (key, value)])).unwrap_err();
            assert!(err.to_string().contains("twice"), "{key}: {err}");
        }
        // Filters on one column repeat freely (they are ANDed).
        assert!(table_query(&pairs(&[("a", "gt.1"), ("a", "lt.4")])).is_ok());
        for (key, value) in [("limit", "1"), ("sort", "a"), ("fields", "a"), ("search", "x")] {
            assert!(collection_query(&pairs(&[(key, value), (key, value)])).is_err(), "{key}");
        }
        assert!(collection_query(&pairs(&[("filter", "a:eq:1"), ("filter", "b:eq:2")])).is_ok());
    }

    #[test]
    fn parameters_of_an_embedded_resource_are_named_as_such() {
        for (key, value) in [
            ("authors.name", "eq.Ann"),
            ("authors.order", "name.desc"),
            ("authors.limit", "1"),
            ("authors.name", "not.like.A*"),
        ] {
            let err = table_query(&pairs(&[(key, value)])).unwrap_err().to_string();
            assert!(err.contains("embedded resource"), "{key}={value}: {err}");
        }
        let err = table_query(&pairs(&[("title.bogus", "x")])).unwrap_err().to_string();
        assert!(err.contains("bogus") && !err.contains("embedded"), "{err}");
    }

    #[test]
    fn select_lists() {
        let col = |n: &str, a: Option<&str>| SelectItem::Column { name: n.into(), alias: a.map(Into::into) };
        assert_eq!(
            select_list("*,label:title,author(name),writer:authors(*),comments()").unwrap(),
            vec![
                SelectItem::Star,
                col("title", Some("label")),
                SelectItem::Embed { name: "author".into(), alias: None, hint: None, select: vec![col("name", None)] },
                SelectItem::Embed {
                    name: "authors".into(),
                    alias: Some("writer".into()),
                    hint: None,
                    select: vec![SelectItem::Star]
                },
                SelectItem::Embed { name: "comments".into(), alias: None, hint: None, select: vec![SelectItem::Star] },
            ]
        );
        assert_eq!(
            select_list("a(b(c))").unwrap(),
            vec![SelectItem::Embed {
                name: "a".into(),
                alias: None,
                hint: None,
                select: vec![SelectItem::Embed {
                    name: "b".into(),
                    alias: None,
                    hint: None,
                    select: vec![col("c", None)]
                }],
            }]
        );
        // Quoted names are names, never SQL.
        assert_eq!(select_list("\"x; drop table t\"").unwrap(), vec![col("x; drop table t", None)]);
        // A foreign key hint, with PostgREST's default `!left` join.
        let hinted = |hint: &str| SelectItem::Embed {
            name: "authors".into(),
            alias: Some("editor".into()),
            hint: Some(hint.into()),
            select: vec![col("name", None)],
        };
        assert_eq!(select_list("editor:authors!editor_id(name)").unwrap(), vec![hinted("editor_id")]);
        assert_eq!(
            select_list("editor:authors!posts_editor_id_fkey!left(name)").unwrap(),
            vec![hinted("posts_editor_id_fkey")]
        );
        for refused in ["authors!inner(name)", "authors!a!b(name)", "!a(name)", "authors!(name)"] {
            assert!(select_list(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn hostile_selects_are_refused_not_panicking() {
        let deep = format!("{}x{}", "a(".repeat(50), ")".repeat(50));
        let huge = "a,".repeat(10_000) + "a";
        for bad in [
            "a(",
            "a)",
            "a(b",
            "(",
            ")",
            "a,,b",
            ":a",
            "a::text",
            "a->b",
            "...a(*)",
            "a!inner(*)",
            "\"a",
            "x(y)z",
            deep.as_str(),
            huge.as_str(),
            "",
        ] {
            assert!(select_list(bad).is_err(), "{bad:.80}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        for depth in [MAX_FILTER_DEPTH, 3_000, 200_000] {
            let value = format!("({}a.eq.1{})", "or(".repeat(depth), ")".repeat(depth));
            let err = postgrest_param("or", &value).unwrap_err();
            assert!(err.to_string().contains("MAX_FILTER_DEPTH"), "{err}");
            let unclosed = format!("({}", "and(".repeat(depth));
            assert!(postgrest_param("and", &unclosed).is_err());
        }
        let deepest = MAX_FILTER_DEPTH - 1;
        let ok = format!("({}a.eq.1{})", "or(".repeat(deepest), ")".repeat(deepest));
        assert!(postgrest_param("or", &ok).is_ok());
    }

    #[test]
    fn conditions_and_in_values_are_bounded_per_request() {
        let many = (0..=MAX_CONDITIONS).map(|i| format!("a.eq.{i}")).collect::<Vec<_>>().join(",");
        let err = collection_query(&pairs(&[("or", &format!("({many})"))])).unwrap_err();
        assert!(err.to_string().contains("MAX_CONDITIONS"), "{err}");
        let split: Vec<(String, String)> = (0..=MAX_CONDITIONS).map(|i| (format!("c{i}"), "eq.1".into())).collect();
        assert!(table_query(&split).unwrap_err().to_string().contains("MAX_CONDITIONS"));
        let values = (0..=MAX_IN_VALUES).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let err = table_query(&pairs(&[("a", &format!("in.({values})"))])).unwrap_err();
        assert!(err.to_string().contains("MAX_IN_VALUES"), "{err}");
        let fits = (0..MAX_IN_VALUES).map(|i| i.to_string()).collect::<Vec<_>>().join("|");
        assert!(collection_query(&pairs(&[("filter", &format!("a:in:{fits}"))])).is_ok());
    }

    #[test]
    fn trailing_text_after_a_group_is_refused() {
        for bad in ["(a.eq.1)x", "(a.eq.1),(b.eq.2)", "(a.eq.1,)", "(,a.eq.1)", "(not.)", "(or(a.eq.1)"] {
            assert!(postgrest_param("or", bad).is_err(), "{bad}");
        }
    }

    mod properties {
        use proptest::collection::vec;
        use proptest::prelude::*;
        use proptest::sample::select;

        use super::super::super::{Condition, Filter, Op, Operand};
        use super::super::*;

        /// Pieces of filter syntax, so random text is often almost valid.
        const FRAGMENTS: &[&str] = &[
            "or(", "and(", "not.", "(", ")", ",", "\"", "\\", ".", "a", "title", "eq", "in", "is", "null", ".eq.",
            ".in.(", "1", "x y", ":", "|", "*", "-", "é", "\u{0}",
        ];

        fn ops() -> impl Strategy<Value = Op> {
            select(vec![
                Op::Eq,
                Op::Neq,
                Op::Gt,
                Op::Gte,
                Op::Lt,
                Op::Lte,
                Op::Like,
                Op::Ilike,
                Op::In,
                Op::Is,
                Op::Contains,
                Op::StartsWith,
                Op::Cs,
                Op::Cd,
                Op::Fts,
                Op::Plfts,
                Op::Phfts,
            ])
        }

        fn condition() -> impl Strategy<Value = Filter> {
            let column = "[a-m][a-z0-9_]{0,6}".prop_filter("not a keyword", |c| c != "not");
            (column, ops(), any::<String>(), vec(any::<String>(), 0..4), any::<Option<bool>>()).prop_map(
                |(column, op, text, list, flag)| {
                    let value = match op {
                        Op::In => Operand::List(list),
                        Op::Is => flag.map_or(Operand::Null, Operand::Bool),
                        _ => Operand::Scalar(text),
                    };
                    Filter::Cond(Condition { column, op, value })
                },
            )
        }

        fn filter() -> impl Strategy<Value = Filter> {
            condition().prop_recursive(4, 40, 4, |inner| {
                prop_oneof![
                    vec(inner.clone(), 1..4).prop_map(Filter::And),
                    vec(inner.clone(), 1..4).prop_map(Filter::Or),
                    // `not.not.` is not part of the syntax: a negation wraps no negation.
                    inner.prop_map(|f| if matches!(f, Filter::Not(_)) { f } else { Filter::Not(Box::new(f)) }),
                ]
            })
        }

        proptest! {
            #[test]
            fn arbitrary_text_never_panics(key in any::<String>(), value in any::<String>()) {
                let _ = postgrest_param(&key, &value);
                let _ = postgrest_param("or", &value);
                let _ = collection_filter(&value);
                let _ = collection_sort(&value);
                let _ = postgrest_order(&value);
                let _ = select_list(&value);
                let _ = crate::data::search::parse(&value);
            }

            #[test]
            fn filter_like_text_never_panics(parts in vec(select(FRAGMENTS), 0..300)) {
                let text = parts.concat();
                let _ = postgrest_param("or", &format!("({text})"));
                let _ = postgrest_param("and", &text);
                let _ = postgrest_param("title", &text);
                let _ = collection_filter(&text);
                let _ = select_list(&text);
                let _ = crate::data::search::parse(&text);
            }

            #[test]
            fn printed_filters_parse_back(tree in filter()) {
                let printed = format!("({tree})");
                let parsed = postgrest_param("and", &printed);
                prop_assert_eq!(parsed.ok(), Some(Filter::And(vec![tree])), "{}", printed);
            }
        }
    }

    #[test]
    fn order_forms() {
        assert_eq!(
            postgrest_order("a.desc.nullslast,b").unwrap(),
            vec![
                SortKey { column: "a".into(), descending: true, nulls_first: Some(false) },
                SortKey { column: "b".into(), descending: false, nulls_first: Some(false) },
            ]
        );
        assert_eq!(
            postgrest_order("a.desc").unwrap(),
            vec![SortKey { column: "a".into(), descending: true, nulls_first: Some(true) }],
            "nulls are the largest value, as in PostgREST"
        );
        assert!(postgrest_order("a.sideways").is_err());
        assert!(postgrest_order(",").is_err());
    }

    #[test]
    fn sorts_are_bounded() {
        let keys = |n: usize| vec!["a"; n].join(",");
        assert_eq!(collection_sort(&keys(MAX_SORT_KEYS)).unwrap().len(), MAX_SORT_KEYS);
        assert_eq!(postgrest_order(&keys(MAX_SORT_KEYS)).unwrap().len(), MAX_SORT_KEYS);
        for n in [MAX_SORT_KEYS + 1, 2_000, 16_000] {
            assert!(collection_sort(&keys(n)).unwrap_err().to_string().contains("MAX_SORT_KEYS"));
            assert!(postgrest_order(&keys(n)).unwrap_err().to_string().contains("MAX_SORT_KEYS"));
        }
    }
}
