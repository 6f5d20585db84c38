"""Fixtures and helpers of the cluster suite (`test_cluster.py`): several Purser nodes
sharing one PostgreSQL database, and single nodes killed with SIGKILL.

Loaded as a pytest plugin (`pytest_plugins = ["cluster_fixtures"]`).

What it provides:
  * PostgreSQL through the installed `psql` client (127.0.0.1:5432, user postgres, trust
    auth): `pg_reason()`, `require_pg()` (a failure under CI, a skip otherwise),
    `PgDatabase` (`query`, `scalar`), `create_pg_database()` / `drop_pg_database()` and
    the `fresh_pg_database` / `make_pg_database` fixtures (a database
    `purser_cluster_<random>`, dropped WITH (FORCE) at teardown);
  * `start_node(db_url, master_key, tmp_dir, ...) -> Node`, `launch_node` + `wait_healthy`
    (to start several nodes at once), `Node.kill(sig)` / `Node.stop()` / `Node.restart()`,
    all by pid; every chain RPC points at a closed loopback port, so no node ever sends
    traffic off this machine;
  * the `nodes` fixture: a factory whose nodes are stopped (by pid) when the test ends,
    and `shared_clusters` (one cluster at a time, shared by the tests of a class);
  * boto3 clients per node (no retries, 64 pooled connections, fed to conftest's audit);
  * `setup_payments` (READY manager + READY SelfCustody connector + ETHEREUM instrument),
    `create_session`, `pay`, `session_available`, `usd` (exact Decimal of micro-dollars).

Money is handled as integers of micro-dollars (= atomic USDC units) or `decimal.Decimal`,
never as floats.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from compat_helpers import ACCOUNT_1, REGION, wait_for
from conftest import (
    CONTROL,
    CREDS_1,
    DATA,
    HEALTH_TIMEOUT,
    Creds,
    _BOTO_SESSION,
    _audit_hook,
    _find_binary,
    _free_port,
    _health_ok,
    _stop,
    _tail,
)

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
MICROS = 1_000_000

# The x402 v2 requirement of the brief: 100000 atomic USDC = 0.10 USD.
PAYEE = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
BASE_SEPOLIA_USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


def requirement(amount: str = "100000") -> dict:
    return {
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": amount,
        "asset": BASE_SEPOLIA_USDC,
        "payTo": PAYEE,
        "maxTimeoutSeconds": 300,
        "extra": {"name": "USDC", "version": "2"},
    }


def usd(micros: int) -> Decimal:
    """Micro-dollars as an exact Decimal of USD."""
    return Decimal(int(micros)) / Decimal(MICROS)


def micros_of(value: str) -> int:
    """A decimal USD string as exact integer micro-dollars (refuses sub-micro values)."""
    d = Decimal(value) * MICROS
    assert d == d.to_integral_value(), value
    return int(d)


def new_master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


# ================================================================= PostgreSQL


def _pg_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "5"
    env["PGAPPNAME"] = "purser-cluster-tests"
    return env


def _psql(sql: str, db: str = "postgres", timeout: float = 60) -> subprocess.CompletedProcess:
    psql = shutil.which("psql")
    if psql is None:
        raise FileNotFoundError("psql is not installed")
    # -X: no psqlrc; -A -t: unaligned tuples only; unit/record separators that no value
    # of ours contains.
    return subprocess.run(
        [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", db,
         "-F", "\x1f", "-R", "\x1e", "-c", sql],
        capture_output=True, text=True, timeout=timeout, env=_pg_env(),
        stdin=subprocess.DEVNULL,
    )


_PG_REASON: list[str | None] = []


def pg_reason() -> str | None:
    """None when PostgreSQL answers on 127.0.0.1:5432 through psql, else why not."""
    if not _PG_REASON:
        try:
            out = _psql("SELECT 1", timeout=15)
            reason = None if out.returncode == 0 and out.stdout.strip("\x1e\n") == "1" else (
                f"PostgreSQL on {PG_HOST}:{PG_PORT} is not reachable as {PG_USER}: "
                f"{(out.stderr or out.stdout).strip()[:300]}")
        except FileNotFoundError:
            reason = "the psql client is not installed"
        except subprocess.TimeoutExpired:
            reason = f"psql did not answer within 15 s ({PG_HOST}:{PG_PORT})"
        _PG_REASON.append(reason)
    return _PG_REASON[0]


def require_pg() -> None:
    """A failure under CI, a skip otherwise, when PostgreSQL cannot be used."""
    reason = pg_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@dataclass
class PgDatabase:
    name: str

    @property
    def url(self) -> str:
        return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.name}"

    def query(self, sql: str) -> list[tuple[str, ...]]:
        """Rows of `sql` as tuples of text (NULL reads as "")."""
        out = _psql(sql, db=self.name)
        assert out.returncode == 0, f"psql failed on {sql!r}: {out.stderr.strip()}"
        text = out.stdout.rstrip("\n")
        return [tuple(r.split("\x1f")) for r in text.split("\x1e") if r.strip("\n")]

    def scalar(self, sql: str) -> str:
        rows = self.query(sql)
        assert len(rows) == 1 and len(rows[0]) == 1, (sql, rows)
        return rows[0][0]


def sql_text(value: str) -> str:
    """A SQL string literal (our values are ids: no quotes expected, but be safe)."""
    return "'" + value.replace("'", "''") + "'"


def create_pg_database() -> PgDatabase:
    require_pg()
    db = PgDatabase("purser_cluster_" + uuid.uuid4().hex[:16])
    for attempt in range(20):
        out = _psql(f"CREATE DATABASE {db.name}")
        if out.returncode == 0 or "too many clients" not in out.stderr:
            break
        time.sleep(0.25)
    assert out.returncode == 0, f"CREATE DATABASE {db.name} failed: {out.stderr.strip()}"
    return db


def drop_pg_database(db: PgDatabase, attempts: int = 20) -> None:
    """DROP DATABASE ... WITH (FORCE); retried for a few seconds when the server is
    momentarily out of connection slots."""
    for attempt in range(attempts):
        out = _psql(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")
        if out.returncode == 0:
            return
        if attempt + 1 < attempts:
            time.sleep(0.25)
    raise AssertionError(f"DROP DATABASE {db.name} failed: {out.stderr.strip()}")


@contextmanager
def pg_database() -> Iterator[PgDatabase]:
    db = create_pg_database()
    try:
        yield db
    finally:
        drop_pg_database(db)


@pytest.fixture
def fresh_pg_database() -> Iterator[PgDatabase]:
    """A new, empty database `purser_cluster_<random>`, dropped when the test ends."""
    with pg_database() as db:
        yield db


@pytest.fixture
def make_pg_database() -> Iterator[Any]:
    """make_pg_database() -> PgDatabase; every one is dropped when the test ends."""
    made: list[PgDatabase] = []

    def make() -> PgDatabase:
        db = create_pg_database()
        made.append(db)
        return db

    yield make
    for db in made:
        drop_pg_database(db)


# ====================================================================== nodes


def _dead_url() -> str:
    """A loopback URL nothing listens on."""
    return f"http://127.0.0.1:{_free_port()}"


def client_config() -> Config:
    # total_max_attempts=1: ONE attempt. (`max_attempts` counts retries in botocore, so
    # {"max_attempts": 1} would resend a ProcessPayment once after a connection error.)
    return Config(retries={"total_max_attempts": 1, "mode": "standard"},
                  max_pool_connections=64, connect_timeout=5, read_timeout=30,
                  tcp_keepalive=False)


@dataclass
class Node:
    """One Purser process on 127.0.0.1. Stopped / killed only by its own pid."""

    name: str
    tmp_dir: Path
    data_dir: Path
    log_path: Path
    master_key: str
    db_url: str | None          # None: the default SQLite file in data_dir
    creds: Creds = CREDS_1
    port: int = 0
    proc: subprocess.Popen | None = None
    starts: int = 0
    _log_file: Any = field(default=None, repr=False)
    _clients: dict = field(default_factory=dict, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "purser.db"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    # ----- lifecycle

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PURSER_") and not k.startswith("AWS_")}
        env.update({
            "PURSER_ACCESS_KEY_ID": self.creds.access_key_id,
            "PURSER_SECRET_ACCESS_KEY": self.creds.secret_access_key,
            "PURSER_ACCOUNT_ID": self.creds.account_id,
            "PURSER_REGION": REGION,
            "PURSER_MASTER_KEY": self.master_key,
            "PURSER_LOG": "info",
            "PURSER_RPC_TIMEOUT_SECS": "2",
        })
        for var in ("PURSER_RPC_BASE", "PURSER_RPC_BASE_SEPOLIA", "PURSER_RPC_ETHEREUM",
                    "PURSER_RPC_SOLANA", "PURSER_RPC_SOLANA_DEVNET"):
            env[var] = _dead_url()
        if self.db_url is not None:
            env["PURSER_DATABASE_URL"] = self.db_url
        return env

    def launch(self, port: int | None = None) -> None:
        """Start the process (not waiting for health)."""
        assert not self.alive(), f"{self.name} is already running"
        if self._log_file is None:
            self._log_file = open(self.log_path, "ab")
        self.port = port or _free_port()
        self.starts += 1
        self._clients.clear()
        self._log_file.write(
            f"--- start #{self.starts} of {self.name} on 127.0.0.1:{self.port}\n".encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(
            [str(_find_binary()), "serve", "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", str(self.data_dir)],
            stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self._env(), cwd=str(self.tmp_dir))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to this node's pid; for SIGKILL / SIGTERM, reap it."""
        assert self.proc is not None
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period (conftest's _stop); closes the log."""
        if self.proc is not None:
            _stop(self.proc)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self, same_port: bool = True) -> None:
        """Start again on the same data dir / database / master key (after a kill)."""
        assert not self.alive()
        self.launch(self.port if same_port else None)
        wait_healthy([self])

    # ----- clients

    def client(self, service: str) -> Any:
        if service not in self._clients:
            c = _BOTO_SESSION.client(
                service, region_name=REGION, endpoint_url=self.endpoint,
                aws_access_key_id=self.creds.access_key_id,
                aws_secret_access_key=self.creds.secret_access_key,
                config=client_config())
            c.meta.events.register("after-call", _audit_hook)
            self._clients[service] = c
        return self._clients[service]

    @property
    def control(self) -> Any:
        return self.client(CONTROL)

    @property
    def data(self) -> Any:
        return self.client(DATA)

    # ----- SQLite (single-node setups)

    def sqlite_query(self, sql: str, *args: Any) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()


