//! A custom kazi predicate: no `todo!()` left in the given Rust files.
//!
//! Build it with `cargo build --release --target wasm32-wasip2`, then use it from a
//! goal with `use = "./target/wasm32-wasip2/release/no_todo.wasm"`.

use kazi_sdk::prelude::*;

pub struct NoTodo;

impl Predicate for NoTodo {
    fn describe() -> Description {
        Description {
            name: "no-todo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "no todo!() left in the given files".into(),
            config_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["files"],
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "description": "workspace-relative files to search"
                    }
                }
            }),
            // Reading the workspace needs no grant; this predicate asks for nothing else.
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(config: Config, cx: &Context) -> Result<Verdict> {
        let files = config.strings("files")?.unwrap_or_default();
        let mut verdict = Verdict::pass(format!("no todo!() in {} file(s)", files.len()));
        let mut left = 0;
        for file in &files {
            let text = cx.workspace().read_to_string(file)?;
            for (i, line) in text.lines().enumerate() {
                if line.contains("todo!()") {
                    left += 1;
                    verdict = verdict.with_diagnostic(Some(file), Some(i as u32 + 1), "todo!() left here");
                }
            }
        }
        if left > 0 {
            verdict.outcome = Outcome::Fail;
            verdict.summary = format!("{left} todo!() left");
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
        let v = NoTodo::evaluate(Config::new(json!({"files": ["lib.rs"]})), &cx).unwrap();
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.diagnostics[0].line, Some(2));
    }
}
