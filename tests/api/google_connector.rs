//! The Google preset against the Google stand-in (discovery, JWKS, real RS256 ID tokens).

use portico::upstream::google::{GoogleConfig, GoogleConnector, GoogleOptions};
use portico::upstream::{
    CallbackLogin, Connector, LoginRequest, ProviderId, ProviderKind, RefreshIdentity,
    UpstreamError, UpstreamIdentity,
};
use secrecy::{ExposeSecret, SecretString};

use crate::standins::google::{Account, CLIENT_ID, CLIENT_SECRET, GoogleStandIn};
use crate::standins::{authorize, param, upstream_http};

const REDIRECT_URI: &str = "http://portico.test/callback/google";

fn connector(google: &GoogleStandIn, options: GoogleOptions) -> GoogleConnector {
    GoogleConnector::new(
        GoogleConfig {
            id: ProviderId::parse("google").unwrap(),
            issuer: Some(google.issuer.clone()),
            client_id: CLIENT_ID.into(),
            client_secret: SecretString::from(CLIENT_SECRET),
            scopes: Vec::new(),
            options,
        },
        upstream_http(),
    )
}

fn hosted(domains: &[&str]) -> GoogleOptions {
    GoogleOptions {
        hosted_domains: domains.iter().map(|d| d.to_string()).collect(),
        ..GoogleOptions::default()
    }
}

fn request(force_login: bool) -> LoginRequest<'static> {
    LoginRequest {
        redirect_uri: REDIRECT_URI,
        login_hint: None,
        force_login,
        max_age: None,
        extra_scopes: &[],
    }
}

async fn login(c: &GoogleConnector, force_login: bool) -> Result<UpstreamIdentity, UpstreamError> {
    let flow = c.callback_login().expect("Google logs in by redirect");
    let start = flow.begin(request(force_login)).await?;
    let params = authorize(&start, REDIRECT_URI).await;
    flow.finish(&params, &start.secret, REDIRECT_URI).await
}

#[tokio::test]
async fn a_login_asks_for_offline_access_and_gets_a_refresh_token() {
    let google = GoogleStandIn::start(Account::default()).await;
    let c = connector(&google, hosted(&["example.com"]));
    assert_eq!(c.kind(), ProviderKind::Google);

    let start = c.begin(request(false)).await.unwrap();
    let url = &start.url;
    assert!(
        url.as_str()
            .starts_with(&format!("{}/o/oauth2/v2/auth?", google.issuer))
    );
    assert_eq!(param(url, "access_type").as_deref(), Some("offline"));
    assert_eq!(param(url, "prompt").as_deref(), Some("consent"));
    assert_eq!(param(url, "hd").as_deref(), Some("example.com"));
    assert_eq!(param(url, "scope").as_deref(), Some("openid email profile"));
    assert!(param(url, "include_granted_scopes").is_none());
    assert_eq!(param(url, "code_challenge_method").as_deref(), Some("S256"));
    assert!(param(url, "nonce").is_some());

    // A broker upgrade asks for more, keeping what was granted before.
    let extra = [
        "email".to_owned(),
        "https://www.googleapis.com/auth/drive.file".to_owned(),
    ];
    let upgrade = c
        .begin(LoginRequest {
            extra_scopes: &extra,
            ..request(false)
        })
        .await
        .unwrap();
    assert_eq!(
        param(&upgrade.url, "scope").as_deref(),
        Some("openid email profile https://www.googleapis.com/auth/drive.file")
    );
    assert_eq!(
        param(&upgrade.url, "include_granted_scopes").as_deref(),
        Some("true")
    );

    let params = authorize(&start, REDIRECT_URI).await;
    let identity = c
        .finish(&params, &start.secret, REDIRECT_URI)
        .await
        .unwrap();
    assert_eq!(identity.provider.as_str(), "google");
    assert_eq!(identity.subject, "110169484474386276334");
    assert_eq!(identity.email.as_deref(), Some("alice@example.com"));
    assert!(identity.email_verified);
    assert_eq!(identity.name.as_deref(), Some("Alice Example"));
    let tokens = identity.tokens.clone().unwrap();
    assert!(tokens.access_token.expose_secret().starts_with("ya29."));
    assert!(tokens.id_token.is_some());
    assert!(
        tokens.refresh_token.is_some(),
        "offline access with consent yields a refresh token"
    );

    // The refresh keeps the subject and checks hd again on the new ID token.
    let refreshed = c.refresh_identity(&identity).await.unwrap();
    assert_eq!(refreshed.subject, identity.subject);
    assert_ne!(
        refreshed.tokens.unwrap().access_token.expose_secret(),
        tokens.access_token.expose_secret()
    );
}

