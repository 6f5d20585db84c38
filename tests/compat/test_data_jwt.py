"""CUSTOM_JWT payment managers on the data plane (B30-B33): bearer tokens checked against
a local OpenID issuer (discovery + JWKS on 127.0.0.1, RSA / EC / Ed25519 keys, rotation),
the payment user is the token's `sub`, every refusal is an AccessDeniedException that
never echoes the token or its claims' values."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

pytest.register_assert_rewrite("chain_fixtures")

from chain_fixtures import (  # noqa: E402
    CONTROL,
    DATA,
    PAYEE,
    all_dead_rpc,
    make_boto,
    new_connector,
    start_purser,
    wallet_address,
    x402_requirement,
)
from jwt_fixtures import Realm, b64url  # noqa: E402
from compat_helpers import (  # noqa: E402
    ACCOUNT_1,
    REGION,
    ROLE_ARN,
    create_manager,
    expect_error,
    http_status,
)

pytest_plugins = ["chain_fixtures", "jwt_fixtures"]

# Seconds between two refreshes of one issuer's keys on the test server.
REFRESH_SECS = 2
SECRET_VALUE = "s3cr3t-claim-value-do-not-echo"


# ===================================================================== server


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory):
    """A Purser of its own (chains on dead loopback ports: signing needs no chain) whose
    issuers' keys may be refreshed every REFRESH_SECS seconds."""
    server = start_purser(tmp_path_factory.mktemp("purser-jwt"), rpc=all_dead_rpc(),
                          extra_env={"PURSER_JWT_REFRESH_SECS": str(REFRESH_SECS)})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def jcp(jwt_server):
    return make_boto(jwt_server, CONTROL)


@pytest.fixture(scope="module")
def jdp(jwt_server):
    """SigV4 data plane of the test server, account 1."""
    return make_boto(jwt_server, DATA)


SENT_TOKENS: list[str] = []


class Bearer:
    """A boto3 data-plane client that, like the official SDK, signs with SigV4 and then
    overwrites the Authorization header with `Bearer <token>` (before-send)."""

    def __init__(self, server, token: str = "") -> None:
        self.token = token
        self.client = make_boto(server, DATA)
        self.client.meta.events.register("before-send.bedrock-agentcore.*", self._inject)

    def _inject(self, request, **_kwargs) -> None:
        SENT_TOKENS.append(self.token)
        request.headers["Authorization"] = f"Bearer {self.token}"

    def __call__(self, token: str) -> Any:
        self.token = token
        return self.client


@pytest.fixture(scope="module")
def bearer(jwt_server) -> Bearer:
    return Bearer(jwt_server)


@dataclass
class JwtManager:
    manager_id: str
    arn: str
    connector_id: str
    realm: Realm


def make_jwt_manager(control, realm: Realm, **authorizer: Any) -> JwtManager:
    cfg = {"discoveryUrl": realm.discovery_url, **authorizer}
    m = create_manager(control, authorizerType="CUSTOM_JWT",
                       authorizerConfiguration={"customJWTAuthorizer": cfg})
    c = new_connector(control, m["paymentManagerId"])
    return JwtManager(m["paymentManagerId"], m["paymentManagerArn"], c["paymentConnectorId"],
                      realm)


@pytest.fixture(scope="module")
def plain(jcp, issuer) -> JwtManager:
    """A CUSTOM_JWT manager that checks only signature, issuer and times; RSA key."""
    realm = issuer.realm("plain")
    realm.add_rsa("rsa-1")
    return make_jwt_manager(jcp, realm)


STRICT = {
    "allowedAudience": ["purser-api"],
    "allowedClients": ["agent-app"],
    "allowedScopes": ["payments/write"],
    "customClaims": [
        {"inboundTokenClaimName": "tier", "inboundTokenClaimValueType": "STRING",
         "authorizingClaimMatchValue": {"claimMatchValue": {"matchValueString": "gold"},
                                        "claimMatchOperator": "EQUALS"}},
        {"inboundTokenClaimName": "groups", "inboundTokenClaimValueType": "STRING_ARRAY",
         "authorizingClaimMatchValue": {"claimMatchValue": {"matchValueString": "payers"},
                                        "claimMatchOperator": "CONTAINS"}},
        {"inboundTokenClaimName": "roles", "inboundTokenClaimValueType": "STRING_ARRAY",
         "authorizingClaimMatchValue": {
             "claimMatchValue": {"matchValueStringList": ["agent", "admin"]},
             "claimMatchOperator": "CONTAINS_ANY"}},
    ],
}

