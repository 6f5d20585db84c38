use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;
use std::path::Path;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("master key must be base64 of exactly 32 bytes")]
    BadMasterKey,
    #[error("master key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open under this master key and record")]
    Open,
}

/// The 32-byte root key. Never printed.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    pub fn from_base64(text: &str) -> Result<Self, VaultError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| VaultError::BadMasterKey)?,
        );
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::BadMasterKey)?;
        Ok(MasterKey(Zeroizing::new(arr)))
    }

    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        MasterKey(k)
    }

    /// A public name of this key: the first 8 bytes of HMAC-SHA256(key, label), in hex
    /// (`mk-` + 16 hex digits). Tells an operator which key a database is sealed under
    /// without revealing anything of the key itself.
    pub fn key_id(&self) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .expect("HMAC accepts any key length");
        mac.update(b"purser/master-key-id/v1");
        let tag = mac.finalize().into_bytes();
        let mut id = String::from("mk-");
        for b in &tag[..8] {
            id.push_str(&format!("{b:02x}"));
        }
        id
    }

    /// The key as base64, for writing it to a key file. Callers must never print it.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    /// Read the key file, or create it (mode 0600) with a fresh key. Returns the key and
    /// whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), VaultError> {
        let io = |source| VaultError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_base64(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let text = key.to_base64();
                write_private(path, text.as_bytes()).map_err(io)?;
                Ok((key, true))
            }
            Err(e) => Err(io(e)),
        }
    }
}

/// Write a file readable by its owner only (created with mode 0600, never widened).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

const VERSION: u8 = 1;
const NONCE: usize = 12;
const WRAPPED_DEK: usize = NONCE + 32 + 16;

/// Envelope encryption under the master key.
#[derive(Clone, Debug)]
pub struct Vault {
    master: MasterKey,
}

impl Vault {
    pub fn new(master: MasterKey) -> Self {
        Vault { master }
    }

    /// Seal `plaintext` for the record named by `aad`.
    /// Layout: version(1) | nonce(12) | wrapped data key(32+16) | nonce(12) | ciphertext+tag.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut dek = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(dek.as_mut());
        let mut out = Vec::with_capacity(1 + WRAPPED_DEK + NONCE + plaintext.len() + 16);
        out.push(VERSION);
        out.extend(encrypt(&self.master.0, aad, dek.as_ref()));
        out.extend(encrypt(&dek, aad, plaintext));
        out
    }

    /// Open a value sealed by [`Vault::seal`] for the same record.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if sealed.len() < 1 + WRAPPED_DEK + NONCE + 16 || sealed[0] != VERSION {
            return Err(VaultError::Malformed);
        }
        let (wrapped, body) = sealed[1..].split_at(WRAPPED_DEK);
        let dek = decrypt(&self.master.0, aad, wrapped)?;
        let dek: Zeroizing<[u8; 32]> = Zeroizing::new(
            dek.as_slice()
                .try_into()
                .map_err(|_| VaultError::Malformed)?,
        );
        decrypt(&dek, aad, body)
    }

    /// The id of the master key (see [`MasterKey::key_id`]).
    pub fn key_id(&self) -> String {
        self.master.key_id()
    }

    /// Re-seal the data key of a value sealed by this vault under `to`'s master key,
    /// for the same record: the data key is opened and wrapped again; the value's own
    /// ciphertext is kept as it is (it is never decrypted here).
    pub fn rewrap(&self, aad: &[u8], sealed: &[u8], to: &Vault) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < 1 + WRAPPED_DEK + NONCE + 16 || sealed[0] != VERSION {
            return Err(VaultError::Malformed);
        }
        let (wrapped, body) = sealed[1..].split_at(WRAPPED_DEK);
        let dek = decrypt(&self.master.0, aad, wrapped)?;
        let mut out = Vec::with_capacity(sealed.len());
        out.push(VERSION);
        out.extend(encrypt(&to.master.0, aad, &dek));
        out.extend_from_slice(body);
        Ok(out)
    }

    /// A purpose-specific key derived from the master key (HMAC-SHA256 of the label), e.g.
    /// for authenticating pagination tokens; every node with the same master key derives
    /// the same key.
    pub fn derive_key(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.master.0.as_ref())
            .expect("HMAC accepts any key length");
        mac.update(label.as_bytes());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }
}

fn encrypt(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    let mut out = nonce.to_vec();
    out.extend(ct);
    out
}

fn decrypt(key: &[u8; 32], aad: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    if data.len() < NONCE + 16 {
        return Err(VaultError::Malformed);
    }
    let (nonce, ct) = data.split_at(NONCE);
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let v = Vault::new(MasterKey::generate());
        let sealed = v.seal(b"record-1", b"top secret value");
        assert!(!sealed.windows(16).any(|w| w == b"top secret value"));
        assert_eq!(&*v.open(b"record-1", &sealed).unwrap(), b"top secret value");
        assert!(matches!(
            v.open(b"record-2", &sealed),
            Err(VaultError::Open)
        ));
        let other = Vault::new(MasterKey::generate());
        assert!(matches!(
            other.open(b"record-1", &sealed),
            Err(VaultError::Open)
        ));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            v.open(b"record-1", &tampered),
            Err(VaultError::Open)
        ));
        assert!(matches!(
            v.open(b"record-1", &sealed[..10]),
            Err(VaultError::Malformed)
        ));
    }

    #[test]
    fn rewrap_moves_a_value_to_the_new_key_only() {
        let old = Vault::new(MasterKey::generate());
        let new = Vault::new(MasterKey::generate());
        let sealed = old.seal(b"rec", b"wallet key bytes");
        let moved = old.rewrap(b"rec", &sealed, &new).unwrap();
        assert_eq!(moved.len(), sealed.len());
        assert_eq!(&*new.open(b"rec", &moved).unwrap(), b"wallet key bytes");
        assert!(old.open(b"rec", &moved).is_err());
        // the value's ciphertext is the same; only the wrapped data key changed
        assert_eq!(moved[1 + WRAPPED_DEK..], sealed[1 + WRAPPED_DEK..]);
        assert!(matches!(
            old.rewrap(b"other", &sealed, &new),
            Err(VaultError::Open)
        ));
        assert!(matches!(
            new.rewrap(b"rec", &sealed, &old),
            Err(VaultError::Open)
        ));
    }

    #[test]
    fn key_ids_name_keys_without_revealing_them() {
        let k = MasterKey::generate();
        let id = k.key_id();
        assert!(id.starts_with("mk-") && id.len() == 19, "{id}");
        assert_eq!(id, MasterKey::from_base64(&k.to_base64()).unwrap().key_id());
        assert_ne!(id, MasterKey::generate().key_id());
        assert!(!k.to_base64().contains(&id[3..]));
    }

    #[test]
    fn two_seals_differ() {
        let v = Vault::new(MasterKey::generate());
        assert_ne!(v.seal(b"a", b"x"), v.seal(b"a", b"x"));
    }

    #[test]
    fn master_key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (k1, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (k2, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!created);
        let v1 = Vault::new(k1);
        let v2 = Vault::new(k2);
        assert_eq!(&*v2.open(b"r", &v1.seal(b"r", b"v")).unwrap(), b"v");
        assert_eq!(format!("{:?}", v1), "Vault { master: MasterKey(***) }");
    }

    #[test]
    fn bad_master_keys_are_refused() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64("AAAA").is_err());
    }
}
