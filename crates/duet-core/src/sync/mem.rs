//! A replica held in memory, for the session's tests and the fuzz targets.

use std::collections::BTreeMap;

use automerge::{AutoCommit, ChangeHash};

use super::Replica;
use crate::id::{ItemId, JournalId, VolumeId};
use crate::item::{Item, Kind};
use crate::volume::{VOLUME_CAPACITY, Volume};

/// A replica held in memory: every volume an Automerge document.
#[derive(Default)]
pub struct MemReplica {
    pub docs: BTreeMap<JournalId, BTreeMap<VolumeId, AutoCommit>>,
}

impl Replica for MemReplica {
    fn inventory(&mut self, journal: JournalId) -> BTreeMap<VolumeId, Vec<ChangeHash>> {
        self.docs
            .get_mut(&journal)
            .map(|vols| vols.iter_mut().map(|(v, d)| (*v, d.get_heads())).collect())
            .unwrap_or_default()
    }

    fn doc(
        &mut self,
        journal: JournalId,
        volume: VolumeId,
        create: bool,
    ) -> Option<&mut AutoCommit> {
        let vols = self.docs.entry(journal).or_default();
        if create {
            Some(vols.entry(volume).or_default())
        } else {
            vols.get_mut(&volume)
        }
    }

    fn snapshot(&mut self, journal: JournalId, volume: VolumeId) -> Option<Vec<u8>> {
        self.doc_mut(journal, volume).map(|d| d.save())
    }

    fn adopt_snapshot(&mut self, journal: JournalId, volume: VolumeId, bytes: &[u8]) -> bool {
        let Ok(vol) = Volume::load([0; 16], bytes) else {
            return false;
        };
        if vol.journal() != journal || vol.id() != volume {
            return false;
        }
        match self.doc_mut(journal, volume) {
            Some(doc) => crate::volume::load_bounded(doc, bytes).is_ok(),
            None => {
                self.docs
                    .entry(journal)
                    .or_default()
                    .insert(volume, vol.into_doc());
                true
            }
        }
    }
}

impl MemReplica {
    pub fn doc_mut(&mut self, journal: JournalId, volume: VolumeId) -> Option<&mut AutoCommit> {
        self.docs.get_mut(&journal)?.get_mut(&volume)
    }

    /// Write an item into a journal the way an owner's device does.
    pub fn write(&mut self, journal: JournalId, n: u64, actor: u8) -> ItemId {
        let id = ItemId(n.to_be_bytes());
        let vols = self.docs.entry(journal).or_default();
        let open = vols
            .iter()
            .filter_map(|(v, d)| {
                let vol = Volume::from_doc([actor; 16], d.clone()).ok()?;
                (vol.len() < VOLUME_CAPACITY).then_some(*v)
            })
            .next_back();
        let mut vol = match open {
            Some(v) => Volume::from_doc([actor; 16], vols.remove(&v).unwrap()).unwrap(),
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
        .unwrap();
        vols.insert(vol.id(), vol.into_doc());
        id
    }

    pub fn items(&self, journal: JournalId) -> Vec<Item> {
        let mut out: Vec<Item> = self
            .docs
            .get(&journal)
            .into_iter()
            .flat_map(|vols| vols.values())
            .filter_map(|d| Volume::from_doc([0; 16], d.clone()).ok())
            .flat_map(|v| v.items())
            .collect();
        out.sort_by_key(|i| i.id);
        out
    }
}
