//! Provider kinds: what each kind of upstream provider takes, checks, shows and builds,
//! declared once by its connector module ([`super::oidc`], [`super::google`], [`super::github`],
//! [`super::saml`]) as a [`Kind`], and listed in [`KINDS`].
//!
//! As in Dex (`server/connector.go`: one map from a connector type to its config, and the
//! config builds the connector), the core knows kinds only through this registry: `providers`
//! checks `[[providers]]` and builds connectors with it, the admin API and pages validate,
//! show and draw their forms with it, and none of them matches on a kind. So a new option of
//! a kind is a change to its connector module only.
//!
//! A kind's options are the keys beside the fields every provider has, named alike in
//! `[[providers]]`, in the admin API's body and in the row's `settings` JSON. One check
//! ([`AnyKind::check`]) serves the configuration file and the admin API, so both refuse the
//! same things with the same words, naming the field; an option of another kind is refused
//! rather than ignored (a `hosted_domains` on a GitHub provider would gate nothing).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use secrecy::SecretString;
use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::http::UpstreamHttp;
use super::saml::SamlContext;
use super::{Connector, Mapped, ProviderId, ProviderKind};

/// Every kind this build serves.
pub static KINDS: [&dyn AnyKind; 4] = [
    &super::oidc::Oidc,
    &super::google::Google,
    &super::github::Github,
    &super::saml::Saml,
];

/// The registry's entry for `kind`.
pub fn find(kind: ProviderKind) -> &'static dyn AnyKind {
    *KINDS
        .iter()
        .find(|k| k.kind() == kind)
        .expect("every ProviderKind is in KINDS")
}

/// The kind that has the option `name` (the first one, for the claims pipeline's options,
/// which every kind has: [`crate::claims::pipeline::OPTION_NAMES`]).
pub fn owner(name: &str) -> Option<&'static dyn AnyKind> {
    KINDS
        .iter()
        .copied()
        .find(|k| k.defaults().contains_key(name))
}

/// What a kind makes of one of the fields every provider has.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    Required,
    Optional,
    /// Refused, with the reason the message gives.
    Refused(&'static str),
}

/// What a connector module declares about its kind. [`AnyKind`], what the core uses, follows.
pub trait Kind: Sync + 'static {
    /// The options as written in `[[providers]]`, the API and `settings`, with their
    /// defaults. Its serde field names are the option names.
    type Options: Serialize + DeserializeOwned + Default + Send + Sync;
    const KIND: ProviderKind;
    /// The kind's name on the admin's "Add a provider" cards.
    const TITLE: &'static str;
    /// One line under the title on its card: what it connects to.
    const SUMMARY: &'static str;
    /// Who gives the admin the client ID and secret, as messages name it ("Enter the client
    /// secret GitHub gave you.").
    const ISSUED_BY: &'static str = "the provider";
    const CLIENT_ID: Need = Need::Required;
    const CLIENT_SECRET: Need = Need::Optional;
    const ISSUER: Need = Need::Optional;
    /// The row's scopes when none are given; empty lets the connector's default apply.
    const DEFAULT_SCOPES: &'static [&'static str] = &[];
    /// Whether the admin form offers "Test discovery" of the issuer.
    const DISCOVERY: bool = false;
    /// Whether its logins take OAuth scopes, so that a service may ask the user to grant more
    /// of them through the broker (`incremental_scopes`); SAML has none.
    const INCREMENTAL_SCOPES: bool = true;
    /// The admin form's inputs between the display name and the e-mail domains.
    const FORM: &'static [Field];

    /// Checks and normalises the options (`from_config`: they come from portico.toml).
    fn check(_options: &mut Self::Options, _from_config: bool) -> Result<(), Invalid> {
        Ok(())
    }

    /// Takes out the secret this kind keeps sealed beside the row, not in `settings`.
    fn take_key(_options: &mut Self::Options) -> Option<SecretString> {
        None
    }

    /// Checks what needs the network, when an admin saves; `before` is the stored options.
    fn verify<'a>(
        _options: &'a Self::Options,
        _before: Option<&'a Self::Options>,
        _http: &'a UpstreamHttp,
    ) -> BoxFuture<'a, Result<(), Invalid>> {
        Box::pin(async { Ok(()) })
    }

    /// What to register at the provider: by default the redirect URI. `id` is the provider's
    /// id, or [`ID_PLACEHOLDER`] on a form where none is typed yet.
    fn shown(_options: &Self::Options, issuer: &str, id: &str) -> Shown {
        Shown {
            key: "callback",
            title: "Redirect URI",
            intro: "Register this redirect (callback) URI at the provider:",
            values: vec![ShownValue {
                key: "url",
                id: "callback-url",
                label: "",
                value: format!("{}/callback/{id}", issuer.trim_end_matches('/')),
            }],
        }
    }

    /// Whether the addresses it verifies may count as verified here (given `trust_email`).
    fn vouches_for_email(_options: &Self::Options) -> bool {
        true
    }

    /// The audit entry's options (never a secret; a document may be left out).
    fn audit(_options: &mut Map<String, Value>) {}

    /// What a login whose upstream claims are `raw` would yield, by this provider's mapping
    /// and claims pipeline, the same code as a login: the admin's preview. `Err`: a login
    /// with these claims would be refused, and why.
    fn preview(
        options: &Self::Options,
        provider: &ProviderId,
        raw: &Map<String, Value>,
    ) -> Result<Mapped, String>;

    fn build(
        options: Self::Options,
        row: &Row<'_>,
        shared: &Shared<'_>,
    ) -> Result<Arc<dyn Connector>, String>;
}

