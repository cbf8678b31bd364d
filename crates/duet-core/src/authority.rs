//! Who may write which journal, checked against the author and never the sender.
//!
//! Each person has a **person key** (ed25519). It signs two kinds of statement and nothing
//! else: a **device certificate** ("this device key is mine, under this label, since then") and
//! a **revocation** ("this device is no longer mine"). A person's certificates and revocations
//! form their **device list**; lists only grow (merging two is their union, and a revocation
//! stays), so an old list replayed later can add nothing and take nothing back.
//!
//! Each device signs the heads of a volume of its owner's journal after it changes it
//! ([`SignedHeads`]: journal, volume and heads in the signed bytes). A change to journal J is
//! accepted, whoever delivered it, only when it lies in the history of heads signed by a device
//! that J's owner certified and has not revoked ([`covered`]).
//!
//! Pure code: keys come in as bytes (randomness is the caller's), nothing here reads a clock.

use std::collections::BTreeMap;

use automerge::{AutoCommit, ChangeHash};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::codec::{DecodeError, Reader, Writer};
use crate::id::{JournalId, VolumeId};

/// A person: the public half of their person key.
pub type PersonId = [u8; 32];
/// A device: its iroh endpoint id, the public half of its device key.
pub type DeviceId = [u8; 32];

const CERT_CONTEXT: &[u8] = b"duet device certificate v1";
const REVOKE_CONTEXT: &[u8] = b"duet device revocation v1";
const HEADS_CONTEXT: &[u8] = b"duet volume heads v1";
const LIST_VERSION: u8 = 1;

/// Most devices (certified or revoked) one person's list may hold.
pub const MAX_DEVICES: usize = 64;
/// Most heads one signature may cover: a volume has a handful.
pub const MAX_SIGNED_HEADS: usize = 64;
/// Longest device label, in bytes.
pub const MAX_LABEL: usize = 64;

/// Why a statement or a list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    /// A signature does not verify with the key it names.
    #[error("a device certificate or signature does not verify; it was forged or damaged")]
    BadSignature,
    /// A statement of one person's list names another person.
    #[error("a device list holds a statement by another person")]
    WrongPerson,
    /// A list over [`MAX_DEVICES`].
    #[error("a device list names more than {MAX_DEVICES} devices")]
    TooManyDevices,
    /// A label that is empty, too long, or not plain visible text.
    #[error("a device label must be plain text of 1 to {MAX_LABEL} bytes")]
    BadLabel,
    /// The bytes are not a device list or signature.
    #[error("malformed device list or signature: {0}")]
    Malformed(&'static str),
}

fn malformed(e: DecodeError) -> AuthorityError {
    AuthorityError::Malformed(e.describe())
}

fn verify(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(key)
        .and_then(|k| k.verify_strict(message, &Signature::from_bytes(signature)))
        .is_ok()
}

/// A person key. It signs device certificates and revocations, nothing else.
pub struct PersonKey(SigningKey);

impl std::fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PersonKey").field(&self.id()).finish()
    }
}

impl PersonKey {
    /// The key whose secret is `seed` (32 random bytes, or a recovery phrase's).
    pub fn from_seed(seed: [u8; 32]) -> PersonKey {
        PersonKey(SigningKey::from_bytes(&seed))
    }

    /// The secret, for storage and for the recovery phrase.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn id(&self) -> PersonId {
        self.0.verifying_key().to_bytes()
    }

    /// Certifies `device` as one of mine.
    pub fn certify(&self, device: DeviceId, label: &str, added_at: i64) -> DeviceCert {
        let mut cert = DeviceCert {
            person: self.id(),
            device,
            label: label.to_owned(),
            added_at,
            signature: [0; 64],
        };
        cert.signature = self.0.sign(&cert.signed_bytes()).to_bytes();
        cert
    }

    /// This person's two journals (shared, private), derived from the key: a device restored
    /// from the recovery phrase knows them again, and the partner recognises the shared one.
    pub fn journals(&self) -> (JournalId, JournalId) {
        let derive = |context: &str| {
            let key = blake3::derive_key(context, &self.seed());
            let mut id = [0u8; 16];
            id.copy_from_slice(&key[..16]);
            JournalId(id)
        };
        (
            derive("duet journal id v1"),
            derive("duet private journal id v1"),
        )
    }

    /// Revokes `device`.
    pub fn revoke(&self, device: DeviceId, at: i64) -> Revocation {
        let mut rev = Revocation {
            person: self.id(),
            device,
            at,
            signature: [0; 64],
        };
        rev.signature = self.0.sign(&rev.signed_bytes()).to_bytes();
        rev
    }
}

