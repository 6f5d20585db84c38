//! The Privy subset: users with a linked email or phone, embedded wallets (ethereum /
//! solana) owned by a user, a P-256 key or a key quorum, with key quorums as additional
//! signers; `POST /v1/wallets/{id}/rpc` with `eth_signTypedData_v4`, `eth_signTransaction`
//! and Solana `signTransaction`, authorized by the `privy-authorization-signature` of a key
//! allowed to act on the wallet.
//!
//! Paths, bodies and replies follow `@privy-io/node` (`resources/users/users.ts`,
//! `resources/wallets/wallets.ts`); see crates/vendor-emu/API.md section 2.
use axum::http::{Method, StatusCode};
use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value, json};

use crate::accounts::{p256_public_from_spki_b64, p256_spki_b64, random_id};
use crate::auth::{self, PrivyApp};
use crate::cdp::{decode_segment, sign_solana, valid_e164};
use crate::error::ApiError;
use crate::store::{self, Chain, Wallet};
use crate::{Emulator, Reply, Req, eip712, evm, idempotent, now_ms, now_secs};

const VENDOR: &str = "privy";

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

pub async fn handle(emu: &Emulator, req: &Req) -> Reply {
    let app = auth::verify_privy_basic(
        req.header("authorization"),
        req.header("privy-app-id"),
        &emu.accounts.privy_apps,
    )?
    .clone();
    let segs: Vec<String> = req.path().split('/').skip(1).map(decode_segment).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let scope = format!("privy:{}", app.app_id);
    let key = req.header("privy-idempotency-key");
    let conflict = invalid("The idempotency key was already used for a different request.");
    match (&req.method, segs.as_slice()) {
        (&Method::POST, ["v1", "users"]) => create_user(emu, &app, &req.json()?),
        (&Method::GET, ["v1", "users", id]) => {
            let id = *id;
            emu.store.tx(|tx| {
                let u = user(tx, &app.app_id, id)?
                    .ok_or_else(|| ApiError::not_found("User not found."))?;
                Ok((StatusCode::OK, user_json(tx, &app.app_id, &u)?))
            })
        }
        (&Method::POST, ["v1", "users", "email", "address"]) => {
            let body = req.json()?;
            let email = body
                .get("address")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("address is required."))?;
            user_by_link(emu, &app, &format!("email:{}", email.to_ascii_lowercase()))
        }
        (&Method::POST, ["v1", "users", "phone", "number"]) => {
            let body = req.json()?;
            let number = body
                .get("number")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("number is required."))?;
            user_by_link(emu, &app, &format!("phone:{number}"))
        }
        (&Method::POST, ["v1", "wallets"]) => {
            idempotent(emu, &scope, key, req, conflict, || async {
                create_wallet(emu, &app, &req.json()?)
            })
            .await
        }
        (&Method::GET, ["v1", "wallets"]) => list_wallets(emu, &app, req),
        (&Method::GET, ["v1", "wallets", id]) => {
            let id = *id;
            emu.store.tx(|tx| {
                let w = store::wallet_by_id(tx, VENDOR, &app.app_id, id)?
                    .ok_or_else(|| ApiError::not_found("Wallet not found."))?;
                Ok((StatusCode::OK, wallet_json(&w)))
            })
        }
        (&Method::POST, ["v1", "wallets", id, "rpc"]) => {
            // Authorized before anything, a replay included.
            let wallet = authorize_rpc(emu, &app, id, req)?;
            idempotent(emu, &scope, key, req, conflict, || async {
                rpc(emu, &wallet, req)
            })
            .await
        }
        _ => Err(ApiError::not_found(
            "Not found (the vendor emulator implements only the subset Purser uses).",
        )),
    }
}

struct User {
    id: String,
    linked: Value,
    created_at: i64,
}

fn user(tx: &rusqlite::Transaction<'_>, app: &str, id: &str) -> Result<Option<User>, ApiError> {
    Ok(tx
        .query_row(
            "SELECT id, linked, created_at FROM privy_users WHERE app_id = ?1 AND id = ?2",
            params![app, id],
            |r| {
                let linked: String = r.get(1)?;
                Ok(User {
                    id: r.get(0)?,
                    linked: serde_json::from_str(&linked).unwrap_or(Value::Array(vec![])),
                    created_at: r.get(2)?,
                })
            },
        )
        .optional()?)
}

