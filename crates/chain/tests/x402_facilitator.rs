//! End-to-end proof of `purser_chain::x402` against the x402 reference
//! implementation (`@x402/evm` / `@x402/core` 2.27.0 in tests/chain):
//!
//! * `reference_facilitator_verifies_and_settles_*`: start anvil through the
//!   tests/chain fixture (`python3 tests/chain/anvil.py exec -- ...`, which
//!   installs TestUSDC at the real USDC address), mint USDC to a test key's
//!   address, build the authorization and digest with this crate, sign the
//!   digest with k256 (v = 27 + recovery id), wrap `exact_evm_payload` with
//!   `x402_header` and have the reference facilitator verify and settle it:
//!   v2 through `node tests/chain/facilitator.mjs verify|settle <url>`, v1
//!   through the facilitator's `registerV1` + `ExactEvmSchemeV1`. Balances are
//!   read back with `BalanceReader`; a replay and a wrong-key signature must
//!   be refused.
//! * `reference_client_agrees`: the reference client (`ExactEvmScheme` /
//!   `ExactEvmSchemeV1` from `@x402/evm/exact[/v1]/client`) signs the same
//!   requirement with the same key; its authorization has our shape (EIP-55
//!   addresses, decimal strings, our validity window) and, fed through our
//!   digest and k256 (RFC 6979, deterministic), gives the same signature bytes.
//!   viem's `hashTypedData` of `transfer_with_authorization_typed_data` is our
//!   digest.
//!
//! Without tests/chain/node_modules (`npm ci --prefix tests/chain`) the tests
//! are skipped with a message, unless `CI` is set, when they fail. They need
//! `node` and `python3` on PATH.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use k256::ecdsa::SigningKey;
use purser_chain::x402::{
    Authorization, authorization_for, checksum_address, exact_evm_payload, parse_exact_evm,
    transfer_with_authorization_digest, transfer_with_authorization_typed_data, x402_header,
};
use purser_chain::{BalanceReader, Chain, RpcConfig};
use serde_json::{Value, json};

