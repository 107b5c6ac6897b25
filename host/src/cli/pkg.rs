//! `kazi pkg`: init, build, sign and publish packages; add, list, remove, verify and
//! update the packages a workspace uses (its `kazi.lock`). Wiring only: parse, call
//! `crate::pkg`, print; the terminal side of approvals is [`Terminal`].

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::CliError;
use super::output::Printer;
use crate::exit;
use crate::pkg::init::InitOptions;
use crate::pkg::lock::{self, LockedPackage};
use crate::pkg::oci::{CredentialsError, Reference, ReferenceError, RegistryError};
use crate::pkg::sign::{self, SIGNATURE_FILE, TrustStore};
use crate::pkg::store::Store;
use crate::pkg::workspace::{
    self, Context, Event, Health, Policy, Review, SignerState, Ui, UpdateRequest,
};
use crate::pkg::{PackageName, PkgError, build, publish};
use crate::sandbox::Sandbox;

#[derive(Debug, Subcommand)]
pub enum PkgCommand {
    /// Write kazi-package.toml with what the component cannot say about itself:
    /// namespace, description, license, repository.
    ///
    /// The description, license and repository default to those of the crate's
    /// Cargo.toml. Exits 0 when written, 2 when something is missing.
    Init(InitArgs),
    /// Build the component next to `kazi-package.toml`, take its name, version, world
    /// and capabilities from it (refusing a manifest that says otherwise), and write
    /// target/kazi-package/.
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
pub struct InitArgs {
    /// The package directory (default: the current one).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The namespace: the package is NAMESPACE:NAME, NAME being what describe() returns.
    #[arg(long)]
    namespace: String,
    /// One line on what it checks [default: Cargo.toml's description].
    #[arg(long)]
    description: Option<String>,
    /// An SPDX license expression [default: Cargo.toml's license].
    #[arg(long)]
    license: Option<String>,
    /// Where its source lives [default: Cargo.toml's repository].
    #[arg(long)]
    repository: Option<String>,
    /// Replace an existing kazi-package.toml.
    #[arg(long)]
    force: bool,
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
        PkgCommand::Init(a) => init(a, printer),
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

/// How a package error ends the command: a request that makes no sense is a usage
/// error (2), a manifest, component or lock that cannot be used is invalid (5),
/// anything else (refused, not approved, the registry) a failure (1).
fn fail(e: PkgError) -> CliError {
    match e {
        PkgError::Init { .. }
        | PkgError::BadSource { .. }
        | PkgError::NoLock { .. }
        | PkgError::NotInLock { .. }
        | PkgError::DigestReference { .. }
        | PkgError::TagNotVersion { .. }
        | PkgError::BadKeyName { .. } => CliError::Usage(e.to_string()),
        PkgError::Manifest { .. }
        | PkgError::Cargo(_)
        | PkgError::Load { .. }
        | PkgError::Describe { .. }
        | PkgError::Mismatch { .. }
        | PkgError::Inconsistent { .. }
        | PkgError::NotBuilt { .. }
        | PkgError::LockInvalid { .. }
        | PkgError::LockVersion { .. }
        | PkgError::BadDigest { .. }
        | PkgError::LockedSource { .. }
        | PkgError::Registry(RegistryError::Credentials(CredentialsError::DockerConfig {
            ..
        })) => CliError::Invalid(e.to_string()),
        PkgError::Io { .. }
        | PkgError::Registry(_)
        | PkgError::Digest { .. }
        | PkgError::Signature(_)
        | PkgError::Unsigned { .. }
        | PkgError::Untrusted { .. }
        | PkgError::Republished(_)
        | PkgError::WrongPackage { .. }
        | PkgError::StaleSignature { .. }
        | PkgError::NotApproved { .. } => CliError::Failed(e.to_string()),
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

fn package_name(text: &str) -> Result<PackageName, CliError> {
    text.parse().map_err(CliError::Usage)
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

fn init(args: InitArgs, printer: &Printer) -> Result<u8, CliError> {
    let opts = InitOptions {
        namespace: args.namespace,
        description: args.description,
        license: args.license,
        repository: args.repository,
        force: args.force,
    };
    let (path, _) = crate::pkg::init::init(&args.dir, &opts).map_err(fail)?;
    printer.out(&format!("wrote {}", path.display()));
    printer.progress(&format!(
        "build the package with `kazi pkg build {}`: its name, version and capabilities come from the component",
        super::init::shell_word(&args.dir)
    ));
    Ok(exit::SUCCESS)
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
            "world": m.world,
            "size": m.component.size,
            "digest": m.component.digest,
            "manifest_digest": built.package.manifest_digest(),
            "capabilities": m.capabilities,
            "dir": built.dir,
        }));
    } else {
        printer.out(&format!("{} {} ({})", m.name, m.version, m.kind));
        printer.out(&format!("  world   {}", m.world));
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
    let path = sign::key_path(&args.name).map_err(fail)?;
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
    let key_path = match args.key {
        Some(k) => k,
        None => sign::key_path("default").map_err(fail)?,
    };
    let signed = publish::sign(&args.dir, &key_path).map_err(fail)?;
    printer.out(&format!(
        "signed {} (manifest {}) with {}",
        signed.package.manifest.title(),
        short(&signed.package.manifest_digest()),
        signed.signature.signer
    ));
    printer.progress(&format!("wrote {}", signed.path.display()));
    Ok(exit::SUCCESS)
}

async fn publish(args: PublishArgs, printer: &Printer) -> Result<u8, CliError> {
    let (dir, reference) = match args.args.as_slice() {
        [r] => (PathBuf::from("."), r.as_str()),
        [d, r] => (PathBuf::from(d), r.as_str()),
        _ => unreachable!("clap takes one or two values"),
    };
    let reference: Reference = reference
        .parse()
        .map_err(|e: ReferenceError| CliError::Usage(e.to_string()))?;
    let publication = publish::prepare(&dir, reference).map_err(fail)?;
    for notice in &publication.notices {
        printer.notice(&notice.to_string());
    }
    let title = publication.package.manifest.title();
    let reference = &publication.reference;
    printer.progress(&format!("publishing {title} to {reference}"));
    let digest = publish::publish(&publication, args.insecure)
        .await
        .map_err(fail)?;
    printer.out(&format!("published {title} to {reference}"));
    printer.out(&format!(
        "  component  {}",
        publication.package.manifest.component.digest
    ));
    printer.out(&format!("  manifest   {digest}"));
    Ok(exit::SUCCESS)
}

/// The terminal side of `add` and `update`: progress and packages on stderr,
/// approval from a person at the terminal, or `--yes`.
struct Terminal<'a> {
    printer: &'a Printer,
    yes: bool,
}

impl Ui for Terminal<'_> {
    fn event(&mut self, event: Event<'_>) {
        let p = self.printer;
        match event {
            Event::Fetching { source } => p.progress(&format!("fetching {source}")),
            Event::UpToDate { title } => p.out(&format!("{title} is up to date")),
            Event::LocalSource { title, source } => p.progress(&format!(
                "{title} came from a local directory; `kazi pkg add {source}` again to update it"
            )),
            Event::Updated {
                name,
                old_title,
                version,
                added,
            } => {
                p.out(&format!("updated {old_title} to {version}"));
                if !added.is_empty() {
                    p.progress(&format!(
                        "goals using {name} must now also grant, under [predicate.allow]:\n    {}",
                        added.allow_lines().join("\n    ")
                    ));
                }
            }
        }
    }

