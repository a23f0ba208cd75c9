//! The clients page: create with the secret shown once (on its reveal page), field errors next
//! to the fields, escaping, CSRF refusal, rotate and delete (confirmed; see `confirm.rs`).

use super::{audit_count, create_admin, csrf_in, page, signed_in};
use crate::helpers::{TestDb, spawn_app};
use crate::on_both_backends;

on_both_backends!(the_clients_page_creates_rotates_and_deletes);

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
        html.contains("Redirect URIs: `http://wiki.example/cb` must use https"),
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
            ("grant_types", "authorization_code refresh_token"),
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
