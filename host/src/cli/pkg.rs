//! `kazi pkg`: build, sign and publish packages; add, list, remove, verify and update
//! the packages a workspace uses (its `kazi.lock`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use super::CliError;
use super::output::Printer;
use crate::exit;
use crate::pkg::build::{self, read_built};
use crate::pkg::install::{self, Origin, Signer};
use crate::pkg::lock::{self, LockedPackage};
use crate::pkg::oci::{Client, Package, Reference};
use crate::pkg::sign::{self, SIGNATURE_FILE, SecretKey, Signature, TrustStore};
use crate::pkg::store::Store;
use crate::pkg::{Capabilities, PkgError};
use crate::sandbox::Sandbox;

#[derive(Debug, Subcommand)]
pub enum PkgCommand {
    /// Build the component next to `kazi-package.toml`, check that its world and
    /// `describe` agree with the manifest, and write target/kazi-package/.
    Build(BuildArgs),
    /// Create an ed25519 signing key; prints the public key others trust.
    Keygen(KeygenArgs),
    /// Sign a built package with your key.
    Sign(SignArgs),
    /// Push a built (and signed) package to an OCI registry.
    ///
    /// `kazi pkg publish [DIR] REGISTRY/NAMESPACE/NAME:VERSION`. Credentials come from
    /// KAZI_REGISTRY_USERNAME/KAZI_REGISTRY_PASSWORD or `~/.docker/config.json`.
    Publish(PublishArgs),
    /// Install a package into this workspace: download, verify its digest and
    /// signature, show what it asks for, and pin it in kazi.lock.
    ///
    /// Without REF, installs what kazi.lock already records (a fresh clone).
    Add(AddArgs),
    /// List the packages in kazi.lock.
    List(ListArgs),
    /// Remove a package from kazi.lock.
    Remove(RemoveArgs),
    /// Re-hash every installed package against kazi.lock and re-check signatures
    /// (exit 0: all intact; 1: some not installed; 4: some altered).
    Verify(WorkspaceArg),
    /// Move packages to their newest compatible version; a version that asks for new
    /// capabilities (or is signed by another key) needs approval again.
    Update(UpdateArgs),
}