fn chain_type(c: Chain) -> &'static str {
    match c {
        Chain::Evm => "ethereum",
        Chain::Solana => "solana",
    }
}

fn user_json(tx: &rusqlite::Transaction<'_>, app: &str, u: &User) -> Result<Value, ApiError> {
    let mut linked: Vec<Value> = u.linked.as_array().cloned().unwrap_or_default();
    for (index, w) in store::wallets_of(tx, VENDOR, app, &u.id)?
        .iter()
        .enumerate()
    {
        let mut a = json!({
            "type": "wallet",
            "id": w.id,
            "address": w.address,
            "chain_type": chain_type(w.chain),
            "chain_id": if w.chain == Chain::Evm { "eip155:1" } else { "solana:mainnet" },
            "connector_type": "embedded",
            "wallet_client": "privy",
            "wallet_client_type": "privy",
            "delegated": false,
            "imported": false,
            "recovery_method": "privy-v2",
            "wallet_index": index,
            "verified_at": w.created_at_ms / 1000,
            "first_verified_at": w.created_at_ms / 1000,
            "latest_verified_at": w.created_at_ms / 1000,
        });
        if w.chain == Chain::Solana {
            a["public_key"] = json!(w.address);
        }
        linked.push(a);
    }
    Ok(json!({
        "id": u.id,
        "created_at": u.created_at,
        "has_accepted_terms": false,
        "is_guest": false,
        "linked_accounts": linked,
        "mfa_methods": [],
    }))
}

fn wallet_json(w: &Wallet) -> Value {
    json!({
        "id": w.id,
        "address": w.address,
        "chain_type": chain_type(w.chain),
        "created_at": w.created_at_ms,
        "exported_at": null,
        "imported_at": null,
        "owner_id": w.owner_quorum,
        "additional_signers": w.signers,
        "policy_ids": [],
    })
}

fn user_by_link(emu: &Emulator, app: &PrivyApp, link: &str) -> Reply {
    emu.store.tx(|tx| {
        let id: Option<String> = tx
            .query_row(
                "SELECT user_id FROM privy_linked WHERE app_id = ?1 AND link_key = ?2",
                params![app.app_id, link],
                |r| r.get(0),
            )
            .optional()?;
        let u = match id {
            Some(id) => user(tx, &app.app_id, &id)?,
            None => None,
        }
        .ok_or_else(|| ApiError::not_found("User not found."))?;
        Ok((StatusCode::OK, user_json(tx, &app.app_id, &u)?))
    })
}

/// A key quorum known to `app`: configured ones, and those made for an owner's public key.
fn quorum_key(
    emu: &Emulator,
    tx: &rusqlite::Transaction<'_>,
    app: &str,
    id: &str,
) -> Result<Option<p256::ecdsa::VerifyingKey>, ApiError> {
    if let Some(q) = emu
        .accounts
        .key_quorums
        .iter()
        .find(|q| q.app_id == app && q.id == id)
    {
        return Ok(Some(q.key));
    }
    let text: Option<String> = tx
        .query_row(
            "SELECT public_key FROM privy_key_quorums WHERE app_id = ?1 AND id = ?2",
            params![app, id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(text.as_deref().and_then(p256_public_from_spki_b64))
}

fn parse_signers(
    emu: &Emulator,
    tx: &rusqlite::Transaction<'_>,
    app: &str,
    v: Option<&Value>,
    field: &str,
) -> Result<Value, ApiError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(json!([]));
    };
    let list = v
        .as_array()
        .ok_or_else(|| invalid(format!("{field} must be a list.")))?;
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let id = s
            .get("signer_id")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{field}[{i}].signer_id is required.")))?;
        if quorum_key(emu, tx, app, id)?.is_none() {
            return Err(invalid(format!(
                "{field}[{i}].signer_id is not a key quorum of this app."
            )));
        }
        let mut o = Map::new();
        o.insert("signer_id".into(), json!(id));
        if let Some(p) = s.get("override_policy_ids").filter(|p| !p.is_null()) {
            o.insert("override_policy_ids".into(), p.clone());
        }
        out.push(Value::Object(o));
    }
    Ok(Value::Array(out))
}

