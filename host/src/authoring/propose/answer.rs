//! Finding the goal in an agent's answer: fenced blocks, a bare TOML or JSON answer,
//! or a TOML document or JSON object wrapped in prose. JSON becomes TOML text.

use super::render::{RenderError, json_text_to_toml};

/// How many TOML parses the search for a goal inside prose may try.
const EMBEDDED_TRIES: usize = 400;

/// A goal found in an agent's answer: where, and its TOML text (or why a JSON one
/// could not be turned into TOML).
#[derive(Debug)]
pub struct Candidate {
    /// Where in the answer, for messages: "the ```toml block at line 3".
    pub origin: String,
    pub text: Result<String, RenderError>,
}

/// Every goal-shaped piece of `answer`, in order. Fenced blocks tagged `toml`, `json`
/// or nothing win; without any, the whole answer (TOML or JSON); failing that, a TOML
/// document or a JSON object wrapped in prose. JSON is converted to TOML text.
pub fn candidates(answer: &str) -> Vec<Candidate> {
    let fenced = fenced_blocks(answer);
    if !fenced.is_empty() {
        return fenced
            .into_iter()
            .map(|(lang, line, body)| {
                let json =
                    lang == "json" || (lang.is_empty() && body.trim_start().starts_with('{'));
                let tag = if lang.is_empty() { String::new() } else { lang };
                let origin = format!("the ```{tag} block at line {line}");
                Candidate {
                    origin,
                    text: if json {
                        json_text_to_toml(&body)
                    } else {
                        Ok(body)
                    },
                }
            })
            .collect();
    }
    let trimmed = answer.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    if trimmed.starts_with('{') && trimmed.ends_with('}') {
        return vec![Candidate {
            origin: "the answer (JSON)".into(),
            text: json_text_to_toml(trimmed),
        }];
    }
    let first = trimmed
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    if trimmed.parse::<toml::Table>().is_ok() || first.is_some_and(is_toml_start) {
        return vec![Candidate {
            origin: "the answer".into(),
            text: Ok(format!("{trimmed}\n")),
        }];
    }
    if let Some((from, to, text)) = embedded_toml(answer) {
        return vec![Candidate {
            origin: format!("the TOML at lines {from}-{to}"),
            text: Ok(text),
        }];
    }
    if let (Some(a), Some(b)) = (answer.find('{'), answer.rfind('}'))
        && a < b
        && serde_json::from_str::<serde_json::Value>(&answer[a..=b]).is_ok_and(|v| v.is_object())
    {
        let line = answer[..a].lines().count().max(1);
        return vec![Candidate {
            origin: format!("the JSON object at line {line}"),
            text: json_text_to_toml(&answer[a..=b]),
        }];
    }
    Vec::new()
}

/// Fenced code blocks (``` or ~~~) tagged `toml`, `json` or nothing: (tag, 1-based
/// line of the opening fence, body). An unclosed block runs to the end.
fn fenced_blocks(answer: &str) -> Vec<(String, usize, String)> {
    let lines: Vec<&str> = answer.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        let fence_char = t.chars().next().filter(|c| *c == '`' || *c == '~');
        let Some(fc) = fence_char else {
            i += 1;
            continue;
        };
        let n = t.chars().take_while(|c| *c == fc).count();
        if n < 3 {
            i += 1;
            continue;
        }
        let lang = t[n..]
            .split(|c: char| c.is_whitespace() || c == '{' || c == ',')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let start = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() {
            let t = lines[i].trim();
            if t.len() >= n && t.chars().all(|c| c == fc) {
                break;
            }
            let l = lines[i];
            let strip = l.len() - l.trim_start().len();
            body.push(&l[strip.min(indent)..]);
            i += 1;
        }
        i += 1;
        if matches!(lang.as_str(), "toml" | "json" | "") {
            let mut text = body.join("\n");
            text.push('\n');
            out.push((lang, start + 1, text));
        }
    }
    out
}

/// A line that starts a TOML statement: a table header or `key = …`.
fn is_toml_start(line: &str) -> bool {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix('[') {
        let rest = rest.strip_prefix('[').unwrap_or(rest).trim_start();
        return rest
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '"');
    }
    let key: String = t
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect();
    !key.is_empty() && t[key.len()..].trim_start().starts_with('=')
}

