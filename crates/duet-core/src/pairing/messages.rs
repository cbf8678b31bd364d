//! The five handshake messages and their byte encoding.
//!
//! Every message is `version (1 byte) ‖ tag (1 byte) ‖ fields`; see `docs/protocol.md`.

use std::net::SocketAddr;

use super::{AbortReason, MAX_NAME_LEN, PAIRING_VERSION, PairingError};
use crate::codec::{DecodeError, Reader, Writer};

const TAG_JOIN_REQUEST: u8 = 1;
const TAG_INVITE_REPLY: u8 = 2;
const TAG_REVEAL: u8 = 3;
const TAG_CONFIRM: u8 = 4;
const TAG_ABORT: u8 = 5;

/// Joiner → inviter, first message: proof of the ticket secret and a commitment to the
/// joiner's nonce, plus who the joiner is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// `keyed_blake3(K, "duet pair join" ‖ id_A ‖ id_B ‖ commit)`; see [`super::join_proof`].
    pub proof: [u8; 32],
    /// `blake3(nonce_B ‖ id_B)`; see [`super::join_commitment`].
    pub commit: [u8; 32],
    /// The joiner's journal id.
    pub journal_id: [u8; 16],
    /// The joiner's display name.
    pub name: String,
    /// Direct addresses the joiner can be reached at later.
    pub addrs: Vec<SocketAddr>,
    /// The joiner's home relay, if any.
    pub relay_url: Option<String>,
    /// The joiner's person's device list ([`crate::authority::DeviceList`], encoded), which
    /// must certify the joining device.
    pub devices: Vec<u8>,
}

/// Inviter → joiner: proof of the ticket secret and the inviter's nonce in the clear, plus who
/// the inviter is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteReply {
    /// `keyed_blake3(K, "duet pair invite" ‖ id_A ‖ id_B ‖ nonce_A)`; see [`super::invite_proof`].
    pub proof: [u8; 32],
    /// The inviter's nonce.
    pub nonce: [u8; 32],
    /// The inviter's journal id.
    pub journal_id: [u8; 16],
    /// The inviter's display name.
    pub name: String,
    /// Direct addresses the inviter can be reached at later.
    pub addrs: Vec<SocketAddr>,
    /// The inviter's home relay, if any.
    pub relay_url: Option<String>,
    /// The inviter's person's device list, encoded, which must certify the inviting device.
    pub devices: Vec<u8>,
}

/// Joiner → inviter: the nonce behind the earlier commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reveal {
    /// The joiner's nonce.
    pub nonce: [u8; 32],
}

/// Either direction, once per side: whether this side's user confirmed the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirm {
    /// `true` if the user saw the same code on both screens and said yes.
    pub accepted: bool,
}

/// Either direction: the sender stops the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort {
    /// Why.
    pub reason: AbortReason,
}

/// Any pairing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairMessage {
    /// See [`JoinRequest`].
    JoinRequest(JoinRequest),
    /// See [`InviteReply`].
    InviteReply(InviteReply),
    /// See [`Reveal`].
    Reveal(Reveal),
    /// See [`Confirm`].
    Confirm(Confirm),
    /// See [`Abort`].
    Abort(Abort),
}

impl PairMessage {
    /// A short name for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            PairMessage::JoinRequest(_) => "a join request",
            PairMessage::InviteReply(_) => "an invite reply",
            PairMessage::Reveal(_) => "a reveal",
            PairMessage::Confirm(_) => "a confirmation",
            PairMessage::Abort(_) => "an abort",
        }
    }

    /// The deterministic byte encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PAIRING_VERSION);
        match self {
            PairMessage::JoinRequest(m) => {
                w.u8(TAG_JOIN_REQUEST);
                w.bytes(&m.proof);
                w.bytes(&m.commit);
                w.bytes(&m.journal_id);
                w.short_str(&m.name, MAX_NAME_LEN);
                w.addrs(&m.addrs);
                w.opt_url(m.relay_url.as_deref());
                w.long_bytes(&m.devices);
            }
            PairMessage::InviteReply(m) => {
                w.u8(TAG_INVITE_REPLY);
                w.bytes(&m.proof);
                w.bytes(&m.nonce);
                w.bytes(&m.journal_id);
                w.short_str(&m.name, MAX_NAME_LEN);
                w.addrs(&m.addrs);
                w.opt_url(m.relay_url.as_deref());
                w.long_bytes(&m.devices);
            }
            PairMessage::Reveal(m) => {
                w.u8(TAG_REVEAL);
                w.bytes(&m.nonce);
            }
            PairMessage::Confirm(m) => {
                w.u8(TAG_CONFIRM);
                w.u8(u8::from(m.accepted));
            }
            PairMessage::Abort(m) => {
                w.u8(TAG_ABORT);
                w.u8(m.reason.code());
            }
        }
        w.0
    }

    /// Decodes one message; any byte string either decodes or yields an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, PairingError> {
        let mut r = Reader::new(bytes);
        let version = r.u8().map_err(PairingError::malformed)?;
        if version != PAIRING_VERSION {
            return Err(PairingError::UnsupportedProtocolVersion { version });
        }
        let tag = r.u8().map_err(PairingError::malformed)?;
        let message = decode_fields(tag, &mut r)
            .map_err(PairingError::malformed)?
            .ok_or(PairingError::Malformed {
                reason: "unknown message type",
            })?;
        r.finish().map_err(PairingError::malformed)?;
        Ok(message)
    }
}

/// Reads the fields after the tag; `None` for a tag this version does not know.
fn decode_fields(tag: u8, r: &mut Reader<'_>) -> Result<Option<PairMessage>, DecodeError> {
    Ok(Some(match tag {
        TAG_JOIN_REQUEST => PairMessage::JoinRequest(JoinRequest {
            proof: r.array()?,
            commit: r.array()?,
            journal_id: r.array()?,
            name: r.short_str()?,
            addrs: r.addrs()?,
            relay_url: r.opt_url()?,
            devices: r.long_bytes()?.to_vec(),
        }),
        TAG_INVITE_REPLY => PairMessage::InviteReply(InviteReply {
            proof: r.array()?,
            nonce: r.array()?,
            journal_id: r.array()?,
            name: r.short_str()?,
            addrs: r.addrs()?,
            relay_url: r.opt_url()?,
            devices: r.long_bytes()?.to_vec(),
        }),
        TAG_REVEAL => PairMessage::Reveal(Reveal { nonce: r.array()? }),
        TAG_CONFIRM => PairMessage::Confirm(Confirm {
            accepted: r.bool()?,
        }),
        TAG_ABORT => PairMessage::Abort(Abort {
            reason: AbortReason::from_code(r.u8()?),
        }),
        _ => return Ok(None),
    }))
}

impl From<JoinRequest> for PairMessage {
    fn from(m: JoinRequest) -> Self {
        PairMessage::JoinRequest(m)
    }
}

impl From<InviteReply> for PairMessage {
    fn from(m: InviteReply) -> Self {
        PairMessage::InviteReply(m)
    }
}

impl From<Reveal> for PairMessage {
    fn from(m: Reveal) -> Self {
        PairMessage::Reveal(m)
    }
}

impl From<Confirm> for PairMessage {
    fn from(m: Confirm) -> Self {
        PairMessage::Confirm(m)
    }
}

impl From<Abort> for PairMessage {
    fn from(m: Abort) -> Self {
        PairMessage::Abort(m)
    }
}
