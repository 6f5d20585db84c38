"""ProcessPayment with paymentType MPP, method `tempo`, intent `charge` (B23, B27): Purser
signs a Tempo transaction (type 0x76, expiring nonce) of one TIP-20 `transferWithMemo`.

The chain is a real anvil started with `--network tempo --hardfork T4` (chain id 42431,
Tempo Moderato's; pathUSD at 0x20c0...0000), session-scoped and started only by this
module; Purser reads gas and fees from it through PURSER_RPC_TEMPO_42431. The merchant is
tests/chain/mpp_tempo.mjs, the reference implementation end to end (mppx 0.11.0
`tempo.charge` server): it issues the HMAC-bound challenge, verifies Purser's credential
(envelope, transfer call, challenge-bound memo, simulation), co-signs as fee payer when it
sponsors, broadcasts, and checks the receipt's Transfer logs; the pathUSD balances move by
exactly the amount. Every refusal consumes no budget."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import threading
import uuid

import pytest

pytest.register_assert_rewrite("chain_fixtures", "mpp_helpers")

from chain_fixtures import (  # noqa: E402
    CHAIN_DIR,
    CONTROL,
    DATA,
    all_dead_rpc,
    anvil_mod,
    create_instrument,
    dead_url,
    error_message,
    make_boto,
    new_user,
    random_evm_address,
    run_node,
    setup_wallet,
    start_purser,
)
from compat_helpers import ACCOUNT_1, expect_validation  # noqa: E402
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

pytest_plugins = ["chain_fixtures"]

CHAIN_ID = 42431
PATH_USD = "0x20c0000000000000000000000000000000000000"


@pytest.fixture(scope="session")
def tempo_chain():
    """anvil --network tempo (Moderato's chain id), stopped by pid at the end."""
    try:
        binary = anvil_mod.anvil_binary()
    except FileNotFoundError as e:
        msg = f"anvil is not installed ({e}); run `npm ci --prefix tests/chain`"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    assert binary.is_file()
    chain = anvil_mod.start_anvil(chain_id=CHAIN_ID,
                                  extra_args=("--network", "tempo", "--hardfork", "T4"))
    try:
        yield chain
    finally:
        chain.stop()


@pytest.fixture(scope="session")
def tempo_server(tmp_path_factory, tempo_chain):
    """A Purser whose TEMPO_42431 RPC is the tempo anvil (every other chain: dead ports)."""
    server = start_purser(tmp_path_factory.mktemp("purser-tempo"), rpc=all_dead_rpc(),
                          extra_env={"PURSER_RPC_TEMPO_42431": tempo_chain.url,
                                     "PURSER_RPC_TEMPO_4217": dead_url()})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tdp(tempo_server):
    return make_boto(tempo_server, DATA)


@pytest.fixture(scope="session")
def twallet(tempo_server):
    return setup_wallet(make_boto(tempo_server, CONTROL), ACCOUNT_1)


def balance(chain, owner: str) -> int:
    return anvil_mod.balance_of(chain, PATH_USD, owner)


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _stop_started_merchants():
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


class Merchant:
    """An mppx `tempo` merchant (mpp_tempo.mjs) on the tempo anvil."""

    def __init__(self, chain, fee_payer: bool = True):
        self.chain = chain
        self.secret = secrets.token_hex(32)
        self.realm = "shop.test"
        self.recipient = random_evm_address()
        self.fee_payer = fee_payer

    def _run(self, op: str, **extra) -> dict:
        body = {"secretKey": self.secret, "realm": self.realm, "recipient": self.recipient,
                "feePayer": self.fee_payer, **extra}
        return run_node(["mpp_tempo.mjs", op, self.chain.url], body, timeout=90)

    def challenge(self, amount: str = "0.25", **extra) -> str:
        out = self._run("challenge", amount=amount, **extra)
        assert out["status"] == 402, out
        return out["wwwAuthenticate"]

    def pay(self, credential: str, amount: str = "0.25") -> dict:
        return self._run("pay", amount=amount, credential=credential)

    def pay_started(self, amount: str = "0.25"):
        """Starts `pay` before the credential exists and returns `send(credential) ->
        result`: node loads mppx while Purser signs, so the credential's validity window
        (25 s, as the reference client signs) holds only the merchant's verification and
        broadcast, not a node start on a busy machine. The process is stopped by pid at
        the end of the test if it is still running."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        proc = subprocess.Popen(["node", "mpp_tempo.mjs", "pay", self.chain.url],
                                cwd=str(CHAIN_DIR), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        STARTED.append(proc)

        def send(credential: str) -> dict:
            body = {"secretKey": self.secret, "realm": self.realm,
                    "recipient": self.recipient, "feePayer": self.fee_payer,
                    "amount": amount, "credential": credential}
            out, err = proc.communicate(json.dumps(body), timeout=90)
            assert proc.returncode == 0, f"mpp_tempo.mjs pay failed:\n{out}\n{err}"
            return json.loads(out.strip().splitlines()[-1])

        return send

    def balance(self) -> int:
        return balance(self.chain, self.recipient)


@pytest.fixture
def make_payer(tdp, twallet, tempo_chain):
    def make(funds: int = 1_000_000, network: str = "ETHEREUM", cap: str = "1.00") -> Payer:
        user = new_user()
        inst = create_instrument(tdp, twallet, user, network)["paymentInstrument"]
        p = Payer(user, inst, "")
        if network == "ETHEREUM" and funds:
            anvil_mod.transfer(tempo_chain, PATH_USD, p.address, funds)
        sess = tdp.create_payment_session(
            userId=user, paymentManagerArn=twallet.manager_arn, expiryTimeInMinutes=60,
            limits={"maxSpendAmount": {"value": cap, "currency": "USD"}})["paymentSession"]
        p.session_id = sess["paymentSessionId"]
        return p

    return make


def test_mppx_verifies_and_settles_a_sponsored_purser_transaction(tdp, twallet, make_payer,
                                                                  tempo_chain):
    p = make_payer()
    merchant = Merchant(tempo_chain)
    header = merchant.challenge("0.25")
    req = request_of(header)
    assert req["methodDetails"] == {"chainId": CHAIN_ID, "feePayer": True}, req
    settle = merchant.pay_started()
    sponsor = tempo_chain.accounts()[1]
    sponsor_before = balance(tempo_chain, sponsor)
    resp = pay_mpp(tdp, twallet, p, [header])
    assert resp["paymentType"] == "MPP" and resp["status"] == "PROOF_GENERATED"
    out = resp["paymentOutput"]["mpp"]
    body = credential_json(out["paymentCredential"])
    assert out["selectedPaymentId"] == body["challenge"]["id"]
    assert set(body["payload"]) == {"signature", "type"}
    assert body["payload"]["type"] == "transaction"
    # the fee-payer envelope, carrying the sender's address for the sponsor
    assert body["payload"]["signature"].startswith("0x78")
    assert p.address.lower()[2:] in body["payload"]["signature"]
    assert body["source"] == f"did:pkh:eip155:{CHAIN_ID}:{p.address}"

    paid = settle(out["paymentCredential"])
    assert paid["status"] == 200, paid
    assert available(tdp, twallet, p) == "0.75"
    receipt = tempo_chain.rpc("eth_getTransactionReceipt", [paid["reference"]])
    assert int(receipt["status"], 16) == 1
    assert merchant.balance() == 250_000
    # the sponsor paid the fee: the payer lost exactly the amount
    assert balance(tempo_chain, p.address) == 1_000_000 - 250_000
    assert balance(tempo_chain, sponsor) < sponsor_before
    # the same credential cannot be settled twice: the chain runs the transaction once
    # (this merchant's replay store lives in one process, so it may answer with the
    # receipt of the transaction already mined)
    again = merchant.pay(out["paymentCredential"])
    assert again["status"] == 402 or again["reference"] == paid["reference"], again
    assert balance(tempo_chain, p.address) == 750_000
    assert merchant.balance() == 250_000
    # a tampered transaction (the transfer's amount) is refused
    raw = body["payload"]["signature"]
    amount_hex = f"{250_000:064x}"
    assert amount_hex in raw
    tampered = dict(body, payload={"signature": raw.replace(amount_hex, f"{250_001:064x}"),
                                   "type": "transaction"})
    forged = "Payment " + base64.urlsafe_b64encode(
        json.dumps(tampered).encode()).decode().rstrip("=")
    assert merchant.pay(forged)["status"] == 402
    assert merchant.balance() == 250_000


def test_the_wallet_pays_the_fee_only_when_asked(tdp, twallet, make_payer, tempo_chain):
    p = make_payer()
    merchant = Merchant(tempo_chain, fee_payer=False)
    header = merchant.challenge("0.04")
    assert "feePayer" not in request_of(header)["methodDetails"]
    for flag in (None, False):
        err = expect_validation(lambda: pay_mpp(tdp, twallet, p, [header], buyer_pays=flag),
                                field="paymentInput.mpp.buyerPaysGasFees")
        assert "does not sponsor" in error_message(err)
    assert available(tdp, twallet, p) == "1.00"
    settle = merchant.pay_started("0.04")
    out = pay_mpp(tdp, twallet, p, [header], buyer_pays=True)["paymentOutput"]["mpp"]
    raw = credential_json(out["paymentCredential"])["payload"]["signature"]
    assert raw.startswith("0x76")
    paid = settle(out["paymentCredential"])
    assert paid["status"] == 200, paid
    assert merchant.balance() == 40_000
    # the wallet paid the amount and, in its fee token (pathUSD), the fee
    spent = 1_000_000 - balance(tempo_chain, p.address)
    assert spent > 40_000, spent
    assert available(tdp, twallet, p) == "0.96"


def test_every_refusal_names_the_problem_and_costs_nothing(tdp, twallet, make_payer,
                                                           tempo_chain):
    p = make_payer()
    merchant = Merchant(tempo_chain)
    good = merchant.challenge("0.25")
    cases = [
        (edited(good, methodDetails__chainId=4218), f"{REQ}.methodDetails.chainId",
         "must be 4217 (Tempo) or 42431"),
        (edited(good, currency="0x20c0000000000000000000000000000000000001"),
         f"{REQ}.currency", "not a USD stablecoin this server pays on TEMPO_42431"),
        (edited(good, amount="0"), f"{REQ}.amount", "greater than 0"),
        (edited(good, amount="1.5"), f"{REQ}.amount", "decimal string"),
        (edited(good, recipient="0x" + "00" * 20), f"{REQ}.recipient", "non-zero"),
        (edited(good, recipient=None), f"{REQ}.recipient", "is required"),
        (edited(good, methodDetails__decimals=18), f"{REQ}.methodDetails.decimals",
         "must be 6"),
        (edited(good, methodDetails__splits=[{"recipient": merchant.recipient,
                                              "amount": "1"}]),
         f"{REQ}.methodDetails.splits", "not supported"),
        (edited(good, methodDetails__supportedModes=["push"]),
         f"{REQ}.methodDetails.supportedModes", "must include \"pull\""),
        (edited(good, methodDetails__feePayer="yes"), f"{REQ}.methodDetails.feePayer",
         "boolean"),
        (edited(good, methodDetails="x"), f"{REQ}.methodDetails", "object"),
        (merchant.challenge("0.25", expires="2020-01-01T00:00:00.000Z"),
         f"{HEADER}.expires", "expired"),
    ]
    for header, field, words in cases:
        err = expect_validation(lambda: pay_mpp(tdp, twallet, p, [header]), field=field)
        if words:
            assert words in error_message(err), error_message(err)
    assert available(tdp, twallet, p) == "1.00"
    assert balance(tempo_chain, p.address) == 1_000_000


def test_a_solana_instrument_cannot_pay_a_tempo_challenge(tdp, twallet, make_payer,
                                                          tempo_chain):
    p = make_payer(network="SOLANA")
    err = expect_validation(lambda: pay_mpp(tdp, twallet, p,
                                            [Merchant(tempo_chain).challenge()]),
                            field="paymentInput.mpp.wwwAuthenticateHeaders")
    assert "does not match" in error_message(err)
    assert available(tdp, twallet, p) == "1.00"


def test_idempotency_and_budget_exhaustion(tdp, twallet, make_payer, tempo_chain):
    p = make_payer()
    merchant = Merchant(tempo_chain)
    header = merchant.challenge("0.30")
    settle = merchant.pay_started("0.30")
    token = str(uuid.uuid4())
    first = pay_mpp(tdp, twallet, p, [header], clientToken=token)
    replay = pay_mpp(tdp, twallet, p, [header], clientToken=token)
    assert replay["processPaymentId"] == first["processPaymentId"]
    assert replay["paymentOutput"] == first["paymentOutput"]
    assert available(tdp, twallet, p) == "0.70"
    paid = settle(first["paymentOutput"]["mpp"]["paymentCredential"])
    assert paid["status"] == 200, paid
    assert merchant.balance() == 300_000
    # 0.70 left: of 8 concurrent 0.30 payments exactly 2 go through
    results: list = [None] * 8
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = pay_mpp(tdp, twallet, p, [header])
        except Exception as e:  # noqa: BLE001 - counted below
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
    assert available(tdp, twallet, p) == "0.10"
    # the ceiling: a 0.20 challenge is refused without a debit
    err = expect_validation(lambda: pay_mpp(tdp, twallet, p, [merchant.challenge("0.20")]))
    assert "Insufficient budget" in error_message(err), error_message(err)
    assert available(tdp, twallet, p) == "0.10"


def test_official_sdk_pays_a_tempo_merchant(tempo_server, tdp, twallet, make_payer,
                                            tempo_chain, monkeypatch):
    """bedrock-agentcore's PaymentManager.generate_payment_header on a 402 carrying a
    `tempo` challenge, with an ETHEREUM instrument."""
    import boto3
    import bedrock_agentcore.payments.manager as sdk_manager

    p = make_payer()
    merchant = Merchant(tempo_chain)
    monkeypatch.setattr(sdk_manager, "DP_ENDPOINT_OVERRIDE", tempo_server.endpoint)
    session = boto3.Session(aws_access_key_id=tempo_server.creds.access_key_id,
                            aws_secret_access_key=tempo_server.creds.secret_access_key,
                            region_name="us-east-1")
    pm = sdk_manager.PaymentManager(payment_manager_arn=twallet.manager_arn,
                                    region_name="us-east-1", boto3_session=session)
    header = merchant.challenge("0.20")
    settle = merchant.pay_started("0.20")
    out = pm.generate_payment_header(
        user_id=p.user, payment_instrument_id=p.iid, payment_session_id=p.session_id,
        payment_required_request={"statusCode": 402,
                                  "headers": {"WWW-Authenticate": header}, "body": {}})
    cred = out["Authorization"]
    assert cred.startswith("Payment ")
    paid = settle(cred)
    assert paid["status"] == 200, paid
    assert merchant.balance() == 200_000
    assert balance(tempo_chain, p.address) == 800_000
    assert available(tdp, twallet, p) == "0.80"
