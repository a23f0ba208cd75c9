//! The full browser-style flow through Portico for the Google preset and GitHub, against the
//! stand-ins served over HTTP: authorize at Portico -> upstream -> callback -> code -> token ->
//! userinfo, with `login.succeeded` carrying the CONTRACT.md fields; and the policy and
//! availability failures seen through the same flow.

use openidconnect::TokenResponse;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, Scope};
use portico::crypto::MasterKey;
use portico::providers::ProviderConfig;
use serde_json::Value;

use crate::helpers::{BROWSER_USER_AGENT, TestApp, TestDb, spawn_app_with};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::standins::github::{self, GithubStandIn, Scenario};
use crate::standins::google::{self, Account, GoogleStandIn};

on_both_backends!(
    google_preset_logs_in_through_portico,
    github_logs_in_through_portico,
    google_hosted_domain_mismatch_is_refused_through_the_flow,
    github_org_outside_the_allow_list_is_refused_through_the_flow,
    github_upstream_500_is_retried_then_reported,
);

pub fn google_provider(issuer: &str, extra: &str) -> ProviderConfig {
    toml::from_str(&format!(
        r#"
id = "google"
kind = "google"
display_name = "Google"
client_id = "{}"
client_secret = "{}"
issuer = "{issuer}"
{extra}
"#,
        google::CLIENT_ID,
        google::CLIENT_SECRET
    ))
    .unwrap()
}

pub fn github_provider(standin: &GithubStandIn, extra: &str) -> ProviderConfig {
    toml::from_str(&format!(
        r#"
id = "github"
kind = "github"
display_name = "GitHub"
client_id = "{}"
client_secret = "{}"
github_api_base = "{}"
github_web_base = "{}"
{extra}
"#,
        github::CLIENT_ID,
        github::CLIENT_SECRET,
        standin.api_base(),
        standin.base,
    ))
    .unwrap()
}

pub async fn spawn_with(db: &TestDb, provider: ProviderConfig) -> TestApp {
    spawn_app_with(db, MasterKey::generate(), move |s| {
        s.providers = vec![provider];
        s.clients = clients();
    })
    .await
}

/// Starts a login at Portico for `provider` and follows the browser until it leaves for the
/// client's redirect URI (or stops on a page).
pub async fn login_at(
    app: &TestApp,
    rp: &Rp,
    provider: &str,
    scopes: &[&str],
) -> (Arrival, Nonce, openidconnect::PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .add_extra_param("provider", provider);
    for s in scopes {
        request = request.add_scope(Scope::new((*s).to_owned()));
    }
    let (url, _, nonce) = request.url();
    (browse(app, url.as_str(), REDIRECT).await, nonce, verifier)
}

/// The whole flow to Portico's tokens, then userinfo; returns (access token, userinfo).
pub async fn full_login(app: &TestApp, provider: &str, scopes: &[&str]) -> (String, Value) {
    let rp = relying_party(app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (arrival, nonce, verifier) = login_at(app, &rp, provider, scopes).await;
    let arrived = arrival.url();
    let code = param(&arrived, "code").unwrap_or_else(|| panic!("no code in {arrived}"));
    let (tokens, nonce) = exchange(
        &rp,
        Authorized {
            code,
            nonce,
            verifier,
        },
    )
    .await;
    let id_claims = jwt_claims(&tokens.id_token().unwrap().to_string());
    assert_eq!(id_claims["nonce"], nonce.secret().as_str());
    let access = tokens.access_token().secret().clone();
    let info = userinfo_of(app, &access).await;
    assert_eq!(info["sub"], id_claims["sub"]);
    (access, info)
}

fn assert_succeeded(event: &Value, provider: &str, email: &str, user_id: &Value) {
    assert_eq!(event["provider"], provider);
    assert_eq!(event["client_id"], CLIENT_ID);
    assert_eq!(event["email"], email);
    assert_eq!(&event["user_id"], user_id);
    assert_eq!(event["ip"], "127.0.0.1");
    assert_eq!(event["user_agent"], BROWSER_USER_AGENT);
    assert_eq!(event["new_user"], true);
}

async fn google_preset_logs_in_through_portico(db: &TestDb) {
    let standin = GoogleStandIn::start(Account::default()).await;
    let app = spawn_with(
        db,
        // Trusted for e-mail: Google's verified address is verified downstream too.
        google_provider(
            &standin.issuer,
            "hosted_domains = [\"example.com\"]\ntrust_email = true",
        ),
    )
    .await;
    let (_, info) = full_login(&app, "google", &["email", "profile"]).await;
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], true);
    // The preset asked Google for a refresh token, and narrowed the chooser to the domain.
    let asked = standin.last_authorize();
    assert_eq!(asked["access_type"], "offline");
    assert_eq!(asked["prompt"], "consent");
    assert_eq!(asked["hd"], "example.com");
    let scope = asked["scope"].split(' ').collect::<Vec<_>>();
    assert!(
        scope.contains(&"openid") && scope.contains(&"email"),
        "{scope:?}"
    );
    let succeeded = events(&app, "login.succeeded").await;
    assert_eq!(succeeded.len(), 1);
    let user_id = succeeded[0]["user_id"].clone();
    assert_succeeded(&succeeded[0], "google", "alice@example.com", &user_id);
    assert_eq!(events(&app, "user.created").await[0]["user_id"], user_id);
    app.stop();
}

