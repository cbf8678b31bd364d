//! A derived, cache-only index of each journal, so that `list` and `show`
//! never load Automerge documents in the common case.
//!
//! Per journal, three kinds of file, each trusted only while the key of a
//! volume's file set (see [`Listing::volume_key`]) matches the files on disk:
//!
//! - `cache/<journal>.manifest`: per volume its key, size, time span,
//!   Automerge heads, marks, the items its items answer, and where a write can add an item
//!   without loading it (its append point, with a check). Small: every command reads it.
//! - `cache/<journal>.search`: per volume its item ids and a trigram Bloom
//!   filter of its bodies. Read only by `--contains` and id lookups, and
//!   brought up to date lazily by them, so a write never rewrites it.
//! - `cache/items.3/<journal>.<volume>.<key>.items`: the items of one volume
//!   ([`crate::items_file`]).
//!
//! Anything missing, stale or unreadable is rebuilt from the journal.
//! Deleting `cache/` loses nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use duet_core::bloom::{BITS, TrigramBloom};
use duet_core::volume::Contents;
use duet_core::{AppendPoint, Item, ItemId, JournalId, VOLUME_CAPACITY, VolumeId};

use crate::fsutil::{create_private_dir, write_cache, write_checked_cache};
use crate::volumes::Listing;

const META_MAGIC: &[u8; 8] = b"DUETIX\x00\x09";
/// The manifest before each volume's record carried its length: read as it is (whole), though a
/// write cannot take one record out of it ([`ManifestView`]) until it is written again.
const META_MAGIC_V8: &[u8; 8] = b"DUETIX\x00\x08";
/// The manifest before the chunk an append builds on was kept: read as it is (the next append
/// reads every chunk of the open volume once, and keeps the one it writes).
const META_MAGIC_V7: &[u8; 8] = b"DUETIX\x00\x07";
/// The manifest before volumes' append points were kept: read as it is (a write then loads the
/// open volume once, and keeps its append point), so an upgrade does not reload every volume.
const META_MAGIC_V6: &[u8; 8] = b"DUETIX\x00\x06";
/// The manifest before volumes' sizes were kept: read as it is (sizes unknown), so an upgrade does
/// not reload every volume.
const META_MAGIC_V5: &[u8; 8] = b"DUETIX\x00\x05";
const SEARCH_MAGIC: &[u8; 8] = b"DUETSX\x00\x02";

/// What every command may need to know about a volume without loading it.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeIndex {
    pub id: VolumeId,
    pub key: [u8; 16],
    pub created_at: i64,
    pub len: u32,
    pub min_created: i64,
    pub max_created: i64,
    pub marks: Vec<(ItemId, i64)>,
    /// Automerge heads of the volume: sync compares them without loading it.
    pub heads: Vec<[u8; 32]>,
    /// Items not deleted, per kind, and how many of them are starred: what
    /// `duet status` needs without reading any item.
    pub kinds: Vec<(String, u32)>,
    pub starred: u32,
    /// The items that items of this volume answer (`ritual.re`), sorted: `show` finds an
    /// item's replies without reading volumes that hold none.
    pub answers: Vec<ItemId>,
    /// The bytes the volume's files hold on disk (`duet status`), `None` when not known yet
    /// (a manifest written before sizes were kept). A file's name is its content's hash, so
    /// the key fixes the sizes too.
    pub bytes: Option<u64>,
    /// Where a write can add an item without loading the volume (with `heads`, for this `key`).
    /// Only while the volume has room: a full one takes no new item, and its record is spared
    /// the bytes and the check (a manifest of 391 volumes once hashed 782 checks per write).
    pub append: Option<AppendPoint>,
    /// With `append`: the name of the volume's chunk that holds every change since its snapshot
    /// (the last one an append wrote, when this record knows it), so that the next append reads
    /// the snapshot and that chunk only, not every chunk before it.
    pub tip: Option<String>,
}

impl VolumeIndex {
    /// Index a volume from what was read of it, stored in files whose key is `key`.
    pub fn build(contents: &Contents, key: [u8; 16]) -> VolumeIndex {
        let mut vi = VolumeIndex {
            id: contents.id,
            key,
            created_at: contents.created_at,
            len: 0,
            min_created: i64::MAX,
            max_created: i64::MIN,
            marks: contents.marks.clone(),
            heads: contents.heads.iter().map(|h| h.0).collect(),
            kinds: Vec::new(),
            starred: 0,
            answers: Vec::new(),
            bytes: None,
            append: contents.append.clone(),
            tip: None,
        };
        for item in &contents.items {
            vi.count(item);
        }
        vi
    }

