//! MPP, the `Payment` HTTP authentication scheme (B23), intent `charge`.
//!
//! ProcessPayment gets exactly one raw `WWW-Authenticate: Payment ...` challenge
//! (`paymentInput.mpp.wwwAuthenticateHeaders[0]`), pays it with the instrument's wallet,
//! and answers `{version, selectedPaymentId: <challenge id>, paymentCredential:
//! "Payment <base64url(JSON)>"}`, the value of the client's `Authorization` header.
//!
//! # The challenge ([`parse_challenge`])
//!
//! `Payment` followed by comma-separated auth-params `name=value` or `name="quoted"`
//! (backslash escapes, `\uXXXX` for characters above Latin-1), names case-insensitive,
//! each at most once; unknown parameters are ignored, as the specification asks of
//! clients. Required: `id`, `realm`, `method` (lower case), `intent`, `request` (base64url
//! of the canonical JSON of the method's request object, at most 16 KiB). Optional:
//! `expires` (RFC 3339; a challenge past it is refused), `description`, `digest`,
//! `opaque`, `header`. The credential echoes every one of these exactly as received,
//! `request` as the received base64url string, so the server's HMAC over them still
//! matches.
//!
//! # Methods
//!
//! * `evm` ([`evm`]): an EIP-3009 `transferWithAuthorization` of USDC on BASE,
//!   BASE_SEPOLIA or ETHEREUM, credential type `authorization`, whose nonce is
//!   `keccak256(id || realm)`, binding the signature to this challenge.
//! * `solana` ([`solana`]): a v0 transaction transferring USDC on SOLANA or SOLANA_DEVNET
//!   (pull mode, credential type `transaction`), the merchant's `feePayerKey` as fee payer
//!   (or, with `buyerPaysGasFees: true` on a challenge that does not sponsor fees, the
//!   wallet itself).
//! * `tempo` ([`tempo`]): a Tempo transaction (type `0x76`, expiring nonce) of one TIP-20
//!   `transferWithMemo` of the challenge's USD stablecoin on Tempo (chain id 4217) or
//!   Tempo Moderato (42431), credential type `transaction`, the memo binding it to the
//!   challenge; the sponsored (`feePayer: true`) form goes in the fee-payer envelope
//!   `0x78`.
//!
//! Every problem is an [`InputError`] naming the request path
//! (`paymentInput.mpp.wwwAuthenticateHeaders[0]`, `...request.amount`, ...) and consumes
//! no budget.

mod evm;
pub mod solana;
pub mod tempo;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::payment::{InputError, Requirement};

/// `paymentInput.mpp`.
const PREFIX: &str = "paymentInput.mpp";
/// The one challenge.
const HEADER: &str = "paymentInput.mpp.wwwAuthenticateHeaders[0]";
/// The largest accepted `request` parameter (as mppx accepts).
pub const MAX_REQUEST_LEN: usize = 16 * 1024;
/// The auth scheme.
pub const SCHEME: &str = "Payment";

/// A parsed `Payment` challenge.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    pub id: String,
    pub realm: String,
    pub method: String,
    pub intent: String,
    /// `request` exactly as received (base64url).
    pub request_raw: String,
    /// `request`, decoded.
    pub request: Map<String, Value>,
    /// `expires` as received (RFC 3339), and as unix seconds.
    pub expires: Option<(String, i64)>,
    /// Every recognised parameter as received, for the credential's echo.
    echoed: Vec<(&'static str, String)>,
}

/// The parameters a credential echoes (besides `request`, echoed raw).
const ECHOED: [&str; 9] = [
    "id",
    "realm",
    "method",
    "intent",
    "expires",
    "description",
    "digest",
    "opaque",
    "header",
];

fn err(field: impl Into<String>, message: impl Into<String>) -> InputError {
    InputError::new(field, message)
}

/// The path of a member of the challenge's `request`, as errors name it.
fn field(path: &str) -> String {
    format!("{HEADER}.request.{path}")
}

/// A required, non-empty string member of the challenge's `request`.
fn string<'a>(
    req: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<&'a str, InputError> {
    match req.get(name) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s),
        _ => {
            let f = field(name);
            Err(err(&f, format!("{f} is required (a string)")))
        }
    }
}

