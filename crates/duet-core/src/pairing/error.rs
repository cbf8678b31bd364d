//! What can go wrong while pairing, worded for the person at the keyboard.

use crate::codec::DecodeError;

/// A pairing failure. Every message is one line that says what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PairingError {
    /// The text does not start with the ticket prefix.
    #[error(
        "this is not a duet pairing ticket; copy the whole line that `duet pair invite` printed"
    )]
    NotATicket,
    /// A ticket to link a device of one's own, given where a pairing ticket belongs.
    #[error(
        "this ticket links a device of your own, it does not pair; on the new device run `duet \
         device join <ticket>`"
    )]
    LinkTicketForPairing,
    /// A pairing ticket, given where a device link ticket belongs.
    #[error(
        "this is a pairing ticket for a partner, not a device link; on a device you already have \
         run `duet device link`"
    )]
    PairTicketForLink,
    /// Already paired: the other device is not the partner's.
    #[error(
        "this device is already paired, and the other device belongs to someone else; nothing was \
         paired (to pair with someone else, `duet unpair` first)"
    )]
    NotThePartner,
    /// A linked device's grant did not hold together.
    #[error(
        "the device you are joining sent an identity that does not hold together; nothing was changed here"
    )]
    BadGrant,
    /// The ticket has the right prefix but its bytes or checksum are wrong.
    #[error(
        "this ticket is damaged or incomplete; copy the whole line that `duet pair invite` printed and try \
            again"
    )]
    DamagedTicket,
    /// The ticket was made by a newer duet.
    #[error(
        "this ticket uses format {version}, which this duet does not understand; update duet on this device \
            and try again"
    )]
    UnsupportedTicketVersion {
        /// The version found in the ticket.
        version: u8,
    },
    /// The ticket's expiry has passed.
    #[error("this ticket has expired; ask your partner to run `duet pair invite` again")]
    Expired,
    /// The joiner's proof does not match the ticket's secret.
    #[error(
        "the ticket's secret was not accepted; make sure you copied the newest ticket from `duet pair \
            invite` and run `duet pair join` again"
    )]
    WrongSecret,
    /// Someone already paired with this ticket.
    #[error(
        "this ticket has already been used; ask your partner to run `duet pair invite` again for a fresh one"
    )]
    AlreadyUsed,
    /// The device reached through the ticket could not prove it knows the ticket's secret.
    #[error(
        "the device this ticket points to could not prove it created the ticket; check that the ticket \
            really came from your partner and try again"
    )]
    InviterNotProven,
    /// The joiner revealed a nonce other than the one it committed to.
    #[error(
        "the other device broke its commitment, which points to tampering; nothing was paired: run `duet \
            pair invite` again, on a network you trust"
    )]
    CommitmentMismatch,
    /// The person on this device did not confirm the code.
    #[error(
        "you did not confirm the code, so nothing was paired; run `duet pair invite` or `duet pair join` to \
            start again"
    )]
    DeclinedLocally,
    /// The partner did not confirm the code.
    #[error(
        "your partner did not confirm the code, so nothing was paired; compare the codes and start again \
            with `duet pair invite`"
    )]
    DeclinedByPartner,
    /// A handshake message could not be decoded.
    #[error(
        "received a malformed pairing message ({reason}); make sure both devices run the same duet version"
    )]
    Malformed {
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A handshake message came from a newer protocol version.
    #[error(
        "the other device speaks pairing protocol version {version}; update duet on both devices and try \
            again"
    )]
    UnsupportedProtocolVersion {
        /// The version found in the message.
        version: u8,
    },
    /// A valid message arrived at the wrong moment.
    #[error(
        "the pairing handshake went out of order (got {got} while {expected}); start again with `duet pair \
            invite`"
    )]
    UnexpectedMessage {
        /// What arrived.
        got: &'static str,
        /// What the state machine was waiting for.
        expected: &'static str,
    },
    /// The other device could not follow the handshake.
    #[error(
        "the other device could not follow the pairing handshake; make sure both devices run the same duet \
            version and start again"
    )]
    PeerProtocolError,
    /// This device's name does not fit in a handshake message.
    #[error("your name is longer than {max} bytes; choose a shorter one and try again")]
    NameTooLong {
        /// The limit in UTF-8 bytes.
        max: usize,
    },
    /// This device's relay URL does not fit in a ticket.
    #[error("the relay URL is longer than {max} bytes; use a shorter one with `--relay`")]
    RelayUrlTooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// The other device announced a name that is empty, too long, or holds control or bidi
    /// formatting characters (which could forge what the screen shows next to the code).
    #[error(
        "the other device announced a name duet cannot show safely (empty, over 64 characters, \
         or with control characters); nothing was paired"
    )]
    BadName,
    /// The other device announced, as its journal, one this home already holds (mine, or a
    /// former partner's): only a modified client or a copied home does that.
    #[error(
        "the other device announced a journal this home already holds (one of yours, or a \
         former partner's); nothing was paired"
    )]
    JournalClash,
    /// The other device's device list does not hold, or does not certify that device.
    #[error(
        "the other device's list of devices is forged, damaged, or does not include it; nothing \
         was paired"
    )]
    BadDeviceList,
    /// The other device stopped the handshake for a reason this version does not know.
    #[error(
        "the other device stopped pairing (reason {code}); update duet on both devices and try again"
    )]
    AbortedByPeer {
        /// The reason code it sent.
        code: u8,
    },
}

