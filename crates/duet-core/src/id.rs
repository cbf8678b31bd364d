//! Random identifiers, printed as lowercase base32 without padding.
//!
//! Ids come from bytes the caller drew from a random source: the core has no
//! randomness of its own.

use std::fmt;
use std::str::FromStr;

use data_encoding::{BASE32_NOPAD, Encoding};

/// Lowercase RFC 4648 base32 without padding: easy to read aloud, no case to get wrong.
fn encoding() -> &'static Encoding {
    use std::sync::OnceLock;
    static ENC: OnceLock<Encoding> = OnceLock::new();
    ENC.get_or_init(|| {
        let mut spec = BASE32_NOPAD.specification();
        spec.symbols = "abcdefghijklmnopqrstuvwxyz234567".into();
        spec.translate.from = "ABCDEFGHIJKLMNOPQRSTUVWXYZ".into();
        spec.translate.to = "abcdefghijklmnopqrstuvwxyz".into();
        spec.encoding().expect("valid base32 spec")
    })
}

/// Encode bytes the way every duet id is written.
pub fn encode_base32(bytes: &[u8]) -> String {
    encoding().encode(bytes)
}

/// Decode an id written by [`encode_base32`] (upper case accepted).
pub fn decode_base32(text: &str) -> Option<Vec<u8>> {
    encoding().decode(text.as_bytes()).ok()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{text}` is not a valid {what} id")]
pub struct IdError {
    what: &'static str,
    text: String,
}

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident, $len:expr, $what:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            pub fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&encode_base32(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, IdError> {
                decode_base32(text)
                    .and_then(|v| <[u8; $len]>::try_from(v.as_slice()).ok())
                    .map(Self)
                    .ok_or_else(|| IdError { what: $what, text: text.to_owned() })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// One journal item (entry, thanks, ...). 64 random bits: 13 characters.
    ItemId, 8, "item"
);
define_id!(
    /// One person's journal (or the device-local private journal).
    JournalId, 16, "journal"
);
define_id!(
    /// One volume: an Automerge document holding a bounded number of items.
    VolumeId, 8, "volume"
);

/// The start of an item id as someone types it (`duet show 4i2f`), matched against ids
/// without writing each one out: the prefix's bits and which bits it fixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdPrefix {
    value: u64,
    mask: u64,
}

impl IdPrefix {
    /// `None` when no id can start this way (a character outside the alphabet, or longer
    /// than an id). Upper case is accepted, as ids are.
    pub fn parse(text: &str) -> Option<IdPrefix> {
        const SYMBOLS: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
        if text.len() > 13 {
            return None;
        }
        // 13 characters carry 65 bits: the id's 64 and a last bit that is always 0.
        let (mut value, mut mask) = (0u128, 0u128);
        for (i, c) in text.bytes().enumerate() {
            let v = SYMBOLS.iter().position(|&s| s == c.to_ascii_lowercase())? as u128;
            let shift = 65 - 5 * (i + 1);
            value |= v << shift;
            mask |= 0x1f << shift;
        }
        if value & 1 != 0 {
            return None;
        }
        Some(IdPrefix {
            value: (value >> 1) as u64,
            mask: (mask >> 1) as u64,
        })
    }

    pub fn matches(&self, id: &ItemId) -> bool {
        u64::from_be_bytes(id.0) & self.mask == self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn a_prefix_matches_exactly_the_ids_whose_text_starts_with_it(
            id in proptest::prelude::any::<[u8; 8]>(),
            other in proptest::prelude::any::<[u8; 8]>(),
            len in 0usize..=13,
        ) {
            let id = ItemId(id);
            let text = id.to_string();
            let prefix = IdPrefix::parse(&text[..len]).expect("a real id's start");
            proptest::prop_assert!(prefix.matches(&id));
            let upper = IdPrefix::parse(&text[..len].to_uppercase()).expect("upper case");
            proptest::prop_assert_eq!(upper, prefix);
            let other = ItemId(other);
            proptest::prop_assert_eq!(prefix.matches(&other), other.to_string().starts_with(&text[..len]));
        }
    }

    #[test]
    fn prefixes_no_id_can_have_match_nothing() {
        assert_eq!(IdPrefix::parse("ab1"), None);
        assert_eq!(IdPrefix::parse("aaaaaaaaaaaaab"), None);
        // The 13th character carries one bit only: its other half is always 0.
        assert_eq!(IdPrefix::parse("aaaaaaaaaaaab"), None);
        assert!(IdPrefix::parse("aaaaaaaaaaaac").is_some());
    }

    #[test]
    fn ids_round_trip_through_text() {
        let id = ItemId([1, 2, 3, 4, 5, 6, 7, 250]);
        let text = id.to_string();
        assert_eq!(text.len(), 13);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.parse::<ItemId>().unwrap(), id);
        assert_eq!(text.to_uppercase().parse::<ItemId>().unwrap(), id);
    }

    #[test]
    fn bad_ids_are_rejected() {
        assert!("hello!".parse::<ItemId>().is_err());
        assert!("aaaa".parse::<JournalId>().is_err());
    }
}
