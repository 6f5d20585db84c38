//! Domain records. Not `Serialize`: the wire shapes live in `purser-model`.
use std::collections::BTreeMap;
use time::OffsetDateTime;

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($var),+ }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$var),)+ _ => None }
            }
        }
    };
}

str_enum!(
    /// Wallet-provider vendor of a credential provider.
    Vendor { CoinbaseCdp = "CoinbaseCDP", StripePrivy = "StripePrivy" }
);
str_enum!(ConnectorType {
    CoinbaseCdp = "CoinbaseCDP",
    StripePrivy = "StripePrivy",
    SelfCustody = "SelfCustody",
});
str_enum!(AuthorizerType { CustomJwt = "CUSTOM_JWT", AwsIam = "AWS_IAM" });
str_enum!(ProvisionMode { Manual = "MANUAL", QuickCreate = "QUICK_CREATE" });
str_enum!(
    /// Lifecycle of managers and connectors (B12, B13).
    ResourceStatus {
        Creating = "CREATING",
        Updating = "UPDATING",
        Deleting = "DELETING",
        Ready = "READY",
    }
);

impl ConnectorType {
    /// The credential-provider vendor a connector of this type must reference, if any.
    pub fn vendor(self) -> Option<Vendor> {
        match self {
            ConnectorType::CoinbaseCdp => Some(Vendor::CoinbaseCdp),
            ConnectorType::StripePrivy => Some(Vendor::StripePrivy),
            ConnectorType::SelfCustody => None,
        }
    }
}

pub type Tags = BTreeMap<String, String>;

/// One secret field of a credential provider: its name (e.g. `apiKeySecret`).
/// The values themselves only exist sealed in [`CredentialProvider::sealed_secrets`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialProvider {
    pub account_id: String,
    pub name: String,
    pub vendor: Vendor,
    /// Non-secret identifiers: CoinbaseCDP `apiKeyId`; StripePrivy `appId`.
    pub key_id: String,
    /// StripePrivy `authorizationId`.
    pub authorization_id: Option<String>,
    /// Names of the secret fields held (sorted).
    pub secret_fields: Vec<String>,
    /// The secret values, sealed by the vault (AAD = account and name).
    pub sealed_secrets: Vec<u8>,
    pub tags: Tags,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The wire form of a manager's `authorizerConfiguration`, kept opaque by the core: the
/// server layer owns its encoding. The discovery URL is extracted for the core's checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizerConfig {
    pub discovery_url: String,
    pub encoded: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manager {
    pub account_id: String,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub authorizer_type: AuthorizerType,
    pub authorizer: Option<AuthorizerConfig>,
    pub role_arn: String,
    pub kms_key_arn: Option<String>,
    pub tags: Tags,
    pub status: ResourceStatus,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// When the current transitional status (CREATING/UPDATING/DELETING) completes.
    pub transition_at: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialRef {
    pub vendor: Vendor,
    pub arn: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connector {
    pub account_id: String,
    pub manager_id: String,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub connector_type: ConnectorType,
    pub provision_mode: Option<ProvisionMode>,
    pub credential: Option<CredentialRef>,
    /// When RotatePaymentConnectorCredentials last ran.
    pub credentials_updated_at: Option<OffsetDateTime>,
    pub status: ResourceStatus,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub transition_at: Option<OffsetDateTime>,
}

/// A page of a list and the key to continue after, if there is more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

str_enum!(
    /// Wallet network of an instrument (B14): ETHEREUM covers Ethereum and EVM L2s.
    Network { Ethereum = "ETHEREUM", Solana = "SOLANA" }
);
str_enum!(InstrumentStatus {
    Initiated = "INITIATED",
    Active = "ACTIVE",
    Failed = "FAILED",
    Deleted = "DELETED",
    Blocked = "BLOCKED",
});

/// Linked-account details (email, phone, ...). The full form is only ever stored sealed;
/// replies carry the masked form. Both encodings are owned by the wire layer.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkedAccounts {
    pub masked: String,
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for LinkedAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkedAccounts(***)")
    }
}

