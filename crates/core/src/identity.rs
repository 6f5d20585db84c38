//! Workload identities, workload access tokens and GetResourcePaymentToken.
//!
//! Every payment manager is a workload identity: its name is the manager id, its ARN
//! [`workload_identity_arn`]. A workload access token (GetWorkloadAccessToken*) is minted by
//! Purser: `pwat1.<payload>.<tag>`, the payload (account, region, workload, optional user,
//! expiry) base64url-encoded and authenticated with HMAC-SHA256 under a key derived from
//! the master key, so every node of a cluster verifies every other node's tokens. Tokens
//! live [`WORKLOAD_TOKEN_TTL`] (15 minutes) on the business clock. Clients must treat them
//! as opaque. A token is never logged and never echoed in an error.
//!
//! GetResourcePaymentToken takes such a token of the caller's account, opens the named
//! credential provider's secrets and hands them to `purser_wallet::vendor`, which mints
//! the vendor credentials; the secrets never leave the wallet crate's types.
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use purser_wallet::Secret;
use purser_wallet::vendor::{self, CdpRequest, CdpTokens, PrivyRequest, PrivyTokens, VendorError};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::control::ControlPlane;
use crate::domain::{Manager, Vendor};
use crate::{Caller, CoreError, CoreResult};

/// How long a workload access token is valid.
pub const WORKLOAD_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

const PREFIX: &str = "pwat1.";

/// ARN of a manager's workload identity (the workload's name is the manager id).
pub fn workload_identity_arn(caller: &Caller, manager_id: &str) -> String {
    format!(
        "arn:aws:bedrock-agentcore:{}:{}:workload-identity-directory/default/workload-identity/{}",
        caller.region, caller.account_id, manager_id
    )
}

/// What a valid workload access token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadClaims {
    pub account_id: String,
    pub region: String,
    pub workload: String,
    pub user_id: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

impl WorkloadClaims {
    /// Whether the token was minted for `caller`'s account in `caller`'s region.
    pub fn belongs_to(&self, caller: &Caller) -> bool {
        self.account_id == caller.account_id && self.region == caller.region
    }
}

/// Mints and verifies workload access tokens.
pub struct WorkloadTokens {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for WorkloadTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkloadTokens(***)")
    }
}

/// Why a token was refused (the message says nothing about the token's content).
pub const INVALID_TOKEN: &str = "The workload access token is invalid or has expired.";

impl WorkloadTokens {
    pub fn new(key: Zeroizing<[u8; 32]>) -> Self {
        WorkloadTokens { key }
    }

    fn tag(&self, payload_b64: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&*self.key).expect("any key length");
        mac.update(PREFIX.as_bytes());
        mac.update(payload_b64.as_bytes());
        mac
    }

    pub fn mint(&self, claims: &WorkloadClaims) -> String {
        let payload = serde_json::json!({
            "a": claims.account_id,
            "r": claims.region,
            "w": claims.workload,
            "u": claims.user_id,
            "e": claims.expires_at,
        });
        let payload_b64 = B64.encode(payload.to_string());
        let tag = self.tag(&payload_b64).finalize().into_bytes();
        format!("{PREFIX}{payload_b64}.{}", B64.encode(tag))
    }

    /// The claims of a token minted by [`WorkloadTokens::mint`] with this key and not
    /// expired at `now` (unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<WorkloadClaims, &'static str> {
        let rest = token.strip_prefix(PREFIX).ok_or(INVALID_TOKEN)?;
        let (payload_b64, tag_b64) = rest.split_once('.').ok_or(INVALID_TOKEN)?;
        let tag = B64.decode(tag_b64).map_err(|_| INVALID_TOKEN)?;
        self.tag(payload_b64)
            .verify_slice(&tag)
            .map_err(|_| INVALID_TOKEN)?;
        let payload = B64.decode(payload_b64).map_err(|_| INVALID_TOKEN)?;
        let v: serde_json::Value = serde_json::from_slice(&payload).map_err(|_| INVALID_TOKEN)?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let claims = WorkloadClaims {
            account_id: s("a").ok_or(INVALID_TOKEN)?,
            region: s("r").ok_or(INVALID_TOKEN)?,
            workload: s("w").ok_or(INVALID_TOKEN)?,
            user_id: s("u"),
            expires_at: v.get("e").and_then(|x| x.as_i64()).ok_or(INVALID_TOKEN)?,
        };
        if now >= claims.expires_at {
            return Err(INVALID_TOKEN);
        }
        Ok(claims)
    }
}

