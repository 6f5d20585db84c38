//! SigV4 authentication of a request against the configured credentials.
use purser_core::Caller;
use purser_model::AwsError;
use purser_sigv4::{SecretLookup, SigV4Error};
use zeroize::Zeroizing;

use crate::AppState;

/// The AWS signing name of both planes (B1).
pub const SIGNING_NAME: &str = "bedrock-agentcore";

impl SecretLookup for AppState {
    fn secret_for(&self, access_key_id: &str) -> Option<Zeroizing<String>> {
        self.inner
            .credentials
            .get(access_key_id)
            .map(|c| Zeroizing::new(c.secret_access_key.expose().to_string()))
    }
}

fn sigv4_error(e: SigV4Error) -> AwsError {
    AwsError::other(e.code(), e.status(), e.message())
}

/// Who is calling, and the key that identifies this exact signed request.
pub struct Authenticated {
    pub caller: Caller,
    /// The idempotency key of a request that carries no clientToken: derived from its
    /// SigV4 signature, which covers the method, path, query, signed headers, body and
    /// time, so a byte-for-byte replay (within the signature's validity) answers the
    /// original result instead of acting again (B26). The `sigv4:` prefix is outside
    /// the clientToken pattern, so no client-chosen token can collide with it.
    pub replay_key: String,
}

/// Verify the signature; the verified key decides the account.
pub fn authenticate(
    state: &AppState,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Authenticated, AwsError> {
    let headers: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let req = purser_sigv4::Request {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query(),
        headers: &headers,
        body,
    };
    let verified = // Signatures are checked against the real time, never the test clock: moving
    // business time (session expiry) must not expire every client's signature.
    purser_sigv4::verify(&req, state, time::OffsetDateTime::now_utc(), SIGNING_NAME)
        .map_err(sigv4_error)?;
    if verified.region != state.inner.region {
        return Err(AwsError::other(
            "InvalidSignatureException",
            403,
            format!(
                "Credential should be scoped to a valid region, not '{}'. This server serves '{}'.",
                verified.region, state.inner.region
            ),
        ));
    }
    let cred = state
        .inner
        .credentials
        .get(&verified.access_key_id)
        .ok_or_else(|| {
            AwsError::other(
                "UnrecognizedClientException",
                403,
                "The security token included in the request is invalid.",
            )
        })?;
    Ok(Authenticated {
        caller: Caller {
            account_id: cred.account_id.clone(),
            region: state.inner.region.clone(),
        },
        replay_key: format!("sigv4:{}", verified.signature),
    })
}
