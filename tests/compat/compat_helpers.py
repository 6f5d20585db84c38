"""Helpers shared by the compatibility tests (imported as `compat_helpers`).

Nothing here starts processes; the server lifecycle lives in conftest.py.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import time
import uuid
from typing import Any, Callable, Iterable

from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT_1 = "111122223333"
ACCOUNT_2 = "444455556666"
ROLE_ARN = "arn:aws:iam::111122223333:role/PurserPaymentsRole"
ROLE_ARN_2 = "arn:aws:iam::111122223333:role/PurserPaymentsRoleTwo"
DISCOVERY_URL = "https://issuer.example.com/.well-known/openid-configuration"

MANAGER_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9]{0,47}")
CONNECTOR_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,47}")
PROVIDER_NAME_RE = re.compile(r"[a-zA-Z0-9\-_]+")
SECRET_ARN_RE = re.compile(
    r"arn:(aws|aws-us-gov):secretsmanager:[A-Za-z0-9-]{1,64}:[0-9]{12}:secret:[a-zA-Z0-9-_/+=.@!]+"
)
ISO8601_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})"
)
CONNECTOR_STATUSES = {
    "CREATING", "UPDATING", "DELETING", "READY", "CREATE_FAILED", "UPDATE_FAILED",
    "DELETE_FAILED", "AWS_MARKETPLACE_SUBSCRIPTION_REQUIRED", "PENDING_AUTHENTICATION",
    "PROVISIONING", "AUTHENTICATION_EXPIRED", "AUTHENTICATION_FAILED",
}


# --------------------------------------------------------------------------- names


def _suffix(n: int = 12) -> str:
    return uuid.uuid4().hex[:n]


def unique_manager_name(prefix: str = "mgr") -> str:
    """`[a-zA-Z][a-zA-Z0-9]{0,47}`"""
    name = f"{prefix}{_suffix()}"
    assert MANAGER_NAME_RE.fullmatch(name), name
    return name


def unique_connector_name(prefix: str = "conn") -> str:
    """`[a-zA-Z][a-zA-Z0-9_]{0,47}`"""
    name = f"{prefix}_{_suffix()}"
    assert CONNECTOR_NAME_RE.fullmatch(name), name
    return name


def unique_provider_name(prefix: str = "prov") -> str:
    """`[a-zA-Z0-9\\-_]+`"""
    name = f"{prefix}-{_suffix()}"
    assert PROVIDER_NAME_RE.fullmatch(name), name
    return name


def client_token() -> str:
    """A fresh idempotency token (33..256 chars, `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,256}`)."""
    return "tok" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


def random_secret(n: int = 40) -> str:
    """A secret-looking value that matches the model's secret patterns and is unique
    enough to be searched for in responses, logs and files."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


# --------------------------------------------------------------- vendor payloads


def coinbase_input(**overrides: str) -> dict:
    cfg = {
        "apiKeyId": "key-" + _suffix(),
        "apiKeySecret": random_secret(),
        "walletSecret": random_secret(),
    }
    cfg.update(overrides)
    return {"coinbaseCdpConfiguration": cfg}


def stripe_input(**overrides: str) -> dict:
    cfg = {
        "appId": "app-" + _suffix(),
        "appSecret": random_secret(),
        "authorizationPrivateKey": "wallet-auth:" + random_secret(),
        "authorizationId": "auth-" + _suffix(),
    }
    cfg.update(overrides)
    return {"stripePrivyConfiguration": cfg}


def secret_values(provider_input: dict) -> list[str]:
    """The secret strings of a providerConfigurationInput (never to be echoed)."""
    (cfg,) = provider_input.values()
    keys = ("apiKeySecret", "walletSecret", "appSecret", "authorizationPrivateKey")
    return [cfg[k] for k in keys if k in cfg]


def provider_arn(account: str, name: str, region: str = REGION) -> str:
    return (
        f"arn:aws:bedrock-agentcore:{region}:{account}:"
        f"token-vault/default/paymentcredentialprovider/{name}"
    )


def manager_arn(account: str, manager_id: str, region: str = REGION) -> str:
    return f"arn:aws:bedrock-agentcore:{region}:{account}:payment-manager/{manager_id}"


def id_pattern(name: str) -> re.Pattern:
    """Manager / connector id: lowercase(name) + '-' + 10 chars [a-z0-9]."""
    return re.compile(re.escape(name.lower()) + r"-[a-z0-9]{10}")


# ----------------------------------------------------------------------- errors


def error_code(err: ClientError) -> str:
    return err.response["Error"]["Code"]


def http_status(resp_or_err: Any) -> int:
    r = resp_or_err.response if isinstance(resp_or_err, ClientError) else resp_or_err
    return r["ResponseMetadata"]["HTTPStatusCode"]


def expect_error(call: Callable[[], Any], code: str, status: int) -> ClientError:
    """Run `call`, which must fail with `code` / `status`; return the ClientError."""
    try:
        result = call()
    except ClientError as err:
        got = (error_code(err), http_status(err))
        assert got == (code, status), (
            f"expected {code}/{status}, got {got[0]}/{got[1]}: {err.response.get('Error')}"
        )
        headers = err.response["ResponseMetadata"].get("HTTPHeaders", {})
        assert headers.get("x-amzn-errortype") == code, headers
        return err
    raise AssertionError(f"expected {code}/{status}, the call succeeded: {result!r}")


def field_names(err: ClientError) -> list[str]:
    return [f.get("name") for f in (err.response.get("fieldList") or [])]


