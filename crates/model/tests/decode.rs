//! Binding and validating operation inputs.

use purser_model::{
    AwsError, OperationDef, Service, control, data, decode_input, decode_input_value,
    find_operation,
};
use serde_json::{Value, json};

const MANAGER_ID: &str = "mymanager-abcdefghij";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/PurserRole";
const CLIENT_TOKEN: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
const PROVIDER_ARN: &str =
    "arn:aws:acps:us-east-1:123456789012:token-vault/default/paymentcredentialprovider/my-provider";
const DATA_MANAGER_ARN: &str =
    "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/mymanager-abcdefghij";

fn op(service: Service, name: &str) -> &'static OperationDef {
    service.operation(name).unwrap()
}

fn no_headers(_: &str) -> Vec<String> {
    Vec::new()
}

/// Decodes a body-only request of `name` into a JSON value.
fn decode_body(service: Service, name: &str, body: Value) -> Result<Value, AwsError> {
    decode_input_value(
        op(service, name),
        &[],
        None,
        &no_headers,
        body.to_string().as_bytes(),
    )
}

fn err(service: Service, name: &str, body: Value) -> AwsError {
    decode_body(service, name, body).expect_err("expected a validation error")
}

fn fields(e: &AwsError) -> Vec<(&str, &str)> {
    e.field_list
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect()
}

fn manager_body() -> Value {
    json!({"name": "MyManager", "authorizerType": "AWS_IAM", "roleArn": ROLE_ARN})
}

fn connector_body() -> Value {
    json!({
        "name": "MyConnector",
        "type": "CoinbaseCDP",
        "credentialProviderConfigurations": [{"coinbaseCDP": {"credentialProviderArn": PROVIDER_ARN}}]
    })
}

fn decode_connector(body: Value) -> Result<control::CreatePaymentConnectorRequest, AwsError> {
    decode_input(
        op(Service::Control, "CreatePaymentConnector"),
        &[("paymentManagerId", MANAGER_ID.to_owned())],
        None,
        &no_headers,
        body.to_string().as_bytes(),
    )
}

#[test]
fn create_payment_manager_happy_path() {
    let (op, uri) = find_operation("POST", "/payments/managers").unwrap();
    let body = json!({
        "name": "MyManager",
        "description": "Test manager",
        "authorizerType": "CUSTOM_JWT",
        "authorizerConfiguration": {"customJWTAuthorizer": {
            "discoveryUrl": "https://example.com/.well-known/openid-configuration",
            "allowedClients": ["client-1"]
        }},
        "roleArn": ROLE_ARN,
        "clientToken": CLIENT_TOKEN,
        "tags": {"env": "test"},
        "someFutureMember": {"ignored": true}
    });
    let req: control::CreatePaymentManagerRequest =
        decode_input(op, &uri, None, &no_headers, body.to_string().as_bytes()).unwrap();
    assert_eq!(req.name, "MyManager");
    assert_eq!(req.description.as_deref(), Some("Test manager"));
    assert_eq!(
        req.authorizer_type,
        control::PaymentsAuthorizerType::CustomJwt
    );
    assert_eq!(req.role_arn, ROLE_ARN);
    assert_eq!(req.client_token.as_deref(), Some(CLIENT_TOKEN));
    assert_eq!(req.tags.unwrap()["env"], "test");
    assert_eq!(req.kms_key_arn, None);
    let Some(control::AuthorizerConfiguration::CustomJwtAuthorizer(jwt)) =
        req.authorizer_configuration
    else {
        panic!("expected a JWT authorizer");
    };
    assert_eq!(
        jwt.discovery_url,
        "https://example.com/.well-known/openid-configuration"
    );
    assert_eq!(jwt.allowed_clients, Some(vec!["client-1".to_owned()]));
    assert_eq!(op.idempotency_token, Some("clientToken"));
}

#[test]
fn empty_body_is_an_empty_object() {
    let (op, uri) = find_operation("POST", "/payments/managers-list").unwrap();
    let req: control::ListPaymentManagersRequest =
        decode_input(op, &uri, None, &no_headers, b"").unwrap();
    assert_eq!(req, control::ListPaymentManagersRequest::default());
    let req: control::ListPaymentManagersRequest =
        decode_input(op, &uri, None, &no_headers, b" \n").unwrap();
    assert_eq!(req.max_results, None);
}

