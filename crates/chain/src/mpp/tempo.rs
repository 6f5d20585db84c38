//! The MPP `tempo` method (draft-tempo-charge-00), intent `charge`, pull mode: the payer
//! signs a Tempo transaction (type `0x76`) whose one call is the TIP-20
//! `transferWithMemo(recipient, amount, memo)` of the challenge's currency; the merchant
//! broadcasts it (after adding its fee-payer signature when it sponsors the fee).
//! Credential payload `{"signature": "<0x hex of the transaction>", "type":
//! "transaction"}`, `source` = `did:pkh:eip155:<chain id>:<payer>`, as the reference
//! client (`mppx` 0.11 `tempo.charge`, viem 2.57) builds it.
//!
//! # The request
//!
//! `{amount, currency, recipient, description?, externalId?, methodDetails?: {chainId?,
//! feePayer?, splits?, supportedModes?, machineTokenEnabled?}}` (mppx's wire form: the
//! merchant's `decimals` is folded into `amount`), checked in this order, every problem
//! naming its member:
//!
//! * `methodDetails`: an object when present.
//! * `methodDetails.chainId`: 4217 (Tempo mainnet, `TEMPO_4217`) or 42431 (Moderato,
//!   `TEMPO_42431`); absent = 4217, the reference client's default chain.
//! * `amount`: base units as a decimal string, > 0 (a zero-amount challenge asks for a
//!   signed proof, not a payment: refused).
//! * `currency`: the chain's USD stablecoin the session's budget counts 1:1 (TIP-20
//!   tokens have 6 decimals): USDC (`0x20C0...b9537d11c60E8b50`) on mainnet, and pathUSD
//!   (`0x20c0...0000`) on either chain; any other token is refused.
//! * `recipient`: a non-zero `0x` address.
//! * `methodDetails.decimals`, when present (mppx never sends it): 6.
//! * `methodDetails.splits`: refused when non-empty (one transfer to the recipient).
//! * `methodDetails.supportedModes`: when present, must include `pull` (this server
//!   signs; it never broadcasts, so it cannot answer with a `hash` credential).
//! * `methodDetails.feePayer`: a boolean when present; see "Fees".
//! * `description`, `externalId`, `methodDetails.machineTokenEnabled`: not part of the
//!   transaction (the memo is the attribution memo; the transfer is direct).
//!
//! # Fees (`buyerPaysGasFees`)
//!
//! `methodDetails.feePayer: true`: the merchant sponsors the fee. The payer signs the
//! sponsored form (fee-payer slot `0x00`, no fee token) and hands it over in the
//! fee-payer envelope `0x78 || rlp([... the payer's address in the fee-payer slot ...,
//! signature])`, exactly as viem serializes it for a fee payer.
//!
//! Otherwise the wallet pays the fee itself, in its Tempo fee token (a USD stablecoin
//! taken from the wallet, not from the session's budget). As for `solana`, that is done
//! only when the caller says so with `buyerPaysGasFees: true`; without it the challenge is
//! refused, naming `paymentInput.mpp.buyerPaysGasFees`.
//!
//! # The transaction
//!
//! `0x76 || rlp([chainId, maxPriorityFeePerGas, maxFeePerGas, gas, [[to, value, data]],
//! accessList, nonceKey, nonce, validBefore, validAfter, feeToken,
//! feePayerSignatureOrSender, authorizationList, signature])`, integers minimal
//! big-endian, absent values empty; the sender signs `keccak256(0x76 || rlp(the same
//! without the signature))` with secp256k1, and the signature is `r || s || v` (v = 27 or
//! 28). The fields:
//!
//! * one call: the currency, value 0, `transferWithMemo(recipient, amount, memo)`
//!   (selector `0x95777d59`) with mppx's attribution memo: `keccak256("mpp")[0..4] ||
//!   0x01 || keccak256(realm)[0..10] || 10 zero bytes (no client id) ||
//!   keccak256(challenge id)[0..7]`, binding the transfer to this challenge;
//! * an **expiring nonce** (TIP-1009): `nonceKey = 2^256 - 1`, `nonce = 0`, `validBefore =
//!   min(now + 25 s, the challenge's expires)`: replay protection by transaction hash
//!   until `validBefore`, no nonce to read and no nonce sequence to keep. The reference
//!   client uses a random 48-bit nonce, which only nodes from Tempo's T12 hardfork
//!   (TIP-1106, "expiring nonce discriminators") accept; zero is valid before and after
//!   T12, so every Tempo node with expiring nonces (T1 on) takes it. Distinct challenges
//!   still give distinct transactions (the memo holds the challenge id).
//! * `gas` = `eth_estimateGas` of the transaction + 5000 (the reference client's margin
//!   for the signature checks), at most [`MAX_GAS`] (the reference server's sponsor
//!   limit); `maxPriorityFeePerGas` = `eth_maxPriorityFeePerGas`; `maxFeePerGas` = the next
//!   block's base fee × 1.2 + that priority fee (viem's default). Read from the chain's RPC
//!   (`PURSER_RPC_TEMPO_<chain id>`) in `Kind::build`, before the ledger.
//! * no access list, no `validAfter`, no fee token (the node charges the sender's
//!   preferred fee token; the sponsor chooses its own), no authorizations.

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use sha3::{Digest, Keccak256};

