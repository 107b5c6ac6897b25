//! Locks: one live run per workspace, one live process per run. A lock is an
//! exclusive `flock` on a file in kazi's data dir (`locks/`), so the kernel releases
//! it when its holder dies, however it dies: a stale lock is simply taken over. The
//! file names the holder (run id, PID) for the refusal message; it is never deleted
//! (deleting lock files races with other takers).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a lock is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockKey {
    /// A workspace: with a goal id, one live run of that goal in a task worktree of
    /// it; without, one live in-place run of any goal (in-place runs share the
    /// user's files).
    Workspace { path: PathBuf, goal: Option<String> },
    /// A run: one live process drives it (`--resume` of a live run is refused).
    Run(String),
}

impl LockKey {
    /// The workspace lock for a run of `goal` in `workspace` (canonicalised when it
    /// exists, so two spellings of one directory share the lock).
    pub fn workspace(workspace: &Path, goal: &str, in_place: bool) -> Self {
        LockKey::Workspace {
            path: std::fs::canonicalize(workspace).unwrap_or_else(|_| workspace.to_owned()),
            goal: (!in_place).then(|| goal.to_owned()),
        }
    }

    fn file_name(&self) -> String {
        match self {
            LockKey::Workspace { path, goal } => {
                let mut h = Sha256::new();
                h.update(path.as_os_str().as_encoded_bytes());
                h.update([0]);
                if let Some(g) = goal {
                    h.update(g.as_bytes());
                }
                format!("workspace-{}.lock", &hex::encode(h.finalize())[..24])
            }
            LockKey::Run(id) => {
                let safe: String = id
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!("run-{safe}.lock")
            }
        }
    }

    /// The thing locked, as a person reads it.
    pub fn describe(&self) -> String {
        match self {
            LockKey::Workspace {
                path,
                goal: Some(g),
            } => format!("goal \"{g}\" in workspace {}", path.display()),
            LockKey::Workspace { path, goal: None } => {
                format!("workspace {} (in place)", path.display())
            }
            LockKey::Run(id) => format!("run {id}"),
        }
    }
}

/// Who holds a lock, as its file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub run_id: String,
    pub pid: u32,
    pub since_ms: i64,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}", held_message(holder.as_ref(), key))]
    Held {
        key: LockKey,
        /// `None` when the holder had not written its name yet.
        holder: Option<Holder>,
        path: PathBuf,
    },
    #[error("failed to use the lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn held_message(holder: Option<&Holder>, key: &LockKey) -> String {
    let who = match holder {
        Some(h) => format!("run {} (pid {})", h.run_id, h.pid),
        None => "another kazi process".to_owned(),
    };
    let stop = holder
        .map(|h| {
            format!(
                "; hint: wait for it to end, or stop it with `kill {}`",
                h.pid
            )
        })
        .unwrap_or_else(|| "; hint: wait for it to end".to_owned());
    match key {
        LockKey::Run(id) => format!(
            "run {id} is being driven by another live kazi process ({}){stop}",
            holder.map_or_else(|| "pid unknown".to_owned(), |h| format!("pid {}", h.pid))
        ),
        LockKey::Workspace { .. } => format!("{} is in use by {who}{stop}", key.describe()),
    }
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct WorkspaceLock {
    file: File,
    path: PathBuf,
    key: LockKey,
}

