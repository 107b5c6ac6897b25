//! Terminal sanitising: text a guest (predicate, profile) or an agent produced is
//! stripped of every control and escape sequence before it reaches a terminal, so
//! evidence can neither erase a `FAIL` line and draw a green pass, nor set the window
//! title, nor write the clipboard (OSC 52), nor reorder what the reader sees.
//!
//! What is removed: ESC sequences of every kind (CSI `ESC [ … final`, OSC `ESC ] …`
//! up to BEL or ST, DCS/SOS/PM/APC `ESC P|X|^|_ …` up to ST, two- and three-byte
//! escapes such as `ESC c` or `ESC ( B`), a lone ESC, the C1 controls U+0080–U+009F
//! (their 8-bit CSI/OSC/DCS forms included), every other C0 control (NUL, BEL, BS,
//! VT, FF, …), DEL, and the Unicode bidirectional overrides and isolates
//! (U+202A–U+202E, U+2066–U+2069) that make text display in another order than it
//! reads. A carriage return that ends a line (`\r\n`) becomes `\n`; any other `\r`
//! (the "overwrite the start of the line" trick) becomes a line break with
//! [`lines`] and a space with [`line`]. `--json` output is never passed through
//! here: JSON escapes control characters itself and must stay exact.

use std::borrow::Cow;

/// Sanitise `text` for a multi-line terminal display: keeps `\n` and `\t`.
pub fn lines(text: &str) -> Cow<'_, str> {
    sanitize(text, true)
}

/// Sanitise `text` for one terminal line: `\n`, `\t` and `\r` become spaces.
pub fn line(text: &str) -> Cow<'_, str> {
    sanitize(text, false)
}

