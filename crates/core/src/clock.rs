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

/// A clock the tests can move: the system time plus an offset that only grows. Enabled by
/// `purser serve --test-clock`; never in production.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: std::sync::atomic::AtomicI64,
}

impl OffsetClock {
    /// Move time forward by `ms` milliseconds (negative values are ignored); returns now.
    pub fn advance_millis(&self, ms: i64) -> OffsetDateTime {
        self.offset_ms
            .fetch_add(ms.max(0), std::sync::atomic::Ordering::SeqCst);
        self.now()
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::milliseconds(self.offset_ms.load(std::sync::atomic::Ordering::SeqCst))
    }
}
