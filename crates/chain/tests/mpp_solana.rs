//! MPP `solana` (draft-solana-charge-00, intent `charge`): the request catalogue, the
//! fee policy (`feePayer` / `buyerPaysGasFees`), the transaction and the credential.

mod common;

use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
use purser_chain::Chain;
use purser_chain::mpp::solana::charge_instructions;
use purser_chain::payment::{
    BuildContext, BuildError, PayerSigner, PaymentInput, PaymentType, Requirement, Signature,
    ToSign, Unsigned, parse,
};
use purser_chain::x402::exact_svm::{
    Address, COMPUTE_BUDGET_PROGRAM, MEMO_PROGRAM, TOKEN_PROGRAM, address_string,
    associated_token_address, build_transaction_message, parse_address, wire_transaction,
};
use serde_json::{Value, json};

const H: &str = "paymentInput.mpp.wwwAuthenticateHeaders[0]";
const R: &str = "paymentInput.mpp.wwwAuthenticateHeaders[0].request";
const DEVNET_MINT: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
const MAINNET_MINT: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";
const RECIPIENT: &str = "CZ8YUVdk7znjrUmnb5n7kgySk9yRAsQDYmyCxzfSky9t"; // [0xab; 32]
const FEE_PAYER: &str = "4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi"; // [1; 32]
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn addr(s: &str) -> Address {
    parse_address(s).unwrap()
}

fn request() -> Value {
    json!({
        "amount": "125000",
        "currency": DEVNET_MINT,
        "recipient": RECIPIENT,
        "methodDetails": {
            "network": "devnet",
            "decimals": 6,
            "tokenProgram": TOKEN_PROGRAM,
            "feePayer": true,
            "feePayerKey": FEE_PAYER,
        },
    })
}

fn header(request: &Value) -> String {
    format!(
        "Payment id=\"ch_sol\", realm=\"api.example.com\", method=\"solana\", intent=\"charge\", request=\"{}\", expires=\"2030-01-01T00:00:00Z\"",
        B64URL.encode(request.to_string())
    )
}

fn input(request: &Value, buyer_pays_gas_fees: Option<bool>) -> PaymentInput {
    PaymentInput::Mpp {
        version: "1".into(),
        www_authenticate_headers: vec![header(request)],
        buyer_pays_gas_fees,
    }
}

fn read(request: &Value, buyer_pays_gas_fees: Option<bool>) -> Requirement {
    parse(&input(request, buyer_pays_gas_fees)).unwrap()
}

struct NoSigner;

#[async_trait::async_trait]
impl PayerSigner for NoSigner {
    async fn sign(&self, _what: &ToSign) -> Result<Signature, BuildError> {
        panic!("a solana charge signs nothing during build");
    }
}

#[test]
fn a_sponsored_devnet_challenge_is_read_with_what_it_pays_and_debits() {
    let r = read(&request(), None);
    assert_eq!(r.payment_type, PaymentType::Mpp);
    assert_eq!(r.version, "1");
    assert_eq!(r.scheme, "solana");
    assert_eq!(r.chain, Chain::SolanaDevnet);
    assert_eq!(r.network, "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1");
    assert_eq!(r.payee, RECIPIENT);
    assert_eq!(r.asset, DEVNET_MINT);
    assert_eq!((r.amount, r.debit), (125_000, 125_000));
    assert_eq!(r.amount_field, format!("{R}.amount"));
    // buyerPaysGasFees changes nothing when the merchant sponsors the fee.
    assert_eq!(read(&request(), Some(true)).chain, Chain::SolanaDevnet);
    assert_eq!(read(&request(), Some(false)).chain, Chain::SolanaDevnet);
}

#[test]
fn the_network_defaults_to_mainnet() {
    let mut req = request();
    req["currency"] = json!(MAINNET_MINT);
    req["methodDetails"]
        .as_object_mut()
        .unwrap()
        .remove("network");
    assert_eq!(read(&req, None).chain, Chain::Solana);
    req["methodDetails"]["network"] = json!("mainnet-beta");
    assert_eq!(read(&req, None).chain, Chain::Solana);
    req["methodDetails"]["network"] = json!("mainnet");
    assert_eq!(
        read(&req, None).network,
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
    );
}

