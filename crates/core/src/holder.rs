//! Wallet holders (design.md "Growing the payment path"): who holds an instrument's key and
//! signs for it. Self-custody instruments are signed by Purser's vault inside the ledger
//! (`payments.rs`); a vendor-held wallet (Coinbase CDP, Privy) is signed by the vendor's
//! API, an HTTP call, which therefore happens BEFORE the ledger and never inside a database
//! transaction (ARCHITECTURE, payment path, "remote holders").
//!
//! This is the one module of the core that names the vendors: instruments and ProcessPayment
//! ask it for a wallet and a signer, and the ledger receives a payment that is either to be
//! signed by the vault or already signed.
use std::sync::Arc;

use purser_chain::payment::{self, BuildError, PayerSigner, Signature, ToSign};
use purser_wallet::Secret;
use purser_wallet::vendor::api::{ApiError, BaseUrl, HttpSettings, VendorHttp};
use purser_wallet::vendor::cdp::{self, Cdp, CdpCredentials};
use purser_wallet::vendor::privy::{self, Privy, PrivyCredentials};
use purser_wallet::vendor::{LinkedAccount, VendorChain, VendorError, VendorWallet};

use crate::domain::*;
use crate::{CoreError, CoreResult};

/// The vendor API clients (one shared HTTP client), with their base URLs.
#[derive(Clone, Debug)]
pub struct Vendors {
    cdp: Cdp,
    privy: Privy,
}

impl Vendors {
    /// `cdp_base` / `privy_base`: the vendors' base URLs (https, or http on loopback).
    pub fn new(settings: HttpSettings, cdp_base: BaseUrl, privy_base: BaseUrl) -> Vendors {
        let http = VendorHttp::new(settings);
        Vendors {
            cdp: Cdp::new(http.clone(), cdp_base),
            privy: Privy::new(http, privy_base),
        }
    }
}

impl Default for Vendors {
    /// The real vendors.
    fn default() -> Self {
        Vendors::new(
            HttpSettings::default(),
            BaseUrl::parse(cdp::DEFAULT_BASE_URL).expect("a valid default"),
            BaseUrl::parse(privy::DEFAULT_BASE_URL).expect("a valid default"),
        )
    }
}

/// The linked account an instrument is created for, as the vendors know their users.
/// `Debug` never shows the address or number.
#[derive(Clone, PartialEq, Eq)]
pub enum Contact {
    Email(String),
    /// E.164.
    Phone(String),
}

impl std::fmt::Debug for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Contact::Email(_) => "Email(***)",
            Contact::Phone(_) => "Phone(***)",
        })
    }
}

/// A vendor's credentials, opened from a credential provider for the length of one
/// operation (zeroized on drop).
pub(crate) struct VendorAccess {
    pub vendor: Vendor,
    pub key_id: String,
    pub authorization_id: Option<String>,
    pub secrets: Vec<(String, Secret)>,
}

impl VendorAccess {
    fn secret(&self, name: &str) -> Option<&Secret> {
        self.secrets.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn cdp(&self) -> Result<CdpCredentials<'_>, ApiError> {
        Ok(CdpCredentials {
            api_key_id: &self.key_id,
            api_key_secret: self
                .secret("apiKeySecret")
                .ok_or(VendorError::MissingSecret("apiKeySecret"))?,
            wallet_secret: self.secret("walletSecret"),
        })
    }

    fn privy(&self) -> Result<PrivyCredentials<'_>, ApiError> {
        Ok(PrivyCredentials {
            app_id: &self.key_id,
            app_secret: self
                .secret("appSecret")
                .ok_or(VendorError::MissingSecret("appSecret"))?,
            authorization_key: self.secret("authorizationPrivateKey"),
            authorization_id: self.authorization_id.as_deref(),
        })
    }
}

/// Vendor credentials are checked by the vendor against real time: the machine's clock,
/// never the business clock (which tests may move).
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Vendors {
    /// Create (or find) the vendor's user for `contact` and its wallet on `network`.
    pub(crate) async fn create_wallet(
        &self,
        access: &VendorAccess,
        contact: &Contact,
        network: Network,
        idempotency_key: &str,
    ) -> CoreResult<VendorWallet> {
        let linked = match contact {
            Contact::Email(e) => LinkedAccount::Email(e),
            Contact::Phone(p) => LinkedAccount::Phone(p),
        };
        let chain = match network {
            Network::Ethereum => VendorChain::Evm,
            Network::Solana => VendorChain::Solana,
        };
        let now = wall_ms();
        let result = match access.vendor {
            Vendor::CoinbaseCdp => {
                let creds = access.cdp().map_err(|e| vendor_error(access.vendor, e))?;
                self.cdp
                    .create_wallet(&creds, &linked, chain, idempotency_key, now / 1000)
                    .await
            }
            Vendor::StripePrivy => {
                let creds = access.privy().map_err(|e| vendor_error(access.vendor, e))?;
                self.privy
                    .create_wallet(&creds, &linked, chain, idempotency_key, now)
                    .await
            }
        };
        result.map_err(|e| vendor_error(access.vendor, e))
    }
}

/// A vendor-held wallet with the credentials to sign with it: the [`PayerSigner`] of a
/// remote holder.
pub(crate) struct RemoteSigner {
    pub vendors: Arc<Vendors>,
    pub access: VendorAccess,
    pub wallet: VendorWallet,
}

