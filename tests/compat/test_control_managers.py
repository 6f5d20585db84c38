"""Payment managers: /payments/managers... (B3, B4, B8, B10, B12, B17, B31)."""

import datetime

import pytest

from compat_helpers import (
    ACCOUNT_1,
    DISCOVERY_URL,
    ISO8601_RE,
    ROLE_ARN,
    ROLE_ARN_2,
    assert_each_once,
    client_token,
    collect_pages,
    create_connector,
    create_manager,
    expect_error,
    expect_not_found,
    expect_validation,
    http_status,
    id_pattern,
    manager_arn,
    unique_manager_name,
    wait_for,
    wait_gone,
)


def get(control, manager_id):
    return control.get_payment_manager(paymentManagerId=manager_id)


def all_manager_ids(client):
    return [m["paymentManagerId"]
            for page in collect_pages(client.list_payment_managers, "paymentManagers", 100)
            for m in page]


# ----------------------------------------------------------------- create


def test_create_manager_aws_iam(control):
    name = unique_manager_name()
    resp = control.create_payment_manager(
        name=name, description="compat test", authorizerType="AWS_IAM", roleArn=ROLE_ARN)
    assert http_status(resp) == 202
    assert resp["status"] == "CREATING"
    mid = resp["paymentManagerId"]
    assert id_pattern(name).fullmatch(mid), mid
    assert resp["paymentManagerArn"] == manager_arn(ACCOUNT_1, mid)
    assert resp["name"] == name
    assert resp["authorizerType"] == "AWS_IAM"
    assert resp["roleArn"] == ROLE_ARN
    assert isinstance(resp["createdAt"], datetime.datetime)

    ready = wait_for(lambda: get(control, mid), "READY")
    assert ready["paymentManagerId"] == mid
    assert ready["paymentManagerArn"] == manager_arn(ACCOUNT_1, mid)
    assert ready["name"] == name
    assert ready["description"] == "compat test"
    assert ready["authorizerType"] == "AWS_IAM"
    assert ready["roleArn"] == ROLE_ARN
    assert ready["createdAt"] == resp["createdAt"]
    assert ready["lastUpdatedAt"] >= ready["createdAt"]


def test_get_right_after_create_finds_the_manager(control):
    resp = control.create_payment_manager(
        name=unique_manager_name(), authorizerType="AWS_IAM", roleArn=ROLE_ARN)
    got = get(control, resp["paymentManagerId"])
    assert got["status"] in ("CREATING", "READY")


def test_mixed_case_name_gives_lowercase_id(control):
    name = "MiXeD" + unique_manager_name("Case")
    resp = create_manager(control, name=name, wait=False)
    assert resp["paymentManagerId"].startswith(name.lower() + "-")
    assert id_pattern(name).fullmatch(resp["paymentManagerId"])


def test_timestamps_are_iso8601_on_the_wire(control, raw_request):
    m = create_manager(control)
    resp = raw_request("GET", f"/payments/managers/{m['paymentManagerId']}")
    assert resp.status == 200, resp.text
    for key in ("createdAt", "lastUpdatedAt"):
        value = resp.json[key]
        assert isinstance(value, str) and ISO8601_RE.fullmatch(value), (key, value)
    lst = raw_request("POST", "/payments/managers-list?maxResults=100", body={})
    assert lst.status == 200
    for item in lst.json["paymentManagers"]:
        assert isinstance(item["lastUpdatedAt"], str), item


def test_create_answers_202_on_the_wire(raw_request):
    name = unique_manager_name()
    resp = raw_request("POST", "/payments/managers", body={
        "name": name, "authorizerType": "AWS_IAM", "roleArn": ROLE_ARN,
        "clientToken": client_token()})
    assert resp.status == 202, resp.text
    assert resp.json["status"] == "CREATING"
    assert id_pattern(name).fullmatch(resp.json["paymentManagerId"])


