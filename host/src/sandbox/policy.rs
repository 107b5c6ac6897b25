//! Capability grants: what one predicate may do. Deny by default; a grant is data
//! from the goal (or the `--allow-*` flags) and every host call checks it.

use std::collections::BTreeSet;
use std::fmt;

/// Default memory limit per predicate instance.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 * 1024 * 1024;

/// What a predicate may do besides reading the workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Programs the `kazi:host/exec` import may run, by name (resolved on PATH) or by
    /// workspace-relative path when the name contains a `/`.
    pub exec: BTreeSet<String>,
    /// Hosts `wasi:http` may reach.
    pub net: BTreeSet<NetTarget>,
    /// Host environment variables visible to the guest and passed to programs it runs.
    pub env: BTreeSet<String>,
    /// Whether the workspace is mounted writable.
    pub fs_write: bool,
}

impl Grants {
    /// Grant running `program`.
    pub fn allow_exec(&mut self, program: impl Into<String>) {
        self.exec.insert(program.into());
    }

    /// Grant reaching `spec` (`host:port`, `host`, or a URL).
    pub fn allow_net(&mut self, spec: &str) -> Result<(), String> {
        self.net.insert(NetTarget::parse_grant(spec)?);
        Ok(())
    }

    /// Whether a request to `host:port` is allowed.
    pub fn net_allows(&self, target: &NetTarget) -> bool {
        self.net.contains(target)
    }
}

/// A normalised `host:port`. `localhost`, `127.0.0.1` and `::1` are the same
/// loopback host; names are lower-cased; the port is always explicit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetTarget {
    pub host: String,
    pub port: u16,
}

/// The name loopback aliases normalise to.
const LOOPBACK: &str = "localhost";

impl NetTarget {
    /// Normalise a host and port.
    pub fn new(host: &str, port: u16) -> Self {
        // A trailing dot (a fully qualified name) names the same host.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let host = match host.as_str() {
            "localhost" | "127.0.0.1" | "::1" | "0:0:0:0:0:0:0:1" => LOOPBACK.to_owned(),
            _ => host,
        };
        Self { host, port }
    }

    /// Parse a grant: `host:port`, `[v6]:port`, or a URL `http(s)://host[:port]`
    /// (its default port). A bare host without a port is refused: say which port.
    pub fn parse_grant(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let lower = spec.to_ascii_lowercase();
        let (rest, default_port) = if lower.starts_with("http://") {
            (&spec["http://".len()..], Some(80))
        } else if lower.starts_with("https://") {
            (&spec["https://".len()..], Some(443))
        } else {
            (spec, None)
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (host, port) = split_host_port(authority);
        if host.is_empty() {
            return Err(format!(
                "`{spec}` names no host; expected HOST:PORT such as 127.0.0.1:8080"
            ));
        }
        let port = match (port, default_port) {
            (Some(p), _) => p
                .parse::<u16>()
                .map_err(|_| format!("`{spec}` has an invalid port `{p}`; expected HOST:PORT"))?,
            (None, Some(d)) => d,
            (None, None) => {
                return Err(format!(
                    "`{spec}` has no port; write `{host}:80`, `{host}:443` or the port the service uses"
                ));
            }
        };
        Ok(Self::new(host, port))
    }
}

impl fmt::Display for NetTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Split `host:port` / `[v6]:port` / `host` into host and optional port text.
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':'));
        }
        return (rest, None);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_aliases_are_one_host() {
        let a = NetTarget::parse_grant("127.0.0.1:8080").unwrap();
        assert_eq!(a, NetTarget::new("localhost", 8080));
        assert_eq!(a, NetTarget::new("[::1]", 8080));
        assert_eq!(a, NetTarget::new("LOCALHOST", 8080));
        assert_ne!(a, NetTarget::new("127.0.0.1", 8081));
        // A fully qualified name (trailing dot) is the same host.
        assert_eq!(a, NetTarget::new("127.0.0.1.", 8080));
        assert_eq!(a, NetTarget::new("localhost.", 8080));
        assert_eq!(
            NetTarget::new("Example.COM.", 80),
            NetTarget::new("example.com", 80)
        );
    }

    #[test]
    fn urls_get_their_default_port() {
        assert_eq!(
            NetTarget::parse_grant("http://Example.com/x").unwrap(),
            NetTarget::new("example.com", 80)
        );
        assert_eq!(
            NetTarget::parse_grant("https://example.com").unwrap(),
            NetTarget::new("example.com", 443)
        );
        assert_eq!(
            NetTarget::parse_grant("https://example.com:8443/").unwrap(),
            NetTarget::new("example.com", 8443)
        );
    }

    #[test]
    fn a_query_or_fragment_right_after_the_host_is_not_part_of_it() {
        assert_eq!(
            NetTarget::parse_grant("http://h:8080?x=1").unwrap(),
            NetTarget::new("h", 8080)
        );
        assert_eq!(
            NetTarget::parse_grant("HTTPS://H#top").unwrap(),
            NetTarget::new("h", 443)
        );
    }

    #[test]
    fn bare_host_without_port_is_refused_with_a_hint() {
        let e = NetTarget::parse_grant("example.com").unwrap_err();
        assert!(e.contains("example.com:443"), "{e}");
        assert!(NetTarget::parse_grant(":80").is_err());
        assert!(NetTarget::parse_grant("h:99999").is_err());
    }

    #[test]
    fn ipv6_and_userinfo_parse() {
        assert_eq!(
            NetTarget::parse_grant("[::1]:9").unwrap(),
            NetTarget::new("127.0.0.1", 9)
        );
        assert_eq!(
            NetTarget::parse_grant("http://u:p@h.example:81").unwrap(),
            NetTarget::new("h.example", 81)
        );
        assert_eq!(NetTarget::new("fe80::1", 80).to_string(), "[fe80::1]:80");
    }

    #[test]
    fn grants_deny_by_default() {
        let g = Grants::default();
        assert!(!g.net_allows(&NetTarget::new("localhost", 80)));
        assert!(g.exec.is_empty() && g.env.is_empty() && !g.fs_write);
    }
}
