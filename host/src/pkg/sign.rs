//! Signatures: an author signs the digest of a package's published manifest (which
//! names the component by its digest) with an ed25519 key; a consumer accepts the
//! package when the signature verifies against a key in their local trust store.
//! Everything here works offline: a signature is checked with nothing but the public
//! key the user chose to trust.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use super::{Manifest, PkgError, write_atomically};

/// Prefix of a public key in text form.
const PUBLIC_PREFIX: &str = "ed25519:";
/// Prefix of a secret key file's content.
const SECRET_PREFIX: &str = "kazi-ed25519-secret:";
/// The file a signature is kept in inside a built package directory.
pub const SIGNATURE_FILE: &str = "signature.toml";
/// The trust store's file name in the config directory.
pub const TRUST_FILE: &str = "trusted-keys.toml";

/// Why a key or a signature cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "there is no signing key at {}; hint: create one with `kazi pkg keygen`, or pass --key FILE",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error(
        "{} is not a kazi signing key; hint: create one with `kazi pkg keygen`",
        path.display()
    )]
    NotAKey { path: PathBuf },
    #[error(
        "a key already exists at {}; hint: pass --name to make another, or --force to replace it (packages signed with it will no longer match a new key)",
        path.display()
    )]
    KeyExists { path: PathBuf },
    #[error("the system random generator failed")]
    Random,
    #[error(
        "the signature on {title} by {signer} does not verify: {why}; the package or its signature was altered — do not use it; hint: ask the publisher to re-publish, and report it"
    )]
    Invalid {
        title: String,
        signer: PublicKey,
        why: &'static str,
    },
    #[error(
        "the signature of {origin} is unreadable: {}; hint: sign the package again with `kazi pkg sign`",
        source.message()
    )]
    Unreadable {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
}

/// An ed25519 public key, written `ed25519:<base64>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicKey([u8; 32]);

impl FromStr for PublicKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let b64 = s.strip_prefix(PUBLIC_PREFIX).ok_or_else(|| {
            format!("`{s}` is not a kazi public key; expected `ed25519:` followed by base64, as `kazi pkg keygen` prints")
        })?;
        let bytes = B64
            .decode(b64)
            .map_err(|e| format!("`{s}` is not a kazi public key: bad base64 ({e})"))?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "`{s}` is not a kazi public key: {} bytes, an ed25519 key has 32",
                b.len()
            )
        })?;
        Ok(Self(key))
    }
}

impl TryFrom<String> for PublicKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<PublicKey> for String {
    fn from(k: PublicKey) -> String {
        k.to_string()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", B64.encode(self.0))
    }
}

/// A signing key, kept in a file only its owner can read.
pub struct SecretKey(Ed25519KeyPair);

impl SecretKey {
    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        let bytes: [u8; 32] = self
            .0
            .public_key()
            .as_ref()
            .try_into()
            .expect("an ed25519 public key has 32 bytes");
        PublicKey(bytes)
    }

    /// Read a key written by [`generate`].
    pub fn read(path: &Path) -> Result<Self, PkgError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                SignatureError::NoKey {
                    path: path.to_owned(),
                }
                .into()
            } else {
                PkgError::io("read", path, e)
            }
        })?;
        let bad = || -> PkgError {
            SignatureError::NotAKey {
                path: path.to_owned(),
            }
            .into()
        };
        let b64 = text.trim().strip_prefix(SECRET_PREFIX).ok_or_else(bad)?;
        let pkcs8 = B64.decode(b64).map_err(|_| bad())?;
        Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map(SecretKey)
            .map_err(|_| bad())
    }

    /// Sign `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).as_ref().to_vec()
    }
}

/// Where `kazi pkg keygen` puts a key called `name`, a plain file name.
pub fn key_path(name: &str) -> Result<PathBuf, PkgError> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(PkgError::BadKeyName {
            name: name.to_owned(),
        });
    }
    Ok(super::config_dir().join("keys").join(format!("{name}.key")))
}

/// Generate a key pair and write the secret key to `path` (mode 0600) and the public
/// key next to it (`.pub`). Refuses to overwrite an existing key unless `force`.
pub fn generate(path: &Path, force: bool) -> Result<PublicKey, PkgError> {
    if path.exists() && !force {
        return Err(SignatureError::KeyExists {
            path: path.to_owned(),
        }
        .into());
    }
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| SignatureError::Random)?;
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map(SecretKey)
        .expect("a fresh key parses");
    let public = key.public();
    write_atomically(
        path,
        format!("{SECRET_PREFIX}{}\n", B64.encode(pkcs8.as_ref())).as_bytes(),
        0o600,
    )?;
    write_atomically(
        &path.with_extension("pub"),
        format!("{public}\n").as_bytes(),
        0o644,
    )?;
    Ok(public)
}

/// The exact bytes a package signature covers: the package's identity and the digest
/// of its published manifest, which itself names the component's digest.
pub fn statement(manifest: &Manifest, manifest_digest: &str) -> Vec<u8> {
    format!(
        "kazi-package-signature-v1\nname {}\nversion {}\nkind {}\ncomponent {}\nmanifest {}\n",
        manifest.name, manifest.version, manifest.kind, manifest.component.digest, manifest_digest
    )
    .into_bytes()
}

/// A signature as it travels with a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The key that made it.
    pub signer: PublicKey,
    /// The ed25519 signature over [`statement`], base64.
    pub signature: String,
    /// The digest of the manifest it signs (a convenience for messages; the check
    /// recomputes it).
    pub manifest: String,
}

impl Signature {
    /// Sign a package.
    pub fn create(key: &SecretKey, manifest: &Manifest, manifest_digest: &str) -> Self {
        Self {
            signer: key.public(),
            signature: B64.encode(key.sign(&statement(manifest, manifest_digest))),
            manifest: manifest_digest.to_owned(),
        }
    }

