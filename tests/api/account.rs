//! `/account`: a user connects a second provider (two providers on two upstream stand-ins),
//! and every attack on it, as the attacker would try it: a cross-site POST without the CSRF
//! token, a link callback replayed or taken to another browser, an identity that is another
//! user's, disconnecting the last identity, a stale session that must sign in again, and an
//! admin unlink that must take the identity's upstream tokens with it, and an admin moving an
//! identity from one user to another (refused when it would leave a user without a way in or
//! with two identities at one provider). Events and audit rows
//! are checked along the way.

use reqwest::Method;
use serde_json::Value;

use crate::admin::{api_token, call, error, json_of};
use crate::helpers::{TestApp, TestDb, spawn_app_with};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::{UpUser, Upstream};

on_both_backends!(
    the_account_sign_in_ends_at_the_account_page_only,
    a_user_connects_a_second_provider_and_disconnects_it,
    account_forms_without_the_csrf_token_change_nothing,
    a_link_callback_in_another_browser_or_replayed_is_refused,
    another_users_identity_is_never_merged,
    the_last_identity_cannot_be_disconnected,
    a_stale_session_signs_in_again_before_connecting,
    admin_unlink_revokes_the_identitys_tokens,
    the_admin_ui_unlinks_after_asking,
    an_admin_moves_another_users_identity_to_a_user,
    moving_an_identity_is_refused_when_it_would_break_a_user,
    the_admin_ui_moves_an_identity_after_asking,
    a_saml_step_up_must_be_a_fresh_authentication,
    a_silent_step_up_at_an_unlocked_browser_connects_nothing,
    a_session_from_a_silent_sign_in_is_not_fresh_for_connecting,
    a_connect_is_forced_and_confirmed_before_anything_is_linked,
    a_connect_login_is_pinned_to_the_posted_provider,
    a_step_up_gives_the_session_a_new_cookie,
    a_session_that_needs_a_new_login_is_signed_out_here,
    a_session_from_a_disabled_provider_changes_no_accounts,
    account_changes_are_rate_limited_per_user,
);

/// Two providers on two stand-ins: `corp` (Alice's first) and `other`.
struct Setup {
    app: TestApp,
    corp: Upstream,
    other: Upstream,
}

async fn setup(db: &TestDb) -> Setup {
    let corp = Upstream::start().await;
    let other = Upstream::start().await;
    other.login_as(UpUser::new("alice-at-other", "alice@other.example"));
    let (a, b) = (corp.issuer.clone(), other.issuer.clone());
    let app = spawn_app_with(db, portico::crypto::MasterKey::generate(), move |s| {
        s.providers = vec![provider("corp", &a, false), provider("other", &b, false)];
        s.clients = clients();
    })
    .await;
    Setup { app, corp, other }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Follows redirects from `url` (a GET) until a page, or until a redirect to a URL starting
/// with `stop`; returns the last URL and, for a page, its status and body.
async fn follow(
    b: &reqwest::Client,
    app: &TestApp,
    res: reqwest::Response,
    stop: Option<&str>,
) -> (String, u16, String) {
    let mut res = res;
    let mut url = res.url().to_string();
    for _ in 0..12 {
        if !res.status().is_redirection() {
            let status = res.status().as_u16();
            return (url, status, res.text().await.unwrap());
        }
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        url = if location.starts_with('/') {
            app.url(&location)
        } else {
            location
        };
        if stop.is_some_and(|s| url.starts_with(s)) {
            return (url, 0, String::new());
        }
        res = b.get(&url).send().await.unwrap();
    }
    panic!("too many redirects");
}

/// Signs in to the account page in `b` through `provider`; returns the page.
async fn sign_in(s: &Setup, b: &reqwest::Client, provider: &str) -> String {
    let res = b.get(s.app.url("/account")).send().await.unwrap();
    assert_eq!(
        res.status(),
        302,
        "signed out, /account sends to the sign-in"
    );
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/login?req="), "{location}");
    let chooser = b
        .get(s.app.url(&format!("{location}&provider={provider}")))
        .send()
        .await
        .unwrap();
    let (url, status, page) = follow(b, &s.app, chooser, None).await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(url.starts_with(&s.app.url("/account")), "{url}");
    assert!(page.contains("<h1>Your account</h1>"), "{page}");
    page
}

async fn account(s: &Setup, b: &reqwest::Client) -> String {
    let res = b.get(s.app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

fn csrf_in(page: &str) -> String {
    crate::admin::csrf_in(page)
}

/// POSTs an account form in `b`.
async fn post(
    s: &Setup,
    b: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    b.post(s.app.url(path)).form(form).send().await.unwrap()
}

/// The user id behind `b`'s session.
async fn user_of(s: &Setup, provider: &str, subject: &str) -> Option<String> {
    sqlx::query_scalar("SELECT user_id FROM identities WHERE provider_id = $1 AND subject = $2")
        .bind(provider)
        .bind(subject)
        .fetch_optional(s.app.state.store.pool())
        .await
        .unwrap()
}

async fn identities_of(s: &Setup, user_id: &str) -> Vec<(String, String)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, provider_id FROM identities WHERE user_id = $1 ORDER BY provider_id",
    )
    .bind(user_id)
    .fetch_all(s.app.state.store.pool())
    .await
    .unwrap();
    rows
}

async fn audit(s: &Setup, action: &str) -> Vec<(String, String, Value)> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT actor, target, details FROM audit_log WHERE action = $1 ORDER BY id",
    )
    .bind(action)
    .fetch_all(s.app.state.store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(a, t, d)| (a, t, serde_json::from_str(&d).unwrap()))
        .collect()
}

/// Connects `provider` from the account page in `b`, confirming the account when asked;
/// returns the final URL, status and page.
async fn connect(s: &Setup, b: &reqwest::Client, provider: &str) -> (String, u16, String) {
    let (url, status, page) = connect_unconfirmed(s, b, provider).await;
    if status == 200 && url.contains("/account/confirm?") {
        return answer_confirmation(s, b, &page, "connect").await;
    }
    (url, status, page)
}

/// Starts connecting `provider` from the account page in `b`, up to the first page (the
/// confirmation, or a refusal); returns its URL, status and body.
async fn connect_unconfirmed(
    s: &Setup,
    b: &reqwest::Client,
    provider: &str,
) -> (String, u16, String) {
    let csrf = csrf_in(&account(s, b).await);
    let res = post(
        s,
        b,
        "/account/connect",
        &[("csrf", &csrf), ("provider", provider)],
    )
    .await;
    follow(b, &s.app, res, None).await
}