#[test]
fn list_payment_connectors_with_query() {
    let path = format!("/payments/managers/{MANAGER_ID}/connectors-list");
    let (op, uri) = find_operation("POST", &path).unwrap();
    let req: control::ListPaymentConnectorsRequest = decode_input(
        op,
        &uri,
        Some("maxResults=10&nextToken=abc%2Bdef%3D&unknown=1"),
        &no_headers,
        br#"{"maxResults": 99, "nextToken": "from-body"}"#,
    )
    .unwrap();
    assert_eq!(req.payment_manager_id, MANAGER_ID);
    assert_eq!(req.max_results, Some(10));
    assert_eq!(req.next_token.as_deref(), Some("abc+def="));

    // Body copies of query members are ignored even without a query.
    let req: control::ListPaymentConnectorsRequest = decode_input(
        op,
        &uri,
        None,
        &no_headers,
        br#"{"maxResults": 99, "nextToken": "x"}"#,
    )
    .unwrap();
    assert_eq!((req.max_results, req.next_token), (None, None));

    let e = decode_input_value(op, &uri, Some("maxResults=abc"), &no_headers, b"").unwrap_err();
    assert_eq!(
        e.message,
        "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must be of type integer"
    );
    assert_eq!(
        fields(&e),
        [("maxResults", "Member must be of type integer")]
    );

    let e = decode_input_value(op, &uri, Some("maxResults=0"), &no_headers, b"").unwrap_err();
    assert_eq!(
        fields(&e),
        [("maxResults", "Member must be greater than or equal to 1")]
    );
    let e = decode_input_value(op, &uri, Some("maxResults=101"), &no_headers, b"").unwrap_err();
    assert_eq!(
        fields(&e),
        [("maxResults", "Member must be less than or equal to 100")]
    );
    // `+` is a space in form-urlencoded queries, which `\S*` rejects.
    let e = decode_input_value(op, &uri, Some("nextToken=a+b"), &no_headers, b"").unwrap_err();
    assert_eq!(
        fields(&e),
        [(
            "nextToken",
            r"Member must satisfy regular expression pattern: \S*"
        )]
    );
}

#[test]
fn uri_members_are_validated() {
    let (op, uri) = find_operation("GET", "/payments/managers/BAD").unwrap();
    let e = decode_input_value(op, &uri, None, &no_headers, b"").unwrap_err();
    assert_eq!(
        fields(&e),
        [
            (
                "paymentManagerId",
                "Member must have length greater than or equal to 12"
            ),
            (
                "paymentManagerId",
                "Member must satisfy regular expression pattern: ([0-9a-z][-]?){1,100}-[0-9a-z]{10}"
            )
        ]
    );
    let (op, uri) = find_operation("GET", &format!("/payments/managers/{MANAGER_ID}")).unwrap();
    let req: control::GetPaymentManagerRequest =
        decode_input(op, &uri, None, &no_headers, b"").unwrap();
    assert_eq!(req.payment_manager_id, MANAGER_ID);
    // A body key naming the URI member does not override the URI.
    let req: control::GetPaymentManagerRequest = decode_input(
        op,
        &uri,
        None,
        &no_headers,
        br#"{"paymentManagerId": "other-0123456789"}"#,
    )
    .unwrap();
    assert_eq!(req.payment_manager_id, MANAGER_ID);
}

