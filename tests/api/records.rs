//! The collections surface: record shape, create, get, update, soft delete, restore, rules.

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::harness::ADMIN_SECRET;

both_backends! {
    async fn a_collection_changed_behind_the_servers_back_is_read_again(s) {
        s.open_collection("posts").await;
        s.seed("posts", &[json!({"title": "a", "views": 1})]).await;
        assert_eq!(s.get("/api/v1/posts").await.body["total"], 1);
        s.exec_sql("ALTER TABLE posts DROP COLUMN views").await;
        // The request that meets the change may be refused (try again); the next one is
        // planned on the table as it now is, not refused until the periodic re-read.
        let met = s.get("/api/v1/posts").await;
        assert!(matches!(met.status, 200 | 409), "{} {}", met.status, met.text);
        let next = s.get("/api/v1/posts").await;
        assert_eq!(next.status, 200, "{}", next.text);
        assert_eq!(next.body["items"][0]["title"], "a");
        assert!(next.body["items"][0].get("views").is_none(), "{}", next.text);
        let met = s.post("/api/v1/posts", json!({"title": "b"})).await;
        assert!(matches!(met.status, 201 | 409), "{} {}", met.status, met.text);
        s.exec_sql("DROP TABLE posts").await;
        let met = s.get("/api/v1/posts/count").await;
        assert!(matches!(met.status, 404 | 409), "{} {}", met.status, met.text);
        assert_eq!(s.get("/api/v1/posts/count").await.status, 404);
        // The name is free again: the metadata the dropped table left behind does not keep it.
        let again = s.admin_post("/api/v1/posts", json!({"headline": "new"})).await;
        assert_eq!(again.status, 201, "{}", again.text);
        let listed = s.admin_get("/api/v1/posts").await;
        assert_eq!((listed.body["total"].clone(), listed.body["items"][0]["headline"].clone()), (json!(1), json!("new")), "{}", listed.text);
    }

    async fn a_collection_whose_system_column_was_renamed_outside_is_a_plain_table(s) {
        s.open_collection("renamed").await;
        s.seed("renamed", &[json!({"title": "a"})]).await;
        s.exec_sql("ALTER TABLE renamed RENAME COLUMN _deleted_at TO deleted_x").await;
        let met = s.get("/api/v1/renamed").await;
        assert!(matches!(met.status, 404 | 409), "{} {}", met.status, met.text);
        let next = s.get("/api/v1/renamed").await;
        assert_eq!(next.status, 404, "no longer a collection: {}", next.text);
        let plain = s.admin_get("/api/v1/tables/renamed?select=title,deleted_x").await;
        assert_eq!((plain.status, plain.body.clone()), (200, json!([{"title": "a", "deleted_x": null}])), "{}", plain.text);
    }

    async fn new_fields_that_differ_only_in_case_are_refused(s) {
        let refused = s.admin_post("/api/v1/cased", json!({"Title": 1, "title": 2})).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert!(refused.error().contains("case"), "{}", refused.text);
        assert_eq!(s.admin_get("/api/v1/admin/collections/cased").await.status, 404, "nothing was made");
        let refused = s.admin_post("/api/v1/cased/bulk", json!([{"Body": "a"}, {"body": "b"}])).await;
        assert_eq!((refused.status, refused.body["index"].clone()), (400, json!(1)), "{}", refused.text);
        s.open_collection("cased").await;
        let refused = s.post("/api/v1/cased", json!({"Body": "a", "body": "b"})).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        let schema = s.admin_get("/api/v1/admin/collections/cased/schema").await;
        assert!(!schema.text.to_lowercase().contains("\"body\""), "no column was added: {}", schema.text);
    }

    async fn the_collections_surface_does_not_write_to_plain_tables(s) {
        s.exec_sql("CREATE TABLE plain (id INTEGER PRIMARY KEY, title TEXT)").await;
        for (path, body) in [
            ("/api/v1/plain", json!({"title": "x"})),
            ("/api/v1/plain/bulk", json!([{"title": "x"}])),
            ("/api/v1/plain/batch", json!({"operations": [{"op": "create", "data": {"title": "x"}}]})),
        ] {
            let refused = s.admin_post(path, body).await;
            assert_eq!(refused.status, 404, "{path}: {}", refused.text);
        }
        assert_eq!(s.sql_i64("SELECT count(*) FROM plain").await, 0);
        assert_eq!(s.get("/api/v1/plain").await.status, 404, "reads agree");
    }

    async fn create_returns_the_record_with_system_fields(s) {
        s.open_collection("posts").await;
        let resp = s.post("/api/v1/posts", json!({"title": "Hello", "views": 3, "rating": 4.5, "draft": true, "tags": ["a", "b"], "meta": {"k": 1}})).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        let r = &resp.body;
        let id = r["_id"].as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
        assert!(r["_created_at"].as_i64().unwrap() > 1_700_000_000_000);
        assert_eq!(r["_created_at"], r["_updated_at"]);
        assert!(r["_owner_id"].is_null());
        assert!(r.get("_deleted_at").is_none(), "_deleted_at only shows when deleted records are asked for");
        assert_eq!(r["title"], "Hello");
        assert_eq!(r["views"], 3);
        assert_eq!(r["rating"], 4.5);
        assert_eq!(r["draft"], true);
        assert_eq!(r["tags"], json!(["a", "b"]));
        assert_eq!(r["meta"], json!({"k": 1}));

        let got = s.get(&format!("/api/v1/posts/{id}")).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.body, resp.body);
    }

    async fn system_fields_in_a_body_are_ignored(s) {
        s.open_collection("notes").await;
        let resp = s.post("/api/v1/notes", json!({"_id": "chosen", "_owner_id": "someone", "_created_at": 1, "_deleted_at": 5, "text": "x"})).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        assert_ne!(resp.body["_id"], "chosen");
        assert!(resp.body["_owner_id"].is_null());
        assert!(resp.body["_created_at"].as_i64().unwrap() > 1);
        let id = resp.body["_id"].as_str().unwrap();
        assert_eq!(s.get(&format!("/api/v1/notes/{id}")).await.status, 200, "not deleted by a _deleted_at in the body");
    }

    async fn first_write_creates_the_collection_with_inferred_types(s) {
        let resp = s.admin_post("/api/v1/things", json!({"name": "a", "count": 1, "ratio": 0.5, "ok": false, "list": [1]})).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        let schema = s.admin_get("/api/v1/admin/collections/things/schema").await;
        assert_eq!(schema.status, 200);
        let types: std::collections::HashMap<String, String> = schema.body["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_owned(), c["type"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(types["name"], "text");
        assert_eq!(types["count"], "integer");
        assert_eq!(types["ratio"], "real");
        assert_eq!(types["ok"], "boolean");
        assert_eq!(types["list"], "json");
        assert_eq!(types["_id"], "text");

        // A new field later adds a column; existing records read it as null.
        let second = s.admin_post("/api/v1/things", json!({"name": "b", "extra": "new"})).await;
        assert_eq!(second.status, 201, "{}", second.text);
        assert_eq!(second.body["extra"], "new");
        let first_id = resp.body["_id"].as_str().unwrap();
        let first = s.get(&format!("/api/v1/things/{first_id}")).await;
        assert!(first.body["extra"].is_null());
        assert_eq!(first.body["name"], "a");
        // Zero has one sign on both backends.
        let zero = s.admin_post("/api/v1/things", json!({"name": "z", "ratio": -0.0})).await;
        assert_eq!(zero.status, 201, "{}", zero.text);
        assert_eq!(serde_json::to_string(&zero.body["ratio"]).unwrap(), "0.0", "{}", zero.text);
    }

    async fn wrong_value_types_are_refused_and_change_nothing(s) {
        s.open_collection("typed").await;
        s.seed("typed", &[json!({"n": 1, "s": "x", "b": true, "r": 1.5})]).await;
        for (body, field) in [
            (json!({"n": "one"}), "n"),
            (json!({"n": 1.5}), "n"),
            (json!({"s": 5}), "s"),
            (json!({"b": "yes"}), "b"),
            (json!({"r": "1.5"}), "r"),
            (json!({"s": ["x"]}), "s"),
        ] {
            let resp = s.post("/api/v1/typed", body.clone()).await;
            assert_eq!(resp.status, 400, "{body}: {}", resp.text);
            assert_eq!(resp.body["field"], field, "{body}");
            assert!(resp.error().contains(field));
        }
        for body in [json!([1, 2]), json!("text"), json!(3)] {
            let resp = s.post("/api/v1/typed", body.clone()).await;
            assert_eq!(resp.status, 400, "{body}: {}", resp.text);
        }
        assert_eq!(s.get("/api/v1/typed/count").await.body["count"], 1);
        // An integral float fits an integer column, while it is exact (below 2^53).
        assert_eq!(s.post("/api/v1/typed", json!({"n": 2.0})).await.body["n"], 2);
        assert_eq!(s.post("/api/v1/typed", json!({"n": 9007199254740991.0})).await.body["n"], 9007199254740991i64);
        let inexact = s.post("/api/v1/typed", json!({"n": 1e16})).await;
        assert_eq!((inexact.status, inexact.body["field"].clone()), (400, json!("n")), "{}", inexact.text);
        assert!(inexact.error().contains("2^53"), "{}", inexact.text);
        assert_eq!(s.post("/api/v1/typed", json!({"n": 10_000_000_000_000_000i64})).await.status, 201, "the plain spelling");
    }

    async fn patch_changes_only_the_given_fields(s) {
        s.open_collection("posts").await;
        let created = &s.seed("posts", &[json!({"title": "a", "body": "keep", "views": 1})]).await[0];
        let id = created["_id"].as_str().unwrap();
        let resp = s.send(Method::PATCH, &format!("/api/v1/posts/{id}"), None, Some(json!({"title": "b", "_id": "x"}))).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.body["title"], "b");
        assert_eq!(resp.body["body"], "keep");
        assert_eq!(resp.body["views"], 1);
        assert_eq!(resp.body["_id"], id);
        assert_eq!(resp.body["_created_at"], created["_created_at"]);
        assert!(resp.body["_updated_at"].as_i64() >= created["_updated_at"].as_i64());
        assert_eq!(s.get(&format!("/api/v1/posts/{id}")).await.body["title"], "b");

        let bad = s.send(Method::PATCH, &format!("/api/v1/posts/{id}"), None, Some(json!({"views": "many"}))).await;
        assert_eq!(bad.status, 400);
        assert_eq!(s.get(&format!("/api/v1/posts/{id}")).await.body["views"], 1);
        let missing = s.send(Method::PATCH, "/api/v1/posts/01900000-0000-7000-8000-000000000000", None, Some(json!({"title": "z"}))).await;
        assert_eq!(missing.status, 404);
    }

    async fn delete_is_soft_and_restore_undoes_it(s) {
        s.open_collection("posts").await;
        let records = s.seed("posts", &[json!({"title": "a"}), json!({"title": "b"})]).await;
        let id = records[0]["_id"].as_str().unwrap();
        let del = s.send(Method::DELETE, &format!("/api/v1/posts/{id}"), None, None).await;
        assert_eq!(del.status, 200, "{}", del.text);
        assert_eq!(del.body["deleted"], true);
        assert_eq!(s.get(&format!("/api/v1/posts/{id}")).await.status, 404);
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/posts/{id}"), None, None).await.status, 404);
        let list = s.get("/api/v1/posts").await;
        assert_eq!(list.body["total"], 1);
        assert_eq!(s.get("/api/v1/posts/count").await.body["count"], 1);

        // Deleted records show, with _deleted_at, to the admin only.
        assert_eq!(s.get("/api/v1/posts?include_deleted=true").await.status, 401, "anonymous: the admin secret would pass");
        let all = s.admin_get("/api/v1/posts?include_deleted=true").await;
        assert_eq!(all.status, 200);
        assert_eq!(all.body["total"], 2);
        let deleted = all.body["items"].as_array().unwrap().iter().find(|r| r["_id"] == id).unwrap();
        assert!(deleted["_deleted_at"].as_i64().unwrap() > 0);
        assert_eq!(s.admin_get("/api/v1/posts/count?include_deleted=true").await.body["count"], 2);

        let restored = s.send(Method::POST, &format!("/api/v1/posts/{id}/restore"), None, None).await;
        assert_eq!(restored.status, 200, "{}", restored.text);
        assert_eq!(restored.body["title"], "a");
        assert_eq!(s.get(&format!("/api/v1/posts/{id}")).await.status, 200);
        // Restoring a record that is not deleted finds nothing to restore.
        assert_eq!(s.send(Method::POST, &format!("/api/v1/posts/{id}/restore"), None, None).await.status, 404);
    }

    async fn rules_public_and_disabled_are_enforced(s) {
        // Default rules: read public, create authenticated, update/delete owner.
        let created = s.admin_post("/api/v1/admin/collections", json!({"name": "articles"})).await;
        assert_eq!(created.status, 201);
        assert_eq!(created.body["rules"], json!({"read": "public", "create": "authenticated", "update": "owner", "delete": "owner"}));
        let anon_create = s.post("/api/v1/articles", json!({"title": "x"})).await;
        assert_eq!(anon_create.status, 401, "{}", anon_create.text);
        let record = &s.seed("articles", &[json!({"title": "by admin"})]).await[0];
        let id = record["_id"].as_str().unwrap();
        assert_eq!(s.get(&format!("/api/v1/articles/{id}")).await.status, 200);
        assert_eq!(s.get("/api/v1/articles").await.body["total"], 1);
        let anon_patch = s.send(Method::PATCH, &format!("/api/v1/articles/{id}"), None, Some(json!({"title": "y"}))).await;
        assert_eq!(anon_patch.status, 401);
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/articles/{id}"), None, None).await.status, 401);
        assert_eq!(s.get(&format!("/api/v1/articles/{id}")).await.body["title"], "by admin");

        // Disabled read: refused for everyone but the admin; 401 to anonymous callers (the
        // admin's credentials would pass), 403 to users.
        let patched = s.admin_patch("/api/v1/admin/collections/articles", json!({"rules": {"read": "disabled", "create": "public"}})).await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        assert_eq!(s.get("/api/v1/articles").await.status, 401);
        assert_eq!(s.get(&format!("/api/v1/articles/{id}")).await.status, 401);
        assert_eq!(s.get("/api/v1/articles/count").await.status, 401);
        let reader = s.register("reader@example.com", "password-123").await["access_token"].as_str().unwrap().to_owned();
        for path in ["/api/v1/articles".to_owned(), format!("/api/v1/articles/{id}"), "/api/v1/articles/count".to_owned()] {
            let refused = s.as_user(Method::GET, &path, &reader, None).await;
            assert_eq!(refused.status, 403, "{path}: {}", refused.text);
        }
        let anon_deleted = s.get("/api/v1/articles?include_deleted=true").await;
        assert_eq!(anon_deleted.status, 401, "{}", anon_deleted.text);
        let user_deleted = s.as_user(Method::GET, "/api/v1/articles?include_deleted=true", &reader, None).await;
        assert_eq!(user_deleted.status, 403, "{}", user_deleted.text);
        assert_eq!(s.admin_get("/api/v1/articles").await.status, 200);
        // Create is public now: anonymous records have no owner.
        let anon = s.post("/api/v1/articles", json!({"title": "anon"})).await;
        assert_eq!(anon.status, 201, "{}", anon.text);
        assert!(anon.body["_owner_id"].is_null());
        // A role rule refuses anonymous callers with 401.
        s.admin_patch("/api/v1/admin/collections/articles", json!({"rules": {"create": {"role": "editor"}}})).await;
        assert_eq!(s.post("/api/v1/articles", json!({"title": "x"})).await.status, 401);
        assert_eq!(s.admin_get("/api/v1/articles/count").await.body["count"], 2);
    }

    async fn tokens_that_are_not_the_admin_secret_are_refused(s) {
        s.open_collection("posts").await;
        let resp = s.send(Method::GET, "/api/v1/posts", Some("not-a-valid-token"), None).await;
        assert_eq!(resp.status, 401);
        let resp = s.send(Method::GET, "/api/v1/posts", Some(&format!("{ADMIN_SECRET}x")), None).await;
        assert_eq!(resp.status, 401);
        let raw = s.client.get(s.url("/api/v1/posts")).header("Authorization", "Basic abc").send().await.unwrap();
        assert_eq!(raw.status(), 401);
    }
}