#[derive(Debug, Args)]
pub struct WorkspaceArg {
    /// The workspace whose kazi.lock to use.
    #[arg(long, short = 'w', default_value = ".")]
    workspace: PathBuf,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The package directory (with kazi-package.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Do not run cargo; package the file named by `component` as it is.
    #[arg(long)]
    no_cargo: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key's name: it is written to $KAZI_CONFIG/keys/NAME.key (and .pub).
    #[arg(long, default_value = "default")]
    name: String,
    /// Replace an existing key of that name.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The package directory (built with `kazi pkg build`).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The secret key file [default: the `default` key from `kazi pkg keygen`].
    #[arg(long)]
    key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// `[DIR] REGISTRY/NAMESPACE/NAME[:VERSION]` (DIR defaults to `.`, VERSION to the
    /// package's version).
    #[arg(num_args = 1..=2, required = true, value_name = "[DIR] REFERENCE")]
    args: Vec<String>,
    /// Talk plain HTTP (a local test registry).
    #[arg(long)]
    insecure: bool,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// `REGISTRY/NAMESPACE/NAME[:VERSION]`, or a path to a built package directory.
    reference: Option<String>,
    #[command(flatten)]
    ws: WorkspaceArg,
    /// Install without asking (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Accept a package that is unsigned or signed by a key you do not trust (a
    /// signature that does not verify is refused anyway).
    #[arg(long)]
    allow_unsigned: bool,
    /// Talk plain HTTP (a local test registry).
    #[arg(long)]
    insecure: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    ws: WorkspaceArg,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The package name, `namespace:name`.
    name: String,
    #[command(flatten)]
    ws: WorkspaceArg,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Update only this package (`namespace:name`).
    name: Option<String>,
    /// Move to exactly this version (with NAME), even across a major version.
    #[arg(long, requires = "name")]
    to: Option<semver::Version>,
    #[command(flatten)]
    ws: WorkspaceArg,
    /// Approve new capabilities without asking.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Accept an unsigned version or one signed by a key you do not trust.
    #[arg(long)]
    allow_unsigned: bool,
}

pub async fn run(cmd: PkgCommand, printer: &Printer) -> Result<u8, CliError> {
    match cmd {
        PkgCommand::Build(a) => build(a, printer).await,
        PkgCommand::Keygen(a) => keygen(a, printer),
        PkgCommand::Sign(a) => sign(a, printer),
        PkgCommand::Publish(a) => publish(a, printer).await,
        PkgCommand::Add(a) => add(a, printer).await,
        PkgCommand::List(a) => list(a, printer),
        PkgCommand::Remove(a) => remove(a, printer),
        PkgCommand::Verify(a) => verify(a, printer),
        PkgCommand::Update(a) => update(a, printer).await,
    }
}

/// How a package error ends the command.
fn fail(e: PkgError) -> CliError {
    match e {
        PkgError::Manifest { .. } | PkgError::Build(_) | PkgError::Lock(_) => {
            CliError::Invalid(e.to_string())
        }
        _ => CliError::Failed(e.to_string()),
    }
}

fn sandbox() -> Result<Sandbox, CliError> {
    Sandbox::with_default_cache().map_err(|e| CliError::Failed(e.to_string()))
}

fn workspace(ws: &WorkspaceArg) -> Result<PathBuf, CliError> {
    let dir = ws.workspace.canonicalize().map_err(|e| {
        CliError::Usage(format!(
            "the workspace {} is not usable: {e}",
            ws.workspace.display()
        ))
    })?;
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "the workspace {} is not a directory",
            dir.display()
        )));
    }
    Ok(dir)
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

async fn build(args: BuildArgs, printer: &Printer) -> Result<u8, CliError> {
    let sandbox = sandbox()?;
    let built = build::build(&args.dir, &sandbox, !args.no_cargo)
        .await
        .map_err(fail)?;
    let m = &built.package.manifest;
    if built.dropped_signature {
        printer.notice(&format!(
            "removed the old {SIGNATURE_FILE}: it signed a different build; sign again with `kazi pkg sign`"
        ));
    }
    if args.json {
        printer.json(&json!({
            "schema_version": 1,
            "name": m.name.to_string(),
            "version": m.version.to_string(),
            "kind": m.kind.as_str(),
            "size": m.component.size,
            "digest": m.component.digest,
            "manifest_digest": built.package.manifest_digest(),
            "capabilities": m.capabilities,
            "dir": built.dir,
        }));
    } else {
        printer.out(&format!("{} {} ({})", m.name, m.version, m.kind));
        printer.out(&format!("  size    {} bytes", m.component.size));
        printer.out(&format!("  digest  {}", m.component.digest));
        let caps = m.capabilities.lines();
        printer.out(&format!(
            "  asks    {}",
            if caps.is_empty() {
                "nothing beyond reading the workspace".to_owned()
            } else {
                caps.join("; ")
            }
        ));
        printer.out(&format!("  built   {}", built.dir.display()));
    }
    Ok(exit::SUCCESS)
}

fn keygen(args: KeygenArgs, printer: &Printer) -> Result<u8, CliError> {
    if args.name.is_empty() || args.name.contains(['/', '\\']) || args.name.starts_with('.') {
        return Err(CliError::Usage(format!(
            "--name `{}` must be a plain file name",
            args.name
        )));
    }
    let path = sign::key_path(&args.name);
    let public = sign::generate(&path, args.force).map_err(fail)?;
    printer.out(&public.to_string());
    printer.progress(&format!(
        "wrote the secret key to {} (keep it private) and the public key to {}",
        path.display(),
        path.with_extension("pub").display()
    ));
    printer.progress(&format!(
        "sign with `kazi pkg sign DIR`; people who install your packages trust it with:\n  kazi trust add {public}"
    ));
    Ok(exit::SUCCESS)
}