/// The held connect a confirmation page names (its hidden `c`).
fn held_in(page: &str) -> String {
    let start = page
        .find("name=\"c\" value=\"")
        .expect("a confirmation page")
        + "name=\"c\" value=\"".len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// Answers the confirmation `page` in `b` with `decision`; returns the final URL, status, page.
async fn answer_confirmation(
    s: &Setup,
    b: &reqwest::Client,
    page: &str,
    decision: &str,
) -> (String, u16, String) {
    let form = [
        ("csrf", csrf_in(page)),
        ("c", held_in(page)),
        ("decision", decision.to_owned()),
    ];
    let res = b
        .post(s.app.url("/account/confirm"))
        .form(&form)
        .send()
        .await
        .unwrap();
    follow(b, &s.app, res, None).await
}

async fn the_account_sign_in_ends_at_the_account_page_only(db: &TestDb) {
    let s = setup(db).await;
    let b = browser();
    // Whatever the query says, an account login ends at /account (no open redirect).
    let res = b
        .get(
            s.app
                .url("/account?next=https://evil.example/&redirect_uri=https://evil.example/"),
        )
        .send()
        .await
        .unwrap();
    let chooser = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(!chooser.contains("evil"), "{chooser}");
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("portico_login="),
        "bound to this browser: {set}"
    );
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let page = b.get(s.app.url(&chooser)).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("Sign in to your account"), "{page}");
    assert!(page.contains("provider=corp") && page.contains("provider=other"));
    let res = b
        .get(s.app.url(&format!("{chooser}&provider=corp")))
        .send()
        .await
        .unwrap();
    let (url, status, _) = follow(&b, &s.app, res, None).await;
    assert_eq!(status, 200);
    assert_eq!(url, s.app.url("/account"));
    let succeeded = events(&s.app, "login.succeeded").await;
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0]["client_id"], Value::Null);
    // That login is spent: its chooser link, opened again (here in another browser), is refused.
    let res = browser().get(s.app.url(&chooser)).send().await.unwrap();
    assert_eq!(res.status(), 400);
    s.app.stop();
}

async fn a_user_connects_a_second_provider_and_disconnects_it(db: &TestDb) {
    let s = setup(db).await;
    let alice = browser();
    let page = sign_in(&s, &alice, "corp").await;
    assert!(page.contains("id=\"connect-other\""), "{page}");
    assert!(
        !page.contains("id=\"connect-corp\""),
        "a linked provider is not offered"
    );
    assert!(
        page.contains("id=\"last-identity\""),
        "one identity: no Disconnect"
    );
    let alice_id = user_of(&s, "corp", "alice-sub").await.unwrap();

    let (url, status, page) = connect(&s, &alice, "other").await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(url.ends_with("/account?done=connected"), "{url}");
    assert!(page.contains("The account is connected"), "{page}");
    assert!(page.contains("alice@other.example"), "{page}");
    assert!(
        page.contains("Corp other"),
        "the provider's display name is shown"
    );
    assert!(page.contains("id=\"disconnect-other\""), "{page}");
    assert_eq!(
        user_of(&s, "other", "alice-at-other").await,
        Some(alice_id.clone())
    );
    // No step-up at corp (the session is fresh); the connect login at `other` was forced.
    assert_eq!(s.corp.prompts(), vec![None]);
    assert_eq!(s.other.prompts(), vec![Some("login".into())]);

    let linked = events(&s.app, "identity.linked").await;
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert_eq!(linked[0]["user_id"], alice_id.as_str());
    assert_eq!(linked[0]["provider"], "other");
    assert_eq!(linked[0]["via"], "account");
    let rows = audit(&s, "identity.linked").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, format!("user:{alice_id}"));
    assert_eq!(rows[0].1, format!("user:{alice_id}"));

    // Signing in through the new provider now lands in Alice's account.
    let again = browser();
    sign_in(&s, &again, "other").await;
    assert_eq!(identities_of(&s, &alice_id).await.len(), 2);

    // Disconnect it again.
    let other_id = identity_at(&s, &alice_id, "other").await;
    let (url, status, page) = disconnect(&s, &alice, &other_id).await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(page.contains("The account is disconnected"), "{page}");
    assert_eq!(identities_of(&s, &alice_id).await.len(), 1);
    let unlinked = events(&s.app, "identity.unlinked").await;
    assert_eq!(unlinked.len(), 1);
    assert_eq!(unlinked[0]["identity_id"], other_id.as_str());
    assert_eq!(unlinked[0]["via"], "account");
    let rows = audit(&s, "identity.unlinked").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, format!("user:{alice_id}"));
    // The session that came through the disconnected identity ended.
    let res = again.get(s.app.url("/account")).send().await.unwrap();
    assert_eq!(
        res.status(),
        302,
        "the other browser's session ended with its identity"
    );
    s.app.stop();
}

async fn account_forms_without_the_csrf_token_change_nothing(db: &TestDb) {
    let s = setup(db).await;
    let alice = browser();
    sign_in(&s, &alice, "corp").await;
    let alice_id = user_of(&s, "corp", "alice-sub").await.unwrap();
    let pending = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM pending_authorizations")
            .fetch_one(s.app.state.store.pool())
            .await
            .unwrap()
    };
    let before = pending().await;

    // A cross-site form (SameSite=Lax sends no cookie on a cross-site POST; even if the
    // browser sent it) without the token, or with another session's token.
    for form in [
        vec![("provider", "other")],
        vec![("provider", "other"), ("csrf", "")],
        vec![
            ("provider", "other"),
            ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ],
    ] {
        let res = post(&s, &alice, "/account/connect", &form).await;
        assert_eq!(res.status(), 403, "{form:?}");
    }
    let mallory = browser();
    sign_in(&s, &mallory, "other").await;
    let mallorys = csrf_in(&account(&s, &mallory).await);
    let res = post(
        &s,
        &alice,
        "/account/connect",
        &[("csrf", &mallorys), ("provider", "other")],
    )
    .await;
    assert_eq!(res.status(), 403, "another session's token does not fit");
    let identity = identities_of(&s, &alice_id).await[0].0.clone();
    let res = post(
        &s,
        &alice,
        "/account/disconnect",
        &[("identity", &identity)],
    )
    .await;
    assert_eq!(res.status(), 403);
    // No session at all.
    let res = post(&s, &browser(), "/account/connect", &[("provider", "other")]).await;
    assert_eq!(res.status(), 403);

    assert_eq!(pending().await, before, "no refused form started a login");
    assert_eq!(identities_of(&s, &alice_id).await.len(), 1);
    assert!(events(&s.app, "identity.linked").await.is_empty());
    s.app.stop();
}

/// Makes every session's sign-in `secs` older, both Portico's time and the provider's stated
/// one.
async fn age_sessions(app: &TestApp, secs: i64) {
    sqlx::query(
        "UPDATE sso_sessions SET auth_time = auth_time - $1, \
         stated_auth_time = stated_auth_time - $1",
    )
    .bind(secs)
    .execute(app.state.store.pool())
    .await
    .unwrap();
}

/// The id of `user_id`'s identity at `provider`.
async fn identity_at(s: &Setup, user_id: &str, provider: &str) -> String {
    let found = identities_of(s, user_id).await.into_iter();
    found.into_iter().find(|(_, p)| p == provider).unwrap().0
}

