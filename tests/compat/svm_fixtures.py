"""Solana fixtures for the compat suite: an in-process SVM (npm litesvm) behind a loopback
JSON-RPC endpoint (tests/chain/svm.mjs) and the x402 reference SVM facilitator
(tests/chain/svm_facilitator.mjs, npm @x402/svm) working on that same state.

* `svm_chain` (session): starts `node svm.mjs` on 127.0.0.1 (a free port), stops it by pid.
  `.url`, `.fee_payer` (the facilitator's address, funded), `.rpc(method, params)`,
  `.fund(owner, amount, mint=...)` (sets owner's associated token account of the mint to
  `amount` atomic units), `.balance(owner, mint=...)`.
* `svm_facilitate(op, chain, version, payment_payload, requirements)`: one reference
  facilitator verify/settle, the response JSON.
* `svm_requirement(...)`: an x402 `exact` requirement on a Solana network.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest

from chain_fixtures import (
    CHAIN_DIR,
    CONTROL,
    DATA,
    all_dead_rpc,
    b58encode,
    make_boto,
    node_available,
    run_node,
    setup_wallet,
    start_purser,
)
from compat_helpers import ACCOUNT_1

SOLANA_USDC = {
    "SOLANA": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
    "SOLANA_DEVNET": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
}
SOLANA_NETWORK = {
    # chain -> (v1 name, CAIP-2)
    "SOLANA": ("solana", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"),
    "SOLANA_DEVNET": ("solana-devnet", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"),
}


def random_solana_address() -> str:
    """32 random bytes in base58 (a fresh payee; may be off-curve, which is fine)."""
    return b58encode(secrets.token_bytes(32))


@dataclass
class SvmChain:
    url: str
    fee_payer: str
    proc: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rpc(self, method: str, params: list | None = None) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": params or []}).encode()
        req = urllib.request.Request(self.url, data=body,
                                     headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=30) as r:
            answer = json.loads(r.read())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def fund(self, owner: str, amount: int, chain: str = "SOLANA_DEVNET") -> str:
        return self.rpc("test_fundToken", [owner, SOLANA_USDC[chain], str(amount)])

    def balance(self, owner: str, chain: str = "SOLANA_DEVNET") -> int:
        return int(self.rpc("test_tokenBalance", [owner, SOLANA_USDC[chain]]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_svm_chain() -> SvmChain:
    if not node_available():
        msg = "node is not installed (needed for the litesvm-backed Solana RPC)"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    if not (CHAIN_DIR / "node_modules" / "@x402" / "svm").is_dir():
        pytest.fail("tests/chain/node_modules is missing: run npm ci --prefix tests/chain",
                    pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(["node", "svm.mjs", "0"], cwd=str(CHAIN_DIR), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=30)
    if not first or not first[0].strip():
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"svm.mjs did not start:\n{err}", pytrace=False)
    info = json.loads(first[0])
    assert info["url"].startswith("http://127.0.0.1:"), info
    chain = SvmChain(url=info["url"], fee_payer=info["feePayer"], proc=proc)
    deadline = time.monotonic() + 10
    while True:
        try:
            chain.rpc("getSlot")
            return chain
        except OSError:
            if time.monotonic() > deadline:
                chain.stop()
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def svm_chain():
    chain = start_svm_chain()
    try:
        yield chain
    finally:
        chain.stop()


@pytest.fixture(scope="session")
def svm_server(tmp_path_factory, svm_chain):
    """A Purser whose SOLANA and SOLANA_DEVNET RPC is the SVM (the other chains: dead
    loopback ports), shared by the Solana payment suites."""
    rpc = all_dead_rpc()
    rpc["SOLANA"] = svm_chain.url
    rpc["SOLANA_DEVNET"] = svm_chain.url
    server = start_purser(tmp_path_factory.mktemp("purser-svm"), rpc=rpc)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sdp(svm_server):
    """A data-plane client of `svm_server` (account 1)."""
    return make_boto(svm_server, DATA)


@pytest.fixture(scope="session")
def swallet(svm_server):
    """A READY manager and SelfCustody connector on `svm_server` (account 1)."""
    return setup_wallet(make_boto(svm_server, CONTROL), ACCOUNT_1)


def svm_requirement(fee_payer: str, pay_to: str, chain: str = "SOLANA_DEVNET",
                    version: str = "2", amount: str = "100000", **overrides: Any) -> dict:
    """An x402 `exact` PaymentRequirements on a Solana network: v1 uses the v1 network name
    and maxAmountRequired (plus v1's resource/description/mimeType), v2 CAIP-2 and amount.
    An override of None removes the member."""
    v1_name, caip2 = SOLANA_NETWORK[chain]
    req: dict[str, Any] = {
        "scheme": "exact",
        "network": v1_name if version == "1" else caip2,
        "asset": SOLANA_USDC[chain],
        "payTo": pay_to,
        "maxTimeoutSeconds": 60,
        "extra": {"feePayer": fee_payer},
    }
    if version == "1":
        req.update(maxAmountRequired=amount, resource="http://127.0.0.1/paid",
                   description="", mimeType="application/json")
    else:
        req["amount"] = amount
    for k, v in overrides.items():
        if v is None:
            req.pop(k, None)
        else:
            req[k] = v
    return req


def svm_payment_payload(version: str, requirement: dict, scheme_payload: dict) -> dict:
    """The client's PaymentPayload (what X-PAYMENT / PAYMENT-SIGNATURE carry)."""
    if version == "1":
        return {"x402Version": 1, "scheme": requirement["scheme"],
                "network": requirement["network"], "payload": scheme_payload}
    return {"x402Version": 2, "accepted": requirement, "payload": scheme_payload}


def svm_facilitate(op: str, chain: SvmChain, version: str, payment_payload: dict,
                   requirements: dict) -> dict:
    """The reference @x402/svm facilitator's verify/settle on the svm chain."""
    body = {"x402Version": int(version), "paymentPayload": payment_payload,
            "paymentRequirements": requirements}
    return run_node(["svm_facilitator.mjs", op, chain.url], body, timeout=90)
