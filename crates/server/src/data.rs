//! Data-plane handlers: generated wire types <-> `purser_core::instruments`.
use purser_chain::Chain;
use purser_chain::payment::{PaymentInput, PaymentType};
use purser_core::domain::{Instrument, InstrumentStatus, Network, Payment, Session};
use purser_core::holder::Contact;
use purser_core::instruments::{Actor, DataPlane, NewInstrument, TokenIdentity};
use purser_core::money::format_usd;
use purser_core::payments::{PaymentRequest, SessionInput};
use purser_core::{Caller, CoreError, CoreResult};
use purser_model::data as d;
use purser_model::{AwsError, OperationDef, Timestamp};

use crate::AppState;
use crate::control::idempotency;
use crate::pipeline::Input;

type Reply = Result<(u16, Vec<u8>), AwsError>;

/// The verified caller of a data-plane request and, for a bearer request, the identity
/// its token gave (the payment user is then the token's subject).
pub struct Principal {
    pub caller: Caller,
    pub token: Option<TokenIdentity>,
}

impl std::ops::Deref for Principal {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

pub async fn dispatch(
    state: &AppState,
    op: &'static OperationDef,
    caller: Caller,
    token: Option<TokenIdentity>,
    input: Input<'_>,
) -> Reply {
    let principal = Principal { caller, token };
    if matches!(
        op.name,
        "GetWorkloadAccessToken"
            | "GetWorkloadAccessTokenForUserId"
            | "GetWorkloadAccessTokenForJWT"
            | "GetResourcePaymentToken"
    ) {
        return crate::identity::dispatch(state, op, &principal, input).await;
    }
    let caller = &principal;
    let dp = &*state.inner.data;
    macro_rules! call {
        ($f:ident) => {
            crate::pipeline::run_operation(op, input, |req| $f(dp, caller, req)).await
        };
    }
    match op.name {
        "CreatePaymentInstrument" => call!(create_instrument),
        "GetPaymentInstrument" => call!(get_instrument),
        "ListPaymentInstruments" => call!(list_instruments),
        "DeletePaymentInstrument" => call!(delete_instrument),
        "GetPaymentInstrumentBalance" => call!(balance),
        "CreatePaymentSession" => call!(create_session),
        "GetPaymentSession" => call!(get_session),
        "ListPaymentSessions" => call!(list_sessions),
        "DeletePaymentSession" => call!(delete_session),
        "ProcessPayment" => call!(process_payment),
        other => Err(crate::pipeline::not_implemented(other)),
    }
}

fn actor(principal: &Principal, user_id: Option<String>) -> Actor {
    Actor {
        caller: principal.caller.clone(),
        user_id,
        token: principal.token.clone(),
    }
}

fn network_in(n: d::CryptoWalletNetwork) -> Network {
    match n {
        d::CryptoWalletNetwork::Ethereum => Network::Ethereum,
        d::CryptoWalletNetwork::Solana => Network::Solana,
    }
}

fn network_out(n: Network) -> d::CryptoWalletNetwork {
    match n {
        Network::Ethereum => d::CryptoWalletNetwork::Ethereum,
        Network::Solana => d::CryptoWalletNetwork::Solana,
    }
}

fn status_out(s: InstrumentStatus) -> d::PaymentInstrumentStatus {
    match s {
        InstrumentStatus::Initiated => d::PaymentInstrumentStatus::Initiated,
        InstrumentStatus::Active => d::PaymentInstrumentStatus::Active,
        InstrumentStatus::Failed => d::PaymentInstrumentStatus::Failed,
        InstrumentStatus::Deleted => d::PaymentInstrumentStatus::Deleted,
        InstrumentStatus::Blocked => d::PaymentInstrumentStatus::Blocked,
    }
}

fn chain_in(c: d::BlockchainChainId) -> Chain {
    match c {
        d::BlockchainChainId::Base => Chain::Base,
        d::BlockchainChainId::BaseSepolia => Chain::BaseSepolia,
        d::BlockchainChainId::Ethereum => Chain::Ethereum,
        d::BlockchainChainId::Solana => Chain::Solana,
        d::BlockchainChainId::SolanaDevnet => Chain::SolanaDevnet,
    }
}

/// Keep the first character of each part, mask the rest: "alice@example.com" ->
/// "a***@e***.com". Replies never carry a linked account's email or phone number.
fn mask_email(email: &str) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
    format!("{}***@{}***.{}", first(local), first(host), tld)
}

/// "+14155550123" -> "+*********23".
fn mask_phone(phone: &str) -> String {
    let n = phone.chars().count();
    phone
        .chars()
        .enumerate()
        .map(|(i, c)| if i == 0 || i + 2 >= n { c } else { '*' })
        .collect()
}

