//! A canonical JSON text: object members sorted by key (UTF-16 code units, as RFC 8785
//! §3.2.3 orders them), no insignificant whitespace, strings and numbers as `serde_json`
//! writes them. Two parties that hold the same value produce the same bytes whatever order
//! the members arrived in — which is what a digest that someone signs must rest on.
//!
//! Numbers are written as parsed: integers exactly, other numbers in `serde_json`'s shortest
//! round-trip form. Approval requests carry amounts as JSON numbers; both sides parse them
//! with `serde_json`, so both write them the same way.

use serde_json::Value;

/// The canonical text of `value`.
#[must_use]
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_are_sorted_at_every_depth_and_order_of_arrival_does_not_matter() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":3}],"x":"é"}}"#)
            .unwrap_or_default();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"é","y":[1,{"c":3,"d":2}]},"b":1}"#)
            .unwrap_or_default();
        assert_eq!(
            to_string(&a),
            r#"{"a":{"x":"é","y":[1,{"c":3,"d":2}]},"b":1}"#
        );
        assert_eq!(to_string(&a), to_string(&b));
    }

    #[test]
    fn keys_order_by_utf16_code_units_as_rfc8785_does() {
        // U+E000 sorts after U+1F600 in UTF-16 (0xD83D… < 0xE000), before it in UTF-8.
        let v = json!({"\u{e000}": 1, "\u{1f600}": 2});
        assert_eq!(to_string(&v), "{\"\u{1f600}\":2,\"\u{e000}\":1}");
    }

    #[test]
    fn arrays_keep_their_order_and_strings_are_escaped() {
        assert_eq!(to_string(&json!(["b", "a\"\n"])), r#"["b","a\"\n"]"#);
        assert_ne!(to_string(&json!([1, 2])), to_string(&json!([2, 1])));
    }
}
