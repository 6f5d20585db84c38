//! Drives a running `purser` with the official AWS Rust SDK
//! (`aws-sdk-bedrockagentcorecontrol`) through the control-plane payment operations.
//!
//! The Rust SDK is stricter than boto3 about the wire: timestamps must have the format the
//! model says (epoch seconds for credential providers, ISO-8601 for managers and
//! connectors), modelled errors are matched by `__type`/`x-amzn-ErrorType`, and each
//! operation's response code is what the model declares. Every response's HTTP status and
//! body are recorded by an interceptor, so a failure says what the SDK received.
//!
//! The binary: `PURSER_BIN`, else `target/{release,debug}/purser` of the workspace (the
//! profile this test was built with first). Build it first (`cargo build -p purser`, or
//! `cargo build --release -p purser` for `cargo test --release`).

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_bedrockagentcorecontrol as control;
use control::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
};
use control::config::retry::RetryConfig;
use control::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use control::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use control::primitives::DateTime;
use control::types::{
    CoinbaseCdpConfigurationInput, CredentialsProviderConfiguration, PaymentConnectorStatus,
    PaymentConnectorType, PaymentCredentialProviderConfiguration,
    PaymentCredentialProviderVendorType, PaymentManagerStatus, PaymentProviderConfigurationInput,
    PaymentsAuthorizerType, ValidationExceptionReason,
};

const ACCESS_KEY_ID: &str = "AKIASDKCOMPAT0000001";
const ACCOUNT_ID: &str = "123456789012";
const REGION: &str = "us-east-1";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/test";
const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How far a server timestamp may be from this machine's clock.
const CLOCK_WINDOW_SECS: i64 = 60;

// ------------------------------------------------------------------ randomness

/// `n` random characters of `[A-Za-z0-9]` (from /dev/urandom; no RNG crate needed).
fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    random_from(ALPHABET, n)
}

/// `n` random characters of `[a-z0-9]`.
fn random_lower(n: usize) -> String {
    random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", n)
}

fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut urandom = File::open("/dev/urandom").expect("opening /dev/urandom");
    let mut out = String::with_capacity(n);
    let mut byte = [0u8; 1];
    // Rejection sampling keeps the distribution uniform.
    let limit = 256 - 256 % alphabet.len();
    while out.len() < n {
        urandom.read_exact(&mut byte).expect("reading /dev/urandom");
        if usize::from(byte[0]) < limit {
            out.push(char::from(alphabet[usize::from(byte[0]) % alphabet.len()]));
        }
    }
    out
}

// ------------------------------------------------------------------ the server

struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
    secret: String,
    // Dropped (and removed) after the child is stopped: the field order matters.
    _dir: tempfile::TempDir,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/sdk-compat sits two levels below the workspace root")
        .to_path_buf()
}

fn purser_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PURSER_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "PURSER_BIN={} is not a file", bin.display());
        return bin;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(|t| workspace_root().join(t))
        .unwrap_or_else(|| workspace_root().join("target"));
    // The binary of the profile this test was built with comes first, so that
    // `cargo test` after `cargo build -p purser` never runs a stale release binary and
    // `cargo test --release` (scripts/test) runs the release one.
    let profiles = if cfg!(debug_assertions) {
        ["debug", "release"]
    } else {
        ["release", "debug"]
    };
    let candidates: Vec<PathBuf> = profiles
        .iter()
        .map(|p| target.join(p).join("purser"))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no purser binary at {} — run `cargo build --release -p purser` first \
                 (or `cargo build -p purser`), or set PURSER_BIN",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

