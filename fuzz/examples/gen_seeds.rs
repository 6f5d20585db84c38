//! Writes the seed corpora under `fuzz/seeds/<target>/` and the libFuzzer
//! dictionaries under `fuzz/dict/`.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds
//! ```
//!
//! The output is checked in; rerun after a model change. Every seed is checked
//! against the code under test as it is written (a seed meant to be accepted
//! must be accepted), so a stale seed is noticed here.
//!
//! * `decode_request`: one real request per operation (valid bodies for the
//!   important ones, URI/query/header members filled in), plus a few invalid ones.
//! * `sigv4`: requests signed by the `aws-sigv4` crate (the Rust SDK's signer)
//!   with the known key of `purser_fuzz::sigv4`, header and presigned forms;
//!   each verifies at the `@now` it carries.
//! * `x402`: v1 and v2 `exact` requirements for every EVM network, in the JSON
//!   mode of the target, plus a few structured-mode inputs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use purser_chain::Chain;
use purser_fuzz::RawRequest;
use purser_fuzz::sigv4::{ACCESS_KEY_ID, DEFAULT_NOW, SECRET_ACCESS_KEY, SERVICE};
use purser_model::{Service, ShapeKind};
use serde_json::{Value, json};

const MANAGER_ID: &str = "mymanager-abcdefghij";
const CONNECTOR_ID: &str = "connector-1-abcdefghij";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/PurserRole";
const CLIENT_TOKEN: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
const PROVIDER_ARN: &str =
    "arn:aws:acps:us-east-1:123456789012:token-vault/default/paymentcredentialprovider/my-provider";
const DATA_MANAGER_ARN: &str =
    "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/mymanager-abcdefghij";
const SESSION_ID: &str = "payment-session-abcdefghij12345";
const INSTRUMENT_ID: &str = "payment-instrument-abcdefghij12345";
const PAY_TO: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    decode_request_seeds(&root.join("seeds/decode_request"));
    sigv4_seeds(&root.join("seeds/sigv4"));
    x402_seeds(&root.join("seeds/x402"));
    dictionaries(&root.join("dict"));
}

fn clean_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// One request of the `decode_request` corpus.
struct Seed {
    name: &'static str,
    method: &'static str,
    path: String,
    query: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Value,
    /// Whether the request must validate.
    valid: bool,
}

impl Seed {
    fn new(name: &'static str, method: &'static str, path: impl Into<String>, body: Value) -> Seed {
        Seed {
            name,
            method,
            path: path.into(),
            query: None,
            headers: Vec::new(),
            body,
            valid: true,
        }
    }

    fn query(mut self, q: &str) -> Seed {
        self.query = Some(q.to_owned());
        self
    }

    fn header(mut self, n: &'static str, v: &str) -> Seed {
        self.headers.push((n, v.to_owned()));
        self
    }

    fn invalid(mut self) -> Seed {
        self.valid = false;
        self
    }

    fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Value::Null => Vec::new(),
            v => serde_json::to_vec_pretty(v).unwrap(),
        }
    }
}

fn user(s: Seed) -> Seed {
    s.header("X-Amzn-Bedrock-AgentCore-Payments-User-Id", "user-1234")
        .header(
            "X-Amzn-Bedrock-AgentCore-Payments-Agent-Name",
            "shopping-agent",
        )
}

fn x402_v2() -> Value {
    json!({
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": "125000",
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 300,
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "extra": {"name": "USDC", "version": "2"}
    })
}

