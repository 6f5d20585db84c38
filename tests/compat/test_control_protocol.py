"""Wire-level behaviour shared by every operation: SigV4, routing, body parsing,
error shapes (B1, B3, B5)."""

import datetime
import json

import pytest

from compat_helpers import (
    ACCOUNT_1,
    ROLE_ARN,
    expect_error,
    manager_arn,
    unique_manager_name,
)

LIST_MANAGERS = "/payments/managers-list"


def assert_raw_error(resp, status, code):
    assert resp.status == status, (resp.status, resp.text)
    assert resp.headers.get("x-amzn-errortype") == code, resp.headers
    assert resp.headers.get("x-amzn-requestid"), resp.headers
    doc = resp.json
    assert isinstance(doc, dict), resp.text
    assert doc.get("__type") == code, doc
    assert isinstance(doc.get("message"), str), doc
    return doc


def test_health_needs_no_signature(raw_request):
    resp = raw_request("GET", "/health", sign=False)
    assert resp.status == 200


def test_signed_request_succeeds(raw_request):
    resp = raw_request("POST", LIST_MANAGERS, body={})
    assert resp.status == 200, resp.text
    assert isinstance(resp.json.get("paymentManagers"), list)


# -------------------------------------------------------------------- SigV4


def test_missing_authorization(raw_request):
    resp = raw_request("POST", LIST_MANAGERS, body={}, sign=False)
    assert_raw_error(resp, 403, "MissingAuthenticationTokenException")


def test_missing_authorization_on_create(raw_request):
    body = {"name": unique_manager_name(), "authorizerType": "AWS_IAM", "roleArn": ROLE_ARN}
    resp = raw_request("POST", "/payments/managers", body=body, sign=False)
    assert_raw_error(resp, 403, "MissingAuthenticationTokenException")


def test_unknown_access_key(make_client):
    client = make_client(access_key_id="AKIAPURSERUNKNOWN999")
    expect_error(lambda: client.list_payment_managers(), "UnrecognizedClientException", 403)


def test_unknown_access_key_raw(raw_request, purser):
    from conftest import Creds

    creds = Creds("AKIAPURSERUNKNOWN998", purser.creds.secret_access_key, ACCOUNT_1)
    resp = raw_request("POST", LIST_MANAGERS, body={}, creds=creds)
    assert_raw_error(resp, 403, "UnrecognizedClientException")


def test_wrong_secret(make_client):
    client = make_client(secret_access_key="x" * 40)
    expect_error(lambda: client.list_payment_managers(), "InvalidSignatureException", 403)
    expect_error(lambda: client.get_payment_credential_provider(name="whatever"),
                 "InvalidSignatureException", 403)


def test_wrong_secret_account_2(make_client, purser):
    client = make_client(creds=purser.creds2, secret_access_key=purser.creds.secret_access_key)
    expect_error(lambda: client.list_payment_managers(), "InvalidSignatureException", 403)


def test_wrong_secret_on_data_plane(make_client):
    client = make_client("bedrock-agentcore", secret_access_key="y" * 40)
    arn = manager_arn(ACCOUNT_1, "nosuchmanager-abcdefghij")
    expect_error(lambda: client.list_payment_sessions(paymentManagerArn=arn, userId="user-1"),
                 "InvalidSignatureException", 403)


@pytest.mark.parametrize("minutes,words", [(-20, "signature expired"),
                                           (20, "not yet current")])
def test_skewed_clock(raw_request, minutes, words):
    resp = raw_request("POST", LIST_MANAGERS, body={},
                       skew=datetime.timedelta(minutes=minutes))
    doc = assert_raw_error(resp, 403, "InvalidSignatureException")
    assert words in doc["message"].lower(), doc["message"]


def test_small_clock_skew_is_accepted(raw_request):
    resp = raw_request("POST", LIST_MANAGERS, body={}, skew=datetime.timedelta(minutes=2))
    assert resp.status == 200, resp.text


def test_tampered_body(raw_request):
    signed = {"name": unique_manager_name(), "authorizerType": "AWS_IAM", "roleArn": ROLE_ARN}
    sent = dict(signed, name=unique_manager_name())
    resp = raw_request("POST", "/payments/managers", body=signed,
                       send_body=json.dumps(sent).encode())
    assert_raw_error(resp, 403, "InvalidSignatureException")


def test_tampered_query_string(raw_request):
    resp = raw_request("POST", LIST_MANAGERS + "?maxResults=5", body={},
                       send_path=LIST_MANAGERS + "?maxResults=6")
    assert_raw_error(resp, 403, "InvalidSignatureException")


def test_signature_scoped_to_wrong_service(raw_request):
    resp = raw_request("POST", LIST_MANAGERS, body={}, service="s3")
    assert_raw_error(resp, 403, "InvalidSignatureException")


def test_signature_scoped_to_wrong_region(raw_request):
    resp = raw_request("POST", LIST_MANAGERS, body={}, region="eu-west-1")
    assert_raw_error(resp, 403, "InvalidSignatureException")


