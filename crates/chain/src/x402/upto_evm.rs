//! x402 `upto` on EVM chains, and x402 `exact` through Permit2: both are Permit2
//! `PermitWitnessTransferFrom` permits (the message is in [`super::permit2`]).
//!
//! # Which requirements come here ([`parse_permit2_kinds`])
//!
//! * `scheme = "upto"`, whatever else the requirement says;
//! * `scheme = "exact"` with `extra.assetTransferMethod` present and not `"eip3009"`
//!   (the reference client signs Permit2 for `"permit2"`, EIP-3009 otherwise).
//!
//! # upto validation, in order (every error names the request field)
//!
//! * `version` `"1"`/`"2"`; `payload` an object; `scheme` `"upto"` is x402 **version 2**
//!   only (v1 is refused naming `payload.scheme`);
//! * `network`: an EVM chain of the table (a Solana network is refused naming
//!   `payload.scheme`: upto is not defined there; an unknown one naming
//!   `payload.network`);
//! * `permit2AllowanceLimit` (optional): ASCII digits, > 0, at most 2^256 - 1;
//! * the amount (the **maximum**, `amount`, or `maxAmountRequired`), `asset` (the
//!   network's USDC), `payTo`, `maxTimeoutSeconds` exactly as for exact
//!   (see the parent module);
//! * `extra` an object with `extra.facilitatorAddress`: a 0x address, not zero, valid
//!   EIP-55 when mixed-case. `extra.name`/`extra.version` are not needed (the Permit2
//!   domain is fixed).
//!
//! The session is debited the signed maximum (AgentCore's rule: never credited back).
//!
//! # exact through Permit2
//!
//! The same checks as EIP-3009 exact but for `extra.name`/`extra.version` (not needed);
//! `extra.assetTransferMethod` must be `"permit2"` (or `"eip3009"`, which goes the
//! EIP-3009 way) and x402 version 2 (the reference v1 client has no Permit2 path);
//! `permit2AllowanceLimit` is refused. The spender is the exact proxy and the witness
//! `Witness(address to,uint256 validAfter)`.
//!
//! # `permit2AllowanceLimit`: the approve ([`ensure_permit2_allowance`])
//!
//! Before the permit is built (so before the ledger reserves anything), the
//! instrument's wallet makes sure its ERC-20 allowance to Permit2 equals the limit:
//!
//! 1. `allowance(wallet, Permit2)` on the USDC contract; if it already **equals** the
//!    limit, nothing is sent (a repeated payment with the same limit costs no gas).
//!    Any other value (smaller or larger) is set to the limit: the limit is the most the
//!    agent wants Permit2 to be able to move.
//! 2. Otherwise an EIP-1559 `approve(Permit2, limit)`: nonce
//!    `eth_getTransactionCount(pending)`, `maxPriorityFeePerGas` from
//!    `eth_maxPriorityFeePerGas`, `maxFeePerGas = 2 * next base fee (eth_feeHistory) +
//!    priority`, gas `eth_estimateGas` + 20 % (refused above [`MAX_APPROVE_GAS`]),
//!    signed by the instrument's key ([`crate::payment::PayerSigner`]), sent with
//!    `eth_sendRawTransaction`, then its receipt polled (200 ms doubling to 2 s) for at
//!    most [`APPROVE_RECEIPT_TIMEOUT`] (50 s).
//! 3. Approves of one wallet on one chain take turns inside a process (a lock per
//!    wallet), and each re-reads the allowance first, so concurrent payments with the
//!    same limit send one transaction and never race for a nonce.
//!
//! Failures (none consumes budget; nothing was reserved yet):
//!
//! * the node refuses the transaction (a JSON-RPC error from `eth_estimateGas` or
//!   `eth_sendRawTransaction`, e.g. `insufficient funds for gas`), or it is mined and
//!   reverts: an [`X402Error`] naming `paymentInput.cryptoX402.permit2AllowanceLimit`
//!   (a ValidationException: the wallet, not the service, must change);
//! * the RPC cannot be reached, times out or answers malformed results, or the receipt
//!   does not arrive in time: a [`ChainError`] (an internal error, as every other chain
//!   failure).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::permit2::{
    EXACT_PROXY_BYTES, PERMIT2, Permit2Authorization, UPTO_PROXY_BYTES, permit2_digest,
    permit2_payload, permit2_typed_data, u256_from_decimal,
};
use super::{
    PAYLOAD, PREFIX, X402Error, checksum_address, describe, parse_address_hex, parse_evm_network,
    parse_evm_payment, parse_version, payload_object, quoted, reject_permit2_allowance_limit,
    required_string,
};
use crate::chain::{Chain, Family};
use crate::error::{ChainError, ChainErrorKind, clip};
use crate::evm_tx::{Eip1559Tx, erc20_approve_calldata};
use crate::payment::{
    BuildContext, BuildError, Kind, PaymentType, Requirement, Signature, ToSign, Unsigned,
};