fn parse_chain(v: Option<&Value>, field: &str) -> Result<Chain, ApiError> {
    match v.and_then(Value::as_str) {
        Some("ethereum") => Ok(Chain::Evm),
        Some("solana") => Ok(Chain::Solana),
        Some(_) => Err(invalid(format!(
            "{field} is not emulated (the vendor emulator supports ethereum and solana)."
        ))),
        None => Err(invalid(format!("{field} is required."))),
    }
}

fn new_wallet(emu: &Emulator, chain: Chain) -> Wallet {
    let id = random_id(24);
    let (address, sealed_key) = emu.store.new_key(&id, chain);
    Wallet {
        id,
        owner_user: None,
        owner_quorum: None,
        signers: json!([]),
        chain,
        address,
        sealed_key,
        created_at_ms: now_ms(),
        policy_deny: false,
    }
}

fn create_user(emu: &Emulator, app: &PrivyApp, body: &Value) -> Reply {
    let list = body
        .get("linked_accounts")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("linked_accounts must be a list."))?;
    let now = now_secs();
    let mut linked = Vec::new();
    let mut keys = Vec::new();
    for (i, a) in list.iter().enumerate() {
        match a.get("type").and_then(Value::as_str) {
            Some("email") => {
                let address = a
                    .get("address")
                    .and_then(Value::as_str)
                    .filter(|e| e.contains('@') && !e.contains(char::is_whitespace))
                    .ok_or_else(|| {
                        invalid(format!(
                            "linked_accounts[{i}].address is not an email address."
                        ))
                    })?;
                keys.push(format!("email:{}", address.to_ascii_lowercase()));
                linked.push(
                    json!({"type": "email", "address": address, "verified_at": now,
                    "first_verified_at": now, "latest_verified_at": now}),
                );
            }
            Some("phone") => {
                let number = a
                    .get("number")
                    .and_then(Value::as_str)
                    .filter(|p| valid_e164(p))
                    .ok_or_else(|| {
                        invalid(format!(
                            "linked_accounts[{i}].number is not an E.164 phone number."
                        ))
                    })?;
                keys.push(format!("phone:{number}"));
                linked.push(
                    json!({"type": "phone", "number": number, "phoneNumber": number,
                    "verified_at": now, "first_verified_at": now, "latest_verified_at": now}),
                );
            }
            _ => {
                return Err(invalid(format!(
                    "linked_accounts[{i}].type is not emulated (the vendor emulator supports email and phone)."
                )));
            }
        }
    }
    let wallet_specs: Vec<Value> = match body.get("wallets") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(invalid("wallets must be a list.")),
    };
    let id = format!("did:privy:{}", random_id(25));
    emu.store.tx(|tx| {
        for k in &keys {
            let taken = tx.execute(
                "INSERT OR IGNORE INTO privy_linked (app_id, link_key, user_id) VALUES (?1, ?2, ?3)",
                params![app.app_id, k, id],
            )? == 0;
            if taken {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    "A user with this linked account already exists.",
                ));
            }
        }
        tx.execute(
            "INSERT INTO privy_users (app_id, id, linked, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![app.app_id, id, Value::Array(linked).to_string(), now],
        )?;
        for (i, spec) in wallet_specs.iter().enumerate() {
            let chain = parse_chain(spec.get("chain_type"), &format!("wallets[{i}].chain_type"))?;
            let signers = parse_signers(
                emu,
                tx,
                &app.app_id,
                spec.get("additional_signers"),
                &format!("wallets[{i}].additional_signers"),
            )?;
            let mut w = new_wallet(emu, chain);
            w.owner_user = Some(id.clone());
            w.signers = signers;
            store::insert_wallet(tx, VENDOR, &app.app_id, &w)?;
        }
        let u = user(tx, &app.app_id, &id)?.ok_or_else(|| ApiError::internal("The user vanished."))?;
        Ok((StatusCode::OK, user_json(tx, &app.app_id, &u)?))
    })
}

