//! The handshake's cryptography and its two state machines.

use std::net::SocketAddr;

use super::messages::{Confirm, InviteReply, JoinRequest, Reveal};
use super::{
    MAX_NAME_LEN, MAX_RELAY_URL_LEN, NONCE_LEN, PairingError, Purpose, SECRET_LEN, Ticket,
};
use crate::authority::DeviceList;

/// Context for turning the 16-byte ticket secret into a 32-byte MAC key.
const MAC_KEY_CONTEXT: &str = "duet pair secret v1";
/// Context for deriving the short code.
const CODE_CONTEXT: &str = "duet pairing code v1";
const JOIN_LABEL: &[u8] = b"duet pair join";
const INVITE_LABEL: &[u8] = b"duet pair invite";

type Id = [u8; 32];
type Nonce = [u8; NONCE_LEN];
type Secret = [u8; SECRET_LEN];

/// The six-digit code both people compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PairingCode(u32);

impl PairingCode {
    /// The code as a number below 1,000,000.
    pub fn value(self) -> u32 {
        self.0
    }
}

/// Always six digits, zero-padded.
impl std::fmt::Display for PairingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

/// Context that keys a device link ticket's secret apart from a pairing ticket's.
const LINK_SECRET_CONTEXT: &str = "duet device link secret v1";

/// The secret the proofs are made with: the ticket's own for pairing, a key derived from it for
/// a device link, so that no proof made for one purpose is valid for the other.
fn keyed(secret: &Secret, purpose: Purpose) -> Secret {
    match purpose {
        Purpose::Pair => *secret,
        Purpose::Link => {
            let key = blake3::derive_key(LINK_SECRET_CONTEXT, secret);
            let mut out = [0u8; SECRET_LEN];
            out.copy_from_slice(&key[..SECRET_LEN]);
            out
        }
    }
}

fn mac_key(secret: &Secret) -> [u8; 32] {
    blake3::derive_key(MAC_KEY_CONTEXT, secret)
}

fn mac(secret: &Secret, label: &[u8], inviter: &Id, joiner: &Id, value: &[u8; 32]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(&mac_key(secret));
    hasher.update(label);
    hasher.update(inviter);
    hasher.update(joiner);
    hasher.update(value);
    *hasher.finalize().as_bytes()
}

/// Constant-time equality: `blake3::Hash`'s `==` does not stop at the first differing byte.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    blake3::Hash::from_bytes(*a) == blake3::Hash::from_bytes(*b)
}

/// The joiner's proof: `keyed_blake3(K, "duet pair join" ‖ id_A ‖ id_B ‖ commit_B)` with
/// `K = blake3::derive_key("duet pair secret v1", secret)`.
pub fn join_proof(secret: &Secret, inviter: &Id, joiner: &Id, commit: &[u8; 32]) -> [u8; 32] {
    mac(secret, JOIN_LABEL, inviter, joiner, commit)
}

/// The inviter's proof: `keyed_blake3(K, "duet pair invite" ‖ id_A ‖ id_B ‖ nonce_A)`.
pub fn invite_proof(secret: &Secret, inviter: &Id, joiner: &Id, nonce: &Nonce) -> [u8; 32] {
    mac(secret, INVITE_LABEL, inviter, joiner, nonce)
}

/// The joiner's commitment to its nonce: `blake3(nonce_B ‖ id_B)`.
pub fn join_commitment(nonce: &Nonce, joiner: &Id) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(nonce);
    hasher.update(joiner);
    *hasher.finalize().as_bytes()
}

/// The short code: the first 8 bytes of
/// `blake3::derive_key("duet pairing code v1", id_A ‖ id_B ‖ nonce_A ‖ nonce_B)` as a
/// little-endian `u64`, modulo 1,000,000.
pub fn derive_code(
    inviter: &Id,
    joiner: &Id,
    inviter_nonce: &Nonce,
    joiner_nonce: &Nonce,
) -> PairingCode {
    let mut material = [0u8; 32 * 2 + NONCE_LEN * 2];
    material[..32].copy_from_slice(inviter);
    material[32..64].copy_from_slice(joiner);
    material[64..96].copy_from_slice(inviter_nonce);
    material[96..].copy_from_slice(joiner_nonce);
    let key = blake3::derive_key(CODE_CONTEXT, &material);
    let mut first = [0u8; 8];
    first.copy_from_slice(&key[..8]);
    PairingCode((u64::from_le_bytes(first) % 1_000_000) as u32)
}

