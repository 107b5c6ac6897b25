//! Configs as Rust types. A predicate's config (or a profile's `[agent]` options) is
//! one type implementing `serde::Deserialize` and `schemars::JsonSchema`: its JSON
//! Schema, the check at load ([`check`]: unknown keys with "did you mean", wrong
//! types, each reported as a [`ConfigError`] with a JSON pointer) and the parsing at
//! evaluation all come from it. [`Config`] is the untyped alternative: any JSON object.

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::schema::{self, Violation};

/// One problem with a config, where it is: kazi shows it at the goal file's line and
/// column of the value the pointer names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// A JSON pointer (RFC 6901) to the value: `/run/0`; empty for the whole config.
    pub pointer: String,
    /// What is wrong, reading after the value's name: `is not a valid regex: …`.
    pub message: String,
    /// The next step, if there is one.
    pub hint: Option<String>,
}

impl ConfigError {
    /// A problem with the config as a whole (`needs `path` or `glob``).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            pointer: String::new(),
            message: message.into(),
            hint: None,
        }
    }

    /// A problem with the top-level key `key`.
    pub fn at(key: &str, message: impl Into<String>) -> Self {
        Self::at_path(&[key], message)
    }

    /// A problem with the value at `path` (keys and array indexes): `&["run", "0"]`.
    pub fn at_path<S: AsRef<str>>(path: &[S], message: impl Into<String>) -> Self {
        Self {
            pointer: schema::pointer(path),
            message: message.into(),
            hint: None,
        }
    }

    /// With a hint: the next step for the person who wrote the config.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The value's name as a goal shows it: `run[0]`, `headers.Accept`; empty for the
    /// whole config.
    pub fn name(&self) -> String {
        display_path(&schema::parse_pointer(&self.pointer).unwrap_or_default())
    }

    /// `` `name` message; hint: … ``, the error as one line.
    pub fn render(&self) -> String {
        let name = self.name();
        let mut out = if name.is_empty() {
            self.message.clone()
        } else {
            format!("`{name}` {}", self.message)
        };
        if let Some(hint) = &self.hint {
            out.push_str("; hint: ");
            out.push_str(hint);
        }
        out
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config: {}", self.render())
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::new(e.to_string())
    }
}

impl From<Violation> for ConfigError {
    fn from(v: Violation) -> Self {
        Self {
            pointer: v.pointer(),
            message: v.message,
            hint: v.hint,
        }
    }
}

/// Keys and indexes as a goal spells them: `run[0]`, `headers.Accept`, `json."$.a"`.
pub fn display_path<S: AsRef<str>>(path: &[S]) -> String {
    let mut out = String::new();
    for (i, part) in path.iter().enumerate() {
        let part = part.as_ref();
        let plain = !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if i > 0 && !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else if plain {
            if i > 0 {
                out.push('.');
            }
            out.push_str(part);
        } else {
            if i > 0 {
                out.push('.');
            }
            out.push_str(&format!("{part:?}"));
        }
    }
    out
}

/// A config type: its JSON Schema and how it is read. Implemented for every
/// `Deserialize + JsonSchema` type (derive both; add `#[serde(deny_unknown_fields)]`
/// so that a typo is refused with a "did you mean").
pub trait ConfigType: Sized {
    /// The JSON Schema of the config.
    fn schema() -> Value;
    /// Read a JSON value; the error says where it went wrong.
    fn from_value(value: Value) -> Result<Self, ConfigError>;
    /// Read JSON text: the fast path at evaluation, where the config was already checked.
    fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value = serde_json::from_str(text)
            .map_err(|e| ConfigError::new(format!("is not JSON: {e}")))?;
        Self::from_value(value)
    }
}

impl<T: DeserializeOwned + JsonSchema> ConfigType for T {
    fn schema() -> Value {
        schema::schema_for::<T>()
    }

    fn from_value(value: Value) -> Result<Self, ConfigError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path: Vec<String> = e
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    serde_path_to_error::Segment::Enum { .. }
                    | serde_path_to_error::Segment::Unknown => None,
                })
                .collect();
            ConfigError::at_path(&path, format!("is invalid: {}", e.into_inner()))
        })
    }

    fn from_json(text: &str) -> Result<Self, ConfigError> {
        match serde_json::from_str(text) {
            Ok(c) => Ok(c),
            // Read again, slowly, only to say where it went wrong.
            Err(e) => match serde_json::from_str::<Value>(text) {
                Ok(value) => Self::from_value(value),
                Err(_) => Err(ConfigError::new(format!("is not JSON: {e}"))),
            },
        }
    }
}

/// Check `value` against `schema` (every violation), then read it as `C` (the first
/// error serde finds, if the schema let something through).
pub fn check<C: ConfigType>(schema: &Value, value: Value) -> Result<C, Vec<ConfigError>> {
    let violations = schema::validate(schema, &value);
    if !violations.is_empty() {
        return Err(violations.into_iter().map(ConfigError::from).collect());
    }
    C::from_value(value).map_err(|e| vec![e])
}

/// An untyped config: the JSON object from the goal, read with the typed getters
/// below. Its schema is `{"type": "object"}` unless `describe` declares one; prefer a
/// config type of your own, which gives the schema and the checks for free.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config(Value);

impl<'de> serde::Deserialize<'de> for Config {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Value::deserialize(d).map(Config)
    }
}

impl JsonSchema for Config {
    fn schema_name() -> Cow<'static, str> {
        "Config".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "object"})
    }
}

impl Config {
    /// Wrap a JSON value (an object).
    pub fn new(value: Value) -> Self {
        Self(value)
    }

    /// The whole config.
    pub fn value(&self) -> &Value {
        &self.0
    }

