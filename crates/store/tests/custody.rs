//! Key custody: the database never holds a wallet's private key, a vendor secret or a
//! linked account's email in clear.
use std::sync::Arc;

use purser_core::control::{ConnectorInput, ControlPlane, ManagerInput, ProviderInput};
use purser_core::domain::*;
use purser_core::instruments::{Actor, DataPlane, NewInstrument, key_aad};
use purser_core::store::Store;
use purser_core::{Caller, SystemClock};
use purser_store::SqliteStore;
use purser_wallet::{MasterKey, Secret, Vault};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn db_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["purser.db", "purser.db-wal", "purser.db-shm"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            all.extend(b);
        }
    }
    all
}

#[tokio::test]
async fn no_secret_in_clear_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("purser.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.unwrap());
    let vault = Vault::new(MasterKey::generate());
    let clock = Arc::new(SystemClock);
    let control = ControlPlane::new(store.clone(), vault.clone(), clock.clone());
    let chains = purser_chain::BalanceReader::new(purser_chain::RpcConfig::default()).unwrap();
    let data = DataPlane::new(store.clone(), vault.clone(), clock, chains);
    let caller = Caller {
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
    };

    let vendor_secret = "VENDOR-API-SECRET-4f1c2a9e";
    control
        .create_provider(
            &caller,
            ProviderInput {
                name: "cdp".into(),
                vendor: Vendor::CoinbaseCdp,
                config_vendor: Vendor::CoinbaseCdp,
                key_id: "key-id".into(),
                authorization_id: None,
                secrets: vec![
                    ("apiKeySecret".into(), Secret::new(vendor_secret)),
                    ("walletSecret".into(), Secret::new("WALLET-SECRET-77aa")),
                ],
                tags: None,
            },
        )
        .await
        .unwrap();
    let m = control
        .create_manager(
            &caller,
            ManagerInput {
                name: "Custody".into(),
                description: None,
                authorizer_type: AuthorizerType::AwsIam,
                authorizer: None,
                role_arn: "arn:aws:iam::111122223333:role/r".into(),
                kms_key_arn: None,
                tags: None,
            },
            None,
        )
        .await
        .unwrap();
    let c = control
        .create_connector(
            &caller,
            ConnectorInput {
                manager_id: m.id.clone(),
                name: "wallets".into(),
                description: None,
                connector_type: ConnectorType::SelfCustody,
                provision_mode: None,
                credentials: vec![],
            },
            None,
        )
        .await
        .unwrap();
    store
        .complete_transitions(time::OffsetDateTime::now_utc() + time::Duration::seconds(5))
        .await
        .unwrap();

    let actor = Actor {
        caller: caller.clone(),
        user_id: Some("alice".into()),
        token: None,
    };
    let email = "alice.custody@example.org";
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for network in [Network::Ethereum, Network::Solana, Network::Ethereum] {
        let i = data
            .create_instrument(
                &actor,
                NewInstrument {
                    manager_arn: purser_core::control::manager_arn(&caller, &m.id),
                    connector_id: c.id.clone(),
                    network,
                    linked_plain: format!(r#"[{{"email":{{"emailAddress":"{email}"}}}}]"#),
                    linked_masked: r#"[{"email":{"emailAddress":"a***@e***.org"}}]"#.into(),
                    contact: None,
                },
                None,
            )
            .await
            .unwrap();
        let aad = key_aad(&caller.account_id, &i.id);
        let key = match network {
            Network::Ethereum => {
                vault.with_secp256k1(&aad, &i.sealed_key, |k| k.to_bytes().to_vec())
            }
            Network::Solana => vault.with_ed25519(&aad, &i.sealed_key, |k| k.to_bytes().to_vec()),
        }
        .unwrap();
        assert_eq!(key.len(), 32);
        keys.push(key);
    }
    // flush the WAL into the main file too, then look at every byte on disk
    let bytes = db_bytes(dir.path());
    assert!(bytes.len() > 4096);
    for key in &keys {
        assert!(!contains(&bytes, key), "a private key is stored in clear");
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !contains(&bytes, hex.as_bytes()),
            "a private key is stored as hex"
        );
    }
    assert!(!contains(&bytes, vendor_secret.as_bytes()));
    assert!(!contains(&bytes, b"WALLET-SECRET-77aa"));
    assert!(!contains(&bytes, email.as_bytes()));
    // the wallet address is stored (it is public)
    assert!(contains(&bytes, b"Custody") || contains(&bytes, b"custody"));
    // and the secrets still open with the master key
    let opened = control.provider_secrets(&caller, "cdp").await.unwrap();
    assert!(
        opened
            .iter()
            .any(|(k, v)| k == "apiKeySecret" && v.expose() == vendor_secret)
    );
}
