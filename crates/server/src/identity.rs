//! AgentCore Identity on the data plane: workload access tokens
//! (GetWorkloadAccessToken, ...ForUserId, ...ForJWT) and GetResourcePaymentToken.
//!
//! These operations are SigV4-only (a bearer request is refused). A workload is a payment
//! manager of the caller's account, named by its id. ForJWT verifies `userToken` with the
//! manager's CUSTOM_JWT authorizer (the same `purser_jwt` policy as bearer requests); the
//! token's user is the JWT's `sub`. A manager with AWS_IAM authorization has no authorizer:
//! ForJWT is then a ValidationException (use ForUserId). Tokens, user tokens and minted
//! vendor credentials are never logged and never part of an error.
use purser_core::domain::AuthorizerType;
use purser_core::identity::{PaymentToken, PaymentTokenRequest};
use purser_core::{CoreError, CoreResult};
use purser_model::data as d;
use purser_model::{AwsError, OperationDef};

use crate::AppState;
use crate::data::Principal;
use crate::pipeline::Input;

/// `requestHost` when a CDP request names none.
pub const CDP_DEFAULT_HOST: &str = "api.cdp.coinbase.com";
/// `requestHost` when a Privy request names none.
pub const PRIVY_DEFAULT_HOST: &str = "api.privy.io";

pub async fn dispatch(
    state: &AppState,
    op: &'static OperationDef,
    principal: &Principal,
    input: Input<'_>,
) -> Result<(u16, Vec<u8>), AwsError> {
    if principal.token.is_some() {
        return Err(AwsError::access_denied(
            "This operation accepts only SigV4-signed requests.",
        ));
    }
    let caller = &principal.caller;
    let cp = &*state.inner.control;
    match op.name {
        "GetWorkloadAccessToken" => {
            crate::pipeline::run_operation(op, input, |r: d::GetWorkloadAccessTokenRequest| async move {
                let m = cp.workload(caller, &r.workload_name).await?;
                Ok(d::GetWorkloadAccessTokenResponse {
                    workload_access_token: cp.workload_access_token(caller, &m, None),
                })
            })
            .await
        }
        "GetWorkloadAccessTokenForUserId" => {
            crate::pipeline::run_operation(
                op,
                input,
                |r: d::GetWorkloadAccessTokenForUserIdRequest| async move {
                    let m = cp.workload(caller, &r.workload_name).await?;
                    Ok(d::GetWorkloadAccessTokenForUserIdResponse {
                        workload_access_token: cp.workload_access_token(
                            caller,
                            &m,
                            Some(r.user_id),
                        ),
                    })
                },
            )
            .await
        }
        "GetWorkloadAccessTokenForJWT" => {
            crate::pipeline::run_operation(
                op,
                input,
                |r: d::GetWorkloadAccessTokenForJWTRequest| async move {
                    let m = cp.workload(caller, &r.workload_name).await?;
                    if m.authorizer_type != AuthorizerType::CustomJwt {
                        return Err(CoreError::validation(
                            "workloadName",
                            format!(
                                "The workload identity '{}' belongs to a payment manager with AWS_IAM authorization, which has no JWT authorizer; use GetWorkloadAccessTokenForUserId.",
                                m.id
                            ),
                        ));
                    }
                    let policy = m
                        .authorizer
                        .as_ref()
                        .and_then(|a| crate::bearer::policy_of(&a.encoded))
                        .ok_or_else(|| {
                            CoreError::Internal(
                                "The payment manager's authorizer configuration cannot be read."
                                    .into(),
                            )
                        })?;
                    let verified = state
                        .jwt
                        .verify(&r.user_token, &policy)
                        .await
                        .map_err(|denied| {
                            tracing::info!(
                                account_id = %caller.account_id,
                                workload = %m.id,
                                reason = denied.message(),
                                "user token refused"
                            );
                            CoreError::AccessDenied(denied.message().to_string())
                        })?;
                    Ok(d::GetWorkloadAccessTokenForJWTResponse {
                        workload_access_token: cp.workload_access_token(
                            caller,
                            &m,
                            Some(verified.subject),
                        ),
                    })
                },
            )
            .await
        }
        "GetResourcePaymentToken" => {
            crate::pipeline::run_operation(op, input, |r: d::GetResourcePaymentTokenRequest| async move {
                resource_payment_token(cp, caller, r).await
            })
            .await
        }
        other => Err(crate::pipeline::not_implemented(other)),
    }
}

async fn resource_payment_token(
    cp: &purser_core::control::ControlPlane,
    caller: &purser_core::Caller,
    r: d::GetResourcePaymentTokenRequest,
) -> CoreResult<d::GetResourcePaymentTokenResponse> {
    let request = match r.payment_token_request {
        d::PaymentTokenRequestInput::CoinbaseCdpTokenRequest(c) => {
            PaymentTokenRequest::CoinbaseCdp {
                method: c.request_method.as_str().to_string(),
                host: c.request_host.unwrap_or_else(|| CDP_DEFAULT_HOST.into()),
                path: c.request_path,
                body: c.request_body,
                wallet_auth: c.include_wallet_auth_token.unwrap_or(false),
            }
        }
        d::PaymentTokenRequestInput::StripePrivyTokenRequest(p) => {
            PaymentTokenRequest::StripePrivy {
                host: p.request_host.unwrap_or_else(|| PRIVY_DEFAULT_HOST.into()),
                path: p.request_path,
                body: p.request_body,
                sign: p.include_authorization_signature.unwrap_or(false),
            }
        }
    };
    let token = cp
        .resource_payment_token(
            caller,
            &r.workload_identity_token,
            &r.resource_credential_provider_name,
            request,
        )
        .await?;
    let payment_token_response = match token {
        PaymentToken::CoinbaseCdp(t) => d::PaymentTokenResponseOutput::CoinbaseCdpTokenResponse(
            d::CoinbaseCdpTokenResponseOutput {
                bearer_token: t.bearer_token,
                wallet_auth_token: t.wallet_auth_token,
            },
        ),
        PaymentToken::StripePrivy(t) => d::PaymentTokenResponseOutput::StripePrivyTokenResponse(
            d::StripePrivyTokenResponseOutput {
                authorization_signature: t.authorization_signature,
                request_expiry: t.request_expiry_ms,
                app_id: t.app_id,
                basic_auth_token: t.basic_auth_token,
            },
        ),
    };
    Ok(d::GetResourcePaymentTokenResponse {
        payment_token_response,
    })
}
