//! Constraint validation of JSON values against a service's `SHAPES` table.

use crate::shapes::{ShapeDef, ShapeKind};
use crate::timestamp::Timestamp;
use serde_json::Value;

/// Values longer than this (in characters) are never echoed in messages or paths.
const MAX_ECHO_CHARS: usize = 256;

/// One constraint violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field path: `name`, `a.b`, `list[0].c`, `tags.key`.
    pub path: String,
    /// The constraint text, e.g. `Member must not be null`.
    pub constraint: String,
    /// The offending value, only for enum violations of non-sensitive values.
    pub value: Option<String>,
}

impl Violation {
    /// `Value [ 'v' ]at 'path' failed to satisfy constraint: constraint`.
    pub fn message(&self) -> String {
        match &self.value {
            Some(v) => format!(
                "Value '{v}' at '{}' failed to satisfy constraint: {}",
                self.path, self.constraint
            ),
            None => format!(
                "Value at '{}' failed to satisfy constraint: {}",
                self.path, self.constraint
            ),
        }
    }
}

/// Validates `value` against shape `shape` of `shapes`, collecting every violation in
/// model member order.
///
/// The value is normalised on the way so that it deserialises into the generated type:
/// unknown members and `null` members are removed from structures and unions (AWS ignores
/// unknown members). Members of a top-level structure get paths without a prefix.
pub fn validate_shape(
    shapes: &'static [ShapeDef],
    shape: usize,
    value: &mut Value,
) -> Vec<Violation> {
    let mut v = Validator {
        shapes,
        out: Vec::new(),
    };
    v.check(shape, value, "", false);
    v.out
}

struct Validator {
    shapes: &'static [ShapeDef],
    out: Vec<Violation>,
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

impl Validator {
    fn push(&mut self, path: &str, constraint: impl Into<String>) {
        self.out.push(Violation {
            path: path.to_owned(),
            constraint: constraint.into(),
            value: None,
        });
    }

    fn type_error(&mut self, path: &str, ty: &str) {
        self.push(path, format!("Member must be of type {ty}"));
    }

    fn length(&mut self, path: &str, len: usize, min: Option<i64>, max: Option<i64>) {
        let len = len as i64;
        if let Some(min) = min
            && len < min
        {
            self.push(
                path,
                format!("Member must have length greater than or equal to {min}"),
            );
        }
        if let Some(max) = max
            && len > max
        {
            self.push(
                path,
                format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    fn range(&mut self, path: &str, n: i64, min: Option<i64>, max: Option<i64>) {
        if let Some(min) = min
            && n < min
        {
            self.push(
                path,
                format!("Member must be greater than or equal to {min}"),
            );
        }
        if let Some(max) = max
            && n > max
        {
            self.push(path, format!("Member must be less than or equal to {max}"));
        }
    }

    fn check(&mut self, idx: usize, value: &mut Value, path: &str, sensitive: bool) {
        let shapes = self.shapes;
        let def = &shapes[idx];
        let sensitive = sensitive || def.sensitive;
        match &def.kind {
            ShapeKind::String {
                min,
                max,
                pattern,
                enum_values,
                ..
            } => {
                let Some(s) = value.as_str() else {
                    return self.type_error(path, "string");
                };
                let chars = s.chars().count();
                self.length(path, chars, *min, *max);
                if let Some(p) = pattern
                    && !p.is_match(s)
                {
                    self.push(
                        path,
                        format!(
                            "Member must satisfy regular expression pattern: {}",
                            p.source()
                        ),
                    );
                }
                if let Some(values) = enum_values
                    && !values.contains(&s)
                {
                    let echo = (!sensitive && chars <= MAX_ECHO_CHARS).then(|| s.to_owned());
                    self.out.push(Violation {
                        path: path.to_owned(),
                        constraint: format!(
                            "Member must satisfy enum value set: [{}]",
                            values.join(", ")
                        ),
                        value: echo,
                    });
                }
            }
            ShapeKind::Integer { min, max } => {
                match value.as_i64().filter(|n| i32::try_from(*n).is_ok()) {
                    Some(n) => self.range(path, n, *min, *max),
                    None => self.type_error(path, "integer"),
                }
            }
            ShapeKind::Long { min, max } => match value.as_i64() {
                Some(n) => self.range(path, n, *min, *max),
                None => self.type_error(path, "long"),
            },
            ShapeKind::Boolean => {
                if !value.is_boolean() {
                    self.type_error(path, "boolean");
                }
            }
            ShapeKind::Timestamp { .. } => {
                let ok = match value {
                    Value::Number(n) => {
                        n.as_f64().and_then(Timestamp::from_epoch_seconds).is_some()
                    }
                    Value::String(s) => Timestamp::parse_iso8601(s).is_some(),
                    _ => false,
                };
                if !ok {
                    self.type_error(path, "timestamp");
                }
            }
            ShapeKind::Document => {}
            ShapeKind::List { member, min, max } => {
                let Some(items) = value.as_array_mut() else {
                    return self.type_error(path, "list");
                };
                self.length(path, items.len(), *min, *max);
                for (i, item) in items.iter_mut().enumerate() {
                    let p = format!("{path}[{i}]");
                    if item.is_null() {
                        self.push(&p, "Member must not be null");
                    } else {
                        self.check(*member, item, &p, sensitive);
                    }
                }
            }
            ShapeKind::Map {
                key,
                value: val,
                min,
                max,
            } => {
                let Some(entries) = value.as_object_mut() else {
                    return self.type_error(path, "map");
                };
                self.length(path, entries.len(), *min, *max);
                let hide_keys = sensitive || self.shapes[*key].sensitive;
                for (k, v) in entries.iter_mut() {
                    // Key violations are reported at the map's own path.
                    let mut key_value = Value::String(k.clone());
                    self.check(*key, &mut key_value, path, hide_keys);
                    let p = if hide_keys || k.chars().count() > MAX_ECHO_CHARS {
                        format!("{path}.***")
                    } else {
                        join(path, k)
                    };
                    if v.is_null() {
                        self.push(&p, "Member must not be null");
                    } else {
                        self.check(*val, v, &p, sensitive);
                    }
                }
            }
            ShapeKind::Structure { members, union, .. } => {
                let Some(obj) = value.as_object_mut() else {
                    return self.type_error(path, "structure");
                };
                obj.retain(|k, v| !v.is_null() && members.iter().any(|m| m.name == k));
                if *union && obj.len() != 1 {
                    self.push(path, "Union must have exactly one member set");
                }
                for m in members.iter() {
                    let p = join(path, m.name);
                    match obj.get_mut(m.name) {
                        Some(v) => self.check(m.target, v, &p, sensitive),
                        None if m.required && !union => self.push(&p, "Member must not be null"),
                        None => {}
                    }
                }
            }
        }
    }
}
