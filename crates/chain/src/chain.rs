//! The chain table: every chain Purser knows, with its identifiers, its USDC
//! deployment and where its RPC endpoint comes from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A chain Purser pays on. The first five ([`Chain::ALL`]) are the AgentCore
/// `BlockchainChainId` values accepted by `GetPaymentInstrumentBalance` (`chain`), whose
/// wire name ([`Chain::as_str`]) is the enum value. The Tempo chains
/// ([`Chain::TEMPO`]) are not in that enum: they are reached only by MPP `tempo`
/// challenges, which name them by EVM chain id, and are named `TEMPO_<chain id>` here
/// (configuration keys, error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Chain {
    /// Base mainnet (EVM chain id 8453).
    Base,
    /// Base Sepolia testnet (EVM chain id 84532).
    BaseSepolia,
    /// Ethereum mainnet (EVM chain id 1).
    Ethereum,
    /// Solana mainnet-beta.
    Solana,
    /// Solana devnet.
    SolanaDevnet,
    /// Tempo mainnet (EVM chain id 4217); MPP `tempo` only.
    Tempo,
    /// Tempo testnet "Moderato" (EVM chain id 42431); MPP `tempo` only.
    TempoModerato,
}

/// The family of a chain: how addresses look and how balances are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// EVM chains: 20-byte hex addresses, ERC-20 `balanceOf` by `eth_call`.
    Ethereum,
    /// Solana: base58 32-byte public keys, SPL token accounts.
    Solana,
}

