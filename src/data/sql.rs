//! Building parameterised SQL. Identifiers are always quoted; values are always bound.

use std::fmt::Write;

use super::{Dialect, Value};

/// A statement and its bound values.
#[derive(Debug, Clone)]
pub struct Stmt {
    pub sql: String,
    pub params: Vec<Value>,
    /// The result may be reused until the database changes (see `sqlite.rs`); for reads
    /// whose cost grows with the table, such as counts.
    pub cacheable: bool,
    /// In a group of writes, a statement that changes no row fails the whole group.
    pub must_change: bool,
}

impl Stmt {
    pub fn new(sql: impl Into<String>, params: Vec<Value>) -> Self {
        Stmt { sql: sql.into(), params, cacheable: false, must_change: false }
    }

    /// Marks the result as reusable until the database changes.
    pub fn cached(mut self) -> Self {
        self.cacheable = true;
        self
    }

    /// Marks a write that must change at least one row (or fail its group).
    pub fn must_change(mut self) -> Self {
        self.must_change = true;
        self
    }

    /// `Ok` unless the statement had to change a row and did not.
    pub fn check_changed(&self, rows: super::Rows) -> Result<super::Rows, super::DbError> {
        if self.must_change && rows.affected == 0 {
            return Err(super::DbError::NoRowChanged("no matching record".into()));
        }
        Ok(rows)
    }

    /// A fixed statement written with `?` placeholders, spelled for `dialect` (`$1`, `$2`, …
    /// on PostgreSQL). For trusted SQL text only: no `?` may appear inside a literal.
    pub fn fixed(dialect: Dialect, sql: &str, params: Vec<Value>) -> Self {
        let sql = match dialect {
            Dialect::Sqlite => sql.to_owned(),
            Dialect::Postgres => {
                let mut out = String::with_capacity(sql.len() + 8);
                let mut n = 0;
                for ch in sql.chars() {
                    if ch == '?' {
                        n += 1;
                        let _ = write!(out, "${n}");
                    } else {
                        out.push(ch);
                    }
                }
                out
            }
        };
        Stmt { sql, params, cacheable: false, must_change: false }
    }
}

/// Appends SQL text, quoted identifiers and placeholders in the dialect's spelling.
pub struct SqlBuilder {
    dialect: Dialect,
    sql: String,
    params: Vec<Value>,
}

impl SqlBuilder {
    pub fn new(dialect: Dialect) -> Self {
        SqlBuilder { dialect, sql: String::with_capacity(128), params: Vec::new() }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Appends trusted SQL text (keywords, operators): never user input.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a quoted identifier.
    pub fn ident(&mut self, name: &str) -> &mut Self {
        push_quoted(&mut self.sql, name);
        self
    }

    /// Appends `"table"."column"`.
    pub fn qualified(&mut self, table: &str, column: &str) -> &mut Self {
        self.ident(table).push(".").ident(column)
    }

    /// Appends a placeholder and binds `value` to it.
    pub fn param(&mut self, value: Value) -> &mut Self {
        self.params.push(value);
        match self.dialect {
            Dialect::Sqlite => self.sql.push('?'),
            Dialect::Postgres => {
                let _ = write!(self.sql, "${}", self.params.len());
            }
        }
        self
    }

    /// Appends the identifiers separated by commas.
    pub fn ident_list<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> &mut Self {
        for (i, name) in names.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.ident(name);
        }
        self
    }

    /// The SQL written so far (for a part that binds nothing, to put before another).
    pub fn text(&self) -> &str {
        debug_assert!(self.params.is_empty(), "a prefix must bind nothing");
        &self.sql
    }

    /// A copy of this builder with `prefix` (SQL that binds nothing) in front: the same
    /// conditions serve a page and its count, placeholders numbered alike.
    pub fn with_prefix(&self, prefix: &str) -> SqlBuilder {
        let mut sql = String::with_capacity(prefix.len() + self.sql.len() + 64);
        sql.push_str(prefix);
        sql.push_str(&self.sql);
        SqlBuilder { dialect: self.dialect, sql, params: self.params.clone() }
    }

    pub fn finish(self) -> Stmt {
        Stmt { sql: self.sql, params: self.params, cacheable: false, must_change: false }
    }
}

/// Quotes an identifier, doubling embedded quotes, so that no name can end the quoting.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    push_quoted(&mut out, name);
    out
}

fn push_quoted(out: &mut String, name: &str) {
    out.push('"');
    for ch in name.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers_and_doubles_embedded_quotes() {
        assert_eq!(quote_ident("posts"), "\"posts\"");
        assert_eq!(quote_ident("a\"; drop table x; --"), "\"a\"\"; drop table x; --\"");
    }

    #[test]
    fn fixed_statements_are_respelled_for_postgres() {
        let stmt = Stmt::fixed(Dialect::Postgres, "UPDATE t SET a = ? WHERE b = ? AND c = ?", vec![]);
        assert_eq!(stmt.sql, "UPDATE t SET a = $1 WHERE b = $2 AND c = $3");
        assert_eq!(Stmt::fixed(Dialect::Sqlite, "a = ?", vec![]).sql, "a = ?");
    }

    #[test]
    fn placeholders_follow_the_dialect() {
        let mut sqlite = SqlBuilder::new(Dialect::Sqlite);
        sqlite.push("SELECT * FROM ").ident("t").push(" WHERE a = ").param(1.into());
        sqlite.push(" AND b = ").param("x".into());
        let stmt = sqlite.finish();
        assert_eq!(stmt.sql, "SELECT * FROM \"t\" WHERE a = ? AND b = ?");
        assert_eq!(stmt.params.len(), 2);

        let mut pg = SqlBuilder::new(Dialect::Postgres);
        pg.push("SELECT * FROM ").ident("t").push(" WHERE a = ").param(1.into());
        pg.push(" AND b = ").param("x".into());
        assert_eq!(pg.finish().sql, "SELECT * FROM \"t\" WHERE a = $1 AND b = $2");
    }
}