fn create_wallet(emu: &Emulator, app: &PrivyApp, body: &Value) -> Reply {
    let chain = parse_chain(body.get("chain_type"), "chain_type")?;
    let mut w = new_wallet(emu, chain);
    emu.store.tx(|tx| {
        match body.get("owner") {
            None | Some(Value::Null) => {}
            Some(owner) => {
                if let Some(user_id) = owner.get("user_id").and_then(Value::as_str) {
                    if user(tx, &app.app_id, user_id)?.is_none() {
                        return Err(invalid("owner.user_id is not a user of this app."));
                    }
                    w.owner_user = Some(user_id.to_string());
                } else if let Some(pk) = owner.get("public_key").and_then(Value::as_str) {
                    let key = p256_public_from_spki_b64(pk).ok_or_else(|| {
                        invalid("owner.public_key is not a base64 DER SPKI P-256 public key.")
                    })?;
                    let quorum = random_id(24);
                    tx.execute(
                        "INSERT INTO privy_key_quorums (id, app_id, public_key) VALUES (?1, ?2, ?3)",
                        params![quorum, app.app_id, p256_spki_b64(&key)],
                    )?;
                    w.owner_quorum = Some(quorum);
                } else {
                    return Err(invalid("owner must have user_id or public_key."));
                }
            }
        }
        if let Some(owner_id) = body.get("owner_id").and_then(Value::as_str) {
            if w.owner_user.is_some() || w.owner_quorum.is_some() {
                return Err(invalid("Give owner or owner_id, not both."));
            }
            if quorum_key(emu, tx, &app.app_id, owner_id)?.is_none() {
                return Err(invalid("owner_id is not a key quorum of this app."));
            }
            w.owner_quorum = Some(owner_id.to_string());
        }
        w.signers = parse_signers(
            emu,
            tx,
            &app.app_id,
            body.get("additional_signers"),
            "additional_signers",
        )?;
        if body
            .get("policy_ids")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty())
        {
            return Err(invalid(
                "policy_ids are not emulated; use PUT /_emulator/privy/wallets/{id}/policy to make a wallet's requests fail its policy.",
            ));
        }
        store::insert_wallet(tx, VENDOR, &app.app_id, &w)?;
        Ok((StatusCode::OK, wallet_json(&w)))
    })
}

fn list_wallets(emu: &Emulator, app: &PrivyApp, req: &Req) -> Reply {
    let user = req.query_param("user_id");
    let chain = match req.query_param("chain_type") {
        None => None,
        Some(c) => Some(parse_chain(Some(&json!(c)), "chain_type")?),
    };
    emu.store.tx(|tx| {
        let wallets = match &user {
            Some(u) => store::wallets_of(tx, VENDOR, &app.app_id, u)?,
            None => store::all_wallets(tx, VENDOR, &app.app_id)?,
        };
        let data: Vec<Value> = wallets
            .iter()
            .filter(|w| chain.is_none_or(|c| c == w.chain))
            .map(wallet_json)
            .collect();
        Ok((StatusCode::OK, json!({"data": data, "next_cursor": null})))
    })
}

