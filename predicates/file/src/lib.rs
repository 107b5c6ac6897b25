//! The builtin `file` predicate: checks on workspace content.
//!
//! One file (`path`) or every file a glob matches (`glob`), with any combination of
//! `exists`, `absent`, `count`, `equals`, `sha256`, `contains`, `not_contains`,
//! `matches`, `not_matches`, `json` and `toml`; all must hold. Content that does not
//! satisfy a check is `fail`. The config is [`FileConfig`]: its schema and every check
//! that needs no I/O (regexes, globs, paths, contradictory keys) come from it and are
//! reported when kazi loads the goal. The user documentation is
//! `docs/predicates.md`.

mod check;
mod config;
mod diff;
mod eval;
mod glob;
mod toml_json;

use kazi_sdk::prelude::*;

pub use config::FileConfig;

/// The `file` predicate.
pub struct File;

impl Predicate<FileConfig> for File {
    fn describe() -> Description {
        Description {
            name: "file".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "workspace content: existence, text, regex, exact bytes, sha256, JSON/TOML values, glob counts".into(),
            capabilities: Capabilities::default(),
            ..Description::default()
        }
    }

    fn validate(config: &FileConfig) -> Vec<ConfigError> {
        config::Spec::build(config).err().unwrap_or_default()
    }

    fn evaluate(config: FileConfig, cx: &Context) -> Result<Verdict> {
        let spec = config::Spec::build(&config)
            .map_err(|e| Error::from(e.into_iter().next().expect("an error")))?;
        eval::evaluate(&spec, cx.workspace())
    }
}