#[test]
fn data_plane_header_member() {
    let (op, uri) = find_operation("POST", "/payments/createPaymentSession").unwrap();
    let header = |name: &str| match name {
        "X-Amzn-Bedrock-AgentCore-Payments-User-Id" => vec!["user-42".to_owned()],
        "X-Amzn-Bedrock-AgentCore-Payments-Agent-Name" => vec!["shopper".to_owned()],
        _ => vec![],
    };
    let body = json!({
        "paymentManagerArn": DATA_MANAGER_ARN,
        "expiryTimeInMinutes": 60,
        "limits": {"maxSpendAmount": {"value": "10.00", "currency": "USD"}},
        "userId": "spoofed-in-body"
    });
    let req: data::CreatePaymentSessionRequest =
        decode_input(op, &uri, None, &header, body.to_string().as_bytes()).unwrap();
    assert_eq!(req.user_id.as_deref(), Some("user-42"));
    assert_eq!(req.agent_name.as_deref(), Some("shopper"));
    assert_eq!(req.expiry_time_in_minutes, 60);
    assert_eq!(
        req.limits.unwrap().max_spend_amount.currency,
        data::Currency::Usd
    );

    // Without the header, the body key named like the header member is ignored.
    let req: data::CreatePaymentSessionRequest =
        decode_input(op, &uri, None, &no_headers, body.to_string().as_bytes()).unwrap();
    assert_eq!(req.user_id, None);

    // Header values are validated like body values.
    let long = |name: &str| {
        (name == "X-Amzn-Bedrock-AgentCore-Payments-User-Id")
            .then(|| "u".repeat(121))
            .into_iter()
            .collect()
    };
    let e = decode_input_value(op, &uri, None, &long, body.to_string().as_bytes()).unwrap_err();
    assert_eq!(
        fields(&e),
        [(
            "userId",
            "Member must have length less than or equal to 120"
        )]
    );

    // A modelled header sent twice is refused, naming the member and the header, even
    // when both values agree; the first value is not silently taken.
    for (name, member) in [
        ("X-Amzn-Bedrock-AgentCore-Payments-User-Id", "userId"),
        ("X-Amzn-Bedrock-AgentCore-Payments-Agent-Name", "agentName"),
    ] {
        for second in ["mallory", "user-42"] {
            let twice = |n: &str| {
                if n == name {
                    vec!["user-42".to_owned(), second.to_owned()]
                } else {
                    header(n)
                }
            };
            let e = decode_input_value(op, &uri, None, &twice, body.to_string().as_bytes())
                .unwrap_err();
            assert_eq!(e.code, "ValidationException");
            assert_eq!(
                fields(&e),
                [(
                    member,
                    &*format!("Member must be sent once; header {name} appears 2 times")
                )]
            );
            assert!(
                e.message.contains(&format!("Value at '{member}'")),
                "{}",
                e.message
            );
        }
    }
}

