//! The sync session: two replicas bring their shared journals level.
//!
//! Pure code: the session takes messages and returns messages, and works on documents held in
//! memory ([`Docs`]). It never reaches into storage: before each batch it says what it
//! [`Wants`], and the driver loads that from its [`Backend`] (files in `duet-store`, memory in
//! tests) where blocking is allowed ([`prepare`]). A driver moves [`Batch`]es in lock-step: the dialer
//! sends a batch, the listener answers with one, and the session is over
//! when an empty batch is answered by an empty batch.
//!
//! A journal is many volumes, so the session first compares a digest per
//! journal (`Hello`), then the volumes that changed since the two last
//! agreed (`Inventory`), and runs Automerge's own sync protocol only on
//! volumes that differ, with sync state kept per peer between sessions.
//!
//! Authority: for each journal the caller says whether this peer may change
//! it. When it may not (my journal, seen from my partner), incoming changes
//! are stripped before Automerge sees them, and the Automerge state is
//! read-only, which also asks the peer not to send any.

use std::collections::{BTreeMap, BTreeSet};

use automerge::ChangeHash;
use automerge::sync::{self, SyncDoc};

use crate::id::{JournalId, VolumeId};

/// 2: a session whose two sides are level ends at the listener's first answer ([`Msg::Level`]).
pub const SYNC_VERSION: u8 = 2;
/// Digest of one volume's heads.
pub type HeadsDigest = [u8; 16];

/// Digest of a set of heads, independent of their order.
pub fn heads_digest(heads: &[ChangeHash]) -> HeadsDigest {
    let mut sorted: Vec<&ChangeHash> = heads.iter().collect();
    sorted.sort();
    let mut hasher = blake3::Hasher::new_derive_key("duet sync volume heads v1");
    for h in sorted {
        hasher.update(&h.0);
    }
    hasher.finalize().as_bytes()[..16]
        .try_into()
        .expect("16 bytes")
}

/// Digest of the device lists a side knows (encoded), whatever order it holds them in.
pub fn devices_digest(lists: &[Vec<u8>]) -> [u8; 32] {
    let mut sorted: Vec<&Vec<u8>> = lists.iter().collect();
    sorted.sort();
    let mut hasher = blake3::Hasher::new_derive_key("duet sync device lists v1");
    for list in sorted {
        hasher.update(&(list.len() as u64).to_be_bytes());
        hasher.update(list);
    }
    *hasher.finalize().as_bytes()
}

/// Digest of a journal: all of its volumes and their heads.
pub fn journal_digest(inventory: &BTreeMap<VolumeId, HeadsDigest>) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("duet sync journal v1");
    for (vol, digest) in inventory {
        hasher.update(vol.as_bytes());
        hasher.update(digest);
    }
    *hasher.finalize().as_bytes()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// A digest per shared journal.
    Hello {
        journals: Vec<(JournalId, [u8; 32])>,
    },
    /// Volumes of a journal: all of them (`full`) or only those that changed
    /// since the last agreement with this peer.
    Inventory {
        journal: JournalId,
        full: bool,
        volumes: Vec<(VolumeId, HeadsDigest)>,
    },
    /// A whole volume the peer does not have at all, as one saved document:
    /// cheaper than Automerge's sync for a first transfer.
    Snapshot {
        journal: JournalId,
        volume: VolumeId,
        document: Vec<u8>,
    },
    /// A person's device list (encoded [`crate::authority::DeviceList`]). A side sends the
    /// lists it knows when the peer's [`Msg::DevicesDigest`] differs from its own, before any
    /// journal data, so revocations travel with the first sync that can carry them.
    Devices { list: Vec<u8> },
    /// A digest of the device lists the sender knows ([`devices_digest`]), in its first batch:
    /// when the two differ, each side sends its lists.
    DevicesDigest { digest: [u8; 32] },
    /// The listener's whole first answer when the dialer's hello showed both sides level: every
    /// journal they share has the same digest on both, and so do the device lists. The session
    /// ends there, after one round trip (only address hints may come with it).
    Level,
    /// Where devices of the couple were last reached, by device id: hints for dialing, never
    /// proof of who a device is (the transport authenticates every id it dials).
    Addresses {
        hints: Vec<(crate::authority::DeviceId, Vec<std::net::SocketAddr>)>,
    },
    /// Signed statements of the heads of volumes (see [`crate::authority::SignedHeads`]): sent
    /// before the first data of each volume in a session, so the receiver can check that every
    /// change it takes is covered by a device of the journal's owner, whoever delivered it.
    Signed {
        statements: Vec<crate::authority::SignedHeads>,
    },
    /// One Automerge sync message for one volume.
    Volume {
        journal: JournalId,
        volume: VolumeId,
        message: Vec<u8>,
    },
}

