//! The files of one journal: per volume, snapshots and incremental chunks,
//! each named by the hash of its content.
//!
//! `journals/<journal>/<volume>.<hash>.snap` holds a whole volume,
//! `<volume>.<hash>.chunk` the changes one process added. Two processes that
//! write at once add two different chunks; nothing is overwritten, so no
//! write is lost. Compaction writes a new snapshot, then deletes exactly the
//! files it read, under a per-volume lock.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use duet_core::{JournalId, Volume, VolumeId};

use crate::fsutil::{self, TEMP_PREFIX};
use crate::{StoreError, Warning};

/// Compact a volume once it has this many files.
pub const COMPACT_AFTER: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    Snapshot,
    Chunk,
    /// The snapshot a compaction replaced, kept one generation longer in reserve: it is read
    /// only when a snapshot of its volume is damaged or missing, since the newer snapshot holds
    /// all of it.
    Previous,
}

impl FileKind {
    fn extension(self) -> &'static str {
        match self {
            FileKind::Snapshot => "snap",
            FileKind::Chunk => "chunk",
            FileKind::Previous => "prev",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VolumeFile {
    pub kind: FileKind,
    pub hash: String,
    pub name: String,
}

impl VolumeFile {
    /// The file of `vol` of this kind whose content hashes to `hash`: `<vol>.<hash>.<ext>`.
    fn named(vol: VolumeId, kind: FileKind, hash: String) -> VolumeFile {
        let name = format!("{vol}.{hash}.{}", kind.extension());
        VolumeFile { kind, hash, name }
    }
}

/// The content hash that names a file: 128 bits of BLAKE3, base32.
pub fn content_hash(bytes: &[u8]) -> String {
    duet_core::id::encode_base32(&blake3::hash(bytes).as_bytes()[..16])
}

/// The files of every volume of one journal, from one directory listing.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub volumes: BTreeMap<VolumeId, Vec<VolumeFile>>,
}

impl Listing {
    /// A key that changes whenever a volume's set of files changes.
    pub fn volume_key(files: &[VolumeFile]) -> [u8; 16] {
        let mut hasher = blake3::Hasher::new();
        for f in files {
            hasher.update(f.name.as_bytes());
            hasher.update(b"\n");
        }
        hasher.finalize().as_bytes()[..16]
            .try_into()
            .expect("16 bytes")
    }
}

pub struct JournalFiles {
    pub journal: JournalId,
    pub dir: PathBuf,
}

fn parse_name(name: &str) -> Option<(VolumeId, VolumeFile)> {
    let mut parts = name.split('.');
    let (vol, hash, ext) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let kind = [FileKind::Snapshot, FileKind::Chunk, FileKind::Previous]
        .into_iter()
        .find(|k| k.extension() == ext)?;
    Some((
        vol.parse().ok()?,
        VolumeFile {
            kind,
            hash: hash.to_owned(),
            name: name.to_owned(),
        },
    ))
}

/// A loaded volume, and the files it was loaded from.
pub struct LoadedVolume {
    pub volume: Volume,
    pub files: Vec<VolumeFile>,
    /// Heads of the snapshots alone: a new chunk holds everything after them.
    pub base: Vec<automerge::ChangeHash>,
}

impl JournalFiles {
    pub fn new(dir: PathBuf, journal: JournalId) -> JournalFiles {
        JournalFiles { journal, dir }
    }

    pub fn list(&self) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(listing),
            Err(e) => return Err(io_err(&self.dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&self.dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            if let Some((vol, file)) = parse_name(name) {
                listing.volumes.entry(vol).or_default().push(file);
            }
        }
        for files in listing.volumes.values_mut() {
            files.sort();
        }
        Ok(listing)
    }

    /// The bytes `files` hold on disk; a file a compaction removed meanwhile counts for nothing.
    pub fn size_of(&self, files: &[VolumeFile]) -> u64 {
        files
            .iter()
            .map(|f| fs::metadata(self.dir.join(&f.name)).map_or(0, |m| m.len()))
            .sum()
    }

    /// The files of one volume (none if it is not here).
    pub fn list_volume(&self, vol: VolumeId) -> Result<Vec<VolumeFile>, StoreError> {
        Ok(self.list()?.volumes.remove(&vol).unwrap_or_default())
    }

    /// Read and load one volume. Files whose content does not match their
    /// name, or that automerge rejects, are skipped and reported.
    pub fn load(
        &self,
        vol: VolumeId,
        files: &[VolumeFile],
        actor: [u8; 16],
        warnings: &mut Vec<Warning>,
    ) -> Result<Option<LoadedVolume>, StoreError> {
        // A compaction may delete files between our listing and our reads:
        // list again and retry (the new snapshot holds what was deleted).
        let mut files = files.to_vec();
        for _attempt in 0..8 {
            match self.try_load(vol, &files, actor, warnings) {
                Ok(loaded) => return Ok(loaded),
                Err(Vanished) => {
                    self.wait_for_compaction(vol);
                    files = self.list_volume(vol)?;
                }
            }
        }
        Err(StoreError::Busy(self.dir.clone()))
    }

