//! The pairing handshake from both sides, fed a peer's messages.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| duet_core::fuzzing::pairing(data));
