//! Providers as admins manage them, through the API and the pages: each change and its audit
//! entry commit in one transaction (`providers::repo` makes the change on it), then the
//! cached connector is dropped so the change applies to the next login at once.

use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::admin::http::error::{Classify, Fault};
use crate::admin::http::pagination::{Page, PageRequest};
use crate::admin::{Caller, http::time};
use crate::grants::{codes, pending, refresh, sessions};
use crate::providers::Provider;
use crate::providers::repo::{self, ProviderError, ProviderWrite};
use crate::state::AppState;
use crate::store::StoreError;
use crate::upstream::ProviderKind;
use crate::upstream::kinds::{self, Shown};
use crate::users;

/// A provider as the admin API shows it: never its client secret. Its kind's options follow
/// the fields every provider has, and then what to register at the provider: `callback`
/// (`url`: the redirect URI) or, for saml, `saml_sp` (`entity_id`, `acs_url`, `metadata_url`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderView {
    pub id: String,
    /// `google`, `github`, `oidc` or `saml`.
    #[schema(value_type = String)]
    pub kind: ProviderKind,
    pub display_name: String,
    pub enabled: bool,
    pub client_id: String,
    /// Whether a client secret is stored (the secret itself is write-only).
    pub has_client_secret: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Empty: the kind's default scopes.
    pub scopes: Vec<String>,
    /// Scopes a service may ask the user to add through the token broker.
    pub incremental_scopes: Vec<String>,
    pub email_domains: Vec<String>,
    pub trust_email: bool,
    /// The kind's options that are set.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub options: Map<String, Value>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub shown: Shown,
    /// Declared in portico.toml: read-only here.
    pub managed_by_config: bool,
    /// RFC 3339.
    pub created_at: String,
    #[serde(skip)]
    pub created_at_secs: i64,
}

impl ProviderView {
    pub fn new(p: &Provider, issuer: &str) -> Self {
        let kind = kinds::find(p.kind);
        Self {
            id: p.id.to_string(),
            kind: p.kind,
            display_name: p.display_name.clone(),
            enabled: p.enabled,
            client_id: p.client_id.clone(),
            has_client_secret: p.has_secret(),
            issuer: p.issuer.clone().filter(|i| !i.is_empty()),
            scopes: p.scopes.clone(),
            incremental_scopes: p.incremental_scopes.clone(),
            email_domains: p.email_domains.clone(),
            trust_email: p.trust_email,
            options: kind.view(&p.settings),
            shown: kind.shown(&p.settings, issuer, p.id.as_str()),
            managed_by_config: p.managed_by_config,
            created_at: time::rfc3339(p.created_at),
            created_at_secs: p.created_at,
        }
    }
}

impl Classify for ProviderError {
    fn fault(self) -> Fault {
        match self {
            ProviderError::NotFound(_) => Fault::NotFound,
            ProviderError::Exists(_) => Fault::Taken("id"),
            ProviderError::ManagedByConfig(_) => Fault::Conflict,
            ProviderError::Store(e) => Fault::Store(e),
        }
    }
}

fn issuer(state: &AppState) -> &str {
    state.settings.server.issuer.as_str()
}

pub async fn all(state: &AppState) -> Result<Vec<ProviderView>, StoreError> {
    let mut providers: Vec<ProviderView> = crate::providers::repo::all(&state.store)
        .await?
        .iter()
        .map(|p| ProviderView::new(p, issuer(state)))
        .collect();
    providers.sort_by(|a, b| (b.created_at_secs, &b.id).cmp(&(a.created_at_secs, &a.id)));
    Ok(providers)
}

pub async fn list(state: &AppState, page: &PageRequest) -> Result<Page<ProviderView>, StoreError> {
    let rows =
        crate::providers::repo::page(&state.store, page.cursor.as_ref(), page.limit + 1).await?;
    let views = rows
        .iter()
        .map(|p| ProviderView::new(p, issuer(state)))
        .collect();
    Ok(page.of(views, |p| (p.created_at_secs, p.id.clone())))
}

/// The stored provider `id`, for validating an update against it.
pub async fn current(state: &AppState, id: &str) -> Result<Provider, ProviderError> {
    crate::providers::repo::find(&state.store, id)
        .await?
        .ok_or_else(|| ProviderError::NotFound(id.to_owned()))
}

