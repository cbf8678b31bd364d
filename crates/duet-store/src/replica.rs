//! The store as a sync [`Backend`]: the driver loads volumes only when the session wants
//! them, and everything that changed is written back as new chunks when the session ends.

use std::collections::{BTreeMap, HashMap};

use automerge::{AutoCommit, ChangeHash};
use duet_core::sync::{Backend, Docs, PeerState, decode_peer_state, encode_peer_state};
use duet_core::{Item, ItemId, JournalId, Kind, Volume, VolumeId};

use crate::index::JournalIndex;
use crate::volumes::{COMPACT_AFTER, FileKind, Listing, LoadedVolume, VolumeFile};
use crate::{Store, StoreError, Warning};

/// A volume to store after a session: its document, or what was read of it when it arrived
/// whole and rested ([`Docs::resting`]).
enum Taken {
    Doc(Box<AutoCommit>),
    Read(duet_core::volume::Contents),
}

/// What the store knows of a volume it handed to a session.
struct Open {
    files: Vec<VolumeFile>,
    /// Heads when loaded: what is already on disk.
    saved: Vec<ChangeHash>,
    existed: bool,
    /// Heads of the snapshots loaded: chunks hold everything after them.
    base: Vec<ChangeHash>,
}

impl Open {
    /// A stored volume, as its `files` hold it: `doc`, and `base`, the heads of its snapshots.
    fn stored(
        files: Vec<VolumeFile>,
        base: Vec<ChangeHash>,
        mut doc: AutoCommit,
    ) -> (Open, AutoCommit) {
        let saved = doc.get_heads();
        let open = Open {
            files,
            saved,
            existed: true,
            base,
        };
        (open, doc)
    }

    /// A volume new here that arrived whole: its snapshot, to be written as it came, is all.
    fn received(heads: Vec<ChangeHash>) -> Open {
        Open {
            files: Vec::new(),
            base: heads.clone(),
            saved: heads,
            existed: true,
        }
    }
}

/// What a sync brought in, per journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Arrivals {
    pub new_items: BTreeMap<Kind, usize>,
    pub changed_items: usize,
}

pub struct StoreReplica<'a> {
    store: &'a Store,
    indexes: HashMap<JournalId, JournalIndex>,
    /// Each journal's files as listed when its index was first read: what the session holds
    /// as stored, and where a volume's snapshot is found without listing the directory again
    /// (once per volume, the listing of a first sync of 400 volumes was a tenth of a second).
    listings: HashMap<JournalId, Listing>,
    open: BTreeMap<(JournalId, VolumeId), Open>,
    warnings: Vec<Warning>,
}

