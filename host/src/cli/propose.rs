//! `kazi propose`, `kazi proposals`, `kazi approve`, `kazi reject`: an agent drafts a
//! goal from an idea, kazi validates and evaluates it and stores it as `proposed`; a
//! person approves it (which writes the goal file) or rejects it. `kazi run REF` runs
//! an approved one ([`goal_for_run`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::CliError;
use super::check::{default_jobs, evaluation_json};
use super::output::{LiveLines, Printer};
use super::predicate::parse_duration;
use super::runs::{ago, failed, one_line, table};
use crate::agent::{DEFAULT_AGENT_TIMEOUT, Dispatcher, profile_source};
use crate::authoring::propose::{self as draft, ExtractError};
use crate::exit;
use crate::goal::{self, AgentSpec};
use crate::observe::Observer;
use crate::run::DispatchOutcome;
use crate::sandbox::Sandbox;
use crate::store::{self, Proposal, ProposalStatus, Saved, Store, StoreError};
use crate::verdict::{Outcome, truncate_middle};

/// Version of the `--json` output of `kazi propose` and `kazi proposals`.
pub const PROPOSE_SCHEMA_VERSION: u32 = 1;
/// How much of an unusable answer an error shows (head and tail).
const ANSWER_SHOWN: usize = 3000;

#[derive(Debug, Args)]
pub struct ProposeArgs {
    /// What to build or fix, in a sentence ("add a /healthz endpoint that returns 200").
    idea: String,
    /// The workspace the goal is for; the agent works (read-only, by instruction) in it.
    #[arg(long, short = 'w', default_value = ".")]
    workspace: PathBuf,
    /// Agent profile to draft with (claude, opencode, codex, command, or a .wasm) [default: claude, or command with --run].
    #[arg(long)]
    profile: Option<String>,
    /// Model to pass to the profile.
    #[arg(long)]
    model: Option<String>,
    /// The program to run as the agent with the `command` profile (implies it).
    #[arg(long, value_name = "PROGRAM")]
    run: Option<String>,
    /// How long the agent may take, like `5m`.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    timeout: Option<Duration>,
    /// A profile option, as a goal's `[agent]` table would set it: `KEY=VALUE`, the
    /// value in TOML (`max_turns=10`, `skip_git_repo_check=true`, `sandbox="read-only"`;
    /// a bare word is a string). Repeatable.
    #[arg(long = "option", short = 'o', value_name = "KEY=VALUE", value_parser = parse_option)]
    options: Vec<(String, serde_json::Value)>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The run database [default: $KAZI_DB, else kazi/kazi.db in the platform data directory].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

/// `KEY=VALUE` with a TOML value; a value that is not TOML is a string.
fn parse_option(text: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE; for example --option max_turns=10"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!(
            "`{text}` has no key; for example --option max_turns=10"
        ));
    }
    let value = value.trim();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or_else(|| serde_json::Value::String(value.to_owned()));
    Ok((key.to_owned(), parsed))
}

impl ProposeArgs {
    /// `--json`: stdout carries one JSON object, even when the agent fails.
    pub fn json_output(&self) -> bool {
        self.json
    }
}

