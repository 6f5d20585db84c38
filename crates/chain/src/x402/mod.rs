//! x402 `exact` payments on EVM chains (EIP-3009 `transferWithAuthorization`).
//!
//! This module holds no key material. It checks the one x402
//! `PaymentRequirements` object an agent picked ([`parse_exact_evm`]), builds
//! the EIP-3009 authorization the wallet signs ([`authorization_for`]), its
//! EIP-712 digest ([`transfer_with_authorization_digest`]; the signer signs
//! these 32 bytes), the scheme payload returned to the agent
//! ([`exact_evm_payload`]) and, for clients and tests, the `X-PAYMENT` /
//! `PAYMENT-SIGNATURE` header value ([`x402_header`]).
//!
//! `upto` and `exact` through Permit2 (`extra.assetTransferMethod = "permit2"`)
//! are read by [`parse_requirement`] in `upto_evm` (rules there) and signed as
//! Permit2 witness permits ([`permit2`]); the members they share with EIP-3009
//! exact (network, amount, asset, payTo, maxTimeoutSeconds) follow the rules below.
//!
//! # Validation ([`parse_exact_evm`])
//!
//! Every error is an [`X402Error`] whose `field` is the full request path
//! (`paymentInput.cryptoX402.payload.payTo`, ...) and whose message names that
//! path and the problem. The checks, in order:
//!
//! * `version`: `"1"` or `"2"`.
//! * `payload`: a JSON object.
//! * `scheme`: required; `"exact"` (`"upto"` is refused here: [`parse_requirement`]
//!   reads it).
//! * `network`: an EVM chain of the [`Chain`] table, spelled either way in
//!   either version: a v1 name (`base-sepolia`) or CAIP-2 (`eip155:84532`).
//!   Solana networks are rejected here: `exact` on Solana is its own kind
//!   ([`exact_svm`]), to which [`parse_requirement`] routes it.
//! * `permit2AllowanceLimit` (a separate request member): only valid with
//!   `upto`, so any value is rejected for `exact`.
//! * the amount: `maxAmountRequired` (v1) or `amount` (v2); either member is
//!   accepted in either version, and when both are present they must be equal.
//!   A string of ASCII decimal digits (atomic units; leading zeros allowed),
//!   greater than 0, at most `u128::MAX`. JSON numbers are rejected (money is
//!   a decimal string, never a float).
//! * `asset`: the canonical USDC contract of the network (compared without
//!   regard to case).
//! * `payTo`: `0x` + 40 hex digits, not the zero address; when it mixes upper
//!   and lower case, its EIP-55 checksum must be valid.
//! * `maxTimeoutSeconds`: a positive whole number (JSON number or decimal
//!   string), at most [`MAX_TIMEOUT_SECONDS`] (24 hours). The authorization's
//!   `validBefore` is `now + maxTimeoutSeconds`, so this bounds how long a
//!   signed authorization stays usable.
//! * `extra.name` and `extra.version`: non-empty strings (the token's EIP-712
//!   domain), at most [`MAX_DOMAIN_FIELD_LEN`] bytes each. They are used as
//!   given (like the reference client): a wrong name gives a signature the
//!   token rejects, never one valid elsewhere.
//!
//! # Validity window ([`authorization_for`])
//!
//! Follows the x402 reference EVM client (`@x402/evm` 2.27.0):
//!
//! * v2 (`exact/client`, `createEIP3009Payload`): `validAfter = 0`,
//!   `validBefore = now + maxTimeoutSeconds`.
//! * v1 (`exact/v1/client`, `ExactEvmSchemeV1.createPaymentPayload`):
//!   `validAfter = now - 600`, `validBefore = now + maxTimeoutSeconds`.
//!
//! # Payload ([`exact_evm_payload`])
//!
//! `{"signature": "0x<130 hex>", "authorization": {"from", "to", "value",
//! "validAfter", "validBefore", "nonce"}}`: addresses EIP-55 checksummed (the
//! reference client emits viem's checksummed account address and
//! `getAddress(payTo)`), numbers as decimal strings, nonce and signature as
//! lower-case 0x-hex.

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha3::{Digest, Keccak256};

use crate::chain::{Chain, Family};
use crate::payment::{PaymentType, Requirement};

