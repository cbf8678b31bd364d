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
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use duet_core::JournalId;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::fsutil::{self, create_private_dir, write_atomic};

pub const CONFIG_FILE: &str = "config.toml";
pub const KEY_FILE: &str = "device.key";
/// The person key's secret (32 bytes, 0600): it certifies this person's devices.
pub const PERSON_KEY_FILE: &str = "person.key";
/// Device lists, one file per person, named by the person id in hex.
pub const DEVICES_DIR: &str = "devices";
pub const PARTNER_FILE: &str = "partner.toml";
/// Present while a home restored from its recovery phrase waits for its journal.
pub const RECOVERING_FILE: &str = "recovering";
/// Where each device of the couple was last reached.
pub const PEERS_FILE: &str = "peers.toml";
/// Addresses kept per device: the newest first.
pub const MAX_ADDRS_PER_DEVICE: usize = 8;
/// An address that has not carried a session for this long (or, learned and never used, for
/// this long since it was first met at a session) is forgotten at the next session that works.
pub const ADDRESS_AGE_OUT_MS: i64 = 14 * 24 * 3600 * 1000;

/// Where the devices of the couple were last reached, by device id (hex). Only a hint for
/// dialing: who a device is comes from the device lists, never from here.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddressBook {
    #[serde(default)]
    pub devices: std::collections::BTreeMap<String, Seen>,
}

impl AddressBook {
    /// Every device with an address that still reads, as hints to hand to another device.
    pub fn hints(&self) -> Vec<([u8; 32], Vec<SocketAddr>)> {
        self.devices
            .iter()
            .filter_map(|(id, seen)| {
                let addrs: Vec<SocketAddr> =
                    seen.addrs.iter().filter_map(|a| a.parse().ok()).collect();
                (!addrs.is_empty()).then_some((unhex32(id)?, addrs))
            })
            .collect()
    }
}

/// How one device was last reached.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Seen {
    #[serde(default)]
    pub addrs: Vec<String>,
    #[serde(default)]
    pub relay_url: Option<String>,
    /// When a session with it last completed (Unix ms).
    #[serde(default)]
    pub last_seen: Option<i64>,
    /// How that session went: `lan` (directly, on the local network), `internet` (directly,
    /// across the internet) or `relay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Per address, when it last carried a session (or, for one that never did, when a session
    /// first went on without it): what ages addresses out.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub since: std::collections::BTreeMap<String, i64>,
}

impl Seen {
    /// Put `addrs` (newest first) before the others, each once.
    fn put_first(&mut self, addrs: &[String]) {
        for addr in addrs.iter().rev() {
            self.addrs.retain(|a| a != addr);
            self.addrs.insert(0, addr.clone());
        }
    }

    /// See [`Home::reached`].
    pub fn reached(&mut self, reach: &Reach, now: i64) {
        self.put_first(&reach.addrs);
        for addr in &reach.addrs {
            self.since.insert(addr.clone(), now);
        }
        for addr in &self.addrs {
            self.since.entry(addr.clone()).or_insert(now);
        }
        let since = &self.since;
        self.addrs.retain(|a| {
            since
                .get(a)
                .is_some_and(|t| now.saturating_sub(*t) < ADDRESS_AGE_OUT_MS)
        });
        self.addrs.truncate(MAX_ADDRS_PER_DEVICE);
        let kept = &self.addrs;
        self.since.retain(|a, _| kept.contains(a));
        if let Some(url) = &reach.relay_url {
            self.relay_url = Some(url.clone());
        }
        self.path = reach.path.clone();
        self.last_seen = Some(now);
    }
}

