//! Signing a Solana transaction (legacy or v0) as a wallet vendor does: the wallet's
//! ed25519 signature over the message bytes goes into the signature slot of the wallet's
//! account key; the other slots are left as they are.
//!
//! Wire format: `shortvec(n) || n * 64-byte signatures || message`; the message starts with
//! an optional version byte (`0x80 | version`), then the header `[numRequiredSignatures,
//! numReadonlySigned, numReadonlyUnsigned]`, then `shortvec(k) || k * 32-byte keys`. The
//! first `numRequiredSignatures` keys sign, in slot order.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SolanaTxError(pub String);

fn shortvec(b: &[u8]) -> Result<(usize, usize), SolanaTxError> {
    let mut value = 0usize;
    for (i, byte) in b.iter().take(3).enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(SolanaTxError(
        "the transaction has a bad length prefix".into(),
    ))
}

/// Puts `sign(message)` into the slot of `signer` (a 32-byte public key) in `tx`.
pub fn sign_transaction(
    tx: &[u8],
    signer: &[u8; 32],
    sign: impl FnOnce(&[u8]) -> [u8; 64],
) -> Result<Vec<u8>, SolanaTxError> {
    let bad = |m: &str| SolanaTxError(m.to_string());
    let (n_sigs, prefix) = shortvec(tx)?;
    let message_start = prefix
        .checked_add(
            n_sigs
                .checked_mul(64)
                .ok_or_else(|| bad("too many signatures"))?,
        )
        .ok_or_else(|| bad("too many signatures"))?;
    let message = tx
        .get(message_start..)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("the transaction is shorter than its signatures"))?;
    let header_at = usize::from(message[0] & 0x80 != 0);
    if header_at == 1 && message[0] != 0x80 {
        return Err(bad("only legacy and v0 transactions are supported"));
    }
    let header = message
        .get(header_at..header_at + 3)
        .ok_or_else(|| bad("the message has no header"))?;
    let required = usize::from(header[0]);
    if required != n_sigs {
        return Err(bad(
            "the transaction's signature count differs from its message header",
        ));
    }
    let (n_keys, kp) = shortvec(&message[header_at + 3..])?;
    let keys_at = header_at + 3 + kp;
    let keys = message
        .get(keys_at..keys_at + n_keys * 32)
        .ok_or_else(|| bad("the message is shorter than its account keys"))?;
    let slot = keys
        .chunks_exact(32)
        .take(required)
        .position(|k| k == signer)
        .ok_or_else(|| bad("the wallet is not a required signer of this transaction"))?;
    let signature = sign(message);
    let mut out = tx.to_vec();
    let at = prefix + slot * 64;
    out[at..at + 64].copy_from_slice(&signature);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy_tx(keys: &[[u8; 32]], required: u8) -> Vec<u8> {
        let mut msg = vec![required, 0, 1, keys.len() as u8];
        for k in keys {
            msg.extend_from_slice(k);
        }
        msg.extend_from_slice(&[9u8; 32]); // blockhash
        msg.push(0); // no instructions
        let mut tx = vec![required];
        tx.extend(std::iter::repeat_n(0u8, 64 * usize::from(required)));
        tx.extend_from_slice(&msg);
        tx
    }

    #[test]
    fn signs_into_the_signer_slot_only() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let mut tx = legacy_tx(&[a, b, [3u8; 32]], 2);
        tx[1..65].copy_from_slice(&[5u8; 64]); // the fee payer already signed
        let message = tx[1 + 128..].to_vec();
        let out = sign_transaction(&tx, &b, |m| {
            assert_eq!(m, message.as_slice());
            [8u8; 64]
        })
        .unwrap();
        assert_eq!(&out[1..65], &[5u8; 64]);
        assert_eq!(&out[65..129], &[8u8; 64]);
        assert_eq!(&out[129..], message.as_slice());
    }

    #[test]
    fn v0_messages_and_refusals() {
        let a = [1u8; 32];
        let mut tx = legacy_tx(&[a], 1);
        tx.insert(65, 0x80); // version 0 prefix before the header
        tx.push(0); // no address table lookups
        assert!(sign_transaction(&tx, &a, |_| [1u8; 64]).is_ok());
        // Not a signer (a readonly, non-signing key).
        let tx = legacy_tx(&[a, [4u8; 32]], 1);
        assert!(sign_transaction(&tx, &[4u8; 32], |_| [0; 64]).is_err());
        assert!(sign_transaction(&[1, 0, 0], &a, |_| [0; 64]).is_err());
        let mut v1 = legacy_tx(&[a], 1);
        v1.insert(65, 0x81);
        assert!(sign_transaction(&v1, &a, |_| [0; 64]).is_err());
    }
}
