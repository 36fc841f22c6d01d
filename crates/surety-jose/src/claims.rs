//! Typed access to JWT claims (RFC 7519 §4.1) with precise errors.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::error::JoseError;

/// Longest `jti` accepted, in bytes: long enough for any sane generator, short enough for a
/// replay cache.
pub const MAX_JTI_LEN: usize = 256;

pub(crate) type Claims = Map<String, Value>;

/// A string claim, if present.
pub(crate) fn string<'a>(c: &'a Claims, name: &'static str) -> Result<Option<&'a str>, JoseError> {
    match c.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JoseError::claim(name, "must be a string")),
    }
}

/// A required string claim.
pub(crate) fn required_string<'a>(c: &'a Claims, name: &'static str) -> Result<&'a str, JoseError> {
    string(c, name)?.ok_or(JoseError::Missing(name))
}

/// A NumericDate claim (seconds since the epoch, possibly fractional), if present.
pub(crate) fn date(c: &Claims, name: &'static str) -> Result<Option<OffsetDateTime>, JoseError> {
    let Some(v) = c.get(name) else {
        return Ok(None);
    };
    let secs = match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.floor() as i64)
        }),
        _ => None,
    }
    .ok_or_else(|| JoseError::claim(name, "must be a NumericDate (seconds since the epoch)"))?;
    OffsetDateTime::from_unix_timestamp(secs)
        .map(Some)
        .map_err(|_| JoseError::claim(name, "is out of range"))
}

/// A required `jti`, bounded in length.
pub(crate) fn jti(c: &Claims) -> Result<&str, JoseError> {
    let jti = required_string(c, "jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(JoseError::claim(
            "jti",
            format!("must be 1 to {MAX_JTI_LEN} bytes"),
        ));
    }
    Ok(jti)
}

/// `aud` as a list: a single string or an array of strings (RFC 7519 §4.1.3).
pub(crate) fn audiences(c: &Claims) -> Result<Vec<&str>, JoseError> {
    match c.get("aud") {
        None => Err(JoseError::Missing("aud")),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| JoseError::claim("aud", "must contain only strings"))
            })
            .collect(),
        Some(_) => Err(JoseError::claim(
            "aud",
            "must be a string or an array of strings",
        )),
    }
}

/// Seconds since the epoch, as a JSON number.
pub(crate) fn numeric(t: OffsetDateTime) -> Value {
    Value::from(t.unix_timestamp())
}
