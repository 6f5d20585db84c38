//! EVM balances against a real anvil (from `npm ci --prefix tests/chain`) with
//! the TestUSDC runtime placed at Base Sepolia's USDC address.
//!
//! Without the anvil binary the test is skipped with a message, unless `CI` is
//! set, in which case it fails. `PURSER_ANVIL_BIN` overrides the binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use purser_chain::{BalanceReader, Chain, ChainErrorKind, RpcConfig};
use serde_json::{Value, json};

const CHAIN_ID: u64 = 84532;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn anvil_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PURSER_ANVIL_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let os = match std::env::consts::OS {
        "windows" => "win32",
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let exe = if os == "win32" { "anvil.exe" } else { "anvil" };
    repo_root()
        .join("tests/chain/node_modules/@foundry-rs")
        .join(format!("anvil-{os}-{arch}"))
        .join("bin")
        .join(exe)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A running anvil; killed by pid (and reaped) on drop.
struct Anvil {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Anvil {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    }
}

/// A JSON-RPC client for setting the chain up (not the code under test).
struct Rpc {
    client: reqwest::Client,
    url: String,
}

impl Rpc {
    async fn try_call(&self, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let reply: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if let Some(error) = reply.get("error") {
            return Err(format!("{method}: {error}"));
        }
        Ok(reply["result"].clone())
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .await
            .unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    /// Sends a transaction from `from` and waits for a successful receipt.
    async fn transact(&self, from: &str, to: &str, data: &str) {
        let hash = self
            .call(
                "eth_sendTransaction",
                json!([{"from": from, "to": to, "data": data}]),
            )
            .await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let receipt = self.call("eth_getTransactionReceipt", json!([hash])).await;
            if !receipt.is_null() {
                assert_eq!(receipt["status"], "0x1", "transaction reverted: {receipt}");
                return;
            }
            assert!(Instant::now() < deadline, "no receipt for {hash}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn start_anvil(binary: &Path, rpc_client: &reqwest::Client) -> Anvil {
    let mut last_error = String::new();
    for attempt in 0..3 {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "purser-chain-anvil-{}-{port}-{attempt}.log",
            std::process::id()
        ));
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--chain-id", &CHAIN_ID.to_string(), "--silent"])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut anvil = Anvil {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let rpc = Rpc {
            client: rpc_client.clone(),
            url: anvil.url.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = anvil.child.try_wait() {
                last_error = format!("anvil exited with {status}: {}", anvil.log_tail());
                break;
            }
            if let Ok(id) = rpc.try_call("eth_chainId", json!([])).await {
                assert_eq!(id, json!(format!("{CHAIN_ID:#x}")), "anvil chain id");
                return anvil;
            }
            if Instant::now() > deadline {
                last_error = format!(
                    "anvil did not answer on {} within 30s: {}",
                    anvil.url,
                    anvil.log_tail()
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("{last_error}");
}

fn pad_address(address: &str) -> String {
    format!(
        "{:0>64}",
        address.trim_start_matches("0x").to_ascii_lowercase()
    )
}

fn pad_string(s: &str) -> String {
    let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
    let padded_len = hex.len().div_ceil(64) * 64;
    format!("{:064x}{hex:0<padded_len$}", s.len())
}

/// `initialize(string,string)` calldata.
fn initialize_calldata(name: &str, version: &str) -> String {
    let name_tail = pad_string(name);
    let version_offset = 64 + name_tail.len() / 2;
    format!(
        "0x4cd88b76{:064x}{version_offset:064x}{name_tail}{}",
        64,
        pad_string(version)
    )
}

/// `mint(address,uint256)` calldata; `amount_hex` is the amount in hex (any width up to 64).
fn mint_calldata(to: &str, amount_hex: &str) -> String {
    format!("0x40c10f19{}{amount_hex:0>64}", pad_address(to))
}

#[tokio::test]
async fn usdc_balance_from_a_real_anvil() {
    let binary = anvil_binary();
    if !binary.is_file() {
        let msg = format!(
            "anvil binary not found at {}; run `npm ci --prefix tests/chain` (or set PURSER_ANVIL_BIN)",
            binary.display()
        );
        if in_ci() {
            panic!("{msg} (CI is set, so this is a failure, not a skip)");
        }
        eprintln!("SKIPPED usdc_balance_from_a_real_anvil: {msg}");
        return;
    }

    let setup_client = reqwest::Client::builder().no_proxy().build().unwrap();
    let anvil = start_anvil(&binary, &setup_client).await;
    let rpc = Rpc {
        client: setup_client,
        url: anvil.url.clone(),
    };

    // TestUSDC's runtime code at the real Base Sepolia USDC address.
    let usdc = Chain::BaseSepolia.usdc_address();
    let artifact: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/chain/contracts/TestUSDC.json")).unwrap(),
    )
    .unwrap();
    let code = artifact["deployedBytecode"].as_str().unwrap();
    assert!(code.starts_with("0x") && code.len() > 100);
    rpc.call("anvil_setCode", json!([usdc, code])).await;

    let accounts = rpc.call("eth_accounts", json!([])).await;
    let from = accounts[0].as_str().unwrap().to_string();
    rpc.transact(&from, usdc, &initialize_calldata("USDC", "2"))
        .await;
    let initialized = rpc
        .call(
            "eth_call",
            json!([{"to": usdc, "data": "0x158ef93e"}, "latest"]),
        )
        .await;
    assert_eq!(initialized, json!(format!("0x{:064x}", 1)));

    let funded = "0x1111111111111111111111111111111111111111";
    let whale = "0x2222222222222222222222222222222222222222";
    let absurd = "0x3333333333333333333333333333333333333333";
    let unfunded = "0x4444444444444444444444444444444444444444";
    rpc.transact(
        &from,
        usdc,
        &mint_calldata(funded, &format!("{:x}", 1_234_567)),
    )
    .await;
    let whale_amount: u128 = (1u128 << 70) + 5;
    rpc.transact(
        &from,
        usdc,
        &mint_calldata(whale, &format!("{whale_amount:x}")),
    )
    .await;
    // 2^130: more than a u128 holds.
    rpc.transact(&from, usdc, &mint_calldata(absurd, &format!("4{:032x}", 0)))
        .await;

    let config = RpcConfig::default()
        .with_url(Chain::BaseSepolia, &anvil.url)
        .unwrap()
        .with_url(Chain::Base, &anvil.url)
        .unwrap()
        .with_timeout(Duration::from_secs(10));
    let reader = BalanceReader::new(config).unwrap();

    assert_eq!(
        reader
            .usdc_balance(Chain::BaseSepolia, funded)
            .await
            .unwrap(),
        1_234_567
    );
    // Upper-case hex digits name the same account.
    assert_eq!(
        reader
            .usdc_balance(
                Chain::BaseSepolia,
                &funded.to_ascii_uppercase().replace("0X", "0x")
            )
            .await
            .unwrap(),
        1_234_567
    );
    assert_eq!(
        reader
            .usdc_balance(Chain::BaseSepolia, unfunded)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        reader
            .usdc_balance(Chain::BaseSepolia, whale)
            .await
            .unwrap(),
        whale_amount
    );

    let err = reader
        .usdc_balance(Chain::BaseSepolia, absurd)
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ChainErrorKind::Malformed { detail } if detail.contains("128 bits")),
        "{err}"
    );

    // BASE pointed at this chain: there is no contract at Base's USDC address,
    // and anvil answers the eth_call with "0x". That is an error, not zero.
    let err = reader.usdc_balance(Chain::Base, funded).await.unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "BASE RPC at {} answered with a malformed result: eth_call returned no data (is there a USDC contract at {} on this chain?)",
            anvil.url,
            Chain::Base.usdc_address()
        )
    );

    drop(anvil);
}
