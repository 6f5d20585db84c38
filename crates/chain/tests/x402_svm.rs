//! x402 `exact` on Solana: the validation catalogue, associated token account
//! derivation against the reference (`@solana-program/token` `findAssociatedTokenPda`)
//! and the v0 message layout.

mod common;

use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
use purser_chain::Chain;
use purser_chain::payment::{
    BuildContext, BuildError, PayerSigner, PaymentInput, PaymentType, Signature, ToSign, parse,
};
use purser_chain::x402::X402Error;
use purser_chain::x402::exact_svm::{
    ASSOCIATED_TOKEN_PROGRAM, Address, COMPUTE_BUDGET_PROGRAM, MEMO_PROGRAM, TOKEN_PROGRAM,
    address_string, associated_token_address, build_transaction_message, find_program_address,
    parse_address, parse_exact_svm, payment_instructions, wire_transaction,
};
use serde_json::{Value, json};

const P: &str = "paymentInput.cryptoX402.payload";
const DEVNET_MINT: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
const MAINNET_MINT: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";
const PAY_TO: &str = "CZ8YUVdk7znjrUmnb5n7kgySk9yRAsQDYmyCxzfSky9t"; // [0xab; 32]
const FEE_PAYER: &str = "4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi"; // [1; 32]

fn v2() -> Value {
    json!({
        "scheme": "exact",
        "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
        "amount": "125000",
        "asset": DEVNET_MINT,
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "extra": {"feePayer": FEE_PAYER},
    })
}

fn v1() -> Value {
    let mut r = v2();
    r["network"] = json!("solana-devnet");
    let o = r.as_object_mut().unwrap();
    o.remove("amount");
    o.insert("maxAmountRequired".into(), json!("125000"));
    r
}

fn with(mut r: Value, key: &str, v: Value) -> Value {
    r[key] = v;
    r
}

fn without(mut r: Value, key: &str) -> Value {
    r.as_object_mut().unwrap().remove(key);
    r
}

fn err(version: &str, r: &Value) -> X402Error {
    parse_exact_svm(version, r, None).unwrap_err()
}

fn routed(version: &str, r: &Value, limit: Option<&str>) -> Result<(), X402Error> {
    parse(&PaymentInput::X402 {
        version: version.into(),
        payload: r.clone(),
        permit2_allowance_limit: limit.map(str::to_string),
    })
    .map(|_| ())
}

#[track_caller]
fn assert_field(e: &X402Error, field: &str) {
    assert_eq!(e.field, field, "{}", e.message);
    assert!(e.message.contains(field), "{}", e.message);
}

#[test]
fn accepts_every_spelling_in_both_versions() {
    for (network, chain, mint) in [
        ("solana", Chain::Solana, MAINNET_MINT),
        (
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
            Chain::Solana,
            MAINNET_MINT,
        ),
        ("solana-devnet", Chain::SolanaDevnet, DEVNET_MINT),
        (
            "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
            Chain::SolanaDevnet,
            DEVNET_MINT,
        ),
    ] {
        for (version, base) in [("1", v1()), ("2", v2())] {
            let r = with(with(base, "network", json!(network)), "asset", json!(mint));
            let req = parse_exact_svm(version, &r, None).unwrap();
            assert_eq!(req.chain, chain);
            assert_eq!(req.amount, 125_000);
            assert_eq!(address_string(&req.pay_to), PAY_TO);
            assert_eq!(address_string(&req.fee_payer), FEE_PAYER);
            // Routed through the one entry point, as the core calls it.
            let routed = parse(&PaymentInput::X402 {
                version: version.into(),
                payload: r.clone(),
                permit2_allowance_limit: None,
            })
            .unwrap();
            assert_eq!(routed.payment_type, PaymentType::CryptoX402);
            assert_eq!(routed.chain, chain);
            assert_eq!(routed.debit, 125_000);
            assert_eq!(routed.asset, mint);
            assert_eq!(routed.payee, PAY_TO);
            let member = if version == "1" {
                "maxAmountRequired"
            } else {
                "amount"
            };
            assert_eq!(routed.amount_field, format!("{P}.{member}"));
        }
    }
}

