//! The endpoints that exist whatever the catalog holds: auth, admin, the document itself,
//! and the two record surfaces as templates ([`record_ops`], [`table_ops`]) that describe
//! both the generic `/{collection}` and `/tables/{table}` paths and each concrete one.

use serde_json::{Map, Value as Json, json};

use super::operation::{
    Access, Op, any_object, array, boolean, header, integer, number, object, param_ref, query, schema_ref, string,
};

/// What a record template describes: the generic surface or one collection or table.
pub struct Target {
    /// `/api/v1/{collection}`, `/api/v1/posts`, `/api/v1/tables/{table}`, …
    pub base: String,
    pub tag: String,
    /// A record as read and as written on create (read-only fields ignored).
    pub record: Json,
    /// A partial record, as written on update.
    pub patch: Json,
    /// Filter parameters (one per column for a concrete table; free-form otherwise).
    pub filters: Vec<Json>,
}

/// The collections surface on `t.base`.
pub fn record_ops(t: &Target) -> Vec<Op> {
    let (base, tag) = (t.base.as_str(), t.tag.as_str());
    let item = format!("{base}/{{id}}");
    let list_filters = || {
        let mut p = vec![param_ref("filter"), param_ref("search")];
        p.extend(t.filters.iter().cloned());
        p
    };
    let page = object(
        &[
            ("items", array(t.record.clone())),
            ("total", integer()),
            ("page", integer()),
            ("limit", integer()),
            ("next_cursor", json!({"type": ["string", "null"]})),
        ],
        &["items", "total", "page", "limit", "next_cursor"],
    );
    let not_modified = json!({"description": "Not modified: the `ETag` matched `If-None-Match`"});
    vec![
        Op::new("get", base, tag, "List records")
            .handler(crate::http::records::list)
            .access(Access::Optional)
            .params(["limit", "page", "after", "sort", "fields", "expand", "include_deleted"].map(param_ref))
            .params(list_filters())
            .ok(200, page)
            .answer(304, not_modified.clone()),
        Op::new("post", base, tag, "Create a record")
            .handler(crate::http::records::create)
            .access(Access::Optional)
            .body(t.record.clone())
            .ok(201, t.record.clone())
            .errors(&[409]),
        Op::new("get", format!("{base}/count"), tag, "Count records")
            .handler(crate::http::records::count)
            .access(Access::Optional)
            .params(list_filters())
            .ok(200, object(&[("count", integer())], &["count"])),
        Op::new("get", format!("{base}/aggregate"), tag, "Aggregate records")
            .handler(crate::http::records::aggregate)
            .access(Access::Optional)
            .params([
                json!({"name": "op", "in": "query", "required": true, "schema": {"enum": ["count", "sum", "avg", "min", "max"]}}),
                query("field", string(), "the field to aggregate (not needed for count)"),
                query("group_by", string(), "a field to group by"),
            ])
            .params(list_filters())
            .ok(
                200,
                json!({"oneOf": [
                    object(&[("result", json!({}))], &["result"]),
                    object(&[("groups", array(object(&[("key", json!({})), ("result", json!({}))], &["key", "result"])))], &["groups"]),
                ]}),
            ),
        Op::new("post", format!("{base}/bulk"), tag, "Create 1–500 records, all or none")
            .handler(crate::http::records::bulk)
            .access(Access::Optional)
            .body(json!({"type": "array", "items": t.record, "minItems": 1, "maxItems": 500}))
            .ok(201, object(&[("items", array(t.record.clone())), ("count", integer())], &["items", "count"]))
            .errors(&[409]),
        Op::new("post", format!("{base}/batch"), tag, "Run 1–100 creates, updates and deletes in one transaction")
            .handler(crate::http::records::batch)
            .access(Access::Optional)
            .body(object(
                &[(
                    "operations",
                    json!({"type": "array", "minItems": 1, "maxItems": 100, "items": object(
                        &[("op", json!({"enum": ["create", "update", "delete"]})), ("id", string()), ("data", t.patch.clone())],
                        &["op"],
                    )}),
                )],
                &["operations"],
            ))
            .ok(200, object(&[("results", array(json!({})))], &["results"]))
            .errors(&[409]),
        Op::new("get", item.clone(), tag, "Get a record")
            .handler(crate::http::records::get)
            .access(Access::Optional)
            .params([param_ref("fields"), param_ref("expand")])
            .ok(200, t.record.clone())
            .answer(304, not_modified),
        Op::new("patch", item.clone(), tag, "Update the given fields of a record")
            .handler(crate::http::records::update)
            .access(Access::Optional)
            .body(t.patch.clone())
            .ok(200, t.record.clone())
            .errors(&[409]),
        Op::new("delete", item.clone(), tag, "Soft-delete a record")
            .handler(crate::http::records::delete).access(Access::Optional).ok(
            200,
            object(&[("deleted", boolean()), ("_id", string())], &["deleted", "_id"]),
        ),
        Op::new("post", format!("{item}/restore"), tag, "Restore a soft-deleted record")
            .handler(crate::http::records::restore)
            .access(Access::Optional)
            .ok(200, t.record.clone()),
    ]
}

