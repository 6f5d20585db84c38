//! The checks behind Purser's fuzz targets.
//!
//! Each target in `fuzz_targets/` is a one-line wrapper around a `check`
//! function here, so the same checks can replay the seed corpora and saved
//! regressions under `cargo test --lib` (stable, no libFuzzer instrumentation).
//!
//! * [`decode`][]: routing + rest-json binding and model validation
//!   (`purser_model::find_operation`, `decode_input_value`, `decode_input::<T>`).
//! * [`sigv4`][]: `purser_sigv4::verify`.
//! * [`jwt`][]: `purser_jwt` (header gate, JWKS parsing, verification, claim checks).
//! * [`x402`][]: `purser_chain::x402::parse_exact_evm` and what is built from its
//!   result, and `parse_requirement` (every x402 kind, upto and Permit2 included).
//!
//! `decode_request` and `sigv4` read their input as a small text "HTTP request"
//! ([`RawRequest::parse`]), so seeds are readable and libFuzzer's text
//! mutations stay meaningful.

pub mod decode;
pub mod jwt;
pub mod sigv4;
pub mod x402;

use purser_model::AwsError;
use serde_json::Value;

/// A request taken from fuzz bytes.
///
/// Format (every part optional; `\r\n` is accepted for `\n`):
///
/// ```text
/// @1763915073                      <- optional: "now" in Unix seconds (sigv4 only)
/// POST /payments/managers?a=b      <- method, then the target (path and query)
/// Host: localhost:8080             <- headers, "Name: value" (one space after ':' dropped)
/// X-Amz-Date: 20251123T162433Z
///                                  <- blank line
/// {"name": "..."}                  <- body: all the remaining bytes, verbatim
/// ```
///
/// Header values stay raw bytes (they may be any bytes on the wire); the
/// method, path, query and header names are decoded lossily as UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest<'a> {
    /// The `@<secs>` line, when present and a valid integer.
    pub now: Option<i64>,
    pub method: String,
    /// The target before the first `?`.
    pub path: String,
    /// The target after the first `?` (without it), if there is a `?`.
    pub query: Option<String>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: &'a [u8],
}

