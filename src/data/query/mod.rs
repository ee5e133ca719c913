//! The one query AST of both API surfaces: filters (an and/or/not tree over conditions),
//! sort keys, paging, projection. [`parse`] reads request parameters into it; [`compile`]
//! turns it into parameterised SQL after checking every name against the live schema.

pub mod compile;
pub mod parse;

/// A request parameter the parsers cannot read: what is wrong and, when one field is at
/// fault, which. It knows nothing of HTTP: the edge turns it into a 400 (see `ApiError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
    pub field: Option<String>,
}

/// At the HTTP edge, a 400 naming the parameter (`PGRST100` for PostgREST's clients).
impl From<ParseError> for crate::error::ApiError {
    fn from(err: ParseError) -> Self {
        crate::error::ApiError::BadRequest {
            message: err.message,
            field: err.field,
            code: Some(crate::error::codes::PARSE),
        }
    }
}

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        ParseError { message: message.into(), field: None }
    }

    /// An error of the parameter (or field) `field`.
    pub fn at(field: &str, message: impl Into<String>) -> Self {
        ParseError { message: message.into(), field: Some(field.to_owned()) }
    }
}

/// A filter tree. Conditions carry their value as written; it is typed against the column
/// when compiled.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Cond(Condition),
}

/// A filter in PostgREST's item syntax, as it appears inside `and=(…)`: `col.op."value"`,
/// `not.…`, `or(…)`, `and(…)`. Values are always quoted, so any text survives a round trip
/// through [`parse`].
impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = |f: &mut std::fmt::Formatter<'_>, kind: &str, children: &[Filter]| {
            write!(f, "{kind}(")?;
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{child}")?;
            }
            f.write_str(")")
        };
        match self {
            Filter::And(children) => group(f, "and", children),
            Filter::Or(children) => group(f, "or", children),
            Filter::Not(inner) => write!(f, "not.{inner}"),
            Filter::Cond(c) => {
                write!(f, "{}.{}.", c.column, c.op.name())?;
                let quoted = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
                match &c.value {
                    Operand::Scalar(v) => f.write_str(&quoted(v)),
                    Operand::List(items) => {
                        let items: Vec<String> = items.iter().map(|v| quoted(v)).collect();
                        write!(f, "({})", items.join(","))
                    }
                    Operand::Null => f.write_str("null"),
                    Operand::Bool(b) => write!(f, "{b}"),
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: String,
    pub op: Op,
    pub value: Operand,
}

/// Comparison operators: PostgREST's, plus the collections surface's `contains` and
/// `startsWith` (`ne` and `nin` parse to `Neq` and `not in`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    In,
    Is,
    /// Case-insensitive substring match.
    Contains,
    /// Case-sensitive prefix match.
    StartsWith,
    /// JSON/array "contains" (`@>`).
    Cs,
    /// JSON/array "is contained by" (`<@`).
    Cd,
    /// Full-text match, in the search language (`fts`, `wfts`).
    Fts,
    /// Full-text match of every word (`plfts`).
    Plfts,
    /// Full-text match of the words as one phrase (`phfts`).
    Phfts,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Neq => "neq",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Like => "like",
            Op::Ilike => "ilike",
            Op::In => "in",
            Op::Is => "is",
            Op::Contains => "contains",
            Op::StartsWith => "startsWith",
            Op::Cs => "cs",
            Op::Cd => "cd",
            Op::Fts => "fts",
            Op::Plfts => "plfts",
            Op::Phfts => "phfts",
        }
    }
}

/// A condition's value as written in the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Scalar(String),
    List(Vec<String>),
    /// `is.null`, `is.true`, `is.false`.
    Null,
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub column: String,
    pub descending: bool,
    /// Explicit placement of nulls; by default nulls sort as the smallest value.
    pub nulls_first: Option<bool>,
}

impl SortKey {
    pub fn asc(column: &str) -> Self {
        SortKey { column: column.to_owned(), descending: false, nulls_first: None }
    }

    /// Whether nulls come first in this key's order.
    pub fn effective_nulls_first(&self) -> bool {
        self.nulls_first.unwrap_or(!self.descending)
    }
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = crate::limits::MAX_PAGE;

/// A list request, whichever surface it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Conditions ANDed together.
    pub filters: Vec<Filter>,
    pub sort: Vec<SortKey>,
    pub limit: Option<u32>,
    /// 1-based page (collections surface).
    pub page: Option<u32>,
    /// Row offset (tables surface); wins over `page`.
    pub offset: Option<u64>,
    /// Keyset cursor: the id of the last record of the previous page.
    pub after: Option<String>,
    /// Projection; `None` selects every column.
    pub fields: Option<Vec<String>>,
    pub include_deleted: bool,
    /// Relation fields whose records to inline.
    pub expand: Vec<String>,
    /// Full-text search over the text fields; ranks the results when no sort is given.
    pub search: Option<crate::data::search::Expr>,
    /// PostgREST's `select=`: columns, renamed columns and embedded relations (tables
    /// surface); `None` selects every column.
    pub select: Option<Vec<SelectItem>>,
}

/// One item of PostgREST's `select=` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// `*`: every column.
    Star,
    /// `col`, or `alias:col` to rename it in the answer.
    Column { name: String, alias: Option<String> },
    /// `rel(…)` or `alias:rel(…)`: the related rows of another table, with their own select;
    /// `rel!hint(…)` names the foreign key (its column or constraint) when several could be meant.
    Embed { name: String, alias: Option<String>, hint: Option<String>, select: Vec<SelectItem> },
}

/// A tables-surface request: the shared [`Query`] plus PostgREST's write keywords.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableQuery {
    pub query: Query,
    /// `count=exact` (also `planned`, `estimated`): answer the total in `Content-Range`.
    pub count: bool,
    /// `on_conflict=a,b`: the unique columns an upsert matches on.
    pub on_conflict: Option<Vec<String>>,
    /// `columns=a,b`: the only body keys an insert uses.
    pub columns: Option<Vec<String>>,
}

impl Query {
    /// Whether any condition is a full-text match (which needs the search index).
    pub fn uses_search(&self) -> bool {
        fn any_fts(f: &Filter) -> bool {
            match f {
                Filter::And(c) | Filter::Or(c) => c.iter().any(any_fts),
                Filter::Not(inner) => any_fts(inner),
                Filter::Cond(c) => matches!(c.op, Op::Fts | Op::Plfts | Op::Phfts),
            }
        }
        self.search.is_some() || self.filters.iter().any(any_fts)
    }

    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }

    pub fn page(&self) -> u32 {
        self.page.unwrap_or(1)
    }

    pub fn offset(&self) -> u64 {
        self.offset.unwrap_or_else(|| u64::from(self.page() - 1) * u64::from(self.limit()))
    }
}
