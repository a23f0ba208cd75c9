//! The token vault: an identity's upstream access, refresh and ID tokens, with their expiry
//! and scope, each sealed to the identity row (`users::identities` stores and seals them), and
//! kept fresh: `refresh` makes one upstream refresh per identity however many callers ask at
//! once (a lease in the identity row, claimed by a conditional UPDATE), for the broker
//! (`oidc::broker`) and for downstream refreshes. `upgrades` holds the tickets by which a user
//! adds upstream scopes a service asked for.

pub mod refresh;
pub mod upgrades;

use secrecy::ExposeSecret;

use crate::crypto::Sealer;
use crate::store::{Store, StoreError};
use crate::upstream::{ProviderId, UpstreamIdentity, UpstreamTokens};
pub use crate::users::identities::Which;
use crate::users::identities::{self, IdentityRow, SealedTokens};

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
            extra_claims: row.extra_claims,
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

/// The identity `which` names, tokens opened.
pub async fn find(
    store: &Store,
    sealer: &Sealer,
    which: Which<'_>,
) -> Result<Option<Vaulted>, StoreError> {
    let found = identities::with_tokens(store, which).await?;
    found
        .map(|(row, sealed)| Vaulted::open(sealer, row, &sealed))
        .transpose()
}

/// Whether a new login's grant (`identity`, at `provider`) would drop upstream scopes the user
/// added through the broker (`upgrades`): the stored grant of the same identity has one of the
/// provider's incremental scopes that the new grant lacks, and can still be refreshed (a
/// refresh token, no `invalid_grant` seen). Then the login keeps the stored, larger grant and
/// only its claims are updated: a normal sign-in asks the provider for its configured scopes
/// only, and must not silently undo an upgrade. A grant that has ended is always replaced.
pub async fn keeps_larger_grant(
    conn: &mut sqlx::AnyConnection,
    store: &Store,
    sealer: &Sealer,
    provider: &crate::providers::Provider,
    identity: &UpstreamIdentity,
) -> Result<bool, StoreError> {
    if provider.incremental_scopes.is_empty() || identity.tokens.is_none() {
        return Ok(false);
    }
    let at = identity.provider.as_str();
    let Some((id, _)) = identities::find_by_subject_in(conn, at, &identity.subject).await? else {
        return Ok(false);
    };
    let Some(stored) = find(store, sealer, Which::Id(&id)).await? else {
        return Ok(false);
    };
    let refreshable = stored.tokens().is_some_and(|t| t.refresh_token.is_some());
    if stored.needs_login || !refreshable {
        return Ok(false);
    }
    let scopes = |t: Option<&UpstreamTokens>| -> Vec<String> {
        let scope = t.and_then(|t| t.scope.as_deref()).unwrap_or("");
        (scope.split([' ', ',']).filter(|s| !s.is_empty()))
            .map(str::to_owned)
            .collect()
    };
    let (had, new) = (scopes(stored.tokens()), scopes(identity.tokens.as_ref()));
    Ok(provider
        .incremental_scopes
        .iter()
        .any(|s| had.contains(s) && !new.contains(s)))
}
