//! `count`, `sum`, `avg`, `min` and `max` over a collection's field, optionally grouped, with the
//! same filters and read rule as a list: only records the caller may read are counted.

use super::access;
use super::catalog::{Column, ColumnType};
use super::query::{Query, compile};
use super::read::ReadPlan;
use super::records::{Deleted, Records, rules};
use super::sql::SqlBuilder;
use super::{Dialect, Store, Value, catalog};
use crate::data::access::Caller;
use crate::error::{ApiError, codes};

pub use crate::limits::MAX_GROUPS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl Op {
    pub fn parse(name: &str) -> Result<Op, ApiError> {
        Ok(match name {
            "count" => Op::Count,
            "sum" => Op::Sum,
            "avg" => Op::Avg,
            "min" => Op::Min,
            "max" => Op::Max,
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(ApiError::bad_field(
                    "op",
                    format!("unknown aggregate '{shown}': use count, sum, avg, min or max"),
                ));
            }
        })
    }
}

/// An aggregate's answer: one value, or one per group (ordered by key).
pub enum Aggregate {
    Single(Records),
    Groups(Records),
}

impl Store {
    pub async fn aggregate(
        &self,
        name: &str,
        caller: &Caller,
        op: Op,
        field: Option<&str>,
        group_by: Option<&str>,
        query: &Query,
    ) -> Result<Aggregate, ApiError> {
        let table = self.collection(name).await?;
        let scope = access::scope(&table, &rules(&table).read, caller)?;
        // The search index is built only for a caller who may read.
        let table = self.searchable(table, query).await?;
        let field = match field {
            Some(f) => Some(compile::column(&table, f)?),
            None if op == Op::Count => None,
            None => return Err(ApiError::bad_field("field", "'field' is required for this aggregate")),
        };
        let result_type = result_type(op, field)?;
        let group = group_by.map(|g| compile::column(&table, g)).transpose()?;
        if let Some(g) = group.filter(|g| g.ty == ColumnType::Json) {
            return Err(ApiError::bad_field("group_by", format!("cannot group by the json field '{}'", g.name)));
        }
        let deleted = if query.include_deleted { Deleted::Shown } else { Deleted::Hidden };

        let plan = ReadPlan { query, ..ReadPlan::of(&table, scope, deleted, Vec::new()) };
        let mut head = SqlBuilder::new(self.db.dialect());
        head.push("SELECT ");
        if let Some(g) = group {
            head.ident(&g.name).push(" AS \"key\", ");
        }
        aggregate_expr(&mut head, op, field);
        head.push(" AS \"result\"");
        let mut b = plan.conditions(self.db.dialect())?.with_prefix(head.text());
        if let Some(g) = group {
            b.push(" GROUP BY ").ident(&g.name).push(" ORDER BY ").ident(&g.name);
            if self.db.dialect() == Dialect::Postgres {
                // The null group first, as SQLite and every sorted list place nulls.
                b.push(" NULLS FIRST");
            }
            b.push(" LIMIT ").param(((MAX_GROUPS + 1) as i64).into());
        }
        let rows = self.checked(&table.name, self.db.read(b.finish()).await.map_err(ApiError::from)).await?;
        if rows.rows.iter().flatten().any(|v| matches!(v, Value::Real(r) if !r.is_finite())) {
            // SQLite sums reals past f64's range to infinity, which JSON cannot hold (it would
            // read as null); PostgreSQL refuses the same sum as out of range.
            return Err(ApiError::bad_input(codes::INVALID_VALUE, "the aggregate is out of the range of a number"));
        }
        let result_col = synthetic("result", result_type);
        Ok(match group {
            Some(g) => {
                if rows.rows.len() > MAX_GROUPS {
                    return Err(ApiError::bad_request(format!(
                        "more than {MAX_GROUPS} groups (MAX_GROUPS): narrow the filter"
                    )));
                }
                let key_col = synthetic("key", g.ty);
                Aggregate::Groups(Records::new(&[&key_col, &result_col], rows))
            }
            None => Aggregate::Single(Records::new(&[&result_col], rows)),
        })
    }
}

/// What type the result has, or why the aggregate does not apply to the field.
fn result_type(op: Op, field: Option<&Column>) -> Result<ColumnType, ApiError> {
    let Some(field) = field else { return Ok(ColumnType::Integer) };
    let numeric = matches!(field.ty, ColumnType::Integer | ColumnType::Real);
    Ok(match op {
        Op::Count => ColumnType::Integer,
        Op::Sum | Op::Avg if !numeric => {
            return Err(ApiError::bad_field(
                "field",
                format!(
                    "{} needs a numeric field; '{}' is {}",
                    if op == Op::Sum { "sum" } else { "avg" },
                    field.name,
                    field.ty.name()
                ),
            ));
        }
        Op::Sum => field.ty,
        Op::Avg => ColumnType::Real,
        Op::Min | Op::Max if field.ty == ColumnType::Json => {
            return Err(ApiError::bad_field(
                "field",
                format!("min and max do not apply to the json field '{}'", field.name),
            ));
        }
        Op::Min | Op::Max => field.ty,
    })
}

/// `COUNT(*)`, `SUM(x)`, …; sums and averages are cast so both backends answer the same
/// types (PostgreSQL would answer `numeric`). PostgreSQL has no `MIN`/`MAX` of booleans: there
/// the least is `BOOL_AND` and the greatest `BOOL_OR` (SQLite stores them as 0 and 1).
fn aggregate_expr(b: &mut SqlBuilder, op: Op, field: Option<&Column>) {
    let Some(field) = field else {
        b.push("COUNT(*)");
        return;
    };
    if op == Op::Sum && field.ty == ColumnType::Integer && b.dialect() == Dialect::Sqlite {
        // Exact, as PostgreSQL's sum of bigints (see `sqlite::EXACT_SUM_FUNCTION`).
        b.push(super::sqlite::EXACT_SUM_FUNCTION).push("(").ident(&field.name).push(")");
        return;
    }
    let (open, close) =
        match op {
            Op::Count => ("COUNT(", ")"),
            Op::Sum if field.ty == ColumnType::Integer => ("CAST(SUM(", ") AS BIGINT)"),
            Op::Sum => ("CAST(SUM(", ") AS DOUBLE PRECISION)"),
            Op::Avg => ("CAST(AVG(", ") AS DOUBLE PRECISION)"),
            Op::Min | Op::Max if field.ty == ColumnType::Boolean && b.dialect() == Dialect::Postgres => {
                if op == Op::Min { ("BOOL_AND(", ")") } else { ("BOOL_OR(", ")") }
            }
            Op::Min => ("MIN(", ")"),
            Op::Max => ("MAX(", ")"),
        };
    b.push(open).ident(&field.name).push(close);
}

fn synthetic(name: &str, ty: ColumnType) -> catalog::Column {
    catalog::Column::new(name, ty)
}
