"""ProcessPayment with paymentType MPP, method `solana`, intent `charge` (B23, B27: pull
mode, server-sponsored fees), against a Purser whose SOLANA and SOLANA_DEVNET RPC is the
litesvm-backed loopback endpoint (tests/chain/svm.mjs). The merchant is
tests/chain/mpp_svm.mjs: the reference mppx server issues the HMAC-bound challenge and
checks the credential's echo; the `solana` method checks the transaction as the draft's
pull-mode verification says, co-signs it with its fee payer key, simulates it with
signature verification and sends it; the SPL Token program on the SVM moves the tokens,
and the balances move by exactly the amount. Every refusal consumes no budget."""

from __future__ import annotations

import base64
import json
import secrets
import uuid

import pytest

pytest.register_assert_rewrite("chain_fixtures", "svm_fixtures", "mpp_helpers")

from chain_fixtures import (  # noqa: E402
    create_instrument,
    error_message,
    new_user,
    run_node,
    wallet_address,
)
from compat_helpers import expect_validation  # noqa: E402
from mpp_helpers import (  # noqa: E402
    HEADER,
    REQ,
    Payer,
    available,
    credential_json,
    edited,
    pay_mpp,
    request_of,
)
from svm_fixtures import random_solana_address  # noqa: E402

pytest_plugins = ["chain_fixtures", "svm_fixtures"]

