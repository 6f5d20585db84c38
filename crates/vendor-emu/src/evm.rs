//! EIP-1559 transactions the vendors sign: CDP takes the unsigned RLP envelope
//! (`0x02 || rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gasLimit, to, value,
//! data, accessList])`), Privy a JSON object. Both answer the signed envelope (the nine
//! fields, then `yParity, r, s`). Encoding reuses `purser_chain::evm_tx`.
use purser_chain::evm_tx::{Eip1559Tx, rlp_list, rlp_uint};
use serde_json::Value;
use sha3::{Digest, Keccak256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TxError(pub String);

/// Splits one RLP item off `b`: (is_list, payload, rest).
fn rlp_item(b: &[u8]) -> Result<(bool, &[u8], &[u8]), TxError> {
    let bad = || TxError("the transaction is not valid RLP".into());
    let (&first, rest) = b.split_first().ok_or_else(bad)?;
    let (is_list, header, len) = match first {
        0x00..=0x7f => return Ok((false, &b[..1], &b[1..])),
        0x80..=0xb7 => (false, 1, usize::from(first - 0x80)),
        0xb8..=0xbf => {
            let n = usize::from(first - 0xb7);
            (false, 1 + n, be_len(rest.get(..n).ok_or_else(bad)?)?)
        }
        0xc0..=0xf7 => (true, 1, usize::from(first - 0xc0)),
        0xf8..=0xff => {
            let n = usize::from(first - 0xf7);
            (true, 1 + n, be_len(rest.get(..n).ok_or_else(bad)?)?)
        }
    };
    let end = header.checked_add(len).ok_or_else(bad)?;
    let payload = b.get(header..end).ok_or_else(bad)?;
    Ok((is_list, payload, &b[end..]))
}

fn be_len(bytes: &[u8]) -> Result<usize, TxError> {
    if bytes.len() > 4 || bytes.first() == Some(&0) {
        return Err(TxError("the transaction is not valid RLP".into()));
    }
    Ok(bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)))
}

/// Signs an unsigned type-2 envelope with `sign` (a digest -> `r || s || v` signer);
/// answers the signed envelope.
pub fn sign_rlp_envelope(
    unsigned: &[u8],
    sign: impl FnOnce(&[u8; 32]) -> [u8; 65],
) -> Result<Vec<u8>, TxError> {
    let body = match unsigned.split_first() {
        Some((0x02, body)) => body,
        _ => {
            return Err(TxError(
                "only EIP-1559 (type 2) transactions are supported".into(),
            ));
        }
    };
    let (is_list, mut payload, rest) = rlp_item(body)?;
    if !is_list || !rest.is_empty() {
        return Err(TxError("the transaction is not an RLP list".into()));
    }
    let mut items = Vec::new();
    while !payload.is_empty() {
        let before = payload;
        let (_, _, rest) = rlp_item(payload)?;
        items.push(before[..before.len() - rest.len()].to_vec());
        payload = rest;
    }
    if items.len() != 9 {
        return Err(TxError(
            "an unsigned EIP-1559 transaction has nine fields".into(),
        ));
    }
    let digest: [u8; 32] = Keccak256::digest(unsigned).into();
    let sig = sign(&digest);
    let y_parity = if sig[64] >= 27 { sig[64] - 27 } else { sig[64] };
    items.push(rlp_uint(&[y_parity]));
    items.push(rlp_uint(&sig[..32]));
    items.push(rlp_uint(&sig[32..64]));
    let mut out = vec![0x02];
    out.extend_from_slice(&rlp_list(&items));
    Ok(out)
}

fn quantity(v: Option<&Value>, name: &str) -> Result<u128, TxError> {
    let v = v.ok_or_else(|| TxError(format!("transaction.{name} is required")))?;
    let bad = || TxError(format!("transaction.{name} is not a quantity"));
    match v {
        Value::Number(n) => n.as_u64().map(u128::from).ok_or_else(bad),
        Value::String(s) => match s.strip_prefix("0x") {
            Some("") => Ok(0),
            Some(h) => u128::from_str_radix(h, 16).map_err(|_| bad()),
            None => s.parse().map_err(|_| bad()),
        },
        _ => Err(bad()),
    }
}