fn sign(args: SignArgs, printer: &Printer) -> Result<u8, CliError> {
    let key_path = args.key.unwrap_or_else(|| sign::key_path("default"));
    let key = SecretKey::read(&key_path).map_err(fail)?;
    let (dir, package) = read_built(&args.dir).map_err(fail)?;
    let digest = package.manifest_digest();
    let sig = Signature::create(&key, &package.manifest, &digest);
    let path = dir.join(SIGNATURE_FILE);
    crate::pkg::write_atomically(&path, sig.to_text().as_bytes(), 0o644).map_err(fail)?;
    printer.out(&format!(
        "signed {} (manifest {}) with {}",
        package.manifest.title(),
        short(&digest),
        sig.signer
    ));
    printer.progress(&format!("wrote {}", path.display()));
    Ok(exit::SUCCESS)
}

async fn publish(args: PublishArgs, printer: &Printer) -> Result<u8, CliError> {
    let (dir, reference) = match args.args.as_slice() {
        [r] => (PathBuf::from("."), r.as_str()),
        [d, r] => (PathBuf::from(d), r.as_str()),
        _ => unreachable!("clap takes one or two values"),
    };
    let mut reference: Reference = reference.parse().map_err(CliError::Usage)?;
    if reference.digest.is_some() {
        return Err(CliError::Usage(format!(
            "publish to a tag, not a digest: `{}/{}:VERSION`",
            reference.registry, reference.repository
        )));
    }
    let (_, package) = read_built(&dir).map_err(fail)?;
    let m = &package.manifest;
    let version = m.version.to_string();
    match &reference.tag {
        None => reference.tag = Some(version.clone()),
        Some(t) if *t == version => {}
        Some(t) => {
            return Err(CliError::Usage(format!(
                "the tag `{t}` is not the package's version {version}; hint: publish it as `{}`",
                reference.with_tag(&version)
            )));
        }
    }
    match &package.signature {
        Some(sig) => sig.verify(m, &package.manifest_digest()).map_err(|_| {
            CliError::Failed(format!(
                "the signature in {} does not match this build of {}; hint: sign it again with `kazi pkg sign {}`",
                dir.display(),
                m.title(),
                dir.display()
            ))
        })?,
        None => printer.notice(&format!(
            "{} is not signed; people will need --allow-unsigned to install it (sign it with `kazi pkg sign {}`)",
            m.title(),
            dir.display()
        )),
    }
    if reference.repository.rsplit('/').next() != Some(m.name.name.as_str()) {
        printer.notice(&format!(
            "the repository `{}` does not end in the package's name `{}`; `{}/{}/{}` is the usual place",
            reference.repository, m.name.name, reference.registry, m.name.namespace, m.name.name
        ));
    }
    let sandbox = sandbox()?;
    let interfaces = build::interfaces(&sandbox, &package.component);
    let client = Client::new(&reference.registry, args.insecure).map_err(fail)?;
    printer.progress(&format!("publishing {} to {reference}", m.title()));
    let digest = client
        .publish(&reference, &package, interfaces)
        .await
        .map_err(fail)?;
    printer.out(&format!("published {} to {reference}", m.title()));
    printer.out(&format!("  component  {}", m.component.digest));
    printer.out(&format!("  manifest   {digest}"));
    Ok(exit::SUCCESS)
}

/// Everything a person needs to decide about a package, on stderr.
fn show_package(package: &Package, origin: &Origin, signer: &Signer, extra: &[String]) {
    let m = &package.manifest;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{} ({}) from {}", m.title(), m.kind, origin.source());
    let _ = writeln!(err, "  {}", m.description);
    let _ = writeln!(err, "  license  {}", m.license);
    if let Some(r) = &m.repository {
        let _ = writeln!(err, "  source   {r}");
    }
    let _ = writeln!(err, "  digest   {}", m.component.digest);
    let _ = writeln!(err, "  {}", signer.describe());
    let caps = m.capabilities.lines();
    if caps.is_empty() {
        let _ = writeln!(err, "  asks for nothing beyond reading the workspace");
    } else {
        let _ = writeln!(err, "  asks to:");
        for c in caps {
            let _ = writeln!(err, "    - {c}");
        }
        let _ = writeln!(
            err,
            "  (a goal must still grant these under [predicate.allow])"
        );
    }
    for line in extra {
        let _ = writeln!(err, "  {line}");
    }
}