#[test]
fn each_violation_kind_has_the_aws_message() {
    let svc = Service::Control;
    // pattern
    let e = err(
        svc,
        "CreatePaymentManager",
        json!({"name": "1bad", "authorizerType": "AWS_IAM", "roleArn": ROLE_ARN}),
    );
    assert_eq!(e.code, "ValidationException");
    assert_eq!(e.status, 400);
    assert_eq!(e.reason.as_deref(), Some("FieldValidationFailed"));
    assert_eq!(
        e.message,
        "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][a-zA-Z0-9]{0,47}"
    );
    assert_eq!(
        fields(&e),
        [(
            "name",
            "Member must satisfy regular expression pattern: [a-zA-Z][a-zA-Z0-9]{0,47}"
        )]
    );

    // required (missing and null)
    let e = err(
        svc,
        "CreatePaymentManager",
        json!({"name": "Ok", "authorizerType": "AWS_IAM"}),
    );
    assert_eq!(
        e.message,
        "1 validation error detected: Value at 'roleArn' failed to satisfy constraint: Member must not be null"
    );
    let e = err(
        svc,
        "CreatePaymentManager",
        json!({"name": "Ok", "authorizerType": "AWS_IAM", "roleArn": null}),
    );
    assert_eq!(fields(&e), [("roleArn", "Member must not be null")]);

    // length max (in characters, not bytes)
    let mut body = manager_body();
    body["description"] = json!("é".repeat(4096));
    assert!(decode_body(svc, "CreatePaymentManager", body.clone()).is_ok());
    body["description"] = json!("é".repeat(4097));
    let e = decode_body(svc, "CreatePaymentManager", body).unwrap_err();
    assert_eq!(
        fields(&e),
        [(
            "description",
            "Member must have length less than or equal to 4096"
        )]
    );

    // length min
    let mut body = manager_body();
    body["clientToken"] = json!("short");
    let e = decode_body(svc, "CreatePaymentManager", body).unwrap_err();
    assert_eq!(
        fields(&e),
        [(
            "clientToken",
            "Member must have length greater than or equal to 33"
        )]
    );

    // enum: the value is echoed
    let e = err(
        svc,
        "CreatePaymentManager",
        json!({"name": "Ok", "authorizerType": "FOO", "roleArn": ROLE_ARN}),
    );
    assert_eq!(
        e.message,
        "1 validation error detected: Value 'FOO' at 'authorizerType' failed to satisfy constraint: Member must satisfy enum value set: [CUSTOM_JWT, AWS_IAM]"
    );
    assert_eq!(
        fields(&e),
        [(
            "authorizerType",
            "Member must satisfy enum value set: [CUSTOM_JWT, AWS_IAM]"
        )]
    );

    // integer range
    let body = json!({"paymentManagerArn": DATA_MANAGER_ARN, "expiryTimeInMinutes": 10});
    let e = err(Service::Data, "CreatePaymentSession", body);
    assert_eq!(
        e.message,
        "1 validation error detected: Value at 'expiryTimeInMinutes' failed to satisfy constraint: Member must be greater than or equal to 15"
    );
    let body = json!({"paymentManagerArn": DATA_MANAGER_ARN, "expiryTimeInMinutes": 481});
    let e = err(Service::Data, "CreatePaymentSession", body);
    assert_eq!(
        fields(&e),
        [(
            "expiryTimeInMinutes",
            "Member must be less than or equal to 480"
        )]
    );

    // list length
    let mut body = connector_body();
    let item = body["credentialProviderConfigurations"][0].clone();
    body["credentialProviderConfigurations"] = json!([item.clone(), item]);
    let e = decode_connector(body).unwrap_err();
    assert_eq!(
        fields(&e),
        [(
            "credentialProviderConfigurations",
            "Member must have length less than or equal to 1"
        )]
    );
}

#[test]
fn nested_field_paths() {
    let mut body = manager_body();
    body["authorizerType"] = json!("CUSTOM_JWT");
    body["authorizerConfiguration"] = json!({"customJWTAuthorizer": {
        "discoveryUrl": "not a url",
        "customClaims": [{
            "inboundTokenClaimName": "ok",
            "inboundTokenClaimValueType": "STRING",
            "authorizingClaimMatchValue": {"claimMatchValue": {"matchValueStringList": []}, "claimMatchOperator": "EQUALS"}
        }]
    }});
    let e = decode_body(Service::Control, "CreatePaymentManager", body).unwrap_err();
    assert_eq!(
        fields(&e),
        [
            (
                "authorizerConfiguration.customJWTAuthorizer.discoveryUrl",
                r"Member must satisfy regular expression pattern: [^\s?#]+/\.well-known/(openid-configuration|oauth-authorization-server)(/[^\s?#]+)?"
            ),
            (
                "authorizerConfiguration.customJWTAuthorizer.customClaims[0].authorizingClaimMatchValue.claimMatchValue.matchValueStringList",
                "Member must have length greater than or equal to 1"
            ),
        ]
    );

    let mut body = connector_body();
    body["credentialProviderConfigurations"][0]["coinbaseCDP"]["credentialProviderArn"] =
        json!("arn:bad");
    let e = decode_connector(body).unwrap_err();
    assert_eq!(e.field_list.len(), 2);
    assert_eq!(
        e.field_list[0].0,
        "credentialProviderConfigurations[0].coinbaseCDP.credentialProviderArn"
    );
    assert_eq!(
        e.field_list[0].1,
        "Member must have length greater than or equal to 69"
    );
    assert!(
        e.field_list[1]
            .1
            .starts_with("Member must satisfy regular expression pattern: arn:")
    );
    assert!(e.message.starts_with(
        "2 validation errors detected: Value at 'credentialProviderConfigurations[0].coinbaseCDP.credentialProviderArn' failed to satisfy constraint: Member must have length greater than or equal to 69; Value at 'credentialProviderConfigurations[0].coinbaseCDP.credentialProviderArn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:"
    ));

    // map values are addressed by key, key violations by the map
    let mut body = manager_body();
    body["tags"] = json!({"env": "bad\u{1}value", "k".repeat(129): "v"});
    let e = decode_body(Service::Control, "CreatePaymentManager", body).unwrap_err();
    assert_eq!(
        fields(&e),
        [
            (
                "tags.env",
                r"Member must satisfy regular expression pattern: [a-zA-Z0-9\s._:/=+@-]*"
            ),
            ("tags", "Member must have length less than or equal to 128"),
        ]
    );
    let mut body = manager_body();
    body["tags"] = Value::Object((0..51).map(|i| (format!("k{i}"), json!("v"))).collect());
    let e = decode_body(Service::Control, "CreatePaymentManager", body).unwrap_err();
    assert_eq!(
        fields(&e),
        [("tags", "Member must have length less than or equal to 50")]
    );
}

