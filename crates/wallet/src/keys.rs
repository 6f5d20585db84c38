//! Self-custody wallet keys: generation, addresses, and sealing under the vault.
//!
//! * ETHEREUM: a secp256k1 key; the address is the last 20 bytes of keccak256 of the
//!   uncompressed public key, written with the EIP-55 mixed-case checksum.
//! * SOLANA: an ed25519 key; the address is the base58 of the 32-byte public key.
//!
//! The private key only exists in memory inside this module, in zeroizing buffers; what
//! leaves is the address and the sealed key (envelope-encrypted, bound to the record's
//! associated data).
use k256::ecdsa::SigningKey;
use rand::rngs::OsRng;
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

use crate::{Vault, VaultError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// secp256k1, EVM addresses.
    Secp256k1,
    /// ed25519, Solana addresses.
    Ed25519,
}

/// A freshly generated wallet: its public address and its sealed private key.
#[derive(Clone, PartialEq, Eq)]
pub struct NewWallet {
    pub address: String,
    pub sealed_key: Vec<u8>,
}

impl std::fmt::Debug for NewWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWallet")
            .field("address", &self.address)
            .field("sealed_key", &"(sealed)")
            .finish()
    }
}

/// EIP-55 checksummed hex address of 20 bytes.
pub fn eip55(addr: &[u8; 20]) -> String {
    let lower = hex_lower(addr);
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        out.push(if c.is_ascii_alphabetic() && nibble >= 8 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0x0f) as usize] as char);
    }
    s
}

/// The EVM address of a secp256k1 signing key.
pub fn evm_address(key: &SigningKey) -> [u8; 20] {
    let point = key.verifying_key().to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    out
}

impl Vault {
    /// Generate a new wallet key of `kind` and seal it for the record named by `aad`.
    pub fn create_wallet(&self, kind: KeyKind, aad: &[u8]) -> NewWallet {
        match kind {
            KeyKind::Secp256k1 => {
                let key = SigningKey::random(&mut OsRng);
                let secret = Zeroizing::new(key.to_bytes());
                NewWallet {
                    address: eip55(&evm_address(&key)),
                    sealed_key: self.seal(aad, secret.as_slice()),
                }
            }
            KeyKind::Ed25519 => {
                let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
                let seed = Zeroizing::new(key.to_bytes());
                NewWallet {
                    address: bs58::encode(key.verifying_key().as_bytes()).into_string(),
                    sealed_key: self.seal(aad, seed.as_slice()),
                }
            }
        }
    }

