"""The operator's extension API (`/purser/v1/`): payment history and export, refusals,
spend over time, spending policies, and the `purser history` / `purser policies`
commands (issue 14, parts 1 and 2).

Payments go through boto3 (ProcessPayment, x402 v2 exact on Base Sepolia: no chain is
read); the extension API is called with raw SigV4 requests signed by botocore. The
module's own Purser runs with --test-clock (session expiry, rolling windows) and every
chain on a dead loopback port. The PostgreSQL tests run three `purser serve` nodes on one
fresh database.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import threading
import urllib.parse
import uuid
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

pytest.register_assert_rewrite("cluster_fixtures")

from chain_fixtures import all_dead_rpc, make_boto, start_purser  # noqa: E402
from cluster_fixtures import (  # noqa: E402
    PAYEE,
    PaySetup,
    create_instrument,
    create_session,
    error_parts,
    new_master_key,
    require_pg,
    requirement,
    session_available,
    setup_payments,
)
from conftest import AUDIT, CONTROL, CREDS_1, CREDS_2, DATA, RawResponse, _find_binary  # noqa: E402

pytest_plugins = ["cluster_fixtures"]

OTHER_PAYEE = "0x1111111111111111111111111111111111111111"


# ============================================================== harness


class Ext:
    """A Purser endpoint and SigV4-signed calls to its extension API."""

    def __init__(self, endpoint: str, creds=CREDS_1):
        self.endpoint = endpoint
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port = u.hostname, u.port
        self.creds = creds

    def request(self, method: str, path: str, query: dict | None = None, body: Any = None,
                sign: bool = True, creds=None, headers: dict | None = None) -> RawResponse:
        import http.client
        creds = creds or self.creds
        if query:
            path = path + "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        hdrs = dict(headers or {})
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if sign:
            req = AWSRequest(method=method, url=self.endpoint + path, data=payload,
                             headers=hdrs)
            SigV4Auth(Credentials(creds.access_key_id, creds.secret_access_key),
                      "bedrock-agentcore", "us-east-1").add_auth(req)
            hdrs = dict(req.headers.items())
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=payload, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            result = RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()},
                                 data)
        finally:
            conn.close()
        AUDIT.check(f"ext {method} {path}", result.status, result.headers, result.body)
        return result

    def ok(self, method: str, path: str, query: dict | None = None, body: Any = None,
           status: int = 200) -> Any:
        r = self.request(method, "/purser/v1" + path, query, body)
        assert r.status == status, (r.status, r.text)
        return r.json if r.body else None

    def error(self, method: str, path: str, query: dict | None = None, body: Any = None,
              code: str = "ValidationException", status: int = 400) -> dict:
        r = self.request(method, "/purser/v1" + path, query, body)
        assert (r.status, r.error_type) == (status, code), (r.status, r.text)
        return r.json

    def payments(self, **query) -> list[dict]:
        """Every page of GET /payments with these filters."""
        out, token = [], None
        while True:
            q = dict(query)
            if token:
                q["nextToken"] = token
            page = self.ok("GET", "/payments", q)
            out += page["payments"]
            seen = [p["paymentId"] for p in out]
            assert len(seen) == len(set(seen)), "a page repeated a payment"
            token = page.get("nextToken")
            if not token:
                return out

    def refusals(self, **query) -> list[dict]:
        return self.ok("GET", "/refusals", query)["refusals"]

    def set_policy(self, manager_id: str, user_id: str | None = None, **policy) -> dict:
        return self.ok("PUT", policy_path(manager_id, user_id), body=policy)


def policy_path(manager_id: str, user_id: str | None = None) -> str:
    m = urllib.parse.quote(manager_id, safe="")
    if user_id is None:
        return f"/managers/{m}/policy"
    return f"/managers/{m}/users/{urllib.parse.quote(user_id, safe='')}/policy"


class Server:
    """Clients of one Purser (a DataServer or a cluster Node)."""

    def __init__(self, endpoint: str, control, data):
        self.endpoint = endpoint
        self.control = control
        self.data = data
        self.ext = Ext(endpoint)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_purser(tmp_path_factory.mktemp("purser-ext"), rpc=all_dead_rpc())
    try:
        server = Server(s.endpoint, make_boto(s, CONTROL), make_boto(s, DATA))
        server.proc = s
        yield server
    finally:
        s.stop()


def new_user() -> str:
    return "u" + uuid.uuid4().hex[:10]


def pay(server, s: PaySetup, session_id: str, amount: str = "100000", payee: str = PAYEE,
        user: str | None = None, instrument: str | None = None, agent: str | None = None):
    payload = requirement(amount)
    payload["payTo"] = payee
    kw = {"agentName": agent} if agent is not None else {}
    return server.data.process_payment(
        userId=user or s.user_id, paymentManagerArn=s.manager_arn,
        paymentSessionId=session_id, paymentInstrumentId=instrument or s.instrument_id,
        paymentType="CRYPTO_X402",
        paymentInput={"cryptoX402": {"version": "2", "payload": payload}}, **kw)


def refused(call) -> str:
    """The message of a ValidationException the call must raise."""
    with pytest.raises(ClientError) as ei:
        call()
    code, status, message = error_parts(ei.value)
    assert (code, status) == ("ValidationException", 400), (code, status, message)
    return message


def session(server, s: PaySetup, cap: str = "100", user: str | None = None,
            expiry: int = 60) -> str:
    return server.data.create_payment_session(
        userId=user or s.user_id, paymentManagerArn=s.manager_arn,
        expiryTimeInMinutes=expiry,
        limits={"maxSpendAmount": {"value": cap, "currency": "USD"}},
    )["paymentSession"]["paymentSessionId"]


def second_user(server, s: PaySetup) -> tuple[str, str]:
    """Another user with an instrument under the same manager: (user, instrument)."""
    user = new_user()
    return user, create_instrument(server, s, user_id=user)["paymentInstrumentId"]


# ============================================================== 1. history


def test_history_lists_every_payment_with_filters_and_pages(srv):
    ext = srv.ext
    s = setup_payments(srv, user_id=new_user())
    user2, inst2 = second_user(srv, s)
    s1, s2 = session(srv, s), session(srv, s)
    s3 = session(srv, s, user=user2)
    replies = [
        pay(srv, s, s1, "100000", agent="shopper"),
        pay(srv, s, s1, "200000", payee=OTHER_PAYEE),
        pay(srv, s, s2, "300000", agent="researcher"),
        pay(srv, s, s3, "400000", user=user2, instrument=inst2),
        pay(srv, s, s3, "500000", user=user2, instrument=inst2, payee=OTHER_PAYEE),
    ]
    ids = [r["processPaymentId"] for r in replies]

    got = ext.payments(managerId=s.manager_id)
    assert [p["paymentId"] for p in got] == ids[::-1], "newest first"
    first = got[-1]
    assert first == {
        "paymentId": ids[0],
        "createdAt": first["createdAt"],
        "paymentManagerId": s.manager_id,
        "paymentManagerArn": s.manager_arn,
        "userId": s.user_id,
        "agentName": "shopper",
        "paymentSessionId": s1,
        "paymentInstrumentId": s.instrument_id,
        "paymentType": "CRYPTO_X402",
        "scheme": "exact",
        "version": "2",
        "network": "eip155:84532",
        "payer": first["payer"],
        "payee": PAYEE,
        "asset": requirement()["asset"],
        "amount": "100000",
        "value": "0.100000",
        "debited": "0.100000",
    }
    assert first["payer"].startswith("0x") and len(first["payer"]) == 42
    # the signed authorization (a bearer right to pay) is never part of the history
    sig = replies[0]["paymentOutput"]["cryptoX402"]["payload"]["signature"]
    assert sig not in json.dumps(got)
    assert got[-2]["agentName"] is None

    def pids(**q):
        return [p["paymentId"] for p in ext.payments(managerId=s.manager_id, **q)]

    assert pids(userId=user2) == [ids[4], ids[3]]
    assert pids(userId=s.user_id) == [ids[2], ids[1], ids[0]]
    assert pids(sessionId=s1) == [ids[1], ids[0]]
    assert pids(instrumentId=inst2) == [ids[4], ids[3]]
    # an EVM payee matches whatever its case
    assert pids(payee=OTHER_PAYEE) == [ids[4], ids[1]]
    assert pids(payee=PAYEE.lower()) == [ids[3], ids[2], ids[0]]
    assert pids(paymentType="CRYPTO_X402", scheme="exact") == ids[::-1]
    assert pids(paymentType="MPP") == []
    assert pids(network="eip155:84532") == ids[::-1]
    # time range: from inclusive, to exclusive
    t = [p["createdAt"] for p in got[::-1]]
    assert pids(**{"from": t[1], "to": t[4]}) == [i for i, at in zip(ids, t)
                                                  if t[1] <= at < t[4]][::-1]
    assert pids(**{"from": t[4]}) == [i for i, at in zip(ids, t) if at >= t[4]][::-1]
    # keyset pages: each payment once, same order, whatever the page size
    for size in (1, 2, 3):
        assert [p["paymentId"] for p in ext.payments(managerId=s.manager_id,
                                                     maxResults=size)] == ids[::-1]
    page = ext.ok("GET", "/payments", {"managerId": s.manager_id, "maxResults": 2})
    assert len(page["payments"]) == 2 and page["nextToken"]
    # a token is bound to its filters
    err = ext.error("GET", "/payments", {"managerId": s.manager_id, "userId": user2,
                                         "nextToken": page["nextToken"]})
    assert err["fieldList"][0]["name"] == "nextToken"
    # another account sees none of it
    other = Ext(srv.endpoint, CREDS_2)
    r = other.request("GET", "/purser/v1/payments?managerId=" + s.manager_id)
    assert r.status == 200 and r.json == {"payments": []}


def test_history_rejects_bad_filters_precisely(srv):
    ext = srv.ext
    for query, field in [
        ({"userId": "alice"}, "userId"),  # users belong to a manager
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"maxResults": "0"}, "maxResults"),
        ({"maxResults": "1001"}, "maxResults"),
        ({"maxResults": "ten"}, "maxResults"),
        ({"paymentType": "CARD"}, "paymentType"),
        ({"nextToken": "forged"}, "nextToken"),
        ({"mangerId": "typo"}, "mangerId"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
    ]:
        err = ext.error("GET", "/payments", query)
        assert err["fieldList"][0]["name"] == field, (query, err)
        assert field in err["message"], err
    ext.error("GET", "/payments/export", {"format": "xml"})
    ext.error("GET", "/nothing-here", code="UnknownOperationException", status=404)
    ext.error("POST", "/payments", code="UnknownOperationException", status=405)


def test_export_jsonl_and_csv_hold_the_same_payments(srv):
    ext = srv.ext
    s = setup_payments(srv, user_id=new_user())
    sid = session(srv, s)
    # an agent name that CSV must quote (comma and quotes)
    tricky = 'shop, "the best"'
    for i, agent in enumerate(["plain", tricky, None]):
        pay(srv, s, sid, str(100000 * (i + 1)), agent=agent)
    listed = ext.payments(managerId=s.manager_id)

    r = ext.request("GET", "/purser/v1/payments/export",
                    {"managerId": s.manager_id, "format": "jsonl"})
    assert r.status == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = r.text.splitlines()
    assert [json.loads(line) for line in lines] == listed

    r = ext.request("GET", "/purser/v1/payments/export",
                    {"managerId": s.manager_id, "format": "csv"})
    assert r.status == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert len(rows) == 3
    for row, p in zip(rows, listed):
        expected = {k: ("" if p[k] is None else str(p[k])) for k in row}
        assert row == expected
    assert rows[1]["agentName"] == tricky
    # filters apply to exports too
    r = ext.request("GET", "/purser/v1/payments/export",
                    {"managerId": s.manager_id, "sessionId": "nope", "format": "csv"})
    assert r.text.splitlines()[1:] == []


# ============================================================== refusals


def test_refusals_that_matter_are_recorded_without_secrets(srv):
    ext = srv.ext
    s = setup_payments(srv, user_id=new_user())
    small = session(srv, s, cap="0.15")
    pay(srv, s, small)
    budget_msg = refused(lambda: pay(srv, s, small, agent="bot"))
    assert "Insufficient budget" in budget_msg
    short = session(srv, s, expiry=15)
    srv.proc.advance_clock(16 * 60)
    expired_msg = refused(lambda: pay(srv, s, short))
    assert "expired" in expired_msg
    ext.set_policy(s.manager_id, maxPerPayment="0.05")
    policy_msg = refused(lambda: pay(srv, s, session(srv, s)))
    # an input error is not an operator's refusal
    with pytest.raises(ClientError):
        pay(srv, s, "payment-session-AAAAAAAAAAAAAAA")

    got = ext.refusals(managerId=s.manager_id)
    assert [(r["reason"], r["policy"], r["message"]) for r in got] == [
        ("POLICY", "max-per-payment", policy_msg),
        ("SESSION_EXPIRED", None, expired_msg),
        ("SESSION_BUDGET", None, budget_msg),
    ]
    r = got[2]
    assert (r["userId"], r["agentName"], r["paymentSessionId"], r["paymentInstrumentId"],
            r["payee"], r["amount"], r["value"], r["network"]) == (
        s.user_id, "bot", small, s.instrument_id, PAYEE, "100000", "0.100000",
        "eip155:84532")
    assert [x["reason"] for x in ext.refusals(managerId=s.manager_id, reason="POLICY")] \
        == ["POLICY"]
    assert len(ext.refusals(managerId=s.manager_id, userId=s.user_id,
                            sessionId=small)) == 1
    ext.error("GET", "/refusals", {"reason": "BORED"})


# ============================================================== 2. policies


def test_each_policy_refuses_with_its_name_and_consumes_nothing(srv):
    ext = srv.ext
    s = setup_payments(srv, user_id=new_user())
    sid = session(srv, s, cap="5")
    pay(srv, s, sid, "100000")

    def check(policy: dict, name: str, **kw) -> str:
        ext.set_policy(s.manager_id, **policy)
        before = (session_available(srv, s, sid), len(ext.payments(managerId=s.manager_id)))
        msg = refused(lambda: pay(srv, s, sid, **kw))
        assert msg.startswith(f"Payment denied by spending policy {name}: "), msg
        after = (session_available(srv, s, sid), len(ext.payments(managerId=s.manager_id)))
        assert after == before, "a refused payment consumed something"
        return msg

    msg = check({"maxPerPayment": "0.25"}, "max-per-payment", amount="250001")
    assert "0.250001" in msg and "0.25" in msg
    check({"payeeDenyList": [PAYEE.lower()]}, "payee-deny-list")
    check({"payeeAllowList": [OTHER_PAYEE]}, "payee-allow-list")
    check({"dailyCap": "0.15"}, "daily-user-cap")
    check({"monthlyCap": "0.19"}, "monthly-user-cap")
    # exactly up to a cap is allowed; the message says what was spent
    ext.set_policy(s.manager_id, dailyCap="0.30", maxPerPayment="0.20",
                   payeeAllowList=[PAYEE, OTHER_PAYEE], payeeDenyList=["0xdead"])
    pay(srv, s, sid, "200000", payee=OTHER_PAYEE)
    msg = refused(lambda: pay(srv, s, sid, "1"))
    assert "daily-user-cap" in msg and "has spent 0.30 USD" in msg, msg
    # a rolling day: a day later the cap has room again, the month still counts
    ext.set_policy(s.manager_id, dailyCap="0.30", monthlyCap="0.50")
    srv.proc.advance_clock(24 * 3600 + 1)
    sid = session(srv, s, cap="5")
    pay(srv, s, sid, "200000")
    msg = refused(lambda: pay(srv, s, sid, "100000"))
    assert msg.startswith("Payment denied by spending policy monthly-user-cap"), msg
    spending = ext.ok("GET", f"/managers/{s.manager_id}/users/{s.user_id}/spending")
    assert spending == {"managerId": s.manager_id, "userId": s.user_id,
                        "policy": {"dailyCap": "0.300000", "monthlyCap": "0.500000"},
                        "spentLastDay": "0.200000", "spentLastMonth": "0.500000"}
    # deleting the policy lifts it
    ext.ok("DELETE", policy_path(s.manager_id), status=204)
    pay(srv, s, sid, "100000")


def test_caps_count_every_session_of_the_user_and_no_other_user(srv):
    ext = srv.ext
    s = setup_payments(srv, user_id=new_user())
    user2, inst2 = second_user(srv, s)
    ext.set_policy(s.manager_id, dailyCap="0.25")
    a, b = session(srv, s), session(srv, s)
    pay(srv, s, a)
    pay(srv, s, b)
    msg = refused(lambda: pay(srv, s, a))
    assert "daily-user-cap" in msg
    c = session(srv, s, user=user2)
    pay(srv, s, c, user=user2, instrument=inst2)
    pay(srv, s, c, user=user2, instrument=inst2)


def test_a_user_policy_overrides_the_managers(srv):
    ext = srv.ext
    s = setup_payments(srv, user_id=new_user())
    vip, vip_inst = second_user(srv, s)
    ext.set_policy(s.manager_id, dailyCap="0.10", payeeDenyList=[OTHER_PAYEE])
    put = ext.set_policy(s.manager_id, vip, dailyCap="0.30")
    assert put["userId"] == vip and put["policy"] == {"dailyCap": "0.300000"}
    sa, sb = session(srv, s), session(srv, s, user=vip)
    pay(srv, s, sa)
    assert "daily-user-cap" in refused(lambda: pay(srv, s, sa))
    for _ in range(3):
        pay(srv, s, sb, user=vip, instrument=vip_inst)
    msg = refused(lambda: pay(srv, s, sb, user=vip, instrument=vip_inst))
    assert "daily-user-cap" in msg and "set for this user" in msg, msg
    # members the user's policy does not set still come from the manager's
    ext.set_policy(s.manager_id, vip, dailyCap="1")
    msg = refused(lambda: pay(srv, s, sb, user=vip, instrument=vip_inst, payee=OTHER_PAYEE))
    assert "payee-deny-list" in msg and "set on the payment manager" in msg, msg
    listed = ext.ok("GET", f"/managers/{s.manager_id}/policies")["policies"]
    assert [p["userId"] for p in listed] == [None, vip]


def test_policy_api_validates_and_round_trips(srv):
    ext = srv.ext
    s = setup_payments(srv, user_id=new_user())
    m = s.manager_id
    ext.error("GET", policy_path(m), code="ResourceNotFoundException", status=404)
    ext.error("PUT", policy_path("pm-nope"), body={"dailyCap": "1"},
              code="ResourceNotFoundException", status=404)
    for body, field in [
        ({"dailyCap": "0"}, "dailyCap"),
        ({"dailyCap": "1.0000001"}, "dailyCap"),
        ({"monthlyCap": 5}, "monthlyCap"),
        ({"maxPerPayment": "10000.01"}, "maxPerPayment"),
        ({"payeeAllowList": []}, "payeeAllowList"),
        ({"payeeAllowList": "0xabc"}, "payeeAllowList"),
        ({"payeeDenyList": ["0xa", "0xa"]}, "payeeDenyList[1]"),
        ({"payeeDenyList": ["has space"]}, "payeeDenyList[0]"),
        ({"weeklyCap": "1"}, "weeklyCap"),
    ]:
        err = ext.error("PUT", policy_path(m), body=body)
        assert err["fieldList"][0]["name"] == field, (body, err)
    ext.error("GET", policy_path(m), code="ResourceNotFoundException", status=404)
    got = ext.set_policy(m, dailyCap="12.5", monthlyCap="100", maxPerPayment="2",
                         payeeAllowList=["0xABCDEF0123456789abcdef0123456789ABCDEF01",
                                         "So1anaPayee"])
    assert got["policy"] == {
        "dailyCap": "12.500000", "monthlyCap": "100.000000", "maxPerPayment": "2.000000",
        "payeeAllowList": ["0xabcdef0123456789abcdef0123456789abcdef01", "So1anaPayee"]}
    assert ext.ok("GET", policy_path(m)) == got
    ext.ok("DELETE", policy_path(m), status=204)
    ext.error("DELETE", policy_path(m), code="ResourceNotFoundException", status=404)


def test_daily_cap_is_exact_under_concurrency_on_sqlite(srv):
    """Many threads, many sessions of one user, one node on SQLite: exactly
    floor(cap / price) payments go through."""
    ext = srv.ext
    s = setup_payments(srv, user_id=new_user())
    ext.set_policy(s.manager_id, dailyCap="1.05")
    sessions = [session(srv, s) for _ in range(6)]
    oks, errors = drain([srv], s, sessions, callers=24)
    assert not errors, errors[:5]
    assert len(oks) == 10
    assert len(ext.payments(managerId=s.manager_id)) == 10


def drain(servers, s: PaySetup, sessions: list[str], callers: int):
    """`callers` threads released together, caller i on servers[i % n] and session
    sessions[i % m], each paying 0.10 until refused by the daily cap."""
    barrier = threading.Barrier(callers)
    oks: list[tuple[str, str]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        server = servers[i % len(servers)]
        sid = sessions[i % len(sessions)]
        barrier.wait(timeout=30)
        for _ in range(50):
            try:
                r = pay(server, s, sid)
            except ClientError as e:
                code, status, message = error_parts(e)
                with lock:
                    if not message.startswith("Payment denied by spending policy "
                                              "daily-user-cap: "):
                        errors.append(f"{code}/{status}: {message}")
                return
            except Exception as e:  # noqa: BLE001 - reported
                with lock:
                    errors.append(repr(e))
                return
            with lock:
                oks.append((server.endpoint, r["processPaymentId"]))
        with lock:
            errors.append("never refused")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    return oks, errors


def test_spend_over_time_is_bucketed(srv):
    ext = srv.ext
    s = setup_payments(srv, user_id=new_user())
    sid = session(srv, s)
    for amount in ("100000", "250000"):
        pay(srv, s, sid, amount)
    got = ext.ok("GET", "/spend", {"bucket": "hour", "managerId": s.manager_id})
    assert got["bucket"] == "hour"
    assert sum(p["payments"] for p in got["points"]) == 2
    assert sum(int(p["value"].replace(".", "")) for p in got["points"]) == 350000
    for p in got["points"]:
        assert p["start"].endswith(":00:00.000Z"), p
    day = ext.ok("GET", "/spend", {"bucket": "day", "managerId": s.manager_id,
                                   "userId": s.user_id})
    assert [p["value"] for p in day["points"]] == ["0.350000"]
    assert day["points"][0]["start"].endswith("T00:00:00.000Z")
    ext.error("GET", "/spend", {"bucket": "week"})
    ext.error("GET", "/spend", {"bucket": "hour", "from": "2020-01-01T00:00:00Z"})


# ============================================================== authentication


def test_extension_api_needs_a_signature_and_leaves_agentcore_alone(raw_request, control):
    r = raw_request("GET", "/purser/v1/payments", sign=False)
    assert r.status == 403, r.text
    bad = CREDS_1.__class__(CREDS_1.access_key_id, "wrong" * 8, CREDS_1.account_id)
    r = raw_request("GET", "/purser/v1/payments", creds=bad)
    assert r.status == 403, r.text
    r = raw_request("GET", "/purser/v1/payments", headers={"Authorization": "Bearer x.y.z"},
                    sign=False)
    assert (r.status, r.error_type) == (403, "AccessDeniedException"), r.text
    r = raw_request("GET", "/purser/v1/payments")
    assert r.status == 200 and "payments" in r.json
    # the AgentCore API is unchanged beside it; other paths stay AgentCore's 404
    assert "paymentManagers" in control.list_payment_managers()
    r = raw_request("GET", "/purser/v2/payments")
    assert (r.status, r.error_type) == (404, "UnknownOperationException")


# ============================================================== the purser command


def run_purser(srv, *args: str, creds=CREDS_1) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PURSER_"))}
    env.update({"AWS_ACCESS_KEY_ID": creds.access_key_id,
                "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
                "AWS_REGION": "us-east-1"})
    return subprocess.run([str(_find_binary()), *args, "--endpoint-url", srv.endpoint],
                          capture_output=True, text=True, env=env, timeout=60)


def test_purser_history_and_policies_commands(srv):
    s = setup_payments(srv, user_id=new_user())
    sid = session(srv, s)
    ids = [pay(srv, s, sid, a, agent='a "quoted", agent')["processPaymentId"]
           for a in ("100000", "200000")]
    out = run_purser(srv, "history", "--manager-id", s.manager_id)
    assert out.returncode == 0, out.stderr
    assert [json.loads(line)["paymentId"] for line in out.stdout.splitlines()] == ids[::-1]
    out = run_purser(srv, "history", "--manager-id", s.manager_id, "--user-id", s.user_id,
                     "--format", "csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout, newline="")))
    assert [r["paymentId"] for r in rows] == ids[::-1]
    assert rows[0]["agentName"] == 'a "quoted", agent'

    out = run_purser(srv, "policies", "set", "--manager-id", s.manager_id,
                     "--user-id", s.user_id, "--daily-cap", "0.30",
                     "--deny-payee", OTHER_PAYEE)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["policy"] == {"dailyCap": "0.300000",
                                                "payeeDenyList": [OTHER_PAYEE.lower()]}
    out = run_purser(srv, "policies", "get", "--manager-id", s.manager_id,
                     "--user-id", s.user_id)
    assert json.loads(out.stdout)["policy"]["dailyCap"] == "0.300000"
    msg = refused(lambda: pay(srv, s, sid, "1"))
    assert "daily-user-cap" in msg
    out = run_purser(srv, "history", "--refusals", "--manager-id", s.manager_id)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[0])["policy"] == "daily-user-cap"
    out = run_purser(srv, "policies", "delete", "--manager-id", s.manager_id,
                     "--user-id", s.user_id)
    assert out.returncode == 0, out.stderr
    pay(srv, s, sid, "1")
    # errors are AWS-shaped and exit non-zero; a wrong key is refused
    out = run_purser(srv, "policies", "get", "--manager-id", s.manager_id)
    assert out.returncode != 0 and "ResourceNotFoundException" in out.stderr
    wrong = CREDS_1.__class__(CREDS_1.access_key_id, "x" * 40, CREDS_1.account_id)
    out = run_purser(srv, "history", creds=wrong)
    assert out.returncode != 0 and "403" in out.stderr


# ============================================================== PostgreSQL, 3 nodes


@pytest.fixture(scope="module")
def pg_cluster(tmp_path_factory):
    """Three `purser serve` nodes on one fresh PostgreSQL database."""
    require_pg()
    from cluster_fixtures import NodeSet, create_pg_database, drop_pg_database
    db = create_pg_database()
    ns = NodeSet(tmp_path_factory.mktemp("ext-cluster"))
    try:
        nodes = ns.cluster(3, db.url, new_master_key())
        yield [Server(n.endpoint, n.control, n.data) for n in nodes]
    finally:
        ns.stop_all()
        drop_pg_database(db)


def test_daily_cap_is_exact_across_three_postgres_nodes(pg_cluster):
    n1, n2, n3 = pg_cluster
    s = setup_payments(n1, user_id=new_user())
    n2.ext.set_policy(s.manager_id, dailyCap="1.05")
    sessions = [session(n1, s) for _ in range(6)]
    oks, errors = drain(pg_cluster, s, sessions, callers=36)
    assert not errors, errors[:5]
    assert len(oks) == 10, Counter(o[0] for o in oks)
    assert len({o[1] for o in oks}) == 10
    assert len(set(o[0] for o in oks)) >= 2, "the payments did not spread over nodes"
    for n in pg_cluster:
        assert len(n.ext.payments(managerId=s.manager_id)) == 10
    assert "daily-user-cap" in refused(lambda: pay(n3, s, sessions[0]))


def test_a_policy_change_is_seen_by_every_node_at_once(pg_cluster):
    n1, n2, n3 = pg_cluster
    s = setup_payments(n1, user_id=new_user())
    sid = session(n1, s)
    pay(n2, s, sid)
    n1.ext.set_policy(s.manager_id, s.user_id, maxPerPayment="0.05")
    assert "max-per-payment" in refused(lambda: pay(n2, s, sid))
    assert "max-per-payment" in refused(lambda: pay(n3, s, sid))
    n3.ext.ok("DELETE", policy_path(s.manager_id, s.user_id), status=204)
    pay(n2, s, sid)
    assert n2.ext.refusals(managerId=s.manager_id)[0]["policy"] == "max-per-payment"