/// The most gas an approve may be given (a USDC approve uses about 50,000).
pub const MAX_APPROVE_GAS: u64 = 200_000;
/// How long the approve's receipt is waited for: under boto3's default 60 s read
/// timeout, so the client hears the outcome. An approve mined later is found by the
/// allowance check of the retry, which then sends nothing.
pub const APPROVE_RECEIPT_TIMEOUT: Duration = Duration::from_secs(50);

const LIMIT_FIELD: &str = "paymentInput.cryptoX402.permit2AllowanceLimit";

/// The Permit2 kinds, or `None` for a requirement that is not one of them.
pub(crate) fn parse_permit2_kinds(
    version: &str,
    payload: &Value,
    permit2_allowance_limit: Option<&str>,
) -> Option<Result<Requirement, X402Error>> {
    let obj = payload.as_object()?;
    match obj.get("scheme").and_then(Value::as_str) {
        Some("upto") => Some(parse_upto(version, payload, permit2_allowance_limit)),
        Some("exact") => {
            let method = obj
                .get("extra")
                .and_then(Value::as_object)
                .and_then(|e| e.get("assetTransferMethod"))
                .filter(|m| !m.is_null())?;
            if method.as_str() == Some("eip3009") {
                return None;
            }
            Some(parse_exact_permit2(
                version,
                payload,
                permit2_allowance_limit,
            ))
        }
        _ => None,
    }
}

/// A checked Permit2 requirement (upto or exact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Permit2Requirement {
    pub version: u8,
    pub chain: Chain,
    pub network: String,
    /// upto: the maximum.
    pub amount: u128,
    pub pay_to: [u8; 20],
    pub asset: [u8; 20],
    pub max_timeout_seconds: u64,
    /// The proxy that may use the permit.
    pub spender: [u8; 20],
    /// upto: `extra.facilitatorAddress`; exact: `None`.
    pub facilitator: Option<[u8; 20]>,
    /// upto: `permit2AllowanceLimit`, 256-bit big-endian.
    pub allowance_limit: Option<[u8; 32]>,
}

impl Permit2Requirement {
    fn chain_id(&self) -> u64 {
        self.chain
            .evm_chain_id()
            .expect("a Permit2Requirement is on an EVM chain")
    }

    /// The permit the payer `from` signs at `now` with `nonce`: `deadline = now +
    /// maxTimeoutSeconds`, `validAfter = 0` (the reference client's values).
    pub fn authorization(&self, from: [u8; 20], now: u64, nonce: [u8; 32]) -> Permit2Authorization {
        Permit2Authorization {
            from,
            token: self.asset,
            amount: self.amount,
            spender: self.spender,
            nonce,
            deadline: now.saturating_add(self.max_timeout_seconds),
            to: self.pay_to,
            facilitator: self.facilitator,
            valid_after: 0,
        }
    }
}

