//! Golden tests for goal files: every file under `tests/fixtures/goals/invalid/` must
//! fail to load with exactly the message in the `.stderr` file beside it (exit 5), and
//! every file under `valid/` must load. `KAZI_BLESS=1 cargo test -p kazi --test goals`
//! rewrites the expected messages after a deliberate change.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/goals")
}

fn kazi(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kazi"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env(
            "KAZI_CACHE",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache"),
        )
        .current_dir(dir);
    c
}

fn tomls(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_invalid_goal_fails_with_its_golden_message() {
    let dir = fixtures().join("invalid");
    let bless = std::env::var_os("KAZI_BLESS").is_some();
    let mut mismatches = Vec::new();
    let files = tomls(&dir);
    assert!(files.len() >= 15, "the invalid fixtures went missing");
    for file in files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let out = kazi(&dir).args(["check", name]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(5),
            "{name} should be a load error (exit 5):\n{stderr}"
        );
        let golden = file.with_extension("stderr");
        if bless {
            std::fs::write(&golden, &stderr).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != stderr {
            mismatches.push(format!("--- {name}: expected\n{expected}--- got\n{stderr}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}\n(rerun with KAZI_BLESS=1 to accept)",
        mismatches.join("\n")
    );
}

#[test]
fn every_valid_goal_loads() {
    let dir = fixtures().join("valid");
    for file in tomls(&dir) {
        let name = file.file_name().unwrap().to_str().unwrap();
        let out = kazi(&dir).args(["check", name, "--json"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(5), "{name} should load:\n{stderr}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["schema_version"], 1);
        assert!(
            json["predicates"].as_array().is_some_and(|p| !p.is_empty()),
            "{json}"
        );
    }
}

#[test]
fn a_v011_goal_loads_with_one_notice_and_splits_its_command() {
    let dir = fixtures().join("valid");
    let out = kazi(&dir).args(["check", "v011.toml"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("note: this is a kazi v0.1.1 goal; mapped: [harness] → [agent]"),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"split it into run = ["sh", "-c", "true"]"#),
        "{stderr}"
    );
}

#[test]
fn check_json_matches_the_documented_shape() {
    let dir = fixtures().join("valid");
    let out = kazi(&dir)
        .args(["check", "full.toml", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["goal_id"], "healthz");
    assert!(["pass", "fail", "error"].contains(&json["status"].as_str().unwrap()));
    for p in json["predicates"].as_array().unwrap() {
        for key in [
            "id",
            "verdict",
            "summary",
            "details",
            "score",
            "metrics",
            "duration_ms",
        ] {
            assert!(p.get(key).is_some(), "predicate lacks `{key}`: {p}");
        }
    }
    let test_count = &json["predicates"][1];
    assert_eq!(test_count["metrics"]["tests_passed"], 1.0, "{test_count}");
}

#[test]
fn the_examples_check_as_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = kazi(&root)
        .args(["check", "examples/docs/kazi.toml"])
        .output()
        .unwrap();
    assert_eq!(
        docs.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&docs.stderr)
    );
    // The web service loads; its live checks need the service, which is not running.
    let web = kazi(&root)
        .args(["check", "examples/web-service/kazi.toml", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        web.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&web.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&web.stdout).unwrap();
    let verdict = |id: &str| {
        json["predicates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap()["verdict"]
            .clone()
    };
    assert_eq!(verdict("serves-healthz"), "pass");
    assert_eq!(verdict("no-server-errors"), "pass");
    assert_ne!(verdict("healthz"), serde_json::Value::Null);
    let legacy = kazi(&root)
        .args([
            "check",
            "examples/kazi-v0.1.1.toml",
            "--workspace",
            "examples/quickstart/project",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(legacy.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&legacy.stdout).unwrap();
    assert_eq!(
        json["predicates"][0]["verdict"], "fail",
        "the quickstart calculator is broken on purpose"
    );
    assert_eq!(json["predicates"][0]["metrics"]["tests_failed"], 2.0);
}

#[test]
fn kazi_v011_probes_are_live_and_harness_command_is_the_agent_program() {
    let text = "id = \"legacy\"\n\
        [harness]\nid = \"claude\"\ncommand = \"/opt/tools/claude --debug\"\n\
        [[predicate]]\nid = \"tests\"\nprovider = \"test_runner\"\ncmd = \"make test\"\n\
        [[predicate]]\nid = \"health\"\nprovider = \"http_probe\"\nurl = \"http://127.0.0.1:9/healthz\"\nexpect_status = 200\n\
        [[predicate]]\nid = \"logs\"\nprovider = \"prod_log\"\ncmd = \"cat app.log\"\n\
        [[predicate]]\nid = \"probe-not-live\"\nprovider = \"http_probe\"\nurl = \"http://127.0.0.1:9/\"\nlive = false\n";
    let goal = kazi::goal::load_str(Path::new("legacy.toml"), text).unwrap();
    let live: Vec<(&str, bool)> = goal
        .predicates
        .iter()
        .map(|p| (p.id.as_str(), p.live))
        .collect();
    assert_eq!(
        live,
        vec![
            ("tests", false),
            ("health", true),
            ("logs", true),
            ("probe-not-live", false)
        ]
    );
    assert_eq!(goal.agent.profile, "claude");
    assert_eq!(goal.agent.run, vec!["/opt/tools/claude", "--debug"]);
    let notice = &goal.notices[0];
    assert!(
        notice.contains("[harness] command → [agent] run")
            && notice.contains("http_probe/prod_log → live = true"),
        "{notice}"
    );
}

/// Components built against the published WIT 0.1.0 (no `validate`) still load and
/// run; kazi says what they lack, once each.
#[test]
fn components_of_wit_0_1_load_with_a_notice() {
    let dir = fixtures().join("valid");
    let out = kazi(&dir).args(["check", "legacy.toml"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    assert!(stdout.contains("PASS  old: a.txt exists"), "{stdout}");
    assert!(
        stderr.contains(
            "note: predicate \"old\" (../../components/legacy-predicate-0.1.0.wasm) targets kazi:predicate/predicate@0.1.0, which cannot check its own config: kazi checks it against its schema only; hint: rebuild it against kazi-sdk 0.2.0"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("targets kazi:profile/profile@0.1.0, which cannot check `[agent]` options: they are checked only when the agent runs"),
        "{stderr}"
    );
}

/// A goal whose test command cannot start for want of a tool is an `error` that says
/// so (and carries the `missing_tool` metric), never a `fail` to pay an agent for.
#[test]
fn a_missing_tool_is_an_error_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().to_path_buf();
    std::fs::write(
        ws.join("kazi.toml"),
        "id = \"t\"\n\n[[predicate]]\nid = \"tests\"\nuse = \"command\"\nrun = [\"sh\", \"-c\", \"kazi-no-such-tool --run\"]\n\n[[predicate]]\nid = \"lint\"\nuse = \"command\"\nrun = [\"kazi-no-such-linter\"]\n",
    )
    .unwrap();
    let out = kazi(&ws)
        .args(["check", "kazi.toml", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "error");
    for p in json["predicates"].as_array().unwrap() {
        assert_eq!(p["verdict"], "error", "{p}");
        assert!(
            p["summary"].as_str().unwrap().starts_with("missing tool: "),
            "{p}"
        );
        assert_eq!(p["metrics"]["missing_tool"], 1.0, "{p}");
    }
    assert!(
        json["predicates"][0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("missing tool: `kazi-no-such-tool` is not installed ("),
        "{json}"
    );
}
