//! Rules for text that a terminal would obey rather than show.

/// Whether `c` changes how the text around it is shown instead of being shown: C0 and C1
/// controls, DEL, and the bidirectional formatting characters (marks, embeddings, overrides,
/// isolates) that reorder what the eye reads.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Whether `name` may be a person's display name: some visible text, at most
/// [`MAX_NAME_CHARS`] characters, with no control or bidi formatting character (a name is
/// shown next to the pairing code, where such characters could forge what the screen says).
pub fn valid_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.chars().any(is_unsafe_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_visible_text() {
        assert!(valid_name("Sam"));
        assert!(valid_name("Zoë Ødegård 李"));
        assert!(!valid_name(""));
        assert!(!valid_name("   "));
        assert!(!valid_name("Sam\nPairing code: 123 456"));
        assert!(!valid_name("Sam\x1b[2K"));
        assert!(!valid_name("maS\u{202e}"));
        assert!(!valid_name("\u{85}Sam"));
        assert!(!valid_name(&"x".repeat(65)));
        assert!(valid_name(&"x".repeat(64)));
    }
}