/// Ask `question` on the terminal; without one, refuse with `refusal` unless `yes`.
fn confirm(question: &str, yes: bool, refusal: &str) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Failed(format!(
            "{refusal}: stdin is not a terminal, so nobody can approve it; hint: review what it asks for above and pass --yes"
        )));
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Failed(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::Failed(format!("{refusal}: not approved")))
    }
}

fn trust_store() -> Result<TrustStore, CliError> {
    TrustStore::read(&TrustStore::default_path()).map_err(fail)
}

/// Fetch a package from REF: a local directory or a registry reference.
async fn fetch(reference: &str, insecure: bool) -> Result<(Origin, Package), CliError> {
    let path = Path::new(reference);
    let looks_local = path.exists()
        || reference.starts_with("./")
        || reference.starts_with("../")
        || reference.starts_with('/');
    if looks_local {
        return install::fetch_local(path).map_err(fail);
    }
    let r: Reference = reference.parse().map_err(|e| {
        CliError::Usage(format!("{e}; or give a path to a built package directory"))
    })?;
    install::fetch(&r, insecure).await.map_err(fail)
}

async fn add(args: AddArgs, printer: &Printer) -> Result<u8, CliError> {
    let ws = workspace(&args.ws)?;
    let Some(reference) = &args.reference else {
        return add_locked(&ws, &args, printer).await;
    };
    printer.progress(&format!("fetching {reference}"));
    let (origin, package) = fetch(reference, args.insecure).await?;
    let m = &package.manifest;
    let title = m.title();
    let signer = install::check_signature(&package, &trust_store()?).map_err(fail)?;
    install::enforce(&signer, args.allow_unsigned, &title).map_err(fail)?;
    let sandbox = sandbox()?;
    install::check_component(&sandbox, &package)
        .await
        .map_err(fail)?;

    let previous = lock::read(&ws)
        .map_err(fail)?
        .and_then(|l| l.get(&m.name).cloned());
    let mut extra = Vec::new();
    if let Some(p) = &previous {
        extra.push(format!("replaces {} {} in kazi.lock", p.name, p.version));
        let added = m.capabilities.added_to(&p.capabilities);
        if !added.is_empty() {
            extra.push(format!(
                "new compared with {}: {}",
                p.version,
                added.lines().join("; ")
            ));
        }
    }
    show_package(&package, &origin, &signer, &extra);
    confirm(
        &format!("install {title}?"),
        args.yes,
        &format!("refusing to install {title} without approval"),
    )?;
    let store = Store::open_default();
    let entry = install::store(&store, &package, &origin, &signer).map_err(fail)?;
    lock::update(&ws, |l| {
        l.upsert(entry.clone());
        Ok(())
    })
    .map_err(fail)?;
    printer.out(&format!(
        "added {title} to {}",
        lock::path_in(&ws).display()
    ));
    print_usage_hint(printer, &entry);
    Ok(exit::SUCCESS)
}

fn print_usage_hint(printer: &Printer, entry: &LockedPackage) {
    let req = if entry.version.major > 0 {
        format!("^{}", entry.version.major)
    } else {
        format!("^{}.{}", entry.version.major, entry.version.minor)
    };
    if entry.kind == crate::pkg::Kind::Profile {
        printer.progress(&format!(
            "use it in a goal:\n    [agent]\n    profile = \"{}@{req}\"",
            entry.name
        ));
        return;
    }
    let mut lines = vec![
        "use it in a goal:".to_owned(),
        "    [[predicate]]".to_owned(),
        format!("    id = \"{}\"", entry.name.name),
        format!("    use = \"{}@{req}\"", entry.name),
    ];
    let allow = entry.capabilities.allow_lines();
    if !allow.is_empty() {
        lines.push("    [predicate.allow]".to_owned());
        lines.extend(allow.into_iter().map(|l| format!("    {l}")));
    }
    printer.progress(&lines.join("\n"));
}

