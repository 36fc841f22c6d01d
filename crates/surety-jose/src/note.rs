//! C2SP signed notes (`c2sp.org/signed-note`, Ed25519 signatures) and the transparency-log
//! checkpoints they carry (`c2sp.org/tlog-checkpoint`): how the audit log's tree heads are
//! published, so that anyone with the log's public key — and any tool of the transparency
//! ecosystem — can check them.
//!
//! A note is a UTF-8 text ending in a newline, a blank line, then signature lines
//! `— <key name> base64(key ID ‖ signature)`. The key ID of an Ed25519 key is the first four
//! bytes of `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`; a verifier key is written
//! `<name>+<key ID in hex>+base64(0x01 ‖ public key)`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::error::JoseError;
use crate::jwk::{PrivateJwk, PublicJwk};
use crate::jws::Alg;

/// The signature type byte of Ed25519 (signed-note §Signature types).
const ED25519: u8 = 0x01;
/// Most signature lines read from one note.
const MAX_SIGNATURES: usize = 100;
/// The em dash that opens a signature line.
const DASH: &str = "\u{2014} ";

fn malformed(what: &'static str) -> JoseError {
    JoseError::Malformed(what)
}

/// A key name is non-empty, without spaces or `+`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// The key ID of the Ed25519 key `public` named `name`.
#[must_use]
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut input = Vec::with_capacity(name.len() + 34);
    input.extend_from_slice(name.as_bytes());
    input.push(b'\n');
    input.push(ED25519);
    input.extend_from_slice(public);
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    let mut id = [0u8; 4];
    id.copy_from_slice(&d.as_ref()[..4]);
    u32::from_be_bytes(id)
}

/// A verifier key: a name and an Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteKey {
    /// The key name (a schema-less URL, by convention).
    pub name: String,
    /// The raw Ed25519 public key.
    pub public: [u8; 32],
}

impl NoteKey {
    /// A verifier key named `name` for the Ed25519 JWK `jwk` (`OKP`, `Ed25519`).
    pub fn from_jwk(name: &str, jwk: &PublicJwk) -> Result<Self, JoseError> {
        if !valid_name(name) {
            return Err(malformed("a key name is non-empty, without spaces or `+`"));
        }
        let value = jwk.to_json();
        let x = value["x"]
            .as_str()
            .filter(|_| value["crv"] == "Ed25519")
            .and_then(crate::b64::decode)
            .ok_or(JoseError::InvalidJwk {
                field: "crv",
                reason: "a signed-note key must be Ed25519".into(),
            })?;
        let public: [u8; 32] = x.try_into().map_err(|_| JoseError::InvalidJwk {
            field: "x",
            reason: "must be 32 bytes".into(),
        })?;
        Ok(Self {
            name: name.to_owned(),
            public,
        })
    }

    /// Parses `<name>+<key ID hex>+base64(0x01 ‖ public key)`, checking the key ID.
    pub fn parse(vkey: &str) -> Result<Self, JoseError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("a verifier key is `name+id+key`"));
        };
        if !valid_name(name) || id.len() != 8 {
            return Err(malformed("a verifier key's name or key ID is malformed"));
        }
        let id = u32::from_str_radix(id, 16).map_err(|_| malformed("the key ID is not hex"))?;
        let bytes = STANDARD
            .decode(key)
            .map_err(|_| malformed("the key is not base64"))?;
        let (Some(&ED25519), Ok(public)) = (bytes.first(), <[u8; 32]>::try_from(&bytes[1..]))
        else {
            return Err(malformed(
                "only Ed25519 verifier keys (type 0x01) are supported",
            ));
        };
        let key = Self {
            name: name.to_owned(),
            public,
        };
        if key.id() != id {
            return Err(malformed("the key ID does not match the key"));
        }
        Ok(key)
    }

    /// Its key ID.
    #[must_use]
    pub fn id(&self) -> u32 {
        key_id(&self.name, &self.public)
    }

    /// The verifier key string.
    #[must_use]
    pub fn vkey(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(&self.public);
        format!("{}+{:08x}+{}", self.name, self.id(), STANDARD.encode(bytes))
    }

    fn verify(&self, text: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        let jwk = PublicJwk::from_json(&json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": crate::b64::encode(&self.public),
        }))?;
        jwk.verify(Alg::Ed25519, text, signature)
    }
}

