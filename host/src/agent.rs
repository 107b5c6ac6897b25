//! Agent dispatch: ask the profile how to run the agent, spawn it in the workspace in
//! its own process group with a timeout, and ask the profile what its output means.
//! The agent is a normal process (it must edit files); kazi's protections against a
//! gaming agent live in the loop (seal, protected paths, held-out predicates, ratchets).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::goal::AgentSpec;
use crate::process;
use crate::reconcile::DispatchRequest;
use crate::run::{DispatchOutcome, DispatchRecord};
use crate::sandbox::{LoadedProfile, ProfileRequest, Sandbox, Source};
use crate::verdict::truncate_middle;

/// Default per-dispatch timeout.
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Cap on each of the agent's stdout and stderr.
pub const AGENT_OUTPUT_CAP: usize = 16 * 1024 * 1024;

/// Resolve `[agent] profile`: a builtin id, a path to a `.wasm` component (relative
/// to `base`, the goal's directory), or an installed profile package
/// `namespace:name@req`, pinned in `workspace`'s `kazi.lock`.
pub fn profile_source(profile: &str, base: &Path, workspace: &Path) -> Result<Source, String> {
    if let Some(s) = crate::builtins::profile(profile) {
        return Ok(s);
    }
    if profile.ends_with(".wasm") || profile.contains('/') {
        return Source::from_file(&base.join(profile)).map_err(|e| e.to_string());
    }
    if profile.contains(':') {
        let (name, req) =
            crate::goal::parse_package_ref(profile).map_err(|(m, h)| format!("{m}; hint: {h}"))?;
        let store = crate::pkg::store::Store::open_default();
        return crate::pkg::install::resolve_locked(
            workspace,
            &store,
            &name,
            &req,
            crate::pkg::Kind::Profile,
        )
        .map(|r| r.source)
        .map_err(|e| match e.hint {
            Some(h) => format!("agent profile {profile}: {}; hint: {h}", e.message),
            None => format!("agent profile {profile}: {}", e.message),
        });
    }
    let names = crate::builtins::profile_names();
    let hint = crate::goal::did_you_mean(profile, names.iter().copied())
        .map(|m| format!("did you mean `{m}`? "))
        .unwrap_or_default();
    Err(format!(
        "unknown agent profile \"{profile}\"; hint: {hint}builtins: {}, or a path to a .wasm profile",
        names.join(", ")
    ))
}

/// Runs one agent through one profile.
pub struct Dispatcher {
    pub sandbox: Arc<Sandbox>,
    pub profile: LoadedProfile,
    pub spec: AgentSpec,
    pub workspace: PathBuf,
}

impl Dispatcher {
    /// Check before anything runs that the agent can be started: the profile builds
    /// an invocation and its program resolves (on PATH, or in the workspace for a
    /// path). Returns the program and its argv for `--dry-run` and `-v`.
    pub async fn preflight(&self, prompt: &str) -> Result<(PathBuf, Vec<String>), String> {
        let inv = self
            .sandbox
            .invocation(&self.profile, &self.request(prompt))
            .await
            .map_err(|e| {
                format!(
                    "the {} profile cannot build the agent command: {e}",
                    self.profile.info.id
                )
            })?;
        let path = std::env::var_os("PATH");
        match process::resolve_program(&inv.program, path.as_deref(), &self.workspace) {
            Some(p) => Ok((p, inv.args)),
            None => Err(format!(
                "the agent program `{}` was not found {}; hint: install it, or choose another agent with `[agent] profile`, `[agent] run` or `--profile`",
                inv.program,
                if inv.program.contains('/') {
                    "in the workspace"
                } else {
                    "on PATH"
                }
            )),
        }
    }

    fn request(&self, prompt: &str) -> ProfileRequest {
        ProfileRequest {
            prompt: prompt.to_owned(),
            workspace: self.workspace.display().to_string(),
            model: self.spec.model.clone(),
            run: self.spec.run.clone(),
            options: self
                .spec
                .options
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        }
    }

