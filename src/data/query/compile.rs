//! [`Query`](super::Query) parts → SQL. Every column named in a request is looked up in the
//! table's live schema (unknown → 400) and every value is typed for its column and bound.
//!
//! Null ordering is the same on both backends: nulls sort as the smallest value (first when
//! ascending, last when descending), SQLite's native order. PostgreSQL gets explicit
//! `NULLS FIRST/LAST`, and the indexes Ferrobase creates there are built in the same order, so
//! sorted pages still come straight from an index.

use super::{Condition, Filter, Op, Operand, SortKey};
use crate::data::catalog::{Column, ColumnType, Table};
use crate::data::sql::SqlBuilder;
use crate::data::text_formats::TextFormat;
use crate::data::{Dialect, Value, search};
use crate::error::ApiError;

/// Appends `filter` as a boolean SQL expression.
pub fn filter(b: &mut SqlBuilder, table: &Table, filter: &Filter) -> Result<(), ApiError> {
    match filter {
        Filter::And(children) => join(b, table, children, " AND ", "1 = 1"),
        Filter::Or(children) => join(b, table, children, " OR ", "1 = 0"),
        Filter::Not(inner) => {
            b.push("NOT (");
            self::filter(b, table, inner)?;
            b.push(")");
            Ok(())
        }
        Filter::Cond(cond) => condition(b, table, cond),
    }
}

fn join(b: &mut SqlBuilder, table: &Table, children: &[Filter], sep: &str, empty: &str) -> Result<(), ApiError> {
    if children.is_empty() {
        b.push(empty);
        return Ok(());
    }
    b.push("(");
    for (i, child) in children.iter().enumerate() {
        if i > 0 {
            b.push(sep);
        }
        filter(b, table, child)?;
    }
    b.push(")");
    Ok(())
}

/// Looks a column up by name: the one place where request names meet the schema.
pub fn column<'t>(table: &'t Table, name: &str) -> Result<&'t Column, ApiError> {
    table.column(name).ok_or_else(|| unknown_column(table, name))
}

/// 400 for a column a query names that `table` does not have (at most 64 characters of it).
pub fn unknown_column(table: &Table, name: &str) -> ApiError {
    let shown: String = name.chars().take(64).collect();
    ApiError::bad_input(crate::error::codes::UNDEFINED_COLUMN, format!("unknown column '{shown}' in '{}'", table.name))
}

fn condition(b: &mut SqlBuilder, table: &Table, cond: &Condition) -> Result<(), ApiError> {
    let col = column(table, &cond.column)?;
    let name = col.name.as_str();
    match (cond.op, &cond.value) {
        (Op::Eq | Op::Neq | Op::Gt | Op::Gte | Op::Lt | Op::Lte, Operand::Scalar(raw)) => {
            not_json(col, cond.op)?;
            let sql_op = match cond.op {
                Op::Eq => " = ",
                Op::Neq => " <> ",
                Op::Gt => " > ",
                Op::Gte => " >= ",
                Op::Lt => " < ",
                _ => " <= ",
            };
            let value = typed(col, raw)?;
            b.ident(name).push(sql_op);
            bind_compared(b, col, value);
        }
        (Op::Like | Op::Ilike | Op::Contains | Op::StartsWith, Operand::Scalar(raw)) => {
            pattern_condition(b, col, cond.op, raw)?;
        }
        (Op::In, Operand::List(values)) => in_condition(b, col, values)?,
        (Op::Is, Operand::Null) => {
            b.ident(name).push(" IS NULL");
        }
        (Op::Is, Operand::Bool(v)) => {
            if col.ty != ColumnType::Boolean {
                return Err(ApiError::bad_request(format!(
                    "is.{v} needs a boolean column; '{name}' is {}",
                    col.ty.name()
                )));
            }
            b.ident(name).push(if *v { " IS TRUE" } else { " IS FALSE" });
        }
        (Op::Fts | Op::Plfts | Op::Phfts, Operand::Scalar(raw)) => {
            text_only(col, cond.op)?;
            let expr = match cond.op {
                Op::Plfts => search::parse::all_words(raw)?,
                Op::Phfts => search::parse::phrase(raw)?,
                _ => search::parse(raw)?,
            };
            search::column_condition(b, table, col, &expr)?;
        }
        (Op::Cs | Op::Cd, Operand::Scalar(raw)) => {
            json_containment(b, col, cond.op == Op::Cs, raw)?;
        }
        (Op::Cs | Op::Cd, _) => {
            return Err(ApiError::bad_request(format!(
                "the '{}' operator is not supported by this server yet",
                cond.op.name()
            )));
        }
        (op, _) => {
            return Err(ApiError::bad_request(format!("invalid value for the '{}' operator on '{name}'", op.name())));
        }
    }
    Ok(())
}

