//! The web console (`purser serve --console`): a single-page app embedded in the binary
//! and the small JSON API it calls, under `/console/`, a prefix no AgentCore operation
//! uses.
//!
//! Sign-in is with an access key of the configured accounts (`POST /console/api/login`,
//! the secret in the JSON body, never in a URL), checked against the same credential
//! table SigV4 uses. The reply sets an HttpOnly, SameSite=Strict cookie holding a
//! stateless session token ([`session`]) and returns a CSRF token; every other API call
//! needs both the cookie and the CSRF token in the `X-Purser-Csrf` header.
//!
//! The API does not re-implement any operation: `POST /console/api/call/<Operation>`
//! takes the operation's input as one flat JSON object, binds it as the REST request
//! would be bound, and runs it through the same decoding, validation, handlers and
//! masking as the AgentCore API, as the session's account. Only the read operations and
//! the deletes the console offers are allowed. `/console/api/ext/<path>` likewise runs
//! the extension API (`/purser/v1/<path>`: history, spend, policies) through its own
//! `ext_dispatch`.
mod assets;
pub mod session;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{any, get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http::{Method, Uri};
use purser_core::Caller;
use purser_core::domain::AuthorizerType;
use purser_core::instruments::TokenIdentity;
use purser_model::{AwsError, Location, OperationDef, Service};

use crate::AppState;
use session::{SESSION_SECONDS, SessionKeys};

/// The cookie holding the session token.
pub const COOKIE: &str = "purser_console";
/// The header carrying the CSRF token on every API call but login.
pub const CSRF_HEADER: &str = "x-purser-csrf";

/// The AgentCore operations the console may run (reads, and the deletes it offers).
pub const OPERATIONS: &[&str] = &[
    "ListPaymentManagers",
    "GetPaymentManager",
    "ListPaymentConnectors",
    "GetPaymentConnector",
    "ListPaymentInstruments",
    "GetPaymentInstrument",
    "DeletePaymentInstrument",
    "ListPaymentSessions",
    "GetPaymentSession",
    "DeletePaymentSession",
];

/// The console's routes, all under `/console`.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/console", get(redirect_to_index))
        .route("/console/", get(assets::index))
        .route("/console/assets/{file}", get(assets::file))
        .route("/console/api/login", post(login))
        .route("/console/api/logout", post(logout))
        .route("/console/api/session", get(session_info))
        .route("/console/api/call/{operation}", post(call))
        .route("/console/api/ext/{*path}", any(ext))
}

async fn redirect_to_index() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/console/"));
    r
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn keys(state: &AppState) -> Result<&SessionKeys, AwsError> {
    state
        .console
        .as_deref()
        .ok_or_else(|| AwsError::other("UnknownOperationException", 404, "The console is off."))
}

fn json_response(status: u16, body: serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    no_store(r)
}

fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn error(e: &AwsError) -> Response {
    no_store(crate::pipeline::error_response(e))
}

fn unauthenticated() -> AwsError {
    AwsError::other(
        "UnauthenticatedException",
        401,
        "Sign in to the console first: no valid session cookie.",
    )
}

/// The request's Origin, when it sends one, must be this server (a cross-site page can
/// send a simple POST; SameSite=Strict and the CSRF header already stop it, this is a
/// third wall). Host is what the browser connected to.
fn same_origin(headers: &HeaderMap) -> Result<(), AwsError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = origin.to_str().unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    if host.is_some() && origin_host == host {
        Ok(())
    } else {
        Err(AwsError::other(
            "AccessDeniedException",
            403,
            "Cross-origin requests to the console API are refused.",
        ))
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A signed-in request: the account it acts for and its session token.
struct Signed<'a> {
    caller: Caller,
    access_key_id: String,
    token: &'a str,
    expires_at: i64,
}

/// The session of a request (cookie), and, when `csrf`, its CSRF header.
fn signed<'a>(
    state: &AppState,
    headers: &'a HeaderMap,
    csrf: bool,
) -> Result<Signed<'a>, AwsError> {
    let keys = keys(state)?;
    let token = cookie_value(headers, COOKIE).ok_or_else(unauthenticated)?;
    let (cred, expires_at) = keys
        .verify(token, now_unix(), |akid| state.inner.credentials.get(akid))
        .ok_or_else(unauthenticated)?;
    if csrf {
        same_origin(headers)?;
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !keys.csrf_ok(token, given) {
            return Err(AwsError::other(
                "AccessDeniedException",
                403,
                "Missing or wrong X-Purser-Csrf header: reload the console.",
            ));
        }
    }
    Ok(Signed {
        caller: Caller {
            account_id: cred.account_id.clone(),
            region: state.inner.region.clone(),
        },
        access_key_id: cred.access_key_id.clone(),
        token,
        expires_at,
    })
}

