//! The items cache of one volume (`cache/items.3/…`): every item in a compact binary form that
//! a search can read body first, so an item whose body cannot match is skipped without being
//! built. It replaced JSON, whose parsing was most of a `list --contains` over 100,000 items.
//!
//! `magic, u32 count`, then per item: `id [8]`, `created_at i64`, `flags u8` (edited, starred,
//! deleted, re, mood, energy, question, edited after reveal), `edited_at i64` if edited, the
//! body, the kind, `u32` tag count and the tags, then the ritual fields that are present (`re
//! [8]`, `mood u8`, `energy u8`, the question's id and date). Texts are `u32` length and UTF-8
//! bytes; integers little-endian. Anything malformed reads as missing (the cache is rebuilt).

use duet_core::item::{Asked, Ritual};
use duet_core::{Item, ItemId, Kind};

use crate::index::Reader;

const MAGIC: &[u8; 8] = b"DUETIT\x00\x01";

const EDITED: u8 = 1;
const STARRED: u8 = 1 << 1;
const DELETED: u8 = 1 << 2;
const RE: u8 = 1 << 3;
const MOOD: u8 = 1 << 4;
const ENERGY: u8 = 1 << 5;
const QUESTION: u8 = 1 << 6;
const EDITED_AFTER_REVEAL: u8 = 1 << 7;

pub fn encode(items: &[Item]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + items.iter().map(|i| i.body.len() + 64).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        encode_item(&mut out, item);
    }
    out
}

/// `bytes`, a whole items file, with `item` added at its end; `None` if `bytes` are not a
/// well-formed items file (checked without building its items).
pub fn appended(bytes: &[u8], item: &Item) -> Option<Vec<u8>> {
    decode(bytes, &|_| false)?;
    let count = u32::from_le_bytes(bytes[8..12].try_into().ok()?).checked_add(1)?;
    let mut out = Vec::with_capacity(bytes.len() + item.body.len() + 64);
    out.extend_from_slice(bytes);
    out[8..12].copy_from_slice(&count.to_le_bytes());
    encode_item(&mut out, item);
    Some(out)
}

fn encode_item(out: &mut Vec<u8>, item: &Item) {
    let text = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    let r = &item.ritual;
    let flags = [
        (item.edited_at.is_some(), EDITED),
        (item.starred, STARRED),
        (item.deleted, DELETED),
        (r.re.is_some(), RE),
        (r.mood.is_some(), MOOD),
        (r.energy.is_some(), ENERGY),
        (r.question.is_some(), QUESTION),
        (r.edited_after_reveal, EDITED_AFTER_REVEAL),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |acc, (_, bit)| acc | bit);
    out.extend_from_slice(item.id.as_bytes());
    out.extend_from_slice(&item.created_at.to_le_bytes());
    out.push(flags);
    if let Some(at) = item.edited_at {
        out.extend_from_slice(&at.to_le_bytes());
    }
    text(out, &item.body);
    text(out, item.kind.as_str());
    out.extend_from_slice(&(item.tags.len() as u32).to_le_bytes());
    for tag in &item.tags {
        text(out, tag);
    }
    if let Some(re) = r.re {
        out.extend_from_slice(re.as_bytes());
    }
    out.extend(r.mood);
    out.extend(r.energy);
    if let Some(q) = &r.question {
        text(out, &q.id);
        text(out, &q.date);
    }
}