/// A payment instrument: an embedded crypto wallet owned by (account, manager, userId).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instrument {
    pub account_id: String,
    pub manager_id: String,
    pub connector_id: String,
    pub id: String,
    pub user_id: String,
    pub network: Network,
    pub wallet_address: String,
    pub linked_accounts: LinkedAccounts,
    /// The wallet's private key, sealed by the vault (AAD names the instrument); empty
    /// for a wallet held by a vendor.
    pub sealed_key: Vec<u8>,
    /// Who holds the wallet's key: the vault (self-custody) or a vendor.
    pub holder: WalletHolder,
    pub status: InstrumentStatus,
    /// Optimistic-locking counter, incremented by every change.
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Who holds an instrument's key (design.md "Growing the payment path"): Purser's vault,
/// or a vendor (the connector's type says which) that knows the wallet by its user and
/// wallet id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletHolder {
    SelfCustody,
    Vendor { user_id: String, wallet_id: String },
}

/// What ListPaymentInstruments shows of an instrument (PaymentInstrumentSummary): no
/// key, wallet or linked-account columns, so the store can answer from an index alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentSummary {
    pub account_id: String,
    pub manager_id: String,
    pub connector_id: String,
    pub id: String,
    pub user_id: String,
    pub status: InstrumentStatus,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A payment session (B20): a spending cap in micro-USD (optional) and an expiry, owned by
/// (account, manager, userId). `spent` only moves by the store's atomic reserve step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub account_id: String,
    pub id: String,
    pub manager_id: String,
    pub user_id: String,
    pub expiry_minutes: i32,
    pub expires_at: OffsetDateTime,
    /// Cap in micro-dollars; None = no limit.
    pub cap: Option<i64>,
    /// Signed so far, in micro-dollars (atomic USDC units).
    pub spent: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Session {
    pub fn remaining(&self) -> Option<i64> {
        self.cap.map(|c| c - self.spent)
    }
}

/// A signed payment: the durable audit record written before the reply leaves. It never
/// holds key material; `output` is the wire encoding of the reply's paymentOutput.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub account_id: String,
    pub id: String,
    pub session_id: String,
    pub instrument_id: String,
    pub manager_id: String,
    pub user_id: String,
    pub client_token: Option<String>,
    pub fingerprint: Option<[u8; 32]>,
    pub payment_type: String,
    /// Protocol version of the payment input (x402 "1" or "2").
    pub version: String,
    pub scheme: String,
    pub network: String,
    pub payer: String,
    pub payee: String,
    pub asset: String,
    /// Atomic units of the asset, as a decimal string (may exceed 64 bits for uncapped sessions).
    pub amount: String,
    /// Micro-dollars debited from the session budget (0 for uncapped sessions).
    pub debited: i64,
    /// Micro-dollars the payment is worth whatever its session (what spending policies
    /// and the history's sums count).
    pub value: i64,
    /// The `X-Amzn-Bedrock-AgentCore-Payments-Agent-Name` the request carried
    /// (observability only).
    pub agent_name: Option<String>,
    pub output: String,
    pub created_at: OffsetDateTime,
}

str_enum!(
    /// Why a payment was refused, for the operator's audit (input errors are not recorded).
    RefusalReason {
        SessionBudget = "SESSION_BUDGET",
        SessionExpired = "SESSION_EXPIRED",
        Policy = "POLICY",
    }
);

/// A refused payment, as the operator sees it: no secret, no linked-account detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub account_id: String,
    pub id: String,
    pub manager_id: String,
    pub user_id: String,
    pub agent_name: Option<String>,
    pub session_id: String,
    pub instrument_id: String,
    pub reason: RefusalReason,
    /// The spending policy that refused it (reason POLICY).
    pub policy: Option<String>,
    pub payment_type: String,
    pub scheme: String,
    pub network: String,
    pub payee: String,
    pub amount: String,
    pub value: i64,
    /// The error message the client got.
    pub message: String,
    pub created_at: OffsetDateTime,
}

/// A spending policy's members (each optional): micro-USD caps and payee lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpendingPolicy {
    /// Rolling 24 hours, across all of a user's sessions under the manager.
    pub daily_cap: Option<i64>,
    /// Rolling 30 days, same scope.
    pub monthly_cap: Option<i64>,
    pub max_per_payment: Option<i64>,
    pub payee_allow: Option<Vec<String>>,
    pub payee_deny: Option<Vec<String>>,
}

/// A stored policy: the manager's own (`user_id` None) or one user's under the manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPolicy {
    pub account_id: String,
    pub manager_id: String,
    pub user_id: Option<String>,
    pub policy: SpendingPolicy,
    pub updated_at: OffsetDateTime,
}
