//! The documents a sync session works on, held in memory, and how a driver fills them.
//!
//! The session never reaches into storage. Before each batch it says what it [`Wants`]; the
//! driver loads exactly that from its [`Backend`] (files, in `duet-store`) into [`Docs`], at a
//! point where blocking is allowed, and only then hands the batch to the session. Everything the
//! session changes stays in `Docs` until the driver stores it after the session.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{AutoCommit, ChangeHash};

use crate::authority::SignedHeads;
use crate::id::{JournalId, VolumeId};
use crate::volume::{Contents, Volume, load_bounded};

/// What the session needs loaded before it can take the next step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wants {
    /// Journals whose stored volumes and heads must be known.
    pub journals: BTreeSet<JournalId>,
    /// Volumes whose documents must be loaded (if they are stored at all).
    pub volumes: BTreeSet<(JournalId, VolumeId)>,
    /// Volumes to send whole: their saved bytes, if the backend has them ready (otherwise the
    /// document is loaded and saved).
    pub snapshots: BTreeSet<(JournalId, VolumeId)>,
}

impl Wants {
    pub fn is_empty(&self) -> bool {
        self.journals.is_empty() && self.volumes.is_empty() && self.snapshots.is_empty()
    }
}

/// Where a driver loads documents from. Implementations may block (read files); drivers call
/// them where blocking is allowed, never the session.
pub trait Backend {
    /// Every stored volume of `journal` and its heads.
    fn stored_heads(&mut self, journal: JournalId) -> BTreeMap<VolumeId, Vec<ChangeHash>>;
    /// One stored volume's document.
    fn load_doc(&mut self, journal: JournalId, volume: VolumeId) -> Option<AutoCommit>;
    /// One stored volume as saved bytes ready to send, if the backend has them without
    /// loading (a store hands over its snapshot file). `None` lets the session save the doc.
    fn saved_bytes(&mut self, journal: JournalId, volume: VolumeId) -> Option<Vec<u8>>;
    /// The signed statements stored for one volume.
    fn signatures(&mut self, journal: JournalId, volume: VolumeId) -> Vec<SignedHeads>;
}

/// A volume that arrived whole and was new here: its bytes as they came, and their heads.
#[derive(Clone)]
pub struct Adopted {
    pub bytes: Vec<u8>,
    pub heads: Vec<ChangeHash>,
    /// Set while the volume rests ([`Docs::resting`]): what the index needs of it, read while
    /// it was loaded, and no document held. The bytes are loaded again if the session needs it.
    pub contents: Option<Contents>,
}

/// A snapshot loaded ahead of its message ([`Preloader`]).
pub(crate) enum Preloaded {
    /// The loaded volume (boxed: an Automerge document is a few KiB before any heap).
    Loaded(Box<Volume>),
    /// When received volumes may rest: what was read of it, the document already let go (a
    /// batch of a first sync is the whole journal: holding every loaded document until each
    /// is adopted took 270 MiB at 100,000 items).
    Read {
        journal: JournalId,
        contents: Contents,
    },
}

/// The documents of one session: the heads of what is stored, the documents loaded so far,
/// and the volumes that arrived whole.
#[derive(Clone, Default)]
pub struct Docs {
    stored: BTreeMap<JournalId, BTreeMap<VolumeId, Vec<ChangeHash>>>,
    docs: BTreeMap<(JournalId, VolumeId), AutoCommit>,
    saved: BTreeMap<(JournalId, VolumeId), Vec<u8>>,
    adopted: BTreeMap<(JournalId, VolumeId), Adopted>,
    /// The signed statements stored for each volume loaded, and the session's additions.
    signed: BTreeMap<(JournalId, VolumeId), Vec<SignedHeads>>,
    /// Volumes whose statements the session added to, for the driver to store.
    signed_changed: BTreeSet<(JournalId, VolumeId)>,
    /// Actor for documents the session takes in (never writes with it).
    actor: [u8; 16],
    /// Whether volumes that arrive whole and are covered rest as bytes ([`Docs::resting`]).
    rest: bool,
}

impl Preloaded {
    /// The journal and volume the document says it belongs to.
    fn ids(&self) -> (JournalId, VolumeId) {
        match self {
            Preloaded::Loaded(vol) => (vol.journal(), vol.id()),
            Preloaded::Read { journal, contents } => (*journal, contents.id),
        }
    }

    fn heads(&mut self) -> Vec<ChangeHash> {
        match self {
            Preloaded::Loaded(vol) => vol.heads(),
            Preloaded::Read { contents, .. } => contents.heads.clone(),
        }
    }