/// A device key (the iroh endpoint secret). It signs the heads of volumes it wrote.
pub struct DeviceKey(SigningKey);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DeviceKey").field(&self.id()).finish()
    }
}

impl DeviceKey {
    pub fn from_bytes(secret: [u8; 32]) -> DeviceKey {
        DeviceKey(SigningKey::from_bytes(&secret))
    }

    pub fn id(&self) -> DeviceId {
        self.0.verifying_key().to_bytes()
    }

    /// Signs the heads of one volume of a journal.
    pub fn sign_heads(
        &self,
        journal: JournalId,
        volume: VolumeId,
        heads: &[ChangeHash],
    ) -> SignedHeads {
        self.sign_heads_at(journal, volume, heads, 0)
    }

    /// Signs the heads of one volume of a journal as this device holds them at `at` (Unix ms,
    /// this device's clock): of two statements by one device, the later one holds more.
    pub fn sign_heads_at(
        &self,
        journal: JournalId,
        volume: VolumeId,
        heads: &[ChangeHash],
        at: i64,
    ) -> SignedHeads {
        let mut heads = heads.to_vec();
        heads.sort();
        heads.dedup();
        let mut signed = SignedHeads {
            journal,
            volume,
            heads,
            device: self.id(),
            at,
            signature: [0; 64],
        };
        signed.signature = self.0.sign(&signed.signed_bytes()).to_bytes();
        signed
    }
}

/// "This device is mine": signed by the person key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCert {
    pub person: PersonId,
    pub device: DeviceId,
    /// What the person calls it ("laptop", "home").
    pub label: String,
    /// When it was added (ms since the epoch, the certifying device's clock).
    pub added_at: i64,
    pub signature: [u8; 64],
}

impl DeviceCert {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(CERT_CONTEXT);
        w.bytes(&self.person);
        w.bytes(&self.device);
        w.i64(self.added_at);
        w.short_str(&self.label, MAX_LABEL);
        w.0
    }

    /// Whether the person key it names signed it, and its label is one duet shows.
    pub fn verify(&self) -> Result<(), AuthorityError> {
        if self.label.is_empty()
            || self.label.len() > MAX_LABEL
            || !crate::text::valid_name(&self.label)
        {
            return Err(AuthorityError::BadLabel);
        }
        if !verify(&self.person, &self.signed_bytes(), &self.signature) {
            return Err(AuthorityError::BadSignature);
        }
        Ok(())
    }

    fn key(&self) -> (i64, [u8; 64]) {
        (self.added_at, self.signature)
    }
}

/// "This device is no longer mine": signed by the person key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub person: PersonId,
    pub device: DeviceId,
    /// When it was revoked (ms since the epoch, the revoking device's clock).
    pub at: i64,
    pub signature: [u8; 64],
}

impl Revocation {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(REVOKE_CONTEXT);
        w.bytes(&self.person);
        w.bytes(&self.device);
        w.i64(self.at);
        w.0
    }

    pub fn verify(&self) -> Result<(), AuthorityError> {
        if verify(&self.person, &self.signed_bytes(), &self.signature) {
            Ok(())
        } else {
            Err(AuthorityError::BadSignature)
        }
    }

    fn key(&self) -> (i64, [u8; 64]) {
        (self.at, self.signature)
    }
}

/// One person's devices: every certificate and revocation their person key signed that this
/// device has heard of. It only grows; merging is a union, so any order of hearing converges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceList {
    person: PersonId,
    certs: BTreeMap<DeviceId, DeviceCert>,
    revoked: BTreeMap<DeviceId, Revocation>,
}

impl DeviceList {
    pub fn new(person: PersonId) -> DeviceList {
        DeviceList {
            person,
            certs: BTreeMap::new(),
            revoked: BTreeMap::new(),
        }
    }