#[tokio::test]
async fn a_forced_login_uses_google_prompts_and_offline_can_be_turned_off() {
    let google = GoogleStandIn::start(Account::default()).await;
    let c = connector(&google, GoogleOptions::default());
    // The stand-in, like Google, refuses prompt=login: the preset must not send it.
    let identity = login(&c, true).await.unwrap();
    let sent = google.last_authorize();
    assert_eq!(sent["prompt"], "consent select_account");
    assert_eq!(sent["max_age"], "0");
    assert!(!sent.contains_key("hd"), "no hosted domain configured");
    assert!(identity.tokens.unwrap().refresh_token.is_some());

    let c = connector(
        &google,
        GoogleOptions {
            offline_access: false,
            ..GoogleOptions::default()
        },
    );
    let identity = login(&c, false).await.unwrap();
    let sent = google.last_authorize();
    assert!(!sent.contains_key("access_type") && !sent.contains_key("prompt"));
    assert!(identity.tokens.unwrap().refresh_token.is_none());
}

#[tokio::test]
async fn an_id_token_from_another_hosted_domain_is_refused() {
    // The request asks for example.com, but the account that logs in is from other.example:
    // anyone can edit `hd` out of the authorize URL, so only the ID token counts.
    let google = GoogleStandIn::start(Account {
        email: "mallory@other.example".into(),
        hd: Some("other.example".into()),
        ..Account::default()
    })
    .await;
    let c = connector(&google, hosted(&["example.com"]));
    let err = login(&c, false).await.unwrap_err();
    assert_eq!(google.last_authorize()["hd"], "example.com");
    match &err {
        UpstreamError::Refused(why) => {
            assert!(why.contains("`other.example`"), "{why}");
            assert!(why.contains("hosted_domains (example.com)"), "{why}");
        }
        other => panic!("expected a policy refusal, got {other:?}"),
    }

    // Several allowed domains: any of them passes, case-insensitively.
    let c = connector(&google, hosted(&["example.com", "Other.Example"]));
    assert!(login(&c, false).await.is_ok());
    assert!(!google.last_authorize().contains_key("hd"));
}

#[tokio::test]
async fn a_consumer_account_is_refused_when_hosted_domains_are_set() {
    let google = GoogleStandIn::start(Account {
        email: "alice@gmail.com".into(),
        hd: None,
        ..Account::default()
    })
    .await;
    let err = login(&connector(&google, hosted(&["example.com"])), false)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Refused(why) if why.contains("no hosted domain")),
        "{err:?}"
    );
    // Without the restriction the same account logs in.
    let identity = login(&connector(&google, GoogleOptions::default()), false)
        .await
        .unwrap();
    assert_eq!(identity.email.as_deref(), Some("alice@gmail.com"));
}

#[tokio::test]
async fn an_unverified_email_is_not_vouched_for() {
    let google = GoogleStandIn::start(Account {
        email_verified: false,
        ..Account::default()
    })
    .await;
    let identity = login(&connector(&google, hosted(&["example.com"])), false)
        .await
        .unwrap();
    assert_eq!(identity.email.as_deref(), Some("alice@example.com"));
    assert!(!identity.email_verified);
}
