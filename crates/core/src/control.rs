//! The control plane: credential providers (B11), payment managers (B12) and payment
//! connectors (B13).
use std::sync::Arc;
use std::time::Duration;

use purser_wallet::{Secret, Vault};
use time::OffsetDateTime;

use crate::clock::truncate_millis;
use crate::domain::*;
use crate::paging::Paginator;
use crate::store::{ManagerDelete, ProviderDelete, Store, StoreError, Unique};
use crate::{Caller, Clock, CoreError, CoreResult, Idempotency};

/// How long CREATING / UPDATING / DELETING last before they complete by themselves.
pub const TRANSITION: Duration = Duration::from_millis(300);

pub const MAX_PAGE: usize = 100;
pub const MAX_PROVIDER_PAGE: usize = 20;

/// ARN of a credential provider (B10).
pub fn provider_arn(caller: &Caller, name: &str) -> String {
    format!(
        "arn:aws:bedrock-agentcore:{}:{}:token-vault/default/paymentcredentialprovider/{}",
        caller.region, caller.account_id, name
    )
}

/// ARN under which a credential provider's secret field is reported (never its value).
pub fn secret_arn(caller: &Caller, provider: &str, field: &str) -> String {
    format!(
        "arn:aws:secretsmanager:{}:{}:secret:purser/paymentcredentialprovider/{}/{}",
        caller.region, caller.account_id, provider, field
    )
}

pub fn manager_arn(caller: &Caller, id: &str) -> String {
    format!(
        "arn:aws:bedrock-agentcore:{}:{}:payment-manager/{}",
        caller.region, caller.account_id, id
    )
}

/// The provider name an ARN names, if the ARN belongs to the caller's account. The model
/// accepts both the `bedrock-agentcore` and the `acps` service spellings.
pub(crate) fn provider_name_from_arn<'a>(caller: &Caller, arn: &'a str) -> Option<&'a str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[4] != caller.account_id {
        return None;
    }
    if parts[2] != "bedrock-agentcore" && parts[2] != "acps" {
        return None;
    }
    let rest = parts[5].strip_prefix("token-vault/")?;
    let (_vault, name) = rest.split_once("/paymentcredentialprovider/")?;
    Some(name)
}

/// The decrypted secrets of a provider (length-prefixed name/value pairs sealed under the
/// provider's record).
pub(crate) fn open_provider_secrets(
    vault: &Vault,
    p: &CredentialProvider,
) -> CoreResult<Vec<(String, Secret)>> {
    let plain = vault
        .open(
            &ControlPlane::provider_aad(&p.account_id, &p.name),
            &p.sealed_secrets,
        )
        .map_err(|_| CoreError::Internal("A stored secret could not be decrypted.".into()))?;

    let mut out = Vec::new();
    let mut rest: &[u8] = &plain;
    let take = |rest: &mut &[u8]| -> Option<String> {
        if rest.len() < 4 {
            return None;
        }
        let n = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
        let s = rest.get(4..4 + n)?;
        let v = String::from_utf8(s.to_vec()).ok()?;
        *rest = &rest[4 + n..];
        Some(v)
    };
    while !rest.is_empty() {
        let (Some(k), Some(v)) = (take(&mut rest), take(&mut rest)) else {
            return Err(CoreError::Internal("A stored secret is malformed.".into()));
        };
        out.push((k, Secret::new(v)));
    }
    Ok(out)
}

/// Secret fields each vendor requires at creation, in wire order.
pub fn required_secrets(vendor: Vendor) -> &'static [&'static str] {
    match vendor {
        Vendor::CoinbaseCdp => &["apiKeySecret", "walletSecret"],
        Vendor::StripePrivy => &["appSecret", "authorizationPrivateKey"],
    }
}

/// The wire member holding a vendor's configuration (for error field paths).
pub fn vendor_config_member(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::CoinbaseCdp => "coinbaseCdpConfiguration",
        Vendor::StripePrivy => "stripePrivyConfiguration",
    }
}

