//! The tables surface (PostgREST dialect), reads: every operator and keyword, bad input,
//! embedding through relations and foreign keys, access, tables made with plain SQL.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, Backend, TestServer};

/// The auto-incrementing integer key and the JSON type of the backend's plain SQL.
pub fn serial(s: &TestServer) -> (&'static str, &'static str) {
    match s.backend {
        Backend::Sqlite => ("INTEGER PRIMARY KEY", "JSON"),
        Backend::Postgres => ("SERIAL PRIMARY KEY", "JSONB"),
    }
}

/// A table made with plain SQL behind the server's back: four todos, ids 1..4.
pub async fn todos(s: &TestServer) {
    let (pk, jsonb) = serial(s);
    s.exec_sql(&format!(
        "CREATE TABLE todos (id {pk}, title TEXT NOT NULL, done BOOLEAN, priority INTEGER, tags {jsonb}, meta JSON);
         INSERT INTO todos (title, done, priority, tags, meta) VALUES
           ('write code', TRUE, 1, '[\"work\",\"rust\"]', '{{\"owner\":\"ann\",\"size\":2}}'),
           ('buy milk', FALSE, 2, '[\"home\"]', '{{\"owner\":\"bob\"}}'),
           ('read book', FALSE, NULL, '[]', NULL),
           ('Walk dog', TRUE, 3, '[\"home\",\"pets\"]', '{{\"owner\":\"ann\"}}');"
    ))
    .await;
}

pub fn ids(body: &Value) -> Vec<i64> {
    body.as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .iter()
        .map(|r| r["id"].as_i64().unwrap_or_else(|| panic!("no id in {r}")))
        .collect()
}

