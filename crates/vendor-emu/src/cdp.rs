//! The Coinbase CDP v2 subset: end users with email / SMS authentication methods and EVM
//! and Solana accounts; delegated signing of EIP-712 typed data, EIP-1559 transactions and
//! Solana transactions; the developer side of delegations (get, revoke).
//!
//! Paths, bodies and replies follow `@coinbase/cdp-sdk`'s OpenAPI-generated client
//! (`openapi-client/generated/end-user-*`); see crates/vendor-emu/API.md section 1.
use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::store::{self, Chain, Wallet};
use crate::{Emulator, Reply, Req, auth, eip712, evm, idempotent, now_ms, now_secs, solana};

const VENDOR: &str = "cdp";

pub fn format_time(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub fn parse_time(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn format_ms(ms: i64) -> String {
    format_time(ms.div_euclid(1000))
}

/// `@coinbase/cdp-sdk` `requiresWalletAuth`: which calls carry `X-Wallet-Auth`.
pub fn requires_wallet_auth(method: &Method, path: &str) -> bool {
    let write = matches!(*method, Method::POST | Method::PUT | Method::DELETE);
    let segs: Vec<&str> = path.split('/').collect();
    let ends_with_account = segs.len() >= 4
        && segs[segs.len() - 3] == "end-users"
        && matches!(segs[segs.len() - 1], "evm" | "evm-smart-account" | "solana");
    write
        && (path.contains("/evm/accounts")
            || path.contains("/solana/accounts")
            || path.contains("/spend-permissions")
            || path.contains("/user-operations/prepare-and-send")
            || path.contains("/embedded-wallet-api/")
            || path.ends_with("/end-users")
            || path.ends_with("/end-users/import")
            || ends_with_account)
}

pub async fn handle(emu: &Emulator, req: &Req) -> Reply {
    let now = now_secs();
    let line = req.line();
    auth::verify_cdp_bearer(
        req.header("authorization"),
        &emu.accounts.cdp_api_keys,
        &line,
        now,
    )?;
    if requires_wallet_auth(&req.method, req.path()) {
        auth::verify_wallet_auth(
            req.header("x-wallet-auth"),
            &emu.accounts.cdp_wallet_keys,
            &line,
            now,
            &emu.jtis,
        )?;
    }
    let path = req.path().strip_prefix("/platform").unwrap_or("");
    let segs: Vec<String> = path.split('/').skip(1).map(decode_segment).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let project = emu.accounts.cdp_project_id.as_str();
    let scope = format!("cdp:{project}");
    let conflict = ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_error",
        "The idempotency key was already used for a different request.",
    );
    let key = (req.method == Method::POST)
        .then(|| req.header("x-idempotency-key"))
        .flatten();
    match (&req.method, segs.as_slice()) {
        (&Method::POST, ["v2", "end-users"]) => {
            idempotent(emu, &scope, key, req, conflict, || async {
                create_end_user(emu, project, &req.json()?)
            })
            .await
        }
        (&Method::GET, ["v2", "end-users"]) => list_end_users(emu, project, req),
        (&Method::GET, ["v2", "end-users", "lookup"]) => lookup_end_users(emu, project, req),
        (&Method::GET, ["v2", "end-users", user]) => {
            let user = *user;
            emu.store.tx(|tx| {
                let u = end_user(tx, project, user)?;
                Ok((StatusCode::OK, end_user_json(tx, project, &u)?))
            })
        }
        (&Method::POST, ["v2", "end-users", user, chain @ ("evm" | "solana")]) => {
            let (user, chain) = (*user, *chain);
            idempotent(emu, &scope, key, req, conflict, || async {
                add_account(emu, project, user, chain)
            })
            .await
        }
        (
            &Method::POST,
            [
                "v2",
                "embedded-wallet-api",
                "end-users",
                user,
                family @ ("evm" | "solana"),
                "sign",
                what @ ("typed-data" | "transaction"),
            ],
        ) => {
            let (user, family, what) = (*user, *family, *what);
            idempotent(emu, &scope, key, req, conflict, || async {
                sign(emu, project, user, family, what, &req.json()?)
            })
            .await
        }
        (&Method::GET, ["v2", "embedded-wallet-api", "end-users", user, "delegation"]) => {
            let user = *user;
            emu.store.tx(|tx| {
                let u = end_user(tx, project, user)?;
                match delegation(&u, now) {
                    Delegation::Active(expires) => {
                        Ok((StatusCode::OK, json!({"expiresAt": format_time(expires)})))
                    }
                    _ => Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        "delegation_not_found",
                        "The end user has no active delegation.",
                    )),
                }
            })
        }
        (&Method::DELETE, ["v2", "embedded-wallet-api", "end-users", user, "delegation"]) => {
            let user = *user;
            emu.store.tx(|tx| {
                if revoke(tx, project, user)? {
                    Ok((StatusCode::NO_CONTENT, Value::Null))
                } else {
                    Err(ApiError::not_found("End user not found."))
                }
            })
        }
        _ => Err(ApiError::not_found(
            "API not found (the vendor emulator implements only the subset Purser uses).",
        )),
    }
}

