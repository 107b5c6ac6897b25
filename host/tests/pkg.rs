//! Packages end to end against a real OCI registry: Debian's `docker-registry`
//! (Docker Distribution 2.8) started on loopback per test. A predicate scaffolded with
//! `kazi predicate new` is built and checked with `kazi pkg build`, signed, published,
//! trusted, added to another workspace and used by a goal; every refusal is checked for
//! a message that says what to do.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use kazi::pkg::oci::{Client, ImageManifest, KAZI_SIGNATURE_ANNOTATION, Reference};

// ---------------------------------------------------------------------------------
// A registry on loopback, stopped on drop.

struct Registry {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `alice:s3cret`, bcrypt (cost 4) as the registry's htpasswd wants it.
const HTPASSWD: &str = "alice:$2b$04$UpprsisIOvYoOsIhGe/LZuD30WWoLumM3Zd7ujFRvmOotBSAH5Hce\n";

impl Registry {
    fn start() -> Registry {
        Self::start_with(false)
    }

    /// With `auth`, the registry wants the login alice / s3cret.
    fn start_with(auth: bool) -> Registry {
        let bin = find_program("docker-registry").unwrap_or_else(|| {
            panic!(
                "the `docker-registry` program is missing: the package tests run a real OCI registry on 127.0.0.1; \
                 hint: install it with `apt-get install docker-registry` (Debian/Ubuntu; CI's .ci/run installs it)"
            )
        });
        let mut last_log = Vec::new();
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            let auth = if auth {
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, HTPASSWD).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: kazi-test\n    path: {}\n",
                    htpasswd.display()
                )
            } else {
                String::new()
            };
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    uploadpurging:\n      enabled: false\n{auth}http:\n  addr: {addr}\n  secret: kazi-test-secret\n",
                    dir.path().join("root").display()
                ),
            )
            .unwrap();
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let (tx, rx) = mpsc::channel();
            let stderr = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                // Keep draining so the registry never blocks on a full pipe.
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            last_log.clear();
            loop {
                match rx.recv_timeout(Duration::from_secs(30)) {
                    Ok(line) if line.contains("listening on") => {
                        return Registry { child, addr, dir };
                    }
                    Ok(line) => last_log.push(line),
                    Err(_) => break,
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            if !last_log
                .iter()
                .any(|l| l.contains("address already in use"))
            {
                break;
            }
        }
        panic!(
            "docker-registry did not start on 127.0.0.1:\n{}",
            last_log.join("\n")
        );
    }

    /// The file holding the blob `digest` in the registry's storage.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("root/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.addr)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------
// People: each has a home (keys, trusted keys, installed packages) of their own.

struct User {
    home: tempfile::TempDir,
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn real_home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap()
}

