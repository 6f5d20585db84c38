//! The MPP `evm` method, intent `charge`, credential type `authorization`: an EIP-3009
//! `transferWithAuthorization` of the challenge's USDC amount to its recipient, signed
//! as EIP-712 typed data, with `nonce = keccak256(id || realm)` (the challenge hash),
//! `validAfter = 0` and `validBefore` = the challenge's `expires` (or now + 300 s without
//! one), as the reference client (mppx) signs it. The merchant submits the authorization
//! and pays its gas, so `buyerPaysGasFees` changes nothing for this method.
//!
//! The request (`{amount, currency, recipient, methodDetails: {chainId, credentialTypes?,
//! decimals?, splits?, permit2Address?}, description?, externalId?}`) is checked:
//! `amount` atomic units (digits, > 0); `methodDetails.chainId` one of 8453 (BASE), 84532
//! (BASE_SEPOLIA), 1 (ETHEREUM); `currency` that chain's USDC; `decimals`, when given, 6;
//! `recipient` a non-zero address; `credentialTypes`, when given, must include
//! `authorization`; `splits` are refused (an authorization pays one recipient).

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use sha3::{Digest, Keccak256};

use super::{Challenge, err, field, string};
use crate::chain::Chain;
use crate::payment::{
    BuildContext, BuildError, InputError, Kind, PaymentType, Requirement, Signature, ToSign,
    Unsigned,
};
use crate::x402::{
    Authorization, ExactEvmRequirement, checksum_address, parse_address_hex,
    transfer_with_authorization_digest, transfer_with_authorization_typed_data,
};

/// `validBefore` of a challenge without `expires`: now + this.
pub const DEFAULT_VALIDITY_SECONDS: u64 = 300;

pub(super) fn parse(challenge: Challenge) -> Result<Requirement, InputError> {
    let req = &challenge.request;
    let details = match req.get("methodDetails") {
        Some(Value::Object(m)) => m,
        _ => {
            let f = field("methodDetails");
            return Err(err(&f, format!("{f} is required: an object with chainId")));
        }
    };
    let chain_id = details.get("chainId").and_then(Value::as_u64);
    let chain = chain_id.and_then(Chain::from_evm_chain_id).ok_or_else(|| {
        let f = field("methodDetails.chainId");
        err(
            &f,
            format!(
                "{f} must be 8453 (BASE), 84532 (BASE_SEPOLIA) or 1 (ETHEREUM), got {}",
                details
                    .get("chainId")
                    .map_or("nothing".into(), Value::to_string)
            ),
        )
    })?;
    if let Some(types) = details.get("credentialTypes") {
        let has = types
            .as_array()
            .is_some_and(|a| a.iter().any(|t| t.as_str() == Some("authorization")));
        if !has {
            let f = field("methodDetails.credentialTypes");
            return Err(err(
                &f,
                format!(
                    "{f} does not accept \"authorization\", the only EVM credential this server signs"
                ),
            ));
        }
    }
    if details
        .get("splits")
        .is_some_and(|s| s.as_array().is_none_or(|a| !a.is_empty()))
    {
        let f = field("methodDetails.splits");
        return Err(err(
            &f,
            format!("{f}: split payments are not supported (an authorization pays one recipient)"),
        ));
    }
    if let Some(d) = details.get("decimals")
        && d.as_u64() != Some(u64::from(crate::USDC_DECIMALS))
    {
        let f = field("methodDetails.decimals");
        return Err(err(&f, format!("{f} must be 6 (USDC), got {d}")));
    }
    let amount = atomic_amount(req)?;
    let usdc = chain.usdc_address();
    let currency = string(req, "currency")?;
    if !currency.eq_ignore_ascii_case(usdc) {
        let f = field("currency");
        return Err(err(
            &f,
            format!(
                "{f} {currency:?} is not USDC on {}: only {usdc} is accepted",
                chain.as_str()
            ),
        ));
    }
    let recipient = string(req, "recipient")?;
    let to = parse_address_hex(recipient)
        .filter(|a| *a != [0u8; 20])
        .ok_or_else(|| {
            let f = field("recipient");
            err(
                &f,
                format!("{f} must be a non-zero 0x-prefixed 20-byte hex address"),
            )
        })?;
    let domain = chain
        .usdc_eip712_domain()
        .expect("an EVM chain has a USDC EIP-712 domain");
    let network = format!("eip155:{}", chain_id.unwrap_or_default());
    let token = ExactEvmRequirement {
        version: 2,
        chain,
        network: network.clone(),
        amount,
        pay_to: checksum_address(&to),
        asset: usdc.to_owned(),
        max_timeout_seconds: DEFAULT_VALIDITY_SECONDS,
        domain_name: domain.name.to_owned(),
        domain_version: domain.version.to_owned(),
    };
    Ok(Requirement {
        payment_type: PaymentType::Mpp,
        version: "1".into(),
        scheme: "evm".into(),
        chain,
        network,
        payee: token.pay_to.clone(),
        asset: usdc.to_owned(),
        amount,
        debit: amount,
        amount_field: field("amount"),
        kind: Box::new(EvmCharge { challenge, token }),
    })
}

