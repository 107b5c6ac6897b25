//! Whether a workspace can make a host call block: a workspace on a local filesystem
//! with nothing mounted inside it cannot (special files are refused, see `wasi.rs`),
//! so its evaluations run inline on the runtime, where they cost nothing extra. A
//! workspace on a network or FUSE filesystem, or with a mount inside it, may hang a
//! reader in the kernel: its evaluations run on a guest thread, so the deadline still
//! fires.
//!
//! The answer is cached per workspace and recomputed whenever the mount table changes
//! (`/proc/self/mountinfo` reports that through `poll`), so the usual check costs one
//! `poll` system call.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Filesystems whose reads always finish: local disks and memory.
const LOCAL_FILESYSTEMS: &[i64] = &[
    0xEF53,      // ext2, ext3, ext4
    0x5846_5342, // xfs
    0x9123_683E, // btrfs
    0x0102_1994, // tmpfs
    0x858_458F6, // ramfs
    0x794C_7630, // overlayfs
    0x2FC1_2FC1, // zfs
    0xF2F5_2010, // f2fs
    0xCA45_1A4E, // bcachefs
    0x7371_7368, // squashfs
    0x5265_4973, // reiserfs
    0x3153_464A, // jfs
    0x4D44,      // vfat, msdos
    0x2011_BAB0, // exfat
];

struct Cache {
    /// `/proc/self/mountinfo`, kept open to learn of changes.
    mountinfo: Option<std::fs::File>,
    /// The mount points, as of the last read.
    mounts: Vec<PathBuf>,
    answers: HashMap<PathBuf, bool>,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| {
        let mut c = Cache {
            mountinfo: std::fs::File::open("/proc/self/mountinfo").ok(),
            mounts: Vec::new(),
            answers: HashMap::new(),
        };
        c.reload();
        Mutex::new(c)
    })
}

impl Cache {
    /// Whether the mount table changed since the last read.
    fn changed(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let Some(f) = &self.mountinfo else {
            return true;
        };
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLPRI)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => false,
            Ok(_) => fds[0]
                .revents()
                .is_none_or(|r| r.intersects(PollFlags::POLLPRI | PollFlags::POLLERR)),
            Err(_) => true,
        }
    }

    /// Read the mount points again (which also re-arms the change notification).
    fn reload(&mut self) {
        self.answers.clear();
        let mut text = String::new();
        let read = self
            .mountinfo
            .as_mut()
            .is_some_and(|f| f.rewind().is_ok() && f.read_to_string(&mut text).is_ok());
        self.mounts = if read {
            mount_points(&text)
        } else {
            Vec::new()
        };
        if !read {
            self.mountinfo = None;
        }
    }
}

/// The mount points listed in `/proc/self/mountinfo` text (field 5, octal escapes
/// such as `\040` decoded).
fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .collect()
}

fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether every file under `workspace` is on a local filesystem that cannot block a
/// reader: the workspace's filesystem is local and nothing is mounted below it. Any
/// doubt answers `false`.
pub fn local_only(workspace: &Path) -> bool {
    let mut c = cache().lock().expect("mounts lock");
    if c.mountinfo.is_none() {
        return false;
    }
    if c.changed() {
        c.reload();
    }
    if let Some(&answer) = c.answers.get(workspace) {
        return answer;
    }
    let answer = decide(workspace, &c.mounts);
    c.answers.insert(workspace.to_path_buf(), answer);
    answer
}

/// Whether the filesystem holding `path` is one of [`LOCAL_FILESYSTEMS`].
fn is_local(path: &Path) -> bool {
    #[allow(
        clippy::unnecessary_cast,
        reason = "the width of the filesystem type differs between targets"
    )]
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| LOCAL_FILESYSTEMS.contains(&(s.filesystem_type().0 as i64)))
}

fn decide(workspace: &Path, mounts: &[PathBuf]) -> bool {
    let Ok(root) = workspace.canonicalize() else {
        return false;
    };
    let local = is_local(&root);
    local && !mounts.iter().any(|m| m != &root && m.starts_with(&root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_read_and_unescaped() {
        let info = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n\
                    40 22 0:35 / /home/a\\040b rw - fuse.sshfs host: rw\n";
        assert_eq!(
            mount_points(info),
            vec![PathBuf::from("/"), PathBuf::from("/home/a b")]
        );
    }

    #[test]
    fn a_mount_inside_the_workspace_makes_it_unsafe() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let inside = vec![PathBuf::from("/"), root.join("mnt")];
        assert!(!decide(&root, &inside));
        // Mounts elsewhere, or at the workspace itself, do not matter.
        let elsewhere = vec![
            PathBuf::from("/"),
            root.clone(),
            PathBuf::from("/elsewhere"),
        ];
        assert_eq!(decide(&root, &elsewhere), is_local(&root));
    }

    #[test]
    fn a_missing_workspace_is_not_known_to_be_safe() {
        assert!(!decide(Path::new("/definitely/not/here"), &[]));
    }

    #[test]
    fn the_answer_is_cached_until_the_mount_table_changes() {
        let dir = tempfile::tempdir().unwrap();
        let first = local_only(dir.path());
        assert_eq!(local_only(dir.path()), first);
    }
}