#[derive(Debug, Args)]
pub struct ProposalsArgs {
    /// Show this one proposal in full, with its goal (a ref or a unique prefix).
    reference: Option<String>,
    /// Only proposals with this status.
    #[arg(long, value_parser = ["proposed", "approved", "rejected"])]
    status: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// The run database [default: $KAZI_DB, else kazi/kazi.db in the platform data directory].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The proposal's ref (or a unique prefix), as `kazi propose` printed it.
    reference: String,
    /// Where to write the goal file (a directory gets `<id>.toml`) [default: .kazi/goals/<id>.toml in the proposal's workspace].
    #[arg(long, value_name = "PATH")]
    write: Option<PathBuf>,
    /// Overwrite the goal file if it exists.
    #[arg(long)]
    force: bool,
    /// The run database [default: $KAZI_DB, else kazi/kazi.db in the platform data directory].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The proposal's ref (or a unique prefix).
    reference: String,
    /// The run database [default: $KAZI_DB, else kazi/kazi.db in the platform data directory].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

/// `kazi propose`: 0 stored (vacuous ones too, flagged), 1 when the agent fails or
/// its answer holds no goal, 5 when the answer's goals do not load (or the profile
/// does not), 2 on a usage error.
pub async fn propose(args: ProposeArgs, printer: &Printer) -> Result<u8, CliError> {
    let idea = args.idea.trim();
    if idea.is_empty() {
        return Err(CliError::Usage(
            "the idea is empty; hint: kazi propose \"add a /healthz endpoint that returns 200\""
                .into(),
        ));
    }
    let ws = args.workspace.canonicalize().map_err(|e| {
        CliError::Usage(format!(
            "failed to open the workspace {}: {e}; hint: pass --workspace DIR",
            args.workspace.display()
        ))
    })?;
    if !ws.is_dir() {
        return Err(CliError::Usage(format!(
            "the workspace {} is not a directory",
            ws.display()
        )));
    }
    let profile_id = match (&args.profile, &args.run) {
        (Some(p), _) => p.clone(),
        (None, Some(_)) => "command".to_owned(),
        (None, None) => AgentSpec::default().profile,
    };
    if profile_id == "command" && args.run.is_none() {
        return Err(CliError::Usage(
            "the `command` profile needs a program; hint: --run ./draft.sh".into(),
        ));
    }
    let reference = draft::proposal_ref(idea, &ws);
    let db = args.db.clone().unwrap_or_else(Store::default_path);
    let mut store = Store::open(&db).map_err(failed)?;
    if let Some(p) = store.find_proposal(&reference).map_err(failed)?
        && p.status == ProposalStatus::Approved
    {
        return Err(failed(StoreError::ProposalStatus {
            path: db,
            reference,
            status: p.status,
            action: "drafted again",
            goal_path: p.goal_path,
        }));
    }

    let sandbox =
        Arc::new(Sandbox::with_default_cache().map_err(|e| CliError::Failed(e.to_string()))?);
    let mut predicates = Vec::new();
    for name in crate::builtins::predicate_names() {
        let source = crate::builtins::predicate(name).expect("a listed builtin");
        let loaded = sandbox
            .load_predicate(&source)
            .await
            .map_err(|e| CliError::Failed(format!("failed to load the builtin `{name}`: {e}")))?;
        predicates.push(Arc::unwrap_or_clone(loaded.info));
    }
    let prompt = draft::prompt(idea, &ws, &predicates);
    let cwd = std::env::current_dir().unwrap_or_default();
    let source = profile_source(&profile_id, &cwd, &ws).map_err(CliError::Invalid)?;
    let profile = sandbox
        .load_profile(&source)
        .await
        .map_err(|e| CliError::Invalid(format!("failed to load the agent profile: {e}")))?;
    let spec = AgentSpec {
        profile: profile_id.clone(),
        model: args.model.clone(),
        timeout: args.timeout,
        run: args.run.iter().cloned().collect(),
        options: check_options(&sandbox, &profile, &args).await?,
        ..AgentSpec::default()
    };
    let dispatcher = Dispatcher {
        sandbox: sandbox.clone(),
        profile,
        spec,
        workspace: ws.clone(),
    };

    printer.progress(&format!(
        "asking {} to draft a goal in {}",
        dispatcher.profile.info.id,
        ws.display()
    ));
    let spinner = printer.live().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("template"),
        );
        bar.set_message("agent drafting the goal");
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let timeout = args.timeout.unwrap_or(DEFAULT_AGENT_TIMEOUT);
    let asked = tokio::select! {
        r = dispatcher.ask(&prompt, timeout) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    let Some((rec, answer)) = asked else {
        return Err(CliError::Failed(
            "interrupted; the agent was stopped and nothing was stored".into(),
        ));
    };
    let answer = answer.unwrap_or_default();
    let empty_answer = answer.trim().is_empty()
        && (rec.outcome == DispatchOutcome::Completed
            || (rec.outcome == DispatchOutcome::Unparseable && rec.exit_code == Some(0)));
    if empty_answer {
        return Err(CliError::Failed(format!(
            "the agent's answer was empty: there is no goal in it; hint: run `kazi propose` again, perhaps with `--profile` or `--model`{}",
            rec.message
                .as_deref()
                .map(|m| format!("\n{}: {m}", rec.outcome.as_str()))
                .unwrap_or_default()
        )));
    }
    if rec.outcome != DispatchOutcome::Completed {
        let message = rec.message.as_deref().unwrap_or("no message");
        // The profile's hints speak of goal files; here the options are flags.
        let message = if message.contains("[agent] ") {
            format!("{message} (with `kazi propose`: --option KEY=VALUE)")
        } else {
            message.to_owned()
        };
        return Err(CliError::Failed(format!(
            "the agent failed ({}): {message}",
            rec.outcome.as_str(),
        )));
    }

    let chosen = match draft::extract(&sandbox, &ws, &answer).await {
        Ok(d) => d,
        Err(ExtractError::Empty) => {
            return Err(CliError::Failed(
                "the agent's answer was empty: there is no goal in it; hint: run `kazi propose` again".into(),
            ));
        }
        Err(ExtractError::NoGoal) => {
            return Err(CliError::Failed(format!(
                "the agent's answer holds no goal file (no ```toml block, TOML document or JSON object)\n{}\nhint: run `kazi propose` again, perhaps with a more precise idea",
                said(&answer)
            )));
        }
        Err(ExtractError::Invalid(rejections)) => {
            let n = rejections.len();
            let mut msg = format!(
                "the agent's answer holds {n} goal{}, and none loads",
                if n == 1 { "" } else { "s" }
            );
            for r in &rejections {
                msg.push_str(&format!("\n{}: {}", r.origin, r.reason));
            }
            msg.push('\n');
            msg.push_str(&said(&answer));
            msg.push_str(
                "\nhint: run `kazi propose` again; the messages above say what to word differently",
            );
            return Err(CliError::Invalid(msg));
        }
    };
    for n in &chosen.notices {
        printer.notice(n);
    }

    let live = Arc::new(LiveLines::new(printer, chosen.goal.predicates.len()));
    let results = Observer::new(sandbox.clone(), &chosen.goal, ws.clone(), default_jobs())
        .with_progress(live.clone())
        .observe_all()
        .await;
    live.clear();
    let vacuous = draft::vacuous_reason(&chosen.goal.goal, &results);
    let goal_id = chosen.goal.goal.id.clone();
    let saved = store
        .save_proposal(&store::NewProposal {
            reference: reference.clone(),
            idea: idea.to_owned(),
            goal_id: goal_id.clone(),
            goal_text: chosen.text.clone(),
            vacuous_reason: vacuous.clone(),
            workspace: ws.display().to_string(),
        })
        .map_err(failed)?;
    let next = format!("kazi approve {reference}");

    if args.json {
        printer.json(&json!({
            "schema_version": PROPOSE_SCHEMA_VERSION,
            "ref": reference,
            "status": ProposalStatus::Proposed,
            "saved": match saved { Saved::Created => "created", Saved::Updated { .. } => "updated" },
            "previous_status": match saved { Saved::Created => None, Saved::Updated { previous } => Some(previous) },
            "idea": idea,
            "workspace": ws,
            "goal_id": goal_id,
            "goal": chosen.text,
            "origin": chosen.origin,
            "vacuous": vacuous.is_some(),
            "vacuous_reason": vacuous,
            "predicates": results.iter().map(evaluation_json).collect::<Vec<_>>(),
            "notices": chosen.notices,
            "agent": {
                "profile": rec.profile,
                "model": rec.model,
                "duration_ms": rec.duration_ms,
                "tokens_in": rec.tokens_in,
                "tokens_out": rec.tokens_out,
                "cost_usd": rec.cost_usd,
            },
            "next": next,
        }));
        return Ok(exit::SUCCESS);
    }
    printer.out(chosen.text.trim_end());
    printer.out("");
    let passing = results
        .iter()
        .filter(|e| e.verdict.outcome == Outcome::Pass)
        .count();
    printer.out(&format!(
        "now: {passing} of {} predicate{} pass{}",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        if vacuous.is_none() {
            " (as it should before the idea is built)"
        } else {
            ""
        }
    ));
    for e in &results {
        printer.verdict_line(&e.id, &e.verdict, false);
    }
    let how = match saved {
        Saved::Created => "new".to_owned(),
        Saved::Updated {
            previous: ProposalStatus::Rejected,
        } => "a new draft of a rejected proposal".to_owned(),
        Saved::Updated { .. } => "updated: this draft replaces the previous one".to_owned(),
    };
    if let Some(v) = &vacuous {
        printer.out(&format!("vacuous: {v}; `kazi run` would refuse this goal"));
    }
    printer.out(&format!("proposed {reference} ({how})"));
    printer.out(&match &vacuous {
        None => format!("next: {next}"),
        Some(_) => format!(
            "next: word the idea more precisely and propose again, or `kazi reject {reference}`"
        ),
    });
    Ok(exit::SUCCESS)
}

/// The agent's answer, bounded and indented, for an error message.
fn said(answer: &str) -> String {
    let shown = truncate_middle(answer.trim(), ANSWER_SHOWN);
    let mut s = format!("the agent said ({} bytes):", answer.trim().len());
    for line in shown.lines() {
        s.push_str("\n    | ");
        s.push_str(line);
    }
    s
}

fn open_existing(db: Option<PathBuf>, reference: &str) -> Result<Store, CliError> {
    let path = db.unwrap_or_else(Store::default_path);
    Store::open_existing(&path).map_err(failed)?.ok_or_else(|| {
        failed(StoreError::UnknownProposal {
            path,
            reference: reference.to_owned(),
        })
    })
}

fn proposal_json(p: &Proposal) -> serde_json::Value {
    json!({
        "ref": p.reference,
        "status": p.status,
        "idea": p.idea,
        "goal_id": p.goal_id,
        "workspace": p.workspace,
        "vacuous": p.vacuous_reason.is_some(),
        "vacuous_reason": p.vacuous_reason,
        "goal_path": p.goal_path,
        "goal": p.goal_text,
        "created_at_ms": p.created_at_ms,
        "updated_at_ms": p.updated_at_ms,
    })
}

/// `kazi proposals [REF]`: the table, or one proposal in full.
pub fn list(args: ProposalsArgs, printer: &Printer) -> Result<u8, CliError> {
    let path = args.db.clone().unwrap_or_else(Store::default_path);
    if let Some(reference) = &args.reference {
        let p = Store::open_read_only(&path)?
            .ok_or_else(|| StoreError::UnknownProposal {
                path: path.clone(),
                reference: reference.clone(),
            })?
            .proposal(reference)?;
        if args.json {
            let mut v = proposal_json(&p);
            v["schema_version"] = json!(PROPOSE_SCHEMA_VERSION);
            printer.json(&v);
            return Ok(exit::SUCCESS);
        }
        let mut rows = vec![
            ("ref", p.reference.clone()),
            ("status", p.status.to_string()),
            ("idea", p.idea.clone()),
            ("goal", p.goal_id.clone()),
            ("workspace", p.workspace.clone()),
        ];
        if let Some(g) = &p.goal_path {
            rows.push(("goal file", g.clone()));
        }
        if let Some(v) = &p.vacuous_reason {
            rows.push(("vacuous", v.clone()));
        }
        rows.push(("created", store::utc_time(p.created_at_ms)));
        rows.push(("updated", store::utc_time(p.updated_at_ms)));
        for (k, v) in rows {
            printer.out(&format!("{k:<10} {v}"));
        }
        printer.out("");
        printer.out(p.goal_text.trim_end());
        return Ok(exit::SUCCESS);
    }
    let status = args.status.as_deref().and_then(ProposalStatus::parse);
    let proposals = match Store::open_read_only(&path)? {
        Some(s) => s.list_proposals(status)?,
        None => Vec::new(),
    };
    if args.json {
        printer.json(&json!({
            "schema_version": PROPOSE_SCHEMA_VERSION,
            "proposals": proposals.iter().map(proposal_json).collect::<Vec<_>>(),
        }));
        return Ok(exit::SUCCESS);
    }
    if proposals.is_empty() {
        printer.out(match status {
            None => "no proposals yet; hint: kazi propose \"IDEA\"",
            Some(_) => "no proposals with that status",
        });
        return Ok(exit::SUCCESS);
    }
    let now = store::now_ms();
    let rows: Vec<Vec<String>> = proposals
        .iter()
        .map(|p| {
            vec![
                p.reference.clone(),
                if p.vacuous_reason.is_some() {
                    format!("{} (vacuous)", p.status)
                } else {
                    p.status.to_string()
                },
                p.goal_id.clone(),
                ago(p.updated_at_ms, now),
                one_line(&p.idea, 60),
            ]
        })
        .collect();
    for line in table(&["REF", "STATUS", "GOAL", "UPDATED", "IDEA"], &rows) {
        printer.out(&line);
    }
    Ok(exit::SUCCESS)
}

/// `path` as the user can type it: relative to the current directory when inside it.
fn shown(path: &Path) -> String {
    let rel = std::env::current_dir()
        .ok()
        .and_then(|cwd| cwd.canonicalize().ok())
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf));
    let s = match rel {
        Some(r) if !r.as_os_str().is_empty() => r.display().to_string(),
        _ => path.display().to_string(),
    };
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Write `p`'s goal file at `target` (absolute); return where it went (its directory
/// canonical).
fn write_goal(p: &Proposal, target: &Path) -> Result<PathBuf, CliError> {
    let dir = target.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::Failed(format!(
            "failed to create the directory {}: {e}",
            dir.display()
        ))
    })?;
    let dir = dir.canonicalize().map_err(|e| {
        CliError::Failed(format!(
            "failed to open the directory {}: {e}",
            dir.display()
        ))
    })?;
    let target = dir.join(target.file_name().unwrap_or_default());
    let text =
        draft::approved_text(&p.goal_text, &target, Path::new(&p.workspace)).map_err(|e| {
            CliError::Failed(format!(
                "failed to write the goal of proposal `{}`: {e}",
                p.reference
            ))
        })?;
    goal::load_str(&target, &text).map_err(|e| CliError::Invalid(e.to_string()))?;
    std::fs::write(&target, text).map_err(|e| {
        CliError::Failed(format!(
            "failed to write the goal file {}: {e}",
            target.display()
        ))
    })?;
    Ok(target)
}

