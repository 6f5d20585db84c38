"""Payment connectors: /payments/managers/{id}/connectors... (B3, B10, B13, B31)."""

import datetime

import pytest

from compat_helpers import (
    ACCOUNT_1,
    CONNECTOR_STATUSES,
    ISO8601_RE,
    assert_each_once,
    client_token,
    collect_pages,
    create_connector,
    create_manager,
    create_provider,
    expect_not_found,
    expect_validation,
    http_status,
    id_pattern,
    provider_arn,
    provider_config,
    unique_connector_name,
    unique_provider_name,
    wait_for,
    wait_gone,
)

UNKNOWN_MANAGER = "nosuchmanager-0123456789"
UNKNOWN_CONNECTOR = "nosuchconnector-0123456789"


def get(control, mid, cid):
    return control.get_payment_connector(paymentManagerId=mid, paymentConnectorId=cid)


@pytest.fixture
def manager(control):
    """A READY AWS_IAM manager of account 1 (its id)."""
    return create_manager(control)["paymentManagerId"]


@pytest.fixture
def coinbase_arn(control):
    return create_provider(control, vendor="CoinbaseCDP")["credentialProviderArn"]


@pytest.fixture
def stripe_arn(control):
    return create_provider(control, vendor="StripePrivy")["credentialProviderArn"]


# ----------------------------------------------------------------- create


def test_create_self_custody_connector(control, manager):
    name = unique_connector_name()
    resp = control.create_payment_connector(
        paymentManagerId=manager, name=name, description="keys held by purser",
        type="SelfCustody", credentialProviderConfigurations=[])
    assert http_status(resp) == 202
    assert resp["status"] == "CREATING"
    cid = resp["paymentConnectorId"]
    assert id_pattern(name).fullmatch(cid), cid
    assert resp["paymentManagerId"] == manager
    assert resp["name"] == name
    assert resp["type"] == "SelfCustody"
    assert resp["credentialProviderConfigurations"] == []
    assert isinstance(resp["createdAt"], datetime.datetime)

    ready = wait_for(lambda: get(control, manager, cid), "READY")
    assert ready["paymentConnectorId"] == cid
    assert ready["name"] == name
    assert ready["description"] == "keys held by purser"
    assert ready["type"] == "SelfCustody"
    assert ready["credentialProviderConfigurations"] == []
    assert ready["createdAt"] == resp["createdAt"]
    assert ready["lastUpdatedAt"] >= ready["createdAt"]


@pytest.mark.parametrize("vendor,member", [("CoinbaseCDP", "coinbaseCDP"),
                                           ("StripePrivy", "stripePrivy")])
def test_create_vendor_connector(control, manager, vendor, member):
    arn = create_provider(control, vendor=vendor)["credentialProviderArn"]
    resp = control.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type=vendor,
        credentialProviderConfigurations=provider_config(member, arn))
    assert http_status(resp) == 202
    assert resp["status"] == "CREATING"
    assert resp["type"] == vendor
    assert resp["credentialProviderConfigurations"] == provider_config(member, arn)
    ready = wait_for(lambda: get(control, manager, resp["paymentConnectorId"]), "READY")
    assert ready["type"] == vendor
    assert ready["credentialProviderConfigurations"] == provider_config(member, arn)


def test_connector_name_with_underscore_and_case(control, manager):
    name = "My_Connector_" + unique_connector_name("X")
    resp = create_connector(control, manager, name=name, wait=False)
    assert resp["paymentConnectorId"].startswith(name.lower() + "-")
    assert id_pattern(name).fullmatch(resp["paymentConnectorId"])


def test_timestamps_are_iso8601_on_the_wire(control, manager, raw_request):
    c = create_connector(control, manager)
    resp = raw_request(
        "GET", f"/payments/managers/{manager}/connectors/{c['paymentConnectorId']}")
    assert resp.status == 200, resp.text
    for key in ("createdAt", "lastUpdatedAt"):
        assert isinstance(resp.json[key], str) and ISO8601_RE.fullmatch(resp.json[key]), (
            key, resp.json[key])


