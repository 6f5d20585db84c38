//! Console sign-in: stateless session tokens and the CSRF token bound to each.
//!
//! A session token is `v1.<expires unix seconds>.<access key id>.<tag>`, the tag an
//! HMAC-SHA256 (under a key derived from the master key, so every node accepts every
//! node's sessions) over the expiry, the access key id and a digest of that key's
//! current secret: a session dies when it expires, when its access key is removed from
//! the configuration, or when the key's secret changes. The CSRF token is a second HMAC
//! over the session token, so a page that can read the session's own reply (same origin
//! only) can send it back in a header, and a cross-site request cannot.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Credential;

/// How long a console session lasts after login.
pub const SESSION_SECONDS: i64 = 8 * 3600;

/// The key the console's tokens are authenticated with.
pub struct SessionKeys {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(***)")
    }
}

/// A session token and the moment it stops being accepted.
pub struct Issued {
    pub token: String,
    pub expires_at: i64,
}

impl SessionKeys {
    pub fn new(key: Zeroizing<[u8; 32]>) -> Self {
        SessionKeys { key }
    }

    fn mac(&self, label: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.as_ref()).expect("any key length");
        mac.update(label);
        mac.update(&[0]);
        mac
    }

    fn session_mac(&self, expires_at: i64, cred: &Credential) -> Hmac<Sha256> {
        let mut mac = self.mac(b"purser/console-session/v1");
        mac.update(expires_at.to_string().as_bytes());
        mac.update(&[0]);
        mac.update(cred.access_key_id.as_bytes());
        mac.update(&[0]);
        mac.update(&Sha256::digest(cred.secret_access_key.expose().as_bytes()));
        mac
    }

    /// A session for `cred`, valid for [`SESSION_SECONDS`] from `now` (unix seconds).
    pub fn issue(&self, cred: &Credential, now: i64) -> Issued {
        let expires_at = now + SESSION_SECONDS;
        let tag = self.session_mac(expires_at, cred).finalize().into_bytes();
        Issued {
            token: format!("v1.{expires_at}.{}.{}", cred.access_key_id, B64.encode(tag)),
            expires_at,
        }
    }

    /// The credential a session token was issued to, if the token is authentic, not
    /// expired at `now`, and its key is still configured with the same secret.
    pub fn verify<'a>(
        &self,
        token: &str,
        now: i64,
        lookup: impl Fn(&str) -> Option<&'a Credential>,
    ) -> Option<(&'a Credential, i64)> {
        let mut parts = token.split('.');
        let (Some("v1"), Some(exp), Some(akid), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let expires_at: i64 = exp.parse().ok()?;
        if exp != expires_at.to_string() || expires_at <= now {
            return None;
        }
        let cred = lookup(akid)?;
        let tag = B64.decode(tag).ok()?;
        self.session_mac(expires_at, cred).verify_slice(&tag).ok()?;
        Some((cred, expires_at))
    }

    /// The CSRF token of a session token.
    pub fn csrf(&self, session_token: &str) -> String {
        let mut mac = self.mac(b"purser/console-csrf/v1");
        mac.update(session_token.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }

    /// Whether `given` is the CSRF token of `session_token` (constant time).
    pub fn csrf_ok(&self, session_token: &str, given: &str) -> bool {
        let Ok(given) = B64.decode(given) else {
            return false;
        };
        let mut mac = self.mac(b"purser/console-csrf/v1");
        mac.update(session_token.as_bytes());
        mac.verify_slice(&given).is_ok()
    }
}

/// Constant-time equality of two secrets (the length is not hidden).
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use purser_wallet::Secret;

    fn cred(secret: &str) -> Credential {
        Credential {
            access_key_id: "AKIAPURSERTEST000001".into(),
            secret_access_key: Secret::new(secret),
            account_id: "111122223333".into(),
        }
    }

    fn keys(b: u8) -> SessionKeys {
        SessionKeys::new(Zeroizing::new([b; 32]))
    }

    #[test]
    fn a_session_verifies_until_it_expires() {
        let k = keys(7);
        let c = cred("s3cret-s3cret-s3cret");
        let s = k.issue(&c, 1_000);
        assert_eq!(s.expires_at, 1_000 + SESSION_SECONDS);
        let found = k.verify(&s.token, 1_001, |id| (id == c.access_key_id).then_some(&c));
        assert_eq!(found.unwrap().0.account_id, "111122223333");
        assert!(k.verify(&s.token, s.expires_at, |_| Some(&c)).is_none());
        assert!(!s.token.contains("s3cret"));
    }

    #[test]
    fn tampered_foreign_or_revoked_sessions_are_refused() {
        let k = keys(7);
        let c = cred("s3cret-s3cret-s3cret");
        let s = k.issue(&c, 1_000);
        // another master key
        assert!(keys(8).verify(&s.token, 1_001, |_| Some(&c)).is_none());
        // the key's secret changed, or the key is gone
        let rotated = cred("another-secret-entirely");
        assert!(k.verify(&s.token, 1_001, |_| Some(&rotated)).is_none());
        assert!(k.verify(&s.token, 1_001, |_| None).is_none());
        // a later expiry, a changed tag, extra parts, leading zeros
        let later = s.token.replacen(
            &format!(".{}.", s.expires_at),
            &format!(".{}.", s.expires_at + 3600),
            1,
        );
        assert!(k.verify(&later, 1_001, |_| Some(&c)).is_none());
        let padded = s.token.replacen(".", ".0", 1);
        assert!(k.verify(&padded, 1_001, |_| Some(&c)).is_none());
        let mut flipped = s.token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        assert!(k.verify(&flipped, 1_001, |_| Some(&c)).is_none());
        assert!(
            k.verify(&format!("{}.x", s.token), 1_001, |_| Some(&c))
                .is_none()
        );
        assert!(k.verify("", 1_001, |_| Some(&c)).is_none());
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let k = keys(7);
        let c = cred("s3cret-s3cret-s3cret");
        let a = k.issue(&c, 1_000).token;
        let b = k.issue(&c, 2_000).token;
        assert!(k.csrf_ok(&a, &k.csrf(&a)));
        assert!(!k.csrf_ok(&a, &k.csrf(&b)));
        assert!(!k.csrf_ok(&a, ""));
        assert!(!k.csrf_ok(&a, "not base64 !"));
        assert!(!keys(8).csrf_ok(&a, &k.csrf(&a)));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secrets_equal(b"abc", b"abc"));
        assert!(!secrets_equal(b"abc", b"abd"));
        assert!(!secrets_equal(b"abc", b"abcd"));
        assert!(!secrets_equal(b"", b"a"));
    }
}