def wait_healthy(nodes: list[Node], timeout: float = HEALTH_TIMEOUT) -> None:
    """Wait until every node answers 200 on /health. A node that exited because its
    port was taken meanwhile is relaunched on another port (at most 3 times)."""
    deadline = time.monotonic() + timeout
    pending = list(nodes)
    retries = {n.name: 0 for n in nodes}
    while pending:
        for n in list(pending):
            if n.proc is not None and n.proc.poll() is not None:
                tail = _tail(n.log_path)
                if "in use" in tail.lower() and retries[n.name] < 3:
                    retries[n.name] += 1
                    n.launch()
                    continue
                pytest.fail(f"{n.name} exited with status {n.proc.returncode} at start; "
                            f"log {n.log_path}:\n{tail}", pytrace=False)
            if _health_ok(n.endpoint):
                pending.remove(n)
        if pending and time.monotonic() > deadline:
            names = ", ".join(n.name for n in pending)
            pytest.fail(f"{names} did not answer 200 on GET /health within {timeout}s; "
                        f"log:\n{_tail(pending[0].log_path)}", pytrace=False)
        if pending:
            time.sleep(0.03)


def new_node(tmp_dir: Path, name: str, db_url: str | None, master_key: str,
             data_dir: Path | None = None) -> Node:
    node_dir = tmp_dir / name
    node_dir.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or node_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    return Node(name=name, tmp_dir=node_dir, data_dir=data_dir,
                log_path=node_dir / "purser.log", master_key=master_key, db_url=db_url)


