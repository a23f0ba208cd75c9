//! The token vault: an identity's upstream access, refresh and ID tokens, with their expiry
//! and scope, each sealed to the identity row (`users::identities` stores and seals them), and
//! kept fresh: `refresh` makes one upstream refresh per identity however many callers ask at
//! once (a lease in the identity row, claimed by a conditional UPDATE), for the broker
//! (`oidc::broker`) and for downstream refreshes.

pub mod refresh;

use secrecy::ExposeSecret;

use crate::crypto::Sealer;
use crate::store::{Store, StoreError};
use crate::upstream::{ProviderId, UpstreamIdentity, UpstreamTokens};
use crate::users::identities::{self, IdentityRow, SealedTokens, Which};

/// How long a claimed refresh lease lasts: longer than an upstream refresh with its retries.
pub const LEASE_SECS: i64 = 30;

/// An identity with its vault opened.
pub struct Vaulted {
    pub identity_id: String,
    pub user_id: String,
    pub needs_login: bool,
    /// What the refresh capability takes: the stored claims and tokens.
    pub identity: UpstreamIdentity,
}

impl Vaulted {
    pub fn tokens(&self) -> Option<&UpstreamTokens> {
        self.identity.tokens.as_ref()
    }

    /// Whether the access token is missing or expires within `margin` seconds.
    pub fn expires_within(&self, margin: i64, now: i64) -> bool {
        match self.tokens() {
            Some(t) if !t.access_token.expose_secret().is_empty() => {
                t.expires_at.is_some_and(|at| at - now <= margin)
            }
            _ => true,
        }
    }

    fn open(sealer: &Sealer, row: IdentityRow, sealed: &SealedTokens) -> Result<Self, StoreError> {
        let tokens = sealed.open(sealer, &row.id)?;
        let identity = UpstreamIdentity {
            provider: ProviderId::parse(&row.provider_id).map_err(StoreError::Corrupt)?,
            subject: row.subject,
            email: row.email,
            email_verified: row.email_verified,
            name: row.name,
            picture: row.picture,
            groups: row.groups,
            auth_time: None,
            tokens,
        };
        Ok(Self {
            identity_id: row.id,
            user_id: row.user_id,
            needs_login: row.needs_login,
            identity,
        })
    }
}

/// The user's identity at `provider`, tokens opened.
pub async fn of_user(
    store: &Store,
    sealer: &Sealer,
    user_id: &str,
    provider: &ProviderId,
) -> Result<Option<Vaulted>, StoreError> {
    let found = identities::with_tokens(store, Which::UserAt(user_id, provider.as_str())).await?;
    found
        .map(|(row, sealed)| Vaulted::open(sealer, row, &sealed))
        .transpose()
}

/// The identity `identity_id`, tokens opened.
pub async fn by_id(
    store: &Store,
    sealer: &Sealer,
    identity_id: &str,
) -> Result<Option<Vaulted>, StoreError> {
    let found = identities::with_tokens(store, Which::Id(identity_id)).await?;
    found
        .map(|(row, sealed)| Vaulted::open(sealer, row, &sealed))
        .transpose()
}
