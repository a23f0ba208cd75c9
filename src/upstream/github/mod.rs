//! GitHub (and GitHub Enterprise Server): OAuth2 web flow plus the REST API. GitHub is not an
//! OIDC provider, so the identity is read from the API with the access token:
//! - subject: the numeric user id (a login can be renamed and then taken by someone else);
//! - e-mail: the primary address from `/user/emails`, with its `verified` flag;
//! - groups: organisations and `org:team-slug` when the token may read them (`read:org`, or a
//!   GitHub App user token, whose reach is the app's permissions), gated by `allowed_orgs`.
//!
//! Both OAuth Apps (tokens that never expire) and GitHub Apps (8-hour tokens, refresh tokens
//! rotating on every use) work; the refresh capability re-reads the claims either way, so
//! groups never go stale past a downstream refresh.

mod api;
mod config;
mod groups;
mod oauth;
mod ratelimit;

use futures_util::future::BoxFuture;
use openidconnect::{CsrfToken, PkceCodeChallenge};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use config::{BaseUrl, GITHUB_API_BASE, GITHUB_WEB_BASE, Github, GithubConfig, GithubOptions};

use self::api::{Api, ApiError};
use self::config::OrgRule;
use self::oauth::{AuthorizeParams, Grant, TokenClient};
use super::callback;
use super::http::UpstreamHttp;
use super::{
    CallbackLogin, CallbackParams, Connector, LoginRequest, LoginStart, ProviderKind,
    RefreshIdentity, UpstreamError, UpstreamIdentity, UpstreamTokens,
};
use crate::claims::{self, RawClaims};

/// An access token expiring within this many seconds is refreshed before use.
const REFRESH_MARGIN_SECS: i64 = 60;

const ORG_SCOPES: [&str; 3] = ["read:org", "write:org", "admin:org"];

pub struct GithubConnector {
    config: GithubConfig,
    rules: Vec<OrgRule>,
    scopes: Vec<String>,
    http: UpstreamHttp,
}

/// What `begin` hands the core to seal, and `finish` gets back.
#[derive(Serialize, Deserialize)]
struct PendingSecret {
    pkce_verifier: String,
}

impl GithubConnector {
    pub fn new(config: GithubConfig, http: UpstreamHttp) -> Self {
        let rules: Vec<OrgRule> = config
            .options
            .allowed_orgs
            .iter()
            .filter(|r| !r.trim().is_empty())
            .map(|r| OrgRule::parse(r))
            .collect();
        let mut scopes = if config.scopes.is_empty() {
            vec!["read:user".to_owned(), "user:email".to_owned()]
        } else {
            config.scopes.clone()
        };
        // The allow-list cannot be checked without reading memberships.
        if !rules.is_empty() && !scopes.iter().any(|s| ORG_SCOPES.contains(&s.as_str())) {
            scopes.push("read:org".to_owned());
        }
        Self {
            config,
            rules,
            scopes,
            http,
        }
    }

    pub fn config(&self) -> &GithubConfig {
        &self.config
    }

    /// The scopes the authorize URL asks for.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    fn token_client(&self) -> TokenClient<'_> {
        TokenClient {
            http: &self.http,
            web_base: &self.config.web_base,
            client_id: &self.config.client_id,
            client_secret: &self.config.client_secret,
        }
    }

    /// Reads the user behind `grant` from the API and applies the allow-list.
    async fn identity(&self, grant: Grant) -> Result<UpstreamIdentity, ApiError> {
        let api = Api {
            http: &self.http,
            base: &self.config.api_base,
            token: &grant.tokens.access_token,
        };
        let user = api.user().await?;
        let (email, email_verified) = match api.emails().await {
            Ok(emails) => emails
                .into_iter()
                .find(|e| e.primary)
                .map_or((None, false), |e| (Some(e.email), e.verified)),
            // Without `user:email` (or the app's e-mail permission) only the public profile
            // address is known, and nothing says it was verified.
            Err(ApiError::Forbidden(_) | ApiError::NotFound(_)) => (user.email.clone(), false),
            Err(e) => return Err(e),
        };
        let groups = if reads_memberships(&grant) {
            groups::groups(&api.orgs().await?, &api.teams().await?)
        } else if !self.rules.is_empty() {
            return Err(ApiError::Failed(UpstreamError::Refused(
                "allowed_orgs is set but the token was not granted read:org, so membership \
                 cannot be checked"
                    .into(),
            )));
        } else {
            Vec::new()
        };
        let groups = groups::admit(&user.login, groups, &self.rules).map_err(ApiError::Failed)?;
        let profile = serde_json::json!({
            "id": user.id,
            "login": &user.login,
            "name": &user.name,
            "email": &email,
        });
        let profile = profile.as_object().expect("an object");
        let mapped = claims::apply(
            &self.config.rules,
            RawClaims {
                groups,
                claims: profile,
            },
        );
        mapped.warn(self.config.id.as_str());
        Ok(UpstreamIdentity {
            provider: self.config.id.clone(),
            subject: user.id.to_string(),
            email: email
                .filter(|e| !e.is_empty())
                .map(|e| e.to_ascii_lowercase()),
            email_verified,
            name: user.name.filter(|n| !n.is_empty()).or(Some(user.login)),
            picture: user.avatar_url.filter(|p| !p.is_empty()),
            groups: mapped.groups,
            extra_claims: mapped.extra_claims,
            auth_time: None,
            tokens: Some(grant.tokens),
        })
    }

    /// A new grant from the stored refresh token; none means the user must log in again.
    async fn refreshed(&self, tokens: &UpstreamTokens) -> Result<Grant, UpstreamError> {
        let refresh_token = tokens
            .refresh_token
            .as_ref()
            .ok_or(UpstreamError::InvalidGrant)?;
        self.token_client().refresh(refresh_token).await
    }
}

