//! x402 `upto` and `exact` through Permit2: the validation catalogue, the Permit2
//! EIP-712 digests against viem vectors, the EIP-1559 approve against a viem vector,
//! what a built payment signs and returns, and the `permit2AllowanceLimit` approve
//! against a loopback JSON-RPC mock (the real chain round trip is in the compat suite,
//! `tests/compat/test_data_payments_upto.py`, on anvil).

mod common;

use std::sync::Mutex;
use std::time::Duration;

use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, SigningKey, VerifyingKey};
use purser_chain::evm_tx::{Eip1559Tx, erc20_approve_calldata};
use purser_chain::payment::{
    self, BuildContext, BuildError, PayerSigner, PaymentInput, Signature, ToSign,
};
use purser_chain::x402::permit2::{
    EXACT_PROXY, PERMIT2_ADDRESS, Permit2Authorization, UPTO_PROXY, permit2_digest, u256_to_decimal,
};
use purser_chain::x402::{X402Error, checksum_address};
use purser_chain::{BalanceReader, Chain};
use serde_json::{Value, json};
use sha3::Digest as _;

const P: &str = "paymentInput.cryptoX402.payload";
const LIMIT: &str = "paymentInput.cryptoX402.permit2AllowanceLimit";
const PAY_TO: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const FACILITATOR: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
const USDC_BASE_SEPOLIA: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

fn upto() -> Value {
    json!({
        "scheme": "upto",
        "network": "eip155:84532",
        "amount": "5000000",
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 300,
        "asset": USDC_BASE_SEPOLIA,
        "extra": {"name": "USDC", "version": "2", "assetTransferMethod": "permit2",
                  "facilitatorAddress": FACILITATOR}
    })
}

fn exact_permit2() -> Value {
    json!({
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": "125000",
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 300,
        "asset": USDC_BASE_SEPOLIA,
        "extra": {"assetTransferMethod": "permit2"}
    })
}

fn with(mut v: Value, path: &str, value: Value) -> Value {
    let mut cur = &mut v;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        cur = &mut cur[*p];
    }
    let last = parts[parts.len() - 1];
    if value.is_null() {
        cur.as_object_mut().unwrap().remove(last);
    } else {
        cur[last] = value;
    }
    v
}

fn input(version: &str, payload: Value, limit: Option<&str>) -> PaymentInput {
    PaymentInput::X402 {
        version: version.into(),
        payload,
        permit2_allowance_limit: limit.map(str::to_string),
    }
}

