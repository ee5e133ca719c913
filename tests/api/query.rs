//! List parameters: filters of both spellings, sort, paging, keyset cursors, projection, count.

use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::TestServer;

/// Ten records n=1..10 with a few text, boolean and null values to filter on.
async fn ten(s: &TestServer) {
    s.open_collection("items").await;
    let mut records = Vec::new();
    for n in 1..=10 {
        records.push(json!({
            "n": n,
            "name": format!("item-{n:02}"),
            "kind": if n % 2 == 0 { "even" } else { "odd" },
            "big": n > 5,
            "note": if n % 3 == 0 { Value::Null } else { json!(format!("Note {n}")) },
            "ratio": n as f64 / 4.0,
        }));
    }
    s.seed("items", &records).await;
}

/// The `n` field of each item of a list answer, in order.
pub fn ns(body: &Value) -> Vec<i64> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {body}"))
        .iter()
        .map(|r| r["n"].as_i64().unwrap())
        .collect()
}

both_backends! {
    async fn filters_of_both_spellings(s) {
        ten(&s).await;
        let cases: &[(&str, &[i64])] = &[
            ("filter=n:eq:3", &[3]),
            ("filter=n:ne:3,n:lte:4", &[1, 2, 4]),
            ("filter=n:neq:3,n:lt:3", &[1, 2]),
            ("filter=n:gt:8", &[9, 10]),
            ("filter=n:gte:9", &[9, 10]),
            ("filter=kind:eq:even,n:lt:5", &[2, 4]),
            ("filter=n:in:1|5|7", &[1, 5, 7]),
            ("filter=n:nin:1|2|3|4|5|6|7", &[8, 9, 10]),
            ("filter=name:like:item-0%25", &[1, 2, 3, 4, 5, 6, 7, 8, 9]),
            ("filter=name:contains:M-1", &[10]),
            ("filter=name:startsWith:item-1", &[10]),
            ("filter=note:contains:%25", &[]),
            ("filter=ratio:gte:2", &[8, 9, 10]),
            ("filter=big:eq:true,n:lt:8", &[6, 7]),
            ("filter=big:eq:TRUE,n:lt:8", &[6, 7]),
            ("filter=note:is:null", &[3, 6, 9]),
            ("n=gt.8", &[9, 10]),
            ("n.lte=2", &[1, 2]),
            ("n=not.gt.2", &[1, 2]),
            ("n=in.(2,4)", &[2, 4]),
            ("n.in=(3,5)", &[3, 5]),
            ("note.is.null", &[3, 6, 9]),
            ("note=not.is.null&n=lt.4", &[1, 2]),
            ("name=like.*-1*", &[10]),
            ("name=ilike.ITEM-0*&n=gt.7", &[8, 9]),
            ("big=is.true&n=lt.8", &[6, 7]),
            ("or=(n.eq.1,n.eq.10)", &[1, 10]),
            ("or=(n.lt.2,and(kind.eq.even,n.gt.8))", &[1, 10]),
            ("n=gte.3&n=lte.4", &[3, 4]),
            ("filter=n:gte:3&n=lte.4", &[3, 4]),
            ("filter=name:eq:\"item-01\"", &[1]),
            // A value is taken as written: a space is part of it, not padding.
            ("filter=name:eq:%20item-01", &[]),
            ("filter=name:startsWith:%20", &[]),
            ("filter=n:lt:3,%20name:eq:item-01", &[1]),
            // Integers spelled as writes take them.
            ("filter=n:eq:3.0", &[3]),
            ("filter=n:lt:2e0", &[1]),
            ("n=in.(1.0,1e1)", &[1, 10]),
        ];
        for (query, expected) in cases {
            let resp = s.get(&format!("/api/v1/items?sort=n&{query}")).await;
            assert_eq!(resp.status, 200, "{query}: {}", resp.text);
            assert_eq!(ns(&resp.body), *expected, "{query}");
            assert_eq!(resp.body["total"], expected.len(), "{query}");
            let count = s.get(&format!("/api/v1/items/count?{query}")).await;
            assert_eq!(count.body["count"], expected.len(), "count {query}");
        }
    }

    async fn sort_and_paging(s) {
        ten(&s).await;
        let desc = s.get("/api/v1/items?sort=-n&limit=3").await;
        assert_eq!(ns(&desc.body), vec![10, 9, 8]);
        assert_eq!(desc.body["total"], 10);
        assert_eq!(desc.body["limit"], 3);
        assert_eq!(desc.body["page"], 1);
        assert!(desc.body["next_cursor"].is_string());
        assert_eq!(ns(&s.get("/api/v1/items?sort=n:desc&limit=2").await.body), vec![10, 9]);
        assert_eq!(ns(&s.get("/api/v1/items?sort=kind:asc,n:desc&limit=3").await.body), vec![10, 8, 6]);
        let page2 = s.get("/api/v1/items?sort=n&limit=3&page=2").await;
        assert_eq!(ns(&page2.body), vec![4, 5, 6]);
        assert_eq!(page2.body["page"], 2);
        let last = s.get("/api/v1/items?sort=n&limit=3&page=4").await;
        assert_eq!(ns(&last.body), vec![10]);
        assert!(last.body["next_cursor"].is_null());
        assert_eq!(ns(&s.get("/api/v1/items?sort=n&limit=3&page=9").await.body), Vec::<i64>::new());
        // Nulls sort as the smallest value on both backends.
        let by_note = s.get("/api/v1/items?sort=note,n&limit=4").await;
        assert_eq!(ns(&by_note.body), vec![3, 6, 9, 1]);
        let by_note_desc = s.get("/api/v1/items?sort=-note,n").await;
        assert_eq!(&ns(&by_note_desc.body)[7..], &[3, 6, 9]);
        // Default order is creation order.
        assert_eq!(ns(&s.get("/api/v1/items?limit=3").await.body), vec![1, 2, 3]);
        assert_eq!(s.get("/api/v1/items").await.body["limit"], 50);
        // A count answers no page: what would shape one is refused, not ignored.
        for param in ["sort=n", "limit=2", "page=2", "fields=n", "expand=n", "after=zzz"] {
            let refused = s.get(&format!("/api/v1/items/count?{param}")).await;
            assert_eq!(refused.status, 400, "{param}: {}", refused.text);
        }
        assert_eq!(s.get("/api/v1/items/count?filter=n:lt:3&search=item").await.body["count"], 2);
        // A json field has no order both backends share: a sort by it is refused.
        s.seed("items", &[json!({"n": 11, "meta": {"a": 1}})]).await;
        for path in ["/api/v1/items?sort=meta", "/api/v1/items?sort=n,-meta", "/api/v1/tables/items?order=meta.desc"] {
            let refused = s.get(path).await;
            assert_eq!(refused.status, 400, "{path}: {}", refused.text);
            assert!(refused.error().contains("json"), "{}", refused.text);
        }
    }

    async fn keyset_pages_stay_stable_while_records_are_added(s) {
        ten(&s).await;
        let first = s.get("/api/v1/items?sort=-n&limit=4").await;
        assert_eq!(ns(&first.body), vec![10, 9, 8, 7]);
        let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
        // Records added at the front of the order do not shift the next page.
        s.seed("items", &[json!({"n": 11}), json!({"n": 12})]).await;
        let second = s.get(&format!("/api/v1/items?sort=-n&limit=4&after={cursor}")).await;
        assert_eq!(second.status, 200, "{}", second.text);
        assert_eq!(ns(&second.body), vec![6, 5, 4, 3]);
        let cursor = second.body["next_cursor"].as_str().unwrap().to_owned();
        let third = s.get(&format!("/api/v1/items?sort=-n&limit=4&after={cursor}")).await;
        assert_eq!(ns(&third.body), vec![2, 1]);
        assert!(third.body["next_cursor"].is_null());

        // Walking every page by cursor over a sort with ties and nulls visits each record once.
        let mut seen = Vec::new();
        let mut url = "/api/v1/items?sort=note,-kind&limit=3".to_owned();
        loop {
            let page = s.get(&url).await;
            assert_eq!(page.status, 200, "{}", page.text);
            seen.extend(ns(&page.body));
            match page.body["next_cursor"].as_str() {
                Some(c) => url = format!("/api/v1/items?sort=note,-kind&limit=3&after={c}"),
                None => break,
            }
        }
        seen.sort();
        assert_eq!(seen, (1..=12).collect::<Vec<_>>());
    }

    async fn fields_project_the_answer(s) {
        ten(&s).await;
        let resp = s.get("/api/v1/items?fields=n,name&sort=n&limit=2").await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body["items"][0], json!({"n": 1, "name": "item-01"}));
        assert!(resp.body["next_cursor"].is_string(), "the cursor works without _id in the projection");
        let id = s.get("/api/v1/items?limit=1").await.body["items"][0]["_id"].as_str().unwrap().to_owned();
        let one = s.get(&format!("/api/v1/items/{id}?fields=_id,kind")).await;
        assert_eq!(one.body, json!({"_id": id, "kind": "odd"}));
    }
}
