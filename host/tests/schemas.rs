//! The JSON Schemas under `docs/schemas/`: the goal file's (for editors) is generated
//! from what kazi reads — the keys of every table, the builtin predicates' config
//! schemas, the builtin profiles' options — and must match the file; every valid goal
//! fixture passes it and typical mistakes fail it. The `--json` output's schema
//! accepts what the commands print.
//!
//! After changing a key or a builtin's config: `KAZI_UPDATE_SCHEMAS=1 cargo test -p
//! kazi --test schemas` rewrites `docs/schemas/goal.schema.json`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn string() -> Value {
    json!({"type": "string"})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn duration(what: &str) -> Value {
    json!({"type": "string", "description": format!("{what}: a duration such as \"90s\", \"30m\", \"2h\" or \"1h 30m\"")})
}

fn table(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

/// The keys kazi reads in `[[predicate]]`, whatever the component.
fn predicate_host_properties() -> Map<String, Value> {
    let ratchet = table(
        json!({
            "metric": {"type": "string", "description": "a metric the predicate reports, such as tests_passed"},
            "direction": {"enum": ["no-decrease", "no-increase"], "description": "default no-decrease"},
            "baseline": {"type": "number", "description": "seeds the best value"}
        }),
        &["metric"],
    );
    json!({
        "id": {"type": "string", "description": "unique in the goal"},
        "use": {"type": "string", "description": "a builtin (command, file, http, log), a path to a .wasm component (relative to the goal file), or an installed package namespace:name@req"},
        "description": {"type": "string", "description": "what it checks, shown to the agent"},
        "guard": {"type": "boolean", "description": "a check that must never regress"},
        "live": {"type": "boolean", "description": "only expected to pass after [deploy] ran; never dispatched"},
        "held_out": {"type": "boolean", "description": "required for convergence, never shown to the agent"},
        "ratchet": ratchet,
        "ratchets": {"type": "array", "items": ratchet},
        "allow_skips": {"type": "boolean", "description": "default false: more skipped tests than at the start fail the predicate"},
        "allow": table(json!({
            "net": strings(),
            "exec": strings(),
            "env": strings(),
            "fs": {"enum": ["read", "write"]}
        }), &[]),
        "timeout": duration("evaluation limit (default 60s)"),
        "limits": table(json!({
            "memory": {"type": "string", "description": "such as \"512MiB\" (default 256MiB)"},
            "component": {"type": "string", "description": "largest component file to load, such as \"128MiB\" (default 64MiB)"}
        }), &[])
    })
    .as_object()
    .cloned()
    .unwrap()
}

/// `schema`'s own `$defs` moved into `defs` under `prefix.`, with its refs rewritten.
fn hoist(mut schema: Value, prefix: &str, defs: &mut Map<String, Value>) -> Value {
    let obj = schema.as_object_mut().unwrap();
    obj.remove("$schema");
    let own = obj.remove("$defs").or_else(|| obj.remove("definitions"));
    let mut text = schema.to_string();
    if let Some(Value::Object(own)) = own {
        let mut own_text = Value::Object(own.clone()).to_string();
        for name in own.keys() {
            for from in [
                format!("#/$defs/{name}\""),
                format!("#/definitions/{name}\""),
            ] {
                let to = format!("#/$defs/{prefix}.{name}\"");
                text = text.replace(&from, &to);
                own_text = own_text.replace(&from, &to);
            }
        }
        let own: Map<String, Value> = serde_json::from_str(&own_text).unwrap();
        for (name, def) in own {
            defs.insert(format!("{prefix}.{name}"), def);
        }
    }
    serde_json::from_str(&text).unwrap()
}

/// The goal file's JSON Schema, from what this kazi reads (computed once).
fn goal_schema() -> Value {
    static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(generate_goal_schema).clone()
}

fn generate_goal_schema() -> Value {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache");
    let sandbox = kazi::sandbox::Sandbox::new(Some(cache)).unwrap();
    let mut defs = Map::new();

    // [[predicate]]: kazi's keys plus, for each builtin, its config; any other
    // component's config is its own business (checked at load).
    let host = predicate_host_properties();
    let mut branches = Vec::new();
    for name in kazi::builtins::predicate_names() {
        let source = kazi::builtins::predicate(name).unwrap();
        let loaded = rt.block_on(sandbox.load_predicate(&source)).unwrap();
        let config = hoist(loaded.info.config_schema.clone(), name, &mut defs);
        let mut properties = host.clone();
        for (k, v) in config["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default()
        {
            properties.insert(k, v);
        }
        let mut required = vec![json!("id"), json!("use")];
        required.extend(config["required"].as_array().cloned().unwrap_or_default());
        let mut then = json!({
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        });
        if let Some(d) = config.get("description") {
            then["description"] = d.clone();
        }
        branches.push(json!({
            "if": {"properties": {"use": {"const": name}}, "required": ["use"]},
            "then": then,
        }));
    }
    let mut predicate = json!({
        "type": "object",
        "description": "A check that must hold. Keys other than kazi's own are the component's config.",
        "properties": host,
        "required": ["id", "use"],
        "allOf": branches,
    });
    predicate["properties"]["use"]["examples"] = json!(kazi::builtins::predicate_names());

    // [agent]: kazi's keys plus, for each builtin profile, its options.
    let agent_keys = ["profile", "model", "timeout", "run", "env"];
    let mut profiles = Vec::new();
    for name in kazi::builtins::profile_names() {
        let source = kazi::builtins::profile(name).unwrap();
        let loaded = rt.block_on(sandbox.load_profile(&source)).unwrap();
        let mut keys: Vec<String> = agent_keys.iter().map(|k| (*k).to_owned()).collect();
        keys.extend(loaded.info.options.iter().cloned());
        // No `profile` means claude.
        let condition = if name == "claude" {
            json!({"properties": {"profile": {"const": name}}})
        } else {
            json!({"properties": {"profile": {"const": name}}, "required": ["profile"]})
        };
        profiles.push(json!({
            "if": condition,
            "then": {"propertyNames": {"enum": keys}},
        }));
    }
    let agent = json!({
        "type": "object",
        "description": "The coding agent. Keys other than kazi's own are the profile's options.",
        "properties": {
            "profile": {"type": "string", "default": "claude", "examples": kazi::builtins::profile_names(), "description": "a builtin profile or a path to a .wasm profile; --profile overrides"},
            "model": {"type": "string", "description": "passed to the profile; --model overrides"},
            "timeout": duration("per dispatch (default 20m)"),
            "run": {"type": "array", "items": {"type": "string"}, "description": "the program (and arguments) instead of the profile's default"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}, "description": "extra environment for the agent"}
        },
        "allOf": profiles,
    });

    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://kazi.dev/schemas/goal.schema.json",
        "title": "kazi goal file (kazi.toml)",
        "description": "What \"done\" means for kazi: predicates that must all pass, the agent that makes them pass, and the limits. Generated by host/tests/schemas.rs from what this kazi reads; see docs/goals.md.",
        "type": "object",
        "required": ["id", "predicate"],
        "additionalProperties": false,
        "properties": {
            "schema": {"const": 1, "description": "goal-file schema version"},
            "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]*$", "description": "names the goal in runs"},
            "name": {"type": "string", "description": "one line for people"},
            "description": {"type": "string", "description": "free text, shown to the agent"},
            "mode": {"enum": ["create", "repair"], "default": "repair"},
            "standing": {"type": "boolean", "description": "keep observing after convergence"},
            "interval": duration("how often a standing goal re-observes (default 60s)"),
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "budget": table(json!({
                "max_iterations": {"type": "integer", "minimum": 1},
                "max_wall_clock": duration("total time"),
                "max_tokens": {"type": "integer", "minimum": 1},
                "max_cost_usd": {"type": "number", "exclusiveMinimum": 0},
                "max_dispatches": {"type": "integer", "minimum": 1}
            }), &[]),
            "scope": table(json!({
                "workspace": {"type": "string", "description": "relative to the goal file's directory"},
                "writable": strings(),
                "protected": strings(),
                "setup": {"type": "array", "description": "commands run in a new task worktree: [\"npm\", \"ci\"] or [[\"npm\", \"ci\"], …]", "anyOf": [
                    {"items": {"type": "string"}},
                    {"items": {"type": "array", "items": {"type": "string"}, "minItems": 1}}
                ]},
                "carry": strings()
            }), &[]),
            "agent": agent,
            "predicate": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/predicate"}},
            "deploy": table(json!({
                "run": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "timeout": duration("default 20m")
            }), &["run"]),
            "land": table(json!({
                "mode": {"enum": ["branch", "merge", "pr", "none"]},
                "branch": string()
            }), &[])
        },
    });
    defs.insert("predicate".into(), predicate);
    schema["$defs"] = Value::Object(defs);
    schema
}

