//! duet-net over real iroh connections, all on loopback, in one process.
//!
//! Endpoints bind 127.0.0.1:0 with relays, address lookup and the port mapper off; the relay
//! test starts its own relay server on loopback. Every wait is bounded.

mod gate;
mod pairing;
mod relay;
mod sync;
mod util;
