"""ProcessPayment: x402 exact on EVM chains under a session budget (B8, B21-B24)."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

import pytest

pytest.register_assert_rewrite("chain_fixtures")

from chain_fixtures import (  # noqa: E402
    DROP,
    EVM_CHAINS,
    N,
    PAYEE,
    CONTROL,
    DATA,
    ecrecover,
    error_message,
    make_boto,
    new_user,
    private_key_to_address,
    process_payment,
    random_evm_address,
    run_concurrently,
    setup_wallet,
    to_checksum_address,
    transfer_with_authorization_digest,
    wallet_address,
    x402_requirement,
)
from compat_helpers import (  # noqa: E402
    ACCOUNT_1,
    client_token,
    error_code,
    expect_error,
    expect_validation,
    http_status,
)

pytest_plugins = ["chain_fixtures"]

PAYLOAD = "paymentInput.cryptoX402.payload"
HEX64 = re.compile(r"0x[0-9a-f]{64}")
SIG = re.compile(r"0x[0-9a-f]{130}")


@dataclass
class Payer:
    """A user with an ETHEREUM instrument and a session capped at `cap` USD."""
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
    def make(cap: str | None = "1.00", network: str = "ETHEREUM", expiry: int = 60) -> Payer:
        user = new_user()
        inst = make_instrument(wallet, user, network)
        sess = make_session(wallet, user, cap=cap, expiry=expiry)
        return Payer(wallet, user, inst, sess["paymentSessionId"])

    return make


def pay(client, p: Payer, requirement, version="2", **kw):
    return process_payment(client, p.wallet, p.user, p.session_id, p.iid, requirement,
                           version, **kw)


def remaining(client, p: Payer) -> str | None:
    s = client.get_payment_session(userId=p.user, paymentManagerArn=p.wallet.manager_arn,
                                   paymentSessionId=p.session_id)["paymentSession"]
    lim = s.get("availableLimits")
    return lim["availableSpendAmount"]["value"] if lim else None


def check_proof(resp, p: Payer, requirement: dict, version: str, chain: str,
                t0: int, t1: int) -> dict:
    """Everything a client needs of a ProcessPayment reply; returns the scheme payload."""
    assert http_status(resp) == 200
    assert resp["status"] == "PROOF_GENERATED"
    assert uuid.UUID(resp["processPaymentId"]).version == 4, resp["processPaymentId"]
    assert resp["paymentSessionId"] == p.session_id
    assert resp["paymentInstrumentId"] == p.iid
    assert resp["paymentManagerArn"] == p.wallet.manager_arn
    assert resp["paymentType"] == "CRYPTO_X402"
    out = resp["paymentOutput"]["cryptoX402"]
    assert out["version"] == version
    payload = out["payload"]
    assert set(payload) == {"signature", "authorization"}, payload
    auth = payload["authorization"]
    assert set(auth) == {"from", "to", "value", "validAfter", "validBefore", "nonce"}, auth
    assert auth["from"] == p.address
    assert auth["to"] == to_checksum_address(requirement["payTo"])
    amount = requirement.get("amount", requirement.get("maxAmountRequired"))
    assert auth["value"] == amount
    for k in ("value", "validAfter", "validBefore"):
        assert isinstance(auth[k], str) and auth[k].isdigit(), auth
    timeout = int(requirement["maxTimeoutSeconds"])
    if version == "2":
        assert auth["validAfter"] == "0"
    else:
        assert t0 - 600 <= int(auth["validAfter"]) <= t1 - 600, (auth, t0, t1)
    assert t0 + timeout <= int(auth["validBefore"]) <= t1 + timeout, (auth, t0, t1)
    assert HEX64.fullmatch(auth["nonce"]), auth["nonce"]
    assert SIG.fullmatch(payload["signature"]), payload["signature"]
    sig = bytes.fromhex(payload["signature"][2:])
    assert sig[64] in (27, 28), "v must be 27/28"
    assert int.from_bytes(sig[32:64], "big") <= N // 2, "s must be low"
    digest = transfer_with_authorization_digest(EVM_CHAINS[chain].domain(), auth)
    assert ecrecover(digest, sig) == p.address, "the signature does not recover the wallet"
    return payload


# ---------------------------------------------------------------- happy paths


@pytest.mark.parametrize("chain", ["BASE_SEPOLIA", "BASE", "ETHEREUM"])
@pytest.mark.parametrize("version", ["1", "2"])
def test_happy_path(dp, dp_server, make_payer, chain, version):
    p = make_payer("1.00")
    req = x402_requirement(chain, version, "100000", PAYEE)
    t0 = dp_server.now()
    resp = pay(dp, p, req, version)
    t1 = dp_server.now()
    payload = check_proof(resp, p, req, version, chain, t0, t1)
    # signed for this chain's domain only
    other = next(c for c in EVM_CHAINS if c != chain)
    wrong = transfer_with_authorization_digest(EVM_CHAINS[other].domain(), payload["authorization"])
    assert ecrecover(wrong, bytes.fromhex(payload["signature"][2:])) != p.address
    assert remaining(dp, p) == "0.90"


def test_both_spellings_in_both_versions(dp, dp_server, make_payer):
    """B22: v1 names and CAIP-2 ids, maxAmountRequired and amount, in either version;
    lower-case addresses are accepted and the authorization uses EIP-55."""
    p = make_payer("1.00")
    c = EVM_CHAINS["BASE_SEPOLIA"]
    payee = random_evm_address()
    cases = [
        ("1", x402_requirement("BASE_SEPOLIA", "1", "100000", payee.lower(),
                               asset=c.usdc.lower(), network=c.caip2)),
        ("2", x402_requirement("BASE_SEPOLIA", "2", "100000", payee.lower(), network=c.v1)),
        ("2", x402_requirement("BASE_SEPOLIA", "1", "100000", payee)),  # maxAmountRequired
        ("1", x402_requirement("BASE_SEPOLIA", "2", "100000", payee)),  # amount
        ("2", x402_requirement("BASE_SEPOLIA", "2", "100000", payee, maxAmountRequired="100000")),
        ("2", x402_requirement("BASE_SEPOLIA", "2", "100000", payee, maxTimeoutSeconds="60")),
    ]
    for version, req in cases:
        t0 = dp_server.now()
        resp = pay(dp, p, req, version)
        t1 = dp_server.now()
        payload = check_proof(resp, p, req, version, "BASE_SEPOLIA", t0, t1)
        assert payload["authorization"]["to"] == payee
    assert remaining(dp, p) == "0.40"


def _session(client, p: Payer) -> dict:
    return client.get_payment_session(userId=p.user, paymentManagerArn=p.wallet.manager_arn,
                                      paymentSessionId=p.session_id)["paymentSession"]


def test_each_payment_is_fresh(dp, make_payer):
    p = make_payer("1.00")
    created = _session(dp, p)
    req = x402_requirement()
    time.sleep(0.01)  # timestamps have millisecond precision
    a = pay(dp, p, req)
    after = _session(dp, p)
    assert after["availableLimits"]["updatedAt"] > created["availableLimits"]["updatedAt"]
    assert after["availableLimits"]["updatedAt"] >= after["createdAt"]
    assert after["createdAt"] == created["createdAt"]
    assert a["createdAt"] >= created["createdAt"]
    b = pay(dp, p, req)
    assert a["processPaymentId"] != b["processPaymentId"]
    pa, pb = (r["paymentOutput"]["cryptoX402"]["payload"] for r in (a, b))
    assert pa["authorization"]["nonce"] != pb["authorization"]["nonce"]
    assert pa["signature"] != pb["signature"]
    assert remaining(dp, p) == "0.80"


def test_session_without_limits(dp, make_payer, dp_server):
    p = make_payer(cap=None)
    resp = pay(dp, p, x402_requirement(amount="5000000000"))  # 5000 USDC
    assert resp["status"] == "PROOF_GENERATED"
    assert remaining(dp, p) is None
    rows = dp_server.query("SELECT amount FROM payments WHERE id = ?", resp["processPaymentId"])
    assert rows[0]["amount"] == "5000000000"


def test_over_budget_single_payment(dp, make_payer):
    p = make_payer("1.00")
    err = expect_validation(lambda: pay(dp, p, x402_requirement(amount="1500000")),
                            field=None, reason=None)
    msg = error_message(err)
    assert "Insufficient budget" in msg and "1.00" in msg and "1.50" in msg, msg
    assert remaining(dp, p) == "1.00"
    # exactly the remaining budget is fine
    assert pay(dp, p, x402_requirement(amount="1000000"))["status"] == "PROOF_GENERATED"
    assert remaining(dp, p) == "0.00"
    err = expect_validation(lambda: pay(dp, p, x402_requirement(amount="1")), field=None,
                            reason=None)
    assert "Insufficient budget" in error_message(err)
    assert "0.00" in error_message(err) and "0.000001" in error_message(err)


# ---------------------------------------------------------------- concurrency


def _race(dp, dp_server, p: Payer, threads: int):
    req = x402_requirement(amount="100000")
    results = run_concurrently(threads, lambda i: pay(dp, p, req, clientToken=client_token()))
    ok = [r for kind, r in results if kind == "ok"]
    errors = [e for kind, e in results if kind == "err"]
    for e in errors:
        assert getattr(e, "response", None), repr(e)
        assert error_code(e) == "ValidationException", e.response
        assert "Insufficient budget" in error_message(e), error_message(e)
    ids = {r["processPaymentId"] for r in ok}
    assert len(ids) == len(ok)
    rows = dp_server.query("SELECT id, debited, amount FROM payments WHERE session_id = ?",
                           p.session_id)
    assert {r["id"] for r in rows} == ids
    return ok, errors, rows


def test_concurrent_payments_never_beat_the_cap(dp, dp_server, make_payer):
    p = make_payer("1.00")
    ok, errors, rows = _race(dp, dp_server, p, 64)
    assert len(ok) == 10, f"{len(ok)} payments signed under a 1.00 cap"
    assert len(errors) == 54
    assert remaining(dp, p) == "0.00"
    assert sum(r["debited"] for r in rows) == 1_000_000


def test_concurrent_payments_leave_the_remainder(dp, dp_server, make_payer):
    p = make_payer("1.05")
    ok, errors, rows = _race(dp, dp_server, p, 32)
    assert len(ok) == 10 and len(errors) == 22
    assert remaining(dp, p) == "0.05"
    assert sum(r["debited"] for r in rows) == 1_050_000 - 50_000


# ------------------------------------------------------------ validation (B24)

_MPP = {"mpp": {"version": "1", "wwwAuthenticateHeaders": [
    'Payment id="abc", realm="shop.example", method="evm", intent="charge", request="e30"']}}


def _bad_checksum(addr: str) -> str:
    i = next(i for i, ch in enumerate(addr[2:], 2) if ch.isalpha())
    return addr[:i] + addr[i].swapcase() + addr[i + 1:]


CATALOGUE = [
    # (id, version, requirement overrides, field)
    ("missing-scheme", "2", {"scheme": DROP}, f"{PAYLOAD}.scheme"),
    ("unknown-scheme", "2", {"scheme": "fancy"}, f"{PAYLOAD}.scheme"),
    # upto itself is tested in test_data_payments_upto.py; without a facilitator it is refused
    ("upto-v2", "2", {"scheme": "upto"}, f"{PAYLOAD}.extra.facilitatorAddress"),
    ("upto-v1", "1", {"scheme": "upto"}, f"{PAYLOAD}.scheme"),
    ("missing-network", "2", {"network": DROP}, f"{PAYLOAD}.network"),
    ("unknown-network", "2", {"network": "eip155:999"}, f"{PAYLOAD}.network"),
    # exact on Solana is its own kind: there the EVM asset is what is wrong.
    ("solana-network-evm-asset", "2", {"network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"},
     f"{PAYLOAD}.asset"),
    ("amount-zero", "2", {"amount": "0"}, f"{PAYLOAD}.amount"),
    ("amount-negative", "2", {"amount": "-5"}, f"{PAYLOAD}.amount"),
    ("amount-decimal", "2", {"amount": "1.5"}, f"{PAYLOAD}.amount"),
    ("amount-text", "2", {"amount": "abc"}, f"{PAYLOAD}.amount"),
    ("amount-number", "2", {"amount": 100000}, f"{PAYLOAD}.amount"),
    ("amount-missing", "2", {"amount": DROP}, f"{PAYLOAD}.amount"),
    ("amounts-differ", "2", {"maxAmountRequired": "200000"}, f"{PAYLOAD}.amount"),
    ("v1-amount-zero", "1", {"maxAmountRequired": "0"}, f"{PAYLOAD}.maxAmountRequired"),
    ("v1-amount-negative", "1", {"maxAmountRequired": "-5"}, f"{PAYLOAD}.maxAmountRequired"),
    ("asset-not-usdc", "2", {"asset": "0x1111111111111111111111111111111111111111"},
     f"{PAYLOAD}.asset"),
    ("asset-other-chain", "2", {"asset": EVM_CHAINS["ETHEREUM"].usdc}, f"{PAYLOAD}.asset"),
    ("asset-missing", "2", {"asset": DROP}, f"{PAYLOAD}.asset"),
    ("payto-short", "2", {"payTo": "0x1234"}, f"{PAYLOAD}.payTo"),
    ("payto-not-hex", "2", {"payTo": "0x" + "zz" * 20}, f"{PAYLOAD}.payTo"),
    ("payto-zero", "2", {"payTo": "0x" + "00" * 20}, f"{PAYLOAD}.payTo"),
    ("payto-bad-checksum", "2", {"payTo": _bad_checksum(PAYEE)}, f"{PAYLOAD}.payTo"),
    ("payto-missing", "2", {"payTo": DROP}, f"{PAYLOAD}.payTo"),
    ("extra-missing", "2", {"extra": DROP}, f"{PAYLOAD}.extra.name"),
    ("extra-name-missing", "2", {"extra": {"version": "2"}}, f"{PAYLOAD}.extra.name"),
    ("extra-version-missing", "2", {"extra": {"name": "USDC"}}, f"{PAYLOAD}.extra.version"),
    ("extra-name-empty", "1", {"extra": {"name": "", "version": "2"}}, f"{PAYLOAD}.extra.name"),
    ("timeout-zero", "2", {"maxTimeoutSeconds": 0}, f"{PAYLOAD}.maxTimeoutSeconds"),
    ("timeout-negative", "2", {"maxTimeoutSeconds": -1}, f"{PAYLOAD}.maxTimeoutSeconds"),
    ("timeout-text", "2", {"maxTimeoutSeconds": "soon"}, f"{PAYLOAD}.maxTimeoutSeconds"),
    ("timeout-missing", "2", {"maxTimeoutSeconds": DROP}, f"{PAYLOAD}.maxTimeoutSeconds"),
    ("version-3", "3", {}, "paymentInput.cryptoX402.version"),
    ("version-empty", "", {}, "paymentInput.cryptoX402.version"),
]


@pytest.mark.parametrize("version,overrides,field", [c[1:] for c in CATALOGUE],
                         ids=[c[0] for c in CATALOGUE])
def test_validation_catalogue(dp_nv, dp_server, make_payer, version, overrides, field):
    p = make_payer("1.00")
    req = x402_requirement("BASE_SEPOLIA", version if version in ("1", "2") else "2",
                           **overrides)
    expect_validation(lambda: pay(dp_nv, p, req, version), field=field)
    assert remaining(dp_nv, p) == "1.00"
    assert dp_server.query("SELECT count(*) AS n FROM payments WHERE session_id = ?",
                           p.session_id)[0]["n"] == 0


def test_validation_of_the_input_shape(dp, dp_nv, dp_server, make_payer):
    p = make_payer("1.00")
    req = x402_requirement()
    cases = [
        (lambda: pay(dp_nv, p, [req]), PAYLOAD),                         # the whole accepts list
        (lambda: pay(dp_nv, p, "scheme=exact"), PAYLOAD),
        (lambda: pay(dp, p, req, permit2AllowanceLimit="1000000"),
         "paymentInput.cryptoX402.permit2AllowanceLimit"),
        (lambda: pay(dp, p, req, paymentInput=_MPP), "paymentInput"),   # CRYPTO_X402 + mpp
        (lambda: pay(dp_nv, p, req, paymentType="CARD"), "paymentType"),
    ]
    for call, field in cases:
        expect_validation(call, field=field)
    # MPP is read as MPP (test_data_payments_mpp.py has the rest): this challenge's
    # request is `{}`, so its evm methodDetails are missing.
    err = expect_validation(lambda: pay(dp, p, req, paymentType="MPP", paymentInput=_MPP),
                            field="paymentInput.mpp.wwwAuthenticateHeaders[0].request.methodDetails")
    assert "is required" in error_message(err)
    assert remaining(dp, p) == "1.00"
    assert dp_server.query("SELECT count(*) AS n FROM payments WHERE session_id = ?",
                           p.session_id)[0]["n"] == 0


def test_solana_instrument_cannot_pay_evm(dp, make_payer):
    p = make_payer("1.00", network="SOLANA")
    err = expect_validation(lambda: pay(dp, p, x402_requirement()),
                            field=f"{PAYLOAD}.network")
    assert p.iid in error_message(err) or "SOLANA" in error_message(err)
    assert remaining(dp, p) == "1.00"


# -------------------------------------------------------------- session states


def test_unknown_and_foreign_sessions(dp, dp2, wallet, make_payer, make_session, make_wallet):
    p = make_payer("1.00")
    req = x402_requirement()
    # another account naming this manager's ARN: 403 (B32)
    expect_error(lambda: pay(dp2, p, req), "AccessDeniedException", 403)
    # the same user's session under another manager of the account is not this one's
    other_wallet = make_wallet(1)
    elsewhere = make_session(other_wallet, p.user, cap="1.00")["paymentSessionId"]
    err = expect_validation(lambda: process_payment(dp, wallet, p.user, elsewhere, p.iid, req),
                            field=None, reason=None)
    assert "Payment session not found" in error_message(err)
    missing = "payment-session-000000000000000"
    err = expect_validation(lambda: process_payment(dp, wallet, p.user, missing, p.iid, req),
                            field=None, reason=None)
    assert "Payment session not found" in error_message(err)
    # another user's session (same manager): the same answer, and its budget is untouched
    other = new_user()
    theirs = make_session(wallet, other, cap="1.00")["paymentSessionId"]
    err = expect_validation(lambda: process_payment(dp, wallet, p.user, theirs, p.iid, req),
                            field=None, reason=None)
    assert "Payment session not found" in error_message(err)
    assert dp.get_payment_session(userId=other, paymentManagerArn=wallet.manager_arn,
                                  paymentSessionId=theirs)["paymentSession"][
        "availableLimits"]["availableSpendAmount"]["value"] == "1.00"
    # a deleted session
    dp.delete_payment_session(userId=p.user, paymentManagerArn=wallet.manager_arn,
                              paymentSessionId=p.session_id)
    err = expect_validation(lambda: pay(dp, p, req), field=None, reason=None)
    assert "Payment session not found" in error_message(err)


def test_instrument_states(dp, wallet, make_payer, make_instrument):
    p = make_payer("1.00")
    req = x402_requirement()
    # another user's instrument
    theirs = make_instrument(wallet, new_user())["paymentInstrumentId"]
    err = expect_validation(lambda: process_payment(dp, wallet, p.user, p.session_id, theirs,
                                                    req), field=None, reason=None)
    assert "instrument" in error_message(err).lower()
    # a missing one
    err = expect_validation(lambda: process_payment(
        dp, wallet, p.user, p.session_id, "payment-instrument-000000000000000", req),
        field=None, reason=None)
    assert "instrument" in error_message(err).lower()
    # a deleted one
    dp.delete_payment_instrument(userId=p.user, paymentManagerArn=wallet.manager_arn,
                                 paymentConnectorId=wallet.connector_id, paymentInstrumentId=p.iid)
    err = expect_validation(lambda: pay(dp, p, req), field=None, reason=None)
    assert "instrument" in error_message(err).lower()
    assert remaining(dp, p) == "1.00"


def test_expired_session(start_server):
    """A server of its own: moving the clock must not disturb the other tests."""
    server = start_server("clock")
    control = make_boto(server, CONTROL)
    data = make_boto(server, DATA)
    w = setup_wallet(control, ACCOUNT_1)
    user = new_user()
    iid = data.create_payment_instrument(
        userId=user, paymentManagerArn=w.manager_arn, paymentConnectorId=w.connector_id,
        paymentInstrumentType="EMBEDDED_CRYPTO_WALLET",
        paymentInstrumentDetails={"embeddedCryptoWallet": {"network": "ETHEREUM",
                                                           "linkedAccounts": []}},
    )["paymentInstrument"]["paymentInstrumentId"]
    sid = data.create_payment_session(
        userId=user, paymentManagerArn=w.manager_arn, expiryTimeInMinutes=15,
        limits={"maxSpendAmount": {"value": "1.00", "currency": "USD"}},
    )["paymentSession"]["paymentSessionId"]
    req = x402_requirement()
    assert process_payment(data, w, user, sid, iid, req)["status"] == "PROOF_GENERATED"
    start = server.now()
    server.advance_clock(14 * 60)
    t0 = server.now()
    resp = process_payment(data, w, user, sid, iid, req)
    auth = resp["paymentOutput"]["cryptoX402"]["payload"]["authorization"]
    assert int(auth["validBefore"]) >= t0 + 300 >= start + 14 * 60 + 300  # the moved clock
    server.advance_clock(2 * 60)  # 16 minutes after creation
    # Business time moved; signatures are still checked against the real time, so a
    # plain client keeps working.
    err = expect_validation(lambda: process_payment(data, w, user, sid, iid, req),
                            field=None, reason=None)
    assert "expired" in error_message(err), error_message(err)
    got = data.get_payment_session(userId=user, paymentManagerArn=w.manager_arn,
                                   paymentSessionId=sid)["paymentSession"]
    assert got["paymentSessionId"] == sid
    assert got["availableLimits"]["availableSpendAmount"]["value"] == "0.80"


# ----------------------------------------------------------------- idempotency


def test_idempotent_replay(dp, dp_server, wallet, make_payer):
    p = make_payer("1.00")
    req = x402_requirement()
    token = client_token()
    a = pay(dp, p, req, clientToken=token)
    b = pay(dp, p, req, clientToken=token)
    assert a["processPaymentId"] == b["processPaymentId"]
    assert a["paymentOutput"] == b["paymentOutput"]
    assert remaining(dp, p) == "0.90"
    # the agent name is not part of the request's identity
    c = pay(dp, p, req, clientToken=token, agentName="another-agent")
    assert c["processPaymentId"] == a["processPaymentId"]
    # same token, another amount: refused, nothing debited
    expect_validation(lambda: pay(dp, p, x402_requirement(amount="200000"), clientToken=token),
                      reason="IdempotentParameterMismatchException")
    assert remaining(dp, p) == "0.90"
    # still answered after the session is gone (B8)
    dp.delete_payment_session(userId=p.user, paymentManagerArn=wallet.manager_arn,
                              paymentSessionId=p.session_id)
    d = pay(dp, p, req, clientToken=token)
    assert d["processPaymentId"] == a["processPaymentId"]
    assert d["paymentOutput"] == a["paymentOutput"]
    assert dp_server.query("SELECT count(*) AS n FROM payments WHERE client_token = ?",
                           token)[0]["n"] == 1


def test_concurrent_same_token(dp, dp_server, make_payer):
    p = make_payer("1.00")
    req = x402_requirement()
    token = client_token()
    results = run_concurrently(16, lambda i: pay(dp, p, req, clientToken=token))
    assert all(kind == "ok" for kind, _ in results), results
    ids = {r["processPaymentId"] for _, r in results}
    sigs = {r["paymentOutput"]["cryptoX402"]["payload"]["signature"] for _, r in results}
    assert len(ids) == 1 and len(sigs) == 1, (ids, sigs)
    assert remaining(dp, p) == "0.90"
    rows = dp_server.query("SELECT id FROM payments WHERE session_id = ?", p.session_id)
    assert [r["id"] for r in rows] == list(ids)


# ----------------------------------------------------------------------- audit


def test_every_payment_is_audited(dp, dp_server, make_payer):
    p = make_payer("1.00")
    payees = [random_evm_address() for _ in range(3)]
    replies = [pay(dp, p, x402_requirement(chain, v, amt, payee), v)
               for chain, v, amt, payee in [("BASE_SEPOLIA", "2", "100000", payees[0]),
                                            ("BASE", "1", "250000", payees[1]),
                                            ("ETHEREUM", "2", "1", payees[2])]]
    conn = dp_server.db()
    try:
        rows = [dict(r) for r in conn.execute(
            "SELECT * FROM payments WHERE session_id = ? ORDER BY created_at", (p.session_id,))]
    finally:
        conn.close()
    assert {r["id"] for r in rows} == {r["processPaymentId"] for r in replies}
    by_id = {r["id"]: r for r in rows}
    expected = [("eip155:84532", "100000", 100000, "2"), ("base", "250000", 250000, "1"),
                ("eip155:1", "1", 1, "2")]
    for reply, payee, (network, amount, debited, version) in zip(replies, payees, expected):
        row = by_id[reply["processPaymentId"]]
        assert row["session_id"] == p.session_id
        assert row["instrument_id"] == p.iid
        assert row["user_id"] == p.user
        assert row["account_id"] == ACCOUNT_1
        assert row["payee"] == payee
        assert row["payer"] == p.address
        assert row["amount"] == amount and row["debited"] == debited
        assert row["network"] == network
        assert row["scheme"] == "exact"
        assert row["version"] == version
        assert row["payment_type"] == "CRYPTO_X402"
        assert abs(row["created_at"] - round(reply["createdAt"].timestamp() * 1000)) <= 1
    assert remaining(dp, p) == "0.649999"  # 1.00 - 0.10 - 0.25 - 0.000001

    # nothing key-like besides the public signature: no 32-byte window of any column
    # (text hex runs or blobs) is the private key of the paying wallet
    columns = set(rows[0])
    assert not {c for c in columns if "key" in c or "secret" in c}, columns
    for row in rows:
        for col, value in row.items():
            chunks: list[bytes] = []
            if isinstance(value, bytes):
                chunks.append(value)
            elif isinstance(value, str):
                chunks += [bytes.fromhex(h) for h in re.findall(r"(?:[0-9a-fA-F]{2}){32,}", value)]
            for chunk in chunks:
                for off in range(len(chunk) - 31):
                    assert private_key_to_address(chunk[off:off + 32]) != p.address, (
                        f"payments.{col} holds the wallet key")
