//! Known answers from Go's `golang.org/x/mod/sumdb/note` tests and the signed-note spec's own
//! example: Ed25519 is deterministic, so signing the published text with the published key
//! must give the published note, byte for byte.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::*;

const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                          then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

fn peter_private() -> PrivateJwk {
    let seed = STANDARD
        // `PRIVATE+KEY+name+id+key`: the key itself may contain `+`.
        .decode(PETER_SKEY.splitn(5, '+').nth(4).unwrap_or_default())
        .unwrap_or_default();
    let public = NoteKey::parse(PETER_VKEY).unwrap_or_else(|e| unreachable!("{e}"));
    PrivateJwk::from_json(&json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "d": crate::b64::encode(&seed[1..]),
        "x": crate::b64::encode(&public.public),
    }))
    .unwrap_or_else(|e| unreachable!("{e}"))
}

#[test]
fn signing_the_published_text_gives_the_published_note() {
    let note = sign(PETER_TEXT, "PeterNeumann", &peter_private()).unwrap_or_default();
    assert_eq!(note, format!("{PETER_TEXT}\n{PETER_SIG}"));
    let key = NoteKey::parse(PETER_VKEY).unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(key.id(), 0xc74f_20a3);
    assert_eq!(key.vkey(), PETER_VKEY);
    assert_eq!(open(&note, &[key]).ok(), Some(PETER_TEXT));
}

#[test]
fn the_specs_example_opens_with_its_key() {
    let key = NoteKey::parse(SPEC_VKEY).unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(
        open(SPEC_NOTE, &[key]).ok(),
        Some("This is an example message.\n")
    );
}

#[test]
fn altered_unsigned_or_malformed_notes_do_not_open() {
    let peter = NoteKey::parse(PETER_VKEY).unwrap_or_else(|e| unreachable!("{e}"));
    let spec = NoteKey::parse(SPEC_VKEY).unwrap_or_else(|e| unreachable!("{e}"));
    let note = format!("{PETER_TEXT}\n{PETER_SIG}");
    // One changed character.
    let altered = note.replace("cryptography", "cryptographY");
    assert!(matches!(
        open(&altered, std::slice::from_ref(&peter)),
        Err(JoseError::BadSignature)
    ));
    // Signed by nobody this verifier knows.
    assert!(matches!(
        open(&note, std::slice::from_ref(&spec)),
        Err(JoseError::BadSignature)
    ));
    // A known name with another key ID is another key: ignored, so unverified.
    let impostor = NoteKey {
        name: "PeterNeumann".into(),
        public: spec.public,
    };
    assert!(open(&note, &[impostor]).is_err());
    for bad in [
        PETER_TEXT.to_owned(),             // no signatures
        note.trim_end().to_owned(),        // no final newline
        note.replace("\u{2014} ", "- "),   // not an em dash
        format!("a\u{7}b\n\n{PETER_SIG}"), // a control character
        note.replace("x08go/", "x08go*"),  // not base64
    ] {
        assert!(open(&bad, std::slice::from_ref(&peter)).is_err(), "{bad:?}");
    }
    assert!(
        NoteKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .is_err(),
        "wrong key ID"
    );
    assert!(
        NoteKey::parse("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .is_err(),
        "a space"
    );
}

#[test]
fn checkpoints_round_trip_and_refuse_non_canonical_text() {
    let cp = Checkpoint {
        origin: "surety.example/audit".into(),
        size: 8,
        root: [7; 32],
        extensions: vec!["time 1764331200".into()],
    };
    let text = cp.to_text();
    assert_eq!(
        text,
        format!(
            "surety.example/audit\n8\n{}\ntime 1764331200\n",
            STANDARD.encode([7u8; 32])
        )
    );
    assert_eq!(Checkpoint::parse(&text), Ok(cp.clone()));
    let root = STANDARD.encode([7u8; 32]);
    for bad in [
        format!("\n8\n{root}\n"),
        format!("o\n08\n{root}\n"),
        format!("o\n-1\n{root}\n"),
        format!("o\n8\n{}\n", STANDARD.encode([7u8; 31])),
        format!("o\n8\n{root}\n\nx\n"),
        format!("o\n8\n{root}"),
    ] {
        assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
    }
    // Signed and opened as a note.
    let key = peter_private();
    let signed = sign(&text, "surety.example/audit", &key).unwrap_or_default();
    let vkey = NoteKey::from_jwk("surety.example/audit", key.public())
        .unwrap_or_else(|e| unreachable!("{e}"));
    let opened = open(&signed, &[vkey]).unwrap_or_default();
    assert_eq!(Checkpoint::parse(opened), Ok(cp));
}