GOOD = {"aud": "purser-api", "client_id": "agent-app", "scope": "openid payments/write",
        "tier": "gold", "groups": ["staff", "payers"], "roles": ["agent"]}


@pytest.fixture(scope="module")
def strict(jcp, issuer) -> JwtManager:
    """A CUSTOM_JWT manager with every list and custom claim rule; EC P-256 key."""
    realm = issuer.realm("strict")
    realm.add_ec("ec-1")
    return make_jwt_manager(jcp, realm, **STRICT)


def wallet_details() -> dict:
    return {"embeddedCryptoWallet": {"network": "ETHEREUM", "linkedAccounts": []}}


def create_instrument(client, m: JwtManager, **kw: Any) -> dict:
    return client.create_payment_instrument(
        paymentManagerArn=m.arn, paymentConnectorId=m.connector_id,
        paymentInstrumentType="EMBEDDED_CRYPTO_WALLET",
        paymentInstrumentDetails=wallet_details(), **kw)["paymentInstrument"]


def create_session(client, m: JwtManager, cap: str = "1.00", **kw: Any) -> dict:
    return client.create_payment_session(
        paymentManagerArn=m.arn, expiryTimeInMinutes=60,
        limits={"maxSpendAmount": {"value": cap, "currency": "USD"}}, **kw)["paymentSession"]


def denied(call: Callable[[], Any], *fragments: str, secrets: tuple[str, ...] = ()) -> str:
    """The call fails with AccessDeniedException 403; its message contains every
    fragment and none of the secrets (nor the token sent)."""
    err = expect_error(call, "AccessDeniedException", 403)
    message = err.response["Error"]["Message"]
    for f in fragments:
        assert f in message, message
    for s in (*secrets, SECRET_VALUE, *SENT_TOKENS[-1:]):
        if s:
            assert s not in message, message
    return message


# ============================================================ the payment user


def test_the_user_is_the_token_subject(bearer, plain):
    """Create/get/list of instruments and sessions act as `sub`; users are isolated."""
    alice, bob = "alice-" + uuid.uuid4().hex[:8], "bob-" + uuid.uuid4().hex[:8]
    ta, tb = plain.realm.token(alice), plain.realm.token(bob)

    inst = create_instrument(bearer(ta), plain)
    assert inst["userId"] == alice
    assert inst["paymentManagerArn"] == plain.arn
    assert wallet_address(inst).startswith("0x")
    iid = inst["paymentInstrumentId"]
    got = bearer(ta).get_payment_instrument(paymentManagerArn=plain.arn,
                                            paymentInstrumentId=iid)["paymentInstrument"]
    assert got["userId"] == alice and got["paymentInstrumentId"] == iid
    listed = bearer(ta).list_payment_instruments(paymentManagerArn=plain.arn)
    assert [i["paymentInstrumentId"] for i in listed["paymentInstruments"]] == [iid]

    sess = create_session(bearer(ta), plain)
    assert sess["userId"] == alice
    sid = sess["paymentSessionId"]
    assert bearer(ta).get_payment_session(
        paymentManagerArn=plain.arn, paymentSessionId=sid)["paymentSession"]["userId"] == alice
    assert [s["paymentSessionId"] for s in bearer(ta).list_payment_sessions(
        paymentManagerArn=plain.arn)["paymentSessions"]] == [sid]

    # Bob sees none of it.
    expect_error(lambda: bearer(tb).get_payment_instrument(
        paymentManagerArn=plain.arn, paymentInstrumentId=iid),
        "ResourceNotFoundException", 404)
    expect_error(lambda: bearer(tb).get_payment_session(
        paymentManagerArn=plain.arn, paymentSessionId=sid), "ResourceNotFoundException", 404)
    assert bearer(tb).list_payment_instruments(paymentManagerArn=plain.arn)[
        "paymentInstruments"] == []
    assert bearer(tb).list_payment_sessions(paymentManagerArn=plain.arn)[
        "paymentSessions"] == []

    # A userId header equal to sub is accepted; another user's is refused.
    assert bearer(ta).get_payment_instrument(
        userId=alice, paymentManagerArn=plain.arn,
        paymentInstrumentId=iid)["paymentInstrument"]["userId"] == alice
    denied(lambda: bearer(tb).get_payment_instrument(
        userId=alice, paymentManagerArn=plain.arn, paymentInstrumentId=iid),
        "does not match the bearer token's subject", secrets=(alice, bob))


