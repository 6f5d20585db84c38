//! Permit2 witness transfers: the message both x402 `upto` and x402 `exact` through
//! Permit2 (`extra.assetTransferMethod = "permit2"`) sign, following the reference EVM
//! client (`@x402/evm` 2.27.0: `upto/client`, `exact/client/permit2`).
//!
//! The payer signs Uniswap Permit2's `PermitWitnessTransferFrom` as EIP-712 typed data:
//!
//! * domain `{name: "Permit2", chainId, verifyingContract: PERMIT2}` (no version);
//! * `permitted = {token: the USDC contract, amount}` (upto: the maximum);
//! * `spender` = the x402 proxy that may pull the funds ([`EXACT_PROXY`] or
//!   [`UPTO_PROXY`]);
//! * `nonce` = 256 fresh random bits (Permit2's unordered nonces), rendered in decimal;
//! * `deadline = now + maxTimeoutSeconds`;
//! * `witness`: exact `Witness(address to,uint256 validAfter)`, upto
//!   `Witness(address to,address facilitator,uint256 validAfter)`, with `to = payTo`,
//!   `facilitator = extra.facilitatorAddress` and `validAfter = 0` (the reference
//!   client's value).
//!
//! The scheme payload is the reference client's: `{"signature": "0x<r||s||v>",
//! "permit2Authorization": {"from", "permitted": {"token", "amount"}, "spender",
//! "nonce", "deadline", "witness": {"to", ["facilitator",] "validAfter"}}}` with EIP-55
//! addresses and decimal-string numbers.

use serde_json::{Value, json};

use super::{checksum_address, keccak, word_address, word_u128};

/// Uniswap Permit2 (the same address on every chain).
pub const PERMIT2_ADDRESS: &str = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
/// The x402 exact Permit2 proxy (the spender of an exact Permit2 transfer).
pub const EXACT_PROXY: &str = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001";
/// The x402 upto Permit2 proxy (the spender of an upto permit).
pub const UPTO_PROXY: &str = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";

pub(crate) const PERMIT2: [u8; 20] = hex20("000000000022d473030f116ddee9f6b43ac78ba3");
pub(crate) const EXACT_PROXY_BYTES: [u8; 20] = hex20("402085c248eea27d92e8b30b2c58ed07f9e20001");
pub(crate) const UPTO_PROXY_BYTES: [u8; 20] = hex20("4020a4f3b7b90cca423b9fabcc0ce57c6c240002");

const fn hex20(s: &str) -> [u8; 20] {
    const fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not lower-case hex"),
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 20];
    let mut i = 0;
    while i < 20 {
        out[i] = (nib(b[2 * i]) << 4) | nib(b[2 * i + 1]);
        i += 1;
    }
    out
}

const DOMAIN_TYPE: &str = "EIP712Domain(string name,uint256 chainId,address verifyingContract)";
const TOKEN_PERMISSIONS_TYPE: &str = "TokenPermissions(address token,uint256 amount)";
const EXACT_WITNESS_TYPE: &str = "Witness(address to,uint256 validAfter)";
const UPTO_WITNESS_TYPE: &str = "Witness(address to,address facilitator,uint256 validAfter)";
const PERMIT_PREFIX: &str = "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)";

/// One Permit2 `PermitWitnessTransferFrom` message. `facilitator` is `Some` for upto
/// (the upto witness type) and `None` for exact (the exact witness type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permit2Authorization {
    /// The payer (the permit's owner; not part of the signed struct, Permit2 recovers it).
    pub from: [u8; 20],
    /// `permitted.token`.
    pub token: [u8; 20],
    /// `permitted.amount` (upto: the maximum).
    pub amount: u128,
    /// The proxy allowed to use the permit.
    pub spender: [u8; 20],
    /// A 256-bit big-endian nonce.
    pub nonce: [u8; 32],
    /// Unix seconds.
    pub deadline: u64,
    /// `witness.to` (payTo).
    pub to: [u8; 20],
    /// `witness.facilitator` (upto only).
    pub facilitator: Option<[u8; 20]>,
    /// `witness.validAfter`.
    pub valid_after: u64,
}

/// The Permit2 EIP-712 domain separator on `chain_id`.
pub fn permit2_domain_separator(chain_id: u64) -> [u8; 32] {
    let mut buf = Vec::with_capacity(4 * 32);
    buf.extend_from_slice(&keccak(DOMAIN_TYPE.as_bytes()));
    buf.extend_from_slice(&keccak(b"Permit2"));
    buf.extend_from_slice(&word_u128(u128::from(chain_id)));
    buf.extend_from_slice(&word_address(&PERMIT2));
    keccak(&buf)
}

fn struct_hash(a: &Permit2Authorization) -> [u8; 32] {
    let witness_type = if a.facilitator.is_some() {
        UPTO_WITNESS_TYPE
    } else {
        EXACT_WITNESS_TYPE
    };
    // encodeType: the primary type, then the referenced types sorted by name.
    let primary = format!("{PERMIT_PREFIX}{TOKEN_PERMISSIONS_TYPE}{witness_type}");

    let mut permitted = Vec::with_capacity(3 * 32);
    permitted.extend_from_slice(&keccak(TOKEN_PERMISSIONS_TYPE.as_bytes()));
    permitted.extend_from_slice(&word_address(&a.token));
    permitted.extend_from_slice(&word_u128(a.amount));

    let mut witness = Vec::with_capacity(4 * 32);
    witness.extend_from_slice(&keccak(witness_type.as_bytes()));
    witness.extend_from_slice(&word_address(&a.to));
    if let Some(f) = &a.facilitator {
        witness.extend_from_slice(&word_address(f));
    }
    witness.extend_from_slice(&word_u128(u128::from(a.valid_after)));

    let mut buf = Vec::with_capacity(6 * 32);
    buf.extend_from_slice(&keccak(primary.as_bytes()));
    buf.extend_from_slice(&keccak(&permitted));
    buf.extend_from_slice(&word_address(&a.spender));
    buf.extend_from_slice(&a.nonce);
    buf.extend_from_slice(&word_u128(u128::from(a.deadline)));
    buf.extend_from_slice(&keccak(&witness));
    keccak(&buf)
}