/// Disconnects identity `id` from the account page in `b`; returns the final URL, status and
/// page.
async fn disconnect(s: &Setup, b: &reqwest::Client, id: &str) -> (String, u16, String) {
    let csrf = csrf_in(&account(s, b).await);
    let res = post(
        s,
        b,
        "/account/disconnect",
        &[("csrf", &csrf), ("identity", id)],
    )
    .await;
    follow(b, &s.app, res, None).await
}

/// Starts connecting `other` in `b` and stops at the callback to Portico; returns its URL.
async fn link_callback(s: &Setup, b: &reqwest::Client) -> String {
    let csrf = csrf_in(&account(s, b).await);
    let res = post(
        s,
        b,
        "/account/connect",
        &[("csrf", &csrf), ("provider", "other")],
    )
    .await;
    let (url, status, _) = follow(b, &s.app, res, Some(&s.app.url("/callback/other"))).await;
    assert_eq!(status, 0, "stopped at the callback: {url}");
    url
}

async fn a_link_callback_in_another_browser_or_replayed_is_refused(db: &TestDb) {
    let s = setup(db).await;
    let alice = browser();
    sign_in(&s, &alice, "corp").await;
    let alice_id = user_of(&s, "corp", "alice-sub").await.unwrap();

    // The attacker takes Alice's link callback to their own browser (signed in or not).
    let callback = link_callback(&s, &alice).await;
    let mallory = browser();
    s.other
        .login_as(UpUser::new("mallory-at-other", "mallory@other.example"));
    sign_in(&s, &mallory, "other").await;
    s.other
        .login_as(UpUser::new("alice-at-other", "alice@other.example"));
    let res = mallory.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("This sign-in has expired")
    );
    assert!(user_of(&s, "other", "alice-at-other").await.is_none());
    // …after which it is spent for Alice too.
    let res = alice.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(user_of(&s, "other", "alice-at-other").await.is_none());

    // A completed link, replayed in the same browser, does nothing more.
    let callback = link_callback(&s, &alice).await;
    let res = alice.get(&callback).send().await.unwrap();
    let (_, status, page) = follow(&alice, &s.app, res, None).await;
    assert_eq!(status, 200);
    let (url, status, _) = answer_confirmation(&s, &alice, &page, "connect").await;
    assert_eq!(status, 200);
    assert!(url.ends_with("/account?done=connected"), "{url}");
    let res = alice.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 400, "a replayed callback is refused");
    assert_eq!(identities_of(&s, &alice_id).await.len(), 2);
    assert_eq!(events(&s.app, "identity.linked").await.len(), 1);
    let failed = events(&s.app, "login.failed").await;
    assert!(
        failed.iter().any(|e| e["reason"]
            .as_str()
            .unwrap()
            .contains("did not start the login")),
        "{failed:?}"
    );
    s.app.stop();
}

async fn another_users_identity_is_never_merged(db: &TestDb) {
    let s = setup(db).await;
    // Bob already signs in with the `other` account that Alice will try to connect.
    s.other
        .login_as(UpUser::new("bob-at-other", "bob@other.example"));
    let bob = browser();
    sign_in(&s, &bob, "other").await;
    let bob_id = user_of(&s, "other", "bob-at-other").await.unwrap();

    let alice = browser();
    sign_in(&s, &alice, "corp").await;
    let alice_id = user_of(&s, "corp", "alice-sub").await.unwrap();
    let (url, status, page) = connect(&s, &alice, "other").await;
    assert_eq!(status, 409, "{url}: {page}");
    assert!(page.contains("already connected to someone else"), "{page}");
    assert!(page.contains("administrator"), "{page}");

    // Both users are as they were.
    assert_eq!(
        identities_of(&s, &alice_id).await,
        vec![(
            identities_of(&s, &alice_id).await[0].0.clone(),
            "corp".into()
        )]
    );
    let bobs = identities_of(&s, &bob_id).await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].1, "other");
    assert_eq!(
        user_of(&s, "other", "bob-at-other").await,
        Some(bob_id.clone())
    );
    assert!(events(&s.app, "identity.linked").await.is_empty());
    let refused = audit(&s, "identity.link_refused").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, format!("user:{alice_id}"));
    assert_eq!(refused[0].2["other_user_id"], bob_id.as_str());
    let failed = events(&s.app, "login.failed").await;
    assert!(
        failed.iter().any(|e| e["reason"]
            .as_str()
            .unwrap()
            .contains("belongs to another user")),
        "{failed:?}"
    );
    // Alice is still signed in as herself.
    assert!(account(&s, &alice).await.contains("id=\"connect-other\""));
    s.app.stop();
}

async fn the_last_identity_cannot_be_disconnected(db: &TestDb) {
    let s = setup(db).await;
    let alice = browser();
    let page = sign_in(&s, &alice, "corp").await;
    assert!(
        !page.contains("/account/disconnect"),
        "no Disconnect for the only identity"
    );
    let alice_id = user_of(&s, "corp", "alice-sub").await.unwrap();
    let only = identities_of(&s, &alice_id).await[0].0.clone();
    // The form is forged: the service refuses all the same.
    let csrf = csrf_in(&page);
    let res = post(
        &s,
        &alice,
        "/account/disconnect",
        &[("csrf", &csrf), ("identity", &only)],
    )
    .await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("only way to sign in"));
    assert_eq!(identities_of(&s, &alice_id).await.len(), 1);
    assert!(events(&s.app, "identity.unlinked").await.is_empty());
    assert!(audit(&s, "identity.unlinked").await.is_empty());
    // Nor can she remove someone else's identity by its id.
    let bob = browser();
    s.other
        .login_as(UpUser::new("bob-at-other", "bob@other.example"));
    sign_in(&s, &bob, "other").await;
    let bob_id = user_of(&s, "other", "bob-at-other").await.unwrap();
    let bobs = identities_of(&s, &bob_id).await[0].0.clone();
    let res = post(
        &s,
        &alice,
        "/account/disconnect",
        &[("csrf", &csrf), ("identity", &bobs)],
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(identities_of(&s, &bob_id).await.len(), 1);
    s.app.stop();
}