/// The messages of one lock-step turn.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch(pub Vec<Msg>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyncError {
    #[error(
        "the other device speaks sync version {0} and this one {SYNC_VERSION}: \
         update duet on the one with the older version"
    )]
    Version(u8),
    #[error("malformed sync message: {0}")]
    Malformed(&'static str),
    #[error("the peer sent journal {0}, which is not shared with it")]
    NotShared(JournalId),
    #[error("the other device has been revoked by its owner; it is refused from now on")]
    PeerRevoked,
}

/// What one replica remembers about one peer, per journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerState {
    pub journals: BTreeMap<JournalId, JournalPeerState>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalPeerState {
    /// Volume heads both sides had when they last agreed.
    pub agreed: BTreeMap<VolumeId, HeadsDigest>,
    /// Automerge sync state per volume (only its durable part).
    pub automerge: BTreeMap<VolumeId, Vec<u8>>,
}

/// One journal shared in a session, and whether this peer may change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shared {
    pub journal: JournalId,
    pub accept_changes: bool,
}

pub struct SyncSession {
    shared: Vec<Shared>,
    state: PeerState,
    active: BTreeMap<(JournalId, VolumeId), sync::State>,
    sent_full: BTreeSet<JournalId>,
    /// Volumes sent or received whole, with their heads digest then.
    whole: BTreeMap<(JournalId, VolumeId), HeadsDigest>,
    /// Journals whose digests matched at hello.
    level: BTreeSet<JournalId>,
    rejected: usize,
    /// Device lists to send when the peer's digest of its own differs.
    devices_out: Vec<Vec<u8>>,
    /// Whether they went out this session.
    devices_sent: bool,
    /// The peer's digest of its device lists, once heard.
    devices_digest_in: Option<[u8; 32]>,
    /// Valid device lists the peer sent.
    devices_in: Vec<crate::authority::DeviceList>,
    /// Who the peer is, if known: its person and its device.
    peer: Option<(crate::authority::PersonId, crate::authority::DeviceId)>,
    hints_out: Vec<(crate::authority::DeviceId, Vec<std::net::SocketAddr>)>,
    hints_in: Vec<(crate::authority::DeviceId, Vec<std::net::SocketAddr>)>,
    signing: Option<Signing>,
    /// Volumes whose statements went out this session.
    signed_sent: BTreeSet<(JournalId, VolumeId)>,
    /// Statements taken from the peer this session.
    signed_taken: usize,
    /// Volumes whose uncovered changes were cut away.
    cut: BTreeSet<(JournalId, VolumeId)>,
    /// Whether this side sent its hello, and heard the peer's.
    said_hello: bool,
    heard_hello: bool,
    /// The session ended level: the listener's closing answer, once it decided so (`Some`
    /// with an empty batch on the dialer's side, which has nothing more to send).
    closing: Option<Batch>,
}

/// How a session signs and checks authorship. Without it (tests of the exchange alone) changes
/// are taken on the word of the device that delivers them.
pub struct Signing {
    /// This device's key: it vouches for the volumes of its own person's journals it sends.
    pub device: crate::authority::DeviceKey,
    /// Now (Unix ms): the time of this device's statements.
    pub now: i64,
    /// The journals of this device's person.
    pub owned: BTreeSet<JournalId>,
    /// Each journal's owner, as their device list: only their certified, not revoked devices'
    /// statements cover changes to it.
    pub owners: BTreeMap<JournalId, crate::authority::DeviceList>,
}

impl Signing {
    /// How a device of `authority.me` signs and checks: it vouches for its person's two
    /// journals, and each journal it holds is owned by the person whose list it is (the
    /// partner's by the partner's list, once known).
    pub fn for_couple(
        device: crate::authority::DeviceKey,
        now: i64,
        authority: &crate::authority::Authority,
        journals: &crate::authority::Journals,
    ) -> Signing {
        let mut owners = BTreeMap::new();
        owners.insert(journals.mine, authority.me.clone());
        owners.insert(journals.private, authority.me.clone());
        if let (Some(journal), Some(list)) = (journals.partners, &authority.partner) {
            owners.insert(journal, list.clone());
        }
        Signing {
            device,
            now,
            owned: [journals.mine, journals.private].into(),
            owners,
        }
    }
}

/// Most statements one `Signed` message may carry, and one session may take.
pub const MAX_SIGNED_PER_MESSAGE: usize = 4096;
pub const MAX_SIGNED_PER_SESSION: usize = 65_536;

/// Most devices one `Addresses` message may name: both people's lists, full.
pub const MAX_HINTED_DEVICES: usize = 2 * crate::authority::MAX_DEVICES;

/// Most device lists one session takes from the peer: the two people's, and room to spare.
pub const MAX_DEVICE_LISTS: usize = 4;

fn inventory_digests(inv: &BTreeMap<VolumeId, Vec<ChangeHash>>) -> BTreeMap<VolumeId, HeadsDigest> {
    inv.iter().map(|(v, h)| (*v, heads_digest(h))).collect()
}

