//! The Privy client Purser uses for StripePrivy instruments: a user per linked account
//! (`POST /v1/users`, found again by `POST /v1/users/email/address` or
//! `/v1/users/phone/number`), an embedded wallet owned by that user with the app's
//! authorization key (the provider's `authorizationId`, a key quorum) as additional
//! signer (`POST /v1/wallets`), and signing through `POST /v1/wallets/{id}/rpc` with the
//! authorization signature ([`super::privy_request_tokens`]).
//!
//! Paths, bodies and answers follow `@privy-io/node` (`users.create`, `wallets.create`,
//! `wallets._rpc` with `eth_signTypedData_v4` and `signTransaction`).
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::{ApiError, BaseUrl, Call, VendorHttp, by_status, text};
use super::cdp::header;
use super::{LinkedAccount, VendorChain, VendorWallet, privy_request_tokens};
use crate::Secret;

/// The real Privy API.
pub const DEFAULT_BASE_URL: &str = "https://api.privy.io";

/// A Privy app's credentials (a credential provider's secrets).
pub struct PrivyCredentials<'a> {
    pub app_id: &'a str,
    pub app_secret: &'a Secret,
    pub authorization_key: Option<&'a Secret>,
    /// The key quorum of the authorization key (`authorizationId`).
    pub authorization_id: Option<&'a str>,
}

#[derive(Clone, Debug)]
pub struct Privy {
    http: VendorHttp,
    base: BaseUrl,
}

/// Privy's error answer `{error, code?}`: by status, then by words of the code (the
/// message itself is never kept).
fn classify(status: StatusCode, body: &Value) -> ApiError {
    let code = text(body, "code").unwrap_or("");
    let error = text(body, "error").unwrap_or("").to_ascii_lowercase();
    if code == "policy_violation" {
        return ApiError::PolicyDenied;
    }
    match status.as_u16() {
        401 => ApiError::CredentialsInvalid,
        403 if code.contains("policy") || error.contains("policy") => ApiError::PolicyDenied,
        403 if code.contains("signer") || error.contains("authorization") => {
            ApiError::DelegationNotActive
        }
        400 | 409 if code == "user_already_exists" || error.contains("already exist") => {
            ApiError::AlreadyExists
        }
        _ => by_status(status, code),
    }
}

impl Privy {
    pub fn new(http: VendorHttp, base: BaseUrl) -> Privy {
        Privy { http, base }
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        creds: &PrivyCredentials<'_>,
        path: &str,
        body: Value,
        sign: bool,
        idempotency_key: Option<&str>,
        idempotent: bool,
        now_ms: i64,
    ) -> Result<Value, ApiError> {
        let body = body.to_string();
        let url = self.base.url(path);
        self.http
            .send(
                idempotent || idempotency_key.is_some(),
                || {
                    let tokens = privy_request_tokens(
                        creds.app_id,
                        creds.app_secret,
                        creds.authorization_key,
                        &url,
                        &body,
                        sign,
                        idempotency_key,
                        now_ms,
                    )?;
                    let mut headers = HeaderMap::new();
                    headers.insert(
                        AUTHORIZATION,
                        header(&format!("Basic {}", tokens.basic_auth_token))?,
                    );
                    headers.insert("privy-app-id", header(&tokens.app_id)?);
                    if let Some(s) = &tokens.authorization_signature {
                        headers.insert("privy-authorization-signature", header(s)?);
                    }
                    if let Some(e) = tokens.request_expiry_ms {
                        headers.insert("privy-request-expiry", header(&e.to_string())?);
                    }
                    if let Some(k) = idempotency_key {
                        headers.insert("privy-idempotency-key", header(k)?);
                    }
                    Ok(Call {
                        method: Method::POST,
                        url: url.clone(),
                        query: vec![],
                        headers,
                        body: Some(body.clone()),
                    })
                },
                classify,
            )
            .await
    }

