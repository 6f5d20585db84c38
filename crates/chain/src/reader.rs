//! Reading USDC balances over JSON-RPC.

use std::collections::HashSet;
use std::error::Error as _;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Url;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::json;

use crate::chain::{Chain, Family, USDC_DECIMALS, is_evm_address, is_solana_address};
use crate::config::{ConfigError, RpcConfig, redact};
use crate::error::{ChainError, ChainErrorKind, clip};

/// The largest JSON-RPC answer read; anything larger is malformed for the
/// calls made here.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The ERC-20 `balanceOf(address)` selector.
const BALANCE_OF_SELECTOR: &str = "70a08231";

/// Reads USDC balances from each chain's JSON-RPC endpoint.
///
/// Holds one HTTP client (connection pool) for its lifetime: build it once and
/// share it (`Arc<BalanceReader>`).
#[derive(Debug)]
pub struct BalanceReader {
    client: reqwest::Client,
    config: RpcConfig,
    next_id: AtomicU64,
}

impl BalanceReader {
    /// Builds the HTTP client for `config`. It uses rustls with the Mozilla
    /// root certificates (webpki-roots), ignores `*_PROXY` environment
    /// variables, follows no redirects and applies `config.timeout()` to every
    /// request.
    pub fn new(config: RpcConfig) -> Result<BalanceReader, ConfigError> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout())
            .timeout(config.timeout())
            .user_agent(concat!("purser/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Client(e.without_url().to_string()))?;
        Ok(BalanceReader {
            client,
            config,
            next_id: AtomicU64::new(1),
        })
    }

    /// The configuration this reader was built with.
    pub fn config(&self) -> &RpcConfig {
        &self.config
    }

    /// The USDC balance of `owner` on `chain`, in atomic units (6 decimals:
    /// `1_500_000` is 1.5 USDC). Render it with `to_string()` for the API's
    /// decimal-string `amount`.
    ///
    /// * EVM chains: `eth_call` of `balanceOf(owner)` on the chain's USDC
    ///   contract at block `latest`. `owner` must be `0x` + 40 hex digits. A
    ///   balance above `u128::MAX` (impossible for real USDC) is an error.
    /// * Solana: `getTokenAccountsByOwner(owner, {mint}, {encoding: jsonParsed})`
    ///   summed exactly over every token account of the USDC mint. `owner`
    ///   must be base58 of 32 bytes.
    ///
    /// Never takes longer than the configured timeout (plus scheduling).
    pub async fn usdc_balance(&self, chain: Chain, owner: &str) -> Result<u128, ChainError> {
        match chain.family() {
            Family::Ethereum => self.evm_usdc_balance(chain, owner).await,
            Family::Solana => self.solana_usdc_balance(chain, owner).await,
        }
    }

    async fn evm_usdc_balance(&self, chain: Chain, owner: &str) -> Result<u128, ChainError> {
        if !is_evm_address(owner) {
            return Err(invalid_owner(chain, owner));
        }
        let data = format!(
            "0x{BALANCE_OF_SELECTOR}{:0>64}",
            owner[2..].to_ascii_lowercase()
        );
        let to = chain.usdc_address().to_ascii_lowercase();
        let result: String = self
            .call(
                chain,
                "eth_call",
                json!([{ "to": to, "data": data }, "latest"]),
            )
            .await?;
        decode_balance_word(chain, &result).map_err(|detail| self.malformed(chain, detail))
    }

    async fn solana_usdc_balance(&self, chain: Chain, owner: &str) -> Result<u128, ChainError> {
        if !is_solana_address(owner) {
            return Err(invalid_owner(chain, owner));
        }
        let mint = chain.usdc_address();
        let result: RpcContextValue<Vec<KeyedAccount>> = self
            .call(
                chain,
                "getTokenAccountsByOwner",
                json!([owner, { "mint": mint }, { "encoding": "jsonParsed" }]),
            )
            .await?;
        sum_token_accounts(&result.value, owner, mint)
            .map_err(|detail| self.malformed(chain, detail))
    }

    /// A recent blockhash of a Solana chain (`getLatestBlockhash` at `confirmed`
    /// commitment), the lifetime of a transaction built now. Same timeout, redaction
    /// and size rules as the balance reads; the answer must carry a base58 32-byte
    /// `value.blockhash`.
    pub async fn solana_latest_blockhash(&self, chain: Chain) -> Result<[u8; 32], ChainError> {
        if chain.family() != Family::Solana {
            return Err(self.malformed(
                chain,
                "getLatestBlockhash is only asked of Solana chains".to_string(),
            ));
        }
        let result: RpcContextValue<LatestBlockhash> = self
            .call(
                chain,
                "getLatestBlockhash",
                json!([{ "commitment": "confirmed" }]),
            )
            .await?;
        decode_blockhash(&result.value.blockhash).map_err(|detail| self.malformed(chain, detail))
    }

    fn endpoint(&self, chain: Chain) -> String {
        redact(self.config.parsed_url(chain))
    }

    fn error(&self, chain: Chain, kind: ChainErrorKind) -> ChainError {
        ChainError::new(chain, Some(self.endpoint(chain)), kind)
    }

    fn malformed(&self, chain: Chain, detail: String) -> ChainError {
        self.error(chain, ChainErrorKind::Malformed { detail })
    }

    /// One JSON-RPC request; returns the `result` member parsed as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        chain: Chain,
        method: &str,
        params: serde_json::Value,
    ) -> Result<T, ChainError> {
        let url = self.config.parsed_url(chain);
        let timeout = self.config.timeout();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let body = serde_json::to_vec(&body).expect("a JSON value always serializes");

        let exchange = async {
            let mut response = self
                .client
                .post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| transport_error(&e, url, timeout))?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(ChainErrorKind::HttpStatus {
                    status: response.status().as_u16(),
                });
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| transport_error(&e, url, timeout))?
            {
                if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(ChainErrorKind::Malformed {
                        detail: format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        // reqwest's own timeout covers the whole exchange too; this outer one
        // makes the bound independent of how the transport reports it.
        let bytes = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(kind)) => return Err(self.error(chain, kind)),
            Err(_elapsed) => {
                return Err(self.error(chain, ChainErrorKind::Timeout { after: timeout }));
            }
        };
        parse_rpc_answer(&bytes).map_err(|kind| self.error(chain, kind))
    }
}

