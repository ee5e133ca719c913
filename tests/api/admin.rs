//! The admin API: collections, schema, fields, admin records, indexes, health.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::ADMIN_SECRET;

fn names(list: &Value) -> Vec<String> {
    list["collections"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

fn columns(schema: &Value) -> Vec<String> {
    schema["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

both_backends! {
    async fn admin_endpoints_need_the_admin_secret(s) {
        for (method, path) in [
            (Method::GET, "/api/v1/admin/collections"),
            (Method::POST, "/api/v1/admin/collections"),
            (Method::GET, "/api/v1/admin/collections/x/schema"),
            (Method::DELETE, "/api/v1/admin/collections/x"),
            (Method::GET, "/api/v1/admin/collections/x/records"),
            (Method::GET, "/api/v1/admin/collections/x/indexes"),
        ] {
            let anon = s.send(method.clone(), path, None, Some(json!({"name": "x"}))).await;
            assert_eq!(anon.status, 401, "{method} {path}");
            assert!(!anon.error().is_empty());
            let wrong = s.send(method.clone(), path, Some("wrong"), Some(json!({"name": "x"}))).await;
            assert_eq!(wrong.status, 401, "{method} {path}");
        }
        assert!(names(&s.admin_get("/api/v1/admin/collections").await.body).is_empty());
        let health = s.get("/api/v1/admin/health").await;
        assert_eq!(health.status, 200);
        assert_eq!(health.body["status"], "ok");
        let expected = match s.backend { crate::harness::Backend::Sqlite => "sqlite", crate::harness::Backend::Postgres => "postgres" };
        assert_eq!(health.body["database"], expected);
    }

    async fn collections_lifecycle(s) {
        let created = s.admin_post("/api/v1/admin/collections", json!({
            "name": "posts",
            "rules": {"read": "public", "create": {"role": "editor"}},
            "fields": {"title": "text", "views": "integer", "score": "real", "live": "boolean", "data": "json"}
        })).await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.body["name"], "posts");
        assert_eq!(created.body["rules"]["create"], json!({"role": "editor"}));
        assert_eq!(created.body["rules"]["update"], "owner");
        let dup = s.admin_post("/api/v1/admin/collections", json!({"name": "posts"})).await;
        assert_eq!(dup.status, 409, "{}", dup.text);
        assert_eq!(names(&s.admin_get("/api/v1/admin/collections").await.body), vec!["posts"]);
        assert_eq!(s.admin_get("/api/v1/admin/collections/posts").await.body["name"], "posts");

        let schema = s.admin_get("/api/v1/admin/collections/posts/schema").await;
        assert_eq!(schema.status, 200);
        assert_eq!(columns(&schema.body), vec!["_id", "_created_at", "_updated_at", "_owner_id", "_deleted_at", "title", "views", "score", "live", "data"]);
        let views = schema.body["columns"].as_array().unwrap().iter().find(|c| c["name"] == "views").unwrap();
        assert_eq!(views["type"], "integer");
        assert_eq!(views["system"], false);

        let patched = s.admin_patch("/api/v1/admin/collections/posts", json!({"rules": {"delete": "disabled"}})).await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        assert_eq!(patched.body["rules"]["delete"], "disabled");
        assert_eq!(patched.body["rules"]["create"], json!({"role": "editor"}), "rules not given stay");
        for bad in [json!({"rules": {"read": "everyone"}}), json!({"rules": {"reed": "public"}}), json!({"rules": {"read": {"role": ""}}}), json!({"name": "x"})] {
            let resp = s.admin_patch("/api/v1/admin/collections/posts", bad.clone()).await;
            assert_eq!(resp.status, 400, "{bad}: {}", resp.text);
        }
        assert_eq!(s.admin_get("/api/v1/admin/collections/posts").await.body["rules"]["read"], "public");
        assert_eq!(s.admin_patch("/api/v1/admin/collections/nope", json!({"rules": {}})).await.status, 404);

        // Drop a field: gone from the schema, other data kept.
        s.seed("posts", &[json!({"title": "t", "views": 2})]).await;
        let counted = s.admin_get("/api/v1/tables/posts?views=eq.2&count=exact&limit=1").await;
        assert_eq!(counted.header("content-range"), Some("0-0/1"), "{}", counted.text);
        let dropped = s.admin_delete("/api/v1/admin/collections/posts/schema/views").await;
        assert_eq!(dropped.status, 200, "{}", dropped.text);
        assert!(!columns(&dropped.body).contains(&"views".to_owned()));
        let rows = s.admin_get("/api/v1/admin/collections/posts/records").await;
        assert_eq!(rows.body["items"][0]["title"], "t");
        assert!(rows.body["items"][0].get("views").is_none());
        assert_eq!(s.admin_delete("/api/v1/admin/collections/posts/schema/_id").await.status, 400);
        assert_eq!(s.admin_delete("/api/v1/admin/collections/posts/schema/nope").await.status, 404);
        // Made again by the field rules, with no record written: null in every record, and
        // no count kept from before the drop answers for it.
        let readded = s.send(Method::PUT, "/api/v1/admin/collections/posts/rules", Some(crate::harness::ADMIN_SECRET),
            Some(json!({"views": {"type": "number"}}))).await;
        assert_eq!(readded.status, 200, "{}", readded.text);
        let counted = s.admin_get("/api/v1/tables/posts?views=eq.2&count=exact&limit=1").await;
        assert_eq!(counted.header("content-range"), Some("*/0"), "{}", counted.text);

        let gone = s.admin_delete("/api/v1/admin/collections/posts").await;
        assert_eq!(gone.status, 200);
        assert_eq!(s.get("/api/v1/posts").await.status, 404);
        assert_eq!(s.admin_delete("/api/v1/admin/collections/posts").await.status, 404);
        assert!(names(&s.admin_get("/api/v1/admin/collections").await.body).is_empty());
    }

    async fn bad_collection_definitions_are_refused(s) {
        for body in [
            json!({"name": "../x"}),
            json!({"name": "a;drop table"}),
            json!({"name": "_fb_users"}),
            json!({"name": "auth"}),
            json!({"name": "admin"}),
            json!({"name": "storage"}),
            json!({"name": "tables"}),
            json!({"name": "Posts"}),
            json!({"name": ""}),
            json!({"name": "x".repeat(64)}),
            json!({"name": 5}),
            json!({}),
            json!({"name": "ok", "fields": {"a": "varchar"}}),
            json!({"name": "ok", "fields": {"_id": "text"}}),
            json!({"name": "ok", "fields": {"bad name": "text"}}),
            json!({"name": "ok", "fields": {"a": "text", "A": "text"}}),
            json!({"name": "ok", "rules": {"read": "nobody"}}),
            json!({"name": "ok", "extra": true}),
        ] {
            let resp = s.admin_post("/api/v1/admin/collections", body.clone()).await;
            assert_eq!(resp.status, 400, "{body}: {}", resp.text);
            assert!(!resp.error().is_empty());
        }
        assert!(names(&s.admin_get("/api/v1/admin/collections").await.body).is_empty(), "nothing was created");
    }

    async fn admin_records_see_deleted_and_delete_for_real(s) {
        s.open_collection("posts").await;
        let made = s.admin_post("/api/v1/admin/collections/posts/records", json!({"title": "a"})).await;
        assert_eq!(made.status, 201, "{}", made.text);
        let id = made.body["_id"].as_str().unwrap().to_owned();
        s.seed("posts", &[json!({"title": "b"})]).await;
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/posts/{id}"), None, None).await.status, 200);

        let list = s.admin_get("/api/v1/admin/collections/posts/records").await;
        assert_eq!(list.status, 200);
        assert_eq!(list.body["total"], 2, "admin list includes deleted records");
        let live = s.admin_get("/api/v1/admin/collections/posts/records?include_deleted=false").await;
        assert_eq!(live.body["total"], 1);
        let one = s.admin_get(&format!("/api/v1/admin/collections/posts/records/{id}")).await;
        assert_eq!(one.status, 200);
        assert!(one.body["_deleted_at"].as_i64().is_some());
        let patched = s.admin_patch(&format!("/api/v1/admin/collections/posts/records/{id}"), json!({"title": "edited"})).await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        assert_eq!(patched.body["title"], "edited");

        let hard = s.admin_delete(&format!("/api/v1/admin/collections/posts/records/{id}")).await;
        assert_eq!(hard.status, 200);
        assert_eq!(s.admin_get(&format!("/api/v1/admin/collections/posts/records/{id}")).await.status, 404);
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/collections/posts/records/{id}")).await.status, 404);
        assert_eq!(s.admin_get("/api/v1/admin/collections/posts/records").await.body["total"], 1);
        assert_eq!(s.admin_get("/api/v1/admin/collections/nope/records").await.status, 404);
    }

    async fn indexes(s) {
        s.open_collection("posts").await;
        s.seed("posts", &[json!({"slug": "a", "score": 1, "cat": "x"}), json!({"slug": "b", "score": 1, "cat": "y"}), json!({"slug": "c", "score": 1, "cat": "z"})]).await;
        let made = s.admin_post("/api/v1/admin/collections/posts/indexes", json!({"column": "slug", "unique": true})).await;
        assert_eq!(made.status, 201, "{}", made.text);
        assert_eq!(made.body["columns"], json!(["slug"]));
        assert_eq!(made.body["unique"], true);
        let multi = s.admin_post("/api/v1/admin/collections/posts/indexes", json!({"columns": ["cat", "score"]})).await;
        assert_eq!(multi.status, 201, "{}", multi.text);

        let list = s.admin_get("/api/v1/admin/collections/posts/indexes").await;
        let listed: Vec<Value> = list.body["indexes"].as_array().unwrap().iter().filter(|i| i["primary"] == false).cloned().collect();
        assert_eq!(listed.len(), 2, "{}", list.text);

        // The unique index refuses a duplicate with 409 and nothing is written.
        let dup = s.post("/api/v1/posts", json!({"slug": "a"})).await;
        assert_eq!(dup.status, 409, "{}", dup.text);
        assert!(dup.error().contains("slug"), "{}", dup.text);
        assert_eq!(s.get("/api/v1/posts/count").await.body["count"], 3);
        // A soft-deleted record's value may be used again.
        let first = s.get("/api/v1/posts?slug=eq.a").await.body["items"][0]["_id"].as_str().unwrap().to_owned();
        s.send(Method::DELETE, &format!("/api/v1/posts/{first}"), None, None).await;
        assert_eq!(s.post("/api/v1/posts", json!({"slug": "a"})).await.status, 201);

        for (body, status) in [
            (json!({"column": "slug"}), 409),
            (json!({"column": "missing"}), 400),
            (json!({"column": "score", "unique": true}), 409),
            (json!({"columns": []}), 400),
            (json!({"columns": ["cat", "cat"]}), 400),
            (json!({"column": "a", "columns": ["b"]}), 400),
            (json!({"col": "a"}), 400),
        ] {
            let resp = s.admin_post("/api/v1/admin/collections/posts/indexes", body.clone()).await;
            assert_eq!(resp.status, status, "{body}: {}", resp.text);
        }
        assert_eq!(s.admin_post("/api/v1/admin/collections/nope/indexes", json!({"column": "a"})).await.status, 404);

        assert_eq!(s.admin_delete("/api/v1/admin/collections/posts/indexes/slug").await.status, 200);
        assert_eq!(s.post("/api/v1/posts", json!({"slug": "b"})).await.status, 201, "no longer unique");
        assert_eq!(s.admin_delete("/api/v1/admin/collections/posts/indexes/slug").await.status, 404);
        let name = multi.body["name"].as_str().unwrap();
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/collections/posts/indexes/{name}")).await.status, 200);
        assert_eq!(s.admin_delete("/api/v1/admin/collections/posts/indexes/_id").await.status, 404);
        // Dropping an indexed field drops its index too.
        s.admin_post("/api/v1/admin/collections/posts/indexes", json!({"column": "cat"})).await;
        assert_eq!(s.admin_delete("/api/v1/admin/collections/posts/schema/cat").await.status, 200);
        let left: Vec<Value> = s.admin_get("/api/v1/admin/collections/posts/indexes").await.body["indexes"].as_array().unwrap().iter().filter(|i| i["primary"] == false).cloned().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    async fn index_names_never_collide(s) {
        let shown = |list: &crate::harness::Resp| -> Vec<Value> {
            let mut found: Vec<Value> = list.body["indexes"].as_array().unwrap().iter().filter(|i| i["primary"] == false)
                .map(|i| json!([i["columns"], i["unique"]])).collect();
            found.sort_by_key(|v| v.to_string());
            found
        };
        let made = s.admin_post("/api/v1/admin/collections", json!({"name": "mc", "fields": {"x": "text", "y": "text", "x_y": "text"}})).await;
        assert_eq!(made.status, 201, "{}", made.text);
        assert_eq!(s.admin_post("/api/v1/admin/collections/mc/indexes", json!({"columns": ["x", "y"]})).await.status, 201);
        // An index on the one field `x_y` is another index than the one on (x, y).
        let single = s.admin_post("/api/v1/admin/collections/mc/indexes", json!({"column": "x_y"})).await;
        assert_eq!(single.status, 201, "{}", single.text);
        // A unique rule on `x_y` replaces the plain index on `x_y` alone, never the one on (x, y).
        let rules = s.send(Method::PUT, "/api/v1/admin/collections/mc/rules", Some(ADMIN_SECRET), Some(json!({"x_y": {"unique": true}}))).await;
        assert_eq!(rules.status, 200, "{}", rules.text);
        let list = s.admin_get("/api/v1/admin/collections/mc/indexes").await;
        assert_eq!(shown(&list), vec![json!([["x", "y"], false]), json!([["x_y"], true])], "{}", list.text);

        // Collection `a_b` with field `c`, collection `a` with field `b_c`: two indexes.
        s.admin_post("/api/v1/admin/collections", json!({"name": "a_b", "fields": {"c": "text"}})).await;
        s.admin_post("/api/v1/admin/collections", json!({"name": "a", "fields": {"b_c": "text"}})).await;
        let first = s.admin_post("/api/v1/admin/collections/a_b/indexes", json!({"column": "c"})).await;
        assert_eq!(first.status, 201, "{}", first.text);
        let second = s.admin_post("/api/v1/admin/collections/a/indexes", json!({"column": "b_c"})).await;
        assert_eq!(second.status, 201, "{}", second.text);
        assert_ne!(first.body["name"], second.body["name"]);
        // No collection can take an index's name.
        let name = first.body["name"].as_str().unwrap();
        let clash = s.admin_post("/api/v1/admin/collections", json!({"name": name})).await;
        assert_eq!(clash.status, 400, "{name}: {}", clash.text);
    }

    async fn a_rule_cannot_add_a_field_that_differs_from_one_only_in_case(s) {
        s.admin_post("/api/v1/admin/collections", json!({"name": "cc", "fields": {"Ab": "text"}})).await;
        for rules in [json!({"ab": {"type": "integer"}}), json!({"xy": {"type": "text"}, "XY": {"type": "text"}})] {
            let resp = s.send(Method::PUT, "/api/v1/admin/collections/cc/rules", Some(ADMIN_SECRET), Some(rules.clone())).await;
            assert_eq!(resp.status, 400, "{rules}: {}", resp.text);
        }
        let schema = s.admin_get("/api/v1/admin/collections/cc").await;
        assert!(!schema.text.contains("\"ab\"") && !schema.text.contains("\"xy\""), "nothing was added: {}", schema.text);
    }
}
