//! Downstream applications (OAuth clients): their protocol values, validation, and the
//! service layer that the admin UI and API call.

mod config;
mod definition;
mod redirect;
pub mod repo;

use crate::claims::{ClaimSelection, GroupFilter};
use crate::crypto::TokenDigest;
use crate::keys::SigningAlg;
use crate::upstream::ProviderId;

pub use config::{ClientConfig, GroupFilterLists, validate_config};
pub use definition::{ClientError, NewClient, Rules, parse_resources};
pub use redirect::{RedirectError, RedirectUri};

/// An OAuth `client_id`: 1-128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err(
                "Enter a client ID: the name the application sends as client_id, \
                        e.g. wiki"
                    .into(),
            );
        }
        if raw.len() > 128 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "“{raw}” cannot be a client ID: use 1 to 128 letters, digits or punctuation, \
                 without spaces or accents, e.g. wiki"
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Can keep a secret: authenticates at the token endpoint.
    Confidential,
    /// Cannot (SPAs, native apps): no secret, PKCE required.
    Public,
}

impl ClientType {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "confidential" => Ok(Self::Confidential),
            "public" => Ok(Self::Public),
            _ => Err(format!(
                "Choose the type: confidential (a server-side app that keeps a secret) or public \
                 (a browser or native app); “{raw}” is neither"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum GrantType {
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    #[serde(rename = "refresh_token")]
    RefreshToken,
    #[serde(rename = "client_credentials")]
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == raw)
    }
}

/// A resource indicator (RFC 8707 section 2): an absolute URI without a fragment, at most
/// 2,048 characters. It names an API an access token is meant for (the token's `aud`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct ResourceUri(String);

impl ResourceUri {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > 2048 {
            return Err("a resource indicator is at most 2,048 characters".into());
        }
        let url = url::Url::parse(raw)
            .map_err(|_| format!("resource `{raw}` must be an absolute URI"))?;
        if url.fragment().is_some() {
            return Err(format!("resource `{raw}` must not have a fragment"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Token lifetimes for a client that sets none of its own (the `[oidc]` defaults).
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub access_token_secs: u64,
    pub id_token_secs: u64,
    pub refresh_token_secs: u64,
}

/// Scopes a client may ask for when its configuration names none.
pub const DEFAULT_SCOPES: &[&str] = &["openid", "profile", "email", "groups", "offline_access"];

/// A stored client.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: ClientId,
    pub name: String,
    pub client_type: ClientType,
    pub secret_digest: Option<TokenDigest>,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    /// Empty: every enabled provider.
    pub allowed_providers: Vec<ProviderId>,
    /// The resources (RFC 8707) the client may ask tokens for. Empty: none; its tokens are for
    /// itself (`aud` = its client_id).
    pub allowed_resources: Vec<ResourceUri>,
    pub id_token_alg: SigningAlg,
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub managed_by_config: bool,
    /// A development client may register http://localhost redirect URIs.
    pub development: bool,
    /// The user claims it receives; `None`: every claim its scopes give.
    pub claims: Option<ClaimSelection>,
    /// Which of the user's groups it sees.
    pub group_filter: GroupFilter,
    pub created_at: i64,
}

impl Client {
    /// The registered redirect URI that `candidate` matches: exactly, or for a loopback IP
    /// registration, exactly but for the port (RFC 8252 section 7.3). An http://localhost
    /// registration counts only while the client is a development client.
    pub fn redirect_uri(&self, candidate: &str) -> Option<RedirectUri> {
        self.usable(&self.redirect_uris)
            .find(|r| r.matches(candidate))
            .and_then(|_| RedirectUri::parse(candidate).ok())
    }

    pub fn post_logout_redirect_uri(&self, candidate: &str) -> Option<&RedirectUri> {
        self.usable(&self.post_logout_redirect_uris)
            .find(|r| r.as_str() == candidate)
    }

    /// The URIs of `list` this client may use now: development ones only if it is one.
    fn usable<'a>(&self, list: &'a [RedirectUri]) -> impl Iterator<Item = &'a RedirectUri> {
        let development = self.development;
        list.iter()
            .filter(move |r| development || !r.is_development())
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether users may reach this client through `provider`. Checked on every grant, not
    /// only at sign-in: `/authorize` (also when an SSO session answers), the end of an
    /// upstream login, the authorization_code and refresh_token grants, introspection of a
    /// refresh token and the broker, so that removing a provider from the list takes effect
    /// for sessions and tokens that came through it.
    pub fn allows_provider(&self, provider: &ProviderId) -> bool {
        self.allowed_providers.is_empty() || self.allowed_providers.contains(provider)
    }

    /// As `allows_provider`, for a provider ID as stored (an identity's, a session's); one
    /// that is not a valid ID is not allowed.
    pub fn allows_provider_named(&self, provider: &str) -> bool {
        ProviderId::parse(provider).is_ok_and(|p| self.allows_provider(&p))
    }

    /// The resource indicator `requested` if this client may name it: listed exactly as an
    /// admin allowed it. Anything else is `invalid_target` (RFC 8707 section 2).
    pub fn allowed_resource(&self, requested: &str) -> Option<&ResourceUri> {
        self.allowed_resources
            .iter()
            .find(|r| r.as_str() == requested)
    }

    pub fn is_public(&self) -> bool {
        self.client_type == ClientType::Public
    }

    /// Constant-time check of a presented client secret.
    pub fn secret_matches(&self, presented: &str) -> bool {
        self.secret_digest
            .as_ref()
            .is_some_and(|d| d.matches(presented))
    }
}
