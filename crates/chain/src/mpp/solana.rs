//! The MPP `solana` method (draft-solana-charge-00), intent `charge`, pull mode: the
//! payer signs a v0 transaction transferring the challenge's USDC to the recipient's
//! associated token account; the merchant co-signs (when it sponsors the fee) and
//! broadcasts it. Credential payload `{"type": "transaction", "transaction": "<base64 of
//! the wire transaction>"}`, `source` = `did:pkh:<CAIP-2 of the cluster>:<payer>`.
//!
//! # The request
//!
//! `{amount, currency, recipient, description?, externalId?, methodDetails: {network?,
//! decimals?, tokenProgram?, feePayer?, feePayerKey?, recentBlockhash?, splits?,
//! confidential?}}`, checked in this order, every problem naming its member:
//!
//! * `methodDetails`: an object when present (absent = `{}`).
//! * `methodDetails.network`: `mainnet` (also spelled `mainnet-beta`, the reference
//!   SDK's name) = SOLANA, `devnet` = SOLANA_DEVNET; absent = `mainnet`, as the draft
//!   says. `testnet` and `localnet` are refused (no USDC instrument lives there).
//! * `amount`: base units as a decimal string, > 0, at most `u64::MAX`.
//! * `currency`: exactly the cluster's USDC mint (`"sol"`, native SOL, is refused: the
//!   instruments hold USDC).
//! * `recipient`: base58 of 32 bytes (the owner of the destination token account).
//! * `methodDetails.decimals`: 6 when present (the reference client assumes 6 when absent,
//!   and so does this server).
//! * `methodDetails.tokenProgram`: the classic SPL Token program when present (USDC's).
//! * `methodDetails.splits`: refused when non-empty; `methodDetails.confidential`: refused
//!   when `true` (the bundle profile is not signed here).
//! * `methodDetails.feePayer` / `feePayerKey`: see "Fees".
//! * `methodDetails.recentBlockhash`: base58 of 32 bytes when present; it is then the
//!   transaction's lifetime (the draft's advice), else the blockhash is read from the
//!   cluster's RPC.
//! * `externalId`: a string of at most [`MAX_EXTERNAL_ID_BYTES`] bytes; it becomes a Memo
//!   instruction, as the draft recommends and the reference server verifies.
//!
//! # Fees (`buyerPaysGasFees`)
//!
//! AgentCore pays `solana` challenges in pull mode with server-sponsored fees (B27):
//! `methodDetails.feePayer: true` with `feePayerKey`, the merchant's fee payer, set as the
//! transaction's fee payer; its signature slot is left empty for the merchant, the payer
//! signs only as the transfer authority. `buyerPaysGasFees` cannot change that: the draft
//! requires the transaction to name `feePayerKey` when `feePayer` is `true`.
//!
//! A challenge that does not sponsor the fee (`feePayer` false or absent) makes the payer
//! the fee payer (the draft: the client "MUST set itself as the fee payer and fully sign
//! the transaction"). The wallet then spends SOL, so such a challenge is paid only when
//! the caller says so with `buyerPaysGasFees: true`; otherwise it is refused, naming
//! `paymentInput.mpp.buyerPaysGasFees`. `feePayerKey` without `feePayer: true` is refused
//! (the draft forbids it).
//!
//! # The transaction
//!
//! What the reference client (`@solana/mpp` 0.6.0, `buildChargeTransaction`) builds for a
//! USDC charge without splits: ComputeBudget `SetComputeUnitPrice(1 micro-lamport)`,
//! ComputeBudget `SetComputeUnitLimit(200_000)` (the reference server's maximum), Token
//! `TransferChecked(amount, 6)` from the payer's associated token account to the
//! recipient's, then a Memo with `externalId` when given; compiled as `@solana/kit`
//! compiles v0 messages (the x402 `exact` builder's [`build_transaction_message`]).

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{Challenge, PREFIX, err, field, string};
use crate::chain::Chain;
use crate::payment::{
    BuildContext, BuildError, InputError, Kind, PaymentType, Requirement, Signature, ToSign,
    Unsigned,
};
use crate::x402::exact_svm::{
    Address, CompiledMessage, TOKEN_PROGRAM, address_string, build_transaction_message,
    compute_unit_limit, compute_unit_price, memo_instruction, parse_address, usdc_transfer_checked,
    wire_transaction,
};

/// The compute unit limit the reference client sets (and the reference server's maximum).
pub const COMPUTE_UNIT_LIMIT: u32 = 200_000;
/// The compute unit price the reference client sets, micro-lamports.
pub const COMPUTE_UNIT_PRICE_MICRO_LAMPORTS: u64 = 1;
/// The longest `externalId` (the Memo program's limit, as the draft says).
pub const MAX_EXTERNAL_ID_BYTES: usize = 566;

