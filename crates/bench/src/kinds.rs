//! The payment kinds ProcessPayment can be benchmarked with (`--kind`): each kind's
//! ProcessPayment input (what the load clients send), the network of its instruments,
//! and its input as `purser_chain::payment::PaymentInput` (for the bare costs).
//!
//! Every input pays one atomic unit of USDC (0.000001 USD), so a 10000 USD session covers
//! 10^10 payments. None needs a chain but `exact-svm`, whose build reads a recent
//! blockhash from the Solana devnet RPC, and `mpp-tempo`, whose build reads a gas
//! estimate and fees from the Tempo Moderato RPC: the bench answers both on 127.0.0.1
//! ([`crate::rpc`]).
use base64::Engine as _;
use purser_chain::Chain;
use purser_chain::payment::PaymentInput;
use purser_chain::x402::exact_svm::address_string;
use serde_json::{Value, json};

use crate::setup;

/// A payment kind of ProcessPayment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PayKind {
    /// x402 v2 `exact` on Base Sepolia, EIP-3009 TransferWithAuthorization.
    ExactEvm,
    /// x402 v2 `exact` on Base Sepolia through Permit2 (`assetTransferMethod: permit2`).
    ExactPermit2,
    /// x402 v2 `upto` on Base Sepolia (Permit2 witness), without permit2AllowanceLimit.
    Upto,
    /// x402 v2 `exact` on Solana devnet (a v0 transaction, fee payer = the facilitator).
    ExactSvm,
    /// MPP `evm` charge on Base Sepolia (EIP-3009 authorization credential).
    MppEvm,
    /// MPP `solana` charge on Solana devnet, sponsored fee, recentBlockhash in the challenge.
    MppSolana,
    /// MPP `tempo` charge on Tempo Moderato (42431), sponsored fee, pathUSD.
    MppTempo,
}

pub const PAYEE_EVM: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
/// The facilitator of the upto requirement.
pub const FACILITATOR_EVM: &str = "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00";

/// A fixed, valid Solana address (base58 of 32 bytes) made of `byte`.
pub fn solana_address(byte: u8) -> String {
    address_string(&[byte; 32])
}

/// The recipient of the Solana kinds.
pub fn payee_solana() -> String {
    solana_address(7)
}

/// The fee payer (x402 facilitator, MPP merchant's feePayerKey) of the Solana kinds.
pub fn fee_payer_solana() -> String {
    solana_address(9)
}

/// The blockhash the bench's RPC answers and the MPP solana challenge carries.
pub fn blockhash() -> String {
    solana_address(5)
}

