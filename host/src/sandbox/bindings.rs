//! Host bindings generated from `sdk/wit`, the single source of truth, and from the
//! frozen published versions in `sdk/wit-archive`. Nothing outside the sandbox module
//! uses these types.
//!
//! A component targets one version of its world; [`PredicateComponent`] and
//! [`ProfileComponent`] hide which, so the rest of the sandbox calls `describe`,
//! `validate` (absent before 0.2.0) and the rest the same way for every version.

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre};

use super::state::GuestState;

/// The `kazi:predicate/predicate@0.2.0` world: `describe`, `validate`, `evaluate`.
pub mod predicate {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "kazi:predicate/predicate@0.2.0",
        imports: {
            "kazi:host/exec.run": async,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// The `kazi:predicate/predicate@0.1.0` world (no `validate`); its imports are the
/// same `kazi:host@0.1.0` interfaces as 0.2.0's.
pub mod predicate_v01 {
    wasmtime::component::bindgen!({
        path: ["../sdk/wit/deps/host", "../sdk/wit-archive/0.1.0/predicate"],
        world: "kazi:predicate/predicate@0.1.0",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "kazi:host/types": super::predicate::kazi::host::types,
            "kazi:host/log": super::predicate::kazi::host::log,
            "kazi:host/exec": super::predicate::kazi::host::exec,
            "kazi:host/kv": super::predicate::kazi::host::kv,
        },
    });
}

/// The `kazi:profile/profile@0.2.0` world; shares `kazi:host/log` with the predicate world.
pub mod profile {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "kazi:profile/profile@0.2.0",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "kazi:host/log": super::predicate::kazi::host::log,
        },
    });
}

/// The `kazi:profile/profile@0.1.0` world (no `validate`).
pub mod profile_v01 {
    wasmtime::component::bindgen!({
        path: ["../sdk/wit/deps/host", "../sdk/wit-archive/0.1.0/profile"],
        world: "kazi:profile/profile@0.1.0",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "kazi:host/log": super::predicate::kazi::host::log,
        },
    });
}

/// The newest WIT version this host speaks (what `kazi-sdk` builds against).
pub const WIT_VERSION: &str = "0.2.0";
/// The exports a predicate component may have, one per supported version, newest
/// first: a component must export one of them.
pub const PREDICATE_EXPORTS: &[&str] = &[
    "kazi:predicate/evaluator@0.2.0",
    "kazi:predicate/evaluator@0.1.0",
];
/// The exports a profile component may have, newest first.
pub const PROFILE_EXPORTS: &[&str] = &[
    "kazi:profile/translator@0.2.0",
    "kazi:profile/translator@0.1.0",
];

/// Which of `exports` (newest first) `component` has.
pub fn export_of(
    engine: &wasmtime::Engine,
    component: &Component,
    exports: &[&'static str],
) -> Option<&'static str> {
    let ty = component.component_type();
    let names: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    exports
        .iter()
        .copied()
        .find(|e| names.iter().any(|n| n == e))
}

/// One problem a component's `validate` found, in the host's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// A JSON pointer into the config that was validated.
    pub pointer: String,
    pub message: String,
    pub hint: Option<String>,
}

/// The most problems kept from one `validate` call; the rest are counted.
pub const MAX_CONFIG_PROBLEMS: usize = 50;

impl ConfigProblem {
    /// A problem as a guest reported it, its text bounded (a guest's bytes are budgeted).
    fn bounded(pointer: String, message: String, hint: Option<String>) -> Self {
        let cut = |s: &str, n: usize| crate::verdict::truncate_middle(s, n);
        Self {
            pointer: cut(&pointer, 256),
            message: cut(&message, 512),
            hint: hint.map(|h| cut(&h, 512)),
        }
    }
}

