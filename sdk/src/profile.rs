//! The profile side: [`Profile`] translates a dispatch into an agent invocation and the
//! agent's output into a [`Report`]. Profiles get no capabilities at all.
//!
//! A profile's `[agent]` options are one type `O` (a `Deserialize + JsonSchema` type
//! of its own, or the untyped [`Config`]): kazi checks the goal's options against it
//! when it loads the goal ([`check_options`] plus [`Profile::validate`]), so a bad
//! option is a load error at its line, not a failed dispatch.

use serde_json::Value;

use crate::__profile_bindings::exports::kazi::profile::translator as wit;
use crate::config::{self, Config, ConfigError, ConfigType};

/// An agent profile component with `[agent]` options of type `O`.
pub trait Profile<O: ConfigType = Config> {
    /// Id, default program and summary. Leave `options` empty: they are the
    /// properties of `O`'s schema (list them only for an untyped [`Config`]).
    fn describe() -> ProfileDescription;

    /// Checks of the `[agent]` table that its types cannot express (an option that
    /// contradicts another, a model name of the wrong shape, an empty `run` for a
    /// profile that needs one). Called at load, after the options matched `O`.
    fn validate(agent: &Agent<O>) -> Vec<ConfigError> {
        let _ = agent;
        Vec::new()
    }

    /// How to run the agent for this request. An `Err` is a profile/config error.
    fn invocation(req: Request<O>) -> Result<Invocation, String>;

    /// What the agent's output means. Fields the output does not carry stay `None`.
    fn parse(exit_code: Option<i32>, stdout: &str, stderr: &str) -> Report;
}

/// What a profile declares about itself.
#[derive(Debug, Clone, Default)]
pub struct ProfileDescription {
    pub id: String,
    pub version: String,
    pub summary: String,
    pub default_program: String,
    /// The `[agent]` options it reads besides the common ones; empty means the
    /// properties of its options type.
    pub options: Vec<String>,
}

/// The goal's `[agent]` table as a profile sees it at load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agent<O = Config> {
    /// `[agent] model`, when set.
    pub model: Option<String>,
    /// `[agent] run`, when set.
    pub run: Option<Vec<String>>,
    pub options: O,
}

/// One dispatch, as the host hands it to the profile.
#[derive(Debug, Clone, Default)]
pub struct Request<O = Config> {
    pub prompt: String,
    /// Absolute workspace path on the host.
    pub workspace: String,
    pub model: Option<String>,
    /// `[agent] run` from the goal.
    pub run: Vec<String>,
    /// The profile's options from the goal.
    pub options: O,
}

/// How the host runs the agent.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Bytes for the agent's stdin; `None` closes stdin at once.
    pub stdin: Option<String>,
    /// Write the prompt to a file and set `KAZI_PROMPT_FILE` to its path.
    pub prompt_file: bool,
}

/// Token counts; `None` when the output does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cached: Option<u64>,
}

/// What one agent run produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub result: Option<String>,
    pub tokens: Tokens,
    pub cost_usd: Option<f64>,
    pub session_id: Option<String>,
    pub permission_denials: Vec<String>,
    /// The agent's own message when it could not work.
    pub error: Option<String>,
    /// The agent exited 0 but its output was not in the format the profile reads.
    pub unparseable: bool,
}

/// The options a profile understands: the ones it lists, else its options type's.
fn option_names<O: ConfigType>(listed: Vec<String>) -> Vec<String> {
    if !listed.is_empty() {
        return listed;
    }
    O::schema()
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every problem kazi would report for the `[agent]` table `agent` (a JSON object of
/// `model`, `run` and the options) when it loads a goal: the types of `model` and
/// `run`, the options against `O`'s schema, then [`Profile::validate`]. Empty means
/// valid. The exported component runs exactly this; call it from native tests.
pub fn check_options<P: Profile<O>, O: ConfigType>(agent: &Value) -> Vec<ConfigError> {
    let Some(map) = agent.as_object() else {
        return vec![ConfigError::new("must be a table of options")];
    };
    let mut errors = Vec::new();
    let mut options = map.clone();
    let model = match options.remove("model") {
        None => None,
        Some(Value::String(m)) => Some(m),
        Some(other) => {
            errors.push(ConfigError::at(
                "model",
                format!(
                    "must be a string, found {}",
                    crate::text::truncate(&other.to_string(), 60)
                ),
            ));
            None
        }
    };
    let run = match options.remove("run") {
        None => None,
        Some(Value::Array(items)) => {
            let mut argv = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) => argv.push(s.to_owned()),
                    None => errors.push(ConfigError::at_path(
                        &["run", &i.to_string()],
                        format!("must be a string, found {item}"),
                    )),
                }
            }
            Some(argv)
        }
        Some(other) => {
            errors.push(ConfigError::at(
                "run",
                format!("must be a list of strings, found {other}"),
            ));
            None
        }
    };
    let options = match config::check::<O>(&O::schema(), Value::Object(options)) {
        Ok(o) => o,
        Err(e) => {
            errors.extend(e);
            return errors;
        }
    };
    if !errors.is_empty() {
        return errors;
    }
    P::validate(&Agent {
        model,
        run,
        options,
    })
}