async fn a_stale_session_signs_in_again_before_connecting(db: &TestDb) {
    let s = setup(db).await;
    let alice = browser();
    sign_in(&s, &alice, "corp").await;
    let alice_id = user_of(&s, "corp", "alice-sub").await.unwrap();
    assert_eq!(s.corp.prompts(), vec![None]);
    // The session's sign-in is ten minutes old.
    age_sessions(&s.app, 600).await;

    let (url, status, page) = connect(&s, &alice, "other").await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(url.ends_with("/account?done=connected"), "{url}");
    // Corp was asked to authenticate Alice again before `other` was asked at all.
    assert_eq!(s.corp.prompts(), vec![None, Some("login".into())]);
    assert_eq!(s.other.prompts(), vec![Some("login".into())]);
    assert_eq!(
        user_of(&s, "other", "alice-at-other").await,
        Some(alice_id.clone())
    );
    // The step-up is recorded as a login (for the account page, marked as a step-up).
    let logins = events(&s.app, "login.succeeded").await;
    assert_eq!(logins.len(), 2, "{logins:?}");
    let step_ups: Vec<&Value> = logins.iter().filter(|e| e["step_up"] == true).collect();
    assert_eq!(step_ups.len(), 1, "{logins:?}");
    assert_eq!(step_ups[0]["user_id"], alice_id.as_str());
    assert_eq!(step_ups[0]["client_id"], Value::Null);
    let auth_time: i64 =
        sqlx::query_scalar("SELECT auth_time FROM sso_sessions WHERE user_id = $1")
            .bind(&alice_id)
            .fetch_one(s.app.state.store.pool())
            .await
            .unwrap();
    assert!(
        portico::store::now() - auth_time < 60,
        "the step-up renewed the sign-in time"
    );

    // A step-up that comes back as someone else changes nothing.
    age_sessions(&s.app, 600).await;
    s.corp.login_as(UpUser::new("eve-sub", "eve@corp.example"));
    let other_id = identity_at(&s, &alice_id, "other").await;
    let (url, status, page) = disconnect(&s, &alice, &other_id).await;
    assert_eq!(status, 403, "{url}: {page}");
    assert!(page.contains("different account"), "{page}");
    assert_eq!(identities_of(&s, &alice_id).await.len(), 2);
    assert!(
        user_of(&s, "corp", "eve-sub").await.is_none(),
        "no user was created"
    );
    s.app.stop();
}

async fn admin_unlink_revokes_the_identitys_tokens(db: &TestDb) {
    let s = setup(db).await;
    let alice = browser();
    sign_in(&s, &alice, "corp").await;
    let alice_id = user_of(&s, "corp", "alice-sub").await.unwrap();
    connect(&s, &alice, "other").await;
    let other_id = identity_at(&s, &alice_id, "other").await;

    // An application holds a refresh token issued through the `other` identity.
    let (sub, refresh) = rp_sign_in(&s, "other").await;
    assert_eq!(sub, alice_id);
    let vault = |id: String| {
        let store = s.app.state.store.clone();
        async move {
            let found = portico::users::identities::with_tokens(
                &store,
                portico::users::identities::Which::Id(&id),
            )
            .await
            .unwrap();
            found.is_some_and(|(_, sealed)| sealed.access_token.is_some())
        }
    };
    assert!(
        vault(other_id.clone()).await,
        "the vault holds the identity's upstream tokens"
    );

    let token = api_token(&s.app, "ops").await;
    let path = format!("/users/{alice_id}/identities/{other_id}");
    let body = json_of(
        call(&s.app, Method::DELETE, Some(&token), &path, None).await,
        200,
    )
    .await;
    assert_eq!(body["provider"], "other");
    assert_eq!(body["refresh_tokens_revoked"], 1);
    assert!(
        !vault(other_id.clone()).await,
        "the upstream tokens left the vault"
    );
    let (status, _, answer) = post_form(
        &s.app,
        "/token",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_invalid_grant(status, &answer);
    let unlinked = events(&s.app, "identity.unlinked").await;
    assert_eq!(unlinked.len(), 1);
    assert_eq!(unlinked[0]["via"], "admin");
    let rows = audit(&s, "identity.unlinked").await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].0.starts_with("api_token:ops"), "{}", rows[0].0);

    // The last identity: refused, and nothing changes.
    let corp_id = identities_of(&s, &alice_id).await[0].0.clone();
    let path = format!("/users/{alice_id}/identities/{corp_id}");
    error(
        call(&s.app, Method::DELETE, Some(&token), &path, None).await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(identities_of(&s, &alice_id).await.len(), 1);
    assert!(vault(corp_id).await);
    // Another user's identity under this user's path: 404.
    let path = format!("/users/{alice_id}/identities/{other_id}");
    json_of(
        call(&s.app, Method::DELETE, Some(&token), &path, None).await,
        404,
    )
    .await;
    s.app.stop();
}