/// The text patterns: `like` and `ilike` (PostgREST writes `*` for `%`, so patterns survive
/// URLs unescaped), `contains` (case-insensitive substring) and `startsWith` (prefix), the
/// last two with the value's own `%` and `_` escaped.
fn pattern_condition(b: &mut SqlBuilder, col: &Column, op: Op, raw: &str) -> Result<(), ApiError> {
    text_only(col, op)?;
    let (name, dialect) = (col.name.as_str(), b.dialect());
    match op {
        Op::Like | Op::Ilike => {
            // A backslash escapes the next character (`a\_b` matches `a_b` only), on both
            // backends: PostgreSQL's default, SQLite's only with ESCAPE.
            if (raw.len() - raw.trim_end_matches('\\').len()) % 2 == 1 {
                return Err(ApiError::bad_input(
                    crate::error::codes::INVALID_VALUE,
                    format!("the {} pattern of '{name}' ends with a backslash, which escapes nothing", op.name()),
                ));
            }
            let pattern = Value::Text(raw.replace('*', "%"));
            match (op, dialect) {
                (Op::Like, _) => text_expr(b, col).push(" LIKE ").param(pattern),
                (_, Dialect::Postgres) => text_expr(b, col).push(" ILIKE ").param(pattern),
                (_, Dialect::Sqlite) => sqlite_folded_like(b, name, pattern),
            };
            b.push(" ESCAPE '\\'");
        }
        Op::Contains => {
            let pattern = Value::Text(format!("%{}%", escape_like(raw)));
            match dialect {
                Dialect::Postgres => text_expr(b, col).push(" ILIKE ").param(pattern).push(" ESCAPE '\\'"),
                Dialect::Sqlite => sqlite_folded_like(b, name, pattern).push(" ESCAPE '\\'"),
            };
        }
        _ => {
            let pattern = Value::Text(format!("{}%", escape_like(raw)));
            text_expr(b, col).push(" LIKE ").param(pattern).push(" ESCAPE '\\'");
        }
    }
    Ok(())
}

/// SQLite's case-insensitive `LIKE`: both sides folded to lower case by Unicode's rules.
fn sqlite_folded_like<'b>(b: &'b mut SqlBuilder, column: &str, pattern: Value) -> &'b mut SqlBuilder {
    let fold = crate::data::sqlite::FOLD_FUNCTION;
    b.push(fold).push("(").ident(column).push(") LIKE ").push(fold).push("(").param(pattern).push(")")
}

/// `col IN (…)`, each value typed for the column; an empty list matches nothing.
fn in_condition(b: &mut SqlBuilder, col: &Column, values: &[String]) -> Result<(), ApiError> {
    not_json(col, Op::In)?;
    if values.is_empty() {
        b.push("1 = 0");
        return Ok(());
    }
    b.ident(&col.name).push(" IN (");
    for (i, raw) in values.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        let value = typed(col, raw)?;
        bind_compared(b, col, value);
    }
    b.push(")");
    Ok(())
}

