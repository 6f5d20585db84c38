//! Server-side verifier for AWS Signature Version 4 (`AWS4-HMAC-SHA256`),
//! as used by Purser to authenticate callers of the Bedrock AgentCore
//! Payments rest-json APIs (signing name `bedrock-agentcore`).
//!
//! The crate has no HTTP-framework dependency: the server hands [`verify`] a
//! borrowed view of the request as it arrived on the wire ([`Request`]), a
//! [`SecretLookup`] and the current time, and gets back the authenticated
//! access key id, region and service ([`Verified`]) or a [`SigV4Error`] that
//! already knows the AWS error code, HTTP status and message to answer with.
//!
//! ```
//! use purser_sigv4::{Request, verify};
//! use zeroize::Zeroizing;
//!
//! let headers: [(&str, &[u8]); 1] = [("Host", b"localhost:8080")];
//! let req = Request {
//!     method: "POST",
//!     raw_path: "/payments/processPayment",
//!     raw_query: None,
//!     headers: &headers,
//!     body: b"{}",
//! };
//! let lookup = |akid: &str| (akid == "AKIDEXAMPLE").then(|| Zeroizing::new("secret".to_owned()));
//! let err = verify(&req, &lookup, time::OffsetDateTime::now_utc(), "bedrock-agentcore")
//!     .unwrap_err();
//! assert_eq!(err.code(), "MissingAuthenticationTokenException");
//! assert_eq!(err.status(), 403);
//! assert_eq!(err.message(), "Missing Authentication Token");
//! ```
//!
//! # Accepted forms
//!
//! * Header form: `Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261123/
//!   us-east-1/bedrock-agentcore/aws4_request, SignedHeaders=host;x-amz-date,
//!   Signature=<64 hex>`, with the time in `X-Amz-Date` (ISO-8601 basic,
//!   `20261123T000000Z`) or, failing that, in an IMF-fixdate `Date` header.
//! * Query form (presigned URL): `X-Amz-Algorithm`, `X-Amz-Credential`,
//!   `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`
//!   query parameters. Sending both forms at once is rejected.
//!
//! # Canonicalisation (the rules for every AWS service but S3)
//!
//! * **URI**: `raw_path` exactly as received (still percent-encoded), with
//!   `.`/`..` and empty (`//`) segments removed, then percent-encoded *once
//!   more* with everything but `A-Z a-z 0-9 - _ . ~ /` escaped. So `%3A` on the
//!   wire is `%253A` in the canonical URI and a raw `:` is `%3A`. This "double
//!   encoding" and the dot/empty-segment removal are exactly what botocore and
//!   the Rust SDK's `aws-sigv4` (default settings, which every non-S3 client
//!   uses) do when signing; the tests check it against `aws-sigv4`.
//! * **Query**: split on `&` (empty pieces ignored), each piece split at the
//!   first `=` (none = empty value), decoded as
//!   `application/x-www-form-urlencoded` (`+` is a space, an invalid `%`
//!   escape stays literal), re-encoded with the RFC 3986 unreserved set
//!   (space = `%20`, `+` = `%2B`), sorted by encoded name then encoded value.
//!   Decoding `+` as a space matches `aws-sigv4` and `serde_urlencoded` (what
//!   axum's `Query` uses), so the server sees the same values that were
//!   signed; botocore never emits a raw `+`.
//! * **Headers**: only the ones listed in `SignedHeaders`, in that order,
//!   looked up case-insensitively; each value has leading/trailing spaces and
//!   tabs trimmed and inner runs of spaces collapsed; repeated headers are
//!   joined with `,` in arrival order. Unsigned headers (`User-Agent`,
//!   `amz-sdk-invocation-id`, an unsigned `X-Amzn-Bedrock-AgentCore-Payments-
//!   User-Id`, ...) are ignored. `host` (or `:authority`) must be signed.
//!   `x-amz-security-token` is an ordinary signed header: it is not checked
//!   here. For HTTP/2 the server must pass `:authority` as a `host` header.
//! * **Payload**: always the SHA-256 of the body received. These are JSON
//!   services whose bodies carry what is paid, so the body is always
//!   authenticated: a *signed* `x-amz-content-sha256` header must equal the
//!   SHA-256 of the body ([`SigV4Error::ContentSha256Mismatch`] if not, and
//!   for `UNSIGNED-PAYLOAD` too), and a presigned URL must have been signed
//!   over the body it carries, as botocore's `SigV4QueryAuth` and `aws-sigv4`
//!   presign (one presigned with `UNSIGNED-PAYLOAD`, as S3-style presigners
//!   do, is refused: [`SigV4Error::SignatureDoesNotMatch`]). An unsigned
//!   `x-amz-content-sha256` header is ignored.
//!
//! # Checks, in order
//!
//! 1. Authorization present ([`SigV4Error::MissingAuthenticationToken`]),
//!    well formed ([`SigV4Error::IncompleteSignature`]): algorithm,
//!    `Credential`/`SignedHeaders`/`Signature`, a 5-part credential, a
//!    parseable date, `host` signed, every signed header present.
//! 2. Credential scope ([`SigV4Error::InvalidCredentialScope`], code
//!    `InvalidSignatureException` as AWS does): terminator `aws4_request`,
//!    service equal to `expected_service`, non-empty region, scope date equal
//!    to the date of the request time. The region is *not* restricted: it is
//!    returned in [`Verified`] for the server to judge.
//! 3. Clock skew: the request time must be within 15 minutes of `now`, either
//!    way (boundary inclusive). Presigned URLs must also not be past
//!    `X-Amz-Date + X-Amz-Expires` (at most 7 days).
//! 4. Access key known ([`SigV4Error::UnrecognizedClient`]).
//! 5. Payload hash, then the signature, compared in constant time
//!    ([`SigV4Error::SignatureDoesNotMatch`]).
//!
//! The signing key is derived on every call (four HMAC-SHA256 operations,
//! a few microseconds); it is not cached so that secrets are not retained.
//! Intermediate keys are zeroized on a best-effort basis. Nothing secret —
//! the secret, the derived key, the computed signature, the canonical request
//! or string to sign — ever appears in an error or in `Debug` output.

