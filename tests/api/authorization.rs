//! The authorization matrix: anonymous, user A, user B, a user with a role and the admin
//! against every record endpoint of both surfaces, on collections with `owner` and `role`
//! rules. Nobody sees or changes what is not theirs, and a refused request changes nothing:
//! not the records, not the related records, not the schema.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, TestServer};

/// A's text: no answer to anyone but A and the admin may hold it.
const SECRET: &str = "A-SECRET";

struct Callers {
    a: String,
    b: String,
    editor: String,
}

fn token(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_owned()
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap().to_owned()
}

/// Everything a refused request must leave as it was: A's records (deleted ones too), the
/// records related to them, the board, and the collections' fields.
async fn state(s: &TestServer) -> Value {
    let mut out = serde_json::Map::new();
    for path in [
        "/api/v1/notes?include_deleted=true&sort=_created_at&limit=500",
        "/api/v1/comments?include_deleted=true&sort=_created_at&limit=500",
        "/api/v1/board?include_deleted=true&sort=_created_at&limit=500",
        "/api/v1/admin/collections/notes/schema",
        "/api/v1/admin/collections/comments/schema",
        "/api/v1/admin/collections/board/schema",
    ] {
        let resp = s.admin_get(path).await;
        assert_eq!(resp.status, 200, "{path}: {}", resp.text);
        out.insert(path.to_owned(), resp.body);
    }
    // Records other callers made (allowed creates) are theirs, not part of A's state.
    let docs = &mut out["/api/v1/notes?include_deleted=true&sort=_created_at&limit=500"];
    let owner = docs["items"][0]["_owner_id"].clone();
    docs["items"].as_array_mut().unwrap().retain(|r| r["_owner_id"] == owner);
    docs["total"] = Value::Null;
    Value::Object(out)
}

async fn setup(s: &TestServer) -> (Callers, Vec<String>) {
    let owner_rules = json!({"read": "owner", "create": "authenticated", "update": "owner", "delete": "owner"});
    s.admin_post("/api/v1/admin/collections", json!({"name": "notes", "rules": owner_rules})).await;
    let public_read = json!({"read": "public", "create": "authenticated", "update": "owner", "delete": "owner"});
    s.admin_post("/api/v1/admin/collections", json!({"name": "comments", "rules": public_read})).await;
    let editors = json!({"role": "editor"});
    let role_rules = json!({"read": editors, "create": editors, "update": editors, "delete": editors});
    s.admin_post("/api/v1/admin/collections", json!({"name": "board", "rules": role_rules})).await;
    let field_rules = json!({"slug": {"type": "string", "unique": true}, "title": {"type": "string"}});
    let put = s.send(Method::PUT, "/api/v1/admin/collections/notes/rules", Some(ADMIN_SECRET), Some(field_rules)).await;
    assert_eq!(put.status, 200, "{}", put.text);
    let relation = json!({"collection": "comments", "field": "doc", "target": "notes", "on_delete": "cascade"});
    assert_eq!(s.admin_post("/api/v1/admin/relations", relation).await.status, 201);
    let relation = json!({"collection": "comments", "field": "notes_many", "target": "notes", "many": true, "on_delete": "set_null"});
    assert_eq!(s.admin_post("/api/v1/admin/relations", relation).await.status, 201);

    let a = token(&s.register("a@example.com", "password1").await);
    let b = token(&s.register("b@example.com", "password1").await);
    let editor_reg = s.register("editor@example.com", "password1").await;
    let editor_id = editor_reg["user"]["id"].as_str().unwrap().to_owned();
    let roles = s.admin_patch(&format!("/api/v1/admin/users/{editor_id}/roles"), json!({"roles": ["editor"]})).await;
    assert_eq!(roles.status, 200);
    let editor = token(&s.login("editor@example.com", "password1").await.body);

    let mut a_docs = Vec::new();
    for (slug, title) in [("a-one", SECRET), ("a-two", SECRET), ("a-gone", SECRET)] {
        let resp = s.as_user(Method::POST, "/api/v1/notes", &a, Some(json!({"slug": slug, "title": title}))).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        a_docs.push(id(&resp.body));
    }
    assert_eq!(s.as_user(Method::DELETE, &format!("/api/v1/notes/{}", a_docs[2]), &a, None).await.status, 200);
    let b_doc = s.as_user(Method::POST, "/api/v1/notes", &b, Some(json!({"slug": "b-one", "title": "B's"}))).await;
    assert_eq!(b_doc.status, 201);
    let comment = json!({"text": "on A's doc", "doc": a_docs[0], "notes_many": [a_docs[0], a_docs[1]]});
    assert_eq!(s.as_user(Method::POST, "/api/v1/comments", &a, Some(comment)).await.status, 201);
    assert_eq!(
        s.as_user(Method::POST, "/api/v1/board", &editor, Some(json!({"note": "editors only"}))).await.status,
        201
    );
    (Callers { a, b, editor }, a_docs)
}

