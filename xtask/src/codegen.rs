//! Rust code generator for botocore JSON service models (rest-json protocol).
//!
//! [`generate`] turns one model into one Rust module for `purser-model`:
//!
//! * a Rust type per structure (struct), union (externally tagged enum) and string enum
//!   (unit enum with `as_str` / `FromStr`); plain scalars, lists and maps map onto `String`,
//!   `i32`, `i64`, `bool`, `crate::Timestamp`, `Vec<T>`, `BTreeMap<String, T>` and documents
//!   onto `serde_json::Value`;
//! * `OPERATIONS`: the routing / binding table (`crate::OperationDef`);
//! * `SHAPES`: the constraint table the request validator walks (`crate::ShapeDef`),
//!   indexed by the position of a shape in name order.
//!
//! Model features this generator does not understand make it panic with a message naming
//! the shape, instead of producing subtly wrong code; the model is parsed with
//! `deny_unknown_fields` for the same reason.
//!
//! The output is piped through `rustfmt --edition 2024`, so it is byte-for-byte stable
//! for a given model and rustfmt version.

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

/// Purser extensions to the AWS model's string enums: `(module, shape, value)`.
///
/// Each listed value becomes an extra variant of the generated Rust enum (documented as a
/// Purser extension, `is_extension()` returns true for it) and is appended to the shape's
/// allowed values in the `SHAPES` constraint table, so the request validator accepts it
/// and lists it in "Member must satisfy enum value set" messages.
///
/// * `control` / `PaymentConnectorType` / `SelfCustody`: a payment connector whose wallets
///   Purser holds itself instead of delegating to Coinbase CDP or Stripe Privy.
pub const ENUM_EXTENSIONS: &[(&str, &str, &str)] =
    &[("control", "PaymentConnectorType", "SelfCustody")];

/// Generates the Rust module for one service model.
///
/// `module` is the module name inside `purser-model` (`"control"` or `"data"`); it also
/// selects the `crate::Service` variant and the rows of [`ENUM_EXTENSIONS`] that apply.
///
/// Panics if the model is not valid JSON, uses a feature the generator does not support,
/// or if `rustfmt` cannot be run.
pub fn generate(model_json: &str, module: &str) -> String {
    generate_merged(&[model_json], module)
}

/// Generates one module from several model files of the same service (e.g. the payment
/// operations and the workload-identity operations of `bedrock-agentcore`): their
/// operations are appended in order; a shape defined by more than one file must be
/// defined identically and is kept once.
pub fn generate_merged(model_jsons: &[&str], module: &str) -> String {
    let mut merged: Option<Model> = None;
    let mut raw_shapes: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for json in model_jsons {
        let model: Model = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("cannot parse the {module} service model: {e}"));
        let raw: serde_json::Value = serde_json::from_str(json).expect("parsed above");
        let Some(into) = merged.as_mut() else {
            for (name, shape) in raw["shapes"].as_object().expect("shapes is an object") {
                raw_shapes.insert(name.clone(), shape.clone());
            }
            merged = Some(model);
            continue;
        };
        into.operations.0.extend(model.operations.0);
        for (name, shape) in model.shapes.0 {
            let value = &raw["shapes"][&name];
            match raw_shapes.get(&name) {
                Some(prev) => assert_eq!(
                    prev, value,
                    "shape {module}.{name} is defined differently by two model files"
                ),
                None => {
                    raw_shapes.insert(name.clone(), value.clone());
                    into.shapes.0.push((name, shape));
                }
            }
        }
    }
    let model = merged.expect("at least one model file");
    let code = Gen::new(&model, module).render();
    rustfmt(&code)
}

