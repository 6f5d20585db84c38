//! A minimal AWS-style client: SigV4-signed JSON over one HTTP/1.1 keep-alive connection.
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The signing name of both AgentCore Payments planes.
pub const SERVICE: &str = "bedrock-agentcore";
/// The header that carries the data-plane user id.
pub const USER_HEADER: &str = "x-amzn-bedrock-agentcore-payments-user-id";

/// Signs requests for one credential, region and service.
#[derive(Clone)]
pub struct Signer {
    identity: Identity,
    region: String,
}

impl Signer {
    pub fn new(access_key_id: &str, secret_access_key: &str, region: &str) -> Signer {
        let creds = Credentials::new(access_key_id, secret_access_key, None, None, "purser-bench");
        Signer {
            identity: creds.into(),
            region: region.to_string(),
        }
    }

    /// Add `x-amz-date` and `authorization` to `req` (whose headers must already hold
    /// `host` and every other header to sign); `url` is the absolute URL.
    pub fn sign(
        &self,
        req: &mut http::Request<Full<Bytes>>,
        url: &str,
        body: &[u8],
    ) -> anyhow::Result<()> {
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(SERVICE)
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
            req.method().as_str(),
            url,
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .context("making the request signable")?;
        let (instructions, _) = sign(signable, &params)
            .context("SigV4 signing")?
            .into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }
}

/// One keep-alive HTTP/1.1 connection to the server.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

/// A finished exchange: status and the whole body.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("reply is not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            host: addr.to_string(),
        })
    }

    /// Build a request with `host`, `content-type` and (if given) the user header, signed
    /// when `signer` is given. Signing happens here, in the caller's task.
    pub fn request(
        &self,
        signer: Option<&Signer>,
        method: &str,
        path: &str,
        user: Option<&str>,
        body: Bytes,
    ) -> anyhow::Result<http::Request<Full<Bytes>>> {
        let mut b = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.host);
        if !body.is_empty() {
            b = b
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::CONTENT_LENGTH, body.len());
        }
        if let Some(u) = user {
            b = b.header(USER_HEADER, u);
        }
        let mut req = b.body(Full::new(body.clone()))?;
        if let Some(s) = signer {
            let url = format!("http://{}{}", self.host, path);
            s.sign(&mut req, &url, &body)?;
        }
        Ok(req)
    }

    /// Send a request and read the whole reply.
    pub async fn send(&mut self, req: http::Request<Full<Bytes>>) -> anyhow::Result<Reply> {
        self.sender.ready().await.context("connection not ready")?;
        let resp = self.sender.send_request(req).await.context("sending")?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading the body")?
            .to_bytes();
        Ok(Reply { status, body })
    }

    /// Sign and send a request; fails unless the status is 2xx.
    pub async fn call(
        &mut self,
        signer: &Signer,
        method: &str,
        path: &str,
        user: Option<&str>,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let bytes = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        let req = self.request(Some(signer), method, path, user, bytes)?;
        let reply = tokio::time::timeout(Duration::from_secs(30), self.send(req))
            .await
            .with_context(|| format!("{method} {path} timed out"))??;
        if !(200..300).contains(&reply.status) {
            bail!(
                "{method} {path} answered {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
        }
        reply.json()
    }
}
