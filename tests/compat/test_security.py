"""What an attacker with a captured request, a proxy in the way or a typo in a config file
must not achieve (B25, B26, issue 10), checked against the running binary with requests
signed by botocore's own signers and then tampered with:

1. a signature that does not cover the body (UNSIGNED-PAYLOAD, a presigned URL) is
   refused, so a captured request cannot be re-aimed at another payee or amount;
2. every payment has a ceiling, even in a session without limits;
3. a byte-identical replay of a signed ProcessPayment without a clientToken answers the
   original payment and debits once, on one node and across nodes on PostgreSQL;
4. a malformed config file never prints a secret;
5. a repeated identity header is refused, not silently resolved;
6. the SQLite database files are private (0600).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import stat
import subprocess
import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

pytest.register_assert_rewrite("chain_fixtures", "cluster_fixtures")

from chain_fixtures import (  # noqa: E402
    available,
    error_message,
    new_user,
    x402_requirement,
)
from compat_helpers import REGION, expect_validation  # noqa: E402
from conftest import AUDIT, SIGNING_NAME, _find_binary  # noqa: E402

pytest_plugins = ["chain_fixtures", "cluster_fixtures"]

USER_HEADER = "X-Amzn-Bedrock-AgentCore-Payments-User-Id"
AGENT_HEADER = "X-Amzn-Bedrock-AgentCore-Payments-Agent-Name"
PAYLOAD = "paymentInput.cryptoX402.payload"
MAX_ATOMIC = 10_000_000_000  # 10,000 USD in USDC atomic units


# ------------------------------------------------------------------ raw signed requests


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_type(self) -> str | None:
        return self.headers.get("x-amzn-errortype")


@dataclass
class Signed:
    """A request exactly as it goes on the wire: it can be sent again, byte for byte,
    or with its body (or anything else) changed after signing."""
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def send(self, endpoint: str, body: bytes | None = None) -> Raw:
        host, port = endpoint.removeprefix("http://").split(":")
        body = self.body if body is None else body
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            # The Host header is the signed one (a replay to another node behind a load
            # balancer carries the same Host).
            conn.putrequest(self.method, self.path, skip_host=True,
                            skip_accept_encoding=True)
            for name, value in self.headers:
                if name.lower() != "content-length":
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            raw = Raw(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()
        AUDIT.check(f"raw {self.method} {self.path}", raw.status, raw.headers, raw.body)
        return raw


class _BodyQueryAuth(SigV4QueryAuth):
    """botocore's presigner, but keeping the JSON body in the body (botocore moves a
    form body into the query string) and signing its SHA-256, as aws-sigv4 presigns."""

    def _modify_request_before_signing(self, request):
        data, request.data = request.data, b""
        super()._modify_request_before_signing(request)
        request.data = data


class _UnsignedPayloadQueryAuth(_BodyQueryAuth):
    """A presigned URL whose signature does not cover the body (UNSIGNED-PAYLOAD, as
    S3-style presigners sign)."""

    def payload(self, request):
        return "UNSIGNED-PAYLOAD"


def sign(endpoint: str, creds, method: str, path: str, body: Any,
         headers: list[tuple[str, str]] = (), content_sha256: str | None = None,
         presign: type[SigV4QueryAuth] | None = None) -> Signed:
    """Sign with botocore's SigV4Auth (or a presigner). `headers` may repeat a name: each
    is added (and signed) as a header of its own. `content_sha256`: a signed
    x-amz-content-sha256 header with this value."""
    payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
    req = AWSRequest(method=method, url=endpoint + path, data=payload)
    req.headers["Content-Type"] = "application/json"
    for name, value in headers:
        req.headers[name] = value  # HTTPHeaders: appends, keeps repeats
    if content_sha256 is not None:
        req.headers["X-Amz-Content-SHA256"] = content_sha256
    credentials = Credentials(creds.access_key_id, creds.secret_access_key)
    if presign is not None:
        presign(credentials, SIGNING_NAME, REGION, expires=300).add_auth(req)
    else:
        SigV4Auth(credentials, SIGNING_NAME, REGION).add_auth(req)
    url_path = req.url[len(endpoint):]
    host = endpoint.removeprefix("http://")
    wire = [("Host", host)] + [(k, v) for k, v in req.headers.items()]
    return Signed(method, url_path, wire, req.body or b"")


def payment_body(w, session_id: str, instrument_id: str, requirement: dict,
                 client_token: str | None = None) -> dict:
    body = {"paymentManagerArn": w.manager_arn, "paymentSessionId": session_id,
            "paymentInstrumentId": instrument_id, "paymentType": "CRYPTO_X402",
            "paymentInput": {"cryptoX402": {"version": "2", "payload": requirement}}}
    if client_token is not None:
        body["clientToken"] = client_token
    return body


@pytest.fixture
def payer(wallet, make_instrument, make_session):
    """(user, instrument id, session id) of a fresh user with a 1.00 USD session."""
    user = new_user()
    inst = make_instrument(wallet, user)
    sess = make_session(wallet, user, cap="1.00")
    return user, inst["paymentInstrumentId"], sess["paymentSessionId"]


def payments_of(server, session_id: str) -> list:
    return server.query("SELECT id, debited, payee, amount FROM payments WHERE session_id = ?",
                        session_id)


# ------------------------------------------------------------- 1. the body is signed


def test_unsigned_payload_cannot_carry_a_rewritten_payment(dp_server, dp, wallet, payer):
    user, iid, sid = payer
    honest = payment_body(wallet, sid, iid, x402_requirement(amount="100000"))
    signed = sign(dp_server.endpoint, dp_server.creds, "POST", "/payments/processPayment",
                  honest, [(USER_HEADER, user)], content_sha256="UNSIGNED-PAYLOAD")
    attacker = "0x" + "ab" * 20
    rewritten = payment_body(wallet, sid, iid,
                             x402_requirement(amount="900000", pay_to=attacker))
    for body in (json.dumps(rewritten).encode(), signed.body):
        r = signed.send(dp_server.endpoint, body)
        assert (r.status, r.error_type) == (403, "InvalidSignatureException"), r.body
        assert "x-amz-content-sha256" in r.json["message"], r.json
    # A declared hash (signed) of another body is refused the same way.
    other = sign(dp_server.endpoint, dp_server.creds, "POST", "/payments/processPayment",
                 honest, [(USER_HEADER, user)],
                 content_sha256=hashlib.sha256(json.dumps(rewritten).encode()).hexdigest())
    r = other.send(dp_server.endpoint)
    assert (r.status, r.error_type) == (403, "InvalidSignatureException"), r.body
    assert payments_of(dp_server, sid) == []
    assert available(dp, wallet, user, sid) == "1.00"
    # The same request signed over its body (what every SDK does) pays.
    good = sign(dp_server.endpoint, dp_server.creds, "POST", "/payments/processPayment",
                honest, [(USER_HEADER, user)])
    r = good.send(dp_server.endpoint)
    assert r.status == 200, r.body
    assert r.json["paymentOutput"]["cryptoX402"]["payload"]["authorization"]["value"] == "100000"
    # ... and with a signed x-amz-content-sha256 that is the body's hash.
    declared = sign(dp_server.endpoint, dp_server.creds, "POST", "/payments/processPayment",
                    honest, [(USER_HEADER, user)],
                    content_sha256=hashlib.sha256(json.dumps(honest).encode()).hexdigest())
    assert declared.send(dp_server.endpoint).status == 200
    assert available(dp, wallet, user, sid) == "0.80"


def test_presigned_url_must_cover_the_body(dp_server, dp, wallet, payer):
    user, iid, sid = payer
    honest = payment_body(wallet, sid, iid, x402_requirement(amount="100000"))
    rewritten = payment_body(wallet, sid, iid, x402_requirement(amount="1000000"))
    # Presigned with UNSIGNED-PAYLOAD: the body is not covered, refused whatever it is.
    url = sign(dp_server.endpoint, dp_server.creds, "POST", "/payments/processPayment",
               honest, [(USER_HEADER, user)], presign=_UnsignedPayloadQueryAuth)
    assert "X-Amz-Signature=" in url.path
    for body in (json.dumps(rewritten).encode(), url.body):
        r = url.send(dp_server.endpoint, body)
        assert (r.status, r.error_type) == (403, "InvalidSignatureException"), r.body
    assert payments_of(dp_server, sid) == []
    # A presigned URL that signs the body's hash works for that body only.
    url = sign(dp_server.endpoint, dp_server.creds, "POST", "/payments/processPayment",
               honest, [(USER_HEADER, user)], presign=_BodyQueryAuth)
    r = url.send(dp_server.endpoint, json.dumps(rewritten).encode())
    assert (r.status, r.error_type) == (403, "InvalidSignatureException"), r.body
    assert available(dp, wallet, user, sid) == "1.00"
    assert url.send(dp_server.endpoint).status == 200
    assert available(dp, wallet, user, sid) == "0.90"


# ------------------------------------------------------------ 2. a ceiling per payment


def test_every_payment_has_a_ceiling_even_without_limits(dp_server, dp, wallet,
                                                         make_instrument, make_session):
    user = new_user()
    iid = make_instrument(wallet, user)["paymentInstrumentId"]
    sid = make_session(wallet, user, cap=None)["paymentSessionId"]

    def pay(amount: str, version: str = "2"):
        return dp.process_payment(
            userId=user, paymentManagerArn=wallet.manager_arn, paymentSessionId=sid,
            paymentInstrumentId=iid, paymentType="CRYPTO_X402",
            paymentInput={"cryptoX402": {"version": version,
                                         "payload": x402_requirement(version=version,
                                                                     amount=amount)}})

    for amount in (str(2**128 - 1), str(MAX_ATOMIC + 1)):
        msg = error_message(expect_validation(lambda: pay(amount), field=f"{PAYLOAD}.amount"))
        assert msg.endswith(f"Payment amount exceeds maximum allowed value. "
                            f"Received: {amount}, Maximum: {MAX_ATOMIC}"), msg
    msg = error_message(expect_validation(lambda: pay(str(MAX_ATOMIC + 1), "1"),
                                          field=f"{PAYLOAD}.maxAmountRequired"))
    assert "exceeds maximum allowed value" in msg
    assert payments_of(dp_server, sid) == []
    # The ceiling itself is allowed.
    out = pay(str(MAX_ATOMIC))["paymentOutput"]["cryptoX402"]["payload"]
    assert out["authorization"]["value"] == str(MAX_ATOMIC)


# ------------------------------------------- 3. a replayed request never acts twice


def test_replayed_payment_without_client_token_pays_once(dp_server, dp, wallet, payer):
    user, iid, sid = payer
    body = payment_body(wallet, sid, iid, x402_requirement(amount="100000"))
    assert "clientToken" not in body
    signed = sign(dp_server.endpoint, dp_server.creds, "POST", "/payments/processPayment",
                  body, [(USER_HEADER, user)])
    replies = [signed.send(dp_server.endpoint) for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 200], [r.body for r in replies]
    assert len({r.body for r in replies}) == 1, "a replay must answer the original reply"
    assert len(payments_of(dp_server, sid)) == 1
    assert available(dp, wallet, user, sid) == "0.90"
    # The same body signed again (a new signature: a new request) is a new payment.
    again = sign(dp_server.endpoint, dp_server.creds, "POST", "/payments/processPayment",
                 body, [(USER_HEADER, user), ("X-Purser-Test-Nonce", uuid.uuid4().hex)])
    r = again.send(dp_server.endpoint)
    assert r.status == 200, r.body
    assert r.json["processPaymentId"] != replies[0].json["processPaymentId"]
    assert available(dp, wallet, user, sid) == "0.80"


def test_replayed_create_without_client_token_creates_once(dp_server, dp, wallet):
    user = new_user()
    body = {"paymentManagerArn": wallet.manager_arn, "expiryTimeInMinutes": 60}
    signed = sign(dp_server.endpoint, dp_server.creds, "POST", "/payments/createPaymentSession",
                  body, [(USER_HEADER, user)])
    replies = [signed.send(dp_server.endpoint) for _ in range(2)]
    assert [r.status for r in replies] == [201, 201], [r.body for r in replies]
    ids = {r.json["paymentSession"]["paymentSessionId"] for r in replies}
    assert len(ids) == 1, ids
    listed = dp.list_payment_sessions(userId=user, paymentManagerArn=wallet.manager_arn)
    assert len(listed["paymentSessions"]) == 1


def test_replay_across_nodes_on_postgresql_pays_once(fresh_pg_database, nodes):
    from cluster_fixtures import (create_session, new_master_key, pg_reason,
                                  session_available, setup_payments)
    if pg_reason():
        pytest.skip(pg_reason())
    n1, n2 = nodes.cluster(2, fresh_pg_database.url, new_master_key())
    s = setup_payments(n1)
    sid = create_session(n1, s, cap="1.00")["paymentSessionId"]
    body = {"paymentManagerArn": s.manager_arn, "paymentSessionId": sid,
            "paymentInstrumentId": s.instrument_id, "paymentType": "CRYPTO_X402",
            "paymentInput": {"cryptoX402": {"version": "2",
                                            "payload": x402_requirement(amount="100000")}}}
    signed = sign(n1.endpoint, n1.creds, "POST", "/payments/processPayment", body,
                  [(USER_HEADER, s.user_id)])
    # Three copies at once, one to node 1 and two to node 2 (same Host header: a load
    # balancer in front of both).
    targets = [n1.endpoint, n2.endpoint, n2.endpoint]
    results: list[Any] = [None] * 3
    barrier = threading.Barrier(3)

    def send(i: int) -> None:
        barrier.wait(timeout=30)
        results[i] = signed.send(targets[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [r.status for r in results] == [200, 200, 200], [r.body for r in results]
    assert len({r.json["processPaymentId"] for r in results}) == 1
    rows = fresh_pg_database.query(
        f"SELECT debited FROM payments WHERE session_id = '{sid}'")
    assert [int(r[0]) for r in rows] == [100_000]
    assert Decimal(session_available(n2, s, sid)) == Decimal("0.90")


# ------------------------------------------------------- 5. repeated identity headers


def test_repeated_identity_headers_are_refused(dp_server, dp, wallet, payer):
    user, iid, sid = payer
    other = new_user()
    create = {"paymentManagerArn": wallet.manager_arn, "expiryTimeInMinutes": 60}
    for headers, member, name in (
        ([(USER_HEADER, other), (USER_HEADER, user)], "userId", USER_HEADER),
        ([(USER_HEADER, user), (USER_HEADER, user)], "userId", USER_HEADER),
        ([(USER_HEADER, user), (AGENT_HEADER, "a"), (AGENT_HEADER, "b")], "agentName",
         AGENT_HEADER),
    ):
        r = sign(dp_server.endpoint, dp_server.creds, "POST",
                 "/payments/createPaymentSession", create, headers).send(dp_server.endpoint)
        assert (r.status, r.error_type) == (400, "ValidationException"), r.body
        assert r.json["fieldList"] == [
            {"name": member,
             "message": f"Member must be sent once; header {name} appears 2 times"}]
        assert f"Value at '{member}'" in r.json["message"]
    for u in (user, other):
        listed = dp.list_payment_sessions(userId=u, paymentManagerArn=wallet.manager_arn)
        assert [x["paymentSessionId"] for x in listed["paymentSessions"]] in ([], [sid])
    pay = payment_body(wallet, sid, iid, x402_requirement(amount="100000"))
    r = sign(dp_server.endpoint, dp_server.creds, "POST", "/payments/processPayment", pay,
             [(USER_HEADER, "mallory"), (USER_HEADER, user)]).send(dp_server.endpoint)
    assert (r.status, r.error_type) == (400, "ValidationException"), r.body
    assert available(dp, wallet, user, sid) == "1.00"


# ----------------------------------------------------------- 4 and 6. files and config


def test_database_files_are_private(dp_server):
    for name in ("purser.db", "purser.db-wal", "purser.db-shm", "master.key"):
        path = dp_server.data_dir / name
        if name == "master.key" and not path.exists():
            continue  # the key came from the environment
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600, f"{name}: {oct(mode)}"


@pytest.mark.parametrize("text, where", [
    ('master_key = "{key}\nregion = "us-east-1"\n', "line 1"),
    ('region = "us-east-1"\nmaster_key = ["{key}"]\n', "line 2, key `master_key`"),
    ('[[credentials]]\naccess_key_id = "AKIAEXTRAEXTRA000002"\n'
     'secret_access_key = {{ v = "{secret}" }}\naccount_id = "222222222222"\n',
     "line 3, key `secret_access_key`"),
    ('secret_access_key = """{secret}\n', "line 2"),
])
def test_malformed_config_never_prints_a_secret(tmp_path, text, where):
    key = "9oPzL3kT0vXq2Yb1Nc8Rw4Ue6Ia5Sd7Fg0Hj2Kl4Mn="
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    config = tmp_path / "purser.toml"
    config.write_text(text.format(key=key, secret=secret), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURSER_")}
    proc = subprocess.run(
        [str(_find_binary()), "serve", "--listen", "127.0.0.1:0", "--data-dir",
         str(tmp_path / "data"), "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert where in out, out
    for needle in (key, secret, key[:12], secret[:12], "EXAMPLEKEY"):
        assert needle not in out, f"{needle!r} leaked: {out}"