impl Server {
    fn start() -> Server {
        let bin = purser_bin();
        let dir = tempfile::Builder::new()
            .prefix("purser-sdk-compat-")
            .tempdir()
            .expect("creating a temp dir");
        let data_dir = dir.path().join("data");
        let log = dir.path().join("purser.log");
        let out = File::create(&log).expect("creating the server log");
        let err = out.try_clone().expect("cloning the log handle");
        let secret = random_alnum(40);
        let port = free_port();
        let child = Command::new(&bin)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data_dir)
            .env("PURSER_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("PURSER_SECRET_ACCESS_KEY", &secret)
            .env("PURSER_ACCOUNT_ID", ACCOUNT_ID)
            .env("PURSER_REGION", REGION)
            .env_remove("PURSER_DATABASE_URL")
            .env_remove("PURSER_LISTEN")
            .env_remove("PURSER_DATA_DIR")
            .env_remove("PURSER_MASTER_KEY")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        eprintln!(
            "started {} (pid {}) on 127.0.0.1:{port}; log {}",
            bin.display(),
            child.id(),
            log.display()
        );
        let mut server = Server {
            child,
            port,
            log,
            secret,
            _dir: dir,
        };
        server.wait_healthy();
        server
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling the server process") {
                panic!(
                    "purser exited ({status}) before answering /health; its log:\n{}",
                    self.log_text()
                );
            }
            if health_status(self.port) == Some(200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "purser did not answer GET /health with 200 within {HEALTH_TIMEOUT:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The status code of `GET /health`, or None while nothing answers.
fn health_status(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = Vec::new();
    stream.read_to_end(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next()?;
    status_line.split_whitespace().nth(1)?.parse().ok()
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id();
        // SIGTERM (graceful shutdown), by pid; SIGKILL if it lingers.
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- last lines of the purser log (pid {pid}) ----");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

// ------------------------------------------------------- what the SDK received

/// The HTTP status and (once read) body of the last response the SDK saw.
#[derive(Clone, Default, Debug)]
struct Wire(Arc<Mutex<Option<Exchange>>>);

#[derive(Clone, Debug)]
struct Exchange {
    status: u16,
    body: Option<String>,
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HTTP {} body {}",
            self.status,
            self.body.as_deref().unwrap_or("<not read>")
        )
    }
}

impl Wire {
    fn last(&self) -> Exchange {
        self.0
            .lock()
            .unwrap()
            .clone()
            .expect("no response was recorded")
    }

    /// Asserts the last response's status code.
    fn expect_status(&self, want: u16, what: &str) {
        let got = self.last();
        assert_eq!(got.status, want, "{what}: expected HTTP {want}, got {got}");
    }
}

impl Intercept for Wire {
    fn name(&self) -> &'static str {
        "purser-sdk-compat::Wire"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.0.lock().unwrap() = Some(Exchange {
            status: context.response().status().as_u16(),
            body: None,
        });
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes()
            && let Some(exchange) = self.0.lock().unwrap().as_mut()
        {
            exchange.body = Some(String::from_utf8_lossy(bytes).into_owned());
        }
        Ok(())
    }
}

/// Everything the SDK knows about a failed call: its error chain, code, message and the
/// raw response (status and body).
fn describe<E>(err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut out = format!("{}", DisplayErrorContext(err));
    out.push_str(&format!(
        "\n  code: {:?}\n  message: {:?}",
        err.code(),
        err.message()
    ));
    if let Some(raw) = err.raw_response() {
        out.push_str(&format!(
            "\n  HTTP {}\n  body: {}",
            raw.status().as_u16(),
            raw.body()
                .bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_else(|| "<streaming>".into())
        ));
    }
    out
}

/// Unwraps an SDK result, or fails with everything the SDK received.
fn ok<T, E>(what: &str, result: Result<T, SdkError<E>>) -> T
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    result.unwrap_or_else(|err| panic!("{what} failed: {}", describe(&err)))
}

/// Expects a failure; returns it.
fn fails<T: fmt::Debug, E>(what: &str, result: Result<T, SdkError<E>>) -> SdkError<E> {
    match result {
        Ok(out) => panic!("{what}: expected an error, the call succeeded: {out:?}"),
        Err(err) => err,
    }
}

fn http_status<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

