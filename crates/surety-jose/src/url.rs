//! URI comparison for DPoP `htu` (RFC 9449 §4.3 step 9): scheme and host are compared
//! case-insensitively, default ports are dropped, percent-encoding is normalised
//! (RFC 3986 §6.2.2), and the query and fragment are ignored.

use crate::error::JoseError;

/// The normalised form of an http(s) URI without query and fragment.
pub fn normalize_htu(raw: &str) -> Result<String, JoseError> {
    let bad = |why: &str| JoseError::claim("htu", why.to_owned());
    let mut url = url::Url::parse(raw).map_err(|_| bad("is not an absolute URI"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http or https URI"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain user information"));
    }
    url.set_query(None);
    url.set_fragment(None);
    // `url` already lower-cases scheme and host, removes default ports and resolves dot
    // segments (§6.2.2.1, §6.2.2.3, §6.2.3); finish with percent-encoding (§6.2.2.2).
    normalize_percent_encoding(url.as_str())
        .ok_or_else(|| bad("has a `%` that is not followed by two hex digits"))
}

/// Upper-cases percent-encoded hex digits and decodes octets that are unreserved. A `%`
/// not followed by two hex digits is not a URI (RFC 3986 §2.1): `None`, so that decoding
/// can never assemble a new escape from the pieces of a broken one.
fn normalize_percent_encoding(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(char::from(bytes[i]));
            i += 1;
            continue;
        }
        let hi = bytes.get(i + 1).copied().and_then(hex)?;
        let lo = bytes.get(i + 2).copied().and_then(hex)?;
        let octet = hi * 16 + lo;
        if octet.is_ascii_alphanumeric() || matches!(octet, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(octet));
        } else {
            out.push('%');
            out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
            out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
        }
        i += 3;
    }
    Some(out)
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9449_s4_3_htu_ignores_query_fragment_case_and_default_port() {
        let canonical = normalize_htu("https://server.example.com/token").unwrap();
        for equivalent in [
            "HTTPS://Server.Example.COM/token",
            "https://server.example.com:443/token",
            "https://server.example.com/token?x=1#frag",
            "https://server.example.com/a/../token",
            "https://server.example.com/%74oken",
        ] {
            assert_eq!(
                normalize_htu(equivalent).unwrap(),
                canonical,
                "{equivalent}"
            );
        }
        for different in [
            "http://server.example.com/token",
            "https://server.example.com:8443/token",
            "https://server.example.com/token/",
            "https://other.example.com/token",
        ] {
            assert_ne!(normalize_htu(different).unwrap(), canonical, "{different}");
        }
    }

    #[test]
    fn percent_encoding_hex_case_is_normalised() {
        assert_eq!(
            normalize_htu("https://a.example/x%2fy").unwrap(),
            normalize_htu("https://a.example/x%2Fy").unwrap()
        );
    }

    #[test]
    fn non_http_and_relative_uris_are_refused() {
        for bad in [
            "/token",
            "ftp://a.example/x",
            "https://user:pw@a.example/x",
            "not a uri",
        ] {
            assert!(normalize_htu(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn normalisation_is_idempotent(path in "(/[a-zA-Z0-9%._~-]{0,12}){0,4}", host in "[a-z]{1,10}\\.example") {
            if let Ok(once) = normalize_htu(&format!("https://{host}{path}")) {
                prop_assert_eq!(normalize_htu(&once).unwrap(), once);
            }
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,200}") {
            let _ = normalize_htu(&s);
        }
    }
}
