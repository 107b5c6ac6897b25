//! The seal and the scope check. The seal hashes the goal file and every file under
//! `[scope] protected` at the start; any change before an observation ends the run
//! as `tampered`. The scope check snapshots the workspace around a dispatch and
//! compares the files the agent changed with `writable` and `protected`.
//!
//! Both are bounded, whatever the agent leaves in the workspace (issue 11):
//! - symlinks are never followed: a link is hashed by its target *text*, so a link to
//!   `/dev/zero` costs a `readlink`;
//! - special files (FIFOs, sockets, devices) are never opened: they are recorded as
//!   `special:<kind>` and listed in [`Scan::special`]; a regular file is opened with
//!   `O_NONBLOCK | O_NOFOLLOW` and checked to be the file that was `lstat`ed, so a
//!   file swapped for a FIFO between the two cannot hang the hash;
//! - a file is hashed by streaming at most [`MAX_HASH_BYTES`]; a larger one is
//!   digested as its head plus its size, mtime, ctime and inode (any write changes
//!   the ctime), so a 2 GiB sparse file costs 64 MiB of reading and no memory;
//! - hashes are reused while a file's stat identity (device, inode, size, mtime,
//!   ctime) is unchanged, except for files changed in the last seconds (racy-clean);
//! - a walk visits at most [`MAX_WALK_ENTRIES`] entries and hashes at most
//!   [`MAX_SNAPSHOT_FILES`] files.
//!
//! In git workspaces the seal of a protected directory and the snapshot follow git's
//! ignore rules (`git ls-files -co --exclude-standard`); elsewhere they skip
//! [`SKIP_DIRS`]. Everywhere, [`BUILD_PRODUCTS`] (`__pycache__`, `node_modules`, …)
//! never count, so an honest `pytest` writing `tests/__pycache__` is not tampering.
//! The seal also records the workspace root's identity (the inode of the path and of
//! what it resolves to): a root replaced by a symlink to a modified copy is tampering.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most files a snapshot hashes; beyond this the scope check says it is partial.
pub const MAX_SNAPSHOT_FILES: usize = 50_000;
/// Most directory entries one walk visits (files, directories, links, others).
pub const MAX_WALK_ENTRIES: usize = 200_000;
/// Most bytes read to hash one file. A larger file is digested as its first
/// `MAX_HASH_BYTES` plus its size and stat identity.
pub const MAX_HASH_BYTES: u64 = 64 << 20;
/// Most cached hashes kept by a [`Hasher`] (the cache is cleared beyond it).
const MAX_CACHED: usize = 200_000;
/// A file whose mtime or ctime is this close to the hashing time is not cached: a
/// second write within the timestamp granularity would not change its stat identity.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Directories a snapshot of a non-git workspace skips.
pub const SKIP_DIRS: &[&str] = &[
    ".git",
    "target",
    "node_modules",
    ".kazi",
    "__pycache__",
    ".venv",
    "_build",
    "deps",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
];

/// Directory names whose content is a build product in every workspace, git or
/// not, ignored or not: never sealed, never a change.
pub const BUILD_PRODUCTS: &[&str] = &[
    "__pycache__",
    "node_modules",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
];

/// Whether `rel` (a `/`-separated relative path) lies in a build-product directory
/// or is a Python bytecode file.
pub fn is_build_product(rel: &str) -> bool {
    let mut parts = rel.split('/').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_some() && BUILD_PRODUCTS.contains(&part) {
            return true;
        }
        if parts.peek().is_none() && (part.ends_with(".pyc") || part.ends_with(".pyo")) {
            return true;
        }
    }
    false
}

/// Content hashes by label (`goal` or a workspace-relative path); `absent` when missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    pub entries: BTreeMap<String, String>,
    /// The workspace root's identity when sealed (`<inode of the path>/<inode of what
    /// it resolves to>`); `None` in seals recorded before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

/// Hash the goal file and the protected paths (with the process-wide [`Hasher`]).
pub fn compute(goal_path: &Path, workspace: &Path, protected: &[String]) -> Seal {
    Hasher::global().seal(goal_path, workspace, protected)
}

