//! Every payment kind behind one shape, so that ProcessPayment and the ledger never name
//! a kind (x402 `exact` on EVM today; `upto`, `exact` on Solana and MPP are added beside
//! it as further [`Kind`]s).
//!
//! A payment goes through three kind-specific steps, each behind this module's types:
//!
//! 1. **Read the requirement** ([`parse`]): the whole validation catalogue of the kind
//!    (B22-B24); every problem is an [`InputError`] naming the request field. The result,
//!    a [`Requirement`], says what the payment pays (`amount` of `asset` to `payee` on
//!    `chain`), what the session is debited (`debit`, atomic USDC units = micro-dollars),
//!    and carries the kind itself.
//! 2. **Build what the payer signs** ([`Kind::build`]), once the core has checked the
//!    session and the instrument: the EIP-3009 authorization, a Permit2 witness, a Solana
//!    transaction. A kind that needs the chain (a recent blockhash, an allowance) reads it
//!    here, through [`BuildContext::chains`], before the ledger runs: no chain call ever
//!    happens inside a database transaction. A kind that must act on chain first (the
//!    upto `approve`) signs that with [`BuildContext::signer`].
//! 3. **Turn the signature into the reply** ([`Unsigned::finish`]): the ledger signs
//!    [`Unsigned::to_sign`] with the instrument's key (or, later, its wallet service)
//!    after the budget is reserved, and stores what `finish` returns.
//!
//! This module holds no key material: signing is the caller's ([`PayerSigner`]).

use std::fmt;

use async_trait::async_trait;
use serde_json::Value;

use crate::chain::Chain;
use crate::reader::BalanceReader;
use crate::{ChainError, x402};

pub use crate::x402::X402Error as InputError;

/// ProcessPayment's `paymentType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentType {
    CryptoX402,
    Mpp,
}

impl PaymentType {
    /// The wire name (`CRYPTO_X402`, `MPP`).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentType::CryptoX402 => "CRYPTO_X402",
            PaymentType::Mpp => "MPP",
        }
    }
}

/// ProcessPayment's `paymentInput` (after wire validation).
#[derive(Debug, Clone)]
pub enum PaymentInput {
    /// `paymentInput.cryptoX402`.
    X402 {
        version: String,
        /// The one PaymentRequirements object the agent picked.
        payload: Value,
        permit2_allowance_limit: Option<String>,
    },
    /// `paymentInput.mpp`.
    Mpp {
        version: String,
        www_authenticate_headers: Vec<String>,
        buyer_pays_gas_fees: Option<bool>,
    },
}

/// A checked requirement: what one payment pays and debits, and its kind.
#[derive(Debug)]
pub struct Requirement {
    pub payment_type: PaymentType,
    /// The protocol version of the input (x402 "1" / "2", MPP's version).
    pub version: String,
    /// The x402 scheme (`exact`, `upto`) or the MPP method (`evm`, `solana`, `tempo`).
    pub scheme: String,
    pub chain: Chain,
    /// The network as the requirement spelled it.
    pub network: String,
    /// The recipient, in its chain's canonical spelling.
    pub payee: String,
    /// The token (USDC contract or mint).
    pub asset: String,
    /// What the payment transfers (for `upto`: the signed maximum), atomic units.
    pub amount: u128,
    /// What the session is debited, atomic USDC units (= micro-dollars, B21).
    pub debit: u128,
    /// The request field that carries the amount (named by the ceiling's refusal).
    pub amount_field: String,
    pub kind: Box<dyn Kind>,
}

/// Read and check a payment input: the kind is chosen by the input (x402 `scheme` and
/// `network`, or the MPP challenge's `method`).
pub fn parse(input: &PaymentInput) -> Result<Requirement, InputError> {
    match input {
        PaymentInput::X402 {
            version,
            payload,
            permit2_allowance_limit,
        } => x402::parse_requirement(version, payload, permit2_allowance_limit.as_deref()),
        PaymentInput::Mpp {
            version,
            www_authenticate_headers,
            buyer_pays_gas_fees,
        } => crate::mpp::parse_requirement(version, www_authenticate_headers, *buyer_pays_gas_fees),
    }
}