const PAY_TO: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture_dir() -> PathBuf {
    repo_root().join("tests/chain")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// False (after printing why) when the test must be skipped.
fn fixture_available(test: &str) -> bool {
    let modules = fixture_dir().join("node_modules");
    if modules.is_dir() {
        return true;
    }
    let msg = format!(
        "{} not found; run `npm ci --prefix tests/chain`",
        modules.display()
    );
    if in_ci() {
        panic!("{msg} (CI is set, so this is a failure, not a skip)");
    }
    eprintln!("SKIPPED {test}: {msg}");
    false
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ------------------------------------------------------------- the fixture

/// `python3 tests/chain/anvil.py exec --chain-id N -- python3 -c <print URL,
/// wait for stdin EOF>`: anvil with TestUSDC installed, alive until this is
/// dropped (closing stdin ends the command; anvil.py then stops anvil).
struct Fixture {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
}

impl Fixture {
    fn start(chain_id: u64) -> Fixture {
        let mut child = Command::new("python3")
            .arg(fixture_dir().join("anvil.py"))
            .args(["exec", "--chain-id", &chain_id.to_string(), "--"])
            .args([
                "python3",
                "-c",
                "import os, sys; print(os.environ['ANVIL_URL'], flush=True); sys.stdin.read()",
            ])
            .current_dir(fixture_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot run python3 tests/chain/anvil.py");
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("http://127.0.0.1:") => break line,
                Some(Ok(_)) => continue,
                _ => {
                    let status = child.wait();
                    panic!("anvil.py exec did not print an anvil URL (exit: {status:?})");
                }
            }
        };
        Fixture { child, stdin, url }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

async fn rpc(client: &reqwest::Client, url: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let bytes = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    let reply: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{method}: {e}"));
    assert!(reply.get("error").is_none(), "{method}: {reply}");
    reply["result"].clone()
}

/// TestUSDC `mint(to, amount)` from anvil's first dev account.
async fn mint(url: &str, token: &str, to: &[u8; 20], amount: u128) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let accounts = rpc(&client, url, "eth_accounts", json!([])).await;
    let data = format!("0x40c10f19{:0>64}{amount:064x}", hex::encode(to));
    let hash = rpc(
        &client,
        url,
        "eth_sendTransaction",
        json!([{"from": accounts[0], "to": token, "data": data}]),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let receipt = rpc(&client, url, "eth_getTransactionReceipt", json!([hash])).await;
        if !receipt.is_null() {
            assert_eq!(receipt["status"], "0x1", "mint reverted: {receipt}");
            return;
        }
        assert!(Instant::now() < deadline, "no receipt for mint {hash}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------- node

/// Runs `node <args>` in tests/chain with `stdin`, returning stdout as JSON.
fn node(args: &[&str], stdin: &Value) -> Value {
    let mut child = Command::new("node")
        .args(args)
        .current_dir(fixture_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("node {args:?} printed non-JSON ({e}):\n{stdout}\n{stderr}"))
}

/// An inline ES module run in tests/chain (so `@x402/*`, `viem` and
/// `./facilitator.mjs` resolve); it reads JSON on stdin.
fn node_module(script: &str, args: &[&str], stdin: &Value) -> Value {
    let mut all = vec!["--input-type=module", "-e", script];
    all.extend_from_slice(args);
    node(&all, stdin)
}

/// The v1 reference facilitator (`registerV1(network, new ExactEvmSchemeV1(signer))`),
/// verify then settle; prints `{verify, settle}`.
const V1_FACILITATOR: &str = r#"
import { x402Facilitator } from "@x402/core/facilitator";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/facilitator";
import { createLocalFacilitator } from "./facilitator.mjs";
import { toJson } from "./chain.mjs";
const url = process.argv[1];
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const { paymentPayload, paymentRequirements } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const { signer } = await createLocalFacilitator(url);
const facilitator = new x402Facilitator().registerV1(paymentRequirements.network, new ExactEvmSchemeV1(signer));
const verify = await facilitator.verify(paymentPayload, paymentRequirements);
const settle = await facilitator.settle(paymentPayload, paymentRequirements);
process.stdout.write(toJson({ verify, settle }) + "\n");
"#;

// ------------------------------------------------------------- signing

fn eth_address(key: &SigningKey) -> [u8; 20] {
    use sha3::Digest as _;
    let point = key.verifying_key().to_encoded_point(false);
    let hash = sha3::Keccak256::digest(&point.as_bytes()[1..]);
    hash[12..].try_into().unwrap()
}

/// r || s || v with v = 27 + recovery id (k256 gives low s).
fn sign(key: &SigningKey, digest: &[u8; 32]) -> [u8; 65] {
    let (sig, recid) = key.sign_prehash_recoverable(digest).unwrap();
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    out[64] = 27 + recid.to_byte();
    out
}

fn test_key(byte: u8) -> SigningKey {
    SigningKey::from_bytes(&[byte; 32].into()).unwrap()
}

fn nonce(tag: u8) -> [u8; 32] {
    let mut n = [0u8; 32];
    n[..8].copy_from_slice(&now_unix().to_be_bytes());
    n[8..16].copy_from_slice(&std::process::id().to_be_bytes().repeat(2));
    n[31] = tag;
    n
}

/// Builds, signs and wraps a payment exactly as Purser would: returns the
/// decoded client header (the facilitator's `paymentPayload`) and the
/// authorization.
fn pay(version: &str, requirement: &Value, key: &SigningKey, tag: u8) -> (Value, Authorization) {
    let req = parse_exact_evm(version, requirement, None).unwrap();
    let auth = authorization_for(&req, eth_address(key), now_unix(), nonce(tag));
    let digest = transfer_with_authorization_digest(&req, &auth);
    let scheme_payload = exact_evm_payload(&auth, &sign(key, &digest));
    let header = x402_header(req.version, requirement, &scheme_payload);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(header)
        .unwrap();
    (serde_json::from_slice(&decoded).unwrap(), auth)
}

fn v2_requirement(chain: Chain, amount: &str) -> Value {
    let extra = chain.usdc_eip712_domain().unwrap();
    json!({
        "scheme": "exact",
        "network": chain.caip2(),
        "amount": amount,
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 300,
        "asset": chain.usdc_address(),
        "extra": {"name": extra.name, "version": extra.version}
    })
}

fn v1_requirement(chain: Chain, amount: &str) -> Value {
    let extra = chain.usdc_eip712_domain().unwrap();
    json!({
        "scheme": "exact",
        "network": chain.x402_v1_network(),
        "maxAmountRequired": amount,
        "resource": "https://merchant.example/report",
        "description": "a report",
        "mimeType": "application/json",
        "payTo": PAY_TO.to_ascii_lowercase(),
        "maxTimeoutSeconds": 120,
        "asset": chain.usdc_address().to_ascii_lowercase(),
        "extra": {"name": extra.name, "version": extra.version}
    })
}

fn facilitator(op: &str, url: &str, payment_payload: &Value, requirements: &Value) -> Value {
    node(
        &["facilitator.mjs", op, url],
        &json!({"x402Version": payment_payload["x402Version"], "paymentPayload": payment_payload, "paymentRequirements": requirements}),
    )
}

async fn balance(url: &str, chain: Chain, owner: &str) -> u128 {
    let config = RpcConfig::default().with_url(chain, url).unwrap();
    BalanceReader::new(config)
        .unwrap()
        .usdc_balance(chain, owner)
        .await
        .unwrap()
}

/// v2 verify + settle on `chain`; returns the fixture for further checks.
async fn v2_round_trip(chain: Chain, key: &SigningKey) -> (Fixture, Value, Value) {
    let fixture = Fixture::start(chain.evm_chain_id().unwrap());
    let payer = eth_address(key);
    mint(&fixture.url, chain.usdc_address(), &payer, 10_000_000).await;

    let requirement = v2_requirement(chain, "125000");
    let (payment_payload, auth) = pay("2", &requirement, key, 1);
    assert_eq!(payment_payload["x402Version"], 2);
    assert_eq!(payment_payload["accepted"], requirement);
    assert_eq!(auth.valid_after, 0);

    let verified = facilitator("verify", &fixture.url, &payment_payload, &requirement);
    assert_eq!(verified["isValid"], true, "{verified}");
    assert_eq!(verified["payer"], checksum_address(&payer), "{verified}");
    let settled = facilitator("settle", &fixture.url, &payment_payload, &requirement);
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(settled["network"], chain.caip2(), "{settled}");
    assert!(
        settled["transaction"]
            .as_str()
            .is_some_and(|t| t.starts_with("0x") && t.len() == 66),
        "{settled}"
    );
    assert_eq!(balance(&fixture.url, chain, PAY_TO).await, 125_000);
    assert_eq!(
        balance(&fixture.url, chain, &checksum_address(&payer)).await,
        10_000_000 - 125_000
    );
    (fixture, payment_payload, requirement)
}

#[tokio::test]
async fn reference_facilitator_verifies_and_settles_base_sepolia() {
    if !fixture_available("reference_facilitator_verifies_and_settles_base_sepolia") {
        return;
    }
    let chain = Chain::BaseSepolia;
    let key = test_key(0x11);
    let payer = eth_address(&key);
    let (fixture, payment_payload, requirement) = v2_round_trip(chain, &key).await;
    let url = fixture.url.clone();

    // A replay is refused (the nonce is spent on chain).
    let replay = facilitator("verify", &url, &payment_payload, &requirement);
    assert_eq!(replay["isValid"], false, "{replay}");
    assert_eq!(
        replay["invalidReason"], "invalid_exact_evm_nonce_already_used",
        "{replay}"
    );

    // A signature by another key over our digest is refused: the facilitator
    // really recovers the signer from the digest it rebuilds.
    let req = parse_exact_evm("2", &requirement, None).unwrap();
    let auth = authorization_for(&req, payer, now_unix(), nonce(2));
    let digest = transfer_with_authorization_digest(&req, &auth);
    let forged = json!({
        "x402Version": 2,
        "accepted": requirement,
        "payload": exact_evm_payload(&auth, &sign(&test_key(0x22), &digest)),
    });
    let refused = facilitator("verify", &url, &forged, &requirement);
    assert_eq!(refused["isValid"], false, "{refused}");
    assert_eq!(
        refused["invalidReason"], "invalid_exact_evm_signature",
        "{refused}"
    );

    // v1: v1 network name, maxAmountRequired, lower-case payTo/asset in the
    // requirement; validAfter = now - 600. The v1 reference facilitator
    // (ExactEvmSchemeV1) verifies and settles the X-PAYMENT payload.
    let requirement = v1_requirement(chain, "250000");
    let (payment_payload, auth) = pay("1", &requirement, &key, 3);
    assert_eq!(payment_payload["x402Version"], 1);
    assert_eq!(payment_payload["scheme"], "exact");
    assert_eq!(payment_payload["network"], "base-sepolia");
    assert!(auth.valid_after > 0 && auth.valid_after <= now_unix() - 600);
    let out = node_module(
        V1_FACILITATOR,
        &[&url],
        &json!({"paymentPayload": payment_payload, "paymentRequirements": requirement}),
    );
    assert_eq!(out["verify"]["isValid"], true, "{out}");
    assert_eq!(out["settle"]["success"], true, "{out}");
    assert_eq!(out["settle"]["network"], "base-sepolia", "{out}");
    assert_eq!(balance(&url, chain, PAY_TO).await, 125_000 + 250_000);

    drop(fixture);
}

#[tokio::test]
async fn reference_facilitator_verifies_and_settles_ethereum() {
    if !fixture_available("reference_facilitator_verifies_and_settles_ethereum") {
        return;
    }
    // "USD Coin" domain, chain id 1.
    let (fixture, _, _) = v2_round_trip(Chain::Ethereum, &test_key(0x33)).await;
    drop(fixture);
}

/// The reference client signs the same requirements; its output has our
/// shape and window, and our digest + k256 reproduce its signature.
const REFERENCE_CLIENT: &str = r#"
import { privateKeyToAccount } from "viem/accounts";
import { hashTypedData } from "viem";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/client";
import { toJson } from "./chain.mjs";
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const account = privateKeyToAccount(input.key);
const before = Math.floor(Date.now() / 1000);
const v2 = await new ExactEvmScheme(account).createPaymentPayload(2, input.v2);
const v1 = await new ExactEvmSchemeV1(account).createPaymentPayload(1, input.v1);
const after = Math.floor(Date.now() / 1000);
const td = input.typedData;
const uints = new Set(["value", "validAfter", "validBefore"]);
const message = Object.fromEntries(Object.entries(td.message).map(([k, v]) => [k, uints.has(k) ? BigInt(v) : v]));
const digest = hashTypedData({ domain: td.domain, types: td.types, primaryType: td.primaryType, message });
process.stdout.write(toJson({ before, after, address: account.address, v2, v1, digest }) + "\n");
"#;

fn authorization_from_json(a: &Value) -> Authorization {
    let addr = |s: &Value| -> [u8; 20] {
        let mut out = [0u8; 20];
        hex::decode_to_slice(&s.as_str().unwrap()[2..], &mut out).unwrap();
        out
    };
    let num = |s: &Value| -> u64 { s.as_str().unwrap().parse().unwrap() };
    let mut nonce = [0u8; 32];
    hex::decode_to_slice(&a["nonce"].as_str().unwrap()[2..], &mut nonce).unwrap();
    Authorization {
        from: addr(&a["from"]),
        to: addr(&a["to"]),
        value: a["value"].as_str().unwrap().parse().unwrap(),
        valid_after: num(&a["validAfter"]),
        valid_before: num(&a["validBefore"]),
        nonce,
    }
}

#[test]
fn reference_client_agrees() {
    if !fixture_available("reference_client_agrees") {
        return;
    }
    let key = test_key(0x44);
    let from = eth_address(&key);
    // The reference client wants v2 `amount` and CAIP-2, v1 `maxAmountRequired`
    // and a v1 name; numbers as JSON numbers.
    let v2 = v2_requirement(Chain::Base, "4200");
    let v1 = v1_requirement(Chain::BaseSepolia, "99");
    let req2 = parse_exact_evm("2", &v2, None).unwrap();
    let req1 = parse_exact_evm("1", &v1, None).unwrap();
    let ours = authorization_for(&req2, from, now_unix(), [9; 32]);
    let out = node_module(
        REFERENCE_CLIENT,
        &[],
        &json!({
            "key": format!("0x{}", hex::encode([0x44u8; 32])),
            "v2": v2,
            "v1": v1,
            "typedData": transfer_with_authorization_typed_data(&req2, &ours),
        }),
    );
    let before = out["before"].as_u64().unwrap();
    let after = out["after"].as_u64().unwrap();
    assert_eq!(out["address"], checksum_address(&from));

    // viem's hashTypedData of our typed data JSON is our digest.
    assert_eq!(
        out["digest"],
        format!(
            "0x{}",
            hex::encode(transfer_with_authorization_digest(&req2, &ours))
        )
    );

    for (version, req, payload) in [(2u8, &req2, &out["v2"]), (1, &req1, &out["v1"])] {
        assert_eq!(payload["x402Version"], version, "{payload}");
        let theirs = &payload["payload"];
        let keys: Vec<&String> = theirs["authorization"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        let mut keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["from", "nonce", "to", "validAfter", "validBefore", "value"]
        );
        let auth = authorization_from_json(&theirs["authorization"]);
        assert_eq!(auth.from, from);
        assert_eq!(auth.value, req.amount);

        // Our window, at the reference client's clock.
        let now = auth.valid_before - req.max_timeout_seconds;
        assert!(
            (before..=after).contains(&now),
            "validBefore {} is not now + maxTimeoutSeconds",
            auth.valid_before
        );
        let mine = authorization_for(req, from, now, auth.nonce);
        assert_eq!(mine, auth, "v{version} window or fields differ");

        // Same JSON shape (EIP-55 addresses, decimal strings, lower-case hex),
        // and the same signature bytes from our digest + k256.
        let signature = sign(&key, &transfer_with_authorization_digest(req, &mine));
        assert_eq!(
            exact_evm_payload(&mine, &signature),
            *theirs,
            "v{version} payload differs from the reference client's"
        );
    }
    assert_eq!(out["v1"]["scheme"], "exact");
    assert_eq!(out["v1"]["network"], "base-sepolia");
}
