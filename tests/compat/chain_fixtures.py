"""Fixtures and helpers of the data-plane suite (`test_data_*.py`).

Loaded as a pytest plugin: every data test module says

    pytest_plugins = ["chain_fixtures"]

so the session-scoped fixtures below exist once per test session (a fixture imported
into several modules would be instantiated once per module).

What it provides:
  * pure-Python crypto needed to check Purser's output without new dependencies:
    keccak-256, EIP-55, base58, secp256k1 (public keys, ecrecover), the EIP-712 digest
    of an EIP-3009 TransferWithAuthorization;
  * `anvil_chain` / `usdc`: a session anvil (chain id 84532) with TestUSDC at the real
    Base Sepolia USDC address (tests/chain/anvil.py), stopped by pid;
  * `solana_shim`: a loopback JSON-RPC server answering getTokenAccountsByOwner;
  * `dp_server`: a Purser server of our own (separate from conftest's `purser`) with
    --test-clock, a temp data dir, two accounts, BASE_SEPOLIA -> anvil,
    SOLANA_DEVNET -> the shim and every other chain -> a closed loopback port (no
    traffic ever leaves 127.0.0.1);
  * `start_server`: a factory for more servers (another master key, a dead RPC, a
    clock that may be moved), each stopped by pid at the end of the test;
  * boto3 clients for both planes and both accounts (`cp`, `cp2`, `dp`, `dp2`, `dp_nv`);
  * `make_wallet` / `wallet` (a READY manager + READY SelfCustody connector),
    `make_instrument`, `make_session`, `pay`, x402 requirement builders.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from compat_helpers import (
    ACCOUNT_1,
    ACCOUNT_2,
    REGION,
    create_connector,
    create_manager,
)
from conftest import (
    CONTROL,
    CREDS_1,
    CREDS_2,
    DATA,
    HEALTH_TIMEOUT,
    REPO_ROOT,
    Creds,
    _BOTO_SESSION,
    _audit_hook,
    _find_binary,
    _free_port,
    _health_ok,
    _stop,
    _tail,
)

CHAIN_DIR = REPO_ROOT / "tests" / "chain"
if str(CHAIN_DIR) not in sys.path:
    sys.path.insert(0, str(CHAIN_DIR))

import anvil as anvil_mod  # noqa: E402  (tests/chain/anvil.py, stdlib only)

# =============================================================== keccak-256


def _keccak_constants():
    # Round constants from the LFSR of the Keccak reference, rotation offsets from
    # the (x, y) -> (y, 2x + 3y) walk: computed, not typed in.
    rc, r = [], 1
    for _ in range(24):
        c = 0
        for j in range(7):
            r = ((r << 1) ^ ((r >> 7) * 0x71)) % 256
            if r & 2:
                c ^= 1 << ((1 << j) - 1)
        rc.append(c)
    rot = [[0] * 5 for _ in range(5)]
    x, y = 1, 0
    for t in range(24):
        rot[x][y] = ((t + 1) * (t + 2) // 2) % 64
        x, y = y, (2 * x + 3 * y) % 5
    return rc, rot


_RC, _ROT = _keccak_constants()
_MASK64 = (1 << 64) - 1


def _rol(v: int, n: int) -> int:
    return ((v << n) | (v >> (64 - n))) & _MASK64 if n else v


def _keccak_f(a: list[int]) -> list[int]:
    for rc in _RC:
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        a = [a[i] ^ d[i % 5] for i in range(25)]
        b = [0] * 25
        for x in range(5):
            for y in range(5):
                b[y + 5 * ((2 * x + 3 * y) % 5)] = _rol(a[x + 5 * y], _ROT[x][y])
        a = [b[i] ^ ((~b[(i % 5 + 1) % 5 + 5 * (i // 5)]) & b[(i % 5 + 2) % 5 + 5 * (i // 5)])
             for i in range(25)]
        a[0] ^= rc
    return a


def _sponge(data: bytes, domain: int, rate: int = 136, out: int = 32) -> bytes:
    msg = bytearray(data)
    msg.append(domain)
    while len(msg) % rate:
        msg.append(0)
    msg[-1] |= 0x80
    state = [0] * 25
    for off in range(0, len(msg), rate):
        for i in range(rate // 8):
            state[i] ^= int.from_bytes(msg[off + 8 * i: off + 8 * i + 8], "little")
        state = _keccak_f(state)
    return b"".join(state[i].to_bytes(8, "little") for i in range(4))[:out]


def keccak256(data: bytes) -> bytes:
    """Keccak-256 as Ethereum uses it (original padding 0x01, not SHA3's 0x06)."""
    return _sponge(bytes(data), 0x01)


def _sha3_256(data: bytes) -> bytes:
    """The same permutation with SHA3 padding: checked against hashlib in the self-test."""
    return _sponge(bytes(data), 0x06)


# ================================================================ addresses


def to_checksum_address(addr: str | bytes) -> str:
    """EIP-55 form of a 20-byte address (bytes or 0x-hex in any case)."""
    if isinstance(addr, (bytes, bytearray)):
        hexpart = bytes(addr).hex()
    else:
        hexpart = addr[2:].lower() if addr.startswith(("0x", "0X")) else addr.lower()
    assert len(hexpart) == 40, addr
    h = keccak256(hexpart.encode()).hex()
    return "0x" + "".join(ch.upper() if ch.isalpha() and int(h[i], 16) >= 8 else ch
                          for i, ch in enumerate(hexpart))


def is_eip55(addr: str) -> bool:
    if not isinstance(addr, str) or len(addr) != 42 or not addr.startswith("0x"):
        return False
    try:
        int(addr[2:], 16)
    except ValueError:
        return False
    return to_checksum_address(addr) == addr


def random_evm_address() -> str:
    return to_checksum_address(secrets.token_bytes(20))


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        idx = _B58.find(ch)
        if idx < 0:
            raise ValueError(f"not base58: {ch!r}")
        n = n * 58 + idx
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + body


def b58encode(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + out


# ================================================================ secp256k1

P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
     0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)


def _jac_double(p):
    x, y, z = p
    if not y:
        return (0, 0, 0)
    ysq = y * y % P
    s = 4 * x * ysq % P
    m = 3 * x * x % P
    nx = (m * m - 2 * s) % P
    ny = (m * (s - nx) - 8 * ysq * ysq) % P
    nz = 2 * y * z % P
    return (nx, ny, nz)


def _jac_add(p, q):
    if not p[2]:
        return q
    if not q[2]:
        return p
    x1, y1, z1 = p
    x2, y2, z2 = q
    z1s, z2s = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2s % P, x2 * z1s % P
    s1, s2 = y1 * z2s * z2 % P, y2 * z1s * z1 % P
    if u1 == u2:
        return _jac_double(p) if s1 == s2 else (0, 0, 0)
    h, r = (u2 - u1) % P, (s2 - s1) % P
    h2 = h * h % P
    h3 = h * h2 % P
    u1h2 = u1 * h2 % P
    nx = (r * r - h3 - 2 * u1h2) % P
    ny = (r * (u1h2 - nx) - s1 * h3) % P
    return (nx, ny, h * z1 * z2 % P)


def _jac_mul(p, k):
    result = (0, 0, 0)
    addend = (p[0], p[1], 1)
    while k:
        if k & 1:
            result = _jac_add(result, addend)
        addend = _jac_double(addend)
        k >>= 1
    return result


def _to_affine(p):
    if not p[2]:
        return None
    zi = pow(p[2], -1, P)
    return (p[0] * zi * zi % P, p[1] * zi * zi * zi % P)


def ec_mul(point, k):
    return _to_affine(_jac_mul(point, k % N))


def pubkey_to_address(point) -> str:
    raw = point[0].to_bytes(32, "big") + point[1].to_bytes(32, "big")
    return to_checksum_address(keccak256(raw)[12:])


def private_key_to_address(key: bytes) -> str | None:
    """The EVM address of a 32-byte secp256k1 private key (None if out of range)."""
    k = int.from_bytes(key, "big")
    if not 0 < k < N:
        return None
    return pubkey_to_address(ec_mul(G, k))


def ecrecover(digest: bytes, signature: bytes) -> str | None:
    """The EVM address that signed `digest` (65-byte r||s||v, v in {27, 28})."""
    if len(signature) != 65:
        return None
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28) or not (0 < r < N and 0 < s < N):
        return None
    x = r
    alpha = (pow(x, 3, P) + 7) % P
    y = pow(alpha, (P + 1) // 4, P)
    if y * y % P != alpha:
        return None
    if y % 2 != v - 27:
        y = P - y
    e = int.from_bytes(digest, "big")
    rinv = pow(r, -1, N)
    q = _jac_add(_jac_mul((x, y), s * rinv % N), _jac_mul(G, (-e * rinv) % N))
    q = _to_affine(q)
    return pubkey_to_address(q) if q else None


# ============================================================= EIP-712 / 3009

_DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_TWA_TYPE = (b"TransferWithAuthorization(address from,address to,uint256 value,"
             b"uint256 validAfter,uint256 validBefore,bytes32 nonce)")


def _word(v: int | str | bytes) -> bytes:
    if isinstance(v, str):
        v = bytes.fromhex(v[2:] if v.startswith("0x") else v)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).rjust(32, b"\0")
    return int(v).to_bytes(32, "big")