both_backends! {
    async fn concurrent_writes_succeed_or_fail_alone(s) {
        // Writes that arrive together share one SQLite commit; a failing one must undo only itself.
        let rules = json!({"read": "public", "create": "public", "update": "public", "delete": "public"});
        let made = s.admin_post("/api/v1/admin/collections", json!({"name": "slugs", "rules": rules, "fields": {"slug": "text", "n": "integer"}})).await;
        assert_eq!(made.status, 201, "{}", made.text);
        let index = s.admin_post("/api/v1/admin/collections/slugs/indexes", json!({"column": "slug", "unique": true})).await;
        assert_eq!(index.status, 201, "{}", index.text);
        let mut tasks = Vec::new();
        for i in 0..60 {
            let client = s.client.clone();
            let url = s.url("/api/v1/slugs");
            // 20 distinct slugs, each sent three times.
            tasks.push(tokio::spawn(async move {
                client.post(url).json(&json!({"slug": format!("s{}", i % 20), "n": i})).send().await.unwrap().status().as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 20, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 40, "{statuses:?}");
        assert_eq!(s.get("/api/v1/slugs/count").await.body["count"], 20);
        let list = s.get("/api/v1/slugs?limit=100").await;
        let mut slugs: Vec<String> = list.body["items"].as_array().unwrap().iter().map(|r| r["slug"].as_str().unwrap().to_owned()).collect();
        slugs.sort();
        slugs.dedup();
        assert_eq!(slugs.len(), 20);
    }
}

/// Counts are cached per SQLite reader until the database changes, by any writer: a row written
/// by another process must show in the next count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_see_writes_made_outside_the_server() {
    let s = crate::harness::TestServer::start(crate::harness::Backend::Sqlite).await.unwrap();
    s.open_collection("ext").await;
    s.seed("ext", &[json!({"n": 1}), json!({"n": 2})]).await;
    for _ in 0..3 {
        assert_eq!(s.get("/api/v1/ext/count").await.body["count"], 2);
        assert_eq!(s.get("/api/v1/ext?n=gte.1").await.body["total"], 2);
    }
    let outside = rusqlite::Connection::open(s.data_dir().join("ferrobase.db")).unwrap();
    outside
        .execute(
            "INSERT INTO ext (_id, _created_at, _updated_at, n) VALUES ('01900000-0000-7000-8000-000000000001', 1, 1, 3)",
            [],
        )
        .unwrap();
    drop(outside);
    for _ in 0..3 {
        assert_eq!(s.get("/api/v1/ext/count").await.body["count"], 3);
        assert_eq!(s.get("/api/v1/ext?n=gte.1").await.body["total"], 3);
    }
    s.seed("ext", &[json!({"n": 4})]).await;
    assert_eq!(s.get("/api/v1/ext/count").await.body["count"], 4);
}

/// PostgreSQL: a column whose type another program changed. The statements built for the old
/// type meet operators and values the new one does not take: at most the request that meets
/// the change is refused (409, try again), never a 500, and the next ones see the new type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_type_changed_behind_the_servers_back() {
    let Some(s) = crate::harness::TestServer::start(crate::harness::Backend::Postgres).await else { return };
    s.open_collection("typed").await;
    s.seed("typed", &[json!({"c": "tt", "n": 1}), json!({"c": "t", "n": 2})]).await;
    assert_eq!(s.get("/api/v1/typed?filter=c:contains:t").await.body["total"], 2);
    s.exec_sql("ALTER TABLE typed ALTER COLUMN c TYPE integer USING length(c)").await;
    let met = s.get("/api/v1/typed?filter=c:contains:t").await;
    assert!(matches!(met.status, 400 | 409), "{} {}", met.status, met.text);
    let next = s.get("/api/v1/typed?filter=c:contains:t").await;
    assert_eq!(next.status, 400, "contains is for text, and c is an integer now: {}", next.text);
    assert_eq!(s.get("/api/v1/typed?c=eq.2").await.body["total"], 1);
    s.exec_sql("ALTER TABLE typed ALTER COLUMN n TYPE boolean USING n > 1").await;
    let met = s.get("/api/v1/typed/aggregate?op=avg&field=n").await;
    assert!(matches!(met.status, 400 | 409), "{} {}", met.status, met.text);
    let next = s.get("/api/v1/typed/aggregate?op=avg&field=n").await;
    assert_eq!(next.status, 400, "avg needs a number, and n is a boolean now: {}", next.text);
    let written = s.post("/api/v1/typed", json!({"c": 3, "n": true})).await;
    assert_eq!(written.status, 201, "{}", written.text);
}

/// SQLite: another program holding the write lock past the busy timeout gets a 503 with a
/// JSON error, not a 500; once it lets go, the same write succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_program_answers_503() {
    let s = crate::harness::TestServer::start(crate::harness::Backend::Sqlite).await.unwrap();
    let outside = rusqlite::Connection::open(s.data_dir().join("ferrobase.db")).unwrap();
    outside.execute_batch("BEGIN IMMEDIATE").unwrap();
    let refused = s.admin_post("/api/v1/locked_out", json!({"a": 1})).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert!(!refused.error().is_empty());
    outside.execute_batch("COMMIT").unwrap();
    drop(outside);
    assert_eq!(s.admin_post("/api/v1/locked_out", json!({"a": 1})).await.status, 201);
}