CAIP2 = {"SOLANA": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
         "SOLANA_DEVNET": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"}


class Merchant:
    """An MPP `solana` merchant (mpp_svm.mjs) on the session SVM."""

    def __init__(self, chain, network: str | None = "devnet", sponsor: bool = True):
        self.chain = chain
        self.secret = secrets.token_hex(32)
        self.realm = "shop.test"
        self.recipient = random_solana_address()
        self.network = network
        self.sponsor = sponsor
        self.chain_name = "SOLANA_DEVNET" if network == "devnet" else "SOLANA"
        chain.fund(self.recipient, 0, self.chain_name)  # its token account exists

    def _run(self, op: str, **extra) -> dict:
        body = {"secretKey": self.secret, "realm": self.realm, "recipient": self.recipient,
                "sponsor": self.sponsor, **extra}
        if self.network:
            body["network"] = self.network
        return run_node(["mpp_svm.mjs", op, self.chain.url], body, timeout=90)

    def challenge(self, amount: str = "250000", **extra) -> str:
        out = self._run("challenge", amount=amount, **extra)
        assert out["status"] == 402, out
        return out["wwwAuthenticate"]

    def pay(self, credential: str, amount: str = "250000", **extra) -> dict:
        return self._run("pay", amount=amount, credential=credential, **extra)

    def balance(self) -> int:
        return self.chain.balance(self.recipient, self.chain_name)


@pytest.fixture
def make_payer(sdp, swallet, svm_chain):
    def make(chain: str = "SOLANA_DEVNET", funds: int = 1_000_000, network: str = "SOLANA",
             cap: str = "1.00") -> Payer:
        user = new_user()
        inst = create_instrument(sdp, swallet, user, network)["paymentInstrument"]
        if network == "SOLANA":
            svm_chain.fund(wallet_address(inst), funds, chain)
        sess = sdp.create_payment_session(
            userId=user, paymentManagerArn=swallet.manager_arn, expiryTimeInMinutes=60,
            limits={"maxSpendAmount": {"value": cap, "currency": "USD"}})["paymentSession"]
        return Payer(user, inst, sess["paymentSessionId"])

    return make


def test_merchant_verifies_cosigns_and_settles_purser_transaction(sdp, swallet, make_payer,
                                                                  svm_chain):
    p = make_payer()
    merchant = Merchant(svm_chain)
    header = merchant.challenge("250000", externalId="order-42", recentBlockhash=True)
    assert request_of(header)["methodDetails"]["feePayer"] is True
    resp = pay_mpp(sdp, swallet, p, [header])
    assert resp["paymentType"] == "MPP" and resp["status"] == "PROOF_GENERATED"
    out = resp["paymentOutput"]["mpp"]
    body = credential_json(out["paymentCredential"])
    assert out["selectedPaymentId"] == body["challenge"]["id"]
    assert body["payload"]["type"] == "transaction"
    assert set(body["payload"]) == {"type", "transaction"}
    assert body["source"] == f"did:pkh:{CAIP2['SOLANA_DEVNET']}:{p.address}"
    assert available(sdp, swallet, p) == "0.75"

    before_fee_payer = svm_chain.rpc("getBalance", [svm_chain.fee_payer])["value"]
    paid = merchant.pay(out["paymentCredential"], externalId="order-42")
    assert paid["status"] == 200, paid
    assert paid["receipt"] and paid["signature"], paid
    assert merchant.balance() == 250_000
    assert svm_chain.balance(p.address, "SOLANA_DEVNET") == 1_000_000 - 250_000
    # the merchant's fee payer paid the fee; the payer has no SOL at all
    assert svm_chain.rpc("getBalance", [svm_chain.fee_payer])["value"] < before_fee_payer
    assert svm_chain.rpc("getBalance", [p.address])["value"] == 0
    # the same credential cannot be settled twice (the SVM refuses the same transaction)
    again = merchant.pay(out["paymentCredential"], externalId="order-42")
    assert again["status"] == 402, again
    assert svm_chain.balance(p.address, "SOLANA_DEVNET") == 750_000


def test_mainnet_by_default_with_the_blockhash_read_by_purser(sdp, swallet, make_payer,
                                                              svm_chain):
    p = make_payer(chain="SOLANA")
    merchant = Merchant(svm_chain, network=None)
    header = merchant.challenge("100000")
    details = request_of(header)["methodDetails"]
    assert "network" not in details and "recentBlockhash" not in details
    out = pay_mpp(sdp, swallet, p, [header])["paymentOutput"]["mpp"]
    assert credential_json(out["paymentCredential"])["source"].startswith(
        f"did:pkh:{CAIP2['SOLANA']}:")
    paid = merchant.pay(out["paymentCredential"], "100000")
    assert paid["status"] == 200, paid
    assert merchant.balance() == 100_000
    assert svm_chain.balance(p.address, "SOLANA") == 900_000


def test_a_tampered_credential_is_refused_by_the_merchant(sdp, swallet, make_payer, svm_chain):
    p = make_payer()
    merchant = Merchant(svm_chain)
    header = merchant.challenge("50000")
    cred = pay_mpp(sdp, swallet, p, [header])["paymentOutput"]["mpp"]["paymentCredential"]
    body = credential_json(cred)
    tx = bytearray(base64.b64decode(body["payload"]["transaction"]))
    tx[65] ^= 1  # the payer's signature
    body["payload"]["transaction"] = base64.b64encode(bytes(tx)).decode()
    forged = "Payment " + base64.urlsafe_b64encode(
        json.dumps(body).encode()).decode().rstrip("=")
    assert merchant.pay(forged, "50000")["status"] == 402
    # another amount for the same route is not this challenge
    assert merchant.pay(cred, "60000")["status"] == 402
    assert merchant.balance() == 0
    assert merchant.pay(cred, "50000")["status"] == 200
    assert merchant.balance() == 50_000


def test_the_payer_pays_the_fee_only_when_asked(sdp, swallet, make_payer, svm_chain):
    p = make_payer()
    merchant = Merchant(svm_chain, sponsor=False)
    header = merchant.challenge("40000")
    assert "feePayer" not in request_of(header)["methodDetails"]
    for flag in (None, False):
        err = expect_validation(lambda: pay_mpp(sdp, swallet, p, [header], buyer_pays=flag),
                                field="paymentInput.mpp.buyerPaysGasFees")
        assert "does not sponsor" in error_message(err)
    assert available(sdp, swallet, p) == "1.00"
    svm_chain.rpc("test_airdrop", [p.address, 10_000_000])
    out = pay_mpp(sdp, swallet, p, [header], buyer_pays=True)["paymentOutput"]["mpp"]
    tx = base64.b64decode(credential_json(out["paymentCredential"])["payload"]["transaction"])
    assert tx[0] == 1, "one signature: the payer is the fee payer"
    paid = merchant.pay(out["paymentCredential"], "40000")
    assert paid["status"] == 200, paid
    assert merchant.balance() == 40_000
    assert svm_chain.rpc("getBalance", [p.address])["value"] < 10_000_000
    assert available(sdp, swallet, p) == "0.96"


def test_every_refusal_names_the_problem_and_costs_nothing(sdp, swallet, make_payer,
                                                           svm_chain):
    p = make_payer()
    merchant = Merchant(svm_chain)
    good = merchant.challenge("250000")
    cases = [
        (edited(good, currency="sol"), f"{REQ}.currency", "native SOL"),
        (edited(good, currency="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"), f"{REQ}.currency",
         "not the USDC mint of SOLANA_DEVNET"),
        (edited(good, amount="0"), f"{REQ}.amount", "greater than 0"),
        (edited(good, recipient="nope"), f"{REQ}.recipient", "not a Solana address"),
        (edited(good, methodDetails__network="testnet"), f"{REQ}.methodDetails.network", None),
        (edited(good, methodDetails__decimals=9), f"{REQ}.methodDetails.decimals", "must be 6"),
        (edited(good, methodDetails__splits=[{"recipient": merchant.recipient, "amount": "1"}]),
         f"{REQ}.methodDetails.splits", "not supported"),
        (edited(good, methodDetails__confidential=True), f"{REQ}.methodDetails.confidential", None),
        (edited(good, methodDetails__feePayerKey=None), f"{REQ}.methodDetails.feePayerKey",
         "is required"),
        (edited(good, methodDetails__feePayerKey=p.address), f"{REQ}.methodDetails.feePayerKey",
         "the paying wallet itself"),
        (good.replace('method="solana"', 'method="tempo"'), f"{REQ}.currency",
         "not a USD stablecoin this server pays on TEMPO_4217"),
        (merchant.challenge("250000", expires="2020-01-01T00:00:00.000Z"),
         f"{HEADER}.expires", "expired"),
    ]
    for header, field, words in cases:
        err = expect_validation(lambda: pay_mpp(sdp, swallet, p, [header]), field=field)
        if words:
            assert words in error_message(err), error_message(err)
    assert available(sdp, swallet, p) == "1.00"
    assert svm_chain.balance(p.address, "SOLANA_DEVNET") == 1_000_000


def test_an_evm_instrument_cannot_pay_a_solana_challenge(sdp, swallet, make_payer, svm_chain):
    p = make_payer(network="ETHEREUM")
    err = expect_validation(lambda: pay_mpp(sdp, swallet, p,
                                            [Merchant(svm_chain).challenge()]),
                            field="paymentInput.mpp.wwwAuthenticateHeaders")
    assert "does not match" in error_message(err)
    assert available(sdp, swallet, p) == "1.00"


def test_idempotency_returns_the_same_credential_and_debits_once(sdp, swallet, make_payer,
                                                                 svm_chain):
    p = make_payer()
    merchant = Merchant(svm_chain)
    header = merchant.challenge("300000")
    token = str(uuid.uuid4())
    first = pay_mpp(sdp, swallet, p, [header], clientToken=token)
    replay = pay_mpp(sdp, swallet, p, [header], clientToken=token)
    assert replay["processPaymentId"] == first["processPaymentId"]
    assert replay["paymentOutput"] == first["paymentOutput"]
    assert available(sdp, swallet, p) == "0.70"
    paid = merchant.pay(first["paymentOutput"]["mpp"]["paymentCredential"], "300000")
    assert paid["status"] == 200, paid
    # the ceiling: 0.70 left, a 0.80 challenge is refused without a debit
    err = expect_validation(lambda: pay_mpp(sdp, swallet, p, [merchant.challenge("800000")]))
    assert "Insufficient budget" in error_message(err), error_message(err)
    assert available(sdp, swallet, p) == "0.70"


def test_concurrent_payments_spend_the_budget_exactly(sdp, swallet, make_payer, svm_chain):
    """1.00 USD and 10 concurrent 0.30 payments: exactly 3 go through, 0.10 is left."""
    import threading

    p = make_payer()
    header = Merchant(svm_chain).challenge("300000")
    results: list = [None] * 10
    barrier = threading.Barrier(10)

    def worker(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = pay_mpp(sdp, swallet, p, [header])
        except Exception as e:  # noqa: BLE001 - counted below
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ok = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if not isinstance(r, dict)]
    assert len(ok) == 3, results
    assert all("Insufficient budget" in error_message(e) for e in refused), refused
    assert available(sdp, swallet, p) == "0.10"


def test_official_sdk_pays_a_solana_merchant(svm_server, sdp, swallet, make_payer, svm_chain,
                                             monkeypatch):
    """bedrock-agentcore's PaymentManager.generate_payment_header on a 402 carrying a
    `solana` challenge, with a SOLANA instrument."""
    import boto3
    import bedrock_agentcore.payments.manager as sdk_manager

    p = make_payer()
    merchant = Merchant(svm_chain)
    monkeypatch.setattr(sdk_manager, "DP_ENDPOINT_OVERRIDE", svm_server.endpoint)
    session = boto3.Session(aws_access_key_id=svm_server.creds.access_key_id,
                            aws_secret_access_key=svm_server.creds.secret_access_key,
                            region_name="us-east-1")
    pm = sdk_manager.PaymentManager(payment_manager_arn=swallet.manager_arn,
                                    region_name="us-east-1", boto3_session=session)
    header = merchant.challenge("200000")
    out = pm.generate_payment_header(
        user_id=p.user, payment_instrument_id=p.iid, payment_session_id=p.session_id,
        payment_required_request={"statusCode": 402,
                                  "headers": {"WWW-Authenticate": header}, "body": {}})
    cred = out["Authorization"]
    assert cred.startswith("Payment ")
    paid = merchant.pay(cred, "200000")
    assert paid["status"] == 200, paid
    assert merchant.balance() == 200_000
    assert available(sdp, swallet, p) == "0.80"
