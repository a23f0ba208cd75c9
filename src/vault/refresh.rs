//! Spending an identity's upstream refresh token: one refresh at a time per identity, across
//! instances, under the lease in its row.
//!
//! Both callers go through here, so the rules hold for both: the broker (a fresh upstream
//! access token) and the downstream refresh grant (fresh claims). Whoever claims the lease
//! makes the one upstream call; the others wait, then take what it stored. An upstream
//! `invalid_grant` marks the identity as needing a new login, which every later caller sees.

use std::time::{Duration, Instant};

use super::{LEASE_SECS, Vaulted, Which};
use crate::crypto::Sealer;
use crate::providers::{Connectors, Provider};
use crate::store::{self, Store, StoreError};
use crate::upstream::UpstreamError;
use crate::users::identities;

/// What a refresh works with.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub store: &'a Store,
    pub sealer: &'a Sealer,
    pub connectors: &'a Connectors,
}

/// A stored access token expiring within this many seconds is refreshed before it is served.
pub const REFRESH_MARGIN_SECS: i64 = 60;
/// How long a caller waits for another's refresh before giving up.
const WAIT_FOR_REFRESH: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// What the caller needs from the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// An access token valid for at least [`REFRESH_MARGIN_SECS`]: refresh only when the
    /// stored one is about to expire (the broker).
    FreshToken,
    /// The provider's current claims: refresh now, unless another caller's refresh finished
    /// while this one waited for the lease (the downstream refresh grant).
    FreshClaims,
}

