//! Output encoding: status codes, timestamp formats, unions; Debug redaction.

use purser_model::{Service, Timestamp, control, data, encode_output};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// 2025-11-23T16:24:33.123Z
const MILLIS: i64 = 1_763_915_073_123;

fn ts(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis).unwrap()
}

fn encode<T: Serialize>(service: Service, op: &str, out: &T) -> (u16, Value) {
    let (status, body) = encode_output(service.operation(op).unwrap(), out);
    (status, serde_json::from_slice(&body).unwrap())
}

fn provider_response() -> control::GetPaymentCredentialProviderResponse {
    control::GetPaymentCredentialProviderResponse {
        name: "my-provider".into(),
        credential_provider_arn: "arn:aws:acps:us-east-1:123456789012:token-vault/default/paymentcredentialprovider/my-provider".into(),
        credential_provider_vendor: control::PaymentCredentialProviderVendorType::CoinbaseCdp,
        provider_configuration_output: control::PaymentProviderConfigurationOutput::CoinbaseCdpConfiguration(
            control::CoinbaseCdpConfigurationOutput {
                api_key_id: "key-1".into(),
                api_key_secret_arn: control::Secret { secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:a".into() },
                api_key_secret_json_key: None,
                api_key_secret_source: Some(control::SecretSourceType::Managed),
                wallet_secret_arn: control::Secret { secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:b".into() },
                wallet_secret_json_key: None,
                wallet_secret_source: None,
            },
        ),
        created_time: ts(MILLIS),
        last_updated_time: ts(1_763_915_073_000),
        tags: None,
    }
}

#[test]
fn epoch_seconds_members() {
    let (status, body) = encode(
        Service::Control,
        "GetPaymentCredentialProvider",
        &provider_response(),
    );
    assert_eq!(status, 200);
    assert_eq!(body["createdTime"], json!(1763915073.123));
    assert_eq!(
        serde_json::to_string(&body["createdTime"]).unwrap(),
        "1763915073.123"
    );
    assert_eq!(
        serde_json::to_string(&body["lastUpdatedTime"]).unwrap(),
        "1763915073"
    );
    assert!(body.get("tags").is_none(), "None members are omitted");
    assert_eq!(
        body["providerConfigurationOutput"],
        json!({"coinbaseCdpConfiguration": {
            "apiKeyId": "key-1",
            "apiKeySecretArn": {"secretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:a"},
            "apiKeySecretSource": "MANAGED",
            "walletSecretArn": {"secretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:b"}
        }})
    );
    // And back.
    let back: control::GetPaymentCredentialProviderResponse = serde_json::from_value(body).unwrap();
    assert_eq!(back, provider_response());
}

#[test]
fn iso8601_members() {
    let out = control::GetPaymentManagerResponse {
        payment_manager_arn:
            "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/m-abcdefghij".into(),
        payment_manager_id: "m-abcdefghij".into(),
        name: "M".into(),
        description: None,
        authorizer_type: control::PaymentsAuthorizerType::CustomJwt,
        authorizer_configuration: Some(control::AuthorizerConfiguration::CustomJwtAuthorizer(
            control::CustomJWTAuthorizerConfiguration {
                discovery_url: "https://example.com/.well-known/openid-configuration".into(),
                allowed_audience: None,
                allowed_clients: Some(vec!["c".into()]),
                allowed_scopes: None,
                advertised_scope_mapping: None,
                custom_claims: None,
                private_endpoint: None,
                private_endpoint_overrides: None,
                certificate_configurations: None,
                allowed_workload_configuration: None,
            },
        )),
        role_arn: "arn:aws:iam::123456789012:role/R".into(),
        workload_identity_details: None,
        created_at: ts(MILLIS),
        last_updated_at: ts(1_763_915_073_000),
        status: control::PaymentManagerStatus::Ready,
        tags: None,
        kms_key_arn: None,
    };
    let (status, body) = encode(Service::Control, "GetPaymentManager", &out);
    assert_eq!(status, 200);
    assert_eq!(body["createdAt"], "2025-11-23T16:24:33.123Z");
    assert_eq!(body["lastUpdatedAt"], "2025-11-23T16:24:33.000Z");
    assert_eq!(body["status"], "READY");
    assert_eq!(body["authorizerType"], "CUSTOM_JWT");
    assert_eq!(
        body["authorizerConfiguration"],
        json!({"customJWTAuthorizer": {
            "discoveryUrl": "https://example.com/.well-known/openid-configuration",
            "allowedClients": ["c"]
        }})
    );
    let back: control::GetPaymentManagerResponse = serde_json::from_value(body).unwrap();
    assert_eq!(back, out);
}

#[test]
fn optional_timestamps_and_status_codes() {
    let summary = data::AvailableLimits {
        available_spend_amount: None,
        updated_at: Some(ts(MILLIS)),
    };
    assert_eq!(
        serde_json::to_value(&summary).unwrap(),
        json!({"updatedAt": "2025-11-23T16:24:33.123Z"})
    );
    assert_eq!(
        serde_json::to_value(data::AvailableLimits::default()).unwrap(),
        json!({})
    );
    let back: data::AvailableLimits = serde_json::from_value(json!({"updatedAt": null})).unwrap();
    assert_eq!(back.updated_at, None);

    // 204: no body.
    let (status, body) = encode_output(
        Service::Control
            .operation("DeletePaymentCredentialProvider")
            .unwrap(),
        &control::DeletePaymentCredentialProviderResponse {},
    );
    assert_eq!((status, body.len()), (204, 0));
    // 202 and 201 come from the model.
    let (status, _) = encode_output(
        Service::Control.operation("DeletePaymentManager").unwrap(),
        &control::DeletePaymentManagerResponse {
            status: control::PaymentManagerStatus::Deleting,
            payment_manager_id: None,
        },
    );
    assert_eq!(status, 202);
    assert_eq!(
        Service::Data
            .operation("CreatePaymentSession")
            .unwrap()
            .success_code,
        201
    );
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct EpochOpt {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "purser_model::timestamp::epoch_seconds::option"
    )]
    t: Option<Timestamp>,
}

#[test]
fn timestamp_wire_forms() {
    let v = serde_json::to_value(EpochOpt {
        t: Some(ts(-1_500)),
    })
    .unwrap();
    assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"t":-1.5}"#);
    assert_eq!(
        serde_json::from_value::<EpochOpt>(v).unwrap().t,
        Some(ts(-1_500))
    );
    assert_eq!(
        serde_json::to_value(EpochOpt { t: None }).unwrap(),
        json!({})
    );
    // Either wire form is accepted on input.
    for input in [
        json!(1763915073.123),
        json!("2025-11-23T16:24:33.123Z"),
        json!("2025-11-23T17:24:33.123+01:00"),
    ] {
        let parsed: EpochOpt = serde_json::from_value(json!({"t": input})).unwrap();
        assert_eq!(parsed.t, Some(ts(MILLIS)), "{input}");
    }
    let whole: EpochOpt = serde_json::from_value(json!({"t": 1763915073})).unwrap();
    assert_eq!(whole.t.unwrap().unix_millis(), 1_763_915_073_000);
    assert!(serde_json::from_value::<EpochOpt>(json!({"t": "yesterday"})).is_err());
    assert_eq!(ts(MILLIS).to_string(), "2025-11-23T16:24:33.123Z");
    let now = Timestamp::now();
    assert_eq!(now.0.nanosecond() % 1_000_000, 0);
    assert_eq!(Timestamp::parse_iso8601(&now.to_iso8601()), Some(now));
}

