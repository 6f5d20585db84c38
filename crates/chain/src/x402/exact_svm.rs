//! x402 `exact` on Solana (`SOLANA`, `SOLANA_DEVNET`) as a [`Kind`]: a partially signed
//! versioned (v0) transaction whose fee payer is the facilitator (`extra.feePayer`).
//!
//! # Validation ([`parse_exact_svm`])
//!
//! Every error is an [`X402Error`] whose `field` is the full request path. In order:
//!
//! * `version`: `"1"` or `"2"`; `payload`: a JSON object.
//! * `scheme`: `"exact"`.
//! * `network`: `solana` / `solana-devnet` or their CAIP-2 ids
//!   (`solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp`, `solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1`),
//!   either spelling in either version.
//! * `permit2AllowanceLimit`: refused (it belongs to `upto`, which is EVM only).
//! * the amount (`maxAmountRequired` / `amount`, as for EVM): decimal digits, > 0, and at
//!   most `u64::MAX` (an SPL token amount is a u64).
//! * `asset`: exactly the network's USDC mint (base58 is case-sensitive).
//! * `payTo`: base58 of exactly 32 bytes (off-curve owners are allowed, as the reference
//!   client allows them).
//! * `maxTimeoutSeconds`: as for EVM (1..=86,400). The transaction's real lifetime is its
//!   blockhash's (about 60-90 s).
//! * `extra`: an object; `extra.feePayer` required, base58 of 32 bytes; `extra.memo`
//!   optional, a string of at most [`MAX_MEMO_BYTES`] UTF-8 bytes. At build time the fee
//!   payer must not be the paying wallet.
//!
//! # The transaction ([`build_transaction_message`])
//!
//! What the reference client `@x402/svm` 2.27.0 (`exact/client`, `exact/v1/client`)
//! builds, for the classic SPL Token program (USDC's):
//!
//! 0. ComputeBudget `SetComputeUnitLimit(20_000)`,
//! 1. ComputeBudget `SetComputeUnitPrice(1 micro-lamport)` (the facilitator accepts at
//!    most 5,000,000),
//! 2. Token `TransferChecked(amount, 6)`: source = the payer's associated token account,
//!    mint, destination = `payTo`'s associated token account, authority = the payer,
//! 3. Memo: `extra.memo` when given, else 32 hex characters of 16 random bytes (so two
//!    payments of the same amount in the same blockhash window differ).
//!
//! The fee payer is `extra.feePayer` (first account, its signature slot left zeroed),
//! the lifetime a recent blockhash read from the chain's RPC (`getLatestBlockhash`),
//! accounts ordered as `@solana/kit` orders them, no address lookup tables. The payer
//! signs the v0 message bytes with ed25519; the scheme payload is
//! `{"transaction": "<base64 of the wire transaction>"}` in both x402 versions.

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{
    PAYLOAD, PREFIX, X402Error, describe, parse_amount_members, parse_max_timeout, quoted,
    required_string,
};
use crate::chain::{Chain, Family, USDC_DECIMALS};
use crate::payment::{
    BuildContext, BuildError, Kind, PaymentType, Requirement, Signature, ToSign, Unsigned,
};

/// A Solana address (public key or program-derived address).
pub type Address = [u8; 32];

/// The SPL Token program.
pub const TOKEN_PROGRAM: &str = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
/// The Associated Token Account program.
pub const ASSOCIATED_TOKEN_PROGRAM: &str = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL";
/// The Compute Budget program.
pub const COMPUTE_BUDGET_PROGRAM: &str = "ComputeBudget111111111111111111111111111111";
/// The Memo program (v2).
pub const MEMO_PROGRAM: &str = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr";

/// The compute unit limit the reference client sets.
pub const COMPUTE_UNIT_LIMIT: u32 = 20_000;
/// The compute unit price (micro-lamports) the reference client sets.
pub const COMPUTE_UNIT_PRICE_MICRO_LAMPORTS: u64 = 1;
/// The longest `extra.memo`, in bytes (the reference client's limit).
pub const MAX_MEMO_BYTES: usize = 256;