/// The tables surface (PostgREST dialect) on `t.base`.
pub fn table_ops(t: &Target) -> Vec<Op> {
    let (base, tag) = (t.base.as_str(), t.tag.as_str());
    let item = format!("{base}/{{id}}");
    let filters = || {
        let mut p = t.filters.clone();
        p.extend([param_ref("or"), param_ref("and")]);
        p
    };
    let rows = |status: u16| {
        // An insert of one object answers that object.
        let schema =
            if status == 201 { json!({"oneOf": [array(t.record.clone()), t.record]}) } else { array(t.record.clone()) };
        json!({
            "description": if status == 201 { "Created; the rows (with `Prefer: return=representation`, the default)" } else { "The rows" },
            "headers": {"Content-Range": {"$ref": "#/components/headers/ContentRange"}},
            "content": {
                "application/json": {"schema": schema},
                "application/vnd.pgrst.object+json": {"schema": t.record},
            },
        })
    };
    let one = json!({
        "description": "The row",
        "content": {"application/json": {"schema": t.record}, "application/vnd.pgrst.object+json": {"schema": t.record}},
    });
    let minimal = json!({"description": "Done; nothing returned (`Prefer: return=minimal`)"});
    let write_prefs = [param_ref("Prefer"), param_ref("select")];
    let ops = vec![
        Op::new("get", base, tag, "Read rows")
            .handler(crate::http::tables::read::list)
            .describe("With `Accept: application/vnd.pgrst.object+json` the answer is one object instead of an array.")
            .access(Access::Optional)
            .params(["select", "order", "tableLimit", "offset", "count", "Range", "Prefer"].map(param_ref))
            .params(filters())
            .answer(200, rows(200))
            .errors(&[406]),
        Op::new("head", base, tag, "Count rows (headers only)")
            .access(Access::Optional)
            .params(["count", "Range", "Prefer"].map(param_ref))
            .params(filters())
            .answer(200, json!({"description": "Headers only", "headers": {"Content-Range": {"$ref": "#/components/headers/ContentRange"}}})),
        Op::new("post", base, tag, "Insert or upsert one row or an array of rows (all or none)")
            .handler(crate::http::tables::write::create)
            .access(Access::Optional)
            .params(["columns", "on_conflict"].map(param_ref))
            .params(write_prefs.clone())
            .body(json!({"oneOf": [t.record, array(t.record.clone())]}))
            .answer(201, rows(201))
            .answer(204, minimal.clone())
            .errors(&[406, 409, 415]),
        Op::new("patch", base, tag, "Update the rows that match the filters (a filter is required)")
            .handler(crate::http::tables::write::update)
            .access(Access::Optional)
            .params(write_prefs.clone())
            .params(filters())
            .body(t.patch.clone())
            .answer(200, rows(200))
            .answer(204, minimal.clone())
            .errors(&[406, 409, 415]),
        Op::new("delete", base, tag, "Delete the rows that match the filters (a filter is required)")
            .handler(crate::http::tables::write::delete)
            .access(Access::Optional)
            .params(write_prefs.clone())
            .params(filters())
            .answer(200, rows(200))
            .answer(204, minimal.clone())
            .errors(&[406]),
        Op::new("get", item.clone(), tag, "Read one row by primary key")
            .handler(crate::http::tables::read::get)
            .access(Access::Optional)
            .params([param_ref("select")])
            .answer(200, one.clone()),
        Op::new("put", item.clone(), tag, "Replace one row")
            .handler(crate::http::tables::write::replace)
            .access(Access::Optional)
            .params(write_prefs.clone())
            .body(t.record.clone())
            .answer(200, one.clone())
            .answer(204, minimal.clone())
            .errors(&[409, 415]),
        Op::new("patch", item.clone(), tag, "Update one row")
            .handler(crate::http::tables::write::update_one)
            .access(Access::Optional)
            .params(write_prefs.clone())
            .body(t.patch.clone())
            .answer(200, one.clone())
            .answer(204, minimal.clone())
            .errors(&[409, 415]),
        Op::new("delete", item, tag, "Delete one row")
            .handler(crate::http::tables::write::delete_one)
            .access(Access::Optional)
            .params(write_prefs)
            .answer(200, one)
            .answer(204, minimal),
    ];
    ops
}

/// Every endpoint that does not depend on the catalog.
pub fn endpoints() -> Vec<Op> {
    let mut ops = meta_ops();
    ops.extend(auth_ops());
    ops.extend(admin_ops());
    ops.extend(super::storage_paths::storage_ops());
    ops.extend(record_ops(&Target {
        base: "/api/v1/{collection}".into(),
        tag: "Records".into(),
        record: schema_ref("Record"),
        patch: any_object(),
        filters: vec![param_ref("columnFilters")],
    }));
    ops.extend(table_ops(&Target {
        base: "/api/v1/tables/{table}".into(),
        tag: "Tables".into(),
        record: any_object(),
        patch: any_object(),
        filters: vec![param_ref("columnFilters")],
    }));
    ops
}

