//! Small text helpers for evidence and messages: bounded output (head and tail),
//! the last lines of a log, and "did you mean" hints for misspelt keys.

use std::borrow::Cow;

/// Keep `text` within about `max` bytes by keeping its head and its tail, cut at line
/// breaks where a line break is near, with a marker saying how much was left out.
/// Text that already fits is returned as is.
pub fn head_tail(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let budget = max.saturating_sub(48);
    let head_budget = budget / 2;
    let tail_budget = budget - head_budget;

    let mut head_end = floor_char_boundary(text, head_budget);
    // Prefer ending the head after a line break in its second half.
    if let Some(nl) = text[..head_end].rfind('\n')
        && nl + 1 >= head_end / 2
    {
        head_end = nl + 1;
    }
    let mut tail_start = ceil_char_boundary(text, text.len() - tail_budget);
    // Prefer starting the tail at the beginning of a line in its first half.
    if let Some(nl) = text[tail_start..].find('\n') {
        let candidate = tail_start + nl + 1;
        if candidate - tail_start <= tail_budget / 2 && candidate < text.len() {
            tail_start = candidate;
        }
    }
    let omitted = tail_start - head_end;
    let mut out = String::with_capacity(head_end + (text.len() - tail_start) + 48);
    out.push_str(&text[..head_end]);
    if !out.ends_with('\n') && !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&format!("[… {omitted} bytes omitted …]\n"));
    out.push_str(&text[tail_start..]);
    Cow::Owned(out)
}

/// The last `max_lines` non-empty lines of `text` (trailing whitespace trimmed), joined
/// with `\n` and kept within about `max_bytes` (the end is kept). Empty when `text`
/// has no non-blank line.
pub fn tail_lines(text: &str, max_lines: usize, max_bytes: usize) -> String {
    let mut lines: Vec<&str> = text
        .lines()
        .rev()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .take(max_lines)
        .collect();
    lines.reverse();
    let joined = lines.join("\n");
    if joined.len() <= max_bytes {
        return joined;
    }
    let start = ceil_char_boundary(&joined, joined.len() - max_bytes.saturating_sub(3));
    format!("…{}", &joined[start..])
}

/// Shorten `text` to at most `max` characters, ending with `…` when it was cut.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let cut = text
                .char_indices()
                .nth(max.saturating_sub(1))
                .map_or(text.len(), |(i, _)| i);
            Cow::Owned(format!("{}…", &text[..cut]))
        }
    }
}

/// The candidate closest to `word`, when it is close enough to be a likely typo
/// (an edit distance of at most a third of the word's length, and at least 1).
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The optimal-string-alignment distance between two strings (Levenshtein plus
/// adjacent transpositions), counted in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_tail_keeps_short_text() {
        assert!(matches!(head_tail("abc", 10), Cow::Borrowed("abc")));
    }

    #[test]
    fn head_tail_keeps_both_ends_within_budget() {
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let out = head_tail(&text, 400);
        assert!(out.len() <= 400 + 48, "{}", out.len());
        assert!(out.starts_with("line 0\n"));
        assert!(out.ends_with("line 999\n"));
        assert!(out.contains("bytes omitted"));
    }

    #[test]
    fn head_tail_respects_char_boundaries() {
        let text = "é".repeat(500);
        let out = head_tail(&text, 101);
        assert!(out.contains("bytes omitted"));
        assert!(out.starts_with('é') && out.ends_with('é'));
    }

    #[test]
    fn tail_lines_skips_blank_lines_and_bounds() {
        assert_eq!(tail_lines("a\n\nb\n  \nc\n\n", 2, 100), "b\nc");
        assert_eq!(tail_lines("\n \n", 3, 100), "");
        let long = "x".repeat(50);
        let out = tail_lines(&long, 1, 10);
        assert!(out.starts_with('…') && out.len() <= 12);
    }

    #[test]
    fn truncate_marks_cuts() {
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello world", 6), "hello…");
    }

    #[test]
    fn did_you_mean_finds_close_keys() {
        let keys = ["contains", "matches", "equals", "path", "glob"];
        assert_eq!(did_you_mean("contians", keys), Some("contains"));
        assert_eq!(did_you_mean("math", keys), Some("path"));
        assert_eq!(did_you_mean("pth", keys), Some("path"));
        assert_eq!(did_you_mean("frobnicate", keys), None);
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
