//! Full-text search: the search expression language, its rendering for each backend, and the
//! search index that backs it.
//!
//! One grammar serves `?search=` on the collections surface and the `fts` operators of the
//! tables surface: words (`rust`), prefixes (`rus*`), phrases (`"web server"`), `AND`
//! (implied between neighbours), `OR`, `NOT` / `-word`, and parentheses. The parsed tree is
//! rendered for SQLite's FTS5 `MATCH` or PostgreSQL's `to_tsquery`; either way it travels as a
//! bound parameter, and since terms are reduced to letters and digits before rendering, no
//! search text can reach either engine's own query syntax.
//!
//! The index covers a collection's text fields (not the system fields). SQLite keeps an FTS5
//! table `_fb_fts_<collection>` in step with the collection through triggers; PostgreSQL keeps
//! a stored generated column `_fb_search` of `to_tsvector('simple', …)` over the same fields
//! (ASCII punctuation made spaces first, as FTS5 splits words on it),
//! with a GIN index (stored, so ranking does not parse every match's text again). Both use the
//! `simple` configuration (no stemming, case folded), so the backends find the same records.

mod index;
pub mod parse;

pub use index::{drop_stmts, fields_to_reindex, rebuild_stmts, search_fields};
pub use parse::{Expr, parse};

use crate::data::Dialect;
use crate::data::catalog::{Column, Table};
use crate::data::sql::{SqlBuilder, quote_ident};
use crate::error::ApiError;

/// The FTS5 table that indexes `table` on SQLite.
pub fn fts_table(table: &str) -> String {
    format!("_fb_fts_{table}")
}

/// The stored `tsvector` column of a searched collection on PostgreSQL (hidden from the
/// catalog, like every `_fb_` column).
const PG_COLUMN: &str = "_fb_search";

/// PostgreSQL's `to_tsvector` over the indexed fields: the stored column's definition.
fn tsvector(b: &mut SqlBuilder, fields: &[String]) {
    b.push("to_tsvector('simple'::regconfig, translate(");
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            b.push(" || ' ' || ");
        }
        b.push("coalesce(").ident(field).push(", '')");
    }
    b.push(PUNCTUATION_AS_SPACE).push(")");
}

/// The end of a `translate(text` call that makes every ASCII punctuation mark a space.
/// PostgreSQL's parser keeps `bob@example.com`, `example.com`, `/usr/bin` and `2.0` as single
/// tokens, where SQLite's `unicode61` (and the search terms, see `parse`) split them into
/// words; split alike, `bob`, `example` and `2` find them on both backends. (An `E''` string
/// reads `\\` as one backslash whatever `standard_conforming_strings` says.)
const PUNCTUATION_AS_SPACE: &str = r##", E'!"#$%&''()*+,-./:;<=>?@[\\]^_`{|}~', '                                ')"##;

/// The fields searched in `table`: its indexed text fields. A table without any is a 400.
fn fields_of(table: &Table) -> Result<Vec<String>, ApiError> {
    let fields = search_fields(table);
    if fields.is_empty() {
        return Err(ApiError::bad_request(format!("'{}' has no text fields to search", table.name)));
    }
    Ok(fields)
}

/// How a list, count or aggregate reads `table` with a search: `FROM "t"`, joined on SQLite
/// with the records that match (and their rank).
pub fn from(b: &mut SqlBuilder, table: &Table, search: Option<&Expr>) -> Result<(), ApiError> {
    b.push(" FROM ").ident(&table.name);
    let (Some(expr), Dialect::Sqlite) = (search, b.dialect()) else {
        return Ok(());
    };
    fields_of(table)?;
    let fts = fts_table(&table.name);
    b.push(" JOIN (SELECT rowid AS \"_fb_rowid\", rank AS \"_fb_rank\" FROM ").ident(&fts);
    b.push(" WHERE ").ident(&fts).push(" MATCH ").param(expr.to_fts5(None).into());
    b.push(") AS \"_fb_match\" ON \"_fb_match\".\"_fb_rowid\" = ").ident(&table.name).push(".rowid");
    Ok(())
}

/// The search condition for PostgreSQL (` AND …`); on SQLite the join of [`from`] already
/// keeps only matches.
pub fn filter(b: &mut SqlBuilder, table: &Table, search: Option<&Expr>) -> Result<(), ApiError> {
    let (Some(expr), Dialect::Postgres) = (search, b.dialect()) else {
        return Ok(());
    };
    fields_of(table)?;
    b.push(" AND ").ident(PG_COLUMN).push(" @@ ");
    tsquery(b, expr);
    Ok(())
}

/// The query as a PostgreSQL `tsquery`, parsed once per execution: as a sub-select it is an
/// init plan, where a bare `to_tsquery($1)` in a generic plan would be parsed again for every
/// row that the index hands over and again for every rank.
fn tsquery(b: &mut SqlBuilder, expr: &Expr) {
    b.push("(SELECT to_tsquery('simple'::regconfig, ").param(expr.to_tsquery().into()).push("))");
}

/// Orders by relevance, best first.
pub fn order_by_rank(b: &mut SqlBuilder, table: &Table, expr: &Expr) -> Result<(), ApiError> {
    match b.dialect() {
        // FTS5's rank is bm25, where smaller is better. Ordered by rank alone, FTS5 hands the
        // matches over sorted and the records of only one page are read; a second key would
        // make SQLite read every match's record first and sort them all (about 40% slower on
        // thousands of matches). The order stays the same from one page to the next.
        Dialect::Sqlite => {
            b.push(" ORDER BY \"_fb_match\".\"_fb_rank\" ASC");
        }
        Dialect::Postgres => {
            fields_of(table)?;
            b.push(" ORDER BY ts_rank(").ident(PG_COLUMN).push(", ");
            tsquery(b, expr);
            b.push(") DESC");
            // A total order, so pages do not overlap.
            b.push(", ").ident(key_column(table)).push(" ASC");
        }
    }
    Ok(())
}

/// The column that makes a ranked order total.
fn key_column(table: &Table) -> &str {
    if table.column("_id").is_some() {
        return "_id";
    }
    table.columns.iter().find(|c| c.primary_key).or(table.columns.first()).map_or("_id", |c| c.name.as_str())
}

/// `column @@ query` for one field (the tables surface's `fts` operators).
pub fn column_condition(b: &mut SqlBuilder, table: &Table, col: &Column, expr: &Expr) -> Result<(), ApiError> {
    let column = col.name.as_str();
    match b.dialect() {
        Dialect::Postgres => {
            b.push("to_tsvector('simple'::regconfig, translate(coalesce(");
            crate::data::query::compile::text_expr(b, col).push(", '')").push(PUNCTUATION_AS_SPACE).push(") @@ ");
            tsquery(b, expr);
        }
        Dialect::Sqlite => {
            if !search_fields(table).iter().any(|f| f == column) {
                return Err(ApiError::bad_request(format!(
                    "'{column}' of '{}' has no full-text index: on SQLite only the text fields of collections can be searched",
                    table.name
                )));
            }
            let fts = fts_table(&table.name);
            b.ident(&table.name).push(".rowid IN (SELECT rowid FROM ").ident(&fts).push(" WHERE ");
            b.ident(&fts).push(" MATCH ").param(expr.to_fts5(Some(column)).into()).push(")");
        }
    }
    Ok(())
}

/// Quotes a string for use inside SQL text (trusted names only: index definitions).
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `"_fb_fts_posts"`, quoted.
fn quoted_fts(table: &str) -> String {
    quote_ident(&fts_table(table))
}