/// What a guest's `validate` reported, bounded: at most [`MAX_CONFIG_PROBLEMS`],
/// then one problem saying how many more there were.
fn bounded_problems(found: impl ExactSizeIterator<Item = ConfigProblem>) -> Vec<ConfigProblem> {
    let total = found.len();
    let mut out: Vec<ConfigProblem> = found.take(MAX_CONFIG_PROBLEMS).collect();
    if total > MAX_CONFIG_PROBLEMS {
        out.push(ConfigProblem {
            pointer: String::new(),
            message: format!(
                "has {} more problems (the first {MAX_CONFIG_PROBLEMS} are shown)",
                total - MAX_CONFIG_PROBLEMS
            ),
            hint: None,
        });
    }
    out
}

/// The host-side view of a predicate's `describe`.
pub struct PredicateDescription {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub config_schema: String,
    pub exec: Vec<String>,
    pub net: Vec<String>,
    pub env: Vec<String>,
    pub fs_write: bool,
}

/// A pre-linked predicate component of any supported version.
#[derive(Clone)]
pub enum PredicateComponent {
    V0_2(predicate::PredicatePre<GuestState>),
    V0_1(predicate_v01::PredicatePre<GuestState>),
}

impl PredicateComponent {
    /// Pre-link `instance_pre`, which exports `export` (one of [`PREDICATE_EXPORTS`]).
    pub fn new(export: &str, instance_pre: InstancePre<GuestState>) -> wasmtime::Result<Self> {
        Ok(match export {
            "kazi:predicate/evaluator@0.1.0" => {
                Self::V0_1(predicate_v01::PredicatePre::new(instance_pre)?)
            }
            _ => Self::V0_2(predicate::PredicatePre::new(instance_pre)?),
        })
    }

    /// The world it targets, such as `kazi:predicate/predicate@0.2.0`.
    pub fn world(&self) -> &'static str {
        match self {
            Self::V0_2(_) => "kazi:predicate/predicate@0.2.0",
            Self::V0_1(_) => "kazi:predicate/predicate@0.1.0",
        }
    }

    /// Whether it exports `validate` (0.2.0 and later).
    pub fn has_validate(&self) -> bool {
        matches!(self, Self::V0_2(_))
    }

    /// Instantiate it in `store` (a fresh store per call).
    pub async fn instantiate(
        &self,
        store: &mut Store<GuestState>,
    ) -> wasmtime::Result<PredicateInstance> {
        Ok(match self {
            Self::V0_2(pre) => PredicateInstance::V0_2(pre.instantiate_async(store).await?),
            Self::V0_1(pre) => PredicateInstance::V0_1(pre.instantiate_async(store).await?),
        })
    }
}

/// An instantiated predicate component of any supported version.
pub enum PredicateInstance {
    V0_2(predicate::Predicate),
    V0_1(predicate_v01::Predicate),
}

impl PredicateInstance {
    /// Call `describe`.
    pub async fn describe(
        &self,
        store: &mut Store<GuestState>,
    ) -> wasmtime::Result<PredicateDescription> {
        Ok(match self {
            Self::V0_2(i) => {
                let d = i.kazi_predicate_evaluator().call_describe(store).await?;
                PredicateDescription {
                    name: d.name,
                    version: d.version,
                    summary: d.summary,
                    config_schema: d.config_schema,
                    exec: d.capabilities.exec,
                    net: d.capabilities.net,
                    env: d.capabilities.env,
                    fs_write: d.capabilities.fs_write,
                }
            }
            Self::V0_1(i) => {
                let d = i.kazi_predicate_evaluator().call_describe(store).await?;
                PredicateDescription {
                    name: d.name,
                    version: d.version,
                    summary: d.summary,
                    config_schema: d.config_schema,
                    exec: d.capabilities.exec,
                    net: d.capabilities.net,
                    env: d.capabilities.env,
                    fs_write: d.capabilities.fs_write,
                }
            }
        })
    }

    /// Call `validate`; `None` for a version without it.
    pub async fn validate(
        &self,
        store: &mut Store<GuestState>,
        config: &str,
    ) -> wasmtime::Result<Option<Vec<ConfigProblem>>> {
        match self {
            Self::V0_2(i) => {
                let result = i
                    .kazi_predicate_evaluator()
                    .call_validate(store, config)
                    .await?;
                Ok(Some(match result {
                    Ok(()) => Vec::new(),
                    Err(errors) => bounded_problems(
                        errors
                            .into_iter()
                            .map(|e| ConfigProblem::bounded(e.pointer, e.message, e.hint)),
                    ),
                }))
            }
            Self::V0_1(_) => Ok(None),
        }
    }

