"""Metrics and readiness: a known load through boto3, then `GET /metrics` (on the separate
`--metrics-listen` port) parsed with prometheus-client; the counts must match what was
sent. `GET /health/ready` says which dependency answers."""

from __future__ import annotations

import json
from typing import Any
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

pytest.register_assert_rewrite("chain_fixtures")

from chain_fixtures import (  # noqa: E402
    CONTROL,
    DATA,
    _free_port,
    all_dead_rpc,
    make_boto,
    new_user,
    process_payment,
    setup_wallet,
    x402_requirement,
)
from compat_helpers import ACCOUNT_1, error_code  # noqa: E402

pytest_plugins = ["chain_fixtures"]

N_PAID = 7
AMOUNT = 12345


def http_get(url: str) -> tuple[int, str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=30) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


@pytest.fixture(scope="module")
def metrics_server(tmp_path_factory, anvil_chain):
    from chain_fixtures import start_purser

    port = _free_port()
    rpc = all_dead_rpc()
    rpc["BASE_SEPOLIA"] = anvil_chain.url
    server = start_purser(tmp_path_factory.mktemp("purser-metrics"), rpc=rpc,
                          extra_env={"PURSER_METRICS_LISTEN": f"127.0.0.1:{port}"})
    server.metrics_url = f"http://127.0.0.1:{port}/metrics"
    server.metrics_port = port
    try:
        yield server
    finally:
        server.stop()


