//! The admin UI in headless Chromium over WebDriver (chromedriver), as an admin uses it.
//! Skips, saying so, where `/usr/bin/chromedriver` is absent (`apt-get install chromium
//! chromium-driver`). With `PORTICO_SCREENSHOTS=1` it saves screenshots of the main pages to
//! `docs/screenshots/`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use super::{EMAIL, PASSWORD, audit_count, create_admin};
use portico::crypto::MasterKey;

use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(15);

/// chromedriver and its profile directory, cleaned up on drop.
struct Driver {
    child: Child,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

async fn start_browser() -> Option<(Driver, Client)> {
    if !Path::new(CHROMEDRIVER).exists() {
        eprintln!(
            "skipping the browser test: {CHROMEDRIVER} is absent \
             (apt-get install chromium chromium-driver)"
        );
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = std::env::temp_dir().join(format!(
        "portico-chromium-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&profile).unwrap();
    let driver = Driver { child, profile };

    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(started.elapsed() < WAIT, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut options = json!({
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,900",
            format!("--user-data-dir={}", driver.profile.display()),
        ]
    });
    if Path::new(CHROMIUM).exists() {
        options["binary"] = json!(CHROMIUM);
    }
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), options);
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("a Chromium session");
    Some((driver, client))
}

/// Takes a screenshot (the test asserts it is a PNG). It is saved to `docs/screenshots/` only
/// when `PORTICO_SCREENSHOTS=1`, so ordinary test runs leave the work tree clean.
async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if std::env::var_os("PORTICO_SCREENSHOTS").is_some_and(|v| v == "1") {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
}

async fn wait_for_url(client: &Client, part: &str) {
    let started = Instant::now();
    while !client.current_url().await.unwrap().as_str().contains(part) {
        assert!(started.elapsed() < WAIT, "never reached a URL with {part}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn type_into(client: &Client, css: &str, text: &str) {
    let field = wait_for(client, css).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    wait_for(client, css).await.click().await.unwrap();
}

async fn count(client: &Client, css: &str) -> usize {
    client.find_all(Locator::Css(css)).await.unwrap().len()
}

#[tokio::test]
async fn an_admin_works_the_ui_in_a_real_browser() {
    let Some((_driver, browser)) = start_browser().await else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    // Short waits between failed sign-ins, so the lockout is reached quickly.
    let app = spawn_app_with(&db, MasterKey::generate(), |s| {
        s.admin.delay_base_ms = 200;
        s.admin.account_lockout_failures = 4;
    })
    .await;
    create_admin(&app).await;
    let result = drive(&app, &browser).await;
    let _ = browser.close().await;
    app.stop();
    db.cleanup().await;
    result
}

async fn drive(app: &TestApp, browser: &Client) {
    // Signed out, the dashboard sends us to sign in.
    browser.goto(&app.url("/admin")).await.unwrap();
    wait_for(browser, "#email").await;
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/admin/sign-in")
    );
    screenshot(browser, "sign-in.png").await;

    // A wrong password is refused with a message.
    type_into(browser, "#email", EMAIL).await;
    type_into(browser, "#password", "not the password").await;
    click(browser, "#sign-in").await;
    let error = wait_for(browser, "#sign-in-error").await;
    assert!(error.text().await.unwrap().contains("wrong"));

    // Sign in (after the short wait a failure imposes).
    tokio::time::sleep(Duration::from_millis(300)).await;
    type_into(browser, "#email", EMAIL).await;
    type_into(browser, "#password", PASSWORD).await;
    click(browser, "#sign-in").await;
    wait_for(browser, ".stats").await;
    assert!(browser.source().await.unwrap().contains(EMAIL));
    screenshot(browser, "dashboard.png").await;

    // Mint an API token: shown once, with a copy button (the page's only script).
    browser.goto(&app.url("/admin/tokens")).await.unwrap();
    type_into(browser, "#token-name", "deploy bot").await;
    click(browser, "#mint-token").await;
    let token = wait_for(browser, "#new-token").await.text().await.unwrap();
    assert!(token.starts_with("pat_"), "{token}");
    let copy = wait_for(browser, "button[data-copy]").await;
    assert!(
        copy.is_displayed().await.unwrap(),
        "copy.js revealed the copy button"
    );
    screenshot(browser, "tokens.png").await;
    browser.goto(&app.url("/admin/tokens")).await.unwrap();
    wait_for(browser, "#tokens").await;
    assert!(
        !browser.source().await.unwrap().contains(&token),
        "shown exactly once"
    );
    assert_eq!(count(browser, "#new-token").await, 0);
    let api = reqwest::Client::new()
        .get(app.url("/admin/api/v1/keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200, "the minted token works");

    // Rotate the signing keys from the keys page.
    browser.goto(&app.url("/admin/keys")).await.unwrap();
    wait_for(browser, "#keys").await;
    assert_eq!(count(browser, ".key-row").await, 3);
    click(browser, "#rotate-keys").await;
    wait_for(browser, "#rotated-notice").await;
    assert_eq!(count(browser, ".key-row").await, 6);
    screenshot(browser, "keys.png").await;

    // Create a client, then edit it on its own page: ticking a grant type, saving.
    browser.goto(&app.url("/admin/clients")).await.unwrap();
    type_into(browser, "#client-client_id", "wiki").await;
    type_into(browser, "#client-name", "Wiki").await;
    type_into(browser, "#client-redirect_uris", "https://wiki.example/cb").await;
    click(browser, "#create-client").await;
    wait_for(browser, "#client-secret").await;
    browser.goto(&app.url("/admin/clients/wiki")).await.unwrap();
    type_into(browser, "#client-name", "Team wiki").await;
    click(browser, "input[name=grant_types][value=client_credentials]").await;
    click(browser, "#save-client").await;
    wait_for(browser, "#notice").await;
    let wiki = app.state.store.client("wiki").await.unwrap().unwrap();
    assert_eq!(wiki.name, "Team wiki");
    assert_eq!(wiki.grant_types.len(), 3, "{:?}", wiki.grant_types);
    screenshot(browser, "client.png").await;

    // The audit log shows what happened, and filters by type.
    browser.goto(&app.url("/admin/audit")).await.unwrap();
    wait_for(browser, "#audit-entries").await;
    let source = browser.source().await.unwrap();
    for action in [
        "keys.rotated",
        "api_token.created",
        "admin.signed_in",
        "admin.sign_in_failed",
    ] {
        assert!(source.contains(action), "{action} on the audit page");
    }
    type_into(browser, "#f-type", "keys.rotated").await;
    click(browser, "#apply-filters").await;
    wait_for_url(browser, "type=keys.rotated").await;
    wait_for(browser, "#audit-entries").await;
    assert_eq!(count(browser, "#audit-entries tbody tr").await, 1);
    screenshot(browser, "audit.png").await;

    // Sign out.
    click(browser, ".signout button").await;
    wait_for(browser, "#email").await;
    browser.goto(&app.url("/admin/keys")).await.unwrap();
    wait_for(browser, "#email").await;

    // Four wrong passwords in a row lock the account, and then the right one is refused too.
    // The waits outlast the per-IP delays, which also count the failure at the start.
    for (attempt, wait_ms) in [(1, 450), (2, 850), (3, 1650), (4, 0)] {
        type_into(browser, "#email", EMAIL).await;
        type_into(browser, "#password", &format!("wrong password {attempt}")).await;
        click(browser, "#sign-in").await;
        wait_for_url(browser, "/admin/sign-in").await;
        wait_for(browser, "#sign-in-error").await;
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    }
    type_into(browser, "#email", EMAIL).await;
    type_into(browser, "#password", PASSWORD).await;
    click(browser, "#sign-in").await;
    // The refusal is audited once the response is on its way; then the page says why.
    let started = Instant::now();
    while audit_count(app, "admin.sign_in_refused").await == 0 {
        assert!(
            started.elapsed() < WAIT,
            "the right password was not refused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = wait_for(browser, "#sign-in-error")
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("locked"), "{text}");
    screenshot(browser, "sign-in-locked.png").await;
    assert!(!browser.source().await.unwrap().contains("class=\"stats\""));
}