use super::{Challenge, PREFIX, err, field, string};
use crate::chain::Chain;
use crate::error::{ChainErrorKind, clip};
use crate::evm_tx::{rlp_bytes, rlp_list, rlp_uint};
use crate::payment::{
    BuildContext, BuildError, InputError, Kind, PaymentType, Requirement, Signature, ToSign,
    Unsigned,
};
use crate::x402::{checksum_address, parse_address_hex};

/// The Tempo transaction type.
pub const TX_TYPE: u8 = 0x76;
/// The envelope a sender hands to a fee payer.
pub const FEE_PAYER_TX_TYPE: u8 = 0x78;
/// `transferWithMemo(address,uint256,bytes32)`.
pub const TRANSFER_WITH_MEMO: [u8; 4] = [0x95, 0x77, 0x7d, 0x59];
/// pathUSD, the first TIP-20 stablecoin, at the same address on every Tempo chain.
pub const PATH_USD: &str = "0x20c0000000000000000000000000000000000000";
/// How far ahead `validBefore` is set (the reference client's choice: under the 30-second
/// expiring-nonce window of the nodes before T11).
pub const VALIDITY_SECONDS: u64 = 25;
/// Gas added to the estimate (as the reference client does).
pub const GAS_MARGIN: u64 = 5_000;
/// The most gas signed for (the reference server's default sponsor policy, `maxGas`).
pub const MAX_GAS: u64 = 2_000_000;

/// The currencies paid on `chain` (address, name).
fn currencies(chain: Chain) -> &'static [(&'static str, &'static str)] {
    match chain {
        Chain::Tempo => &[
            ("0x20C000000000000000000000b9537d11c60E8b50", "USDC"),
            (PATH_USD, "pathUSD"),
        ],
        _ => &[(PATH_USD, "pathUSD")],
    }
}

/// A checked `tempo` charge request.
#[derive(Debug, Clone)]
struct TempoChargeRequest {
    chain: Chain,
    amount: u128,
    currency: [u8; 20],
    recipient: [u8; 20],
    sponsored: bool,
}