#[test]
fn debug_redacts_sensitive_fields() {
    let input = control::CoinbaseCdpConfigurationInput {
        api_key_id: "visible-key-id".into(),
        api_key_secret: Some("super-secret-api-key".into()),
        api_key_secret_source: None,
        api_key_secret_config: None,
        wallet_secret: Some("super-secret-wallet".into()),
        wallet_secret_source: None,
        wallet_secret_config: None,
    };
    let debug = format!("{input:?}");
    assert!(debug.contains("visible-key-id"), "{debug}");
    assert!(!debug.contains("super-secret"), "{debug}");
    assert!(
        debug.contains("api_key_secret: *** Sensitive Data Redacted ***"),
        "{debug}"
    );
    // Also when nested in non-sensitive containers.
    let req = control::CreatePaymentCredentialProviderRequest {
        name: "p".into(),
        credential_provider_vendor: control::PaymentCredentialProviderVendorType::CoinbaseCdp,
        provider_configuration_input:
            control::PaymentProviderConfigurationInput::CoinbaseCdpConfiguration(input),
        tags: None,
    };
    let debug = format!("{req:#?}");
    assert!(!debug.contains("super-secret"), "{debug}");

    // Sensitive structures and unions redact everything.
    let account = data::LinkedAccount::Email(data::LinkedAccountEmail {
        email_address: "alice@example.com".into(),
    });
    assert_eq!(format!("{account:?}"), "*** Sensitive Data Redacted ***");
    let email = data::LinkedAccountEmail {
        email_address: "alice@example.com".into(),
    };
    assert!(!format!("{email:?}").contains("alice"));
    let oauth = data::LinkedAccountOAuth2::Google(data::OAuth2Authentication {
        sub: "sub-123".into(),
        email_address: Some("bob@example.com".into()),
        name: None,
        username: None,
    });
    let debug = format!("{oauth:?}");
    assert!(
        !debug.contains("bob") && !debug.contains("sub-123"),
        "{debug}"
    );
    assert!(debug.starts_with("Google("), "{debug}");
    let token = data::CoinbaseCdpTokenResponseOutput {
        bearer_token: "jwt.bearer".into(),
        wallet_auth_token: None,
    };
    assert!(!format!("{token:?}").contains("jwt.bearer"));
}
