//! Text bound for a terminal: control characters made visible, so that account data
//! (rule descriptions, group names, request values) cannot move the cursor, clear the
//! screen, set a window title or forge lines of a report.
//!
//! Every C0 control (U+0000–U+001F), DEL (U+007F) and every C1 control (U+0080–U+009F)
//! is written as an escape: `\t`, `\n`, `\r`, `\xNN` for the other C0 controls and DEL,
//! `\u{NN}` for C1. Everything else, including a backslash, is kept as it is.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is a C0 or C1 control or DEL.
pub fn is_control(c: char) -> bool {
    matches!(c as u32, 0..=0x1f | 0x7f..=0x9f)
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
    if !text.chars().any(|c| is_control(c) && Some(c) != keep) {
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
            c if is_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON made safe for a terminal without changing what it means: serde_json
/// escapes C0 controls in strings but writes DEL and C1 as they are; they become `\u007f`
/// … `\u009f` (outside strings JSON has no such characters).
pub fn json_safe(json: &str) -> Cow<'_, str> {
    if !json.chars().any(|c| matches!(c as u32, 0x7f..=0x9f)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if matches!(c as u32, 0x7f..=0x9f) {
            let _ = write!(out, "\\u{:04x}", c as u32);
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

    #[test]
    fn json_for_a_terminal_escapes_del_and_c1_and_means_the_same() {
        let v = serde_json::json!({"d": "a\u{7f}b\u{9b}c\u{1b}é"});
        let text = v.to_string();
        let safe = json_safe(&text);
        assert!(!safe.chars().any(is_control), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), v);
    }
}