impl PairingError {
    pub(crate) fn malformed(err: DecodeError) -> Self {
        PairingError::Malformed {
            reason: err.describe(),
        }
    }

    /// The reason to send to the other device when this error ends the handshake, if the other
    /// side should learn about it.
    pub fn abort_reason(&self) -> Option<AbortReason> {
        Some(match self {
            PairingError::WrongSecret => AbortReason::WrongSecret,
            PairingError::Expired => AbortReason::Expired,
            PairingError::AlreadyUsed => AbortReason::AlreadyUsed,
            PairingError::InviterNotProven => AbortReason::InviterNotProven,
            PairingError::CommitmentMismatch => AbortReason::CommitmentMismatch,
            PairingError::Malformed { .. }
            | PairingError::BadName
            | PairingError::JournalClash
            | PairingError::BadDeviceList
            | PairingError::BadGrant
            | PairingError::NotThePartner
            | PairingError::UnsupportedProtocolVersion { .. }
            | PairingError::UnexpectedMessage { .. } => AbortReason::ProtocolError,
            _ => return None,
        })
    }
}

/// Why a device stopped the handshake, as carried by an [`Abort`](super::Abort) message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortReason {
    /// 1: the joiner's proof did not match the ticket's secret.
    WrongSecret,
    /// 2: the ticket had expired when the join request arrived.
    Expired,
    /// 3: the ticket had already been used.
    AlreadyUsed,
    /// 4: the inviter's proof did not match the ticket's secret.
    InviterNotProven,
    /// 5: the joiner's reveal did not match its commitment.
    CommitmentMismatch,
    /// 6: a message was malformed or out of order.
    ProtocolError,
    /// Any other code, kept so that newer peers can add reasons.
    Unknown(u8),
}

impl AbortReason {
    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            AbortReason::WrongSecret => 1,
            AbortReason::Expired => 2,
            AbortReason::AlreadyUsed => 3,
            AbortReason::InviterNotProven => 4,
            AbortReason::CommitmentMismatch => 5,
            AbortReason::ProtocolError => 6,
            AbortReason::Unknown(code) => code,
        }
    }

    /// Reads a wire code; codes this version does not know become [`AbortReason::Unknown`].
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => AbortReason::WrongSecret,
            2 => AbortReason::Expired,
            3 => AbortReason::AlreadyUsed,
            4 => AbortReason::InviterNotProven,
            5 => AbortReason::CommitmentMismatch,
            6 => AbortReason::ProtocolError,
            other => AbortReason::Unknown(other),
        }
    }

    /// The error the receiving side reports to its user.
    pub fn into_error(self) -> PairingError {
        match self {
            AbortReason::WrongSecret => PairingError::WrongSecret,
            AbortReason::Expired => PairingError::Expired,
            AbortReason::AlreadyUsed => PairingError::AlreadyUsed,
            AbortReason::InviterNotProven => PairingError::InviterNotProven,
            AbortReason::CommitmentMismatch => PairingError::CommitmentMismatch,
            AbortReason::ProtocolError => PairingError::PeerProtocolError,
            AbortReason::Unknown(code) => PairingError::AbortedByPeer { code },
        }
    }
}