mod canonical;
mod error;
mod timefmt;

pub use error::SigV4Error;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::{Zeroize, Zeroizing};

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Literal payload hash meaning "the body is not signed".
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Maximum allowed difference between the request time and `now`.
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(15);
/// Maximum `X-Amz-Expires` of a presigned URL (7 days).
pub const MAX_PRESIGNED_EXPIRES_SECS: u32 = 604_800;

/// A borrowed view of an HTTP request exactly as it was received.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The method, e.g. `GET` (used verbatim).
    pub method: &'a str,
    /// Path exactly as received on the wire, still percent-encoded, no query.
    pub raw_path: &'a str,
    /// Query string as received, without `?`.
    pub raw_query: Option<&'a str>,
    /// Every header as received (name in any case, value as raw bytes); a
    /// header may repeat. Must include `host` (for HTTP/2, the `:authority`).
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The complete request body.
    pub body: &'a [u8],
}

impl std::fmt::Debug for Request<'_> {
    /// Header values are not printed (they include the `Authorization`
    /// header and possibly a session token), nor are the values of `X-Amz-*`
    /// query parameters (a presigned URL's signature and token).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        let query = self.raw_query.map(|q| {
            q.split('&')
                .map(|piece| match piece.split_once('=') {
                    // compare bytes: a name may start with a multi-byte character
                    Some((n, _))
                        if n.as_bytes()
                            .get(..6)
                            .is_some_and(|p| p.eq_ignore_ascii_case(b"x-amz-")) =>
                    {
                        format!("{n}=***")
                    }
                    _ => piece.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&")
        });
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("raw_path", &self.raw_path)
            .field("raw_query", &query)
            .field("header_names", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The identity established by a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id from the credential scope.
    pub access_key_id: String,
    /// The region from the credential scope (not validated here).
    pub region: String,
    /// The service from the credential scope (always `expected_service`).
    pub service: String,
    /// The verified signature (64 lower-case hex digits). It covers the method,
    /// path, query, signed headers, body and time, so a byte-for-byte replay
    /// of a request carries the same signature and another request does not:
    /// the server derives the idempotency key of a request without a
    /// clientToken from it.
    pub signature: String,
}