def test_process_payment_as_the_subject(bearer, plain, jwt_server):
    alice, bob = "alice-" + uuid.uuid4().hex[:8], "bob-" + uuid.uuid4().hex[:8]
    ta, tb = plain.realm.token(alice), plain.realm.token(bob)
    inst = create_instrument(bearer(ta), plain)
    sess = create_session(bearer(ta), plain, cap="1.00")
    req = x402_requirement("BASE_SEPOLIA", "2", "100000", PAYEE)
    args = dict(paymentManagerArn=plain.arn, paymentSessionId=sess["paymentSessionId"],
                paymentInstrumentId=inst["paymentInstrumentId"], paymentType="CRYPTO_X402",
                paymentInput={"cryptoX402": {"version": "2", "payload": req}})
    resp = bearer(ta).process_payment(**args)
    assert http_status(resp) == 200
    assert resp["status"] == "PROOF_GENERATED"
    auth = resp["paymentOutput"]["cryptoX402"]["payload"]["authorization"]
    assert auth["from"] == wallet_address(inst)
    left = bearer(ta).get_payment_session(paymentManagerArn=plain.arn,
                                          paymentSessionId=sess["paymentSessionId"])
    assert left["paymentSession"]["availableLimits"]["availableSpendAmount"]["value"] == "0.90"
    # Bob cannot pay from Alice's session with Alice's instrument.
    err = expect_error(lambda: bearer(tb).process_payment(**args), "ValidationException", 400)
    assert "session not found" in err.response["Error"]["Message"].lower()
    left = bearer(ta).get_payment_session(paymentManagerArn=plain.arn,
                                          paymentSessionId=sess["paymentSessionId"])
    assert left["paymentSession"]["availableLimits"]["availableSpendAmount"]["value"] == "0.90"


# ================================================================== refusals


def test_every_claim_check(bearer, strict):
    r = strict.realm

    def call(**claims: Any):
        token = r.token(**{**GOOD, **claims})
        return lambda: bearer(token).list_payment_instruments(paymentManagerArn=strict.arn)

    call()()  # all good
    call(aud=["other", "purser-api"])()  # aud as an array
    call(client_id=None, azp="agent-app")()  # azp instead of client_id
    call(scope=None, scp=["payments/write"])()  # scp array
    call(roles=["admin", "x"])()  # CONTAINS_ANY, the other value

    S = SECRET_VALUE
    denied(call(aud=S), "audience (aud) is not allowed")
    denied(call(aud=None), "audience (aud) is not allowed")
    denied(call(client_id=S), "client (client_id or azp) is not allowed")
    denied(call(scope=f"openid {S}"), "none of the scopes")
    denied(call(tier=S), "claim 'tier' does not satisfy", "(EQUALS)")
    denied(call(tier=None), "no claim 'tier'")
    denied(call(groups=[S]), "claim 'groups' does not satisfy", "(CONTAINS)")
    denied(call(groups="payers"), "claim 'groups' does not satisfy")
    denied(call(roles=[S, "viewer"]), "claim 'roles' does not satisfy", "(CONTAINS_ANY)")


