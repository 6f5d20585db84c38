//! `purser_chain::x402`: the validation catalogue of `parse_exact_evm`, the
//! EIP-712 digest against viem vectors, the validity window, and the payload
//! and header shapes. Offline; the reference facilitator round trip is in
//! `x402_facilitator.rs`.

use base64::Engine as _;
use k256::ecdsa::SigningKey;
use purser_chain::x402::{
    Authorization, ExactEvmRequirement, MAX_TIMEOUT_SECONDS, X402Error, authorization_for,
    checksum_address, domain_separator, exact_evm_payload, parse_exact_evm,
    transfer_with_authorization_digest, transfer_with_authorization_typed_data, x402_header,
};
use purser_chain::{Chain, x402};
use serde_json::{Value, json};

const P: &str = "paymentInput.cryptoX402.payload";
const PAY_TO: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

fn v1_requirement() -> Value {
    json!({
        "scheme": "exact",
        "network": "base-sepolia",
        "maxAmountRequired": "125000",
        "resource": "https://merchant.example/weather",
        "description": "weather",
        "mimeType": "application/json",
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 300,
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "extra": {"name": "USDC", "version": "2"}
    })
}

fn v2_requirement() -> Value {
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

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v.as_object_mut().unwrap().insert(key.to_string(), value);
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

fn err(version: &str, payload: &Value) -> X402Error {
    parse_exact_evm(version, payload, None).expect_err("expected a validation error")
}

/// Asserts the error's field, and that its message names the field.
fn assert_field(e: &X402Error, field: &str) {
    assert_eq!(e.field, field, "{e:?}");
    assert!(
        e.message.contains(field),
        "message should name {field}: {}",
        e.message
    );
    assert_eq!(e.to_string(), e.message);
}

fn addr(s: &str) -> [u8; 20] {
    let mut out = [0u8; 20];
    hex::decode_to_slice(&s[2..], &mut out).unwrap();
    out
}

fn bytes32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim_start_matches("0x"), &mut out).unwrap();
    out
}

// ------------------------------------------------------------- accepted input

#[test]
fn v1_requirement_parses() {
    let r = parse_exact_evm("1", &v1_requirement(), None).unwrap();
    assert_eq!(
        r,
        ExactEvmRequirement {
            version: 1,
            chain: Chain::BaseSepolia,
            network: "base-sepolia".into(),
            amount: 125_000,
            pay_to: PAY_TO.into(),
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            max_timeout_seconds: 300,
            domain_name: "USDC".into(),
            domain_version: "2".into(),
        }
    );
    assert_eq!(r.chain_id(), 84532);
}

#[test]
fn v2_requirement_parses() {
    let r = parse_exact_evm("2", &v2_requirement(), None).unwrap();
    assert_eq!(r.version, 2);
    assert_eq!(r.chain, Chain::BaseSepolia);
    assert_eq!(r.network, "eip155:84532");
    assert_eq!(r.amount, 125_000);
    assert_eq!(r.pay_to, PAY_TO);
}

#[test]
fn both_network_spellings_in_both_versions() {
    let cases = [
        ("base", Chain::Base),
        ("eip155:8453", Chain::Base),
        ("base-sepolia", Chain::BaseSepolia),
        ("eip155:84532", Chain::BaseSepolia),
        ("ethereum", Chain::Ethereum),
        ("eip155:1", Chain::Ethereum),
    ];
    for version in ["1", "2"] {
        for (network, chain) in cases {
            for base in [v1_requirement(), v2_requirement()] {
                let mut req = with(base, "network", json!(network));
                req["asset"] = json!(chain.usdc_address());
                let r = parse_exact_evm(version, &req, None)
                    .unwrap_or_else(|e| panic!("v{version} {network}: {e:?}"));
                assert_eq!(r.chain, chain);
                assert_eq!(r.network, network);
                assert_eq!(r.version.to_string(), version);
                assert_eq!(r.amount, 125_000);
            }
        }
    }
}

