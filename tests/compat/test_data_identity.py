"""AgentCore Identity on the data plane through boto3: every payment manager is a workload
identity (workloadIdentityDetails in the manager replies); GetWorkloadAccessToken,
...ForUserId and ...ForJWT (verified by the manager's CUSTOM_JWT authorizer against a local
OpenID issuer) hand out workload access tokens; GetResourcePaymentToken turns such a token
and a credential provider into Coinbase CDP JWTs and Privy credentials, which this test
verifies independently (PyJWT / cryptography, payloads recomputed here)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

pytest.register_assert_rewrite("chain_fixtures")

from chain_fixtures import CONTROL, DATA, all_dead_rpc, make_boto, start_purser  # noqa: E402
from compat_helpers import ACCOUNT_1, REGION, create_manager, expect_error  # noqa: E402

pytest_plugins = ["chain_fixtures", "jwt_fixtures"]

CDP_PATH = "/platform/v2/evm/accounts"
PRIVY_PATH = "/v1/wallets/wallet-1/rpc"


# ===================================================================== fixtures


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = start_purser(tmp_path_factory.mktemp("purser-identity"), rpc=all_dead_rpc())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cp(srv):
    return make_boto(srv, CONTROL)


@pytest.fixture(scope="module")
def dp(srv):
    return make_boto(srv, DATA)


@pytest.fixture(scope="module")
def cp2(srv):
    return make_boto(srv, CONTROL, creds=srv.creds2)


@pytest.fixture(scope="module")
def dp2(srv):
    return make_boto(srv, DATA, creds=srv.creds2)


@pytest.fixture(scope="module")
def manager(cp) -> dict:
    return create_manager(cp)


@pytest.fixture(scope="module")
def user_token(dp, manager) -> str:
    return dp.get_workload_access_token_for_user_id(
        workloadName=manager["paymentManagerId"], userId="user-1")["workloadAccessToken"]


# ====================================================================== keys


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem_pkcs8(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def der_pkcs8_b64(key) -> str:
    return base64.b64encode(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())).decode()


def ed_secret(key: ed25519.Ed25519PrivateKey) -> str:
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return base64.b64encode(seed + pub).decode()


def provider_name() -> str:
    return "prov-" + uuid.uuid4().hex[:12]


def cdp_provider(cp, api_key_secret: str, wallet_secret: str) -> tuple[str, str]:
    name, key_id = provider_name(), "key-" + uuid.uuid4().hex[:8]
    cp.create_payment_credential_provider(
        name=name, credentialProviderVendor="CoinbaseCDP",
        providerConfigurationInput={"coinbaseCdpConfiguration": {
            "apiKeyId": key_id, "apiKeySecret": api_key_secret, "walletSecret": wallet_secret}})
    return name, key_id


def privy_provider(cp, authorization_key: str) -> tuple[str, str, str]:
    name, app_id, secret = provider_name(), "app-" + uuid.uuid4().hex[:8], uuid.uuid4().hex
    cp.create_payment_credential_provider(
        name=name, credentialProviderVendor="StripePrivy",
        providerConfigurationInput={"stripePrivyConfiguration": {
            "appId": app_id, "appSecret": secret,
            "authorizationPrivateKey": authorization_key, "authorizationId": "auth-1"}})
    return name, app_id, secret


def cdp_request(**kw: Any) -> dict:
    return {"coinbaseCdpTokenRequest": {"requestMethod": "POST", "requestPath": CDP_PATH, **kw}}


def payment_token(dp, token: str, provider: str, request: dict) -> dict:
    return dp.get_resource_payment_token(
        workloadIdentityToken=token, resourceCredentialProviderName=provider,
        paymentTokenRequest=request)["paymentTokenResponse"]


def check_cdp_bearer(token: str, public_key, alg: str, key_id: str, uri: str) -> dict:
    header = pyjwt.get_unverified_header(token)
    assert set(header) == {"alg", "kid", "typ", "nonce"}, header
    assert header["alg"] == alg and header["kid"] == key_id and header["typ"] == "JWT"
    assert re.fullmatch(r"[0-9a-f]{32}", header["nonce"]), header
    claims = pyjwt.decode(token, public_key, algorithms=[alg],
                          options={"verify_exp": False, "verify_nbf": False,
                                   "verify_iat": False})
    assert set(claims) == {"sub", "iss", "uris", "iat", "nbf", "exp"}, claims
    assert claims["sub"] == key_id and claims["iss"] == "cdp"
    assert claims["uris"] == [uri]
    assert claims["iat"] == claims["nbf"] and claims["exp"] - claims["nbf"] == 120
    return claims


# ===================================================================== tests


def test_manager_replies_carry_the_workload_identity(cp, manager):
    mid = manager["paymentManagerId"]
    arn = (f"arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT_1}:"
           f"workload-identity-directory/default/workload-identity/{mid}")
    assert manager["workloadIdentityDetails"] == {"workloadIdentityArn": arn}
    got = cp.get_payment_manager(paymentManagerId=mid)
    assert got["workloadIdentityDetails"]["workloadIdentityArn"] == arn
    upd = cp.update_payment_manager(paymentManagerId=mid, description="workload")
    assert upd["workloadIdentityDetails"]["workloadIdentityArn"] == arn


def test_workload_tokens_for_the_workload_and_for_a_user(dp, manager, user_token):
    mid = manager["paymentManagerId"]
    plain = dp.get_workload_access_token(workloadName=mid)["workloadAccessToken"]
    assert plain and user_token and plain != user_token
    for call in (lambda: dp.get_workload_access_token(workloadName="no-such-workload"),
                 lambda: dp.get_workload_access_token_for_user_id(
                     workloadName="no-such-workload", userId="u")):
        expect_error(call, "ResourceNotFoundException", 404)


def test_a_workload_of_another_account_is_not_found(dp, cp2):
    other = create_manager(cp2)
    expect_error(lambda: dp.get_workload_access_token(workloadName=other["paymentManagerId"]),
                 "ResourceNotFoundException", 404)


def test_cdp_ec_key_bearer_and_wallet_auth(cp, dp, user_token):
    api_key, wallet_key = ec_key(), ec_key()
    name, key_id = cdp_provider(cp, pem_pkcs8(api_key), der_pkcs8_b64(wallet_key))
    body = {"name": "agent-wallet", "policy": {"z": [3, {"b": True, "a": None}], "a": "é"}}
    out = payment_token(dp, user_token, name, cdp_request(
        includeWalletAuthToken=True, requestBody=json.dumps(body)))["coinbaseCdpTokenResponse"]
    uri = f"POST api.cdp.coinbase.com{CDP_PATH}"
    check_cdp_bearer(out["bearerToken"], api_key.public_key(), "ES256", key_id, uri)

    wallet = out["walletAuthToken"]
    assert pyjwt.get_unverified_header(wallet) == {"alg": "ES256", "typ": "JWT"}
    claims = pyjwt.decode(wallet, wallet_key.public_key(), algorithms=["ES256"],
                          options={"verify_nbf": False, "verify_iat": False})
    assert set(claims) == {"uris", "iat", "nbf", "jti", "reqHash"}, claims
    assert claims["uris"] == [uri] and claims["iat"] == claims["nbf"]
    assert re.fullmatch(r"[0-9a-f]{32}", claims["jti"])
    # JSON.stringify(sortKeys(body)): compact, keys sorted, non-ASCII kept
    sorted_json = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert claims["reqHash"] == hashlib.sha256(sorted_json.encode()).hexdigest()

    # without includeWalletAuthToken there is no wallet token; another host and method
    out = payment_token(dp, user_token, name, {"coinbaseCdpTokenRequest": {
        "requestMethod": "GET", "requestHost": "api.example.test",
        "requestPath": "/v2/x?y=1"}})["coinbaseCdpTokenResponse"]
    assert "walletAuthToken" not in out
    check_cdp_bearer(out["bearerToken"], api_key.public_key(), "ES256", key_id,
                     "GET api.example.test/v2/x?y=1")


def test_cdp_ed25519_key(cp, dp, user_token):
    api_key = ed25519.Ed25519PrivateKey.generate()
    name, key_id = cdp_provider(cp, ed_secret(api_key), der_pkcs8_b64(ec_key()))
    out = payment_token(dp, user_token, name, cdp_request())["coinbaseCdpTokenResponse"]
    check_cdp_bearer(out["bearerToken"], api_key.public_key(), "EdDSA", key_id,
                     f"POST api.cdp.coinbase.com{CDP_PATH}")


def privy_payload(app_id: str, path: str, body: Any, expiry: int) -> bytes:
    """Privy's formatRequestForAuthorizationSignature, recomputed: RFC 8785 of the input
    (sorted keys, compact; no floats here), an empty object body as ""."""
    if body == {}:
        body = ""
    doc = {"version": 1, "method": "POST", "url": f"https://api.privy.io{path}", "body": body,
           "headers": {"privy-app-id": app_id, "privy-request-expiry": str(expiry)}}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_stripe_privy_basic_auth_and_authorization_signature(cp, dp, user_token, srv):
    key = ec_key()
    name, app_id, secret = privy_provider(cp, "wallet-auth:" + der_pkcs8_b64(key))
    for body in ({"method": "eth_signTypedData_v4", "params": {"b": [1, 2], "a": "x"}}, {}):
        out = payment_token(dp, user_token, name, {"stripePrivyTokenRequest": {
            "requestPath": PRIVY_PATH, "requestBody": json.dumps(body),
            "includeAuthorizationSignature": True}})["stripePrivyTokenResponse"]
        assert out["appId"] == app_id
        assert base64.b64decode(out["basicAuthToken"]).decode() == f"{app_id}:{secret}"
        expiry = out["requestExpiry"]
        assert abs(expiry - (srv.now() * 1000 + 15 * 60 * 1000)) < 60_000
        sig = base64.b64decode(out["authorizationSignature"])
        key.public_key().verify(sig, privy_payload(app_id, PRIVY_PATH, body, expiry),
                                ec.ECDSA(hashes.SHA256()))
    out = payment_token(dp, user_token, name, {"stripePrivyTokenRequest": {
        "requestPath": PRIVY_PATH, "requestBody": "{}"}})["stripePrivyTokenResponse"]
    assert "authorizationSignature" not in out and "requestExpiry" not in out


def test_for_jwt_uses_the_managers_authorizer(cp, dp, issuer):
    realm = issuer.realm("workload")
    realm.add_ec("ec-1")
    m = create_manager(cp, authorizerType="CUSTOM_JWT", authorizerConfiguration={
        "customJWTAuthorizer": {"discoveryUrl": realm.discovery_url}})
    token = dp.get_workload_access_token_for_jwt(
        workloadName=m["paymentManagerId"], userToken=realm.token("carol"))["workloadAccessToken"]
    api_key = ec_key()
    name, key_id = cdp_provider(cp, pem_pkcs8(api_key), der_pkcs8_b64(ec_key()))
    out = payment_token(dp, token, name, cdp_request())["coinbaseCdpTokenResponse"]
    check_cdp_bearer(out["bearerToken"], api_key.public_key(), "ES256", key_id,
                     f"POST api.cdp.coinbase.com{CDP_PATH}")
    # a token signed by a key the issuer does not publish
    forged = realm.token("carol", kid="ec-1", key=ec_key())
    err = expect_error(lambda: dp.get_workload_access_token_for_jwt(
        workloadName=m["paymentManagerId"], userToken=forged), "AccessDeniedException", 403)
    assert forged not in err.response["Error"]["Message"]


def test_for_jwt_on_an_aws_iam_manager_is_refused(dp, manager, issuer):
    realm = issuer.realm("iam")
    realm.add_ec("ec-1")
    err = expect_error(lambda: dp.get_workload_access_token_for_jwt(
        workloadName=manager["paymentManagerId"], userToken=realm.token("dave")),
        "ValidationException", 400)
    assert "AWS_IAM" in err.response["Error"]["Message"]


def test_refusals(cp, dp, cp2, dp2, user_token, srv):
    name, _ = cdp_provider(cp, pem_pkcs8(ec_key()), der_pkcs8_b64(ec_key()))
    other, _ = cdp_provider(cp2, pem_pkcs8(ec_key()), der_pkcs8_b64(ec_key()))

    def denied(token: str, client=dp, provider=name) -> None:
        err = expect_error(lambda: payment_token(client, token, provider, cdp_request()),
                           "AccessDeniedException", 403)
        assert token not in err.response["Error"]["Message"]

    denied("not-a-workload-token")
    mid = len(user_token) // 2
    denied(user_token[:mid] + ("A" if user_token[mid] != "A" else "B") + user_token[mid + 1:])
    denied(user_token + "x")
    # account 1's token presented by account 2, for account 2's provider
    denied(user_token, client=dp2, provider=other)
    # account 2's provider with account 1's token: not a provider of the caller's account
    expect_error(lambda: payment_token(dp, user_token, other, cdp_request()),
                 "ResourceNotFoundException", 404)
    expect_error(lambda: payment_token(dp, user_token, "no-such-provider", cdp_request()),
                 "ResourceNotFoundException", 404)
    # a CDP provider asked for Privy credentials
    expect_error(lambda: payment_token(dp, user_token, name, {"stripePrivyTokenRequest": {
        "requestPath": PRIVY_PATH, "requestBody": "{}"}}), "ValidationException", 400)
    # wallet auth with a walletSecret that is no key (Create requires one, so "none" cannot
    # be stored): refused, the secret is not echoed
    bad_wallet = "bm90LWEta2V5LW5vdC1hLWtleQ=="
    broken, _ = cdp_provider(cp, pem_pkcs8(ec_key()), bad_wallet)
    err = expect_error(lambda: payment_token(dp, user_token, broken, cdp_request(
        includeWalletAuthToken=True)), "ValidationException", 400)
    assert "walletSecret" in err.response["Error"]["Message"]
    assert bad_wallet not in err.response["Error"]["Message"]
    # a body with a float is refused for the reqHash (documented)
    expect_error(lambda: payment_token(dp, user_token, name, cdp_request(
        includeWalletAuthToken=True, requestBody='{"amount": 1.5}')),
        "ValidationException", 400)
    assert user_token not in srv.log_text()


def test_official_sdk_identity_client(cp, dp, srv, issuer, monkeypatch):
    """bedrock_agentcore.services.identity.IdentityClient.get_workload_access_token (the
    SDK's own wrapper of the three operations) against Purser; its tokens work with
    GetResourcePaymentToken."""
    import boto3
    from bedrock_agentcore.services import identity as sdk_identity

    monkeypatch.setattr(sdk_identity, "DP_ENDPOINT_OVERRIDE", srv.endpoint)
    monkeypatch.setattr(sdk_identity, "CP_ENDPOINT_OVERRIDE", srv.endpoint)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", srv.creds.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", srv.creds.secret_access_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    realm = issuer.realm("sdk")
    realm.add_ed("ed-1")
    m = create_manager(cp, authorizerType="CUSTOM_JWT", authorizerConfiguration={
        "customJWTAuthorizer": {"discoveryUrl": realm.discovery_url}})
    client = sdk_identity.IdentityClient(REGION)
    wid = m["paymentManagerId"]
    api_key = ec_key()
    name, key_id = cdp_provider(cp, pem_pkcs8(api_key), der_pkcs8_b64(ec_key()))
    for kw in ({}, {"user_id": "erin"}, {"user_token": realm.token("erin")}):
        token = client.get_workload_access_token(wid, **kw)["workloadAccessToken"]
        out = payment_token(dp, token, name, cdp_request())["coinbaseCdpTokenResponse"]
        check_cdp_bearer(out["bearerToken"], api_key.public_key(), "ES256", key_id,
                         f"POST api.cdp.coinbase.com{CDP_PATH}")


def test_tokens_expire_after_15_minutes(dp, manager, srv):
    """Last in this module: moves the server's clock."""
    token = dp.get_workload_access_token(workloadName=manager["paymentManagerId"])[
        "workloadAccessToken"]
    name, _ = cdp_provider(make_boto(srv, CONTROL), pem_pkcs8(ec_key()), der_pkcs8_b64(ec_key()))
    payment_token(dp, token, name, cdp_request())
    srv.advance_clock(14 * 60)
    payment_token(dp, token, name, cdp_request())
    srv.advance_clock(61)
    expect_error(lambda: payment_token(dp, token, name, cdp_request()),
                 "AccessDeniedException", 403)
