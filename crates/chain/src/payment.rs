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

/// Signs with one payer's key (the self-custody vault; later a wallet service).
pub trait PayerSigner: Send + Sync {
    fn sign(&self, what: &ToSign) -> Result<Signature, BuildError>;
}
