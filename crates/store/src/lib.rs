//! purser-store