    /// Call `evaluate`.
    pub async fn evaluate(
        &self,
        store: &mut Store<GuestState>,
        config: &str,
        predicate_id: &str,
        workspace: &str,
        iteration: u32,
    ) -> wasmtime::Result<predicate::kazi::host::types::Verdict> {
        match self {
            Self::V0_2(i) => {
                let cx = predicate::exports::kazi::predicate::evaluator::Context {
                    predicate_id: predicate_id.to_owned(),
                    workspace: workspace.to_owned(),
                    iteration,
                };
                i.kazi_predicate_evaluator()
                    .call_evaluate(store, config, &cx)
                    .await
            }
            Self::V0_1(i) => {
                let cx = predicate_v01::exports::kazi::predicate::evaluator::Context {
                    predicate_id: predicate_id.to_owned(),
                    workspace: workspace.to_owned(),
                    iteration,
                };
                i.kazi_predicate_evaluator()
                    .call_evaluate(store, config, &cx)
                    .await
            }
        }
    }
}

/// The host-side view of a profile's `describe`.
pub struct ProfileDescription {
    pub id: String,
    pub version: String,
    pub summary: String,
    pub default_program: String,
    pub options: Vec<String>,
}

/// How to run the agent, as a profile's `build-invocation` said.
pub struct ProfileInvocation {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<String>,
    pub prompt_file: bool,
}

/// A dispatch request in the host's terms.
pub struct ProfileCall<'a> {
    pub prompt: &'a str,
    pub workspace: &'a str,
    pub model: Option<&'a str>,
    pub run: &'a [String],
    pub options: &'a [(String, String)],
}

/// A pre-linked profile component of any supported version.
#[derive(Clone)]
pub enum ProfileComponent {
    V0_2(profile::ProfilePre<GuestState>),
    V0_1(profile_v01::ProfilePre<GuestState>),
}

