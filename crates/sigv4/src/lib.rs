//! purser-sigv4
