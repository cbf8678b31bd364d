//! The data directory of one device and its small human-readable files.
//!
//! ```text
//! HOME/
//!   config.toml        who I am: name, my journal ids
//!   device.key         this device's ed25519 secret key (0600)
//!   partner.toml       the pinned partner, once paired
//!   journals/<id>/     one folder per journal: volume snapshots and chunks
//!   sync/<peer>/       per-peer sync state
//!   cache/             derived indexes; safe to delete
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use duet_core::JournalId;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::fsutil::{self, create_private_dir, write_atomic};

pub const CONFIG_FILE: &str = "config.toml";
pub const KEY_FILE: &str = "device.key";
pub const PARTNER_FILE: &str = "partner.toml";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    /// The name the partner sees.
    pub name: String,
    /// This person's journal: synced to the partner.
    pub journal: JournalId,
    /// Entries written with `--private`: never leave this device.
    pub private_journal: JournalId,
    /// When this home was created (Unix ms).
    pub created_at: i64,
}

/// The partner pinned at pairing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Partner {
    pub name: String,
    /// The partner device's iroh endpoint id (hex of the ed25519 public key).
    pub endpoint_id: String,
    pub journal: JournalId,
    /// Direct addresses learned at pairing and at every sync.
    #[serde(default)]
    pub addrs: Vec<String>,
    #[serde(default)]
    pub relay_url: Option<String>,
    pub paired_at: i64,
    /// The pairing ticket's expiry (Unix seconds): the same number on both devices, from
    /// which both count the days since pairing (the daily question grows deeper with them).
    #[serde(default)]
    pub paired_epoch: Option<i64>,
    #[serde(default)]
    pub last_sync: Option<i64>,
    /// Set by `duet unpair`: the partner is refused from then on.
    #[serde(default)]
    pub unpaired: bool,
}

#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub fn new(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn journal_dir(&self, journal: JournalId) -> PathBuf {
        self.root.join("journals").join(journal.to_string())
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub fn sync_dir(&self, peer: &str) -> PathBuf {
        self.root.join("sync").join(peer)
    }

    pub fn is_initialized(&self) -> bool {
        self.root.join(CONFIG_FILE).is_file()
    }

    /// Create the directory, the device key and the config. Refuses to touch
    /// a home that already has a config.
    pub fn init(&self, name: &str, now: i64) -> Result<Config, StoreError> {
        let name = name.trim();
        if name.is_empty() || name.chars().any(char::is_control) || name.chars().count() > 64 {
            return Err(StoreError::BadName);
        }
        if self.is_initialized() {
            return Err(StoreError::AlreadyInitialized(self.root.clone()));
        }
        create_private_dir(&self.root).map_err(|e| self.io_err(&self.root, e))?;
        let config = Config {
            name: name.to_owned(),
            journal: JournalId(fsutil::random_bytes()),
            private_journal: JournalId(fsutil::random_bytes()),
            created_at: now,
        };
        for dir in ["journals", "cache", "sync"] {
            let path = self.root.join(dir);
            create_private_dir(&path).map_err(|e| self.io_err(&path, e))?;
        }
        for journal in [config.journal, config.private_journal] {
            let path = self.journal_dir(journal);
            create_private_dir(&path).map_err(|e| self.io_err(&path, e))?;
        }
        let key: [u8; 32] = fsutil::secret_bytes();
        write_atomic(&self.root, KEY_FILE, &key, 0o600)
            .map_err(|e| self.io_err(&self.root.join(KEY_FILE), e))?;
        // The config goes last: its presence means the home is complete.
        self.write_toml(CONFIG_FILE, &config)?;
        Ok(config)
    }

    pub fn config(&self) -> Result<Config, StoreError> {
        if !self.is_initialized() {
            return Err(StoreError::NotInitialized(self.root.clone()));
        }
        self.read_toml(CONFIG_FILE)?
            .ok_or_else(|| StoreError::NotInitialized(self.root.clone()))
    }

    pub fn device_key(&self) -> Result<[u8; 32], StoreError> {
        let path = self.root.join(KEY_FILE);
        let bytes = fs::read(&path).map_err(|e| self.io_err(&path, e))?;
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt {
                file: path,
                why: "the device key must be exactly 32 bytes".into(),
            })
    }

    pub fn partner(&self) -> Result<Option<Partner>, StoreError> {
        self.read_toml(PARTNER_FILE)
    }

    pub fn set_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        self.write_toml(PARTNER_FILE, partner)
    }

    pub fn remove_partner(&self) -> Result<(), StoreError> {
        let path = self.root.join(PARTNER_FILE);
        match fs::remove_file(&path) {
            Ok(()) => fsutil::sync_dir(&self.root).map_err(|e| self.io_err(&self.root, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_err(&path, e)),
        }
    }

    fn read_toml<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let path = self.root.join(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_err(&path, e)),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                file: path,
                why: e.message().to_owned(),
            })
    }

    fn write_toml<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let text = toml::to_string(value).expect("config serializes");
        write_atomic(&self.root, name, text.as_bytes(), 0o600)
            .map_err(|e| self.io_err(&self.root.join(name), e))
    }

    pub(crate) fn io_err(&self, path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
