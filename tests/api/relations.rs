//! Relations: admin CRUD, expand (single and many, honouring the target's read rule) and
//! on_delete restrict / cascade / set_null.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, TestServer};

async fn relation(s: &TestServer, body: Value) -> Value {
    let resp = s.admin_post("/api/v1/admin/relations", body.clone()).await;
    assert_eq!(resp.status, 201, "{body}: {}", resp.text);
    resp.body
}

/// The relations the admin lists, as `collection.field>target`.
async fn relations(s: &TestServer) -> Vec<String> {
    let resp = s.admin_get("/api/v1/admin/relations").await;
    let all = resp.body["relations"].as_array().or(resp.body.as_array()).cloned().unwrap_or_default();
    all.iter()
        .map(|r| {
            format!(
                "{}.{}>{}",
                r["collection"].as_str().unwrap(),
                r["field"].as_str().unwrap(),
                r["target"].as_str().unwrap()
            )
        })
        .collect()
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

both_backends! {
    async fn relations_admin_and_bad_input(s) {
        for c in ["authors", "posts"] {
            s.open_collection(c).await;
        }
        s.seed("posts", &[json!({"title": "t", "views": 1})]).await;
        let made = relation(&s, json!({"collection": "posts", "field": "author", "target": "authors"})).await;
        assert_eq!(made["on_delete"], "restrict");
        assert_eq!(made["many"], false);
        let schema = s.admin_get("/api/v1/admin/collections/posts/schema").await;
        assert!(schema.text.contains("\"author\""), "the field was created");
        for (body, status) in [
            (json!({"collection": "posts", "field": "author", "target": "authors"}), 409),
            (json!({"collection": "posts", "field": "x", "target": "nope"}), 400),
            (json!({"collection": "nope", "field": "x", "target": "authors"}), 404),
            (json!({"collection": "posts", "field": "views", "target": "authors"}), 400),
            (json!({"collection": "posts", "field": "_owner_id", "target": "authors"}), 400),
            (json!({"collection": "posts", "field": "y", "target": "authors", "on_delete": "explode"}), 400),
            (json!({"collection": "posts", "field": "y", "target": "authors", "extra": 1}), 400),
            (json!({"collection": "posts", "target": "authors"}), 400),
        ] {
            let resp = s.admin_post("/api/v1/admin/relations", body.clone()).await;
            assert_eq!(resp.status, status, "{body}: {}", resp.text);
        }
        assert_eq!(s.admin_get("/api/v1/admin/relations").await.body["relations"].as_array().unwrap().len(), 1);
        let rid = made["id"].as_str().unwrap();
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/relations/{rid}")).await.status, 200);
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/relations/{rid}")).await.status, 404);
        assert_eq!(s.get("/api/v1/admin/relations").await.status, 401);

        // A `many` relation over a field already written: its values must be lists of ids.
        let writers: Vec<String> = s.seed("authors", &[json!({"name": "x"}), json!({"name": "y"})]).await.iter().map(id).collect();
        let a = s.seed("posts", &[json!({"title": "a", "tags": writers}), json!({"title": "b", "tags": null})]).await;
        let many = json!({"collection": "posts", "field": "tags", "target": "authors", "many": true});
        for bad in [json!({"k": "x"}), json!("x"), json!([1, 2]), json!(["x", ["y"]]), json!(vec!["id"; 1001])] {
            let odd = s.seed("posts", &[json!({"title": "odd", "tags": bad})]).await;
            let refused = s.admin_post("/api/v1/admin/relations", many.clone()).await;
            assert_eq!(refused.status, 409, "{bad}: {}", refused.text);
            assert!(refused.error().contains("1 records of 'posts'"), "{}", refused.text);
            let odd_id = id(&odd[0]);
            assert_eq!(s.admin_delete(&format!("/api/v1/admin/collections/posts/records/{odd_id}")).await.status, 200);
        }
        assert_eq!(relations(&s).await, Vec::<String>::new(), "nothing was kept of the refusals");
        // A new field that differs from one only in case is no new field (one column on SQLite).
        for (field, many) in [("TAGS", true), ("Title", false)] {
            let clash = s.admin_post("/api/v1/admin/relations", json!({"collection": "posts", "field": field, "target": "authors", "many": many})).await;
            assert_eq!(clash.status, 400, "{field}: {}", clash.text);
            assert!(clash.error().contains("clashes"), "{}", clash.text);
        }
        let schema = s.admin_get("/api/v1/admin/collections/posts/schema").await;
        assert!(!schema.text.contains("\"TAGS\"") && !schema.text.contains("\"Title\""), "no column was added: {}", schema.text);
        let made = relation(&s, many).await;
        assert_eq!(made["many"], true, "arrays of ids and nulls fit: {a:?}");
    }

    async fn expand_inlines_related_records(s) {
        for c in ["authors", "tags", "posts"] {
            s.open_collection(c).await;
        }
        relation(&s, json!({"collection": "posts", "field": "author", "target": "authors"})).await;
        relation(&s, json!({"collection": "posts", "field": "tags", "target": "tags", "many": true})).await;
        let authors = s.seed("authors", &[json!({"name": "Ada"}), json!({"name": "Bob"})]).await;
        let tags = s.seed("tags", &[json!({"label": "rust"}), json!({"label": "db"})]).await;
        let p1 = &s.seed("posts", &[json!({"title": "one", "author": id(&authors[0]), "tags": [id(&tags[0]), id(&tags[1])]})]).await[0];
        s.seed("posts", &[json!({"title": "two", "author": id(&authors[1]), "tags": []}), json!({"title": "three"})]).await;

        let one = s.get(&format!("/api/v1/posts/{}?expand=author,tags", id(p1))).await;
        assert_eq!(one.status, 200, "{}", one.text);
        assert_eq!(one.body["expand"]["author"]["name"], "Ada");
        let labels: Vec<&str> = one.body["expand"]["tags"].as_array().unwrap().iter().map(|t| t["label"].as_str().unwrap()).collect();
        assert_eq!(labels, vec!["rust", "db"]);
        let list = s.get("/api/v1/posts?expand=author&sort=_created_at").await;
        assert_eq!(list.status, 200, "{}", list.text);
        let names: Vec<Value> = list.body["items"].as_array().unwrap().iter().map(|p| p["expand"]["author"]["name"].clone()).collect();
        assert_eq!(names, vec![json!("Ada"), json!("Bob"), Value::Null]);
        assert_eq!(list.body["total"], 3);
        assert!(s.get("/api/v1/posts").await.body["items"][0].get("expand").is_none());
        // A projection without the relation's field still expands it, and shows only what it names.
        let projected = s.get("/api/v1/posts?expand=author&fields=title&sort=_created_at").await;
        assert_eq!(projected.status, 200, "{}", projected.text);
        let first = projected.body["items"][0].as_object().unwrap();
        assert_eq!(first.keys().collect::<Vec<_>>(), vec!["title", "expand"], "{}", projected.text);
        assert_eq!(first["expand"]["author"]["name"], "Ada");
        let one_projected = s.get(&format!("/api/v1/posts/{}?expand=tags&fields=title", id(p1))).await;
        assert_eq!(one_projected.body["title"], "one");
        assert!(one_projected.body.get("tags").is_none(), "{}", one_projected.text);
        assert_eq!(one_projected.body["expand"]["tags"].as_array().map(Vec::len), Some(2));
        assert_eq!(s.get("/api/v1/posts?expand=title").await.status, 400);
        // A `many` relation holds an array of ids, nothing else.
        for tags in [json!("notarray"), json!([1, 2]), json!({"id": "x"})] {
            let resp = s.post("/api/v1/posts", json!({"title": "bad", "tags": tags})).await;
            assert_eq!((resp.status, resp.body["field"].clone()), (400, json!("tags")), "{tags}: {}", resp.text);
        }
        // Text never holds NUL, on either backend.
        let nul = s.post("/api/v1/posts", json!({"title": "a\u{0}b"})).await;
        assert_eq!((nul.status, nul.body["field"].clone()), (400, json!("title")), "{}", nul.text);
        assert_eq!(s.get(&format!("/api/v1/posts/{}?expand=nope", id(p1))).await.status, 400);

        // Records of a collection the caller may not read are left out.
        s.admin_patch("/api/v1/admin/collections/tags", json!({"rules": {"read": "disabled"}})).await;
        let hidden = s.get(&format!("/api/v1/posts/{}?expand=author,tags", id(p1))).await;
        assert_eq!(hidden.status, 200);
        assert_eq!(hidden.body["expand"]["author"]["name"], "Ada");
        assert!(hidden.body["expand"].get("tags").is_none(), "{}", hidden.text);
        assert_eq!(s.admin_get(&format!("/api/v1/posts/{}?expand=tags", id(p1))).await.body["expand"]["tags"].as_array().unwrap().len(), 2);
    }

    async fn on_delete_restrict_cascade_set_null(s) {
        for c in ["authors", "threads", "editors", "tags", "posts", "comments"] {
            s.open_collection(c).await;
        }
        relation(&s, json!({"collection": "posts", "field": "author", "target": "authors", "on_delete": "restrict"})).await;
        relation(&s, json!({"collection": "comments", "field": "thread", "target": "threads", "on_delete": "cascade"})).await;
        relation(&s, json!({"collection": "posts", "field": "editor", "target": "editors", "on_delete": "set_null"})).await;
        relation(&s, json!({"collection": "posts", "field": "tags", "target": "tags", "many": true, "on_delete": "set_null"})).await;
        let author = id(&s.seed("authors", &[json!({"name": "Ada"})]).await[0]);
        let thread = id(&s.seed("threads", &[json!({"topic": "t"})]).await[0]);
        let editor = id(&s.seed("editors", &[json!({"name": "Ed"})]).await[0]);
        let tags: Vec<String> = s.seed("tags", &[json!({"label": "a"}), json!({"label": "b"})]).await.iter().map(id).collect();
        let post = id(&s.seed("posts", &[json!({"title": "p", "author": author, "editor": editor, "tags": tags})]).await[0]);
        s.seed("comments", &[json!({"text": "c1", "thread": thread}), json!({"text": "c2", "thread": thread})]).await;

        let refused = s.send(Method::DELETE, &format!("/api/v1/authors/{author}"), None, None).await;
        assert_eq!(refused.status, 409, "{}", refused.text);
        let through_tables = s.send(Method::DELETE, &format!("/api/v1/tables/authors/{author}"), None, None).await;
        assert_eq!((through_tables.status, through_tables.body["code"].as_str()), (409, Some("23503")), "a foreign-key refusal, not a uniqueness one: {}", through_tables.text);
        assert_eq!(s.get(&format!("/api/v1/authors/{author}")).await.status, 200, "restrict: nothing deleted");
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/collections/authors/records/{author}")).await.status, 409);

        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/threads/{thread}"), None, None).await.status, 200);
        assert_eq!(s.get("/api/v1/comments/count").await.body["count"], 0, "cascade: the comments went with the thread");

        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/editors/{editor}"), None, None).await.status, 200);
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/tags/{}", tags[0]), None, None).await.status, 200);
        let after = s.get(&format!("/api/v1/posts/{post}")).await;
        assert!(after.body["editor"].is_null(), "set_null: {}", after.text);
        assert_eq!(after.body["tags"], json!([tags[1]]), "set_null on many removes the id");

        // Once nothing refers to the author, it can go.
        s.send(Method::PATCH, &format!("/api/v1/posts/{post}"), None, Some(json!({"author": null}))).await;
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/authors/{author}"), None, None).await.status, 200);
    }

    async fn a_cascade_applies_the_relations_of_the_records_it_deletes(s) {
        for c in ["ha", "hb", "hc", "hd"] {
            s.open_collection(c).await;
        }
        // ha ← hb (cascade) ← hc (cascade) ← hd (restrict).
        relation(&s, json!({"collection": "hb", "field": "a", "target": "ha", "on_delete": "cascade"})).await;
        relation(&s, json!({"collection": "hc", "field": "b", "target": "hb", "on_delete": "cascade"})).await;
        relation(&s, json!({"collection": "hd", "field": "c", "target": "hc", "on_delete": "restrict"})).await;
        let a = id(&s.seed("ha", &[json!({"n": 1})]).await[0]);
        let b = id(&s.seed("hb", &[json!({"a": a})]).await[0]);
        let c = id(&s.seed("hc", &[json!({"b": b})]).await[0]);
        let d = id(&s.seed("hd", &[json!({"c": c})]).await[0]);
        // Two levels down, a restrict still protects its record: nothing is deleted.
        for (soft, path) in [(true, format!("/api/v1/ha/{a}")), (false, format!("/api/v1/admin/collections/ha/records/{a}"))] {
            let refused = s.send(Method::DELETE, &path, Some(ADMIN_SECRET), None).await;
            assert_eq!(refused.status, 409, "soft {soft}: {}", refused.text);
            assert!(refused.error().contains("hd.c"), "{}", refused.text);
            for (collection, record) in [("ha", &a), ("hb", &b), ("hc", &c)] {
                assert_eq!(s.get(&format!("/api/v1/{collection}/{record}")).await.status, 200, "{collection} kept");
            }
        }
        // Without the restricting record, the cascade goes all the way down.
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/collections/hd/records/{d}")).await.status, 200);
        let deleted = s.send(Method::DELETE, &format!("/api/v1/ha/{a}"), Some(ADMIN_SECRET), None).await;
        assert_eq!(deleted.status, 200, "{}", deleted.text);
        for collection in ["ha", "hb", "hc"] {
            assert_eq!(s.get(&format!("/api/v1/{collection}/count")).await.body["count"], 0, "{collection}");
        }
        // A chain of cascades deeper than MAX_CASCADE_DEPTH (16) is refused whole.
        s.open_collection("chain").await;
        relation(&s, json!({"collection": "chain", "field": "up", "target": "chain", "on_delete": "cascade"})).await;
        let mut up = id(&s.seed("chain", &[json!({"n": 0})]).await[0]);
        let top = up.clone();
        for n in 1..=17 {
            up = id(&s.seed("chain", &[json!({"n": n, "up": up})]).await[0]);
        }
        let deep = s.admin_delete(&format!("/api/v1/admin/collections/chain/records/{top}")).await;
        assert_eq!(deep.status, 400, "{}", deep.text);
        assert!(deep.error().contains("MAX_CASCADE_DEPTH"), "{}", deep.text);
        assert_eq!(s.get("/api/v1/chain/count").await.body["count"], 18, "nothing deleted");
        let middle = s.get("/api/v1/chain?filter=n:eq:2").await.body["items"][0]["_id"].as_str().unwrap().to_owned();
        let within = s.admin_delete(&format!("/api/v1/admin/collections/chain/records/{middle}")).await;
        assert_eq!(within.status, 200, "{}", within.text);
        assert_eq!(s.get("/api/v1/chain/count").await.body["count"], 2, "16 levels below n=2 went with it");
    }

    async fn relation_fields_name_live_records(s) {
        for c in ["authors", "tags", "posts"] {
            s.open_collection(c).await;
        }
        relation(&s, json!({"collection": "posts", "field": "author", "target": "authors"})).await;
        relation(&s, json!({"collection": "posts", "field": "tags", "target": "tags", "many": true})).await;
        let ada = id(&s.seed("authors", &[json!({"name": "Ada"})]).await[0]);
        let gone = id(&s.seed("authors", &[json!({"name": "Gone"})]).await[0]);
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/authors/{gone}"), None, None).await.status, 200);
        let tag = id(&s.seed("tags", &[json!({"label": "rust"})]).await[0]);
        let ghost = "0190a0a0-0000-7000-8000-000000000000";
        // The tables surface adds no fields: a first post makes them.
        s.seed("posts", &[json!({"title": "first", "author": ada, "tags": [tag]})]).await;

        // Creates: an id the target does not hold, or holds soft-deleted, is refused.
        for (body, named) in [
            (json!({"title": "x", "author": ghost}), ghost),
            (json!({"title": "x", "author": gone}), gone.as_str()),
            (json!({"title": "x", "author": ada, "tags": [tag, ghost]}), ghost),
        ] {
            let refused = s.post("/api/v1/posts", body.clone()).await;
            assert_eq!(refused.status, 409, "{body}: {}", refused.text);
            assert!(refused.error().contains(named), "the message names the id: {}", refused.text);
            let tables = s.post("/api/v1/tables/posts", body.clone()).await;
            assert_eq!((tables.status, tables.body["code"].as_str()), (409, Some("23503")), "{body}: {}", tables.text);
        }
        let number = s.post("/api/v1/posts", json!({"title": "x", "author": 42})).await;
        assert_eq!((number.status, number.body["field"].as_str()), (400, Some("author")), "{}", number.text);
        assert_eq!(s.get("/api/v1/posts/count").await.body["count"], 1, "nothing written");
        let bulk = s.post("/api/v1/posts/bulk", json!([{"title": "a", "author": ada}, {"title": "b", "author": ghost}])).await;
        assert_eq!((bulk.status, bulk.body["index"].clone()), (409, json!(1)), "{}", bulk.text);
        assert_eq!(s.get("/api/v1/posts/count").await.body["count"], 1, "a bulk is all or nothing");

        // Live ids, repeated ids and nulls are taken.
        let made = s.post("/api/v1/posts", json!({"title": "ok", "author": ada, "tags": [tag, tag]})).await;
        assert_eq!(made.status, 201, "{}", made.text);
        let post = id(&made.body);
        assert_eq!(s.post("/api/v1/posts", json!({"title": "none", "author": null, "tags": []})).await.status, 201);

        // Updates: by id on both surfaces, and by filter on the tables surface.
        for (method, path) in [
            (Method::PATCH, format!("/api/v1/posts/{post}")),
            (Method::PATCH, format!("/api/v1/tables/posts?_id=eq.{post}")),
        ] {
            for body in [json!({"author": ghost}), json!({"tags": [ghost]}), json!({"author": gone})] {
                let refused = s.send(method.clone(), &path, None, Some(body.clone())).await;
                assert_eq!(refused.status, 409, "{path} {body}: {}", refused.text);
            }
        }
        let kept = s.get(&format!("/api/v1/posts/{post}")).await;
        assert_eq!((kept.body["author"].as_str(), kept.body["tags"].clone()), (Some(ada.as_str()), json!([tag, tag])), "{}", kept.text);
        let batch = s.post("/api/v1/posts/batch", json!({"operations": [
            {"op": "update", "id": post, "data": {"title": "renamed"}},
            {"op": "update", "id": post, "data": {"author": ghost}},
        ]})).await;
        assert_eq!((batch.status, batch.body["index"].clone()), (409, json!(1)), "{}", batch.text);
        assert_eq!(s.get(&format!("/api/v1/posts/{post}")).await.body["title"], "ok", "the batch wrote nothing");
        let cleared = s.send(Method::PATCH, &format!("/api/v1/posts/{post}"), None, Some(json!({"author": null, "tags": null}))).await;
        assert_eq!(cleared.status, 200, "{}", cleared.text);

        // A record restored is live again, and can be named.
        assert_eq!(s.admin_post(&format!("/api/v1/authors/{gone}/restore"), json!({})).await.status, 200);
        let renamed = s.send(Method::PATCH, &format!("/api/v1/posts/{post}"), None, Some(json!({"author": gone}))).await;
        assert_eq!(renamed.status, 200, "{}", renamed.text);

        // A restore of a record whose related record went meanwhile is refused, until it is back.
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/posts/{post}"), None, None).await.status, 200);
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/authors/{gone}"), None, None).await.status, 200);
        let restored = s.post(&format!("/api/v1/posts/{post}/restore"), json!({})).await;
        assert_eq!(restored.status, 409, "{}", restored.text);
        assert_eq!(s.get(&format!("/api/v1/posts/{post}")).await.status, 404, "still deleted");
        assert_eq!(s.admin_post(&format!("/api/v1/authors/{gone}/restore"), json!({})).await.status, 200);
        assert_eq!(s.post(&format!("/api/v1/posts/{post}/restore"), json!({})).await.status, 200);

        // A record the caller may not read is answered as one that is not there; the admin may
        // name it.
        s.open_collection("vault").await;
        let secret = id(&s.seed("vault", &[json!({"k": 1})]).await[0]);
        s.admin_patch("/api/v1/admin/collections/vault", json!({"rules": {"read": "disabled"}})).await;
        relation(&s, json!({"collection": "posts", "field": "safe", "target": "vault"})).await;
        let hidden = s.post("/api/v1/posts", json!({"title": "h", "safe": secret})).await;
        let missing = s.post("/api/v1/posts", json!({"title": "h", "safe": ghost})).await;
        assert_eq!((hidden.status, missing.status), (409, 409), "{} {}", hidden.text, missing.text);
        assert_eq!(hidden.error().replace(&secret, "ID"), missing.error().replace(ghost, "ID"), "the same words");
        assert_eq!(s.admin_post("/api/v1/posts", json!({"title": "h", "safe": secret})).await.status, 201);
    }

    async fn a_relation_over_values_that_name_no_record_is_refused(s) {
        for c in ["people", "notes"] {
            s.open_collection(c).await;
        }
        // A column of the target named as the field does not stand in for the field.
        let ada = id(&s.seed("people", &[json!({"name": "Ada", "by": "someone", "seen": "x"})]).await[0]);
        let ghost = "0190a0a0-0000-7000-8000-000000000000";
        let stray = id(&s.seed("notes", &[json!({"by": ghost, "seen": [ada, ghost]}), json!({"by": ada, "seen": [ada]})]).await[0]);
        for (body, field) in [
            (json!({"collection": "notes", "field": "by", "target": "people"}), "by"),
            (json!({"collection": "notes", "field": "seen", "target": "people", "many": true}), "seen"),
        ] {
            let refused = s.admin_post("/api/v1/admin/relations", body.clone()).await;
            assert_eq!(refused.status, 409, "{body}: {}", refused.text);
            assert!(refused.error().contains("1 records of 'notes'") && refused.error().contains(field), "{}", refused.text);
        }
        assert_eq!(relations(&s).await, Vec::<String>::new(), "nothing was kept of the refusals");
        // A soft-deleted record is no reason to refuse (a restore checks its own).
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/notes/{stray}"), None, None).await.status, 200);
        relation(&s, json!({"collection": "notes", "field": "by", "target": "people"})).await;
        relation(&s, json!({"collection": "notes", "field": "seen", "target": "people", "many": true})).await;
        assert_eq!(s.post(&format!("/api/v1/notes/{stray}/restore"), json!({})).await.status, 409);
    }


    async fn relations_go_with_the_collection_or_field_that_holds_or_targets_them(s) {
        for c in ["src", "tgt", "other"] {
            s.open_collection(c).await;
        }
        relation(&s, json!({"collection": "src", "field": "ref", "target": "tgt", "on_delete": "cascade"})).await;
        relation(&s, json!({"collection": "other", "field": "refs", "target": "tgt", "many": true, "on_delete": "set_null"})).await;
        relation(&s, json!({"collection": "other", "field": "src", "target": "src", "on_delete": "restrict"})).await;
        let target = id(&s.seed("tgt", &[json!({"n": 1})]).await[0]);
        s.seed("src", &[json!({"ref": target})]).await;
        s.seed("other", &[json!({"refs": [target]})]).await;

        // The source collection dropped: its relations go, and so do those that target it.
        assert_eq!(s.admin_delete("/api/v1/admin/collections/src").await.status, 200);
        assert_eq!(relations(&s).await, vec!["other.refs>tgt".to_owned()]);
        // A field dropped: the relation it held goes.
        assert_eq!(s.admin_delete("/api/v1/admin/collections/other/schema/refs").await.status, 200);
        assert!(relations(&s).await.is_empty());
        // Records of the former target delete as any other, on both surfaces.
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/tgt/{target}"), None, None).await.status, 200);
        assert_eq!(s.admin_delete(&format!("/api/v1/admin/collections/tgt/records/{target}")).await.status, 200);
        let another = id(&s.seed("tgt", &[json!({"n": 2})]).await[0]);
        assert_eq!(s.send(Method::DELETE, &format!("/api/v1/tables/tgt?_id=eq.{another}"), Some(ADMIN_SECRET), None).await.status, 204);
        // The relation can be made again once its collection is back.
        s.open_collection("src").await;
        relation(&s, json!({"collection": "src", "field": "ref", "target": "tgt", "on_delete": "cascade"})).await;
    }
}

both_backends! {
    async fn batch_deletes_apply_on_delete(s) {
        for c in ["authors", "posts", "threads", "comments"] {
            s.open_collection(c).await;
        }
        relation(&s, json!({"collection": "posts", "field": "author", "target": "authors", "on_delete": "restrict"})).await;
        relation(&s, json!({"collection": "comments", "field": "thread", "target": "threads", "on_delete": "cascade"})).await;
        let author = id(&s.seed("authors", &[json!({"name": "Ada"})]).await[0]);
        s.seed("posts", &[json!({"title": "p", "author": author})]).await;
        let thread = id(&s.seed("threads", &[json!({"topic": "t"})]).await[0]);
        s.seed("comments", &[json!({"thread": thread}), json!({"thread": thread})]).await;

        let restricted = s.post("/api/v1/authors/batch", json!({"operations": [
            {"op": "create", "data": {"name": "Bob"}},
            {"op": "delete", "id": author},
        ]})).await;
        assert_eq!(restricted.status, 409, "{}", restricted.text);
        assert_eq!(restricted.body["index"], 1);
        assert_eq!(s.get("/api/v1/authors/count").await.body["count"], 1, "nothing written");

        let cascaded = s.post("/api/v1/threads/batch", json!({"operations": [
            {"op": "create", "data": {"topic": "new"}},
            {"op": "delete", "id": thread},
            {"op": "create", "data": {"topic": "newer"}},
        ]})).await;
        assert_eq!(cascaded.status, 200, "{}", cascaded.text);
        assert_eq!(cascaded.body["results"][1], json!({"_id": thread, "deleted": true}));
        assert_eq!(cascaded.body["results"][2]["topic"], "newer", "results stay aligned with operations");
        assert_eq!(s.get("/api/v1/comments/count").await.body["count"], 0);
    }
}
