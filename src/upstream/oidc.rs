//! The generic OpenID Connect connector: any issuer, by discovery.
//!
//! Toward the provider it runs the authorization code flow with state, nonce and PKCE (S256).
//! The ID token is verified by the `openidconnect` crate against the provider's JWKS
//! (signature with the advertised algorithms, `iss`, `aud`, `azp`, `exp`, `nonce`), plus an
//! `iat` sanity check here. Userinfo, when advertised, is merged over the ID token's claims,
//! and the configured claim names map the result onto an [`UpstreamIdentity`].

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::BoxFuture;
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod,
    CoreErrorResponseType, CoreIdToken, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, LoginHint, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::http::UpstreamHttp;
use super::kinds::{self, Field, Kind, Need, Row, Shared, Widget};
use super::{
    CallbackLogin, CallbackParams, Connector, LoginRequest, LoginStart, Mapped, ProviderId,
    ProviderKind, RefreshIdentity, UpstreamError, UpstreamIdentity, UpstreamTokens,
};
use crate::claims::{self, ClaimPath, ClaimRules, RawClaims};
use crate::net::error_chain;

/// Discovery metadata (and with it the JWKS) is re-read after this long.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// A key the cached JWKS lacks triggers a re-read at most this often.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// How far in the future an `iat` may lie (clock skew).
const IAT_LEEWAY_SECS: i64 = 60;

/// Which claims carry the identity's attributes: each a claim name, a dotted path
/// (`realm_access.roles`) or a JSON pointer (`/org/groups`) into the ID token's claims merged
/// with userinfo ([`ClaimPath`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimMapping {
    pub email: ClaimPath,
    pub email_verified: ClaimPath,
    pub name: ClaimPath,
    pub picture: ClaimPath,
    /// The claim holding group names (a list or one string); `None` maps no groups.
    pub groups: Option<ClaimPath>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        let path = |name| ClaimPath::parse(name).expect("a claim name is a path");
        Self {
            email: path("email"),
            email_verified: path("email_verified"),
            name: path("name"),
            picture: path("picture"),
            groups: None,
        }
    }
}

/// Kind `oidc`: any OpenID Connect issuer, by discovery.
pub struct Oidc;

/// The options of kind `oidc`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OidcOptions {
    /// Which claims carry e-mail, name, picture, groups.
    pub claims: ClaimMapping,
    /// What becomes of the groups, and the claims added ([`crate::claims::pipeline`]).
    #[serde(flatten)]
    pub rules: ClaimRules,
}

impl Kind for Oidc {
    type Options = OidcOptions;
    const KIND: ProviderKind = ProviderKind::Oidc;
    const TITLE: &'static str = "OpenID Connect";
    const SUMMARY: &'static str = "Any OpenID Connect provider, by discovery";
    const ISSUER: Need = Need::Required;
    const DEFAULT_SCOPES: &'static [&'static str] = &["openid", "email", "profile"];
    const DISCOVERY: bool = true;
    const FORM: &'static [Field] = &[
        Field::new(
            "issuer",
            "Issuer",
            "https URL; its /.well-known/openid-configuration is read",
            Widget::Text,
        ),
        kinds::CLIENT_ID,
        kinds::CLIENT_SECRET,
        kinds::SCOPES,
        Field::new(
            "claims.email",
            "E-mail claim",
            "the claim holding the user's e-mail address; empty: email",
            Widget::Text,
        ),
        Field::new(
            "claims.email_verified",
            "E-mail verified claim",
            "the claim saying the provider verified that address; empty: email_verified",
            Widget::Text,
        ),
        Field::new(
            "claims.name",
            "Name claim",
            "the claim holding the user's display name; empty: name",
            Widget::Text,
        ),
        Field::new(
            "claims.picture",
            "Picture claim",
            "the claim holding the URL of the user's picture; empty: picture",
            Widget::Text,
        ),
        Field::new(
            "claims.groups",
            "Groups claim",
            "the claim holding group names: a name (groups), a path (realm_access.roles) or a \
             JSON pointer (/org/groups); empty: no groups",
            Widget::Text,
        ),
    ];

    fn preview(
        o: &OidcOptions,
        _provider: &ProviderId,
        raw: &Map<String, Value>,
    ) -> Result<Mapped, String> {
        Ok(map_claims(&o.claims, &o.rules, raw))
    }

    fn build(
        options: OidcOptions,
        row: &Row<'_>,
        shared: &Shared<'_>,
    ) -> Result<Arc<dyn Connector>, String> {
        let config = OidcConfig {
            id: row.id.clone(),
            issuer: row.issuer.unwrap_or_default().to_owned(),
            client_id: row.client_id.to_owned(),
            client_secret: row.client_secret.clone(),
            scopes: row.scopes.to_vec(),
            claims: options.claims,
            rules: options.rules,
        };
        Ok(Arc::new(OidcConnector::<Generic>::new(
            config,
            shared.http.clone(),
        )))
    }
}

