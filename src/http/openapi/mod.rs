//! `GET /api/v1/openapi.json` and `GET /openapi.json`: an OpenAPI 3.1 document of every
//! endpoint, generated from the fixed endpoint descriptors ([`static_paths`]) and the live
//! catalog ([`schemas`]) whenever that changed ([`Cache`]), so a new collection, table or
//! column shows at once. `/docs` serves the API explorer ([`docs`]).

mod docs;
mod operation;
mod schemas;
mod static_paths;
mod storage_paths;

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub use docs::{asset, page};
pub use operation::Op;
use operation::{ERRORS, schema_ref};
pub use static_paths::endpoints;

use crate::app::AppState;
use crate::data::catalog::Table;
use crate::data::relations::Relation;
use crate::error::{ApiError, ApiResult};

/// The document, from the catalog as it is now.
pub async fn document(State(state): State<AppState>) -> ApiResult<Response> {
    let tables = state.store().catalog.list();
    let relations = state.store().list_relations().await?;
    let body = state.openapi().document(tables, relations).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The document last built and what it was built from. With hundreds of collections it is
/// tens of megabytes and takes seconds to build: it is built again only when a table or a
/// relation changed, and by one request at a time (the others wait for it and share it).
#[derive(Default)]
pub struct Cache {
    built: tokio::sync::Mutex<Option<Built>>,
}

struct Built {
    /// The catalog's tables are replaced, never changed in place: the same pointers are the
    /// same tables. Holding them keeps them alive, so no new table can take an old address.
    tables: Vec<Arc<Table>>,
    relations: Vec<Relation>,
    body: Bytes,
}

impl Cache {
    async fn document(&self, tables: Vec<Arc<Table>>, relations: Vec<Relation>) -> ApiResult<Bytes> {
        let mut built = self.built.lock().await;
        if let Some(b) = built.as_ref()
            && b.relations == relations
            && b.tables.len() == tables.len()
            && b.tables.iter().zip(&tables).all(|(a, b)| Arc::ptr_eq(a, b))
        {
            return Ok(b.body.clone());
        }
        // Off the request threads: building takes CPU for as long as the catalog is large.
        let (tables, relations, body) = tokio::task::spawn_blocking(move || {
            let body = serde_json::to_vec(&build(&tables, &relations));
            (tables, relations, body)
        })
        .await
        .map_err(ApiError::internal)?;
        let body = Bytes::from(body.map_err(ApiError::internal)?);
        *built = Some(Built { tables, relations, body: body.clone() });
        Ok(body)
    }
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