fn parse_upto(
    version: &str,
    payload: &Value,
    permit2_allowance_limit: Option<&str>,
) -> Result<Requirement, X402Error> {
    let version = parse_version(version)?;
    let obj = payload_object(payload)?;
    let scheme_field = format!("{PAYLOAD}.scheme");
    if version != 2 {
        return Err(X402Error::new(
            &scheme_field,
            format!(
                "{scheme_field} \"upto\" is only defined for x402 version 2 (EVM networks); {PREFIX}.version is \"1\""
            ),
        ));
    }
    if let Some(network) = obj.get("network").and_then(Value::as_str)
        && Chain::from_x402_network(network).is_some_and(|c| c.family() == Family::Solana)
    {
        return Err(X402Error::new(
            &scheme_field,
            format!(
                "{scheme_field} \"upto\" is only defined on EVM networks, not on {}",
                quoted(network)
            ),
        ));
    }
    let (chain, network) = parse_evm_network(obj)?;
    let allowance_limit = permit2_allowance_limit
        .map(|l| {
            let zero = [0u8; 32];
            match u256_from_decimal(l) {
                Some(v) if v != zero => Ok(v),
                _ => Err(X402Error::new(
                    LIMIT_FIELD,
                    format!(
                        "{LIMIT_FIELD} must be a positive whole number of atomic units (at most 2^256 - 1), got {}",
                        quoted(l)
                    ),
                )),
            }
        })
        .transpose()?;
    let p = parse_evm_payment(obj, version, chain, network)?;
    let facilitator = parse_facilitator(obj)?;
    let r = Permit2Requirement {
        version,
        chain,
        network: network.to_string(),
        amount: p.amount,
        pay_to: p.pay_to_bytes,
        asset: p.asset_bytes,
        max_timeout_seconds: p.max_timeout_seconds,
        spender: UPTO_PROXY_BYTES,
        facilitator: Some(facilitator),
        allowance_limit,
    };
    Ok(requirement(
        "upto",
        r,
        p.pay_to,
        p.asset,
        amount_member(obj),
    ))
}

fn parse_exact_permit2(
    version: &str,
    payload: &Value,
    permit2_allowance_limit: Option<&str>,
) -> Result<Requirement, X402Error> {
    let version = parse_version(version)?;
    let obj = payload_object(payload)?;
    let (chain, network) = parse_evm_network(obj)?;
    reject_permit2_allowance_limit(permit2_allowance_limit)?;
    let p = parse_evm_payment(obj, version, chain, network)?;
    let field = format!("{PAYLOAD}.extra.assetTransferMethod");
    match obj.get("extra").and_then(|e| e.get("assetTransferMethod")) {
        Some(Value::String(m)) if m == "permit2" => {}
        Some(Value::String(m)) => {
            return Err(X402Error::new(
                &field,
                format!(
                    "{field} {} is not supported; use \"eip3009\" or \"permit2\"",
                    quoted(m)
                ),
            ));
        }
        Some(other) => {
            return Err(X402Error::new(
                &field,
                format!(
                    "{field} must be a string (\"eip3009\" or \"permit2\"), got {}",
                    describe(other)
                ),
            ));
        }
        None => unreachable!("only requirements with an assetTransferMethod come here"),
    }
    if version != 2 {
        return Err(X402Error::new(
            &field,
            format!("{field} \"permit2\" is only supported with x402 version 2"),
        ));
    }
    let r = Permit2Requirement {
        version,
        chain,
        network: network.to_string(),
        amount: p.amount,
        pay_to: p.pay_to_bytes,
        asset: p.asset_bytes,
        max_timeout_seconds: p.max_timeout_seconds,
        spender: EXACT_PROXY_BYTES,
        facilitator: None,
        allowance_limit: None,
    };
    Ok(requirement(
        "exact",
        r,
        p.pay_to,
        p.asset,
        amount_member(obj),
    ))
}

/// The member that carried the amount (v2 spells it `amount`; `maxAmountRequired` is
/// accepted too).
fn amount_member(obj: &Map<String, Value>) -> &'static str {
    if obj.get("amount").is_some_and(|v| !v.is_null()) {
        "amount"
    } else {
        "maxAmountRequired"
    }
}

fn requirement(
    scheme: &str,
    r: Permit2Requirement,
    pay_to: String,
    asset: String,
    amount_member: &str,
) -> Requirement {
    Requirement {
        payment_type: PaymentType::CryptoX402,
        version: r.version.to_string(),
        scheme: scheme.to_string(),
        chain: r.chain,
        network: r.network.clone(),
        payee: pay_to,
        asset,
        amount: r.amount,
        debit: r.amount,
        amount_field: format!("{PAYLOAD}.{amount_member}"),
        kind: Box::new(Permit2Kind(r)),
    }
}