impl User {
    fn new() -> Self {
        User {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn dir(&self, rel: &str) -> PathBuf {
        let p = self.home.path().join(rel);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn kazi(&self, cwd: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kazi"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", self.home.path())
            .env("KAZI_DB", self.home.path().join("kazi.db"))
            .env("KAZI_CACHE", target_dir().join("tmp/kazi-cache"))
            // What `kazi pkg build` needs to run cargo (HOME is not the real one).
            .env("CARGO", env!("CARGO"))
            .env(
                "CARGO_HOME",
                std::env::var_os("CARGO_HOME").unwrap_or_else(|| real_home().join(".cargo").into()),
            )
            .env(
                "RUSTUP_HOME",
                std::env::var_os("RUSTUP_HOME")
                    .unwrap_or_else(|| real_home().join(".rustup").into()),
            )
            .env("CARGO_TARGET_DIR", target_dir().join("external-guests"))
            .env("CARGO_NET_OFFLINE", "true")
            .current_dir(cwd)
            .stdin(Stdio::null());
        if let Some(t) = std::env::var_os("RUSTUP_TOOLCHAIN") {
            c.env("RUSTUP_TOOLCHAIN", t);
        }
        c
    }

    fn run(&self, cwd: &Path, args: &[&str]) -> Run {
        let out = self.kazi(cwd).args(args).output().unwrap();
        Run::new(args, out)
    }

    /// A new key; returns the public key.
    fn keygen(&self) -> String {
        let r = self.run(self.home.path(), &["pkg", "keygen"]);
        r.code(0);
        r.stdout.trim().to_owned()
    }
}

struct Run {
    args: String,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn new(args: &[&str], out: Output) -> Self {
        Run {
            args: args.join(" "),
            code: out.status.code().expect("kazi exits normally"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    fn code(&self, want: i32) -> &Self {
        assert_eq!(
            self.code, want,
            "kazi {} exited {}:\n{self}",
            self.args, self.code
        );
        self
    }

    #[track_caller]
    fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "kazi {}: stderr lacks {needle:?}:\n{self}",
            self.args
        );
        self
    }

    #[track_caller]
    fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "kazi {}: stdout lacks {needle:?}:\n{self}",
            self.args
        );
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

// ---------------------------------------------------------------------------------
// The packages: one crate scaffolded by `kazi predicate new`, at 1.0.0 asking for
// nothing and at 1.1.0 asking to run `git`, each built with `kazi pkg build`: 1.0.0
// from the three lines `kazi pkg init` writes, 1.1.0 from a full manifest that
// repeats what describe() says (the older form, which keeps working).

const NAME: &str = "acme:has-text";
const REPO: &str = "acme/has-text";

struct Fixtures {
    /// Built package directories (target/kazi-package) of 1.0.0 and 1.1.0.
    v1: PathBuf,
    v2: PathBuf,
    /// What `kazi pkg build` printed for 1.0.0.
    v1_build: String,
}

fn manifest(version: &str) -> String {
    format!(
        "name = \"{NAME}\"\nversion = \"{version}\"\nkind = \"predicate\"\n\
         description = \"a workspace file contains a text\"\nlicense = \"Apache-2.0\"\n\
         repository = \"https://example.com/acme/has-text\"\n\
         world = \"kazi:predicate/predicate@0.2.0\"\n"
    )
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let root = target_dir().join("tmp/pkg-fixtures");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let author = User::new();
        let build = |dir: &str, version: &str, patch: &dyn Fn(&Path)| {
            author
                .run(&root, &["predicate", "new", "has-text", "--dir", dir])
                .code(0);
            let crate_dir = root.join(dir);
            let cargo = crate_dir.join("Cargo.toml");
            let text = std::fs::read_to_string(&cargo).unwrap();
            assert!(text.contains("version = \"0.1.0\""), "{text}");
            std::fs::write(&cargo, text.replacen("version = \"0.1.0\"", &format!("version = \"{version}\""), 1))
                .unwrap();
            patch(&crate_dir);
            let r = author.run(&root, &["pkg", "build", dir]);
            r.code(0);
            (crate_dir.join("target/kazi-package"), r.stdout.clone())
        };
        let (v1, v1_build) = build("v1", "1.0.0", &|d| {
            author
                .run(
                    d,
                    &[
                        "pkg",
                        "init",
                        "--namespace",
                        "acme",
                        "--description",
                        "a workspace file contains a text",
                        "--license",
                        "Apache-2.0",
                    ],
                )
                .code(0)
                .stdout_has("wrote ");
            let text = std::fs::read_to_string(d.join("kazi-package.toml")).unwrap();
            let keys: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
            assert_eq!(
                keys,
                [
                    "namespace = \"acme\"",
                    "description = \"a workspace file contains a text\"",
                    "license = \"Apache-2.0\""
                ],
                "{text}"
            );
        });
        let (v2, _) = build("v2", "1.1.0", &|d| {
            let lib = d.join("src/lib.rs");
            let text = std::fs::read_to_string(&lib).unwrap();
            let old = "capabilities: Capabilities::default(),";
            assert!(
                text.contains(old),
                "the `kazi predicate new` template changed: {old:?} is gone from src/lib.rs"
            );
            std::fs::write(
                &lib,
                text.replace(
                    old,
                    "capabilities: Capabilities { exec: vec![\"git\".into()], ..Capabilities::default() },",
                ),
            )
            .unwrap();
            std::fs::write(
                d.join("kazi-package.toml"),
                manifest("1.1.0") + "\n[capabilities]\nexec = [\"git\"]\n",
            )
            .unwrap();
        });
        Fixtures { v1, v2, v1_build }
    })
}

/// A copy of a built package that this test may sign without disturbing others.
fn copy_built(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for f in ["component.wasm", "kazi-package.toml"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    to.to_path_buf()
}

/// An author with a key, publishing signed packages to `reg`.
struct Author {
    user: User,
    key: String,
}

impl Author {
    fn new() -> Self {
        let user = User::new();
        let key = user.keygen();
        Author { user, key }
    }

    /// Sign (unless `signed` is false) and publish a built package at `repo:tag`.
    fn publish(&self, reg: &Registry, built: &Path, tag: &str, signed: bool) {
        let dir = copy_built(built, &self.user.dir(&format!("pub-{tag}-{signed}")));
        let d = dir.to_str().unwrap();
        if signed {
            self.user
                .run(self.user.home.path(), &["pkg", "sign", d])
                .code(0)
                .stdout_has(&self.key);
        }
        self.user
            .run(
                self.user.home.path(),
                &["pkg", "publish", d, &reg.reference(REPO, tag), "--insecure"],
            )
            .code(0)
            .stdout_has("published");
    }
}

/// A consumer who trusts `author`, with an empty workspace.
fn consumer(author: Option<&Author>) -> (User, PathBuf) {
    let user = User::new();
    if let Some(a) = author {
        user.run(
            user.home.path(),
            &["trust", "add", &a.key, "--name", "acme"],
        )
        .code(0);
    }
    let ws = user.dir("ws");
    (user, ws)
}

fn goal(ws: &Path, extra: &str) {
    std::fs::write(
        ws.join("kazi.toml"),
        format!(
            "id = \"uses-a-package\"\n\n[[predicate]]\nid = \"has-text\"\nuse = \"{NAME}@^1\"\npath = \"notes.txt\"\ntext = \"done\"\n{extra}"
        ),
    )
    .unwrap();
}

fn lock_text(ws: &Path) -> String {
    std::fs::read_to_string(ws.join("kazi.lock")).unwrap_or_default()
}

// ---------------------------------------------------------------------------------

#[test]
fn a_published_package_is_added_and_used_by_a_goal() {
    let f = fixtures();
    assert!(
        f.v1_build.contains("acme:has-text 1.0.0 (predicate)"),
        "{}",
        f.v1_build
    );
    assert!(f.v1_build.contains("digest  sha256:"), "{}", f.v1_build);
    assert!(
        f.v1_build
            .contains("world   kazi:predicate/predicate@0.2.0"),
        "{}",
        f.v1_build
    );
    // What the three-line manifest did not say came from the component.
    let published = std::fs::read_to_string(f.v1.join("kazi-package.toml")).unwrap();
    for line in [
        "name = \"acme:has-text\"",
        "version = \"1.0.0\"",
        "kind = \"predicate\"",
        "world = \"kazi:predicate/predicate@0.2.0\"",
    ] {
        assert!(published.contains(line), "{line}: {published}");
    }
    assert!(f.v1_build.contains("size    "), "{}", f.v1_build);

    let reg = Registry::start();
    let author = Author::new();
    author.publish(&reg, &f.v1, "1.0.0", true);

    // A standard wasm OCI artifact: its config lists what the component exports and
    // imports, for other tools.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = rt.block_on(async {
        let client = Client::with_credentials(&reg.addr, true, None);
        let r: Reference = reg.reference(REPO, "1.0.0").parse().unwrap();
        let (bytes, _) = client.get_manifest(&r).await.unwrap();
        let m: ImageManifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(m.config.media_type, "application/vnd.wasm.config.v0+json");
        let blob = client
            .get_blob(REPO, &m.config.digest, "the config")
            .await
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&blob).unwrap()
    });
    let exports = &config["component"]["exports"];
    assert_eq!(exports.as_array().map(Vec::len), Some(1), "{config}");
    assert!(
        exports[0]
            .as_str()
            .unwrap()
            .starts_with("kazi:predicate/evaluator@"),
        "{config}"
    );
    assert!(
        config["component"]["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("kazi:host/")),
        "{config}"
    );

    let (user, ws) = consumer(Some(&author));
    let ref_ = reg.reference(REPO, "1.0.0");
    // Not on a terminal and no --yes: shown, then refused.
    user.run(&ws, &["pkg", "add", &ref_, "--insecure"])
        .code(1)
        .stderr_has("asks for nothing beyond reading the workspace")
        .stderr_has("signed by ")
        .stderr_has("(trusted: acme)")
        .stderr_has("hint: review what it asks for above and pass --yes");
    assert!(!ws.join("kazi.lock").exists());

    // Without a tag: the newest version.
    let plain = format!("{}/{REPO}", reg.addr);
    user.run(&ws, &["pkg", "add", &plain, "--insecure", "--yes"])
        .code(0)
        .stdout_has("added acme:has-text 1.0.0")
        .stderr_has("use = \"acme:has-text@^1\"");
    let lock = lock_text(&ws);
    for needle in [
        "name = \"acme:has-text\"",
        "version = \"1.0.0\"",
        &format!("registry = \"{}\"", reg.addr),
        "digest = \"sha256:",
        &format!("signer = \"{}\"", author.key),
    ] {
        assert!(lock.contains(needle), "kazi.lock lacks {needle:?}:\n{lock}");
    }
    user.run(&ws, &["pkg", "list"])
        .code(0)
        .stdout_has("acme:has-text 1.0.0 (predicate)");
    user.run(&ws, &["pkg", "verify"])
        .code(0)
        .stdout_has("ok    acme:has-text 1.0.0")
        .stdout_has("signature verified");

    goal(&ws, "");
    std::fs::write(ws.join("notes.txt"), "not yet\n").unwrap();
    user.run(&ws, &["check", "kazi.toml"])
        .code(1)
        .stdout_has("FAIL  has-text: notes.txt does not contain \"done\"");
    std::fs::write(ws.join("notes.txt"), "all done\n").unwrap();
    user.run(&ws, &["check", "kazi.toml"])
        .code(0)
        .stdout_has("PASS  has-text: notes.txt contains \"done\" at line 1");

    // The goal's requirement is checked against the lock, never silently widened.
    let text = std::fs::read_to_string(ws.join("kazi.toml")).unwrap();
    std::fs::write(ws.join("kazi.toml"), text.replace("@^1", "@^2")).unwrap();
    user.run(&ws, &["check", "kazi.toml"])
        .code(5)
        .stderr_has("pins acme:has-text 1.0.0, which does not satisfy `^2`")
        .stderr_has("hint: install a matching version");

    // A config the package's schema refuses is a load error, as for any predicate.
    goal(&ws, "colour = \"red\"\n");
    user.run(&ws, &["check", "kazi.toml"])
        .code(5)
        .stderr_has("colour");

    // A fresh clone on another machine: the lock is there, the store is not.
    let (other, other_ws) = consumer(Some(&author));
    std::fs::copy(ws.join("kazi.lock"), other_ws.join("kazi.lock")).unwrap();
    goal(&other_ws, "");
    std::fs::write(other_ws.join("notes.txt"), "done\n").unwrap();
    other
        .run(&other_ws, &["check", "kazi.toml"])
        .code(5)
        .stderr_has("is in kazi.lock but not installed on this machine")
        .stderr_has("run `kazi pkg add`");
    other
        .run(&other_ws, &["pkg", "add", "--yes"])
        .code(0)
        .stdout_has("1 installed");
    other.run(&other_ws, &["check", "kazi.toml"]).code(0);
}

