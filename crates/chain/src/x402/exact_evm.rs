//! x402 `exact` on EVM chains as a [`Kind`]: an EIP-3009 `transferWithAuthorization`
//! signed as EIP-712 typed data (the rules are in the parent module's documentation).

use async_trait::async_trait;
use serde_json::Value;

use super::{
    Authorization, ExactEvmRequirement, X402Error, authorization_for, exact_evm_payload,
    parse_address_hex, transfer_with_authorization_digest, transfer_with_authorization_typed_data,
};
use crate::payment::{BuildContext, BuildError, Kind, Signature, ToSign, Unsigned};

#[derive(Debug)]
pub(crate) struct ExactEvm(pub(crate) ExactEvmRequirement);

#[async_trait]
impl Kind for ExactEvm {
    async fn build(&self, ctx: &BuildContext<'_>) -> Result<Box<dyn Unsigned>, BuildError> {
        let from = parse_address_hex(ctx.payer).ok_or_else(|| {
            BuildError::Input(X402Error::new(
                "paymentInstrumentId",
                "The payment instrument's wallet is not an EVM wallet.",
            ))
        })?;
        let mut nonce = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let auth = authorization_for(&self.0, from, ctx.now, nonce);
        Ok(Box::new(ExactEvmUnsigned {
            requirement: self.0.clone(),
            auth,
        }))
    }
}

#[derive(Debug)]
struct ExactEvmUnsigned {
    requirement: ExactEvmRequirement,
    auth: Authorization,
}

impl Unsigned for ExactEvmUnsigned {
    fn to_sign(&self) -> ToSign {
        ToSign::TypedData {
            digest: transfer_with_authorization_digest(&self.requirement, &self.auth),
        }
    }

    fn typed_data(&self) -> Option<Value> {
        Some(transfer_with_authorization_typed_data(
            &self.requirement,
            &self.auth,
        ))
    }

    fn finish(&self, signature: &Signature) -> Option<Value> {
        match signature {
            Signature::Secp256k1(sig) => Some(exact_evm_payload(&self.auth, sig)),
            Signature::Ed25519(_) => None,
        }
    }
}
