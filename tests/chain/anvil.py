"""Local EVM chain fixture for Purser's tests: anvil + TestUSDC at the real USDC addresses.

Stdlib only. Needs `npm ci` in tests/chain first (it brings the anvil binary).

    from anvil import start_anvil, install_usdc, mint, balance_of

    with start_anvil(chain_id=84532) as chain:          # or a = start_anvil(); ...; a.stop()
        usdc = install_usdc(chain)                      # Base Sepolia USDC address, "USDC"/"2"
        mint(chain, usdc, "0x1111111111111111111111111111111111111111", 1_230_000)
        assert balance_of(chain, usdc, "0x1111111111111111111111111111111111111111") == 1_230_000

Command line:
    python3 anvil.py                       self-check (starts and stops its own anvil)
    python3 anvil.py exec [--chain-id N] -- CMD ARGS...
        starts anvil, installs TestUSDC at that chain's USDC address, runs CMD with
        ANVIL_URL, CHAIN_ID, USDC_ADDRESS, USDC_NAME, USDC_VERSION in its environment,
        stops anvil and exits with CMD's exit code.

The anvil process listens on 127.0.0.1 only, runs no fork and reaches no network.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
ARTIFACT_PATH = HERE / "contracts" / "TestUSDC.json"
MULTICALL_ARTIFACT_PATH = HERE / "contracts" / "TestMulticall.json"

# Where the x402 reference facilitator expects Multicall3 (used only to diagnose failed
# simulations); install_usdc() puts our own TestMulticall there.
MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"

# Real USDC deployments the tests impersonate: chain id -> (address, EIP-712 name, EIP-712 version).
USDC_BY_CHAIN = {
    84532: ("0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC", "2"),  # Base Sepolia
    8453: ("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USD Coin", "2"),  # Base
    1: ("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "USD Coin", "2"),  # Ethereum
}

# 4-byte function selectors = first 4 bytes of keccak256(signature). Computed with
# solc (methodIdentifiers in contracts/TestUSDC.json) and cross-checked with viem's
# toFunctionSelector; the self-check asserts they still match the artifact.
SEL = {
    "initialize(string,string)": "4cd88b76",
    "initialized()": "158ef93e",
    "mint(address,uint256)": "40c10f19",
    "balanceOf(address)": "70a08231",
    "name()": "06fdde03",
    "version()": "54fd4d50",
    "symbol()": "95d89b41",
    "decimals()": "313ce567",
    "totalSupply()": "18160ddd",
    "DOMAIN_SEPARATOR()": "3644e515",
    "authorizationState(address,bytes32)": "e94a0102",
    "transfer(address,uint256)": "a9059cbb",
    "approve(address,uint256)": "095ea7b3",
    "allowance(address,address)": "dd62ed3e",
    "transferFrom(address,address,uint256)": "23b872dd",
    "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)": "e3ee160e",
    "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)": "cf092995",
}

# No proxy handler: requests go straight to the loopback anvil even if *_proxy is set.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RpcError(RuntimeError):
    def __init__(self, method: str, error: Any):
        self.method = method
        self.error = error
        msg = error.get("message") if isinstance(error, dict) else str(error)
        super().__init__(f"{method}: {msg}")


def anvil_binary() -> Path:
    """Path of the real anvil executable shipped by the npm @foundry-rs/anvil-<os>-<arch> package."""
    override = os.environ.get("PURSER_ANVIL_BIN")
    if override:
        return Path(override)
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system(), platform.system().lower())
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    exe = "anvil.exe" if system == "win32" else "anvil"
    path = HERE / "node_modules" / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / exe
    if not path.is_file():
        raise FileNotFoundError(f"anvil binary not found at {path}; run `npm ci` in {HERE}")
    return path


def load_artifact(path: Path = ARTIFACT_PATH) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Anvil:
    """A running anvil process on 127.0.0.1. Use .rpc(), then .stop() (or a `with` block)."""

    def __init__(self, proc: subprocess.Popen, port: int, chain_id: int, log_path: str):
        self.proc = proc
        self.port = port
        self.chain_id = chain_id
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._id = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rpc(self, method: str, params: Optional[list] = None, timeout: float = 30.0) -> Any:
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or []}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with _OPENER.open(req, timeout=timeout) as resp:
            reply = json.loads(resp.read())
        if reply.get("error") is not None:
            raise RpcError(method, reply["error"])
        return reply.get("result")

    def accounts(self) -> list[str]:
        return self.rpc("eth_accounts")

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate this anvil (by its pid) and wait for it. Idempotent."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        try:
            os.unlink(self.log_path)
        except OSError:
            pass

    def __enter__(self) -> "Anvil":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Anvil(url={self.url!r}, pid={self.pid}, chain_id={self.chain_id})"


def start_anvil(chain_id: int = 84532, extra_args: tuple[str, ...] = (), timeout: float = 30.0) -> Anvil:
    """Start anvil on a free 127.0.0.1 port; returns once `eth_chainId` answers with chain_id."""
    binary = anvil_binary()
    last_error = ""
    for _attempt in range(3):  # a freshly probed port can be taken by someone else; retry
        port = _free_port()
        log_fd, log_path = tempfile.mkstemp(prefix="anvil-", suffix=".log")
        cmd = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id), "--silent", *extra_args]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, cwd=str(HERE))
        os.close(log_fd)
        anvil = Anvil(proc, port, chain_id, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last_error = f"anvil exited with {proc.returncode}: {anvil.log()[-2000:]}"
                break
            try:
                got = int(anvil.rpc("eth_chainId", timeout=2.0), 16)
            except (OSError, ValueError, RpcError):
                time.sleep(0.05)
                continue
            if got != chain_id:
                anvil.stop()
                raise RuntimeError(f"anvil on port {port} reports chain id {got}, wanted {chain_id}")
            return anvil
        else:
            last_error = f"anvil did not answer on {anvil.url} within {timeout}s: {anvil.log()[-2000:]}"
        anvil.stop()
    raise RuntimeError(last_error)


# ---------------------------------------------------------------- ABI encoding (by hand)


def _addr(a: str) -> bytes:
    raw = bytes.fromhex(a[2:] if a.startswith("0x") else a)
    if len(raw) != 20:
        raise ValueError(f"not an address: {a}")
    return raw.rjust(32, b"\0")


def _uint(n: int) -> bytes:
    if n < 0 or n >= 1 << 256:
        raise ValueError(f"uint256 out of range: {n}")
    return n.to_bytes(32, "big")


def _encode_strings(*values: str) -> bytes:
    """ABI-encode a tuple of dynamic `string` arguments (head of offsets, then tails)."""
    head, tail = b"", b""
    base = 32 * len(values)
    for v in values:
        raw = v.encode("utf-8")
        head += _uint(base + len(tail))
        tail += _uint(len(raw)) + raw.ljust((len(raw) + 31) // 32 * 32, b"\0")
    return head + tail


def calldata(signature: str, args: bytes = b"") -> str:
    return "0x" + SEL[signature] + args.hex()


def _decode_string(hexdata: str) -> str:
    raw = bytes.fromhex(hexdata[2:])
    offset = int.from_bytes(raw[0:32], "big")
    length = int.from_bytes(raw[offset : offset + 32], "big")
    return raw[offset + 32 : offset + 32 + length].decode("utf-8")


def _decode_uint(hexdata: str) -> int:
    return int(hexdata, 16) if hexdata not in ("0x", "") else 0


# ---------------------------------------------------------------- chain helpers


def eth_call(anvil: Anvil, to: str, data: str) -> str:
    return anvil.rpc("eth_call", [{"to": to, "data": data}, "latest"])


def send_transaction(anvil: Anvil, to: str, data: str, sender: Optional[str] = None, timeout: float = 30.0) -> dict:
    """Send a tx from an unlocked anvil dev account (default: the first) and wait for a successful receipt.

    The call is first simulated with eth_call so that a revert raises RpcError carrying the
    revert reason (anvil would otherwise mine the failing transaction with status 0).
    """
    sender = sender or anvil.accounts()[0]
    anvil.rpc("eth_call", [{"from": sender, "to": to, "data": data}, "latest"])
    tx_hash = anvil.rpc("eth_sendTransaction", [{"from": sender, "to": to, "data": data}])
    deadline = time.monotonic() + timeout
    while True:
        receipt = anvil.rpc("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"no receipt for {tx_hash} after {timeout}s")
        time.sleep(0.05)
    if int(receipt["status"], 16) != 1:
        raise RuntimeError(f"transaction {tx_hash} reverted: {receipt}")
    return receipt


def install_multicall(anvil: Anvil, address: str = MULTICALL3_ADDRESS) -> str:
    """Put TestMulticall (stateless tryAggregate) at the Multicall3 address."""
    anvil.rpc("anvil_setCode", [address, load_artifact(MULTICALL_ARTIFACT_PATH)["deployedBytecode"]])
    return address


def install_usdc(anvil: Anvil, address: Optional[str] = None, name: Optional[str] = None,
                 version: Optional[str] = None, with_multicall: bool = True) -> str:
    """Put TestUSDC's runtime code at `address` (anvil_setCode: no constructor runs) and
    initialise the EIP-712 name/version with one `initialize(name, version)` transaction.

    Defaults come from USDC_BY_CHAIN for the anvil's chain id. Returns the address.
    Calling it again with the same name/version is a no-op; different values raise.
    with_multicall also installs TestMulticall at the Multicall3 address, which lets the
    x402 facilitator report precise reasons (nonce used, insufficient balance) from verify.
    """
    if with_multicall:
        install_multicall(anvil)
    default = USDC_BY_CHAIN.get(anvil.chain_id)
    if address is None or name is None or version is None:
        if default is None:
            raise ValueError(f"no default USDC for chain id {anvil.chain_id}; pass address, name, version")
        address = address or default[0]
        name = name if name is not None else default[1]
        version = version if version is not None else default[2]
    anvil.rpc("anvil_setCode", [address, load_artifact()["deployedBytecode"]])
    if _decode_uint(eth_call(anvil, address, calldata("initialized()"))):
        have = (token_name(anvil, address), token_version(anvil, address))
        if have != (name, version):
            raise RuntimeError(f"TestUSDC at {address} already initialised as {have}, wanted {(name, version)}")
        return address
    send_transaction(anvil, address, calldata("initialize(string,string)", _encode_strings(name, version)))
    return address


def mint(anvil: Anvil, token: str, to: str, amount: int) -> dict:
    """TestUSDC.mint(to, amount) from the first anvil dev account; returns the receipt."""
    return send_transaction(anvil, token, calldata("mint(address,uint256)", _addr(to) + _uint(amount)))


def transfer(anvil: Anvil, token: str, to: str, amount: int, sender: Optional[str] = None) -> dict:
    """ERC-20/TIP-20 transfer(to, amount) from an unlocked dev account (default: the first)."""
    return send_transaction(anvil, token, calldata("transfer(address,uint256)", _addr(to) + _uint(amount)), sender)


def balance_of(anvil: Anvil, token: str, owner: str) -> int:
    return _decode_uint(eth_call(anvil, token, calldata("balanceOf(address)", _addr(owner))))


def token_name(anvil: Anvil, token: str) -> str:
    return _decode_string(eth_call(anvil, token, calldata("name()")))


def token_version(anvil: Anvil, token: str) -> str:
    return _decode_string(eth_call(anvil, token, calldata("version()")))


def authorization_state(anvil: Anvil, token: str, authorizer: str, nonce: bytes) -> bool:
    if len(nonce) != 32:
        raise ValueError("nonce must be 32 bytes")
    return bool(_decode_uint(eth_call(anvil, token, calldata("authorizationState(address,bytes32)", _addr(authorizer) + nonce))))


def domain_separator(anvil: Anvil, token: str) -> str:
    return eth_call(anvil, token, calldata("DOMAIN_SEPARATOR()"))


# ---------------------------------------------------------------- command line


def _self_check() -> None:
    artifact = load_artifact()
    for sig, sel in SEL.items():
        assert artifact["methodIdentifiers"][sig] == "0x" + sel, f"selector drift for {sig}"
    address, name, version = USDC_BY_CHAIN[84532]
    holder = "0x1111111111111111111111111111111111111111"
    anvil = start_anvil(chain_id=84532)
    try:
        print(f"anvil {anvil.url} pid {anvil.pid} ({anvil_binary()})")
        token = install_usdc(anvil, address, name, version)
        install_usdc(anvil, address, name, version)  # idempotent
        assert token_name(anvil, token) == "USDC", token_name(anvil, token)
        assert token_version(anvil, token) == "2", token_version(anvil, token)
        assert balance_of(anvil, token, holder) == 0
        mint(anvil, token, holder, 1_230_000)
        got = balance_of(anvil, token, holder)
        assert got == 1_230_000, got
        assert _decode_uint(eth_call(anvil, token, calldata("decimals()"))) == 6
        assert _decode_uint(eth_call(anvil, token, calldata("totalSupply()"))) == 1_230_000
        assert not authorization_state(anvil, token, holder, b"\0" * 32)
        try:
            send_transaction(anvil, token, calldata("initialize(string,string)", _encode_strings("X", "9")))
        except RpcError as e:
            assert "already initialized" in str(e), e
        else:
            raise AssertionError("second initialize() did not revert")
        print(f"TestUSDC at {token}: name={token_name(anvil, token)!r} version={token_version(anvil, token)!r} "
              f"balanceOf({holder})={got} domainSeparator={domain_separator(anvil, token)}")
    finally:
        anvil.stop()
    assert anvil.proc.poll() is not None
    print("anvil.py self-check: OK")


def _exec(argv: list[str]) -> int:
    chain_id = 84532
    if argv[:1] == ["--chain-id"]:
        chain_id, argv = int(argv[1]), argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python3 anvil.py exec [--chain-id N] -- CMD ARGS...", file=sys.stderr)
        return 2
    with start_anvil(chain_id=chain_id) as anvil:
        address, name, version = USDC_BY_CHAIN[chain_id]
        install_usdc(anvil, address, name, version)
        env = dict(os.environ, ANVIL_URL=anvil.url, CHAIN_ID=str(chain_id), USDC_ADDRESS=address,
                   USDC_NAME=name, USDC_VERSION=version)
        return subprocess.call(argv, env=env, cwd=str(HERE))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "exec":
        sys.exit(_exec(sys.argv[2:]))
    _self_check()
