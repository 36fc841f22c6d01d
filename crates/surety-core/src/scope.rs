//! Scopes: the action names a grant delegates and a token carries (RFC 6749 §3.3: a
//! space-separated, order-free set). Attenuation is a subset check, never a trust in the
//! caller's arithmetic.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::FieldError;

/// Longest scope token, in bytes.
pub const MAX_SCOPE_LEN: usize = 100;
/// Most scopes in one set.
pub const MAX_SCOPES: usize = 64;

/// A set of scope tokens, each an action name such as `payments.transfer`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(BTreeSet<String>);

/// Whether `s` is an acceptable scope token: letters, digits and `.`, `_`, `:`, `-`, `/`,
/// 1 to [`MAX_SCOPE_LEN`] bytes — a strict subset of RFC 6749's `scope-token` grammar.
fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SCOPE_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-' | b'/'))
}

impl ScopeSet {
    /// Builds a set from separate tokens (an API list); `field` names the input in errors.
    pub fn from_tokens<I, S>(field: &str, tokens: I) -> Result<Self, FieldError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for token in tokens {
            let token = token.as_ref();
            if !valid_token(token) {
                return Err(FieldError::new(
                    field,
                    format!(
                        "`{}` is not a valid scope: use 1 to {MAX_SCOPE_LEN} letters, digits or `._:-/`",
                        token.chars().take(MAX_SCOPE_LEN).collect::<String>()
                    ),
                ));
            }
            set.insert(token.to_owned());
        }
        if set.len() > MAX_SCOPES {
            return Err(FieldError::new(
                field,
                format!("at most {MAX_SCOPES} scopes are allowed"),
            ));
        }
        Ok(Self(set))
    }

    /// Parses the space-separated form of RFC 6749 §3.3. Repeated spaces are malformed.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        if value.is_empty() {
            return Err(FieldError::new(field, "must name at least one scope"));
        }
        Self::from_tokens(field, value.split(' '))
    }

    /// Whether every scope of `self` is in `other`.
    #[must_use]
    pub fn is_subset(&self, other: &Self) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The scopes of `self` that are not in `other`.
    #[must_use]
    pub fn missing_from<'a>(&'a self, other: &Self) -> Vec<&'a str> {
        self.0
            .iter()
            .filter(|s| !other.0.contains(*s))
            .map(String::as_str)
            .collect()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `scope` is in the set.
    #[must_use]
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The scopes as a sorted list.
    #[must_use]
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

/// The space-separated form, sorted.
impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc6749_s3_3_scope_is_a_space_separated_order_free_set() {
        let a = ScopeSet::parse("scope", "b.read a.write b.read").unwrap();
        let b = ScopeSet::parse("scope", "a.write b.read").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "a.write b.read");
    }

    #[test]
    fn malformed_scopes_are_refused() {
        for bad in [
            "",
            "a  b",
            " a",
            "a ",
            "a\"b",
            "a\\b",
            "é",
            &"x".repeat(101),
        ] {
            assert!(ScopeSet::parse("scope", bad).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
        assert!(ScopeSet::from_tokens("scopes", &many).is_err());
    }

    #[test]
    fn subset_and_missing() {
        let grant = ScopeSet::parse("s", "crm.read payments.transfer").unwrap();
        let asked = ScopeSet::parse("s", "crm.read iam.grant_role").unwrap();
        assert!(!asked.is_subset(&grant));
        assert_eq!(asked.missing_from(&grant), vec!["iam.grant_role"]);
        let narrow = ScopeSet::parse("s", "crm.read").unwrap();
        assert!(narrow.is_subset(&grant));
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(tokens in prop::collection::btree_set("[a-z][a-z0-9._:-]{0,12}", 1..10)) {
            let set = ScopeSet::from_tokens("s", &tokens).unwrap();
            prop_assert_eq!(ScopeSet::parse("s", &set.to_string()).unwrap(), set);
        }

        #[test]
        fn subset_is_transitive_and_attenuation_never_widens(
            a in prop::collection::btree_set("[a-d]", 1..4),
            b in prop::collection::btree_set("[a-d]", 1..4),
        ) {
            let sa = ScopeSet::from_tokens("s", &a).unwrap();
            let sb = ScopeSet::from_tokens("s", &b).unwrap();
            prop_assert_eq!(sa.is_subset(&sb), a.is_subset(&b));
            prop_assert_eq!(sa.missing_from(&sb).is_empty(), sa.is_subset(&sb));
        }
    }
}
