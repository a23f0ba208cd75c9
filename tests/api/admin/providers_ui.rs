//! The providers pages: a form made for each kind, field errors next to the fields, escaping,
//! CSRF refusal, test discovery without JavaScript, edit keeping the secret, SAML values to
//! copy, enable/disable/delete, config-managed providers read-only.

use super::providers::sealed_secret;
use super::{audit_count, create_admin, csrf_in, page, signed_in};
use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;
use crate::saml_idp::{KeyPair, metadata_xml};
use crate::upstream_idp::{UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET, Upstream};

on_both_backends!(
    the_providers_pages_create_edit_and_delete,
    saml_and_config_managed_provider_pages,
);

async fn spawn(db: &TestDb) -> TestApp {
    let app = super::providers::spawn_with_config_provider(db).await;
    create_admin(&app).await;
    app
}

async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser.post(app.url(path)).form(form).send().await.unwrap()
}

async fn the_providers_pages_create_edit_and_delete(db: &TestDb) {
    let app = spawn(db).await;
    let upstream = Upstream::start().await;
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/providers?kind=oidc").await;
    assert!(html.contains("href=\"/admin/providers\" aria-current=\"page\""));
    assert!(html.contains("name=\"issuer\"") && html.contains("id=\"test-discovery\""));
    assert!(!html.contains("name=\"allowed_orgs\""), "an OIDC form");
    let github_form = page(&app, &browser, "/admin/providers?kind=github").await;
    assert!(
        github_form.contains("name=\"allowed_orgs\"")
            && github_form.contains("name=\"github_api_base\"")
    );
    let csrf = csrf_in(&html);
    let issuer = upstream.issuer.as_str();

    // Without its CSRF token the form is refused and nothing is created.
    let sneaky = [
        ("kind", "oidc"),
        ("id", "sneaky"),
        ("issuer", issuer),
        ("client_id", "c"),
    ];
    let res = post(&app, &browser, "/admin/providers", &sneaky).await;
    assert_eq!(res.status(), 403);
    assert!(
        portico::providers::repo::find(&app.state.store, "sneaky")
            .await
            .unwrap()
            .is_none()
    );

    // Test discovery: the page again with what the issuer offers, nothing saved.
    let res = post(
        &app,
        &browser,
        "/admin/providers",
        &[
            ("csrf", csrf.as_str()),
            ("kind", "oidc"),
            ("id", "corp"),
            ("issuer", issuer),
            ("action", "discover"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("{issuer}/token")), "{html}");
    assert!(html.contains("client_secret_basic"));
    assert!(
        html.contains(&format!("value=\"{issuer}\"")),
        "the input is kept"
    );
    assert!(
        portico::providers::repo::find(&app.state.store, "corp")
            .await
            .unwrap()
            .is_none()
    );
    let res = post(
        &app,
        &browser,
        "/admin/providers",
        &[
            ("csrf", csrf.as_str()),
            ("kind", "oidc"),
            ("issuer", "http://127.0.0.1:9"),
            ("action", "discover"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Issuer: could not fetch")
    );

    // Bad input: 422, messages next to the fields, input kept, nothing saved.
    let res = post(
        &app,
        &browser,
        "/admin/providers",
        &[
            ("csrf", csrf.as_str()),
            ("kind", "oidc"),
            ("id", "corp"),
            ("issuer", "http://idp.example"),
            ("client_id", "c"),
            ("email_domains", "not_a_domain"),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("“http://idp.example” must use https"),
        "{html}"
    );
    assert!(html.contains("“not_a_domain” is not a domain name"));
    assert!(html.contains("value=\"http://idp.example\""));
    assert!(
        portico::providers::repo::find(&app.state.store, "corp")
            .await
            .unwrap()
            .is_none()
    );

    // Created, its name escaped everywhere.
    let res = post(
        &app,
        &browser,
        "/admin/providers",
        &[
            ("csrf", csrf.as_str()),
            ("kind", "oidc"),
            ("id", "corp"),
            ("display_name", "<script>alert(1)</script>"),
            ("issuer", issuer),
            ("client_id", UPSTREAM_CLIENT_ID),
            ("client_secret", UPSTREAM_CLIENT_SECRET),
            ("scopes", "openid email"),
            ("incremental_scopes", "repo read:org"),
            ("enabled", "on"),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/admin/providers/corp?done=created"
    );
    let stored = portico::providers::repo::find(&app.state.store, "corp")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.enabled && stored.has_secret());
    assert_eq!(stored.incremental_scopes, ["repo", "read:org"]);
    assert_eq!(stored.display_name, "<script>alert(1)</script>");
    assert_eq!(audit_count(&app, "provider.created").await, 1);
    for path in ["/admin/providers", "/admin/providers/corp"] {
        let html = page(&app, &browser, path).await;
        assert!(!html.contains("<script>alert(1)</script>"), "{path}");
        assert!(
            html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
            "{path}"
        );
        assert!(!html.contains(UPSTREAM_CLIENT_SECRET), "{path}");
    }
    let html = page(&app, &browser, "/admin/providers/corp").await;
    assert!(html.contains(&format!("{}/callback/corp", app.address)));

    // Edit with the secret left empty: saved, the secret kept.
    let sealed = sealed_secret(&app, "corp").await;
    let res = post(
        &app,
        &browser,
        "/admin/providers/corp",
        &[
            ("csrf", csrf.as_str()),
            ("display_name", "Corp"),
            ("issuer", issuer),
            ("client_id", UPSTREAM_CLIENT_ID),
            ("client_secret", ""),
            ("enabled", "on"),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/admin/providers/corp?done=saved"
    );
    let stored = portico::providers::repo::find(&app.state.store, "corp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.display_name, "Corp");
    assert_eq!(sealed_secret(&app, "corp").await, sealed);
    assert_eq!(audit_count(&app, "provider.updated").await, 1);

    // Disable and enable: refused without CSRF, done with it.
    let res = post(&app, &browser, "/admin/providers/corp/disable", &[]).await;
    assert_eq!(res.status(), 403);
    assert!(
        portico::providers::repo::find(&app.state.store, "corp")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    let res = post(
        &app,
        &browser,
        "/admin/providers/corp/disable",
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(
        !portico::providers::repo::find(&app.state.store, "corp")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    let html = page(&app, &browser, "/admin/providers/corp?done=disabled").await;
    assert!(html.contains("id=\"enable-provider\""));

    // Delete: refused without CSRF, done with it (confirmed).
    let res = post(&app, &browser, "/admin/providers/corp/delete", &[]).await;
    assert_eq!(res.status(), 403);
    assert!(
        portico::providers::repo::find(&app.state.store, "corp")
            .await
            .unwrap()
            .is_some()
    );
    let res = post(
        &app,
        &browser,
        "/admin/providers/corp/delete",
        &[("csrf", csrf.as_str()), ("confirm", "yes")],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/providers?done=deleted");
    assert!(
        portico::providers::repo::find(&app.state.store, "corp")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(audit_count(&app, "provider.deleted").await, 1);
    let res = browser
        .get(app.url("/admin/providers/corp"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn saml_and_config_managed_provider_pages(db: &TestDb) {
    let app = spawn(db).await;
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/providers?kind=saml").await;
    assert!(html.contains("name=\"saml_idp_metadata_xml\""));
    assert!(
        !html.contains("name=\"incremental_scopes\""),
        "SAML has no scopes"
    );
    let csrf = csrf_in(&html);

    // Metadata that does not parse: the form again, the message at the field.
    let res = post(
        &app,
        &browser,
        "/admin/providers",
        &[
            ("csrf", csrf.as_str()),
            ("kind", "saml"),
            ("id", "okta"),
            ("saml_idp_metadata_xml", "<not-metadata/>"),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"provider-saml_idp_metadata_xml-error\">IdP metadata: "),
        "{html}"
    );
    assert!(html.contains("&#60;not-metadata/&#62;") || html.contains("&lt;not-metadata/&gt;"));

    let idp = KeyPair::generate("idp");
    let xml = metadata_xml("https://idp.example/saml", &[&idp]);
    let res = post(
        &app,
        &browser,
        "/admin/providers",
        &[
            ("csrf", csrf.as_str()),
            ("kind", "saml"),
            ("id", "okta"),
            ("display_name", "Okta"),
            ("saml_idp_metadata_xml", &xml),
            ("saml_name_id_format", "email"),
            ("saml_email_verified", "on"),
            ("enabled", "on"),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    // The IdP is said to verify addresses: the setting is stored and shown ticked.
    let stored = portico::providers::repo::find(&app.state.store, "okta")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.settings["saml"]["email_verified"], true);
    let html = page(&app, &browser, "/admin/providers/okta").await;
    assert!(
        html.contains("name=\"saml_email_verified\" value=\"on\" checked"),
        "{html}"
    );
    let base = format!("{}/saml/okta", app.address);
    for (id, value) in [
        ("sp-entity-id", format!("{base}/metadata")),
        ("sp-acs-url", format!("{base}/acs")),
        ("sp-metadata-url", format!("{base}/metadata")),
    ] {
        assert!(
            html.contains(&format!("id=\"{id}\" class=\"secret\">{value}</code>")),
            "{id}: {html}"
        );
        assert!(html.contains(&format!("data-copy=\"{id}\"")));
    }
    assert!(
        !html.contains("id=\"callback-url\""),
        "SAML has no callback"
    );

    // Config-managed: shown read-only, and a forged POST changes nothing.
    let html = page(&app, &browser, "/admin/providers").await;
    assert!(html.contains("managed by config"));
    let html = page(&app, &browser, "/admin/providers/from-config").await;
    assert!(html.contains("read-only"));
    assert!(!html.contains("id=\"save-provider\""));
    assert!(!html.contains("id=\"delete-provider\""));
    for path in [
        "/admin/providers/from-config",
        "/admin/providers/from-config/delete",
        "/admin/providers/from-config/disable",
    ] {
        let res = post(
            &app,
            &browser,
            path,
            &[
                ("csrf", csrf.as_str()),
                ("issuer", "https://evil.example"),
                ("client_id", "x"),
                ("action", "save"),
            ],
        )
        .await;
        assert_eq!(res.status(), 400, "{path}");
    }
    let config = portico::providers::repo::find(&app.state.store, "from-config")
        .await
        .unwrap()
        .unwrap();
    assert!(config.enabled);
    assert_eq!(config.issuer.as_deref(), Some("https://idp.example"));
}