/// Who this device is, as told to the other side during pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPeer {
    /// This device's iroh endpoint id.
    pub endpoint_id: Id,
    /// The name the partner will see.
    pub name: String,
    /// This person's journal id.
    pub journal_id: [u8; 16],
    /// Direct addresses this device can be reached at.
    pub addrs: Vec<SocketAddr>,
    /// This device's home relay, if any.
    pub relay_url: Option<String>,
    /// Journals this home already holds, besides `journal_id` (the private one, a former
    /// partner's): the partner may announce none of them, nor `journal_id`.
    pub taken_journals: Vec<[u8; 16]>,
    /// This person's device list, encoded; it certifies this device.
    pub devices: Vec<u8>,
    /// Already paired: only a device of this person may complete the handshake (a new or
    /// restored device of the partner); anyone else is refused before a code is shown.
    pub only_person: Option<crate::authority::PersonId>,
}

impl LocalPeer {
    /// Whether the partner's device list belongs to the person this side may pair with.
    fn accepts_person(&self, list: &DeviceList) -> bool {
        self.only_person.is_none_or(|p| p == list.person())
    }

    /// Whether the partner may announce `journal` as theirs.
    fn refuses_journal(&self, journal: &[u8; 16]) -> bool {
        *journal == self.journal_id || self.taken_journals.contains(journal)
    }

    fn validate(&self) -> Result<(), PairingError> {
        if self.name.len() > MAX_NAME_LEN {
            return Err(PairingError::NameTooLong { max: MAX_NAME_LEN });
        }
        if self
            .relay_url
            .as_ref()
            .is_some_and(|url| url.len() > MAX_RELAY_URL_LEN)
        {
            return Err(PairingError::RelayUrlTooLong {
                max: MAX_RELAY_URL_LEN,
            });
        }
        Ok(())
    }
}

/// The partner, once both people confirmed the code: what to pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedPeer {
    /// The partner's display name.
    pub name: String,
    /// The partner's iroh endpoint id.
    pub endpoint_id: Id,
    /// The partner's journal id.
    pub journal_id: [u8; 16],
    /// Direct addresses the partner announced.
    pub addrs: Vec<SocketAddr>,
    /// The partner's home relay, if it announced one.
    pub relay_url: Option<String>,
    /// The partner's person and devices: every signature checked, the partner's device among
    /// them. From now on any device this list admits is the partner's.
    pub devices: DeviceList,
}

/// The device list a peer announced, if every statement in it holds and it certifies `device`
/// (the endpoint the transport authenticated).
fn their_devices(bytes: &[u8], device: &Id) -> Result<DeviceList, PairingError> {
    let list = DeviceList::decode(bytes).map_err(|_| PairingError::BadDeviceList)?;
    if list.admits(device) {
        Ok(list)
    } else {
        Err(PairingError::BadDeviceList)
    }
}

/// The last phase, shared by both sides: two yes/no answers.
#[derive(Debug)]
struct Confirmation {
    code: PairingCode,
    peer: PairedPeer,
    local: Option<bool>,
    remote: Option<bool>,
}

impl Confirmation {
    fn decide(&mut self, accepted: bool) -> Result<Confirm, PairingError> {
        if self.local.is_some() {
            return Err(out_of_order(
                "a second decision",
                "the partner's confirmation",
            ));
        }
        self.local = Some(accepted);
        Ok(Confirm { accepted })
    }

    fn handle_confirm(&mut self, confirm: &Confirm) -> Result<(), PairingError> {
        if self.remote.is_some() {
            return Err(out_of_order("a second confirmation", "nothing more"));
        }
        self.remote = Some(confirm.accepted);
        if confirm.accepted {
            Ok(())
        } else {
            Err(PairingError::DeclinedByPartner)
        }
    }

    fn finish(self) -> Result<PairedPeer, PairingError> {
        match (self.local, self.remote) {
            (Some(true), Some(true)) => Ok(self.peer),
            (Some(false), _) => Err(PairingError::DeclinedLocally),
            (_, Some(false)) => Err(PairingError::DeclinedByPartner),
            _ => Err(out_of_order("the end of pairing", "both confirmations")),
        }
    }
}