/// Everything the connector needs, from the provider registry.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub id: ProviderId,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// Scopes besides `openid`.
    pub scopes: Vec<String>,
    pub claims: ClaimMapping,
    pub rules: ClaimRules,
}

/// What a kind built on this connector does differently (Google): the authorize URL it needs,
/// and a check of every identity (`previous`: the one a refresh started from).
pub trait Preset: Send + Sync + 'static {
    const KIND: ProviderKind;

    fn authorize_url(&self, url: Url, _request: &LoginRequest<'_>) -> Url {
        url
    }

    fn check(
        &self,
        _identity: &UpstreamIdentity,
        _previous: Option<&UpstreamIdentity>,
    ) -> Result<(), UpstreamError> {
        Ok(())
    }
}

/// Any OpenID Connect issuer, as it is.
pub struct Generic;

impl Preset for Generic {
    const KIND: ProviderKind = ProviderKind::Oidc;
}

pub struct OidcConnector<P: Preset = Generic> {
    config: OidcConfig,
    http: UpstreamHttp,
    metadata: RwLock<Option<(Instant, Arc<CoreProviderMetadata>)>>,
    last_refetch: Mutex<Option<Instant>>,
    preset: P,
}

/// What `begin` hands the core to seal, and `finish` gets back.
#[derive(Serialize, Deserialize)]
struct PendingSecret {
    nonce: String,
    pkce_verifier: String,
}

impl OidcConnector {
    pub fn new(config: OidcConfig, http: UpstreamHttp) -> Self {
        Self::with_preset(config, http, Generic)
    }
}

impl<P: Preset> OidcConnector<P> {
    pub(super) fn with_preset(config: OidcConfig, http: UpstreamHttp, preset: P) -> Self {
        Self {
            config,
            http,
            metadata: RwLock::new(None),
            last_refetch: Mutex::new(None),
            preset,
        }
    }