fn decode_request_seeds(dir: &Path) {
    clean_dir(dir);
    let mgr = format!("/payments/managers/{MANAGER_ID}");
    let conn = format!("{mgr}/connectors/{CONNECTOR_ID}");
    let seeds = vec![
        Seed::new(
            "CreatePaymentManager",
            "POST",
            "/payments/managers",
            json!({
                "name": "MyManager",
                "description": "Test manager",
                "authorizerType": "CUSTOM_JWT",
                "authorizerConfiguration": {"customJWTAuthorizer": {
                    "discoveryUrl": "https://example.com/.well-known/openid-configuration",
                    "allowedClients": ["client-1"]
                }},
                "roleArn": ROLE_ARN,
                "clientToken": CLIENT_TOKEN,
                "tags": {"env": "test"}
            }),
        ),
        Seed::new(
            "CreatePaymentManager-iam",
            "POST",
            "/payments/managers",
            json!({"name": "MyManager", "authorizerType": "AWS_IAM", "roleArn": ROLE_ARN}),
        ),
        Seed::new("GetPaymentManager", "GET", mgr.clone(), Value::Null),
        Seed::new(
            "UpdatePaymentManager",
            "PATCH",
            mgr.clone(),
            json!({"description": "new", "clientToken": CLIENT_TOKEN}),
        ),
        Seed::new("DeletePaymentManager", "DELETE", mgr.clone(), Value::Null)
            .query(&format!("clientToken={CLIENT_TOKEN}")),
        Seed::new(
            "ListPaymentManagers",
            "POST",
            "/payments/managers-list",
            json!({"maxResults": 10, "nextToken": "abc"}),
        ),
        Seed::new(
            "CreatePaymentConnector",
            "POST",
            format!("{mgr}/connectors"),
            json!({
                "name": "MyConnector",
                "type": "CoinbaseCDP",
                "credentialProviderConfigurations": [{"coinbaseCDP": {"credentialProviderArn": PROVIDER_ARN}}],
                "clientToken": CLIENT_TOKEN
            }),
        ),
        Seed::new(
            "CreatePaymentConnector-selfcustody",
            "POST",
            format!("{mgr}/connectors"),
            json!({
                "name": "MyConnector",
                "type": "SelfCustody",
                "credentialProviderConfigurations": [{"coinbaseCDP": {"credentialProviderArn": PROVIDER_ARN}}]
            }),
        ),
        Seed::new("GetPaymentConnector", "GET", conn.clone(), Value::Null),
        Seed::new(
            "UpdatePaymentConnector",
            "PATCH",
            conn.clone(),
            json!({"description": "d"}),
        ),
        Seed::new(
            "DeletePaymentConnector",
            "DELETE",
            conn.clone(),
            Value::Null,
        )
        .query(&format!("clientToken={CLIENT_TOKEN}")),
        Seed::new(
            "ListPaymentConnectors",
            "POST",
            format!("{mgr}/connectors-list"),
            json!({"maxResults": 5}),
        ),
        Seed::new(
            "RotatePaymentConnectorCredentials",
            "POST",
            format!("{conn}/rotate-credentials"),
            json!({
                "credentialsToRotate": {"coinbaseCDP": {"secrets": ["API_KEY", "WALLET_SECRET"]}}
            }),
        ),
        Seed::new(
            "CreatePaymentCredentialProvider",
            "POST",
            "/identities/CreatePaymentCredentialProvider",
            json!({
                "name": "my-provider",
                "credentialProviderVendor": "CoinbaseCDP",
                "providerConfigurationInput": {"coinbaseCdpConfiguration": {
                    "apiKeyId": "key-1",
                    "apiKeySecret": "c2VjcmV0LWtleS1tYXRlcmlhbA==",
                    "walletSecret": "d2FsbGV0LXNlY3JldA=="
                }},
                "tags": {"team": "payments"}
            }),
        ),
        Seed::new(
            "CreatePaymentCredentialProvider-privy",
            "POST",
            "/identities/CreatePaymentCredentialProvider",
            json!({
                "name": "privy-provider",
                "credentialProviderVendor": "StripePrivy",
                "providerConfigurationInput": {"stripePrivyConfiguration": {
                    "appId": "app-123",
                    "appSecret": "privy-app-secret-value",
                    "authorizationId": "auth-key-1",
                    "authorizationPrivateKey": "wallet-auth-private-key"
                }}
            }),
        ),
        Seed::new(
            "GetPaymentCredentialProvider",
            "POST",
            "/identities/GetPaymentCredentialProvider",
            json!({"name": "my-provider"}),
        ),
        Seed::new(
            "UpdatePaymentCredentialProvider",
            "POST",
            "/identities/UpdatePaymentCredentialProvider",
            json!({
                "name": "my-provider",
                "credentialProviderVendor": "CoinbaseCDP",
                "providerConfigurationInput": {"coinbaseCdpConfiguration": {"apiKeyId": "key-2", "apiKeySecret": "bmV3"}}
            }),
        ),
        Seed::new(
            "DeletePaymentCredentialProvider",
            "POST",
            "/identities/DeletePaymentCredentialProvider",
            json!({"name": "my-provider"}),
        ),
        Seed::new(
            "ListPaymentCredentialProviders",
            "POST",
            "/identities/ListPaymentCredentialProviders",
            json!({"maxResults": 20}),
        ),
        user(Seed::new(
            "CreatePaymentInstrument",
            "POST",
            "/payments/createPaymentInstrument",
            json!({
                "paymentManagerArn": DATA_MANAGER_ARN,
                "paymentConnectorId": CONNECTOR_ID,
                "paymentInstrumentType": "EMBEDDED_CRYPTO_WALLET",
                "paymentInstrumentDetails": {"embeddedCryptoWallet": {
                    "network": "ETHEREUM",
                    "linkedAccounts": [{"email": {"emailAddress": "alice@example.com"}}]
                }},
                "clientToken": CLIENT_TOKEN
            }),
        )),
        user(Seed::new(
            "GetPaymentInstrument",
            "POST",
            "/payments/getPaymentInstrument",
            json!({
                "paymentManagerArn": DATA_MANAGER_ARN,
                "paymentConnectorId": CONNECTOR_ID,
                "paymentInstrumentId": INSTRUMENT_ID
            }),
        )),
        user(Seed::new(
            "GetPaymentInstrumentBalance",
            "POST",
            "/payments/getPaymentInstrumentBalance",
            json!({
                "paymentManagerArn": DATA_MANAGER_ARN,
                "paymentConnectorId": CONNECTOR_ID,
                "paymentInstrumentId": INSTRUMENT_ID,
                "chain": "BASE_SEPOLIA",
                "token": "USDC"
            }),
        )),
        user(Seed::new(
            "ListPaymentInstruments",
            "POST",
            "/payments/listPaymentInstruments",
            json!({
                "paymentManagerArn": DATA_MANAGER_ARN, "maxResults": 10
            }),
        )),
        user(Seed::new(
            "DeletePaymentInstrument",
            "POST",
            "/payments/deletePaymentInstrument",
            json!({
                "paymentManagerArn": DATA_MANAGER_ARN,
                "paymentConnectorId": CONNECTOR_ID,
                "paymentInstrumentId": INSTRUMENT_ID
            }),
        )),
        user(Seed::new(
            "CreatePaymentSession",
            "POST",
            "/payments/createPaymentSession",
            json!({
                "paymentManagerArn": DATA_MANAGER_ARN,
                "limits": {"maxSpendAmount": {"value": "10.50", "currency": "USD"}},
                "expiryTimeInMinutes": 60,
                "clientToken": CLIENT_TOKEN
            }),
        )),
        user(Seed::new(
            "GetPaymentSession",
            "POST",
            "/payments/getPaymentSession",
            json!({
                "paymentManagerArn": DATA_MANAGER_ARN, "paymentSessionId": SESSION_ID
            }),
        )),
        user(Seed::new(
            "ListPaymentSessions",
            "POST",
            "/payments/listPaymentSessions",
            json!({
                "paymentManagerArn": DATA_MANAGER_ARN, "nextToken": "t"
            }),
        )),
        user(Seed::new(
            "DeletePaymentSession",
            "POST",
            "/payments/deletePaymentSession",
            json!({
                "paymentManagerArn": DATA_MANAGER_ARN, "paymentSessionId": SESSION_ID
            }),
        )),
        user(Seed::new(
            "ProcessPayment",
            "POST",
            "/payments/processPayment",
            json!({
                "paymentManagerArn": DATA_MANAGER_ARN,
                "paymentSessionId": SESSION_ID,
                "paymentInstrumentId": INSTRUMENT_ID,
                "paymentType": "CRYPTO_X402",
                "paymentInput": {"cryptoX402": {"version": "2", "payload": x402_v2()}},
                "clientToken": CLIENT_TOKEN
            }),
        )),
        Seed::new(
            "GetResourcePaymentToken",
            "POST",
            "/identities/payment/token",
            json!({
                "workloadIdentityToken": "eyJhbGciOiJIUzI1NiJ9.e30.sig",
                "resourceCredentialProviderName": "my-provider",
                "paymentTokenRequest": {"coinbaseCdpTokenRequest": {
                    "requestMethod": "GET", "requestHost": "api.cdp.coinbase.com", "requestPath": "/v1/x", "includeWalletAuthToken": true
                }}
            }),
        ),
        // A few requests that must be rejected, for the error paths.
        Seed::new(
            "bad-json",
            "POST",
            "/payments/managers",
            json!("{\"name\": "),
        )
        .invalid(),
        Seed::new(
            "bad-fields",
            "POST",
            "/payments/managers",
            json!({"name": "", "authorizerType": "nope", "description": 7, "tags": {"k": null}}),
        )
        .invalid(),
        Seed::new("bad-query", "DELETE", conn.clone(), Value::Null)
            .query("clientToken=short&clientToken=x%zz")
            .invalid(),
        Seed::new("unknown-path", "GET", "/payments/nope/%2F..", Value::Null).invalid(),
        Seed::new("wrong-method", "PUT", mgr.clone(), Value::Null).invalid(),
    ];

    let mut covered = BTreeSet::new();
    for seed in &seeds {
        let body = match &seed.body {
            // A string body is sent verbatim (malformed JSON).
            Value::String(s) => s.clone().into_bytes(),
            _ => seed.body_bytes(),
        };
        let mut headers: Vec<(String, Vec<u8>)> = vec![("Host".into(), b"localhost:8080".to_vec())];
        if !body.is_empty() {
            headers.push((
                "Content-Type".into(),
                b"application/x-amz-json-1.1".to_vec(),
            ));
        }
        headers.extend(
            seed.headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
        );
        let raw = RawRequest {
            now: None,
            method: seed.method.to_owned(),
            path: seed.path.clone(),
            query: seed.query.clone(),
            headers,
            body: &body,
        };
        let bytes = raw.to_bytes();
        // Does it do what it is meant to?
        let outcome = validate(&bytes);
        match (&outcome, seed.valid) {
            (Ok(op), true) => {
                covered.insert(*op);
            }
            (Err(_), false) => {}
            (r, _) => panic!("seed {}: unexpected outcome {r:?}", seed.name),
        }
        purser_fuzz::decode::check(&bytes);
        write(dir, &format!("{}.http", seed.name), &bytes);
    }
    for op in purser_model::operations() {
        if !covered.contains(op.name) {
            eprintln!("warning: no valid decode_request seed for {}", op.name);
        }
    }
    println!("decode_request: {} seeds", seeds.len());
}