/// A vendor request of GetResourcePaymentToken (the server fills in the default hosts).
#[derive(Debug, Clone)]
pub enum PaymentTokenRequest {
    CoinbaseCdp {
        method: String,
        host: String,
        path: String,
        body: Option<String>,
        wallet_auth: bool,
    },
    StripePrivy {
        host: String,
        path: String,
        body: String,
        sign: bool,
    },
}

impl PaymentTokenRequest {
    fn vendor(&self) -> Vendor {
        match self {
            PaymentTokenRequest::CoinbaseCdp { .. } => Vendor::CoinbaseCdp,
            PaymentTokenRequest::StripePrivy { .. } => Vendor::StripePrivy,
        }
    }
}

/// The minted vendor credentials.
#[derive(Debug)]
pub enum PaymentToken {
    CoinbaseCdp(CdpTokens),
    StripePrivy(PrivyTokens),
}

fn vendor_error(e: VendorError) -> CoreError {
    let field = match e {
        VendorError::BodyNotJson(_) | VendorError::UnsupportedNumber(_) => "paymentTokenRequest",
        _ => "resourceCredentialProviderName",
    };
    CoreError::validation(field, e.to_string())
}

fn secret<'a>(secrets: &'a [(String, Secret)], name: &str) -> Option<&'a Secret> {
    secrets.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

impl ControlPlane {
    fn unix_now(&self) -> i64 {
        self.clock_now().unix_timestamp()
    }

    /// The manager that is workload `name` of the caller's account.
    pub async fn workload(&self, caller: &Caller, name: &str) -> CoreResult<Manager> {
        match self.get_manager(caller, name).await {
            Err(CoreError::NotFound(_)) => Err(CoreError::NotFound(format!(
                "Workload identity '{name}' not found."
            ))),
            other => other,
        }
    }

    /// A workload access token for `manager`'s workload (and `user_id`, if given).
    pub fn workload_access_token(
        &self,
        caller: &Caller,
        manager: &Manager,
        user_id: Option<String>,
    ) -> String {
        self.workload_tokens().mint(&WorkloadClaims {
            account_id: caller.account_id.clone(),
            region: caller.region.clone(),
            workload: manager.id.clone(),
            user_id,
            expires_at: self.unix_now() + WORKLOAD_TOKEN_TTL.as_secs() as i64,
        })
    }