/// `extra.facilitatorAddress`.
fn parse_facilitator(obj: &Map<String, Value>) -> Result<[u8; 20], X402Error> {
    let extra_field = format!("{PAYLOAD}.extra");
    let field = format!("{extra_field}.facilitatorAddress");
    let what = "(the facilitator's address, signed into the upto witness)";
    let extra = match obj.get("extra") {
        None | Some(Value::Null) => {
            return Err(X402Error::new(
                &field,
                format!(
                    "{field} is required for scheme \"upto\" {what}, but {extra_field} is missing"
                ),
            ));
        }
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(X402Error::new(
                &extra_field,
                format!("{extra_field} must be an object, got {}", describe(other)),
            ));
        }
    };
    let s = required_string(extra, "facilitatorAddress", what).map_err(|e| {
        // required_string names payload.<name>; the member is under extra.
        X402Error::new(
            &field,
            e.message
                .replace(&format!("{PAYLOAD}.facilitatorAddress"), &field),
        )
    })?;
    let Some(bytes) = parse_address_hex(s) else {
        return Err(X402Error::new(
            &field,
            format!(
                "{field} must be a 0x-prefixed 20-byte hex address, got {}",
                quoted(s)
            ),
        ));
    };
    let checksummed = checksum_address(&bytes);
    let hex_part = &s[2..];
    let mixed = hex_part.bytes().any(|b| b.is_ascii_uppercase())
        && hex_part.bytes().any(|b| b.is_ascii_lowercase());
    if mixed && s != checksummed {
        return Err(X402Error::new(
            &field,
            format!(
                "{field} {} has an invalid EIP-55 checksum (expected {checksummed})",
                quoted(s)
            ),
        ));
    }
    if bytes == [0u8; 20] {
        return Err(X402Error::new(
            &field,
            format!("{field} must not be the zero address"),
        ));
    }
    Ok(bytes)
}

#[derive(Debug)]
struct Permit2Kind(Permit2Requirement);

#[async_trait]
impl Kind for Permit2Kind {
    async fn build(&self, ctx: &BuildContext<'_>) -> Result<Box<dyn Unsigned>, BuildError> {
        let from = parse_address_hex(ctx.payer).ok_or_else(|| {
            BuildError::Input(X402Error::new(
                "paymentInstrumentId",
                "The payment instrument's wallet is not an EVM wallet.",
            ))
        })?;
        if let Some(limit) = &self.0.allowance_limit {
            ensure_permit2_allowance(ctx, self.0.chain, &self.0.asset, &from, limit).await?;
        }
        let mut nonce = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        Ok(Box::new(Permit2Unsigned {
            chain_id: self.0.chain_id(),
            auth: self.0.authorization(from, ctx.now, nonce),
        }))
    }
}

#[derive(Debug)]
struct Permit2Unsigned {
    chain_id: u64,
    auth: Permit2Authorization,
}

impl Unsigned for Permit2Unsigned {
    fn to_sign(&self) -> ToSign {
        ToSign::TypedData {
            digest: permit2_digest(self.chain_id, &self.auth),
        }
    }

    fn typed_data(&self) -> Option<Value> {
        Some(permit2_typed_data(self.chain_id, &self.auth))
    }

    fn finish(&self, signature: &Signature) -> Option<Value> {
        match signature {
            Signature::Secp256k1(sig) => Some(permit2_payload(&self.auth, sig)),
            Signature::Ed25519(_) => None,
        }
    }
}

type WalletLocks = Mutex<HashMap<(Chain, [u8; 20]), Arc<tokio::sync::Mutex<()>>>>;

/// One lock per (chain, wallet): approves of a wallet take turns in this process.
fn wallet_lock(chain: Chain, wallet: [u8; 20]) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<WalletLocks> = OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry((chain, wallet)).or_default().clone()
}