VALIDATION_REASONS = {"CannotParse", "FieldValidationFailed",
                      "IdempotentParameterMismatchException", "EventInOtherSession",
                      "ResourceConflict"}


def assert_validation(
    err: ClientError,
    field: str | None = None,
    reason: str | None = "FieldValidationFailed",
    field_prefix: str | None = None,
) -> None:
    """A ValidationException (400) with `reason` (None: any modelled reason);
    `field` (exact dotted path) or `field_prefix` must appear both in the message
    and in fieldList."""
    assert error_code(err) == "ValidationException", err.response
    assert http_status(err) == 400
    if reason is None:
        assert err.response.get("reason") in VALIDATION_REASONS, err.response
    else:
        assert err.response.get("reason") == reason, err.response
    message = err.response["Error"]["Message"]
    assert message, "ValidationException without a message"
    names = field_names(err)
    for f in names:
        assert isinstance(f, str) and f, err.response
    if field is not None:
        assert field in message, f"{field!r} not in message {message!r}"
        assert field in names, f"{field!r} not in fieldList {names!r}"
    if field_prefix is not None:
        assert field_prefix in message, f"{field_prefix!r} not in message {message!r}"
        assert any(n.startswith(field_prefix) for n in names), (
            f"no fieldList name starts with {field_prefix!r}: {names!r}"
        )


def expect_validation(
    call: Callable[[], Any],
    field: str | None = None,
    reason: str | None = "FieldValidationFailed",
    field_prefix: str | None = None,
) -> ClientError:
    err = expect_error(call, "ValidationException", 400)
    assert_validation(err, field=field, reason=reason, field_prefix=field_prefix)
    return err


def expect_not_found(call: Callable[[], Any]) -> ClientError:
    return expect_error(call, "ResourceNotFoundException", 404)


# ------------------------------------------------------------------------ polling


def wait_for(fn: Callable[[], dict], status: str, timeout: float = 5.0,
             interval: float = 0.05) -> dict:
    """Poll `fn` (a Get) until the resource's `status` equals `status`."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        resp = fn()
        current = resp.get("status")
        if not seen or seen[-1] != current:
            seen.append(current)
        if current == status:
            return resp
        if time.monotonic() > deadline:
            raise AssertionError(
                f"status did not reach {status} within {timeout}s; statuses seen: {seen}"
            )
        time.sleep(interval)


def wait_gone(fn: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> ClientError:
    """Poll `fn` (a Get) until it fails with ResourceNotFoundException (404)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            resp = fn()
        except ClientError as err:
            if error_code(err) == "ResourceNotFoundException":
                assert http_status(err) == 404
                return err
            raise
        if time.monotonic() > deadline:
            raise AssertionError(
                f"resource still there after {timeout}s, status {resp.get('status')}"
            )
        time.sleep(interval)


# ----------------------------------------------------------------------- paging


def collect_pages(call: Callable[..., dict], key: str, page_size: int,
                  max_pages: int = 1000, **kwargs: Any) -> list[list[dict]]:
    """Follow nextToken to the end; return the pages (each checked <= page_size)."""
    pages = []
    token = None
    for _ in range(max_pages):
        args = dict(kwargs, maxResults=page_size)
        if token is not None:
            args["nextToken"] = token
        resp = call(**args)
        items = resp[key]
        assert len(items) <= page_size, f"page of {len(items)} > maxResults {page_size}"
        pages.append(items)
        token = resp.get("nextToken")
        if not token:
            return pages
    raise AssertionError("paging did not end")


def assert_each_once(found: Iterable[str], expected: Iterable[str]) -> None:
    found = list(found)
    dupes = {x for x in found if found.count(x) > 1}
    assert not dupes, f"listed more than once: {sorted(dupes)}"
    missing = set(expected) - set(found)
    assert not missing, f"never listed: {sorted(missing)}"


# --------------------------------------------------------------- resource makers


def create_provider(control, vendor: str = "CoinbaseCDP", name: str | None = None,
                    **kwargs: Any) -> dict:
    name = name or unique_provider_name()
    cfg = coinbase_input() if vendor == "CoinbaseCDP" else stripe_input()
    resp = control.create_payment_credential_provider(
        name=name, credentialProviderVendor=vendor, providerConfigurationInput=cfg, **kwargs
    )
    resp["_input"] = cfg
    return resp


def create_manager(control, wait: bool = True, **kwargs: Any) -> dict:
    """Create an AWS_IAM manager (overridable) and, by default, wait for READY."""
    args = {"name": unique_manager_name(), "authorizerType": "AWS_IAM", "roleArn": ROLE_ARN}
    args.update(kwargs)
    resp = control.create_payment_manager(**args)
    if wait:
        wait_for(lambda: control.get_payment_manager(paymentManagerId=resp["paymentManagerId"]),
                 "READY")
    return resp


def create_connector(control, manager_id: str, type_: str = "SelfCustody",
                     configs: list | None = None, wait: bool = True, **kwargs: Any) -> dict:
    args = {
        "paymentManagerId": manager_id,
        "name": unique_connector_name(),
        "type": type_,
        "credentialProviderConfigurations": configs if configs is not None else [],
    }
    args.update(kwargs)
    resp = control.create_payment_connector(**args)
    if wait:
        wait_for(lambda: control.get_payment_connector(
            paymentManagerId=manager_id, paymentConnectorId=resp["paymentConnectorId"]),
            "READY")
    return resp


def provider_config(member: str, arn: str) -> list[dict]:
    """credentialProviderConfigurations with one union member (coinbaseCDP/stripePrivy)."""
    return [{member: {"credentialProviderArn": arn}}]


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, sort_keys=True)