#[test]
fn a_local_package_is_added_without_a_registry() {
    let f = fixtures();
    let author = Author::new();
    let dir = copy_built(&f.v1, &author.user.dir("local"));
    author
        .user
        .run(
            author.user.home.path(),
            &["pkg", "sign", dir.to_str().unwrap()],
        )
        .code(0);
    let (user, ws) = consumer(Some(&author));
    user.run(&ws, &["pkg", "add", dir.to_str().unwrap(), "--yes"])
        .code(0)
        .stdout_has("added acme:has-text 1.0.0");
    assert!(!lock_text(&ws).contains("registry ="), "{}", lock_text(&ws));
    goal(&ws, "");
    std::fs::write(ws.join("notes.txt"), "done\n").unwrap();
    user.run(&ws, &["check", "kazi.toml"]).code(0);
}

#[test]
fn a_blob_altered_in_the_registry_is_refused() {
    let f = fixtures();
    let reg = Registry::start();
    let author = Author::new();
    author.publish(&reg, &f.v1, "1.0.0", true);
    let text = std::fs::read_to_string(f.v1.join("kazi-package.toml")).unwrap();
    let digest = text
        .lines()
        .find_map(|l| l.strip_prefix("digest = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    let blob = reg.blob_file(&digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();

    let (user, ws) = consumer(Some(&author));
    user.run(
        &ws,
        &[
            "pkg",
            "add",
            &reg.reference(REPO, "1.0.0"),
            "--insecure",
            "--yes",
        ],
    )
    .code(1)
    .stderr_has("does not match its digest")
    .stderr_has(&format!("expected {digest}"))
    .stderr_has("altered after it was published");
    assert!(!ws.join("kazi.lock").exists());
}

#[test]
fn a_bad_signature_is_refused_even_with_allow_unsigned() {
    let f = fixtures();
    let reg = Registry::start();
    let author = Author::new();
    author.publish(&reg, &f.v1, "1.0.0", true);

    // Someone with write access to the registry swaps the signature bytes.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = Client::with_credentials(&reg.addr, true, None);
        let r: Reference = reg.reference(REPO, "1.0.0").parse().unwrap();
        let (bytes, _) = client.get_manifest(&r).await.unwrap();
        let mut m: ImageManifest = serde_json::from_slice(&bytes).unwrap();
        let sig = m.annotations.get_mut(KAZI_SIGNATURE_ANNOTATION).unwrap();
        let at = sig.find("signature = \"").unwrap() + "signature = \"".len();
        let flipped = if &sig[at..at + 1] == "A" { "B" } else { "A" };
        sig.replace_range(at..at + 1, flipped);
        client
            .put_manifest(REPO, "1.0.0", &serde_json::to_vec(&m).unwrap())
            .await
            .unwrap();
    });

    let (user, ws) = consumer(Some(&author));
    let ref_ = reg.reference(REPO, "1.0.0");
    for extra in [&[][..], &["--allow-unsigned"][..]] {
        let mut args = vec!["pkg", "add", &ref_, "--insecure", "--yes"];
        args.extend_from_slice(extra);
        user.run(&ws, &args)
            .code(1)
            .stderr_has("does not verify")
            .stderr_has("do not use it");
    }
    assert!(!ws.join("kazi.lock").exists());
}