def domain_separator(name: str, version: str, chain_id: int, contract: str) -> bytes:
    return keccak256(_word(keccak256(_DOMAIN_TYPE)) + _word(keccak256(name.encode()))
                     + _word(keccak256(version.encode())) + _word(chain_id) + _word(contract))


def transfer_with_authorization_digest(domain: bytes, auth: dict) -> bytes:
    struct = keccak256(
        _word(keccak256(_TWA_TYPE)) + _word(auth["from"]) + _word(auth["to"])
        + _word(int(auth["value"])) + _word(int(auth["validAfter"]))
        + _word(int(auth["validBefore"])) + _word(auth["nonce"]))
    return keccak256(b"\x19\x01" + domain + struct)


def self_test_crypto() -> None:
    """Known answers; run once per session before anything relies on the code above."""
    import hashlib
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
    assert keccak256(b"balanceOf(address)")[:4].hex() == "70a08231"
    for n in (0, 1, 135, 136, 137, 272, 500):
        data = bytes(range(256)) * 2
        assert _sha3_256(data[:n]) == hashlib.sha3_256(data[:n]).digest(), n
    # private key 1 -> the generator's address (a well-known value)
    assert private_key_to_address((1).to_bytes(32, "big")) == (
        "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf")
    assert is_eip55("0x036CbD53842c5426634e7929541eC2318f3dCF7e")
    assert not is_eip55("0x036cbd53842c5426634e7929541ec2318f3dcf7e")
    assert b58decode(b58encode(b"\0\x01\x02")) == b"\0\x01\x02"