    fn lock_path(&self, vol: VolumeId) -> PathBuf {
        self.dir.join(format!(".lock.{vol}"))
    }

    /// A compaction deletes its files one by one: wait (at most a few
    /// seconds) until it has finished before listing again.
    fn wait_for_compaction(&self, vol: VolumeId) {
        let Ok(lock) = fs::File::open(self.lock_path(vol)) else {
            return;
        };
        for _ in 0..2500 {
            if lock.try_lock().is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    fn try_load(
        &self,
        vol: VolumeId,
        files: &[VolumeFile],
        actor: [u8; 16],
        warnings: &mut Vec<Warning>,
    ) -> Result<Option<LoadedVolume>, Vanished> {
        let (reserve, current): (Vec<&VolumeFile>, Vec<&VolumeFile>) =
            files.iter().partition(|f| f.kind == FileKind::Previous);
        let (snaps, chunks): (Vec<&VolumeFile>, Vec<&VolumeFile>) = current
            .into_iter()
            .partition(|f| f.kind == FileKind::Snapshot);
        let mut doc = automerge::AutoCommit::new();
        // A snapshot in reserve belongs to the volume's set of files whether read or not.
        let mut loaded_files: Vec<VolumeFile> = reserve.iter().map(|f| (*f).clone()).collect();
        let listed_snaps = snaps.len();
        let snaps = self.read_checked(&snaps, warnings)?;
        let loaded = self.load_group(&mut doc, snaps, false, &mut loaded_files, warnings);
        // The reserve is read only when a snapshot is damaged or missing: the newest snapshot
        // holds all of it.
        if loaded < listed_snaps || listed_snaps == 0 {
            let reserve = self.read_checked(&reserve, warnings)?;
            self.load_group(&mut doc, reserve, false, &mut Vec::new(), warnings);
        }
        let base = doc.get_heads();
        let chunks = self.read_checked(&chunks, warnings)?;
        let loaded = self.load_group(&mut doc, chunks, true, &mut loaded_files, warnings);
        if loaded == 0 && base.is_empty() {
            return Ok(None);
        }
        loaded_files.sort();
        match Volume::from_doc(actor, doc) {
            Ok(volume) if volume.id() == vol && volume.journal() == self.journal => {
                Ok(Some(LoadedVolume {
                    volume,
                    files: loaded_files,
                    base,
                }))
            }
            Ok(_) => {
                warnings.push(Warning::volume(
                    &self.dir,
                    vol,
                    "it belongs to another journal",
                ));
                Ok(None)
            }
            Err(e) => {
                warnings.push(Warning::volume(&self.dir, vol, &e.to_string()));
                Ok(None)
            }
        }
    }

    /// The bytes of every one of `files`, each checked against its name; `None` if one is
    /// missing or damaged (a load then says which).
    pub fn read_all_checked(&self, files: &[&VolumeFile]) -> Option<Vec<Vec<u8>>> {
        let good = self.read_checked(files, &mut Vec::new()).ok()?;
        (good.len() == files.len()).then(|| good.into_iter().map(|(_, bytes)| bytes).collect())
    }

    /// The bytes of `files` whose content matches their names (the others are named in
    /// `warnings`).
    fn read_checked(
        &self,
        files: &[&VolumeFile],
        warnings: &mut Vec<Warning>,
    ) -> Result<Vec<(VolumeFile, Vec<u8>)>, Vanished> {
        let mut good = Vec::with_capacity(files.len());
        for f in files {
            let path = self.dir.join(&f.name);
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Vanished),
                Err(e) => {
                    warnings.push(Warning::unreadable(&path, &e.to_string()));
                    continue;
                }
            };
            if content_hash(&bytes) != f.hash {
                warnings.push(Warning::unreadable(
                    &path,
                    "its content does not match its name (truncated or damaged)",
                ));
                continue;
            }
            good.push(((*f).clone(), bytes));
        }
        Ok(good)
    }

    /// Loads a group of files into `doc` in one buffer (of chunks, each change once), file by
    /// file only if that fails, to name the culprit; adds those that loaded to `loaded` and
    /// returns how many did.
    fn load_group(
        &self,
        doc: &mut automerge::AutoCommit,
        group: Vec<(VolumeFile, Vec<u8>)>,
        chunks: bool,
        loaded: &mut Vec<VolumeFile>,
        warnings: &mut Vec<Warning>,
    ) -> usize {
        if group.is_empty() {
            return 0;
        }
        let bytes: Vec<&[u8]> = group.iter().map(|(_, b)| &b[..]).collect();
        let distinct = chunks
            .then(|| duet_core::volume::distinct_chunks(bytes.iter().copied()))
            .flatten();
        let all = distinct.unwrap_or_else(|| bytes.concat());
        if duet_core::load_bounded(doc, &all).is_ok() {
            let n = group.len();
            loaded.extend(group.into_iter().map(|(f, _)| f));
            return n;
        }
        let mut n = 0;
        for (f, bytes) in group {
            match duet_core::load_bounded(doc, &bytes) {
                Ok(_) => {
                    loaded.push(f);
                    n += 1;
                }
                Err(e) => warnings.push(Warning::unreadable(
                    &self.dir.join(&f.name),
                    &unreadable_because(&e),
                )),
            }
        }
        n
    }

