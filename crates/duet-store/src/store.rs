//! The operations commands perform on a home: add, change, find and list items.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use duet_core::bloom::needle_bits;
use duet_core::item::{Asked, Ritual, utc_day};
use duet_core::journal::open_volume;
use duet_core::reveal::{Reveal, earliest_answer_ms};
use duet_core::volume::{Contents, ItemUpdate, resolve_marks};
use duet_core::{Author, Filter, Item, ItemId, JournalId, Kind, Volume, VolumeId};

use crate::fsutil::{random_bytes, sweep_temp_files};
use crate::index::{IndexFiles, JournalIndex, SearchIndex, VolumeIndex, VolumeSearch};
use crate::volumes::{COMPACT_AFTER, FileKind, JournalFiles, Listing, LoadedVolume, VolumeFile};
use crate::{Config, Home, Partner, StoreError, Warning};

/// One journal this home can read, and whose it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalRef {
    pub id: JournalId,
    pub author: Author,
    pub private: bool,
}

/// Where an item lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    pub id: ItemId,
    pub journal: JournalRef,
    pub volume: VolumeId,
}

/// An item as a reader sees it: with its author and the reader's star.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedItem {
    pub item: Item,
    pub author: Author,
    pub private: bool,
    /// For my items, the item's own star; for the partner's, my mark.
    pub starred: bool,
}

