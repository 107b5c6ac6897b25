//! `registry/repository[:tag][@digest]`: where a package lives in a registry.

use std::fmt;
use std::str::FromStr;

use super::RegistryError;

/// `registry/repository[:tag][@digest]`, such as `ghcr.io/acme/coverage:1.2.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`.
    pub registry: String,
    /// `namespace/name` (any depth).
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<hex>` of the image manifest.
    pub digest: Option<String>,
}

/// A reference that cannot be parsed; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ReferenceError {
    /// What was given.
    pub input: String,
    message: String,
}

fn valid_repository(r: &str) -> bool {
    !r.is_empty()
        && r.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && part.as_bytes()[0].is_ascii_alphanumeric()
                && part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
        })
}

fn valid_tag(t: &str) -> bool {
    (1..=128).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !t.starts_with(['.', '-'])
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, ReferenceError> {
        let bad = |message: String| ReferenceError {
            input: s.to_owned(),
            message,
        };
        let text = s.trim().trim_start_matches("oci://");
        let shape = "write REGISTRY/NAMESPACE/NAME[:VERSION], such as ghcr.io/acme/coverage:1.2.0 or 127.0.0.1:5000/acme/coverage:1.2.0";
        let Some((registry, rest)) = text.split_once('/') else {
            return Err(bad(format!("`{s}` is not a registry reference; {shape}")));
        };
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(bad(format!(
                "`{s}` names no registry (`{registry}` is not a host); {shape}"
            )));
        }
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => {
                let ok = d
                    .strip_prefix("sha256:")
                    .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
                if !ok {
                    return Err(bad(format!(
                        "`{s}` has an invalid digest `{d}`; expected sha256: and 64 hex digits"
                    )));
                }
                (r, Some(d.to_owned()))
            }
            None => (rest, None),
        };
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t.to_owned())),
            _ => (rest, None),
        };
        if !valid_repository(repository) {
            return Err(bad(format!(
                "`{s}` has an invalid repository `{repository}`: use lower-case letters, digits, `.`, `_`, `-` and `/`; {shape}"
            )));
        }
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(bad(format!(
                "`{s}` has an invalid tag `{t}`: use letters, digits, `.`, `_` and `-` (a semver build suffix `+…` cannot be a tag)"
            )));
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl Reference {
    /// The same repository at another tag.
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    pub(super) fn reference(&self) -> Result<&str, RegistryError> {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .ok_or_else(|| RegistryError::NoVersion {
                reference: self.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_registry_tag_and_digest() {
        let r: Reference = "127.0.0.1:5000/acme/no-todo:1.2.0".parse().unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "acme/no-todo");
        assert_eq!(r.tag.as_deref(), Some("1.2.0"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/acme/no-todo:1.2.0");
        let r: Reference = "oci://ghcr.io/acme/kazi/cov".parse().unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_deref()),
            ("acme/kazi/cov", None)
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r: Reference = format!("localhost/x@{d}").parse().unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        let tagged = r.with_tag("1.0.0");
        assert_eq!(tagged.reference().unwrap(), "1.0.0");
        let bare: Reference = "localhost/x".parse().unwrap();
        let e = bare.reference().unwrap_err().to_string();
        assert!(e.contains("`localhost/x` names no version"), "{e}");
    }

    #[test]
    fn bad_references_say_what_to_write() {
        for bad in [
            "acme/x:1.0.0",
            "x",
            "ghcr.io/Acme/x:1",
            "ghcr.io/a/x:1.0.0+b",
            "ghcr.io/a@sha256:12",
        ] {
            let e = bad.parse::<Reference>().unwrap_err();
            assert_eq!(e.input, bad);
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
        let e = "acme/x:1.0.0".parse::<Reference>().unwrap_err();
        assert!(e.to_string().contains("REGISTRY/NAMESPACE/NAME"), "{e}");
    }
}
