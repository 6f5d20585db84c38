//! `purser history` and `purser policies`: the operator's commands. They call the
//! extension API (`/purser/v1/`) of a running Purser over HTTP, signed with SigV4 like
//! any AWS client, so they work against any node, SQLite or PostgreSQL, and never open
//! the database themselves.
use std::io::Write;
use std::time::SystemTime;

use anyhow::{Context, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use clap::{Args, Subcommand};

/// Where and as whom to call.
#[derive(Debug, Args)]
pub struct Endpoint {
    /// Purser's URL [env: PURSER_ENDPOINT] [default: http://127.0.0.1:8402]
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Region the server serves [env: AWS_REGION, AWS_DEFAULT_REGION] [default: us-east-1]
    #[arg(long)]
    pub region: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    /// List refusals instead of signed payments.
    #[arg(long)]
    pub refusals: bool,
    #[arg(long)]
    pub manager_id: Option<String>,
    /// Needs --manager-id.
    #[arg(long)]
    pub user_id: Option<String>,
    #[arg(long)]
    pub session_id: Option<String>,
    #[arg(long)]
    pub instrument_id: Option<String>,
    #[arg(long)]
    pub payee: Option<String>,
    /// CRYPTO_X402 or MPP.
    #[arg(long)]
    pub payment_type: Option<String>,
    #[arg(long)]
    pub scheme: Option<String>,
    #[arg(long)]
    pub network: Option<String>,
    /// With --refusals: SESSION_BUDGET, SESSION_EXPIRED or POLICY.
    #[arg(long)]
    pub reason: Option<String>,
    /// Inclusive lower bound, RFC 3339 (2026-11-30T00:00:00Z).
    #[arg(long)]
    pub from: Option<String>,
    /// Exclusive upper bound, RFC 3339.
    #[arg(long)]
    pub to: Option<String>,
    /// jsonl (one JSON object per line) or csv (payments only).
    #[arg(long, default_value = "jsonl")]
    pub format: String,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show the policy of a manager, or of one user under it.
    Get(PolicyTarget),
    /// Set (replace) the policy of a manager, or of one user under it.
    Set(PolicySet),
    /// Remove the policy of a manager, or of one user under it.
    Delete(PolicyTarget),
    /// The manager's policy and every user policy under it.
    List(PolicyTarget),
    /// A user's effective policy and what they spent in the rolling windows.
    Spending(PolicyTarget),
}

#[derive(Debug, Args)]
pub struct PolicyTarget {
    #[command(flatten)]
    pub endpoint: Endpoint,
    #[arg(long)]
    pub manager_id: String,
    #[arg(long)]
    pub user_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct PolicySet {
    #[command(flatten)]
    pub target: PolicyTarget,
    /// USD over a rolling 24 hours, across all of a user's sessions.
    #[arg(long)]
    pub daily_cap: Option<String>,
    /// USD over a rolling 30 days.
    #[arg(long)]
    pub monthly_cap: Option<String>,
    /// USD per payment.
    #[arg(long)]
    pub max_per_payment: Option<String>,
    /// A payee allowed (repeat for several); when any is given, only these are.
    #[arg(long = "allow-payee")]
    pub allow: Vec<String>,
    /// A payee refused (repeat for several).
    #[arg(long = "deny-payee")]
    pub deny: Vec<String>,
}

struct Client {
    http: reqwest::Client,
    base: String,
    host: String,
    identity: Identity,
    region: String,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

impl Client {
    fn new(e: &Endpoint) -> anyhow::Result<Client> {
        let base = e
            .endpoint_url
            .clone()
            .or_else(|| env("PURSER_ENDPOINT"))
            .unwrap_or_else(|| "http://127.0.0.1:8402".into());
        let base = base.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base).with_context(|| format!("endpoint {base:?}"))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => bail!("endpoint {base:?} has no host"),
        };
        let region = e
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let (akid, secret) = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(a), Some(s)) => (a, s),
            _ => match (env("PURSER_ACCESS_KEY_ID"), env("PURSER_SECRET_ACCESS_KEY")) {
                (Some(a), Some(s)) => (a, s),
                _ => bail!(
                    "no credential: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or PURSER_ACCESS_KEY_ID and PURSER_SECRET_ACCESS_KEY) to an access key of the account"
                ),
            },
        };
        Ok(Client {
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(10))
                .build()?,
            base,
            host,
            identity: Credentials::new(akid, secret, None, None, "purser-cli").into(),
            region,
        })
    }

    /// Send one SigV4-signed request to `/purser/v1{path}`.
    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<String>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut url = format!("{}/purser/v1{path}", self.base);
        if !query.is_empty() {
            let q = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())))
                .finish()
                // SigV4 canonical queries encode a space as %20
                .replace('+', "%20");
            url = format!("{url}?{q}");
        }
        let body = body.unwrap_or_default();
        let mut req = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("host", &self.host);
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let mut req = req.body(body.clone())?;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("bedrock-agentcore")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .context("building SigV4 parameters")?
            .into();
        let headers: Vec<(&str, &str)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let signable = SignableRequest::new(
            method,
            &url,
            headers.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .context("making the request signable")?;
        let (instructions, _) = sign(signable, &params)
            .context("SigV4 signing")?
            .into_parts();
        instructions.apply_to_request_http1x(&mut req);
        let req = reqwest::Request::try_from(req)?;
        let resp = self
            .http
            .execute(req)
            .await
            .with_context(|| format!("calling {}", self.base))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let (code, message) = match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => (
                    v["__type"].as_str().unwrap_or("Error").to_string(),
                    v["message"].as_str().unwrap_or("").to_string(),
                ),
                Err(_) => ("Error".into(), text),
            };
            bail!("{code} ({status}): {message}");
        }
        Ok(resp)
    }

    async fn json(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<String>,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let resp = self.send(method, path, query, body).await?;
        let text = resp.text().await?;
        if text.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            serde_json::from_str(&text).context("reading the reply")?,
        ))
    }
}

fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub async fn history(a: HistoryArgs) -> anyhow::Result<()> {
    let client = Client::new(&a.endpoint)?;
    let mut query: Vec<(&str, String)> = Vec::new();
    for (k, v) in [
        ("managerId", &a.manager_id),
        ("userId", &a.user_id),
        ("sessionId", &a.session_id),
        ("from", &a.from),
        ("to", &a.to),
    ] {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    let mut out = std::io::stdout().lock();
    if a.refusals {
        if a.format != "jsonl" {
            bail!("--refusals lists JSON Lines only (--format jsonl)");
        }
        if let Some(r) = &a.reason {
            query.push(("reason", r.clone()));
        }
        loop {
            let page = client
                .json("GET", "/refusals", &query, None)
                .await?
                .unwrap_or_default();
            for r in page["refusals"].as_array().into_iter().flatten() {
                writeln!(out, "{r}")?;
            }
            match page["nextToken"].as_str() {
                Some(t) => {
                    query.retain(|(k, _)| *k != "nextToken");
                    query.push(("nextToken", t.to_string()));
                }
                None => break,
            }
        }
        return Ok(());
    }
    for (k, v) in [
        ("instrumentId", &a.instrument_id),
        ("payee", &a.payee),
        ("paymentType", &a.payment_type),
        ("scheme", &a.scheme),
        ("network", &a.network),
    ] {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    query.push(("format", a.format.clone()));
    let mut resp = client.send("GET", "/payments/export", &query, None).await?;
    while let Some(chunk) = resp.chunk().await? {
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(())
}

pub async fn policies(cmd: PolicyCommand) -> anyhow::Result<()> {
    let (target, method, body) = match &cmd {
        PolicyCommand::Get(t) => (t, "GET", None),
        PolicyCommand::Delete(t) => (t, "DELETE", None),
        PolicyCommand::List(t) => (t, "GET", None),
        PolicyCommand::Spending(t) => (t, "GET", None),
        PolicyCommand::Set(s) => {
            let mut p = serde_json::Map::new();
            for (k, v) in [
                ("dailyCap", &s.daily_cap),
                ("monthlyCap", &s.monthly_cap),
                ("maxPerPayment", &s.max_per_payment),
            ] {
                if let Some(v) = v {
                    p.insert(k.into(), serde_json::Value::String(v.clone()));
                }
            }
            if !s.allow.is_empty() {
                p.insert("payeeAllowList".into(), serde_json::json!(s.allow));
            }
            if !s.deny.is_empty() {
                p.insert("payeeDenyList".into(), serde_json::json!(s.deny));
            }
            (
                &s.target,
                "PUT",
                Some(serde_json::Value::Object(p).to_string()),
            )
        }
    };
    let client = Client::new(&target.endpoint)?;
    let m = seg(&target.manager_id);
    let path = match (&cmd, &target.user_id) {
        (PolicyCommand::List(_), None) => format!("/managers/{m}/policies"),
        (PolicyCommand::List(_), Some(_)) => bail!("policies list takes no --user-id"),
        (PolicyCommand::Spending(_), Some(u)) => {
            format!("/managers/{m}/users/{}/spending", seg(u))
        }
        (PolicyCommand::Spending(_), None) => bail!("policies spending needs --user-id"),
        (_, None) => format!("/managers/{m}/policy"),
        (_, Some(u)) => format!("/managers/{m}/users/{}/policy", seg(u)),
    };
    let mut out = std::io::stdout().lock();
    if let PolicyCommand::List(_) = cmd {
        let mut query: Vec<(&str, String)> = Vec::new();
        loop {
            let page = client
                .json("GET", &path, &query, None)
                .await?
                .unwrap_or_default();
            for p in page["policies"].as_array().into_iter().flatten() {
                writeln!(out, "{p}")?;
            }
            match page["nextToken"].as_str() {
                Some(t) => query = vec![("nextToken", t.to_string())],
                None => break,
            }
        }
        return Ok(());
    }
    if let Some(v) = client.json(method, &path, &[], body).await? {
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    }
    Ok(())
}