/// `kazi approve REF`: write the goal file, mark the proposal approved.
pub fn approve(args: ApproveArgs, printer: &Printer) -> Result<u8, CliError> {
    let mut store = open_existing(args.db, &args.reference)?;
    let p = store.proposal(&args.reference).map_err(failed)?;
    if p.status != ProposalStatus::Proposed {
        return Err(failed(StoreError::ProposalStatus {
            path: store.path().to_owned(),
            reference: p.reference,
            status: p.status,
            action: "approved",
            goal_path: p.goal_path,
        }));
    }
    if !Path::new(&p.workspace).is_dir() {
        return Err(CliError::Failed(format!(
            "the workspace {} of proposal `{}` is gone; hint: propose the idea again where the code is now",
            p.workspace, p.reference
        )));
    }
    let file_name = format!("{}.toml", p.goal_id);
    let target = match &args.write {
        Some(w) => {
            let w = std::env::current_dir().unwrap_or_default().join(w);
            if w.is_dir() { w.join(&file_name) } else { w }
        }
        None => Path::new(&p.workspace)
            .join(".kazi")
            .join("goals")
            .join(&file_name),
    };
    if target.exists() && !args.force {
        return Err(CliError::Failed(format!(
            "the goal file {} already exists; hint: --force overwrites it, or --write PATH puts the goal elsewhere",
            target.display()
        )));
    }
    if target.is_dir() {
        return Err(CliError::Failed(format!(
            "{} is a directory",
            target.display()
        )));
    }
    let target = write_goal(&p, &target)?;
    let p = store
        .approve_proposal(&p.reference, &target.display().to_string())
        .map_err(failed)?;
    if let Some(v) = &p.vacuous_reason {
        printer.notice(&format!(
            "this goal was vacuous when drafted ({v}); `kazi run` refuses a goal that passes at the start"
        ));
    }
    printer.out(&format!(
        "approved {}: wrote {}",
        p.reference,
        target.display()
    ));
    printer.out(&format!("next: kazi run {}", shown(&target)));
    Ok(exit::SUCCESS)
}

