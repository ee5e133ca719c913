//! Query plans: the common list shapes are read straight off an index on both backends, with
//! no sort of the matches. PostgreSQL's indexes are built `NULLS FIRST`, so that a descending
//! sort (`DESC NULLS LAST`, as nulls sort as the smallest value) is the index read backwards.

use ferrobase::data::access::Caller;
use ferrobase::data::query::parse;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{Backend, TestServer};

/// The plan of the list `query` of `items`, on one line.
async fn plan(s: &TestServer, query: &str) -> String {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let query = parse::collection_query(&pairs).unwrap();
    s.store().explain_list("items", &Caller::Admin, &query).await.unwrap().join("\n")
}

/// Whether `plan` reads an index in order and sorts nothing.
fn indexed(backend: Backend, plan: &str) -> bool {
    match backend {
        Backend::Sqlite => plan.contains("USING INDEX") && !plan.contains("TEMP B-TREE"),
        Backend::Postgres => plan.contains("Index") && !plan.contains("Sort"),
    }
}

both_backends! {
    async fn common_list_shapes_use_the_index(s) {
        s.open_collection("items").await;
        for chunk in 0..8 {
            let rows: Vec<Value> = (0..500)
                .map(|i| {
                    let n = chunk * 500 + i;
                    json!({"category": format!("cat-{}", n % 4), "score": (n * 7919) % 1000, "title": format!("item {n}")})
                })
                .collect();
            assert_eq!(s.admin_post("/api/v1/items/bulk", Value::Array(rows)).await.status, 201);
        }
        let index = json!({"columns": ["category", "score"]});
        assert_eq!(s.admin_post("/api/v1/admin/collections/items/indexes", index).await.status, 201);
        s.exec_sql("ANALYZE").await;
        let page = s.send(Method::GET, "/api/v1/items?filter=category:eq:cat-1&sort=-score&limit=20", Some(crate::harness::ADMIN_SECRET), None).await;
        let last = page.body["items"][19]["_id"].as_str().unwrap().to_owned();
        for query in [
            "filter=category:eq:cat-1&sort=-score&limit=20".to_owned(),
            "filter=category:eq:cat-1&sort=score&limit=20".to_owned(),
            "filter=category:eq:cat-1&sort=-score&limit=20&page=3".to_owned(),
            format!("filter=category:eq:cat-1&sort=-score&limit=20&after={last}"),
            "category=eq.cat-2&sort=score:desc&limit=50".to_owned(),
            "limit=20".to_owned(),
        ] {
            let plan = plan(&s, &query).await;
            assert!(indexed(s.backend, &plan), "{query} on {:?}:\n{plan}", s.backend);
        }
    }
}
