//! Workspace globs: `*`, `**`, `?`, `[abc]`, `[a-z]`, `[!abc]`, `{a,b}` and `\`
//! escapes, matched segment by segment so that the walk only enters directories a
//! pattern can match. Only regular files match; `.git` is entered only when the
//! pattern names it literally.

use std::io;
use std::path::Path;

const DOTDOT: &str = "`..` is not allowed in a glob (it could leave the workspace)";

/// At most this many patterns after `{a,b}` expansion.
const MAX_ALTERNATIVES: usize = 64;

/// A parsed glob.
#[derive(Debug, Clone)]
pub struct Glob {
    source: String,
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq)]
struct Pattern {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// A name without wildcards.
    Literal(String),
    /// `**`: zero or more directories.
    AnyDirs,
    /// A name with wildcards.
    Wild(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `[…]`: inclusive ranges, possibly negated.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    /// Parse a workspace-relative glob. Absolute globs, `..` segments and malformed
    /// classes or braces are errors.
    pub fn parse(source: &str) -> Result<Glob, String> {
        if source.trim().is_empty() {
            return Err("must not be empty".into());
        }
        if source.starts_with('/') {
            return Err(
                "is absolute; hint: write it relative to the workspace, such as `src/**/*.rs`"
                    .into(),
            );
        }
        let expanded = expand_braces(source)?;
        let mut patterns = Vec::with_capacity(expanded.len());
        for p in &expanded {
            let pattern = parse_pattern(p).map_err(|e| format!("is not a valid glob: {e}"))?;
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        Ok(Glob {
            source: source.to_owned(),
            patterns,
        })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether a workspace-relative path (with `/` separators) matches.
    #[cfg(test)]
    pub fn matches(&self, path: &str) -> bool {
        let names: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.patterns
            .iter()
            .any(|p| match_segments(&p.segments, &names))
    }

    /// The regular files under `root` that match, as sorted workspace-relative paths.
    pub fn walk(&self, root: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for p in &self.patterns {
            walk(root, "", &p.segments, &mut out)?;
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

fn walk(dir: &Path, rel: &str, segments: &[Segment], out: &mut Vec<String>) -> io::Result<()> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(());
    };
    match first {
        Segment::Literal(name) => {
            let path = dir.join(name);
            let rel = join(rel, name);
            if rest.is_empty() {
                if is_file(&path) {
                    out.push(rel);
                }
            } else if is_dir(&path) {
                walk(&path, &rel, rest, out)?;
            }
        }
        Segment::AnyDirs => {
            // Zero directories, then one more directory with `**` still in front.
            walk(dir, rel, rest, out)?;
            for (name, kind) in entries(dir)? {
                if kind == Kind::Dir && name != ".git" {
                    walk(&dir.join(&name), &join(rel, &name), segments, out)?;
                }
            }
        }
        Segment::Wild(tokens) => {
            for (name, kind) in entries(dir)? {
                if !match_tokens(tokens, &name) {
                    continue;
                }
                if rest.is_empty() {
                    if kind == Kind::File {
                        out.push(join(rel, &name));
                    }
                } else if kind == Kind::Dir && name != ".git" {
                    walk(&dir.join(&name), &join(rel, &name), rest, out)?;
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Other,
}

/// The entries of a directory with their kind. A symlink counts as the file it points
/// to, never as a directory (no cycles). A missing directory has no entries.
fn entries(dir: &Path) -> io::Result<Vec<(String, Kind)>> {
    let iter = match std::fs::read_dir(dir) {
        Ok(it) => it,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in iter {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let ty = entry.file_type()?;
        let kind = if ty.is_dir() {
            Kind::Dir
        } else if ty.is_file() || (ty.is_symlink() && is_file(&entry.path())) {
            Kind::File
        } else {
            Kind::Other
        };
        out.push((name, kind));
    }
    Ok(out)
}

fn is_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

fn is_dir(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_dir())
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}

#[cfg(test)]
fn match_segments(segments: &[Segment], names: &[&str]) -> bool {
    match segments.split_first() {
        None => names.is_empty(),
        Some((Segment::AnyDirs, rest)) => {
            (0..=names.len()).any(|skip| match_segments(rest, &names[skip..]))
        }
        Some((seg, rest)) => match names.split_first() {
            None => false,
            Some((name, names)) => {
                let ok = match seg {
                    Segment::Literal(l) => l == name,
                    Segment::Wild(tokens) => match_tokens(tokens, name),
                    Segment::AnyDirs => unreachable!(),
                };
                ok && match_segments(rest, names)
            }
        },
    }
}

/// Match one name against wildcard tokens (`*` never crosses `/`: names have none).
/// Linear backtracking: only the last `*` is ever revisited.
fn match_tokens(tokens: &[Token], name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    let (mut t, mut c) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while c < chars.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                star = Some((t, c));
                t += 1;
                continue;
            }
            Some(tok) if token_matches(tok, chars[c]) => {
                t += 1;
                c += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((st, sc)) => {
                t = st + 1;
                c = sc + 1;
                star = Some((st, sc + 1));
            }
            None => return false,
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::Star)
}

fn token_matches(token: &Token, ch: char) -> bool {
    match token {
        Token::Char(c) => *c == ch,
        Token::One => true,
        Token::Star => false,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&ch)) != *negated
        }
    }
}

fn parse_pattern(pattern: &str) -> Result<Pattern, String> {
    let mut segments: Vec<Segment> = Vec::new();
    for raw in split_segments(pattern) {
        match raw {
            "" | "." => continue,
            ".." => return Err(DOTDOT.into()),
            "**" => {
                if segments.last() != Some(&Segment::AnyDirs) {
                    segments.push(Segment::AnyDirs);
                }
            }
            _ => segments.push(parse_segment(raw)?),
        }
    }
    match segments.last() {
        None => return Err("it names no file".into()),
        // `dir/**` means every file below `dir`.
        Some(Segment::AnyDirs) => segments.push(Segment::Wild(vec![Token::Star])),
        Some(_) => {}
    }
    Ok(Pattern { segments })
}

/// Split at `/` outside of `[…]` and escapes.
fn split_segments(pattern: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_class = false;
    let mut escaped = false;
    for (i, ch) in pattern.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '/' if !in_class => {
                out.push(&pattern[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&pattern[start..]);
    out
}

fn parse_segment(raw: &str) -> Result<Segment, String> {
    let mut tokens = Vec::new();
    let mut chars = raw.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => match chars.next() {
                Some(c) => tokens.push(Token::Char(c)),
                None => return Err("a trailing `\\` escapes nothing".into()),
            },
            '?' => tokens.push(Token::One),
            '*' => {
                if chars.peek() == Some(&'*') {
                    return Err(format!(
                        "`**` must be a whole path segment (as in `src/**/*.rs`), found `{raw}`"
                    ));
                }
                tokens.push(Token::Star);
            }
            '[' => {
                let mut negated = false;
                if matches!(chars.peek(), Some('!' | '^')) {
                    negated = true;
                    chars.next();
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let Some(c) = chars.next() else {
                        return Err(format!("unclosed `[` in `{raw}`"));
                    };
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    let lo = if c == '\\' {
                        chars
                            .next()
                            .ok_or_else(|| format!("unclosed `[` in `{raw}`"))?
                    } else {
                        c
                    };
                    let mut hi = lo;
                    if chars.peek() == Some(&'-') {
                        let mut ahead = chars.clone();
                        ahead.next();
                        if let Some(&h) = ahead.peek()
                            && h != ']'
                        {
                            chars.next();
                            chars.next();
                            hi = h;
                            if hi < lo {
                                return Err(format!("bad range `{lo}-{hi}` in `{raw}`"));
                            }
                        }
                    }
                    ranges.push((lo, hi));
                }
                tokens.push(Token::Class { negated, ranges });
            }
            c => tokens.push(Token::Char(c)),
        }
    }
    if tokens.iter().all(|t| matches!(t, Token::Char(_))) {
        let name: String = tokens
            .iter()
            .map(|t| match t {
                Token::Char(c) => *c,
                _ => unreachable!(),
            })
            .collect();
        if name == ".." {
            return Err(DOTDOT.into());
        }
        Ok(Segment::Literal(name))
    } else {
        Ok(Segment::Wild(tokens))
    }
}

/// Expand `{a,b}` alternatives (nested allowed) into plain patterns.
fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let Some((open, close, alternatives)) = first_brace_group(pattern)? else {
        return Ok(vec![pattern.to_owned()]);
    };
    let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
    let mut out = Vec::new();
    for alt in alternatives {
        for expanded in expand_braces(&format!("{prefix}{alt}{suffix}"))? {
            if out.len() == MAX_ALTERNATIVES {
                return Err(format!(
                    "is not a valid glob: it expands to more than {MAX_ALTERNATIVES} patterns"
                ));
            }
            out.push(expanded);
        }
    }
    Ok(out)
}

/// A `{…}` group: the byte offsets of its braces and its comma-separated parts.
type BraceGroup<'p> = (usize, usize, Vec<&'p str>);

/// The first top-level `{…}` group.
fn first_brace_group(pattern: &str) -> Result<Option<BraceGroup<'_>>, String> {
    let bytes = pattern.as_bytes();
    let mut i = 0;
    let mut open = None;
    let mut depth = 0usize;
    let mut parts = Vec::new();
    let mut part_start = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => {
                if depth == 0 {
                    open = Some(i);
                    part_start = i + 1;
                }
                depth += 1;
            }
            b',' if depth == 1 => {
                parts.push(&pattern[part_start..i]);
                part_start = i + 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    parts.push(&pattern[part_start..i]);
                    return Ok(Some((open.unwrap_or(0), i, parts)));
                }
            }
            b'}' => {
                return Err(
                    "is not a valid glob: it has a `}` without a `{`; hint: escape it as `\\}`"
                        .into(),
                );
            }
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        return Err("is not a valid glob: it has an unclosed `{`; hint: escape it as `\\{`".into());
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str) -> Glob {
        Glob::parse(p).unwrap()
    }

    #[test]
    fn star_stays_within_a_segment() {
        assert!(g("*.rs").matches("main.rs"));
        assert!(!g("*.rs").matches("src/main.rs"));
        assert!(g("src/*.rs").matches("src/main.rs"));
        assert!(g("*").matches(".hidden"));
        assert!(g("a*b*c").matches("aXXbYYc"));
        assert!(!g("a*b*c").matches("aXXbYY"));
        assert!(g("*a*").matches("banana"));
    }

    #[test]
    fn double_star_spans_directories() {
        let glob = g("src/**/*.rs");
        assert!(glob.matches("src/lib.rs"));
        assert!(glob.matches("src/a/b/c.rs"));
        assert!(!glob.matches("tests/a.rs"));
        assert!(g("**/Cargo.toml").matches("Cargo.toml"));
        assert!(g("**/Cargo.toml").matches("a/b/Cargo.toml"));
        assert!(g("docs/**").matches("docs/a/b.md"));
        assert!(!g("docs/**").matches("docs"));
        assert!(g("**/**/x").matches("x"));
    }

    #[test]
    fn question_mark_and_classes() {
        assert!(g("?.txt").matches("a.txt"));
        assert!(!g("?.txt").matches("ab.txt"));
        assert!(g("[abc].txt").matches("b.txt"));
        assert!(!g("[abc].txt").matches("d.txt"));
        assert!(g("[a-c]x").matches("bx"));
        assert!(g("[!a-c]x").matches("dx"));
        assert!(!g("[^a-c]x").matches("ax"));
        assert!(g("[]]").matches("]"));
        assert!(g("[a-]").matches("-"));
        assert!(g("v[0-9].[0-9]").matches("v1.2"));
    }

    #[test]
    fn braces_and_escapes() {
        let glob = g("src/*.{rs,toml}");
        assert!(glob.matches("src/a.rs"));
        assert!(glob.matches("src/Cargo.toml"));
        assert!(!glob.matches("src/a.md"));
        assert!(g("{a,b/{c,d}}.txt").matches("b/d.txt"));
        assert!(g(r"\*.txt").matches("*.txt"));
        assert!(!g(r"\*.txt").matches("a.txt"));
    }

    #[test]
    fn literal_segments_are_recognised() {
        assert_eq!(
            g("./a/b.txt").patterns[0].segments,
            vec![
                Segment::Literal("a".into()),
                Segment::Literal("b.txt".into())
            ]
        );
    }

    #[test]
    fn invalid_globs_are_config_errors() {
        for (pattern, needle) in [
            ("", "must not be empty"),
            ("/etc/*", "is absolute"),
            ("../*", "leave the workspace"),
            ("a/../../b", "leave the workspace"),
            ("[abc", "unclosed `[`"),
            ("a**", "whole path segment"),
            ("{a,b", "unclosed `{`"),
            ("a}", "without a `{`"),
            ("[z-a]", "bad range"),
        ] {
            let err = Glob::parse(pattern).unwrap_err();
            assert!(err.contains(needle), "{pattern}: {err}");
        }
    }

    #[test]
    fn walk_finds_regular_files_and_skips_git() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "a.txt",
            "b.md",
            "src/lib.rs",
            "src/x/y.rs",
            ".git/objects/z.rs",
            "target/t.rs",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        std::fs::create_dir_all(root.join("dir.txt")).unwrap();
        assert_eq!(g("*.txt").walk(root).unwrap(), ["a.txt"]);
        assert_eq!(
            g("**/*.rs").walk(root).unwrap(),
            ["src/lib.rs", "src/x/y.rs", "target/t.rs"]
        );
        assert_eq!(
            g("src/**").walk(root).unwrap(),
            ["src/lib.rs", "src/x/y.rs"]
        );
        assert_eq!(g(".git/**/*.rs").walk(root).unwrap(), [".git/objects/z.rs"]);
        assert_eq!(g("src/lib.rs").walk(root).unwrap(), ["src/lib.rs"]);
        assert!(g("nope/**").walk(root).unwrap().is_empty());
        assert_eq!(
            g("{src,target}/*.rs").walk(root).unwrap(),
            ["src/lib.rs", "target/t.rs"]
        );
    }
}