fn schema_file() -> PathBuf {
    root().join("docs/schemas/goal.schema.json")
}

#[test]
fn the_goal_schema_file_is_what_kazi_reads() {
    let generated = goal_schema();
    let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var_os("KAZI_UPDATE_SCHEMAS").is_some() {
        std::fs::write(schema_file(), &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(schema_file()).unwrap_or_default();
    assert!(
        on_disk == text,
        "docs/schemas/goal.schema.json is out of date; run `KAZI_UPDATE_SCHEMAS=1 cargo test -p kazi --test schemas` and commit it"
    );
}

#[test]
fn every_table_of_the_schema_has_exactly_the_keys_kazi_reads() {
    let schema = goal_schema();
    let keys_of = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    for (section, keys) in kazi::goal::known_keys() {
        let at = match section {
            "" => schema.clone(),
            "predicate" => schema["$defs"]["predicate"].clone(),
            "predicate.allow" => schema["$defs"]["predicate"]["properties"]["allow"].clone(),
            "predicate.limits" => schema["$defs"]["predicate"]["properties"]["limits"].clone(),
            "predicate.ratchet" => schema["$defs"]["predicate"]["properties"]["ratchet"].clone(),
            s => schema["properties"][s].clone(),
        };
        let mut want: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        want.sort();
        assert_eq!(keys_of(&at), want, "[{section}]");
    }
}

fn goal_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    serde_json::to_value(value).unwrap()
}

fn violations(schema: &Value, value: &Value) -> Vec<String> {
    kazi::goal::schema::validate(schema, value)
        .iter()
        .map(|v| format!("{}: {}", v.pointer(), v.message))
        .collect()
}

#[test]
fn valid_goals_pass_the_schema_and_typical_mistakes_do_not() {
    let schema = goal_schema();
    let mut checked = 0;
    let fixtures = root().join("tests/fixtures/goals");
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures.join("valid"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    for example in [
        "examples/quickstart/project/kazi.toml",
        "examples/rust-crate/kazi.toml",
        "examples/web-service/kazi.toml",
        "examples/docs/kazi.toml",
    ] {
        files.push(root().join(example));
    }
    for path in files {
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Goals in the v0.1.1 format are mapped by kazi; the schema is the current one.
        if text.contains("provider =") || text.contains("[harness]") {
            continue;
        }
        let v = violations(&schema, &goal_json(&path));
        assert!(v.is_empty(), "{}: {v:#?}", path.display());
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} goals checked");

    // Mistakes an editor should underline.
    let base =
        "id = \"g\"\n[[predicate]]\nid = \"t\"\nuse = \"command\"\nrun = [\"cargo\", \"test\"]\n";
    assert!(violations(&schema, &toml_json(base)).is_empty());
    for (mistake, text) in [
        (
            "a typo in a top-level key",
            format!("{base}\n[budgets]\nmax_iterations = 3\n"),
        ),
        ("a typo in a predicate key", base.replace("run =", "rnu =")),
        (
            "a key of another builtin",
            format!("{base}contains = \"x\"\n"),
        ),
        (
            "a string for an integer",
            format!("{base}[budget]\nmax_iterations = \"ten\"\n"),
        ),
        ("an unknown mode", format!("mode = \"fix\"\n{base}")),
        (
            "an id with capitals",
            base.replace("id = \"g\"", "id = \"Goal\""),
        ),
        ("no predicate", "id = \"g\"\n".to_owned()),
        (
            "an unknown claude option",
            format!("{base}[agent]\nprofile = \"claude\"\nmax_turn = 3\n"),
        ),
        (
            "an unknown option of the default profile",
            format!("{base}[agent]\nfull_auto = true\n"),
        ),
        (
            "a bad fs grant",
            format!("{base}allow = {{ fs = \"rw\" }}\n"),
        ),
    ] {
        assert!(
            !violations(&schema, &toml_json(&text)).is_empty(),
            "{mistake} passed the schema:\n{text}"
        );
    }
    for (fine, text) in [
        (
            "an option of the default profile",
            format!("{base}[agent]\nmax_turns = 3\n"),
        ),
        (
            "an option of codex",
            format!("{base}[agent]\nprofile = \"codex\"\nsandbox = \"workspace-write\"\n"),
        ),
        (
            "a profile package's own option",
            format!("{base}[agent]\nprofile = \"acme:bot@^1\"\nstyle = \"terse\"\n"),
        ),
    ] {
        let v = violations(&schema, &toml_json(&text));
        assert!(v.is_empty(), "{fine} failed the schema: {v:#?}\n{text}");
    }
    // Any other component's config is its own.
    let wasm = "id = \"g\"\n[[predicate]]\nid = \"t\"\nuse = \"./checks/x.wasm\"\nanything = 1\n";
    assert!(violations(&schema, &toml_json(wasm)).is_empty());
}

fn toml_json(text: &str) -> Value {
    let value: toml::Value = toml::from_str(text).unwrap();
    serde_json::to_value(value).unwrap()
}

// ----- the --json output ------------------------------------------------------------

fn output_schema(def: &str) -> Value {
    let text = std::fs::read_to_string(root().join("docs/schemas/output.schema.json")).unwrap();
    let mut schema: Value = serde_json::from_str(&text).unwrap();
    let obj = schema.as_object_mut().unwrap();
    obj.remove("anyOf");
    obj.insert("$ref".into(), json!(format!("#/$defs/{def}")));
    schema
}

fn kazi(dir: &Path, db: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kazi"))
        .args(args)
        .current_dir(dir)
        .env("KAZI_DB", db)
        .env(
            "KAZI_CACHE",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache"),
        )
        .env("HOME", dir)
        .env_remove("KAZI_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn assert_shape(def: &str, stdout: &str) {
    let schema = output_schema(def);
    let lines: Vec<&str> = if def == "observation" {
        stdout
            .lines()
            .filter(|l| l.contains("\"observation\""))
            .collect()
    } else {
        vec![stdout]
    };
    assert!(!lines.is_empty(), "{def}: no output");
    for line in lines {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{def}: {e}: {line}"));
        let v = violations(&schema, &value);
        assert!(v.is_empty(), "{def}: {v:#?}\n{value:#}");
    }
}

#[test]
fn every_json_output_matches_the_output_schema() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let db = dir.path().join("kazi.db");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("state.txt"), "broken\n").unwrap();
    let agent = ws.join("agent.sh");
    std::fs::write(&agent, "#!/bin/sh\necho fixed > state.txt\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        ws.join("kazi.toml"),
        "id = \"t\"\n[agent]\nprofile = \"command\"\nrun = [\"./agent.sh\"]\n\
         [[predicate]]\nid = \"fixed\"\nuse = \"file\"\npath = \"state.txt\"\ncontains = \"fixed\"\n\
         [[predicate]]\nid = \"tests\"\nuse = \"command\"\nrun = [\"sh\", \"-c\", \"echo '# pass 1'; echo '# fail 0'\"]\n",
    )
    .unwrap();
    std::fs::write(
        ws.join("bad.toml"),
        "id = \"t\"\n[budget]\nmax_iterations = \"ten\"\n",
    )
    .unwrap();

    let (code, out) = kazi(&ws, &db, &["check", "--json"]);
    assert_eq!(code, 1, "{out}");
    assert_shape("check", &out);
    let (code, out) = kazi(&ws, &db, &["run", "--dry-run", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert_shape("dry_run", &out);
    let (code, out) = kazi(&ws, &db, &["check", "bad.toml", "--json"]);
    assert_eq!(code, 5, "{out}");
    assert_shape("result", &out);
    let (code, out) = kazi(&ws, &db, &["run", "bad.toml", "--json"]);
    assert_eq!(code, 5, "{out}");
    assert_shape("result", &out);
    let (code, out) = kazi(&ws, &db, &["run", "--stream", "-q"]);
    assert_eq!(code, 0, "{out}");
    assert_shape("observation", &out);
    assert_shape("result", out.lines().last().unwrap());
    let (code, out) = kazi(&ws, &db, &["show", "last", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert_shape("show", &out);
    let (code, out) = kazi(&ws, &db, &["runs", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert_shape("runs", &out);
    let (_, out) = kazi(&ws, &db, &["doctor", "--json"]);
    assert_shape("doctor", &out);
}
