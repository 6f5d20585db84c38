//! Test helpers: sign with the `aws-sigv4` crate (the oracle) and turn the
//! result into what a server would see on the wire.
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningParams,
    SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use purser_sigv4::{Request, SecretLookup, SigV4Error, Verified, verify};
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub const SERVICE: &str = "bedrock-agentcore";
pub const AKID: &str = "AKIAPURSERTEST000001";
pub const SECRET: &str = "pUrSeRsEcReT/K7MDENG+bPxRfiCYzzTESTKEY01";
/// 2026-11-23T00:25:00Z
pub const T0: i64 = 1_795_393_500;

/// A fixed set of access keys.
pub struct Keys(pub Vec<(String, String)>);

impl Keys {
    pub fn one(akid: &str, secret: &str) -> Self {
        Keys(vec![(akid.to_owned(), secret.to_owned())])
    }
    pub fn default_keys() -> Self {
        Keys::one(AKID, SECRET)
    }
}

impl SecretLookup for Keys {
    fn secret_for(&self, access_key_id: &str) -> Option<Zeroizing<String>> {
        self.0
            .iter()
            .find(|(k, _)| k == access_key_id)
            .map(|(_, s)| Zeroizing::new(s.clone()))
    }
}

pub fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

/// What to sign.
#[derive(Clone)]
pub struct Spec<'a> {
    pub method: &'a str,
    /// Absolute URL, path and query already percent-encoded as on the wire.
    pub url: &'a str,
    /// Headers present when signing (all of them get signed, except the
    /// ones aws-sigv4 always excludes such as user-agent).
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
    pub akid: &'a str,
    pub secret: &'a str,
    pub token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
    pub time: i64,
    /// Add a signed `x-amz-content-sha256` header.
    pub content_sha256: bool,
    /// Sign with `UNSIGNED-PAYLOAD` (with `content_sha256`, the header says so).
    pub unsigned_payload: bool,
    /// Presign (query form) with this `X-Amz-Expires`.
    pub presign_expires: Option<u64>,
}

impl<'a> Spec<'a> {
    pub fn new(method: &'a str, url: &'a str) -> Self {
        Spec {
            method,
            url,
            headers: Vec::new(),
            body: b"",
            akid: AKID,
            secret: SECRET,
            token: None,
            region: "us-east-1",
            service: SERVICE,
            time: T0,
            content_sha256: false,
            unsigned_payload: false,
            presign_expires: None,
        }
    }

    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// Signs with aws-sigv4 and returns the request as a server receives it
    /// (a `host` header is added, as any HTTP client does).
    pub fn sign(&self) -> Wire {
        let mut builder = http::Request::builder().method(self.method).uri(self.url);
        for (n, v) in &self.headers {
            builder = builder.header(*n, *v);
        }
        let mut req = builder.body(self.body.to_vec()).unwrap();

        let identity = Credentials::new(
            self.akid,
            self.secret,
            self.token.map(str::to_owned),
            None,
            "test",
        )
        .into();
        let mut settings = SigningSettings::default();
        if self.content_sha256 {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        if let Some(secs) = self.presign_expires {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(Duration::from_secs(secs));
        }
        let params: SigningParams<'_> = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(SystemTime::UNIX_EPOCH + Duration::from_secs(self.time as u64))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let body = if self.unsigned_payload {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(self.body)
        };
        let uri = req.uri().to_string();
        let signable = SignableRequest::new(
            self.method,
            uri,
            req.headers()
                .iter()
                .map(|(n, v)| (n.as_str(), v.to_str().unwrap())),
            body,
        )
        .unwrap();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut req);
        Wire::from_http(&req)
    }
}

/// A request as received: what [`purser_sigv4::Request`] borrows from.
#[derive(Clone, Debug)]
pub struct Wire {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Wire {
    pub fn from_http(req: &http::Request<Vec<u8>>) -> Wire {
        let uri = req.uri();
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        if !req.headers().contains_key("host") {
            let host = match (uri.scheme_str(), uri.port_u16()) {
                (Some("https"), Some(443)) | (Some("http"), Some(80)) => {
                    uri.host().unwrap().to_owned()
                }
                _ => uri.authority().unwrap().as_str().to_owned(),
            };
            headers.push(("Host".to_owned(), host.into_bytes()));
        }
        for (n, v) in req.headers() {
            headers.push((n.as_str().to_owned(), v.as_bytes().to_vec()));
        }
        Wire {
            method: req.method().as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers,
            body: req.body().clone(),
        }
    }

    pub fn verify_with(
        &self,
        lookup: &dyn SecretLookup,
        now: OffsetDateTime,
        service: &str,
    ) -> Result<Verified, SigV4Error> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let req = Request {
            method: &self.method,
            raw_path: &self.path,
            raw_query: self.query.as_deref(),
            headers: &headers,
            body: &self.body,
        };
        verify(&req, lookup, now, service)
    }

    /// Verifies at `T0` with the default key, for `bedrock-agentcore`.
    pub fn verify(&self) -> Result<Verified, SigV4Error> {
        self.verify_with(&Keys::default_keys(), at(T0), SERVICE)
    }

    pub fn verify_at(&self, unix: i64) -> Result<Verified, SigV4Error> {
        self.verify_with(&Keys::default_keys(), at(unix), SERVICE)
    }

    /// Error code of verifying at `T0` with the default key (`"OK"` on success).
    pub fn code(&self) -> &'static str {
        match self.verify() {
            Ok(_) => "OK",
            Err(e) => {
                assert_safe(&e, &[SECRET]);
                e.code()
            }
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
    }

    pub fn set_header(&mut self, name: &str, value: &str) {
        self.remove_header(name);
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
    }

    pub fn add_header(&mut self, name: &str, value: &str) {
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The `Signature=` value of the Authorization header.
    pub fn signature(&self) -> String {
        let auth = self.header("authorization").unwrap();
        auth.rsplit("Signature=").next().unwrap().to_owned()
    }
}

/// Whether `s` contains 64 consecutive hex digits (i.e. something that
/// could be a signature).
pub fn has_hex64(s: &str) -> bool {
    let mut run = 0;
    for c in s.chars() {
        if c.is_ascii_hexdigit() {
            run += 1;
            if run >= 64 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// An error's message and Debug output must not leak secrets or signatures.
pub fn assert_safe(e: &SigV4Error, secrets: &[&str]) {
    let msg = e.message();
    let dbg = format!("{e:?}");
    assert_eq!(e.status(), 403);
    for s in secrets {
        assert!(!msg.contains(s), "message leaks a secret: {msg}");
        assert!(!dbg.contains(s), "Debug leaks a secret: {dbg}");
    }
    assert!(
        !has_hex64(&msg),
        "message contains a signature-like value: {msg}"
    );
    assert!(
        !has_hex64(&dbg),
        "Debug contains a signature-like value: {dbg}"
    );
}

/// A tiny deterministic PRNG (xorshift64*), so test cases are reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}
