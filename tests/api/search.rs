//! Full-text search: `?search=` on list, count and aggregate, the `fts` operators, the index
//! kept in step with writes and schema changes, and bad search input.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, Backend, TestServer};
use crate::query::ns;

async fn articles(s: &TestServer) {
    s.open_collection("articles").await;
    s.seed(
        "articles",
        &[
            json!({"n": 1, "title": "Rust web servers", "body": "Building a web server in Rust with axum", "views": 10}),
            json!({"n": 2, "title": "Rust rust rust", "body": "Rust everywhere, rust all the way", "views": 20}),
            json!({"n": 3, "title": "Gardening", "body": "Growing tomatoes on a balcony", "views": 30}),
            json!({"n": 4, "title": "Go web services", "body": "A web service in Go", "views": 40}),
            json!({"n": 5, "title": "Rusty tools", "body": "Restoring old garden tools", "views": 50}),
            json!({"n": 6, "title": "E-mail etiquette", "body": null, "views": 60}),
        ],
    )
    .await;
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort();
    v
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

both_backends! {
    async fn search_words_prefixes_phrases_and_logic(s) {
        articles(&s).await;
        let cases: &[(&str, &[i64])] = &[
            ("rust", &[1, 2]),
            ("RUST", &[1, 2]),
            ("rust*", &[1, 2, 5]),
            ("web", &[1, 4]),
            ("\"web server\"", &[1]),
            ("\"server web\"", &[]),
            ("rust web", &[1]),
            ("rust AND web", &[1]),
            ("rust OR go", &[1, 2, 4]),
            ("web NOT go", &[1]),
            ("web -go", &[1]),
            ("(rust OR go) web", &[1, 4]),
            ("tomatoes OR tools", &[3, 5]),
            ("e-mail", &[6]),
            ("balcony", &[3]),
            ("nothingmatches", &[]),
        ];
        for (search, expected) in cases {
            let resp = s.get(&format!("/api/v1/articles?search={}", enc(search))).await;
            assert_eq!(resp.status, 200, "{search}: {}", resp.text);
            assert_eq!(sorted(ns(&resp.body)), *expected, "{search}");
            assert_eq!(resp.body["total"], expected.len(), "{search}");
            let count = s.get(&format!("/api/v1/articles/count?search={}", enc(search))).await;
            assert_eq!(count.body["count"], expected.len(), "count {search}");
        }
    }

    async fn search_ranks_and_combines_with_filter_sort_and_paging(s) {
        articles(&s).await;
        // Without a sort the best match comes first: "rust" five times beats once.
        let ranked = s.get("/api/v1/articles?search=rust").await;
        assert_eq!(ns(&ranked.body), vec![2, 1]);
        // A sort wins over rank.
        assert_eq!(ns(&s.get("/api/v1/articles?search=rust&sort=n").await.body), vec![1, 2]);
        // Filters of both spellings narrow the matches.
        assert_eq!(ns(&s.get("/api/v1/articles?search=rust*&filter=views:gte:20&sort=-n").await.body), vec![5, 2]);
        assert_eq!(ns(&s.get("/api/v1/articles?search=web&views=lt.20").await.body), vec![1]);
        // Paging over ranked results.
        let page1 = s.get("/api/v1/articles?search=rust*&limit=2").await;
        let page2 = s.get("/api/v1/articles?search=rust*&limit=2&page=2").await;
        assert_eq!(page1.body["total"], 3);
        // Ranked pages offer no keyset cursor, which they would then refuse.
        assert!(page1.body["next_cursor"].is_null(), "{}", page1.text);
        let mut all = ns(&page1.body);
        all.extend(ns(&page2.body));
        assert_eq!(sorted(all), vec![1, 2, 5]);
        // Keyset paging needs a sort when searching; with one it walks every match once.
        let refused = s.get("/api/v1/articles?search=rust*&after=x").await;
        assert_eq!(refused.status, 400);
        assert!(refused.error().contains("after"), "{}", refused.text);
        let first = s.get("/api/v1/articles?search=rust*&sort=n&limit=2").await;
        let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
        let next = s.get(&format!("/api/v1/articles?search=rust*&sort=n&limit=2&after={cursor}")).await;
        assert_eq!(ns(&next.body), vec![5]);
        // Aggregates over the matches.
        let sum = s.get("/api/v1/articles/aggregate?op=sum&field=views&search=web").await;
        assert_eq!(sum.status, 200, "{}", sum.text);
        assert_eq!(sum.body["result"], 50);
        // Projection still works with the search join.
        let projected = s.get("/api/v1/articles?search=balcony&fields=title").await;
        assert_eq!(projected.body["items"], json!([{"title": "Gardening"}]));
        // The index's own storage never shows: not in records, rows or the schema.
        let record = &s.get("/api/v1/articles?search=balcony").await.body["items"][0];
        let row = &s.get("/api/v1/tables/articles?n=eq.3").await.body[0];
        let schema = s.admin_get("/api/v1/admin/collections/articles/schema").await.body;
        for shown in [record.to_string(), row.to_string(), schema.to_string()] {
            assert!(!shown.contains("_fb_"), "{shown}");
        }
        assert_eq!(record["title"], "Gardening");
        assert_eq!(row["title"], "Gardening");
    }

    async fn the_index_follows_writes_and_new_fields(s) {
        articles(&s).await;
        let garden = s.get("/api/v1/articles?search=gardening").await.body["items"][0]["_id"].as_str().unwrap().to_owned();
        // An update replaces the old words.
        let resp = s.send(Method::PATCH, &format!("/api/v1/articles/{garden}"), None, Some(json!({"title": "Beekeeping"}))).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(ns(&s.get("/api/v1/articles?search=gardening").await.body), Vec::<i64>::new());
        assert_eq!(ns(&s.get("/api/v1/articles?search=beekeeping").await.body), vec![3]);
        // A change of other fields keeps the text searchable.
        s.send(Method::PATCH, &format!("/api/v1/articles/{garden}"), None, Some(json!({"views": 1}))).await;
        assert_eq!(ns(&s.get("/api/v1/articles?search=beekeeping").await.body), vec![3]);
        // Soft-deleted records are not found; restored ones are again; hard-deleted ones never.
        s.send(Method::DELETE, &format!("/api/v1/articles/{garden}"), None, None).await;
        assert_eq!(ns(&s.get("/api/v1/articles?search=beekeeping").await.body), Vec::<i64>::new());
        s.send(Method::POST, &format!("/api/v1/articles/{garden}/restore"), None, None).await;
        assert_eq!(ns(&s.get("/api/v1/articles?search=beekeeping").await.body), vec![3]);
        let gone = s.admin_delete(&format!("/api/v1/admin/collections/articles/records/{garden}")).await;
        assert_eq!(gone.status, 200, "{}", gone.text);
        assert_eq!(s.get("/api/v1/articles/count?search=beekeeping").await.body["count"], 0);
        // A text field added by a write is searched from then on, old records included.
        s.seed("articles", &[json!({"n": 7, "summary": "pumpkins"})]).await;
        assert_eq!(ns(&s.get("/api/v1/articles?search=pumpkins").await.body), vec![7]);
        assert_eq!(ns(&s.get("/api/v1/articles?search=tomatoes").await.body), Vec::<i64>::new());
        assert_eq!(ns(&s.get("/api/v1/articles?search=balcony").await.body), Vec::<i64>::new());
        assert_eq!(ns(&s.get("/api/v1/articles?search=axum").await.body), vec![1]);
        // Dropping a field takes its words out of the index.
        let dropped = s.admin_delete("/api/v1/admin/collections/articles/schema/body").await;
        assert_eq!(dropped.status, 200, "{}", dropped.text);
        assert_eq!(ns(&s.get("/api/v1/articles?search=axum").await.body), Vec::<i64>::new());
        assert_eq!(ns(&s.get("/api/v1/articles?search=pumpkins").await.body), vec![7]);
        // A dropped collection takes its index with it, and a new one of the same name starts empty.
        assert_eq!(s.admin_delete("/api/v1/admin/collections/articles").await.status, 200);
        s.open_collection("articles").await;
        s.seed("articles", &[json!({"n": 1, "title": "fresh start"})]).await;
        assert_eq!(ns(&s.get("/api/v1/articles?search=fresh").await.body), vec![1]);
        assert_eq!(ns(&s.get("/api/v1/articles?search=rust").await.body), Vec::<i64>::new());
    }

    async fn a_refused_write_that_adds_the_first_text_field_changes_nothing(s) {
        let rules = json!({"read": "public", "create": "public", "update": "public", "delete": "public"});
        for name in ["notes", "others"] {
            let made = s.admin_post("/api/v1/admin/collections", json!({"name": name, "rules": rules, "fields": {"t": "text", "n": "integer"}})).await;
            assert_eq!(made.status, 201, "{}", made.text);
        }
        s.seed("notes", &[json!({"t": "hello", "n": 1})]).await;
        assert_eq!(s.get("/api/v1/notes?search=hello").await.status, 200);
        // The index is left with no text field to cover.
        assert_eq!(s.admin_delete("/api/v1/admin/collections/notes/schema/t").await.status, 200);
        // Writes that would add a text field (and so build the index afresh) but are refused,
        // sent at once with other writes, which a SQLite transaction may group with them.
        let refused = (0..8).map(|i| s.post("/api/v1/notes", json!({"t": format!("word{i}"), "n": "not a number"})));
        let others = (0..8).map(|i| s.post("/api/v1/others", json!({"t": format!("other{i}"), "n": i})));
        let (refused, others) = futures_util::future::join(
            futures_util::future::join_all(refused),
            futures_util::future::join_all(others),
        )
        .await;
        for resp in refused {
            assert_eq!(resp.status, 400, "{}", resp.text);
        }
        for resp in others {
            assert_eq!(resp.status, 201, "{}", resp.text);
        }
        assert_eq!(s.get("/api/v1/others/count").await.body["count"], 8);
        let schema = s.admin_get("/api/v1/admin/collections/notes").await;
        assert!(!schema.text.contains("\"t\""), "the refused writes added no field: {}", schema.text);
        // A write that is taken adds the field, and the index covers it.
        assert_eq!(s.post("/api/v1/notes", json!({"t": "pumpkins", "n": 2})).await.status, 201);
        assert_eq!(ns(&s.get("/api/v1/notes?search=pumpkins").await.body), vec![2]);
    }

    async fn fts_operators_search_one_field(s) {
        articles(&s).await;
        let cases: &[(&str, &[i64])] = &[
            ("title=fts.rust", &[1, 2]),
            ("body=fts.rust", &[1, 2]),
            ("title=fts.web", &[1, 4]),
            ("body=fts.tomatoes", &[3]),
            ("title=fts.tomatoes", &[]),
            ("title.fts=rust%20servers", &[1]),
            ("title=wfts.rust%20-web", &[2]),
            ("title=plfts.web%20rust", &[1]),
            ("title=phfts.web%20rust", &[]),
            ("title=phfts.rust%20web", &[1]),
            ("title=fts(english).gardening", &[3]),
            ("title=not.fts.rust&n=lt.4", &[3]),
            ("or=(title.fts.gardening,body.fts.go)", &[3, 4]),
        ];
        for (query, expected) in cases {
            let resp = s.get(&format!("/api/v1/articles?{query}")).await;
            assert_eq!(resp.status, 200, "{query}: {}", resp.text);
            assert_eq!(sorted(ns(&resp.body)), *expected, "{query}");
        }
        for bad in ["views=fts.rust", "title=fts.%22open", "title=fts.NOT%20x", "title=fts.", "title=plfts.%21%21"] {
            let resp = s.get(&format!("/api/v1/articles?{bad}")).await;
            assert_eq!(resp.status, 400, "{bad}: {}", resp.text);
            assert!(!resp.error().is_empty());
        }
    }

    async fn search_respects_read_rules(s) {
        let created = s
            .admin_post("/api/v1/admin/collections", json!({"name": "notes", "rules": {"read": "owner", "create": "authenticated"}}))
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let alice = s.register("alice@example.com", "password-alice").await["access_token"].as_str().unwrap().to_owned();
        let bob = s.register("bob@example.com", "password-bob").await["access_token"].as_str().unwrap().to_owned();
        for (token, text) in [(&alice, "alice secret plans"), (&bob, "bob secret plans")] {
            let resp = s.as_user(Method::POST, "/api/v1/notes", token, Some(json!({"text": text}))).await;
            assert_eq!(resp.status, 201, "{}", resp.text);
        }
        let mine = s.as_user(Method::GET, "/api/v1/notes?search=secret", &alice, None).await;
        assert_eq!(mine.body["total"], 1, "{}", mine.text);
        assert_eq!(mine.body["items"][0]["text"], "alice secret plans");
        let count = s.as_user(Method::GET, "/api/v1/notes/count?search=plans", &bob, None).await;
        assert_eq!(count.body["count"], 1);
        assert_eq!(s.send(Method::GET, "/api/v1/notes?search=secret", Some(ADMIN_SECRET), None).await.body["total"], 2);
        assert_eq!(s.get("/api/v1/notes?search=secret").await.status, 401);
    }

    async fn bad_searches_are_400_and_change_nothing(s) {
        articles(&s).await;
        for bad in ["", "%22unclosed", "(rust", "rust)", "rust%20OR", "NOT%20rust", "rust%20OR%20NOT%20go", "-rust", "*", "()"] {
            let resp = s.get(&format!("/api/v1/articles?search={bad}")).await;
            assert_eq!(resp.status, 400, "{bad}: {}", resp.text);
            assert!(resp.error().contains("search"), "{bad}: {}", resp.text);
            let count = s.get(&format!("/api/v1/articles/count?search={bad}")).await;
            assert_eq!(count.status, 400, "count {bad}");
        }
        // The engines' own syntax is plain text here, never an error or an injection.
        for text in ["NEAR(rust web)", "title:rust", "{title}: rust", "rust^", "'; DROP TABLE articles; --", "rust + web"] {
            let resp = s.get(&format!("/api/v1/articles?search={}", enc(text))).await;
            assert_eq!(resp.status, 200, "{text}: {}", resp.text);
        }
        assert_eq!(ns(&s.get("/api/v1/articles?search=NEAR(rust%20web)").await.body), Vec::<i64>::new());
        assert_eq!(s.get("/api/v1/articles/count").await.body["count"], 6);
        // A collection without text fields has nothing to search.
        s.open_collection("numbers").await;
        s.seed("numbers", &[json!({"n": 1})]).await;
        let resp = s.get("/api/v1/numbers?search=one").await;
        assert_eq!(resp.status, 400);
        assert!(resp.error().contains("no text fields"), "{}", resp.text);
    }

    async fn words_inside_addresses_paths_and_numbers_are_found_on_both_backends(s) {
        s.open_collection("notes").await;
        s.seed("notes", &[
            json!({"n": 1, "t": "mail bob@example.com or visit example.com, version 2.0"}),
            json!({"n": 2, "t": "see /usr/bin and v1.2.3, price -5 dollars"}),
            json!({"n": 3, "t": "nothing here"}),
        ])
        .await;
        for (search, expected) in [
            ("bob", vec![1]),
            ("example", vec![1]),
            ("bob@example.com", vec![1]),
            ("com", vec![1]),
            ("2.0", vec![1]),
            ("usr", vec![2]),
            ("/usr/bin", vec![2]),
            ("v1", vec![2]),
            ("5", vec![2]),
            ("version", vec![1]),
        ] {
            let resp = s.get(&format!("/api/v1/notes?search={}", enc(search))).await;
            assert_eq!(resp.status, 200, "{search}: {}", resp.text);
            assert_eq!(sorted(ns(&resp.body)), expected, "{search}");
        }
        let resp = s.get("/api/v1/tables/notes?t=fts.example.com&select=n").await;
        assert_eq!(resp.body, json!([{"n": 1}]), "{}", resp.text);
    }

    async fn fts_on_the_tables_surface(s) {
        articles(&s).await;
        let ns_of = |body: &Value| -> Vec<i64> {
            let mut v: Vec<i64> = body.as_array().unwrap_or_else(|| panic!("not an array: {body}")).iter().map(|r| r["n"].as_i64().unwrap()).collect();
            v.sort();
            v
        };
        for (query, expected) in [
            ("title=fts.rust", vec![1, 2]),
            ("body=wfts.web%20-go", vec![1]),
            ("title=plfts.rust%20web", vec![1]),
            ("title=phfts.go%20web", vec![4]),
            ("title=fts.rust&views=gt.10", vec![2]),
        ] {
            let resp = s.get(&format!("/api/v1/tables/articles?{query}")).await;
            assert_eq!(resp.status, 200, "{query}: {}", resp.text);
            assert_eq!(ns_of(&resp.body), expected, "{query}");
        }
        // The search index follows writes made through this surface too.
        let resp = s
            .send(Method::PATCH, "/api/v1/tables/articles?n=eq.3", None, Some(json!({"title": "Rust in the garden"})))
            .await;
        assert_eq!(resp.status, 204, "{}", resp.text);
        assert_eq!(ns_of(&s.get("/api/v1/tables/articles?title=fts.rust").await.body), vec![1, 2, 3]);
        let bad = s.get("/api/v1/tables/articles?title=fts.%22open").await;
        assert_eq!(bad.status, 400, "{}", bad.text);

        // A table made with plain SQL: PostgreSQL searches any text column; SQLite has no
        // index for it and says so.
        s.exec_sql("CREATE TABLE memos (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO memos (id, body) VALUES (1, 'Rust memo'), (2, 'other');").await;
        let resp = s.get("/api/v1/tables/memos?body=fts.rust").await;
        match s.backend {
            Backend::Postgres => {
                assert_eq!(resp.status, 200, "{}", resp.text);
                assert_eq!(resp.body, json!([{"id": 1, "body": "Rust memo"}]));
            }
            Backend::Sqlite => {
                assert_eq!(resp.status, 400, "{}", resp.text);
                assert!(resp.error().contains("full-text index"), "{}", resp.text);
            }
        }
    }
}
