//! Fuzz target `sigv4`: see `purser_fuzz::sigv4` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| purser_fuzz::sigv4::check(data));
