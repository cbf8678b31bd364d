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

#[cfg(test)]
mod tests {
    use super::*;

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
