//! The GitHub connector against the GitHub stand-in, over HTTP: begin, the browser at the
//! authorize URL, finish with the callback, and refresh.

use portico::upstream::github::{BaseUrl, GithubConfig, GithubConnector, GithubOptions};
use portico::upstream::{
    CallbackLogin, Connector, LoginRequest, ProviderId, ProviderKind, RefreshIdentity,
    UpstreamError, UpstreamIdentity,
};
use secrecy::{ExposeSecret, SecretString};

use crate::standins::github::{CLIENT_ID, CLIENT_SECRET, GithubStandIn, RateLimit, Scenario};
use crate::standins::{authorize, param, upstream_http};

const REDIRECT_URI: &str = "http://portico.test/callback/github";

fn connector(gh: &GithubStandIn, allowed_orgs: &[&str], scopes: &[&str]) -> GithubConnector {
    GithubConnector::new(
        GithubConfig {
            id: ProviderId::parse("github").unwrap(),
            client_id: CLIENT_ID.into(),
            client_secret: SecretString::from(CLIENT_SECRET),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            api_base: BaseUrl::parse(&gh.api_base()).unwrap(),
            web_base: BaseUrl::parse(&gh.base).unwrap(),
            options: GithubOptions {
                allowed_orgs: allowed_orgs.iter().map(|s| s.to_string()).collect(),
            },
            rules: Default::default(),
        },
        upstream_http(),
    )
}

fn request() -> LoginRequest<'static> {
    LoginRequest {
        redirect_uri: REDIRECT_URI,
        login_hint: None,
        force_login: false,
        max_age: None,
        extra_scopes: &[],
    }
}

/// A whole login: begin, the browser round trip, finish.
async fn login(c: &GithubConnector) -> Result<UpstreamIdentity, UpstreamError> {
    let flow = c.callback_login().expect("GitHub logs in by redirect");
    let start = flow.begin(request()).await?;
    let params = authorize(&start, REDIRECT_URI).await;
    flow.finish(&params, &start.secret, REDIRECT_URI).await
}

