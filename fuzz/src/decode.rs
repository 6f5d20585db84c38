//! `decode_request`: routing, rest-json binding and model validation, called the
//! way `purser_server::pipeline` calls them.
//!
//! Invariants:
//! * nothing panics;
//! * every error (routing or validation) is an `AwsError` with a 4xx status and
//!   a JSON body with `__type` and `message` ([`crate::check_aws_error`]);
//! * `decode_input::<T>` with the operation's generated input type agrees with
//!   `decode_input_value`: a value that passed validation deserialises into `T`
//!   (otherwise the server would answer a valid request with a 400 "does not
//!   match the operation"), and both fail with the same error;
//! * validation is idempotent: the normalised value validates again with no
//!   violation and is left unchanged;
//! * the `Debug` output of the decoded input does not depend on the values of
//!   sensitive members (they must print as redacted).

use purser_model::{
    AwsError, OperationDef, Service, ShapeDef, ShapeKind, control, data, decode_input,
    decode_input_value, find_operation, validate_shape,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{RawRequest, check_aws_error};

/// The whole check for one fuzz input.
pub fn check(data: &[u8]) {
    let req = RawRequest::parse(data);
    let headers = req.header_map();
    // What `pipeline::Input::decode` passes: every value of the header that is
    // visible ASCII (`HeaderValue::to_str`), in arrival order.
    let header = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };

    let (op, captures) = match find_operation(&req.method, &req.path) {
        Ok(found) => found,
        Err(e) => {
            check_aws_error(&AwsError::from(e), "routing");
            return;
        }
    };
    let uri: Vec<(&str, String)> = captures.iter().map(|(k, v)| (*k, v.clone())).collect();
    let query = req.query.as_deref();

    let value = decode_input_value(op, &uri, query, &header, req.body);
    match &value {
        Ok(v) => {
            let mut again = v.clone();
            let violations = validate_shape(op.service.shapes(), op.input_shape, &mut again);
            assert!(
                violations.is_empty(),
                "{}: the normalised input does not validate again: {violations:?}",
                op.name
            );
            assert_eq!(&again, v, "{}: validation is not idempotent", op.name);
        }
        Err(e) => check_aws_error(e, op.name),
    }

    let args = Args {
        op,
        uri: &uri,
        query,
        header: &header,
        body: req.body,
        value: &value,
    };
    typed_check(&args);
}

struct Args<'a> {
    op: &'static OperationDef,
    uri: &'a [(&'a str, String)],
    query: Option<&'a str>,
    header: &'a dyn Fn(&str) -> Vec<String>,
    body: &'a [u8],
    value: &'a Result<Value, AwsError>,
}

/// Runs [`typed`] with the generated input type of `args.op`. Returns false
/// for an operation without a known type (a test makes sure there is none).
fn typed_check(args: &Args<'_>) -> bool {
    macro_rules! dispatch {
        ($($svc:ident :: $ty:ident),* $(,)?) => {
            match (args.op.service, args.op.input) {
                $(
                    (svc_of!($svc), stringify!($ty)) => {
                        typed::<$svc::$ty>(args);
                        true
                    }
                )*
                _ => false,
            }
        };
    }
    macro_rules! svc_of {
        (control) => {
            Service::Control
        };
        (data) => {
            Service::Data
        };
    }
    dispatch!(
        control::CreatePaymentConnectorRequest,
        control::CreatePaymentCredentialProviderRequest,
        control::CreatePaymentManagerRequest,
        control::DeletePaymentConnectorRequest,
        control::DeletePaymentCredentialProviderRequest,
        control::DeletePaymentManagerRequest,
        control::GetPaymentConnectorRequest,
        control::GetPaymentCredentialProviderRequest,
        control::GetPaymentManagerRequest,
        control::ListPaymentConnectorsRequest,
        control::ListPaymentCredentialProvidersRequest,
        control::ListPaymentManagersRequest,
        control::RotatePaymentConnectorCredentialsRequest,
        control::UpdatePaymentConnectorRequest,
        control::UpdatePaymentCredentialProviderRequest,
        control::UpdatePaymentManagerRequest,
        data::CreatePaymentInstrumentRequest,
        data::CreatePaymentSessionRequest,
        data::DeletePaymentInstrumentRequest,
        data::DeletePaymentSessionRequest,
        data::GetPaymentInstrumentBalanceRequest,
        data::GetPaymentInstrumentRequest,
        data::GetPaymentSessionRequest,
        data::GetResourcePaymentTokenRequest,
        data::GetWorkloadAccessTokenForJWTRequest,
        data::GetWorkloadAccessTokenForUserIdRequest,
        data::GetWorkloadAccessTokenRequest,
        data::ListPaymentInstrumentsRequest,
        data::ListPaymentSessionsRequest,
        data::ProcessPaymentRequest,
    )
}

