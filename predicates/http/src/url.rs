//! The probed address: an absolute `http://` or `https://` URL, split into the parts
//! `wasi:http` wants (scheme, authority, path with query). Checked without any I/O.

use std::fmt;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// The port a URL without one uses.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// The host as written (lower-cased), with brackets around an IPv6 address.
    pub host: String,
    /// The explicit port, if the URL has one.
    pub port: Option<u16>,
    /// Path and query, starting with `/`; non-ASCII is percent-encoded.
    pub path_and_query: String,
    /// The URL as the user wrote it, without a fragment; used in every message.
    shown: String,
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Url {
    /// Parse `text`; the error is a fragment that reads after "`url` …".
    pub fn parse(text: &str) -> Result<Url, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(
                "is empty; hint: write the full address, e.g. `http://127.0.0.1:8080/healthz`"
                    .into(),
            );
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "`{text}` contains {}; hint: percent-encode it (a space is `%20`)",
                match c {
                    ' ' => "a space".to_owned(),
                    c => format!("the character {c:?}"),
                }
            ));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "`{text}` is not an absolute URL; hint: write `http://{}`",
                text.trim_start_matches('/')
            ));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(format!(
                    "`{text}` uses the scheme `{other}`; only http and https are supported"
                ));
            }
        };
        // The fragment never goes on the wire.
        let without_fragment = text.split('#').next().unwrap_or(text);
        let rest = rest.split('#').next().unwrap_or(rest);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(format!(
                "`{text}` has credentials in it; hint: send them as a header instead, e.g. `headers = {{ Authorization = \"Bearer …\" }}`"
            ));
        }
        let (host, port) = split_host_port(authority).map_err(|why| format!("`{text}`: {why}"))?;
        let path_and_query = match tail {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{}", encode_non_ascii(t)),
            t => encode_non_ascii(t),
        };
        Ok(Url {
            scheme,
            host,
            port,
            path_and_query,
            shown: without_fragment.to_owned(),
        })
    }

    /// `host[:port]` as it goes into the request's authority.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// `host:port` with the port always present, as a grant under `[predicate.allow] net`.
    pub fn target(&self) -> String {
        format!(
            "{}:{}",
            self.host,
            self.port.unwrap_or(self.scheme.default_port())
        )
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    if authority.is_empty() {
        return Err("names no host".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let close = v6
            .find(']')
            .ok_or_else(|| "has an unclosed `[` in its host".to_owned())?;
        let addr = &v6[..close];
        if addr.is_empty()
            || !addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("`[{addr}]` is not an IPv6 address"));
        }
        let after = &v6[close + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("has `{p}` after the IPv6 address"))?,
            ),
        };
        (format!("[{}]", addr.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("names no host".into());
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return Err(format!("the host `{host}` contains `{c}`"));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some("") => return Err("has a `:` but no port after it".into()),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("`{p}` is not a port (1 to 65535)")),
        },
    };
    Ok((host, port))
}

/// Percent-encode every byte outside printable ASCII; everything else is kept as written.
fn encode_non_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn splits_the_parts_wasi_http_wants() {
        let u = parse("http://127.0.0.1:8080/healthz?verbose=1#top");
        assert_eq!(u.scheme, Scheme::Http);
        assert_eq!(u.authority(), "127.0.0.1:8080");
        assert_eq!(u.path_and_query, "/healthz?verbose=1");
        assert_eq!(u.to_string(), "http://127.0.0.1:8080/healthz?verbose=1");
        assert_eq!(u.target(), "127.0.0.1:8080");
    }

    #[test]
    fn default_path_and_ports() {
        let u = parse("https://Example.COM");
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!(u.authority(), "example.com");
        assert_eq!(u.path_and_query, "/");
        assert_eq!(u.target(), "example.com:443");
        assert_eq!(parse("HTTP://localhost").target(), "localhost:80");
        assert_eq!(parse("http://h?x=1").path_and_query, "/?x=1");
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let u = parse("http://[::1]:9090/x");
        assert_eq!(u.authority(), "[::1]:9090");
        assert_eq!(parse("http://[::1]/").target(), "[::1]:80");
    }

    #[test]
    fn non_ascii_paths_are_percent_encoded() {
        assert_eq!(parse("http://h/café").path_and_query, "/caf%C3%A9");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, needle) in [
            ("", "is empty"),
            (
                "localhost:8080/healthz",
                "hint: write `http://localhost:8080/healthz`",
            ),
            ("ftp://h/", "scheme `ftp`"),
            ("http:///x", "names no host"),
            ("http://:80/", "names no host"),
            ("http://h:/", "no port after it"),
            ("http://h:0/", "is not a port"),
            ("http://h:99999/", "is not a port"),
            ("http://h:x/", "is not a port"),
            ("http://u:p@h/", "credentials"),
            ("http://h/a b", "a space"),
            ("http://[::1/", "unclosed `[`"),
            ("http://[zz]/", "not an IPv6 address"),
            ("http://[::1]x/", "after the IPv6 address"),
            ("http://h!/", "contains `!`"),
        ] {
            let err = Url::parse(url).unwrap_err();
            assert!(err.contains(needle), "{url}: {err}");
        }
    }
}
