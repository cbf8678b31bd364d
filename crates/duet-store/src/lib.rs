//! duet's data directory: the journals on disk, the derived index, the
//! device identity and the partner record.
//!
//! Every write is crash-safe (temp file, fsync, rename, fsync the directory)
//! and several `duet` processes may use one home at once: journal data is
//! only ever added as new content-addressed files, and the one operation
//! that deletes (compaction) first writes what replaces them.

pub mod doctor;
pub mod fsutil;
pub mod home;
pub mod index;
mod items_file;
pub mod volumes;

mod replica;
mod store;
mod warm;

use std::fmt;
use std::path::{Path, PathBuf};

pub use home::{Config, Home, Partner};
pub use replica::{Arrivals, StoreReplica};
pub use store::{ListedItem, Located, Status, Store, WriteRequest};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no duet journal in {0}; run `duet init --name YOUR_NAME` first")]
    NotInitialized(PathBuf),
    #[error(
        "{0} belongs to another user; duet keeps private words only in a directory of your own \
         (pass another --home)"
    )]
    NotOwner(PathBuf),
    #[error(
        "{0} can be changed by other users; make it private with `chmod go-w` on it, or pass another --home"
    )]
    OpenToOthers(PathBuf),
    #[error("{0} already holds a duet journal; use another --home to start a new one")]
    AlreadyInitialized(PathBuf),
    #[error("a name must be 1 to 64 printable characters")]
    BadName,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file} is damaged: {why}")]
    Corrupt { file: PathBuf, why: String },
    #[error("{0} keeps changing under us; try again in a moment")]
    Busy(PathBuf),
    #[error("no item matches `{0}`; `duet list` shows the ids")]
    NoSuchItem(String),
    #[error("`{prefix}` matches {} items: {}; type more of the id", candidates.len(), candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error(
        "item {0} was written by your partner; only its author can change it (you can still star it)"
    )]
    NotAuthor(String),
    #[error(
        "volume {0} cannot be read, so it cannot be changed; the warnings above name the damaged file"
    )]
    Unreadable(String),
    #[error(
        "the other device announced journal {0}, which is already in this home; nothing was \
         paired (a genuine partner's journal is new here)"
    )]
    JournalClash(duet_core::JournalId),
    #[error(transparent)]
    Item(#[from] duet_core::ItemError),
    #[error("journal document: {0}")]
    Volume(#[from] duet_core::VolumeError),
}

/// Something wrong with the store that did not stop the command: reported on
/// stderr, the rest of the journal is still served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning(pub String);

impl Warning {
    pub fn unreadable(path: &Path, why: &str) -> Warning {
        Warning(format!("skipped {}: {why}", path.display()))
    }

    pub fn volume(dir: &Path, vol: duet_core::VolumeId, why: &str) -> Warning {
        Warning(format!("skipped volume {vol} in {}: {why}", dir.display()))
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