#[test]
fn unsigned_and_untrusted_packages_need_the_flag() {
    let f = fixtures();
    let reg = Registry::start();
    let author = Author::new();
    author.publish(&reg, &f.v1, "1.0.0", false);
    let ref_ = reg.reference(REPO, "1.0.0");

    let (user, ws) = consumer(Some(&author));
    user.run(&ws, &["pkg", "add", &ref_, "--insecure", "--yes"])
        .code(1)
        .stderr_has("it is not signed")
        .stderr_has("pass --allow-unsigned");
    assert!(!ws.join("kazi.lock").exists());
    user.run(
        &ws,
        &[
            "pkg",
            "add",
            &ref_,
            "--insecure",
            "--yes",
            "--allow-unsigned",
        ],
    )
    .code(0)
    .stderr_has("not signed");
    assert!(!lock_text(&ws).contains("signer"), "{}", lock_text(&ws));
    user.run(&ws, &["pkg", "verify"])
        .code(0)
        .stdout_has("unsigned");

    // Signed, but by a key this user never trusted.
    author.publish(&reg, &f.v1, "1.0.0", true);
    let (stranger, ws2) = consumer(None);
    stranger
        .run(&ws2, &["pkg", "add", &ref_, "--insecure", "--yes"])
        .code(1)
        .stderr_has("which is not in your trusted keys")
        .stderr_has(&format!(
            "hint: if you know this key belongs to the publisher, `kazi trust add {}`",
            author.key
        ));
}