/// What differs between two seals, as human lines.
pub fn diff(before: &Seal, after: &Seal) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(b), Some(a)) = (&before.root, &after.root)
        && a != b
    {
        out.push(
            "the workspace root was replaced (its identity changed: it is no longer the directory the run started in)"
                .to_owned(),
        );
    }
    for (k, v) in &before.entries {
        match after.entries.get(k) {
            None => out.push(format!("{} was removed", label(k))),
            Some(w) if w != v => out.push(format!("{} changed", label(k))),
            _ => {}
        }
    }
    for k in after.entries.keys() {
        if !before.entries.contains_key(k) {
            out.push(format!("{} was added", label(k)));
        }
    }
    out
}

fn label(k: &str) -> String {
    if k == "goal" {
        "the goal file".into()
    } else {
        format!("protected file {k}")
    }
}

/// The identity of a workspace root: the inode of the path itself (a symlink put in
/// its place has its own) and of the directory it resolves to.
pub fn root_identity(workspace: &Path) -> Option<String> {
    let link = std::fs::symlink_metadata(workspace).ok()?;
    let dir = std::fs::metadata(workspace).ok()?;
    Some(format!("{}/{}", link.ino(), dir.ino()))
}

/// Content hashes of the workspace's files (git: tracked and untracked-not-ignored;
/// otherwise every file outside build and VCS directories).
pub type Snapshot = BTreeMap<String, String>;

/// Take a snapshot of `workspace` (with the process-wide [`Hasher`]).
pub fn snapshot(workspace: &Path) -> Snapshot {
    Hasher::global().scan(workspace).entries
}

/// A snapshot with what it could not hash.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    pub entries: Snapshot,
    /// Special files (FIFOs, sockets, devices) found and not opened, with their kind.
    pub special: Vec<(String, &'static str)>,
    /// Files larger than [`MAX_HASH_BYTES`], digested by head and stat identity.
    pub capped: Vec<String>,
    /// The walk stopped at [`MAX_WALK_ENTRIES`] or [`MAX_SNAPSHOT_FILES`].
    pub truncated: bool,
}

/// The stat identity a cached hash is valid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl StatKey {
    fn of(m: &std::fs::Metadata) -> Self {
        StatKey {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }
}

/// What one path hashed to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hashed {
    Content(String),
    /// Larger than the cap: the head digest plus stat identity.
    Capped(String),
    Special(&'static str),
}

impl Hashed {
    fn text(&self) -> String {
        match self {
            Hashed::Content(h) | Hashed::Capped(h) => h.clone(),
            Hashed::Special(kind) => format!("special:{kind}"),
        }
    }
}

/// Hashes files boundedly and remembers hashes by stat identity. One process-wide
/// instance serves [`compute`] and [`snapshot`]; tests make their own.
#[derive(Debug)]
pub struct Hasher {
    cache: Mutex<HashMap<PathBuf, (StatKey, String)>>,
    /// Files opened and read (for tests of the cache).
    reads: std::sync::atomic::AtomicU64,
    racy_window: Duration,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher {
            cache: Mutex::default(),
            reads: Default::default(),
            racy_window: RACY_WINDOW,
        }
    }
}