impl RemoteSigner {
    /// Sign what a payment asks (`typed_data`: the EIP-712 JSON of a TypedData message).
    pub(crate) async fn sign_payment(
        &self,
        what: &ToSign,
        typed_data: Option<serde_json::Value>,
    ) -> CoreResult<Signature> {
        self.sign_inner(what, typed_data)
            .await
            .map_err(|e| vendor_error(self.access.vendor, e))
    }

    async fn sign_inner(
        &self,
        what: &ToSign,
        typed_data: Option<serde_json::Value>,
    ) -> Result<Signature, ApiError> {
        let now = wall_ms();
        let vendor = self.access.vendor;
        let (cdp, privy) = (&self.vendors.cdp, &self.vendors.privy);
        match what {
            ToSign::TypedData { .. } => {
                let typed = typed_data.ok_or(ApiError::Malformed("no typed data to sign"))?;
                let sig = match vendor {
                    Vendor::CoinbaseCdp => {
                        cdp.sign_typed_data(&self.access.cdp()?, &self.wallet, &typed, now / 1000)
                            .await?
                    }
                    Vendor::StripePrivy => {
                        privy
                            .sign_typed_data(&self.access.privy()?, &self.wallet, &typed, now)
                            .await?
                    }
                };
                Ok(Signature::Secp256k1(sig))
            }
            ToSign::EvmTransaction { unsigned, .. } => {
                let signed = match vendor {
                    Vendor::CoinbaseCdp => {
                        cdp.sign_evm_transaction(
                            &self.access.cdp()?,
                            &self.wallet,
                            unsigned,
                            now / 1000,
                        )
                        .await?
                    }
                    Vendor::StripePrivy => {
                        return Err(ApiError::Refused {
                            status: 0,
                            code: "evm_transaction_unsupported".into(),
                        });
                    }
                };
                payment::evm_signature_in(&signed, unsigned)
                    .map(Signature::Secp256k1)
                    .ok_or(ApiError::Malformed(
                        "the signed transaction is not the one sent",
                    ))
            }
            ToSign::SolanaMessage { message } => {
                let tx = payment::solana_unsigned_transaction(message)
                    .ok_or(ApiError::Malformed("unreadable Solana message"))?;
                let signed = match vendor {
                    Vendor::CoinbaseCdp => {
                        cdp.sign_solana_transaction(
                            &self.access.cdp()?,
                            &self.wallet,
                            &tx,
                            now / 1000,
                        )
                        .await?
                    }
                    Vendor::StripePrivy => {
                        privy
                            .sign_solana_transaction(&self.access.privy()?, &self.wallet, &tx, now)
                            .await?
                    }
                };
                payment::solana_signature_in(&signed, message, &self.wallet.address)
                    .map(Signature::Ed25519)
                    .ok_or(ApiError::Malformed(
                        "the signed transaction is not the one sent",
                    ))
            }
        }
    }
}

#[async_trait::async_trait]
impl PayerSigner for RemoteSigner {
    /// For a kind that acts on chain before the payment (the upto `approve`). The vendor's
    /// refusal is logged by its kind only; the kind answers a signing failure.
    async fn sign(&self, what: &ToSign) -> Result<Signature, BuildError> {
        self.sign_inner(what, None).await.map_err(|e| {
            tracing::warn!(target: "purser::vendor", vendor = self.access.vendor.as_str(), error = %e, "a vendor did not sign");
            BuildError::Signing
        })
    }
}

fn vendor_name(v: Vendor) -> &'static str {
    match v {
        Vendor::CoinbaseCdp => "Coinbase CDP",
        Vendor::StripePrivy => "Privy",
    }
}

/// B28: a vendor's failure as AgentCore answers it. Never a 500, never a secret, never
/// the vendor's own message (it may echo the linked account).
pub(crate) fn vendor_error(vendor: Vendor, e: ApiError) -> CoreError {
    let name = vendor_name(vendor);
    tracing::warn!(target: "purser::vendor", vendor = vendor.as_str(), error = %e, "vendor call failed");
    match e {
        ApiError::DelegationNotActive => CoreError::AccessDenied(
            "Delegated signing grant is not active for the end user wallet. Please redirect end user to the WalletHub to grant the permissions.".into(),
        ),
        ApiError::DelegationNotEnabled => CoreError::AccessDenied(
            "Delegated signing is not enabled for your Coinbase project. Please enable delegated signing for the project in the Coinbase Developer Platform portal.".into(),
        ),
        ApiError::CredentialsInvalid | ApiError::Credential(_) => CoreError::AccessDenied(format!(
            "{name} credentials are invalid. Please verify the credential configuration."
        )),
        ApiError::PolicyDenied => {
            CoreError::AccessDenied("Wallet policy denied the transaction".into())
        }
        ApiError::RateLimited => CoreError::Throttled(format!("Rate limited by {name}")),
        ApiError::Unavailable(why) => CoreError::Throttled(format!(
            "{name} did not answer in time or failed ({why}); retry the request."
        )),
        ApiError::Malformed(why) => CoreError::Throttled(format!(
            "{name} gave an answer Purser could not use ({why}); retry the request."
        )),
        ApiError::NotFound => CoreError::rule(format!(
            "The wallet of this payment instrument was not found at {name}."
        )),
        ApiError::AlreadyExists => CoreError::Conflict(format!(
            "{name} reports that the wallet already exists."
        )),
        ApiError::Refused { status: 0, code } if code == "evm_transaction_unsupported" => {
            CoreError::rule(format!(
                "{name} wallets cannot sign EVM transactions on this server (permit2AllowanceLimit)."
            ))
        }
        ApiError::Refused { status, code } => CoreError::rule(format!(
            "{name} refused the request (HTTP {status}, {code})."
        )),
    }
}