/// The request path of the x402 input.
const PREFIX: &str = "paymentInput.cryptoX402";
/// The request path of the requirement object.
const PAYLOAD: &str = "paymentInput.cryptoX402.payload";

/// The largest accepted `maxTimeoutSeconds`: 24 hours.
pub const MAX_TIMEOUT_SECONDS: u64 = 86_400;

/// The largest accepted `extra.name` / `extra.version`, in bytes.
pub const MAX_DOMAIN_FIELD_LEN: usize = 256;

/// How far before `now` a v1 authorization becomes valid (the reference v1
/// client's `validAfter = now - 600`).
pub const V1_VALID_AFTER_LEEWAY_SECONDS: u64 = 600;

/// A problem with the x402 input. `field` is the full request path (e.g.
/// `paymentInput.cryptoX402.payload.payTo`); `message` names it and says what
/// is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X402Error {
    /// The full request path of the offending member.
    pub field: String,
    /// A sentence naming the field and the problem.
    pub message: String,
}

impl X402Error {
    /// An error about `field` (the full request path).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> X402Error {
        X402Error {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for X402Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for X402Error {}

/// A checked x402 `exact` requirement on an EVM chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactEvmRequirement {
    /// The x402 protocol version (1 or 2).
    pub version: u8,
    /// The chain named by `network`.
    pub chain: Chain,
    /// `network` exactly as given (a v1 name or a CAIP-2 id).
    pub network: String,
    /// The amount in atomic units (USDC: 6 decimals).
    pub amount: u128,
    /// The recipient, EIP-55 checksummed.
    pub pay_to: String,
    /// The token contract (the chain's USDC), EIP-55 checksummed.
    pub asset: String,
    /// `maxTimeoutSeconds` (1..=[`MAX_TIMEOUT_SECONDS`]).
    pub max_timeout_seconds: u64,
    /// `extra.name`: the token's EIP-712 domain name.
    pub domain_name: String,
    /// `extra.version`: the token's EIP-712 domain version.
    pub domain_version: String,
}

impl ExactEvmRequirement {
    /// The EVM chain id of [`ExactEvmRequirement::chain`].
    pub fn chain_id(&self) -> u64 {
        self.chain
            .evm_chain_id()
            .expect("an ExactEvmRequirement is always on an EVM chain")
    }
}

/// An EIP-3009 `TransferWithAuthorization` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Authorization {
    /// The payer (the wallet that signs).
    pub from: [u8; 20],
    /// The recipient (`payTo`).
    pub to: [u8; 20],
    /// The amount in atomic units.
    pub value: u128,
    /// Unix seconds after which the authorization is valid.
    pub valid_after: u64,
    /// Unix seconds before which the authorization is valid.
    pub valid_before: u64,
    /// A random, single-use 32-byte nonce.
    pub nonce: [u8; 32],
}