#[test]
fn catalogue() {
    let cases: Vec<(&str, Value, String)> = vec![
        (
            "amount zero",
            with(v2(), "amount", json!("0")),
            format!("{P}.amount"),
        ),
        (
            "amount negative",
            with(v2(), "amount", json!("-1")),
            format!("{P}.amount"),
        ),
        (
            "amount decimal",
            with(v2(), "amount", json!("1.5")),
            format!("{P}.amount"),
        ),
        (
            "amount number",
            with(v2(), "amount", json!(125000)),
            format!("{P}.amount"),
        ),
        (
            "amount missing",
            without(v2(), "amount"),
            format!("{P}.amount"),
        ),
        (
            "amount above u64",
            with(v2(), "amount", json!("18446744073709551616")),
            format!("{P}.amount"),
        ),
        (
            "asset other chain",
            with(v2(), "asset", json!(MAINNET_MINT)),
            format!("{P}.asset"),
        ),
        (
            "asset evm usdc",
            with(
                v2(),
                "asset",
                json!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
            ),
            format!("{P}.asset"),
        ),
        (
            "asset wrong case",
            with(v2(), "asset", json!(DEVNET_MINT.to_lowercase())),
            format!("{P}.asset"),
        ),
        (
            "asset missing",
            without(v2(), "asset"),
            format!("{P}.asset"),
        ),
        (
            "payTo missing",
            without(v2(), "payTo"),
            format!("{P}.payTo"),
        ),
        (
            "payTo evm",
            with(
                v2(),
                "payTo",
                json!("0x1111111111111111111111111111111111111111"),
            ),
            format!("{P}.payTo"),
        ),
        (
            "payTo short",
            with(v2(), "payTo", json!(bs58::encode([9u8; 31]).into_string())),
            format!("{P}.payTo"),
        ),
        (
            "payTo long",
            with(v2(), "payTo", json!(bs58::encode([9u8; 33]).into_string())),
            format!("{P}.payTo"),
        ),
        (
            "payTo not base58",
            with(v2(), "payTo", json!("0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl")),
            format!("{P}.payTo"),
        ),
        (
            "payTo number",
            with(v2(), "payTo", json!(5)),
            format!("{P}.payTo"),
        ),
        (
            "timeout zero",
            with(v2(), "maxTimeoutSeconds", json!(0)),
            format!("{P}.maxTimeoutSeconds"),
        ),
        (
            "timeout negative",
            with(v2(), "maxTimeoutSeconds", json!(-5)),
            format!("{P}.maxTimeoutSeconds"),
        ),
        (
            "timeout missing",
            without(v2(), "maxTimeoutSeconds"),
            format!("{P}.maxTimeoutSeconds"),
        ),
        (
            "extra missing",
            without(v2(), "extra"),
            format!("{P}.extra.feePayer"),
        ),
        (
            "extra not object",
            with(v2(), "extra", json!("x")),
            format!("{P}.extra"),
        ),
        (
            "feePayer missing",
            with(v2(), "extra", json!({})),
            format!("{P}.extra.feePayer"),
        ),
        (
            "feePayer bad",
            with(v2(), "extra", json!({"feePayer": "0x1234"})),
            format!("{P}.extra.feePayer"),
        ),
        (
            "feePayer number",
            with(v2(), "extra", json!({"feePayer": 1})),
            format!("{P}.extra.feePayer"),
        ),
        (
            "memo too long",
            with(
                v2(),
                "extra",
                json!({"feePayer": FEE_PAYER, "memo": "m".repeat(257)}),
            ),
            format!("{P}.extra.memo"),
        ),
        (
            "memo not string",
            with(v2(), "extra", json!({"feePayer": FEE_PAYER, "memo": 7})),
            format!("{P}.extra.memo"),
        ),
    ];
    for (name, r, field) in &cases {
        let e = err("2", r);
        assert_eq!(&e.field, field, "{name}: {}", e.message);
        assert!(e.message.contains(field.as_str()), "{name}: {}", e.message);
        // The same error through the entry point the core uses.
        let e2 = routed("2", r, None).unwrap_err();
        assert_eq!(e2, e, "{name}");
    }
    // v1 spelling of the amount.
    for bad in ["0", "-1", "abc"] {
        assert_field(
            &err("1", &with(v1(), "maxAmountRequired", json!(bad))),
            &format!("{P}.maxAmountRequired"),
        );
    }
    // version
    assert_field(&err("3", &v2()), "paymentInput.cryptoX402.version");
    assert_field(
        &routed("3", &v2(), None).unwrap_err(),
        "paymentInput.cryptoX402.version",
    );
    // permit2AllowanceLimit: upto only.
    for version in ["1", "2"] {
        let r = if version == "1" { v1() } else { v2() };
        let e = parse_exact_svm(version, &r, Some("1000000")).unwrap_err();
        assert_field(&e, "paymentInput.cryptoX402.permit2AllowanceLimit");
        assert!(e.message.contains("upto"), "{}", e.message);
        let e = routed(version, &r, Some("1000000")).unwrap_err();
        assert_field(&e, "paymentInput.cryptoX402.permit2AllowanceLimit");
    }
    // An upto requirement on Solana is refused by the scheme (upto is EVM only).
    let e = routed("2", &with(v2(), "scheme", json!("upto")), None).unwrap_err();
    assert_field(&e, &format!("{P}.scheme"));
    // parse_exact_svm refuses EVM networks and other schemes.
    assert_field(
        &err("2", &with(v2(), "network", json!("eip155:84532"))),
        &format!("{P}.network"),
    );
    assert_field(
        &err("2", &with(v2(), "scheme", json!("upto"))),
        &format!("{P}.scheme"),
    );
    // A memo at the limit is fine.
    parse_exact_svm(
        "2",
        &with(
            v2(),
            "extra",
            json!({"feePayer": FEE_PAYER, "memo": "m".repeat(256)}),
        ),
        None,
    )
    .unwrap();
}

