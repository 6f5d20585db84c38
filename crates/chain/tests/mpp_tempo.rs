//! MPP `tempo` (draft-tempo-charge-00, intent `charge`): the request catalogue, the fee
//! policy (`feePayer` / `buyerPaysGasFees`), the Tempo transaction byte for byte against
//! the reference client's serializer, what `build` reads from the chain, and the
//! credential.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, SigningKey, VerifyingKey};
use purser_chain::mpp::tempo::{
    GAS_MARGIN, MAX_GAS, TempoTx, attribution_memo, transfer_with_memo_calldata,
};
use purser_chain::payment::{
    BuildContext, BuildError, PayerSigner, PaymentInput, PaymentType, Requirement, Signature,
    ToSign, parse,
};
use purser_chain::x402::checksum_address;
use purser_chain::{BalanceReader, Chain};
use serde_json::{Value, json};
use sha3::Digest as _;

const H: &str = "paymentInput.mpp.wwwAuthenticateHeaders[0]";
const R: &str = "paymentInput.mpp.wwwAuthenticateHeaders[0].request";
const PATH_USD: &str = "0x20c0000000000000000000000000000000000000";
const RECIPIENT: &str = "0x000000000000000000000000000000000000bEEF";
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// 2030-01-01T00:00:00Z
const EXPIRES: u64 = 1_893_456_000;

fn request() -> Value {
    json!({
        "amount": "250000",
        "currency": PATH_USD,
        "recipient": RECIPIENT,
        "methodDetails": {"chainId": 42431, "feePayer": true},
    })
}