fn session_body(state: &AppState, s: &Signed<'_>) -> Result<serde_json::Value, AwsError> {
    Ok(serde_json::json!({
        "accountId": s.caller.account_id,
        "accessKeyId": s.access_key_id,
        "region": s.caller.region,
        "expiresAt": s.expires_at,
        "csrfToken": keys(state)?.csrf(s.token),
    }))
}

/// Set-Cookie for `value`; Secure when the browser reached us over https (a TLS proxy in
/// front says so with `X-Forwarded-Proto: https`).
fn set_cookie(headers: &HeaderMap, value: &str, max_age: i64) -> HeaderValue {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let secure = if https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("purser_console=; Max-Age=0"))
}

fn log(operation: &str, account: Option<&str>, status: u16) {
    tracing::info!(
        operation,
        account_id = account.unwrap_or("-"),
        status,
        "console request"
    );
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Login {
    access_key_id: String,
    secret_access_key: String,
}

/// `POST /console/api/login {"accessKeyId", "secretAccessKey"}`: a JSON body only (a
/// cross-site form cannot send one), one answer for an unknown key and a wrong secret.
async fn login(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        let keys = keys(&state)?;
        same_origin(&headers)?;
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next() == Some("application/json"));
        if !json {
            return Err(AwsError::validation(
                "Send the credential as a JSON body (Content-Type: application/json).",
            ));
        }
        let login: Login = serde_json::from_slice(&body).map_err(|_| {
            AwsError::validation(
                "The body must be {\"accessKeyId\": ..., \"secretAccessKey\": ...}.",
            )
        })?;
        let cred = state
            .inner
            .credentials
            .get(&login.access_key_id)
            .filter(|c| {
                session::secrets_equal(
                    c.secret_access_key.expose().as_bytes(),
                    login.secret_access_key.as_bytes(),
                )
            })
            .ok_or_else(|| {
                AwsError::other(
                    "UnauthenticatedException",
                    401,
                    "The access key id or the secret access key is not valid.",
                )
            })?;
        let issued = keys.issue(cred, now_unix());
        let signed = Signed {
            caller: Caller {
                account_id: cred.account_id.clone(),
                region: state.inner.region.clone(),
            },
            access_key_id: cred.access_key_id.clone(),
            token: &issued.token,
            expires_at: issued.expires_at,
        };
        let mut r = json_response(200, session_body(&state, &signed)?);
        r.headers_mut().insert(
            header::SET_COOKIE,
            set_cookie(&headers, &issued.token, SESSION_SECONDS),
        );
        Ok((r, cred.account_id.clone()))
    })();
    match result {
        Ok((r, account)) => {
            log("Login", Some(&account), 200);
            r
        }
        Err(e) => {
            log("Login", None, e.status);
            error(&e)
        }
    }
}

/// `POST /console/api/logout`: forgets the cookie.
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed(&state, &headers, true) {
        Ok(s) => {
            log("Logout", Some(&s.caller.account_id), 200);
            let mut r = json_response(200, serde_json::json!({}));
            r.headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&headers, "", 0));
            r
        }
        Err(e) => error(&e),
    }
}

/// `GET /console/api/session`: who is signed in, and the CSRF token (after a reload).
async fn session_info(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed(&state, &headers, false).and_then(|s| session_body(&state, &s)) {
        Ok(body) => json_response(200, body),
        Err(e) => error(&e),
    }
}

/// `POST /console/api/call/<Operation>` with the operation's input as one flat JSON
/// object: the same decoding, validation, handler and reply as the AgentCore API.
async fn call(
    State(state): State<AppState>,
    Path(operation): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (account, result) = match signed(&state, &headers, true) {
        Ok(s) => {
            let r = run(&state, &s.caller, &operation, &body).await;
            (Some(s.caller.account_id), r)
        }
        Err(e) => (None, Err(e)),
    };
    let status = match &result {
        Ok((status, _)) => *status,
        Err(e) => e.status,
    };
    // Only a known name is logged: the path segment is the caller's text.
    let known = OPERATIONS.iter().find(|o| **o == operation).copied();
    log(known.unwrap_or("-"), account.as_deref(), status);
    no_store(crate::pipeline::reply(result))
}

