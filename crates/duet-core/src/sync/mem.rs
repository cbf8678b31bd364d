//! A replica held in memory, for the session's tests and the fuzz targets: [`Docs`] with every
//! volume loaded, and an owner's writes.

use automerge::AutoCommit;

use super::Docs;
use crate::id::{ItemId, JournalId, VolumeId};
use crate::item::{Item, Kind};
use crate::volume::{VOLUME_CAPACITY, Volume};

/// A replica held in memory: every volume loaded.
pub type MemReplica = Docs;

impl Docs {
    /// Write an item into a journal the way an owner's device does.
    pub fn write(&mut self, journal: JournalId, n: u64, actor: u8) -> ItemId {
        let id = ItemId(n.to_be_bytes());
        let open = self
            .iter()
            .filter(|((j, _), _)| *j == journal)
            .filter_map(|((_, v), d)| {
                let vol = Volume::from_doc([actor; 16], d.clone()).ok()?;
                (vol.len() < VOLUME_CAPACITY).then_some(*v)
            })
            .last();
        let mut vol = match open {
            Some(v) => {
                let doc = std::mem::take(self.doc_mut(journal, v).expect("listed"));
                Volume::from_doc([actor; 16], doc).expect("a volume")
            }
            None => Volume::create(
                [actor; 16],
                journal,
                VolumeId((n ^ 0xabcd).to_be_bytes()),
                0,
            ),
        };
        vol.add(&Item {
            id,
            kind: Kind::Entry,
            created_at: n as i64,
            edited_at: None,
            body: format!("item {n}"),
            tags: vec![],
            starred: false,
            deleted: false,
            ritual: Default::default(),
        })
        .expect("an item fits");
        self.insert(journal, vol.id(), vol.into_doc());
        id
    }

    /// Every item of a journal, by id.
    pub fn items(&self, journal: JournalId) -> Vec<Item> {
        let mut out: Vec<Item> = self
            .iter()
            .filter(|((j, _), _)| *j == journal)
            .filter_map(|(_, d)| Volume::from_doc([0; 16], d.clone()).ok())
            .flat_map(|v| v.items())
            .collect();
        out.sort_by_key(|i| i.id);
        out
    }

    /// A copy of one volume's document (tests forge from it).
    pub fn doc_copy(&self, journal: JournalId, volume: VolumeId) -> Option<AutoCommit> {
        self.iter()
            .find(|(k, _)| **k == (journal, volume))
            .map(|(_, d)| d.clone())
    }
}

/// An in-memory replica as the backend of another session's [`Docs`]: what a store on disk is
/// to a real session, so the tests exercise loading on demand.
impl super::Backend for Docs {
    fn stored_heads(
        &mut self,
        journal: JournalId,
    ) -> std::collections::BTreeMap<VolumeId, Vec<automerge::ChangeHash>> {
        self.inventory(journal)
    }

    fn load_doc(&mut self, journal: JournalId, volume: VolumeId) -> Option<AutoCommit> {
        self.doc_copy(journal, volume)
    }

    fn saved_bytes(&mut self, journal: JournalId, volume: VolumeId) -> Option<Vec<u8>> {
        // Half the volumes are handed over as saved bytes, half loaded and saved by the session.
        if volume.as_bytes()[7].is_multiple_of(2) {
            self.doc_mut(journal, volume).map(|d| d.save())
        } else {
            None
        }
    }

    fn signatures(
        &mut self,
        journal: JournalId,
        volume: VolumeId,
    ) -> Vec<crate::authority::SignedHeads> {
        self.signed(journal, volume).to_vec()
    }
}

impl Docs {
    /// Takes back what a session on `docs` loaded and changed, statements included.
    pub fn absorb(&mut self, docs: Docs) {
        let statements: Vec<_> = docs
            .changed_signatures()
            .into_iter()
            .flat_map(|(_, all)| all.to_vec())
            .collect();
        for statement in statements {
            self.add_signed(statement);
        }
        for ((journal, volume), doc) in docs.into_docs() {
            self.insert(journal, volume, doc);
        }
    }
}
