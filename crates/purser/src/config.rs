//! Configuration: each option comes from a flag, an environment variable, the TOML file
//! named by `--config`, or its default, in that order of precedence.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use purser_server::Credential;
use purser_wallet::Secret;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8402";
pub const DEFAULT_DATA_DIR: &str = "./purser-data";
pub const DEFAULT_REGION: &str = "us-east-1";

/// Options given on the command line (clap also reads their environment variables).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [env: PURSER_LISTEN] [default: 127.0.0.1:8402]
    #[arg(long, env = "PURSER_LISTEN", hide_env = true)]
    pub listen: Option<String>,
    /// Serve Prometheus metrics (`GET /metrics`) and readiness on this separate address;
    /// off when unset [env: PURSER_METRICS_LISTEN]
    #[arg(long, env = "PURSER_METRICS_LISTEN", hide_env = true)]
    pub metrics_listen: Option<String>,
    /// Directory for the database, the master key and generated credentials
    /// [env: PURSER_DATA_DIR] [default: ./purser-data]
    #[arg(long, env = "PURSER_DATA_DIR", hide_env = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH, or postgres://USER@HOST:PORT/DB for several nodes
    /// [env: PURSER_DATABASE_URL]
    /// [default: an SQLite file purser.db in the data dir]
    #[arg(long, env = "PURSER_DATABASE_URL", hide_env = true)]
    pub database_url: Option<String>,
    /// Largest number of PostgreSQL connections this node opens
    /// [env: PURSER_DATABASE_MAX_CONNECTIONS] [default: 16]
    #[arg(long, env = "PURSER_DATABASE_MAX_CONNECTIONS", hide_env = true)]
    pub database_max_connections: Option<u32>,
    /// TOML configuration file (same keys as the options, plus [[credentials]] and [rpc])
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// FOR TESTS ONLY: let `POST /_purser/test/clock {"advanceSeconds": N}` move the
    /// server's clock forward (to test session expiry without waiting)
    #[arg(long, env = "PURSER_TEST_CLOCK", hide_env = true)]
    pub test_clock: bool,
    /// Serve the web console under /console/ (sign in with an access key of the
    /// configured accounts) [env: PURSER_CONSOLE=true|false] [default: off]
    #[arg(long)]
    pub console: bool,
    /// Allow the console on a listen address that is not loopback (put a TLS proxy in
    /// front) [env: PURSER_CONSOLE_ALLOW_REMOTE=true|false] [default: off]
    #[arg(long)]
    pub console_allow_remote: bool,
    /// DEVELOPMENT ONLY: also run the vendor emulator (a local stand-in for the Coinbase
    /// CDP and Privy wallet APIs, not a vendor) on a loopback port and point the CDP and
    /// Privy base URLs at it [env: PURSER_VENDOR_EMULATOR] [default: off]
    #[arg(long)]
    pub vendor_emulator: bool,
    /// Loopback address of the vendor emulator [env: PURSER_VENDOR_EMULATOR_LISTEN]
    /// [default: 127.0.0.1:0, any free port]
    #[arg(long)]
    pub vendor_emulator_listen: Option<String>,
}

/// The TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub database_max_connections: Option<u32>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub account_id: Option<String>,
    pub master_key: Option<String>,
    #[serde(default)]
    pub credentials: Vec<FileCredential>,
    /// Chain JSON-RPC URLs by chain name (`BASE_SEPOLIA = "http://..."`).
    #[serde(default)]
    pub rpc: std::collections::BTreeMap<String, String>,
    /// CUSTOM_JWT: fetch discovery documents and JWKS over http from any host.
    pub jwt_allow_http: Option<bool>,
    /// CUSTOM_JWT: least seconds between two refreshes of one issuer's keys.
    pub jwt_refresh_secs: Option<u64>,
    /// Serve the web console.
    pub console: Option<bool>,
    /// Allow the console on a non-loopback listen address.
    pub console_allow_remote: Option<bool>,
    /// Coinbase CDP API base URL (default `https://api.cdp.coinbase.com/platform`).
    pub cdp_base_url: Option<String>,
    /// Privy API base URL (default `https://api.privy.io`).
    pub privy_base_url: Option<String>,
    /// Timeout of one vendor API attempt, milliseconds (default 10000).
    pub vendor_timeout_ms: Option<u64>,
    /// Development only: run the vendor emulator (see `--vendor-emulator`).
    pub vendor_emulator: Option<bool>,
    /// Loopback address of the vendor emulator.
    pub vendor_emulator_listen: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCredential {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: String,
}

