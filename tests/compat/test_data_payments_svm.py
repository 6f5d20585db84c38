"""ProcessPayment: x402 exact on Solana (B21-B24, B27) against a Purser whose SOLANA and
SOLANA_DEVNET RPC is a litesvm-backed loopback endpoint (tests/chain/svm.mjs). The proof
of every signed payment is the x402 reference facilitator (npm @x402/svm) verifying AND
settling it on that same SVM, and the token balances moving by exactly the amount."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass

import boto3
import pytest
from botocore.exceptions import ClientError

pytest.register_assert_rewrite("chain_fixtures", "svm_fixtures")

from chain_fixtures import (  # noqa: E402
    CONTROL,
    DATA,
    DROP,
    all_dead_rpc,
    create_instrument,
    dead_url,
    error_message,
    make_boto,
    new_user,
    process_payment,
    run_concurrently,
    setup_wallet,
    wallet_address,
    x402_requirement,
)
from compat_helpers import ACCOUNT_1, expect_validation, http_status  # noqa: E402
from conftest import CREDS_1, REGION  # noqa: E402
from svm_fixtures import (  # noqa: E402
    SOLANA_USDC,
    random_solana_address,
    svm_facilitate,
    svm_payment_payload,
    svm_requirement,
)

pytest_plugins = ["chain_fixtures", "svm_fixtures"]

PAYLOAD = "paymentInput.cryptoX402.payload"


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
def make_payer(sdp, swallet):
    def make(cap: str | None = "1.00", network: str = "SOLANA") -> Payer:
        user = new_user()
        inst = create_instrument(sdp, swallet, user, network)["paymentInstrument"]
        args = dict(userId=user, paymentManagerArn=swallet.manager_arn, expiryTimeInMinutes=60)
        if cap is not None:
            args["limits"] = {"maxSpendAmount": {"value": cap, "currency": "USD"}}
        sess = sdp.create_payment_session(**args)["paymentSession"]
        return Payer(swallet, user, inst, sess["paymentSessionId"])

    return make


def pay(client, p: Payer, requirement, version="2", **kw):
    return process_payment(client, p.wallet, p.user, p.session_id, p.iid, requirement,
                           version, **kw)


def remaining(client, p: Payer) -> str | None:
    s = client.get_payment_session(userId=p.user, paymentManagerArn=p.wallet.manager_arn,
                                   paymentSessionId=p.session_id)["paymentSession"]
    lim = s.get("availableLimits")
    return lim["availableSpendAmount"]["value"] if lim else None


def purser_balance(client, p: Payer, chain: str) -> int:
    """The payer's USDC as Purser reads it (GetPaymentInstrumentBalance) from the SVM."""
    resp = client.get_payment_instrument_balance(
        userId=p.user, paymentManagerArn=p.wallet.manager_arn,
        paymentConnectorId=p.wallet.connector_id, paymentInstrumentId=p.iid,
        chain=chain, token="USDC")
    return int(resp["tokenBalance"]["amount"])


def payments_of(server, p: Payer) -> int:
    return server.query("SELECT count(*) AS n FROM payments WHERE session_id = ?",
                        p.session_id)[0]["n"]


# ------------------------------------------------------------------- success


@pytest.mark.parametrize("chain", ["SOLANA_DEVNET", "SOLANA"])
@pytest.mark.parametrize("version", ["1", "2"])
def test_exact_svm_settles_on_the_reference_facilitator(sdp, svm_chain, make_payer, version,
                                                        chain):
    p = make_payer("1.00")
    payee = random_solana_address()
    svm_chain.fund(p.address, 1_000_000, chain)
    svm_chain.fund(payee, 0, chain)
    req = svm_requirement(svm_chain.fee_payer, payee, chain, version, amount="125000")
    assert purser_balance(sdp, p, chain) == 1_000_000

    resp = pay(sdp, p, req, version)
    assert http_status(resp) == 200
    assert resp["status"] == "PROOF_GENERATED"
    out = resp["paymentOutput"]["cryptoX402"]
    assert out["version"] == version
    assert set(out["payload"]) == {"transaction"}
    raw = base64.b64decode(out["payload"]["transaction"], validate=True)
    assert raw[0] == 2 and raw[1:65] == bytes(64), "fee payer slot first and left empty"
    assert float(remaining(sdp, p)) == 0.875

    payload = svm_payment_payload(version, req, out["payload"])
    verified = svm_facilitate("verify", svm_chain, version, payload, req)
    assert verified == {"isValid": True, "payer": p.address}, verified
    settled = svm_facilitate("settle", svm_chain, version, payload, req)
    assert settled["success"] is True, settled
    assert settled["payer"] == p.address
    assert svm_chain.balance(p.address, chain) == 1_000_000 - 125_000
    assert svm_chain.balance(payee, chain) == 125_000
    assert purser_balance(sdp, p, chain) == 1_000_000 - 125_000
    # Settled once: the same transaction again is refused by the facilitator.
    again = svm_facilitate("settle", svm_chain, version, payload, req)
    assert again["success"] is False, again
    assert svm_chain.balance(payee, chain) == 125_000


