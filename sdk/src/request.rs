//! Reading a profile's dispatch [`Request`]: typed `[agent]` options (a value of the
//! wrong type is an error that names the key and shows an example, never a silent
//! default), the program, the model, and where the prompt goes.

use serde_json::Value;

use crate::Request;
use crate::text::truncate;

/// The option's JSON value; `None` when the goal does not set it, an error that names
/// the key when it is not valid JSON.
pub fn value(req: &Request, key: &str) -> Result<Option<Value>, String> {
    let Some((_, text)) = req.options.iter().find(|(k, _)| k == key) else {
        return Ok(None);
    };
    serde_json::from_str(text).map(Some).map_err(|e| {
        format!(
            "`[agent] {key}` is not valid JSON ({e}): {}",
            truncate(text, 60)
        )
    })
}

fn wrong(key: &str, what: &str, value: &Value, example: &str) -> String {
    format!(
        "`[agent] {key}` must be {what}, got {}; hint: {key} = {example}",
        truncate(&value.to_string(), 60)
    )
}

/// A non-empty string option.
pub fn string(req: &Request, key: &str, example: &str) -> Result<Option<String>, String> {
    match value(req, key)? {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s)),
        Some(v) => Err(wrong(key, "a non-empty string", &v, example)),
    }
}

/// A boolean option.
pub fn boolean(req: &Request, key: &str) -> Result<Option<bool>, String> {
    match value(req, key)? {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(v) => Err(wrong(key, "true or false", &v, "true")),
    }
}

/// A positive integer option.
pub fn positive(req: &Request, key: &str, example: &str) -> Result<Option<u64>, String> {
    match value(req, key)? {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(wrong(key, "a positive integer", &v, example)),
        },
    }
}

/// A list-of-strings option.
pub fn strings(req: &Request, key: &str, example: &str) -> Result<Option<Vec<String>>, String> {
    let Some(v) = value(req, key)? else {
        return Ok(None);
    };
    let items = v.as_array().and_then(|items| {
        items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
    });
    items
        .map(Some)
        .ok_or_else(|| wrong(key, "a list of strings", &v, example))
}

/// The program and its leading arguments: `[agent] run` when the goal sets it (for a
/// wrapper such as `["npx", "@anthropic-ai/claude-code"]`), else `default`.
pub fn program(req: &Request, default: &str) -> Result<(String, Vec<String>), String> {
    match req.run.split_first() {
        None => Ok((default.to_owned(), Vec::new())),
        Some((program, _)) if program.trim().is_empty() => Err(format!(
            "`[agent] run` starts with an empty program name; hint: remove `run` to use `{default}` from PATH"
        )),
        Some((program, rest)) => Ok((program.clone(), rest.to_vec())),
    }
}

/// The model, unless the goal names none (or an empty one).
pub fn model(req: &Request) -> Option<&str> {
    req.model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
}

/// Linux refuses a single argument longer than 128 KiB (`MAX_ARG_STRLEN`): a longer
/// prompt goes to the agent's stdin instead, which every supported CLI reads when it
/// is given no prompt argument.
pub const ARG_PROMPT_MAX: usize = 100 * 1024;

/// Where the prompt goes on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// As an ordinary argument, where the CLI documents it.
    Argument,
    /// Last, after `--`: a prompt that starts with `-` would otherwise read as an option.
    AfterDashes,
    /// On stdin, with no prompt argument: the prompt is too long for one argument.
    Stdin,
}

