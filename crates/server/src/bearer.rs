//! Bearer-token (CUSTOM_JWT) authentication of data-plane requests (B30, B32, B33).
//!
//! A request whose Authorization header has the `Bearer` scheme is a bearer request (the
//! official SDK signs with SigV4 and then overwrites the header, so the other SigV4
//! headers may still be there: the scheme decides). It carries no access key, so the
//! account is the one of the request's `paymentManagerArn`; that manager must exist,
//! use CUSTOM_JWT and be READY (or UPDATING), and the token must pass its
//! `customJWTAuthorizer` (`purser_jwt`). Every refusal is an AccessDeniedException; until
//! the token is verified the message does not say whether the manager exists. Neither
//! the token nor its claims' values are logged or echoed.
use purser_core::domain::{AuthorizerType, ResourceStatus};
use purser_core::instruments::TokenIdentity;
use purser_core::{Caller, CoreError};
use purser_jwt::{ClaimOperator, ClaimRule, ClaimType, MatchValue, Policy};
use purser_model::control as m;
use purser_model::{AwsError, OperationDef, Service};
use serde_json::Value;

use crate::AppState;
use crate::auth::Authenticated;

/// Whether the request authenticates with a bearer token (any Authorization header with
/// the `Bearer` scheme).
pub fn is_bearer(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .any(|v| scheme_is_bearer(v.as_bytes()))
}

fn scheme_is_bearer(v: &[u8]) -> bool {
    v.len() >= 7 && v[..6].eq_ignore_ascii_case(b"bearer") && v[6] == b' '
}

fn denied(message: impl Into<String>) -> AwsError {
    AwsError::access_denied(message)
}

/// Authenticate a bearer request: the account it acts in, the key of this exact
/// request (B26: like a SigV4 signature, a byte-for-byte replay answers the original
/// result), and the verified token's identity (manager and subject).
pub async fn authenticate(
    state: &AppState,
    op: &'static OperationDef,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<(Authenticated, TokenIdentity), AwsError> {
    let headers = &parts.headers;
    if op.service == Service::Control {
        return Err(denied(
            "The control plane accepts only SigV4-signed requests; bearer tokens are accepted on the data plane, for payment managers with CUSTOM_JWT authorization.",
        ));
    }
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(denied("Send exactly one Authorization header."));
    };
    let token = std::str::from_utf8(value.as_bytes())
        .ok()
        .filter(|v| scheme_is_bearer(v.as_bytes()))
        .map(|v| v[7..].trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| denied("The Authorization header carries no bearer token."))?;

    // The manager named by the request: every data-plane operation has paymentManagerArn
    // in its JSON body.
    let arn = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("paymentManagerArn")?.as_str().map(str::to_string))
        .ok_or_else(|| {
            denied("A bearer request must name its payment manager (paymentManagerArn).")
        })?;
    let region = &state.inner.region;
    let (account, manager_id) = parse_manager_arn(&arn, region).ok_or_else(|| {
        denied(format!(
            "The paymentManagerArn does not name a payment manager in this server's region ({region})."
        ))
    })?;
    let caller = Caller {
        account_id: account.to_string(),
        region: region.clone(),
    };
    let unknown = || {
        denied(
            "The payment manager named by paymentManagerArn does not exist, is not READY, or does not accept bearer tokens (CUSTOM_JWT).",
        )
    };
    let manager = match state.inner.control.get_manager(&caller, manager_id).await {
        Ok(m) => m,
        Err(CoreError::NotFound(_)) => return Err(unknown()),
        Err(e) => return Err(crate::errors::to_aws(e)),
    };
    if manager.authorizer_type != AuthorizerType::CustomJwt
        || !matches!(
            manager.status,
            ResourceStatus::Ready | ResourceStatus::Updating
        )
    {
        return Err(unknown());
    }
    let policy = manager
        .authorizer
        .as_ref()
        .and_then(|a| policy_of(&a.encoded))
        .ok_or_else(|| {
            tracing::error!(
                manager_id,
                "a CUSTOM_JWT manager's authorizer configuration cannot be read"
            );
            AwsError::internal("The payment manager's authorizer configuration cannot be read.")
        })?;
    let verified = state.jwt.verify(token, &policy).await.map_err(|d| {
        tracing::info!(account_id = %caller.account_id, manager_id, reason = d.message(), "bearer token refused");
        denied(d.message())
    })?;
    let replay_key = replay_key(parts, token, body);
    Ok((
        Authenticated { caller, replay_key },
        TokenIdentity {
            manager_id: manager_id.to_string(),
            subject: verified.subject,
        },
    ))
}

/// The idempotency key of a bearer request without clientToken: a digest of the method,
/// path, query, token and body (the token is never stored, only this digest). The
/// `bearer:` prefix is outside the clientToken pattern.
fn replay_key(parts: &http::request::Parts, token: &str, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        parts.method.as_str().as_bytes(),
        parts.uri.path().as_bytes(),
        parts.uri.query().unwrap_or("").as_bytes(),
        token.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(body);
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("bearer:{hex}")
}