/// `cs` (the column contains the value) and `cd` (the column is contained by it) on a JSON
/// column, for a JSON array or object: PostgreSQL's `@>`/`<@` on `jsonb`, and the same on
/// SQLite through `json_each` for arrays and objects whose members are scalars (nested
/// arrays and objects must then be equal, where PostgreSQL would recurse).
fn json_containment(b: &mut SqlBuilder, col: &Column, contains: bool, raw: &str) -> Result<(), ApiError> {
    let op = if contains { "cs" } else { "cd" };
    if col.ty != ColumnType::Json {
        return Err(ApiError::bad_request(format!(
            "the '{op}' operator needs a json column; '{}' is {}",
            col.name,
            col.ty.name()
        )));
    }
    let value = containment_value(raw).ok_or_else(|| {
        let shown: String = raw.chars().take(64).collect();
        ApiError::bad_request(format!(
            "the '{op}' operator on '{}' takes a JSON array or object or {{a,b}}, not '{shown}'",
            col.name
        ))
    })?;
    let is_array = value.is_array();
    match b.dialect() {
        Dialect::Postgres => {
            // A PostgreSQL array is turned into JSON the same way it is read.
            if col.converted {
                b.push("(to_jsonb(").ident(&col.name).push(") ");
            } else {
                b.push("(").ident(&col.name).push("::jsonb ");
            }
            b.push(if contains { "@>" } else { "<@" });
            b.push(" ").param(Value::Json(value)).push("::jsonb)");
        }
        Dialect::Sqlite => {
            // Every member of the smaller side has a match in the larger side.
            let kind = if is_array { "'array'" } else { "'object'" };
            let same_key = if is_array { "" } else { "a.key = s.key AND " };
            b.push("(CASE WHEN json_valid(").ident(&col.name).push(") AND json_type(").ident(&col.name);
            b.push(") = ").push(kind).push(" THEN NOT EXISTS (SELECT 1 FROM json_each(");
            // `cs`: every member of the value is in the column; `cd`: the other way round.
            let side = |b: &mut SqlBuilder, the_value: bool| {
                if the_value {
                    b.param(Value::Json(value.clone()));
                } else {
                    b.ident(&col.name);
                }
            };
            side(b, contains);
            b.push(") s WHERE NOT EXISTS (SELECT 1 FROM json_each(");
            side(b, !contains);
            b.push(") a WHERE ").push(same_key);
            b.push(
                "(a.type = s.type OR (a.type IN ('integer', 'real') AND s.type IN ('integer', 'real'))) \
                 AND CASE WHEN s.type IN ('object', 'array') THEN json(a.value) = json(s.value) \
                 ELSE a.atom IS s.atom END)) ELSE 0 END)",
            );
        }
    }
    Ok(())
}

/// A `cs`/`cd` value: JSON (`["a",1]`, `{"k":"v"}`) or PostgreSQL's array literal `{a,b}`
/// (as postgrest-js writes arrays); scalars are refused.
fn containment_value(raw: &str) -> Option<serde_json::Value> {
    match serde_json::from_str::<serde_json::Value>(raw.trim()) {
        Ok(v @ (serde_json::Value::Array(_) | serde_json::Value::Object(_))) => return Some(v),
        Ok(_) => return None,
        Err(_) => {}
    }
    let inner = raw.trim().strip_prefix('{')?.strip_suffix('}')?;
    if inner.trim().is_empty() {
        return Some(serde_json::Value::Array(Vec::new()));
    }
    let mut items = Vec::new();
    for item in inner.split(',') {
        let item = item.trim();
        let value = if let Some(text) = item.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            serde_json::Value::String(text.to_owned())
        } else {
            match serde_json::from_str::<serde_json::Value>(item) {
                Ok(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_) | serde_json::Value::Null)) => v,
                _ => serde_json::Value::String(item.to_owned()),
            }
        };
        items.push(value);
    }
    Some(serde_json::Value::Array(items))
}

fn not_json(col: &Column, op: Op) -> Result<(), ApiError> {
    if col.ty == ColumnType::Json {
        return Err(ApiError::bad_request(format!(
            "the '{}' operator does not apply to the json column '{}'",
            op.name(),
            col.name
        )));
    }
    Ok(())
}

/// A JSON column has no order both backends share (SQLite compares its text, PostgreSQL its
/// values by type): a sort by one is refused, as comparisons of it are.
fn unsortable(col: &Column) -> Result<(), ApiError> {
    if col.ty == ColumnType::Json {
        return Err(ApiError::bad_field(
            &col.name,
            format!("'{}' is a json column: records cannot be sorted by it", col.name),
        ));
    }
    Ok(())
}

