//! Clients as admins manage them, through the API and the pages: each change and its audit
//! entry commit in one transaction (`clients::repo` makes the change on it).

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::admin::http::error::{Classify, Fault};
use crate::admin::http::pagination::{Page, PageRequest};
use crate::admin::http::validation::{self, FieldErrors};
use crate::admin::{Caller, http::time};
use crate::claims::ClaimSelection;
use crate::clients::repo;
use crate::clients::{
    Client, ClientError, ClientId, ClientType, DEFAULT_SCOPES, GrantType, GroupFilterLists,
    NewClient, RedirectUri, Rules,
};
use crate::grants::refresh::{self, Owner};
use crate::keys::SigningAlg;
use crate::state::AppState;
use crate::upstream::ProviderId;

/// A client as the admin API shows it: never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientView {
    /// The same as `client_id`.
    pub id: String,
    pub client_id: String,
    pub name: String,
    /// `confidential` or `public`.
    #[serde(rename = "type")]
    pub client_type: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    /// The providers whose users may use this client; empty: every enabled provider. Enforced
    /// on every grant as the list is now: `/authorize` (an SSO session from another provider
    /// answers nothing), the end of an upstream login, the authorization_code and
    /// refresh_token grants (`invalid_grant`; the refresh token's family is revoked),
    /// introspection of refresh tokens and the broker (403 `access_denied`).
    pub allowed_providers: Vec<String>,
    /// Resource indicators (RFC 8707) the client may ask tokens for; empty: none.
    pub allowed_resources: Vec<String>,
    /// Declared in portico.toml: read-only here.
    pub managed_by_config: bool,
    /// A development client: it may register `http://localhost` redirect URIs (matched
    /// exactly, port included). For local development only.
    pub development: bool,
    /// The user claims the client receives (ID token, userinfo, introspection); `null`: every
    /// claim its scopes give. The protocol claims (`iss`, `sub`, `aud`, ...) are always there.
    pub claims: Option<Vec<String>>,
    /// Which of the user's groups the client sees in the `groups` claim.
    pub group_filter: GroupFilterLists,
    /// RFC 3339.
    pub created_at: String,
    #[serde(skip)]
    pub created_at_secs: i64,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        Self {
            id: c.client_id.to_string(),
            client_id: c.client_id.to_string(),
            name: c.name.clone(),
            client_type: c.client_type.as_str().to_owned(),
            redirect_uris: texts(&c.redirect_uris, |u| u.as_str()),
            post_logout_redirect_uris: texts(&c.post_logout_redirect_uris, |u| u.as_str()),
            grant_types: texts(&c.grant_types, |g| g.as_str()),
            scopes: c.scopes.clone(),
            allowed_providers: c.allowed_providers.iter().map(|p| p.to_string()).collect(),
            allowed_resources: texts(&c.allowed_resources, |r| r.as_str()),
            managed_by_config: c.managed_by_config,
            development: c.development,
            claims: c.claims.as_ref().map(|s| s.names().to_vec()),
            group_filter: GroupFilterLists::of(&c.group_filter),
            created_at: time::rfc3339(c.created_at),
            created_at_secs: c.created_at,
        }
    }
}

/// Each item's text.
fn texts<T>(items: &[T], text: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|item| text(item).to_owned()).collect()
}

