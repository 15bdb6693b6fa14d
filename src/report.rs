//! What every JSON document kabi prints has in common.
//!
//! Each `--json` output (check, verify, diff-abi, info, weak status) is one JSON object with
//! `"format": FORMAT` beside its own fields, described by a schema in `docs/schemas/`. The
//! number changes when a field is removed, renamed or changes meaning; adding a field does not
//! change it (consumers ignore what they do not know).

use serde::Serialize;

/// The version of kabi's JSON documents.
pub const FORMAT: u32 = 1;

/// `body` (which must serialize to an object) with `"format"`, pretty-printed, with a final
/// newline.
pub fn json_document(body: &impl Serialize) -> String {
    let mut v = match serde_json::to_value(body) {
        Ok(v) => v,
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("format".into(), FORMAT.into());
    }
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_document_carries_the_format() {
        let s = super::json_document(&serde_json::json!({"a": [1]}));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v, serde_json::json!({"a": [1], "format": super::FORMAT}));
        assert!(s.ends_with("}\n"));
    }
}