/// `kazi pkg add` with no reference: install exactly what kazi.lock records.
async fn add_locked(ws: &Path, args: &AddArgs, printer: &Printer) -> Result<u8, CliError> {
    let lock = lock::read(ws).map_err(fail)?.ok_or_else(|| {
        CliError::Usage(format!(
            "there is no {} to install from; hint: `kazi pkg add REGISTRY/NAMESPACE/NAME:VERSION`",
            lock::path_in(ws).display()
        ))
    })?;
    let store = Store::open_default();
    let trust = trust_store()?;
    let sandbox = sandbox()?;
    let mut installed = 0;
    for entry in &lock.packages {
        let title = format!("{} {}", entry.name, entry.version);
        let have = store.get(&entry.digest, &title).ok().flatten().is_some()
            && store
                .get(&entry.manifest, &title)
                .ok()
                .flatten()
                .is_some_and(|t| {
                    install::check_locked(entry, &String::from_utf8_lossy(&t)).is_ok()
                });
        if have {
            continue;
        }
        printer.progress(&format!("fetching {} ({title})", entry.source));
        let (origin, package) = match &entry.registry {
            Some(_) => {
                let r: Reference = entry.source.parse().map_err(|e| {
                    CliError::Invalid(format!("kazi.lock: {title} has a bad source: {e}"))
                })?;
                install::fetch(&r, entry.insecure || args.insecure)
                    .await
                    .map_err(fail)?
            }
            None => install::fetch_local(Path::new(&entry.source)).map_err(fail)?,
        };
        if package.manifest.component.digest != entry.digest
            || package.manifest_digest() != entry.manifest
        {
            return Err(CliError::Failed(format!(
                "{} now holds {} ({}), but kazi.lock pins {title} ({}); it was re-published or altered; hint: `kazi pkg update {}` to review the new one",
                entry.source,
                package.manifest.title(),
                package.manifest.component.digest,
                entry.digest,
                entry.name
            )));
        }
        let signer = install::check_signature(&package, &trust).map_err(fail)?;
        install::enforce(&signer, args.allow_unsigned, &title).map_err(fail)?;
        install::check_component(&sandbox, &package)
            .await
            .map_err(fail)?;
        show_package(&package, &origin, &signer, &[]);
        confirm(
            &format!("install {title}?"),
            args.yes,
            &format!("refusing to install {title} without approval"),
        )?;
        install::store(&store, &package, &origin, &signer).map_err(fail)?;
        installed += 1;
    }
    printer.out(&format!(
        "{installed} installed, {} already present, from {}",
        lock.packages.len() - installed,
        lock::path_in(ws).display()
    ));
    Ok(exit::SUCCESS)
}

fn list(args: ListArgs, printer: &Printer) -> Result<u8, CliError> {
    let ws = workspace(&args.ws)?;
    let packages = lock::read(&ws).map_err(fail)?.unwrap_or_default().packages;
    if args.json {
        printer.json(&json!({
            "schema_version": 1,
            "lock": lock::path_in(&ws),
            "packages": packages,
        }));
        return Ok(exit::SUCCESS);
    }
    if packages.is_empty() {
        printer.progress(&format!(
            "no packages in {}; add one with `kazi pkg add REGISTRY/NAMESPACE/NAME:VERSION`",
            ws.display()
        ));
        return Ok(exit::SUCCESS);
    }
    for p in &packages {
        let signer = p
            .signer
            .as_ref()
            .map_or("unsigned".to_owned(), ToString::to_string);
        printer.out(&format!(
            "{} {} ({})  {}  {}",
            p.name,
            p.version,
            p.kind,
            short(&p.digest),
            p.source
        ));
        printer.out(&format!("    signer  {signer}"));
        let caps = p.capabilities.lines();
        if !caps.is_empty() {
            printer.out(&format!("    asks    {}", caps.join("; ")));
        }
    }
    Ok(exit::SUCCESS)
}

