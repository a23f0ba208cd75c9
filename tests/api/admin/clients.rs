//! `/admin/api/v1/clients`: create with the secret shown once, read, update, rotate, delete,
//! config-managed clients read-only, and 401/403/404/409/422.

use serde_json::{Value, json};

use super::{api_token, audit_count, call, error, json_of, revoked_api_token};
use crate::helpers::{TestApp, TestDb, spawn_app_with};
use crate::on_both_backends;
use portico::crypto::MasterKey;

on_both_backends!(
    clients_are_created_read_updated_rotated_and_deleted,
    client_errors_are_401_403_404_409_422,
);

async fn spawn_with_config_client(db: &TestDb) -> TestApp {
    spawn_app_with(db, MasterKey::generate(), |s| {
        s.clients = vec![
            serde_json::from_value(json!({
                "client_id": "from-config",
                "type": "public",
                "redirect_uris": ["https://config.example/cb"],
            }))
            .unwrap(),
        ];
    })
    .await
}

fn new_client() -> Value {
    json!({
        "client_id": "wiki",
        "name": "The wiki",
        "type": "confidential",
        "redirect_uris": ["https://wiki.example/callback", "http://127.0.0.1/cb"],
        "post_logout_redirect_uris": ["https://wiki.example/"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "email"],
        "allowed_providers": ["github"],
        "allowed_resources": ["https://api.wiki.example/"],
    })
}

