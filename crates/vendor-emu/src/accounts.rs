//! The emulated vendor accounts: one CDP project (API keys, wallet secrets) and Privy apps
//! (app id, app secret, authorization keys registered as key quorums).
//!
//! They live in `accounts.json` in the emulator's directory, written with mode 0600 when the
//! emulator generates them on first start. The file holds the secrets a developer pastes
//! into a credential provider; the emulator keeps in memory only what verifies them (public
//! keys, a SHA-256 of each app secret). Nothing here is ever logged.
use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand::RngCore;
use rand::rngs::OsRng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::auth::{ApiPublicKey, PrivyApp};

pub const ACCOUNTS_FILE: &str = "accounts.json";

/// A Privy authorization key registered as a key quorum of one.
#[derive(Clone, Debug)]
pub struct KeyQuorum {
    pub id: String,
    pub app_id: String,
    pub key: p256::ecdsa::VerifyingKey,
}

/// What the emulator verifies credentials against.
#[derive(Clone, Debug)]
pub struct Accounts {
    pub cdp_project_id: String,
    pub cdp_api_keys: HashMap<String, ApiPublicKey>,
    pub cdp_wallet_keys: Vec<p256::ecdsa::VerifyingKey>,
    pub privy_apps: Vec<PrivyApp>,
    pub key_quorums: Vec<KeyQuorum>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("reading or writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {what}")]
    Invalid { path: String, what: String },
}

pub(crate) fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut b = vec![0u8; len];
    OsRng.fill_bytes(&mut b);
    b.iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect()
}

pub(crate) fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A fresh set of accounts, as the JSON written to `accounts.json`.
pub fn generate() -> Value {
    let es_key = p256::SecretKey::random(&mut OsRng);
    let es_pem = es_key
        .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
        .expect("a P-256 key encodes");
    let ed_key = ed25519_dalek::SigningKey::generate(&mut OsRng);
    let mut ed_bytes = Zeroizing::new([0u8; 64]);
    ed_bytes[..32].copy_from_slice(&ed_key.to_bytes());
    ed_bytes[32..].copy_from_slice(ed_key.verifying_key().as_bytes());
    let wallet_secret = p256::SecretKey::random(&mut OsRng);
    let wallet_der = wallet_secret.to_pkcs8_der().expect("a P-256 key encodes");
    let auth_key = p256::SecretKey::random(&mut OsRng);
    let auth_der = auth_key.to_pkcs8_der().expect("a P-256 key encodes");
    let auth_pub = auth_key
        .public_key()
        .to_public_key_der()
        .expect("a P-256 key encodes");
    json!({
        "about": "Accounts of Purser's vendor emulator (a development tool, not Coinbase or Privy). These secrets only work against the emulator.",
        "cdp": {
            "projectId": uuid_v4(),
            "apiKeys": [
                {"id": uuid_v4(), "secret": es_pem.as_str()},
                {"id": uuid_v4(), "secret": B64.encode(ed_bytes.as_slice())},
            ],
            "walletSecrets": [B64.encode(wallet_der.as_bytes())],
        },
        "privy": {
            "apps": [{
                "appId": random_id(25),
                "appSecret": format!("privy_app_secret_{}", random_id(40)),
                "authorizationKeys": [{
                    "id": random_id(24),
                    "privateKey": format!("wallet-auth:{}", B64.encode(auth_der.as_bytes())),
                    "publicKey": B64.encode(auth_pub.as_bytes()),
                }],
            }],
        },
    })
}

/// Loads `dir/accounts.json`, generating it (mode 0600) when absent. Answers the accounts
/// and whether the file was created.
pub fn load_or_create(dir: &Path) -> Result<(Accounts, bool), AccountsError> {
    let path = dir.join(ACCOUNTS_FILE);
    let shown = path.display().to_string();
    let io = |source| AccountsError::Io {
        path: shown.clone(),
        source,
    };
    let (text, created) = match std::fs::read_to_string(&path) {
        Ok(t) => (Zeroizing::new(t), false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text =
                Zeroizing::new(serde_json::to_string_pretty(&generate()).expect("JSON serialises"));
            purser_wallet::write_private(&path, text.as_bytes()).map_err(io)?;
            (text, true)
        }
        Err(e) => return Err(io(e)),
    };
    let value: Value = serde_json::from_str(&text).map_err(|_| AccountsError::Invalid {
        path: shown.clone(),
        what: "not JSON".into(),
    })?;
    let accounts = parse(&value).map_err(|what| AccountsError::Invalid { path: shown, what })?;
    Ok((accounts, created))
}

