//! `purser`: a self-hostable AgentCore Payments service.
mod admin;
mod config;
mod ops;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use purser_core::control::ControlPlane;
use purser_core::instruments::DataPlane;
use purser_core::store::Store;
use purser_core::{Clock, SystemClock};
use purser_wallet::Vault;

use config::ServeArgs;

/// Purser speaks the Amazon Bedrock AgentCore Payments APIs (control plane and data plane)
/// on one port, so boto3, the AWS CLI and the AWS SDKs work against it by setting
/// endpoint_url.
#[derive(Debug, Parser)]
#[command(name = "purser", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the service.
    ///
    /// Environment: PURSER_LISTEN, PURSER_DATA_DIR, PURSER_DATABASE_URL, PURSER_REGION
    /// (default us-east-1), PURSER_ACCESS_KEY_ID + PURSER_SECRET_ACCESS_KEY +
    /// PURSER_ACCOUNT_ID (the root credential; generated into the data dir when unset),
    /// PURSER_MASTER_KEY (base64 of 32 bytes; generated into the data dir when unset),
    /// PURSER_RPC_BASE, PURSER_RPC_BASE_SEPOLIA, PURSER_RPC_ETHEREUM, PURSER_RPC_SOLANA,
    /// PURSER_RPC_SOLANA_DEVNET, PURSER_RPC_TEMPO_4217, PURSER_RPC_TEMPO_42431 (chain
    /// JSON-RPC URLs; public endpoints by default),
    /// PURSER_RPC_TIMEOUT_SECS (default 10), PURSER_LOG (log filter, default info),
    /// PURSER_CONSOLE and PURSER_CONSOLE_ALLOW_REMOTE (the web console, off). Flags
    /// beat environment variables, which beat the --config file, which beats the defaults.
    /// PURSER_VENDOR_EMULATOR=1 (or --vendor-emulator) also runs the vendor emulator, a
    /// DEVELOPMENT TOOL, and points the CDP and Privy base URLs at it.
    Serve(ServeArgs),
    /// Print the payment history (signed payments, or refusals with --refusals) of a
    /// running Purser, as JSON Lines or CSV, newest first.
    ///
    /// Calls the extension API at --endpoint-url, signed with SigV4 with the access key
    /// in AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (or PURSER_ACCESS_KEY_ID +
    /// PURSER_SECRET_ACCESS_KEY).
    History(ops::HistoryArgs),
    /// Read and set spending policies (per manager, or per user under a manager) of a
    /// running Purser (same endpoint and credentials as `history`).
    Policies {
        #[command(subcommand)]
        command: ops::PolicyCommand,
    },
    /// DEVELOPMENT TOOL, NOT A VENDOR: run the vendor emulator alone.
    ///
    /// A local stand-in for the subset of the Coinbase CDP v2 and Privy wallet APIs that
    /// Purser uses, with the vendors' authentication checks, keys held locally and signing
    /// as the vendor would. CDP base URL: http://LISTEN/platform; Privy base URL:
    /// http://LISTEN. Its emulated accounts (API keys, wallet secret, Privy app and
    /// authorization key) are generated on first start into DIR/accounts.json (mode 0600).
    /// It holds no real funds and reaches no vendor.
    VendorEmulator(VendorEmulatorArgs),
    /// Operator's commands: master-key rotation, online backup, key check.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
}