/// A GET with headers, anonymous.
pub async fn get_with(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> crate::harness::Resp {
    s.send_with(Method::GET, path, None, headers, None).await
}

both_backends! {
    async fn plain_sql_table_is_served_without_restart(s) {
        let before = s.get("/api/v1/tables/todos").await;
        assert_eq!(before.status, 404, "{}", before.text);
        todos(&s).await;
        let all = s.get("/api/v1/tables/todos").await;
        assert_eq!(all.status, 200, "{}", all.text);
        assert_eq!(ids(&all.body), vec![1, 2, 3, 4]);
        assert_eq!(all.body[0], json!({"id": 1, "title": "write code", "done": true, "priority": 1,
            "tags": ["work", "rust"], "meta": {"owner": "ann", "size": 2}}));
        let one = s.get("/api/v1/tables/todos/2").await;
        assert_eq!(one.status, 200, "{}", one.text);
        assert_eq!(one.body["title"], "buy milk");
        assert_eq!(one.body["done"], false);
        let one = s.get("/api/v1/tables/todos/2?select=title").await;
        assert_eq!(one.body, json!({"title": "buy milk"}));
        assert_eq!(s.get("/api/v1/tables/todos/99").await.status, 404);
        let bad = s.get("/api/v1/tables/todos/abc").await;
        assert_eq!(bad.status, 400, "{}", bad.text);
        assert_eq!(s.get("/api/v1/tables/_fb_users").await.status, 404);
        assert_eq!(s.get("/api/v1/tables/nope").await.status, 404);
        // A table without a single-column primary key: lists work, by-id routes refuse.
        s.exec_sql("CREATE TABLE pairs (a INTEGER, b INTEGER, PRIMARY KEY (a, b)); INSERT INTO pairs VALUES (1, 2), (3, 4);").await;
        let list = s.get("/api/v1/tables/pairs?a=gt.1").await;
        assert_eq!(list.body, json!([{"a": 3, "b": 4}]));
        let by_id = s.get("/api/v1/tables/pairs/1").await;
        assert_eq!(by_id.status, 400);
        assert!(by_id.error().contains("primary key"), "{}", by_id.text);
    }

    async fn every_operator(s) {
        todos(&s).await;
        let cases: &[(&str, &[i64])] = &[
            ("id=eq.2", &[2]),
            ("id=neq.2", &[1, 3, 4]),
            ("priority=gt.1", &[2, 4]),
            ("priority=gte.2", &[2, 4]),
            ("priority=lt.2", &[1]),
            ("priority=lte.2", &[1, 2]),
            ("title=like.*o*", &[1, 3, 4]),
            ("title=like.w*", &[1]),
            ("title=ilike.w*", &[1, 4]),
            ("id=in.(1,3)", &[1, 3]),
            ("priority=is.null", &[3]),
            ("done=is.true", &[1, 4]),
            ("done=is.false", &[2, 3]),
            ("done=eq.true", &[1, 4]),
            ("priority=not.is.null", &[1, 2, 4]),
            ("id=not.in.(1,2)", &[3, 4]),
            ("id.gt=1&id.lt=4", &[2, 3]),
            ("id=gt.1&id=lt.4", &[2, 3]),
            ("priority.is.null", &[3]),
            ("or=(id.eq.1,priority.eq.3)", &[1, 4]),
            ("or=(id.eq.1,and(done.is.false,priority.is.null))", &[1, 3]),
            ("not.or=(id.eq.1,id.eq.2)", &[3, 4]),
            ("and=(done.is.true,priority.gt.1)", &[4]),
            ("tags=cs.{home}", &[2, 4]),
            ("tags=cs.[\"home\",\"pets\"]", &[4]),
            ("tags=cd.{home,pets}", &[2, 3, 4]),
            ("tags=not.cs.{home}", &[1, 3]),
            ("meta=cs.{\"owner\":\"ann\"}", &[1, 4]),
            ("meta=cd.{\"owner\":\"ann\",\"size\":2}", &[1, 4]),
            ("meta=cs.{\"size\":2}", &[1]),
        ];
        for (query, expected) in cases {
            let resp = s.get(&format!("/api/v1/tables/todos?{query}")).await;
            assert_eq!(resp.status, 200, "{query}: {}", resp.text);
            assert_eq!(ids(&resp.body), *expected, "{query}");
        }
        // A backslash escapes the next character of a pattern, on both backends.
        let made = s.admin_post("/api/v1/tables/todos", json!([{"title": "a_b"}, {"title": "axb"}, {"title": "p%q"}, {"title": "pq"}])).await;
        assert_eq!(ids(&made.body), vec![5, 6, 7, 8]);
        for (pattern, expected) in [("a\\_b", vec![5]), ("a_b", vec![5, 6]), ("p\\%25q", vec![7]), ("A\\_B", vec![])] {
            let resp = s.get(&format!("/api/v1/tables/todos?title=like.{pattern}&order=id")).await;
            assert_eq!(ids(&resp.body), expected, "{pattern}: {}", resp.text);
        }
        let resp = s.get("/api/v1/tables/todos?title=ilike.A\\_B").await;
        assert_eq!(ids(&resp.body), vec![5]);
        // Case is folded beyond ASCII, as PostgreSQL's ILIKE does.
        let made = s.admin_post("/api/v1/tables/todos", json!([{"title": "Élan Ωmega"}, {"title": "straße"}, {"title": "İstanbul"}])).await;
        assert_eq!(ids(&made.body), vec![9, 10, 11]);
        for (pattern, expected) in [("élan*", vec![9]), ("*ΩMEGA", vec![9]), ("*É*", vec![9]), ("STRASSE", vec![]), ("*SSE", vec![]), ("istanbul", vec![11]), ("İSTANBUL", vec![11])] {
            let resp = s.get(&format!("/api/v1/tables/todos?title=ilike.{pattern}&order=id")).await;
            assert_eq!(ids(&resp.body), expected, "{pattern}: {}", resp.text);
        }
        let resp = s.get("/api/v1/tables/todos?title=like.a\\").await;
        assert_eq!((resp.status, resp.body["code"].as_str()), (400, Some("22P02")), "{}", resp.text);
        // A top-level value is taken as written, quotes and all, as PostgREST reads it; only
        // inside or=(…) do quotes protect a value (and then are not part of it).
        let made = s.admin_post("/api/v1/tables/todos", json!([{"title": "\"quoted\""}, {"title": "quoted"}, {"title": "a,b"}])).await;
        assert_eq!(ids(&made.body), vec![12, 13, 14]);
        for (query, expected) in [
            ("title=eq.%22quoted%22", vec![12]),
            ("title=like.%22quo*", vec![12]),
            ("title=eq.quoted", vec![13]),
            ("or=(title.eq.%22quoted%22,title.eq.%22a,b%22)", vec![13, 14]),
            ("or=(title.eq.%22%5C%22quoted%5C%22%22)", vec![12]),
        ] {
            let resp = s.get(&format!("/api/v1/tables/todos?{query}&order=id")).await;
            assert_eq!(ids(&resp.body), expected, "{query}: {}", resp.text);
        }
        let deleted = s.send(Method::DELETE, "/api/v1/tables/todos?title=eq.%22quoted%22", Some(ADMIN_SECRET), None).await;
        assert_eq!(deleted.status, 204, "{}", deleted.text);
        assert_eq!(ids(&s.get("/api/v1/tables/todos?title=like.*quoted*&order=id").await.body), vec![13], "only the quoted row went");
    }

    async fn keywords_range_and_count(s) {
        todos(&s).await;
        let resp = s.get("/api/v1/tables/todos?select=id,label:title&order=priority.desc.nullslast&limit=2").await;
        assert_eq!(resp.body, json!([{"id": 4, "label": "Walk dog"}, {"id": 2, "label": "buy milk"}]));
        assert_eq!(resp.header("content-range"), Some("0-1/*"));
        let resp = s.get("/api/v1/tables/todos?order=priority.asc.nullsfirst").await;
        assert_eq!(ids(&resp.body), vec![3, 1, 2, 4]);
        // Unplaced, nulls sort as PostgREST sorts them: the largest value.
        let resp = s.get("/api/v1/tables/todos?order=priority").await;
        assert_eq!(ids(&resp.body), vec![1, 2, 4, 3]);
        let resp = s.get("/api/v1/tables/todos?order=priority.desc").await;
        assert_eq!(ids(&resp.body), vec![3, 4, 2, 1]);
        let resp = s.get("/api/v1/tables/todos?order=done.desc,title").await;
        assert_eq!(ids(&resp.body), vec![4, 1, 2, 3]);
        let resp = s.get("/api/v1/tables/todos?limit=2&offset=1").await;
        assert_eq!(ids(&resp.body), vec![2, 3]);
        assert_eq!(resp.header("content-range"), Some("1-2/*"));
        let resp = s.get("/api/v1/tables/todos?limit=2&count=exact").await;
        assert_eq!(resp.header("content-range"), Some("0-1/4"));
        assert_eq!(resp.status, 206, "a counted part of the rows is partial content");
        let resp = s.get("/api/v1/tables/todos?limit=4&count=exact").await;
        assert_eq!((resp.status, resp.header("content-range")), (200, Some("0-3/4")));
        let resp = s.get("/api/v1/tables/todos?offset=4&count=exact").await;
        assert_eq!((resp.status, resp.header("content-range")), (206, Some("*/4")));
        let resp = s.get("/api/v1/tables/todos?offset=10&count=exact").await;
        assert_eq!((resp.status, resp.header("content-range"), resp.body["code"].as_str()), (416, Some("*/4"), Some("PGRST103")), "{}", resp.text);
        assert!(resp.error().contains("only 4 rows"), "{}", resp.text);
        assert_eq!(s.get("/api/v1/tables/todos?offset=10").await.status, 200, "uncounted: nothing to compare with");
        let resp = get_with(&s, "/api/v1/tables/todos", &[("Range", "1-2"), ("Range-Unit", "items"), ("Prefer", "count=exact")]).await;
        assert_eq!(ids(&resp.body), vec![2, 3]);
        assert_eq!(resp.header("content-range"), Some("1-2/4"));
        assert_eq!(resp.header("preference-applied"), Some("count=exact"));
        let resp = s.get("/api/v1/tables/todos?id=gt.10&count=exact").await;
        assert_eq!(resp.body, json!([]));
        assert_eq!(resp.header("content-range"), Some("*/0"));
        // HEAD: the headers without the body (postgrest-js `head: true`).
        let head = s.send_with(Method::HEAD, "/api/v1/tables/todos?done=is.true", None, &[("Prefer", "count=exact")], None).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.text, "");
        assert_eq!(head.header("content-range"), Some("0-1/2"));
        // One object for postgrest-js's .single(); 406 unless exactly one row.
        let single = ("Accept", "application/vnd.pgrst.object+json");
        let resp = get_with(&s, "/api/v1/tables/todos?id=eq.2&select=id", &[single]).await;
        assert_eq!(resp.body, json!({"id": 2}));
        let resp = get_with(&s, "/api/v1/tables/todos?done=is.true", &[single]).await;
        assert_eq!(resp.status, 406, "{}", resp.text);
        assert!(resp.error().contains("exactly one"));
        let resp = get_with(&s, "/api/v1/tables/todos?id=eq.99", &[single]).await;
        assert_eq!(resp.status, 406);
        let resp = get_with(&s, "/api/v1/tables/todos?id=eq.2&select=id", &[single]).await;
        assert_eq!(resp.header("content-type"), Some("application/vnd.pgrst.object+json"));
        // CSV for postgrest-js's .csv(): quoted where needed, null empty, JSON as its text.
        s.admin_post("/api/v1/tables/todos", json!({"title": "say \"hi\", twice", "tags": ["a", "b"]})).await;
        let csv = get_with(&s, "/api/v1/tables/todos?select=id,title,priority,tags&id=in.(1,5)&order=id", &[("Accept", "text/csv")]).await;
        assert_eq!(csv.status, 200, "{}", csv.text);
        assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
        assert_eq!(csv.text, "id,title,priority,tags\r\n1,write code,1,\"[\"\"work\"\",\"\"rust\"\"]\"\r\n5,\"say \"\"hi\"\", twice\",,\"[\"\"a\"\",\"\"b\"\"]\"\r\n");
        let one = get_with(&s, "/api/v1/tables/todos/2?select=id,done", &[("Accept", "text/csv")]).await;
        assert_eq!(one.text, "id,done\r\n2,false\r\n");
        // A representation it cannot make is a 406; a wildcard or a list with JSON is JSON.
        for accept in ["application/xml", "image/png, text/html"] {
            let resp = get_with(&s, "/api/v1/tables/todos", &[("Accept", accept)]).await;
            assert_eq!((resp.status, resp.body["code"].as_str()), (406, Some("PGRST107")), "{accept}: {}", resp.text);
            assert!(resp.error().contains("text/csv"), "{}", resp.text);
        }
        for accept in ["*/*", "application/xml, application/json", "application/json;q=0.9", "text/csv;q=0, application/*"] {
            let resp = get_with(&s, "/api/v1/tables/todos?id=eq.1&select=id", &[("Accept", accept)]).await;
            assert_eq!((resp.status, resp.body.clone()), (200, json!([{"id": 1}])), "{accept}");
        }
    }

    async fn bad_input_is_400_naming_it(s) {
        todos(&s).await;
        let cases: &[(&str, &str)] = &[
            ("nope=eq.1", "nope"),
            ("id=zz.1", "zz"),
            ("bogus=1", "bogus"),
            ("select=id,nope", "nope"),
            ("order=nope.desc", "nope"),
            ("order=id.sideways", "sideways"),
            ("id=eq.abc", "abc"),
            ("done=eq.maybe", "maybe"),
            ("priority=like.1*", "like"),
            ("tags=eq.x", "tags"),
            ("title=cs.{a}", "cs"),
            ("tags=cs.3", "cs"),
            ("select=id,", "select"),
            ("select=id,author!inner(*)", "!inner"),
            ("select=*,todos(*)", "todos"),
            ("or=(id.eq.1", "or"),
            ("limit=x", "limit"),
            ("offset=-1", "offset"),
            ("count=maybe", "count"),
            ("on_conflict=id", "on_conflict"),
            ("columns=id", "columns"),
            ("id=in.(1,x)", "x"),
        ];
        for (query, named) in cases {
            let resp = s.get(&format!("/api/v1/tables/todos?{query}")).await;
            assert_eq!(resp.status, 400, "{query}: {}", resp.text);
            assert!(resp.error().contains(named), "{query}: {}", resp.text);
        }
        for (headers, named) in [
            (vec![("Range", "9-0")], "Range"),
            (vec![("Range", "0-9"), ("Range-Unit", "bytes")], "Range-Unit"),
            (vec![("Prefer", "count=maybe")], "preference"),
        ] {
            let resp = get_with(&s, "/api/v1/tables/todos", &headers).await;
            assert_eq!(resp.status, 400, "{headers:?}: {}", resp.text);
            assert!(resp.error().contains(named), "{}", resp.text);
        }
        let resp = s.get("/api/v1/tables/todos/1?id=eq.1").await;
        assert_eq!(resp.status, 400, "{}", resp.text);
    }

    async fn embeds_through_foreign_keys_both_ways(s) {
        let (pk, _) = serial(&s);
        s.exec_sql(&format!(
            "CREATE TABLE authors (id {pk}, name TEXT NOT NULL);
             CREATE TABLE posts (id {pk}, title TEXT, author_id INTEGER REFERENCES authors(id));
             CREATE TABLE comments (id {pk}, post_id INTEGER REFERENCES posts(id), body TEXT);
             INSERT INTO authors (name) VALUES ('ann'), ('bob');
             INSERT INTO posts (title, author_id) VALUES ('p1', 1), ('p2', 2), ('p3', NULL);
             INSERT INTO comments (post_id, body) VALUES (1, 'c1'), (1, 'c2'), (2, 'c3');"
        ))
        .await;
        let resp = s.get("/api/v1/tables/posts?select=title,authors(name)").await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.body, json!([
            {"title": "p1", "authors": {"name": "ann"}},
            {"title": "p2", "authors": {"name": "bob"}},
            {"title": "p3", "authors": null},
        ]));
        let resp = s.get("/api/v1/tables/posts?select=*,writer:authors(*)&id=eq.1").await;
        assert_eq!(resp.body, json!([{"id": 1, "title": "p1", "author_id": 1, "writer": {"id": 1, "name": "ann"}}]));
        let resp = s.get("/api/v1/tables/posts?select=id,comments(body)").await;
        assert_eq!(resp.body, json!([
            {"id": 1, "comments": [{"body": "c1"}, {"body": "c2"}]},
            {"id": 2, "comments": [{"body": "c3"}]},
            {"id": 3, "comments": []},
        ]));
        let resp = s.get("/api/v1/tables/authors?select=name,posts(title)&name=eq.ann").await;
        assert_eq!(resp.body, json!([{"name": "ann", "posts": [{"title": "p1"}]}]));
        let resp = s.get("/api/v1/tables/posts/2?select=title,authors(name)").await;
        assert_eq!(resp.body, json!({"title": "p2", "authors": {"name": "bob"}}));
        let nested = s.get("/api/v1/tables/posts?select=id,comments(body,posts(*))").await;
        assert_eq!(nested.status, 400, "{}", nested.text);
        assert!(nested.error().contains("nested"));
        let unrelated = s.get("/api/v1/tables/comments?select=id,authors(*)").await;
        assert_eq!(unrelated.status, 400);
        assert!(unrelated.error().contains("authors"));

        // Each answer name once: a column named again (or by `*` again) is shown once; two
        // things under one name are a 400. Columns and embeds are bounded.
        let stars = vec!["*"; 499].join(",");
        for select in [format!("{stars},title"), "title,title,id,*".to_owned(), "*,authors(name,name,*)".to_owned()] {
            let resp = s.get(&format!("/api/v1/tables/posts?select={select}&id=eq.1")).await;
            assert_eq!(resp.status, 200, "{select}: {}", resp.text);
            assert!(resp.text.matches("\"title\"").count() == 1, "{}", resp.text);
        }
        for select in ["title:id,title", "authors(*),authors(*)", "a:authors(*),a:authors(name)", "*,id:title"] {
            let resp = s.get(&format!("/api/v1/tables/posts?select={select}")).await;
            assert_eq!(resp.status, 400, "{select}: {}", resp.text);
            assert!(resp.error().contains("answer name"), "{}", resp.text);
        }
        let aliases: Vec<String> = (0..501).map(|i| format!("c{i}:title")).collect();
        let resp = s.get(&format!("/api/v1/tables/posts?select={}", aliases.join(","))).await;
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert!(resp.error().contains("MAX_SELECT_ITEMS"), "{}", resp.text);
        let embeds: Vec<String> = (0..17).map(|i| format!("a{i}:authors(name)")).collect();
        let resp = s.get(&format!("/api/v1/tables/posts?select={}", embeds.join(","))).await;
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert!(resp.error().contains("MAX_SELECT_EMBEDS"), "{}", resp.text);
        let embeds: Vec<String> = (0..16).map(|i| format!("a{i}:authors(name)")).collect();
        let resp = s.get(&format!("/api/v1/tables/posts?select=id,{}&id=eq.1", embeds.join(","))).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.body[0]["a15"], json!({"name": "ann"}));
        for (conflict, says) in [(vec!["id"; 1_000].join(","), "MAX_COLUMNS"), ("id,id".to_owned(), "twice")] {
            let resp = s.admin_post(&format!("/api/v1/tables/posts?on_conflict={conflict}"), json!({"id": 1, "title": "x"})).await;
            assert_eq!(resp.status, 400, "{}", resp.text);
            assert!(resp.error().contains(says), "{}", resp.text);
        }
        // The embedded table's read rule: rows the caller may not read are left out.
        let resp = s.admin_patch("/api/v1/admin/collections/authors", json!({"rules": {"read": "authenticated"}})).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.body["rules"]["read"], "authenticated");
        let resp = s.get("/api/v1/tables/posts?select=title,authors(name)&id=eq.1").await;
        assert_eq!(resp.body, json!([{"title": "p1", "authors": null}]));
        let resp = s.send(Method::GET, "/api/v1/tables/posts?select=title,authors(name)&id=eq.1", Some(ADMIN_SECRET), None).await;
        assert_eq!(resp.body, json!([{"title": "p1", "authors": {"name": "ann"}}]));
        assert_eq!(s.get("/api/v1/tables/authors").await.status, 401);
    }

    async fn two_foreign_keys_to_one_table_are_told_apart_by_a_hint(s) {
        let (pk, _) = serial(&s);
        s.exec_sql(&format!(
            "CREATE TABLE people (id {pk}, name TEXT NOT NULL);
             CREATE TABLE docs (id {pk}, title TEXT, author_id INTEGER REFERENCES people(id),
                                editor_id INTEGER CONSTRAINT docs_editor_id_fkey REFERENCES people(id));
             INSERT INTO people (name) VALUES ('ann'), ('bob');
             INSERT INTO docs (title, author_id, editor_id) VALUES ('d1', 1, 2), ('d2', 2, NULL);"
        ))
        .await;
        // Unhinted, the embed is ambiguous, and the refusal names the keys and the way out.
        for path in ["/api/v1/tables/docs?select=id,people(name)", "/api/v1/tables/people?select=id,docs(title)"] {
            let resp = s.get(path).await;
            assert_eq!(resp.status, 400, "{path}: {}", resp.text);
            assert!(resp.error().contains("author_id, editor_id") && resp.error().contains("!author_id("), "{}", resp.text);
        }
        // A hint names the key by its column or by its constraint (PostgreSQL's default name
        // on SQLite too); `!left` is the join embeds make anyway.
        let both = s.get("/api/v1/tables/docs?select=title,author:people!author_id(name),editor:people!docs_editor_id_fkey!left(name)&order=id").await;
        assert_eq!(both.status, 200, "{}", both.text);
        assert_eq!(both.body, json!([
            {"title": "d1", "author": {"name": "ann"}, "editor": {"name": "bob"}},
            {"title": "d2", "author": {"name": "bob"}, "editor": null},
        ]));
        let by_column = s.get("/api/v1/tables/docs?select=title,author_id(name)&order=id").await;
        assert_eq!(by_column.body, json!([{"title": "d1", "author_id": {"name": "ann"}}, {"title": "d2", "author_id": {"name": "bob"}}]), "{}", by_column.text);
        let edited = s.get("/api/v1/tables/people?select=name,edited:docs!editor_id(title)&order=id").await;
        assert_eq!(edited.body, json!([{"name": "ann", "edited": []}, {"name": "bob", "edited": [{"title": "d1"}]}]), "{}", edited.text);
        for select in ["people!nothing(name)", "people!inner(name)", "title_id(name)"] {
            let resp = s.get(&format!("/api/v1/tables/docs?select=id,{select}")).await;
            assert_eq!(resp.status, 400, "{select}: {}", resp.text);
        }
    }

    async fn embeds_through_relations(s) {
        s.open_collection("people").await;
        s.open_collection("articles").await;
        let resp = s.admin_post("/api/v1/admin/relations", json!({"collection": "articles", "field": "author", "target": "people"})).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        let resp = s.admin_post("/api/v1/admin/relations", json!({"collection": "articles", "field": "editors", "target": "people", "many": true})).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        let people = s.seed("people", &[json!({"name": "ann"}), json!({"name": "bob"})]).await;
        let (ann, bob) = (people[0]["_id"].as_str().unwrap(), people[1]["_id"].as_str().unwrap());
        s.seed("articles", &[json!({"title": "a1", "author": ann, "editors": [ann, bob]}), json!({"title": "a2"})]).await;
        let resp = s.get("/api/v1/tables/articles?select=title,author(name),editors(name)&order=title").await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.body, json!([
            {"title": "a1", "author": {"name": "ann"}, "editors": [{"name": "ann"}, {"name": "bob"}]},
            {"title": "a2", "author": null, "editors": []},
        ]));
        // A relation field embedded under its own name shows the embed, once, in JSON and CSV.
        let resp = s.get("/api/v1/tables/articles?select=*,author(name)&title=eq.a1").await;
        assert_eq!(resp.text.matches("\"author\"").count(), 1, "{}", resp.text);
        assert_eq!(resp.body[0]["author"], json!({"name": "ann"}));
        let csv = get_with(&s, "/api/v1/tables/articles?select=title,author,author(name)&title=eq.a1", &[("accept", "text/csv")]).await;
        assert_eq!(csv.text.lines().next(), Some("title,author"), "{}", csv.text);
        // Reverse direction through the relation: people with their articles.
        let resp = s.get("/api/v1/tables/people?select=name,articles(title)&order=name").await;
        assert_eq!(resp.body, json!([{"name": "ann", "articles": [{"title": "a1"}]}, {"name": "bob", "articles": []}]));
        // Two single relations back make the reverse embed ambiguous, not the first one's.
        let resp = s.admin_post("/api/v1/admin/relations", json!({"collection": "articles", "field": "reviewer", "target": "people"})).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        let resp = s.get("/api/v1/tables/people?select=name,articles(title)&order=name").await;
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert!(resp.error().contains("ambiguous") && resp.error().contains("reviewer"), "{}", resp.text);
        // The target's read rule applies.
        s.admin_patch("/api/v1/admin/collections/people", json!({"rules": {"read": "authenticated"}})).await;
        let resp = s.get("/api/v1/tables/articles?select=title,author(name)&title=eq.a1").await;
        assert_eq!(resp.body, json!([{"title": "a1", "author": null}]));
    }

    async fn access_rules_apply(s) {
        let resp = s.admin_post("/api/v1/admin/collections", json!({"name": "notes", "rules": {"read": "owner"}})).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        let ann = s.register("ann@example.com", "password-ann-1").await["access_token"].as_str().unwrap().to_owned();
        let bob = s.register("bob@example.com", "password-bob-1").await["access_token"].as_str().unwrap().to_owned();
        let created = s.as_user(Method::POST, "/api/v1/tables/notes", &ann, Some(json!({"text": "mine"}))).await;
        assert_eq!(created.status, 400, "no auto-created columns here: {}", created.text);
        s.admin_post("/api/v1/admin/collections/notes/records", json!({"text": "seed"})).await;
        let created = s.as_user(Method::POST, "/api/v1/tables/notes", &ann, Some(json!({"text": "mine"}))).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.body["_id"].as_str().unwrap().to_owned();
        assert!(created.body["_owner_id"].is_string());
        assert_eq!(s.post("/api/v1/tables/notes", json!({"text": "anon"})).await.status, 401);
        // Reads: anonymous 401, another user sees nothing of ann's (404 by id).
        assert_eq!(s.get("/api/v1/tables/notes").await.status, 401);
        let path = format!("/api/v1/tables/notes/{id}");
        assert_eq!(s.as_user(Method::GET, &path, &bob, None).await.status, 404);
        assert_eq!(s.as_user(Method::GET, "/api/v1/tables/notes", &bob, None).await.body, json!([]));
        assert_eq!(s.as_user(Method::GET, &path, &ann, None).await.body["text"], "mine");
        // Writes: refused to others (404: they may not even read it), allowed to the owner.
        assert_eq!(s.as_user(Method::PATCH, &path, &bob, Some(json!({"text": "x"}))).await.status, 404);
        assert_eq!(s.send(Method::PATCH, &path, None, Some(json!({"text": "x"}))).await.status, 401);
        s.admin_patch("/api/v1/admin/collections/notes", json!({"rules": {"read": "public"}})).await;
        assert_eq!(s.as_user(Method::PATCH, &path, &bob, Some(json!({"text": "x"}))).await.status, 403);
        assert_eq!(s.as_user(Method::DELETE, &path, &bob, None).await.status, 403);
        let changed = s.as_user(Method::PATCH, &path, &ann, Some(json!({"text": "changed"}))).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        assert_eq!(changed.body["text"], "changed");
        // A plain table: read public, create authenticated, update and delete owner, which
        // without an _owner_id column admits only the admin, until the admin sets rules.
        todos(&s).await;
        assert_eq!(s.post("/api/v1/tables/todos", json!({"title": "t"})).await.status, 401);
        assert_eq!(s.as_user(Method::POST, "/api/v1/tables/todos", &bob, Some(json!({"title": "t"}))).await.status, 201);
        let refused = s.as_user(Method::PATCH, "/api/v1/tables/todos/1", &bob, Some(json!({"done": false}))).await;
        assert_eq!(refused.status, 403, "{}", refused.text);
        assert_eq!(s.as_user(Method::DELETE, "/api/v1/tables/todos?id=eq.1", &bob, None).await.status, 403);
        let resp = s.admin_patch("/api/v1/admin/collections/todos", json!({"rules": {"update": "authenticated"}})).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let allowed = s.as_user(Method::PATCH, "/api/v1/tables/todos/1", &bob, Some(json!({"done": false}))).await;
        assert_eq!(allowed.status, 200, "{}", allowed.text);
        assert_eq!(s.admin_get("/api/v1/admin/collections/todos").await.status, 404, "still not a collection");
        let resp = s.admin_patch("/api/v1/admin/collections/todos", json!({"rules": {"read": "disabled"}})).await;
        assert_eq!(resp.status, 200);
        assert_eq!(s.get("/api/v1/tables/todos").await.status, 401);
        assert_eq!(s.as_user(Method::GET, "/api/v1/tables/todos", &bob, None).await.status, 403);
    }

    async fn plural_endpoints_reach_singular_tables(s) {
        let (pk, _) = serial(&s);
        s.exec_sql(&format!(
            "CREATE TABLE category (id {pk}, name TEXT);
             CREATE TABLE box (id {pk}, name TEXT);
             CREATE TABLE item (id {pk}, name TEXT);
             CREATE TABLE items (id {pk}, name TEXT);
             CREATE TABLE team_person (id {pk}, name TEXT);
             INSERT INTO team_person (name) VALUES ('p');
             INSERT INTO category (name) VALUES ('c');
             INSERT INTO box (name) VALUES ('b');
             INSERT INTO item (name) VALUES ('singular');
             INSERT INTO items (name) VALUES ('plural');"
        ))
        .await;
        for (path, name) in [
            ("/api/v1/tables/categories", "c"),
            ("/api/v1/tables/category", "c"),
            ("/api/v1/tables/boxes", "b"),
            ("/api/v1/tables/items", "plural"),
            ("/api/v1/tables/item", "singular"),
            ("/api/v1/tables/team_people", "p"),
        ] {
            let resp = s.admin_get(path).await;
            assert_eq!(resp.status, 200, "{path}: {}", resp.text);
            assert_eq!(resp.body[0]["name"], name, "{path}");
        }
        let made = s.admin_post("/api/v1/tables/boxes", json!({"name": "b2"})).await;
        assert_eq!(made.status, 201, "{}", made.text);
        assert_eq!(s.admin_get("/api/v1/tables/box?name=eq.b2").await.body[0]["name"], "b2");
        assert_eq!(s.admin_get("/api/v1/tables/boxs").await.status, 404);
        let doc = s.get("/api/v1/openapi.json").await.body;
        for path in ["/api/v1/tables/category", "/api/v1/tables/categories", "/api/v1/tables/boxes", "/api/v1/tables/items"] {
            assert!(doc["paths"][path]["get"].is_object(), "{path} is in the OpenAPI document");
        }
    }

    async fn table_errors_carry_postgrest_fields(s) {
        todos(&s).await;
        // One schema is served: `public` may be named, another is a 406.
        let public = s.send_with(Method::GET, "/api/v1/tables/todos?select=id", None, &[("accept-profile", "public")], None).await;
        assert_eq!(public.status, 200, "{}", public.text);
        for (method, header) in [(Method::GET, "accept-profile"), (Method::POST, "content-profile")] {
            let other = s.send_with(method.clone(), "/api/v1/tables/todos", Some(ADMIN_SECRET), &[(header, "private")], Some(json!({"title": "x"}))).await;
            assert_eq!((other.status, other.body["code"].as_str()), (406, Some("PGRST106")), "{method}: {}", other.text);
        }
        assert_eq!(s.get("/api/v1/tables/todos?title=eq.x").await.body, json!([]), "nothing written");
        let resp = s.admin_get("/api/v1/tables/todos?nosuch=eq.1").await;
        assert_eq!(resp.status, 400);
        assert_eq!(resp.body["message"], resp.body["error"]);
        assert_eq!(resp.body["code"], "42703");
        assert!(resp.body.get("details").is_some() && resp.body["hint"].is_null(), "{}", resp.text);
        let resp = s.admin_post("/api/v1/tables/todos", json!({"nosuch": 1})).await;
        assert_eq!((resp.body["code"].as_str(), resp.body["details"].as_str()), (Some("PGRST204"), Some("field 'nosuch'")));
        // A collection on this surface adds no field: the same code.
        s.open_collection("notes").await;
        let resp = s.post("/api/v1/tables/notes", json!({"nosuch": 1})).await;
        assert_eq!((resp.status, resp.body["code"].as_str()), (400, Some("PGRST204")), "{}", resp.text);
        let resp = s.admin_get("/api/v1/tables/todos?or=(a.eq.1").await;
        assert_eq!(resp.body["code"], "PGRST100");
        let resp = s.get("/api/v1/tables/nosuch").await;
        assert_eq!((resp.status, resp.body["code"].as_str()), (404, Some("42P01")));
        // Errors that come before a table's handler carry the fields too: an unknown route, a
        // method no route takes, a URL too long, maintenance mode and the rate limiter.
        let long = format!("/api/v1/tables/todos?title=eq.{}", "x".repeat(40_000));
        let refusals = [
            s.send(Method::PUT, "/api/v1/tables/todos", None, Some(json!({}))).await,
            s.send(Method::PATCH, "/api/v1/tables/todos/1/extra", None, Some(json!({}))).await,
            s.get(&long).await,
        ];
        for (resp, status) in refusals.iter().zip([405, 404, 414]) {
            assert_eq!(resp.status, status, "{}", resp.text);
            assert_eq!(resp.body["message"], resp.body["error"], "{}", resp.text);
            assert!(resp.body["code"].is_string() && resp.body["hint"].is_null(), "{}", resp.text);
        }
        s.set_settings(json!({"maintenance_mode": true})).await;
        let resp = s.get("/api/v1/tables/todos").await;
        assert_eq!((resp.status, &resp.body["message"]), (503, &resp.body["error"]), "{}", resp.text);
        assert!(resp.body["code"].is_string(), "{}", resp.text);
        s.set_settings(json!({"maintenance_mode": false, "rate_limit_public_reads": 1})).await;
        s.get("/api/v1/tables/todos").await;
        let resp = s.get("/api/v1/tables/todos").await;
        assert_eq!((resp.status, &resp.body["message"]), (429, &resp.body["error"]), "{}", resp.text);
        assert!(resp.body["code"].is_string(), "{}", resp.text);
        s.set_settings(json!({"rate_limit_public_reads": 0})).await;
        // Values the column's type cannot take, and NUL (which no stored text holds), alike on
        // both backends.
        for query in ["id=eq.x", "id=in.(1,x)", "title=eq.a%00b", "title=like.a%00*", "or=(title.eq.a%00)", "select=title,id&title=in.(%00)"] {
            let resp = s.admin_get(&format!("/api/v1/tables/todos?{query}")).await;
            assert_eq!((resp.status, resp.body["code"].as_str()), (400, Some("22P02")), "{query}: {}", resp.text);
        }
        let resp = s.admin_post("/api/v1/tables/todos", json!({"title": "x", "tags": ["a\u{0}b"]})).await;
        assert_eq!(resp.status, 400, "jsonb cannot hold NUL: {}", resp.text);
        // No table's name holds NUL: a path naming one names no table.
        for path in ["/api/v1/tables/todos%00", "/api/v1/tables/todos%00/1"] {
            let resp = s.admin_get(path).await;
            assert_eq!((resp.status, resp.body["code"].as_str()), (404, Some("42P01")), "{path}: {}", resp.text);
        }
        // A column added behind the server's back is found at once, in a query or a body.
        s.exec_sql("ALTER TABLE todos ADD COLUMN extra2 TEXT").await;
        let resp = s.admin_get("/api/v1/tables/todos?select=id,extra2&id=eq.1").await;
        assert_eq!((resp.status, resp.body), (200, json!([{"id": 1, "extra2": null}])), "{}", resp.text);
        s.exec_sql("ALTER TABLE todos ADD COLUMN extra3 TEXT").await;
        let resp = s.admin_post("/api/v1/tables/todos", json!({"title": "t", "extra3": "x"})).await;
        assert_eq!((resp.status, &resp.body["extra3"]), (201, &json!("x")), "{}", resp.text);
        // A value past an integer column's width is compared, not refused.
        assert_eq!(s.admin_get("/api/v1/tables/todos?priority=gt.3000000000").await.body, json!([]));
        assert_eq!(ids(&s.admin_get("/api/v1/tables/todos?priority=lt.3000000000&order=id").await.body), vec![1, 2, 4]);
        assert_eq!(ids(&s.admin_get("/api/v1/tables/todos?id=in.(1,9000000000)").await.body), vec![1]);
        let resp = s.admin_get("/api/v1/tables/todos?select=_id_nope").await;
        assert_eq!((resp.status, resp.body["code"].as_str()), (400, Some("42703")));
        let resp = s.admin_post("/api/v1/tables/todos", json!([{"title": "ok"}, {"title": 5}])).await;
        assert_eq!(resp.body["details"], "item 1, field 'title'", "{}", resp.text);
        assert_eq!(resp.body["index"], 1);
        // The collections surface keeps its own contract: {"error"} (and field, index) only.
        let resp = s.admin_get("/api/v1/todos").await;
        assert!(resp.body.get("message").is_none() && resp.body.get("code").is_none(), "{}", resp.text);
    }
}
