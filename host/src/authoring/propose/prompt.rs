//! The authoring prompt of `kazi propose`: the idea, what a goal file looks like, and
//! every predicate with the config schema its component declares.

use std::fmt::Write as _;
use std::path::Path;

use crate::sandbox::PredicateInfo;

/// The authoring prompt: the idea, what a goal file looks like, every predicate in
/// `predicates` with the config schema its component declares, and what to answer.
pub fn prompt(idea: &str, workspace: &Path, predicates: &[PredicateInfo]) -> String {
    let mut p = String::new();
    let _ = writeln!(
        p,
        "You are drafting a goal file for kazi. kazi drives a coding agent until every \
         predicate of a goal holds: a predicate is a machine-checked statement about the \
         workspace (the tests pass, a file says the right thing, a command prints the \
         right value, an endpoint answers)."
    );
    let _ = writeln!(p, "\n# The idea\n\n{}", idea.trim());
    let _ = writeln!(
        p,
        "\n# The workspace\n\nThe workspace is your current directory ({}). Look around \
         (read files, list directories, read the build and test setup) to find how the \
         idea can be checked here. Do not change, create or delete any file: your only \
         output is the goal file, in your answer.",
        workspace.display()
    );
    let _ = writeln!(
        p,
        "\n# What to write\n\n\
         ONE goal file whose predicates FAIL in the workspace as it is now and PASS once \
         the idea is built. kazi evaluates every predicate right after you answer: a goal \
         that already passes is rejected as vacuous.\n\n\
         - Check observable outcomes (tests, file contents, command output, HTTP \
         answers), not how the code is written.\n\
         - Prefer a few precise predicates to many vague ones; give each a `description` \
         the coding agent can act on.\n\
         - When the idea needs new tests, say so in the goal's `description` and check \
         them with a `command` predicate (for example a `match` on the test's name in \
         the test runner's output), so the goal fails until they exist and pass.\n\
         - Add a guard (`guard = true`) that the existing tests keep passing when there \
         are tests."
    );
    let _ = writeln!(
        p,
        "\n# Goal file format (TOML)\n\n\
         Top level:\n\
         - `id` (required): `[a-z0-9][a-z0-9._-]*`, names the goal.\n\
         - `name`: one line for people.\n\
         - `description`: what to build, for the coding agent.\n\
         - `mode`: `\"create\"` (something new) or `\"repair\"` (something broken; the default).\n\
         \n\
         `[budget]`, every key optional: `max_iterations` (integer), `max_wall_clock` \
         (`\"30m\"`), `max_tokens` (integer), `max_cost_usd` (number), `max_dispatches` \
         (integer).\n\
         \n\
         `[scope]`: `writable` (paths the agent may change), `protected` (paths it must \
         not change, such as acceptance tests that already exist). Do not set `workspace`: \
         kazi sets it.\n\
         \n\
         Leave out `[agent]`: the person running kazi picks the agent.\n\
         \n\
         `[[predicate]]`, at least one, ids unique:\n\
         - `id` (required), `use` (required: one of the predicates below), `description`.\n\
         - `guard = true`: must never regress. `live = true`: only expected to pass after \
         `[deploy]` ran (then add `[deploy] run = [\"./deploy.sh\"]`). `held_out = true`: \
         never shown to the coding agent.\n\
         - `ratchet = {{ metric = \"tests_passed\", direction = \"no-decrease\" }}`: fails \
         when the metric drops below the best value seen.\n\
         - `timeout = \"10m\"`: evaluation limit (default 60s).\n\
         - Every other key is the predicate's config, checked against its schema below. \
         Unknown keys are errors.\n\
         \n\
         Durations are strings such as `\"90s\"`, `\"30m\"`, `\"2h\"`. Programs in `run` \
         are argv lists run without a shell, in the workspace root, with only PATH and \
         HOME in the environment: write `[\"cargo\", \"test\"]`, or \
         `[\"sh\", \"-c\", \"…\"]` when you need a shell.\n\
         \n\
         Example:\n\
         \n\
         ```toml\n\
         id = \"healthz\"\n\
         name = \"a /healthz endpoint that returns 200\"\n\
         description = \"Add GET /healthz answering 200 with body ok, with a test.\"\n\
         mode = \"create\"\n\
         \n\
         [budget]\n\
         max_iterations = 10\n\
         \n\
         [[predicate]]\n\
         id = \"healthz-test-passes\"\n\
         use = \"command\"\n\
         description = \"the healthz test exists and passes\"\n\
         run = [\"cargo\", \"test\", \"healthz\"]\n\
         match = \"test .*healthz.* \\\\.\\\\.\\\\. ok\"\n\
         \n\
         [[predicate]]\n\
         id = \"tests-pass\"\n\
         use = \"command\"\n\
         guard = true\n\
         run = [\"cargo\", \"test\"]\n\
         ```"
    );
    let _ = writeln!(
        p,
        "\n# Predicates\n\nThe builtin predicates, each with the JSON Schema of its config \
         (the keys of a `[[predicate]]` besides kazi's own), as the component declares it:"
    );
    for info in predicates {
        let mut schema = info.config_schema.clone();
        if let Some(o) = schema.as_object_mut() {
            o.remove("$schema");
        }
        let _ = writeln!(
            p,
            "\n## `{}`: {}\n\n```json\n{}\n```",
            info.name,
            info.summary,
            serde_json::to_string(&schema).expect("JSON values serialise")
        );
    }
    let _ = writeln!(
        p,
        "\n# Your answer\n\nAnswer with the whole goal file in one ```toml fenced block, \
         and nothing after it."
    );
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goal;

    #[test]
    fn the_prompt_lists_every_predicate_with_its_schema() {
        let info = |name: &str| PredicateInfo {
            name: name.into(),
            version: "1".into(),
            summary: format!("the {name} check"),
            config_schema: serde_json::json!({"$schema": "x", "type": "object", "properties": {"needle": {"type": "string"}}}),
            capabilities: Default::default(),
        };
        let p = prompt(
            "say hello",
            Path::new("/w"),
            &[info("file"), info("command")],
        );
        assert!(p.contains("# The idea\n\nsay hello\n"), "{p}");
        assert!(p.contains("current directory (/w)"));
        assert!(p.contains("## `file`: the file check"));
        assert!(p.contains("## `command`: the command check"));
        assert!(p.contains("\"needle\""));
        assert!(!p.contains("$schema"));
        assert!(p.contains("FAIL in the workspace as it is now and PASS once"));
        assert!(p.ends_with("nothing after it.\n"));
        // The example in the prompt is itself a goal file.
        let example = p
            .split("```toml\n")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap();
        assert!(
            goal::load_str(Path::new("/w/x.toml"), example).is_ok(),
            "{example}"
        );
    }
}
