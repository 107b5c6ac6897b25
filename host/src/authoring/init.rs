//! `kazi init`: detect the stack of a repository from its marker files and render a
//! starter goal: the tests pass, two ratchet guards keep the number of passing tests
//! and the number of tests from dropping, a live `http` check to fill in, scope
//! suggestions, an agent and a budget (SPEC §8).
//!
//! Rendering is a pure function of what was detected: the same repository always
//! gives the same bytes (fixed stack order, sorted lists, no timestamps).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The file `kazi init` writes by default.
pub const DEFAULT_FILE: &str = "kazi.toml";

/// A build tool `kazi init` recognises. Declaration order is the order in which
/// several stacks of one repository are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stack {
    Cargo,
    Go,
    Node,
    Python,
    Elixir,
    Maven,
    Gradle,
}

impl Stack {
    /// Every stack, in the order they are detected and written.
    pub const ALL: [Stack; 7] = [
        Stack::Cargo,
        Stack::Go,
        Stack::Node,
        Stack::Python,
        Stack::Elixir,
        Stack::Maven,
        Stack::Gradle,
    ];

    /// Lower-case name, used to prefix predicate ids when a repository has several.
    pub fn slug(self) -> &'static str {
        match self {
            Stack::Cargo => "cargo",
            Stack::Go => "go",
            Stack::Node => "node",
            Stack::Python => "python",
            Stack::Elixir => "elixir",
            Stack::Maven => "maven",
            Stack::Gradle => "gradle",
        }
    }

    /// The name people use.
    pub fn title(self) -> &'static str {
        match self {
            Stack::Cargo => "Cargo",
            Stack::Go => "Go",
            Stack::Node => "Node",
            Stack::Python => "Python",
            Stack::Elixir => "Elixir",
            Stack::Maven => "Maven",
            Stack::Gradle => "Gradle",
        }
    }

    /// The files that give the stack away, first match wins.
    pub fn markers(self) -> &'static [&'static str] {
        match self {
            Stack::Cargo => &["Cargo.toml"],
            Stack::Go => &["go.mod"],
            Stack::Node => &["package.json"],
            Stack::Python => &[
                "pyproject.toml",
                "setup.cfg",
                "setup.py",
                "pytest.ini",
                "tox.ini",
            ],
            Stack::Elixir => &["mix.exs"],
            Stack::Maven => &["pom.xml"],
            Stack::Gradle => &["build.gradle", "build.gradle.kts"],
        }
    }

    /// Host variables the test command may need beyond `PATH` and `HOME`, sorted.
    fn env(self) -> &'static [&'static str] {
        match self {
            Stack::Cargo => &["CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"],
            Stack::Go => &["GOCACHE", "GOFLAGS", "GOMODCACHE", "GOPATH"],
            Stack::Node | Stack::Python | Stack::Elixir => &[],
            Stack::Maven => &["JAVA_HOME", "MAVEN_OPTS"],
            Stack::Gradle => &["GRADLE_USER_HOME", "JAVA_HOME"],
        }
    }

    /// Where the code usually lives (for `[scope] writable`).
    fn sources(self) -> &'static [&'static str] {
        match self {
            Stack::Cargo => &["src/"],
            Stack::Go => &["cmd/", "internal/", "pkg/"],
            Stack::Node => &["lib/", "src/"],
            Stack::Python => &["src/"],
            Stack::Elixir => &["lib/"],
            Stack::Maven | Stack::Gradle => &["src/main/"],
        }
    }

    /// Where the tests usually live (for `[scope] protected`).
    fn tests(self) -> &'static [&'static str] {
        match self {
            Stack::Cargo => &["tests/"],
            Stack::Go => &["testdata/"],
            Stack::Node => &["test/"],
            Stack::Python => &["tests/"],
            Stack::Elixir => &["test/"],
            Stack::Maven | Stack::Gradle => &["src/test/"],
        }
    }
}