#[test]
fn a_package_asking_for_an_ungranted_exec_is_refused_at_load() {
    let f = fixtures();
    let reg = Registry::start();
    let author = Author::new();
    author.publish(&reg, &f.v2, "1.1.0", true);
    let (user, ws) = consumer(Some(&author));
    user.run(
        &ws,
        &[
            "pkg",
            "add",
            &reg.reference(REPO, "1.1.0"),
            "--insecure",
            "--yes",
        ],
    )
    .code(0)
    .stderr_has("run programs: git")
    .stderr_has("exec = [\"git\"]");
    goal(&ws, "");
    std::fs::write(ws.join("notes.txt"), "done\n").unwrap();
    user.run(&ws, &["check", "kazi.toml"])
        .code(5)
        .stderr_has("predicate \"has-text\" (package acme:has-text 1.1.0) asks for capabilities the goal does not grant")
        .stderr_has("hint: add under this predicate:\n    [predicate.allow]\n    exec = [\"git\"]");
    goal(&ws, "\n[predicate.allow]\nexec = [\"git\"]\n");
    user.run(&ws, &["check", "kazi.toml"]).code(0);
}

#[test]
fn an_update_that_widens_capabilities_needs_approval() {
    let f = fixtures();
    let reg = Registry::start();
    let author = Author::new();
    author.publish(&reg, &f.v1, "1.0.0", true);
    let (user, ws) = consumer(Some(&author));
    user.run(
        &ws,
        &[
            "pkg",
            "add",
            &reg.reference(REPO, "1.0.0"),
            "--insecure",
            "--yes",
        ],
    )
    .code(0);
    user.run(&ws, &["pkg", "update"])
        .code(0)
        .stdout_has("acme:has-text 1.0.0 is up to date");

    author.publish(&reg, &f.v2, "1.1.0", true);
    user.run(&ws, &["pkg", "update"])
        .code(1)
        .stderr_has("NEW capabilities compared with 1.0.0: run programs: git")
        .stderr_has("refusing to update acme:has-text 1.0.0 to 1.1.0: it asks for new capabilities (run programs: git)")
        .stderr_has("pass --yes");
    assert!(
        lock_text(&ws).contains("version = \"1.0.0\""),
        "{}",
        lock_text(&ws)
    );

    user.run(&ws, &["pkg", "update", "--yes"])
        .code(0)
        .stdout_has("updated acme:has-text 1.0.0 to 1.1.0")
        .stderr_has("exec = [\"git\"]");
    let lock = lock_text(&ws);
    assert!(
        lock.contains("version = \"1.1.0\"") && lock.contains("exec = [\"git\"]"),
        "{lock}"
    );
}