    pub fn person(&self) -> PersonId {
        self.person
    }

    fn has_room_for(&self, device: &DeviceId) -> bool {
        let mut all: Vec<&DeviceId> = self.certs.keys().chain(self.revoked.keys()).collect();
        all.sort();
        all.dedup();
        all.len() < MAX_DEVICES || all.contains(&device)
    }

    /// Adds a certificate after checking it. Returns whether the list changed. Of two
    /// certificates for one device the earlier is kept, so every device keeps the same one.
    pub fn add_cert(&mut self, cert: DeviceCert) -> Result<bool, AuthorityError> {
        if cert.person != self.person {
            return Err(AuthorityError::WrongPerson);
        }
        cert.verify()?;
        if !self.has_room_for(&cert.device) {
            return Err(AuthorityError::TooManyDevices);
        }
        match self.certs.get(&cert.device) {
            Some(have) if have.key() <= cert.key() => Ok(false),
            _ => {
                self.certs.insert(cert.device, cert);
                Ok(true)
            }
        }
    }

    /// Adds a revocation after checking it. Returns whether the list changed.
    pub fn add_revocation(&mut self, rev: Revocation) -> Result<bool, AuthorityError> {
        if rev.person != self.person {
            return Err(AuthorityError::WrongPerson);
        }
        rev.verify()?;
        if !self.has_room_for(&rev.device) {
            return Err(AuthorityError::TooManyDevices);
        }
        match self.revoked.get(&rev.device) {
            Some(have) if have.key() <= rev.key() => Ok(false),
            _ => {
                self.revoked.insert(rev.device, rev);
                Ok(true)
            }
        }
    }

    /// Merges another copy of this person's list; every statement is checked. Returns how many
    /// statements were new.
    pub fn merge(&mut self, other: &DeviceList) -> Result<usize, AuthorityError> {
        if other.person != self.person {
            return Err(AuthorityError::WrongPerson);
        }
        let mut new = 0;
        for cert in other.certs.values() {
            new += usize::from(self.add_cert(cert.clone())?);
        }
        for rev in other.revoked.values() {
            new += usize::from(self.add_revocation(rev.clone())?);
        }
        Ok(new)
    }

    /// Whether `device` is certified by this person and not revoked.
    pub fn admits(&self, device: &DeviceId) -> bool {
        self.certs.contains_key(device) && !self.revoked.contains_key(device)
    }

    pub fn cert(&self, device: &DeviceId) -> Option<&DeviceCert> {
        self.certs.get(device)
    }

    pub fn revocation(&self, device: &DeviceId) -> Option<&Revocation> {
        self.revoked.get(device)
    }

    /// Every certified device, revoked ones included.
    pub fn certs(&self) -> impl Iterator<Item = &DeviceCert> {
        self.certs.values()
    }

    /// `u8 version ‖ person ‖ u32 n ‖ n × (device ‖ i64 added_at ‖ label ‖ signature) ‖
    /// u32 m ‖ m × (device ‖ i64 at ‖ signature)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(LIST_VERSION);
        w.bytes(&self.person);
        w.u32(self.certs.len() as u32);
        for c in self.certs.values() {
            w.bytes(&c.device);
            w.i64(c.added_at);
            w.short_str(&c.label, MAX_LABEL);
            w.bytes(&c.signature);
        }
        w.u32(self.revoked.len() as u32);
        for r in self.revoked.values() {
            w.bytes(&r.device);
            w.i64(r.at);
            w.bytes(&r.signature);
        }
        w.0
    }

    /// Decodes a list and checks every statement in it.
    pub fn decode(bytes: &[u8]) -> Result<DeviceList, AuthorityError> {
        let mut r = Reader::new(bytes);
        if r.u8().map_err(malformed)? != LIST_VERSION {
            return Err(AuthorityError::Malformed("device list version"));
        }
        let person: PersonId = r.array().map_err(malformed)?;
        let mut list = DeviceList::new(person);
        let n = r.count(32 + 8 + 1 + 64).map_err(malformed)?;
        for _ in 0..n {
            let (device, added_at) = (r.array().map_err(malformed)?, r.i64().map_err(malformed)?);
            let label = r.short_str().map_err(malformed)?;
            let signature = r.array().map_err(malformed)?;
            list.add_cert(DeviceCert {
                person,
                device,
                label,
                added_at,
                signature,
            })?;
        }
        let m = r.count(32 + 8 + 64).map_err(malformed)?;
        for _ in 0..m {
            let (device, at) = (r.array().map_err(malformed)?, r.i64().map_err(malformed)?);
            let signature = r.array().map_err(malformed)?;
            list.add_revocation(Revocation {
                person,
                device,
                at,
                signature,
            })?;
        }
        r.finish().map_err(malformed)?;
        Ok(list)
    }
}