    /// Dispatch the request's prompt for its predicates, waiting at most its timeout;
    /// a stop request kills the agent and the record says `interrupted`.
    pub async fn dispatch(&self, req: DispatchRequest<'_>) -> DispatchRecord {
        self.dispatch_into(
            req.prompt,
            req.predicates,
            req.timeout,
            Some(req.stop),
            req.spawned,
            &mut None,
        )
        .await
    }

    /// Run the agent on `prompt` and return the record and its whole answer (the
    /// record's message is bounded): for callers that read the answer itself, such as
    /// `kazi propose`.
    pub async fn ask(&self, prompt: &str, timeout: Duration) -> (DispatchRecord, Option<String>) {
        let mut answer = None;
        let rec = self
            .dispatch_into(prompt, &[], timeout, None, None, &mut answer)
            .await;
        (rec, answer)
    }

    async fn dispatch_into(
        &self,
        prompt: &str,
        predicates: &[String],
        timeout: Duration,
        stop: Option<&CancellationToken>,
        spawned: Option<process::SpawnHook>,
        answer: &mut Option<String>,
    ) -> DispatchRecord {
        let mut rec = DispatchRecord::new(
            self.profile.info.id.clone(),
            self.spec.model.clone(),
            prompt,
            predicates,
        );
        let req = self.request(prompt);
        let inv = match self.sandbox.invocation(&self.profile, &req).await {
            Ok(inv) => inv,
            Err(e) => {
                rec.message = Some(format!(
                    "the {} profile could not build the agent command: {e}",
                    rec.profile
                ));
                return rec;
            }
        };
        let path = std::env::var_os("PATH");
        let Some(program) =
            process::resolve_program(&inv.program, path.as_deref(), &self.workspace)
        else {
            rec.outcome = DispatchOutcome::MissingProgram;
            rec.message = Some(format!(
                "agent program `{}` was not found{}; hint: install it, or set `[agent] run` / `--profile`",
                inv.program,
                if inv.program.contains('/') {
                    " in the workspace"
                } else {
                    " on PATH"
                }
            ));
            return rec;
        };
        // The agent inherits the user's environment (it needs its credentials),
        // plus `[agent] env` and what the profile adds.
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        env.extend(self.spec.env.iter().map(|(k, v)| (k.into(), v.into())));
        env.extend(inv.env.iter().map(|(k, v)| (k.into(), v.into())));
        let prompt_file = if inv.prompt_file {
            remove_stale_prompt_files();
            match tempfile::Builder::new()
                .prefix(&format!("kazi-prompt-{}-", std::process::id()))
                .suffix(".md")
                .tempfile()
            {
                Ok(mut f) => {
                    if let Err(e) = std::io::Write::write_all(&mut f, prompt.as_bytes()) {
                        rec.message = Some(format!("cannot write the prompt file: {e}"));
                        return rec;
                    }
                    env.push(("KAZI_PROMPT_FILE".into(), f.path().into()));
                    Some(f)
                }
                Err(e) => {
                    rec.message = Some(format!("cannot create the prompt file: {e}"));
                    return rec;
                }
            }
        } else {
            None
        };
        let spawn = process::Spawn {
            program,
            args: inv.args.clone(),
            cwd: self.workspace.clone(),
            env,
            stdin: inv.stdin.map(String::into_bytes),
            timeout,
            output_cap: AGENT_OUTPUT_CAP,
        };
        tracing::info!(
            profile = %self.profile.info.id,
            program = %spawn.program.display(),
            args = ?spawn.args,
            timeout = %humantime::format_duration(timeout),
            "dispatching the agent"
        );
        let supervision = process::Supervision {
            cancel: stop.cloned(),
            on_spawn: spawned,
            cwd_dir: None,
        };
        let finished = match process::run_supervised(spawn, supervision).await {
            Ok(f) => f,
            Err(e) => {
                rec.message = Some(format!("cannot start `{}`: {e}", inv.program));
                return rec;
            }
        };
        drop(prompt_file);
        rec.exit_code = finished.status;
        rec.duration_ms = finished.duration.as_millis() as u64;
        let stdout = String::from_utf8_lossy(&finished.stdout);
        let stderr = String::from_utf8_lossy(&finished.stderr);
        let report = self
            .sandbox
            .parse(&self.profile, finished.status, &stdout, &stderr)
            .await;
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                rec.outcome = DispatchOutcome::Unparseable;
                rec.message = Some(format!(
                    "the {} profile could not read the agent's output: {e}",
                    rec.profile
                ));
                return rec;
            }
        };
        rec.tokens_in = report.tokens_in;
        rec.tokens_out = report.tokens_out;
        rec.tokens_cached = report.tokens_cached;
        rec.cost_usd = report.cost_usd;
        rec.session_id = report.session_id;
        rec.permission_denials = report.permission_denials;
        answer.clone_from(&report.result);
        let bounded = |s: &str| truncate_middle(s.trim(), 2048);
        rec.outcome = if finished.cancelled {
            DispatchOutcome::Interrupted
        } else if finished.timed_out {
            DispatchOutcome::TimedOut
        } else if report.unparseable && finished.status == Some(0) {
            DispatchOutcome::Unparseable
        } else if finished.status != Some(0) || report.error.is_some() {
            DispatchOutcome::Failed
        } else if report.result.is_none() && !stdout.trim().is_empty() {
            DispatchOutcome::Unparseable
        } else {
            DispatchOutcome::Completed
        };
        rec.message = match rec.outcome {
            DispatchOutcome::TimedOut | DispatchOutcome::Interrupted => {
                let why = match rec.outcome {
                    DispatchOutcome::TimedOut => format!(
                        "the agent was killed after {} (dispatch timeout)",
                        humantime::format_duration(timeout)
                    ),
                    _ => "the agent was stopped because kazi was interrupted".to_owned(),
                };
                // What the agent said last: the profile's reading of it, else the tail of
                // its own output.
                let last = report
                    .error
                    .clone()
                    .or(report.result.clone())
                    .map(|m| bounded(&m))
                    .or_else(|| {
                        let tail = tail_lines(&format!("{stdout}\n{stderr}"), 5, 1024);
                        (!tail.is_empty()).then(|| format!("its output ends: {tail}"))
                    });
                Some(match last {
                    Some(last) => format!("{why}: {last}"),
                    None => format!("{why}; it printed nothing"),
                })
            }
            DispatchOutcome::Unparseable => Some(report.error.as_deref().map_or_else(
                || {
                    format!(
                        "the {} profile found no result in the agent's output: {}",
                        rec.profile,
                        bounded(&stdout)
                    )
                },
                bounded,
            )),
            _ => report.error.or(report.result).map(|m| bounded(&m)),
        };
        rec
    }
}

