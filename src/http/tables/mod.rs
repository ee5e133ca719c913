//! The tables surface (PostgREST dialect): `/api/v1/tables/{table}` and
//! `/api/v1/tables/{table}/{id}` over every exposed table, collections included. Parameters
//! parse into the shared query AST (`data::query::parse::table_query`); the data layer
//! (`data::tables`) runs them.

mod errors;
pub(crate) use errors::postgrest_fields;

mod prefer;
pub(crate) mod read;
pub(crate) mod write;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::data::query::TableQuery;
use crate::error::{ApiError, ApiResult};

/// Whether `path` is on the tables surface (`/api/v1/tables/…`).
pub fn is_tables_path(path: &str) -> bool {
    path.strip_prefix("/api/v1/tables").is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The refusal of a request whose `Accept-Profile` (reads) or `Content-Profile` (writes) names
/// another schema than `public`, the one schema served (supabase-js sends `public`).
pub fn profile_refusal(method: &axum::http::Method, headers: &axum::http::HeaderMap) -> Option<ApiError> {
    let name = if matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD) {
        "accept-profile"
    } else {
        "content-profile"
    };
    let asked = headers.get(name)?;
    let asked = asked.to_str().unwrap_or("").trim();
    (asked != "public").then(|| {
        let shown: String = asked.chars().take(64).collect();
        ApiError::UnknownSchema(format!("the schema must be one of the following: public (not '{shown}')"))
    })
}

/// A JSON answer.
fn json(status: StatusCode, body: &impl Serialize) -> ApiResult<Response> {
    let bytes = serde_json::to_vec(body).map_err(ApiError::internal)?;
    Ok((status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response())
}

/// Rows in the representation a read asked for (see [`prefer::format`]).
fn rows_answer(format: prefer::Format, rows: &crate::data::tables::TableRows) -> ApiResult<Response> {
    rows_answer_as(StatusCode::OK, format, rows)
}

/// Rows in the representation asked for, with `status` (a write's 201).
fn rows_answer_as(
    status: StatusCode,
    format: prefer::Format,
    rows: &crate::data::tables::TableRows,
) -> ApiResult<Response> {
    let (content_type, bytes) = match format {
        prefer::Format::Json => ("application/json", serde_json::to_vec(rows).map_err(ApiError::internal)?),
        prefer::Format::Object => {
            ("application/vnd.pgrst.object+json", serde_json::to_vec(&rows.single()?).map_err(ApiError::internal)?)
        }
        prefer::Format::Csv => ("text/csv; charset=utf-8", rows.to_csv().into_bytes()),
    };
    Ok((status, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], bytes).into_response())
}

/// Refuses the keywords (and filters) that do not apply to this request, naming the first.
fn only(tq: &TableQuery, allowed: &[&str], what: &str) -> ApiResult<()> {
    let present = [
        ("order", !tq.query.sort.is_empty()),
        ("limit", tq.query.limit.is_some()),
        ("offset", tq.query.offset.is_some()),
        ("count", tq.count),
        ("on_conflict", tq.on_conflict.is_some()),
        ("columns", tq.columns.is_some()),
        ("filters", !tq.query.filters.is_empty()),
    ];
    for (name, here) in present {
        if here && !allowed.contains(&name) {
            let name = if name == "filters" { "filters (column=operator.value)" } else { name };
            return Err(ApiError::bad_request(format!("'{name}' does not apply to {what}")));
        }
    }
    Ok(())
}
