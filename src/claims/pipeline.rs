//! The claims pipeline of one provider: from what its login said (the raw groups its connector
//! read, and its claim set) to what Portico's tokens say.
//!
//! Why one pipeline: a group name means something only in its directory. Without a prefix per
//! provider, a group `admin` at any directory would grant the `admin` of every other. So every
//! connector (OIDC, Google, SAML, GitHub) hands its raw groups to [`apply`]. The prefix is the
//! admin's choice, not a guarantee: a provider WITHOUT one passes names as its directory sends
//! them (`admin` from two such directories is one group), so with two or more providers each
//! needs its own (Portico warns at start and on the providers page, [`unprefixed`]). What is enforced: with a prefix, rules
//! that could never match or that rename out of it are refused ([`ClaimRules::parse`]); across
//! providers, prefixes may not overlap and no rename may land in another's namespace
//! ([`check_namespaces`]), and after a provider's own steps every name in another provider's
//! namespace is dropped ([`drop_foreign`], where the claims are stored). The steps, in order:
//!
//! 1. `group_prefix` is put in front of every name, FIRST, so that every later rule (and every
//!    client) sees `corp:admin`, never a bare `admin`;
//! 2. `group_allow` / `group_deny` ([`GroupFilter`]: globs or `/regex/`, anchored; deny wins);
//! 3. `group_rename`: a prefixed name to another name;
//! 4. duplicates are dropped (the first one stays);
//! 5. `max_groups` caps the count: the rest is cut, with a warning that names the provider.
//!
//! Beside the groups, `static_claims` (fixed values) and `extra_claims` (values read from the
//! upstream claims by path) become claims of their own in the ID token and at userinfo.
//!
//! [`ClaimRules`] is parsed once ([`ClaimRules::parse`]) from the same raw shape wherever it
//! comes from (portico.toml, the admin API, the admin form), so all refuse the same things
//! with the same words; a value of it is always valid.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::pattern::{GroupFilter, GroupPattern, MAX_PATTERNS};

/// `max_groups` when none is set.
pub const DEFAULT_MAX_GROUPS: usize = 100;
/// The highest `max_groups` accepted.
pub const HARD_MAX_GROUPS: usize = 1000;
/// Raw group names looked at per login; more are ignored (and counted as received).
pub const MAX_INPUT_GROUPS: usize = 10_000;
/// The longest group name kept, in bytes; longer ones are dropped.
pub const MAX_GROUP_LEN: usize = 256;
/// The longest prefix.
pub const MAX_PREFIX_LEN: usize = 64;
/// Entries of `group_rename`.
pub const MAX_RENAMES: usize = 500;
/// Claims in `static_claims` and in `extra_claims`, each.
pub const MAX_CLAIMS: usize = 32;
/// The longest claim name.
pub const MAX_CLAIM_NAME_LEN: usize = 64;
/// The longest string value of a static or extra claim, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;
/// Items of a list value.
pub const MAX_LIST_ITEMS: usize = 64;
/// The longest path.
pub const MAX_PATH_LEN: usize = 256;
/// Segments of a path.
pub const MAX_PATH_SEGMENTS: usize = 16;
/// The largest serialized size of one user's static and extra claims together, in bytes.
pub const MAX_CLAIMS_SIZE: usize = 8 * 1024;

/// Claims Portico sets itself (or that mean something to every client): a static or extra
/// claim may not take their names.
pub const RESERVED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "nonce",
    "auth_time",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "s_hash",
    "sid",
    "scope",
    "client_id",
    "cnf",
    "typ",
    "email",
    "email_verified",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "picture",
    "profile",
    "website",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    "groups",
    "roles",
    // Introspection's own (RFC 7662).
    "active",
    "token_type",
    "username",
];

