//! The provider's limit on how long one upstream login may be reused.
//!
//! Providers that can refresh an identity upstream find out themselves when the user's
//! grant ends. Those that cannot (SAML) name a maximum session lifetime instead: once the
//! upstream login (`auth_time`) is older, downstream refresh is refused and the SSO session
//! no longer answers `/authorize`, so the user signs in at the provider again.

use super::error::{ErrorCode, OAuthError};
use crate::providers::Provider;
use crate::state::AppState;
use crate::store::StoreError;

/// Whether a login through `provider_id` at `auth_time` is still within the provider's limit.
/// A provider that is gone sets no limit here (the callers refuse it on their own terms).
pub async fn within_limit(
    state: &AppState,
    provider_id: &str,
    auth_time: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let provider = crate::providers::repo::find(&state.store, provider_id).await?;
    provider_within_limit(state, provider.as_ref(), auth_time, now)
}

/// As [`within_limit`], with the provider already read.
pub fn provider_within_limit(
    state: &AppState,
    provider: Option<&Provider>,
    auth_time: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let Some(provider) = provider else {
        return Ok(true);
    };
    let connector = state.connectors.connector(provider)?;
    Ok(connector
        .max_session_secs()
        .is_none_or(|max| now - auth_time < max as i64))
}

/// The refresh grant's check: `Err(invalid_grant)` once the identity's provider says the
/// login at `auth_time` is too old.
pub fn check(
    state: &AppState,
    provider: Option<&Provider>,
    auth_time: i64,
    now: i64,
) -> Result<(), OAuthError> {
    if provider_within_limit(state, provider, auth_time, now).map_err(OAuthError::server)? {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::InvalidGrant,
            "the sign-in is older than the provider's maximum session lifetime; sign in again",
        ))
    }
}