fn quoted(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() > MAX {
        let head: String = s.chars().take(MAX).collect();
        format!("{:?}...", head)
    } else {
        format!("{s:?}")
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const EVM_NETWORKS: &str = "base, base-sepolia, ethereum, eip155:8453, eip155:84532 or eip155:1";

mod exact_evm;
pub mod exact_svm;
pub mod permit2;
mod upto_evm;

/// Reads the x402 requirement an agent picked, for whichever scheme and network it
/// names, as a [`Requirement`] of its kind (see [`crate::payment`]): `upto` and `exact`
/// through Permit2 (`upto_evm`), `exact` on Solana ([`exact_svm::parse_exact_svm`]),
/// `exact` on EVM chains with EIP-3009 ([`parse_exact_evm`], whose errors also cover
/// every scheme and network not supported).
pub fn parse_requirement(
    version: &str,
    payload: &Value,
    permit2_allowance_limit: Option<&str>,
) -> Result<Requirement, X402Error> {
    // upto, and exact through Permit2 (`extra.assetTransferMethod`): x402/upto_evm.rs
    if let Some(r) = upto_evm::parse_permit2_kinds(version, payload, permit2_allowance_limit) {
        return r;
    }
    // exact on a Solana network: x402/exact_svm.rs
    if exact_svm::applies(payload) {
        return exact_svm::parse_requirement(version, payload, permit2_allowance_limit);
    }
    let r = parse_exact_evm(version, payload, permit2_allowance_limit)?;
    let amount_member = if r.version == 1 {
        "maxAmountRequired"
    } else {
        "amount"
    };
    Ok(Requirement {
        payment_type: PaymentType::CryptoX402,
        version: r.version.to_string(),
        scheme: "exact".into(),
        chain: r.chain,
        network: r.network.clone(),
        payee: r.pay_to.clone(),
        asset: r.asset.clone(),
        amount: r.amount,
        debit: r.amount,
        amount_field: format!("{PAYLOAD}.{amount_member}"),
        kind: Box::new(exact_evm::ExactEvm(r)),
    })
}

/// Checks the x402 `PaymentRequirements` object an agent picked (`payload`)
/// for an `exact` payment on an EVM chain. `version` is
/// `paymentInput.cryptoX402.version`; `permit2_allowance_limit` is
/// `paymentInput.cryptoX402.permit2AllowanceLimit` when the request has that
/// member (any value is rejected, as it only applies to `upto`).
///
/// See the module documentation for every rule.
pub fn parse_exact_evm(
    version: &str,
    payload: &Value,
    permit2_allowance_limit: Option<&str>,
) -> Result<ExactEvmRequirement, X402Error> {
    let version = parse_version(version)?;
    let obj = payload_object(payload)?;

    // scheme
    let scheme = required_string(obj, "scheme", "(\"exact\" or \"upto\")")?;
    match scheme {
        "exact" => {}
        "upto" => {
            // `parse_requirement` sends upto to `upto_evm`; this function reads exact only.
            let field = format!("{PAYLOAD}.scheme");
            return Err(X402Error::new(
                &field,
                format!("{field} \"upto\" is not an EIP-3009 exact payment"),
            ));
        }
        other => {
            let field = format!("{PAYLOAD}.scheme");
            return Err(X402Error::new(
                &field,
                format!(
                    "{field} {} is not supported; only \"exact\" and \"upto\" are supported",
                    quoted(other)
                ),
            ));
        }
    }

    let (chain, network) = parse_evm_network(obj)?;
    reject_permit2_allowance_limit(permit2_allowance_limit)?;
    let p = parse_evm_payment(obj, version, chain, network)?;
    let (domain_name, domain_version) = parse_extra(obj)?;

    Ok(ExactEvmRequirement {
        version,
        chain,
        network: network.to_string(),
        amount: p.amount,
        pay_to: p.pay_to,
        asset: p.asset,
        max_timeout_seconds: p.max_timeout_seconds,
        domain_name,
        domain_version,
    })
}

/// `paymentInput.cryptoX402.version` as 1 or 2.
fn parse_version(version: &str) -> Result<u8, X402Error> {
    match version {
        "1" => Ok(1),
        "2" => Ok(2),
        other => {
            let field = format!("{PREFIX}.version");
            Err(X402Error::new(
                &field,
                format!("{field} must be \"1\" or \"2\", got {}", quoted(other)),
            ))
        }
    }
}

/// The requirement object.
fn payload_object(payload: &Value) -> Result<&Map<String, Value>, X402Error> {
    match payload {
        Value::Object(map) => Ok(map),
        other => {
            let hint = if other.is_array() {
                " (pick ONE entry of the merchant's accepts list)"
            } else {
                ""
            };
            Err(X402Error::new(
                PAYLOAD,
                format!(
                    "{PAYLOAD} must be a JSON object (an x402 PaymentRequirements), got {}{hint}",
                    describe(other)
                ),
            ))
        }
    }
}

/// `permit2AllowanceLimit` is for upto only.
fn reject_permit2_allowance_limit(limit: Option<&str>) -> Result<(), X402Error> {
    if limit.is_some() {
        let field = format!("{PREFIX}.permit2AllowanceLimit");
        return Err(X402Error::new(
            &field,
            format!("{field} is only valid with scheme \"upto\"; omit it for scheme \"exact\""),
        ));
    }
    Ok(())
}

/// `network`: an EVM chain of the table.
fn parse_evm_network(obj: &Map<String, Value>) -> Result<(Chain, &str), X402Error> {
    // network
    let network = required_string(obj, "network", &format!("(one of {EVM_NETWORKS})"))?;
    let field = format!("{PAYLOAD}.network");
    let chain = match Chain::from_x402_network(network) {
        Some(c) if c.family() == Family::Ethereum => c,
        Some(_) => {
            return Err(X402Error::new(
                &field,
                format!(
                    "{field} {}: exact on Solana is read by exact_svm (parse_exact_svm), not by the EVM kind (EVM networks only: {EVM_NETWORKS})",
                    quoted(network)
                ),
            ));
        }
        None => {
            let solana = if network.starts_with("solana") {
                " (exact on Solana is read by exact_svm, not by the EVM kind)"
            } else {
                ""
            };
            return Err(X402Error::new(
                &field,
                format!(
                    "{field} {} is not a supported network{solana}; expected one of {EVM_NETWORKS}",
                    quoted(network)
                ),
            ));
        }
    };

    Ok((chain, network))
}

/// The members every EVM scheme reads the same way.
struct EvmPayment {
    amount: u128,
    /// EIP-55.
    pay_to: String,
    pay_to_bytes: [u8; 20],
    /// The chain's USDC, canonical spelling.
    asset: String,
    asset_bytes: [u8; 20],
    max_timeout_seconds: u64,
}

/// The amount, `asset`, `payTo` and `maxTimeoutSeconds`, in that order.
fn parse_evm_payment(
    obj: &Map<String, Value>,
    version: u8,
    chain: Chain,
    network: &str,
) -> Result<EvmPayment, X402Error> {
    let amount = parse_amount_members(obj, version)?;

    // asset
    let asset = required_string(obj, "asset", "(the USDC contract address)")?;
    let field = format!("{PAYLOAD}.asset");
    let usdc = chain.usdc_address();
    if parse_address_hex(asset).is_none() {
        return Err(X402Error::new(
            &field,
            format!(
                "{field} must be a 0x-prefixed 20-byte hex address (the USDC contract {usdc}), got {}",
                quoted(asset)
            ),
        ));
    }
    if !asset.eq_ignore_ascii_case(usdc) {
        return Err(X402Error::new(
            &field,
            format!(
                "{field} {} is not USDC on {network}: only the canonical USDC contract {usdc} is accepted",
                quoted(asset)
            ),
        ));
    }

    // payTo
    let pay_to = required_string(obj, "payTo", "(the recipient's 0x address)")?;
    let field = format!("{PAYLOAD}.payTo");
    let Some(pay_to_bytes) = parse_address_hex(pay_to) else {
        return Err(X402Error::new(
            &field,
            format!(
                "{field} must be a 0x-prefixed 20-byte hex address, got {}",
                quoted(pay_to)
            ),
        ));
    };
    let checksummed = checksum_address(&pay_to_bytes);
    let hex_part = &pay_to[2..];
    let mixed = hex_part.bytes().any(|b| b.is_ascii_uppercase())
        && hex_part.bytes().any(|b| b.is_ascii_lowercase());
    if mixed && pay_to != checksummed {
        return Err(X402Error::new(
            &field,
            format!(
                "{field} {} has an invalid EIP-55 checksum (expected {checksummed}); check the address",
                quoted(pay_to)
            ),
        ));
    }
    if pay_to_bytes == [0u8; 20] {
        return Err(X402Error::new(
            &field,
            format!("{field} must not be the zero address"),
        ));
    }

    let max_timeout_seconds = parse_max_timeout(obj)?;
    Ok(EvmPayment {
        amount,
        pay_to: checksummed,
        pay_to_bytes,
        asset: usdc.to_string(),
        asset_bytes: parse_address_hex(usdc).expect("the chain table's USDC is an address"),
        max_timeout_seconds,
    })
}

/// `obj[name]` as a string; errors name `payload.<name>`.
fn required_string<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    what: &str,
) -> Result<&'a str, X402Error> {
    let field = format!("{PAYLOAD}.{name}");
    match obj.get(name) {
        None | Some(Value::Null) => Err(X402Error::new(
            &field,
            format!("{field} is required {what}"),
        )),
        Some(Value::String(s)) if s.is_empty() => Err(X402Error::new(
            &field,
            format!("{field} must not be empty {what}"),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(X402Error::new(
            &field,
            format!("{field} must be a string {what}, got {}", describe(other)),
        )),
    }
}

/// The amount from `maxAmountRequired` and/or `amount`.
fn parse_amount_members(obj: &Map<String, Value>, version: u8) -> Result<u128, X402Error> {
    let present = |name: &'static str| {
        obj.get(name)
            .filter(|v| !v.is_null())
            .map(move |v| (name, v))
    };
    let v1 = present("maxAmountRequired");
    let v2 = present("amount");
    let primary = if version == 1 {
        "maxAmountRequired"
    } else {
        "amount"
    };
    match (v1, v2) {
        (None, None) => {
            let field = format!("{PAYLOAD}.{primary}");
            let other = if version == 1 {
                "maxAmountRequired (v1) or amount (v2)"
            } else {
                "amount (v2) or maxAmountRequired (v1)"
            };
            Err(X402Error::new(
                &field,
                format!(
                    "{field} is required: the amount in atomic units as a decimal string ({other})"
                ),
            ))
        }
        (Some((name, v)), None) | (None, Some((name, v))) => parse_amount(name, v),
        (Some((n1, a)), Some((n2, b))) => {
            let a = parse_amount(n1, a)?;
            let b = parse_amount(n2, b)?;
            if a != b {
                let field = format!("{PAYLOAD}.{primary}");
                return Err(X402Error::new(
                    &field,
                    format!(
                        "{PAYLOAD}.maxAmountRequired ({a}) and {PAYLOAD}.amount ({b}) are both present and differ; they must be equal"
                    ),
                ));
            }
            Ok(a)
        }
    }
}

fn parse_amount(name: &str, v: &Value) -> Result<u128, X402Error> {
    let field = format!("{PAYLOAD}.{name}");
    let s = match v {
        Value::String(s) => s.as_str(),
        other => {
            return Err(X402Error::new(
                &field,
                format!(
                    "{field} must be a string of decimal digits (atomic units, e.g. \"125000\"), got {}",
                    describe(other)
                ),
            ));
        }
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(X402Error::new(
            &field,
            format!(
                "{field} must be a string of decimal digits (atomic units, e.g. \"125000\"), got {}",
                quoted(s)
            ),
        ));
    }
    let mut value: u128 = 0;
    for b in s.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(b - b'0')))
            .ok_or_else(|| {
                X402Error::new(
                    &field,
                    format!(
                        "{field} {} is too large (at most 2^128 - 1 atomic units)",
                        quoted(s)
                    ),
                )
            })?;
    }
    if value == 0 {
        return Err(X402Error::new(
            &field,
            format!("{field} must be greater than 0, got {}", quoted(s)),
        ));
    }
    Ok(value)
}

