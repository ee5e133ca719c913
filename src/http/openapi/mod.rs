//! `GET /api/v1/openapi.json` and `GET /openapi.json`: an OpenAPI 3.1 document of every
//! endpoint, generated on each request from the fixed endpoint descriptors
//! ([`static_paths`]) and the live catalog ([`schemas`]), so a new collection, table or
//! column shows at once. `/docs` serves the API explorer ([`docs`]).

mod docs;
mod operation;
mod schemas;
mod static_paths;
mod storage_paths;

use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

pub use docs::{asset, page};
pub use operation::Op;
use operation::{ERRORS, schema_ref};
pub use static_paths::endpoints;

use crate::app::AppState;
use crate::data::catalog::Table;
use crate::data::relations::Relation;
use crate::error::ApiResult;

/// The document, from the catalog as it is now.
pub async fn document(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let tables = state.store().catalog.list();
    let relations = state.store().list_relations().await?;
    Ok(Json(build(&tables, &relations)))
}

/// The whole OpenAPI document for these tables and relations.
pub fn build(tables: &[Arc<Table>], relations: &[Relation]) -> Value {
    let mut schemas = static_paths::schemas();
    let mut taken: HashSet<String> = schemas.keys().cloned().collect();
    let (table_schemas, table_ops) = schemas::from_catalog(tables, relations, &mut taken);
    schemas.extend(table_schemas);
    let mut ops = static_paths::endpoints();
    ops.extend(table_ops);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Ferrobase",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A backend-as-a-service: accounts, a collections API with access rules and \
                validation, a PostgREST-style tables API, and an admin API. Every error is \
                `{\"error\": \"...\"}`. Collections and tables of this server appear with their own \
                schemas and paths.",
        },
        "servers": [{"url": "/"}],
        "tags": tags(&ops),
        "paths": paths(&ops),
        "components": {
            "schemas": schemas,
            "parameters": static_paths::parameters(),
            "responses": error_responses(),
            "headers": {
                "ContentRange": {
                    "description": "`first-last/total` of the rows answered (`*` for the total unless counted)",
                    "schema": {"type": "string", "examples": ["0-9/123"]},
                },
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "An access token from sign-in, register or refresh.",
                },
                "apiKey": {
                    "type": "apiKey", "in": "header", "name": "X-API-Key",
                    "description": "An API key (`fb_…`) from `POST /api/v1/auth/api-keys`; acts as its user.",
                },
                "adminSecret": {
                    "type": "http", "scheme": "bearer",
                    "description": "The admin secret, sent as `Authorization: Bearer <admin secret>`: needed by the admin API, bypasses every access rule.",
                },
            },
        },
    })
}

/// Operations grouped by path, in the order given; operation ids from method and path, made
/// unique.
fn paths(ops: &[Op]) -> Map<String, Value> {
    let mut paths = Map::new();
    let mut ids = HashSet::new();
    for op in ops {
        let base: String = format!("{}_{}", op.method, op.path.trim_start_matches("/api/v1"))
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
            .split('_')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        let mut id = base.clone();
        let mut n = 2;
        while !ids.insert(id.clone()) {
            id = format!("{base}_{n}");
            n += 1;
        }
        let item = paths.entry(op.path.clone()).or_insert_with(|| json!({}));
        item[op.method] = op.render(&id);
    }
    paths
}

/// One tag per group, in order of first use.
fn tags(ops: &[Op]) -> Vec<Value> {
    let mut seen = HashSet::new();
    ops.iter().filter(|op| seen.insert(op.tag())).map(|op| json!({"name": op.tag()})).collect()
}

fn error_responses() -> Map<String, Value> {
    ERRORS
        .iter()
        .map(|(_, name, description)| {
            let response = json!({
                "description": description,
                "content": {"application/json": {"schema": schema_ref("Error")}},
            });
            ((*name).to_owned(), response)
        })
        .collect()
}