fn remove(args: RemoveArgs, printer: &Printer) -> Result<u8, CliError> {
    let ws = workspace(&args.ws)?;
    let name: crate::pkg::PackageName = args.name.parse().map_err(CliError::Usage)?;
    let removed = lock::update(&ws, |l| {
        let before = l.packages.len();
        l.packages.retain(|p| p.name != name);
        Ok(before != l.packages.len())
    })
    .map_err(fail)?;
    if !removed {
        return Err(CliError::Usage(format!(
            "{} has no package {name}; hint: `kazi pkg list` shows what it has",
            lock::path_in(&ws).display()
        )));
    }
    printer.out(&format!(
        "removed {name} from {}",
        lock::path_in(&ws).display()
    ));
    printer.progress(
        "goals that use it no longer load; its blob stays in the store for other workspaces",
    );
    Ok(exit::SUCCESS)
}

fn verify(args: WorkspaceArg, printer: &Printer) -> Result<u8, CliError> {
    let ws = workspace(&args)?;
    let packages = lock::read(&ws).map_err(fail)?.unwrap_or_default().packages;
    let store = Store::open_default();
    let trust = trust_store()?;
    let (mut missing, mut altered) = (0, 0);
    for p in &packages {
        let title = format!("{} {}", p.name, p.version);
        let component = store.get(&p.digest, &format!("the component of {title}"));
        let manifest = store.get(&p.manifest, &format!("the manifest of {title}"));
        let problem = match (component, manifest) {
            (Err(e), _) | (_, Err(e)) => {
                altered += 1;
                Some(e.to_string())
            }
            (Ok(None), _) | (_, Ok(None)) => {
                missing += 1;
                Some("not installed on this machine; hint: `kazi pkg add` installs what kazi.lock records".to_owned())
            }
            (Ok(Some(_)), Ok(Some(text))) => {
                match install::check_locked(p, &String::from_utf8_lossy(&text)) {
                    Ok(()) => None,
                    Err(e) => {
                        altered += 1;
                        Some(e)
                    }
                }
            }
        };
        match problem {
            Some(why) => printer.out(&format!("FAIL  {title}: {why}")),
            None => {
                let note = match &p.signer {
                    Some(k) if trust.get(k).is_none() => {
                        format!(", signed by {k}, which you no longer trust")
                    }
                    Some(_) => ", signature verified".to_owned(),
                    None => ", unsigned".to_owned(),
                };
                printer.out(&format!("ok    {title}: {}{note}", short(&p.digest)));
            }
        }
    }
    if altered > 0 {
        printer.error(&format!(
            "{altered} package(s) do not match kazi.lock; do not use them. hint: reinstall with `kazi pkg add REFERENCE`, and find out who changed them"
        ));
        return Ok(exit::TAMPERED);
    }
    if missing > 0 {
        return Ok(exit::NOT_CONVERGED);
    }
    printer.progress(&format!(
        "{} package(s) match {}",
        packages.len(),
        lock::path_in(&ws).display()
    ));
    Ok(exit::SUCCESS)
}

