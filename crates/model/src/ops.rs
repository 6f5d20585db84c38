//! Operation tables and request routing.

use crate::Service;

/// One operation of a service, as generated from the model.
#[derive(Debug)]
pub struct OperationDef {
    pub service: Service,
    /// The operation name, e.g. `"CreatePaymentManager"`.
    pub name: &'static str,
    /// The HTTP method, upper case.
    pub method: &'static str,
    /// The request URI template, e.g.
    /// `"/payments/managers/{paymentManagerId}/connectors/{paymentConnectorId}"`.
    pub uri: &'static str,
    /// `uri` split at `/` (without the leading empty segment).
    pub segments: &'static [Segment],
    /// The success status code (the model's `responseCode`, 200 when absent).
    pub success_code: u16,
    /// The input shape name and its index in the service's `SHAPES`.
    pub input: &'static str,
    pub input_shape: usize,
    /// The output shape name and its index in the service's `SHAPES`.
    pub output: &'static str,
    pub output_shape: usize,
    /// The input members bound to the URI, the query string or headers.
    pub location_members: &'static [LocationMember],
    /// The modelled error shape names.
    pub errors: &'static [&'static str],
    pub idempotent: bool,
    pub readonly: bool,
    /// The input member that carries the idempotency token (`clientToken`), if any.
    pub idempotency_token: Option<&'static str>,
}

/// A segment of a URI template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Must equal the (percent-decoded) path segment.
    Literal(&'static str),
    /// Captures one non-empty path segment into the named input member.
    Label(&'static str),
}

/// An input member bound to a non-body location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocationMember {
    /// The member name (the key the value is stored under before deserialising).
    pub member: &'static str,
    pub location: Location,
    /// The URI label, query parameter name or header name.
    pub location_name: &'static str,
    /// The target's scalar type: query and header values are parsed accordingly.
    pub kind: ScalarKind,
}

/// Where a non-body member lives in the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Uri,
    QueryString,
    Header,
}

/// The type of a location-bound member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarKind {
    String,
    Integer,
    Long,
    Boolean,
}

/// The URI captures of a routed request: `(member name, percent-decoded value)`.
pub type UriCaptures = Vec<(&'static str, String)>;

/// Why no operation matched a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No URI template matches the path.
    #[error("no operation matches the request path")]
    NotFound,
    /// Some template matches the path, but not with this method.
    #[error("method not allowed (allowed: {})", allowed.join(", "))]
    MethodNotAllowed {
        /// The methods that the path accepts, sorted.
        allowed: Vec<&'static str>,
    },
}

/// Every operation of both services.
pub fn operations() -> impl Iterator<Item = &'static OperationDef> {
    crate::control::OPERATIONS
        .iter()
        .chain(crate::data::OPERATIONS.iter())
}

/// Routes a request to an operation of either service.
///
/// `path` is the request path without the query string, still percent-encoded. On success
/// returns the operation and the captured URI members as `(member name, decoded value)`.
/// A literal template segment takes precedence over a label.
pub fn find_operation(
    method: &str,
    path: &str,
) -> Result<(&'static OperationDef, UriCaptures), RouteError> {
    find_operation_in(operations(), method, path)
}

/// [`find_operation`] over an arbitrary set of operations.
pub fn find_operation_in(
    ops: impl IntoIterator<Item = &'static OperationDef>,
    method: &str,
    path: &str,
) -> Result<(&'static OperationDef, UriCaptures), RouteError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(RouteError::NotFound);
    };
    let decoded: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let mut allowed: Vec<&'static str> = Vec::new();
    // (specificity, op, captures); specificity: `true` per literal segment, compared in order.
    let mut best: Option<(Vec<bool>, &'static OperationDef, UriCaptures)> = None;
    for op in ops {
        let Some((specificity, captures)) = match_segments(op.segments, &decoded) else {
            continue;
        };
        allowed.push(op.method);
        if op.method != method {
            continue;
        }
        if best.as_ref().is_none_or(|(s, _, _)| specificity > *s) {
            best = Some((specificity, op, captures));
        }
    }
    match best {
        Some((_, op, captures)) => Ok((op, captures)),
        None if allowed.is_empty() => Err(RouteError::NotFound),
        None => {
            allowed.sort_unstable();
            allowed.dedup();
            Err(RouteError::MethodNotAllowed { allowed })
        }
    }
}

fn match_segments(template: &[Segment], path: &[String]) -> Option<(Vec<bool>, UriCaptures)> {
    if template.len() != path.len() {
        return None;
    }
    let mut specificity = Vec::with_capacity(template.len());
    let mut captures = Vec::new();
    for (seg, value) in template.iter().zip(path) {
        match seg {
            Segment::Literal(lit) => {
                if lit != value {
                    return None;
                }
                specificity.push(true);
            }
            Segment::Label(member) => {
                if value.is_empty() {
                    return None;
                }
                specificity.push(false);
                captures.push((*member, value.clone()));
            }
        }
    }
    Some((specificity, captures))
}