fn header(request: &Value) -> String {
    format!(
        "Payment id=\"abc\", realm=\"shop.test\", method=\"tempo\", intent=\"charge\", request=\"{}\", expires=\"2030-01-01T00:00:00Z\"",
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

fn refusal(request: &Value, buyer_pays_gas_fees: Option<bool>) -> (String, String) {
    let e = parse(&input(request, buyer_pays_gas_fees)).unwrap_err();
    (e.field, e.message)
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

#[test]
fn a_sponsored_moderato_challenge_is_read_with_what_it_pays_and_debits() {
    let r = read(&request(), None);
    assert_eq!(r.payment_type, PaymentType::Mpp);
    assert_eq!(r.scheme, "tempo");
    assert_eq!(r.chain, Chain::TempoModerato);
    assert_eq!(r.chain.family().as_str(), "ETHEREUM");
    assert_eq!(r.network, "eip155:42431");
    assert_eq!(r.payee, RECIPIENT);
    assert_eq!(r.asset.to_lowercase(), PATH_USD);
    assert_eq!((r.amount, r.debit), (250_000, 250_000));
    assert_eq!(r.amount_field, format!("{R}.amount"));
}

#[test]
fn mainnet_by_default_and_usdc_accepted_there() {
    let mut req = request();
    req["methodDetails"] = json!({"feePayer": true});
    assert_eq!(read(&req, None).chain, Chain::Tempo);
    req["currency"] = json!("0x20c000000000000000000000b9537d11c60e8b50");
    assert_eq!(read(&req, None).chain, Chain::Tempo);
    // USDC is not Moderato's currency
    req["methodDetails"]["chainId"] = json!(42431);
    assert_eq!(refusal(&req, None).0, format!("{R}.currency"));
}

#[test]
fn the_wallet_pays_the_fee_only_when_asked() {
    let mut req = request();
    for details in [
        json!({"chainId": 42431}),
        json!({"chainId": 42431, "feePayer": false}),
    ] {
        req["methodDetails"] = details;
        for flag in [None, Some(false)] {
            let (field, message) = refusal(&req, flag);
            assert_eq!(field, "paymentInput.mpp.buyerPaysGasFees", "{message}");
            assert!(message.contains("does not sponsor"), "{message}");
        }
        assert_eq!(read(&req, Some(true)).debit, 250_000);
    }
    // a sponsored challenge is paid whatever buyerPaysGasFees says
    for flag in [None, Some(false), Some(true)] {
        read(&request(), flag);
    }
}

#[test]
fn every_refusal_names_the_member() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("methodDetails", json!("x"), "must be an object"),
        (
            "methodDetails.chainId",
            json!(1),
            "must be 4217 (Tempo) or 42431",
        ),
        ("methodDetails.chainId", json!("42431"), "must be 4217"),
        ("amount", json!("0"), "greater than 0"),
        ("amount", json!("-1"), "decimal string"),
        ("amount", json!(250000), "is required (a string)"),
        ("amount", json!("9".repeat(40)), "too large"),
        (
            "currency",
            json!("0x20c0000000000000000000000000000000000001"),
            "not a USD stablecoin this server pays on TEMPO_42431",
        ),
        ("currency", json!("pathUSD"), "not a USD stablecoin"),
        ("recipient", json!("0x1234"), "non-zero"),
        (
            "recipient",
            json!(format!("0x{}", "0".repeat(40))),
            "non-zero",
        ),
        ("methodDetails.decimals", json!(18), "must be 6"),
        (
            "methodDetails.splits",
            json!([{"recipient": RECIPIENT, "amount": "1"}]),
            "not supported",
        ),
        ("methodDetails.supportedModes", json!(["push"]), "\"pull\""),
        ("methodDetails.feePayer", json!("yes"), "boolean"),
    ];
    for (path, value, words) in cases {
        let mut req = request();
        match path.split_once('.') {
            Some((_, leaf)) => req["methodDetails"][leaf] = value.clone(),
            None => req[path] = value.clone(),
        }
        let (field, message) = refusal(&req, None);
        assert_eq!(field, format!("{R}.{path}"), "{value}: {message}");
        assert!(message.contains(words), "{value}: {message}");
    }
    let mut req = request();
    req.as_object_mut().unwrap().remove("recipient");
    assert_eq!(refusal(&req, None).0, format!("{R}.recipient"));
    // accepted: empty splits, pull among the modes, the mppx extras
    let mut req = request();
    req["methodDetails"]["splits"] = json!([]);
    req["methodDetails"]["supportedModes"] = json!(["push", "pull"]);
    req["methodDetails"]["machineTokenEnabled"] = json!(true);
    req["methodDetails"]["decimals"] = json!(6);
    req["externalId"] = json!("order-7");
    read(&req, None);
}

/// What the reference client's serializer (viem 2.57.20 `Transaction.serialize` of
/// `viem/tempo`, signing with `privateKeyToAccount`) gives for key 0x4c0883a6...2318,
/// chain 42431, gas 789000, maxFeePerGas 22309954000, maxPriorityFeePerGas 1e9,
/// nonceKey 2^256-1, nonce 0, validBefore 1796000460, one call of pathUSD
/// transferWithMemo(0x...bEEF, 250000, the memo of challenge "abc" of realm "shop.test"):
/// (signing hash, signed transaction) without and with `feePayer: true`.
const REFERENCE_MEMO: &str = "ef1ed712019097b0803ff2ebae0a09000000000000000000004e03657aea45a9";
const REFERENCE_PLAIN: (&str, &str) = (
    "aba6222e5e1ab7f95004be435b4a0b5abe36ebf518b7fb55933be6053900a454",
    "76f9010182a5bf843b9aca00850531c6e1d0830c0a08f87ef87c9420c000000000000000000000000000000000000080b86495777d59000000000000000000000000000000000000000000000000000000000000beef000000000000000000000000000000000000000000000000000000000003d090ef1ed712019097b0803ff2ebae0a09000000000000000000004e03657aea45a9c0a0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff80846b0ccacc808080c0b841e52a2e289b79694a7956f422d1614dd78ad39504f82db50a7325e00165481aa22814c3f3901b871400ed1b9881937d55dcdfa024b4de60d782e91911bfd3bfb91c",
);
const REFERENCE_SPONSORED: (&str, &str) = (
    "dedf76782f9ea919ff2b31bdee9477b44c3367f6600c174e8a8e60be7c556f49",
    "78f9011582a5bf843b9aca00850531c6e1d0830c0a08f87ef87c9420c000000000000000000000000000000000000080b86495777d59000000000000000000000000000000000000000000000000000000000000beef000000000000000000000000000000000000000000000000000000000003d090ef1ed712019097b0803ff2ebae0a09000000000000000000004e03657aea45a9c0a0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff80846b0ccacc8080942c7536e3605d9c16a7a3d7b1898e529396a65c23c0b841d6e3d1ea22948d959c13a59bb9888ffc1df923941cfb7073416fc963b244e0875a1229f43ce49bb9d98895c459df7aad9a2c6bb1ff0b370077928c164e9eaccc1b",
);

fn reference_key() -> SigningKey {
    let bytes =
        hex::decode("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318").unwrap();
    SigningKey::from_slice(&bytes).unwrap()
}

fn sign(key: &SigningKey, digest: &[u8; 32]) -> [u8; 65] {
    let (sig, recid) = key.sign_prehash_recoverable(digest).unwrap();
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    out[64] = 27 + recid.to_byte();
    out
}

fn eth_address(key: &SigningKey) -> [u8; 20] {
    let point = key.verifying_key().to_encoded_point(false);
    sha3::Keccak256::digest(&point.as_bytes()[1..])[12..]
        .try_into()
        .unwrap()
}

fn recover(digest: &[u8; 32], sig: &[u8; 65]) -> [u8; 20] {
    let s = EcdsaSignature::from_slice(&sig[..64]).unwrap();
    let id = RecoveryId::from_byte(sig[64] - 27).unwrap();
    let vk = VerifyingKey::recover_from_prehash(digest, &s, id).unwrap();
    let point = vk.to_encoded_point(false);
    sha3::Keccak256::digest(&point.as_bytes()[1..])[12..]
        .try_into()
        .unwrap()
}

fn address(s: &str) -> [u8; 20] {
    hex::decode(&s[2..]).unwrap().try_into().unwrap()
}

#[test]
fn same_transaction_as_the_reference_client() {
    let memo = attribution_memo("shop.test", "abc");
    assert_eq!(hex::encode(memo), REFERENCE_MEMO);
    let key = reference_key();
    let from = eth_address(&key);
    assert_eq!(
        checksum_address(&from),
        "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
    );
    for (sponsored, (hash, raw)) in [(false, REFERENCE_PLAIN), (true, REFERENCE_SPONSORED)] {
        let tx = TempoTx {
            chain_id: 42431,
            max_priority_fee_per_gas: 1_000_000_000,
            max_fee_per_gas: 22_309_954_000,
            gas: 789_000,
            to: address(PATH_USD),
            data: transfer_with_memo_calldata(&address(RECIPIENT), 250_000, &memo),
            valid_before: 1_796_000_460,
            sponsored,
        };
        assert_eq!(
            hex::encode(tx.signing_hash()),
            hash,
            "sponsored: {sponsored}"
        );
        let sig = sign(&key, &tx.signing_hash());
        assert_eq!(
            hex::encode(tx.signed(&from, &sig)),
            raw,
            "sponsored: {sponsored}"
        );
        // a bare recovery id is accepted too
        let mut bare = sig;
        bare[64] -= 27;
        assert_eq!(hex::encode(tx.signed(&from, &bare)), raw);
    }
}

/// Signs with the reference key; records what it was asked to sign.
struct KeySigner {
    key: SigningKey,
    asked: Mutex<Vec<ToSign>>,
}

#[async_trait::async_trait]
impl PayerSigner for KeySigner {
    async fn sign(&self, what: &ToSign) -> Result<Signature, BuildError> {
        self.asked.lock().unwrap().push(what.clone());
        match what {
            ToSign::EvmTransaction { digest, .. } => {
                Ok(Signature::Secp256k1(sign(&self.key, digest)))
            }
            _ => Err(BuildError::Signing),
        }
    }
}

fn context<'a>(
    payer: &'a str,
    reader: &'a BalanceReader,
    signer: &'a dyn PayerSigner,
    now: u64,
) -> BuildContext<'a> {
    BuildContext {
        payer,
        now,
        chains: reader,
        signer,
    }
}