fn header_err(message: impl std::fmt::Display) -> InputError {
    err(HEADER, format!("{HEADER}: {message}"))
}

/// Reads an MPP input: the version, the one challenge, and its method's request.
pub(crate) fn parse_requirement(
    version: &str,
    headers: &[String],
    buyer_pays_gas_fees: Option<bool>,
) -> Result<Requirement, InputError> {
    if version != "1" {
        let field = format!("{PREFIX}.version");
        return Err(err(
            &field,
            format!("{field} must be \"1\", the MPP version this server speaks"),
        ));
    }
    let [header] = headers else {
        let field = format!("{PREFIX}.wwwAuthenticateHeaders");
        return Err(err(
            &field,
            format!(
                "{field} must hold exactly one Payment challenge (the one to pay), got {}",
                headers.len()
            ),
        ));
    };
    let challenge = parse_challenge(header)?;
    if challenge.intent != "charge" {
        return Err(err(
            format!("{HEADER}.intent"),
            format!(
                "{HEADER}.intent {:?} is not supported; only \"charge\" is",
                challenge.intent
            ),
        ));
    }
    match challenge.method.as_str() {
        "evm" => evm::parse(challenge),
        "solana" => solana::parse(challenge, buyer_pays_gas_fees),
        "tempo" => tempo::parse(challenge, buyer_pays_gas_fees),
        other => Err(err(
            format!("{HEADER}.method"),
            format!(
                "{HEADER}.method {other:?} is not supported; AgentCore pays \"evm\", \"solana\" and \"tempo\" challenges"
            ),
        )),
    }
}

/// Parses one `WWW-Authenticate` value holding exactly one `Payment` challenge.
pub fn parse_challenge(header: &str) -> Result<Challenge, InputError> {
    let starts = scheme_starts(header);
    let start = match starts.as_slice() {
        [] => {
            return Err(header_err(
                "is not a Payment challenge (it must start with \"Payment \")",
            ));
        }
        [one] => *one,
        more => {
            return Err(header_err(format!(
                "holds {} Payment challenges; send exactly the one to pay",
                more.len()
            )));
        }
    };
    let params = parse_auth_params(header[start + SCHEME.len()..].trim_start())?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let required = |name: &str| -> Result<String, InputError> {
        match get(name) {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            Some(_) => Err(err(
                format!("{HEADER}.{name}"),
                format!("{HEADER}.{name} must not be empty"),
            )),
            None => Err(err(
                format!("{HEADER}.{name}"),
                format!("{HEADER}: the challenge has no {name} parameter"),
            )),
        }
    };
    let id = required("id")?;
    let realm = required("realm")?;
    let method = required("method")?;
    let intent = required("intent")?;
    let request_raw = required("request")?;
    let valid_method = method.starts_with(|c: char| c.is_ascii_lowercase())
        && method
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ":_-".contains(c));
    if !valid_method {
        return Err(err(
            format!("{HEADER}.method"),
            format!("{HEADER}.method {method:?} is not a method name (lower case, e.g. \"evm\")"),
        ));
    }
    let field = format!("{HEADER}.request");
    if request_raw.len() > MAX_REQUEST_LEN {
        return Err(err(
            &field,
            format!("{field} is larger than {MAX_REQUEST_LEN} bytes"),
        ));
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(request_raw.trim_end_matches('='))
        .map_err(|_| err(&field, format!("{field} is not base64url")))?;
    let request = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(err(
                &field,
                format!("{field} is not the base64url of a JSON object"),
            ));
        }
    };
    let expires = match get("expires") {
        None => None,
        Some(text) => {
            let at =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                    err(
                        format!("{HEADER}.expires"),
                        format!("{HEADER}.expires {text:?} is not an RFC 3339 time"),
                    )
                })?;
            Some((text.to_owned(), at.unix_timestamp()))
        }
    };
    let echoed = ECHOED
        .iter()
        .filter_map(|name| get(name).map(|v| (*name, v.to_owned())))
        .collect();
    Ok(Challenge {
        id,
        realm,
        method,
        intent,
        request_raw,
        request,
        expires,
        echoed,
    })
}

