//! The first hour, in a real browser: from an empty database to a completed login through a
//! stand-in OpenID Connect provider, as a newcomer does it. Each step is checked with axe-core
//! and photographed (`PORTICO_SCREENSHOTS=1` saves the pictures as
//! `docs/screenshots/first-run-*.png`, the walk-through in docs/admin.md).

use portico::crypto::MasterKey;

use super::arrive;
use super::{Axe, click, count, screenshot, start_browser, text_of, type_into, wait_for};
use crate::admin::cli::admin_create;
use crate::admin::{EMAIL, PASSWORD};
use crate::helpers::{Backend, TestApp, TestDb, portico_command, spawn_app_with};
use crate::upstream_idp::{UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET, UpUser, Upstream};

#[tokio::test]
async fn a_newcomer_goes_from_an_empty_database_to_a_completed_login() {
    let Some((_driver, browser)) = start_browser().await else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let key = MasterKey::generate();
    let upstream = Upstream::start().await;
    upstream.login_as(UpUser::new("ada", "ada@corp.example"));
    let app = spawn_app_with(&db, key.clone(), |s| {
        // The webhook receiver of the last step listens on loopback.
        crate::webhooks::fast(s, &[]);
    })
    .await;
    walk(&app, &db, &key, &upstream, &browser).await;
    let _ = browser.close().await;
    app.stop();
    db.cleanup().await;
}

async fn walk(
    app: &TestApp,
    db: &TestDb,
    key: &MasterKey,
    upstream: &Upstream,
    browser: &fantoccini::Client,
) {
    let mut axe = Axe::default();

    // 1. The server's root leads to the admin UI, which says how to create the first admin.
    browser.goto(&app.url("/")).await.unwrap();
    let command = text_of(browser, "#create-admin-command").await;
    assert!(
        command.contains("admin create"),
        "the exact command: {command}"
    );
    assert_eq!(
        count(browser, "#no-admin form").await,
        0,
        "no web form claims the instance"
    );
    screenshot(browser, "first-run-1-no-admin.png").await;
    axe.check(browser, "first run: no admin yet").await;

    // 2. The admin runs that command; it says which database it wrote to.
    let out = admin_create(portico_command(db, key), EMAIL, PASSWORD);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(EMAIL), "{stdout}");
    assert!(stdout.to_lowercase().contains("database"), "{stdout}");
    browser.goto(&app.url("/admin")).await.unwrap();
    wait_for(browser, "#email").await;
    assert_eq!(count(browser, "#no-admin").await, 0, "the hint is gone");
    type_into(browser, "#email", EMAIL).await;
    type_into(browser, "#password", PASSWORD).await;
    click(browser, "#sign-in").await;

    // 3. The dashboard's checklist says what to do first.
    wait_for(browser, ".checklist").await;
    assert_eq!(count(browser, ".checklist li[data-done=true]").await, 0);
    screenshot(browser, "first-run-2-checklist.png").await;
    axe.check(browser, "first run: dashboard checklist").await;

    // 4. Add a provider: the stand-in, by OpenID Connect discovery.
    click(browser, "#setup-provider a").await;
    wait_for(browser, "#new-provider").await;
    screenshot(browser, "first-run-3-provider-kinds.png").await;
    axe.check(browser, "first run: provider kinds").await;
    click(browser, "#new-provider a[href*='kind=oidc']").await;
    type_into(browser, "#provider-id", "corp").await;
    type_into(browser, "#provider-display_name", "Corp SSO").await;
    type_into(browser, "#provider-issuer", &upstream.issuer).await;
    type_into(browser, "#provider-client_id", UPSTREAM_CLIENT_ID).await;
    type_into(browser, "#provider-client_secret", UPSTREAM_CLIENT_SECRET).await;
    click(browser, "#test-discovery").await;
    wait_for(browser, "#discovery .ok").await;
    // The secret is not sent back to the page: typed again before saving.
    type_into(browser, "#provider-client_secret", UPSTREAM_CLIENT_SECRET).await;
    // What to register at the provider is on the form before it is saved.
    let register = text_of(browser, ".register").await;
    assert!(register.contains(&app.url("/callback/corp")), "{register}");
    browser
        .execute(
            "document.querySelector('.register').scrollIntoView({block: 'center'});",
            vec![],
        )
        .await
        .unwrap();
    screenshot(browser, "first-run-4-provider-form.png").await;
    axe.check(browser, "first run: provider form, discovery tested")
        .await;
    click(browser, "#save-provider").await;
    let callback = text_of(browser, "#callback-url").await;
    assert_eq!(callback, app.url("/callback/corp"));
    axe.check(browser, "first run: provider created").await;

    // 5. Create a client; its secret is revealed once, after a redirect.
    browser.goto(&app.url("/admin")).await.unwrap();
    wait_for(browser, "#setup-provider[data-done=true]").await;
    click(browser, "#setup-client a").await;
    wait_for(browser, "#new-client").await;
    type_into(browser, "#client-client_id", "my-app").await;
    type_into(browser, "#client-name", "My app").await;
    type_into(
        browser,
        "#client-redirect_uris",
        "https://my-app.example/auth/callback",
    )
    .await;
    click(browser, "#create-client").await;
    let secret = text_of(browser, "#client-secret").await;
    assert!(secret.len() >= 32);
    screenshot(browser, "first-run-5-client-secret.png").await;
    axe.check(browser, "first run: client secret revealed")
        .await;
    // Reloading the reveal page does not create the client again, nor show the secret.
    browser.refresh().await.unwrap();
    wait_for(browser, "#gone").await;
    assert!(!browser.source().await.unwrap().contains(&secret));
    click(browser, "#next").await;
    wait_for(browser, "#edit-client").await;
    screenshot(browser, "first-run-6-client.png").await;
    axe.check(browser, "first run: the client's page").await;

    // 6. Try a login (the rest of the walk follows here).
    try_a_login(app, browser, &mut axe).await;

    // 7. A webhook completes the checklist, which then steps aside.
    browser.goto(&app.url("/admin")).await.unwrap();
    wait_for(browser, "#setup-login[data-done=true]").await;
    click(browser, "#setup-webhook a").await;
    let receiver = crate::webhooks::Receiver::start(vec![]).await;
    wait_for(browser, "#webhook-url").await;
    type_into(browser, "#webhook-url", &receiver.url()).await;
    click(browser, "input[name=events][value='login.succeeded']").await;
    click(browser, "#create-webhook").await;
    wait_for(browser, "#webhook-secret").await;
    browser.goto(&app.url("/admin")).await.unwrap();
    wait_for(browser, "#logins-succeeded").await;
    assert_eq!(count(browser, ".checklist").await, 0, "every step done");
    screenshot(browser, "first-run-8-dashboard.png").await;
    axe.check(browser, "first run: dashboard, set up").await;

    axe.assert_clean();
}

