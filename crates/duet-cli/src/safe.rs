//! Text from elsewhere, made harmless for a terminal or a Markdown file.
//!
//! Everything the partner wrote (name, bodies, tags, kinds, ids) is untrusted: a terminal acts
//! on escape sequences, a carriage return rewrites the line, bidi overrides reorder what the
//! eye reads. Human output and Markdown go through these functions, which show such
//! characters instead of obeying them. `--json` keeps the exact text (JSON escapes it).

use std::borrow::Cow;
use std::fmt::Write as _;

use duet_core::text::is_unsafe_char as is_unsafe;

/// The visible stand-in for an unsafe character: a control picture for C0 and DEL (`␛`,
/// `␍`), `<U+XXXX>` for the rest.
fn stand_in(c: char, out: &mut String) {
    match c {
        '\0'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('?')),
        '\u{7f}' => out.push('\u{2421}'),
        _ => {
            let _ = write!(out, "<U+{:04X}>", c as u32);
        }
    }
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) && !keep(c) {
            stand_in(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text for one line (a name, a tag, a list row): every control shown, newlines included.
pub fn line(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// Text over several lines (a body in `show` or Markdown): newlines and tabs stay, every other
/// control is shown.
pub fn block(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_overrides_are_shown_not_obeyed() {
        assert_eq!(line("plain text, ünïcode ❤"), "plain text, ünïcode ❤");
        assert_eq!(line("\x1b[2J\x1b]0;owned\x07"), "␛[2J␛]0;owned␇");
        assert_eq!(line("fine\roverwritten"), "fine␍overwritten");
        assert_eq!(line("two\nlines"), "two␊lines");
        assert_eq!(
            block("two\nlines\r\n\tand a tab"),
            "two\nlines␍\n\tand a tab"
        );
        assert_eq!(line("\u{9b}31m"), "<U+009B>31m");
        assert_eq!(line("abc\u{202e}fed"), "abc<U+202E>fed");
        assert_eq!(line("\u{2066}x\u{2069}\u{7f}"), "<U+2066>x<U+2069>␡");
    }
}
