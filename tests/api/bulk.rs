//! Bulk create and batches: all or nothing, failures named by index, rules per operation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::TestServer;

async fn open_with_unique_slug(s: &TestServer) {
    s.open_collection("items").await;
    s.seed("items", &[json!({"slug": "seed", "n": 0})]).await;
    let index =
        s.admin_post("/api/v1/admin/collections/items/indexes", json!({"column": "slug", "unique": true})).await;
    assert_eq!(index.status, 201, "{}", index.text);
}

async fn count(s: &TestServer) -> i64 {
    s.get("/api/v1/items/count").await.body["count"].as_i64().unwrap()
}

both_backends! {
    async fn bulk_creates_all_or_none(s) {
        open_with_unique_slug(&s).await;
        let records: Vec<Value> = (1..=3).map(|n| json!({"slug": format!("b{n}"), "n": n, "extra": "new field"})).collect();
        let made = s.post("/api/v1/items/bulk", Value::Array(records)).await;
        assert_eq!(made.status, 201, "{}", made.text);
        assert_eq!(made.body["count"], 3);
        assert_eq!(made.body["items"][2]["slug"], "b3");
        assert_eq!(made.body["items"][0]["extra"], "new field");
        assert!(made.body["items"][1]["_id"].is_string());
        assert_eq!(count(&s).await, 4);

        // A duplicate at index 57 fails everything, and says where.
        let mut records: Vec<Value> = (0..100).map(|n| json!({"slug": format!("x{n}"), "n": n})).collect();
        records[57] = json!({"slug": "x3", "n": 57});
        let dup = s.post("/api/v1/items/bulk", Value::Array(records)).await;
        assert_eq!(dup.status, 409, "{}", dup.text);
        assert_eq!(dup.body["index"], 57);
        assert_eq!(count(&s).await, 4, "nothing was written");

        let mut records: Vec<Value> = (0..5).map(|n| json!({"slug": format!("t{n}"), "n": n})).collect();
        records[2] = json!({"slug": "t2", "n": "two"});
        let typed = s.post("/api/v1/items/bulk", Value::Array(records)).await;
        assert_eq!(typed.status, 400, "{}", typed.text);
        assert_eq!(typed.body["index"], 2);
        assert_eq!(typed.body["field"], "n");

        let too_many: Vec<Value> = (0..501).map(|n| json!({"n": n})).collect();
        for (body, status) in [
            (Value::Array(too_many), 400),
            (json!([]), 400),
            (json!({"n": 1}), 400),
            (json!([{"n": 1}, 5]), 400),
            (json!([{"_id": "x", "bad name": 1}]), 400),
        ] {
            let resp = s.post("/api/v1/items/bulk", body).await;
            assert_eq!(resp.status, status, "{}", resp.text);
        }
        assert_eq!(count(&s).await, 4);
        assert_eq!(s.get("/api/v1/items/bulk").await.status, 405);

        // Rules apply: the default create rule refuses anonymous callers.
        s.admin_post("/api/v1/admin/collections", json!({"name": "guarded"})).await;
        let refused = s.post("/api/v1/guarded/bulk", json!([{"n": 1}])).await;
        assert_eq!((refused.status, refused.body["index"].clone()), (401, json!(0)), "{}", refused.text);
        // A NUL character is refused before anything runs, naming its record and field.
        let nul = s.admin_post("/api/v1/guarded/bulk", json!([{"n": 1}, {"name": "a\u{0}b"}])).await;
        assert_eq!((nul.status, nul.body["index"].clone(), nul.body["field"].clone()), (400, json!(1), json!("name")), "{}", nul.text);
        // A batch names the operation the rule refuses, as for any other refusal.
        s.admin_patch("/api/v1/admin/collections/guarded", json!({"rules": {"update": "public", "read": "public"}})).await;
        let id = s.seed("guarded", &[json!({"n": 1})]).await[0]["_id"].as_str().unwrap().to_owned();
        let batch = s.post("/api/v1/guarded/batch", json!({"operations": [
            {"op": "update", "id": id, "data": {"n": 2}},
            {"op": "create", "data": {"n": 3}},
        ]})).await;
        assert_eq!((batch.status, batch.body["index"].clone()), (401, json!(1)), "{}", batch.text);
        assert_eq!(s.get(&format!("/api/v1/guarded/{id}")).await.body["n"], 1, "nothing was written");
        // A collection that does not exist yet: the rule it would have refuses the same way.
        let missing = s.post("/api/v1/unmade/batch", json!({"operations": [{"op": "create", "data": {"n": 3}}]})).await;
        assert_eq!((missing.status, missing.body["index"].clone()), (401, json!(0)), "{}", missing.text);
        assert_eq!(s.admin_get("/api/v1/admin/collections/unmade").await.status, 404);
    }

    async fn batch_runs_in_one_transaction(s) {
        open_with_unique_slug(&s).await;
        let seeded = s.seed("items", &[json!({"slug": "a", "n": 1}), json!({"slug": "b", "n": 2})]).await;
        let (a, b) = (seeded[0]["_id"].as_str().unwrap(), seeded[1]["_id"].as_str().unwrap());
        let ops = json!({"operations": [
            {"op": "create", "data": {"slug": "c", "n": 3}},
            {"op": "update", "id": a, "data": {"n": 10}},
            {"op": "delete", "id": b},
        ]});
        let done = s.post("/api/v1/items/batch", ops).await;
        assert_eq!(done.status, 200, "{}", done.text);
        assert_eq!(done.body["results"][0]["slug"], "c");
        assert_eq!(done.body["results"][1]["n"], 10);
        assert_eq!(done.body["results"][2], json!({"_id": b, "deleted": true}));
        assert_eq!(s.get(&format!("/api/v1/items/{a}")).await.body["n"], 10);
        assert_eq!(s.get(&format!("/api/v1/items/{b}")).await.status, 404);
        let before = count(&s).await;

        // The 57th operation (index 56) updates a record that does not exist: nothing is written.
        let mut ops: Vec<Value> = (0..56).map(|n| json!({"op": "create", "data": {"slug": format!("z{n}")}})).collect();
        ops.push(json!({"op": "update", "id": "01900000-0000-7000-8000-000000000000", "data": {"n": 1}}));
        ops.push(json!({"op": "update", "id": a, "data": {"n": 99}}));
        let failed = s.post("/api/v1/items/batch", json!({"operations": ops})).await;
        assert_eq!(failed.status, 404, "{}", failed.text);
        assert_eq!(failed.body["index"], 56);
        assert_eq!(count(&s).await, before, "the 56 creates were rolled back");
        assert_eq!(s.get(&format!("/api/v1/items/{a}")).await.body["n"], 10);

        // A constraint violation inside the batch names its operation too.
        let dup = s.post("/api/v1/items/batch", json!({"operations": [
            {"op": "create", "data": {"slug": "fresh"}},
            {"op": "create", "data": {"slug": "a"}},
        ]})).await;
        assert_eq!(dup.status, 409, "{}", dup.text);
        assert_eq!(dup.body["index"], 1);
        assert_eq!(count(&s).await, before);

        let too_many: Vec<Value> = (0..101).map(|_| json!({"op": "create", "data": {}})).collect();
        for (body, status, index) in [
            (json!({"operations": too_many}), 400, None),
            (json!({"operations": []}), 400, None),
            (json!({"ops": []}), 400, None),
            (json!({"operations": [{"op": "create", "data": {}}, {"op": "upsert", "data": {}}]}), 400, Some(1)),
            (json!({"operations": [{"op": "update", "data": {"n": 1}}]}), 400, Some(0)),
            (json!({"operations": [{"op": "create"}]}), 400, Some(0)),
            (json!({"operations": [{"op": "create", "data": {}}, {"op": "update", "id": a, "data": {"n": "ten"}}]}), 400, Some(1)),
        ] {
            let resp = s.post("/api/v1/items/batch", body.clone()).await;
            assert_eq!(resp.status, status, "{body}: {}", resp.text);
            if let Some(index) = index {
                assert_eq!(resp.body["index"], index, "{}", resp.text);
            }
        }
        assert_eq!(count(&s).await, before);
    }

    async fn batch_applies_rules_per_operation(s) {
        s.admin_post("/api/v1/admin/collections", json!({"name": "notes"})).await;
        let a = s.register("a@example.com", "password1").await["access_token"].as_str().unwrap().to_owned();
        let b = s.register("b@example.com", "password1").await["access_token"].as_str().unwrap().to_owned();
        let note = s.as_user(Method::POST, "/api/v1/notes", &a, Some(json!({"text": "a's"}))).await;
        let id = note.body["_id"].as_str().unwrap();
        let ops = json!({"operations": [
            {"op": "create", "data": {"text": "b's"}},
            {"op": "update", "id": id, "data": {"text": "hacked"}},
        ]});
        let refused = s.as_user(Method::POST, "/api/v1/notes/batch", &b, Some(ops.clone())).await;
        assert_eq!(refused.status, 404, "{}", refused.text);
        assert_eq!(refused.body["index"], 1);
        assert_eq!(s.get("/api/v1/notes/count").await.body["count"], 1, "b's create was rolled back");
        assert_eq!(s.get(&format!("/api/v1/notes/{id}")).await.body["text"], "a's");
        assert_eq!(s.post("/api/v1/notes/batch", ops).await.status, 401);
        let own = s.as_user(Method::POST, "/api/v1/notes/batch", &a, Some(json!({"operations": [{"op": "update", "id": id, "data": {"text": "edited"}}]}))).await;
        assert_eq!(own.status, 200, "{}", own.text);
        assert_eq!(s.get(&format!("/api/v1/notes/{id}")).await.body["text"], "edited");
    }
}