#[tokio::test]
async fn the_authorize_url_carries_state_pkce_and_scopes() {
    let gh = GithubStandIn::start(Scenario::default()).await;
    let c = connector(&gh, &["acme"], &[]);
    assert_eq!(c.kind(), ProviderKind::Github);
    let start = c
        .begin(LoginRequest {
            login_hint: Some("octocat"),
            force_login: true,
            ..request()
        })
        .await
        .unwrap();
    let url = &start.url;
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{}/login/oauth/authorize", gh.base)
    );
    assert_eq!(param(url, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(param(url, "redirect_uri").as_deref(), Some(REDIRECT_URI));
    assert_eq!(
        param(url, "state").as_deref(),
        Some(start.state.expose_secret())
    );
    assert!(start.state.expose_secret().len() >= 16, "state is random");
    assert_eq!(param(url, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param(url, "code_challenge").map(|c| c.len()), Some(43));
    // The allow-list needs read:org, so it is asked for.
    assert_eq!(
        param(url, "scope").as_deref(),
        Some("read:user user:email read:org")
    );
    assert_eq!(param(url, "login").as_deref(), Some("octocat"));
    assert_eq!(param(url, "prompt").as_deref(), Some("select_account"));
    // Nothing secret in the URL: the verifier stays in the sealed secret.
    assert!(!url.as_str().contains(start.secret.expose_secret()));

    // A broker upgrade asks for its extra scopes too, each once.
    let extra = ["user:email".to_owned(), "repo".to_owned()];
    let upgrade = c
        .begin(LoginRequest {
            extra_scopes: &extra,
            ..request()
        })
        .await
        .unwrap();
    assert_eq!(
        param(&upgrade.url, "scope").as_deref(),
        Some("read:user user:email read:org repo")
    );

    // Another login gets another state and challenge.
    let again = c.begin(request()).await.unwrap();
    assert_ne!(again.state.expose_secret(), start.state.expose_secret());
    assert_ne!(
        param(&again.url, "code_challenge"),
        param(url, "code_challenge")
    );
}

#[tokio::test]
async fn a_login_yields_the_numeric_id_the_primary_verified_email_and_groups() {
    let gh = GithubStandIn::start(Scenario::default()).await;
    let c = connector(&gh, &["acme"], &[]);
    let identity = login(&c).await.unwrap();
    assert_eq!(identity.provider.as_str(), "github");
    assert_eq!(
        identity.subject, "583231",
        "the numeric id, never the login"
    );
    assert_eq!(identity.email.as_deref(), Some("octocat@github.example"));
    assert!(identity.email_verified);
    assert_eq!(identity.name.as_deref(), Some("The Octocat"));
    assert!(identity.picture.unwrap().contains("/u/583231"));
    // Only memberships within the allowed organisation are passed on.
    assert_eq!(identity.groups, ["acme", "acme:platform"]);
    let tokens = identity.tokens.unwrap();
    assert!(tokens.access_token.expose_secret().starts_with("gho_"));
    assert!(
        tokens.refresh_token.is_none(),
        "OAuth App tokens do not expire"
    );
    assert_eq!(tokens.expires_at, None);
    assert_eq!(
        tokens.scope.as_deref(),
        Some("read:user user:email read:org")
    );
}

#[tokio::test]
async fn without_an_allow_list_groups_follow_the_granted_scopes_and_pages_are_followed() {
    let gh = GithubStandIn::start(Scenario {
        orgs: vec!["acme".into(), "opensource".into(), "rust-lang".into()],
        teams: vec![
            ("acme".into(), "platform".into()),
            ("rust-lang".into(), "compiler".into()),
        ],
        page_size: 1,
        ..Scenario::default()
    })
    .await;
    // Asked for read:org: every organisation and team, all pages of them.
    let c = connector(&gh, &[], &["read:user", "user:email", "read:org"]);
    let identity = login(&c).await.unwrap();
    assert_eq!(
        identity.groups,
        [
            "acme",
            "opensource",
            "rust-lang",
            "acme:platform",
            "rust-lang:compiler"
        ]
    );
    assert_eq!(gh.calls("/api/v3/user/orgs"), 3);

    // Without read:org, no membership is read and there are no groups.
    let c = connector(&gh, &[], &[]);
    let identity = login(&c).await.unwrap();
    assert!(identity.groups.is_empty());
    assert_eq!(gh.calls("/api/v3/user/orgs"), 3, "not called again");
}

#[tokio::test]
async fn an_org_outside_the_allow_list_is_refused() {
    let gh = GithubStandIn::start(Scenario {
        orgs: vec!["other-corp".into()],
        teams: vec![("other-corp".into(), "platform".into())],
        ..Scenario::default()
    })
    .await;
    let err = login(&connector(&gh, &["acme", "acme-labs"], &[]))
        .await
        .unwrap_err();
    match &err {
        UpstreamError::Refused(why) => {
            assert!(why.contains("allowed_orgs (acme, acme-labs)"), "{why}");
            assert!(why.contains("octocat"), "{why}");
        }
        other => panic!("expected a policy refusal, got {other:?}"),
    }
    assert!(err.reason().starts_with("the login was refused by policy"));

    // A team rule admits only that team's members.
    let gh = GithubStandIn::start(Scenario::default()).await;
    assert!(
        login(&connector(&gh, &["acme:platform"], &[]))
            .await
            .is_ok()
    );
    let err = login(&connector(&gh, &["acme:security"], &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Refused(_)), "{err:?}");
}

#[tokio::test]
async fn an_allow_list_without_read_org_granted_is_refused() {
    let gh = GithubStandIn::start(Scenario {
        withheld_scopes: vec!["read:org".into()],
        ..Scenario::default()
    })
    .await;
    let err = login(&connector(&gh, &["acme"], &[])).await.unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Refused(why) if why.contains("read:org")),
        "{err:?}"
    );
}