fn mask_linked(accounts: &[d::LinkedAccount]) -> Vec<d::LinkedAccount> {
    accounts
        .iter()
        .map(|a| match a {
            d::LinkedAccount::Email(e) => d::LinkedAccount::Email(d::LinkedAccountEmail {
                email_address: mask_email(&e.email_address),
            }),
            d::LinkedAccount::Sms(s) => d::LinkedAccount::Sms(d::LinkedAccountSms {
                phone_number: mask_phone(&s.phone_number),
            }),
            d::LinkedAccount::DeveloperJwt(j) => d::LinkedAccount::DeveloperJwt(j.clone()),
            d::LinkedAccount::OAuth2(o) => {
                let mask = |x: &d::OAuth2Authentication| d::OAuth2Authentication {
                    email_address: x.email_address.as_deref().map(mask_email),
                    ..x.clone()
                };
                d::LinkedAccount::OAuth2(match o {
                    d::LinkedAccountOAuth2::Google(x) => d::LinkedAccountOAuth2::Google(mask(x)),
                    d::LinkedAccountOAuth2::Apple(x) => d::LinkedAccountOAuth2::Apple(mask(x)),
                    d::LinkedAccountOAuth2::X(x) => d::LinkedAccountOAuth2::X(mask(x)),
                    d::LinkedAccountOAuth2::Telegram(x) => {
                        d::LinkedAccountOAuth2::Telegram(mask(x))
                    }
                    d::LinkedAccountOAuth2::Github(x) => d::LinkedAccountOAuth2::Github(mask(x)),
                })
            }
        })
        .collect()
}

fn instrument_view(caller: &Caller, i: Instrument) -> d::PaymentInstrument {
    let linked: Vec<d::LinkedAccount> =
        serde_json::from_str(&i.linked_accounts.masked).unwrap_or_default();
    d::PaymentInstrument {
        payment_manager_arn: purser_core::control::manager_arn(caller, &i.manager_id),
        payment_instrument_type: d::PaymentInstrumentType::EmbeddedCryptoWallet,
        payment_instrument_details: d::PaymentInstrumentDetails::EmbeddedCryptoWallet(
            d::EmbeddedCryptoWallet {
                network: network_out(i.network),
                linked_accounts: linked,
                wallet_address: Some(i.wallet_address),
                redirect_url: None,
            },
        ),
        created_at: Timestamp(i.created_at),
        status: status_out(i.status),
        updated_at: Timestamp(i.updated_at),
        payment_instrument_id: i.id,
        payment_connector_id: i.connector_id,
        user_id: i.user_id,
    }
}

async fn create_instrument(
    dp: &DataPlane,
    caller: &Principal,
    mut req: d::CreatePaymentInstrumentRequest,
) -> CoreResult<d::CreatePaymentInstrumentResponse> {
    req.agent_name = None; // observability only, never part of the request's identity
    let idem = idempotency(req.client_token.take(), &req);
    let d::PaymentInstrumentDetails::EmbeddedCryptoWallet(wallet) = &req.payment_instrument_details;
    if wallet.wallet_address.is_some() {
        return Err(CoreError::validation(
            "paymentInstrumentDetails.embeddedCryptoWallet.walletAddress",
            "walletAddress is assigned by Purser when it creates the wallet; do not send it.",
        ));
    }
    let input = NewInstrument {
        manager_arn: req.payment_manager_arn.clone(),
        connector_id: req.payment_connector_id.clone(),
        network: network_in(wallet.network),
        linked_plain: serde_json::to_string(&wallet.linked_accounts).unwrap_or_default(),
        linked_masked: serde_json::to_string(&mask_linked(&wallet.linked_accounts))
            .unwrap_or_default(),
        contact: wallet.linked_accounts.iter().find_map(|a| match a {
            d::LinkedAccount::Email(e) => Some(Contact::Email(e.email_address.clone())),
            d::LinkedAccount::Sms(s) => Some(Contact::Phone(s.phone_number.clone())),
            _ => None,
        }),
    };
    let i = dp
        .create_instrument(&actor(caller, req.user_id), input, idem.as_ref())
        .await?;
    Ok(d::CreatePaymentInstrumentResponse {
        payment_instrument: instrument_view(caller, i),
    })
}

async fn get_instrument(
    dp: &DataPlane,
    caller: &Principal,
    req: d::GetPaymentInstrumentRequest,
) -> CoreResult<d::GetPaymentInstrumentResponse> {
    let i = dp
        .get_instrument(
            &actor(caller, req.user_id),
            &req.payment_manager_arn,
            req.payment_connector_id.as_deref(),
            &req.payment_instrument_id,
        )
        .await?;
    Ok(d::GetPaymentInstrumentResponse {
        payment_instrument: instrument_view(caller, i),
    })
}

