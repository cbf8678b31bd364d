//! duet's network layer: the iroh endpoint, the two ALPNs, length-prefixed framing, the gate
//! that decides who may connect, and pairing over the network.
//!
//! Everything protocol-shaped lives in `duet-core` as pure state machines; this crate only moves
//! their bytes over iroh connections, with a size limit and a timeout on every read.

mod clock;
mod endpoint;
pub mod framing;
mod gate;
pub mod lan;
mod pair;
pub mod resolver;
pub mod sync;

pub use clock::Clock;
pub use endpoint::{
    NetConfig, NetError, RelayMode, RelayModeParseError, bind_endpoint, closed_as_crossed,
    endpoint_addr, endpoint_builder, is_local_network, local_contact, reach, refused_by_gate,
    remote_endpoint_id, wait_online,
};
pub use framing::{FrameError, MAX_FRAME, read_frame, write_frame};
pub use gate::{Gate, InviteGuard};
pub use pair::{
    LocalIdentity, MakeGrant, PairError, PairedPartner, link_invite, link_join, pair_invite,
    pair_join,
};

/// ALPN of the journal sync protocol, version 1.
pub const SYNC_ALPN: &[u8] = b"duet/sync/1";
/// ALPN of the pairing protocol, version 1.
pub const PAIR_ALPN: &[u8] = b"duet/pair/1";
/// ALPN of device linking (`duet device link`): the pairing handshake, then a grant.
pub const LINK_ALPN: &[u8] = b"duet/link/1";

/// QUIC application close codes that duet uses.
pub mod close_code {
    /// Normal end of a conversation.
    pub const DONE: u32 = 0;
    /// The gate refused the connection: the remote is not paired, or no invite is open.
    pub const NOT_ALLOWED: u32 = 1;
    /// The peer broke the framing or message rules (oversized frame, undecodable message).
    pub const PROTOCOL: u32 = 2;
    /// Too many sessions at once: try again later.
    pub const BUSY: u32 = 3;
    /// Two devices dialed each other at the same moment: this connection, dialed by the device
    /// with the greater id, is closed and the other one carries the session.
    pub const CROSSED: u32 = 4;
}

pub use iroh::{Endpoint, EndpointAddr, EndpointId};