fn parse_max_timeout(obj: &Map<String, Value>) -> Result<u64, X402Error> {
    let field = format!("{PAYLOAD}.maxTimeoutSeconds");
    let bad = |got: String| {
        X402Error::new(
            &field,
            format!(
                "{field} must be a positive whole number of seconds (at most {MAX_TIMEOUT_SECONDS}), got {got}"
            ),
        )
    };
    let seconds = match obj.get("maxTimeoutSeconds") {
        None | Some(Value::Null) => {
            return Err(X402Error::new(
                &field,
                format!(
                    "{field} is required (a positive whole number of seconds, at most {MAX_TIMEOUT_SECONDS})"
                ),
            ));
        }
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s) => s,
            None => return Err(bad(n.to_string())),
        },
        Some(Value::String(s)) => {
            if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(quoted(s)));
            }
            match s.parse::<u64>() {
                Ok(v) => v,
                Err(_) => return Err(bad(quoted(s))),
            }
        }
        Some(other) => return Err(bad(describe(other).to_string())),
    };
    if seconds == 0 {
        return Err(X402Error::new(
            &field,
            format!("{field} must be positive, got 0"),
        ));
    }
    if seconds > MAX_TIMEOUT_SECONDS {
        return Err(X402Error::new(
            &field,
            format!(
                "{field} {seconds} is too long: at most {MAX_TIMEOUT_SECONDS} seconds (24 hours) is accepted"
            ),
        ));
    }
    Ok(seconds)
}