/// A kind as the core sees it: implemented for every [`Kind`], on JSON.
pub trait AnyKind: Sync {
    fn kind(&self) -> ProviderKind;
    fn title(&self) -> &'static str;
    fn summary(&self) -> &'static str;
    fn form(&self) -> &'static [Field];
    fn offers_discovery(&self) -> bool;
    /// Whether it takes `incremental_scopes` ([`Kind::INCREMENTAL_SCOPES`]).
    fn takes_incremental_scopes(&self) -> bool;
    /// Whether the kind's check refuses `field` (`client_id`, `client_secret`, `issuer`) empty.
    fn requires(&self, field: &str) -> bool;
    /// The options with their defaults (a blank form).
    fn defaults(&self) -> Map<String, Value>;
    /// Checks one option's value, and returns it as written back (secrets redacted).
    fn read(&self, option: &str, value: &Value) -> Result<Value, String>;
    /// Checks an entry of this kind and returns what its row stores.
    fn check(&self, entry: &Entry<'_>) -> Result<Checked, Vec<Invalid>>;
    fn verify<'a>(
        &'a self,
        settings: &'a Value,
        before: Option<&'a Value>,
        http: &'a UpstreamHttp,
    ) -> BoxFuture<'a, Result<(), Invalid>>;
    /// A row's options as the admin sees them; unset ones left out, an unreadable row shown
    /// without them.
    fn view(&self, settings: &Value) -> Map<String, Value>;
    fn audit(&self, settings: &Value) -> Map<String, Value>;
    fn preview(
        &self,
        settings: &Value,
        provider: &ProviderId,
        raw: &Map<String, Value>,
    ) -> Result<Mapped, String>;
    fn shown(&self, settings: &Value, issuer: &str, id: &str) -> Shown;
    fn vouches_for_email(&self, settings: &Value) -> bool;
    fn build(&self, row: &Row<'_>, shared: &Shared<'_>) -> Result<Arc<dyn Connector>, String>;
}

impl<K: Kind> AnyKind for K {
    fn kind(&self) -> ProviderKind {
        K::KIND
    }

