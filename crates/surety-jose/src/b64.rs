//! Base64url without padding (RFC 7515 §2), strict on decode.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes.
#[must_use]
pub fn encode(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes; rejects padding, the standard alphabet and non-canonical trailing bits.
pub fn decode(data: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decoding() {
        assert_eq!(decode("AQAB").as_deref(), Some(&[1u8, 0, 1][..]));
        assert!(decode("AQAB=").is_none(), "padding");
        assert!(decode("a+/b").is_none(), "standard alphabet");
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
    }
}
