//! The clients page: create with the secret shown once (on its reveal page), field errors next
//! to the fields, escaping, CSRF refusal, rotate and delete (confirmed; see `confirm.rs`).

use super::{audit_count, create_admin, csrf_in, page, signed_in};
use crate::helpers::{TestDb, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    the_clients_page_creates_rotates_and_deletes,
    the_create_form_has_checkboxes_and_shows_every_error_at_once,
);

async fn the_clients_page_creates_rotates_and_deletes(db: &TestDb) {
    let app = spawn_app(db).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/clients").await;
    let csrf = csrf_in(&html);
    // The type is a closed set: a choice, not free text, confidential unless changed.
    assert!(
        html.contains(r#"<select id="client-type" name="type""#),
        "{html}"
    );
    assert!(
        html.contains(r#"<option value="confidential" selected>"#),
        "{html}"
    );
    assert!(html.contains(r#"<option value="public">"#), "{html}");

    // Without its CSRF token the form is refused and nothing is created.
    let res = browser
        .post(app.url("/admin/clients"))
        .form(&[("client_id", "sneaky"), ("name", "Sneaky")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        portico::clients::repo::find(&app.state.store, "sneaky")
            .await
            .unwrap()
            .is_none()
    );

    // Bad input: 422, the messages next to the fields, the input kept, nothing saved.
    let res = browser
        .post(app.url("/admin/clients"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("client_id", "wiki"),
            ("name", "Wiki"),
            ("type", "public"),
            ("redirect_uris", "http://wiki.example/cb"),
            ("grant_types", "authorization_code"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("http://wiki.example/cb: http is allowed only on loopback addresses"),
        "{html}"
    );
    assert!(html.contains("http://wiki.example/cb</textarea>"));
    // The form comes back with the type chosen.
    assert!(
        html.contains(r#"<option value="public" selected>"#),
        "{html}"
    );
    assert!(
        portico::clients::repo::find(&app.state.store, "wiki")
            .await
            .unwrap()
            .is_none()
    );

    // Created: a redirect to the page that shows the secret and the snippet this once, the
    // name escaped.
    let res = browser
        .post(app.url("/admin/clients"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("client_id", "wiki"),
            ("name", "<script>alert(1)</script>"),
            (
                "redirect_uris",
                "https://wiki.example/cb\r\nhttp://127.0.0.1/cb",
            ),
            ("grant_types", "authorization_code"),
            ("grant_types", "refresh_token"),
            ("scopes", "openid email"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/admin/clients/wiki/secret?done=created"
    );
    let res = browser
        .get(app.url("/admin/clients/wiki/secret?done=created"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    let marker = "id=\"client-secret\" class=\"secret\">";
    let start = html.find(marker).expect("the secret is shown") + marker.len();
    let secret = &html[start..start + html[start..].find('<').unwrap()];
    let stored = portico::clients::repo::find(&app.state.store, "wiki")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secret_matches(secret));
    assert!(html.contains(&format!(
        "issuer: {}",
        app.state.settings.server.issuer.as_str()
    )));
    assert!(html.contains("client_id: wiki"));
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
    assert_eq!(audit_count(&app, "client.created").await, 1);

    // Never again.
    let html = page(&app, &browser, "/admin/clients").await;
    assert!(!html.contains(secret));
    assert!(html.contains("https://wiki.example/cb"));

    // Rotate, confirmed: a new secret, shown once on the client's reveal page.
    let res = browser
        .post(app.url("/admin/clients/wiki/secret"))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let html = page(&app, &browser, "/admin/clients/wiki/secret?done=rotated").await;
    let start = html.find(marker).unwrap() + marker.len();
    let rotated = &html[start..start + html[start..].find('<').unwrap()];
    assert_ne!(rotated, secret);
    let stored = portico::clients::repo::find(&app.state.store, "wiki")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secret_matches(rotated) && !stored.secret_matches(secret));

    // Delete, confirmed.
    let res = browser
        .post(app.url("/admin/clients/wiki/delete"))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/clients?done=deleted");
    assert!(
        portico::clients::repo::find(&app.state.store, "wiki")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(audit_count(&app, "client.deleted").await, 1);
}

/// The create form draws grant types and allowed providers as checkboxes, as the edit page does
/// (one partial); a form sent back shows every error at once, in plain words, beside its field,
/// with what was typed and ticked kept.
async fn the_create_form_has_checkboxes_and_shows_every_error_at_once(db: &TestDb) {
    let app = crate::helpers::spawn_app_with(db, portico::crypto::MasterKey::generate(), |s| {
        s.providers = vec![crate::federation_flow::google_provider(
            "https://accounts.google.example",
            "",
        )];
    })
    .await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/clients").await;
    let csrf = csrf_in(&html);
    // A new client's defaults: the code flow with refresh tokens; every provider.
    assert!(
        html.contains(r#"name="grant_types" value="authorization_code" checked"#),
        "{html}"
    );
    assert!(html.contains(r#"name="grant_types" value="refresh_token" checked"#));
    assert!(html.contains(r#"name="grant_types" value="client_credentials">"#));
    assert!(
        html.contains(r#"name="allowed_providers" value="google">"#),
        "{html}"
    );
    assert!(
        !html.contains(r#"id="client-grant_types" name="#),
        "no free text"
    );
    assert!(
        html.contains(r#"id="client-development" name="development" value="true" aria"#),
        "{html}"
    );

    // Empty ID, a bad redirect URI and no grant type: all three errors, beside their fields.
    let res = browser
        .post(app.url("/admin/clients"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("client_id", ""),
            ("name", "Wiki"),
            ("type", "public"),
            ("redirect_uris", "http://wiki.example/cb"),
            ("scopes", "openid email"),
            ("allowed_providers", "google"),
            ("development", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    let error = |field: &str| {
        let marker = format!(r#"<p class="field-error" id="client-{field}-error">"#);
        let start = html
            .find(&marker)
            .unwrap_or_else(|| panic!("an error for {field} in {html}"))
            + marker.len();
        html[start..start + html[start..].find("</p>").unwrap()].to_owned()
    };
    assert!(
        error("client_id").starts_with("Enter a client ID:"),
        "{html}"
    );
    assert!(
        error("redirect_uris")
            .starts_with("http://wiki.example/cb: http is allowed only on loopback addresses"),
        "{html}"
    );
    assert!(
        error("grant_types").starts_with("Choose at least one grant type"),
        "{html}"
    );
    // The first field with an error has the focus and points to its error.
    assert!(
        html.contains(r#"id="client-client_id" name="client_id" value="" required aria-describedby="client-client_id-error" aria-invalid="true" autofocus"#),
        "{html}"
    );
    assert_eq!(html.matches(" autofocus").count(), 1, "{html}");
    // What was typed and ticked is kept; no box comes back ticked that was not.
    assert!(html.contains(r#"value="Wiki""#));
    assert!(html.contains(">http://wiki.example/cb</textarea>"));
    assert!(html.contains(r#"<option value="public" selected>"#));
    assert!(html.contains(r#"name="allowed_providers" value="google" checked"#));
    assert!(html.contains(r#"name="development" value="true" checked"#));
    assert!(!html.contains(r#"name="grant_types" value="authorization_code" checked"#));
    assert!(html.contains(r#"value="openid email""#));
    assert_eq!(audit_count(&app, "client.created").await, 0);

    // Ticked boxes are what is stored.
    let res = browser
        .post(app.url("/admin/clients"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("client_id", "wiki"),
            ("name", "Wiki"),
            ("type", "public"),
            ("redirect_uris", "https://wiki.example/cb"),
            ("grant_types", "authorization_code"),
            ("grant_types", "refresh_token"),
            ("scopes", "openid email"),
            ("allowed_providers", "google"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let stored = portico::clients::repo::find(&app.state.store, "wiki")
        .await
        .unwrap()
        .unwrap();
    let grants: Vec<&str> = stored.grant_types.iter().map(|g| g.as_str()).collect();
    assert_eq!(grants, ["authorization_code", "refresh_token"]);
    assert_eq!(stored.allowed_providers[0].as_str(), "google");
    assert!(!stored.development);
    app.stop();
}