// ------------------------------------------------------------------ the client

fn client(server: &Server, secret: &str, wire: &Wire) -> control::Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = control::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(server.endpoint())
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            secret,
            None,
            None,
            "purser-sdk-compat",
        ))
        .http_client(http)
        // A retried 5xx or throttle would hide exactly what this test looks for.
        .retry_config(RetryConfig::disabled())
        .interceptor(wire.clone())
        .build();
    control::Client::from_conf(config)
}

// ------------------------------------------------------------------ assertions

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs() as i64
}

fn assert_recent(what: &str, t: &DateTime) {
    let now = now_secs();
    assert!(
        (t.secs() - now).abs() <= CLOCK_WINDOW_SECS,
        "{what} = {t} ({} epoch s) is not within {CLOCK_WINDOW_SECS}s of now ({now})",
        t.secs()
    );
}

/// Manager and connector ids: lowercase(name) + '-' + 10 chars of [a-z0-9].
fn assert_id_of(name: &str, id: &str) {
    let prefix = format!("{}-", name.to_lowercase());
    let suffix = id
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("id {id:?} does not start with {prefix:?}"));
    assert_eq!(
        suffix.len(),
        10,
        "id {id:?}: suffix {suffix:?} is not 10 chars"
    );
    assert!(
        suffix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "id {id:?}: suffix {suffix:?} is not [a-z0-9]"
    );
}

fn assert_secret_arn(what: &str, arn: &str) {
    let prefix = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:");
    let rest = arn
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{what} {arn:?} does not start with {prefix:?}"));
    assert!(
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_/+=.@!".contains(&b)),
        "{what} {arn:?}: secret name {rest:?} does not match the model's pattern"
    );
}

/// Polls `probe` every 50 ms until it yields `Some`, for at most `timeout`.
async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "{what}: not reached within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn client_token() -> String {
    // 33..256 chars of [a-zA-Z0-9](-*[a-zA-Z0-9])*
    format!("sdkcompat{}", random_alnum(40))
}

// ------------------------------------------------------------------ the scenario