/// Whether the token may read organisation and team memberships: an OAuth token with an org
/// scope, or a GitHub App user token (it expires and carries no scopes; the app's
/// permissions decide what it reads).
fn reads_memberships(grant: &Grant) -> bool {
    grant
        .scopes
        .iter()
        .any(|s| ORG_SCOPES.contains(&s.as_str()))
        || (grant.scopes.is_empty() && grant.tokens.expires_at.is_some())
}

impl Connector for GithubConnector {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Github
    }

    fn callback_login(&self) -> Option<&dyn CallbackLogin> {
        Some(self)
    }

    fn refresh(&self) -> Option<&dyn RefreshIdentity> {
        Some(self)
    }
}

impl CallbackLogin for GithubConnector {
    fn begin<'a>(
        &'a self,
        request: LoginRequest<'a>,
    ) -> BoxFuture<'a, Result<LoginStart, UpstreamError>> {
        Box::pin(async move {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            let state = CsrfToken::new_random();
            let mut scopes = self.scopes.clone();
            for extra in request.extra_scopes {
                if !scopes.contains(extra) {
                    scopes.push(extra.clone());
                }
            }
            let url = oauth::authorize_url(
                &self.config.web_base,
                &self.config.client_id,
                &AuthorizeParams {
                    redirect_uri: request.redirect_uri,
                    scopes: &scopes,
                    state: state.secret(),
                    code_challenge: challenge.as_str(),
                    login_hint: request.login_hint,
                    force_login: request.force_login,
                },
            );
            Ok(callback::login_start(
                url,
                &state,
                &PendingSecret {
                    pkce_verifier: verifier.secret().clone(),
                },
            ))
        })
    }

    fn finish<'a>(
        &'a self,
        params: &'a CallbackParams,
        secret: &'a SecretString,
        redirect_uri: &'a str,
    ) -> BoxFuture<'a, Result<UpstreamIdentity, UpstreamError>> {
        Box::pin(async move {
            let code = callback::authorization_code(params)?;
            let pending: PendingSecret = callback::pending(secret)?;
            let grant = self
                .token_client()
                .exchange_code(code, redirect_uri, &pending.pkce_verifier)
                .await?;
            self.identity(grant).await.map_err(ApiError::into_upstream)
        })
    }
}

impl RefreshIdentity for GithubConnector {
    fn refreshes_without_refresh_token(&self) -> bool {
        true
    }

    fn refresh_identity<'a>(
        &'a self,
        previous: &'a UpstreamIdentity,
    ) -> BoxFuture<'a, Result<UpstreamIdentity, UpstreamError>> {
        Box::pin(async move {
            let Some(tokens) = previous.tokens.as_ref() else {
                // Nothing to read the API with: the claims of the last login stand.
                return Ok(previous.clone());
            };
            // A store that keeps only the refresh token hands back no usable access token.
            let expiring = tokens.access_token.expose_secret().is_empty()
                || tokens
                    .expires_at
                    .is_some_and(|at| at <= crate::store::now() + REFRESH_MARGIN_SECS);
            let grant = if expiring {
                self.refreshed(tokens).await?
            } else {
                Grant::from_tokens(tokens.clone())
            };
            let rotated = expiring.then(|| grant.tokens.clone());
            let outcome = match self.identity(grant).await {
                // Revoked before its time: a refresh token may still be good.
                Err(ApiError::Unauthorized(_)) if !expiring && tokens.refresh_token.is_some() => {
                    let grant = self.refreshed(tokens).await?;
                    let rotated = grant.tokens.clone();
                    (self.identity(grant).await, Some(rotated))
                }
                other => (other, rotated),
            };
            let identity = match outcome {
                (Ok(identity), _) => identity,
                (Err(ApiError::Unauthorized(_)), _) => return Err(UpstreamError::InvalidGrant),
                // The refresh token was spent: losing its successor to a passing outage would
                // force a new login, so keep the last claims with the new tokens.
                (Err(ApiError::Failed(UpstreamError::Unavailable(why))), Some(tokens)) => {
                    tracing::warn!(provider = %self.config.id, reason = %why,
                        "GitHub API unavailable after a token refresh; keeping the previous claims");
                    UpstreamIdentity {
                        tokens: Some(tokens),
                        ..previous.clone()
                    }
                }
                (Err(e), _) => return Err(e.into_upstream()),
            };
            if identity.subject != previous.subject {
                return Err(UpstreamError::UserInfo(
                    "the refreshed token belongs to another GitHub user".into(),
                ));
            }
            Ok(identity)
        })
    }
}