impl SyncSession {
    pub fn new(shared: Vec<Shared>, state: PeerState) -> SyncSession {
        SyncSession {
            shared,
            state,
            active: BTreeMap::new(),
            sent_full: BTreeSet::new(),
            whole: BTreeMap::new(),
            level: BTreeSet::new(),
            rejected: 0,
            devices_out: Vec::new(),
            devices_sent: false,
            devices_digest_in: None,
            devices_in: Vec::new(),
            peer: None,
            hints_out: Vec::new(),
            hints_in: Vec::new(),
            signing: None,
            signed_sent: BTreeSet::new(),
            signed_taken: 0,
            cut: BTreeSet::new(),
            said_hello: false,
            heard_hello: false,
            closing: None,
        }
    }

    /// Signs what this device sends of its person's journals, and keeps of what arrives only
    /// what the owners' devices signed.
    pub fn with_signing(mut self, signing: Signing) -> SyncSession {
        self.signing = Some(signing);
        self
    }

    /// Puts the statements for every volume this batch carries data of first, once per volume
    /// per session: fresh ones for this person's journals, the stored ones for the others.
    fn attach_statements(&mut self, docs: &mut Docs, out: &mut Vec<Msg>) {
        let Some(signing) = &self.signing else {
            return;
        };
        let mut statements = Vec::new();
        for msg in out.iter() {
            let (Msg::Volume {
                journal, volume, ..
            }
            | Msg::Snapshot {
                journal, volume, ..
            }) = msg
            else {
                continue;
            };
            if !self.signed_sent.insert((*journal, *volume)) {
                continue;
            }
            if signing.owned.contains(journal) {
                let heads = docs
                    .heads(*journal, *volume)
                    .unwrap_or_else(|| docs.heads_before(*journal, *volume));
                statements.push(signing.device.sign_heads_at(
                    *journal,
                    *volume,
                    &heads,
                    signing.now,
                ));
            }
            statements.extend(docs.signed(*journal, *volume).iter().cloned());
        }
        if !statements.is_empty() {
            statements.truncate(MAX_SIGNED_PER_MESSAGE);
            out.insert(0, Msg::Signed { statements });
        }
    }

    /// Keeps the statements of the owners' devices whose signatures hold.
    fn take_statements(
        &mut self,
        docs: &mut Docs,
        statements: Vec<crate::authority::SignedHeads>,
    ) -> Result<(), SyncError> {
        if statements.len() > MAX_SIGNED_PER_MESSAGE {
            return Err(SyncError::Malformed(
                "more statements than a message may carry",
            ));
        }
        self.signed_taken += statements.len();
        if self.signed_taken > MAX_SIGNED_PER_SESSION {
            return Err(SyncError::Malformed(
                "more statements than a session may carry",
            ));
        }
        let Some(signing) = &self.signing else {
            return Ok(());
        };
        for statement in statements {
            // Statements about a journal this side takes no changes to are of no use here.
            if !self
                .share(statement.journal)
                .is_ok_and(|s| s.accept_changes)
            {
                continue;
            }
            let owner = signing.owners.get(&statement.journal);
            let holds = owner.is_some_and(|list| list.admits(&statement.device))
                && statement.verify().is_ok();
            if holds {
                docs.add_signed(statement);
            } else {
                self.rejected += 1;
            }
        }
        Ok(())
    }

    /// Keeps of each volume the session changed only what is covered: heads stored here before
    /// the session, or heads that a certified, not revoked device of the journal's owner
    /// signed. Anything else (changes forged by a device that only forwards the journal) is
    /// cut away, and the volume is compared afresh next time.
    ///
    /// Returns how many volumes had something cut; [`SyncSession::finish`] runs it too, so a
    /// driver calls it only to learn (and tell) what was refused.
    pub fn keep_covered(&mut self, docs: &mut Docs) -> usize {
        let mut cut = 0;
        let mut checked: Vec<(JournalId, VolumeId)> = docs.iter().map(|(k, _)| *k).collect();
        // A resting volume was covered by its heads when it arrived; it is loaded again only if
        // that no longer holds (a device revoked since).
        for ((journal, volume), heads) in docs.rested() {
            if !docs::all_signed(heads, self.signed_heads(docs, journal, volume).as_ref()) {
                checked.push((journal, volume));
            }
        }
        for (journal, volume) in checked {
            let Some(signed) = self.signed_heads(docs, journal, volume) else {
                continue;
            };
            let signed: Vec<ChangeHash> = signed.into_iter().collect();
            let trusted = docs.heads_before(journal, volume);
            let Some(doc) = docs.doc(journal, volume, false) else {
                continue;
            };
            let ok = crate::authority::covered(doc, &trusted, &signed);
            if ok {
                continue;
            }
            let roots: Vec<ChangeHash> = trusted
                .iter()
                .chain(&signed)
                .copied()
                .filter(|h| doc.get_change_by_hash(h).is_some())
                .collect();
            let kept = doc.fork_at(&roots).unwrap_or_default();
            docs.replace(journal, volume, kept);
            self.rejected += 1;
            self.cut.insert((journal, volume));
            cut += 1;
        }
        cut
    }

