//! [`Timestamp`] and its serde formats.
//!
//! The generated code picks the format per member from the model's `timestampFormat`:
//! * [`iso8601`]: an RFC 3339 string in UTC with milliseconds, `"2026-11-23T16:24:33.123Z"`;
//! * [`epoch_seconds`] (the rest-json body default): seconds since the epoch as a JSON
//!   number, with the milliseconds as a fraction when non-zero (`1763915073.123`, or
//!   `1763915073` on a whole second).
//!
//! Both formats are written with millisecond precision (truncating). On input both accept
//! either form: a JSON number of epoch seconds or an RFC 3339 string.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time, as the generated types carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    /// The current time, truncated to milliseconds (so that it survives a wire round trip).
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Self::from_unix_millis((now.unix_timestamp_nanos() / 1_000_000) as i64)
            .expect("the current time is in range")
    }

    /// The time `millis` milliseconds after the epoch; `None` if out of range.
    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .ok()
            .map(Timestamp)
    }

    /// Milliseconds since the epoch (rounded towards negative infinity).
    pub fn unix_millis(&self) -> i64 {
        self.0.unix_timestamp_nanos().div_euclid(1_000_000) as i64
    }

    /// The RFC 3339 form with milliseconds in UTC: `2026-11-23T16:24:33.123Z`.
    pub fn to_iso8601(&self) -> String {
        let t = self.0.to_offset(time::UtcOffset::UTC);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }

    /// Parses an RFC 3339 date-time (any offset, any fraction).
    pub fn parse_iso8601(s: &str) -> Option<Self> {
        OffsetDateTime::parse(s, &Rfc3339).ok().map(Timestamp)
    }

    /// Epoch seconds as a JSON number: an integer on a whole second, otherwise a float
    /// whose shortest representation has at most three decimals.
    pub fn to_epoch_seconds(&self) -> serde_json::Number {
        let millis = self.unix_millis();
        if millis.rem_euclid(1000) == 0 {
            return serde_json::Number::from(millis.div_euclid(1000));
        }
        let abs = millis.unsigned_abs();
        let sign = if millis < 0 { "-" } else { "" };
        let text = format!("{sign}{}.{:03}", abs / 1000, abs % 1000);
        let f: f64 = text.parse().expect("a decimal literal");
        serde_json::Number::from_f64(f).expect("finite")
    }

    /// The time `secs` seconds after the epoch, rounded to milliseconds.
    pub fn from_epoch_seconds(secs: f64) -> Option<Self> {
        if !secs.is_finite() {
            return None;
        }
        let millis = (secs * 1000.0).round();
        if millis.abs() > 9.0e15 {
            return None;
        }
        Self::from_unix_millis(millis as i64)
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(t: OffsetDateTime) -> Self {
        Timestamp(t)
    }
}

impl From<Timestamp> for OffsetDateTime {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_iso8601())
    }
}

/// Accepts epoch seconds (any JSON number) or an RFC 3339 string.
struct AnyTimestamp;

impl Visitor<'_> for AnyTimestamp {
    type Value = Timestamp;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a timestamp (epoch seconds or an RFC 3339 string)")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
        v.checked_mul(1000)
            .and_then(Timestamp::from_unix_millis)
            .ok_or_else(|| E::custom("timestamp out of range"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
        i64::try_from(v)
            .map_err(|_| E::custom("timestamp out of range"))
            .and_then(|v| self.visit_i64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
        Timestamp::from_epoch_seconds(v).ok_or_else(|| E::custom("timestamp out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
        Timestamp::parse_iso8601(v).ok_or_else(|| E::custom("invalid RFC 3339 timestamp"))
    }
}

struct Iso(Timestamp);

impl Serialize for Iso {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_iso8601())
    }
}

impl<'de> Deserialize<'de> for Iso {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyTimestamp).map(Iso)
    }
}

struct Epoch(Timestamp);

impl Serialize for Epoch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0.to_epoch_seconds();
        if let Some(i) = n.as_i64() {
            s.serialize_i64(i)
        } else {
            s.serialize_f64(n.as_f64().expect("a float"))
        }
    }
}

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyTimestamp).map(Epoch)
    }
}

macro_rules! format_module {
    ($(#[$doc:meta])* $name:ident, $wrapper:ident) => {
        $(#[$doc])*
        pub mod $name {
            use super::*;

            /// Serialises a timestamp in this format.
            pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
                $wrapper(*t).serialize(s)
            }

            /// Deserialises a timestamp (either wire form is accepted).
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
                $wrapper::deserialize(d).map(|w| w.0)
            }

            /// The same format for `Option<Timestamp>` (use with `default` and
            /// `skip_serializing_if = "Option::is_none"`).
            pub mod option {
                use super::super::*;

                /// Serialises an optional timestamp in this format.
                pub fn serialize<S: Serializer>(
                    t: &Option<Timestamp>,
                    s: S,
                ) -> Result<S::Ok, S::Error> {
                    match t {
                        Some(t) => s.serialize_some(&$wrapper(*t)),
                        None => s.serialize_none(),
                    }
                }

                /// Deserialises an optional timestamp (`null` is `None`).
                pub fn deserialize<'de, D: Deserializer<'de>>(
                    d: D,
                ) -> Result<Option<Timestamp>, D::Error> {
                    Option::<$wrapper>::deserialize(d).map(|o| o.map(|w| w.0))
                }
            }
        }
    };
}

format_module!(
    /// `timestampFormat: iso8601`: `"2026-11-23T16:24:33.123Z"`.
    iso8601,
    Iso
);
format_module!(
    /// No `timestampFormat` in a rest-json body: epoch seconds, `1763915073.123`.
    epoch_seconds,
    Epoch
);
