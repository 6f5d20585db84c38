//! `x402`: `purser_chain::x402::parse_exact_evm` and `parse_requirement` (every
//! x402 kind: EIP-3009 exact, Permit2 exact, upto) on arbitrary and on
//! near-valid requirements, and what is built from an accepted one.
//!
//! The first input byte picks the mode:
//! * even: the rest is JSON text (anything: `serde_json` decides), with the
//!   version and `permit2AllowanceLimit` taken from the first byte's bits;
//! * odd: the rest feeds `arbitrary` to build a [`NearValid`] requirement: a
//!   valid one for a random chain, with random perturbations of each member.
//!
//! Every input is also read as an MPP `WWW-Authenticate` challenge
//! (`purser_chain::payment::parse` with `paymentType` MPP): it never panics,
//! and an error names a field under `paymentInput.mpp`.
//!
//! Invariants:
//! * nothing panics (parsing, `authorization_for`, the EIP-712 digest and typed
//!   data, `exact_evm_payload`, `x402_header`);
//! * an error's `field` is under `paymentInput.cryptoX402` and its message
//!   names the field;
//! * `parse_requirement`: errors as above; an accepted requirement is on an EVM
//!   chain, debits what it pays (> 0), is `exact` or `upto` (v2 only);
//! * an accepted requirement is consistent: EVM chain, amount > 0, timeout in
//!   1..=24 h, the chain's USDC asset, a checksummed non-zero `payTo`, and an
//!   accepted requirement stays accepted (same result) when re-parsed.

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use purser_chain::x402::{
    MAX_DOMAIN_FIELD_LEN, MAX_TIMEOUT_SECONDS, authorization_for, checksum_address,
    exact_evm_payload, parse_exact_evm, transfer_with_authorization_digest,
    transfer_with_authorization_typed_data, x402_header,
};
use purser_chain::{Chain, Family};
use serde_json::{Map, Value, json};

/// The whole check for one fuzz input.
pub fn check(data: &[u8]) {
    check_mpp(data);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let version = match (mode >> 1) & 3 {
            0 => "1",
            1 => "2",
            2 => "3",
            _ => "",
        };
        let permit2 = (mode & 0x10 != 0).then_some("1000000");
        let payload = serde_json::from_slice::<Value>(rest)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(rest).into_owned()));
        run(version, &payload, permit2, &mut Unstructured::new(&[]));
    } else {
        let mut u = Unstructured::new(rest);
        let Ok(nv) = NearValid::arbitrary(&mut u) else {
            return;
        };
        let (version, payload, permit2) = nv.build();
        run(&version, &payload, permit2.as_deref(), &mut u);
    }
}

/// Every kind, through the dispatcher ProcessPayment uses.
fn run_any_kind(version: &str, payload: &Value, permit2: Option<&str>) {
    match purser_chain::x402::parse_requirement(version, payload, permit2) {
        Err(e) => {
            assert!(
                e.field.starts_with("paymentInput.cryptoX402"),
                "error field outside the x402 input: {e:?}"
            );
            assert!(
                e.message.contains(&e.field),
                "message does not name its field: {e:?}"
            );
        }
        Ok(r) => {
            // upto is EVM only; exact is EVM (EIP-3009, Permit2) or Solana.
            if r.scheme == "upto" {
                assert_eq!(r.chain.family(), Family::Ethereum, "{r:?}");
            }
            assert!(r.amount > 0, "{r:?}");
            assert_eq!(r.debit, r.amount, "{r:?}");
            assert!(r.scheme == "exact" || r.scheme == "upto", "{r:?}");
            if r.scheme == "upto" {
                assert_eq!(r.version, "2", "{r:?}");
            } else {
                assert!(permit2.is_none(), "{r:?}");
            }
            assert!(
                r.asset.eq_ignore_ascii_case(r.chain.usdc_address()),
                "{r:?}"
            );
        }
    }
}

