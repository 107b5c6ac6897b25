//! Registry credentials: `KAZI_REGISTRY_USERNAME`/`KAZI_REGISTRY_PASSWORD`, else the
//! `auths` of the Docker config (what `docker login` writes). Credential helpers are
//! not read.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "only one of KAZI_REGISTRY_USERNAME and KAZI_REGISTRY_PASSWORD is set; hint: set both, or neither to use the Docker config"
    )]
    Half,
    #[error("failed to read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    DockerConfig { path: PathBuf, reason: String },
}

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

/// Credentials for `registry`: `KAZI_REGISTRY_USERNAME` + `KAZI_REGISTRY_PASSWORD`, else
/// the `auths` of the Docker config (`$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`), else none (anonymous).
pub fn credentials(registry: &str) -> Result<Option<Credentials>, CredentialsError> {
    let user = std::env::var("KAZI_REGISTRY_USERNAME")
        .ok()
        .filter(|u| !u.is_empty());
    let pass = std::env::var("KAZI_REGISTRY_PASSWORD").ok();
    match (user, pass) {
        (Some(username), Some(password)) => {
            return Ok(Some(Credentials { username, password }));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(CredentialsError::Half);
        }
        (None, None) => {}
    }
    let path = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("config.json"),
        None => match dirs::home_dir() {
            Some(h) => h.join(".docker").join("config.json"),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CredentialsError::Read { path, source }),
    };
    docker_config_credentials(&text, registry)
        .map_err(|reason| CredentialsError::DockerConfig { path, reason })
}

/// The credentials for `registry` in a Docker `config.json`.
fn docker_config_credentials(text: &str, registry: &str) -> Result<Option<Credentials>, String> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        auths: BTreeMap<String, Auth>,
    }
    #[derive(Deserialize)]
    struct Auth {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }
    let config: Config =
        serde_json::from_str(text).map_err(|e| format!("not a Docker config file: {e}"))?;
    let wanted = |key: &str| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let host = host.split('/').next().unwrap_or(host);
        host == registry
            || (matches!(registry, "docker.io" | "registry-1.docker.io")
                && host == "index.docker.io")
    };
    let Some(auth) = config.auths.iter().find(|(k, _)| wanted(k)).map(|(_, a)| a) else {
        return Ok(None);
    };
    if let (Some(username), Some(password)) = (&auth.username, &auth.password) {
        return Ok(Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        }));
    }
    let Some(encoded) = auth.auth.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let decoded = B64
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| format!("the `auth` for {registry} is not base64 of `user:password`"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| format!("the `auth` for {registry} is not base64 of `user:password`"))?;
    Ok(Some(Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_auths_are_read() {
        let cfg = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dTpw"},
            "127.0.0.1:5000": {"auth": "YWxpY2U6czNjcjN0"},
            "ghcr.io": {"username": "bob", "password": "tok"}
        }, "credsStore": "desktop"}"#;
        let c = docker_config_credentials(cfg, "127.0.0.1:5000")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cr3t")
        );
        let c = docker_config_credentials(cfg, "docker.io")
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "u");
        let c = docker_config_credentials(cfg, "ghcr.io").unwrap().unwrap();
        assert_eq!(c.password, "tok");
        assert_eq!(docker_config_credentials(cfg, "quay.io").unwrap(), None);
        assert!(docker_config_credentials(r#"{"auths":{"h.io":{"auth":"!!"}}}"#, "h.io").is_err());
        assert_eq!(format!("{c:?}"), "Credentials(bob, ***)");
    }
}