self_test_crypto()

# ============================================================== chain table

PAYEE = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
BASE_SEPOLIA_USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
SOLANA_DEVNET_USDC_MINT = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"


@dataclass(frozen=True)
class EvmChain:
    name: str          # the API's chain id (GetPaymentInstrumentBalance)
    chain_id: int
    v1: str            # x402 v1 network name
    usdc: str
    usdc_name: str
    usdc_version: str = "2"

    @property
    def caip2(self) -> str:
        return f"eip155:{self.chain_id}"

    def network(self, version: str) -> str:
        return self.v1 if version == "1" else self.caip2

    def domain(self) -> bytes:
        return domain_separator(self.usdc_name, self.usdc_version, self.chain_id, self.usdc)


EVM_CHAINS = {
    "BASE_SEPOLIA": EvmChain("BASE_SEPOLIA", 84532, "base-sepolia", BASE_SEPOLIA_USDC, "USDC"),
    "BASE": EvmChain("BASE", 8453, "base", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                     "USD Coin"),
    "ETHEREUM": EvmChain("ETHEREUM", 1, "ethereum", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
                         "USD Coin"),
}


def x402_requirement(chain: str = "BASE_SEPOLIA", version: str = "2", amount: str = "100000",
                     pay_to: str = PAYEE, **overrides: Any) -> dict:
    """One x402 PaymentRequirements object, spelled for `version` ("1" or "2")."""
    c = EVM_CHAINS[chain]
    req = {
        "scheme": "exact",
        "network": c.network(version),
        "asset": c.usdc,
        "payTo": pay_to,
        "maxTimeoutSeconds": 300,
        "extra": {"name": c.usdc_name, "version": c.usdc_version},
        "resource": "https://shop.example/item",
        "description": "item",
        "mimeType": "application/json",
    }
    overrides = {("maxAmountRequired" if version == "1" else "amount"): amount, **overrides}
    for k, v in overrides.items():
        if v is _DROP:
            req.pop(k, None)
        else:
            req[k] = v
    return req


class _Drop:
    def __repr__(self):
        return "DROP"


_DROP = _Drop()
DROP = _DROP  # x402_requirement(scheme=DROP) removes the member


