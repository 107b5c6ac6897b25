//! `kazi trust`: the keys whose signatures `kazi pkg add` accepts. The store is a
//! local file; checking a signature needs nothing else, so it works offline.

use clap::{Args, Subcommand};

use super::CliError;
use super::output::Printer;
use crate::exit;
use crate::pkg::sign::{TrustStore, TrustedKey, parse_key_arg};

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust a publisher's key (`ed25519:…`, or a `.pub` file from `kazi pkg keygen`).
    Add(AddArgs),
    /// List the trusted keys.
    List,
    /// Stop trusting a key (installed packages stay; `kazi pkg verify` flags them).
    Remove(RemoveArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The public key, or a file holding it.
    key: String,
    /// Whose key it is, for people (shown when a package signed by it is installed).
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The public key, or a file holding it.
    key: String,
}

pub fn run(cmd: TrustCommand, printer: &Printer) -> Result<u8, CliError> {
    let path = TrustStore::default_path();
    let mut store = TrustStore::read(&path).map_err(|e| CliError::Invalid(e.to_string()))?;
    match cmd {
        TrustCommand::Add(a) => {
            let key = parse_key_arg(&a.key).map_err(CliError::Usage)?;
            store.keys.retain(|k| k.key != key);
            store.keys.push(TrustedKey {
                key: key.clone(),
                name: a.name.clone(),
            });
            store
                .write(&path)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            let who = a.name.map(|n| format!(" ({n})")).unwrap_or_default();
            printer.out(&format!("trusted {key}{who}"));
            printer.progress(&format!(
                "packages signed by it are accepted by `kazi pkg add`; the list is {}",
                path.display()
            ));
        }
        TrustCommand::List => {
            if store.keys.is_empty() {
                printer.progress("no trusted keys; add one with `kazi trust add ed25519:…`");
            }
            for k in &store.keys {
                match &k.name {
                    Some(n) => printer.out(&format!("{}  {n}", k.key)),
                    None => printer.out(&k.key.to_string()),
                }
            }
        }
        TrustCommand::Remove(a) => {
            let key = parse_key_arg(&a.key).map_err(CliError::Usage)?;
            let before = store.keys.len();
            store.keys.retain(|k| k.key != key);
            if store.keys.len() == before {
                return Err(CliError::Usage(format!(
                    "{key} is not trusted; hint: `kazi trust list` shows the trusted keys"
                )));
            }
            store
                .write(&path)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            printer.out(&format!("no longer trusting {key}"));
        }
    }
    Ok(exit::SUCCESS)
}