/// The operation a seed routes to, if it validates.
fn validate(bytes: &[u8]) -> Result<&'static str, String> {
    let req = RawRequest::parse(bytes);
    let headers = req.header_map();
    let header = |n: &str| -> Vec<String> {
        headers
            .get_all(n)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (op, captures) =
        purser_model::find_operation(&req.method, &req.path).map_err(|e| e.to_string())?;
    let uri: Vec<(&str, String)> = captures.iter().map(|(k, v)| (*k, v.clone())).collect();
    purser_model::decode_input_value(op, &uri, req.query.as_deref(), &header, req.body)
        .map(|_| op.name)
        .map_err(|e| e.message)
}

/// What a signed seed becomes: headers as sent, path, query.
type SignedParts = (Vec<(String, Vec<u8>)>, String, Option<String>);

/// How to sign one `sigv4` seed.
struct Signed {
    name: &'static str,
    method: &'static str,
    url: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: &'static [u8],
    content_sha256: bool,
    unsigned_payload: bool,
    presign_expires: Option<u64>,
}

impl Signed {
    fn new(
        name: &'static str,
        method: &'static str,
        url: &'static str,
        body: &'static [u8],
    ) -> Signed {
        Signed {
            name,
            method,
            url,
            headers: Vec::new(),
            body,
            content_sha256: false,
            unsigned_payload: false,
            presign_expires: None,
        }
    }

