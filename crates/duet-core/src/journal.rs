//! A whole journal in memory: the volumes of one person and the rule that
//! picks the volume a new item goes into.
//!
//! The store applies the same rule ([`open_volume`]) while loading only the
//! volume it needs; this type loads everything and serves tests and sync.

use std::collections::BTreeMap;

use crate::id::{ItemId, JournalId, VolumeId};
use crate::item::Item;
use crate::volume::{ItemUpdate, VOLUME_CAPACITY, Volume, VolumeError};

/// What the store knows about a volume without loading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeSummary {
    pub id: VolumeId,
    pub created_at: i64,
    pub len: usize,
}

/// The volume new items go into: the most recently started one that still
/// has room. `None` means a new volume must be started.
pub fn open_volume(volumes: impl IntoIterator<Item = VolumeSummary>) -> Option<VolumeId> {
    volumes
        .into_iter()
        .filter(|v| v.len < VOLUME_CAPACITY)
        .max_by_key(|v| (v.created_at, v.id))
        .map(|v| v.id)
}

pub struct Journal {
    id: JournalId,
    actor: [u8; 16],
    volumes: BTreeMap<VolumeId, Volume>,
}

impl Journal {
    pub fn new(id: JournalId, actor: [u8; 16]) -> Journal {
        Journal {
            id,
            actor,
            volumes: BTreeMap::new(),
        }
    }

    pub fn id(&self) -> JournalId {
        self.id
    }

    pub fn volumes(&self) -> impl Iterator<Item = &Volume> {
        self.volumes.values()
    }

    pub fn volume_mut(&mut self, id: VolumeId) -> Option<&mut Volume> {
        self.volumes.get_mut(&id)
    }

    pub fn insert_volume(&mut self, volume: Volume) {
        self.volumes.insert(volume.id(), volume);
    }

    pub fn summaries(&self) -> impl Iterator<Item = VolumeSummary> + '_ {
        self.volumes.values().map(|v| VolumeSummary {
            id: v.id(),
            created_at: v.created_at(),
            len: v.len(),
        })
    }

    /// Add an item; `fresh_volume` names the volume to start if none has room.
    pub fn add(
        &mut self,
        item: &Item,
        fresh_volume: VolumeId,
        now: i64,
    ) -> Result<VolumeId, VolumeError> {
        let target = match open_volume(self.summaries()) {
            Some(id) => id,
            None => {
                self.volumes.insert(
                    fresh_volume,
                    Volume::create(self.actor, self.id, fresh_volume, now),
                );
                fresh_volume
            }
        };
        self.volumes
            .get_mut(&target)
            .expect("volume exists")
            .add(item)?;
        Ok(target)
    }

    pub fn volume_of(&self, id: ItemId) -> Option<VolumeId> {
        self.volumes
            .values()
            .find(|v| v.contains(id))
            .map(Volume::id)
    }

    pub fn update(&mut self, id: ItemId, update: &ItemUpdate, now: i64) -> Result<(), VolumeError> {
        let vol = self.volume_of(id).ok_or(VolumeError::NoSuchItem(id))?;
        self.volumes
            .get_mut(&vol)
            .expect("volume exists")
            .update(id, update, now)
    }

    pub fn item(&self, id: ItemId) -> Option<Item> {
        self.volumes.values().find_map(|v| v.item(id))
    }

    pub fn items(&self) -> Vec<Item> {
        self.volumes.values().flat_map(Volume::items).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Kind;
    use proptest::prelude::*;
    use std::collections::BTreeMap as Model;

    #[derive(Clone, Debug)]
    enum Op {
        Write {
            body: String,
            tags: Vec<String>,
            star: bool,
        },
        Edit {
            pick: usize,
            body: String,
        },
        Delete {
            pick: usize,
        },
        Star {
            pick: usize,
            on: bool,
        },
        Reload,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => ("[a-z ]{1,30}", proptest::collection::vec("[a-z]{1,5}", 0..3), any::<bool>())
                .prop_map(|(body, tags, star)| Op::Write { body, tags, star }),
            2 => (any::<usize>(), "[a-z ]{1,30}").prop_map(|(pick, body)| Op::Edit { pick, body }),
            1 => any::<usize>().prop_map(|pick| Op::Delete { pick }),
            1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, on)| Op::Star { pick, on }),
            1 => Just(Op::Reload),
        ]
    }

    /// Save every volume and load it again under a new actor, as a new process would.
    fn reload(journal: Journal, actor: [u8; 16]) -> Journal {
        let mut fresh = Journal::new(journal.id, actor);
        for mut vol in journal.volumes.into_values() {
            let bytes = vol.save();
            fresh.insert_volume(Volume::load(actor, &bytes).unwrap());
        }
        fresh
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn journal_matches_a_plain_model(ops in proptest::collection::vec(op(), 1..400)) {
            let mut journal = Journal::new(JournalId([9; 16]), [0; 16]);
            let mut model: Model<ItemId, Item> = Model::new();
            let mut order: Vec<ItemId> = Vec::new();
            for (n, op) in ops.into_iter().enumerate() {
                let now = 1_000 + n as i64;
                let mut counter = [0u8; 8];
                counter[..8].copy_from_slice(&(n as u64).to_be_bytes());
                match op {
                    Op::Write { body, tags, star } => {
                        let item = Item {
                            id: ItemId(counter), kind: Kind::Entry, created_at: now, edited_at: None,
                            body, tags, starred: star, deleted: false, ritual: Default::default(),
                        };
                        journal.add(&item, VolumeId(counter), now).unwrap();
                        order.push(item.id);
                        model.insert(item.id, item);
                    }
                    Op::Edit { pick, body } if !order.is_empty() => {
                        let id = order[pick % order.len()];
                        let upd = ItemUpdate { body: Some(body.clone()), ..Default::default() };
                        journal.update(id, &upd, now).unwrap();
                        let m = model.get_mut(&id).unwrap();
                        m.body = body;
                        m.edited_at = Some(now);
                    }
                    Op::Delete { pick } if !order.is_empty() => {
                        let id = order[pick % order.len()];
                        let upd = ItemUpdate { deleted: Some(true), ..Default::default() };
                        journal.update(id, &upd, now).unwrap();
                        model.get_mut(&id).unwrap().deleted = true;
                    }
                    Op::Star { pick, on } if !order.is_empty() => {
                        let id = order[pick % order.len()];
                        let upd = ItemUpdate { starred: Some(on), ..Default::default() };
                        journal.update(id, &upd, now).unwrap();
                        model.get_mut(&id).unwrap().starred = on;
                    }
                    Op::Reload => journal = reload(journal, [n as u8; 16]),
                    _ => {}
                }
            }
            let mut got = journal.items();
            got.sort_by_key(|i| i.id);
            let want: Vec<Item> = model.into_values().collect();
            prop_assert_eq!(got, want);
            for v in journal.volumes() {
                prop_assert!(v.len() <= VOLUME_CAPACITY);
            }
        }
    }

    #[test]
    fn new_volume_when_full() {
        let mut journal = Journal::new(JournalId([1; 16]), [1; 16]);
        for n in 0..(VOLUME_CAPACITY as u64 + 1) {
            let item = Item {
                id: ItemId(n.to_be_bytes()),
                kind: Kind::Entry,
                created_at: n as i64,
                edited_at: None,
                body: "x".into(),
                tags: vec![],
                starred: false,
                deleted: false,
                ritual: Default::default(),
            };
            journal
                .add(&item, VolumeId((n + 1000).to_be_bytes()), n as i64)
                .unwrap();
        }
        assert_eq!(journal.volumes().count(), 2);
    }
}