fn text_only(col: &Column, op: Op) -> Result<(), ApiError> {
    if col.ty != ColumnType::Text {
        return Err(ApiError::bad_request(format!(
            "the '{}' operator needs a text column; '{}' is {}",
            op.name(),
            col.name,
            col.ty.name()
        )));
    }
    Ok(())
}

/// Escapes LIKE wildcards so the text matches literally (with `ESCAPE '\'`).
fn escape_like(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for ch in raw.chars() {
        if matches!(ch, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Appends a column of a select list or `RETURNING` clause, read as its column type: a
/// PostgreSQL type the driver does not decode is cast (`uuid`, `timestamptz` → text,
/// `numeric` → double precision, arrays → JSON) and keeps its name.
pub fn select_column<'b>(b: &'b mut SqlBuilder, col: &Column) -> &'b mut SqlBuilder {
    if !col.converted {
        return b.ident(&col.name);
    }
    if col.ty == ColumnType::Json {
        b.push("to_jsonb(").ident(&col.name).push(")");
    } else {
        b.push("CAST(").ident(&col.name).push(" AS ").push(Dialect::Postgres.type_name(col.ty)).push(")");
    }
    b.push(" AS ").ident(&col.name)
}

/// Appends the columns as a select list.
pub fn select_list<'b, 'c>(b: &'b mut SqlBuilder, cols: impl IntoIterator<Item = &'c Column>) -> &'b mut SqlBuilder {
    for (i, col) in cols.into_iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        select_column(b, col);
    }
    b
}

/// Binds a value for `col`: as is, or on PostgreSQL cast from its column type to the
/// column's own type where the driver cannot send it directly (`'…'::text::uuid`).
pub fn bind<'b>(b: &'b mut SqlBuilder, col: &Column, value: Value) -> &'b mut SqlBuilder {
    // A SQLite BLOB column's value as a statement read it back (its hex form): the bytes again.
    if let (Some(TextFormat::Bytes), Value::Text(text)) = (col.text_format, &value)
        && let Some(bytes) = crate::data::text_formats::bytes(text)
    {
        return b.param(Value::Bytes(bytes));
    }
    if !col.converted || value.is_null() {
        return b.param(value);
    }
    let value = match value {
        // PostgreSQL's array literal, `{a,"b c"}`, from a JSON array.
        Value::Json(serde_json::Value::Array(items)) => Value::Text(array_literal(&items)),
        Value::Json(other) => Value::Text(other.to_string()),
        // As its shortest decimal form: a `numeric` made from a double precision keeps only
        // 15 digits (3.141592653589793 would be stored as 3.14159265358979).
        Value::Real(f) => Value::Text(f.to_string()),
        other => other,
    };
    let sent_as = match value {
        Value::Int(_) => "BIGINT",
        Value::Real(_) => "DOUBLE PRECISION",
        Value::Bool(_) => "BOOLEAN",
        _ => "TEXT",
    };
    // `declared` comes from PostgreSQL's own catalog (`format_type`), never from a request.
    b.push("CAST(CAST(").param(value).push(" AS ").push(sent_as).push(") AS ").push(&col.declared).push(")")
}

/// A value a filter compares a column with. PostgreSQL types a bare parameter as its column
/// is typed, so `integer_col > 3000000000` could not even be sent; compared as a BIGINT it is
/// simply false (PostgreSQL's integer operators compare across widths, with the index).
fn bind_compared(b: &mut SqlBuilder, col: &Column, value: Value) {
    let narrow_integer = b.dialect() == Dialect::Postgres
        && matches!(value, Value::Int(_))
        && matches!(col.declared.as_str(), "integer" | "smallint");
    if narrow_integer {
        b.push("CAST(").param(value).push(" AS BIGINT)");
    } else {
        bind(b, col, value);
    }
}

