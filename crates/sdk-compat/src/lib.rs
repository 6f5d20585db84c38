//! Intentionally empty: see `tests/control_plane.rs`, which drives a running `purser`
//! with the official AWS Rust SDK.
