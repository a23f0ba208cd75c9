//! What one application receives of a user's claims: a list of claim names (`claims` of a
//! client) and a group filter, applied to the final JSON object of user claims.
//!
//! An app should see only what it needs (Dex #918, #1635). The rules work on the JSON object
//! whatever keys it holds (the scope claims, and the static or mapped claims that providers
//! add), so that a claim added later is covered without touching this code: the group filter
//! narrows the `groups` array, then the selection removes every key it does not name. Neither
//! ever adds: scopes still decide what is there to select from.
//!
//! The protocol claims (`iss`, `sub`, `aud`, ...) are not the app's to drop, since a token
//! without them is not a valid token: naming one in the list is refused, and the selection
//! keeps them wherever it is applied.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::GroupFilter;

/// Claims every token or answer keeps, whatever a client's list says.
pub const PROTOCOL_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "scope",
    "client_id",
    "jti",
];

/// The most names one list may hold.
pub const MAX_CLAIMS: usize = 100;
/// The longest claim name accepted, in characters.
pub const MAX_CLAIM_NAME_LEN: usize = 128;

/// The claim the group filter applies to.
pub const GROUPS_CLAIM: &str = "groups";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectionError {
    #[error(
        "`{0}` is a protocol claim: tokens always carry it, so it cannot be listed; list only \
         user claims, e.g. email, name, groups"
    )]
    Protocol(String),
    #[error(
        "“{0}” is not a claim name: use 1 to {MAX_CLAIM_NAME_LEN} visible characters without \
         spaces or quotes, e.g. email"
    )]
    BadName(String),
    #[error("claim `{0}` is listed twice")]
    Repeated(String),
    #[error("a client's claim list holds at most {MAX_CLAIMS} names")]
    TooMany,
}

/// The user claims a client receives: a checked list of names, none of them a protocol claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimSelection(Vec<String>);

impl ClaimSelection {
    pub fn parse(names: &[String]) -> Result<Self, SelectionError> {
        if names.len() > MAX_CLAIMS {
            return Err(SelectionError::TooMany);
        }
        let mut out: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            let name = name.trim();
            let valid = !name.is_empty()
                && name.chars().count() <= MAX_CLAIM_NAME_LEN
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
            if !valid {
                let head: String = name.chars().take(32).collect();
                return Err(SelectionError::BadName(head));
            }
            if PROTOCOL_CLAIMS.contains(&name) {
                return Err(SelectionError::Protocol(name.to_owned()));
            }
            if out.iter().any(|n| n == name) {
                return Err(SelectionError::Repeated(name.to_owned()));
            }
            out.push(name.to_owned());
        }
        Ok(Self(out))
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// Whether the claim `name` stays: a protocol claim or one the list names.
    pub fn keeps(&self, name: &str) -> bool {
        PROTOCOL_CLAIMS.contains(&name) || self.0.iter().any(|n| n == name)
    }
}

impl Serialize for ClaimSelection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ClaimSelection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        Self::parse(&names).map_err(serde::de::Error::custom)
    }
}

/// Applies a client's rules to the JSON object of user claims, in place: the group filter to
/// the `groups` array (a name that is not a string never passes a filter), then the selection
/// (`None`: every claim stays) to the whole object.
pub fn release(
    claims: &mut Map<String, Value>,
    selection: Option<&ClaimSelection>,
    filter: &GroupFilter,
) {
    if !filter.is_empty()
        && let Some(Value::Array(groups)) = claims.get_mut(GROUPS_CLAIM)
    {
        groups.retain(|g| g.as_str().is_some_and(|name| filter.permits(name)));
    }
    if let Some(selection) = selection {
        claims.retain(|name, _| selection.keeps(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn protocol_claims_bad_names_repeats_and_long_lists_are_refused() {
        for protocol in PROTOCOL_CLAIMS {
            assert_eq!(
                ClaimSelection::parse(&names(&["email", protocol])),
                Err(SelectionError::Protocol((*protocol).to_owned()))
            );
        }
        for bad in [
            "",
            "has space",
            "quo\"te",
            "é",
            &"a".repeat(MAX_CLAIM_NAME_LEN + 1),
        ] {
            assert!(matches!(
                ClaimSelection::parse(&names(&[bad])),
                Err(SelectionError::BadName(_))
            ));
        }
        assert_eq!(
            ClaimSelection::parse(&names(&["email", "email"])),
            Err(SelectionError::Repeated("email".into()))
        );
        let many: Vec<String> = (0..=MAX_CLAIMS).map(|i| format!("c{i}")).collect();
        assert_eq!(ClaimSelection::parse(&many), Err(SelectionError::TooMany));
        // Any user claim name passes, known or not (providers add their own).
        let ok = ClaimSelection::parse(&names(&["email", "https://example.com/role", "dept"]));
        assert_eq!(ok.unwrap().names().len(), 3);
        assert_eq!(ClaimSelection::parse(&[]).unwrap().names().len(), 0);
    }

    #[test]
    fn the_filter_narrows_groups_then_the_selection_keeps_only_named_keys() {
        let filter = GroupFilter::parse(&names(&["eng-*"]), &names(&["eng-api"])).unwrap();
        let mut claims = object(json!({
            "email": "a@x", "name": "A", "groups": ["eng-web", "eng-api", "sales", 7],
            "department": "R&D",
        }));
        release(&mut claims, None, &filter);
        assert_eq!(claims["groups"], json!(["eng-web"]));
        assert_eq!(claims["department"], "R&D");

        let selection = ClaimSelection::parse(&names(&["groups", "missing"])).unwrap();
        release(&mut claims, Some(&selection), &GroupFilter::default());
        // Only what was there and is named: the selection never adds.
        assert_eq!(claims, object(json!({ "groups": ["eng-web"] })));
    }

    #[test]
    fn protocol_claims_survive_any_selection_and_no_rules_change_nothing() {
        let full = json!({ "sub": "u1", "iss": "https://p", "nonce": "n", "email": "a@x",
                           "groups": ["a", "b"] });
        let mut claims = object(full.clone());
        release(
            &mut claims,
            Some(&ClaimSelection::default()),
            &GroupFilter::default(),
        );
        assert_eq!(
            claims,
            object(json!({ "sub": "u1", "iss": "https://p", "nonce": "n" }))
        );
        let mut claims = object(full.clone());
        release(&mut claims, None, &GroupFilter::default());
        assert_eq!(Value::Object(claims), full);
    }

    #[test]
    fn selections_round_trip_and_refuse_protocol_claims_through_serde() {
        let s: ClaimSelection = serde_json::from_value(json!(["email", "groups"])).unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!(["email", "groups"])
        );
        let err = serde_json::from_value::<ClaimSelection>(json!(["sub"])).unwrap_err();
        assert!(err.to_string().contains("protocol claim"), "{err}");
    }
}