#[tokio::test]
async fn githubs_status_200_token_errors_are_errors() {
    let gh = GithubStandIn::start(Scenario::default()).await;
    let c = connector(&gh, &[], &[]);
    let start = c.begin(request()).await.unwrap();
    let params = authorize(&start, REDIRECT_URI).await;
    c.finish(&params, &start.secret, REDIRECT_URI)
        .await
        .unwrap();

    // The code was spent: GitHub answers 200 {"error":"bad_verification_code"}.
    let err = c
        .finish(&params, &start.secret, REDIRECT_URI)
        .await
        .unwrap_err();
    match &err {
        UpstreamError::TokenExchange(why) => {
            assert!(why.starts_with("bad_verification_code"), "{why}");
            assert!(why.contains("incorrect or expired"), "{why}");
        }
        other => panic!("expected a failed exchange, got {other:?}"),
    }

    // A wrong PKCE verifier fails the same way.
    let start = c.begin(request()).await.unwrap();
    let params = authorize(&start, REDIRECT_URI).await;
    let other_login = c.begin(request()).await.unwrap();
    let err = c
        .finish(&params, &other_login.secret, REDIRECT_URI)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::TokenExchange(why) if why.contains("code_verifier")),
        "{err:?}"
    );

    // Wrong client credentials are a configuration problem.
    let start = c.begin(request()).await.unwrap();
    let params = authorize(&start, REDIRECT_URI).await;
    let wrong_secret = GithubConnector::new(
        GithubConfig {
            client_secret: SecretString::from("not-the-secret"),
            ..c.config().clone()
        },
        upstream_http(),
    );
    let err = wrong_secret
        .finish(&params, &start.secret, REDIRECT_URI)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Misconfigured(why) if why.starts_with("incorrect_client_credentials")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_error_on_the_callback_is_reported() {
    let gh = GithubStandIn::start(Scenario::default()).await;
    let c = connector(&gh, &[], &[]);
    let start = c.begin(request()).await.unwrap();
    let params = [
        ("error", "access_denied"),
        (
            "error_description",
            "The user has denied your application access.",
        ),
        ("state", start.state.expose_secret()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let err = c
        .finish(&params, &start.secret, REDIRECT_URI)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        UpstreamError::Denied {
            error: "access_denied".into(),
            description: Some("The user has denied your application access.".into()),
        }
    );
    assert_eq!(gh.calls("/login/oauth/access_token"), 0);
}

#[tokio::test]
async fn an_unverified_primary_email_is_not_vouched_for() {
    let gh = GithubStandIn::start(Scenario {
        emails: vec![
            ("new@corp.example".into(), true, false),
            ("octo@old.example".into(), false, true),
        ],
        ..Scenario::default()
    })
    .await;
    let identity = login(&connector(&gh, &[], &[])).await.unwrap();
    assert_eq!(identity.email.as_deref(), Some("new@corp.example"));
    assert!(!identity.email_verified);
}

#[tokio::test]
async fn a_spent_rate_limit_is_a_clear_unavailable_error() {
    let gh = GithubStandIn::start(Scenario {
        rate_limit: Some(RateLimit::Primary),
        ..Scenario::default()
    })
    .await;
    let err = login(&connector(&gh, &[], &[])).await.unwrap_err();
    match &err {
        UpstreamError::Unavailable(why) => {
            assert!(why.contains("GitHub rate limit exceeded (core)"), "{why}");
            assert!(why.contains("403"), "{why}");
            assert!(why.contains("resets at"), "{why}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // A 403 is not retried.
    assert_eq!(gh.calls("/api/v3/user"), 1);

    // A secondary limit (429 + Retry-After) is retried briefly, then reported.
    let gh = GithubStandIn::start(Scenario {
        rate_limit: Some(RateLimit::Secondary),
        ..Scenario::default()
    })
    .await;
    let err = login(&connector(&gh, &[], &[])).await.unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Unavailable(why) if why.contains("retry after 60 s") && why.contains("429")),
        "{err:?}"
    );
    assert_eq!(gh.calls("/api/v3/user"), 3, "one try and two retries");
}

#[tokio::test]
async fn an_upstream_500_is_retried_then_reported() {
    // One failure: the retry succeeds.
    let gh = GithubStandIn::start(Scenario {
        user_failures: 1,
        ..Scenario::default()
    })
    .await;
    let identity = login(&connector(&gh, &[], &[])).await.unwrap();
    assert_eq!(identity.subject, "583231");
    assert_eq!(gh.calls("/api/v3/user"), 2);

    // Failing throughout: a clear error after the retries.
    let gh = GithubStandIn::start(Scenario {
        user_failures: 100,
        ..Scenario::default()
    })
    .await;
    let err = login(&connector(&gh, &[], &[])).await.unwrap_err();
    assert_eq!(
        err,
        UpstreamError::Unavailable("GitHub API /user answered 500 Internal Server Error".into())
    );
    assert_eq!(gh.calls("/api/v3/user"), 3);
    assert!(err.reason().starts_with("the provider is unreachable"));
}

#[tokio::test]
async fn app_tokens_refresh_with_rotation_and_a_spent_refresh_token_is_invalid_grant() {
    let gh = GithubStandIn::start(Scenario {
        app_tokens: true,
        ..Scenario::default()
    })
    .await;
    let c = connector(&gh, &["acme"], &[]);
    let first = login(&c).await.unwrap();
    let tokens = first.tokens.clone().unwrap();
    assert!(tokens.access_token.expose_secret().starts_with("ghu_"));
    let first_refresh = tokens.refresh_token.clone().expect("a refresh token");
    let expires_at = tokens.expires_at.expect("an 8-hour expiry");
    assert!((expires_at - portico::store::now() - 28800).abs() < 10);
    // An app token's reach is the app's permissions: memberships are read.
    assert_eq!(first.groups, ["acme", "acme:platform"]);

    // While the token is fresh, a refresh re-reads the claims with it: groups never go stale.
    gh.change(|s| s.teams.push(("acme".into(), "security".into())));
    let refreshed = c.refresh_identity(&first).await.unwrap();
    assert_eq!(refreshed.groups, ["acme", "acme:platform", "acme:security"]);
    assert_eq!(
        gh.calls("/login/oauth/access_token"),
        1,
        "no token refresh yet"
    );

    // Near its expiry the token is refreshed, and the refresh token rotates.
    let mut expiring = first.clone();
    expiring.tokens.as_mut().unwrap().expires_at = Some(portico::store::now() + 30);
    let rotated = c.refresh_identity(&expiring).await.unwrap();
    let new_tokens = rotated.tokens.clone().unwrap();
    let second_refresh = new_tokens.refresh_token.clone().unwrap();
    assert_ne!(
        second_refresh.expose_secret(),
        first_refresh.expose_secret()
    );
    assert_ne!(
        new_tokens.access_token.expose_secret(),
        tokens.access_token.expose_secret()
    );
    assert!(new_tokens.expires_at.unwrap() > portico::store::now() + 28000);
    assert_eq!(rotated.subject, first.subject);
    assert_eq!(gh.calls("/login/oauth/access_token"), 2);

    // The spent refresh token is refused: the user must log in again.
    let err = c.refresh_identity(&expiring).await.unwrap_err();
    assert_eq!(err, UpstreamError::InvalidGrant);

    // Its successor works once more.
    let mut expired = rotated.clone();
    expired.tokens.as_mut().unwrap().expires_at = Some(portico::store::now() - 1);
    let third = c.refresh_identity(&expired).await.unwrap();
    assert_ne!(
        third.tokens.unwrap().refresh_token.unwrap().expose_secret(),
        second_refresh.expose_secret()
    );
}

#[tokio::test]
async fn a_refresh_after_leaving_the_allowed_orgs_is_refused() {
    let gh = GithubStandIn::start(Scenario::default()).await;
    let c = connector(&gh, &["acme"], &[]);
    let first = login(&c).await.unwrap();
    gh.change(|s| {
        s.orgs.retain(|o| o != "acme");
        s.teams.clear();
    });
    let err = c.refresh_identity(&first).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Refused(_)), "{err:?}");
}