    /// Signs with aws-sigv4 at `DEFAULT_NOW` and returns the request as the
    /// server receives it (with the `Host` header a client adds).
    fn sign(&self) -> SignedParts {
        let mut builder = http::Request::builder().method(self.method).uri(self.url);
        for (n, v) in &self.headers {
            builder = builder.header(*n, *v);
        }
        let mut req = builder.body(self.body.to_vec()).unwrap();
        let identity =
            Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "seeds").into();
        let mut settings = SigningSettings::default();
        if self.content_sha256 {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        if let Some(secs) = self.presign_expires {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(Duration::from_secs(secs));
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(SERVICE)
            .time(SystemTime::UNIX_EPOCH + Duration::from_secs(DEFAULT_NOW as u64))
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
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut req);
        let uri = req.uri().clone();
        let mut headers = vec![(
            "Host".to_owned(),
            uri.authority().unwrap().as_str().as_bytes().to_vec(),
        )];
        for (n, v) in req.headers() {
            headers.push((n.as_str().to_owned(), v.as_bytes().to_vec()));
        }
        (
            headers,
            uri.path().to_owned(),
            uri.query().map(str::to_owned),
        )
    }
}

fn sigv4_seeds(dir: &Path) {
    clean_dir(dir);
    let manager_body: &[u8] = br#"{"name":"MyManager","authorizerType":"AWS_IAM","roleArn":"arn:aws:iam::123456789012:role/PurserRole"}"#;
    let mut seeds = vec![
        Signed::new(
            "post-json",
            "POST",
            "http://localhost:8080/payments/managers",
            manager_body,
        ),
        Signed::new(
            "get-empty",
            "GET",
            "http://localhost:8080/payments/managers/mymanager-abcdefghij",
            b"",
        ),
        Signed::new(
            "delete-query",
            "DELETE",
            "http://localhost:8080/payments/managers/m-abcdefghij/connectors/c-abcdefghij?clientToken=a1b2c3d4-e5f6-7890-abcd-ef1234567890&x=a%20b%2Bc",
            b"",
        ),
        Signed::new(
            "encoded-path",
            "GET",
            "http://127.0.0.1:9000/payments/managers/a%3Ab:c/x",
            b"",
        ),
        Signed::new(
            "data-plane",
            "POST",
            "http://localhost:8080/payments/processPayment",
            br#"{"paymentType":"CRYPTO_X402"}"#,
        ),
    ];
    let mut s = Signed::new(
        "content-sha256",
        "POST",
        "http://localhost:8080/payments/listPaymentInstruments",
        br#"{"maxResults":1}"#,
    );
    s.content_sha256 = true;
    s.headers = vec![
        ("X-Amzn-Bedrock-AgentCore-Payments-User-Id", "user-1234"),
        ("X-Amz-Security-Token", "session-token"),
    ];
    seeds.push(s);
    let mut s = Signed::new(
        "unsigned-payload",
        "POST",
        "http://localhost:8080/payments/listPaymentSessions",
        b"{}",
    );
    s.content_sha256 = true;
    s.unsigned_payload = true;
    seeds.push(s);
    let mut s = Signed::new(
        "presigned",
        "GET",
        "http://localhost:8080/payments/managers/mymanager-abcdefghij?a=1",
        b"",
    );
    s.presign_expires = Some(300);
    seeds.push(s);

    let lookup = |akid: &str| {
        (akid == ACCESS_KEY_ID).then(|| zeroize::Zeroizing::new(SECRET_ACCESS_KEY.to_owned()))
    };
    let now = time::OffsetDateTime::from_unix_timestamp(DEFAULT_NOW).unwrap();
    for seed in &seeds {
        let (mut headers, path, query) = seed.sign();
        headers.push((
            "User-Agent".to_owned(),
            b"aws-sdk-rust/1.0 os/linux".to_vec(),
        ));
        let raw = RawRequest {
            now: Some(DEFAULT_NOW),
            method: seed.method.to_owned(),
            path,
            query,
            headers,
            body: seed.body,
        };
        let bytes = raw.to_bytes();
        // The seed must verify as written, through the fuzz input format.
        let back = RawRequest::parse(&bytes);
        let hs: Vec<(&str, &[u8])> = back
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let req = purser_sigv4::Request {
            method: &back.method,
            raw_path: &back.path,
            raw_query: back.query.as_deref(),
            headers: &hs,
            body: back.body,
        };
        let verified = purser_sigv4::verify(&req, &lookup, now, SERVICE);
        if seed.name == "unsigned-payload" {
            // The body is always authenticated: UNSIGNED-PAYLOAD is refused.
            assert_eq!(
                verified.unwrap_err(),
                purser_sigv4::SigV4Error::ContentSha256Mismatch
            );
        } else if let Err(e) = verified {
            panic!("sigv4 seed {} does not verify: {e}", seed.name);
        }
        purser_fuzz::sigv4::check(&bytes);
        write(dir, &format!("{}.http", seed.name), &bytes);
    }
    // Unsigned and malformed ones, for the error paths.
    let extra: [(&str, &[u8]); 3] = [
        ("missing-auth", b"@1763915073\nGET /payments/managers-list\nHost: localhost\n\n"),
        (
            "bad-date",
            b"@1763915073\nPOST /payments/managers\nHost: localhost\nX-Amz-Date: 2025-11-23T16:24:33Z\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251123/us-east-1/bedrock-agentcore/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\n\n{}",
        ),
        (
            "http-date",
            b"@1763915073\nGET /\nHost: localhost\nDate: Sun, 23 Nov 2025 16:24:33 GMT\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251123/us-east-1/bedrock-agentcore/aws4_request, SignedHeaders=date;host, Signature=0000000000000000000000000000000000000000000000000000000000000000\n\n",
        ),
    ];
    for (name, bytes) in extra {
        purser_fuzz::sigv4::check(bytes);
        write(dir, &format!("{name}.http"), bytes);
    }
    println!("sigv4: {} seeds", seeds.len() + extra.len());
}