/// A path segment, percent-decoded.
pub fn decode_segment(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// An end user's row.
pub struct EndUser {
    pub user_id: String,
    pub auth_methods: Value,
    pub created_at: String,
    pub delegation_expires_at: Option<i64>,
    pub delegation_revoked: bool,
}

fn end_user(
    tx: &rusqlite::Transaction<'_>,
    project: &str,
    user: &str,
) -> Result<EndUser, ApiError> {
    tx.query_row(
        "SELECT user_id, auth_methods, created_at, delegation_expires_at, delegation_revoked
         FROM cdp_end_users WHERE project_id = ?1 AND user_id = ?2",
        params![project, user],
        end_user_row,
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found("End user not found."))
}

fn end_user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EndUser> {
    let methods: String = r.get(1)?;
    Ok(EndUser {
        user_id: r.get(0)?,
        auth_methods: serde_json::from_str(&methods).unwrap_or(Value::Array(vec![])),
        created_at: r.get(2)?,
        delegation_expires_at: r.get(3)?,
        delegation_revoked: r.get::<_, i64>(4)? != 0,
    })
}

fn end_user_json(
    tx: &rusqlite::Transaction<'_>,
    project: &str,
    u: &EndUser,
) -> Result<Value, ApiError> {
    let wallets = store::wallets_of(tx, VENDOR, project, &u.user_id)?;
    let pick = |c: Chain| -> (Vec<Value>, Vec<Value>) {
        wallets
            .iter()
            .filter(|w| w.chain == c)
            .map(|w| {
                (
                    json!(w.address),
                    json!({"address": w.address, "createdAt": format_ms(w.created_at_ms)}),
                )
            })
            .unzip()
    };
    let (evm, evm_objects) = pick(Chain::Evm);
    let (sol, sol_objects) = pick(Chain::Solana);
    Ok(json!({
        "userId": u.user_id,
        "authenticationMethods": u.auth_methods,
        "evmAccounts": evm,
        "evmAccountObjects": evm_objects,
        "evmSmartAccounts": [],
        "evmSmartAccountObjects": [],
        "solanaAccounts": sol,
        "solanaAccountObjects": sol_objects,
        "createdAt": u.created_at,
    }))
}

fn valid_user_id(id: &str) -> bool {
    (1..=100).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && !e.chars().any(char::is_whitespace)
}

/// E.164: `+` then 2 to 15 digits, not starting with 0.
pub fn valid_e164(p: &str) -> bool {
    p.strip_prefix('+').is_some_and(|d| {
        (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

/// Parses `authenticationMethods`: (canonical JSON, method keys).
fn auth_methods(v: Option<&Value>) -> Result<(Value, Vec<String>), ApiError> {
    let list = v
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| invalid("authenticationMethods must be a non-empty list."))?;
    let mut out = Vec::new();
    let mut keys = Vec::new();
    for (i, m) in list.iter().enumerate() {
        match m.get("type").and_then(Value::as_str) {
            Some("email") => {
                let email = m
                    .get("email")
                    .and_then(Value::as_str)
                    .filter(|e| valid_email(e))
                    .ok_or_else(|| {
                        invalid(format!(
                            "authenticationMethods[{i}].email is not an email address."
                        ))
                    })?;
                keys.push(format!("email:{}", email.to_ascii_lowercase()));
                out.push(json!({"type": "email", "email": email}));
            }
            Some("sms") => {
                let phone = m
                    .get("phoneNumber")
                    .and_then(Value::as_str)
                    .filter(|p| valid_e164(p))
                    .ok_or_else(|| {
                        invalid(format!(
                            "authenticationMethods[{i}].phoneNumber is not an E.164 phone number."
                        ))
                    })?;
                keys.push(format!("sms:{phone}"));
                out.push(json!({"type": "sms", "phoneNumber": phone}));
            }
            Some(_) => {
                return Err(invalid(format!(
                    "authenticationMethods[{i}].type is not emulated (the vendor emulator supports email and sms)."
                )));
            }
            None => {
                return Err(invalid(format!(
                    "authenticationMethods[{i}].type is required."
                )));
            }
        }
    }
    Ok((Value::Array(out), keys))
}

fn wants_account(body: &Value, field: &str) -> Result<bool, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Object(o)) => {
            if o.get("createSmartAccount").and_then(Value::as_bool) == Some(true) {
                Err(invalid(format!(
                    "{field}.createSmartAccount is not emulated (the vendor emulator creates EOAs only)."
                )))
            } else {
                Ok(true)
            }
        }
        Some(_) => Err(invalid(format!("{field} must be an object."))),
    }
}

fn new_wallet(emu: &Emulator, owner: &str, chain: Chain) -> Wallet {
    let id = format!("cdp-{}", crate::accounts::uuid_v4());
    let (address, sealed_key) = emu.store.new_key(&id, chain);
    Wallet {
        id,
        owner_user: Some(owner.to_string()),
        owner_quorum: None,
        signers: json!([]),
        chain,
        address,
        sealed_key,
        created_at_ms: now_ms(),
        policy_deny: false,
    }
}

fn create_end_user(emu: &Emulator, project: &str, body: &Value) -> Reply {
    if !body.is_object() {
        return Err(invalid("The request body must be an object."));
    }
    let user_id = match body.get("userId") {
        None | Some(Value::Null) => crate::accounts::uuid_v4(),
        Some(Value::String(s)) if valid_user_id(s) => s.clone(),
        Some(_) => {
            return Err(invalid("userId must match ^[a-zA-Z0-9-]{1,100}$."));
        }
    };
    let (methods, keys) = auth_methods(body.get("authenticationMethods"))?;
    let want_evm = wants_account(body, "evmAccount")?;
    let want_sol = wants_account(body, "solanaAccount")?;
    let mut wallets = Vec::new();
    if want_evm {
        wallets.push(new_wallet(emu, &user_id, Chain::Evm));
    }
    if want_sol {
        wallets.push(new_wallet(emu, &user_id, Chain::Solana));
    }
    emu.store.tx(|tx| {
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM cdp_end_users WHERE project_id = ?1 AND user_id = ?2",
                params![project, user_id],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_exists",
                "An end user with this userId already exists.",
            ));
        }
        for k in &keys {
            let taken = tx.execute(
                "INSERT OR IGNORE INTO cdp_auth_methods (project_id, method_key, user_id) VALUES (?1, ?2, ?3)",
                params![project, k, user_id],
            )? == 0;
            if taken {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "already_exists",
                    "An end user with this authentication method already exists.",
                ));
            }
        }
        tx.execute(
            "INSERT INTO cdp_end_users (project_id, user_id, auth_methods, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![project, user_id, methods.to_string(), format_time(now_secs())],
        )?;
        for w in &wallets {
            store::insert_wallet(tx, VENDOR, project, w)?;
        }
        let u = end_user(tx, project, &user_id)?;
        Ok((StatusCode::CREATED, end_user_json(tx, project, &u)?))
    })
}

