"""The web console (`purser serve --console`): sign-in, cookies, CSRF, the console API
(the same operations as AgentCore, masked the same way), and the whole console end to end
in a real browser (Debian's chromium driven by playwright-core, `console/e2e/`).

The console's own server is started here with PURSER_CONSOLE=true; the session-wide
`purser` fixture runs without it (the console is off by default)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("chain_fixtures")

from chain_fixtures import (  # noqa: E402
    CONTROL,
    DATA,
    all_dead_rpc,
    create_instrument,
    make_boto,
    process_payment,
    setup_wallet,
    start_purser,
    x402_requirement,
)
from compat_helpers import ACCOUNT_1, create_manager, expect_error  # noqa: E402
from conftest import REPO_ROOT  # noqa: E402

CONSOLE_DIR = REPO_ROOT / "console"
CHROMIUM = os.environ.get("PURSER_CHROMIUM", "/usr/bin/chromium")
ARTEFACTS = REPO_ROOT / "tests" / ".artefacts" / "console"


# ------------------------------------------------------------------ helpers


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def error_type(self) -> str | None:
        try:
            return self.json.get("__type")
        except (ValueError, AttributeError):
            return None


@dataclass
class Browserless:
    """A console client over plain HTTP: keeps the session cookie and the CSRF token the
    way the page does."""
    endpoint: str
    cookie: str | None = None
    csrf: str | None = None
    set_cookies: list[str] = field(default_factory=list)

    def send(self, method: str, path: str, body: Any = None, headers: dict | None = None,
             raw: bytes | None = None, cookie: bool = True, csrf: bool = True) -> Reply:
        u = urllib.parse.urlsplit(self.endpoint)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        h = {"Host": u.netloc}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if cookie and self.cookie:
            h["Cookie"] = f"purser_console={self.cookie}"
        if csrf and self.csrf:
            h["X-Purser-Csrf"] = self.csrf
        h.update(headers or {})
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            reply = Reply(r.status, r.headers, r.read())
        finally:
            conn.close()
        self.set_cookies = reply.headers.get_all("Set-Cookie") or []
        for c in self.set_cookies:
            name, _, rest = c.partition("=")
            if name == "purser_console":
                self.cookie = rest.split(";", 1)[0] or None
        return reply

    def login(self, akid: str, secret: str, **kw: Any) -> Reply:
        r = self.send("POST", "/console/api/login",
                      {"accessKeyId": akid, "secretAccessKey": secret}, **kw)
        if r.status == 200:
            self.csrf = r.json["csrfToken"]
        return r

    def call(self, operation: str, **members: Any) -> Reply:
        return self.send("POST", f"/console/api/call/{operation}", members)


@pytest.fixture(scope="module")
def console_server(tmp_path_factory):
    """A Purser with the console on (PURSER_CONSOLE=true), accounts 1 and 2, no chain."""
    server = start_purser(tmp_path_factory.mktemp("console"), rpc=all_dead_rpc(),
                          test_clock=False, extra_env={"PURSER_CONSOLE": "true"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ccp(console_server):
    return make_boto(console_server, CONTROL)


@pytest.fixture(scope="module")
def cdp(console_server):
    return make_boto(console_server, DATA)


@pytest.fixture
def web(console_server) -> Browserless:
    return Browserless(console_server.endpoint)


@pytest.fixture
def signed_in(console_server, web) -> Browserless:
    r = web.login(console_server.creds.access_key_id, console_server.creds.secret_access_key)
    assert r.status == 200, r.body
    return web


@pytest.fixture(scope="module")
def shop(console_server, ccp):
    """A READY manager + SelfCustody connector of account 1 on the console's server."""
    return setup_wallet(ccp, ACCOUNT_1)


def new_user() -> str:
    return "user-" + uuid.uuid4().hex[:12]


def pay(cdp, w, user: str, session_id: str, instrument_id: str, amount: str = "100000"):
    return process_payment(cdp, w, user, session_id, instrument_id,
                           x402_requirement(amount=amount))


# --------------------------------------------------------------- off / bind


def test_the_console_is_off_by_default(purser):
    web = Browserless(purser.endpoint)
    for method, path in [("GET", "/console/"), ("GET", "/console/assets/app.js"),
                         ("POST", "/console/api/login"), ("GET", "/console/api/session")]:
        r = web.send(method, path, {} if method == "POST" else None)
        assert r.status == 404, (path, r.status)
        assert r.error_type == "UnknownOperationException"