impl Placement {
    /// Where `prompt` must go.
    pub fn of(prompt: &str) -> Placement {
        if prompt.len() > ARG_PROMPT_MAX {
            Placement::Stdin
        } else if prompt.starts_with('-') {
            Placement::AfterDashes
        } else {
            Placement::Argument
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: &str, json: &str) -> Request {
        Request {
            options: vec![(key.to_owned(), json.to_owned())],
            ..Request::default()
        }
    }

    #[test]
    fn absent_options_are_none() {
        let req = Request::default();
        assert_eq!(string(&req, "k", "\"x\""), Ok(None));
        assert_eq!(boolean(&req, "k"), Ok(None));
        assert_eq!(positive(&req, "k", "3"), Ok(None));
        assert_eq!(strings(&req, "k", "[\"a\"]"), Ok(None));
    }

    #[test]
    fn typed_values_are_read() {
        assert_eq!(string(&with("k", "\"v\""), "k", ""), Ok(Some("v".into())));
        assert_eq!(boolean(&with("k", "true"), "k"), Ok(Some(true)));
        assert_eq!(positive(&with("k", "7"), "k", ""), Ok(Some(7)));
        assert_eq!(
            strings(&with("k", "[\"a\", \"b c\"]"), "k", ""),
            Ok(Some(vec!["a".into(), "b c".into()]))
        );
        assert_eq!(strings(&with("k", "[]"), "k", ""), Ok(Some(vec![])));
    }

    #[test]
    fn wrong_types_name_the_key_and_show_an_example() {
        let err = positive(&with("max_turns", "\"ten\""), "max_turns", "20").unwrap_err();
        assert_eq!(
            err,
            "`[agent] max_turns` must be a positive integer, got \"ten\"; hint: max_turns = 20"
        );
        assert!(positive(&with("k", "0"), "k", "1").is_err());
        assert!(positive(&with("k", "-2"), "k", "1").is_err());
        assert!(string(&with("k", "\"  \""), "k", "\"x\"").is_err());
        assert!(string(&with("k", "3"), "k", "\"x\"").is_err());
        assert!(boolean(&with("k", "\"yes\""), "k").is_err());
        let err = strings(&with("k", "[\"a\", 1]"), "k", "[\"a\"]").unwrap_err();
        assert!(err.contains("must be a list of strings"), "{err}");
        let err = string(&with("k", "{nope"), "k", "").unwrap_err();
        assert!(err.starts_with("`[agent] k` is not valid JSON"), "{err}");
    }

    #[test]
    fn option_reads_valid_json_only() {
        assert_eq!(with("k", "[1]").option("k"), Some(serde_json::json!([1])));
        assert_eq!(with("k", "{nope").option("k"), None);
        assert_eq!(with("k", "1").option("other"), None);
        assert_eq!(value(&with("k", "1"), "k"), Ok(Some(Value::from(1))));
    }

    #[test]
    fn run_overrides_the_program() {
        let req = Request::default();
        assert_eq!(program(&req, "tool"), Ok(("tool".into(), vec![])));
        let req = Request {
            run: vec!["npx".into(), "pkg".into()],
            ..Request::default()
        };
        assert_eq!(
            program(&req, "tool"),
            Ok(("npx".into(), vec!["pkg".into()]))
        );
        let req = Request {
            run: vec![" ".into()],
            ..Request::default()
        };
        assert!(
            program(&req, "tool")
                .unwrap_err()
                .contains("empty program name")
        );
    }

    #[test]
    fn the_prompt_placement_depends_on_its_shape() {
        assert_eq!(Placement::of("fix the tests"), Placement::Argument);
        assert_eq!(Placement::of(""), Placement::Argument);
        assert_eq!(Placement::of("- a list item"), Placement::AfterDashes);
        assert_eq!(
            Placement::of(&"x".repeat(ARG_PROMPT_MAX)),
            Placement::Argument
        );
        assert_eq!(
            Placement::of(&"x".repeat(ARG_PROMPT_MAX + 1)),
            Placement::Stdin
        );
        assert_eq!(
            Placement::of(&"-".repeat(ARG_PROMPT_MAX + 1)),
            Placement::Stdin
        );
    }

    #[test]
    fn an_empty_model_is_no_model() {
        let mut req = Request::default();
        assert_eq!(model(&req), None);
        req.model = Some(" ".into());
        assert_eq!(model(&req), None);
        req.model = Some("m-1".into());
        assert_eq!(model(&req), Some("m-1"));
    }
}
