use base64::Engine as _;
use serde_json::{Value, json};

use super::*;
use crate::Chain;
use crate::payment::{PaymentInput, parse};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const USDC_BASE_SEPOLIA: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const RECIPIENT: &str = "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00";

fn request() -> Value {
    json!({
        "amount": "250000",
        "currency": USDC_BASE_SEPOLIA,
        "recipient": RECIPIENT,
        "methodDetails": {"chainId": 84532, "credentialTypes": ["authorization"], "decimals": 6},
    })
}

fn header_with(request: &Value, extra: &str) -> String {
    format!(
        "Payment id=\"ch_123\", realm=\"api.example.com\", method=\"evm\", intent=\"charge\", request=\"{}\"{extra}",
        B64.encode(request.to_string())
    )
}

fn input(header: &str) -> PaymentInput {
    PaymentInput::Mpp {
        version: "1".into(),
        www_authenticate_headers: vec![header.to_owned()],
        buyer_pays_gas_fees: None,
    }
}

fn refusal(header: &str) -> (String, String) {
    let e = parse(&input(header)).unwrap_err();
    (e.field, e.message)
}

#[test]
fn a_good_evm_challenge_is_read_with_what_it_pays_and_debits() {
    let r = parse(&input(&header_with(&request(), ""))).unwrap();
    assert_eq!(r.payment_type, crate::payment::PaymentType::Mpp);
    assert_eq!(r.scheme, "evm");
    assert_eq!(r.chain, Chain::BaseSepolia);
    assert_eq!(r.network, "eip155:84532");
    assert_eq!(r.amount, 250_000);
    assert_eq!(r.debit, 250_000);
    assert_eq!(r.payee, RECIPIENT);
    assert_eq!(r.asset, USDC_BASE_SEPOLIA);
    assert_eq!(r.amount_field, format!("{HEADER}.request.amount"));
}

#[test]
fn auth_params_follow_the_grammar() {
    // Case-insensitive scheme and names, token values, escapes, unknown parameters.
    let req = B64.encode(request().to_string());
    let h = format!(
        "payment ID=ch_1, Realm=\"a \\\"quoted\\\" \\u00e9\\u2014realm\", method=evm, intent=charge, request={req}, future=\"x, y\""
    );
    let c = parse_challenge(&h).unwrap();
    assert_eq!(c.id, "ch_1");
    assert_eq!(c.realm, "a \"quoted\" \u{e9}\u{2014}realm");
    assert_eq!(c.request_raw, req);
    // Another scheme after it is not part of it.
    let h2 = format!("{}, Bearer realm=\"x\"", header_with(&request(), ""));
    assert_eq!(parse_challenge(&h2).unwrap().id, "ch_123");
}

#[test]
fn every_malformed_challenge_is_refused_naming_what_is_wrong() {
    let good = header_with(&request(), "");
    let req = B64.encode(request().to_string());
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "Bearer realm=\"x\"".into(),
            HEADER,
            "is not a Payment challenge",
        ),
        (
            format!("{good}, {good}"),
            HEADER,
            "holds 2 Payment challenges",
        ),
        (
            good.replace("id=\"ch_123\", ", ""),
            "paymentInput.mpp.wwwAuthenticateHeaders[0].id",
            "no id parameter",
        ),
        (
            good.replace("realm=\"api.example.com\", ", ""),
            "paymentInput.mpp.wwwAuthenticateHeaders[0].realm",
            "no realm",
        ),
        (
            good.replace("intent=\"charge\"", "intent=\"session\""),
            "paymentInput.mpp.wwwAuthenticateHeaders[0].intent",
            "only \"charge\"",
        ),
        (
            good.replace("method=\"evm\"", "method=\"EVM\""),
            "paymentInput.mpp.wwwAuthenticateHeaders[0].method",
            "not a method name",
        ),
        (
            good.replace("method=\"evm\"", "method=\"stripe\""),
            "paymentInput.mpp.wwwAuthenticateHeaders[0].method",
            "not supported",
        ),
        (
            good.replace("method=\"evm\"", "method=\"solana\""),
            "paymentInput.mpp.wwwAuthenticateHeaders[0].request.currency",
            "not the USDC mint of SOLANA",
        ),
        (
            good.replace("method=\"evm\"", "method=\"tempo\""),
            "paymentInput.mpp.wwwAuthenticateHeaders[0].request.methodDetails.chainId",
            "must be 4217 (Tempo) or 42431",
        ),
        (format!("{good}, id=\"again\""), HEADER, "appears twice"),
        (
            format!("{good}, description=\"open"),
            HEADER,
            "not terminated",
        ),
        (
            good.replace(&req, "@@@"),
            "paymentInput.mpp.wwwAuthenticateHeaders[0].request",
            "not base64url",
        ),
        (
            good.replace(&req, &B64.encode("[1]")),
            "paymentInput.mpp.wwwAuthenticateHeaders[0].request",
            "JSON object",
        ),
        (
            good.replace(&req, &"A".repeat(MAX_REQUEST_LEN + 4)),
            "paymentInput.mpp.wwwAuthenticateHeaders[0].request",
            "larger than",
        ),
        (
            format!("{good}, expires=\"tomorrow\""),
            "paymentInput.mpp.wwwAuthenticateHeaders[0].expires",
            "RFC 3339",
        ),
    ];
    for (header, want_field, want) in cases {
        let (field, message) = refusal(&header);
        assert_eq!(field, want_field, "{header}: {message}");
        assert!(message.contains(want), "{want:?} not in {message:?}");
    }
}