#[test]
fn every_bad_request_is_refused_naming_the_member() {
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, Option<bool>, String, &str)> = vec![
        (
            Box::new(|r| r["methodDetails"] = json!("devnet")),
            None,
            format!("{R}.methodDetails"),
            "must be an object",
        ),
        (
            Box::new(|r| r["methodDetails"]["network"] = json!("testnet")),
            None,
            format!("{R}.methodDetails.network"),
            "\"mainnet\" (SOLANA) or \"devnet\" (SOLANA_DEVNET)",
        ),
        (
            Box::new(|r| r["methodDetails"]["network"] = json!("localnet")),
            None,
            format!("{R}.methodDetails.network"),
            "got \"localnet\"",
        ),
        (
            Box::new(|r| r["amount"] = json!("0")),
            None,
            format!("{R}.amount"),
            "greater than 0",
        ),
        (
            Box::new(|r| r["amount"] = json!("1.5")),
            None,
            format!("{R}.amount"),
            "decimal string",
        ),
        (
            Box::new(|r| r["amount"] = json!(125000)),
            None,
            format!("{R}.amount"),
            "is required (a string)",
        ),
        (
            Box::new(|r| r["amount"] = json!("18446744073709551616")),
            None,
            format!("{R}.amount"),
            "too large",
        ),
        (
            Box::new(|r| r["currency"] = json!("sol")),
            None,
            format!("{R}.currency"),
            "native SOL",
        ),
        (
            Box::new(|r| r["currency"] = json!(MAINNET_MINT)),
            None,
            format!("{R}.currency"),
            "not the USDC mint of SOLANA_DEVNET",
        ),
        (
            Box::new(|r| {
                r.as_object_mut().unwrap().remove("currency");
            }),
            None,
            format!("{R}.currency"),
            "is required",
        ),
        (
            Box::new(|r| r["recipient"] = json!("0x742d35Cc6634c0532925a3b844bC9e7595F8fE00")),
            None,
            format!("{R}.recipient"),
            "not a Solana address",
        ),
        (
            Box::new(|r| {
                r.as_object_mut().unwrap().remove("recipient");
            }),
            None,
            format!("{R}.recipient"),
            "is required",
        ),
        (
            Box::new(|r| r["methodDetails"]["decimals"] = json!(9)),
            None,
            format!("{R}.methodDetails.decimals"),
            "must be 6",
        ),
        (
            Box::new(|r| {
                r["methodDetails"]["tokenProgram"] =
                    json!("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
            }),
            None,
            format!("{R}.methodDetails.tokenProgram"),
            "SPL Token program",
        ),
        (
            Box::new(|r| {
                r["methodDetails"]["splits"] = json!([{"recipient": FEE_PAYER, "amount": "1"}])
            }),
            None,
            format!("{R}.methodDetails.splits"),
            "not supported",
        ),
        (
            Box::new(|r| r["methodDetails"]["confidential"] = json!(true)),
            None,
            format!("{R}.methodDetails.confidential"),
            "not supported",
        ),
        (
            Box::new(|r| r["methodDetails"]["feePayer"] = json!("yes")),
            None,
            format!("{R}.methodDetails.feePayer"),
            "must be a boolean",
        ),
        (
            Box::new(|r| {
                r["methodDetails"]
                    .as_object_mut()
                    .unwrap()
                    .remove("feePayerKey");
            }),
            None,
            format!("{R}.methodDetails.feePayerKey"),
            "is required",
        ),
        (
            Box::new(|r| r["methodDetails"]["feePayerKey"] = json!("not-base58-0OIl")),
            None,
            format!("{R}.methodDetails.feePayerKey"),
            "not a Solana address",
        ),
        (
            Box::new(|r| r["methodDetails"]["feePayer"] = json!(false)),
            Some(true),
            format!("{R}.methodDetails.feePayerKey"),
            "must be absent unless methodDetails.feePayer is true",
        ),
        (
            Box::new(|r| {
                let d = r["methodDetails"].as_object_mut().unwrap();
                d.remove("feePayer");
                d.remove("feePayerKey");
            }),
            None,
            "paymentInput.mpp.buyerPaysGasFees".into(),
            "does not sponsor the Solana transaction fee",
        ),
        (
            Box::new(|r| {
                r["methodDetails"]["feePayer"] = json!(false);
                r["methodDetails"]
                    .as_object_mut()
                    .unwrap()
                    .remove("feePayerKey");
            }),
            Some(false),
            "paymentInput.mpp.buyerPaysGasFees".into(),
            "set paymentInput.mpp.buyerPaysGasFees to true",
        ),
        (
            Box::new(|r| r["methodDetails"]["recentBlockhash"] = json!("abc")),
            None,
            format!("{R}.methodDetails.recentBlockhash"),
            "must be a blockhash (base58 of 32 bytes)",
        ),
        (
            Box::new(|r| r["externalId"] = json!("x".repeat(567))),
            None,
            format!("{R}.externalId"),
            "at most 566 bytes",
        ),
        (
            Box::new(|r| r["externalId"] = json!(7)),
            None,
            format!("{R}.externalId"),
            "must be a string",
        ),
    ];
    for (edit, buyer_pays, field, fragment) in cases {
        let mut req = request();
        edit(&mut req);
        let e = parse(&input(&req, buyer_pays)).unwrap_err();
        assert_eq!(e.field, field, "{req}: {}", e.message);
        assert!(e.message.contains(fragment), "{req}: {}", e.message);
        assert!(e.message.contains(&field), "{}", e.message);
    }
    // An intent other than charge is refused before the method.
    let h = header(&request()).replace("intent=\"charge\"", "intent=\"session\"");
    let e = parse(&PaymentInput::Mpp {
        version: "1".into(),
        www_authenticate_headers: vec![h],
        buyer_pays_gas_fees: None,
    })
    .unwrap_err();
    assert_eq!(e.field, format!("{H}.intent"));
}