fn x402_seeds(dir: &Path) {
    clean_dir(dir);
    let mut n = 0;
    for chain in Chain::ALL {
        let Some(domain) = chain.usdc_eip712_domain() else {
            continue;
        };
        for version in [1u8, 2] {
            let (network, amount_key) = if version == 1 {
                (chain.x402_v1_network(), "maxAmountRequired")
            } else {
                (chain.caip2(), "amount")
            };
            let mut req = json!({
                "scheme": "exact",
                "network": network,
                amount_key: "125000",
                "resource": "https://merchant.example/weather",
                "description": "weather report",
                "mimeType": "application/json",
                "payTo": PAY_TO,
                "maxTimeoutSeconds": 300,
                "asset": chain.usdc_address(),
                "extra": {"name": domain.name, "version": domain.version}
            });
            if version == 2 {
                req.as_object_mut().unwrap().remove("resource");
            }
            let parsed = purser_chain::x402::parse_exact_evm(&version.to_string(), &req, None);
            assert!(parsed.is_ok(), "x402 seed {chain:?} v{version}: {parsed:?}");
            // Mode byte: even = JSON mode; bits 1-2 pick the version ("1" = 0, "2" = 1).
            let mode = if version == 1 { 0u8 } else { 0b10 };
            let mut bytes = vec![mode];
            bytes.extend(serde_json::to_vec_pretty(&req).unwrap());
            purser_fuzz::x402::check(&bytes);
            write(
                dir,
                &format!("{}-v{version}.json-mode", chain.as_str().to_lowercase()),
                &bytes,
            );
            n += 1;
        }
    }
    // Rejected ones: Solana, upto, a number amount, permit2 (mode bit 4).
    let rejected: [(&str, u8, Value); 4] = [
        (
            "solana",
            0b10,
            json!({"scheme": "exact", "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "amount": "1",
            "payTo": "2wmVCSfPxGPjrnMMn7rchp4uaeoTqN39mXFC2zhPdri9", "maxTimeoutSeconds": 60,
            "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", "extra": {"feePayer": "2wmVCSfPxGPjrnMMn7rchp4uaeoTqN39mXFC2zhPdri9"}}),
        ),
        ("upto", 0b10, {
            let mut v = x402_v2();
            v["scheme"] = json!("upto");
            v
        }),
        ("number-amount", 0b10, {
            let mut v = x402_v2();
            v["amount"] = json!(125000);
            v
        }),
        ("permit2", 0b10010, x402_v2()),
    ];
    for (name, mode, req) in rejected {
        let mut bytes = vec![mode];
        bytes.extend(serde_json::to_vec(&req).unwrap());
        purser_fuzz::x402::check(&bytes);
        write(dir, &format!("{name}.json-mode"), &bytes);
        n += 1;
    }
    // Permit2 kinds, accepted by `parse_requirement`: upto (with permit2AllowanceLimit,
    // mode bit 4) and exact through Permit2.
    let permit2_kinds: [(&str, u8, Value); 2] = [
        ("upto-v2", 0b10010, {
            let mut v = x402_v2();
            v["scheme"] = json!("upto");
            v["extra"] = json!({"assetTransferMethod": "permit2",
                                "facilitatorAddress": "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"});
            v
        }),
        ("exact-permit2-v2", 0b10, {
            let mut v = x402_v2();
            v["extra"] = json!({"assetTransferMethod": "permit2"});
            v
        }),
    ];
    for (name, mode, req) in permit2_kinds {
        let limit = (mode & 0x10 != 0).then_some("1000000");
        let parsed = purser_chain::x402::parse_requirement("2", &req, limit);
        assert!(parsed.is_ok(), "x402 seed {name}: {parsed:?}");
        let mut bytes = vec![mode];
        bytes.extend(serde_json::to_vec(&req).unwrap());
        purser_fuzz::x402::check(&bytes);
        write(dir, &format!("{name}.json-mode"), &bytes);
        n += 1;
    }
    // An MPP challenge (every input is also read as one): a valid evm charge.
    let request = json!({
        "amount": "250000", "currency": Chain::BaseSepolia.usdc_address(), "recipient": PAY_TO,
        "methodDetails": {"chainId": 84532, "credentialTypes": ["authorization"], "decimals": 6}
    });
    let header = format!(
        "Payment id=\"ch_1\", realm=\"shop.test\", method=\"evm\", intent=\"charge\", request=\"{}\", expires=\"2030-01-01T00:00:00.000Z\", description=\"a \\\"quoted\\\" \\u00e9\"",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, request.to_string())
    );
    purser_fuzz::x402::check(header.as_bytes());
    write(dir, "mpp-evm-challenge", header.as_bytes());
    n += 1;
    // Structured mode (odd first byte): `arbitrary` reads the rest; any bytes do.
    for (name, rest) in [
        ("structured-zeros", vec![0u8; 96]),
        ("structured-ramp", (0..=255u8).collect()),
    ] {
        let mut bytes = vec![1u8];
        bytes.extend(rest);
        purser_fuzz::x402::check(&bytes);
        write(dir, &format!("{name}.bin"), &bytes);
        n += 1;
    }
    println!("x402: {n} seeds");
}

