//! The volume loader on the bytes of a file.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| duet_core::fuzzing::volume(data));