/// A device's signature over the heads of one volume of a journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeads {
    pub journal: JournalId,
    pub volume: VolumeId,
    /// Sorted, without repeats.
    pub heads: Vec<ChangeHash>,
    pub device: DeviceId,
    /// When the device signed (Unix ms, its own clock).
    pub at: i64,
    pub signature: [u8; 64],
}

impl SignedHeads {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(HEADS_CONTEXT);
        w.bytes(self.journal.as_bytes());
        w.bytes(self.volume.as_bytes());
        w.i64(self.at);
        w.u32(self.heads.len() as u32);
        for h in &self.heads {
            w.bytes(&h.0);
        }
        w.0
    }

    /// Whether the device it names signed it (not whether that device may write: see
    /// [`Authority::may_write`]).
    pub fn verify(&self) -> Result<(), AuthorityError> {
        let sorted = self.heads.windows(2).all(|w| w[0] < w[1]);
        if !sorted || self.heads.len() > MAX_SIGNED_HEADS {
            return Err(AuthorityError::Malformed(
                "signed heads out of order or too many",
            ));
        }
        if verify(&self.device, &self.signed_bytes(), &self.signature) {
            Ok(())
        } else {
            Err(AuthorityError::BadSignature)
        }
    }

    /// `journal ‖ volume ‖ device ‖ u32 n ‖ n × head ‖ signature`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.0
    }

    /// Decodes (does not verify: see [`SignedHeads::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedHeads, AuthorityError> {
        let mut r = Reader::new(bytes);
        let signed = SignedHeads::decode(&mut r).map_err(malformed)?;
        r.finish().map_err(malformed)?;
        Ok(signed)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.bytes(self.journal.as_bytes());
        w.bytes(self.volume.as_bytes());
        w.bytes(&self.device);
        w.i64(self.at);
        w.u32(self.heads.len() as u32);
        for h in &self.heads {
            w.bytes(&h.0);
        }
        w.bytes(&self.signature);
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<SignedHeads, DecodeError> {
        let journal = JournalId(r.array()?);
        let volume = VolumeId(r.array()?);
        let device = r.array()?;
        let at = r.i64()?;
        let n = r.count(32)?;
        let heads = (0..n)
            .map(|_| r.array().map(ChangeHash))
            .collect::<Result<_, _>>()?;
        let signature = r.array()?;
        Ok(SignedHeads {
            journal,
            volume,
            heads,
            device,
            at,
            signature,
        })
    }
}

/// Most statements kept per volume: one per device, the latest.
pub const MAX_SIGNED_PER_VOLUME: usize = MAX_DEVICES;

/// Adds `new` to a volume's statements, keeping one per device, the latest by its `at` (of two
/// with the same `at`, the one heard last).
pub fn keep_latest(kept: &mut Vec<SignedHeads>, new: SignedHeads) -> bool {
    let full = kept.len() >= MAX_SIGNED_PER_VOLUME;
    match kept.iter_mut().find(|s| s.device == new.device) {
        Some(old) if old.at > new.at || *old == new => false,
        Some(old) => {
            *old = new;
            true
        }
        None if !full => {
            kept.push(new);
            true
        }
        None => false,
    }
}

/// Encodes a volume's statements (a signature file): `u32 n ‖ n × statement`.
pub fn encode_signed(all: &[SignedHeads]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(all.len() as u32);
    for s in all {
        s.encode(&mut w);
    }
    w.0
}

