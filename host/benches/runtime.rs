//! Plugin-runtime benchmarks (issue: plugin runtime, item 8). Run with
//! `cargo bench -p kazi --bench runtime`; results go to stdout and are recorded in
//! docs/benchmarks.md. A plain harness: each case runs a warm-up, then N timed
//! iterations, and reports the median and 90th percentile.

use std::time::{Duration, Instant};

use kazi::sandbox::{ArtifactCache, EvalOptions, Sandbox, digest_hex};

fn stats(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p90 = samples[samples.len() * 9 / 10];
    println!(
        "{name:<48} n={:<5} median={:>10.1?} p90={:>10.1?} min={:>10.1?}",
        samples.len(),
        median,
        p90,
        samples[0]
    );
    median
}

fn time<F: FnMut()>(n: usize, mut f: F) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

fn main() {
    // `cargo bench -p kazi --bench runtime -- NAME` runs only the cases whose name contains NAME.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let want = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("a.txt"), "all ok here\n").unwrap();
    let cache = tempfile::tempdir().unwrap();

    // 1. Warm evaluation of the builtin `file` predicate, fresh Store each time.
    let sandbox = Sandbox::new(Some(cache.path().to_path_buf())).unwrap();
    let source = kazi::builtins::predicate("file").unwrap();
    let predicate = rt.block_on(sandbox.load_predicate(&source)).unwrap();
    let config = serde_json::json!({"path": "a.txt", "contains": "ok"});
    let opts = EvalOptions::default();
    let eval = || {
        let v = rt.block_on(sandbox.evaluate(&predicate, ws.path(), &config, &opts));
        assert_eq!(v.outcome, kazi::verdict::Outcome::Pass, "{v:?}");
    };
    let _ = time(200, eval);
    let n = if filter.is_some() { 20_000 } else { 2000 };
    let wasm = stats(
        "file predicate, warm evaluation (fresh Store)",
        time(n, eval),
    );

    // The floor: a guest that does nothing (reads its empty environment), for
    // comparison with the `file` evaluation above (same Store setup, no file I/O).
    let floor_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/guests/wasm32-wasip2/release/kazi_test_guest_read_env.wasm");
    if let Ok(src) = kazi::sandbox::Source::from_file(&floor_path) {
        let floor = rt.block_on(sandbox.load_predicate(&src)).unwrap();
        let empty = serde_json::json!({});
        let call = || {
            rt.block_on(sandbox.evaluate(&floor, ws.path(), &empty, &opts));
        };
        let _ = time(200, call);
        stats(
            "floor: a guest that does nothing (fresh Store)",
            time(n, call),
        );
    }
    if !want("grep") {
        return;
    }

    // 2. The same check by spawning `grep -q`.
    let grep = || {
        let ok = std::process::Command::new("grep")
            .args(["-q", "ok", "a.txt"])
            .current_dir(ws.path())
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    let _ = time(20, grep);
    let spawn = stats("grep -q spawn, same check", time(300, grep));
    println!(
        "{:<48} {:.1}x",
        "speed-up of the warm evaluation over grep",
        spawn.as_secs_f64() / wasm.as_secs_f64()
    );

    // 3. First compile vs cached load of the same component.
    let bytes = source.bytes.clone();
    let digest = digest_hex(&bytes);
    let engine = sandbox.engine();
    let compile = time(5, || {
        let dir = tempfile::tempdir().unwrap();
        let c = ArtifactCache::new(engine, Some(dir.path().to_path_buf()));
        c.load(engine, &digest, &bytes).unwrap();
    });
    stats(
        &format!(
            "first compile of `file` ({} KB), incl. cache write",
            bytes.len() / 1024
        ),
        compile,
    );
    let warm_cache = ArtifactCache::new(engine, Some(cache.path().to_path_buf()));
    warm_cache.load(engine, &digest, &bytes).unwrap();
    stats(
        "cached load of `file` (deserialize)",
        time(200, || {
            warm_cache.load(engine, &digest, &bytes).unwrap();
        }),
    );

    // 4. One profile parse call (fresh Store, instantiate + call).
    let profile = rt
        .block_on(sandbox.load_profile(&kazi::builtins::profile("command").unwrap()))
        .unwrap();
    let stdout = "fixed the failing test in src/lib.rs\n".repeat(20);
    let parse = || {
        rt.block_on(sandbox.parse(&profile, Some(0), &stdout, ""))
            .unwrap();
    };
    let _ = time(100, parse);
    stats("command profile, one parse call", time(1000, parse));
}
