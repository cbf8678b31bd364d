//! Which items a `list` shows, decided without I/O.

use crate::item::{Item, Kind};

/// Whose items: this person's own, or the partner's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    Me,
    Partner,
}

#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub kinds: Vec<Kind>,
    pub author: Option<Author>,
    /// Every tag listed must be on the item.
    pub tags: Vec<String>,
    /// Inclusive lower bound on `created_at` (Unix ms).
    pub from: Option<i64>,
    /// Exclusive upper bound on `created_at` (Unix ms).
    pub to: Option<i64>,
    pub starred: bool,
    /// Case-insensitive substring of the body; stored already folded.
    pub contains: Option<String>,
    pub include_deleted: bool,
    /// Only replies to this item (`ritual.re`).
    pub re: Option<crate::id::ItemId>,
}

impl Filter {
    pub fn with_contains(mut self, needle: &str) -> Filter {
        self.contains = Some(crate::bloom::fold(needle));
        self
    }

    /// Whether a volume whose items were created in `[min, max]` can hold a match.
    pub fn may_match_span(&self, min: i64, max: i64) -> bool {
        self.from.is_none_or(|from| max >= from) && self.to.is_none_or(|to| min < to)
    }

    /// `starred` is the effective star (the item's own, or the reader's mark).
    pub fn matches(&self, item: &Item, author: Author, starred: bool) -> bool {
        (self.include_deleted || !item.deleted)
            && (self.kinds.is_empty() || self.kinds.contains(&item.kind))
            && self.author.is_none_or(|a| a == author)
            && self.tags.iter().all(|t| item.tags.contains(t))
            && self.from.is_none_or(|from| item.created_at >= from)
            && self.to.is_none_or(|to| item.created_at < to)
            && (!self.starred || starred)
            && self.re.is_none_or(|re| item.ritual.re == Some(re))
            && self.body_may_match(&item.body)
    }

    /// Whether a body passes `contains`.
    pub fn body_may_match(&self, body: &str) -> bool {
        self.raw_body_may_match(body.as_bytes())
    }

    /// Whether a body as stored passes `contains` (see [`crate::bloom::contains_folded_raw`]):
    /// what a reader checks before it builds the rest of the item, or checks the body's UTF-8.
    pub fn raw_body_may_match(&self, body: &[u8]) -> bool {
        self.contains
            .as_ref()
            .is_none_or(|needle| crate::bloom::contains_folded_raw(body, needle))
    }
}

/// Newest first; ties broken by id so the order is stable.
pub fn newest_first(a: &Item, b: &Item) -> std::cmp::Ordering {
    b.created_at
        .cmp(&a.created_at)
        .then_with(|| b.id.cmp(&a.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ItemId;

    #[test]
    fn filters_combine() {
        let item = Item {
            id: ItemId([0; 8]),
            kind: Kind::Thanks,
            created_at: 100,
            edited_at: None,
            body: "Thank you for the Coffee".into(),
            tags: vec!["home".into()],
            starred: false,
            deleted: false,
            ritual: Default::default(),
        };
        let f = Filter {
            kinds: vec![Kind::Thanks],
            ..Default::default()
        }
        .with_contains("coffee");
        assert!(f.matches(&item, Author::Me, false));
        assert!(
            !Filter {
                starred: true,
                ..Default::default()
            }
            .matches(&item, Author::Me, false)
        );
        assert!(
            Filter {
                starred: true,
                ..Default::default()
            }
            .matches(&item, Author::Me, true)
        );
        assert!(
            !Filter {
                from: Some(101),
                ..Default::default()
            }
            .matches(&item, Author::Me, false)
        );
        assert!(
            !Filter {
                to: Some(100),
                ..Default::default()
            }
            .matches(&item, Author::Me, false)
        );
        let partner = Filter {
            author: Some(Author::Partner),
            ..Default::default()
        };
        assert!(!partner.matches(&item, Author::Me, false));
        let deleted = Item {
            deleted: true,
            ritual: Default::default(),
            ..item
        };
        assert!(!Filter::default().matches(&deleted, Author::Me, false));
    }
}
