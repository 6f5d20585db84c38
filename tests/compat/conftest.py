"""Harness of the compatibility suite: starts one Purser server per test session and
hands out boto3 clients, a raw SigV4 request helper and the server's log.

Environment:
  PURSER_BIN      the purser binary (default: target/release/purser, relative to the
                  current directory or, failing that, to the repository root)
  PURSER_AWS_CLI  the AWS CLI v1 executable (default: <repo>/.venv-cli/bin/aws)
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import secrets
import signal
import socket
import string
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from compat_helpers import ACCOUNT_1, ACCOUNT_2, REGION

REPO_ROOT = Path(__file__).resolve().parents[2]
SIGNING_NAME = "bedrock-agentcore"
CONTROL = "bedrock-agentcore-control"
DATA = "bedrock-agentcore"
HEALTH_TIMEOUT = 30.0
STOP_GRACE = 5.0

# ------------------------------------------------------------ hermetic AWS env
# The tests must never pick up the machine's AWS profile, credentials, endpoint
# overrides or proxies: everything they use is passed explicitly.
for _var in list(os.environ):
    if _var.startswith("AWS_"):
        del os.environ[_var]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(
        x for x in [os.environ.get(_var, ""), "127.0.0.1", "localhost"] if x
    )


# --------------------------------------------------------------------- creds


@dataclass(frozen=True)
class Creds:
    access_key_id: str
    secret_access_key: str
    account_id: str


def _random_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(40))


CREDS_1 = Creds("AKIAPURSERTEST000001", _random_secret_key(), ACCOUNT_1)
CREDS_2 = Creds("AKIAPURSERTEST000002", _random_secret_key(), ACCOUNT_2)


# ----------------------------------------------------------- response audit
# Every response a test sees (boto3 or raw) is checked: never a 5xx, and every
# error carries x-amzn-ErrorType, x-amzn-RequestId and {"__type", "message"}.


@dataclass
class Audit:
    problems: list[str] = field(default_factory=list)

    def check(self, where: str, status: int, headers: dict, body: bytes) -> None:
        headers = {k.lower(): v for k, v in headers.items()}
        if status >= 500:
            self.problems.append(f"{where}: HTTP {status}: {body[:500]!r}")
        if status < 400:
            return
        etype = headers.get("x-amzn-errortype")
        if not etype:
            self.problems.append(f"{where}: HTTP {status} without x-amzn-ErrorType header")
        if not headers.get("x-amzn-requestid"):
            self.problems.append(f"{where}: HTTP {status} without x-amzn-RequestId header")
        try:
            doc = json.loads(body or b"null")
        except ValueError:
            self.problems.append(f"{where}: HTTP {status} error body is not JSON: {body[:200]!r}")
            return
        if not isinstance(doc, dict) or not isinstance(doc.get("__type"), str):
            self.problems.append(f"{where}: HTTP {status} error body without __type: {doc!r}")
            return
        if etype and doc["__type"] != etype:
            self.problems.append(
                f"{where}: __type {doc['__type']!r} != x-amzn-ErrorType {etype!r}")
        if not isinstance(doc.get("message"), str):
            self.problems.append(f"{where}: error body without a string message: {doc!r}")


AUDIT = Audit()


@pytest.fixture(autouse=True)
def _audit_responses():
    AUDIT.problems.clear()
    yield
    problems = list(AUDIT.problems)
    AUDIT.problems.clear()
    assert not problems, "malformed or 5xx responses:\n" + "\n".join(problems)


def _audit_hook(http_response, model, **_kwargs):
    AUDIT.check(f"{model.service_model.service_name}.{model.name}",
                http_response.status_code, dict(http_response.headers),
                http_response.content or b"")


# -------------------------------------------------------------------- server


@dataclass
class PurserServer:
    """What the `purser` fixture hands out."""

    endpoint: str
    host: str
    port: int
    pid: int
    tmp_dir: Path
    data_dir: Path
    config_path: Path
    log_path: Path
    creds: Creds
    creds2: Creds
    region: str = REGION

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _find_binary() -> Path:
    configured = os.environ.get("PURSER_BIN", "target/release/purser")
    candidates = [Path(configured)]
    if not Path(configured).is_absolute():
        candidates.append(REPO_ROOT / configured)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c.resolve()
    pytest.fail(
        f"purser binary not found (PURSER_BIN={configured!r}; looked at "
        f"{', '.join(str(c) for c in candidates)}). Build it with "
        "`cargo build --release --workspace` or run scripts/test.",
        pytrace=False,
    )


def _health_ok(endpoint: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(endpoint + "/health", timeout=1) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        return False


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after STOP_GRACE seconds; only this pid."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=STOP_GRACE)


@pytest.fixture(scope="session")
def purser(tmp_path_factory) -> PurserServer:
    binary = _find_binary()
    tmp_dir = tmp_path_factory.mktemp("purser")
    data_dir = tmp_dir / "data"
    data_dir.mkdir()
    config_path = tmp_dir / "purser.toml"
    config_path.write_text(
        "[[credentials]]\n"
        f'access_key_id = "{CREDS_2.access_key_id}"\n'
        f'secret_access_key = "{CREDS_2.secret_access_key}"\n'
        f'account_id = "{CREDS_2.account_id}"\n',
        encoding="utf-8",
    )
    log_path = tmp_dir / "purser.log"
    env = dict(os.environ)
    env.update({
        "PURSER_ACCESS_KEY_ID": CREDS_1.access_key_id,
        "PURSER_SECRET_ACCESS_KEY": CREDS_1.secret_access_key,
        "PURSER_ACCOUNT_ID": CREDS_1.account_id,
        "PURSER_REGION": REGION,
        # vendor wallet APIs on a closed loopback port: no test reaches a real vendor
        "PURSER_CDP_BASE_URL": f"http://127.0.0.1:{_free_port()}/platform",
        "PURSER_PRIVY_BASE_URL": f"http://127.0.0.1:{_free_port()}",
    })

    proc = None
    endpoint = None
    log_file = open(log_path, "ab")
    try:
        # A port picked by the OS can in theory be taken before the server binds
        # it: try a few ports before giving up.
        for _attempt in range(3):
            port = _free_port()
            endpoint = f"http://127.0.0.1:{port}"
            log_file.write(f"--- starting {binary} on 127.0.0.1:{port}\n".encode())
            log_file.flush()
            proc = subprocess.Popen(
                [str(binary), "serve", "--listen", f"127.0.0.1:{port}",
                 "--data-dir", str(data_dir), "--config", str(config_path)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=str(tmp_dir),
            )
            deadline = time.monotonic() + HEALTH_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                if _health_ok(endpoint):
                    break
                time.sleep(0.05)
            if proc.poll() is None and _health_ok(endpoint):
                break
            if proc.poll() is None:  # alive but never healthy
                _stop(proc)
                pytest.fail(
                    f"purser did not answer 200 on GET /health within {HEALTH_TIMEOUT}s; "
                    f"log {log_path}:\n{_tail(log_path)}", pytrace=False)
            if "in use" not in _tail(log_path).lower():
                pytest.fail(f"purser exited with status {proc.returncode} at start; "
                            f"log {log_path}:\n{_tail(log_path)}", pytrace=False)
        else:
            pytest.fail(f"purser could not bind a port; log:\n{_tail(log_path)}",
                        pytrace=False)

        yield PurserServer(
            endpoint=endpoint, host="127.0.0.1", port=port, pid=proc.pid,
            tmp_dir=tmp_dir, data_dir=data_dir, config_path=config_path,
            log_path=log_path, creds=CREDS_1, creds2=CREDS_2,
        )
    finally:
        if proc is not None:
            _stop(proc)
        log_file.close()


def _tail(path: Path, n: int = 60) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


# ------------------------------------------------------------------- clients

_BOTO_SESSION = boto3.session.Session()


@pytest.fixture(scope="session")
def make_client(purser) -> Callable[..., Any]:
    """make_client(service="bedrock-agentcore-control", creds=None, access_key_id=None,
    secret_access_key=None, parameter_validation=True, region=REGION, **config)

    A boto3 client for `service` against the test server; `creds` defaults to
    account 1; access_key_id / secret_access_key override single parts (a wrong
    secret, an unknown key). No retries."""

    def make(service: str = CONTROL, creds: Creds | None = None,
             access_key_id: str | None = None, secret_access_key: str | None = None,
             parameter_validation: bool = True, region: str = REGION, **config: Any):
        creds = creds or purser.creds
        cfg = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            parameter_validation=parameter_validation,
            connect_timeout=10,
            read_timeout=30,
            **config,
        )
        client = _BOTO_SESSION.client(
            service,
            region_name=region,
            endpoint_url=purser.endpoint,
            aws_access_key_id=access_key_id or creds.access_key_id,
            aws_secret_access_key=secret_access_key or creds.secret_access_key,
            config=cfg,
        )
        client.meta.events.register("after-call", _audit_hook)
        return client

    return make


@pytest.fixture(scope="session")
def control(make_client):
    """Control plane (`bedrock-agentcore-control`), account 1."""
    return make_client(CONTROL)


@pytest.fixture(scope="session")
def data(make_client):
    """Data plane (`bedrock-agentcore`), account 1."""
    return make_client(DATA)


@pytest.fixture(scope="session")
def control2(make_client, purser):
    """Control plane, account 2 (444455556666)."""
    return make_client(CONTROL, creds=purser.creds2)


@pytest.fixture(scope="session")
def data2(make_client, purser):
    """Data plane, account 2."""
    return make_client(DATA, creds=purser.creds2)


@pytest.fixture(scope="session")
def control_nv(make_client):
    """Control plane, account 1, with botocore's client-side validation switched off
    (to reach the server with input botocore would refuse: required, min, unions)."""
    return make_client(CONTROL, parameter_validation=False)


# ------------------------------------------------------------- raw requests


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def json(self) -> Any:
        """The parsed JSON body, or None when the body is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def error_type(self) -> str | None:
        return self.headers.get("x-amzn-errortype")