/// `/console/api/ext/<path>`: the extension API (`/purser/v1/<path>`: payment history,
/// refusals, spend over time, spending policies) as the signed-in account, answered by
/// the same `ext_dispatch` its SigV4 route uses. Reads need the CSRF header too.
async fn ext(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let s = match signed(&state, &headers, true) {
        Ok(s) => s,
        Err(e) => {
            log("extension", None, e.status);
            return error(&e);
        }
    };
    // The raw path (still percent-encoded), as the extension's own route receives it.
    let path = uri.path().strip_prefix("/console/api/ext").unwrap_or("/");
    let r = crate::ext::ext_dispatch(&state, &s.caller, &method, path, uri.query(), &body).await;
    log("extension", Some(&s.caller.account_id), r.status().as_u16());
    no_store(r)
}

async fn run(
    state: &AppState,
    caller: &Caller,
    operation: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), AwsError> {
    let op: &'static OperationDef = purser_model::operations()
        .find(|op| op.name == operation && OPERATIONS.contains(&op.name))
        .ok_or_else(|| {
            AwsError::other(
                "UnknownOperationException",
                404,
                format!("The console does not run operation {operation:?}."),
            )
        })?;
    let bound = Bound::new(op, body)?;
    let input = bound.input();
    match op.service {
        Service::Control => crate::control::dispatch(state, op, caller, input).await,
        Service::Data => {
            let token = operator_identity(state, caller, &bound).await;
            crate::data::dispatch(state, op, caller.clone(), token, input).await
        }
    }
}

/// The console acts for the account, whatever the manager's authorizer: on a CUSTOM_JWT
/// manager it stands in for the named user as a verified bearer token would (the account's
/// credential already signed in; that is the boundary, as for SigV4 calls).
async fn operator_identity(
    state: &AppState,
    caller: &Caller,
    bound: &Bound,
) -> Option<TokenIdentity> {
    let arn = bound.member("paymentManagerArn")?;
    let id = arn.rsplit_once(":payment-manager/")?.1;
    let user = bound.member("userId")?;
    let manager = state.inner.control.get_manager(caller, id).await.ok()?;
    (manager.authorizer_type == AuthorizerType::CustomJwt).then(|| TokenIdentity {
        manager_id: manager.id,
        subject: user.to_string(),
    })
}

/// A flat JSON input split the way its REST request would carry it: URI labels, query
/// string, headers and body.
struct Bound {
    uri: Vec<(&'static str, String)>,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
    members: serde_json::Map<String, serde_json::Value>,
}

impl Bound {
    fn new(op: &'static OperationDef, body: &[u8]) -> Result<Bound, AwsError> {
        let members = if body.trim_ascii().is_empty() {
            serde_json::Map::new()
        } else {
            match serde_json::from_slice(body) {
                Ok(serde_json::Value::Object(o)) => o,
                _ => {
                    return Err(AwsError::cannot_parse(
                        "Could not parse request body into json: expected a JSON object",
                    ));
                }
            }
        };
        // A null member is an absent one, as an SDK leaves out what is not set.
        let members: serde_json::Map<_, _> =
            members.into_iter().filter(|(_, v)| !v.is_null()).collect();
        let mut rest = members.clone();
        let mut uri = Vec::new();
        let mut query = form_urlencoded::Serializer::new(String::new());
        let mut headers = HeaderMap::new();
        for lm in op.location_members {
            let Some(v) = rest.remove(lm.member) else {
                continue;
            };
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            match lm.location {
                Location::Uri => uri.push((lm.member, text)),
                Location::QueryString => {
                    query.append_pair(lm.location_name, &text);
                }
                Location::Header => {
                    let value = HeaderValue::from_str(&text).map_err(|_| {
                        AwsError::validation_field(
                            lm.member,
                            format!("{} must be printable ASCII.", lm.member),
                        )
                    })?;
                    let name = http::HeaderName::from_bytes(lm.location_name.as_bytes())
                        .map_err(|_| AwsError::internal("bad modelled header name"))?;
                    headers.insert(name, value);
                }
            }
        }
        Ok(Bound {
            uri,
            query: query.finish(),
            headers,
            body: serde_json::to_vec(&rest).unwrap_or_default(),
            members,
        })
    }

    fn member(&self, name: &str) -> Option<&str> {
        self.members.get(name).and_then(|v| v.as_str())
    }

    fn input(&self) -> crate::pipeline::Input<'_> {
        crate::pipeline::Input {
            uri: self.uri.clone(),
            query: Some(self.query.as_str()).filter(|q| !q.is_empty()),
            headers: &self.headers,
            body: &self.body,
            // A console request carries no signature: a fresh key, outside the
            // clientToken pattern like `sigv4:` keys, so a delete runs once per click.
            replay_key: format!("console:{}", purser_core::ids::uuid_v4()),
        }
    }
}
