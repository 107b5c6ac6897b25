//! TOML documents as JSON values, so `toml` checks and a TOML config use the same
//! [`JsonPath`](kazi_sdk::json_path::JsonPath) lookups as JSON.

use serde_json::Value;

/// A TOML value as JSON: datetimes become their TOML text, non-finite floats their
/// TOML spelling (`inf`, `nan`).
pub fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => table_to_json(t),
    }
}

/// A TOML table as a JSON object.
pub fn table_to_json(t: &toml::Table) -> Value {
    Value::Object(
        t.iter()
            .map(|(k, v)| (k.clone(), toml_to_json(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn toml_converts_to_json() {
        let t: toml::Table = "a = 1\nb = 2.5\nc = [true]\nd = 1979-05-27\n[e]\nf = \"g\"\n"
            .parse()
            .unwrap();
        assert_eq!(
            table_to_json(&t),
            json!({"a": 1, "b": 2.5, "c": [true], "d": "1979-05-27", "e": {"f": "g"}})
        );
    }
}