def test_seller_memo_is_carried(sdp, svm_chain, make_payer):
    p = make_payer("1.00")
    payee = random_solana_address()
    svm_chain.fund(p.address, 500_000)
    svm_chain.fund(payee, 0)
    req = svm_requirement(svm_chain.fee_payer, payee, amount="1000",
                          extra={"feePayer": svm_chain.fee_payer, "memo": "order-42"})
    out = pay(sdp, p, req)["paymentOutput"]["cryptoX402"]["payload"]
    assert b"order-42" in base64.b64decode(out["transaction"])
    payload = svm_payment_payload("2", req, out)
    # The facilitator checks the memo against extra.memo.
    assert svm_facilitate("settle", svm_chain, "2", payload, req)["success"] is True
    other = dict(req, extra={"feePayer": svm_chain.fee_payer, "memo": "order-43"})
    verdict = svm_facilitate("verify", svm_chain, "2", svm_payment_payload("2", other, out),
                             other)
    assert verdict["isValid"] is False


def test_two_payments_differ(sdp, svm_chain, make_payer):
    """Same amount, payee and blockhash: the random memo keeps the transactions apart."""
    p = make_payer("1.00")
    payee = random_solana_address()
    svm_chain.fund(p.address, 500_000)
    svm_chain.fund(payee, 0)
    req = svm_requirement(svm_chain.fee_payer, payee, amount="1000")
    a = pay(sdp, p, req)["paymentOutput"]["cryptoX402"]["payload"]["transaction"]
    b = pay(sdp, p, req)["paymentOutput"]["cryptoX402"]["payload"]["transaction"]
    assert a != b
    for tx in (a, b):
        r = svm_facilitate("settle", svm_chain, "2",
                           svm_payment_payload("2", req, {"transaction": tx}), req)
        assert r["success"] is True, r
    assert svm_chain.balance(payee) == 2000


# ----------------------------------------------------------------- catalogue

