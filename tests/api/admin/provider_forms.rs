//! The provider forms as a newcomer meets them: kinds as cards with logos, what to register
//! at the provider shown before saving (live as the ID is typed), a link to each kind's setup
//! guide and the guides served, the OIDC claim mapping, all errors at once in plain language;
//! and the end-user chooser's logos and e-mail domain hints.

use openidconnect::TokenResponse;
use reqwest::Method;
use serde_json::json;

use super::{api_token, call, client, create_admin, csrf_in, error, json_of, page, signed_in};
use crate::helpers::{TestApp, TestDb, spawn_app};
use crate::oidc_support::{
    CLIENT_ID, CLIENT_SECRET, REDIRECT, authorize, browse, exchange, jwt_claims, relying_party,
    spawn_portico, start_url,
};
use crate::on_both_backends;
use crate::upstream_idp::{UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET, UpUser, Upstream};

on_both_backends!(
    provider_kinds_are_cards_with_logos_served_as_svg,
    create_forms_show_what_to_register_before_saving,
    the_setup_guides_are_served_to_admins,
    oidc_claim_mapping_goes_through_the_form,
    every_provider_error_shows_at_once_in_plain_words,
    the_chooser_shows_logos_and_domain_hints,
);

async fn spawn(db: &TestDb) -> (TestApp, reqwest::Client) {
    let app = spawn_app(db).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    (app, browser)
}

async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let res = browser.post(app.url(path)).form(form).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Posts the create form with `fields`, pressing `action` (`save` or `discover`).
async fn create(
    app: &TestApp,
    browser: &reqwest::Client,
    csrf: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let mut form = vec![("csrf", csrf), ("action", action)];
    form.extend_from_slice(fields);
    post(app, browser, "/admin/providers", &form).await
}

/// The value of the first `attribute="…"` after `marker` in `html`.
fn attribute_after(html: &str, marker: &str, attribute: &str) -> String {
    let from = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker}: {html}"));
    let needle = format!("{attribute}=\"");
    let start = from + html[from..].find(&needle).unwrap() + needle.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&").replace("&#38;", "&")
}

/// `text` as askama escapes it in a page.
fn escaped(text: &str) -> String {
    text.replace('<', "&#60;").replace('>', "&#62;")
}