def test_create_manager_custom_jwt(control):
    config = {"customJWTAuthorizer": {"discoveryUrl": DISCOVERY_URL,
                                      "allowedAudience": ["purser-tests"],
                                      "allowedClients": ["client-1"]}}
    resp = control.create_payment_manager(
        name=unique_manager_name(), authorizerType="CUSTOM_JWT",
        authorizerConfiguration=config, roleArn=ROLE_ARN)
    assert http_status(resp) == 202
    ready = wait_for(lambda: get(control, resp["paymentManagerId"]), "READY")
    assert ready["authorizerType"] == "CUSTOM_JWT"
    jwt = ready["authorizerConfiguration"]["customJWTAuthorizer"]
    assert jwt["discoveryUrl"] == DISCOVERY_URL
    assert jwt["allowedAudience"] == ["purser-tests"]
    assert jwt["allowedClients"] == ["client-1"]


def test_custom_jwt_requires_authorizer_configuration(control):
    err = expect_validation(lambda: control.create_payment_manager(
        name=unique_manager_name(), authorizerType="CUSTOM_JWT", roleArn=ROLE_ARN),
        field_prefix="authorizerConfiguration")
    assert err


def test_custom_jwt_requires_discovery_url(control_nv):
    expect_validation(lambda: control_nv.create_payment_manager(
        name=unique_manager_name(), authorizerType="CUSTOM_JWT", roleArn=ROLE_ARN,
        authorizerConfiguration={"customJWTAuthorizer": {"allowedAudience": ["a"]}}),
        field="authorizerConfiguration.customJWTAuthorizer.discoveryUrl")


def test_custom_jwt_rejects_bad_discovery_url(control):
    expect_validation(lambda: control.create_payment_manager(
        name=unique_manager_name(), authorizerType="CUSTOM_JWT", roleArn=ROLE_ARN,
        authorizerConfiguration={"customJWTAuthorizer": {
            "discoveryUrl": "https://issuer.example.com/no-well-known-here"}}),
        field="authorizerConfiguration.customJWTAuthorizer.discoveryUrl")


def test_create_with_tags(control):
    tags = {"team": "payments", "cost-center": "42"}
    resp = create_manager(control, tags=tags, wait=False)
    assert resp.get("tags") == tags
    got = wait_for(lambda: get(control, resp["paymentManagerId"]), "READY")
    assert got.get("tags") == tags


@pytest.mark.parametrize("bad_name", ["1leadingDigit", "has_underscore", "has-dash",
                                      "a" * 49, "spa ce"])
def test_create_rejects_bad_name(control, bad_name):
    err = expect_validation(lambda: control.create_payment_manager(
        name=bad_name, authorizerType="AWS_IAM", roleArn=ROLE_ARN), field="name")
    if bad_name != "a" * 49:
        assert "[a-zA-Z][a-zA-Z0-9]{0,47}" in err.response["Error"]["Message"]


@pytest.mark.parametrize("bad_role", ["not-an-arn", "arn:aws:iam::111122223333:user/bob",
                                      "arn:aws:s3:::bucket"])
def test_create_rejects_bad_role_arn(control, bad_role):
    expect_validation(lambda: control.create_payment_manager(
        name=unique_manager_name(), authorizerType="AWS_IAM", roleArn=bad_role),
        field="roleArn")


def test_create_rejects_unknown_authorizer_type(control):
    expect_validation(lambda: control.create_payment_manager(
        name=unique_manager_name(), authorizerType="API_KEY", roleArn=ROLE_ARN),
        field="authorizerType")


def test_create_rejects_control_characters_in_description(control):
    expect_validation(lambda: control.create_payment_manager(
        name=unique_manager_name(), authorizerType="AWS_IAM", roleArn=ROLE_ARN,
        description="bell\x07"), field="description")


def test_create_rejects_missing_role_arn(control_nv):
    expect_validation(lambda: control_nv.create_payment_manager(
        name=unique_manager_name(), authorizerType="AWS_IAM"), field="roleArn")


def test_create_rejects_short_client_token(control_nv):
    expect_validation(lambda: control_nv.create_payment_manager(
        name=unique_manager_name(), authorizerType="AWS_IAM", roleArn=ROLE_ARN,
        clientToken="short"), field="clientToken")


def test_create_rejects_too_many_tags(control):
    tags = {f"k{i}": "v" for i in range(51)}
    expect_validation(lambda: control.create_payment_manager(
        name=unique_manager_name(), authorizerType="AWS_IAM", roleArn=ROLE_ARN, tags=tags),
        field="tags")