/// Whether `name` is a [`RESERVED`] claim, in any case (`SUB` or `Email` is refused too: a
/// client that compares names loosely must not be fooled).
pub fn is_reserved(name: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// The option names the pipeline adds to every provider kind.
pub const OPTION_NAMES: &[&str] = &[
    "group_prefix",
    "group_allow",
    "group_deny",
    "group_rename",
    "max_groups",
    "static_claims",
    "extra_claims",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRulesError {
    #[error("group_prefix: {0}")]
    Prefix(String),
    #[error("{list}: {reason}")]
    Pattern { list: &'static str, reason: String },
    #[error("group_rename: {0}")]
    Rename(String),
    #[error("max_groups must be between 1 and {HARD_MAX_GROUPS} (not {0})")]
    MaxGroups(usize),
    #[error("{option}: {reason}")]
    Claim {
        option: &'static str,
        reason: String,
    },
    #[error("claim path `{path}`: {reason}")]
    Path { path: String, reason: String },
}

/// A path to a claim: a JSON pointer (`/org/groups`, `~1` for `/`, `~0` for `~`) or a dotted
/// path (`realm_access.roles`). A name that is itself a top-level claim is read as that claim
/// first, so `https://example.com/roles` or a plain `groups` keeps meaning what it always did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    source: String,
    segments: Vec<String>,
}

impl ClaimPath {
    pub fn parse(source: &str) -> Result<Self, ClaimRulesError> {
        let bad = |reason: &str| ClaimRulesError::Path {
            path: source.chars().take(40).collect(),
            reason: reason.to_owned(),
        };
        let source = source.trim();
        if source.is_empty() {
            return Err(bad("a path may not be empty"));
        }
        if source.len() > MAX_PATH_LEN {
            return Err(bad("longer than 256 characters"));
        }
        let segments: Vec<String> = match source.strip_prefix('/') {
            Some(pointer) => pointer
                .split('/')
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect(),
            None => source.split('.').map(str::to_owned).collect(),
        };
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(bad("more than 16 segments"));
        }
        // A dotted path with an empty part (`a..b`) is most likely a claim name with dots,
        // read whole (see `lookup`); a pointer must name every segment.
        if source.starts_with('/') && segments.iter().any(String::is_empty) {
            return Err(bad("a JSON pointer may not have an empty segment"));
        }
        Ok(Self {
            source: source.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The value at this path in `claims`: the claim named exactly so, else the walk through
    /// objects (and arrays, by index).
    pub fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        if let Some(v) = claims.get(&self.source) {
            return Some(v);
        }
        if self.segments.iter().any(String::is_empty) {
            return None;
        }
        let (first, rest) = self.segments.split_first()?;
        let mut at = claims.get(first)?;
        for segment in rest {
            at = match at {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(at)
    }

    /// The strings at this path: a list's string items (others ignored), or one string; at
    /// most [`MAX_INPUT_GROUPS`].
    pub fn strings(&self, claims: &Map<String, Value>) -> Vec<String> {
        match self.lookup(claims) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .take(MAX_INPUT_GROUPS)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    /// The non-empty string at this path.
    pub fn text(&self, claims: &Map<String, Value>) -> Option<String> {
        self.lookup(claims)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
}

impl Serialize for ClaimPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for ClaimPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The pipeline's options as written (portico.toml, the admin API's JSON, the admin form):
/// the one shape [`ClaimRules::parse`] reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawClaimRules {
    pub group_prefix: Option<String>,
    pub group_allow: Vec<String>,
    pub group_deny: Vec<String>,
    pub group_rename: BTreeMap<String, String>,
    pub max_groups: usize,
    pub static_claims: BTreeMap<String, Value>,
    pub extra_claims: BTreeMap<String, String>,
}

impl Default for RawClaimRules {
    fn default() -> Self {
        Self {
            group_prefix: None,
            group_allow: Vec::new(),
            group_deny: Vec::new(),
            group_rename: BTreeMap::new(),
            max_groups: DEFAULT_MAX_GROUPS,
            static_claims: BTreeMap::new(),
            extra_claims: BTreeMap::new(),
        }
    }
}

/// The pipeline of one provider, checked. Embedded (flattened) in every kind's options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawClaimRules", into = "RawClaimRules")]
pub struct ClaimRules {
    prefix: Option<String>,
    filter: GroupFilter,
    rename: BTreeMap<String, String>,
    max_groups: usize,
    static_claims: Map<String, Value>,
    extra_claims: BTreeMap<String, ClaimPath>,
}

impl Default for ClaimRules {
    fn default() -> Self {
        Self::parse(RawClaimRules::default()).expect("the defaults are valid")
    }
}

impl TryFrom<RawClaimRules> for ClaimRules {
    type Error = ClaimRulesError;

    fn try_from(raw: RawClaimRules) -> Result<Self, ClaimRulesError> {
        Self::parse(raw)
    }
}

impl From<ClaimRules> for RawClaimRules {
    fn from(r: ClaimRules) -> Self {
        let texts = |list: &[GroupPattern]| list.iter().map(|p| p.as_str().to_owned()).collect();
        Self {
            group_prefix: r.prefix,
            group_allow: texts(&r.filter.allow),
            group_deny: texts(&r.filter.deny),
            group_rename: r.rename,
            max_groups: r.max_groups,
            static_claims: r.static_claims.into_iter().collect(),
            extra_claims: r
                .extra_claims
                .into_iter()
                .map(|(k, p)| (k, p.source))
                .collect(),
        }
    }
}

impl ClaimRules {
    /// The one check of the pipeline's options.
    pub fn parse(raw: RawClaimRules) -> Result<Self, ClaimRulesError> {
        let prefix = match raw.group_prefix.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) if p.len() > MAX_PREFIX_LEN => {
                return Err(ClaimRulesError::Prefix(format!(
                    "at most {MAX_PREFIX_LEN} characters"
                )));
            }
            Some(p) if p.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(ClaimRulesError::Prefix(format!(
                    "“{p}” may not contain spaces or control characters"
                )));
            }
            Some(p) => Some(p.to_owned()),
        };
        let list = |texts: &[String], name: &'static str| {
            if texts.len() > MAX_PATTERNS {
                return Err(ClaimRulesError::Pattern {
                    list: name,
                    reason: format!("at most {MAX_PATTERNS} patterns"),
                });
            }
            GroupFilter::parse(texts, &[])
                .map(|f| f.allow)
                .map_err(|e| ClaimRulesError::Pattern {
                    list: name,
                    reason: e.to_string(),
                })
        };
        let filter = GroupFilter {
            allow: list(&raw.group_allow, "group_allow")?,
            deny: list(&raw.group_deny, "group_deny")?,
        };
        if raw.group_rename.len() > MAX_RENAMES {
            return Err(ClaimRulesError::Rename(format!(
                "at most {MAX_RENAMES} entries"
            )));
        }
        let mut rename = BTreeMap::new();
        for (from, to) in &raw.group_rename {
            let (from, to) = (from.trim(), to.trim());
            if from.is_empty() || to.is_empty() {
                return Err(ClaimRulesError::Rename(
                    "a name and its new name may not be empty".into(),
                ));
            }
            if from.len() > MAX_GROUP_LEN || to.len() > MAX_GROUP_LEN {
                return Err(ClaimRulesError::Rename(format!(
                    "group names are at most {MAX_GROUP_LEN} characters"
                )));
            }
            rename.insert(from.to_owned(), to.to_owned());
        }
        if let Some(prefix) = &prefix {
            within_prefix(prefix, &filter, &rename)?;
        }
        if raw.max_groups == 0 || raw.max_groups > HARD_MAX_GROUPS {
            return Err(ClaimRulesError::MaxGroups(raw.max_groups));
        }
        let claim_names = |option: &'static str, names: Vec<&String>| {
            if names.len() > MAX_CLAIMS {
                return Err(ClaimRulesError::Claim {
                    option,
                    reason: format!("at most {MAX_CLAIMS} claims"),
                });
            }
            for name in names {
                claim_name(name).map_err(|reason| ClaimRulesError::Claim { option, reason })?;
            }
            Ok(())
        };
        claim_names("static_claims", raw.static_claims.keys().collect())?;
        claim_names("extra_claims", raw.extra_claims.keys().collect())?;
        let mut static_claims = Map::new();
        for (name, value) in raw.static_claims {
            let value = static_value(&value).map_err(|reason| ClaimRulesError::Claim {
                option: "static_claims",
                reason: format!("`{name}`: {reason}"),
            })?;
            static_claims.insert(name, value);
        }
        if claims_size(&static_claims) > MAX_CLAIMS_SIZE {
            return Err(ClaimRulesError::Claim {
                option: "static_claims",
                reason: format!("at most {MAX_CLAIMS_SIZE} bytes in all"),
            });
        }
        let mut extra_claims = BTreeMap::new();
        for (name, path) in raw.extra_claims {
            if static_claims.contains_key(&name) {
                return Err(ClaimRulesError::Claim {
                    option: "extra_claims",
                    reason: format!("`{name}` is a static claim already"),
                });
            }
            extra_claims.insert(name, ClaimPath::parse(&path)?);
        }
        Ok(Self {
            prefix,
            filter,
            rename,
            max_groups: raw.max_groups,
            static_claims,
            extra_claims,
        })
    }

    pub fn max_groups(&self) -> usize {
        self.max_groups
    }

    /// The namespace of this provider's groups, if it has one.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The names `group_rename` gives.
    pub fn rename_targets(&self) -> impl Iterator<Item = &str> {
        self.rename.values().map(String::as_str)
    }
}

