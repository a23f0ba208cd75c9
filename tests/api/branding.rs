//! `[branding]`: the pages users see carry the deployment's name, logo and colour, escaped,
//! and a bad branding setting stops the start.

use portico::crypto::MasterKey;

use crate::helpers::{Backend, TestDb, spawn_app_with, try_spawn_app_with};

/// A tiny PNG header is enough: the logo is served as given, never decoded.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

#[tokio::test]
async fn user_pages_carry_the_brand_and_escape_it() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let logo = db.dir.join("logo.png");
    std::fs::write(&logo, PNG).unwrap();
    let app = spawn_app_with(&db, MasterKey::generate(), |s| {
        s.branding.product_name = "Acme <b>ID</b>".into();
        s.branding.accent_color = "#aa0000".into();
        s.branding.logo_file = Some(logo.clone());
    })
    .await;

    // An error page of the browser flow (a callback without state).
    let res = app.get("/callback/anything").await;
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Acme &#60;b&#62;ID&#60;/b&#62;")
            || page.contains("Acme &lt;b&gt;ID&lt;/b&gt;"),
        "{page}"
    );
    assert!(!page.contains("<b>ID</b>"), "{page}");
    assert!(
        page.contains(r#"<img class="logo" src="/branding/logo""#),
        "{page}"
    );
    assert!(page.contains(r#"href="/branding.css""#), "{page}");

    let css = app.get("/branding.css").await;
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.text().await.unwrap().contains("--accent: #aa0000"));

    let res = app.get("/branding/logo").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    // An SVG logo opened on its own runs no script.
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn without_branding_pages_say_portico_and_there_is_no_logo() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let app = spawn_app_with(&db, MasterKey::generate(), |_| {}).await;
    let page = app.get("/callback/anything").await.text().await.unwrap();
    assert!(page.contains("· Portico</title>"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert_eq!(app.get("/branding/logo").await.status(), 404);
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn a_colour_that_could_break_out_of_the_stylesheet_is_refused() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    for colour in ["red", "#aa0000; } body { display: none", "#12345"] {
        let result = try_spawn_app_with(&db, MasterKey::generate(), |s| {
            s.branding.accent_color = colour.into();
        })
        .await;
        let err = result
            .err()
            .unwrap_or_else(|| panic!("{colour:?} accepted"));
        assert!(format!("{err:#}").contains("accent_color"), "{err:#}");
    }
    db.cleanup().await;
}
