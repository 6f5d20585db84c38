//! EIP-1559 (type 2) transactions: RLP encoding, the signing hash and the signed
//! envelope. Written here (about a hundred lines) rather than pulled in with a
//! transaction crate: Purser sends one kind of transaction (an ERC-20 `approve`).
//!
//! * signing hash = `keccak256(0x02 || rlp([chainId, nonce, maxPriorityFeePerGas,
//!   maxFeePerGas, gasLimit, to, value, data, accessList]))`;
//! * signed = `0x02 || rlp([...the same nine fields, yParity, r, s])`.
//!
//! Integers are RLP-encoded big-endian without leading zeros (zero is the empty
//! string); the access list is always empty.

use sha3::{Digest, Keccak256};

/// An EIP-1559 transaction with an empty access list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eip1559Tx {
    pub chain_id: u64,
    pub nonce: u64,
    pub max_priority_fee_per_gas: u128,
    pub max_fee_per_gas: u128,
    pub gas_limit: u64,
    pub to: [u8; 20],
    pub value: u128,
    pub data: Vec<u8>,
}

impl Eip1559Tx {
    fn fields(&self) -> Vec<Vec<u8>> {
        vec![
            rlp_uint(&self.chain_id.to_be_bytes()),
            rlp_uint(&self.nonce.to_be_bytes()),
            rlp_uint(&self.max_priority_fee_per_gas.to_be_bytes()),
            rlp_uint(&self.max_fee_per_gas.to_be_bytes()),
            rlp_uint(&self.gas_limit.to_be_bytes()),
            rlp_bytes(&self.to),
            rlp_uint(&self.value.to_be_bytes()),
            rlp_bytes(&self.data),
            rlp_list(&[]),
        ]
    }

    /// `0x02 || rlp(fields)`: what is hashed for signing.
    pub fn unsigned_envelope(&self) -> Vec<u8> {
        let mut out = vec![0x02];
        out.extend_from_slice(&rlp_list(&self.fields()));
        out
    }

    /// The secp256k1 message hash.
    pub fn signing_hash(&self) -> [u8; 32] {
        Keccak256::digest(self.unsigned_envelope()).into()
    }

    /// The raw transaction for `eth_sendRawTransaction`, from a signature `r || s || v`
    /// (v = 27 or 28, or the bare recovery id 0 / 1).
    pub fn signed_envelope(&self, signature: &[u8; 65]) -> Vec<u8> {
        let y_parity = if signature[64] >= 27 {
            signature[64] - 27
        } else {
            signature[64]
        };
        let mut fields = self.fields();
        fields.push(rlp_uint(&[y_parity]));
        fields.push(rlp_uint(&signature[..32]));
        fields.push(rlp_uint(&signature[32..64]));
        let mut out = vec![0x02];
        out.extend_from_slice(&rlp_list(&fields));
        out
    }

    /// The transaction hash of the signed envelope.
    pub fn hash(&self, signature: &[u8; 65]) -> [u8; 32] {
        Keccak256::digest(self.signed_envelope(signature)).into()
    }
}

fn length_prefix(len: usize, short: u8, long: u8) -> Vec<u8> {
    if len <= 55 {
        vec![short + len as u8]
    } else {
        let be = (len as u64).to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        let mut out = vec![long + (8 - skip) as u8];
        out.extend_from_slice(&be[skip..]);
        out
    }
}

/// An RLP byte string.
pub fn rlp_bytes(b: &[u8]) -> Vec<u8> {
    if b.len() == 1 && b[0] < 0x80 {
        return b.to_vec();
    }
    let mut out = length_prefix(b.len(), 0x80, 0xb7);
    out.extend_from_slice(b);
    out
}

/// An RLP integer from its big-endian bytes (leading zeros dropped).
pub fn rlp_uint(be: &[u8]) -> Vec<u8> {
    let skip = be.iter().take_while(|b| **b == 0).count();
    rlp_bytes(&be[skip..])
}

/// An RLP list of already-encoded items.
pub fn rlp_list(items: &[Vec<u8>]) -> Vec<u8> {
    let len: usize = items.iter().map(Vec::len).sum();
    let mut out = length_prefix(len, 0xc0, 0xf7);
    for i in items {
        out.extend_from_slice(i);
    }
    out
}

/// ERC-20 `approve(spender, amount)` calldata (selector `0x095ea7b3`).
pub fn erc20_approve_calldata(spender: &[u8; 20], amount: &[u8; 32]) -> Vec<u8> {
    let mut data = Vec::with_capacity(4 + 64);
    data.extend_from_slice(&[0x09, 0x5e, 0xa7, 0xb3]);
    data.extend_from_slice(&[0u8; 12]);
    data.extend_from_slice(spender);
    data.extend_from_slice(amount);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RLP examples of the Ethereum wiki / yellow paper.
    #[test]
    fn rlp_examples() {
        assert_eq!(rlp_bytes(b"dog"), vec![0x83, b'd', b'o', b'g']);
        assert_eq!(
            rlp_list(&[rlp_bytes(b"cat"), rlp_bytes(b"dog")]),
            vec![0xc8, 0x83, b'c', b'a', b't', 0x83, b'd', b'o', b'g']
        );
        assert_eq!(rlp_bytes(b""), vec![0x80]);
        assert_eq!(rlp_list(&[]), vec![0xc0]);
        assert_eq!(rlp_uint(&0u64.to_be_bytes()), vec![0x80]);
        assert_eq!(rlp_uint(&15u64.to_be_bytes()), vec![0x0f]);
        assert_eq!(rlp_uint(&1024u64.to_be_bytes()), vec![0x82, 0x04, 0x00]);
        let lorem = b"Lorem ipsum dolor sit amet, consectetur adipisicing elit";
        let mut want = vec![0xb8, 0x38];
        want.extend_from_slice(lorem);
        assert_eq!(rlp_bytes(lorem), want);
        // [ [], [[]], [ [], [[]] ] ]
        let e = rlp_list(&[]);
        let one = rlp_list(std::slice::from_ref(&e));
        let two = rlp_list(&[e.clone(), one.clone()]);
        assert_eq!(
            rlp_list(&[e, one, two]),
            vec![0xc7, 0xc0, 0xc1, 0xc0, 0xc3, 0xc0, 0xc1, 0xc0]
        );
    }
}
