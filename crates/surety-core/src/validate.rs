//! Input rules shared by every entry point (HTTP, CLI, bootstrap).

use std::collections::BTreeMap;

use crate::error::FieldError;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 200;
/// Longest agent purpose text, in characters.
pub const MAX_PURPOSE: usize = 1024;
/// Longest reason given for a transition, in characters.
pub const MAX_REASON: usize = 500;
/// Most labels on one agent.
pub const MAX_LABELS: usize = 32;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A display name: 1 to 200 characters, no control characters, not blank.
pub fn display_name(field: &str, value: &str) -> Result<String, FieldError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > MAX_DISPLAY_NAME {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_DISPLAY_NAME} characters"),
        ));
    }
    if has_control(trimmed) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// An e-mail address, normalised to lower case so that uniqueness ignores case.
pub fn email(field: &str, value: &str) -> Result<String, FieldError> {
    let value = value.trim();
    let bad = || FieldError::new(field, format!("`{value}` is not an e-mail address"));
    if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = value.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || local.len() > 64
        || domain.is_empty()
        || domain.contains('@')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(bad());
    }
    Ok(value.to_lowercase())
}

/// An agent name: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
/// Unique per owner, ignoring case.
pub fn agent_name(field: &str, value: &str) -> Result<String, FieldError> {
    let ok_len = (1..=64).contains(&value.len());
    let ok_first = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_chars = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok_len && ok_first && ok_chars {
        Ok(value.to_owned())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "`{}` is not a valid name: use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
                truncate(value)
            ),
        ))
    }
}

/// An environment label: 1 to 32 of `a-z 0-9 -`.
pub fn environment(field: &str, value: &str) -> Result<String, FieldError> {
    let ok = (1..=32).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "`{}` is not a valid environment: use 1-32 of a-z 0-9 -",
                truncate(value)
            ),
        ))
    }
}

/// Free text (purpose, reason): at most `max` characters, no control characters but newline
/// and tab.
pub fn free_text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// Agent labels: at most 32; keys 1-63 of `a-z 0-9 . _ / -`; values at most 256 characters.
pub fn labels(
    field: &str,
    labels: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, FieldError> {
    if labels.len() > MAX_LABELS {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_LABELS} labels"),
        ));
    }
    for (k, v) in labels {
        let key_ok = (1..=63).contains(&k.len())
            && k.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '/' | '-')
            });
        if !key_ok {
            return Err(FieldError::new(
                format!("{field}.{}", truncate(k)),
                "label keys are 1-63 of a-z 0-9 . _ / -",
            ));
        }
        if v.chars().count() > 256 || has_control(v) {
            return Err(FieldError::new(
                format!("{field}.{k}"),
                "label values are at most 256 characters, without control characters",
            ));
        }
    }
    Ok(labels.clone())
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            email("email", " Ada@Example.COM ").as_deref(),
            Ok("ada@example.com")
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "ada@ex..com",
            "a@b@c",
        ] {
            let err = email("email", bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
        }
    }

    #[test]
    fn agent_names_are_restricted() {
        assert!(agent_name("name", "invoice-bot.v2_x").is_ok());
        for bad in ["", "-lead", "has space", "ünïcode", &"a".repeat(65)] {
            assert!(agent_name("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_name_the_bad_key() {
        let mut l = BTreeMap::new();
        l.insert("Team".to_owned(), "x".to_owned());
        assert_eq!(labels("labels", &l).unwrap_err().field, "labels.Team");
        let mut l = BTreeMap::new();
        l.insert("team".to_owned(), "bad\u{7}".to_owned());
        assert_eq!(labels("labels", &l).unwrap_err().field, "labels.team");
    }

    #[test]
    fn display_names_reject_blank_and_control() {
        assert!(display_name("display_name", "  ").is_err());
        assert!(display_name("display_name", "a\u{0}b").is_err());
        assert_eq!(display_name("display_name", " Ada ").as_deref(), Ok("Ada"));
    }
}
