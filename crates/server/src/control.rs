//! Control-plane handlers: generated wire types <-> domain calls. No rules live here; the
//! rules are in `purser_core::control`.
use purser_core::control::{
    self as core_control, ConnectorInput, ConnectorUpdate, ManagerInput, ManagerUpdate,
    ProviderInput,
};
use purser_core::domain::{
    AuthorizerConfig, AuthorizerType, Connector, ConnectorType, CredentialProvider, CredentialRef,
    Manager, ProvisionMode, ResourceStatus, Vendor,
};
use purser_core::{Caller, Idempotency};
use purser_model::control as m;
use purser_model::{AwsError, OperationDef, Timestamp};
use purser_wallet::Secret;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::pipeline::Input;

type Reply = Result<(u16, Vec<u8>), AwsError>;

/// Route an authenticated request to its handler.
pub async fn dispatch(
    state: &AppState,
    op: &'static OperationDef,
    caller: &Caller,
    input: Input<'_>,
) -> Reply {
    let cp = &*state.inner.control;
    macro_rules! call {
        ($f:ident) => {
            crate::pipeline::run_operation(op, input, |req| $f(cp, caller, req)).await
        };
    }
    match op.name {
        "CreatePaymentCredentialProvider" => call!(create_provider),
        "GetPaymentCredentialProvider" => call!(get_provider),
        "UpdatePaymentCredentialProvider" => call!(update_provider),
        "DeletePaymentCredentialProvider" => call!(delete_provider),
        "ListPaymentCredentialProviders" => call!(list_providers),
        "CreatePaymentManager" => call!(create_manager),
        "GetPaymentManager" => call!(get_manager),
        "UpdatePaymentManager" => call!(update_manager),
        "DeletePaymentManager" => call!(delete_manager),
        "ListPaymentManagers" => call!(list_managers),
        "CreatePaymentConnector" => call!(create_connector),
        "GetPaymentConnector" => call!(get_connector),
        "UpdatePaymentConnector" => call!(update_connector),
        "DeletePaymentConnector" => call!(delete_connector),
        "ListPaymentConnectors" => call!(list_connectors),
        "RotatePaymentConnectorCredentials" => call!(rotate_connector),
        other => Err(crate::pipeline::not_implemented(other)),
    }
}

type Res<T> = purser_core::CoreResult<T>;

/// The clientToken of a request and a fingerprint of everything else in it.
pub fn idempotency<T: Serialize>(token: Option<String>, rest: &T) -> Option<Idempotency> {
    token.map(|token| Idempotency {
        token,
        fingerprint: Sha256::digest(serde_json::to_vec(rest).unwrap_or_default()).into(),
    })
}

fn ts(t: time::OffsetDateTime) -> Timestamp {
    Timestamp(t)
}

// ----- credential providers ------------------------------------------------------------

fn vendor_in(v: m::PaymentCredentialProviderVendorType) -> Vendor {
    match v {
        m::PaymentCredentialProviderVendorType::CoinbaseCdp => Vendor::CoinbaseCdp,
        m::PaymentCredentialProviderVendorType::StripePrivy => Vendor::StripePrivy,
    }
}

fn vendor_out(v: Vendor) -> m::PaymentCredentialProviderVendorType {
    match v {
        Vendor::CoinbaseCdp => m::PaymentCredentialProviderVendorType::CoinbaseCdp,
        Vendor::StripePrivy => m::PaymentCredentialProviderVendorType::StripePrivy,
    }
}

/// One secret member of a provider configuration as sent.
struct SecretMember<'a> {
    field: &'static str,
    value: Option<&'a String>,
    source: Option<m::SecretSourceType>,
    external_ref: bool,
}