/// How a refresh ended.
pub enum Refreshed {
    /// The identity as stored now: refreshed by this call or by the one it waited for, or
    /// untouched because its token was still fresh.
    Fresh(Vaulted),
    /// Nothing to refresh with (no stored tokens, or a provider without the capability); the
    /// identity as stored, and why.
    Unrefreshable(Vaulted, &'static str),
    /// The upstream grant has ended; the user must sign in at the provider again.
    NeedsLogin(&'static str),
    /// The upstream call failed; nothing was changed.
    Failed(UpstreamError),
    /// Another caller's refresh did not finish in time.
    Busy,
}

const GRANT_ENDED: &str =
    "the upstream grant has ended (invalid_grant); the user must sign in at the provider again";
const CANNOT_REFRESH: &str = "this provider cannot refresh tokens; the user must sign in again";

/// Refreshes `current` (as the caller last read it) at `provider` as `want` asks.
pub async fn refresh_identity(
    ctx: Context<'_>,
    provider: &Provider,
    current: Vaulted,
    want: Want,
) -> Result<Refreshed, StoreError> {
    let started = Instant::now();
    let mut waited = false;
    let mut current = current;
    loop {
        if current.needs_login {
            return Ok(Refreshed::NeedsLogin(GRANT_ENDED));
        }
        if is_fresh(&current, want, waited) {
            return Ok(Refreshed::Fresh(current));
        }
        if let Some(why) = unrefreshable(ctx, provider, &current, want)? {
            return Ok(Refreshed::Unrefreshable(current, why));
        }
        if identities::claim_lease(ctx.store, &current.identity_id, store::now() + LEASE_SECS)
            .await?
        {
            return with_lease(ctx, provider, &current.identity_id, want, waited).await;
        }
        if started.elapsed() >= WAIT_FOR_REFRESH {
            return Ok(Refreshed::Busy);
        }
        waited = true;
        tokio::time::sleep(POLL).await;
        let which = Which::Id(&current.identity_id);
        current = match super::find(ctx.store, ctx.sealer, which).await? {
            Some(v) => v,
            None => return Ok(Refreshed::NeedsLogin("the identity no longer exists")),
        };
    }
}

/// Claims the refresh lease of identity `id` for a writer other than a refresh (a broker
/// upgrade storing a new grant), waiting as a refresh would for one running; `false` when it
/// did not end in time. The caller ends the lease with its write (`end_lease_in`) or gives it
/// back (`release_lease`).
pub async fn await_lease(store: &Store, id: &str) -> Result<bool, StoreError> {
    let started = Instant::now();
    loop {
        if identities::claim_lease(store, id, store::now() + LEASE_SECS).await? {
            return Ok(true);
        }
        if started.elapsed() >= WAIT_FOR_REFRESH {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether `v` already answers `want`: after waiting for another refresh, claims are as fresh
/// as its token.
fn is_fresh(v: &Vaulted, want: Want, waited: bool) -> bool {
    let token_fresh = !v.expires_within(REFRESH_MARGIN_SECS, store::now());
    match want {
        Want::FreshToken => token_fresh,
        Want::FreshClaims => waited && token_fresh,
    }
}

fn unrefreshable(
    ctx: Context<'_>,
    provider: &Provider,
    v: &Vaulted,
    want: Want,
) -> Result<Option<&'static str>, StoreError> {
    let connector = ctx.connectors.connector(provider)?;
    let Some(refresher) = connector.refresh() else {
        return Ok(Some(CANNOT_REFRESH));
    };
    let tokens = v.tokens();
    let has_refresh_token = tokens.and_then(|t| t.refresh_token.as_ref()).is_some();
    let missing = match want {
        Want::FreshToken => !has_refresh_token,
        Want::FreshClaims => {
            tokens.is_none() || !(has_refresh_token || refresher.refreshes_without_refresh_token())
        }
    };
    Ok(missing.then_some(
        "no upstream refresh token is stored; the user must sign in at the provider again",
    ))
}

/// With the lease held: re-reads the identity (a refresh may have finished just before the
/// lease was claimed), refreshes upstream, and stores the result and ends the lease in one
/// transaction. Every other path gives the lease back (an ended grant marks the identity).
async fn with_lease(
    ctx: Context<'_>,
    provider: &Provider,
    identity_id: &str,
    want: Want,
    waited: bool,
) -> Result<Refreshed, StoreError> {
    let outcome = leased(ctx, provider, identity_id, want, waited).await;
    if !matches!(outcome, Ok((_, false))) {
        let needs_login = matches!(outcome, Ok((Refreshed::NeedsLogin(_), _)));
        if let Err(e) = identities::release_lease(ctx.store, identity_id, needs_login).await {
            tracing::error!(error = %e, "releasing an identity's refresh lease failed");
        }
    }
    outcome.map(|(refreshed, _)| refreshed)
}

/// [`with_lease`]'s work, and whether the lease is still held.
async fn leased(
    ctx: Context<'_>,
    provider: &Provider,
    identity_id: &str,
    want: Want,
    waited: bool,
) -> Result<(Refreshed, bool), StoreError> {
    let Some(current) = super::find(ctx.store, ctx.sealer, Which::Id(identity_id)).await? else {
        return Ok((Refreshed::NeedsLogin("the identity no longer exists"), true));
    };
    if current.needs_login {
        return Ok((Refreshed::NeedsLogin(GRANT_ENDED), true));
    }
    if is_fresh(&current, want, waited) {
        return Ok((Refreshed::Fresh(current), true));
    }
    let connector = ctx.connectors.connector(provider)?;
    let Some(refresher) = connector.refresh() else {
        return Ok((Refreshed::Unrefreshable(current, CANNOT_REFRESH), true));
    };
    let mut identity = match refresher.refresh_identity(&current.identity).await {
        Ok(identity) => identity,
        Err(UpstreamError::InvalidGrant) => {
            tracing::info!(provider = %provider.id, identity = %identity_id, "upstream grant ended");
            return Ok((Refreshed::NeedsLogin(GRANT_ENDED), true));
        }
        Err(e) => {
            tracing::warn!(provider = %provider.id, reason = %e.reason(), "upstream refresh failed");
            return Ok((Refreshed::Failed(e), true));
        }
    };
    // An answer without `scope` has the scope of the grant it refreshed (RFC 6749 5.1, 6).
    if let Some(tokens) = identity.tokens.as_mut()
        && tokens.scope.is_none()
    {
        tokens.scope = current.tokens().and_then(|t| t.scope.clone());
    }
    let mut tx = ctx.store.begin_write().await?;
    let (user_id, trust_email) = (&current.user_id, provider.trust_email);
    // What goes on into tokens is what was stored (less another provider's groups).
    identity.groups = crate::users::update_claims(
        &mut tx,
        ctx.sealer,
        user_id,
        identity_id,
        &identity,
        trust_email,
    )
    .await?;
    identities::end_lease_in(&mut tx, identity_id, false).await?;
    tx.commit().await?;
    let refreshed = Vaulted {
        identity,
        ..current
    };
    Ok((Refreshed::Fresh(refreshed), false))
}
