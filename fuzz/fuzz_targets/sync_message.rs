//! A sync session fed a peer's batches (and a saved peer state), both journals shared.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| duet_core::fuzzing::sync_message(data));