/// Split a provider configuration into the domain input; secrets referenced in AWS Secrets
/// Manager (source EXTERNAL) cannot be resolved by a self-hosted server and are refused.
fn provider_input(
    name: String,
    vendor: m::PaymentCredentialProviderVendorType,
    config: m::PaymentProviderConfigurationInput,
    tags: Option<std::collections::BTreeMap<String, String>>,
) -> Res<ProviderInput> {
    use m::PaymentProviderConfigurationInput as C;
    let (config_vendor, key_id, authorization_id, members) = match &config {
        C::CoinbaseCdpConfiguration(c) => (
            Vendor::CoinbaseCdp,
            c.api_key_id.clone(),
            None,
            vec![
                SecretMember {
                    field: "apiKeySecret",
                    value: c.api_key_secret.as_ref(),
                    source: c.api_key_secret_source,
                    external_ref: c.api_key_secret_config.is_some(),
                },
                SecretMember {
                    field: "walletSecret",
                    value: c.wallet_secret.as_ref(),
                    source: c.wallet_secret_source,
                    external_ref: c.wallet_secret_config.is_some(),
                },
            ],
        ),
        C::StripePrivyConfiguration(c) => (
            Vendor::StripePrivy,
            c.app_id.clone(),
            Some(c.authorization_id.clone()),
            vec![
                SecretMember {
                    field: "appSecret",
                    value: c.app_secret.as_ref(),
                    source: c.app_secret_source,
                    external_ref: c.app_secret_config.is_some(),
                },
                SecretMember {
                    field: "authorizationPrivateKey",
                    value: c.authorization_private_key.as_ref(),
                    source: c.authorization_private_key_source,
                    external_ref: c.authorization_private_key_config.is_some(),
                },
            ],
        ),
    };
    let prefix = format!(
        "providerConfigurationInput.{}",
        core_control::vendor_config_member(config_vendor)
    );
    let mut secrets = Vec::new();
    for s in members {
        if s.source == Some(m::SecretSourceType::External) || s.external_ref {
            let field = format!("{prefix}.{}Source", s.field);
            return Err(purser_core::CoreError::validation(
                &field,
                format!(
                    "{field}: EXTERNAL secrets (AWS Secrets Manager references) cannot be resolved by Purser; send the secret value with source MANAGED."
                ),
            ));
        }
        if let Some(v) = s.value.filter(|v| !v.is_empty()) {
            secrets.push((s.field.to_string(), Secret::new(v.as_str())));
        }
    }
    Ok(ProviderInput {
        name,
        vendor: vendor_in(vendor),
        config_vendor,
        key_id,
        authorization_id,
        secrets,
        tags,
    })
}

fn provider_output(
    caller: &Caller,
    p: &CredentialProvider,
) -> m::PaymentProviderConfigurationOutput {
    let arn = |field: &str| m::Secret {
        secret_arn: core_control::secret_arn(caller, &p.name, field),
    };
    match p.vendor {
        Vendor::CoinbaseCdp => m::PaymentProviderConfigurationOutput::CoinbaseCdpConfiguration(
            m::CoinbaseCdpConfigurationOutput {
                api_key_id: p.key_id.clone(),
                api_key_secret_arn: arn("apiKeySecret"),
                api_key_secret_json_key: None,
                api_key_secret_source: Some(m::SecretSourceType::Managed),
                wallet_secret_arn: arn("walletSecret"),
                wallet_secret_json_key: None,
                wallet_secret_source: Some(m::SecretSourceType::Managed),
            },
        ),
        Vendor::StripePrivy => m::PaymentProviderConfigurationOutput::StripePrivyConfiguration(
            m::StripePrivyConfigurationOutput {
                app_id: p.key_id.clone(),
                app_secret_arn: arn("appSecret"),
                app_secret_json_key: None,
                app_secret_source: Some(m::SecretSourceType::Managed),
                authorization_private_key_arn: arn("authorizationPrivateKey"),
                authorization_private_key_json_key: None,
                authorization_private_key_source: Some(m::SecretSourceType::Managed),
                authorization_id: p.authorization_id.clone().unwrap_or_default(),
            },
        ),
    }
}

async fn create_provider(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    req: m::CreatePaymentCredentialProviderRequest,
) -> Res<m::CreatePaymentCredentialProviderResponse> {
    let input = provider_input(
        req.name,
        req.credential_provider_vendor,
        req.provider_configuration_input,
        req.tags,
    )?;
    let p = cp.create_provider(caller, input).await?;
    Ok(m::CreatePaymentCredentialProviderResponse {
        credential_provider_arn: core_control::provider_arn(caller, &p.name),
        credential_provider_vendor: vendor_out(p.vendor),
        provider_configuration_output: provider_output(caller, &p),
        name: p.name,
    })
}