#[test]
fn a_registry_that_is_down_or_lacks_the_name_is_a_clear_error() {
    let f = fixtures();
    let (user, ws) = consumer(None);
    let down = format!("127.0.0.1:{}", free_port());
    user.run(
        &ws,
        &[
            "pkg",
            "add",
            &format!("{down}/{REPO}:1.0.0"),
            "--insecure",
            "--yes",
        ],
    )
    .code(1)
    .stderr_has(&format!("cannot talk to the registry {down}"))
    .stderr_has("hint: check that the registry");

    let reg = Registry::start();
    let author = Author::new();
    author.publish(&reg, &f.v1, "1.0.0", true);
    user.run(
        &ws,
        &[
            "pkg",
            "add",
            &reg.reference("acme/nothing", "1.0.0"),
            "--insecure",
            "--yes",
        ],
    )
    .code(1)
    .stderr_has(&format!(
        "the registry {} has no package acme/nothing:1.0.0",
        reg.addr
    ))
    .stderr_has("hint: check the name");
    user.run(
        &ws,
        &[
            "pkg",
            "add",
            &reg.reference(REPO, "9.9.9"),
            "--insecure",
            "--yes",
        ],
    )
    .code(1)
    .stderr_has("has no package acme/has-text:9.9.9");
    user.run(
        &ws,
        &[
            "pkg",
            "add",
            &format!("{}/acme/nothing", reg.addr),
            "--insecure",
            "--yes",
        ],
    )
    .code(1)
    .stderr_has("has no package acme/nothing");
    // HTTPS against a plain-HTTP registry says to pass --insecure.
    user.run(&ws, &["pkg", "add", &reg.reference(REPO, "1.0.0"), "--yes"])
        .code(1)
        .stderr_has("pass --insecure");
    // Not a reference at all.
    user.run(&ws, &["pkg", "add", "acme/has-text:1.0.0", "--yes"])
        .code(2)
        .stderr_has("REGISTRY/NAMESPACE/NAME");
    assert!(!ws.join("kazi.lock").exists());
}

#[test]
fn tampering_after_install_is_caught_at_load_and_by_verify() {
    let f = fixtures();
    let reg = Registry::start();
    let author = Author::new();
    author.publish(&reg, &f.v1, "1.0.0", true);
    let (user, ws) = consumer(Some(&author));
    user.run(
        &ws,
        &[
            "pkg",
            "add",
            &reg.reference(REPO, "1.0.0"),
            "--insecure",
            "--yes",
        ],
    )
    .code(0);
    goal(&ws, "");
    std::fs::write(ws.join("notes.txt"), "done\n").unwrap();
    user.run(&ws, &["check", "kazi.toml"]).code(0);

    // The installed blob is altered on disk.
    let lock = lock_text(&ws);
    let digest = lock
        .lines()
        .find_map(|l| l.strip_prefix("digest = \""))
        .unwrap()
        .trim_end_matches('"');
    let hex = digest.strip_prefix("sha256:").unwrap();
    let blob = user
        .home
        .path()
        .join(".local/share/kazi/packages/sha256")
        .join(hex);
    let original = std::fs::read(&blob).unwrap();
    let mut bytes = original.clone();
    bytes[100] ^= 1;
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, &bytes).unwrap();
    user.run(&ws, &["pkg", "verify"])
        .code(4)
        .stdout_has("FAIL  acme:has-text 1.0.0")
        .stderr_has("hint: reinstall");
    user.run(&ws, &["check", "kazi.toml"])
        .code(5)
        .stderr_has("does not match its digest")
        .stderr_has("hint: run `kazi pkg verify`");
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, &original).unwrap();

    // kazi.lock edited to claim another version: the stored manifest disagrees.
    std::fs::write(
        ws.join("kazi.lock"),
        lock.replace("version = \"1.0.0\"", "version = \"1.0.1\""),
    )
    .unwrap();
    user.run(&ws, &["check", "kazi.toml"])
        .code(5)
        .stderr_has("tampered with");
}