/// Everything `serve` needs, resolved.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where `/metrics` is served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub database_max_connections: u32,
    pub region: String,
    /// The root credential, if configured; otherwise one is generated into the data dir.
    pub root: Option<Credential>,
    pub extra_credentials: Vec<Credential>,
    pub master_key: Option<Secret>,
    pub rpc: purser_chain::RpcConfig,
    pub test_clock: bool,
    pub jwt: purser_server::JwtSettings,
    /// Serve the web console under /console/.
    pub console: bool,
    pub vendors: VendorConfig,
    /// Where the vendor emulator listens, when it is on (never by default).
    pub vendor_emulator: Option<SocketAddr>,
}

/// The vendor wallet APIs (CoinbaseCDP and StripePrivy connectors).
#[derive(Debug, Clone)]
pub struct VendorConfig {
    pub cdp_base_url: purser_wallet::vendor::api::BaseUrl,
    pub privy_base_url: purser_wallet::vendor::api::BaseUrl,
    pub timeout: std::time::Duration,
}

/// `PURSER_CDP_BASE_URL`, `PURSER_PRIVY_BASE_URL`, `PURSER_VENDOR_TIMEOUT_MS`, else the
/// file's `cdp_base_url`, `privy_base_url`, `vendor_timeout_ms`, else the real vendors
/// and 10 s. Base URLs must be https (http only on a loopback host).
fn vendor_config(env: Env<'_>, file: &FileConfig) -> anyhow::Result<VendorConfig> {
    use purser_wallet::vendor::{api::BaseUrl, cdp, privy};
    let url = |var: &str, file: &Option<String>, default: &str| -> anyhow::Result<BaseUrl> {
        let text = env(var)
            .or_else(|| file.clone())
            .unwrap_or_else(|| default.to_string());
        BaseUrl::parse(&text).map_err(|e| anyhow::anyhow!("{var}: {e}"))
    };
    let timeout_ms = match env("PURSER_VENDOR_TIMEOUT_MS") {
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=120_000).contains(n))
            .with_context(|| format!("PURSER_VENDOR_TIMEOUT_MS {v:?} is not 1..=120000"))?,
        None => file.vendor_timeout_ms.unwrap_or(10_000).clamp(1, 120_000),
    };
    Ok(VendorConfig {
        cdp_base_url: url(
            "PURSER_CDP_BASE_URL",
            &file.cdp_base_url,
            cdp::DEFAULT_BASE_URL,
        )?,
        privy_base_url: url(
            "PURSER_PRIVY_BASE_URL",
            &file.privy_base_url,
            privy::DEFAULT_BASE_URL,
        )?,
        timeout: std::time::Duration::from_millis(timeout_ms),
    })
}

/// The base-URL keys the vendor emulator overrides when it runs.
pub const CDP_BASE_URL_ENV: &str = "PURSER_CDP_BASE_URL";
pub const PRIVY_BASE_URL_ENV: &str = "PURSER_PRIVY_BASE_URL";
pub const DEFAULT_VENDOR_EMULATOR_LISTEN: &str = "127.0.0.1:0";

/// A loopback socket address (the vendor emulator listens on nothing else).
pub fn loopback_addr(what: &str, text: &str) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = text
        .parse()
        .with_context(|| format!("{what} {text:?} is not an address like 127.0.0.1:8403"))?;
    if !addr.ip().is_loopback() {
        bail!(
            "{what} must be a loopback address (127.0.0.1 or ::1): the vendor emulator is a development tool"
        );
    }
    Ok(addr)
}

fn boolish(name: &str, v: &str) -> anyhow::Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => bail!("{name} {v:?} is not true or false"),
    }
}

/// `--vendor-emulator`, else `PURSER_VENDOR_EMULATOR`, else the file's `vendor_emulator`,
/// else off; and where it listens.
fn vendor_emulator(
    args: &ServeArgs,
    env: Env<'_>,
    file_on: Option<bool>,
    file_listen: Option<String>,
) -> anyhow::Result<Option<SocketAddr>> {
    let on = if args.vendor_emulator {
        true
    } else if let Some(v) = env("PURSER_VENDOR_EMULATOR") {
        boolish("PURSER_VENDOR_EMULATOR", &v)?
    } else {
        file_on.unwrap_or(false)
    };
    let listen = args
        .vendor_emulator_listen
        .clone()
        .or_else(|| env("PURSER_VENDOR_EMULATOR_LISTEN"))
        .or(file_listen)
        .unwrap_or_else(|| DEFAULT_VENDOR_EMULATOR_LISTEN.to_string());
    let addr = loopback_addr("PURSER_VENDOR_EMULATOR_LISTEN", &listen)?;
    Ok(on.then_some(addr))
}