/// POSTs the confirmation page `ask` without `confirm=yes` (the page again, 200) and without
/// the CSRF token (403): the caller checks that nothing changed.
async fn unconfirmed_posts_change_nothing(
    s: &Setup,
    admin: &reqwest::Client,
    ask: &str,
    csrf: &str,
) {
    let res = admin
        .post(s.app.url(ask))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = admin
        .post(s.app.url(ask))
        .form(&[("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

async fn the_admin_ui_unlinks_after_asking(db: &TestDb) {
    use crate::admin::{create_admin, page, signed_in};
    let s = setup(db).await;
    let alice = browser();
    sign_in(&s, &alice, "corp").await;
    let alice_id = user_of(&s, "corp", "alice-sub").await.unwrap();
    create_admin(&s.app).await;
    let admin = signed_in(&s.app).await;
    let corp_id = identity_at(&s, &alice_id, "corp").await;
    // One identity: no Unlink offered, and its page refuses.
    let user_page = page(&s.app, &admin, &format!("/admin/users/{alice_id}")).await;
    assert!(!user_page.contains("/unlink"), "{user_page}");
    let ask = format!("/admin/identities/{corp_id}/unlink");
    let res = admin.get(s.app.url(&ask)).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("only identity"));

    connect(&s, &alice, "other").await;
    let other_id = identity_at(&s, &alice_id, "other").await;
    let user_page = page(&s.app, &admin, &format!("/admin/users/{alice_id}")).await;
    let ask = format!("/admin/identities/{other_id}/unlink");
    assert!(user_page.contains(&ask), "{user_page}");
    let question = page(&s.app, &admin, &ask).await;
    assert!(question.contains("Unlink the other identity"), "{question}");
    assert!(question.contains("deleted from the vault"), "{question}");
    let csrf = csrf_in(&question);
    unconfirmed_posts_change_nothing(&s, &admin, &ask, &csrf).await;
    assert_eq!(identities_of(&s, &alice_id).await.len(), 2);
    let res = admin
        .post(s.app.url(&ask))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        format!("/admin/users/{alice_id}?done=unlinked").as_str()
    );
    assert_eq!(identities_of(&s, &alice_id).await.len(), 1);
    let rows = audit(&s, "identity.unlinked").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, format!("admin:{}", crate::admin::EMAIL));
    assert_eq!(events(&s.app, "identity.unlinked").await[0]["via"], "admin");
    s.app.stop();
}

/// Bob signs in with `corp` (bob-sub) and connects the `other` account `shared-at-other`;
/// Alice signs in with `corp` (alice-sub). Returns (Bob's browser, Bob's id, Alice's id, the
/// id of Bob's `other` identity); `corp` signs in Alice from then on.
async fn bob_has_the_shared_account(s: &Setup) -> (reqwest::Client, String, String, String) {
    s.corp.login_as(UpUser::new("bob-sub", "bob@corp.example"));
    let bob = browser();
    sign_in(s, &bob, "corp").await;
    let bob_id = user_of(s, "corp", "bob-sub").await.unwrap();
    s.other
        .login_as(UpUser::new("shared-at-other", "shared@other.example"));
    connect(s, &bob, "other").await;
    let shared = identity_at(s, &bob_id, "other").await;
    s.corp
        .login_as(UpUser::new("alice-sub", "alice@corp.example"));
    let alice = browser();
    sign_in(s, &alice, "corp").await;
    let alice_id = user_of(s, "corp", "alice-sub").await.unwrap();
    (bob, bob_id, alice_id, shared)
}

/// Signs in to the client through `provider` (a forced login) with offline access; returns the
/// ID token's `sub` and the refresh token.
async fn rp_sign_in(s: &Setup, provider: &str) -> (String, String) {
    use openidconnect::{OAuth2TokenResponse, TokenResponse};
    let rp = relying_party(&s.app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (url, _, nonce, verifier) = start(
        &rp,
        &["email", "offline_access"],
        &[("provider", provider), ("prompt", "login")],
    );
    let arrived = browse_with(&browser(), &s.app, url.as_str(), REDIRECT)
        .await
        .url();
    let code = param(&arrived, "code").unwrap();
    let (tokens, _) = exchange(
        &rp,
        Authorized {
            code,
            nonce,
            verifier,
        },
    )
    .await;
    let claims = jwt_claims(&tokens.id_token().unwrap().to_string());
    let refresh = tokens.refresh_token().unwrap().secret().clone();
    (claims["sub"].as_str().unwrap().to_owned(), refresh)
}

async fn move_call(s: &Setup, token: &str, to: &str, identity: &str) -> reqwest::Response {
    let path = format!("/users/{to}/identities");
    let body = serde_json::json!({ "identity_id": identity });
    call(&s.app, Method::POST, Some(token), &path, Some(body)).await
}

async fn an_admin_moves_another_users_identity_to_a_user(db: &TestDb) {
    let s = setup(db).await;
    let (_bob, bob_id, alice_id, shared) = bob_has_the_shared_account(&s).await;
    // An application holds Bob's refresh token, issued through the shared account.
    let (sub, bobs_refresh) = rp_sign_in(&s, "other").await;
    assert_eq!(sub, bob_id);

    let token = api_token(&s.app, "ops").await;
    let moved = json_of(move_call(&s, &token, &alice_id, &shared).await, 200).await;
    assert_eq!(moved["id"], shared.as_str());
    assert_eq!(moved["provider"], "other");
    assert_eq!(moved["subject"], "shared-at-other");
    assert_eq!(identity_at(&s, &alice_id, "other").await, shared);
    assert_eq!(identities_of(&s, &bob_id).await.len(), 1);
    assert_eq!(
        user_of(&s, "other", "shared-at-other").await,
        Some(alice_id.clone())
    );

    // Bob's refresh token from the identity is refused; signing in through it lands as Alice.
    let (status, _, answer) = post_form(
        &s.app,
        "/token",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &bobs_refresh),
        ],
    )
    .await;
    assert_invalid_grant(status, &answer);
    let (sub, _) = rp_sign_in(&s, "other").await;
    assert_eq!(sub, alice_id);

    let unlinked = events(&s.app, "identity.unlinked").await;
    assert_eq!(unlinked.len(), 1);
    assert_eq!(unlinked[0]["user_id"], bob_id.as_str());
    assert_eq!(unlinked[0]["identity_id"], shared.as_str());
    assert_eq!(unlinked[0]["via"], "admin");
    let linked = events(&s.app, "identity.linked").await;
    let last = linked.last().unwrap();
    assert_eq!(last["user_id"], alice_id.as_str());
    assert_eq!(last["identity_id"], shared.as_str());
    assert_eq!(last["via"], "admin");
    let rows = audit(&s, "identity.moved").await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].0.starts_with("api_token:ops"), "{}", rows[0].0);
    assert_eq!(rows[0].1, format!("user:{alice_id}"));
    assert_eq!(rows[0].2["from_user_id"], bob_id.as_str());
    assert_eq!(rows[0].2["to_user_id"], alice_id.as_str());
    assert_eq!(rows[0].2["refresh_tokens_revoked"], 1);
    s.app.stop();
}

async fn moving_an_identity_is_refused_when_it_would_break_a_user(db: &TestDb) {
    let s = setup(db).await;
    let (_bob, bob_id, alice_id, shared) = bob_has_the_shared_account(&s).await;
    // Carol has `other` (carol-at-other) and `corp` (carol-sub).
    s.other
        .login_as(UpUser::new("carol-at-other", "carol@other.example"));
    let carol = browser();
    sign_in(&s, &carol, "other").await;
    let carol_id = user_of(&s, "other", "carol-at-other").await.unwrap();
    s.corp
        .login_as(UpUser::new("carol-sub", "carol@corp.example"));
    connect(&s, &carol, "corp").await;
    assert_eq!(identities_of(&s, &carol_id).await.len(), 2);
    let token = api_token(&s.app, "ops").await;

    // Alice's only identity cannot go to Bob: Alice could never sign in again.
    let alices = identity_at(&s, &alice_id, "corp").await;
    let body = error(
        move_call(&s, &token, &bob_id, &alices).await,
        409,
        "conflict",
    )
    .await;
    assert!(
        body.to_string()
            .contains("another identity, or delete that user"),
        "{body}"
    );
    // Bob already has an `other` identity: one per provider and user.
    let carols = identity_at(&s, &carol_id, "other").await;
    let body = error(
        move_call(&s, &token, &bob_id, &carols).await,
        409,
        "conflict",
    )
    .await;
    assert!(
        body.to_string().contains("one identity per provider"),
        "{body}"
    );
    // Bob's own identity to Bob.
    error(
        move_call(&s, &token, &bob_id, &shared).await,
        409,
        "conflict",
    )
    .await;
    // Unknown identity, unknown user.
    error(
        move_call(&s, &token, &bob_id, "nope").await,
        404,
        "not_found",
    )
    .await;
    error(
        move_call(&s, &token, "no-such-user", &carols).await,
        404,
        "not_found",
    )
    .await;

    assert_eq!(identities_of(&s, &alice_id).await.len(), 1);
    assert_eq!(identities_of(&s, &bob_id).await.len(), 2);
    assert_eq!(identities_of(&s, &carol_id).await.len(), 2);
    assert!(audit(&s, "identity.moved").await.is_empty());
    assert_eq!(events(&s.app, "identity.unlinked").await.len(), 0);
    s.app.stop();
}

