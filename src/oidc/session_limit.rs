//! The provider's limit on how long a login may be extended by downstream refresh.
//!
//! Providers that can refresh an identity upstream find out themselves when the user's
//! grant ends. Those that cannot (SAML) name a maximum session lifetime instead: once the
//! upstream login (`auth_time`) is older, the refresh is refused and the user signs in again.

use super::error::{ErrorCode, OAuthError};
use crate::state::AppState;

/// `Err(invalid_grant)` when the identity's provider limits sessions and `auth_time` is past it.
pub async fn check(
    state: &AppState,
    identity_id: &str,
    auth_time: i64,
    now: i64,
) -> Result<(), OAuthError> {
    let provider_id: Option<String> =
        sqlx::query_scalar("SELECT provider_id FROM identities WHERE id = $1")
            .bind(identity_id)
            .fetch_optional(state.store.pool())
            .await
            .map_err(OAuthError::server)?;
    // A missing identity or provider is the refresh grant's own refusal.
    let Some(provider_id) = provider_id else {
        return Ok(());
    };
    let Some(provider) = state
        .store
        .provider(&provider_id)
        .await
        .map_err(OAuthError::server)?
    else {
        return Ok(());
    };
    let connector = state
        .connectors
        .connector(&provider)
        .map_err(OAuthError::server)?;
    match connector.max_session_secs() {
        Some(max) if now - auth_time >= max as i64 => Err(OAuthError::new(
            ErrorCode::InvalidGrant,
            "the sign-in is older than the provider's maximum session lifetime; sign in again",
        )),
        _ => Ok(()),
    }
}