/// Resolves an access key id to its secret access key.
pub trait SecretLookup {
    /// The secret for `access_key_id`, or `None` if the key is unknown (or
    /// disabled).
    fn secret_for(&self, access_key_id: &str) -> Option<Zeroizing<String>>;
}

impl<F> SecretLookup for F
where
    F: Fn(&str) -> Option<Zeroizing<String>>,
{
    fn secret_for(&self, access_key_id: &str) -> Option<Zeroizing<String>> {
        self(access_key_id)
    }
}

/// Where the signature came from.
enum Form {
    Header,
    Presigned { expires_secs: u32 },
}

/// Everything taken from the Authorization header or the presigned query.
struct AuthParts {
    credential: String,
    signed_headers: String,
    signature: String,
    /// `YYYYMMDDTHHMMSSZ`, as used in the string to sign.
    amz_date: String,
    request_time: OffsetDateTime,
    form: Form,
}

/// Verifies the SigV4 signature of `req`.
///
/// `now` is the server's current time (any offset); `expected_service` is
/// the signing name the credential scope must carry (`bedrock-agentcore`).
/// See the crate documentation for the rules and the order of the checks.
pub fn verify(
    req: &Request<'_>,
    lookup: &dyn SecretLookup,
    now: OffsetDateTime,
    expected_service: &str,
) -> Result<Verified, SigV4Error> {
    let query_pairs = req
        .raw_query
        .map(canonical::parse_query)
        .unwrap_or_default();
    let presigned = query_pairs.iter().any(|(n, _)| {
        matches!(
            n.as_slice(),
            b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature"
        )
    });
    let auth_headers: Vec<&[u8]> = header_values(req.headers, "authorization").collect();

    // 1. Syntax.
    let auth = match (auth_headers.as_slice(), presigned) {
        ([], false) => return Err(SigV4Error::MissingAuthenticationToken),
        ([], true) => parse_presigned(&query_pairs)?,
        ([value], false) => parse_authorization_header(value, req.headers)?,
        ([_], true) => {
            return Err(incomplete(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter \
                 or the Authorization header should be specified",
            ));
        }
        (_, _) => return Err(incomplete("Only one Authorization header is allowed.")),
    };

    let scope: Vec<&str> = auth.credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = scope[..] else {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, \
             e.g. keyid/date/region/service/term, got '{}'",
            sanitize(&auth.credential)
        )));
    };

    let signed_names: Vec<&str> = auth.signed_headers.split(';').collect();
    if signed_names.iter().any(|n| n.is_empty()) {
        return Err(SigV4Error::IncompleteSignature(format!(
            "SignedHeaders must be a non-empty ';'-separated list of header names, got '{}'",
            sanitize(&auth.signed_headers)
        )));
    }
    if !signed_names
        .iter()
        .any(|n| n.eq_ignore_ascii_case("host") || n.eq_ignore_ascii_case(":authority"))
    {
        return Err(incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }

    // Canonical headers (fails on a signed header that is absent), and the
    // value of a signed x-amz-content-sha256, if any.
    let mut canonical_headers: Vec<u8> = Vec::with_capacity(256);
    let mut signed_content_sha256: Option<Vec<u8>> = None;
    for name in &signed_names {
        let mut value = Vec::new();
        let mut found = false;
        for v in header_values(req.headers, name) {
            if found {
                value.push(b',');
            }
            canonical::trim_header_value_into(&mut value, v);
            found = true;
        }
        if !found {
            return Err(SigV4Error::IncompleteSignature(format!(
                "Signed header '{}' is not present in the request.",
                sanitize(name)
            )));
        }
        canonical_headers.extend_from_slice(name.as_bytes());
        canonical_headers.push(b':');
        canonical_headers.extend_from_slice(&value);
        canonical_headers.push(b'\n');
        if name.eq_ignore_ascii_case("x-amz-content-sha256") {
            signed_content_sha256 = Some(value);
        }
    }

    // 2. Credential scope.
    if terminator != "aws4_request" {
        return Err(SigV4Error::InvalidCredentialScope(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            sanitize(terminator)
        )));
    }
    if service != expected_service {
        return Err(SigV4Error::InvalidCredentialScope(format!(
            "Credential should be scoped to correct service: '{}'.",
            sanitize(expected_service)
        )));
    }
    if region.is_empty() {
        return Err(SigV4Error::InvalidCredentialScope(
            "Credential should be scoped to a valid region.".to_owned(),
        ));
    }
    let request_date = &auth.amz_date[..8];
    if scope_date != request_date {
        return Err(SigV4Error::InvalidCredentialScope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{}', from '{}'.",
            sanitize(scope_date),
            request_date,
            auth.amz_date
        )));
    }

    // 3. Time.
    check_time(&auth, now)?;

    // 4. Key.
    if access_key_id.is_empty() {
        return Err(SigV4Error::UnrecognizedClient);
    }
    let secret = lookup
        .secret_for(access_key_id)
        .ok_or(SigV4Error::UnrecognizedClient)?;

    // 5. Payload hash and signature. The hash is always the body's: a signed
    //    header that declares anything else (UNSIGNED-PAYLOAD included) is refused.
    let body_hash = hex::encode(Sha256::digest(req.body));
    let payload_hash: &str = match &signed_content_sha256 {
        Some(v) => {
            if !v.eq_ignore_ascii_case(body_hash.as_bytes()) {
                return Err(SigV4Error::ContentSha256Mismatch);
            }
            // Equal ignoring case, hence ASCII: use it as the client sent it.
            std::str::from_utf8(v).map_err(|_| SigV4Error::ContentSha256Mismatch)?
        }
        None => body_hash.as_str(),
    };

    let provided = match hex::decode(&auth.signature) {
        Ok(bytes) if bytes.len() == 32 => bytes,
        _ => return Err(SigV4Error::SignatureDoesNotMatch),
    };

    let canonical_uri = canonical::canonical_uri(req.raw_path);
    let canonical_query = canonical::canonical_query(&query_pairs, |name| {
        matches!(auth.form, Form::Presigned { .. }) && name == b"X-Amz-Signature"
    });
    let signing_key = derive_signing_key(&secret, scope_date, region, service, terminator);
    let scope_str = &auth.credential[access_key_id.len() + 1..];

    let matched = {
        let mut creq: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(
            canonical_headers.len() + canonical_uri.len() + canonical_query.len() + 256,
        ));
        creq.extend_from_slice(req.method.as_bytes());
        creq.push(b'\n');
        creq.extend_from_slice(canonical_uri.as_bytes());
        creq.push(b'\n');
        creq.extend_from_slice(canonical_query.as_bytes());
        creq.push(b'\n');
        creq.extend_from_slice(&canonical_headers);
        creq.push(b'\n');
        creq.extend_from_slice(auth.signed_headers.as_bytes());
        creq.push(b'\n');
        creq.extend_from_slice(payload_hash.as_bytes());

        let string_to_sign = format!(
            "{ALGORITHM}\n{}\n{}\n{}",
            auth.amz_date,
            scope_str,
            hex::encode(Sha256::digest(creq.as_slice()))
        );
        let mut mac = HmacSha256::new_from_slice(signing_key.as_slice())
            .expect("HMAC accepts keys of any length");
        mac.update(string_to_sign.as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&provided).is_ok()
    };
    canonical_headers.zeroize();
    if !matched {
        return Err(SigV4Error::SignatureDoesNotMatch);
    }

    Ok(Verified {
        access_key_id: access_key_id.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signature: auth.signature.to_ascii_lowercase(),
    })
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn derive_signing_key(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    terminator: &str,
) -> Zeroizing<[u8; 32]> {
    let mut key: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    key.extend_from_slice(b"AWS4");
    key.extend_from_slice(secret.as_bytes());
    let mut current: Zeroizing<[u8; 32]> = Zeroizing::new([0; 32]);
    for (i, data) in [date, region, service, terminator].iter().enumerate() {
        let k: &[u8] = if i == 0 { &key } else { current.as_slice() };
        let mut mac = HmacSha256::new_from_slice(k).expect("HMAC accepts keys of any length");
        mac.update(data.as_bytes());
        let mut out = mac.finalize().into_bytes();
        current.copy_from_slice(&out);
        out.as_mut_slice().zeroize();
    }
    current
}