def test_the_console_refuses_a_non_loopback_address(tmp_path):
    from conftest import _find_binary
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURSER_")}
    env["PURSER_CONSOLE"] = "true"
    p = subprocess.run(
        [str(_find_binary()), "serve", "--listen", "0.0.0.0:0", "--data-dir",
         str(tmp_path / "data")],
        env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert "not loopback" in p.stderr and "--console-allow-remote" in p.stderr, p.stderr


def test_the_page_and_its_assets_are_served_with_a_strict_policy(web):
    r = web.send("GET", "/console")
    assert r.status == 303 and r.headers["Location"] == "/console/"
    r = web.send("GET", "/console/")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert b"/console/assets/app.js" in r.body
    js = web.send("GET", "/console/assets/app.js")
    assert js.status == 200 and js.headers["Content-Type"].startswith("text/javascript")
    assert b"/console/api/login" in js.body
    css = web.send("GET", "/console/assets/app.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert web.send("GET", "/console/assets/../../health").status == 404


# ------------------------------------------------------------------ sign-in


def test_wrong_credentials_are_refused_alike(console_server, web):
    creds = console_server.creds
    for akid, secret in [(creds.access_key_id, creds.secret_access_key + "x"),
                         (creds.access_key_id, ""),
                         ("AKIANOSUCHKEY0000001", creds.secret_access_key),
                         (creds.access_key_id, creds.secret_access_key[:-1])]:
        r = web.login(akid, secret)
        assert r.status == 401, r.body
        assert r.error_type == "UnauthenticatedException"
        assert r.json["message"] == "The access key id or the secret access key is not valid."
        assert not any(c.startswith("purser_console=") for c in web.set_cookies)
    assert creds.secret_access_key not in console_server.log_text()


def test_login_sets_a_strict_http_only_cookie_and_never_echoes_the_secret(console_server, web):
    creds = console_server.creds
    r = web.login(creds.access_key_id, creds.secret_access_key)
    assert r.status == 200
    assert r.json["accountId"] == ACCOUNT_1 and r.json["accessKeyId"] == creds.access_key_id
    assert creds.secret_access_key.encode() not in r.body
    (cookie,) = web.set_cookies
    attrs = [a.strip() for a in cookie.split(";")]
    assert "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/console" in attrs
    assert "Secure" not in attrs  # plain http on loopback
    assert creds.secret_access_key not in cookie
    assert r.headers["Cache-Control"] == "no-store"
    # behind a TLS proxy the cookie is Secure
    r = web.login(creds.access_key_id, creds.secret_access_key,
                  headers={"X-Forwarded-Proto": "https"})
    assert r.status == 200 and "Secure" in [a.strip() for a in web.set_cookies[0].split(";")]


def test_login_wants_a_json_body_from_this_origin(console_server, web):
    creds = console_server.creds
    form = urllib.parse.urlencode({"accessKeyId": creds.access_key_id,
                                   "secretAccessKey": creds.secret_access_key}).encode()
    r = web.send("POST", "/console/api/login", raw=form,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400 and r.error_type == "ValidationException"
    r = web.login(creds.access_key_id, creds.secret_access_key,
                  headers={"Origin": "http://evil.example"})
    assert r.status == 403 and web.cookie is None
    # a secret in the URL is never accepted: the login is a POST with a JSON body only
    q = urllib.parse.urlencode({"accessKeyId": creds.access_key_id,
                                "secretAccessKey": creds.secret_access_key})
    assert web.send("GET", f"/console/api/login?{q}").status == 405
    assert web.cookie is None


def test_every_api_call_needs_the_cookie(console_server, web):
    for method, path, body in [("GET", "/console/api/session", None),
                               ("POST", "/console/api/call/ListPaymentManagers", {}),
                               ("POST", "/console/api/logout", None)]:
        r = web.send(method, path, body)
        assert r.status == 401, (path, r.status)
        assert r.error_type == "UnauthenticatedException"
    # a forged or tampered cookie is no better
    web.login(console_server.creds.access_key_id, console_server.creds.secret_access_key)
    good = web.cookie
    for forged in [good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
                   good.replace("v1.", "v1.9", 1), "v1.9999999999.AKIAPURSERTEST000001.x", ""]:
        web.cookie = forged
        assert web.call("ListPaymentManagers").status == 401, forged


def test_state_changing_calls_need_the_csrf_header(signed_in, shop):
    csrf = signed_in.csrf
    for given in [None, "", "AAAA", csrf[:-1] + ("A" if csrf[-1] != "A" else "B")]:
        signed_in.csrf = given
        r = signed_in.call("ListPaymentManagers")
        assert r.status == 403 and r.error_type == "AccessDeniedException", given
        assert "X-Purser-Csrf" in r.json["message"]
    signed_in.csrf = csrf
    r = signed_in.call("ListPaymentManagers")
    assert r.status == 200
    # a cross-site page sending the right header and cookie still fails the Origin check
    r = signed_in.send("POST", "/console/api/call/ListPaymentManagers", {},
                       headers={"Origin": "http://evil.example"})
    assert r.status == 403
    # the session endpoint hands the same token back after a reload
    assert signed_in.send("GET", "/console/api/session").json["csrfToken"] == csrf


def test_logout_clears_the_cookie(signed_in):
    r = signed_in.send("POST", "/console/api/logout")
    assert r.status == 200
    (cookie,) = signed_in.set_cookies
    assert cookie.startswith("purser_console=;") and "Max-Age=0" in cookie
    assert signed_in.cookie is None
    assert signed_in.call("ListPaymentManagers").status == 401


# ------------------------------------------------------------- console API


def test_the_console_runs_the_agentcore_operations_of_its_account(
        console_server, signed_in, shop, ccp, cdp):
    user = new_user()
    email = f"{user}@example.com"
    inst = create_instrument(cdp, shop, user, linked=[{"email": {"emailAddress": email}}])
    iid = inst["paymentInstrument"]["paymentInstrumentId"]
    # the same shapes as the API
    mgrs = signed_in.call("ListPaymentManagers", maxResults=100).json
    assert shop.manager_id in [m["paymentManagerId"] for m in mgrs["paymentManagers"]]
    r = signed_in.call("GetPaymentInstrument", paymentManagerArn=shop.manager_arn, userId=user,
                       paymentInstrumentId=iid)
    assert r.status == 200, r.body
    api = cdp.get_payment_instrument(paymentManagerArn=shop.manager_arn, userId=user,
                                     paymentInstrumentId=iid)["paymentInstrument"]
    got = r.json["paymentInstrument"]
    details = got["paymentInstrumentDetails"]["embeddedCryptoWallet"]
    assert details == api["paymentInstrumentDetails"]["embeddedCryptoWallet"]
    assert details["linkedAccounts"][0]["email"]["emailAddress"] == "u***@e***.com"
    assert email.encode() not in r.body
    # validation is the model's, naming the member
    r = signed_in.call("ListPaymentInstruments", paymentManagerArn=shop.manager_arn)
    assert r.status == 400 and r.error_type == "ValidationException"
    assert "userId" in r.json["message"]
    r = signed_in.call("ListPaymentInstruments", paymentManagerArn=shop.manager_arn,
                       userId=user, maxResults=0)
    assert r.status == 400 and "maxResults" in r.json["message"]
    # delete reaches the same rule as DeletePaymentInstrument (the connector must match)
    r = signed_in.call("DeletePaymentInstrument", paymentManagerArn=shop.manager_arn,
                       userId=user, paymentConnectorId=shop.connector_id,
                       paymentInstrumentId=iid)
    assert r.status == 200 and r.json["status"] == "DELETED", r.body
    expect_error(lambda: cdp.get_payment_instrument(
        paymentManagerArn=shop.manager_arn, userId=user, paymentInstrumentId=iid),
        "ResourceNotFoundException", 404)


def test_operations_the_console_does_not_offer_are_refused(signed_in, ccp):
    before = len(ccp.list_payment_managers(maxResults=100)["paymentManagers"])
    r = signed_in.call("CreatePaymentManager", name="ConsoleMade", authorizerType="AWS_IAM",
                       roleArn=f"arn:aws:iam::{ACCOUNT_1}:role/x")
    assert r.status == 404 and r.error_type == "UnknownOperationException"
    assert signed_in.call("ProcessPayment").status == 404
    assert len(ccp.list_payment_managers(maxResults=100)["paymentManagers"]) == before


def test_pages_are_keyset_pages_of_the_api(signed_in, shop, cdp):
    user = new_user()
    made = set()
    for _ in range(5):
        s = cdp.create_payment_session(userId=user, paymentManagerArn=shop.manager_arn,
                                       expiryTimeInMinutes=60)
        made.add(s["paymentSession"]["paymentSessionId"])
    seen, token, pages = [], None, 0
    while True:
        args = dict(paymentManagerArn=shop.manager_arn, userId=user, maxResults=2)
        if token:
            args["nextToken"] = token
        r = signed_in.call("ListPaymentSessions", **args).json
        pages += 1
        seen += [s["paymentSessionId"] for s in r["paymentSessions"]]
        token = r.get("nextToken")
        if not token:
            break
    assert pages == 3 and sorted(seen) == sorted(made) and len(seen) == 5


def test_the_console_acts_for_the_account_on_a_custom_jwt_manager(signed_in, ccp, cdp):
    """Through the API a CUSTOM_JWT manager's sessions need the user's bearer token (a
    SigV4 call is AccessDenied, B32); the console, signed in with the account's own
    credential, lists and reads them for the user it names."""
    m = create_manager(ccp, authorizerType="CUSTOM_JWT",
                       roleArn=f"arn:aws:iam::{ACCOUNT_1}:role/x",
                       authorizerConfiguration={"customJWTAuthorizer": {
                           "discoveryUrl": "https://issuer.example/.well-known/openid-configuration"}})
    arn = m["paymentManagerArn"]
    expect_error(lambda: cdp.list_payment_sessions(userId="alice", paymentManagerArn=arn),
                 "AccessDeniedException", 403)
    r = signed_in.call("ListPaymentSessions", paymentManagerArn=arn, userId="alice")
    assert r.status == 200, r.body
    assert r.json["paymentSessions"] == []
    r = signed_in.call("GetPaymentSession", paymentManagerArn=arn, userId="alice",
                       paymentSessionId="payment-session-AAAAAAAAAAAAAAA")
    assert r.status == 404 and r.error_type == "ResourceNotFoundException", r.body


def test_accounts_see_only_their_own(console_server, shop, web):
    c2 = console_server.creds2
    assert web.login(c2.access_key_id, c2.secret_access_key).status == 200
    ids = [m["paymentManagerId"]
           for m in web.call("ListPaymentManagers", maxResults=100).json["paymentManagers"]]
    assert shop.manager_id not in ids
    r = web.call("GetPaymentManager", paymentManagerId=shop.manager_id)
    assert r.status == 404
    # another account's ARN on the data plane is refused as the API refuses it
    r = web.call("ListPaymentSessions", paymentManagerArn=shop.manager_arn, userId="u")
    assert r.status == 403 and r.error_type == "AccessDeniedException"


def test_the_extension_api_is_reached_through_the_session(
        console_server, web, shop, cdp):
    user = new_user()
    iid = create_instrument(cdp, shop, user)["paymentInstrument"]["paymentInstrumentId"]
    sid = cdp.create_payment_session(userId=user, paymentManagerArn=shop.manager_arn,
                                     expiryTimeInMinutes=60)["paymentSession"]["paymentSessionId"]
    paid = pay(cdp, shop, user, sid, iid)
    q = f"/console/api/ext/payments?managerId={shop.manager_id}&userId={user}"
    assert web.send("GET", q).status == 401
    c = console_server.creds
    assert web.login(c.access_key_id, c.secret_access_key).status == 200
    r = web.send("GET", q, csrf=False)
    assert r.status == 403 and "X-Purser-Csrf" in r.json["message"]
    r = web.send("GET", q)
    assert r.status == 200, r.body
    (row,) = r.json["payments"]
    assert row["paymentId"] == paid["processPaymentId"] and row["userId"] == user
    assert "output" not in row and "payload" not in json.dumps(row)
    # a policy written through the console is the extension API's policy
    path = f"/console/api/ext/managers/{shop.manager_id}/users/{user}/policy"
    r = web.send("PUT", path, {"maxPerPayment": "0.01"})
    assert r.status == 200, r.body
    assert web.send("GET", path).json["policy"]["maxPerPayment"] in ("0.01", "0.010000")
    err = expect_error(lambda: pay(cdp, shop, user, sid, iid), "ValidationException", 400)
    assert "max-per-payment" in err.response["Error"]["Message"]
    assert web.send("DELETE", path, csrf=False).status == 403
    assert web.send("DELETE", path).status == 204
    assert pay(cdp, shop, user, sid, iid)["status"] == "PROOF_GENERATED"
    # another account's session sees none of it
    c2 = console_server.creds2
    other = Browserless(console_server.endpoint)
    assert other.login(c2.access_key_id, c2.secret_access_key).status == 200
    r = other.send("GET", q)
    assert r.status in (200, 404) and paid["processPaymentId"].encode() not in r.body


# ---------------------------------------------------------------- browser


def _browser_or_skip() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if not (CONSOLE_DIR / "node_modules" / "playwright-core").is_dir():
        missing.append("console/node_modules (npm ci --prefix console)")
    if not shutil.which("node"):
        missing.append("node")
    if missing:
        msg = "browser test needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def test_the_console_end_to_end_in_a_browser(console_server, ccp, cdp, tmp_path):
    """Log in, see the payments made through boto3 a moment before, filter them by user,
    read the spend chart, delete an instrument and a session, set a policy; then boto3
    sees what the clicks changed: the session and instrument are gone and the next
    payment is refused by the policy."""
    _browser_or_skip()
    shop = setup_wallet(ccp, ACCOUNT_1)  # its own manager: the chart's totals are exact
    user, other = new_user(), new_user()
    email = f"{user}@example.com"
    inst = create_instrument(cdp, shop, user, linked=[{"email": {"emailAddress": email}}])
    iid = inst["paymentInstrument"]["paymentInstrumentId"]
    wallet = inst["paymentInstrument"]["paymentInstrumentDetails"]["embeddedCryptoWallet"]
    other_iid = create_instrument(cdp, shop, other)["paymentInstrument"]["paymentInstrumentId"]
    mk = lambda u: cdp.create_payment_session(  # noqa: E731
        userId=u, paymentManagerArn=shop.manager_arn, expiryTimeInMinutes=60,
        limits={"maxSpendAmount": {"value": "5", "currency": "USD"}}
    )["paymentSession"]["paymentSessionId"]
    sid, doomed, other_sid = mk(user), mk(user), mk(other)
    # payments through boto3 a moment before the browser looks
    paid = pay(cdp, shop, user, sid, iid, amount="100000")
    other_paid = pay(cdp, shop, other, other_sid, other_iid, amount="250000")
    assert paid["status"] == other_paid["status"] == "PROOF_GENERATED"
    manager = ccp.get_payment_manager(paymentManagerId=shop.manager_id)

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shots = ARTEFACTS / f"run-{uuid.uuid4().hex[:8]}"
    plan = {
        "endpoint": console_server.endpoint,
        "chromium": CHROMIUM,
        "shots": str(shots),
        "accessKeyId": console_server.creds.access_key_id,
        "secretAccessKey": console_server.creds.secret_access_key,
        "accountId": ACCOUNT_1,
        "managerId": shop.manager_id,
        "managerName": manager["name"],
        "connectorId": shop.connector_id,
        "user": user,
        "otherUser": other,
        "instrumentId": iid,
        "otherInstrumentId": other_iid,
        "walletAddress": wallet["walletAddress"],
        "email": email,
        "maskedEmail": "u***@e***.com",
        "sessionId": sid,
        "doomedSessionId": doomed,
        "sessionCap": "5.00",
        "sessionSpent": "0.10",
        "sessionAvailable": "4.90",
        "ledger": True,
        "paymentId": paid["processPaymentId"],
        "otherPaymentId": other_paid["processPaymentId"],
        "payee": x402_requirement()["payTo"],
        "managerPayments": 2,
        "managerSpend": "0.350000",
        "policyMaxPerPayment": "0.05",
    }
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    p = subprocess.run(["node", str(CONSOLE_DIR / "e2e" / "console.e2e.mjs"), str(plan_path)],
                       cwd=str(CONSOLE_DIR), capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    print(p.stdout)
    print(f"console screenshots: {shots}", file=sys.stderr)
    assert p.returncode == 0 and "ALL OK" in p.stdout, (
        f"browser run failed (screenshots in {shots}):\n{p.stdout}\n{p.stderr[-3000:]}")
    # what the clicks did, seen through boto3
    expect_error(lambda: cdp.get_payment_session(
        userId=user, paymentManagerArn=shop.manager_arn, paymentSessionId=doomed),
        "ResourceNotFoundException", 404)
    expect_error(lambda: cdp.get_payment_instrument(
        paymentManagerArn=shop.manager_arn, userId=other, paymentInstrumentId=other_iid),
        "ResourceNotFoundException", 404)
    assert cdp.get_payment_instrument(paymentManagerArn=shop.manager_arn, userId=user,
                                      paymentInstrumentId=iid)["paymentInstrument"]
    # the policy set in the browser refuses the next payment, and it consumes nothing
    err = expect_error(lambda: pay(cdp, shop, user, sid, iid, amount="100000"),
                       "ValidationException", 400)
    assert "max-per-payment" in err.response["Error"]["Message"], err.response
    s = cdp.get_payment_session(userId=user, paymentManagerArn=shop.manager_arn,
                                paymentSessionId=sid)["paymentSession"]
    assert s["availableLimits"]["availableSpendAmount"]["value"] == "4.90"
    # under the policy's maximum it still pays
    assert pay(cdp, shop, user, sid, iid, amount="50000")["status"] == "PROOF_GENERATED"
    assert console_server.creds.secret_access_key not in console_server.log_text()