fn meta_ops() -> Vec<Op> {
    let document = |path: &'static str| {
        Op::new("get", path, "Meta", "This OpenAPI document")
            .handler(super::document)
            .describe("Generated from the live catalog: every collection and table has its schema and paths.")
            .ok(200, any_object())
    };
    let html = json!({"description": "HTML", "content": {"text/html": {"schema": string()}}});
    let health = object(
        &[
            ("status", json!({"enum": ["ok", "unavailable"]})),
            ("database", json!({"enum": ["sqlite", "postgres"]})),
            (
                "checks",
                object(
                    &[
                        ("database", string()),
                        ("storage", string()),
                        ("feed", json!({"enum": ["listening", "not listening"]})),
                    ],
                    &[],
                ),
            ),
            ("storage", json!({"enum": ["local", "s3"]})),
            ("version", string()),
        ],
        &["status"],
    );
    vec![
        document("/api/v1/openapi.json"),
        document("/openapi.json"),
        Op::new("get", "/docs", "Meta", "The API explorer (Swagger UI)").handler(super::page).answer(200, html),
        Op::new("get", "/docs/{asset}", "Meta", "A file of the API explorer")
            .handler(super::asset)
            .answer(200, json!({"description": "The file, with a long cache lifetime"})),
        Op::new("get", "/metrics", "Meta", "Prometheus metrics (text format)")
            .handler(crate::http::metrics::metrics)
            .describe("Requests by route template and status, latency histograms, requests in flight, database connections and waits, the SQLite write-ahead log's size, live sessions, stored files and bytes. With the setting `metrics_token`, send `Authorization: Bearer <token>`.")
            .answer(200, json!({"description": "Prometheus text format 0.0.4", "content": {"text/plain": {"schema": string()}}}))
            .errors(&[401]),
        Op::new("get", "/api/v1/admin/health", "Meta", "Liveness, database and file store check")
            .handler(crate::http::admin::health::health)
            .ok(200, health),
    ]
}