// ---- EVM transactions (x402 upto's `approve(Permit2, limit)`; see `x402::upto_evm`) ----
// Every call goes through `call`: same timeout, redaction and response size limit.

/// The receipt fields Purser reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmReceipt {
    /// `status`: true for success (0x1), false for a reverted transaction (0x0).
    pub success: bool,
    /// The block the transaction was mined in.
    pub block_number: u64,
}

impl BalanceReader {
    /// `eth_call` at `latest`; returns the raw return data.
    pub async fn evm_call(
        &self,
        chain: Chain,
        to: &[u8; 20],
        data: &[u8],
    ) -> Result<Vec<u8>, ChainError> {
        let result: String = self
            .call(
                chain,
                "eth_call",
                json!([{ "to": hex0x(to), "data": hex0x(data) }, "latest"]),
            )
            .await?;
        decode_hex_data(&result).map_err(|d| self.malformed(chain, d))
    }

    /// ERC-20 `allowance(owner, spender)` of `token`, as a 256-bit big-endian word.
    pub async fn erc20_allowance(
        &self,
        chain: Chain,
        token: &[u8; 20],
        owner: &[u8; 20],
        spender: &[u8; 20],
    ) -> Result<[u8; 32], ChainError> {
        let mut data = vec![0xdd, 0x62, 0xed, 0x3e];
        data.extend_from_slice(&[0u8; 12]);
        data.extend_from_slice(owner);
        data.extend_from_slice(&[0u8; 12]);
        data.extend_from_slice(spender);
        let out = self.evm_call(chain, token, &data).await?;
        <[u8; 32]>::try_from(out.as_slice()).map_err(|_| {
            self.malformed(
                chain,
                format!("allowance returned {} bytes, not a uint256", out.len()),
            )
        })
    }

    /// `eth_getTransactionCount(address, "pending")`: the next nonce.
    pub async fn evm_pending_nonce(
        &self,
        chain: Chain,
        address: &[u8; 20],
    ) -> Result<u64, ChainError> {
        let q: String = self
            .call(
                chain,
                "eth_getTransactionCount",
                json!([hex0x(address), "pending"]),
            )
            .await?;
        self.quantity_u64(chain, &q)
    }

    /// `eth_maxPriorityFeePerGas`, in wei.
    pub async fn evm_max_priority_fee(&self, chain: Chain) -> Result<u128, ChainError> {
        let q: String = self
            .call(chain, "eth_maxPriorityFeePerGas", json!([]))
            .await?;
        parse_quantity(&q).map_err(|d| self.malformed(chain, d))
    }

