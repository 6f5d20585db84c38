//! The constraint table types the generated `SHAPES` tables are made of.

use crate::ops::Location;
use regex::Regex;
use std::sync::OnceLock;

/// One shape of a service model with its constraints.
#[derive(Debug)]
pub struct ShapeDef {
    /// The model's shape name.
    pub name: &'static str,
    /// The shape carries the `sensitive` trait: its values are never echoed or printed.
    pub sensitive: bool,
    /// Kind and constraints.
    pub kind: ShapeKind,
}

/// The kind of a shape and its constraints. Shape references are indexes into the same
/// service's `SHAPES` table. `min`/`max` are lengths (in Unicode scalar values) for
/// strings, element counts for lists and maps, and value bounds for numbers.
#[derive(Debug)]
pub enum ShapeKind {
    /// A string, optionally an enum.
    String {
        min: Option<i64>,
        max: Option<i64>,
        /// Must match in full.
        pattern: Option<&'static Pattern>,
        /// Allowed values (model values, then Purser extension values).
        enum_values: Option<&'static [&'static str]>,
        /// The Purser extension values among `enum_values`.
        extension_values: &'static [&'static str],
    },
    /// A 32-bit integer.
    Integer { min: Option<i64>, max: Option<i64> },
    /// A 64-bit integer.
    Long { min: Option<i64>, max: Option<i64> },
    /// A boolean.
    Boolean,
    /// A timestamp with its body serialisation format.
    Timestamp { format: TimestampFormat },
    /// Any JSON value.
    Document,
    /// A list.
    List {
        member: usize,
        min: Option<i64>,
        max: Option<i64>,
    },
    /// A map with string keys.
    Map {
        key: usize,
        value: usize,
        min: Option<i64>,
        max: Option<i64>,
    },
    /// A structure, a union (exactly one member set) or an exception (with its HTTP status).
    Structure {
        members: &'static [MemberDef],
        union: bool,
        error_status: Option<u16>,
    },
}

/// A member of a structure or union.
#[derive(Debug)]
pub struct MemberDef {
    /// The member name (the JSON key in a body).
    pub name: &'static str,
    /// The target shape's index.
    pub target: usize,
    pub required: bool,
    /// Set when the member is bound to the URI, the query string or a header.
    pub location: Option<Location>,
    /// The URI label, query parameter or header name, when `location` is set.
    pub location_name: Option<&'static str>,
    pub idempotency_token: bool,
}

/// How a timestamp is written in a JSON body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampFormat {
    /// RFC 3339 with milliseconds and `Z`: `"2026-11-23T16:24:33.123Z"`.
    Iso8601,
    /// Seconds since the epoch as a JSON number: `1763915073.123`.
    EpochSeconds,
}

/// A model regular expression, compiled on first use. Matching is anchored: the whole
/// value must match.
pub struct Pattern {
    source: &'static str,
    compiled: OnceLock<Regex>,
}

impl Pattern {
    /// A pattern from the model's source text.
    pub const fn new(source: &'static str) -> Self {
        Pattern {
            source,
            compiled: OnceLock::new(),
        }
    }

    /// The model's source text (as shown in validation messages).
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// Compiles `^(?:source)$` without caching it; the error if it does not compile.
    pub fn try_compile(&self) -> Result<Regex, regex::Error> {
        Regex::new(&format!("^(?:{})$", self.source))
    }

    /// The compiled, anchored regex.
    ///
    /// Panics if the pattern does not compile; a test compiles every model pattern.
    pub fn regex(&self) -> &Regex {
        self.compiled.get_or_init(|| {
            self.try_compile()
                .unwrap_or_else(|e| panic!("model pattern {:?} does not compile: {e}", self.source))
        })
    }

    /// Whether `value` matches in full.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex().is_match(value)
    }
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}
