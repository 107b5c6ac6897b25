//! `kazi propose`, `kazi proposals`, `kazi approve`, `kazi reject` and `kazi run REF`
//! end to end: the real binary, a temp workspace and database, and the fake `claude`
//! (tests/fake-agents) answering with `KAZI_FAKE_RESULT`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fakes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fake-agents")
        .canonicalize()
        .unwrap()
}

/// A goal with one `file` predicate: `hello.txt` contains "hello".
const HELLO: &str = "id = \"hello\"\nname = \"a greeting\"\n\n[[predicate]]\nid = \"hello\"\nuse = \"file\"\npath = \"hello.txt\"\ncontains = \"hello\"\n";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("no JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    /// The ref `kazi propose` printed.
    fn reference(&self) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix("proposed "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no ref in: {}\n{}", self.stdout, self.stderr))
            .to_owned()
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ws")).unwrap();
        Env { dir }
    }

    fn ws(&self) -> PathBuf {
        self.dir.path().join("ws").canonicalize().unwrap()
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The number of times a fake agent was called.
    fn calls(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// Run kazi in the workspace with a scrubbed environment.
    fn kazi(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        self.kazi_in(&self.ws(), args, env)
    }

    fn kazi_in(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
        let path = format!("{}:{}", fakes().display(), std::env::var("PATH").unwrap());
        let mut c = Command::new(env!("CARGO_BIN_EXE_kazi"));
        c.env_clear()
            .env("PATH", path)
            .env("HOME", self.dir.path())
            .env("KAZI_DB", self.dir.path().join("kazi.db"))
            .env(
                "KAZI_CACHE",
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache"),
            )
            .env("KAZI_FAKE_CALLS_FILE", self.dir.path().join("calls"))
            .current_dir(cwd)
            .stdin(Stdio::null())
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        Out {
            code: out.status.code().expect("kazi exits normally"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `kazi propose IDEA` with the fake claude answering `answer`.
    fn propose(&self, idea: &str, answer: &str, extra: &[&str]) -> Out {
        let mut args = vec!["propose", idea];
        args.extend(extra);
        self.kazi(&args, &[("KAZI_FAKE_RESULT", answer)])
    }

    /// Temp paths and the ref's hash made stable, for whole-output comparisons.
    fn filter(&self, text: &str) -> String {
        let text = text.replace(&self.ws().display().to_string(), "[WS]");
        regex::Regex::new(r"(prop-[a-z0-9-]+)-[0-9a-f]{12}")
            .unwrap()
            .replace_all(&text, "$1-[HASH]")
            .into_owned()
    }
}

#[test]
fn a_clean_toml_answer_is_stored_as_proposed_and_printed_with_its_ref() {
    let e = Env::new();
    let out = e.propose("Write hello.txt saying hello", HELLO, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        e.filter(&out.stdout),
        format!(
            "{HELLO}\nnow: 0 of 1 predicate pass (as it should before the idea is built)\n\
             FAIL  hello: hello.txt does not exist\n\
             proposed prop-write-hello-txt-saying-hello-[HASH] (new)\n\
             next: kazi approve prop-write-hello-txt-saying-hello-[HASH]\n"
        )
    );
    assert_eq!(
        e.filter(&out.stderr),
        "asking claude to draft a goal in [WS]\n"
    );
    let list = e.kazi(&["proposals", "--json"], &[]).json();
    let p = &list["proposals"][0];
    assert_eq!(list["schema_version"], 1);
    assert_eq!(p["ref"], out.reference());
    assert_eq!(p["status"], "proposed");
    assert_eq!(p["goal_id"], "hello");
    assert_eq!(p["goal"], HELLO);
    assert_eq!(p["idea"], "Write hello.txt saying hello");
    assert_eq!(p["workspace"], e.ws().display().to_string());
    assert_eq!(p["vacuous"], false);
    let table = e.kazi(&["proposals"], &[]);
    assert!(table.stdout.starts_with("REF "), "{table:?}");
    assert!(table.stdout.contains("  proposed  hello  "), "{table:?}");
}

#[test]
fn the_prompt_lists_the_builtin_predicates_with_their_schemas() {
    let e = Env::new();
    let prompt = e.dir.path().join("prompt.md");
    let out = e.kazi(
        &["propose", "say hello"],
        &[
            ("KAZI_FAKE_RESULT", HELLO),
            ("KAZI_FAKE_PROMPT_FILE", prompt.to_str().unwrap()),
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let prompt = std::fs::read_to_string(prompt).unwrap();
    assert!(prompt.contains("# The idea\n\nsay hello\n"), "{prompt}");
    for name in ["command", "file", "log"] {
        assert!(
            prompt.contains(&format!("## `{name}`: ")),
            "{name}: {prompt}"
        );
    }
    // The schemas come from the components: keys the docs name, with their descriptions.
    assert!(prompt.contains("\"not_contains\""), "{prompt}");
    assert!(prompt.contains("\"pass_codes\""), "{prompt}");
    assert!(prompt.contains("FAIL in the workspace as it is now"));
}

#[test]
fn a_fenced_answer_among_prose_is_found_and_the_last_goal_that_loads_wins() {
    let e = Env::new();
    let first = HELLO.replace("name = \"a greeting\"", "name = \"first\"");
    let answer = format!(
        "I looked at the repository.\n\n```toml\n{first}```\n\nCheck it with:\n\n```sh\nkazi check x.toml\n```\n\nOn second thought, this is better:\n\n```toml\n{HELLO}```\n\nIt fails now."
    );
    let out = e.propose("say hello", &answer, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(v["goal"], HELLO);
    assert_eq!(v["origin"], "the ```toml block at line 22");
    assert!(
        out.stderr
            .contains("note: the answer holds 2 goals that load; kazi took the last one (the ```toml block at line 22)"),
        "{out:?}"
    );
}

#[test]
fn toml_wrapped_in_prose_is_found() {
    let e = Env::new();
    let answer = format!("Sure! Here it is:\n\n{HELLO}\nThis fails until hello.txt exists.");
    let out = e.propose("say hello", &answer, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["goal"], HELLO);
    assert_eq!(out.json()["origin"], "the TOML at lines 3-10");
}

#[test]
fn a_json_answer_is_stored_as_toml() {
    let e = Env::new();
    let answer = r#"{"id": "hello", "predicate": [{"use": "file", "id": "hello", "path": "hello.txt", "contains": "hello"}], "budget": {"max_iterations": 5}}"#;
    let out = e.propose("say hello", answer, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(
        v["goal"],
        "id = \"hello\"\n\n[budget]\nmax_iterations = 5\n\n[[predicate]]\nid = \"hello\"\nuse = \"file\"\ncontains = \"hello\"\npath = \"hello.txt\"\n"
    );
    assert_eq!(v["predicates"][0]["verdict"], "fail");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["status"], "proposed");
    assert_eq!(v["saved"], "created");
    assert_eq!(v["agent"]["profile"], "claude");
    assert_eq!(
        v["next"],
        format!("kazi approve {}", v["ref"].as_str().unwrap())
    );
}

#[test]
fn an_invalid_goal_is_refused_with_the_loader_error_and_what_the_agent_said() {
    let e = Env::new();
    let answer = format!(
        "```toml\n{}```",
        HELLO.replace("contains = \"hello\"", "contians = \"hello\"")
    );
    let out = e.propose("say hello", &answer, &[]);
    assert_eq!(out.code, 5, "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        e.filter(&out.stderr),
        "asking claude to draft a goal in [WS]\n\
         error: the agent's answer holds 1 goal, and none loads\n\
         the ```toml block at line 1: failed to load goal proposal.toml: 1 problem\n\
         proposal.toml:8:1: predicate \"hello\": `contians` is not a known key\n    \
         8 | contians = \"hello\"\n  \
         hint: did you mean `contains`?\n\
         the agent said (123 bytes):\n    \
         | ```toml\n    \
         | id = \"hello\"\n    \
         | name = \"a greeting\"\n    \
         | \n    \
         | [[predicate]]\n    \
         | id = \"hello\"\n    \
         | use = \"file\"\n    \
         | path = \"hello.txt\"\n    \
         | contians = \"hello\"\n    \
         | ```\n\
         hint: run `kazi propose` again; the messages above say what to word differently\n"
    );
    let list = e.kazi(&["proposals", "--json"], &[]).json();
    assert_eq!(
        list["proposals"],
        serde_json::json!([]),
        "nothing is stored"
    );
}

#[test]
fn a_toml_syntax_error_names_its_line() {
    let e = Env::new();
    let out = e.propose("say hello", "id = \"a\"\n[[predicate]\nid = \"b\"\n", &[]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(
        out.stderr
            .contains("the answer: failed to load goal proposal.toml"),
        "{out:?}"
    );
    assert!(out.stderr.contains("proposal.toml:2:"), "{out:?}");
}

#[test]
fn an_empty_answer_or_one_without_a_goal_is_an_agent_failure() {
    let e = Env::new();
    let out = e.propose("say hello", " ", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("error: the agent's answer was empty"),
        "{out:?}"
    );

    let out = e.propose("say hello", "I am not sure how to check that.", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("error: the agent's answer holds no goal file"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("the agent said (32 bytes):\n    | I am not sure how to check that.\n"),
        "{out:?}"
    );
    let list = e.kazi(&["proposals", "--json"], &[]).json();
    assert_eq!(list["proposals"], serde_json::json!([]));
}

#[test]
fn an_agent_that_fails_is_an_error_with_its_message() {
    let e = Env::new();
    let out = e.kazi(
        &["propose", "say hello"],
        &[("KAZI_FAKE_MODE", "not-logged-in")],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("error: the agent failed (failed): "),
        "{out:?}"
    );
    assert!(out.stderr.contains("Not logged in"), "{out:?}");

    let out = e.kazi(
        &["propose", "say hello", "--timeout", "1s"],
        &[("KAZI_FAKE_MODE", "hang")],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("error: the agent failed (timed_out): the agent was killed after 1s"),
        "{out:?}"
    );
}

#[test]
fn proposals_ref_shows_one_proposal_with_its_goal() {
    let e = Env::new();
    let r = e.propose("say hello", HELLO, &[]).reference();
    let out = e.kazi(&["proposals", &r[..16]], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let shown = e.filter(&out.stdout);
    assert!(
        shown.starts_with(
            "ref        prop-say-hello-[HASH]\nstatus     proposed\nidea       say hello\ngoal       hello\nworkspace  [WS]\ncreated    "
        ),
        "{shown}"
    );
    assert!(shown.ends_with(&format!("\n\n{HELLO}")), "{shown}");
    let v = e.kazi(&["proposals", &r, "--json"], &[]).json();
    assert_eq!(v["ref"], r);
    assert_eq!(v["schema_version"], 1);
    let none = e.kazi(&["proposals", "prop-nope"], &[]);
    assert_eq!(none.code, 1, "{none:?}");
    assert!(
        none.stderr.contains("hint: `kazi proposals` lists them"),
        "{none:?}"
    );
}

#[test]
fn a_goal_that_passes_already_is_stored_flagged_vacuous() {
    let e = Env::new();
    e.write("ws/hello.txt", "hello\n");
    let out = e.propose("say hello", HELLO, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("now: 1 of 1 predicate pass\nPASS  hello: "),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(
            "vacuous: every predicate passes already (hello): there is nothing to build; `kazi run` would refuse this goal\n"
        ),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(
            "next: word the idea more precisely and propose again, or `kazi reject prop-say-hello-"
        ),
        "{out:?}"
    );
    let v = e.propose("say hello", HELLO, &["--json"]).json();
    assert_eq!(v["vacuous"], true);
    assert_eq!(
        v["vacuous_reason"],
        "every predicate passes already (hello): there is nothing to build"
    );
    let table = e.kazi(&["proposals"], &[]);
    assert!(table.stdout.contains("proposed (vacuous)"), "{table:?}");
    let approved = e.kazi(&["approve", &out.reference()], &[]);
    assert_eq!(approved.code, 0, "{approved:?}");
    assert!(
        approved
            .stderr
            .contains("note: this goal was vacuous when drafted"),
        "{approved:?}"
    );
}

#[test]
fn the_same_idea_twice_updates_the_same_proposal() {
    let e = Env::new();
    let first = e.propose("Say  hello", HELLO, &[]);
    assert_eq!(first.code, 0, "{first:?}");
    let changed = HELLO.replace("a greeting", "a warmer greeting");
    let second = e.propose("say hello", &changed, &[]);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(first.reference(), second.reference());
    assert!(
        second
            .stdout
            .contains("(updated: this draft replaces the previous one)\n"),
        "{second:?}"
    );
    let list = e.kazi(&["proposals", "--json"], &[]).json();
    assert_eq!(list["proposals"].as_array().unwrap().len(), 1);
    assert_eq!(list["proposals"][0]["goal"], changed);
    assert_eq!(list["proposals"][0]["idea"], "say hello");
    // Another workspace is another proposal.
    std::fs::create_dir_all(e.dir.path().join("other")).unwrap();
    let other = e.propose("say hello", HELLO, &["--workspace", "../other"]);
    assert_eq!(other.code, 0, "{other:?}");
    assert_ne!(other.reference(), first.reference());
}

#[test]
fn approve_writes_the_goal_file_that_check_loads_and_decisions_are_final() {
    let e = Env::new();
    let r = e.propose("say hello", HELLO, &[]).reference();
    let out = e.kazi(&["approve", &r], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let file = e.ws().join(".kazi/goals/hello.toml");
    assert_eq!(
        e.filter(&out.stdout),
        "approved prop-say-hello-[HASH]: wrote [WS]/.kazi/goals/hello.toml\n\
         next: kazi run .kazi/goals/hello.toml\n"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{}\n\n[scope]\nworkspace = \"../..\"\n", HELLO.trim_end())
    );
    let check = e.kazi(&["check", ".kazi/goals/hello.toml"], &[]);
    assert_eq!(check.code, 1, "{check:?}");
    assert!(
        check
            .stdout
            .starts_with("goal hello: 1 predicate: 0 pass, 1 fail"),
        "{check:?}"
    );
    e.write("ws/hello.txt", "hello\n");
    let check = e.kazi_in(e.dir.path(), &["check", "ws/.kazi/goals/hello.toml"], &[]);
    assert_eq!(
        check.code, 0,
        "the workspace is found from elsewhere too: {check:?}"
    );

    let list = e
        .kazi(&["proposals", "--json", "--status", "approved"], &[])
        .json();
    assert_eq!(
        list["proposals"][0]["goal_path"],
        file.display().to_string()
    );

    let again = e.kazi(&["approve", &r], &[]);
    assert_eq!(again.code, 1, "{again:?}");
    assert_eq!(
        e.filter(&again.stderr),
        "error: proposal `prop-say-hello-[HASH]` is approved; only a proposed one can be approved; \
         hint: its goal file is [WS]/.kazi/goals/hello.toml, and `kazi run prop-say-hello-[HASH]` runs it\n"
    );
    let reject = e.kazi(&["reject", &r], &[]);
    assert_eq!(reject.code, 1, "{reject:?}");
    assert!(
        reject
            .stderr
            .contains("is approved; only a proposed one can be rejected"),
        "{reject:?}"
    );
    // Proposing the approved idea again is refused before the agent is asked.
    let calls = e.calls();
    let repropose = e.propose("say hello", HELLO, &[]);
    assert_eq!(repropose.code, 1, "{repropose:?}");
    assert!(
        repropose.stderr.contains(
            "is approved; only a proposed one can be drafted again; hint: its goal file is"
        ),
        "{repropose:?}"
    );
    assert!(
        repropose.stderr.contains("word the idea differently"),
        "{repropose:?}"
    );
    assert_eq!(e.calls(), calls, "the agent was not asked");
}

#[test]
fn approve_refuses_to_overwrite_without_force_and_writes_elsewhere_with_write() {
    let e = Env::new();
    let r = e.propose("say hello", HELLO, &[]).reference();
    e.write("ws/.kazi/goals/hello.toml", "mine\n");
    let out = e.kazi(&["approve", &r], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("hello.toml already exists; hint: --force overwrites it"),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(e.ws().join(".kazi/goals/hello.toml")).unwrap(),
        "mine\n"
    );
    let list = e.kazi(&["proposals", "--json"], &[]).json();
    assert_eq!(
        list["proposals"][0]["status"], "proposed",
        "still undecided"
    );

    // --write to a directory outside the workspace: the goal points back at it.
    std::fs::create_dir_all(e.dir.path().join("goals")).unwrap();
    let out = e.kazi(&["approve", &r, "--write", "../goals"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let written = std::fs::read_to_string(e.dir.path().join("goals/hello.toml")).unwrap();
    assert!(
        written.ends_with("[scope]\nworkspace = \"../ws\"\n"),
        "{written}"
    );
    let check = e.kazi_in(e.dir.path(), &["check", "goals/hello.toml"], &[]);
    assert_eq!(check.code, 1, "{check:?}");
    assert!(
        check.stdout.contains("hello.txt does not exist"),
        "{check:?}"
    );

    // --force overwrites (a fresh proposal of another idea, same goal id).
    let r2 = e.propose("say hello again", HELLO, &[]).reference();
    let out = e.kazi(&["approve", &r2, "--force"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        std::fs::read_to_string(e.ws().join(".kazi/goals/hello.toml"))
            .unwrap()
            .starts_with("id = \"hello\"")
    );
}

#[test]
fn reject_is_final_for_approve_but_the_idea_can_be_drafted_again() {
    let e = Env::new();
    let r = e.propose("say hello", HELLO, &[]).reference();
    let out = e.kazi(&["reject", &r[..12]], &[]);
    assert_eq!(out.code, 0, "a unique prefix names it: {out:?}");
    assert_eq!(out.stdout, format!("rejected {r}\n"));
    let approve = e.kazi(&["approve", &r], &[]);
    assert_eq!(approve.code, 1, "{approve:?}");
    assert!(
        approve.stderr.contains(
            "is rejected; only a proposed one can be approved; hint: `kazi propose` the same idea again for a new draft"
        ),
        "{approve:?}"
    );
    let run = e.kazi(&["run", &r], &[]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains("is rejected, not approved"), "{run:?}");
    let list = e.kazi(&["proposals", "--status", "rejected"], &[]);
    assert!(list.stdout.contains("  rejected  hello  "), "{list:?}");
    let again = e.propose("say hello", HELLO, &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stdout
            .contains("(a new draft of a rejected proposal)"),
        "{again:?}"
    );
    let list = e
        .kazi(&["proposals", "--json", "--status", "proposed"], &[])
        .json();
    assert_eq!(list["proposals"][0]["ref"], r);

    let unknown = e.kazi(&["approve", "prop-nope"], &[]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(
        unknown.stderr.contains("no proposal `prop-nope`"),
        "{unknown:?}"
    );
}

#[test]
fn run_accepts_an_approved_ref() {
    let e = Env::new();
    let r = e.propose("say hello", HELLO, &[]).reference();
    let proposed = e.kazi(&["run", &r], &[]);
    assert_eq!(proposed.code, 5, "{proposed:?}");
    assert!(
        proposed
            .stderr
            .contains(&format!("is proposed, not approved: it has no goal file to run; hint: `kazi approve {r}` writes it")),
        "{proposed:?}"
    );
    assert_eq!(e.kazi(&["approve", &r], &[]).code, 0);
    let fix = e.write("fix.sh", "echo hello > hello.txt\n");
    let run = e.kazi(
        &["run", &r, "--json"],
        &[("KAZI_FAKE_SCRIPT", fix.to_str().unwrap())],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["status"], "converged");
    assert_eq!(v["goal_id"], "hello");
    let runs = e.kazi(&["runs", "--json"], &[]).json();
    assert_eq!(
        runs["runs"][0]["goal_path"],
        e.ws().join(".kazi/goals/hello.toml").display().to_string()
    );

    // A deleted goal file is written again from the read-model.
    std::fs::remove_file(e.ws().join(".kazi/goals/hello.toml")).unwrap();
    let run = e.kazi(&["run", &r, "--json"], &[]);
    assert_eq!(
        run.code, 5,
        "it passes already, so the goal is vacuous: {run:?}"
    );
    assert!(
        run.stderr.contains("was missing; kazi wrote it again"),
        "{run:?}"
    );
    assert!(e.ws().join(".kazi/goals/hello.toml").exists());
}

#[test]
fn the_command_profile_drafts_with_run() {
    let e = Env::new();
    let answer = e.write("answer.toml", HELLO);
    let script = e.write(
        "draft.sh",
        &format!("#!/bin/sh\ncat '{}'\n", answer.display()),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = e.kazi(
        &[
            "propose",
            "say hello",
            "--run",
            script.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["agent"]["profile"], "command");
    assert_eq!(out.json()["goal"], HELLO);
}

#[test]
fn usage_errors_exit_2() {
    let e = Env::new();
    let out = e.kazi(&["propose", "  "], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("the idea is empty"), "{out:?}");
    let out = e.kazi(&["propose", "x", "--profile", "command"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--run ./draft.sh"), "{out:?}");
    let out = e.kazi(&["propose", "x", "--workspace", "nope"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    let out = e.kazi(&["propose", "x", "--profile", "claud"], &[]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("did you mean `claude`?"), "{out:?}");
    assert_eq!(e.calls(), 0);
}

#[test]
fn the_readme_tour_proposes_approves_and_runs() {
    // README: kazi propose "a VERSION file that says 1.0.0" → kazi approve REF → kazi run REF
    let e = Env::new();
    let answer = "```toml\nid = \"version\"\nname = \"a VERSION file that says 1.0.0\"\nmode = \"create\"\n\n[[predicate]]\nid = \"version\"\nuse = \"file\"\npath = \"VERSION\"\nequals = \"1.0.0\\n\"\n```\n";
    let out = e.propose("a VERSION file that says 1.0.0", answer, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.reference();
    assert!(r.starts_with("prop-a-version-file-that-says-1-0-0-"), "{r}");
    assert_eq!(e.kazi(&["proposals"], &[]).code, 0);
    assert_eq!(e.kazi(&["approve", &r], &[]).code, 0);
    let fix = e.write("fix.sh", "echo 1.0.0 > VERSION\n");
    let run = e.kazi(&["run", &r], &[("KAZI_FAKE_SCRIPT", fix.to_str().unwrap())]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("converged after 2 iterations"),
        "{run:?}"
    );
}

/// `--option KEY=VALUE` sets a profile option as a goal's `[agent]` would, checked by
/// the profile before the agent is asked anything.
#[test]
fn profile_options_are_flags_checked_before_the_agent_runs() {
    let e = Env::new();
    let out = e.propose("Write hello.txt", HELLO, &["--option", "max_turns=7", "-v"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("\"--max-turns\", \"7\""),
        "the option reached the agent's argv: {out:?}"
    );
    assert_eq!(e.calls(), 1);
    for (option, message) in [
        (
            "max_turn=7",
            "--option max_turn: not an option of the claude profile; hint: did you mean `max_turns`?",
        ),
        ("max_turns=ten", "--option max_turns: "),
        ("max_turns", "is not KEY=VALUE"),
    ] {
        let out = e.propose("Write hello.txt", HELLO, &["--option", option]);
        assert_eq!(out.code, 2, "{option}: {out:?}");
        assert!(out.stderr.contains(message), "{option}: {out:?}");
        assert_eq!(e.calls(), 1, "{option}: the agent ran");
    }
}
