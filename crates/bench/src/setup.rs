//! Setup through the real API: a manager, a SelfCustody connector, and per "agent" one
//! embedded wallet and one payment session (or, for the instruments mode, one wallet).
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::client::{Conn, Signer};
use crate::kinds::PayKind;

pub const USER: &str = "bench";

/// What a load client pays with.
#[derive(Clone, Debug)]
pub struct Agent {
    pub session_id: String,
    pub instrument_id: String,
}

pub struct Fixture {
    pub manager_arn: String,
    pub agents: Vec<Agent>,
}

fn field(v: &Value, path: &[&str]) -> anyhow::Result<String> {
    let mut cur = v;
    for p in path {
        cur = cur
            .get(p)
            .with_context(|| format!("reply has no '{}': {v}", path.join(".")))?;
    }
    cur.as_str()
        .map(str::to_string)
        .with_context(|| format!("'{}' is not a string: {v}", path.join(".")))
}

async fn wait_ready(conn: &mut Conn, signer: &Signer, path: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = conn.call(signer, "GET", path, None, &Value::Null).await?;
        match v.get("status").and_then(Value::as_str) {
            Some("READY") => return Ok(()),
            Some(s) if s.ends_with("FAILED") => bail!("{path} is {s}"),
            _ => {}
        }
        if Instant::now() > deadline {
            bail!("{path} did not become READY within 20 s: {v}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A READY manager and a READY SelfCustody connector in it.
pub struct Control {
    pub manager_arn: String,
    pub connector_id: String,
}

/// CreatePaymentManager (AWS_IAM) and CreatePaymentConnector (SelfCustody), each polled
/// until READY.
pub async fn control(conn: &mut Conn, signer: &Signer) -> anyhow::Result<Control> {
    let m = conn
        .call(
            signer,
            "POST",
            "/payments/managers",
            None,
            &json!({"name": "Bench", "authorizerType": "AWS_IAM",
                    "roleArn": "arn:aws:iam::123456789012:role/bench"}),
        )
        .await
        .context("CreatePaymentManager")?;
    let manager_id = field(&m, &["paymentManagerId"])?;
    let manager_arn = field(&m, &["paymentManagerArn"])?;
    wait_ready(conn, signer, &format!("/payments/managers/{manager_id}")).await?;

    let c = conn
        .call(
            signer,
            "POST",
            &format!("/payments/managers/{manager_id}/connectors"),
            None,
            &json!({"name": "wallets", "type": "SelfCustody", "credentialProviderConfigurations": []}),
        )
        .await
        .context("CreatePaymentConnector")?;
    let connector_id = field(&c, &["paymentConnectorId"])?;
    wait_ready(
        conn,
        signer,
        &format!("/payments/managers/{manager_id}/connectors/{connector_id}"),
    )
    .await?;
    Ok(Control {
        manager_arn,
        connector_id,
    })
}

pub const CREATE_INSTRUMENT: &str = "/payments/createPaymentInstrument";
pub const LIST_INSTRUMENTS: &str = "/payments/listPaymentInstruments";

/// The CreatePaymentInstrument body: an embedded wallet on `network` (`ETHEREUM`,
/// `SOLANA`) for [`USER`].
pub fn instrument_body(ctl: &Control, network: &str) -> Value {
    json!({"paymentManagerArn": ctl.manager_arn, "paymentConnectorId": ctl.connector_id,
           "paymentInstrumentType": "EMBEDDED_CRYPTO_WALLET",
           "paymentInstrumentDetails": {"embeddedCryptoWallet":
               {"network": network, "linkedAccounts": []}}})
}

/// CreatePaymentInstrument; returns the new instrument's id and status.
pub async fn create_instrument(
    conn: &mut Conn,
    signer: &Signer,
    ctl: &Control,
    network: &str,
) -> anyhow::Result<(String, String)> {
    let i = conn
        .call(
            signer,
            "POST",
            CREATE_INSTRUMENT,
            Some(USER),
            &instrument_body(ctl, network),
        )
        .await
        .context("CreatePaymentInstrument")?;
    Ok((
        field(&i, &["paymentInstrument", "paymentInstrumentId"])?,
        field(&i, &["paymentInstrument", "status"])?,
    ))
}

/// The payment fixture: the control-plane setup, then per agent one wallet (on the
/// network of `kind`) and one 10000 USD session.
pub async fn run(
    addr: SocketAddr,
    signer: &Signer,
    agents: usize,
    kind: PayKind,
) -> anyhow::Result<Fixture> {
    let mut conn = Conn::connect(addr).await?;
    let ctl = control(&mut conn, signer).await?;
    let mut out = Vec::with_capacity(agents);
    for _ in 0..agents {
        let (instrument_id, _) =
            create_instrument(&mut conn, signer, &ctl, kind.instrument_network()).await?;
        let s = conn
            .call(
                signer,
                "POST",
                "/payments/createPaymentSession",
                Some(USER),
                &json!({"paymentManagerArn": ctl.manager_arn, "expiryTimeInMinutes": 480,
                        "limits": {"maxSpendAmount": {"value": "10000", "currency": "USD"}}}),
            )
            .await
            .context("CreatePaymentSession")?;
        let session_id = field(&s, &["paymentSession", "paymentSessionId"])?;
        out.push(Agent {
            session_id,
            instrument_id,
        });
    }
    Ok(Fixture {
        manager_arn: ctl.manager_arn,
        agents: out,
    })
}

/// The ProcessPayment body one agent sends: a payment of `kind` for one atomic unit of
/// USDC (0.000001 USD), so a 10000 USD session covers 10^10 payments. The default kind,
/// `exact-evm`, is x402 v2 `exact` on Base Sepolia ([`requirement`]).
pub fn payment_body(manager_arn: &str, agent: &Agent, kind: PayKind) -> Value {
    let (payment_type, input) = kind.wire_input();
    json!({
        "paymentManagerArn": manager_arn,
        "paymentSessionId": agent.session_id,
        "paymentInstrumentId": agent.instrument_id,
        "paymentType": payment_type,
        "paymentInput": input
    })
}

/// The x402 PaymentRequirements the agent picked.
pub fn requirement() -> Value {
    json!({
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": "1",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        "maxTimeoutSeconds": 300,
        "extra": {"name": "USDC", "version": "2"}
    })
}