def test_create_answers_202_on_the_wire(manager, raw_request):
    name = unique_connector_name()
    resp = raw_request("POST", f"/payments/managers/{manager}/connectors", body={
        "name": name, "type": "SelfCustody", "credentialProviderConfigurations": [],
        "clientToken": client_token()})
    assert resp.status == 202, resp.text
    assert resp.json["status"] == "CREATING"
    assert id_pattern(name).fullmatch(resp.json["paymentConnectorId"])


# ------------------------------------------------------------ validation


def test_self_custody_rejects_provider_list(control, manager, coinbase_arn):
    expect_validation(lambda: control.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type="SelfCustody",
        credentialProviderConfigurations=provider_config("coinbaseCDP", coinbase_arn)),
        field_prefix="credentialProviderConfigurations")


@pytest.mark.parametrize("vendor", ["CoinbaseCDP", "StripePrivy"])
def test_vendor_connector_rejects_empty_list(control, manager, vendor):
    expect_validation(lambda: control.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type=vendor,
        credentialProviderConfigurations=[]),
        field_prefix="credentialProviderConfigurations")


def test_vendor_connector_rejects_mismatched_member(control, manager, stripe_arn,
                                                    coinbase_arn):
    expect_validation(lambda: control.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type="CoinbaseCDP",
        credentialProviderConfigurations=provider_config("stripePrivy", stripe_arn)),
        field_prefix="credentialProviderConfigurations")
    expect_validation(lambda: control.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type="StripePrivy",
        credentialProviderConfigurations=provider_config("coinbaseCDP", coinbase_arn)),
        field_prefix="credentialProviderConfigurations")


def test_vendor_connector_rejects_provider_of_other_vendor(control, manager, stripe_arn):
    # The member matches the type, but the provider it names is a StripePrivy one.
    expect_validation(lambda: control.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type="CoinbaseCDP",
        credentialProviderConfigurations=provider_config("coinbaseCDP", stripe_arn)),
        field_prefix="credentialProviderConfigurations")


def test_vendor_connector_rejects_two_entries(control, manager, coinbase_arn):
    two = provider_config("coinbaseCDP", coinbase_arn) * 2
    expect_validation(lambda: control.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type="CoinbaseCDP",
        credentialProviderConfigurations=two), field="credentialProviderConfigurations")


def test_vendor_connector_rejects_union_with_two_members(control_nv, manager, coinbase_arn):
    entry = {"coinbaseCDP": {"credentialProviderArn": coinbase_arn},
             "stripePrivy": {"credentialProviderArn": coinbase_arn}}
    expect_validation(lambda: control_nv.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type="CoinbaseCDP",
        credentialProviderConfigurations=[entry]),
        field_prefix="credentialProviderConfigurations[0]")


def test_malformed_provider_arn_names_the_nested_field(control, manager):
    bad = "arn:aws:bedrock-agentcore:us-east-1:111122223333:not-a-token-vault/whatever/x"
    expect_validation(lambda: control.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type="CoinbaseCDP",
        credentialProviderConfigurations=provider_config("coinbaseCDP", bad)),
        field="credentialProviderConfigurations[0].coinbaseCDP.credentialProviderArn")


def test_nonexistent_provider_is_not_found(control, manager):
    arn = provider_arn(ACCOUNT_1, unique_provider_name("missing"))
    expect_not_found(lambda: control.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type="CoinbaseCDP",
        credentialProviderConfigurations=provider_config("coinbaseCDP", arn)))


def test_provider_of_other_account_is_not_found(control, control2, manager):
    theirs = create_provider(control2)["credentialProviderArn"]
    expect_not_found(lambda: control.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type="CoinbaseCDP",
        credentialProviderConfigurations=provider_config("coinbaseCDP", theirs)))