/// One stack found in a repository, and how its tests run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub stack: Stack,
    /// The marker file that gave it away.
    pub marker: &'static str,
    /// The test command, as an argv.
    pub run: Vec<String>,
    /// Whether the `command` predicate reads test counts from this command's output;
    /// without them a ratchet guard could only report an error, so it is written
    /// commented out.
    pub counts: bool,
    /// Variables the test command needs set (a `src/` Python layout needs
    /// `PYTHONPATH`), sorted.
    pub env: Vec<(String, String)>,
    /// Why the command was chosen over the obvious one, for the goal's comment.
    pub why: Option<String>,
}

impl Detected {
    fn new(stack: Stack, marker: &'static str, run: Vec<String>, counts: bool) -> Self {
        Self {
            stack,
            marker,
            run,
            counts,
            env: Vec::new(),
            why: None,
        }
    }
}

/// Why `kazi init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// No marker file of a known stack.
    #[error(
        "failed to detect a project in {}: no marker file of a stack kazi knows\n  looked for: {}{}\n  hint: write the goal by hand (docs/goals.md), or add what is missing and run `kazi init` again",
        dir.display(),
        looked_for(),
        notes.iter().map(|n| format!("\n  note: {n}")).collect::<String>()
    )]
    UnknownStack { dir: PathBuf, notes: Vec<String> },
    /// The goal file exists and `--force` was not given.
    #[error(
        "failed to write {}: the file exists; hint: pass --force to overwrite it, or --output PATH to write elsewhere",
        path.display()
    )]
    Exists { path: PathBuf },
    #[error("failed to read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The rendered goal did not load: a bug in `kazi init`, never the user's fault.
    #[error("failed to render a starter goal that loads (a bug in kazi init): {0}")]
    Unloadable(String),
}

