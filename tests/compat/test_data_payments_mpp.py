"""ProcessPayment with paymentType MPP (B23), method `evm`, intent `charge`, against a
merchant built with the reference implementation (npm mppx 0.11.0, tests/chain/mpp.mjs):
mppx issues an HMAC-bound challenge, Purser pays it, mppx verifies the credential and
settles the EIP-3009 authorization on anvil, and the USDC balances move by exactly the
amount. Every refusal consumes no budget."""

from __future__ import annotations

import secrets
import threading
import uuid

import pytest

pytest.register_assert_rewrite("chain_fixtures")

from chain_fixtures import (  # noqa: E402
    anvil_mod,
    available,
    error_message,
    new_user,
    random_evm_address,
    run_node,
    wallet_address,
)
from compat_helpers import expect_validation  # noqa: E402
from mpp_helpers import credential_json  # noqa: E402

pytest_plugins = ["chain_fixtures"]

HEADER = "paymentInput.mpp.wwwAuthenticateHeaders[0]"


class Merchant:
    """An mppx merchant on the session anvil: a secret, a realm, a recipient."""

    def __init__(self, anvil, recipient: str | None = None):
        self.anvil = anvil
        self.secret = secrets.token_hex(32)
        self.realm = "shop.test"
        self.recipient = recipient or random_evm_address()

    def _run(self, op: str, **extra) -> dict:
        body = {"secretKey": self.secret, "realm": self.realm, "recipient": self.recipient,
                **extra}
        return run_node(["mpp.mjs", op, self.anvil.url], body)

    def challenge(self, amount: str = "0.25", **extra) -> str:
        out = self._run("challenge", amount=amount, **extra)
        assert out["status"] == 402, out
        return out["wwwAuthenticate"]

    def pay(self, credential: str, amount: str = "0.25") -> dict:
        return self._run("pay", amount=amount, credential=credential)


@pytest.fixture
def merchant(anvil_chain):
    return Merchant(anvil_chain)


@pytest.fixture
def payer(wallet, make_instrument, make_session, anvil_chain, usdc):
    user = new_user()
    inst = make_instrument(wallet, user)
    anvil_mod.mint(anvil_chain, usdc, wallet_address(inst), 1_000_000)
    sess = make_session(wallet, user, cap="1.00")
    return user, inst, sess["paymentSessionId"]


def pay_mpp(dp, wallet, user, sid, iid, headers, version="1", **kw):
    """ProcessPayment MPP; keyword arguments are top-level members (clientToken)."""
    mpp = {"version": version, "wwwAuthenticateHeaders": headers}
    return dp.process_payment(userId=user, paymentManagerArn=wallet.manager_arn,
                              paymentSessionId=sid, paymentInstrumentId=iid,
                              paymentType="MPP", paymentInput={"mpp": mpp}, **kw)


def test_mppx_verifies_and_settles_purser_credential(dp, wallet, payer, merchant, anvil_chain,
                                                     usdc):
    user, inst, sid = payer
    iid, address = inst["paymentInstrumentId"], wallet_address(inst)
    header = merchant.challenge("0.25")
    assert header.startswith("Payment ")
    resp = pay_mpp(dp, wallet, user, sid, iid, [header])
    assert resp["paymentType"] == "MPP" and resp["status"] == "PROOF_GENERATED"
    out = resp["paymentOutput"]["mpp"]
    assert out["version"] == "1"
    cred = out["paymentCredential"]
    assert cred.startswith("Payment ")
    body = credential_json(cred)
    assert out["selectedPaymentId"] == body["challenge"]["id"]
    assert body["payload"]["type"] == "authorization"
    assert body["payload"]["from"] == address
    assert body["payload"]["value"] == "250000"
    assert body["source"] == f"did:pkh:eip155:84532:{address}"
    assert available(dp, wallet, user, sid) == "0.75"

    before = anvil_mod.balance_of(anvil_chain, usdc, merchant.recipient)
    paid = merchant.pay(cred)
    assert paid["status"] == 200, paid
    assert paid["receipt"], paid
    assert anvil_mod.balance_of(anvil_chain, usdc, merchant.recipient) == before + 250_000
    assert anvil_mod.balance_of(anvil_chain, usdc, address) == 1_000_000 - 250_000
    # the same credential cannot be settled twice (the nonce is the challenge hash)
    again = merchant.pay(cred)
    assert again["status"] != 200 or again.get("settled") == [], again
    assert anvil_mod.balance_of(anvil_chain, usdc, address) == 750_000


def test_mppx_refuses_a_credential_for_another_merchant(dp, wallet, payer, merchant,
                                                        anvil_chain):
    user, inst, sid = payer
    header = merchant.challenge("0.10")
    cred = pay_mpp(dp, wallet, user, sid, inst["paymentInstrumentId"],
                   [header])["paymentOutput"]["mpp"]["paymentCredential"]
    other = Merchant(anvil_chain, recipient=merchant.recipient)  # another secret
    assert other.pay(cred, "0.10")["status"] == 402