fn context<'a>(
    payer: &'a str,
    reader: &'a purser_chain::BalanceReader,
    now: u64,
) -> BuildContext<'a> {
    BuildContext {
        payer,
        now,
        chains: reader,
        signer: &NoSigner,
    }
}

fn credential_body(out: &Value) -> Value {
    let cred = out["paymentCredential"].as_str().unwrap();
    let b64 = cred.strip_prefix("Payment ").unwrap();
    serde_json::from_slice(&B64URL.decode(b64).unwrap()).unwrap()
}

fn sign(unsigned: &dyn Unsigned, key: &SigningKey) -> (Vec<u8>, [u8; 64], Value) {
    let ToSign::SolanaMessage { message } = unsigned.to_sign() else {
        panic!("a Solana message")
    };
    let sig = key.sign(&message).to_bytes();
    assert_eq!(unsigned.finish(&Signature::Secp256k1([0u8; 65])), None);
    let out = unsigned.finish(&Signature::Ed25519(sig)).unwrap();
    (message, sig, out)
}

#[tokio::test]
async fn sponsored_build_reads_the_blockhash_and_leaves_the_fee_payer_slot_empty() {
    let blockhash = [77u8; 32];
    let rpc = common::mock_result(json!({
        "context": {"slot": 1},
        "value": {"blockhash": bs58::encode(blockhash).into_string(), "lastValidBlockHeight": 9}
    }))
    .await;
    let reader = common::reader_for(Chain::SolanaDevnet, &rpc.url, Duration::from_secs(5));
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let payer_addr = key.verifying_key().to_bytes();
    let payer = address_string(&payer_addr);
    let r = read(&request(), None);
    let unsigned = r
        .kind
        .build(&context(&payer, &reader, 1_800_000_000))
        .await
        .unwrap();
    assert_eq!(rpc.requests().len(), 1);
    assert_eq!(rpc.requests()[0]["method"], "getLatestBlockhash");
    let (message, sig, out) = sign(unsigned.as_ref(), &key);
    // The message is exactly the reference client's instructions compiled.
    let expected = build_transaction_message(
        &addr(FEE_PAYER),
        &blockhash,
        &charge_instructions(
            &payer_addr,
            &addr(RECIPIENT),
            &addr(DEVNET_MINT),
            125_000,
            None,
        ),
    );
    assert_eq!(message, expected.bytes);

    assert_eq!(out["selectedPaymentId"], "ch_sol");
    let body = credential_body(&out);
    assert_eq!(
        body["challenge"],
        json!({
            "id": "ch_sol", "realm": "api.example.com", "method": "solana", "intent": "charge",
            "request": B64URL.encode(request().to_string()), "expires": "2030-01-01T00:00:00Z",
        })
    );
    assert_eq!(
        body["source"],
        format!("did:pkh:solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1:{payer}")
    );
    assert_eq!(body["payload"]["type"], "transaction");
    assert_eq!(body["payload"].as_object().unwrap().len(), 2);
    let wire = base64::engine::general_purpose::STANDARD
        .decode(body["payload"]["transaction"].as_str().unwrap())
        .unwrap();
    assert_eq!(wire[0], 2, "two signers: the fee payer, then the payer");
    assert_eq!(&wire[1..65], &[0u8; 64], "the fee payer's slot is empty");
    assert_eq!(&wire[65..129], &sig);
    assert_eq!(&wire[129..], &message[..]);
    assert_eq!(&wire[129 + 5..129 + 37], &addr(FEE_PAYER));
    assert_eq!(&wire[129 + 37..129 + 69], &payer_addr);
    key.verifying_key()
        .verify(&message, &ed25519_dalek::Signature::from_bytes(&sig))
        .unwrap();
}

