//! `[[clients]]` in portico.toml: the shape of one entry, and its check at load time (the
//! same rules as the admin API's, through `NewClient`).

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::NewClient;
use crate::claims::GroupFilter;

/// A `[[clients]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub client_type: String,
    #[serde(
        default,
        deserialize_with = "crate::crypto::secret_serde::optional",
        serialize_with = "crate::crypto::secret_serde::redacted"
    )]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub allowed_providers: Vec<String>,
    /// Resource indicators (RFC 8707) the client may ask tokens for; none by default.
    #[serde(default)]
    pub allowed_resources: Vec<String>,
    #[serde(default)]
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    pub access_token_ttl_secs: Option<u64>,
    #[serde(default)]
    pub id_token_ttl_secs: Option<u64>,
    #[serde(default)]
    pub refresh_token_ttl_secs: Option<u64>,
    /// A development client: it may register http://localhost redirect URIs.
    #[serde(default)]
    pub development: bool,
    /// The user claims the client receives (claim names, no protocol claim); absent: every
    /// claim its scopes give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Vec<String>>,
    /// Which of the user's groups the client sees in the `groups` claim.
    #[serde(default, skip_serializing_if = "GroupFilterLists::is_empty")]
    pub group_filter: GroupFilterLists,
}

/// A group filter as written (portico.toml, the admin API): patterns, each a glob or a
/// `/regex/` matching a whole group name; a name passes when it matches some `allow` pattern
/// (or `allow` is empty) and no `deny` pattern. Parsed into a [`crate::claims::GroupFilter`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GroupFilterLists {
    /// Patterns of the groups the client may see; empty: every group.
    pub allow: Vec<String>,
    /// Patterns of groups it never sees, even when allowed (deny wins).
    pub deny: Vec<String>,
}

impl GroupFilterLists {
    /// The lists of a parsed filter, as written.
    pub fn of(filter: &GroupFilter) -> Self {
        let texts = |list: &[crate::claims::GroupPattern]| {
            list.iter().map(|p| p.as_str().to_owned()).collect()
        };
        Self {
            allow: texts(&filter.allow),
            deny: texts(&filter.deny),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// The filter, every pattern checked and each list bounded.
    pub fn parse(&self) -> Result<GroupFilter, crate::claims::PatternError> {
        GroupFilter::parse(&self.allow, &self.deny)
    }
}

/// Checks `[[clients]]` at load time, so a bad entry stops the start with a message naming it.
pub fn validate_config(clients: &[ClientConfig]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for c in clients {
        let new =
            NewClient::from_config(c).map_err(|e| format!("client `{}`: {e}", c.client_id))?;
        if !seen.insert(new.client_id.clone()) {
            return Err(format!("client `{}` is declared twice", c.client_id));
        }
    }
    Ok(())
}