/// Checks that a note text is UTF-8 without control characters other than newlines, ending
/// in a newline.
fn check_text(text: &str) -> Result<(), JoseError> {
    if !text.ends_with('\n') {
        return Err(malformed("a note text ends with a newline"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(malformed("a note has no control characters but newlines"));
    }
    Ok(())
}

/// Signs `text` (ending in a newline) as `name` with the Ed25519 key `key`: the signed note.
pub fn sign(text: &str, name: &str, key: &PrivateJwk) -> Result<String, JoseError> {
    check_text(text)?;
    let note_key = NoteKey::from_jwk(name, key.public())?;
    if key.jws_alg() != Alg::EdDSA && key.jws_alg() != Alg::Ed25519 {
        return Err(malformed("signed notes are signed with Ed25519"));
    }
    let mut blob = note_key.id().to_be_bytes().to_vec();
    blob.extend_from_slice(&key.sign(text.as_bytes())?);
    Ok(format!("{text}\n{DASH}{name} {}\n", STANDARD.encode(blob)))
}

/// Opens a signed note: its text, once a signature by one of `keys` verifies. Signatures by
/// unknown keys are ignored; one by a known key that fails rejects the note (signed-note
/// §Signatures).
pub fn open<'a>(note: &'a str, keys: &[NoteKey]) -> Result<&'a str, JoseError> {
    if !note.ends_with('\n') {
        return Err(malformed("a signed note ends with a newline"));
    }
    // The text ends at the last blank line.
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("a signed note has a blank line before its signatures"))?;
    let (text, signatures) = (&note[..=split], &note[split + 2..]);
    check_text(text)?;
    let mut verified = false;
    for (n, line) in signatures.lines().enumerate() {
        if n >= MAX_SIGNATURES {
            return Err(malformed("too many signatures"));
        }
        let rest = line
            .strip_prefix(DASH)
            .ok_or_else(|| malformed("a signature line starts with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("a signature line is `— name signature`"))?;
        let blob = STANDARD
            .decode(b64)
            .map_err(|_| malformed("a signature is not base64"))?;
        if !valid_name(name) || blob.len() < 5 {
            return Err(malformed("a signature line is malformed"));
        }
        let id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
        let Some(key) = keys.iter().find(|k| k.name == name && k.id() == id) else {
            continue;
        };
        key.verify(text.as_bytes(), &blob[4..])?;
        verified = true;
    }
    if verified {
        Ok(text)
    } else {
        Err(JoseError::BadSignature)
    }
}

/// A transparency-log checkpoint (`c2sp.org/tlog-checkpoint`): the log's origin, its size and
/// root hash, and optional extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log (a schema-less URL, by convention).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 9162 root hash of those leaves.
    pub root: [u8; 32],
    /// Further lines (Surety writes the time and the previous checkpoint's size and root).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text of the checkpoint.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }

    /// Parses a checkpoint's note text.
    pub fn parse(text: &str) -> Result<Self, JoseError> {
        check_text(text)?;
        let mut lines = text[..text.len() - 1].split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(malformed("a checkpoint starts with its origin"));
        }
        let size = lines.next().unwrap_or_default();
        let canonical = size == "0" || (!size.starts_with('0') && !size.is_empty());
        let size: u64 = size
            .parse()
            .ok()
            .filter(|_| canonical && size.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| malformed("a checkpoint's second line is its size in decimal"))?;
        let root = STANDARD
            .decode(lines.next().unwrap_or_default())
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .ok_or_else(|| malformed("a checkpoint's third line is a base64 SHA-256 root"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(malformed("a checkpoint has no empty lines"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

#[cfg(test)]
mod tests;