    fn review(&mut self, review: &Review<'_>) -> Result<(), PkgError> {
        show_package(review);
        let Some(approval) = &review.approval else {
            return Ok(());
        };
        if self.yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(PkgError::NotApproved {
                refusal: approval.refusal.clone(),
                no_terminal: true,
            });
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{} [y/N] ", approval.question);
        let _ = err.flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| PkgError::io("read the answer from", std::path::Path::new("stdin"), e))?;
        if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            Ok(())
        } else {
            Err(PkgError::NotApproved {
                refusal: approval.refusal.clone(),
                no_terminal: false,
            })
        }
    }
}

/// Everything a person needs to decide about a package, on stderr.
fn show_package(review: &Review<'_>) {
    let m = &review.package.manifest;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "{} ({}) from {}",
        m.title(),
        m.kind,
        review.origin.source()
    );
    let _ = writeln!(err, "  {}", m.description);
    let _ = writeln!(err, "  license  {}", m.license);
    if let Some(r) = &m.repository {
        let _ = writeln!(err, "  source   {r}");
    }
    let _ = writeln!(err, "  digest   {}", m.component.digest);
    let _ = writeln!(err, "  {}", review.signer.describe());
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
    for line in &review.notes {
        let _ = writeln!(err, "  {line}");
    }
}

