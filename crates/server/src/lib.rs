//! purser-server