/// Formats Rust source text with `rustfmt --edition 2024` (stdin to stdout).
pub fn rustfmt(code: &str) -> String {
    let rustfmt = std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".to_owned());
    let mut child = Command::new(&rustfmt)
        .args(["--edition", "2024", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{rustfmt}` (install the rustfmt component): {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = code.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("waiting for rustfmt");
    writer
        .join()
        .expect("rustfmt writer thread")
        .expect("writing to rustfmt");
    if !output.status.success() {
        panic!(
            "rustfmt rejected the generated code: {}\n--- code ---\n{code}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).expect("rustfmt output is UTF-8")
}

// ---------------------------------------------------------------------------------------
// Model (botocore JSON)
// ---------------------------------------------------------------------------------------

/// A JSON object read with its key order preserved (serde_json's own map is sorted unless
/// the `preserve_order` feature is on, which would leak into every crate of the workspace).
struct Ordered<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, T>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Model {
    #[allow(dead_code)]
    version: Option<String>,
    metadata: Metadata,
    operations: Ordered<Operation>,
    shapes: Ordered<Shape>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    protocol: String,
    service_full_name: Option<String>,
    uid: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Operation {
    name: String,
    http: Http,
    input: Option<ShapeRef>,
    output: Option<ShapeRef>,
    #[serde(default)]
    errors: Vec<ShapeRef>,
    #[allow(dead_code)]
    documentation: Option<IgnoredAny>,
    #[serde(default)]
    idempotent: bool,
    #[serde(default)]
    readonly: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Http {
    method: String,
    request_uri: String,
    response_code: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapeRef {
    shape: String,
    #[allow(dead_code)]
    documentation: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Shape {
    #[serde(rename = "type")]
    type_: String,
    members: Option<Ordered<Member>>,
    #[serde(default)]
    required: Vec<String>,
    min: Option<i64>,
    max: Option<i64>,
    pattern: Option<String>,
    #[serde(rename = "enum")]
    enum_: Option<Vec<String>>,
    #[serde(default)]
    union: bool,
    #[serde(default)]
    sensitive: bool,
    #[serde(default)]
    document: bool,
    #[serde(default)]
    exception: bool,
    #[serde(default)]
    #[allow(dead_code)]
    fault: bool,
    #[serde(default, rename = "box")]
    #[allow(dead_code)]
    box_: bool,
    error: Option<ErrorInfo>,
    member: Option<ShapeRef>,
    key: Option<ShapeRef>,
    value: Option<ShapeRef>,
    timestamp_format: Option<String>,
    #[allow(dead_code)]
    documentation: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ErrorInfo {
    http_status_code: u16,
    #[serde(default)]
    #[allow(dead_code)]
    sender_fault: bool,
    #[allow(dead_code)]
    code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Member {
    shape: String,
    location: Option<String>,
    location_name: Option<String>,
    #[serde(default)]
    idempotency_token: bool,
    #[allow(dead_code)]
    documentation: Option<IgnoredAny>,
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

/// Splits an identifier into words: at `_`/`-`/space, at a lower-case letter or digit
/// followed by an upper-case letter, and before the last capital of an acronym that is
/// followed by a lower-case letter (`customJWTAuthorizer` -> custom, JWT, Authorizer).
/// Digits stay with the word before them (`cryptoX402` -> crypto, X402).
pub fn split_words(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c == ' ' || c == '.' {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_uppercase() && !cur.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                words.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// `customJWTAuthorizer` -> `custom_jwt_authorizer`.
pub fn snake_case(s: &str) -> String {
    split_words(s)
        .iter()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join("_")
}

/// `CUSTOM_JWT` -> `CustomJwt`, `coinbaseCDP` -> `CoinbaseCdp`.
pub fn pascal_case(s: &str) -> String {
    let mut out = String::new();
    for w in split_words(s) {
        let mut cs = w.chars();
        if let Some(first) = cs.next() {
            out.extend(first.to_uppercase());
            out.push_str(&cs.as_str().to_lowercase());
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    out
}

const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// The Rust field name of a member: snake case, keywords get a trailing underscore.
pub fn field_name(member: &str) -> String {
    let s = snake_case(member);
    if KEYWORDS.contains(&s.as_str()) {
        format!("{s}_")
    } else {
        s
    }
}

/// Names a generated type must not take, since the generated code uses them unqualified.
const RESERVED_TYPE_NAMES: &[&str] = &[
    "String",
    "Vec",
    "Option",
    "Box",
    "Result",
    "Ok",
    "Err",
    "Some",
    "None",
    "Self",
    "Serialize",
    "Deserialize",
];

/// A Rust string literal for `s`.
fn lit(s: &str) -> String {
    format!("{s:?}")
}

/// A raw string literal for `s` when that is possible (regex patterns read better raw).
fn raw_lit(s: &str) -> String {
    if s.chars().any(|c| c.is_control()) {
        return lit(s);
    }
    let mut hashes = String::new();
    while s.contains(&format!("\"{hashes}")) {
        hashes.push('#');
    }
    format!("r{hashes}\"{s}\"{hashes}")
}

fn opt_i64(v: Option<i64>) -> String {
    match v {
        Some(v) => format!("Some({v})"),
        None => "None".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum TsFormat {
    Iso8601,
    EpochSeconds,
}

struct Gen<'a> {
    model: &'a Model,
    module: &'a str,
    service: String,
    shapes: BTreeMap<&'a str, &'a Shape>,
    index: BTreeMap<&'a str, usize>,
    extensions: BTreeMap<&'a str, Vec<&'a str>>,
    out: String,
}

impl<'a> Gen<'a> {
    fn new(model: &'a Model, module: &'a str) -> Self {
        assert_eq!(
            model.metadata.protocol, "rest-json",
            "only the rest-json protocol is supported"
        );
        let mut shapes = BTreeMap::new();
        for (name, shape) in &model.shapes.0 {
            assert!(
                shapes.insert(name.as_str(), shape).is_none(),
                "duplicate shape {name}"
            );
        }
        let index = shapes.keys().enumerate().map(|(i, k)| (*k, i)).collect();
        let mut extensions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (m, shape, value) in ENUM_EXTENSIONS {
            if *m != module {
                continue;
            }
            let s = shapes
                .get(shape)
                .unwrap_or_else(|| panic!("enum extension names unknown shape {module}.{shape}"));
            let values = s
                .enum_
                .as_ref()
                .unwrap_or_else(|| panic!("enum extension target {shape} is not an enum"));
            assert!(
                !values.iter().any(|v| v == value),
                "enum extension {shape}.{value} is already in the model"
            );
            extensions.entry(*shape).or_default().push(*value);
        }
        let g = Gen {
            model,
            module,
            service: pascal_case(module),
            shapes,
            index,
            extensions,
            out: String::new(),
        };
        g.check();
        g
    }

    fn shape(&self, name: &str) -> &'a Shape {
        self.shapes
            .get(name)
            .copied()
            .unwrap_or_else(|| panic!("reference to unknown shape {name}"))
    }

    /// Model sanity checks that the rest of the generator relies on.
    fn check(&self) {
        for (name, shape) in &self.shapes {
            assert!(
                !RESERVED_TYPE_NAMES.contains(name) || !self.defines_type(shape),
                "shape name {name} would shadow a Rust type used by the generated code"
            );
            match shape.type_.as_str() {
                "structure" => {
                    let members = self.members(shape);
                    for r in &shape.required {
                        assert!(
                            members.iter().any(|(m, _)| m == r),
                            "{name}: required member {r} does not exist"
                        );
                    }
                    let mut fields = BTreeSet::new();
                    for (m, mem) in members {
                        let target = self.shape(&mem.shape);
                        assert!(
                            fields.insert(if shape.union {
                                pascal_case(m)
                            } else {
                                field_name(m)
                            }),
                            "{name}: two members map to the same Rust name ({m})"
                        );
                        if shape.union {
                            assert!(
                                mem.location.is_none(),
                                "{name}.{m}: union member with location"
                            );
                        }
                        if let Some(loc) = &mem.location {
                            assert!(
                                matches!(loc.as_str(), "uri" | "querystring" | "header"),
                                "{name}.{m}: unsupported location {loc}"
                            );
                            assert!(
                                matches!(
                                    target.type_.as_str(),
                                    "string" | "integer" | "long" | "boolean"
                                ),
                                "{name}.{m}: location-bound member of type {} is not supported",
                                target.type_
                            );
                        }
                        self.check_no_nested_timestamp(&mem.shape, false);
                    }
                }
                "list" => {
                    self.shape(&shape.member.as_ref().expect("list member").shape);
                }
                "map" => {
                    let key = self.shape(&shape.key.as_ref().expect("map key").shape);
                    assert_eq!(key.type_, "string", "{name}: map keys must be strings");
                    self.shape(&shape.value.as_ref().expect("map value").shape);
                }
                "string" => {
                    if let Some(values) = &shape.enum_ {
                        let mut variants = BTreeSet::new();
                        for v in values.iter().map(String::as_str).chain(self.ext(name)) {
                            let variant = pascal_case(v);
                            assert!(!variant.is_empty(), "{name}: empty enum value");
                            assert!(
                                variants.insert(variant),
                                "{name}: enum values collide as Rust variants ({v})"
                            );
                        }
                    }
                }
                "integer" | "long" | "boolean" => {}
                "timestamp" => {
                    self.ts_format(shape, name);
                }
                other => panic!("{name}: unsupported shape type {other}"),
            }
        }
        for (_, op) in &self.model.operations.0 {
            let input = op
                .input
                .as_ref()
                .unwrap_or_else(|| panic!("{}: no input", op.name));
            let output = op
                .output
                .as_ref()
                .unwrap_or_else(|| panic!("{}: no output", op.name));
            for (m, mem) in self.members(self.shape(&output.shape)) {
                assert!(
                    mem.location.is_none(),
                    "{}: output member {m} is bound to {:?}; only body members are supported in outputs",
                    op.name,
                    mem.location
                );
            }
            let uri = &op.http.request_uri;
            assert!(
                uri.starts_with('/') && !uri.contains('?'),
                "{}: unsupported request URI {uri}",
                op.name
            );
            let labels: BTreeSet<String> = self
                .members(self.shape(&input.shape))
                .iter()
                .filter(|(_, m)| m.location.as_deref() == Some("uri"))
                .map(|(n, m)| m.location_name.clone().unwrap_or_else(|| n.clone()))
                .collect();
            let mut in_template = BTreeSet::new();
            for seg in uri[1..].split('/') {
                if seg.contains('{') || seg.contains('}') {
                    assert!(
                        seg.starts_with('{') && seg.ends_with('}') && !seg.contains('+'),
                        "{}: unsupported URI segment {seg}",
                        op.name
                    );
                    in_template.insert(seg[1..seg.len() - 1].to_owned());
                }
            }
            assert_eq!(
                labels, in_template,
                "{}: URI labels and uri-bound members differ",
                op.name
            );
            for e in &op.errors {
                assert!(
                    self.shape(&e.shape).exception,
                    "{}: error {} is not an exception",
                    op.name,
                    e.shape
                );
            }
        }
    }

    /// Timestamps are only supported directly as structure members or union variants
    /// (the serde `with` attribute needs a field to hang on).
    fn check_no_nested_timestamp(&self, name: &str, nested: bool) {
        let s = self.shape(name);
        match s.type_.as_str() {
            "timestamp" => assert!(!nested, "timestamps inside lists or maps are not supported"),
            "list" => self.check_no_nested_timestamp(&s.member.as_ref().unwrap().shape, true),
            "map" => self.check_no_nested_timestamp(&s.value.as_ref().unwrap().shape, true),
            _ => {}
        }
    }

    fn ext(&self, shape: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        self.extensions
            .get(shape)
            .cloned()
            .unwrap_or_default()
            .into_iter()
    }

    fn members(&self, shape: &'a Shape) -> &'a [(String, Member)] {
        shape
            .members
            .as_ref()
            .map(|m| m.0.as_slice())
            .unwrap_or(&[])
    }

    fn defines_type(&self, shape: &Shape) -> bool {
        (shape.type_ == "structure" && !shape.document)
            || (shape.type_ == "string" && shape.enum_.is_some())
    }

    fn ts_format(&self, shape: &Shape, name: &str) -> TsFormat {
        match shape.timestamp_format.as_deref() {
            Some("iso8601") => TsFormat::Iso8601,
            // rest-json bodies default to epoch seconds.
            None | Some("unixTimestamp") => TsFormat::EpochSeconds,
            Some(other) => panic!("{name}: unsupported timestampFormat {other}"),
        }
    }

    /// The serde `with` module for a member targeting `target`, if it is a timestamp.
    fn serde_with(&self, target: &str, optional: bool) -> Option<String> {
        let s = self.shape(target);
        if s.type_ != "timestamp" {
            return None;
        }
        let base = match self.ts_format(s, target) {
            TsFormat::Iso8601 => "crate::timestamp::iso8601",
            TsFormat::EpochSeconds => "crate::timestamp::epoch_seconds",
        };
        Some(if optional {
            format!("{base}::option")
        } else {
            base.to_owned()
        })
    }

    /// The Rust type of a value of shape `name`.
    fn rust_type(&self, name: &str) -> String {
        let s = self.shape(name);
        match s.type_.as_str() {
            "structure" if s.document => "serde_json::Value".to_owned(),
            "structure" => name.to_owned(),
            "string" if s.enum_.is_some() => name.to_owned(),
            "string" => "String".to_owned(),
            "integer" => "i32".to_owned(),
            "long" => "i64".to_owned(),
            "boolean" => "bool".to_owned(),
            "timestamp" => "crate::Timestamp".to_owned(),
            "list" => format!("Vec<{}>", self.rust_type(&s.member.as_ref().unwrap().shape)),
            "map" => format!(
                "std::collections::BTreeMap<String, {}>",
                self.rust_type(&s.value.as_ref().unwrap().shape)
            ),
            other => panic!("{name}: unsupported shape type {other}"),
        }
    }

    /// Whether `from` reaches `to` through structure/union members only (lists and maps
    /// are heap indirections already, so they break a cycle).
    fn reaches(&self, from: &str, to: &str, seen: &mut BTreeSet<String>) -> bool {
        if from == to {
            return true;
        }
        if !seen.insert(from.to_owned()) {
            return false;
        }
        let s = self.shape(from);
        if s.type_ != "structure" || s.document {
            return false;
        }
        self.members(s)
            .iter()
            .any(|(_, m)| self.reaches(&m.shape, to, seen))
    }

    fn needs_box(&self, owner: &str, target: &str) -> bool {
        self.reaches(target, owner, &mut BTreeSet::new())
    }

    /// Whether a value of this shape, printed by its own `Debug`, could show a sensitive
    /// value: the shape is sensitive itself, or it is a list/map of such values. Generated
    /// structures and unions redact their own sensitive parts, so recursion stops there.
    fn sensitive_deep(&self, name: &str) -> bool {
        let s = self.shape(name);
        if s.sensitive {
            return true;
        }
        match s.type_.as_str() {
            "list" => self.sensitive_deep(&s.member.as_ref().unwrap().shape),
            "map" => {
                self.sensitive_deep(&s.key.as_ref().unwrap().shape)
                    || self.sensitive_deep(&s.value.as_ref().unwrap().shape)
            }
            _ => false,
        }
    }

    fn w(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn render(mut self) -> String {
        let full = self
            .model
            .metadata
            .service_full_name
            .clone()
            .unwrap_or_default();
        let uid = self.model.metadata.uid.clone().unwrap_or_default();
        let header = format!(
            "// @generated by `cargo run -p xtask -- codegen` from the botocore model `{uid}`.\n\
             // Do not edit by hand: change xtask/src/codegen.rs or the model and regenerate.\n\
             //! Types and tables for the `{module}` service ({full}).\n\
             //!\n\
             //! Generated from the botocore model `{uid}`; see `xtask/src/codegen.rs`.\n\
             #![allow(clippy::large_enum_variant)]\n\n\
             use serde::{{Deserialize, Serialize}};\n",
            module = self.module,
        );
        self.w(&header);
        let names: Vec<&'a str> = self.shapes.keys().copied().collect();
        for name in &names {
            let shape = self.shape(name);
            match shape.type_.as_str() {
                "structure" if shape.document => {}
                "structure" if shape.union => self.emit_union(name, shape),
                "structure" => self.emit_struct(name, shape),
                "string" if shape.enum_.is_some() => self.emit_enum(name, shape),
                _ => {}
            }
        }
        self.emit_operations();
        self.emit_shape_table();
        self.out
    }

    fn doc_kind(&self, shape: &Shape) -> &'static str {
        if shape.exception {
            "exception structure"
        } else if shape.union {
            "union"
        } else if shape.type_ == "string" {
            "string enum"
        } else {
            "structure"
        }
    }

    fn emit_struct(&mut self, name: &str, shape: &'a Shape) {
        let members = self.members(shape);
        let manual_debug =
            shape.sensitive || members.iter().any(|(_, m)| self.sensitive_deep(&m.shape));
        let all_optional = members.iter().all(|(m, _)| !shape.required.contains(m));
        let mut derives = vec!["Clone"];
        if !manual_debug {
            derives.push("Debug");
        }
        if all_optional {
            derives.push("Default");
        }
        derives.extend(["PartialEq", "Serialize", "Deserialize"]);
        let mut s = String::new();
        let _ = writeln!(s, "/// `{name}` ({}).", self.doc_kind(shape));
        if shape.sensitive {
            s.push_str("///\n/// Sensitive: `Debug` redacts every field.\n");
        }
        let _ = writeln!(s, "#[derive({})]", derives.join(", "));
        let _ = writeln!(s, "pub struct {name} {{");
        for (m, mem) in members {
            let required = shape.required.contains(m);
            let mut ty = self.rust_type(&mem.shape);
            if self.needs_box(name, &mem.shape) {
                ty = format!("Box<{ty}>");
            }
            let mut attrs = vec![format!("rename = {}", lit(m))];
            if !required {
                ty = format!("Option<{ty}>");
                attrs.push("default".to_owned());
                attrs.push("skip_serializing_if = \"Option::is_none\"".to_owned());
            }
            if let Some(with) = self.serde_with(&mem.shape, !required) {
                attrs.push(format!("with = {}", lit(&with)));
            }
            if let Some(loc) = &mem.location {
                let ln = mem.location_name.as_deref().unwrap_or(m);
                let _ = writeln!(s, "    /// Bound to {loc} `{ln}`.");
            }
            if mem.idempotency_token {
                let _ = writeln!(s, "    /// Idempotency token.");
            }
            let _ = writeln!(s, "    #[serde({})]", attrs.join(", "));
            let _ = writeln!(s, "    pub {}: {ty},", field_name(m));
        }
        s.push_str("}\n");
        if manual_debug {
            let _ = writeln!(s, "impl std::fmt::Debug for {name} {{");
            s.push_str(
                "    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n",
            );
            let _ = writeln!(s, "        f.debug_struct({})", lit(name));
            for (m, mem) in members {
                let field = field_name(m);
                if shape.sensitive || self.sensitive_deep(&mem.shape) {
                    let _ = writeln!(s, "            .field({}, &crate::Redacted)", lit(&field));
                } else {
                    let _ = writeln!(s, "            .field({}, &self.{field})", lit(&field));
                }
            }
            s.push_str("            .finish()\n    }\n}\n");
        }
        self.w(&s);
    }

    fn emit_union(&mut self, name: &str, shape: &'a Shape) {
        let members = self.members(shape);
        assert!(!members.is_empty(), "{name}: union without members");
        let redact: Vec<bool> = members
            .iter()
            .map(|(_, m)| shape.sensitive || self.sensitive_deep(&m.shape))
            .collect();
        let manual_debug = redact.iter().any(|r| *r);
        let mut derives = vec!["Clone"];
        if !manual_debug {
            derives.push("Debug");
        }
        derives.extend(["PartialEq", "Serialize", "Deserialize"]);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "/// `{name}` (union): exactly one member is set; serialised as `{{\"memberName\": value}}`."
        );
        if shape.sensitive {
            s.push_str("///\n/// Sensitive: `Debug` prints only a redaction marker.\n");
        }
        let _ = writeln!(s, "#[derive({})]", derives.join(", "));
        let _ = writeln!(s, "pub enum {name} {{");
        for (m, mem) in members {
            let mut ty = self.rust_type(&mem.shape);
            if self.needs_box(name, &mem.shape) {
                ty = format!("Box<{ty}>");
            }
            let mut attrs = vec![format!("rename = {}", lit(m))];
            if let Some(with) = self.serde_with(&mem.shape, false) {
                attrs.push(format!("with = {}", lit(&with)));
            }
            let _ = writeln!(s, "    #[serde({})]", attrs.join(", "));
            let _ = writeln!(s, "    {}({ty}),", pascal_case(m));
        }
        s.push_str("}\n");
        if manual_debug {
            let _ = writeln!(s, "impl std::fmt::Debug for {name} {{");
            s.push_str(
                "    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n",
            );
            if shape.sensitive {
                s.push_str("        std::fmt::Debug::fmt(&crate::Redacted, f)\n");
            } else {
                s.push_str("        match self {\n");
                for ((m, _), redact) in members.iter().zip(&redact) {
                    let v = pascal_case(m);
                    if *redact {
                        let _ = writeln!(
                            s,
                            "            Self::{v}(_) => f.debug_tuple({}).field(&crate::Redacted).finish(),",
                            lit(&v)
                        );
                    } else {
                        let _ = writeln!(
                            s,
                            "            Self::{v}(v) => f.debug_tuple({}).field(v).finish(),",
                            lit(&v)
                        );
                    }
                }
                s.push_str("        }\n");
            }
            s.push_str("    }\n}\n");
        }
        self.w(&s);
    }

    fn emit_enum(&mut self, name: &str, shape: &'a Shape) {
        let model_values: Vec<&str> = shape
            .enum_
            .as_ref()
            .unwrap()
            .iter()
            .map(String::as_str)
            .collect();
        let ext: Vec<&str> = self.ext(name).collect();
        let all: Vec<(&str, bool)> = model_values
            .iter()
            .map(|v| (*v, false))
            .chain(ext.iter().map(|v| (*v, true)))
            .collect();
        let mut derives = vec!["Clone", "Copy"];
        if !shape.sensitive {
            derives.push("Debug");
        }
        derives.extend([
            "PartialEq",
            "Eq",
            "Hash",
            "PartialOrd",
            "Ord",
            "Serialize",
            "Deserialize",
        ]);
        let mut s = String::new();
        let _ = writeln!(s, "/// `{name}` ({}).", self.doc_kind(shape));
        let _ = writeln!(s, "#[derive({})]", derives.join(", "));
        let _ = writeln!(s, "pub enum {name} {{");
        for (v, is_ext) in &all {
            if *is_ext {
                let _ = writeln!(
                    s,
                    "    /// Purser extension: not a value of the AWS model (see `ENUM_EXTENSIONS` in xtask/src/codegen.rs)."
                );
            } else {
                let _ = writeln!(s, "    /// `{v}`");
            }
            let _ = writeln!(s, "    #[serde(rename = {})]", lit(v));
            let _ = writeln!(s, "    {},", pascal_case(v));
        }
        s.push_str("}\n");
        let list = all
            .iter()
            .map(|(v, _)| lit(v))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(s, "impl {name} {{");
        s.push_str(
            "    /// Every accepted wire value, model values first, then Purser extensions.\n",
        );
        let _ = writeln!(
            s,
            "    pub const VALUES: &'static [&'static str] = &[{list}];"
        );
        s.push_str("    /// The wire value.\n");
        s.push_str("    pub const fn as_str(&self) -> &'static str {\n        match self {\n");
        for (v, _) in &all {
            let _ = writeln!(s, "            Self::{} => {},", pascal_case(v), lit(v));
        }
        s.push_str("        }\n    }\n");
        s.push_str(
            "    /// Whether this value is a Purser extension rather than an AWS model value.\n",
        );
        if ext.is_empty() {
            s.push_str("    pub const fn is_extension(&self) -> bool {\n        false\n    }\n");
        } else {
            s.push_str("    pub const fn is_extension(&self) -> bool {\n        matches!(self, ");
            let pats: Vec<String> = ext
                .iter()
                .map(|v| format!("Self::{}", pascal_case(v)))
                .collect();
            s.push_str(&pats.join(" | "));
            s.push_str(")\n    }\n");
        }
        s.push_str("}\n");
        let _ = writeln!(s, "impl std::fmt::Display for {name} {{");
        s.push_str("    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n");
        s.push_str("        f.write_str(self.as_str())\n    }\n}\n");
        if shape.sensitive {
            let _ = writeln!(s, "impl std::fmt::Debug for {name} {{");
            s.push_str(
                "    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n",
            );
            s.push_str("        std::fmt::Debug::fmt(&crate::Redacted, f)\n    }\n}\n");
        }
        let _ = writeln!(s, "impl std::str::FromStr for {name} {{");
        s.push_str("    type Err = crate::UnknownEnumValue;\n");
        s.push_str("    fn from_str(s: &str) -> Result<Self, Self::Err> {\n        match s {\n");
        for (v, _) in &all {
            let _ = writeln!(s, "            {} => Ok(Self::{}),", lit(v), pascal_case(v));
        }
        let _ = writeln!(
            s,
            "            _ => Err(crate::UnknownEnumValue::new({}, s)),",
            lit(name)
        );
        s.push_str("        }\n    }\n}\n");
        self.w(&s);
    }

    fn scalar_kind(&self, target: &str) -> &'static str {
        match self.shape(target).type_.as_str() {
            "string" => "crate::ScalarKind::String",
            "integer" => "crate::ScalarKind::Integer",
            "long" => "crate::ScalarKind::Long",
            "boolean" => "crate::ScalarKind::Boolean",
            other => panic!("{target}: {other} cannot be bound to a URI, query or header"),
        }
    }

    fn location(loc: &str) -> &'static str {
        match loc {
            "uri" => "crate::Location::Uri",
            "querystring" => "crate::Location::QueryString",
            "header" => "crate::Location::Header",
            other => panic!("unsupported location {other}"),
        }
    }

    fn emit_operations(&mut self) {
        let mut ops: Vec<&'a Operation> = self.model.operations.0.iter().map(|(_, o)| o).collect();
        ops.sort_by(|a, b| a.name.cmp(&b.name));
        let mut s = String::new();
        let _ = writeln!(
            s,
            "/// Every operation of the `{}` service, sorted by name.",
            self.module
        );
        s.push_str("pub static OPERATIONS: &[crate::OperationDef] = &[\n");
        for op in ops {
            let input = &op.input.as_ref().unwrap().shape;
            let output = &op.output.as_ref().unwrap().shape;
            let in_shape = self.shape(input);
            let members = self.members(in_shape);
            let mut segments = Vec::new();
            for seg in op.http.request_uri[1..].split('/') {
                if let Some(label) = seg.strip_prefix('{').and_then(|l| l.strip_suffix('}')) {
                    let (member, _) = members
                        .iter()
                        .find(|(n, m)| {
                            m.location.as_deref() == Some("uri")
                                && m.location_name.as_deref().unwrap_or(n) == label
                        })
                        .expect("checked: label has a member");
                    segments.push(format!("crate::Segment::Label({})", lit(member)));
                } else {
                    segments.push(format!("crate::Segment::Literal({})", lit(seg)));
                }
            }
            let mut locs = Vec::new();
            let mut token = "None".to_owned();
            for (m, mem) in members {
                if mem.idempotency_token {
                    token = format!("Some({})", lit(m));
                }
                if let Some(loc) = &mem.location {
                    locs.push(format!(
                        "crate::LocationMember {{ member: {}, location: {}, location_name: {}, kind: {} }}",
                        lit(m),
                        Self::location(loc),
                        lit(mem.location_name.as_deref().unwrap_or(m)),
                        self.scalar_kind(&mem.shape)
                    ));
                }
            }
            let errors: Vec<String> = op.errors.iter().map(|e| lit(&e.shape)).collect();
            let _ = writeln!(
                s,
                "crate::OperationDef {{ service: crate::Service::{service}, name: {name}, method: {method}, uri: {uri}, \
                 segments: &[{segments}], success_code: {code}, input: {input}, input_shape: {in_idx}, output: {output}, \
                 output_shape: {out_idx}, location_members: &[{locs}], errors: &[{errors}], idempotent: {idem}, \
                 readonly: {ro}, idempotency_token: {token} }},",
                service = self.service,
                name = lit(&op.name),
                method = lit(&op.http.method),
                uri = lit(&op.http.request_uri),
                segments = segments.join(", "),
                code = op.http.response_code.unwrap_or(200),
                input = lit(input),
                in_idx = self.index[input.as_str()],
                output = lit(output),
                out_idx = self.index[output.as_str()],
                locs = locs.join(", "),
                errors = errors.join(", "),
                idem = op.idempotent,
                ro = op.readonly,
            );
        }
        s.push_str("];\n");
        self.w(&s);
    }

    fn emit_shape_table(&mut self) {
        let mut patterns: BTreeMap<&'a str, usize> = BTreeMap::new();
        let mut pattern_order: Vec<&'a str> = Vec::new();
        let mut rows = Vec::new();
        let names: Vec<&'a str> = self.shapes.keys().copied().collect();
        for name in names {
            let shape = self.shape(name);
            let kind = match shape.type_.as_str() {
                "string" => {
                    let pattern = match &shape.pattern {
                        Some(p) => {
                            let next = pattern_order.len();
                            let id = *patterns.entry(p.as_str()).or_insert(next);
                            if id == next {
                                pattern_order.push(p.as_str());
                            }
                            format!("Some(&PATTERN_{id})")
                        }
                        None => "None".to_owned(),
                    };
                    let enum_values = match &shape.enum_ {
                        Some(values) => {
                            let all: Vec<String> = values
                                .iter()
                                .map(String::as_str)
                                .chain(self.ext(name))
                                .map(lit)
                                .collect();
                            format!("Some(&[{}])", all.join(", "))
                        }
                        None => "None".to_owned(),
                    };
                    let ext: Vec<String> = self.ext(name).map(lit).collect();
                    format!(
                        "crate::ShapeKind::String {{ min: {}, max: {}, pattern: {pattern}, enum_values: {enum_values}, extension_values: &[{}] }}",
                        opt_i64(shape.min),
                        opt_i64(shape.max),
                        ext.join(", ")
                    )
                }
                "integer" | "long" => format!(
                    "crate::ShapeKind::{} {{ min: {}, max: {} }}",
                    if shape.type_ == "integer" {
                        "Integer"
                    } else {
                        "Long"
                    },
                    opt_i64(shape.min),
                    opt_i64(shape.max)
                ),
                "boolean" => "crate::ShapeKind::Boolean".to_owned(),
                "timestamp" => format!(
                    "crate::ShapeKind::Timestamp {{ format: crate::TimestampFormat::{} }}",
                    match self.ts_format(shape, name) {
                        TsFormat::Iso8601 => "Iso8601",
                        TsFormat::EpochSeconds => "EpochSeconds",
                    }
                ),
                "list" => format!(
                    "crate::ShapeKind::List {{ member: {}, min: {}, max: {} }}",
                    self.index[shape.member.as_ref().unwrap().shape.as_str()],
                    opt_i64(shape.min),
                    opt_i64(shape.max)
                ),
                "map" => format!(
                    "crate::ShapeKind::Map {{ key: {}, value: {}, min: {}, max: {} }}",
                    self.index[shape.key.as_ref().unwrap().shape.as_str()],
                    self.index[shape.value.as_ref().unwrap().shape.as_str()],
                    opt_i64(shape.min),
                    opt_i64(shape.max)
                ),
                "structure" if shape.document => "crate::ShapeKind::Document".to_owned(),
                "structure" => {
                    let members: Vec<String> = self
                        .members(shape)
                        .iter()
                        .map(|(m, mem)| {
                            let (location, location_name) = match &mem.location {
                                Some(loc) => (
                                    format!("Some({})", Self::location(loc)),
                                    format!(
                                        "Some({})",
                                        lit(mem.location_name.as_deref().unwrap_or(m))
                                    ),
                                ),
                                None => ("None".to_owned(), "None".to_owned()),
                            };
                            format!(
                                "crate::MemberDef {{ name: {}, target: {}, required: {}, location: {location}, \
                                 location_name: {location_name}, idempotency_token: {} }}",
                                lit(m),
                                self.index[mem.shape.as_str()],
                                shape.required.contains(m),
                                mem.idempotency_token
                            )
                        })
                        .collect();
                    let status = match (&shape.error, shape.exception) {
                        (Some(e), true) => format!("Some({})", e.http_status_code),
                        (None, true) => panic!("{name}: exception without an HTTP status"),
                        _ => "None".to_owned(),
                    };
                    format!(
                        "crate::ShapeKind::Structure {{ members: &[{}], union: {}, error_status: {status} }}",
                        members.join(", "),
                        shape.union
                    )
                }
                other => panic!("{name}: unsupported shape type {other}"),
            };
            rows.push(format!(
                "crate::ShapeDef {{ name: {}, sensitive: {}, kind: {kind} }},",
                lit(name),
                shape.sensitive
            ));
        }
        let mut s = String::new();
        for (i, p) in pattern_order.iter().enumerate() {
            let _ = writeln!(
                s,
                "static PATTERN_{i}: crate::Pattern = crate::Pattern::new({});",
                raw_lit(p)
            );
        }
        s.push('\n');
        let _ = writeln!(
            s,
            "/// The constraint table of the `{}` service: every shape, sorted by name; shapes refer to each other by index.",
            self.module
        );
        s.push_str("pub static SHAPES: &[crate::ShapeDef] = &[\n");
        for row in rows {
            s.push_str(&row);
            s.push('\n');
        }
        s.push_str("];\n");
        self.w(&s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(snake_case("customJWTAuthorizer"), "custom_jwt_authorizer");
        assert_eq!(snake_case("coinbaseCDP"), "coinbase_cdp");
        assert_eq!(snake_case("oAuth2"), "o_auth2");
        assert_eq!(snake_case("cryptoX402"), "crypto_x402");
        assert_eq!(
            snake_case("permit2AllowanceLimit"),
            "permit2_allowance_limit"
        );
        assert_eq!(snake_case("s3"), "s3");
        assert_eq!(field_name("type"), "type_");
        assert_eq!(pascal_case("CUSTOM_JWT"), "CustomJwt");
        assert_eq!(pascal_case("CoinbaseCDP"), "CoinbaseCdp");
        assert_eq!(
            pascal_case("AWS_MARKETPLACE_SUBSCRIPTION_REQUIRED"),
            "AwsMarketplaceSubscriptionRequired"
        );
        assert_eq!(pascal_case("customJWTAuthorizer"), "CustomJwtAuthorizer");
        assert_eq!(pascal_case("oAuth2"), "OAuth2");
        assert_eq!(pascal_case("x"), "X");
        assert_eq!(pascal_case("USDC"), "Usdc");
        assert_eq!(pascal_case("2fa"), "V2fa");
    }

    #[test]
    fn raw_literals() {
        assert_eq!(raw_lit(r"[a-z]\d"), r#"r"[a-z]\d""#);
        assert_eq!(raw_lit(r#"a"b"#), r###"r#"a"b"#"###);
    }
}