impl PayKind {
    pub fn name(self) -> &'static str {
        match self {
            PayKind::ExactEvm => "exact-evm",
            PayKind::ExactPermit2 => "exact-permit2",
            PayKind::Upto => "upto",
            PayKind::ExactSvm => "exact-svm",
            PayKind::MppEvm => "mpp-evm",
            PayKind::MppSolana => "mpp-solana",
            PayKind::MppTempo => "mpp-tempo",
        }
    }

    /// What the kind is, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            PayKind::ExactEvm => {
                "x402 v2 `exact` on Base Sepolia (EIP-3009 TransferWithAuthorization, EIP-712 + secp256k1), Ethereum instruments"
            }
            PayKind::ExactPermit2 => {
                "x402 v2 `exact` on Base Sepolia through Permit2 (EIP-712 PermitWitnessTransferFrom + secp256k1), Ethereum instruments"
            }
            PayKind::Upto => {
                "x402 v2 `upto` on Base Sepolia (Permit2 witness, EIP-712 + secp256k1; no permit2AllowanceLimit, so no chain call), Ethereum instruments"
            }
            PayKind::ExactSvm => {
                "x402 v2 `exact` on Solana devnet (v0 transaction message + ed25519; the blockhash read per payment from the bench's loopback RPC), Solana instruments"
            }
            PayKind::MppEvm => {
                "MPP `evm` charge on Base Sepolia (challenge parse, EIP-3009 authorization, EIP-712 + secp256k1, credential), Ethereum instruments"
            }
            PayKind::MppSolana => {
                "MPP `solana` charge on Solana devnet (challenge parse, v0 transaction message + ed25519, credential; recentBlockhash in the challenge, so no chain call), Solana instruments"
            }
            PayKind::MppTempo => {
                "MPP `tempo` charge on Tempo Moderato (challenge parse, gas estimate and fees read per payment from the bench's loopback RPC, Tempo transaction + secp256k1, credential), Ethereum instruments"
            }
        }
    }

    pub fn is_solana(self) -> bool {
        matches!(self, PayKind::ExactSvm | PayKind::MppSolana)
    }

    /// Whether the server reads a chain for each payment of this kind (through the bench's
    /// loopback RPC stand-in).
    pub fn reads_chain(self) -> bool {
        matches!(self, PayKind::ExactSvm | PayKind::MppTempo)
    }

    /// The `network` of the instruments that pay this kind.
    pub fn instrument_network(self) -> &'static str {
        if self.is_solana() {
            "SOLANA"
        } else {
            "ETHEREUM"
        }
    }

    /// The x402 PaymentRequirements (x402 kinds) the agent picked.
    fn x402_requirement(self) -> Option<Value> {
        let usdc = Chain::BaseSepolia.usdc_address();
        match self {
            PayKind::ExactEvm => Some(setup::requirement()),
            PayKind::ExactPermit2 => Some(json!({
                "scheme": "exact", "network": "eip155:84532", "amount": "1", "asset": usdc,
                "payTo": PAYEE_EVM, "maxTimeoutSeconds": 300,
                "extra": {"name": "USDC", "version": "2", "assetTransferMethod": "permit2"}
            })),
            PayKind::Upto => Some(json!({
                "scheme": "upto", "network": "eip155:84532", "amount": "1", "asset": usdc,
                "payTo": PAYEE_EVM, "maxTimeoutSeconds": 300,
                "extra": {"name": "USDC", "version": "2", "assetTransferMethod": "permit2",
                          "facilitatorAddress": FACILITATOR_EVM}
            })),
            PayKind::ExactSvm => Some(json!({
                "scheme": "exact", "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
                "amount": "1", "asset": Chain::SolanaDevnet.usdc_address(),
                "payTo": payee_solana(), "maxTimeoutSeconds": 300,
                "extra": {"feePayer": fee_payer_solana()}
            })),
            PayKind::MppEvm | PayKind::MppSolana | PayKind::MppTempo => None,
        }
    }

    /// The MPP WWW-Authenticate challenge (MPP kinds), as a merchant sends it.
    fn mpp_challenge(self) -> Option<String> {
        let (method, request) = match self {
            PayKind::MppEvm => (
                "evm",
                json!({
                    "amount": "1", "currency": Chain::BaseSepolia.usdc_address(),
                    "recipient": PAYEE_EVM,
                    "methodDetails": {"chainId": 84532, "credentialTypes": ["authorization"],
                                      "decimals": 6}
                }),
            ),
            PayKind::MppSolana => (
                "solana",
                json!({
                    "amount": "1", "currency": Chain::SolanaDevnet.usdc_address(),
                    "recipient": payee_solana(),
                    "methodDetails": {"network": "devnet", "decimals": 6, "feePayer": true,
                                      "feePayerKey": fee_payer_solana(),
                                      "recentBlockhash": blockhash()}
                }),
            ),
            PayKind::MppTempo => (
                "tempo",
                json!({
                    "amount": "1", "currency": Chain::TempoModerato.usdc_address(),
                    "recipient": PAYEE_EVM,
                    "methodDetails": {"chainId": 42431, "feePayer": true}
                }),
            ),
            _ => return None,
        };
        let request = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(request.to_string());
        Some(format!(
            "Payment id=\"ch_bench_0123456789\", realm=\"bench.test\", method=\"{method}\", intent=\"charge\", request=\"{request}\""
        ))
    }

    /// `paymentType` and `paymentInput` of the ProcessPayment body.
    pub fn wire_input(self) -> (&'static str, Value) {
        if let Some(req) = self.x402_requirement() {
            (
                "CRYPTO_X402",
                json!({"cryptoX402": {"version": "2", "payload": req}}),
            )
        } else {
            let h = self.mpp_challenge().expect("an MPP kind has a challenge");
            (
                "MPP",
                json!({"mpp": {"version": "1", "wwwAuthenticateHeaders": [h]}}),
            )
        }
    }

    /// The same input as the server reads it (after wire validation).
    pub fn chain_input(self) -> PaymentInput {
        if let Some(payload) = self.x402_requirement() {
            PaymentInput::X402 {
                version: "2".into(),
                payload,
                permit2_allowance_limit: None,
            }
        } else {
            PaymentInput::Mpp {
                version: "1".into(),
                www_authenticate_headers: vec![
                    self.mpp_challenge().expect("an MPP kind has a challenge"),
                ],
                buyer_pays_gas_fees: None,
            }
        }
    }
}