/// Parses base58 of exactly 32 bytes.
pub fn parse_address(s: &str) -> Option<Address> {
    if s.is_empty() || s.len() > 44 {
        return None;
    }
    let mut out = [0u8; 32];
    match bs58::decode(s).onto(&mut out[..]) {
        Ok(32) => Some(out),
        _ => None,
    }
}

/// The base58 spelling of an address.
pub fn address_string(a: &Address) -> String {
    bs58::encode(a).into_string()
}

pub(crate) fn program(s: &str) -> Address {
    parse_address(s).expect("a program id constant is a valid address")
}

/// Whether 32 bytes are a point of the ed25519 curve (a PDA must not be).
fn is_on_curve(bytes: &Address) -> bool {
    curve25519_dalek::edwards::CompressedEdwardsY(*bytes)
        .decompress()
        .is_some()
}

/// `find_program_address`: the first bump from 255 down whose
/// `sha256(seeds || [bump] || program || "ProgramDerivedAddress")` is off the curve.
pub fn find_program_address(seeds: &[&[u8]], program_id: &Address) -> Option<(Address, u8)> {
    for bump in (0..=255u8).rev() {
        let mut h = Sha256::new();
        for seed in seeds {
            h.update(seed);
        }
        h.update([bump]);
        h.update(program_id);
        h.update(b"ProgramDerivedAddress");
        let candidate: Address = h.finalize().into();
        if !is_on_curve(&candidate) {
            return Some((candidate, bump));
        }
    }
    None
}

/// The associated token account of `owner` for `mint` under the classic SPL Token
/// program: the PDA of `[owner, token program, mint]` under the ATA program.
pub fn associated_token_address(owner: &Address, mint: &Address) -> Address {
    let token = program(TOKEN_PROGRAM);
    find_program_address(&[owner, &token, mint], &program(ASSOCIATED_TOKEN_PROGRAM))
        .expect("some bump gives an off-curve address")
        .0
}

/// A checked x402 `exact` requirement on Solana.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactSvmRequirement {
    pub version: u8,
    pub chain: Chain,
    /// `network` as given.
    pub network: String,
    /// Atomic units (USDC: 6 decimals).
    pub amount: u64,
    pub pay_to: Address,
    /// The USDC mint of `chain`.
    pub mint: Address,
    pub max_timeout_seconds: u64,
    /// `extra.feePayer`: the facilitator, who pays the fees and signs last.
    pub fee_payer: Address,
    /// `extra.memo`, when given.
    pub memo: Option<String>,
}

/// Whether the requirement is an `exact` one on a Solana network (what this module
/// reads); anything else goes to the other kinds.
pub(crate) fn applies(payload: &Value) -> bool {
    let Some(obj) = payload.as_object() else {
        return false;
    };
    obj.get("scheme").and_then(Value::as_str) == Some("exact")
        && obj
            .get("network")
            .and_then(Value::as_str)
            .and_then(Chain::from_x402_network)
            .is_some_and(|c| c.family() == Family::Solana)
}

/// Reads an `exact` requirement on Solana as a [`Requirement`] (debit = amount).
pub(crate) fn parse_requirement(
    version: &str,
    payload: &Value,
    permit2_allowance_limit: Option<&str>,
) -> Result<Requirement, X402Error> {
    let r = parse_exact_svm(version, payload, permit2_allowance_limit)?;
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
        payee: address_string(&r.pay_to),
        asset: address_string(&r.mint),
        amount: u128::from(r.amount),
        debit: u128::from(r.amount),
        amount_field: format!("{PAYLOAD}.{amount_member}"),
        kind: Box::new(ExactSvm(r)),
    })
}

const SOLANA_NETWORKS: &str = "solana, solana-devnet, solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp or solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";