#[test]
fn amount_members_in_either_version() {
    // maxAmountRequired in v2, amount in v1.
    let v2_with_v1_member = with(
        without(v2_requirement(), "amount"),
        "maxAmountRequired",
        json!("7"),
    );
    assert_eq!(
        parse_exact_evm("2", &v2_with_v1_member, None)
            .unwrap()
            .amount,
        7
    );
    let v1_with_v2_member = with(
        without(v1_requirement(), "maxAmountRequired"),
        "amount",
        json!("8"),
    );
    assert_eq!(
        parse_exact_evm("1", &v1_with_v2_member, None)
            .unwrap()
            .amount,
        8
    );
    // Both, equal (numerically: leading zeros are allowed).
    for version in ["1", "2"] {
        let both = with(v1_requirement(), "amount", json!("125000"));
        assert_eq!(
            parse_exact_evm(version, &both, None).unwrap().amount,
            125_000
        );
        let both = with(v1_requirement(), "amount", json!("0125000"));
        assert_eq!(
            parse_exact_evm(version, &both, None).unwrap().amount,
            125_000
        );
    }
    // Both, different: the version's own member is named.
    let both = with(v1_requirement(), "amount", json!("125001"));
    let e = err("1", &both);
    assert_field(&e, &format!("{P}.maxAmountRequired"));
    assert!(e.message.contains(&format!("{P}.amount")), "{}", e.message);
    assert!(e.message.contains("differ"), "{}", e.message);
    let e = err("2", &both);
    assert_field(&e, &format!("{P}.amount"));
    // Both, one invalid: that one is named.
    let both = with(v1_requirement(), "amount", json!("12x"));
    assert_field(&err("1", &both), &format!("{P}.amount"));
    // null counts as absent.
    let null_amount = with(v1_requirement(), "amount", Value::Null);
    assert_eq!(
        parse_exact_evm("1", &null_amount, None).unwrap().amount,
        125_000
    );
}

#[test]
fn amount_limits() {
    let max = with(
        v2_requirement(),
        "amount",
        json!("340282366920938463463374607431768211455"),
    );
    assert_eq!(parse_exact_evm("2", &max, None).unwrap().amount, u128::MAX);
    let one = with(v2_requirement(), "amount", json!("1"));
    assert_eq!(parse_exact_evm("2", &one, None).unwrap().amount, 1);
}

#[test]
fn pay_to_lowercase_or_uppercase_is_accepted_and_checksummed() {
    for pay_to in [
        PAY_TO.to_ascii_lowercase(),
        format!("0x{}", PAY_TO[2..].to_ascii_uppercase()),
        PAY_TO.to_string(),
    ] {
        let req = with(v2_requirement(), "payTo", json!(pay_to));
        assert_eq!(parse_exact_evm("2", &req, None).unwrap().pay_to, PAY_TO);
    }
}

#[test]
fn asset_compare_ignores_case_and_result_is_canonical() {
    let req = with(
        v2_requirement(),
        "asset",
        json!("0x036cbd53842c5426634e7929541ec2318f3dcf7e"),
    );
    assert_eq!(
        parse_exact_evm("2", &req, None).unwrap().asset,
        "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
    );
}

#[test]
fn max_timeout_as_number_or_string() {
    let req = with(v2_requirement(), "maxTimeoutSeconds", json!("60"));
    assert_eq!(
        parse_exact_evm("2", &req, None)
            .unwrap()
            .max_timeout_seconds,
        60
    );
    let req = with(
        v2_requirement(),
        "maxTimeoutSeconds",
        json!(MAX_TIMEOUT_SECONDS),
    );
    assert_eq!(
        parse_exact_evm("2", &req, None)
            .unwrap()
            .max_timeout_seconds,
        86_400
    );
}

// ------------------------------------------------------------- the catalogue

#[test]
fn version_must_be_1_or_2() {
    for version in ["", "0", "3", "v2", "2.0", " 2"] {
        let e = err(version, &v2_requirement());
        assert_field(&e, "paymentInput.cryptoX402.version");
    }
}

#[test]
fn payload_must_be_an_object() {
    for payload in [
        json!(null),
        json!("exact"),
        json!(12),
        json!([v2_requirement()]),
    ] {
        assert_field(&err("2", &payload), P);
    }
    let e = err("2", &json!([v2_requirement()]));
    assert!(e.message.contains("ONE entry"), "{}", e.message);
}