def test_token_refusals(bearer, plain, issuer):
    r = plain.realm
    other = issuer.realm("other")
    other.add_rsa("rsa-1")  # the same kid as plain's, another key

    def call(token: str):
        return lambda: bearer(token).list_payment_instruments(paymentManagerArn=plain.arn)

    now = int(time.time())
    call(r.token())()  # accepted
    call(r.token(exp=now - 30))()  # within the 60 s leeway
    denied(call(r.token(exp=now - 3600)), "expired")
    denied(call(r.token(nbf=now + 3600)), "not valid yet")
    denied(call(r.token(exp=None)), "no exp")
    denied(call(r.token(iss=other.issuer)), "issuer (iss)", secrets=(other.issuer,))
    denied(call(r.token(sub=None)), "no subject (sub)")
    denied(call(r.token(sub="")), "no subject (sub)")
    # Signed by another key under the same kid.
    denied(call(r.token(key=other.keys["rsa-1"][0])), "signature does not verify")
    # Tampered payload: another sub pasted into a valid token.
    h, _p, s = r.token("alice").split(".")
    forged = ".".join([h, b64url(json.dumps(r.claims("mallory")).encode()), s])
    denied(call(forged), "signature does not verify", secrets=("mallory",))
    # alg none, HMAC, and an alg that does not fit the key.
    unsigned = ".".join([b64url(b'{"alg":"none","typ":"JWT"}'),
                         b64url(json.dumps(r.claims()).encode()), ""])
    denied(call(unsigned), "alg none")
    hs = pyjwt.encode(r.claims(), "a-shared-secret-long-enough-for-hs256!", algorithm="HS256",
                      headers={"kid": "rsa-1"})
    denied(call(hs), "HMAC")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    denied(call(r.token(alg="ES256", key=ec_key)), "does not match its signing key")
    # Garbage.
    denied(call("not-a-jwt"), "not a well-formed JWT")
    denied(call("a.b.c"), "not a well-formed JWT")
    denied(call("x" * 20000), "longer than")


def test_rotation_and_algorithms(bearer, jcp, issuer, jwt_server):
    """An unknown kid refreshes the JWKS, at most once per REFRESH_SECS; RSA (RS/PS),
    EC (P-256, P-384) and Ed25519 keys all verify."""
    r = issuer.realm("rot")
    r.add_rsa("k1")
    m = make_jwt_manager(jcp, r)

    def lst(token: str):
        return bearer(token).list_payment_instruments(paymentManagerArn=m.arn)

    lst(r.token(kid="k1"))
    assert r.jwks_fetches == 1
    lst(r.token(kid="k1"))
    assert r.jwks_fetches == 1, "cached"
    # The issuer rotates in k2; the first try falls within the refresh interval of the
    # first fetch only if it comes quickly, so wait for a clean start, then rotate.
    time.sleep(REFRESH_SECS + 0.2)
    r.add_ec("k2")
    lst(r.token(kid="k2"))  # unknown kid -> one refresh -> accepted
    assert r.jwks_fetches == 2
    # Rotated again right away: refused within the interval, no fetch...
    r.add_ed("k3")
    denied(lambda: lst(r.token(kid="k3")), "signing key (kid) is not among")
    assert r.jwks_fetches == 2
    # ...and accepted once the interval has passed.
    time.sleep(REFRESH_SECS + 0.2)
    lst(r.token(kid="k3"))
    assert r.jwks_fetches == 3
    # The other algorithms.
    r.add_rsa("k4", alg="PS256")
    r.add_ec("k5", curve=ec.SECP384R1(), alg="ES384")
    r.add_rsa("k6", alg="RS512")
    time.sleep(REFRESH_SECS + 0.2)
    lst(r.token(kid="k4"))
    for kid in ("k5", "k6"):
        lst(r.token(kid=kid))
    assert r.jwks_fetches == 4


def test_issuer_down(bearer, jcp, issuer):
    """Cached keys keep serving while the issuer is down; an issuer never reached is a
    403, not a 5xx."""
    r = issuer.realm("down")
    r.add_rsa("k1")
    m = make_jwt_manager(jcp, r)
    token = r.token()
    bearer(token).list_payment_instruments(paymentManagerArn=m.arn)
    r.down = True
    bearer(r.token()).list_payment_instruments(paymentManagerArn=m.arn)
    r.add_rsa("k2")
    time.sleep(REFRESH_SECS + 0.2)
    denied(lambda: bearer(r.token(kid="k2")).list_payment_instruments(
        paymentManagerArn=m.arn), "signing key (kid) is not among")
    bearer(r.token(kid="k1")).list_payment_instruments(paymentManagerArn=m.arn)

    never = issuer.realm("never")
    never.add_rsa("k1")
    never.down = True
    m2 = make_jwt_manager(jcp, never)
    denied(lambda: bearer(never.token()).list_payment_instruments(paymentManagerArn=m2.arn),
           "could not be fetched")


# ============================================================ B32 and planes