async fn list_instruments(
    dp: &DataPlane,
    caller: &Principal,
    req: d::ListPaymentInstrumentsRequest,
) -> CoreResult<d::ListPaymentInstrumentsResponse> {
    let page = dp
        .list_instruments(
            &actor(caller, req.user_id),
            &req.payment_manager_arn,
            req.payment_connector_id.as_deref(),
            req.max_results,
            req.next_token.as_deref(),
        )
        .await?;
    Ok(d::ListPaymentInstrumentsResponse {
        payment_instruments: page
            .items
            .into_iter()
            .map(|i| d::PaymentInstrumentSummary {
                payment_manager_arn: purser_core::control::manager_arn(caller, &i.manager_id),
                payment_instrument_type: d::PaymentInstrumentType::EmbeddedCryptoWallet,
                status: status_out(i.status),
                created_at: Timestamp(i.created_at),
                updated_at: Timestamp(i.updated_at),
                payment_instrument_id: i.id,
                payment_connector_id: i.connector_id,
                user_id: i.user_id,
            })
            .collect(),
        next_token: page.next,
    })
}

async fn delete_instrument(
    dp: &DataPlane,
    caller: &Principal,
    req: d::DeletePaymentInstrumentRequest,
) -> CoreResult<d::DeletePaymentInstrumentResponse> {
    let status = dp
        .delete_instrument(
            &actor(caller, req.user_id),
            &req.payment_manager_arn,
            &req.payment_connector_id,
            &req.payment_instrument_id,
        )
        .await?;
    Ok(d::DeletePaymentInstrumentResponse {
        status: status_out(status),
    })
}

async fn balance(
    dp: &DataPlane,
    caller: &Principal,
    req: d::GetPaymentInstrumentBalanceRequest,
) -> CoreResult<d::GetPaymentInstrumentBalanceResponse> {
    let (i, amount) = dp
        .balance(
            &actor(caller, req.user_id),
            &req.payment_manager_arn,
            &req.payment_connector_id,
            &req.payment_instrument_id,
            chain_in(req.chain),
        )
        .await?;
    Ok(d::GetPaymentInstrumentBalanceResponse {
        token_balance: d::TokenBalance {
            amount: amount.to_string(),
            decimals: 6,
            token: d::InstrumentBalanceToken::Usdc,
            network: network_out(i.network),
            chain: req.chain,
        },
        payment_instrument_id: i.id,
    })
}

// ----- sessions and payments ---------------------------------------------------------------

fn usd(micros: i64) -> d::Amount {
    d::Amount {
        value: format_usd(micros),
        currency: d::Currency::Usd,
    }
}

fn session_view(caller: &Caller, s: Session) -> d::PaymentSession {
    d::PaymentSession {
        payment_manager_arn: purser_core::control::manager_arn(caller, &s.manager_id),
        limits: s.cap.map(|c| d::SessionLimits {
            max_spend_amount: usd(c),
        }),
        available_limits: s.remaining().map(|r| d::AvailableLimits {
            available_spend_amount: Some(usd(r)),
            updated_at: Some(Timestamp(s.updated_at)),
        }),
        expiry_time_in_minutes: s.expiry_minutes,
        created_at: Timestamp(s.created_at),
        updated_at: Timestamp(s.updated_at),
        payment_session_id: s.id,
        user_id: s.user_id,
    }
}

async fn create_session(
    dp: &DataPlane,
    caller: &Principal,
    mut req: d::CreatePaymentSessionRequest,
) -> CoreResult<d::CreatePaymentSessionResponse> {
    req.agent_name = None;
    let idem = idempotency(req.client_token.take(), &req);
    let input = SessionInput {
        manager_arn: req.payment_manager_arn,
        expiry_minutes: req.expiry_time_in_minutes,
        max_spend: req.limits.map(|l| l.max_spend_amount.value),
    };
    let s = dp
        .create_session(&actor(caller, req.user_id), input, idem.as_ref())
        .await?;
    Ok(d::CreatePaymentSessionResponse {
        payment_session: session_view(caller, s),
    })
}

async fn get_session(
    dp: &DataPlane,
    caller: &Principal,
    req: d::GetPaymentSessionRequest,
) -> CoreResult<d::GetPaymentSessionResponse> {
    let s = dp
        .get_session(
            &actor(caller, req.user_id),
            &req.payment_manager_arn,
            &req.payment_session_id,
        )
        .await?;
    Ok(d::GetPaymentSessionResponse {
        payment_session: session_view(caller, s),
    })
}