fn auth_ops() -> Vec<Op> {
    let a = "/api/v1/auth";
    let tag = "Auth";
    let credentials = object(
        &[
            ("email", json!({"type": "string", "format": "email"})),
            ("password", string()),
            ("metadata", any_object()),
            ("data", any_object()),
        ],
        &["email", "password"],
    );
    let sign_in = schema_ref("SignIn");
    let token_body = object(&[("token", string())], &["token"]);
    let code_body = object(&[("code", string())], &["code"]);
    let email_body = object(&[("email", json!({"type": "string", "format": "email"}))], &["email"]);
    let message = object(&[("message", string())], &[]);
    let revoked =
        object(&[("success", boolean()), ("sessions_revoked", integer()), ("api_keys_revoked", integer())], &[]);
    let register = |path: &str| {
        Op::new("post", format!("{a}/{path}"), tag, "Create an account")
            .describe("Answers `{user, email_verification_required: true}` without tokens when email verification is required.")
            .body(credentials.clone())
            .ok(201, json!({"anyOf": [sign_in, object(&[("user", schema_ref("User")), ("email_verification_required", boolean())], &["user"])]}))
            .errors(&[403, 409])
    };
    let login = |path: &str, challenge: Json| {
        Op::new("post", format!("{a}/{path}"), tag, "Sign in with email and password")
            .body(object(&[("email", string()), ("password", string())], &["email", "password"]))
            .ok(200, json!({"anyOf": [sign_in, challenge]}))
            .errors(&[401, 403, 423])
    };
    let magic_request = |path: &str| {
        Op::new("post", format!("{a}/{path}"), tag, "Mail a single-use sign-in link")
            .body(email_body.clone())
            .ok(200, message.clone())
    };
    // A user with 2FA on gets the second-factor challenge whichever way they sign in.
    let collections_challenge =
        object(&[("totp_required", boolean()), ("totp_token", string())], &["totp_required", "totp_token"]);
    let tables_challenge = object(
        &[("requires_2fa", boolean()), ("user_id", string()), ("totp_token", string())],
        &["requires_2fa", "totp_token"],
    );
    let magic_verify = |method: &'static str, path: &str, challenge: &Json| {
        let op = Op::new(method, format!("{a}/{path}"), tag, "Sign in with a magic-link token");
        let op = if method == "get" {
            op.params([json!({"name": "token", "in": "query", "required": true, "schema": string()})])
        } else {
            op.body(token_body.clone())
        };
        op.ok(200, json!({"anyOf": [sign_in, challenge]})).errors(&[400, 423])
    };
    let logout = |path: &str| {
        Op::new("post", format!("{a}/{path}"), tag, "End this session").access(Access::User).ok(200, revoked.clone())
    };
    let me = |method, path: &str, summary| Op::new(method, format!("{a}/{path}"), tag, summary).access(Access::User);
    vec![
        register("register").handler(crate::http::auth::register::register),
        register("signup").handler(crate::http::auth::register::register),
        login("login", collections_challenge.clone()).handler(crate::http::auth::login::login),
        login("signin", tables_challenge.clone()).handler(crate::http::auth::login::signin),
        Op::new("post", format!("{a}/2fa/verify"), tag, "Finish a sign-in with a TOTP or recovery code")
            .handler(crate::http::auth::two_factor::verify)
            .body(object(&[("totp_token", string()), ("code", string())], &["totp_token", "code"]))
            .ok(200, sign_in.clone())
            .errors(&[401, 423]),
        Op::new("post", format!("{a}/refresh"), tag, "Exchange a refresh token for a new pair")
            .handler(crate::http::auth::login::refresh)
            .body(object(&[("refresh_token", string())], &["refresh_token"]))
            .ok(200, sign_in.clone())
            .errors(&[401]),
        logout("logout").handler(crate::http::auth::logout::logout),
        logout("signout").handler(crate::http::auth::logout::logout),
        Op::new("post", format!("{a}/logout-all"), tag, "End every session and revoke every API key")
            .handler(crate::http::auth::logout::logout_all)
            .access(Access::User)
            .ok(200, revoked.clone()),
        me("get", "me", "The current user").handler(crate::http::auth::profile::me).ok(200, schema_ref("User")),
        me("delete", "me", "Delete the account")
            .handler(crate::http::auth::profile::delete_me)
            .ok(200, object(&[("deleted", boolean())], &["deleted"])),
        me("get", "user", "The current user").handler(crate::http::auth::profile::me).ok(200, schema_ref("User")),
        me("patch", "user", "Change email, password or metadata")
            .handler(crate::http::auth::profile::update)
            .body(object(
                &[
                    ("email", string()),
                    ("password", string()),
                    ("current_password", string()),
                    ("metadata", any_object()),
                ],
                &[],
            ))
            .ok(200, schema_ref("User"))
            .ok(
                202,
                object(
                    &[("user", schema_ref("User")), ("email_change_pending", boolean()), ("message", string())],
                    &["user", "email_change_pending"],
                ),
            )
            .errors(&[400, 409, 423]),
        Op::new(
            "post",
            format!("{a}/confirm-email-change"),
            tag,
            "Apply an email change confirmed from the old address",
        )
        .handler(crate::http::auth::profile::confirm_email_change)
        .body(token_body.clone())
        .ok(200, schema_ref("User"))
        .errors(&[400, 409]),
        Op::new("post", format!("{a}/forgot-password"), tag, "Mail a password reset link (always 200)")
            .handler(crate::http::auth::password::forgot)
            .body(email_body.clone())
            .ok(200, message.clone()),
        Op::new("post", format!("{a}/reset-password"), tag, "Set a new password with a reset token")
            .handler(crate::http::auth::password::reset)
            .body(object(&[("token", string()), ("password", string())], &["token", "password"]))
            .ok(200, revoked)
            .errors(&[401]),
        Op::new("post", format!("{a}/verify-email"), tag, "Verify the email address with a token")
            .handler(crate::http::auth::email::verify)
            .body(token_body.clone())
            .ok(200, object(&[("success", boolean()), ("email_verified", boolean())], &[]))
            .errors(&[401]),
        me("post", "resend-verification", "Mail a new verification link")
            .handler(crate::http::auth::email::resend)
            .ok(200, message.clone()),
        magic_request("magic-link").handler(crate::http::auth::magic_link::request),
        magic_request("magiclink").handler(crate::http::auth::magic_link::request),
        magic_verify("post", "magic-link/verify", &collections_challenge)
            .handler(crate::http::auth::magic_link::verify_post),
        magic_verify("post", "magiclink/verify", &tables_challenge)
            .handler(crate::http::auth::magic_link::verify_post_tables),
        magic_verify("get", "magiclink/verify", &tables_challenge).handler(crate::http::auth::magic_link::verify_get),
        me("post", "api-keys", "Create an API key (the key is shown only here)")
            .handler(crate::http::auth::api_keys::create)
            .body(object(&[("name", string()), ("expires_at", integer())], &["name"]))
            .ok(201, schema_ref("ApiKey")),
        me("get", "api-keys", "List API keys")
            .handler(crate::http::auth::api_keys::list)
            .ok(200, object(&[("api_keys", array(schema_ref("ApiKey")))], &["api_keys"])),
        me("delete", "api-keys/{id}", "Revoke an API key")
            .handler(crate::http::auth::api_keys::revoke)
            .ok(200, object(&[("revoked", boolean())], &["revoked"])),
        me("post", "2fa/setup", "Generate a TOTP secret")
            .handler(crate::http::auth::two_factor::setup)
            .ok(200, object(&[("secret", string()), ("otpauth_url", string())], &["secret", "otpauth_url"])),
        me("post", "2fa/enable", "Enable 2FA with a TOTP code")
            .handler(crate::http::auth::two_factor::enable)
            .body(code_body.clone())
            .ok(
                200,
                object(&[("enabled", boolean()), ("recovery_codes", array(string()))], &["enabled", "recovery_codes"]),
            ),
        me("delete", "2fa/disable", "Disable 2FA with a TOTP or recovery code")
            .handler(crate::http::auth::two_factor::disable)
            .body(code_body.clone())
            .ok(200, object(&[("enabled", boolean())], &["enabled"])),
        me("post", "2fa/disable", "Disable 2FA with a TOTP or recovery code")
            .handler(crate::http::auth::two_factor::disable)
            .body(code_body)
            .ok(200, object(&[("enabled", boolean())], &["enabled"])),
    ]
}

