//! The profile side: [`Profile`] translates a dispatch into an agent invocation and the
//! agent's output into a [`Report`]. Profiles get no capabilities at all.

use crate::__profile_bindings::exports::kazi::profile::translator as wit;

/// An agent profile component.
pub trait Profile {
    /// Id, default program and the options this profile understands.
    fn describe() -> ProfileDescription;
    /// How to run the agent for this request. An `Err` is a profile/config error.
    fn invocation(req: Request) -> Result<Invocation, String>;
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
    pub options: Vec<String>,
}

/// One dispatch, as the host hands it to the profile.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub prompt: String,
    /// Absolute workspace path on the host.
    pub workspace: String,
    pub model: Option<String>,
    /// `[agent] run` from the goal.
    pub run: Vec<String>,
    /// Profile-specific options: key and JSON-encoded value.
    pub options: Vec<(String, String)>,
}

impl Request {
    /// An option's JSON value, if set; `None` also when it is not valid JSON. To report
    /// bad values instead, read options with the typed getters of [`crate::request`].
    pub fn option(&self, key: &str) -> Option<serde_json::Value> {
        crate::request::value(self, key).ok().flatten()
    }
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

#[doc(hidden)]
pub mod __profile_private {
    use super::*;

    pub use wit::{
        Description as WitDescription, Guest, Invocation as WitInvocation, Report as WitReport,
        Request as WitRequest,
    };

    pub fn describe<P: Profile>() -> WitDescription {
        let d = P::describe();
        WitDescription {
            id: d.id,
            version: d.version,
            summary: d.summary,
            default_program: d.default_program,
            options: d.options,
        }
    }

    pub fn invocation<P: Profile>(req: WitRequest) -> Result<WitInvocation, String> {
        let inv = P::invocation(Request {
            prompt: req.prompt,
            workspace: req.workspace,
            model: req.model,
            run: req.run,
            options: req.options,
        })?;
        Ok(WitInvocation {
            program: inv.program,
            args: inv.args,
            env: inv.env,
            stdin: inv.stdin,
            prompt_file: inv.prompt_file,
        })
    }

    pub fn parse<P: Profile>(exit_code: Option<i32>, stdout: String, stderr: String) -> WitReport {
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
                $crate::__profile_private::describe::<$ty>()
            }
            fn build_invocation(
                req: $crate::__profile_private::WitRequest,
            ) -> ::std::result::Result<
                $crate::__profile_private::WitInvocation,
                ::std::string::String,
            > {
                $crate::__profile_private::invocation::<$ty>(req)
            }
            fn parse(
                exit_code: ::std::option::Option<i32>,
                stdout: ::std::string::String,
                stderr: ::std::string::String,
            ) -> $crate::__profile_private::WitReport {
                $crate::__profile_private::parse::<$ty>(exit_code, stdout, stderr)
            }
        }
        // Component exports only for wasm: their names (`kazi:profile/…`) are not valid
        // symbols for a native linker, and native builds exist only for unit tests.
        #[cfg(target_arch = "wasm32")]
        $crate::__profile_bindings::__export_profile_world!(__KaziProfileExport);
    };
}
