//! The first hour with Portico, outside the admin pages themselves: `/` leads to the admin UI,
//! and unknown paths answer with a page instead of nothing.

use serde_json::Value;

use crate::admin::{api_token, create_admin, signed_in};
use crate::helpers::{Backend, TestApp, TestDb, spawn_app};

fn content_type(res: &reqwest::Response) -> String {
    res.headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// GET `path` with `client`: the status, the content type and the body.
async fn fetch(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String, String) {
    let res = client.get(app.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    let kind = content_type(&res);
    (status, kind, res.text().await.unwrap())
}

#[tokio::test]
async fn the_root_leads_to_the_admin_ui() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    let res = app.get("/").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/");
    // Not signed in: the admin UI sends the browser on to its sign-in page.
    let res = app.get("/admin/").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/sign-in");
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn unknown_paths_answer_with_a_page_not_an_empty_404() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    create_admin(&app).await;

    // Signed out: a plain admin 404 page that offers the way back.
    for path in ["/admin/x", "/admin/no/such/page", "/admin/static/nope.css"] {
        let (status, kind, body) = fetch(&app, &app.client, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        assert!(body.contains("Not found"), "{path}: {body}");
        assert!(body.contains("href=\"/admin\""), "{path}: {body}");
    }

    // Signed in: the 404 page sits in the admin layout, with the navigation.
    let browser = signed_in(&app).await;
    let (status, kind, body) = fetch(&app, &browser, "/admin/x").await;
    assert_eq!(status, 404);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains("Not found"), "{body}");
    assert!(body.contains("action=\"/admin/sign-out\""), "{body}");
    assert!(body.contains("href=\"/admin/providers\""), "{body}");
    assert!(body.contains("id=\"not-found\""), "{body}");

    // The admin API keeps its JSON 404, with or without a token.
    let token = api_token(&app, "t").await;
    for token in [None, Some(token.as_str())] {
        let mut req = app.client.get(app.url("/admin/api/v1/no-such-thing"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 404);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "not_found", "{body}");
    }

    // Elsewhere an unknown path is a small HTML page too, never an empty answer.
    for path in ["/no-such-page", "/.well-known/nothing"] {
        let (status, kind, body) = fetch(&app, &app.client, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        assert!(body.contains("Not found"), "{path}: {body}");
    }
    app.stop();
    db.cleanup().await;
}