impl Challenge {
    /// Refuses a challenge past its `expires` at `now` (unix seconds).
    pub fn check_not_expired(&self, now: u64) -> Result<(), InputError> {
        match &self.expires {
            Some((text, at)) if *at <= now as i64 => Err(err(
                format!("{HEADER}.expires"),
                format!(
                    "{HEADER}: the challenge expired at {text}; ask the merchant for a new one"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The credential (`Authorization` value): `Payment <base64url(JSON {challenge, payload,
    /// source?})>`, echoing the challenge as received.
    pub fn credential(&self, payload: Value, source: Option<String>) -> String {
        let mut challenge = Map::new();
        for (name, value) in &self.echoed {
            challenge.insert((*name).to_owned(), Value::String(value.clone()));
        }
        challenge.insert("request".into(), Value::String(self.request_raw.clone()));
        let mut body = json!({"challenge": challenge, "payload": payload});
        if let Some(source) = source {
            body["source"] = Value::String(source);
        }
        format!(
            "{SCHEME} {}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string())
        )
    }
}

/// Where each `Payment` scheme starts (outside quoted strings, at the start or after a
/// comma).
fn scheme_starts(value: &str) -> Vec<usize> {
    let bytes = value.as_bytes();
    let mut starts = Vec::new();
    let (mut in_quotes, mut escaped) = (false, false);
    for (i, &c) in bytes.iter().enumerate() {
        if in_quotes {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_quotes = false,
                _ => {}
            }
            continue;
        }
        if c == b'"' {
            in_quotes = true;
            continue;
        }
        let token = bytes.get(i..i + SCHEME.len());
        let followed = bytes
            .get(i + SCHEME.len())
            .is_some_and(|b| b.is_ascii_whitespace());
        if !token.is_some_and(|t| t.eq_ignore_ascii_case(SCHEME.as_bytes())) || !followed {
            continue;
        }
        let before = bytes[..i].iter().rev().find(|b| !b.is_ascii_whitespace());
        if before.is_none_or(|b| *b == b',') {
            starts.push(i);
        }
    }
    starts
}

/// `name=value` pairs until the end or the next scheme (a token without `=`).
fn parse_auth_params(input: &str) -> Result<Vec<(String, String)>, InputError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let key_start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_-".contains(chars[i])) {
            i += 1;
        }
        let key: String = chars[key_start..i]
            .iter()
            .collect::<String>()
            .to_ascii_lowercase();
        if key.is_empty() {
            return Err(header_err(format!(
                "malformed auth-param at character {}",
                key_start + 1
            )));
        }
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if chars.get(i) != Some(&'=') {
            break; // another auth scheme follows
        }
        i += 1;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let value = if chars.get(i) == Some(&'"') {
            let (value, next) = quoted(&chars, i + 1).ok_or_else(|| {
                header_err(format!("the quoted value of {key} is not terminated"))
            })?;
            i = next;
            value
        } else {
            let start = i;
            while i < chars.len() && chars[i] != ',' {
                i += 1;
            }
            chars[start..i].iter().collect::<String>().trim().to_owned()
        };
        if out.iter().any(|(k, _)| *k == key) {
            return Err(header_err(format!("the parameter {key} appears twice")));
        }
        out.push((key, value));
    }
    Ok(out)
}

/// A quoted-string starting after its opening quote: (unescaped value, index after the
/// closing quote).
fn quoted(chars: &[char], mut i: usize) -> Option<(String, usize)> {
    let mut value = String::new();
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '"' => return Some((value, i)),
            '\\' => {
                let next = *chars.get(i)?;
                i += 1;
                let hex: String = chars
                    .get(i..i + 4)
                    .map(|h| h.iter().collect())
                    .unwrap_or_default();
                let is_hex = hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit());
                match (
                    next,
                    u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32),
                ) {
                    ('u', Some(decoded)) if is_hex => {
                        value.push(decoded);
                        i += 4;
                    }
                    _ => value.push(next),
                }
            }
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests;