/// One request of the matrix, and the answers that count as refused for it.
struct Attack {
    method: Method,
    path: String,
    body: Option<Value>,
    headers: Vec<(&'static str, &'static str)>,
    /// Statuses a refused caller may get; a 2xx is only allowed when it shows nothing of A's.
    refused: &'static [u16],
}

fn attack(method: Method, path: impl Into<String>, body: Option<Value>, refused: &'static [u16]) -> Attack {
    Attack { method, path: path.into(), body, headers: Vec::new(), refused }
}

/// Every endpoint that reads or writes A's records, aimed at them.
fn attacks(a_docs: &[String]) -> Vec<Attack> {
    let (one, two, gone) = (&a_docs[0], &a_docs[1], &a_docs[2]);
    let hidden: &[u16] = &[401, 403, 404];
    // Reads that list: refused outright, or answered without A's records.
    let listed: &[u16] = &[200, 206, 401, 403];
    // Writes by filter: refused, or matching none of the caller's rows.
    let filtered: &[u16] = &[204, 401, 403];
    let mut upsert = attack(
        Method::POST,
        "/api/v1/tables/notes?on_conflict=slug",
        Some(json!({"slug": "a-one", "title": "hijacked"})),
        &[201, 401, 403, 409],
    );
    upsert.headers = vec![("prefer", "resolution=merge-duplicates,return=representation")];
    let mut single = attack(Method::GET, format!("/api/v1/tables/notes?_id=eq.{one}"), None, &[401, 403, 406]);
    single.headers = vec![("accept", "application/vnd.pgrst.object+json")];
    vec![
        // Collections surface.
        attack(Method::GET, format!("/api/v1/notes/{one}"), None, hidden),
        attack(Method::GET, "/api/v1/notes", None, listed),
        attack(Method::GET, "/api/v1/notes?include_deleted=true", None, listed),
        attack(Method::GET, "/api/v1/notes/count", None, listed),
        attack(Method::GET, "/api/v1/notes/aggregate?op=count&group_by=title", None, listed),
        attack(Method::GET, "/api/v1/notes?search=SECRET", None, listed),
        attack(Method::GET, "/api/v1/comments?expand=doc,notes_many", None, listed),
        attack(Method::GET, format!("/api/v1/notes?after={one}&sort=_created_at"), None, &[400, 401, 403]),
        attack(Method::PATCH, format!("/api/v1/notes/{one}"), Some(json!({"title": "hacked", "newfield": 1})), hidden),
        attack(Method::DELETE, format!("/api/v1/notes/{one}"), None, hidden),
        attack(Method::POST, format!("/api/v1/notes/{gone}/restore"), None, hidden),
        attack(Method::POST, "/api/v1/notes/bulk", Some(json!([{"slug": "a-one", "title": "dup"}])), &[401, 403, 409]),
        attack(
            Method::POST,
            "/api/v1/notes/batch",
            Some(json!({"operations": [{"op": "update", "id": two, "data": {"title": "hacked", "other": 1}}]})),
            hidden,
        ),
        attack(Method::POST, "/api/v1/notes/batch", Some(json!({"operations": [{"op": "delete", "id": one}]})), hidden),
        attack(Method::GET, format!("/api/v1/admin/collections/notes/records/{one}"), None, &[401, 403]),
        attack(Method::DELETE, format!("/api/v1/admin/collections/notes/records/{one}"), None, &[401, 403]),
        // Tables surface.
        attack(Method::GET, format!("/api/v1/tables/notes/{one}"), None, hidden),
        attack(Method::GET, "/api/v1/tables/notes?select=*", None, listed),
        attack(Method::GET, "/api/v1/tables/notes?title=fts.SECRET", None, listed),
        attack(Method::HEAD, "/api/v1/tables/notes?count=exact", None, listed),
        attack(Method::GET, "/api/v1/tables/comments?select=*,doc(*),notes_many(*)", None, listed),
        single,
        attack(Method::PATCH, format!("/api/v1/tables/notes/{one}"), Some(json!({"title": "hacked"})), hidden),
        attack(Method::PATCH, format!("/api/v1/tables/notes?_id=eq.{one}"), Some(json!({"title": "hacked"})), filtered),
        attack(
            Method::PUT,
            format!("/api/v1/tables/notes/{one}"),
            Some(json!({"slug": "x", "title": "hacked"})),
            hidden,
        ),
        attack(Method::DELETE, format!("/api/v1/tables/notes/{one}"), None, hidden),
        attack(Method::DELETE, "/api/v1/tables/notes?title=eq.A-SECRET", None, filtered),
        upsert,
    ]
}

