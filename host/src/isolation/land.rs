//! Landing a converged run: commit the graded state on a branch, then apply
//! `[land] mode`. Every failure is a [`LandOutcome`], never an error or a panic.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cmd::{Cmd, which};
use super::git::Git;
use super::{GitFacts, Isolation, Mode, WorktreeRecord};
use crate::goal::LandMode;

/// The branch a converged run lands on unless `[land] branch` says otherwise.
pub const DEFAULT_BRANCH: &str = "kazi/{goal}-{run}";
/// How long `gh` and `git push` may take.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// What to land and how.
#[derive(Debug, Clone, Copy)]
pub struct LandRequest<'a> {
    pub mode: LandMode,
    /// `[land] branch` (`{goal}` and `{run}` are replaced); `None`: [`DEFAULT_BRANCH`].
    pub branch: Option<&'a str>,
    /// The commit message ([`landing_message`]).
    pub message: &'a str,
    /// The body of a pull request (the run report); the message when empty.
    pub report: &'a str,
}

/// How landing went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LandStatus {
    /// The mode asked for applied.
    Landed,
    /// `merge` or `pr` could not apply; the commit is on its branch (`reason` says why).
    FellBack,
    /// `[land] mode = "none"`: nothing landed; the graded state is kept for `kazi land`.
    Kept,
    /// The run kept no change.
    Nothing,
    /// The run worked in place: its changes are already in the user's files.
    InPlace,
    /// Not even the branch could be made (`reason` says why).
    Failed,
}

impl LandStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LandStatus::Landed => "landed",
            LandStatus::FellBack => "fell_back",
            LandStatus::Kept => "kept",
            LandStatus::Nothing => "nothing",
            LandStatus::InPlace => "in_place",
            LandStatus::Failed => "failed",
        }
    }
}

/// What landing did, for the report and the read-model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandOutcome {
    pub status: LandStatus,
    pub requested: LandMode,
    /// The mode that applied (`branch` after a fallback).
    pub applied: Option<LandMode>,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub pr_url: Option<String>,
    /// Why it fell back or failed.
    pub reason: Option<String>,
    /// What to tell the user: a summary line, then the exact commands to run.
    pub lines: Vec<String>,
}

impl LandOutcome {
    fn new(requested: LandMode, status: LandStatus) -> Self {
        LandOutcome {
            status,
            requested,
            applied: None,
            branch: None,
            commit: None,
            pr_url: None,
            reason: None,
            lines: Vec::new(),
        }
    }

    fn failed(requested: LandMode, reason: String) -> Self {
        LandOutcome {
            lines: vec![format!("landing failed: {reason}")],
            reason: Some(reason),
            ..LandOutcome::new(requested, LandStatus::Failed)
        }
    }

    /// Whether the changes are somewhere the user can take them from.
    pub fn ok(&self) -> bool {
        self.status != LandStatus::Failed
    }
}

/// The landing commit's message: the goal, the final verdicts and the trailers
/// `Kazi-Goal:` and `Kazi-Run:`. `verdicts` are (predicate id, state, summary).
pub fn landing_message(
    goal_id: &str,
    goal_name: Option<&str>,
    verdicts: &[(&str, &str, &str)],
    run_id: &str,
) -> String {
    let title = one_line(goal_name.unwrap_or(goal_id), 64);
    let mut m = format!("kazi: {title}\n\nGoal \"{goal_id}\" converged in kazi run {run_id}.\n");
    if !verdicts.is_empty() {
        m.push_str("\nFinal verdicts:\n");
        for (id, state, summary) in verdicts {
            m.push_str(&format!(
                "  {:<5} {}: {}\n",
                one_line(state, 8),
                one_line(id, 64),
                one_line(summary, 100)
            ));
        }
    }
    m.push_str(&format!(
        "\nKazi-Goal: {}\nKazi-Run: {}\n",
        one_line(goal_id, 100),
        one_line(run_id, 100)
    ));
    m
}

/// The first line of `text` without control characters, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line: String = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let line = line.trim();
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn short(oid: &str) -> &str {
    &oid[..oid.len().min(12)]
}

fn branch_short(r: &str) -> &str {
    r.strip_prefix("refs/heads/").unwrap_or(r)
}

impl Isolation {
    /// Land the graded state of a converged run (see [`land`]).
    pub fn land(&self, req: &LandRequest<'_>) -> LandOutcome {
        land(&self.record, req)
    }
}

