//! `purser-chain`: the chains Purser supports and USDC balances read from them.
//!
//! # Chain table
//!
//! [`Chain`] is the AgentCore `chain` enum (`BASE`, `BASE_SEPOLIA`, `ETHEREUM`,
//! `SOLANA`, `SOLANA_DEVNET`). Each chain knows its [`Family`], EVM chain id,
//! CAIP-2 id (x402 v2 `network`), x402 v1 network name, canonical USDC
//! contract address or mint, the USDC EIP-712 domain (EVM only), USDC decimals
//! (6), the environment variable of its RPC URL and a public default RPC URL:
//!
//! | chain | family | chain id | CAIP-2 | v1 name | USDC | EIP-712 | env var |
//! |---|---|---|---|---|---|---|---|
//! | `BASE` | `ETHEREUM` | 8453 | `eip155:8453` | `base` | `0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913` | `USD Coin`/`2` | `PURSER_RPC_BASE` |
//! | `BASE_SEPOLIA` | `ETHEREUM` | 84532 | `eip155:84532` | `base-sepolia` | `0x036CbD53842c5426634e7929541eC2318f3dCF7e` | `USDC`/`2` | `PURSER_RPC_BASE_SEPOLIA` |
//! | `ETHEREUM` | `ETHEREUM` | 1 | `eip155:1` | `ethereum` | `0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48` | `USD Coin`/`2` | `PURSER_RPC_ETHEREUM` |
//! | `SOLANA` | `SOLANA` | - | `solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp` | `solana` | `EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v` | - | `PURSER_RPC_SOLANA` |
//! | `SOLANA_DEVNET` | `SOLANA` | - | `solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1` | `solana-devnet` | `4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU` | - | `PURSER_RPC_SOLANA_DEVNET` |
//!
//! Beside them, [`Chain::TEMPO`]: Tempo (`TEMPO_4217`, chain id 4217) and Tempo Moderato
//! (`TEMPO_42431`, 42431), which AgentCore's enum does not have. They are paid only by
//! MPP `tempo` challenges (which name them by chain id), with RPC URLs from
//! `PURSER_RPC_TEMPO_4217` / `PURSER_RPC_TEMPO_42431`; no wire-name, x402 or EVM-USDC
//! lookup finds them ([`Chain::from_tempo_chain_id`], [`Chain::parse_config_name`] do).
//!
//! Lookups: [`Chain::parse`] (wire name), [`Chain::from_x402_v1_network`],
//! [`Chain::from_caip2`], [`Chain::from_x402_network`] (either) and
//! [`Chain::from_evm_chain_id`]. `Chain` serializes as its wire name.
//!
//! # Configuration
//!
//! [`RpcConfig`] holds one JSON-RPC URL per chain and a per-request timeout
//! (default 10 s). Start from [`RpcConfig::default`] (the public endpoints),
//! apply a configuration file's `HashMap<Chain, String>` with
//! [`RpcConfig::apply_urls`] and then the environment with
//! [`RpcConfig::apply_env`] (`PURSER_RPC_<CHAIN>`, and `PURSER_RPC_TIMEOUT_SECS`
//! in whole seconds), or use [`RpcConfig::from_env`] for defaults plus
//! environment. URLs must be absolute `http`/`https`. The public defaults are
//! rate limited; production deployments should configure their own.
//!
//! # Balances
//!
//! [`BalanceReader::usdc_balance`] returns the balance in atomic units as a
//! `u128` (6 decimals; the API's `amount` is its `to_string()`). Money is
//! integers throughout: no floating point is used, and Solana's `uiAmount`
//! floats are never read.
//!
//! * EVM: `eth_call` of `balanceOf(owner)` (selector `0x70a08231`, the owner
//!   left-padded to 32 bytes) on the chain's USDC contract at `latest`. The
//!   32-byte result is decoded as a uint256; a value above `u128::MAX` (more
//!   than any real USDC supply) is reported as a malformed result rather than
//!   truncated. An empty `0x` result (no contract at the address) is an error,
//!   not a zero balance.
//! * Solana: `getTokenAccountsByOwner` with
//!   `[owner, {"mint": <USDC mint>}, {"encoding": "jsonParsed"}]`; the decimal
//!   string `account.data.parsed.info.tokenAmount.amount` of every returned
//!   account is summed with checked integer arithmetic. Each account must be an
//!   `spl-token`/`spl-token-2022` account of that mint and owner with 6
//!   decimals, and appear once; anything else is a malformed result.
//!
//! Owners are validated before any request: `0x` + 40 hex digits (any case;
//! the EIP-55 checksum is not verified) or base58 of exactly 32 bytes.
//!
//! The reader's single `reqwest` client uses rustls with the webpki root
//! certificates, ignores `*_PROXY` variables (RPC traffic goes where the URL
//! says), follows no redirects and reads at most [`MAX_RESPONSE_BYTES`]. Every
//! request is bounded by the timeout, enforced both by the client and by an
//! outer `tokio::time::timeout`.
//!
//! # Errors
//!
//! [`ChainError::message`] names the chain and the endpoint reduced to
//! `scheme://host[:port]` (RPC providers put API keys in the path, query or
//! user info, which never appear), e.g.:
//!
//! * `BASE_SEPOLIA RPC at http://127.0.0.1:8545 did not answer within 10s`
//! * `BASE RPC at https://mainnet.base.org refused the connection`
//! * `SOLANA RPC at https://api.mainnet-beta.solana.com answered with HTTP status 429 (Too Many Requests)`
//! * `ETHEREUM RPC at https://ethereum-rpc.publicnode.com answered with JSON-RPC error -32000: ...`
//! * `SOLANA_DEVNET RPC at http://127.0.0.1:8899 answered with a malformed result: ...`
//! * `BASE owner address "0x12" is not a 0x-prefixed 20-byte hex address`
//!
//! [`ChainError::kind`] gives the structured [`ChainErrorKind`] (e.g. to map
//! HTTP 429 to throttling, or an invalid owner to a validation error).
//!
//! # Tests
//!
//! * `tests/evm_anvil.rs` starts the real anvil binary from
//!   `tests/chain/node_modules` (after `npm ci --prefix tests/chain`, or
//!   `PURSER_ANVIL_BIN`) on a free 127.0.0.1 port with chain id 84532, puts the
//!   TestUSDC runtime bytecode at Base Sepolia's USDC address with
//!   `anvil_setCode`, calls `initialize("USDC","2")` and `mint` from the first
//!   dev account, and reads balances back through [`BalanceReader`]. Without
//!   the binary it skips with a message, unless `CI` is set, when it fails.
//! * `tests/solana_rpc.rs` does **not** run an SVM: it serves a loopback
//!   JSON-RPC endpoint (axum, in the test process) that records the exact
//!   request Purser sends (method, owner, mint, encoding) and answers with a
//!   response of the real `getTokenAccountsByOwner` jsonParsed shape holding
//!   two token accounts (`"1500000"` + `"250000"` = 1750000).
//! * `tests/errors.rs` covers a closed port, a server that never answers and
//!   one that stalls mid-body (short timeouts), JSON-RPC errors, malformed
//!   results, HTTP 500, invalid owners and URL redaction.
//! * `tests/chain_table.rs` checks the table against `shared/docs/x402.md`.
//!
//! * `tests/x402.rs` checks [`x402`] (validation catalogue, EIP-712 digests
//!   against viem vectors, payload and header shapes) and
//!   `tests/x402_facilitator.rs` has the x402 reference facilitator
//!   (`@x402/evm`, on anvil) verify and settle authorizations whose digest
//!   this crate built and a test key signed (skipped without
//!   `tests/chain/node_modules` unless `CI` is set).
//! * `tests/x402_permit2.rs` checks `upto` and `exact` through Permit2: the
//!   catalogue, the Permit2 digests and the EIP-1559 approve against viem vectors,
//!   the built payload, and the `permit2AllowanceLimit` approve against a loopback
//!   JSON-RPC mock (on anvil and with the reference facilitator: the compat suite's
//!   `test_data_payments_upto.py`).
//!
//! All test traffic stays on 127.0.0.1.
//!
//! # x402 exact on EVM
//!
//! [`x402`] checks the x402 `PaymentRequirements` an agent picked
//! ([`parse_exact_evm`]), builds the EIP-3009 authorization
//! ([`authorization_for`]) and the EIP-712 digest a wallet signs
//! ([`transfer_with_authorization_digest`]), and shapes the scheme payload
//! ([`exact_evm_payload`]) and client header ([`x402_header`]). It holds no
//! key material.
//!
//! # x402 upto and exact through Permit2
//!
//! [`x402::parse_requirement`] sends `upto` and `exact` with
//! `extra.assetTransferMethod = "permit2"` to `x402/upto_evm.rs`: Permit2
//! `PermitWitnessTransferFrom` permits ([`x402::permit2`]), and for
//! `permit2AllowanceLimit` an ERC-20 `approve(Permit2, limit)` sent from the payer's
//! wallet before the permit is built ([`evm_tx`], and the `evm_*` calls of
//! [`BalanceReader`]).

mod chain;
mod config;
mod error;
pub mod evm_tx;
pub mod mpp;
pub mod payment;
mod reader;
pub mod x402;

pub use chain::{Chain, Eip712Domain, Family, USDC_DECIMALS, UnknownChain};
pub use config::{ConfigError, DEFAULT_TIMEOUT, RpcConfig, TIMEOUT_ENV_VAR};
pub use error::{ChainError, ChainErrorKind};
pub use reader::{BalanceReader, EvmReceipt, MAX_RESPONSE_BYTES};
pub use x402::{
    Authorization, ExactEvmRequirement, MAX_TIMEOUT_SECONDS, X402Error, authorization_for,
    checksum_address, domain_separator, exact_evm_payload, parse_exact_evm,
    transfer_with_authorization_digest, transfer_with_authorization_typed_data, x402_header,
};
