//! The upstream interface: how Portico logs a user in at another identity provider.
//!
//! Modelled on Dex's connectors. A [`Connector`] tells its kind and exposes optional
//! capabilities (its id and name are the provider row's); the server core (authorize, callback, token) only ever talks to these traits,
//! so a new provider kind is a new implementation, never a change to the core.
//!
//! - [`CallbackLogin`]: redirect the browser to the provider, then finish from the redirect back
//!   (`/callback/{provider}`). OAuth2 and OIDC providers implement it.
//! - [`RefreshIdentity`]: refresh an identity's claims (and upstream tokens) without the user,
//!   used on a downstream refresh. Providers that cannot do this return `None`.
//!
//! - [`SamlLogin`]: SAML Web Browser SSO: an HTTP-Redirect AuthnRequest out, the HTTP-POST of
//!   the IdP's Response back at `/saml/{provider}/acs` (Dex's `SAMLConnector`).
//!
//! What a kind of provider is configured with, and how its connector is built from a stored
//! provider, is declared by its module too and registered in [`kinds`] (Dex's `ConnectorConfig`
//! map), which is all the core knows of kinds.

pub mod callback;
mod error;
pub mod github;
pub mod google;
pub mod guard;
pub mod http;
mod identity;
pub mod kinds;
pub mod oidc;
mod provider;
pub mod saml;
pub mod settings;

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use secrecy::SecretString;
use url::Url;

pub use error::UpstreamError;
pub use identity::{Mapped, UpstreamIdentity, UpstreamTokens};
pub use provider::{ProviderId, ProviderKind};

/// One configured upstream provider.
pub trait Connector: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// Redirect-based login, finished at `/callback/{id}`.
    fn callback_login(&self) -> Option<&dyn CallbackLogin> {
        None
    }

    /// Refreshing an identity without the user present.
    fn refresh(&self) -> Option<&dyn RefreshIdentity> {
        None
    }

    /// SAML login, finished by the IdP's POST to `/saml/{id}/acs`.
    fn saml_login(&self) -> Option<&dyn SamlLogin> {
        None
    }

    /// How long after the upstream login downstream refresh tokens may still be used, for
    /// providers that cannot refresh an identity upstream; `None`: no limit of the provider's.
    fn max_session_secs(&self) -> Option<u64> {
        None
    }
}

/// What the core asks of a redirect login.
#[derive(Debug, Clone)]
pub struct LoginRequest<'a> {
    /// Portico's callback URL for this provider, exactly as registered upstream.
    pub redirect_uri: &'a str,
    /// The downstream `login_hint`, passed on where the provider understands it.
    pub login_hint: Option<&'a str>,
    /// The downstream asked for `prompt=login`: the user must authenticate again upstream.
    pub force_login: bool,
    /// The downstream `max_age`, in seconds.
    pub max_age: Option<u64>,
    /// Scopes to ask for besides the provider's own (the broker's incremental scopes: those
    /// the stored grant has and those a service asked the user to add); each connector asks
    /// for every one once.
    pub extra_scopes: &'a [String],
}

/// The start of a redirect login.
pub struct LoginStart {
    /// Where to send the browser.
    pub url: Url,
    /// The `state` value the provider will echo to the callback. The core finds the pending
    /// authorization by it, so a callback whose state matches nothing is refused.
    pub state: SecretString,
    /// Connector-private values needed to finish (nonce, PKCE verifier...). The core seals it
    /// in the pending authorization's database row and hands it back unchanged to `finish`.
    pub secret: SecretString,
}

/// The query of the redirect back from the provider.
pub type CallbackParams = HashMap<String, String>;

/// Redirect login: `begin` sends the user away, `finish` turns the callback into an identity.
pub trait CallbackLogin: Send + Sync {
    fn begin<'a>(
        &'a self,
        request: LoginRequest<'a>,
    ) -> BoxFuture<'a, Result<LoginStart, UpstreamError>>;

    /// Finishes a login. The core has already matched `state` to the pending authorization;
    /// `secret` is the value `begin` returned, `redirect_uri` the same as in `begin`.
    fn finish<'a>(
        &'a self,
        params: &'a CallbackParams,
        secret: &'a SecretString,
        redirect_uri: &'a str,
    ) -> BoxFuture<'a, Result<UpstreamIdentity, UpstreamError>>;
}

/// Refreshes claims (and upstream tokens) from what an earlier login or refresh returned.
/// An [`UpstreamError::InvalidGrant`] means the user must log in upstream again.
pub trait RefreshIdentity: Send + Sync {
    fn refresh_identity<'a>(
        &'a self,
        previous: &'a UpstreamIdentity,
    ) -> BoxFuture<'a, Result<UpstreamIdentity, UpstreamError>>;

    /// Whether an identity with no stored refresh token can be refreshed (GitHub re-reads the
    /// user with its long-lived access token). Where not, the claims of the last login stand
    /// and the vault skips the call.
    fn refreshes_without_refresh_token(&self) -> bool {
        false
    }
}

/// Where an IdP-initiated (unsolicited) SAML login lands: chosen by the admin (a registered
/// client and one of its redirect URIs, `[providers.saml.idp_initiated]`), never by the message,
/// since nothing in an unsolicited Response can be trusted to name a client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdpInitiatedTarget {
    pub client_id: String,
    pub redirect_uri: String,
    #[serde(default = "IdpInitiatedTarget::default_scope")]
    pub scope: String,
}

impl IdpInitiatedTarget {
    fn default_scope() -> String {
        "openid email profile".into()
    }
}

/// SAML Web Browser SSO: `begin` sends the user to the IdP, `finish` turns the IdP's POST to
/// the ACS into an identity.
pub trait SamlLogin: Send + Sync {
    /// Starts an SP-initiated login. `state` of the answer is the RelayState, an opaque handle
    /// the core finds the pending authorization by (never a URL); `secret` names the
    /// AuthnRequest, so that `finish` accepts only the Response to it.
    fn begin<'a>(
        &'a self,
        request: LoginRequest<'a>,
    ) -> BoxFuture<'a, Result<LoginStart, UpstreamError>>;

    /// Verifies a posted `SAMLResponse`. `secret` is what `begin` returned for the pending
    /// authorization the RelayState named; `None` when it named none, and then only an
    /// unsolicited Response passes, and only if the provider allows IdP-initiated logins.
    fn finish<'a>(
        &'a self,
        saml_response: &'a str,
        secret: Option<&'a SecretString>,
    ) -> BoxFuture<'a, Result<UpstreamIdentity, UpstreamError>>;

    /// The client an IdP-initiated login lands at; `None` when they are refused.
    fn idp_initiated(&self) -> Option<&IdpInitiatedTarget>;

    /// The SP metadata document (`/saml/{id}/metadata`) for the IdP admin to import.
    fn sp_metadata(&self) -> Result<String, UpstreamError>;
}
