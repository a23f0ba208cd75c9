//! Group-name patterns: a glob (`*` any run of characters, `?` one character, everything else
//! literal) or, between slashes, a regular expression (`/^eng-(web|api)$/`).
//!
//! Both match the whole name: a glob is anchored by construction, and a regular expression is
//! wrapped in `^(?:…)$`, so that `/admin/` cannot pass `not-admin-really` by accident; the text
//! between the slashes is compiled on its own first, so that `/a)|(b/` is refused rather than
//! turned into the different `^(?:a)|(b)$`. `*`, `?` and `.` match newlines too, so a name
//! cannot slip past a deny pattern by carrying a line break. Patterns
//! come from portico.toml and the admin API, so they are bounded: at most
//! `MAX_PATTERN_LEN` characters and a small compiled size (the `regex` crate runs in linear
//! time; the size limit bounds its memory).

use std::fmt;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest pattern accepted, in characters.
pub const MAX_PATTERN_LEN: usize = 256;
/// The most patterns one list may hold.
pub const MAX_PATTERNS: usize = 100;
/// The compiled size limit of one pattern, in bytes.
const COMPILED_SIZE_LIMIT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatternError {
    #[error("a group pattern may not be empty")]
    Empty,
    #[error("group pattern `{0}…` is longer than {MAX_PATTERN_LEN} characters")]
    TooLong(String),
    #[error("group pattern `{pattern}` is not a valid regular expression: {reason}")]
    Regex { pattern: String, reason: String },
    #[error("a list holds at most {MAX_PATTERNS} group patterns")]
    TooMany,
}

fn compile(body: &str, source: &str) -> Result<Regex, PatternError> {
    RegexBuilder::new(body)
        .size_limit(COMPILED_SIZE_LIMIT)
        .dot_matches_new_line(true)
        .build()
        .map_err(|e| PatternError::Regex {
            pattern: source.to_owned(),
            reason: e.to_string(),
        })
}

/// One pattern, as written and compiled.
#[derive(Clone)]
pub struct GroupPattern {
    source: String,
    compiled: Regex,
}

impl GroupPattern {
    pub fn parse(source: &str) -> Result<Self, PatternError> {
        let source = source.trim();
        if source.is_empty() {
            return Err(PatternError::Empty);
        }
        if source.chars().count() > MAX_PATTERN_LEN {
            let head: String = source.chars().take(32).collect();
            return Err(PatternError::TooLong(head));
        }
        let body = match regex_of(source) {
            Some(regex) => {
                // On its own first: wrapped, `a)|(b` would compile into another pattern.
                compile(regex, source)?;
                format!("^(?:{regex})$")
            }
            None => glob_to_regex(source),
        };
        let compiled = compile(&body, source)?;
        Ok(Self {
            source: source.to_owned(),
            compiled,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether this pattern can match some name that starts with `prefix`: `None` for a
    /// `/regex/` (undecidable here); for a glob, whether its fixed text before the first
    /// wildcard and `prefix` agree (a wildcard-free glob must start with `prefix` itself).
    pub fn can_match_prefix(&self, prefix: &str) -> Option<bool> {
        if regex_of(&self.source).is_some() {
            return None;
        }
        let fixed = match self.source.find(['*', '?']) {
            Some(at) => &self.source[..at],
            None => return Some(self.source.starts_with(prefix)),
        };
        Some(fixed.starts_with(prefix) || prefix.starts_with(fixed))
    }

    /// Whether `name` matches, as a whole.
    pub fn matches(&self, name: &str) -> bool {
        self.compiled.is_match(name)
    }
}

/// The regular expression between the slashes of `/…/`, if `source` is one.
fn regex_of(source: &str) -> Option<&str> {
    source
        .strip_prefix('/')
        .and_then(|rest| rest.strip_suffix('/'))
        .filter(|regex| !regex.is_empty())
}

/// `*` and `?` become `.*` and `.`; every other character is literal.
fn glob_to_regex(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 8);
    out.push('^');
    let mut literal = [0u8; 4];
    for c in glob.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c => out.push_str(&regex::escape(c.encode_utf8(&mut literal))),
        }
    }
    out.push('$');
    out
}

impl PartialEq for GroupPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for GroupPattern {}

impl fmt::Debug for GroupPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GroupPattern").field(&self.source).finish()
    }
}

impl fmt::Display for GroupPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for GroupPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for GroupPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Self::parse(&source).map_err(serde::de::Error::custom)
    }
}

/// An allow-list and a deny-list: a name passes when it matches some `allow` pattern (or
/// `allow` is empty) and no `deny` pattern. Deny wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupFilter {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<GroupPattern>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<GroupPattern>,
}