def test_garbage_authorization_header(raw_request):
    resp = raw_request("POST", LIST_MANAGERS, body={}, sign=False,
                       headers={"Authorization": "AWS4-HMAC-SHA256 nonsense",
                                "X-Amz-Date": "20250101T000000Z"})
    assert resp.status in (400, 403), resp.text
    assert resp.error_type in ("IncompleteSignatureException", "InvalidSignatureException",
                               "MissingAuthenticationTokenException"), resp.headers


# ------------------------------------------------------------------ routing


@pytest.mark.parametrize("method,path", [
    ("GET", "/payments/no-such-thing"),
    ("POST", "/identities/NoSuchOperation"),
    ("GET", "/nothing/here"),
    ("POST", "/payments/managers/abc-0123456789/connectors/def-0123456789/nope"),
])
def test_unknown_path(raw_request, method, path):
    resp = raw_request(method, path, body={} if method == "POST" else None)
    assert_raw_error(resp, 404, "UnknownOperationException")


@pytest.mark.parametrize("method,path", [
    ("PUT", "/payments/managers"),
    ("GET", "/payments/managers-list"),
    ("POST", "/payments/managers/nosuch-0123456789"),
    ("PUT", "/payments/managers/nosuch-0123456789/connectors/nosuch-0123456789"),
    ("GET", "/identities/CreatePaymentCredentialProvider"),
    ("DELETE", "/identities/DeletePaymentCredentialProvider"),
])
def test_wrong_method(raw_request, method, path):
    resp = raw_request(method, path, body={} if method in ("POST", "PUT") else None)
    assert resp.status == 405, (resp.status, resp.text)


# ------------------------------------------------------------- body parsing


@pytest.mark.parametrize("method,path", [
    ("POST", "/payments/managers"),
    ("POST", "/identities/CreatePaymentCredentialProvider"),
    ("POST", "/identities/ListPaymentCredentialProviders"),
    ("PATCH", "/payments/managers/nosuch-0123456789"),
])
def test_malformed_json(raw_request, method, path):
    resp = raw_request(method, path, body='{"name": "abc", ')
    doc = assert_raw_error(resp, 400, "ValidationException")
    assert doc.get("reason") == "CannotParse", doc


@pytest.mark.parametrize("body", ["[]", '"a string"', "42"])
def test_json_that_is_not_an_object(raw_request, body):
    resp = raw_request("POST", "/payments/managers", body=body)
    assert_raw_error(resp, 400, "ValidationException")


def test_member_of_wrong_json_type(raw_request):
    body = {"name": 12345, "authorizerType": "AWS_IAM", "roleArn": ROLE_ARN}
    resp = raw_request("POST", "/payments/managers", body=body)
    assert_raw_error(resp, 400, "ValidationException")


def test_body_over_one_mib(raw_request):
    body = {"name": unique_manager_name(), "authorizerType": "AWS_IAM", "roleArn": ROLE_ARN,
            "description": "a" * (1024 * 1024 + 1024)}
    resp = raw_request("POST", "/payments/managers", body=body)
    assert_raw_error(resp, 413, "RequestEntityTooLargeException")


def test_body_under_one_mib_is_read(raw_request):
    # 900 KiB is below the limit: the server reads it and rejects the too-long
    # description (max 4096) instead of the size.
    body = {"name": unique_manager_name(), "authorizerType": "AWS_IAM", "roleArn": ROLE_ARN,
            "description": "a" * (900 * 1024)}
    resp = raw_request("POST", "/payments/managers", body=body)
    doc = assert_raw_error(resp, 400, "ValidationException")
    assert "description" in doc["message"]
    assert "description" in [f["name"] for f in doc.get("fieldList", [])]


def test_error_message_names_the_field(raw_request):
    body = {"name": "1startsWithDigit", "authorizerType": "AWS_IAM", "roleArn": ROLE_ARN}
    resp = raw_request("POST", "/payments/managers", body=body)
    doc = assert_raw_error(resp, 400, "ValidationException")
    assert doc.get("reason") == "FieldValidationFailed"
    assert "name" in doc["message"]
    assert "[a-zA-Z][a-zA-Z0-9]{0,47}" in doc["message"], doc["message"]
    assert [f["name"] for f in doc["fieldList"]] == ["name"], doc
    assert all(isinstance(f.get("message"), str) and f["message"] for f in doc["fieldList"])


def test_credentials_are_never_logged(make_client, purser, raw_request):
    make_client().list_payment_managers()
    make_client(creds=purser.creds2).list_payment_managers()
    wrong = "w" * 40
    expect_error(lambda: make_client(secret_access_key=wrong).list_payment_managers(),
                 "InvalidSignatureException", 403)
    raw_request("POST", LIST_MANAGERS, body={})
    log = purser.log_text()
    assert purser.creds.secret_access_key not in log
    assert purser.creds2.secret_access_key not in log
    assert wrong not in log