#[test]
fn several_violations_are_collected_in_member_order() {
    let e = err(
        Service::Control,
        "CreatePaymentManager",
        json!({"name": "", "authorizerType": "nope", "description": 7}),
    );
    assert_eq!(
        fields(&e),
        [
            ("name", "Member must have length greater than or equal to 1"),
            (
                "name",
                "Member must satisfy regular expression pattern: [a-zA-Z][a-zA-Z0-9]{0,47}"
            ),
            ("description", "Member must be of type string"),
            (
                "authorizerType",
                "Member must satisfy enum value set: [CUSTOM_JWT, AWS_IAM]"
            ),
            ("roleArn", "Member must not be null"),
        ]
    );
    assert!(
        e.message
            .starts_with("5 validation errors detected: Value at 'name' failed")
    );
    assert_eq!(e.message.matches("; ").count(), 4);
    assert!(e.message.contains("; Value 'nope' at 'authorizerType' failed to satisfy constraint: Member must satisfy enum value set: [CUSTOM_JWT, AWS_IAM]; "));
}

#[test]
fn unions_need_exactly_one_member() {
    let mut body = manager_body();
    body["authorizerConfiguration"] = json!({});
    let e = decode_body(Service::Control, "CreatePaymentManager", body).unwrap_err();
    assert_eq!(
        e.message,
        "1 validation error detected: Value at 'authorizerConfiguration' failed to satisfy constraint: Union must have exactly one member set"
    );
    // null members and unknown members do not count
    let mut body = manager_body();
    body["authorizerConfiguration"] = json!({"customJWTAuthorizer": null, "other": {}});
    let e = decode_body(Service::Control, "CreatePaymentManager", body).unwrap_err();
    assert_eq!(
        fields(&e),
        [(
            "authorizerConfiguration",
            "Union must have exactly one member set"
        )]
    );

    let mut body = connector_body();
    body["credentialProviderConfigurations"] = json!([{
        "coinbaseCDP": {"credentialProviderArn": PROVIDER_ARN},
        "stripePrivy": {"credentialProviderArn": PROVIDER_ARN}
    }]);
    let e = decode_connector(body).unwrap_err();
    assert_eq!(
        fields(&e),
        [(
            "credentialProviderConfigurations[0]",
            "Union must have exactly one member set"
        )]
    );

    // one member plus an unknown one is fine and deserialises
    let mut body = connector_body();
    body["credentialProviderConfigurations"][0]["future"] = json!({"x": 1});
    let req = decode_connector(body).unwrap();
    assert_eq!(
        req.credential_provider_configurations,
        vec![control::CredentialsProviderConfiguration::CoinbaseCdp(
            control::PaymentCredentialProviderConfiguration {
                credential_provider_arn: PROVIDER_ARN.to_owned()
            }
        )]
    );
}