    /// The base fee of the next block: the last entry of
    /// `eth_feeHistory(1, "latest", []).baseFeePerGas`, in wei.
    pub async fn evm_next_base_fee(&self, chain: Chain) -> Result<u128, ChainError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct FeeHistory {
            base_fee_per_gas: Vec<String>,
        }
        let h: FeeHistory = self
            .call(chain, "eth_feeHistory", json!(["0x1", "latest", []]))
            .await?;
        let last = h
            .base_fee_per_gas
            .last()
            .ok_or_else(|| self.malformed(chain, "eth_feeHistory has no baseFeePerGas".into()))?;
        parse_quantity(last).map_err(|d| self.malformed(chain, d))
    }

    /// `eth_estimateGas({from, to, data})`.
    pub async fn evm_estimate_gas(
        &self,
        chain: Chain,
        from: &[u8; 20],
        to: &[u8; 20],
        data: &[u8],
    ) -> Result<u64, ChainError> {
        self.evm_estimate_gas_of(
            chain,
            json!({ "from": hex0x(from), "to": hex0x(to), "data": hex0x(data) }),
        )
        .await
    }

    /// `eth_estimateGas(request)` of a transaction request given as JSON (a Tempo
    /// transaction's `calls`, `nonceKey`, `validBefore`, ...).
    pub async fn evm_estimate_gas_of(
        &self,
        chain: Chain,
        request: serde_json::Value,
    ) -> Result<u64, ChainError> {
        let q: String = self
            .call(chain, "eth_estimateGas", json!([request]))
            .await?;
        self.quantity_u64(chain, &q)
    }

    /// `eth_sendRawTransaction`; returns the transaction hash the node reports.
    pub async fn evm_send_raw_transaction(
        &self,
        chain: Chain,
        raw: &[u8],
    ) -> Result<[u8; 32], ChainError> {
        let h: String = self
            .call(chain, "eth_sendRawTransaction", json!([hex0x(raw)]))
            .await?;
        let bytes = decode_hex_data(&h).map_err(|d| self.malformed(chain, d))?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| self.malformed(chain, "the transaction hash is not 32 bytes".into()))
    }

    /// `eth_getTransactionReceipt`; `None` while the transaction is not mined.
    pub async fn evm_receipt(
        &self,
        chain: Chain,
        tx_hash: &[u8; 32],
    ) -> Result<Option<EvmReceipt>, ChainError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Receipt {
            status: Option<String>,
            block_number: Option<String>,
        }
        let r: Option<Receipt> = self
            .call(chain, "eth_getTransactionReceipt", json!([hex0x(tx_hash)]))
            .await?;
        let Some(r) = r else { return Ok(None) };
        let Some(block) = r.block_number else {
            return Ok(None);
        };
        let block_number = self.quantity_u64(chain, &block)?;
        let status = r
            .status
            .ok_or_else(|| self.malformed(chain, "the receipt has no status".into()))?;
        let success = match parse_quantity(&status).map_err(|d| self.malformed(chain, d))? {
            1 => true,
            0 => false,
            other => {
                return Err(self.malformed(chain, format!("receipt status {other}")));
            }
        };
        Ok(Some(EvmReceipt {
            success,
            block_number,
        }))
    }

    fn quantity_u64(&self, chain: Chain, q: &str) -> Result<u64, ChainError> {
        let v = parse_quantity(q).map_err(|d| self.malformed(chain, d))?;
        u64::try_from(v)
            .map_err(|_| self.malformed(chain, format!("{} does not fit 64 bits", clip(q, 80))))
    }
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// A JSON-RPC quantity (`0x` + hex digits, at most 128 bits).
fn parse_quantity(q: &str) -> Result<u128, String> {
    let Some(h) = q.strip_prefix("0x") else {
        return Err(format!("{:?} is not a 0x quantity", clip(q, 80)));
    };
    if h.is_empty() || h.len() > 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{:?} is not a 128-bit 0x quantity", clip(q, 80)));
    }
    u128::from_str_radix(h, 16).map_err(|e| format!("bad quantity ({e})"))
}

/// `0x`-prefixed hex data of even length.
fn decode_hex_data(s: &str) -> Result<Vec<u8>, String> {
    let Some(h) = s.strip_prefix("0x") else {
        return Err("the result is not 0x-prefixed hex".to_string());
    };
    hex::decode(h).map_err(|_| format!("{:?} is not hex data", clip(s, 80)))
}

fn invalid_owner(chain: Chain, owner: &str) -> ChainError {
    ChainError::new(
        chain,
        None,
        ChainErrorKind::InvalidOwner {
            owner: owner.chars().take(100).collect(),
        },
    )
}