/// Parses the accounts JSON (see [`generate`] for its shape).
pub fn parse(v: &Value) -> Result<Accounts, String> {
    let cdp = v.get("cdp").ok_or("no cdp object")?;
    let cdp_project_id = cdp
        .get("projectId")
        .and_then(Value::as_str)
        .ok_or("cdp.projectId is missing")?
        .to_string();
    let mut cdp_api_keys = HashMap::new();
    for (i, k) in cdp
        .get("apiKeys")
        .and_then(Value::as_array)
        .ok_or("cdp.apiKeys is not a list")?
        .iter()
        .enumerate()
    {
        let id = k
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("cdp.apiKeys[{i}].id is missing"))?;
        let secret = k
            .get("secret")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("cdp.apiKeys[{i}].secret is missing"))?;
        let key = api_public_key(secret)
            .ok_or_else(|| format!("cdp.apiKeys[{i}].secret is neither a PEM P-256 key nor a base64 64-byte Ed25519 key"))?;
        cdp_api_keys.insert(id.to_string(), key);
    }
    let mut cdp_wallet_keys = Vec::new();
    for (i, s) in cdp
        .get("walletSecrets")
        .and_then(Value::as_array)
        .ok_or("cdp.walletSecrets is not a list")?
        .iter()
        .enumerate()
    {
        let key = s.as_str().and_then(p256_from_pkcs8_b64).ok_or_else(|| {
            format!("cdp.walletSecrets[{i}] is not a base64 DER PKCS#8 P-256 key")
        })?;
        cdp_wallet_keys.push(*key.verifying_key());
    }
    let mut privy_apps = Vec::new();
    let mut key_quorums = Vec::new();
    let apps = v
        .get("privy")
        .and_then(|p| p.get("apps"))
        .and_then(Value::as_array)
        .ok_or("privy.apps is not a list")?;
    for (i, a) in apps.iter().enumerate() {
        let app_id = a
            .get("appId")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("privy.apps[{i}].appId is missing"))?;
        let secret = a
            .get("appSecret")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("privy.apps[{i}].appSecret is missing"))?;
        privy_apps.push(PrivyApp {
            app_id: app_id.to_string(),
            secret_hash: Sha256::digest(secret.as_bytes()).into(),
        });
        for (j, k) in a
            .get("authorizationKeys")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let id = k
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("privy.apps[{i}].authorizationKeys[{j}].id is missing"))?;
            let public = k.get("publicKey").and_then(Value::as_str).ok_or_else(|| {
                format!("privy.apps[{i}].authorizationKeys[{j}].publicKey is missing")
            })?;
            let key = p256_public_from_spki_b64(public).ok_or_else(|| {
                format!("privy.apps[{i}].authorizationKeys[{j}].publicKey is not a base64 DER SPKI P-256 key")
            })?;
            key_quorums.push(KeyQuorum {
                id: id.to_string(),
                app_id: app_id.to_string(),
                key,
            });
        }
    }
    Ok(Accounts {
        cdp_project_id,
        cdp_api_keys,
        cdp_wallet_keys,
        privy_apps,
        key_quorums,
    })
}

fn api_public_key(secret: &str) -> Option<ApiPublicKey> {
    let text = secret.trim();
    if text.starts_with("-----BEGIN") {
        let pem = Zeroizing::new(text.replace("\\n", "\n"));
        let key = p256::SecretKey::from_pkcs8_pem(&pem)
            .or_else(|_| p256::SecretKey::from_sec1_pem(&pem))
            .ok()?;
        return Some(ApiPublicKey::Es256(key.public_key().into()));
    }
    let raw = Zeroizing::new(B64.decode(text).ok()?);
    if raw.len() != 64 {
        return None;
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&raw[..32]);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    // The second half must be the seed's public key, as the SDK's JWK import requires.
    (key.verifying_key().as_bytes() == &raw[32..]).then(|| ApiPublicKey::EdDsa(key.verifying_key()))
}

fn p256_from_pkcs8_b64(text: &str) -> Option<p256::ecdsa::SigningKey> {
    let der = Zeroizing::new(B64.decode(text.trim()).ok()?);
    p256::SecretKey::from_pkcs8_der(&der)
        .or_else(|_| p256::SecretKey::from_sec1_der(&der))
        .ok()
        .map(Into::into)
}

/// A P-256 public key from the base64 of its DER SubjectPublicKeyInfo (Privy's form).
pub fn p256_public_from_spki_b64(text: &str) -> Option<p256::ecdsa::VerifyingKey> {
    let der = B64.decode(text.trim()).ok()?;
    p256::PublicKey::from_public_key_der(&der)
        .ok()
        .map(Into::into)
}

/// The base64 DER SPKI of a P-256 public key.
pub fn p256_spki_b64(key: &p256::ecdsa::VerifyingKey) -> String {
    B64.encode(
        key.to_public_key_der()
            .expect("a P-256 key encodes")
            .as_bytes(),
    )
}