def test_unknown_type_is_rejected(control, manager):
    expect_validation(lambda: control.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type="PayPal",
        credentialProviderConfigurations=[]), field="type")


@pytest.mark.parametrize("bad_name", ["1digit", "has-dash", "x" * 49, "sp ace"])
def test_bad_name_is_rejected(control, manager, bad_name):
    expect_validation(lambda: control.create_payment_connector(
        paymentManagerId=manager, name=bad_name, type="SelfCustody",
        credentialProviderConfigurations=[]), field="name")


def test_missing_configurations_is_rejected(control_nv, manager):
    expect_validation(lambda: control_nv.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type="SelfCustody"),
        field="credentialProviderConfigurations")


# ------------------------------------------------------------ idempotency


def test_connector_client_token(control, manager):
    token = client_token()
    args = dict(paymentManagerId=manager, name=unique_connector_name(), type="SelfCustody",
                credentialProviderConfigurations=[], clientToken=token)
    first = control.create_payment_connector(**args)
    second = control.create_payment_connector(**args)
    assert second["paymentConnectorId"] == first["paymentConnectorId"]
    expect_validation(lambda: control.create_payment_connector(
        **dict(args, name=unique_connector_name())),
        reason="IdempotentParameterMismatchException")
    ids = [c["paymentConnectorId"] for page in collect_pages(
        control.list_payment_connectors, "paymentConnectors", 100, paymentManagerId=manager)
        for c in page]
    assert ids == [first["paymentConnectorId"]]


# --------------------------------------------------------- unknown parents


def test_unknown_manager_is_not_found(control):
    expect_not_found(lambda: control.create_payment_connector(
        paymentManagerId=UNKNOWN_MANAGER, name=unique_connector_name(), type="SelfCustody",
        credentialProviderConfigurations=[]))
    expect_not_found(lambda: get(control, UNKNOWN_MANAGER, UNKNOWN_CONNECTOR))
    expect_not_found(lambda: control.list_payment_connectors(paymentManagerId=UNKNOWN_MANAGER))
    expect_not_found(lambda: control.update_payment_connector(
        paymentManagerId=UNKNOWN_MANAGER, paymentConnectorId=UNKNOWN_CONNECTOR,
        description="x"))
    expect_not_found(lambda: control.delete_payment_connector(
        paymentManagerId=UNKNOWN_MANAGER, paymentConnectorId=UNKNOWN_CONNECTOR))


def test_unknown_connector_is_not_found(control, manager):
    expect_not_found(lambda: get(control, manager, UNKNOWN_CONNECTOR))
    expect_not_found(lambda: control.update_payment_connector(
        paymentManagerId=manager, paymentConnectorId=UNKNOWN_CONNECTOR, description="x"))
    expect_not_found(lambda: control.delete_payment_connector(
        paymentManagerId=manager, paymentConnectorId=UNKNOWN_CONNECTOR))


def test_connector_is_only_under_its_own_manager(control, manager):
    other = create_manager(control)["paymentManagerId"]
    c = create_connector(control, manager)
    expect_not_found(lambda: get(control, other, c["paymentConnectorId"]))


# ---------------------------------------------------------------- update


def test_update_connector_description(control, manager):
    c = create_connector(control, manager, description="before")
    cid = c["paymentConnectorId"]
    before = get(control, manager, cid)
    resp = control.update_payment_connector(paymentManagerId=manager, paymentConnectorId=cid,
                                            description="after")
    assert http_status(resp) == 202
    assert resp["status"] in ("UPDATING", "READY")
    assert resp["paymentConnectorId"] == cid
    assert resp["paymentManagerId"] == manager
    assert resp["name"] == c["name"]
    assert resp["type"] == "SelfCustody"
    ready = wait_for(lambda: get(control, manager, cid), "READY")
    assert ready["description"] == "after"
    assert ready["createdAt"] == before["createdAt"]
    assert ready["lastUpdatedAt"] >= before["lastUpdatedAt"]