/// Every marker file, grouped by stack, for the unknown-stack message.
fn looked_for() -> String {
    Stack::ALL
        .iter()
        .map(|s| {
            let files = if *s == Stack::Node {
                "package.json with a `test` script".to_owned()
            } else {
                s.markers().join(", ")
            };
            format!("{files} ({})", s.title())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// npm writes this placeholder into `scripts.test`; it is not a test suite.
const NPM_PLACEHOLDER: &str = "no test specified";

/// Test runners behind `npm test` whose counts the `command` predicate reads.
const NODE_COUNTED_RUNNERS: &[&str] = &["jest", "node --test", "react-scripts test", "vitest"];

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// Find every known stack in `dir`, in [`Stack::ALL`] order.
pub fn detect(dir: &Path) -> Result<Vec<Detected>, InitError> {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    let has = |name: &str| dir.join(name).is_file();
    for stack in Stack::ALL {
        let Some(marker) = stack.markers().iter().copied().find(|m| has(m)) else {
            continue;
        };
        let detected = match stack {
            // --no-fail-fast: one failing test target must not stop cargo before the
            // others (and the doc tests) run, or the counts would not be all tests.
            Stack::Cargo => Detected::new(
                stack,
                marker,
                argv(&["cargo", "test", "--workspace", "--no-fail-fast"]),
                true,
            ),
            // Without -v, `go test` prints package lines only, no test counts; it
            // runs every package whatever fails.
            Stack::Go => Detected::new(stack, marker, argv(&["go", "test", "-v", "./..."]), true),
            Stack::Node => {
                let path = dir.join(marker);
                let text = std::fs::read_to_string(&path).map_err(|source| InitError::Read {
                    path: path.clone(),
                    source,
                })?;
                match node_test_script(&text) {
                    Ok(script) => node(dir, marker, &script),
                    Err(note) => {
                        notes.push(note);
                        continue;
                    }
                }
            }
            Stack::Python => python(dir, marker),
            Stack::Elixir => Detected::new(stack, marker, argv(&["mix", "test"]), false),
            // -fae / --continue: every module's tests run even when one fails.
            Stack::Maven if has("mvnw") => Detected::new(
                stack,
                marker,
                argv(&["./mvnw", "-B", "-fae", "test"]),
                false,
            ),
            Stack::Maven => {
                Detected::new(stack, marker, argv(&["mvn", "-B", "-fae", "test"]), false)
            }
            Stack::Gradle if has("gradlew") => Detected::new(
                stack,
                marker,
                argv(&["./gradlew", "test", "--continue", "--console=plain"]),
                false,
            ),
            Stack::Gradle => Detected::new(
                stack,
                marker,
                argv(&["gradle", "test", "--continue", "--console=plain"]),
                false,
            ),
        };
        found.push(detected);
    }
    if found.is_empty() {
        return Err(InitError::UnknownStack {
            dir: dir.to_owned(),
            notes,
        });
    }
    Ok(found)
}

/// Node: `npm test`, unless the test script needs a program this repository does
/// not have (e.g. `pnpm lint && vitest run` without pnpm) while its test runner is
/// installed in `node_modules/.bin`: then the runner itself, which kazi can run and
/// whose counts it reads.
fn node(dir: &Path, marker: &'static str, script: &str) -> Detected {
    const RUNNERS: &[(&str, &[&str])] = &[("vitest", &["run"]), ("jest", &[])];
    let counted = NODE_COUNTED_RUNNERS.iter().any(|r| script.contains(r));
    let missing = script_programs(script)
        .into_iter()
        .find(|p| !on_path(p) && !dir.join("node_modules/.bin").join(p).is_file());
    if let Some(missing) = missing {
        for (runner, args) in RUNNERS {
            let bin = dir.join("node_modules/.bin").join(runner);
            if script.contains(runner) && bin.is_file() {
                let mut run = vec![format!("node_modules/.bin/{runner}")];
                run.extend(args.iter().map(|a| (*a).to_owned()));
                let mut d = Detected::new(Stack::Node, marker, run, true);
                d.why = Some(format!(
                    "the test script `{script}` needs `{missing}`, which is not installed; its runner {runner} is"
                ));
                return d;
            }
        }
    }
    Detected::new(Stack::Node, marker, argv(&["npm", "test"]), counted)
}

/// The programs a package.json script runs: the first word of each command
/// (after `&&`, `||`, `;`, `|`), past `VAR=value` assignments.
fn script_programs(script: &str) -> Vec<String> {
    script
        .split(['&', '|', ';'])
        .filter_map(|part| {
            part.split_whitespace()
                .find(|w| !w.contains('='))
                .map(str::to_owned)
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether `program` is found on this machine's PATH.
fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH");
    crate::process::resolve_program(program, path.as_deref(), Path::new("/")).is_some()
}

/// Python: pytest through the project's virtualenv when it has one, with `src/` on
/// `PYTHONPATH` for a src layout, and no `__pycache__` written next to the tests.
fn python(dir: &Path, marker: &'static str) -> Detected {
    let venv = [".venv/bin/python", "venv/bin/python"]
        .into_iter()
        .find(|p| dir.join(p).is_file());
    let mut d = match venv {
        Some(py) => {
            let mut d = Detected::new(Stack::Python, marker, argv(&[py, "-m", "pytest"]), true);
            d.why = Some(format!("the project's virtualenv ({py})"));
            d
        }
        None => Detected::new(
            Stack::Python,
            marker,
            argv(&["python3", "-m", "pytest"]),
            true,
        ),
    };
    d.env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
    if src_layout(dir) {
        d.env.push(("PYTHONPATH".into(), "src".into()));
    }
    d.env.sort();
    d
}

/// A `src/` layout: `src/<package>/__init__.py` (and `src` itself not a package).
fn src_layout(dir: &Path) -> bool {
    let src = dir.join("src");
    if src.join("__init__.py").is_file() {
        return false;
    }
    std::fs::read_dir(&src).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().join("__init__.py").is_file())
    })
}

/// What stops the test command from running on this machine, with the fix: its
/// program is missing, or (Python) pytest is not importable. Checked when the goal is
/// written, so a missing tool is found now rather than paid for later.
pub fn check_runs(dir: &Path, d: &Detected) -> Option<String> {
    let program = &d.run[0];
    let path = std::env::var_os("PATH");
    let Some(resolved) = crate::process::resolve_program(program, path.as_deref(), dir) else {
        return Some(format!(
            "`{program}` (for {}) is not {}; hint: install it, or edit `run` in the goal",
            d.stack.title(),
            if program.contains('/') {
                "in the repository"
            } else {
                "on PATH"
            }
        ));
    };
    if d.stack == Stack::Python {
        let out = std::process::Command::new(&resolved)
            .args(["-c", "import pytest"])
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .output();
        if let Ok(out) = out
            && !out.status.success()
        {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Some(format!(
                "pytest is not importable by `{program}` ({}); hint: `{program} -m pip install pytest`, or point `run` at the interpreter of your virtualenv",
                last.trim()
            ));
        }
    }
    None
}

/// The `scripts.test` of a package.json, or why it does not count.
fn node_test_script(package_json: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(package_json)
        .map_err(|e| format!("package.json is not valid JSON ({e}), so it was skipped"))?;
    match v.pointer("/scripts/test").and_then(|t| t.as_str()) {
        Some(s) if s.contains(NPM_PLACEHOLDER) => Err(format!(
            "package.json has npm's placeholder test script (`{s}`), which is not a test suite; add a real `scripts.test`"
        )),
        Some(s) if !s.trim().is_empty() => Ok(s.to_owned()),
        _ => {
            Err("package.json has no `scripts.test`, so kazi cannot tell how its tests run".into())
        }
    }
}

/// A goal id from a directory name: lower case, `[a-z0-9._-]` only, starting with a
/// letter or digit; `project` when nothing is left.
pub fn goal_id(dir_name: &str) -> String {
    let mut id = String::new();
    for c in dir_name.to_lowercase().chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_' {
            c
        } else {
            '-'
        };
        if c == '-' && id.ends_with('-') {
            continue;
        }
        id.push(c);
    }
    let id = id
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .trim_end_matches('-');
    if id.is_empty() {
        "project".to_owned()
    } else {
        id.to_owned()
    }
}

