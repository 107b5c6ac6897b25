//! The `git` kazi runs for isolation: plumbing commands with a clean environment
//! (no inherited `GIT_DIR`, `GIT_INDEX_FILE` or other repository overrides), no
//! fsmonitor, no split index, no automatic gc, literal pathspecs, and an optional
//! private index file. Every failure names the command and the directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cmd::{Cmd, Output};

/// Variables that would point git at another repository, index or object store.
const REPO_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
    "GIT_SHALLOW_FILE",
    "GIT_GRAFT_FILE",
    "GIT_REPLACE_REF_BASE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
    "GIT_OPTIONAL_LOCKS",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
];

/// How long one git command may take (a checkout of a large repository, a push).
pub const GIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The identity of the commits kazi makes for itself (bases, graded states).
pub const KAZI_NAME: &str = "kazi";
pub const KAZI_EMAIL: &str = "kazi@localhost";

/// A git command failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{command}` failed in {}: {message}", dir.display())]
pub struct GitError {
    pub command: String,
    pub dir: PathBuf,
    pub message: String,
}

/// git in one directory, optionally with a private index.
#[derive(Debug, Clone)]
pub struct Git {
    pub dir: PathBuf,
    /// `--git-dir` and `--work-tree`, so that a `.git` file an agent rewrote in its
    /// worktree cannot point kazi at another repository.
    pub git_dir: Option<PathBuf>,
    pub index: Option<PathBuf>,
    /// Run commands as kazi (author and committer), for kazi's own commits.
    pub as_kazi: bool,
    /// `--literal-pathspecs` (the default; `check-ignore` refuses it).
    pub literal: bool,
}

impl Git {
    pub fn new(dir: &Path) -> Self {
        Git {
            dir: dir.to_owned(),
            git_dir: None,
            index: None,
            as_kazi: false,
            literal: true,
        }
    }

    /// git in the work tree `dir` whose git directory is `git_dir`, whatever the
    /// work tree's `.git` file says.
    pub fn pinned(dir: &Path, git_dir: Option<&Path>) -> Self {
        Git {
            git_dir: git_dir.map(Path::to_path_buf),
            ..Git::new(dir)
        }
    }

    pub fn with_index(&self, index: &Path) -> Self {
        Git {
            index: Some(index.to_owned()),
            ..self.clone()
        }
    }

    /// Without `--literal-pathspecs`, for the commands that refuse it.
    pub fn plain_pathspecs(&self) -> Self {
        Git {
            literal: false,
            ..self.clone()
        }
    }

    pub fn as_kazi(&self) -> Self {
        Git {
            as_kazi: true,
            ..self.clone()
        }
    }

    /// The command, ready to run.
    pub fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Cmd::new("git").args([
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.splitIndex=false",
            "-c",
            "gc.auto=0",
            "-c",
            "maintenance.auto=false",
        ]);
        if self.literal {
            c = c.arg("--literal-pathspecs");
        }
        if let Some(d) = &self.git_dir {
            let mut git_dir = std::ffi::OsString::from("--git-dir=");
            git_dir.push(d);
            let mut work_tree = std::ffi::OsString::from("--work-tree=");
            work_tree.push(&self.dir);
            c = c.arg(git_dir).arg(work_tree);
        }
        c = c
            .args(args)
            .cwd(&self.dir)
            .timeout(GIT_TIMEOUT)
            .env("GIT_TERMINAL_PROMPT", "0");
        for k in REPO_ENV {
            c = c.env_remove(k);
        }
        if let Some(i) = &self.index {
            c = c.env("GIT_INDEX_FILE", i);
        }
        if self.as_kazi {
            c = c
                .env("GIT_AUTHOR_NAME", KAZI_NAME)
                .env("GIT_AUTHOR_EMAIL", KAZI_EMAIL)
                .env("GIT_COMMITTER_NAME", KAZI_NAME)
                .env("GIT_COMMITTER_EMAIL", KAZI_EMAIL);
        }
        c
    }

    /// Run and return the output whatever the exit status; `Err` only when git
    /// could not be started or timed out.
    pub fn output(&self, cmd: Cmd) -> Result<Output, GitError> {
        let display = shown(&cmd);
        let timeout = cmd.timeout;
        let out = cmd.run().map_err(|e| GitError {
            command: display.clone(),
            dir: self.dir.clone(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "git is not installed or not on PATH; hint: install git, or run with --in-place"
                    .to_owned()
            } else {
                e.to_string()
            },
        })?;
        if out.timed_out {
            return Err(GitError {
                command: display,
                dir: self.dir.clone(),
                message: format!("no answer after {}", humantime::format_duration(timeout)),
            });
        }
        Ok(out)
    }

    /// Run; stdout when git exits 0, otherwise an error with its message.
    pub fn run<I, S>(&self, args: I) -> Result<Vec<u8>, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_cmd(self.cmd(args))
    }

    /// Run with `input` on stdin; stdout when git exits 0.
    pub fn run_input<I, S>(&self, args: I, input: Vec<u8>) -> Result<Vec<u8>, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_cmd(self.cmd(args).stdin(input))
    }

    pub fn run_cmd(&self, cmd: Cmd) -> Result<Vec<u8>, GitError> {
        let display = shown(&cmd);
        let out = self.output(cmd)?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(GitError {
                command: display,
                dir: self.dir.clone(),
                message: match out.tail(2000) {
                    t if t.is_empty() => format!("exit status {:?}", out.status),
                    t => t,
                },
            })
        }
    }

    /// Run; stdout as one trimmed line.
    pub fn line<I, S>(&self, args: I) -> Result<String, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Ok(String::from_utf8_lossy(&self.run(args)?).trim().to_owned())
    }

    /// Run; `Some(line)` when git exits 0, `None` when it exits non-zero (a query
    /// whose answer is "no", like `rev-parse --verify` of a missing ref).
    pub fn query<I, S>(&self, args: I) -> Result<Option<String>, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.output(self.cmd(args))?;
        Ok(out
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    /// The object id `rev` names, if any.
    pub fn resolve(&self, rev: &str) -> Result<Option<String>, GitError> {
        self.query(["rev-parse", "-q", "--verify", "--end-of-options", rev])
    }
}