# ------------------------------------------------------------ idempotency


def test_same_client_token_same_request_is_one_manager(control):
    name, token = unique_manager_name(), client_token()
    args = dict(name=name, authorizerType="AWS_IAM", roleArn=ROLE_ARN, clientToken=token,
                description="idempotent")
    first = control.create_payment_manager(**args)
    second = control.create_payment_manager(**args)
    assert http_status(second) == 202
    assert second["paymentManagerId"] == first["paymentManagerId"]
    assert second["paymentManagerArn"] == first["paymentManagerArn"]
    wait_for(lambda: get(control, first["paymentManagerId"]), "READY")
    third = control.create_payment_manager(**args)
    assert third["paymentManagerId"] == first["paymentManagerId"]
    named = [m for page in collect_pages(control.list_payment_managers, "paymentManagers", 100)
             for m in page if m["name"] == name]
    assert len(named) == 1, named


def test_same_client_token_different_request_is_rejected(control):
    token = client_token()
    control.create_payment_manager(name=unique_manager_name(), authorizerType="AWS_IAM",
                                   roleArn=ROLE_ARN, clientToken=token)
    expect_validation(lambda: control.create_payment_manager(
        name=unique_manager_name(), authorizerType="AWS_IAM", roleArn=ROLE_ARN,
        clientToken=token), reason="IdempotentParameterMismatchException")


def test_client_tokens_are_per_account(control, control2):
    args = dict(name=unique_manager_name(), authorizerType="AWS_IAM", roleArn=ROLE_ARN,
                clientToken=client_token())
    a = control.create_payment_manager(**args)
    b = control2.create_payment_manager(**args)
    assert a["paymentManagerId"] != b["paymentManagerId"]
    assert ":444455556666:" in b["paymentManagerArn"]


# ------------------------------------------------------------------- get


def test_get_unknown_manager(control):
    expect_not_found(lambda: get(control, "nosuchmanager-0123456789"))


def test_get_malformed_manager_id(control):
    expect_validation(lambda: get(control, "NOT_A_VALID_ID"), field="paymentManagerId")


# ---------------------------------------------------------------- update


def test_update_manager(control):
    m = create_manager(control, description="before")
    mid = m["paymentManagerId"]
    before = get(control, mid)
    resp = control.update_payment_manager(paymentManagerId=mid, description="after",
                                          roleArn=ROLE_ARN_2)
    assert http_status(resp) == 202
    assert resp["status"] == "UPDATING"
    assert resp["paymentManagerId"] == mid
    assert resp["paymentManagerArn"] == m["paymentManagerArn"]
    assert resp["roleArn"] == ROLE_ARN_2
    ready = wait_for(lambda: get(control, mid), "READY")
    assert ready["description"] == "after"
    assert ready["roleArn"] == ROLE_ARN_2
    assert ready["name"] == m["name"]
    assert ready["createdAt"] == before["createdAt"]
    assert ready["lastUpdatedAt"] >= before["lastUpdatedAt"]


def test_update_keeps_unset_fields(control):
    m = create_manager(control, description="keep me")
    mid = m["paymentManagerId"]
    control.update_payment_manager(paymentManagerId=mid, roleArn=ROLE_ARN_2)
    ready = wait_for(lambda: get(control, mid), "READY")
    assert ready["description"] == "keep me"
    assert ready["roleArn"] == ROLE_ARN_2


def test_update_rejects_bad_role_arn(control):
    m = create_manager(control)
    expect_validation(lambda: control.update_payment_manager(
        paymentManagerId=m["paymentManagerId"], roleArn="nope"), field="roleArn")


def test_update_to_custom_jwt_requires_discovery_url(control_nv):
    m = create_manager(control_nv)
    expect_validation(lambda: control_nv.update_payment_manager(
        paymentManagerId=m["paymentManagerId"], authorizerType="CUSTOM_JWT",
        authorizerConfiguration={"customJWTAuthorizer": {}}),
        field="authorizerConfiguration.customJWTAuthorizer.discoveryUrl")


def test_update_unknown_manager(control):
    expect_not_found(lambda: control.update_payment_manager(
        paymentManagerId="nosuchmanager-0123456789", description="x"))