def x_payment_header(requirement: dict, scheme_payload: dict) -> str:
    """The X-PAYMENT header (x402 v1) a client sends: base64 of the PaymentPayload."""
    doc = {"x402Version": 1, "scheme": requirement["scheme"],
           "network": requirement["network"], "payload": scheme_payload}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def payment_signature_header(requirement: dict, scheme_payload: dict) -> str:
    """The PAYMENT-SIGNATURE header (x402 v2): base64 of {x402Version, resource, accepted,
    payload}."""
    accepted = {k: v for k, v in requirement.items()
                if k not in ("resource", "description", "mimeType")}
    doc = {"x402Version": 2,
           "resource": {"url": requirement.get("resource"),
                        "description": requirement.get("description"),
                        "mimeType": requirement.get("mimeType")},
           "accepted": accepted,
           "payload": scheme_payload}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def decode_header(value: str) -> dict:
    return json.loads(base64.b64decode(value, validate=True))


# =============================================================== anvil


@pytest.fixture(scope="session")
def _anvil_or_reason():
    """(Anvil, None) or (None, why it is missing). Stopped by pid at the end."""
    try:
        binary = anvil_mod.anvil_binary()
    except FileNotFoundError as e:
        yield None, str(e)
        return
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        yield None, f"no executable anvil at {binary}"
        return
    chain = anvil_mod.start_anvil(chain_id=84532)
    try:
        anvil_mod.install_usdc(chain, BASE_SEPOLIA_USDC, "USDC", "2")
        yield chain, None
    finally:
        chain.stop()


@pytest.fixture(scope="session")
def anvil_chain(_anvil_or_reason):
    """The session anvil (chain id 84532, TestUSDC at Base Sepolia's USDC address).
    Missing anvil: a failure under CI, a skip otherwise."""
    chain, reason = _anvil_or_reason
    if chain is None:
        msg = (f"anvil is not installed ({reason}); run `npm ci --prefix tests/chain` "
               "(scripts/test does it)")
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return chain


@pytest.fixture(scope="session")
def usdc(anvil_chain) -> str:
    return BASE_SEPOLIA_USDC


def node_available() -> bool:
    return shutil.which("node") is not None


def run_node(args: list[str], stdin: Any, timeout: float = 60) -> dict:
    """Run node in tests/chain with JSON on stdin; the JSON it prints."""
    if not node_available():
        msg = "node is not installed (needed for the x402 reference facilitator)"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out = subprocess.run(["node", *args], input=json.dumps(stdin), cwd=str(CHAIN_DIR),
                         capture_output=True, text=True, timeout=timeout, env=env)
    assert out.returncode == 0, f"node {args[:2]} failed:\n{out.stdout}\n{out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def facilitator(op: str, anvil, payment_payload: dict, requirements: dict) -> dict:
    """The x402 v2 reference facilitator (tests/chain/facilitator.mjs) on the anvil."""
    body = {"x402Version": 2, "paymentPayload": payment_payload,
            "paymentRequirements": requirements}
    return run_node(["facilitator.mjs", op, anvil.url], body)


# The v1 reference facilitator: @x402/core's x402Facilitator with the v1 exact EVM
# scheme registered for the requirement's network, gas key funded by facilitator.mjs.
_V1_FACILITATOR = """
import { x402Facilitator } from "@x402/core/facilitator";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/facilitator";
import { createLocalFacilitator } from "./facilitator.mjs";
import { toJson } from "./chain.mjs";
const [op, url] = process.argv.slice(1);
let text = "";
for await (const chunk of process.stdin) text += chunk;
const { paymentPayload, paymentRequirements } = JSON.parse(text);
const { signer } = await createLocalFacilitator(url);
const f = new x402Facilitator().registerV1(paymentRequirements.network, new ExactEvmSchemeV1(signer));
const result = op === "settle"
  ? await f.settle(paymentPayload, paymentRequirements)
  : await f.verify(paymentPayload, paymentRequirements);
process.stdout.write(toJson(result) + "\\n");
"""


def facilitator_v1(op: str, anvil, payment_payload: dict, requirements: dict) -> dict:
    body = {"x402Version": 1, "paymentPayload": payment_payload,
            "paymentRequirements": requirements}
    return run_node(["--input-type=module", "-e", _V1_FACILITATOR, op, anvil.url], body)


