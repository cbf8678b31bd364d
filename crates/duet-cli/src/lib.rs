//! `duet`: a local-first journal for two partners.
//!
//! Two programs are built from this crate, with the same commands and the same arguments:
//! `duet`, which runs every command that stays on this device, and `duet-net` beside it,
//! which runs the ones that reach other devices (`pair`, `sync`, `serve`, `device`). `duet`
//! hands those to `duet-net` whole (the process becomes `duet-net`, same arguments, same
//! terminal). The network stack is most of the code (iroh, QUIC, TLS): a program that links it
//! spends about half a millisecond more starting (the loader relocates its pointers), a fifth
//! of a `duet write`. Keeping `duet` free of it is the linker's work: `duet` never names a network
//! command's code ([`cli::run`] takes it as an argument), so none of it is linked in.

pub mod cli;
mod commands;
mod dates;
mod editor;
mod net;
mod notify;
mod output;
mod safe;
mod sessions;
