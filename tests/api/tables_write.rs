//! The tables surface, writes: insert (one, many, all or none, upsert), PUT, PATCH and
//! DELETE by id and by filter, Prefer variants, constraint violations, and a collection seen
//! through both surfaces.

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, TestServer};
use crate::tables_read::{ids, serial, todos};

/// An admin request with headers.
async fn admin(
    s: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> crate::harness::Resp {
    s.send_with(method, path, Some(ADMIN_SECRET), headers, body).await
}

both_backends! {
    async fn a_column_dropped_behind_the_servers_back_is_never_read_as_a_string(s) {
        s.exec_sql("CREATE TABLE scratch (id INTEGER PRIMARY KEY, c TEXT, d TEXT); INSERT INTO scratch VALUES (1, 'keep', 'x'), (2, 'keep', 'y');").await;
        let seen = admin(&s, Method::GET, "/api/v1/tables/scratch?c=eq.keep", &[], None).await;
        assert_eq!(seen.body.as_array().map(Vec::len), Some(2), "{}", seen.text);
        s.exec_sql("ALTER TABLE scratch DROP COLUMN c").await;
        // SQLite would read a quoted name it cannot find as a string: `"c" = 'c'` held for
        // every row and this delete emptied the table.
        // The database refuses the stale statement; the table is read again and the request
        // answered as it would be on the table as it now is: the column is unknown.
        let deleted = admin(&s, Method::DELETE, "/api/v1/tables/scratch?c=eq.c", &[("Prefer", "return=representation")], None).await;
        assert_eq!((deleted.status, deleted.body["code"].as_str()), (400, Some("42703")), "{}", deleted.text);
        let read = admin(&s, Method::GET, "/api/v1/tables/scratch?c=eq.c", &[], None).await;
        assert_eq!(read.status, 400, "{}", read.text);
        assert_eq!(s.sql_i64("SELECT count(*) FROM scratch").await, 2);
        // The rest of the table is served at once, not after the catalog's next periodic read.
        s.exec_sql("ALTER TABLE scratch DROP COLUMN d").await;
        let rest = admin(&s, Method::GET, "/api/v1/tables/scratch?order=id", &[], None).await;
        assert_eq!((rest.status, rest.body.clone()), (200, json!([{"id": 1}, {"id": 2}])), "{}", rest.text);
        s.exec_sql("DROP TABLE scratch").await;
        let gone = admin(&s, Method::GET, "/api/v1/tables/scratch?d=eq.y", &[], None).await;
        assert_eq!(gone.status, 404, "a table dropped behind the server's back: {}", gone.text);
    }

    async fn insert_one_many_all_or_none(s) {
        todos(&s).await;
        let one = admin(&s, Method::POST, "/api/v1/tables/todos", &[], Some(json!({"title": "new", "done": false}))).await;
        assert_eq!(one.status, 201, "{}", one.text);
        assert_eq!(one.body["id"], 5, "the integer key is generated");
        assert_eq!(one.body["title"], "new");
        assert_eq!(one.body["priority"], json!(null));
        let many = admin(&s, Method::POST, "/api/v1/tables/todos", &[], Some(json!([{"title": "a"}, {"title": "b", "tags": ["x"]}]))).await;
        assert_eq!(many.status, 201, "{}", many.text);
        assert_eq!(ids(&many.body), vec![6, 7]);
        assert_eq!(many.body[1]["tags"], json!(["x"]));
        // One bad row: nothing is inserted, and the answer names its index.
        let bad = admin(&s, Method::POST, "/api/v1/tables/todos", &[], Some(json!([{"title": "c"}, {"done": true}]))).await;
        assert_eq!(bad.status, 400, "{}", bad.text);
        assert_eq!(bad.body["index"], 1);
        let bad = admin(&s, Method::POST, "/api/v1/tables/todos", &[], Some(json!([{"title": "c"}, {"nope": 1}]))).await;
        assert_eq!(bad.status, 400);
        assert!(bad.error().contains("nope"));
        let bad = admin(&s, Method::POST, "/api/v1/tables/todos", &[], Some(json!([{"title": "c"}, {"title": 3}]))).await;
        assert_eq!(bad.status, 400);
        let count = s.get("/api/v1/tables/todos?count=exact&limit=1").await;
        assert_eq!(count.header("content-range"), Some("0-0/7"));
        assert_eq!(admin(&s, Method::POST, "/api/v1/tables/todos", &[], Some(json!(3))).await.status, 400);
        assert_eq!(admin(&s, Method::POST, "/api/v1/tables/todos?id=eq.1", &[], Some(json!({"title": "x"}))).await.status, 400);
        let empty = admin(&s, Method::POST, "/api/v1/tables/todos", &[], Some(json!([]))).await;
        assert_eq!((empty.status, empty.body), (201, json!([])));
        // columns= keeps only the listed keys (postgrest-js sends it on array inserts).
        let cols = admin(&s, Method::POST, "/api/v1/tables/todos?columns=%22title%22&select=title,priority", &[("Prefer", "return=representation")],
            Some(json!([{"title": "only", "priority": 9}]))).await;
        assert_eq!(cols.body, json!([{"title": "only", "priority": null}]));
        let cols = admin(&s, Method::POST, "/api/v1/tables/todos?columns=nope", &[], Some(json!([{"title": "x"}]))).await;
        assert_eq!(cols.status, 400);
    }

    async fn prefer_return_variants(s) {
        todos(&s).await;
        let path = "/api/v1/tables/todos";
        let minimal = admin(&s, Method::POST, path, &[("Prefer", "return=minimal")], Some(json!({"title": "m"}))).await;
        assert_eq!((minimal.status, minimal.text.as_str()), (201, ""));
        let headers = admin(&s, Method::POST, path, &[("Prefer", "return=headers-only")], Some(json!({"title": "h"}))).await;
        assert_eq!(headers.status, 201);
        assert_eq!(headers.header("location"), Some("/api/v1/tables/todos?id=eq.6"));
        let repr = admin(&s, Method::POST, &format!("{path}?select=id,title"), &[("Prefer", "return=representation")], Some(json!({"title": "r"}))).await;
        assert_eq!(repr.body, json!([{"id": 7, "title": "r"}]));
        let single = admin(&s, Method::POST, path, &[("Prefer", "return=representation"), ("Accept", "application/vnd.pgrst.object+json")], Some(json!({"title": "s"}))).await;
        assert_eq!(single.body["title"], "s");
        let refused = admin(&s, Method::POST, path, &[("Accept", "application/vnd.pgrst.object+json")], Some(json!([{"title": "1"}, {"title": "2"}]))).await;
        assert_eq!(refused.status, 406);
        // PATCH and DELETE with filters: 204, or the rows with return=representation.
        let patched = admin(&s, Method::PATCH, &format!("{path}?done=is.true"), &[], Some(json!({"priority": 7}))).await;
        assert_eq!((patched.status, patched.text.as_str()), (204, ""));
        let patched = admin(&s, Method::PATCH, &format!("{path}?priority=eq.7&select=id,priority"), &[("Prefer", "return=representation")], Some(json!({"priority": 8}))).await;
        assert_eq!(patched.body, json!([{"id": 1, "priority": 8}, {"id": 4, "priority": 8}]));
        // .single() on an update that matches two rows: 406 and nothing changes.
        let refused = admin(&s, Method::PATCH, &format!("{path}?priority=eq.8"), &[("Prefer", "return=representation"), ("Accept", "application/vnd.pgrst.object+json")], Some(json!({"priority": 9}))).await;
        assert_eq!(refused.status, 406, "{}", refused.text);
        assert_eq!(ids(&s.get(&format!("{path}?priority=eq.8")).await.body), vec![1, 4]);
        let deleted = admin(&s, Method::DELETE, &format!("{path}?id=eq.4"), &[("Prefer", "return=representation")], None).await;
        assert_eq!(ids(&deleted.body), vec![4]);
        let deleted = admin(&s, Method::DELETE, &format!("{path}?priority=eq.8"), &[], None).await;
        assert_eq!(deleted.status, 204);
        assert_eq!(s.get("/api/v1/tables/todos/1").await.status, 404);

        // The rows a write answers with come in the representation `Accept` asks for.
        let csv = [("Prefer", "return=representation"), ("Accept", "text/csv")];
        let made = admin(&s, Method::POST, &format!("{path}?select=id,title"), &csv, Some(json!([{"title": "c1"}, {"title": "c,2"}]))).await;
        assert_eq!((made.status, made.header("content-type")), (201, Some("text/csv; charset=utf-8")), "{}", made.text);
        assert_eq!(made.text, "id,title\r\n9,c1\r\n10,\"c,2\"\r\n");
        let patched = admin(&s, Method::PATCH, &format!("{path}?id=eq.9&select=title,priority"), &csv, Some(json!({"priority": 3}))).await;
        assert_eq!((patched.status, patched.text.as_str()), (200, "title,priority\r\nc1,3\r\n"));
        let by_id = admin(&s, Method::PATCH, "/api/v1/tables/todos/10?select=id", &csv, Some(json!({"priority": 4}))).await;
        assert_eq!((by_id.status, by_id.text.as_str()), (200, "id\r\n10\r\n"));
        let gone = admin(&s, Method::DELETE, "/api/v1/tables/todos/10?select=title", &csv, None).await;
        assert_eq!((gone.status, gone.text.as_str()), (200, "title\r\n\"c,2\"\r\n"));
        // An Accept the server cannot answer in is refused before anything is written.
        let unanswerable = admin(&s, Method::POST, path, &[("Accept", "image/png")], Some(json!({"title": "never"}))).await;
        assert_eq!(unanswerable.status, 406, "{}", unanswerable.text);
        let unanswerable = admin(&s, Method::PATCH, &format!("{path}?id=eq.9"), &[("Accept", "application/xml")], Some(json!({"title": "never"}))).await;
        assert_eq!(unanswerable.status, 406, "{}", unanswerable.text);
        assert_eq!(s.get(&format!("{path}?title=eq.never")).await.body, json!([]));
    }

    async fn writes_count_the_rows_they_wrote_when_asked(s) {
        todos(&s).await;
        let path = "/api/v1/tables/todos";
        let counted = [("Prefer", "count=exact, return=minimal")];
        let inserted = admin(&s, Method::POST, path, &counted, Some(json!([{"title": "a"}, {"title": "b"}]))).await;
        assert_eq!((inserted.status, inserted.header("content-range")), (201, Some("*/2")), "{}", inserted.text);
        let uncounted = admin(&s, Method::POST, path, &[], Some(json!({"title": "c"}))).await;
        assert_eq!(uncounted.header("content-range"), Some("*/*"));
        let patched = admin(&s, Method::PATCH, &format!("{path}?title=in.(a,b)"), &counted, Some(json!({"priority": 30}))).await;
        assert_eq!((patched.status, patched.header("content-range")), (204, Some("0-1/2")), "{}", patched.text);
        let by_query = admin(&s, Method::PATCH, &format!("{path}?title=eq.c&count=exact"), &[], Some(json!({"priority": 4}))).await;
        assert_eq!(by_query.header("content-range"), Some("0-0/1"), "{}", by_query.text);
        let none = admin(&s, Method::PATCH, &format!("{path}?title=eq.nothing"), &counted, Some(json!({"priority": 5}))).await;
        assert_eq!(none.header("content-range"), Some("*/0"));
        let deleted = admin(&s, Method::DELETE, &format!("{path}?priority=eq.30"), &[("Prefer", "count=exact")], None).await;
        assert_eq!((deleted.status, deleted.header("content-range")), (204, Some("0-1/2")), "{}", deleted.text);
        let plain = admin(&s, Method::DELETE, &format!("{path}?title=eq.c"), &[], None).await;
        assert_eq!(plain.header("content-range"), Some("0-0/*"));
        assert_eq!(s.get(&format!("{path}?title=in.(a,b,c)")).await.body, json!([]));
    }

    async fn max_affected_under_strict_handling_caps_a_write_by_filter(s) {
        todos(&s).await;
        let path = "/api/v1/tables/todos";
        let capped = [("Prefer", "handling=strict, max-affected=1")];
        // Four rows match: the cap refuses the write whole, nothing changes (PGRST124).
        let patched = admin(&s, Method::PATCH, &format!("{path}?id=gt.0"), &capped, Some(json!({"priority": 9}))).await;
        assert_eq!((patched.status, patched.body["code"].as_str()), (400, Some("PGRST124")), "{}", patched.text);
        let deleted = admin(&s, Method::DELETE, &format!("{path}?done=is.false"), &capped, None).await;
        assert_eq!((deleted.status, deleted.body["code"].as_str()), (400, Some("PGRST124")), "{}", deleted.text);
        let all = s.get(&format!("{path}?order=id")).await;
        assert_eq!(ids(&all.body), vec![1, 2, 3, 4]);
        assert!(all.body.as_array().unwrap().iter().all(|t| t["priority"] != 9), "{}", all.text);
        // Within the cap the write goes ahead and says the preference was applied.
        let within = [("Prefer", "handling=strict, max-affected=2, return=representation")];
        let one = admin(&s, Method::PATCH, &format!("{path}?id=eq.1"), &within, Some(json!({"priority": 9}))).await;
        assert_eq!((one.status, ids(&one.body)), (200, vec![1]), "{}", one.text);
        assert_eq!(one.header("preference-applied"), Some("handling=strict, max-affected=2"));
        // Without strict handling max-affected is ignored, as PostgREST does.
        let lenient = admin(&s, Method::PATCH, &format!("{path}?id=gt.2"), &[("Prefer", "max-affected=1")], Some(json!({"priority": 7}))).await;
        assert_eq!(lenient.status, 204, "{}", lenient.text);
        assert_eq!(ids(&s.get(&format!("{path}?priority=eq.7&order=id")).await.body), vec![3, 4]);
        // Strict handling refuses a preference it does not know (PGRST122), before writing.
        let unknown = admin(&s, Method::DELETE, &format!("{path}?id=eq.1"), &[("Prefer", "handling=strict, shiny=yes")], None).await;
        assert_eq!((unknown.status, unknown.body["code"].as_str()), (400, Some("PGRST122")), "{}", unknown.text);
        assert_eq!(ids(&s.get(&format!("{path}?id=eq.1")).await.body), vec![1]);
    }

    async fn write_bodies_of_another_type_than_json_are_415(s) {
        todos(&s).await;
        let path = "/api/v1/tables/todos";
        for declared in ["text/csv", "application/x-www-form-urlencoded", "application/xml", "text/plain"] {
            for (method, target) in [(Method::POST, path.to_owned()), (Method::PATCH, format!("{path}?id=eq.1")), (Method::PUT, format!("{path}/1")), (Method::PATCH, format!("{path}/1"))] {
                let resp = s.client.request(method.clone(), s.url(&target)).bearer_auth(ADMIN_SECRET)
                    .header("content-type", declared).body(r#"{"title": "typed"}"#).send().await.unwrap();
                let status = resp.status().as_u16();
                let body: serde_json::Value = resp.json().await.unwrap();
                assert_eq!((status, body["code"].as_str()), (415, Some("PGRST107")), "{method} {declared}: {body}");
            }
        }
        for declared in ["application/json", "application/json; charset=utf-8", "application/vnd.api+json"] {
            let resp = s.client.post(s.url(path)).bearer_auth(ADMIN_SECRET).header("content-type", declared)
                .body(r#"{"title": "typed"}"#).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 201, "{declared}");
        }
        assert_eq!(s.get(&format!("{path}?title=eq.typed&select=title")).await.body.as_array().map(Vec::len), Some(3), "only the JSON bodies were written");
    }

    async fn put_patch_delete_by_id_and_filter(s) {
        todos(&s).await;
        let put = admin(&s, Method::PUT, "/api/v1/tables/todos/1", &[], Some(json!({"title": "replaced"}))).await;
        assert_eq!(put.status, 200, "{}", put.text);
        assert_eq!(put.body, json!({"id": 1, "title": "replaced", "done": null, "priority": null, "tags": null, "meta": null}));
        let put = admin(&s, Method::PUT, "/api/v1/tables/todos/1", &[], Some(json!({"id": 2, "title": "x"}))).await;
        assert_eq!(put.status, 400);
        assert_eq!(admin(&s, Method::PUT, "/api/v1/tables/todos/99", &[], Some(json!({"title": "x"}))).await.status, 404);
        let put = admin(&s, Method::PUT, "/api/v1/tables/todos/1", &[], Some(json!({"done": true}))).await;
        assert_eq!(put.status, 400, "title is NOT NULL: {}", put.text);
        let patch = admin(&s, Method::PATCH, "/api/v1/tables/todos/2", &[], Some(json!({"done": true, "meta": {"k": [1]}}))).await;
        assert_eq!(patch.status, 200, "{}", patch.text);
        assert_eq!((patch.body["title"].clone(), patch.body["done"].clone(), patch.body["meta"].clone()), (json!("buy milk"), json!(true), json!({"k": [1]})));
        assert_eq!(admin(&s, Method::PATCH, "/api/v1/tables/todos/99", &[], Some(json!({"done": true}))).await.status, 404);
        assert_eq!(admin(&s, Method::PATCH, "/api/v1/tables/todos/2", &[], Some(json!({"nope": true}))).await.status, 400);
        assert_eq!(admin(&s, Method::PATCH, "/api/v1/tables/todos/2", &[], Some(json!({"done": "yes"}))).await.status, 400);
        let minimal = admin(&s, Method::PATCH, "/api/v1/tables/todos/2", &[("Prefer", "return=minimal")], Some(json!({"done": false}))).await;
        assert_eq!(minimal.status, 204);
        // Without a filter PATCH and DELETE refuse to touch every row.
        let all = admin(&s, Method::PATCH, "/api/v1/tables/todos", &[], Some(json!({"done": true}))).await;
        assert_eq!(all.status, 400);
        assert!(all.error().contains("filter"), "{}", all.text);
        assert_eq!(admin(&s, Method::DELETE, "/api/v1/tables/todos", &[], None).await.status, 400);
        assert_eq!(admin(&s, Method::DELETE, "/api/v1/tables/todos?limit=1", &[], None).await.status, 400);
        let deleted = admin(&s, Method::DELETE, "/api/v1/tables/todos/3", &[], None).await;
        assert_eq!((deleted.status, deleted.text.as_str()), (204, ""));
        assert_eq!(admin(&s, Method::DELETE, "/api/v1/tables/todos/3", &[], None).await.status, 404);
        let deleted = admin(&s, Method::DELETE, "/api/v1/tables/todos?title=ilike.*DOG*", &[], None).await;
        assert_eq!(deleted.status, 204);
        assert_eq!(ids(&s.get("/api/v1/tables/todos").await.body), vec![1, 2]);
    }

    async fn upserts(s) {
        s.exec_sql("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER, note TEXT UNIQUE)").await;
        let path = "/api/v1/tables/kv";
        let merge = ("Prefer", "resolution=merge-duplicates,return=representation");
        let resp = admin(&s, Method::POST, path, &[merge], Some(json!([{"k": "a", "v": 1}, {"k": "b", "v": 2}]))).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        assert_eq!(resp.header("preference-applied"), Some("resolution=merge-duplicates"));
        let resp = admin(&s, Method::POST, path, &[merge], Some(json!([{"k": "a", "v": 10}, {"k": "c", "v": 3}]))).await;
        assert_eq!(resp.body, json!([{"k": "a", "v": 10, "note": null}, {"k": "c", "v": 3, "note": null}]));
        let ignore = ("Prefer", "resolution=ignore-duplicates,return=representation");
        let resp = admin(&s, Method::POST, path, &[ignore], Some(json!([{"k": "a", "v": 99}]))).await;
        assert_eq!((resp.status, resp.body), (201, json!([])));
        assert_eq!(s.get("/api/v1/tables/kv/a").await.body["v"], 10);
        // Two items with one key cannot both be merged: refused whole, naming them.
        let twice = admin(&s, Method::POST, path, &[merge], Some(json!([{"k": "t", "v": 1}, {"k": "u"}, {"k": "t", "v": 2}]))).await;
        assert_eq!((twice.status, twice.body["code"].as_str()), (400, Some("21000")), "{}", twice.text);
        assert!(twice.error().contains("items 0 and 2"), "{}", twice.text);
        assert_eq!(s.get("/api/v1/tables/kv/u").await.status, 404, "nothing of it was written");
        // A row that names no column is all defaults, inserted as such (or refused as any
        // insert is): there is no key to meet a row by.
        let (pk, _) = serial(&s);
        s.exec_sql(&format!("CREATE TABLE counters (id {pk}, n INTEGER DEFAULT 7)")).await;
        for prefer in ["resolution=merge-duplicates,return=representation", "resolution=ignore-duplicates,return=representation"] {
            let empty = admin(&s, Method::POST, "/api/v1/tables/counters", &[("Prefer", prefer)], Some(json!([{}]))).await;
            assert_eq!(empty.status, 201, "{prefer}: {}", empty.text);
            assert_eq!(empty.body[0]["n"], 7, "{prefer}: {}", empty.text);
        }
        // A merge of the key alone changes nothing and answers the row it met.
        let resp = admin(&s, Method::POST, path, &[merge], Some(json!({"k": "a"}))).await;
        assert_eq!((resp.status, resp.body), (201, json!([{"k": "a", "v": 10, "note": null}])));
        // Without a resolution a duplicate key is a conflict.
        let dup = admin(&s, Method::POST, path, &[], Some(json!({"k": "a"}))).await;
        assert_eq!(dup.status, 409, "{}", dup.text);
        // on_conflict names the unique columns to match on.
        admin(&s, Method::POST, path, &[], Some(json!({"k": "n1", "note": "first", "v": 1}))).await;
        let resp = admin(&s, Method::POST, &format!("{path}?on_conflict=note"), &[merge], Some(json!({"k": "n1", "note": "first", "v": 5}))).await;
        assert_eq!(resp.body, json!([{"k": "n1", "v": 5, "note": "first"}]));
        let bad = admin(&s, Method::POST, &format!("{path}?on_conflict=v"), &[merge], Some(json!({"k": "z", "v": 5}))).await;
        assert_eq!((bad.status, bad.body["code"].as_str()), (400, Some("42P10")), "no unique constraint on v: {}", bad.text);
        assert_eq!(bad.error(), "on_conflict must name the columns of a primary key or unique constraint", "the same words on both");
        let bad = admin(&s, Method::POST, &format!("{path}?on_conflict=nope"), &[merge], Some(json!({"k": "z"}))).await;
        assert_eq!(bad.status, 400);
        assert!(bad.error().contains("nope"));
    }

    async fn owner_column_of_a_plain_table(s) {
        let (pk, _) = serial(&s);
        s.exec_sql(&format!("CREATE TABLE diary (id {pk}, entry TEXT, _owner_id TEXT)")).await;
        let resp = s.admin_patch("/api/v1/admin/collections/diary", json!({"rules": {"read": "owner"}})).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let ann = s.register("ann@example.com", "password-ann-1").await;
        let (ann_id, ann) = (ann["user"]["id"].as_str().unwrap().to_owned(), ann["access_token"].as_str().unwrap().to_owned());
        let bob = s.register("bob@example.com", "password-bob-1").await["access_token"].as_str().unwrap().to_owned();
        let created = s.as_user(Method::POST, "/api/v1/tables/diary", &ann, Some(json!({"entry": "dear diary"}))).await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.body["_owner_id"], ann_id.as_str(), "inserts belong to their author");
        let forged = s.as_user(Method::POST, "/api/v1/tables/diary", &bob, Some(json!({"entry": "x", "_owner_id": ann_id}))).await;
        assert_eq!(forged.status, 400, "{}", forged.text);
        assert_eq!(s.as_user(Method::GET, "/api/v1/tables/diary", &bob, None).await.body, json!([]));
        assert_eq!(s.as_user(Method::GET, "/api/v1/tables/diary/1", &bob, None).await.status, 404);
        assert_eq!(s.as_user(Method::PATCH, "/api/v1/tables/diary/1", &bob, Some(json!({"entry": "x"}))).await.status, 404);
        assert_eq!(s.as_user(Method::GET, "/api/v1/tables/diary", &ann, None).await.body[0]["entry"], "dear diary");
        let changed = s.as_user(Method::PATCH, "/api/v1/tables/diary/1", &ann, Some(json!({"entry": "changed"}))).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        // A replacement keeps the owner it does not name (only the admin may name one).
        let replaced = s.as_user(Method::PUT, "/api/v1/tables/diary/1", &ann, Some(json!({"entry": "replaced"}))).await;
        assert_eq!((replaced.status, &replaced.body["_owner_id"]), (200, &json!(ann_id)), "{}", replaced.text);
        assert_eq!(s.as_user(Method::GET, "/api/v1/tables/diary/1", &ann, None).await.body["entry"], "replaced");
        let by_admin = admin(&s, Method::PUT, "/api/v1/tables/diary/1", &[], Some(json!({"entry": "kept"}))).await;
        assert_eq!(by_admin.body["_owner_id"], ann_id.as_str(), "{}", by_admin.text);
        assert_eq!(s.as_user(Method::DELETE, "/api/v1/tables/diary?id=eq.1", &bob, None).await.status, 204, "matches nothing of bob's");
        assert_eq!(s.as_user(Method::DELETE, "/api/v1/tables/diary/1", &ann, None).await.status, 204);
        let unknown = s.send(Method::POST, "/api/v1/tables/diary?on_conflict=nope", Some(ADMIN_SECRET), Some(json!({"entry": "x"}))).await;
        assert_eq!(unknown.status, 400);
    }

    async fn constraint_violations_on_plain_tables(s) {
        let (pk, _) = serial(&s);
        s.exec_sql(&format!(
            "CREATE TABLE teams (id {pk}, name TEXT);
             CREATE TABLE members (id {pk}, email TEXT NOT NULL UNIQUE, age INTEGER CHECK (age >= 0),
                                   team_id INTEGER REFERENCES teams(id));
             INSERT INTO teams (name) VALUES ('red');"
        ))
        .await;
        let path = "/api/v1/tables/members";
        let ok = admin(&s, Method::POST, path, &[], Some(json!({"email": "a@x", "age": 3, "team_id": 1}))).await;
        assert_eq!(ok.status, 201, "{}", ok.text);
        for (body, status, code) in [
            (json!({"email": "a@x"}), 409, "23505"),
            (json!({"email": "b@x", "team_id": 4242}), 409, "23503"),
            (json!({"age": 3}), 400, "23502"),
            (json!({"email": "c@x", "age": -1}), 400, "23514"),
            (json!({"email": "d@x", "age": "old"}), 400, "22P02"),
        ] {
            let resp = admin(&s, Method::POST, path, &[], Some(body.clone())).await;
            assert_eq!((resp.status, resp.body["code"].as_str()), (status, Some(code)), "{body}: {}", resp.text);
            assert!(!resp.error().is_empty());
            assert!(!resp.text.contains("4242"), "a constraint's answer never echoes values: {}", resp.text);
        }
        // A missing value is named alike on both backends, in PostgreSQL's words.
        let unnamed = admin(&s, Method::POST, path, &[], Some(json!({"age": 4}))).await;
        assert_eq!(unnamed.error(), "null value in column \"email\" of relation \"members\" violates not-null constraint", "{}", unnamed.text);
        // A foreign key is named alike on both backends, on insert and on update.
        let missing = admin(&s, Method::POST, path, &[], Some(json!({"email": "e@x", "team_id": 4242}))).await;
        assert_eq!(missing.error(), "team_id must name an existing row of teams", "{}", missing.text);
        let moved = admin(&s, Method::PATCH, "/api/v1/tables/members?email=eq.a@x", &[], Some(json!({"team_id": 4242}))).await;
        assert_eq!((moved.status, moved.error()), (409, "team_id must name an existing row of teams"), "{}", moved.text);
        let blocked = admin(&s, Method::DELETE, "/api/v1/tables/teams/1", &[], None).await;
        assert_eq!((blocked.status, blocked.body["code"].as_str()), (409, Some("23503")), "referenced by members: {}", blocked.text);
        assert!(!blocked.text.contains("=(1)"), "{}", blocked.text);
        assert_eq!(blocked.error(), "the row is still referenced from members", "the same words on both backends");
        // So is a merge upsert that would move a referenced key.
        s.exec_sql("CREATE UNIQUE INDEX teams_name ON teams (name)").await;
        let moved_key = admin(&s, Method::POST, "/api/v1/tables/teams?on_conflict=name", &[("Prefer", "resolution=merge-duplicates")],
            Some(json!({"id": 9, "name": "red"}))).await;
        assert_eq!((moved_key.status, moved_key.body["code"].as_str()), (409, Some("23503")), "{}", moved_key.text);
        assert_eq!(moved_key.error(), "the row is still referenced from members", "{}", moved_key.text);
        // A key is never null: not on update, and not on insert, where SQLite would have
        // taken null for "the next rowid" and answered 201 with a key nobody sent.
        let nulled = admin(&s, Method::PATCH, "/api/v1/tables/teams?id=eq.1", &[], Some(json!({"id": null}))).await;
        assert_eq!((nulled.status, nulled.body["code"].as_str()), (400, Some("23502")), "{}", nulled.text);
        assert_eq!(s.sql_i64("SELECT count(*) FROM teams WHERE id = 1").await, 1);
        let inserted = admin(&s, Method::POST, "/api/v1/tables/teams", &[], Some(json!({"id": null, "name": "blue"}))).await;
        assert_eq!((inserted.status, inserted.body["code"].as_str()), (400, Some("23502")), "{}", inserted.text);
        let upserted = admin(&s, Method::POST, "/api/v1/tables/teams", &[("Prefer", "resolution=merge-duplicates")],
            Some(json!([{"id": null, "name": "green"}]))).await;
        assert_eq!(upserted.status, 400, "{}", upserted.text);
        assert_eq!(s.sql_i64("SELECT count(*) FROM teams").await, 1, "nothing was inserted");
        s.exec_sql("CREATE TABLE tagged (code TEXT PRIMARY KEY, label TEXT)").await;
        let text_key = admin(&s, Method::POST, "/api/v1/tables/tagged", &[], Some(json!({"code": null, "label": "x"}))).await;
        assert_eq!((text_key.status, text_key.body["code"].as_str()), (400, Some("23502")), "{}", text_key.text);
        assert_eq!(s.sql_i64("SELECT count(*) FROM tagged").await, 0, "SQLite keeps a null text key when asked to");
        // Left out, with no default: SQLite would keep a null in any key but the rowid.
        s.exec_sql("CREATE TABLE pairs (a INTEGER, b TEXT, label TEXT, PRIMARY KEY (a, b)); CREATE TABLE coded (id INT PRIMARY KEY, label TEXT)").await;
        for (path, body) in [
            ("/api/v1/tables/tagged", json!({"label": "x"})),
            ("/api/v1/tables/tagged", json!([{"code": "k", "label": "x"}, {"label": "y"}])),
            ("/api/v1/tables/pairs", json!({"b": "x"})),
            ("/api/v1/tables/coded", json!({"label": "x"})),
        ] {
            let resp = admin(&s, Method::POST, path, &[], Some(body.clone())).await;
            assert_eq!((resp.status, resp.body["code"].as_str()), (400, Some("23502")), "{path} {body}: {}", resp.text);
        }
        assert_eq!(s.sql_i64("SELECT (SELECT count(*) FROM tagged) + (SELECT count(*) FROM pairs) + (SELECT count(*) FROM coded)").await, 0);
    }

    async fn a_collection_through_both_surfaces(s) {
        s.open_collection("notes").await;
        let created = s.post("/api/v1/notes", json!({"title": "a", "n": 1})).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.body["_id"].as_str().unwrap().to_owned();
        let seen = s.get(&format!("/api/v1/tables/notes/{id}")).await;
        assert_eq!(seen.status, 200, "{}", seen.text);
        assert_eq!(seen.body, created.body, "the same record, system columns included");
        let changed = s.send(Method::PATCH, &format!("/api/v1/tables/notes/{id}"), None, Some(json!({"n": 2, "_id": "ignored"}))).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        assert!(changed.body["_updated_at"].as_i64() >= created.body["_updated_at"].as_i64());
        assert_eq!(s.get(&format!("/api/v1/notes/{id}")).await.body["n"], 2);
        // Created on the tables surface, read on the collections surface.
        let other = s.post("/api/v1/tables/notes", json!({"title": "b", "n": 5})).await;
        assert_eq!(other.status, 201, "{}", other.text);
        for key in ["_id", "_created_at", "_updated_at", "_owner_id"] {
            assert!(other.body.get(key).is_some(), "{key} in {}", other.text);
        }
        let other_id = other.body["_id"].as_str().unwrap().to_owned();
        assert_eq!(s.get(&format!("/api/v1/notes/{other_id}")).await.body["title"], "b");
        // No new columns on this surface; validation rules apply.
        let unknown = s.post("/api/v1/tables/notes", json!({"title": "c", "extra": 1})).await;
        assert_eq!(unknown.status, 400);
        assert!(unknown.error().contains("extra"));
        let resp = s.send(Method::PUT, "/api/v1/admin/collections/notes/rules", Some(ADMIN_SECRET), Some(json!({"title": {"required": true}}))).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(s.post("/api/v1/tables/notes", json!({"n": 1})).await.status, 400);
        // Deletes are the collections surface's soft delete: restorable, hidden from lists.
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/tables/notes/{id}"), None, None).await.status, 204);
        assert_eq!(s.get(&format!("/api/v1/notes/{id}")).await.status, 404);
        assert_eq!(s.get(&format!("/api/v1/tables/notes/{id}")).await.status, 404);
        assert_eq!(s.post(&format!("/api/v1/notes/{id}/restore"), json!({})).await.status, 200);
        let by_filter = s.send(Method::DELETE, "/api/v1/tables/notes?title=eq.b", None, None).await;
        assert_eq!(by_filter.status, 204);
        let list = s.get("/api/v1/tables/notes?select=title").await;
        assert_eq!(list.body, json!([{"title": "a"}]));
        assert_eq!(s.post(&format!("/api/v1/notes/{other_id}/restore"), json!({})).await.status, 200);
        // Deleted on the collections surface, gone from the tables surface.
        s.send(Method::DELETE, &format!("/api/v1/notes/{other_id}"), None, None).await;
        assert_eq!(s.get("/api/v1/tables/notes?select=title").await.body, json!([{"title": "a"}]));
        // Upsert on a unique field of a collection.
        let resp = s.send(Method::POST, "/api/v1/admin/collections/notes/indexes", Some(ADMIN_SECRET), Some(json!({"column": "title", "unique": true}))).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        let resp = s.send_with(Method::POST, "/api/v1/tables/notes?on_conflict=title", None,
            &[("Prefer", "resolution=merge-duplicates,return=representation")], Some(json!({"title": "a", "n": 42}))).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        assert_eq!(resp.body[0]["_id"], id.as_str());
        assert_eq!(resp.body[0]["n"], 42);
    }
}