async fn the_admin_ui_moves_an_identity_after_asking(db: &TestDb) {
    use crate::admin::{create_admin, page, signed_in};
    let s = setup(db).await;
    let (_bob, bob_id, alice_id, shared) = bob_has_the_shared_account(&s).await;
    create_admin(&s.app).await;
    let admin = signed_in(&s.app).await;
    // The identity id is on Bob's page; Alice's page offers the move.
    let bobs_page = page(&s.app, &admin, &format!("/admin/users/{bob_id}")).await;
    assert!(bobs_page.contains(&shared), "{bobs_page}");
    let alices_page = page(&s.app, &admin, &format!("/admin/users/{alice_id}")).await;
    assert!(
        alices_page.contains("Move an identity to this user"),
        "{alices_page}"
    );
    let ask = format!("/admin/users/{alice_id}/identities/move?identity={shared}");
    let question = page(&s.app, &admin, &ask).await;
    assert!(question.contains("Move the other identity"), "{question}");
    assert!(question.contains("leaves bob@corp.example"), "{question}");
    assert!(question.contains("keeps 1 other identities"), "{question}");
    assert_eq!(
        identities_of(&s, &bob_id).await.len(),
        2,
        "a GET changes nothing"
    );
    let csrf = csrf_in(&question);
    unconfirmed_posts_change_nothing(&s, &admin, &ask, &csrf).await;
    assert_eq!(identities_of(&s, &bob_id).await.len(), 2);
    assert!(audit(&s, "identity.moved").await.is_empty());
    let res = admin
        .post(s.app.url(&ask))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        format!("/admin/users/{alice_id}?done=moved").as_str()
    );
    assert_eq!(identity_at(&s, &alice_id, "other").await, shared);
    assert_eq!(identities_of(&s, &bob_id).await.len(), 1);
    let rows = audit(&s, "identity.moved").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, format!("admin:{}", crate::admin::EMAIL));
    let done = page(
        &s.app,
        &admin,
        &format!("/admin/users/{alice_id}?done=moved"),
    )
    .await;
    assert!(done.contains("moved to this user"), "{done}");
    // Bob's last identity now: the move is refused and changes nothing.
    let bobs = identity_at(&s, &bob_id, "corp").await;
    let res = admin
        .post(s.app.url(&format!(
            "/admin/users/{alice_id}/identities/move?identity={bobs}"
        )))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(identities_of(&s, &bob_id).await.len(), 1);
    s.app.stop();
}