fn address_member(value: Option<&Value>, path: &str) -> Result<Address, InputError> {
    let f = field(path);
    match value {
        Some(Value::String(s)) => parse_address(s).ok_or_else(|| {
            err(
                &f,
                format!("{f} {s:?} is not a Solana address (base58 of 32 bytes)"),
            )
        }),
        None | Some(Value::Null) => Err(err(
            &f,
            format!("{f} is required (a base58 Solana address)"),
        )),
        Some(other) => Err(err(&f, format!("{f} must be a base58 string, got {other}"))),
    }
}

/// Who pays the transaction fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeePayer {
    /// The merchant's `feePayerKey` (its signature slot left empty).
    Merchant(Address),
    /// The paying wallet (`buyerPaysGasFees: true` on a challenge without sponsorship).
    Payer,
}

#[derive(Debug, Clone)]
struct SolanaChargeRequest {
    chain: Chain,
    amount: u64,
    recipient: Address,
    mint: Address,
    fee_payer: FeePayer,
    recent_blockhash: Option<Address>,
    external_id: Option<String>,
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
    let chain = match details.get("network") {
        None | Some(Value::Null) => Chain::Solana,
        Some(Value::String(n)) if n == "mainnet" || n == "mainnet-beta" => Chain::Solana,
        Some(Value::String(n)) if n == "devnet" => Chain::SolanaDevnet,
        Some(other) => {
            let f = field("methodDetails.network");
            return Err(err(
                &f,
                format!(
                    "{f} must be \"mainnet\" (SOLANA) or \"devnet\" (SOLANA_DEVNET), got {other}"
                ),
            ));
        }
    };