/// `kazi reject REF`.
pub fn reject(args: RejectArgs, printer: &Printer) -> Result<u8, CliError> {
    let mut store = open_existing(args.db, &args.reference)?;
    let reference = store.proposal(&args.reference).map_err(failed)?.reference;
    let p = store.reject_proposal(&reference).map_err(failed)?;
    printer.out(&format!("rejected {}", p.reference));
    Ok(exit::SUCCESS)
}

/// The goal file `kazi run GOAL` should load: `goal` itself, unless it is no file but
/// the ref of an approved proposal: then the goal file `kazi approve` wrote (written
/// again from the read-model when it has gone missing).
pub fn goal_for_run(
    goal: &Path,
    db: Option<&Path>,
    printer: &Printer,
) -> Result<PathBuf, CliError> {
    let Some(name) = goal.to_str() else {
        return Ok(goal.to_owned());
    };
    if goal.exists() || !name.starts_with("prop-") || name.contains('/') || name.ends_with(".toml")
    {
        return Ok(goal.to_owned());
    }
    let path = db.map_or_else(Store::default_path, Path::to_path_buf);
    let invalid = |e: StoreError| CliError::Invalid(e.to_string());
    let store = Store::open_existing(&path)
        .map_err(failed)?
        .ok_or_else(|| {
            invalid(StoreError::UnknownProposal {
                path: path.clone(),
                reference: name.to_owned(),
            })
        })?;
    let p = store.proposal(name).map_err(invalid)?;
    let Some(file) = p
        .goal_path
        .as_ref()
        .filter(|_| p.status == ProposalStatus::Approved)
    else {
        return Err(CliError::Invalid(format!(
            "proposal `{}` is {}, not approved: it has no goal file to run{}",
            p.reference,
            p.status,
            match p.status {
                ProposalStatus::Rejected =>
                    "; hint: `kazi propose` the idea again for a new draft".to_owned(),
                _ => format!("; hint: `kazi approve {}` writes it", p.reference),
            }
        )));
    };
    let file = PathBuf::from(file);
    if !file.exists() {
        write_goal(&p, &file)?;
        printer.notice(&format!(
            "the goal file {} of proposal `{}` was missing; kazi wrote it again from the read-model",
            file.display(),
            p.reference
        ));
    }
    printer.progress(&format!(
        "proposal {}: goal file {}",
        p.reference,
        file.display()
    ));
    Ok(file)
}

