//! Resources declared in portico.toml (`[[providers]]`, `[[clients]]`,
//! `[[webhooks.endpoints]]`): what the start changes to make the database match the file.
//!
//! One [`Plan`] is computed from the file and the database and then applied, in one
//! transaction with an audit entry (actor `config`) per resource it removes or disables. `portico
//! config diff` prints the same plan without applying it, so the two cannot disagree.
//!
//! The file manages only what it created (`managed_by_config`): a resource an admin made is
//! never changed or removed by it, and a declared id that an admin's resource already has
//! stops the start (the file does not take over what it did not create). A managed resource
//! no longer declared is removed, or disabled where removing would lose what users have:
//! - a client is deleted and every refresh token issued to it revoked (nothing issued to a
//!   client the operator removed may outlive it; as an admin's delete);
//! - a provider users are linked to is disabled, not deleted: its identities (with the upstream
//!   tokens sealed there) and users stay, so declaring it again brings them back; the access it
//!   gave ends (its SSO sessions, the refresh tokens issued from its identities, their
//!   unredeemed codes, logins waiting at it). One nobody is linked to is deleted;
//! - a webhook endpoint is deleted with its pending deliveries and its delivery log (a log of
//!   attempts at an endpoint that no longer exists; the events themselves stay until the janitor
//!   takes them).

use std::fmt;

use crate::clients::{Client, ClientError, Lifetimes, NewClient};
use crate::config::Settings;
use crate::crypto::{Sealer, TokenDigest};
use crate::grants::refresh::{self, Owner};
use crate::grants::{codes, pending, sessions};
use crate::store::{Store, StoreError};
use crate::webhooks::managed::{self, ManagedError};

/// The audit log's actor for what the start does on the file's behalf.
pub const ACTOR: &str = "config";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Provider,
    Client,
    Webhook,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Provider => "provider",
            Kind::Client => "client",
            Kind::Webhook => "webhook",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
    Disable,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Disable => "disable",
        }
    }
}

/// One resource the start would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    pub id: String,
    pub action: Action,
    /// Why, for a removal: what goes and what stays.
    pub note: String,
}

/// What the next start changes, in the order it applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    fn push(&mut self, kind: Kind, id: &str, action: Action, note: impl Into<String>) {
        self.changes.push(Change {
            kind,
            id: id.to_owned(),
            action,
            note: note.into(),
        });
    }

    /// The removals and disablings (what the start audits).
    fn removals(&self, kind: Kind) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(move |c| c.kind == kind && matches!(c.action, Action::Delete | Action::Disable))
    }
}

/// `config diff`'s output: one line per change (action, kind, id, note), or a line saying
/// there is none.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return writeln!(f, "no changes: the database matches the configuration");
        }
        for c in &self.changes {
            write!(f, "{:<8}{:<9}{}", c.action.as_str(), c.kind.as_str(), c.id)?;
            if !c.note.is_empty() {
                write!(f, "  ({})", c.note)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeclaredError {
    #[error(
        "{} `{id}` in portico.toml has the id of one made in the admin UI or API; the file does \
         not take over what it did not create: give it another id, or delete the other one first",
        kind.as_str()
    )]
    Taken { kind: Kind, id: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for DeclaredError {
    fn from(e: sqlx::Error) -> Self {
        DeclaredError::Store(e.into())
    }
}

impl From<ClientError> for DeclaredError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Store(e) => DeclaredError::Store(e),
            other => DeclaredError::Invalid(other.to_string()),
        }
    }
}

impl From<ManagedError> for DeclaredError {
    fn from(e: ManagedError) -> Self {
        match e {
            ManagedError::Webhook(crate::webhooks::WebhookError::Store(e)) => {
                DeclaredError::Store(e)
            }
            other => DeclaredError::Invalid(other.to_string()),
        }
    }
}

const REMOVED: &str = "removed from portico.toml";

/// The plan for `settings` against the database as `conn` sees it; reads only.
pub async fn plan_in(
    conn: &mut sqlx::AnyConnection,
    sealer: &Sealer,
    settings: &Settings,
) -> Result<Plan, DeclaredError> {
    let mut plan = Plan::default();
    plan_webhooks(conn, sealer, settings, &mut plan).await?;
    plan_providers(conn, sealer, settings, &mut plan).await?;
    plan_clients(conn, settings, &mut plan).await?;
    Ok(plan)
}

