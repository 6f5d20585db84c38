//! EIP-712 typed data (`eth_signTypedData_v4`): the signing digest of a JSON typed-data
//! object, `keccak256(0x19 0x01 || hashStruct(EIP712Domain, domain) || hashStruct(primary,
//! message))`, for any struct types (atomic, `string`/`bytes`, nested structs, arrays).
//!
//! When `types` does not define `EIP712Domain`, it is derived from the domain fields
//! present (name, version, chainId, verifyingContract, salt), as viem and ethers do.
//! Integers may be JSON numbers, decimal strings or 0x-hex strings.
use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};
use sha3::{Digest, Keccak256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TypedDataError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, TypedDataError> {
    Err(TypedDataError(msg.into()))
}

type Types = HashMap<String, Vec<(String, String)>>;

fn keccak(b: &[u8]) -> [u8; 32] {
    Keccak256::digest(b).into()
}

/// The digest to sign for `typed`, an object `{domain, types, primaryType | primary_type,
/// message}`.
pub fn signing_digest(typed: &Value) -> Result<[u8; 32], TypedDataError> {
    let obj = typed
        .as_object()
        .ok_or_else(|| TypedDataError("typedData is not an object".into()))?;
    let domain = obj
        .get("domain")
        .and_then(Value::as_object)
        .ok_or_else(|| TypedDataError("typedData.domain is not an object".into()))?;
    let primary = obj
        .get("primaryType")
        .or_else(|| obj.get("primary_type"))
        .and_then(Value::as_str)
        .ok_or_else(|| TypedDataError("typedData.primaryType is missing".into()))?;
    let message = obj
        .get("message")
        .ok_or_else(|| TypedDataError("typedData.message is missing".into()))?;
    let mut types = parse_types(obj.get("types"))?;
    if !types.contains_key("EIP712Domain") {
        types.insert("EIP712Domain".into(), derived_domain_type(domain));
    }
    if !types.contains_key(primary) {
        return err(format!("typedData.types has no {primary}"));
    }
    let domain_hash = hash_struct(&types, "EIP712Domain", &Value::Object(domain.clone()))?;
    let mut input = vec![0x19, 0x01];
    input.extend_from_slice(&domain_hash);
    if primary != "EIP712Domain" {
        input.extend_from_slice(&hash_struct(&types, primary, message)?);
    }
    Ok(keccak(&input))
}

fn parse_types(v: Option<&Value>) -> Result<Types, TypedDataError> {
    let map = v
        .and_then(Value::as_object)
        .ok_or_else(|| TypedDataError("typedData.types is not an object".into()))?;
    let mut out = Types::new();
    for (name, fields) in map {
        let fields = fields
            .as_array()
            .ok_or_else(|| TypedDataError(format!("typedData.types.{name} is not a list")))?;
        let mut list = Vec::new();
        for f in fields {
            let (Some(n), Some(t)) = (
                f.get("name").and_then(Value::as_str),
                f.get("type").and_then(Value::as_str),
            ) else {
                return err(format!(
                    "a field of typedData.types.{name} lacks name or type"
                ));
            };
            list.push((n.to_string(), t.to_string()));
        }
        out.insert(name.clone(), list);
    }
    Ok(out)
}

fn derived_domain_type(domain: &Map<String, Value>) -> Vec<(String, String)> {
    [
        ("name", "string"),
        ("version", "string"),
        ("chainId", "uint256"),
        ("verifyingContract", "address"),
        ("salt", "bytes32"),
    ]
    .iter()
    .filter(|(n, _)| domain.get(*n).is_some_and(|v| !v.is_null()))
    .map(|(n, t)| (n.to_string(), t.to_string()))
    .collect()
}

fn base_type(t: &str) -> &str {
    t.split('[').next().unwrap_or(t)
}

fn collect_deps(types: &Types, name: &str, out: &mut BTreeSet<String>) {
    if out.contains(name) {
        return;
    }
    let Some(fields) = types.get(name) else {
        return;
    };
    out.insert(name.to_string());
    for (_, t) in fields {
        collect_deps(types, base_type(t), out);
    }
}

fn encode_type(types: &Types, primary: &str) -> String {
    let mut deps = BTreeSet::new();
    collect_deps(types, primary, &mut deps);
    deps.remove(primary);
    let mut out = String::new();
    for name in std::iter::once(primary).chain(deps.iter().map(String::as_str)) {
        let fields = &types[name];
        out.push_str(name);
        out.push('(');
        let list: Vec<String> = fields.iter().map(|(n, t)| format!("{t} {n}")).collect();
        out.push_str(&list.join(","));
        out.push(')');
    }
    out
}

fn hash_struct(types: &Types, name: &str, value: &Value) -> Result<[u8; 32], TypedDataError> {
    let fields = types
        .get(name)
        .ok_or_else(|| TypedDataError(format!("unknown type {name}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| TypedDataError(format!("a {name} value is not an object")))?;
    let mut enc = keccak(encode_type(types, name).as_bytes()).to_vec();
    for (fname, ftype) in fields {
        let v = obj.get(fname).unwrap_or(&Value::Null);
        if v.is_null() {
            return err(format!("{name}.{fname} is missing"));
        }
        enc.extend_from_slice(&encode_value(types, ftype, v, fname)?);
    }
    Ok(keccak(&enc))
}

fn encode_value(
    types: &Types,
    ty: &str,
    v: &Value,
    field: &str,
) -> Result<[u8; 32], TypedDataError> {
    if let Some(inner) = ty.strip_suffix(']') {
        let open = inner
            .rfind('[')
            .ok_or_else(|| TypedDataError(format!("bad array type {ty}")))?;
        let (elem, len) = (&inner[..open], &inner[open + 1..]);
        let items = v
            .as_array()
            .ok_or_else(|| TypedDataError(format!("{field} is not a list")))?;
        if !len.is_empty() && len.parse::<usize>().ok() != Some(items.len()) {
            return err(format!("{field} does not have {len} items"));
        }
        let mut enc = Vec::with_capacity(items.len() * 32);
        for item in items {
            enc.extend_from_slice(&encode_value(types, elem, item, field)?);
        }
        return Ok(keccak(&enc));
    }
    if types.contains_key(ty) {
        return hash_struct(types, ty, v);
    }
    match ty {
        "string" => {
            let s = v
                .as_str()
                .ok_or_else(|| TypedDataError(format!("{field} is not a string")))?;
            Ok(keccak(s.as_bytes()))
        }
        "bytes" => Ok(keccak(&hex_bytes(v, field)?)),
        "bool" => {
            let b = match v {
                Value::Bool(b) => *b,
                Value::String(s) if s == "true" => true,
                Value::String(s) if s == "false" => false,
                _ => return err(format!("{field} is not a bool")),
            };
            let mut out = [0u8; 32];
            out[31] = b as u8;
            Ok(out)
        }
        "address" => {
            let b = hex_bytes(v, field)?;
            if b.len() != 20 {
                return err(format!("{field} is not a 20-byte address"));
            }
            let mut out = [0u8; 32];
            out[12..].copy_from_slice(&b);
            Ok(out)
        }
        t if t.starts_with("bytes") => {
            let n: usize = t[5..]
                .parse()
                .ok()
                .filter(|n| (1..=32).contains(n))
                .ok_or_else(|| TypedDataError(format!("unknown type {t}")))?;
            let b = hex_bytes(v, field)?;
            if b.len() != n {
                return err(format!("{field} is not {n} bytes"));
            }
            let mut out = [0u8; 32];
            out[..n].copy_from_slice(&b);
            Ok(out)
        }
        t if t.starts_with("uint") || t.starts_with("int") => {
            let signed = t.starts_with("int");
            let bits: u32 = t[if signed { 3 } else { 4 }..]
                .parse()
                .ok()
                .filter(|b| *b % 8 == 0 && (8..=256).contains(b))
                .ok_or_else(|| TypedDataError(format!("unknown type {t}")))?;
            int_word(v, signed, bits, field)
        }
        t => err(format!("unknown type {t}")),
    }
}

fn hex_bytes(v: &Value, field: &str) -> Result<Vec<u8>, TypedDataError> {
    let s = v
        .as_str()
        .ok_or_else(|| TypedDataError(format!("{field} is not a 0x hex string")))?;
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(|| TypedDataError(format!("{field} is not a 0x hex string")))?;
    hex::decode(h).map_err(|_| TypedDataError(format!("{field} is not a 0x hex string")))
}

/// A 256-bit two's-complement word from a number, decimal string or 0x string.
fn int_word(v: &Value, signed: bool, bits: u32, field: &str) -> Result<[u8; 32], TypedDataError> {
    let bad = || TypedDataError(format!("{field} is not an integer of its type"));
    let text = match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().ok_or_else(bad)?;
                if f.fract() != 0.0 || f.abs() > 9_007_199_254_740_992.0 {
                    return Err(bad());
                }
                (f as i64).to_string()
            }
        }
        Value::String(s) => s.trim().to_string(),
        _ => return Err(bad()),
    };
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let mut word = [0u8; 32];
    if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        if h.is_empty() || h.len() > 64 {
            return Err(bad());
        }
        let padded = format!("{h:0>64}");
        word.copy_from_slice(&hex::decode(padded).map_err(|_| bad())?);
    } else {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        for d in digits.bytes() {
            // word = word * 10 + d
            let mut carry = u32::from(d - b'0');
            for byte in word.iter_mut().rev() {
                let x = u32::from(*byte) * 10 + carry;
                *byte = (x & 0xff) as u8;
                carry = x >> 8;
            }
            if carry != 0 {
                return Err(bad());
            }
        }
    }
    // Range: unsigned < 2^bits; signed -2^(bits-1) <= x < 2^(bits-1).
    let magnitude_bits = 256 - leading_zero_bits(&word);
    let is_zero = magnitude_bits == 0;
    if negative && !signed && !is_zero {
        return Err(bad());
    }
    let limit = if signed { bits - 1 } else { bits };
    let at_min = negative && magnitude_bits == limit + 1 && is_power_of_two(&word);
    if magnitude_bits > limit && !at_min {
        return Err(bad());
    }
    if negative && !is_zero {
        // Two's complement over 256 bits.
        for b in word.iter_mut() {
            *b = !*b;
        }
        for b in word.iter_mut().rev() {
            let (x, overflow) = b.overflowing_add(1);
            *b = x;
            if !overflow {
                break;
            }
        }
    }
    Ok(word)
}