#[tokio::test]
async fn a_revoked_oauth_token_without_refresh_token_is_invalid_grant() {
    let gh = GithubStandIn::start(Scenario::default()).await;
    let c = connector(&gh, &[], &[]);
    let mut identity = login(&c).await.unwrap();
    identity.tokens.as_mut().unwrap().access_token = SecretString::from("gho_revoked");
    let err = c.refresh_identity(&identity).await.unwrap_err();
    assert_eq!(err, UpstreamError::InvalidGrant);
}

#[tokio::test]
async fn a_rotated_refresh_token_survives_an_api_outage_after_the_refresh() {
    let gh = GithubStandIn::start(Scenario {
        app_tokens: true,
        ..Scenario::default()
    })
    .await;
    let c = connector(&gh, &[], &[]);
    let mut first = login(&c).await.unwrap();
    first.tokens.as_mut().unwrap().expires_at = Some(portico::store::now() - 1);
    let spent = first
        .tokens
        .as_ref()
        .unwrap()
        .refresh_token
        .clone()
        .unwrap();

    // The refresh spends the old refresh token, then the API fails: the claims of the last
    // login stand, but the new tokens are returned rather than lost.
    gh.change(|s| s.user_failures = 100);
    let kept = c.refresh_identity(&first).await.unwrap();
    assert_eq!(kept.groups, first.groups);
    let successor = kept.tokens.clone().unwrap().refresh_token.unwrap();
    assert_ne!(successor.expose_secret(), spent.expose_secret());

    // Once GitHub is back, the successor refreshes as usual.
    gh.change(|s| s.user_failures = 0);
    let mut expired = kept.clone();
    expired.tokens.as_mut().unwrap().expires_at = Some(portico::store::now() - 1);
    assert!(c.refresh_identity(&expired).await.is_ok());
}

#[tokio::test]
async fn an_identity_stored_with_only_its_refresh_token_refreshes_first() {
    let gh = GithubStandIn::start(Scenario {
        app_tokens: true,
        ..Scenario::default()
    })
    .await;
    let c = connector(&gh, &[], &[]);
    let mut stored = login(&c).await.unwrap();
    let tokens = stored.tokens.as_mut().unwrap();
    tokens.access_token = SecretString::from(String::new());
    tokens.expires_at = None;
    let user_calls = gh.calls("/api/v3/user");

    let refreshed = c.refresh_identity(&stored).await.unwrap();
    assert!(
        refreshed
            .tokens
            .unwrap()
            .access_token
            .expose_secret()
            .starts_with("ghu_")
    );
    assert_eq!(gh.calls("/login/oauth/access_token"), 2);
    assert_eq!(
        gh.calls("/api/v3/user"),
        user_calls + 1,
        "no call with an empty token"
    );
}