pub(super) fn parse(
    challenge: Challenge,
    buyer_pays_gas_fees: Option<bool>,
) -> Result<Requirement, InputError> {
    let req = &challenge.request;
    let empty = Map::new();
    let details = match req.get("methodDetails") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(other) => {
            let f = field("methodDetails");
            return Err(err(&f, format!("{f} must be an object, got {other}")));
        }
    };
    let chain = match details.get("chainId") {
        None | Some(Value::Null) => Chain::Tempo,
        Some(v) => v
            .as_u64()
            .and_then(Chain::from_tempo_chain_id)
            .ok_or_else(|| {
                let f = field("methodDetails.chainId");
                err(
                    &f,
                    format!("{f} must be 4217 (Tempo) or 42431 (Tempo Moderato), got {v}"),
                )
            })?,
    };

    let text = string(req, "amount")?;
    let f = field("amount");
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            &f,
            format!("{f} must be base units as a decimal string, got {text:?}"),
        ));
    }
    let amount = match text.parse::<u128>() {
        Ok(0) => {
            return Err(err(
                &f,
                format!(
                    "{f} must be greater than 0 (a zero-amount challenge asks for a proof, not a payment)"
                ),
            ));
        }
        Ok(n) => n,
        Err(_) => return Err(err(&f, format!("{f} is too large"))),
    };

    let accepted = currencies(chain);
    let currency_text = string(req, "currency")?;
    let currency = parse_address_hex(currency_text)
        .filter(|c| {
            accepted
                .iter()
                .any(|(a, _)| parse_address_hex(a).as_ref() == Some(c))
        })
        .ok_or_else(|| {
            let f = field("currency");
            let list = accepted
                .iter()
                .map(|(a, name)| format!("{name} ({a})"))
                .collect::<Vec<_>>()
                .join(" or ");
            err(
                &f,
                format!(
                    "{f} {currency_text:?} is not a USD stablecoin this server pays on {}: only {list} is accepted",
                    chain.as_str()
                ),
            )
        })?;
    let recipient = parse_address_hex(string(req, "recipient")?)
        .filter(|a| *a != [0u8; 20])
        .ok_or_else(|| {
            let f = field("recipient");
            err(
                &f,
                format!("{f} must be a non-zero 0x-prefixed 20-byte hex address"),
            )
        })?;

    if let Some(d) = details.get("decimals")
        && d.as_u64() != Some(u64::from(crate::USDC_DECIMALS))
    {
        let f = field("methodDetails.decimals");
        return Err(err(
            &f,
            format!("{f} must be 6 (TIP-20 stablecoins), got {d}"),
        ));
    }
    if details
        .get("splits")
        .is_some_and(|s| s.as_array().is_none_or(|a| !a.is_empty()))
    {
        let f = field("methodDetails.splits");
        return Err(err(
            &f,
            format!("{f}: split payments are not supported (one transfer to the recipient)"),
        ));
    }
    if let Some(modes) = details.get("supportedModes").filter(|v| !v.is_null()) {
        let pull = modes
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m.as_str() == Some("pull")));
        if !pull {
            let f = field("methodDetails.supportedModes");
            return Err(err(
                &f,
                format!(
                    "{f} must include \"pull\": this server signs the transaction for the merchant to broadcast, it does not broadcast it (\"push\")"
                ),
            ));
        }
    }
    let sponsored = match details.get("feePayer") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            let f = field("methodDetails.feePayer");
            return Err(err(&f, format!("{f} must be a boolean, got {other}")));
        }
    };
    if !sponsored && buyer_pays_gas_fees != Some(true) {
        let f = format!("{PREFIX}.buyerPaysGasFees");
        return Err(err(
            &f,
            format!(
                "the challenge does not sponsor the Tempo transaction fee ({} is not true), so the wallet would pay it; set {f} to true to allow that, or ask the merchant for a fee-sponsored challenge",
                field("methodDetails.feePayer")
            ),
        ));
    }

    let request = TempoChargeRequest {
        chain,
        amount,
        currency,
        recipient,
        sponsored,
    };
    Ok(Requirement {
        payment_type: PaymentType::Mpp,
        version: "1".into(),
        scheme: "tempo".into(),
        chain,
        network: chain.caip2().to_owned(),
        payee: checksum_address(&recipient),
        asset: checksum_address(&currency),
        amount,
        debit: amount,
        amount_field: field("amount"),
        kind: Box::new(TempoCharge { challenge, request }),
    })
}

/// mppx's attribution memo for a challenge of `realm` with id `challenge_id` (no client
/// id): see the module documentation.
pub fn attribution_memo(realm: &str, challenge_id: &str) -> [u8; 32] {
    let mut memo = [0u8; 32];
    memo[..4].copy_from_slice(&Keccak256::digest(b"mpp")[..4]);
    memo[4] = 0x01;
    memo[5..15].copy_from_slice(&Keccak256::digest(realm.as_bytes())[..10]);
    memo[25..].copy_from_slice(&Keccak256::digest(challenge_id.as_bytes())[..7]);
    memo
}

