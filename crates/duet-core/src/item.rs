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
    /// For a check-in, the need it names (may be empty).
    pub body: String,
    pub tags: Vec<String>,
    pub starred: bool,
    pub deleted: bool,
    /// What the rituals add: the item this one answers, a check-in's scores, the question an
    /// answer is for. Empty for a plain entry.
    #[serde(default, skip_serializing_if = "Ritual::is_empty")]
    pub ritual: Ritual,
}

/// The fields only some kinds use. Every field is optional in a document: an item from an
/// older or newer duet reads with what it has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ritual {
    /// The item (mine or my partner's) this one answers: `write --re`, `thanks --re`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub re: Option<ItemId>,
    /// A check-in's mood, 1 (low) to 5 (high).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mood: Option<u8>,
    /// A check-in's energy, 1 (drained) to 5 (full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<u8>,
    /// An answer's question: its id in the deck and the day it was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<Asked>,
    /// An answer edited after the partner's answer to the same question was visible here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub edited_after_reveal: bool,
}

impl Ritual {
    pub fn is_empty(&self) -> bool {
        *self == Ritual::default()
    }
}

/// Which question on which day: what an answer answers, and what the two answers of a couple
/// are matched by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Asked {
    /// The question's id in the deck (`memories-07`).
    pub id: String,
    /// The calendar day it was the question of, `YYYY-MM-DD`.
    pub date: String,
}

impl Asked {
    /// The day as days since 1970-01-01, if `date` is a real `YYYY-MM-DD` date.
    pub fn day_number(&self) -> Option<i32> {
        parse_date(&self.date)
    }
}

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC day (days since 1970-01-01) of a Unix-ms time, kept in the range day arithmetic
/// is safe in.
pub fn utc_day(ms: i64) -> i32 {
    ms.div_euclid(DAY_MS)
        .clamp(i64::from(i32::MIN / 2), i64::from(i32::MAX / 2)) as i32
}

/// `YYYY-MM-DD` as days since 1970-01-01 (proleptic Gregorian), or `None`.
pub fn parse_date(text: &str) -> Option<i32> {
    let mut parts = text.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_len = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d == 0 || d > month_len[m as usize - 1] {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe as i32 - 719_468)
}

/// The range of a check-in score.
pub const SCORE_RANGE: std::ops::RangeInclusive<u8> = 1..=5;

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
    #[error("a check-in needs at least one of --mood, --energy or --need")]
    EmptyCheckin,
    #[error("an answer must name the question it answers")]
    AnswerWithoutQuestion,
    #[error("{what} is {value}; give a number from 1 to 5")]
    ScoreOutOfRange { what: &'static str, value: i64 },
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

/// Check a new item's body against its kind and return the body to store. A check-in may
/// leave its need empty when it gives a mood or an energy; every other item needs text.
pub fn validate_new(kind: &Kind, body: &str, ritual: &Ritual) -> Result<String, ItemError> {
    if *kind == Kind::Checkin && body.trim().is_empty() {
        if ritual.mood.is_none() && ritual.energy.is_none() {
            return Err(ItemError::EmptyCheckin);
        }
        return Ok(String::new());
    }
    if *kind == Kind::Answer && ritual.question.is_none() {
        return Err(ItemError::AnswerWithoutQuestion);
    }
    validate_body(body)
}

/// The latest time duet accepts on an item: the end of year 9999 (Unix ms). Later (or before
/// 1970) is not a moment anybody wrote, only a value chosen to break date arithmetic.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Check an item read from a document, which may come from a modified client: it must be
/// something this duet's own `write` could have made. Returns why it is refused.
pub fn check_stored(item: &Item) -> Result<(), &'static str> {
    if matches!(item.kind, Kind::Other(_)) {
        return Err("an unknown kind");
    }
    if item.body.len() > BODY_LIMIT {
        return Err("a body over 1 MiB");
    }
    let in_range = |t: i64| (0..=MAX_TIME_MS).contains(&t);
    if !in_range(item.created_at) || item.edited_at.is_some_and(|t| !in_range(t)) {
        return Err("a time outside the years 1970 to 9999");
    }
    if item.tags.len() > 64
        || item
            .tags
            .iter()
            .any(|t| normalize_tag(t).ok().as_deref() != Some(t.as_str()))
    {
        return Err("a tag duet would refuse");
    }
    match (&item.kind, &item.ritual.question) {
        (Kind::Answer, None) => return Err("an answer to no question"),
        (Kind::Answer, Some(asked))
            if asked.day_number().is_none()
                || asked.id.len() > 32
                || !asked
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            return Err("an answer to a malformed question");
        }
        _ => {}
    }
    Ok(())
}

/// Check a check-in score (`what` names it in the error).
pub fn validate_score(what: &'static str, value: i64) -> Result<u8, ItemError> {
    match u8::try_from(value) {
        Ok(v) if SCORE_RANGE.contains(&v) => Ok(v),
        _ => Err(ItemError::ScoreOutOfRange { what, value }),
    }
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
    fn stored_items_are_checked_like_my_own_writes() {
        let ok = Item {
            id: ItemId([1; 8]),
            kind: Kind::Entry,
            created_at: 1_700_000_000_000,
            edited_at: None,
            body: "hello".into(),
            tags: vec!["walk".into()],
            starred: false,
            deleted: false,
            ritual: Ritual::default(),
        };
        assert_eq!(check_stored(&ok), Ok(()));
        let bad = |f: &dyn Fn(&mut Item)| {
            let mut item = ok.clone();
            f(&mut item);
            check_stored(&item).unwrap_err()
        };
        assert_eq!(
            bad(&|i| i.kind = Kind::Other("x".into())),
            "an unknown kind"
        );
        assert_eq!(
            bad(&|i| i.body = "x".repeat(BODY_LIMIT + 1)),
            "a body over 1 MiB"
        );
        assert_eq!(
            bad(&|i| i.created_at = i64::MIN),
            "a time outside the years 1970 to 9999"
        );
        assert_eq!(
            bad(&|i| i.edited_at = Some(i64::MAX)),
            "a time outside the years 1970 to 9999"
        );
        assert_eq!(
            bad(&|i| i.tags = vec!["Two Words".into()]),
            "a tag duet would refuse"
        );
        assert_eq!(
            bad(&|i| i.tags = vec!["a\x1b".into()]),
            "a tag duet would refuse"
        );
        assert_eq!(bad(&|i| i.kind = Kind::Answer), "an answer to no question");
        assert_eq!(
            bad(&|i| {
                i.kind = Kind::Answer;
                i.ritual.question = Some(Asked {
                    id: "us-01".into(),
                    date: "2026-02-30".into(),
                });
            }),
            "an answer to a malformed question"
        );
    }

    #[test]
    fn dates_are_day_numbers() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-11-25"), Some(20_782));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("26-11-25"), None);
        assert_eq!(parse_date("1969-12-31"), Some(-1));
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