/// A new item, as a command asks for it.
#[derive(Clone, Debug)]
pub struct WriteRequest {
    pub kind: Kind,
    pub body: String,
    pub tags: Vec<String>,
    pub starred: bool,
    pub created_at: i64,
    pub private: bool,
    pub ritual: Ritual,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Status {
    pub mine: BTreeMap<String, usize>,
    pub partner: BTreeMap<String, usize>,
    pub private: usize,
    pub starred: usize,
    pub volumes: usize,
    pub store_bytes: u64,
}

/// Stale search entries tolerated before the search file is rewritten.
const SEARCH_SAVE_AFTER: usize = 4;

pub struct Store {
    home: Home,
    config: Config,
    partner: Option<Partner>,
    /// A fresh Automerge actor per process: two processes never share one.
    actor: [u8; 16],
    index: IndexFiles,
    warnings: Mutex<Vec<Warning>>,
    /// Open volumes kept loaded between sync sessions ([`crate::warm`]).
    pub(crate) warm: Mutex<crate::warm::WarmVolumes>,
}

impl Store {
    pub fn open(home: Home) -> Result<Store, StoreError> {
        let config = home.config()?;
        let partner = home.partner()?;
        let index = IndexFiles::new(home.cache_dir());
        Ok(Store {
            home,
            config,
            partner,
            actor: random_bytes(),
            index,
            warnings: Mutex::default(),
            warm: Mutex::default(),
        })
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn partner(&self) -> Option<&Partner> {
        self.partner.as_ref()
    }

    /// Reload the partner record (after pairing or unpairing).
    pub fn reload_partner(&mut self) -> Result<(), StoreError> {
        self.partner = self.home.partner()?;
        Ok(())
    }

    pub fn actor(&self) -> [u8; 16] {
        self.actor
    }

    /// The volumes kept loaded between sync sessions.
    pub(crate) fn warm(&self) -> std::sync::MutexGuard<'_, crate::warm::WarmVolumes> {
        // Nothing kept is half-changed by a panic elsewhere: every change is one push or pop.
        self.warm.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Problems met so far that did not stop the command.
    pub fn take_warnings(&self) -> Vec<Warning> {
        let mut all = std::mem::take(&mut *self.warnings.lock().expect("warnings lock"));
        let mut seen = std::collections::HashSet::new();
        all.retain(|w| seen.insert(w.0.clone()));
        all
    }

    fn warn(&self, more: Vec<Warning>) {
        if !more.is_empty() {
            self.warnings.lock().expect("warnings lock").extend(more);
        }
    }

    /// The journals this home reads: mine, my private one, the partner's.
    pub fn journals(&self) -> Vec<JournalRef> {
        let mut out = vec![
            JournalRef {
                id: self.config.journal,
                author: Author::Me,
                private: false,
            },
            JournalRef {
                id: self.config.private_journal,
                author: Author::Me,
                private: true,
            },
        ];
        if let Some(p) = &self.partner {
            out.push(JournalRef {
                id: p.journal,
                author: Author::Partner,
                private: false,
            });
        }
        out
    }

    pub fn files(&self, journal: JournalId) -> JournalFiles {
        JournalFiles::new(self.home.journal_dir(journal), journal)
    }

    /// The index of a journal, brought up to date with the files on disk.
    pub fn fresh_index(&self, journal: JournalId) -> Result<JournalIndex, StoreError> {
        let listing = self.files(journal).list()?;
        self.fresh_index_of(journal, &listing)
    }

    /// [`Store::fresh_index`] for a listing the caller just made.
    pub(crate) fn fresh_index_of(
        &self,
        journal: JournalId,
        listing: &Listing,
    ) -> Result<JournalIndex, StoreError> {
        let files = self.files(journal);
        let mut index = self.index.read_manifest(journal);
        let before = index.volumes.len();
        index
            .volumes
            .retain(|vol, _| listing.volumes.contains_key(vol));
        let mut changed = index.volumes.len() != before;
        for (vol, listed) in &listing.volumes {
            let key = Listing::volume_key(listed);
            if index.volumes.get(vol).is_some_and(|vi| vi.key == key) {
                continue;
            }
            changed = true;
            let mut warnings = Vec::new();
            let loaded = files.load(*vol, listed, self.actor, &mut warnings)?;
            self.warn(warnings);
            match loaded {
                Some(mut loaded) => {
                    let old = index.volumes.get(vol).map(|v| v.key);
                    let (vi, _) = self.reindex(journal, &mut loaded, old, None);
                    index.volumes.insert(*vol, vi);
                }
                None => {
                    index.volumes.remove(vol);
                }
            }
        }
        if changed {
            self.index.write_manifest(journal, &index);
        }
        Ok(index)
    }

    /// The volumes of `index` whose Bloom filter may hold `needle`. Reads
    /// only the filter rows the needle needs; volumes changed since the
    /// search file was written are all taken (the walk reads them).
    fn may_hold(
        &self,
        journal: JournalId,
        index: &JournalIndex,
        needle: &str,
    ) -> Result<HashSet<VolumeId>, StoreError> {
        let mut out = HashSet::new();
        let mut fresh = HashSet::new();
        if let Some((header, hits)) = self.index.search_rows(journal, &needle_bits(needle)) {
            for ((vol, key, _), hit) in header.columns.iter().zip(hits) {
                if index.volumes.get(vol).is_some_and(|vi| vi.key == *key) {
                    fresh.insert(*vol);
                    if hit {
                        out.insert(*vol);
                    }
                }
            }
        }
        let stale: Vec<&VolumeIndex> = index
            .volumes
            .values()
            .filter(|vi| !fresh.contains(&vi.id))
            .collect();
        if stale.len() > SEARCH_SAVE_AFTER {
            let search = self.fresh_search(journal, index)?;
            return Ok(search
                .volumes
                .iter()
                .filter(|(_, s)| s.bloom.may_contain(needle))
                .map(|(v, _)| *v)
                .collect());
        }
        // A volume changed since (a write or two) is simply read: building its filter would
        // read every item of it anyway, and then the walk would read them again.
        out.extend(stale.iter().map(|vi| vi.id));
        Ok(out)
    }

    /// The search index of a journal (ids and Bloom filters), brought up to
    /// date with `index`. Kept apart from the manifest so writes never pay for it.
    pub fn fresh_search(
        &self,
        journal: JournalId,
        index: &JournalIndex,
    ) -> Result<SearchIndex, StoreError> {
        let mut search = self.index.read_search(journal);
        let before = search.volumes.len();
        search
            .volumes
            .retain(|vol, _| index.volumes.contains_key(vol));
        let dropped = search.volumes.len() != before;
        let mut rebuilt = 0;
        for (vol, vi) in &index.volumes {
            if search.volumes.get(vol).is_some_and(|s| s.key == vi.key) {
                continue;
            }
            let items = self.volume_items(journal, vi)?;
            search
                .volumes
                .insert(*vol, VolumeSearch::build(vi.key, &items));
            rebuilt += 1;
        }
        // Rebuilding the open volume's entry after a write costs about a
        // millisecond; rewriting the whole file costs more on a large
        // journal. Save only once enough has gone stale.
        if rebuilt > SEARCH_SAVE_AFTER || dropped {
            self.index.write_search(journal, &search);
        }
        Ok(search)
    }

    /// Index a loaded volume and cache its items. With `known`, the cached
    /// items of the files before the change, only the `touched` items are
    /// read back from the document.
    pub(crate) fn reindex(
        &self,
        journal: JournalId,
        loaded: &mut LoadedVolume,
        old_key: Option<[u8; 16]>,
        known: Option<(Vec<Item>, &[ItemId])>,
    ) -> (VolumeIndex, Vec<Item>) {
        let items = match known {
            Some((mut items, touched)) => {
                items.retain(|i| !touched.contains(&i.id));
                items.extend(touched.iter().filter_map(|id| loaded.volume.item(*id)));
                items
            }
            None => loaded.volume.items(),
        };
        let contents = loaded.volume.contents_with(items);
        self.index_contents(journal, &loaded.files, contents, old_key)
    }

    /// Indexes a volume stored in `files` from what was read of it: what [`Store::reindex`]
    /// does after reading, and what a sync does with a volume it took in whole.
    pub(crate) fn index_contents(
        &self,
        journal: JournalId,
        files: &[VolumeFile],
        mut contents: Contents,
        old_key: Option<[u8; 16]>,
    ) -> (VolumeIndex, Vec<Item>) {
        let key = Listing::volume_key(files);
        let (id, items) = (contents.id, &mut contents.items);
        // What a modified client may have put in a document is checked like a write of mine
        // would be; what fails is left out, with one warning naming the volume.
        if items.len() > duet_core::MAX_ITEMS_PER_VOLUME {
            items.truncate(duet_core::MAX_ITEMS_PER_VOLUME);
            self.warn(vec![Warning(format!(
                "volume {} in journal {journal} holds more than {} items, more than duet reads \
                 from one volume; only the first {} are read",
                id,
                duet_core::MAX_ITEMS_PER_VOLUME,
                duet_core::MAX_ITEMS_PER_VOLUME,
            ))]);
        }
        let before = items.len();
        let mut why = None;
        items.retain(|i| match duet_core::item::check_stored(i) {
            Ok(()) => true,
            Err(reason) => {
                why.get_or_insert(reason);
                false
            }
        });
        if let Some(reason) = why {
            self.warn(vec![Warning(format!(
                "skipped {} item(s) of volume {} in journal {journal} that duet cannot trust ({reason})",
                before - items.len(),
                id,
            ))]);
        }
        let mut vi = VolumeIndex::build(&contents, key);
        vi.bytes = Some(self.files(journal).size_of(files));
        self.index
            .write_items(journal, &vi, &contents.items, old_key);
        (vi, contents.items)
    }

    pub(crate) fn index_files(&self) -> &IndexFiles {
        &self.index
    }

    pub(crate) fn warn_all(&self, more: Vec<Warning>) {
        self.warn(more);
    }

    /// Load a volume (or start a new one), apply `change`, store the result
    /// durably and update the index. The single path by which items change;
    /// `touched` names the items `change` adds or alters. `seen` is the journal's listing
    /// and fresh index when the caller just made them (else they are read here).
    fn modify<T>(
        &self,
        journal: JournalId,
        vol: Option<VolumeId>,
        now: i64,
        touched: &[ItemId],
        seen: Option<(&Listing, JournalIndex)>,
        change: impl FnOnce(&mut Volume) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let files = self.files(journal);
        let mut warnings = Vec::new();
        let (listing, index) = seen.unzip();
        let existing = match vol {
            Some(vol) => {
                let listed = match listing {
                    Some(listing) => listing.volumes.get(&vol).cloned().unwrap_or_default(),
                    None => files.list_volume(vol)?,
                };
                files.load(vol, &listed, self.actor, &mut warnings)?
            }
            None => None,
        };
        self.warn(warnings);
        let mut loaded = match (existing, vol) {
            (Some(loaded), _) => loaded,
            // Only a brand-new id may be created: starting an existing volume
            // afresh would fork its root objects.
            (None, None) => LoadedVolume {
                volume: Volume::create(self.actor, journal, VolumeId(random_bytes()), now),
                files: Vec::new(),
                base: Vec::new(),
            },
            (None, Some(vol)) => return Err(StoreError::Unreadable(vol.to_string())),
        };
        let is_new = loaded.files.is_empty();
        let key_before = Listing::volume_key(&loaded.files);
        let result = change(&mut loaded.volume)?;
        let vol = loaded.volume.id();
        // A chunk holds every change since the snapshot, not just this one:
        // if one chunk is ever damaged, the chunks written after it still
        // carry what it held.
        let file = if is_new {
            files.write(vol, FileKind::Snapshot, &loaded.volume.save())?
        } else {
            let base = loaded.base.clone();
            files.write(vol, FileKind::Chunk, &loaded.volume.save_after(&base))?
        };
        loaded.files.push(file);
        loaded.files.sort();
        if loaded.files.len() >= COMPACT_AFTER {
            files.compact(&mut loaded)?;
            sweep_temp_files(&files.dir);
        }
        let mut index = index.unwrap_or_else(|| self.index.read_manifest(journal));
        let old = index.volumes.get(&vol).map(|v| v.key);
        let known = old
            .filter(|k| *k == key_before && !is_new)
            .and_then(|k| self.index.read_items(journal, vol, &k))
            .map(|items| (items, touched));
        let (vi, _) = self.reindex(journal, &mut loaded, old, known);
        index.volumes.insert(vol, vi);
        self.index.write_manifest(journal, &index);
        Ok(result)
    }

    /// Write a new item and return it.
    pub fn add(&self, req: WriteRequest, now: i64) -> Result<Item, StoreError> {
        let body = duet_core::item::validate_new(&req.kind, &req.body, &req.ritual)?;
        let journal = if req.private {
            self.config.private_journal
        } else {
            self.config.journal
        };
        let item = Item {
            id: ItemId(random_bytes()),
            kind: req.kind,
            created_at: req.created_at,
            edited_at: None,
            body,
            tags: req.tags,
            starred: req.starred,
            deleted: false,
            ritual: req.ritual,
        };
        self.add_to_open_volume(journal, now, &[item.id], Some(&item), |vol| {
            Ok(vol.add(&item)?)
        })?;
        Ok(item)
    }

    /// Apply a change to the volume new items go into. If that volume cannot
    /// be read (a damaged file), the change starts a new volume instead. A change that only
    /// adds `new` is appended without loading the volume when the index allows
    /// ([`Store::append_item`]).
    fn add_to_open_volume(
        &self,
        journal: JournalId,
        now: i64,
        touched: &[ItemId],
        new: Option<&Item>,
        change: impl Fn(&mut Volume) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // One listing and one read of the index serve the whole write.
        let listing = self.files(journal).list()?;
        if let Some(item) = new
            && self.append_in_place(journal, &listing, item)?
        {
            return Ok(());
        }
        let mut index = self.fresh_index_of(journal, &listing)?;
        let open = open_volume(index.volumes.values().map(VolumeIndex::summary));
        if let (Some(item), Some(vol)) = (new, open)
            && let Some(record) = index.volumes.get(&vol)
            && let Some(vi) = self.append_item(journal, vol, &listing, record, item)?
        {
            index.volumes.insert(vol, vi);
            self.index.write_manifest(journal, &index);
            return Ok(());
        }
        let seen = Some((&listing, index));
        match (
            self.modify(journal, open, now, touched, seen, &change),
            open,
        ) {
            (Err(StoreError::Unreadable(_)), Some(vol)) => {
                // Stop listing the damaged volume from the cache: from now on
                // every command tries it afresh and names the damaged file.
                let mut index = self.index.read_manifest(journal);
                index.volumes.remove(&vol);
                self.index.write_manifest(journal, &index);
                self.modify(journal, None, now, touched, None, &change)
            }
            (other, _) => other,
        }
    }

    /// The common write, when the manifest holds exactly the volumes listed, each with its
    /// files' key: [`Store::append_item`] with only the open volume's record decoded, and the
    /// new record written in the place of the old one ([`crate::index::ManifestView`]).
    /// `Ok(false)`, nothing written, otherwise: the caller reads the manifest whole.
    fn append_in_place(
        &self,
        journal: JournalId,
        listing: &Listing,
        item: &Item,
    ) -> Result<bool, StoreError> {
        let Some(view) = self.index.read_manifest_view(journal) else {
            return Ok(false);
        };
        if !view.matches(listing) {
            return Ok(false);
        }
        let Some(vol) = open_volume(view.summaries()) else {
            return Ok(false);
        };
        let Some(vi) = view.record(vol) else {
            return Ok(false);
        };
        let Some(vi) = self.append_item(journal, vol, listing, &vi, item)? else {
            return Ok(false);
        };
        if let Some(bytes) = view.replaced(&vi) {
            self.index.write_manifest_bytes(journal, &bytes);
        }
        Ok(true)
    }

    /// Adds `item` to the open volume `vol` without loading it into Automerge: its new chunk
    /// is the distinct changes of the volume's chunks (each chunk holds every change since the
    /// snapshot, as [`Store::modify`] writes them) and the change [`duet_core::change_adding`]
    /// makes from the heads and append point the index keeps, which is byte for byte the change
    /// `Volume::add` makes on the loaded document. Returns the volume's new record, counted on
    /// from `vi` (its record in the index) with the items file beside it written; the caller
    /// writes the manifest. `Ok(None)`, nothing written, when the index cannot vouch for the
    /// volume's files as they are (a stale or older record, no cached items, not exactly one
    /// snapshot, a file missing or not matching its name) or the write would compact it: the
    /// caller then loads the volume.
    fn append_item(
        &self,
        journal: JournalId,
        vol: VolumeId,
        listing: &Listing,
        vi: &VolumeIndex,
        item: &Item,
    ) -> Result<Option<VolumeIndex>, StoreError> {
        let Some(listed) = listing.volumes.get(&vol) else {
            return Ok(None);
        };
        let Some(at) = vi.append.clone() else {
            return Ok(None);
        };
        let snapshots = listed
            .iter()
            .filter(|f| f.kind == FileKind::Snapshot)
            .count();
        // (`vol` has room: `open_volume` picked it from these records.)
        if vi.key != Listing::volume_key(listed)
            || snapshots != 1
            || listed.len() + 1 >= COMPACT_AFTER
            || duet_core::item::check_stored(item).is_err()
        {
            return Ok(None);
        }
        // The cached items, with the new one at their end; the other items are not built.
        let Some(items_file) = self
            .index
            .read_items_file(journal, vol, &vi.key)
            .and_then(|bytes| crate::items_file::appended(&bytes, item))
        else {
            return Ok(None);
        };
        // The snapshot is read too, though only checked: a new change on top of a damaged one
        // could never load (its dependencies gone), where a load starts a new volume instead.
        // Of the chunks, the one the record names as holding every change since the snapshot
        // (the last append's) is enough; without one, all are read.
        let files = self.files(journal);
        let tip = vi.tip.as_deref().filter(|name| {
            listed
                .iter()
                .any(|f| f.kind == FileKind::Chunk && f.name == *name)
        });
        let current: Vec<&VolumeFile> = listed
            .iter()
            .filter(|f| match (f.kind, tip) {
                (FileKind::Previous, _) => false,
                (FileKind::Chunk, Some(tip)) => f.name == tip,
                _ => true,
            })
            .collect();
        let Some(read) = files.read_all_checked(&current) else {
            return Ok(None);
        };
        let chunks = current
            .iter()
            .zip(&read)
            .filter(|(f, _)| f.kind == FileKind::Chunk)
            .map(|(_, bytes)| bytes.as_slice());
        let Some(mut bytes) = duet_core::volume::distinct_chunks(chunks) else {
            return Ok(None);
        };
        let heads: Vec<automerge::ChangeHash> =
            vi.heads.iter().map(|h| automerge::ChangeHash(*h)).collect();
        // A fresh actor for each appended change: its first, as `change_adding` makes it.
        let change = duet_core::change_adding(item, &at, &heads, random_bytes());
        bytes.extend_from_slice(change.raw_bytes());
        let file = files.write(vol, FileKind::Chunk, &bytes)?;
        // The new chunk holds every change since the snapshot: the next append reads only it.
        let tip = file.name.clone();
        let mut stored = listed.clone();
        stored.push(file);
        stored.sort();
        // The record, counted on from the one before (as `VolumeIndex::build` counts).
        let old_key = vi.key;
        let mut vi = vi.clone();
        vi.key = Listing::volume_key(&stored);
        vi.heads = vec![change.hash().0];
        vi.append = Some(duet_core::AppendPoint {
            max_op: change.max_op(),
            ..at
        });
        vi.bytes = vi.bytes.map(|b| b + bytes.len() as u64);
        vi.tip = Some(tip);
        vi.count(item);
        self.index
            .write_items_file(journal, &vi, &items_file, Some(old_key));
        Ok(Some(vi))
    }

    /// Find the one item whose id starts with `prefix`.
    pub fn locate(&self, prefix: &str) -> Result<Located, StoreError> {
        self.find(prefix).map(|(at, _)| at)
    }

    /// Find the one item whose id starts with `prefix`, and read it. Each journal's index is
    /// read once, and the item ids come from the search file without its filter rows.
    pub fn find(&self, prefix: &str) -> Result<(Located, ListedItem), StoreError> {
        self.find_in(prefix, &self.fresh_indexes()?)
    }

    /// [`Store::find`], and the items that answer it (oldest first): only volumes whose
    /// index says they hold a reply to it are read, and each journal's index is read once.
    pub fn find_with_replies(
        &self,
        prefix: &str,
    ) -> Result<(Located, ListedItem, Vec<ListedItem>), StoreError> {
        let indexes = self.fresh_indexes()?;
        let (at, listed) = self.find_in(prefix, &indexes)?;
        let replies_to = Filter {
            re: Some(at.id),
            ..Filter::default()
        };
        let mut replies = self.list_in(indexes, &replies_to, None)?;
        replies.reverse();
        Ok((at, listed, replies))
    }

    /// Every journal's index, brought up to date with its files, in [`Store::journals`] order.
    fn fresh_indexes(&self) -> Result<Vec<(JournalRef, JournalIndex)>, StoreError> {
        self.fresh_indexes_where(|_| true)
    }

    /// [`Store::fresh_indexes`] of the journals `author` writes.
    fn fresh_indexes_of(
        &self,
        author: Author,
    ) -> Result<Vec<(JournalRef, JournalIndex)>, StoreError> {
        self.fresh_indexes_where(|j| j.author == author)
    }

    fn fresh_indexes_where(
        &self,
        take: impl Fn(&JournalRef) -> bool,
    ) -> Result<Vec<(JournalRef, JournalIndex)>, StoreError> {
        self.journals()
            .into_iter()
            .filter(take)
            .map(|journal| Ok((journal, self.fresh_index(journal.id)?)))
            .collect()
    }

    fn find_in(
        &self,
        prefix: &str,
        indexes: &[(JournalRef, JournalIndex)],
    ) -> Result<(Located, ListedItem), StoreError> {
        let prefix = prefix.trim().to_lowercase();
        if prefix.is_empty() {
            return Err(StoreError::NoSuchItem(prefix));
        }
        let wanted = duet_core::id::IdPrefix::parse(&prefix);
        let mut found: Vec<Located> = Vec::new();
        for (journal, index) in indexes {
            let journal = *journal;
            // The ids the search file holds for volumes it is fresh for (its filter rows are
            // not read); the items of any other volume.
            let mut known: HashMap<VolumeId, ([u8; 16], Vec<ItemId>)> = self
                .index
                .search_ids(journal.id, |id| wanted.is_some_and(|w| w.matches(id)))
                .unwrap_or_default()
                .into_iter()
                .map(|(vol, key, ids)| (vol, (key, ids)))
                .collect();
            for (vol, vi) in &index.volumes {
                let ids = match known.remove(vol) {
                    Some((key, ids)) if key == vi.key => ids,
                    _ => self
                        .volume_items(journal.id, vi)?
                        .iter()
                        .map(|i| i.id)
                        .collect(),
                };
                for id in ids {
                    if wanted.is_some_and(|w| w.matches(&id)) {
                        let at = Located {
                            id,
                            journal,
                            volume: *vol,
                        };
                        found.push(at);
                    }
                }
            }
        }
        found.sort_by_key(|l| l.id);
        found.dedup_by_key(|l| l.id);
        let marks = self.marks_in(indexes);
        // Deleted items and the partner's hidden answers are not there to be found, not even
        // by id. (Past a handful of candidates the prefix is ambiguous anyway.)
        if found.len() <= 8 {
            let mut readable = Vec::new();
            for at in found {
                if let Ok(l) = self.get_in(&at, indexes, &marks) {
                    readable.push((at, l));
                }
            }
            return match readable.len() {
                0 => Err(StoreError::NoSuchItem(prefix)),
                1 => Ok(readable.pop().expect("one")),
                _ => Err(StoreError::Ambiguous {
                    prefix,
                    candidates: readable.iter().map(|(l, _)| l.id.to_string()).collect(),
                }),
            };
        }
        Err(StoreError::Ambiguous {
            prefix,
            candidates: found.iter().map(|l| l.id.to_string()).collect(),
        })
    }

    /// Read a located item with its author and the reader's star.
    pub fn get(&self, at: &Located) -> Result<ListedItem, StoreError> {
        let indexes = self.fresh_indexes()?;
        let marks = self.marks_in(&indexes);
        self.get_in(at, &indexes, &marks)
    }

    fn get_in(
        &self,
        at: &Located,
        indexes: &[(JournalRef, JournalIndex)],
        marks: &HashMap<ItemId, bool>,
    ) -> Result<ListedItem, StoreError> {
        let vi = indexes
            .iter()
            .find(|(journal, _)| journal.id == at.journal.id)
            .and_then(|(_, index)| index.volumes.get(&at.volume))
            .ok_or_else(|| StoreError::NoSuchItem(at.id.to_string()))?;
        let items = self.volume_items(at.journal.id, vi)?;
        let item = items
            .into_iter()
            .find(|i| i.id == at.id)
            .ok_or_else(|| StoreError::NoSuchItem(at.id.to_string()))?;
        let reveal = self.reveal_for(&item, indexes)?;
        if item.deleted || !reveal.visible(&item, at.journal.author) {
            return Err(StoreError::NoSuchItem(at.id.to_string()));
        }
        Ok(self.listed(item, at.journal, marks))
    }

    /// The reveal rule for a read that may show `item`: the partner's answer needs my
    /// answers around its day; nothing else needs any.
    fn reveal_for(
        &self,
        item: &Item,
        indexes: &[(JournalRef, JournalIndex)],
    ) -> Result<Reveal, StoreError> {
        match item.ritual.question.as_ref().and_then(Asked::day_number) {
            Some(day) if item.kind == Kind::Answer => self.my_answers(day, indexes),
            _ => Ok(Reveal::default()),
        }
    }

    /// Which questions the partner has answered (on or after `since_day`): dates and ids
    /// only, never their text. That they answered is not hidden; what they said is.
    pub fn partner_questions_since(&self, since_day: i32) -> Result<Vec<Asked>, StoreError> {
        let indexes = self.fresh_indexes_of(Author::Partner)?;
        let mut out: Vec<Asked> = self
            .answers_in(&indexes, Author::Partner, since_day, None)?
            .into_iter()
            .filter_map(|i| i.ritual.question)
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The (not deleted) answers `author` wrote to questions of `since_day` or later (and, with
    /// `before_day`, before those of that day), by the journals of `indexes`: only volumes that
    /// hold an answer and items from [`earliest_answer_ms`] on are read.
    fn answers_in(
        &self,
        indexes: &[(JournalRef, JournalIndex)],
        author: Author,
        since_day: i32,
        before_day: Option<i32>,
    ) -> Result<Vec<Item>, StoreError> {
        let since = earliest_answer_ms(since_day);
        let before = before_day.map_or(i64::MAX, earliest_answer_ms);
        let mut out = Vec::new();
        for (journal, index) in indexes.iter().filter(|(j, _)| j.author == author) {
            for vi in index.volumes.values() {
                let has_answers = vi.kinds.iter().any(|(k, n)| k == "answer" && *n > 0);
                if has_answers && vi.max_created >= since && vi.max_created < before {
                    out.extend(
                        self.volume_items(journal.id, vi)?
                            .into_iter()
                            .filter(|i| i.kind == Kind::Answer && !i.deleted),
                    );
                }
            }
        }
        Ok(out)
    }

    /// Every question the partner has answered (ids and dates only).
    pub fn partner_questions(&self) -> Result<Vec<Asked>, StoreError> {
        self.partner_questions_since(i32::MIN / 2)
    }

    /// Whether the partner has answered `asked` (not what they answered).
    pub fn partner_answered(&self, asked: &Asked) -> Result<bool, StoreError> {
        let day = asked.day_number().unwrap_or(i32::MIN / 2);
        Ok(self.partner_questions_since(day)?.contains(asked))
    }

    /// My answers around `day` and later: what [`Reveal`] needs to judge the partner's
    /// answers to questions of `day` or later.
    fn my_answers(
        &self,
        day: i32,
        indexes: &[(JournalRef, JournalIndex)],
    ) -> Result<Reveal, StoreError> {
        Ok(Reveal::from_mine(&self.answers_in(
            indexes,
            Author::Me,
            day,
            None,
        )?))
    }

    /// Change my own item. The partner's items are refused.
    pub fn update(&self, at: &Located, update: &ItemUpdate, now: i64) -> Result<(), StoreError> {
        if at.journal.author != Author::Me {
            return Err(StoreError::NotAuthor(at.id.to_string()));
        }
        let mut update = update.clone();
        if let Some(body) = &update.body {
            update.body = Some(duet_core::item::validate_body(body)?);
        }
        self.modify(at.journal.id, Some(at.volume), now, &[at.id], None, |vol| {
            Ok(vol.update(at.id, &update, now)?)
        })
    }

    /// Star or unstar any item: mine on the item, the partner's as a mark in my journal.
    pub fn set_star(&self, at: &Located, on: bool, now: i64) -> Result<(), StoreError> {
        if at.journal.author == Author::Me {
            let update = ItemUpdate {
                starred: Some(on),
                ..Default::default()
            };
            return self.update(at, &update, now);
        }
        self.add_to_open_volume(self.config.journal, now, &[], None, |vol| {
            Ok(vol.set_mark(at.id, on, now)?)
        })
    }

    fn volume_items(&self, journal: JournalId, vi: &VolumeIndex) -> Result<Vec<Item>, StoreError> {
        self.volume_items_where(journal, vi, &|_| true)
    }

    /// The items of a volume whose body `keep` takes (all of them when the cache has to be
    /// rebuilt from the volume: the caller filters anyway).
    fn volume_items_where(
        &self,
        journal: JournalId,
        vi: &VolumeIndex,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<Item>, StoreError> {
        if let Some(items) = self.index.read_items_where(journal, vi.id, &vi.key, keep) {
            return Ok(items);
        }
        // The items cache is gone or damaged: rebuild it from the volume.
        let files = self.files(journal);
        let listed = files.list_volume(vi.id)?;
        let mut warnings = Vec::new();
        let loaded = files.load(vi.id, &listed, self.actor, &mut warnings)?;
        self.warn(warnings);
        Ok(match loaded {
            Some(mut loaded) => self.reindex(journal, &mut loaded, None, None).1,
            None => Vec::new(),
        })
    }

    /// My marks on the partner's items, from my shared journal's index among `indexes`; none
    /// without a partner.
    fn marks_in(&self, indexes: &[(JournalRef, JournalIndex)]) -> HashMap<ItemId, bool> {
        let mine = indexes.iter().find(|(j, _)| j.id == self.config.journal);
        match (&self.partner, mine) {
            (Some(_), Some((_, index))) => marks_of(index),
            _ => HashMap::new(),
        }
    }

    fn listed(&self, item: Item, journal: JournalRef, marks: &HashMap<ItemId, bool>) -> ListedItem {
        let starred = match journal.author {
            Author::Me => item.starred,
            Author::Partner => marks.get(&item.id).copied().unwrap_or(false),
        };
        ListedItem {
            item,
            author: journal.author,
            private: journal.private,
            starred,
        }
    }

    /// Items matching `filter`, newest first, at most `limit`. Reads only the
    /// volumes that can hold a match, newest first, and stops as soon as no
    /// older volume can change the answer.
    pub fn list(
        &self,
        filter: &Filter,
        limit: Option<usize>,
    ) -> Result<Vec<ListedItem>, StoreError> {
        self.list_in(self.fresh_indexes()?, filter, limit)
    }

    fn list_in(
        &self,
        indexes: Vec<(JournalRef, JournalIndex)>,
        filter: &Filter,
        limit: Option<usize>,
    ) -> Result<Vec<ListedItem>, StoreError> {
        let mut out = Vec::new();
        self.walk(indexes, filter, Order::NewestFirst, limit, |l| {
            out.push(l);
            Ok::<_, StoreError>(())
        })?;
        Ok(out)
    }

    /// What [`Store::list`] finds, newest first, handed to `emit` one item at a time (at most
    /// `limit`); the count. Held in memory at once: only the items of volumes whose spans
    /// overlap, so a listing of any size runs in a few MiB.
    pub fn for_each_newest_first<E: From<StoreError>>(
        &self,
        filter: &Filter,
        limit: Option<usize>,
        emit: impl FnMut(ListedItem) -> Result<(), E>,
    ) -> Result<usize, E> {
        self.walk(
            self.fresh_indexes()?,
            filter,
            Order::NewestFirst,
            limit,
            emit,
        )
    }

    /// What [`Store::list`] finds, oldest first, handed to `emit` one item at a time; the count.
    pub fn for_each_oldest_first<E: From<StoreError>>(
        &self,
        filter: &Filter,
        emit: impl FnMut(ListedItem) -> Result<(), E>,
    ) -> Result<usize, E> {
        self.walk(
            self.fresh_indexes()?,
            filter,
            Order::OldestFirst,
            None,
            emit,
        )
    }

    /// The one walk behind every listing. Volumes are read in the order their spans begin
    /// (oldest first) or end (newest first), and an item is handed on once no volume still
    /// unread can hold one that comes before it: only volumes whose spans overlap are held at
    /// once. Ties in time go by id, newest first being the exact reverse of oldest first.
    fn walk<E: From<StoreError>>(
        &self,
        indexes: Vec<(JournalRef, JournalIndex)>,
        filter: &Filter,
        order: Order,
        limit: Option<usize>,
        mut emit: impl FnMut(ListedItem) -> Result<(), E>,
    ) -> Result<usize, E> {
        /// The heap pops its greatest: the item to hand on next must be the greatest.
        struct Pending((i64, [u8; 8]), ListedItem);
        impl PartialEq for Pending {
            fn eq(&self, other: &Self) -> bool {
                self.0 == other.0
            }
        }
        impl Eq for Pending {}
        impl PartialOrd for Pending {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for Pending {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.0.cmp(&other.0)
            }
        }
        // Newest first: greatest time, then greatest id. Oldest first: every bit inverted,
        // which reverses the order exactly.
        let key = |item: &Item| match order {
            Order::NewestFirst => (item.created_at, *item.id.as_bytes()),
            Order::OldestFirst => (!item.created_at, item.id.as_bytes().map(|b| !b)),
        };
        let limit = limit.unwrap_or(usize::MAX);
        let (marks, mut candidates) = self.candidates(&indexes, filter)?;
        match order {
            Order::NewestFirst => {
                candidates.sort_by_key(|(_, vi)| std::cmp::Reverse(vi.max_created));
            }
            Order::OldestFirst => candidates.sort_by_key(|(_, vi)| vi.min_created),
        }
        let mut pending = std::collections::BinaryHeap::new();
        let mut reveal = None;
        let mut count = 0;
        let seen = (&indexes[..], &marks);
        for (journal, vi) in &candidates {
            // Nothing still unread comes before what this volume's span leaves out.
            let settled = |p: &Pending| match order {
                Order::NewestFirst => p.1.item.created_at > vi.max_created,
                Order::OldestFirst => p.1.item.created_at < vi.min_created,
            };
            while count < limit && pending.peek().is_some_and(settled) {
                emit(pending.pop().expect("peeked").1)?;
                count += 1;
            }
            if count >= limit {
                return Ok(count);
            }
            let volume_day = utc_day(vi.min_created);
            let keep = |body: &[u8]| filter.raw_body_may_match(body);
            for item in self.volume_items_where(journal.id, vi, &keep)? {
                if let Some(listed) =
                    self.admit(item, *journal, seen, filter, volume_day, &mut reveal)?
                {
                    pending.push(Pending(key(&listed.item), listed));
                }
            }
        }
        while count < limit
            && let Some(p) = pending.pop()
        {
            emit(p.1)?;
            count += 1;
        }
        Ok(count)
    }

    /// The marks and the volumes (with their journals) that may hold what `filter` asks for.
    #[allow(clippy::type_complexity)]
    fn candidates<'a>(
        &self,
        indexes: &'a [(JournalRef, JournalIndex)],
        filter: &Filter,
    ) -> Result<(HashMap<ItemId, bool>, Vec<(JournalRef, &'a VolumeIndex)>), StoreError> {
        let marks = self.marks_in(indexes);
        let mut candidates: Vec<(JournalRef, &VolumeIndex)> = Vec::new();
        for &(journal, ref index) in indexes {
            if filter.author.is_some_and(|a| a != journal.author) {
                continue;
            }
            let may_hold = match &filter.contains {
                Some(needle) => Some(self.may_hold(journal.id, index, needle)?),
                None => None,
            };
            for vi in index.volumes.values() {
                let span = filter.may_match_span(vi.min_created, vi.max_created);
                let text = may_hold.as_ref().is_none_or(|set| set.contains(&vi.id));
                let answers = filter
                    .re
                    .is_none_or(|re| vi.answers.binary_search(&re).is_ok());
                if vi.len > 0 && span && text && answers {
                    candidates.push((journal, vi));
                }
            }
        }
        Ok((marks, candidates))
    }

    /// One item read from a volume, as a listing shows it, if `filter` takes it and the reveal
    /// rule shows it. `reveal` carries my answers between calls: read when the first of the
    /// partner's answers turns up, then only as far back as the answers met so far need, from
    /// the journals' indexes the walk read (with my marks, `seen`).
    fn admit(
        &self,
        item: Item,
        journal: JournalRef,
        (indexes, marks): (&[(JournalRef, JournalIndex)], &HashMap<ItemId, bool>),
        filter: &Filter,
        volume_day: i32,
        reveal: &mut Option<(i32, Reveal)>,
    ) -> Result<Option<ListedItem>, StoreError> {
        let listed = self.listed(item, journal, marks);
        if !filter.matches(&listed.item, listed.author, listed.starred) {
            return Ok(None);
        }
        if listed.author == Author::Partner && listed.item.kind == Kind::Answer {
            // The day this answer is for; my answer to it was written on it or later. My
            // answers are read back to the oldest day met so far, once; an older volume or an
            // answer given late reads only the volumes not read yet.
            let day = listed
                .item
                .ritual
                .question
                .as_ref()
                .and_then(Asked::day_number)
                .unwrap_or(i32::MIN / 2);
            let since = day.min(volume_day);
            match reveal {
                None => *reveal = Some((since, self.my_answers(since, indexes)?)),
                Some((read_from, rule)) if since < *read_from => {
                    let mine = self.answers_in(indexes, Author::Me, since, Some(*read_from))?;
                    rule.add_mine(&mine);
                    *read_from = since;
                }
                Some(_) => {}
            }
            let (_, rule) = reveal.as_ref().expect("just built");
            if !rule.visible(&listed.item, listed.author) {
                return Ok(None);
            }
        }
        Ok(Some(listed))
    }

    /// Counts and sizes, from the index alone: no item is read.
    pub fn status(&self) -> Result<Status, StoreError> {
        let mut status = Status::default();
        for journal in self.journals() {
            let files = self.files(journal.id);
            let listing = files.list()?;
            status.volumes += listing.volumes.len();
            let mut index = self.fresh_index_of(journal.id, &listing)?;
            // Sizes come from the index; a volume that does not load, or indexed before sizes
            // were kept, is measured (and then kept).
            let mut measured = false;
            for (vol, listed) in &listing.volumes {
                status.store_bytes += match index.volumes.get_mut(vol) {
                    Some(VolumeIndex {
                        bytes: Some(bytes), ..
                    }) => *bytes,
                    Some(vi) => {
                        measured = true;
                        *vi.bytes.insert(files.size_of(listed))
                    }
                    None => files.size_of(listed),
                };
            }
            if measured {
                self.index.write_manifest(journal.id, &index);
            }
            for vi in index.volumes.values() {
                let counts = match journal.author {
                    Author::Partner => &mut status.partner,
                    Author::Me => &mut status.mine,
                };
                for (kind, n) in &vi.kinds {
                    *counts.entry(kind.clone()).or_default() += *n as usize;
                    if journal.private {
                        status.private += *n as usize;
                    }
                }
                if journal.author == Author::Me {
                    status.starred += vi.starred as usize;
                }
            }
            if journal.author == Author::Me && !journal.private && self.partner.is_some() {
                status.starred += marks_of(&index).values().filter(|on| **on).count();
            }
        }
        Ok(status)
    }
}

/// Which way a listing walks through time.
#[derive(Clone, Copy)]
enum Order {
    NewestFirst,
    OldestFirst,
}

/// Marks recorded in my journal's volumes, resolved: the latest decision wins.
fn marks_of(index: &JournalIndex) -> HashMap<ItemId, bool> {
    let mut all: HashMap<ItemId, Vec<i64>> = HashMap::new();
    for vi in index.volumes.values() {
        for (id, at) in &vi.marks {
            all.entry(*id).or_default().push(*at);
        }
    }
    all.into_iter()
        .filter_map(|(id, ts)| Some((id, resolve_marks(ts)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use automerge::{ActorId, ChangeHash};

    use super::*;

    /// Entries and notes of thanks, some starred, some in answer to something.
    fn entry(body: &str, at: i64) -> WriteRequest {
        WriteRequest {
            kind: if at % 2 == 0 {
                Kind::Entry
            } else {
                Kind::Thanks
            },
            body: body.into(),
            tags: vec!["us".into(), "walk".into()],
            starred: at % 3 == 0,
            created_at: 1_700_000_000_000 - at * 1000,
            private: false,
            ritual: Ritual {
                re: (at % 5 == 0).then_some(ItemId([at as u8 % 3; 8])),
                ..Ritual::default()
            },
        }
    }

    /// The actor of the change at the single head of `vol` as it loads now.
    fn head_actor(files: &JournalFiles, vol: VolumeId) -> automerge::ActorId {
        let listed = files.list_volume(vol).unwrap();
        let mut loaded = files
            .load(vol, &listed, [0xee; 16], &mut Vec::new())
            .unwrap()
            .unwrap();
        let heads = loaded.volume.heads();
        assert_eq!(heads.len(), 1);
        let doc = loaded.volume.doc_mut();
        doc.get_change_by_hash(&heads[0])
            .unwrap()
            .actor_id()
            .clone()
    }

    /// Every volume, loaded afresh, is what the index says of it: heads, append point, items.
    fn assert_index_matches_the_files(store: &Store, journal: JournalId) -> usize {
        let files = store.files(journal);
        let listing = files.list().unwrap();
        let index = store.fresh_index(journal).unwrap();
        let mut count = 0;
        for (vol, listed) in &listing.volumes {
            let vi = &index.volumes[vol];
            assert_eq!(vi.key, Listing::volume_key(listed), "the record is current");
            let mut loaded = files
                .load(*vol, listed, [0xef; 16], &mut Vec::new())
                .unwrap()
                .unwrap();
            let heads: Vec<[u8; 32]> = loaded.volume.heads().iter().map(|h| h.0).collect();
            assert_eq!(vi.heads, heads);
            // A full volume takes no new item: its record keeps no append point.
            let open = loaded.volume.len() < duet_core::VOLUME_CAPACITY;
            assert_eq!(vi.append, loaded.volume.append_point().filter(|_| open));
            // The whole record, counted on by each append, is the one a load builds.
            let mut built = VolumeIndex::build(&loaded.volume.contents(), vi.key);
            built.bytes = vi.bytes;
            // Which chunk holds everything only the writes know; a load does not.
            if let Some(tip) = &vi.tip {
                assert!(
                    listed.iter().any(|f| &f.name == tip),
                    "the tip is the volume's"
                );
                built.tip = vi.tip.clone();
            }
            assert_eq!(*vi, built);
            let mut from_files = loaded.volume.items();
            let mut cached = store.index.read_items(journal, *vol, &vi.key).unwrap();
            from_files.sort_by_key(|i| i.id);
            cached.sort_by_key(|i| i.id);
            assert_eq!(from_files, cached);
            assert_eq!(vi.len as usize, cached.len());
            assert_eq!(vi.bytes, Some(files.size_of(listed)));
            count += cached.len();
        }
        count
    }

    /// A home of one's own in a temporary directory (`<dir>/home`), and its journal.
    fn new_home() -> (tempfile::TempDir, JournalId) {
        let dir = tempfile::tempdir().unwrap();
        let config = Home::new(dir.path().join("home"))
            .init("Alex", "laptop", 1)
            .unwrap();
        (dir, config.journal)
    }

    /// A new home with `n` entries written by one store, and that store.
    fn home_with_mornings(n: i64) -> (tempfile::TempDir, JournalId, Store) {
        let (dir, journal) = new_home();
        let store = Store::open(Home::new(dir.path().join("home"))).unwrap();
        for k in 0..n {
            store.add(entry(&format!("morning {k}"), k), k).unwrap();
        }
        (dir, journal, store)
    }

    #[test]
    fn a_write_appends_without_loading_and_the_volume_loads_as_the_index_says() {
        let (dir, journal) = new_home();
        let root = dir.path().join("home");
        let open = || Store::open(Home::new(&root)).unwrap();
        // Each write a process of its own; past a compaction (24 files) and on.
        for n in 0..40 {
            let store = open();
            let item = store
                .add(entry(&format!("page {n} of our walks"), n), n)
                .unwrap();
            let at = store.locate(&item.id.to_string()).unwrap();
            let files = store.files(journal);
            let listed = files.list_volume(at.volume).unwrap();
            let chunks = listed.iter().filter(|f| f.kind == FileKind::Chunk).count();
            // The first write starts the volume and a write that compacts loads it; every other
            // one appends its change with an actor of its own, not the store's.
            if n > 0 && chunks > 0 {
                assert_ne!(
                    head_actor(&files, at.volume),
                    ActorId::from(store.actor()),
                    "write {n}"
                );
            }
            assert_eq!(store.get(&at).unwrap().item, item);
        }
        assert_eq!(assert_index_matches_the_files(&open(), journal), 40);
        // Without the cache, everything is read again from the files, the same.
        fs::remove_dir_all(root.join("cache")).unwrap();
        assert_eq!(assert_index_matches_the_files(&open(), journal), 40);
    }

    #[test]
    fn a_volume_kept_loaded_between_sessions_is_loaded_again_once_its_files_change() {
        use duet_core::sync::Backend;

        use crate::StoreReplica;
        let (dir, journal) = new_home();
        let root = dir.path().join("home");
        // A long-lived process (`duet serve`), and the `duet write`s of others.
        let serve = Store::open(Home::new(&root)).unwrap();
        let write = |n: i64| {
            let other = Store::open(Home::new(&root)).unwrap();
            other.add(entry(&format!("evening {n}"), n), n).unwrap();
        };
        for n in 0..3 {
            write(n);
        }
        let vol = *serve
            .fresh_index(journal)
            .unwrap()
            .volumes
            .keys()
            .next()
            .unwrap();
        let files = serve.files(journal);
        let loaded_afresh = || {
            let listed = files.list_volume(vol).unwrap();
            let mut loaded = files.load(vol, &listed, [0xee; 16], &mut Vec::new());
            loaded.as_mut().unwrap().as_mut().unwrap().volume.heads()
        };
        let first = StoreReplica::new(&serve).load_doc(journal, vol).unwrap();
        let listed = files.list_volume(vol).unwrap();
        assert!(serve.warm().get(journal, vol, &listed).is_some(), "kept");
        // The next session gets it as it was, without loading it.
        let mut again = StoreReplica::new(&serve).load_doc(journal, vol).unwrap();
        assert_eq!(again.get_heads(), loaded_afresh());
        // Another process writes to it: the next session loads the files, the new page with.
        write(3);
        let listed = files.list_volume(vol).unwrap();
        assert!(serve.warm().get(journal, vol, &listed).is_none());
        let mut after = StoreReplica::new(&serve).load_doc(journal, vol).unwrap();
        assert_eq!(after.get_heads(), loaded_afresh());
        assert_ne!(after.get_heads(), first.clone().get_heads());
    }

    #[test]
    fn a_sync_loads_ahead_only_the_open_volumes_written_since_the_peer_last_agreed() {
        use duet_core::sync::{JournalPeerState, PeerState, heads_digest};
        let (_dir, journal, store) = home_with_mornings(3);
        let index = store.fresh_index(journal).unwrap();
        let (vol, vi) = index.volumes.iter().next().unwrap();
        let listed = store.files(journal).list_volume(*vol).unwrap();
        let heads: Vec<ChangeHash> = vi.heads.iter().map(|h| ChangeHash(*h)).collect();
        let agreed_at = |digest| PeerState {
            journals: [(
                journal,
                JournalPeerState {
                    agreed: [(*vol, digest)].into(),
                    automerge: Default::default(),
                },
            )]
            .into(),
        };
        // Never synced with, or agreed on the volume as it is: nothing to load.
        store.warm_up(&[PeerState::default()]);
        store.warm_up(&[agreed_at(heads_digest(&heads))]);
        assert!(store.warm().get(journal, *vol, &listed).is_none());
        // Written to since: loaded, as the files hold it.
        store.warm_up(&[agreed_at(heads_digest(&[]))]);
        let mut warm = store.warm().get(journal, *vol, &listed).unwrap();
        assert_eq!(warm.doc.get_heads(), heads);
    }

    #[test]
    fn an_append_reads_the_snapshot_and_the_last_chunk_only() {
        let (dir, journal, store) = home_with_mornings(5);
        let root = dir.path().join("home");
        let index = store.fresh_index(journal).unwrap();
        let vi = index.volumes.values().next().unwrap().clone();
        let tip = vi.tip.clone().expect("the last append's chunk");
        let files = store.files(journal);
        let listed = files.list_volume(vi.id).unwrap();
        let chunks: Vec<&VolumeFile> = listed
            .iter()
            .filter(|f| f.kind == FileKind::Chunk)
            .collect();
        assert_eq!(chunks.len(), 4);
        // An older chunk damaged in place (its name kept): the tip holds all it held, so the
        // next write still appends, reading only the snapshot and the tip.
        let older = chunks.iter().find(|f| f.name != tip).unwrap();
        fs::write(files.dir.join(&older.name), b"not a chunk any more").unwrap();
        let store = Store::open(Home::new(&root)).unwrap();
        store.add(entry("morning 5", 5), 5).unwrap();
        assert_ne!(head_actor(&files, vi.id), ActorId::from(store.actor()));
        // Read afresh without the cache, every entry is there (the damaged chunk is named).
        fs::remove_dir_all(root.join("cache")).unwrap();
        let store = Store::open(Home::new(&root)).unwrap();
        let bodies: Vec<String> = store
            .list(&Filter::default(), None)
            .unwrap()
            .into_iter()
            .map(|l| l.item.body)
            .collect();
        assert_eq!(bodies.len(), 6, "{bodies:?}");
        assert!(
            store
                .take_warnings()
                .iter()
                .any(|w| w.0.contains(&older.name))
        );
    }

    #[test]
    fn a_full_volume_keeps_no_append_point_and_the_next_one_is_appended_to() {
        let (dir, journal) = new_home();
        let store = Store::open(Home::new(dir.path().join("home"))).unwrap();
        let n = duet_core::VOLUME_CAPACITY as i64 + 3;
        for at in 0..n {
            store.add(entry(&format!("line {at}"), at), at).unwrap();
        }
        let index = store.fresh_index(journal).unwrap();
        let records: Vec<&VolumeIndex> = index.volumes.values().collect();
        assert_eq!(records.len(), 2);
        let (full, open) = match records[0].len as usize {
            duet_core::VOLUME_CAPACITY => (records[0], records[1]),
            _ => (records[1], records[0]),
        };
        assert_eq!(full.len as usize, duet_core::VOLUME_CAPACITY);
        assert_eq!(full.append, None, "a full volume takes no new item");
        assert_eq!(open.len, 3);
        assert!(open.append.is_some());
        // The new volume's later items were appended (a head change by an actor not the
        // store's), and every record is the one a load builds.
        let files = store.files(journal);
        assert_ne!(head_actor(&files, open.id), ActorId::from(store.actor()));
        assert_eq!(assert_index_matches_the_files(&store, journal), n as usize);
    }

    #[test]
    fn a_write_decodes_the_open_volumes_record_only() {
        let (dir, journal) = new_home();
        let root = dir.path().join("home");
        let store = Store::open(Home::new(&root)).unwrap();
        let n = duet_core::VOLUME_CAPACITY as i64 + 3;
        for at in 0..n {
            store.add(entry(&format!("line {at}"), at), at).unwrap();
        }
        let index = store.fresh_index(journal).unwrap();
        let full = index
            .volumes
            .values()
            .find(|v| v.len as usize == duet_core::VOLUME_CAPACITY)
            .unwrap()
            .id;
        let open = index.volumes.keys().find(|v| **v != full).copied().unwrap();
        // Damage the full volume's record past its head (the count of its marks), where only a
        // whole decode reads: the manifest no longer decodes, its framing still holds.
        let path = root.join("cache").join(format!("{journal}.manifest"));
        let mut bytes = fs::read(&path).unwrap();
        let mut at = 12;
        while bytes[at + 4..at + 12] != *full.as_bytes() {
            at += 4 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        }
        let marks = at + 4 + 8 + 16 + 8 + 4 + 8 + 8;
        bytes[marks..marks + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        assert_eq!(JournalIndex::decode(&bytes), None);
        // The write reads the heads of the records and the open volume's whole: it appends,
        // and puts the damaged record back as it was, unread.
        store.add(entry("after the damage", n), n).unwrap();
        let after = fs::read(&path).unwrap();
        assert_eq!(JournalIndex::decode(&after), None);
        assert_eq!(after[marks..marks + 4], u32::MAX.to_le_bytes());
        let files = store.files(journal);
        assert_ne!(head_actor(&files, open), ActorId::from(store.actor()));
        // Every reader decodes the manifest whole: it rebuilds it, and every item is there.
        assert_eq!(
            assert_index_matches_the_files(&store, journal),
            n as usize + 1
        );
        assert!(JournalIndex::decode(&fs::read(&path).unwrap()).is_some());
    }

    #[test]
    fn an_appended_chunk_holds_every_change_since_the_snapshot() {
        let (dir, journal) = new_home();
        let root = dir.path().join("home");
        let open = || Store::open(Home::new(&root)).unwrap();
        let mut written = Vec::new();
        for n in 0..8 {
            written.push(open().add(entry(&format!("evening {n}"), n), n).unwrap().id);
        }
        // Damage every chunk but the newest: the newest alone still carries all of them.
        let files = open().files(journal);
        let listing = files.list().unwrap();
        let (vol, listed) = listing.volumes.iter().next().unwrap();
        let chunks: Vec<&VolumeFile> = listed
            .iter()
            .filter(|f| f.kind == FileKind::Chunk)
            .collect();
        let newest = chunks
            .iter()
            .max_by_key(|f| fs::metadata(files.dir.join(&f.name)).unwrap().len())
            .unwrap();
        for f in &chunks {
            if f.name != newest.name {
                fs::write(files.dir.join(&f.name), b"damaged").unwrap();
            }
        }
        fs::remove_dir_all(root.join("cache")).unwrap();
        let mut warnings = Vec::new();
        let mut loaded = files
            .load(*vol, listed, [1; 16], &mut warnings)
            .unwrap()
            .unwrap();
        assert_eq!(warnings.len(), chunks.len() - 1);
        let mut ids: Vec<ItemId> = loaded.volume.items().iter().map(|i| i.id).collect();
        ids.sort();
        written.sort();
        assert_eq!(ids, written);
        // And the next write, finding damaged files, loads the volume (and says so) instead.
        let store = open();
        store.add(entry("after the damage", 9), 9).unwrap();
        assert!(!store.take_warnings().is_empty());
        assert_eq!(loaded.volume.heads().len(), 1);
    }
}