/// A TOML basic string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of strings on one line.
fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|s| quote(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// Everything the starter goal is rendered from.
#[derive(Debug, Clone)]
pub struct Starter {
    /// The goal id (see [`goal_id`]).
    pub id: String,
    /// The repository's directory name, for the goal's name.
    pub project: String,
    /// `[scope] workspace`: the repository relative to the goal file's directory.
    pub workspace: String,
    pub stacks: Vec<Detected>,
    /// The stacks' source and test directories that exist in the repository.
    pub sources: Vec<String>,
    pub tests: Vec<String>,
}

/// Which of the stacks' usual directories (`f`) exist in `dir`, sorted.
fn existing(
    dir: &Path,
    stacks: &[Detected],
    f: fn(Stack) -> &'static [&'static str],
) -> Vec<String> {
    let mut v: Vec<String> = stacks
        .iter()
        .flat_map(|d| f(d.stack))
        .filter(|p| dir.join(p).is_dir())
        .map(|p| (*p).to_owned())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Render the starter goal. Pure: the same input gives the same bytes.
pub fn render(s: &Starter) -> String {
    render_with(s, false)
}

/// The goal text being written. Optional lines (suggestions, guards kazi cannot
/// judge, the live check) are commented out, unless `uncomment` (for tests: every
/// optional line must be valid once enabled).
struct Out {
    text: String,
    uncomment: bool,
}

impl Out {
    fn line(&mut self, text: &str) {
        self.text.push_str(text);
        self.text.push('\n');
    }

    /// An explanation, always a comment.
    fn prose(&mut self, text: &str) {
        self.line(&format!("# {text}"));
    }

    /// A line of TOML, optional when `optional`.
    fn optional_if(&mut self, optional: bool, text: &str) {
        if optional {
            self.optional(text);
        } else {
            self.line(text);
        }
    }

    /// A line of TOML the user may enable.
    fn optional(&mut self, text: &str) {
        if self.uncomment {
            self.line(text);
        } else if text.is_empty() {
            self.line("#");
        } else {
            self.line(&format!("# {text}"));
        }
    }
}

fn render_with(s: &Starter, uncomment: bool) -> String {
    let mut o = Out {
        text: String::new(),
        uncomment,
    };
    let found: Vec<String> = s
        .stacks
        .iter()
        .map(|d| format!("{} ({})", d.stack.title(), d.marker))
        .collect();
    o.prose(&format!(
        "A starter goal written by `kazi init` for {}.",
        found.join(", ")
    ));
    o.prose("The tests must pass, and neither the number of passing tests nor the number");
    o.prose("of tests may drop. Edit freely: kazi's docs/goals.md describes every key.");
    o.line(&format!("id = {}", quote(&s.id)));
    o.line(&format!(
        "name = {}",
        quote(&format!("the tests of {} pass", s.project))
    ));
    o.optional(
        "mode = \"create\"   # default \"repair\": the code exists and broke; \"create\": build it",
    );
    o.optional("standing = true   # keep observing after convergence and repair drift");
    o.line("");
    o.line("[budget]");
    o.line("max_iterations = 10");
    o.line("max_wall_clock = \"1h\"");
    o.line("max_cost_usd = 5.0");
    o.line("");
    o.line("[scope]");
    o.line(&format!("workspace = {}", quote(&s.workspace)));
    let suggest = |f: fn(Stack) -> &'static [&'static str]| {
        let mut v: Vec<&str> = s.stacks.iter().flat_map(|d| f(d.stack)).copied().collect();
        v.sort_unstable();
        v.dedup();
        quote_list(&v)
    };
    o.prose("Where the agent may change files; changes elsewhere are reverted (or reported");
    o.prose("with --in-place). Unset: anywhere.");
    if s.sources.is_empty() {
        o.optional(&format!("writable = {}", suggest(Stack::sources)));
    } else {
        o.line(&format!("writable = {}", quote_list(&s.sources)));
    }
    o.prose("What the agent must not change, such as the tests you wrote as acceptance");
    o.prose("criteria (changing them is gaming: reverted, and repeated it ends the run):");
    if s.tests.is_empty() {
        o.optional(&format!("protected = {}", suggest(Stack::tests)));
    } else {
        o.line(&format!("protected = {}", quote_list(&s.tests)));
    }
    o.line("");
    o.line("[agent]");
    o.line("profile = \"claude\"");
    o.optional("model = \"claude-sonnet-4-5\"");
    o.optional("timeout = \"20m\"   # per dispatch");

    let several = s.stacks.len() > 1;
    for d in &s.stacks {
        let prefix = if several {
            format!("{}-", d.stack.slug())
        } else {
            String::new()
        };
        let shown = d.run.join(" ");
        let block = Block {
            id: format!("{prefix}tests-pass"),
            description: format!(
                "`{shown}` passes, and neither the passing tests nor the tests ever drop"
            ),
            run: &d.run,
            env: &d.env,
            allow_env: d.stack.env(),
        };
        o.line("");
        o.prose(&format!(
            "{}: `{shown}` (from {}{}).",
            d.stack.title(),
            d.marker,
            d.why
                .as_deref()
                .map(|w| format!("; {w}"))
                .unwrap_or_default()
        ));
        o.prose("One run of the suite feeds both ratchets: deleting or skipping a failing");
        o.prose("test lowers a count, and a newly skipped test fails the predicate.");
        block.write(&mut o, d.counts);
    }

    o.line("");
    o.prose("A live check, judged after [deploy] has run. Uncomment it and point it at");
    o.prose("your service:");
    o.optional("[[predicate]]");
    o.optional("id = \"healthz\"");
    o.optional("use = \"http\"");
    o.optional("url = \"http://127.0.0.1:8080/healthz\"");
    o.optional("expect_status = 200");
    o.optional("live = true");
    o.optional("");
    o.optional("[deploy]");
    o.optional("run = [\"./deploy.sh\"]");
    o.optional("timeout = \"15m\"");
    o.text
}

