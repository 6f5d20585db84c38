//! purser-model
