//! Development clients: http://localhost redirect URIs for local development, allowed only on a
//! client marked development (UI, API and portico.toml), matched exactly at /authorize, shown
//! with a warning; turning the flag off while such URIs remain is refused. Tested both ways, as
//! an attacker would send it.

use reqwest::Method;
use serde_json::json;

use super::{api_token, audit_count, call, csrf_in, error, json_of, page, signed_in};
use super::{client, create_admin};
use crate::helpers::{TestApp, TestDb, spawn_app, spawn_app_with};
use crate::on_both_backends;
use portico::crypto::MasterKey;

on_both_backends!(
    a_development_client_may_use_http_localhost_and_no_other_may,
    authorize_matches_http_localhost_exactly_and_only_for_development_clients,
    development_cannot_be_turned_off_while_localhost_uris_remain,
    portico_toml_clients_may_be_development_clients,
);

const LOCALHOST: &str = "http://localhost:3000/auth/callback";

fn new_client(id: &str, development: Option<bool>) -> serde_json::Value {
    let mut body = json!({
        "client_id": id,
        "name": "Local app",
        "type": "confidential",
        "redirect_uris": [LOCALHOST],
    });
    if let Some(d) = development {
        body["development"] = json!(d);
    }
    body
}

/// Creates the development client `local` through the API; returns the API token.
async fn created_local(app: &TestApp) -> String {
    let token = api_token(app, "dev").await;
    let body = Some(new_client("local", Some(true)));
    let res = call(app, Method::POST, Some(&token), "/clients", body).await;
    json_of(res, 201).await;
    token
}

async fn stored(app: &TestApp, id: &str) -> Option<portico::clients::Client> {
    portico::clients::repo::find(&app.state.store, id)
        .await
        .unwrap()
}