/// "Try a login" on the client's page: Portico asks before adding its test callback to the
/// client, then runs the real flow through the chooser and the stand-in provider, and shows
/// the ID token's claims.
async fn try_a_login(app: &TestApp, browser: &fantoccini::Client, axe: &mut Axe) {
    click(browser, "#try-login-start").await;
    wait_for(browser, "#confirm-action").await;
    let question = browser.source().await.unwrap();
    assert!(
        question.contains(&app.url("/admin/try-login/callback")),
        "the question names the URI it adds"
    );
    axe.check(browser, "first run: add the test callback?")
        .await;
    click(browser, "#confirm-action").await;

    // With one provider, Portico sends the browser straight to it (the chooser, with logos and
    // e-mail domain hints, is the main browser test's); the stand-in signs Ada in at once.
    // Back from the stand-in provider, the test callback shows what the app would receive.
    //
    // In CI this step twice ended on "Sign-in provider unavailable" at /login, where the
    // stand-in's discovery is fetched. The likely cause (those runs did not record the reason):
    // the request went out on a pooled connection that the stand-in (actix-web, 5 s keep-alive)
    // was closing, some seconds after "Test discovery" had opened it. Upstream connections are
    // now dropped after 2 s idle
    // (`upstream::http::tests::an_idle_connection_is_not_reused_after_the_pool_idle_timeout`).
    // Should it happen again, a first failure is reported with the reason the server recorded
    // and the login tried once more; a second failure fails the test.
    for attempt in 1..=2 {
        wait_for(browser, "button#try-login-start").await;
        click(browser, "button#try-login-start").await;
        let Err(e) = arrive(browser, "/admin/try-login/callback").await else {
            break;
        };
        let reasons: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM events WHERE type = 'login.failed' ORDER BY created_at DESC",
        )
        .fetch_all(app.state.store.pool())
        .await
        .unwrap_or_default();
        let report =
            format!("try a login, attempt {attempt}: {e}\nlogin.failed events: {reasons:?}");
        if attempt == 2 {
            panic!("{report}");
        }
        eprintln!("{report}\ntrying once more");
        browser
            .goto(&app.url("/admin/clients/my-app"))
            .await
            .unwrap();
    }
    let claims = text_of(browser, "#claims").await;
    assert!(claims.contains("ada@corp.example"), "{claims}");
    assert!(claims.contains("my-app"), "the audience: {claims}");
    screenshot(browser, "first-run-7-claims.png").await;
    axe.check(browser, "first run: a completed login's claims")
        .await;
}