impl WorkspaceLock {
    /// Take the lock for `key` on behalf of `run_id`, or say who holds it. Never
    /// waits.
    pub fn acquire(data_dir: &Path, key: &LockKey, run_id: &str) -> Result<Self, LockError> {
        let path = lock_path(data_dir, key)?;
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    key: key.clone(),
                    holder: read_holder(&mut file),
                    path,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let holder = Holder {
            run_id: run_id.to_owned(),
            pid: std::process::id(),
            since_ms: crate::store::now_ms(),
        };
        let text = serde_json::to_vec(&holder).expect("holder serialises");
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(&text))
            .and_then(|()| file.flush())
            .map_err(io)?;
        Ok(WorkspaceLock {
            file,
            path,
            key: key.clone(),
        })
    }

    /// Who holds the lock for `key` now, if a live process does. Probing takes the
    /// lock for an instant when it is free.
    pub fn holder(data_dir: &Path, key: &LockKey) -> Result<Option<Holder>, LockError> {
        let path = data_dir.join("locks").join(key.file_name());
        let mut file = match std::fs::OpenOptions::new().read(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LockError::Io { path, source }),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(None),
            Err(std::fs::TryLockError::WouldBlock) => {
                Ok(Some(read_holder(&mut file).unwrap_or(Holder {
                    run_id: String::new(),
                    pid: 0,
                    since_ms: 0,
                })))
            }
            Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io { path, source }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn key(&self) -> &LockKey {
        &self.key
    }
}

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

fn lock_path(data_dir: &Path, key: &LockKey) -> Result<PathBuf, LockError> {
    let dir = data_dir.join("locks");
    std::fs::create_dir_all(&dir).map_err(|source| LockError::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(dir.join(key.file_name()))
}

fn read_holder(file: &mut File) -> Option<Holder> {
    // The holder writes its name right after locking; a reader may see it half
    // written, so try a few times.
    for _ in 0..3 {
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok()
            && file.read_to_string(&mut text).is_ok()
            && let Ok(h) = serde_json::from_str::<Holder>(&text)
        {
            return Some(h);
        }
        std::thread::yield_now();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_with_the_holders_name() {
        let dir = tempfile::tempdir().unwrap();
        let key = LockKey::workspace(dir.path(), "g", false);
        let held = WorkspaceLock::acquire(dir.path(), &key, "r1").unwrap();
        let err = WorkspaceLock::acquire(dir.path(), &key, "r2").unwrap_err();
        let LockError::Held { holder, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(holder.as_ref().unwrap().run_id, "r1");
        assert_eq!(holder.as_ref().unwrap().pid, std::process::id());
        let msg = err.to_string();
        assert!(msg.contains("goal \"g\" in workspace"), "{msg}");
        assert!(msg.contains("is in use by run r1 (pid "), "{msg}");
        assert!(
            msg.contains("hint: wait for it to end, or stop it with `kill "),
            "{msg}"
        );
        assert_eq!(
            WorkspaceLock::holder(dir.path(), &key)
                .unwrap()
                .unwrap()
                .run_id,
            "r1"
        );
        drop(held);
        assert_eq!(WorkspaceLock::holder(dir.path(), &key).unwrap(), None);
        WorkspaceLock::acquire(dir.path(), &key, "r2").unwrap();
    }

    #[test]
    fn keys_separate_goals_in_a_worktree_but_not_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        let _a = WorkspaceLock::acquire(ws, &LockKey::workspace(ws, "a", false), "r1").unwrap();
        WorkspaceLock::acquire(ws, &LockKey::workspace(ws, "b", false), "r2").unwrap();
        let _c = WorkspaceLock::acquire(ws, &LockKey::workspace(ws, "a", true), "r3").unwrap();
        assert!(WorkspaceLock::acquire(ws, &LockKey::workspace(ws, "b", true), "r4").is_err());
        // Two spellings of one directory are one workspace.
        let dotted = ws.join(".");
        assert!(
            WorkspaceLock::acquire(ws, &LockKey::workspace(&dotted, "a", false), "r5").is_err()
        );
    }

    #[test]
    fn a_run_lock_names_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let key = LockKey::Run("r20250101-000000-abcd".into());
        let _held = WorkspaceLock::acquire(dir.path(), &key, "r20250101-000000-abcd").unwrap();
        let msg = WorkspaceLock::acquire(dir.path(), &key, "r20250101-000000-abcd")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with(&format!(
                "run r20250101-000000-abcd is being driven by another live kazi process (pid {})",
                std::process::id()
            )),
            "{msg}"
        );
    }
}
