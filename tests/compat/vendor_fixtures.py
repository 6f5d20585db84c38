"""The vendor emulator for tests: `purser vendor-emulator` on a loopback port, and the
vendor SDKs of tests/vendor (npm `@coinbase/cdp-sdk`, `@privy-io/node`) run by node.

`vendor_emulator` (session): a `VendorEmulator` with `url` (its root), `cdp_base_url`
(`<url>/platform`, the SDK's `basePath`), `privy_base_url` (`<url>`, the SDK's `apiUrl`),
`dir`, `pid`, `accounts` (the parsed accounts.json: CDP API keys and wallet secret, the
Privy app and its authorization key) and `dev(method, path, body)` for its
`/_emulator/...` endpoints. Stopped by pid at the end of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO_ROOT, _find_binary, _free_port, _stop, _tail

VENDOR_DIR = REPO_ROOT / "tests" / "vendor"
START_TIMEOUT = 30.0


def _open(req: urllib.request.Request, timeout: float = 10):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open(req, timeout=timeout)


@dataclass
class VendorEmulator:
    url: str
    dir: Path
    log_path: Path
    proc: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def cdp_base_url(self) -> str:
        return f"{self.url}/platform"

    @property
    def privy_base_url(self) -> str:
        return self.url

    @property
    def accounts(self) -> dict:
        return json.loads((self.dir / "accounts.json").read_text(encoding="utf-8"))

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def dev(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        try:
            with _open(req) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            return e.code, (json.loads(text) if text else None)

    def stop(self) -> None:
        _stop(self.proc)


def emulator_healthy(url: str) -> bool:
    try:
        with _open(urllib.request.Request(url + "/_emulator/health"), timeout=1) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_vendor_emulator(state_dir: Path, log_path: Path) -> VendorEmulator:
    """`purser vendor-emulator --dir state_dir` on a free loopback port."""
    binary = _find_binary()
    log = open(log_path, "ab")
    try:
        for _attempt in range(3):
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            proc = subprocess.Popen(
                [str(binary), "vendor-emulator", "--dir", str(state_dir),
                 "--listen", f"127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=str(state_dir.parent))
            deadline = time.monotonic() + START_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                if emulator_healthy(url):
                    return VendorEmulator(url=url, dir=state_dir, log_path=log_path, proc=proc)
                time.sleep(0.05)
            _stop(proc)
            if "in use" not in _tail(log_path).lower():
                break
        pytest.fail(f"the vendor emulator did not start; log:\n{_tail(log_path)}",
                    pytrace=False)
    finally:
        log.close()


@pytest.fixture(scope="session")
def vendor_emulator(tmp_path_factory) -> VendorEmulator:
    tmp = tmp_path_factory.mktemp("vendor-emulator")
    emu = start_vendor_emulator(tmp / "state", tmp / "emulator.log")
    try:
        yield emu
    finally:
        emu.stop()


def vendor_sdk(op: str, emulator_url: str, accounts: dict, timeout: float = 120,
               **extra: Any) -> dict:
    """Run tests/vendor/conformance.mjs OP; the JSON it prints."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed (needed to run the vendor SDKs)", pytrace=False)
    if not (VENDOR_DIR / "node_modules" / "@coinbase" / "cdp-sdk").is_dir():
        pytest.fail("tests/vendor/node_modules is missing: run "
                    "`npm ci --prefix tests/vendor` (scripts/test does)", pytrace=False)
    env = dict(os.environ)
    env.update({"DISABLE_CDP_ERROR_REPORTING": "true", "DISABLE_CDP_USAGE_TRACKING": "true",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    stdin = json.dumps({"emulator": emulator_url, "accounts": accounts, **extra})
    out = subprocess.run(["node", "conformance.mjs", op], input=stdin, cwd=str(VENDOR_DIR),
                         capture_output=True, text=True, timeout=timeout, env=env)
    assert out.returncode == 0, f"conformance.mjs {op} failed:\n{out.stdout}\n{out.stderr}"
    return json.loads(out.stdout)