fn list_end_users(emu: &Emulator, project: &str, req: &Req) -> Reply {
    let page_size = match req.query_param("pageSize") {
        None => 20,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| invalid("pageSize must be between 1 and 100."))?,
    };
    let after = match req.query_param("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => B64
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| invalid("pageToken is not valid."))?,
    };
    emu.store.tx(|tx| {
        let mut stmt = tx.prepare_cached(
            "SELECT user_id, auth_methods, created_at, delegation_expires_at, delegation_revoked, seq
             FROM cdp_end_users WHERE project_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows: Vec<(EndUser, i64)> = stmt
            .query_map(params![project, after, page_size + 1], |r| {
                Ok((end_user_row(r)?, r.get(5)?))
            })?
            .collect::<Result<_, _>>()?;
        let more = rows.len() as i64 > page_size;
        let mut users = Vec::new();
        let mut last = after;
        for (u, seq) in rows.iter().take(page_size as usize) {
            users.push(end_user_json(tx, project, u)?);
            last = *seq;
        }
        let mut out = json!({"endUsers": users});
        if more {
            out["nextPageToken"] = json!(B64.encode(last.to_string()));
        }
        Ok((StatusCode::OK, out))
    })
}

fn lookup_end_users(emu: &Emulator, project: &str, req: &Req) -> Reply {
    let key = if let Some(email) = req.query_param("email") {
        format!("email:{}", email.to_ascii_lowercase())
    } else if let Some(phone) = req.query_param("phoneNumber") {
        if !valid_e164(&phone) {
            return Err(invalid("phoneNumber is not an E.164 phone number."));
        }
        format!("sms:{phone}")
    } else {
        return Err(invalid(
            "Give email or phoneNumber (the vendor emulator looks up by these only).",
        ));
    };
    emu.store.tx(|tx| {
        let user: Option<String> = tx
            .query_row(
                "SELECT user_id FROM cdp_auth_methods WHERE project_id = ?1 AND method_key = ?2",
                params![project, key],
                |r| r.get(0),
            )
            .optional()?;
        let mut users = Vec::new();
        if let Some(user) = user {
            let u = end_user(tx, project, &user)?;
            users.push(end_user_json(tx, project, &u)?);
        }
        Ok((StatusCode::OK, json!({"endUsers": users})))
    })
}