fn admin_ops() -> Vec<Op> {
    let c = "/api/v1/admin/collections";
    let op = |method, path: String, summary| Op::new(method, path, "Admin", summary).access(Access::Admin);
    let collection = schema_ref("Collection");
    let deleted = object(&[("deleted", boolean())], &["deleted"]);
    let page_of = |item: Json| {
        object(
            &[("items", array(item)), ("total", integer()), ("page", integer()), ("limit", integer())],
            &["items", "total"],
        )
    };
    let paging = [query("page", integer(), "1-based page"), query("limit", integer(), "page size")];
    let rules = object(
        &[
            ("read", schema_ref("AccessRule")),
            ("create", schema_ref("AccessRule")),
            ("update", schema_ref("AccessRule")),
            ("delete", schema_ref("AccessRule")),
        ],
        &[],
    );
    let schema = object(
        &[("name", string()), ("columns", array(schema_ref("Column"))), ("indexes", array(schema_ref("Index")))],
        &["name", "columns"],
    );
    vec![
        op("get", c.into(), "List collections")
            .handler(crate::http::admin::collections::list).ok(200, object(&[("collections", array(collection.clone()))], &["collections"])),
        op("post", c.into(), "Create a collection")
            .handler(crate::http::admin::collections::create)
            .body(object(
                &[("name", string()), ("rules", rules.clone()), ("fields", json!({"type": "object", "additionalProperties": {"enum": ["text", "integer", "real", "boolean", "json"]}}))],
                &["name"],
            ))
            .ok(201, collection.clone())
            .errors(&[409]),
        op("get", format!("{c}/{{name}}"), "Get a collection")
            .handler(crate::http::admin::collections::get).ok(200, collection.clone()),
        op("patch", format!("{c}/{{name}}"), "Change a collection's access rules")
            .handler(crate::http::admin::collections::update)
            .body(object(&[("rules", rules)], &["rules"]))
            .ok(200, collection),
        op("delete", format!("{c}/{{name}}"), "Drop a collection and all its records")
            .handler(crate::http::admin::collections::drop)
            .ok(200, object(&[("deleted", boolean()), ("name", string())], &["deleted"])),
        op("get", format!("{c}/{{name}}/schema"), "The collection's columns and indexes")
            .handler(crate::http::admin::collections::schema).ok(200, schema.clone()),
        op("delete", format!("{c}/{{name}}/schema/{{column}}"), "Drop a field (and its indexes)")
            .handler(crate::http::admin::collections::drop_column).ok(200, schema),
        op("put", format!("{c}/{{name}}/rules"), "Replace the field validation rules")
            .handler(crate::http::admin::collections::set_rules)
            .body(json!({"type": "object", "additionalProperties": schema_ref("FieldRule")}))
            .ok(
                200,
                object(
                    &[
                        ("rules", json!({"type": "object", "additionalProperties": schema_ref("FieldRule")})),
                        ("checked", integer()),
                        ("violations", json!({"type": "object", "additionalProperties": {"type": "integer"}})),
                    ],
                    &["rules", "checked", "violations"],
                ),
            ),
        op("get", format!("{c}/{{name}}/records"), "List records, deleted ones included")
            .handler(crate::http::admin::records::list)
            .params(["limit", "page", "after", "sort", "fields", "expand", "include_deleted", "filter", "search", "columnFilters"].map(param_ref))
            .ok(200, page_of(schema_ref("Record"))),
        op("post", format!("{c}/{{name}}/records"), "Create a record")
            .handler(crate::http::admin::records::create).body(any_object()).ok(201, schema_ref("Record")).errors(&[409]),
        op("get", format!("{c}/{{name}}/records/{{id}}"), "Get any record, deleted or not")
            .handler(crate::http::admin::records::get).ok(200, schema_ref("Record")),
        op("patch", format!("{c}/{{name}}/records/{{id}}"), "Update any record")
            .handler(crate::http::admin::records::update).body(any_object()).ok(200, schema_ref("Record")).errors(&[409]),
        op("delete", format!("{c}/{{name}}/records/{{id}}"), "Delete a record for real")
            .handler(crate::http::admin::records::delete)
            .ok(200, object(&[("deleted", boolean()), ("_id", string())], &["deleted"])),
        op("get", format!("{c}/{{name}}/indexes"), "List indexes")
            .handler(crate::http::admin::indexes::list).ok(200, object(&[("indexes", array(schema_ref("Index")))], &["indexes"])),
        op("post", format!("{c}/{{name}}/indexes"), "Create an index")
            .handler(crate::http::admin::indexes::create)
            .body(object(&[("column", string()), ("columns", array(string())), ("unique", boolean())], &[]))
            .ok(201, any_object())
            .errors(&[409]),
        op("delete", format!("{c}/{{name}}/indexes/{{column}}"), "Drop the index on a column (or by index name)")
            .handler(crate::http::admin::indexes::drop).ok(200, deleted.clone()),
        op("get", "/api/v1/admin/users".into(), "List users")
            .handler(crate::http::admin::users::list)
            .params(paging.clone())
            .params([query("search", string(), "email contains")])
            .ok(200, page_of(schema_ref("User"))),
        op("delete", "/api/v1/admin/users/{id}".into(), "Delete a user")
            .handler(crate::http::admin::users::delete).ok(200, deleted.clone()),
        op("patch", "/api/v1/admin/users/{id}/roles".into(), "Set a user's roles")
            .handler(crate::http::admin::users::set_roles)
            .body(object(&[("roles", array(string()))], &["roles"]))
            .ok(200, schema_ref("User")),
        op("post", "/api/v1/admin/users/{id}/impersonate".into(), "Issue a 15-minute token acting as the user")
            .handler(crate::http::admin::users::impersonate).ok(
            200,
            object(
                &[("access_token", string()), ("expires_in", integer()), ("impersonated", boolean()), ("user", schema_ref("User"))],
                &["access_token", "expires_in"],
            ),
        ),
        op("get", "/api/v1/admin/sessions".into(), "List sessions")
            .handler(crate::http::admin::sessions::list)
            .params(paging)
            .params([query("user_id", string(), "only this user's sessions")])
            .ok(200, page_of(any_object())),
        op("post", "/api/v1/admin/sessions/purge".into(), "Delete expired and revoked sessions and spent one-time tokens")
            .handler(crate::http::admin::sessions::purge)
            .ok(200, object(&[("purged", integer()), ("tokens_purged", integer())], &["purged", "tokens_purged"])),
        op("delete", "/api/v1/admin/sessions/{id}".into(), "Revoke a session")
            .handler(crate::http::admin::sessions::revoke)
            .ok(200, object(&[("revoked", boolean()), ("id", string())], &["revoked"])),
        op("get", "/api/v1/admin/settings".into(), "Runtime settings (write-only values masked)")
            .handler(crate::http::admin::settings::get)
            .ok(200, object(&[("settings", any_object())], &["settings"])),
        op("patch", "/api/v1/admin/settings".into(), "Change runtime settings (all or nothing)")
            .handler(crate::http::admin::settings::update)
            .body(any_object())
            .ok(200, object(&[("settings", any_object())], &["settings"])),
        op("post", "/api/v1/admin/restart".into(), "Restart gracefully")
            .handler(crate::http::admin::restart::restart)
            .describe("A new process of the same binary takes over the listening socket; this one finishes its in-flight requests and exits. No connection is refused meanwhile. 409 for a server not started as the `ferrobase` command.")
            .answer(202, json!({"description": "Restarting", "content": {"application/json": {"schema": object(&[("restarting", boolean())], &["restarting"])}}}))
            .errors(&[409]),
        op("post", "/api/v1/admin/backup".into(), "A consistent backup, streamed as a download")
            .handler(crate::http::admin::backup::backup)
            .describe("SQLite: a `.db` file (`VACUUM INTO`, taken while writes go on). PostgreSQL: `pg_dump`'s custom format of this deployment's schema. `ferrobase restore` (or `pg_restore`) takes it back.")
            .answer(200, json!({"description": "The backup file", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}})),
        op("get", "/api/v1/admin/stats".into(), "What the server holds and how long it has served")
            .handler(crate::http::admin::stats::stats)
            .ok(
                200,
                object(
                    &[
                        ("users", integer()),
                        ("sessions_active", integer()),
                        ("collections", integer()),
                        ("records", integer()),
                        ("buckets", integer()),
                        ("files", integer()),
                        ("file_bytes", integer()),
                        ("database", string()),
                        ("database_bytes", integer()),
                        ("uptime_seconds", integer()),
                        ("requests", integer()),
                        ("version", string()),
                    ],
                    &["users", "records", "files", "uptime_seconds"],
                ),
            ),
        op("get", "/api/v1/admin/settings/audit".into(), "Changes to the settings, newest first (secrets masked)")
            .handler(crate::http::admin::settings::audit)
            .params([query("limit", integer(), "1–500, default 50"), query("offset", integer(), "skip this many")])
            .ok(
                200,
                object(
                    &[
                        ("items", array(object(&[("id", string()), ("changed_at", integer()), ("actor", string()), ("key", string()), ("old_value", json!({})), ("new_value", json!({}))], &["key", "changed_at"]))),
                        ("total", integer()),
                        ("limit", integer()),
                        ("offset", integer()),
                    ],
                    &["items", "total"],
                ),
            ),
        op("get", "/api/v1/admin/settings/export".into(), "Every setting as a JSON file (secrets masked)")
            .handler(crate::http::admin::settings::export)
            .ok(200, object(&[("settings", any_object()), ("exported_at", integer())], &["settings"])),
        op("post", "/api/v1/admin/settings/import".into(), "Import settings: an export or an object of settings, all or nothing")
            .handler(crate::http::admin::settings::import)
            .describe("Masked secrets (`********`) keep the stored value, so an export imports back without erasing credentials.")
            .body(any_object())
            .ok(200, object(&[("imported", array(string())), ("settings", any_object())], &["imported", "settings"])),
        op("post", "/api/v1/admin/settings/test-email".into(), "Send a test email through the configured provider")
            .handler(crate::http::admin::settings::test_email)
            .body(object(&[("to", string())], &["to"]))
            .ok(200, object(&[("sent", boolean()), ("provider", string()), ("to", string()), ("error", string())], &["sent", "provider"])),
        op("get", "/api/v1/admin/relations".into(), "List relations")
            .handler(crate::http::admin::relations::list)
            .ok(200, object(&[("relations", array(schema_ref("Relation")))], &["relations"])),
        op("post", "/api/v1/admin/relations".into(), "Create a relation (the field is created when missing)")
            .handler(crate::http::admin::relations::create)
            .body(object(
                &[
                    ("collection", string()),
                    ("field", string()),
                    ("target", string()),
                    ("many", boolean()),
                    ("on_delete", json!({"enum": ["restrict", "cascade", "set_null"]})),
                ],
                &["collection", "field", "target"],
            ))
            .ok(201, schema_ref("Relation"))
            .errors(&[409]),
        op("delete", "/api/v1/admin/relations/{id}".into(), "Forget a relation (the field and its values stay)")
            .handler(crate::http::admin::relations::delete)
            .ok(200, object(&[("deleted", boolean()), ("id", string())], &["deleted"])),
    ]
}