async fn a_development_client_may_use_http_localhost_and_no_other_may(db: &TestDb) {
    let app = spawn_app(db).await;
    create_admin(&app).await;
    let token = api_token(&app, "dev").await;
    let t = Some(token.as_str());

    // API: refused without the flag (absent or false), with a message that says how to allow it.
    for development in [None, Some(false)] {
        let body = error(
            call(
                &app,
                Method::POST,
                t,
                "/clients",
                Some(new_client("local", development)),
            )
            .await,
            422,
            "validation_failed",
        )
        .await;
        let message = body["fields"]["redirect_uris"].as_str().unwrap();
        assert_eq!(
            message,
            "http://localhost:3000/auth/callback: http is allowed only on loopback addresses; \
             for http://localhost, mark this as a development client"
        );
    }
    // *.localhost is not loopback by every resolver: refused even for a development client.
    let mut sub = new_client("local", Some(true));
    sub["redirect_uris"] = json!(["http://app.localhost:3000/cb"]);
    error(
        call(&app, Method::POST, t, "/clients", Some(sub)).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(stored(&app, "local").await.is_none());

    // UI: refused the same way, beside the field, the box unticked.
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/clients").await;
    assert!(
        html.contains(
            "Development client: allows http://localhost redirect URIs (for local development only)"
        ),
        "{html}"
    );
    let csrf = csrf_in(&html);
    let form = |development: bool| {
        let mut fields = vec![
            ("csrf", csrf.clone()),
            ("client_id", "local-ui".to_owned()),
            ("name", "Local UI".to_owned()),
            ("type", "public".to_owned()),
            ("redirect_uris", LOCALHOST.to_owned()),
            ("grant_types", "authorization_code".to_owned()),
        ];
        if development {
            fields.push(("development", "true".to_owned()));
        }
        fields
    };
    let res = browser
        .post(app.url("/admin/clients"))
        .form(&form(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("for http://localhost, mark this as a development client"),
        "{html}"
    );
    assert!(stored(&app, "local-ui").await.is_none());

    // With the box ticked: created, and shown as a development client on its page and the list.
    let res = browser
        .post(app.url("/admin/clients"))
        .form(&form(true))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(stored(&app, "local-ui").await.unwrap().development);
    let html = page(&app, &browser, "/admin/clients/local-ui").await;
    assert!(html.contains("id=\"development-warning\""), "{html}");
    assert!(
        html.contains("id=\"client-development\" name=\"development\" value=\"true\" checked"),
        "{html}"
    );
    let list = page(&app, &browser, "/admin/clients").await;
    assert!(
        list.contains(r#"local-ui</a> <span class="tag warn">development</span>"#),
        "{list}"
    );

    // API: created with the flag, which reads back.
    let created = json_of(
        call(
            &app,
            Method::POST,
            t,
            "/clients",
            Some(new_client("local", Some(true))),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["development"], true);
    let read = json_of(
        call(&app, Method::GET, t, "/clients/local", None).await,
        200,
    )
    .await;
    assert_eq!(read["development"], true);
    assert_eq!(read["redirect_uris"][0], LOCALHOST);
    // A client that is not one says so too.
    let other = json!({
        "client_id": "prod", "name": "Prod", "redirect_uris": ["https://app.example/cb"],
    });
    let prod = json_of(
        call(&app, Method::POST, t, "/clients", Some(other)).await,
        201,
    )
    .await;
    assert_eq!(prod["development"], false);
    let html = page(&app, &browser, "/admin/clients/prod").await;
    assert!(!html.contains("id=\"development-warning\""), "{html}");
    app.stop();
}

/// `/authorize` for `client_id` with `redirect_uri`: its status and Location, if any.
async fn authorize(app: &TestApp, client_id: &str, redirect_uri: &str) -> (u16, Option<String>) {
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", "s")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    let res = client().get(url.as_str()).send().await.unwrap();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (res.status().as_u16(), location)
}

async fn authorize_matches_http_localhost_exactly_and_only_for_development_clients(db: &TestDb) {
    let app = spawn_app(db).await;
    let token = created_local(&app).await;
    let t = Some(token.as_str());
    let prod = json!({
        "client_id": "prod", "name": "Prod", "redirect_uris": ["https://app.example/cb"],
    });
    json_of(
        call(&app, Method::POST, t, "/clients", Some(prod)).await,
        201,
    )
    .await;

    // The exact registered URI: accepted (on to the sign-in, never back with an error).
    let (status, location) = authorize(&app, "local", LOCALHOST).await;
    assert!(matches!(status, 200 | 302 | 303), "{status}");
    if let Some(l) = &location {
        assert!(!l.starts_with("http://localhost"), "{l}");
    }
    // Another port, no port, another path, or the loopback IP: an error page, no redirect.
    for other in [
        "http://localhost:3001/auth/callback",
        "http://localhost/auth/callback",
        "http://localhost:3000/auth/callback/",
        "http://localhost:3000/other",
        "http://127.0.0.1:3000/auth/callback",
        "http://app.localhost:3000/auth/callback",
    ] {
        let (status, location) = authorize(&app, "local", other).await;
        assert_eq!((status, location), (400, None), "{other}");
    }
    // A client that is not a development client never sends anyone to http://localhost.
    let (status, location) = authorize(&app, "prod", LOCALHOST).await;
    assert_eq!((status, location), (400, None));
    app.stop();
}

async fn development_cannot_be_turned_off_while_localhost_uris_remain(db: &TestDb) {
    let app = spawn_app(db).await;
    create_admin(&app).await;
    let token = created_local(&app).await;
    let t = Some(token.as_str());
    let mut off = new_client("local", Some(false));
    off.as_object_mut().unwrap().remove("client_id");
    let body = error(
        call(&app, Method::PUT, t, "/clients/local", Some(off.clone())).await,
        422,
        "validation_failed",
    )
    .await;
    let message = body["fields"]["development"].as_str().unwrap();
    assert!(
        message.contains("cannot stop being a development client")
            && message.contains(LOCALHOST)
            && message.contains("remove its http://localhost URIs first"),
        "{message}"
    );
    assert!(stored(&app, "local").await.unwrap().development);

    // The same on the client's page.
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/clients/local").await;
    let csrf = csrf_in(&html);
    let res = browser
        .post(app.url("/admin/clients/local"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Local app"),
            ("redirect_uris", LOCALHOST),
            ("grant_types", "authorization_code"),
            ("scopes", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(r#"<p class="field-error" id="client-development-error">This client cannot stop being a development client"#),
        "{html}"
    );
    assert!(stored(&app, "local").await.unwrap().development);
    assert_eq!(audit_count(&app, "client.updated").await, 0);

    // With the URIs replaced, it may stop being one.
    off["redirect_uris"] = json!(["https://app.example/cb"]);
    let view = json_of(
        call(&app, Method::PUT, t, "/clients/local", Some(off)).await,
        200,
    )
    .await;
    assert_eq!(view["development"], false);
    assert!(!stored(&app, "local").await.unwrap().development);
    app.stop();
}

async fn portico_toml_clients_may_be_development_clients(db: &TestDb) {
    let entry = |development: bool| -> portico::clients::ClientConfig {
        toml::from_str(&format!(
            "client_id = \"local\"\ntype = \"public\"\ndevelopment = {development}\n\
             redirect_uris = [\"{LOCALHOST}\"]\n"
        ))
        .unwrap()
    };
    let err = portico::clients::validate_config(&[entry(false)]).unwrap_err();
    assert!(err.contains("mark this as a development client"), "{err}");
    portico::clients::validate_config(&[entry(true)]).unwrap();
    let app = spawn_app_with(db, MasterKey::generate(), move |s| {
        s.clients = vec![entry(true)];
    })
    .await;
    assert!(stored(&app, "local").await.unwrap().development);
    let (status, _) = authorize(&app, "local", LOCALHOST).await;
    assert!(matches!(status, 200 | 302 | 303), "{status}");
    app.stop();
}
