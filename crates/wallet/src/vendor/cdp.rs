//! The Coinbase CDP v2 client Purser uses for CoinbaseCDP instruments: end users (one per
//! linked account) with an EVM or Solana account, and delegated signing through the
//! embedded-wallet API (`/v2/embedded-wallet-api/end-users/{userId}/...`), authorized by
//! the project's API-key JWT and wallet-auth JWT ([`super::cdp_tokens`]).
//!
//! Paths, bodies and answers follow the CDP v2 OpenAPI description as shipped in
//! `@coinbase/cdp-sdk` (`createEndUser`, `lookupEndUser`, `addEndUserEvmAccount`,
//! `addEndUserSolanaAccount`, `signEvmTypedDataWithEndUserAccount`,
//! `signEvmTransactionWithEndUserAccount`, `signSolanaTransactionWithEndUserAccount`).
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::{ApiError, BaseUrl, Call, VendorHttp, by_status, text};
use super::{CdpRequest, LinkedAccount, VendorChain, VendorWallet, cdp_tokens};
use crate::Secret;

/// The real CDP API (its paths start with `/platform`).
pub const DEFAULT_BASE_URL: &str = "https://api.cdp.coinbase.com/platform";

/// A CDP project's credentials (a credential provider's secrets).
pub struct CdpCredentials<'a> {
    pub api_key_id: &'a str,
    pub api_key_secret: &'a Secret,
    pub wallet_secret: Option<&'a Secret>,
}

/// The CDP client: one base URL over the shared vendor HTTP client.
#[derive(Clone, Debug)]
pub struct Cdp {
    http: VendorHttp,
    base: BaseUrl,
}

/// CDP's error answer `{errorType, errorMessage, correlationId}`: classified by
/// `errorType` first, then by status. The message is never kept.
fn classify(status: StatusCode, body: &Value) -> ApiError {
    let code = text(body, "errorType").unwrap_or("");
    match code {
        "unauthorized" | "invalid_signature" => ApiError::CredentialsInvalid,
        "delegation_not_found"
        | "delegation_expired"
        | "delegation_revoked"
        | "delegation_not_authorized" => ApiError::DelegationNotActive,
        "delegation_not_enabled" => ApiError::DelegationNotEnabled,
        "policy_violation" => ApiError::PolicyDenied,
        "rate_limit_exceeded" => ApiError::RateLimited,
        "not_found" => ApiError::NotFound,
        "already_exists" => ApiError::AlreadyExists,
        "internal_server_error" | "bad_gateway" | "service_unavailable" | "timed_out" => {
            ApiError::Unavailable("server error")
        }
        _ => by_status(status, code),
    }
}

impl Cdp {
    pub fn new(http: VendorHttp, base: BaseUrl) -> Cdp {
        Cdp { http, base }
    }