/// The `--option`s, checked by the profile as it would check a goal's `[agent]`.
async fn check_options(
    sandbox: &Sandbox,
    profile: &crate::sandbox::LoadedProfile,
    args: &ProposeArgs,
) -> Result<std::collections::BTreeMap<String, serde_json::Value>, CliError> {
    let mut options = std::collections::BTreeMap::new();
    for (key, value) in &args.options {
        if !profile.info.options.contains(key) {
            let known = profile.info.options.join(", ");
            let hint = match crate::goal::did_you_mean(
                key,
                profile.info.options.iter().map(String::as_str),
            ) {
                Some(m) => format!("did you mean `{m}`?"),
                None if known.is_empty() => {
                    format!("the {} profile takes no options", profile.info.id)
                }
                None => format!("the {} profile's options are {known}", profile.info.id),
            };
            return Err(CliError::Usage(format!(
                "--option {key}: not an option of the {} profile; hint: {hint}",
                profile.info.id
            )));
        }
        options.insert(key.clone(), value.clone());
    }
    let mut config: serde_json::Map<String, serde_json::Value> = options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(m) = &args.model {
        config.insert("model".into(), m.clone().into());
    }
    if let Some(r) = &args.run {
        config.insert("run".into(), vec![r.clone()].into());
    }
    match sandbox
        .validate_profile(profile, &serde_json::Value::Object(config))
        .await
    {
        Err(reason) => Err(CliError::Invalid(format!(
            "the agent profile is broken: {reason}"
        ))),
        Ok(Some(problems)) if !problems.is_empty() => {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| {
                    let key = p.pointer.trim_start_matches('/').replace('/', ".");
                    let flag = if key == "model" || key.starts_with("run") {
                        format!("--{}", key.split('.').next().unwrap_or(&key))
                    } else {
                        format!("--option {key}")
                    };
                    match &p.hint {
                        Some(h) => format!("{flag}: {}; hint: {h}", p.message),
                        None => format!("{flag}: {}", p.message),
                    }
                })
                .collect();
            Err(CliError::Usage(lines.join("\n")))
        }
        Ok(_) => Ok(options),
    }
}