/// A git command line as a person reads it: without the options kazi always adds.
fn shown(cmd: &Cmd) -> String {
    let mut c = cmd.clone();
    c.args.retain(|a| {
        let a = a.to_string_lossy();
        !a.starts_with("--git-dir=") && !a.starts_with("--work-tree=")
    });
    let fixed = c
        .args
        .iter()
        .position(|a| a == "--literal-pathspecs")
        .or_else(|| c.args.iter().position(|a| a == "maintenance.auto=false"))
        .map_or(0, |i| i + 1);
    c.args.drain(..fixed);
    c.display()
}

/// NUL-separated output as strings (paths keep every byte that is valid UTF-8;
/// others are replaced, which only matters for display).
pub fn split_z(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// NUL-separated output as raw byte strings (paths exactly as git wrote them).
pub fn split_z_raw(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Raw paths as NUL-separated bytes for `--stdin -z`.
pub fn join_z_raw<'a>(paths: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in paths {
        out.extend_from_slice(p);
        out.push(0);
    }
    out
}

/// A raw path as an OS string (for the filesystem).
pub fn os(raw: &[u8]) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(raw)
}

/// Paths as NUL-separated bytes for `--stdin -z`.
pub fn join_z<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in paths {
        out.extend_from_slice(p.as_bytes());
        out.push(0);
    }
    out
}

/// Whether `name` is a valid branch name (`git check-ref-format --branch` rules,
/// checked without git: used at goal load).
pub fn valid_branch_name(name: &str) -> bool {
    if name.is_empty()
        || name.starts_with('-')
        || name.starts_with('/')
        || name.ends_with('/')
        || name.ends_with('.')
        || name == "@"
        || name.contains("..")
        || name.contains("@{")
        || name.contains("//")
    {
        return false;
    }
    if name
        .chars()
        .any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c) || c == '\u{7f}')
    {
        return false;
    }
    name.split('/')
        .all(|part| !part.starts_with('.') && !part.ends_with(".lock") && !part.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_follow_git_rules() {
        for ok in ["kazi/healthz-r20250101-000000-abcd", "fix", "a/b.c_d-e"] {
            assert!(valid_branch_name(ok), "{ok}");
        }
        for bad in [
            "", "-x", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "/a", "a/",
            "a.", "a/.b", "a.lock", "a//b", "@", "a@{b",
        ] {
            assert!(!valid_branch_name(bad), "{bad}");
        }
    }

    #[test]
    fn errors_show_the_command_without_kazis_fixed_options() {
        let dir = tempfile::tempdir().unwrap();
        let g = Git::pinned(dir.path(), Some(Path::new("/nonexistent/git-dir")));
        let err = g.run(["rev-parse", "HEAD"]).unwrap_err();
        assert_eq!(err.command, "git rev-parse HEAD");
        assert!(err.to_string().starts_with(&format!(
            "`git rev-parse HEAD` failed in {}: ",
            dir.path().display()
        )));
    }

    #[test]
    fn nul_separated_paths_round_trip() {
        let paths = ["a b", "new\nline", "ü"];
        assert_eq!(split_z(&join_z(paths)), paths);
    }
}