/// `arn:aws:bedrock-agentcore:<region>:<12 digits>:payment-manager/<id>` of this region.
fn parse_manager_arn<'a>(arn: &'a str, region: &str) -> Option<(&'a str, &'a str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_, _partition, service, r, account, resource] = parts[..] else {
        return None;
    };
    let id = resource.strip_prefix("payment-manager/")?;
    (arn_ == "arn"
        && service == "bedrock-agentcore"
        && r == region
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !id.is_empty())
    .then_some((account, id))
}

/// CreatePaymentManager / UpdatePaymentManager: every custom claim rule must be one that
/// can match (B33); a rule that cannot would lock every caller out.
pub fn check_configuration(c: Option<&m::AuthorizerConfiguration>) -> Result<(), CoreError> {
    let Some(m::AuthorizerConfiguration::CustomJwtAuthorizer(jwt)) = c else {
        return Ok(());
    };
    let policy = policy_from(jwt.clone());
    for (i, rule) in policy.custom_claims.iter().enumerate() {
        if !rule.is_well_formed() {
            return Err(CoreError::validation(
                &format!(
                    "authorizerConfiguration.customJWTAuthorizer.customClaims.{}",
                    i + 1
                ),
                format!(
                    "1 validation error detected: Value at 'authorizerConfiguration.customJWTAuthorizer.customClaims.{}' failed to satisfy constraint: {}",
                    i + 1,
                    purser_jwt::policy::RULE_FORMS
                ),
            ));
        }
    }
    Ok(())
}

/// The manager's stored `authorizerConfiguration` (its wire JSON) as a policy.
pub fn policy_of(encoded: &str) -> Option<Policy> {
    let m::AuthorizerConfiguration::CustomJwtAuthorizer(c) = serde_json::from_str(encoded).ok()?;
    Some(policy_from(c))
}

fn policy_from(c: m::CustomJWTAuthorizerConfiguration) -> Policy {
    let rules = c
        .custom_claims
        .unwrap_or_default()
        .into_iter()
        .map(|r| ClaimRule {
            name: r.inbound_token_claim_name,
            value_type: match r.inbound_token_claim_value_type {
                m::InboundTokenClaimValueType::String => ClaimType::String,
                m::InboundTokenClaimValueType::StringArray => ClaimType::StringArray,
            },
            operator: match r.authorizing_claim_match_value.claim_match_operator {
                m::ClaimMatchOperatorType::Equals => ClaimOperator::Equals,
                m::ClaimMatchOperatorType::Contains => ClaimOperator::Contains,
                m::ClaimMatchOperatorType::ContainsAny => ClaimOperator::ContainsAny,
            },
            value: match r.authorizing_claim_match_value.claim_match_value {
                m::ClaimMatchValueType::MatchValueString(s) => MatchValue::One(s),
                m::ClaimMatchValueType::MatchValueStringList(l) => MatchValue::Many(l),
            },
        })
        .collect();
    Policy {
        discovery_url: c.discovery_url,
        allowed_audience: c.allowed_audience.unwrap_or_default(),
        allowed_clients: c.allowed_clients.unwrap_or_default(),
        allowed_scopes: c.allowed_scopes.unwrap_or_default(),
        custom_claims: rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_decides() {
        assert!(scheme_is_bearer(b"Bearer abc"));
        assert!(scheme_is_bearer(b"bearer abc"));
        assert!(!scheme_is_bearer(b"Bearer"));
        assert!(!scheme_is_bearer(b"AWS4-HMAC-SHA256 Credential=..."));
        assert!(!scheme_is_bearer(b"Bearerabc"));
        assert!(!scheme_is_bearer(b""));
    }

    #[test]
    fn manager_arns_of_this_region_only() {
        let arn = "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/m-1";
        assert_eq!(
            parse_manager_arn(arn, "us-east-1"),
            Some(("123456789012", "m-1"))
        );
        assert_eq!(parse_manager_arn(arn, "eu-west-1"), None);
        for bad in [
            "",
            "arn:aws:bedrock-agentcore:us-east-1:12345:payment-manager/m-1",
            "arn:aws:s3:us-east-1:123456789012:payment-manager/m-1",
            "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/",
            "arn:aws:bedrock-agentcore:us-east-1:123456789012:connector/m-1",
        ] {
            assert_eq!(parse_manager_arn(bad, "us-east-1"), None, "{bad}");
        }
    }

    #[test]
    fn policy_from_the_stored_configuration() {
        let encoded = r#"{"customJWTAuthorizer":{"discoveryUrl":"https://i.example/.well-known/openid-configuration","allowedAudience":["a"],"allowedClients":["c"],"allowedScopes":["s"],"customClaims":[{"inboundTokenClaimName":"groups","inboundTokenClaimValueType":"STRING_ARRAY","authorizingClaimMatchValue":{"claimMatchValue":{"matchValueStringList":["x","y"]},"claimMatchOperator":"CONTAINS_ANY"}}]}}"#;
        let p = policy_of(encoded).unwrap();
        assert_eq!(p.allowed_audience, ["a"]);
        assert_eq!(p.allowed_clients, ["c"]);
        assert_eq!(p.allowed_scopes, ["s"]);
        assert_eq!(
            p.custom_claims,
            [ClaimRule {
                name: "groups".into(),
                value_type: ClaimType::StringArray,
                operator: ClaimOperator::ContainsAny,
                value: MatchValue::Many(vec!["x".into(), "y".into()]),
            }]
        );
        assert!(policy_of("{}").is_none());
    }
}
