//! Tables made with plain SQL in column types Ferrobase does not create itself: `uuid`,
//! timestamps, dates, `numeric` and arrays on PostgreSQL (and their SQLite spellings) are read,
//! filtered, written and embedded, and bad values for them are 400s. Bytes (`bytea`, SQLite's
//! `BLOB`) are answered and taken in PostgreSQL's text forms on both.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, Backend, TestServer};

const ANN: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
const BOB: &str = "6fa459ea-ee8a-3ca4-894e-db77e160355e";

async fn events(s: &TestServer) {
    let (uuid, ts, tags) = match s.backend {
        Backend::Postgres => ("UUID", "TIMESTAMP WITH TIME ZONE", "TEXT[]"),
        Backend::Sqlite => ("UUID", "TIMESTAMP WITH TIME ZONE", "JSON"),
    };
    let tags_ann = if s.backend == Backend::Postgres { "'{work,rust}'" } else { "'[\"work\",\"rust\"]'" };
    let tags_bob = if s.backend == Backend::Postgres { "'{home}'" } else { "'[\"home\"]'" };
    s.exec_sql(&format!(
        "CREATE TABLE people (id {uuid} PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO people (id, name) VALUES ('{ANN}', 'Ann'), ('{BOB}', 'Bob');
         CREATE TABLE events (id INTEGER PRIMARY KEY, person_id {uuid} REFERENCES people(id), at {ts}, day DATE,
                              price NUMERIC(10,2), tags {tags});
         INSERT INTO events (id, person_id, at, day, price, tags) VALUES
           (1, '{ANN}', '2026-01-02 10:00:00+00', '2026-01-02', 12.50, {tags_ann}),
           (2, '{BOB}', '2026-03-04 12:00:00+00', '2026-03-04', 3.25, {tags_bob});"
    ))
    .await;
    let rules = json!({"rules": {"read": "public", "create": "public", "update": "public", "delete": "public"}});
    for table in ["people", "events"] {
        let resp = s.admin_patch(&format!("/api/v1/admin/collections/{table}"), rules.clone()).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
    }
}