# ========================================================== Solana RPC shim


class SolanaShim:
    """A loopback JSON-RPC server answering getTokenAccountsByOwner for the USDC devnet
    mint. `accounts[owner] = [amount, ...]` sets what an owner holds; every request is
    recorded and checked; `problems` lists requests that were not as expected."""

    def __init__(self):
        self.accounts: dict[str, list[str]] = {}
        self.requests: list[dict] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        shim = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    req = json.loads(raw)
                except ValueError:
                    req = None
                reply = shim._answer(req)
                body = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _answer(self, req: Any) -> dict:
        with self._lock:
            self.requests.append(req)
        rid = req.get("id") if isinstance(req, dict) else None

        def problem(text: str) -> dict:
            with self._lock:
                self.problems.append(f"{text}: {req!r}")
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": text}}

        if not isinstance(req, dict) or req.get("jsonrpc") != "2.0":
            return problem("not a JSON-RPC 2.0 request")
        if req.get("method") != "getTokenAccountsByOwner":
            return problem(f"unexpected method {req.get('method')!r}")
        params = req.get("params")
        if not (isinstance(params, list) and len(params) == 3):
            return problem("params must be [owner, {mint}, {encoding}]")
        owner, filt, cfg = params
        if filt != {"mint": SOLANA_DEVNET_USDC_MINT}:
            return problem("the filter must be the USDC devnet mint")
        if not isinstance(cfg, dict) or cfg.get("encoding") != "jsonParsed":
            return problem("encoding must be jsonParsed")
        try:
            if len(b58decode(owner)) != 32:
                return problem("owner is not 32 bytes of base58")
        except (ValueError, TypeError):
            return problem("owner is not base58")
        value = []
        for amount in self.accounts.get(owner, []):
            value.append({
                "pubkey": b58encode(secrets.token_bytes(32)),
                "account": {
                    "data": {
                        "program": "spl-token",
                        "parsed": {
                            "type": "account",
                            "info": {
                                "isNative": False,
                                "mint": SOLANA_DEVNET_USDC_MINT,
                                "owner": owner,
                                "state": "initialized",
                                "tokenAmount": {
                                    "amount": amount,
                                    "decimals": 6,
                                    "uiAmount": int(amount) / 1e6,
                                    "uiAmountString": str(int(amount) / 1e6),
                                },
                            },
                        },
                        "space": 165,
                    },
                    "executable": False,
                    "lamports": 2039280,
                    "owner": TOKEN_PROGRAM,
                    "rentEpoch": 18446744073709551615,
                    "space": 165,
                },
            })
        return {"jsonrpc": "2.0", "id": rid,
                "result": {"context": {"apiVersion": "2.0.15", "slot": 341197053},
                           "value": value}}

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def solana_shim():
    shim = SolanaShim()
    try:
        yield shim
    finally:
        shim.stop()


# =================================================================== servers


def dead_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    return f"http://127.0.0.1:{_free_port()}"


