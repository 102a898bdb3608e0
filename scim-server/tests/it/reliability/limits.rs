//! Issue 13 defects 1, 2 and 5: what PostgreSQL cannot store is refused alike on SQLite, with a
//! 400 naming the attribute; a resource's size and value counts are bounded; a huge integer is
//! refused rather than rounded; a retried create is recognised by its request id.

use super::*;
use serde_json::json;

use scim_core::schema::ENTERPRISE_USER_URN as ENTERPRISE;

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

async fn expect(
    s: &Proc,
    db: &str,
    method: Method,
    path: &str,
    body: Value,
    status: u16,
    detail: &str,
) {
    let r = s.call(method.clone(), path, Some(body)).await;
    assert_eq!(
        r.status.as_u16(),
        status,
        "{db}: {method} {path}: {}",
        r.body
    );
    let text = r.body["detail"].as_str().unwrap_or_default();
    assert!(
        text.contains(detail),
        "{db}: {method} {path}: detail {text:?} lacks {detail:?}"
    );
}

#[tokio::test]
async fn both_databases_refuse_nul_and_long_keys_alike_and_bound_resources() {
    let dir = tempfile::tempdir().unwrap();
    for (db, url, _pg) in databases(&dir).await {
        let s = Launch::new(&url).start();
        let db = db.as_str();
        let long = "x".repeat(2800);
        let nul = "a\u{0}b";
        let post = |body: Value| (Method::POST, "/Users", body);
        for (method, path, body, detail) in [
            (
                post(json!({"schemas": [USER_URN], "userName": nul})),
                "userName",
            ),
            (
                post(json!({"schemas": [USER_URN], "userName": "n1", "displayName": nul})),
                "displayName",
            ),
            (
                post(json!({"schemas": [USER_URN], "userName": "n2", "externalId": nul})),
                "externalId",
            ),
            (
                post(json!({"schemas": [USER_URN], "userName": "n3", "emails": [{"value": nul}]})),
                "emails[0].value",
            ),
            (
                post(json!({"schemas": [USER_URN], "userName": "n4", "urn:x:ext\u{0}": {"a": 1}})),
                "attribute name",
            ),
        ]
        .map(|((m, p, b), d)| (m, p, b, d))
        {
            expect(&s, db, method, path, body, 400, detail).await;
        }
        for (body, attr) in [
            (json!({"schemas": [USER_URN], "userName": long}), "userName"),
            (
                json!({"schemas": [USER_URN], "userName": "l1", "externalId": long}),
                "externalId",
            ),
            (
                json!({"schemas": [USER_URN], "userName": "l2", "emails": [{"value": long}]}),
                "emails.value",
            ),
            (
                json!({"schemas": [USER_URN, ENTERPRISE], "userName": "l3", ENTERPRISE: {"manager": {"value": long}}}),
                "manager.value",
            ),
        ] {
            expect(
                &s,
                db,
                Method::POST,
                "/Users",
                body,
                400,
                &format!("{attr} is 2800 bytes long; at most 1024"),
            )
            .await;
        }
        expect(&s, db, Method::POST, "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": long}),
            400, "displayName is 2800 bytes long").await;

        // PATCH values and lookups.
        let u = s.call(Method::POST, "/Users", Some(user("patchme"))).await;
        assert_eq!(u.status, StatusCode::CREATED, "{db}: {}", u.body);
        let id = u.body["id"].as_str().unwrap().to_string();
        let path = format!("/Users/{id}");
        expect(
            &s,
            db,
            Method::PATCH,
            &path,
            patch(json!([{"op": "replace", "path": "title", "value": nul}])),
            400,
            "NUL",
        )
        .await;
        expect(
            &s,
            db,
            Method::PATCH,
            &path,
            patch(json!([{"op": "replace", "path": "externalId", "value": long}])),
            400,
            "externalId",
        )
        .await;
        let r = s.call(Method::GET, "/Users/%00", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{db}: {}", r.body);
        let r = s.call(Method::DELETE, "/Users/a%00b", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{db}: {}", r.body);
        for filter in [
            "userName%20eq%20%22a%5Cu0000b%22",
            "userName%20eq%20%22a%00b%22",
        ] {
            let r = s
                .call(Method::GET, &format!("/Users?filter={filter}"), None)
                .await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{db}: {filter}: {}",
                r.body
            );
        }

        // A 30-digit integer is refused, not rounded; a 19-digit one is kept exactly.
        let r = s.raw(Method::POST, "/Users",
            &format!(r#"{{"schemas": ["{USER_URN}"], "userName": "big", "urn:x:n": {{"n": 123456789012345678901234567890}}}}"#)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{db}: {}", r.body);
        assert!(
            r.body["detail"].as_str().unwrap().contains("64-bit"),
            "{db}: {}",
            r.body
        );

        // Size: one attribute too many values; one resource too large; PATCHes cannot grow a
        // resource past the limit either.
        let many: Vec<Value> = (0..1001)
            .map(|i| json!({"value": format!("{i}@example.com")}))
            .collect();
        expect(
            &s,
            db,
            Method::POST,
            "/Users",
            json!({"schemas": [USER_URN], "userName": "many", "emails": many}),
            400,
            "emails has 1001 values",
        )
        .await;
        expect(
            &s,
            db,
            Method::POST,
            "/Users",
            json!({"schemas": [USER_URN], "userName": "huge", "title": "t".repeat(300 * 1024)}),
            413,
            "262144 bytes",
        )
        .await;
        let chunk = "p".repeat(200 * 1024);
        let first = s
            .call(
                Method::PATCH,
                &path,
                Some(patch(
                    json!([{"op": "add", "path": "title", "value": chunk}]),
                )),
            )
            .await;
        assert_eq!(first.status, StatusCode::OK, "{db}: {}", first.body);
        expect(
            &s,
            db,
            Method::PATCH,
            &path,
            patch(json!([{"op": "add", "path": "nickName", "value": chunk}])),
            413,
            "262144 bytes",
        )
        .await;

        // Nothing above answered 500, and nothing was stored by a refused request.
        let list = s.call(Method::GET, "/Users?count=0", None).await;
        assert_eq!(
            list.body["totalResults"], 1,
            "{db}: only `patchme` exists: {}",
            list.body
        );
        assert!(
            !s.stderr_text().contains("status=500"),
            "{db}: {}",
            s.stderr_text()
        );
        let _ = db;
    }
}

#[tokio::test]
async fn a_create_retried_with_its_request_id_returns_the_first_result_not_409() {
    let dir = tempfile::tempdir().unwrap();
    for (db, url, _pg) in databases(&dir).await {
        let s = Launch::new(&url).start();
        let body = serde_json::to_vec(&user("retried")).unwrap();
        let rid = [("x-request-id", "client-attempt-7f3a")];
        let first = s
            .send(Method::POST, "/Users", Some(&body), &rid)
            .await
            .unwrap();
        assert_eq!(first.status, StatusCode::CREATED, "{db}: {}", first.body);
        let again = s
            .send(Method::POST, "/Users", Some(&body), &rid)
            .await
            .unwrap();
        assert_eq!(again.status, StatusCode::CREATED, "{db}: {}", again.body);
        assert_eq!(again.body["id"], first.body["id"], "{db}");
        assert_eq!(
            again.body["meta"]["version"], first.body["meta"]["version"],
            "{db}"
        );
        // Another request creating the same userName is the client's mistake: 409.
        let other = s
            .send(
                Method::POST,
                "/Users",
                Some(&body),
                &[("x-request-id", "client-attempt-other")],
            )
            .await
            .unwrap();
        assert_eq!(other.status, StatusCode::CONFLICT, "{db}: {}", other.body);
        let unnamed = s
            .send(Method::POST, "/Users", Some(&body), &[])
            .await
            .unwrap();
        assert_eq!(
            unnamed.status,
            StatusCode::CONFLICT,
            "{db}: {}",
            unnamed.body
        );
    }
}