/// Answers, as the SAML IdP, the AuthnRequest that `res` leads the browser to, saying it
/// authenticated the user `authn_ago` seconds ago; the browser then goes on to the end.
/// Returns whether the request forced a new authentication, and the final URL, status and page.
async fn saml_answer(
    saml: &crate::saml_support::Saml,
    res: reqwest::Response,
    authn_ago: i64,
) -> (bool, String, u16, String) {
    use crate::saml_support::{authn_request_id, inflate};
    let stop = Some(crate::saml_idp::SSO_URL);
    let (at_idp, _, _) = follow(&saml.browser, &saml.app, res, stop).await;
    let at_idp = url::Url::parse(&at_idp).unwrap();
    let relay = param(&at_idp, "RelayState").unwrap();
    let request = param(&at_idp, "SAMLRequest").unwrap();
    let forced = inflate(&request).contains(r#"ForceAuthn="true""#);
    let mut c = saml.claims(Some(&authn_request_id(&request)));
    c.authn_instant = portico::store::now() - authn_ago;
    let res = saml.post_acs(&saml.signed(&c), Some(&relay)).await;
    let (url, status, page) = follow(&saml.browser, &saml.app, res, None).await;
    (forced, url, status, page)
}

async fn a_saml_step_up_must_be_a_fresh_authentication(db: &TestDb) {
    use crate::saml_idp::{KeyPair, metadata_xml};
    use crate::saml_support::{IDP_ENTITY, PROVIDER, Saml, saml_provider};
    let other = Upstream::start().await;
    other.login_as(UpUser::new("ada-at-other", "ada@other.example"));
    let issuer = other.issuer.clone();
    let idp = KeyPair::generate("test idp");
    let acme = saml_provider(Some(metadata_xml(IDP_ENTITY, &[&idp])), None);
    let saml = Saml::with_settings(db, idp, acme, move |s| {
        s.providers.push(provider("other", &issuer, false));
    })
    .await;
    let (app, b) = (&saml.app, &saml.browser);

    // Ada signs in to /account through the SAML provider.
    let res = b.get(app.url("/account")).send().await.unwrap();
    let chooser = res.headers()["location"].to_str().unwrap().to_owned();
    let res = b
        .get(app.url(&format!("{chooser}&provider={PROVIDER}")))
        .send()
        .await
        .unwrap();
    let (_, url, status, page) = saml_answer(&saml, res, 0).await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(page.contains("id=\"connect-other\""), "{page}");
    let ada: String = sqlx::query_scalar("SELECT user_id FROM identities WHERE provider_id = $1")
        .bind(PROVIDER)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    let linked = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM identities WHERE user_id = $1")
            .bind(&ada)
            .fetch_one(app.state.store.pool())
            .await
            .unwrap()
    };
    age_sessions(app, 600).await;
    let connect = || async {
        let page = b.get(app.url("/account")).send().await.unwrap();
        let csrf = csrf_in(&page.text().await.unwrap());
        let form = [("csrf", csrf.as_str()), ("provider", "other")];
        b.post(app.url("/account/connect"))
            .form(&form)
            .send()
            .await
            .unwrap()
    };

    // The stale session is sent back to its IdP with ForceAuthn; an IdP that answers from
    // an hour-old session is refused, and nothing is connected.
    let (forced, url, status, page) = saml_answer(&saml, connect().await, 3600).await;
    assert!(forced, "the step-up forced a new authentication");
    assert_eq!(status, 403, "{url}: {page}");
    assert!(page.contains("earlier sign-in"), "{page}");
    assert_eq!(linked().await, 1);
    assert_eq!(
        other.prompts(),
        Vec::<Option<String>>::new(),
        "never sent on"
    );
    let failed = events(app, "login.failed").await;
    assert!(
        failed.iter().any(|e| e["reason"]
            .as_str()
            .unwrap()
            .contains("as the step-up asked")),
        "{failed:?}"
    );

    // A real new authentication: the connect goes on to the other provider.
    let (forced, url, status, page) = saml_answer(&saml, connect().await, 0).await;
    assert!(forced);
    assert_eq!(status, 200, "{url}: {page}");
    assert!(url.contains("/account/confirm?c="), "{url}");
    let form = [
        ("csrf", csrf_in(&page)),
        ("c", held_in(&page)),
        ("decision", "connect".to_owned()),
    ];
    let res = b
        .post(app.url("/account/confirm"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let (url, status, page) = follow(b, app, res, None).await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(url.ends_with("/account?done=connected"), "{url}");
    assert_eq!(linked().await, 2);
    app.stop();
}

/// The attack of the security review: at the victim's unlocked browser (her Portico sign-in
/// ten minutes old, her IdP session still open), the attacker clicks Connect for `other`,
/// where he is signed in as himself. Her IdP ignores `prompt=login` and answers at once.
async fn a_silent_step_up_at_an_unlocked_browser_connects_nothing(db: &TestDb) {
    let s = setup(db).await;
    let alice = browser();
    sign_in(&s, &alice, "corp").await;
    let alice_id = user_of(&s, "corp", "alice-sub").await.unwrap();
    age_sessions(&s.app, 600).await;
    s.other
        .login_as(UpUser::new("mallory-at-other", "mallory@other.example"));
    s.corp.ignore_prompt(true);
    let refused = |what: &'static str| {
        let s = &s;
        let alice = &alice;
        async move {
            let (url, status, page) = connect(s, alice, "other").await;
            assert_eq!(status, 403, "{what}: {url}: {page}");
            assert!(page.contains("earlier sign-in"), "{what}: {page}");
            assert!(
                user_of(s, "other", "mallory-at-other").await.is_none(),
                "{what}: nothing was connected"
            );
            assert!(s.other.prompts().is_empty(), "{what}: never sent on");
        }
    };

    // It does not say when it authenticated her: refused.
    s.corp.state_auth_time(false);
    refused("no auth_time").await;
    // It says, truthfully, that it authenticated her an hour ago: refused.
    s.corp.state_auth_time(true);
    s.corp
        .signed_in_at("alice-sub", portico::store::now() - 3600);
    refused("an old auth_time").await;
    assert_eq!(identities_of(&s, &alice_id).await.len(), 1);
    let failed = events(&s.app, "login.failed").await;
    let step_up_failures = failed
        .iter()
        .filter(|e| {
            e["reason"]
                .as_str()
                .unwrap()
                .contains("as the step-up asked")
        })
        .count();
    assert_eq!(step_up_failures, 2, "{failed:?}");
    // The step-up asked for a new authentication every time.
    assert!(
        s.corp.prompts()[1..]
            .iter()
            .all(|p| p.as_deref() == Some("login")),
        "{:?}",
        s.corp.prompts()
    );

    // An IdP that does authenticate her again (and says so) lets the connect go on.
    s.corp.ignore_prompt(false);
    s.other
        .login_as(UpUser::new("alice-at-other", "alice@other.example"));
    let (url, status, page) = connect(&s, &alice, "other").await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(url.ends_with("/account?done=connected"), "{url}");
    assert_eq!(user_of(&s, "other", "alice-at-other").await, Some(alice_id));
    s.app.stop();
}

/// Signed out of Portico but not of her IdP (which ignores `prompt=login`), the victim's
/// browser signs in to /account silently. That sign-in is new to Portico, not to anyone at the
/// browser: it must not count as recent for connecting.
async fn a_session_from_a_silent_sign_in_is_not_fresh_for_connecting(db: &TestDb) {
    let s = setup(db).await;
    s.other
        .login_as(UpUser::new("mallory-at-other", "mallory@other.example"));
    // Her IdP session is an hour old.
    s.corp
        .signed_in_at("alice-sub", portico::store::now() - 3600);
    s.corp.ignore_prompt(true);
    for states in [false, true] {
        s.corp.state_auth_time(states);
        let b = browser();
        sign_in(&s, &b, "corp").await;
        let (url, status, page) = connect(&s, &b, "other").await;
        assert_eq!(status, 403, "auth_time stated: {states}: {url}: {page}");
        assert!(page.contains("earlier sign-in"), "{page}");
        // The connect first went back to corp, forced; `other` was never asked.
        assert_eq!(s.corp.prompts().last(), Some(&Some("login".to_owned())));
        assert!(s.other.prompts().is_empty());
        assert!(user_of(&s, "other", "mallory-at-other").await.is_none());
    }
    // The sign-in time a provider did not state is not recorded as stated.
    let stated: Vec<Option<i64>> =
        sqlx::query_scalar("SELECT stated_auth_time FROM sso_sessions ORDER BY auth_time")
            .fetch_all(s.app.state.store.pool())
            .await
            .unwrap();
    assert!(stated.contains(&None), "{stated:?}");
    s.app.stop();
}

/// The attacker at the victim's fresh session clicks Connect: whatever account the provider's
/// session holds must not be linked unseen. The connect login is forced, and what comes back
/// is only linked once the user confirms it on a page naming it; the held result is single
/// use, bound to the browser and the session, and a cancel links nothing.
async fn a_connect_is_forced_and_confirmed_before_anything_is_linked(db: &TestDb) {
    let s = setup(db).await;
    let alice = browser();
    sign_in(&s, &alice, "corp").await;
    let alice_id = user_of(&s, "corp", "alice-sub").await.unwrap();
    s.other
        .login_as(UpUser::new("mallory-at-other", "mallory@other.example"));

    let (url, status, page) = connect_unconfirmed(&s, &alice, "other").await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(url.contains("/account/confirm?c="), "{url}");
    assert_eq!(
        s.other.prompts(),
        vec![Some("login".to_owned())],
        "the connect login was forced"
    );
    assert!(page.contains("mallory@other.example"), "{page}");
    assert!(page.contains("alice@corp.example"), "{page}");
    assert!(
        user_of(&s, "other", "mallory-at-other").await.is_none(),
        "nothing is linked before the user confirms"
    );
    let held = held_in(&page);
    let csrf = csrf_in(&page);
    let confirm_in = |b: &reqwest::Client, csrf: String, held: String| {
        let b = b.clone();
        let url = s.app.url("/account/confirm");
        async move {
            let form = [("csrf", csrf), ("c", held), ("decision", "connect".into())];
            b.post(url).form(&form).send().await.unwrap()
        }
    };
    // A forged confirmation (no or another CSRF token) changes nothing.
    let res = confirm_in(&alice, "forged".into(), held.clone()).await;
    assert_eq!(res.status(), 403);
    // Another browser, even signed in as Alice, cannot spend it (nor see it).
    let other_browser = browser();
    sign_in(&s, &other_browser, "corp").await;
    let theirs = csrf_in(&account(&s, &other_browser).await);
    let res = confirm_in(&other_browser, theirs, held.clone()).await;
    assert_eq!(res.status(), 400, "not this browser's");
    let res = other_browser
        .get(s.app.url(&format!("/account/confirm?c={held}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(user_of(&s, "other", "mallory-at-other").await.is_none());

    // Alice cancels: nothing is linked, and the held result is gone.
    let (url, status, _) = answer_confirmation(&s, &alice, &page, "cancel").await;
    assert_eq!(status, 200);
    assert!(url.ends_with("/account?done=cancelled"), "{url}");
    let res = confirm_in(&alice, csrf.clone(), held.clone()).await;
    assert_eq!(res.status(), 400, "a cancelled connect cannot be confirmed");
    assert!(user_of(&s, "other", "mallory-at-other").await.is_none());
    assert!(events(&s.app, "identity.linked").await.is_empty());

    // Her own account, confirmed, is linked once; the confirmation cannot be replayed.
    s.other
        .login_as(UpUser::new("alice-at-other", "alice@other.example"));
    let (_, _, page) = connect_unconfirmed(&s, &alice, "other").await;
    assert!(page.contains("alice@other.example"), "{page}");
    let (url, status, _) = answer_confirmation(&s, &alice, &page, "connect").await;
    assert_eq!(status, 200);
    assert!(url.ends_with("/account?done=connected"), "{url}");
    assert_eq!(user_of(&s, "other", "alice-at-other").await, Some(alice_id));
    let res = confirm_in(&alice, csrf_in(&page), held_in(&page)).await;
    assert_eq!(res.status(), 400, "single use");
    assert_eq!(events(&s.app, "identity.linked").await.len(), 1);
    s.app.stop();
}

/// The connect form names `other`; the attacker edits the sign-in URL it leads to
/// (`/login?req=…&provider=corp`) to connect an account at another provider (here a second
/// one at `corp`, which the page never offers). The login is pinned to the posted provider.
async fn a_connect_login_is_pinned_to_the_posted_provider(db: &TestDb) {
    let s = setup(db).await;
    let alice = browser();
    sign_in(&s, &alice, "corp").await;
    let alice_id = user_of(&s, "corp", "alice-sub").await.unwrap();
    let csrf = csrf_in(&account(&s, &alice).await);
    let res = post(
        &s,
        &alice,
        "/account/connect",
        &[("csrf", &csrf), ("provider", "other")],
    )
    .await;
    assert!(res.status().is_redirection());
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("provider=other"), "{location}");
    let edited = location.replace("provider=other", "provider=corp");
    s.corp.login_as(UpUser::new("eve-sub", "eve@corp.example"));
    let res = alice.get(s.app.url(&edited)).send().await.unwrap();
    let (url, status, page) = follow(&alice, &s.app, res, None).await;
    if status == 200 && url.contains("/account/confirm?") {
        // Even confirmed, nothing may be linked.
        let (url, status, page) = answer_confirmation(&s, &alice, &page, "connect").await;
        panic!("the edited connect reached a confirmation: {url} {status} {page}");
    }
    assert_eq!(status, 400, "{url}: {page}");
    assert!(user_of(&s, "corp", "eve-sub").await.is_none());
    assert_eq!(identities_of(&s, &alice_id).await.len(), 1);
    let failed = events(&s.app, "login.failed").await;
    assert!(
        failed.iter().any(|e| e["reason"]
            .as_str()
            .unwrap()
            .contains("another provider than the one asked")),
        "{failed:?}"
    );
    s.app.stop();
}

/// An attacker who took Alice's session cookie and a CSRF token from her account page (while
/// her sign-in was stale) waits for her to step up, then uses them within the fresh window.
/// The step-up gave her browser a new cookie: the old one is signed out.
async fn a_step_up_gives_the_session_a_new_cookie(db: &TestDb) {
    let s = setup(db).await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let alice = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    sign_in(&s, &alice, "corp").await;
    let alice_id = user_of(&s, "corp", "alice-sub").await.unwrap();
    age_sessions(&s.app, 600).await;
    let site = url::Url::parse(&s.app.url("/")).unwrap();
    let stolen = reqwest::cookie::CookieStore::cookies(&*jar, &site).unwrap();
    let stolen_csrf = csrf_in(&account(&s, &alice).await);

    // Alice connects `other`, signing in again first.
    let (url, status, page) = connect(&s, &alice, "other").await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(url.ends_with("/account?done=connected"), "{url}");
    assert_eq!(s.corp.prompts().last(), Some(&Some("login".to_owned())));
    let other_id = identity_at(&s, &alice_id, "other").await;

    // The attacker's copy of the old cookie is signed out; Alice's browser is not.
    let attacker = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = attacker
        .post(s.app.url("/account/disconnect"))
        .header("cookie", stolen.clone())
        .form(&[
            ("csrf", stolen_csrf.as_str()),
            ("identity", other_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("Please sign in"));
    assert_eq!(identities_of(&s, &alice_id).await.len(), 2);
    let res = attacker
        .get(s.app.url("/account"))
        .header("cookie", stolen)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302, "the old cookie finds no session");
    assert!(
        account(&s, &alice)
            .await
            .contains("id=\"disconnect-other\"")
    );
    s.app.stop();
}

/// Alice signed in to the account page through `corp`: her browser, user id and a CSRF token.
async fn alice_signed_in(s: &Setup) -> (reqwest::Client, String, String) {
    let alice = browser();
    sign_in(s, &alice, "corp").await;
    let alice_id = user_of(s, "corp", "alice-sub").await.unwrap();
    let csrf = csrf_in(&account(s, &alice).await);
    (alice, alice_id, csrf)
}

/// POSTs a connect of `other` in `b`, which must be refused (403) before `other` is asked;
/// returns the page.
async fn refused_connect(s: &Setup, b: &reqwest::Client, csrf: &str) -> String {
    let form = [("csrf", csrf), ("provider", "other")];
    let res = post(s, b, "/account/connect", &form).await;
    assert_eq!(res.status(), 403);
    assert!(s.other.prompts().is_empty(), "never sent on");
    res.text().await.unwrap()
}

/// Alice's upstream grant ended (a refresh met `invalid_grant`: her identity needs a new
/// login). Her old session must not change her accounts, nor show the page.
async fn a_session_that_needs_a_new_login_is_signed_out_here(db: &TestDb) {
    let s = setup(db).await;
    let (alice, alice_id, csrf) = alice_signed_in(&s).await;
    sqlx::query("UPDATE identities SET needs_login = 1 WHERE user_id = $1")
        .bind(&alice_id)
        .execute(s.app.state.store.pool())
        .await
        .unwrap();
    let res = alice.get(s.app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 302, "sent to sign in again");
    let res = refused_connect(&s, &alice, &csrf).await;
    assert!(res.contains("Nothing was changed") || res.contains("Please sign in"));
    assert_eq!(identities_of(&s, &alice_id).await.len(), 1);
    s.app.stop();
}

/// An admin turned off the provider Alice's session came through (say, after it was found
/// compromised). That session may no longer connect or disconnect accounts.
async fn a_session_from_a_disabled_provider_changes_no_accounts(db: &TestDb) {
    let s = setup(db).await;
    let (alice, alice_id, csrf) = alice_signed_in(&s).await;
    sqlx::query("UPDATE providers SET enabled = 0 WHERE id = 'corp'")
        .execute(s.app.state.store.pool())
        .await
        .unwrap();
    let res = refused_connect(&s, &alice, &csrf).await;
    assert!(res.contains("no longer available"));
    assert_eq!(identities_of(&s, &alice_id).await.len(), 1);
    s.app.stop();
}

/// One user (or a script holding her session) posting account forms in a loop is stopped with
/// 429 and `Retry-After` after the per-user burst; each form would otherwise start a sign-in.
async fn account_changes_are_rate_limited_per_user(db: &TestDb) {
    let s = setup(db).await;
    let (alice, _, csrf) = alice_signed_in(&s).await;
    let burst = 2 * portico::ops::ratelimit::ACCOUNT_CHANGES_PER_MINUTE as usize;
    let mut statuses = Vec::new();
    // Twice the burst: even at one request a second the bucket (one more per 6 s) runs dry.
    for _ in 0..2 * burst {
        let form = [("csrf", csrf.as_str()), ("identity", "not-hers")];
        let res = post(&s, &alice, "/account/disconnect", &form).await;
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
        }
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses[0], 404, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    s.app.stop();
}
