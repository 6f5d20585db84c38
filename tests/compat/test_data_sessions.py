"""Payment sessions on the data plane (B8, B10, B20, B31, B32)."""

from __future__ import annotations

import datetime
import re

import pytest

pytest.register_assert_rewrite("chain_fixtures")

from chain_fixtures import new_user  # noqa: E402
from compat_helpers import (  # noqa: E402
    assert_each_once,
    client_token,
    collect_pages,
    expect_error,
    expect_not_found,
    expect_validation,
    http_status,
)

pytest_plugins = ["chain_fixtures"]

SESSION_ID_RE = re.compile(r"payment-session-[0-9a-zA-Z]{15}")
MISSING_SESSION = "payment-session-000000000000000"
CAP_PATH = "limits.maxSpendAmount.value"


def create(client, w, user, expiry=60, cap=None, currency="USD", **kw):
    args = dict(userId=user, paymentManagerArn=w.manager_arn, expiryTimeInMinutes=expiry, **kw)
    if cap is not None:
        args["limits"] = {"maxSpendAmount": {"value": cap, "currency": currency}}
    return client.create_payment_session(**args)


def get(client, w, user, sid):
    return client.get_payment_session(userId=user, paymentManagerArn=w.manager_arn,
                                      paymentSessionId=sid)


def delete(client, w, user, sid):
    return client.delete_payment_session(userId=user, paymentManagerArn=w.manager_arn,
                                         paymentSessionId=sid)


def test_create_with_limits(dp, wallet, user):
    resp = create(dp, wallet, user, expiry=30, cap="1.00")
    assert http_status(resp) == 201
    s = resp["paymentSession"]
    sid = s["paymentSessionId"]
    assert SESSION_ID_RE.fullmatch(sid) and len(sid) == 31, sid
    assert s["paymentManagerArn"] == wallet.manager_arn
    assert s["userId"] == user
    assert s["expiryTimeInMinutes"] == 30
    assert isinstance(s["createdAt"], datetime.datetime)
    assert s["createdAt"] == s["updatedAt"]
    assert s["limits"] == {"maxSpendAmount": {"value": "1.00", "currency": "USD"}}
    assert s["availableLimits"]["availableSpendAmount"] == {"value": "1.00", "currency": "USD"}
    assert isinstance(s["availableLimits"]["updatedAt"], datetime.datetime)
    assert "status" not in s  # B20: no status field

    got = get(dp, wallet, user, sid)
    assert http_status(got) == 200
    g = got["paymentSession"]
    assert g["paymentSessionId"] == sid
    assert g["availableLimits"]["availableSpendAmount"]["value"] == "1.00"
    assert g["limits"] == s["limits"]
    assert g["createdAt"] == s["createdAt"]
    assert "status" not in g


def test_create_without_limits(dp, wallet, user):
    s = create(dp, wallet, user, expiry=15)["paymentSession"]
    assert "limits" not in s and "availableLimits" not in s
    g = get(dp, wallet, user, s["paymentSessionId"])["paymentSession"]
    assert "limits" not in g and "availableLimits" not in g
    assert g["expiryTimeInMinutes"] == 15


@pytest.mark.parametrize("expiry", [15, 480])
def test_expiry_bounds_accepted(dp, wallet, user, expiry):
    s = create(dp, wallet, user, expiry=expiry)["paymentSession"]
    assert s["expiryTimeInMinutes"] == expiry


@pytest.mark.parametrize("expiry", [14, 481, 0, -5])
def test_expiry_out_of_range(dp_nv, wallet, user, expiry):
    expect_validation(lambda: create(dp_nv, wallet, user, expiry=expiry),
                      field="expiryTimeInMinutes")