async fn provider_kinds_are_cards_with_logos_served_as_svg(db: &TestDb) {
    let (app, browser) = spawn(db).await;
    let html = page(&app, &browser, "/admin/providers").await;
    for (kind, title, summary) in [
        ("google", "Google", "Google accounts and Workspace"),
        ("github", "GitHub", "github.com or GitHub Enterprise"),
        (
            "oidc",
            "OpenID Connect",
            "Any OpenID Connect provider, by discovery",
        ),
        ("saml", "SAML 2.0", "Okta, Entra ID, ADFS"),
    ] {
        let card = format!("href=\"/admin/providers?kind={kind}#new-provider\"");
        let at = html.find(&card).unwrap_or_else(|| panic!("{card}: {html}"));
        let end = at + html[at..].find("</a>").unwrap();
        let inside = &html[at..end];
        assert!(inside.contains("class=\"kind-card\""), "{inside}");
        assert!(
            inside.contains(title) && inside.contains(summary),
            "{inside}"
        );
        // The logo is decorative: the card's text names the kind.
        assert!(inside.contains("alt=\"\""), "{inside}");
        let src = attribute_after(inside, "<img", "src");
        assert!(
            src.starts_with(&format!("/static/logos/{kind}.svg?v=")),
            "{src}"
        );

        let res = app.client.get(app.url(&src)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{src}");
        assert_eq!(res.headers()["content-type"], "image/svg+xml");
        assert_eq!(
            res.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let svg = res.text().await.unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{svg}");
        assert!(!svg.contains("<script") && !svg.contains("href"), "{svg}");
    }
    // Without the current version it is revalidated; an unknown logo is a 404.
    let res = app.get("/static/logos/google.svg").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-cache");
    let etag = res.headers()["etag"].clone();
    let again = app
        .client
        .get(app.url("/static/logos/google.svg"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(app.get("/static/logos/ldap.svg").await.status(), 404);
    assert_eq!(
        app.get("/static/logos/..%2Fportico.css").await.status(),
        404
    );
}

async fn create_forms_show_what_to_register_before_saving(db: &TestDb) {
    let (app, browser) = spawn(db).await;
    let placeholder = escaped("<your-id>");

    // A blank form shows the pattern, a script keeps it in step with the ID as it is typed,
    // and the kind's guide is a link away.
    let html = page(&app, &browser, "/admin/providers?kind=google").await;
    let callback = format!("{}/callback/{placeholder}", app.address);
    assert!(html.contains(&callback), "{html}");
    assert!(html.contains("aria-live=\"polite\""), "{html}");
    assert!(
        html.contains(&format!("data-template=\"{callback}\"")),
        "{html}"
    );
    assert!(
        html.contains("href=\"/admin/guides/providers/google\""),
        "{html}"
    );
    let script = attribute_after(&html, "<script src=\"/admin/static/provider-form.js", "src");
    let res = app.get(&script).await;
    assert_eq!(res.status(), 200, "{script}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(!html.contains("<script>"), "no inline script");
    let csrf = csrf_in(&html);

    // Refused (no secret): the form again, showing the URI for the ID typed.
    let (status, html) = create(
        &app,
        &browser,
        &csrf,
        "save",
        &[
            ("kind", "google"),
            ("id", "corp-google"),
            ("client_id", "1234.apps.googleusercontent.com"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    let shown = format!(">{}/callback/corp-google</code>", app.address);
    assert!(html.contains(&shown), "{html}");
    assert!(html.contains(&format!("data-template=\"{callback}\"")));
    // An ID that cannot be one shows the pattern rather than a URI that cannot be registered.
    let (status, html) = create(
        &app,
        &browser,
        &csrf,
        "save",
        &[("kind", "google"), ("id", "Not An ID")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains(&format!(">{callback}</code>")), "{html}");

    // SAML: the ACS URL and entity ID for the ID typed, before anything is saved.
    let (status, html) = create(
        &app,
        &browser,
        &csrf,
        "save",
        &[("kind", "saml"), ("id", "okta")],
    )
    .await;
    assert_eq!(status, 422);
    let base = format!("{}/saml/okta", app.address);
    for (id, label, value) in [
        ("sp-entity-id", "SP entity ID", format!("{base}/metadata")),
        ("sp-acs-url", "ACS URL", format!("{base}/acs")),
        (
            "sp-metadata-url",
            "SP metadata URL",
            format!("{base}/metadata"),
        ),
    ] {
        let at = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id}: {html}"));
        let end = at + html[at..].find("</code>").unwrap();
        assert!(html[at..end].ends_with(&value), "{id}: {}", &html[at..end]);
        assert!(html.contains(label), "{label}");
    }
    assert!(html.contains("href=\"/admin/guides/providers/saml\""));
    assert!(
        portico::providers::repo::find(&app.state.store, "okta")
            .await
            .unwrap()
            .is_none()
    );

    // "Test discovery" shows it for the ID typed too.
    let upstream = Upstream::start().await;
    let (status, html) = create(
        &app,
        &browser,
        &csrf,
        "discover",
        &[
            ("kind", "oidc"),
            ("id", "acme"),
            ("issuer", upstream.issuer.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!(">{}/callback/acme</code>", app.address)),
        "{html}"
    );
}

async fn the_setup_guides_are_served_to_admins(db: &TestDb) {
    let (app, browser) = spawn(db).await;
    // Without a session: the sign-in page, as for every admin page.
    let res = client()
        .get(app.url("/admin/guides/providers/saml"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/sign-in");

    for (kind, doc) in [
        ("google", include_str!("../../../docs/providers/google.md")),
        ("github", include_str!("../../../docs/providers/github.md")),
        ("oidc", include_str!("../../../docs/providers/oidc.md")),
        ("saml", include_str!("../../../docs/providers/saml.md")),
    ] {
        let html = page(&app, &browser, &format!("/admin/guides/providers/{kind}")).await;
        let title = doc.lines().next().unwrap().trim_start_matches("# ");
        assert!(
            html.contains(&format!("<h1>{title}</h1>")),
            "{kind}: {html}"
        );
        // In the admin layout, with the providers menu entry current.
        assert!(html.contains("href=\"/admin/providers\" aria-current=\"page\""));
        // The guide's own HTML-looking text is text, never markup.
        assert!(!html.contains("<md:EntityDescriptor"), "{kind}");
        assert!(!html.contains("<time>"), "{kind}");
        // Links between the guides stay inside the admin UI.
        assert!(!html.contains("href=\"oidc.md\"") && !html.contains("href=\"google.md\""));
    }
    let html = page(&app, &browser, "/admin/guides/providers/google").await;
    assert!(
        html.contains("href=\"/admin/guides/providers/oidc\""),
        "{html}"
    );

    let res = browser
        .get(app.url("/admin/guides/providers/ldap"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Skip to the content"),
        "the admin layout: {html}"
    );
}

async fn oidc_claim_mapping_goes_through_the_form(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |s| s.providers = vec![]).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    let token = api_token(&app, "claims").await;
    let html = page(&app, &browser, "/admin/providers?kind=oidc").await;
    for name in [
        "claims_email",
        "claims_email_verified",
        "claims_name",
        "claims_picture",
        "claims_groups",
    ] {
        assert!(html.contains(&format!("name=\"{name}\"")), "{name}");
    }
    assert!(html.contains("the claim holding group names: a name (groups), a path"));
    // The claims pipeline's inputs, on every kind's form.
    for name in [
        "group_prefix",
        "group_allow",
        "group_deny",
        "group_rename",
        "max_groups",
        "static_claims",
        "extra_claims",
    ] {
        assert!(html.contains(&format!("name=\"{name}\"")), "{name}");
    }
    let csrf = csrf_in(&html);
    let issuer = upstream.issuer.as_str();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("kind", "oidc"),
        ("id", "corp"),
        ("issuer", issuer),
        ("client_id", UPSTREAM_CLIENT_ID),
        ("client_secret", UPSTREAM_CLIENT_SECRET),
        ("scopes", "openid email profile groups"),
        ("claims_groups", "roles"),
        ("enabled", "on"),
        ("action", "save"),
    ];
    // Claim rules that do not parse: told beside their inputs, nothing saved.
    let mut bad = form.clone();
    bad.push(("static_claims", "{\"department\": "));
    let (status, body) = post(&app, &browser, "/admin/providers", &bad).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("Static claims: this is not JSON"), "{body}");
    let mut bad = form.clone();
    bad.push(("static_claims", "{\"sub\": \"root\"}"));
    bad.push(("max_groups", "many"));
    let (status, body) = post(&app, &browser, "/admin/providers", &bad).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("Maximum groups: enter a whole number"),
        "{body}"
    );
    let mut bad = form.clone();
    bad.push(("static_claims", "{\"sub\": \"root\"}"));
    let (status, body) = post(&app, &browser, "/admin/providers", &bad).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("`sub` is a reserved claim"), "{body}");
    // A rename out of the prefix's namespace: told beside the input, nothing saved.
    let mut bad = form.clone();
    bad.extend([
        ("group_prefix", "corp:"),
        ("group_rename", "{\"corp:ops\": \"admin\"}"),
    ]);
    let (status, body) = post(&app, &browser, "/admin/providers", &bad).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("leaves the provider&#39;s namespace"),
        "{body}"
    );
    form.extend([
        ("group_prefix", "corp:"),
        ("group_allow", "corp:wiki-*  corp:ops"),
        ("group_rename", "{\"corp:ops\": \"corp:operations\"}"),
        ("max_groups", "10"),
        ("static_claims", "{\"department\": \"engineering\"}"),
    ]);
    let (status, body) = post(&app, &browser, "/admin/providers", &form).await;
    assert_eq!(status, 303, "{body}");
    let got = json_of(
        call(&app, Method::GET, Some(&token), "/providers/corp", None).await,
        200,
    )
    .await;
    assert_eq!(got["claims"]["groups"], "roles", "{got}");
    assert_eq!(got["claims"]["email"], "email", "{got}");
    assert_eq!(got["group_prefix"], "corp:", "{got}");
    assert_eq!(
        got["group_allow"],
        json!(["corp:wiki-*", "corp:ops"]),
        "{got}"
    );
    assert_eq!(
        got["group_rename"],
        json!({"corp:ops": "corp:operations"}),
        "{got}"
    );
    assert_eq!(got["max_groups"], 10, "{got}");
    assert_eq!(got["static_claims"], json!({"department": "engineering"}));

    // The edit form shows it, and saving it unchanged keeps it.
    let html = page(&app, &browser, "/admin/providers/corp").await;
    assert!(
        html.contains("name=\"claims_groups\" value=\"roles\""),
        "{html}"
    );
    form.retain(|(k, _)| !matches!(*k, "kind" | "id" | "client_secret"));
    let (status, _) = post(&app, &browser, "/admin/providers/corp", &form).await;
    assert_eq!(status, 303);
    let got = json_of(
        call(&app, Method::GET, Some(&token), "/providers/corp", None).await,
        200,
    )
    .await;
    assert_eq!(got["claims"]["groups"], "roles", "{got}");

    // A login through the provider takes the groups from that claim.
    upstream.login_as(UpUser {
        roles: vec!["wiki-editor".into()],
        ..UpUser::new("alice-sub", "alice@corp.example")
    });
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let auth = authorize(&app, &rp, REDIRECT, &["email", "profile", "groups"]).await;
    let (tokens, _) = exchange(&rp, auth).await;
    let claims = jwt_claims(&tokens.id_token().unwrap().to_string());
    assert_eq!(claims["groups"], json!(["corp:wiki-editor"]), "{claims}");
    assert_eq!(claims["department"], "engineering", "{claims}");

    // Cleared: the mapping is gone, so no groups are read.
    for entry in form.iter_mut() {
        if entry.0 == "claims_groups" {
            entry.1 = "";
        }
    }
    let (status, _) = post(&app, &browser, "/admin/providers/corp", &form).await;
    assert_eq!(status, 303);
    let got = json_of(
        call(&app, Method::GET, Some(&token), "/providers/corp", None).await,
        200,
    )
    .await;
    assert!(got["claims"]["groups"].is_null(), "{got}");
}

async fn every_provider_error_shows_at_once_in_plain_words(db: &TestDb) {
    let (app, browser) = spawn(db).await;
    let token = api_token(&app, "errors").await;
    let html = page(&app, &browser, "/admin/providers?kind=github").await;
    let csrf = csrf_in(&html);

    // An empty ID and a missing secret: both told, each beside its field.
    let (status, html) = create(
        &app,
        &browser,
        &csrf,
        "save",
        &[
            ("kind", "github"),
            ("id", ""),
            ("client_id", ""),
            ("github_web_base", "ftp://ghe.example"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    for (field, message) in [
        (
            "id",
            "Enter an ID: 1 to 64 lower-case letters, digits or hyphens.",
        ),
        ("client_id", "Enter the client ID GitHub gave you."),
        ("client_secret", "Enter the client secret GitHub gave you."),
    ] {
        assert!(
            html.contains(&format!(
                "<p class=\"field-error\" id=\"provider-{field}-error\">"
            )),
            "{field}: {html}"
        );
        let at = html
            .find(&format!("id=\"provider-{field}-error\""))
            .unwrap();
        let end = at + html[at..].find("</p>").unwrap();
        assert!(
            html[at..end].contains(message),
            "{field}: {}",
            &html[at..end]
        );
    }
    assert!(
        html.contains("id=\"provider-github_web_base-error\""),
        "{html}"
    );
    // No code-like words.
    assert!(!html.contains("needs `"), "{html}");
    assert!(!html.contains("provider id ``"), "{html}");

    // The API's 422 has the same words, all at once.
    let body = error(
        call(
            &app,
            Method::POST,
            Some(&token),
            "/providers",
            Some(json!({ "id": "", "kind": "github" })),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let fields = &body["fields"];
    assert_eq!(
        fields["id"], "Enter an ID: 1 to 64 lower-case letters, digits or hyphens.",
        "{body}"
    );
    assert_eq!(fields["client_id"], "Enter the client ID GitHub gave you.");
    assert_eq!(
        fields["client_secret"],
        "Enter the client secret GitHub gave you."
    );

    let body = error(
        call(
            &app,
            Method::POST,
            Some(&token),
            "/providers",
            Some(json!({ "id": "o", "kind": "oidc", "client_id": "c" })),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        body["fields"]["issuer"], "Enter the issuer URL, e.g. https://accounts.example.com.",
        "{body}"
    );
}

async fn the_chooser_shows_logos_and_domain_hints(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |s| {
        let github: portico::providers::ProviderConfig = toml::from_str(
            r#"
id = "gh"
kind = "github"
display_name = "GitHub"
client_id = "x"
client_secret = "y"
"#,
        )
        .unwrap();
        s.providers.push(github);
    })
    .await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (status, html) = browse(&app, start_url(&rp, &[]).as_str(), REDIRECT)
        .await
        .page();
    assert_eq!(status, 200);
    // A named list of providers.
    assert!(
        html.contains("<ul class=\"providers\" aria-label=\"Sign-in methods\">"),
        "{html}"
    );
    // Each button: the kind's logo (decorative), its name as the accessible name.
    let corp = html.find("provider=corp").expect("corp's button");
    let end = corp + html[corp..].find("</li>").unwrap();
    let button = &html[corp..end];
    assert!(button.contains("Continue with Corp corp"), "{button}");
    let src = attribute_after(button, "<img", "src");
    assert!(src.starts_with("/static/logos/oidc.svg?v="), "{src}");
    assert!(button.contains("alt=\"\""), "{button}");
    // Its e-mail domains, under the button, tied to it.
    assert!(button.contains("For corp.example accounts"), "{button}");
    assert!(
        button.contains("aria-describedby=\"provider-corp-domains\""),
        "{button}"
    );
    let gh = html.find("provider=gh").expect("gh's button");
    let end = gh + html[gh..].find("</li>").unwrap();
    assert!(
        html[gh..end].contains("/static/logos/github.svg?v="),
        "{}",
        &html[gh..end]
    );
    assert!(!html[gh..end].contains("accounts</"), "no domains, no hint");
    assert!(!html.contains("/admin/"), "nothing from the admin UI");
    assert_eq!(app.get(&src).await.status(), 200);
}
