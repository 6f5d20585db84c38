"""ProcessPayment: x402 `upto` on EVM chains, `permit2AllowanceLimit` (the on-chain
approve of Permit2) and x402 `exact` through Permit2 (B22, B24, B27).

What checks what:
  * the payload's Permit2 EIP-712 digest is recomputed here in pure Python and the
    signature recovered against the instrument's wallet;
  * the x402 reference facilitator (`@x402/evm` 2.27.0 upto facilitator and the exact
    scheme's Permit2 path, tests/chain/permit2_facilitator.mjs) verifies Purser's
    payloads on the session anvil. Permit2 and the x402 proxies are not deployed there
    (their Solidity sources are not on npm), so the facilitator's final simulation of
    the proxy's `settle` is answered by the script, and nothing is settled;
  * the approve is mined on anvil from the instrument's wallet and
    `allowance(wallet, Permit2)` is read back;
  * the official SDK (`PaymentManager.generate_payment_header(...,
    permit2_allowance_limit=...)`) drives an upto payment against the server.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass

import pytest

pytest.register_assert_rewrite("chain_fixtures")

from chain_fixtures import (  # noqa: E402
    BASE_SEPOLIA_USDC,
    CHAIN_DIR,
    DATA,
    DROP,
    EVM_CHAINS,
    N,
    PAYEE,
    anvil_mod,
    ecrecover,
    error_message,
    keccak256,
    make_boto,
    private_key_to_address,
    process_payment,
    run_concurrently,
    run_node,
    to_checksum_address,
    wallet_address,
)
from compat_helpers import (  # noqa: E402
    REGION,
    client_token,
    error_code,
    expect_error,
    expect_validation,
    http_status,
)
from conftest import CREDS_1  # noqa: E402

pytest_plugins = ["chain_fixtures"]

PAYLOAD = "paymentInput.cryptoX402.payload"
LIMIT = "paymentInput.cryptoX402.permit2AllowanceLimit"
PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
UPTO_PROXY = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002"
EXACT_PROXY = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001"

# The facilitator of this module: its address goes into extra.facilitatorAddress and
# the reference facilitator signs with the key.
FACILITATOR_KEY = secrets.token_bytes(32)
FACILITATOR = private_key_to_address(FACILITATOR_KEY)


def upto_requirement(chain: str = "BASE_SEPOLIA", amount: str = "250000",
                     **overrides) -> dict:
    c = EVM_CHAINS[chain]
    req = {
        "scheme": "upto",
        "network": c.caip2,
        "amount": amount,
        "asset": c.usdc,
        "payTo": PAYEE,
        "maxTimeoutSeconds": 300,
        "extra": {"name": c.usdc_name, "version": c.usdc_version,
                  "assetTransferMethod": "permit2", "facilitatorAddress": FACILITATOR},
    }
    if amount is DROP:
        del req["amount"]
    for k, v in overrides.items():
        if v is DROP:
            req.pop(k, None)
        else:
            req[k] = v
    return req


def exact_permit2_requirement(chain: str = "BASE_SEPOLIA", amount: str = "100000") -> dict:
    c = EVM_CHAINS[chain]
    return {"scheme": "exact", "network": c.caip2, "amount": amount, "asset": c.usdc,
            "payTo": PAYEE, "maxTimeoutSeconds": 300,
            "extra": {"name": c.usdc_name, "version": c.usdc_version,
                      "assetTransferMethod": "permit2"}}


# ------------------------------------------------------- Permit2 EIP-712 in Python


def _w(v) -> bytes:
    if isinstance(v, str):
        v = int(v, 16) if v.startswith("0x") else int(v)
    return v.to_bytes(32, "big")


def permit2_digest(chain_id: int, auth: dict) -> bytes:
    upto = "facilitator" in auth["witness"]
    witness_type = (b"Witness(address to,address facilitator,uint256 validAfter)" if upto
                    else b"Witness(address to,uint256 validAfter)")
    tp_type = b"TokenPermissions(address token,uint256 amount)"
    primary = (b"PermitWitnessTransferFrom(TokenPermissions permitted,address spender,"
               b"uint256 nonce,uint256 deadline,Witness witness)" + tp_type + witness_type)
    domain = keccak256(keccak256(b"EIP712Domain(string name,uint256 chainId,address "
                                 b"verifyingContract)") + keccak256(b"Permit2")
                       + _w(chain_id) + _w(PERMIT2))
    permitted = keccak256(keccak256(tp_type) + _w(auth["permitted"]["token"])
                          + _w(auth["permitted"]["amount"]))
    w = auth["witness"]
    witness = keccak256(keccak256(witness_type) + _w(w["to"])
                        + (_w(w["facilitator"]) if upto else b"") + _w(w["validAfter"]))
    struct = keccak256(keccak256(primary) + permitted + _w(auth["spender"])
                       + _w(auth["nonce"]) + _w(auth["deadline"]) + witness)
    return keccak256(b"\x19\x01" + domain + struct)


# ------------------------------------------------------------------- fixtures


@dataclass
class Payer:
    wallet: object
    user: str
    instrument: dict
    session_id: str

    @property
    def iid(self) -> str:
        return self.instrument["paymentInstrumentId"]

    @property
    def address(self) -> str:
        return wallet_address(self.instrument)


@pytest.fixture
def make_payer(wallet, make_instrument, make_session):
    from chain_fixtures import new_user

    def make(cap: str | None = "1.00") -> Payer:
        user = new_user()
        inst = make_instrument(wallet, user, "ETHEREUM")
        sess = make_session(wallet, user, cap=cap, expiry=60)
        return Payer(wallet, user, inst, sess["paymentSessionId"])

    return make


def pay(client, p: Payer, requirement, **kw):
    return process_payment(client, p.wallet, p.user, p.session_id, p.iid, requirement, "2",
                           **kw)


def remaining(client, p: Payer) -> str | None:
    s = client.get_payment_session(userId=p.user, paymentManagerArn=p.wallet.manager_arn,
                                   paymentSessionId=p.session_id)["paymentSession"]
    lim = s.get("availableLimits")
    return lim["availableSpendAmount"]["value"] if lim else None


def rows(server, p: Payer):
    return server.query("SELECT id, scheme, amount, debited FROM payments WHERE session_id = ?",
                        p.session_id)


def allowance(anvil, owner: str) -> int:
    data = anvil_mod.calldata("allowance(address,address)",
                              anvil_mod._addr(owner) + anvil_mod._addr(PERMIT2))
    return anvil_mod._decode_uint(anvil_mod.eth_call(anvil, BASE_SEPOLIA_USDC, data))


def tx_count(anvil, owner: str) -> int:
    return int(anvil.rpc("eth_getTransactionCount", [owner, "latest"]), 16)


def fund_gas(anvil, owner: str, wei: int = 10**18) -> None:
    anvil.rpc("anvil_setBalance", [owner, hex(wei)])


def check_permit2_payload(resp, p: Payer, req: dict, t0: int, t1: int, *, upto: bool) -> dict:
    assert http_status(resp) == 200
    assert resp["status"] == "PROOF_GENERATED"
    out = resp["paymentOutput"]["cryptoX402"]
    assert out["version"] == "2"
    payload = out["payload"]
    assert set(payload) == {"signature", "permit2Authorization"}, payload
    a = payload["permit2Authorization"]
    assert set(a) == {"from", "permitted", "spender", "nonce", "deadline", "witness"}, a
    assert a["from"] == p.address
    assert a["permitted"] == {"token": to_checksum_address(req["asset"]),
                              "amount": req["amount"]}
    assert a["spender"] == (UPTO_PROXY if upto else EXACT_PROXY)
    assert a["nonce"].isdigit() and 0 <= int(a["nonce"]) < 2**256
    timeout = int(req["maxTimeoutSeconds"])
    assert t0 + timeout <= int(a["deadline"]) <= t1 + timeout
    want_witness = {"to": to_checksum_address(req["payTo"]), "validAfter": "0"}
    if upto:
        want_witness["facilitator"] = to_checksum_address(req["extra"]["facilitatorAddress"])
    assert a["witness"] == want_witness
    sig = bytes.fromhex(payload["signature"][2:])
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert int.from_bytes(sig[32:64], "big") <= N // 2
    chain_id = int(req["network"].split(":")[1])
    assert ecrecover(permit2_digest(chain_id, a), sig) == p.address
    return payload


def verify_with_reference(anvil, req: dict, payload: dict) -> dict:
    body = {"x402Version": 2,
            "paymentPayload": {"x402Version": 2, "accepted": req, "payload": payload},
            "paymentRequirements": req}
    os.environ["FACILITATOR_PRIVATE_KEY"] = "0x" + FACILITATOR_KEY.hex()
    try:
        return run_node(["permit2_facilitator.mjs", "verify", anvil.url], body)
    finally:
        os.environ.pop("FACILITATOR_PRIVATE_KEY", None)


# ------------------------------------------------------------------ happy paths


@pytest.mark.parametrize("chain", ["BASE_SEPOLIA", "BASE", "ETHEREUM"])
def test_upto_success_debits_the_maximum(dp, dp_server, make_payer, chain):
    p = make_payer("1.00")
    req = upto_requirement(chain, "250000")
    t0 = dp_server.now()
    resp = pay(dp, p, req)
    t1 = dp_server.now()
    payload = check_permit2_payload(resp, p, req, t0, t1, upto=True)
    # signed for this chain only
    other = next(c for c in EVM_CHAINS if c != chain)
    sig = bytes.fromhex(payload["signature"][2:])
    wrong = permit2_digest(EVM_CHAINS[other].chain_id, payload["permit2Authorization"])
    assert ecrecover(wrong, sig) != p.address
    # the session is debited the signed maximum
    assert remaining(dp, p) == "0.75"
    [row] = rows(dp_server, p)
    assert row["scheme"] == "upto" and row["amount"] == "250000" and row["debited"] == 250000


def test_reference_facilitator_verifies_upto_and_exact_permit2(dp, dp_server, anvil_chain,
                                                               make_payer):
    p = make_payer("1.00")
    req = upto_requirement("BASE_SEPOLIA", "300000")
    payload = pay(dp, p, req)["paymentOutput"]["cryptoX402"]["payload"]
    res = verify_with_reference(anvil_chain, req, payload)
    assert res["isValid"] is True, res
    assert res["payer"] == p.address
    assert res["simulated"] == [{"proxy": UPTO_PROXY, "functionName": "settle"}], res
    # the verifier is not a rubber stamp: a tampered maximum, another facilitator or
    # another key's signature are refused
    bad = json.loads(json.dumps(payload))
    bad["permit2Authorization"]["permitted"]["amount"] = "300001"
    res = verify_with_reference(anvil_chain, {**req, "amount": "300001"}, bad)
    assert res["isValid"] is False and res["invalidReason"] == "invalid_permit2_signature", res
    other = upto_requirement("BASE_SEPOLIA", "300000")
    other["extra"] = {**other["extra"], "facilitatorAddress": PAYEE}
    payload2 = pay(dp, p, other)["paymentOutput"]["cryptoX402"]["payload"]
    res = verify_with_reference(anvil_chain, other, payload2)
    assert res["isValid"] is False, res
    # exact through Permit2
    req = exact_permit2_requirement("BASE_SEPOLIA", "100000")
    t0 = dp_server.now()
    resp = pay(dp, p, req)
    payload = check_permit2_payload(resp, p, req, t0, dp_server.now(), upto=False)
    res = verify_with_reference(anvil_chain, req, payload)
    assert res["isValid"] is True, res
    assert res["simulated"] == [{"proxy": EXACT_PROXY, "functionName": "settle"}], res
    assert remaining(dp, p) == "0.30"


# ------------------------------------------------------------- the approve


def test_permit2_allowance_limit_approves_on_chain(dp, dp_server, anvil_chain, make_payer):
    p = make_payer("1.00")
    fund_gas(anvil_chain, p.address)
    assert allowance(anvil_chain, p.address) == 0
    req = upto_requirement("BASE_SEPOLIA", "100000")
    resp = pay(dp, p, req, permit2AllowanceLimit="5000000")
    assert resp["status"] == "PROOF_GENERATED"
    assert allowance(anvil_chain, p.address) == 5_000_000
    assert tx_count(anvil_chain, p.address) == 1
    # the approve was an EIP-1559 transaction from the wallet to USDC
    block = anvil_chain.rpc("eth_getBlockByNumber", ["latest", True])
    [tx] = [t for t in block["transactions"] if t["from"].lower() == p.address.lower()]
    assert tx["type"] == "0x2" and tx["to"].lower() == BASE_SEPOLIA_USDC.lower()
    assert tx["input"].startswith("0x095ea7b3")
    # the same limit again: nothing sent; another limit: a second approve
    pay(dp, p, req, permit2AllowanceLimit="5000000")
    assert tx_count(anvil_chain, p.address) == 1
    pay(dp, p, req, permit2AllowanceLimit="7000000")
    assert tx_count(anvil_chain, p.address) == 2
    assert allowance(anvil_chain, p.address) == 7_000_000
    # the approve costs no budget: three payments of 0.10
    assert remaining(dp, p) == "0.70"
    # the payment still verifies with the reference facilitator
    payload = resp["paymentOutput"]["cryptoX402"]["payload"]
    assert verify_with_reference(anvil_chain, req, payload)["isValid"] is True


def test_failing_approve_consumes_no_budget(dp, dp_server, anvil_chain, make_payer):
    p = make_payer("1.00")  # no ETH for gas
    assert int(anvil_chain.rpc("eth_getBalance", [p.address, "latest"]), 16) == 0
    req = upto_requirement("BASE_SEPOLIA", "100000")
    err = expect_validation(lambda: pay(dp, p, req, permit2AllowanceLimit="5000000"),
                            field=LIMIT)
    msg = error_message(err)
    assert "approve" in msg and "funds" in msg.lower(), msg
    assert remaining(dp, p) == "1.00"
    assert rows(dp_server, p) == []
    assert tx_count(anvil_chain, p.address) == 0
    assert allowance(anvil_chain, p.address) == 0
    # without the approve the same payment goes through
    assert pay(dp, p, req)["status"] == "PROOF_GENERATED"
    assert remaining(dp, p) == "0.90"


def test_approve_on_an_unreachable_chain_is_an_internal_error(dp, dp_server, make_payer):
    p = make_payer("1.00")  # ETHEREUM points at a closed loopback port in dp_server
    req = upto_requirement("ETHEREUM", "100000")
    raw = make_boto(dp_server, DATA, audited=False)  # this answer is a 500
    err = expect_error(lambda: pay(raw, p, req, permit2AllowanceLimit="1000000"),
                       "InternalServerException", 500)
    assert "ETHEREUM" in error_message(err), error_message(err)
    assert remaining(dp, p) == "1.00"
    # no approve needed: no chain call, the payment is signed
    assert pay(dp, p, req)["status"] == "PROOF_GENERATED"


# ------------------------------------------------------------ validation (B24)

_FAC = f"{PAYLOAD}.extra.facilitatorAddress"

CATALOGUE = [
    # (id, version, requirement overrides, permit2AllowanceLimit, field)
    ("upto-v1", "1", {}, None, f"{PAYLOAD}.scheme"),
    ("upto-solana", "2", {"network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"}, None,
     f"{PAYLOAD}.scheme"),
    ("upto-unknown-network", "2", {"network": "eip155:999"}, None, f"{PAYLOAD}.network"),
    ("facilitator-extra-missing", "2", {"extra": DROP}, None, _FAC),
    ("facilitator-missing", "2", {"extra": {"name": "USDC", "version": "2"}}, None, _FAC),
    ("facilitator-short", "2", {"extra": {"facilitatorAddress": "0x1234"}}, None, _FAC),
    ("facilitator-zero", "2", {"extra": {"facilitatorAddress": "0x" + "00" * 20}}, None, _FAC),
    ("facilitator-number", "2", {"extra": {"facilitatorAddress": 5}}, None, _FAC),
    ("asset-not-usdc", "2", {"asset": "0x1111111111111111111111111111111111111111"}, None,
     f"{PAYLOAD}.asset"),
    ("payto-bad", "2", {"payTo": "0x12"}, None, f"{PAYLOAD}.payTo"),
    ("amount-zero", "2", {"amount": "0"}, None, f"{PAYLOAD}.amount"),
    ("amount-missing", "2", {"amount": DROP}, None, f"{PAYLOAD}.amount"),
    ("timeout-zero", "2", {"maxTimeoutSeconds": 0}, None, f"{PAYLOAD}.maxTimeoutSeconds"),
    ("limit-zero", "2", {}, "0", LIMIT),
    ("limit-too-big", "2", {}, str(2**256), LIMIT),
    ("exact-permit2-limit", "2", {"scheme": "exact"}, "1000000", LIMIT),
    ("exact-permit2-v1", "1", {"scheme": "exact"}, None, f"{PAYLOAD}.extra.assetTransferMethod"),
    ("exact-unknown-method", "2",
     {"scheme": "exact", "extra": {"assetTransferMethod": "permit3"}}, None,
     f"{PAYLOAD}.extra.assetTransferMethod"),
]


@pytest.mark.parametrize("version,overrides,limit,field", [c[1:] for c in CATALOGUE],
                         ids=[c[0] for c in CATALOGUE])
def test_validation_catalogue(dp_nv, dp_server, make_payer, version, overrides, limit, field):
    p = make_payer("1.00")
    req = upto_requirement("BASE_SEPOLIA", **overrides)
    kw = {} if limit is None else {"permit2AllowanceLimit": limit}
    x402 = {"version": version, "payload": req, **kw}
    expect_validation(lambda: process_payment(dp_nv, p.wallet, p.user, p.session_id, p.iid,
                                              None, paymentInput={"cryptoX402": x402}),
                      field=field)
    assert remaining(dp_nv, p) == "1.00"
    assert rows(dp_server, p) == []


def test_over_the_budget_or_the_ceiling(dp, dp_server, make_payer):
    p = make_payer("1.00")
    err = expect_validation(lambda: pay(dp, p, upto_requirement(amount="1000001")),
                            field=None, reason=None)
    assert "Insufficient budget" in error_message(err)
    err = expect_validation(lambda: pay(dp, p, upto_requirement(amount="10000000001")),
                            field=f"{PAYLOAD}.amount", reason=None)
    assert "maximum" in error_message(err)
    assert remaining(dp, p) == "1.00"
    assert pay(dp, p, upto_requirement(amount="1000000"))["status"] == "PROOF_GENERATED"
    assert remaining(dp, p) == "0.00"


# ------------------------------------------------------ concurrency, idempotency


def test_concurrent_upto_payments_never_beat_the_cap(dp, dp_server, make_payer):
    p = make_payer("1.00")
    req = upto_requirement(amount="300000")
    results = run_concurrently(24, lambda i: pay(dp, p, req, clientToken=client_token()))
    ok = [r for kind, r in results if kind == "ok"]
    errors = [e for kind, e in results if kind == "err"]
    assert len(ok) == 3 and len(errors) == 21, (len(ok), errors[:2])
    for e in errors:
        assert error_code(e) == "ValidationException" and "Insufficient budget" in \
            error_message(e), error_message(e)
    assert remaining(dp, p) == "0.10"
    assert sum(r["debited"] for r in rows(dp_server, p)) == 900_000


def test_concurrent_payments_with_one_limit_send_one_approve(dp, dp_server, anvil_chain,
                                                             make_payer):
    """Approves of one wallet take turns and re-read the allowance: eight concurrent
    payments asking for the same limit send one transaction, and all are signed."""
    p = make_payer("1.00")
    fund_gas(anvil_chain, p.address)
    req = upto_requirement(amount="100000")
    results = run_concurrently(8, lambda i: pay(dp, p, req, clientToken=client_token(),
                                                permit2AllowanceLimit="4000000"))
    assert all(kind == "ok" for kind, _ in results), [r for k, r in results if k != "ok"][:2]
    assert tx_count(anvil_chain, p.address) == 1
    assert allowance(anvil_chain, p.address) == 4_000_000
    assert remaining(dp, p) == "0.20"


def test_idempotent_upto(dp, dp_server, anvil_chain, make_payer):
    p = make_payer("1.00")
    fund_gas(anvil_chain, p.address)
    req = upto_requirement(amount="200000")
    token = client_token()
    a = pay(dp, p, req, clientToken=token, permit2AllowanceLimit="3000000")
    b = pay(dp, p, req, clientToken=token, permit2AllowanceLimit="3000000")
    assert a["processPaymentId"] == b["processPaymentId"]
    assert a["paymentOutput"] == b["paymentOutput"]
    assert tx_count(anvil_chain, p.address) == 1  # the replay sent nothing
    expect_validation(lambda: pay(dp, p, {**req, "amount": "100000"}, clientToken=token,
                                  permit2AllowanceLimit="3000000"),
                      reason="IdempotentParameterMismatchException")
    assert remaining(dp, p) == "0.80"
    assert len(rows(dp_server, p)) == 1


# -------------------------------------------------------------- the official SDK

_SDK_SCRIPT = r"""
import base64, json, sys
from bedrock_agentcore.payments.manager import PaymentManager
a = json.load(sys.stdin)
m = PaymentManager(payment_manager_arn=a["arn"], region_name=a["region"])
header = m.generate_payment_header(
    user_id=a["user"], payment_instrument_id=a["instrument"],
    payment_session_id=a["session"],
    payment_required_request={"statusCode": 402, "headers": {
        "payment-required": base64.b64encode(json.dumps(a["required"]).encode()).decode()},
        "body": {}},
    network_preferences=["eip155:84532"],
    permit2_allowance_limit=a["limit"])
