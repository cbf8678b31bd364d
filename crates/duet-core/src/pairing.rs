//! Pairing two devices: the ticket, the handshake messages and the two state machines.
//!
//! Inviter A shows a [`Ticket`]; joiner B dials A and the two run a short handshake over one
//! authenticated channel (iroh's TLS already proves both endpoint ids):
//!
//! ```text
//! B -> A  JoinRequest { proof_B, commit_B, profile_B }   proof_B = MAC(secret, ids, commit_B)
//! A -> B  InviteReply { proof_A, nonce_A, profile_A }    proof_A = MAC(secret, ids, nonce_A)
//! B -> A  Reveal      { nonce_B }                        A checks commit_B = H(nonce_B, id_B)
//!         both show   code = H(ids, nonce_A, nonce_B) mod 10^6
//! A <-> B Confirm     { accepted }                       pinned only if both accepted
//! ```
//!
//! B commits to its nonce before it sees A's, and A reveals its nonce before it sees B's. Whoever
//! sits in the middle therefore has to fix every input it controls before it learns the last
//! input of each side's code, and cannot search for keys or nonces that make the two codes
//! agree: it gets one guess in a million. `docs/protocol.md` specifies every byte.
//!
//! Everything here is pure: time (`now`, unix seconds) and randomness (secrets, nonces) are
//! arguments.

mod error;
mod handshake;
mod messages;
mod ticket;

#[cfg(test)]
mod tests;

pub use error::{AbortReason, PairingError};
pub use handshake::{
    Invitation, Inviter, Joiner, LocalPeer, PairedPeer, PairingCode, derive_code, invite_proof,
    join_commitment, join_proof,
};
pub use link::{CheckedGrant, LinkGrant, MAX_GRANT_LEN, PartnerGrant};
pub use messages::{Abort, Confirm, InviteReply, JoinRequest, PairMessage, Reveal};
pub use ticket::{LINK_TICKET_PREFIX, TICKET_PREFIX, Ticket};

mod link;

/// What a handshake is for. Both use the same messages and the same code; they differ in what
/// the joiner must bring, and the ticket's secret is keyed apart, so a ticket made for one can
/// never complete the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Two people become partners: each brings a journal and a device list of their own.
    Pair,
    /// A new, empty device joins its owner: it brings only its device key and a label, and
    /// receives its owner's identity (a [`LinkGrant`]) once both screens are confirmed.
    Link,
}

/// Length of the one-time ticket secret (128 bits).
pub const SECRET_LEN: usize = 16;
/// Length of each side's handshake nonce.
pub const NONCE_LEN: usize = 32;
/// Longest display name carried in a handshake message, in UTF-8 bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Longest relay URL carried in a ticket or message, in bytes.
pub const MAX_RELAY_URL_LEN: usize = 255;
/// Most socket addresses carried in a ticket or message.
pub const MAX_ADDRS: usize = 16;
/// Version byte that starts every pairing message and every ticket payload.
pub const PAIRING_VERSION: u8 = 2;