#[derive(Debug, clap::Args)]
struct VendorEmulatorArgs {
    /// Directory of the emulator's state (accounts.json, its SQLite file, its key)
    #[arg(long, default_value = "./purser-data/vendor-emulator")]
    dir: std::path::PathBuf,
    /// Loopback address to listen on
    #[arg(long, default_value = "127.0.0.1:8403")]
    listen: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PURSER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => {
            let cfg = config::resolve(&args, &env)?;
            let (cfg, emulator) = match cfg.vendor_emulator {
                None => (cfg, None),
                Some(addr) => {
                    // Bind first, so the base URLs name the real port; then resolve again
                    // with the vendor base URLs pointing at the emulator.
                    let listener = std::net::TcpListener::bind(addr)
                        .with_context(|| format!("binding the vendor emulator on {addr}"))?;
                    let local = listener.local_addr()?;
                    let cdp = format!("http://{local}/platform");
                    let privy = format!("http://{local}");
                    for key in [config::CDP_BASE_URL_ENV, config::PRIVY_BASE_URL_ENV] {
                        if env(key).is_some() {
                            tracing::warn!(
                                key,
                                "the vendor emulator is on: it overrides this base URL"
                            );
                        }
                    }
                    let overlay = |k: &str| match k {
                        config::CDP_BASE_URL_ENV => Some(cdp.clone()),
                        config::PRIVY_BASE_URL_ENV => Some(privy.clone()),
                        _ => env(k),
                    };
                    (config::resolve(&args, &overlay)?, Some(listener))
                }
            };
            runtime.block_on(serve(cfg, emulator))
        }
        Command::VendorEmulator(args) => {
            let addr = config::loopback_addr("--listen", &args.listen)?;
            runtime.block_on(run_vendor_emulator(args.dir, addr))
        }
        Command::Admin(cmd) => runtime.block_on(admin::run(cmd, &env)),
        Command::History(args) => client_runtime()?.block_on(ops::history(args)),
        Command::Policies { command } => client_runtime()?.block_on(ops::policies(command)),
    }
}

fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Opens the emulator's state in `dir` and serves it on `listener` in the background.
fn start_vendor_emulator(
    dir: &std::path::Path,
    listener: std::net::TcpListener,
) -> anyhow::Result<purser_vendor_emu::Running> {
    create_private_dir(dir)?;
    let (emu, created) = purser_vendor_emu::Emulator::open(dir).map_err(anyhow::Error::msg)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    // Said before it answers anything.
    tracing::warn!(
        cdp_base_url = %format!("http://{addr}/platform"),
        privy_base_url = %format!("http://{addr}"),
        accounts = %emu.accounts_path().display(),
        generated_accounts = created,
        "{}",
        purser_vendor_emu::BANNER
    );
    let running = purser_vendor_emu::spawn(&emu, tokio::net::TcpListener::from_std(listener)?)?;
    Ok(running)
}

async fn run_vendor_emulator(
    dir: std::path::PathBuf,
    addr: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("binding the vendor emulator on {addr}"))?;
    let running = start_vendor_emulator(&dir, listener)?;
    println!(
        "{}\nCDP base URL:   {}\nPrivy base URL: {}\nAccounts (API keys, wallet secret, Privy app): {}",
        purser_vendor_emu::BANNER,
        running.cdp_base_url(),
        running.privy_base_url(),
        dir.join(purser_vendor_emu::ACCOUNTS_FILE).display(),
    );
    shutdown_signal().await;
    running.task.abort();
    tracing::info!("vendor emulator stopped");
    Ok(())
}

/// Open the configured database (SQLite or PostgreSQL), applying pending migrations.
pub(crate) async fn open_store(cfg: &config::Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(if cfg.database_url.starts_with("sqlite:") {
        Arc::new(
            purser_store::SqliteStore::open(&cfg.database_url)
                .await
                .context("opening the database")?,
        )
    } else if cfg.database_url.starts_with("postgres://")
        || cfg.database_url.starts_with("postgresql://")
    {
        Arc::new(
            purser_store::PgStore::open(&cfg.database_url, cfg.database_max_connections)
                .await
                .context("connecting to PostgreSQL")?,
        )
    } else {
        bail!(
            "unsupported PURSER_DATABASE_URL scheme: use sqlite://PATH or postgres://USER@HOST/DB"
        );
    })
}