fn context(sandbox: &Sandbox) -> Result<Context<'_>, CliError> {
    Ok(Context {
        sandbox,
        store: Store::open_default(),
        trust: TrustStore::read(&TrustStore::default_path()).map_err(fail)?,
    })
}

async fn add(args: AddArgs, printer: &Printer) -> Result<u8, CliError> {
    let ws = workspace(&args.ws)?;
    let sandbox = sandbox()?;
    let cx = context(&sandbox)?;
    let policy = Policy {
        insecure: args.insecure,
        allow_unsigned: args.allow_unsigned,
    };
    let mut ui = Terminal {
        printer,
        yes: args.yes,
    };
    let lock_path = lock::path_in(&ws);
    let Some(reference) = &args.reference else {
        let synced = workspace::sync(&cx, &ws, policy, &mut ui)
            .await
            .map_err(fail)?;
        printer.out(&format!(
            "{} installed, {} already present, from {}",
            synced.installed,
            synced.present,
            lock_path.display()
        ));
        return Ok(exit::SUCCESS);
    };
    let entry = workspace::add(&cx, &ws, reference, policy, &mut ui)
        .await
        .map_err(fail)?;
    printer.out(&format!(
        "added {} {} to {}",
        entry.name,
        entry.version,
        lock_path.display()
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
    let name = package_name(&args.name)?;
    workspace::remove(&ws, &name).map_err(fail)?;
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
    let trust = TrustStore::read(&TrustStore::default_path()).map_err(fail)?;
    let report = workspace::verify(&ws, &Store::open_default(), &trust).map_err(fail)?;
    let (mut missing, mut altered) = (0, 0);
    for (p, health) in &report {
        let title = format!("{} {}", p.name, p.version);
        match health {
            Health::Intact { signer } => {
                let note = match signer {
                    SignerState::NoLongerTrusted(k) => {
                        format!(", signed by {k}, which you no longer trust")
                    }
                    SignerState::Verified => ", signature verified".to_owned(),
                    SignerState::Unsigned => ", unsigned".to_owned(),
                };
                printer.out(&format!("ok    {title}: {}{note}", short(&p.digest)));
            }
            Health::Missing => {
                missing += 1;
                printer.out(&format!(
                    "FAIL  {title}: not installed on this machine; hint: `kazi pkg add` installs what kazi.lock records"
                ));
            }
            Health::Altered { why } => {
                altered += 1;
                printer.out(&format!("FAIL  {title}: {why}"));
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
        report.len(),
        lock::path_in(&ws).display()
    ));
    Ok(exit::SUCCESS)
}

async fn update(args: UpdateArgs, printer: &Printer) -> Result<u8, CliError> {
    let ws = workspace(&args.ws)?;
    let request = UpdateRequest {
        only: args.name.as_deref().map(package_name).transpose()?,
        to: args.to,
    };
    let sandbox = sandbox()?;
    let cx = context(&sandbox)?;
    let policy = Policy {
        insecure: false,
        allow_unsigned: args.allow_unsigned,
    };
    let mut ui = Terminal {
        printer,
        yes: args.yes,
    };
    let changed = workspace::update(&cx, &ws, &request, policy, &mut ui)
        .await
        .map_err(fail)?;
    if changed > 0 {
        printer.progress(&format!("{changed} package(s) updated"));
    }
    Ok(exit::SUCCESS)
}