fn parse_extra(obj: &Map<String, Value>) -> Result<(String, String), X402Error> {
    let extra_field = format!("{PAYLOAD}.extra");
    let extra = match obj.get("extra") {
        None | Some(Value::Null) => {
            let field = format!("{extra_field}.name");
            return Err(X402Error::new(
                &field,
                format!(
                    "{field} is required for EVM networks (the token's EIP-712 domain name, e.g. \"USDC\"), but {extra_field} is missing"
                ),
            ));
        }
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(X402Error::new(
                &extra_field,
                format!(
                    "{extra_field} must be an object {{name, version}} (the token's EIP-712 domain), got {}",
                    describe(other)
                ),
            ));
        }
    };
    let member = |name: &str, example: &str| -> Result<String, X402Error> {
        let field = format!("{extra_field}.{name}");
        let what = format!("(the token's EIP-712 domain {name}, e.g. {example:?})");
        match extra.get(name) {
            None | Some(Value::Null) => Err(X402Error::new(
                &field,
                format!("{field} is required for EVM networks {what}"),
            )),
            Some(Value::String(s)) if s.is_empty() => Err(X402Error::new(
                &field,
                format!("{field} must not be empty {what}"),
            )),
            Some(Value::String(s)) if s.len() > MAX_DOMAIN_FIELD_LEN => Err(X402Error::new(
                &field,
                format!("{field} is too long (at most {MAX_DOMAIN_FIELD_LEN} bytes)"),
            )),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(X402Error::new(
                &field,
                format!("{field} must be a string {what}, got {}", describe(other)),
            )),
        }
    };
    let name = member("name", "USDC")?;
    let version = member("version", "2")?;
    Ok((name, version))
}

