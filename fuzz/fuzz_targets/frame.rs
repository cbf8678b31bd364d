//! What a peer sends on a stream: frames, then the decoders behind them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| duet_net::framing::fuzz_frames(data));