#[test]
fn wrong_json_types() {
    let e = err(
        Service::Control,
        "CreatePaymentManager",
        json!({"name": 5, "authorizerType": ["AWS_IAM"], "roleArn": ROLE_ARN, "tags": [], "authorizerConfiguration": "x"}),
    );
    assert_eq!(
        fields(&e),
        [
            ("name", "Member must be of type string"),
            ("authorizerType", "Member must be of type string"),
            (
                "authorizerConfiguration",
                "Member must be of type structure"
            ),
            ("tags", "Member must be of type map"),
        ]
    );
    let mut body = connector_body();
    body["credentialProviderConfigurations"] = json!({});
    assert_eq!(
        fields(&decode_connector(body).unwrap_err()),
        [(
            "credentialProviderConfigurations",
            "Member must be of type list"
        )]
    );
    let mut body = connector_body();
    body["credentialProviderConfigurations"] = json!([null]);
    assert_eq!(
        fields(&decode_connector(body).unwrap_err()),
        [(
            "credentialProviderConfigurations[0]",
            "Member must not be null"
        )]
    );
    for bad in [json!("60"), json!(60.5), json!(true), json!(1e12)] {
        let body = json!({"paymentManagerArn": DATA_MANAGER_ARN, "expiryTimeInMinutes": bad});
        assert_eq!(
            fields(&err(Service::Data, "CreatePaymentSession", body)),
            [("expiryTimeInMinutes", "Member must be of type integer")],
            "{bad}"
        );
    }
    let body = json!({
        "workloadIdentityToken": "t",
        "resourceCredentialProviderName": "p",
        "paymentTokenRequest": {"coinbaseCdpTokenRequest": {"requestMethod": "GET", "requestPath": "/v1", "includeWalletAuthToken": "yes"}}
    });
    assert_eq!(
        fields(&err(Service::Data, "GetResourcePaymentToken", body)),
        [(
            "paymentTokenRequest.coinbaseCdpTokenRequest.includeWalletAuthToken",
            "Member must be of type boolean"
        )]
    );
}

#[test]
fn documents_accept_any_json() {
    let body = json!({
        "paymentManagerArn": DATA_MANAGER_ARN,
        "paymentSessionId": "payment-session-abcdefghij12345",
        "paymentInstrumentId": "payment-instrument-abcdefghij12345",
        "paymentType": "CRYPTO_X402",
        "paymentInput": {"cryptoX402": {"version": "1", "payload": {"anything": [1, "two", null, {"x": true}]}}}
    });
    let (op, uri) = find_operation("POST", "/payments/processPayment").unwrap();
    let req: data::ProcessPaymentRequest =
        decode_input(op, &uri, None, &no_headers, body.to_string().as_bytes()).unwrap();
    let data::PaymentInput::CryptoX402(input) = req.payment_input else {
        panic!("x402 expected")
    };
    assert_eq!(
        input.payload,
        json!({"anything": [1, "two", null, {"x": true}]})
    );
    // The document is sensitive: Debug does not print it.
    let debug = format!("{input:?}");
    assert!(!debug.contains("anything"), "{debug}");
}

#[test]
fn malformed_json_cannot_be_parsed() {
    let op = op(Service::Control, "CreatePaymentManager");
    for body in [&b"{\"name\": "[..], b"not json", b"{\"a\":1}}"] {
        let e = decode_input_value(op, &[], None, &no_headers, body).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert_eq!(e.reason.as_deref(), Some("CannotParse"));
        assert!(
            e.message
                .starts_with("Could not parse request body into json: "),
            "{}",
            e.message
        );
        assert!(e.field_list.is_empty());
    }
    for body in [&b"[1, 2]"[..], b"\"str\"", b"null", b"42"] {
        let e = decode_input_value(op, &[], None, &no_headers, body).unwrap_err();
        assert_eq!(e.reason.as_deref(), Some("CannotParse"));
        assert_eq!(
            e.message,
            "Could not parse request body into json: expected a JSON object"
        );
    }
    let body: Value = serde_json::from_slice(
        &decode_input_value(op, &[], None, &no_headers, b"[")
            .unwrap_err()
            .body(),
    )
    .unwrap();
    assert_eq!(body["__type"], "ValidationException");
    assert_eq!(body["reason"], "CannotParse");
}

#[test]
fn deserialising_into_the_wrong_type_is_cannot_parse() {
    let e = decode_input::<control::GetPaymentManagerRequest>(
        op(Service::Control, "CreatePaymentManager"),
        &[],
        None,
        &no_headers,
        manager_body().to_string().as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.reason.as_deref(), Some("CannotParse"));
    assert!(!e.message.contains("MyManager"));
}

