//! The first hour with Portico, outside the admin pages themselves: `/` leads to the admin UI,
//! unknown paths answer with a page instead of nothing, the start log names the admin URL, and
//! a visit to the admin UI before signing in is not logged as an error.

use serde_json::Value;

use crate::admin::{api_token, create_admin, signed_in};
use crate::helpers::{Backend, TestApp, TestDb, spawn_app};
use crate::ops::ServerProcess;

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

/// The JSON log lines of a `portico` server run with `PORTICO_LOG_FORMAT=json`, after `visit`.
async fn json_logs_of_a_server_run(visit: impl AsyncFnOnce(&str)) -> (String, Vec<Value>) {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = ServerProcess::start(&db, "info", &[("PORTICO_LOG_FORMAT", "json")]).await;
    let base = server.base.clone();
    visit(&base).await;
    let logs = server.stop().await;
    let lines = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    db.cleanup().await;
    (base, lines)
}

#[tokio::test]
async fn the_start_log_names_the_admin_url_and_signed_out_visits_are_no_errors() {
    let (base, lines) = json_logs_of_a_server_run(async |base: &str| {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // A page before signing in (a redirect to the sign-in page), and API calls without a
        // valid token (401).
        for path in ["/admin", "/admin/keys", "/admin/clients/x"] {
            let res = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(res.status(), 303, "{path}");
        }
        let res = client
            .get(format!("{base}/admin/api/v1/clients"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let res = client
            .get(format!("{base}/admin/api/v1/clients"))
            .bearer_auth("pat_not-a-token")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    })
    .await;

    let serving = lines
        .iter()
        .find(|l| l["message"] == "portico is serving")
        .unwrap_or_else(|| panic!("no start line in {lines:#?}"));
    assert_eq!(serving["level"], "INFO", "{serving}");
    assert_eq!(serving["admin"], format!("{base}/admin/"), "{serving}");
    // The fields it had stay.
    assert_eq!(serving["issuer"], base, "{serving}");
    assert!(serving["port"].is_u64(), "{serving}");

    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let warnings: Vec<&Value> = lines
        .iter()
        .filter(|l| l["level"] == "WARN")
        .filter(|l| !l["message"].as_str().unwrap_or("").contains("MASTER KEY"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}