/// Checks the x402 `PaymentRequirements` object an agent picked for an `exact` payment
/// on Solana (see the module documentation for every rule).
pub fn parse_exact_svm(
    version: &str,
    payload: &Value,
    permit2_allowance_limit: Option<&str>,
) -> Result<ExactSvmRequirement, X402Error> {
    let version: u8 = match version {
        "1" => 1,
        "2" => 2,
        other => {
            let field = format!("{PREFIX}.version");
            return Err(X402Error::new(
                &field,
                format!("{field} must be \"1\" or \"2\", got {}", quoted(other)),
            ));
        }
    };
    let Value::Object(obj) = payload else {
        return Err(X402Error::new(
            PAYLOAD,
            format!(
                "{PAYLOAD} must be a JSON object (an x402 PaymentRequirements), got {}",
                describe(payload)
            ),
        ));
    };

    let scheme = required_string(obj, "scheme", "(\"exact\")")?;
    if scheme != "exact" {
        let field = format!("{PAYLOAD}.scheme");
        return Err(X402Error::new(
            &field,
            format!(
                "{field} {} is not supported on Solana networks; only \"exact\" is",
                quoted(scheme)
            ),
        ));
    }

    let network = required_string(obj, "network", &format!("(one of {SOLANA_NETWORKS})"))?;
    let chain = match Chain::from_x402_network(network) {
        Some(c) if c.family() == Family::Solana => c,
        _ => {
            let field = format!("{PAYLOAD}.network");
            return Err(X402Error::new(
                &field,
                format!(
                    "{field} {} is not a Solana network; expected one of {SOLANA_NETWORKS}",
                    quoted(network)
                ),
            ));
        }
    };

    if permit2_allowance_limit.is_some() {
        let field = format!("{PREFIX}.permit2AllowanceLimit");
        return Err(X402Error::new(
            &field,
            format!(
                "{field} is only valid with scheme \"upto\" on EVM networks; omit it for scheme \"exact\" on Solana"
            ),
        ));
    }

    let amount = parse_amount_members(obj, version)?;
    let amount = u64::try_from(amount).map_err(|_| {
        let member = if obj.get("amount").is_some_and(|v| !v.is_null()) {
            "amount"
        } else {
            "maxAmountRequired"
        };
        let field = format!("{PAYLOAD}.{member}");
        X402Error::new(
            &field,
            format!(
                "{field} {amount} is too large for an SPL token transfer (at most {})",
                u64::MAX
            ),
        )
    })?;

    let usdc = chain.usdc_address();
    let asset = required_string(
        obj,
        "asset",
        &format!("(the USDC mint of {}: {usdc})", chain.as_str()),
    )?;
    if asset != usdc {
        let field = format!("{PAYLOAD}.asset");
        return Err(X402Error::new(
            &field,
            format!(
                "{field} {} is not the USDC mint of {network}; only USDC ({usdc}) is accepted",
                quoted(asset)
            ),
        ));
    }
    let mint = program(usdc);

    let pay_to_text = required_string(obj, "payTo", "(a base58 Solana address)")?;
    let pay_to = parse_address(pay_to_text).ok_or_else(|| {
        let field = format!("{PAYLOAD}.payTo");
        X402Error::new(
            &field,
            format!(
                "{field} {} is not a Solana address (base58 of 32 bytes)",
                quoted(pay_to_text)
            ),
        )
    })?;

    let max_timeout_seconds = parse_max_timeout(obj)?;
    let (fee_payer, memo) = parse_extra(obj)?;

    Ok(ExactSvmRequirement {
        version,
        chain,
        network: network.to_string(),
        amount,
        pay_to,
        mint,
        max_timeout_seconds,
        fee_payer,
        memo,
    })
}