#[test]
fn scheme_errors() {
    let field = format!("{P}.scheme");
    for bad in [
        without(v2_requirement(), "scheme"),
        with(v2_requirement(), "scheme", Value::Null),
        with(v2_requirement(), "scheme", json!("")),
        with(v2_requirement(), "scheme", json!(1)),
        with(v2_requirement(), "scheme", json!("Exact")),
        with(v2_requirement(), "scheme", json!("batch-settlement")),
    ] {
        assert_field(&err("2", &bad), &field);
    }
    let e = err("2", &without(v2_requirement(), "scheme"));
    assert!(e.message.contains("required"), "{}", e.message);
}

#[test]
fn parse_exact_evm_reads_exact_only() {
    // upto is read by `x402::parse_requirement` (x402/upto_evm.rs, tests/x402_permit2.rs);
    // the EIP-3009 reader refuses it, naming the scheme, whatever else is given.
    let field = format!("{P}.scheme");
    let upto = with(v2_requirement(), "scheme", json!("upto"));
    for (version, limit) in [("2", None), ("1", None), ("2", Some("1000000"))] {
        let e = parse_exact_evm(version, &upto, limit).unwrap_err();
        assert_field(&e, &field);
        assert!(e.message.contains("upto"), "{}", e.message);
    }
}

#[test]
fn permit2_allowance_limit_is_only_for_upto() {
    for limit in ["1000000", ""] {
        let e = parse_exact_evm("2", &v2_requirement(), Some(limit)).unwrap_err();
        assert_field(&e, "paymentInput.cryptoX402.permit2AllowanceLimit");
        assert!(e.message.contains("upto"), "{}", e.message);
        let e = parse_exact_evm("1", &v1_requirement(), Some(limit)).unwrap_err();
        assert_field(&e, "paymentInput.cryptoX402.permit2AllowanceLimit");
    }
}

#[test]
fn network_errors() {
    let field = format!("{P}.network");
    for bad in [
        without(v2_requirement(), "network"),
        with(v2_requirement(), "network", json!("")),
        with(v2_requirement(), "network", json!(84532)),
        with(v2_requirement(), "network", json!("eip155:137")),
        with(v2_requirement(), "network", json!("polygon")),
        with(v2_requirement(), "network", json!("Base-Sepolia")),
        with(v2_requirement(), "network", json!("eip155:084532")),
    ] {
        for version in ["1", "2"] {
            assert_field(&err(version, &bad), &field);
        }
    }
}

#[test]
fn solana_networks_are_rejected_naming_network() {
    for network in [
        "solana",
        "solana-devnet",
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
        "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
    ] {
        let req = with(v2_requirement(), "network", json!(network));
        for version in ["1", "2"] {
            let e = err(version, &req);
            assert_field(&e, &format!("{P}.network"));
            assert!(
                e.message.contains("exact on Solana is read by exact_svm"),
                "{}",
                e.message
            );
        }
    }
}

#[test]
fn amount_errors() {
    let bad_values = [
        json!("0"),
        json!("000"),
        json!("-1"),
        json!("+1"),
        json!("1.5"),
        json!("1e6"),
        json!(" 1"),
        json!(""),
        json!("0x10"),
        json!("١٢"), // non-ASCII digits
        json!("340282366920938463463374607431768211456"),
        json!("99999999999999999999999999999999999999999999999999"),
        json!(125000),
        json!(1.5),
        json!(true),
        json!({}),
    ];
    for value in &bad_values {
        let req = with(v1_requirement(), "maxAmountRequired", value.clone());
        assert_field(&err("1", &req), &format!("{P}.maxAmountRequired"));
        let req = with(v2_requirement(), "amount", value.clone());
        assert_field(&err("2", &req), &format!("{P}.amount"));
    }
    let e = err("2", &with(v2_requirement(), "amount", json!("0")));
    assert!(e.message.contains("greater than 0"), "{}", e.message);
    // Absent: the version's member is named.
    let e = err("1", &without(v1_requirement(), "maxAmountRequired"));
    assert_field(&e, &format!("{P}.maxAmountRequired"));
    assert!(e.message.contains("required"), "{}", e.message);
    let e = err("2", &without(v2_requirement(), "amount"));
    assert_field(&e, &format!("{P}.amount"));
}