impl Family {
    /// `"ETHEREUM"` or `"SOLANA"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Family::Ethereum => "ETHEREUM",
            Family::Solana => "SOLANA",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The EIP-712 domain `name` and `version` of a USDC contract (EIP-3009 signing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Eip712Domain {
    /// The domain `name` (`"USD Coin"` or `"USDC"`).
    pub name: &'static str,
    /// The domain `version` (`"2"`).
    pub version: &'static str,
}

/// The number of decimals of USDC on every supported chain.
pub const USDC_DECIMALS: u8 = 6;

impl Chain {
    /// The AgentCore chains (`BlockchainChainId`), in declaration order; see also
    /// [`Chain::EVERY`].
    pub const ALL: [Chain; 5] = [
        Chain::Base,
        Chain::BaseSepolia,
        Chain::Ethereum,
        Chain::Solana,
        Chain::SolanaDevnet,
    ];

    /// The Tempo chains (not AgentCore `BlockchainChainId` values; MPP `tempo` only).
    pub const TEMPO: [Chain; 2] = [Chain::Tempo, Chain::TempoModerato];

    /// Every chain: [`Chain::ALL`] then [`Chain::TEMPO`] (the RPC table's rows).
    pub const EVERY: [Chain; 7] = [
        Chain::Base,
        Chain::BaseSepolia,
        Chain::Ethereum,
        Chain::Solana,
        Chain::SolanaDevnet,
        Chain::Tempo,
        Chain::TempoModerato,
    ];

    /// The AgentCore wire name: `"BASE"`, `"BASE_SEPOLIA"`, `"ETHEREUM"`,
    /// `"SOLANA"` or `"SOLANA_DEVNET"`; for Tempo, Purser's own `"TEMPO_4217"` and
    /// `"TEMPO_42431"` (keyed by chain id: AgentCore has no Tempo chain value).
    pub const fn as_str(self) -> &'static str {
        match self {
            Chain::Base => "BASE",
            Chain::BaseSepolia => "BASE_SEPOLIA",
            Chain::Ethereum => "ETHEREUM",
            Chain::Solana => "SOLANA",
            Chain::SolanaDevnet => "SOLANA_DEVNET",
            Chain::Tempo => "TEMPO_4217",
            Chain::TempoModerato => "TEMPO_42431",
        }
    }

    /// Parses the AgentCore wire name (exact, case-sensitive); never a Tempo chain.
    pub fn parse(s: &str) -> Option<Chain> {
        Chain::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Parses a name of the RPC configuration (`[rpc]` keys): a wire name or
    /// `TEMPO_4217` / `TEMPO_42431`.
    pub fn parse_config_name(s: &str) -> Option<Chain> {
        Chain::EVERY.into_iter().find(|c| c.as_str() == s)
    }

    /// Looks a Tempo chain up by its EVM chain id (4217, 42431).
    pub fn from_tempo_chain_id(id: u64) -> Option<Chain> {
        Chain::TEMPO
            .into_iter()
            .find(|c| c.evm_chain_id() == Some(id))
    }

    /// Looks a chain up by its x402 v1 network name (`"base-sepolia"`, ...).
    pub fn from_x402_v1_network(name: &str) -> Option<Chain> {
        Chain::ALL.into_iter().find(|c| c.x402_v1_network() == name)
    }

    /// Looks a chain up by its CAIP-2 id (`"eip155:84532"`, `"solana:5eykt4Us..."`).
    pub fn from_caip2(id: &str) -> Option<Chain> {
        Chain::ALL.into_iter().find(|c| c.caip2() == id)
    }

    /// Looks a chain up by an x402 `network` of either protocol version: a v1
    /// name or a CAIP-2 id (v2).
    pub fn from_x402_network(network: &str) -> Option<Chain> {
        Chain::from_x402_v1_network(network).or_else(|| Chain::from_caip2(network))
    }

    /// Looks an EVM chain up by its chain id.
    pub fn from_evm_chain_id(id: u64) -> Option<Chain> {
        Chain::ALL
            .into_iter()
            .find(|c| c.evm_chain_id() == Some(id))
    }

    /// The chain's family.
    pub const fn family(self) -> Family {
        match self {
            Chain::Base
            | Chain::BaseSepolia
            | Chain::Ethereum
            | Chain::Tempo
            | Chain::TempoModerato => Family::Ethereum,
            Chain::Solana | Chain::SolanaDevnet => Family::Solana,
        }
    }

    /// The EVM chain id (8453, 84532, 1, 4217, 42431); `None` for Solana chains.
    pub const fn evm_chain_id(self) -> Option<u64> {
        match self {
            Chain::Base => Some(8453),
            Chain::BaseSepolia => Some(84532),
            Chain::Ethereum => Some(1),
            Chain::Tempo => Some(4217),
            Chain::TempoModerato => Some(42431),
            Chain::Solana | Chain::SolanaDevnet => None,
        }
    }

    /// The CAIP-2 chain id, as used for x402 v2 `network`.
    pub const fn caip2(self) -> &'static str {
        match self {
            Chain::Base => "eip155:8453",
            Chain::BaseSepolia => "eip155:84532",
            Chain::Ethereum => "eip155:1",
            Chain::Solana => "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
            Chain::SolanaDevnet => "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
            Chain::Tempo => "eip155:4217",
            Chain::TempoModerato => "eip155:42431",
        }
    }

    /// The x402 v1 network name (Tempo: a name of this server's own; x402 is not paid
    /// on Tempo, and no lookup finds these).
    pub const fn x402_v1_network(self) -> &'static str {
        match self {
            Chain::Tempo => "tempo",
            Chain::TempoModerato => "tempo-moderato",
            Chain::Base => "base",
            Chain::BaseSepolia => "base-sepolia",
            Chain::Ethereum => "ethereum",
            Chain::Solana => "solana",
            Chain::SolanaDevnet => "solana-devnet",
        }
    }