    /// What the index needs of the volume (read now if it was not yet).
    fn into_contents(self) -> Contents {
        match self {
            Preloaded::Loaded(mut vol) => vol.contents(),
            Preloaded::Read { contents, .. } => contents,
        }
    }
}

/// Whether every one of `heads` is in `signed` (`None`: no signature is asked, all pass): what
/// lets a volume received whole rest, and keeps it resting through the authorship check.
pub(crate) fn all_signed(heads: &[ChangeHash], signed: Option<&BTreeSet<ChangeHash>>) -> bool {
    signed.is_none_or(|s| heads.iter().all(|h| s.contains(h)))
}

/// Threads that load snapshots ahead: the machine's cores, at most four.
fn preload_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
}

/// One snapshot loaded ahead; `None` if it does not load within [`PRELOAD_INFLATED`].
fn preload_one(actor: [u8; 16], rest: bool, bytes: &[u8]) -> Option<Preloaded> {
    let volume = Volume::load_within(actor, bytes, PRELOAD_INFLATED).ok()?;
    // Reading the items is the other costly step of taking a volume in: done here too when
    // the volume may rest.
    Some(match rest {
        true => {
            let mut volume = volume;
            Preloaded::Read {
                journal: volume.journal(),
                contents: volume.contents(),
            }
        }
        false => Preloaded::Loaded(Box::new(volume)),
    })
}

type Job = (usize, super::Msg);
type Done = (usize, super::Msg, Option<Preloaded>);

/// Loads the snapshots of a batch on threads of their own while the rest of the batch is
/// still arriving: the driver hands it each frame's messages as they come
/// ([`Preloader::push`]), and the session takes the batch with its loads
/// ([`Preloader::finish`], [`super::SyncSession::handle_received`]). On a link slower than
/// the loads, a first sync has read every volume when its last frame arrives, where loading
/// them all began only then. Messages are moved to the threads and back, never copied.
pub struct Preloader {
    actor: [u8; 16],
    rest: bool,
    threads: usize,
    /// Messages taken so far.
    count: usize,
    /// Messages not sent to a thread, with their place in the batch.
    held: Vec<Job>,
    /// The first snapshot to load ahead, until a second one starts the threads.
    first: Option<Job>,
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    workers: Vec<std::thread::JoinHandle<Vec<Done>>>,
}

/// A batch as it arrived, with what [`Preloader`] loaded of it.
pub struct Received {
    pub(crate) batch: super::Batch,
    pub(crate) preloaded: Vec<Option<Preloaded>>,
}

impl Received {
    pub fn batch(&self) -> &super::Batch {
        &self.batch
    }

    pub fn into_batch(self) -> super::Batch {
        self.batch
    }
}

impl Preloader {
    /// Takes the next messages of the batch. A snapshot `docs` would load ahead
    /// ([`Docs::preloader`], of a journal `takes` accepts) goes to a loading thread once there
    /// are two of them (the threads start then); everything else waits here.
    pub fn push(&mut self, docs: &Docs, takes: impl Fn(JournalId) -> bool, msgs: Vec<super::Msg>) {
        for msg in msgs {
            let job = (self.count, msg);
            self.count += 1;
            if self.threads < 2 || !docs.loads_ahead(&job.1, &takes) {
                self.held.push(job);
                continue;
            }
            if self.jobs.is_none() {
                let Some(first) = self.first.take() else {
                    self.first = Some(job);
                    continue;
                };
                self.start();
                self.send(first);
            }
            self.send(job);
        }
    }

    /// Hands `job` to the loading threads; kept here, unloaded, if it cannot be.
    fn send(&mut self, job: Job) {
        let unsent = match &self.jobs {
            Some(jobs) => jobs.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        self.held.extend(unsent);
    }

    /// Whether loads were started: [`Preloader::finish`] may then block.
    pub fn is_loading(&self) -> bool {
        !self.workers.is_empty()
    }

    fn start(&mut self) {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        let (actor, rest) = (self.actor, self.rest);
        for _ in 0..self.threads {
            let queue = queue.clone();
            self.workers.push(std::thread::spawn(move || {
                let mut done = Vec::new();
                loop {
                    let next = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => break,
                    };
                    let Ok((place, msg)) = next else { break };
                    let preloaded = match &msg {
                        // A load that panics loses nothing: the message goes back unloaded.
                        super::Msg::Snapshot { document, .. } => {
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                preload_one(actor, rest, document)
                            }))
                            .ok()
                            .flatten()
                        }
                        _ => None,
                    };
                    done.push((place, msg, preloaded));
                }
                done
            }));
        }
        self.jobs = Some(jobs);
    }

    /// Waits for the loads still running and hands over the batch, in the order it came, with
    /// them. Blocks while a load runs: drivers call it where blocking is allowed.
    pub fn finish(mut self) -> Received {
        drop(self.jobs.take());
        let mut all: Vec<Done> = Vec::with_capacity(self.count);
        for worker in std::mem::take(&mut self.workers) {
            // Loads are caught above; a worker that panicked elsewhere took messages with it.
            all.extend(
                worker
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
        }
        all.extend(self.first.take().map(|(i, m)| (i, m, None)));
        all.extend(
            std::mem::take(&mut self.held)
                .into_iter()
                .map(|(i, m)| (i, m, None)),
        );
        all.sort_by_key(|(place, _, _)| *place);
        let (msgs, preloaded) = all.into_iter().map(|(_, m, p)| (m, p)).unzip();
        Received {
            batch: super::Batch(msgs),
            preloaded,
        }
    }
}

