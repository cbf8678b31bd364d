//! duet's core: the journal model, the sync session and the pairing handshake.
//!
//! This crate is pure: it never touches a file, a socket or a clock. Time and
//! randomness come in as arguments so that every behaviour is deterministic
//! under test. `duet-store` does the files and `duet-net` the sockets.

pub mod authority;
pub mod bloom;
pub(crate) mod codec;
pub mod filter;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod id;
pub mod inflate;
pub mod item;
pub mod journal;
pub mod lan;
pub mod pairing;
pub mod question;
pub mod reveal;
pub mod rituals;
pub mod rng;
pub mod sync;
pub mod text;
pub mod volume;

pub use filter::{Author, Filter};
pub use id::{IdError, ItemId, JournalId, VolumeId};
pub use item::{Asked, BODY_LIMIT, Item, ItemError, Kind, Ritual, extract_tags, normalize_tag};
pub use journal::Journal;
pub use reveal::Reveal;
pub use rng::SeededRng;
pub use volume::{
    AppendPoint, MAX_ITEMS_PER_VOLUME, VOLUME_CAPACITY, Volume, VolumeError, change_adding,
    load_bounded,
};