/// Reads an environment variable; empty counts as unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn resolve(args: &ServeArgs, env: Env<'_>) -> anyhow::Result<Config> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            parse_file(path, &text)?
        }
        None => FileConfig::default(),
    };
    let vendors = vendor_config(env, &file)?;
    let listen_text = args
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen: SocketAddr = listen_text.parse().with_context(|| {
        format!("--listen {listen_text:?} is not an address like 127.0.0.1:8402")
    })?;
    let metrics_listen = args
        .metrics_listen
        .clone()
        .or(file.metrics_listen)
        .map(|text| {
            text.parse::<SocketAddr>().with_context(|| {
                format!("--metrics-listen {text:?} is not an address like 127.0.0.1:9402")
            })
        })
        .transpose()?;
    let data_dir = args
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let database_url = args
        .database_url
        .clone()
        .or(file.database_url)
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("purser.db").display()));
    let region = env("PURSER_REGION")
        .or(file.region)
        .unwrap_or_else(|| DEFAULT_REGION.into());
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        bail!("PURSER_REGION {region:?} is not a region name like us-east-1");
    }
    let root_parts = (
        env("PURSER_ACCESS_KEY_ID").or(file.access_key_id),
        env("PURSER_SECRET_ACCESS_KEY").or(file.secret_access_key),
        env("PURSER_ACCOUNT_ID").or(file.account_id),
    );
    let root = match root_parts {
        (None, None, None) => None,
        (Some(akid), Some(secret), Some(account)) => Some(credential(akid, secret, account)?),
        _ => bail!(
            "the root credential needs all three of PURSER_ACCESS_KEY_ID, PURSER_SECRET_ACCESS_KEY and PURSER_ACCOUNT_ID (or none, to generate one)"
        ),
    };
    let extra_credentials = file
        .credentials
        .into_iter()
        .map(|c| credential(c.access_key_id, c.secret_access_key, c.account_id))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let master_key = env("PURSER_MASTER_KEY")
        .or(file.master_key)
        .map(Secret::new);
    let console = switch(args.console, env, "PURSER_CONSOLE", file.console)?;
    let console_allow_remote = switch(
        args.console_allow_remote,
        env,
        "PURSER_CONSOLE_ALLOW_REMOTE",
        file.console_allow_remote,
    )?;
    if console && !listen.ip().is_loopback() && !console_allow_remote {
        bail!(
            "the web console is on but the listen address {listen} is not loopback: listen on 127.0.0.1 or ::1 (reach it through an SSH tunnel or a TLS proxy), or allow it explicitly with --console-allow-remote / PURSER_CONSOLE_ALLOW_REMOTE=true / console_allow_remote = true"
        );
    }
    let mut rpc_urls = std::collections::HashMap::new();
    for (name, url) in &file.rpc {
        let chain = purser_chain::Chain::parse_config_name(name).with_context(|| {
            format!(
                "[rpc] {name}: not a chain (BASE, BASE_SEPOLIA, ETHEREUM, SOLANA, SOLANA_DEVNET, TEMPO_4217, TEMPO_42431)"
            )
        })?;
        rpc_urls.insert(chain, url.clone());
    }
    let mut rpc = purser_chain::RpcConfig::default();
    rpc.apply_urls(&rpc_urls)?;
    rpc.apply_env(env)?;
    Ok(Config {
        listen,
        metrics_listen,
        data_dir,
        database_url,
        database_max_connections: args
            .database_max_connections
            .or(file.database_max_connections)
            .unwrap_or(16)
            .max(1),
        region,
        root,
        extra_credentials,
        master_key,
        rpc,
        test_clock: args.test_clock,
        jwt: jwt_settings(env, file.jwt_allow_http, file.jwt_refresh_secs)?,
        console,
        vendors,
        vendor_emulator: vendor_emulator(
            args,
            env,
            file.vendor_emulator,
            file.vendor_emulator_listen,
        )?,
    })
}