async fn get_provider(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    req: m::GetPaymentCredentialProviderRequest,
) -> Res<m::GetPaymentCredentialProviderResponse> {
    let p = cp.get_provider(caller, &req.name).await?;
    Ok(m::GetPaymentCredentialProviderResponse {
        credential_provider_arn: core_control::provider_arn(caller, &p.name),
        credential_provider_vendor: vendor_out(p.vendor),
        provider_configuration_output: provider_output(caller, &p),
        created_time: ts(p.created_at),
        last_updated_time: ts(p.updated_at),
        tags: Some(p.tags.clone()),
        name: p.name,
    })
}

async fn update_provider(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    req: m::UpdatePaymentCredentialProviderRequest,
) -> Res<m::UpdatePaymentCredentialProviderResponse> {
    let input = provider_input(
        req.name,
        req.credential_provider_vendor,
        req.provider_configuration_input,
        None,
    )?;
    let p = cp.update_provider(caller, input).await?;
    Ok(m::UpdatePaymentCredentialProviderResponse {
        credential_provider_arn: core_control::provider_arn(caller, &p.name),
        credential_provider_vendor: vendor_out(p.vendor),
        provider_configuration_output: provider_output(caller, &p),
        created_time: ts(p.created_at),
        last_updated_time: ts(p.updated_at),
        name: p.name,
    })
}

async fn delete_provider(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    req: m::DeletePaymentCredentialProviderRequest,
) -> Res<m::DeletePaymentCredentialProviderResponse> {
    cp.delete_provider(caller, &req.name).await?;
    Ok(m::DeletePaymentCredentialProviderResponse {})
}

async fn list_providers(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    req: m::ListPaymentCredentialProvidersRequest,
) -> Res<m::ListPaymentCredentialProvidersResponse> {
    let page = cp
        .list_providers(caller, req.max_results, req.next_token.as_deref())
        .await?;
    Ok(m::ListPaymentCredentialProvidersResponse {
        credential_providers: page
            .items
            .into_iter()
            .map(|p| m::PaymentCredentialProviderItem {
                credential_provider_arn: core_control::provider_arn(caller, &p.name),
                credential_provider_vendor: vendor_out(p.vendor),
                created_time: ts(p.created_at),
                last_updated_time: ts(p.updated_at),
                name: p.name,
            })
            .collect(),
        next_token: page.next,
    })
}

// ----- managers ---------------------------------------------------------------------------

fn authorizer_type_in(t: m::PaymentsAuthorizerType) -> AuthorizerType {
    match t {
        m::PaymentsAuthorizerType::CustomJwt => AuthorizerType::CustomJwt,
        m::PaymentsAuthorizerType::AwsIam => AuthorizerType::AwsIam,
    }
}

fn authorizer_type_out(t: AuthorizerType) -> m::PaymentsAuthorizerType {
    match t {
        AuthorizerType::CustomJwt => m::PaymentsAuthorizerType::CustomJwt,
        AuthorizerType::AwsIam => m::PaymentsAuthorizerType::AwsIam,
    }
}

fn authorizer_in(c: Option<m::AuthorizerConfiguration>) -> Option<AuthorizerConfig> {
    c.map(|c| {
        let encoded = serde_json::to_string(&c).unwrap_or_default();
        let m::AuthorizerConfiguration::CustomJwtAuthorizer(jwt) = c;
        AuthorizerConfig {
            discovery_url: jwt.discovery_url,
            encoded,
        }
    })
}

fn authorizer_out(a: &Option<AuthorizerConfig>) -> Option<m::AuthorizerConfiguration> {
    a.as_ref()
        .and_then(|a| serde_json::from_str(&a.encoded).ok())
}

fn manager_status(s: ResourceStatus) -> m::PaymentManagerStatus {
    match s {
        ResourceStatus::Creating => m::PaymentManagerStatus::Creating,
        ResourceStatus::Updating => m::PaymentManagerStatus::Updating,
        ResourceStatus::Deleting => m::PaymentManagerStatus::Deleting,
        ResourceStatus::Ready => m::PaymentManagerStatus::Ready,
    }
}

