//! `pass_when`: a comparison such as `"== 0"`, `">= 3"`, `"!= 0"`, `'== "ok"'` or
//! `"== true"`, applied to a match count or to a value found in JSON output.

use std::fmt;

use serde_json::Value;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Gt,
    Le,
    Lt,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Lt => "<",
        }
    }

    fn ordering(self) -> bool {
        matches!(self, Op::Ge | Op::Gt | Op::Le | Op::Lt)
    }

    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => ord == Equal,
            Op::Ne => ord != Equal,
            Op::Ge => ord != Less,
            Op::Gt => ord == Greater,
            Op::Le => ord != Greater,
            Op::Lt => ord == Less,
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Number(f64),
    Text(String),
    Bool(bool),
    Null,
}

/// A parsed `pass_when`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub op: Op,
    pub operand: Operand,
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.op.symbol())?;
        match &self.operand {
            Operand::Number(n) => write!(f, "{}", number(*n)),
            Operand::Text(s) => write!(f, "{s:?}"),
            Operand::Bool(b) => write!(f, "{b}"),
            Operand::Null => f.write_str("null"),
        }
    }
}

/// A number as people write it: `3`, not `3.0`.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

impl Comparison {
    /// `>= 1`: the default for `match`.
    pub fn at_least_one() -> Comparison {
        Comparison {
            op: Op::Ge,
            operand: Operand::Number(1.0),
        }
    }