/// The component schemas of the fixed endpoints.
pub fn schemas() -> Map<String, Json> {
    let nullable = |ty: &str| json!({"type": [ty, "null"]});
    let mut s = Map::new();
    for (name, schema) in super::storage_paths::schemas() {
        s.insert(name.into(), schema);
    }
    s.insert(
        "Error".into(),
        object(
            &[
                ("error", json!({"type": "string", "description": "a human-readable message"})),
                ("field", json!({"type": "string", "description": "the field at fault"})),
                (
                    "index",
                    json!({"type": "integer", "description": "the failing item of a bulk or batch request (0-based)"}),
                ),
            ],
            &["error"],
        ),
    );
    s.insert(
        "User".into(),
        object(
            &[
                ("id", string()),
                ("email", string()),
                ("email_verified", boolean()),
                ("roles", array(string())),
                ("metadata", any_object()),
                ("totp_enabled", boolean()),
                ("created_at", integer()),
                ("updated_at", integer()),
            ],
            &["id", "email"],
        ),
    );
    s.insert(
        "SignIn".into(),
        object(
            &[
                ("access_token", json!({"type": "string", "description": "a JWT; send as `Authorization: Bearer`"})),
                ("refresh_token", string()),
                ("expires_in", json!({"type": "integer", "description": "seconds"})),
                ("token_type", json!({"const": "bearer"})),
                ("user", schema_ref("User")),
            ],
            &["access_token", "refresh_token", "expires_in", "user"],
        ),
    );
    s.insert(
        "ApiKey".into(),
        object(
            &[
                ("id", string()),
                ("name", string()),
                ("key", json!({"type": "string", "description": "the key itself: only in the answer to its creation"})),
                ("prefix", string()),
                ("created_at", integer()),
                ("expires_at", nullable("integer")),
                ("last_used_at", nullable("integer")),
            ],
            &["id", "name"],
        ),
    );
    s.insert(
        "Record".into(),
        json!({
            "type": "object",
            "description": "A record: the system fields and the collection's own fields.",
            "properties": {
                "_id": {"type": "string", "readOnly": true, "description": "UUIDv7"},
                "_created_at": {"type": "integer", "readOnly": true, "description": "Unix milliseconds"},
                "_updated_at": {"type": "integer", "readOnly": true, "description": "Unix milliseconds"},
                "_owner_id": {"type": ["string", "null"], "readOnly": true, "description": "the creating user's id"},
                "_deleted_at": {"type": ["integer", "null"], "readOnly": true, "description": "set on soft-deleted records"},
            },
            "additionalProperties": true,
        }),
    );
    s.insert(
        "AccessRule".into(),
        json!({"oneOf": [
            {"enum": ["public", "authenticated", "owner", "disabled"]},
            object(&[("role", string())], &["role"]),
        ]}),
    );
    s.insert(
        "FieldRule".into(),
        object(
            &[
                (
                    "type",
                    json!({"enum": ["string", "number", "integer", "boolean", "object", "array", "text", "real", "json"]}),
                ),
                ("required", boolean()),
                ("min", number()),
                ("max", number()),
                ("min_length", integer()),
                ("max_length", integer()),
                ("pattern", string()),
                ("enum", array(json!({}))),
                ("unique", boolean()),
            ],
            &[],
        ),
    );
    s.insert(
        "Collection".into(),
        object(
            &[
                ("name", string()),
                ("rules", any_object()),
                ("field_rules", json!({"type": "object", "additionalProperties": schema_ref("FieldRule")})),
                ("created_at", integer()),
                ("updated_at", integer()),
                ("fields", json!({})),
            ],
            &["name"],
        ),
    );
    s.insert(
        "Column".into(),
        object(
            &[
                ("name", string()),
                ("type", json!({"enum": ["text", "integer", "real", "boolean", "json"]})),
                ("declared", string()),
                ("not_null", boolean()),
                ("primary_key", boolean()),
                ("system", boolean()),
            ],
            &["name", "type"],
        ),
    );
    s.insert(
        "Index".into(),
        object(
            &[("name", string()), ("columns", array(string())), ("unique", boolean()), ("primary", boolean())],
            &["name"],
        ),
    );
    s.insert(
        "Relation".into(),
        object(
            &[
                ("id", string()),
                ("collection", string()),
                ("field", string()),
                ("target", string()),
                ("many", boolean()),
                ("on_delete", json!({"enum": ["restrict", "cascade", "set_null"]})),
                ("created_at", integer()),
            ],
            &["id", "collection", "field", "target"],
        ),
    );
    s
}