/// A new client or the new state of one. `client_id` and `type` are fixed once created.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    /// 1-128 visible ASCII characters; required on creation, ignored on update.
    #[serde(default)]
    pub client_id: Option<String>,
    pub name: String,
    /// `confidential` (default) or `public`.
    #[serde(rename = "type", default)]
    pub client_type: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Default: `authorization_code`, `refresh_token`.
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    /// Default: `openid profile email groups offline_access`.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Provider ids; empty: every enabled provider. Enforced on every grant as the list is
    /// then: removing a provider refuses the refresh tokens (`invalid_grant`, family revoked),
    /// unredeemed codes and broker access of users who signed in through it, and stops SSO
    /// sessions from it answering this client.
    #[serde(default)]
    pub allowed_providers: Vec<String>,
    /// Resource indicators (absolute URIs, RFC 8707) the client may ask tokens for; a token
    /// request naming any other `resource` is refused with `invalid_target`. Empty: none.
    #[serde(default)]
    pub allowed_resources: Vec<String>,
    /// A development client may register `http://localhost[:port]/path` redirect URIs, for
    /// local development only (default false). Turning it off is refused while such URIs remain.
    #[serde(default)]
    pub development: bool,
    /// The user claims the client receives, by name (at most 100); absent or `null`: every
    /// claim its scopes give, as without the setting. It only removes: scopes still decide
    /// what there is. Protocol claims (`iss`, `sub`, `aud`, `exp`, `iat`, `auth_time`, `nonce`,
    /// `acr`, `amr`, `azp`, `sid`, `at_hash`, `scope`, `client_id`, `jti`) are always present
    /// and refused here. Applies to the ID token, userinfo and introspection.
    #[serde(default)]
    pub claims: Option<Vec<String>>,
    /// Which of the user's groups the client sees: patterns (a glob with `*` and `?`, or a
    /// `/regex/`), each matching a whole group name, at most 256 characters and 100 per list.
    /// Absent: every group.
    #[serde(default)]
    pub group_filter: GroupFilterLists,
}

impl ClientInput {
    /// Checks every field and the rules across them, naming each bad one in plain words, all at
    /// once. `current` is the client being replaced (its `client_id` is the path's).
    pub fn validate(&self, current: Option<&ClientView>) -> Result<NewClient, FieldErrors> {
        let mut errors = FieldErrors::new();
        let raw_id = current
            .map(|c| c.client_id.as_str())
            .or(self.client_id.as_deref())
            .unwrap_or("")
            .trim();
        let id = ClientId::parse(raw_id)
            .map_err(|e| errors.add("client_id", e))
            .ok();
        if self.name.trim().is_empty() {
            errors.add(
                "name",
                "Enter a name: what admins and users see for this application, e.g. Wiki",
            );
        }
        let name = validation::label(&mut errors, "name", &self.name, 100);
        let client_type = ClientType::parse(self.client_type.as_deref().unwrap_or("confidential"))
            .map_err(|e| errors.add("type", e))
            .ok();
        let development = self.development;
        let uris = |errors: &mut FieldErrors, field: &str, list: &[String]| {
            list.iter()
                .filter(|u| !u.trim().is_empty())
                .filter_map(|u| validation::redirect_uri(errors, field, u, development))
                .collect::<Vec<_>>()
        };
        let redirect_uris = uris(&mut errors, "redirect_uris", &self.redirect_uris);
        let post_logout_redirect_uris = uris(
            &mut errors,
            "post_logout_redirect_uris",
            &self.post_logout_redirect_uris,
        );
        if current.is_some_and(|c| c.development) && !development {
            let given = self
                .redirect_uris
                .iter()
                .chain(&self.post_logout_redirect_uris);
            let localhost = given
                .filter_map(|u| crate::clients::RedirectUri::parse(u.trim()).ok())
                .find(|u| u.is_development());
            if let Some(uri) = localhost {
                errors.add(
                    "development",
                    format!(
                        "This client cannot stop being a development client while it has the \
                         http://localhost URI {uri}: remove its http://localhost URIs first",
                        uri = uri.as_str()
                    ),
                );
            }
        }
        let grant_types: Vec<GrantType> = match &self.grant_types {
            None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            Some(list) => list
                .iter()
                .filter_map(|g| {
                    GrantType::parse(g.trim()).or_else(|| {
                        errors.add(
                            "grant_types",
                            format!(
                                "“{g}” is not a grant type: choose from authorization_code, \
                                 refresh_token and client_credentials"
                            ),
                        );
                        None
                    })
                })
                .collect(),
        };
        let scopes: Vec<String> = match &self.scopes {
            None => DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            Some(list) => list
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        };
        let allowed_providers: Vec<ProviderId> = self
            .allowed_providers
            .iter()
            .filter(|p| !p.trim().is_empty())
            .filter_map(|p| {
                ProviderId::parse(p.trim())
                    .map_err(|_| {
                        errors.add(
                            "allowed_providers",
                            format!(
                                "“{}” is not a provider ID: choose providers from the list \
                                 (lower-case letters, digits and -)",
                                p.trim()
                            ),
                        )
                    })
                    .ok()
            })
            .collect();
        let listed: Vec<String> = self
            .allowed_resources
            .iter()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect();
        let allowed_resources = crate::clients::parse_resources(&listed)
            .map_err(|e| errors.add("allowed_resources", e))
            .unwrap_or_default();
        let claims = self
            .claims
            .as_deref()
            .map(ClaimSelection::parse)
            .transpose()
            .map_err(|e| errors.add("claims", e.to_string()))
            .ok()
            .flatten();
        let group_filter = self
            .group_filter
            .parse()
            .map_err(|e| errors.add("group_filter", e.to_string()))
            .unwrap_or_default();
        // The rules across fields, each on the field it names, beside the fields' own errors.
        let rules = Rules {
            client_type,
            grant_types: &grant_types,
            redirect_uris: &redirect_uris,
            post_logout_redirect_uris: &post_logout_redirect_uris,
            scopes: &scopes,
            development,
        };
        let checks_grants = self.grant_types.as_ref().is_none_or(|g| !g.is_empty());
        for (field, problem) in rules.problems() {
            // An unknown grant type already says what to choose.
            if field != "grant_types" || checks_grants || errors.get(field).is_none() {
                errors.add(field, problem);
            }
        }
        let (Some(client_id), Some(client_type)) = (id, client_type) else {
            return Err(errors);
        };
        errors.or_ok(NewClient {
            client_id,
            name,
            client_type,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            scopes,
            allowed_providers,
            allowed_resources,
            id_token_alg: SigningAlg::RS256,
            access_token_ttl: None,
            id_token_ttl: None,
            refresh_token_ttl: None,
            development,
            claims,
            group_filter,
        })
    }
}