/// An on/off option: the flag turns it on; otherwise the environment variable
/// (true/false), then the file's key, then off.
fn switch(flag: bool, env: Env<'_>, var: &str, file: Option<bool>) -> anyhow::Result<bool> {
    if flag {
        return Ok(true);
    }
    Ok(match env(var) {
        Some(v) => boolish(var, &v)?,
        None => file.unwrap_or(false),
    })
}

/// `PURSER_JWT_ALLOW_HTTP` (true/false) and `PURSER_JWT_REFRESH_SECS` (1..=3600), else
/// the file's `jwt_allow_http` / `jwt_refresh_secs`, else https-or-loopback and 30 s.
fn jwt_settings(
    env: Env<'_>,
    file_allow_http: Option<bool>,
    file_refresh_secs: Option<u64>,
) -> anyhow::Result<purser_server::JwtSettings> {
    let mut jwt = purser_server::JwtSettings::default();
    let allow_http = match env("PURSER_JWT_ALLOW_HTTP") {
        Some(v) => Some(boolish("PURSER_JWT_ALLOW_HTTP", &v)?),
        None => file_allow_http,
    };
    jwt.allow_http = allow_http.unwrap_or(false);
    let refresh = match env("PURSER_JWT_REFRESH_SECS") {
        Some(v) => Some(v.parse::<u64>().with_context(|| {
            format!("PURSER_JWT_REFRESH_SECS {v:?} is not a number of seconds")
        })?),
        None => file_refresh_secs,
    };
    if let Some(secs) = refresh {
        if !(1..=3600).contains(&secs) {
            bail!("PURSER_JWT_REFRESH_SECS must be between 1 and 3600 seconds");
        }
        jwt.min_refresh = std::time::Duration::from_secs(secs);
    }
    Ok(jwt)
}

/// The keys the file may have (top level and `[[credentials]]`).
const FILE_KEYS: &[&str] = &[
    "listen",
    "metrics_listen",
    "data_dir",
    "database_url",
    "database_max_connections",
    "region",
    "access_key_id",
    "secret_access_key",
    "account_id",
    "master_key",
    "credentials",
    "rpc",
    "jwt_allow_http",
    "jwt_refresh_secs",
    "console",
    "console_allow_remote",
    "vendor_emulator",
    "vendor_emulator_listen",
];

/// Parse the TOML file. An error names the file, the line and the key, never a value:
/// toml's own message quotes the offending line (a `master_key` or `secret_access_key`
/// with it) and serde's quote the offending value, so neither is passed on as it is.
fn parse_file(path: &Path, text: &str) -> anyhow::Result<FileConfig> {
    toml::from_str(text).map_err(|e| {
        let mut at = String::new();
        let mut line_key = None;
        if let Some(span) = e.span() {
            let start = span.start.min(text.len());
            let line = text.as_bytes()[..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            at = format!(", line {}", line + 1);
            let key = text
                .lines()
                .nth(line)
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim().trim_matches('"'));
            if let Some(key) = key.filter(|k| FILE_KEYS.contains(k)) {
                at.push_str(&format!(", key `{key}`"));
            }
            line_key = key;
        }
        anyhow::anyhow!(
            "parsing config file {}{at}: {}",
            path.display(),
            redact_values(e.message(), line_key)
        )
    })
}