fn out_of_order(got: &'static str, expected: &'static str) -> PairingError {
    PairingError::UnexpectedMessage { got, expected }
}

/// An open invite: holds the ticket's secret and lets exactly one joiner in.
#[derive(Debug)]
pub struct Invitation {
    local: LocalPeer,
    secret: Secret,
    expires_at: i64,
    consumed: bool,
    purpose: Purpose,
}

impl Invitation {
    /// Opens an invite. `secret` must come from a cryptographic random source.
    pub fn new(local: LocalPeer, secret: Secret, expires_at: i64) -> Result<Self, PairingError> {
        Self::for_purpose(local, secret, expires_at, Purpose::Pair)
    }

    /// Opens an invite for `purpose`. For [`Purpose::Link`] the joiner brings no journal and
    /// no device list: it is a new device of the person inviting, and the peer returned at the
    /// end carries the inviter's own list.
    pub fn for_purpose(
        local: LocalPeer,
        secret: Secret,
        expires_at: i64,
        purpose: Purpose,
    ) -> Result<Self, PairingError> {
        local.validate()?;
        Ok(Invitation {
            local,
            secret,
            expires_at,
            consumed: false,
            purpose,
        })
    }

    /// The ticket to show the partner.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            endpoint_id: self.local.endpoint_id,
            addrs: self.local.addrs.clone(),
            relay_url: self.local.relay_url.clone(),
            secret: self.secret,
            expires_at: self.expires_at,
        }
    }

    /// Unix seconds after which join requests are refused.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// Whether a joiner has already proven the secret.
    pub fn is_consumed(&self) -> bool {
        self.consumed
    }

    /// Checks a join request from `joiner_id` (the endpoint id the transport authenticated).
    /// On success the ticket is used up and the returned [`Inviter`] carries on the handshake
    /// with this joiner alone. `nonce` must be fresh randomness.
    ///
    /// A wrong secret leaves the invite open, so that a typo does not cost a new ticket.
    pub fn accept(
        &mut self,
        joiner_id: Id,
        request: &JoinRequest,
        now: i64,
        nonce: Nonce,
    ) -> Result<(Inviter, InviteReply), PairingError> {
        if now >= self.expires_at {
            return Err(PairingError::Expired);
        }
        if self.consumed {
            return Err(PairingError::AlreadyUsed);
        }
        let inviter_id = self.local.endpoint_id;
        let secret = keyed(&self.secret, self.purpose);
        let expected = join_proof(&secret, &inviter_id, &joiner_id, &request.commit);
        if !same(&expected, &request.proof) {
            return Err(PairingError::WrongSecret);
        }
        if !crate::text::valid_name(&request.name) {
            return Err(PairingError::BadName);
        }
        if self.local.refuses_journal(&request.journal_id) {
            return Err(PairingError::JournalClash);
        }
        let devices = match self.purpose {
            Purpose::Pair => {
                let list = their_devices(&request.devices, &joiner_id)?;
                if !self.local.accepts_person(&list) {
                    return Err(PairingError::NotThePartner);
                }
                list
            }
            // A new device of mine: it has no list of its own yet and names no journal.
            Purpose::Link if request.devices.is_empty() && request.journal_id == [0; 16] => {
                DeviceList::decode(&self.local.devices).map_err(|_| PairingError::BadDeviceList)?
            }
            Purpose::Link => return Err(PairingError::BadDeviceList),
        };
        self.consumed = true;
        let reply = InviteReply {
            proof: invite_proof(&secret, &inviter_id, &joiner_id, &nonce),
            nonce,
            journal_id: self.local.journal_id,
            name: self.local.name.clone(),
            addrs: self.local.addrs.clone(),
            relay_url: self.local.relay_url.clone(),
            devices: self.local.devices.clone(),
        };
        let peer = PairedPeer {
            name: request.name.clone(),
            endpoint_id: joiner_id,
            journal_id: request.journal_id,
            addrs: request.addrs.clone(),
            relay_url: request.relay_url.clone(),
            devices,
        };
        let inviter = Inviter {
            inviter_id,
            joiner_id,
            state: InviterState::AwaitingReveal {
                commit: request.commit,
                nonce,
                peer,
            },
        };
        Ok((inviter, reply))
    }
}