/// Commit the graded state on its branch, then apply the mode: `branch` prints the
/// commands to merge it; `merge` fast-forwards the branch the user's checkout is on
/// when it is clean and has not moved since the base (else falls back to `branch`);
/// `pr` pushes the branch and opens a pull request with `gh` (else falls back);
/// `none` lands nothing and keeps the graded state for `kazi land`.
pub fn land(rec: &WorktreeRecord, req: &LandRequest<'_>) -> LandOutcome {
    let Some(f) = &rec.git else {
        return LandOutcome {
            lines: vec!["the workspace is not in git: the agent's changes are in it".into()],
            ..LandOutcome::new(req.mode, LandStatus::InPlace)
        };
    };
    if rec.mode == Mode::InPlace {
        return LandOutcome {
            lines: vec!["the run worked in place: its changes are already in your checkout".into()],
            ..LandOutcome::new(req.mode, LandStatus::InPlace)
        };
    }
    let Some(graded) = &f.graded else {
        return LandOutcome {
            lines: vec!["the run kept no change: nothing to land".into()],
            ..LandOutcome::new(req.mode, LandStatus::Nothing)
        };
    };
    if req.mode == LandMode::None {
        return LandOutcome {
            commit: Some(graded.clone()),
            lines: vec![
                "nothing landed ([land] mode = \"none\")".into(),
                format!("kazi land {}      # lands it later", rec.run_id),
            ],
            ..LandOutcome::new(req.mode, LandStatus::Kept)
        };
    }
    let top = Git::new(&f.toplevel);
    let (branch, commit, files) = match commit_on_branch(&top, rec, f, graded, req) {
        Ok(x) => x,
        Err(reason) => return LandOutcome::failed(req.mode, reason),
    };
    let mut out = LandOutcome {
        branch: Some(branch.clone()),
        commit: Some(commit.clone()),
        ..LandOutcome::new(req.mode, LandStatus::Landed)
    };
    let lines = branch_lines(f, &branch, &commit, files);
    let fallback = |mut out: LandOutcome, reason: String| {
        out.status = LandStatus::FellBack;
        out.applied = Some(LandMode::Branch);
        out.lines = std::iter::once(format!(
            "could not {}: {reason}",
            if req.mode == LandMode::Merge {
                "merge"
            } else {
                "open a pull request"
            }
        ))
        .chain(lines.clone())
        .collect();
        out.reason = Some(reason);
        out
    };
    match req.mode {
        LandMode::Branch | LandMode::None => {
            out.applied = Some(LandMode::Branch);
            out.lines = lines;
            out
        }
        LandMode::Merge => match merge(&top, f, &branch) {
            Ok(()) => {
                let on = f.start_branch.as_deref().map_or("", branch_short);
                out.applied = Some(LandMode::Merge);
                out.lines = vec![format!(
                    "fast-forwarded {on} to {branch} ({}, {files} file{} changed)",
                    short(&commit),
                    if files == 1 { "" } else { "s" }
                )];
                out
            }
            Err(reason) => fallback(out, reason),
        },
        LandMode::Pr => match pull_request(&top, f, &branch, req) {
            Ok(url) => {
                out.applied = Some(LandMode::Pr);
                out.lines = vec![format!("opened a pull request from {branch}: {url}")];
                out.pr_url = Some(url);
                out
            }
            Err(reason) => fallback(out, reason),
        },
    }
}

/// Commit the graded tree on top of the base with `req.message` and point the
/// branch at it (an existing branch is reused only when it holds the same tree on
/// the same base). Returns the branch, the commit and the number of files changed.
fn commit_on_branch(
    top: &Git,
    rec: &WorktreeRecord,
    f: &GitFacts,
    graded: &str,
    req: &LandRequest<'_>,
) -> Result<(String, String, usize), String> {
    let e = |e: super::git::GitError| e.to_string();
    let template = req.branch.unwrap_or(DEFAULT_BRANCH);
    let branch = template
        .replace("{goal}", &rec.goal_id)
        .replace("{run}", &rec.run_id);
    let refname = format!("refs/heads/{branch}");
    if !super::git::valid_branch_name(&branch)
        || top
            .query(["check-ref-format", &refname])
            .map_err(e)?
            .is_none()
    {
        return Err(format!(
            "`{branch}` is not a valid branch name; hint: fix [land] branch"
        ));
    }
    let tree = top
        .line(["rev-parse", &format!("{graded}^{{tree}}")])
        .map_err(e)?;
    let files = top
        .run(["diff-tree", "-r", "-z", "--name-only", &f.base_tree, &tree])
        .map(|o| super::git::split_z(&o).len())
        .map_err(e)?;
    if let Some(existing) = top.resolve(&refname).map_err(e)? {
        let same_tree = top
            .line(["rev-parse", &format!("{existing}^{{tree}}")])
            .map_err(e)?
            == tree;
        let same_base =
            top.resolve(&format!("{existing}^1")).map_err(e)?.as_deref() == Some(f.base.as_str());
        if same_tree && same_base {
            return Ok((branch, existing, files));
        }
        return Err(format!(
            "the branch {branch} already exists (at {}); hint: set [land] branch to another name, or delete it with `git branch -D {branch}`",
            short(&existing)
        ));
    }
    let author_known = top.query(["var", "GIT_AUTHOR_IDENT"]).map_err(e)?.is_some()
        && top
            .query(["var", "GIT_COMMITTER_IDENT"])
            .map_err(e)?
            .is_some();
    let who = if author_known {
        top.clone()
    } else {
        top.as_kazi()
    };
    let commit = who
        .run_input(
            [
                "commit-tree",
                "--no-gpg-sign",
                &tree,
                "-p",
                &f.base,
                "-F",
                "-",
            ],
            req.message.as_bytes().to_vec(),
        )
        .map(|o| String::from_utf8_lossy(&o).trim().to_owned())
        .map_err(e)?;
    top.run([
        "update-ref",
        "-m",
        &format!("kazi: land run {}", rec.run_id),
        &refname,
        &commit,
        "",
    ])
    .map_err(e)?;
    Ok((branch, commit, files))
}

