//! Text bound for a terminal: control characters made visible, so that account data
//! (rule descriptions, group names, request values) cannot move the cursor, clear the
//! screen, set a window title or forge lines of a report.
//!
//! Every C0 control (U+0000–U+001F), DEL (U+007F) and every C1 control (U+0080–U+009F)
//! is written as an escape: `\t`, `\n`, `\r`, `\xNN` for the other C0 controls and DEL,
//! `\u{NN}` for C1. So is every invisible format character ([`is_format`]: bidirectional
//! overrides and isolates, zero-width characters, line and paragraph separators, tags),
//! as `\u{NNNN}`, so that a name cannot reorder or hide the text around it on screen.
//! Everything else, including a backslash, is kept as it is.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is a C0 or C1 control or DEL.
pub fn is_control(c: char) -> bool {
    matches!(c as u32, 0..=0x1f | 0x7f..=0x9f)
}

/// Whether `c` is an invisible format character that changes how the text around it
/// reads: the soft hyphen, bidirectional marks, embeddings, overrides and isolates
/// (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069), zero-width characters
/// (U+180E, U+200B–U+200D, U+2060–U+2064, U+FEFF), the line and paragraph separators
/// (U+2028–U+2029), deprecated format controls (U+206A–U+206F), interlinear annotation
/// (U+FFF9–U+FFFB) and tags (U+E0000–U+E007F).
pub fn is_format(c: char) -> bool {
    matches!(
        c as u32,
        0xad | 0x61c
            | 0x180e
            | 0x200b..=0x200f
            | 0x2028..=0x202e
            | 0x2060..=0x206f
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0xe0000..=0xe007f
    )
}

/// Whether [`escape`] writes `c` as an escape: a control or a format character.
pub fn is_unsafe(c: char) -> bool {
    is_control(c) || is_format(c)
}

/// `text` with every control character escaped (line feeds included): for one-line
/// messages, warnings and table cells.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_except(text, None)
}

/// `text` with every control character escaped except the line feeds that separate its
/// lines: for multi-line text whose values cannot hold a line feed of their own (pretty
/// JSON, whose strings escape it; a decode summary, whose lines are one each).
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    escape_except(text, Some('\n'))
}

fn escape_except(text: &str, keep: Option<char>) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) && Some(c) != keep) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if Some(c) == keep => out.push(c),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if matches!(c as u32, 0..=0x1f | 0x7f) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON made safe for a terminal without changing what it means: serde_json
/// escapes C0 controls in strings but writes DEL, C1 and format characters ([`is_format`])
/// as they are; they become `\u007f` … `\u009f`, `\u202e`, … (a surrogate pair past
/// U+FFFF). Outside strings JSON has no such characters.
pub fn json_safe(json: &str) -> Cow<'_, str> {
    let unsafe_in_json = |c: char| matches!(c as u32, 0x7f..=0x9f) || is_format(c);
    if !json.chars().any(unsafe_in_json) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if unsafe_in_json(c) {
            for unit in c.encode_utf16(&mut [0; 2]) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escape_injection_is_escaped() {
        // Clear the screen, an OSC title ending in BEL, a forged report line, CSI as C1.
        let evil = "ok\x1b[2J\x1b]0;pwned\x07\r\nRules revoked: 0\u{9b}31m\x7f";
        let e = escape(evil);
        assert!(!e.chars().any(is_control), "{e}");
        assert_eq!(
            e,
            "ok\\x1b[2J\\x1b]0;pwned\\x07\\r\\nRules revoked: 0\\u{9b}31m\\x7f"
        );
        assert_eq!(escape_lines("a\nb\x1bc\r"), "a\nb\\x1bc\\r");
        assert!(matches!(escape("plain é ✓ \\x"), Cow::Borrowed(_)));
        assert_eq!(escape("tab\there"), "tab\\there");
    }

    /// Regression (review of 2026-12-07): bidirectional overrides and zero-width
    /// characters from the exports reached the terminal as they were, so a name could
    /// reverse or hide the rest of a report line.
    #[test]
    fn regression_bidi_and_format_characters_are_escaped() {
        let evil = "web\u{202e}gnp.exe\u{200b}\u{200f}\u{2066}x\u{2069}\u{2028}\u{feff}\u{e0041}";
        let e = escape(evil);
        assert!(!e.chars().any(is_unsafe), "{e}");
        assert_eq!(
            e,
            "web\\u{202e}gnp.exe\\u{200b}\\u{200f}\\u{2066}x\\u{2069}\\u{2028}\\u{feff}\\u{e0041}"
        );
        assert_eq!(escape_lines("a\n\u{202d}b"), "a\n\\u{202d}b");
        // Letters of right-to-left scripts are text, not format characters.
        assert!(matches!(escape("שלום مرحبا"), Cow::Borrowed(_)));
        let v = serde_json::json!({"n": evil});
        let safe = json_safe(&v.to_string()).into_owned();
        assert!(!safe.chars().any(is_unsafe), "{safe}");
        assert!(
            safe.contains("\\u202e") && safe.contains("\\udb40\\udc41"),
            "{safe}"
        );
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), v);
    }

    #[test]
    fn json_for_a_terminal_escapes_del_and_c1_and_means_the_same() {
        let v = serde_json::json!({"d": "a\u{7f}b\u{9b}c\u{1b}é"});
        let text = v.to_string();
        let safe = json_safe(&text);
        assert!(!safe.chars().any(is_control), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), v);
    }
}