impl GroupFilter {
    /// A filter from pattern texts (a JSON body, or a form's non-blank lines), each list
    /// bounded. An empty entry is refused, not skipped: `""` in a list is a mistake to report.
    pub fn parse(allow: &[String], deny: &[String]) -> Result<Self, PatternError> {
        let list = |texts: &[String]| -> Result<Vec<GroupPattern>, PatternError> {
            if texts.len() > MAX_PATTERNS {
                return Err(PatternError::TooMany);
            }
            texts.iter().map(|t| GroupPattern::parse(t)).collect()
        };
        Ok(Self {
            allow: list(allow)?,
            deny: list(deny)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Checks the list lengths of a filter that came through serde.
    pub fn check(&self) -> Result<(), PatternError> {
        if self.allow.len() > MAX_PATTERNS || self.deny.len() > MAX_PATTERNS {
            return Err(PatternError::TooMany);
        }
        Ok(())
    }

    pub fn permits(&self, name: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|p| p.matches(name)))
            && !self.deny.iter().any(|p| p.matches(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> GroupPattern {
        GroupPattern::parse(s).unwrap()
    }

    #[test]
    fn globs_match_whole_names_and_treat_regex_characters_literally() {
        assert!(p("eng-*").matches("eng-web"));
        assert!(!p("eng-*").matches("xeng-web"));
        assert!(p("team?").matches("team1"));
        assert!(!p("team?").matches("team12"));
        // `.`, `+`, `(` are literal in a glob.
        assert!(p("a.b+(c)").matches("a.b+(c)"));
        assert!(!p("a.b").matches("axb"));
        assert!(p("github:acme/*").matches("github:acme/admins"));
    }

    #[test]
    fn regexes_are_anchored_so_a_substring_never_passes() {
        assert!(p("/admin/").matches("admin"));
        assert!(!p("/admin/").matches("not-admin-really"));
        assert!(p("/eng-(web|api)/").matches("eng-api"));
        assert!(!p("/eng-(web|api)/").matches("eng-apix"));
        // A lone slash or `//` is a glob, not an empty regex.
        assert!(p("/").matches("/"));
        assert!(p("//").matches("//"));
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        assert_eq!(GroupPattern::parse("  "), Err(PatternError::Empty));
        assert!(matches!(
            GroupPattern::parse("/(unclosed/"),
            Err(PatternError::Regex { .. })
        ));
        let long = "a".repeat(MAX_PATTERN_LEN + 1);
        assert!(matches!(
            GroupPattern::parse(&long),
            Err(PatternError::TooLong(_))
        ));
        // A pattern that compiles huge is refused, not built.
        assert!(matches!(
            GroupPattern::parse("/(\\w{100}){100}/"),
            Err(PatternError::Regex { .. })
        ));
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("g{i}")).collect();
        assert_eq!(GroupFilter::parse(&many, &[]), Err(PatternError::TooMany));
    }

    #[test]
    fn a_regex_is_checked_on_its_own_before_it_is_wrapped() {
        // Wrapped blindly, this would become `^(?:a)|(b)$`, matching `a-anything`.
        assert!(matches!(
            GroupPattern::parse("/a)|(b/"),
            Err(PatternError::Regex { .. })
        ));
        assert!(p("/a|b/").matches("b"));
        assert!(!p("/a|b/").matches("ab"));
    }

    #[test]
    fn wildcards_match_across_newlines() {
        assert!(p("*-contractors").matches("x\ny-contractors"));
        assert!(p("a?b").matches("a\nb"));
        assert!(p("/admin.*/").matches("admin\nx"));
        let deny = GroupFilter::parse(&[], &["eng-*".into()]).unwrap();
        assert!(!deny.permits("eng-\nsecret"));
    }

    #[test]
    fn an_empty_entry_in_a_list_is_refused() {
        assert_eq!(
            GroupFilter::parse(&["eng".into(), "".into()], &[]),
            Err(PatternError::Empty)
        );
        assert_eq!(
            GroupFilter::parse(&[], &[" ".into()]),
            Err(PatternError::Empty)
        );
        assert!(toml::from_str::<GroupFilter>("allow = [\"\"]").is_err());
    }

    #[test]
    fn a_glob_can_match_a_prefix_when_its_fixed_text_agrees() {
        assert_eq!(p("corp:admin").can_match_prefix("corp:"), Some(true));
        assert_eq!(p("admin").can_match_prefix("corp:"), Some(false));
        // Wildcard-free and shorter than the prefix: can never match a prefixed name.
        assert_eq!(p("corp").can_match_prefix("corp:"), Some(false));
        assert_eq!(p("corp:eng-*").can_match_prefix("corp:"), Some(true));
        assert_eq!(p("co*").can_match_prefix("corp:"), Some(true));
        assert_eq!(p("*admin").can_match_prefix("corp:"), Some(true));
        assert_eq!(p("eng-*").can_match_prefix("corp:"), Some(false));
        assert_eq!(p("/admin/").can_match_prefix("corp:"), None);
    }

    #[test]
    fn deny_wins_and_an_empty_allow_list_allows_all() {
        let f = GroupFilter::parse(&[], &["*-contractors".into()]).unwrap();
        assert!(f.permits("eng"));
        assert!(!f.permits("eng-contractors"));
        let f = GroupFilter::parse(&["eng-*".into()], &["eng-secret".into()]).unwrap();
        assert!(f.permits("eng-web"));
        assert!(!f.permits("eng-secret"));
        assert!(!f.permits("sales"));
        assert!(GroupFilter::default().permits("anything"));
    }

    #[test]
    fn filters_round_trip_through_toml_and_refuse_bad_patterns() {
        let f: GroupFilter = toml::from_str("allow = [\"eng-*\"]\ndeny = [\"/.*-ext/\"]").unwrap();
        assert!(f.permits("eng-web") && !f.permits("eng-ext"));
        let text = toml::to_string(&f).unwrap();
        assert_eq!(toml::from_str::<GroupFilter>(&text).unwrap(), f);
        assert!(toml::from_str::<GroupFilter>("allow = [\"/(/\"]").is_err());
    }
}