#[derive(Debug)]
enum InviterState {
    AwaitingReveal {
        commit: [u8; 32],
        nonce: Nonce,
        peer: PairedPeer,
    },
    Confirming(Confirmation),
    Failed,
}

/// The inviter's side of one handshake, after the joiner proved the secret.
#[derive(Debug)]
pub struct Inviter {
    inviter_id: Id,
    joiner_id: Id,
    state: InviterState,
}

impl Inviter {
    /// The joiner's endpoint id.
    pub fn joiner_id(&self) -> Id {
        self.joiner_id
    }

    /// The name the joiner announced (not yet trusted: show it next to the code).
    pub fn partner_name(&self) -> Option<&str> {
        match &self.state {
            InviterState::AwaitingReveal { peer, .. } => Some(&peer.name),
            InviterState::Confirming(c) => Some(&c.peer.name),
            InviterState::Failed => None,
        }
    }

    /// The code, once the joiner revealed its nonce.
    pub fn code(&self) -> Option<PairingCode> {
        match &self.state {
            InviterState::Confirming(c) => Some(c.code),
            _ => None,
        }
    }

    /// Checks the joiner's nonce against its commitment and derives the code to show.
    pub fn handle_reveal(&mut self, reveal: &Reveal) -> Result<PairingCode, PairingError> {
        let state = std::mem::replace(&mut self.state, InviterState::Failed);
        let InviterState::AwaitingReveal {
            commit,
            nonce,
            peer,
        } = state
        else {
            self.state = state;
            return Err(out_of_order("a reveal", "no reveal"));
        };
        if !same(&join_commitment(&reveal.nonce, &self.joiner_id), &commit) {
            return Err(PairingError::CommitmentMismatch);
        }
        let code = derive_code(&self.inviter_id, &self.joiner_id, &nonce, &reveal.nonce);
        self.state = InviterState::Confirming(Confirmation {
            code,
            peer,
            local: None,
            remote: None,
        });
        Ok(code)
    }

    /// Records this user's answer and returns the message that tells the joiner.
    pub fn decide(&mut self, accepted: bool) -> Result<Confirm, PairingError> {
        match &mut self.state {
            InviterState::Confirming(c) => c.decide(accepted),
            _ => Err(out_of_order("a decision", "the joiner's reveal")),
        }
    }

    /// Records the joiner's answer; a "no" is returned as [`PairingError::DeclinedByPartner`].
    pub fn handle_confirm(&mut self, confirm: &Confirm) -> Result<(), PairingError> {
        match &mut self.state {
            InviterState::Confirming(c) => c.handle_confirm(confirm),
            _ => Err(out_of_order("a confirmation", "the joiner's reveal")),
        }
    }

    /// The partner to pin, if and only if both people said yes.
    pub fn finish(self) -> Result<PairedPeer, PairingError> {
        match self.state {
            InviterState::Confirming(c) => c.finish(),
            _ => Err(out_of_order("the end of pairing", "the joiner's reveal")),
        }
    }
}

#[derive(Debug)]
enum JoinerState {
    AwaitingReply { nonce: Nonce },
    Confirming(Confirmation),
    Failed,
}

/// The joiner's side of the handshake.
#[derive(Debug)]
pub struct Joiner {
    inviter_id: Id,
    joiner_id: Id,
    secret: Secret,
    /// This home's journals, which the inviter may not announce as theirs.
    taken: Vec<[u8; 16]>,
    only_person: Option<crate::authority::PersonId>,
    state: JoinerState,
}

impl Joiner {
    /// Starts joining with `ticket`. `nonce` must be fresh randomness; it stays hidden until the
    /// inviter has revealed its own nonce. Returns the first message to send.
    pub fn new(
        ticket: &Ticket,
        local: &LocalPeer,
        nonce: Nonce,
    ) -> Result<(Joiner, JoinRequest), PairingError> {
        Self::for_purpose(ticket, local, nonce, Purpose::Pair)
    }