fn parse_err(version: &str, payload: Value, limit: Option<&str>) -> X402Error {
    match payment::parse(&input(version, payload, limit)) {
        Ok(r) => panic!("accepted: {r:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_field(e: &X402Error, field: &str) {
    assert_eq!(e.field, field, "{}", e.message);
    assert!(e.message.contains(field), "{}", e.message);
}

#[test]
fn upto_parses_and_debits_the_maximum() {
    let r = payment::parse(&input("2", upto(), None)).unwrap();
    assert_eq!(r.scheme, "upto");
    assert_eq!(r.version, "2");
    assert_eq!(r.chain, Chain::BaseSepolia);
    assert_eq!(r.amount, 5_000_000);
    assert_eq!(r.debit, 5_000_000);
    assert_eq!(r.payee, PAY_TO);
    assert_eq!(r.asset, USDC_BASE_SEPOLIA);
    assert_eq!(r.amount_field, format!("{P}.amount"));
    for (network, chain) in [
        ("base", Chain::Base),
        ("eip155:8453", Chain::Base),
        ("ethereum", Chain::Ethereum),
        ("eip155:1", Chain::Ethereum),
        ("base-sepolia", Chain::BaseSepolia),
    ] {
        let req = with(upto(), "network", json!(network));
        let req = with(req, "asset", json!(chain.usdc_address()));
        let r = payment::parse(&input("2", req, Some("1000000"))).unwrap();
        assert_eq!(r.chain, chain);
    }
    // extra.name / version are not needed for a Permit2 permit
    let req = with(
        upto(),
        "extra",
        json!({"facilitatorAddress": FACILITATOR.to_lowercase()}),
    );
    assert!(payment::parse(&input("2", req, None)).is_ok());
    // the largest allowance (2^256 - 1) is a valid limit
    let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
    assert!(payment::parse(&input("2", upto(), Some(max))).is_ok());
}

#[test]
fn upto_catalogue() {
    let scheme = format!("{P}.scheme");
    let cases: Vec<(&str, Value, Option<&str>, String)> = vec![
        ("1", upto(), None, scheme.clone()),
        (
            "1",
            with(upto(), "maxAmountRequired", json!("5000000")),
            None,
            scheme.clone(),
        ),
        (
            "2",
            with(
                upto(),
                "network",
                json!("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"),
            ),
            None,
            scheme.clone(),
        ),
        (
            "2",
            with(upto(), "network", json!("solana")),
            None,
            scheme.clone(),
        ),
        (
            "2",
            with(upto(), "network", json!("eip155:999")),
            None,
            format!("{P}.network"),
        ),
        (
            "2",
            with(upto(), "network", Value::Null),
            None,
            format!("{P}.network"),
        ),
        (
            "2",
            with(upto(), "extra", Value::Null),
            None,
            format!("{P}.extra.facilitatorAddress"),
        ),
        (
            "2",
            with(upto(), "extra", json!("x")),
            None,
            format!("{P}.extra"),
        ),
        (
            "2",
            with(upto(), "extra.facilitatorAddress", Value::Null),
            None,
            format!("{P}.extra.facilitatorAddress"),
        ),
        (
            "2",
            with(upto(), "extra.facilitatorAddress", json!("")),
            None,
            format!("{P}.extra.facilitatorAddress"),
        ),
        (
            "2",
            with(upto(), "extra.facilitatorAddress", json!(12)),
            None,
            format!("{P}.extra.facilitatorAddress"),
        ),
        (
            "2",
            with(upto(), "extra.facilitatorAddress", json!("0x1234")),
            None,
            format!("{P}.extra.facilitatorAddress"),
        ),
        (
            "2",
            with(
                upto(),
                "extra.facilitatorAddress",
                json!(format!("0x{}", "00".repeat(20))),
            ),
            None,
            format!("{P}.extra.facilitatorAddress"),
        ),
        (
            "2",
            // one letter's case flipped: a bad EIP-55 checksum
            with(
                upto(),
                "extra.facilitatorAddress",
                json!("0xFB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"),
            ),
            None,
            format!("{P}.extra.facilitatorAddress"),
        ),
        (
            "2",
            with(upto(), "amount", json!("0")),
            None,
            format!("{P}.amount"),
        ),
        (
            "2",
            with(upto(), "amount", json!("-1")),
            None,
            format!("{P}.amount"),
        ),
        (
            "2",
            with(upto(), "amount", json!(5)),
            None,
            format!("{P}.amount"),
        ),
        (
            "2",
            with(upto(), "amount", Value::Null),
            None,
            format!("{P}.amount"),
        ),
        (
            "2",
            with(
                upto(),
                "asset",
                json!("0x1111111111111111111111111111111111111111"),
            ),
            None,
            format!("{P}.asset"),
        ),
        (
            "2",
            with(upto(), "payTo", json!("0x12")),
            None,
            format!("{P}.payTo"),
        ),
        (
            "2",
            with(upto(), "payTo", json!(format!("0x{}", "00".repeat(20)))),
            None,
            format!("{P}.payTo"),
        ),
        (
            "2",
            with(upto(), "maxTimeoutSeconds", json!(0)),
            None,
            format!("{P}.maxTimeoutSeconds"),
        ),
        (
            "2",
            with(upto(), "maxTimeoutSeconds", json!(-5)),
            None,
            format!("{P}.maxTimeoutSeconds"),
        ),
        (
            "2",
            with(upto(), "maxTimeoutSeconds", Value::Null),
            None,
            format!("{P}.maxTimeoutSeconds"),
        ),
        ("2", upto(), Some("0"), LIMIT.to_string()),
        ("2", upto(), Some("000"), LIMIT.to_string()),
        ("2", upto(), Some("1.5"), LIMIT.to_string()),
        ("2", upto(), Some(""), LIMIT.to_string()),
        (
            "2",
            upto(),
            Some("115792089237316195423570985008687907853269984665640564039457584007913129639936"),
            LIMIT.to_string(),
        ),
    ];
    for (version, req, limit, field) in cases {
        let e = parse_err(version, req.clone(), limit);
        assert_field(&e, &field);
        let _ = req;
    }
}

#[test]
fn exact_through_permit2() {
    let r = payment::parse(&input("2", exact_permit2(), None)).unwrap();
    assert_eq!(r.scheme, "exact");
    assert_eq!(r.debit, 125_000);
    // eip3009 (or no method) stays on EIP-3009, which needs extra.name/version
    let e = parse_err(
        "2",
        with(
            exact_permit2(),
            "extra.assetTransferMethod",
            json!("eip3009"),
        ),
        None,
    );
    assert_field(&e, &format!("{P}.extra.name"));
    let method = format!("{P}.extra.assetTransferMethod");
    for (version, req, limit, field) in [
        (
            "2",
            with(
                exact_permit2(),
                "extra.assetTransferMethod",
                json!("permit3"),
            ),
            None,
            method.clone(),
        ),
        (
            "2",
            with(exact_permit2(), "extra.assetTransferMethod", json!(true)),
            None,
            method.clone(),
        ),
        ("1", exact_permit2(), None, method.clone()),
        ("2", exact_permit2(), Some("1000"), LIMIT.to_string()),
        (
            "2",
            with(exact_permit2(), "amount", json!("0")),
            None,
            format!("{P}.amount"),
        ),
        (
            "2",
            with(exact_permit2(), "payTo", json!("nope")),
            None,
            format!("{P}.payTo"),
        ),
        (
            "2",
            with(exact_permit2(), "asset", json!(Chain::Base.usdc_address())),
            None,
            format!("{P}.asset"),
        ),
    ] {
        assert_field(&parse_err(version, req, limit), &field);
    }
    // permit2AllowanceLimit with EIP-3009 exact is still refused
    let eip3009 = with(
        exact_permit2(),
        "extra",
        json!({"name": "USDC", "version": "2"}),
    );
    assert_field(&parse_err("2", eip3009, Some("5")), LIMIT);
}

fn addr(s: &str) -> [u8; 20] {
    let mut out = [0u8; 20];
    hex::decode_to_slice(&s[2..], &mut out).unwrap();
    out
}

fn vector_authorization(facilitator: Option<&str>) -> Permit2Authorization {
    Permit2Authorization {
        from: addr("0xdB00079cad3e665853Bf766eFe26F4C38cdbdCDA"),
        token: addr(USDC_BASE_SEPOLIA),
        amount: 5_000_000,
        spender: addr(if facilitator.is_some() {
            UPTO_PROXY
        } else {
            EXACT_PROXY
        }),
        nonce: [0xab; 32],
        deadline: 1_700_000_300,
        to: addr(PAY_TO),
        facilitator: facilitator.map(addr),
        valid_after: 0,
    }
}

/// Vectors from viem 2.57.20 (tests/chain/node_modules), a one-off node script:
///
/// ```js
/// import { hashTypedData } from "viem";
/// const upto = { PermitWitnessTransferFrom: [{name:"permitted",type:"TokenPermissions"},
///   {name:"spender",type:"address"}, {name:"nonce",type:"uint256"},
///   {name:"deadline",type:"uint256"}, {name:"witness",type:"Witness"}],
///   TokenPermissions: [{name:"token",type:"address"}, {name:"amount",type:"uint256"}],
///   Witness: [{name:"to",type:"address"}, {name:"facilitator",type:"address"},
///             {name:"validAfter",type:"uint256"}] };
/// const exact = { ...upto, Witness: [{name:"to",type:"address"}, {name:"validAfter",type:"uint256"}] };
/// const msgU = { permitted: { token: USDC_BASE_SEPOLIA, amount: 5000000n },
///   spender: UPTO_PROXY, nonce: BigInt("0x" + "ab".repeat(32)), deadline: 1700000300n,
///   witness: { to: PAY_TO, facilitator: FACILITATOR, validAfter: 0n } };
/// const msgE = { ...msgU, spender: EXACT_PROXY, witness: { to: PAY_TO, validAfter: 0n } };
/// hashTypedData({ domain: { name: "Permit2", chainId, verifyingContract: PERMIT2 },
///   types, primaryType: "PermitWitnessTransferFrom", message });
/// ```
#[test]
fn permit2_digests_match_viem() {
    let upto = vector_authorization(Some(FACILITATOR));
    let exact = vector_authorization(None);
    for (chain_id, auth, want) in [
        (
            84532,
            &upto,
            "1f49edd1f950970ded64de38f592ce9999c0733330ef6d0e8c85c16e41515213",
        ),
        (
            8453,
            &upto,
            "bede20fd54153871eb97f03824f05d34ddc5914d673acd8fabbf8d93afca8d06",
        ),
        (
            84532,
            &exact,
            "7cdbdaa1cfaf5b096d08468ca96d6ebb2be7aafed61b24aafe7319ea1b7d06ae",
        ),
        (
            1,
            &exact,
            "19730e46ac803769524df2eb26dd7e4a0ab70dad99a440b3a4bd65b12e4dd46a",
        ),
    ] {
        assert_eq!(
            hex::encode(permit2_digest(chain_id, auth)),
            want,
            "chain {chain_id}"
        );
    }
    assert_eq!(
        u256_to_decimal(&[0xab; 32]),
        "77648812782670860460512307594061302913369283834606025297048026922953510464427"
    );
    // every signed member matters (from is not signed: Permit2 recovers it)
    let base = permit2_digest(84532, &upto);
    let mut changed = Vec::new();
    let mut a = upto;
    a.amount += 1;
    changed.push(a);
    let mut a = upto;
    a.spender = addr(EXACT_PROXY);
    changed.push(a);
    let mut a = upto;
    a.nonce[31] ^= 1;
    changed.push(a);
    let mut a = upto;
    a.deadline += 1;
    changed.push(a);
    let mut a = upto;
    a.to[0] ^= 1;
    changed.push(a);
    let mut a = upto;
    a.facilitator = Some(addr(PAY_TO));
    changed.push(a);
    let mut a = upto;
    a.valid_after = 1;
    changed.push(a);
    let mut a = upto;
    a.token = addr(Chain::Base.usdc_address());
    changed.push(a);
    for a in changed {
        assert_ne!(permit2_digest(84532, &a), base, "{a:?}");
    }
}

/// viem 2.57.20: `serializeTransaction(tx)`, `keccak256` of it, and
/// `privateKeyToAccount("0x4c..4c").signTransaction(tx)` for
/// `tx = {type: "eip1559", chainId: 84532, nonce: 7, maxPriorityFeePerGas: 1000000n,
/// maxFeePerGas: 2000000000n, gas: 55000n, to: USDC_BASE_SEPOLIA, value: 0n,
/// data: approve(PERMIT2, 1000000)}`.
#[test]
fn eip1559_approve_matches_viem() {
    let mut limit = [0u8; 32];
    limit[16..].copy_from_slice(&1_000_000u128.to_be_bytes());
    let tx = Eip1559Tx {
        chain_id: 84532,
        nonce: 7,
        max_priority_fee_per_gas: 1_000_000,
        max_fee_per_gas: 2_000_000_000,
        gas_limit: 55_000,
        to: addr(USDC_BASE_SEPOLIA),
        value: 0,
        data: erc20_approve_calldata(&addr(PERMIT2_ADDRESS), &limit),
    };
    assert_eq!(
        hex::encode(tx.unsigned_envelope()),
        "02f86e83014a3407830f4240847735940082d6d894036cbd53842c5426634e7929541ec2318f3dcf7e80b844095ea7b3000000000000000000000000000000000022d473030f116ddee9f6b43ac78ba300000000000000000000000000000000000000000000000000000000000f4240c0"
    );
    assert_eq!(
        hex::encode(tx.signing_hash()),
        "77fbab98e66292d2b3b80eea1ee2a10e5ab92bc2fca6ce44595e3f10868c2e1f"
    );
    let key = SigningKey::from_bytes(&[0x4c; 32].into()).unwrap();
    let sig = sign(&key, &tx.signing_hash());
    assert_eq!(
        hex::encode(tx.signed_envelope(&sig)),
        "02f8b183014a3407830f4240847735940082d6d894036cbd53842c5426634e7929541ec2318f3dcf7e80b844095ea7b3000000000000000000000000000000000022d473030f116ddee9f6b43ac78ba300000000000000000000000000000000000000000000000000000000000f4240c080a085f6a238ba6d638863152352b857b1ac5887a97cd8b49f0e0d22a19729d351dfa02e135cfc2083e33533f377b98f758ff04777c998c3bd1d75b1ec3517ba621cf0"
    );
    assert_eq!(
        hex::encode(tx.hash(&sig)),
        "f94fe185404e5bfd18692e827f74187a45eb23567224b42803a7f1b7fc2703fa"
    );
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
    let hash = sha3::Keccak256::digest(&point.as_bytes()[1..]);
    hash[12..].try_into().unwrap()
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

/// Signs with a k256 key and records what it was asked to sign.
struct KeySigner {
    key: SigningKey,
    asked: Mutex<Vec<ToSign>>,
}

#[async_trait::async_trait]
impl PayerSigner for KeySigner {
    async fn sign(&self, what: &ToSign) -> Result<Signature, BuildError> {
        self.asked.lock().unwrap().push(what.clone());
        let digest = match what {
            ToSign::TypedData { digest, .. } | ToSign::EvmTransaction { digest, .. } => digest,
            ToSign::SolanaMessage { .. } => return Err(BuildError::Signing),
        };
        Ok(Signature::Secp256k1(sign(&self.key, digest)))
    }
}

fn key_signer() -> KeySigner {
    KeySigner {
        key: SigningKey::from_bytes(&[0x4c; 32].into()).unwrap(),
        asked: Mutex::new(Vec::new()),
    }
}

fn offline_reader() -> BalanceReader {
    common::reader_for(
        Chain::BaseSepolia,
        &common::closed_port_url(),
        Duration::from_secs(2),
    )
}

async fn build_and_sign(
    req: Value,
    limit: Option<&str>,
    reader: &BalanceReader,
    signer: &KeySigner,
    now: u64,
) -> Result<Value, BuildError> {
    let r = payment::parse(&input("2", req, limit)).unwrap();
    let payer = checksum_address(&eth_address(&signer.key));
    let unsigned = r
        .kind
        .build(&BuildContext {
            payer: &payer,
            now,
            chains: reader,
            signer,
        })
        .await?;
    let to_sign = unsigned.to_sign();
    let ToSign::TypedData { digest } = &to_sign else {
        panic!("a permit is typed data: {to_sign:?}");
    };
    let typed_data = unsigned.typed_data().expect("a permit has its typed data");
    assert_eq!(typed_data["primaryType"], "PermitWitnessTransferFrom");
    assert_eq!(typed_data["domain"]["name"], "Permit2");
    assert_eq!(typed_data["domain"]["verifyingContract"], PERMIT2_ADDRESS);
    assert!(typed_data["domain"].get("version").is_none());
    let sig = sign(&signer.key, digest);
    let out = unsigned.finish(&Signature::Secp256k1(sig)).unwrap();
    // the payload's own values give the digest that was signed, and it recovers the payer
    let a = &out["permit2Authorization"];
    let mut nonce = [0u8; 32];
    let n: num_from_decimal::U = a["nonce"].as_str().unwrap().parse().unwrap();
    nonce.copy_from_slice(&n.0);
    let auth = Permit2Authorization {
        from: addr(a["from"].as_str().unwrap()),
        token: addr(a["permitted"]["token"].as_str().unwrap()),
        amount: a["permitted"]["amount"].as_str().unwrap().parse().unwrap(),
        spender: addr(a["spender"].as_str().unwrap()),
        nonce,
        deadline: a["deadline"].as_str().unwrap().parse().unwrap(),
        to: addr(a["witness"]["to"].as_str().unwrap()),
        facilitator: a["witness"]
            .get("facilitator")
            .map(|f| addr(f.as_str().unwrap())),
        valid_after: a["witness"]["validAfter"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    };
    assert_eq!(&permit2_digest(84532, &auth), digest);
    assert_eq!(recover(digest, &sig), eth_address(&signer.key));
    Ok(out)
}

/// Decimal -> 256-bit, independent of the crate's helper.
mod num_from_decimal {
    pub struct U(pub [u8; 32]);
    impl std::str::FromStr for U {
        type Err = ();
        fn from_str(s: &str) -> Result<U, ()> {
            let mut out = [0u8; 32];
            for d in s.bytes() {
                if !d.is_ascii_digit() {
                    return Err(());
                }
                let mut carry = (d - b'0') as u32;
                for b in out.iter_mut().rev() {
                    let v = *b as u32 * 10 + carry;
                    *b = v as u8;
                    carry = v >> 8;
                }
                if carry != 0 {
                    return Err(());
                }
            }
            Ok(U(out))
        }
    }
}

#[tokio::test]
async fn upto_payload_has_the_reference_shape() {
    let signer = key_signer();
    let reader = offline_reader();
    let now = 1_800_000_000;
    let out = build_and_sign(upto(), None, &reader, &signer, now)
        .await
        .unwrap();
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 2, "{out}");
    assert!(out["signature"].as_str().unwrap().len() == 132);
    let a = &out["permit2Authorization"];
    assert_eq!(a["from"], "0xdB00079cad3e665853Bf766eFe26F4C38cdbdCDA");
    assert_eq!(
        a["permitted"],
        json!({"token": USDC_BASE_SEPOLIA, "amount": "5000000"})
    );
    assert_eq!(a["spender"], UPTO_PROXY);
    assert_eq!(a["deadline"], (now + 300).to_string());
    assert_eq!(
        a["witness"],
        json!({"to": PAY_TO, "facilitator": FACILITATOR, "validAfter": "0"})
    );
    assert_eq!(a.as_object().unwrap().len(), 6, "{a}");
    let nonce = a["nonce"].as_str().unwrap();
    assert!(
        nonce.bytes().all(|b| b.is_ascii_digit()) && nonce.len() > 60,
        "{nonce}"
    );
    // a fresh nonce each time; nothing was asked of the chain (the reader points at a
    // closed port)
    let again = build_and_sign(upto(), None, &reader, &signer, now)
        .await
        .unwrap();
    assert_ne!(again["permit2Authorization"]["nonce"], a["nonce"]);

    let out = build_and_sign(exact_permit2(), None, &reader, &signer, now)
        .await
        .unwrap();
    let a = &out["permit2Authorization"];
    assert_eq!(a["spender"], EXACT_PROXY);
    assert_eq!(a["permitted"]["amount"], "125000");
    assert_eq!(a["witness"], json!({"to": PAY_TO, "validAfter": "0"}));
}

/// A chain that answers the approve's calls as a node would, and records them.
struct FakeChain {
    allowance: u128,
    estimate: u64,
    refuse_send: bool,
    receipt_status: &'static str,
}

async fn fake_chain(f: FakeChain) -> common::MockRpc {
    common::mock_rpc(move |req| {
        let id = req["id"].clone();
        let ok = |result: Value| {
            (
                200,
                json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
            )
        };
        match req["method"].as_str().unwrap() {
            "eth_call" => ok(json!(format!("0x{:064x}", f.allowance))),
            "eth_estimateGas" => ok(json!(format!("0x{:x}", f.estimate))),
            "eth_getTransactionCount" => ok(json!("0x7")),
            "eth_maxPriorityFeePerGas" => ok(json!("0xf4240")),
            "eth_feeHistory" => ok(
                json!({"oldestBlock": "0x10", "baseFeePerGas": ["0x1", "0x3b9aca00"],
                                          "gasUsedRatio": [0.5]}),
            ),
            "eth_sendRawTransaction" if f.refuse_send => (
                200,
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32003,
                      "message": "insufficient funds for gas * price + value"}})
                .to_string(),
            ),
            "eth_sendRawTransaction" => {
                let raw = hex::decode(&req["params"][0].as_str().unwrap()[2..]).unwrap();
                ok(json!(format!(
                    "0x{}",
                    hex::encode(sha3::Keccak256::digest(&raw))
                )))
            }
            "eth_getTransactionReceipt" => {
                ok(json!({"status": f.receipt_status, "blockNumber": "0x11"}))
            }
            other => (
                200,
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": other}})
                    .to_string(),
            ),
        }
    })
    .await
}

