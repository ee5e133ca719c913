//! One endpoint descriptor ([`Op`]) and the small JSON Schema helpers the descriptors are
//! written with. An `Op` renders itself as an OpenAPI operation object: its path parameters
//! come from the path template, its error answers from what it takes and who may call it.

use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter};
use serde_json::{Map, Value as Json, json};

use crate::app::AppState;

/// Who may call an operation, and so which security requirements it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed or looked at.
    Public,
    /// Anyone; a token, API key or the admin secret widens what the collection's rules allow.
    Optional,
    /// A signed-in user (access token or API key).
    User,
    /// The admin secret.
    Admin,
}

/// The handler that serves an endpoint (what the router is built from).
#[derive(Clone)]
pub struct Served(pub MethodRouter<AppState>);

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("handler")
    }
}

/// One endpoint: method, path, the handler that serves it, what it takes and what it answers.
/// The router and the OpenAPI document are both built from these.
#[derive(Debug, Clone)]
pub struct Op {
    pub method: &'static str,
    pub path: String,
    tag: String,
    summary: String,
    description: Option<String>,
    access: Access,
    params: Vec<Json>,
    body: Option<Json>,
    answers: Vec<(u16, Json)>,
    errors: Vec<u16>,
    handler: Option<Served>,
    /// The router's path when it differs from the documented one (a `{*key}` wildcard).
    routed_at: Option<String>,
}

impl Op {
    pub fn new(method: &'static str, path: impl Into<String>, tag: &str, summary: &str) -> Op {
        Op {
            method,
            path: path.into(),
            tag: tag.to_owned(),
            summary: summary.to_owned(),
            description: None,
            access: Access::Public,
            params: Vec::new(),
            body: None,
            answers: Vec::new(),
            errors: Vec::new(),
            handler: None,
            routed_at: None,
        }
    }

    /// The handler that serves this endpoint, on its method.
    pub fn handler<H, T>(mut self, handler: H) -> Op
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = match self.method {
            "get" => MethodFilter::GET,
            "post" => MethodFilter::POST,
            "put" => MethodFilter::PUT,
            "patch" => MethodFilter::PATCH,
            "delete" => MethodFilter::DELETE,
            "head" => MethodFilter::HEAD,
            "options" => MethodFilter::OPTIONS,
            other => panic!("no handler method for '{other}'"),
        };
        self.handler = Some(Served(axum::routing::on(filter, handler)));
        self
    }

    /// Wraps the handler (a layer that only this endpoint's answers go through).
    pub fn wrap(mut self, wrap: impl FnOnce(MethodRouter<AppState>) -> MethodRouter<AppState>) -> Op {
        self.handler = self.handler.map(|Served(h)| Served(wrap(h)));
        self
    }

    /// Routes the handler on `path` (for instance with a `{*key}` wildcard, which OpenAPI
    /// cannot spell) while the document shows [`Op::path`].
    pub fn routed_at(mut self, path: &str) -> Op {
        self.routed_at = Some(path.to_owned());
        self
    }

    /// The path and handler to route, for an endpoint that has one.
    pub fn route(&self) -> Option<(&str, MethodRouter<AppState>)> {
        let path = self.routed_at.as_deref().unwrap_or(&self.path);
        self.handler.as_ref().map(|Served(h)| (path, h.clone()))
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    pub fn describe(mut self, text: impl Into<String>) -> Op {
        self.description = Some(text.into());
        self
    }

    pub fn access(mut self, access: Access) -> Op {
        self.access = access;
        self
    }

    /// Parameters: objects or `$ref`s (see [`param`]).
    pub fn params(mut self, params: impl IntoIterator<Item = Json>) -> Op {
        self.params.extend(params);
        self
    }

    /// A required JSON request body with this schema.
    pub fn body(mut self, schema: Json) -> Op {
        self.body = Some(json!({"required": true, "content": {"application/json": {"schema": schema}}}));
        self
    }

    /// A request body given as a full OpenAPI request body object (uploads).
    pub fn request_body(mut self, body: Json) -> Op {
        self.body = Some(body);
        self
    }

    /// A JSON answer with this status and schema.
    pub fn ok(self, status: u16, schema: Json) -> Op {
        self.answer(
            status,
            json!({"description": status_text(status), "content": {"application/json": {"schema": schema}}}),
        )
    }

    /// An answer given as a full OpenAPI response object.
    pub fn answer(mut self, status: u16, response: Json) -> Op {
        self.answers.push((status, response));
        self
    }

    /// Error statuses beyond those every operation of its kind has.
    pub fn errors(mut self, codes: &[u16]) -> Op {
        self.errors.extend_from_slice(codes);
        self
    }

    /// The path parameters named in the template (`{id}` → `id`).
    fn path_params(&self) -> Vec<&str> {
        self.path.split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}')).collect()
    }

    /// Error statuses: 400 with input (path parameters included, and the admin secret sent
    /// where a user must act), 401/403 by access, 404 with path parameters, 413 with a body,
    /// 414, 429, 431, 500 and 503 always, plus the operation's own.
    fn error_codes(&self) -> Vec<u16> {
        let mut codes = self.errors.clone();
        if !self.params.is_empty()
            || self.body.is_some()
            || !self.path_params().is_empty()
            || self.access == Access::User
        {
            codes.push(400);
        }
        if self.access != Access::Public {
            codes.push(401);
        }
        if matches!(self.access, Access::Admin | Access::Optional) {
            codes.push(403);
        }
        if !self.path_params().is_empty() {
            codes.push(404);
        }
        if self.body.is_some() {
            codes.push(413);
        }
        // Rate limits (429) and maintenance mode (503) may answer any request.
        codes.extend([414, 429, 431, 500, 503]);
        codes.sort_unstable();
        codes.dedup();
        codes
    }

    /// The OpenAPI operation object.
    pub fn render(&self, operation_id: &str) -> Json {
        let mut op = Map::new();
        op.insert("tags".into(), json!([self.tag]));
        op.insert("summary".into(), json!(self.summary));
        if let Some(text) = &self.description {
            op.insert("description".into(), json!(text));
        }
        op.insert("operationId".into(), json!(operation_id));
        let mut params: Vec<Json> = self
            .path_params()
            .into_iter()
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(self.params.iter().cloned());
        if !params.is_empty() {
            op.insert("parameters".into(), Json::Array(params));
        }
        if let Some(body) = &self.body {
            op.insert("requestBody".into(), body.clone());
        }
        let mut responses = Map::new();
        for (status, response) in &self.answers {
            responses.insert(status.to_string(), response.clone());
        }
        for code in self.error_codes() {
            responses.insert(code.to_string(), json!({"$ref": format!("#/components/responses/{}", error_name(code))}));
        }
        op.insert("responses".into(), Json::Object(responses));
        let security = match self.access {
            Access::Public => None,
            Access::Optional => Some(json!([{}, {"bearerAuth": []}, {"apiKey": []}, {"adminSecret": []}])),
            Access::User => Some(json!([{"bearerAuth": []}, {"apiKey": []}])),
            Access::Admin => Some(json!([{"adminSecret": []}])),
        };
        if let Some(security) = security {
            op.insert("security".into(), security);
        }
        Json::Object(op)
    }
}