    /// The heads of a volume that devices of its journal's owner signed (each statement
    /// checked against the owner's list and its signature), or `None` when this side asks no
    /// signature of the journal: it takes no changes to it, or the owner's list is not known
    /// here (a partner paired before device lists, taken on the word of the device that
    /// delivers it).
    fn signed_heads(
        &self,
        docs: &Docs,
        journal: JournalId,
        volume: VolumeId,
    ) -> Option<BTreeSet<ChangeHash>> {
        let signing = self.signing.as_ref()?;
        let owner = signing.owners.get(&journal)?;
        if !self.share(journal).is_ok_and(|s| s.accept_changes) {
            return None;
        }
        let signed = docs
            .signed(journal, volume)
            .iter()
            .filter(|s| owner.admits(&s.device) && s.verify().is_ok())
            .flat_map(|s| s.heads.iter().copied())
            .collect();
        Some(signed)
    }

    /// Sends these address hints with the device lists (at most [`MAX_HINTED_DEVICES`]).
    pub fn with_hints(
        mut self,
        mut hints: Vec<(crate::authority::DeviceId, Vec<std::net::SocketAddr>)>,
    ) -> SyncSession {
        hints.truncate(MAX_HINTED_DEVICES);
        for (_, addrs) in &mut hints {
            addrs.truncate(crate::pairing::MAX_ADDRS);
        }
        self.hints_out = hints;
        self
    }

    /// The address hints the peer sent: untrusted, for the caller to use only as places to
    /// dial devices it already knows by id.
    pub fn heard_hints(&self) -> &[(crate::authority::DeviceId, Vec<std::net::SocketAddr>)] {
        &self.hints_in
    }

    /// Sends these device lists (encoded) first, before any journal data.
    pub fn with_devices(mut self, lists: Vec<Vec<u8>>) -> SyncSession {
        self.devices_out = lists;
        self
    }

    /// The peer is `device` of `person`: if a list it sends (or forwards) revokes that device,
    /// the session ends before any journal data is taken.
    pub fn with_peer(
        mut self,
        person: crate::authority::PersonId,
        device: crate::authority::DeviceId,
    ) -> SyncSession {
        self.peer = Some((person, device));
        self
    }

    /// The valid device lists the peer sent, for the caller to merge into what it knows.
    pub fn heard_devices(&self) -> &[crate::authority::DeviceList] {
        &self.devices_in
    }

    fn share(&self, journal: JournalId) -> Result<Shared, SyncError> {
        self.shared
            .iter()
            .find(|s| s.journal == journal)
            .copied()
            .ok_or(SyncError::NotShared(journal))
    }

    /// The first batch: a digest of every shared journal.
    pub fn start(&mut self, docs: &mut Docs) -> Batch {
        let journals = self
            .shared
            .iter()
            .map(|s| {
                (
                    s.journal,
                    journal_digest(&inventory_digests(&docs.inventory(s.journal))),
                )
            })
            .collect();
        let mut out = vec![Msg::DevicesDigest {
            digest: devices_digest(&self.devices_out),
        }];
        out.extend(self.hints());
        out.push(Msg::Hello { journals });
        self.attach_statements(docs, &mut out);
        self.said_hello = true;
        Batch(out)
    }

    /// The listener's first answer to the dialer's first batch: its own hello ([`start`]) and
    /// what the dialer's asks for, or, when the two sides are level (every shared journal and
    /// the device lists have the same digests on both), [`Msg::Level`] alone, which ends the
    /// session: nothing changed costs one round trip.
    ///
    /// [`start`]: SyncSession::start
    pub fn answer_hello(&mut self, docs: &mut Docs, batch: Batch) -> Result<Batch, SyncError> {
        let reply = self.handle(docs, batch)?;
        let level = self.heard_hello
            && reply.0.is_empty()
            && self.shared.iter().all(|s| self.level.contains(&s.journal))
            && self.same_lists();
        if !level {
            let mut hello = self.start(docs);
            hello.0.extend(reply.0);
            return Ok(hello);
        }
        self.said_hello = true;
        let mut out: Vec<Msg> = self.hints().into_iter().collect();
        out.push(Msg::Level);
        self.closing = Some(Batch(out.clone()));
        Ok(Batch(out))
    }

    /// The address hints this side gives, as the message that carries them (none if empty).
    fn hints(&self) -> Option<Msg> {
        (!self.hints_out.is_empty()).then(|| Msg::Addresses {
            hints: self.hints_out.clone(),
        })
    }

    /// Whether the peer's digest of its device lists (once heard) matches this side's.
    fn same_lists(&self) -> bool {
        self.devices_digest_in == Some(devices_digest(&self.devices_out))
    }

    /// Whether the session ended level ([`Msg::Level`] sent or heard): nothing more is said.
    pub fn is_over(&self) -> bool {
        self.closing.is_some()
    }

    /// The answer that ends the conversation on the listener's side: [`Msg::Level`] (with its
    /// hints) when the session ended level, else the empty batch.
    pub fn closing(&self) -> Batch {
        self.closing.clone().unwrap_or_default()
    }