/// Maps a transport error to a kind whose text holds no part of the URL.
fn transport_error(e: &reqwest::Error, url: &Url, timeout: std::time::Duration) -> ChainErrorKind {
    if e.is_timeout() {
        return ChainErrorKind::Timeout { after: timeout };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return ChainErrorKind::ConnectionRefused,
                io::ErrorKind::TimedOut => return ChainErrorKind::Timeout { after: timeout },
                _ => {}
            }
        }
        source = err.source();
    }
    // reqwest::Error's Display carries the URL; describe the causes instead.
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.iter().any(|p| p == &text) {
            parts.push(text);
        }
        source = err.source();
    }
    if parts.is_empty() {
        parts.push(if e.is_connect() {
            "connection failed".to_string()
        } else {
            "the HTTP exchange failed".to_string()
        });
    }
    ChainErrorKind::Unreachable {
        detail: clip(&scrub(&parts.join(": "), url), 300),
    }
}

/// Removes anything of `url` that may be secret from `text`.
fn scrub(text: &str, url: &Url) -> String {
    let mut text = text.replace(url.as_str(), &redact(url));
    let secrets = [
        url.path(),
        url.query().unwrap_or(""),
        url.username(),
        url.password().unwrap_or(""),
    ];
    for secret in secrets {
        if secret.len() >= 4 {
            text = text.replace(secret, "<redacted>");
        }
    }
    text
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    error: Option<RpcErrorObject>,
    #[serde(default)]
    result: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RpcErrorObject {
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct Typed<T> {
    result: T,
}

fn parse_rpc_answer<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ChainErrorKind> {
    let malformed = |detail: String| ChainErrorKind::Malformed {
        detail: clip(&detail, 200),
    };
    let envelope: Envelope = serde_json::from_slice(bytes)
        .map_err(|e| malformed(format!("not a JSON-RPC response ({e})")))?;
    if let Some(error) = envelope.error {
        return Err(ChainErrorKind::JsonRpc {
            code: error.code,
            message: clip(&error.message, 300),
        });
    }
    if envelope.result.is_none() {
        return Err(malformed(
            "it has neither a result nor an error".to_string(),
        ));
    }
    let typed: Typed<T> =
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("unexpected result ({e})")))?;
    Ok(typed.result)
}

/// Decodes the ABI `uint256` that `balanceOf` returns.
fn decode_balance_word(chain: Chain, result: &str) -> Result<u128, String> {
    let Some(hex) = result.strip_prefix("0x") else {
        return Err("the eth_call result is not 0x-prefixed hex".to_string());
    };
    if hex.is_empty() {
        return Err(format!(
            "eth_call returned no data (is there a USDC contract at {} on this chain?)",
            chain.usdc_address()
        ));
    }
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "expected a 32-byte uint256 from balanceOf, got {} hex characters",
            hex.len()
        ));
    }
    let (high, low) = hex.split_at(32);
    if high.bytes().any(|b| b != b'0') {
        return Err("the balance does not fit in 128 bits".to_string());
    }
    u128::from_str_radix(low, 16).map_err(|e| format!("bad uint256 ({e})"))
}