impl<'a> StoreReplica<'a> {
    pub fn new(store: &'a Store) -> StoreReplica<'a> {
        StoreReplica {
            store,
            indexes: HashMap::new(),
            listings: HashMap::new(),
            open: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    fn index(&mut self, journal: JournalId) -> &JournalIndex {
        let store = self.store;
        let (warnings, listings) = (&mut self.warnings, &mut self.listings);
        self.indexes.entry(journal).or_insert_with(|| {
            let read = store.files(journal).list().and_then(|listing| {
                let index = store.fresh_index_of(journal, &listing)?;
                listings.insert(journal, listing);
                Ok(index)
            });
            read.unwrap_or_else(|e| {
                warnings.push(Warning(format!("cannot read journal {journal}: {e}")));
                JournalIndex::default()
            })
        })
    }

    /// The journal's files as listed when the session first read its index.
    fn listing(&mut self, journal: JournalId) -> Option<&Listing> {
        self.index(journal);
        self.listings.get(&journal)
    }

    /// End a sync session: remember what was agreed with `peer`, write back
    /// what changed in the `writable` journals, and report what arrived.
    pub fn settle(
        self,
        session: duet_core::sync::SyncSession,
        docs: &mut Docs,
        peer: &str,
        writable: &[JournalId],
    ) -> Result<BTreeMap<JournalId, Arrivals>, StoreError> {
        let state = session.finish(docs);
        let store = self.store;
        let arrivals = self.persist(docs, writable)?;
        store.save_peer_state(peer, &state)?;
        Ok(arrivals)
    }

    /// Write back every volume the session changed, in journals this peer
    /// may change, and report what arrived.
    pub fn persist(
        mut self,
        docs: &mut Docs,
        writable: &[JournalId],
    ) -> Result<BTreeMap<JournalId, Arrivals>, StoreError> {
        let mut report: BTreeMap<JournalId, Arrivals> = BTreeMap::new();
        // One session stores at a time in this home, across processes (a `serve` and a `sync`,
        // two sessions that crossed): the index is read, added to and written whole, and what
        // counts as new is judged against what the other stored first.
        let _stores_alone = self.store.home().writing_lock()?;
        // The owners' statements come first: a volume is never stored ahead of what covers it.
        self.store.home().save_signatures(
            docs.changed_signatures()
                .into_iter()
                .filter(|((journal, _), _)| writable.contains(journal))
                .map(|((journal, vol), statements)| (journal, vol, statements)),
        )?;
        let mut manifests: BTreeMap<JournalId, JournalIndex> = BTreeMap::new();
        // Volume files are synced one by one, their names once per journal at the end: a
        // first sync of 400 volumes paid a directory sync for each (about a third of it).
        let mut unsynced: std::collections::BTreeSet<JournalId> = Default::default();
        let (mut adopted, loaded) = std::mem::take(docs).into_parts();
        // What to store, decided up front (cheap): volumes that changed, or arrived whole.
        let mut work = Vec::new();
        for ((journal, vol), mut doc) in loaded {
            let received = adopted
                .remove(&(journal, vol))
                .filter(|_| writable.contains(&journal));
            // `whole`: new here and received whole, its bytes to keep as they came, compressed.
            let (o, whole) = match (self.open.remove(&(journal, vol)), received) {
                (Some(o), _) => (o, None),
                (None, Some(received)) => (Open::received(received.heads), Some(received.bytes)),
                (None, None) => (
                    Open {
                        files: Vec::new(),
                        saved: Vec::new(),
                        existed: false,
                        base: Vec::new(),
                    },
                    None,
                ),
            };
            let changed = doc.get_heads() != o.saved;
            if !changed && whole.is_none() {
                continue;
            }
            if !writable.contains(&journal) {
                self.warnings.push(Warning(format!(
                    "ignored changes to journal {journal} that this peer may not make"
                )));
                continue;
            }
            work.push(((journal, vol), Taken::Doc(Box::new(doc)), o, changed, whole));
        }
        // What remains of the volumes that arrived whole rested through the session: new here,
        // read when they came, stored from their bytes without loading them again.
        for ((journal, vol), received) in adopted {
            let Some(contents) = received.contents else {
                continue;
            };
            if !writable.contains(&journal) {
                continue;
            }
            let o = Open::received(received.heads);
            work.push((
                (journal, vol),
                Taken::Read(contents),
                o,
                false,
                Some(received.bytes),
            ));
        }
        // Writer threads ([`fsutil::in_parallel`]) read each volume's items from its document
        // (the costliest step of a volume that did not rest; a rested volume was read when it
        // arrived) and write the snapshot of a volume that arrived whole, while this one indexes
        // the volumes they hand over, in the order they finish; at most two wait between them.
        // A snapshot is synced before it is named, and most of a synced write is waiting for the
        // disk, which several threads overlap.
        let actor = self.store.actor();
        let store = self.store;
        std::thread::scope(|scope| -> Result<(), StoreError> {
            let (tx, rx) = std::sync::mpsc::sync_channel(2);
            scope.spawn(move || {
                // Stops early when the loop below returns on an error (the next send fails).
                let _ = crate::fsutil::in_parallel(
                    work,
                    |((journal, vol), taken, o, changed, whole)| {
                        let read = match taken {
                            Taken::Doc(doc) => Volume::from_doc(actor, *doc)
                                .ok()
                                .filter(|v| v.journal() == journal && v.id() == vol)
                                .map(|mut v| {
                                    let contents = v.contents();
                                    (Some(v), contents)
                                }),
                            Taken::Read(contents) => Some((None, contents)),
                        };
                        let written = match (&read, whole) {
                            (Some(_), Some(bytes)) => Some(store.files(journal).write_sync_later(
                                vol,
                                FileKind::Snapshot,
                                &bytes,
                            )),
                            _ => None,
                        };
                        tx.send(((journal, vol), read, o, changed, written))
                            .map_err(drop)
                    },
                );
            });
            for ((journal, vol), read, mut o, changed, written) in rx {
                let Some((volume, contents)) = read else {
                    self.warnings.push(Warning(format!(
                        "ignored volume {vol} of journal {journal}: not a valid duet volume"
                    )));
                    continue;
                };
                let files = self.store.files(journal);
                let arrived_whole = written.is_some();
                if let Some(file) = written {
                    unsynced.insert(journal);
                    o.files.push(file?);
                }
                let stored = match volume {
                    Some(volume) => {
                        let mut loaded = LoadedVolume {
                            volume,
                            files: o.files,
                            base: o.base,
                        };
                        if changed {
                            unsynced.insert(journal);
                            let (kind, bytes) = if o.existed {
                                // Like every chunk: everything since the snapshot.
                                (FileKind::Chunk, loaded.volume.save_after(&loaded.base))
                            } else {
                                (FileKind::Snapshot, loaded.volume.save())
                            };
                            loaded
                                .files
                                .push(files.write_sync_later(vol, kind, &bytes)?);
                            loaded.files.sort();
                        }
                        if loaded.files.len() >= COMPACT_AFTER {
                            files.compact(&mut loaded)?;
                        }
                        // As stored, for the next session (one that arrived whole is left to
                        // load: its files were not written from this document).
                        let mut warm = self.store.warm();
                        if arrived_whole {
                            warm.forget(journal, vol);
                        } else {
                            warm.keep(&loaded.volume, &loaded.files, &loaded.base);
                        }
                        drop(warm);
                        loaded.files
                    }
                    // Rested: its one snapshot, written on the other thread.
                    None => o.files,
                };
                // As the index is now (read once per journal under the lock), not as it was
                // when the session began.
                let manifest = manifests
                    .entry(journal)
                    .or_insert_with(|| self.store.index_files().read_manifest(journal));
                let old = manifest
                    .volumes
                    .get(&vol)
                    .cloned()
                    .or_else(|| self.index(journal).volumes.get(&vol).cloned());
                let before: BTreeMap<ItemId, Item> = old
                    .as_ref()
                    .and_then(|vi| self.store.index_files().read_items(journal, vi.id, &vi.key))
                    .map(|items| items.into_iter().map(|i| (i.id, i)).collect())
                    .unwrap_or_default();
                let (vi, items) =
                    self.store
                        .index_contents(journal, &stored, contents, old.map(|v| v.key));
                let arrivals = report.entry(journal).or_default();
                for item in &items {
                    match before.get(&item.id) {
                        None => *arrivals.new_items.entry(item.kind.clone()).or_default() += 1,
                        Some(prev) if prev != item => arrivals.changed_items += 1,
                        Some(_) => {}
                    }
                }
                manifests
                    .get_mut(&journal)
                    .expect("read above")
                    .volumes
                    .insert(vol, vi);
            }
            Ok(())
        })?;
        for journal in unsynced {
            self.store.files(journal).sync()?;
        }
        for (journal, index) in manifests {
            self.store.index_files().write_manifest(journal, &index);
        }
        self.store.warn_all(std::mem::take(&mut self.warnings));
        Ok(report)
    }
}

impl StoreReplica<'_> {
    fn open_existing(
        &mut self,
        journal: JournalId,
        volume: VolumeId,
    ) -> Option<(Open, AutoCommit)> {
        if !self.index(journal).volumes.contains_key(&volume) {
            return None;
        }
        let files = self.store.files(journal);
        let listed = files.list_volume(volume).ok()?;
        // Kept loaded from an earlier session, files unchanged since: a clone, not a load.
        if let Some(warm) = self.store.warm().get(journal, volume, &listed) {
            return Some(Open::stored(warm.files, warm.base, warm.doc));
        }
        match files.load(volume, &listed, self.store.actor(), &mut self.warnings) {
            Ok(Some(loaded)) => {
                self.store
                    .warm()
                    .keep(&loaded.volume, &loaded.files, &loaded.base);
                let doc = loaded.volume.into_doc();
                Some(Open::stored(loaded.files, loaded.base, doc))
            }
            Ok(None) => None,
            Err(e) => {
                self.warnings.push(Warning(e.to_string()));
                None
            }
        }
    }
}

impl Backend for StoreReplica<'_> {
    fn stored_heads(&mut self, journal: JournalId) -> BTreeMap<VolumeId, Vec<ChangeHash>> {
        self.index(journal)
            .volumes
            .iter()
            .map(|(v, vi)| (*v, vi.heads.iter().map(|h| ChangeHash(*h)).collect()))
            .collect()
    }

    fn load_doc(&mut self, journal: JournalId, volume: VolumeId) -> Option<AutoCommit> {
        let (open, doc) = self.open_existing(journal, volume)?;
        self.open.insert((journal, volume), open);
        Some(doc)
    }

    fn signatures(
        &mut self,
        journal: JournalId,
        volume: VolumeId,
    ) -> Vec<duet_core::authority::SignedHeads> {
        self.store.home().signatures(journal, volume)
    }

    fn saved_bytes(&mut self, journal: JournalId, volume: VolumeId) -> Option<Vec<u8>> {
        // A volume held in snapshot files alone is sent as its newest (largest) snapshot, which
        // holds the others (the one compaction keeps in reserve for a generation, and the one
        // an older duet kept as a snapshot): no need to load it and compress it again.
        let files = self.store.files(journal);
        let listed = self.listing(journal)?.volumes.get(&volume)?;
        let newest = listed
            .iter()
            .filter(|f| f.kind == FileKind::Snapshot)
            .filter_map(|f| Some((f, std::fs::read(files.dir.join(&f.name)).ok()?)))
            .max_by_key(|(_, bytes)| bytes.len());
        if listed.iter().all(|f| f.kind != FileKind::Chunk)
            && let Some((only, bytes)) = newest
            && crate::volumes::content_hash(&bytes) == only.hash
        {
            return Some(bytes);
        }
        None
    }
}

impl Store {
    /// Load ahead the open volumes a sync with these peers is about to need, and keep them
    /// loaded ([`crate::warm`]): those whose heads changed since the peer last agreed on them
    /// (`peers`: what this home remembers of each, [`Store::peer_state`]). `duet sync` runs it
    /// on a thread of its own while its endpoint binds and dials, which takes longer than
    /// loading a volume of 250 items (about 2.5 ms): its session then finds the volume loaded.
    /// Reads only; a journal whose index is not current, or a peer never synced with, is left
    /// to the session.
    pub fn warm_up(&self, peers: &[PeerState]) {
        // Each journal a peer has agreed on is read once, for all the peers that have.
        let journals: std::collections::BTreeSet<JournalId> = peers
            .iter()
            .flat_map(|p| p.journals.keys().copied())
            .collect();
        let mut wanted: Vec<(JournalId, VolumeId, Vec<VolumeFile>)> = Vec::new();
        for journal in journals {
            let Ok(mut listing) = self.files(journal).list() else {
                continue;
            };
            let index = self.index_files().read_manifest(journal);
            for (vol, vi) in &index.volumes {
                // Full volumes keep no append point: they take no new item.
                let open = vi.append.is_some();
                let Some(listed) = listing.volumes.remove(vol).filter(|_| open) else {
                    continue;
                };
                let heads: Vec<ChangeHash> = vi.heads.iter().map(|h| ChangeHash(*h)).collect();
                let digest = duet_core::sync::heads_digest(&heads);
                let changed = peers
                    .iter()
                    .filter_map(|p| p.journals.get(&journal))
                    .any(|agreed| agreed.agreed.get(vol) != Some(&digest));
                if changed && vi.key == Listing::volume_key(&listed) {
                    wanted.push((journal, *vol, listed));
                }
            }
        }
        for (journal, vol, listed) in wanted.into_iter().take(crate::warm::WARM_VOLUMES) {
            if self.warm().holds(journal, vol, &listed) {
                continue;
            }
            let files = self.files(journal);
            if let Ok(Some(loaded)) = files.load(vol, &listed, self.actor(), &mut Vec::new()) {
                self.warm()
                    .keep(&loaded.volume, &loaded.files, &loaded.base);
            }
        }
    }