    /// Whether this side takes changes to `journal` from the peer (what a [`Preloader`] loads
    /// ahead).
    pub fn accepts_changes(&self, journal: JournalId) -> bool {
        self.share(journal).is_ok_and(|s| s.accept_changes)
    }

    /// Answer one batch from the peer.
    pub fn handle(&mut self, docs: &mut Docs, batch: Batch) -> Result<Batch, SyncError> {
        let mut preloader = docs.preloader();
        preloader.push(docs, |journal| self.accepts_changes(journal), batch.0);
        self.handle_received(docs, preloader.finish())
    }

    /// Answer one batch from the peer, as a [`Preloader`] received it.
    pub fn handle_received(
        &mut self,
        docs: &mut Docs,
        received: Received,
    ) -> Result<Batch, SyncError> {
        let mut out = Vec::new();
        let mut msgs: Vec<_> = received
            .batch
            .0
            .into_iter()
            .zip(received.preloaded)
            .collect();
        // Volume messages before inventories: a volume the peer already
        // started is answered, not started a second time from our side
        // (which would make the peer send its document twice).
        msgs.sort_by_key(|(m, _)| match m {
            Msg::Devices { .. }
            | Msg::DevicesDigest { .. }
            | Msg::Addresses { .. }
            | Msg::Signed { .. } => 0,
            Msg::Hello { .. } | Msg::Level => 1,
            Msg::Snapshot { .. } | Msg::Volume { .. } => 2,
            Msg::Inventory { .. } => 3,
        });
        // A receiver that dials for its first sync asks for every volume it lacks with an
        // Automerge message, next to the full inventory that says it lacks them: those volumes
        // go whole as snapshots, as when this side starts them (answering the Automerge
        // messages would send every change, about three times the bytes).
        let lacking = self.lacking(docs, msgs.iter().map(|(m, _)| m));
        for (msg, preloaded) in msgs {
            if let Msg::Volume {
                journal, volume, ..
            } = &msg
                && let Some(heads) = lacking.get(&(*journal, *volume))
                && self.send_whole(docs, *journal, *volume, *heads, &mut out)
            {
                continue;
            }
            self.handle_msg(docs, msg, preloaded, &mut out)?;
        }
        if self.is_over() {
            // The listener said both sides are level, device lists included: nothing to add.
            return Ok(Batch(out));
        }
        // The peer's lists differ from this side's: this side's go first in its answer, before
        // anything of the journals. (A peer that sent no digest gets them too.)
        if !self.devices_sent && !self.same_lists() {
            self.devices_sent = true;
            let lists = self
                .devices_out
                .iter()
                .map(|list| Msg::Devices { list: list.clone() });
            out.splice(0..0, lists);
        }
        self.attach_statements(docs, &mut out);
        Ok(Batch(out))
    }