fn parse_extra(obj: &Map<String, Value>) -> Result<(Address, Option<String>), X402Error> {
    let extra_field = format!("{PAYLOAD}.extra");
    let fee_field = format!("{extra_field}.feePayer");
    let what = "(the facilitator's address that pays the transaction fee, base58)";
    let extra = match obj.get("extra") {
        None | Some(Value::Null) => {
            return Err(X402Error::new(
                &fee_field,
                format!(
                    "{fee_field} is required for Solana networks {what}, but {extra_field} is missing"
                ),
            ));
        }
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(X402Error::new(
                &extra_field,
                format!(
                    "{extra_field} must be an object {{feePayer, memo?}}, got {}",
                    describe(other)
                ),
            ));
        }
    };
    let fee_payer = match extra.get("feePayer") {
        None | Some(Value::Null) => {
            return Err(X402Error::new(
                &fee_field,
                format!("{fee_field} is required for Solana networks {what}"),
            ));
        }
        Some(Value::String(s)) => parse_address(s).ok_or_else(|| {
            X402Error::new(
                &fee_field,
                format!(
                    "{fee_field} {} is not a Solana address (base58 of 32 bytes)",
                    quoted(s)
                ),
            )
        })?,
        Some(other) => {
            return Err(X402Error::new(
                &fee_field,
                format!(
                    "{fee_field} must be a string {what}, got {}",
                    describe(other)
                ),
            ));
        }
    };
    let memo_field = format!("{extra_field}.memo");
    let memo = match extra.get("memo") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if s.len() > MAX_MEMO_BYTES => {
            return Err(X402Error::new(
                &memo_field,
                format!("{memo_field} is too long (at most {MAX_MEMO_BYTES} bytes)"),
            ));
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(X402Error::new(
                &memo_field,
                format!("{memo_field} must be a string, got {}", describe(other)),
            ));
        }
    };
    Ok((fee_payer, memo))
}

/// One instruction: program, accounts `(address, signer, writable)`, data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub program: Address,
    pub accounts: Vec<(Address, bool, bool)>,
    pub data: Vec<u8>,
}

/// ComputeBudget `SetComputeUnitLimit(units)`.
pub fn compute_unit_limit(units: u32) -> Instruction {
    let mut data = vec![2u8];
    data.extend_from_slice(&units.to_le_bytes());
    Instruction {
        program: program(COMPUTE_BUDGET_PROGRAM),
        accounts: vec![],
        data,
    }
}

/// ComputeBudget `SetComputeUnitPrice(micro_lamports)`.
pub fn compute_unit_price(micro_lamports: u64) -> Instruction {
    let mut data = vec![3u8];
    data.extend_from_slice(&micro_lamports.to_le_bytes());
    Instruction {
        program: program(COMPUTE_BUDGET_PROGRAM),
        accounts: vec![],
        data,
    }
}

/// Token `TransferChecked(amount, 6)` of USDC (classic SPL Token) from `payer`'s
/// associated token account to `pay_to`'s, `payer` signing as the authority.
pub fn usdc_transfer_checked(
    payer: &Address,
    pay_to: &Address,
    mint: &Address,
    amount: u64,
) -> Instruction {
    let mut data = vec![12u8];
    data.extend_from_slice(&amount.to_le_bytes());
    data.push(USDC_DECIMALS);
    Instruction {
        program: program(TOKEN_PROGRAM),
        accounts: vec![
            (associated_token_address(payer, mint), false, true),
            (*mint, false, false),
            (associated_token_address(pay_to, mint), false, true),
            (*payer, true, false),
        ],
        data,
    }
}

/// A Memo (v2) instruction without signers.
pub fn memo_instruction(memo: &[u8]) -> Instruction {
    Instruction {
        program: program(MEMO_PROGRAM),
        accounts: vec![],
        data: memo.to_vec(),
    }
}