@pytest.mark.parametrize("cap,shown", [
    ("1", "1.00"), ("0.10", "0.10"), ("0.000001", "0.000001"), ("10000", "10000.00"),
    ("10000.000000", "10000.00"), ("12.5", "12.50"), ("1.234567", "1.234567"),
])
def test_caps_accepted(dp, wallet, user, cap, shown):
    s = create(dp, wallet, user, cap=cap)["paymentSession"]
    assert s["availableLimits"]["availableSpendAmount"] == {"value": shown, "currency": "USD"}
    assert s["limits"]["maxSpendAmount"]["currency"] == "USD"


@pytest.mark.parametrize("cap", ["0", "-1", "10000.01", "abc", "0.0000001", "", "1e3",
                                 " 1", "1.", "+1", "0.000000"])
def test_caps_refused(dp_nv, wallet, user, cap):
    err = expect_validation(lambda: create(dp_nv, wallet, user, cap=cap), field=CAP_PATH)
    assert err.response["Error"]["Message"]
    # nothing was created
    assert dp_nv.list_payment_sessions(userId=user, paymentManagerArn=wallet.manager_arn)[
        "paymentSessions"] == []


def test_currency_must_be_usd(dp_nv, wallet, user):
    expect_validation(lambda: create(dp_nv, wallet, user, cap="1.00", currency="EUR"),
                      field="limits.maxSpendAmount.currency")


def test_missing_user_id(dp, wallet, user):
    sid = create(dp, wallet, user)["paymentSession"]["paymentSessionId"]
    expect_validation(lambda: dp.create_payment_session(
        paymentManagerArn=wallet.manager_arn, expiryTimeInMinutes=60), field="userId")
    expect_validation(lambda: dp.get_payment_session(
        paymentManagerArn=wallet.manager_arn, paymentSessionId=sid), field="userId")
    expect_validation(lambda: dp.list_payment_sessions(
        paymentManagerArn=wallet.manager_arn), field="userId")
    expect_validation(lambda: dp.delete_payment_session(
        paymentManagerArn=wallet.manager_arn, paymentSessionId=sid), field="userId")


@pytest.mark.parametrize("bad", ["payment-session-short", "payment-session-!!!!!!!!!!!!!!!",
                                 "payment-sessioX-000000000000000"])
def test_session_id_validation(dp_nv, wallet, user, bad):
    expect_validation(lambda: get(dp_nv, wallet, user, bad), field="paymentSessionId")
    expect_validation(lambda: delete(dp_nv, wallet, user, bad), field="paymentSessionId")


def test_other_users_and_accounts(dp, dp2, wallet, wallet2, user):
    sid = create(dp, wallet, user, cap="1.00")["paymentSession"]["paymentSessionId"]
    other = new_user()
    expect_not_found(lambda: get(dp, wallet, other, sid))
    expect_not_found(lambda: delete(dp, wallet, other, sid))
    # account 2 naming account 1's manager: 403; through its own manager: 404
    expect_error(lambda: get(dp2, wallet, user, sid), "AccessDeniedException", 403)
    expect_error(lambda: delete(dp2, wallet, user, sid), "AccessDeniedException", 403)
    expect_not_found(lambda: get(dp2, wallet2, user, sid))
    # still there for its owner
    assert get(dp, wallet, user, sid)["paymentSession"]["paymentSessionId"] == sid
    expect_not_found(lambda: get(dp, wallet, user, MISSING_SESSION))