    /// The volumes a full inventory in `msgs` says the peer lacks, of a journal it may only
    /// receive from this side, with their heads digests here.
    fn lacking<'m>(
        &self,
        docs: &mut Docs,
        msgs: impl Iterator<Item = &'m Msg>,
    ) -> BTreeMap<(JournalId, VolumeId), HeadsDigest> {
        let mut out = BTreeMap::new();
        for msg in msgs {
            let Msg::Inventory {
                journal,
                full: true,
                volumes,
            } = msg
            else {
                continue;
            };
            let receive_only = self.share(*journal).is_ok_and(|s| !s.accept_changes);
            if !receive_only || volumes.len() > MAX_VOLUMES_PER_JOURNAL {
                continue;
            }
            let theirs: BTreeSet<VolumeId> = volumes.iter().map(|(v, _)| *v).collect();
            for (v, digest) in inventory_digests(&docs.inventory(*journal)) {
                if !theirs.contains(&v) {
                    out.insert((*journal, v), digest);
                }
            }
        }
        out
    }

    /// Send `volume` (whose heads digest is `heads`) whole, once per session, if its snapshot
    /// is at hand. True if it went (now or earlier in the session).
    fn send_whole(
        &mut self,
        docs: &mut Docs,
        journal: JournalId,
        volume: VolumeId,
        heads: HeadsDigest,
        out: &mut Vec<Msg>,
    ) -> bool {
        if self.whole.contains_key(&(journal, volume)) {
            return true;
        }
        let Some(document) = docs.snapshot(journal, volume) else {
            return false;
        };
        out.push(Msg::Snapshot {
            journal,
            volume,
            document,
        });
        self.whole.insert((journal, volume), heads);
        true
    }

    fn handle_msg(
        &mut self,
        docs: &mut Docs,
        msg: Msg,
        preloaded: Option<docs::Preloaded>,
        out: &mut Vec<Msg>,
    ) -> Result<(), SyncError> {
        match msg {
            Msg::Devices { list } => {
                let Ok(list) = crate::authority::DeviceList::decode(&list) else {
                    self.rejected += 1;
                    return Ok(());
                };
                if self.devices_in.len() >= MAX_DEVICE_LISTS {
                    return Err(SyncError::Malformed("more device lists than a couple has"));
                }
                let revokes_peer = self.peer.is_some_and(|(person, device)| {
                    list.person() == person && list.revocation(&device).is_some()
                });
                // What is heard applies at once: a device certified (or revoked) in this list
                // vouches (or no longer does) for its owner's journals in this very session.
                if let Some(signing) = &mut self.signing {
                    for owner in signing.owners.values_mut() {
                        if owner.person() == list.person() {
                            let _ = owner.merge(&list);
                        }
                    }
                }
                // Kept even when it ends the session: the caller stores the revocation.
                self.devices_in.push(list);
                if revokes_peer {
                    return Err(SyncError::PeerRevoked);
                }
            }
            // The first one counts (a repeat changes nothing).
            Msg::DevicesDigest { digest } => {
                self.devices_digest_in.get_or_insert(digest);
            }
            Msg::Signed { statements } => self.take_statements(docs, statements)?,
            Msg::Addresses { hints } => {
                if !self.hints_in.is_empty() || hints.len() > MAX_HINTED_DEVICES {
                    return Err(SyncError::Malformed("address hints beyond the bound"));
                }
                self.hints_in = hints;
            }
            Msg::Level => {
                // Only the listener's first answer may end the session, and only as an answer
                // to this side's hello.
                if !self.said_hello || self.heard_hello {
                    return Err(SyncError::Malformed("a level ending out of turn"));
                }
                for s in &self.shared {
                    self.level.insert(s.journal);
                }
                self.closing = Some(Batch::default());
            }
            Msg::Hello { journals } => {
                self.heard_hello = true;
                for (journal, theirs) in journals {
                    // Journals we do not share with this peer are not discussed.
                    if self.share(journal).is_err() {
                        continue;
                    }
                    let inv = inventory_digests(&docs.inventory(journal));
                    if journal_digest(&inv) == theirs {
                        self.level.insert(journal);
                        continue;
                    }
                    let agreed = self.state.journals.get(&journal).map(|s| &s.agreed);
                    let full = agreed.is_none_or(BTreeMap::is_empty);
                    let volumes = inv
                        .into_iter()
                        .filter(|(v, d)| full || agreed.and_then(|a| a.get(v)) != Some(d))
                        .collect();
                    if full {
                        self.sent_full.insert(journal);
                    }
                    out.push(Msg::Inventory {
                        journal,
                        full,
                        volumes,
                    });
                }
            }
            Msg::Inventory {
                journal,
                full,
                volumes,
            } => {
                let share = self.share(journal)?;
                let inv = inventory_digests(&docs.inventory(journal));
                let agreed = self.agreed(journal);
                if volumes.len() > MAX_VOLUMES_PER_JOURNAL {
                    return Err(SyncError::Malformed("more volumes than a journal may have"));
                }
                let theirs: BTreeMap<VolumeId, HeadsDigest> = volumes.into_iter().collect();
                let differ = differing(share, &inv, &agreed, &theirs, full);
                if differ.is_empty() && !full && !self.sent_full.contains(&journal) {
                    // Our records of the last agreement disagree: compare everything.
                    self.sent_full.insert(journal);
                    out.push(Msg::Inventory {
                        journal,
                        full: true,
                        volumes: inv.clone().into_iter().collect(),
                    });
                }
                for v in differ {
                    if self.active.contains_key(&(journal, v)) {
                        continue;
                    }
                    // The peer has none of a volume it may only receive from
                    // us: send the document whole.
                    let they_lack = full && !theirs.contains_key(&v) && inv.contains_key(&v);
                    if they_lack
                        && !share.accept_changes
                        && self.send_whole(docs, journal, v, inv[&v], out)
                    {
                        continue;
                    }
                    let mut state = self.open_state(share, v);
                    if let Some(doc) = docs.doc(journal, v, share.accept_changes)
                        && let Some(m) = doc.sync().generate_sync_message(&mut state)
                    {
                        out.push(Msg::Volume {
                            journal,
                            volume: v,
                            message: m.encode(),
                        });
                    }
                    self.active.insert((journal, v), state);
                }
            }
            Msg::Snapshot {
                journal,
                volume,
                document,
            } => {
                let share = self.share(journal)?;
                let signed = self.signed_heads(docs, journal, volume);
                if !share.accept_changes
                    || !docs.adopt(journal, volume, document, preloaded, signed.as_ref())
                {
                    self.rejected += 1;
                } else if let Some(heads) = docs.inventory(journal).get(&volume) {
                    self.whole.insert((journal, volume), heads_digest(heads));
                }
            }
            Msg::Volume {
                journal,
                volume,
                message,
            } => {
                let share = self.share(journal)?;
                let message = sync::Message::decode(&message)
                    .map_err(|_| SyncError::Malformed("automerge sync message"))?;
                if !share.accept_changes && !message.changes.is_empty() {
                    // The peer may not change this journal: what it sent is dropped.
                    self.rejected += 1;
                }
                let message = checked_message(message, share.accept_changes)?;
                let mut state = match self.active.remove(&(journal, volume)) {
                    Some(state) => state,
                    None => self.open_state(share, volume),
                };
                if let Some(doc) = docs.doc(journal, volume, share.accept_changes) {
                    // A message automerge rejects ends this volume's exchange, not the session.
                    let _ = doc.sync().receive_sync_message(&mut state, message);
                    if let Some(m) = doc.sync().generate_sync_message(&mut state) {
                        out.push(Msg::Volume {
                            journal,
                            volume,
                            message: m.encode(),
                        });
                    }
                }
                self.active.insert((journal, volume), state);
            }
        }
        Ok(())
    }

    fn agreed(&self, journal: JournalId) -> BTreeMap<VolumeId, HeadsDigest> {
        self.state
            .journals
            .get(&journal)
            .map(|s| s.agreed.clone())
            .unwrap_or_default()
    }

    /// What must be loaded before [`SyncSession::handle`] can answer `batch` (every shared
    /// journal's stored heads must be in `docs` already: see [`prepare`]).
    pub fn wants(&self, batch: &Batch, docs: &mut Docs) -> Wants {
        let mut wants = Wants::default();
        for msg in &batch.0 {
            match msg {
                Msg::Hello { .. }
                | Msg::Level
                | Msg::Devices { .. }
                | Msg::DevicesDigest { .. }
                | Msg::Addresses { .. }
                | Msg::Signed { .. } => {}
                Msg::Inventory {
                    journal,
                    full,
                    volumes,
                } => {
                    let Ok(share) = self.share(*journal) else {
                        continue;
                    };
                    if volumes.len() > MAX_VOLUMES_PER_JOURNAL {
                        continue;
                    }
                    let inv = inventory_digests(&docs.inventory(*journal));
                    let theirs: BTreeMap<VolumeId, HeadsDigest> = volumes.iter().copied().collect();
                    for v in differing(share, &inv, &self.agreed(*journal), &theirs, *full) {
                        let they_lack = *full && !theirs.contains_key(&v) && inv.contains_key(&v);
                        if they_lack && !share.accept_changes {
                            wants.snapshots.insert((*journal, v));
                        } else {
                            wants.volumes.insert((*journal, v));
                        }
                    }
                }
                Msg::Snapshot {
                    journal, volume, ..
                }
                | Msg::Volume {
                    journal, volume, ..
                } => {
                    wants.volumes.insert((*journal, *volume));
                }
            }
        }
        wants
    }

    fn open_state(&self, share: Shared, volume: VolumeId) -> sync::State {
        let mut state = self
            .state
            .journals
            .get(&share.journal)
            .and_then(|j| j.automerge.get(&volume))
            .and_then(|bytes| sync::State::decode(bytes).ok())
            .unwrap_or_default();
        if !share.accept_changes {
            state.read_only = true;
        }
        state
    }

    /// The volumes this session exchanged Automerge messages about.
    pub fn touched(&self) -> impl Iterator<Item = (JournalId, VolumeId)> + '_ {
        self.active.keys().copied()
    }

    /// How many messages carried changes the peer was not allowed to make.
    pub fn rejected(&self) -> usize {
        self.rejected
    }

    /// End the session and return what to remember about this peer.
    pub fn finish(mut self, docs: &mut Docs) -> PeerState {
        self.keep_covered(docs);
        let cut = std::mem::take(&mut self.cut);
        for s in &self.shared {
            let inv = inventory_digests(&docs.inventory(s.journal));
            let entry = self.state.journals.entry(s.journal).or_default();
            if self.level.contains(&s.journal) {
                entry.agreed = inv.clone();
            }
            // A volume sent whole is assumed taken; if the peer refused it,
            // the next session finds out and compares everything.
            for ((journal, vol), digest) in &self.whole {
                if *journal == s.journal && inv.get(vol) == Some(digest) {
                    entry.agreed.insert(*vol, *digest);
                }
            }
            for ((journal, vol), state) in &self.active {
                if *journal != s.journal {
                    continue;
                }
                if cut.contains(&(*journal, *vol)) {
                    // What the peer holds and this side refused: start afresh next time.
                    entry.automerge.remove(vol);
                    entry.agreed.remove(vol);
                    continue;
                }
                entry.automerge.insert(*vol, state.encode());
                let mine = docs.heads(*journal, *vol);
                match (mine, &state.their_heads) {
                    (Some(mine), Some(theirs)) if heads_digest(&mine) == heads_digest(theirs) => {
                        entry.agreed.insert(*vol, heads_digest(&mine));
                    }
                    _ => {
                        entry.agreed.remove(vol);
                    }
                }
            }
        }
        self.state
    }
}