fn add_account(emu: &Emulator, project: &str, user: &str, chain: &str) -> Reply {
    let chain = if chain == "evm" {
        Chain::Evm
    } else {
        Chain::Solana
    };
    let w = new_wallet(emu, user, chain);
    emu.store.tx(|tx| {
        end_user(tx, project, user)?;
        if store::wallets_of(tx, VENDOR, project, user)?
            .iter()
            .filter(|x| x.chain == chain)
            .count()
            >= 10
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "account_limit_exceeded",
                "End users can have up to 10 accounts of a kind.",
            ));
        }
        store::insert_wallet(tx, VENDOR, project, &w)?;
        let account = json!({"address": w.address, "createdAt": format_ms(w.created_at_ms)});
        let field = if chain == Chain::Evm {
            "evmAccount"
        } else {
            "solanaAccount"
        };
        Ok((StatusCode::CREATED, json!({ field: account })))
    })
}

pub enum Delegation {
    Active(i64),
    None,
    Expired,
    Revoked,
}

pub fn delegation(u: &EndUser, now: i64) -> Delegation {
    match u.delegation_expires_at {
        None => Delegation::None,
        Some(_) if u.delegation_revoked => Delegation::Revoked,
        Some(t) if t <= now => Delegation::Expired,
        Some(t) => Delegation::Active(t),
    }
}

/// Revokes the end user's delegations; false when there is no such end user.
pub fn revoke(tx: &rusqlite::Transaction<'_>, project: &str, user: &str) -> Result<bool, ApiError> {
    let n = tx.execute(
        "UPDATE cdp_end_users SET delegation_revoked = CASE WHEN delegation_expires_at IS NULL THEN 0 ELSE 1 END
         WHERE project_id = ?1 AND user_id = ?2",
        params![project, user],
    )?;
    Ok(n == 1)
}

