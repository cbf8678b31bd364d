//! A derived, cache-only index of each journal, so that `list` and `show`
//! never load Automerge documents in the common case.
//!
//! Per journal, `cache/<journal>.manifest` holds one record per volume: the
//! key of the volume's file set (see [`Listing::volume_key`]), its size and
//! time span, its item ids, its marks and a trigram Bloom filter of its
//! bodies. Per volume, `cache/items/<journal>.<volume>.<key>.json` holds its
//! items. A record is trusted only while its key matches the files on disk;
//! anything missing, stale or unreadable is rebuilt from the journal. Deleting
//! `cache/` loses nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use duet_core::bloom::{BLOOM_BYTES, TrigramBloom};
use duet_core::{Item, ItemId, JournalId, Volume, VolumeId};

use crate::fsutil::{create_private_dir, write_cache};
use crate::volumes::Listing;

const MAGIC: &[u8; 8] = b"DUETIX\x00\x02";

#[derive(Clone, Debug, PartialEq)]
pub struct VolumeIndex {
    pub id: VolumeId,
    pub key: [u8; 16],
    pub created_at: i64,
    pub len: u32,
    pub min_created: i64,
    pub max_created: i64,
    pub ids: Vec<ItemId>,
    pub marks: Vec<(ItemId, i64)>,
    /// Automerge heads of the volume: sync compares them without loading it.
    pub heads: Vec<[u8; 32]>,
    pub bloom: TrigramBloom,
}

impl VolumeIndex {
    /// Index a loaded volume; also returns its items for the items cache.
    pub fn build(volume: &mut Volume, key: [u8; 16]) -> (VolumeIndex, Vec<Item>) {
        let heads = volume.heads().iter().map(|h| h.0).collect();
        let items = volume.items();
        let mut bloom = TrigramBloom::default();
        for item in &items {
            bloom.insert_text(&item.body);
        }
        let index = VolumeIndex {
            id: volume.id(),
            key,
            created_at: volume.created_at(),
            len: items.len() as u32,
            min_created: items.iter().map(|i| i.created_at).min().unwrap_or(i64::MAX),
            max_created: items.iter().map(|i| i.created_at).max().unwrap_or(i64::MIN),
            ids: items.iter().map(|i| i.id).collect(),
            marks: volume.marks(),
            heads,
            bloom,
        };
        (index, items)
    }

