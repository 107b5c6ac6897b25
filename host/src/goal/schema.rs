//! Config schemas: kazi checks a predicate's config against the JSON Schema its
//! component declares with the same validator the SDK runs inside components
//! (`kazi_sdk::schema`), so a host and a guest never disagree about a config. It reads
//! what `schemars` emits (`$ref`, `$defs`, nullable types, `anyOf` of forms) and the
//! hand-written subset older components declare; see that module for the keywords.

pub use kazi_sdk::config::display_path;
pub use kazi_sdk::schema::{Violation, parse_pointer, pointer, validate};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn violations_carry_their_path_and_hint() {
        let schema = json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {"run": {"type": "array", "items": {"type": "string"}}}
        });
        let v = validate(&schema, &json!({"rn": 1, "run": ["a", 2]}));
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].pointer(), "/rn");
        assert_eq!(v[0].hint.as_deref(), Some("did you mean `run`?"));
        assert_eq!(display_path(&v[1].path), "run[1]");
        let p = json!({"type": "string", "pattern": "^a"});
        assert_eq!(validate(&p, &json!("b")).len(), 1, "patterns are checked");
    }
}