def test_authorizer_type_decides(bearer, jdp, jcp, plain, jwt_server, issuer):
    token = plain.realm.token()
    # SigV4 on a CUSTOM_JWT manager.
    denied(lambda: jdp.list_payment_instruments(userId="alice", paymentManagerArn=plain.arn),
           "CUSTOM_JWT")
    # A bearer token on an AWS_IAM manager, and on a manager that does not exist: the same
    # answer (it does not tell whether the manager exists).
    iam = create_manager(jcp, roleArn=ROLE_ARN)
    m1 = denied(lambda: bearer(token).list_payment_instruments(
        paymentManagerArn=iam["paymentManagerArn"]), "does not accept bearer tokens")
    missing = plain.arn.rsplit("/", 1)[0] + "/nomanager-0123456789"
    m2 = denied(lambda: bearer(token).list_payment_instruments(paymentManagerArn=missing))
    assert m1 == m2
    other_account = plain.arn.replace(ACCOUNT_1, "999999999999")
    assert denied(lambda: bearer(token).list_payment_instruments(
        paymentManagerArn=other_account)) == m1
    other_region = plain.arn.replace(REGION, "eu-west-1")
    denied(lambda: bearer(token).list_payment_instruments(paymentManagerArn=other_region),
           "region")
    # The control plane is SigV4 only.
    cp_bearer = make_boto(jwt_server, CONTROL)
    cp_bearer.meta.events.register(
        "before-send.bedrock-agentcore-control.*",
        lambda request, **_: request.headers.__setitem__("Authorization", f"Bearer {token}"))
    denied(lambda: cp_bearer.list_payment_managers(), "SigV4")


def test_raw_bearer_requests(jwt_server, plain):
    """Without the SDK's leftover SigV4 headers; several Authorization headers; a body
    without paymentManagerArn."""
    import http.client

    token = plain.realm.token("raw-user")

    def post(path: str, body: dict, headers: list[tuple[str, str]]):
        conn = http.client.HTTPConnection("127.0.0.1", jwt_server.port, timeout=30)
        try:
            conn.putrequest("POST", path)
            payload = json.dumps(body).encode()
            for k, v in [("Content-Type", "application/json"),
                         ("Content-Length", str(len(payload))), *headers]:
                conn.putheader(k, v)
            conn.endheaders(payload)
            r = conn.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            conn.close()

    status, _, body = post("/payments/listPaymentInstruments", {"paymentManagerArn": plain.arn},
                           [("Authorization", f"Bearer {token}")])
    assert status == 200, body
    status, h, body = post("/payments/listPaymentInstruments",
                           {"paymentManagerArn": plain.arn},
                           [("Authorization", f"Bearer {token}"),
                            ("Authorization", "AWS4-HMAC-SHA256 Credential=x")])
    assert (status, h["x-amzn-errortype"]) == (403, "AccessDeniedException"), body
    status, h, body = post("/payments/listPaymentInstruments", {},
                           [("Authorization", f"Bearer {token}")])
    assert (status, h["x-amzn-errortype"]) == (403, "AccessDeniedException"), body
    assert json.loads(body)["__type"] == "AccessDeniedException"
    assert token.encode() not in body

    # Without clientToken: the same bytes again answer the original session (B26); another
    # body is another session.
    create = {"paymentManagerArn": plain.arn, "expiryTimeInMinutes": 60}
    auth = [("Authorization", f"Bearer {token}")]
    status, _, first = post("/payments/createPaymentSession", create, auth)
    assert status == 201 or status == 200, first
    status, _, again = post("/payments/createPaymentSession", create, auth)
    sid = json.loads(first)["paymentSession"]["paymentSessionId"]
    assert json.loads(again)["paymentSession"]["paymentSessionId"] == sid
    status, _, other = post("/payments/createPaymentSession",
                            {**create, "expiryTimeInMinutes": 61}, auth)
    assert json.loads(other)["paymentSession"]["paymentSessionId"] != sid