    fn peer_state_path(&self, peer: &str) -> std::path::PathBuf {
        self.home().sync_dir(peer)
    }

    /// What this home remembers about syncing with `peer` (empty if nothing or damaged).
    pub fn peer_state(&self, peer: &str) -> PeerState {
        std::fs::read(self.peer_state_path(peer).join("state"))
            .ok()
            .and_then(|b| decode_peer_state(&b).ok())
            .unwrap_or_default()
    }

    pub fn save_peer_state(&self, peer: &str, state: &PeerState) -> Result<(), StoreError> {
        let dir = self.peer_state_path(peer);
        crate::fsutil::create_private_dir(&dir).map_err(|e| StoreError::Io {
            path: dir.clone(),
            source: e,
        })?;
        // Not synced: a power cut that takes back the newest state leaves an older one (or
        // none), and the next session only exchanges more to agree again. Journal data, stored
        // before this, is always synced. A session that changed nothing leaves the file alone.
        let bytes = encode_peer_state(state);
        if std::fs::read(dir.join("state")).is_ok_and(|stored| stored == bytes) {
            return Ok(());
        }
        crate::fsutil::write_cache(&dir, "state", &bytes).map_err(|e| StoreError::Io {
            path: dir.join("state"),
            source: e,
        })
    }
}
