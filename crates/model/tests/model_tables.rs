//! The generated tables agree with the model files; every model pattern compiles.

use purser_model::{AwsError, Service, ShapeKind};
use serde_json::Value;

/// The service's model: every model file of its generator target, operations and shapes
/// merged (a shape in several files is identical there; the generator checks it).
fn model(service: Service) -> Value {
    let (_, files, _) = xtask::TARGETS
        .iter()
        .find(|(module, _, _)| *module == service.name())
        .expect("a generator target per service");
    let mut merged = serde_json::json!({"operations": {}, "shapes": {}});
    for file in *files {
        let path = format!("{}/../../{file}", env!("CARGO_MANIFEST_DIR"));
        let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for key in ["operations", "shapes"] {
            let into = merged[key].as_object_mut().unwrap();
            for (name, v) in json[key].as_object().unwrap() {
                into.insert(name.clone(), v.clone());
            }
        }
    }
    merged
}

#[test]
fn every_model_pattern_compiles() {
    let mut count = 0;
    for service in Service::ALL {
        let json = model(service);
        for (name, shape) in json["shapes"].as_object().unwrap() {
            let Some(pattern) = shape.get("pattern").and_then(Value::as_str) else {
                continue;
            };
            let def = service.shape(name).expect("shape in the table");
            let ShapeKind::String {
                pattern: Some(p), ..
            } = &def.kind
            else {
                panic!("{name}: pattern missing from the table");
            };
            assert_eq!(p.source(), pattern, "{name}");
            if let Err(e) = p.try_compile() {
                panic!("{name}: pattern {pattern:?} does not compile: {e}");
            }
            // And the cached, anchored form matches in full only.
            let _ = p.is_match("");
            count += 1;
        }
    }
    assert!(count > 50, "only {count} patterns found");
}

#[test]
fn every_shape_and_operation_is_in_the_tables() {
    for service in Service::ALL {
        let json = model(service);
        let shapes = json["shapes"].as_object().unwrap();
        assert_eq!(service.shapes().len(), shapes.len());
        for (name, shape) in shapes {
            let def = service.shape(name).unwrap();
            assert_eq!(def.name, name);
            assert_eq!(
                def.sensitive,
                shape.get("sensitive") == Some(&Value::Bool(true)),
                "{name}"
            );
        }
        let ops = json["operations"].as_object().unwrap();
        assert_eq!(service.operations().len(), ops.len());
        for (name, op) in ops {
            let def = service.operation(name).unwrap();
            assert_eq!(def.service, service);
            assert_eq!(def.method, op["http"]["method"]);
            assert_eq!(def.uri, op["http"]["requestUri"]);
            assert_eq!(
                u64::from(def.success_code),
                op["http"]["responseCode"].as_u64().unwrap_or(200)
            );
            assert_eq!(def.input, op["input"]["shape"]);
            assert_eq!(def.output, op["output"]["shape"]);
            assert_eq!(service.shapes()[def.input_shape].name, def.input);
            assert_eq!(service.shapes()[def.output_shape].name, def.output);
            let errors: Vec<&str> = op["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["shape"].as_str().unwrap())
                .collect();
            assert_eq!(def.errors, errors.as_slice());
            let input = &json["shapes"][def.input]["members"];
            // (serde_json's map is sorted, so compare as sorted lists)
            let mut bound: Vec<&str> = input
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, m)| m.get("location").is_some())
                .map(|(n, _)| n.as_str())
                .collect();
            let mut in_table: Vec<&str> = def.location_members.iter().map(|l| l.member).collect();
            bound.sort_unstable();
            in_table.sort_unstable();
            assert_eq!(bound, in_table, "{name}");
        }
    }
}

#[test]
fn error_constructors_use_the_model_status_codes() {
    let constructors: Vec<AwsError> = vec![
        AwsError::validation("m"),
        AwsError::not_found("m"),
        AwsError::conflict("m"),
        AwsError::access_denied("m"),
        AwsError::internal("m"),
        AwsError::throttling("m"),
        AwsError::service_quota("m"),
        AwsError::unauthorized("m"),
        AwsError::subscription_required("m"),
        AwsError::resource_limit_exceeded("m"),
        AwsError::decryption_failure("m"),
        AwsError::encryption_failure("m"),
    ];
    let mut checked = 0;
    for service in Service::ALL {
        let json = model(service);
        for (name, shape) in json["shapes"].as_object().unwrap() {
            if shape.get("exception") != Some(&Value::Bool(true)) {
                continue;
            }
            let status = shape["error"]["httpStatusCode"].as_u64().unwrap();
            let ShapeKind::Structure { error_status, .. } = service.shape(name).unwrap().kind
            else {
                panic!("{name} is not a structure");
            };
            assert_eq!(error_status.map(u64::from), Some(status), "{name}");
            let e = constructors
                .iter()
                .find(|e| e.code == name)
                .unwrap_or_else(|| panic!("no AwsError constructor for {name}"));
            assert_eq!(u64::from(e.status), status, "{name}");
            checked += 1;
        }
    }
    assert!(checked >= 19);
    assert_eq!(AwsError::service_quota("x").status, 402);
    assert_eq!(
        AwsError::idempotency_mismatch("x").reason.as_deref(),
        Some("IdempotentParameterMismatchException")
    );
}

#[test]
fn error_body_shape() {
    let body: Value =
        serde_json::from_slice(&AwsError::not_found("no such manager").body()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"__type": "ResourceNotFoundException", "message": "no such manager"})
    );
    let e =
        AwsError::validation_field("paymentConnectorId", "connector belongs to another manager");
    let body: Value = serde_json::from_slice(&e.body()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "__type": "ValidationException",
            "message": "connector belongs to another manager",
            "reason": "FieldValidationFailed",
            "fieldList": [{"name": "paymentConnectorId", "message": "connector belongs to another manager"}]
        })
    );
    let e = AwsError::other("UnknownOperationException", 404, "Unknown operation");
    assert_eq!((e.code, e.status), ("UnknownOperationException", 404));
}

#[test]
fn enums_round_trip_through_strings() {
    use purser_model::control::{PaymentConnectorType, PaymentsAuthorizerType};
    for v in PaymentConnectorType::VALUES {
        let parsed: PaymentConnectorType = v.parse().unwrap();
        assert_eq!(parsed.as_str(), *v);
        assert_eq!(parsed.to_string(), *v);
        assert_eq!(serde_json::to_value(parsed).unwrap(), Value::from(*v));
    }
    assert!(PaymentConnectorType::SelfCustody.is_extension());
    assert!(!PaymentConnectorType::CoinbaseCdp.is_extension());
    assert!("Bogus".parse::<PaymentConnectorType>().is_err());
    assert_eq!(PaymentsAuthorizerType::CustomJwt.as_str(), "CUSTOM_JWT");
    assert!(serde_json::from_value::<PaymentsAuthorizerType>(Value::from("custom_jwt")).is_err());
}