def new_master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class DataServer:
    endpoint: str
    port: int
    proc: subprocess.Popen
    tmp_dir: Path
    data_dir: Path
    log_path: Path
    master_key: str
    rpc: dict[str, str]
    creds: Creds = CREDS_1
    creds2: Creds = CREDS_2
    _log_file: Any = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def db_path(self) -> Path:
        return self.data_dir / "purser.db"

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def advance_clock(self, seconds: int) -> int:
        """Move this server's clock forward (--test-clock); returns its new unix time."""
        req = urllib.request.Request(
            self.endpoint + "/_purser/test/clock",
            data=json.dumps({"advanceSeconds": seconds}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as r:
            assert r.status == 200
            return int(json.loads(r.read())["now"])

    def now(self) -> int:
        """The server's current unix time (its test clock)."""
        return self.advance_clock(0)

    def db(self) -> sqlite3.Connection:
        """A read-only connection to the server's SQLite database."""
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        return conn

    def query(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        conn = self.db()
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def snapshot_db(self, dest: Path) -> None:
        """A consistent copy of the live database (WAL included) at `dest`."""
        src = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        dst = sqlite3.connect(str(dest))
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()

    def stop(self) -> None:
        _stop(self.proc)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def start_purser(tmp_dir: Path, *, rpc: dict[str, str], master_key: str | None = None,
                 data_dir: Path | None = None, test_clock: bool = True,
                 extra_env: dict[str, str] | None = None) -> DataServer:
    """Start a Purser on a free 127.0.0.1 port. `rpc` maps EVERY AgentCore chain to a
    loopback URL (BASE_SEPOLIA goes through PURSER_RPC_BASE_SEPOLIA, the others through the
    config file's [rpc] table) and the Tempo chains get dead loopback ports (override with
    `extra_env={"PURSER_RPC_TEMPO_42431": ...}`), so no request ever leaves this machine."""
    assert set(rpc) == {"BASE", "BASE_SEPOLIA", "ETHEREUM", "SOLANA", "SOLANA_DEVNET"}, rpc
    for url in rpc.values():
        assert url.startswith("http://127.0.0.1:"), url
    binary = _find_binary()
    tmp_dir.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or tmp_dir / "data"
    data_dir.mkdir(exist_ok=True)
    master_key = master_key or new_master_key()
    config_path = tmp_dir / "purser.toml"
    lines = [
        "[[credentials]]",
        f'access_key_id = "{CREDS_2.access_key_id}"',
        f'secret_access_key = "{CREDS_2.secret_access_key}"',
        f'account_id = "{CREDS_2.account_id}"',
        "",
        "[rpc]",
    ]
    lines += [f'{chain} = "{url}"' for chain, url in sorted(rpc.items())
              if chain != "BASE_SEPOLIA"]
    config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log_path = tmp_dir / "purser.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURSER_")}
    env.update({
        "PURSER_ACCESS_KEY_ID": CREDS_1.access_key_id,
        "PURSER_SECRET_ACCESS_KEY": CREDS_1.secret_access_key,
        "PURSER_ACCOUNT_ID": CREDS_1.account_id,
        "PURSER_REGION": REGION,
        "PURSER_MASTER_KEY": master_key,
        "PURSER_RPC_BASE_SEPOLIA": rpc["BASE_SEPOLIA"],
        # the Tempo chains (MPP `tempo`): dead loopback ports unless extra_env says
        "PURSER_RPC_TEMPO_4217": dead_url(),
        "PURSER_RPC_TEMPO_42431": dead_url(),
        "PURSER_RPC_TIMEOUT_SECS": "5",
        # vendor wallet APIs on a closed loopback port: no test ever reaches a real vendor
        # (test_data_vendors.py turns the emulator on, which overrides these)
        "PURSER_CDP_BASE_URL": dead_url() + "/platform",
        "PURSER_PRIVY_BASE_URL": dead_url(),
    })
    env.update(extra_env or {})
    log_file = open(log_path, "ab")
    for _attempt in range(3):
        port = _free_port()
        endpoint = f"http://127.0.0.1:{port}"
        cmd = [str(binary), "serve", "--listen", f"127.0.0.1:{port}",
               "--data-dir", str(data_dir), "--config", str(config_path)]
        if test_clock:
            cmd.append("--test-clock")
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=str(tmp_dir))
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            if _health_ok(endpoint):
                return DataServer(endpoint=endpoint, port=port, proc=proc, tmp_dir=tmp_dir,
                                  data_dir=data_dir, log_path=log_path,
                                  master_key=master_key, rpc=dict(rpc), _log_file=log_file)
            time.sleep(0.05)
        if proc.poll() is None:
            _stop(proc)
            log_file.close()
            pytest.fail(f"purser did not become healthy; log:\n{_tail(log_path)}",
                        pytrace=False)
        if "in use" not in _tail(log_path).lower():
            log_file.close()
            pytest.fail(f"purser exited with {proc.returncode}; log:\n{_tail(log_path)}",
                        pytrace=False)
    log_file.close()
    pytest.fail(f"purser could not bind a port; log:\n{_tail(log_path)}", pytrace=False)


def all_dead_rpc() -> dict[str, str]:
    return {c: dead_url() for c in ("BASE", "BASE_SEPOLIA", "ETHEREUM", "SOLANA",
                                    "SOLANA_DEVNET")}