/// The items whose body `keep` takes (as stored, before its UTF-8 is checked), in stored order;
/// `None` if `bytes` are not a whole, well-formed items file. An item not kept is stepped over
/// without being built, and its body without being checked: a search reads twenty volumes of
/// bodies for one match in each.
pub fn decode(bytes: &[u8], keep: &dyn Fn(&[u8]) -> bool) -> Option<Vec<Item>> {
    let mut r = Reader(bytes);
    if r.take(8)? != MAGIC {
        return None;
    }
    let count = r.u32()? as usize;
    // Each item takes at least 29 bytes: no count can promise more items than that allows.
    if count > bytes.len() / 29 {
        return None;
    }
    let mut items = Vec::new();
    for _ in 0..count {
        let id = ItemId(r.array()?);
        let created_at = r.i64()?;
        let flags = r.u8()?;
        let on = |bit: u8| flags & bit != 0;
        let edited_at = if on(EDITED) { Some(r.i64()?) } else { None };
        let raw = r.raw_text()?;
        let wanted = keep(raw);
        let body = if wanted {
            std::str::from_utf8(raw).ok()?
        } else {
            ""
        };
        let kind = r.text()?;
        let mut tags = Vec::new();
        for _ in 0..r.u32()? {
            let tag = r.text()?;
            if wanted {
                tags.push(tag.to_owned());
            }
        }
        let re = if on(RE) {
            Some(ItemId(r.array()?))
        } else {
            None
        };
        let mood = if on(MOOD) { Some(r.u8()?) } else { None };
        let energy = if on(ENERGY) { Some(r.u8()?) } else { None };
        let question = if on(QUESTION) {
            Some((r.text()?, r.text()?))
        } else {
            None
        };
        if !wanted {
            continue;
        }
        items.push(Item {
            id,
            kind: Kind::from_stored(kind),
            created_at,
            edited_at,
            body: body.to_owned(),
            tags,
            starred: on(STARRED),
            deleted: on(DELETED),
            ritual: Ritual {
                re,
                mood,
                energy,
                question: question.map(|(id, date)| Asked {
                    id: id.to_owned(),
                    date: date.to_owned(),
                }),
                edited_after_reveal: on(EDITED_AFTER_REVEAL),
            },
        });
    }
    r.0.is_empty().then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item() -> impl Strategy<Value = Item> {
        (
            any::<[u8; 8]>(),
            prop::sample::select(vec![
                "entry",
                "thanks",
                "checkin",
                "answer",
                "from-the-future",
            ]),
            any::<i64>(),
            any::<Option<i64>>(),
            ".{0,40}",
            prop::collection::vec("[a-zé]{1,8}", 0..3),
            any::<(bool, bool, bool)>(),
            any::<(Option<[u8; 8]>, Option<u8>, Option<u8>)>(),
            prop::option::of(("[a-z0-9-]{0,12}", "[0-9-]{0,10}")),
        )
            .prop_map(
                |(id, kind, created_at, edited_at, body, tags, flags, (re, mood, energy), q)| {
                    Item {
                        id: ItemId(id),
                        kind: Kind::from_stored(kind),
                        created_at,
                        edited_at,
                        body,
                        tags,
                        starred: flags.0,
                        deleted: flags.1,
                        ritual: Ritual {
                            re: re.map(ItemId),
                            mood,
                            energy,
                            question: q.map(|(id, date)| Asked { id, date }),
                            edited_after_reveal: flags.2,
                        },
                    }
                },
            )
    }

    #[test]
    fn a_body_that_is_not_utf8_fails_the_file_only_when_it_is_read() {
        let item = |n: u8, body: &str| Item {
            id: ItemId([n; 8]),
            kind: Kind::Entry,
            created_at: 1,
            edited_at: None,
            body: body.into(),
            tags: vec![],
            starred: false,
            deleted: false,
            ritual: Ritual::default(),
        };
        let mut bytes = encode(&[item(1, "alpha"), item(2, "bravo")]);
        let at = bytes.windows(5).position(|w| w == b"bravo").unwrap();
        bytes[at] = 0xff;
        // A search that steps over the damaged body still reads the rest of the file...
        let alpha = |body: &[u8]| body.starts_with(b"alpha");
        assert_eq!(decode(&bytes, &alpha), Some(vec![item(1, "alpha")]));
        // ...and one that takes it finds the file damaged, as before (it is then rebuilt).
        assert_eq!(decode(&bytes, &|_| true), None);
        let search = |body: &[u8]| duet_core::bloom::contains_folded_raw(body, "zzz");
        assert_eq!(
            decode(&bytes, &search),
            None,
            "bytes that are not UTF-8 are read"
        );
    }

    proptest! {
        #[test]
        fn an_item_appended_to_the_file_is_the_file_of_all_of_them(
            items in prop::collection::vec(item(), 0..8),
            new in item(),
        ) {
            let mut all = items.clone();
            all.push(new.clone());
            prop_assert_eq!(appended(&encode(&items), &new), Some(encode(&all)));
            // A cut or foreign file is not added to: the cache is rebuilt from the volume instead.
            let whole = encode(&items);
            prop_assert_eq!(appended(&whole[..whole.len() - 1], &new), None);
            prop_assert_eq!(appended(b"DUETIT", &new), None);
        }

        #[test]
        fn items_round_trip_and_a_search_keeps_exactly_what_it_takes(
            items in prop::collection::vec(item(), 0..12),
            needle in "[a-z]{0,2}",
        ) {
            let bytes = encode(&items);
            prop_assert_eq!(decode(&bytes, &|_| true), Some(items.clone()));
            let keep = |body: &[u8]| std::str::from_utf8(body).unwrap().contains(needle.as_str());
            let kept: Vec<Item> =
                items.iter().filter(|i| keep(i.body.as_bytes())).cloned().collect();
            prop_assert_eq!(decode(&bytes, &keep), Some(kept));
        }

        #[test]
        fn damaged_files_read_as_missing_never_as_something_else(
            items in prop::collection::vec(item(), 1..6),
            cut in any::<prop::sample::Index>(),
            flip in any::<(prop::sample::Index, u8)>(),
        ) {
            let bytes = encode(&items);
            let at = cut.index(bytes.len());
            prop_assert_eq!(decode(&bytes[..at], &|_| true), None);
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert_eq!(decode(&longer, &|_| true), None);
            // A flipped byte never panics (it may still read, as other items).
            let mut flipped = bytes;
            let i = flip.0.index(flipped.len());
            flipped[i] ^= flip.1 | 1;
            let _ = decode(&flipped, &|_| true);
        }
    }
}