async fn list_sessions(
    dp: &DataPlane,
    caller: &Principal,
    req: d::ListPaymentSessionsRequest,
) -> CoreResult<d::ListPaymentSessionsResponse> {
    let page = dp
        .list_sessions(
            &actor(caller, req.user_id),
            &req.payment_manager_arn,
            req.max_results,
            req.next_token.as_deref(),
        )
        .await?;
    Ok(d::ListPaymentSessionsResponse {
        payment_sessions: page
            .items
            .into_iter()
            .map(|s| d::PaymentSessionSummary {
                payment_manager_arn: purser_core::control::manager_arn(caller, &s.manager_id),
                expiry_time_in_minutes: s.expiry_minutes,
                created_at: Timestamp(s.created_at),
                updated_at: Timestamp(s.updated_at),
                payment_session_id: s.id,
                user_id: s.user_id,
            })
            .collect(),
        next_token: page.next,
    })
}

async fn delete_session(
    dp: &DataPlane,
    caller: &Principal,
    req: d::DeletePaymentSessionRequest,
) -> CoreResult<d::DeletePaymentSessionResponse> {
    dp.delete_session(
        &actor(caller, req.user_id),
        &req.payment_manager_arn,
        &req.payment_session_id,
    )
    .await?;
    Ok(d::DeletePaymentSessionResponse {
        status: d::PaymentSessionStatus::Deleted,
    })
}

fn payment_view(caller: &Caller, p: Payment) -> CoreResult<d::ProcessPaymentResponse> {
    let malformed = || CoreError::Internal("A stored payment output is malformed.".into());
    let output: serde_json::Value = serde_json::from_str(&p.output).map_err(|_| malformed())?;
    // x402 stores the scheme payload; MPP `{"selectedPaymentId", "paymentCredential"}`.
    let (payment_type, payment_output) = if p.payment_type == PaymentType::Mpp.as_str() {
        let text = |k: &str| output.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(selected_payment_id), Some(payment_credential)) =
            (text("selectedPaymentId"), text("paymentCredential"))
        else {
            return Err(malformed());
        };
        (
            d::PaymentType::Mpp,
            d::PaymentOutput::Mpp(d::MppPaymentOutput {
                version: p.version,
                selected_payment_id,
                payment_credential,
            }),
        )
    } else {
        (
            d::PaymentType::CryptoX402,
            d::PaymentOutput::CryptoX402(d::CryptoX402PaymentOutput {
                version: p.version,
                payload: output,
            }),
        )
    };
    Ok(d::ProcessPaymentResponse {
        payment_manager_arn: purser_core::control::manager_arn(caller, &p.manager_id),
        payment_type,
        status: d::PaymentStatus::ProofGenerated,
        payment_output,
        created_at: Timestamp(p.created_at),
        updated_at: Timestamp(p.created_at),
        process_payment_id: p.id,
        payment_session_id: p.session_id,
        payment_instrument_id: p.instrument_id,
    })
}

async fn process_payment(
    dp: &DataPlane,
    caller: &Principal,
    mut req: d::ProcessPaymentRequest,
) -> CoreResult<d::ProcessPaymentResponse> {
    // recorded with the payment (history), never part of the request's identity
    let agent_name = req.agent_name.take();
    let idem = idempotency(req.client_token.take(), &req);
    let input = match req.payment_input {
        d::PaymentInput::CryptoX402(x) => PaymentInput::X402 {
            version: x.version,
            payload: x.payload,
            permit2_allowance_limit: x.permit2_allowance_limit,
        },
        d::PaymentInput::Mpp(m) => PaymentInput::Mpp {
            version: m.version,
            www_authenticate_headers: m.www_authenticate_headers,
            buyer_pays_gas_fees: m.buyer_pays_gas_fees,
        },
    };
    let request = PaymentRequest {
        manager_arn: req.payment_manager_arn,
        session_id: req.payment_session_id,
        instrument_id: req.payment_instrument_id,
        payment_type: match req.payment_type {
            d::PaymentType::CryptoX402 => PaymentType::CryptoX402,
            d::PaymentType::Mpp => PaymentType::Mpp,
        },
        input,
        agent_name,
    };
    let p = dp
        .process_payment(&actor(caller, req.user_id), request, idem.as_ref())
        .await?;
    payment_view(caller, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_hide_personal_data() {
        assert_eq!(mask_email("alice@example.com"), "a***@e***.com");
        assert_eq!(mask_phone("+14155550123"), "+*********23");
        let masked = mask_linked(&[d::LinkedAccount::OAuth2(d::LinkedAccountOAuth2::Google(
            d::OAuth2Authentication {
                sub: "123".into(),
                email_address: Some("bob.smith@corp.example.org".into()),
                name: None,
                username: None,
            },
        ))]);
        let text = serde_json::to_string(&masked).unwrap();
        assert!(!text.contains("bob.smith"), "{text}");
        assert!(!text.contains("corp.example"), "{text}");
    }
}