/// `["a", 1, null]` → `{"a","1",NULL}`.
fn array_literal(items: &[serde_json::Value]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            serde_json::Value::Null => out.push_str("NULL"),
            serde_json::Value::String(s) => {
                out.push('"');
                for ch in s.chars() {
                    if matches!(ch, '"' | '\\') {
                        out.push('\\');
                    }
                    out.push(ch);
                }
                out.push('"');
            }
            serde_json::Value::Array(inner) => out.push_str(&array_literal(inner)),
            other => {
                out.push('"');
                out.push_str(&other.to_string().replace('\\', "\\\\").replace('"', "\\\""));
                out.push('"');
            }
        }
    }
    out.push('}');
    out
}

/// The column as text, for the text operators: a converted column (`uuid`, dates) is cast.
pub fn text_expr<'b>(b: &'b mut SqlBuilder, col: &Column) -> &'b mut SqlBuilder {
    if col.converted { b.push("CAST(").ident(&col.name).push(" AS TEXT)") } else { b.ident(&col.name) }
}

/// A text value for `col`: as it is, or, for a column whose declared type SQLite does not
/// check, in that type's canonical spelling (400 when it is not one).
pub fn text_value(col: &Column, text: &str) -> Result<Value, ApiError> {
    let Some(format) = col.text_format else { return Ok(Value::Text(text.to_owned())) };
    let value = match format {
        TextFormat::Bytes => crate::data::text_formats::bytes(text).map(Value::Bytes),
        _ => format.canonical(text).ok().map(Value::Text),
    };
    value.ok_or_else(|| ApiError::BadRequest {
        message: format!(
            "field '{}' expects {}, got '{}'",
            col.name,
            format.expected(),
            text.chars().take(64).collect::<String>()
        ),
        field: Some(col.name.clone()),
        code: Some(format.code()),
    })
}

/// A value as its column's type compares it, for the checks made before a write: the text of
/// a date, time or UUID column in its canonical spelling where it is in an ISO form, so that
/// two spellings of one moment or one UUID are one key on PostgreSQL too (SQLite's writes
/// already store that spelling; see [`text_value`]).
pub fn comparable(col: &Column, value: Value) -> Value {
    match value {
        // A `numeric` given in a query string is kept as written (see `typed`).
        Value::Text(text) if col.ty == ColumnType::Real => text.parse().map_or(Value::Text(text), Value::Real),
        Value::Text(text) => {
            let canonical = TextFormat::of(&col.declared).and_then(|format| format.canonical(&text).ok());
            Value::Text(canonical.unwrap_or(text))
        }
        other => other,
    }
}

/// An integer as a query string may spell it: digits, or a number with an integral value below
/// 2^53 (`2.0`, `1e3`), as a write takes it into an integer field.
fn integer(raw: &str) -> Option<i64> {
    if let Ok(n) = raw.parse() {
        return Some(n);
    }
    let f: f64 = raw.parse().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0).then_some(f as i64)
}

/// A value written in a query string, typed for its column.
pub fn typed(col: &Column, raw: &str) -> Result<Value, ApiError> {
    let invalid = || {
        let shown: String = raw.chars().take(64).collect();
        ApiError::bad_input(
            crate::error::codes::INVALID_VALUE,
            format!("invalid {} value '{shown}' for '{}'", col.ty.name(), col.name),
        )
    };
    Ok(match col.ty {
        // PostgreSQL's text cannot hold NUL (it answers with an encoding error); refused on
        // both backends alike.
        ColumnType::Text if raw.contains('\0') => {
            return Err(ApiError::bad_input(
                crate::error::codes::INVALID_VALUE,
                format!("the value for '{}' holds a NUL character", col.name),
            ));
        }
        ColumnType::Text => text_value(col, raw)?,
        ColumnType::Integer => Value::Int(integer(raw.trim()).ok_or_else(invalid)?),
        ColumnType::Real => {
            let f: f64 = raw.trim().parse().map_err(|_| invalid())?;
            if !f.is_finite() {
                return Err(invalid());
            }
            if col.converted {
                // A PostgreSQL `numeric` is compared with the number as written, every digit
                // of it (see `bind`).
                Value::Text(raw.trim().to_owned())
            } else {
                Value::Real(f)
            }
        }
        ColumnType::Boolean => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" => Value::Bool(true),
            "false" | "f" | "0" => Value::Bool(false),
            _ => return Err(invalid()),
        },
        ColumnType::Json => return Err(invalid()),
    })
}