/// What creation and rotation return: the client and, once, its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: ClientView,
    /// Shown this once; absent for public clients.
    pub client_secret: Option<String>,
    /// The issuer to configure in the application.
    pub issuer: String,
}

impl Classify for ClientError {
    fn fault(self) -> Fault {
        match self {
            ClientError::NotFound(_) => Fault::NotFound,
            ClientError::Exists(_) => Fault::Taken("client_id"),
            ClientError::ManagedByConfig(_) => Fault::Conflict,
            ClientError::Invalid(_) => Fault::Field("type"),
            ClientError::Store(e) => Fault::Store(e),
        }
    }
}

pub async fn all(state: &AppState) -> Result<Vec<ClientView>, crate::store::StoreError> {
    let mut clients: Vec<ClientView> = crate::clients::repo::list(&state.store)
        .await?
        .iter()
        .map(ClientView::from)
        .collect();
    clients.sort_by(|a, b| (b.created_at_secs, &b.id).cmp(&(a.created_at_secs, &a.id)));
    Ok(clients)
}

pub async fn list(
    state: &AppState,
    page: &PageRequest,
) -> Result<Page<ClientView>, crate::store::StoreError> {
    let rows =
        crate::clients::repo::page(&state.store, page.cursor.as_ref(), page.limit + 1).await?;
    let views = rows.iter().map(ClientView::from).collect();
    Ok(page.of(views, |c| (c.created_at_secs, c.id.clone())))
}

pub async fn get(state: &AppState, client_id: &str) -> Result<ClientView, ClientError> {
    crate::clients::repo::find(&state.store, client_id)
        .await?
        .map(|c| ClientView::from(&c))
        .ok_or_else(|| ClientError::NotFound(client_id.to_owned()))
}

