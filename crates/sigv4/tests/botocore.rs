//! Replays requests captured from botocore (see fixtures/gen_botocore.py):
//! real `bedrock-agentcore` client calls (ARNs in path labels, query strings,
//! payments headers, session tokens) and raw `SigV4Auth` / `SigV4QueryAuth`
//! signatures of awkward URLs.

mod common;

use common::{Keys, Wire, assert_safe};
use purser_sigv4::SigV4Error;
use time::OffsetDateTime;

const FIXTURE: &str = include_str!("fixtures/botocore.txt");

struct Case {
    name: String,
    service: String,
    wire: Wire,
}

fn parse_fixture() -> (String, String, Vec<Case>) {
    let mut akid = String::new();
    let mut secret = String::new();
    let mut cases = Vec::new();
    let mut cur: Option<Case> = None;
    for line in FIXTURE.lines() {
        if let Some(v) = line.strip_prefix("# akid ") {
            akid = v.to_owned();
            continue;
        }
        if let Some(v) = line.strip_prefix("# secret ") {
            secret = v.to_owned();
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "request" => {
                cur = Some(Case {
                    name: rest.to_owned(),
                    service: String::new(),
                    wire: Wire {
                        method: String::new(),
                        path: String::new(),
                        query: None,
                        headers: Vec::new(),
                        body: Vec::new(),
                    },
                });
            }
            "end" => cases.push(cur.take().unwrap()),
            _ => {
                let c = cur.as_mut().unwrap();
                match key {
                    "service" => c.service = rest.to_owned(),
                    "method" => c.wire.method = rest.to_owned(),
                    "path" => c.wire.path = rest.to_owned(),
                    "query" if rest != "-" => c.wire.query = Some(rest.to_owned()),
                    "query" => {}
                    "header" => {
                        let (n, v) = rest.split_once(' ').unwrap();
                        c.wire.headers.push((n.to_owned(), hex::decode(v).unwrap()));
                    }
                    "body" => c.wire.body = hex::decode(rest).unwrap(),
                    other => panic!("bad fixture line {other}"),
                }
            }
        }
    }
    (akid, secret, cases)
}

/// The request time: X-Amz-Date header or query parameter.
fn request_time(w: &Wire) -> OffsetDateTime {
    let s = w.header("x-amz-date").unwrap_or_else(|| {
        let q = w.query.as_deref().unwrap();
        let p = q.find("X-Amz-Date=").unwrap() + "X-Amz-Date=".len();
        q[p..p + 16].to_owned()
    });
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(&s, fmt)
        .unwrap()
        .assume_utc()
}

#[test]
fn botocore_signed_requests_verify() {
    let (akid, secret, cases) = parse_fixture();
    assert!(cases.len() >= 20, "fixture has {} cases", cases.len());
    let keys = Keys::one(&akid, &secret);
    for c in &cases {
        let now = request_time(&c.wire);
        let v = c
            .wire
            .verify_with(&keys, now, &c.service)
            .unwrap_or_else(|e| panic!("{}: {} {}", c.name, e.code(), e.message()));
        assert_eq!(v.access_key_id, akid);
        assert_eq!(v.service, c.service);

        let check_bad = |w: &Wire, what: &str| {
            let e: SigV4Error = w.verify_with(&keys, now, &c.service).unwrap_err();
            assert_eq!(e.code(), "InvalidSignatureException", "{}: {what}", c.name);
            assert_safe(&e, &[&secret]);
        };
        let mut m = c.wire.clone();
        m.path.push('x');
        check_bad(&m, "path");
        let mut m = c.wire.clone();
        m.body.push(b' ');
        check_bad(&m, "body");
        let mut m = c.wire.clone();
        m.query = Some(match &m.query {
            Some(q) => format!("{q}&z=1"),
            None => "z=1".to_owned(),
        });
        check_bad(&m, "query");
        for (n, v) in &c.wire.headers {
            let signed = c
                .wire
                .header("authorization")
                .is_some_and(|a| a.to_ascii_lowercase().contains(&n.to_ascii_lowercase()));
            if signed && !n.eq_ignore_ascii_case("authorization") {
                let mut m = c.wire.clone();
                m.remove_header(n);
                let mut v = v.clone();
                v.push(b'1');
                m.headers.push((n.clone(), v));
                if n.eq_ignore_ascii_case("x-amz-date") {
                    assert!(m.verify_with(&keys, now, &c.service).is_err());
                } else {
                    check_bad(&m, n);
                }
            }
        }
    }
}

#[test]
fn botocore_leaves_sdk_headers_unsigned() {
    let (_, _, cases) = parse_fixture();
    let c = cases
        .iter()
        .find(|c| c.name == "ProcessPayment-us-east-1")
        .unwrap();
    let auth = c.wire.header("authorization").unwrap();
    assert!(auth.contains("x-amzn-bedrock-agentcore-payments-user-id"));
    assert!(!auth.contains("user-agent"));
    assert!(!auth.contains("amz-sdk-invocation-id"));
    assert!(c.wire.header("amz-sdk-invocation-id").is_some());
}