/// Volumes of a journal to exchange after the peer's inventory (`theirs`): those that differ
/// between the two sides, those that changed here since the last agreement, and, when the peer
/// listed everything (`full`), those it lacks. A journal the peer may not change has no volumes
/// but the ones here: volume ids of it that only the peer names are not followed.
fn differing(
    share: Shared,
    inv: &BTreeMap<VolumeId, HeadsDigest>,
    agreed: &BTreeMap<VolumeId, HeadsDigest>,
    theirs: &BTreeMap<VolumeId, HeadsDigest>,
    full: bool,
) -> BTreeSet<VolumeId> {
    let mut differ = BTreeSet::new();
    for (v, d) in theirs {
        let known_or_theirs = share.accept_changes || inv.contains_key(v);
        if inv.get(v) != Some(d) && known_or_theirs {
            differ.insert(*v);
        }
    }
    for (v, d) in inv {
        let changed_here = agreed.get(v) != Some(d);
        let they_differ = theirs.get(v).is_some_and(|t| t != d);
        let they_lack = full && !theirs.contains_key(v);
        if (changed_here && theirs.get(v).is_none_or(|t| t != d)) || they_differ || they_lack {
            differ.insert(*v);
        }
    }
    differ
}

/// Loads what the session needs for its next step from `backend` into `docs`: every shared
/// journal's stored heads, then what `batch` (if any) asks for. Drivers call this between
/// batches, where blocking is allowed; the session itself never touches the backend.
pub fn prepare(
    session: &SyncSession,
    batch: Option<&Batch>,
    docs: &mut Docs,
    backend: &mut dyn Backend,
) {
    let journals = Wants {
        journals: session.shared.iter().map(|s| s.journal).collect(),
        ..Wants::default()
    };
    docs.fill(backend, &journals);
    if let Some(batch) = batch {
        let wants = session.wants(batch, docs);
        docs.fill(backend, &wants);
    }
}