    /// A GET (API-key JWT only; retried).
    async fn get(
        &self,
        creds: &CdpCredentials<'_>,
        path: &str,
        query: Vec<(&'static str, String)>,
        now: i64,
    ) -> Result<Value, ApiError> {
        self.call(creds, Method::GET, path, query, None, None, now)
            .await
    }

    /// A POST of the wallet API (API-key JWT and wallet-auth JWT), with an idempotency key
    /// (retried with the same key).
    async fn post(
        &self,
        creds: &CdpCredentials<'_>,
        path: &str,
        body: Value,
        idempotency_key: &str,
        now: i64,
    ) -> Result<Value, ApiError> {
        self.call(
            creds,
            Method::POST,
            path,
            vec![],
            Some(body),
            Some(idempotency_key),
            now,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        creds: &CdpCredentials<'_>,
        method: Method,
        path: &str,
        query: Vec<(&'static str, String)>,
        body: Option<Value>,
        idempotency_key: Option<&str>,
        now: i64,
    ) -> Result<Value, ApiError> {
        // Every write of the wallet API needs the wallet-auth JWT (the SDK's
        // `requiresWalletAuth` for the paths Purser calls).
        let wallet_auth = method != Method::GET;
        let body = body.map(|b| b.to_string());
        let full_path = self.base.path(path);
        let url = self.base.url(path);
        let host = self.base.authority();
        let idempotent = method == Method::GET || idempotency_key.is_some();
        self.http
            .send(
                idempotent,
                || {
                    let tokens = cdp_tokens(
                        creds.api_key_id,
                        creds.api_key_secret,
                        creds.wallet_secret,
                        &CdpRequest {
                            method: method.as_str(),
                            host: &host,
                            path: &full_path,
                            body: body.as_deref(),
                            wallet_auth,
                        },
                        now,
                    )?;
                    let mut headers = HeaderMap::new();
                    headers.insert(
                        AUTHORIZATION,
                        header(&format!("Bearer {}", tokens.bearer_token))?,
                    );
                    if let Some(w) = &tokens.wallet_auth_token {
                        headers.insert("X-Wallet-Auth", header(w)?);
                    }
                    if let Some(k) = idempotency_key {
                        headers.insert("X-Idempotency-Key", header(k)?);
                    }
                    Ok(Call {
                        method: method.clone(),
                        url: url.clone(),
                        query: query.clone(),
                        headers,
                        body: body.clone(),
                    })
                },
                classify,
            )
            .await
    }

    /// The end user of `linked` with an account on `chain`: created (with the account),
    /// or, when the linked account already has an end user in the project, found, and
    /// given an account on `chain` if it has none. `idempotency_key` (a UUID) makes a
    /// retried creation safe.
    pub async fn create_wallet(
        &self,
        creds: &CdpCredentials<'_>,
        linked: &LinkedAccount<'_>,
        chain: VendorChain,
        idempotency_key: &str,
        now: i64,
    ) -> Result<VendorWallet, ApiError> {
        let auth = match linked {
            LinkedAccount::Email(e) => json!({"type": "email", "email": e}),
            LinkedAccount::Phone(p) => json!({"type": "sms", "phoneNumber": p}),
        };
        let mut body = json!({"authenticationMethods": [auth]});
        match chain {
            VendorChain::Evm => body["evmAccount"] = json!({"createSmartAccount": false}),
            VendorChain::Solana => body["solanaAccount"] = json!({"createSmartAccount": false}),
        }
        let created = self
            .post(creds, "/v2/end-users", body, idempotency_key, now)
            .await;
        let user = match created {
            Ok(user) => user,
            Err(ApiError::AlreadyExists) => {
                let query = match linked {
                    LinkedAccount::Email(e) => vec![("email", e.to_string())],
                    LinkedAccount::Phone(p) => vec![("phoneNumber", p.to_string())],
                };
                let found = self.get(creds, "/v2/end-users/lookup", query, now).await?;
                found
                    .get("endUsers")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .cloned()
                    .ok_or(ApiError::Malformed(
                        "no end user for an existing linked account",
                    ))?
            }
            Err(e) => return Err(e),
        };
        let user_id = text(&user, "userId")
            .ok_or(ApiError::Malformed("end user without userId"))?
            .to_string();
        if let Some(address) = first_account(&user, chain) {
            return Ok(VendorWallet {
                user_id,
                wallet_id: address.clone(),
                address,
            });
        }
        // An existing end user without an account on this chain: add one.
        let (path, member) = match chain {
            VendorChain::Evm => (format!("/v2/end-users/{user_id}/evm"), "evmAccount"),
            VendorChain::Solana => (format!("/v2/end-users/{user_id}/solana"), "solanaAccount"),
        };
        let added = self
            .post(creds, &path, json!({}), idempotency_key, now)
            .await?;
        let address = added
            .get(member)
            .and_then(|a| text(a, "address"))
            .ok_or(ApiError::Malformed("account without address"))?
            .to_string();
        Ok(VendorWallet {
            user_id,
            wallet_id: address.clone(),
            address,
        })
    }

    /// Sign EIP-712 typed data (`eth_signTypedData_v4` JSON) with the end user's EVM
    /// account by delegation: `r || s || v`.
    pub async fn sign_typed_data(
        &self,
        creds: &CdpCredentials<'_>,
        wallet: &VendorWallet,
        typed_data: &Value,
        now: i64,
    ) -> Result<[u8; 65], ApiError> {
        let body = json!({"address": wallet.address, "typedData": typed_data});
        let path = format!(
            "/v2/embedded-wallet-api/end-users/{}/evm/sign/typed-data",
            wallet.user_id
        );
        let answer = self
            .post(creds, &path, body, &super::api::idempotency_key(), now)
            .await?;
        let sig = text(&answer, "signature").ok_or(ApiError::Malformed("no signature"))?;
        super::secp256k1_signature(sig)
    }

    /// Sign an unsigned EIP-1559 transaction (RLP bytes) with the end user's EVM account;
    /// the signed transaction's RLP bytes.
    pub async fn sign_evm_transaction(
        &self,
        creds: &CdpCredentials<'_>,
        wallet: &VendorWallet,
        unsigned: &[u8],
        now: i64,
    ) -> Result<Vec<u8>, ApiError> {
        let body = json!({
            "address": wallet.address,
            "transaction": format!("0x{}", hex_lower(unsigned)),
        });
        let path = format!(
            "/v2/embedded-wallet-api/end-users/{}/evm/sign/transaction",
            wallet.user_id
        );
        let answer = self
            .post(creds, &path, body, &super::api::idempotency_key(), now)
            .await?;
        let signed = text(&answer, "signedTransaction")
            .ok_or(ApiError::Malformed("no signedTransaction"))?;
        super::hex_bytes(signed).ok_or(ApiError::Malformed("signedTransaction is not hex"))
    }

    /// Sign a Solana transaction (wire bytes, the payer's signature slot empty) with the
    /// end user's Solana account; the transaction with that signature in place.
    pub async fn sign_solana_transaction(
        &self,
        creds: &CdpCredentials<'_>,
        wallet: &VendorWallet,
        transaction: &[u8],
        now: i64,
    ) -> Result<Vec<u8>, ApiError> {
        let body = json!({"address": wallet.address, "transaction": B64.encode(transaction)});
        let path = format!(
            "/v2/embedded-wallet-api/end-users/{}/solana/sign/transaction",
            wallet.user_id
        );
        let answer = self
            .post(creds, &path, body, &super::api::idempotency_key(), now)
            .await?;
        let signed = text(&answer, "signedTransaction")
            .ok_or(ApiError::Malformed("no signedTransaction"))?;
        B64.decode(signed)
            .map_err(|_| ApiError::Malformed("signedTransaction is not base64"))
    }
}

/// The first account of an end user on `chain` (`evmAccountObjects[].address`, or the
/// older `evmAccounts[]` list).
fn first_account(user: &Value, chain: VendorChain) -> Option<String> {
    let (objects, plain) = match chain {
        VendorChain::Evm => ("evmAccountObjects", "evmAccounts"),
        VendorChain::Solana => ("solanaAccountObjects", "solanaAccounts"),
    };
    user.get(objects)
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|a| text(a, "address"))
        .or_else(|| {
            user.get(plain)
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
        })
        .map(String::from)
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn header(value: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(value).map_err(|_| ApiError::Malformed("a header value is not ASCII"))
}