    /// Parse `"== 0"`, `">=3"`, `"< 2.5"`, `"!= 0"`, `'== "ok"'`, `"== true"`,
    /// `"== null"`, or a bare value (meaning `==`). The error says what is wrong.
    pub fn parse(text: &str) -> Result<Comparison, String> {
        let t = text.trim();
        let (op, rest) = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
        ]
        .iter()
        .find_map(|(tok, op)| t.strip_prefix(tok).map(|r| (*op, r.trim())))
        .unwrap_or((Op::Eq, t));
        let bad = |why: &str| {
            format!(
                "{text:?} {why}; hint: write a comparison such as \"== 0\", \">= 3\", \"!= 0\", '== \"ok\"' or \"== true\""
            )
        };
        if rest.is_empty() {
            return Err(bad("has no value to compare with"));
        }
        let operand = if let Some(q @ ('"' | '\'')) = rest.chars().next() {
            let body = &rest[1..];
            if body.is_empty() || !body.ends_with(q) {
                return Err(bad("has an unclosed quote"));
            }
            let inner = &body[..body.len() - 1];
            if q == '"' {
                // Accept JSON escapes inside double quotes.
                match serde_json::from_str::<String>(rest) {
                    Ok(s) => Operand::Text(s),
                    Err(_) => Operand::Text(inner.to_owned()),
                }
            } else {
                Operand::Text(inner.to_owned())
            }
        } else {
            match rest {
                "true" => Operand::Bool(true),
                "false" => Operand::Bool(false),
                "null" => Operand::Null,
                _ => match rest.parse::<f64>() {
                    Ok(n) if n.is_finite() => Operand::Number(n),
                    _ => {
                        return Err(bad(&format!(
                            "compares with `{rest}`, which is not a number, a quoted text, true, false or null"
                        )));
                    }
                },
            }
        };
        if op.ordering() && !matches!(operand, Operand::Number(_)) {
            return Err(bad(&format!(
                "orders with `{}`, which only works with numbers",
                op.symbol()
            )));
        }
        Ok(Comparison { op, operand })
    }

    /// Whether the comparison takes a number (as it must for a match count).
    pub fn is_numeric(&self) -> bool {
        matches!(self.operand, Operand::Number(_))
    }

    /// Whether a count satisfies the comparison.
    pub fn holds_for_count(&self, n: u64) -> bool {
        self.holds_for_number(n as f64)
    }

    fn holds_for_number(&self, n: f64) -> bool {
        match self.operand {
            Operand::Number(want) => n.partial_cmp(&want).is_some_and(|ord| self.op.holds(ord)),
            _ => self.op == Op::Ne,
        }
    }

    /// Whether a JSON value satisfies the comparison. Numbers compare by value; a
    /// string holding a number compares as that number against a numeric operand;
    /// an array or object compares by its length against a numeric operand. Values
    /// of another kind are unequal to the operand (so only `!=` holds).
    pub fn holds_for_value(&self, v: &Value) -> bool {
        let ord = match (&self.operand, v) {
            (Operand::Number(want), Value::Number(n)) => {
                n.as_f64().and_then(|n| n.partial_cmp(want))
            }
            (Operand::Number(want), Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|n| n.partial_cmp(want)),
            (Operand::Number(want), Value::Array(items)) => (items.len() as f64).partial_cmp(want),
            (Operand::Number(want), Value::Object(map)) => (map.len() as f64).partial_cmp(want),
            (Operand::Text(want), Value::String(s)) => Some(s.as_str().cmp(want.as_str())),
            (Operand::Bool(want), Value::Bool(b)) => Some(b.cmp(want)),
            (Operand::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
            _ => None,
        };
        match ord {
            Some(ord) => self.op.holds(ord),
            None => self.op == Op::Ne,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(s: &str) -> Comparison {
        Comparison::parse(s).unwrap()
    }

    #[test]
    fn parses_operators_and_operands() {
        assert_eq!(c("== 0").to_string(), "== 0");
        assert_eq!(c(">=3").to_string(), ">= 3");
        assert_eq!(c(" < 2.5 ").to_string(), "< 2.5");
        assert_eq!(c("!= 0").to_string(), "!= 0");
        assert_eq!(c("= 1").to_string(), "== 1");
        assert_eq!(c("7").to_string(), "== 7");
        assert_eq!(c("== \"ok\"").operand, Operand::Text("ok".into()));
        assert_eq!(c("== 'a b'").operand, Operand::Text("a b".into()));
        assert_eq!(
            c("== \"tab\\there\"").operand,
            Operand::Text("tab\there".into())
        );
        assert_eq!(c("== true").operand, Operand::Bool(true));
        assert_eq!(c("!= false").operand, Operand::Bool(false));
        assert_eq!(c("== null").operand, Operand::Null);
        assert_eq!(c("== -1").operand, Operand::Number(-1.0));
    }

    #[test]
    fn refuses_nonsense_with_a_hint() {
        for bad in [
            "",
            "==",
            ">= ok",
            "> \"a\"",
            "< true",
            "== \"open",
            "== passed",
        ] {
            let err = Comparison::parse(bad).unwrap_err();
            assert!(err.contains("; hint: write a comparison"), "{bad}: {err}");
            assert!(err.contains("hint:"), "{bad}: {err}");
        }
        assert!(
            Comparison::parse("== passed")
                .unwrap_err()
                .contains("`passed`")
        );
    }

    #[test]
    fn numbers_print_plainly() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(-2.0), "-2");
    }

    #[test]
    fn counts() {
        assert!(c("== 0").holds_for_count(0));
        assert!(!c("== 0").holds_for_count(1));
        assert!(c(">= 3").holds_for_count(3));
        assert!(!c(">= 3").holds_for_count(2));
        assert!(c("< 2").holds_for_count(1));
        assert!(c("!= 0").holds_for_count(4));
        assert!(c("> 0").holds_for_count(1));
        assert!(c("<= 0").holds_for_count(0));
        assert!(!c("== \"x\"").holds_for_count(0));
    }

    #[test]
    fn json_values() {
        assert!(c("== 0").holds_for_value(&json!(0)));
        assert!(c("== 0").holds_for_value(&json!(0.0)));
        assert!(c(">= 0.9").holds_for_value(&json!(0.95)));
        assert!(c("== 3").holds_for_value(&json!("3")));
        assert!(c("== 0").holds_for_value(&json!([])));
        assert!(!c("== 0").holds_for_value(&json!([1])));
        assert!(c("== 2").holds_for_value(&json!({"a": 1, "b": 2})));
        assert!(c("== \"ok\"").holds_for_value(&json!("ok")));
        assert!(!c("== \"ok\"").holds_for_value(&json!("OK")));
        assert!(c("!= \"ok\"").holds_for_value(&json!(1)));
        assert!(c("== true").holds_for_value(&json!(true)));
        assert!(!c("== true").holds_for_value(&json!("true")));
        assert!(c("== null").holds_for_value(&json!(null)));
        assert!(!c("== 0").holds_for_value(&json!(null)));
        assert!(!c(">= 0").holds_for_value(&json!("n/a")));
    }
}