/// Appends ` ORDER BY …` for `sort` (which must not be empty).
pub fn order_by(b: &mut SqlBuilder, table: &Table, sort: &[SortKey]) -> Result<(), ApiError> {
    b.push(" ORDER BY ");
    for (i, key) in sort.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        let col = column(table, &key.column)?;
        unsortable(col)?;
        b.ident(&col.name).push(if key.descending { " DESC" } else { " ASC" });
        if i == 0 && (col.not_null || col.primary_key) {
            // No null to place: the engine's own order, which a primary key's index (built
            // with the defaults) serves. Later keys keep the placement of the indexes
            // Ferrobase builds (nulls first), so that those serve the whole order.
            continue;
        }
        let nulls_first = key.effective_nulls_first();
        // SQLite's native order puts nulls first ascending; PostgreSQL's puts them last.
        let native_nulls_first = match b.dialect() {
            Dialect::Sqlite => !key.descending,
            Dialect::Postgres => key.descending,
        };
        if nulls_first != native_nulls_first {
            b.push(if nulls_first { " NULLS FIRST" } else { " NULLS LAST" });
        }
    }
    Ok(())
}

/// Appends the keyset condition "comes after the row whose sort values are `cursor`" for
/// `sort` (whose last key must be unique, e.g. the id).
pub fn keyset_after(b: &mut SqlBuilder, table: &Table, sort: &[SortKey], cursor: &[Value]) -> Result<(), ApiError> {
    b.push("(");
    for i in 0..sort.len() {
        if i > 0 {
            b.push(" OR ");
        }
        b.push("(");
        for (j, key) in sort.iter().enumerate().take(i) {
            let col = column(table, &key.column)?;
            if j > 0 {
                b.push(" AND ");
            }
            match &cursor[j] {
                Value::Null => b.ident(&col.name).push(" IS NULL"),
                value => bind(b.ident(&col.name).push(" = "), col, value.clone()),
            };
        }
        if i > 0 {
            b.push(" AND ");
        }
        let key = &sort[i];
        let col = column(table, &key.column)?;
        let nulls_first = key.effective_nulls_first();
        match &cursor[i] {
            Value::Null if nulls_first => b.ident(&col.name).push(" IS NOT NULL"),
            Value::Null => b.push("1 = 0"),
            value => {
                let cmp = if key.descending { " < " } else { " > " };
                if nulls_first {
                    bind(b.ident(&col.name).push(cmp), col, value.clone())
                } else {
                    bind(b.push("(").ident(&col.name).push(cmp), col, value.clone());
                    b.push(" OR ").ident(&col.name).push(" IS NULL)")
                }
            }
        };
        b.push(")");
    }
    b.push(")");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::query::parse;

    fn table() -> Table {
        let col = Column::new;
        Table {
            name: "posts".into(),
            columns: vec![
                col("_id", ColumnType::Text),
                col("title", ColumnType::Text),
                col("score", ColumnType::Integer),
                col("ratio", ColumnType::Real),
                col("done", ColumnType::Boolean),
                col("meta", ColumnType::Json),
            ],
            collection: None,
            table_rules: None,
            foreign_keys: Vec::new(),
            schema_version: 0,
            virtual_table: false,
        }
    }

    fn compile(dialect: Dialect, key: &str, value: &str) -> Result<(String, Vec<Value>), ApiError> {
        let f = parse::postgrest_param(key, value)?;
        let mut b = SqlBuilder::new(dialect);
        filter(&mut b, &table(), &f)?;
        let stmt = b.finish();
        Ok((stmt.sql, stmt.params))
    }

    #[test]
    fn conditions_bind_typed_values() {
        let (sql, params) = compile(Dialect::Sqlite, "score", "gte.10").unwrap();
        assert_eq!(sql, "\"score\" >= ?");
        assert_eq!(params, vec![Value::Int(10)]);
        let (sql, params) = compile(Dialect::Postgres, "or", "(score.lt.3,title.ilike.*rust*)").unwrap();
        assert_eq!(sql, "(\"score\" < $1 OR \"title\" ILIKE $2 ESCAPE '\\')");
        assert_eq!(params, vec![Value::Int(3), Value::Text("%rust%".into())]);
        let (sql, _) = compile(Dialect::Sqlite, "done", "is.true").unwrap();
        assert_eq!(sql, "\"done\" IS TRUE");
        let (sql, params) = compile(Dialect::Sqlite, "title", "in.(a,b)").unwrap();
        assert_eq!(sql, "\"title\" IN (?, ?)");
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn hostile_values_stay_bound() {
        let (sql, params) = compile(Dialect::Sqlite, "title", "eq.'; DROP TABLE posts; --").unwrap();
        assert_eq!(sql, "\"title\" = ?");
        assert_eq!(params, vec![Value::Text("'; DROP TABLE posts; --".into())]);
        let f = parse::collection_filter("title:contains:50%_off").unwrap();
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        filter(&mut b, &table(), &f[0]).unwrap();
        assert_eq!(b.finish().params, vec![Value::Text("%50\\%\\_off%".into())]);
    }

    #[test]
    fn bad_names_and_values_are_400() {
        for (k, v) in [
            ("nope", "eq.1"),
            ("\"title\"", "eq.1"),
            ("score", "eq.ten"),
            ("score", "like.1*"),
            ("ratio", "gt.NaN"),
            ("done", "eq.maybe"),
            ("meta", "eq.{}"),
            ("title", "is.true"),
            ("title", "fts.\"x"),
            ("score", "fts.x"),
            // SQLite searches only the indexed text fields of collections.
            ("title", "fts.x"),
        ] {
            let err = compile(Dialect::Sqlite, k, v).unwrap_err();
            assert_eq!(err.status(), 400, "{k}={v}");
        }
    }

    #[test]
    fn json_containment_binds_json() {
        let (sql, params) = compile(Dialect::Postgres, "meta", "cs.{a,2}").unwrap();
        assert_eq!(sql, "(\"meta\"::jsonb @> $1::jsonb)");
        assert_eq!(params, vec![Value::Json(serde_json::json!(["a", 2]))]);
        let (sql, params) = compile(Dialect::Postgres, "meta", "cd.{\"k\":1}").unwrap();
        assert_eq!(sql, "(\"meta\"::jsonb <@ $1::jsonb)");
        assert_eq!(params, vec![Value::Json(serde_json::json!({"k": 1}))]);
        let (sql, params) = compile(Dialect::Sqlite, "meta", "cs.[\"x\"]").unwrap();
        assert!(sql.starts_with("(CASE WHEN json_valid(\"meta\")"), "{sql}");
        assert_eq!(params, vec![Value::Json(serde_json::json!(["x"]))]);
        for (k, v) in [("meta", "cs.3"), ("meta", "cs.\"x\""), ("meta", "cd.{\"a\""), ("title", "cs.{a}")] {
            assert_eq!(compile(Dialect::Sqlite, k, v).unwrap_err().status(), 400, "{k}={v}");
        }
    }

    #[test]
    fn order_by_keeps_nulls_smallest_on_both_backends() {
        let sort = parse::collection_sort("-score,title").unwrap();
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        order_by(&mut b, &table(), &sort).unwrap();
        assert_eq!(b.finish().sql, " ORDER BY \"score\" DESC, \"title\" ASC");
        let mut b = SqlBuilder::new(Dialect::Postgres);
        order_by(&mut b, &table(), &sort).unwrap();
        assert_eq!(b.finish().sql, " ORDER BY \"score\" DESC NULLS LAST, \"title\" ASC NULLS FIRST");
    }

    #[test]
    fn keyset_condition_expands_per_key() {
        let sort = vec![SortKey { column: "score".into(), descending: true, nulls_first: None }, SortKey::asc("_id")];
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        keyset_after(&mut b, &table(), &sort, &[Value::Int(5), Value::Text("id9".into())]).unwrap();
        let stmt = b.finish();
        assert_eq!(stmt.sql, "(((\"score\" < ? OR \"score\" IS NULL)) OR (\"score\" = ? AND \"_id\" > ?))");
        assert_eq!(stmt.params, vec![Value::Int(5), Value::Int(5), Value::Text("id9".into())]);
    }
}