    pub(super) fn preset(&self) -> &P {
        &self.preset
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The cached discovery document, re-read when stale or when `force` (a key miss) asks
    /// and the last forced re-read is old enough.
    async fn metadata(&self, force: bool) -> Result<Arc<CoreProviderMetadata>, UpstreamError> {
        if let Some((at, md)) = self.metadata.read().expect("metadata lock").as_ref() {
            let fresh = at.elapsed() < METADATA_TTL;
            let may_refetch = force && {
                let mut last = self.last_refetch.lock().expect("refetch lock");
                let allowed = last.is_none_or(|t| t.elapsed() >= REFETCH_INTERVAL);
                if allowed {
                    *last = Some(Instant::now());
                }
                allowed
            };
            if fresh && !may_refetch {
                return Ok(md.clone());
            }
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| UpstreamError::Misconfigured(format!("issuer URL: {e}")))?;
        let md = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                UpstreamError::Unavailable(format!(
                    "discovery at {} failed: {}",
                    self.config.issuer,
                    error_chain(&e)
                ))
            })?;
        let md = Arc::new(md);
        *self.metadata.write().expect("metadata lock") = Some((Instant::now(), md.clone()));
        Ok(md)
    }

    fn client(
        &self,
        md: &CoreProviderMetadata,
        redirect_uri: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        UpstreamError,
    > {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| UpstreamError::Misconfigured(format!("redirect URI: {e}")))?;
        let secret = self
            .config
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose_secret().to_owned()));
        // client_secret_basic unless the provider advertises only client_secret_post.
        let methods = md.token_endpoint_auth_methods_supported();
        let post_only = methods.is_some_and(|m| {
            m.contains(&CoreClientAuthMethod::ClientSecretPost)
                && !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
        });
        let client = CoreClient::from_provider_metadata(
            md.clone(),
            ClientId::new(self.config.client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect)
        .set_auth_type(if post_only {
            AuthType::RequestBody
        } else {
            AuthType::BasicAuth
        });
        Ok(client)
    }

    /// Verifies an ID token and returns its full claim set. A signature failure re-reads the
    /// provider's keys once (they may have rotated) before giving up.
    async fn verify_id_token(
        &self,
        id_token: &CoreIdToken,
        redirect_uri: &str,
        nonce: Option<&Nonce>,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let mut md = self.metadata(false).await?;
        for attempt in 0..2 {
            let client = self.client(&md, redirect_uri)?;
            let verifier = client
                .id_token_verifier()
                .set_issue_time_verifier_fn(|iat| {
                    if iat.timestamp() > crate::store::now() + IAT_LEEWAY_SECS {
                        Err("issued in the future".to_owned())
                    } else {
                        Ok(())
                    }
                });
            let result = match nonce {
                Some(n) => id_token.claims(&verifier, n).map(|_| ()),
                None => id_token
                    .claims(&verifier, |_: Option<&Nonce>| Ok(()))
                    .map(|_| ()),
            };
            match result {
                Ok(()) => return raw_claims(&id_token.to_string()),
                Err(ClaimsVerificationError::SignatureVerification(_)) if attempt == 0 => {
                    md = self.metadata(true).await?;
                }
                Err(e) => return Err(UpstreamError::InvalidIdToken(e.to_string())),
            }
        }
        Err(UpstreamError::InvalidIdToken(
            "signature verification failed".into(),
        ))
    }

    /// The userinfo claims, when the provider has a userinfo endpoint.
    async fn userinfo(
        &self,
        md: &CoreProviderMetadata,
        access_token: &str,
        subject: &str,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let Some(endpoint) = md.userinfo_endpoint() else {
            return Ok(Map::new());
        };
        let request = self
            .http
            .client()
            .get(endpoint.url().clone())
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .build()
            .map_err(|e| UpstreamError::Misconfigured(format!("userinfo request: {e}")))?;
        let response =
            self.http.send(request).await.map_err(|e| {
                UpstreamError::Unavailable(format!("userinfo: {}", error_chain(&e)))
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(UpstreamError::UserInfo(format!("status {status}")));
        }
        let body: Map<String, Value> = response
            .json()
            .await
            .map_err(|_| UpstreamError::UserInfo("the response is not a JSON object".into()))?;
        // OIDC Core 5.3.2: the userinfo `sub` must be the ID token's.
        if body.get("sub").and_then(Value::as_str) != Some(subject) {
            return Err(UpstreamError::UserInfo(
                "its `sub` differs from the ID token's".into(),
            ));
        }
        Ok(body)
    }

    /// From a token response to an identity: ID token verified, userinfo merged, claims mapped.
    async fn identity_from(
        &self,
        response: &CoreTokenResponse,
        redirect_uri: &str,
        nonce: Option<&Nonce>,
        previous: Option<&UpstreamIdentity>,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let mut claims = match (response.id_token(), previous) {
            (Some(id_token), _) => self.verify_id_token(id_token, redirect_uri, nonce).await?,
            // A refresh response may omit the ID token; the subject stays the known one.
            (None, Some(prev)) => {
                let mut m = Map::new();
                m.insert("sub".into(), Value::String(prev.subject.clone()));
                m
            }
            (None, None) => {
                return Err(UpstreamError::InvalidIdToken(
                    "the token response has no id_token".into(),
                ));
            }
        };
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| UpstreamError::MissingClaim("sub".into()))?
            .to_owned();
        // Read from the ID token only, before userinfo is merged: userinfo states nothing
        // about when the user authenticated.
        let auth_time = stated_auth_time(&claims, crate::store::now())?;
        if let Some(prev) = previous
            && prev.subject != subject
        {
            return Err(UpstreamError::InvalidIdToken(
                "the refreshed ID token names another subject".into(),
            ));
        }
        let md = self.metadata(false).await?;
        let userinfo = self
            .userinfo(&md, response.access_token().secret(), &subject)
            .await?;
        for (k, v) in userinfo {
            if !matches!(k.as_str(), "sub" | "iss" | "aud") {
                claims.insert(k, v);
            }
        }
        let tokens = UpstreamTokens {
            access_token: SecretString::from(response.access_token().secret().clone()),
            refresh_token: response
                .refresh_token()
                .map(|t| SecretString::from(t.secret().clone()))
                .or_else(|| {
                    previous
                        .and_then(|p| p.tokens.as_ref())
                        .and_then(|t| t.refresh_token.clone())
                }),
            id_token: response
                .id_token()
                .map(|t| SecretString::from(t.to_string())),
            expires_at: response
                .expires_in()
                .map(|d| crate::store::now() + d.as_secs() as i64),
            scope: response
                .scopes()
                .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
        };
        let mapped = map_claims(&self.config.claims, &self.config.rules, &claims);
        let mut identity = mapped.identity(self.config.id.clone(), subject, Some(tokens));
        identity.auth_time = auth_time;
        Ok(identity)
    }
}