def test_update_connector_provider(control, manager, coinbase_arn):
    c = create_connector(control, manager, type_="CoinbaseCDP",
                         configs=provider_config("coinbaseCDP", coinbase_arn))
    cid = c["paymentConnectorId"]
    new_arn = create_provider(control)["credentialProviderArn"]
    resp = control.update_payment_connector(
        paymentManagerId=manager, paymentConnectorId=cid,
        credentialProviderConfigurations=provider_config("coinbaseCDP", new_arn))
    assert http_status(resp) == 202
    ready = wait_for(lambda: get(control, manager, cid), "READY")
    assert ready["credentialProviderConfigurations"] == provider_config("coinbaseCDP", new_arn)


def test_update_rejects_mismatched_member(control, manager, coinbase_arn, stripe_arn):
    c = create_connector(control, manager, type_="CoinbaseCDP",
                         configs=provider_config("coinbaseCDP", coinbase_arn))
    expect_validation(lambda: control.update_payment_connector(
        paymentManagerId=manager, paymentConnectorId=c["paymentConnectorId"],
        credentialProviderConfigurations=provider_config("stripePrivy", stripe_arn)),
        field_prefix="credentialProviderConfigurations")


def test_update_rejects_bad_description(control, manager):
    c = create_connector(control, manager)
    expect_validation(lambda: control.update_payment_connector(
        paymentManagerId=manager, paymentConnectorId=c["paymentConnectorId"],
        description="x" * 4097), field="description")


# ------------------------------------------------------------------ list


def test_list_connectors_pages(control, manager):
    ids = [create_connector(control, manager, wait=False)["paymentConnectorId"]
           for _ in range(7)]
    other = create_manager(control)["paymentManagerId"]
    foreign = create_connector(control, other, wait=False)["paymentConnectorId"]
    pages = collect_pages(control.list_payment_connectors, "paymentConnectors", 3,
                          paymentManagerId=manager)
    assert len(pages) >= 3
    found = [c["paymentConnectorId"] for page in pages for c in page]
    assert_each_once(found, ids)
    assert sorted(found) == sorted(ids)
    assert foreign not in found
    for c in (c for page in pages for c in page):
        assert c["name"] and c["type"] == "SelfCustody"
        assert c["status"] in CONNECTOR_STATUSES
        assert isinstance(c["lastUpdatedAt"], datetime.datetime)


def test_list_connectors_max_results_bounds(control, control_nv, manager):
    create_connector(control, manager, wait=False)
    expect_validation(lambda: control.list_payment_connectors(
        paymentManagerId=manager, maxResults=101), field="maxResults")
    expect_validation(lambda: control_nv.list_payment_connectors(
        paymentManagerId=manager, maxResults=0), field="maxResults")
    one = control.list_payment_connectors(paymentManagerId=manager, maxResults=1)
    assert len(one["paymentConnectors"]) == 1


def test_list_connectors_of_empty_manager(control, manager):
    resp = control.list_payment_connectors(paymentManagerId=manager)
    assert resp["paymentConnectors"] == []
    assert not resp.get("nextToken")


# ---------------------------------------------------------------- delete


def test_delete_connector(control, manager):
    c = create_connector(control, manager)
    cid = c["paymentConnectorId"]
    resp = control.delete_payment_connector(paymentManagerId=manager, paymentConnectorId=cid)
    assert http_status(resp) == 202
    assert resp["status"] == "DELETING"
    wait_gone(lambda: get(control, manager, cid))
    listed = control.list_payment_connectors(paymentManagerId=manager)["paymentConnectors"]
    assert cid not in [x["paymentConnectorId"] for x in listed]
    expect_not_found(lambda: control.delete_payment_connector(
        paymentManagerId=manager, paymentConnectorId=cid))


# ---------------------------------------------------------------- rotate


