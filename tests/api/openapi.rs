//! The OpenAPI document (generated from the live catalog, checked with an independent
//! validator) and the API explorer at `/docs`.

use std::io::Write;
use std::process::Command;
use std::sync::Once;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, TestServer};

/// Checks `doc` with `openapi-spec-validator` (PyPI). Without the validator this is skipped
/// with a loud notice, unless `CI` is set, where that is a failure.
fn validate(doc: &Value) {
    let installed = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        if std::env::var_os("CI").is_some() {
            panic!(
                "CI is set but openapi-spec-validator is not installed (python3 -m pip install openapi-spec-validator)"
            );
        }
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPING OpenAPI validation: openapi-spec-validator is not installed (python3 -m pip install openapi-spec-validator) ***\n"
            );
        });
        return;
    }
    let mut file = tempfile::Builder::new().suffix(".json").tempfile().expect("a temporary file");
    file.write_all(serde_json::to_string_pretty(doc).unwrap().as_bytes()).unwrap();
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(file.path())
        .output()
        .expect("python3 runs");
    // The validator quotes the whole document in its message: keep the start, which says what is wrong.
    let said: String = String::from_utf8_lossy(&out.stdout).chars().take(4000).collect();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn document(s: &TestServer, path: &str) -> Value {
    let resp = s.get(path).await;
    assert_eq!(resp.status, 200, "{path}: {}", resp.text);
    assert!(resp.header("content-type").unwrap_or("").starts_with("application/json"), "{path}");
    resp.body
}

async fn put_rules(s: &TestServer, collection: &str, rules: Value) {
    let path = format!("/api/v1/admin/collections/{collection}/rules");
    let resp = s.send(Method::PUT, &path, Some(ADMIN_SECRET), Some(rules)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
}

/// Every error answer of every operation is a shared response whose body is the `Error` schema.
fn assert_errors_use_the_error_schema(doc: &Value) {
    let responses = &doc["components"]["responses"];
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, answer) in op["responses"].as_object().unwrap() {
                if !status.starts_with('4') && !status.starts_with('5') {
                    continue;
                }
                let name = answer["$ref"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/components/responses/"))
                    .unwrap_or_else(|| panic!("{method} {path} {status}: not a shared error response"));
                assert_eq!(
                    responses[name]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} error answers");
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], json!(["error"]));
    assert_eq!(error["properties"]["field"]["type"], "string");
    assert_eq!(error["properties"]["index"]["type"], "integer");
}

