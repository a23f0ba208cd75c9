//! The `scope` parameter: a set of scope tokens (RFC 6749 section 3.3).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(Vec<String>);

impl Scope {
    /// Parses a space-separated list, refusing characters RFC 6749 does not allow.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut tokens: Vec<String> = Vec::new();
        for t in raw.split(' ').filter(|t| !t.is_empty()) {
            if !t
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err(format!("scope `{t}` has characters a scope cannot contain"));
            }
            if !tokens.iter().any(|x| x == t) {
                tokens.push(t.to_owned());
            }
        }
        Ok(Self(tokens))
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every token is in `allowed`.
    pub fn within(&self, allowed: &[String]) -> bool {
        self.0.iter().all(|t| allowed.contains(t))
    }

    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.iter().all(|t| other.contains(t))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}
