//! The error type returned by [`crate::verify`].

/// Why a request failed SigV4 verification.
///
/// Each variant maps to the error code (`__type`) and HTTP status that AWS
/// services use for the same failure; see [`SigV4Error::code`],
/// [`SigV4Error::status`] and [`SigV4Error::message`].
///
/// No variant ever carries the secret access key, the signing key, the
/// signature computed by the server, the canonical request or the string to
/// sign, so neither `Display` nor `Debug` can leak them. Values echoed back
/// (an algorithm name, a credential scope, a header name) come from the
/// request itself and are sanitised (printable ASCII only, length-capped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header and no presigned (`X-Amz-Algorithm` /
    /// `X-Amz-Credential` / `X-Amz-Signature`) query parameters.
    ///
    /// Code `MissingAuthenticationTokenException`.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,

    /// The signature is syntactically incomplete: bad `Authorization` header,
    /// missing `Credential`/`SignedHeaders`/`Signature`, malformed credential,
    /// missing or unparseable `X-Amz-Date`/`Date`, `host` not signed, a signed
    /// header absent from the request, ...
    ///
    /// Code `IncompleteSignatureException`. The payload is the full message.
    #[error("{0}")]
    IncompleteSignature(String),

    /// The access key id is not known to the [`crate::SecretLookup`].
    ///
    /// Code `UnrecognizedClientException`.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,

    /// The signature does not match the one computed by the server (or is not
    /// 64 hex digits).
    ///
    /// Code `InvalidSignatureException`.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. \
         Consult the service documentation for details."
    )]
    SignatureDoesNotMatch,

    /// A signed `x-amz-content-sha256` header is not the SHA-256 of the body
    /// that was received (`UNSIGNED-PAYLOAD` included: the body is always
    /// authenticated).
    ///
    /// Code `InvalidSignatureException`.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,

    /// The request time is more than 15 minutes before `now`.
    ///
    /// Code `InvalidSignatureException`. All three fields are
    /// `YYYYMMDDTHHMMSSZ` timestamps.
    #[error("Signature expired: {request_time} is now earlier than {earliest} ({now} - 15 min.)")]
    SignatureExpired {
        /// The time the request claims to have been signed at.
        request_time: String,
        /// `now - 15 min`.
        earliest: String,
        /// The server's current time.
        now: String,
    },

    /// The request time is more than 15 minutes after `now`.
    ///
    /// Code `InvalidSignatureException`.
    #[error(
        "Signature not yet current: {request_time} is still later than {latest} ({now} + 15 min.)"
    )]
    SignatureNotYetCurrent {
        /// The time the request claims to have been signed at.
        request_time: String,
        /// `now + 15 min`.
        latest: String,
        /// The server's current time.
        now: String,
    },

    /// A presigned URL is used after `X-Amz-Date + X-Amz-Expires`.
    ///
    /// Code `InvalidSignatureException`.
    #[error(
        "Signature expired: {request_time} is now earlier than {earliest} ({now} - {expires_secs} sec.)"
    )]
    PresignedUrlExpired {
        /// `X-Amz-Date` of the presigned URL.
        request_time: String,
        /// `now - X-Amz-Expires`.
        earliest: String,
        /// The server's current time.
        now: String,
        /// `X-Amz-Expires`.
        expires_secs: u32,
    },

    /// The credential scope is well-formed but names the wrong service, a
    /// terminator other than `aws4_request`, an empty region, or a date that
    /// is not the date of `X-Amz-Date`.
    ///
    /// Code `InvalidSignatureException` (this is what AWS returns for
    /// "Credential should be scoped to correct service: ..." and friends).
    /// The payload is the full message.
    #[error("{0}")]
    InvalidCredentialScope(String),
}

impl SigV4Error {
    /// The AWS error code, to be sent as the `__type` of a rest-json error
    /// (and in the `x-amzn-ErrorType` header).
    pub fn code(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            SigV4Error::IncompleteSignature(_) => "IncompleteSignatureException",
            SigV4Error::UnrecognizedClient => "UnrecognizedClientException",
            SigV4Error::SignatureDoesNotMatch
            | SigV4Error::ContentSha256Mismatch
            | SigV4Error::SignatureExpired { .. }
            | SigV4Error::SignatureNotYetCurrent { .. }
            | SigV4Error::PresignedUrlExpired { .. }
            | SigV4Error::InvalidCredentialScope(_) => "InvalidSignatureException",
        }
    }

    /// The HTTP status to answer with. Every SigV4 failure is `403 Forbidden`.
    pub fn status(&self) -> u16 {
        403
    }

    /// The human-readable message (the `message` / `Message` member of the
    /// error body). Identical to the `Display` output.
    pub fn message(&self) -> String {
        self.to_string()
    }
}
