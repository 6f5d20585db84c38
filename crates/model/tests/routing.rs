//! Routing requests to operations of both services.

use purser_model::{
    OperationDef, RouteError, Segment, Service, find_operation, find_operation_in, operations,
};

/// A concrete path for a template: each label `{name}` becomes `<name>-value`.
fn concrete(op: &OperationDef) -> (String, Vec<(&'static str, String)>) {
    let mut path = String::new();
    let mut captures = Vec::new();
    for seg in op.segments {
        path.push('/');
        match seg {
            Segment::Literal(l) => path.push_str(l),
            Segment::Label(member) => {
                let value = format!("{}-value", member.to_lowercase());
                path.push_str(&value);
                captures.push((*member, value));
            }
        }
    }
    (path, captures)
}

#[test]
fn every_operation_of_both_services_routes() {
    let mut n = 0;
    for op in operations() {
        let (path, expected) = concrete(op);
        let (found, captures) = find_operation(op.method, &path)
            .unwrap_or_else(|e| panic!("{} {path}: {e}", op.method));
        assert!(
            std::ptr::eq(found, op),
            "{} {path} routed to {}",
            op.method,
            found.name
        );
        assert_eq!(captures, expected, "{}", op.name);
        n += 1;
    }
    // the data plane: 11 payment operations and the 3 GetWorkloadAccessToken* ones
    assert_eq!(n, 16 + 14);
    assert_eq!(Service::Control.operations().len(), 16);
    assert_eq!(Service::Data.operations().len(), 14);
    let (op, _) = find_operation("POST", "/identities/GetWorkloadAccessTokenForJWT").unwrap();
    assert_eq!(
        (op.service, op.name),
        (Service::Data, "GetWorkloadAccessTokenForJWT")
    );
}

#[test]
fn specific_routes() {
    let (op, captures) = find_operation("POST", "/payments/managers-list").unwrap();
    assert_eq!(op.name, "ListPaymentManagers");
    assert!(captures.is_empty());

    let (op, _) = find_operation("POST", "/payments/managers").unwrap();
    assert_eq!(op.name, "CreatePaymentManager");

    let (op, captures) = find_operation("GET", "/payments/managers/pm-1234567890").unwrap();
    assert_eq!(op.name, "GetPaymentManager");
    assert_eq!(
        captures,
        vec![("paymentManagerId", "pm-1234567890".to_owned())]
    );

    let (op, captures) = find_operation(
        "POST",
        "/payments/managers/pm-1/connectors/pc-2/rotate-credentials",
    )
    .unwrap();
    assert_eq!(op.name, "RotatePaymentConnectorCredentials");
    assert_eq!(
        captures,
        vec![
            ("paymentManagerId", "pm-1".to_owned()),
            ("paymentConnectorId", "pc-2".to_owned())
        ]
    );

    let (op, _) = find_operation("PATCH", "/payments/managers/pm-1/connectors/pc-2").unwrap();
    assert_eq!(op.name, "UpdatePaymentConnector");
    let (op, _) = find_operation("POST", "/payments/managers/pm-1/connectors-list").unwrap();
    assert_eq!(op.name, "ListPaymentConnectors");
    let (op, _) = find_operation("POST", "/payments/processPayment").unwrap();
    assert_eq!((op.name, op.service), ("ProcessPayment", Service::Data));
    let (op, _) = find_operation("POST", "/identities/payment/token").unwrap();
    assert_eq!(op.name, "GetResourcePaymentToken");
    let (op, _) = find_operation("POST", "/identities/GetPaymentCredentialProvider").unwrap();
    assert_eq!(
        (op.name, op.service),
        ("GetPaymentCredentialProvider", Service::Control)
    );
}

#[test]
fn unknown_paths_are_not_found() {
    for path in [
        "/",
        "",
        "payments/managers",
        "/nope",
        "/payments",
        "/payments/managers/",
        "/payments/managers//connectors",
        "/payments/managers/pm/connectors/pc/rotate-credentials/extra",
        "/payments/managers-list/extra",
        "/identities/Unknown",
    ] {
        assert_eq!(
            find_operation("POST", path).unwrap_err(),
            RouteError::NotFound,
            "{path:?}"
        );
    }
}

#[test]
fn wrong_method_lists_the_allowed_ones() {
    assert_eq!(
        find_operation("POST", "/payments/managers/pm-1").unwrap_err(),
        RouteError::MethodNotAllowed {
            allowed: vec!["DELETE", "GET", "PATCH"]
        }
    );
    assert_eq!(
        find_operation("GET", "/payments/managers-list").unwrap_err(),
        RouteError::MethodNotAllowed {
            allowed: vec!["POST"]
        }
    );
    assert_eq!(
        find_operation(
            "GET",
            "/payments/managers/pm/connectors/pc/rotate-credentials"
        )
        .unwrap_err(),
        RouteError::MethodNotAllowed {
            allowed: vec!["POST"]
        }
    );
    let e: purser_model::AwsError = find_operation("PUT", "/payments/managers")
        .unwrap_err()
        .into();
    assert_eq!((e.code, e.status), ("UnknownOperationException", 405));
    let e: purser_model::AwsError = find_operation("GET", "/x").unwrap_err().into();
    assert_eq!((e.code, e.status), ("UnknownOperationException", 404));
}

#[test]
fn captures_are_percent_decoded() {
    let (op, captures) = find_operation(
        "GET",
        "/payments/managers/arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A123456789012%3Apayment-manager%2Fpm-1",
    )
    .unwrap();
    assert_eq!(op.name, "GetPaymentManager");
    assert_eq!(
        captures,
        vec![(
            "paymentManagerId",
            "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/pm-1".to_owned()
        )]
    );
    // A `+` in a path is not a space; an encoded literal still matches the literal.
    let (op, captures) =
        find_operation("DELETE", "/payments/managers/a+b%20c/connectors/x").unwrap();
    assert_eq!(op.name, "DeletePaymentConnector");
    assert_eq!(captures[0].1, "a+b c");
    let (op, _) = find_operation("POST", "/payments/managers%2Dlist").unwrap();
    assert_eq!(op.name, "ListPaymentManagers");
}

const fn synthetic(
    name: &'static str,
    method: &'static str,
    segments: &'static [Segment],
) -> OperationDef {
    OperationDef {
        service: Service::Control,
        name,
        method,
        uri: "",
        segments,
        success_code: 200,
        input: "",
        input_shape: 0,
        output: "",
        output_shape: 0,
        location_members: &[],
        errors: &[],
        idempotent: false,
        readonly: false,
        idempotency_token: None,
    }
}

static VARIABLE: OperationDef = synthetic(
    "Variable",
    "GET",
    &[Segment::Literal("things"), Segment::Label("id")],
);
static LITERAL: OperationDef = synthetic(
    "Literal",
    "GET",
    &[Segment::Literal("things"), Segment::Literal("special")],
);
static LITERAL_POST: OperationDef = synthetic(
    "LiteralPost",
    "POST",
    &[Segment::Literal("things"), Segment::Literal("other")],
);
static DEEP_VARIABLE: OperationDef = synthetic(
    "DeepVariable",
    "GET",
    &[Segment::Label("a"), Segment::Literal("x")],
);
static DEEP_LITERAL: OperationDef = synthetic(
    "DeepLiteral",
    "GET",
    &[Segment::Literal("things"), Segment::Label("b")],
);

#[test]
fn literal_segments_beat_variables() {
    for ops in [[&VARIABLE, &LITERAL], [&LITERAL, &VARIABLE]] {
        let (op, captures) = find_operation_in(ops, "GET", "/things/special").unwrap();
        assert_eq!(op.name, "Literal");
        assert!(captures.is_empty());
        let (op, captures) = find_operation_in(ops, "GET", "/things/else").unwrap();
        assert_eq!(op.name, "Variable");
        assert_eq!(captures, vec![("id", "else".to_owned())]);
    }
    // The earlier segment decides: `/things/{b}` beats `/{a}/x` for `/things/x`.
    for ops in [
        [&DEEP_VARIABLE, &DEEP_LITERAL],
        [&DEEP_LITERAL, &DEEP_VARIABLE],
    ] {
        let (op, _) = find_operation_in(ops, "GET", "/things/x").unwrap();
        assert_eq!(op.name, "DeepLiteral");
    }
    // A literal with another method does not hide a variable with the right one.
    let (op, _) = find_operation_in([&VARIABLE, &LITERAL_POST], "GET", "/things/other").unwrap();
    assert_eq!(op.name, "Variable");
    assert_eq!(
        find_operation_in([&VARIABLE, &LITERAL_POST], "PUT", "/things/other").unwrap_err(),
        RouteError::MethodNotAllowed {
            allowed: vec!["GET", "POST"]
        }
    );
}