    /// The config as a JSON object; any other JSON value is an error.
    pub fn object(&self) -> Result<&serde_json::Map<String, Value>> {
        self.0.as_object().ok_or_else(|| {
            Error::new(format!(
                "config: must be a JSON object of keys, got {}",
                crate::text::truncate(&self.0.to_string(), 60)
            ))
        })
    }

    /// Refuse keys outside `known`, naming the first unknown key and, when one of
    /// `known` is close, with a `hint: did you mean …`.
    pub fn deny_unknown_keys(&self, known: &[&str]) -> Result<()> {
        for key in self.object()?.keys() {
            if !known.contains(&key.as_str()) {
                return Err(unknown_key_error(key, known));
            }
        }
        Ok(())
    }

    /// A key's raw value, if present and not null.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// An optional string key; a value of another type is an error naming the key.
    pub fn str(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(type_error(key, "a string", other)),
        }
    }

    /// A required string key.
    pub fn require_str(&self, key: &str) -> Result<&str> {
        self.str(key)?
            .ok_or_else(|| Error::new(format!("config: missing required key `{key}`")))
    }

    /// An optional boolean key.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(type_error(key, "a boolean", other)),
        }
    }

    /// An optional non-negative integer key.
    pub fn u64(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| type_error(key, "a non-negative integer", v)),
        }
    }

    /// An optional list of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| type_error(key, "a list of strings", i))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(other) => Err(type_error(key, "a list of strings", other)),
        }
    }
}

/// The error for a config key outside `known`, with a "did you mean" hint when one is close.
pub fn unknown_key_error(key: &str, known: &[&str]) -> Error {
    match crate::text::did_you_mean(key, known.iter().copied()) {
        Some(close) => Error::new(format!(
            "config: unknown key `{key}`; hint: did you mean `{close}`?"
        )),
        None => Error::new(format!(
            "config: unknown key `{key}`; hint: the known keys are {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn type_error(key: &str, expected: &str, got: &Value) -> Error {
    Error::new(format!("config: `{key}` must be {expected}, got {got}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        /// A file.
        path: String,
        #[serde(default)]
        exists: Option<bool>,
        #[serde(default)]
        run: Vec<String>,
    }

    fn errors(v: Value) -> Vec<String> {
        check::<Demo>(&Demo::schema(), v)
            .unwrap_err()
            .iter()
            .map(ConfigError::render)
            .collect()
    }

    #[test]
    fn a_typed_config_is_checked_and_read() {
        let d: Demo = check(&Demo::schema(), json!({"path": "a", "run": ["x"]})).unwrap();
        assert_eq!(
            d,
            Demo {
                path: "a".into(),
                exists: None,
                run: vec!["x".into()]
            }
        );
        assert_eq!(
            errors(json!({"pth": "a", "exists": "yes", "run": ["x", 2]})),
            [
                "`path` is required (A file)",
                "`exists` must be a boolean, found a string \"yes\"",
                "`pth` is not a known key; hint: did you mean `path`?",
                "`run[1]` must be a string, found an integer 2",
            ]
        );
        assert_eq!(errors(json!([1])), ["must be a table, found an array [1]"]);
    }

    #[test]
    fn serde_errors_carry_their_pointer() {
        // A schema that lets everything through: serde still says where.
        let e = check::<Demo>(&json!({}), json!({"path": "a", "run": [1]})).unwrap_err();
        assert_eq!(e[0].pointer, "/run/0");
        assert!(
            e[0].message.starts_with("is invalid: invalid type"),
            "{e:?}"
        );
        let e = Demo::from_json("{\"path\": 1}").unwrap_err();
        assert_eq!(e.pointer, "/path");
        let e = Demo::from_json("{nope").unwrap_err();
        assert!(e.message.starts_with("is not JSON"), "{e:?}");
        assert_eq!(
            Demo::from_json("{\"path\": \"p\"}").unwrap().path,
            "p".to_owned()
        );
    }

    #[test]
    fn errors_render_with_their_place_and_hint() {
        let e =
            ConfigError::at_path(&["run", "0"], "must not be empty").with_hint("name a program");
        assert_eq!(e.pointer, "/run/0");
        assert_eq!(
            e.render(),
            "`run[0]` must not be empty; hint: name a program"
        );
        assert_eq!(
            e.to_string(),
            "config: `run[0]` must not be empty; hint: name a program"
        );
        assert_eq!(ConfigError::new("needs `path`").render(), "needs `path`");
        assert_eq!(
            ConfigError::at_path(&["json", "$.a.b"], "x").name(),
            "json.\"$.a.b\""
        );
    }

    #[test]
    fn the_untyped_config_takes_any_object() {
        assert_eq!(Config::schema()["type"], "object");
        let c: Config = check(&Config::schema(), json!({"a": 1})).unwrap();
        assert_eq!(c.get("a"), Some(&json!(1)));
        assert!(check::<Config>(&Config::schema(), json!("x")).is_err());
    }

    #[test]
    fn deny_unknown_keys_names_the_key_and_hints() {
        let cfg = Config::new(json!({"path": "a", "contians": "x"}));
        let err = cfg.deny_unknown_keys(&["path", "contains"]).unwrap_err();
        assert_eq!(
            err.message(),
            "config: unknown key `contians`; hint: did you mean `contains`?"
        );
        let cfg = Config::new(json!({"zzz": 1}));
        let err = cfg.deny_unknown_keys(&["path", "glob"]).unwrap_err();
        assert_eq!(
            err.message(),
            "config: unknown key `zzz`; hint: the known keys are `path`, `glob`"
        );
    }

    #[test]
    fn config_must_be_an_object() {
        let err = Config::new(json!([1, 2])).object().unwrap_err();
        assert!(err.message().starts_with("config: must be a JSON object"));
    }
}
