//! `sigv4`: `purser_sigv4::verify` on arbitrary requests.
//!
//! Invariants:
//! * nothing panics;
//! * an error has a 4xx status (the crate says 403 for all), a code usable as
//!   a header value, and, wrapped the way `purser_server::auth` wraps it, a
//!   valid AWS JSON error body;
//! * neither the message nor `Debug` of the error contains the secret access
//!   key, and the message is printable ASCII of bounded length (request text
//!   is echoed sanitised and capped, as `purser_sigv4::SigV4Error` documents);
//! * success only for the known access key and the expected service.

use purser_model::AwsError;
use purser_sigv4::{Request, verify};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::{RawRequest, check_aws_error};

/// The one known access key (the AWS documentation's example pair).
pub const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
/// Its secret.
pub const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// The signing name the server expects.
pub const SERVICE: &str = "bedrock-agentcore";
/// "now" when the input has no `@<secs>` line: 2025-11-23T16:24:33Z.
pub const DEFAULT_NOW: i64 = 1_763_915_073;

/// Longest message allowed: the longest fixed text plus a few capped echoes.
const MAX_MESSAGE_LEN: usize = 1024;

/// The whole check for one fuzz input.
pub fn check(data: &[u8]) {
    let req = RawRequest::parse(data);
    let now = req
        .now
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or_else(|| OffsetDateTime::from_unix_timestamp(DEFAULT_NOW).unwrap());
    let headers: Vec<(&str, &[u8])> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let request = Request {
        method: &req.method,
        raw_path: &req.path,
        raw_query: req.query.as_deref(),
        headers: &headers,
        body: req.body,
    };
    let lookup =
        |akid: &str| (akid == ACCESS_KEY_ID).then(|| Zeroizing::new(SECRET_ACCESS_KEY.to_owned()));

    match verify(&request, &lookup, now, SERVICE) {
        Ok(v) => {
            assert_eq!(v.access_key_id, ACCESS_KEY_ID);
            assert_eq!(v.service, SERVICE);
            assert!(!v.region.is_empty(), "verified an empty region");
        }
        Err(e) => {
            let message = e.message();
            let debug = format!("{e:?}");
            // Request text is echoed (sanitised): the secret may appear only
            // if the request itself carries it.
            if crate::find(data, SECRET_ACCESS_KEY.as_bytes()).is_none() {
                for text in [&message, &debug] {
                    assert!(
                        !text.contains(SECRET_ACCESS_KEY),
                        "the secret leaks into an error: {text}"
                    );
                }
            }
            assert!(
                message.len() <= MAX_MESSAGE_LEN,
                "message of {} bytes: {message}",
                message.len()
            );
            assert!(
                message.chars().all(|c| c.is_ascii_graphic() || c == ' '),
                "message is not printable ASCII: {message:?}"
            );
            assert_eq!(message, e.to_string());
            // As `purser_server::auth::sigv4_error` does.
            let aws = AwsError::other(e.code(), e.status(), &message);
            check_aws_error(&aws, "sigv4");
        }
    }
    // The redacting Debug of the request must not panic either.
    let _ = format!("{request:?}");
}
