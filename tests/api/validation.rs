//! Field validation rules: set through the admin API, enforced on create, update, bulk and
//! batch, reported against existing data.

use reqwest::Method;
use serde_json::json;

use crate::both_backends;

both_backends! {
    async fn rules_are_enforced_on_every_write_path(s) {
        s.open_collection("posts").await;
        s.seed("posts", &[json!({"title": "ab", "score": 5, "status": "draft"}), json!({"title": "fine", "score": 50, "status": "live"})]).await;
        let set = s.send(Method::PUT, "/api/v1/admin/collections/posts/rules", Some(crate::harness::ADMIN_SECRET), Some(json!({
            "title": {"type": "text", "required": true, "min_length": 3, "max_length": 20, "pattern": "^[a-z ]+$"},
            "score": {"min": 0, "max": 10},
            "status": {"enum": ["draft", "live"]},
            "slug": {"type": "text", "unique": true},
        }))).await;
        assert_eq!(set.status, 200, "{}", set.text);
        assert_eq!(set.body["checked"], 2);
        assert_eq!(set.body["violations"], json!({"title": 1, "score": 1}), "existing data that breaks the rules is reported");
        assert_eq!(s.admin_get("/api/v1/admin/collections/posts").await.body["field_rules"]["score"]["max"], 10.0);

        let ok = s.post("/api/v1/posts", json!({"title": "hello", "score": 3, "status": "live", "slug": "hello"})).await;
        assert_eq!(ok.status, 201, "{}", ok.text);
        for (body, field) in [
            (json!({"score": 1}), "title"),
            (json!({"title": ""}), "title"),
            (json!({"title": "ab"}), "title"),
            (json!({"title": "Hello"}), "title"),
            (json!({"title": "hello", "score": 11}), "score"),
            (json!({"title": "hello", "status": "gone"}), "status"),
        ] {
            let resp = s.post("/api/v1/posts", body.clone()).await;
            assert_eq!(resp.status, 400, "{body}: {}", resp.text);
            assert_eq!(resp.body["field"], field, "{body}");
            // The tables surface names the constraint a rule stands for.
            let through_tables = s.post("/api/v1/tables/posts", body.clone()).await;
            let code = if body.get("title").is_none() { "23502" } else { "23514" };
            assert_eq!((through_tables.status, through_tables.body["code"].as_str()), (400, Some(code)), "{body}: {}", through_tables.text);
        }
        assert_eq!(s.post("/api/v1/posts", json!({"title": "other", "slug": "hello"})).await.status, 409, "unique");

        let id = ok.body["_id"].as_str().unwrap();
        let path = format!("/api/v1/posts/{id}");
        assert_eq!(s.send(Method::PATCH, &path, None, Some(json!({"score": 4}))).await.status, 200, "updates check only what they change");
        assert_eq!(s.send(Method::PATCH, &path, None, Some(json!({"title": null}))).await.status, 400);
        assert_eq!(s.send(Method::PATCH, &path, None, Some(json!({"score": -1}))).await.status, 400);
        assert_eq!(s.get(&path).await.body["score"], 4);
        // A replacement is a whole record: a required field left out is refused, as on create.
        let table_path = format!("/api/v1/tables/posts/{id}");
        for body in [json!({}), json!({"score": 2}), json!({"title": null})] {
            let resp = s.send(Method::PUT, &table_path, None, Some(body.clone())).await;
            assert_eq!((resp.status, resp.body["field"].clone()), (400, json!("title")), "{body}: {}", resp.text);
        }
        assert_eq!(s.get(&path).await.body["title"], "hello");
        let replaced = s.send(Method::PUT, &table_path, None, Some(json!({"title": "new title", "score": 2}))).await;
        assert_eq!(replaced.status, 200, "{}", replaced.text);

        let bulk = s.post("/api/v1/posts/bulk", json!([{"title": "one"}, {"title": "x"}])).await;
        assert_eq!(bulk.status, 400, "{}", bulk.text);
        assert_eq!((bulk.body["index"].clone(), bulk.body["field"].clone()), (json!(1), json!("title")));
        let batch = s.post("/api/v1/posts/batch", json!({"operations": [
            {"op": "create", "data": {"title": "fine too"}},
            {"op": "update", "id": id, "data": {"status": "archived"}},
        ]})).await;
        assert_eq!(batch.status, 400, "{}", batch.text);
        assert_eq!(batch.body["index"], 1);
        assert_eq!(s.get("/api/v1/posts/count").await.body["count"], 3, "nothing written by the refused bulk and batch");
    }

    async fn large_texts_are_checked_by_patterns_like_small_ones(s) {
        // Past 64 KiB of text under patterns, the rules are checked off the request's task;
        // the answers are the same, in the same order as for small texts.
        s.open_collection("notes").await;
        let set = s.send(Method::PUT, "/api/v1/admin/collections/notes/rules", Some(crate::harness::ADMIN_SECRET), Some(json!({
            "body": {"type": "text", "pattern": "^[a-z]+$"},
            "n": {"type": "number", "max": 10},
        }))).await;
        assert_eq!(set.status, 200, "{}", set.text);
        let good = "a".repeat(200_000);
        let bad = format!("{}X", "a".repeat(200_000));
        let created = s.post("/api/v1/notes", json!({"body": good, "n": 1})).await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.body["body"].as_str().map(str::len), Some(200_000));
        let refused = s.post("/api/v1/notes", json!({"body": bad})).await;
        assert_eq!((refused.status, refused.body["field"].clone()), (400, json!("body")), "{}", refused.text);
        let refused = s.post("/api/v1/notes", json!({"body": good, "n": 11})).await;
        assert_eq!((refused.status, refused.body["field"].clone()), (400, json!("n")), "{}", refused.text);
        // A bulk names the record at fault.
        let bulk = s.post("/api/v1/notes/bulk", json!([{"body": good}, {"body": bad}])).await;
        assert_eq!((bulk.status, bulk.body["index"].clone()), (400, json!(1)), "{}", bulk.text);
        // An update of a record that does not exist is a 404 before its fields are judged.
        let missing = s.send(Method::PATCH, "/api/v1/notes/00000000-0000-0000-0000-000000000000", None, Some(json!({"body": bad}))).await;
        assert_eq!(missing.status, 404, "{}", missing.text);
        let id = created.body["_id"].as_str().unwrap();
        let refused = s.send(Method::PATCH, &format!("/api/v1/notes/{id}"), None, Some(json!({"body": bad}))).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert_eq!(s.get("/api/v1/notes/count").await.body["count"], 1, "nothing refused was written");
    }

    async fn a_refused_rules_change_adds_no_field(s) {
        s.open_collection("items").await;
        s.seed("items", &[json!({"sku": "a", "dq": 7}), json!({"sku": "b", "dq": 7})]).await;
        let rules = json!({"brandnew": {"type": "string"}, "dq": {"unique": true}});
        let resp = s.send(Method::PUT, "/api/v1/admin/collections/items/rules", Some(crate::harness::ADMIN_SECRET), Some(rules)).await;
        assert_eq!(resp.status, 409, "{}", resp.text);
        assert!(resp.error().contains("dq"), "{}", resp.text);
        let collection = s.admin_get("/api/v1/admin/collections/items").await;
        assert_eq!(collection.body["field_rules"], json!({}));
        assert!(!collection.text.contains("brandnew"), "{}", collection.text);
        let indexes = s.admin_get("/api/v1/admin/collections/items/indexes").await;
        assert!(!indexes.text.contains("dq"), "{}", indexes.text);
        // Once the duplicate is gone the same change is taken whole.
        let id = s.get("/api/v1/items?filter=sku:eq:b").await.body["items"][0]["_id"].as_str().unwrap().to_owned();
        assert_eq!(s.send(Method::PATCH, &format!("/api/v1/items/{id}"), None, Some(json!({"dq": 8}))).await.status, 200);
        let rules = json!({"brandnew": {"type": "string"}, "dq": {"unique": true}});
        let resp = s.send(Method::PUT, "/api/v1/admin/collections/items/rules", Some(crate::harness::ADMIN_SECRET), Some(rules)).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(s.post("/api/v1/items", json!({"dq": 8})).await.status, 409);
        assert_eq!(s.post("/api/v1/items", json!({"brandnew": "x", "dq": 9})).await.status, 201);
    }

    async fn a_dropped_field_takes_its_rules_with_it(s) {
        s.open_collection("notes").await;
        s.seed("notes", &[json!({"t": "hello", "n": 1})]).await;
        let rules = json!({"t": {"required": true, "min_length": 2}, "n": {"min": 0}});
        let resp = s.send(Method::PUT, "/api/v1/admin/collections/notes/rules", Some(crate::harness::ADMIN_SECRET), Some(rules)).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(s.admin_delete("/api/v1/admin/collections/notes/schema/t").await.status, 200);
        assert_eq!(s.admin_get("/api/v1/admin/collections/notes").await.body["field_rules"], json!({"n": {"min": 0.0}}));
        // A write without it is taken; a new field of the same name starts without rules.
        assert_eq!(s.post("/api/v1/notes", json!({"n": 2})).await.status, 201);
        assert_eq!(s.post("/api/v1/tables/notes", json!({"n": 3})).await.status, 201);
        assert_eq!(s.post("/api/v1/notes", json!({"t": "x", "n": 4})).await.status, 201);
        assert_eq!(s.post("/api/v1/notes", json!({"n": -1})).await.status, 400, "the other field keeps its rules");
    }

    async fn bad_rule_definitions_change_nothing(s) {
        s.open_collection("posts").await;
        s.seed("posts", &[json!({"title": "a", "n": 1})]).await;
        for body in [
            json!({"title": {"pattern": "(unclosed"}}),
            json!({"title": {"min_length": 5, "max_length": 2}}),
            json!({"n": {"min": 3, "max": 1}}),
            json!({"missing": {"required": true}}),
            json!({"n": {"type": "text"}}),
            json!({"title": {"required": "yes"}}),
            json!({"title": {"requird": true}}),
            json!({"new": {"type": "varchar"}}),
            json!({"bad name": {"type": "text"}}),
            json!({"_id": {"required": true}}),
            json!({"_owner_id": {"pattern": "^x$"}}),
            json!({"title": {"enum": []}}),
            // Constraints the field's type cannot take.
            json!({"n": {"pattern": "^1"}}),
            json!({"n": {"min_length": 2}}),
            json!({"n": {"enum": ["a", "b"]}}),
            json!({"title": {"min": 1}}),
            json!({"fresh": {"type": "boolean", "max_length": 3}}),
            json!([1]),
        ] {
            let resp = s.send(Method::PUT, "/api/v1/admin/collections/posts/rules", Some(crate::harness::ADMIN_SECRET), Some(body.clone())).await;
            assert_eq!(resp.status, 400, "{body}: {}", resp.text);
            assert!(!resp.error().is_empty());
        }
        let invalid_regex = s.send(Method::PUT, "/api/v1/admin/collections/posts/rules", Some(crate::harness::ADMIN_SECRET), Some(json!({"title": {"pattern": "["}}))).await;
        assert_eq!(invalid_regex.body["field"], "title");
        let collection = s.admin_get("/api/v1/admin/collections/posts").await;
        assert_eq!(collection.body["field_rules"], json!({}));
        assert!(!collection.text.contains("fresh"), "no field was added: {}", collection.text);
        assert_eq!(s.post("/api/v1/posts", json!({"title": ""})).await.status, 201, "no rule took effect");
        assert_eq!(s.send(Method::PUT, "/api/v1/admin/collections/nope/rules", Some(crate::harness::ADMIN_SECRET), Some(json!({}))).await.status, 404);
        assert_eq!(s.send(Method::PUT, "/api/v1/admin/collections/posts/rules", None, Some(json!({}))).await.status, 401);
    }
}
