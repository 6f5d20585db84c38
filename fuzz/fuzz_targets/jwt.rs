//! Fuzz target `jwt`: see `purser_fuzz::jwt` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| purser_fuzz::jwt::check(data));