/// Parses `0x` + 40 hex digits (any case, checksum not checked).
pub(crate) fn parse_address_hex(s: &str) -> Option<[u8; 20]> {
    let hex_part = s.strip_prefix("0x")?;
    if hex_part.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    hex::decode_to_slice(hex_part, &mut out).ok()?;
    Some(out)
}

/// The EIP-55 checksummed `0x` form of an address.
pub fn checksum_address(address: &[u8; 20]) -> String {
    let lower = hex::encode(address);
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0x0f;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The authorization the payer `from` signs for `req` at `now_unix` with
/// `nonce` (32 random bytes), with the reference client's validity window:
/// `validBefore = now + maxTimeoutSeconds`; `validAfter = 0` for x402 v2 and
/// `now - 600` for v1 (see the module documentation).
pub fn authorization_for(
    req: &ExactEvmRequirement,
    from: [u8; 20],
    now_unix: u64,
    nonce: [u8; 32],
) -> Authorization {
    let valid_after = if req.version == 1 {
        now_unix.saturating_sub(V1_VALID_AFTER_LEEWAY_SECONDS)
    } else {
        0
    };
    Authorization {
        from,
        to: parse_address_hex(&req.pay_to).expect("pay_to is a checked address"),
        value: req.amount,
        valid_after,
        valid_before: now_unix.saturating_add(req.max_timeout_seconds),
        nonce,
    }
}

const EIP712_DOMAIN_TYPE: &str =
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
const TRANSFER_WITH_AUTHORIZATION_TYPE: &str = "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)";

fn keccak(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

fn word_u128(v: u128) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[16..].copy_from_slice(&v.to_be_bytes());
    w
}

fn word_address(a: &[u8; 20]) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a);
    w
}

/// The EIP-712 domain separator of `req`'s token:
/// `{name: extra.name, version: extra.version, chainId, verifyingContract: asset}`.
pub fn domain_separator(req: &ExactEvmRequirement) -> [u8; 32] {
    let asset = parse_address_hex(&req.asset).expect("asset is a checked address");
    let mut buf = Vec::with_capacity(5 * 32);
    buf.extend_from_slice(&keccak(EIP712_DOMAIN_TYPE.as_bytes()));
    buf.extend_from_slice(&keccak(req.domain_name.as_bytes()));
    buf.extend_from_slice(&keccak(req.domain_version.as_bytes()));
    buf.extend_from_slice(&word_u128(u128::from(req.chain_id())));
    buf.extend_from_slice(&word_address(&asset));
    keccak(&buf)
}

