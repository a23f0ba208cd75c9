//! `/admin/api/v1/providers`: create/read/update/delete with the client secret never returned,
//! per-kind validation, config-managed providers read-only, 401/403/404/409/422, SAML SP
//! values, test discovery against a stand-in issuer, and a provider made through the API
//! serving logins at once (and changes to it applying at once).

use serde_json::{Value, json};

use super::{api_token, audit_count, call, error, json_of, revoked_api_token};
use crate::federation_flow::full_login;
use crate::helpers::{TestApp, TestDb, spawn_app_with};
use crate::oidc_support::{
    Arrival, CLIENT_ID, CLIENT_SECRET, REDIRECT, browse_with, clients, events, param,
    relying_party, start_url,
};
use crate::on_both_backends;
use crate::saml_idp::{KeyPair, metadata_xml, serve_metadata};
use crate::upstream_idp::{UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET, Upstream};
use portico::crypto::MasterKey;

on_both_backends!(
    providers_are_created_read_updated_and_deleted,
    provider_errors_are_401_403_404_409_422,
    kind_rules_and_bad_saml_metadata_are_422_with_the_field,
    saml_providers_show_what_the_idp_needs,
    discovery_reports_what_the_issuer_offers,
    an_api_provider_logs_users_in_at_once_and_changes_apply_at_once,
);

const GITHUB_SECRET: &str = "gh-secret-do-not-echo-0123456789";

pub async fn spawn_with_config_provider(db: &TestDb) -> TestApp {
    spawn_app_with(db, MasterKey::generate(), |s| {
        s.providers = vec![
            toml::from_str(
                r#"
id = "from-config"
kind = "oidc"
client_id = "portico"
issuer = "https://idp.example"
"#,
            )
            .unwrap(),
        ];
        s.clients = clients();
    })
    .await
}

fn github() -> Value {
    json!({
        "id": "ghe",
        "kind": "github",
        "display_name": "GitHub Enterprise",
        "client_id": "Iv1.abc",
        "client_secret": GITHUB_SECRET,
        "github_api_base": "https://ghe.example/api/v3",
        "github_web_base": "https://ghe.example",
        "allowed_orgs": ["acme", "acme:platform"],
        "email_domains": ["Acme.example"],
        "trust_email": true,
        "incremental_scopes": ["repo", "read:org repo"],
    })
}