print(json.dumps(header))
"""


def test_official_sdk_pays_upto_with_an_allowance(dp, dp_server, anvil_chain, make_payer):
    try:
        import bedrock_agentcore  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("bedrock-agentcore is not installed in this venv")
    p = make_payer("1.00")
    fund_gas(anvil_chain, p.address)
    req = upto_requirement("BASE_SEPOLIA", "400000")
    required = {"x402Version": 2, "error": "payment required",
                "resource": {"url": "https://shop.example/item", "description": "item",
                             "mimeType": "application/json"},
                "accepts": [req]}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"BEDROCK_AGENTCORE_DP_ENDPOINT": dp_server.endpoint,
                "AWS_ACCESS_KEY_ID": CREDS_1.access_key_id,
                "AWS_SECRET_ACCESS_KEY": CREDS_1.secret_access_key,
                "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
                "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})
    args = {"arn": p.wallet.manager_arn, "region": REGION, "user": p.user,
            "instrument": p.iid, "session": p.session_id, "required": required,
            "limit": "2000000"}
    out = subprocess.run([sys.executable, "-c", _SDK_SCRIPT], input=json.dumps(args),
                         capture_output=True, text=True, timeout=120, env=env,
                         cwd=str(CHAIN_DIR))
    assert out.returncode == 0, out.stderr[-3000:]
    header = json.loads(out.stdout.strip().splitlines()[-1])
    doc = json.loads(base64.b64decode(header["PAYMENT-SIGNATURE"]))
    assert doc["x402Version"] == 2 and doc["accepted"] == req
    a = doc["payload"]["permit2Authorization"]
    assert a["permitted"]["amount"] == "400000" and a["spender"] == UPTO_PROXY
    assert allowance(anvil_chain, p.address) == 2_000_000
    assert remaining(dp, p) == "0.60"
    res = verify_with_reference(anvil_chain, req, doc["payload"])
    assert res["isValid"] is True, res


# ------------------------------------------------------- the reference client agrees

_REFERENCE_CLIENT = """
import { privateKeyToAccount, generatePrivateKey } from "viem/accounts";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { ExactEvmScheme } from "@x402/evm/exact/client";
let text = "";
for await (const chunk of process.stdin) text += chunk;
const req = JSON.parse(text);
const account = privateKeyToAccount(generatePrivateKey());
const scheme = req.scheme === "upto" ? new UptoEvmScheme(account) : new ExactEvmScheme(account);
const out = await scheme.createPaymentPayload(2, req);
process.stdout.write(JSON.stringify({ address: account.address, ...out }) + "\\n");
"""


def _shape(v):
    """Keys (JSON member order carries no meaning), recursively; leaves by type."""
    if isinstance(v, dict):
        return sorted((k, _shape(x)) for k, x in v.items())
    return type(v).__name__


@pytest.mark.parametrize("kind", ["upto", "exact-permit2"])
def test_reference_client_signs_the_same_shape(dp, dp_server, make_payer, kind):
    """`@x402/evm`'s own client (UptoEvmScheme / ExactEvmScheme with assetTransferMethod
    permit2) signs the same requirement: Purser's payload has its members, with its
    values but for the signer, the nonce, the signature and the clock."""
    p = make_payer("1.00")
    req = upto_requirement() if kind == "upto" else exact_permit2_requirement()
    t0 = dp_server.now()
    ours = pay(dp, p, req)["paymentOutput"]["cryptoX402"]["payload"]
    ref = run_node(["--input-type=module", "-e", _REFERENCE_CLIENT], req)
    theirs = ref["payload"]
    assert ref["x402Version"] == 2
    assert _shape(ours) == _shape(theirs), (ours, theirs)
    a, b = ours["permit2Authorization"], theirs["permit2Authorization"]
    for k in ("permitted", "spender", "witness"):
        assert a[k] == b[k], (k, a[k], b[k])
    assert b["from"] == ref["address"] and a["from"] == p.address
    # both: now + maxTimeoutSeconds (Purser's clock is the server's test clock)
    assert 300 <= int(a["deadline"]) - t0 <= 310
    assert abs(int(a["deadline"]) - int(b["deadline"])) <= 10
    # the Python digest used above recovers the reference client's signer too
    chain_id = int(req["network"].split(":")[1])
    sig = bytes.fromhex(theirs["signature"][2:])
    assert ecrecover(permit2_digest(chain_id, b), sig) == ref["address"]