# ------------------------------------------------------------------ list


def test_list_pages_return_each_manager_once(control):
    ids = [create_manager(control, wait=False)["paymentManagerId"] for _ in range(12)]
    pages = collect_pages(control.list_payment_managers, "paymentManagers", 5)
    assert len(pages) >= 3
    found = [m["paymentManagerId"] for page in pages for m in page]
    assert_each_once(found, ids)
    for m in (m for page in pages for m in page):
        assert m["paymentManagerArn"] == manager_arn(ACCOUNT_1, m["paymentManagerId"])
        assert m["authorizerType"] in ("AWS_IAM", "CUSTOM_JWT")
        assert m["roleArn"]
        assert m["status"]
        assert isinstance(m["lastUpdatedAt"], datetime.datetime)


def test_list_paging_is_stable_under_inserts(control):
    ids = [create_manager(control, wait=False)["paymentManagerId"] for _ in range(6)]
    first = control.list_payment_managers(maxResults=2)
    found = [m["paymentManagerId"] for m in first["paymentManagers"]]
    token = first.get("nextToken")
    assert token
    late = [create_manager(control, wait=False)["paymentManagerId"] for _ in range(3)]
    while token:
        page = control.list_payment_managers(maxResults=2, nextToken=token)
        found += [m["paymentManagerId"] for m in page["paymentManagers"]]
        token = page.get("nextToken")
    # Every manager that existed before paging began shows up exactly once; the
    # ones inserted meanwhile may or may not, but never twice.
    assert_each_once(found, ids)
    assert all(found.count(x) <= 1 for x in late)


def test_list_max_results_bounds(control, control_nv):
    create_manager(control, wait=False)
    assert len(control.list_payment_managers(maxResults=1)["paymentManagers"]) == 1
    assert isinstance(control.list_payment_managers(maxResults=100)["paymentManagers"], list)
    expect_validation(lambda: control.list_payment_managers(maxResults=101), field="maxResults")
    expect_validation(lambda: control_nv.list_payment_managers(maxResults=0), field="maxResults")


def test_list_rejects_forged_next_token(control):
    expect_validation(lambda: control.list_payment_managers(nextToken="forgedtoken123"),
                      field="nextToken")


# ---------------------------------------------------------------- delete


def test_delete_manager(control):
    m = create_manager(control)
    mid = m["paymentManagerId"]
    resp = control.delete_payment_manager(paymentManagerId=mid)
    assert http_status(resp) == 202
    assert resp["status"] == "DELETING"
    wait_gone(lambda: get(control, mid))
    assert mid not in all_manager_ids(control)
    expect_not_found(lambda: control.delete_payment_manager(paymentManagerId=mid))


def test_delete_unknown_manager(control):
    expect_not_found(lambda: control.delete_payment_manager(
        paymentManagerId="nosuchmanager-0123456789"))


def test_delete_manager_with_connectors_conflicts(control):
    m = create_manager(control)
    mid = m["paymentManagerId"]
    c = create_connector(control, mid)
    expect_error(lambda: control.delete_payment_manager(paymentManagerId=mid),
                 "ConflictException", 409)
    assert get(control, mid)["status"] == "READY"
    control.delete_payment_connector(paymentManagerId=mid,
                                     paymentConnectorId=c["paymentConnectorId"])
    wait_gone(lambda: control.get_payment_connector(
        paymentManagerId=mid, paymentConnectorId=c["paymentConnectorId"]))
    resp = control.delete_payment_manager(paymentManagerId=mid)
    assert resp["status"] == "DELETING"
    wait_gone(lambda: get(control, mid))


# --------------------------------------------------------- cross-account


def test_other_account_cannot_see_manager(control, control2):
    m = create_manager(control)
    mid = m["paymentManagerId"]
    expect_not_found(lambda: get(control2, mid))
    expect_not_found(lambda: control2.update_payment_manager(paymentManagerId=mid,
                                                             description="hijack"))
    expect_not_found(lambda: control2.delete_payment_manager(paymentManagerId=mid))
    assert mid not in all_manager_ids(control2)
    assert mid in all_manager_ids(control)
    got = get(control, mid)
    assert got["status"] == "READY"
    assert got.get("description") != "hijack"