/// A provider an admin is about to edit: it exists and the configuration file does not manage it.
/// Both faces ask before validating the input (which may fetch metadata), so a managed provider
/// gets its 409 first; the write checks again in its transaction.
pub async fn editable(state: &AppState, id: &str) -> Result<Provider, ProviderError> {
    let provider = current(state, id).await?;
    if provider.managed_by_config {
        return Err(ProviderError::ManagedByConfig(id.to_owned()));
    }
    Ok(provider)
}

pub async fn get(state: &AppState, id: &str) -> Result<ProviderView, ProviderError> {
    Ok(ProviderView::new(&current(state, id).await?, issuer(state)))
}

/// What the audit log keeps of a provider: never a secret, nor a metadata document.
fn details(p: &Provider, v: &ProviderView) -> Value {
    let mut details = json!({
        "kind": v.kind,
        "display_name": v.display_name,
        "enabled": v.enabled,
        "client_id": v.client_id,
        "issuer": v.issuer,
        "scopes": v.scopes,
        "incremental_scopes": v.incremental_scopes,
        "email_domains": v.email_domains,
        "trust_email": v.trust_email,
    });
    if let Value::Object(map) = &mut details {
        map.extend(kinds::find(p.kind).audit(&p.settings));
    }
    details
}

/// Records `action` in the change's transaction, commits both, and drops the cached connector.
async fn audited(
    state: &AppState,
    tx: crate::store::WriteTx,
    caller: &Caller,
    action: &str,
    provider: &Provider,
    details: serde_json::Value,
) -> Result<(), ProviderError> {
    let target = format!("provider:{}", provider.id);
    crate::audit::commit_with(tx, caller, action, &target, details).await?;
    state.connectors.forget(&provider.id);
    Ok(())
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    new: &ProviderWrite,
) -> Result<ProviderView, ProviderError> {
    let mut tx = state.store.begin_write().await?;
    let provider = repo::create_in(&mut tx, &state.sealer, new).await?;
    let view = ProviderView::new(&provider, issuer(state));
    let d = details(&provider, &view);
    audited(state, tx, caller, "provider.created", &provider, d).await?;
    Ok(view)
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    new: &ProviderWrite,
) -> Result<ProviderView, ProviderError> {
    let mut tx = state.store.begin_write().await?;
    let provider = repo::update_in(&mut tx, &state.sealer, new).await?;
    if !crate::providers::vouches_for_email(new.kind, new.trust_email, &new.settings) {
        users::repo::withdraw_verification_in(&mut tx, new.id.as_str()).await?;
    }
    let view = ProviderView::new(&provider, issuer(state));
    let mut d = details(&provider, &view);
    d["credential_changed"] = json!(!matches!(new.secret, repo::SecretChange::Keep));
    audited(state, tx, caller, "provider.updated", &provider, d).await?;
    Ok(view)
}

/// Enables or disables a provider: a disabled one offers no login and refreshes no identity;
/// its users and sessions stay.
pub async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    id: &str,
    enabled: bool,
) -> Result<ProviderView, ProviderError> {
    let mut tx = state.store.begin_write().await?;
    let provider = repo::set_enabled_in(&mut tx, id, enabled).await?;
    let view = ProviderView::new(&provider, issuer(state));
    let d = json!({ "enabled": enabled });
    audited(state, tx, caller, "provider.updated", &provider, d).await?;
    Ok(view)
}

/// What deleting a provider took with it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Removed {
    pub identities: u64,
    pub sessions_ended: u64,
    pub refresh_tokens_revoked: u64,
}