    /// Whether this signature is valid for `manifest` (whose text hashes to
    /// `manifest_digest`).
    pub fn verify(&self, manifest: &Manifest, manifest_digest: &str) -> Result<(), PkgError> {
        let bad = |why: &'static str| -> PkgError {
            SignatureError::Invalid {
                title: manifest.title(),
                signer: self.signer.clone(),
                why,
            }
            .into()
        };
        let sig = B64
            .decode(self.signature.trim())
            .map_err(|_| bad("it is not base64"))?;
        UnparsedPublicKey::new(&ED25519, &self.signer.0)
            .verify(&statement(manifest, manifest_digest), &sig)
            .map_err(|_| bad("it was not made by this key over this package"))
    }

    /// As TOML text.
    pub fn to_text(&self) -> String {
        toml::to_string(self).expect("a signature serialises")
    }

    /// Parse TOML text; `origin` names it in messages.
    pub fn parse(origin: &str, text: &str) -> Result<Self, PkgError> {
        toml::from_str(text).map_err(|source| {
            SignatureError::Unreadable {
                origin: origin.to_owned(),
                source,
            }
            .into()
        })
    }
}

/// One key the user trusts to sign packages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    pub key: PublicKey,
    /// Who it belongs to, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The keys a user trusts: `trusted-keys.toml` in the config directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustStore {
    #[serde(default, rename = "key")]
    pub keys: Vec<TrustedKey>,
}

impl TrustStore {
    /// The default location.
    pub fn default_path() -> PathBuf {
        super::config_dir().join(TRUST_FILE)
    }

    /// Read the store at `path` (missing: empty).
    pub fn read(path: &Path) -> Result<Self, PkgError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| PkgError::Manifest {
                path: path.to_owned(),
                message: format!(
                    "the trusted keys are unreadable: {}",
                    e.to_string().trim_end()
                ),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(PkgError::io("read", path, e)),
        }
    }

    /// Write the store to `path`.
    pub fn write(&self, path: &Path) -> Result<(), PkgError> {
        let text = format!(
            "# Keys trusted to sign kazi packages; managed with `kazi trust add|remove`.\n{}",
            toml::to_string(self).expect("trusted keys serialise")
        );
        write_atomically(path, text.as_bytes(), 0o644)
    }

    /// The trusted entry for `key`, if any.
    pub fn get(&self, key: &PublicKey) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| &k.key == key)
    }
}

/// Parse a key given on the command line: the key text, or a `.pub` file holding it.
pub fn parse_key_arg(arg: &str) -> Result<PublicKey, String> {
    if arg.trim().starts_with(PUBLIC_PREFIX) {
        return arg.parse();
    }
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        return text.parse();
    }
    arg.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkg::manifest::{Capabilities, ComponentRef, Kind, MANIFEST_SCHEMA};

    fn manifest(version: &str) -> Manifest {
        Manifest {
            schema: MANIFEST_SCHEMA,
            name: "acme:x".parse().unwrap(),
            version: version.parse().unwrap(),
            kind: Kind::Predicate,
            description: "d".into(),
            license: "MIT".into(),
            repository: None,
            world: Kind::Predicate.world("0.1.0"),
            config_schema: "{}".into(),
            component: ComponentRef {
                digest: "sha256:00".into(),
                size: 1,
            },
            capabilities: Capabilities::default(),
        }
    }

    #[test]
    fn keys_round_trip_through_files_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/me.key");
        let public = generate(&path, false).unwrap();
        let secret = SecretKey::read(&path).unwrap();
        assert_eq!(secret.public(), public);
        assert_eq!(public.to_string().parse::<PublicKey>().unwrap(), public);
        assert_eq!(
            parse_key_arg(path.with_extension("pub").to_str().unwrap()).unwrap(),
            public
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let e = generate(&path, false).unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
    }

    #[test]
    fn a_signature_verifies_only_for_what_it_signed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        generate(&path, false).unwrap();
        let key = SecretKey::read(&path).unwrap();
        let m = manifest("1.0.0");
        let sig = Signature::create(&key, &m, "sha256:aa");
        sig.verify(&m, "sha256:aa").unwrap();
        assert!(sig.verify(&m, "sha256:bb").is_err());
        assert!(sig.verify(&manifest("1.0.1"), "sha256:aa").is_err());
        let other = dir.path().join("o.key");
        let other_pub = generate(&other, false).unwrap();
        let forged = Signature {
            signer: other_pub,
            ..sig.clone()
        };
        let e = forged.verify(&m, "sha256:aa").unwrap_err();
        assert!(e.to_string().contains("does not verify"), "{e}");
        let text = sig.to_text();
        assert_eq!(Signature::parse("x", &text).unwrap(), sig);
    }

    #[test]
    fn bad_key_text_is_explained() {
        assert!(
            "abc"
                .parse::<PublicKey>()
                .unwrap_err()
                .contains("kazi pkg keygen")
        );
        assert!(
            "ed25519:AAAA"
                .parse::<PublicKey>()
                .unwrap_err()
                .contains("32")
        );
    }

    #[test]
    fn trust_store_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TRUST_FILE);
        assert_eq!(TrustStore::read(&path).unwrap(), TrustStore::default());
        let key = generate(&dir.path().join("k.key"), false).unwrap();
        let store = TrustStore {
            keys: vec![TrustedKey {
                key: key.clone(),
                name: Some("alice".into()),
            }],
        };
        store.write(&path).unwrap();
        let back = TrustStore::read(&path).unwrap();
        assert_eq!(back, store);
        assert_eq!(back.get(&key).unwrap().name.as_deref(), Some("alice"));
    }
}