/// Input of Create/UpdatePaymentCredentialProvider.
#[derive(Debug)]
pub struct ProviderInput {
    pub name: String,
    pub vendor: Vendor,
    /// Vendor of the configuration member actually sent.
    pub config_vendor: Vendor,
    pub key_id: String,
    pub authorization_id: Option<String>,
    /// Secret fields sent, by wire name.
    pub secrets: Vec<(String, Secret)>,
    pub tags: Option<Tags>,
}

#[derive(Debug, Clone)]
pub struct ManagerInput {
    pub name: String,
    pub description: Option<String>,
    pub authorizer_type: AuthorizerType,
    pub authorizer: Option<AuthorizerConfig>,
    pub role_arn: String,
    pub kms_key_arn: Option<String>,
    pub tags: Option<Tags>,
}

#[derive(Debug, Clone, Default)]
pub struct ManagerUpdate {
    pub description: Option<String>,
    pub authorizer_type: Option<AuthorizerType>,
    pub authorizer: Option<AuthorizerConfig>,
    pub role_arn: Option<String>,
    pub kms_key_arn: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ConnectorInput {
    pub manager_id: String,
    pub name: String,
    pub description: Option<String>,
    pub connector_type: ConnectorType,
    pub provision_mode: Option<ProvisionMode>,
    pub credentials: Vec<CredentialRef>,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectorUpdate {
    pub description: Option<String>,
    pub connector_type: Option<ConnectorType>,
    pub credentials: Option<Vec<CredentialRef>>,
}

/// Result of a delete of a manager or connector: its id and the status it is now in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleting {
    pub id: String,
}

pub struct ControlPlane {
    store: Arc<dyn Store>,
    vault: Vault,
    clock: Arc<dyn Clock>,
    pages: Paginator,
    workload_tokens: crate::identity::WorkloadTokens,
}

impl ControlPlane {
    pub fn new(store: Arc<dyn Store>, vault: Vault, clock: Arc<dyn Clock>) -> Self {
        let pages = Paginator::new(*vault.derive_key("purser/pagination/v1"));
        let workload_tokens = crate::identity::WorkloadTokens::new(
            vault.derive_key("purser/workload-access-token/v1"),
        );
        ControlPlane {
            store,
            vault,
            clock,
            pages,
            workload_tokens,
        }
    }

    pub(crate) fn workload_tokens(&self) -> &crate::identity::WorkloadTokens {
        &self.workload_tokens
    }

    pub(crate) fn clock_now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn paginator(&self) -> &Paginator {
        &self.pages
    }

    fn now(&self) -> OffsetDateTime {
        truncate_millis(self.clock.now())
    }