def test_rotate_quick_create_connector(control, manager, coinbase_arn):
    c = create_connector(control, manager, type_="CoinbaseCDP",
                         configs=provider_config("coinbaseCDP", coinbase_arn),
                         provisionMode="QUICK_CREATE")
    cid = c["paymentConnectorId"]
    got = get(control, manager, cid)
    assert got.get("provisionMode") == "QUICK_CREATE"
    resp = control.rotate_payment_connector_credentials(
        paymentManagerId=manager, paymentConnectorId=cid,
        credentialsToRotate={"coinbaseCDP": {"secrets": ["API_KEY", "WALLET_SECRET"]}})
    assert http_status(resp) == 202
    assert resp["paymentConnectorId"] == cid
    assert resp["paymentManagerId"] == manager
    assert resp["status"] in CONNECTOR_STATUSES
    assert isinstance(resp["lastUpdatedAt"], datetime.datetime)
    after = wait_for(lambda: get(control, manager, cid), "READY")
    assert isinstance(after.get("credentialsUpdatedAt"), datetime.datetime)


def test_rotate_manual_connector_is_rejected(control, manager, coinbase_arn):
    c = create_connector(control, manager, type_="CoinbaseCDP",
                         configs=provider_config("coinbaseCDP", coinbase_arn))
    err = expect_validation(lambda: control.rotate_payment_connector_credentials(
        paymentManagerId=manager, paymentConnectorId=c["paymentConnectorId"],
        credentialsToRotate={"coinbaseCDP": {"secrets": ["API_KEY"]}}), reason=None)
    assert err.response["Error"]["Message"]


def test_rotate_self_custody_connector_is_rejected(control, manager):
    c = create_connector(control, manager)
    expect_validation(lambda: control.rotate_payment_connector_credentials(
        paymentManagerId=manager, paymentConnectorId=c["paymentConnectorId"],
        credentialsToRotate={"coinbaseCDP": {"secrets": ["API_KEY"]}}), reason=None)


def test_rotate_rejects_unknown_secret_kind(control, manager, coinbase_arn):
    c = create_connector(control, manager, type_="CoinbaseCDP",
                         configs=provider_config("coinbaseCDP", coinbase_arn),
                         provisionMode="QUICK_CREATE")
    expect_validation(lambda: control.rotate_payment_connector_credentials(
        paymentManagerId=manager, paymentConnectorId=c["paymentConnectorId"],
        credentialsToRotate={"coinbaseCDP": {"secrets": ["PASSWORD"]}}),
        field_prefix="credentialsToRotate")


def test_rotate_unknown_connector(control, manager):
    expect_not_found(lambda: control.rotate_payment_connector_credentials(
        paymentManagerId=manager, paymentConnectorId=UNKNOWN_CONNECTOR,
        credentialsToRotate={"coinbaseCDP": {"secrets": ["API_KEY"]}}))


# --------------------------------------------------------- cross-account


def test_other_account_cannot_touch_connectors(control, control2, manager):
    c = create_connector(control, manager)
    cid = c["paymentConnectorId"]
    expect_not_found(lambda: get(control2, manager, cid))
    expect_not_found(lambda: control2.list_payment_connectors(paymentManagerId=manager))
    expect_not_found(lambda: control2.update_payment_connector(
        paymentManagerId=manager, paymentConnectorId=cid, description="hijack"))
    expect_not_found(lambda: control2.delete_payment_connector(
        paymentManagerId=manager, paymentConnectorId=cid))
    expect_not_found(lambda: control2.rotate_payment_connector_credentials(
        paymentManagerId=manager, paymentConnectorId=cid,
        credentialsToRotate={"coinbaseCDP": {"secrets": ["API_KEY"]}}))
    expect_not_found(lambda: control2.create_payment_connector(
        paymentManagerId=manager, name=unique_connector_name(), type="SelfCustody",
        credentialProviderConfigurations=[]))
    got = get(control, manager, cid)
    assert got["status"] == "READY"
    assert got.get("description") != "hijack"
    listed = control.list_payment_connectors(paymentManagerId=manager)["paymentConnectors"]
    assert [x["paymentConnectorId"] for x in listed] == [cid]