/// The attacks on the role-only board, for callers without the role.
fn board_attacks(board_id: &str) -> Vec<Attack> {
    let refused: &[u16] = &[401, 403];
    vec![
        attack(Method::GET, "/api/v1/board", None, refused),
        attack(Method::GET, format!("/api/v1/board/{board_id}"), None, refused),
        attack(Method::POST, "/api/v1/board", Some(json!({"note": "x", "extra": 1})), refused),
        attack(
            Method::PATCH,
            format!("/api/v1/board/{board_id}"),
            Some(json!({"note": "hacked", "extra": 1})),
            refused,
        ),
        attack(Method::DELETE, format!("/api/v1/board/{board_id}"), None, refused),
        attack(Method::GET, "/api/v1/tables/board", None, refused),
        attack(Method::DELETE, format!("/api/v1/tables/board?_id=eq.{board_id}"), None, refused),
    ]
}

async fn send(s: &TestServer, caller: Option<&str>, a: &Attack) -> crate::harness::Resp {
    s.send_with(a.method.clone(), &a.path, caller, &a.headers, a.body.clone()).await
}

both_backends! {
    async fn nobody_sees_or_changes_what_is_not_theirs(s) {
        let (callers, a_docs) = setup(&s).await;
        let board_id = id(&s.as_user(Method::GET, "/api/v1/board", &callers.editor, None).await.body["items"][0]);
        let before = state(&s).await;

        // B, the editor (whose role the docs' owner rules do not care about) and anonymous.
        for (name, caller) in [("user B", Some(callers.b.as_str())), ("the editor", Some(callers.editor.as_str())), ("anonymous", None)] {
            for a in attacks(&a_docs) {
                let resp = send(&s, caller, &a).await;
                assert!(a.refused.contains(&resp.status), "{name}: {} {} → {} {}", a.method, a.path, resp.status, resp.text);
                assert!(!resp.text.contains(SECRET), "{name}: {} {} shows A's record: {}", a.method, a.path, resp.text);
            }
            assert_eq!(state(&s).await, before, "{name} changed something");
        }
        // A and B (no role) against the editors' board.
        for (name, caller) in [("user A", Some(callers.a.as_str())), ("user B", Some(callers.b.as_str())), ("anonymous", None)] {
            for a in board_attacks(&board_id) {
                let resp = send(&s, caller, &a).await;
                assert!(a.refused.contains(&resp.status), "{name}: {} {} → {} {}", a.method, a.path, resp.status, resp.text);
                assert!(!resp.text.contains("editors only"), "{name} read the board: {}", resp.text);
            }
            assert_eq!(state(&s).await, before, "{name} changed the board");
        }

        // What B sees is exactly B's.
        let list = s.as_user(Method::GET, "/api/v1/notes", &callers.b, None).await;
        assert_eq!(list.body["total"], 1);
        assert_eq!(s.as_user(Method::GET, "/api/v1/notes/count", &callers.b, None).await.body["count"], 1);
        let rows = s.as_user(Method::GET, "/api/v1/tables/notes", &callers.b, None).await;
        assert_eq!(rows.body.as_array().map(Vec::len), Some(1), "{}", rows.text);
        let expanded = s.as_user(Method::GET, "/api/v1/comments?expand=doc,notes_many", &callers.b, None).await;
        assert!(expanded.body["items"][0]["expand"]["doc"].is_null(), "{}", expanded.text);
        assert_eq!(expanded.body["items"][0]["expand"]["notes_many"], json!([]));

        // The owner, the editor on the board, and the admin are allowed, on the same endpoints.
        let a = &callers.a;
        assert_eq!(s.as_user(Method::GET, &format!("/api/v1/notes/{}", a_docs[0]), a, None).await.status, 200);
        assert_eq!(s.as_user(Method::GET, "/api/v1/notes", a, None).await.body["total"], 2);
        let embedded = s.as_user(Method::GET, "/api/v1/tables/comments?select=*,doc(title)", a, None).await;
        assert_eq!(embedded.body[0]["doc"]["title"], SECRET, "{}", embedded.text);
        let patched = s.as_user(Method::PATCH, &format!("/api/v1/tables/notes/{}", a_docs[1]), a, Some(json!({"title": "mine"}))).await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        let restored = s.as_user(Method::POST, &format!("/api/v1/notes/{}/restore", a_docs[2]), a, None).await;
        assert_eq!(restored.status, 200, "{}", restored.text);
        let upsert = s.send_with(Method::POST, "/api/v1/tables/notes?on_conflict=slug", Some(a),
            &[("prefer", "resolution=merge-duplicates,return=representation")], Some(json!({"slug": "a-one", "title": "upserted"}))).await;
        assert_eq!(upsert.status, 201, "{}", upsert.text);
        assert_eq!(s.as_user(Method::GET, &format!("/api/v1/notes/{}", a_docs[0]), a, None).await.body["title"], "upserted");
        assert_eq!(s.as_user(Method::DELETE, &format!("/api/v1/notes/{}", a_docs[0]), a, None).await.status, 200);
        let comments = s.get("/api/v1/comments").await;
        assert_eq!(comments.body["total"], 0, "the owner's delete cascades: {}", comments.text);
        let board = s.as_user(Method::PATCH, &format!("/api/v1/board/{board_id}"), &callers.editor, Some(json!({"note": "edited"}))).await;
        assert_eq!(board.status, 200, "{}", board.text);
        assert_eq!(s.admin_get("/api/v1/board").await.body["total"], 1);
        assert_eq!(s.admin_get("/api/v1/notes").await.body["total"], 3, "A's two live records and B's");
    }
}

