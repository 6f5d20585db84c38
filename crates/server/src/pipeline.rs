//! The one request pipeline every AgentCore operation goes through.
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use purser_model::{AwsError, RouteError};

use crate::AppState;

/// Largest request body accepted (the largest modelled input, a 128 KiB workload identity
/// token, fits many times over).
pub const MAX_BODY: usize = 1024 * 1024;

/// What the pipeline learned about a request, for the access log.
#[derive(Default)]
struct Trace {
    operation: Option<&'static str>,
    account_id: Option<String>,
}

pub async fn handle(State(state): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = purser_core::ids::uuid_v4();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut trace = Trace::default();
    let result = process(&state, req, &mut trace).await;
    let mut response = reply(result);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-RequestId", v);
    }
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-ErrorType")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let labels = [
        ("operation", trace.operation.unwrap_or("unknown")),
        ("status", status_text(status)),
    ];
    purser_metrics::REQUESTS.inc(&labels);
    purser_metrics::REQUEST_SECONDS.observe(&labels, started.elapsed().as_secs_f64());
    tracing::info!(
        request_id = %request_id,
        method = %method,
        path = %path,
        operation = trace.operation.unwrap_or("-"),
        account_id = trace.account_id.as_deref().unwrap_or("-"),
        status,
        error = error_type,
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// The status codes Purser answers with, as label values (no allocation per request).
fn status_text(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        429 => "429",
        500 => "500",
        503 => "503",
        _ if status < 300 => "2xx",
        _ if status < 500 => "4xx",
        _ => "5xx",
    }
}

/// The HTTP response of an operation's result: its JSON output (nothing for 204), or
/// the AWS error.
pub(crate) fn reply(result: Result<(u16, Vec<u8>), AwsError>) -> Response {
    match result {
        Ok((status, body)) => {
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if status != 204 {
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            r
        }
        Err(e) => error_response(&e),
    }
}

pub(crate) fn error_response(e: &AwsError) -> Response {
    let mut r = Response::new(Body::from(e.body()));
    *r.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(e.code) {
        h.insert("x-amzn-ErrorType", v);
    }
    r
}

async fn process(
    state: &AppState,
    req: Request,
    trace: &mut Trace,
) -> Result<(u16, Vec<u8>), AwsError> {
    let (parts, body) = req.into_parts();
    let too_large = || {
        AwsError::other(
            "RequestEntityTooLargeException",
            413,
            format!("Request body is larger than the limit of {MAX_BODY} bytes."),
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| too_large())?;

    let (op, uri_members) = purser_model::find_operation(parts.method.as_str(), parts.uri.path())
        .map_err(|e| match e {
        RouteError::NotFound => AwsError::other(
            "UnknownOperationException",
            404,
            format!(
                "No operation matches {} {}.",
                parts.method,
                parts.uri.path()
            ),
        ),
        RouteError::MethodNotAllowed { allowed } => AwsError::other(
            "UnknownOperationException",
            405,
            format!(
                "Method {} is not allowed on {}; allowed: {}.",
                parts.method,
                parts.uri.path(),
                allowed.join(", ")
            ),
        ),
    })?;
    trace.operation = Some(op.name);

    // The Authorization scheme decides: Bearer (CUSTOM_JWT managers, data plane) or SigV4.
    let (auth, token) = if crate::bearer::is_bearer(&parts.headers) {
        let (auth, token) = crate::bearer::authenticate(state, op, &parts, &body).await?;
        (auth, Some(token))
    } else {
        (crate::auth::authenticate(state, &parts, &body)?, None)
    };
    let caller = auth.caller;
    trace.account_id = Some(caller.account_id.clone());

    let input = Input {
        uri: uri_members,
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        replay_key: auth.replay_key,
    };
    match op.service {
        purser_model::Service::Control => crate::control::dispatch(state, op, &caller, input).await,
        purser_model::Service::Data => crate::data::dispatch(state, op, caller, token, input).await,
    }
}

/// The raw parts of a request that `purser_model::decode_input` reads.
pub struct Input<'a> {
    pub uri: Vec<(&'static str, String)>,
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
    /// The idempotency key of this signed request when it carries no clientToken
    /// (see `auth::Authenticated::replay_key`).
    pub replay_key: String,
}

impl Input<'_> {
    /// Decode and validate the operation's input against the model. An operation with an
    /// idempotency token whose request carries none gets the request's replay key
    /// (after validation: the key is deliberately outside the clientToken pattern), so
    /// a replayed signed request never acts twice (B26).
    pub fn decode<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static purser_model::OperationDef,
    ) -> Result<T, AwsError> {
        // Header values are bytes: UTF-8 when valid, else ISO-8859-1 (what botocore sends
        // for non-ASCII text), never silently dropped. Every value, in arrival order: a
        // repeated modelled header is refused by the decoder.
        let header = |name: &str| {
            self.headers
                .get_all(name)
                .iter()
                .map(|v| {
                    String::from_utf8(v.as_bytes().to_vec())
                        .unwrap_or_else(|_| v.as_bytes().iter().map(|&b| b as char).collect())
                })
                .collect()
        };
        let uri: Vec<(&str, String)> = self.uri.iter().map(|(k, v)| (*k, v.clone())).collect();
        let mut value = purser_model::decode_input_value(op, &uri, self.query, &header, self.body)?;
        if let (Some(member), serde_json::Value::Object(obj)) = (op.idempotency_token, &mut value) {
            obj.entry(member)
                .or_insert_with(|| serde_json::Value::String(self.replay_key.clone()));
        }
        purser_model::from_validated(op, value)
    }
}

/// Decode and validate the input, run the handler, encode its output or its error: the
/// one sequence every operation follows.
pub async fn run_operation<Req, Out, F, Fut>(
    op: &'static purser_model::OperationDef,
    input: Input<'_>,
    handler: F,
) -> Result<(u16, Vec<u8>), AwsError>
where
    Req: serde::de::DeserializeOwned,
    Out: serde::Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: std::future::Future<Output = purser_core::CoreResult<Out>>,
{
    let req = input.decode(op)?;
    let out = handler(req).await.map_err(crate::errors::to_aws)?;
    Ok(purser_model::encode_output(op, &out))
}

/// The answer for a modelled operation this server does not implement yet.
pub fn not_implemented(operation: &str) -> AwsError {
    AwsError::other(
        "UnknownOperationException",
        404,
        format!("Operation {operation} is not implemented by this server yet."),
    )
}