/// A node that refused the transaction: the wallet must change (fund gas, ...).
fn refused(e: ChainError, what: &str) -> BuildError {
    match e.kind() {
        ChainErrorKind::JsonRpc { message, .. } => BuildError::Input(X402Error::new(
            LIMIT_FIELD,
            format!(
                "The approve of Permit2 requested by {LIMIT_FIELD} was refused by {} ({what}): {}. No budget was consumed.",
                e.chain().as_str(),
                clip(message, 200)
            ),
        )),
        _ => BuildError::Chain(e),
    }
}

/// Sets the wallet's USDC allowance to Permit2 to `limit` on chain (see the module
/// documentation), returning once the approve is mined (or when none was needed).
pub(crate) async fn ensure_permit2_allowance(
    ctx: &BuildContext<'_>,
    chain: Chain,
    token: &[u8; 20],
    owner: &[u8; 20],
    limit: &[u8; 32],
) -> Result<(), BuildError> {
    let lock = wallet_lock(chain, *owner);
    let _turn = lock.lock().await;
    let rpc = ctx.chains;
    let current = rpc.erc20_allowance(chain, token, owner, &PERMIT2).await?;
    if &current == limit {
        return Ok(());
    }
    let data = erc20_approve_calldata(&PERMIT2, limit);
    let estimate = rpc
        .evm_estimate_gas(chain, owner, token, &data)
        .await
        .map_err(|e| refused(e, "gas estimation"))?;
    if estimate > MAX_APPROVE_GAS {
        return Err(BuildError::Chain(ChainError::new(
            chain,
            None,
            ChainErrorKind::Malformed {
                detail: format!(
                    "the approve needs {estimate} gas, more than the {MAX_APPROVE_GAS} allowed"
                ),
            },
        )));
    }
    let gas_limit = (estimate + estimate / 5).min(MAX_APPROVE_GAS);
    let nonce = rpc.evm_pending_nonce(chain, owner).await?;
    let priority = rpc.evm_max_priority_fee(chain).await?;
    let base = rpc.evm_next_base_fee(chain).await?;
    let tx = Eip1559Tx {
        chain_id: chain.evm_chain_id().expect("an EVM chain"),
        nonce,
        max_priority_fee_per_gas: priority,
        max_fee_per_gas: base.saturating_mul(2).saturating_add(priority),
        gas_limit,
        to: *token,
        value: 0,
        data,
    };
    let to_sign = ToSign::EvmTransaction {
        digest: tx.signing_hash(),
        unsigned: tx.unsigned_envelope(),
    };
    let Signature::Secp256k1(sig) = ctx.signer.sign(&to_sign).await? else {
        return Err(BuildError::Signing);
    };
    let raw = tx.signed_envelope(&sig);
    let hash = tx.hash(&sig);
    let reported = rpc
        .evm_send_raw_transaction(chain, &raw)
        .await
        .map_err(|e| refused(e, "eth_sendRawTransaction"))?;
    if reported != hash {
        return Err(BuildError::Chain(ChainError::new(
            chain,
            None,
            ChainErrorKind::Malformed {
                detail: "eth_sendRawTransaction reported another transaction hash".into(),
            },
        )));
    }
    let deadline = tokio::time::Instant::now() + APPROVE_RECEIPT_TIMEOUT;
    let mut wait = Duration::from_millis(200);
    let mut last_error = None;
    loop {
        match rpc.evm_receipt(chain, &hash).await {
            Ok(Some(r)) if r.success => return Ok(()),
            Ok(Some(r)) => {
                return Err(BuildError::Input(X402Error::new(
                    LIMIT_FIELD,
                    format!(
                        "The approve of Permit2 requested by {LIMIT_FIELD} (transaction 0x{}) reverted on {} in block {}. No budget was consumed.",
                        hex::encode(hash),
                        chain.as_str(),
                        r.block_number
                    ),
                )));
            }
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if tokio::time::Instant::now() + wait > deadline {
            return Err(BuildError::Chain(last_error.unwrap_or_else(|| {
                ChainError::new(
                    chain,
                    None,
                    ChainErrorKind::Timeout {
                        after: APPROVE_RECEIPT_TIMEOUT,
                    },
                )
            })));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}