    pub fn summary(&self) -> duet_core::journal::VolumeSummary {
        duet_core::journal::VolumeSummary {
            id: self.id,
            created_at: self.created_at,
            len: self.len as usize,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct JournalIndex {
    pub volumes: BTreeMap<VolumeId, VolumeIndex>,
}

impl JournalIndex {
    /// Volumes whose record does not match the files on disk.
    pub fn stale<'a>(&'a self, listing: &'a Listing) -> impl Iterator<Item = VolumeId> + 'a {
        listing.volumes.iter().filter_map(|(vol, files)| {
            let fresh = self
                .volumes
                .get(vol)
                .is_some_and(|v| v.key == Listing::volume_key(files));
            (!fresh).then_some(*vol)
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.volumes.len() * (BLOOM_BYTES + 128));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.volumes.len() as u32).to_le_bytes());
        for v in self.volumes.values() {
            out.extend_from_slice(v.id.as_bytes());
            out.extend_from_slice(&v.key);
            out.extend_from_slice(&v.created_at.to_le_bytes());
            out.extend_from_slice(&v.len.to_le_bytes());
            out.extend_from_slice(&v.min_created.to_le_bytes());
            out.extend_from_slice(&v.max_created.to_le_bytes());
            out.extend_from_slice(&(v.ids.len() as u32).to_le_bytes());
            for id in &v.ids {
                out.extend_from_slice(id.as_bytes());
            }
            out.extend_from_slice(&(v.marks.len() as u32).to_le_bytes());
            for (id, at) in &v.marks {
                out.extend_from_slice(id.as_bytes());
                out.extend_from_slice(&at.to_le_bytes());
            }
            out.extend_from_slice(&(v.heads.len() as u32).to_le_bytes());
            for h in &v.heads {
                out.extend_from_slice(h);
            }
            out.extend_from_slice(v.bloom.as_bytes());
        }
        out
    }

    /// Decode a manifest; `None` for anything malformed (it is then rebuilt).
    pub fn decode(bytes: &[u8]) -> Option<JournalIndex> {
        let mut r = Reader(bytes);
        if r.take(8)? != MAGIC {
            return None;
        }
        let count = r.u32()?;
        let mut volumes = BTreeMap::new();
        for _ in 0..count {
            let id = VolumeId(r.array()?);
            let key = r.array()?;
            let created_at = r.i64()?;
            let len = r.u32()?;
            let min_created = r.i64()?;
            let max_created = r.i64()?;
            let n = r.u32()? as usize;
            let ids = (0..n)
                .map(|_| r.array().map(ItemId))
                .collect::<Option<Vec<_>>>()?;
            let m = r.u32()? as usize;
            let marks = (0..m)
                .map(|_| Some((ItemId(r.array()?), r.i64()?)))
                .collect::<Option<Vec<_>>>()?;
            let h = r.u32()? as usize;
            let heads = (0..h).map(|_| r.array()).collect::<Option<Vec<_>>>()?;
            let bloom = TrigramBloom::from_bytes(r.take(BLOOM_BYTES)?)?;
            volumes.insert(
                id,
                VolumeIndex {
                    id,
                    key,
                    created_at,
                    len,
                    min_created,
                    max_created,
                    ids,
                    marks,
                    heads,
                    bloom,
                },
            );
        }
        r.0.is_empty().then_some(JournalIndex { volumes })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }
}

/// Where the cache files live.
pub struct IndexFiles {
    dir: PathBuf,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl IndexFiles {
    pub fn new(dir: PathBuf) -> IndexFiles {
        IndexFiles { dir }
    }

    fn manifest_name(journal: JournalId) -> String {
        format!("{journal}.manifest")
    }

    fn items_dir(&self) -> PathBuf {
        self.dir.join("items")
    }

    fn items_name(journal: JournalId, vol: VolumeId, key: &[u8; 16]) -> String {
        format!("{journal}.{vol}.{}.json", hex(key))
    }

    pub fn read_manifest(&self, journal: JournalId) -> JournalIndex {
        fs::read(self.dir.join(Self::manifest_name(journal)))
            .ok()
            .and_then(|bytes| JournalIndex::decode(&bytes))
            .unwrap_or_default()
    }

    /// Cache writes may fail (a read-only home, a full disk): the cache is
    /// only an accelerator, so failures are ignored.
    pub fn write_manifest(&self, journal: JournalId, index: &JournalIndex) {
        if create_private_dir(&self.dir).is_ok() {
            let _ = write_cache(&self.dir, &Self::manifest_name(journal), &index.encode());
        }
    }

    pub fn read_items(&self, journal: JournalId, vol: &VolumeIndex) -> Option<Vec<Item>> {
        let path = self
            .items_dir()
            .join(Self::items_name(journal, vol.id, &vol.key));
        let bytes = fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write_items(
        &self,
        journal: JournalId,
        vol: &VolumeIndex,
        items: &[Item],
        old_key: Option<[u8; 16]>,
    ) {
        let dir = self.items_dir();
        if create_private_dir(&dir).is_err() {
            return;
        }
        let json = serde_json::to_vec(items).expect("items serialize");
        let _ = write_cache(&dir, &Self::items_name(journal, vol.id, &vol.key), &json);
        if let Some(old) = old_key.filter(|old| *old != vol.key) {
            let _ = fs::remove_file(dir.join(Self::items_name(journal, vol.id, &old)));
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_rejects_damage() {
        let mut vol = Volume::create([1; 16], JournalId([2; 16]), VolumeId([3; 8]), 10);
        vol.add(&Item {
            id: ItemId([4; 8]),
            kind: duet_core::Kind::Entry,
            created_at: 50,
            edited_at: None,
            body: "hello Lisbon".into(),
            tags: vec![],
            starred: false,
            deleted: false,
        })
        .unwrap();
        vol.set_mark(ItemId([9; 8]), true, 77).unwrap();
        let (vi, items) = VolumeIndex::build(&mut vol, [5; 16]);
        assert_eq!(vi.heads.len(), 1);
        assert_eq!(items.len(), 1);
        assert_eq!(vi.marks, vec![(ItemId([9; 8]), 77)]);
        assert!(vi.bloom.may_contain("lisbon"));
        let mut index = JournalIndex::default();
        index.volumes.insert(vi.id, vi);
        let bytes = index.encode();
        assert_eq!(JournalIndex::decode(&bytes), Some(index));
        for cut in [0, 7, 9, 30, bytes.len() - 1] {
            assert_eq!(JournalIndex::decode(&bytes[..cut]), None);
        }
    }
}