/// The ratchets of a starter test predicate: neither count may drop.
const RATCHETS: &str = "ratchets = [{ metric = \"tests_passed\", direction = \"no-decrease\" }, { metric = \"tests_total\", direction = \"no-decrease\" }]";

/// One `[[predicate]]` table of the `command` builtin.
#[derive(Debug, Clone)]
struct Block<'a> {
    id: String,
    description: String,
    run: &'a [String],
    /// Variables the command is run with.
    env: &'a [(String, String)],
    /// Host variables passed through (`[predicate.allow] env`).
    allow_env: &'static [&'static str],
}

impl Block<'_> {
    /// Write the table; the ratchets line is optional (commented) when the command's
    /// counts cannot be read.
    fn write(&self, o: &mut Out, counts: bool) {
        o.line("[[predicate]]");
        o.line(&format!("id = {}", quote(&self.id)));
        o.line("use = \"command\"");
        o.line(&format!("description = {}", quote(&self.description)));
        o.line(&format!("run = {}", quote_list(self.run)));
        if !self.env.is_empty() {
            let pairs: Vec<String> = self
                .env
                .iter()
                .map(|(k, v)| format!("{k} = {}", quote(v)))
                .collect();
            o.line(&format!("env = {{ {} }}", pairs.join(", ")));
        }
        o.line("timeout = \"10m\"");
        if !counts {
            let shown = self.run.join(" ");
            o.prose(&format!(
                "kazi reads no test counts from `{shown}`, so ratchets would only report an"
            ));
            o.prose("error. Uncomment them once the tests run through a runner whose counts");
            o.prose("kazi reads (kazi's docs/predicates/command.md, \"Metrics\").");
        }
        o.optional_if(!counts, RATCHETS);
        if !self.allow_env.is_empty() {
            o.line("");
            o.line("[predicate.allow]");
            o.line(&format!("env = {}", quote_list(self.allow_env)));
        }
    }
}