/// How a completed session reached a device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// The IP addresses its connection used.
    pub addrs: Vec<String>,
    /// Its relay, when the connection had a path through one.
    pub relay_url: Option<String>,
    /// `lan`, `internet` or `relay`: the path that carried it.
    pub path: Option<String>,
}

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
    /// The last sync, as homes before the address book kept it (Unix ms); now a session
    /// stamps the partner's device in `peers.toml` instead ([`Partner::last_synced`]).
    #[serde(default)]
    pub last_sync: Option<i64>,
    /// Set by `duet unpair`: the partner is refused from then on.
    #[serde(default)]
    pub unpaired: bool,
    /// The partner's person id (hex of their person key), pinned at pairing: any device their
    /// device list admits is theirs. Absent for partners paired before person keys.
    #[serde(default)]
    pub person: Option<String>,
}

impl Partner {
    /// When a device of this home last synced with the partner, given the latest `last_seen`
    /// of the partner's devices in the address book: the later of that and what a home from
    /// before the address book kept in this record.
    pub fn last_synced(&self, seen: Option<i64>) -> Option<i64> {
        self.last_sync.max(seen)
    }
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

    /// An exclusive lock on this home's stores (`.store.lock`, flock): held while a sync session
    /// stores what it brought, so two sessions (in one process or two) store one after the
    /// other. Released when the file is dropped.
    pub fn writing_lock(&self) -> Result<std::fs::File, StoreError> {
        let path = self.root.join(".store.lock");
        let file = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true),
            0o600,
        )
        .open(&path)
        .map_err(|e| self.io_err(&path, e))?;
        file.lock().map_err(|e| self.io_err(&path, e))?;
        Ok(file)
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

    /// Create the directory, the device key, the person key and the config. Refuses to touch
    /// a home that already has a config.
    pub fn init(&self, name: &str, label: &str, now: i64) -> Result<Config, StoreError> {
        self.init_with(name, label, now, fsutil::secret_bytes(), false)
    }

    /// Like [`Home::init`], with the person key restored from a recovery phrase: the same
    /// journals as before, this device newly certified, and the home marked as recovering
    /// until a partner's device hands the journal back.
    pub fn init_recovered(
        &self,
        name: &str,
        label: &str,
        now: i64,
        person_seed: [u8; 32],
    ) -> Result<Config, StoreError> {
        self.init_with(name, label, now, person_seed, true)
    }

    fn init_with(
        &self,
        name: &str,
        label: &str,
        now: i64,
        person_seed: [u8; 32],
        recovering: bool,
    ) -> Result<Config, StoreError> {
        let name = name.trim();
        if !duet_core::text::valid_name(name) {
            return Err(StoreError::BadName);
        }
        self.check_private()?;
        if self.is_initialized() {
            return Err(StoreError::AlreadyInitialized(self.root.clone()));
        }
        create_private_dir(&self.root).map_err(|e| self.io_err(&self.root, e))?;
        let person = duet_core::authority::PersonKey::from_seed(person_seed);
        let (journal, private_journal) = person.journals();
        let config = Config {
            name: name.to_owned(),
            journal,
            private_journal,
            created_at: now,
        };
        self.make_dirs(&config)?;
        if !self.root.join(KEY_FILE).is_file() {
            let key: [u8; 32] = fsutil::secret_bytes();
            write_atomic(&self.root, KEY_FILE, &key, 0o600)
                .map_err(|e| self.io_err(&self.root.join(KEY_FILE), e))?;
        }
        write_atomic(&self.root, PERSON_KEY_FILE, &person.seed(), 0o600)
            .map_err(|e| self.io_err(&self.root.join(PERSON_KEY_FILE), e))?;
        self.identity(label, now)?;
        if recovering {
            write_atomic(&self.root, RECOVERING_FILE, b"", 0o600)
                .map_err(|e| self.io_err(&self.root.join(RECOVERING_FILE), e))?;
        }
        // The config goes last: its presence means the home is complete.
        self.write_toml(CONFIG_FILE, &config)?;
        Ok(config)
    }

    /// Whether this home was restored from a recovery phrase and has not had its journal back
    /// from a partner's device yet.
    pub fn is_recovering(&self) -> bool {
        self.root.join(RECOVERING_FILE).exists()
    }

    /// The journal came back: the home is an ordinary one from now on.
    pub fn recovered(&self) -> Result<(), StoreError> {
        let path = self.root.join(RECOVERING_FILE);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_err(&path, e)),
        }
    }

    /// The device key of a home that has no journal yet, made if missing: a new device needs
    /// its key before it can join its owner (`duet device join`). Refuses a home that already
    /// holds a journal.
    pub fn new_device_key(&self) -> Result<[u8; 32], StoreError> {
        self.check_private()?;
        if self.is_initialized() {
            return Err(StoreError::AlreadyInitialized(self.root.clone()));
        }
        create_private_dir(&self.root).map_err(|e| self.io_err(&self.root, e))?;
        if !self.root.join(KEY_FILE).is_file() {
            let key: [u8; 32] = fsutil::secret_bytes();
            write_atomic(&self.root, KEY_FILE, &key, 0o600)
                .map_err(|e| self.io_err(&self.root.join(KEY_FILE), e))?;
        }
        self.device_key()
    }

    /// Make this empty home a device of the person who linked it: their person key, device
    /// lists, journals and partner, all from a grant already checked against the handshake.
    /// The config goes last, so an interrupted join leaves a home that is still empty.
    pub fn join_person(
        &self,
        grant: &duet_core::pairing::LinkGrant,
        checked: &duet_core::pairing::CheckedGrant,
    ) -> Result<Config, StoreError> {
        if self.is_initialized() {
            return Err(StoreError::AlreadyInitialized(self.root.clone()));
        }
        let config = Config {
            name: grant.name.clone(),
            journal: JournalId(grant.journal),
            private_journal: JournalId(grant.private_journal),
            created_at: grant.created_at,
        };
        self.make_dirs(&config)?;
        write_atomic(&self.root, PERSON_KEY_FILE, &checked.person.seed(), 0o600)
            .map_err(|e| self.io_err(&self.root.join(PERSON_KEY_FILE), e))?;
        self.save_devices(&checked.devices)?;
        if let Some(list) = &checked.partner_devices {
            self.save_devices(list)?;
        }
        if let Some(p) = &grant.partner {
            self.set_partner(&Partner {
                name: p.name.clone(),
                endpoint_id: hex(&p.endpoint_id),
                journal: JournalId(p.journal),
                addrs: p.addrs.iter().map(ToString::to_string).collect(),
                relay_url: p.relay_url.clone(),
                paired_at: p.paired_at,
                paired_epoch: p.paired_epoch,
                last_sync: None,
                unpaired: false,
                person: checked.partner_devices.as_ref().map(|l| hex(&l.person())),
            })?;
            let path = self.journal_dir(JournalId(p.journal));
            create_private_dir(&path).map_err(|e| self.io_err(&path, e))?;
        }
        self.write_toml(CONFIG_FILE, &config)?;
        Ok(config)
    }

    /// The folders of a new home and of its two journals, owner-only.
    fn make_dirs(&self, config: &Config) -> Result<(), StoreError> {
        for dir in ["journals", "cache", "sync"] {
            let path = self.root.join(dir);
            create_private_dir(&path).map_err(|e| self.io_err(&path, e))?;
        }
        for journal in [config.journal, config.private_journal] {
            let path = self.journal_dir(journal);
            create_private_dir(&path).map_err(|e| self.io_err(&path, e))?;
        }
        Ok(())
    }

    /// Refuse a home that is not this user's alone: owned by someone else, or writable by
    /// others (who could swap a file under us, or plant a journal). A home not made yet is
    /// fine: `init` creates it owner-only.
    pub fn check_private(&self) -> Result<(), StoreError> {
        use std::os::unix::fs::MetadataExt;
        let meta = match fs::metadata(&self.root) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io_err(&self.root, e)),
        };
        if meta.uid() != rustix::process::geteuid().as_raw() {
            return Err(StoreError::NotOwner(self.root.clone()));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(StoreError::OpenToOthers(self.root.clone()));
        }
        Ok(())
    }

    pub fn config(&self) -> Result<Config, StoreError> {
        self.check_private()?;
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

    /// This person's key and device list. A home made before person keys existed gets them
    /// now: a new person key that certifies this device under `label`.
    pub fn identity(
        &self,
        label: &str,
        now: i64,
    ) -> Result<
        (
            duet_core::authority::PersonKey,
            duet_core::authority::DeviceList,
        ),
        StoreError,
    > {
        use duet_core::authority::{DeviceKey, DeviceList, PersonKey};
        let path = self.root.join(PERSON_KEY_FILE);
        let person = match fs::read(&path) {
            Ok(bytes) => PersonKey::from_seed(bytes.as_slice().try_into().map_err(|_| {
                StoreError::Corrupt {
                    file: path.clone(),
                    why: "the person key must be exactly 32 bytes".into(),
                }
            })?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = PersonKey::from_seed(fsutil::secret_bytes());
                write_atomic(&self.root, PERSON_KEY_FILE, &key.seed(), 0o600)
                    .map_err(|e| self.io_err(&path, e))?;
                key
            }
            Err(e) => return Err(self.io_err(&path, e)),
        };
        let mut list = self
            .devices(&person.id())?
            .unwrap_or_else(|| DeviceList::new(person.id()));
        let device = DeviceKey::from_bytes(self.device_key()?).id();
        if list.cert(&device).is_none() {
            let label = if duet_core::text::valid_name(label) {
                label
            } else {
                "first device"
            };
            list.add_cert(person.certify(device, label, now))
                .map_err(|e| StoreError::Corrupt {
                    file: path.clone(),
                    why: e.to_string(),
                })?;
            self.save_devices(&list)?;
        }
        Ok((person, list))
    }

    /// The device list of `person` as this home knows it, every statement checked.
    pub fn devices(
        &self,
        person: &duet_core::authority::PersonId,
    ) -> Result<Option<duet_core::authority::DeviceList>, StoreError> {
        let path = self.root.join(DEVICES_DIR).join(hex(person));
        match fs::read(&path) {
            Ok(bytes) => duet_core::authority::DeviceList::decode(&bytes)
                .ok()
                .filter(|l| l.person() == *person)
                .map(Some)
                .ok_or(StoreError::Corrupt {
                    file: path,
                    why: "it is not a valid device list of this person".into(),
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_err(&path, e)),
        }
    }

    /// Stores a person's device list, merged with what this home already knows of it (lists
    /// only grow: a revocation heard once stays).
    pub fn save_devices(&self, list: &duet_core::authority::DeviceList) -> Result<(), StoreError> {
        let dir = self.root.join(DEVICES_DIR);
        create_private_dir(&dir).map_err(|e| self.io_err(&dir, e))?;
        let mut merged = list.clone();
        if let Ok(Some(known)) = self.devices(&list.person()) {
            merged.merge(&known).map_err(|e| StoreError::Corrupt {
                file: dir.join(hex(&list.person())),
                why: e.to_string(),
            })?;
        }
        write_atomic(&dir, &hex(&list.person()), &merged.encode(), 0o600)
            .map_err(|e| self.io_err(&dir, e))
    }

    /// The signed statements stored for one volume of a journal (`signatures/<journal>/<volume>`).
    /// A missing or damaged file counts as none: it only ever lets more in, never less.
    pub fn signatures(
        &self,
        journal: JournalId,
        volume: duet_core::VolumeId,
    ) -> Vec<duet_core::authority::SignedHeads> {
        let path = self
            .root
            .join("signatures")
            .join(journal.to_string())
            .join(volume.to_string());
        fs::read(path)
            .ok()
            .and_then(|b| duet_core::authority::decode_signed(&b).ok())
            .unwrap_or_default()
    }

    /// Stores the signed statements of volumes, each replacing what was there: every file is
    /// synced, and each directory once at the end, before the caller goes on to store what
    /// relies on them (a first sync of 400 volumes paid a directory sync for each).
    pub fn save_signatures<'a>(
        &self,
        volumes: impl IntoIterator<
            Item = (
                JournalId,
                duet_core::VolumeId,
                &'a [duet_core::authority::SignedHeads],
            ),
        >,
    ) -> Result<(), StoreError> {
        let top = self.root.join("signatures");
        let mut dirs = std::collections::BTreeSet::new();
        let mut files = Vec::new();
        for (journal, volume, statements) in volumes {
            let dir = top.join(journal.to_string());
            if dirs.insert(dir.clone()) {
                for d in [&top, &dir] {
                    create_private_dir(d).map_err(|e| self.io_err(d, e))?;
                }
            }
            let bytes = duet_core::authority::encode_signed(statements);
            files.push((dir, volume.to_string(), bytes));
        }
        // Each file synced (several at once), then the names: all durable before it returns.
        fsutil::in_parallel(files, |(dir, name, bytes)| {
            fsutil::write_atomic_sync_dir_later(&dir, &name, &bytes, 0o600)
                .map_err(|e| self.io_err(&dir, e))
        })?;
        for dir in dirs {
            fsutil::sync_dir(&dir).map_err(|e| self.io_err(&dir, e))?;
        }
        Ok(())
    }

    /// Where the devices of the couple were last reached. A damaged file counts as empty: it
    /// holds only hints, which the next sync writes again.
    pub fn address_book(&self) -> AddressBook {
        self.read_toml(PEERS_FILE)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Remember that `device` (hex id) can be reached at `addrs` (newest first) and through
    /// `relay_url`, as learned at pairing or linking: tried first next time.
    pub fn remember(
        &self,
        device: &str,
        addrs: &[String],
        relay_url: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut book = self.address_book();
        let seen = book.devices.entry(device.to_owned()).or_default();
        seen.put_first(addrs);
        seen.addrs.truncate(MAX_ADDRS_PER_DEVICE);
        if let Some(url) = relay_url {
            seen.relay_url = Some(url.to_owned());
        }
        self.write_toml(PEERS_FILE, &book)
    }

    /// Record a session with `device` that completed at `now` over `reach`: the addresses that
    /// worked go first and are fresh again; every other address that has not worked for
    /// [`ADDRESS_AGE_OUT_MS`] is forgotten.
    pub fn reached(&self, device: &str, reach: &Reach, now: i64) -> Result<(), StoreError> {
        let mut book = self.address_book();
        let seen = book.devices.entry(device.to_owned()).or_default();
        seen.reached(reach, now);
        self.write_toml_cache(PEERS_FILE, &book)
    }

    /// Add addresses another device said the devices named were reached at, after those this
    /// device learned itself: hints, tried last, kept within the same bound.
    pub fn hint(&self, hints: &[([u8; 32], Vec<SocketAddr>)]) -> Result<(), StoreError> {
        let mut book = self.address_book();
        let before = book.clone();
        for (device, addrs) in hints {
            let seen = book.devices.entry(hex(device)).or_default();
            for addr in addrs.iter().map(ToString::to_string) {
                if seen.addrs.len() < MAX_ADDRS_PER_DEVICE && !seen.addrs.contains(&addr) {
                    seen.addrs.push(addr);
                }
            }
        }
        if book == before {
            return Ok(());
        }
        self.write_toml_cache(PEERS_FILE, &book)
    }

    pub fn partner(&self) -> Result<Option<Partner>, StoreError> {
        self.read_toml(PARTNER_FILE)
    }

    pub fn set_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        self.write_toml(PARTNER_FILE, partner)
    }

    /// Pin a newly paired partner. Their journal id must be new to this home: it may not be
    /// one of mine, nor any journal already here, unless it is the same partner's journal
    /// coming back after an unpair. A hostile peer announcing my own id would otherwise make
    /// sync and `unpair --forget` act on my journal.
    pub fn pin_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        if self.taken_journals()?.contains(&partner.journal) {
            return Err(StoreError::JournalClash(partner.journal));
        }
        self.set_partner(partner)
    }

    /// The journals a partner may not announce as theirs: both of mine, and every journal held
    /// here except the current partner's (pairing again with the same person keeps it).
    pub fn taken_journals(&self) -> Result<Vec<JournalId>, StoreError> {
        let config = self.config()?;
        let current = self.partner()?.map(|p| p.journal);
        let mut taken = vec![config.journal, config.private_journal];
        let dir = self.root.join("journals");
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                    continue;
                };
                if Some(id) != current && !taken.contains(&id) {
                    taken.push(id);
                }
            }
        }
        Ok(taken)
    }

    /// Forget the partner: delete their journal and sync state and the partner record. Only
    /// ever a journal that is not mine is deleted, whatever the record says.
    pub fn forget_partner(&self) -> Result<Option<Partner>, StoreError> {
        let Some(partner) = self.partner()? else {
            return Ok(None);
        };
        let config = self.config()?;
        if partner.journal != config.journal && partner.journal != config.private_journal {
            let dir = self.journal_dir(partner.journal);
            match fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io_err(&dir, e)),
            }
        }
        let sync = self.sync_dir(&partner.endpoint_id);
        if sync.parent() == Some(&self.root.join("sync")) {
            let _ = fs::remove_dir_all(&sync);
        }
        self.remove_partner()?;
        Ok(Some(partner))
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
        self.put_toml(name, value, |dir, name, bytes| {
            write_atomic(dir, name, bytes, 0o600)
        })
    }

    /// [`Home::write_toml`] without the fsyncs, for what is learned again by the next session
    /// (where devices were reached): never half-written, but a power cut may take back the
    /// newest version, and reading a damaged one gives the empty book.
    fn write_toml_cache<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        self.put_toml(name, value, fsutil::write_cache)
    }

    fn put_toml<T: Serialize>(
        &self,
        name: &str,
        value: &T,
        write: impl FnOnce(&Path, &str, &[u8]) -> io::Result<()>,
    ) -> Result<(), StoreError> {
        let text = toml::to_string(value).expect("config serializes");
        write(&self.root, name, text.as_bytes()).map_err(|e| self.io_err(&self.root.join(name), e))
    }

    pub(crate) fn io_err(&self, path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Lower-case hex of bytes (ids in file names and records).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 32-byte id back from its hex (either case), if it is one.
pub fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Partner {
    /// The partner's person id, if pinned (paired with person keys).
    pub fn person_id(&self) -> Option<duet_core::authority::PersonId> {
        unhex32(self.person.as_deref()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_worked_come_first_and_those_that_stopped_age_out() {
        const DAY: i64 = 24 * 3600 * 1000;
        let mut seen = Seen {
            addrs: vec!["10.0.0.2:4433".into(), "192.168.1.7:4433".into()],
            ..Seen::default()
        };
        let reach = |addr: &str, path: &str| Reach {
            addrs: vec![addr.into()],
            relay_url: None,
            path: Some(path.into()),
        };
        // A session over the second address: it goes first; the first is kept for now.
        seen.reached(&reach("192.168.1.7:4433", "lan"), DAY);
        assert_eq!(seen.addrs, ["192.168.1.7:4433", "10.0.0.2:4433"]);
        assert_eq!(seen.last_seen, Some(DAY));
        assert_eq!(seen.path.as_deref(), Some("lan"));
        // Ten days on, through a relay: the direct addresses are still kept.
        let mut relayed = reach("", "relay");
        relayed.addrs.clear();
        relayed.relay_url = Some("https://relay.example.org./".into());
        seen.reached(&relayed, 11 * DAY);
        assert_eq!(seen.addrs.len(), 2);
        assert_eq!(
            seen.relay_url.as_deref(),
            Some("https://relay.example.org./")
        );
        // A new address works 20 days after the first session: what has not worked for 14 days
        // is gone; the relay stays.
        seen.reached(&reach("10.0.5.9:4433", "lan"), 21 * DAY);
        assert_eq!(seen.addrs, ["10.0.5.9:4433"]);
        assert_eq!(seen.since.len(), 1);
        assert!(seen.relay_url.is_some());
    }

    #[test]
    fn statements_of_many_volumes_are_stored_each_in_its_file() {
        use duet_core::authority::DeviceKey;
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("home"));
        home.init("Alex", "laptop", 0).unwrap();
        let key = DeviceKey::from_bytes([5; 32]);
        let journals = [JournalId([1; 16]), JournalId([2; 16])];
        // A first sync stores statements for many volumes at once: each in its own file.
        let statements: Vec<_> = (0..40u8)
            .map(|n| {
                let journal = journals[usize::from(n % 2)];
                let volume = duet_core::VolumeId([n; 8]);
                let heads = [automerge::ChangeHash([n; 32])];
                (
                    journal,
                    volume,
                    vec![key.sign_heads(journal, volume, &heads)],
                )
            })
            .collect();
        home.save_signatures(statements.iter().map(|(j, v, s)| (*j, *v, s.as_slice())))
            .unwrap();
        for (journal, volume, signed) in &statements {
            assert_eq!(&home.signatures(*journal, *volume), signed);
        }
        let left = fs::read_dir(dir.path().join("home/signatures"))
            .unwrap()
            .flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
            .filter(|f| {
                f.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count();
        assert_eq!(left, 0, "no temporary file is left behind");
    }

    fn partner_with(journal: JournalId) -> Partner {
        Partner {
            name: "Eve".into(),
            endpoint_id: "ab".repeat(32),
            journal,
            addrs: vec![],
            relay_url: None,
            paired_at: 0,
            paired_epoch: None,
            last_sync: None,
            unpaired: false,
            person: None,
        }
    }

    #[test]
    fn a_partner_announcing_one_of_my_journals_is_refused_and_forget_spares_mine() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("home"));
        let config = home.init("Alex", "laptop", 0).unwrap();
        for mine in [config.journal, config.private_journal] {
            assert!(matches!(
                home.pin_partner(&partner_with(mine)),
                Err(StoreError::JournalClash(id)) if id == mine
            ));
        }
        assert_eq!(home.partner().unwrap(), None);

        // A journal folder already here (say, a damaged record) is refused too.
        let stray = JournalId([9; 16]);
        fs::create_dir_all(home.journal_dir(stray)).unwrap();
        assert!(home.pin_partner(&partner_with(stray)).is_err());

        // Even if a record somehow names my journal, forgetting deletes nothing of mine.
        fs::create_dir_all(home.journal_dir(config.journal)).unwrap();
        fs::write(home.journal_dir(config.journal).join("x.snap"), b"mine").unwrap();
        home.set_partner(&partner_with(config.journal)).unwrap();
        home.forget_partner().unwrap();
        assert!(home.journal_dir(config.journal).join("x.snap").is_file());
        assert_eq!(home.partner().unwrap(), None);

        // A genuine new partner is pinned, and the same partner may come back after unpair.
        let theirs = JournalId([7; 16]);
        home.pin_partner(&partner_with(theirs)).unwrap();
        fs::create_dir_all(home.journal_dir(theirs)).unwrap();
        home.pin_partner(&partner_with(theirs)).unwrap();
        home.forget_partner().unwrap();
        assert!(!home.journal_dir(theirs).exists());
    }
}