    /// The Privy user of `linked` (created, or found when it exists) and an embedded
    /// wallet on `chain` that the app's authorization key may sign with: the user's
    /// existing one, or a new one (`idempotency_key` makes a retried creation safe).
    pub async fn create_wallet(
        &self,
        creds: &PrivyCredentials<'_>,
        linked: &LinkedAccount<'_>,
        chain: VendorChain,
        idempotency_key: &str,
        now_ms: i64,
    ) -> Result<VendorWallet, ApiError> {
        let account = match linked {
            LinkedAccount::Email(e) => json!({"type": "email", "address": e}),
            LinkedAccount::Phone(p) => json!({"type": "phone", "number": p}),
        };
        let created = self
            .call(
                creds,
                "/v1/users",
                json!({"linked_accounts": [account]}),
                false,
                None,
                false,
                now_ms,
            )
            .await;
        let user = match created {
            Ok(u) => u,
            Err(ApiError::AlreadyExists) => {
                let (path, body) = match linked {
                    LinkedAccount::Email(e) => ("/v1/users/email/address", json!({"address": e})),
                    LinkedAccount::Phone(p) => ("/v1/users/phone/number", json!({"number": p})),
                };
                self.call(creds, path, body, false, None, true, now_ms)
                    .await?
            }
            Err(e) => return Err(e),
        };
        let user_id = text(&user, "id")
            .ok_or(ApiError::Malformed("user without id"))?
            .to_string();
        let chain_type = match chain {
            VendorChain::Evm => "ethereum",
            VendorChain::Solana => "solana",
        };
        let existing = user
            .get("linked_accounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|a| {
                text(a, "type") == Some("wallet")
                    && text(a, "chain_type") == Some(chain_type)
                    && text(a, "id").is_some()
            });
        if let Some(w) = existing
            && let (Some(id), Some(address)) = (text(w, "id"), text(w, "address"))
        {
            return Ok(VendorWallet {
                user_id,
                wallet_id: id.to_string(),
                address: address.to_string(),
            });
        }
        let mut body = json!({"chain_type": chain_type, "owner": {"user_id": user_id}});
        if let Some(signer) = creds.authorization_id {
            body["additional_signers"] = json!([{"signer_id": signer}]);
        }
        let wallet = self
            .call(
                creds,
                "/v1/wallets",
                body,
                false,
                Some(idempotency_key),
                true,
                now_ms,
            )
            .await?;
        let (Some(id), Some(address)) = (text(&wallet, "id"), text(&wallet, "address")) else {
            return Err(ApiError::Malformed("wallet without id or address"));
        };
        Ok(VendorWallet {
            user_id,
            wallet_id: id.to_string(),
            address: address.to_string(),
        })
    }

    async fn rpc(
        &self,
        creds: &PrivyCredentials<'_>,
        wallet: &VendorWallet,
        body: Value,
        now_ms: i64,
    ) -> Result<Value, ApiError> {
        let path = format!("/v1/wallets/{}/rpc", wallet.wallet_id);
        let key = super::api::idempotency_key();
        let answer = self
            .call(creds, &path, body, true, Some(&key), true, now_ms)
            .await?;
        answer
            .get("data")
            .cloned()
            .ok_or(ApiError::Malformed("rpc answer without data"))
    }

    /// `eth_signTypedData_v4` (typed data as `eth_signTypedData_v4` JSON): `r || s || v`.
    pub async fn sign_typed_data(
        &self,
        creds: &PrivyCredentials<'_>,
        wallet: &VendorWallet,
        typed_data: &Value,
        now_ms: i64,
    ) -> Result<[u8; 65], ApiError> {
        let typed = json!({
            "domain": typed_data.get("domain").cloned().unwrap_or(Value::Null),
            "types": typed_data.get("types").cloned().unwrap_or(Value::Null),
            "message": typed_data.get("message").cloned().unwrap_or(Value::Null),
            "primary_type": typed_data.get("primaryType").cloned().unwrap_or(Value::Null),
        });
        let body = json!({
            "method": "eth_signTypedData_v4",
            "params": {"typed_data": typed},
        });
        let data = self.rpc(creds, wallet, body, now_ms).await?;
        let sig = text(&data, "signature").ok_or(ApiError::Malformed("no signature"))?;
        super::secp256k1_signature(sig)
    }

    /// Solana `signTransaction`: the transaction with the wallet's signature in place.
    pub async fn sign_solana_transaction(
        &self,
        creds: &PrivyCredentials<'_>,
        wallet: &VendorWallet,
        transaction: &[u8],
        now_ms: i64,
    ) -> Result<Vec<u8>, ApiError> {
        let body = json!({
            "method": "signTransaction",
            "params": {"transaction": B64.encode(transaction), "encoding": "base64"},
        });
        let data = self.rpc(creds, wallet, body, now_ms).await?;
        let signed = text(&data, "signed_transaction")
            .ok_or(ApiError::Malformed("no signed_transaction"))?;
        B64.decode(signed)
            .map_err(|_| ApiError::Malformed("signed_transaction is not base64"))
    }
}