#[test]
fn every_bad_evm_request_is_refused_naming_the_member() {
    let f = |m: &str| format!("{HEADER}.request.{m}");
    let with = |path: &[&str], v: Value| {
        let mut r = request();
        let mut at = &mut r;
        for p in &path[..path.len() - 1] {
            at = at.get_mut(*p).unwrap();
        }
        match v {
            Value::Null => {
                at.as_object_mut().unwrap().remove(path[path.len() - 1]);
            }
            v => at[path[path.len() - 1]] = v,
        }
        header_with(&r, "")
    };
    let cases: Vec<(String, String, &str)> = vec![
        (with(&["amount"], Value::Null), f("amount"), "is required"),
        (with(&["amount"], json!("0")), f("amount"), "greater than 0"),
        (with(&["amount"], json!("1.5")), f("amount"), "atomic units"),
        (with(&["amount"], json!(100)), f("amount"), "is required"),
        (
            with(&["amount"], json!("9".repeat(40))),
            f("amount"),
            "too large",
        ),
        (
            with(
                &["currency"],
                json!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
            ),
            f("currency"),
            "is not USDC on BASE_SEPOLIA",
        ),
        (
            with(
                &["recipient"],
                json!("0x0000000000000000000000000000000000000000"),
            ),
            f("recipient"),
            "non-zero",
        ),
        (
            with(&["recipient"], json!("not-an-address")),
            f("recipient"),
            "non-zero",
        ),
        (
            with(&["methodDetails"], Value::Null),
            f("methodDetails"),
            "is required",
        ),
        (
            with(&["methodDetails", "chainId"], json!(10)),
            f("methodDetails.chainId"),
            "must be 8453",
        ),
        (
            with(&["methodDetails", "chainId"], json!("84532")),
            f("methodDetails.chainId"),
            "must be 8453",
        ),
        (
            with(
                &["methodDetails", "credentialTypes"],
                json!(["transaction"]),
            ),
            f("methodDetails.credentialTypes"),
            "authorization",
        ),
        (
            with(&["methodDetails", "decimals"], json!(18)),
            f("methodDetails.decimals"),
            "must be 6",
        ),
        (
            with(
                &["methodDetails", "splits"],
                json!([{"amount": "1", "recipient": RECIPIENT}]),
            ),
            f("methodDetails.splits"),
            "not supported",
        ),
    ];
    for (header, want_field, want) in cases {
        let (field, message) = refusal(&header);
        assert_eq!(field, want_field, "{message}");
        assert!(message.contains(want), "{want:?} not in {message:?}");
    }
}

#[test]
fn version_and_header_count_are_checked() {
    let h = header_with(&request(), "");
    let e = parse(&PaymentInput::Mpp {
        version: "2".into(),
        www_authenticate_headers: vec![h.clone()],
        buyer_pays_gas_fees: None,
    })
    .unwrap_err();
    assert_eq!(e.field, "paymentInput.mpp.version");
    let e = parse(&PaymentInput::Mpp {
        version: "1".into(),
        www_authenticate_headers: vec![h.clone(), h],
        buyer_pays_gas_fees: Some(true),
    })
    .unwrap_err();
    assert_eq!(e.field, "paymentInput.mpp.wwwAuthenticateHeaders");
}

#[test]
fn expiry_is_checked_against_now() {
    let c = parse_challenge(&header_with(
        &request(),
        ", expires=\"2026-01-01T00:00:00Z\"",
    ))
    .unwrap();
    let at = 1_767_225_600; // 2026-01-01T00:00:00Z
    assert!(c.check_not_expired(at - 1).is_ok());
    let e = c.check_not_expired(at).unwrap_err();
    assert!(
        e.message.contains("expired at 2026-01-01T00:00:00Z"),
        "{}",
        e.message
    );
}

#[test]
fn the_credential_echoes_the_challenge_as_received() {
    let h = header_with(
        &request(),
        ", expires=\"2030-01-01T00:00:00.000Z\", opaque=\"eyJ4IjoiMSJ9\", description=\"a \\\"b\\\"\", unknown=\"dropped\"",
    );
    let c = parse_challenge(&h).unwrap();
    let cred = c.credential(json!({"k": "v"}), Some("did:pkh:eip155:84532:0xabc".into()));
    let b64 = cred.strip_prefix("Payment ").unwrap();
    assert!(!b64.contains('='), "no padding");
    let body: Value = serde_json::from_slice(&B64.decode(b64).unwrap()).unwrap();
    assert_eq!(
        body["challenge"],
        json!({
            "id": "ch_123", "realm": "api.example.com", "method": "evm", "intent": "charge",
            "request": c.request_raw, "expires": "2030-01-01T00:00:00.000Z",
            "opaque": "eyJ4IjoiMSJ9", "description": "a \"b\"",
        })
    );
    assert_eq!(body["payload"], json!({"k": "v"}));
    assert_eq!(body["source"], "did:pkh:eip155:84532:0xabc");
}