mod docs;
pub use docs::{Adopted, Backend, Docs, Preloader, Received, Wants};

mod wire;
pub use wire::{decode_batch, decode_peer_state, encode_batch, encode_peer_state};

/// Most volumes one journal may have: 65,536 volumes of 256 items, sixteen million items.
/// An inventory naming more is refused, so peer state never grows past it.
pub const MAX_VOLUMES_PER_JOURNAL: usize = 65_536;

/// Most heads, needed hashes and "have" summaries one Automerge sync message may carry. A
/// journal volume has a handful of heads; these bounds are far above any honest message.
pub const MAX_MESSAGE_HASHES: usize = 4096;
/// Most "have" summaries in one message (Automerge sends one).
pub const MAX_MESSAGE_HAVES: usize = 16;

/// Automerge trusts what a sync message says about itself: a Bloom filter with zero bits but
/// entries divides by zero, one with four billion probes allocates sixteen gigabytes. So a
/// message is taken apart and rebuilt from checked parts before Automerge sees it: counts
/// bounded, every Bloom filter re-read and replaced by an empty one (which only makes us send
/// more) unless its parameters are the ones Automerge itself writes; compressed changes are
/// measured before anything inflates them (`inflate`). For a journal the peer
/// may not change (`writable` false), only what serves their reading is kept: no changes, no
/// flags.
pub fn checked_message(message: sync::Message, writable: bool) -> Result<sync::Message, SyncError> {
    if message.heads.len() > MAX_MESSAGE_HASHES
        || message.need.len() > MAX_MESSAGE_HASHES
        || message.have.len() > MAX_MESSAGE_HAVES
        || message
            .have
            .iter()
            .any(|h| h.last_sync.len() > MAX_MESSAGE_HASHES)
    {
        return Err(SyncError::Malformed(
            "automerge sync message over duet's bounds",
        ));
    }
    if writable
        && crate::inflate::check_all(message.changes.iter(), crate::inflate::MAX_INFLATED).is_err()
    {
        return Err(SyncError::Malformed(
            "automerge sync message whose changes would expand past duet's bound",
        ));
    }
    let have = message
        .have
        .into_iter()
        .map(|h| sync::Have {
            last_sync: h.last_sync,
            bloom: if bloom_is_sane(&h.bloom.to_bytes()) {
                h.bloom
            } else {
                sync::BloomFilter::default()
            },
        })
        .collect();
    Ok(sync::Message {
        heads: message.heads,
        need: message.need,
        have,
        changes: if writable {
            message.changes
        } else {
            Vec::<Vec<u8>>::new().into()
        },
        flags: if writable { message.flags } else { None },
        version: message.version,
    })
}

/// Whether an encoded Bloom filter has parameters Automerge can use safely: empty, or entries
/// with 1 to 64 bits each, 1 to 64 probes, and exactly the bytes those imply.
fn bloom_is_sane(bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    fn leb(bytes: &[u8], at: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let byte = *bytes.get(*at)?;
            *at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let mut at = 0;
    let (Some(entries), Some(bits_per_entry), Some(probes)) = (
        leb(bytes, &mut at),
        leb(bytes, &mut at),
        leb(bytes, &mut at),
    ) else {
        return false;
    };
    let want = (entries * bits_per_entry).div_ceil(8);
    entries > 0
        && (1..=64).contains(&bits_per_entry)
        && (1..=64).contains(&probes)
        && bytes.len() - at == want as usize
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod mem;
#[cfg(test)]
mod tests;