/// What a kind gets to build the payer's message.
pub struct BuildContext<'a> {
    /// The payer's address (EVM: EIP-55 `0x...`; Solana: base58).
    pub payer: &'a str,
    /// Unix seconds.
    pub now: u64,
    /// The chains' JSON-RPC endpoints (timeouts and redaction built in).
    pub chains: &'a BalanceReader,
    /// Signs with the payer's key, for a kind that must act on chain before the payment
    /// itself (the upto `approve`).
    pub signer: &'a dyn PayerSigner,
}

/// Why a kind could not build a payment. None consumes budget.
#[derive(Debug)]
pub enum BuildError {
    /// The input is not payable as given (a ValidationException naming the field).
    Input(InputError),
    /// A chain did not answer or refused (the message names the chain, never a secret).
    Chain(ChainError),
    /// The payer's key could not sign.
    Signing,
}

impl From<InputError> for BuildError {
    fn from(e: InputError) -> Self {
        BuildError::Input(e)
    }
}

impl From<ChainError> for BuildError {
    fn from(e: ChainError) -> Self {
        BuildError::Chain(e)
    }
}

/// One payment kind: builds what the payer signs for a checked requirement.
#[async_trait]
pub trait Kind: Send + Sync + fmt::Debug {
    async fn build(&self, ctx: &BuildContext<'_>) -> Result<Box<dyn Unsigned>, BuildError>;
}

/// What the payer must sign, and how the signature becomes the reply.
pub trait Unsigned: Send + Sync + fmt::Debug {
    fn to_sign(&self) -> ToSign;
    /// For [`ToSign::TypedData`]: the same message as EIP-712 typed data JSON
    /// (`eth_signTypedData_v4`), for a wallet service that signs typed data rather than a
    /// digest. Built only when asked: a local key needs the digest alone.
    fn typed_data(&self) -> Option<Value> {
        None
    }
    /// The reply's payment output, stored with the payment: for x402 the scheme payload,
    /// for MPP `{"selectedPaymentId", "paymentCredential"}`. `None` for a signature of
    /// another kind of key than `to_sign` asked for (the payment then fails unsigned).
    fn finish(&self, signature: &Signature) -> Option<Value>;
}

/// A message for the payer's key. Each carries what a local key signs (a digest or the
/// message bytes) and what a wallet service would be asked to sign.
#[derive(Debug, Clone)]
pub enum ToSign {
    /// EIP-712 typed data: secp256k1 over `digest` (the JSON: [`Unsigned::typed_data`]).
    TypedData { digest: [u8; 32] },
    /// An EVM transaction: secp256k1 over its signing hash `digest`.
    EvmTransaction { digest: [u8; 32], unsigned: Vec<u8> },
    /// A Solana transaction message: ed25519 over `message`.
    SolanaMessage { message: Vec<u8> },
}

/// A signature by the payer's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// `r || s || v` with v = 27 + recovery id.
    Secp256k1([u8; 65]),
    Ed25519([u8; 64]),
}

/// Signs with one payer's key (the self-custody vault, or a vendor's wallet service).
#[async_trait]
pub trait PayerSigner: Send + Sync {
    async fn sign(&self, what: &ToSign) -> Result<Signature, BuildError>;
}

// ----- for wallet services that sign whole transactions --------------------------------