    /// Counts one more item of the volume in its figures: how [`VolumeIndex::build`] counts
    /// each, and how a write that appends an item updates the record without reading the rest.
    pub fn count(&mut self, item: &Item) {
        self.len += 1;
        if self.len as usize >= VOLUME_CAPACITY {
            self.append = None;
            self.tip = None;
        }
        self.min_created = self.min_created.min(item.created_at);
        self.max_created = self.max_created.max(item.created_at);
        if !item.deleted {
            let kind = item.kind.as_str();
            match self.kinds.binary_search_by(|(k, _)| k.as_str().cmp(kind)) {
                Ok(at) => self.kinds[at].1 += 1,
                Err(at) => self.kinds.insert(at, (kind.to_owned(), 1)),
            }
            self.starred += u32::from(item.starred);
        }
        if let Some(re) = item.ritual.re
            && let Err(at) = self.answers.binary_search(&re)
        {
            self.answers.insert(at, re);
        }
    }

    pub fn summary(&self) -> duet_core::journal::VolumeSummary {
        duet_core::journal::VolumeSummary {
            id: self.id,
            created_at: self.created_at,
            len: self.len as usize,
        }
    }
}

/// A check over what a write builds on without loading the volume: the record's volume, key
/// and heads, the append point and the chunk it builds on. A write whose change named a damaged
/// head or object would never load, so the manifest does not trust these bytes on their own.
fn append_check(vi: &VolumeIndex, at: &AppendPoint, tip: Option<&str>) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"duet append point\0");
    hasher.update(vi.id.as_bytes());
    hasher.update(&vi.key);
    for head in &vi.heads {
        hasher.update(head);
    }
    hasher.update(&at.items_counter.to_le_bytes());
    hasher.update(&(at.items_actor.len() as u64).to_le_bytes());
    hasher.update(&at.items_actor);
    hasher.update(&at.max_op.to_le_bytes());
    if let Some(tip) = tip {
        hasher.update(&(tip.len() as u64).to_le_bytes());
        hasher.update(tip.as_bytes());
    }
    hasher.finalize().as_bytes()[..16]
        .try_into()
        .expect("16 bytes")
}

/// What `--contains` and id lookups need about a volume.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeSearch {
    pub key: [u8; 16],
    pub ids: Vec<ItemId>,
    pub bloom: TrigramBloom,
}