/// Deletes a provider. As Keycloak does when an identity provider is removed, the users stay
/// and their links to it (identities, with the upstream tokens sealed there) are deleted.
/// What those links still carried ends too, since nothing can check it upstream any more: the
/// SSO sessions that came through the provider (one `session.ended` each), the refresh tokens
/// issued from its identities, their unredeemed codes, logins waiting at it, and the e-mail
/// verifications it gave. All in one transaction with the audit entry.
pub async fn delete(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(ProviderView, Removed), ProviderError> {
    let mut tx = state.store.begin_write().await?;
    let provider = repo::delete_in(&mut tx, id).await?;
    let identity_ids = users::identities::ids_of_provider_in(&mut tx, id).await?;
    let removed = Removed {
        refresh_tokens_revoked: refresh::revoke_of_identities_in(&mut tx, &identity_ids).await?,
        sessions_ended: sessions::end_provider_sessions_in(&mut tx, id, "provider_deleted").await?,
        identities: {
            codes::delete_unredeemed_of_identities_in(&mut tx, &identity_ids).await?;
            pending::delete_of_provider_in(&mut tx, id).await?;
            users::repo::withdraw_verification_in(&mut tx, id).await?;
            users::identities::delete_of_provider_in(&mut tx, id).await?
        },
    };
    let view = ProviderView::new(&provider, issuer(state));
    let mut d = details(&provider, &view);
    d["identities_removed"] = json!(removed.identities);
    d["sessions_ended"] = json!(removed.sessions_ended);
    d["refresh_tokens_revoked"] = json!(removed.refresh_tokens_revoked);
    audited(state, tx, caller, "provider.deleted", &provider, d).await?;
    Ok((view, removed))
}

/// The largest upstream claim set a preview takes, in bytes (API body and form field alike).
pub const PREVIEW_MAX_BYTES: usize = 64 * 1024;

/// What a login through a provider would yield from an upstream claim set: its mapping and
/// claims pipeline run on it, exactly as at a login.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClaimsPreview {
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    /// After the prefix, filter, renames and cap.
    pub groups: Vec<String>,
    /// The static and extra claims, by name, as the ID token and userinfo carry them.
    #[schema(value_type = Object)]
    pub claims: Map<String, Value>,
    /// Set when `max_groups` cut the groups: how many passed and how many are kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
    /// Everything the rules cut, as a login would log it: groups in another provider's
    /// namespace, the cap (as `truncated`), extra claims left out. Empty when nothing was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The pasted claims are not usable, or a login with them would be refused.
    #[error("{0}")]
    Claims(String),
}

impl From<StoreError> for PreviewError {
    fn from(e: StoreError) -> Self {
        PreviewError::Provider(e.into())
    }
}

impl Classify for PreviewError {
    fn fault(self) -> Fault {
        match self {
            PreviewError::Provider(e) => e.fault(),
            PreviewError::Claims(_) => Fault::Field("claims"),
        }
    }
}

/// Pasted text as a claim set (the form; the API's body arrives parsed), bounded.
pub fn claims_from_text(text: &str) -> Result<Value, PreviewError> {
    if text.len() > PREVIEW_MAX_BYTES {
        return Err(PreviewError::Claims(format!(
            "The claims are larger than {} KiB.",
            PREVIEW_MAX_BYTES / 1024
        )));
    }
    serde_json::from_str(text)
        .map_err(|e| PreviewError::Claims(format!("The claims are not valid JSON: {e}.")))
}

/// Runs provider `id`'s mapping and claims pipeline over `claims` (a JSON object: for SAML,
/// attribute name to a list of values; for GitHub, `login`, `name`, `email` and `groups`).
pub async fn preview_claims(
    state: &AppState,
    id: &str,
    claims: &Value,
) -> Result<ClaimsPreview, PreviewError> {
    let provider = current(state, id).await?;
    let Value::Object(raw) = claims else {
        return Err(PreviewError::Claims(
            "Paste a JSON object of claims, e.g. {\"groups\": [\"admin\"]}.".into(),
        ));
    };
    let mut mapped = kinds::find(provider.kind)
        .preview(&provider.settings, &provider.id, raw)
        .map_err(|why| {
            PreviewError::Claims(format!("A login with these claims is refused: {why}"))
        })?;
    let foreign =
        crate::providers::repo::foreign_prefixes(&state.store, provider.id.as_str()).await?;
    mapped.claims.drop_foreign(&foreign);
    let notes = mapped.claims.notes();
    Ok(ClaimsPreview {
        email: mapped.email,
        email_verified: mapped.email_verified,
        name: mapped.name,
        picture: mapped.picture,
        groups: mapped.claims.groups,
        claims: mapped.claims.extra_claims,
        truncated: mapped.claims.truncated.map(|t| t.note()),
        notes,
    })
}