/// The four instructions of an `exact` payment of `amount` from `payer` (see the module
/// documentation).
pub fn payment_instructions(
    payer: &Address,
    pay_to: &Address,
    mint: &Address,
    amount: u64,
    memo: &[u8],
) -> Vec<Instruction> {
    vec![
        compute_unit_limit(COMPUTE_UNIT_LIMIT),
        compute_unit_price(COMPUTE_UNIT_PRICE_MICRO_LAMPORTS),
        usdc_transfer_checked(payer, pay_to, mint, amount),
        memo_instruction(memo),
    ]
}

/// `@solana/kit`'s address order inside one role group: `Intl.Collator("en",
/// {caseFirst: "lower", sensitivity: "variant"})` on the base58 strings. For base58
/// (ASCII letters and digits) that is: case-insensitive with digits first, then at the
/// first difference of case, lower case first.
fn kit_address_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.to_ascii_lowercase()
        .cmp(&b.to_ascii_lowercase())
        .then_with(|| {
            for (x, y) in a.bytes().zip(b.bytes()) {
                if x != y {
                    // Same letter, different case: lower first.
                    return if x.is_ascii_lowercase() {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    };
                }
            }
            a.len().cmp(&b.len())
        })
}

fn write_compact_u16(out: &mut Vec<u8>, mut v: usize) {
    assert!(v <= 0xffff, "compact-u16 overflow");
    loop {
        let mut byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        byte |= 0x80;
        out.push(byte);
    }
}

/// A compiled v0 message and where the signers are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledMessage {
    /// The serialized message (what every signer signs), starting with the 0x80 prefix.
    pub bytes: Vec<u8>,
    /// The signer addresses in signature order (the fee payer first).
    pub signers: Vec<Address>,
}

/// Compiles a v0 message (no lookup tables): `fee_payer` first, then signers (writable
/// before read-only), then the other writable accounts, then read-only ones (programs
/// included), each group in `@solana/kit`'s address order.
pub fn build_transaction_message(
    fee_payer: &Address,
    recent_blockhash: &Address,
    instructions: &[Instruction],
) -> CompiledMessage {
    // (address, signer, writable)
    let mut keys: Vec<(Address, bool, bool)> = vec![(*fee_payer, true, true)];
    let mut add = |addr: Address, signer: bool, writable: bool| {
        if let Some(k) = keys.iter_mut().find(|k| k.0 == addr) {
            k.1 |= signer;
            k.2 |= writable;
        } else {
            keys.push((addr, signer, writable));
        }
    };
    for ix in instructions {
        add(ix.program, false, false);
        for &(a, s, w) in &ix.accounts {
            add(a, s, w);
        }
    }
    let strings: Vec<String> = keys.iter().map(|k| address_string(&k.0)).collect();
    let mut order: Vec<usize> = (1..keys.len()).collect();
    order.sort_by(|&i, &j| {
        let (a, b) = (&keys[i], &keys[j]);
        b.1.cmp(&a.1)
            .then(b.2.cmp(&a.2))
            .then_with(|| kit_address_order(&strings[i], &strings[j]))
    });
    order.insert(0, 0);
    let keys: Vec<(Address, bool, bool)> = order.iter().map(|&i| keys[i]).collect();

    let num_signers = keys.iter().filter(|k| k.1).count();
    let readonly_signed = keys.iter().filter(|k| k.1 && !k.2).count();
    let readonly_unsigned = keys.iter().filter(|k| !k.1 && !k.2).count();
    let index = |a: &Address| -> u8 {
        u8::try_from(
            keys.iter()
                .position(|k| &k.0 == a)
                .expect("every key is listed"),
        )
        .expect("fewer than 256 accounts")
    };

    let mut out = vec![0x80u8];
    out.push(num_signers as u8);
    out.push(readonly_signed as u8);
    out.push(readonly_unsigned as u8);
    write_compact_u16(&mut out, keys.len());
    for k in &keys {
        out.extend_from_slice(&k.0);
    }
    out.extend_from_slice(recent_blockhash);
    write_compact_u16(&mut out, instructions.len());
    for ix in instructions {
        out.push(index(&ix.program));
        write_compact_u16(&mut out, ix.accounts.len());
        for (a, _, _) in &ix.accounts {
            out.push(index(a));
        }
        write_compact_u16(&mut out, ix.data.len());
        out.extend_from_slice(&ix.data);
    }
    write_compact_u16(&mut out, 0); // no address table lookups
    CompiledMessage {
        bytes: out,
        signers: keys.iter().filter(|k| k.1).map(|k| k.0).collect(),
    }
}

