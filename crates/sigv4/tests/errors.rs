//! Error codes, statuses and messages; clock skew; no secrets in errors.

mod common;

use common::*;
use purser_sigv4::{Request, SigV4Error, verify};
use zeroize::Zeroizing;

const URL: &str = "https://bedrock-agentcore.us-east-1.amazonaws.com/payments/processPayment";

fn signed() -> Wire {
    Spec::new("POST", URL)
        .header("Content-Type", "application/json")
        .header("X-Amzn-Bedrock-AgentCore-Payments-User-Id", "user-1")
        .body(b"{\"paymentSessionId\":\"ps-1\"}")
        .sign()
}

fn err(w: &Wire) -> SigV4Error {
    let e = w.verify().unwrap_err();
    assert_eq!(e.status(), 403);
    assert_safe(&e, &[SECRET, &signed().signature()]);
    e
}

/// Replaces one `key=value` item of the Authorization header.
fn with_auth(w: &Wire, f: impl Fn(&str) -> String) -> Wire {
    let mut m = w.clone();
    let a = m.header("authorization").unwrap();
    m.set_header("Authorization", &f(&a));
    m
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you \
                        provided. Check your AWS Secret Access Key and signing method. Consult \
                        the service documentation for details.";

#[test]
fn missing_authentication_token() {
    let mut w = signed();
    w.remove_header("authorization");
    let e = err(&w);
    assert_eq!(e.code(), "MissingAuthenticationTokenException");
    assert_eq!(e.message(), "Missing Authentication Token");
    // Other X-Amz-* query parameters do not make it a presigned request.
    w.query = Some("X-Amz-Date=20261123T002500Z".to_owned());
    assert_eq!(err(&w).code(), "MissingAuthenticationTokenException");
}

#[test]
fn incomplete_signatures() {
    let w = signed();
    let cases: Vec<(Wire, &str)> = vec![
        (
            with_auth(&w, |_| "Bearer abc.def".to_owned()),
            "Unsupported AWS 'algorithm': 'Bearer'. The only supported algorithm is 'AWS4-HMAC-SHA256'.",
        ),
        (
            with_auth(&w, |a| a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")),
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1'. The only supported algorithm is 'AWS4-HMAC-SHA256'.",
        ),
        (
            with_auth(&w, |_| "AWS4-HMAC-SHA256".to_owned()),
            "Authorization header requires 'Credential' parameter. Authorization header requires \
             'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            with_auth(&w, |a| a[..a.find(", Signature=").unwrap()].to_owned()),
            "Authorization header requires 'Signature' parameter.",
        ),
        (
            with_auth(&w, |a| a.replace("SignedHeaders=", "SignedHeader=")),
            "Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            with_auth(&w, |a| a.replace(", Signature=", ", Signature")),
            "Invalid key=value pair (missing equal-sign) in Authorization header.",
        ),
        (
            with_auth(&w, |a| format!("{a}, Signature=00")),
            "Authorization header contains more than one 'Signature' parameter.",
        ),
        (
            with_auth(&w, |a| a.replace("/aws4_request", "")),
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got 'AKIAPURSERTEST000001/20261123/us-east-1/bedrock-agentcore'",
        ),
        (
            with_auth(&w, |a| a.replace("SignedHeaders=", "SignedHeaders=;")),
            "SignedHeaders must be a non-empty ';'-separated list of header names, got ';content-type;host;x-amz-date;x-amzn-bedrock-agentcore-payments-user-id'",
        ),
        (
            with_auth(&w, |a| a.replace("host;", "")),
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        (
            with_auth(&w, |a| a.replace("host;", "host;x-missing;")),
            "Signed header 'x-missing' is not present in the request.",
        ),
        (
            {
                let mut m = w.clone();
                m.remove_header("content-type");
                m
            },
            "Signed header 'content-type' is not present in the request.",
        ),
        (
            {
                let mut m = w.clone();
                m.remove_header("x-amz-date");
                m
            },
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ),
        (
            {
                let mut m = with_auth(&w, |_| "AWS4-HMAC-SHA256 Credential=a/b/c/d/e".to_owned());
                m.remove_header("x-amz-date");
                m
            },
            "Authorization header requires 'Signature' parameter. Authorization header requires \
             'SignedHeaders' parameter. Authorization header requires existence of either a \
             'X-Amz-Date' or a 'Date' header.",
        ),
        (
            {
                let mut m = w.clone();
                m.set_header("X-Amz-Date", "2026-11-23T00:25:00Z");
                m
            },
            "Date must be in ISO-8601 'basic format'. Got '2026-11-23T00:25:00Z'. \
             See http://en.wikipedia.org/wiki/ISO_8601",
        ),
        (
            {
                let mut m = w.clone();
                m.add_header("X-Amz-Date", "20261123T002500Z");
                m
            },
            "Only one X-Amz-Date header is allowed.",
        ),
        (
            {
                let mut m = w.clone();
                m.remove_header("x-amz-date");
                m.set_header("Date", "yesterday");
                m
            },
            "Date header must be an RFC 7231 IMF-fixdate such as 'Sun, 30 Aug 2015 12:36:00 GMT'. Got 'yesterday'.",
        ),
        (
            {
                let mut m = w.clone();
                let a = m.header("authorization").unwrap();
                m.add_header("authorization", &a);
                m
            },
            "Only one Authorization header is allowed.",
        ),
        (
            {
                let mut m = w.clone();
                m.query = Some("X-Amz-Signature=abc".to_owned());
                m
            },
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the \
             Authorization header should be specified",
        ),
    ];
    for (m, msg) in cases {
        let e = err(&m);
        assert_eq!(e.code(), "IncompleteSignatureException", "{msg}");
        assert_eq!(e.message(), msg);
    }

    // Non-UTF-8 and control characters are never echoed raw.
    let mut m = w.clone();
    m.set_header("Authorization", "AWS4\u{7}\u{1b}[31m x");
    let e = err(&m);
    assert_eq!(e.code(), "IncompleteSignatureException");
    assert!(!e.message().contains('\u{1b}'));
    let mut m = w.clone();
    m.headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
    m.headers
        .push(("Authorization".to_owned(), vec![0xff, 0xfe, b' ']));
    assert_eq!(err(&m).code(), "IncompleteSignatureException");
}

#[test]
fn credential_scope_errors_are_invalid_signature() {
    let w = signed();
    let cases: Vec<(Wire, &str)> = vec![
        (
            with_auth(&w, |a| a.replace("/aws4_request", "/aws5_request")),
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.",
        ),
        (
            with_auth(&w, |a| a.replace("/bedrock-agentcore/", "/bedrock/")),
            "Credential should be scoped to correct service: 'bedrock-agentcore'.",
        ),
        (
            with_auth(&w, |a| a.replace("/us-east-1/", "//")),
            "Credential should be scoped to a valid region.",
        ),
        (
            with_auth(&w, |a| a.replace("/20261123/", "/20261122/")),
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '20261122' != '20261123', from '20261123T002500Z'.",
        ),
    ];
    for (m, msg) in cases {
        let e = err(&m);
        assert_eq!(e.code(), "InvalidSignatureException", "{msg}");
        assert_eq!(e.message(), msg);
    }
    // Any non-empty region is accepted by the verifier (if the signature is
    // right): the server decides. A region change breaks the signature.
    let e = err(&with_auth(&w, |a| {
        a.replace("/us-east-1/", "/mars-north-1/")
    }));
    assert_eq!(e.message(), MISMATCH);
}

#[test]
fn unknown_access_key() {
    let w = signed();
    let e = w
        .verify_with(&Keys::one("AKIAELSE", SECRET), at(T0), SERVICE)
        .unwrap_err();
    assert_eq!(e.code(), "UnrecognizedClientException");
    assert_eq!(e.status(), 403);
    assert_eq!(
        e.message(),
        "The security token included in the request is invalid."
    );
    let e = err(&with_auth(&w, |a| {
        a.replace("Credential=AKIAPURSERTEST000001/", "Credential=/")
    }));
    assert_eq!(e.code(), "UnrecognizedClientException");
}

#[test]
fn signature_mismatch() {
    let w = signed();
    for bad in [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "abc",
        "",
        "zz",
    ] {
        let m = with_auth(&w, |a| {
            let p = a.find("Signature=").unwrap() + "Signature=".len();
            format!("{}{bad}", &a[..p])
        });
        let e = err(&m);
        if bad.is_empty() {
            assert_eq!(e.code(), "IncompleteSignatureException");
        } else {
            assert_eq!(e.code(), "InvalidSignatureException");
            assert_eq!(e.message(), MISMATCH);
        }
    }
    // Upper-case hex is the same signature.
    let m = with_auth(&w, |a| {
        let p = a.find("Signature=").unwrap() + "Signature=".len();
        format!("{}{}", &a[..p], a[p..].to_ascii_uppercase())
    });
    assert!(m.verify().is_ok());
}

#[test]
fn clock_skew() {
    let w = signed(); // signed at T0 = 20261123T002500Z
    for delta in [-15 * 60, -14 * 60, -60, 0, 60, 14 * 60, 15 * 60] {
        assert!(w.verify_at(T0 + delta).is_ok(), "{delta}");
    }
    // Server clock 16 minutes ahead: the request is too old.
    let e = w.verify_at(T0 + 16 * 60).unwrap_err();
    assert_eq!(e.code(), "InvalidSignatureException");
    assert_eq!(
        e.message(),
        "Signature expired: 20261123T002500Z is now earlier than 20261123T002600Z \
         (20261123T004100Z - 15 min.)"
    );
    assert!(w.verify_at(T0 + 15 * 60 + 1).is_err());
    // Server clock 16 minutes behind: the request is from the future.
    let e = w.verify_at(T0 - 16 * 60).unwrap_err();
    assert_eq!(e.code(), "InvalidSignatureException");
    assert_eq!(
        e.message(),
        "Signature not yet current: 20261123T002500Z is still later than 20261123T002400Z \
         (20261123T000900Z + 15 min.)"
    );
    assert!(w.verify_at(T0 - 15 * 60 - 1).is_err());

    // The example from AWS's documentation style.
    let mut spec = Spec::new("GET", URL);
    spec.time = T0 - 25 * 60; // 20261123T000000Z
    let e = spec.sign().verify_at(T0).unwrap_err();
    assert_eq!(
        e.message(),
        "Signature expired: 20261123T000000Z is now earlier than 20261123T001000Z \
         (20261123T002500Z - 15 min.)"
    );

    // `now` in another offset is the same instant.
    let now = at(T0).to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap());
    assert!(w.verify_with(&Keys::default_keys(), now, SERVICE).is_ok());
    let e = w
        .verify_with(
            &Keys::default_keys(),
            now + time::Duration::minutes(16),
            SERVICE,
        )
        .unwrap_err();
    assert!(
        e.message().ends_with("(20261123T004100Z - 15 min.)"),
        "{}",
        e.message()
    );
}

#[test]
fn skew_is_checked_before_the_key() {
    let w = signed();
    let e = w
        .verify_with(&Keys::one("AKIAELSE", SECRET), at(T0 + 3600), SERVICE)
        .unwrap_err();
    assert!(e.message().starts_with("Signature expired"));
}

#[test]
fn closure_lookup_and_verified_fields() {
    let w = signed();
    let lookup = |k: &str| (k == AKID).then(|| Zeroizing::new(SECRET.to_owned()));
    let headers: Vec<(&str, &[u8])> = w
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let req = Request {
        method: &w.method,
        raw_path: &w.path,
        raw_query: w.query.as_deref(),
        headers: &headers,
        body: &w.body,
    };
    let v = verify(&req, &lookup, at(T0), SERVICE).unwrap();
    assert_eq!(v.access_key_id, AKID);
    assert_eq!(v.region, "us-east-1");
    assert_eq!(v.service, "bedrock-agentcore");

    // Debug of the request shows no header values.
    let dbg = format!("{req:?}");
    assert!(!dbg.contains(&w.signature()));
    assert!(dbg.contains("authorization"));
}

#[test]
fn session_token_header() {
    let mut spec = Spec::new("POST", URL).body(b"{}");
    spec.token = Some("FwoGZXIvYXdzEBYaDOr//////////+token=");
    let w = spec.sign();
    assert!(
        w.header("authorization")
            .unwrap()
            .contains("x-amz-security-token")
    );
    assert!(w.verify().is_ok());
    let mut m = w.clone();
    m.remove_header("x-amz-security-token");
    assert_eq!(err(&m).code(), "IncompleteSignatureException");
    let mut m = w.clone();
    m.set_header("X-Amz-Security-Token", "other");
    assert_eq!(err(&m).code(), "InvalidSignatureException");
}

#[test]
fn no_secret_or_signature_in_any_error() {
    let w = signed();
    let secret = SECRET;
    let good_sig = w.signature();
    let mut errors: Vec<SigV4Error> = Vec::new();
    let keys = Keys::default_keys();
    let variants: Vec<Wire> = vec![
        with_auth(&w, |a| a.replace(&good_sig, &"1".repeat(64))),
        with_auth(&w, |a| a.replace("/aws4_request", "/x")),
        {
            let mut m = w.clone();
            m.body.push(b'x');
            m
        },
        {
            let mut m = w.clone();
            m.remove_header("authorization");
            m
        },
    ];
    for v in &variants {
        errors.push(v.verify_with(&keys, at(T0), SERVICE).unwrap_err());
    }
    errors.push(
        w.verify_with(&Keys::one(AKID, "other"), at(T0), SERVICE)
            .unwrap_err(),
    );
    errors.push(w.verify_at(T0 + 7200).unwrap_err());
    errors.push(w.verify_at(T0 - 7200).unwrap_err());
    for e in &errors {
        assert_safe(e, &[secret, &good_sig, "other"]);
        let dbg = format!("{e:?}");
        assert!(!dbg.contains("canonical"), "{dbg}");
    }
    // Every code appears.
    let codes: std::collections::BTreeSet<&str> = errors.iter().map(|e| e.code()).collect();
    assert!(codes.contains("InvalidSignatureException"));
    assert!(codes.contains("MissingAuthenticationTokenException"));
}

#[test]
fn extreme_clock_values_do_not_panic() {
    let w = signed();
    for now in [
        time::PrimitiveDateTime::MIN.assume_utc(),
        time::PrimitiveDateTime::MAX.assume_utc(),
    ] {
        let e = w
            .verify_with(&Keys::default_keys(), now, SERVICE)
            .unwrap_err();
        assert_eq!(e.code(), "InvalidSignatureException");
    }
}

#[test]
fn request_debug_hides_presigned_signature() {
    let mut spec = Spec::new("GET", URL);
    spec.presign_expires = Some(60);
    spec.token = Some("SeSsIoNtOkEn");
    let w = spec.sign();
    let headers: Vec<(&str, &[u8])> = w
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let req = Request {
        method: &w.method,
        raw_path: &w.path,
        raw_query: w.query.as_deref(),
        headers: &headers,
        body: &w.body,
    };
    let dbg = format!("{req:?}");
    assert!(!has_hex64(&dbg), "{dbg}");
    assert!(!dbg.contains("SeSsIoNtOkEn"), "{dbg}");
    assert!(dbg.contains("X-Amz-Signature=***"), "{dbg}");
}

/// Found by the `sigv4` fuzz target: Debug of a request whose query parameter name has a
/// multi-byte character where the `x-amz-` prefix would end must not panic.
#[test]
fn debug_of_a_request_with_a_multibyte_query_name() {
    let headers: Vec<(&str, &[u8])> = vec![("host", b"localhost")];
    let req = purser_sigv4::Request {
        method: "GET",
        raw_path: "/payments/managers-list",
        raw_query: Some("abcdeé=1&X-Amz-Signature=abc"),
        headers: &headers,
        body: b"",
    };
    let text = format!("{req:?}");
    assert!(text.contains("abcdeé=1"), "{text}");
    assert!(
        !text.contains("abc\"") || text.contains("X-Amz-Signature=***"),
        "{text}"
    );
}
