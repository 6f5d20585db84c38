//! Purser's extension API for operators, under `/purser/v1/`: the payment history
//! (filters, keyset pagination, JSON Lines / CSV export), refusals, spend over time, and
//! spending policies. Beside the AgentCore API, never inside it: no AgentCore path starts
//! with `/purser/`, and the generated AWS types are not used here. The contract is in
//! README.md ("Extension API").
//!
//! Authentication is SigV4 with the account's access key (service `bedrock-agentcore`,
//! like the AWS operations); the web console, which authenticates its own users, calls
//! [`ext_dispatch`] with the account it verified. Errors are AWS-shaped.
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use purser_core::domain::{Payment, Refusal, RefusalReason, SpendingPolicy, StoredPolicy};
use purser_core::history::{Bucket, HistoryPage, Spend, UserSpending};
use purser_core::store::{Keyset, PaymentFilter, RefusalFilter};
use purser_core::{Caller, CoreError};
use purser_model::AwsError;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::AppState;

/// Where the extension API lives.
pub const BASE: &str = "/purser/v1";

/// Payments per database read while exporting.
const EXPORT_CHUNK: usize = 500;

/// The CSV export's columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "paymentId",
    "createdAt",
    "paymentManagerId",
    "userId",
    "agentName",
    "paymentSessionId",
    "paymentInstrumentId",
    "paymentType",
    "scheme",
    "version",
    "network",
    "payer",
    "payee",
    "asset",
    "amount",
    "value",
    "debited",
];