@pytest.fixture(scope="session")
def raw_request(purser) -> Callable[..., RawResponse]:
    """raw_request(method, path, body=None, headers=None, sign=True, creds=None,
                   skew=None, service="bedrock-agentcore", region="us-east-1",
                   send_body=None, send_path=None, timeout=30) -> RawResponse

    Sends one HTTP request to the server. `path` includes any query string.
    `body`: dict/list (sent as JSON), str or bytes. With sign=True the request is
    SigV4-signed by botocore for `creds` (default account 1), `service` and
    `region`; `skew` (a timedelta) shifts the signing clock (X-Amz-Date).
    `send_body` / `send_path` replace the body / path after signing (a tampered
    request)."""

    def request(method: str, path: str, body: Any = None, headers: dict | None = None,
                sign: bool = True, creds: Creds | None = None,
                skew: datetime.timedelta | None = None, service: str = SIGNING_NAME,
                region: str = REGION, send_body: bytes | None = None,
                send_path: str | None = None, timeout: float = 30) -> RawResponse:
        creds = creds or purser.creds
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            payload = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            payload = body.encode()
            hdrs.setdefault("Content-Type", "application/json")
        else:
            payload = body  # bytes or None
        if sign:
            req = AWSRequest(method=method, url=purser.endpoint + path, data=payload,
                             headers=hdrs)
            signer = SigV4Auth(Credentials(creds.access_key_id, creds.secret_access_key),
                               service, region)
            if skew is not None:
                real_now = botocore.auth.get_current_datetime

                def shifted_now(*a, **kw):
                    return real_now(*a, **kw) + skew

                with mock.patch("botocore.auth.get_current_datetime", shifted_now):
                    signer.add_auth(req)
            else:
                signer.add_auth(req)
            hdrs = dict(req.headers.items())
        if send_body is not None:
            payload = send_body
        if send_path is not None:
            path = send_path
        conn = http.client.HTTPConnection(purser.host, purser.port, timeout=timeout)
        try:
            try:
                conn.request(method, path, body=payload, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError):
                # The server may answer (413) and close before reading a large body;
                # the response can still be read.
                pass
            resp = conn.getresponse()
            data = resp.read()
            result = RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()},
                                 data)
        finally:
            conn.close()
        AUDIT.check(f"raw {method} {path}", result.status, result.headers, result.body)
        return result

    return request