    /// Store bytes (a snapshot or incremental save) of a volume durably and
    /// return the new file's entry.
    pub fn write(
        &self,
        vol: VolumeId,
        kind: FileKind,
        bytes: &[u8],
    ) -> Result<VolumeFile, StoreError> {
        self.write_with(vol, kind, bytes, fsutil::write_atomic)
    }

    /// Like [`JournalFiles::write`], but the file's name is durable only once
    /// [`JournalFiles::sync`] ran: for many volumes stored together (a sync), one directory
    /// sync for all of them.
    pub fn write_sync_later(
        &self,
        vol: VolumeId,
        kind: FileKind,
        bytes: &[u8],
    ) -> Result<VolumeFile, StoreError> {
        self.write_with(vol, kind, bytes, fsutil::write_atomic_sync_dir_later)
    }

    /// Makes the names of files written with [`JournalFiles::write_sync_later`] durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        fsutil::sync_dir(&self.dir).map_err(|e| io_err(&self.dir, e))
    }

    fn write_with(
        &self,
        vol: VolumeId,
        kind: FileKind,
        bytes: &[u8],
        write: fn(&std::path::Path, &str, &[u8], u32) -> std::io::Result<()>,
    ) -> Result<VolumeFile, StoreError> {
        fsutil::create_private_dir(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let file = VolumeFile::named(vol, kind, content_hash(bytes));
        let path = self.dir.join(&file.name);
        if !path.exists() {
            write(&self.dir, &file.name, bytes, 0o600).map_err(|e| io_err(&path, e))?;
        }
        Ok(file)
    }

    /// Replace the files of a loaded volume by one snapshot, if no other
    /// process is compacting it. Returns the files now holding the volume.
    pub fn compact(&self, loaded: &mut LoadedVolume) -> Result<Vec<VolumeFile>, StoreError> {
        let vol = loaded.volume.id();
        let lock_path = self.lock_path(vol);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_err(&lock_path, e))?;
        if lock.try_lock().is_err() {
            return Ok(loaded.files.clone());
        }
        let bytes = loaded.volume.save();
        let heads = loaded.volume.heads();
        let snap = self.write(vol, FileKind::Snapshot, &bytes)?;
        // Prove the new snapshot before anything goes: read it back from disk and load it.
        let proven = fs::read(self.dir.join(&snap.name))
            .ok()
            .and_then(|b| {
                let mut doc = automerge::AutoCommit::new();
                duet_core::load_bounded(&mut doc, &b).ok().map(|_| doc)
            })
            .is_some_and(|mut doc| doc.get_heads() == heads);
        if !proven {
            return Err(StoreError::Corrupt {
                file: self.dir.join(&snap.name),
                why: "the new snapshot did not read back; the files it was to replace are kept"
                    .to_owned(),
            });
        }
        // The previous snapshot stays one generation longer, in reserve (renamed `.prev`, read
        // only if a snapshot of the volume is damaged): should the new one be damaged later,
        // the volume still loads from it (losing at most what came since), and the next
        // compaction, having proven its own snapshot, lets it go.
        let previous = loaded
            .files
            .iter()
            .filter(|f| f.kind == FileKind::Snapshot && f.name != snap.name)
            .max_by_key(|f| fs::metadata(self.dir.join(&f.name)).map_or(0, |m| m.len()));
        let reserve = match previous {
            Some(f) => {
                let kept = VolumeFile::named(vol, FileKind::Previous, f.hash.clone());
                match fs::rename(self.dir.join(&f.name), self.dir.join(&kept.name)) {
                    Ok(()) => Some(kept),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                    Err(e) => return Err(io_err(&self.dir.join(&f.name), e)),
                }
            }
            None => None,
        };
        // The snapshot is durable and holds every change we loaded: now, and
        // only now, the files we loaded may go.
        for f in &loaded.files {
            if f.name != snap.name && Some(&f.name) != reserve.as_ref().map(|r| &r.name) {
                match fs::remove_file(self.dir.join(&f.name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&self.dir.join(&f.name), e)),
                }
            }
        }
        fsutil::sync_dir(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        drop(lock);
        loaded.files = reserve.into_iter().chain(std::iter::once(snap)).collect();
        loaded.files.sort();
        loaded.base = heads;
        Ok(loaded.files.clone())
    }
}

struct Vanished;

fn io_err(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Why Automerge bytes could not be loaded, in the words a warning uses.
pub fn unreadable_because(e: &duet_core::VolumeError) -> String {
    match e {
        duet_core::VolumeError::Automerge(e) => format!("automerge could not read it: {e}"),
        other => other.to_string(),
    }
}