/// `to` relative to `from` (both absolute and canonical), `.` when they are equal.
pub fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// Detect the stack of `repo` and render a starter goal to be written at
/// `goal_path`, checked with the real goal loader. `repo` and the goal file's
/// directory must exist.
pub fn starter(repo: &Path, goal_path: &Path) -> Result<(Starter, String), InitError> {
    let canonical = |p: &Path| {
        p.canonicalize().map_err(|source| InitError::Read {
            path: p.to_owned(),
            source,
        })
    };
    let repo_abs = canonical(repo)?;
    let stacks = detect(repo)?;
    let goal_dir = match goal_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let goal_dir = canonical(goal_dir)?;
    let project = repo_abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "project".to_owned());
    let starter = Starter {
        id: goal_id(&project),
        project,
        workspace: relative(&goal_dir, &repo_abs),
        sources: existing(repo, &stacks, Stack::sources),
        tests: existing(repo, &stacks, Stack::tests),
        stacks,
    };
    let text = render(&starter);
    crate::goal::load_str(goal_path, &text).map_err(|e| InitError::Unloadable(e.to_string()))?;
    Ok((starter, text))
}

/// Write `text` to `path`, creating its directory; an existing file is refused
/// unless `force`.
pub fn write(path: &Path, text: &str, force: bool) -> Result<(), InitError> {
    if !force && path.exists() {
        return Err(InitError::Exists {
            path: path.to_owned(),
        });
    }
    std::fs::write(path, text).map_err(|source| InitError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn stacks(files: &[(&str, &str)]) -> Vec<Stack> {
        let dir = repo(files);
        detect(dir.path())
            .map(|d| d.iter().map(|d| d.stack).collect())
            .unwrap_or_default()
    }

    #[test]
    fn goal_ids_are_sanitised_directory_names() {
        assert_eq!(goal_id("my-repo"), "my-repo");
        assert_eq!(goal_id("My Repo (v2)"), "my-repo-v2");
        assert_eq!(goal_id("__init__.py"), "init__.py");
        assert_eq!(goal_id("café"), "caf");
        assert_eq!(goal_id("---"), "project");
        assert_eq!(goal_id(""), "project");
        assert_eq!(goal_id("a..b"), "a..b");
    }

    #[test]
    fn every_stack_is_found_from_its_markers() {
        assert_eq!(stacks(&[("Cargo.toml", "")]), [Stack::Cargo]);
        assert_eq!(stacks(&[("go.mod", "")]), [Stack::Go]);
        for marker in Stack::Python.markers() {
            assert_eq!(stacks(&[(marker, "")]), [Stack::Python], "{marker}");
        }
        assert_eq!(stacks(&[("mix.exs", "")]), [Stack::Elixir]);
        assert_eq!(stacks(&[("pom.xml", "")]), [Stack::Maven]);
        assert_eq!(stacks(&[("build.gradle.kts", "")]), [Stack::Gradle]);
        assert_eq!(
            stacks(&[("package.json", r#"{"scripts":{"test":"jest"}}"#)]),
            [Stack::Node]
        );
    }

    #[test]
    fn several_stacks_come_in_a_fixed_order() {
        let found = stacks(&[
            ("pom.xml", ""),
            ("package.json", r#"{"scripts":{"test":"vitest run"}}"#),
            ("Cargo.toml", ""),
        ]);
        assert_eq!(found, [Stack::Cargo, Stack::Node, Stack::Maven]);
    }

    #[test]
    fn npm_placeholder_and_missing_test_scripts_do_not_count() {
        let placeholder = r#"{"scripts":{"test":"echo \"Error: no test specified\" && exit 1"}}"#;
        for text in [
            placeholder,
            r#"{"name":"x"}"#,
            r#"{"scripts":{"test":""}}"#,
            "{",
        ] {
            let dir = repo(&[("package.json", text)]);
            let err = detect(dir.path()).unwrap_err().to_string();
            assert!(err.contains("looked for: Cargo.toml (Cargo)"), "{err}");
            assert!(err.contains("note: package.json"), "{err}");
        }
    }

    #[test]
    fn wrappers_are_preferred_and_counts_follow_the_runner() {
        let dir = repo(&[
            ("build.gradle", ""),
            ("gradlew", ""),
            ("pom.xml", ""),
            ("mvnw", ""),
        ]);
        let found = detect(dir.path()).unwrap();
        assert_eq!(found[0].run, ["./mvnw", "-B", "-fae", "test"]);
        assert_eq!(
            found[1].run,
            ["./gradlew", "test", "--continue", "--console=plain"]
        );
        assert!(found.iter().all(|d| !d.counts));
        let dir = repo(&[("package.json", r#"{"scripts":{"test":"mocha"}}"#)]);
        assert!(!detect(dir.path()).unwrap()[0].counts);
        let dir = repo(&[("package.json", r#"{"scripts":{"test":"node --test"}}"#)]);
        assert!(detect(dir.path()).unwrap()[0].counts);
    }

    #[test]
    fn a_node_script_that_needs_a_missing_tool_runs_its_runner_directly() {
        let dir = repo(&[(
            "package.json",
            r#"{"scripts":{"test":"kazi-no-such-tool lint && vitest run"}}"#,
        )]);
        // Without vitest installed: npm test (and the note at init says why it fails).
        assert_eq!(detect(dir.path()).unwrap()[0].run, ["npm", "test"]);
        std::fs::create_dir_all(dir.path().join("node_modules/.bin")).unwrap();
        std::fs::write(dir.path().join("node_modules/.bin/vitest"), "").unwrap();
        let d = &detect(dir.path()).unwrap()[0];
        assert_eq!(d.run, ["node_modules/.bin/vitest", "run"]);
        assert!(d.counts);
        assert!(
            d.why.as_deref().unwrap().contains("kazi-no-such-tool"),
            "{d:?}"
        );
    }

    #[test]
    fn python_uses_its_virtualenv_and_a_src_layout() {
        let dir = repo(&[("pyproject.toml", "")]);
        std::fs::create_dir_all(dir.path().join("src/pkg")).unwrap();
        std::fs::write(dir.path().join("src/pkg/__init__.py"), "").unwrap();
        std::fs::create_dir_all(dir.path().join(".venv/bin")).unwrap();
        std::fs::write(dir.path().join(".venv/bin/python"), "").unwrap();
        let d = &detect(dir.path()).unwrap()[0];
        assert_eq!(d.run, [".venv/bin/python", "-m", "pytest"]);
        assert_eq!(
            d.env,
            [
                ("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()),
                ("PYTHONPATH".to_owned(), "src".to_owned())
            ]
        );
    }

    #[test]
    fn a_missing_test_tool_is_reported_with_the_fix() {
        let d = Detected::new(
            Stack::Cargo,
            "Cargo.toml",
            argv(&["kazi-no-such-cargo", "test"]),
            true,
        );
        let why = check_runs(Path::new("."), &d).unwrap();
        assert!(
            why.contains("`kazi-no-such-cargo` (for Cargo) is not on PATH"),
            "{why}"
        );
        assert!(why.contains("hint: install it"), "{why}");
    }

    #[test]
    fn relative_paths_between_directories() {
        assert_eq!(relative(Path::new("/a/b"), Path::new("/a/b")), ".");
        assert_eq!(relative(Path::new("/a/b/.kazi"), Path::new("/a/b")), "..");
        assert_eq!(relative(Path::new("/a/x"), Path::new("/a/b/c")), "../b/c");
        assert_eq!(relative(Path::new("/a"), Path::new("/a/b")), "b");
    }

    #[test]
    fn quoting_escapes_toml_specials() {
        assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(quote("tab\there"), r#""tab\there""#);
    }

    fn every_stack() -> Starter {
        let dir = repo(&[
            ("Cargo.toml", ""),
            ("go.mod", ""),
            ("package.json", r#"{"scripts":{"test":"jest"}}"#),
            ("pyproject.toml", ""),
            ("mix.exs", ""),
            ("pom.xml", ""),
            ("build.gradle", ""),
        ]);
        Starter {
            id: "all".into(),
            project: "all \"the\" stacks".into(),
            workspace: ".".into(),
            stacks: detect(dir.path()).unwrap(),
            sources: Vec::new(),
            tests: Vec::new(),
        }
    }

    #[test]
    fn rendering_is_deterministic_and_loads() {
        let s = every_stack();
        assert_eq!(s.stacks.len(), Stack::ALL.len());
        let text = render(&s);
        assert_eq!(text, render(&s));
        let goal = crate::goal::load_str(Path::new("kazi.toml"), &text).unwrap();
        assert_eq!(goal.id, "all");
        assert_eq!(
            goal.name.as_deref(),
            Some("the tests of all \"the\" stacks pass")
        );
        assert_eq!(goal.agent.profile, "claude");
        assert!(goal.budget.max_iterations.is_some());
        // One predicate per stack; Cargo, Go, Node and Python have counts, so their
        // predicate carries both ratchets; Elixir, Maven and Gradle only the test run.
        assert_eq!(goal.predicates.len(), 7);
        let ids: Vec<&str> = goal.predicates.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(&ids[..2], ["cargo-tests-pass", "go-tests-pass"]);
        let ratcheted: Vec<(&str, Vec<&str>)> = goal
            .predicates
            .iter()
            .map(|p| {
                (
                    p.id.as_str(),
                    p.ratchets
                        .iter()
                        .map(|r| r.metric.as_str())
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, m)| !m.is_empty())
            .collect();
        assert_eq!(ratcheted.len(), 4, "{ratcheted:?}");
        assert!(
            ratcheted
                .iter()
                .all(|(_, m)| *m == ["tests_passed", "tests_total"]),
            "{ratcheted:?}"
        );
        assert!(!goal.predicates.iter().any(|p| p.live));
        let cargo = &goal.predicates[0];
        assert_eq!(
            cargo.config["run"],
            serde_json::json!(["cargo", "test", "--workspace", "--no-fail-fast"])
        );
    }

    #[test]
    fn every_commented_line_loads_once_uncommented() {
        let text = render_with(&every_stack(), true);
        let goal = crate::goal::load_str(Path::new("kazi.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(goal.predicates.len(), 7 + 1);
        assert!(
            goal.predicates
                .iter()
                .take(7)
                .all(|p| p.ratchets.len() == 2)
        );
        assert!(goal.predicates.last().unwrap().live);
        assert!(goal.deploy.is_some() && goal.standing);
        assert_eq!(
            goal.scope.protected,
            ["src/test/", "test/", "testdata/", "tests/"]
        );
        assert!(goal.scope.writable.contains(&"src/".to_owned()));
    }

    #[test]
    fn the_starter_resolves_against_the_builtin_components() {
        // Config keys are validated against each component's schema.
        let text = render(&every_stack());
        let goal = crate::goal::load_str(Path::new("kazi.toml"), &text).unwrap();
        let sandbox = crate::sandbox::Sandbox::new(None).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let resolved = rt.block_on(crate::goal::resolve(&sandbox, goal));
        assert!(resolved.is_ok(), "{}", resolved.err().unwrap());
    }
}