#[derive(Deserialize)]
struct RpcContextValue<T> {
    value: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LatestBlockhash {
    blockhash: String,
}

/// A blockhash: base58 of exactly 32 bytes.
fn decode_blockhash(text: &str) -> Result<[u8; 32], String> {
    let bad = || {
        format!(
            "the blockhash {:?} is not base58 of 32 bytes",
            clip(text, 60)
        )
    };
    if text.len() > 44 {
        return Err(bad());
    }
    let bytes = bs58::decode(text).into_vec().map_err(|_| bad())?;
    bytes.try_into().map_err(|_| bad())
}

#[derive(Deserialize)]
struct KeyedAccount {
    pubkey: String,
    account: Account,
}

#[derive(Deserialize)]
struct Account {
    data: AccountData,
}

#[derive(Deserialize)]
struct AccountData {
    program: String,
    parsed: ParsedAccount,
}

#[derive(Deserialize)]
struct ParsedAccount {
    #[serde(rename = "type")]
    kind: String,
    info: TokenAccountInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenAccountInfo {
    mint: String,
    owner: String,
    token_amount: TokenAmount,
}

#[derive(Deserialize)]
struct TokenAmount {
    amount: String,
    decimals: u8,
}

/// Sums the token accounts exactly, checking each one really is a USDC
/// account of `owner`.
fn sum_token_accounts(accounts: &[KeyedAccount], owner: &str, mint: &str) -> Result<u128, String> {
    let mut seen = HashSet::new();
    let mut total: u128 = 0;
    for keyed in accounts {
        let name = clip(&keyed.pubkey, 50);
        if !seen.insert(keyed.pubkey.as_str()) {
            return Err(format!("token account {name} is listed twice"));
        }
        let data = &keyed.account.data;
        if data.program != "spl-token" && data.program != "spl-token-2022" {
            return Err(format!(
                "token account {name} belongs to program {:?}",
                clip(&data.program, 50)
            ));
        }
        if data.parsed.kind != "account" {
            return Err(format!("token account {name} is not a token account"));
        }
        let info = &data.parsed.info;
        if info.mint != mint {
            return Err(format!(
                "token account {name} holds mint {}, not USDC",
                clip(&info.mint, 50)
            ));
        }
        if info.owner != owner {
            return Err(format!("token account {name} belongs to another owner"));
        }
        if info.token_amount.decimals != USDC_DECIMALS {
            return Err(format!(
                "token account {name} reports {} decimals",
                info.token_amount.decimals
            ));
        }
        let amount = parse_atomic_amount(&info.token_amount.amount).ok_or_else(|| {
            format!(
                "token account {name} has amount {:?}",
                clip(&info.token_amount.amount, 50)
            )
        })?;
        total = total
            .checked_add(amount)
            .ok_or_else(|| "the total overflows 128 bits".to_string())?;
    }
    Ok(total)
}

/// A non-negative integer in plain decimal digits.
fn parse_atomic_amount(s: &str) -> Option<u128> {
    if s.is_empty() || s.len() > 39 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_words() {
        let word = |v: u128| format!("0x{v:064x}");
        assert_eq!(decode_balance_word(Chain::Base, &word(0)), Ok(0));
        assert_eq!(
            decode_balance_word(Chain::Base, &word(1_234_567)),
            Ok(1_234_567)
        );
        assert_eq!(
            decode_balance_word(Chain::Base, &word(u128::MAX)),
            Ok(u128::MAX)
        );
        let too_big = format!("0x{:031x}1{:032x}", 0, 0);
        assert!(
            decode_balance_word(Chain::Base, &too_big)
                .unwrap_err()
                .contains("128 bits")
        );
        assert!(
            decode_balance_word(Chain::Base, "0x")
                .unwrap_err()
                .contains("no data")
        );
        assert!(decode_balance_word(Chain::Base, "0x12").is_err());
        assert!(decode_balance_word(Chain::Base, &format!("0x+{:063x}", 1)).is_err());
        assert!(decode_balance_word(Chain::Base, &format!("{:064x}", 1)).is_err());
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_atomic_amount("0"), Some(0));
        assert_eq!(parse_atomic_amount("1500000"), Some(1_500_000));
        assert_eq!(
            parse_atomic_amount("340282366920938463463374607431768211455"),
            Some(u128::MAX)
        );
        for bad in ["", "+1", "-1", "1.5", "1e6", " 1", "0x10"] {
            assert_eq!(parse_atomic_amount(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_atomic_amount("340282366920938463463374607431768211456"),
            None
        );
    }

    #[test]
    fn rpc_envelopes() {
        let ok: Result<String, _> = parse_rpc_answer(br#"{"jsonrpc":"2.0","id":1,"result":"0x"}"#);
        assert_eq!(ok.unwrap(), "0x");
        let err: Result<String, _> = parse_rpc_answer(
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"execution reverted","data":1.5}}"#,
        );
        assert_eq!(
            err.unwrap_err(),
            ChainErrorKind::JsonRpc {
                code: -32000,
                message: "execution reverted".to_string()
            }
        );
        for bad in [
            &br#"{"jsonrpc":"2.0","id":1}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"result":null}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":5}"#,
            br#"<html>"#,
            br#"[{"jsonrpc":"2.0","id":1,"result":"0x"}]"#,
        ] {
            let r: Result<String, _> = parse_rpc_answer(bad);
            assert!(
                matches!(r, Err(ChainErrorKind::Malformed { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn blockhashes() {
        let hash = [7u8; 32];
        let text = bs58::encode(hash).into_string();
        assert_eq!(decode_blockhash(&text), Ok(hash));
        for bad in [
            "",
            "0OIl",
            "11111111111111111111111111111111111111111111111",
            &bs58::encode([7u8; 31]).into_string(),
            &bs58::encode([7u8; 33]).into_string(),
        ] {
            assert!(decode_blockhash(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scrubbing() {
        let url = Url::parse("https://rpc.example.com/v2/SECRETKEY?apikey=SECRET2").unwrap();
        let text = scrub(
            "failed for https://rpc.example.com/v2/SECRETKEY?apikey=SECRET2 and /v2/SECRETKEY",
            &url,
        );
        assert!(!text.contains("SECRET"), "{text}");
    }
}
