//! `expect_status`: which response codes count as healthy.

use std::fmt;

use kazi_sdk::prelude::*;

/// One accepted code or class of codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPattern {
    /// Exactly this code.
    Code(u16),
    /// Any code of this hundred: `2xx` is `Class(2)`.
    Class(u16),
}

impl StatusPattern {
    fn allows(self, status: u16) -> bool {
        match self {
            StatusPattern::Code(c) => status == c,
            StatusPattern::Class(k) => status / 100 == k,
        }
    }
}

impl fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusPattern::Code(c) => write!(f, "{c}"),
            StatusPattern::Class(k) => write!(f, "{k}xx"),
        }
    }
}

/// The accepted codes; the default is any 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusExpectation(Vec<StatusPattern>);

impl Default for StatusExpectation {
    fn default() -> Self {
        Self(vec![StatusPattern::Class(2)])
    }
}

impl StatusExpectation {
    /// Parse `expect_status`: a code, a class such as `"2xx"`, or a non-empty list of them.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let items: Vec<&Value> = match value {
            Value::Array(items) if items.is_empty() => {
                return Err("must list at least one status code".into());
            }
            Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        items
            .into_iter()
            .map(pattern)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `status` is accepted.
    pub fn allows(&self, status: u16) -> bool {
        self.0.iter().any(|p| p.allows(status))
    }

    /// Whether any accepted code is a redirect (then a 3xx answer needs no hint).
    pub fn expects_redirect(&self) -> bool {
        self.0.iter().any(|p| match p {
            StatusPattern::Code(c) => *c / 100 == 3,
            StatusPattern::Class(k) => *k == 3,
        })
    }
}

impl fmt::Display for StatusExpectation {
    /// `200`, `200 or 204`, `200, 201 or 204`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(if i + 1 == n { " or " } else { ", " })?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

fn pattern(v: &Value) -> Result<StatusPattern, String> {
    if let Some(n) = v.as_u64() {
        return match u16::try_from(n) {
            Ok(c) if (100..=599).contains(&c) => Ok(StatusPattern::Code(c)),
            _ => Err(format!("{n} is not an HTTP status code (100 to 599)")),
        };
    }
    if let Some(s) = v.as_str() {
        let s = s.trim();
        if let Ok(c) = s.parse::<u16>() {
            return pattern(&Value::from(c));
        }
        let bytes = s.as_bytes();
        if bytes.len() == 3
            && (b'1'..=b'5').contains(&bytes[0])
            && bytes[1..].eq_ignore_ascii_case(b"xx")
        {
            return Ok(StatusPattern::Class(u16::from(bytes[0] - b'0')));
        }
        return Err(format!(
            "\"{s}\" is not a status code; write a number such as 200 or a class such as \"2xx\""
        ));
    }
    Err(format!(
        "must be a status code such as 200, a class such as \"2xx\", or a list of them, got {v}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> StatusExpectation {
        StatusExpectation::parse(&v).unwrap()
    }

    #[test]
    fn default_accepts_any_2xx() {
        let d = StatusExpectation::default();
        assert!(d.allows(200) && d.allows(204) && d.allows(299));
        assert!(!d.allows(199) && !d.allows(301) && !d.allows(503));
        assert_eq!(d.to_string(), "2xx");
    }

    #[test]
    fn codes_classes_and_lists() {
        let one = parse(json!(200));
        assert!(one.allows(200) && !one.allows(201));
        assert_eq!(one.to_string(), "200");
        let list = parse(json!([200, 204, "3xx"]));
        assert!(list.allows(204) && list.allows(302) && !list.allows(201));
        assert_eq!(list.to_string(), "200, 204 or 3xx");
        assert!(list.expects_redirect());
        assert_eq!(parse(json!([200, 404])).to_string(), "200 or 404");
        assert!(parse(json!("5XX")).allows(503));
        assert!(parse(json!("201")).allows(201));
        assert!(!parse(json!(200)).expects_redirect());
    }

    #[test]
    fn bad_expectations() {
        for (v, needle) in [
            (json!([]), "at least one"),
            (json!(99), "not an HTTP status code"),
            (json!(600), "not an HTTP status code"),
            (json!("ok"), "not a status code"),
            (json!("6xx"), "not a status code"),
            (json!(true), "must be a status code"),
            (json!([200, 2.5]), "must be a status code"),
        ] {
            let err = StatusExpectation::parse(&v).unwrap_err();
            assert!(err.contains(needle), "{v}: {err}");
        }
    }
}