/// libFuzzer dictionaries: tokens the mutator splices in.
fn dictionaries(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    // decode_request: methods, every literal path segment, member and location
    // names, enum values, from the model tables.
    let mut tokens: BTreeSet<String> = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "\n\n", "%2F", "%00", "?", "&", "=",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for op in purser_model::operations() {
        for seg in op.segments {
            if let purser_model::Segment::Literal(l) = seg {
                tokens.insert(format!("/{l}"));
            }
        }
        for lm in op.location_members {
            tokens.insert(lm.location_name.to_owned());
        }
    }
    for service in Service::ALL {
        for shape in service.shapes() {
            match &shape.kind {
                ShapeKind::Structure { members, .. } => {
                    for m in members.iter() {
                        tokens.insert(format!("\"{}\":", m.name));
                    }
                }
                ShapeKind::String {
                    enum_values: Some(values),
                    ..
                } => {
                    for v in values.iter() {
                        tokens.insert(format!("\"{v}\""));
                    }
                }
                _ => {}
            }
        }
    }
    write_dict(dir, "decode_request.dict", &tokens);

    let sig: BTreeSet<String> = [
        "AWS4-HMAC-SHA256",
        "Credential=",
        "SignedHeaders=",
        "Signature=",
        "aws4_request",
        "bedrock-agentcore",
        "AKIDEXAMPLE",
        "Authorization: ",
        "X-Amz-Date: ",
        "Date: ",
        "x-amz-content-sha256",
        "UNSIGNED-PAYLOAD",
        "X-Amz-Algorithm=",
        "X-Amz-Credential=",
        "X-Amz-Date=",
        "X-Amz-Expires=",
        "X-Amz-SignedHeaders=",
        "X-Amz-Signature=",
        "host;x-amz-date",
        ":authority",
        "20251123T162433Z",
        "/..",
        "/./",
        "//",
        "%2E",
        "+",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    write_dict(dir, "sigv4.dict", &sig);

    let mut x: BTreeSet<String> = [
        "\"scheme\":",
        "\"exact\"",
        "\"upto\"",
        "\"network\":",
        "\"maxAmountRequired\":",
        "\"amount\":",
        "\"asset\":",
        "\"payTo\":",
        "\"maxTimeoutSeconds\":",
        "\"extra\":",
        "\"name\":",
        "\"version\":",
        "0x",
        "340282366920938463463374607431768211455",
        "340282366920938463463374607431768211456",
        "86400",
        "86401",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for c in Chain::ALL {
        x.insert(format!("\"{}\"", c.x402_v1_network()));
        x.insert(format!("\"{}\"", c.caip2()));
        x.insert(format!("\"{}\"", c.usdc_address()));
    }
    write_dict(dir, "x402.dict", &x);
}

fn write_dict(dir: &Path, name: &str, tokens: &BTreeSet<String>) {
    let mut out = String::from("# Generated by `cargo run --example gen_seeds`; do not edit.\n");
    for t in tokens {
        out.push('"');
        for b in t.bytes() {
            if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
                out.push_str(&format!("\\x{b:02X}"));
            } else {
                out.push(b as char);
            }
        }
        out.push_str("\"\n");
    }
    std::fs::write(dir.join(name), out).unwrap();
    println!("{name}: {} tokens", tokens.len());
}
