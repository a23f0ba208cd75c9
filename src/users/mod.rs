//! Users and their upstream identities.
//!
//! A user has one or more identities, each a (provider, subject) pair. The first login through
//! an identity creates its user (`user.created`), unless the provider vouches for the address
//! (see [`vouched`]) and a user already holds that address as verified by a provider that
//! vouches for it: then the identity joins that user (`identity.linked`). Claims are copied from
//! the identity on every login and on every upstream refresh.
//!
//! The one rule for `email_verified`: a user's address is verified only when a provider
//! trusted for e-mail (`trust_email`) asserted it verified. The user row records which
//! provider that was (`email_verified_by`); when a provider stops vouching (its trust is turned
//! off, or it is deleted), its verifications are withdrawn ([`repo::withdraw_verification_in`]),
//! so a recorded verifier always vouches now, and the downstream `email_verified` claim means
//! exactly this. A provider not trusted for e-mail can create users with any address, but
//! never a verified one, so it can never pre-claim an account that a trusted provider's login
//! would later join.
//!
//! Deliberate linking and unlinking (the account page, admins) is [`links`].
//!
//! `repo` owns the `users` table, `identities` the `identities` table.

pub mod identities;
pub mod links;
pub mod repo;

use serde_json::json;
use sqlx::AnyConnection;

use crate::crypto::Sealer;
use crate::store::StoreError;
use crate::upstream::UpstreamIdentity;
use crate::webhooks::events::{self, EventType};

pub use repo::User;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the user is disabled")]
    Disabled { user_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub user_id: String,
    pub identity_id: String,
    pub new_user: bool,
}

/// Whether Portico treats `identity`'s address as verified: the provider said so, and the
/// provider is trusted for e-mail. The downstream `email_verified` claim is this value.
pub fn vouched(identity: &UpstreamIdentity, trust_email: bool) -> bool {
    trust_email && identity.email_verified && identity.email.is_some()
}

/// Applies a successful upstream login inside the caller's transaction: finds, links or
/// creates the user, writes its claims, stores the upstream tokens sealed, and records
/// `user.created` / `identity.linked`.
pub async fn apply_login(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    identity: &UpstreamIdentity,
    trust_email: bool,
) -> Result<LoginOutcome, LoginError> {
    let provider = identity.provider.as_str();
    let existing = identities::find_by_subject_in(conn, provider, &identity.subject).await?;
    let (user_id, identity_id, new_user) = match existing {
        Some((identity_id, user_id)) => (user_id, identity_id, false),
        None => {
            let linked = match (&identity.email, vouched(identity, trust_email)) {
                (Some(email), true) => repo::verified_holder_in(conn, email).await?,
                _ => None,
            };
            let (user_id, new_user) = match linked {
                Some((user_id, _)) => (user_id, false),
                None => {
                    let user_id = uuid::Uuid::new_v4().to_string();
                    repo::insert_in(conn, &user_id).await?;
                    (user_id, true)
                }
            };
            let identity_id = uuid::Uuid::new_v4().to_string();
            identities::insert_in(conn, &identity_id, &user_id, provider, &identity.subject)
                .await?;
            let (event, data) = if new_user {
                let data =
                    json!({ "user_id": user_id, "provider": provider, "email": identity.email });
                (EventType::UserCreated, data)
            } else {
                (
                    EventType::IdentityLinked,
                    json!({
                        "user_id": user_id,
                        "provider": provider,
                        "identity_id": identity_id,
                        "via": "verified_email",
                    }),
                )
            };
            events::record(&mut *conn, event, data).await?;
            (user_id, identity_id, new_user)
        }
    };
    let user = repo::find_in(conn, &user_id).await?;
    if user.is_none_or(|u| u.disabled) {
        return Err(LoginError::Disabled { user_id });
    }
    update_claims(conn, sealer, &user_id, &identity_id, identity, trust_email).await?;
    repo::logged_in_in(conn, &user_id).await?;
    Ok(LoginOutcome {
        user_id,
        identity_id,
        new_user,
    })
}

/// Copies an identity's fresh claims to the identity row and to its user, and stores the
/// upstream tokens that came (sealed to the identity row). The identity row keeps what the
/// provider said, less the groups in another provider's namespace ([`without_foreign`]); the
/// user's `email_verified` is [`vouched`]. Returns the groups as stored.
pub async fn update_claims(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    user_id: &str,
    identity_id: &str,
    identity: &UpstreamIdentity,
    trust_email: bool,
) -> Result<Vec<String>, StoreError> {
    let identity = &without_foreign(conn, identity).await?;
    identities::set_claims_in(conn, identity_id, identity).await?;
    if let Some(tokens) = &identity.tokens {
        let sealed = identities::SealedTokens::seal(sealer, identity_id, tokens);
        identities::store_tokens_in(conn, identity_id, &sealed).await?;
    }
    let verified_by = vouched(identity, trust_email).then(|| identity.provider.as_str());
    repo::set_claims_in(conn, user_id, identity, verified_by).await?;
    Ok(identity.groups.clone())
}

/// `identity` without the groups that start with another provider's `group_prefix`
/// (`claims::pipeline::drop_foreign`), warned about by provider and count. Every write of an
/// identity's claims passes here, so no login, refresh or link stores such a name, whatever
/// the connector and however recently another provider's prefix changed.
pub async fn without_foreign(
    conn: &mut AnyConnection,
    identity: &UpstreamIdentity,
) -> Result<UpstreamIdentity, StoreError> {
    let provider = identity.provider.as_str();
    let foreign = crate::providers::repo::foreign_prefixes_in(conn, provider).await?;
    let mut identity = identity.clone();
    let dropped = crate::claims::pipeline::drop_foreign(&mut identity.groups, &foreign);
    crate::claims::pipeline::warn_foreign(provider, dropped);
    Ok(identity)
}
