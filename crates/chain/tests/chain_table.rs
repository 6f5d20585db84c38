//! The chain table against shared/docs/x402.md and the seeds' enum values.

use std::collections::HashMap;

use purser_chain::{Chain, Eip712Domain, Family, RpcConfig, USDC_DECIMALS};

#[test]
fn table_matches_x402_md() {
    // chain, family, chain id, CAIP-2, v1 name, USDC, EIP-712 (name, version)
    type Row = (
        Chain,
        &'static str,
        &'static str,
        Option<u64>,
        &'static str,
        &'static str,
        &'static str,
        Option<(&'static str, &'static str)>,
    );
    let rows: [Row; 5] = [
        (
            Chain::Base,
            "BASE",
            "ETHEREUM",
            Some(8453),
            "eip155:8453",
            "base",
            "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            Some(("USD Coin", "2")),
        ),
        (
            Chain::BaseSepolia,
            "BASE_SEPOLIA",
            "ETHEREUM",
            Some(84532),
            "eip155:84532",
            "base-sepolia",
            "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            Some(("USDC", "2")),
        ),
        (
            Chain::Ethereum,
            "ETHEREUM",
            "ETHEREUM",
            Some(1),
            "eip155:1",
            "ethereum",
            "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
            Some(("USD Coin", "2")),
        ),
        (
            Chain::Solana,
            "SOLANA",
            "SOLANA",
            None,
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
            "solana",
            "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            None,
        ),
        (
            Chain::SolanaDevnet,
            "SOLANA_DEVNET",
            "SOLANA",
            None,
            "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
            "solana-devnet",
            "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
            None,
        ),
    ];
    assert_eq!(Chain::ALL.len(), rows.len());
    for (chain, name, family, id, caip2, v1, usdc, domain) in rows {
        assert_eq!(chain.as_str(), name);
        assert_eq!(chain.to_string(), name);
        assert_eq!(chain.family().as_str(), family);
        assert_eq!(chain.evm_chain_id(), id);
        assert_eq!(chain.caip2(), caip2);
        assert_eq!(chain.x402_v1_network(), v1);
        assert_eq!(chain.usdc_address(), usdc);
        assert_eq!(
            chain.usdc_eip712_domain(),
            domain.map(|(name, version)| Eip712Domain { name, version })
        );
        assert_eq!(chain.usdc_decimals(), 6);
        assert!(chain.is_valid_address(usdc), "{usdc}");

        // Round trips.
        assert_eq!(Chain::parse(name), Some(chain));
        assert_eq!(name.parse::<Chain>(), Ok(chain));
        assert_eq!(Chain::from_x402_v1_network(v1), Some(chain));
        assert_eq!(Chain::from_caip2(caip2), Some(chain));
        assert_eq!(Chain::from_x402_network(v1), Some(chain));
        assert_eq!(Chain::from_x402_network(caip2), Some(chain));
        if let Some(id) = id {
            assert_eq!(Chain::from_evm_chain_id(id), Some(chain));
        }
        let json = serde_json::to_string(&chain).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<Chain>(&json).unwrap(), chain);
    }
    assert_eq!(USDC_DECIMALS, 6);
    assert_eq!(Family::Ethereum.as_str(), "ETHEREUM");
    assert_eq!(Family::Solana.to_string(), "SOLANA");
}

#[test]
fn unknown_names() {
    for bad in ["base", "Base", "BASE ", "", "eip155:8453", "POLYGON"] {
        assert_eq!(Chain::parse(bad), None, "{bad:?}");
        assert!(bad.parse::<Chain>().is_err());
    }
    assert_eq!(Chain::from_x402_v1_network("BASE"), None);
    assert_eq!(Chain::from_x402_v1_network("polygon"), None);
    assert_eq!(Chain::from_caip2("eip155:137"), None);
    assert_eq!(Chain::from_caip2("solana:devnet"), None);
    assert_eq!(Chain::from_evm_chain_id(137), None);
    assert!(serde_json::from_str::<Chain>("\"BASE_MAINNET\"").is_err());
    let err = "POLYGON".parse::<Chain>().unwrap_err().to_string();
    assert!(
        err.contains("POLYGON") && err.contains("BASE_SEPOLIA"),
        "{err}"
    );
}