/// Whether `c` needs any handling at all (the fast path returns the input as is).
fn special(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn sanitize(text: &str, keep_lines: bool) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| special(c) && !(keep_lines && (c == '\n' || c == '\t')))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' if keep_lines => out.push(c),
            '\n' | '\t' => out.push(' '),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    continue; // `\r\n` is a line end; the `\n` follows.
                }
                out.push(if keep_lines { '\n' } else { ' ' });
            }
            '\x1b' => skip_escape(&mut chars),
            // 8-bit CSI, and the 8-bit string introducers DCS, SOS, OSC, PM, APC.
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if special(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After an ESC: skip the rest of the sequence it starts.
fn skip_escape(chars: &mut Chars<'_>) {
    match chars.peek().copied() {
        None => {}
        Some('[') => {
            chars.next();
            skip_csi(chars);
        }
        Some(']' | 'P' | 'X' | '^' | '_') => {
            chars.next();
            skip_string(chars);
        }
        Some(c) if ('\x20'..='\x2f').contains(&c) => {
            // `ESC intermediates… final`, such as `ESC ( B` (character set).
            while chars.next_if(|c| ('\x20'..='\x2f').contains(c)).is_some() {}
            chars.next_if(|c| ('\x30'..='\x7e').contains(c));
        }
        Some(c) if ('\x30'..='\x7e').contains(&c) => {
            // A two-character escape: `ESC c` (reset), `ESC 7` (save cursor), …
            chars.next();
        }
        // A lone ESC before anything else: drop only the ESC.
        Some(_) => {}
    }
}

/// After a CSI introducer: parameters and intermediates up to the final byte. An
/// unexpected character ends the sequence without being consumed.
fn skip_csi(chars: &mut Chars<'_>) {
    while chars.next_if(|c| ('\x20'..='\x3f').contains(c)).is_some() {}
    chars.next_if(|c| ('\x40'..='\x7e').contains(c));
}

/// After an OSC/DCS/SOS/PM/APC introducer: everything up to the string terminator
/// (BEL, `ESC \` or the 8-bit ST). Without a terminator the rest of the text is kept
/// (its introducer is gone, so a terminal shows it as plain text) minus its controls.
fn skip_string(chars: &mut Chars<'_>) {
    let mut probe = chars.clone();
    loop {
        match probe.next() {
            None => return,
            Some('\x07' | '\u{9c}') => break,
            Some('\x1b') if probe.peek() == Some(&'\\') => {
                probe.next();
                break;
            }
            Some(_) => {}
        }
    }
    *chars = probe;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(lines("all good\n\tindented"), Cow::Borrowed(_)));
        assert!(matches!(line("héllo wörld ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn colours_and_cursor_moves_are_removed() {
        assert_eq!(lines("\x1b[31mFAILED\x1b[0m ok"), "FAILED ok");
        // Erase the line, move up, draw a fake pass.
        assert_eq!(
            lines("FAIL x\x1b[2K\x1b[1A\x1b[1;32mPASS\x1b[0m"),
            "FAIL xPASS"
        );
        assert_eq!(lines("a\x1b[?25lb\x1b[10;20Hc"), "abc");
    }

    #[test]
    fn osc_title_and_clipboard_writes_are_removed() {
        assert_eq!(lines("a\x1b]0;pwned title\x07b"), "ab");
        assert_eq!(lines("a\x1b]52;c;cm0gLXJmIH4=\x1b\\b"), "ab");
        assert_eq!(
            lines("a\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\b"),
            "alinkb"
        );
        // 8-bit OSC terminated by 8-bit ST.
        assert_eq!(lines("a\u{9d}2;title\u{9c}b"), "ab");
    }

    #[test]
    fn dcs_and_other_strings_are_removed() {
        assert_eq!(lines("a\x1bP1$r0m\x1b\\b"), "ab");
        assert_eq!(lines("a\x1b_apc payload\x1b\\b"), "ab");
        assert_eq!(lines("a\x1b^pm\x07b"), "ab");
        assert_eq!(lines("a\x1bXsos\x1b\\b"), "ab");
        assert_eq!(lines("a\u{90}dcs\u{9c}b"), "ab");
    }

    #[test]
    fn an_unterminated_string_loses_its_introducer_only() {
        assert_eq!(lines("a\x1b]0;title"), "a0;title");
        // The inner `ESC t` is a two-character escape of its own.
        assert_eq!(lines("a\x1b]0;ti\x1btle"), "a0;tile");
    }

    #[test]
    fn short_escapes_and_lone_esc_are_removed() {
        assert_eq!(lines("a\x1bcb"), "ab");
        assert_eq!(lines("a\x1b(Bb"), "ab");
        assert_eq!(lines("a\x1b7b\x1b8"), "ab");
        assert_eq!(lines("trailing\x1b"), "trailing");
        assert_eq!(lines("a\x1b\x1b[31mb"), "ab");
    }

    #[test]
    fn c0_c1_del_and_nul_are_removed() {
        assert_eq!(lines("a\0b\x07c\x08d\x0be\x0cf\x7fg"), "abcdefg");
        assert_eq!(lines("a\u{85}b\u{9b}31mc"), "abc");
        assert_eq!(line("nul\0byte"), "nulbyte");
    }

    #[test]
    fn carriage_returns_cannot_overwrite_a_line() {
        assert_eq!(lines("FAIL\rPASS"), "FAIL\nPASS");
        assert_eq!(lines("one\r\ntwo\r\n"), "one\ntwo\n");
        assert_eq!(line("FAIL\rPASS"), "FAIL PASS");
    }

    #[test]
    fn line_mode_flattens_newlines_and_tabs() {
        assert_eq!(line("a\nb\tc"), "a b c");
        assert_eq!(lines("a\nb\tc"), "a\nb\tc");
    }

    #[test]
    fn bidi_overrides_are_removed() {
        assert_eq!(lines("ab\u{202e}cd\u{202c}e"), "abcde");
        assert_eq!(lines("x\u{2066}y\u{2069}"), "xy");
    }

    #[test]
    fn nothing_that_starts_a_sequence_survives_any_input() {
        // Every pair and triple of interesting characters: the output never holds an
        // ESC, a C1 control or another C0 control.
        let alphabet = [
            '\x1b', '[', ']', 'P', '\\', '\x07', '\u{9b}', '\u{9c}', '\u{9d}', 'a', '\r', '\n',
            '\0', '(', '0', ';',
        ];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let s: String = [a, b, c, 'z'].iter().collect();
                    let out = lines(&s);
                    assert!(
                        !out.chars().any(|c| special(c) && c != '\n' && c != '\t'),
                        "{s:?} -> {out:?}"
                    );
                    let one = line(&s);
                    assert!(!one.chars().any(special), "{s:?} -> {one:?}");
                }
            }
        }
    }
}
