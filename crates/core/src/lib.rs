//! purser-core