impl VolumeSearch {
    pub fn build(key: [u8; 16], items: &[Item]) -> VolumeSearch {
        let mut bloom = TrigramBloom::default();
        for item in items {
            bloom.insert_text(&item.body);
        }
        VolumeSearch {
            key,
            ids: items.iter().map(|i| i.id).collect(),
            bloom,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct JournalIndex {
    pub volumes: BTreeMap<VolumeId, VolumeIndex>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchIndex {
    pub volumes: BTreeMap<VolumeId, VolumeSearch>,
}

impl JournalIndex {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(16 + self.volumes.len() * 192));
        w.0.extend_from_slice(META_MAGIC);
        w.u32(self.volumes.len());
        for v in self.volumes.values() {
            encode_record(&mut w, v);
        }
        w.0
    }

    /// Decode a manifest; `None` for anything malformed (it is then rebuilt).
    pub fn decode(bytes: &[u8]) -> Option<JournalIndex> {
        let mut r = Reader(bytes);
        let layout = Layout::of(r.take(8)?)?;
        let mut volumes = BTreeMap::new();
        for _ in 0..r.u32()? {
            let vi = match layout.framed {
                true => {
                    let len = r.u32()? as usize;
                    decode_framed(r.take(len)?, layout)?
                }
                false => decode_record(&mut r, layout)?,
            };
            volumes.insert(vi.id, vi);
        }
        r.0.is_empty().then_some(JournalIndex { volumes })
    }
}

/// What a manifest of each version holds.
#[derive(Clone, Copy)]
struct Layout {
    /// Each record after its length (9).
    framed: bool,
    /// Tips (8), append points (7), sizes (6).
    tips: bool,
    appends: bool,
    sized: bool,
}

impl Layout {
    const CURRENT: Layout = Layout {
        framed: true,
        tips: true,
        appends: true,
        sized: true,
    };

    fn of(magic: &[u8]) -> Option<Layout> {
        // Before 9 no record was framed; each version before added one field.
        let unframed = |tips, appends, sized| Layout {
            framed: false,
            tips,
            appends,
            sized,
        };
        Some(match magic {
            m if m == META_MAGIC => Layout::CURRENT,
            m if m == META_MAGIC_V8 => unframed(true, true, true),
            m if m == META_MAGIC_V7 => unframed(false, true, true),
            m if m == META_MAGIC_V6 => unframed(false, false, true),
            m if m == META_MAGIC_V5 => unframed(false, false, false),
            _ => return None,
        })
    }
}

/// One volume's record, after its length (so that a reader can step over it unread).
fn encode_record(w: &mut Writer, v: &VolumeIndex) {
    let start = w.0.len();
    w.u32(0);
    w.0.extend_from_slice(v.id.as_bytes());
    w.0.extend_from_slice(&v.key);
    w.i64(v.created_at);
    w.u32(v.len as usize);
    w.i64(v.min_created);
    w.i64(v.max_created);
    w.u32(v.marks.len());
    for (id, at) in &v.marks {
        w.0.extend_from_slice(id.as_bytes());
        w.i64(*at);
    }
    w.u32(v.heads.len());
    for h in &v.heads {
        w.0.extend_from_slice(h);
    }
    w.u32(v.kinds.len());
    for (kind, n) in &v.kinds {
        w.u32(kind.len());
        w.0.extend_from_slice(kind.as_bytes());
        w.u32(*n as usize);
    }
    w.u32(v.starred as usize);
    w.u32(v.answers.len());
    for id in &v.answers {
        w.0.extend_from_slice(id.as_bytes());
    }
    w.i64(v.bytes.and_then(|b| i64::try_from(b).ok()).unwrap_or(-1));
    match &v.append {
        None => w.0.push(0),
        Some(at) => {
            w.0.push(1);
            w.i64(at.items_counter as i64);
            w.u32(at.items_actor.len());
            w.0.extend_from_slice(&at.items_actor);
            w.i64(at.max_op as i64);
            let tip = v.tip.as_deref().unwrap_or("");
            w.u32(tip.len());
            w.0.extend_from_slice(tip.as_bytes());
            w.0.extend_from_slice(&append_check(v, at, v.tip.as_deref()));
        }
    }
    let len = (w.0.len() - start - 4) as u32;
    w.0[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// A framed record: all of `bytes`, nothing left over.
fn decode_framed(bytes: &[u8], layout: Layout) -> Option<VolumeIndex> {
    let mut r = Reader(bytes);
    let vi = decode_record(&mut r, layout)?;
    r.0.is_empty().then_some(vi)
}

/// The head of a record: what [`ManifestView`] reads of every volume.
fn decode_head(r: &mut Reader<'_>) -> Option<(VolumeId, [u8; 16], i64, u32)> {
    Some((VolumeId(r.array()?), r.array()?, r.i64()?, r.u32()?))
}

fn decode_record(r: &mut Reader<'_>, layout: Layout) -> Option<VolumeIndex> {
    let (id, key, created_at, len) = decode_head(r)?;
    let min_created = r.i64()?;
    let max_created = r.i64()?;
    let marks = (0..r.u32()?)
        .map(|_| Some((ItemId(r.array()?), r.i64()?)))
        .collect::<Option<_>>()?;
    let heads = (0..r.u32()?).map(|_| r.array()).collect::<Option<_>>()?;
    let kinds = (0..r.u32()?)
        .map(|_| {
            let len = r.u32()? as usize;
            let kind = String::from_utf8(r.take(len)?.to_vec()).ok()?;
            Some((kind, r.u32()?))
        })
        .collect::<Option<_>>()?;
    let starred = r.u32()?;
    let answers = (0..r.u32()?)
        .map(|_| r.array().map(ItemId))
        .collect::<Option<_>>()?;
    let bytes = match layout.sized {
        true => u64::try_from(r.i64()?).ok(),
        false => None,
    };
    let append = match layout.appends.then(|| r.u8()).flatten() {
        None | Some(0) => None,
        Some(1) => {
            let at = AppendPoint {
                items_counter: u64::try_from(r.i64()?).ok()?,
                items_actor: r.raw_text()?.to_vec(),
                max_op: u64::try_from(r.i64()?).ok()?,
            };
            let tip = match layout.tips {
                true => Some(r.text()?).filter(|t| !t.is_empty()).map(str::to_owned),
                false => None,
            };
            Some((at, tip, r.array::<16>()?))
        }
        Some(_) => return None,
    };
    let mut vi = VolumeIndex {
        id,
        key,
        created_at,
        len,
        min_created,
        max_created,
        marks,
        heads,
        kinds,
        starred,
        answers,
        bytes,
        append: None,
        tip: None,
    };
    // An append point whose check fails (a damaged cache) is dropped: the next write
    // loads the volume instead of building on it. A full volume's (written by an
    // earlier version) is dropped unchecked: no write uses it.
    if let Some((at, tip, check)) = append.filter(|_| (len as usize) < VOLUME_CAPACITY)
        && append_check(&vi, &at, tip.as_deref()) == check
    {
        vi.append = Some(at);
        vi.tip = tip;
    }
    Some(vi)
}

/// A manifest as the common write reads it: each volume's id, key and summary from the head of
/// its record, without decoding the rest (a manifest of 391 volumes took 0.2 ms to decode and
/// 0.04 ms to encode, two thirds of what a write spent on it). The write decodes the open
/// volume's record alone ([`ManifestView::record`]) and puts its new record in the place of the
/// old one ([`ManifestView::replaced`]); every other byte is written back as it was read.
/// Only the current format (records framed by their length) is read this way.
pub struct ManifestView {
    bytes: Vec<u8>,
    /// In the order of the file, which is the order of the ids.
    heads: Vec<RecordHead>,
}

struct RecordHead {
    id: VolumeId,
    key: [u8; 16],
    created_at: i64,
    len: u32,
    /// The record, its length not included.
    at: std::ops::Range<usize>,
}

impl ManifestView {
    pub fn parse(bytes: Vec<u8>) -> Option<ManifestView> {
        let mut r = Reader(&bytes);
        if r.take(8)? != META_MAGIC {
            return None;
        }
        let count = r.u32()? as usize;
        let mut heads = Vec::with_capacity(count.min(bytes.len() / 40));
        for _ in 0..count {
            let len = r.u32()? as usize;
            let start = bytes.len() - r.0.len();
            let (id, key, created_at, count) = decode_head(&mut Reader(r.take(len)?))?;
            if heads.last().is_some_and(|h: &RecordHead| h.id >= id) {
                return None;
            }
            heads.push(RecordHead {
                id,
                key,
                created_at,
                len: count,
                at: start..start + len,
            });
        }
        if !r.0.is_empty() {
            return None;
        }
        Some(ManifestView { bytes, heads })
    }

    /// Whether the records are exactly the volumes listed, each with the key of its files.
    pub fn matches(&self, listing: &Listing) -> bool {
        self.heads.len() == listing.volumes.len()
            && self
                .heads
                .iter()
                .zip(&listing.volumes)
                .all(|(h, (vol, files))| h.id == *vol && h.key == Listing::volume_key(files))
    }

    pub fn summaries(&self) -> impl Iterator<Item = duet_core::journal::VolumeSummary> + '_ {
        self.heads
            .iter()
            .map(|h| duet_core::journal::VolumeSummary {
                id: h.id,
                created_at: h.created_at,
                len: h.len as usize,
            })
    }

    fn head(&self, vol: VolumeId) -> Option<&RecordHead> {
        let at = self.heads.binary_search_by_key(&vol, |h| h.id).ok()?;
        self.heads.get(at)
    }

    /// The whole record of `vol`, as [`JournalIndex::decode`] reads it.
    pub fn record(&self, vol: VolumeId) -> Option<VolumeIndex> {
        let head = self.head(vol)?;
        decode_framed(&self.bytes[head.at.clone()], Layout::CURRENT)
    }

    /// The manifest with `vi` in place of its volume's record, which it must hold.
    pub fn replaced(&self, vi: &VolumeIndex) -> Option<Vec<u8>> {
        let head = self.head(vi.id)?;
        let mut w = Writer(Vec::with_capacity(self.bytes.len() + 256));
        w.0.extend_from_slice(&self.bytes[..head.at.start - 4]);
        encode_record(&mut w, vi);
        w.0.extend_from_slice(&self.bytes[head.at.end..]);
        Some(w.0)
    }
}

/// The search file is bit-sliced: row `r` holds bit `r` of every volume's
/// Bloom filter, one bit per volume. A query reads only the rows of its own
/// trigrams, a few dozen bytes each, however many volumes there are.
///
/// `magic, u32 n, n × (volume id, key, u32 id count), all ids, BITS rows of
/// ceil(n / 8) bytes`.
impl SearchIndex {
    pub fn encode(&self) -> Vec<u8> {
        let n = self.volumes.len();
        let row_bytes = n.div_ceil(8);
        let mut w = Writer(Vec::new());
        w.0.extend_from_slice(SEARCH_MAGIC);
        w.u32(n);
        for (vol, s) in &self.volumes {
            w.0.extend_from_slice(vol.as_bytes());
            w.0.extend_from_slice(&s.key);
            w.u32(s.ids.len());
        }
        for s in self.volumes.values() {
            for id in &s.ids {
                w.0.extend_from_slice(id.as_bytes());
            }
        }
        let rows_at = w.0.len();
        w.0.resize(rows_at + BITS as usize * row_bytes, 0);
        for (c, s) in self.volumes.values().enumerate() {
            for (byte_at, &byte) in s.bloom.as_bytes().iter().enumerate() {
                for bit in 0..8 {
                    if byte & (1 << bit) != 0 {
                        let row = byte_at * 8 + bit;
                        w.0[rows_at + row * row_bytes + c / 8] |= 1 << (c % 8);
                    }
                }
            }
        }
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Option<SearchIndex> {
        let mut r = Reader(bytes);
        let header = SearchHeader::parse(&mut r)?;
        let mut volumes = BTreeMap::new();
        let mut columns = Vec::with_capacity(header.columns.len());
        for (vol, key, n_ids) in &header.columns {
            let ids = (0..*n_ids)
                .map(|_| r.array().map(ItemId))
                .collect::<Option<Vec<_>>>()?;
            columns.push((
                *vol,
                VolumeSearch {
                    key: *key,
                    ids,
                    bloom: TrigramBloom::default(),
                },
            ));
        }
        let row_bytes = header.row_bytes();
        let rows = r.take(BITS as usize * row_bytes)?;
        if !r.0.is_empty() {
            return None;
        }
        for (row_at, row) in rows
            .chunks(row_bytes.max(1))
            .enumerate()
            .take(BITS as usize)
        {
            for (byte_at, &byte) in row.iter().enumerate() {
                for bit in 0..8 {
                    if byte & (1 << bit) != 0 {
                        columns
                            .get_mut(byte_at * 8 + bit)?
                            .1
                            .bloom
                            .set_bit(row_at as u64);
                    }
                }
            }
        }
        volumes.extend(columns);
        Some(SearchIndex { volumes })
    }
}

/// One volume's item ids in the search file, with the key they were read under.
pub type SearchIds = (VolumeId, [u8; 16], Vec<ItemId>);

/// The columns of a search file, without its rows.
pub struct SearchHeader {
    pub columns: Vec<(VolumeId, [u8; 16], u32)>,
    rows_at: u64,
}

impl SearchHeader {
    fn parse(r: &mut Reader<'_>) -> Option<SearchHeader> {
        if r.take(8)? != SEARCH_MAGIC {
            return None;
        }
        let n = r.u32()? as usize;
        if n.saturating_mul(28) > r.0.len() {
            return None;
        }
        let columns: Vec<_> = (0..n)
            .map(|_| Some((VolumeId(r.array()?), r.array()?, r.u32()?)))
            .collect::<Option<_>>()?;
        let ids: u64 = columns.iter().map(|c| u64::from(c.2)).sum();
        Some(SearchHeader {
            rows_at: 12 + 28 * n as u64 + ids * 8,
            columns,
        })
    }

    fn row_bytes(&self) -> usize {
        self.columns.len().div_ceil(8)
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, n: usize) {
        self.0.extend_from_slice(&(n as u32).to_le_bytes());
    }
    fn i64(&mut self, n: i64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }
}

/// Reads the cache files' little-endian fields; `None` past the end.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }
    /// A `u32` length and that many bytes of UTF-8.
    pub(crate) fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.raw_text()?).ok()
    }
    /// What [`Reader::text`] reads, its UTF-8 not checked yet.
    pub(crate) fn raw_text(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
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

    fn items_dir(&self) -> PathBuf {
        // `.3`: the binary form of `items_file` (`items.2` held JSON, `items` JSON without
        // the ritual fields; `write_items` removes them when it starts this one).
        self.dir.join("items.3")
    }

    fn items_name(journal: JournalId, vol: VolumeId, key: &[u8; 16]) -> String {
        format!("{journal}.{vol}.{}.items", hex(key))
    }

    fn manifest_name(journal: JournalId) -> String {
        format!("{journal}.manifest")
    }

    pub fn read_manifest(&self, journal: JournalId) -> JournalIndex {
        fs::read(self.dir.join(Self::manifest_name(journal)))
            .ok()
            .and_then(|bytes| JournalIndex::decode(&bytes))
            .unwrap_or_default()
    }

    /// The manifest as the common write reads it; `None` when missing, malformed or written
    /// by an earlier version.
    pub fn read_manifest_view(&self, journal: JournalId) -> Option<ManifestView> {
        fs::read(self.dir.join(Self::manifest_name(journal)))
            .ok()
            .and_then(ManifestView::parse)
    }

    /// Cache writes may fail (a read-only home, a full disk): the cache is
    /// only an accelerator, so failures are ignored.
    pub fn write_manifest(&self, journal: JournalId, index: &JournalIndex) {
        self.write_manifest_bytes(journal, &index.encode());
    }

    /// Like [`IndexFiles::write_manifest`], the manifest already encoded.
    pub fn write_manifest_bytes(&self, journal: JournalId, bytes: &[u8]) {
        self.write(&Self::manifest_name(journal), bytes);
    }

    pub fn read_search(&self, journal: JournalId) -> SearchIndex {
        fs::read(self.dir.join(format!("{journal}.search")))
            .ok()
            .and_then(|bytes| SearchIndex::decode(&bytes))
            .unwrap_or_default()
    }

    /// Which volumes of the search file may hold a text whose filter bits
    /// are `bits`: reads the header and one row per bit. `None` if the file
    /// is missing or damaged.
    pub fn search_rows(
        &self,
        journal: JournalId,
        bits: &[u64],
    ) -> Option<(SearchHeader, Vec<bool>)> {
        use std::os::unix::fs::FileExt;
        let (file, len, header) = self.search_header(journal)?;
        let row_bytes = header.row_bytes();
        if header.rows_at + BITS * row_bytes as u64 != len {
            return None;
        }
        let mut acc = vec![0xffu8; row_bytes];
        let mut row = vec![0u8; row_bytes];
        for &bit in bits {
            file.read_exact_at(&mut row, header.rows_at + bit * row_bytes as u64)
                .ok()?;
            for (a, r) in acc.iter_mut().zip(&row) {
                *a &= r;
            }
        }
        let hits = (0..header.columns.len())
            .map(|c| acc[c / 8] & (1 << (c % 8)) != 0)
            .collect();
        Some((header, hits))
    }

    /// The search file opened at the end of its header, with its length and the header.
    fn search_header(&self, journal: JournalId) -> Option<(fs::File, u64, SearchHeader)> {
        use std::io::Read;
        let mut file = fs::File::open(self.dir.join(format!("{journal}.search"))).ok()?;
        let len = file.metadata().ok()?.len();
        let mut head = [0u8; 12];
        file.read_exact(&mut head).ok()?;
        let n = u32::from_le_bytes(head[8..12].try_into().ok()?) as u64;
        if 12 + n * 28 > len {
            return None;
        }
        let mut columns = vec![0u8; (n * 28) as usize];
        file.read_exact(&mut columns).ok()?;
        let mut all = head.to_vec();
        all.extend_from_slice(&columns);
        let header = SearchHeader::parse(&mut Reader(&all))?;
        (header.rows_at <= len).then_some((file, len, header))
    }

    /// The item ids of each volume in the search file that `wanted` takes, with the key each
    /// volume was built for (every volume of the file is named, with no ids if none is taken):
    /// the header and the ids alone are read, not the filter rows, and only the ids taken are
    /// kept. `None` if missing or damaged.
    pub fn search_ids(
        &self,
        journal: JournalId,
        wanted: impl Fn(&ItemId) -> bool,
    ) -> Option<Vec<SearchIds>> {
        use std::io::Read;
        let (file, _, header) = self.search_header(journal)?;
        // A volume's ids in one read from the buffer, not eight bytes per call (that was most
        // of `show` at 100,000 items); one buffer for all of them (800 KB) cost more in page
        // faults. The header was checked to fit in the file.
        let mut file = std::io::BufReader::with_capacity(64 * 1024, file);
        let mut bytes = Vec::new();
        header
            .columns
            .iter()
            .map(|(vol, key, n)| {
                bytes.resize(*n as usize * 8, 0);
                file.read_exact(&mut bytes).ok()?;
                let ids = bytes
                    .chunks_exact(8)
                    .map(|b| ItemId(b.try_into().expect("eight bytes")))
                    .filter(&wanted)
                    .collect();
                Some((*vol, *key, ids))
            })
            .collect()
    }

    pub fn write_search(&self, journal: JournalId, search: &SearchIndex) {
        self.write(&format!("{journal}.search"), &search.encode());
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        if create_private_dir(&self.dir).is_ok() {
            let _ = write_checked_cache(&self.dir, name, bytes);
        }
    }

    pub fn read_items(
        &self,
        journal: JournalId,
        vol: VolumeId,
        key: &[u8; 16],
    ) -> Option<Vec<Item>> {
        self.read_items_where(journal, vol, key, &|_| true)
    }

    /// The items of the cached volume whose body `keep` takes (the others are not built).
    pub fn read_items_where(
        &self,
        journal: JournalId,
        vol: VolumeId,
        key: &[u8; 16],
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Option<Vec<Item>> {
        use std::io::Read;
        thread_local! {
            /// One buffer for every items file a thread reads: a fresh one each time (they are
            /// ~180 KiB, past malloc's mmap threshold) costs page faults on zeroed pages for every
            /// volume, which was a fifth of a search across twenty volumes.
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let path = self.items_dir().join(Self::items_name(journal, vol, key));
        let mut file = fs::File::open(path).ok()?;
        BUFFER.with_borrow_mut(|bytes| {
            bytes.clear();
            file.read_to_end(bytes).ok()?;
            let items = crate::items_file::decode(bytes, keep);
            // A rare huge file does not stay held for the rest of the process.
            if bytes.capacity() > 4 << 20 {
                *bytes = Vec::new();
            }
            items
        })
    }

    pub fn write_items(
        &self,
        journal: JournalId,
        vi: &VolumeIndex,
        items: &[Item],
        old_key: Option<[u8; 16]>,
    ) {
        let dir = self.items_dir();
        let first = !dir.exists();
        if create_private_dir(&dir).is_err() {
            return;
        }
        if first {
            for earlier in ["items.2", "items"] {
                let _ = fs::remove_dir_all(self.dir.join(earlier));
            }
        }
        self.write_items_file(journal, vi, &crate::items_file::encode(items), old_key);
    }

    /// The items file of the cached volume as it is stored (see [`crate::items_file`]).
    pub fn read_items_file(
        &self,
        journal: JournalId,
        vol: VolumeId,
        key: &[u8; 16],
    ) -> Option<Vec<u8>> {
        fs::read(self.items_dir().join(Self::items_name(journal, vol, key))).ok()
    }

    /// Stores the items file of `vi` (made by [`crate::items_file`]) and removes the one of the
    /// volume's files before (`old_key`).
    pub fn write_items_file(
        &self,
        journal: JournalId,
        vi: &VolumeIndex,
        bytes: &[u8],
        old_key: Option<[u8; 16]>,
    ) {
        let dir = self.items_dir();
        let _ = write_cache(&dir, &Self::items_name(journal, vi.id, &vi.key), bytes);
        if let Some(old) = old_key.filter(|old| *old != vi.key) {
            let _ = fs::remove_file(dir.join(Self::items_name(journal, vi.id, &old)));
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::VolumeFile;

    /// A manifest of one record as version 8 wrote it: the record's length taken out.
    fn unframed(bytes: &[u8]) -> Vec<u8> {
        let mut v8 = META_MAGIC_V8.to_vec();
        v8.extend_from_slice(&bytes[8..12]);
        v8.extend_from_slice(&bytes[16..]);
        v8
    }

    /// The record of a volume `n` holding `items` entries, keyed by the files it is given.
    fn record(n: u8, items: u8, files: &[VolumeFile]) -> VolumeIndex {
        let mut vol = duet_core::Volume::create([n; 16], JournalId([2; 16]), VolumeId([n; 8]), 10);
        for i in 0..items {
            vol.add(&Item {
                id: ItemId([n.wrapping_mul(31).wrapping_add(i); 8]),
                kind: if i % 2 == 0 {
                    duet_core::Kind::Entry
                } else {
                    duet_core::Kind::Thanks
                },
                created_at: 100 + i64::from(i),
                edited_at: None,
                body: format!("line {i} of volume {n}"),
                tags: vec![],
                starred: i == 1,
                deleted: false,
                ritual: Default::default(),
            })
            .unwrap();
        }
        VolumeIndex::build(&vol.contents(), Listing::volume_key(files))
    }

    fn files_of(n: u8, count: u8) -> Vec<VolumeFile> {
        (0..count)
            .map(|i| VolumeFile {
                kind: crate::volumes::FileKind::Chunk,
                hash: format!("h{n}x{i}"),
                name: format!("{}.h{n}x{i}.chunk", VolumeId([n; 8])),
            })
            .collect()
    }

    #[test]
    fn a_write_takes_one_record_out_of_the_manifest_and_puts_it_back_in_place() {
        let mut listing = Listing::default();
        let mut index = JournalIndex::default();
        for (n, items) in [(3u8, 4u8), (7, 2), (9, 5)] {
            let files = files_of(n, n % 4 + 1);
            index
                .volumes
                .insert(VolumeId([n; 8]), record(n, items, &files));
            listing.volumes.insert(VolumeId([n; 8]), files);
        }
        let bytes = index.encode();
        let view = ManifestView::parse(bytes.clone()).unwrap();
        assert!(view.matches(&listing));
        let summaries: Vec<_> = view.summaries().collect();
        let expected: Vec<_> = index.volumes.values().map(VolumeIndex::summary).collect();
        assert_eq!(summaries, expected);
        let vol = VolumeId([7; 8]);
        let mut vi = view.record(vol).unwrap();
        assert_eq!(vi, index.volumes[&vol]);
        assert!(vi.append.is_some());
        // The record changed as an append changes it, longer than it was: the manifest with it
        // in place is byte for byte the manifest encoded whole.
        vi.tip = Some("a-longer-name-than-before.chunk".into());
        vi.kinds.push(("question".into(), 1));
        vi.len += 1;
        let replaced = view.replaced(&vi).unwrap();
        index.volumes.insert(vol, vi.clone());
        assert_eq!(replaced, index.encode());
        assert_eq!(JournalIndex::decode(&replaced), Some(index.clone()));
        assert_eq!(view.record(VolumeId([5; 8])), None);
        // Another volume's files changed, one more volume or one fewer: not a match.
        let mut stale = listing.clone();
        stale.volumes.get_mut(&VolumeId([9; 8])).unwrap().pop();
        assert!(!view.matches(&stale));
        let mut more = listing.clone();
        more.volumes.insert(VolumeId([11; 8]), files_of(11, 1));
        assert!(!view.matches(&more));
        let mut fewer = listing.clone();
        fewer.volumes.remove(&VolumeId([3; 8]));
        assert!(!view.matches(&fewer));
        // Only this version's manifest is read this way; a cut or padded one is not at all.
        let mut one = JournalIndex::default();
        one.volumes.insert(vol, vi);
        assert!(ManifestView::parse(one.encode()).is_some());
        assert!(ManifestView::parse(unframed(&one.encode())).is_none());
        for cut in [0, 7, 12, 20, bytes.len() - 1] {
            assert!(
                ManifestView::parse(bytes[..cut].to_vec()).is_none(),
                "cut at {cut}"
            );
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(ManifestView::parse(padded).is_none());
        // Records out of the order of their ids (not as this version writes them): not read.
        let first = 12 + 4 + u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let second_end =
            first + 4 + u32::from_le_bytes(bytes[first..first + 4].try_into().unwrap()) as usize;
        let mut swapped = bytes[..12].to_vec();
        swapped.extend_from_slice(&bytes[first..second_end]);
        swapped.extend_from_slice(&bytes[12..first]);
        swapped.extend_from_slice(&bytes[second_end..]);
        assert!(ManifestView::parse(swapped).is_none());
    }

    #[test]
    fn indexes_round_trip_and_reject_damage() {
        let mut vol = duet_core::Volume::create([1; 16], JournalId([2; 16]), VolumeId([3; 8]), 10);
        vol.add(&Item {
            id: ItemId([4; 8]),
            kind: duet_core::Kind::Entry,
            created_at: 50,
            edited_at: None,
            body: "hello Lisbon".into(),
            tags: vec![],
            starred: false,
            deleted: false,
            ritual: Default::default(),
        })
        .unwrap();
        vol.set_mark(ItemId([9; 8]), true, 77).unwrap();
        let contents = vol.contents();
        let items = contents.items.clone();
        let vi = VolumeIndex::build(&contents, [5; 16]);
        assert_eq!(vi.heads.len(), 1);
        assert_eq!(vi.marks, vec![(ItemId([9; 8]), 77)]);
        let search = VolumeSearch::build([5; 16], &items);
        assert!(search.bloom.may_contain("lisbon"));

        let mut index = JournalIndex::default();
        index.volumes.insert(vi.id, vi.clone());
        let unsized_bytes = index.encode();
        assert_eq!(JournalIndex::decode(&unsized_bytes), Some(index.clone()));
        index.volumes.get_mut(&vi.id).unwrap().bytes = Some(70_000);
        assert!(vi.append.is_some(), "a loaded volume has an append point");
        // Written by the version before (7): no tip, whose field it lacks; its append point
        // reads, checked as that version checked it.
        let untipped = unframed(&index.encode());
        let mut v7 = untipped[..untipped.len() - 20].to_vec();
        v7.extend_from_slice(&untipped[untipped.len() - 16..]);
        v7[..8].copy_from_slice(META_MAGIC_V7);
        assert_eq!(JournalIndex::decode(&v7), Some(index.clone()));
        let tip = "3ta7f2bcp4zkq.vz3mnh6dxwqaotqlkrbnzrs3ea.chunk";
        index.volumes.get_mut(&vi.id).unwrap().tip = Some(tip.into());
        let bytes = index.encode();
        assert_eq!(JournalIndex::decode(&bytes), Some(index.clone()));
        // Written by version 8, each record without its length: read the same.
        assert_eq!(JournalIndex::decode(&unframed(&bytes)), Some(index.clone()));
        // A flipped byte anywhere in what a write builds on (a head, the append point, the tip,
        // the check) drops the append point and the tip, and nothing else.
        let head_at = bytes.windows(32).position(|w| w == vi.heads[0]).unwrap();
        // From the end: the check (16 bytes), the tip (n), its length (4, not flipped: the
        // record would no longer parse), max_op (8), the actor (16), its length (4, likewise),
        // the counter (8).
        let n = tip.len();
        let ends = [1, 9, 17, 16 + n, 21 + n, 30 + n, 50 + n].map(|back| bytes.len() - back);
        for at in ends.into_iter().chain([head_at + 5]) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            let read = JournalIndex::decode(&damaged).unwrap();
            assert_eq!(read.volumes[&vi.id].append, None, "byte {at}");
            assert_eq!(read.volumes[&vi.id].tip, None, "byte {at}");
            assert_eq!(read.volumes[&vi.id].len, vi.len);
        }
        // The manifests of the versions before: without append points (6), without sizes
        // either (5). Both read, what they lack unknown.
        let mut bare = index.clone();
        bare.volumes.get_mut(&vi.id).unwrap().append = None;
        let bare = unframed(&bare.encode());
        assert_eq!(bare.last(), Some(&0));
        let mut v6 = bare[..bare.len() - 1].to_vec();
        v6[..8].copy_from_slice(META_MAGIC_V6);
        let old = JournalIndex::decode(&v6).unwrap();
        assert_eq!(old.volumes[&vi.id].append, None);
        assert_eq!(old.volumes[&vi.id].bytes, Some(70_000));
        let mut v5 = bare[..bare.len() - 9].to_vec();
        v5[..8].copy_from_slice(META_MAGIC_V5);
        let old = JournalIndex::decode(&v5).unwrap();
        assert_eq!(old.volumes[&vi.id].bytes, None);
        assert_eq!(old.volumes[&vi.id].heads, vi.heads);
        for cut in [0, 7, 9, 30, bytes.len() - 1] {
            assert_eq!(JournalIndex::decode(&bytes[..cut]), None);
        }
        let mut s = SearchIndex::default();
        s.volumes.insert(VolumeId([3; 8]), search);
        let bytes = s.encode();
        assert_eq!(SearchIndex::decode(&bytes), Some(s));
        assert_eq!(SearchIndex::decode(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn bit_sliced_rows_answer_like_the_filters() {
        let dir = tempfile::tempdir().unwrap();
        let files = IndexFiles::new(dir.path().to_path_buf());
        let journal = JournalId([1; 16]);
        let mut search = SearchIndex::default();
        let texts = [
            "a walk to the lighthouse",
            "zanzibar at dawn",
            "soup again",
            "more zanzibar stories",
        ];
        for (n, text) in texts.iter().enumerate() {
            let item = Item {
                id: ItemId([n as u8; 8]),
                kind: duet_core::Kind::Entry,
                created_at: 0,
                edited_at: None,
                body: (*text).into(),
                tags: vec![],
                starred: false,
                deleted: false,
                ritual: Default::default(),
            };
            search.volumes.insert(
                VolumeId([n as u8; 8]),
                VolumeSearch::build([n as u8; 16], &[item]),
            );
        }
        assert_eq!(SearchIndex::decode(&search.encode()), Some(search.clone()));
        files.write_search(journal, &search);
        let (header, hits) = files
            .search_rows(journal, &duet_core::bloom::needle_bits("Zanzibar"))
            .unwrap();
        let found: Vec<VolumeId> = header
            .columns
            .iter()
            .zip(hits)
            .filter(|(_, h)| *h)
            .map(|(c, _)| c.0)
            .collect();
        assert_eq!(found, vec![VolumeId([1; 8]), VolumeId([3; 8])]);
    }
}