#[test]
fn the_instructions_are_the_reference_clients() {
    let payer = [3u8; 32];
    let ixs = charge_instructions(
        &payer,
        &addr(RECIPIENT),
        &addr(DEVNET_MINT),
        125_000,
        Some("order-7"),
    );
    assert_eq!(ixs.len(), 4);
    assert_eq!(ixs[0].program, addr(COMPUTE_BUDGET_PROGRAM));
    assert_eq!(ixs[0].data, [&[3u8][..], &1u64.to_le_bytes()].concat());
    assert_eq!(ixs[1].program, addr(COMPUTE_BUDGET_PROGRAM));
    assert_eq!(
        ixs[1].data,
        [&[2u8][..], &200_000u32.to_le_bytes()].concat()
    );
    assert_eq!(ixs[2].program, addr(TOKEN_PROGRAM));
    assert_eq!(
        ixs[2].data,
        [&[12u8][..], &125_000u64.to_le_bytes(), &[6u8]].concat()
    );
    assert_eq!(
        ixs[2].accounts,
        vec![
            (
                associated_token_address(&payer, &addr(DEVNET_MINT)),
                false,
                true
            ),
            (addr(DEVNET_MINT), false, false),
            (
                associated_token_address(&addr(RECIPIENT), &addr(DEVNET_MINT)),
                false,
                true
            ),
            (payer, true, false),
        ]
    );
    assert_eq!(ixs[3].program, addr(MEMO_PROGRAM));
    assert_eq!(ixs[3].data, b"order-7");
    assert_eq!(
        charge_instructions(&payer, &addr(RECIPIENT), &addr(DEVNET_MINT), 1, None).len(),
        3,
        "no memo without externalId"
    );
}

#[tokio::test]
async fn the_payer_pays_the_fee_only_with_buyer_pays_gas_fees() {
    // No RPC: the challenge's recentBlockhash is the lifetime.
    let reader = common::reader_for(
        Chain::Solana,
        &common::closed_port_url(),
        Duration::from_secs(5),
    );
    let blockhash = [9u8; 32];
    let mut req = request();
    req["currency"] = json!(MAINNET_MINT);
    req["externalId"] = json!("order-7");
    req["methodDetails"] = json!({
        "network": "mainnet",
        "decimals": 6,
        "recentBlockhash": bs58::encode(blockhash).into_string(),
    });
    let r = read(&req, Some(true));
    assert_eq!(r.chain, Chain::Solana);
    let key = SigningKey::from_bytes(&[4u8; 32]);
    let payer_addr = key.verifying_key().to_bytes();
    let payer = address_string(&payer_addr);
    let unsigned = r.kind.build(&context(&payer, &reader, 0)).await.unwrap();
    let (message, sig, out) = sign(unsigned.as_ref(), &key);
    let expected = build_transaction_message(
        &payer_addr,
        &blockhash,
        &charge_instructions(
            &payer_addr,
            &addr(RECIPIENT),
            &addr(MAINNET_MINT),
            125_000,
            Some("order-7"),
        ),
    );
    assert_eq!(message, expected.bytes);
    let body = credential_body(&out);
    let wire = base64::engine::general_purpose::STANDARD
        .decode(body["payload"]["transaction"].as_str().unwrap())
        .unwrap();
    assert_eq!(wire, wire_transaction(&expected, &[(payer_addr, sig)]));
    assert_eq!(wire[0], 1, "the payer is the only signer");
    assert_eq!(&wire[1..65], &sig, "fully signed");
    assert_eq!(
        body["source"],
        format!("did:pkh:solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:{payer}")
    );
}