    /// GetResourcePaymentToken: the vendor credentials of the caller's credential
    /// provider `provider`, for a holder of a valid workload access token of the caller's
    /// account whose workload still exists.
    pub async fn resource_payment_token(
        &self,
        caller: &Caller,
        token: &str,
        provider: &str,
        request: PaymentTokenRequest,
    ) -> CoreResult<PaymentToken> {
        let now = self.clock_now();
        let claims = self
            .workload_tokens()
            .verify(token, now.unix_timestamp())
            .map_err(|m| CoreError::AccessDenied(m.into()))?;
        if !claims.belongs_to(caller) {
            return Err(CoreError::AccessDenied(INVALID_TOKEN.into()));
        }
        if self.get_manager(caller, &claims.workload).await.is_err() {
            return Err(CoreError::AccessDenied(
                "The workload access token's workload identity no longer exists.".into(),
            ));
        }
        let p = self.get_provider(caller, provider).await?;
        if p.vendor != request.vendor() {
            return Err(CoreError::validation(
                "paymentTokenRequest",
                format!(
                    "The credential provider '{}' is of vendor {}; send the matching paymentTokenRequest member.",
                    p.name,
                    p.vendor.as_str()
                ),
            ));
        }
        let secrets = self.provider_secrets(caller, provider).await?;
        let missing = |f: &'static str| vendor_error(VendorError::MissingSecret(f));
        match request {
            PaymentTokenRequest::CoinbaseCdp {
                method,
                host,
                path,
                body,
                wallet_auth,
            } => {
                let api =
                    secret(&secrets, "apiKeySecret").ok_or_else(|| missing("apiKeySecret"))?;
                let req = CdpRequest {
                    method: &method,
                    host: &host,
                    path: &path,
                    body: body.as_deref(),
                    wallet_auth,
                };
                vendor::cdp_tokens(
                    &p.key_id,
                    api,
                    secret(&secrets, "walletSecret"),
                    &req,
                    now.unix_timestamp(),
                )
                .map(PaymentToken::CoinbaseCdp)
                .map_err(vendor_error)
            }
            PaymentTokenRequest::StripePrivy {
                host,
                path,
                body,
                sign,
            } => {
                let app = secret(&secrets, "appSecret").ok_or_else(|| missing("appSecret"))?;
                let req = PrivyRequest {
                    host: &host,
                    path: &path,
                    body: &body,
                    sign,
                };
                let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
                vendor::privy_tokens(
                    &p.key_id,
                    app,
                    secret(&secrets, "authorizationPrivateKey"),
                    &req,
                    now_ms,
                )
                .map(PaymentToken::StripePrivy)
                .map_err(vendor_error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(byte: u8) -> WorkloadTokens {
        WorkloadTokens::new(Zeroizing::new([byte; 32]))
    }

    fn claims() -> WorkloadClaims {
        WorkloadClaims {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            workload: "m-abc".into(),
            user_id: Some("alice".into()),
            expires_at: 1_000,
        }
    }

    #[test]
    fn mint_then_verify() {
        let t = tokens(1);
        let token = t.mint(&claims());
        assert!(token.starts_with(PREFIX));
        assert_eq!(t.verify(&token, 999), Ok(claims()));
        let no_user = WorkloadClaims {
            user_id: None,
            ..claims()
        };
        assert_eq!(t.verify(&t.mint(&no_user), 0), Ok(no_user));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let t = tokens(1);
        let token = t.mint(&claims());
        assert_eq!(t.verify(&token, 1_000), Err(INVALID_TOKEN));
        assert_eq!(t.verify(&token, 5_000), Err(INVALID_TOKEN));
    }

    #[test]
    fn another_key_or_a_tampered_token_is_refused() {
        let t = tokens(1);
        let token = t.mint(&claims());
        assert_eq!(tokens(2).verify(&token, 0), Err(INVALID_TOKEN));
        // change the account inside the payload, keep the tag
        let (payload, tag) = token[PREFIX.len()..].split_once('.').unwrap();
        let text = String::from_utf8(B64.decode(payload).unwrap()).unwrap();
        let forged = B64.encode(text.replace("111111111111", "222222222222"));
        assert_eq!(
            t.verify(&format!("{PREFIX}{forged}.{tag}"), 0),
            Err(INVALID_TOKEN)
        );
        // flip one character of the tag
        let mut bad = token.clone().into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            t.verify(std::str::from_utf8(&bad).unwrap(), 0),
            Err(INVALID_TOKEN)
        );
        for junk in ["", "pwat1.", "pwat1.a.b", "x.y.z", &token[1..]] {
            assert_eq!(t.verify(junk, 0), Err(INVALID_TOKEN), "{junk}");
        }
    }

    #[test]
    fn a_token_belongs_to_its_account_and_region_only() {
        let t = tokens(1);
        let c = t.verify(&t.mint(&claims()), 0).unwrap();
        let caller = |account: &str, region: &str| Caller {
            account_id: account.into(),
            region: region.into(),
        };
        assert!(c.belongs_to(&caller("111111111111", "us-east-1")));
        assert!(!c.belongs_to(&caller("222222222222", "us-east-1")));
        assert!(!c.belongs_to(&caller("111111111111", "eu-west-1")));
    }

    #[test]
    fn workload_arn() {
        let c = Caller {
            account_id: "111111111111".into(),
            region: "us-west-2".into(),
        };
        assert_eq!(
            workload_identity_arn(&c, "m-1"),
            "arn:aws:bedrock-agentcore:us-west-2:111111111111:workload-identity-directory/default/workload-identity/m-1"
        );
    }
}
