//! Fuzz target `decode_request`: see `purser_fuzz::decode` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| purser_fuzz::decode::check(data));