#[tokio::test]
async fn build_refuses_expired_challenges_the_fee_payer_as_payer_and_evm_wallets_before_any_rpc() {
    let rpc = common::mock_result(json!(null)).await;
    let reader = common::reader_for(Chain::SolanaDevnet, &rpc.url, Duration::from_secs(5));
    let r = read(&request(), None);
    let payer = address_string(&[3u8; 32]);
    for (payer, now, field) in [
        (FEE_PAYER, 0, format!("{R}.methodDetails.feePayerKey")),
        (
            "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
            0,
            "paymentInstrumentId".to_string(),
        ),
        (payer.as_str(), 1_893_456_000, format!("{H}.expires")),
    ] {
        match r.kind.build(&context(payer, &reader, now)).await {
            Err(BuildError::Input(e)) => assert_eq!(e.field, field, "{}", e.message),
            other => panic!("{payer}: {other:?}"),
        }
    }
    assert!(rpc.requests().is_empty());
}

#[tokio::test]
async fn build_fails_when_the_rpc_does_not_answer() {
    let reader = common::reader_for(
        Chain::SolanaDevnet,
        &common::closed_port_url(),
        Duration::from_secs(5),
    );
    let r = read(&request(), None);
    let payer = address_string(&[3u8; 32]);
    match r.kind.build(&context(&payer, &reader, 0)).await {
        Err(BuildError::Chain(e)) => assert!(e.message().contains("SOLANA_DEVNET"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// What the reference client (`@solana/mpp` 0.6.0 `buildChargeTransaction` on
/// `@solana/kit` 8.4.0) returns for key [0x11; 32] paying 125000 devnet USDC to
/// RECIPIENT, fee payer uY46ibBrA5pEsx4z8iiQ6BpNeBuMR6weo4u2ubREB9q, recentBlockhash
/// [5; 32], externalId "order-7".
const REFERENCE_TX: &str = "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACwMSEFv2g+3JBx44fJKMFONk/g6Qbzkvr3XaGmOOSPSgwo/OGlh5zKaG6cMRTtsAPczhiFxq8WN4qLH9G31jkIgAIBBAgNdVB1TggApdI37vWCYDV2a5s+WhWGipQKsomVh4jjsNBKsjJ0K7SrOhNovUYV5ObQIkq3GgFrr4UgozLJd4c3LJZwUp6SqEIBGTnMEffMlzu14YuywaJ72NuH2QuzY+v1eyWkSAXpELL8flgSsCFvr5brwD38EPdxkuw9LCs50jtELLORIVfxOpM9ATQoLQMrX/7NAaLb8bd5BgjfAC6nAwZGb+UhFzL/7K26csOb57yM5bvF9xJrLEObOkAAAAAFSlNamSkhBk0k6HFg2jh8fDW13bySu4HkH6hAQQVEjQbd9uHXZaGT2cvhRs7reawctIXtX1s3kTqM9YV+/wCpBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUEBQAJAwEAAAAAAAAABQAFAkANAwAHBAIEAwEKDEjoAQAAAAAABgYAB29yZGVyLTcA";

#[test]
fn same_transaction_as_the_reference_client() {
    let key = SigningKey::from_bytes(&[0x11u8; 32]);
    let payer: Address = key.verifying_key().to_bytes();
    let msg = build_transaction_message(
        &addr("uY46ibBrA5pEsx4z8iiQ6BpNeBuMR6weo4u2ubREB9q"),
        &[5u8; 32],
        &charge_instructions(
            &payer,
            &addr(RECIPIENT),
            &addr(DEVNET_MINT),
            125_000,
            Some("order-7"),
        ),
    );
    let sig = key.sign(&msg.bytes).to_bytes();
    let reference = base64::engine::general_purpose::STANDARD
        .decode(REFERENCE_TX)
        .unwrap();
    assert_eq!(wire_transaction(&msg, &[(payer, sig)]), reference);
}