async fn serve(cfg: config::Config, emulator: Option<std::net::TcpListener>) -> anyhow::Result<()> {
    create_private_dir(&cfg.data_dir)?;
    // The emulator's state is its own directory: nothing of Purser's database or vault.
    let _emulator = match emulator {
        Some(listener) => Some(start_vendor_emulator(
            &cfg.data_dir.join("vendor-emulator"),
            listener,
        )?),
        None => None,
    };
    let (master, key_source) = admin::load_master_key(&cfg, true)?;
    let (root, generated) = match cfg.root.clone() {
        Some(c) => (c, false),
        None => config::load_or_generate_root(&cfg.data_dir)?,
    };
    let store = open_store(&cfg).await?;
    let master = admin::settle(&*store, master, &key_source).await?;
    let test_clock = cfg
        .test_clock
        .then(|| Arc::new(purser_core::clock::OffsetClock::default()));
    let clock: Arc<dyn Clock> = match &test_clock {
        Some(c) => {
            tracing::warn!(
                "--test-clock is on: POST /_purser/test/clock can move this server's time"
            );
            c.clone()
        }
        None => Arc::new(SystemClock),
    };
    let vault = Vault::new(master);
    purser_core::check_master_key(&*store, &vault)
        .await
        .map_err(anyhow::Error::msg)?;
    let control = Arc::new(ControlPlane::new(
        store.clone(),
        vault.clone(),
        clock.clone(),
    ));
    let chains = purser_chain::BalanceReader::new(cfg.rpc.clone())?;
    let console_key = vault.derive_key("purser/console-session/v1");
    let vendor_http = purser_wallet::vendor::api::HttpSettings {
        connect_timeout: cfg.vendors.timeout.min(Duration::from_secs(3)),
        timeout: cfg.vendors.timeout,
        ..Default::default()
    };
    let vendors = purser_core::holder::Vendors::new(
        vendor_http,
        cfg.vendors.cdp_base_url.clone(),
        cfg.vendors.privy_base_url.clone(),
    );
    let data =
        Arc::new(DataPlane::new(store.clone(), vault, clock.clone(), chains).with_vendors(vendors));
    purser_core::control::spawn_lifecycle(store, clock.clone(), Duration::from_millis(100));

    let mut credentials = vec![root.clone()];
    credentials.extend(cfg.extra_credentials.iter().cloned());
    let state = purser_server::AppState::new(credentials, cfg.region.clone(), control, data)?;
    let mut state = state.with_jwt_settings(cfg.jwt.clone())?;
    if let Some(addr) = cfg.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics address {addr}"))?;
        tracing::info!(endpoint = %format!("http://{}/metrics", listener.local_addr()?), "serving metrics");
        let metrics = purser_server::metrics_router(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, metrics).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    if cfg.console {
        state = state.with_console(console_key);
    }
    let app = match test_clock {
        Some(c) => purser_server::router_with_test_clock(state, c),
        None => purser_server::router(state),
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    tracing::info!(%endpoint, region = %cfg.region, account_id = %root.account_id, access_key_id = %root.access_key_id, "purser is serving");
    if cfg.console {
        tracing::info!(console = %format!("{endpoint}/console/"), "the web console is on");
    }
    if generated {
        let path = config::generated_credentials_path(&cfg.data_dir);
        println!(
            "\nPurser generated a root credential (account {account}, access key {akid}) in {path}.\n\
             Use it with the AWS CLI:\n  \
             AWS_SHARED_CREDENTIALS_FILE={path} aws --profile {profile} --region {region} --endpoint-url {endpoint} bedrock-agentcore-control list-payment-managers\n\
             and with boto3:\n  \
             AWS_SHARED_CREDENTIALS_FILE={path} python -c \"import boto3; print(boto3.Session(profile_name='{profile}').client('bedrock-agentcore-control', region_name='{region}', endpoint_url='{endpoint}').list_payment_managers())\"\n",
            account = root.account_id,
            akid = root.access_key_id,
            path = path.display(),
            profile = config::PROFILE,
            region = cfg.region,
        );
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("purser stopped");
    Ok(())
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating data dir {}", dir.display()))?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}