fn ids(body: &Value) -> Vec<i64> {
    body.as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

both_backends! {
    async fn foreign_column_types_are_read_filtered_and_written(s) {
        events(&s).await;
        let all = s.get("/api/v1/tables/events?order=id").await;
        assert_eq!(all.status, 200, "{}", all.text);
        let first = &all.body[0];
        assert_eq!(first["person_id"], ANN);
        assert!(first["at"].as_str().unwrap().starts_with("2026-01-02"), "{first}");
        assert_eq!(first["day"], "2026-01-02");
        assert_eq!(first["price"], 12.5);
        assert_eq!(first["tags"], json!(["work", "rust"]));

        for (query, expected) in [
            (format!("person_id=eq.{BOB}"), vec![2]),
            (format!("person_id=in.({ANN},{BOB})"), vec![1, 2]),
            ("day=gt.2026-02-01".to_owned(), vec![2]),
            ("price=lt.10".to_owned(), vec![2]),
            ("person_id=like.3f25*".to_owned(), vec![1]),
            ("tags=cs.{rust}".to_owned(), vec![1]),
        ] {
            let resp = s.get(&format!("/api/v1/tables/events?{query}&order=id")).await;
            assert_eq!(resp.status, 200, "{query}: {}", resp.text);
            assert_eq!(ids(&resp.body), expected, "{query}");
        }

        // By id on a uuid key, and an embed through the uuid foreign key.
        let ann = s.get(&format!("/api/v1/tables/people/{ANN}")).await;
        assert_eq!(ann.status, 200, "{}", ann.text);
        assert_eq!(ann.body, json!({"id": ANN, "name": "Ann"}));
        let embedded = s.get("/api/v1/tables/events?select=id,people(name)&order=id").await;
        assert_eq!(embedded.status, 200, "{}", embedded.text);
        assert_eq!(embedded.body, json!([{"id": 1, "people": {"name": "Ann"}}, {"id": 2, "people": {"name": "Bob"}}]));

        // Writes in those types, answered in them.
        let created = s
            .send(Method::POST, "/api/v1/tables/events", None, Some(json!({
                "id": 3, "person_id": BOB, "day": "2026-05-06", "price": 7.75, "tags": ["a", "b c"]
            })))
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.body["person_id"], BOB);
        assert_eq!(created.body["day"], "2026-05-06");
        assert_eq!(created.body["price"], 7.75);
        assert_eq!(created.body["tags"], json!(["a", "b c"]));
        let changed = s.send(Method::PATCH, "/api/v1/tables/events/3", None, Some(json!({"day": "2026-07-08", "person_id": ANN}))).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        assert_eq!(changed.body["day"], "2026-07-08");
        assert_eq!(changed.body["person_id"], ANN);
        let people = s.send(Method::POST, "/api/v1/tables/people", Some(ADMIN_SECRET), Some(json!({"id": "0b0b0b0b-0000-4000-8000-000000000001", "name": "Cy"}))).await;
        assert_eq!(people.status, 201, "{}", people.text);
        assert_eq!(s.send(Method::DELETE, "/api/v1/tables/people/0b0b0b0b-0000-4000-8000-000000000001", None, None).await.status, 204);
    }

    async fn bad_values_for_foreign_types_are_400(s) {
        events(&s).await;
        // PostgreSQL checks its types; SQLite would keep any text, so Ferrobase checks the
        // ISO forms there: both refuse the same values.
        let mut queries = vec!["person_id=eq.not-a-uuid", "day=gt.someday", "at=lt.noon", "person_id=in.(x)"];
        if s.backend == Backend::Postgres {
            // SQLite's NUMERIC takes any text too; not checked.
            queries.push("price=lt.cheap");
        }
        for query in queries {
            let resp = s.get(&format!("/api/v1/tables/events?{query}")).await;
            assert_eq!(resp.status, 400, "{query}: {}", resp.text);
            assert!(resp.text.contains("\"code\":\"22"), "{query}: {}", resp.text);
        }
        assert_eq!(s.get("/api/v1/tables/people/not-a-uuid").await.status, 400);
        // A huge refused value is not echoed back whole (PostgreSQL's message quotes it).
        let huge = s.send(Method::POST, "/api/v1/tables/events", None, Some(json!({"id": 9, "day": "x".repeat(70_000)}))).await;
        assert_eq!(huge.status, 400, "{}", huge.text.len());
        assert!(huge.body["error"].is_string() && huge.text.len() < 10_000, "{}", huge.text.len());
        let nul = s.get("/api/v1/tables/people/a%00b").await;
        assert_eq!((nul.status, nul.body["code"].as_str()), (400, Some("22P02")), "{}", nul.text);
        // The same code on both: 22007 for a date or time, 22P02 for a UUID.
        for (bad, code) in [
            (json!({"id": 9, "day": "31/12/2026"}), "22007"),
            (json!({"id": 9, "day": "2026-02-30"}), "22007"),
            (json!({"id": 9, "at": "someday"}), "22007"),
            (json!({"id": 9, "at": "2026-01-02 25:00"}), "22007"),
            (json!({"id": 9, "person_id": "not-a-uuid"}), "22P02"),
        ] {
            let resp = s.send(Method::POST, "/api/v1/tables/events", None, Some(bad.clone())).await;
            assert_eq!((resp.status, resp.body["code"].as_str()), (400, Some(code)), "{bad}: {}", resp.text);
            let patched = s.send(Method::PATCH, "/api/v1/tables/events/1", None, Some(json!({"day": bad.get("day").unwrap_or(&json!("x"))}))).await;
            assert_eq!(patched.status, 400, "{bad}: {}", patched.text);
        }
        assert_eq!(s.get("/api/v1/tables/events?id=eq.9").await.body, json!([]));
        assert_eq!(s.get("/api/v1/tables/events?id=eq.1").await.body[0]["day"], "2026-01-02", "refused patches changed nothing");
        // The ISO forms are taken on both.
        let fine = json!({"id": 10, "day": "2024-02-29", "at": "2026-01-02T10:00:00Z", "person_id": ANN.to_uppercase()});
        let resp = s.send(Method::POST, "/api/v1/tables/events", None, Some(fine)).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        assert_eq!(resp.body["person_id"], ANN, "a UUID is stored in lowercase on both");
        assert_eq!(s.get("/api/v1/tables/events?day=eq.2024-02-29").await.body[0]["id"], 10);
        let by_capitals = s.get(&format!("/api/v1/tables/events?person_id=eq.{}&order=id", ANN.to_uppercase())).await;
        assert_eq!(ids(&by_capitals.body), vec![1, 10]);
        // Moments are stored in PostgreSQL's spelling, in UTC, and compare as moments.
        let zoned = s.send(Method::POST, "/api/v1/tables/events", None, Some(json!({"id": 11, "at": "2026-01-02T12:00:00.250+02:00"}))).await;
        assert_eq!(zoned.status, 201, "{}", zoned.text);
        assert_eq!(zoned.body["at"], "2026-01-02 10:00:00.25+00");
        let same = s.get("/api/v1/tables/events?at=gte.2026-01-02T10:00:00Z&at=lt.2026-01-02 10:00:00.3%2B00&order=id").await;
        assert_eq!(ids(&same.body), vec![1, 10, 11], "{}", same.text);
        let ordered = s.get("/api/v1/tables/events?at=not.is.null&order=at.desc,id").await;
        assert_eq!(ids(&ordered.body), vec![2, 11, 1, 10], "{}", ordered.text);
    }

    async fn numbers_keep_their_digits_and_their_columns_ranges(s) {
        s.exec_sql("CREATE TABLE nums (id INTEGER PRIMARY KEY, num NUMERIC, r REAL, small SMALLINT, n INTEGER)").await;
        let rules = json!({"rules": {"read": "public", "create": "public", "update": "public", "delete": "public"}});
        assert_eq!(s.admin_patch("/api/v1/admin/collections/nums", rules).await.status, 200);
        let created = s.send(Method::POST, "/api/v1/tables/nums", None, Some(json!({"id": 1, "num": 1.2345678901234567, "r": 0.1}))).await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!((created.body["num"].as_f64(), created.body["r"].as_f64()), (Some(1.2345678901234567), Some(0.1)), "{}", created.text);
        let found = s.get("/api/v1/tables/nums?num=eq.1.2345678901234567&select=id").await;
        assert_eq!(found.body, json!([{"id": 1}]), "{}", found.text);
        let patched = s.send(Method::PATCH, "/api/v1/tables/nums/1", None, Some(json!({"num": 0.30000000000000004}))).await;
        assert_eq!(patched.body["num"].as_f64(), Some(0.30000000000000004), "{}", patched.text);
        assert_eq!(s.get("/api/v1/tables/nums?num=eq.0.30000000000000004&select=id").await.body, json!([{"id": 1}]));
        if s.backend == Backend::Postgres {
            // A numeric keeps digits past a double's (SQLite's is a double): a filter compares
            // them all.
            s.exec_sql("INSERT INTO nums (id, num) VALUES (7, 3.141592653589793238)").await;
            let exact = s.get("/api/v1/tables/nums?num=eq.3.141592653589793238&select=id").await;
            assert_eq!(exact.body, json!([{"id": 7}]), "{}", exact.text);
            // A number past its column's range is PostgreSQL's 22003, nothing written.
            for (bad, type_name) in [
                (json!({"id": 2, "small": 40000}), "smallint"),
                (json!({"id": 2, "n": 2147483648_i64}), "integer"),
                (json!({"id": 2, "r": 1e39}), "real"),
                (json!({"id": 2, "r": -1e39}), "real"),
            ] {
                let resp = s.send(Method::POST, "/api/v1/tables/nums", None, Some(bad.clone())).await;
                assert_eq!((resp.status, resp.body["code"].as_str()), (400, Some("22003")), "{bad}: {}", resp.text);
                assert!(resp.error().ends_with(&format!("is out of range for type {type_name}")), "{}", resp.text);
                let patched = s.send(Method::PATCH, "/api/v1/tables/nums?id=eq.1", None, Some(bad.clone())).await;
                assert_eq!(patched.status, 400, "{bad}: {}", patched.text);
            }
            assert_eq!(s.get("/api/v1/tables/nums?id=eq.2").await.body, json!([]));
            assert_eq!(s.get("/api/v1/tables/nums/1").await.body["r"].as_f64(), Some(0.1), "refused patches changed nothing");
        }
    }

    async fn one_key_in_two_spellings_is_one_key(s) {
        events(&s).await;
        let merge = [("Prefer", "resolution=merge-duplicates,return=representation")];
        let upper = ANN.to_uppercase();
        // A merge cannot change one row twice, however its key is spelled.
        for items in [
            json!([{"id": ANN, "name": "A1"}, {"id": upper, "name": "A2"}]),
            json!([{"id": "0b0b0b0b-0000-4000-8000-000000000009", "name": "new"}, {"id": "0B0B0B0B-0000-4000-8000-000000000009"}]),
        ] {
            let twice = s.send_with(Method::POST, "/api/v1/tables/people", None, &merge, Some(items.clone())).await;
            assert_eq!((twice.status, twice.body["code"].as_str()), (400, Some("21000")), "{items}: {}", twice.text);
        }
        let numbers = json!([{"id": 1, "price": 1}, {"id": 1.0, "price": 2}]);
        let twice = s.send_with(Method::POST, "/api/v1/tables/events", None, &merge, Some(numbers)).await;
        assert_eq!((twice.status, twice.body["code"].as_str()), (400, Some("21000")), "{}", twice.text);
        let people = s.get("/api/v1/tables/people?order=name").await;
        assert_eq!(people.body, json!([{"id": ANN, "name": "Ann"}, {"id": BOB, "name": "Bob"}]), "nothing was written");
        // A PUT's body may repeat the path's key in another spelling.
        let put = s.send(Method::PUT, &format!("/api/v1/tables/people/{ANN}"), None, Some(json!({"id": upper, "name": "Anna"}))).await;
        assert_eq!((put.status, &put.body), (200, &json!({"id": ANN, "name": "Anna"})), "{}", put.text);
        let other = s.send(Method::PUT, &format!("/api/v1/tables/people/{ANN}"), None, Some(json!({"id": BOB, "name": "x"}))).await;
        assert_eq!(other.status, 400, "{}", other.text);
    }

    async fn a_collection_takes_columns_of_these_types_added_with_plain_sql(s) {
        s.open_collection("shifts").await;
        s.seed("shifts", &[json!({"note": "first"})]).await;
        s.exec_sql("ALTER TABLE shifts ADD COLUMN day DATE").await;
        s.exec_sql("ALTER TABLE shifts ADD COLUMN ref UUID").await;
        let record = json!({"note": "second", "day": "2026-01-02", "ref": ANN.to_uppercase()});
        // The request that first meets the new columns may be asked to try again (409).
        let mut created = s.post("/api/v1/shifts", record.clone()).await;
        if created.status == 409 {
            created = s.post("/api/v1/shifts", record).await;
        }
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!((created.body["day"].as_str(), created.body["ref"].as_str()), (Some("2026-01-02"), Some(ANN)));
        let bulk = s.post("/api/v1/shifts/bulk", json!([{"day": "2026-01-03"}])).await;
        assert_eq!(bulk.status, 201, "{}", bulk.text);
        for bad in [json!({"day": "someday"}), json!({"ref": "not-a-uuid"})] {
            assert_eq!(s.post("/api/v1/shifts", bad.clone()).await.status, 400, "{bad}");
        }
        assert_eq!(s.get("/api/v1/shifts/count").await.body["count"], 3);
    }

    async fn bytes_are_written_read_and_matched_in_postgresql_hex_form(s) {
        s.exec_sql(match s.backend {
            Backend::Postgres => "CREATE TABLE blobs (id BYTEA PRIMARY KEY, n INTEGER); INSERT INTO blobs VALUES ('\\x0102', 1);",
            Backend::Sqlite => "CREATE TABLE blobs (id BLOB PRIMARY KEY, n INTEGER); INSERT INTO blobs VALUES (x'0102', 1);",
        })
        .await;
        let admin = Some(ADMIN_SECRET);
        let read = s.send(Method::GET, "/api/v1/tables/blobs", admin, None).await;
        assert_eq!(read.body, json!([{"id": "\\x0102", "n": 1}]), "{}", read.text);
        // A key in hex form and one in escape form (its own bytes, `\\` and `\ooo` escaped).
        for (given, stored) in [("\\x0A0b", "\\x0a0b"), ("a\\\\b\\101", "\\x615c6241")] {
            let created = s.send(Method::POST, "/api/v1/tables/blobs", admin, Some(json!({"id": given, "n": 2}))).await;
            assert_eq!((created.status, &created.body["id"]), (201, &json!(stored)), "{}", created.text);
        }
        for bad in ["\\x0a0", "\\xzz", "a\\b"] {
            let refused = s.send(Method::POST, "/api/v1/tables/blobs", admin, Some(json!({"id": bad, "n": 3}))).await;
            assert_eq!((refused.status, refused.body["code"].as_str()), (400, Some("22P02")), "{bad}: {}", refused.text);
        }
        let by_key = s.send(Method::GET, "/api/v1/tables/blobs/%5Cx0102", admin, None).await;
        assert_eq!((by_key.status, &by_key.body["n"]), (200, &json!(1)), "{}", by_key.text);
        let filtered = s.send(Method::GET, "/api/v1/tables/blobs?id=eq.%5Cx0a0b&select=n", admin, None).await;
        assert_eq!(filtered.body, json!([{"n": 2}]), "{}", filtered.text);
        let patched = s.send(Method::PATCH, "/api/v1/tables/blobs/%5Cx0a0b", admin, Some(json!({"n": 5}))).await;
        assert_eq!((patched.status, &patched.body["n"]), (200, &json!(5)), "{}", patched.text);
        let deleted = s.send(Method::DELETE, "/api/v1/tables/blobs/%5Cx0a0b", admin, None).await;
        assert_eq!(deleted.status, 204, "{}", deleted.text);
        let left = s.send(Method::GET, "/api/v1/tables/blobs?select=id&order=id", admin, None).await;
        assert_eq!(left.body, json!([{"id": "\\x0102"}, {"id": "\\x615c6241"}]), "{}", left.text);
    }

    async fn values_their_own_type_parses_and_refuses_are_400(s) {
        let admin = Some(ADMIN_SECRET);
        if s.backend == Backend::Postgres {
            s.exec_sql("CREATE TABLE docs (id SERIAL PRIMARY KEY, q TSQUERY, v TSVECTOR, r REGCLASS)").await;
            for bad in [json!({"q": "a & & b"}), json!({"v": "a:x"}), json!({"r": "a b c"})] {
                let refused = s.send(Method::POST, "/api/v1/tables/docs", admin, Some(bad.clone())).await;
                assert_eq!((refused.status, refused.body["code"].as_str()), (400, Some("22P02")), "{bad}: {}", refused.text);
            }
            let kept = s.send(Method::POST, "/api/v1/tables/docs", admin, Some(json!({"q": "a & b"}))).await;
            assert_eq!(kept.status, 201, "{}", kept.text);
            // Compared with a row, a malformed value is refused as it would be written.
            let filtered = s.send(Method::GET, "/api/v1/tables/docs?q=eq.a%20%26%20%26", admin, None).await;
            assert_eq!(filtered.status, 400, "{}", filtered.text);
            let rows = s.send(Method::GET, "/api/v1/tables/docs?select=q", admin, None).await;
            assert_eq!(rows.body, json!([{"q": "'a' & 'b'"}]), "only the good row was written");
        } else {
            // A SQLite virtual table takes reads and inserts; its shadow tables are not served.
            s.exec_sql("CREATE VIRTUAL TABLE notes USING fts5(title, body)").await;
            let created = s.send(Method::POST, "/api/v1/tables/notes", admin, Some(json!({"title": "a", "body": "b"}))).await;
            assert_eq!(created.status, 201, "{}", created.text);
            for (method, path, body) in [
                (Method::PATCH, "/api/v1/tables/notes?title=eq.a", Some(json!({"body": "c"}))),
                (Method::DELETE, "/api/v1/tables/notes?title=eq.a", None),
            ] {
                let refused = s.send(method.clone(), path, admin, body).await;
                assert_eq!((refused.status, refused.body["code"].as_str()), (400, Some("0A000")), "{method}: {}", refused.text);
                assert!(refused.error().contains("virtual table"), "{}", refused.error());
            }
            let rows = s.send(Method::GET, "/api/v1/tables/notes", admin, None).await;
            assert_eq!(rows.body, json!([{"title": "a", "body": "b"}]), "nothing was changed");
            let shadow = s.send(Method::GET, "/api/v1/tables/notes_data", admin, None).await;
            assert_eq!(shadow.status, 404, "{}", shadow.text);
        }
    }
}