fn sign(
    emu: &Emulator,
    project: &str,
    user: &str,
    family: &str,
    what: &str,
    body: &Value,
) -> Reply {
    if body.get("walletSecretId").is_some_and(|v| !v.is_null()) {
        return Err(invalid(
            "walletSecretId (an end user's Temporary Wallet Secret) is not emulated; the vendor emulator signs through delegation only.",
        ));
    }
    let address = body
        .get("address")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("address is required."))?;
    let chain = if family == "evm" {
        Chain::Evm
    } else {
        Chain::Solana
    };
    let valid_address = match chain {
        Chain::Evm => {
            address.len() == 42
                && address.starts_with("0x")
                && address[2..].bytes().all(|b| b.is_ascii_hexdigit())
        }
        Chain::Solana => bs58::decode(address)
            .into_vec()
            .is_ok_and(|b| b.len() == 32),
    };
    if !valid_address {
        return Err(invalid("address is not an address of this family."));
    }
    let now = now_secs();
    let wallet = emu.store.tx(|tx| {
        let u = end_user(tx, project, user)?;
        let wallet = store::wallets_of(tx, VENDOR, project, user)?
            .into_iter()
            .find(|w| w.chain == chain && w.address.eq_ignore_ascii_case(address))
            .ok_or_else(|| ApiError::not_found("The end user has no account with this address."))?;
        if !crate::dev::delegated_signing_enabled(tx, project)? {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "delegation_not_enabled",
                "Delegated signing is not enabled for this project.",
            ));
        }
        match delegation(&u, now) {
            Delegation::Active(_) => Ok(wallet),
            Delegation::None => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "delegation_not_found",
                "The end user has not granted a delegation.",
            )),
            Delegation::Expired => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "delegation_expired",
                "The end user's delegation has expired.",
            )),
            Delegation::Revoked => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "delegation_revoked",
                "The end user's delegation was revoked.",
            )),
        }
    })?;
    match (chain, what) {
        (Chain::Evm, "typed-data") => {
            let typed = body
                .get("typedData")
                .ok_or_else(|| invalid("typedData is required."))?;
            let digest =
                eip712::signing_digest(typed).map_err(|e| invalid(format!("typedData: {e}.")))?;
            let sig = emu.store.sign_digest(&wallet, &digest)?;
            Ok((
                StatusCode::OK,
                json!({"signature": format!("0x{}", hex::encode(sig))}),
            ))
        }
        (Chain::Evm, "transaction") => {
            let tx_hex = body
                .get("transaction")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("transaction is required."))?;
            let malformed = |m: String| ApiError::bad_request("malformed_transaction", m);
            let unsigned = tx_hex
                .strip_prefix("0x")
                .and_then(|h| hex::decode(h).ok())
                .ok_or_else(|| malformed("transaction is not 0x-prefixed hex.".into()))?;
            let mut failure = None;
            let signed = evm::sign_rlp_envelope(&unsigned, |d| {
                emu.store.sign_digest(&wallet, d).unwrap_or_else(|e| {
                    failure = Some(e);
                    [0; 65]
                })
            })
            .map_err(|e| malformed(format!("{e}.")))?;
            if let Some(e) = failure {
                return Err(e);
            }
            Ok((
                StatusCode::OK,
                json!({"signedTransaction": format!("0x{}", hex::encode(signed))}),
            ))
        }
        (Chain::Solana, "transaction") => {
            let text = body
                .get("transaction")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("transaction is required."))?;
            let signed = sign_solana(emu, &wallet, text)
                .map_err(|m| ApiError::bad_request("malformed_transaction", m))??;
            Ok((StatusCode::OK, json!({"signedTransaction": signed})))
        }
        _ => Err(ApiError::not_found("API not found.")),
    }
}

/// Signs a base64 Solana transaction with `wallet`; the outer error is a malformed
/// transaction, the inner one a key failure.
pub fn sign_solana(
    emu: &Emulator,
    wallet: &Wallet,
    text: &str,
) -> Result<Result<String, ApiError>, String> {
    let raw = B64
        .decode(text.trim())
        .map_err(|_| "transaction is not base64.".to_string())?;
    let pubkey: [u8; 32] = bs58::decode(&wallet.address)
        .into_vec()
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "the wallet's address is not a Solana key.".to_string())?;
    let mut failure = None;
    let signed = solana::sign_transaction(&raw, &pubkey, |m| {
        emu.store.sign_ed25519(wallet, m).unwrap_or_else(|e| {
            failure = Some(e);
            [0; 64]
        })
    })
    .map_err(|e| format!("{e}."))?;
    Ok(match failure {
        Some(e) => Err(e),
        None => Ok(B64.encode(signed)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wallet_auth_rule_matches_the_sdk() {
        let post = Method::POST;
        for p in [
            "/platform/v2/end-users",
            "/platform/v2/end-users/u-1/evm",
            "/platform/v2/end-users/u-1/solana",
            "/platform/v2/embedded-wallet-api/end-users/u-1/evm/sign/typed-data",
            "/platform/v2/evm/accounts",
        ] {
            assert!(requires_wallet_auth(&post, p), "{p}");
        }
        assert!(requires_wallet_auth(
            &Method::DELETE,
            "/platform/v2/embedded-wallet-api/end-users/u-1/delegation"
        ));
        assert!(!requires_wallet_auth(
            &Method::GET,
            "/platform/v2/end-users"
        ));
        assert!(!requires_wallet_auth(
            &post,
            "/platform/v2/end-users/auth/validate-token"
        ));
    }

    #[test]
    fn phone_numbers_are_e164() {
        assert!(valid_e164("+14155552671"));
        assert!(!valid_e164("14155552671"));
        assert!(!valid_e164("+0123"));
        assert!(!valid_e164("+1234567890123456"));
    }
}