def scrape(server) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    status, text, headers = http_get(server.metrics_url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def delta(before, after, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_counts_match_a_known_load(metrics_server):
    cp, dp = make_boto(metrics_server, CONTROL), make_boto(metrics_server, DATA)
    w = setup_wallet(cp, ACCOUNT_1)
    user = new_user()
    inst = dp.create_payment_instrument(
        userId=user, paymentManagerArn=w.manager_arn, paymentConnectorId=w.connector_id,
        paymentInstrumentType="EMBEDDED_CRYPTO_WALLET",
        paymentInstrumentDetails={"embeddedCryptoWallet": {
            "network": "ETHEREUM", "linkedAccounts": []}})["paymentInstrument"]
    iid = inst["paymentInstrumentId"]

    def session(cap: str) -> str:
        return dp.create_payment_session(
            userId=user, paymentManagerArn=w.manager_arn, expiryTimeInMinutes=60,
            limits={"maxSpendAmount": {"value": cap, "currency": "USD"}}
        )["paymentSession"]["paymentSessionId"]

    roomy, tight = session("1.00"), session("0.02")
    before = scrape(metrics_server)

    req = x402_requirement("BASE_SEPOLIA", "2", amount=str(AMOUNT))
    for _ in range(N_PAID):
        process_payment(dp, w, user, roomy, iid, req)
    refusals = {"insufficient_budget": 2, "session_not_found": 3, "invalid_input": 1}
    big = x402_requirement("BASE_SEPOLIA", "2", amount="30000")
    for _ in range(refusals["insufficient_budget"]):
        with pytest.raises(ClientError) as e:
            process_payment(dp, w, user, tight, iid, big)
        assert error_code(e.value) == "ValidationException"
    for k in range(refusals["session_not_found"]):
        with pytest.raises(ClientError):
            process_payment(dp, w, user, f"payment-session-nope{k:011d}", iid, req)
    with pytest.raises(ClientError):
        process_payment(dp, w, user, roomy, iid,
                        x402_requirement("BASE_SEPOLIA", "2", amount=str(AMOUNT), payTo="0x12"))
    n_lists = 4
    for _ in range(n_lists):
        dp.list_payment_instruments(userId=user, paymentManagerArn=w.manager_arn)
    status, _, _ = http_get(metrics_server.endpoint + "/no/such/operation")
    assert status == 404

    after = scrape(metrics_server)
    refused = sum(refusals.values())
    requests = "purser_requests_total"
    assert delta(before, after, requests, operation="ProcessPayment", status="200") == N_PAID
    assert delta(before, after, requests, operation="ProcessPayment", status="400") == refused
    assert delta(before, after, requests, operation="ListPaymentInstruments",
                 status="200") == n_lists
    assert delta(before, after, requests, operation="unknown", status="404") == 1
    assert delta(before, after, "purser_request_duration_seconds_count",
                 operation="ProcessPayment", status="200") == N_PAID
    assert delta(before, after, "purser_request_duration_seconds_bucket",
                 operation="ProcessPayment", status="200", le="+Inf") == N_PAID
    kind = dict(type="CRYPTO_X402", scheme="exact", network="eip155:84532")
    assert delta(before, after, "purser_payments_total", **kind) == N_PAID
    assert delta(before, after, "purser_payment_amount_atomic_total", **kind) == N_PAID * AMOUNT
    for reason, n in refusals.items():
        assert delta(before, after, "purser_payment_refusals_total", reason=reason) == n, reason
    # sequential payments: one per ledger batch (refusals never reach the ledger here)
    assert delta(before, after, "purser_ledger_batch_size_count") == N_PAID
    assert delta(before, after, "purser_ledger_batch_size_sum") == N_PAID
    assert delta(before, after, "purser_ledger_commit_seconds_count") == N_PAID
    assert after[("purser_db_pool_max_connections", ())] == 8
    assert ("purser_db_pool_connections", (("state", "idle"),)) in after


def test_metrics_are_not_on_the_agentcore_port(metrics_server):
    status, body, headers = http_get(metrics_server.endpoint + "/metrics")
    assert status == 404
    assert headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert json.loads(body)["__type"] == "UnknownOperationException"


def test_readiness_names_the_chain_that_is_down(metrics_server):
    before = scrape(metrics_server)
    status, body, _ = http_get(metrics_server.endpoint + "/health/ready")
    ready = json.loads(body)
    # anvil answers for BASE_SEPOLIA; the other chains point at loopback ports nobody
    # listens on
    assert status == 503, ready
    assert ready["status"] == "not ready"
    assert ready["database"]["ok"] is True
    assert ready["chains"]["BASE_SEPOLIA"]["ok"] is True, ready
    for chain in ("BASE", "ETHEREUM", "SOLANA", "SOLANA_DEVNET"):
        assert ready["chains"][chain] == {
            "ok": False, "error": "connection refused",
            "millis": ready["chains"][chain]["millis"]}, ready
    assert "127.0.0.1" not in body
    # the same answer on the operator's port; /health stays a plain 200
    status2, body2, _ = http_get(f"http://127.0.0.1:{metrics_server.metrics_port}/health/ready")
    assert status2 == 503 and json.loads(body2)["chains"].keys() == ready["chains"].keys()
    assert http_get(metrics_server.endpoint + "/health")[0] == 200
    after = scrape(metrics_server)
    assert delta(before, after, "purser_chain_rpc_errors_total",
                 chain="ETHEREUM", method="eth_chainId") >= 1
    assert delta(before, after, "purser_chain_rpc_errors_total",
                 chain="BASE_SEPOLIA", method="eth_chainId") == 0
    assert delta(before, after, "purser_chain_rpc_duration_seconds_count",
                 chain="BASE_SEPOLIA", method="eth_chainId") >= 1


def test_readiness_refuses_an_rpc_of_another_chain(start_server, anvil_chain):
    # ETHEREUM pointed at the anvil, which says chain id 84532 (Base Sepolia), not 1
    server = start_server("ready-wrong-chain",
                          rpc={**all_dead_rpc(), "BASE_SEPOLIA": anvil_chain.url,
                               "ETHEREUM": anvil_chain.url})
    status, body, _ = http_get(server.endpoint + "/health/ready")
    ready = json.loads(body)
    assert status == 503
    assert ready["chains"]["BASE_SEPOLIA"]["ok"] is True, ready
    assert ready["chains"]["ETHEREUM"]["ok"] is False
    assert ready["chains"]["ETHEREUM"]["error"] == "malformed answer", ready