/// The most a snapshot loaded ahead may inflate to: several load at once, so each gets far
/// less than the bound of one load alone ([`crate::inflate::MAX_INFLATED`]); an honest volume
/// inflates to well under 1 MiB. A snapshot past it is loaded in turn, as before.
const PRELOAD_INFLATED: u64 = 16 << 20;

impl Docs {
    /// Docs that hold a volume arriving whole (new here, and covered by what its owner signed)
    /// as its bytes and its [`Contents`], not as a loaded document: a loaded volume takes
    /// about eight times its bytes, and a first sync of 100,000 items held 190 MiB of them
    /// until the end of the session. The session loads a resting volume again if it needs it;
    /// the driver stores it from its bytes and contents.
    pub fn resting(self) -> Docs {
        Docs { rest: true, ..self }
    }

    /// Loads from `backend` what `wants` names and is not here yet.
    pub fn fill(&mut self, backend: &mut dyn Backend, wants: &Wants) {
        for journal in &wants.journals {
            if !self.stored.contains_key(journal) {
                let heads = backend.stored_heads(*journal);
                self.stored.insert(*journal, heads);
            }
        }
        for key @ (journal, volume) in wants.snapshots.iter().chain(&wants.volumes) {
            if !self.signed.contains_key(key) {
                let stored = backend.signatures(*journal, *volume);
                self.signed.insert(*key, stored);
            }
        }
        for key @ (journal, volume) in &wants.snapshots {
            if !self.docs.contains_key(key) && !self.saved.contains_key(key) {
                match backend.saved_bytes(*journal, *volume) {
                    Some(bytes) => {
                        self.saved.insert(*key, bytes);
                    }
                    None => self.load(backend, *journal, *volume),
                }
            }
        }
        for (journal, volume) in &wants.volumes {
            self.load(backend, *journal, *volume);
        }
    }

    fn load(&mut self, backend: &mut dyn Backend, journal: JournalId, volume: VolumeId) {
        let stored = self
            .stored
            .get(&journal)
            .is_some_and(|s| s.contains_key(&volume));
        if stored
            && !self.docs.contains_key(&(journal, volume))
            && let Some(doc) = backend.load_doc(journal, volume)
        {
            self.docs.insert((journal, volume), doc);
        }
    }

    /// Adds a document as loaded (and stored): how an in-memory replica is built.
    pub fn insert(&mut self, journal: JournalId, volume: VolumeId, mut doc: AutoCommit) {
        let heads = doc.get_heads();
        self.stored
            .entry(journal)
            .or_default()
            .insert(volume, heads);
        self.docs.insert((journal, volume), doc);
    }

    /// Marks a journal's stored volumes as known (with none loaded yet).
    pub fn set_stored(&mut self, journal: JournalId, heads: BTreeMap<VolumeId, Vec<ChangeHash>>) {
        self.stored.insert(journal, heads);
    }

    /// Every loaded document, to read.
    pub fn iter(&self) -> impl Iterator<Item = (&(JournalId, VolumeId), &AutoCommit)> {
        self.docs.iter()
    }

    /// Every loaded document.
    pub fn loaded(&mut self) -> impl Iterator<Item = (&(JournalId, VolumeId), &mut AutoCommit)> {
        self.docs.iter_mut()
    }

    /// Takes every loaded document out, for the driver to store.
    pub fn take_loaded(&mut self) -> BTreeMap<(JournalId, VolumeId), AutoCommit> {
        std::mem::take(&mut self.docs)
    }