fn narrow(v: u128, name: &str) -> Result<u64, TxError> {
    u64::try_from(v).map_err(|_| TxError(format!("transaction.{name} is too large")))
}

/// A Privy `eth_signTransaction` transaction object (type 2 only; every fee, gas and
/// nonce field given: the emulator reaches no chain to fill them in).
pub fn tx_from_json(tx: &Value) -> Result<Eip1559Tx, TxError> {
    let obj = tx
        .as_object()
        .ok_or_else(|| TxError("transaction is not an object".into()))?;
    let type_2 = obj
        .get("type")
        .is_none_or(|t| t.as_u64() == Some(2) || matches!(t.as_str(), Some("2" | "0x2" | "0x02")));
    if !type_2 {
        return Err(TxError(
            "only EIP-1559 (type 2) transactions are supported".into(),
        ));
    }
    let to_text = obj
        .get("to")
        .and_then(Value::as_str)
        .ok_or_else(|| TxError("transaction.to is required".into()))?;
    let to_bytes = to_text
        .strip_prefix("0x")
        .and_then(|h| hex::decode(h).ok())
        .filter(|b| b.len() == 20)
        .ok_or_else(|| TxError("transaction.to is not an address".into()))?;
    let mut to = [0u8; 20];
    to.copy_from_slice(&to_bytes);
    let data = match obj.get("data").and_then(Value::as_str) {
        None => Vec::new(),
        Some(d) => d
            .strip_prefix("0x")
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| TxError("transaction.data is not 0x hex".into()))?,
    };
    Ok(Eip1559Tx {
        chain_id: narrow(quantity(obj.get("chain_id"), "chain_id")?, "chain_id")?,
        nonce: narrow(quantity(obj.get("nonce"), "nonce")?, "nonce")?,
        max_priority_fee_per_gas: quantity(
            obj.get("max_priority_fee_per_gas"),
            "max_priority_fee_per_gas",
        )?,
        max_fee_per_gas: quantity(obj.get("max_fee_per_gas"), "max_fee_per_gas")?,
        gas_limit: narrow(quantity(obj.get("gas_limit"), "gas_limit")?, "gas_limit")?,
        to,
        value: match obj.get("value") {
            None => 0,
            v => quantity(v, "value")?,
        },
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_rlp_path_and_the_json_path_sign_the_same_transaction() {
        let tx = Eip1559Tx {
            chain_id: 84532,
            nonce: 7,
            max_priority_fee_per_gas: 1_000_000,
            max_fee_per_gas: 2_000_000_000,
            gas_limit: 60_000,
            to: [0x11; 20],
            value: 0,
            data: vec![0x09, 0x5e, 0xa7, 0xb3],
        };
        let sig = [7u8; 65];
        let mut fixed = sig;
        fixed[64] = 28;
        let signed = sign_rlp_envelope(&tx.unsigned_envelope(), |d| {
            assert_eq!(*d, tx.signing_hash());
            fixed
        })
        .unwrap();
        assert_eq!(signed, tx.signed_envelope(&fixed));
        let from_json = tx_from_json(&json!({
            "type": 2, "chain_id": "0x14a34", "nonce": 7, "max_priority_fee_per_gas": "0xf4240",
            "max_fee_per_gas": "2000000000", "gas_limit": 60000,
            "to": format!("0x{}", "11".repeat(20)), "data": "0x095ea7b3"
        }))
        .unwrap();
        assert_eq!(from_json, tx);
    }

    #[test]
    fn malformed_transactions_are_refused() {
        assert!(sign_rlp_envelope(&[0x01, 0xc0], |_| [0; 65]).is_err());
        assert!(sign_rlp_envelope(&[0x02, 0xc1], |_| [0; 65]).is_err());
        assert!(sign_rlp_envelope(&[0x02, 0xc0], |_| [0; 65]).is_err());
        assert!(tx_from_json(&json!({"type": 0, "to": "0x00"})).is_err());
        assert!(tx_from_json(&json!({"to": format!("0x{}", "11".repeat(20))})).is_err());
    }
}