/// The last `lines` non-empty lines of `text`, at most `max` bytes.
fn tail_lines(text: &str, lines: usize, max: usize) -> String {
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let tail = kept[kept.len().saturating_sub(lines)..].join(" / ");
    if tail.len() <= max {
        return tail;
    }
    let mut start = tail.len() - max;
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &tail[start..])
}

/// Remove prompt files left in the temporary directory by kazi processes that are
/// gone (a kill that ran no destructor).
fn remove_stale_prompt_files() {
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("kazi-prompt-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_profiles_get_a_hint() {
        let e = profile_source("comand", Path::new("."), Path::new(".")).unwrap_err();
        assert!(e.contains("did you mean `command`?"), "{e}");
        assert!(profile_source("command", Path::new("."), Path::new(".")).is_ok());
    }

    #[test]
    fn a_profile_package_resolves_only_through_the_lock() {
        let ws = tempfile::tempdir().unwrap();
        let e = profile_source("acme:claude-strict@^1", Path::new("."), ws.path()).unwrap_err();
        assert!(
            e.contains("acme:claude-strict") && e.contains("not installed"),
            "{e}"
        );
        assert!(e.contains("kazi pkg add"), "{e}");
        let e = profile_source("acme:x@not-a-version", Path::new("."), ws.path()).unwrap_err();
        assert!(e.contains("invalid version requirement"), "{e}");
    }
}