    fn title(&self) -> &'static str {
        K::TITLE
    }

    fn summary(&self) -> &'static str {
        K::SUMMARY
    }

    fn form(&self) -> &'static [Field] {
        K::FORM
    }

    fn offers_discovery(&self) -> bool {
        K::DISCOVERY
    }

    fn takes_incremental_scopes(&self) -> bool {
        K::INCREMENTAL_SCOPES
    }

    fn requires(&self, field: &str) -> bool {
        let need = match field {
            "client_id" => K::CLIENT_ID,
            "client_secret" => K::CLIENT_SECRET,
            "issuer" => K::ISSUER,
            _ => return false,
        };
        matches!(need, Need::Required)
    }

    fn defaults(&self) -> Map<String, Value> {
        object(&K::Options::default())
    }

    fn read(&self, option: &str, value: &Value) -> Result<Value, String> {
        let one = Map::from_iter([(option.to_owned(), value.clone())]);
        let options: K::Options =
            serde_json::from_value(Value::Object(one)).map_err(|e| e.to_string())?;
        Ok(object(&options).remove(option).unwrap_or(Value::Null))
    }

    fn check(&self, entry: &Entry<'_>) -> Result<Checked, Vec<Invalid>> {
        let mut errors = Vec::new();
        let kind = K::KIND;
        let by = K::ISSUED_BY;
        if matches!(K::CLIENT_ID, Need::Required) && entry.client_id.trim().is_empty() {
            let message = format!("Enter the client ID {by} gave you.");
            errors.push(Invalid::new("client_id", message));
        }
        if matches!(K::CLIENT_SECRET, Need::Required) && !entry.has_secret {
            let message = format!("Enter the client secret {by} gave you.");
            errors.push(Invalid::new("client_secret", message));
        }
        let issuer = entry.issuer.filter(|i| !i.trim().is_empty());
        match (K::ISSUER, issuer) {
            (Need::Required, None) => {
                errors.push(Invalid::new("issuer", ENTER_ISSUER));
            }
            (Need::Refused(why), Some(_)) => {
                let message = format!("Leave the issuer empty for {}: {why}.", K::TITLE);
                errors.push(Invalid::new("issuer", message));
            }
            _ => {}
        }
        errors.extend(misplaced(Some(kind), entry.options));
        let incremental =
            incremental_scopes(entry.incremental_scopes, K::INCREMENTAL_SCOPES, K::TITLE)
                .map_err(|e| errors.push(e))
                .unwrap_or_default();
        let defaults = self.defaults();
        let own = (entry.options.0.iter())
            .filter(|(k, v)| defaults.contains_key(*k) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let options = serde_json::from_value(Value::Object(own))
            .map_err(|e| {
                // A message that starts with an option's name is about that option.
                let message = e.to_string();
                let field = (message.split_once(':'))
                    .map(|(head, _)| head)
                    .filter(|head| defaults.contains_key(*head))
                    .unwrap_or("settings")
                    .to_owned();
                Invalid::new(&field, message)
            })
            .and_then(|mut o| K::check(&mut o, entry.from_config).map(|_| o));
        match options {
            Ok(mut options) if errors.is_empty() => {
                let key = K::take_key(&mut options);
                let scopes = match entry.scopes {
                    Some(scopes) => scopes.to_vec(),
                    None => K::DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
                };
                Ok(Checked {
                    scopes,
                    incremental_scopes: incremental,
                    settings: Value::Object(object(&options)),
                    key,
                })
            }
            Ok(_) => Err(errors),
            Err(e) => {
                errors.push(e);
                Err(errors)
            }
        }
    }

    fn verify<'a>(
        &'a self,
        settings: &'a Value,
        before: Option<&'a Value>,
        http: &'a UpstreamHttp,
    ) -> BoxFuture<'a, Result<(), Invalid>> {
        Box::pin(async move {
            let options = stored::<K>(settings).map_err(|e| Invalid::new("settings", e))?;
            let before = before.and_then(|b| stored::<K>(b).ok());
            K::verify(&options, before.as_ref(), http).await
        })
    }

    fn view(&self, settings: &Value) -> Map<String, Value> {
        let mut options = stored::<K>(settings)
            .map(|o| object(&o))
            .unwrap_or_default();
        options.retain(|_, v| !v.is_null());
        options
    }

    fn audit(&self, settings: &Value) -> Map<String, Value> {
        let mut options = self.view(settings);
        K::audit(&mut options);
        options
    }

    fn shown(&self, settings: &Value, issuer: &str, id: &str) -> Shown {
        K::shown(&stored::<K>(settings).unwrap_or_default(), issuer, id)
    }

    fn vouches_for_email(&self, settings: &Value) -> bool {
        stored::<K>(settings).is_ok_and(|o| K::vouches_for_email(&o))
    }

    fn preview(
        &self,
        settings: &Value,
        provider: &ProviderId,
        raw: &Map<String, Value>,
    ) -> Result<Mapped, String> {
        let options = stored::<K>(settings)
            .map_err(|e| format!("provider `{provider}` has unreadable settings: {e}"))?;
        K::preview(&options, provider, raw)
    }

    fn build(&self, row: &Row<'_>, shared: &Shared<'_>) -> Result<Arc<dyn Connector>, String> {
        let options = stored::<K>(row.settings)
            .map_err(|e| format!("provider `{}` has unreadable settings: {e}", row.id))?;
        K::build(options, row, shared)
    }
}

