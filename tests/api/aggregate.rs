//! Aggregates and conditional GET.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::TestServer;

async fn sales(s: &TestServer) {
    s.open_collection("sales").await;
    let rows = [("north", 10, 1.5, true), ("north", 20, 2.5, false), ("south", 5, 0.5, true), ("west", 7, 3.0, true)];
    let records: Vec<Value> = rows
        .iter()
        .map(|(region, units, price, paid)| json!({"region": region, "units": units, "price": price, "paid": paid}))
        .collect();
    s.seed("sales", &records).await;
}

both_backends! {
    async fn aggregates_with_filters_and_groups(s) {
        sales(&s).await;
        for (query, expected) in [
            ("op=count", json!(4)),
            ("op=count&field=region", json!(4)),
            ("op=sum&field=units", json!(42)),
            ("op=sum&field=price", json!(7.5)),
            ("op=avg&field=units", json!(10.5)),
            ("op=min&field=units", json!(5)),
            ("op=max&field=price", json!(3.0)),
            ("op=max&field=region", json!("west")),
            ("op=sum&field=units&filter=region:eq:north", json!(30)),
            ("op=sum&field=units&paid=is.true", json!(22)),
            ("op=sum&field=units&region=eq.nowhere", Value::Null),
            // The least and greatest of a boolean field: false before true.
            ("op=min&field=paid", json!(false)),
            ("op=max&field=paid", json!(true)),
            ("op=min&field=paid&region=eq.south", json!(true)),
            ("op=max&field=paid&region=eq.nowhere", Value::Null),
        ] {
            let resp = s.get(&format!("/api/v1/sales/aggregate?{query}")).await;
            assert_eq!(resp.status, 200, "{query}: {}", resp.text);
            assert_eq!(resp.body["result"], expected, "{query}");
        }
        let grouped = s.get("/api/v1/sales/aggregate?op=sum&field=units&group_by=region").await;
        assert_eq!(grouped.status, 200, "{}", grouped.text);
        assert_eq!(grouped.body["groups"], json!([
            {"key": "north", "result": 30}, {"key": "south", "result": 5}, {"key": "west", "result": 7}
        ]));
        let by_paid = s.get("/api/v1/sales/aggregate?op=count&group_by=paid").await;
        assert_eq!(by_paid.body["groups"], json!([{"key": false, "result": 1}, {"key": true, "result": 3}]));
        let grouped = s.get("/api/v1/sales/aggregate?op=min&field=paid&group_by=region").await;
        assert_eq!(grouped.status, 200, "{}", grouped.text);
        assert_eq!(grouped.body["groups"], json!([
            {"key": "north", "result": false}, {"key": "south", "result": true}, {"key": "west", "result": true}
        ]));

        // Deleted records do not count.
        let id = s.get("/api/v1/sales?region=eq.west").await.body["items"][0]["_id"].as_str().unwrap().to_owned();
        s.send(Method::DELETE, &format!("/api/v1/sales/{id}"), None, None).await;
        assert_eq!(s.get("/api/v1/sales/aggregate?op=sum&field=units").await.body["result"], 35);

        for query in [
            "",
            "op=median&field=units",
            "op=sum&field=region",
            "op=avg&field=paid",
            "op=sum",
            "op=sum&field=nope",
            "op=count&group_by=nope",
            "op=count&sort=region",
            "op=count&limit=5",
            "op=count&filter=nope:eq:1",
            "op=count&include_deleted=true",
            "op=count&op=sum&field=units",
            "op=sum&field=units&field=region",
            "op=count&group_by=region&group_by=paid",
            "op=count&expand=region",
            "op=count&offset=1",
            "op=count&fields=units",
        ] {
            let resp = s.get(&format!("/api/v1/sales/aggregate?{query}")).await;
            // include_deleted is refused to anonymous callers as unauthenticated (401).
            assert!([400, 401].contains(&resp.status), "{query}: {} {}", resp.status, resp.text);
            assert!(!resp.error().is_empty());
        }
        assert_eq!(s.get("/api/v1/nothing/aggregate?op=count").await.status, 404);

        // Records without the key form one group, first, as nulls sort everywhere.
        s.seed("sales", &[json!({"units": 1})]).await;
        let grouped = s.get("/api/v1/sales/aggregate?op=count&group_by=region").await;
        assert_eq!(grouped.body["groups"][0], json!({"key": null, "result": 1}), "{}", grouped.text);
        assert_eq!(grouped.body["groups"][1]["key"], "north");
    }

    async fn a_sum_past_the_range_of_a_number_is_refused_not_null(s) {
        s.open_collection("huge").await;
        s.seed("huge", &[json!({"r": 1.5e308, "i": i64::MAX, "g": "x"}), json!({"r": 1.5e308, "i": 1, "g": "x"})]).await;
        for query in ["op=sum&field=r", "op=sum&field=i", "op=sum&field=r&group_by=g"] {
            let resp = s.get(&format!("/api/v1/huge/aggregate?{query}")).await;
            assert_eq!(resp.status, 400, "{query}: {}", resp.text);
            assert!(!resp.error().is_empty());
        }
        let integer = s.get("/api/v1/huge/aggregate?op=sum&field=i").await;
        assert_eq!(integer.error(), "the result does not fit a 64-bit integer (integer overflow)", "the same words on both backends");
        assert_eq!(s.get("/api/v1/huge/aggregate?op=max&field=r").await.body["result"], 1.5e308);
        // Only the total counts: a running total past 64 bits on the way is no overflow.
        s.open_collection("swings").await;
        s.seed("swings", &[json!({"n": i64::MAX}), json!({"n": 1}), json!({"n": -5}), json!({"n": 3})]).await;
        let sum = s.get("/api/v1/swings/aggregate?op=sum&field=n").await;
        assert_eq!((sum.status, sum.body["result"].clone()), (200, json!(i64::MAX - 1)), "{}", sum.text);
        // The sum of nothing but nulls is null, as SQL's SUM answers, not 0.
        s.seed("swings", &[json!({"n": null, "g": "empty"})]).await;
        let sum = s.get("/api/v1/swings/aggregate?op=sum&field=n&filter=n:is:null").await;
        assert_eq!((sum.status, sum.body["result"].clone()), (200, json!(null)), "{}", sum.text);
        let groups = s.get("/api/v1/swings/aggregate?op=sum&field=n&group_by=g").await;
        assert_eq!(groups.body["groups"][1], json!({"key": "empty", "result": null}), "{}", groups.text);
    }

    async fn aggregates_count_only_readable_records(s) {
        s.admin_post("/api/v1/admin/collections", json!({"name": "expenses", "rules": {"read": "owner"}})).await;
        let a = s.register("a@example.com", "password1").await["access_token"].as_str().unwrap().to_owned();
        let b = s.register("b@example.com", "password1").await["access_token"].as_str().unwrap().to_owned();
        for (token, amount) in [(&a, 10), (&a, 15), (&b, 100)] {
            s.as_user(Method::POST, "/api/v1/expenses", token, Some(json!({"amount": amount}))).await;
        }
        assert_eq!(s.as_user(Method::GET, "/api/v1/expenses/aggregate?op=sum&field=amount", &a, None).await.body["result"], 25);
        assert_eq!(s.as_user(Method::GET, "/api/v1/expenses/aggregate?op=sum&field=amount", &b, None).await.body["result"], 100);
        assert_eq!(s.get("/api/v1/expenses/aggregate?op=count").await.status, 401);
    }

    async fn conditional_get_answers_304(s) {
        sales(&s).await;
        let list = s.get("/api/v1/sales?sort=units").await;
        let etag = list.header("etag").expect("lists carry an ETag").to_owned();
        let id = list.body["items"][0]["_id"].as_str().unwrap().to_owned();
        let get = |path: String, tag: String| {
            let client = s.client.clone();
            let url = s.url(&path);
            async move { client.get(url).header("If-None-Match", tag).send().await.unwrap() }
        };
        let same = get("/api/v1/sales?sort=units".into(), etag.clone()).await;
        assert_eq!(same.status(), 304);
        assert_eq!(same.headers()["etag"].to_str().unwrap(), etag);
        assert!(same.text().await.unwrap().is_empty());

        let record = s.get(&format!("/api/v1/sales/{id}")).await;
        let record_tag = record.header("etag").unwrap().to_owned();
        assert_eq!(get(format!("/api/v1/sales/{id}"), record_tag.clone()).await.status(), 304);
        assert_eq!(get(format!("/api/v1/sales/{id}"), format!("W/{record_tag}")).await.status(), 304);
        assert_eq!(get(format!("/api/v1/sales/{id}"), "\"other\"".into()).await.status(), 200);

        // A change makes new ETags: the old ones get the full answer.
        s.send(Method::PATCH, &format!("/api/v1/sales/{id}"), None, Some(json!({"units": 99}))).await;
        let changed = get(format!("/api/v1/sales/{id}"), record_tag.clone()).await;
        assert_eq!(changed.status(), 200);
        assert_ne!(changed.headers()["etag"].to_str().unwrap(), record_tag);
        assert_eq!(get("/api/v1/sales?sort=units".into(), etag).await.status(), 200);
        let count = s.get("/api/v1/sales/count").await;
        assert_eq!(get("/api/v1/sales/count".into(), count.header("etag").unwrap().to_owned()).await.status(), 304);
    }
}