/// The EIP-712 struct hash of a `TransferWithAuthorization` message.
fn struct_hash(auth: &Authorization) -> [u8; 32] {
    let mut buf = Vec::with_capacity(7 * 32);
    buf.extend_from_slice(&keccak(TRANSFER_WITH_AUTHORIZATION_TYPE.as_bytes()));
    buf.extend_from_slice(&word_address(&auth.from));
    buf.extend_from_slice(&word_address(&auth.to));
    buf.extend_from_slice(&word_u128(auth.value));
    buf.extend_from_slice(&word_u128(u128::from(auth.valid_after)));
    buf.extend_from_slice(&word_u128(u128::from(auth.valid_before)));
    buf.extend_from_slice(&auth.nonce);
    keccak(&buf)
}

/// The EIP-712 digest the payer signs:
/// `keccak256(0x19 0x01 || domainSeparator || hashStruct(TransferWithAuthorization))`.
pub fn transfer_with_authorization_digest(
    req: &ExactEvmRequirement,
    auth: &Authorization,
) -> [u8; 32] {
    let mut buf = [0u8; 66];
    buf[0] = 0x19;
    buf[1] = 0x01;
    buf[2..34].copy_from_slice(&domain_separator(req));
    buf[34..].copy_from_slice(&struct_hash(auth));
    keccak(&buf)
}

/// The same message as EIP-712 typed data JSON (`eth_signTypedData_v4`:
/// `{types, primaryType, domain, message}`), for wallet providers that sign
/// typed data rather than a digest. Numbers are decimal strings except
/// `domain.chainId` (a JSON number); addresses are EIP-55.
pub fn transfer_with_authorization_typed_data(
    req: &ExactEvmRequirement,
    auth: &Authorization,
) -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"},
                {"name": "nonce", "type": "bytes32"},
            ],
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": req.domain_name,
            "version": req.domain_version,
            "chainId": req.chain_id(),
            "verifyingContract": req.asset,
        },
        "message": authorization_json(auth),
    })
}

fn authorization_json(auth: &Authorization) -> Value {
    json!({
        "from": checksum_address(&auth.from),
        "to": checksum_address(&auth.to),
        "value": auth.value.to_string(),
        "validAfter": auth.valid_after.to_string(),
        "validBefore": auth.valid_before.to_string(),
        "nonce": format!("0x{}", hex::encode(auth.nonce)),
    })
}

/// The x402 `exact` EVM scheme payload (`paymentOutput.cryptoX402.payload`):
/// `{"signature": "0x<r||s||v, 130 hex>", "authorization": {"from", "to",
/// "value", "validAfter", "validBefore", "nonce"}}` with EIP-55 addresses,
/// decimal-string numbers and lower-case hex.
pub fn exact_evm_payload(auth: &Authorization, signature: &[u8; 65]) -> Value {
    json!({
        "signature": format!("0x{}", hex::encode(signature)),
        "authorization": authorization_json(auth),
    })
}

/// The client header value (standard base64, with padding, of the JSON) that
/// carries `scheme_payload` for `requirement_payload`:
///
/// * `version == 1`: `X-PAYMENT` = `{x402Version: 1, scheme, network, payload}`
///   (scheme and network copied from the requirement);
/// * any other version: `PAYMENT-SIGNATURE` =
///   `{x402Version: 2, accepted: <requirement>, payload}`. The optional
///   `resource` and `extensions` of the PaymentRequired are not known here and
///   are left out.
pub fn x402_header(version: u8, requirement_payload: &Value, scheme_payload: &Value) -> String {
    let body = if version == 1 {
        json!({
            "x402Version": 1,
            "scheme": requirement_payload.get("scheme").cloned().unwrap_or(Value::Null),
            "network": requirement_payload.get("network").cloned().unwrap_or(Value::Null),
            "payload": scheme_payload,
        })
    } else {
        json!({
            "x402Version": 2,
            "accepted": requirement_payload,
            "payload": scheme_payload,
        })
    };
    base64::engine::general_purpose::STANDARD.encode(body.to_string())
}
