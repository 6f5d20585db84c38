//! Fuzz target `x402`: see `purser_fuzz::x402` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| purser_fuzz::x402::check(data));