/// The reusable parameters of both record surfaces.
pub fn parameters() -> Map<String, Json> {
    let free_form = |description: &str| {
        json!({
            "name": "filters", "in": "query", "style": "form", "explode": true,
            "schema": {"type": "object", "additionalProperties": {"type": "string"}},
            "description": description,
        })
    };
    let ops = "eq, neq, gt, gte, lt, lte, like, ilike, in, is, cs, cd, fts";
    let params = [
        ("limit", query("limit", json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 50}), "page size")),
        ("page", query("page", json!({"type": "integer", "minimum": 1}), "1-based page")),
        ("after", query("after", string(), "keyset cursor: the `next_cursor` of the previous page")),
        ("sort", query("sort", string(), "`field:asc|desc` or `-field`, comma-separated")),
        (
            "filter",
            query(
                "filter",
                string(),
                "`field:op:value`, comma-separated, ANDed; ops eq ne gt gte lt lte like ilike in nin contains startsWith is (`in` values separated by `|`)",
            ),
        ),
        ("fields", query("fields", string(), "fields to return, comma-separated")),
        ("expand", query("expand", string(), "relation fields to inline, comma-separated")),
        ("search", query("search", string(), "full-text search over the text fields")),
        ("include_deleted", query("include_deleted", boolean(), "show soft-deleted records (admin only)")),
        (
            "columnFilters",
            free_form(&format!("filters `column=op.value` or `column.op=value` (ops {ops}; `not.` negates)")),
        ),
        ("select", query("select", string(), "columns (and embedded relations) to return, comma-separated")),
        ("order", query("order", string(), "`column.asc|desc[.nullsfirst|nullslast]`, comma-separated")),
        ("tableLimit", query("limit", json!({"type": "integer", "minimum": 0}), "at most this many rows")),
        ("offset", query("offset", json!({"type": "integer", "minimum": 0}), "skip this many rows")),
        ("count", query("count", json!({"enum": ["exact"]}), "count the matching rows into `Content-Range`")),
        ("on_conflict", query("on_conflict", string(), "upsert: the unique columns that conflict, comma-separated")),
        ("columns", query("columns", string(), "insert only these columns of the body, comma-separated")),
        ("or", query("or", string(), "`(cond,cond,…)`: any of the conditions; nests with `and(…)`")),
        ("and", query("and", string(), "`(cond,cond,…)`: all of the conditions; nests with `or(…)`")),
        (
            "Range",
            header("Range", json!({"type": "string", "examples": ["0-9"]}), "rows `first-last` (0-based, inclusive)"),
        ),
        (
            "Prefer",
            header(
                "Prefer",
                json!({"type": "string", "examples": ["return=representation", "count=exact", "resolution=merge-duplicates"]}),
                "`return=minimal|representation|headers-only`, `count=exact`, `resolution=merge-duplicates|ignore-duplicates`; several comma-separated",
            ),
        ),
    ];
    params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