/// Clock-skew and presigned-expiry checks.
fn check_time(auth: &AuthParts, now: OffsetDateTime) -> Result<(), SigV4Error> {
    let now = now.to_offset(time::UtcOffset::UTC);
    // Differences never overflow; the saturating adds only feed messages.
    let ahead = auth.request_time - now;
    if ahead > MAX_CLOCK_SKEW {
        return Err(SigV4Error::SignatureNotYetCurrent {
            request_time: auth.amz_date.clone(),
            latest: timefmt::format_amz_date(now.saturating_add(MAX_CLOCK_SKEW)),
            now: timefmt::format_amz_date(now),
        });
    }
    let (validity, presigned_expires) = match auth.form {
        Form::Header => (MAX_CLOCK_SKEW, None),
        Form::Presigned { expires_secs } => (
            time::Duration::seconds(i64::from(expires_secs)),
            Some(expires_secs),
        ),
    };
    if -ahead > validity {
        let request_time = auth.amz_date.clone();
        let earliest = timefmt::format_amz_date(now.saturating_sub(validity));
        let now = timefmt::format_amz_date(now);
        return Err(match presigned_expires {
            None => SigV4Error::SignatureExpired {
                request_time,
                earliest,
                now,
            },
            Some(expires_secs) => SigV4Error::PresignedUrlExpired {
                request_time,
                earliest,
                now,
                expires_secs,
            },
        });
    }
    Ok(())
}