/// Read one compact-u16 (Solana's short vector length).
fn compact_u16(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, b) in bytes.iter().take(3).enumerate() {
        value |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The signer addresses of a serialized Solana message (legacy or v0), in signature order.
fn solana_signers(message: &[u8]) -> Option<Vec<[u8; 32]>> {
    let body = if message.first()? & 0x80 != 0 {
        message.get(1..)?
    } else {
        message
    };
    let required = *body.first()? as usize;
    let (count, used) = compact_u16(body.get(3..)?)?;
    let keys = body.get(3 + used..3 + used + 32 * count)?;
    (required <= count).then(|| {
        keys.chunks_exact(32)
            .take(required)
            .map(|k| k.try_into().expect("32-byte chunks"))
            .collect()
    })
}

/// The wire transaction of a Solana message with every signature slot empty: what a wallet
/// service that signs transactions (CDP, Privy) is sent.
pub fn solana_unsigned_transaction(message: &[u8]) -> Option<Vec<u8>> {
    let n = solana_signers(message)?.len();
    let mut out = Vec::with_capacity(3 + 64 * n + message.len());
    let mut len = n;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.resize(out.len() + 64 * n, 0);
    out.extend_from_slice(message);
    Some(out)
}

/// The signature of `signer` (base58) in a transaction a wallet service signed, provided
/// the transaction still carries exactly `message` (a service must not change what it
/// was asked to sign).
pub fn solana_signature_in(signed: &[u8], message: &[u8], signer: &str) -> Option<[u8; 64]> {
    let signer: [u8; 32] = bs58::decode(signer).into_vec().ok()?.try_into().ok()?;
    let (count, used) = compact_u16(signed)?;
    let sigs = signed.get(used..used + 64 * count)?;
    if signed.get(used + 64 * count..)? != message {
        return None;
    }
    let index = solana_signers(message)?.iter().position(|k| *k == signer)?;
    let sig: [u8; 64] = sigs.get(64 * index..64 * index + 64)?.try_into().ok()?;
    (sig != [0u8; 64]).then_some(sig)
}

/// One RLP item: (payload offset, payload length, whole item length).
fn rlp_item(b: &[u8]) -> Option<(usize, usize, usize, bool)> {
    let first = *b.first()?;
    let (off, len, list) = match first {
        0x00..=0x7f => (0, 1, false),
        0x80..=0xb7 => (1, (first - 0x80) as usize, false),
        0xb8..=0xbf => {
            let n = (first - 0xb7) as usize;
            (1 + n, be_len(b.get(1..1 + n)?)?, false)
        }
        0xc0..=0xf7 => (1, (first - 0xc0) as usize, true),
        0xf8..=0xff => {
            let n = (first - 0xf7) as usize;
            (1 + n, be_len(b.get(1..1 + n)?)?, true)
        }
    };
    b.get(off..off.checked_add(len)?)?;
    Some((off, len, off + len, list))
}

fn be_len(b: &[u8]) -> Option<usize> {
    (b.len() <= 4).then(|| b.iter().fold(0usize, |a, x| (a << 8) | *x as usize))
}

/// The items (whole encodings) of an RLP list.
fn rlp_items(list: &[u8]) -> Option<Vec<&[u8]>> {
    let (off, len, total, is_list) = rlp_item(list)?;
    if !is_list || total != list.len() {
        return None;
    }
    let mut rest = &list[off..off + len];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (_, _, n, _) = rlp_item(rest)?;
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    Some(out)
}

/// The signature `r || s || v` (v = 27 + yParity) of a signed EIP-1559 transaction a
/// wallet service returned for the unsigned envelope `unsigned`, provided it signs
/// exactly those fields.
pub fn evm_signature_in(signed: &[u8], unsigned: &[u8]) -> Option<[u8; 65]> {
    if signed.first() != Some(&0x02) || unsigned.first() != Some(&0x02) {
        return None;
    }
    let fields = rlp_items(&unsigned[1..])?;
    let items = rlp_items(&signed[1..])?;
    if items.len() != fields.len() + 3 || items[..fields.len()] != fields[..] {
        return None;
    }
    let scalar = |item: &[u8]| -> Option<Vec<u8>> {
        let (off, len, _, list) = rlp_item(item)?;
        (!list && len <= 32).then(|| item[off..off + len].to_vec())
    };
    let parity = scalar(items[fields.len()])?;
    let (r, s) = (
        scalar(items[fields.len() + 1])?,
        scalar(items[fields.len() + 2])?,
    );
    let mut sig = [0u8; 65];
    sig[32 - r.len()..32].copy_from_slice(&r);
    sig[64 - s.len()..64].copy_from_slice(&s);
    sig[64] = 27
        + match parity.as_slice() {
            [] => 0,
            [1] => 1,
            _ => return None,
        };
    Some(sig)
}

#[cfg(test)]
mod remote_tests {
    use super::*;
    use crate::evm_tx::Eip1559Tx;

    /// A v0 message with `n` required signers out of three keys.
    fn message(n: u8) -> (Vec<u8>, [[u8; 32]; 3]) {
        let keys = [[1u8; 32], [2u8; 32], [3u8; 32]];
        let mut m = vec![0x80, n, 0, 1, 3];
        for k in &keys {
            m.extend_from_slice(k);
        }
        m.extend_from_slice(&[9u8; 32]); // blockhash
        m.extend_from_slice(&[0, 0]); // no instructions, no lookups
        (m, keys)
    }

    #[test]
    fn a_solana_signature_is_taken_from_the_signed_transaction_it_belongs_to() {
        let (m, keys) = message(2);
        let unsigned = solana_unsigned_transaction(&m).unwrap();
        assert_eq!(unsigned[0], 2);
        assert_eq!(&unsigned[1..129], &[0u8; 128][..]);
        assert_eq!(&unsigned[129..], &m[..]);
        let mut signed = unsigned.clone();
        signed[65..129].copy_from_slice(&[7u8; 64]);
        let payer = bs58::encode(keys[1]).into_string();
        assert_eq!(solana_signature_in(&signed, &m, &payer), Some([7u8; 64]));
        // the fee payer's slot is empty; a key that is not a signer has none
        assert_eq!(
            solana_signature_in(&signed, &m, &bs58::encode(keys[0]).into_string()),
            None
        );
        assert_eq!(
            solana_signature_in(&signed, &m, &bs58::encode(keys[2]).into_string()),
            None
        );
        // a service that changed the message is not believed
        let mut other = signed.clone();
        *other.last_mut().unwrap() = 1;
        assert_eq!(solana_signature_in(&other, &m, &payer), None);
        assert_eq!(solana_signature_in(&signed[..100], &m, &payer), None);
    }

    #[test]
    fn an_evm_signature_is_taken_from_the_signed_transaction_it_belongs_to() {
        let tx = Eip1559Tx {
            chain_id: 84532,
            nonce: 7,
            max_priority_fee_per_gas: 1_000_000,
            max_fee_per_gas: 2_000_000_000,
            gas_limit: 60_000,
            to: [0x11; 20],
            value: 0,
            data: vec![0xab; 68],
        };
        let mut sig = [0u8; 65];
        sig[..32].copy_from_slice(&[0x00; 32]);
        sig[1] = 0x05; // r with a leading zero byte
        sig[32..64].copy_from_slice(&[0x22; 32]);
        for v in [27u8, 28] {
            sig[64] = v;
            let signed = tx.signed_envelope(&sig);
            assert_eq!(
                evm_signature_in(&signed, &tx.unsigned_envelope()),
                Some(sig)
            );
        }
        // signed over other fields: refused
        let other = Eip1559Tx {
            nonce: 8,
            ..tx.clone()
        };
        let signed = other.signed_envelope(&sig);
        assert_eq!(evm_signature_in(&signed, &tx.unsigned_envelope()), None);
        assert_eq!(
            evm_signature_in(&tx.unsigned_envelope(), &tx.unsigned_envelope()),
            None
        );
    }
}
