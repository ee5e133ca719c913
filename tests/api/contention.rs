//! Concurrent writes of the same rows: transactions that lock rows in opposite orders (which
//! PostgreSQL answers with a deadlock, one of them the victim) all succeed, and the rows end as
//! one of the writers left them. Concurrent first writes to a collection that does not exist
//! yet all land in it. Schema changes racing writes answer 4xx, never 500.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, Resp, TestServer, read};

async fn seed(s: &TestServer, collection: &str, n: usize) -> Vec<String> {
    s.open_collection(collection).await;
    let records: Vec<Value> = (0..n).map(|i| json!({"n": i, "v": -1})).collect();
    s.seed(collection, &records).await.iter().map(|r| r["_id"].as_str().unwrap().to_owned()).collect()
}

/// Runs `requests` at once; their statuses.
async fn statuses(requests: Vec<reqwest::RequestBuilder>) -> Vec<(u16, String)> {
    let sent = requests.into_iter().map(|req| async move {
        let resp: Resp = read(req.send().await.unwrap()).await;
        (resp.status, resp.text)
    });
    join_all(sent).await
}

both_backends! {
    async fn schema_changes_racing_writes_answer_a_client_error_never_a_server_error(s) {
        let admin = |req: reqwest::RequestBuilder| req.bearer_auth(ADMIN_SECRET);
        // A collection dropped while records are written to it.
        seed(&s, "doomed", 1).await;
        let mut requests: Vec<_> = (0..16).map(|i| admin(s.client.post(s.url("/api/v1/doomed"))).json(&json!({"n": i}))).collect();
        requests.insert(8, admin(s.client.delete(s.url("/api/v1/admin/collections/doomed"))));
        for (status, text) in statuses(requests).await {
            assert!(status < 500, "{status}: {text}");
        }
        // A field dropped while it is written.
        let ids = seed(&s, "shrinking", 4).await;
        let mut requests: Vec<_> = (0..16)
            .map(|i| admin(s.client.patch(s.url(&format!("/api/v1/shrinking/{}", ids[i % 4])))).json(&json!({"v": i})))
            .collect();
        requests.insert(8, admin(s.client.delete(s.url("/api/v1/admin/collections/shrinking/schema/v"))));
        for (status, text) in statuses(requests).await {
            assert!(status < 500, "{status}: {text}");
        }
        // An index made and dropped at once.
        let mut requests = Vec::new();
        for _ in 0..4 {
            requests.push(admin(s.client.post(s.url("/api/v1/admin/collections/shrinking/indexes"))).json(&json!({"column": "n"})));
            requests.push(admin(s.client.delete(s.url("/api/v1/admin/collections/shrinking/indexes/n"))));
        }
        for (status, text) in statuses(requests).await {
            assert!(status < 500, "{status}: {text}");
        }
    }

    async fn batches_updating_two_records_in_opposite_orders_all_succeed(s) {
        let ids = seed(&s, "pairs", 2).await;
        let batches = (0..24).map(|i| {
            let (first, second) = if i % 2 == 0 { (&ids[0], &ids[1]) } else { (&ids[1], &ids[0]) };
            let ops = json!({"operations": [
                {"op": "update", "id": first, "data": {"v": i}},
                {"op": "update", "id": second, "data": {"v": i}},
            ]});
            let req = s.client.post(s.url("/api/v1/pairs/batch")).bearer_auth(ADMIN_SECRET).json(&ops);
            async move { read(req.send().await.unwrap()).await }
        });
        for resp in join_all(batches).await {
            assert_eq!(resp.status, 200, "{}", resp.text);
        }
        // Each batch is whole: both records carry the value of the same, last one.
        let values: Vec<Value> = s.get("/api/v1/pairs?sort=n").await.body["items"].as_array().unwrap().iter().map(|r| r["v"].clone()).collect();
        assert_eq!(values[0], values[1], "{values:?}");
    }

    async fn concurrent_first_writes_create_the_collection_once_and_all_land(s) {
        let creates = (0..20).map(|i| {
            let req = s.client.post(s.url("/api/v1/fresh")).bearer_auth(ADMIN_SECRET).json(&json!({"i": i}));
            async move { read(req.send().await.unwrap()).await }
        });
        for resp in join_all(creates).await {
            assert_eq!(resp.status, 201, "{}", resp.text);
        }
        assert_eq!(s.get("/api/v1/fresh/count").await.body["count"], 20);
    }

    async fn filtered_updates_of_the_same_rows_all_succeed(s) {
        seed(&s, "rows", 200).await;
        let updates = (0..16).map(|i| {
            let req = s.client.patch(s.url("/api/v1/tables/rows?n=gte.0")).bearer_auth(ADMIN_SECRET).json(&json!({"v": i}));
            async move { read(req.send().await.unwrap()).await }
        });
        for resp in join_all(updates).await {
            assert!(resp.status == 200 || resp.status == 204, "{}: {}", resp.status, resp.text);
        }
        let rows = s.get("/api/v1/tables/rows?select=v").await.body;
        let values: Vec<&Value> = rows.as_array().unwrap().iter().map(|r| &r["v"]).collect();
        assert_eq!(values.len(), 200);
        assert!(values.iter().all(|v| *v == values[0]), "the rows were left by different updates");
    }
}