    /// The canonical USDC contract address (EVM, EIP-55 checksummed) or mint
    /// (Solana, base58). Tempo: the TIP-20 USDC (bridged USDC.e) on mainnet, pathUSD on
    /// Moderato (the default currency of each chain in the reference SDK, mppx).
    pub const fn usdc_address(self) -> &'static str {
        match self {
            Chain::Tempo => "0x20C000000000000000000000b9537d11c60E8b50",
            Chain::TempoModerato => "0x20c0000000000000000000000000000000000000",
            Chain::Base => "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            Chain::BaseSepolia => "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            Chain::Ethereum => "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
            Chain::Solana => "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            Chain::SolanaDevnet => "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
        }
    }

    /// The EIP-712 domain of the chain's USDC contract; `None` for Solana.
    pub const fn usdc_eip712_domain(self) -> Option<Eip712Domain> {
        match self {
            Chain::Base | Chain::Ethereum => Some(Eip712Domain {
                name: "USD Coin",
                version: "2",
            }),
            Chain::BaseSepolia => Some(Eip712Domain {
                name: "USDC",
                version: "2",
            }),
            Chain::Solana | Chain::SolanaDevnet | Chain::Tempo | Chain::TempoModerato => None,
        }
    }

    /// USDC decimals on this chain (6 everywhere).
    pub const fn usdc_decimals(self) -> u8 {
        USDC_DECIMALS
    }

    /// The environment variable that overrides this chain's RPC URL.
    pub const fn rpc_env_var(self) -> &'static str {
        match self {
            Chain::Base => "PURSER_RPC_BASE",
            Chain::BaseSepolia => "PURSER_RPC_BASE_SEPOLIA",
            Chain::Ethereum => "PURSER_RPC_ETHEREUM",
            Chain::Solana => "PURSER_RPC_SOLANA",
            Chain::SolanaDevnet => "PURSER_RPC_SOLANA_DEVNET",
            Chain::Tempo => "PURSER_RPC_TEMPO_4217",
            Chain::TempoModerato => "PURSER_RPC_TEMPO_42431",
        }
    }

    /// The public RPC endpoint used when nothing is configured. These are
    /// rate-limited public services: production deployments should configure
    /// their own endpoint.
    pub const fn default_rpc_url(self) -> &'static str {
        match self {
            Chain::Base => "https://mainnet.base.org",
            Chain::BaseSepolia => "https://sepolia.base.org",
            Chain::Ethereum => "https://ethereum-rpc.publicnode.com",
            Chain::Solana => "https://api.mainnet-beta.solana.com",
            Chain::SolanaDevnet => "https://api.devnet.solana.com",
            Chain::Tempo => "https://rpc.tempo.xyz",
            Chain::TempoModerato => "https://rpc.moderato.tempo.xyz",
        }
    }

    /// Whether `address` is a well-formed account address on this chain:
    /// `0x` + 40 hex digits (any case; the EIP-55 checksum is not checked) on
    /// EVM chains, base58 of exactly 32 bytes on Solana.
    pub fn is_valid_address(self, address: &str) -> bool {
        match self.family() {
            Family::Ethereum => is_evm_address(address),
            Family::Solana => is_solana_address(address),
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

pub(crate) fn is_evm_address(s: &str) -> bool {
    s.len() == 42
        && (s.starts_with("0x") || s.starts_with("0X"))
        && s.as_bytes()[2..].iter().all(u8::is_ascii_hexdigit)
}

pub(crate) fn is_solana_address(s: &str) -> bool {
    // 32 bytes are 32..=44 base58 characters; the length check bounds the work.
    if s.is_empty() || s.len() > 44 {
        return false;
    }
    let mut out = [0u8; 32];
    matches!(bs58::decode(s).onto(&mut out[..]), Ok(32))
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown chain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown chain {0:?} (expected one of BASE, BASE_SEPOLIA, ETHEREUM, SOLANA, SOLANA_DEVNET)"
)]
pub struct UnknownChain(pub String);

impl FromStr for Chain {
    type Err = UnknownChain;

    fn from_str(s: &str) -> Result<Chain, UnknownChain> {
        Chain::parse(s).ok_or_else(|| UnknownChain(s.chars().take(64).collect()))
    }
}

/// Serialized as the wire name (`"BASE_SEPOLIA"`), so a config file can key a
/// map by chain.
impl Serialize for Chain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Chain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Chain, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