fn leading_zero_bits(w: &[u8; 32]) -> u32 {
    let mut n = 0;
    for b in w {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

fn is_power_of_two(w: &[u8; 32]) -> bool {
    w.iter().map(|b| b.count_ones()).sum::<u32>() == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The worked example of EIP-712 (the `Mail` message); its digest is published there.
    #[test]
    fn eip712_mail_example_digest() {
        let typed = json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"}
                ],
                "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
                "Mail": [
                    {"name": "from", "type": "Person"},
                    {"name": "to", "type": "Person"},
                    {"name": "contents", "type": "string"}
                ]
            },
            "primaryType": "Mail",
            "domain": {
                "name": "Ether Mail", "version": "1", "chainId": 1,
                "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
            },
            "message": {
                "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                "contents": "Hello, Bob!"
            }
        });
        assert_eq!(
            hex::encode(signing_digest(&typed).unwrap()),
            "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
        );
        // Without an EIP712Domain type, the domain type is derived: same digest.
        let mut derived = typed.clone();
        derived["types"]
            .as_object_mut()
            .unwrap()
            .remove("EIP712Domain");
        assert_eq!(
            signing_digest(&derived).unwrap(),
            signing_digest(&typed).unwrap()
        );
    }

    #[test]
    fn integers_in_every_form_and_range() {
        let w = |v: Value, signed: bool, bits: u32| int_word(&v, signed, bits, "f");
        assert_eq!(w(json!(255), false, 8).unwrap()[31], 255);
        assert!(w(json!(256), false, 8).is_err());
        assert_eq!(w(json!("0xff"), false, 256).unwrap()[31], 255);
        assert_eq!(
            w(json!("1000000"), false, 256).unwrap()[29..],
            [0x0f, 0x42, 0x40]
        );
        assert_eq!(w(json!(-1), true, 8).unwrap(), [0xff; 32]);
        assert!(w(json!(-129), true, 8).is_err());
        assert_eq!(w(json!(-128), true, 8).unwrap()[31], 0x80);
        assert!(w(json!(128), true, 8).is_err());
        assert!(w(json!(-1), false, 256).is_err());
        assert!(w(json!("12a"), false, 256).is_err());
        assert!(w(json!(1.5), false, 256).is_err());
    }
}