pub async fn sealed_secret(app: &TestApp, id: &str) -> Option<Vec<u8>> {
    sqlx::query_scalar("SELECT client_secret FROM providers WHERE id = $1")
        .bind(id)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn providers_are_created_read_updated_and_deleted(db: &TestDb) {
    use reqwest::Method;
    let app = spawn_with_config_provider(db).await;
    let token = api_token(&app, "automation").await;
    let t = Some(token.as_str());

    let created = json_of(
        call(&app, Method::POST, t, "/providers", Some(github())).await,
        201,
    )
    .await;
    assert_eq!(created["id"], "ghe");
    assert_eq!(created["kind"], "github");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["has_client_secret"], true);
    assert_eq!(created["allowed_orgs"], json!(["acme", "acme:platform"]));
    assert_eq!(created["email_domains"], json!(["acme.example"]));
    assert_eq!(created["incremental_scopes"], json!(["repo", "read:org"]));
    assert!(created.get("client_secret").is_none());
    assert!(!created.to_string().contains(GITHUB_SECRET));
    assert!(created.get("hosted_domains").is_none(), "google-only field");
    // Stored sealed, never in clear.
    let sealed = sealed_secret(&app, "ghe").await.expect("a sealed secret");
    assert!(!contains(&sealed, GITHUB_SECRET.as_bytes()));
    assert_eq!(audit_count(&app, "provider.created").await, 1);
    let audit: String =
        sqlx::query_scalar("SELECT details FROM audit_log WHERE action = 'provider.created'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert!(!audit.contains(GITHUB_SECRET), "{audit}");
    assert!(audit.contains("ghe.example"), "{audit}");

    // Read: never the secret.
    let shown = json_of(
        call(&app, Method::GET, t, "/providers/ghe", None).await,
        200,
    )
    .await;
    assert_eq!(shown["github_web_base"], "https://ghe.example");
    assert!(!shown.to_string().contains(GITHUB_SECRET));
    let first = json_of(
        call(&app, Method::GET, t, "/providers?limit=1", None).await,
        200,
    )
    .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let rest = json_of(
        call(
            &app,
            Method::GET,
            t,
            &format!("/providers?cursor={cursor}"),
            None,
        )
        .await,
        200,
    )
    .await;
    let all: Vec<Value> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .cloned()
        .collect();
    let mut ids: Vec<&str> = all.iter().map(|p| p["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["from-config", "ghe"]);
    let config = all.iter().find(|p| p["id"] == "from-config").unwrap();
    assert_eq!(config["managed_by_config"], true);
    assert!(!all.iter().any(|p| p.to_string().contains(GITHUB_SECRET)));

    // Update without a secret keeps the stored one; with one, replaces it.
    let mut edited = github();
    edited.as_object_mut().unwrap().remove("client_secret");
    edited["display_name"] = json!("GHE");
    edited["enabled"] = json!(false);
    edited["incremental_scopes"] = json!([]);
    let updated = json_of(
        call(&app, Method::PUT, t, "/providers/ghe", Some(edited.clone())).await,
        200,
    )
    .await;
    assert_eq!(updated["display_name"], "GHE");
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["has_client_secret"], true);
    assert_eq!(updated["incremental_scopes"], json!([]));
    assert_eq!(sealed_secret(&app, "ghe").await.unwrap(), sealed);
    edited["client_secret"] = json!("a-new-secret-0123456789");
    json_of(
        call(&app, Method::PUT, t, "/providers/ghe", Some(edited)).await,
        200,
    )
    .await;
    assert_ne!(sealed_secret(&app, "ghe").await.unwrap(), sealed);
    assert_eq!(audit_count(&app, "provider.updated").await, 2);
    let stored = portico::providers::repo::find(&app.state.store, "ghe")
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.enabled);

    // Delete.
    let res = call(&app, Method::DELETE, t, "/providers/ghe", None).await;
    assert_eq!(res.status(), 204);
    assert!(
        portico::providers::repo::find(&app.state.store, "ghe")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(audit_count(&app, "provider.deleted").await, 1);
    error(
        call(&app, Method::GET, t, "/providers/ghe", None).await,
        404,
        "not_found",
    )
    .await;

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
    assert!(doc["paths"]["/providers"]["post"].is_object());
    assert!(doc["paths"]["/providers/{id}"]["put"].is_object());
    assert!(doc["paths"]["/providers/discover"]["post"].is_object());
}

async fn provider_errors_are_401_403_404_409_422(db: &TestDb) {
    use reqwest::Method;
    let app = spawn_with_config_provider(db).await;
    let token = api_token(&app, "automation").await;
    let t = Some(token.as_str());

    error(
        call(&app, Method::GET, None, "/providers", None).await,
        401,
        "unauthorized",
    )
    .await;
    error(
        call(&app, Method::GET, Some("pat_nonsense"), "/providers", None).await,
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
            "/providers",
            Some(github()),
        )
        .await,
        403,
        "token_revoked",
    )
    .await;
    assert!(
        portico::providers::repo::find(&app.state.store, "ghe")
            .await
            .unwrap()
            .is_none()
    );

    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(github())),
        (Method::DELETE, None),
    ] {
        error(
            call(&app, method, t, "/providers/nope", body).await,
            404,
            "not_found",
        )
        .await;
    }

    // 422: every bad field named, nothing stored.
    let body = error(
        call(
            &app,
            Method::POST,
            t,
            "/providers",
            Some(json!({
                "id": "Not A Slug!",
                "kind": "ldap",
                "display_name": "x\u{7}",
                "client_id": "c",
                "issuer": "ftp://idp.example",
                "scopes": ["openid", "bad\"scope"],
                "email_domains": ["not a domain"],
                "allowed_orgs": ["acme/evil"],
            })),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    for field in [
        "id",
        "kind",
        "display_name",
        "issuer",
        "scopes",
        "email_domains",
        "allowed_orgs",
    ] {
        assert!(body["fields"][field].is_string(), "{field}: {body}");
    }
    let body = error(
        call(
            &app,
            Method::POST,
            t,
            "/providers",
            Some(json!({ "id": "discover", "kind": "oidc", "client_id": "c",
                         "issuer": "https://idp.example" })),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["fields"]["id"].as_str().unwrap().contains("reserved"));
    let unknown = app
        .client
        .post(app.url("/admin/api/v1/providers"))
        .bearer_auth(&token)
        .json(&json!({ "id": "x", "kind": "oidc", "hosted_domain": "typo.example" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400, "unknown fields are refused");
    assert_eq!(audit_count(&app, "provider.created").await, 0);

    // 409: a taken id, and config-managed providers are read-only.
    json_of(
        call(&app, Method::POST, t, "/providers", Some(github())).await,
        201,
    )
    .await;
    error(
        call(&app, Method::POST, t, "/providers", Some(github())).await,
        409,
        "conflict",
    )
    .await;
    let config_edit = json!({ "client_id": "portico", "issuer": "https://evil.example" });
    error(
        call(
            &app,
            Method::PUT,
            t,
            "/providers/from-config",
            Some(config_edit),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    error(
        call(&app, Method::DELETE, t, "/providers/from-config", None).await,
        409,
        "conflict",
    )
    .await;
    let config = portico::providers::repo::find(&app.state.store, "from-config")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config.issuer.as_deref(), Some("https://idp.example"));
    assert_eq!(audit_count(&app, "provider.deleted").await, 0);
    assert_eq!(audit_count(&app, "provider.updated").await, 0);

    // The kind is fixed once created.
    let mut to_oidc = github();
    to_oidc["kind"] = json!("oidc");
    let body = error(
        call(&app, Method::PUT, t, "/providers/ghe", Some(to_oidc)).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["fields"]["kind"].is_string(), "{body}");
}

/// POSTs `body` and returns the 422's field errors.
async fn refused(app: &TestApp, token: &str, body: Value) -> Value {
    let res = call(
        app,
        reqwest::Method::POST,
        Some(token),
        "/providers",
        Some(body.clone()),
    )
    .await;
    let answer = error(res, 422, "validation_failed").await;
    answer["fields"].clone()
}

async fn kind_rules_and_bad_saml_metadata_are_422_with_the_field(db: &TestDb) {
    let app = spawn_with_config_provider(db).await;
    let token = api_token(&app, "automation").await;
    let cases = [
        (
            json!({ "id": "g", "kind": "google", "client_id": "c" }),
            "client_secret",
            "Enter the client secret Google gave you.",
        ),
        (
            json!({ "id": "gh", "kind": "github", "client_id": "c", "client_secret": "s",
                    "hosted_domains": ["acme.example"] }),
            "hosted_domains",
            "is an option of Google providers only",
        ),
        (
            json!({ "id": "gh", "kind": "github", "client_id": "c", "client_secret": "s",
                    "issuer": "https://github.com" }),
            "issuer",
            "Leave the issuer empty",
        ),
        (
            json!({ "id": "gh", "kind": "github", "client_id": "c", "client_secret": "s",
                    "github_web_base": "ftp://ghe.example" }),
            "github_web_base",
            "",
        ),
        (
            json!({ "id": "o", "kind": "oidc", "client_id": "c" }),
            "issuer",
            "Enter the issuer URL, e.g. https://accounts.example.com.",
        ),
        (
            json!({ "id": "o", "kind": "oidc", "client_id": "c",
                    "issuer": "http://idp.example" }),
            "issuer",
            "must use https",
        ),
        (
            json!({ "id": "o", "kind": "oidc", "issuer": "https://idp.example" }),
            "client_id",
            "Enter the client ID the provider gave you.",
        ),
        (
            json!({ "id": "o", "kind": "oidc", "client_id": "c",
                    "issuer": "https://idp.example", "allowed_orgs": ["acme"] }),
            "allowed_orgs",
            "is an option of GitHub providers only",
        ),
        (
            json!({ "id": "s", "kind": "saml",
                    "saml_idp_metadata_xml": "<md:EntityDescriptor oops" }),
            "saml_idp_metadata_xml",
            "",
        ),
        (
            json!({ "id": "s", "kind": "saml",
                    "saml_idp_metadata_xml": "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"e\">]><x>&e;</x>" }),
            "saml_idp_metadata_xml",
            "",
        ),
        (
            json!({ "id": "s", "kind": "saml" }),
            "saml_idp_metadata_xml",
            "exactly one",
        ),
        (
            json!({ "id": "s", "kind": "saml",
                    "saml_idp_metadata_url": "http://idp.example/metadata" }),
            "saml_idp_metadata_url",
            "must use https",
        ),
        (
            json!({ "id": "s", "kind": "saml",
                    "saml_idp_metadata_url": "https://idp.example/metadata",
                    "saml": { "name_id_format": "bogus" } }),
            "saml",
            "name_id_format",
        ),
        (
            json!({ "id": "s", "kind": "saml",
                    "saml_idp_metadata_url": "https://idp.example/metadata",
                    "incremental_scopes": ["repo"] }),
            "incremental_scopes",
            "SAML 2.0 providers have no scopes",
        ),
        (
            json!({ "id": "o", "kind": "oidc", "client_id": "c",
                    "issuer": "https://idp.example",
                    "incremental_scopes": ["repo", "bad\"scope"] }),
            "incremental_scopes",
            "is not a valid scope",
        ),
        (
            json!({ "id": "o", "kind": "oidc", "client_id": "c",
                    "issuer": "https://idp.example",
                    "saml": { "name_id_format": "email" } }),
            "saml",
            "is an option of SAML 2.0 providers only",
        ),
    ];
    for (body, field, words) in cases {
        let fields = refused(&app, &token, body.clone()).await;
        let message = fields[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} for {body}: {fields}"));
        assert!(message.contains(words), "{body}: {message}");
    }
    assert_eq!(
        portico::providers::repo::all(&app.state.store)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(audit_count(&app, "provider.created").await, 0);
}

async fn saml_providers_show_what_the_idp_needs(db: &TestDb) {
    use reqwest::Method;
    let app = spawn_with_config_provider(db).await;
    let token = api_token(&app, "automation").await;
    let t = Some(token.as_str());
    let idp = KeyPair::generate("idp");
    let xml = metadata_xml("https://idp.example/saml", &[&idp]);
    let created = json_of(
        call(
            &app,
            Method::POST,
            t,
            "/providers",
            Some(json!({
                "id": "okta",
                "kind": "saml",
                "display_name": "Okta",
                "saml_idp_metadata_xml": xml,
                "saml": { "name_id_format": "email" },
            })),
        )
        .await,
        201,
    )
    .await;
    let base = format!("{}/saml/okta", app.address);
    assert_eq!(created["saml_sp"]["acs_url"], format!("{base}/acs"));
    assert_eq!(
        created["saml_sp"]["metadata_url"],
        format!("{base}/metadata")
    );
    assert_eq!(created["saml_sp"]["entity_id"], format!("{base}/metadata"));
    assert_eq!(created["saml"]["name_id_format"], "email");
    assert_eq!(created["saml_idp_metadata_xml"], xml);
    // A metadata URL is fetched when saved: it must answer with metadata that parses.
    let good = serve_metadata(xml.clone()).await;
    let bad = serve_metadata("<html>not metadata</html>".into()).await;
    let by_url =
        |id: &str, url: &str| json!({ "id": id, "kind": "saml", "saml_idp_metadata_url": url });
    let body = error(
        call(
            &app,
            Method::POST,
            t,
            "/providers",
            Some(by_url("entra", &bad)),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(
        body["fields"]["saml_idp_metadata_url"]
            .as_str()
            .unwrap()
            .contains("IdP metadata"),
        "{body}"
    );
    let fetched = json_of(
        call(
            &app,
            Method::POST,
            t,
            "/providers",
            Some(by_url("entra", &good)),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(fetched["saml_idp_metadata_url"], good.as_str());

    // The connector is built from the new row at once: the SP metadata is served.
    let res = app.get("/saml/okta/metadata").await;
    assert_eq!(res.status(), 200);
    let metadata = res.text().await.unwrap();
    assert!(metadata.contains(&format!("{base}/acs")), "{metadata}");
}

async fn discovery_reports_what_the_issuer_offers(db: &TestDb) {
    use reqwest::Method;
    let app = spawn_with_config_provider(db).await;
    let token = api_token(&app, "automation").await;
    let t = Some(token.as_str());
    let upstream = Upstream::start().await;

    let report = json_of(
        call(
            &app,
            Method::POST,
            t,
            "/providers/discover",
            Some(json!({ "issuer": upstream.issuer })),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(report["issuer"], upstream.issuer.as_str());
    assert_eq!(
        report["token_endpoint"],
        format!("{}/token", upstream.issuer)
    );
    assert_eq!(report["jwks_uri"], format!("{}/jwks", upstream.issuer));
    assert!(
        report["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "RS256"),
        "{report}"
    );
    assert_eq!(report["problems"], json!([]), "{report}");

    // A trailing slash is not the document's issuer: reported, not hidden.
    let report = json_of(
        call(
            &app,
            Method::POST,
            t,
            "/providers/discover",
            Some(json!({ "issuer": format!("{}/", upstream.issuer) })),
        )
        .await,
        200,
    )
    .await;
    assert!(
        report["problems"][0]
            .as_str()
            .unwrap()
            .contains("must match exactly")
    );

    // No document there (Portico's own 404), nobody listening, not a URL: 422 on `issuer`.
    for (issuer, words) in [
        (app.url("/nothing-here"), "HTTP 404"),
        ("http://127.0.0.1:9".to_owned(), "connection failed"),
        ("not a url".to_owned(), "Enter a full URL"),
        ("".to_owned(), "Enter the issuer URL"),
    ] {
        let body = error(
            call(
                &app,
                Method::POST,
                t,
                "/providers/discover",
                Some(json!({ "issuer": issuer })),
            )
            .await,
            422,
            "validation_failed",
        )
        .await;
        let message = body["fields"]["issuer"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{issuer}: {body}");
    }
    error(
        call(
            &app,
            Method::POST,
            None,
            "/providers/discover",
            Some(json!({ "issuer": upstream.issuer })),
        )
        .await,
        401,
        "unauthorized",
    )
    .await;
}

async fn an_api_provider_logs_users_in_at_once_and_changes_apply_at_once(db: &TestDb) {
    use reqwest::Method;
    let upstream = Upstream::start().await;
    let app = spawn_with_config_provider(db).await;
    let token = api_token(&app, "automation").await;
    let t = Some(token.as_str());
    let corp = json!({
        "id": "corp",
        "kind": "oidc",
        "display_name": "Corp",
        "issuer": upstream.issuer,
        "client_id": UPSTREAM_CLIENT_ID,
        "client_secret": UPSTREAM_CLIENT_SECRET,
        "scopes": ["openid", "email", "profile"],
        "claims": { "groups": "groups" },
    });
    json_of(
        call(&app, Method::POST, t, "/providers", Some(corp.clone())).await,
        201,
    )
    .await;
    let (_, info) = full_login(&app, "corp", &["openid", "email"]).await;
    assert_eq!(info["email"], "alice@corp.example");

    // A wrong secret stored a moment later is what the next login uses: the upstream refuses it.
    let mut wrong = corp.clone();
    wrong["client_secret"] = json!("not-the-upstream-secret");
    json_of(
        call(&app, Method::PUT, t, "/providers/corp", Some(wrong)).await,
        200,
    )
    .await;
    assert!(code_in_new_browser(&app).await.is_none());
    // Put right again: logins work again at once.
    json_of(
        call(&app, Method::PUT, t, "/providers/corp", Some(corp.clone())).await,
        200,
    )
    .await;
    assert!(code_in_new_browser(&app).await.is_some());
    full_login(&app, "corp", &["openid", "email", "offline_access"]).await;

    // Disabled: no login through it.
    let mut disabled = corp.clone();
    disabled["enabled"] = json!(false);
    json_of(
        call(&app, Method::PUT, t, "/providers/corp", Some(disabled)).await,
        200,
    )
    .await;
    assert!(code_in_new_browser(&app).await.is_none());

    // Deleted: the identity goes, the user stays, sessions end and refresh tokens are revoked.
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM identities WHERE provider_id = 'corp'"
        )
        .await,
        1
    );
    let live_sessions = count(
        &app,
        "SELECT COUNT(*) FROM sso_sessions WHERE provider_id = 'corp' AND ended_at IS NULL",
    )
    .await;
    assert!(live_sessions >= 1);
    let res = call(&app, Method::DELETE, t, "/providers/corp", None).await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM identities WHERE provider_id = 'corp'"
        )
        .await,
        0
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM sso_sessions WHERE provider_id = 'corp' AND ended_at IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM refresh_tokens WHERE revoked_at IS NULL"
        )
        .await,
        0
    );
    let ended = events(&app, "session.ended").await;
    assert_eq!(ended.len() as i64, live_sessions);
    assert!(ended.iter().all(|e| e["reason"] == "provider_deleted"));
    let audit: String =
        sqlx::query_scalar("SELECT details FROM audit_log WHERE action = 'provider.deleted'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    let audit: Value = serde_json::from_str(&audit).unwrap();
    assert_eq!(audit["identities_removed"], 1);
    assert!(
        audit["refresh_tokens_revoked"].as_i64().unwrap() >= 1,
        "{audit}"
    );
}

/// Logs in through `corp` in a browser without an SSO session (so the upstream is asked);
/// the code Portico redirected with, if any.
async fn code_in_new_browser(app: &TestApp) -> Option<String> {
    let rp = relying_party(app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let url = start_url(&rp, &[("provider", "corp")]);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    match browse_with(&browser, app, url.as_str(), REDIRECT).await {
        Arrival::At(url) => param(&url, "code"),
        Arrival::Page(status, body) => {
            assert!(status >= 400, "{status}: {body}");
            None
        }
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}