FEE = "FEE"  # replaced by the chain's fee payer
CATALOGUE = [
    # (id, version, overrides, field)
    ("amount-zero", "2", {"amount": "0"}, f"{PAYLOAD}.amount"),
    ("amount-negative", "2", {"amount": "-5"}, f"{PAYLOAD}.amount"),
    ("amount-decimal", "2", {"amount": "1.5"}, f"{PAYLOAD}.amount"),
    ("amount-number", "2", {"amount": 100000}, f"{PAYLOAD}.amount"),
    ("amount-missing", "2", {"amount": DROP}, f"{PAYLOAD}.amount"),
    ("amount-over-u64", "2", {"amount": "18446744073709551616"}, f"{PAYLOAD}.amount"),
    ("v1-amount-zero", "1", {"maxAmountRequired": "0"}, f"{PAYLOAD}.maxAmountRequired"),
    ("asset-mainnet-mint-on-devnet", "2", {"asset": SOLANA_USDC["SOLANA"]}, f"{PAYLOAD}.asset"),
    ("asset-evm-usdc", "2", {"asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e"},
     f"{PAYLOAD}.asset"),
    ("asset-other-token", "2", {"asset": "So11111111111111111111111111111111111111112"},
     f"{PAYLOAD}.asset"),
    ("asset-missing", "2", {"asset": DROP}, f"{PAYLOAD}.asset"),
    ("payto-evm", "2", {"payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"},
     f"{PAYLOAD}.payTo"),
    ("payto-short", "2", {"payTo": "1111"}, f"{PAYLOAD}.payTo"),
    ("payto-not-base58", "2", {"payTo": "0OIl" * 8}, f"{PAYLOAD}.payTo"),
    ("payto-missing", "2", {"payTo": DROP}, f"{PAYLOAD}.payTo"),
    ("timeout-zero", "2", {"maxTimeoutSeconds": 0}, f"{PAYLOAD}.maxTimeoutSeconds"),
    ("timeout-negative", "2", {"maxTimeoutSeconds": -1}, f"{PAYLOAD}.maxTimeoutSeconds"),
    ("timeout-missing", "2", {"maxTimeoutSeconds": DROP}, f"{PAYLOAD}.maxTimeoutSeconds"),
    ("extra-missing", "2", {"extra": DROP}, f"{PAYLOAD}.extra.feePayer"),
    ("fee-payer-missing", "2", {"extra": {}}, f"{PAYLOAD}.extra.feePayer"),
    ("fee-payer-invalid", "2", {"extra": {"feePayer": "not-an-address"}},
     f"{PAYLOAD}.extra.feePayer"),
    ("fee-payer-evm", "1", {"extra": {"feePayer": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"}},
     f"{PAYLOAD}.extra.feePayer"),
    ("memo-too-long", "2", {"extra": {"feePayer": FEE, "memo": "m" * 257}},
     f"{PAYLOAD}.extra.memo"),
    ("upto-on-solana", "2", {"scheme": "upto"}, f"{PAYLOAD}.scheme"),
    ("version-3", "3", {}, "paymentInput.cryptoX402.version"),
]


@pytest.mark.parametrize("case", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_catalogue_consumes_no_budget(sdp, svm_server, svm_chain, make_payer, case):
    _id, version, overrides, field = case
    p = make_payer("1.00")
    req = svm_requirement(svm_chain.fee_payer, random_solana_address(),
                          version="1" if version == "1" else "2")
    for k, v in overrides.items():
        if v is DROP:
            req.pop(k, None)
        elif k == "extra" and isinstance(v, dict):
            req[k] = {ek: (svm_chain.fee_payer if ev == FEE else ev) for ek, ev in v.items()}
        else:
            req[k] = v
    err = expect_validation(lambda: pay(sdp, p, req, version), field=field)
    assert field in error_message(err)
    assert remaining(sdp, p) == "1.00"
    assert payments_of(svm_server, p) == 0


def test_permit2_allowance_limit_is_refused(sdp, svm_server, svm_chain, make_payer):
    p = make_payer("1.00")
    req = svm_requirement(svm_chain.fee_payer, random_solana_address())
    expect_validation(lambda: pay(sdp, p, req, permit2AllowanceLimit="1000000"),
                      field="paymentInput.cryptoX402.permit2AllowanceLimit")
    assert remaining(sdp, p) == "1.00"
    assert payments_of(svm_server, p) == 0


def test_fee_payer_must_not_be_the_payer(sdp, svm_server, svm_chain, make_payer):
    p = make_payer("1.00")
    req = svm_requirement(p.address, random_solana_address())
    err = expect_validation(lambda: pay(sdp, p, req), field=f"{PAYLOAD}.extra.feePayer")
    assert "facilitator" in error_message(err)
    assert remaining(sdp, p) == "1.00"
    assert payments_of(svm_server, p) == 0


def test_over_the_ceiling(sdp, svm_chain, make_payer):
    p = make_payer(None)
    req = svm_requirement(svm_chain.fee_payer, random_solana_address(),
                          amount=str(10_000_000_001))
    err = expect_validation(lambda: pay(sdp, p, req), field=None)
    assert "exceeds maximum" in error_message(err)


# ----------------------------------------------------------- instrument family


def test_evm_instrument_cannot_pay_solana(sdp, svm_server, svm_chain, make_payer):
    p = make_payer("1.00", network="ETHEREUM")
    req = svm_requirement(svm_chain.fee_payer, random_solana_address())
    err = expect_validation(lambda: pay(sdp, p, req), field=f"{PAYLOAD}.network")
    assert "ETHEREUM" in error_message(err) or p.iid in error_message(err)
    assert remaining(sdp, p) == "1.00"
    assert payments_of(svm_server, p) == 0


def test_solana_instrument_cannot_pay_evm(sdp, svm_server, make_payer):
    p = make_payer("1.00", network="SOLANA")
    err = expect_validation(lambda: pay(sdp, p, x402_requirement()), field=f"{PAYLOAD}.network")
    assert "SOLANA" in error_message(err) or p.iid in error_message(err)
    assert remaining(sdp, p) == "1.00"
    assert payments_of(svm_server, p) == 0


def test_rpc_down_fails_without_budget_or_secret(start_server, svm_chain):
    """No blockhash, no payment: the chain is named, the URL's secret part never is, and
    nothing is debited or recorded."""
    rpc = all_dead_rpc()
    rpc["SOLANA_DEVNET"] = dead_url() + "/v2/SECRETKEY123"
    server = start_server("svm-down", rpc=rpc)
    cp = make_boto(server, CONTROL)
    dp = make_boto(server, DATA, audited=False)
    w = setup_wallet(cp, ACCOUNT_1)
    user = new_user()
    inst = create_instrument(dp, w, user, "SOLANA")["paymentInstrument"]
    sess = dp.create_payment_session(
        userId=user, paymentManagerArn=w.manager_arn, expiryTimeInMinutes=60,
        limits={"maxSpendAmount": {"value": "1.00", "currency": "USD"}})["paymentSession"]
    p = Payer(w, user, inst, sess["paymentSessionId"])
    req = svm_requirement(svm_chain.fee_payer, random_solana_address())
    with pytest.raises(ClientError) as info:
        pay(dp, p, req)
    err = info.value
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] >= 500, err.response
    assert "SOLANA_DEVNET" in error_message(err), error_message(err)
    assert "SECRETKEY123" not in json.dumps(err.response)
    assert "SECRETKEY123" not in server.log_text()
    assert remaining(dp, p) == "1.00"
    assert payments_of(server, p) == 0


# ------------------------------------------------------------ budget, races


def test_budget_exhaustion(sdp, svm_server, svm_chain, make_payer):
    p = make_payer("0.30")
    req = svm_requirement(svm_chain.fee_payer, random_solana_address(), amount="100000")
    for left in ("0.2", "0.1", "0"):
        assert pay(sdp, p, req)["status"] == "PROOF_GENERATED"
        assert float(remaining(sdp, p)) == float(left)
    err = expect_validation(lambda: pay(sdp, p, req), field=None, reason=None)
    assert "Insufficient budget" in error_message(err)
    assert payments_of(svm_server, p) == 3


def test_concurrent_payments_never_overspend(sdp, svm_server, svm_chain, make_payer):
    p = make_payer("0.50")
    payee = random_solana_address()
    req = svm_requirement(svm_chain.fee_payer, payee, amount="100000")
    results = run_concurrently(12, lambda i: pay(sdp, p, req))
    ok = [r for kind, r in results if kind == "ok"]
    errs = [r for kind, r in results if kind == "err"]
    assert len(ok) == 5, results
    for e in errs:
        assert "Insufficient budget" in error_message(e), e
    assert float(remaining(sdp, p)) == 0
    assert payments_of(svm_server, p) == 5
    txs = {r["paymentOutput"]["cryptoX402"]["payload"]["transaction"] for r in ok}
    assert len(txs) == 5


def test_client_token_replay_returns_the_same_payment(sdp, svm_server, svm_chain, make_payer):
    p = make_payer("1.00")
    req = svm_requirement(svm_chain.fee_payer, random_solana_address(), amount="200000")
    token = str(uuid.uuid4())
    a = pay(sdp, p, req, clientToken=token)
    b = pay(sdp, p, req, clientToken=token)
    assert a["processPaymentId"] == b["processPaymentId"]
    assert a["paymentOutput"] == b["paymentOutput"]
    assert float(remaining(sdp, p)) == 0.8
    assert payments_of(svm_server, p) == 1


# ---------------------------------------------------------------- the SDK


def test_official_sdk_generates_a_header_the_facilitator_settles(
        svm_server, sdp, svm_chain, make_payer, monkeypatch):
    from bedrock_agentcore.payments import manager as sdk_manager

    monkeypatch.setattr(sdk_manager, "DP_ENDPOINT_OVERRIDE", svm_server.endpoint)
    session = boto3.Session(aws_access_key_id=CREDS_1.access_key_id,
                            aws_secret_access_key=CREDS_1.secret_access_key,
                            region_name=REGION)
    p = make_payer("1.00")
    pm = sdk_manager.PaymentManager(payment_manager_arn=p.wallet.manager_arn,
                                    region_name=REGION, boto3_session=session)
    payee = random_solana_address()
    svm_chain.fund(p.address, 1_000_000)
    svm_chain.fund(payee, 0)
    evm_accept = x402_requirement(amount="50000")
    sol_accept = svm_requirement(svm_chain.fee_payer, payee, amount="50000")
    required = {"x402Version": 2, "resource": {"url": "http://127.0.0.1/paid"},
                "accepts": [evm_accept, sol_accept]}
    header = pm.generate_payment_header(
        user_id=p.user, payment_instrument_id=p.iid, payment_session_id=p.session_id,
        payment_required_request={
            "statusCode": 402,
            "headers": {"payment-required": base64.b64encode(
                json.dumps(required).encode()).decode()},
            "body": {},
        })
    assert set(header) == {"PAYMENT-SIGNATURE"}, header
    payment_payload = json.loads(base64.b64decode(header["PAYMENT-SIGNATURE"]))
    assert payment_payload["accepted"] == sol_accept
    assert set(payment_payload["payload"]) == {"transaction"}
    verdict = svm_facilitate("settle", svm_chain, "2", payment_payload, sol_accept)
    assert verdict["success"] is True, verdict
    assert svm_chain.balance(payee) == 50_000
    assert float(remaining(sdp, p)) == 0.95
