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

    async fn fields_added_by_simultaneous_writes_are_all_known_at_once(s) {
        s.open_collection("growing").await;
        for round in 0..3 {
            let requests = (0..8)
                .map(|i| s.client.post(s.url("/api/v1/growing")).json(&json!({format!("f{round}_{i}"): i})))
                .collect();
            for (status, text) in statuses(requests).await {
                assert_eq!(status, 201, "{text}");
            }
            // Every field is known at once: filtered on, listed in the schema.
            for i in 0..8 {
                let listed = s.get(&format!("/api/v1/growing?filter=f{round}_{i}:eq:{i}")).await;
                assert_eq!(listed.status, 200, "field f{round}_{i}: {}", listed.text);
                assert_eq!(listed.body["total"], 1, "{}", listed.text);
            }
            let collection = s.admin_get("/api/v1/admin/collections/growing").await;
            let fields: Vec<&str> = collection.body["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
            assert!((0..8).all(|i| fields.contains(&format!("f{round}_{i}").as_str())), "{fields:?}");
        }
    }

    async fn simultaneous_writes_never_add_fields_differing_only_in_case(s) {
        for round in 0..3 {
            let name = format!("cased{round}");
            s.open_collection(&name).await;
            let spellings = ["Title", "title", "TITLE", "tItle", "TiTlE", "titlE"];
            let requests =
                spellings.iter().map(|field| s.client.post(s.url(&format!("/api/v1/{name}"))).json(&json!({*field: "x"}))).collect();
            let answers = statuses(requests).await;
            assert!(answers.iter().all(|(status, _)| *status == 201 || *status == 400), "{answers:?}");
            let collection = s.admin_get(&format!("/api/v1/admin/collections/{name}")).await;
            let titles = collection.body["fields"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["name"].as_str().unwrap().eq_ignore_ascii_case("title"))
                .count();
            assert_eq!(titles, 1, "{}", collection.text);
            assert_eq!(answers.iter().filter(|(status, _)| *status == 201).count() as u64, s.get(&format!("/api/v1/{name}")).await.body["total"].as_u64().unwrap());
        }
    }

    async fn simultaneous_writes_never_take_a_collection_past_max_columns(s) {
        s.open_collection("wide").await;
        // 12 writes of 45 new fields each: 540 fields, past the 500 a collection may have.
        let requests = (0..12)
            .map(|w| {
                let fields: serde_json::Map<String, Value> = (0..45).map(|i| (format!("w{w}_{i}"), json!(i))).collect();
                s.client.post(s.url("/api/v1/wide")).json(&fields)
            })
            .collect();
        let answers = statuses(requests).await;
        for (status, text) in &answers {
            assert!(*status == 201 || *status == 400, "{status}: {text}");
            if *status == 400 {
                assert!(text.contains("MAX_COLUMNS"), "{text}");
            }
        }
        assert!(answers.iter().any(|(status, _)| *status == 400), "540 fields were accepted");
        let collection = s.admin_get("/api/v1/admin/collections/wide").await;
        assert!(collection.body["fields"].as_array().unwrap().len() <= 500, "{}", collection.body["fields"].as_array().unwrap().len());
    }

    async fn a_many_relation_racing_writes_that_add_its_field_as_text_is_refused(s) {
        let targets = seed(&s, "labels", 2).await;
        for (round, on_delete) in ["restrict", "cascade", "set_null"].iter().cycle().take(6).enumerate() {
            let collection = format!("labelled{round}");
            s.open_collection(&collection).await;
            let relation = json!({"collection": collection, "field": "tags", "target": "labels", "many": true, "on_delete": on_delete});
            let mut requests: Vec<_> =
                (0..8).map(|i| s.client.post(s.url(&format!("/api/v1/{collection}"))).json(&json!({"tags": format!("plain {i}")}))).collect();
            requests.insert(round % 8, s.client.post(s.url("/api/v1/admin/relations")).bearer_auth(ADMIN_SECRET).json(&relation));
            let answers = statuses(requests).await;
            let (declared, written) = (&answers[round % 8], answers.iter().enumerate().filter(|(i, _)| *i != round % 8));
            assert!([201, 400, 409].contains(&declared.0), "{declared:?}");
            for (_, (status, text)) in written {
                assert!([201, 400].contains(status), "{status}: {text}");
            }
            let schema = s.admin_get(&format!("/api/v1/admin/collections/{collection}/schema")).await;
            let tags = schema.body["columns"].as_array().unwrap().iter().find(|c| c["name"] == "tags").unwrap().clone();
            // A relation declared is over a json field (text made first by a write refuses it).
            if declared.0 == 201 {
                assert_eq!(tags["type"], "json", "{declared:?} {tags}");
            }
            let deleted = read(s.client.delete(s.url(&format!("/api/v1/labels/{}", targets[round % 2]))).bearer_auth(ADMIN_SECRET).send().await.unwrap()).await;
            assert!(deleted.status == 200 || deleted.status == 404, "{}", deleted.text);
            read(s.client.post(s.url(&format!("/api/v1/labels/{}/restore", targets[round % 2]))).bearer_auth(ADMIN_SECRET).send().await.unwrap()).await;
        }
    }

    async fn writes_planned_before_a_relation_is_declared_are_checked_against_it(s) {
        // The field exists (json) before the race: a `many` relation over it is declared, checked
        // against the values already there, while writes put text in it. A write planned before
        // the relation existed but run after it must be planned again and refused, or a `many`
        // field would not be sure to hold lists of ids. A round where text landed first refuses
        // the relation (409) and proves nothing: rounds go on until a few declared it.
        seed(&s, "tags_target", 1).await;
        let mut declared_rounds = 0;
        for round in 0..60 {
            if declared_rounds == 4 {
                break;
            }
            let collection = format!("tagged{round}");
            s.open_collection(&collection).await;
            let first = read(s.client.post(s.url(&format!("/api/v1/{collection}"))).json(&json!({"tags": []})).send().await.unwrap()).await;
            assert_eq!(first.status, 201, "{}", first.text);
            let relation = json!({"collection": collection, "field": "tags", "target": "tags_target", "many": true});
            let mut requests = vec![s.client.post(s.url("/api/v1/admin/relations")).bearer_auth(ADMIN_SECRET).json(&relation)];
            requests.extend(
                (0..16).map(|i| s.client.post(s.url(&format!("/api/v1/{collection}"))).json(&json!({"tags": format!("plain {i}")}))),
            );
            let answers = statuses(requests).await;
            let declared = &answers[0];
            assert!(declared.0 == 201 || declared.0 == 409, "{declared:?}");
            for (i, (status, text)) in answers.iter().enumerate().skip(1) {
                assert!([201, 400].contains(status), "write {i}: {status}: {text}");
            }
            if declared.0 != 201 {
                continue;
            }
            declared_rounds += 1;
            let records = s.admin_get(&format!("/api/v1/{collection}?limit=100")).await;
            for record in records.body["items"].as_array().unwrap() {
                assert!(record["tags"].is_array() || record["tags"].is_null(), "round {round}: {record}");
            }
        }
        assert!(declared_rounds > 0, "no round declared the relation");
    }

    async fn an_owner_changing_a_record_deleted_and_restored_meanwhile_is_never_refused(s) {
        // Default rules: anyone reads, the owner changes, deletes and restores.
        s.admin_post("/api/v1/admin/collections", json!({"name": "flickering"})).await;
        let owner = s.register("owner@example.com", "password1").await["access_token"].as_str().unwrap().to_owned();
        let created = read(s.client.post(s.url("/api/v1/flickering")).bearer_auth(&owner).json(&json!({"v": 0})).send().await.unwrap()).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let path = format!("/api/v1/flickering/{}", created.body["_id"].as_str().unwrap());
        for round in 0..12 {
            let mut requests: Vec<_> = (0..6).map(|i| s.client.patch(s.url(&path)).bearer_auth(&owner).json(&json!({"v": round * 10 + i}))).collect();
            requests.push(s.client.delete(s.url(&path)).bearer_auth(&owner));
            requests.insert(3, s.client.post(s.url(&format!("{path}/restore"))).bearer_auth(&owner));
            requests.push(s.client.delete(s.url(&path)).bearer_auth(&owner));
            requests.insert(1, s.client.post(s.url(&format!("{path}/restore"))).bearer_auth(&owner));
            for (status, text) in statuses(requests).await {
                // Found and changed, or deleted at that moment: never "not yours".
                assert!(status == 200 || status == 404, "{status}: {text}");
            }
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