/// The EIP-712 digest the payer signs:
/// `keccak256(0x19 0x01 || permit2DomainSeparator(chainId) || hashStruct(message))`.
pub fn permit2_digest(chain_id: u64, a: &Permit2Authorization) -> [u8; 32] {
    let mut buf = [0u8; 66];
    buf[0] = 0x19;
    buf[1] = 0x01;
    buf[2..34].copy_from_slice(&permit2_domain_separator(chain_id));
    buf[34..].copy_from_slice(&struct_hash(a));
    keccak(&buf)
}

/// The same message as `eth_signTypedData_v4` JSON (for wallet services that sign typed
/// data): numbers as decimal strings except `domain.chainId`.
pub fn permit2_typed_data(chain_id: u64, a: &Permit2Authorization) -> Value {
    let mut witness_fields = vec![json!({"name": "to", "type": "address"})];
    if a.facilitator.is_some() {
        witness_fields.push(json!({"name": "facilitator", "type": "address"}));
    }
    witness_fields.push(json!({"name": "validAfter", "type": "uint256"}));
    let auth = authorization_json(a);
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "PermitWitnessTransferFrom": [
                {"name": "permitted", "type": "TokenPermissions"},
                {"name": "spender", "type": "address"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
                {"name": "witness", "type": "Witness"},
            ],
            "TokenPermissions": [
                {"name": "token", "type": "address"},
                {"name": "amount", "type": "uint256"},
            ],
            "Witness": witness_fields,
        },
        "primaryType": "PermitWitnessTransferFrom",
        "domain": {
            "name": "Permit2",
            "chainId": chain_id,
            "verifyingContract": PERMIT2_ADDRESS,
        },
        "message": {
            "permitted": auth["permitted"],
            "spender": auth["spender"],
            "nonce": auth["nonce"],
            "deadline": auth["deadline"],
            "witness": auth["witness"],
        },
    })
}

fn authorization_json(a: &Permit2Authorization) -> Value {
    let witness = match &a.facilitator {
        Some(f) => json!({
            "to": checksum_address(&a.to),
            "facilitator": checksum_address(f),
            "validAfter": a.valid_after.to_string(),
        }),
        None => json!({
            "to": checksum_address(&a.to),
            "validAfter": a.valid_after.to_string(),
        }),
    };
    json!({
        "from": checksum_address(&a.from),
        "permitted": {
            "token": checksum_address(&a.token),
            "amount": a.amount.to_string(),
        },
        "spender": checksum_address(&a.spender),
        "nonce": u256_to_decimal(&a.nonce),
        "deadline": a.deadline.to_string(),
        "witness": witness,
    })
}

/// The scheme payload (`paymentOutput.cryptoX402.payload`), shaped as the reference
/// client's: `{"signature", "permit2Authorization"}`.
pub fn permit2_payload(a: &Permit2Authorization, signature: &[u8; 65]) -> Value {
    json!({
        "signature": format!("0x{}", hex::encode(signature)),
        "permit2Authorization": authorization_json(a),
    })
}

/// A 256-bit big-endian number in decimal.
pub fn u256_to_decimal(n: &[u8; 32]) -> String {
    let mut digits = Vec::new();
    let mut num = *n;
    while num.iter().any(|b| *b != 0) {
        let mut rem: u32 = 0;
        for byte in num.iter_mut() {
            let cur = (rem << 8) | u32::from(*byte);
            *byte = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        return "0".to_string();
    }
    digits.reverse();
    String::from_utf8(digits).expect("ASCII digits")
}

/// ASCII decimal digits as a 256-bit big-endian number; `None` when not digits or above
/// 2^256 - 1.
pub fn u256_from_decimal(s: &str) -> Option<[u8; 32]> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for d in s.bytes() {
        let mut carry = u32::from(d - b'0');
        for byte in out.iter_mut().rev() {
            let cur = u32::from(*byte) * 10 + carry;
            *byte = (cur & 0xff) as u8;
            carry = cur >> 8;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trips() {
        assert_eq!(u256_to_decimal(&[0u8; 32]), "0");
        assert_eq!(
            u256_to_decimal(&[0xff; 32]),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        );
        assert_eq!(
            u256_from_decimal(
                "115792089237316195423570985008687907853269984665640564039457584007913129639935"
            ),
            Some([0xff; 32])
        );
        assert_eq!(
            u256_from_decimal(
                "115792089237316195423570985008687907853269984665640564039457584007913129639936"
            ),
            None
        );
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(u256_from_decimal("0001"), Some(one));
        assert_eq!(u256_to_decimal(&one), "1");
        let mut n = [0u8; 32];
        n[16..].copy_from_slice(&1_000_000u128.to_be_bytes());
        assert_eq!(u256_to_decimal(&n), "1000000");
        assert_eq!(u256_from_decimal("1000000"), Some(n));
        assert_eq!(u256_from_decimal(""), None);
        assert_eq!(u256_from_decimal("1a"), None);
    }

    #[test]
    fn addresses() {
        assert_eq!(checksum_address(&PERMIT2), PERMIT2_ADDRESS);
        assert_eq!(checksum_address(&EXACT_PROXY_BYTES), EXACT_PROXY);
        assert_eq!(checksum_address(&UPTO_PROXY_BYTES), UPTO_PROXY);
    }
}
