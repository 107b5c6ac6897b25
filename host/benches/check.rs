//! Whole-process benchmarks of `kazi check` (issue: goal files, item 5). Run with
//! `cargo bench -p kazi --bench check`; numbers are recorded in docs/benchmarks.md.
//!
//! - 10 `file` predicates, cached artifacts: wall time of the whole process;
//! - 50 `http` predicates against a local server that answers each request after
//!   100 ms, `--jobs 50`: they run concurrently;
//! - 1,000 `file` predicates in one goal: wall time and peak memory (max RSS).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn kazi(cache: &Path, args: &[&str]) -> (Duration, i64, i32) {
    let t = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_kazi"))
        .args(args)
        .env("KAZI_CACHE", cache)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let wall = t.elapsed();
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    (wall, usage.max_rss(), status.code().unwrap_or(-1))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn file_goal(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut g = String::from("id = \"bench\"\n");
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i}.txt")), format!("file {i} ok\n")).unwrap();
        g.push_str(&format!(
            "\n[[predicate]]\nid = \"f{i}\"\nuse = \"file\"\npath = \"f{i}.txt\"\ncontains = \"ok\"\n"
        ));
    }
    let path = dir.join("kazi.toml");
    std::fs::write(&path, g).unwrap();
    path
}

/// A loopback HTTP server answering every request after `delay`, one thread per
/// connection; it stops when the process ends.
fn slow_server(delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                std::thread::sleep(delay);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    port
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let want = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let cache = tempfile::tempdir().unwrap();

    if want("file10") {
        let dir = tempfile::tempdir().unwrap();
        let goal = file_goal(dir.path(), 10);
        let goal = goal.to_str().unwrap();
        kazi(cache.path(), &["check", goal]); // fills the artifact cache
        let runs: Vec<Duration> = (0..30)
            .map(|_| kazi(cache.path(), &["check", goal]).0)
            .collect();
        println!(
            "kazi check, 10 file predicates, cached artifacts: median {:?} (n=30, whole process)",
            median(runs)
        );
    }

    if want("http50") {
        let port = slow_server(Duration::from_millis(100));
        let dir = tempfile::tempdir().unwrap();
        let mut g = String::from("id = \"bench\"\n");
        for i in 0..50 {
            g.push_str(&format!(
                "\n[[predicate]]\nid = \"h{i}\"\nuse = \"http\"\nurl = \"http://127.0.0.1:{port}/h{i}\"\n"
            ));
        }
        let goal = dir.path().join("kazi.toml");
        std::fs::write(&goal, g).unwrap();
        let goal = goal.to_str().unwrap();
        let (_, _, code) = kazi(cache.path(), &["check", goal, "--jobs", "50"]);
        assert_eq!(code, 0, "the http goal should pass");
        let runs: Vec<Duration> = (0..5)
            .map(|_| kazi(cache.path(), &["check", goal, "--jobs", "50"]).0)
            .collect();
        println!(
            "kazi check, 50 http predicates (server answers after 100 ms), --jobs 50: median {:?} (n=5)",
            median(runs)
        );
    }

    if want("file1000") {
        let dir = tempfile::tempdir().unwrap();
        let goal = file_goal(dir.path(), 1000);
        let goal = goal.to_str().unwrap();
        let (_, _, code) = kazi(cache.path(), &["check", goal]);
        assert_eq!(code, 0);
        let mut walls = Vec::new();
        let mut rss = 0;
        for _ in 0..5 {
            let (wall, max_rss, _) = kazi(cache.path(), &["check", goal]);
            walls.push(wall);
            rss = rss.max(max_rss);
        }
        println!(
            "kazi check, 1,000 file predicates: median {:?} (n=5), peak RSS {} MiB",
            median(walls),
            rss / 1024
        );
    }
}