both_backends! {
    async fn document_describes_the_live_catalog_and_validates(s) {
        let fields = json!({"title": "text", "views": "integer", "score": "real", "published": "boolean", "meta": "json"});
        let created = s.admin_post("/api/v1/admin/collections", json!({"name": "posts", "fields": fields})).await;
        assert_eq!(created.status, 201, "{}", created.text);
        put_rules(&s, "posts", json!({
            "title": {"required": true, "min_length": 3, "max_length": 80, "pattern": "^[A-Za-z ]+$"},
            "views": {"min": 0, "max": 1000},
            "status": {"type": "text", "enum": ["draft", "live"]},
        })).await;
        assert_eq!(s.admin_post("/api/v1/admin/collections", json!({"name": "authors", "fields": {"name": "text"}})).await.status, 201);
        let rel = s.admin_post("/api/v1/admin/relations", json!({"collection": "posts", "field": "author", "target": "authors"})).await;
        assert_eq!(rel.status, 201, "{}", rel.text);

        let doc = document(&s, "/api/v1/openapi.json").await;
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "Ferrobase");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(doc["servers"][0]["url"], "/");
        assert_eq!(document(&s, "/openapi.json").await, doc, "both paths answer the same document");

        // The collection's schema, from its columns and its field rules.
        let posts = &doc["components"]["schemas"]["posts"];
        let props = &posts["properties"];
        assert_eq!(props["_id"]["readOnly"], true);
        assert_eq!(props["_created_at"]["type"], "integer");
        assert_eq!(props["_created_at"]["readOnly"], true);
        assert_eq!(props["title"], json!({"type": "string", "minLength": 3, "maxLength": 80, "pattern": "^[A-Za-z ]+$"}));
        assert_eq!(props["views"], json!({"type": ["integer", "null"], "minimum": 0, "maximum": 1000}));
        assert_eq!(props["score"]["type"], json!(["number", "null"]));
        assert_eq!(props["published"]["type"], json!(["boolean", "null"]));
        assert!(props["meta"].get("type").is_none(), "json columns take any value: {}", props["meta"]);
        assert_eq!(props["status"]["enum"], json!(["draft", "live", null]));
        assert!(props["author"]["description"].as_str().unwrap().contains("authors"), "{}", props["author"]);
        let required = posts["required"].as_array().unwrap();
        assert!(required.contains(&json!("title")) && required.contains(&json!("_id")), "{required:?}");
        assert!(!required.contains(&json!("views")));
        assert!(doc["components"]["schemas"]["posts.patch"]["required"].is_null(), "updates require nothing");
        assert!(doc["components"]["schemas"]["authors"]["properties"]["name"].is_object());

        // Concrete paths of the collection and of its table, referencing the schema.
        let paths = &doc["paths"];
        for path in ["/api/v1/posts", "/api/v1/posts/{id}", "/api/v1/posts/{id}/restore", "/api/v1/posts/count",
                     "/api/v1/posts/aggregate", "/api/v1/posts/bulk", "/api/v1/posts/batch",
                     "/api/v1/tables/posts", "/api/v1/tables/posts/{id}", "/api/v1/tables/authors"] {
            assert!(paths[path].is_object(), "{path} is missing");
        }
        let create = &paths["/api/v1/posts"]["post"];
        assert_eq!(create["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/posts");
        assert_eq!(create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/posts");
        assert_eq!(paths["/api/v1/posts/{id}"]["patch"]["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/posts.patch");
        assert_eq!(
            paths["/api/v1/tables/posts"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"],
            "#/components/schemas/posts"
        );
        let filter_names: Vec<&str> = paths["/api/v1/tables/posts"]["get"]["parameters"].as_array().unwrap()
            .iter().filter_map(|p| p["name"].as_str()).collect();
        assert!(filter_names.contains(&"title") && filter_names.contains(&"views"), "one filter per column: {filter_names:?}");
        let list_params = serde_json::to_string(&paths["/api/v1/posts"]["get"]["parameters"]).unwrap();
        assert!(list_params.contains(r#""name":"title""#), "collections take column filters too: {list_params}");

        // The tables surface, generic paths.
        for (path, methods) in [
            ("/api/v1/tables/{table}", &["get", "head", "post", "patch", "delete"][..]),
            ("/api/v1/tables/{table}/{id}", &["get", "put", "patch", "delete"][..]),
        ] {
            for m in methods {
                assert!(paths[path][m].is_object(), "{m} {path} is missing");
            }
        }
        let read = &paths["/api/v1/tables/{table}"]["get"];
        let params = serde_json::to_string(&read["parameters"]).unwrap();
        for p in ["select", "order", "tableLimit", "offset", "count", "Range", "Prefer", "columnFilters"] {
            assert!(params.contains(&format!("#/components/parameters/{p}")), "{p} in {params}");
        }
        assert!(read["responses"]["200"]["headers"]["Content-Range"].is_object());
        assert!(read["responses"]["200"]["content"]["application/vnd.pgrst.object+json"].is_object());
        let insert = &paths["/api/v1/tables/{table}"]["post"]["responses"];
        assert!(insert["201"].is_object() && insert["204"].is_object());
        assert!(doc["components"]["parameters"]["Prefer"]["description"].as_str().unwrap().contains("resolution=merge-duplicates"));

        // The router and the document come from one route table: every route the server
        // serves is documented, and every documented operation (the catalog's own paths
        // included) reaches a handler, never the router's 404 or 405.
        let routes = ferrobase::http::routes();
        assert!(routes.len() > 60, "{} routes", routes.len());
        for (method, path) in &routes {
            assert!(paths[path.as_str()][*method].is_object(), "{method} {path} is served but not documented");
        }
        for (path, item) in paths.as_object().unwrap() {
            let concrete = path.replace("{id}", "x").replace("{name}", "x").replace("{column}", "x")
                .replace("{collection}", "x").replace("{table}", "x").replace("{asset}", "x");
            for method in item.as_object().unwrap().keys() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let body = (method != Method::GET && method != Method::HEAD).then(|| json!({}));
                let resp = s.send(method.clone(), &concrete, None, body).await;
                let fallback = resp.status == 405
                    || resp.status == 404 && resp.body["error"].as_str().is_some_and(|e| e.starts_with("no route for"));
                assert!(!fallback, "{method} {path} is documented but not routed: {} {}", resp.status, resp.text);
            }
        }
        // Security: schemes, and who needs what.
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearerAuth"], json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": schemes["bearerAuth"]["description"]}));
        assert_eq!(schemes["apiKey"]["type"], "apiKey");
        assert_eq!(schemes["apiKey"]["in"], "header");
        assert_eq!(schemes["apiKey"]["name"], "X-API-Key");
        assert_eq!(schemes["adminSecret"]["scheme"], "bearer");
        assert!(schemes["adminSecret"]["description"].as_str().unwrap().contains("admin secret"));
        assert_eq!(paths["/api/v1/admin/collections"]["get"]["security"], json!([{"adminSecret": []}]));
        assert_eq!(paths["/api/v1/auth/me"]["get"]["security"], json!([{"bearerAuth": []}, {"apiKey": []}]));
        assert_eq!(paths["/api/v1/posts"]["get"]["security"][0], json!({}), "collection reads may be anonymous");
        assert_eq!(paths["/api/v1/tables/posts"]["get"]["security"][0], json!({}));
        assert!(paths["/api/v1/auth/login"]["post"].get("security").is_none());

        assert_errors_use_the_error_schema(&doc);
        validate(&doc);

        // A new field shows at once.
        assert!(props.get("subtitle").is_none());
        put_rules(&s, "posts", json!({"title": {"required": true}, "subtitle": {"type": "text", "max_length": 10}})).await;
        let changed = document(&s, "/api/v1/openapi.json").await;
        assert_ne!(changed, doc);
        let props = &changed["components"]["schemas"]["posts"]["properties"];
        assert_eq!(props["subtitle"], json!({"type": ["string", "null"], "maxLength": 10}));
        assert_eq!(props["title"], json!({"type": "string", "minLength": 1}), "rules replaced: a required text is non-empty");
        validate(&changed);
    }

    async fn docs_page_serves_the_bundled_explorer(s) {
        let page = s.get("/docs").await;
        assert_eq!(page.status, 200);
        assert!(page.header("content-type").unwrap().starts_with("text/html"));
        for needle in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/api/v1/openapi.json", "SwaggerUIBundle("] {
            assert!(page.text.contains(needle), "{needle} not in the page");
        }
        assert!(!page.text.contains("https://"), "nothing is loaded from the network");

        for (asset, content_type) in [
            ("swagger-ui-bundle.js", "text/javascript"),
            ("swagger-ui.css", "text/css"),
            ("favicon-32x32.png", "image/png"),
        ] {
            let resp = s.client.get(s.url(&format!("/docs/{asset}"))).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{asset}");
            let headers = resp.headers().clone();
            assert!(headers["content-type"].to_str().unwrap().starts_with(content_type), "{asset}: {:?}", headers["content-type"]);
            assert!(headers["cache-control"].to_str().unwrap().contains("max-age=31536000"), "{asset}");
            assert!(resp.bytes().await.unwrap().len() > 500, "{asset} has its content");
        }
        let missing = s.get("/docs/nope.js").await;
        assert_eq!(missing.status, 404);
        assert!(missing.error().contains("nope.js"));
        for reserved in ["docs", "openapi"] {
            let resp = s.admin_post("/api/v1/admin/collections", json!({"name": reserved})).await;
            assert_eq!(resp.status, 400, "{reserved} is reserved: {}", resp.text);
        }
    }
}