async fn create_manager(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    mut req: m::CreatePaymentManagerRequest,
) -> Res<m::CreatePaymentManagerResponse> {
    let idem = idempotency(req.client_token.take(), &req);
    crate::bearer::check_configuration(req.authorizer_configuration.as_ref())?;
    let input = ManagerInput {
        name: req.name,
        description: req.description,
        authorizer_type: authorizer_type_in(req.authorizer_type),
        authorizer: authorizer_in(req.authorizer_configuration),
        role_arn: req.role_arn,
        kms_key_arn: req.kms_key_arn,
        tags: req.tags,
    };
    let x = cp.create_manager(caller, input, idem.as_ref()).await?;
    Ok(m::CreatePaymentManagerResponse {
        payment_manager_arn: core_control::manager_arn(caller, &x.id),
        authorizer_type: authorizer_type_out(x.authorizer_type),
        authorizer_configuration: authorizer_out(&x.authorizer),
        workload_identity_details: Some(workload_details(caller, &x.id)),
        created_at: ts(x.created_at),
        status: manager_status(x.status),
        tags: Some(x.tags),
        payment_manager_id: x.id,
        name: x.name,
        role_arn: x.role_arn,
        kms_key_arn: x.kms_key_arn,
    })
}

/// Every manager is a workload identity named by its id (GetWorkloadAccessToken*).
fn workload_details(caller: &Caller, id: &str) -> m::WorkloadIdentityDetails {
    m::WorkloadIdentityDetails {
        workload_identity_arn: purser_core::identity::workload_identity_arn(caller, id),
    }
}

fn manager_view(caller: &Caller, x: Manager) -> m::GetPaymentManagerResponse {
    m::GetPaymentManagerResponse {
        payment_manager_arn: core_control::manager_arn(caller, &x.id),
        authorizer_type: authorizer_type_out(x.authorizer_type),
        authorizer_configuration: authorizer_out(&x.authorizer),
        workload_identity_details: Some(workload_details(caller, &x.id)),
        created_at: ts(x.created_at),
        last_updated_at: ts(x.updated_at),
        status: manager_status(x.status),
        tags: Some(x.tags),
        payment_manager_id: x.id,
        name: x.name,
        description: x.description,
        role_arn: x.role_arn,
        kms_key_arn: x.kms_key_arn,
    }
}

async fn get_manager(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    req: m::GetPaymentManagerRequest,
) -> Res<m::GetPaymentManagerResponse> {
    Ok(manager_view(
        caller,
        cp.get_manager(caller, &req.payment_manager_id).await?,
    ))
}

async fn update_manager(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    mut req: m::UpdatePaymentManagerRequest,
) -> Res<m::UpdatePaymentManagerResponse> {
    let idem = idempotency(req.client_token.take(), &req);
    crate::bearer::check_configuration(req.authorizer_configuration.as_ref())?;
    let update = ManagerUpdate {
        description: req.description,
        authorizer_type: req.authorizer_type.map(authorizer_type_in),
        authorizer: authorizer_in(req.authorizer_configuration),
        role_arn: req.role_arn,
        kms_key_arn: req.kms_key_arn,
    };
    let x = cp
        .update_manager(caller, &req.payment_manager_id, update, idem.as_ref())
        .await?;
    Ok(m::UpdatePaymentManagerResponse {
        payment_manager_arn: core_control::manager_arn(caller, &x.id),
        authorizer_type: authorizer_type_out(x.authorizer_type),
        workload_identity_details: Some(workload_details(caller, &x.id)),
        last_updated_at: ts(x.updated_at),
        status: manager_status(x.status),
        payment_manager_id: x.id,
        name: x.name,
        role_arn: x.role_arn,
        kms_key_arn: x.kms_key_arn,
    })
}

async fn delete_manager(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    mut req: m::DeletePaymentManagerRequest,
) -> Res<m::DeletePaymentManagerResponse> {
    let idem = idempotency(req.client_token.take(), &req);
    let d = cp
        .delete_manager(caller, &req.payment_manager_id, idem.as_ref())
        .await?;
    Ok(m::DeletePaymentManagerResponse {
        status: m::PaymentManagerStatus::Deleting,
        payment_manager_id: Some(d.id),
    })
}

