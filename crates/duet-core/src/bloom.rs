//! A Bloom filter over the lowercase character trigrams of a volume's bodies.
//!
//! `list --contains WORD` checks each volume's filter first and reads only
//! the volumes that may hold the word, so search time follows the number of
//! matching volumes rather than the size of the journal. A filter never says
//! "no" for text that is there; it may say "maybe" for text that is not.

/// Filter size in bytes (65,536 bits): for a full volume of everyday prose
/// (a few thousand distinct trigrams) a four-trigram word is a false positive
/// far less than once in a thousand volumes.
pub const BLOOM_BYTES: usize = 8192;
/// Number of bits in a filter.
pub const BITS: u64 = (BLOOM_BYTES * 8) as u64;

#[derive(Clone, PartialEq, Eq)]
pub struct TrigramBloom {
    bits: Vec<u8>,
}

impl Default for TrigramBloom {
    fn default() -> Self {
        TrigramBloom {
            bits: vec![0; BLOOM_BYTES],
        }
    }
}

impl std::fmt::Debug for TrigramBloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ones: u32 = self.bits.iter().map(|b| b.count_ones()).sum();
        write!(f, "TrigramBloom({ones} bits set)")
    }
}

/// Lowercase the way search compares text.
pub fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// Whether `text`, folded, contains `needle` (already folded). An ASCII text (almost every body)
/// folds byte for byte, so it is searched as it is instead of being copied lowercased first.
pub fn contains_folded(text: &str, needle: &str) -> bool {
    contains_folded_raw(text.as_bytes(), needle)
}

/// [`contains_folded`] of text as it is stored, before anyone checked that it is UTF-8: an ASCII
/// text is searched without that check (it is UTF-8), any other is checked and folded. Bytes
/// that are not UTF-8 count as a match, so that the reader that asked goes on to read them,
/// and refuses them.
pub fn contains_folded_raw(text: &[u8], needle: &str) -> bool {
    if !text.is_ascii() {
        return std::str::from_utf8(text).map_or(true, |text| fold(text).contains(needle));
    }
    let (hay, pat) = (text, needle.as_bytes());
    let Some((&first, rest)) = pat.split_first() else {
        return true;
    };
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), hay).any(|at| {
        hay.get(at + 1..at + pat.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(rest))
    })
}

fn hash(gram: &[u8]) -> u64 {
    // FNV-1a then a murmur finalizer: fast, stable across versions.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in gram {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

fn positions(gram: &[u8]) -> [u64; 3] {
    let h = hash(gram);
    let (a, b) = (h & 0xffff_ffff, h >> 32);
    [
        a % BITS,
        a.wrapping_add(b) % BITS,
        a.wrapping_add(b.wrapping_mul(2)) % BITS,
    ]
}

fn trigrams(folded: &[u8]) -> impl Iterator<Item = &[u8]> {
    folded.windows(3)
}

impl TrigramBloom {
    pub fn from_bytes(bytes: &[u8]) -> Option<TrigramBloom> {
        (bytes.len() == BLOOM_BYTES).then(|| TrigramBloom {
            bits: bytes.to_vec(),
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// Add every trigram of a text (folded here).
    pub fn insert_text(&mut self, text: &str) {
        let folded = fold(text);
        for gram in trigrams(folded.as_bytes()) {
            for p in positions(gram) {
                self.bits[(p / 8) as usize] |= 1 << (p % 8);
            }
        }
    }

    /// Whether a text containing `needle` may have been inserted. Needles
    /// shorter than three bytes cannot be ruled out.
    pub fn may_contain(&self, needle: &str) -> bool {
        needle_bits(needle).iter().all(|&p| self.bit(p))
    }

    pub fn bit(&self, p: u64) -> bool {
        self.bits[(p / 8) as usize] & (1 << (p % 8)) != 0
    }

    pub fn set_bit(&mut self, p: u64) {
        self.bits[(p / 8) as usize] |= 1 << (p % 8);
    }
}

/// The bits a filter must have set to possibly hold `needle`: lets a store
/// that keeps many filters bit-sliced read only these rows.
pub fn needle_bits(needle: &str) -> Vec<u64> {
    let folded = fold(needle);
    let mut bits: Vec<u64> = trigrams(folded.as_bytes()).flat_map(positions).collect();
    bits.sort_unstable();
    bits.dedup();
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn searching_in_place_finds_what_folding_finds(
            text in "[a-zA-Z .,'!?0-9\u{e9}\u{c9}\u{212a}\u{130}]{0,40}",
            needle in "[a-zA-Z .\u{e9}\u{c9}\u{212a}]{0,4}",
        ) {
            let folded = fold(&needle);
            prop_assert_eq!(contains_folded(&text, &folded), fold(&text).contains(&folded));
        }
    }

    #[test]
    fn searching_in_place_ignores_ascii_case_only_where_folding_does() {
        for (text, needle, found) in [
            ("Dinner at the LIGHTHOUSE", "lighthouse", true),
            ("Dinner", "dinner", true),
            ("dinne", "dinner", false),
            ("anything", "", true),
            ("", "a", false),
            ("Zanzibar", "anzibar", true),
            ("caf\u{c9} noir", "caf\u{e9}", true),
            ("plain text", "\u{e9}", false),
        ] {
            assert_eq!(contains_folded(text, needle), found, "{text:?} {needle:?}");
        }
    }

    #[test]
    fn finds_what_was_inserted() {
        let mut bloom = TrigramBloom::default();
        bloom.insert_text("We walked along the Tagus in Lisbon");
        assert!(bloom.may_contain("lisbon"));
        assert!(bloom.may_contain("TAGUS"));
        assert!(bloom.may_contain("ag"));
        assert!(!bloom.may_contain("zanzibar"));
    }

    proptest! {
        #[test]
        fn never_a_false_negative(text in "\\PC{0,200}", start in 0usize..200, len in 0usize..20) {
            let mut bloom = TrigramBloom::default();
            bloom.insert_text(&text);
            let folded = fold(&text);
            let chars: Vec<char> = folded.chars().collect();
            let start = start.min(chars.len());
            let end = (start + len).min(chars.len());
            let needle: String = chars[start..end].iter().collect();
            prop_assert!(bloom.may_contain(&needle));
        }
    }
}