/// A toml/serde message with every quoted or backquoted part replaced by `...` unless
/// it is one of the file's key names or the key written on the offending line ("unknown
/// field `x`, expected one of ..." stays useful; "invalid type: string \"s3cr3t\"" does
/// not repeat the value). Only the first line: later lines of toml's messages are hints
/// that may quote the input.
fn redact_values(message: &str, line_key: Option<&str>) -> String {
    let first = message.lines().next().unwrap_or("");
    let mut out = String::with_capacity(first.len());
    let mut rest = first;
    while let Some(open) = rest.find(['`', '"', '\'']) {
        out.push_str(&rest[..open]);
        let quote = rest[open..].chars().next().unwrap_or('`');
        let after = &rest[open + quote.len_utf8()..];
        match after.find(quote) {
            Some(close) => {
                let inner = &after[..close];
                out.push(quote);
                let key = FILE_KEYS.contains(&inner) || line_key == Some(inner);
                out.push_str(if key { inner } else { "..." });
                out.push(quote);
                rest = &after[close + quote.len_utf8()..];
            }
            None => {
                out.push_str("...");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn credential(
    access_key_id: String,
    secret: String,
    account_id: String,
) -> anyhow::Result<Credential> {
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("account id {account_id:?} of access key {access_key_id} must be 12 digits");
    }
    if access_key_id.len() < 16 || !access_key_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        bail!("access key id {access_key_id:?} must be at least 16 letters and digits");
    }
    if secret.len() < 16 {
        bail!("the secret access key of {access_key_id} must be at least 16 characters");
    }
    Ok(Credential {
        access_key_id,
        secret_access_key: Secret::new(secret),
        account_id,
    })
}

/// The file holding a generated root credential, in the AWS shared-credentials format so
/// that `AWS_SHARED_CREDENTIALS_FILE=... --profile purser` works as it is.
pub fn generated_credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join("credentials")
}

pub const PROFILE: &str = "purser";

/// Load the generated root credential, or generate and store one (mode 0600).
pub fn load_or_generate_root(data_dir: &Path) -> anyhow::Result<(Credential, bool)> {
    let path = generated_credentials_path(data_dir);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let get = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_string())
        };
        let (Some(a), Some(s), Some(acct)) = (
            get("aws_access_key_id"),
            get("aws_secret_access_key"),
            get("purser_account_id"),
        ) else {
            bail!(
                "{} is not a credentials file written by purser",
                path.display()
            );
        };
        return Ok((credential(a, s, acct)?, false));
    }
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    let pick = |alphabet: &[u8], n: usize, rng: &mut rand::rngs::OsRng| -> String {
        (0..n)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
            .collect()
    };
    let akid = format!(
        "AKIA{}",
        pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, &mut rng)
    );
    let secret = pick(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        40,
        &mut rng,
    );
    let account = format!(
        "{}{}",
        rng.gen_range(1..10),
        pick(b"0123456789", 11, &mut rng)
    );
    let text = format!(
        "# Generated by purser on first start. Keep this file private.\n[{PROFILE}]\naws_access_key_id = {akid}\naws_secret_access_key = {secret}\npurser_account_id = {account}\n"
    );
    purser_wallet::write_private(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((credential(akid, secret, account)?, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned().filter(|v| !v.is_empty())
    }

    #[test]
    fn defaults() {
        let c = resolve(&ServeArgs::default(), &env_of(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8402");
        assert_eq!(c.data_dir, PathBuf::from("./purser-data"));
        assert_eq!(c.database_url, "sqlite://./purser-data/purser.db");
        assert_eq!(c.region, "us-east-1");
        assert!(c.root.is_none());
    }

    #[test]
    fn flag_beats_env_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(
            &file,
            r#"
listen = "127.0.0.1:1111"
data_dir = "/tmp/from-file"
region = "eu-west-1"
access_key_id = "AKIAFILEFILEFILE0001"
secret_access_key = "file-secret-file-secret"
account_id = "111111111111"

[[credentials]]
access_key_id = "AKIAEXTRAEXTRA000002"
secret_access_key = "extra-secret-extra-secret"
account_id = "222222222222"
"#,
        )
        .unwrap();
        let args = ServeArgs {
            listen: Some("127.0.0.1:3333".into()),
            config: Some(file.clone()),
            ..Default::default()
        };
        let env = env_of(&[
            ("PURSER_REGION", "ap-south-1"),
            ("PURSER_ACCOUNT_ID", "333333333333"),
        ]);
        let c = resolve(&args, &env).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3333");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/from-file"));
        assert_eq!(c.database_url, "sqlite:///tmp/from-file/purser.db");
        assert_eq!(c.region, "ap-south-1");
        let root = c.root.unwrap();
        assert_eq!(root.access_key_id, "AKIAFILEFILEFILE0001");
        assert_eq!(root.account_id, "333333333333");
        assert_eq!(c.extra_credentials.len(), 1);
        assert_eq!(c.extra_credentials[0].account_id, "222222222222");
    }

    #[test]
    fn tempo_rpc_urls_are_keyed_by_chain_id_in_the_file_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(
            &file,
            "[rpc]\nTEMPO_42431 = \"http://127.0.0.1:9001\"\nTEMPO_4217 = \"http://127.0.0.1:9002\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let env = env_of(&[("PURSER_RPC_TEMPO_4217", "http://127.0.0.1:9003")]);
        let c = resolve(&args, &env).unwrap();
        use purser_chain::Chain;
        assert_eq!(c.rpc.url(Chain::TempoModerato), "http://127.0.0.1:9001/");
        assert_eq!(c.rpc.url(Chain::Tempo), "http://127.0.0.1:9003/");
        std::fs::write(&file, "[rpc]\nTEMPO = \"http://127.0.0.1:9001\"\n").unwrap();
        let e = resolve(&args, &env_of(&[])).unwrap_err().to_string();
        assert!(e.contains("TEMPO_42431"), "{e}");
    }

    #[test]
    fn partial_or_bad_credentials_are_refused() {
        let e = resolve(
            &ServeArgs::default(),
            &env_of(&[("PURSER_ACCESS_KEY_ID", "AKIAAAAAAAAAAAAAAAAA")]),
        );
        assert!(e.unwrap_err().to_string().contains("all three"));
        let e = resolve(
            &ServeArgs::default(),
            &env_of(&[
                ("PURSER_ACCESS_KEY_ID", "AKIAAAAAAAAAAAAAAAAA"),
                ("PURSER_SECRET_ACCESS_KEY", "a-long-enough-secret"),
                ("PURSER_ACCOUNT_ID", "12345"),
            ]),
        );
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("12 digits"));
        assert!(!msg.contains("a-long-enough-secret"));
    }

    #[test]
    fn config_file_errors_name_line_and_key_but_never_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        let secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
        let master = "q83vEjRFZ4mJq83vEjRFZ4mJq83vEjRFZ4mJq83vEjQ=";
        let cases: Vec<(String, &str)> = vec![
            // a syntax error on a secret's line: toml quotes the line in its message
            (format!("master_key = \"{master}\nregion = \"x\""), "line 1"),
            (format!("secret_access_key = '{secret}\n"), "line 1"),
            // a value of the wrong type: serde quotes the value
            (
                format!("region = \"us-east-1\"\nmaster_key = [\"{master}\"]\n"),
                "line 2, key `master_key`",
            ),
            (
                format!("\n\nsecret_access_key = {{ v = \"{secret}\" }}\n"),
                "line 3, key `secret_access_key`",
            ),
            (
                "[[credentials]]\naccess_key_id = \"AKIAEXTRAEXTRA000002\"\nsecret_access_key = 12345678901234567\naccount_id = \"222222222222\"\n".to_string(),
                "line 3, key `secret_access_key`",
            ),
            // an unknown key keeps its (harmless) name
            (
                format!("mastr_key = \"{master}\"\n"),
                "unknown field `mastr_key`",
            ),
        ];
        for (text, want) in cases {
            std::fs::write(&file, &text).unwrap();
            let args = ServeArgs {
                config: Some(file.clone()),
                ..Default::default()
            };
            let msg = format!("{:#}", resolve(&args, &env_of(&[])).unwrap_err());
            assert!(msg.contains(want), "{want:?} not in {msg:?}");
            for needle in [secret, master, "12345678901234567", "EXAMPLEKEY", "q83vEj"] {
                assert!(!msg.contains(needle), "{needle} leaked in {msg:?}");
            }
        }
    }

    #[test]
    fn generated_root_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, created) = load_or_generate_root(dir.path()).unwrap();
        assert!(created);
        assert!(c1.access_key_id.starts_with("AKIA") && c1.access_key_id.len() == 20);
        assert_eq!(c1.account_id.len(), 12);
        let (c2, created) = load_or_generate_root(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(c1.access_key_id, c2.access_key_id);
        assert_eq!(c1.secret_access_key, c2.secret_access_key);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(generated_credentials_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_console_is_off_by_default_and_loopback_only_unless_allowed() {
        let c = resolve(&ServeArgs::default(), &env_of(&[])).unwrap();
        assert!(!c.console);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "console = true\n").unwrap();
        let from_file = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        };
        assert!(resolve(&from_file, &env_of(&[])).unwrap().console);
        // the environment beats the file, the flag beats the environment
        let off = env_of(&[("PURSER_CONSOLE", "false")]);
        assert!(!resolve(&from_file, &off).unwrap().console);
        let flag = ServeArgs {
            console: true,
            ..from_file
        };
        assert!(resolve(&flag, &off).unwrap().console);
        assert!(
            resolve(&ServeArgs::default(), &env_of(&[("PURSER_CONSOLE", "1")]))
                .unwrap()
                .console
        );
        assert!(resolve(&ServeArgs::default(), &env_of(&[("PURSER_CONSOLE", "on?")])).is_err());
        // bound to a non-loopback address: refused unless allowed
        for listen in ["0.0.0.0:8402", "192.0.2.1:8402", "[::]:8402"] {
            let args = ServeArgs {
                console: true,
                listen: Some(listen.into()),
                ..ServeArgs::default()
            };
            let e = resolve(&args, &env_of(&[])).unwrap_err().to_string();
            assert!(e.contains("not loopback"), "{e}");
            let allowed = env_of(&[("PURSER_CONSOLE_ALLOW_REMOTE", "true")]);
            assert!(resolve(&args, &allowed).unwrap().console);
            let allowed = ServeArgs {
                console_allow_remote: true,
                ..args
            };
            assert!(resolve(&allowed, &env_of(&[])).unwrap().console);
        }
        let v6 = ServeArgs {
            console: true,
            listen: Some("[::1]:8402".into()),
            ..ServeArgs::default()
        };
        assert!(resolve(&v6, &env_of(&[])).unwrap().console);
        // a non-loopback address without the console is still fine
        let plain = ServeArgs {
            listen: Some("0.0.0.0:8402".into()),
            ..ServeArgs::default()
        };
        assert!(!resolve(&plain, &env_of(&[])).unwrap().console);
    }

    #[test]
    fn jwt_settings_from_env_or_file() {
        let c = resolve(&ServeArgs::default(), &env_of(&[])).unwrap();
        assert!(!c.jwt.allow_http);
        assert_eq!(c.jwt.min_refresh.as_secs(), 30);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "jwt_allow_http = true\njwt_refresh_secs = 5\n").unwrap();
        let args = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        };
        let c = resolve(&args, &env_of(&[])).unwrap();
        assert!(c.jwt.allow_http);
        assert_eq!(c.jwt.min_refresh.as_secs(), 5);
        let c = resolve(
            &args,
            &env_of(&[
                ("PURSER_JWT_ALLOW_HTTP", "false"),
                ("PURSER_JWT_REFRESH_SECS", "2"),
            ]),
        )
        .unwrap();
        assert!(!c.jwt.allow_http);
        assert_eq!(c.jwt.min_refresh.as_secs(), 2);
        assert!(resolve(&args, &env_of(&[("PURSER_JWT_ALLOW_HTTP", "maybe")])).is_err());
        assert!(resolve(&args, &env_of(&[("PURSER_JWT_REFRESH_SECS", "0")])).is_err());
    }

    #[test]
    fn the_vendor_emulator_is_off_by_default_and_on_only_when_asked() {
        let off = resolve(&ServeArgs::default(), &env_of(&[])).unwrap();
        assert_eq!(off.vendor_emulator, None);
        let on = resolve(
            &ServeArgs::default(),
            &env_of(&[("PURSER_VENDOR_EMULATOR", "1")]),
        )
        .unwrap();
        assert_eq!(on.vendor_emulator.unwrap().to_string(), "127.0.0.1:0");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("purser.toml");
        std::fs::write(
            &file,
            "vendor_emulator = true\nvendor_emulator_listen = \"127.0.0.1:8403\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let from_file = resolve(&args, &env_of(&[])).unwrap();
        assert_eq!(
            from_file.vendor_emulator.unwrap().to_string(),
            "127.0.0.1:8403"
        );
        // The environment beats the file, the flag beats the environment.
        let env_off = resolve(&args, &env_of(&[("PURSER_VENDOR_EMULATOR", "false")])).unwrap();
        assert_eq!(env_off.vendor_emulator, None);
        let flag = ServeArgs {
            vendor_emulator: true,
            vendor_emulator_listen: Some("[::1]:9000".into()),
            ..args
        };
        let flagged = resolve(&flag, &env_of(&[("PURSER_VENDOR_EMULATOR", "false")])).unwrap();
        assert_eq!(flagged.vendor_emulator.unwrap().to_string(), "[::1]:9000");
        // Never anything but loopback; never a vague boolean.
        for bad in [
            ("PURSER_VENDOR_EMULATOR_LISTEN", "0.0.0.0:8403"),
            ("PURSER_VENDOR_EMULATOR", "maybe"),
        ] {
            let err = resolve(
                &ServeArgs::default(),
                &env_of(&[("PURSER_VENDOR_EMULATOR", "1"), bad]),
            )
            .unwrap_err();
            assert!(err.to_string().contains(bad.0), "{err}");
        }
    }
}