fn methods(rpc: &common::MockRpc) -> Vec<String> {
    rpc.requests()
        .iter()
        .map(|r| r["method"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_approve_is_sent_signed_and_awaited_before_the_permit() {
    let rpc = fake_chain(FakeChain {
        allowance: 5,
        estimate: 46_000,
        refuse_send: false,
        receipt_status: "0x1",
    })
    .await;
    let reader = common::reader_for(Chain::BaseSepolia, &rpc.url, Duration::from_secs(5));
    let signer = key_signer();
    build_and_sign(upto(), Some("1000000"), &reader, &signer, 1_800_000_000)
        .await
        .unwrap();
    assert_eq!(
        methods(&rpc),
        [
            "eth_call",
            "eth_estimateGas",
            "eth_getTransactionCount",
            "eth_maxPriorityFeePerGas",
            "eth_feeHistory",
            "eth_sendRawTransaction",
            "eth_getTransactionReceipt"
        ]
    );
    let reqs = rpc.requests();
    let payer = eth_address(&signer.key);
    // allowance(payer, Permit2) on the chain's USDC
    assert_eq!(reqs[0]["params"][0]["to"], USDC_BASE_SEPOLIA.to_lowercase());
    assert_eq!(
        reqs[0]["params"][0]["data"],
        format!(
            "0xdd62ed3e{:0>64}{:0>64}",
            hex::encode(payer),
            &PERMIT2_ADDRESS[2..].to_lowercase()
        )
    );
    assert_eq!(reqs[2]["params"][1], "pending");
    // the raw transaction: our fields (estimate + 20 %, 2 * base fee + tip, pending
    // nonce, chain id), signed by the payer
    let mut limit = [0u8; 32];
    limit[16..].copy_from_slice(&1_000_000u128.to_be_bytes());
    let tx = Eip1559Tx {
        chain_id: 84532,
        nonce: 7,
        max_priority_fee_per_gas: 1_000_000,
        max_fee_per_gas: 2 * 1_000_000_000 + 1_000_000,
        gas_limit: 46_000 + 9_200,
        to: addr(USDC_BASE_SEPOLIA),
        value: 0,
        data: erc20_approve_calldata(&addr(PERMIT2_ADDRESS), &limit),
    };
    let sig = sign(&signer.key, &tx.signing_hash());
    assert_eq!(
        reqs[5]["params"][0],
        format!("0x{}", hex::encode(tx.signed_envelope(&sig)))
    );
    // the approve was signed first, then the permit
    let asked = signer.asked.lock().unwrap();
    assert!(matches!(asked[0], ToSign::EvmTransaction { .. }));
}

#[tokio::test]
async fn no_approve_when_the_allowance_already_is_the_limit() {
    let rpc = fake_chain(FakeChain {
        allowance: 1_000_000,
        estimate: 46_000,
        refuse_send: false,
        receipt_status: "0x1",
    })
    .await;
    let reader = common::reader_for(Chain::BaseSepolia, &rpc.url, Duration::from_secs(5));
    build_and_sign(
        upto(),
        Some("1000000"),
        &reader,
        &key_signer(),
        1_800_000_000,
    )
    .await
    .unwrap();
    assert_eq!(methods(&rpc), ["eth_call"]);
    // a larger allowance is lowered to the limit
    let rpc = fake_chain(FakeChain {
        allowance: 2_000_000,
        estimate: 46_000,
        refuse_send: false,
        receipt_status: "0x1",
    })
    .await;
    let reader = common::reader_for(Chain::BaseSepolia, &rpc.url, Duration::from_secs(5));
    build_and_sign(
        upto(),
        Some("1000000"),
        &reader,
        &key_signer(),
        1_800_000_000,
    )
    .await
    .unwrap();
    assert!(methods(&rpc).contains(&"eth_sendRawTransaction".to_string()));
}

#[tokio::test]
async fn a_refused_or_reverted_approve_is_a_validation_error() {
    for (refuse_send, status, says) in [
        (true, "0x1", "insufficient funds"),
        (false, "0x0", "reverted"),
    ] {
        let rpc = fake_chain(FakeChain {
            allowance: 0,
            estimate: 46_000,
            refuse_send,
            receipt_status: status,
        })
        .await;
        let reader = common::reader_for(Chain::BaseSepolia, &rpc.url, Duration::from_secs(5));
        let signer = key_signer();
        match build_and_sign(upto(), Some("1000000"), &reader, &signer, 1_800_000_000).await {
            Err(BuildError::Input(e)) => {
                assert_eq!(e.field, LIMIT);
                assert!(e.message.contains(says), "{}", e.message);
                assert!(
                    e.message.contains("No budget was consumed"),
                    "{}",
                    e.message
                );
            }
            other => panic!("{other:?}"),
        }
        // the permit was never signed
        assert_eq!(signer.asked.lock().unwrap().len(), 1);
    }
    // an absurd gas estimate is not sent
    let rpc = fake_chain(FakeChain {
        allowance: 0,
        estimate: 5_000_000,
        refuse_send: false,
        receipt_status: "0x1",
    })
    .await;
    let reader = common::reader_for(Chain::BaseSepolia, &rpc.url, Duration::from_secs(5));
    match build_and_sign(
        upto(),
        Some("1000000"),
        &reader,
        &key_signer(),
        1_800_000_000,
    )
    .await
    {
        Err(BuildError::Chain(e)) => assert!(e.message().contains("gas"), "{}", e.message()),
        other => panic!("{other:?}"),
    }
    assert!(!methods(&rpc).contains(&"eth_sendRawTransaction".to_string()));
    // an unreachable chain is a chain error (internal), not a validation error
    match build_and_sign(upto(), Some("1000000"), &offline_reader(), &key_signer(), 1).await {
        Err(BuildError::Chain(_)) => {}
        other => panic!("{other:?}"),
    }
}
