use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::audit_keys::audit_targets;
use super::{api_token, audit_count};
use crate::helpers::{TestApp, TestDb, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    api_requires_a_valid_unrevoked_token,
    keys_are_listed_without_private_material_and_rotate,
    audit_filters_and_paginates,
);

async fn get(app: &TestApp, token: Option<&str>, path: &str) -> reqwest::Response {
    let mut req = app.client.get(app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Asserts a JSON error body and returns it.
async fn error(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status(), status);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

async fn api_requires_a_valid_unrevoked_token(db: &TestDb) {
    let app = spawn_app(db).await;
    let token = api_token(&app, "automation").await;

    let res = get(&app, None, "/admin/api/v1/keys").await;
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    error(res, 401, "unauthorized").await;
    let unknown = format!("pat_{}", "A".repeat(43));
    error(
        get(&app, Some(&unknown), "/admin/api/v1/keys").await,
        401,
        "unauthorized",
    )
    .await;
    error(
        get(&app, Some("not-a-token"), "/admin/api/v1/keys").await,
        401,
        "unauthorized",
    )
    .await;

    assert_eq!(
        get(&app, Some(&token), "/admin/api/v1/keys").await.status(),
        200
    );

    // A second token revokes the first; the first then gets 403 everywhere.
    let other = post(
        &app,
        &token,
        "/admin/api/v1/tokens",
        json!({"name": "second"}),
    )
    .await;
    assert_eq!(other.status(), 201);
    let other: Value = other.json().await.unwrap();
    let other_token = other["token"].as_str().unwrap().to_owned();
    assert!(other_token.starts_with("pat_"));
    let list: Value = get(&app, Some(&other_token), "/admin/api/v1/tokens")
        .await
        .json()
        .await
        .unwrap();
    let first_id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "automation")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !list.to_string().contains(&token),
        "lists never show a token"
    );
    assert!(
        !list.to_string().contains(&other_token),
        "lists never show a token"
    );

    let revoke = format!("/admin/api/v1/tokens/{first_id}/revoke");
    let res = post(&app, &other_token, &revoke, json!({})).await;
    assert_eq!(res.status(), 200);
    let revoked: Value = res.json().await.unwrap();
    assert!(revoked["revoked_at"].is_string());
    error(
        get(&app, Some(&token), "/admin/api/v1/keys").await,
        403,
        "token_revoked",
    )
    .await;
    error(
        post(&app, &other_token, &revoke, json!({})).await,
        409,
        "conflict",
    )
    .await;
    error(
        post(
            &app,
            &other_token,
            "/admin/api/v1/tokens/tok_nope/revoke",
            json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(audit_count(&app, "api_token.revoked").await, 1);

    // Unknown paths are JSON 404s, authenticated or not.
    error(
        get(&app, Some(&other_token), "/admin/api/v1/nothing-here").await,
        404,
        "not_found",
    )
    .await;
    error(
        get(&app, None, "/admin/api/v1/users/42/nope").await,
        404,
        "not_found",
    )
    .await;

    // Validation failures are 422 with a message per field.
    let body = error(
        post(
            &app,
            &other_token,
            "/admin/api/v1/tokens",
            json!({"name": "   "}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["fields"]["name"].is_string(), "{body}");
    let body = error(
        get(
            &app,
            Some(&other_token),
            "/admin/api/v1/audit?limit=0&from=yesterday&cursor=%21",
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    for field in ["limit", "from", "cursor"] {
        assert!(body["fields"][field].is_string(), "{field}: {body}");
    }
    let res = app
        .client
        .post(app.url("/admin/api/v1/tokens"))
        .bearer_auth(&other_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    error(res, 400, "bad_request").await;
    app.stop();
}

async fn keys_are_listed_without_private_material_and_rotate(db: &TestDb) {
    let app = spawn_app(db).await;
    let token = api_token(&app, "keys").await;
    let before: Value = get(&app, Some(&token), "/admin/api/v1/keys")
        .await
        .json()
        .await
        .unwrap();
    let items = before["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let allowed: BTreeSet<&str> = [
        "kid",
        "alg",
        "created_at",
        "retired_at",
        "publish_until",
        "active",
    ]
    .into();
    for key in items {
        let fields: BTreeSet<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(fields.is_subset(&allowed), "no private material: {key}");
        assert_eq!(key["active"], true);
    }

    let res = post(&app, &token, "/admin/api/v1/keys/rotate", json!({})).await;
    assert_eq!(res.status(), 200);
    let rotated: Value = res.json().await.unwrap();
    let new_kids: BTreeSet<String> = rotated["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new_kids.len(), 3);

    let after: Value = get(&app, Some(&token), "/admin/api/v1/keys")
        .await
        .json()
        .await
        .unwrap();
    let items = after["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    for key in items {
        let kid = key["kid"].as_str().unwrap();
        let active = key["active"].as_bool().unwrap();
        assert_eq!(active, new_kids.contains(kid), "{key}");
        assert_eq!(key["publish_until"].is_string(), !active, "{key}");
    }
    // The JWKS publishes old and new alike.
    let jwks = app.get("/jwks.json").await.text().await.unwrap();
    for kid in &new_kids {
        assert!(jwks.contains(kid.as_str()));
    }
    // Pagination over keys.
    let page: Value = get(&app, Some(&token), "/admin/api/v1/keys?limit=4")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = get(
        &app,
        Some(&token),
        &format!("/admin/api/v1/keys?limit=4&cursor={cursor}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());

    let audit: Value = get(&app, Some(&token), "/admin/api/v1/audit?type=keys.rotated")
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("api_token:keys (tok_")
    );
    assert_eq!(entries[0]["ip"], "127.0.0.1");
    app.stop();
}

async fn audit_filters_and_paginates(db: &TestDb) {
    let app = spawn_app(db).await;
    let token = api_token(&app, "auditor").await;
    super::audit_keys::seed_audit(&app).await;
    let list = |query: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            let res = get(app, Some(&token), &format!("/admin/api/v1/audit{query}")).await;
            assert_eq!(res.status(), 200, "{query}");
            res.json::<Value>().await.unwrap()
        }
    };

    let all = list("").await;
    let text = all.to_string();
    assert!(!text.contains("hunter2"), "secrets are redacted: {text}");
    assert!(text.contains("[redacted]"));
    // Newest first: the token's creation (now) then the seeded entries from the latest down.
    let all_targets = audit_targets(&all);
    assert_eq!(all_targets.len(), 6);
    assert!(all_targets[0].starts_with("api_token.created"));
    assert_eq!(all_targets[1], "user.disabled user:u2");
    assert_eq!(all_targets[5], "user.disabled user:u1");

    let by_type = list("?type=client.created").await;
    assert_eq!(
        audit_targets(&by_type),
        ["client.created client:c2", "client.created client:c1"]
    );
    let by_user = list("?user_id=u1").await;
    assert_eq!(
        audit_targets(&by_user),
        ["user.sessions_ended user:u1", "user.disabled user:u1"]
    );
    let window = list("?from=1000100&to=1970-01-12T13:53:20Z").await; // to = 1_000_400
    assert_eq!(
        audit_targets(&window),
        [
            "client.created client:c2",
            "user.sessions_ended user:u1",
            "client.created client:c1"
        ]
    );

    // Pages of two walk every entry once, in order.
    let mut walked = Vec::new();
    let mut path = "/admin/api/v1/audit?limit=2".to_owned();
    loop {
        let page: Value = get(&app, Some(&token), &path).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        walked.extend(audit_targets(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/api/v1/audit?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(walked, all_targets);
    app.stop();
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    let res = app.get("/admin/api/v1/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/keys",
        "/keys/rotate",
        "/audit",
        "/tokens",
        "/tokens/{id}/revoke",
        "/sign-ins",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Every operation takes the bearer token, so every one can answer 401 and 403; and every
    // one needs the database, so every one can answer 503 when it is unavailable.
    assert_eq!(doc["security"][0]["bearer"], serde_json::json!([]));
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in ["401", "403", "503"] {
                let body = &operation["responses"][status]["content"]["application/json"];
                assert_eq!(
                    body["schema"]["$ref"], "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
    let audit_params: BTreeSet<&str> = doc["paths"]["/audit"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["type", "user_id", "from", "to", "limit", "cursor"] {
        assert!(audit_params.contains(name), "{name}");
    }
    for schema in ["ErrorBody", "KeyInfo", "AuditEntry", "ApiToken", "SignIn"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn wrong_methods_get_a_json_405() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    let token = api_token(&app, "methods").await;
    let res = app
        .client
        .delete(app.url("/admin/api/v1/keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    error(res, 405, "method_not_allowed").await;
    app.stop();
    db.cleanup().await;
}