def start_node(db_url: str | None, master_key: str, tmp_dir: Path, name: str = "node",
               data_dir: Path | None = None) -> Node:
    """Start one node and wait until it is healthy. db_url None: SQLite in its data dir."""
    node = new_node(tmp_dir, name, db_url, master_key, data_dir)
    node.launch()
    try:
        wait_healthy([node])
    except BaseException:
        node.stop()
        raise
    return node


def start_cluster(n: int, db_url: str, master_key: str, tmp_dir: Path,
                  prefix: str = "node") -> list[Node]:
    """Start n nodes on one database AT ONCE (all launched before any is waited for)."""
    nodes = [new_node(tmp_dir, f"{prefix}{i + 1}", db_url, master_key) for i in range(n)]
    try:
        for node in nodes:
            node.launch()
        wait_healthy(nodes)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


class NodeSet:
    """Nodes started through it are stopped by pid when the owner (a fixture) ends."""

    def __init__(self, tmp_dir: Path):
        self.tmp_dir = tmp_dir
        self.started: list[Node] = []
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def start(self, db_url: str | None, master_key: str, name: str | None = None,
              data_dir: Path | None = None) -> Node:
        node = new_node(self.tmp_dir, name or self._name("node"), db_url, master_key,
                        data_dir)
        self.started.append(node)
        node.launch()
        wait_healthy([node])
        return node

    def cluster(self, n: int, db_url: str, master_key: str) -> list[Node]:
        nodes = [new_node(self.tmp_dir, self._name("node"), db_url, master_key)
                 for _ in range(n)]
        self.started.extend(nodes)
        for node in nodes:
            node.launch()
        wait_healthy(nodes)
        return nodes

    def stop_all(self) -> None:
        for node in self.started:
            node.stop()