fn run(version: &str, payload: &Value, permit2: Option<&str>, u: &mut Unstructured<'_>) {
    run_any_kind(version, payload, permit2);
    let req = match parse_exact_evm(version, payload, permit2) {
        Err(e) => {
            assert!(
                e.field.starts_with("paymentInput.cryptoX402"),
                "error field outside the x402 input: {e:?}"
            );
            assert!(
                e.message.contains(&e.field),
                "message does not name its field: {e:?}"
            );
            return;
        }
        Ok(req) => req,
    };

    // The accepted requirement is consistent.
    assert_eq!(req.chain.family(), Family::Ethereum, "{req:?}");
    assert!(req.version == 1 || req.version == 2, "{req:?}");
    assert!(req.amount > 0, "{req:?}");
    assert!(
        (1..=MAX_TIMEOUT_SECONDS).contains(&req.max_timeout_seconds),
        "{req:?}"
    );
    assert!(
        req.asset.eq_ignore_ascii_case(req.chain.usdc_address()),
        "{req:?}"
    );
    assert!(!req.domain_name.is_empty() && req.domain_name.len() <= MAX_DOMAIN_FIELD_LEN);
    assert!(!req.domain_version.is_empty() && req.domain_version.len() <= MAX_DOMAIN_FIELD_LEN);
    let pay_to = parse_address(&req.pay_to).expect("pay_to is an address");
    assert_ne!(pay_to, [0u8; 20], "{req:?}");
    assert_eq!(
        checksum_address(&pay_to),
        req.pay_to,
        "pay_to is not checksummed"
    );
    assert_eq!(req.chain_id(), req.chain.evm_chain_id().unwrap());
    // Parsing is deterministic.
    assert_eq!(
        parse_exact_evm(version, payload, permit2).as_ref(),
        Ok(&req)
    );

    // What the server builds from it.
    let from: [u8; 20] = u.arbitrary().unwrap_or([0x11; 20]);
    let now: u64 = u.arbitrary().unwrap_or(1_763_915_073);
    let nonce: [u8; 32] = u.arbitrary().unwrap_or([0x22; 32]);
    let signature: [u8; 65] = u.arbitrary().unwrap_or([0x33; 65]);
    let auth = authorization_for(&req, from, now, nonce);
    assert_eq!(auth.to, pay_to);
    assert_eq!(auth.value, req.amount);
    assert!(auth.valid_after <= auth.valid_before, "{auth:?}");
    let _digest = transfer_with_authorization_digest(&req, &auth);
    let typed = transfer_with_authorization_typed_data(&req, &auth);
    assert_eq!(typed["message"]["value"], json!(req.amount.to_string()));
    let scheme_payload = exact_evm_payload(&auth, &signature);
    assert_eq!(
        scheme_payload["signature"].as_str().map(str::len),
        Some(132),
        "{scheme_payload}"
    );
    let header = x402_header(req.version, payload, &scheme_payload);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&header)
        .expect("the header is base64");
    match serde_json::from_slice::<Value>(&decoded) {
        Ok(envelope) => assert_eq!(envelope["payload"], scheme_payload),
        // The structured mode can nest `other` members deeper than a request
        // body may (serde_json's limit of 128); the header is still JSON.
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => {}
        Err(e) => panic!("the header is not JSON: {e}"),
    }
}

fn parse_address(s: &str) -> Option<[u8; 20]> {
    let hex_part = s.strip_prefix("0x")?;
    let mut out = [0u8; 20];
    hex::decode_to_slice(hex_part, &mut out).ok()?;
    Some(out)
}

/// The x402 networks to pick from: every chain under both spellings, plus a
/// few that must be rejected.
fn network_names() -> Vec<String> {
    let mut out = Vec::new();
    for c in Chain::ALL {
        out.push(c.x402_v1_network().to_owned());
        out.push(c.caip2().to_owned());
    }
    out.extend(
        [
            "eip155:10",
            "eip155:",
            "solana:",
            "base-mainnet",
            "EIP155:8453",
        ]
        .map(String::from),
    );
    out
}

/// A requirement built from a valid one, each member possibly perturbed.
#[derive(Debug, Arbitrary)]
pub struct NearValid {
    version: Version,
    /// Index into [`network_names`].
    network: u8,
    /// Which chain's values (asset, domain) to use: usually the network's own.
    values_from_other_chain: Option<u8>,
    scheme: Member<Scheme>,
    network_member: Member<()>,
    amount_v1: Member<u128>,
    amount_v2: Member<u128>,
    asset: Member<AddressCase>,
    pay_to: Member<PayTo>,
    timeout: Member<Timeout>,
    extra: Member<()>,
    extra_name: Member<()>,
    extra_version: Member<()>,
    /// `extra.facilitatorAddress` (upto).
    extra_facilitator: Member<[u8; 20]>,
    /// `extra.assetTransferMethod`.
    extra_method: Member<Method>,
    permit2: Option<String>,
    /// Unrelated members, as a real PaymentRequirements has (`resource`, ...).
    other: Vec<(String, SmallJson)>,
}