    /// Ends the session's hold on its documents: the volumes that arrived whole (and were new
    /// here), and every loaded document, for the driver to store.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self,
    ) -> (
        BTreeMap<(JournalId, VolumeId), Adopted>,
        BTreeMap<(JournalId, VolumeId), AutoCommit>,
    ) {
        (self.adopted, self.docs)
    }

    /// Every document held, resting ones loaded again: how an in-memory replica takes back
    /// what a session brought.
    pub fn into_docs(mut self) -> BTreeMap<(JournalId, VolumeId), AutoCommit> {
        let resting: Vec<(JournalId, VolumeId)> = self.rested().map(|(k, _)| k).collect();
        for (journal, volume) in resting {
            self.wake(journal, volume);
        }
        self.docs
    }

    /// The statements known for one volume (stored, and added this session).
    pub fn signed(&self, journal: JournalId, volume: VolumeId) -> &[SignedHeads] {
        self.signed
            .get(&(journal, volume))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Adds a statement for a volume (the latest per device is kept).
    pub fn add_signed(&mut self, statement: SignedHeads) {
        let key = (statement.journal, statement.volume);
        if crate::authority::keep_latest(self.signed.entry(key).or_default(), statement) {
            self.signed_changed.insert(key);
        }
    }

    /// The volumes whose statements changed this session, with all their statements, for the
    /// driver to store.
    pub fn changed_signatures(&self) -> Vec<((JournalId, VolumeId), &[SignedHeads])> {
        self.signed_changed
            .iter()
            .map(|k| (*k, self.signed.get(k).map(Vec::as_slice).unwrap_or(&[])))
            .collect()
    }

    /// The heads of a volume as stored before the session (none if it is new here).
    pub fn heads_before(&self, journal: JournalId, volume: VolumeId) -> Vec<ChangeHash> {
        self.stored
            .get(&journal)
            .and_then(|s| s.get(&volume))
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces a volume's document by `doc` (a part of it the session may keep); a volume that
    /// arrived whole is then stored from `doc`, not from the bytes as they came.
    pub fn replace(&mut self, journal: JournalId, volume: VolumeId, doc: AutoCommit) {
        self.adopted.remove(&(journal, volume));
        self.docs.insert((journal, volume), doc);
    }

    /// The volumes that arrived whole and were new here, with their bytes as they came.
    pub fn adopted(&self) -> &BTreeMap<(JournalId, VolumeId), Adopted> {
        &self.adopted
    }

    pub fn doc_mut(&mut self, journal: JournalId, volume: VolumeId) -> Option<&mut AutoCommit> {
        self.wake(journal, volume);
        self.docs.get_mut(&(journal, volume))
    }

    /// The heads of a volume held here (loaded or resting), without loading a resting one.
    pub fn heads(&mut self, journal: JournalId, volume: VolumeId) -> Option<Vec<ChangeHash>> {
        if let Some(doc) = self.docs.get_mut(&(journal, volume)) {
            return Some(doc.get_heads());
        }
        self.resting_one(journal, volume).map(|a| a.heads.clone())
    }

    /// The volumes resting here, and their heads.
    pub fn rested(&self) -> impl Iterator<Item = ((JournalId, VolumeId), &[ChangeHash])> {
        self.adopted
            .iter()
            .filter(|(_, a)| a.contents.is_some())
            .map(|(k, a)| (*k, a.heads.as_slice()))
    }

    /// A volume that rests here.
    fn resting_one(&self, journal: JournalId, volume: VolumeId) -> Option<&Adopted> {
        self.adopted
            .get(&(journal, volume))
            .filter(|a| a.contents.is_some())
    }

    /// Loads a resting volume again from its bytes, for the session to work on (its contents
    /// are then read again when it is stored, as the document may change).
    fn wake(&mut self, journal: JournalId, volume: VolumeId) {
        let key = (journal, volume);
        let Some(adopted) = self.adopted.get_mut(&key) else {
            return;
        };
        if adopted.contents.take().is_none() {
            return;
        }
        // The bytes loaded once already, under the same bound.
        if let Ok(vol) = Volume::load(self.actor, &adopted.bytes) {
            self.docs.insert(key, vol.into_doc());
        }
    }

    /// The volumes of a journal and the heads of each, the session's own changes included.
    pub fn inventory(&mut self, journal: JournalId) -> BTreeMap<VolumeId, Vec<ChangeHash>> {
        let mut inv = self.stored.get(&journal).cloned().unwrap_or_default();
        for ((j, v), heads) in self.rested() {
            if j == journal {
                inv.insert(v, heads.to_vec());
            }
        }
        for ((j, v), doc) in self.docs.iter_mut() {
            if *j == journal {
                let heads = doc.get_heads();
                if heads.is_empty() {
                    inv.remove(v);
                } else {
                    inv.insert(*v, heads);
                }
            }
        }
        inv
    }

    pub(crate) fn is_stored(&self, journal: JournalId, volume: VolumeId) -> bool {
        self.stored
            .get(&journal)
            .is_some_and(|s| s.contains_key(&volume))
    }

    /// The document of a volume, if loaded. `create` starts an empty one for a volume not
    /// stored here (the peer is about to send it).
    pub(crate) fn doc(
        &mut self,
        journal: JournalId,
        volume: VolumeId,
        create: bool,
    ) -> Option<&mut AutoCommit> {
        self.wake(journal, volume);
        if create && !self.is_stored(journal, volume) {
            self.stored.entry(journal).or_default();
            self.docs.entry((journal, volume)).or_default();
        }
        self.docs.get_mut(&(journal, volume))
    }

    /// The whole volume as saved bytes.
    pub(crate) fn snapshot(&mut self, journal: JournalId, volume: VolumeId) -> Option<Vec<u8>> {
        if let Some(doc) = self.docs.get_mut(&(journal, volume)) {
            return Some(doc.save());
        }
        if let Some(a) = self.resting_one(journal, volume) {
            return Some(a.bytes.clone());
        }
        self.saved.get(&(journal, volume)).cloned()
    }

    /// Whether `msg` is to load ahead: a snapshot of a journal `takes` accepts, of a volume
    /// [`Docs::adopt`] would load (neither loaded, adopted nor stored here).
    fn loads_ahead(&self, msg: &super::Msg, takes: &impl Fn(JournalId) -> bool) -> bool {
        match msg {
            super::Msg::Snapshot {
                journal, volume, ..
            } => {
                takes(*journal)
                    && !self.docs.contains_key(&(*journal, *volume))
                    && !self.adopted.contains_key(&(*journal, *volume))
                    && !self.is_stored(*journal, *volume)
            }
            _ => false,
        }
    }

    /// A [`Preloader`] for the next batch: it loads the snapshots [`Docs::adopt`] would load
    /// (of journals the session takes changes to), spread over the machine's cores (at most
    /// four threads). Loading them is most of what a first sync costs the side that receives
    /// it; a snapshot not loaded ahead is loaded by `adopt` itself, alone.
    pub fn preloader(&self) -> Preloader {
        Preloader {
            actor: self.actor,
            rest: self.rest,
            threads: preload_threads(),
            count: 0,
            held: Vec::new(),
            first: None,
            jobs: None,
            workers: Vec::new(),
        }
    }

    /// Takes a whole volume sent by the peer, if it is a volume of this journal under this id:
    /// merged into the document here, or kept as it came when the volume is new. `preloaded`
    /// is its load, if a [`Preloader`] made it. A new volume rests ([`Docs::resting`]) when
    /// `signed` holds every one of its heads (`None`: no signature is asked of this journal).
    pub(crate) fn adopt(
        &mut self,
        journal: JournalId,
        volume: VolumeId,
        bytes: Vec<u8>,
        preloaded: Option<Preloaded>,
        signed: Option<&BTreeSet<ChangeHash>>,
    ) -> bool {
        let mut taken = match preloaded {
            Some(taken) => taken,
            None => match Volume::load(self.actor, &bytes) {
                Ok(vol) => Preloaded::Loaded(Box::new(vol)),
                Err(_) => return false,
            },
        };
        if taken.ids() != (journal, volume) {
            return false;
        }
        self.wake(journal, volume);
        if let Some(doc) = self.docs.get_mut(&(journal, volume)) {
            return load_bounded(doc, &bytes).is_ok();
        }
        if self.is_stored(journal, volume) {
            // Stored but not loaded: the session asked for it, so the backend could not read
            // it; taking the peer's copy whole would hide the files here.
            return false;
        }
        let heads = taken.heads();
        let contents = if self.rest && all_signed(&heads, signed) {
            Some(taken.into_contents())
        } else {
            // Not resting: the document is held (loaded again if it was read ahead).
            let vol = match taken {
                Preloaded::Loaded(vol) => *vol,
                Preloaded::Read { .. } => match Volume::load(self.actor, &bytes) {
                    Ok(vol) => vol,
                    Err(_) => return false,
                },
            };
            self.docs.insert((journal, volume), vol.into_doc());
            None
        };
        self.stored.entry(journal).or_default();
        self.adopted.insert(
            (journal, volume),
            Adopted {
                bytes,
                heads,
                contents,
            },
        );
        true
    }
}