/// Why the group namespaces of two providers collide: the option to fix, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    /// The provider whose option clashes.
    pub provider: String,
    pub option: &'static str,
    pub message: String,
}

impl ClaimRules {
    /// The rules in a provider's stored settings or options object (other keys ignored);
    /// `None` for settings that do not read as rules (the kind's own check reports them).
    pub fn of_settings(settings: &Value) -> Option<Self> {
        serde_json::from_value(settings.clone()).ok()
    }
}

/// Checks that no provider can hand out names in another provider's namespace: two prefixes
/// may not overlap (one may not start with the other: `corp:` and `corp:eu:`), and a rename
/// target may not start with another provider's prefix (`"gh:x" = "corp:admin"`). Without
/// this, a group of one directory could pass for a group of another. The first clash found,
/// naming the provider (among `changed`, when given: the one being written) and the option.
pub fn check_namespaces<'a>(
    providers: &[(&'a str, &'a ClaimRules)],
    changed: Option<&str>,
) -> Result<(), Clash> {
    for &(a, rules_a) in providers {
        for &(b, rules_b) in providers {
            if a == b {
                continue;
            }
            let Some(prefix_b) = rules_b.prefix() else {
                continue;
            };
            // Report on the provider being written when one is (its form shows it).
            let (who, other) = match changed {
                Some(c) if c == b => (b, a),
                _ => (a, b),
            };
            if let Some(prefix_a) = rules_a.prefix()
                && (prefix_a.starts_with(prefix_b) || prefix_b.starts_with(prefix_a))
            {
                let (mine, theirs) = if who == a {
                    (prefix_a, prefix_b)
                } else {
                    (prefix_b, prefix_a)
                };
                return Err(Clash {
                    provider: who.to_owned(),
                    option: "group_prefix",
                    message: format!(
                        "group_prefix `{mine}` overlaps provider `{other}`'s `{theirs}`: one \
                         starts with the other, so their groups could pass for each other's; \
                         choose prefixes that do not"
                    ),
                });
            }
            if let Some(target) = rules_a.rename_targets().find(|t| t.starts_with(prefix_b)) {
                return Err(Clash {
                    provider: a.to_owned(),
                    option: "group_rename",
                    message: format!(
                        "group_rename: `{target}` starts with `{prefix_b}`, the group_prefix of \
                         provider `{b}`: a provider may not hand out another provider's groups"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The providers without a prefix, when two or more map groups: any of them could send a
/// name that another's apps read as its own (`corp:admin`). Empty when all are prefixed or
/// only one provider is there.
pub fn unprefixed<'a>(providers: &[(&'a str, &'a ClaimRules)]) -> Vec<&'a str> {
    if providers.len() < 2 {
        return Vec::new();
    }
    providers
        .iter()
        .filter(|(_, rules)| rules.prefix().is_none())
        .map(|(id, _)| *id)
        .collect()
}

/// With a prefix, every name the rules see starts with it: a rename key or a wildcard-free
/// (or fixed-start) pattern that does not can never match, and would fail open silently (a deny
/// that denies nothing); a rename target that does not leaves the provider's namespace. A
/// `/regex/` cannot be decided here and is left alone (the docs say so).
fn within_prefix(
    prefix: &str,
    filter: &GroupFilter,
    rename: &BTreeMap<String, String>,
) -> Result<(), ClaimRulesError> {
    for (list, patterns) in [("group_allow", &filter.allow), ("group_deny", &filter.deny)] {
        if let Some(p) = patterns
            .iter()
            .find(|p| p.can_match_prefix(prefix) == Some(false))
        {
            return Err(ClaimRulesError::Pattern {
                list,
                reason: format!(
                    "`{p}` can never match: with group_prefix `{prefix}`, every group name \
                     starts with `{prefix}` (write `{prefix}{p}`)"
                ),
            });
        }
    }
    for (from, to) in rename {
        if !from.starts_with(prefix) {
            return Err(ClaimRulesError::Rename(format!(
                "`{from}` can never match: with group_prefix `{prefix}`, every group name \
                 starts with `{prefix}` (write `{prefix}{from}`)"
            )));
        }
        if !to.starts_with(prefix) {
            return Err(ClaimRulesError::Rename(format!(
                "`{to}` leaves the provider's namespace: with group_prefix `{prefix}`, a new \
                 name must start with `{prefix}` too"
            )));
        }
    }
    Ok(())
}

/// The serialized size of a set of claims, as they appear in a token (name and value).
fn claims_size(claims: &Map<String, Value>) -> usize {
    claims
        .iter()
        .map(|(name, value)| claim_size(name, value))
        .sum()
}

fn claim_size(name: &str, value: &Value) -> usize {
    // `"name":value,`
    name.len() + 4 + serde_json::to_string(value).map_or(usize::MAX / 2, |v| v.len())
}

/// A claim name: letters, digits, `_ - . :`, not reserved.
fn claim_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_CLAIM_NAME_LEN {
        return Err(format!(
            "a claim name has 1 to {MAX_CLAIM_NAME_LEN} characters"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        return Err(format!(
            "“{name}” is not a claim name: use letters, digits, _ - . :"
        ));
    }
    if is_reserved(name) {
        return Err(format!(
            "`{name}` is a reserved claim that Portico sets itself; choose another name"
        ));
    }
    Ok(())
}

/// A static claim's value: a string, a number, a boolean or a list of strings, bounded.
fn static_value(value: &Value) -> Result<Value, String> {
    bounded_value(value).ok_or_else(|| {
        format!(
            "a value is a string (at most {MAX_VALUE_LEN} bytes), a number, true or false, or \
             a list of at most {MAX_LIST_ITEMS} such strings"
        )
    })
}

/// `value` if it is a string, number, boolean or list of strings within the bounds.
fn bounded_value(value: &Value) -> Option<Value> {
    match value {
        Value::String(s) if s.len() <= MAX_VALUE_LEN => Some(value.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.clone()),
        Value::Array(items)
            if items.len() <= MAX_LIST_ITEMS
                && items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| s.len() <= MAX_VALUE_LEN)) =>
        {
            Some(value.clone())
        }
        _ => None,
    }
}

/// What a provider's login said, before the pipeline.
pub struct RawClaims<'a> {
    /// The group names its connector read (a claim, attributes, memberships).
    pub groups: Vec<String>,
    /// Its claim set, for `extra_claims` (SAML: attribute name to list of values).
    pub claims: &'a Map<String, Value>,
}

/// What the pipeline made of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MappedClaims {
    pub groups: Vec<String>,
    /// Static and extra claims, by name.
    pub extra_claims: Map<String, Value>,
    /// Set when `max_groups` cut the list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
    /// Extra claims left out, by name: their value was over the limits, or over
    /// [`MAX_CLAIMS_SIZE`] in all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// Groups left out because they start with another provider's `group_prefix`
    /// ([`drop_foreign`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub foreign: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Drops from `groups` every name that starts with one of `foreign`, the `group_prefix`es of
/// the OTHER providers (case-sensitive, as prefixes are), and says how many went. Run after a
/// provider's own steps: a provider without a prefix (or one whose directory sends such names
/// verbatim) may never hand out a group in another provider's namespace, such as a literal
/// `corp:admin` beside the real `corp` provider. The prefixes are read from the providers
/// table where the claims are stored (`users::update_claims`), so a change of any provider's
/// prefix holds on every instance from the next login or refresh on.
pub fn drop_foreign(groups: &mut Vec<String>, foreign: &[String]) -> usize {
    let before = groups.len();
    groups.retain(|g| !foreign.iter().any(|p| g.starts_with(p.as_str())));
    before - groups.len()
}

/// The warning of [`drop_foreign`]: the provider and the count, never a name.
pub fn warn_foreign(provider: &str, count: usize) {
    if count > 0 {
        tracing::warn!(
            provider,
            dropped = count,
            "provider {provider} sent {count} groups that start with another provider's \
             group_prefix; they are left out"
        );
    }
}

impl MappedClaims {
    /// Logs what the rules cut (a login's; the preview shows the notes instead): the cap, and
    /// the claims left out, by provider and claim name, never a value.
    pub fn warn(&self, provider: &str) {
        warn_foreign(provider, self.foreign);
        if let Some(t) = &self.truncated {
            tracing::warn!(
                provider,
                received = t.received,
                cap = t.kept,
                "provider {provider} sent {} groups after its rules; only the first {} are \
                 kept (max_groups)",
                t.received,
                t.kept
            );
        }
        for claim in &self.dropped {
            tracing::warn!(
                provider,
                claim = claim.as_str(),
                "provider {provider}: extra claim {claim} was left out (its value is over the \
                 limits of a claim, or of {MAX_CLAIMS_SIZE} bytes in all)"
            );
        }
    }

    /// [`drop_foreign`] on these groups, noted.
    pub fn drop_foreign(&mut self, foreign: &[String]) {
        self.foreign += drop_foreign(&mut self.groups, foreign);
    }

    /// What the preview shows of [`Self::warn`].
    pub fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = Vec::new();
        if self.foreign > 0 {
            notes.push(format!(
                "{} groups start with another provider's group_prefix and are left out: a \
                 provider may not hand out another provider's groups.",
                self.foreign
            ));
        }
        notes.extend(self.truncated.iter().map(Truncated::note));
        notes.extend(self.dropped.iter().map(|claim| {
            format!(
                "Extra claim {claim} is left out: its value is over the limits of a claim, or \
                 of {MAX_CLAIMS_SIZE} bytes in all."
            )
        }));
        notes
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Truncated {
    /// Distinct groups left after the filter and renames.
    pub received: usize,
    pub kept: usize,
}

impl Truncated {
    /// The note the preview shows.
    pub fn note(&self) -> String {
        format!(
            "{} groups passed the rules; only the first {} are kept (max_groups).",
            self.received, self.kept
        )
    }
}

/// Runs `rules` over `raw`. Logs nothing: a login calls [`MappedClaims::warn`] on the result,
/// the preview shows [`MappedClaims::notes`]. A name with a control character is dropped (no
/// directory means a line break in a group name, and a client's log or UI might).
pub fn apply(rules: &ClaimRules, raw: RawClaims<'_>) -> MappedClaims {
    let mut seen = HashSet::new();
    let mut groups = Vec::new();
    for name in raw.groups.into_iter().take(MAX_INPUT_GROUPS) {
        if name.is_empty() || name.len() > MAX_GROUP_LEN || name.chars().any(char::is_control) {
            continue;
        }
        let name = match &rules.prefix {
            Some(prefix) => format!("{prefix}{name}"),
            None => name,
        };
        if !rules.filter.permits(&name) {
            continue;
        }
        let name = rules.rename.get(&name).cloned().unwrap_or(name);
        if seen.insert(name.clone()) {
            groups.push(name);
        }
    }
    let truncated = (groups.len() > rules.max_groups).then(|| {
        let t = Truncated {
            received: groups.len(),
            kept: rules.max_groups,
        };
        groups.truncate(rules.max_groups);
        t
    });
    let mut extra_claims = rules.static_claims.clone();
    let mut size = claims_size(&extra_claims);
    let mut dropped = Vec::new();
    for (name, path) in &rules.extra_claims {
        let Some(value) = path.lookup(raw.claims) else {
            continue;
        };
        match bounded_value(value) {
            Some(value) if size + claim_size(name, &value) <= MAX_CLAIMS_SIZE => {
                size += claim_size(name, &value);
                extra_claims.insert(name.clone(), value);
            }
            _ => dropped.push(name.clone()),
        }
    }
    MappedClaims {
        groups,
        extra_claims,
        truncated,
        dropped,
        foreign: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(value: Value) -> ClaimRules {
        serde_json::from_value(value).unwrap()
    }

    fn refused(value: Value) -> String {
        serde_json::from_value::<ClaimRules>(value)
            .unwrap_err()
            .to_string()
    }

    fn groups(rules: &ClaimRules, names: &[&str]) -> MappedClaims {
        let claims = Map::new();
        apply(
            rules,
            RawClaims {
                groups: names.iter().map(|n| (*n).to_owned()).collect(),
                claims: &claims,
            },
        )
    }

    #[test]
    fn the_prefix_comes_first_so_filters_and_renames_see_prefixed_names() {
        let r = rules(json!({
            "group_prefix": "corp:",
            "group_allow": ["corp:eng-*", "corp:admin"],
            "group_rename": {"corp:eng-web": "corp:web-team"},
        }));
        let out = groups(&r, &["eng-web", "eng-api", "admin", "sales", "corp:eng-x"]);
        // `corp:eng-x` became `corp:corp:eng-x`, which the allow-list does not match.
        assert_eq!(out.groups, ["corp:web-team", "corp:eng-api", "corp:admin"]);
        assert!(out.truncated.is_none());
        // A filter written for bare names could only fail open: it is refused (next test).
    }

    #[test]
    fn with_a_prefix_rules_that_cannot_match_or_leave_the_namespace_are_refused() {
        let prefixed = |rest: Value| {
            let mut v = json!({"group_prefix": "corp:"});
            v.as_object_mut()
                .unwrap()
                .extend(rest.as_object().unwrap().clone());
            v
        };
        // A deny written for bare names would deny nothing: refused, naming the option.
        let e = refused(prefixed(json!({"group_deny": ["admin"]})));
        assert!(
            e.starts_with("group_deny:") && e.contains("corp:admin"),
            "{e}"
        );
        let e = refused(prefixed(json!({"group_allow": ["eng-*"]})));
        assert!(
            e.starts_with("group_allow:") && e.contains("group_prefix"),
            "{e}"
        );
        // A rename whose key cannot match, or whose target escapes the namespace.
        let e = refused(prefixed(json!({"group_rename": {"admin": "corp:root"}})));
        assert!(
            e.starts_with("group_rename:") && e.contains("never match"),
            "{e}"
        );
        let e = refused(prefixed(json!({"group_rename": {"corp:x": "other:admin"}})));
        assert!(
            e.starts_with("group_rename:") && e.contains("namespace"),
            "{e}"
        );
        let e = refused(prefixed(json!({"group_rename": {"corp:x": "admin"}})));
        assert!(e.contains("group_prefix"), "{e}");
        // Compatible globs, and /regex/ (undecidable), pass.
        rules(prefixed(json!({
            "group_allow": ["corp:*", "co*", "*-admins", "/anything/"],
            "group_deny": ["c?rp:secret"],
            "group_rename": {"corp:a": "corp:b"},
        })));
    }

    #[test]
    fn deny_wins_over_allow() {
        let r = rules(json!({
            "group_allow": ["eng-*"],
            "group_deny": ["eng-secret", "/.*-contractors/"],
        }));
        let out = groups(&r, &["eng-web", "eng-secret", "eng-contractors", "ops"]);
        assert_eq!(out.groups, ["eng-web"]);
    }

    #[test]
    fn renames_then_duplicates_are_dropped_in_order() {
        let r = rules(json!({"group_rename": {"a": "b", "c": "b"}}));
        let out = groups(&r, &["b", "a", "c", "d", "d"]);
        assert_eq!(out.groups, ["b", "d"]);
        // A renamed name is not filtered again (the filter ran on the upstream name).
        let r = rules(json!({"group_deny": ["x"], "group_rename": {"y": "x"}}));
        assert_eq!(groups(&r, &["y", "x"]).groups, ["x"]);
    }

    #[test]
    fn the_cap_truncates_and_says_so() {
        let r = rules(json!({"max_groups": 2}));
        let out = groups(&r, &["a", "b", "c", "a"]);
        assert_eq!(out.groups, ["a", "b"]);
        assert_eq!(
            out.truncated,
            Some(Truncated {
                received: 3,
                kept: 2
            })
        );
        assert!(out.truncated.unwrap().note().contains("3 groups"));
        // The default cap.
        let many: Vec<String> = (0..150).map(|i| format!("g{i}")).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        let out = groups(&ClaimRules::default(), &names);
        assert_eq!(out.groups.len(), DEFAULT_MAX_GROUPS);
        assert_eq!(out.truncated.unwrap().received, 150);
    }

    #[test]
    fn another_providers_prefix_is_dropped_after_the_rules_noted_and_warned_by_count() {
        // `plain` has no prefix; its directory sends a literal `corp:admin`.
        let r = rules(json!({"group_rename": {"x": "corp:ops"}}));
        let mut out = groups(&r, &["corp:admin", "dev", "x", "Corp:admin", "corpx"]);
        out.drop_foreign(&["corp:".to_owned(), "gh:".to_owned()]);
        // Case-sensitive, as prefixes are; a rename into it is caught too.
        assert_eq!(out.groups, ["dev", "Corp:admin", "corpx"]);
        assert_eq!(out.foreign, 2);
        let notes = out.notes();
        assert!(
            notes[0].contains("2 groups start with another provider's"),
            "{notes:?}"
        );
        assert!(!notes[0].contains("corp:admin"), "{notes:?}");
        let text = Captured::logged(|| out.warn("plain"));
        assert!(
            text.contains("WARN") && text.contains("provider plain sent 2 groups"),
            "{text}"
        );
        assert!(
            !text.contains("corp:admin") && !text.contains("corp:ops"),
            "{text}"
        );
        // Nothing foreign: no note.
        let mut clean = groups(&r, &["dev"]);
        clean.drop_foreign(&["corp:".to_owned()]);
        assert_eq!(clean.foreign, 0);
        assert!(clean.notes().is_empty());
    }

    /// A writer into a shared buffer, to read what was logged.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Captured {
        /// What `f` logged.
        fn logged(f: impl FnOnce()) -> String {
            let log = Captured::default();
            let writer = log.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::with_default(subscriber, f);
            String::from_utf8(log.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_cap_logs_a_warning_naming_the_provider_the_count_and_the_cap() {
        let r = rules(json!({"max_groups": 2}));
        let mut cut = None;
        let quiet = Captured::logged(|| {
            groups(&r, &["a", "b"]).warn("corp");
            // Applying logs nothing (the preview applies too); a login warns.
            cut = Some(groups(&r, &["a", "b", "c", "d", "e"]));
        });
        assert!(quiet.is_empty(), "{quiet}");
        let text = Captured::logged(|| cut.unwrap().warn("corp"));
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("WARN"), "{text}");
        assert!(
            text.contains("provider corp sent 5 groups") && text.contains("first 2"),
            "{text}"
        );
        assert!(
            text.contains("received=5") && text.contains("cap=2"),
            "{text}"
        );
    }

    #[test]
    fn huge_inputs_are_bounded() {
        let claims = Map::new();
        let mut names: Vec<String> = (0..MAX_INPUT_GROUPS + 5_000)
            .map(|i| format!("g{i}"))
            .collect();
        names.insert(0, "x".repeat(MAX_GROUP_LEN + 1));
        names.insert(1, String::new());
        let r = rules(json!({"max_groups": HARD_MAX_GROUPS}));
        let out = apply(
            &r,
            RawClaims {
                groups: names,
                claims: &claims,
            },
        );
        assert_eq!(out.groups.len(), HARD_MAX_GROUPS);
        assert_eq!(out.groups[0], "g0");
        // At most MAX_INPUT_GROUPS names were looked at (two of them dropped as bad).
        assert_eq!(out.truncated.unwrap().received, MAX_INPUT_GROUPS - 2);
        // A huge claim list is read only up to the bound.
        let big: Vec<Value> = (0..MAX_INPUT_GROUPS * 2)
            .map(|i| json!(i.to_string()))
            .collect();
        let claims = json!({"groups": big});
        let path = ClaimPath::parse("groups").unwrap();
        assert_eq!(
            path.strings(claims.as_object().unwrap()).len(),
            MAX_INPUT_GROUPS
        );
    }

    #[test]
    fn paths_are_pointers_or_dotted_and_exact_names_win() {
        let claims = json!({
            "org": {"groups": ["a", 1, null, "b", {"x": "y"}], "dept": "eng"},
            "realm_access": {"roles": ["admin", "user"]},
            "https://example.com/roles": ["r1"],
            "a.b": "dotted-name",
            "a": {"b": "nested"},
            "list": [{"name": "first"}],
            "odd/key": {"~x": "escaped"},
        });
        let claims = claims.as_object().unwrap();
        let strings = |p: &str| ClaimPath::parse(p).unwrap().strings(claims);
        // Non-string values are ignored.
        assert_eq!(strings("/org/groups"), ["a", "b"]);
        assert_eq!(strings("org.groups"), ["a", "b"]);
        assert_eq!(strings("realm_access.roles"), ["admin", "user"]);
        assert_eq!(strings("https://example.com/roles"), ["r1"]);
        assert_eq!(strings("/org/dept"), ["eng"]);
        assert!(strings("/org").is_empty());
        assert!(strings("missing.path").is_empty());
        let text = |p: &str| ClaimPath::parse(p).unwrap().text(claims);
        assert_eq!(text("a.b").as_deref(), Some("dotted-name"));
        assert_eq!(text("/a/b").as_deref(), Some("nested"));
        assert_eq!(text("/list/0/name").as_deref(), Some("first"));
        assert_eq!(text("/odd~1key/~0x").as_deref(), Some("escaped"));
        assert!(ClaimPath::parse("").is_err());
        assert!(ClaimPath::parse("/a//b").is_err());
        assert!(ClaimPath::parse(&"a.".repeat(20)).is_err());
        assert!(ClaimPath::parse(&"a".repeat(MAX_PATH_LEN + 1)).is_err());
    }

    #[test]
    fn static_and_extra_claims_are_emitted_bounded() {
        let r = rules(json!({
            "static_claims": {"department": "engineering", "level": 3, "staff": true,
                              "tags": ["a", "b"]},
            "extra_claims": {"cost_center": "/org/cc", "team": "org.team", "blob": "/org/obj"},
        }));
        let claims = json!({"org": {"cc": "cc-42", "team": ["x"], "obj": {"deep": 1}}});
        let out = apply(
            &r,
            RawClaims {
                groups: vec![],
                claims: claims.as_object().unwrap(),
            },
        );
        assert_eq!(
            Value::Object(out.extra_claims),
            json!({"department": "engineering", "level": 3, "staff": true, "tags": ["a", "b"],
                   "cost_center": "cc-42", "team": ["x"]})
        );
    }

    #[test]
    fn namespaces_of_providers_may_not_overlap_or_be_renamed_into() {
        let corp = rules(json!({"group_prefix": "corp:"}));
        let eu = rules(json!({"group_prefix": "corp:eu:"}));
        let bare = rules(json!({"group_rename": {"x": "corp:admin"}}));
        let ok = rules(json!({"group_prefix": "gh:", "group_rename": {"gh:x": "gh:y"}}));
        assert_eq!(
            check_namespaces(&[("corp", &corp), ("gh", &ok)], None),
            Ok(())
        );
        let e = check_namespaces(&[("corp", &corp), ("eu", &eu)], Some("eu")).unwrap_err();
        assert_eq!((e.provider.as_str(), e.option), ("eu", "group_prefix"));
        assert!(
            e.message.contains("overlaps provider `corp`"),
            "{}",
            e.message
        );
        // A prefixed provider cannot rename out of its namespace (refused alone); an
        // unprefixed one may not rename into another's.
        let e = check_namespaces(&[("corp", &corp), ("bare", &bare)], None).unwrap_err();
        assert_eq!((e.provider.as_str(), e.option), ("bare", "group_rename"));
        assert!(e.message.contains("provider `corp`"), "{}", e.message);
        // The same prefix twice overlaps too.
        assert!(check_namespaces(&[("a", &corp), ("b", &corp)], None).is_err());
        assert_eq!(unprefixed(&[("corp", &corp), ("bare", &bare)]), ["bare"]);
        assert!(unprefixed(&[("bare", &bare)]).is_empty());
    }

    #[test]
    fn names_with_control_characters_are_dropped() {
        let out = groups(
            &ClaimRules::default(),
            &["eng", "admin\nx", "ops\u{7f}", "web"],
        );
        assert_eq!(out.groups, ["eng", "web"]);
    }

    #[test]
    fn extra_claims_over_the_limits_are_dropped_and_named() {
        let r = rules(json!({
            "static_claims": {"big": "s".repeat(MAX_VALUE_LEN)},
            "extra_claims": {"a": "/a", "b": "/b", "c": "/c", "d": "/d", "e": "/e",
                             "f": "/f", "g": "/g", "obj": "/obj"},
        }));
        let v = "v".repeat(MAX_VALUE_LEN);
        let claims = json!({"a": v, "b": v, "c": v, "d": v, "e": v, "f": v, "g": v,
                            "obj": {"x": 1}});
        let out = apply(
            &r,
            RawClaims {
                groups: vec![],
                claims: claims.as_object().unwrap(),
            },
        );
        let size = claims_size(&out.extra_claims);
        assert!(size <= MAX_CLAIMS_SIZE, "{size}");
        // 1 static + 6 values of ~1 KiB fit in 8 KiB; the 7th and the object are left out.
        assert_eq!(out.dropped, ["g", "obj"]);
        assert!(out.notes().iter().any(|n| n.contains("Extra claim g")));
        // Static claims are bounded in all when written.
        let many: Map<String, Value> = (0..9)
            .map(|i| (format!("c{i}"), json!("s".repeat(MAX_VALUE_LEN))))
            .collect();
        let e = refused(json!({"static_claims": many}));
        assert!(
            e.contains("static_claims") && e.contains("bytes in all"),
            "{e}"
        );
    }

    #[test]
    fn reserved_names_are_refused_in_any_case() {
        for name in ["SUB", "Email", "Groups", "active", "Token_Type"] {
            let e = refused(json!({"static_claims": {name: "x"}}));
            assert!(e.contains("reserved"), "{name}: {e}");
        }
        assert!(is_reserved("ISS") && !is_reserved("department"));
    }

    #[test]
    fn bad_rules_are_refused_with_a_message_naming_the_option() {
        let e = refused(json!({"static_claims": {"sub": "x"}}));
        assert!(
            e.contains("static_claims") && e.contains("`sub` is a reserved"),
            "{e}"
        );
        let e = refused(json!({"static_claims": {"groups": ["admin"]}}));
        assert!(e.contains("reserved"), "{e}");
        let e = refused(json!({"extra_claims": {"email": "/x"}}));
        assert!(e.contains("extra_claims") && e.contains("reserved"), "{e}");
        let e = refused(json!({"static_claims": {"d": {"nested": 1}}}));
        assert!(e.contains("`d`"), "{e}");
        let e = refused(json!({"static_claims": {"d": "x".repeat(MAX_VALUE_LEN + 1)}}));
        assert!(e.contains("at most"), "{e}");
        let many: Map<String, Value> = (0..=MAX_CLAIMS)
            .map(|i| (format!("c{i}"), json!(1)))
            .collect();
        assert!(refused(json!({"static_claims": many})).contains("at most 32"));
        let e = refused(json!({"max_groups": 0}));
        assert!(e.contains("max_groups"), "{e}");
        assert!(refused(json!({"max_groups": HARD_MAX_GROUPS + 1})).contains("max_groups"));
        let e = refused(json!({"group_allow": ["/(/"]}));
        assert!(e.starts_with("group_allow:"), "{e}");
        let e = refused(json!({"group_prefix": "has space"}));
        assert!(e.starts_with("group_prefix:"), "{e}");
        assert!(refused(json!({"group_rename": {"a": ""}})).starts_with("group_rename:"));
        let e = refused(json!({"static_claims": {"d": 1}, "extra_claims": {"d": "/x"}}));
        assert!(e.contains("static claim already"), "{e}");
        let e = refused(json!({"extra_claims": {"d": "/a//b"}}));
        assert!(e.contains("claim path"), "{e}");
    }

    #[test]
    fn rules_round_trip_so_a_stored_provider_compares_equal() {
        let text = r#"
group_prefix = "corp:"
group_allow = ["corp:*"]
group_deny = ["/corp:.*-ext/"]
group_rename = { "corp:a" = "corp:b" }
max_groups = 7
static_claims = { department = "engineering", level = 2, tags = ["x"] }
extra_claims = { cc = "/org/cc" }
"#;
        let r: ClaimRules = toml::from_str(text).unwrap();
        let json = serde_json::to_value(&r).unwrap();
        let again: ClaimRules = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(again, r);
        assert_eq!(serde_json::to_value(&again).unwrap(), json);
        assert_eq!(json["max_groups"], 7);
        let defaults = serde_json::to_value(ClaimRules::default()).unwrap();
        let keys: Vec<&str> = defaults
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut names = OPTION_NAMES.to_vec();
        names.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, names);
    }
}
