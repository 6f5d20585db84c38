use time::OffsetDateTime;

/// The source of "now". Production uses [`SystemClock`]; tests can move time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Milliseconds since the Unix epoch: the one representation of time in storage.
pub fn to_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Truncate to whole milliseconds, so a value read back from storage equals the one written.
pub fn truncate_millis(t: OffsetDateTime) -> OffsetDateTime {
    from_millis(to_millis(t))
}