/// When the provider says it authenticated the user: the ID token's `auth_time` (OIDC Core
/// 2), a number of seconds, not later than now beyond the clock skew. `None` when the token
/// does not say: then nothing is known about how fresh the login was (an IdP may answer from
/// an old session whatever Portico asked), and nothing that needs a fresh authentication
/// may rely on it.
fn stated_auth_time(claims: &Map<String, Value>, now: i64) -> Result<Option<i64>, UpstreamError> {
    let Some(value) = claims.get("auth_time") else {
        return Ok(None);
    };
    let at = match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 1e15)
                .map(|f| f.floor() as i64)
        }),
        _ => None,
    }
    .ok_or_else(|| UpstreamError::InvalidIdToken("its auth_time is not a number".into()))?;
    if at > now + IAT_LEEWAY_SECS {
        return Err(UpstreamError::InvalidIdToken(
            "its auth_time is in the future".into(),
        ));
    }
    Ok(Some(at))
}

/// Applies a claim mapping and the provider's rules to a merged claim set (a login, and the
/// admin's preview).
pub fn map_claims(
    mapping: &ClaimMapping,
    rules: &ClaimRules,
    claims: &Map<String, Value>,
) -> Mapped {
    let email_verified = match mapping.email_verified.lookup(claims) {
        Some(Value::Bool(b)) => *b,
        // Some providers send the boolean as a string.
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let groups = mapping
        .groups
        .as_ref()
        .map(|g| g.strings(claims))
        .unwrap_or_default();
    Mapped {
        email: mapping.email.text(claims).map(|e| e.to_ascii_lowercase()),
        email_verified,
        name: mapping.name.text(claims),
        picture: mapping.picture.text(claims),
        claims: claims::apply(rules, RawClaims { groups, claims }),
    }
}

/// The payload of a JWT whose signature was already verified.
pub(super) fn raw_claims(jwt: &str) -> Result<Map<String, Value>, UpstreamError> {
    let payload = jwt
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
        .ok_or_else(|| UpstreamError::InvalidIdToken("unreadable payload".into()))?;
    Ok(payload)
}

fn token_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, openidconnect::StandardErrorResponse<CoreErrorResponseType>>,
) -> UpstreamError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            if *r.error() == CoreErrorResponseType::InvalidGrant {
                return UpstreamError::InvalidGrant;
            }
            let mut text = r.error().to_string();
            if let Some(d) = r.error_description() {
                text.push_str(": ");
                text.push_str(d);
            }
            UpstreamError::TokenExchange(text)
        }
        RequestTokenError::Request(e) => UpstreamError::Unavailable(error_chain(&e)),
        RequestTokenError::Parse(e, _) => {
            UpstreamError::TokenExchange(format!("unreadable token response: {e}"))
        }
        RequestTokenError::Other(s) => UpstreamError::TokenExchange(s),
    }
}

impl<P: Preset> Connector for OidcConnector<P> {
    fn kind(&self) -> ProviderKind {
        P::KIND
    }

    fn callback_login(&self) -> Option<&dyn CallbackLogin> {
        Some(self)
    }

    fn refresh(&self) -> Option<&dyn RefreshIdentity> {
        Some(self)
    }
}