/// `value` as a JSON object (every options type serialises to one).
fn object(value: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The options of a row: a row written by [`AnyKind::check`] always reads back; anything else
/// is reported rather than guessed.
fn stored<K: Kind>(settings: &Value) -> Result<K::Options, String> {
    match settings {
        Value::Null => Ok(K::Options::default()),
        _ => serde_json::from_value(settings.clone()).map_err(|e| e.to_string()),
    }
}

/// The options in `options` that `kind` does not have (`None`: an unknown kind, for which
/// every option is misplaced), each refused with the kind it belongs to.
pub fn misplaced(kind: Option<ProviderKind>, options: &Options) -> Vec<Invalid> {
    let mut errors = Vec::new();
    for name in options
        .0
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k)
    {
        if kind.is_some_and(|k| find(k).defaults().contains_key(name)) {
            continue;
        }
        match owner(name).map(|o| o.kind()) {
            Some(k) if Some(k) == kind => {}
            Some(k) => errors.push(Invalid::new(
                name,
                format!(
                    "{name} is an option of {} providers only (kind {k}); remove it.",
                    find(k).title()
                ),
            )),
            None => errors.push(Invalid::new(
                name,
                format!("There is no option {name}; remove it."),
            )),
        }
    }
    errors
}

/// A provider entry as `[[providers]]` or the admin API gives it.
pub struct Entry<'a> {
    pub kind: ProviderKind,
    pub client_id: &'a str,
    /// Whether a client secret is given (or, on an admin's update, kept).
    pub has_secret: bool,
    pub issuer: Option<&'a str>,
    /// `None`: the kind's default.
    pub scopes: Option<&'a [String]>,
    /// The scopes a service may ask the user to add through the broker.
    pub incremental_scopes: &'a [String],
    pub options: &'a Options,
    pub from_config: bool,
}

/// An entry checked: what its row stores.
#[derive(Debug)]
pub struct Checked {
    pub scopes: Vec<String>,
    /// `incremental_scopes`, checked: scope tokens, each once.
    pub incremental_scopes: Vec<String>,
    pub settings: Value,
    /// The secret the kind keeps sealed beside the row (the SAML SP key).
    pub key: Option<SecretString>,
}

/// What is wrong with an entry, and the field it is about (the admin API and form show it
/// next to that field; `[[providers]]` prefixes the provider's id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// The message with its field named, unless it names it already.
impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.contains(&self.field) {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// A stored provider, its secrets opened: what a connector is built from.
pub struct Row<'a> {
    pub id: &'a ProviderId,
    pub kind: ProviderKind,
    pub client_id: &'a str,
    pub client_secret: Option<SecretString>,
    pub issuer: Option<&'a str>,
    pub scopes: &'a [String],
    pub settings: &'a Value,
    /// The secret the kind keeps sealed beside the row ([`Kind::take_key`]).
    pub key: Option<SecretString>,
}

impl Row<'_> {
    /// The client secret, for kinds that cannot work without one.
    pub fn secret(&self) -> Result<SecretString, String> {
        self.client_secret.clone().ok_or_else(|| {
            format!(
                "provider `{}` of kind {} has no client secret",
                self.id, self.kind
            )
        })
    }
}

/// What connectors share.
pub struct Shared<'a> {
    pub http: &'a UpstreamHttp,
    /// `None` where this process serves no SAML.
    pub saml: Option<&'a SamlContext>,
}

/// One input of the admin form. `option` is the option it edits (`saml.name_id_format`: a key
/// of the `saml` table), or a field every provider has (`client_id`, `issuer`...); the input's
/// name is `option` with `_` for `.`, its errors those of the option's first part.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub option: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub widget: Widget,
}

/// How an input shows a value and turns back into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Widget {
    /// A string; empty leaves the option unset.
    Text,
    Textarea,
    /// A list, separated by spaces or lines.
    Words,
    /// Write-only; empty keeps what is stored.
    Secret,
    /// A boolean.
    Checkbox,
    /// A whole number; empty leaves the option unset (its default).
    Number,
    /// A JSON value (an object of names), in a text area; empty leaves the option unset.
    Json,
}

impl Field {
    pub const fn new(
        option: &'static str,
        label: &'static str,
        hint: &'static str,
        widget: Widget,
    ) -> Self {
        Self {
            option,
            label,
            hint,
            widget,
        }
    }
}

pub const CLIENT_ID: Field = Field::new("client_id", "Client ID", "", Widget::Text);
pub const CLIENT_SECRET: Field = Field::new("client_secret", "Client secret", "", Widget::Secret);
pub const SCOPES: Field = Field::new(
    "scopes",
    "Scopes",
    "separated by spaces; empty: the kind's default",
    Widget::Words,
);