def test_every_refusal_names_the_problem_and_costs_nothing(dp, wallet, payer, merchant):
    user, inst, sid = payer
    iid = inst["paymentInstrumentId"]
    good = merchant.challenge("0.25")
    expired = merchant.challenge("0.25", expires="2020-01-01T00:00:00.000Z")
    stripe = good.replace('method="evm"', 'method="stripe"')
    session = good.replace('intent="charge"', 'intent="session"')
    cases = [
        ([good, good], "1", "paymentInput.mpp.wwwAuthenticateHeaders", None),
        (["Bearer realm=\"x\""], "1", HEADER, "not a Payment challenge"),
        ([good.replace('id="', 'xid="')], "1", f"{HEADER}.id", "no id parameter"),
        ([stripe], "1", f"{HEADER}.method", "not supported"),
        ([good.replace('method="evm"', 'method="solana"')], "1", f"{HEADER}.request.currency",
         "not the USDC mint of SOLANA"),
        ([good.replace('method="evm"', 'method="tempo"')], "1",
         f"{HEADER}.request.methodDetails.chainId", "must be 4217 (Tempo) or 42431"),
        ([session], "1", f"{HEADER}.intent", "only \"charge\""),
        ([expired], "1", f"{HEADER}.expires", "expired"),
        ([good], "2", "paymentInput.mpp.version", None),
    ]
    for headers, version, field, words in cases:
        err = expect_validation(lambda: pay_mpp(dp, wallet, user, sid, iid, headers, version),
                                field=field)
        if words:
            assert words in error_message(err), error_message(err)
    # paymentType and paymentInput must agree
    expect_validation(lambda: dp.process_payment(
        userId=user, paymentManagerArn=wallet.manager_arn, paymentSessionId=sid,
        paymentInstrumentId=iid, paymentType="CRYPTO_X402",
        paymentInput={"mpp": {"version": "1", "wwwAuthenticateHeaders": [good]}}),
        field="paymentInput")
    assert available(dp, wallet, user, sid) == "1.00"


def test_a_solana_instrument_cannot_pay_an_evm_challenge(dp, wallet, merchant, make_instrument,
                                                         make_session):
    user = new_user()
    iid = make_instrument(wallet, user, "SOLANA")["paymentInstrumentId"]
    sid = make_session(wallet, user, cap="1.00")["paymentSessionId"]
    err = expect_validation(lambda: pay_mpp(dp, wallet, user, sid, iid,
                                            [merchant.challenge()]),
                            field="paymentInput.mpp.wwwAuthenticateHeaders")
    assert "does not match" in error_message(err)
    assert available(dp, wallet, user, sid) == "1.00"


def test_budget_concurrency_and_idempotency(dp, wallet, payer, merchant):
    user, inst, sid = payer
    iid = inst["paymentInstrumentId"]
    header = merchant.challenge("0.30")
    token = str(uuid.uuid4())
    first = pay_mpp(dp, wallet, user, sid, iid, [header], clientToken=token)
    replay = pay_mpp(dp, wallet, user, sid, iid, [header], clientToken=token)
    assert replay["processPaymentId"] == first["processPaymentId"]
    assert replay["paymentOutput"] == first["paymentOutput"]
    assert available(dp, wallet, user, sid) == "0.70"
    # 0.70 left: of 8 concurrent 0.30 payments exactly 2 go through
    results: list = [None] * 8
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = pay_mpp(dp, wallet, user, sid, iid, [header])
        except Exception as e:  # noqa: BLE001
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ok = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if not isinstance(r, dict)]
    assert len(ok) == 2, results
    assert all("Insufficient budget" in error_message(e) for e in refused), refused
    assert available(dp, wallet, user, sid) == "0.10"


def test_official_sdk_pays_an_mpp_merchant(dp_server, dp, wallet, payer, merchant,
                                           monkeypatch):
    """bedrock-agentcore's PaymentManager.generate_payment_header on a 402 from mppx."""
    import boto3
    import bedrock_agentcore.payments.manager as sdk_manager

    user, inst, sid = payer
    # The SDK reads BEDROCK_AGENTCORE_DP_ENDPOINT at import time into this name.
    monkeypatch.setattr(sdk_manager, "DP_ENDPOINT_OVERRIDE", dp_server.endpoint)
    session = boto3.Session(aws_access_key_id=dp_server.creds.access_key_id,
                            aws_secret_access_key=dp_server.creds.secret_access_key,
                            region_name="us-east-1")
    pm = sdk_manager.PaymentManager(payment_manager_arn=wallet.manager_arn,
                                    region_name="us-east-1", boto3_session=session)
    header = merchant.challenge("0.20")
    out = pm.generate_payment_header(
        user_id=user, payment_instrument_id=inst["paymentInstrumentId"],
        payment_session_id=sid,
        payment_required_request={"statusCode": 402,
                                  "headers": {"WWW-Authenticate": header}, "body": {}})
    cred = out["Authorization"]
    assert cred.startswith("Payment ")
    paid = merchant.pay(cred, "0.20")
    assert paid["status"] == 200, paid
    assert available(dp, wallet, user, sid) == "0.80"