/// The error statuses the server answers, each a reusable response of the `Error` schema.
pub const ERRORS: &[(u16, &str, &str)] = &[
    (400, "BadRequest", "Bad input: the message (and `field`, `index`) say what is wrong"),
    (401, "Unauthorized", "No credentials, or invalid ones"),
    (403, "Forbidden", "Refused for these credentials"),
    (404, "NotFound", "No such route, collection, table or record"),
    (405, "MethodNotAllowed", "Wrong method for this path"),
    (406, "NotAcceptable", "The answer cannot take the asked form (a single object of not exactly one row)"),
    (409, "Conflict", "Conflict: a duplicate on a unique index, or the thing exists already"),
    (
        412,
        "PreconditionFailed",
        "A precondition is not met (a download's `If-Match` or `If-Unmodified-Since`; tus: `Tus-Resumable` missing or unsupported)",
    ),
    (413, "PayloadTooLarge", "The body is larger than allowed"),
    (414, "UriTooLong", "The URL is longer than allowed (MAX_URL_BYTES)"),
    (
        415,
        "UnsupportedMediaType",
        "The body is not JSON, or a file's type is not accepted or its content not what it claims",
    ),
    (416, "RangeNotSatisfiable", "The `Range` lies outside the file (`Content-Range` gives its size)"),
    (423, "Locked", "The account is locked after failed sign-ins (see `Retry-After`)"),
    (429, "TooManyRequests", "Over the rate limit: `Retry-After` says when to try again"),
    (431, "HeadersTooLarge", "The request's headers are larger than allowed (MAX_HEADER_BYTES)"),
    (500, "InternalError", "A fault of the server (logged)"),
    (503, "Unavailable", "Maintenance mode (see `Retry-After`), or the database or file store is down"),
];

fn error_name(code: u16) -> &'static str {
    ERRORS.iter().find(|(c, ..)| *c == code).map(|(_, name, _)| *name).unwrap_or("InternalError")
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No content",
        206 => "Partial content",
        304 => "Not modified (the `ETag` matched `If-None-Match`)",
        _ => "Answer",
    }
}

// JSON Schema helpers.

pub fn string() -> Json {
    json!({"type": "string"})
}

pub fn integer() -> Json {
    json!({"type": "integer"})
}

pub fn number() -> Json {
    json!({"type": "number"})
}

pub fn boolean() -> Json {
    json!({"type": "boolean"})
}

pub fn array(items: Json) -> Json {
    json!({"type": "array", "items": items})
}

/// An object with these properties, of which `required` must be present; others allowed.
pub fn object(properties: &[(&str, Json)], required: &[&str]) -> Json {
    let props: Map<String, Json> = properties.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let mut schema = json!({"type": "object", "properties": props});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// Any JSON object.
pub fn any_object() -> Json {
    json!({"type": "object", "additionalProperties": true})
}

/// A reference to a component schema.
pub fn schema_ref(name: &str) -> Json {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A reference to a component parameter.
pub fn param_ref(name: &str) -> Json {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

/// A query parameter.
pub fn query(name: &str, schema: Json, description: &str) -> Json {
    json!({"name": name, "in": "query", "schema": schema, "description": description})
}

/// A request header parameter.
pub fn header(name: &str, schema: Json, description: &str) -> Json {
    json!({"name": name, "in": "header", "schema": schema, "description": description})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_and_errors_come_from_the_descriptor() {
        let op = Op::new("post", "/api/v1/{collection}/{id}/restore", "Records", "Restore")
            .access(Access::Optional)
            .ok(200, any_object());
        let rendered = op.render("restore");
        let names: Vec<_> = rendered["parameters"].as_array().unwrap().iter().map(|p| p["name"].clone()).collect();
        assert_eq!(names, vec![json!("collection"), json!("id")]);
        let codes: Vec<_> = rendered["responses"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(codes, vec!["200", "400", "401", "403", "404", "414", "429", "431", "500", "503"]);
        assert_eq!(rendered["security"][0], json!({}), "optional auth allows anonymous calls");
    }
}