both_backends! {
    async fn a_broader_update_or_delete_rule_never_reaches_records_the_caller_may_not_read(s) {
        // Editors may change and delete any record, but read only their own.
        let editors = json!({"role": "editor"});
        let rules = json!({"read": "owner", "create": "authenticated", "update": editors, "delete": editors});
        assert_eq!(s.admin_post("/api/v1/admin/collections", json!({"name": "vault", "rules": rules})).await.status, 201);
        let owner = token(&s.register("owner@example.com", "password1").await);
        let editor_id = s.register("ed@example.com", "password1").await["user"]["id"].as_str().unwrap().to_owned();
        assert_eq!(s.admin_patch(&format!("/api/v1/admin/users/{editor_id}/roles"), json!({"roles": ["editor"]})).await.status, 200);
        let editor = token(&s.login("ed@example.com", "password1").await.body);
        let created = s.as_user(Method::POST, "/api/v1/vault", &owner, Some(json!({"secret": SECRET}))).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let record = id(&created.body);
        let path = format!("/api/v1/vault/{record}");
        let table_path = format!("/api/v1/tables/vault/{record}");
        let before = s.admin_get(&format!("/api/v1/admin/collections/vault/records/{record}")).await.text;

        assert_eq!(s.as_user(Method::GET, &path, &editor, None).await.status, 404);
        for (method, target, body) in [
            (Method::PATCH, path.clone(), Some(json!({"secret": "changed"}))),
            (Method::PUT, table_path.clone(), Some(json!({"secret": "changed"}))),
            (Method::PATCH, table_path.clone(), Some(json!({"secret": "changed"}))),
            (Method::DELETE, path.clone(), None),
            (Method::DELETE, table_path.clone(), None),
        ] {
            let resp = s.as_user(method.clone(), &target, &editor, body).await;
            assert_eq!(resp.status, 404, "{method} {target}: {}", resp.text);
            assert!(!resp.text.contains(SECRET), "{method} {target} showed the record: {}", resp.text);
        }
        // A filter on a column the caller may not read matches nothing, and shows nothing.
        let filtered = s.send_with(Method::PATCH, &format!("/api/v1/tables/vault?secret=eq.{SECRET}"), Some(&editor),
            &[("prefer", "return=representation")], Some(json!({"secret": "changed"}))).await;
        assert_eq!(filtered.status, 200, "{}", filtered.text);
        assert_eq!(filtered.body, json!([]));
        let deleted = s.send_with(Method::DELETE, &format!("/api/v1/tables/vault?secret=eq.{SECRET}"), Some(&editor),
            &[("prefer", "return=representation")], None).await;
        assert_eq!(deleted.body, json!([]), "{}", deleted.text);
        assert_eq!(s.admin_get(&format!("/api/v1/admin/collections/vault/records/{record}")).await.text, before);
        // The editor's own record is theirs to read, change and delete.
        let own = s.as_user(Method::POST, "/api/v1/vault", &editor, Some(json!({"secret": "mine"}))).await;
        let own_path = format!("/api/v1/vault/{}", id(&own.body));
        assert_eq!(s.as_user(Method::PATCH, &own_path, &editor, Some(json!({"secret": "still mine"}))).await.status, 200);
        assert_eq!(s.as_user(Method::DELETE, &own_path, &editor, None).await.status, 200);
    }

    async fn an_upsert_meeting_a_record_the_caller_may_not_change_is_refused_whole(s) {
        assert_eq!(s.admin_post("/api/v1/admin/collections", json!({"name": "handles"})).await.status, 201);
        let unique = json!({"email": {"type": "text", "unique": true}});
        assert_eq!(s.send(Method::PUT, "/api/v1/admin/collections/handles/rules", Some(ADMIN_SECRET), Some(unique)).await.status, 200);
        let owner = token(&s.register("owner@example.com", "password1").await);
        let other = token(&s.register("other@example.com", "password1").await);
        let taken = s.as_user(Method::POST, "/api/v1/handles", &owner, Some(json!({"email": "taken@x", "n": 1}))).await;
        assert_eq!(taken.status, 201, "{}", taken.text);
        let merge = [("prefer", "resolution=merge-duplicates,return=representation")];
        let rows = json!([{"email": "taken@x", "n": 99}, {"email": "new@x", "n": 2}]);
        let refused = s.send_with(Method::POST, "/api/v1/tables/handles?on_conflict=email", Some(&other), &merge, Some(rows.clone())).await;
        assert_eq!(refused.status, 403, "{}", refused.text);
        // Nothing of the array was written.
        assert_eq!(s.admin_get("/api/v1/handles").await.body["total"], 1);
        assert_eq!(s.admin_get("/api/v1/handles").await.body["items"][0]["n"], 1);
        // The owner's own upsert merges.
        let merged = s.send_with(Method::POST, "/api/v1/tables/handles?on_conflict=email", Some(&owner), &merge, Some(rows)).await;
        assert_eq!(merged.status, 201, "{}", merged.text);
        assert_eq!(merged.body.as_array().map(Vec::len), Some(2), "{}", merged.text);
        assert_eq!(s.admin_get("/api/v1/handles").await.body["total"], 2);
    }
}