#[test]
fn two_adds_at_once_keep_the_store_and_the_lock_whole() {
    let f = fixtures();
    let reg = Registry::start();
    let author = Author::new();
    author.publish(&reg, &f.v1, "1.0.0", true);
    // A second package with the same component under another namespace, built from
    // a manifest that points at the component (no cargo).
    let beta = author.user.dir("beta");
    std::fs::write(
        beta.join("kazi-package.toml"),
        manifest("1.0.0").replace("acme:", "beta:")
            + &format!(
                "component = {:?}\n",
                f.v1.join("component.wasm").display().to_string()
            ),
    )
    .unwrap();
    let b = beta.to_str().unwrap();
    let home = author.user.home.path();
    author
        .user
        .run(home, &["pkg", "build", b, "--no-cargo"])
        .code(0)
        .stdout_has("beta:has-text 1.0.0");
    author.user.run(home, &["pkg", "sign", b]).code(0);
    author
        .user
        .run(
            home,
            &[
                "pkg",
                "publish",
                b,
                &reg.reference("beta/has-text", "1.0.0"),
                "--insecure",
            ],
        )
        .code(0);

    for round in 0..3 {
        let (user, ws) = consumer(Some(&author));
        let refs = [
            reg.reference(REPO, "1.0.0"),
            reg.reference("beta/has-text", "1.0.0"),
        ];
        let children: Vec<Child> = refs
            .iter()
            .map(|r| {
                user.kazi(&ws)
                    .args(["pkg", "add", r, "--insecure", "--yes"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            Run::new(&["pkg", "add", "(concurrent)"], out).code(0);
        }
        let lock = lock_text(&ws);
        assert!(
            lock.contains("name = \"acme:has-text\"") && lock.contains("name = \"beta:has-text\""),
            "round {round}: kazi.lock lost an entry:\n{lock}"
        );
        user.run(&ws, &["pkg", "verify"]).code(0);
        user.run(&ws, &["pkg", "remove", "beta:has-text"]).code(0);
        user.run(&ws, &["pkg", "remove", "beta:has-text"])
            .code(2)
            .stderr_has("kazi pkg list");
        user.run(&ws, &["pkg", "list"])
            .code(0)
            .stdout_has("acme:has-text");
    }
}

#[test]
fn credentials_come_from_the_environment_or_the_docker_config() {
    let f = fixtures();
    let reg = Registry::start_with(true);
    let author = Author::new();
    let dir = copy_built(&f.v1, &author.user.dir("auth"));
    let d = dir.to_str().unwrap();
    let home = author.user.home.path();
    author.user.run(home, &["pkg", "sign", d]).code(0);
    let ref_ = reg.reference(REPO, "1.0.0");
    author
        .user
        .run(home, &["pkg", "publish", d, &ref_, "--insecure"])
        .code(1)
        .stderr_has(&format!("the registry {} wants a login", reg.addr))
        .stderr_has("hint: set KAZI_REGISTRY_USERNAME and KAZI_REGISTRY_PASSWORD");
    let out = author
        .user
        .kazi(home)
        .args(["pkg", "publish", d, &ref_, "--insecure"])
        .env("KAZI_REGISTRY_USERNAME", "alice")
        .env("KAZI_REGISTRY_PASSWORD", "wrong")
        .output()
        .unwrap();
    Run::new(&["pkg", "publish", "(wrong password)"], out)
        .code(1)
        .stderr_has("refused the credentials of `alice`");
    let out = author
        .user
        .kazi(home)
        .args(["pkg", "publish", d, &ref_, "--insecure"])
        .env("KAZI_REGISTRY_USERNAME", "alice")
        .env("KAZI_REGISTRY_PASSWORD", "s3cret")
        .output()
        .unwrap();
    Run::new(&["pkg", "publish", "(env login)"], out).code(0);

    // The consumer logged in with `docker login`: ~/.docker/config.json.
    let (user, ws) = consumer(Some(&author));
    let docker = user.dir(".docker");
    std::fs::write(
        docker.join("config.json"),
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"YWxpY2U6czNjcmV0\"}}}}}}",
            reg.addr
        ),
    )
    .unwrap();
    user.run(&ws, &["pkg", "add", &ref_, "--insecure", "--yes"])
        .code(0)
        .stdout_has("added acme:has-text 1.0.0");
}

/// `kazi pkg build` and `kazi pkg add` read a component under the same size cap as
/// any component kazi loads, before reading it whole.
#[test]
fn an_oversized_component_is_refused_before_it_is_read() {
    let author = User::new();
    let dir = author.dir("huge");
    let big = dir.join("big.wasm");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    std::fs::write(
        dir.join("kazi-package.toml"),
        "namespace = \"acme\"\ndescription = \"d\"\nlicense = \"MIT\"\ncomponent = \"big.wasm\"\n",
    )
    .unwrap();
    author
        .run(
            author.home.path(),
            &["pkg", "build", dir.to_str().unwrap(), "--no-cargo"],
        )
        .code(5)
        .stderr_has(
            "big.wasm is 68157440 bytes, more than the 67108864-byte limit for a component",
        );
}

#[test]
fn a_manifest_that_contradicts_the_component_is_refused_key_by_key() {
    let f = fixtures();
    let author = User::new();
    let dir = author.dir("contradicts");
    let component = f.v1.join("component.wasm").display().to_string();
    let write = |extra: &str| {
        std::fs::write(
            dir.join("kazi-package.toml"),
            format!(
                "namespace = \"acme\"\ndescription = \"d\"\nlicense = \"MIT\"\ncomponent = {component:?}\n{extra}"
            ),
        )
        .unwrap();
    };
    let d = dir.to_str().unwrap();
    let home = author.home.path();
    // Nothing repeated: everything from the component.
    write("");
    author
        .run(home, &["pkg", "build", d, "--no-cargo"])
        .code(0)
        .stdout_has("acme:has-text 1.0.0 (predicate)");
    // The same values repeated: fine.
    write("name = \"acme:has-text\"\nversion = \"1.0.0\"\nkind = \"predicate\"\n");
    author.run(home, &["pkg", "build", d, "--no-cargo"]).code(0);
    // Each contradiction names the key, both values and the fix; all are listed.
    write("version = \"9.9.9\"\nname = \"acme:other\"\n\n[capabilities]\nexec = [\"git\"]\n");
    author
        .run(home, &["pkg", "build", d, "--no-cargo"])
        .code(5)
        .stderr_has("does not agree with")
        .stderr_has("- `name`: the manifest says `acme:other`, the component says `has-text` (describe()); fix: ")
        .stderr_has("- `version`: the manifest says `9.9.9`, the component says `1.0.0` (describe()); fix: remove `version`")
        .stderr_has("- `capabilities`: the manifest says run programs: git, the component says nothing beyond reading the workspace (describe()); fix: remove [capabilities]")
        .stderr_has("hint: a key kazi can read from the component need not be in the manifest");
    write("kind = \"profile\"\n");
    author
        .run(home, &["pkg", "build", d, "--no-cargo"])
        .code(5)
        .stderr_has("- `kind`: the manifest says `profile`, the component says `predicate`; fix: remove `kind`");
    write("world = \"kazi:predicate/predicate@0.1.0\"\n");
    author
        .run(home, &["pkg", "build", d, "--no-cargo"])
        .code(5)
        .stderr_has("- `world`: the manifest says `kazi:predicate/predicate@0.1.0`, the component says `kazi:predicate/predicate@0.2.0`; fix: remove `world`");

    // `kazi pkg init` asks for what it cannot find.
    let bare = author.dir("bare");
    let b = bare.to_str().unwrap();
    author
        .run(home, &["pkg", "init", b, "--namespace", "acme"])
        .code(2)
        .stderr_has("it needs a description")
        .stderr_has("hint: pass --description");
    author
        .run(
            home,
            &[
                "pkg",
                "init",
                b,
                "--namespace",
                "Acme",
                "--description",
                "x",
                "--license",
                "MIT",
            ],
        )
        .code(2)
        .stderr_has("`Acme` is not a namespace");
    author
        .run(
            home,
            &[
                "pkg",
                "init",
                d,
                "--namespace",
                "acme",
                "--description",
                "x",
                "--license",
                "MIT",
            ],
        )
        .code(2)
        .stderr_has("it exists already; hint: edit it, or pass --force");
}
