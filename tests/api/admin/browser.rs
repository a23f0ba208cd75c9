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
use crate::webhooks::{Receiver, signed_with};

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
        // Deliver to the loopback receiver at once.
        crate::webhooks::fast(s, &[]);
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

    // Mint an API token: shown once on the page the form leads to, with a copy button (the
    // page's only script); reloaded, that page says it was shown once.
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
    browser.refresh().await.unwrap();
    wait_for(browser, "#gone").await;
    assert!(
        !browser.source().await.unwrap().contains(&token),
        "shown exactly once"
    );
    browser.goto(&app.url("/admin/tokens")).await.unwrap();
    wait_for(browser, "#tokens").await;
    assert!(!browser.source().await.unwrap().contains(&token));
    assert_eq!(count(browser, "#new-token").await, 0);
    let api = || async {
        reqwest::Client::new()
            .get(app.url("/admin/api/v1/keys"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(api().await, 200, "the minted token works");

    // Revoke it: the button leads to a page that says what happens; Cancel changes nothing,
    // confirming revokes.
    click(browser, "#tokens a.danger").await;
    wait_for(browser, "#confirm").await;
    click(browser, "#cancel").await;
    wait_for(browser, "#tokens").await;
    assert_eq!(api().await, 200, "cancelled");
    click(browser, "#tokens a.danger").await;
    let asked = wait_for(browser, "#consequences")
        .await
        .text()
        .await
        .unwrap();
    assert!(asked.contains("refused (403)"), "{asked}");
    click(browser, "#confirm-action").await;
    wait_for_url(browser, "done=revoked").await;
    assert_eq!(api().await, 403, "revoked");

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
    let client_secret = wait_for(browser, "#client-secret")
        .await
        .text()
        .await
        .unwrap();
    assert!(client_secret.len() >= 32, "{client_secret}");
    // The secret is shown once: the list, loaded again, does not have it.
    browser.goto(&app.url("/admin/clients")).await.unwrap();
    wait_for(browser, "#clients").await;
    assert!(!browser.source().await.unwrap().contains(&client_secret));
    assert_eq!(count(browser, "#client-secret").await, 0);
    browser.goto(&app.url("/admin/clients/wiki")).await.unwrap();
    type_into(browser, "#client-name", "Team wiki").await;
    click(browser, "input[name=grant_types][value=client_credentials]").await;
    click(browser, "#save-client").await;
    wait_for(browser, "#notice").await;
    let wiki = portico::clients::repo::find(&app.state.store, "wiki")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wiki.name, "Team wiki");
    assert_eq!(wiki.grant_types.len(), 3, "{:?}", wiki.grant_types);
    screenshot(browser, "client.png").await;

    // A GitHub Enterprise provider, through the form made for GitHub.
    browser
        .goto(&app.url("/admin/providers?kind=github"))
        .await
        .unwrap();
    type_into(browser, "#provider-id", "ghe").await;
    type_into(browser, "#provider-display_name", "GitHub Enterprise").await;
    type_into(browser, "#provider-client_id", "Iv1.0123456789abcdef").await;
    type_into(
        browser,
        "#provider-client_secret",
        "0123456789abcdef0123456789abcdef01234567",
    )
    .await;
    type_into(
        browser,
        "#provider-github_web_base",
        "https://github.corp.example",
    )
    .await;
    type_into(
        browser,
        "#provider-github_api_base",
        "https://github.corp.example/api/v3",
    )
    .await;
    type_into(browser, "#provider-allowed_orgs", "acme").await;
    click(browser, "#save-provider").await;
    let callback = wait_for(browser, "#callback-url")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(callback, app.url("/callback/ghe"));
    let ghe = portico::providers::repo::find(&app.state.store, "ghe")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(ghe.kind, portico::upstream::ProviderKind::Github);
    assert!(ghe.has_secret());
    assert!(
        !browser
            .source()
            .await
            .unwrap()
            .contains("0123456789abcdef0123456789abcdef01234567"),
        "the provider's secret is never shown"
    );
    screenshot(browser, "provider.png").await;
    browser.goto(&app.url("/admin/providers")).await.unwrap();
    wait_for(browser, "#providers").await;
    screenshot(browser, "providers.png").await;

    // A webhook: its secret shown once, then a test ping that arrives signed and shows in
    // the delivery log.
    let receiver = Receiver::start(Vec::new()).await;
    browser.goto(&app.url("/admin/webhooks")).await.unwrap();
    type_into(browser, "#webhook-url", &receiver.url()).await;
    click(browser, r#"input[name=events][value="login.succeeded"]"#).await;
    click(browser, "#create-webhook").await;
    let secret = wait_for(browser, "#webhook-secret")
        .await
        .text()
        .await
        .unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    browser.goto(&app.url("/admin/webhooks")).await.unwrap();
    wait_for(browser, "#webhooks").await;
    assert!(!browser.source().await.unwrap().contains(&secret));
    assert_eq!(count(browser, "#webhook-secret").await, 0);
    click(browser, "#webhooks tbody a").await;
    click(browser, "#send-ping").await;
    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1, "the ping arrived");
    assert!(
        signed_with(&secret, &received[0]),
        "signed with the shown secret"
    );
    let started = Instant::now();
    loop {
        browser.refresh().await.unwrap();
        let table = wait_for(browser, "#deliveries").await.text().await.unwrap();
        if table.contains("succeeded") {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the delivery log never showed it: {table}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    screenshot(browser, "webhook.png").await;
    browser.goto(&app.url("/admin/users")).await.unwrap();
    wait_for(browser, "main").await;
    screenshot(browser, "users.png").await;

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
