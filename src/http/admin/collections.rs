//! `/api/v1/admin/collections`: list, create, show, change rules, drop, schema, drop a field.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json_, json};

use crate::app::AppState;
use crate::data::access::{Rules, RulesPatch};
use crate::data::catalog::{ColumnType, Table};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{Admin, JsonBody, Path};

/// A collection as the admin API shows it.
fn view(table: &Table) -> Json_ {
    let meta = table.collection.as_ref();
    json!({
        "name": table.name,
        "rules": table.access_rules(),
        "field_rules": meta.map(|m| &m.field_rules),
        "created_at": meta.map(|m| m.created_at),
        "updated_at": meta.map(|m| m.updated_at),
        "fields": table.columns,
    })
}

pub async fn list(_: Admin, State(state): State<AppState>) -> Response {
    let collections: Vec<Json_> =
        state.store().catalog.list().iter().filter(|t| t.collection.is_some()).map(|t| view(t)).collect();
    Json(json!({ "collections": collections })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCollection {
    name: String,
    #[serde(default)]
    rules: RulesPatch,
    /// Optional typed fields: `{"title": "text", "score": "integer"}`.
    #[serde(default)]
    fields: serde_json::Map<String, Json_>,
}

pub async fn create(_: Admin, State(state): State<AppState>, JsonBody(body): JsonBody<Json_>) -> ApiResult<Response> {
    let body: CreateCollection = crate::http::extract::from_object(body, "collection")?;
    body.rules.check()?;
    let mut rules = Rules::default();
    rules.apply(body.rules);
    let mut fields = Vec::with_capacity(body.fields.len());
    for (name, ty) in &body.fields {
        let ty = ty.as_str().and_then(ColumnType::parse).ok_or_else(|| {
            ApiError::bad_field(name, format!("field '{name}': type must be text, integer, real, boolean or json"))
        })?;
        fields.push((name.clone(), ty));
    }
    let table = state.store().create_collection(&body.name, rules, &fields).await?;
    Ok((StatusCode::CREATED, Json(view(&table))).into_response())
}

pub async fn get(_: Admin, State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    let table: Arc<Table> = state.store().collection(&name).await?;
    Ok(Json(view(&table)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollection {
    rules: RulesPatch,
}

pub async fn update(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Json_>,
) -> ApiResult<Response> {
    let body: UpdateCollection = crate::http::extract::from_object(body, "rules")?;
    body.rules.check()?;
    let table = state.store().update_rules(&name, body.rules).await?;
    Ok(Json(view(&table)).into_response())
}

pub async fn drop(_: Admin, State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    state.store().drop_collection(&name).await?;
    // Its records' files went to the trash.
    state.files().sweep_soon();
    Ok(Json(json!({ "deleted": true, "name": name })).into_response())
}

pub async fn schema(_: Admin, State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    let table = state.store().collection(&name).await?;
    let indexes = state.store().list_indexes(&name).await?;
    Ok(Json(json!({ "name": table.name, "columns": table.columns, "indexes": indexes })).into_response())
}

pub async fn drop_column(
    _: Admin,
    State(state): State<AppState>,
    Path((name, column)): Path<(String, String)>,
) -> ApiResult<Response> {
    let table = state.store().drop_column(&name, &column).await?;
    Ok(Json(json!({ "name": table.name, "columns": table.columns })).into_response())
}

/// `PUT /admin/collections/:name/rules`: `{field: {type?, required?, min?, max?, min_length?,
/// max_length?, pattern?, enum?, unique?}}` → `{rules, checked, violations}`.
pub async fn set_rules(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Json_>,
) -> ApiResult<Response> {
    let (table, report) = state.store().set_field_rules(&name, body).await?;
    let rules = table.collection.as_ref().map(|c| &c.field_rules);
    Ok(Json(json!({ "rules": rules, "checked": report.checked, "violations": report.violations })).into_response())
}
