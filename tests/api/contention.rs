//! Concurrent writes of the same rows: transactions that lock rows in opposite orders (which
//! PostgreSQL answers with a deadlock, one of them the victim) all succeed, and the rows end as
//! one of the writers left them. Concurrent first writes to a collection that does not exist
//! yet all land in it.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_SECRET, TestServer, read};

async fn seed(s: &TestServer, collection: &str, n: usize) -> Vec<String> {
    s.open_collection(collection).await;
    let records: Vec<Value> = (0..n).map(|i| json!({"n": i, "v": -1})).collect();
    s.seed(collection, &records).await.iter().map(|r| r["_id"].as_str().unwrap().to_owned()).collect()
}

both_backends! {
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