    let text = string(req, "amount")?;
    let f = field("amount");
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            &f,
            format!("{f} must be base units as a decimal string, got {text:?}"),
        ));
    }
    let amount = match text.parse::<u64>() {
        Ok(0) => return Err(err(&f, format!("{f} must be greater than 0"))),
        Ok(n) => n,
        Err(_) => {
            return Err(err(
                &f,
                format!(
                    "{f} is too large for an SPL token transfer (at most {})",
                    u64::MAX
                ),
            ));
        }
    };

    let usdc = chain.usdc_address();
    let currency = string(req, "currency")?;
    if currency != usdc {
        let f = field("currency");
        let what = if currency.eq_ignore_ascii_case("sol") {
            "native SOL is not paid by this server".to_owned()
        } else {
            format!("{currency:?} is not the USDC mint of {}", chain.as_str())
        };
        return Err(err(
            &f,
            format!("{f}: {what}; only USDC ({usdc}) is accepted"),
        ));
    }
    let mint = parse_address(usdc).expect("a USDC mint constant is an address");
    let recipient = address_member(req.get("recipient"), "recipient")?;

    if let Some(d) = details.get("decimals")
        && d.as_u64() != Some(u64::from(crate::USDC_DECIMALS))
    {
        let f = field("methodDetails.decimals");
        return Err(err(&f, format!("{f} must be 6 (USDC), got {d}")));
    }
    if let Some(p) = details.get("tokenProgram")
        && p.as_str() != Some(TOKEN_PROGRAM)
    {
        let f = field("methodDetails.tokenProgram");
        return Err(err(
            &f,
            format!("{f} must be the SPL Token program ({TOKEN_PROGRAM}), USDC's, got {p}"),
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
    match details.get("confidential") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(_) => {
            let f = field("methodDetails.confidential");
            return Err(err(
                &f,
                format!("{f}: confidential transfers (Token-2022 bundles) are not supported"),
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
    let key = details.get("feePayerKey").filter(|v| !v.is_null());
    let fee_payer = if sponsored {
        FeePayer::Merchant(address_member(key, "methodDetails.feePayerKey")?)
    } else if key.is_some() {
        let f = field("methodDetails.feePayerKey");
        return Err(err(
            &f,
            format!("{f} must be absent unless methodDetails.feePayer is true"),
        ));
    } else if buyer_pays_gas_fees == Some(true) {
        FeePayer::Payer
    } else {
        let f = format!("{PREFIX}.buyerPaysGasFees");
        return Err(err(
            &f,
            format!(
                "the challenge does not sponsor the Solana transaction fee ({} is not true), so the wallet would pay it; set {f} to true to allow that, or ask the merchant for a fee-sponsored challenge",
                field("methodDetails.feePayer")
            ),
        ));
    };

    let recent_blockhash = match details.get("recentBlockhash") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let hash = v.as_str().and_then(parse_address).ok_or_else(|| {
                let f = field("methodDetails.recentBlockhash");
                err(
                    &f,
                    format!("{f} must be a blockhash (base58 of 32 bytes), got {v}"),
                )
            })?;
            Some(hash)
        }
    };
    let external_id = match req.get("externalId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if s.len() > MAX_EXTERNAL_ID_BYTES => {
            let f = field("externalId");
            return Err(err(
                &f,
                format!(
                    "{f} is too long for a Memo instruction (at most {MAX_EXTERNAL_ID_BYTES} bytes)"
                ),
            ));
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            let f = field("externalId");
            return Err(err(&f, format!("{f} must be a string, got {other}")));
        }
    };

    let request = SolanaChargeRequest {
        chain,
        amount,
        recipient,
        mint,
        fee_payer,
        recent_blockhash,
        external_id,
    };
    Ok(Requirement {
        payment_type: PaymentType::Mpp,
        version: "1".into(),
        scheme: "solana".into(),
        chain,
        network: chain.caip2().to_owned(),
        payee: address_string(&recipient),
        asset: usdc.to_owned(),
        amount: u128::from(amount),
        debit: u128::from(amount),
        amount_field: field("amount"),
        kind: Box::new(SolanaCharge { challenge, request }),
    })
}

#[derive(Debug)]
struct SolanaCharge {
    challenge: Challenge,
    request: SolanaChargeRequest,
}

/// The instructions of a charge of `amount` from `payer` (see the module documentation).
pub fn charge_instructions(
    payer: &Address,
    recipient: &Address,
    mint: &Address,
    amount: u64,
    external_id: Option<&str>,
) -> Vec<crate::x402::exact_svm::Instruction> {
    let mut out = vec![
        compute_unit_price(COMPUTE_UNIT_PRICE_MICRO_LAMPORTS),
        compute_unit_limit(COMPUTE_UNIT_LIMIT),
        usdc_transfer_checked(payer, recipient, mint, amount),
    ];
    if let Some(id) = external_id {
        out.push(memo_instruction(id.as_bytes()));
    }
    out
}

#[async_trait]
impl Kind for SolanaCharge {
    async fn build(&self, ctx: &BuildContext<'_>) -> Result<Box<dyn Unsigned>, BuildError> {
        self.challenge.check_not_expired(ctx.now)?;
        let req = &self.request;
        let payer = parse_address(ctx.payer).ok_or_else(|| {
            BuildError::Input(err(
                "paymentInstrumentId",
                "The payment instrument's wallet is not a Solana wallet.",
            ))
        })?;
        let fee_payer = match req.fee_payer {
            FeePayer::Merchant(key) if key == payer => {
                let f = field("methodDetails.feePayerKey");
                return Err(BuildError::Input(err(
                    &f,
                    format!(
                        "{f} is the paying wallet itself; the fee payer must be the merchant's address"
                    ),
                )));
            }
            FeePayer::Merchant(key) => key,
            FeePayer::Payer => payer,
        };
        let blockhash = match req.recent_blockhash {
            Some(b) => b,
            None => ctx.chains.solana_latest_blockhash(req.chain).await?,
        };
        let instructions = charge_instructions(
            &payer,
            &req.recipient,
            &req.mint,
            req.amount,
            req.external_id.as_deref(),
        );
        let message = build_transaction_message(&fee_payer, &blockhash, &instructions);
        Ok(Box::new(SolanaChargeUnsigned {
            challenge: self.challenge.clone(),
            chain: req.chain,
            payer,
            message,
        }))
    }
}

#[derive(Debug)]
struct SolanaChargeUnsigned {
    challenge: Challenge,
    chain: Chain,
    payer: Address,
    message: CompiledMessage,
}

impl Unsigned for SolanaChargeUnsigned {
    fn to_sign(&self) -> ToSign {
        ToSign::SolanaMessage {
            message: self.message.bytes.clone(),
        }
    }

    fn finish(&self, signature: &Signature) -> Option<Value> {
        let Signature::Ed25519(sig) = signature else {
            return None;
        };
        let wire = wire_transaction(&self.message, &[(self.payer, *sig)]);
        let payload = json!({
            "transaction": base64::engine::general_purpose::STANDARD.encode(wire),
            "type": "transaction",
        });
        let source = format!(
            "did:pkh:{}:{}",
            self.chain.caip2(),
            address_string(&self.payer)
        );
        Some(json!({
            "selectedPaymentId": self.challenge.id,
            "paymentCredential": self.challenge.credential(payload, Some(source)),
        }))
    }
}