/// TIP-20 `transferWithMemo(to, amount, memo)` calldata.
pub fn transfer_with_memo_calldata(to: &[u8; 20], amount: u128, memo: &[u8; 32]) -> Vec<u8> {
    let mut data = Vec::with_capacity(4 + 96);
    data.extend_from_slice(&TRANSFER_WITH_MEMO);
    data.extend_from_slice(&[0u8; 12]);
    data.extend_from_slice(to);
    data.extend_from_slice(&[0u8; 16]);
    data.extend_from_slice(&amount.to_be_bytes());
    data.extend_from_slice(memo);
    data
}

/// A Tempo transaction of one call with an expiring nonce (`nonceKey = 2^256 - 1`,
/// `nonce = 0`), no access list, `validAfter`, fee token or authorizations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempoTx {
    pub chain_id: u64,
    pub max_priority_fee_per_gas: u128,
    pub max_fee_per_gas: u128,
    pub gas: u64,
    pub to: [u8; 20],
    pub data: Vec<u8>,
    pub valid_before: u64,
    /// A fee payer signs after the sender (the sender commits to the `0x00` marker and
    /// to no fee token).
    pub sponsored: bool,
}

impl TempoTx {
    /// The fields up to the fee-payer slot, which is `slot`.
    fn fields(&self, slot: Vec<u8>) -> Vec<Vec<u8>> {
        let call = rlp_list(&[rlp_bytes(&self.to), rlp_uint(&[]), rlp_bytes(&self.data)]);
        vec![
            rlp_uint(&self.chain_id.to_be_bytes()),
            rlp_uint(&self.max_priority_fee_per_gas.to_be_bytes()),
            rlp_uint(&self.max_fee_per_gas.to_be_bytes()),
            rlp_uint(&self.gas.to_be_bytes()),
            rlp_list(&[call]),
            rlp_list(&[]),          // access list
            rlp_bytes(&[0xff; 32]), // nonceKey: the expiring-nonce key
            rlp_uint(&[]),          // nonce 0
            rlp_uint(&self.valid_before.to_be_bytes()),
            rlp_uint(&[]), // validAfter
            rlp_uint(&[]), // feeToken
            slot,
            rlp_list(&[]), // authorization list
        ]
    }

    fn envelope(ty: u8, fields: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![ty];
        out.extend_from_slice(&rlp_list(fields));
        out
    }

    /// `0x76 || rlp(fields)`: what the sender's signature covers.
    pub fn unsigned_envelope(&self) -> Vec<u8> {
        let slot = if self.sponsored {
            rlp_bytes(&[0x00])
        } else {
            rlp_bytes(&[])
        };
        Self::envelope(TX_TYPE, &self.fields(slot))
    }

    /// The sender's secp256k1 message hash.
    pub fn signing_hash(&self) -> [u8; 32] {
        Keccak256::digest(self.unsigned_envelope()).into()
    }

    /// The signed transaction from the sender `from` and its signature `r || s || v`:
    /// `0x76 || rlp([..., 0x, ..., signature])`, or for a sponsored transaction the
    /// fee-payer envelope `0x78 || rlp([..., from, ..., signature])`.
    pub fn signed(&self, from: &[u8; 20], signature: &[u8; 65]) -> Vec<u8> {
        let mut sig = *signature;
        if sig[64] < 27 {
            sig[64] += 27;
        }
        let (ty, slot) = if self.sponsored {
            (FEE_PAYER_TX_TYPE, rlp_bytes(from))
        } else {
            (TX_TYPE, rlp_bytes(&[]))
        };
        let mut fields = self.fields(slot);
        fields.push(rlp_bytes(&sig));
        Self::envelope(ty, &fields)
    }

    /// The `eth_estimateGas` request of this transaction from `from` (without gas and
    /// fees).
    fn estimate_request(&self, from: &[u8; 20]) -> Value {
        json!({
            "from": format!("0x{}", hex::encode(from)),
            "type": "0x76",
            "chainId": format!("{:#x}", self.chain_id),
            "calls": [{
                "to": format!("0x{}", hex::encode(self.to)),
                "value": "0x0",
                "data": format!("0x{}", hex::encode(&self.data)),
            }],
            "nonceKey": format!("0x{}", "f".repeat(64)),
            "nonce": "0x0",
            "validBefore": format!("{:#x}", self.valid_before),
        })
    }
}