fn details(c: &ClientView) -> serde_json::Value {
    json!({
        "name": c.name,
        "type": c.client_type,
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "grant_types": c.grant_types,
        "scopes": c.scopes,
        "allowed_providers": c.allowed_providers,
        "allowed_resources": c.allowed_resources,
        "development": c.development,
        "claims": c.claims,
        "group_filter": c.group_filter,
    })
}

/// Records `action` on the client in the change's transaction, then commits both.
async fn audited(
    tx: crate::store::WriteTx,
    caller: &Caller,
    action: &str,
    client_id: &str,
    details: serde_json::Value,
) -> Result<(), ClientError> {
    let target = format!("client:{client_id}");
    Ok(crate::audit::commit_with(tx, caller, action, &target, details).await?)
}

fn with_secret(
    state: &AppState,
    client: ClientView,
    secret: Option<SecretString>,
) -> ClientWithSecret {
    ClientWithSecret {
        client,
        client_secret: secret.map(|s| s.expose_secret().to_owned()),
        issuer: state.settings.server.issuer.as_str().to_owned(),
    }
}

/// Creates a client (a confidential one with a new secret, returned here only).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    new: &NewClient,
) -> Result<ClientWithSecret, ClientError> {
    let mut tx = state.store.begin_write().await?;
    let (client, secret) =
        repo::create_in(&mut tx, new, &state.settings.oidc.client_lifetimes()).await?;
    let view = ClientView::from(&client);
    audited(tx, caller, "client.created", &view.id, details(&view)).await?;
    Ok(with_secret(state, view, secret))
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    new: &NewClient,
) -> Result<ClientView, ClientError> {
    let mut tx = state.store.begin_write().await?;
    let view = ClientView::from(&repo::update_in(&mut tx, new).await?);
    audited(tx, caller, "client.updated", &view.id, details(&view)).await?;
    Ok(view)
}

/// Adds `uri` to the client's redirect URIs (by the rule for registering one), with its audit
/// entry, in one transaction; a URI already registered is left as it is.
pub async fn add_redirect_uri(
    state: &AppState,
    caller: &Caller,
    client_id: &str,
    uri: &str,
) -> Result<ClientView, ClientError> {
    let mut tx = state.store.begin_write().await?;
    let mut new = NewClient::of(&repo::fetch_in(&mut tx, client_id).await?);
    let uri = RedirectUri::register(uri, new.development)
        .map_err(|e| ClientError::Invalid(e.to_string()))?;
    if !new.redirect_uris.contains(&uri) {
        new.redirect_uris.push(uri.clone());
    }
    let view = ClientView::from(&repo::update_in(&mut tx, &new).await?);
    let mut entry = details(&view);
    entry["redirect_uri_added"] = json!(uri.as_str());
    audited(tx, caller, "client.updated", &view.id, entry).await?;
    Ok(view)
}

pub async fn rotate_secret(
    state: &AppState,
    caller: &Caller,
    client_id: &str,
) -> Result<ClientWithSecret, ClientError> {
    let mut tx = state.store.begin_write().await?;
    let secret = repo::rotate_secret_in(&mut tx, client_id).await?;
    let view = ClientView::from(&repo::fetch_in(&mut tx, client_id).await?);
    audited(tx, caller, "client.secret_rotated", client_id, json!({})).await?;
    Ok(with_secret(state, view, Some(secret)))
}

pub async fn delete(
    state: &AppState,
    caller: &Caller,
    client_id: &str,
) -> Result<ClientView, ClientError> {
    let mut tx = state.store.begin_write().await?;
    let view = ClientView::from(&repo::delete_in(&mut tx, client_id).await?);
    // Nothing issued to a deleted client may outlive it.
    refresh::revoke_all_in(&mut tx, Owner::Client(client_id)).await?;
    audited(tx, caller, "client.deleted", client_id, details(&view)).await?;
    Ok(view)
}
