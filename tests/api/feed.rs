//! The change feed: every record written, by every write path of both surfaces and the
//! admin API, is published exactly once after its commit, with its operation, the record,
//! the record it replaced, who wrote it and its table's sequence number.

use std::sync::Arc;

use ferrobase::data::feed::{ChangeEvent, ChangeOp};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::broadcast::Receiver;

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, Backend, TestServer, read};

/// The events published since the last call. Writes publish before they answer, so every
/// event of a finished request is already there.
fn drain(rx: &mut Receiver<Arc<ChangeEvent>>) -> Vec<Arc<ChangeEvent>> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// `(table, op, id)` of each event.
fn summary(events: &[Arc<ChangeEvent>]) -> Vec<(String, ChangeOp, String)> {
    events.iter().map(|e| (e.collection.clone(), e.op, e.id.clone().unwrap_or_default())).collect()
}

fn field(record: &Option<ferrobase::data::feed::RecordData>, name: &str) -> Value {
    record.as_ref().map(|r| r.to_json()[name].clone()).unwrap_or(Value::Null)
}

fn id(v: &Value) -> String {
    v["_id"].as_str().unwrap_or_else(|| panic!("no _id in {v}")).to_owned()
}

async fn ok(s: &TestServer, method: Method, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Value {
    let resp = s.send_with(method.clone(), path, Some(ADMIN_SECRET), headers, body).await;
    assert!(resp.status < 300, "{method} {path}: {} {}", resp.status, resp.text);
    resp.body
}

both_backends! {
    async fn every_write_path_publishes_one_event_per_record(s) {
        s.open_collection("posts").await;
        s.open_collection("comments").await;
        let rules = json!({"slug": {"type": "string", "unique": true}});
        s.send(Method::PUT, "/api/v1/admin/collections/posts/rules", Some(ADMIN_SECRET), Some(rules)).await;
        let rel = json!({"collection": "comments", "field": "post", "target": "posts", "on_delete": "cascade"});
        assert_eq!(s.admin_post("/api/v1/admin/relations", rel).await.status, 201);
        s.exec_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)").await;
        let user = s.register("writer@example.com", "password1").await;
        let user_id = user["user"]["id"].as_str().unwrap().to_owned();
        let token = user["access_token"].as_str().unwrap().to_owned();
        let mut rx = s.changes();
        let post = |op: ChangeOp, id: &str| ("posts".to_owned(), op, id.to_owned());

        // Collections surface: create (by a user), update, delete with its cascade, restore.
        let created = s.as_user(Method::POST, "/api/v1/posts", &token, Some(json!({"title": "one", "slug": "one"}))).await.body;
        let a = id(&created);
        let events = drain(&mut rx);
        assert_eq!(summary(&events), vec![post(ChangeOp::Create, &a)]);
        assert_eq!(field(&events[0].record, "title"), "one");
        assert!(events[0].old_record.is_none());
        assert_eq!(serde_json::to_value(&events[0].actor).unwrap(), json!({"kind": "user", "id": user_id}));

        ok(&s, Method::PATCH, &format!("/api/v1/posts/{a}"), Some(json!({"title": "two"})), &[]).await;
        let events = drain(&mut rx);
        assert_eq!(summary(&events), vec![post(ChangeOp::Update, &a)]);
        assert_eq!(field(&events[0].record, "title"), "two");
        assert_eq!(field(&events[0].old_record, "title"), "one");
        assert_eq!(serde_json::to_value(&events[0].actor).unwrap(), json!({"kind": "admin"}));

        let comment = id(&ok(&s, Method::POST, "/api/v1/comments", Some(json!({"post": a})), &[]).await);
        assert_eq!(summary(&drain(&mut rx)), vec![("comments".to_owned(), ChangeOp::Create, comment.clone())]);
        ok(&s, Method::DELETE, &format!("/api/v1/posts/{a}"), None, &[]).await;
        let events = drain(&mut rx);
        assert_eq!(summary(&events), vec![post(ChangeOp::Delete, &a), ("comments".to_owned(), ChangeOp::Delete, comment)]);
        assert_eq!(field(&events[0].old_record, "title"), "two");
        assert!(field(&events[0].record, "_deleted_at").as_i64().is_some(), "the soft-deleted record");
        ok(&s, Method::POST, &format!("/api/v1/posts/{a}/restore"), None, &[]).await;
        let events = drain(&mut rx);
        assert_eq!(summary(&events), vec![post(ChangeOp::Update, &a)]);
        assert!(field(&events[0].old_record, "_deleted_at").as_i64().is_some());

        // Bulk and batch: one event per record, in order.
        let bulk = ok(&s, Method::POST, "/api/v1/posts/bulk", Some(json!([{"title": "b1"}, {"title": "b2"}])), &[]).await;
        let (b1, b2) = (id(&bulk["items"][0]), id(&bulk["items"][1]));
        assert_eq!(summary(&drain(&mut rx)), vec![post(ChangeOp::Create, &b1), post(ChangeOp::Create, &b2)]);
        let ops = json!({"operations": [
            {"op": "create", "data": {"title": "c"}},
            {"op": "update", "id": b1, "data": {"title": "b1'"}},
            {"op": "delete", "id": b2},
        ]});
        let batch = ok(&s, Method::POST, "/api/v1/posts/batch", Some(ops), &[]).await;
        let c = id(&batch["results"][0]);
        assert_eq!(summary(&drain(&mut rx)), vec![post(ChangeOp::Create, &c), post(ChangeOp::Update, &b1), post(ChangeOp::Delete, &b2)]);

        // The admin's record endpoints: create, update, delete for good.
        let made = id(&ok(&s, Method::POST, "/api/v1/admin/collections/posts/records", Some(json!({"title": "adm"})), &[]).await);
        ok(&s, Method::PATCH, &format!("/api/v1/admin/collections/posts/records/{made}"), Some(json!({"title": "adm2"})), &[]).await;
        ok(&s, Method::DELETE, &format!("/api/v1/admin/collections/posts/records/{made}"), None, &[]).await;
        let events = drain(&mut rx);
        assert_eq!(summary(&events), vec![post(ChangeOp::Create, &made), post(ChangeOp::Update, &made), post(ChangeOp::Delete, &made)]);
        assert_eq!(field(&events[2].record, "title"), "adm2", "a record deleted for good is shown as it was");

        // Tables surface: insert one and several, upserts, update by filter and by id, replace, delete.
        let t1 = id(&ok(&s, Method::POST, "/api/v1/tables/posts", Some(json!({"title": "t1", "slug": "t1"})), &[]).await);
        let many = ok(&s, Method::POST, "/api/v1/tables/posts", Some(json!([{"title": "t2"}, {"title": "t3"}])), &[]).await;
        let (t2, t3) = (id(&many[0]), id(&many[1]));
        assert_eq!(summary(&drain(&mut rx)), vec![post(ChangeOp::Create, &t1), post(ChangeOp::Create, &t2), post(ChangeOp::Create, &t3)]);
        let merge = [("prefer", "resolution=merge-duplicates,return=representation")];
        ok(&s, Method::POST, "/api/v1/tables/posts?on_conflict=slug", Some(json!({"slug": "t1", "title": "merged"})), &merge).await;
        let events = drain(&mut rx);
        assert_eq!(summary(&events), vec![post(ChangeOp::Update, &t1)], "a merge is an update");
        assert_eq!((field(&events[0].old_record, "title"), field(&events[0].record, "title")), (json!("t1"), json!("merged")));
        let ignore = [("prefer", "resolution=ignore-duplicates")];
        ok(&s, Method::POST, "/api/v1/tables/posts?on_conflict=slug", Some(json!({"slug": "t1", "title": "kept"})), &ignore).await;
        assert!(drain(&mut rx).is_empty(), "an ignored duplicate writes nothing");
        ok(&s, Method::PATCH, "/api/v1/tables/posts?title=in.(t2,t3)", Some(json!({"title": "t23"})), &[]).await;
        let events = drain(&mut rx);
        let mut updated = summary(&events);
        updated.sort();
        let mut expected = vec![post(ChangeOp::Update, &t2), post(ChangeOp::Update, &t3)];
        expected.sort();
        assert_eq!(updated, expected);
        assert!(events.iter().all(|e| field(&e.old_record, "title") != field(&e.record, "title")));
        ok(&s, Method::PATCH, &format!("/api/v1/tables/posts/{t2}"), Some(json!({"title": "t2!"})), &[]).await;
        ok(&s, Method::PUT, &format!("/api/v1/tables/posts/{t3}"), Some(json!({"title": "t3!"})), &[]).await;
        ok(&s, Method::DELETE, &format!("/api/v1/tables/posts/{t2}"), None, &[]).await;
        ok(&s, Method::DELETE, "/api/v1/tables/posts?title=eq.t3!", None, &[]).await;
        assert_eq!(
            summary(&drain(&mut rx)),
            vec![post(ChangeOp::Update, &t2), post(ChangeOp::Update, &t3), post(ChangeOp::Delete, &t2), post(ChangeOp::Delete, &t3)]
        );

        // A table made with plain SQL: its key names the row.
        ok(&s, Method::POST, "/api/v1/tables/items", Some(json!({"id": 7, "name": "seven"})), &[]).await;
        ok(&s, Method::PATCH, "/api/v1/tables/items/7", Some(json!({"name": "SEVEN"})), &[]).await;
        ok(&s, Method::DELETE, "/api/v1/tables/items?id=eq.7", None, &[]).await;
        let events = drain(&mut rx);
        let item = |op| ("items".to_owned(), op, "7".to_owned());
        assert_eq!(summary(&events), vec![item(ChangeOp::Create), item(ChangeOp::Update), item(ChangeOp::Delete)]);
        assert_eq!(field(&events[1].old_record, "name"), "seven");
        assert_eq!(events.iter().map(|e| e.commit_seq).collect::<Vec<_>>(), vec![1, 2, 3], "each table has its own sequence");

        // Refused writes publish nothing.
        assert_eq!(s.post("/api/v1/posts", json!({"title": 5})).await.status, 400);
        assert_eq!(s.send(Method::DELETE, "/api/v1/posts/01900000-0000-7000-8000-000000000000", None, None).await.status, 404);
        assert!(drain(&mut rx).is_empty());
    }

    async fn sequences_count_up_by_one_per_table(s) {
        s.open_collection("a").await;
        s.open_collection("b").await;
        let mut rx = s.changes();
        for i in 0..3 {
            s.post("/api/v1/a", json!({"n": i})).await;
            s.post("/api/v1/b", json!({"n": i})).await;
        }
        s.post("/api/v1/a/bulk", json!([{"n": 10}, {"n": 11}])).await;
        let events = drain(&mut rx);
        let seqs = |table: &str| events.iter().filter(|e| e.collection == table).map(|e| e.commit_seq).collect::<Vec<_>>();
        let first = seqs("a")[0];
        assert_eq!(seqs("a"), (first..first + 5).collect::<Vec<_>>());
        let first = seqs("b")[0];
        assert_eq!(seqs("b"), (first..first + 3).collect::<Vec<_>>());
    }
}