/// Decodes a signature file (not verified: see [`SignedHeads::verify`]).
pub fn decode_signed(bytes: &[u8]) -> Result<Vec<SignedHeads>, AuthorityError> {
    let mut r = Reader::new(bytes);
    let n = r.count(16 + 8 + 32 + 8 + 4 + 64).map_err(malformed)?;
    if n > MAX_SIGNED_PER_VOLUME {
        return Err(AuthorityError::Malformed("more statements than devices"));
    }
    let all = (0..n)
        .map(|_| SignedHeads::decode(&mut r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(malformed)?;
    r.finish().map_err(malformed)?;
    Ok(all)
}

/// Whether every change in `doc` lies in the history of `trusted` (heads accepted before) or
/// of `signed` (heads signed by devices allowed to write this journal). Heads not in `doc` are
/// ignored: they cover nothing here yet.
pub fn covered(doc: &mut AutoCommit, trusted: &[ChangeHash], signed: &[ChangeHash]) -> bool {
    let roots: Vec<ChangeHash> = trusted
        .iter()
        .chain(signed)
        .copied()
        .filter(|h| doc.get_change_by_hash(h).is_some())
        .collect();
    doc.get_changes(&roots).is_empty()
}

/// The journals a device shares with one of its partner's devices, and which of them that
/// device may change: my journal it may only read, its owner's journal only it may change, and
/// my private journal is never named. Every sync session asks here.
pub fn shared_with_partner(mine: JournalId, theirs: JournalId) -> Vec<crate::sync::Shared> {
    use crate::sync::Shared;
    vec![
        Shared {
            journal: mine,
            accept_changes: false,
        },
        Shared {
            journal: theirs,
            accept_changes: true,
        },
    ]
}

/// The journals a device holds: its person's two and, once paired, the partner's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Journals {
    pub mine: JournalId,
    pub private: JournalId,
    pub partners: Option<JournalId>,
    /// This device was restored from the recovery phrase and waits for its person's journal:
    /// a partner's device may hand it back (every change checked against the signatures of
    /// this person's devices).
    pub recovering: bool,
}

/// What a session with a device of `kind` shares, and which journals that device may change.
/// Another device of mine carries all three, my private journal included, and may change them
/// (it is me, or carries what my partner's devices gave it); a partner's device sees my shared
/// journal read-only and writes only its owner's, except that it hands my journal back to a
/// device of mine that is recovering; a refused device gets nothing.
pub fn shared_with(kind: PeerKind, journals: &Journals) -> Vec<crate::sync::Shared> {
    use crate::sync::Shared;
    match (kind, journals.partners) {
        (PeerKind::Mine, partners) => [Some(journals.mine), Some(journals.private), partners]
            .into_iter()
            .flatten()
            .map(|journal| Shared {
                journal,
                accept_changes: true,
            })
            .collect(),
        (PeerKind::Partners, Some(theirs)) => {
            let mut shared = shared_with_partner(journals.mine, theirs);
            shared[0].accept_changes = journals.recovering;
            shared
        }
        (PeerKind::Partners, None) | (PeerKind::Refused, _) => Vec::new(),
    }
}

/// What a device knows of the couple: its own person's list and the partner's. The one place
/// that decides whose device a peer is and who may write which journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    pub me: DeviceList,
    pub partner: Option<DeviceList>,
}

/// Whose device a peer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerKind {
    /// One of my devices, certified and not revoked.
    Mine,
    /// One of my partner's devices, certified by their person key and not revoked.
    Partners,
    /// Revoked by its person, or never certified by either of us.
    Refused,
}

impl Authority {
    /// Every device a session may be held with: both people's certified, not revoked devices
    /// other than `this`, each with whose it is.
    pub fn peers(&self, this: &DeviceId) -> Vec<(DeviceId, PeerKind)> {
        let mine = self.me.certs().map(|c| (c.device, PeerKind::Mine));
        let theirs = self
            .partner
            .iter()
            .flat_map(|l| l.certs().map(|c| (c.device, PeerKind::Partners)));
        mine.chain(theirs)
            .filter(|(d, _)| d != this && self.peer(d) != PeerKind::Refused)
            .collect()
    }