@pytest.fixture(scope="session")
def dp_server(tmp_path_factory, _anvil_or_reason, solana_shim) -> DataServer:
    """The data suite's own Purser: --test-clock, accounts 1 and 2, BASE_SEPOLIA -> the
    session anvil (a dead loopback port if anvil is missing), SOLANA_DEVNET -> the shim,
    the other chains -> dead loopback ports."""
    chain, _ = _anvil_or_reason
    rpc = all_dead_rpc()
    rpc["BASE_SEPOLIA"] = chain.url if chain is not None else dead_url()
    rpc["SOLANA_DEVNET"] = solana_shim.url
    server = start_purser(tmp_path_factory.mktemp("purser-data"), rpc=rpc)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_server(tmp_path):
    """start_server(**kwargs of start_purser) -> DataServer; stopped by pid when the test
    ends. rpc defaults to dead loopback ports for every chain."""
    started: list[DataServer] = []

    def start(name: str = "extra", rpc: dict[str, str] | None = None, **kwargs) -> DataServer:
        s = start_purser(tmp_path / f"{name}-{len(started)}", rpc=rpc or all_dead_rpc(),
                         **kwargs)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


# =================================================================== clients


def make_boto(server: DataServer, service: str, creds: Creds | None = None,
              parameter_validation: bool = True, audited: bool = True, **config: Any):
    """A boto3 client of `service` against `server` (us-east-1, no retries). Audited
    clients feed conftest's response audit (no 5xx, well-formed errors)."""
    creds = creds or server.creds
    # total_max_attempts (not max_attempts, which counts RETRIES in botocore): one
    # attempt, so a 5xx or a refused payment is never silently sent twice.
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                 parameter_validation=parameter_validation,
                 connect_timeout=10, read_timeout=60, max_pool_connections=64, **config)
    client = _BOTO_SESSION.client(
        service, region_name=REGION, endpoint_url=server.endpoint,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key, config=cfg)
    if audited:
        client.meta.events.register("after-call", _audit_hook)
    return client


@pytest.fixture(scope="session")
def cp(dp_server):
    """Control plane of dp_server, account 1."""
    return make_boto(dp_server, CONTROL)


@pytest.fixture(scope="session")
def cp2(dp_server):
    """Control plane of dp_server, account 2."""
    return make_boto(dp_server, CONTROL, creds=CREDS_2)


@pytest.fixture(scope="session")
def dp(dp_server):
    """Data plane of dp_server, account 1 (max_pool_connections 64)."""
    return make_boto(dp_server, DATA)


@pytest.fixture(scope="session")
def dp2(dp_server):
    """Data plane of dp_server, account 2."""
    return make_boto(dp_server, DATA, creds=CREDS_2)


@pytest.fixture(scope="session")
def dp_nv(dp_server):
    """Data plane of dp_server, account 1, without botocore's client-side validation."""
    return make_boto(dp_server, DATA, parameter_validation=False)


# ======================================================= managers, instruments


@dataclass
class Wallet:
    """A READY AWS_IAM manager and a READY SelfCustody connector under it."""
    account: str
    manager_id: str
    manager_arn: str
    connector_id: str
    control: Any = field(repr=False, default=None)


def new_connector(control, manager_id: str, **kwargs: Any) -> dict:
    """create_connector (READY) with a name WITHOUT '_': the connector id is
    lowercase(name) + "-" + 10 chars, and the data plane's PaymentConnectorId pattern
    `([0-9a-z][-]?){1,100}-[0-9a-z]{10}` has no '_' (the control plane's has)."""
    kwargs.setdefault("name", "conn" + uuid.uuid4().hex[:12])
    return create_connector(control, manager_id, **kwargs)


def setup_wallet(control, account: str) -> Wallet:
    m = create_manager(control, roleArn=f"arn:aws:iam::{account}:role/test")
    c = new_connector(control, m["paymentManagerId"])
    return Wallet(account, m["paymentManagerId"], m["paymentManagerArn"],
                  c["paymentConnectorId"], control)


@pytest.fixture(scope="session")
def make_wallet(cp, cp2):
    """make_wallet(account=1) -> Wallet: a fresh READY manager + READY SelfCustody
    connector of account 1 or 2."""

    def make(account: int = 1) -> Wallet:
        return setup_wallet(cp if account == 1 else cp2, ACCOUNT_1 if account == 1 else ACCOUNT_2)

    return make


@pytest.fixture(scope="session")
def wallet(make_wallet) -> Wallet:
    """A shared READY manager + connector of account 1 (tests isolate by userId)."""
    return make_wallet(1)


@pytest.fixture(scope="session")
def wallet2(make_wallet) -> Wallet:
    """A shared READY manager + connector of account 2."""
    return make_wallet(2)


def new_user() -> str:
    return "user-" + uuid.uuid4().hex[:12]


