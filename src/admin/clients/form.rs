//! The client form: one set of fields, drawn by one partial (`admin/client_form.html`), for the
//! create form on `/admin/clients` and the edit form on `/admin/clients/{id}`. Closed sets are
//! choices (the type a select, grant types and allowed providers checkboxes, development a
//! checkbox, limiting the claims a checkbox beside the list of names); group patterns are typed
//! one per line, since a group name may hold spaces. A form sent back with errors keeps what
//! was typed and ticked, and shows every error at once beside its field, the first of them
//! focused.

use crate::admin::clients::service::{ClientInput, ClientView};
use crate::admin::http::pages::Pairs;
use crate::admin::http::validation::FieldErrors;
use crate::clients::{DEFAULT_SCOPES, GrantType, GroupFilterLists};
use crate::store::{Store, StoreError};

/// The fields in the order the form shows them: the first with an error takes the focus.
const ORDER: [&str; 12] = [
    "client_id",
    "name",
    "type",
    "development",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "scopes",
    "allowed_providers",
    "allowed_resources",
    "claims",
    "group_filter",
];

/// A list as typed in a text field: one item per line or separated by spaces.
pub(super) fn words(raw: &str) -> Vec<String> {
    raw.split_whitespace().map(str::to_owned).collect()
}

/// A list typed one item per line (items may hold spaces), blank lines left out.
fn lines(raw: &str) -> Vec<String> {
    raw.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What the form shows: the stored client (or the defaults of a new one) at first, the admin's
/// input after an error.
#[derive(Debug, Clone)]
pub struct ClientValues {
    /// Only on the create form.
    pub client_id: String,
    /// `confidential` or `public`.
    pub client_type: String,
    pub name: String,
    /// One per line.
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub grant_types: Vec<String>,
    /// Separated by spaces.
    pub scopes: String,
    pub allowed_providers: Vec<String>,
    /// One per line.
    pub allowed_resources: String,
    pub development: bool,
    /// Whether the client receives only the claims named in `claims`.
    pub limit_claims: bool,
    /// Separated by spaces.
    pub claims: String,
    /// Group patterns, one per line.
    pub group_allow: String,
    pub group_deny: String,
}

impl ClientValues {
    /// A new client's: confidential, the authorization code flow with refresh tokens, the
    /// default scopes.
    pub fn new_client() -> Self {
        Self {
            client_id: String::new(),
            client_type: "confidential".into(),
            name: String::new(),
            redirect_uris: String::new(),
            post_logout_redirect_uris: String::new(),
            grant_types: vec![
                GrantType::AuthorizationCode.as_str().into(),
                GrantType::RefreshToken.as_str().into(),
            ],
            scopes: DEFAULT_SCOPES.join(" "),
            allowed_providers: Vec::new(),
            allowed_resources: String::new(),
            development: false,
            limit_claims: false,
            claims: String::new(),
            group_allow: String::new(),
            group_deny: String::new(),
        }
    }

    pub fn of(client: &ClientView) -> Self {
        Self {
            client_id: client.client_id.clone(),
            client_type: client.client_type.clone(),
            name: client.name.clone(),
            redirect_uris: client.redirect_uris.join("\n"),
            post_logout_redirect_uris: client.post_logout_redirect_uris.join("\n"),
            grant_types: client.grant_types.clone(),
            scopes: client.scopes.join(" "),
            allowed_providers: client.allowed_providers.clone(),
            allowed_resources: client.allowed_resources.join("\n"),
            development: client.development,
            limit_claims: client.claims.is_some(),
            claims: client.claims.as_deref().unwrap_or_default().join(" "),
            group_allow: client.group_filter.allow.join("\n"),
            group_deny: client.group_filter.deny.join("\n"),
        }
    }

    pub fn posted(form: &Pairs) -> Self {
        Self {
            client_id: form.one("client_id"),
            client_type: form.one("type"),
            name: form.one("name"),
            redirect_uris: form.one("redirect_uris"),
            post_logout_redirect_uris: form.one("post_logout_redirect_uris"),
            grant_types: form.all("grant_types"),
            scopes: form.one("scopes"),
            allowed_providers: form.all("allowed_providers"),
            allowed_resources: form.one("allowed_resources"),
            development: form.one("development") == "true",
            limit_claims: form.one("limit_claims") == "true",
            claims: form.one("claims"),
            group_allow: form.one("group_allow"),
            group_deny: form.one("group_deny"),
        }
    }

    /// The API's request body for these values. No box ticked is a choice to validate (and
    /// refuse), not "use the default".
    pub fn input(&self) -> ClientInput {
        let given = |v: &str| Some(v.to_owned()).filter(|v| !v.is_empty());
        ClientInput {
            client_id: given(&self.client_id),
            name: self.name.clone(),
            client_type: given(&self.client_type),
            redirect_uris: words(&self.redirect_uris),
            post_logout_redirect_uris: words(&self.post_logout_redirect_uris),
            grant_types: Some(self.grant_types.clone()),
            scopes: Some(words(&self.scopes)),
            allowed_providers: self.allowed_providers.clone(),
            allowed_resources: words(&self.allowed_resources),
            development: self.development,
            claims: self.limit_claims.then(|| words(&self.claims)),
            group_filter: GroupFilterLists {
                allow: lines(&self.group_allow),
                deny: lines(&self.group_deny),
            },
        }
    }
}

/// A provider a client may be limited to: a checkbox on the form.
#[derive(Debug, Clone)]
pub struct ProviderChoice {
    pub id: String,
    pub label: String,
    pub enabled: bool,
    /// Named by the client but no longer configured.
    pub unknown: bool,
}

/// Every configured provider, and any of `named` that is gone.
async fn provider_choices(
    store: &Store,
    named: &[String],
) -> Result<Vec<ProviderChoice>, StoreError> {
    let mut choices: Vec<ProviderChoice> = crate::providers::repo::all(store)
        .await?
        .into_iter()
        .map(|p| ProviderChoice {
            id: p.id.to_string(),
            label: p.display_name,
            enabled: p.enabled,
            unknown: false,
        })
        .collect();
    for id in named {
        if !choices.iter().any(|c| &c.id == id) {
            choices.push(ProviderChoice {
                id: id.clone(),
                label: id.clone(),
                enabled: false,
                unknown: true,
            });
        }
    }
    Ok(choices)
}

/// The form as the partial draws it.
#[derive(Debug, Clone)]
pub struct ClientForm {
    pub values: ClientValues,
    pub providers: Vec<ProviderChoice>,
    pub errors: FieldErrors,
    /// The create form (client ID and type are asked), or the edit form (they are fixed).
    pub creating: bool,
}

impl ClientForm {
    /// The form with `values`; `stored` are the providers the client names now (kept as
    /// choices even when they are gone).
    pub async fn new(
        store: &Store,
        values: ClientValues,
        stored: &[String],
        creating: bool,
    ) -> Result<Self, StoreError> {
        let mut named = values.allowed_providers.clone();
        named.extend(stored.iter().cloned());
        Ok(Self {
            providers: provider_choices(store, &named).await?,
            values,
            errors: FieldErrors::new(),
            creating,
        })
    }

    pub fn grant_names(&self) -> Vec<&'static str> {
        GrantType::ALL.iter().map(|g| g.as_str()).collect()
    }

    pub fn has_grant(&self, grant: &str) -> bool {
        self.values.grant_types.iter().any(|g| g == grant)
    }

    pub fn allows(&self, provider: &str) -> bool {
        self.values.allowed_providers.iter().any(|p| p == provider)
    }

    pub fn is_public(&self) -> bool {
        self.values.client_type == "public"
    }

    /// The error beside `field`, if any.
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }

    pub fn invalid(&self, field: &str) -> bool {
        self.errors.get(field).is_some()
    }

    /// Whether `field` takes the focus: it is the first, in the form's order, with an error
    /// (`autofocus`: no script).
    pub fn focus(&self, field: &str) -> bool {
        ORDER.iter().find(|f| self.invalid(f)) == Some(&field)
    }

    /// The `aria-describedby` of `field`: its error when it has one, else its hint.
    pub fn described_by(&self, field: &str) -> String {
        let which = if self.invalid(field) { "error" } else { "hint" };
        format!("client-{field}-{which}")
    }
}