#[tokio::test(flavor = "current_thread")]
async fn control_plane_with_the_rust_sdk() {
    let server = Server::start();
    let wire = Wire::default();
    let c = client(&server, &server.secret, &wire);

    // ---------------------------------------------------- 1. credential provider
    let provider_name = format!("sdk-compat-{}", random_lower(10));
    let api_key_id = format!("key-{}", random_lower(12));
    let api_key_secret = random_alnum(40);
    let wallet_secret = random_alnum(40);
    let cdp = CoinbaseCdpConfigurationInput::builder()
        .api_key_id(&api_key_id)
        .api_key_secret(&api_key_secret)
        .wallet_secret(&wallet_secret)
        .build()
        .expect("building CoinbaseCdpConfigurationInput");
    let created = ok(
        "CreatePaymentCredentialProvider",
        c.create_payment_credential_provider()
            .name(&provider_name)
            .credential_provider_vendor(PaymentCredentialProviderVendorType::CoinbaseCdp)
            .provider_configuration_input(
                PaymentProviderConfigurationInput::CoinbaseCdpConfiguration(cdp),
            )
            .send()
            .await,
    );
    wire.expect_status(201, "CreatePaymentCredentialProvider");
    let create_body = wire.last().body.unwrap_or_default();
    for secret in [&api_key_secret, &wallet_secret] {
        assert!(
            !create_body.contains(secret.as_str()),
            "CreatePaymentCredentialProvider echoed a secret: {create_body}"
        );
    }
    let provider_arn = format!(
        "arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT_ID}:token-vault/default/paymentcredentialprovider/{provider_name}"
    );
    assert_eq!(created.name(), provider_name);
    assert_eq!(created.credential_provider_arn(), provider_arn);
    assert_eq!(
        created.credential_provider_vendor(),
        &PaymentCredentialProviderVendorType::CoinbaseCdp
    );
    let out = created
        .provider_configuration_output()
        .expect("CreatePaymentCredentialProvider: no providerConfigurationOutput")
        .as_coinbase_cdp_configuration()
        .unwrap_or_else(|other| panic!("expected coinbaseCdpConfiguration, got {other:?}"));
    assert_eq!(out.api_key_id(), api_key_id);
    let api_key_secret_arn = out
        .api_key_secret_arn()
        .expect("no apiKeySecretArn")
        .secret_arn()
        .to_owned();
    let wallet_secret_arn = out
        .wallet_secret_arn()
        .expect("no walletSecretArn")
        .secret_arn()
        .to_owned();
    assert_secret_arn("apiKeySecretArn", &api_key_secret_arn);
    assert_secret_arn("walletSecretArn", &wallet_secret_arn);
    assert_ne!(api_key_secret_arn, wallet_secret_arn);

    let got = ok(
        "GetPaymentCredentialProvider",
        c.get_payment_credential_provider()
            .name(&provider_name)
            .send()
            .await,
    );
    wire.expect_status(200, "GetPaymentCredentialProvider");
    assert_eq!(got.name(), provider_name);
    assert_eq!(got.credential_provider_arn(), provider_arn);
    assert_eq!(
        got.credential_provider_vendor(),
        &PaymentCredentialProviderVendorType::CoinbaseCdp
    );
    assert_recent(
        "GetPaymentCredentialProvider.createdTime",
        got.created_time(),
    );
    assert_recent(
        "GetPaymentCredentialProvider.lastUpdatedTime",
        got.last_updated_time(),
    );
    assert!(got.last_updated_time() >= got.created_time());
    let got_cdp = got
        .provider_configuration_output()
        .expect("GetPaymentCredentialProvider: no providerConfigurationOutput")
        .as_coinbase_cdp_configuration()
        .unwrap_or_else(|other| panic!("expected coinbaseCdpConfiguration, got {other:?}"));
    assert_eq!(got_cdp.api_key_id(), api_key_id);
    assert_eq!(
        got_cdp.api_key_secret_arn().map(|s| s.secret_arn()),
        Some(api_key_secret_arn.as_str())
    );
    assert_eq!(
        got_cdp.wallet_secret_arn().map(|s| s.secret_arn()),
        Some(wallet_secret_arn.as_str())
    );

    let mut listed = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = ok(
            "ListPaymentCredentialProviders",
            c.list_payment_credential_providers()
                .set_next_token(next.take())
                .send()
                .await,
        );
        wire.expect_status(200, "ListPaymentCredentialProviders");
        listed.extend(page.credential_providers().iter().cloned());
        match page.next_token() {
            Some(t) => next = Some(t.to_owned()),
            None => break,
        }
    }
    let item = listed
        .iter()
        .find(|p| p.name() == provider_name)
        .unwrap_or_else(|| {
            panic!("{provider_name} not in ListPaymentCredentialProviders: {listed:?}")
        });
    assert_eq!(item.credential_provider_arn(), provider_arn);
    assert_eq!(
        item.credential_provider_vendor(),
        &PaymentCredentialProviderVendorType::CoinbaseCdp
    );
    assert_eq!(item.created_time(), got.created_time());
    assert_recent(
        "ListPaymentCredentialProviders[].lastUpdatedTime",
        item.last_updated_time(),
    );

    // ---------------------------------------------------- 2. payment manager
    let manager_name = format!("SdkCompat{}", random_alnum(8));
    let manager_token = client_token();
    let mgr = ok(
        "CreatePaymentManager",
        c.create_payment_manager()
            .name(&manager_name)
            .description("created by the Rust SDK")
            .authorizer_type(PaymentsAuthorizerType::AwsIam)
            .role_arn(ROLE_ARN)
            .client_token(&manager_token)
            .send()
            .await,
    );
    wire.expect_status(202, "CreatePaymentManager");
    let manager_id = mgr.payment_manager_id().to_owned();
    assert_id_of(&manager_name, &manager_id);
    let manager_arn =
        format!("arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT_ID}:payment-manager/{manager_id}");
    assert_eq!(mgr.payment_manager_arn(), manager_arn);
    assert_eq!(mgr.name(), manager_name);
    assert_eq!(mgr.authorizer_type(), &PaymentsAuthorizerType::AwsIam);
    assert_eq!(mgr.role_arn(), ROLE_ARN);
    assert_eq!(mgr.status(), &PaymentManagerStatus::Creating);
    assert_recent("CreatePaymentManager.createdAt", mgr.created_at());

    let ready = wait_for("payment manager READY", READY_TIMEOUT, async || {
        let got = ok(
            "GetPaymentManager",
            c.get_payment_manager()
                .payment_manager_id(&manager_id)
                .send()
                .await,
        );
        wire.expect_status(200, "GetPaymentManager");
        (got.status() == &PaymentManagerStatus::Ready).then_some(got)
    })
    .await;
    assert_eq!(ready.payment_manager_id(), manager_id);
    assert_eq!(ready.payment_manager_arn(), manager_arn);
    assert_eq!(ready.name(), manager_name);
    assert_eq!(ready.description(), Some("created by the Rust SDK"));
    assert_eq!(ready.authorizer_type(), &PaymentsAuthorizerType::AwsIam);
    assert_eq!(ready.role_arn(), ROLE_ARN);
    assert_eq!(ready.created_at(), mgr.created_at());
    assert_recent("GetPaymentManager.lastUpdatedAt", ready.last_updated_at());
    assert!(ready.last_updated_at() >= ready.created_at());

    // The same client token and request: the same manager, not a second one.
    let again = ok(
        "CreatePaymentManager (same clientToken)",
        c.create_payment_manager()
            .name(&manager_name)
            .description("created by the Rust SDK")
            .authorizer_type(PaymentsAuthorizerType::AwsIam)
            .role_arn(ROLE_ARN)
            .client_token(&manager_token)
            .send()
            .await,
    );
    assert_eq!(again.payment_manager_id(), manager_id);

    let managers = ok(
        "ListPaymentManagers",
        c.list_payment_managers().send().await,
    );
    wire.expect_status(200, "ListPaymentManagers");
    let summary = managers
        .payment_managers()
        .iter()
        .find(|m| m.payment_manager_id() == manager_id)
        .unwrap_or_else(|| panic!("{manager_id} not in ListPaymentManagers: {managers:?}"));
    assert_eq!(summary.payment_manager_arn(), manager_arn);
    assert_eq!(summary.status(), &PaymentManagerStatus::Ready);
    assert_eq!(
        managers
            .payment_managers()
            .iter()
            .filter(|m| m.name() == manager_name)
            .count(),
        1,
        "the retried CreatePaymentManager made a second manager"
    );

    // ---------------------------------------------------- 3. connectors
    let coinbase_name = format!("cdp_{}", random_alnum(8));
    let coinbase_config = CredentialsProviderConfiguration::CoinbaseCdp(
        PaymentCredentialProviderConfiguration::builder()
            .credential_provider_arn(&provider_arn)
            .build()
            .expect("building PaymentCredentialProviderConfiguration"),
    );
    let cdp_conn = ok(
        "CreatePaymentConnector (CoinbaseCDP)",
        c.create_payment_connector()
            .payment_manager_id(&manager_id)
            .name(&coinbase_name)
            .description("coinbase via the Rust SDK")
            .r#type(PaymentConnectorType::CoinbaseCdp)
            .credential_provider_configurations(coinbase_config.clone())
            .client_token(client_token())
            .send()
            .await,
    );
    wire.expect_status(202, "CreatePaymentConnector (CoinbaseCDP)");
    let coinbase_id = cdp_conn.payment_connector_id().to_owned();
    assert_id_of(&coinbase_name, &coinbase_id);
    assert_eq!(cdp_conn.payment_manager_id(), manager_id);
    assert_eq!(cdp_conn.name(), coinbase_name);
    assert_eq!(cdp_conn.r#type(), &PaymentConnectorType::CoinbaseCdp);
    assert_eq!(cdp_conn.status(), &PaymentConnectorStatus::Creating);
    assert_eq!(
        cdp_conn.credential_provider_configurations(),
        std::slice::from_ref(&coinbase_config)
    );
    assert_recent("CreatePaymentConnector.createdAt", cdp_conn.created_at());

    // Purser's extension: a connector whose keys Purser holds itself. The SDK carries the
    // value as an unknown enum variant.
    let self_custody = PaymentConnectorType::from("SelfCustody");
    assert_eq!(self_custody.as_str(), "SelfCustody");
    let sc_name = format!("self_{}", random_alnum(8));
    let sc_conn = ok(
        "CreatePaymentConnector (SelfCustody)",
        c.create_payment_connector()
            .payment_manager_id(&manager_id)
            .name(&sc_name)
            .r#type(self_custody.clone())
            .set_credential_provider_configurations(Some(Vec::new()))
            .send()
            .await,
    );
    wire.expect_status(202, "CreatePaymentConnector (SelfCustody)");
    let sc_id = sc_conn.payment_connector_id().to_owned();
    assert_id_of(&sc_name, &sc_id);
    assert_eq!(sc_conn.r#type().as_str(), "SelfCustody");
    assert_eq!(sc_conn.status(), &PaymentConnectorStatus::Creating);
    assert!(sc_conn.credential_provider_configurations().is_empty());
    assert!(
        wire.last().body.is_some_and(|b| b
            .split_whitespace()
            .collect::<String>()
            .contains("\"credentialProviderConfigurations\":[]")),
        "CreatePaymentConnector (SelfCustody) must carry the required, empty \
         credentialProviderConfigurations list: {}",
        wire.last()
    );

    for (id, name) in [(&coinbase_id, &coinbase_name), (&sc_id, &sc_name)] {
        let got = wait_for(
            &format!("connector {id} READY"),
            READY_TIMEOUT,
            async || {
                let got = ok(
                    "GetPaymentConnector",
                    c.get_payment_connector()
                        .payment_manager_id(&manager_id)
                        .payment_connector_id(id)
                        .send()
                        .await,
                );
                wire.expect_status(200, "GetPaymentConnector");
                (got.status() == &PaymentConnectorStatus::Ready).then_some(got)
            },
        )
        .await;
        assert_eq!(got.payment_connector_id(), id.as_str());
        assert_eq!(got.name(), name.as_str());
        assert_recent("GetPaymentConnector.createdAt", got.created_at());
        assert!(got.last_updated_at() >= got.created_at());
        if id == &coinbase_id {
            assert_eq!(got.r#type(), &PaymentConnectorType::CoinbaseCdp);
            assert_eq!(got.description(), Some("coinbase via the Rust SDK"));
            assert_eq!(got.created_at(), cdp_conn.created_at());
            assert_eq!(
                got.credential_provider_configurations(),
                std::slice::from_ref(&coinbase_config)
            );
        } else {
            assert_eq!(got.r#type(), &self_custody);
            assert_eq!(got.created_at(), sc_conn.created_at());
            assert!(got.credential_provider_configurations().is_empty());
        }
    }

    let connectors = ok(
        "ListPaymentConnectors",
        c.list_payment_connectors()
            .payment_manager_id(&manager_id)
            .send()
            .await,
    );
    wire.expect_status(200, "ListPaymentConnectors");
    let mut listed: Vec<(String, String, String)> = connectors
        .payment_connectors()
        .iter()
        .map(|s| {
            assert_eq!(s.status(), &PaymentConnectorStatus::Ready, "{s:?}");
            assert_recent("ListPaymentConnectors[].lastUpdatedAt", s.last_updated_at());
            (
                s.payment_connector_id().to_owned(),
                s.name().to_owned(),
                s.r#type().as_str().to_owned(),
            )
        })
        .collect();
    listed.sort();
    let mut want = vec![
        (
            coinbase_id.clone(),
            coinbase_name.clone(),
            "CoinbaseCDP".to_owned(),
        ),
        (sc_id.clone(), sc_name.clone(), "SelfCustody".to_owned()),
    ];
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(connectors.next_token(), None);

    let updated = ok(
        "UpdatePaymentConnector",
        c.update_payment_connector()
            .payment_manager_id(&manager_id)
            .payment_connector_id(&sc_id)
            .description("updated by the Rust SDK")
            .send()
            .await,
    );
    wire.expect_status(202, "UpdatePaymentConnector");
    assert_eq!(updated.payment_connector_id(), sc_id);
    assert_eq!(updated.payment_manager_id(), manager_id);
    assert_eq!(updated.name(), sc_name);
    assert_eq!(updated.r#type(), &self_custody);
    assert_eq!(updated.status(), &PaymentConnectorStatus::Updating);
    assert_recent(
        "UpdatePaymentConnector.lastUpdatedAt",
        updated.last_updated_at(),
    );
    let after = wait_for("updated connector READY", READY_TIMEOUT, async || {
        let got = ok(
            "GetPaymentConnector",
            c.get_payment_connector()
                .payment_manager_id(&manager_id)
                .payment_connector_id(&sc_id)
                .send()
                .await,
        );
        (got.status() == &PaymentConnectorStatus::Ready).then_some(got)
    })
    .await;
    assert_eq!(after.description(), Some("updated by the Rust SDK"));
    assert!(after.last_updated_at() >= updated.last_updated_at());

    // ---------------------------------------------------- 4. error shapes
    let unknown = format!("nosuchmanager-{}", random_lower(10));
    let err = fails(
        "GetPaymentManager (unknown id)",
        c.get_payment_manager()
            .payment_manager_id(&unknown)
            .send()
            .await,
    );
    assert_eq!(http_status(&err), Some(404), "{}", describe(&err));
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    let detail = describe(&err);
    let service = err.into_service_error();
    assert!(
        service.is_resource_not_found_exception(),
        "expected the modelled ResourceNotFoundException: {detail}"
    );
    assert!(
        service.message().is_some_and(|m| !m.is_empty()),
        "ResourceNotFoundException without a message: {detail}"
    );

    let err = fails(
        "CreatePaymentManager (bad name)",
        c.create_payment_manager()
            .name("bad-name!")
            .authorizer_type(PaymentsAuthorizerType::AwsIam)
            .role_arn(ROLE_ARN)
            .client_token(client_token())
            .send()
            .await,
    );
    assert_eq!(http_status(&err), Some(400), "{}", describe(&err));
    let detail = describe(&err);
    match err.into_service_error() {
        control::operation::create_payment_manager::CreatePaymentManagerError::ValidationException(
            v,
        ) => {
            assert_eq!(
                v.reason(),
                &ValidationExceptionReason::FieldValidationFailed,
                "{detail}"
            );
            assert!(!v.message().is_empty(), "{detail}");
            assert!(
                v.field_list().iter().any(|f| f.name() == "name"),
                "fieldList does not name `name`: {detail}"
            );
            for f in v.field_list() {
                assert!(!f.message().is_empty(), "fieldList entry without a message: {detail}");
            }
        }
        other => panic!("expected the modelled ValidationException, got {other:?}: {detail}"),
    }

    let err = fails(
        "DeletePaymentManager (has connectors)",
        c.delete_payment_manager()
            .payment_manager_id(&manager_id)
            .send()
            .await,
    );
    assert_eq!(http_status(&err), Some(409), "{}", describe(&err));
    let detail = describe(&err);
    let service = err.into_service_error();
    assert!(
        service.is_conflict_exception(),
        "expected the modelled ConflictException: {detail}"
    );
    assert!(service.message().is_some_and(|m| !m.is_empty()), "{detail}");

    let bad_wire = Wire::default();
    let intruder = client(&server, &random_alnum(40), &bad_wire);
    let err = fails(
        "ListPaymentManagers (wrong secret)",
        intruder.list_payment_managers().send().await,
    );
    assert_eq!(http_status(&err), Some(403), "{}", describe(&err));
    assert_eq!(
        err.code(),
        Some("InvalidSignatureException"),
        "{}",
        describe(&err)
    );
    assert!(
        err.message().is_some_and(|m| !m.is_empty()),
        "{}",
        describe(&err)
    );
    let raw = err.raw_response().expect("a raw response");
    assert_eq!(
        raw.headers()
            .get("x-amzn-errortype")
            .map(|v| v.split(':').next().unwrap_or(v)),
        Some("InvalidSignatureException"),
        "{}",
        describe(&err)
    );

    // ---------------------------------------------------- 5. cleanup
    for id in [&coinbase_id, &sc_id] {
        let deleted = ok(
            "DeletePaymentConnector",
            c.delete_payment_connector()
                .payment_manager_id(&manager_id)
                .payment_connector_id(id)
                .send()
                .await,
        );
        wire.expect_status(202, "DeletePaymentConnector");
        assert_eq!(deleted.status(), &PaymentConnectorStatus::Deleting);
        assert_eq!(deleted.payment_connector_id(), Some(id.as_str()));
    }
    for id in [&coinbase_id, &sc_id] {
        wait_for(
            &format!("connector {id} gone"),
            READY_TIMEOUT,
            async || match c
                .get_payment_connector()
                .payment_manager_id(&manager_id)
                .payment_connector_id(id)
                .send()
                .await
            {
                Ok(got) => {
                    assert_eq!(got.status(), &PaymentConnectorStatus::Deleting);
                    None
                }
                Err(err) => {
                    assert_eq!(http_status(&err), Some(404), "{}", describe(&err));
                    let detail = describe(&err);
                    assert!(
                        err.into_service_error().is_resource_not_found_exception(),
                        "{detail}"
                    );
                    Some(())
                }
            },
        )
        .await;
    }

    let deleted = ok(
        "DeletePaymentManager",
        c.delete_payment_manager()
            .payment_manager_id(&manager_id)
            .client_token(client_token())
            .send()
            .await,
    );
    wire.expect_status(202, "DeletePaymentManager");
    assert_eq!(deleted.status(), &PaymentManagerStatus::Deleting);
    assert_eq!(deleted.payment_manager_id(), Some(manager_id.as_str()));
    wait_for("payment manager gone", READY_TIMEOUT, async || {
        match c
            .get_payment_manager()
            .payment_manager_id(&manager_id)
            .send()
            .await
        {
            Ok(got) => {
                assert_eq!(got.status(), &PaymentManagerStatus::Deleting);
                None
            }
            Err(err) => {
                assert_eq!(http_status(&err), Some(404), "{}", describe(&err));
                Some(())
            }
        }
    })
    .await;

    ok(
        "DeletePaymentCredentialProvider",
        c.delete_payment_credential_provider()
            .name(&provider_name)
            .send()
            .await,
    );
    wire.expect_status(204, "DeletePaymentCredentialProvider");
    let err = fails(
        "GetPaymentCredentialProvider (deleted)",
        c.get_payment_credential_provider()
            .name(&provider_name)
            .send()
            .await,
    );
    assert_eq!(http_status(&err), Some(404), "{}", describe(&err));
    let detail = describe(&err);
    assert!(
        err.into_service_error().is_resource_not_found_exception(),
        "{detail}"
    );

    assert!(
        !server.log_text().contains(&server.secret),
        "the server logged its secret access key"
    );
    drop(server);
}