async fn list_managers(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    req: m::ListPaymentManagersRequest,
) -> Res<m::ListPaymentManagersResponse> {
    let page = cp
        .list_managers(caller, req.max_results, req.next_token.as_deref())
        .await?;
    Ok(m::ListPaymentManagersResponse {
        payment_managers: page
            .items
            .into_iter()
            .map(|x| m::PaymentManagerSummary {
                payment_manager_arn: core_control::manager_arn(caller, &x.id),
                authorizer_type: authorizer_type_out(x.authorizer_type),
                status: manager_status(x.status),
                created_at: Some(ts(x.created_at)),
                last_updated_at: ts(x.updated_at),
                payment_manager_id: x.id,
                name: x.name,
                description: x.description,
                role_arn: x.role_arn,
                kms_key_arn: x.kms_key_arn,
            })
            .collect(),
        next_token: page.next,
    })
}

// ----- connectors ---------------------------------------------------------------------------

fn connector_type_in(t: m::PaymentConnectorType) -> ConnectorType {
    match t {
        m::PaymentConnectorType::CoinbaseCdp => ConnectorType::CoinbaseCdp,
        m::PaymentConnectorType::StripePrivy => ConnectorType::StripePrivy,
        m::PaymentConnectorType::SelfCustody => ConnectorType::SelfCustody,
    }
}

fn connector_type_out(t: ConnectorType) -> m::PaymentConnectorType {
    match t {
        ConnectorType::CoinbaseCdp => m::PaymentConnectorType::CoinbaseCdp,
        ConnectorType::StripePrivy => m::PaymentConnectorType::StripePrivy,
        ConnectorType::SelfCustody => m::PaymentConnectorType::SelfCustody,
    }
}

fn provision_in(p: m::PaymentConnectorProvisionMode) -> ProvisionMode {
    match p {
        m::PaymentConnectorProvisionMode::Manual => ProvisionMode::Manual,
        m::PaymentConnectorProvisionMode::QuickCreate => ProvisionMode::QuickCreate,
    }
}

fn provision_out(p: ProvisionMode) -> m::PaymentConnectorProvisionMode {
    match p {
        ProvisionMode::Manual => m::PaymentConnectorProvisionMode::Manual,
        ProvisionMode::QuickCreate => m::PaymentConnectorProvisionMode::QuickCreate,
    }
}

fn credentials_in(list: Vec<m::CredentialsProviderConfiguration>) -> Vec<CredentialRef> {
    list.into_iter()
        .map(|c| match c {
            m::CredentialsProviderConfiguration::CoinbaseCdp(x) => CredentialRef {
                vendor: Vendor::CoinbaseCdp,
                arn: x.credential_provider_arn,
            },
            m::CredentialsProviderConfiguration::StripePrivy(x) => CredentialRef {
                vendor: Vendor::StripePrivy,
                arn: x.credential_provider_arn,
            },
        })
        .collect()
}

fn credentials_out(c: &Option<CredentialRef>) -> Vec<m::CredentialsProviderConfiguration> {
    c.iter()
        .map(|c| {
            let x = m::PaymentCredentialProviderConfiguration {
                credential_provider_arn: c.arn.clone(),
            };
            match c.vendor {
                Vendor::CoinbaseCdp => m::CredentialsProviderConfiguration::CoinbaseCdp(x),
                Vendor::StripePrivy => m::CredentialsProviderConfiguration::StripePrivy(x),
            }
        })
        .collect()
}

fn connector_status(s: ResourceStatus) -> m::PaymentConnectorStatus {
    match s {
        ResourceStatus::Creating => m::PaymentConnectorStatus::Creating,
        ResourceStatus::Updating => m::PaymentConnectorStatus::Updating,
        ResourceStatus::Deleting => m::PaymentConnectorStatus::Deleting,
        ResourceStatus::Ready => m::PaymentConnectorStatus::Ready,
    }
}

async fn create_connector(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    mut req: m::CreatePaymentConnectorRequest,
) -> Res<m::CreatePaymentConnectorResponse> {
    let idem = idempotency(req.client_token.take(), &req);
    let input = ConnectorInput {
        manager_id: req.payment_manager_id,
        name: req.name,
        description: req.description,
        connector_type: connector_type_in(req.type_),
        provision_mode: req.provision_mode.map(provision_in),
        credentials: credentials_in(req.credential_provider_configurations),
    };
    let c = cp.create_connector(caller, input, idem.as_ref()).await?;
    Ok(m::CreatePaymentConnectorResponse {
        credential_provider_configurations: credentials_out(&c.credential),
        type_: connector_type_out(c.connector_type),
        created_at: ts(c.created_at),
        status: connector_status(c.status),
        authorization_url: None,
        payment_connector_id: c.id,
        payment_manager_id: c.manager_id,
        name: c.name,
    })
}