fn addr(s: &str) -> Address {
    parse_address(s).unwrap()
}

#[test]
fn associated_token_accounts_match_the_reference() {
    // From @solana-program/token 0.9 findAssociatedTokenPda (TOKEN_PROGRAM_ADDRESS).
    let vectors = [
        (
            FEE_PAYER,
            MAINNET_MINT,
            "Gs6NxmndAL3PULGZeYUHCknpMdDVbL46eFCBh856p5z6",
            255,
        ),
        (
            PAY_TO,
            MAINNET_MINT,
            "7sTYWFdbEAkqgD7TaLGz1PBeGWioHbqNAvVadGKZn8XN",
            255,
        ),
        (
            "1thX6LZfHDZZKUs92febYZhYRcXddmzfzF2NvTkPNE",
            MAINNET_MINT,
            "jo9HaDyo4LWxPsTMQniWP68BtQepHJTqxc3nk7fZUwn",
            255,
        ),
        (
            FEE_PAYER,
            DEVNET_MINT,
            "8n9SVoKx3Jtqdwm5Dx3wR3hVQPMgyNJPfJzXcntq2N7R",
            255,
        ),
        (
            PAY_TO,
            DEVNET_MINT,
            "HXFoGrWbDvridMY2tL7GWVJ1ryuVGQyyZQRajt8xvWbs",
            255,
        ),
        (
            "k7FaK87WHGVXzkaoHb7CdVPgkKDQhZ29VLDeBVbDfYn",
            DEVNET_MINT,
            "GtyYoj5HFGJmvdqifFmr77sbnFKMpx7Wo5XZzKijSpSX",
            253,
        ),
        (
            "25hjHpTATmkdET17ynDhf1MCuYNDn1z7wXfVw5iaxLAK",
            DEVNET_MINT,
            "GRR5gpMREPi8onPgmyZPnnX1Qya8yxXTrsZuHfdgjAW",
            251,
        ),
    ];
    for (owner, mint, ata, bump) in vectors {
        let (o, m) = (addr(owner), addr(mint));
        assert_eq!(
            address_string(&associated_token_address(&o, &m)),
            ata,
            "{owner}"
        );
        let (pda, b) = find_program_address(
            &[&o, &addr(TOKEN_PROGRAM), &m],
            &addr(ASSOCIATED_TOKEN_PROGRAM),
        )
        .unwrap();
        assert_eq!((address_string(&pda), b), (ata.to_string(), bump));
    }
}