async fn plan_webhooks(
    conn: &mut sqlx::AnyConnection,
    sealer: &Sealer,
    settings: &Settings,
    plan: &mut Plan,
) -> Result<(), DeclaredError> {
    let declared = &settings.webhooks.endpoints;
    for d in declared {
        let checked = managed::check(d, &settings.webhooks)?;
        match managed::find_in(conn, &d.id).await? {
            None => plan.push(Kind::Webhook, &d.id, Action::Create, ""),
            Some(stored) if !stored.managed => return Err(taken(Kind::Webhook, &d.id)),
            Some(stored) => {
                if managed::differs_in(conn, sealer, &checked, &stored).await? {
                    plan.push(Kind::Webhook, &d.id, Action::Update, "");
                }
            }
        }
    }
    for id in managed::managed_ids_in(conn).await? {
        if !declared.iter().any(|d| d.id == id) {
            let note = format!("{REMOVED}; its pending deliveries and delivery log go with it");
            plan.push(Kind::Webhook, &id, Action::Delete, note);
        }
    }
    Ok(())
}

async fn plan_providers(
    conn: &mut sqlx::AnyConnection,
    sealer: &Sealer,
    settings: &Settings,
    plan: &mut Plan,
) -> Result<(), DeclaredError> {
    use crate::providers::repo;
    let declared = &settings.providers;
    for p in declared {
        let id = p.id.as_str();
        match repo::find_in(conn, id).await? {
            None => {
                crate::providers::setup(p).map_err(DeclaredError::Invalid)?;
                plan.push(Kind::Provider, id, Action::Create, "");
            }
            Some(stored) if !stored.managed_by_config => return Err(taken(Kind::Provider, id)),
            Some(stored) => {
                if stored
                    .differs_from(p, sealer)
                    .map_err(DeclaredError::Invalid)?
                {
                    plan.push(Kind::Provider, id, Action::Update, "");
                }
            }
        }
    }
    for id in repo::managed_ids_in(conn).await? {
        if declared.iter().any(|p| p.id.as_str() == id) {
            continue;
        }
        let linked = crate::users::identities::ids_of_provider_in(conn, &id)
            .await?
            .len();
        if linked == 0 {
            let note = format!("{REMOVED}; no user is linked to it");
            plan.push(Kind::Provider, &id, Action::Delete, note);
        } else if repo::find_in(conn, &id).await?.is_some_and(|p| p.enabled) {
            let note = format!(
                "{REMOVED}; {linked} linked identities are kept, its sessions and the refresh \
                 tokens issued from them end"
            );
            plan.push(Kind::Provider, &id, Action::Disable, note);
        }
    }
    Ok(())
}

async fn plan_clients(
    conn: &mut sqlx::AnyConnection,
    settings: &Settings,
    plan: &mut Plan,
) -> Result<(), DeclaredError> {
    use crate::clients::repo;
    let defaults = settings.oidc.client_lifetimes();
    let declared = &settings.clients;
    for c in declared {
        let (new, digest) = repo::declared(c)?;
        let id = new.client_id.as_str();
        match repo::find_in(conn, id).await? {
            None => plan.push(Kind::Client, id, Action::Create, ""),
            Some(stored) if !stored.managed_by_config => return Err(taken(Kind::Client, id)),
            Some(stored) => {
                if client_differs(&stored, &new, digest.as_ref(), &defaults) {
                    plan.push(Kind::Client, id, Action::Update, "");
                }
            }
        }
    }
    for id in repo::managed_ids_in(conn).await? {
        if !declared.iter().any(|c| c.client_id == id) {
            let note = format!("{REMOVED}; every refresh token issued to it is revoked");
            plan.push(Kind::Client, &id, Action::Delete, note);
        }
    }
    Ok(())
}

/// Whether storing `new` (with the secret `digest`) would change `stored`.
fn client_differs(
    stored: &Client,
    new: &NewClient,
    digest: Option<&TokenDigest>,
    defaults: &Lifetimes,
) -> bool {
    let ttl = |set: Option<u64>, default: u64| set.unwrap_or(default) as i64;
    let same_digest = match (&stored.secret_digest, digest) {
        (Some(a), Some(b)) => a.as_bytes() == b.as_bytes(),
        (None, None) => true,
        _ => false,
    };
    !(same_digest
        && stored.name == new.name
        && stored.client_type == new.client_type
        && stored.redirect_uris == new.redirect_uris
        && stored.post_logout_redirect_uris == new.post_logout_redirect_uris
        && stored.grant_types == new.grant_types
        && stored.scopes == new.scopes
        && stored.allowed_providers == new.allowed_providers
        && stored.allowed_resources == new.allowed_resources
        && stored.id_token_alg == new.id_token_alg
        && stored.access_token_ttl == ttl(new.access_token_ttl, defaults.access_token_secs)
        && stored.id_token_ttl == ttl(new.id_token_ttl, defaults.id_token_secs)
        && stored.refresh_token_ttl == ttl(new.refresh_token_ttl, defaults.refresh_token_secs)
        && stored.development == new.development
        && stored.claims == new.claims
        && stored.group_filter == new.group_filter)
}