fn atomic_amount(req: &Map<String, Value>) -> Result<u128, InputError> {
    let text = string(req, "amount")?;
    let f = field("amount");
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            &f,
            format!("{f} must be atomic units as a decimal string, got {text:?}"),
        ));
    }
    match text.parse::<u128>() {
        Ok(0) => Err(err(&f, format!("{f} must be greater than 0"))),
        Ok(n) => Ok(n),
        Err(_) => Err(err(&f, format!("{f} is too large"))),
    }
}

#[derive(Debug)]
struct EvmCharge {
    challenge: Challenge,
    token: ExactEvmRequirement,
}

#[async_trait]
impl Kind for EvmCharge {
    async fn build(&self, ctx: &BuildContext<'_>) -> Result<Box<dyn Unsigned>, BuildError> {
        self.challenge.check_not_expired(ctx.now)?;
        let from = parse_address_hex(ctx.payer).ok_or_else(|| {
            BuildError::Input(err(
                "paymentInstrumentId",
                "The payment instrument's wallet is not an EVM wallet.",
            ))
        })?;
        let valid_before = match &self.challenge.expires {
            Some((_, at)) => *at as u64,
            None => ctx.now + DEFAULT_VALIDITY_SECONDS,
        };
        let nonce: [u8; 32] =
            Keccak256::digest(format!("{}{}", self.challenge.id, self.challenge.realm).as_bytes())
                .into();
        let auth = Authorization {
            from,
            to: parse_address_hex(&self.token.pay_to).expect("a checked address"),
            value: self.token.amount,
            valid_after: 0,
            valid_before,
            nonce,
        };
        Ok(Box::new(EvmChargeUnsigned {
            challenge: self.challenge.clone(),
            token: self.token.clone(),
            auth,
        }))
    }
}

#[derive(Debug)]
struct EvmChargeUnsigned {
    challenge: Challenge,
    token: ExactEvmRequirement,
    auth: Authorization,
}

impl Unsigned for EvmChargeUnsigned {
    fn to_sign(&self) -> ToSign {
        ToSign::TypedData {
            digest: transfer_with_authorization_digest(&self.token, &self.auth),
        }
    }

    fn typed_data(&self) -> Option<Value> {
        Some(transfer_with_authorization_typed_data(
            &self.token,
            &self.auth,
        ))
    }

    fn finish(&self, signature: &Signature) -> Option<Value> {
        let Signature::Secp256k1(sig) = signature else {
            return None;
        };
        let from = checksum_address(&self.auth.from);
        let payload = json!({
            "from": from,
            "nonce": format!("0x{}", hex::encode(self.auth.nonce)),
            "signature": format!("0x{}", hex::encode(sig)),
            "to": checksum_address(&self.auth.to),
            "type": "authorization",
            "validAfter": self.auth.valid_after.to_string(),
            "validBefore": self.auth.valid_before.to_string(),
            "value": self.auth.value.to_string(),
        });
        let source = format!("did:pkh:eip155:{}:{from}", self.token.chain_id());
        Some(json!({
            "selectedPaymentId": self.challenge.id,
            "paymentCredential": self.challenge.credential(payload, Some(source)),
        }))
    }
}
