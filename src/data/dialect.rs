//! The few places where SQLite and PostgreSQL spell SQL differently.

use super::catalog::ColumnType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The declared type Ferrobase gives a column of `ty`. Introspection maps each back.
    pub fn type_name(self, ty: ColumnType) -> &'static str {
        match (self, ty) {
            (_, ColumnType::Text) => "TEXT",
            (Dialect::Sqlite, ColumnType::Integer) => "INTEGER",
            (Dialect::Postgres, ColumnType::Integer) => "BIGINT",
            (Dialect::Sqlite, ColumnType::Real) => "REAL",
            (Dialect::Postgres, ColumnType::Real) => "DOUBLE PRECISION",
            (_, ColumnType::Boolean) => "BOOLEAN",
            (Dialect::Sqlite, ColumnType::Json) => "JSON",
            (Dialect::Postgres, ColumnType::Json) => "JSONB",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}