def test_list_only_own_and_paginate(dp, wallet, user):
    mine = [create(dp, wallet, user, cap="2.00")["paymentSession"]["paymentSessionId"]
            for _ in range(5)]
    other = new_user()
    theirs = create(dp, wallet, other)["paymentSession"]["paymentSessionId"]
    resp = dp.list_payment_sessions(userId=user, paymentManagerArn=wallet.manager_arn)
    assert http_status(resp) == 200
    assert sorted(s["paymentSessionId"] for s in resp["paymentSessions"]) == sorted(mine)
    for s in resp["paymentSessions"]:
        assert s["userId"] == user
        assert s["paymentManagerArn"] == wallet.manager_arn
        assert s["expiryTimeInMinutes"] == 60
        assert isinstance(s["createdAt"], datetime.datetime)
    pages = collect_pages(lambda **kw: dp.list_payment_sessions(
        userId=user, paymentManagerArn=wallet.manager_arn, **kw), "paymentSessions", 2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert_each_once([s["paymentSessionId"] for p in pages for s in p], mine)
    assert [s["paymentSessionId"] for s in dp.list_payment_sessions(
        userId=other, paymentManagerArn=wallet.manager_arn)["paymentSessions"]] == [theirs]
    # a forged or foreign token is refused; maxResults below 1 is refused
    token = dp.list_payment_sessions(userId=user, paymentManagerArn=wallet.manager_arn,
                                     maxResults=1)["nextToken"]
    expect_validation(lambda: dp.list_payment_sessions(
        userId=user, paymentManagerArn=wallet.manager_arn, nextToken=token[:-3] + "xyz"),
        field="nextToken")
    expect_validation(lambda: dp.list_payment_sessions(
        userId=other, paymentManagerArn=wallet.manager_arn, nextToken=token),
        field="nextToken")
    expect_validation(lambda: dp.list_payment_sessions(
        userId=user, paymentManagerArn=wallet.manager_arn, maxResults=0), field="maxResults")


def test_delete_is_hard(dp, wallet, user, dp_server):
    sid = create(dp, wallet, user, cap="1.00")["paymentSession"]["paymentSessionId"]
    resp = delete(dp, wallet, user, sid)
    assert http_status(resp) == 200
    assert {k: v for k, v in resp.items() if k != "ResponseMetadata"} == {"status": "DELETED"}
    expect_not_found(lambda: get(dp, wallet, user, sid))
    expect_not_found(lambda: delete(dp, wallet, user, sid))
    assert sid not in [s["paymentSessionId"] for s in dp.list_payment_sessions(
        userId=user, paymentManagerArn=wallet.manager_arn)["paymentSessions"]]
    assert dp_server.query("SELECT count(*) AS n FROM sessions WHERE id = ?", sid)[0]["n"] == 0


def test_create_idempotency(dp, wallet, user):
    token = client_token()
    a = create(dp, wallet, user, cap="1.00", clientToken=token)["paymentSession"]
    b = create(dp, wallet, user, cap="1.00", clientToken=token)["paymentSession"]
    assert a["paymentSessionId"] == b["paymentSessionId"]
    expect_validation(lambda: create(dp, wallet, user, cap="2.00", clientToken=token),
                      reason="IdempotentParameterMismatchException")
    sessions = dp.list_payment_sessions(userId=user, paymentManagerArn=wallet.manager_arn)
    assert [s["paymentSessionId"] for s in sessions["paymentSessions"]] == [a["paymentSessionId"]]


@pytest.mark.parametrize("over,field", [
    ({"userId": "u" * 121}, "userId"),
    ({"agentName": "a" * 257}, "agentName"),
    ({"clientToken": "short"}, "clientToken"),
    ({"clientToken": "!" * 40}, "clientToken"),
    ({"clientToken": "a" * 257}, "clientToken"),
], ids=["user-id-121", "agent-name-257", "token-short", "token-pattern", "token-long"])
def test_header_and_token_constraints(dp_nv, wallet, user, over, field):
    args = dict(userId=user, paymentManagerArn=wallet.manager_arn, expiryTimeInMinutes=60)
    args.update(over)
    expect_validation(lambda: dp_nv.create_payment_session(**args), field=field)


def test_longest_user_id_and_agent_name(dp, wallet):
    user = "u" * 120
    s = dp.create_payment_session(userId=user, paymentManagerArn=wallet.manager_arn,
                                  expiryTimeInMinutes=60, agentName="a" * 256)["paymentSession"]
    assert s["userId"] == user
    assert get(dp, wallet, user, s["paymentSessionId"])["paymentSession"]["userId"] == user