static GLOBAL: LazyLock<Hasher> = LazyLock::new(Hasher::default);

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide hasher.
    pub fn global() -> &'static Hasher {
        &GLOBAL
    }

    /// How many files this hasher opened and read so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Hash the goal file and the protected paths of `workspace`.
    pub fn seal(&self, goal_path: &Path, workspace: &Path, protected: &[String]) -> Seal {
        let mut entries = BTreeMap::new();
        entries.insert("goal".to_owned(), self.hash_text(goal_path));
        let git = GitFiles::new(workspace);
        for p in protected {
            let key = p.trim_start_matches("./").trim_end_matches('/');
            let root = workspace.join(key);
            let is_dir = std::fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir());
            if !is_dir {
                // A file, a link or nothing: hashed as it is, never followed.
                entries.insert(key.to_owned(), self.hash_text(&root));
                continue;
            }
            let mut files = match git.as_ref().and_then(|g| g.list(Some(key))) {
                Some(files) => files,
                None => {
                    let mut files = Vec::new();
                    let mut budget = MAX_WALK_ENTRIES;
                    walk(&root, workspace, &mut files, SKIP_DIRS, &mut budget);
                    files
                }
            };
            files.retain(|f| !is_build_product(f));
            files.truncate(MAX_SNAPSHOT_FILES);
            if files.is_empty() {
                entries.insert(key.to_owned(), "empty".into());
            }
            for rel in files {
                let h = self.hash_text(&workspace.join(&rel));
                entries.insert(rel, h);
            }
        }
        Seal {
            entries,
            root: root_identity(workspace),
        }
    }

    /// Snapshot `workspace`: git's tracked and untracked-not-ignored files in a git
    /// workspace, otherwise every file outside [`SKIP_DIRS`]; never build products.
    pub fn scan(&self, workspace: &Path) -> Scan {
        let mut truncated = false;
        let mut files = match GitFiles::new(workspace).and_then(|g| g.list(None)) {
            Some(files) => files,
            None => {
                let mut files = Vec::new();
                let mut budget = MAX_WALK_ENTRIES;
                walk(workspace, workspace, &mut files, SKIP_DIRS, &mut budget);
                truncated = budget == 0;
                files
            }
        };
        files.retain(|f| !is_build_product(f));
        if files.len() > MAX_SNAPSHOT_FILES {
            files.truncate(MAX_SNAPSHOT_FILES);
            truncated = true;
        }
        let mut scan = Scan {
            truncated,
            ..Scan::default()
        };
        for rel in files {
            let hashed = self.hash(&workspace.join(&rel));
            match &hashed {
                Some(Hashed::Special(kind)) => scan.special.push((rel.clone(), kind)),
                Some(Hashed::Capped(_)) => scan.capped.push(rel.clone()),
                _ => {}
            }
            let text = hashed.map_or_else(|| "absent".to_owned(), |h| h.text());
            scan.entries.insert(rel, text);
        }
        scan
    }

    fn hash_text(&self, path: &Path) -> String {
        self.hash(path)
            .map_or_else(|| "absent".to_owned(), |h| h.text())
    }

    /// Hash one path without following it; `None` when it does not exist.
    fn hash(&self, path: &Path) -> Option<Hashed> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            use std::os::unix::ffi::OsStrExt;
            let target = std::fs::read_link(path).ok()?;
            let digest = Sha256::digest(target.as_os_str().as_bytes());
            return Some(Hashed::Content(format!("link:{}", hex::encode(digest))));
        }
        if ft.is_dir() {
            return Some(Hashed::Special("directory"));
        }
        if !ft.is_file() {
            use std::os::unix::fs::FileTypeExt;
            let kind = if ft.is_fifo() {
                "fifo"
            } else if ft.is_socket() {
                "socket"
            } else if ft.is_block_device() {
                "block-device"
            } else if ft.is_char_device() {
                "char-device"
            } else {
                "unknown"
            };
            return Some(Hashed::Special(kind));
        }
        let key = StatKey::of(&meta);
        if let Some((k, h)) = self.cache.lock().expect("hash cache").get(path)
            && *k == key
        {
            return Some(if key.size > MAX_HASH_BYTES {
                Hashed::Capped(h.clone())
            } else {
                Hashed::Content(h.clone())
            });
        }
        let started = SystemTime::now();
        let hashed = self.stream(path, &key)?;
        if let Hashed::Content(h) | Hashed::Capped(h) = &hashed
            && !racy(&key, started, self.racy_window)
        {
            let mut cache = self.cache.lock().expect("hash cache");
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(path.to_owned(), (key, h.clone()));
        }
        Some(hashed)
    }

    /// Read at most [`MAX_HASH_BYTES`] of the regular file `lstat` saw as `key`.
    fn stream(&self, path: &Path, key: &StatKey) -> Option<Hashed> {
        // O_NONBLOCK: a FIFO swapped in after the lstat opens without waiting for a
        // writer; O_NOFOLLOW: a symlink swapped in is refused; O_NOCTTY: never a
        // controlling terminal.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY)
            .open(path);
        let file = match file {
            Ok(f) => f,
            // Gone, a link now, unreadable: what it is now decides.
            Err(_) => return Some(Hashed::Special("unreadable")),
        };
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.dev() != key.dev || meta.ino() != key.ino {
            return Some(Hashed::Special("replaced-while-read"));
        }
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut limited = file.take(MAX_HASH_BYTES);
        loop {
            match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Some(Hashed::Special("nonblocking"));
                }
                Err(_) => return Some(Hashed::Special("unreadable")),
            }
        }
        let digest = hex::encode(hasher.finalize());
        if key.size > MAX_HASH_BYTES {
            Some(Hashed::Capped(format!(
                "head:{digest}:{}:{}:{}:{}",
                key.size, key.mtime_ns, key.ctime_ns, key.ino
            )))
        } else {
            Some(Hashed::Content(digest))
        }
    }
}