def test_custom_claim_rules_that_cannot_match_are_refused(jcp, issuer):
    """EQUALS takes a STRING claim, CONTAINS / CONTAINS_ANY a STRING_ARRAY one, with one
    value or a list: another combination would lock every caller out."""
    from compat_helpers import unique_manager_name

    realm = issuer.realm("rules")
    bad = [("STRING", "CONTAINS_ANY", {"matchValueStringList": ["a"]}),
           ("STRING", "EQUALS", {"matchValueStringList": ["a"]}),
           ("STRING_ARRAY", "EQUALS", {"matchValueString": "a"}),
           ("STRING_ARRAY", "CONTAINS_ANY", {"matchValueString": "a"}),
           ("STRING_ARRAY", "CONTAINS", {"matchValueStringList": ["a"]})]
    for value_type, op, value in bad:
        rule = {"inboundTokenClaimName": "x", "inboundTokenClaimValueType": value_type,
                "authorizingClaimMatchValue": {"claimMatchValue": value,
                                               "claimMatchOperator": op}}
        cfg = {"customJWTAuthorizer": {"discoveryUrl": realm.discovery_url,
                                       "customClaims": [STRICT["customClaims"][0], rule]}}
        err = expect_error(lambda: jcp.create_payment_manager(
            name=unique_manager_name(), authorizerType="CUSTOM_JWT", roleArn=ROLE_ARN,
            authorizerConfiguration=cfg), "ValidationException", 400)
        assert "customClaims.2" in err.response["Error"]["Message"], err.response
    m = make_jwt_manager(jcp, realm, **STRICT)
    expect_error(lambda: jcp.update_payment_manager(
        paymentManagerId=m.manager_id, authorizerType="CUSTOM_JWT",
        authorizerConfiguration={"customJWTAuthorizer": {
            "discoveryUrl": realm.discovery_url, "customClaims": [
                {**STRICT["customClaims"][0], "inboundTokenClaimValueType": "STRING_ARRAY"}]}}),
        "ValidationException", 400)


# ================================================================ official SDK


def test_official_sdk_bearer_mode(jwt_server, plain, monkeypatch):
    """bedrock_agentcore.payments.PaymentManager with bearer_token / token_provider pays
    through a CUSTOM_JWT manager."""
    import boto3
    from bedrock_agentcore.payments import manager as sdk_manager

    monkeypatch.setattr(sdk_manager, "DP_ENDPOINT_OVERRIDE", jwt_server.endpoint)
    # The SDK signs with SigV4 before it swaps in the bearer token: any credentials do.
    session = boto3.Session(aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                            aws_secret_access_key="not-a-real-secret-key-for-sigv4",
                            region_name=REGION)
    user = "sdk-" + uuid.uuid4().hex[:8]
    pm = sdk_manager.PaymentManager(payment_manager_arn=plain.arn, region_name=REGION,
                                    boto3_session=session,
                                    bearer_token=plain.realm.token(user))
    inst = pm.create_payment_instrument(
        payment_connector_id=plain.connector_id,
        payment_instrument_type="EMBEDDED_CRYPTO_WALLET",
        payment_instrument_details=wallet_details())
    assert inst["userId"] == user
    pm2 = sdk_manager.PaymentManager(payment_manager_arn=plain.arn, region_name=REGION,
                                     boto3_session=session,
                                     token_provider=lambda: plain.realm.token(user))
    sess = pm2.create_payment_session(expiry_time_in_minutes=60, limits={
        "maxSpendAmount": {"value": "2.00", "currency": "USD"}})
    assert sess["userId"] == user
    req = x402_requirement("BASE_SEPOLIA", "2", "250000", PAYEE)
    paid = pm2.process_payment(
        payment_session_id=sess["paymentSessionId"],
        payment_instrument_id=inst["paymentInstrumentId"], payment_type="CRYPTO_X402",
        payment_input={"cryptoX402": {"version": "2", "payload": req}})
    assert paid["status"] == "PROOF_GENERATED"
    assert paid["paymentOutput"]["cryptoX402"]["payload"]["authorization"]["from"] == \
        wallet_address(inst)
    got = pm.get_payment_session(payment_session_id=sess["paymentSessionId"])
    assert got["availableLimits"]["availableSpendAmount"]["value"] == "1.75"


def test_no_token_in_the_log(jwt_server):
    """Runs last in this module: no token sent by the tests above is in the server's log."""
    assert SENT_TOKENS, "the tests above sent tokens"
    log = jwt_server.log_text()
    assert "bearer token refused" in log
    for t in set(SENT_TOKENS):
        if len(t) > 20:
            assert t not in log
            # nor its signature alone
            assert t.rsplit(".", 1)[-1] not in log or not t.rsplit(".", 1)[-1]

