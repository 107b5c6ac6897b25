//! A custom kazi predicate: no `todo!()` left in the given Rust files.
//!
//! Build it with `cargo build --release --target wasm32-wasip2`, then use it from a
//! goal with `use = "./target/wasm32-wasip2/release/no_todo.wasm"`.

use kazi_sdk::prelude::*;

/// The config: one type gives the JSON Schema kazi shows and checks (doc comments
/// become descriptions), the load-time errors with "did you mean" for typos, and the
/// parsing in `evaluate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoTodoConfig {
    /// Workspace-relative files to search.
    #[schemars(length(min = 1))]
    pub files: Vec<String>,
    /// The text that must not appear (default "todo!()").
    #[serde(default = "default_marker")]
    pub marker: String,
}

fn default_marker() -> String {
    "todo!()".into()
}

pub struct NoTodo;

impl Predicate<NoTodoConfig> for NoTodo {
    fn describe() -> Description {
        Description {
            name: "no-todo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "no todo!() left in the given files".into(),
            // Reading the workspace needs no grant; this predicate asks for nothing else.
            capabilities: Capabilities::default(),
            // The config schema comes from `NoTodoConfig`.
            ..Description::default()
        }
    }

    /// What the type cannot say, checked when kazi loads the goal: each error names
    /// its key, and kazi shows it at that key's line in the goal file.
    fn validate(config: &NoTodoConfig) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for (i, file) in config.files.iter().enumerate() {
            if let Err(e) = Workspace::check_relative(file) {
                errors.push(ConfigError::at_path(
                    &["files", &i.to_string()],
                    e.message(),
                ));
            }
        }
        if config.marker.is_empty() {
            errors.push(
                ConfigError::at("marker", "must not be empty")
                    .with_hint("leave it out for \"todo!()\""),
            );
        }
        errors
    }

    fn evaluate(config: NoTodoConfig, cx: &Context) -> Result<Verdict> {
        let mut verdict = Verdict::pass(format!(
            "no {} in {} file(s)",
            config.marker,
            config.files.len()
        ));
        let mut left = 0;
        for file in &config.files {
            let text = cx.workspace().read_to_string(file)?;
            for (i, line) in text.lines().enumerate() {
                if line.contains(&config.marker) {
                    left += 1;
                    verdict = verdict.with_diagnostic(
                        Some(file),
                        Some(i as u32 + 1),
                        format!("{} left here", config.marker),
                    );
                }
            }
        }
        if left > 0 {
            verdict.outcome = Outcome::Fail;
            verdict.summary = format!("{left} {} left", config.marker);
        }
        Ok(verdict.with_metric("todos", left as f64))
    }
}

export_predicate!(NoTodo);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_todos_with_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lib.rs"), "fn a() {}\nfn b() { todo!() }\n").unwrap();
        let cx = Context::new("no-todo", 0, dir.path());
        let config = NoTodoConfig::from_value(json!({"files": ["lib.rs"]})).unwrap();
        let v = NoTodo::evaluate(config, &cx).unwrap();
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.diagnostics[0].line, Some(2));
    }

    #[test]
    fn bad_configs_are_refused_at_load_with_their_place() {
        let errors = check_config::<NoTodo, NoTodoConfig>(&json!({"file": ["lib.rs"]}));
        let rendered: Vec<String> = errors.iter().map(ConfigError::render).collect();
        assert_eq!(
            rendered,
            [
                "`files` is required (Workspace-relative files to search)",
                "`file` is not a known key; hint: did you mean `files`?",
            ]
        );
        let errors = check_config::<NoTodo, NoTodoConfig>(&json!({"files": ["../x.rs"]}));
        assert_eq!(errors[0].pointer, "/files/0");
        assert!(check_config::<NoTodo, NoTodoConfig>(&json!({"files": ["src/lib.rs"]})).is_empty());
    }
}