fn taken(kind: Kind, id: &str) -> DeclaredError {
    DeclaredError::Taken {
        kind,
        id: id.to_owned(),
    }
}

/// What `portico config diff` prints: the plan, computed on a read-only connection.
pub async fn diff(
    store: &Store,
    sealer: &Sealer,
    settings: &Settings,
) -> Result<Plan, DeclaredError> {
    let mut conn = store.pool().acquire().await?;
    plan_in(&mut conn, sealer, settings).await
}

/// Makes the database match the file, in one transaction: computes the plan inside it, upserts
/// every declared resource, removes or disables what the plan says with one audit entry each,
/// and returns the plan it applied. Several instances starting at once each apply what is left
/// (a removal already made by another is neither repeated nor audited twice).
pub async fn apply(
    store: &Store,
    sealer: &Sealer,
    settings: &Settings,
) -> Result<Plan, DeclaredError> {
    let mut tx = store.begin_write().await?;
    let plan = plan_in(&mut tx, sealer, settings).await?;

    for d in &settings.webhooks.endpoints {
        let checked = managed::check(d, &settings.webhooks)?;
        managed::upsert_in(&mut tx, sealer, &settings.webhooks, &checked).await?;
    }
    for c in plan.removals(Kind::Webhook) {
        if managed::delete_managed_in(&mut tx, &c.id).await? {
            let details = serde_json::json!({ "reason": REMOVED });
            let target = format!("webhook:{}", c.id);
            crate::audit::record(&mut tx, ACTOR, "webhook.deleted", &target, details, None).await?;
        }
    }

    for p in &settings.providers {
        crate::providers::repo::upsert_config_in(&mut tx, p, sealer).await?;
    }
    for c in plan.removals(Kind::Provider) {
        prune_provider(&mut tx, c).await?;
    }

    let defaults = settings.oidc.client_lifetimes();
    for c in &settings.clients {
        crate::clients::repo::upsert_config_in(&mut tx, c, &defaults).await?;
    }
    for c in plan.removals(Kind::Client) {
        prune_client(&mut tx, &c.id).await?;
    }
    tx.commit().await?;
    for c in &plan.changes {
        tracing::info!(
            action = c.action.as_str(),
            kind = c.kind.as_str(),
            id = %c.id,
            note = %c.note,
            "applied portico.toml"
        );
    }
    Ok(plan)
}

/// Deletes or disables a provider removed from the file, ending the access it gave.
async fn prune_provider(conn: &mut sqlx::AnyConnection, c: &Change) -> Result<(), DeclaredError> {
    use crate::providers::repo;
    let id = c.id.as_str();
    let (changed, action, reason) = match c.action {
        Action::Delete => (
            repo::delete_managed_in(conn, id).await?,
            "provider.deleted",
            "provider_deleted",
        ),
        _ => (
            repo::disable_managed_in(conn, id).await?,
            "provider.disabled",
            "provider_disabled",
        ),
    };
    if !changed {
        return Ok(());
    }
    let identity_ids = crate::users::identities::ids_of_provider_in(conn, id).await?;
    let revoked = refresh::revoke_of_identities_in(conn, &identity_ids).await?;
    let ended = sessions::end_provider_sessions_in(conn, id, reason).await?;
    codes::delete_unredeemed_of_identities_in(conn, &identity_ids).await?;
    pending::delete_of_provider_in(conn, id).await?;
    let details = serde_json::json!({
        "reason": REMOVED,
        "identities_kept": identity_ids.len(),
        "sessions_ended": ended,
        "refresh_tokens_revoked": revoked,
    });
    let target = format!("provider:{id}");
    crate::audit::record(conn, ACTOR, action, &target, details, None).await?;
    Ok(())
}

/// Deletes a client removed from the file and revokes every refresh token issued to it.
async fn prune_client(conn: &mut sqlx::AnyConnection, id: &str) -> Result<(), DeclaredError> {
    if !crate::clients::repo::delete_managed_in(conn, id).await? {
        return Ok(());
    }
    let revoked = refresh::revoke_all_in(conn, Owner::Client(id)).await?;
    let details = serde_json::json!({ "reason": REMOVED, "refresh_tokens_revoked": revoked });
    let target = format!("client:{id}");
    crate::audit::record(conn, ACTOR, "client.deleted", &target, details, None).await?;
    Ok(())
}