/// Values of every header named `name` (case-insensitive), in arrival order.
fn header_values<'h>(
    headers: &'h [(&'h str, &'h [u8])],
    name: &'h str,
) -> impl Iterator<Item = &'h [u8]> + 'h {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn incomplete(msg: &str) -> SigV4Error {
    SigV4Error::IncompleteSignature(msg.to_owned())
}

/// Request-supplied text made safe to echo in a message: printable ASCII
/// only, at most 128 characters.
fn sanitize(s: &str) -> String {
    const MAX: usize = 128;
    let mut out: String = s
        .chars()
        .take(MAX)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.chars().count() > MAX {
        out.push_str("...");
    }
    out
}

/// Parses `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
/// and finds the request time (`X-Amz-Date`, else `Date`).
fn parse_authorization_header(
    value: &[u8],
    headers: &[(&str, &[u8])],
) -> Result<AuthParts, SigV4Error> {
    let value = std::str::from_utf8(value)
        .map_err(|_| incomplete("Authorization header is not valid UTF-8."))?
        .trim_matches([' ', '\t']);
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{}'. The only supported algorithm is '{ALGORITHM}'.",
            sanitize(algorithm)
        )));
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim_matches([' ', '\t']);
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(incomplete(
                "Invalid key=value pair (missing equal-sign) in Authorization header.",
            ));
        };
        let slot = match key.trim_matches([' ', '\t']) {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_some() {
            return Err(SigV4Error::IncompleteSignature(format!(
                "Authorization header contains more than one '{}' parameter.",
                key.trim_matches([' ', '\t'])
            )));
        }
        *slot = Some(val.trim_matches([' ', '\t']).to_owned());
    }

    let date = request_time_from_headers(headers);
    let mut missing = Vec::new();
    if credential.as_deref().is_none_or(str::is_empty) {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.as_deref().is_none_or(str::is_empty) {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed_headers.as_deref().is_none_or(str::is_empty) {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    if matches!(date, Err(None)) {
        missing.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        );
    }
    if !missing.is_empty() {
        return Err(incomplete(&missing.join(" ")));
    }
    let (amz_date, request_time) = date.map_err(|e| e.expect("missing date handled above"))?;
    Ok(AuthParts {
        credential: credential.unwrap_or_default(),
        signed_headers: signed_headers.unwrap_or_default(),
        signature: signature.unwrap_or_default(),
        amz_date,
        request_time,
        form: Form::Header,
    })
}

/// `Ok((YYYYMMDDTHHMMSSZ, time))`, `Err(None)` when neither header is
/// present, `Err(Some(error))` when present but unusable.
fn request_time_from_headers(
    headers: &[(&str, &[u8])],
) -> Result<(String, OffsetDateTime), Option<SigV4Error>> {
    let amz: Vec<&[u8]> = header_values(headers, "x-amz-date").collect();
    match amz.as_slice() {
        [] => {}
        [v] => {
            let s = String::from_utf8_lossy(v);
            let s = s.trim_matches([' ', '\t']);
            return timefmt::parse_amz_date(s)
                .map(|t| (s.to_owned(), t))
                .ok_or_else(|| Some(bad_amz_date(s)));
        }
        _ => return Err(Some(incomplete("Only one X-Amz-Date header is allowed."))),
    }
    let date: Vec<&[u8]> = header_values(headers, "date").collect();
    match date.as_slice() {
        [] => Err(None),
        [v] => {
            let s = String::from_utf8_lossy(v);
            let s = s.trim_matches([' ', '\t']);
            timefmt::parse_http_date(s)
                .map(|t| (timefmt::format_amz_date(t), t))
                .ok_or_else(|| {
                    Some(SigV4Error::IncompleteSignature(format!(
                        "Date header must be an RFC 7231 IMF-fixdate such as \
                         'Sun, 30 Aug 2015 12:36:00 GMT'. Got '{}'.",
                        sanitize(s)
                    )))
                })
        }
        _ => Err(Some(incomplete("Only one Date header is allowed."))),
    }
}

fn bad_amz_date(s: &str) -> SigV4Error {
    SigV4Error::IncompleteSignature(format!(
        "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
        sanitize(s)
    ))
}

/// Parses the `X-Amz-*` parameters of a presigned URL.
fn parse_presigned(pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<AuthParts, SigV4Error> {
    const NAMES: [&str; 6] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ];
    let mut values: [Option<String>; 6] = Default::default();
    let mut missing = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let mut found = pairs
            .iter()
            .filter(|(n, _)| n.as_slice() == name.as_bytes());
        match (found.next(), found.next()) {
            (Some((_, v)), None) if !v.is_empty() => {
                let v = std::str::from_utf8(v).map_err(|_| {
                    SigV4Error::IncompleteSignature(format!(
                        "Query-string parameter '{name}' is not valid UTF-8."
                    ))
                })?;
                values[i] = Some(v.to_owned());
            }
            (Some(_), Some(_)) => {
                return Err(SigV4Error::IncompleteSignature(format!(
                    "Query-string parameter '{name}' must appear only once."
                )));
            }
            _ => missing.push(format!(
                "AWS query-string parameters must include '{name}'."
            )),
        }
    }
    if !missing.is_empty() {
        missing.push("Re-examine the query-string parameters.".to_owned());
        return Err(SigV4Error::IncompleteSignature(missing.join(" ")));
    }
    let [
        algorithm,
        credential,
        date,
        expires,
        signed_headers,
        signature,
    ] = values.map(Option::unwrap_or_default);
    if algorithm != ALGORITHM {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{}'. The only supported algorithm is '{ALGORITHM}'.",
            sanitize(&algorithm)
        )));
    }
    let request_time = timefmt::parse_amz_date(&date).ok_or_else(|| bad_amz_date(&date))?;
    if expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete("X-Amz-Expires must be a non-negative integer."));
    }
    let expires_secs = match expires.parse::<u32>() {
        Ok(0) => return Err(incomplete("X-Amz-Expires must be greater than 0.")),
        Ok(n) if n <= MAX_PRESIGNED_EXPIRES_SECS => n,
        _ => {
            return Err(incomplete(
                "X-Amz-Expires must be less than a week (in seconds) that is 604800",
            ));
        }
    };
    Ok(AuthParts {
        credential,
        signed_headers,
        signature,
        amz_date: date,
        request_time,
        form: Form::Presigned { expires_secs },
    })
}