#[derive(Debug, Arbitrary)]
enum Version {
    One,
    Two,
    Other(String),
}

/// How a member appears.
#[derive(Debug, Arbitrary)]
enum Member<T> {
    /// The valid value built from `T`.
    Valid(T),
    /// The valid value, perturbed.
    Perturbed(T, Perturb),
    Missing,
    Null,
    /// Any other JSON value.
    Json(SmallJson),
}

#[derive(Debug, Arbitrary)]
enum Perturb {
    Upper,
    Lower,
    Truncate(u8),
    Append(String),
    Prefix(String),
    ReplaceChar(u8, char),
    Pad,
    AsNumber,
    Empty,
}

#[derive(Debug, Arbitrary)]
enum Scheme {
    Exact,
    Upto,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Method {
    Permit2,
    Eip3009,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum AddressCase {
    AsIs,
    Lower,
    Upper,
}

#[derive(Debug, Arbitrary)]
struct PayTo {
    address: [u8; 20],
    case: PayToCase,
}

#[derive(Debug, Arbitrary)]
enum PayToCase {
    Checksummed,
    Lower,
    Upper,
    /// The checksummed form with the case of one hex letter flipped.
    FlipOne(u8),
}

#[derive(Debug, Arbitrary)]
enum Timeout {
    Number(u64),
    Text(u64),
    Small(u16),
}

/// A small arbitrary JSON value (depth-limited by `arbitrary`'s input size).
#[derive(Debug, Arbitrary)]
pub enum SmallJson {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Arr(Vec<SmallJson>),
    Obj(Vec<(String, SmallJson)>),
}

impl SmallJson {
    fn to_value(&self) -> Value {
        match self {
            SmallJson::Null => Value::Null,
            SmallJson::Bool(b) => Value::Bool(*b),
            SmallJson::Int(i) => json!(i),
            SmallJson::UInt(u) => json!(u),
            SmallJson::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            SmallJson::Str(s) => Value::String(s.clone()),
            SmallJson::Arr(a) => Value::Array(a.iter().map(SmallJson::to_value).collect()),
            SmallJson::Obj(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), v.to_value())).collect())
            }
        }
    }
}

impl Perturb {
    fn apply(&self, valid: Value) -> Value {
        let Value::String(s) = valid else {
            return match self {
                Perturb::AsNumber => valid,
                _ => Value::String(valid.to_string()),
            };
        };
        Value::String(match self {
            Perturb::Upper => s.to_uppercase(),
            Perturb::Lower => s.to_lowercase(),
            Perturb::Truncate(n) => s
                .chars()
                .take(usize::from(*n) % (s.chars().count() + 1))
                .collect(),
            Perturb::Append(t) => format!("{s}{t}"),
            Perturb::Prefix(t) => format!("{t}{s}"),
            Perturb::ReplaceChar(i, c) => {
                let n = s.chars().count().max(1);
                let i = usize::from(*i) % n;
                s.chars()
                    .enumerate()
                    .map(|(j, d)| if j == i { *c } else { d })
                    .collect()
            }
            Perturb::Pad => format!(" {s} "),
            Perturb::AsNumber => {
                return s
                    .parse::<u64>()
                    .map(Value::from)
                    .or_else(|_| s.parse::<f64>().map(|f| json!(f)))
                    .unwrap_or(Value::String(s));
            }
            Perturb::Empty => String::new(),
        })
    }
}

impl<T> Member<T> {
    /// Inserts the member into `obj` as `name`, building the valid value with `valid`.
    fn put(&self, obj: &mut Map<String, Value>, name: &str, valid: impl Fn(&T) -> Value) {
        let v = match self {
            Member::Valid(t) => valid(t),
            Member::Perturbed(t, p) => p.apply(valid(t)),
            Member::Missing => return,
            Member::Null => Value::Null,
            Member::Json(j) => j.to_value(),
        };
        obj.insert(name.to_owned(), v);
    }
}