/// The next event of `rx`, waiting at most 20 s for it.
async fn next_event(rx: &mut Receiver<Arc<ChangeEvent>>) -> Arc<ChangeEvent> {
    tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("the event arrives within 20 s")
        .expect("the feed is open")
}

/// Two instances on one PostgreSQL database: the changes one writes reach the other's feed
/// (a record too large for a notification by id), and each one's counts follow the other's
/// writes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_postgres_database_share_changes_and_counts() {
    let Some(s) = TestServer::start(Backend::Postgres).await else { return };
    let other = s.another_instance().await;
    s.open_collection("posts").await;
    s.seed("posts", &[json!({"title": "a0"})]).await;
    let mut heard = s.changes();
    let count = "/api/v1/posts?filter=title:startsWith:b";
    let first = s.get(count).await;
    assert_eq!(first.body["total"], 0, "{}", first.text);
    assert_eq!(s.get("/api/v1/posts/count").await.body["count"], 1);

    let sent = s.client.post(other.url("/api/v1/posts")).json(&json!({"title": "by b"})).send().await.unwrap();
    let created = read(sent).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(s.get(count).await.body["total"], 1, "the other instance's write shows in this one's counts at once");
    assert_eq!(s.get("/api/v1/posts/count").await.body["count"], 2);
    let event = next_event(&mut heard).await;
    assert_eq!((event.collection.as_str(), event.op), ("posts", ChangeOp::Create));
    assert_eq!(event.id.as_deref(), created.body["_id"].as_str());
    assert_eq!(field(&event.record, "title"), "by b");

    let big = "b".repeat(10_000);
    let id = id(&created.body);
    let path = other.url(&format!("/api/v1/posts/{id}"));
    let updated = read(s.client.patch(path).json(&json!({"title": big})).send().await.unwrap()).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    let event = next_event(&mut heard).await;
    assert_eq!(event.op, ChangeOp::Update);
    assert_eq!(field(&event.record, "title"), big.as_str(), "read by id: too large for a notification");

    let deleted = read(s.client.delete(other.url(&format!("/api/v1/posts/{id}"))).send().await.unwrap()).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(s.get(count).await.body["total"], 0);
    assert_eq!(next_event(&mut heard).await.op, ChangeOp::Delete);
    // This instance's own writes are published once, not again when their notification comes
    // back; the other instance hears them.
    let mut own = s.changes();
    let mut other_heard = other.changes();
    let by_a = s.post("/api/v1/posts", json!({"title": "by a"})).await;
    assert_eq!(next_event(&mut own).await.op, ChangeOp::Create);
    let event = next_event(&mut other_heard).await;
    assert_eq!(event.id.as_deref(), by_a.body["_id"].as_str());
    assert_eq!(serde_json::to_value(&event.actor).unwrap(), json!({"kind": "anonymous"}));
    let again = s.post("/api/v1/posts", json!({"title": "marker"})).await;
    let marker = next_event(&mut own).await;
    assert_eq!(marker.id.as_deref(), again.body["_id"].as_str(), "no second event for the first write");
}