/// The summary and the exact commands that bring the branch in.
fn branch_lines(f: &GitFacts, branch: &str, commit: &str, files: usize) -> Vec<String> {
    let mut lines = vec![format!(
        "landed on branch {branch} ({}, {files} file{} changed) in {}",
        short(commit),
        if files == 1 { "" } else { "s" },
        f.toplevel.display()
    )];
    lines.push(format!(
        "  git diff {} {branch}      # what the agent changed",
        short(&f.base)
    ));
    match &f.start_branch {
        Some(b) => {
            lines.push(format!("  git switch {}", branch_short(b)));
            lines.push(format!("  git merge {branch}"));
        }
        None => lines.push(format!(
            "  git merge {branch}      # into the commit you are on"
        )),
    }
    if f.snapshot {
        lines.push(format!(
            "note: the first commit on {branch} is your working tree as it was when the run started (uncommitted changes and untracked files): merging it commits them"
        ));
    }
    lines
}

/// Fast-forward the branch the user's checkout is on, when it is the branch the run
/// started from, has not moved since the base, and has no uncommitted changes.
fn merge(top: &Git, f: &GitFacts, branch: &str) -> Result<(), String> {
    let e = |e: super::git::GitError| e.to_string();
    if f.snapshot {
        return Err("your checkout had uncommitted changes or untracked files when the run started; they are the branch's first commit, so merging is yours to decide".into());
    }
    let Some(start) = &f.start_branch else {
        return Err("your checkout was on a detached HEAD when the run started".into());
    };
    let now = top.query(["symbolic-ref", "-q", "HEAD"]).map_err(e)?;
    if now.as_deref() != Some(start.as_str()) {
        return Err(format!(
            "your checkout is no longer on {} (it is on {})",
            branch_short(start),
            now.as_deref().map_or("a detached HEAD", branch_short)
        ));
    }
    let tip = top.resolve(start).map_err(e)?;
    if tip.as_deref() != Some(f.base.as_str()) {
        return Err(format!(
            "{} moved since the run started (from {} to {})",
            branch_short(start),
            short(&f.base),
            tip.as_deref().map_or("nothing", short)
        ));
    }
    let status = top
        .run([
            "--no-optional-locks",
            "status",
            "--porcelain",
            "-z",
            "--untracked-files=no",
        ])
        .map_err(e)?;
    if !status.is_empty() {
        return Err(format!(
            "your checkout has uncommitted changes ({})",
            super::git::split_z(&status)
                .iter()
                .take(5)
                .map(|s| s.get(3..).unwrap_or(s).to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    top.run(["merge", "--ff-only", "--quiet", branch])
        .map_err(|err| format!("`git merge --ff-only {branch}` failed: {}", err.message))?;
    Ok(())
}

/// Push the branch and open a pull request with `gh`; the pull request's URL.
fn pull_request(
    top: &Git,
    f: &GitFacts,
    branch: &str,
    req: &LandRequest<'_>,
) -> Result<String, String> {
    let e = |e: super::git::GitError| e.to_string();
    if f.snapshot {
        return Err("your checkout had uncommitted changes or untracked files when the run started; they are the branch's first commit, and kazi does not push them".into());
    }
    let Some(start) = &f.start_branch else {
        return Err(
            "your checkout was on a detached HEAD when the run started: no base branch for a pull request".into(),
        );
    };
    let start = branch_short(start);
    let Some(gh) = which("gh") else {
        return Err(
            "gh is not installed; hint: install GitHub's CLI and run `gh auth login`".into(),
        );
    };
    let gh_cmd = |args: &[&str]| {
        Cmd::new(&gh)
            .args(args)
            .cwd(&f.toplevel)
            .env("GH_PROMPT_DISABLED", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("NO_COLOR", "1")
            .timeout(NETWORK_TIMEOUT)
    };
    let auth = gh_cmd(&["auth", "status"])
        .run()
        .map_err(|err| format!("cannot run {}: {err}", gh.display()))?;
    if !auth.success() {
        return Err(format!(
            "gh is not logged in ({}); hint: run `gh auth login`",
            auth.tail(300)
        ));
    }
    let remote = match top
        .query(["config", &format!("branch.{start}.remote")])
        .map_err(e)?
    {
        Some(r) if !r.is_empty() && r != "." => r,
        _ => {
            let remotes = top.line(["remote"]).map_err(e)?;
            let remotes: Vec<&str> = remotes.lines().collect();
            if remotes.contains(&"origin") {
                "origin".to_owned()
            } else if let Some(r) = remotes.first() {
                (*r).to_owned()
            } else {
                return Err(
                    "the repository has no remote to push to; hint: `git remote add origin URL`"
                        .into(),
                );
            }
        }
    };
    let base = top
        .query(["config", &format!("branch.{start}.merge")])
        .map_err(e)?
        .map(|m| branch_short(&m).to_owned())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| start.to_owned());
    top.run_cmd(
        top.cmd([
            "push",
            "--quiet",
            &remote,
            &format!("refs/heads/{branch}:refs/heads/{branch}"),
        ])
        .timeout(NETWORK_TIMEOUT),
    )
    .map_err(|err| format!("`git push {remote} {branch}` failed: {}", err.message))?;
    let body = if req.report.trim().is_empty() {
        req.message
    } else {
        req.report
    };
    let title = req.message.lines().next().unwrap_or("kazi").to_owned();
    let body_file = tempfile::NamedTempFile::new()
        .and_then(|mut t| {
            use std::io::Write;
            t.write_all(body.as_bytes()).map(|()| t)
        })
        .map_err(|err| format!("cannot write the pull request's body: {err}"))?;
    let created = gh_cmd(&[
        "pr",
        "create",
        "--head",
        branch,
        "--base",
        &base,
        "--title",
        &title,
        "--body-file",
        &body_file.path().to_string_lossy(),
    ])
    .run()
    .map_err(|err| format!("cannot run {}: {err}", gh.display()))?;
    if !created.success() {
        return Err(format!(
            "the branch was pushed to {remote}, but `gh pr create` failed: {}",
            created.tail(500)
        ));
    }
    let stdout = String::from_utf8_lossy(&created.stdout);
    Ok(stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(gh printed no URL)")
        .to_owned())
}

/// The record of a run kept for landing later, from the read-model.
pub fn can_land(rec: &WorktreeRecord) -> Result<(), String> {
    match &rec.git {
        None => Err("the run worked in place outside git: there is nothing to land".into()),
        Some(_) if rec.mode == Mode::InPlace => {
            Err("the run worked in place: its changes are already in your checkout".into())
        }
        Some(f) => {
            let top = Git::new(&f.toplevel);
            match &f.graded {
                None => Ok(()),
                Some(g) => match top.resolve(&format!("{g}^{{commit}}")) {
                    Ok(Some(_)) => Ok(()),
                    _ => Err(format!(
                        "its graded commit {} is gone from {}",
                        short(g),
                        Path::new(&f.toplevel).display()
                    )),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_carries_the_goal_verdicts_and_trailers() {
        let m = landing_message(
            "healthz",
            Some("a /healthz endpoint\nthat answers"),
            &[
                ("tests-pass", "pass", "3 passed\nmore"),
                ("lint", "pass", "clean"),
            ],
            "r20250101-000000-abcd",
        );
        assert_eq!(
            m,
            "kazi: a /healthz endpoint\n\nGoal \"healthz\" converged in kazi run r20250101-000000-abcd.\n\nFinal verdicts:\n  pass  tests-pass: 3 passed\n  pass  lint: clean\n\nKazi-Goal: healthz\nKazi-Run: r20250101-000000-abcd\n"
        );
    }

    #[test]
    fn long_or_hostile_text_is_one_bounded_line() {
        assert_eq!(one_line("a\x1b[31mb\nc", 10), "a[31mb");
        assert_eq!(one_line(&"x".repeat(200), 5), "xxxx…");
    }
}