fn typed<T: DeserializeOwned + std::fmt::Debug>(args: &Args<'_>) {
    let op = args.op;
    let decoded = decode_input::<T>(op, args.uri, args.query, args.header, args.body);
    match (args.value, &decoded) {
        (Ok(v), Err(e)) => panic!(
            "{}: input passed validation but does not deserialise into {}: {e:?}\nvalue: {v}",
            op.name, op.input
        ),
        (Err(e1), Err(e2)) => assert_eq!(
            e1, e2,
            "{}: decode_input and decode_input_value disagree",
            op.name
        ),
        (Err(e), Ok(_)) => panic!(
            "{}: decode_input succeeded where decode_input_value failed: {e:?}",
            op.name
        ),
        (Ok(v), Ok(t)) => check_redaction::<T>(op, v, t),
    }
}

/// Replaces every sensitive scalar of `value` by a different one of the same
/// type and length and checks that `Debug` of the deserialised input is the
/// same: then no sensitive value reaches the `Debug` output.
fn check_redaction<T: DeserializeOwned + std::fmt::Debug>(
    op: &OperationDef,
    value: &Value,
    typed: &T,
) {
    let mut changed = value.clone();
    let mut n = 0;
    perturb_sensitive(
        op.service.shapes(),
        op.input_shape,
        &mut changed,
        false,
        &mut n,
    );
    if n == 0 {
        return;
    }
    // Deserialise without validation: the replacements may not satisfy the
    // model's patterns, and only `Debug` is of interest here.
    let Ok(other) = serde_json::from_value::<T>(changed) else {
        return;
    };
    let (a, b) = (format!("{typed:?}"), format!("{other:?}"));
    assert_eq!(
        a, b,
        "{}: Debug output depends on the value of a sensitive member",
        op.name
    );
}

fn perturb_sensitive(
    shapes: &[ShapeDef],
    idx: usize,
    value: &mut Value,
    sensitive: bool,
    n: &mut usize,
) {
    let def = &shapes[idx];
    let sensitive = sensitive || def.sensitive;
    match (&def.kind, value) {
        (ShapeKind::Structure { members, .. }, Value::Object(obj)) => {
            for m in members.iter() {
                if let Some(v) = obj.get_mut(m.name) {
                    perturb_sensitive(shapes, m.target, v, sensitive, n);
                }
            }
        }
        (ShapeKind::List { member, .. }, Value::Array(items)) => {
            for item in items {
                perturb_sensitive(shapes, *member, item, sensitive, n);
            }
        }
        (ShapeKind::Map { value: val, .. }, Value::Object(obj)) => {
            for v in obj.values_mut() {
                perturb_sensitive(shapes, *val, v, sensitive, n);
            }
        }
        (ShapeKind::Document, v) if sensitive => perturb_any(v, n),
        (_, v) if sensitive => perturb_scalar(v, n),
        _ => {}
    }
}

fn perturb_any(v: &mut Value, n: &mut usize) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| perturb_any(i, n)),
        Value::Object(obj) => obj.values_mut().for_each(|i| perturb_any(i, n)),
        other => perturb_scalar(other, n),
    }
}

fn perturb_scalar(v: &mut Value, n: &mut usize) {
    match v {
        Value::String(s) if !s.is_empty() => {
            *s = s
                .chars()
                .map(|c| if c == 'x' { 'y' } else { 'x' })
                .collect();
            *n += 1;
        }
        Value::Bool(b) => {
            *b = !*b;
            *n += 1;
        }
        Value::Number(num) => {
            if let Some(i) = num.as_i64() {
                *v = Value::from(i ^ 1);
                *n += 1;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_check_is_not_vacuous() {
        let seed = include_bytes!("../seeds/decode_request/CreatePaymentCredentialProvider.http");
        let req = RawRequest::parse(seed);
        let (op, _) = find_operation(&req.method, &req.path).unwrap();
        let mut value = decode_input_value(op, &[], None, &|_| Vec::new(), req.body).unwrap();
        let before = value.clone();
        let mut n = 0;
        perturb_sensitive(
            op.service.shapes(),
            op.input_shape,
            &mut value,
            false,
            &mut n,
        );
        assert!(n >= 2, "the secrets of the seed are not seen as sensitive");
        assert_ne!(value, before);
        // The perturbed input still deserialises, so the comparison runs.
        serde_json::from_value::<control::CreatePaymentCredentialProviderRequest>(value).unwrap();
    }

    #[test]
    fn every_operation_has_a_typed_decoder() {
        for op in purser_model::operations() {
            // A body that does not parse: both decoders fail the same way.
            let value = decode_input_value(op, &[], None, &|_| Vec::new(), b"not json");
            assert!(value.is_err());
            let args = Args {
                op,
                uri: &[],
                query: None,
                header: &|_| Vec::new(),
                body: b"not json",
                value: &value,
            };
            assert!(
                typed_check(&args),
                "no typed decoder for {} ({})",
                op.name,
                op.input
            );
        }
    }
}