/// One call into an instantiated profile.
pub enum ProfileOp<'a> {
    Describe,
    Validate(&'a str),
    Invocation(ProfileCall<'a>),
    Parse {
        exit_code: Option<i32>,
        stdout: &'a str,
        stderr: &'a str,
    },
}

/// What a [`ProfileOp`] returned.
pub enum ProfileAnswer {
    Describe(ProfileDescription),
    /// `None`: the profile has no `validate` (before 0.2.0).
    Validate(Option<Vec<ConfigProblem>>),
    Invocation(Result<ProfileInvocation, String>),
    Parse(super::AgentReport),
}

/// `op` (any but `Validate`) on the profile instance `$instance` from bindings `$ns`.
macro_rules! profile_op {
    ($instance:expr, $store:expr, $op:expr, $ns:ident) => {{
        use $ns::exports::kazi::profile::translator as t;
        let guest = $instance.kazi_profile_translator();
        match $op {
            ProfileOp::Describe => {
                let d = guest.call_describe(&mut *$store).await?;
                ProfileAnswer::Describe(ProfileDescription {
                    id: d.id,
                    version: d.version,
                    summary: d.summary,
                    default_program: d.default_program,
                    options: d.options,
                })
            }
            ProfileOp::Validate(_) => unreachable!("validate is called by ProfileInstance::call"),
            ProfileOp::Invocation(call) => {
                let req = t::Request {
                    prompt: call.prompt.to_owned(),
                    workspace: call.workspace.to_owned(),
                    model: call.model.map(str::to_owned),
                    run: call.run.to_vec(),
                    options: call.options.to_vec(),
                };
                let inv = guest.call_build_invocation(&mut *$store, &req).await?;
                ProfileAnswer::Invocation(inv.map(|inv| ProfileInvocation {
                    program: inv.program,
                    args: inv.args,
                    env: inv.env,
                    stdin: inv.stdin,
                    prompt_file: inv.prompt_file,
                }))
            }
            ProfileOp::Parse {
                exit_code,
                stdout,
                stderr,
            } => {
                let r = guest
                    .call_parse(&mut *$store, exit_code, stdout, stderr)
                    .await?;
                ProfileAnswer::Parse(super::AgentReport {
                    result: r.result,
                    tokens_in: r.tokens.input,
                    tokens_out: r.tokens.output,
                    tokens_cached: r.tokens.cached,
                    cost_usd: r.cost_usd,
                    session_id: r.session_id,
                    permission_denials: r.permission_denials,
                    error: r.error,
                    unparseable: r.unparseable,
                })
            }
        }
    }};
}

impl ProfileComponent {
    /// Pre-link `instance_pre`, which exports `export` (one of [`PROFILE_EXPORTS`]).
    pub fn new(export: &str, instance_pre: InstancePre<GuestState>) -> wasmtime::Result<Self> {
        Ok(match export {
            "kazi:profile/translator@0.1.0" => {
                Self::V0_1(profile_v01::ProfilePre::new(instance_pre)?)
            }
            _ => Self::V0_2(profile::ProfilePre::new(instance_pre)?),
        })
    }

    /// The world it targets, such as `kazi:profile/profile@0.2.0`.
    pub fn world(&self) -> &'static str {
        match self {
            Self::V0_2(_) => "kazi:profile/profile@0.2.0",
            Self::V0_1(_) => "kazi:profile/profile@0.1.0",
        }
    }

    /// Whether it exports `validate` (0.2.0 and later).
    pub fn has_validate(&self) -> bool {
        matches!(self, Self::V0_2(_))
    }

    /// Instantiate it in `store` (a fresh store per call).
    pub async fn instantiate(
        &self,
        store: &mut Store<GuestState>,
    ) -> wasmtime::Result<ProfileInstance> {
        Ok(match self {
            Self::V0_2(pre) => ProfileInstance::V0_2(pre.instantiate_async(store).await?),
            Self::V0_1(pre) => ProfileInstance::V0_1(pre.instantiate_async(store).await?),
        })
    }
}

/// An instantiated profile component of any supported version.
pub enum ProfileInstance {
    V0_2(profile::Profile),
    V0_1(profile_v01::Profile),
}

impl ProfileInstance {
    /// Make one call.
    pub async fn call(
        &self,
        store: &mut Store<GuestState>,
        op: ProfileOp<'_>,
    ) -> wasmtime::Result<ProfileAnswer> {
        Ok(match (self, op) {
            (Self::V0_2(instance), ProfileOp::Validate(config)) => {
                let result = instance
                    .kazi_profile_translator()
                    .call_validate(&mut *store, config)
                    .await?;
                ProfileAnswer::Validate(Some(match result {
                    Ok(()) => Vec::new(),
                    Err(errors) => bounded_problems(
                        errors
                            .into_iter()
                            .map(|e| ConfigProblem::bounded(e.pointer, e.message, e.hint)),
                    ),
                }))
            }
            (Self::V0_1(_), ProfileOp::Validate(_)) => ProfileAnswer::Validate(None),
            (Self::V0_2(instance), op) => profile_op!(instance, store, op, profile),
            (Self::V0_1(instance), op) => profile_op!(instance, store, op, profile_v01),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guests_problems_are_bounded_in_number_and_length() {
        let many = (0..200).map(|i| {
            ConfigProblem::bounded(
                format!("/k{i}"),
                "x".repeat(10_000),
                Some("h".repeat(9_000)),
            )
        });
        let out = bounded_problems(many);
        assert_eq!(out.len(), MAX_CONFIG_PROBLEMS + 1);
        assert!(out[0].message.len() < 600, "{}", out[0].message.len());
        assert!(out[0].hint.as_ref().unwrap().len() < 600);
        assert_eq!(
            out[MAX_CONFIG_PROBLEMS].message,
            "has 150 more problems (the first 50 are shown)"
        );
        let few = bounded_problems(
            (0..3).map(|i| ConfigProblem::bounded(format!("/{i}"), "m".into(), None)),
        );
        assert_eq!(few.len(), 3);
    }
}