    /// The address of a sealed wallet key of `kind` (opened and zeroized here): what a
    /// key check compares with the address stored beside it.
    pub fn wallet_address(
        &self,
        kind: KeyKind,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<String, VaultError> {
        match kind {
            KeyKind::Secp256k1 => self.with_secp256k1(aad, sealed, |k| eip55(&evm_address(k))),
            KeyKind::Ed25519 => self.with_ed25519(aad, sealed, |k| {
                bs58::encode(k.verifying_key().as_bytes()).into_string()
            }),
        }
    }

    /// Open a sealed secp256k1 key and use it inside `f`; the key is zeroized afterwards.
    pub fn with_secp256k1<T>(
        &self,
        aad: &[u8],
        sealed: &[u8],
        f: impl FnOnce(&SigningKey) -> T,
    ) -> Result<T, VaultError> {
        let bytes = self.open(aad, sealed)?;
        let key = SigningKey::from_slice(&bytes).map_err(|_| VaultError::Malformed)?;
        Ok(f(&key))
    }

    /// Open a sealed ed25519 key and use it inside `f`.
    pub fn with_ed25519<T>(
        &self,
        aad: &[u8],
        sealed: &[u8],
        f: impl FnOnce(&ed25519_dalek::SigningKey) -> T,
    ) -> Result<T, VaultError> {
        let bytes = self.open(aad, sealed)?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| VaultError::Malformed)?,
        );
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        Ok(f(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    #[test]
    fn eip55_vectors() {
        // From EIP-55.
        for addr in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let mut raw = [0u8; 20];
            for (i, b) in raw.iter_mut().enumerate() {
                *b = u8::from_str_radix(&addr[2 + 2 * i..4 + 2 * i], 16).unwrap();
            }
            assert_eq!(eip55(&raw), addr);
        }
    }

    #[test]
    fn known_key_has_known_address() {
        // anvil's first dev account
        let key = SigningKey::from_slice(
            &<[u8; 32]>::try_from(
                (0..32)
                    .map(|i| {
                        u8::from_str_radix(
                            &"ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
                                [2 * i..2 * i + 2],
                            16,
                        )
                        .unwrap()
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            eip55(&evm_address(&key)),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
    }

    #[test]
    fn wallets_are_sealed_and_bound() {
        let v = Vault::new(MasterKey::generate());
        let w = v.create_wallet(KeyKind::Secp256k1, b"inst-1");
        assert!(w.address.starts_with("0x") && w.address.len() == 42);
        let addr = v
            .with_secp256k1(b"inst-1", &w.sealed_key, |k| eip55(&evm_address(k)))
            .unwrap();
        assert_eq!(addr, w.address);
        assert!(v.with_secp256k1(b"inst-2", &w.sealed_key, |_| ()).is_err());
        assert!(!format!("{w:?}").contains("sealed_key: ["));

        let s = v.create_wallet(KeyKind::Ed25519, b"inst-3");
        let raw = bs58::decode(&s.address).into_vec().unwrap();
        assert_eq!(raw.len(), 32);
        let again = v
            .with_ed25519(b"inst-3", &s.sealed_key, |k| {
                bs58::encode(k.verifying_key().as_bytes()).into_string()
            })
            .unwrap();
        assert_eq!(again, s.address);
        assert_ne!(v.create_wallet(KeyKind::Ed25519, b"x").address, s.address);
    }
}

impl Vault {
    /// Sign a 32-byte digest (e.g. an EIP-712 hash) with a sealed secp256k1 key:
    /// `r || s || v`, s normalised low, v = 27 + recovery id (Ethereum convention).
    pub fn sign_secp256k1_digest(
        &self,
        aad: &[u8],
        sealed: &[u8],
        digest: &[u8; 32],
    ) -> Result<[u8; 65], VaultError> {
        use k256::ecdsa::hazmat::SignPrimitive;
        use zeroize::Zeroize;
        // Sign with the secret scalar directly (RFC 6979 nonce, low s, recovery id), as
        // `SigningKey::sign_prehash_recoverable` does, without deriving the public key
        // first: that derivation costs as much as the signature itself.
        let bytes = self.open(aad, sealed)?;
        let mut scalar =
            k256::NonZeroScalar::try_from(bytes.as_slice()).map_err(|_| VaultError::Malformed)?;
        let signed = scalar
            .as_ref()
            .try_sign_prehashed_rfc6979::<sha2::Sha256>(k256::FieldBytes::from_slice(digest), b"");
        scalar.zeroize();
        let (sig, recid) = signed.map_err(|_| VaultError::Malformed)?;
        let recid = recid.ok_or(VaultError::Malformed)?;
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = 27 + recid.to_byte();
        Ok(out)
    }
}

impl Vault {
    /// Sign `message` (e.g. a Solana transaction message) with a sealed ed25519 key.
    pub fn sign_ed25519(
        &self,
        aad: &[u8],
        sealed: &[u8],
        message: &[u8],
    ) -> Result<[u8; 64], VaultError> {
        use ed25519_dalek::Signer;
        self.with_ed25519(aad, sealed, |key| key.sign(message).to_bytes())
    }
}

#[cfg(test)]
mod signing_tests {
    use super::*;
    use crate::MasterKey;
    use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};

    #[test]
    fn digest_signature_recovers_the_wallet_address() {
        let v = Vault::new(MasterKey::generate());
        let w = v.create_wallet(KeyKind::Secp256k1, b"inst");
        let digest = [42u8; 32];
        let sig = v
            .sign_secp256k1_digest(b"inst", &w.sealed_key, &digest)
            .unwrap();
        assert!(sig[64] == 27 || sig[64] == 28);
        let signature = Signature::from_slice(&sig[..64]).unwrap();
        assert!(signature.normalize_s().is_none(), "s must already be low");
        let recid = RecoveryId::from_byte(sig[64] - 27).unwrap();
        let key = VerifyingKey::recover_from_prehash(&digest, &signature, recid).unwrap();
        let point = key.to_encoded_point(false);
        let hash = Keccak256::digest(&point.as_bytes()[1..]);
        let mut addr = [0u8; 20];
        addr.copy_from_slice(&hash[12..]);
        assert_eq!(eip55(&addr), w.address);
        assert!(
            v.sign_secp256k1_digest(b"other", &w.sealed_key, &digest)
                .is_err()
        );
    }

    #[test]
    fn ed25519_signature_verifies_under_the_wallet_address() {
        use ed25519_dalek::Verifier;
        let v = Vault::new(MasterKey::generate());
        let w = v.create_wallet(KeyKind::Ed25519, b"inst");
        let sig = v
            .sign_ed25519(b"inst", &w.sealed_key, b"a message")
            .unwrap();
        let public: [u8; 32] = bs58::decode(&w.address)
            .into_vec()
            .unwrap()
            .try_into()
            .unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&sig);
        assert!(key.verify(b"a message", &sig).is_ok());
        assert!(key.verify(b"another message", &sig).is_err());
        assert!(
            v.sign_ed25519(b"other", &w.sealed_key, b"a message")
                .is_err()
        );
    }

    #[test]
    fn same_signature_as_the_signing_key_api() {
        // RFC 6979 is deterministic: the scalar path must give k256's own answer.
        let v = Vault::new(MasterKey::generate());
        for n in 0..20u8 {
            let w = v.create_wallet(KeyKind::Secp256k1, b"inst");
            let digest = [n.wrapping_mul(37).wrapping_add(1); 32];
            let ours = v
                .sign_secp256k1_digest(b"inst", &w.sealed_key, &digest)
                .unwrap();
            let theirs = v
                .with_secp256k1(b"inst", &w.sealed_key, |k| {
                    let (sig, recid) = k.sign_prehash_recoverable(&digest).unwrap();
                    let mut out = [0u8; 65];
                    out[..64].copy_from_slice(&sig.to_bytes());
                    out[64] = 27 + recid.to_byte();
                    out
                })
                .unwrap();
            assert_eq!(ours, theirs);
        }
    }
}
