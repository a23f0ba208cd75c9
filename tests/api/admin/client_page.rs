//! A client's own page: the configuration snippet without the secret, and the edit form through
//! the same validation and service as `PUT /clients/{id}` (errors next to the fields, CSRF,
//! audit); config-managed clients read-only.

use super::{audit_count, create_admin, csrf_in, page, signed_in};
use crate::federation_flow::{google_provider, spawn_with};
use crate::helpers::{TestApp, TestDb};
use crate::oidc_support::CLIENT_ID;
use crate::on_both_backends;
use crate::standins::google::{Account, GoogleStandIn};

on_both_backends!(
    a_client_is_edited_on_its_page,
    the_client_page_has_a_snippet_per_framework_with_its_values,
);

/// Posts a form as the signed-in browser.
async fn submit(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .post(app.url(path))
        .form(fields)
        .send()
        .await
        .unwrap()
}

async fn a_client_is_edited_on_its_page(db: &TestDb) {
    let standin = GoogleStandIn::start(Account::default()).await;
    let app = spawn_with(db, google_provider(&standin.issuer, "")).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    let csrf = csrf_in(&page(&app, &browser, "/admin/clients").await);
    let res = submit(
        &app,
        &browser,
        "/admin/clients",
        &[
            ("csrf", csrf.as_str()),
            ("client_id", "wiki"),
            ("name", "Wiki"),
            ("redirect_uris", "https://wiki.example/cb"),
            ("grant_types", "authorization_code"),
            ("grant_types", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let created = page(&app, &browser, "/admin/clients/wiki/secret?done=created").await;
    assert!(created.contains("href=\"/admin/clients/wiki\""), "linked");

    // The page: the snippet with issuer and client id, never a secret; the form filled in.
    let html = page(&app, &browser, "/admin/clients/wiki").await;
    let issuer = app.state.settings.server.issuer.as_str();
    assert!(html.contains(&format!("issuer: {issuer}")), "{html}");
    assert!(html.contains("client_id: wiki"));
    assert!(!html.contains("client_secret:"));
    assert!(html.contains("id=\"edit-client\""));
    assert!(html.contains("value=\"authorization_code\" checked"));
    assert!(!html.contains("value=\"client_credentials\" checked"));
    assert!(html.contains("name=\"allowed_providers\" value=\"google\">"));

    // Without its CSRF token, or with another one, the form is refused and nothing changes.
    for token in [None, Some("not-the-token")] {
        let mut fields = vec![
            ("name", "Hijacked"),
            ("redirect_uris", "https://evil.example/cb"),
            ("grant_types", "authorization_code"),
        ];
        if let Some(t) = token {
            fields.push(("csrf", t));
        }
        let res = submit(&app, &browser, "/admin/clients/wiki", &fields).await;
        assert_eq!(res.status(), 403);
    }
    assert_eq!(
        portico::clients::repo::find(&app.state.store, "wiki")
            .await
            .unwrap()
            .unwrap()
            .name,
        "Wiki"
    );

    // Bad input: 422, each message next to its field, the input kept, nothing saved.
    let res = submit(
        &app,
        &browser,
        "/admin/clients/wiki",
        &[
            ("csrf", csrf.as_str()),
            ("name", ""),
            ("redirect_uris", "http://wiki.example/cb"),
            ("grant_types", "authorization_code"),
            ("scopes", "openid"),
            ("allowed_providers", "Not A Slug"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    // Every error at once, in plain words, beside its field.
    assert!(html.contains("Enter a name:"), "{html}");
    assert!(
        html.contains("http://wiki.example/cb: http is allowed only on loopback addresses"),
        "{html}"
    );
    assert!(html.contains("“Not A Slug” is not a provider ID"), "{html}");
    assert!(html.contains("http://wiki.example/cb</textarea>"));
    assert!(
        !html.contains("value=\"refresh_token\" checked"),
        "ticks kept"
    );
    assert_eq!(audit_count(&app, "client.updated").await, 0);

    // No grant type ticked: refused by the rule across fields, on the grant types.
    let res = submit(
        &app,
        &browser,
        "/admin/clients/wiki",
        &[
            ("csrf", csrf.as_str()),
            ("name", "Wiki"),
            ("redirect_uris", "https://wiki.example/cb"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(
            r#"<p class="field-error" id="client-grant_types-error">Choose at least one grant type"#
        ),
        "{html}"
    );

    // Saved: every field, audited, then the page says so.
    let res = submit(
        &app,
        &browser,
        "/admin/clients/wiki",
        &[
            ("csrf", csrf.as_str()),
            ("name", "Team wiki"),
            (
                "redirect_uris",
                "https://wiki.example/cb\r\nhttps://wiki.example/cb2",
            ),
            ("post_logout_redirect_uris", "https://wiki.example/bye"),
            ("grant_types", "authorization_code"),
            ("grant_types", "client_credentials"),
            ("scopes", "openid email"),
            ("allowed_providers", "google"),
            ("allowed_resources", "https://api.wiki.example/\r\n"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/admin/clients/wiki?done=updated"
    );
    let stored = portico::clients::repo::find(&app.state.store, "wiki")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "Team wiki");
    let uris: Vec<&str> = stored.redirect_uris.iter().map(|u| u.as_str()).collect();
    assert_eq!(
        uris,
        ["https://wiki.example/cb", "https://wiki.example/cb2"]
    );
    assert_eq!(
        stored.post_logout_redirect_uris[0].as_str(),
        "https://wiki.example/bye"
    );
    let grants: Vec<&str> = stored.grant_types.iter().map(|g| g.as_str()).collect();
    assert_eq!(grants, ["authorization_code", "client_credentials"]);
    assert_eq!(stored.scopes, ["openid", "email"]);
    assert_eq!(stored.allowed_providers[0].to_string(), "google");
    assert_eq!(
        stored.allowed_resources[0].as_str(),
        "https://api.wiki.example/"
    );
    assert_eq!(audit_count(&app, "client.updated").await, 1);
    let actor: String =
        sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = 'client.updated'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(actor, "admin:ada@example.com");
    let html = page(&app, &browser, "/admin/clients/wiki?done=updated").await;
    assert!(html.contains("The client was saved."));
    assert!(html.contains("name=\"allowed_providers\" value=\"google\" checked"));
    assert!(html.contains("value=\"client_credentials\" checked"));
    assert!(html.contains(">https://api.wiki.example/</textarea>"));

    // A client from portico.toml is shown read-only, and a post is refused.
    let html = page(&app, &browser, &format!("/admin/clients/{CLIENT_ID}")).await;
    assert!(html.contains("id=\"read-only\""));
    assert!(!html.contains("id=\"edit-client\""));
    assert!(html.contains(&format!("client_id: {CLIENT_ID}")));
    let res = submit(
        &app,
        &browser,
        &format!("/admin/clients/{CLIENT_ID}"),
        &[
            ("csrf", csrf.as_str()),
            ("name", "Renamed"),
            ("redirect_uris", "https://app.example/cb"),
            ("grant_types", "authorization_code"),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    let managed = portico::clients::repo::find(&app.state.store, CLIENT_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(managed.name, "The App");
    assert_eq!(audit_count(&app, "client.updated").await, 1);

    // No such client.
    let res = browser
        .get(app.url("/admin/clients/nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.stop();
}

/// A ready snippet per framework, each in its own `<details>` naming its guide, with the
/// client's issuer, ID, first redirect URI and scopes; never its secret.
async fn the_client_page_has_a_snippet_per_framework_with_its_values(db: &TestDb) {
    let app = crate::helpers::spawn_app(db).await;
    create_admin(&app).await;
    let token = super::api_token(&app, "snippets").await;
    let body = serde_json::json!({
        "client_id": "notes",
        "name": "Notes",
        "redirect_uris": ["https://notes.example/auth/callback", "https://notes.example/2"],
        "scopes": ["openid", "email", "groups"],
    });
    let created = super::json_of(
        super::call(
            &app,
            reqwest::Method::POST,
            Some(&token),
            "/clients",
            Some(body),
        )
        .await,
        201,
    )
    .await;
    let secret = created["client_secret"].as_str().unwrap();
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/clients/notes").await;
    let issuer = app.state.settings.server.issuer.as_str();
    assert!(
        html.contains("redirect_uri: https://notes.example/auth/callback"),
        "{html}"
    );
    assert!(html.contains("scope: openid email groups"), "{html}");
    for (id, doc) in [
        ("snippet-nextjs", "docs/integrations/nextjs.md"),
        ("snippet-authlib", "docs/integrations/python-authlib.md"),
        ("snippet-go", "docs/integrations/go.md"),
        ("snippet-oauth2-proxy", "docs/integrations/oauth2-proxy.md"),
        ("snippet-grafana", "docs/integrations/grafana.md"),
    ] {
        let start = html
            .find(&format!(r#"<details class="snippet" id="{id}-details">"#))
            .unwrap_or_else(|| panic!("{id} in {html}"));
        let block = &html[start..start + html[start..].find("</details>").unwrap()];
        assert!(block.contains(doc), "{block}");
        assert!(block.contains(issuer), "{block}");
        assert!(block.contains("notes"), "{block}");
        assert!(!block.contains(secret), "{block}");
    }
    for needle in [
        "--redirect-url=https://notes.example/auth/callback",
        "--scope=&#34;openid email groups&#34;",
        "client_secret = $__env{PORTICO_CLIENT_SECRET}",
        "process.env.PORTICO_CLIENT_SECRET",
        "os.environ[&#34;PORTICO_CLIENT_SECRET&#34;]",
    ] {
        assert!(html.contains(needle), "{needle} in {html}");
    }
    assert!(!html.contains(secret));

    // A public client's snippets ask for no secret anywhere.
    let body = serde_json::json!({
        "client_id": "spa",
        "name": "SPA",
        "type": "public",
        "redirect_uris": ["https://spa.example/cb"],
    });
    super::json_of(
        super::call(
            &app,
            reqwest::Method::POST,
            Some(&token),
            "/clients",
            Some(body),
        )
        .await,
        201,
    )
    .await;
    let html = page(&app, &browser, "/admin/clients/spa").await;
    assert!(html.contains("snippet-grafana"), "{html}");
    assert!(!html.contains("PORTICO_CLIENT_SECRET"), "{html}");
    assert!(html.contains("auth_style = InParams"), "{html}");
    app.stop();
}