/// The route for `/purser/v1/*`: SigV4, then [`ext_dispatch`], and one access-log line.
pub async fn handle(State(state): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let mut account = None;
    let response = match authenticated(&state, &parts, body).await {
        Ok((caller, body)) => {
            account = Some(caller.account_id.clone());
            let rest = path.strip_prefix(BASE).unwrap_or("");
            ext_dispatch(
                &state,
                &caller,
                &parts.method,
                rest,
                parts.uri.query(),
                &body,
            )
            .await
        }
        Err(e) => with_request_id(crate::pipeline::error_response(&e)),
    };
    tracing::info!(
        request_id = response
            .headers()
            .get("x-amzn-RequestId")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-"),
        method = %parts.method,
        path = %path,
        operation = "purser-ext",
        account_id = account.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        error = response
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

async fn authenticated(
    state: &AppState,
    parts: &http::request::Parts,
    body: Body,
) -> Result<(Caller, Bytes), AwsError> {
    let body = axum::body::to_bytes(body, crate::pipeline::MAX_BODY)
        .await
        .map_err(|_| {
            AwsError::other(
                "RequestEntityTooLargeException",
                413,
                format!(
                    "Request body is larger than the limit of {} bytes.",
                    crate::pipeline::MAX_BODY
                ),
            )
        })?;
    if crate::bearer::is_bearer(&parts.headers) {
        return Err(AwsError::access_denied(
            "The extension API accepts SigV4 requests only.",
        ));
    }
    let auth = crate::auth::authenticate(state, parts, &body)?;
    Ok((auth.caller, body))
}

fn with_request_id(mut r: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&purser_core::ids::uuid_v4()) {
        r.headers_mut().insert("x-amzn-RequestId", v);
    }
    r
}

/// Run one extension operation for an already authenticated account. `path` is what
/// follows `/purser/v1` (e.g. `/payments`), `query` the raw query string. The web
/// console calls this after its own login check.
pub(crate) async fn ext_dispatch(
    state: &AppState,
    caller: &Caller,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Response {
    let result = route(state, caller, method, path, query, body).await;
    with_request_id(match result {
        Ok(r) => r,
        Err(e) => crate::pipeline::error_response(&e),
    })
}

type Reply = Result<Response, AwsError>;

fn core(e: CoreError) -> AwsError {
    crate::errors::to_aws(e)
}

async fn route(
    state: &AppState,
    caller: &Caller,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Reply {
    let segments: Vec<String> = path
        .strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let mut q = Query::parse(query)?;
    let allow = |allowed: &[&str]| -> Result<(), AwsError> {
        if allowed.contains(&method.as_str()) {
            Ok(())
        } else {
            Err(AwsError::other(
                "UnknownOperationException",
                405,
                format!(
                    "Method {method} is not allowed on {BASE}{path}; allowed: {}.",
                    allowed.join(", ")
                ),
            ))
        }
    };
    let dp = &*state.inner.data;
    match seg.as_slice() {
        ["payments"] => {
            allow(&["GET"])?;
            let filter = payment_filter(&mut q)?;
            let (max, token) = (q.int("maxResults")?, q.take("nextToken"));
            q.done()?;
            let page = dp
                .history_payments(caller, filter, max, token.as_deref())
                .await
                .map_err(core)?;
            Ok(json_reply(
                200,
                page_json("payments", page, |p| payment_json(caller, p)),
            ))
        }
        ["payments", "export"] => {
            allow(&["GET"])?;
            let format = q.take("format").unwrap_or_else(|| "jsonl".into());
            let filter = payment_filter(&mut q)?;
            q.done()?;
            export(state, caller, filter, &format).await
        }
        ["refusals"] => {
            allow(&["GET"])?;
            let filter = RefusalFilter {
                manager_id: q.take("managerId"),
                user_id: q.take("userId"),
                session_id: q.take("sessionId"),
                reason: q
                    .take("reason")
                    .map(|r| {
                        RefusalReason::parse(&r).ok_or_else(|| {
                            AwsError::validation_field(
                                "reason",
                                "reason must be one of SESSION_BUDGET, SESSION_EXPIRED, POLICY.",
                            )
                        })
                    })
                    .transpose()?,
                from: q.time("from")?,
                to: q.time("to")?,
            };
            let (max, token) = (q.int("maxResults")?, q.take("nextToken"));
            q.done()?;
            let page = dp
                .history_refusals(caller, filter, max, token.as_deref())
                .await
                .map_err(core)?;
            Ok(json_reply(200, page_json("refusals", page, refusal_json)))
        }
        ["spend"] => {
            allow(&["GET"])?;
            let bucket = q
                .take("bucket")
                .and_then(|b| Bucket::parse(&b))
                .ok_or_else(|| {
                    AwsError::validation_field("bucket", "bucket must be hour or day.")
                })?;
            let filter = PaymentFilter {
                manager_id: q.take("managerId"),
                user_id: q.take("userId"),
                from: q.time("from")?,
                to: q.time("to")?,
                ..PaymentFilter::default()
            };
            q.done()?;
            let spend = dp
                .history_spend(caller, filter, bucket)
                .await
                .map_err(core)?;
            Ok(json_reply(200, spend_json(&spend)))
        }
        ["managers", m, "policy"] => {
            q.done()?;
            policy_op(state, caller, method, m, None, body).await
        }
        ["managers", m, "users", u, "policy"] => {
            q.done()?;
            check_user_id(u)?;
            policy_op(state, caller, method, m, Some(*u), body).await
        }
        ["managers", m, "policies"] => {
            allow(&["GET"])?;
            let (max, token) = (q.int("maxResults")?, q.take("nextToken"));
            q.done()?;
            let page = dp
                .policy_list(caller, m, max, token.as_deref())
                .await
                .map_err(core)?;
            Ok(json_reply(
                200,
                page_json("policies", page, stored_policy_json),
            ))
        }
        ["managers", m, "users", u, "spending"] => {
            allow(&["GET"])?;
            q.done()?;
            check_user_id(u)?;
            let s = dp.user_spending(caller, m, u).await.map_err(core)?;
            Ok(json_reply(200, spending_json(m, u, &s)))
        }
        _ => Err(AwsError::other(
            "UnknownOperationException",
            404,
            format!("No extension operation matches {method} {BASE}{path}."),
        )),
    }
}

fn check_user_id(u: &str) -> Result<(), AwsError> {
    if u.is_empty() || u.len() > 256 {
        return Err(AwsError::validation_field(
            "userId",
            "userId must be 1 to 256 characters.",
        ));
    }
    Ok(())
}

async fn policy_op(
    state: &AppState,
    caller: &Caller,
    method: &Method,
    manager_id: &str,
    user_id: Option<&str>,
    body: &[u8],
) -> Reply {
    let dp = &*state.inner.data;
    match *method {
        Method::GET => {
            let p = dp
                .policy_get(caller, manager_id, user_id)
                .await
                .map_err(core)?;
            Ok(json_reply(200, stored_policy_json(&p)))
        }
        Method::PUT => {
            let policy = parse_policy(body)?;
            let p = dp
                .policy_put(caller, manager_id, user_id, policy)
                .await
                .map_err(core)?;
            Ok(json_reply(200, stored_policy_json(&p)))
        }
        Method::DELETE => {
            dp.policy_delete(caller, manager_id, user_id)
                .await
                .map_err(core)?;
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            Ok(r)
        }
        _ => Err(AwsError::other(
            "UnknownOperationException",
            405,
            format!("Method {method} is not allowed on a policy; allowed: GET, PUT, DELETE."),
        )),
    }
}

/// A policy from a PUT body: every member optional, unknown members refused.
fn parse_policy(body: &[u8]) -> Result<SpendingPolicy, AwsError> {
    use purser_core::history::{parse_payee_list, parse_policy_amount};
    use purser_core::policies::{MAX_PER_PAYMENT, MAX_ROLLING_CAP};
    let value: Value = serde_json::from_slice(if body.is_empty() { b"{}" } else { body })
        .map_err(|_| AwsError::cannot_parse("The request body is not valid JSON."))?;
    let Value::Object(obj) = value else {
        return Err(AwsError::validation(
            "The request body must be a JSON object (a spending policy).",
        ));
    };
    let mut p = SpendingPolicy::default();
    for (k, v) in obj {
        let amount = |max: i64| -> Result<i64, AwsError> {
            match &v {
                Value::String(s) => parse_policy_amount(&k, s, max).map_err(core),
                _ => Err(AwsError::validation_field(
                    k.clone(),
                    format!("{k} must be a string (a decimal number of USD)."),
                )),
            }
        };
        let list = || -> Result<Vec<String>, AwsError> {
            let bad =
                || AwsError::validation_field(k.clone(), format!("{k} must be a list of strings."));
            let Value::Array(items) = &v else {
                return Err(bad());
            };
            let items = items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
                .collect::<Result<Vec<_>, _>>()?;
            parse_payee_list(&k, items).map_err(core)
        };
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "dailyCap" => p.daily_cap = Some(amount(MAX_ROLLING_CAP)?),
            "monthlyCap" => p.monthly_cap = Some(amount(MAX_ROLLING_CAP)?),
            "maxPerPayment" => p.max_per_payment = Some(amount(MAX_PER_PAYMENT)?),
            "payeeAllowList" => p.payee_allow = Some(list()?),
            "payeeDenyList" => p.payee_deny = Some(list()?),
            _ => {
                return Err(AwsError::validation_field(
                    k.clone(),
                    format!(
                        "Unknown member {k}: a spending policy has dailyCap, monthlyCap, maxPerPayment, payeeAllowList and payeeDenyList."
                    ),
                ));
            }
        }
    }
    Ok(p)
}

// ----- query strings ---------------------------------------------------------------

/// The query string's parameters; each is taken once, and what is left is refused.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Result<Query, AwsError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if out.iter().any(|(x, _)| *x == k) {
                return Err(AwsError::validation_field(
                    k.to_string(),
                    format!("Query parameter {k} is given more than once."),
                ));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Query(out))
    }

    fn take(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.remove(at).1)
    }

    fn int(&mut self, name: &str) -> Result<Option<i64>, AwsError> {
        self.take(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    AwsError::validation_field(name, format!("{name} must be an integer."))
                })
            })
            .transpose()
    }

    fn time(&mut self, name: &str) -> Result<Option<OffsetDateTime>, AwsError> {
        self.take(name)
            .map(|v| {
                OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339).map_err(
                    |_| {
                        AwsError::validation_field(
                            name,
                            format!("{name} must be an RFC 3339 time, like 2026-01-31T12:00:00Z."),
                        )
                    },
                )
            })
            .transpose()
    }

    fn done(self) -> Result<(), AwsError> {
        match self.0.first() {
            None => Ok(()),
            Some((k, _)) => Err(AwsError::validation_field(
                k.clone(),
                format!("Unknown query parameter {k}."),
            )),
        }
    }
}