/// The claims pipeline's inputs ([`crate::claims::pipeline`]), on every kind's form after its
/// own.
pub const CLAIM_RULES: [Field; 7] = [
    Field::new(
        "group_prefix",
        "Group prefix",
        "put before every group name first, e.g. corp: (recommended with several providers)",
        Widget::Text,
    ),
    Field::new(
        "group_allow",
        "Groups allowed",
        "patterns of prefixed names, separated by spaces: a glob (eng-*) or a /regex/; empty: all",
        Widget::Words,
    ),
    Field::new(
        "group_deny",
        "Groups denied",
        "patterns of prefixed names, separated by spaces; deny wins over allow",
        Widget::Words,
    ),
    Field::new(
        "group_rename",
        "Group renames",
        "JSON object: prefixed name to new name, e.g. {\"corp:0f3a…\": \"engineering\"}",
        Widget::Json,
    ),
    Field::new(
        "max_groups",
        "Maximum groups",
        "more are cut (with a warning in the log); default 100, at most 1000",
        Widget::Number,
    ),
    Field::new(
        "static_claims",
        "Static claims",
        "JSON object of claims every user of this provider gets, e.g. {\"department\": \"engineering\"}",
        Widget::Json,
    ),
    Field::new(
        "extra_claims",
        "Extra claims",
        "JSON object: claim name to the path of an upstream claim, e.g. {\"cost_center\": \"/org/cc\"}",
        Widget::Json,
    ),
];

/// The message for a missing issuer (the kind's check, and "Test discovery" with none).
pub const ENTER_ISSUER: &str = "Enter the issuer URL, e.g. https://accounts.example.com.";

/// What stands for the provider's id in what to register at the provider, on a new provider's
/// form before a valid id is typed.
pub const ID_PLACEHOLDER: &str = "<your-id>";

/// What the admin needs to register Portico at the provider: a section of the provider's
/// page, and the object `key` of the API's view.
#[derive(Debug, Clone)]
pub struct Shown {
    pub key: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub values: Vec<ShownValue>,
}

#[derive(Debug, Clone)]
pub struct ShownValue {
    /// Its key in the API's object.
    pub key: &'static str,
    /// Its element id on the page.
    pub id: &'static str,
    pub label: &'static str,
    pub value: String,
}

impl Shown {
    /// The page section's element id.
    pub fn section_id(&self) -> String {
        self.key.replace('_', "-")
    }
}

/// In the API's view: `{key: {value key: value}}`, flattened into it.
impl Serialize for Shown {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let values: Map<String, Value> = self
            .values
            .iter()
            .map(|v| (v.key.to_owned(), Value::String(v.value.clone())))
            .collect();
        s.collect_map([(self.key, values)])
    }
}

/// A provider entry's options: the keys beside the fields every provider has. Each is checked
/// against the kind that has it when read, so an unknown option or a value of the wrong type
/// is refused as serde refuses them in any other shape; written (`portico config check`,
/// `Debug`) with secrets redacted.
#[derive(Clone, Default, PartialEq)]
pub struct Options(Map<String, Value>);

impl Options {
    /// The options as one JSON object, secrets included.
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// As written back: each option through its kind, so secrets are redacted; unset parts
    /// left out (TOML has no null).
    fn shown(&self) -> Map<String, Value> {
        fn strip(value: Value) -> Option<Value> {
            match value {
                Value::Null => None,
                Value::Object(map) => Some(Value::Object(
                    map.into_iter()
                        .filter_map(|(k, v)| strip(v).map(|v| (k, v)))
                        .collect(),
                )),
                other => Some(other),
            }
        }
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let shown = owner(k).and_then(|o| o.read(k, v).ok())?;
                strip(shown).map(|v| (k.clone(), v))
            })
            .collect()
    }
}

impl<'de> Deserialize<'de> for Options {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        for (name, value) in &map {
            let Some(kind) = owner(name) else {
                return Err(de::Error::custom(format_args!("unknown field `{name}`")));
            };
            if !value.is_null() {
                kind.read(name, value).map_err(|e| {
                    if e.starts_with(&format!("{name}:")) {
                        de::Error::custom(e)
                    } else {
                        de::Error::custom(format_args!("{name}: {e}"))
                    }
                })?;
            }
        }
        Ok(Self(map))
    }
}

impl Serialize for Options {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.shown())
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.shown()).finish()
    }
}

/// An option by name; unset ones read as null.
impl std::ops::Index<&str> for Options {
    type Output = Value;