/// Reads a compact-u16.
fn compact(b: &[u8], at: &mut usize) -> usize {
    let mut v = 0usize;
    let mut shift = 0;
    loop {
        let byte = b[*at];
        *at += 1;
        v |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

#[test]
fn message_layout() {
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let payer: Address = key.verifying_key().to_bytes();
    let (fee_payer, pay_to, mint) = (addr(FEE_PAYER), addr(PAY_TO), addr(DEVNET_MINT));
    let blockhash = [5u8; 32];
    let ixs = payment_instructions(
        &payer,
        &pay_to,
        &mint,
        125_000,
        b"0123456789abcdef0123456789abcdef",
    );
    let msg = build_transaction_message(&fee_payer, &blockhash, &ixs);
    let b = &msg.bytes;

    assert_eq!(b[0], 0x80, "v0 prefix");
    assert_eq!(
        &b[1..4],
        &[2, 1, 4],
        "2 signers (1 read-only), 4 read-only unsigned"
    );
    let mut at = 4;
    let n = compact(b, &mut at);
    assert_eq!(n, 8);
    let keys: Vec<Address> = (0..n)
        .map(|i| b[at + 32 * i..at + 32 * (i + 1)].try_into().unwrap())
        .collect();
    at += 32 * n;
    let src = associated_token_address(&payer, &mint);
    let dst = associated_token_address(&pay_to, &mint);
    assert_eq!(keys[0], fee_payer);
    assert_eq!(keys[1], payer);
    // writable non-signers: the two token accounts; read-only: mint and 3 programs.
    let mut writable = vec![keys[2], keys[3]];
    writable.sort();
    let mut expected = vec![src, dst];
    expected.sort();
    assert_eq!(writable, expected);
    let mut readonly: Vec<Address> = keys[4..].to_vec();
    readonly.sort();
    let mut expected = vec![
        mint,
        addr(COMPUTE_BUDGET_PROGRAM),
        addr(TOKEN_PROGRAM),
        addr(MEMO_PROGRAM),
    ];
    expected.sort();
    assert_eq!(readonly, expected);
    assert_eq!(&b[at..at + 32], &blockhash);
    at += 32;
    assert_eq!(compact(b, &mut at), 4);
    let idx = |a: &Address| keys.iter().position(|k| k == a).unwrap() as u8;
    let mut ix = |program: &Address, accounts: &[Address], data: &[u8]| {
        assert_eq!(b[at], idx(program));
        at += 1;
        assert_eq!(compact(b, &mut at), accounts.len());
        for a in accounts {
            assert_eq!(b[at], idx(a));
            at += 1;
        }
        assert_eq!(compact(b, &mut at), data.len());
        assert_eq!(&b[at..at + data.len()], data);
        at += data.len();
    };
    let cb = addr(COMPUTE_BUDGET_PROGRAM);
    ix(&cb, &[], &[2, 0x20, 0x4e, 0, 0]); // SetComputeUnitLimit(20_000)
    ix(&cb, &[], &[3, 1, 0, 0, 0, 0, 0, 0, 0]); // SetComputeUnitPrice(1)
    let mut transfer = vec![12u8];
    transfer.extend_from_slice(&125_000u64.to_le_bytes());
    transfer.push(6);
    ix(&addr(TOKEN_PROGRAM), &[src, mint, dst, payer], &transfer);
    ix(
        &addr(MEMO_PROGRAM),
        &[],
        b"0123456789abcdef0123456789abcdef",
    );
    assert_eq!(compact(b, &mut at), 0, "no lookup tables");
    assert_eq!(at, b.len());

    // The wire transaction: 2 slots, the fee payer's zeroed, the payer's signature valid.
    let sig = key.sign(b).to_bytes();
    let wire = wire_transaction(&msg, &[(payer, sig)]);
    assert_eq!(wire[0], 2);
    assert_eq!(&wire[1..65], &[0u8; 64]);
    assert_eq!(&wire[65..129], &sig);
    assert_eq!(&wire[129..], &b[..]);
    key.verifying_key()
        .verify(&wire[129..], &ed25519_dalek::Signature::from_bytes(&sig))
        .unwrap();
    let _ = base64::engine::general_purpose::STANDARD.encode(&wire);
}

#[test]
fn account_order_follows_kit() {
    // Within a role group, @solana/kit sorts base58 strings case-insensitively (digits
    // first), lower case first on a tie. "ATokenGP.." < "ComputeBudget.." < "Memo.." <
    // "Tokenkeg.." and "4zMMC.." before letters.
    let ixs = payment_instructions(
        &addr("k7FaK87WHGVXzkaoHb7CdVPgkKDQhZ29VLDeBVbDfYn"),
        &addr(PAY_TO),
        &addr(DEVNET_MINT),
        1,
        b"m",
    );
    let msg = build_transaction_message(&addr(FEE_PAYER), &[0u8; 32], &ixs);
    let keys: Vec<String> = (0..8)
        .map(|i| {
            let k: Address = msg.bytes[5 + 32 * i..5 + 32 * (i + 1)].try_into().unwrap();
            address_string(&k)
        })
        .collect();
    assert_eq!(
        &keys[4..],
        &[
            DEVNET_MINT,
            COMPUTE_BUDGET_PROGRAM,
            MEMO_PROGRAM,
            TOKEN_PROGRAM
        ]
    );
    let lower = |s: &str| s.to_ascii_lowercase();
    assert!(lower(&keys[2]) < lower(&keys[3]), "{keys:?}");
}

/// The wire transaction the reference client (`@x402/svm` 2.27.0 `exact/client`
/// `ExactSvmScheme.createPaymentPayload(2, ...)`, run by tests/chain/svm_facilitator.mjs
/// `client`) built for: payer = the ed25519 key of seed [0x11; 32], fee payer = svm.mjs's
/// test key, payTo CZ8Y.., 125000 of devnet USDC, extra.memo "purser-fixed-memo",
/// extra.recentBlockhash = base58([5; 32]). ed25519 signatures are deterministic, so
/// Purser's transaction must equal it byte for byte.
const REFERENCE_TX: &str = "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACnZSmVL00oKqKCHqHgnCx0GNWAn68L5Cjun9f4EtYuE31fUk5oYuuRsUsGgYxXJ7CkVa25ZoewSwEQTl63lboCgAIBBAgNdVB1TggApdI37vWCYDV2a5s+WhWGipQKsomVh4jjsNBKsjJ0K7SrOhNovUYV5ObQIkq3GgFrr4UgozLJd4c3LJZwUp6SqEIBGTnMEffMlzu14YuywaJ72NuH2QuzY+v1eyWkSAXpELL8flgSsCFvr5brwD38EPdxkuw9LCs50jtELLORIVfxOpM9ATQoLQMrX/7NAaLb8bd5BgjfAC6nAwZGb+UhFzL/7K26csOb57yM5bvF9xJrLEObOkAAAAAFSlNamSkhBk0k6HFg2jh8fDW13bySu4HkH6hAQQVEjQbd9uHXZaGT2cvhRs7reawctIXtX1s3kTqM9YV+/wCpBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUEBQAFAiBOAAAFAAkDAQAAAAAAAAAHBAIEAwEKDEjoAQAAAAAABgYAEXB1cnNlci1maXhlZC1tZW1vAA==";

#[test]
fn same_transaction_as_the_reference_client() {
    let key = SigningKey::from_bytes(&[0x11u8; 32]);
    let payer: Address = key.verifying_key().to_bytes();
    assert_eq!(
        address_string(&payer),
        "F25s3DdjXdCxYBhh2z8FBusVEMT4b9bGNFVKJi3wFoF4"
    );
    let fee_payer = addr("uY46ibBrA5pEsx4z8iiQ6BpNeBuMR6weo4u2ubREB9q");
    let ixs = payment_instructions(
        &payer,
        &addr(PAY_TO),
        &addr(DEVNET_MINT),
        125_000,
        b"purser-fixed-memo",
    );
    let msg = build_transaction_message(&fee_payer, &[5u8; 32], &ixs);
    let sig = key.sign(&msg.bytes).to_bytes();
    let wire = wire_transaction(&msg, &[(payer, sig)]);
    let reference = base64::engine::general_purpose::STANDARD
        .decode(REFERENCE_TX)
        .unwrap();
    assert_eq!(wire, reference);
}

/// A payer key for BuildContext (the ledger signs `to_sign` itself; exact needs no
/// signing during build).
struct NoSigner;

#[async_trait::async_trait]
impl PayerSigner for NoSigner {
    async fn sign(&self, _what: &ToSign) -> Result<Signature, BuildError> {
        panic!("exact on Solana signs nothing during build");
    }
}

#[tokio::test]
async fn build_reads_the_blockhash_and_finish_makes_the_payload() {
    let blockhash = [77u8; 32];
    let rpc = common::mock_result(json!({
        "context": {"slot": 1},
        "value": {"blockhash": bs58::encode(blockhash).into_string(), "lastValidBlockHeight": 9}
    }))
    .await;
    let reader = common::reader_for(Chain::SolanaDevnet, &rpc.url, Duration::from_secs(5));
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let payer = address_string(&key.verifying_key().to_bytes());
    let requirement = parse(&PaymentInput::X402 {
        version: "2".into(),
        payload: v2(),
        permit2_allowance_limit: None,
    })
    .unwrap();
    let ctx = BuildContext {
        payer: &payer,
        now: 1_800_000_000,
        chains: &reader,
        signer: &NoSigner,
    };
    let unsigned = requirement.kind.build(&ctx).await.unwrap();
    assert_eq!(rpc.requests().len(), 1);
    assert_eq!(rpc.requests()[0]["method"], "getLatestBlockhash");
    let ToSign::SolanaMessage { message } = unsigned.to_sign() else {
        panic!("a Solana message")
    };
    // The blockhash sits after the prefix, header and 8 keys.
    assert_eq!(&message[5 + 8 * 32..5 + 9 * 32], &blockhash);
    let sig = key.sign(&message).to_bytes();
    assert_eq!(unsigned.finish(&Signature::Secp256k1([0u8; 65])), None);
    let out = unsigned.finish(&Signature::Ed25519(sig)).unwrap();
    let obj = out.as_object().unwrap();
    assert_eq!(obj.len(), 1, "{out}");
    let wire = base64::engine::general_purpose::STANDARD
        .decode(obj["transaction"].as_str().unwrap())
        .unwrap();
    assert_eq!(wire[0], 2);
    assert_eq!(&wire[1..65], &[0u8; 64], "the fee payer's slot is empty");
    assert_eq!(&wire[65..129], &sig);
    assert_eq!(&wire[129..], &message[..]);
    // The fee payer is the first key, the payer the second.
    assert_eq!(&wire[129 + 5..129 + 37], &addr(FEE_PAYER));
    assert_eq!(&wire[129 + 37..129 + 69], &key.verifying_key().to_bytes());
}

#[tokio::test]
async fn build_refuses_the_payer_as_fee_payer_and_evm_wallets_before_any_rpc() {
    let rpc = common::mock_result(json!(null)).await;
    let reader = common::reader_for(Chain::SolanaDevnet, &rpc.url, Duration::from_secs(5));
    let requirement = parse(&PaymentInput::X402 {
        version: "2".into(),
        payload: v2(),
        permit2_allowance_limit: None,
    })
    .unwrap();
    for (payer, field) in [
        (FEE_PAYER, format!("{P}.extra.feePayer")),
        (
            "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
            "paymentInstrumentId".to_string(),
        ),
    ] {
        let ctx = BuildContext {
            payer,
            now: 0,
            chains: &reader,
            signer: &NoSigner,
        };
        match requirement.kind.build(&ctx).await {
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
    let requirement = parse(&PaymentInput::X402 {
        version: "1".into(),
        payload: v1(),
        permit2_allowance_limit: None,
    })
    .unwrap();
    let payer = address_string(
        &SigningKey::from_bytes(&[3u8; 32])
            .verifying_key()
            .to_bytes(),
    );
    let ctx = BuildContext {
        payer: &payer,
        now: 0,
        chains: &reader,
        signer: &NoSigner,
    };
    match requirement.kind.build(&ctx).await {
        Err(BuildError::Chain(e)) => assert!(e.message().contains("SOLANA_DEVNET"), "{e}"),
        other => panic!("{other:?}"),
    }
}
