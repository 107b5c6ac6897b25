//! A TOML document as a tree whose every key and value keeps its byte span, so each
//! error can name its line and column.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// A value with where it stands in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Range<usize>,
    pub value: Value,
}

/// A key with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub span: Range<usize>,
    pub name: String,
}

/// TOML values.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Table),
}

/// A table in document order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub entries: Vec<(Key, Node)>,
}

impl Table {
    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }

    /// The key for `name`.
    pub fn key(&self, name: &str) -> Option<&Key> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(k, _)| k)
    }
}

impl Value {
    /// The TOML type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a datetime",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }

    /// The value as JSON (datetimes become strings).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::String(s) | Value::Datetime(s) => serde_json::Value::String(s.clone()),
            Value::Integer(i) => (*i).into(),
            Value::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
            }
            Value::Boolean(b) => (*b).into(),
            Value::Array(items) => items.iter().map(|n| n.value.to_json()).collect(),
            Value::Table(t) => t
                .entries
                .iter()
                .map(|(k, v)| (k.name.clone(), v.value.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// A short rendering of the value for messages.
    pub fn quote(&self) -> String {
        if let Value::Float(f) = self
            && !f.is_finite()
        {
            return f.to_string().to_lowercase();
        }
        let json = self.to_json().to_string();
        crate::verdict::truncate_middle(&json, 80).replace('\n', " ")
    }
}

/// Longest line excerpt shown under a load error.
pub const EXCERPT: usize = 160;

/// About [`EXCERPT`] bytes of `line` around 1-based character column `col`.
pub fn excerpt(line: &str, col: usize) -> String {
    if line.len() <= EXCERPT {
        return line.to_owned();
    }
    let at = line
        .char_indices()
        .nth(col.saturating_sub(1))
        .map_or(line.len(), |(i, _)| i);
    let mut start = at.saturating_sub(EXCERPT / 2);
    while !line.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + EXCERPT).min(line.len());
    while !line.is_char_boundary(end) {
        end += 1;
    }
    format!(
        "{}{}{}",
        if start > 0 { "…" } else { "" },
        &line[start..end],
        if end < line.len() { "…" } else { "" }
    )
}

/// Parse `text` into a spanned tree.
pub fn parse(text: &str) -> Result<Table, (Option<Range<usize>>, String)> {
    let table = DeTable::parse(text).map_err(|e| (e.span(), e.message().to_owned()))?;
    let mut out = Table::default();
    convert_table(table.into_inner(), &mut out).map_err(|(span, m)| (Some(span), m))?;
    Ok(out)
}

fn convert_table(table: DeTable<'_>, out: &mut Table) -> Result<(), (Range<usize>, String)> {
    for (k, v) in table {
        let key = Key {
            span: k.span(),
            name: k.into_inner().into_owned(),
        };
        let span = v.span();
        let value = convert(v.into_inner(), span.clone())?;
        out.entries.push((key, Node { span, value }));
    }
    Ok(())
}

fn convert(v: DeValue<'_>, span: Range<usize>) -> Result<Value, (Range<usize>, String)> {
    Ok(match v {
        DeValue::String(s) => Value::String(s.into_owned()),
        DeValue::Integer(i) => {
            Value::Integer(i64::from_str_radix(i.as_str(), i.radix()).map_err(|_| {
                (
                    span.clone(),
                    format!("integer `{}` does not fit in 64 bits", i.as_str()),
                )
            })?)
        }
        DeValue::Float(f) => {
            let text = f.as_str().replace('_', "");
            let value = match text.as_str() {
                "inf" | "+inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" | "+nan" | "-nan" => f64::NAN,
                t => t
                    .parse()
                    .map_err(|_| (span.clone(), format!("invalid float `{t}`")))?,
            };
            Value::Float(value)
        }
        DeValue::Boolean(b) => Value::Boolean(b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                let s = item.span();
                out.push(Node {
                    span: s.clone(),
                    value: convert(item.into_inner(), s)?,
                });
            }
            Value::Array(out)
        }
        DeValue::Table(t) => {
            let mut out = Table::default();
            convert_table(t, &mut out)?;
            Value::Table(out)
        }
    })
}

/// Maps byte offsets to 1-based line and column.
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    /// 1-based line and column (in characters) of `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let start = self.starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        (line + 1, col + 1)
    }

    /// An excerpt of line `line` for a message: the whole line when it is short,
    /// else about [`EXCERPT`] bytes around column `col` with `…` where it was cut.
    pub fn excerpt(&self, line: usize, col: usize) -> String {
        excerpt(self.line_text(line), col)
    }

    /// The text of 1-based line `line`, without its newline.
    pub fn line_text(&self, line: usize) -> &'a str {
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let end = self.starts.get(line).map_or(self.text.len(), |e| e - 1);
        self.text
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches('\r')
    }
}

#[cfg(test)]
mod excerpt_tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let line = format!("{}BAD{}", "a".repeat(10_000), "b".repeat(10_000));
        let e = excerpt(&line, 10_001);
        assert!(e.len() < EXCERPT + 10, "{}", e.len());
        assert!(
            e.contains("BAD") && e.starts_with('…') && e.ends_with('…'),
            "{e}"
        );
        assert_eq!(excerpt("short", 3), "short");
        assert_eq!(Value::Float(f64::NAN).quote(), "nan");
        assert_eq!(Value::Float(f64::NEG_INFINITY).quote(), "-inf");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_map_to_lines_and_columns() {
        let text = "a = 1\n[t]\nkey = \"v\"\n";
        let t = parse(text).unwrap();
        let Value::Table(inner) = &t.get("t").unwrap().value else {
            panic!()
        };
        let key = inner.key("key").unwrap();
        let idx = LineIndex::new(text);
        assert_eq!(idx.line_col(key.span.start), (3, 1));
        assert_eq!(idx.line_text(3), "key = \"v\"");
    }

    #[test]
    fn values_convert_to_json() {
        let t = parse("x = [1, 2.5, \"s\", true, { a = 1 }]\nd = 1979-05-27T07:32:00Z\nh = 0x10")
            .unwrap();
        assert_eq!(
            t.get("x").unwrap().value.to_json(),
            serde_json::json!([1, 2.5, "s", true, {"a": 1}])
        );
        assert_eq!(
            t.get("d").unwrap().value.to_json(),
            serde_json::json!("1979-05-27T07:32:00Z")
        );
        assert_eq!(t.get("h").unwrap().value, Value::Integer(16));
    }

    #[test]
    fn syntax_errors_carry_a_span() {
        let (span, msg) = parse("a = \n").unwrap_err();
        assert!(span.is_some());
        assert!(!msg.is_empty());
    }
}