# --------------------------------------------------------------------- misc


@pytest.fixture(scope="session")
def aws_cli() -> Path:
    """The AWS CLI v1 executable (its own venv; see tests/compat/requirements-cli.txt)."""
    configured = os.environ.get("PURSER_AWS_CLI")
    path = Path(configured) if configured else REPO_ROOT / ".venv-cli" / "bin" / "aws"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"AWS CLI not found at {path}; scripts/test installs it "
            "(python3 -m venv .venv-cli && .venv-cli/bin/pip install -r "
            "tests/compat/requirements-cli.txt), or set PURSER_AWS_CLI.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def run_cli(aws_cli, purser, tmp_path_factory) -> Callable[..., subprocess.CompletedProcess]:
    """run_cli(*args, creds=None, secret_access_key=None) -> CompletedProcess

    Runs `aws <args> --endpoint-url <server> --region us-east-1 --output json`
    with the test credentials in the environment and nothing else of the
    machine's AWS setup."""
    home = tmp_path_factory.mktemp("cli-home")

    def run(*args: str, creds: Creds | None = None,
            secret_access_key: str | None = None) -> subprocess.CompletedProcess:
        creds = creds or purser.creds
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": secret_access_key or creds.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        cmd = [str(aws_cli), *args, "--endpoint-url", purser.endpoint,
               "--region", REGION, "--output", "json"]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    return run