/// A Tempo node: an estimate of 784000 gas (or `estimate_error`), a priority fee of 1
/// gwei and a next base fee of 20 gwei.
async fn tempo_node(estimate: Result<u64, &'static str>) -> common::MockRpc {
    common::mock_rpc(move |req| {
        let result = match req["method"].as_str().unwrap_or("") {
            "eth_estimateGas" => match estimate {
                Ok(gas) => json!(format!("{gas:#x}")),
                Err(message) => {
                    let body = json!({"jsonrpc": "2.0", "id": req["id"],
                        "error": {"code": -32000, "message": message}});
                    return (200, body.to_string());
                }
            },
            "eth_maxPriorityFeePerGas" => json!("0x3b9aca00"),
            "eth_feeHistory" => json!({"baseFeePerGas": ["0x4a817c800", "0x4a817c800"],
                "gasUsedRatio": [0.1], "oldestBlock": "0x1"}),
            other => panic!("unexpected {other}"),
        };
        (
            200,
            json!({"jsonrpc": "2.0", "id": req["id"], "result": result}).to_string(),
        )
    })
    .await
}

#[tokio::test]
async fn build_reads_the_chain_and_the_credential_carries_the_signed_transaction() {
    let node = tempo_node(Ok(784_000)).await;
    let reader = common::reader_for(Chain::TempoModerato, &node.url, Duration::from_secs(5));
    let key = reference_key();
    let from = eth_address(&key);
    let payer = checksum_address(&from);
    let signer = KeySigner {
        key: reference_key(),
        asked: Mutex::new(Vec::new()),
    };
    let now = 1_800_000_000 - 100; // validBefore = now + 25 (the challenge expires later)
    for (sponsored, buyer_pays, first_byte) in [(true, None, 0x78u8), (false, Some(true), 0x76)] {
        let mut req = request();
        req["methodDetails"]["feePayer"] = json!(sponsored);
        let r = read(&req, buyer_pays);
        let unsigned = r
            .kind
            .build(&context(&payer, &reader, &signer, now))
            .await
            .unwrap();
        let ToSign::EvmTransaction {
            digest,
            unsigned: preimage,
        } = unsigned.to_sign()
        else {
            panic!("a Tempo transaction is signed as an EVM transaction digest");
        };
        assert_eq!(preimage[0], 0x76);
        assert_eq!(digest, <[u8; 32]>::from(sha3::Keccak256::digest(&preimage)));
        let expected = TempoTx {
            chain_id: 42431,
            max_priority_fee_per_gas: 1_000_000_000,
            max_fee_per_gas: 20_000_000_000 * 12 / 10 + 1_000_000_000,
            gas: 784_000 + GAS_MARGIN,
            to: address(PATH_USD),
            data: transfer_with_memo_calldata(
                &address(RECIPIENT),
                250_000,
                &attribution_memo("shop.test", "abc"),
            ),
            valid_before: now + 25,
            sponsored,
        };
        assert_eq!(digest, expected.signing_hash());
        let sig = sign(&key, &digest);
        assert_eq!(recover(&digest, &sig), from);
        let out = unsigned.finish(&Signature::Secp256k1(sig)).unwrap();
        assert_eq!(out["selectedPaymentId"], "abc");
        let cred = out["paymentCredential"].as_str().unwrap();
        let body: Value = serde_json::from_slice(
            &B64URL
                .decode(cred.strip_prefix("Payment ").unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            body["payload"],
            json!({"signature": hex0x(&expected.signed(&from, &sig)), "type": "transaction"})
        );
        let raw = hex::decode(&body["payload"]["signature"].as_str().unwrap()[2..]).unwrap();
        assert_eq!(raw[0], first_byte);
        assert_eq!(body["source"], format!("did:pkh:eip155:42431:{payer}"));
        assert_eq!(body["challenge"]["id"], "abc");
        assert_eq!(body["challenge"]["method"], "tempo");
        assert_eq!(body["challenge"]["expires"], "2030-01-01T00:00:00Z");
    }
    // the estimate asked for the transaction as it is signed: expiring nonce, the call
    let estimates: Vec<Value> = node
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "eth_estimateGas")
        .collect();
    assert_eq!(estimates.len(), 2);
    let tx = &estimates[0]["params"][0];
    assert_eq!(tx["from"], payer.to_lowercase());
    assert_eq!(tx["type"], "0x76");
    assert_eq!(tx["nonceKey"], format!("0x{}", "f".repeat(64)));
    assert_eq!(tx["nonce"], "0x0");
    assert_eq!(tx["validBefore"], format!("{:#x}", now + 25));
    assert_eq!(tx["calls"][0]["to"], PATH_USD);
    // the signer was asked only for the payment (build signs nothing)
    assert!(signer.asked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn valid_before_never_passes_the_challenge_expiry() {
    let node = tempo_node(Ok(50_000)).await;
    let reader = common::reader_for(Chain::TempoModerato, &node.url, Duration::from_secs(5));
    let payer = checksum_address(&eth_address(&reference_key()));
    let signer = KeySigner {
        key: reference_key(),
        asked: Mutex::new(Vec::new()),
    };
    let r = read(&request(), None);
    r.kind
        .build(&context(&payer, &reader, &signer, EXPIRES - 10))
        .await
        .unwrap();
    let tx = node
        .requests()
        .into_iter()
        .find(|r| r["method"] == "eth_estimateGas")
        .unwrap();
    assert_eq!(tx["params"][0]["validBefore"], format!("{EXPIRES:#x}"));
}

#[tokio::test]
async fn build_refusals_name_the_problem() {
    let signer = KeySigner {
        key: reference_key(),
        asked: Mutex::new(Vec::new()),
    };
    let payer = checksum_address(&eth_address(&reference_key()));
    let r = read(&request(), None);
    // expired, or a Solana wallet: refused before any RPC
    let node = tempo_node(Ok(50_000)).await;
    let reader = common::reader_for(Chain::TempoModerato, &node.url, Duration::from_secs(5));
    for (who, now, field) in [
        (payer.as_str(), EXPIRES, format!("{H}.expires")),
        (
            "CZ8YUVdk7znjrUmnb5n7kgySk9yRAsQDYmyCxzfSky9t",
            0,
            "paymentInstrumentId".to_string(),
        ),
    ] {
        match r.kind.build(&context(who, &reader, &signer, now)).await {
            Err(BuildError::Input(e)) => assert_eq!(e.field, field, "{}", e.message),
            other => panic!("{other:?}"),
        }
    }
    assert!(node.requests().is_empty());
    // the node refuses the estimate (the wallet lacks the amount)
    let node = tempo_node(Err("insufficient balance")).await;
    let reader = common::reader_for(Chain::TempoModerato, &node.url, Duration::from_secs(5));
    match r.kind.build(&context(&payer, &reader, &signer, 0)).await {
        Err(BuildError::Input(e)) => {
            assert_eq!(e.field, "paymentInstrumentId");
            assert!(
                e.message.contains("TEMPO_42431") && e.message.contains("insufficient balance"),
                "{}",
                e.message
            );
        }
        other => panic!("{other:?}"),
    }
    // more gas than this server signs for
    let node = tempo_node(Ok(MAX_GAS)).await;
    let reader = common::reader_for(Chain::TempoModerato, &node.url, Duration::from_secs(5));
    match r.kind.build(&context(&payer, &reader, &signer, 0)).await {
        Err(BuildError::Input(e)) => assert!(e.message.contains("gas"), "{}", e.message),
        other => panic!("{other:?}"),
    }
    // the node does not answer
    let reader = common::reader_for(
        Chain::TempoModerato,
        &common::closed_port_url(),
        Duration::from_secs(5),
    );
    match r.kind.build(&context(&payer, &reader, &signer, 0)).await {
        Err(BuildError::Chain(e)) => assert!(e.message().contains("TEMPO_42431"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(signer.asked.lock().unwrap().is_empty());
}