/// The wallet, when the request carries an authorization signature of a key allowed to act
/// on it (and has not expired).
fn authorize_rpc(emu: &Emulator, app: &PrivyApp, id: &str, req: &Req) -> Result<Wallet, ApiError> {
    let wallet = emu.store.tx(|tx| {
        let w = store::wallet_by_id(tx, VENDOR, &app.app_id, id)?
            .ok_or_else(|| ApiError::not_found("Wallet not found."))?;
        // Keys allowed to act: the owner key quorum and the additional signers. A wallet
        // owned by a user with no additional signer needs the user's own session key,
        // which the emulator does not issue: no app key can act on it.
        let mut allowed = Vec::new();
        if let Some(q) = &w.owner_quorum
            && let Some(k) = quorum_key(emu, tx, &app.app_id, q)?
        {
            allowed.push(k);
        }
        for s in w.signers.as_array().map(Vec::as_slice).unwrap_or_default() {
            if let Some(sid) = s.get("signer_id").and_then(Value::as_str)
                && let Some(k) = quorum_key(emu, tx, &app.app_id, sid)?
            {
                allowed.push(k);
            }
        }
        Ok((w, allowed))
    });
    let (wallet, allowed) = wallet?;
    let controlled =
        wallet.owner_user.is_some() || wallet.owner_quorum.is_some() || !allowed.is_empty();
    let expiry = req.header("privy-request-expiry");
    if controlled {
        let url = format!("http://{}{}", req.host(), req.path());
        let payload = auth::privy_signed_payload(
            "POST",
            &url,
            &req.body,
            &app.app_id,
            req.header("privy-idempotency-key"),
            expiry,
        )?;
        auth::verify_privy_signature(
            req.header("privy-authorization-signature"),
            &payload,
            &allowed,
        )?;
    }
    if let Some(e) = expiry {
        let ms: i64 = e
            .parse()
            .map_err(|_| invalid("privy-request-expiry is not a unix time in milliseconds."))?;
        if ms < now_ms() {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "request_expired",
                "The request has expired (privy-request-expiry).",
            ));
        }
    }
    Ok(wallet)
}

fn rpc(emu: &Emulator, wallet: &Wallet, req: &Req) -> Reply {
    let body = req.json()?;
    if let Some(a) = body.get("address").and_then(Value::as_str)
        && !a.eq_ignore_ascii_case(&wallet.address)
    {
        return Err(invalid("address is not this wallet's address."));
    }
    if let Some(c) = body.get("chain_type").filter(|c| !c.is_null()) {
        let chain = parse_chain(Some(c), "chain_type")?;
        if chain != wallet.chain {
            return Err(invalid("chain_type is not this wallet's chain type."));
        }
    }
    if wallet.policy_deny {
        return Err(ApiError::bad_request(
            "policy_violation",
            "RPC request denied due to policy violation.",
        ));
    }
    let method = body.get("method").and_then(Value::as_str).unwrap_or("");
    let params = body.get("params").cloned().unwrap_or(Value::Null);
    match (wallet.chain, method) {
        (Chain::Evm, "eth_signTypedData_v4") => {
            let typed = params
                .get("typed_data")
                .ok_or_else(|| invalid("params.typed_data is required."))?;
            let digest = eip712::signing_digest(typed)
                .map_err(|e| invalid(format!("params.typed_data: {e}.")))?;
            let sig = emu.store.sign_digest(wallet, &digest)?;
            Ok((
                StatusCode::OK,
                json!({"method": method, "data": {"signature": format!("0x{}", hex::encode(sig)), "encoding": "hex"}}),
            ))
        }
        (Chain::Evm, "eth_signTransaction") => {
            let tx = evm::tx_from_json(params.get("transaction").unwrap_or(&Value::Null))
                .map_err(|e| invalid(format!("params.{e}.")))?;
            let sig = emu.store.sign_digest(wallet, &tx.signing_hash())?;
            Ok((
                StatusCode::OK,
                json!({"method": method, "data": {"signed_transaction": format!("0x{}", hex::encode(tx.signed_envelope(&sig))), "encoding": "rlp"}}),
            ))
        }
        (Chain::Solana, "signTransaction") => {
            if params
                .get("encoding")
                .and_then(Value::as_str)
                .unwrap_or("base64")
                != "base64"
            {
                return Err(invalid("params.encoding must be base64."));
            }
            let text = params
                .get("transaction")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("params.transaction is required."))?;
            let signed = sign_solana(emu, wallet, text).map_err(invalid)??;
            Ok((
                StatusCode::OK,
                json!({"method": method, "data": {"signed_transaction": signed, "encoding": "base64"}}),
            ))
        }
        (_, "") => Err(invalid("method is required.")),
        _ => Err(invalid(format!(
            "method {method} is not emulated for a {} wallet.",
            chain_type(wallet.chain)
        ))),
    }
}
