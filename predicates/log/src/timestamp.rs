//! Leading timestamps of log lines, for `since`: RFC 3339 / ISO 8601
//! (`2026-11-24T10:00:00Z`, `2026-11-24 10:00:00.123+02:00`, `2026-11-24T10:00:00+0000`),
//! Python's comma fraction (`2026-11-24 10:00:00,123`), Go's `2026/11/24 10:00:00`,
//! optionally inside `[…]`, after `time=`/`ts=` (logfmt), or as the `time`,
//! `timestamp`, `@timestamp` or `ts` field of a JSON line. A time without a zone is
//! taken as UTC (the sandbox has no time zone).

/// Milliseconds since the Unix epoch of the timestamp a line starts with, if any.
pub fn leading(line: &str) -> Option<i64> {
    let s = line.trim_start();
    if s.starts_with('{') {
        return json_field(s);
    }
    let s = s.strip_prefix(['[', '(']).unwrap_or(s);
    let s = ["time=", "ts=", "timestamp="]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .map(|r| r.strip_prefix('"').unwrap_or(r))
        .unwrap_or(s);
    parse(s)
}

/// The timestamp in a JSON line's `time`, `timestamp`, `@timestamp` or `ts` string field.
fn json_field(s: &str) -> Option<i64> {
    let head = &s[..floor_boundary(s, 512)];
    for key in ["\"time\"", "\"timestamp\"", "\"@timestamp\"", "\"ts\""] {
        if let Some(i) = head.find(key) {
            let rest = head[i + key.len()..]
                .trim_start()
                .strip_prefix(':')?
                .trim_start();
            if let Some(value) = rest.strip_prefix('"') {
                return parse(value);
            }
        }
    }
    None
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A cursor over ASCII bytes.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<i64> {
        let slice = self.b.get(self.i..self.i + n)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(
            slice
                .iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')),
        )
    }

    fn eat(&mut self, options: &[u8]) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        if options.contains(&c) {
            self.i += 1;
            Some(c)
        } else {
            None
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
}

/// Parse a timestamp at the start of `s`.
pub fn parse(s: &str) -> Option<i64> {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let year = c.digits(4)?;
    let sep = c.eat(b"-/")?;
    let month = c.digits(2)?;
    c.eat(&[sep])?;
    let day = c.digits(2)?;
    c.eat(b"T ")?;
    let hour = c.digits(2)?;
    c.eat(b":")?;
    let minute = c.digits(2)?;
    let mut second = 0;
    let mut millis = 0;
    if c.eat(b":").is_some() {
        second = c.digits(2)?;
        if c.eat(b".,").is_some() {
            let start = c.i;
            while c.peek().is_some_and(|d| d.is_ascii_digit()) {
                c.i += 1;
            }
            let frac = &s[start..c.i];
            if frac.is_empty() {
                return None;
            }
            let ms = format!("{:0<3}", &frac[..frac.len().min(3)]);
            millis = ms.parse::<i64>().ok()?;
        }
    }
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Zone: Z, ±HH:MM, ±HHMM, ±HH, or none (UTC).
    let mut offset_min = 0;
    match c.peek() {
        Some(b'Z' | b'z') => c.i += 1,
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let h = c.digits(2)?;
            let m = if c.eat(b":").is_some() {
                c.digits(2)?
            } else {
                c.digits(2).unwrap_or(0)
            };
            if h > 23 || m > 59 {
                return None;
            }
            offset_min = (h * 60 + m) * if sign == b'+' { 1 } else { -1 };
        }
        _ => {}
    }
    // A timestamp ends here: not in the middle of a longer number.
    if c.peek().is_some_and(|d| d.is_ascii_digit()) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-24T10:00:00Z
    const T: i64 = 1_795_514_400_000;

    #[test]
    fn epoch_arithmetic() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("2026-11-24T10:00:00Z"), Some(T));
    }

    #[test]
    fn formats() {
        for (line, want) in [
            ("2026-11-24T10:00:00Z GET /", T),
            ("2026-11-24 10:00:00 ERROR x", T),
            ("2026-11-24T10:00:00.250Z x", T + 250),
            ("2026-11-24 10:00:00,5 ERROR py", T + 500),
            ("2026-11-24T12:00:00+02:00 x", T),
            ("2026-11-24T05:00:00-0500 host app[1]: x", T),
            ("2026-11-24T11:00:00+01 x", T),
            ("2026/11/24 10:00:00 go log", T),
            ("2026-11-24T10:00 short", T),
            ("[2026-11-24T10:00:00Z] bracketed", T),
            ("  2026-11-24T10:00:00.123456789Z docker", T + 123),
            ("time=2026-11-24T10:00:00Z level=error", T),
            ("time=\"2026-11-24T10:00:00Z\" level=error", T),
            (
                r#"{"level":"error","time":"2026-11-24T10:00:00Z","msg":"x"}"#,
                T,
            ),
            (r#"{"@timestamp": "2026-11-24T10:00:00.000Z"}"#, T),
            (r#"{"ts":"2026-11-24T10:00:00Z"}"#, T),
        ] {
            assert_eq!(leading(line), Some(want), "{line}");
        }
    }

    #[test]
    fn not_timestamps() {
        for line in [
            "",
            "ERROR at 2026-11-24T10:00:00Z",
            "2026-11-24",
            "2026-13-01T00:00:00Z",
            "2026-11-24T25:00:00Z",
            "2026-11-24T10:00:00.Z",
            "2026-11-24X10:00:00",
            "2026-11/24 10:00:00",
            "Nov 24 10:00:00 host x",
            "20261124T100000Z",
            "2026-11-24 10:00:001",
            r#"{"time": 1795514400}"#,
            "{not json",
        ] {
            assert_eq!(leading(line), None, "{line}");
        }
    }
}