    async fn replay(
        &self,
        caller: &Caller,
        operation: &str,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Option<String>> {
        Idempotency::replay(idem, &*self.store, &caller.account_id, operation).await
    }

    // ----- credential providers -------------------------------------------------------

    pub(crate) fn provider_aad(account_id: &str, name: &str) -> Vec<u8> {
        format!("purser/credential-provider/{account_id}/{name}").into_bytes()
    }

    fn seal_secrets(&self, account_id: &str, name: &str, secrets: &[(String, Secret)]) -> Vec<u8> {
        // length-prefixed (name, value) pairs
        let mut plain = zeroize::Zeroizing::new(Vec::new());
        for (k, v) in secrets {
            for part in [k.as_bytes(), v.expose().as_bytes()] {
                plain.extend_from_slice(&(part.len() as u32).to_be_bytes());
                plain.extend_from_slice(part);
            }
        }
        self.vault
            .seal(&Self::provider_aad(account_id, name), &plain)
    }

    fn open_secrets(&self, p: &CredentialProvider) -> CoreResult<Vec<(String, Secret)>> {
        open_provider_secrets(&self.vault, p)
    }

    /// The decrypted secrets of a provider, for the wallet connectors (never for replies).
    pub async fn provider_secrets(
        &self,
        caller: &Caller,
        name: &str,
    ) -> CoreResult<Vec<(String, Secret)>> {
        let p = self.get_provider(caller, name).await?;
        self.open_secrets(&p)
    }

    fn check_provider_input(input: &ProviderInput) -> CoreResult<()> {
        if input.vendor != input.config_vendor {
            return Err(CoreError::validation(
                "providerConfigurationInput",
                format!(
                    "credentialProviderVendor {} requires providerConfigurationInput.{}",
                    input.vendor.as_str(),
                    vendor_config_member(input.vendor)
                ),
            ));
        }
        Ok(())
    }

    pub async fn create_provider(
        &self,
        caller: &Caller,
        input: ProviderInput,
    ) -> CoreResult<CredentialProvider> {
        Self::check_provider_input(&input)?;
        for field in required_secrets(input.vendor) {
            if !input.secrets.iter().any(|(k, _)| k == field) {
                let path = format!(
                    "providerConfigurationInput.{}.{}",
                    vendor_config_member(input.vendor),
                    field
                );
                return Err(CoreError::validation(
                    &path,
                    format!(
                        "{path} is required when creating a {} credential provider",
                        input.vendor.as_str()
                    ),
                ));
            }
        }
        let now = self.now();
        let mut secret_fields: Vec<String> = input.secrets.iter().map(|(k, _)| k.clone()).collect();
        secret_fields.sort();
        let p = CredentialProvider {
            account_id: caller.account_id.clone(),
            sealed_secrets: self.seal_secrets(&caller.account_id, &input.name, &input.secrets),
            name: input.name,
            vendor: input.vendor,
            key_id: input.key_id,
            authorization_id: input.authorization_id,
            secret_fields,
            tags: input.tags.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        match self.store.provider_insert(&p).await {
            Ok(()) => Ok(p),
            Err(StoreError::Duplicate(_)) => Err(CoreError::Conflict(format!(
                "A payment credential provider named '{}' already exists.",
                p.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_provider(
        &self,
        caller: &Caller,
        name: &str,
    ) -> CoreResult<CredentialProvider> {
        self.store
            .provider_get(&caller.account_id, name)
            .await?
            .ok_or_else(|| {
                CoreError::NotFound(format!("Payment credential provider '{name}' not found."))
            })
    }

    pub async fn update_provider(
        &self,
        caller: &Caller,
        input: ProviderInput,
    ) -> CoreResult<CredentialProvider> {
        Self::check_provider_input(&input)?;
        let mut p = self.get_provider(caller, &input.name).await?;
        if p.vendor != input.vendor {
            return Err(CoreError::validation(
                "credentialProviderVendor",
                format!(
                    "The credential provider '{}' is of vendor {}; its vendor cannot be changed.",
                    p.name,
                    p.vendor.as_str()
                ),
            ));
        }
        let mut secrets = self.open_secrets(&p)?;
        for (k, v) in input.secrets {
            secrets.retain(|(old, _)| *old != k);
            secrets.push((k, v));
        }
        secrets.sort_by(|a, b| a.0.cmp(&b.0));
        p.secret_fields = secrets.iter().map(|(k, _)| k.clone()).collect();
        p.sealed_secrets = self.seal_secrets(&p.account_id, &p.name, &secrets);
        p.key_id = input.key_id;
        p.authorization_id = input.authorization_id;
        p.updated_at = self.now();
        if !self.store.provider_update(&p).await? {
            return Err(CoreError::NotFound(format!(
                "Payment credential provider '{}' not found.",
                p.name
            )));
        }
        Ok(p)
    }

    pub async fn delete_provider(&self, caller: &Caller, name: &str) -> CoreResult<()> {
        match self.store.provider_delete(&caller.account_id, name).await? {
            ProviderDelete::Deleted => Ok(()),
            ProviderDelete::NotFound => Err(CoreError::NotFound(format!(
                "Payment credential provider '{name}' not found."
            ))),
            ProviderDelete::InUse => Err(CoreError::Conflict(format!(
                "Payment credential provider '{name}' is used by a payment connector; delete the connector first."
            ))),
        }
    }

    pub async fn list_providers(
        &self,
        caller: &Caller,
        max_results: Option<i32>,
        next_token: Option<&str>,
    ) -> CoreResult<Page<CredentialProvider>> {
        let scope = format!("{}/ListPaymentCredentialProviders", caller.account_id);
        let limit = max_results.map_or(MAX_PROVIDER_PAGE, |n| n as usize);
        let after = self.page_after(&scope, next_token)?;
        let items = self
            .store
            .provider_list(&caller.account_id, after.as_deref(), limit + 1)
            .await?;
        Ok(self.page_finish(&scope, items, limit, |p| &p.name))
    }

    /// Keyset pagination shared by every list: the key to continue after, from the token.
    fn page_after(&self, scope: &str, next_token: Option<&str>) -> CoreResult<Option<String>> {
        next_token
            .map(|t| self.pages.decode(scope, t, "nextToken"))
            .transpose()
    }

    /// Keyset pagination: `items` were fetched with `limit + 1`; a surplus means more pages.
    fn page_finish<T>(
        &self,
        scope: &str,
        mut items: Vec<T>,
        limit: usize,
        key: impl Fn(&T) -> &str,
    ) -> Page<T> {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| self.pages.encode(scope, key(last)))
        } else {
            None
        };
        Page { items, next }
    }

    // ----- managers ---------------------------------------------------------------------

    fn check_authorizer(
        authorizer_type: AuthorizerType,
        authorizer: &Option<AuthorizerConfig>,
    ) -> CoreResult<()> {
        match (authorizer_type, authorizer) {
            (AuthorizerType::CustomJwt, None) => Err(CoreError::validation(
                "authorizerConfiguration",
                "authorizerConfiguration.customJWTAuthorizer is required when authorizerType is CUSTOM_JWT",
            )),
            (AuthorizerType::AwsIam, Some(_)) => Err(CoreError::validation(
                "authorizerConfiguration",
                "authorizerConfiguration is only allowed when authorizerType is CUSTOM_JWT",
            )),
            _ => Ok(()),
        }
    }

    fn manager_not_found(id: &str) -> CoreError {
        CoreError::NotFound(format!("Payment manager '{id}' not found."))
    }

    pub async fn create_manager(
        &self,
        caller: &Caller,
        input: ManagerInput,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Manager> {
        const OP: &str = "CreatePaymentManager";
        if let Some(id) = self.replay(caller, OP, idem).await? {
            return self.get_manager(caller, &id).await;
        }
        Self::check_authorizer(input.authorizer_type, &input.authorizer)?;
        let now = self.now();
        let m = Manager {
            account_id: caller.account_id.clone(),
            id: crate::ids::named_id(&input.name),
            name: input.name,
            description: input.description,
            authorizer_type: input.authorizer_type,
            authorizer: input.authorizer,
            role_arn: input.role_arn,
            kms_key_arn: input.kms_key_arn,
            tags: input.tags.unwrap_or_default(),
            status: ResourceStatus::Creating,
            created_at: now,
            updated_at: now,
            transition_at: Some(now + TRANSITION),
        };
        let write = Idempotency::write(idem, OP, &m.id, now);
        match self.store.manager_insert(&m, write.as_ref()).await {
            Ok(()) => Ok(m),
            Err(StoreError::Duplicate(Unique::ClientToken)) => {
                // a concurrent request with the same token won the race
                match self.replay(caller, OP, idem).await? {
                    Some(id) => self.get_manager(caller, &id).await,
                    None => Err(CoreError::Internal("idempotency record vanished".into())),
                }
            }
            Err(StoreError::Duplicate(Unique::Name)) => Err(CoreError::Conflict(format!(
                "A payment manager named '{}' already exists.",
                m.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_manager(&self, caller: &Caller, id: &str) -> CoreResult<Manager> {
        self.store
            .manager_get(&caller.account_id, id)
            .await?
            .ok_or_else(|| Self::manager_not_found(id))
    }

    pub async fn update_manager(
        &self,
        caller: &Caller,
        id: &str,
        update: ManagerUpdate,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Manager> {
        const OP: &str = "UpdatePaymentManager";
        if let Some(id) = self.replay(caller, OP, idem).await? {
            return self.get_manager(caller, &id).await;
        }
        let mut m = self.get_manager(caller, id).await?;
        // A manager still CREATING may be updated (the SDK updates right after create):
        // it goes to UPDATING and becomes READY when the update completes.
        if m.status == ResourceStatus::Deleting {
            return Err(Self::manager_not_found(id));
        }
        if let Some(t) = update.authorizer_type {
            if t != m.authorizer_type && update.authorizer.is_none() {
                m.authorizer = None;
            }
            m.authorizer_type = t;
        }
        if update.authorizer.is_some() {
            m.authorizer = update.authorizer;
        }
        Self::check_authorizer(m.authorizer_type, &m.authorizer)?;
        if update.description.is_some() {
            m.description = update.description;
        }
        if let Some(r) = update.role_arn {
            m.role_arn = r;
        }
        if update.kms_key_arn.is_some() {
            m.kms_key_arn = update.kms_key_arn;
        }
        let now = self.now();
        m.status = ResourceStatus::Updating;
        m.updated_at = now;
        m.transition_at = Some(now + TRANSITION);
        let write = Idempotency::write(idem, OP, &m.id, now);
        match self.store.manager_update(&m, write.as_ref()).await {
            Ok(true) => Ok(m),
            Ok(false) => Err(Self::manager_not_found(id)),
            Err(StoreError::Duplicate(Unique::ClientToken)) => Err(CoreError::Conflict(
                "A request with the same clientToken is in progress.".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_manager(
        &self,
        caller: &Caller,
        id: &str,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Deleting> {
        const OP: &str = "DeletePaymentManager";
        if let Some(id) = self.replay(caller, OP, idem).await? {
            return Ok(Deleting { id });
        }
        let now = self.now();
        let write = Idempotency::write(idem, OP, id, now);
        match self
            .store
            .manager_start_delete(
                &caller.account_id,
                id,
                now,
                now + TRANSITION,
                write.as_ref(),
            )
            .await
        {
            Ok(ManagerDelete::Started(m)) => Ok(Deleting { id: m.id }),
            Ok(ManagerDelete::NotFound) => Err(Self::manager_not_found(id)),
            Ok(ManagerDelete::HasConnectors) => Err(CoreError::Conflict(format!(
                "Payment manager '{id}' still has payment connectors; delete them first."
            ))),
            Err(StoreError::Duplicate(Unique::ClientToken)) => Ok(Deleting { id: id.into() }),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list_managers(
        &self,
        caller: &Caller,
        max_results: Option<i32>,
        next_token: Option<&str>,
    ) -> CoreResult<Page<Manager>> {
        let scope = format!("{}/ListPaymentManagers", caller.account_id);
        let limit = max_results.map_or(MAX_PAGE, |n| n as usize);
        let after = self.page_after(&scope, next_token)?;
        let items = self
            .store
            .manager_list(&caller.account_id, after.as_deref(), limit + 1)
            .await?;
        Ok(self.page_finish(&scope, items, limit, |m| &m.id))
    }

    // ----- connectors -------------------------------------------------------------------

    fn connector_not_found(id: &str) -> CoreError {
        CoreError::NotFound(format!("Payment connector '{id}' not found."))
    }

    /// The credential configuration a connector of `connector_type` may have: exactly one
    /// entry of the matching vendor, naming an existing provider of the caller's account;
    /// none for SelfCustody.
    async fn check_credentials(
        &self,
        caller: &Caller,
        connector_type: ConnectorType,
        credentials: &[CredentialRef],
    ) -> CoreResult<Option<CredentialRef>> {
        const FIELD: &str = "credentialProviderConfigurations";
        let Some(vendor) = connector_type.vendor() else {
            if !credentials.is_empty() {
                return Err(CoreError::validation(
                    FIELD,
                    "A SelfCustody payment connector holds its own keys and takes no credentialProviderConfigurations (send an empty list).",
                ));
            }
            return Ok(None);
        };
        let [cred] = credentials else {
            return Err(CoreError::validation(
                FIELD,
                format!(
                    "A {} payment connector needs exactly one credentialProviderConfigurations entry.",
                    connector_type.as_str()
                ),
            ));
        };
        if cred.vendor != vendor {
            return Err(CoreError::validation(
                FIELD,
                format!(
                    "A {} payment connector needs a {} credential provider configuration.",
                    connector_type.as_str(),
                    vendor.as_str()
                ),
            ));
        }
        let not_found = || {
            CoreError::NotFound(format!(
                "Payment credential provider '{}' not found.",
                cred.arn
            ))
        };
        let name = provider_name_from_arn(caller, &cred.arn).ok_or_else(not_found)?;
        let provider = self
            .store
            .provider_get(&caller.account_id, name)
            .await?
            .ok_or_else(not_found)?;
        if provider.vendor != vendor {
            return Err(CoreError::validation(
                FIELD,
                format!(
                    "Credential provider '{name}' is of vendor {}, not {}.",
                    provider.vendor.as_str(),
                    vendor.as_str()
                ),
            ));
        }
        Ok(Some(cred.clone()))
    }

    pub async fn create_connector(
        &self,
        caller: &Caller,
        input: ConnectorInput,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Connector> {
        const OP: &str = "CreatePaymentConnector";
        if let Some(id) = self.replay(caller, OP, idem).await? {
            return self.get_connector(caller, &input.manager_id, &id).await;
        }
        let manager = self.get_manager(caller, &input.manager_id).await?;
        if manager.status == ResourceStatus::Deleting {
            return Err(Self::manager_not_found(&input.manager_id));
        }
        let credential = self
            .check_credentials(caller, input.connector_type, &input.credentials)
            .await?;
        let now = self.now();
        let c = Connector {
            account_id: caller.account_id.clone(),
            manager_id: input.manager_id,
            id: crate::ids::named_id(&input.name),
            name: input.name,
            description: input.description,
            connector_type: input.connector_type,
            provision_mode: input.provision_mode,
            credential,
            credentials_updated_at: None,
            status: ResourceStatus::Creating,
            created_at: now,
            updated_at: now,
            transition_at: Some(now + TRANSITION),
        };
        let write = Idempotency::write(idem, OP, &c.id, now);
        match self.store.connector_insert(&c, write.as_ref()).await {
            Ok(true) => Ok(c),
            Ok(false) => Err(Self::manager_not_found(&c.manager_id)),
            Err(StoreError::Duplicate(Unique::ClientToken)) => {
                match self.replay(caller, OP, idem).await? {
                    Some(id) => self.get_connector(caller, &c.manager_id, &id).await,
                    None => Err(CoreError::Internal("idempotency record vanished".into())),
                }
            }
            Err(StoreError::Duplicate(Unique::Name)) => Err(CoreError::Conflict(format!(
                "A payment connector named '{}' already exists in this payment manager.",
                c.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_connector(
        &self,
        caller: &Caller,
        manager_id: &str,
        id: &str,
    ) -> CoreResult<Connector> {
        self.store
            .connector_get(&caller.account_id, manager_id, id)
            .await?
            .ok_or_else(|| Self::connector_not_found(id))
    }

    async fn get_live_connector(
        &self,
        caller: &Caller,
        manager_id: &str,
        id: &str,
    ) -> CoreResult<Connector> {
        // A connector still CREATING may be updated, like a manager.
        let c = self.get_connector(caller, manager_id, id).await?;
        match c.status {
            ResourceStatus::Deleting => Err(Self::connector_not_found(id)),
            _ => Ok(c),
        }
    }

    pub async fn update_connector(
        &self,
        caller: &Caller,
        manager_id: &str,
        id: &str,
        update: ConnectorUpdate,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Connector> {
        const OP: &str = "UpdatePaymentConnector";
        if let Some(id) = self.replay(caller, OP, idem).await? {
            return self.get_connector(caller, manager_id, &id).await;
        }
        let mut c = self.get_live_connector(caller, manager_id, id).await?;
        if let Some(t) = update.connector_type {
            c.connector_type = t;
        }
        if update.description.is_some() {
            c.description = update.description;
        }
        let credentials = match update.credentials {
            Some(list) => list,
            None => c.credential.iter().cloned().collect(),
        };
        c.credential = self
            .check_credentials(caller, c.connector_type, &credentials)
            .await?;
        self.start_connector_update(caller, c, OP, idem).await
    }

    async fn start_connector_update(
        &self,
        _caller: &Caller,
        mut c: Connector,
        op: &'static str,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Connector> {
        let now = self.now();
        c.status = ResourceStatus::Updating;
        c.updated_at = now;
        c.transition_at = Some(now + TRANSITION);
        let write = Idempotency::write(idem, op, &c.id, now);
        match self.store.connector_update(&c, write.as_ref()).await {
            Ok(true) => Ok(c),
            Ok(false) => Err(Self::connector_not_found(&c.id)),
            Err(StoreError::Duplicate(Unique::ClientToken)) => Err(CoreError::Conflict(
                "A request with the same clientToken is in progress.".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// RotatePaymentConnectorCredentials: only for QUICK_CREATE CoinbaseCDP connectors (the
    /// only rotation target the model defines). Purser records the rotation (UPDATING, then
    /// READY); the vendor-side rotation itself needs the wallet-provider integration.
    pub async fn rotate_connector_credentials(
        &self,
        caller: &Caller,
        manager_id: &str,
        id: &str,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Connector> {
        const OP: &str = "RotatePaymentConnectorCredentials";
        if let Some(id) = self.replay(caller, OP, idem).await? {
            return self.get_connector(caller, manager_id, &id).await;
        }
        let mut c = self.get_live_connector(caller, manager_id, id).await?;
        if c.provision_mode != Some(ProvisionMode::QuickCreate) {
            return Err(CoreError::validation(
                "paymentConnectorId",
                format!(
                    "Payment connector '{id}' was not created with provisionMode QUICK_CREATE; rotate its credentials through its credential provider instead."
                ),
            ));
        }
        if c.connector_type != ConnectorType::CoinbaseCdp {
            return Err(CoreError::validation(
                "credentialsToRotate",
                format!(
                    "credentialsToRotate.coinbaseCDP does not apply to a {} payment connector.",
                    c.connector_type.as_str()
                ),
            ));
        }
        c.credentials_updated_at = Some(self.now());
        self.start_connector_update(caller, c, OP, idem).await
    }

    pub async fn delete_connector(
        &self,
        caller: &Caller,
        manager_id: &str,
        id: &str,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Deleting> {
        const OP: &str = "DeletePaymentConnector";
        if let Some(id) = self.replay(caller, OP, idem).await? {
            return Ok(Deleting { id });
        }
        let now = self.now();
        let write = Idempotency::write(idem, OP, id, now);
        match self
            .store
            .connector_start_delete(
                &caller.account_id,
                manager_id,
                id,
                now,
                now + TRANSITION,
                write.as_ref(),
            )
            .await
        {
            Ok(Some(c)) => Ok(Deleting { id: c.id }),
            Ok(None) => Err(Self::connector_not_found(id)),
            Err(StoreError::Duplicate(Unique::ClientToken)) => Ok(Deleting { id: id.into() }),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list_connectors(
        &self,
        caller: &Caller,
        manager_id: &str,
        max_results: Option<i32>,
        next_token: Option<&str>,
    ) -> CoreResult<Page<Connector>> {
        // The parent must exist in the caller's account (404 otherwise, as for Get).
        self.get_manager(caller, manager_id).await?;
        let scope = format!("{}/ListPaymentConnectors/{manager_id}", caller.account_id);
        let limit = max_results.map_or(MAX_PAGE, |n| n as usize);
        let after = self.page_after(&scope, next_token)?;
        let items = self
            .store
            .connector_list(&caller.account_id, manager_id, after.as_deref(), limit + 1)
            .await?;
        Ok(self.page_finish(&scope, items, limit, |c| &c.id))
    }
}

/// Completes due transitions every `every` until the process ends. Safe on several nodes.
pub fn spawn_lifecycle(store: Arc<dyn Store>, clock: Arc<dyn Clock>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = store
                .complete_transitions(truncate_millis(clock.now()))
                .await
            {
                tracing::warn!(error = %e, "completing status transitions failed");
            }
        }
    });
}