impl NearValid {
    /// `(version, requirement, permit2AllowanceLimit)`.
    pub fn build(&self) -> (String, Value, Option<String>) {
        let names = network_names();
        let network = &names[usize::from(self.network) % names.len()];
        let own = Chain::from_x402_network(network).unwrap_or(Chain::BaseSepolia);
        let chain = match self.values_from_other_chain {
            Some(i) => Chain::ALL[usize::from(i) % Chain::ALL.len()],
            None => own,
        };
        let domain = chain.usdc_eip712_domain();
        let mut obj = Map::new();
        self.scheme.put(&mut obj, "scheme", |s| match s {
            Scheme::Exact => json!("exact"),
            Scheme::Upto => json!("upto"),
            Scheme::Other(o) => json!(o),
        });
        self.network_member
            .put(&mut obj, "network", |_| json!(network));
        self.amount_v1
            .put(&mut obj, "maxAmountRequired", |a| json!(a.to_string()));
        self.amount_v2
            .put(&mut obj, "amount", |a| json!(a.to_string()));
        self.asset.put(&mut obj, "asset", |c| {
            let a = chain.usdc_address();
            json!(match c {
                AddressCase::AsIs => a.to_owned(),
                AddressCase::Lower => a.to_lowercase(),
                AddressCase::Upper => format!("0x{}", a[2..].to_uppercase()),
            })
        });
        self.pay_to.put(&mut obj, "payTo", |p| {
            let sum = checksum_address(&p.address);
            json!(match p.case {
                PayToCase::Checksummed => sum,
                PayToCase::Lower => sum.to_lowercase(),
                PayToCase::Upper => format!("0x{}", sum[2..].to_uppercase()),
                PayToCase::FlipOne(i) => {
                    let i = 2 + usize::from(i) % 40;
                    sum.char_indices()
                        .map(|(j, c)| {
                            if j != i {
                                c
                            } else if c.is_ascii_uppercase() {
                                c.to_ascii_lowercase()
                            } else {
                                c.to_ascii_uppercase()
                            }
                        })
                        .collect()
                }
            })
        });
        self.timeout
            .put(&mut obj, "maxTimeoutSeconds", |t| match t {
                Timeout::Number(n) => json!(n),
                Timeout::Text(n) => json!(n.to_string()),
                Timeout::Small(n) => json!(n),
            });
        let mut extra = Map::new();
        self.extra_name.put(&mut extra, "name", |_| {
            json!(domain.map_or("USDC", |d| d.name))
        });
        self.extra_version.put(&mut extra, "version", |_| {
            json!(domain.map_or("2", |d| d.version))
        });
        self.extra_facilitator
            .put(&mut extra, "facilitatorAddress", |a| {
                json!(checksum_address(a))
            });
        self.extra_method
            .put(&mut extra, "assetTransferMethod", |m| match m {
                Method::Permit2 => json!("permit2"),
                Method::Eip3009 => json!("eip3009"),
                Method::Other(o) => json!(o),
            });
        self.extra
            .put(&mut obj, "extra", |_| Value::Object(extra.clone()));
        for (k, v) in &self.other {
            obj.entry(k.clone()).or_insert_with(|| v.to_value());
        }
        let version = match &self.version {
            Version::One => "1".to_owned(),
            Version::Two => "2".to_owned(),
            Version::Other(s) => s.clone(),
        };
        (version, Value::Object(obj), self.permit2.clone())
    }
}

/// The input as the one MPP challenge of a ProcessPayment.
fn check_mpp(data: &[u8]) {
    use purser_chain::payment::{PaymentInput, parse};
    let header = String::from_utf8_lossy(data).into_owned();
    let input = PaymentInput::Mpp {
        version: "1".into(),
        www_authenticate_headers: vec![header],
        buyer_pays_gas_fees: None,
    };
    if let Err(e) = parse(&input) {
        assert!(
            e.field.starts_with("paymentInput.mpp"),
            "error field outside the MPP input: {e:?}"
        );
        assert!(!e.message.is_empty());
    }
}
