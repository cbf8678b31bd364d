//! The pairing ticket: what `duet pair invite` prints and `duet pair join` reads.
//!
//! Text form: `duet1` followed by the unpadded, lowercase base32 (RFC 4648 alphabet) of the
//! payload `version ‖ endpoint_id ‖ secret ‖ expires_at ‖ addrs ‖ relay_url ‖ checksum`, where
//! the checksum is the first four bytes of `blake3` over everything before it. The checksum
//! only catches copy-paste damage; the secret is what protects the invite.

use std::net::SocketAddr;

use data_encoding::BASE32_NOPAD_NOCASE;

use super::{PAIRING_VERSION, PairingError, Purpose, SECRET_LEN};
use crate::codec::{Reader, Writer};

/// Text every ticket starts with. The digit names the text envelope; the payload carries its own
/// version byte.
pub const TICKET_PREFIX: &str = "duet1";
/// Text every device link ticket starts with (`duet device link`); the payload is the same.
pub const LINK_TICKET_PREFIX: &str = "duetlink1";

const CHECKSUM_LEN: usize = 4;

/// Everything the joiner needs to reach the inviter and prove it was invited.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The inviter's iroh endpoint id (ed25519 public key).
    pub endpoint_id: [u8; 32],
    /// Direct socket addresses of the inviter (at most [`super::MAX_ADDRS`] are encoded).
    pub addrs: Vec<SocketAddr>,
    /// The inviter's home relay, if it has one.
    pub relay_url: Option<String>,
    /// One-time secret that the joiner proves it knows.
    pub secret: [u8; SECRET_LEN],
    /// Unix seconds after which the inviter refuses the ticket.
    pub expires_at: i64,
}

// The secret must not end up in logs through `{:?}`.
impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field(
                "endpoint_id",
                &BASE32_NOPAD_NOCASE.encode(&self.endpoint_id),
            )
            .field("addrs", &self.addrs)
            .field("relay_url", &self.relay_url)
            .field("secret", &"<hidden>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Ticket {
    /// The ticket as one line of text.
    pub fn encode(&self) -> String {
        self.encode_for(Purpose::Pair)
    }

    /// The ticket as one line of text, with the prefix of its purpose.
    pub fn encode_for(&self, purpose: Purpose) -> String {
        let payload = self.payload(PAIRING_VERSION);
        let mut text = String::from(match purpose {
            Purpose::Pair => TICKET_PREFIX,
            Purpose::Link => LINK_TICKET_PREFIX,
        });
        text.push_str(&BASE32_NOPAD_NOCASE.encode(&payload).to_ascii_lowercase());
        text
    }

    fn payload(&self, version: u8) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(version);
        w.bytes(&self.endpoint_id);
        w.bytes(&self.secret);
        w.i64(self.expires_at);
        w.addrs(&self.addrs);
        w.opt_url(self.relay_url.as_deref());
        let checksum = blake3::hash(&w.0);
        w.bytes(&checksum.as_bytes()[..CHECKSUM_LEN]);
        w.0
    }

    /// Reads a ticket. Whitespace anywhere (line breaks from a terminal, spaces around a paste)
    /// is ignored, and so is letter case.
    pub fn decode(text: &str) -> Result<Ticket, PairingError> {
        Self::decode_for(text, Purpose::Pair)
    }

    /// Reads a ticket made for `purpose`; a ticket made for the other one is refused with an
    /// error that names the right command.
    pub fn decode_for(text: &str, purpose: Purpose) -> Result<Ticket, PairingError> {
        let text: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let is_link = text.starts_with("duetlink");
        match purpose {
            Purpose::Pair if is_link => return Err(PairingError::LinkTicketForPairing),
            Purpose::Link if !is_link && text.starts_with(TICKET_PREFIX) => {
                return Err(PairingError::PairTicketForLink);
            }
            Purpose::Link if !is_link => return Err(PairingError::NotATicket),
            _ => {}
        }
        let text = if is_link {
            format!("duet{}", &text["duetlink".len()..])
        } else {
            text
        };
        let Some(after_name) = text.strip_prefix("duet") else {
            return Err(PairingError::NotATicket);
        };
        let Some(body) = after_name.strip_prefix(&TICKET_PREFIX[4..]) else {
            // `duet2…` is a ticket from a future envelope, anything else is not a ticket.
            return match after_name.chars().next().and_then(|c| c.to_digit(10)) {
                Some(digit) => Err(PairingError::UnsupportedTicketVersion {
                    version: digit as u8,
                }),
                None => Err(PairingError::NotATicket),
            };
        };
        let payload = BASE32_NOPAD_NOCASE
            .decode(body.as_bytes())
            .map_err(|_| PairingError::DamagedTicket)?;
        Self::decode_payload(&payload)
    }

    fn decode_payload(payload: &[u8]) -> Result<Ticket, PairingError> {
        if payload.len() < 1 + CHECKSUM_LEN {
            return Err(PairingError::DamagedTicket);
        }
        let (content, checksum) = payload.split_at(payload.len() - CHECKSUM_LEN);
        if blake3::hash(content).as_bytes()[..CHECKSUM_LEN] != *checksum {
            return Err(PairingError::DamagedTicket);
        }
        let mut r = Reader::new(content);
        let version = r.u8().map_err(|_| PairingError::DamagedTicket)?;
        if version != PAIRING_VERSION {
            return Err(PairingError::UnsupportedTicketVersion { version });
        }
        let damaged = |_| PairingError::DamagedTicket;
        let ticket = Ticket {
            endpoint_id: r.array().map_err(damaged)?,
            secret: r.array().map_err(damaged)?,
            expires_at: r.i64().map_err(damaged)?,
            addrs: r.addrs().map_err(damaged)?,
            relay_url: r.opt_url().map_err(damaged)?,
        };
        r.finish().map_err(damaged)?;
        Ok(ticket)
    }

    /// Whether the ticket's expiry has passed at `now` (unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }

    #[cfg(test)]
    pub(crate) fn encode_with_version(&self, version: u8) -> String {
        let payload = self.payload(version);
        format!(
            "{TICKET_PREFIX}{}",
            BASE32_NOPAD_NOCASE.encode(&payload).to_ascii_lowercase()
        )
    }
}

impl std::str::FromStr for Ticket {
    type Err = PairingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ticket::decode(s)
    }
}

impl std::fmt::Display for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encode())
    }
}