async fn github_logs_in_through_portico(db: &TestDb) {
    let standin = GithubStandIn::start(Scenario::default()).await;
    let app = spawn_with(
        db,
        github_provider(&standin, "allowed_orgs = [\"acme\"]\ntrust_email = true"),
    )
    .await;
    let (_, info) = full_login(&app, "github", &["email", "profile", "groups"]).await;
    assert_eq!(info["email"], "octocat@github.example");
    assert_eq!(info["email_verified"], true);
    let groups: Vec<&str> = info["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(groups.contains(&"acme"), "{groups:?}");
    assert!(groups.contains(&"acme:platform"), "{groups:?}");
    // The allow-list limits groups to the organisations it names.
    assert!(!groups.contains(&"opensource"), "{groups:?}");
    let succeeded = events(&app, "login.succeeded").await;
    assert_eq!(succeeded.len(), 1);
    let user_id = succeeded[0]["user_id"].clone();
    assert_succeeded(&succeeded[0], "github", "octocat@github.example", &user_id);
    app.stop();
}

/// A refused login: a 403 page that leads back to the client with `access_denied`, no code,
/// and `login.failed` naming the policy.
async fn assert_refused(app: &TestApp, provider: &str, reason_part: &str) {
    let rp = relying_party(app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (arrival, _, _) = login_at(app, &rp, provider, &["email"]).await;
    let (status, arrived) = arrival.failure();
    assert_eq!(status, 403);
    assert!(arrived.as_str().starts_with(REDIRECT), "{arrived}");
    assert_eq!(param(&arrived, "error").as_deref(), Some("access_denied"));
    assert!(param(&arrived, "code").is_none());
    let failed = events(app, "login.failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["provider"], provider);
    assert_eq!(failed[0]["client_id"], CLIENT_ID);
    assert_eq!(failed[0]["ip"], "127.0.0.1");
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(reason.contains("refused by policy"), "{reason}");
    assert!(reason.contains(reason_part), "{reason}");
    assert!(events(app, "login.succeeded").await.is_empty());
    assert!(events(app, "user.created").await.is_empty());
}

async fn google_hosted_domain_mismatch_is_refused_through_the_flow(db: &TestDb) {
    let standin = GoogleStandIn::start(Account {
        hd: Some("elsewhere.example".into()),
        ..Account::default()
    })
    .await;
    let app = spawn_with(
        db,
        // Trusted for e-mail: Google's verified address is verified downstream too.
        google_provider(
            &standin.issuer,
            "hosted_domains = [\"example.com\"]\ntrust_email = true",
        ),
    )
    .await;
    assert_refused(&app, "google", "hosted domain `elsewhere.example`").await;
    app.stop();
}

async fn github_org_outside_the_allow_list_is_refused_through_the_flow(db: &TestDb) {
    let standin = GithubStandIn::start(Scenario::default()).await;
    let app = spawn_with(
        db,
        github_provider(&standin, r#"allowed_orgs = ["initech"]"#),
    )
    .await;
    assert_refused(&app, "github", "initech").await;
    app.stop();
}

async fn github_upstream_500_is_retried_then_reported(db: &TestDb) {
    let standin = GithubStandIn::start(Scenario {
        user_failures: 100,
        ..Scenario::default()
    })
    .await;
    let app = spawn_with(db, github_provider(&standin, "")).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (arrival, _, _) = login_at(&app, &rp, "github", &["email"]).await;
    // A clear page for the user, whose way back tells the application.
    let (status, arrived) = arrival.failure();
    assert_eq!(status, 502);
    assert_eq!(
        param(&arrived, "error").as_deref(),
        Some("temporarily_unavailable")
    );
    // The idempotent GET was retried (Portico's outbound client allows two retries).
    assert_eq!(standin.calls("/api/v3/user"), 3);
    let failed = events(&app, "login.failed").await;
    assert_eq!(failed.len(), 1);
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(reason.contains("unreachable"), "{reason}");

    // Once GitHub answers again, the same user gets in.
    standin.change(|s| s.user_failures = 0);
    let (arrival, _, _) = login_at(&app, &rp, "github", &["email"]).await;
    assert!(param(&arrival.url(), "code").is_some());
    app.stop();
}