async fn clients_are_created_read_updated_rotated_and_deleted(db: &TestDb) {
    use reqwest::Method;
    let app = spawn_with_config_client(db).await;
    let token = api_token(&app, "automation").await;
    let t = Some(token.as_str());

    let created = json_of(
        call(&app, Method::POST, t, "/clients", Some(new_client())).await,
        201,
    )
    .await;
    assert_eq!(created["client_id"], "wiki");
    assert_eq!(created["type"], "confidential");
    assert_eq!(created["issuer"], app.state.settings.server.issuer.as_str());
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("cs_"), "{created}");
    let stored = portico::clients::repo::find(&app.state.store, "wiki")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secret_matches(&secret));
    assert_eq!(audit_count(&app, "client.created").await, 1);

    // Read: never the secret again.
    let shown = json_of(call(&app, Method::GET, t, "/clients/wiki", None).await, 200).await;
    assert_eq!(shown["redirect_uris"][1], "http://127.0.0.1/cb");
    assert_eq!(
        shown["allowed_resources"],
        json!(["https://api.wiki.example/"])
    );
    assert!(shown.get("client_secret").is_none());
    assert!(!shown.to_string().contains(&secret));
    let list = json_of(
        call(&app, Method::GET, t, "/clients?limit=1", None).await,
        200,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let cursor = list["next_cursor"].as_str().expect("a second page");
    let rest = json_of(
        call(
            &app,
            Method::GET,
            t,
            &format!("/clients?cursor={cursor}"),
            None,
        )
        .await,
        200,
    )
    .await;
    let mut ids: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|c| c["client_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["from-config", "wiki"]);
    let config = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(list["items"].as_array().unwrap())
        .find(|c| c["client_id"] == "from-config")
        .unwrap()
        .clone();
    assert_eq!(config["managed_by_config"], true);

    // Update.
    let mut edited = new_client();
    edited["name"] = json!("Wiki 2");
    edited["redirect_uris"] = json!(["https://wiki.example/cb2"]);
    edited["allowed_resources"] = json!(["https://api.wiki.example/v2"]);
    let updated = json_of(
        call(&app, Method::PUT, t, "/clients/wiki", Some(edited)).await,
        200,
    )
    .await;
    assert_eq!(updated["name"], "Wiki 2");
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://wiki.example/cb2"])
    );
    let stored = portico::clients::repo::find(&app.state.store, "wiki")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.redirect_uri("https://wiki.example/cb2").is_some());
    assert!(
        stored
            .allowed_resource("https://api.wiki.example/v2")
            .is_some()
    );
    assert!(
        stored
            .allowed_resource("https://api.wiki.example/")
            .is_none()
    );
    assert!(stored.secret_matches(&secret), "an update keeps the secret");
    assert_eq!(audit_count(&app, "client.updated").await, 1);

    // Rotate: the old secret stops working.
    let rotated = json_of(
        call(&app, Method::POST, t, "/clients/wiki/secret", None).await,
        200,
    )
    .await;
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let stored = portico::clients::repo::find(&app.state.store, "wiki")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secret_matches(new_secret));
    assert!(!stored.secret_matches(&secret));
    assert_eq!(audit_count(&app, "client.secret_rotated").await, 1);
    let audit: String =
        sqlx::query_scalar("SELECT details FROM audit_log WHERE action = 'client.secret_rotated'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert!(!audit.contains(new_secret));

    // Delete.
    let res = call(&app, Method::DELETE, t, "/clients/wiki", None).await;
    assert_eq!(res.status(), 204);
    assert!(
        portico::clients::repo::find(&app.state.store, "wiki")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(audit_count(&app, "client.deleted").await, 1);
    let res = call(&app, Method::GET, t, "/clients/wiki", None).await;
    assert_eq!(res.status(), 404);

    // The OpenAPI document describes the resource.
    let doc: Value = app
        .client
        .get(app.url("/admin/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/clients/{id}/secret"]["post"].is_object());
    assert!(doc["paths"]["/clients"]["post"].is_object());
    // The development flag, in and out.
    for schema in ["ClientInput", "ClientView"] {
        let field = &doc["components"]["schemas"][schema]["properties"]["development"];
        assert_eq!(field["type"], "boolean", "{schema}: {field}");
        assert!(
            field["description"]
                .as_str()
                .is_some_and(|d| d.contains("http://localhost")),
            "{schema}: {field}"
        );
    }
}

async fn client_errors_are_401_403_404_409_422(db: &TestDb) {
    use reqwest::Method;
    let app = spawn_with_config_client(db).await;
    let token = api_token(&app, "automation").await;
    let t = Some(token.as_str());

    error(
        call(&app, Method::GET, None, "/clients", None).await,
        401,
        "unauthorized",
    )
    .await;
    let revoked = revoked_api_token(&app).await;
    error(
        call(
            &app,
            Method::POST,
            Some(&revoked),
            "/clients",
            Some(new_client()),
        )
        .await,
        403,
        "token_revoked",
    )
    .await;

    for (method, path) in [
        (Method::GET, "/clients/nope"),
        (Method::DELETE, "/clients/nope"),
        (Method::POST, "/clients/nope/secret"),
    ] {
        error(call(&app, method, t, path, None).await, 404, "not_found").await;
    }

    // 422: every bad field is named, and nothing is stored.
    let body = error(
        call(
            &app,
            Method::POST,
            t,
            "/clients",
            Some(json!({
                "client_id": "",
                "name": "",
                "type": "secret-agent",
                "redirect_uris": ["http://wiki.example/cb"],
                "post_logout_redirect_uris": ["https://x.example/#frag"],
                "grant_types": ["password"],
                "allowed_providers": ["Not A Slug!"],
                "allowed_resources": ["not a uri"],
            })),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    for field in [
        "client_id",
        "name",
        "type",
        "redirect_uris",
        "post_logout_redirect_uris",
        "grant_types",
        "allowed_providers",
        "allowed_resources",
    ] {
        assert!(body["fields"][field].is_string(), "{field}: {body}");
    }
    let mut no_uri = new_client();
    no_uri["redirect_uris"] = json!([]);
    let body = error(
        call(&app, Method::POST, t, "/clients", Some(no_uri)).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["fields"]["redirect_uris"].is_string(), "{body}");
    let mut public = new_client();
    public["type"] = json!("public");
    public["grant_types"] = json!(["client_credentials"]);
    error(
        call(&app, Method::POST, t, "/clients", Some(public)).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        portico::clients::repo::list(&app.state.store)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(audit_count(&app, "client.created").await, 0);

    // 409: a taken id, and config-managed clients are read-only.
    call(&app, Method::POST, t, "/clients", Some(new_client())).await;
    error(
        call(&app, Method::POST, t, "/clients", Some(new_client())).await,
        409,
        "conflict",
    )
    .await;
    let mut config = new_client();
    config["type"] = json!("public");
    error(
        call(&app, Method::PUT, t, "/clients/from-config", Some(config)).await,
        409,
        "conflict",
    )
    .await;
    error(
        call(&app, Method::DELETE, t, "/clients/from-config", None).await,
        409,
        "conflict",
    )
    .await;
    error(
        call(&app, Method::POST, t, "/clients/from-config/secret", None).await,
        409,
        "conflict",
    )
    .await;
    assert!(
        portico::clients::repo::find(&app.state.store, "from-config")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(audit_count(&app, "client.deleted").await, 0);
}
