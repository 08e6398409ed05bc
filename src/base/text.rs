//! Text that crosses a trust boundary: names and ids typed by people or sent by a kiosk, on
//! their way into a spreadsheet or onto an admin's terminal.
//!
//! - [`check_printable`]: control characters are refused where text enters (device, site and
//!   display names, employee ids), so a carriage return or an escape code cannot fake a line;
//! - [`for_terminal`]: whatever is printed anyway has its control characters escaped;
//! - [`csv_cell`]: a cell that a spreadsheet would run as a formula is neutralised.

use std::borrow::Cow;

use crate::base::error::{Error, Result};

/// Refuses control characters (C0, DEL, C1 and the bidirectional overrides that reorder what
/// a terminal shows) in `value`; `what` names the field in the error.
pub fn check_printable(what: &str, value: &str) -> Result<()> {
    match unprintable(value) {
        Some(why) => Err(Error::invalid(what, why)),
        None => Ok(()),
    }
}

/// What is wrong with `value` when it holds a control character, for callers that collect
/// problems rather than stop at the first.
pub fn unprintable(value: &str) -> Option<String> {
    value.chars().find(|&c| is_unprintable(c)).map(|c| {
        format!(
            "contains the control character U+{:04X}; allowed: printable characters only",
            c as u32
        )
    })
}

fn is_unprintable(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `value` with every control character written as `\u{…}`, for printing on a terminal.
pub fn for_terminal(value: &str) -> Cow<'_, str> {
    if !value.chars().any(is_unprintable) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if is_unprintable(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A CSV cell that a spreadsheet will show as text: one starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return (what Excel, LibreOffice and Google Sheets take for a formula) gets
/// a leading apostrophe, as OWASP recommends for CSV injection.
pub fn csv_cell(value: &str) -> Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{value}")),
        _ => Cow::Borrowed(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_by_name_and_escaped_for_terminals() {
        assert!(check_printable("device name", "Door 3 – Nord").is_ok());
        let e = check_printable("device name", "Door\r\x1b[2Kfake").unwrap_err();
        assert!(e.to_string().contains("U+000D"), "{e}");
        assert!(check_printable("site", "a\u{202E}b").is_err());
        assert_eq!(for_terminal("ok"), "ok");
        assert_eq!(for_terminal("a\rb\x1b"), "a\\u{d}b\\u{1b}");
    }

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        for lead in ["+1", "-1+2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_cell(lead).starts_with('\''), "{lead:?}");
        }
        assert_eq!(csv_cell("E1001"), "E1001");
        assert_eq!(csv_cell(""), "");
    }
}