#[derive(Debug)]
struct TempoCharge {
    challenge: Challenge,
    request: TempoChargeRequest,
}

/// A node's refusal to estimate the transfer: the wallet cannot make it as it stands.
fn refused(e: crate::ChainError) -> BuildError {
    match e.kind() {
        ChainErrorKind::JsonRpc { message, .. } => BuildError::Input(err(
            "paymentInstrumentId",
            format!(
                "{} refused to estimate the transfer from the payment instrument's wallet ({}): the wallet may lack the amount or the fee. No budget was consumed.",
                e.chain().as_str(),
                clip(message, 200)
            ),
        )),
        _ => BuildError::Chain(e),
    }
}

#[async_trait]
impl Kind for TempoCharge {
    async fn build(&self, ctx: &BuildContext<'_>) -> Result<Box<dyn Unsigned>, BuildError> {
        self.challenge.check_not_expired(ctx.now)?;
        let req = &self.request;
        let from = parse_address_hex(ctx.payer).ok_or_else(|| {
            BuildError::Input(err(
                "paymentInstrumentId",
                "The payment instrument's wallet is not an EVM wallet.",
            ))
        })?;
        let mut valid_before = ctx.now + VALIDITY_SECONDS;
        if let Some((_, at)) = &self.challenge.expires {
            valid_before = valid_before.min(*at as u64);
        }
        let memo = attribution_memo(&self.challenge.realm, &self.challenge.id);
        let mut tx = TempoTx {
            chain_id: req
                .chain
                .evm_chain_id()
                .expect("a Tempo chain has a chain id"),
            max_priority_fee_per_gas: 0,
            max_fee_per_gas: 0,
            gas: 0,
            to: req.currency,
            data: transfer_with_memo_calldata(&req.recipient, req.amount, &memo),
            valid_before,
            sponsored: req.sponsored,
        };
        let rpc = ctx.chains;
        let (estimate, priority, base) = tokio::try_join!(
            async {
                rpc.evm_estimate_gas_of(req.chain, tx.estimate_request(&from))
                    .await
                    .map_err(refused)
            },
            async { Ok::<_, BuildError>(rpc.evm_max_priority_fee(req.chain).await?) },
            async { Ok::<_, BuildError>(rpc.evm_next_base_fee(req.chain).await?) },
        )?;
        tx.gas = estimate.saturating_add(GAS_MARGIN);
        if tx.gas > MAX_GAS {
            return Err(BuildError::Input(err(
                "paymentInstrumentId",
                format!(
                    "{} estimates the transfer at {estimate} gas, more than the {MAX_GAS} this server signs for. No budget was consumed.",
                    req.chain.as_str()
                ),
            )));
        }
        tx.max_priority_fee_per_gas = priority;
        tx.max_fee_per_gas = (base.saturating_mul(12) / 10).saturating_add(priority);
        Ok(Box::new(TempoChargeUnsigned {
            challenge: self.challenge.clone(),
            from,
            tx,
        }))
    }
}

#[derive(Debug)]
struct TempoChargeUnsigned {
    challenge: Challenge,
    from: [u8; 20],
    tx: TempoTx,
}

impl Unsigned for TempoChargeUnsigned {
    fn to_sign(&self) -> ToSign {
        ToSign::EvmTransaction {
            digest: self.tx.signing_hash(),
            unsigned: self.tx.unsigned_envelope(),
        }
    }

    fn finish(&self, signature: &Signature) -> Option<Value> {
        let Signature::Secp256k1(sig) = signature else {
            return None;
        };
        let raw = self.tx.signed(&self.from, sig);
        let payload = json!({
            "signature": format!("0x{}", hex::encode(raw)),
            "type": "transaction",
        });
        let source = format!(
            "did:pkh:eip155:{}:{}",
            self.tx.chain_id,
            checksum_address(&self.from)
        );
        Some(json!({
            "selectedPaymentId": self.challenge.id,
            "paymentCredential": self.challenge.credential(payload, Some(source)),
        }))
    }
}