/// The wire transaction: the signature slots (zeroed where `signatures` has none), then
/// the message.
pub fn wire_transaction(message: &CompiledMessage, signatures: &[(Address, [u8; 64])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 64 * message.signers.len() + message.bytes.len());
    write_compact_u16(&mut out, message.signers.len());
    for signer in &message.signers {
        let sig = signatures
            .iter()
            .find(|(a, _)| a == signer)
            .map(|(_, s)| *s)
            .unwrap_or([0u8; 64]);
        out.extend_from_slice(&sig);
    }
    out.extend_from_slice(&message.bytes);
    out
}

/// The memo of a payment: `extra.memo`, or 32 hex characters of 16 random bytes.
fn memo_for(req: &ExactSvmRequirement) -> Vec<u8> {
    match &req.memo {
        Some(m) => m.as_bytes().to_vec(),
        None => {
            let mut nonce = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
            hex::encode(nonce).into_bytes()
        }
    }
}

#[derive(Debug)]
pub(crate) struct ExactSvm(pub(crate) ExactSvmRequirement);

#[async_trait]
impl Kind for ExactSvm {
    async fn build(&self, ctx: &BuildContext<'_>) -> Result<Box<dyn Unsigned>, BuildError> {
        let req = &self.0;
        let payer = parse_address(ctx.payer).ok_or_else(|| {
            BuildError::Input(X402Error::new(
                "paymentInstrumentId",
                "The payment instrument's wallet is not a Solana wallet.",
            ))
        })?;
        if payer == req.fee_payer {
            let field = format!("{PAYLOAD}.extra.feePayer");
            return Err(BuildError::Input(X402Error::new(
                &field,
                format!(
                    "{field} is the paying wallet itself; the fee payer must be the facilitator's address"
                ),
            )));
        }
        let blockhash = ctx.chains.solana_latest_blockhash(req.chain).await?;
        let instructions =
            payment_instructions(&payer, &req.pay_to, &req.mint, req.amount, &memo_for(req));
        // The facilitator's rule: the fee payer appears in no instruction (it must not be
        // able to move funds). Only `payer == feePayer` can break it (the other accounts
        // are the mint and PDAs), which is refused above; this keeps the rule explicit.
        if instructions
            .iter()
            .any(|ix| ix.accounts.iter().any(|a| a.0 == req.fee_payer))
        {
            let field = format!("{PAYLOAD}.extra.feePayer");
            return Err(BuildError::Input(X402Error::new(
                &field,
                format!("{field} must not be an account of the transfer"),
            )));
        }
        let message = build_transaction_message(&req.fee_payer, &blockhash, &instructions);
        Ok(Box::new(ExactSvmUnsigned { payer, message }))
    }
}

#[derive(Debug)]
struct ExactSvmUnsigned {
    payer: Address,
    message: CompiledMessage,
}

impl Unsigned for ExactSvmUnsigned {
    fn to_sign(&self) -> ToSign {
        ToSign::SolanaMessage {
            message: self.message.bytes.clone(),
        }
    }

    fn finish(&self, signature: &Signature) -> Option<Value> {
        match signature {
            Signature::Ed25519(sig) => {
                let wire = wire_transaction(&self.message, &[(self.payer, *sig)]);
                Some(json!({
                    "transaction": base64::engine::general_purpose::STANDARD.encode(wire),
                }))
            }
            Signature::Secp256k1(_) => None,
        }
    }
}