impl<P: Preset> CallbackLogin for OidcConnector<P> {
    fn begin<'a>(
        &'a self,
        request: LoginRequest<'a>,
    ) -> BoxFuture<'a, Result<LoginStart, UpstreamError>> {
        Box::pin(async move {
            let md = self.metadata(false).await?;
            let client = self.client(&md, request.redirect_uri)?;
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            let mut auth = client
                .authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    CsrfToken::new_random,
                    Nonce::new_random,
                )
                .set_pkce_challenge(challenge);
            let mut asked: Vec<&String> = Vec::new();
            for scope in self.config.scopes.iter().chain(request.extra_scopes) {
                if scope != "openid" && !asked.contains(&scope) {
                    asked.push(scope);
                    auth = auth.add_scope(Scope::new(scope.clone()));
                }
            }
            if let Some(hint) = request.login_hint {
                auth = auth.set_login_hint(LoginHint::new(hint.to_owned()));
            }
            if request.force_login {
                auth = auth.add_prompt(CoreAuthPrompt::Login);
            }
            if let Some(max_age) = request.max_age {
                auth = auth.set_max_age(Duration::from_secs(max_age));
            }
            let (url, state, nonce) = auth.url();
            Ok(super::callback::login_start(
                self.preset.authorize_url(url, &request),
                &state,
                &PendingSecret {
                    nonce: nonce.secret().clone(),
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
            let code = super::callback::authorization_code(params)?;
            let pending: PendingSecret = super::callback::pending(secret)?;
            let md = self.metadata(false).await?;
            let client = self.client(&md, redirect_uri)?;
            let response = client
                .exchange_code(AuthorizationCode::new(code.to_owned()))
                .map_err(|e| UpstreamError::Misconfigured(e.to_string()))?
                .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
                .request_async(&self.http)
                .await
                .map_err(|e| match token_error(e) {
                    UpstreamError::InvalidGrant => {
                        UpstreamError::TokenExchange("invalid_grant".into())
                    }
                    other => other,
                })?;
            let nonce = Nonce::new(pending.nonce);
            let identity =
                (self.identity_from(&response, redirect_uri, Some(&nonce), None)).await?;
            self.preset.check(&identity, None)?;
            Ok(identity)
        })
    }
}

impl<P: Preset> RefreshIdentity for OidcConnector<P> {
    fn refresh_identity<'a>(
        &'a self,
        previous: &'a UpstreamIdentity,
    ) -> BoxFuture<'a, Result<UpstreamIdentity, UpstreamError>> {
        Box::pin(async move {
            let Some(refresh_token) = previous
                .tokens
                .as_ref()
                .and_then(|t| t.refresh_token.as_ref())
            else {
                // Nothing to refresh with: the claims of the last login stand.
                self.preset.check(previous, Some(previous))?;
                return Ok(previous.clone());
            };
            let md = self.metadata(false).await?;
            // The redirect URI plays no part in a refresh; the verifier needs a client anyway.
            let redirect = "http://localhost/";
            let client = self.client(&md, redirect)?;
            let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
            let response = client
                .exchange_refresh_token(&token)
                .map_err(|e| UpstreamError::Misconfigured(e.to_string()))?
                .request_async(&self.http)
                .await
                .map_err(token_error)?;
            let identity = (self.identity_from(&response, redirect, None, Some(previous))).await?;
            self.preset.check(&identity, Some(previous))?;
            Ok(identity)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stated(claims: Value) -> Result<Option<i64>, UpstreamError> {
        stated_auth_time(claims.as_object().unwrap(), 1_000_000)
    }

    #[test]
    fn auth_time_is_read_only_when_it_is_a_plausible_number() {
        assert_eq!(stated(json!({"sub": "a"})).unwrap(), None);
        assert_eq!(
            stated(json!({"auth_time": 999_000})).unwrap(),
            Some(999_000)
        );
        assert_eq!(
            stated(json!({"auth_time": 999_000.7})).unwrap(),
            Some(999_000)
        );
        // Within the clock skew of now, and no further.
        assert_eq!(
            stated(json!({"auth_time": 1_000_000 + IAT_LEEWAY_SECS})).unwrap(),
            Some(1_000_000 + IAT_LEEWAY_SECS)
        );
        for bad in [
            json!({"auth_time": 1_000_000 + IAT_LEEWAY_SECS + 1}),
            json!({"auth_time": "999000"}),
            json!({"auth_time": null}),
            json!({"auth_time": true}),
            json!({"auth_time": 1e300}),
        ] {
            assert!(
                matches!(stated(bad.clone()), Err(UpstreamError::InvalidIdToken(_))),
                "{bad}"
            );
        }
    }
}