impl<'a> RawRequest<'a> {
    /// Parses fuzz bytes; never fails (missing parts are empty).
    pub fn parse(data: &'a [u8]) -> RawRequest<'a> {
        let (head, body) = match find(data, b"\r\n\r\n") {
            Some(i) if find(data, b"\n\n").is_none_or(|j| i < j) => (&data[..i], &data[i + 4..]),
            _ => match find(data, b"\n\n") {
                Some(i) => (&data[..i], &data[i + 2..]),
                None => (data, &data[data.len()..]),
            },
        };
        let mut lines = head
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let mut now = None;
        let mut first = lines.next().unwrap_or_default();
        if let Some(rest) = first.strip_prefix(b"@") {
            now = std::str::from_utf8(rest)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            first = lines.next().unwrap_or_default();
        }
        let first = String::from_utf8_lossy(first);
        let (method, target) = first.split_once(' ').unwrap_or((&first, ""));
        // Tolerate a trailing " HTTP/1.1" as in a real request line.
        let target = target.split_once(' ').map_or(target, |(t, _)| t);
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        let headers = lines
            .map(|line| match line.iter().position(|b| *b == b':') {
                Some(i) => {
                    let value = &line[i + 1..];
                    let value = value.strip_prefix(b" ").unwrap_or(value);
                    (
                        String::from_utf8_lossy(&line[..i]).into_owned(),
                        value.to_vec(),
                    )
                }
                None => (String::from_utf8_lossy(line).into_owned(), Vec::new()),
            })
            .collect();
        RawRequest {
            now,
            method: method.to_owned(),
            path,
            query,
            headers,
            body,
        }
    }

    /// The headers as the server sees them: an `http::HeaderMap` (what hyper
    /// hands axum). Headers whose name or value `http` rejects are dropped,
    /// as hyper would have refused the request.
    pub fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_bytes(value),
            ) {
                map.append(n, v);
            }
        }
        map
    }

    /// Serialises back into the fuzz input format (used by the seed generator).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(now) = self.now {
            out.extend_from_slice(format!("@{now}\n").as_bytes());
        }
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.path.as_bytes());
        if let Some(q) = &self.query {
            out.push(b'?');
            out.extend_from_slice(q.as_bytes());
        }
        out.push(b'\n');
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(self.body);
        out
    }
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The invariants of every error the server sends: a 4xx status (a 5xx would
/// mean the server blamed itself for bad input), an error code usable as the
/// `x-amzn-ErrorType` header, and a JSON body with `__type` and `message`.
pub fn check_aws_error(e: &AwsError, context: &str) {
    assert!(
        (400..500).contains(&e.status),
        "{context}: status {} for {e:?}",
        e.status
    );
    assert!(!e.code.is_empty(), "{context}: empty error code: {e:?}");
    assert!(
        http::HeaderValue::from_str(e.code).is_ok(),
        "{context}: error code {:?} is not a valid header value",
        e.code
    );
    let body = e.body();
    let v: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|err| panic!("{context}: error body is not JSON ({err}): {body:?}"));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{context}: error body is not an object: {v}"));
    assert_eq!(
        obj.get("__type").and_then(Value::as_str),
        Some(e.code),
        "{context}: __type of {v}"
    );
    assert_eq!(
        obj.get("message").and_then(Value::as_str),
        Some(e.message.as_str()),
        "{context}: message of {v}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    #[test]
    fn parse_request_format() {
        let r = RawRequest::parse(
            b"@5\nPOST /a/b?x=1&y HTTP/1.1\nHost: h\r\nX:  v \nbare\n\n{}\n\nrest",
        );
        assert_eq!(r.now, Some(5));
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/a/b");
        assert_eq!(r.query.as_deref(), Some("x=1&y"));
        assert_eq!(
            r.headers,
            vec![
                ("Host".to_owned(), b"h".to_vec()),
                ("X".to_owned(), b" v ".to_vec()),
                ("bare".to_owned(), Vec::new()),
            ]
        );
        assert_eq!(r.body, b"{}\n\nrest");
        assert_eq!(RawRequest::parse(&r.to_bytes()).body, r.body);
        let empty = RawRequest::parse(b"");
        assert_eq!((empty.method.as_str(), empty.path.as_str()), ("", ""));
    }

    #[test]
    fn server_errors_fail_the_check() {
        check_aws_error(&AwsError::validation("bad"), "ok");
        check_aws_error(&AwsError::not_found("gone"), "ok");
        let internal = std::panic::catch_unwind(|| {
            check_aws_error(&AwsError::internal("boom"), "5xx");
        });
        assert!(internal.is_err(), "a 500 must fail the check");
    }

    fn inputs(target: &str) -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        for dir in ["seeds", "regressions"] {
            if let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) {
                out.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
            }
        }
        out.sort();
        out
    }

    /// Runs `check` on every seed and regression of `target`; fails listing
    /// every input that panics.
    fn replay(target: &str, check: fn(&[u8])) {
        let files = inputs(target);
        assert!(!files.is_empty(), "no seeds for {target}");
        let failed: Vec<String> = files
            .iter()
            .filter(|f| {
                let data = std::fs::read(f).unwrap();
                std::panic::catch_unwind(|| check(&data)).is_err()
            })
            .map(|f| f.display().to_string())
            .collect();
        assert!(
            failed.is_empty(),
            "{target}: these inputs fail: {failed:#?}"
        );
    }

    #[test]
    fn replay_decode_request() {
        replay("decode_request", crate::decode::check);
    }

    #[test]
    fn replay_jwt() {
        replay("jwt", crate::jwt::check);
    }

    #[test]
    fn replay_sigv4() {
        replay("sigv4", crate::sigv4::check);
    }

    #[test]
    fn replay_x402() {
        replay("x402", crate::x402::check);
    }
}