@pytest.fixture
def user() -> str:
    """A fresh userId: what a test creates under it is its own."""
    return new_user()


def create_instrument(client, w: Wallet, user_id: str, network: str = "ETHEREUM",
                      linked: list | None = None, connector_id: str | None = None,
                      **kwargs: Any) -> dict:
    resp = client.create_payment_instrument(
        userId=user_id, paymentManagerArn=w.manager_arn,
        paymentConnectorId=connector_id or w.connector_id,
        paymentInstrumentType="EMBEDDED_CRYPTO_WALLET",
        paymentInstrumentDetails={"embeddedCryptoWallet": {
            "network": network, "linkedAccounts": linked or []}},
        **kwargs)
    return resp


@pytest.fixture(scope="session")
def make_instrument(dp, dp2):
    """make_instrument(wallet, user, network="ETHEREUM", linked=None, connector_id=None,
    **kwargs) -> the paymentInstrument of a new instrument (status ACTIVE)."""

    def make(w: Wallet, user_id: str, network: str = "ETHEREUM", linked: list | None = None,
             connector_id: str | None = None, **kwargs: Any) -> dict:
        client = dp if w.account == ACCOUNT_1 else dp2
        return create_instrument(client, w, user_id, network, linked, connector_id,
                                 **kwargs)["paymentInstrument"]

    return make


def wallet_address(instrument: dict) -> str:
    return instrument["paymentInstrumentDetails"]["embeddedCryptoWallet"]["walletAddress"]


@pytest.fixture(scope="session")
def make_session(dp, dp2):
    """make_session(wallet, user, cap="1.00", expiry=60, **kwargs) -> paymentSession.
    cap=None: no limits."""

    def make(w: Wallet, user_id: str, cap: str | None = "1.00", expiry: int = 60,
             **kwargs: Any) -> dict:
        client = dp if w.account == ACCOUNT_1 else dp2
        args = dict(userId=user_id, paymentManagerArn=w.manager_arn,
                    expiryTimeInMinutes=expiry, **kwargs)
        if cap is not None:
            args["limits"] = {"maxSpendAmount": {"value": cap, "currency": "USD"}}
        return client.create_payment_session(**args)["paymentSession"]

    return make


def process_payment(client, w: Wallet, user_id: str, session_id: str, instrument_id: str,
                    requirement: Any, version: str = "2", **kwargs: Any) -> dict:
    x402 = {"version": version, "payload": requirement}
    if "permit2AllowanceLimit" in kwargs:
        x402["permit2AllowanceLimit"] = kwargs.pop("permit2AllowanceLimit")
    args = dict(userId=user_id, paymentManagerArn=w.manager_arn,
                paymentSessionId=session_id, paymentInstrumentId=instrument_id,
                paymentType=kwargs.pop("paymentType", "CRYPTO_X402"),
                paymentInput=kwargs.pop("paymentInput", {"cryptoX402": x402}))
    args.update(kwargs)
    return client.process_payment(**args)


def available(client, w: Wallet, user_id: str, session_id: str) -> str | None:
    """availableLimits.availableSpendAmount.value of a session (None without limits)."""
    s = client.get_payment_session(userId=user_id, paymentManagerArn=w.manager_arn,
                                   paymentSessionId=session_id)["paymentSession"]
    lim = s.get("availableLimits")
    return lim["availableSpendAmount"]["value"] if lim else None


def error_message(err: ClientError) -> str:
    return err.response["Error"]["Message"]


class record_bodies:
    """with record_bodies(client) as bodies: ... -> the raw HTTP bodies the client got."""

    def __init__(self, client):
        self.client = client
        self.bodies: list[bytes] = []

    def _hook(self, http_response, **_kwargs):
        self.bodies.append(http_response.content or b"")

    def __enter__(self) -> list[bytes]:
        self.client.meta.events.register("after-call", self._hook)
        return self.bodies

    def __exit__(self, *exc) -> None:
        self.client.meta.events.unregister("after-call", self._hook)


def run_concurrently(n: int, fn: Callable[[int], Any], timeout: float = 120) -> list:
    """Run fn(i) for i in range(n) in n threads released together; returns per-thread
    results: ("ok", value) or ("err", exception)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = ("ok", fn(i))
        except Exception as e:  # noqa: BLE001 - reported to the caller
            results[i] = ("err", e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert all(not t.is_alive() for t in threads), "a worker thread hung"
    return results