/// Whether a file's timestamps are too recent to trust its stat identity.
fn racy(key: &StatKey, now: SystemTime, window: Duration) -> bool {
    let now_ns = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let window = window.as_nanos() as i128;
    key.mtime_ns + window >= now_ns || key.ctime_ns + window >= now_ns
}

/// Walk `dir` without following links, pushing `root`-relative paths of everything
/// that is not a directory, skipping directories named in `skip`. Stops when
/// `budget` entries have been visited.
fn walk(dir: &Path, root: &Path, out: &mut Vec<String>, skip: &[&str], budget: &mut usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().take(*budget).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if *budget == 0 || out.len() >= MAX_SNAPSHOT_FILES {
            *budget = 0;
            return;
        }
        *budget -= 1;
        let Ok(ty) = e.file_type() else { continue };
        let path = e.path();
        if ty.is_dir() {
            if skip.iter().any(|s| e.file_name() == *s) {
                continue;
            }
            walk(&path, root, out, skip, budget);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// `git ls-files` in a workspace inside a git work tree.
struct GitFiles<'a> {
    workspace: &'a Path,
}

impl<'a> GitFiles<'a> {
    /// `Some` when `workspace` is inside a git work tree.
    fn new(workspace: &'a Path) -> Option<Self> {
        let out = git(workspace, &["rev-parse", "--is-inside-work-tree"])?;
        (out.trim_ascii() == b"true").then_some(GitFiles { workspace })
    }

    /// Tracked and untracked-not-ignored files under `under` (or the whole
    /// workspace), relative to the workspace.
    fn list(&self, under: Option<&str>) -> Option<Vec<String>> {
        let mut args = vec![
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ];
        if let Some(u) = under {
            args.push("--");
            args.push(u);
        }
        let out = git(self.workspace, &args)?;
        let mut files: Vec<String> = out
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        files.sort();
        files.dedup();
        Some(files)
    }
}

/// Run a read-only git command in `dir`; its stdout when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out = std::process::Command::new("git")
        .arg("--literal-pathspecs")
        .arg("--no-optional-locks")
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// Files that differ between two snapshots (changed, added or removed).
pub fn changed(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out: Vec<String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(after.keys().filter(|k| !before.contains_key(*k)).cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Scope rules live with the loop's other rules.
pub use kazi_core::scope::{classify, under};

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Run `f` on another thread; a hang fails the test instead of wedging it.
    fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{what} hung (no answer in 60s)"))
    }

    fn mkfifo(path: &Path) {
        let ok = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo {}", path.display());
    }

    fn git_init(dir: &Path) {
        let ok = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    #[test]
    fn the_seal_sees_goal_and_protected_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::write(ws.join("goal.toml"), "id = \"x\"").unwrap();
        std::fs::create_dir_all(ws.join("tests/golden")).unwrap();
        std::fs::write(ws.join("tests/golden/a.txt"), "1").unwrap();
        let protected = vec!["tests/golden/".to_string(), "LICENSE".to_string()];
        let s1 = compute(&ws.join("goal.toml"), ws, &protected);
        assert!(diff(&s1, &compute(&ws.join("goal.toml"), ws, &protected)).is_empty());
        std::fs::write(ws.join("tests/golden/a.txt"), "2").unwrap();
        std::fs::write(ws.join("tests/golden/b.txt"), "new").unwrap();
        std::fs::write(ws.join("LICENSE"), "mine").unwrap();
        std::fs::write(ws.join("goal.toml"), "id = \"y\"").unwrap();
        let d = diff(&s1, &compute(&ws.join("goal.toml"), ws, &protected));
        assert_eq!(
            d,
            vec![
                "protected file LICENSE changed",
                "the goal file changed",
                "protected file tests/golden/a.txt changed",
                "protected file tests/golden/b.txt was added"
            ]
        );
    }

    #[test]
    fn snapshots_find_changed_added_and_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::create_dir_all(ws.join("src")).unwrap();
        std::fs::create_dir_all(ws.join("target")).unwrap();
        std::fs::write(ws.join("src/a.rs"), "a").unwrap();
        std::fs::write(ws.join("src/b.rs"), "b").unwrap();
        std::fs::write(ws.join("target/out"), "x").unwrap();
        let before = snapshot(ws);
        assert!(!before.contains_key("target/out"));
        std::fs::write(ws.join("src/a.rs"), "A").unwrap();
        std::fs::remove_file(ws.join("src/b.rs")).unwrap();
        std::fs::write(ws.join("new.txt"), "n").unwrap();
        std::fs::write(ws.join("target/out"), "y").unwrap();
        assert_eq!(
            changed(&before, &snapshot(ws)),
            vec!["new.txt", "src/a.rs", "src/b.rs"]
        );
    }

    #[test]
    fn scope_classification() {
        let changed = vec![
            "src/lib.rs".to_string(),
            "README.md".to_string(),
            "tests/golden/x".to_string(),
        ];
        let (outside, hits) = classify(
            &changed,
            &["src/".into(), "tests/".into()],
            &["tests/golden".into()],
        );
        assert_eq!(outside, vec!["README.md"]);
        assert_eq!(hits, vec!["tests/golden/x"]);
        let (outside, _) = classify(&changed, &[], &[]);
        assert!(outside.is_empty());
        assert!(under("src/a", "./src"));
        assert!(!under("srcx/a", "src"));
    }

    #[test]
    fn links_are_hashed_by_their_text_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().to_owned();
        std::fs::create_dir_all(ws.join("src")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", ws.join("src/zero")).unwrap();
        std::os::unix::fs::symlink("/dev/urandom", ws.join("src/random")).unwrap();
        std::os::unix::fs::symlink("/", ws.join("src/root")).unwrap();
        let h = Hasher::new();
        let (scan, h) = within("a snapshot with links to devices", move || {
            let scan = h.scan(&ws);
            (scan, h)
        });
        assert_eq!(h.reads(), 0, "no link target was opened");
        assert!(scan.entries["src/zero"].starts_with("link:"));
        assert_ne!(scan.entries["src/zero"], scan.entries["src/random"]);
        assert!(scan.special.is_empty());
        // A protected path that is a link to a device is sealed by its text too.
        let dir2 = tempfile::tempdir().unwrap();
        let ws2 = dir2.path().to_owned();
        std::fs::create_dir_all(ws2.join("tests")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", ws2.join("tests/zero")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", ws2.join("goal.toml")).unwrap();
        let seal = within("a seal with links to devices", move || {
            Hasher::new().seal(
                &ws2.join("goal.toml"),
                &ws2,
                &["tests/".into(), "tests/zero".into()],
            )
        });
        assert!(seal.entries["goal"].starts_with("link:"));
        assert!(seal.entries["tests/zero"].starts_with("link:"));
    }

    #[test]
    fn special_files_are_reported_and_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().to_owned();
        std::fs::create_dir_all(ws.join("tests")).unwrap();
        mkfifo(&ws.join("tests/fifo"));
        mkfifo(&ws.join("pipe"));
        std::os::unix::fs::symlink("pipe", ws.join("link-to-pipe")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(ws.join("sock")).unwrap();
        std::fs::write(ws.join("ok.txt"), "fine").unwrap();
        let ws2 = ws.clone();
        let (scan, reads) = within("a snapshot with FIFOs and a socket", move || {
            let h = Hasher::new();
            let scan = h.scan(&ws2);
            (scan, h.reads())
        });
        assert_eq!(reads, 1, "only ok.txt was read: {scan:?}");
        assert_eq!(
            scan.special,
            vec![
                ("pipe".to_owned(), "fifo"),
                ("sock".to_owned(), "socket"),
                ("tests/fifo".to_owned(), "fifo"),
            ]
        );
        assert_eq!(scan.entries["pipe"], "special:fifo");
        assert!(scan.entries["link-to-pipe"].starts_with("link:"));
        let ws3 = ws.clone();
        let seal = within("a seal of a FIFO", move || {
            Hasher::new().seal(&ws3.join("pipe"), &ws3, &["tests".into()])
        });
        assert_eq!(seal.entries["goal"], "special:fifo");
        assert_eq!(seal.entries["tests/fifo"], "special:fifo");
    }

    #[test]
    fn a_file_swapped_for_a_fifo_after_the_lstat_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().to_owned();
        std::fs::write(ws.join("f"), "x").unwrap();
        let key = StatKey::of(&std::fs::symlink_metadata(ws.join("f")).unwrap());
        std::fs::remove_file(ws.join("f")).unwrap();
        mkfifo(&ws.join("f"));
        let got = within("hashing a swapped-in FIFO", move || {
            Hasher::new().stream(&ws.join("f"), &key)
        });
        assert_eq!(got, Some(Hashed::Special("replaced-while-read")));
    }

    #[test]
    fn a_huge_sparse_file_is_hashed_by_its_head_and_identity() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().to_owned();
        let f = std::fs::File::create(ws.join("big")).unwrap();
        f.set_len(2 << 30).unwrap();
        drop(f);
        let ws2 = ws.clone();
        let h = within("hashing a 2 GiB sparse file", move || {
            let h = Hasher::new();
            let first = h.scan(&ws2);
            (first, h)
        });
        let (first, h) = h;
        assert_eq!(first.capped, vec!["big".to_owned()]);
        assert!(first.entries["big"].starts_with("head:"));
        assert!(first.entries["big"].contains(&format!(":{}:", 2u64 << 30)));
        // A write past the head changes the identity (size here; ctime always).
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(ws.join("big"))
            .unwrap();
        f.set_len((2 << 30) + 1).unwrap();
        drop(f);
        let second = h.scan(&ws);
        assert_ne!(first.entries["big"], second.entries["big"]);
    }

    #[test]
    fn unchanged_files_are_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::write(ws.join("a"), "a").unwrap();
        std::fs::write(ws.join("b"), "b").unwrap();
        // No racy window: every file is older than the moment it is hashed.
        let h = Hasher {
            racy_window: Duration::ZERO,
            ..Hasher::new()
        };
        let first = h.scan(ws);
        assert_eq!(h.reads(), 2);
        assert_eq!(h.scan(ws), first);
        assert_eq!(h.reads(), 2, "unchanged files were hashed from the cache");
        // A rewrite changes the stat identity (ctime at least): read again.
        std::fs::write(ws.join("a"), "A").unwrap();
        let third = h.scan(ws);
        assert_eq!(h.reads(), 3);
        assert_ne!(third.entries["a"], first.entries["a"]);
        assert_eq!(third.entries["b"], first.entries["b"]);
    }

    #[test]
    fn files_changed_within_the_racy_window_are_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "a").unwrap();
        // A timestamp that stays inside the window however slow the machine is.
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("a"))
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(3600))
            .unwrap();
        let h = Hasher::new();
        h.scan(dir.path());
        h.scan(dir.path());
        assert_eq!(
            h.reads(),
            2,
            "a file with a recent timestamp is hashed every time"
        );
    }

    #[test]
    fn cached_hashes_follow_content_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::write(ws.join("a"), "one").unwrap();
        let h = Hasher::new();
        let first = h.scan(ws);
        std::fs::write(ws.join("a"), "two").unwrap();
        let second = h.scan(ws);
        assert_ne!(first.entries["a"], second.entries["a"]);
        assert_eq!(second.entries["a"], hex::encode(Sha256::digest(b"two")));
    }

    #[test]
    fn a_replaced_workspace_root_is_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("tests")).unwrap();
        std::fs::write(ws.join("tests/t.py"), "assert True").unwrap();
        let goal = dir.path().join("goal.toml");
        std::fs::write(&goal, "id = \"g\"").unwrap();
        let before = compute(&goal, &ws, &["tests/".into()]);
        assert!(before.root.is_some());
        // The agent moves the workspace away and puts a link to a copy in its place.
        let copy = dir.path().join("copy");
        std::fs::rename(&ws, dir.path().join("orig")).unwrap();
        std::fs::create_dir_all(copy.join("tests")).unwrap();
        std::fs::write(copy.join("tests/t.py"), "assert True").unwrap();
        std::os::unix::fs::symlink(&copy, &ws).unwrap();
        let d = diff(&before, &compute(&goal, &ws, &["tests/".into()]));
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("workspace root was replaced"), "{d:?}");
        // Seals recorded before the identity existed compare as before.
        let old = Seal {
            root: None,
            ..before.clone()
        };
        assert!(diff(&old, &compute(&goal, &ws, &["tests/".into()])).is_empty());
    }

    #[test]
    fn build_products_are_never_sealed_or_snapshotted() {
        assert!(is_build_product("tests/__pycache__/t.cpython-312.pyc"));
        assert!(is_build_product("web/node_modules/x/index.js"));
        assert!(is_build_product("old.pyc"));
        assert!(!is_build_product("src/__pycache__"));
        assert!(!is_build_product("src/node_modules.rs"));
        for git in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let ws = dir.path();
            if git {
                git_init(ws);
            }
            std::fs::create_dir_all(ws.join("tests/__pycache__")).unwrap();
            std::fs::write(ws.join("tests/test_a.py"), "def test(): pass").unwrap();
            std::fs::write(ws.join("goal.toml"), "").unwrap();
            let before = compute(&ws.join("goal.toml"), ws, &["tests/".into()]);
            let snap = snapshot(ws);
            // An honest pytest run: bytecode and a cache, no .gitignore at all.
            std::fs::write(ws.join("tests/__pycache__/test_a.cpython-312.pyc"), "x").unwrap();
            std::fs::create_dir_all(ws.join(".pytest_cache/v")).unwrap();
            std::fs::write(ws.join(".pytest_cache/v/x"), "y").unwrap();
            let after = compute(&ws.join("goal.toml"), ws, &["tests/".into()]);
            assert!(diff(&before, &after).is_empty(), "git={git}");
            assert!(changed(&snap, &snapshot(ws)).is_empty(), "git={git}");
        }
    }

    #[test]
    fn in_git_workspaces_the_seal_follows_ignore_rules() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        git_init(ws);
        std::fs::write(ws.join(".gitignore"), "*.log\n").unwrap();
        std::fs::create_dir_all(ws.join("tests")).unwrap();
        std::fs::write(ws.join("tests/t.py"), "x").unwrap();
        std::fs::write(ws.join("goal.toml"), "").unwrap();
        let before = compute(&ws.join("goal.toml"), ws, &["tests/".into()]);
        std::fs::write(ws.join("tests/run.log"), "noise").unwrap();
        assert!(
            diff(
                &before,
                &compute(&ws.join("goal.toml"), ws, &["tests/".into()])
            )
            .is_empty()
        );
        std::fs::write(ws.join("tests/conftest.py"), "cheat").unwrap();
        assert_eq!(
            diff(
                &before,
                &compute(&ws.join("goal.toml"), ws, &["tests/".into()])
            ),
            vec!["protected file tests/conftest.py was added"]
        );
    }

    #[test]
    fn a_workspace_below_a_git_root_uses_git_rules() {
        let dir = tempfile::tempdir().unwrap();
        git_init(dir.path());
        std::fs::write(dir.path().join(".gitignore"), "build/\n").unwrap();
        let ws = dir.path().join("sub");
        std::fs::create_dir_all(ws.join("build")).unwrap();
        std::fs::write(ws.join("build/out"), "x").unwrap();
        std::fs::write(ws.join("a.txt"), "a").unwrap();
        let snap = snapshot(&ws);
        assert_eq!(snap.keys().collect::<Vec<_>>(), vec!["a.txt"]);
    }
}