/// A goal-shaped TOML document inside prose: from a line that starts a TOML
/// statement to the last line after which the whole still parses and has predicates.
/// Returns the 1-based first and last line and the text.
fn embedded_toml(answer: &str) -> Option<(usize, usize, String)> {
    let lines: Vec<&str> = answer.lines().collect();
    let mut tries = 0;
    let starts = (0..lines.len())
        .filter(|&i| is_toml_start(lines[i]))
        .take(3);
    for s in starts {
        for e in (s..lines.len()).rev() {
            if lines[e].trim().is_empty() {
                continue;
            }
            tries += 1;
            if tries > EMBEDDED_TRIES {
                return None;
            }
            let mut text = lines[s..=e].join("\n");
            text.push('\n');
            if let Ok(t) = text.parse::<toml::Table>()
                && (t.contains_key("predicate") || t.contains_key("predicates"))
            {
                return Some((s + 1, e + 1, text));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOAL: &str = "id = \"hello\"\n\n[[predicate]]\nid = \"hello\"\nuse = \"file\"\npath = \"hello.txt\"\ncontains = \"hello\"\n";

    fn texts(answer: &str) -> Vec<(String, Result<String, String>)> {
        candidates(answer)
            .into_iter()
            .map(|c| (c.origin, c.text.map_err(|e| e.to_string())))
            .collect()
    }

    #[test]
    fn a_bare_toml_answer_is_one_candidate() {
        let c = texts(&format!("\n{GOAL}\n"));
        assert_eq!(c, [("the answer".to_owned(), Ok(GOAL.to_owned()))]);
    }

    #[test]
    fn fenced_blocks_are_the_candidates_when_there_are_any() {
        let answer = format!(
            "Here is the goal:\n\n```toml\n{GOAL}```\n\nRun it with:\n\n```sh\nkazi run x\n```\n\nOr as JSON:\n~~~json\n{{\"id\": \"j\"}}\n~~~\n```\nid = \"bare\"\n```\n"
        );
        let c = texts(&answer);
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(
            c[0],
            (
                "the ```toml block at line 3".to_owned(),
                Ok(GOAL.to_owned())
            )
        );
        assert_eq!(c[1].0, "the ```json block at line 20");
        assert_eq!(c[1].1, Ok("id = \"j\"\n".to_owned()));
        assert_eq!(
            c[2],
            (
                "the ``` block at line 23".to_owned(),
                Ok("id = \"bare\"\n".to_owned())
            )
        );
    }

    #[test]
    fn an_indented_or_unclosed_fence_still_counts() {
        let c = texts("1. the goal:\n   ```toml\n   id = \"a\"\n     x = 1\n   ```\n");
        assert_eq!(c[0].1, Ok("id = \"a\"\n  x = 1\n".to_owned()));
        let c = texts("```TOML\nid = \"a\"\n");
        assert_eq!(c[0].1, Ok("id = \"a\"\n".to_owned()));
    }

    #[test]
    fn toml_wrapped_in_prose_is_found() {
        let answer = format!(
            "Sure. This goal checks the greeting:\n\n{GOAL}\nIt fails now because hello.txt is missing.\n"
        );
        let c = texts(&answer);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].0, "the TOML at lines 3-9");
        assert_eq!(c[0].1, Ok(GOAL.to_owned()));
    }

    #[test]
    fn json_answers_become_toml_in_goal_order() {
        let answer = r#"{"predicate": [{"path": "a.txt", "use": "file", "id": "a", "allow": {"net": ["x:1"]}, "gone": null}],
            "scope": {"writable": ["src/"]}, "id": "g", "name": "the \"g\"", "deploy": {"run": ["./d.sh"]},
            "budget": {"max_iterations": 3, "max_cost_usd": 1.5}}"#;
        let c = texts(answer);
        assert_eq!(c[0].0, "the answer (JSON)");
        let text = c[0].1.clone().unwrap();
        assert_eq!(
            text,
            "id = \"g\"\nname = 'the \"g\"'\n\n[budget]\nmax_cost_usd = 1.5\nmax_iterations = 3\n\n[scope]\nwritable = [\"src/\"]\n\n[[predicate]]\nid = \"a\"\nuse = \"file\"\nallow = { net = [\"x:1\"] }\npath = \"a.txt\"\n\n[deploy]\nrun = [\"./d.sh\"]\n"
        );
        let back: toml::Table = text.parse().unwrap();
        assert_eq!(
            back["predicate"][0]["allow"]["net"][0].as_str(),
            Some("x:1")
        );
    }

    #[test]
    fn json_in_prose_and_bad_json_are_reported() {
        let c = texts("The goal is {\"id\": \"g\", \"predicate\": []} as you asked.");
        assert_eq!(c[0].0, "the JSON object at line 1");
        assert_eq!(c[0].1, Ok("id = \"g\"\npredicate = []\n".to_owned()));
        let c = texts("```json\n{\"id\": \n```");
        assert!(
            c[0].1.as_ref().unwrap_err().starts_with("not valid JSON"),
            "{c:?}"
        );
        let c = texts("```json\n[1, 2]\n```");
        assert_eq!(
            c[0].1,
            Err("a JSON array, not an object with the goal file's keys".to_owned())
        );
        let c = texts("```json\n{\"a\": [null]}\n```");
        assert_eq!(
            c[0].1,
            Err("$.a[0] is null, which TOML cannot hold".to_owned())
        );
    }

    #[test]
    fn prose_alone_has_no_candidate() {
        assert!(texts("I could not find a way to check that. Sorry!").is_empty());
        assert!(texts("   \n").is_empty());
    }

    #[test]
    fn a_broken_bare_toml_answer_stays_whole_so_its_error_shows() {
        let c = texts("id = \"a\"\n[[predicate]\nid = \"b\"\n");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, "the answer");
    }
}