@pytest.fixture
def nodes(tmp_path) -> Iterator[NodeSet]:
    """nodes.start(db_url, master_key) / nodes.cluster(n, db_url, master_key): stopped by
    pid when the test ends."""
    ns = NodeSet(tmp_path)
    try:
        yield ns
    finally:
        ns.stop_all()


@dataclass
class Cluster:
    db: PgDatabase
    master_key: str
    nodes: list[Node]


@pytest.fixture(scope="class")
def shared_clusters(tmp_path_factory) -> Iterator[Any]:
    """shared_clusters(n) -> Cluster: n nodes on a fresh database with one master key,
    shared by the tests of a class. At most ONE such cluster runs at a time (asking for
    another n stops and drops the previous one), and the last one is stopped and dropped
    when the class ends: every busy node may hold a pool of 16 PostgreSQL connections,
    and the server's max_connections (100 by default) is shared with whoever else uses
    it."""
    current: dict[int, tuple[Cluster, NodeSet]] = {}

    def close_all() -> None:
        for cluster, ns in list(current.values()):
            ns.stop_all()
            drop_pg_database(cluster.db)
        current.clear()

    def get(n: int) -> Cluster:
        if n not in current:
            close_all()
            db = create_pg_database()
            ns = NodeSet(tmp_path_factory.mktemp(f"cluster{n}"))
            cluster = Cluster(db=db, master_key=new_master_key(), nodes=[])
            current[n] = (cluster, ns)
            cluster.nodes = ns.cluster(n, db.url, cluster.master_key)
        return current[n][0]

    try:
        yield get
    finally:
        close_all()


# ============================================================ payments setup


@dataclass
class PaySetup:
    """A READY AWS_IAM manager, a READY SelfCustody connector and an ETHEREUM instrument
    of one user (account 1)."""

    user_id: str
    manager_id: str
    manager_arn: str
    connector_id: str
    instrument_id: str


def role_arn(account: str = ACCOUNT_1) -> str:
    return f"arn:aws:iam::{account}:role/t"


def create_manager(node: Node, wait_on: Node | None = None, **kwargs: Any) -> dict:
    args = {"name": "mgr" + uuid.uuid4().hex[:12], "authorizerType": "AWS_IAM",
            "roleArn": role_arn()}
    args.update(kwargs)
    m = node.control.create_payment_manager(**args)
    if wait_on is not None:
        wait_for(lambda: wait_on.control.get_payment_manager(
            paymentManagerId=m["paymentManagerId"]), "READY", timeout=10)
    return m


