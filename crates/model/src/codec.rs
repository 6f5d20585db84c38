//! Request decoding and response encoding for the rest-json protocol.

use crate::error::AwsError;
use crate::ops::{Location, OperationDef, ScalarKind};
use crate::validate::{Violation, validate_shape};
use serde_json::{Map, Value};

/// Binds and validates an operation's input, returning the normalised JSON value that
/// [`decode_input`] deserialises (useful e.g. to fingerprint a request for idempotency).
///
/// 1. The body must be empty (meaning `{}`) or a JSON object, else `ValidationException`
///    `CannotParse`.
/// 2. Body keys naming location-bound members are dropped; the URI captures (`uri`, as
///    returned by [`crate::find_operation`]), query parameters (form-urlencoded decoding,
///    first occurrence wins) and headers (`header(name)`: every value of the header, in
///    arrival order) are stored under their member names. A modelled header sent more
///    than once is a violation naming the member (a proxy that appends its own identity
///    header must not be silently overridden by the caller's, nor the other way round).
///    Integer and boolean query/header values are parsed; a value that does not parse is
///    kept as a string and reported as a type violation.
/// 3. The value is validated against the input shape; all violations are reported in one
///    `ValidationException` (`FieldValidationFailed`).
pub fn decode_input_value(
    op: &OperationDef,
    uri: &[(&str, String)],
    query: Option<&str>,
    header: &dyn Fn(&str) -> Vec<String>,
    body: &[u8],
) -> Result<Value, AwsError> {
    let mut obj = if body.trim_ascii().is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) => obj,
            Ok(_) => {
                return Err(AwsError::cannot_parse(
                    "Could not parse request body into json: expected a JSON object",
                ));
            }
            Err(e) => {
                return Err(AwsError::cannot_parse(format!(
                    "Could not parse request body into json: {e}"
                )));
            }
        }
    };
    for lm in op.location_members {
        obj.remove(lm.member);
    }
    let query: Vec<(String, String)> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let mut repeated = Vec::new();
    for lm in op.location_members {
        let raw = match lm.location {
            Location::Uri => uri
                .iter()
                .find(|(member, _)| *member == lm.member)
                .map(|(_, v)| v.clone()),
            Location::QueryString => query
                .iter()
                .find(|(k, _)| k == lm.location_name)
                .map(|(_, v)| v.clone()),
            Location::Header => {
                let mut values = header(lm.location_name);
                if values.len() > 1 {
                    repeated.push(Violation {
                        path: lm.member.to_owned(),
                        constraint: format!(
                            "Member must be sent once; header {} appears {} times",
                            lm.location_name,
                            values.len()
                        ),
                        value: None,
                    });
                }
                values.drain(..).next()
            }
        };
        if let Some(raw) = raw {
            obj.insert(lm.member.to_owned(), typed(lm.kind, raw));
        }
    }
    let mut value = Value::Object(obj);
    let mut violations = validate_shape(op.service.shapes(), op.input_shape, &mut value);
    violations.splice(0..0, repeated);
    if !violations.is_empty() {
        return Err(AwsError::field_violations(&violations));
    }
    Ok(value)
}

/// Decodes, validates and deserialises an operation's input (see [`decode_input_value`]).
pub fn decode_input<T: serde::de::DeserializeOwned>(
    op: &OperationDef,
    uri: &[(&str, String)],
    query: Option<&str>,
    header: &dyn Fn(&str) -> Vec<String>,
    body: &[u8],
) -> Result<T, AwsError> {
    from_validated(op, decode_input_value(op, uri, query, header, body)?)
}

/// Deserialises a value returned by [`decode_input_value`] (and perhaps completed by the
/// server, e.g. with a derived idempotency token) into the operation's input type.
pub fn from_validated<T: serde::de::DeserializeOwned>(
    op: &OperationDef,
    value: Value,
) -> Result<T, AwsError> {
    // The value has passed validation, so a failure here means `T` is not this
    // operation's input type; serde's message could quote the value, so it is dropped.
    serde_json::from_value(value).map_err(|_| {
        AwsError::cannot_parse(format!(
            "Could not parse request into {}: the input does not match the operation",
            op.input
        ))
    })
}

/// The success status and body of an operation's output: JSON, or nothing for 204.
pub fn encode_output<T: serde::Serialize>(op: &OperationDef, out: &T) -> (u16, Vec<u8>) {
    if op.success_code == 204 {
        return (204, Vec::new());
    }
    match serde_json::to_vec(out) {
        Ok(body) => (op.success_code, body),
        Err(_) => {
            let e = AwsError::internal("failed to serialise the response");
            (e.status, e.body())
        }
    }
}

fn typed(kind: ScalarKind, raw: String) -> Value {
    match kind {
        ScalarKind::String => Value::String(raw),
        ScalarKind::Integer | ScalarKind::Long => match raw.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::String(raw),
        },
        ScalarKind::Boolean => match raw.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw),
        },
    }
}