#[test]
fn sensitive_values_never_appear_in_errors() {
    const SECRET: &str = "TOPSECRET!#value";
    let body = json!({
        "name": "my-provider",
        "credentialProviderVendor": "CoinbaseCDP",
        "providerConfigurationInput": {"coinbaseCdpConfiguration": {
            "apiKeyId": "key-1",
            "apiKeySecret": SECRET,
            "walletSecret": "w".repeat(2049)
        }}
    });
    let e = err(Service::Control, "CreatePaymentCredentialProvider", body);
    assert_eq!(
        fields(&e),
        [
            (
                "providerConfigurationInput.coinbaseCdpConfiguration.apiKeySecret",
                r"Member must satisfy regular expression pattern: [a-zA-Z0-9+/=\-_\s]*"
            ),
            (
                "providerConfigurationInput.coinbaseCdpConfiguration.walletSecret",
                "Member must have length less than or equal to 2048"
            ),
        ]
    );
    let rendered = format!("{e:?} {e} {}", String::from_utf8(e.body()).unwrap());
    assert!(!rendered.contains("TOPSECRET"), "{rendered}");
    assert!(!rendered.contains("www"), "{rendered}");

    // Values inside a sensitive union (LinkedAccount) are not echoed either.
    let body = json!({
        "paymentManagerArn": DATA_MANAGER_ARN,
        "paymentConnectorId": "connector-1-abcdefghij",
        "paymentInstrumentType": "EMBEDDED_CRYPTO_WALLET",
        "paymentInstrumentDetails": {"embeddedCryptoWallet": {
            "network": "ETHEREUM",
            "linkedAccounts": [{"email": {"emailAddress": "alice-at-example"}}]
        }}
    });
    let e = err(Service::Data, "CreatePaymentInstrument", body);
    assert_eq!(
        e.field_list[0].0,
        "paymentInstrumentDetails.embeddedCryptoWallet.linkedAccounts[0].email.emailAddress"
    );
    assert!(!format!("{e:?}").contains("alice"));
}

#[test]
fn self_custody_connector_type_is_a_purser_extension() {
    let mut body = connector_body();
    body["type"] = json!("SelfCustody");
    let req = decode_connector(body).unwrap();
    assert_eq!(req.type_, control::PaymentConnectorType::SelfCustody);

    let mut body = connector_body();
    body["type"] = json!("Bogus");
    let e = decode_connector(body).unwrap_err();
    assert_eq!(
        e.message,
        "1 validation error detected: Value 'Bogus' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [CoinbaseCDP, StripePrivy, SelfCustody]"
    );
    // The vendor enum with the same AWS values is not extended.
    let body = json!({
        "name": "p",
        "credentialProviderVendor": "SelfCustody",
        "providerConfigurationInput": {"coinbaseCdpConfiguration": {"apiKeyId": "k"}}
    });
    assert_eq!(
        fields(&err(
            Service::Control,
            "CreatePaymentCredentialProvider",
            body
        )),
        [(
            "credentialProviderVendor",
            "Member must satisfy enum value set: [CoinbaseCDP, StripePrivy]"
        )]
    );
}

#[test]
fn long_enum_values_are_not_echoed() {
    let long = "X".repeat(300);
    let e = err(
        Service::Control,
        "CreatePaymentManager",
        json!({"name": "Ok", "authorizerType": long, "roleArn": ROLE_ARN}),
    );
    assert!(
        e.message
            .starts_with("1 validation error detected: Value at 'authorizerType'")
    );
    assert!(!e.message.contains("XXXX"));
}

#[test]
fn delete_with_query_client_token() {
    let path = format!("/payments/managers/{MANAGER_ID}/connectors/connector-1-abcdefghij");
    let (op, uri) = find_operation("DELETE", &path).unwrap();
    let req: control::DeletePaymentConnectorRequest = decode_input(
        op,
        &uri,
        Some(&format!("clientToken={CLIENT_TOKEN}")),
        &no_headers,
        b"",
    )
    .unwrap();
    assert_eq!(req.payment_connector_id, "connector-1-abcdefghij");
    assert_eq!(req.client_token.as_deref(), Some(CLIENT_TOKEN));
}