#[test]
fn asset_must_be_the_networks_usdc() {
    let field = format!("{P}.asset");
    for bad in [
        without(v2_requirement(), "asset"),
        with(v2_requirement(), "asset", json!("")),
        with(v2_requirement(), "asset", json!("USDC")),
        with(v2_requirement(), "asset", json!(1)),
        // Another token.
        with(
            v2_requirement(),
            "asset",
            json!("0xdAC17F958D2ee523a2206206994597C13D831ec7"),
        ),
        // USDC of another chain.
        with(v2_requirement(), "asset", json!(Chain::Base.usdc_address())),
        // The Solana mint.
        with(
            v2_requirement(),
            "asset",
            json!(Chain::SolanaDevnet.usdc_address()),
        ),
        with(
            v2_requirement(),
            "asset",
            json!("0x036CbD53842c5426634e7929541eC2318f3dCF7e00"),
        ),
    ] {
        assert_field(&err("2", &bad), &field);
    }
    let e = err(
        "2",
        &with(v2_requirement(), "asset", json!(Chain::Base.usdc_address())),
    );
    assert!(e.message.contains("USDC"), "{}", e.message);
    assert!(
        e.message
            .contains("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
        "{}",
        e.message
    );
}

#[test]
fn pay_to_errors() {
    let field = format!("{P}.payTo");
    for bad in [
        json!(null),
        json!(""),
        json!(7),
        json!("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
        json!("0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
        json!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe"),
        json!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd"),
        json!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg"),
        json!("0x0000000000000000000000000000000000000000"),
        json!("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),
    ] {
        assert_field(&err("2", &with(v2_requirement(), "payTo", bad)), &field);
    }
    assert_field(&err("2", &without(v2_requirement(), "payTo")), &field);
}

#[test]
fn pay_to_bad_checksum() {
    // One letter's case flipped.
    let bad = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD";
    let e = err("2", &with(v2_requirement(), "payTo", json!(bad)));
    assert_field(&e, &format!("{P}.payTo"));
    assert!(e.message.contains("checksum"), "{}", e.message);
    assert!(e.message.contains(PAY_TO), "{}", e.message);
}

#[test]
fn max_timeout_errors() {
    let field = format!("{P}.maxTimeoutSeconds");
    for bad in [
        json!(0),
        json!(-1),
        json!(1.5),
        json!(300.0),
        json!("0"),
        json!("-5"),
        json!("1.5"),
        json!(""),
        json!("abc"),
        json!("99999999999999999999999"),
        json!(MAX_TIMEOUT_SECONDS + 1),
        json!(u64::MAX),
        json!(true),
        json!([]),
    ] {
        let req = with(v2_requirement(), "maxTimeoutSeconds", bad.clone());
        let e = err("2", &req);
        assert_field(&e, &field);
        let req = with(v1_requirement(), "maxTimeoutSeconds", bad);
        assert_field(&err("1", &req), &field);
    }
    let e = err("2", &without(v2_requirement(), "maxTimeoutSeconds"));
    assert_field(&e, &field);
    assert!(e.message.contains("required"), "{}", e.message);
    let e = err("2", &with(v2_requirement(), "maxTimeoutSeconds", json!(0)));
    assert!(e.message.contains("positive"), "{}", e.message);
}

#[test]
fn extra_errors() {
    let name = format!("{P}.extra.name");
    let version = format!("{P}.extra.version");
    let extra = |v: Value| with(v2_requirement(), "extra", v);
    let cases = [
        (without(v2_requirement(), "extra"), name.clone()),
        (extra(Value::Null), name.clone()),
        (extra(json!({})), name.clone()),
        (extra(json!({"version": "2"})), name.clone()),
        (extra(json!({"name": "", "version": "2"})), name.clone()),
        (extra(json!({"name": 1, "version": "2"})), name.clone()),
        (
            extra(json!({"name": "x".repeat(257), "version": "2"})),
            name.clone(),
        ),
        (extra(json!({"name": "USDC"})), version.clone()),
        (
            extra(json!({"name": "USDC", "version": ""})),
            version.clone(),
        ),
        (
            extra(json!({"name": "USDC", "version": 2})),
            version.clone(),
        ),
        (
            extra(json!({"name": "USDC", "version": null})),
            version.clone(),
        ),
        (extra(json!("USDC")), format!("{P}.extra")),
        (extra(json!(["USDC", "2"])), format!("{P}.extra")),
    ];
    for (req, field) in cases {
        for v in ["1", "2"] {
            assert_field(&err(v, &req), &field);
        }
    }
    // Other members of extra are ignored.
    let req = extra(json!({"name": "USDC", "version": "2", "assetTransferMethod": "eip3009"}));
    assert!(parse_exact_evm("2", &req, None).is_ok());
}

// ------------------------------------------------------------- window

#[test]
fn validity_window_follows_the_reference_client() {
    let from = addr("0x1111111111111111111111111111111111111111");
    let nonce = [7u8; 32];
    let now = 1_700_000_000;

    // v2 (`@x402/evm` exact/client createEIP3009Payload): validAfter "0".
    let r2 = parse_exact_evm("2", &v2_requirement(), None).unwrap();
    let a = authorization_for(&r2, from, now, nonce);
    assert_eq!(
        a,
        Authorization {
            from,
            to: addr(PAY_TO),
            value: 125_000,
            valid_after: 0,
            valid_before: now + 300,
            nonce,
        }
    );

    // v1 (`@x402/evm` exact/v1/client): validAfter = now - 600.
    let r1 = parse_exact_evm("1", &v1_requirement(), None).unwrap();
    let a = authorization_for(&r1, from, now, nonce);
    assert_eq!(a.valid_after, now - 600);
    assert_eq!(a.valid_before, now + 300);
    assert_eq!(a.to, addr(PAY_TO));
    // No underflow near the epoch.
    assert_eq!(authorization_for(&r1, from, 5, nonce).valid_after, 0);
}

// ------------------------------------------------------------- EIP-712

#[test]
fn checksum_address_matches_eip55_examples() {
    // The examples of EIP-55 itself.
    for s in [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ] {
        assert_eq!(checksum_address(&addr(s)), s);
    }
    for chain in [Chain::Base, Chain::BaseSepolia, Chain::Ethereum] {
        assert_eq!(
            checksum_address(&addr(chain.usdc_address())),
            chain.usdc_address()
        );
    }
}

fn requirement(chain: Chain, name: &str, version: &str) -> ExactEvmRequirement {
    let req = json!({
        "scheme": "exact",
        "network": chain.caip2(),
        "amount": "1",
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "asset": chain.usdc_address(),
        "extra": {"name": name, "version": version}
    });
    parse_exact_evm("2", &req, None).unwrap()
}

/// Vectors produced with viem 2.57.20 (tests/chain/node_modules), in
/// tests/chain:
///
/// ```js
/// import { hashTypedData, hashDomain, getAddress } from "viem";
/// const types = { TransferWithAuthorization: [
///   {name:"from",type:"address"}, {name:"to",type:"address"}, {name:"value",type:"uint256"},
///   {name:"validAfter",type:"uint256"}, {name:"validBefore",type:"uint256"}, {name:"nonce",type:"bytes32"}] };
/// hashTypedData({ domain, types, primaryType: "TransferWithAuthorization", message });
/// hashDomain({ domain, types: { EIP712Domain: [ {name:"name",type:"string"},
///   {name:"version",type:"string"}, {name:"chainId",type:"uint256"},
///   {name:"verifyingContract",type:"address"} ] } });
/// ```
///
/// with the domains and messages below. The Base and Ethereum domain
/// separators are also the `DOMAIN_SEPARATOR()` of the real USDC contracts.
#[test]
fn digests_match_viem_hash_typed_data() {
    struct Vector {
        chain: Chain,
        name: &'static str,
        auth: Authorization,
        domain_separator: &'static str,
        digest: &'static str,
    }
    let vectors = [
        Vector {
            // domain {name: "USDC", version: "2", chainId: 84532, verifyingContract: 0x036CbD53842c5426634e7929541eC2318f3dCF7e}
            chain: Chain::BaseSepolia,
            name: "USDC",
            auth: Authorization {
                from: addr("0x1111111111111111111111111111111111111111"),
                to: addr("0x2222222222222222222222222222222222222222"),
                value: 125_000,
                valid_after: 0,
                valid_before: 1_795_451_851,
                nonce: [0xab; 32],
            },
            domain_separator: "0x71f17a3b2ff373b803d70a5a07c046c1a2bc8e89c09ef722fcb047abe94c9818",
            digest: "0x896c4ffb4d1de40be8b110ffeb27abfd9bfdbc17b76b1a180cb5f8da69169898",
        },
        Vector {
            // domain {name: "USD Coin", version: "2", chainId: 8453, verifyingContract: 0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913}
            chain: Chain::Base,
            name: "USD Coin",
            auth: Authorization {
                from: addr("0x8ba1f109551bd432803012645ac136ddd64dba72"),
                to: addr("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
                value: u128::MAX,
                valid_after: 1_700_000_000,
                valid_before: 1_700_000_300,
                nonce: [0xff; 32],
            },
            domain_separator: "0x02fa7265e7c5d81118673727957699e4d68f74cd74b7db77da710fe8a2c7834f",
            digest: "0x8e24d43e4296539fb010b8cbee3b8e645798075335651cc69fec79f0bc442a47",
        },
        Vector {
            // domain {name: "USD Coin", version: "2", chainId: 1, verifyingContract: 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48}
            chain: Chain::Ethereum,
            name: "USD Coin",
            auth: Authorization {
                from: [0u8; 20],
                to: addr("0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"),
                value: 1,
                valid_after: 1_699_999_400,
                valid_before: 1_700_086_400,
                nonce: bytes32(
                    "0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                ),
            },
            domain_separator: "0x06c37168a7db5138defc7866392bb87a741f9b3d104deb5094588ce041cae335",
            digest: "0x580440458b8395590490c5493717eb8c88cde357212c4530e06fd4972205d726",
        },
    ];
    for v in vectors {
        let req = requirement(v.chain, v.name, "2");
        assert_eq!(
            format!("0x{}", hex::encode(domain_separator(&req))),
            v.domain_separator,
            "{:?}",
            v.chain
        );
        assert_eq!(
            format!(
                "0x{}",
                hex::encode(transfer_with_authorization_digest(&req, &v.auth))
            ),
            v.digest,
            "{:?}",
            v.chain
        );
    }
}

#[test]
fn digest_depends_on_every_input() {
    let req = requirement(Chain::BaseSepolia, "USDC", "2");
    let auth = Authorization {
        from: addr("0x1111111111111111111111111111111111111111"),
        to: addr("0x2222222222222222222222222222222222222222"),
        value: 125_000,
        valid_after: 0,
        valid_before: 1_795_451_851,
        nonce: [0xab; 32],
    };
    let base = transfer_with_authorization_digest(&req, &auth);
    let mut variants = vec![
        transfer_with_authorization_digest(
            &requirement(Chain::BaseSepolia, "USD Coin", "2"),
            &auth,
        ),
        transfer_with_authorization_digest(&requirement(Chain::BaseSepolia, "USDC", "1"), &auth),
    ];
    let mut other_chain = req.clone();
    other_chain.chain = Chain::Base; // same asset, other chain id
    variants.push(transfer_with_authorization_digest(&other_chain, &auth));
    for change in 0..6 {
        let mut a = auth;
        match change {
            0 => a.from[19] ^= 1,
            1 => a.to[0] ^= 1,
            2 => a.value += 1,
            3 => a.valid_after += 1,
            4 => a.valid_before += 1,
            _ => a.nonce[31] ^= 1,
        }
        variants.push(transfer_with_authorization_digest(&req, &a));
    }
    for v in variants {
        assert_ne!(v, base);
    }
}

/// viem's `privateKeyToAccount("0x4c4c...4c").signTypedData(...)` of the first
/// vector's domain with `from` = that account gave this digest and signature
/// (RFC 6979, so k256 must give the same bytes).
#[test]
fn k256_signature_of_the_digest_matches_viem() {
    let key = SigningKey::from_bytes(&[0x4c; 32].into()).unwrap();
    let from = eth_address(&key);
    assert_eq!(
        checksum_address(&from),
        "0xdB00079cad3e665853Bf766eFe26F4C38cdbdCDA"
    );
    let req = requirement(Chain::BaseSepolia, "USDC", "2");
    let auth = Authorization {
        from,
        to: addr("0x2222222222222222222222222222222222222222"),
        value: 125_000,
        valid_after: 0,
        valid_before: 1_795_451_851,
        nonce: [0xab; 32],
    };
    let digest = transfer_with_authorization_digest(&req, &auth);
    assert_eq!(
        hex::encode(digest),
        "f98d06c6fdc8fc7b81ab0a9dce568ab146bbaed12da83f3d3fca0870bac298e7"
    );
    let signature = sign(&key, &digest);
    assert_eq!(
        format!("0x{}", hex::encode(signature)),
        "0xc8226d26dc3ab0efeb6ee9861a71b58f44006eeedb6780533daf025be01e77563e2feedf064dd91cbfdbf62291be7177877810845da09363ce1d8262aed6c1271c"
    );
}

fn eth_address(key: &SigningKey) -> [u8; 20] {
    use sha3::Digest as _;
    let point = key.verifying_key().to_encoded_point(false);
    let hash = sha3::Keccak256::digest(&point.as_bytes()[1..]);
    hash[12..].try_into().unwrap()
}

fn sign(key: &SigningKey, digest: &[u8; 32]) -> [u8; 65] {
    let (sig, recid) = key.sign_prehash_recoverable(digest).unwrap();
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    out[64] = 27 + recid.to_byte();
    out
}

// ------------------------------------------------------------- shapes

#[test]
fn payload_shape() {
    let auth = Authorization {
        from: addr("0xdb00079cad3e665853bf766efe26f4c38cdbdcda"),
        to: addr("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
        value: 340_282_366_920_938_463_463_374_607_431_768_211_455,
        valid_after: 1_699_999_400,
        valid_before: 1_700_000_300,
        nonce: bytes32("0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eff"),
    };
    let mut signature = [0u8; 65];
    for (i, b) in signature.iter_mut().enumerate() {
        *b = 0xa0u8.wrapping_add(i as u8);
    }
    let payload = exact_evm_payload(&auth, &signature);
    assert_eq!(
        payload,
        json!({
            "signature": format!("0x{}", hex::encode(signature)),
            "authorization": {
                "from": "0xdB00079cad3e665853Bf766eFe26F4C38cdbdCDA",
                "to": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                "value": "340282366920938463463374607431768211455",
                "validAfter": "1699999400",
                "validBefore": "1700000300",
                "nonce": "0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eff"
            }
        })
    );
    let sig = payload["signature"].as_str().unwrap();
    assert_eq!(sig.len(), 132);
    assert_eq!(sig, sig.to_ascii_lowercase());
    // v2: validAfter "0".
    let zero = exact_evm_payload(
        &Authorization {
            valid_after: 0,
            ..auth
        },
        &signature,
    );
    assert_eq!(zero["authorization"]["validAfter"], "0");
}

#[test]
fn typed_data_shape() {
    let req = requirement(Chain::Base, "USD Coin", "2");
    let auth = Authorization {
        from: addr("0x1111111111111111111111111111111111111111"),
        to: addr(PAY_TO),
        value: 1,
        valid_after: 0,
        valid_before: 99,
        nonce: [1; 32],
    };
    let td = transfer_with_authorization_typed_data(&req, &auth);
    assert_eq!(td["primaryType"], "TransferWithAuthorization");
    assert_eq!(
        td["domain"],
        json!({"name": "USD Coin", "version": "2", "chainId": 8453, "verifyingContract": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"})
    );
    assert_eq!(
        td["message"],
        exact_evm_payload(&auth, &[0; 65])["authorization"]
    );
    assert_eq!(
        td["types"]["TransferWithAuthorization"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

fn decode_header(h: &str) -> Value {
    assert_eq!(h.len() % 4, 0, "padded base64");
    assert!(!h.contains('-') && !h.contains('_'), "standard alphabet");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(h)
        .expect("standard base64 with padding");
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn header_shapes() {
    let scheme_payload = json!({"signature": "0x00", "authorization": {"from": "0x1"}});
    let v1 = decode_header(&x402_header(1, &v1_requirement(), &scheme_payload));
    assert_eq!(
        v1,
        json!({"x402Version": 1, "scheme": "exact", "network": "base-sepolia", "payload": scheme_payload})
    );
    let v2 = decode_header(&x402_header(2, &v2_requirement(), &scheme_payload));
    assert_eq!(
        v2,
        json!({"x402Version": 2, "accepted": v2_requirement(), "payload": scheme_payload})
    );
    // Lengths that need padding.
    let padded = (0..3)
        .map(|i| x402_header(2, &json!({"a": "x".repeat(i)}), &json!({})))
        .filter(|h| h.ends_with('='))
        .count();
    assert!(padded >= 1);
}

#[test]
fn module_is_reachable_both_ways() {
    // Re-exports at the crate root and the module path name the same items.
    let r: Result<ExactEvmRequirement, X402Error> =
        purser_chain::parse_exact_evm("2", &v2_requirement(), None);
    assert_eq!(r, x402::parse_exact_evm("2", &v2_requirement(), None));
}