    /// Whose device `device` is.
    pub fn peer(&self, device: &DeviceId) -> PeerKind {
        if self.me.admits(device) {
            PeerKind::Mine
        } else if self.partner.as_ref().is_some_and(|p| p.admits(device)) {
            PeerKind::Partners
        } else {
            PeerKind::Refused
        }
    }

    /// Whether `signed` may change a journal owned by `owner`: a valid signature by a device
    /// that `owner` certified and has not revoked. Who delivered it does not matter.
    pub fn may_write(&self, owner: &PersonId, signed: &SignedHeads) -> bool {
        let list = if *owner == self.me.person() {
            Some(&self.me)
        } else {
            self.partner.as_ref().filter(|p| p.person() == *owner)
        };
        list.is_some_and(|l| l.admits(&signed.device)) && signed.verify().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use proptest::prelude::*;

    use super::*;

    fn alex() -> PersonKey {
        PersonKey::from_seed([1; 32])
    }

    fn sam() -> PersonKey {
        PersonKey::from_seed([2; 32])
    }

    fn device(n: u8) -> DeviceKey {
        DeviceKey::from_bytes([n; 32])
    }

    fn list_of(person: &PersonKey, devices: &[(u8, &str)]) -> DeviceList {
        let mut list = DeviceList::new(person.id());
        for (n, label) in devices {
            list.add_cert(person.certify(device(*n).id(), label, 1000 + i64::from(*n)))
                .unwrap();
        }
        list
    }

    #[test]
    fn a_certificate_signed_by_another_person_key_is_refused() {
        let mut list = DeviceList::new(alex().id());
        // Sam's key certifying a device in Alex's name.
        let mut forged = sam().certify(device(9).id(), "laptop", 1);
        assert_eq!(
            list.add_cert(forged.clone()),
            Err(AuthorityError::WrongPerson)
        );
        forged.person = alex().id();
        assert_eq!(list.add_cert(forged), Err(AuthorityError::BadSignature));
        // A label changed after signing.
        let mut relabelled = alex().certify(device(3).id(), "laptop", 1);
        relabelled.label = "phone".into();
        assert_eq!(list.add_cert(relabelled), Err(AuthorityError::BadSignature));
        assert!(!list.admits(&device(9).id()) && !list.admits(&device(3).id()));
        assert_eq!(
            list.add_cert(alex().certify(device(4).id(), "bad\u{1b}[2J", 1)),
            Err(AuthorityError::BadLabel)
        );
    }

    #[test]
    fn a_replayed_old_list_takes_no_revocation_back() {
        let old = list_of(&alex(), &[(3, "laptop"), (4, "phone")]);
        let mut now = old.clone();
        assert!(
            now.add_revocation(alex().revoke(device(4).id(), 5000))
                .unwrap()
        );
        assert!(!now.admits(&device(4).id()));
        // The stolen phone's owner replays the list from before.
        assert_eq!(now.merge(&old).unwrap(), 0);
        assert!(!now.admits(&device(4).id()) && now.admits(&device(3).id()));
        // And the old list learns of the revocation by merging the new one.
        let mut later = old.clone();
        assert_eq!(later.merge(&now).unwrap(), 1);
        assert_eq!(later, now);
    }

    #[test]
    fn lists_round_trip_and_damage_is_refused() {
        let mut list = list_of(&alex(), &[(3, "laptop"), (4, "home")]);
        list.add_revocation(alex().revoke(device(5).id(), 9))
            .unwrap();
        let bytes = list.encode();
        assert_eq!(DeviceList::decode(&bytes).unwrap(), list);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            // Every flipped bit is refused or (in a label) refused by the signature: nothing
            // decodes to a list that admits another device.
            if let Ok(other) = DeviceList::decode(&bad) {
                assert!(
                    other
                        .certs()
                        .all(|c| list.admits(&c.device) || list.revocation(&c.device).is_some())
                );
            }
        }
        for cut in 0..bytes.len() {
            assert!(DeviceList::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn a_list_stops_growing_at_its_bound() {
        let mut list = DeviceList::new(alex().id());
        for n in 0..MAX_DEVICES as u8 {
            list.add_cert(alex().certify(DeviceKey::from_bytes([n + 10; 32]).id(), "d", 0))
                .unwrap();
        }
        let one_more = alex().certify(device(200).id(), "d", 0);
        assert_eq!(list.add_cert(one_more), Err(AuthorityError::TooManyDevices));
    }

    fn volume_doc() -> AutoCommit {
        let mut doc = AutoCommit::new();
        doc.set_actor(automerge::ActorId::from([3u8; 16]));
        doc.put(automerge::ROOT, "a", 1).unwrap();
        doc.commit();
        doc
    }

    #[test]
    fn changes_to_my_journal_are_judged_by_their_author_not_their_carrier() {
        let (j, v) = (JournalId([7; 16]), VolumeId([8; 8]));
        let mut me = list_of(&alex(), &[(3, "laptop"), (4, "home")]);
        let partner = list_of(&sam(), &[(5, "laptop")]);
        let authority = Authority {
            me: me.clone(),
            partner: Some(partner),
        };
        let mut doc = volume_doc();
        let before = doc.get_heads();
        doc.put(automerge::ROOT, "b", 2).unwrap();
        doc.commit();
        let after = doc.get_heads();

        // My laptop signed it: accepted whether my home device or Sam's laptop carries it.
        let by_laptop = device(3).sign_heads(j, v, &after);
        assert!(authority.may_write(&alex().id(), &by_laptop));
        assert!(covered(&mut doc, &before, &by_laptop.heads));
        assert_eq!(authority.peer(&device(4).id()), PeerKind::Mine);
        assert_eq!(authority.peer(&device(5).id()), PeerKind::Partners);

        // Signed by Sam's device: Sam may not write my journal.
        let by_sam = device(5).sign_heads(j, v, &after);
        assert!(!authority.may_write(&alex().id(), &by_sam));
        // A stranger with a certificate made by its own key: not one of my devices.
        let stranger = PersonKey::from_seed([66; 32]);
        let mut forged = stranger.certify(device(6).id(), "laptop", 1);
        forged.person = alex().id();
        assert!(me.add_cert(forged).is_err());
        assert!(!authority.may_write(&alex().id(), &device(6).sign_heads(j, v, &after)));
        // Heads signed for another volume or journal do not verify for this one.
        let mut moved = by_laptop.clone();
        moved.volume = VolumeId([9; 8]);
        assert!(!authority.may_write(&alex().id(), &moved));
        // Nothing signed covers the new change.
        assert!(!covered(&mut doc, &before, &[]));
        // The bytes round-trip, and a flipped bit no longer verifies.
        let bytes = by_laptop.to_bytes();
        assert_eq!(SignedHeads::from_bytes(&bytes).unwrap(), by_laptop);
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(SignedHeads::from_bytes(&bad).unwrap().verify().is_err());
        assert!(SignedHeads::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn a_revoked_device_writes_nothing_new() {
        let (j, v) = (JournalId([7; 16]), VolumeId([8; 8]));
        let mut me = list_of(&alex(), &[(3, "laptop"), (4, "phone")]);
        let mut doc = volume_doc();
        let before = doc.get_heads();
        let signed_before = device(4).sign_heads(j, v, &before);
        me.add_revocation(alex().revoke(device(4).id(), 2000))
            .unwrap();
        let authority = Authority { me, partner: None };
        doc.put(automerge::ROOT, "stolen", true).unwrap();
        doc.commit();
        let after = device(4).sign_heads(j, v, &doc.get_heads());
        assert!(!authority.may_write(&alex().id(), &after));
        assert!(!authority.may_write(&alex().id(), &signed_before));
        assert_eq!(authority.peer(&device(4).id()), PeerKind::Refused);
    }

    #[test]
    fn concurrent_writes_by_two_devices_are_covered_by_both_signatures() {
        let (j, v) = (JournalId([7; 16]), VolumeId([8; 8]));
        let mut laptop = volume_doc();
        let base = laptop.get_heads();
        let mut phone = laptop.fork();
        phone.set_actor(automerge::ActorId::from([4u8; 16]));
        laptop.put(automerge::ROOT, "l", 1).unwrap();
        laptop.commit();
        phone.put(automerge::ROOT, "p", 1).unwrap();
        phone.commit();
        let sig_l = device(3).sign_heads(j, v, &laptop.get_heads());
        let sig_p = device(4).sign_heads(j, v, &phone.get_heads());
        let mut merged = laptop.fork();
        merged.merge(&mut phone).unwrap();
        let both: Vec<ChangeHash> = sig_l.heads.iter().chain(&sig_p.heads).copied().collect();
        assert!(covered(&mut merged, &base, &both));
        assert!(
            !covered(&mut merged, &base, &sig_l.heads),
            "the phone's change is unsigned"
        );
    }

    proptest! {
        /// Any order of hearing any subset of statements, twice over, gives the same list.
        #[test]
        fn lists_converge_in_any_order(order in proptest::collection::vec(0usize..12, 0..40)) {
            let key = alex();
            enum Statement {
                Cert(DeviceCert),
                Revoke(Revocation),
            }
            let statements: Vec<Statement> = (0..12u8)
                .map(|i| if i % 3 == 2 {
                    Statement::Revoke(key.revoke(device(i / 3 + 10).id(), i64::from(i)))
                } else {
                    Statement::Cert(key.certify(device(i / 2 + 10).id(), "d", i64::from(i)))
                })
                .collect();
            let apply = |idx: &mut dyn Iterator<Item = usize>| {
                let mut list = DeviceList::new(key.id());
                for i in idx {
                    match &statements[i] {
                        Statement::Cert(c) => { list.add_cert(c.clone()).unwrap(); }
                        Statement::Revoke(r) => { list.add_revocation(r.clone()).unwrap(); }
                    }
                }
                list
            };
            let forward = apply(&mut order.iter().copied());
            let backward = apply(&mut order.iter().rev().copied());
            prop_assert_eq!(&forward, &backward);
            let mut merged = apply(&mut order.iter().copied().take(order.len() / 2));
            merged.merge(&apply(&mut order.iter().copied().skip(order.len() / 2))).unwrap();
            prop_assert_eq!(merged, forward);
        }
    }

    #[test]
    fn my_devices_carry_all_three_journals_a_partners_device_reads_mine_and_writes_its_own() {
        let journals = Journals {
            mine: JournalId([1; 16]),
            private: JournalId([2; 16]),
            partners: Some(JournalId([3; 16])),
            recovering: false,
        };
        let share = |kind| {
            shared_with(kind, &journals)
                .into_iter()
                .map(|s| (s.journal.0[0], s.accept_changes))
                .collect::<Vec<_>>()
        };
        assert_eq!(share(PeerKind::Mine), vec![(1, true), (2, true), (3, true)]);
        assert_eq!(share(PeerKind::Partners), vec![(1, false), (3, true)]);
        assert_eq!(share(PeerKind::Refused), vec![]);
        let restored = Journals {
            recovering: true,
            ..journals
        };
        assert_eq!(
            shared_with(PeerKind::Partners, &restored)
                .iter()
                .map(|s| (s.journal.0[0], s.accept_changes))
                .collect::<Vec<_>>(),
            vec![(1, true), (3, true)]
        );
        let alone = Journals {
            partners: None,
            ..journals
        };
        assert!(shared_with(PeerKind::Partners, &alone).is_empty());

        // Who is whose: a partner listing one of my devices does not make it theirs, a revoked
        // device is nobody's, and this device is never its own peer.
        let (alex, sam) = (alex(), PersonKey::from_seed([9; 32]));
        let mut me = DeviceList::new(alex.id());
        me.add_cert(alex.certify([1; 32], "laptop", 1)).unwrap();
        me.add_cert(alex.certify([2; 32], "phone", 1)).unwrap();
        me.add_revocation(alex.revoke([2; 32], 5)).unwrap();
        let mut theirs = DeviceList::new(sam.id());
        theirs.add_cert(sam.certify([3; 32], "desk", 1)).unwrap();
        theirs
            .add_cert(sam.certify([1; 32], "not theirs", 1))
            .unwrap();
        let auth = Authority {
            me,
            partner: Some(theirs),
        };
        assert_eq!(auth.peer(&[1; 32]), PeerKind::Mine);
        assert_eq!(auth.peer(&[2; 32]), PeerKind::Refused);
        assert_eq!(auth.peers(&[1; 32]), vec![([3; 32], PeerKind::Partners)]);
    }
}