fn connector_view(c: Connector) -> m::GetPaymentConnectorResponse {
    m::GetPaymentConnectorResponse {
        credential_provider_configurations: credentials_out(&c.credential),
        type_: connector_type_out(c.connector_type),
        provision_mode: c.provision_mode.map(provision_out),
        created_at: ts(c.created_at),
        last_updated_at: ts(c.updated_at),
        status: connector_status(c.status),
        authorization_url: None,
        credentials_updated_at: c.credentials_updated_at.map(ts),
        payment_connector_id: c.id,
        name: c.name,
        description: c.description,
    }
}

async fn get_connector(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    req: m::GetPaymentConnectorRequest,
) -> Res<m::GetPaymentConnectorResponse> {
    Ok(connector_view(
        cp.get_connector(caller, &req.payment_manager_id, &req.payment_connector_id)
            .await?,
    ))
}

async fn update_connector(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    mut req: m::UpdatePaymentConnectorRequest,
) -> Res<m::UpdatePaymentConnectorResponse> {
    let idem = idempotency(req.client_token.take(), &req);
    let update = ConnectorUpdate {
        description: req.description,
        connector_type: req.type_.map(connector_type_in),
        credentials: req.credential_provider_configurations.map(credentials_in),
    };
    let c = cp
        .update_connector(
            caller,
            &req.payment_manager_id,
            &req.payment_connector_id,
            update,
            idem.as_ref(),
        )
        .await?;
    Ok(m::UpdatePaymentConnectorResponse {
        credential_provider_configurations: credentials_out(&c.credential),
        type_: connector_type_out(c.connector_type),
        last_updated_at: ts(c.updated_at),
        status: connector_status(c.status),
        authorization_url: None,
        payment_connector_id: c.id,
        payment_manager_id: c.manager_id,
        name: c.name,
    })
}

async fn delete_connector(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    mut req: m::DeletePaymentConnectorRequest,
) -> Res<m::DeletePaymentConnectorResponse> {
    let idem = idempotency(req.client_token.take(), &req);
    let d = cp
        .delete_connector(
            caller,
            &req.payment_manager_id,
            &req.payment_connector_id,
            idem.as_ref(),
        )
        .await?;
    Ok(m::DeletePaymentConnectorResponse {
        status: m::PaymentConnectorStatus::Deleting,
        payment_connector_id: Some(d.id),
    })
}

async fn list_connectors(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    req: m::ListPaymentConnectorsRequest,
) -> Res<m::ListPaymentConnectorsResponse> {
    let page = cp
        .list_connectors(
            caller,
            &req.payment_manager_id,
            req.max_results,
            req.next_token.as_deref(),
        )
        .await?;
    Ok(m::ListPaymentConnectorsResponse {
        payment_connectors: page
            .items
            .into_iter()
            .map(|c| m::PaymentConnectorSummary {
                type_: connector_type_out(c.connector_type),
                provision_mode: c.provision_mode.map(provision_out),
                status: connector_status(c.status),
                last_updated_at: ts(c.updated_at),
                payment_connector_id: c.id,
                name: c.name,
            })
            .collect(),
        next_token: page.next,
    })
}

async fn rotate_connector(
    cp: &core_control::ControlPlane,
    caller: &Caller,
    mut req: m::RotatePaymentConnectorCredentialsRequest,
) -> Res<m::RotatePaymentConnectorCredentialsResponse> {
    let idem = idempotency(req.client_token.take(), &req);
    let c = cp
        .rotate_connector_credentials(
            caller,
            &req.payment_manager_id,
            &req.payment_connector_id,
            idem.as_ref(),
        )
        .await?;
    Ok(m::RotatePaymentConnectorCredentialsResponse {
        last_updated_at: ts(c.updated_at),
        status: connector_status(c.status),
        payment_connector_id: c.id,
        payment_manager_id: c.manager_id,
    })
}