    fn index(&self, name: &str) -> &Value {
        self.0.get(name).unwrap_or(&Value::Null)
    }
}

/// An option by name, to set (null unsets it): `p.options["saml"]["email_verified"] = true.into()`.
impl std::ops::IndexMut<&str> for Options {
    fn index_mut(&mut self, name: &str) -> &mut Value {
        self.0.entry(name).or_insert(Value::Null)
    }
}

/// Trimmed, `None` when empty.
pub fn given(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// An upstream URL: absolute, https (or http to a loopback IP literal, for local IdPs and tests:
/// the same test as redirect URIs, [`crate::net::is_loopback_http`]),
/// without credentials or fragment.
pub fn upstream_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw)
        .map_err(|_| format!("Enter a full URL, e.g. https://idp.example.com (not “{raw}”)."))?;
    if !(url.scheme() == "https" || crate::net::is_loopback_http(&url)) {
        Err(format!(
            "“{raw}” must use https (http only to 127.0.0.1 or [::1], when testing)."
        ))
    } else if !url.username().is_empty() || url.password().is_some() {
        Err("Remove the user name and password from the URL.".into())
    } else if url.fragment().is_some() {
        Err("Remove the #fragment from the URL.".into())
    } else {
        Ok(())
    }
}

/// At most this many incremental scopes per provider.
pub const MAX_INCREMENTAL_SCOPES: usize = 50;

/// Whether `raw` is an RFC 6749 scope token: 1 to 200 visible ASCII characters but `"` and `\`.
pub fn is_scope_token(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 200
        && raw
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

/// A provider's incremental scopes (split on spaces, each once), refused for a kind without
/// scopes (`takes`: [`Kind::INCREMENTAL_SCOPES`]).
fn incremental_scopes(list: &[String], takes: bool, title: &str) -> Result<Vec<String>, Invalid> {
    const FIELD: &str = "incremental_scopes";
    let mut out: Vec<String> = Vec::new();
    for raw in list.iter().flat_map(|s| s.split_whitespace()) {
        if !is_scope_token(raw) {
            let message = format!(
                "“{raw}” is not a valid scope: scopes are separated by spaces and hold no quotes \
                 or backslashes."
            );
            return Err(Invalid::new(FIELD, message));
        }
        if !out.iter().any(|s| s == raw) {
            out.push(raw.to_owned());
        }
    }
    if !out.is_empty() && !takes {
        let message = format!("{title} providers have no scopes: leave incremental_scopes empty.");
        return Err(Invalid::new(FIELD, message));
    }
    if out.len() > MAX_INCREMENTAL_SCOPES {
        let message = format!("List at most {MAX_INCREMENTAL_SCOPES} incremental scopes.");
        return Err(Invalid::new(FIELD, message));
    }
    Ok(out)
}

/// DNS names, lower-cased: labels of letters, digits and `-`, at least two of them.
pub fn domain_names(field: &str, list: &[String]) -> Result<Vec<String>, Invalid> {
    let mut out = Vec::new();
    for raw in list.iter().map(|d| d.trim()).filter(|d| !d.is_empty()) {
        let d = raw.to_ascii_lowercase();
        let labels: Vec<&str> = d.split('.').collect();
        let ok = d.len() <= 253
            && labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            let message = format!(
                "“{raw}” is not a domain name: enter names like example.com, separated by spaces."
            );
            return Err(Invalid::new(field, message));
        }
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_has_one_kind_but_the_claims_pipeline_which_all_have() {
        use crate::claims::pipeline::OPTION_NAMES;
        for kind in KINDS {
            let defaults = kind.defaults();
            for option in defaults.keys() {
                if OPTION_NAMES.contains(&option.as_str()) {
                    continue;
                }
                assert_eq!(
                    owner(option).map(|o| o.kind()),
                    Some(kind.kind()),
                    "{option}"
                );
            }
            for option in OPTION_NAMES {
                assert!(
                    defaults.contains_key(*option),
                    "{} lacks {option}",
                    kind.kind()
                );
            }
        }
    }

    #[test]
    fn the_pipeline_options_are_accepted_on_every_kind() {
        let options: Options =
            serde_json::from_value(serde_json::json!({"group_prefix": "x:"})).unwrap();
        for kind in KINDS {
            assert!(misplaced(Some(kind.kind()), &options).is_empty());
        }
        assert_eq!(misplaced(None, &options).len(), 1);
    }
}
