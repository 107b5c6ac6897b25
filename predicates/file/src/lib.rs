//! The builtin `file` predicate: checks on workspace content.
//!
//! One file (`path`) or every file a glob matches (`glob`), with any combination of
//! `exists`, `absent`, `count`, `equals`, `sha256`, `contains`, `not_contains`,
//! `matches`, `not_matches`, `json` and `toml`; all must hold. Content that does not
//! satisfy a check is `fail`; a config that cannot be evaluated is `error`. The config
//! schema is [`config_schema`]; the user documentation is `docs/predicates.md`.

mod check;
mod config;
mod diff;
mod eval;
mod glob;
mod toml_json;

use kazi_sdk::prelude::*;

pub use config::KEYS;

/// The `file` predicate.
pub struct File;

impl Predicate for File {
    fn describe() -> Description {
        Description {
            name: "file".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "workspace content: existence, text, regex, exact bytes, sha256, JSON/TOML values, glob counts".into(),
            config_schema: config_schema(),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(config: Config, cx: &Context) -> Result<Verdict> {
        let spec = config::Spec::parse(&config)?;
        eval::evaluate(&spec, cx.workspace())
    }
}

export_predicate!(File);

/// The JSON Schema (draft 2020-12) of the config, as the host validates goal files
/// against it at load time.
pub fn config_schema() -> Value {
    let texts = |what: &str| {
        json!({
            "description": what,
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}
            ]
        })
    };
    let regexes = |what: &str| {
        json!({
            "description": what,
            "oneOf": [
                {"type": "string", "minLength": 1, "format": "regex"},
                {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1, "format": "regex"}}
            ]
        })
    };
    let document = |kind: &str| {
        json!({
            "description": format!(
                "The file is {kind}; each key is a path into it (`$.version`, `package.version`, `a.b[0]`, `items[-1]`, `[\"dotted.key\"]`, `$` for the whole document) and its value the expected value (numbers compare by value)."
            ),
            "type": "object",
            "minProperties": 1,
            "additionalProperties": true
        })
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "file",
        "description": "Checks on workspace content. Give `path` or `glob` (exactly one) and any checks; all must hold. With no check, the file must exist (a glob must match at least one file).",
        "type": "object",
        "additionalProperties": false,
        "oneOf": [
            {"required": ["path"]},
            {"required": ["glob"]}
        ],
        "dependentRequired": {"count": ["glob"]},
        "properties": {
            "path": {
                "description": "One file (or directory, for `exists`/`absent`), relative to the workspace; it must not be absolute or leave the workspace.",
                "type": "string",
                "minLength": 1,
                "pattern": "^[^/]"
            },
            "glob": {
                "description": "Every regular file matching this pattern, relative to the workspace: `*` and `?` within a name, `**` for any number of directories, `[abc]`, `[a-z]`, `[!abc]`, `{a,b}`, `\\` escapes. Content checks apply to every match; `.git` is searched only when named.",
                "type": "string",
                "minLength": 1,
                "pattern": "^[^/]"
            },
            "exists": {
                "description": "true: the file exists (a glob matches at least one file); false: same as `absent = true`.",
                "type": "boolean"
            },
            "absent": {
                "description": "true: the file does not exist (a glob matches nothing); cannot be combined with content checks or `count`.",
                "type": "boolean"
            },
            "count": {
                "description": "The number of files the glob matches: an integer (exactly), or a comparison such as \">= 3\", \"== 0\", \"< 10\", \"!= 2\".",
                "oneOf": [
                    {"type": "integer", "minimum": 0},
                    {"type": "string", "pattern": "^\\s*(==|!=|>=|<=|>|<|=)?\\s*[0-9]+\\s*$"}
                ]
            },
            "equals": {
                "description": "The file's content is exactly this text, byte for byte (mind the final newline: \"1.0.0\\n\").",
                "type": "string"
            },
            "sha256": {
                "description": "The SHA-256 of the file's bytes, as 64 hex digits (an optional `sha256:` prefix is allowed).",
                "type": "string",
                "pattern": "^(sha256:)?[0-9a-fA-F]{64}$"
            },
            "contains": texts("The file contains this text (or each text of a list)."),
            "not_contains": texts("The file does not contain this text (nor any text of a list); each occurrence is reported with its line."),
            "matches": regexes("The file has a match for this regex (or for each regex of a list); multi-line mode, so `^` and `$` match at line boundaries. Rust regex syntax with ASCII-only `\\d`, `\\w`, `\\s`, `\\b` and `(?i)`, and no `\\p{…}` classes."),
            "not_matches": regexes("The file has no match for this regex (nor for any of a list); each match is reported with its line."),
            "json": document("JSON"),
            "toml": document("TOML")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lists_every_key_with_a_description() {
        let schema = config_schema();
        assert_eq!(schema["additionalProperties"], json!(false));
        let props = schema["properties"].as_object().unwrap();
        let mut keys: Vec<&str> = props.keys().map(String::as_str).collect();
        let mut known = KEYS.to_vec();
        keys.sort_unstable();
        known.sort_unstable();
        assert_eq!(keys, known);
        for (key, prop) in props {
            assert!(
                prop["description"].as_str().is_some_and(|d| d.len() > 20),
                "{key} lacks a description"
            );
        }
    }

    #[test]
    fn schema_patterns_are_valid_regexes() {
        fn walk(v: &Value) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(p)) = map.get("pattern") {
                        regex_lite::Regex::new(p).unwrap();
                    }
                    map.values().for_each(walk);
                }
                Value::Array(items) => items.iter().for_each(walk),
                _ => {}
            }
        }
        walk(&config_schema());
    }

    #[test]
    fn describe_names_the_predicate() {
        let d = File::describe();
        assert_eq!(d.name, "file");
        assert!(d.capabilities.exec.is_empty() && !d.capabilities.fs_write);
    }

    #[test]
    fn config_errors_are_errors_and_content_is_fail() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "ok\n").unwrap();
        let cx = Context::new("t", 0, dir.path());
        let run = |v: Value| File::evaluate(Config::new(v), &cx);
        assert_eq!(
            run(json!({"path": "a.txt", "contains": "ok"}))
                .unwrap()
                .outcome,
            Outcome::Pass
        );
        assert_eq!(
            run(json!({"path": "a.txt", "contains": "no"}))
                .unwrap()
                .outcome,
            Outcome::Fail
        );
        assert!(run(json!({"path": "a.txt", "contain": "ok"})).is_err());
        assert!(run(json!({"path": "../a.txt"})).is_err());
    }

    /// Every `use = "file"` block in `docs/predicates.md` is a valid config.
    #[test]
    fn documented_examples_are_valid_configs() {
        const DOC: &str = include_str!("../../../docs/predicates.md");
        // Keys of a `[[predicate]]` block that belong to the host, not the component.
        const HOST_KEYS: &[&str] = &[
            "id",
            "use",
            "description",
            "timeout",
            "guard",
            "held_out",
            "live",
            "allow",
            "limits",
            "ratchet",
        ];
        let mut seen = 0;
        for block in DOC.split("```toml\n").skip(1) {
            let block = &block[..block.find("```").unwrap()];
            // Blocks of other sections may be fragments; `seen` below keeps ours honest.
            let Ok(doc) = block.parse::<toml::Table>() else {
                continue;
            };
            let Some(toml::Value::Array(preds)) = doc.get("predicate") else {
                continue;
            };
            for pred in preds {
                let toml::Value::Table(t) = pred else {
                    panic!("{block}")
                };
                if t.get("use").and_then(toml::Value::as_str) != Some("file") {
                    continue;
                }
                let mut config = toml_json::table_to_json(t);
                let map = config.as_object_mut().unwrap();
                map.retain(|k, _| !HOST_KEYS.contains(&k.as_str()));
                config::Spec::parse(&Config::new(config))
                    .unwrap_or_else(|e| panic!("{e}\n{block}"));
                seen += 1;
            }
        }
        assert!(seen >= 9, "found only {seen} examples");
    }
}