def create_connector(node: Node, manager_id: str, wait_on: Node | None = None,
                     **kwargs: Any) -> dict:
    # No '_' in the name: the connector id (name-derived) must match the data plane's
    # PaymentConnectorId pattern.
    args = {"paymentManagerId": manager_id, "name": "conn" + uuid.uuid4().hex[:12],
            "type": "SelfCustody", "credentialProviderConfigurations": []}
    args.update(kwargs)
    c = node.control.create_payment_connector(**args)
    if wait_on is not None:
        wait_for(lambda: wait_on.control.get_payment_connector(
            paymentManagerId=manager_id, paymentConnectorId=c["paymentConnectorId"]),
            "READY", timeout=10)
    return c


def create_instrument(node: Node, s: PaySetup | Any, user_id: str | None = None,
                      **kwargs: Any) -> dict:
    return node.data.create_payment_instrument(
        userId=user_id or s.user_id, paymentManagerArn=s.manager_arn,
        paymentConnectorId=s.connector_id, paymentInstrumentType="EMBEDDED_CRYPTO_WALLET",
        paymentInstrumentDetails={"embeddedCryptoWallet": {"network": "ETHEREUM",
                                                           "linkedAccounts": []}},
        **kwargs)["paymentInstrument"]


def setup_payments(node: Node, user_id: str = "u1") -> PaySetup:
    """On `node`: manager (AWS_IAM), SelfCustody connector (both waited READY by polling
    Get), an ETHEREUM instrument of `user_id`."""
    m = create_manager(node, wait_on=node)
    c = create_connector(node, m["paymentManagerId"], wait_on=node)
    s = PaySetup(user_id=user_id, manager_id=m["paymentManagerId"],
                 manager_arn=m["paymentManagerArn"], connector_id=c["paymentConnectorId"],
                 instrument_id="")
    s.instrument_id = create_instrument(node, s)["paymentInstrumentId"]
    return s


def create_session(node: Node, s: PaySetup, cap: str, expiry: int = 60,
                   **kwargs: Any) -> dict:
    return node.data.create_payment_session(
        userId=s.user_id, paymentManagerArn=s.manager_arn, expiryTimeInMinutes=expiry,
        limits={"maxSpendAmount": {"value": cap, "currency": "USD"}},
        **kwargs)["paymentSession"]


def pay(node: Node, s: PaySetup, session_id: str, amount: str = "100000",
        **kwargs: Any) -> dict:
    """ProcessPayment (CRYPTO_X402, x402 v2, Base Sepolia USDC) through `node`."""
    return node.data.process_payment(
        userId=s.user_id, paymentManagerArn=s.manager_arn, paymentSessionId=session_id,
        paymentInstrumentId=s.instrument_id, paymentType="CRYPTO_X402",
        paymentInput={"cryptoX402": {"version": "2", "payload": requirement(amount)}},
        **kwargs)


def get_session(node: Node, s: PaySetup, session_id: str) -> dict:
    return node.data.get_payment_session(
        userId=s.user_id, paymentManagerArn=s.manager_arn,
        paymentSessionId=session_id)["paymentSession"]


def session_available(node: Node, s: PaySetup, session_id: str) -> str:
    """availableLimits.availableSpendAmount.value as the server spells it."""
    amount = get_session(node, s, session_id)["availableLimits"]["availableSpendAmount"]
    assert amount["currency"] == "USD", amount
    return amount["value"]


def signature_of(reply: dict) -> str:
    return reply["paymentOutput"]["cryptoX402"]["payload"]["signature"]


def error_parts(err: ClientError) -> tuple[str, int, str]:
    return (err.response["Error"]["Code"],
            err.response["ResponseMetadata"]["HTTPStatusCode"],
            err.response["Error"].get("Message", ""))


__all__ = [name for name in dir() if not name.startswith("__")]