fn payment_filter(q: &mut Query) -> Result<PaymentFilter, AwsError> {
    let payment_type = q.take("paymentType");
    if let Some(t) = &payment_type
        && t != "CRYPTO_X402"
        && t != "MPP"
    {
        return Err(AwsError::validation_field(
            "paymentType",
            "paymentType must be CRYPTO_X402 or MPP.",
        ));
    }
    Ok(PaymentFilter {
        manager_id: q.take("managerId"),
        user_id: q.take("userId"),
        session_id: q.take("sessionId"),
        instrument_id: q.take("instrumentId"),
        payee: q.take("payee"),
        payment_type,
        scheme: q.take("scheme"),
        network: q.take("network"),
        from: q.time("from")?,
        to: q.time("to")?,
    })
}

// ----- replies -----------------------------------------------------------------------

fn json_reply(status: u16, body: Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `2026-11-30T01:02:03.456Z`.
pub(crate) fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Micro-USD with 6 decimals: 1500000 -> "1.500000".
pub(crate) fn usd6(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

fn page_json<T>(key: &str, page: HistoryPage<T>, f: impl Fn(&T) -> Value) -> Value {
    let mut obj = Map::new();
    obj.insert(key.into(), Value::Array(page.items.iter().map(f).collect()));
    if let Some(n) = page.next {
        obj.insert("nextToken".into(), Value::String(n));
    }
    Value::Object(obj)
}

/// A payment as the history shows it: never its signed output (a bearer authorization
/// to pay), never key material.
fn payment_json(caller: &Caller, p: &Payment) -> Value {
    json!({
        "paymentId": p.id,
        "createdAt": timestamp(p.created_at),
        "paymentManagerId": p.manager_id,
        "paymentManagerArn": purser_core::control::manager_arn(caller, &p.manager_id),
        "userId": p.user_id,
        "agentName": p.agent_name,
        "paymentSessionId": p.session_id,
        "paymentInstrumentId": p.instrument_id,
        "paymentType": p.payment_type,
        "scheme": p.scheme,
        "version": p.version,
        "network": p.network,
        "payer": p.payer,
        "payee": p.payee,
        "asset": p.asset,
        "amount": p.amount,
        "value": usd6(p.value),
        "debited": usd6(p.debited),
    })
}

fn refusal_json(r: &Refusal) -> Value {
    json!({
        "refusalId": r.id,
        "createdAt": timestamp(r.created_at),
        "paymentManagerId": r.manager_id,
        "userId": r.user_id,
        "agentName": r.agent_name,
        "paymentSessionId": r.session_id,
        "paymentInstrumentId": r.instrument_id,
        "reason": r.reason.as_str(),
        "policy": r.policy,
        "paymentType": r.payment_type,
        "scheme": r.scheme,
        "network": r.network,
        "payee": r.payee,
        "amount": r.amount,
        "value": usd6(r.value),
        "message": r.message,
    })
}

fn policy_json(p: &SpendingPolicy) -> Value {
    let mut obj = Map::new();
    for (k, v) in [
        ("dailyCap", p.daily_cap),
        ("monthlyCap", p.monthly_cap),
        ("maxPerPayment", p.max_per_payment),
    ] {
        if let Some(v) = v {
            obj.insert(k.into(), Value::String(usd6(v)));
        }
    }
    for (k, v) in [
        ("payeeAllowList", &p.payee_allow),
        ("payeeDenyList", &p.payee_deny),
    ] {
        if let Some(v) = v {
            obj.insert(k.into(), json!(v));
        }
    }
    Value::Object(obj)
}

fn stored_policy_json(p: &StoredPolicy) -> Value {
    json!({
        "managerId": p.manager_id,
        "userId": p.user_id,
        "policy": policy_json(&p.policy),
        "updatedAt": timestamp(p.updated_at),
    })
}

fn spending_json(manager_id: &str, user_id: &str, s: &UserSpending) -> Value {
    json!({
        "managerId": manager_id,
        "userId": user_id,
        "policy": policy_json(&s.policy),
        "spentLastDay": usd6(s.spent_day),
        "spentLastMonth": usd6(s.spent_month),
    })
}

fn spend_json(s: &Spend) -> Value {
    json!({
        "bucket": s.bucket.as_str(),
        "from": timestamp(s.from),
        "to": timestamp(s.to),
        "points": s.points.iter().map(|b| json!({
            "start": timestamp(b.start),
            "payments": b.payments,
            "value": usd6(b.value),
        })).collect::<Vec<_>>(),
    })
}

// ----- export ------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Format {
    Jsonl,
    Csv,
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or LF, with
/// quotes doubled.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_row(fields: impl IntoIterator<Item = String>) -> String {
    let mut line = fields
        .into_iter()
        .map(|f| csv_field(&f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

fn payment_csv(p: &Payment) -> String {
    csv_row([
        p.id.clone(),
        timestamp(p.created_at),
        p.manager_id.clone(),
        p.user_id.clone(),
        p.agent_name.clone().unwrap_or_default(),
        p.session_id.clone(),
        p.instrument_id.clone(),
        p.payment_type.clone(),
        p.scheme.clone(),
        p.version.clone(),
        p.network.clone(),
        p.payer.clone(),
        p.payee.clone(),
        p.asset.clone(),
        p.amount.clone(),
        usd6(p.value),
        usd6(p.debited),
    ])
}

/// Stream every matching payment, newest first, reading `EXPORT_CHUNK` at a time by
/// keyset (constant memory whatever the history's size).
async fn export(state: &AppState, caller: &Caller, filter: PaymentFilter, format: &str) -> Reply {
    let format = match format {
        "jsonl" => Format::Jsonl,
        "csv" => Format::Csv,
        _ => {
            return Err(AwsError::validation_field(
                "format",
                "format must be jsonl or csv.",
            ));
        }
    };
    // The first chunk is read before the reply starts, so bad filters answer an error.
    let dp = state.inner.data.clone();
    let first = dp
        .history_chunk(caller, &filter, None, EXPORT_CHUNK)
        .await
        .map_err(core)?;
    struct Cursor {
        first: Option<Vec<Payment>>,
        before: Option<Keyset>,
        header: bool,
        done: bool,
    }
    let caller = caller.clone();
    let cursor = Cursor {
        first: Some(first),
        before: None,
        header: matches!(format, Format::Csv),
        done: false,
    };
    let stream = futures_util::stream::unfold(cursor, move |mut c| {
        let dp = dp.clone();
        let caller = caller.clone();
        let filter = filter.clone();
        async move {
            if c.done {
                return None;
            }
            let mut out = String::new();
            if c.header {
                c.header = false;
                out.push_str(&csv_row(CSV_COLUMNS.iter().map(|s| s.to_string())));
            }
            let chunk = match c.first.take() {
                Some(first) => first,
                None => match dp
                    .history_chunk(&caller, &filter, c.before.as_ref(), EXPORT_CHUNK)
                    .await
                {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        tracing::error!(error = %e, "exporting payments failed");
                        c.done = true;
                        let err = std::io::Error::other("export failed");
                        return Some((Err(err), c));
                    }
                },
            };
            if chunk.len() < EXPORT_CHUNK {
                c.done = true;
            }
            if let Some(last) = chunk.last() {
                c.before = Some(Keyset {
                    created_at: last.created_at,
                    id: last.id.clone(),
                });
            }
            for p in &chunk {
                match format {
                    Format::Jsonl => {
                        out.push_str(&payment_json(&caller, p).to_string());
                        out.push('\n');
                    }
                    Format::Csv => out.push_str(&payment_csv(p)),
                }
            }
            Some((Ok::<Bytes, std::io::Error>(Bytes::from(out)), c))
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    let (mime, ext) = match format {
        Format::Jsonl => ("application/x-ndjson", "jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"purser-payments.{ext}\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(usd6(1_500_000), "1.500000");
        assert_eq!(usd6(1), "0.000001");
    }
}
