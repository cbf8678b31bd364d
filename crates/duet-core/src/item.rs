//! Journal items and the rules every item obeys, whoever wrote it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::id::ItemId;

/// The largest body duet accepts, in bytes. A journal entry is a few
/// paragraphs; anything near this is a pasted file, not a thought.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What an item is. Unknown kinds written by a newer duet are kept, not dropped.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Entry,
    Thanks,
    Checkin,
    Answer,
    Other(String),
}

impl Kind {
    pub fn as_str(&self) -> &str {
        match self {
            Kind::Entry => "entry",
            Kind::Thanks => "thanks",
            Kind::Checkin => "checkin",
            Kind::Answer => "answer",
            Kind::Other(other) => other,
        }
    }

    /// Parse a kind read from a document: never fails, so newer kinds survive.
    pub fn from_stored(text: &str) -> Kind {
        match text {
            "entry" => Kind::Entry,
            "thanks" => Kind::Thanks,
            "checkin" => Kind::Checkin,
            "answer" => Kind::Answer,
            other => Kind::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = ItemError;

    /// Parse a kind typed by a user: only the kinds this version knows.
    fn from_str(text: &str) -> Result<Kind, ItemError> {
        match Kind::from_stored(text.trim()) {
            Kind::Other(other) => Err(ItemError::UnknownKind(other)),
            kind => Ok(kind),
        }
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Kind::from_stored(&text))
    }
}

/// One item as read from a journal. Times are Unix milliseconds, UTC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: ItemId,
    pub kind: Kind,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub body: String,
    pub tags: Vec<String>,
    pub starred: bool,
    pub deleted: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ItemError {
    #[error("the text is empty, so nothing was saved")]
    EmptyBody,
    #[error("the text is {size} bytes; duet keeps items up to {limit} bytes (1 MiB)", limit = BODY_LIMIT)]
    BodyTooLarge { size: usize },
    #[error("`{0}` is not a tag: tags are letters, digits, `-` and `_`")]
    BadTag(String),
    #[error("unknown kind `{0}`; use entry, thanks, checkin or answer")]
    UnknownKind(String),
}

/// Check a body before it is stored and return it without surrounding blank lines.
pub fn validate_body(body: &str) -> Result<String, ItemError> {
    if body.len() > BODY_LIMIT {
        return Err(ItemError::BodyTooLarge { size: body.len() });
    }
    let trimmed = body.trim_matches(|c: char| c == '\n' || c == '\r');
    let trimmed = trimmed.trim_end();
    if trimmed.trim().is_empty() {
        return Err(ItemError::EmptyBody);
    }
    Ok(trimmed.to_owned())
}

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '_'
}

/// Normalize a tag given on the command line (`--tag Trip` or `--tag @trip`).
pub fn normalize_tag(tag: &str) -> Result<String, ItemError> {
    let bare = tag.trim().trim_start_matches('@');
    if bare.is_empty() || !bare.chars().all(is_tag_char) {
        return Err(ItemError::BadTag(tag.to_owned()));
    }
    Ok(bare.to_lowercase())
}

/// The `@tag` words in a text, lowercased, in order of first appearance.
/// An `@` inside a word (an e-mail address) is not a tag.
pub fn extract_tags(text: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    let chars = text.char_indices().peekable();
    for (i, c) in chars {
        let starts_word = prev.is_none_or(|p| !is_tag_char(p) && p != '@');
        if c == '@' && starts_word {
            let rest = &text[i + 1..];
            let end = rest.find(|ch: char| !is_tag_char(ch)).unwrap_or(rest.len());
            let word = rest[..end].trim_end_matches(['-', '_']);
            if !word.is_empty() && word.chars().any(char::is_alphanumeric) {
                let tag = word.to_lowercase();
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
        prev = Some(c);
    }
    tags
}

/// Merge tag lists keeping the first occurrence of each.
pub fn merge_tags(into: &mut Vec<String>, more: impl IntoIterator<Item = String>) {
    for tag in more {
        if !into.contains(&tag) {
            into.push(tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_found_in_text() {
        assert_eq!(
            extract_tags("Dinner with @Sam at @the-lake, mail me@x.org @ @_ @trip!"),
            vec!["sam", "the-lake", "trip"]
        );
        assert_eq!(extract_tags("@a @A"), vec!["a"]);
    }

    #[test]
    fn bodies_are_checked() {
        assert_eq!(validate_body("  \n\n"), Err(ItemError::EmptyBody));
        assert_eq!(validate_body("\nhello  \n").unwrap(), "hello");
        let big = "x".repeat(BODY_LIMIT + 1);
        assert!(matches!(
            validate_body(&big),
            Err(ItemError::BodyTooLarge { .. })
        ));
        assert!(validate_body(&"x".repeat(BODY_LIMIT)).is_ok());
    }

    #[test]
    fn tags_are_normalized() {
        assert_eq!(normalize_tag("@Trip").unwrap(), "trip");
        assert!(normalize_tag("two words").is_err());
        assert!(normalize_tag("").is_err());
        assert!("diary".parse::<Kind>().is_err());
        assert_eq!("thanks".parse::<Kind>().unwrap(), Kind::Thanks);
    }
}