export_predicate!(File);

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        FileConfig::schema()
    }

    /// What kazi reports at load for `config`, rendered.
    fn load_errors(config: Value) -> Vec<String> {
        check_config::<File, FileConfig>(&config)
            .iter()
            .map(|e| format!("{}: {}", e.pointer, e.render()))
            .collect()
    }

    #[test]
    fn schema_lists_every_key_with_a_description() {
        let schema = schema();
        assert_eq!(schema["additionalProperties"], json!(false));
        let props = schema["properties"].as_object().unwrap();
        assert_eq!(props.len(), 13);
        for (key, prop) in props {
            assert!(
                prop["description"].as_str().is_some_and(|d| d.len() > 20),
                "{key} lacks a description"
            );
        }
    }

    #[test]
    fn describe_takes_its_schema_from_the_config_type() {
        assert!(File::describe().config_schema.is_null());
    }

    #[test]
    fn every_config_problem_is_a_load_error_at_its_key() {
        let mut mismatches = Vec::new();
        for (config, want) in [
            (
                json!({"contains": "x"}),
                ": needs `path` or `glob`; hint: name one file with `path = \"VERSION\"` or several with `glob = \"src/**/*.rs\"`",
            ),
            (
                json!({"path": "a", "glob": "*"}),
                "/glob: `glob` cannot be combined with `path`; hint: use `path` for one file, `glob` for many",
            ),
            (
                json!({"path": "/etc/passwd"}),
                "/path: `path` \"/etc/passwd\" is absolute; hint: write a path relative to the workspace, such as `src/lib.rs`",
            ),
            (
                json!({"path": "../x"}),
                "/path: `path` \"../x\" leaves the workspace; hint: write a path relative to the workspace, such as `src/lib.rs`",
            ),
            (json!({"path": ""}), "/path: `path` must not be empty"),
            (
                json!({"glob": "[a"}),
                "/glob: `glob` is not a valid glob: unclosed `[` in `[a`",
            ),
            (
                json!({"glob": "/etc/*"}),
                "/glob: `glob` is absolute; hint: write it relative to the workspace, such as `src/**/*.rs`",
            ),
            (
                json!({"glob": "src/**/{a,b"}),
                "/glob: `glob` is not a valid glob: it has an unclosed `{`; hint: escape it as `\\{`",
            ),
            (
                json!({"path": 3}),
                "/path: `path` must be a string, found an integer 3",
            ),
            (
                json!("a.txt"),
                ": must be a table, found a string \"a.txt\"",
            ),
            (
                json!({"path": "a", "exists": "yes"}),
                "/exists: `exists` must be a boolean, found a string \"yes\"",
            ),
            (
                json!({"path": "a", "contians": "x"}),
                "/contians: `contians` is not a known key; hint: did you mean `contains`?",
            ),
            (
                json!({"path": "a", "contains": ""}),
                "/contains: `contains` must not be an empty string (it would hold for every file)",
            ),
            (
                json!({"path": "a", "contains": ["x", ""]}),
                "/contains/1: `contains[1]` must not be an empty string (it would hold for every file)",
            ),
            (
                json!({"path": "a", "contains": []}),
                "/contains: `contains` must not be empty; hint: give a text, or a list of texts: contains = [\"a\", \"b\"]",
            ),
            (
                json!({"path": "a", "contains": 3}),
                "/contains: `contains` must be a string or an array of strings, found an integer 3",
            ),
            (
                json!({"path": "a", "matches": "("}),
                "/matches: `matches` is not a valid regex: found open group without closing ')'",
            ),
            (
                json!({"path": "a", "not_matches": ["ok", "a{2"]}),
                "/not_matches/1: `not_matches[1]` is not a valid regex: found incomplete and unclosed counted repetition operator",
            ),
            (
                json!({"path": "a", "sha256": "abc"}),
                "/sha256: `sha256` must be 64 hex digits (after an optional `sha256:`), found \"abc\"",
            ),
            (
                json!({"path": "a", "json": {}}),
                "/json: `json` is empty; hint: map a path to its expected value, such as json = { \"$.version\" = \"1.0.0\" }",
            ),
            (
                json!({"path": "a", "json": "x"}),
                "/json: `json` must be a table, found a string \"x\"",
            ),
            (
                json!({"path": "a", "toml": {"a..b": 1}}),
                "/toml/a..b: `toml.\"a..b\"` is not a usable path: bad path `a..b`: empty key; quote unusual keys as `[\"key\"]`",
            ),
            (
                json!({"glob": "*", "count": -1}),
                "/count: `count` must be at least 0, found -1",
            ),
            (
                json!({"glob": "*", "count": ">= x"}),
                "/count: `count` is neither a count nor a comparison such as \">= 3\", \"== 0\", \"< 10\": \">= x\"",
            ),
            (
                json!({"path": "a", "exists": true, "absent": true}),
                "/absent: `absent` = true contradicts `exists = true`; hint: keep one of them",
            ),
            (
                json!({"path": "a", "absent": true, "contains": "x"}),
                "/absent: `absent` leaves no content to check, but the config has content checks; hint: drop `absent` (or `exists = false`), or the content checks",
            ),
            (
                json!({"path": "a", "exists": false, "equals": ""}),
                "/exists: `exists` leaves no content to check, but the config has content checks; hint: drop `absent` (or `exists = false`), or the content checks",
            ),
            (
                json!({"path": "a", "count": 1}),
                "/count: `count` needs `glob`; hint: `count` is the number of files a glob matches",
            ),
            (
                json!({"glob": "*", "absent": true, "count": 0}),
                "/count: `count` overlaps `absent`; hint: to say that nothing matches, use `count = 0` alone",
            ),
        ] {
            let got = load_errors(config.clone());
            if got != [want] {
                mismatches.push(format!("{config}\n  want {want}\n  got  {got:?}"));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
        // Every problem at once, not only the first.
        assert_eq!(
            load_errors(json!({"path": "/x", "matches": "(", "sha256": "z"})).len(),
            3
        );
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
        let run = |v: Value| File::evaluate(FileConfig::from_value(v).unwrap(), &cx);
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
                let errors = check_config::<File, FileConfig>(&config);
                assert!(errors.is_empty(), "{errors:?}\n{block}");
                seen += 1;
            }
        }
        assert!(seen >= 9, "found only {seen} examples");
    }
}