/// The options of a request, read as `O`; an error names the `[agent]` key.
fn read_options<O: ConfigType>(options: Vec<(String, String)>) -> Result<O, String> {
    let mut map = serde_json::Map::new();
    for (key, text) in options {
        let value = serde_json::from_str(&text)
            .map_err(|e| format!("`[agent] {key}` is not valid JSON ({e})"))?;
        map.insert(key, value);
    }
    O::from_value(Value::Object(map)).map_err(|e| format!("[agent]: {}", e.render()))
}

#[doc(hidden)]
pub mod __profile_private {
    use super::*;

    pub use wit::{
        ConfigError as WitConfigError, Description as WitDescription, Guest,
        Invocation as WitInvocation, Report as WitReport, Request as WitRequest,
    };

    pub fn describe<P: Profile<O>, O: ConfigType>() -> WitDescription {
        let d = P::describe();
        WitDescription {
            id: d.id,
            version: d.version,
            summary: d.summary,
            default_program: d.default_program,
            options: option_names::<O>(d.options),
        }
    }

    pub fn validate<P: Profile<O>, O: ConfigType>(
        config: String,
    ) -> std::result::Result<(), Vec<WitConfigError>> {
        let errors = match serde_json::from_str::<Value>(&config) {
            Ok(v) => check_options::<P, O>(&v),
            Err(e) => vec![ConfigError::new(format!("is not JSON: {e}"))],
        };
        if errors.is_empty() {
            return Ok(());
        }
        Err(errors
            .into_iter()
            .map(|e| WitConfigError {
                pointer: e.pointer,
                message: e.message,
                hint: e.hint,
            })
            .collect())
    }

    pub fn invocation<P: Profile<O>, O: ConfigType>(
        req: WitRequest,
    ) -> Result<WitInvocation, String> {
        let inv = P::invocation(Request {
            prompt: req.prompt,
            workspace: req.workspace,
            model: req.model,
            run: req.run,
            options: read_options::<O>(req.options)?,
        })?;
        Ok(WitInvocation {
            program: inv.program,
            args: inv.args,
            env: inv.env,
            stdin: inv.stdin,
            prompt_file: inv.prompt_file,
        })
    }

    pub fn parse<P: Profile<O>, O: ConfigType>(
        exit_code: Option<i32>,
        stdout: String,
        stderr: String,
    ) -> WitReport {
        let r = P::parse(exit_code, &stdout, &stderr);
        WitReport {
            result: r.result,
            tokens: wit::Tokens {
                input: r.tokens.input,
                output: r.tokens.output,
                cached: r.tokens.cached,
            },
            cost_usd: r.cost_usd,
            session_id: r.session_id,
            permission_denials: r.permission_denials,
            error: r.error,
            unparseable: r.unparseable,
        }
    }
}

/// Export a [`Profile`] implementation as the component's `kazi:profile/translator`.
#[macro_export]
macro_rules! export_profile {
    ($ty:ty) => {
        #[doc(hidden)]
        pub struct __KaziProfileExport;
        impl $crate::__profile_private::Guest for __KaziProfileExport {
            fn describe() -> $crate::__profile_private::WitDescription {
                $crate::__profile_private::describe::<$ty, _>()
            }
            fn validate(
                config: ::std::string::String,
            ) -> ::std::result::Result<
                (),
                ::std::vec::Vec<$crate::__profile_private::WitConfigError>,
            > {
                $crate::__profile_private::validate::<$ty, _>(config)
            }
            fn build_invocation(
                req: $crate::__profile_private::WitRequest,
            ) -> ::std::result::Result<
                $crate::__profile_private::WitInvocation,
                ::std::string::String,
            > {
                $crate::__profile_private::invocation::<$ty, _>(req)
            }
            fn parse(
                exit_code: ::std::option::Option<i32>,
                stdout: ::std::string::String,
                stderr: ::std::string::String,
            ) -> $crate::__profile_private::WitReport {
                $crate::__profile_private::parse::<$ty, _>(exit_code, stdout, stderr)
            }
        }
        // Component exports only for wasm: their names (`kazi:profile/…`) are not valid
        // symbols for a native linker, and native builds exist only for unit tests.
        #[cfg(target_arch = "wasm32")]
        $crate::__profile_bindings::__export_profile_world!(__KaziProfileExport);
    };
}