async fn update(args: UpdateArgs, printer: &Printer) -> Result<u8, CliError> {
    let ws = workspace(&args.ws)?;
    let lock_file = lock::read(&ws).map_err(fail)?.unwrap_or_default();
    let only: Option<crate::pkg::PackageName> = args
        .name
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(CliError::Usage)?;
    if let Some(n) = &only
        && lock_file.get(n).is_none()
    {
        return Err(CliError::Usage(format!(
            "{} has no package {n}; hint: `kazi pkg add` it first",
            lock::path_in(&ws).display()
        )));
    }
    let trust = trust_store()?;
    let store = Store::open_default();
    let sandbox = sandbox()?;
    let mut changed = 0;
    for old in &lock_file.packages {
        if only.as_ref().is_some_and(|n| n != &old.name) {
            continue;
        }
        let old_title = format!("{} {}", old.name, old.version);
        let Some(_) = &old.registry else {
            printer.progress(&format!(
                "{old_title} came from a local directory; `kazi pkg add {}` again to update it",
                old.source
            ));
            continue;
        };
        let source: Reference = old.source.parse().map_err(|e| {
            CliError::Invalid(format!("kazi.lock: {old_title} has a bad source: {e}"))
        })?;
        let client = Client::new(&source.registry, old.insecure).map_err(fail)?;
        let target = match &args.to {
            Some(v) => v.clone(),
            None => {
                let tags = client.tags(&source.repository).await.map_err(fail)?;
                let req = semver::VersionReq::parse(&format!("^{}", old.version))
                    .expect("a version makes a requirement");
                match install::newest(&tags, Some(&req), Some(&old.version)) {
                    Some(v) => v,
                    None => {
                        printer.out(&format!("{old_title} is up to date"));
                        continue;
                    }
                }
            }
        };
        if target == old.version {
            printer.out(&format!("{old_title} is up to date"));
            continue;
        }
        let reference = source.with_tag(&target.to_string());
        printer.progress(&format!("fetching {reference}"));
        let (origin, package) = install::fetch(&reference, old.insecure)
            .await
            .map_err(fail)?;
        let m = &package.manifest;
        if m.name != old.name {
            return Err(CliError::Failed(format!(
                "{reference} holds {}, not {}; hint: check the repository",
                m.name, old.name
            )));
        }
        let title = m.title();
        let signer = install::check_signature(&package, &trust).map_err(fail)?;
        install::enforce(&signer, args.allow_unsigned, &title).map_err(fail)?;
        install::check_component(&sandbox, &package)
            .await
            .map_err(fail)?;
        let added: Capabilities = m.capabilities.added_to(&old.capabilities);
        let new_signer = signer.key() != old.signer.as_ref();
        let mut extra = vec![format!("updates {old_title}")];
        if !added.is_empty() {
            extra.push(format!(
                "NEW capabilities compared with {}: {}",
                old.version,
                added.lines().join("; ")
            ));
        }
        if new_signer {
            extra.push(format!(
                "signed by a different key than {} ({})",
                old.version,
                old.signer
                    .as_ref()
                    .map_or("unsigned".to_owned(), ToString::to_string)
            ));
        }
        show_package(&package, &origin, &signer, &extra);
        if !added.is_empty() || new_signer {
            let why = match (!added.is_empty(), new_signer) {
                (true, true) => format!(
                    "it asks for new capabilities ({}) and is signed by another key",
                    added.lines().join("; ")
                ),
                (true, false) => format!(
                    "it asks for new capabilities ({})",
                    added.lines().join("; ")
                ),
                _ => "it is signed by another key".to_owned(),
            };
            confirm(
                &format!("update to {title}?"),
                args.yes,
                &format!("refusing to update {old_title} to {}: {why}", m.version),
            )?;
        }
        let entry = install::store(&store, &package, &origin, &signer).map_err(fail)?;
        lock::update(&ws, |l| {
            l.upsert(entry.clone());
            Ok(())
        })
        .map_err(fail)?;
        printer.out(&format!("updated {old_title} to {}", m.version));
        if !added.is_empty() {
            printer.progress(&format!(
                "goals using {} must now also grant, under [predicate.allow]:\n    {}",
                m.name,
                added.allow_lines().join("\n    ")
            ));
        }
        changed += 1;
    }
    if changed > 0 {
        printer.progress(&format!("{changed} package(s) updated"));
    }
    Ok(exit::SUCCESS)
}