#[test]
fn rpc_env_vars_and_defaults() {
    let expected = [
        (Chain::Base, "PURSER_RPC_BASE", "https://mainnet.base.org"),
        (
            Chain::BaseSepolia,
            "PURSER_RPC_BASE_SEPOLIA",
            "https://sepolia.base.org",
        ),
        (
            Chain::Ethereum,
            "PURSER_RPC_ETHEREUM",
            "https://ethereum-rpc.publicnode.com",
        ),
        (
            Chain::Solana,
            "PURSER_RPC_SOLANA",
            "https://api.mainnet-beta.solana.com",
        ),
        (
            Chain::SolanaDevnet,
            "PURSER_RPC_SOLANA_DEVNET",
            "https://api.devnet.solana.com",
        ),
    ];
    for (chain, var, url) in expected {
        assert_eq!(chain.rpc_env_var(), var);
        assert_eq!(chain.default_rpc_url(), url);
    }
    // from_env reads exactly those variables.
    let env: HashMap<&str, String> = expected
        .iter()
        .enumerate()
        .map(|(i, (_, var, _))| (*var, format!("http://127.0.0.1:{}/", 9000 + i)))
        .collect();
    let config = RpcConfig::from_env(&|k| env.get(k).cloned()).unwrap();
    for (i, (chain, _, _)) in expected.iter().enumerate() {
        assert_eq!(
            config.url(*chain),
            format!("http://127.0.0.1:{}/", 9000 + i)
        );
    }
}

#[test]
fn config_map_keys_deserialize_from_wire_names() {
    let map: HashMap<Chain, String> = serde_json::from_str(
        r#"{"BASE_SEPOLIA": "http://127.0.0.1:8545", "SOLANA": "http://127.0.0.1:8899"}"#,
    )
    .unwrap();
    let config = RpcConfig::default().with_urls(&map).unwrap();
    assert_eq!(config.url(Chain::BaseSepolia), "http://127.0.0.1:8545/");
    assert_eq!(config.url(Chain::Solana), "http://127.0.0.1:8899/");
    assert_eq!(config.url(Chain::Base), "https://mainnet.base.org/");
}

#[test]
fn address_validation() {
    assert!(Chain::Base.is_valid_address("0x1111111111111111111111111111111111111111"));
    assert!(Chain::Base.is_valid_address("0xABCDEFabcdef0123456789ABCDEFabcdef012345"));
    assert!(!Chain::Base.is_valid_address("0x111111111111111111111111111111111111111"));
    assert!(!Chain::Base.is_valid_address("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"));
    assert!(Chain::Solana.is_valid_address("11111111111111111111111111111111"));
    assert!(Chain::Solana.is_valid_address("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"));
    assert!(!Chain::Solana.is_valid_address("1111111111111111111111111111111"));
    assert!(!Chain::Solana.is_valid_address("0x1111111111111111111111111111111111111111"));
    assert!(!Chain::SolanaDevnet.is_valid_address("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DAl"));
}

/// The Tempo chains (MPP `tempo` only): not AgentCore chain values, so no wire name,
/// x402 network or EVM-USDC lookup finds them; they are named and configured by chain id.
#[test]
fn tempo_chains_are_keyed_by_chain_id_and_reached_only_through_it() {
    for (chain, id, name, pay_token) in [
        (
            Chain::Tempo,
            4217,
            "TEMPO_4217",
            "0x20C000000000000000000000b9537d11c60E8b50",
        ),
        (
            Chain::TempoModerato,
            42431,
            "TEMPO_42431",
            "0x20c0000000000000000000000000000000000000",
        ),
    ] {
        assert!(Chain::TEMPO.contains(&chain) && Chain::EVERY.contains(&chain));
        assert!(!Chain::ALL.contains(&chain));
        assert_eq!(chain.as_str(), name);
        assert_eq!(chain.family(), Family::Ethereum);
        assert_eq!(chain.evm_chain_id(), Some(id));
        assert_eq!(chain.caip2(), format!("eip155:{id}"));
        assert_eq!(chain.usdc_address(), pay_token);
        assert_eq!(chain.usdc_eip712_domain(), None);
        assert_eq!(chain.rpc_env_var(), format!("PURSER_RPC_{name}"));
        assert_eq!(Chain::from_tempo_chain_id(id), Some(chain));
        assert_eq!(Chain::parse_config_name(name), Some(chain));
        // not an AgentCore chain: GetPaymentInstrumentBalance and x402 never see it
        assert_eq!(Chain::parse(name), None);
        assert!(name.parse::<Chain>().is_err());
        assert_eq!(Chain::from_evm_chain_id(id), None);
        assert_eq!(Chain::from_caip2(chain.caip2()), None);
        assert_eq!(Chain::from_x402_network(chain.x402_v1_network()), None);
    }
    assert_eq!(Chain::from_tempo_chain_id(8453), None);
    for chain in Chain::ALL {
        assert_eq!(Chain::parse_config_name(chain.as_str()), Some(chain));
    }
}
