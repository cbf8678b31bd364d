//! Volumes a process keeps loaded between its sync sessions.
//!
//! Loading a volume into Automerge rebuilds every change of it to hash it: about 10 µs a
//! change, 2.4 ms for an open volume of 245 items (one Automerge change per item, each by its
//! own actor), where a clone of the loaded document takes 24 µs. A `duet serve` syncs the same
//! open volumes session after session, so it keeps the last few it loaded or stored, each with
//! the exact set of files it was loaded from or stored as. A session gets a clone only while
//! the volume's files are still exactly that set (file names carry their content's hash); any
//! other write (a local `duet write`, a compaction, another session) changes the set and the
//! volume is loaded from its files again. A one-shot `duet sync` fills it ahead of its session
//! ([`crate::Store::warm_up`]) with the open volumes it has written to since the last sync.

use std::collections::VecDeque;

use automerge::{AutoCommit, ChangeHash};
use duet_core::{JournalId, Volume, VolumeId};

use crate::volumes::VolumeFile;

/// How many volumes stay loaded: the open volume of each of the two shared journals, with
/// room for one being filled as another starts. Full volumes are not kept (they rarely change).
pub(crate) const WARM_VOLUMES: usize = 4;

/// A loaded volume as its files hold it.
#[derive(Clone)]
pub(crate) struct Warm {
    pub files: Vec<VolumeFile>,
    /// Heads of its snapshots alone (see [`crate::volumes::LoadedVolume::base`]).
    pub base: Vec<ChangeHash>,
    pub doc: AutoCommit,
}

#[derive(Default)]
pub(crate) struct WarmVolumes {
    /// Oldest first.
    kept: VecDeque<((JournalId, VolumeId), Warm)>,
}

impl WarmVolumes {
    /// A copy of `vol` if it was kept as exactly the files `listed` (in any order).
    pub fn get(&self, journal: JournalId, vol: VolumeId, listed: &[VolumeFile]) -> Option<Warm> {
        self.kept_as(journal, vol, listed).cloned()
    }

    /// Whether `vol` is kept as exactly the files `listed`.
    pub fn holds(&self, journal: JournalId, vol: VolumeId, listed: &[VolumeFile]) -> bool {
        self.kept_as(journal, vol, listed).is_some()
    }

    fn kept_as(&self, journal: JournalId, vol: VolumeId, listed: &[VolumeFile]) -> Option<&Warm> {
        let (_, warm) = self.kept.iter().find(|(key, _)| *key == (journal, vol))?;
        (sorted(listed) == sorted(&warm.files)).then_some(warm)
    }

    /// Keep `volume`, loaded from or stored as `files`, unless it is full; the oldest kept
    /// volume goes when there are too many.
    pub fn keep(&mut self, volume: &Volume, files: &[VolumeFile], base: &[ChangeHash]) {
        let key = (volume.journal(), volume.id());
        self.kept.retain(|(k, _)| *k != key);
        if volume.is_full() {
            return;
        }
        if self.kept.len() >= WARM_VOLUMES {
            self.kept.pop_front();
        }
        let warm = Warm {
            files: files.to_vec(),
            base: base.to_vec(),
            doc: volume.doc().clone(),
        };
        self.kept.push_back((key, warm));
    }

    /// Forget `vol`: what is kept of it may no longer be what its files hold.
    pub fn forget(&mut self, journal: JournalId, vol: VolumeId) {
        self.kept.retain(|(k, _)| *k != (journal, vol));
    }
}

fn sorted(files: &[VolumeFile]) -> Vec<&str> {
    let mut names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    use duet_core::{Item, ItemId, Kind};

    use super::*;
    use crate::volumes::FileKind;

    fn file(name: &str) -> VolumeFile {
        VolumeFile {
            kind: FileKind::Chunk,
            hash: name.to_owned(),
            name: name.to_owned(),
        }
    }

    fn volume(id: u8, items: usize) -> Volume {
        let mut vol = Volume::create([1; 16], JournalId([2; 16]), VolumeId([id; 8]), 5);
        for n in 0..items {
            let item = Item {
                id: ItemId((n as u64).to_be_bytes()),
                kind: Kind::Entry,
                created_at: 1_700_000_000_000 + n as i64,
                edited_at: None,
                body: format!("page {n}"),
                tags: vec![],
                starred: false,
                deleted: false,
                ritual: Default::default(),
            };
            vol.add(&item).unwrap();
        }
        vol
    }

    #[test]
    fn a_kept_volume_is_handed_out_only_while_its_files_are_exactly_those_it_was_kept_as() {
        let mut warm = WarmVolumes::default();
        let mut vol = volume(3, 4);
        let (j, v) = (vol.journal(), vol.id());
        warm.keep(&vol, &[file("a.snap"), file("b.chunk")], &[]);
        // In any order.
        let mut got = warm.get(j, v, &[file("b.chunk"), file("a.snap")]).unwrap();
        assert_eq!(got.doc.get_heads(), vol.heads());
        // A chunk more (another process wrote), one less (a compaction), another volume: no.
        let more = [file("a.snap"), file("b.chunk"), file("c.chunk")];
        assert!(warm.get(j, v, &more).is_none());
        assert!(!warm.holds(j, v, &more) && warm.holds(j, v, &[file("b.chunk"), file("a.snap")]));
        assert!(warm.get(j, v, &[file("a.snap")]).is_none());
        assert!(
            warm.get(j, VolumeId([4; 8]), &[file("a.snap"), file("b.chunk")])
                .is_none()
        );
        // Kept again as stored after a session: the new set is the one that counts.
        warm.keep(&vol, &more, &[]);
        assert!(warm.get(j, v, &more).is_some());
        assert!(warm.get(j, v, &[file("a.snap"), file("b.chunk")]).is_none());
        warm.forget(j, v);
        assert!(warm.get(j, v, &more).is_none());
    }

    #[test]
    fn full_volumes_are_not_kept_and_only_the_newest_few_are() {
        let mut warm = WarmVolumes::default();
        let files = [file("a.snap")];
        let open = volume(1, 2);
        warm.keep(&open, &files, &[]);
        // The same volume, now full: what was kept of it goes too.
        let full = volume(1, duet_core::VOLUME_CAPACITY);
        warm.keep(&full, &files, &[]);
        assert!(warm.get(full.journal(), full.id(), &files).is_none());
        for id in 10..10 + WARM_VOLUMES as u8 + 1 {
            warm.keep(&volume(id, 1), &files, &[]);
        }
        let j = open.journal();
        assert!(
            warm.get(j, VolumeId([10; 8]), &files).is_none(),
            "the oldest went"
        );
        for id in 11..11 + WARM_VOLUMES as u8 {
            assert!(warm.get(j, VolumeId([id; 8]), &files).is_some());
        }
    }
}
