//! Reading a profile's dispatch [`Request`]: the program (`[agent] run` or the
//! default), the model, and where the prompt goes. The options are already typed.

use crate::Request;
use crate::config::ConfigError;

/// The program and its leading arguments: `[agent] run` when the goal sets it (for a
/// wrapper such as `["npx", "@anthropic-ai/claude-code"]`), else `default`.
pub fn program<O>(req: &Request<O>, default: &str) -> Result<(String, Vec<String>), String> {
    match req.run.split_first() {
        None => Ok((default.to_owned(), Vec::new())),
        Some((program, _)) if program.trim().is_empty() => Err(format!(
            "`[agent] run` starts with an empty program name; hint: remove `run` to use `{default}` from PATH"
        )),
        Some((program, rest)) => Ok((program.clone(), rest.to_vec())),
    }
}

/// The load-time check of `[agent] run` for a profile that runs `default` unless `run`
/// names a wrapper: a `run` whose program is empty is an error at `run[0]`.
pub fn check_run(run: Option<&[String]>, default: &str) -> Vec<ConfigError> {
    match run.and_then(<[String]>::first) {
        Some(program) if program.trim().is_empty() => vec![
            ConfigError::at_path(&["run", "0"], "is an empty program name")
                .with_hint(format!("remove `run` to use `{default}` from PATH")),
        ],
        _ => Vec::new(),
    }
}

/// The model, unless the goal names none (or an empty one).
pub fn model<O>(req: &Request<O>) -> Option<&str> {
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

    #[test]
    fn run_overrides_the_program() {
        let req: Request = Request::default();
        assert_eq!(program(&req, "tool"), Ok(("tool".into(), vec![])));
        let req: Request = Request {
            run: vec!["npx".into(), "pkg".into()],
            ..Request::default()
        };
        assert_eq!(
            program(&req, "tool"),
            Ok(("npx".into(), vec!["pkg".into()]))
        );
        let req: Request = Request {
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
    fn an_empty_run_is_refused_at_load() {
        assert!(check_run(None, "tool").is_empty());
        assert!(check_run(Some(&[]), "tool").is_empty());
        assert!(check_run(Some(&["npx".into()]), "tool").is_empty());
        let e = check_run(Some(&[" ".into()]), "tool");
        assert_eq!(e[0].pointer, "/run/0");
        assert_eq!(
            e[0].render(),
            "`run[0]` is an empty program name; hint: remove `run` to use `tool` from PATH"
        );
    }

    #[test]
    fn an_empty_model_is_no_model() {
        let mut req: Request = Request::default();
        assert_eq!(model(&req), None);
        req.model = Some(" ".into());
        assert_eq!(model(&req), None);
        req.model = Some("m-1".into());
        assert_eq!(model(&req), Some("m-1"));
    }
}