    /// Starts joining for `purpose`. A device joining its owner ([`Purpose::Link`]) has no
    /// journal and no device list yet: `local` names the all-zero journal and no devices.
    pub fn for_purpose(
        ticket: &Ticket,
        local: &LocalPeer,
        nonce: Nonce,
        purpose: Purpose,
    ) -> Result<(Joiner, JoinRequest), PairingError> {
        local.validate()?;
        let secret = keyed(&ticket.secret, purpose);
        let commit = join_commitment(&nonce, &local.endpoint_id);
        let request = JoinRequest {
            proof: join_proof(&secret, &ticket.endpoint_id, &local.endpoint_id, &commit),
            commit,
            journal_id: local.journal_id,
            name: local.name.clone(),
            addrs: local.addrs.clone(),
            relay_url: local.relay_url.clone(),
            devices: local.devices.clone(),
        };
        let joiner = Joiner {
            inviter_id: ticket.endpoint_id,
            joiner_id: local.endpoint_id,
            secret,
            taken: [local.journal_id]
                .into_iter()
                .chain(local.taken_journals.iter().copied())
                .collect(),
            only_person: local.only_person,
            state: JoinerState::AwaitingReply { nonce },
        };
        Ok((joiner, request))
    }

    /// The inviter's endpoint id (from the ticket).
    pub fn inviter_id(&self) -> Id {
        self.inviter_id
    }

    /// The name the inviter announced (not yet trusted: show it next to the code).
    pub fn partner_name(&self) -> Option<&str> {
        match &self.state {
            JoinerState::Confirming(c) => Some(&c.peer.name),
            _ => None,
        }
    }

    /// The code, once the inviter's reply was checked.
    pub fn code(&self) -> Option<PairingCode> {
        match &self.state {
            JoinerState::Confirming(c) => Some(c.code),
            _ => None,
        }
    }

    /// Checks the inviter's proof, derives the code, and returns the reveal to send.
    pub fn handle_reply(
        &mut self,
        reply: &InviteReply,
    ) -> Result<(Reveal, PairingCode), PairingError> {
        let state = std::mem::replace(&mut self.state, JoinerState::Failed);
        let JoinerState::AwaitingReply { nonce } = state else {
            self.state = state;
            return Err(out_of_order("an invite reply", "no reply"));
        };
        let expected = invite_proof(
            &self.secret,
            &self.inviter_id,
            &self.joiner_id,
            &reply.nonce,
        );
        if !same(&expected, &reply.proof) {
            return Err(PairingError::InviterNotProven);
        }
        if !crate::text::valid_name(&reply.name) {
            return Err(PairingError::BadName);
        }
        if self.taken.contains(&reply.journal_id) {
            return Err(PairingError::JournalClash);
        }
        let devices = their_devices(&reply.devices, &self.inviter_id)?;
        if self.only_person.is_some_and(|p| p != devices.person()) {
            return Err(PairingError::NotThePartner);
        }
        let code = derive_code(&self.inviter_id, &self.joiner_id, &reply.nonce, &nonce);
        let peer = PairedPeer {
            name: reply.name.clone(),
            endpoint_id: self.inviter_id,
            journal_id: reply.journal_id,
            addrs: reply.addrs.clone(),
            relay_url: reply.relay_url.clone(),
            devices,
        };
        self.state = JoinerState::Confirming(Confirmation {
            code,
            peer,
            local: None,
            remote: None,
        });
        Ok((Reveal { nonce }, code))
    }

    /// Records this user's answer and returns the message that tells the inviter.
    pub fn decide(&mut self, accepted: bool) -> Result<Confirm, PairingError> {
        match &mut self.state {
            JoinerState::Confirming(c) => c.decide(accepted),
            _ => Err(out_of_order("a decision", "the inviter's reply")),
        }
    }

    /// Records the inviter's answer; a "no" is returned as [`PairingError::DeclinedByPartner`].
    pub fn handle_confirm(&mut self, confirm: &Confirm) -> Result<(), PairingError> {
        match &mut self.state {
            JoinerState::Confirming(c) => c.handle_confirm(confirm),
            _ => Err(out_of_order("a confirmation", "the inviter's reply")),
        }
    }

    /// The partner to pin, if and only if both people said yes.
    pub fn finish(self) -> Result<PairedPeer, PairingError> {
        match self.state {
            JoinerState::Confirming(c) => c.finish(),
            _ => Err(out_of_order("the end of pairing", "the inviter's reply")),
        }
    }
}
