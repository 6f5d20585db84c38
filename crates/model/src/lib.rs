//! purser-model: the wire model of the Amazon Bedrock AgentCore Payments APIs.
//!
//! * [`control`] and [`data`]: types and tables generated from the vendored botocore
//!   models by `cargo run -p xtask -- codegen` (do not edit `src/generated/` by hand).
//! * [`find_operation`]: routes a method and path to an [`OperationDef`] of either service.
//! * [`decode_input`]: binds URI labels, query parameters, headers and the JSON body into
//!   one value, validates it against the model constraints (AWS-style
//!   `ValidationException` messages) and deserialises it.
//! * [`encode_output`]: the success status and JSON body of an operation's output.
//! * [`AwsError`]: an AWS JSON error response.
//! * [`Timestamp`]: the timestamp type of the generated code, with the serde formats of
//!   [`timestamp`].

mod codec;
mod error;
mod ops;
mod shapes;
pub mod timestamp;
mod validate;

#[path = "generated/control.rs"]
pub mod control;
#[path = "generated/data.rs"]
pub mod data;

pub use codec::{decode_input, decode_input_value, encode_output, from_validated};
pub use error::AwsError;
pub use ops::{
    Location, LocationMember, OperationDef, RouteError, ScalarKind, Segment, UriCaptures,
    find_operation, find_operation_in, operations,
};
pub use shapes::{MemberDef, Pattern, ShapeDef, ShapeKind, TimestampFormat};
pub use timestamp::Timestamp;
pub use validate::{Violation, validate_shape};

/// The two services Purser speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// Control plane: `bedrock-agentcore-control` (payment managers, connectors,
    /// credential providers).
    Control,
    /// Data plane: `bedrock-agentcore` (payment instruments, sessions, payments).
    Data,
}

impl Service {
    /// Both services.
    pub const ALL: [Service; 2] = [Service::Control, Service::Data];

    /// The module name: `"control"` or `"data"`.
    pub const fn name(self) -> &'static str {
        match self {
            Service::Control => "control",
            Service::Data => "data",
        }
    }

    /// The service's operations (sorted by name).
    pub fn operations(self) -> &'static [OperationDef] {
        match self {
            Service::Control => control::OPERATIONS,
            Service::Data => data::OPERATIONS,
        }
    }

    /// The service's constraint table (sorted by shape name; indexes are shape ids).
    pub fn shapes(self) -> &'static [ShapeDef] {
        match self {
            Service::Control => control::SHAPES,
            Service::Data => data::SHAPES,
        }
    }

    /// The index of a shape in [`Service::shapes`].
    pub fn shape_index(self, name: &str) -> Option<usize> {
        self.shapes().binary_search_by(|s| s.name.cmp(name)).ok()
    }

    /// A shape of this service by name.
    pub fn shape(self, name: &str) -> Option<&'static ShapeDef> {
        self.shape_index(name).map(|i| &self.shapes()[i])
    }

    /// An operation of this service by name.
    pub fn operation(self, name: &str) -> Option<&'static OperationDef> {
        self.operations().iter().find(|op| op.name == name)
    }
}

/// What `Debug` prints in place of a sensitive value.
pub const REDACTED: &str = "*** Sensitive Data Redacted ***";

/// A value whose `Debug` output is [`REDACTED`]; generated `Debug` impls print it in place
/// of sensitive fields.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The error of the generated enums' `FromStr`: the string is not a value of the enum.
///
/// `Display` names the enum but not the rejected string.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown value for enum {shape}")]
pub struct UnknownEnumValue {
    /// The enum shape name.
    pub shape: &'static str,
    /// The rejected string.
    pub value: String,
}

impl UnknownEnumValue {
    /// An error for `value` not being a value of `shape`.
    pub fn new(shape: &'static str, value: &str) -> Self {
        UnknownEnumValue {
            shape,
            value: value.to_owned(),
        }
    }
}
