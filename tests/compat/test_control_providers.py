"""Payment credential providers: POST /identities/<Op> (B3, B4, B10, B11, B31)."""

import datetime
import os
import time

import pytest

from compat_helpers import (
    ACCOUNT_1,
    ACCOUNT_2,
    SECRET_ARN_RE,
    assert_each_once,
    coinbase_input,
    collect_pages,
    create_provider,
    dumps,
    expect_error,
    expect_not_found,
    expect_validation,
    field_names,
    http_status,
    provider_arn,
    random_secret,
    secret_values,
    stripe_input,
    unique_provider_name,
)

CREATE = "/identities/CreatePaymentCredentialProvider"
GET = "/identities/GetPaymentCredentialProvider"
UPDATE = "/identities/UpdatePaymentCredentialProvider"
DELETE = "/identities/DeletePaymentCredentialProvider"
LIST = "/identities/ListPaymentCredentialProviders"


def assert_epoch_seconds(value):
    assert isinstance(value, (int, float)) and not isinstance(value, bool), (
        f"timestamp must be a JSON number (epoch seconds), got {value!r}")
    assert abs(value - time.time()) < 600, f"timestamp {value} is not about now"


# ----------------------------------------------------------------- create


def test_create_coinbase_provider(control):
    name = unique_provider_name()
    cfg = coinbase_input()
    resp = control.create_payment_credential_provider(
        name=name, credentialProviderVendor="CoinbaseCDP", providerConfigurationInput=cfg)
    assert http_status(resp) == 201
    assert resp["name"] == name
    assert resp["credentialProviderVendor"] == "CoinbaseCDP"
    assert resp["credentialProviderArn"] == provider_arn(ACCOUNT_1, name)
    out = resp["providerConfigurationOutput"]
    assert list(out) == ["coinbaseCdpConfiguration"], out
    cdp = out["coinbaseCdpConfiguration"]
    assert cdp["apiKeyId"] == cfg["coinbaseCdpConfiguration"]["apiKeyId"]
    for key in ("apiKeySecretArn", "walletSecretArn"):
        arn = cdp[key]["secretArn"]
        assert SECRET_ARN_RE.fullmatch(arn), arn
        assert arn.startswith("arn:aws:secretsmanager:us-east-1:111122223333:secret:"), arn
    assert cdp["apiKeySecretArn"]["secretArn"] != cdp["walletSecretArn"]["secretArn"]
    text = dumps(resp)
    for secret in secret_values(cfg):
        assert secret not in text


def test_create_stripe_privy_provider(control):
    name = unique_provider_name()
    cfg = stripe_input()
    resp = control.create_payment_credential_provider(
        name=name, credentialProviderVendor="StripePrivy", providerConfigurationInput=cfg)
    assert http_status(resp) == 201
    assert resp["credentialProviderArn"] == provider_arn(ACCOUNT_1, name)
    assert resp["credentialProviderVendor"] == "StripePrivy"
    out = resp["providerConfigurationOutput"]
    assert list(out) == ["stripePrivyConfiguration"], out
    sp = out["stripePrivyConfiguration"]
    assert sp["appId"] == cfg["stripePrivyConfiguration"]["appId"]
    assert sp["authorizationId"] == cfg["stripePrivyConfiguration"]["authorizationId"]
    for key in ("appSecretArn", "authorizationPrivateKeyArn"):
        assert SECRET_ARN_RE.fullmatch(sp[key]["secretArn"]), sp[key]
    text = dumps(resp)
    for secret in secret_values(cfg):
        assert secret not in text


def test_create_with_tags_and_get_them_back(control):
    tags = {"team": "payments", "env": "test"}
    p = create_provider(control, tags=tags)
    got = control.get_payment_credential_provider(name=p["name"])
    assert got.get("tags") == tags


def test_duplicate_name_conflicts(control):
    p = create_provider(control)
    expect_error(lambda: create_provider(control, name=p["name"]), "ConflictException", 409)
    expect_error(lambda: create_provider(control, vendor="StripePrivy", name=p["name"]),
                 "ConflictException", 409)


def test_same_name_in_other_account_is_independent(control, control2):
    p1 = create_provider(control)
    p2 = create_provider(control2, name=p1["name"])
    assert p2["credentialProviderArn"] == provider_arn(ACCOUNT_2, p1["name"])
    g1 = control.get_payment_credential_provider(name=p1["name"])
    g2 = control2.get_payment_credential_provider(name=p1["name"])
    assert g1["credentialProviderArn"] == provider_arn(ACCOUNT_1, p1["name"])
    assert g2["credentialProviderArn"] == provider_arn(ACCOUNT_2, p1["name"])
    assert (g1["providerConfigurationOutput"]["coinbaseCdpConfiguration"]["apiKeyId"]
            == p1["_input"]["coinbaseCdpConfiguration"]["apiKeyId"])
    assert (g2["providerConfigurationOutput"]["coinbaseCdpConfiguration"]["apiKeyId"]
            == p2["_input"]["coinbaseCdpConfiguration"]["apiKeyId"])


# ------------------------------------------------------------ validation


@pytest.mark.parametrize("bad_name", ["has space", "bang!", "x" * 129, "dots.not.ok"])
def test_create_rejects_bad_name(control, bad_name):
    expect_validation(lambda: control.create_payment_credential_provider(
        name=bad_name, credentialProviderVendor="CoinbaseCDP",
        providerConfigurationInput=coinbase_input()), field="name")


def test_create_rejects_unknown_vendor(control):
    expect_validation(lambda: control.create_payment_credential_provider(
        name=unique_provider_name(), credentialProviderVendor="PayPal",
        providerConfigurationInput=coinbase_input()), field="credentialProviderVendor")


@pytest.mark.parametrize("vendor,cfg", [("CoinbaseCDP", stripe_input),
                                        ("StripePrivy", coinbase_input)])
def test_create_rejects_vendor_config_mismatch(control, vendor, cfg):
    err = expect_validation(lambda: control.create_payment_credential_provider(
        name=unique_provider_name(), credentialProviderVendor=vendor,
        providerConfigurationInput=cfg()))
    names = field_names(err)
    assert any(n.startswith(("providerConfigurationInput", "credentialProviderVendor"))
               for n in names), names
    assert any(n in err.response["Error"]["Message"] for n in names)


def test_create_rejects_bad_secret_without_echoing_it(control, purser):
    bad = random_secret() + "!$"
    err = expect_validation(lambda: control.create_payment_credential_provider(
        name=unique_provider_name(), credentialProviderVendor="CoinbaseCDP",
        providerConfigurationInput=coinbase_input(apiKeySecret=bad)),
        field="providerConfigurationInput.coinbaseCdpConfiguration.apiKeySecret")
    assert bad not in dumps(err.response)
    assert bad not in purser.log_text()


def test_create_rejects_bad_app_id_nested(control):
    expect_validation(lambda: control.create_payment_credential_provider(
        name=unique_provider_name(), credentialProviderVendor="StripePrivy",
        providerConfigurationInput=stripe_input(appId="no spaces allowed")),
        field="providerConfigurationInput.stripePrivyConfiguration.appId")


def test_create_rejects_missing_required_nested_member(control_nv):
    cfg = coinbase_input()
    del cfg["coinbaseCdpConfiguration"]["apiKeyId"]
    expect_validation(lambda: control_nv.create_payment_credential_provider(
        name=unique_provider_name(), credentialProviderVendor="CoinbaseCDP",
        providerConfigurationInput=cfg),
        field="providerConfigurationInput.coinbaseCdpConfiguration.apiKeyId")


def test_create_rejects_missing_name(control_nv):
    expect_validation(lambda: control_nv.create_payment_credential_provider(
        credentialProviderVendor="CoinbaseCDP", providerConfigurationInput=coinbase_input()),
        field="name")


def test_create_rejects_union_with_two_members(control_nv):
    cfg = {**coinbase_input(), **stripe_input()}
    expect_validation(lambda: control_nv.create_payment_credential_provider(
        name=unique_provider_name(), credentialProviderVendor="CoinbaseCDP",
        providerConfigurationInput=cfg), field_prefix="providerConfigurationInput")


def test_create_rejects_bad_tag_key(control):
    expect_validation(lambda: create_provider(control, tags={"bad#key": "v"}),
                      field_prefix="tags")


# ------------------------------------------------------------------ get


def test_get_provider(control):
    p = create_provider(control, vendor="StripePrivy")
    got = control.get_payment_credential_provider(name=p["name"])
    assert http_status(got) == 200
    assert got["name"] == p["name"]
    assert got["credentialProviderVendor"] == "StripePrivy"
    assert got["credentialProviderArn"] == p["credentialProviderArn"]
    assert got["providerConfigurationOutput"] == p["providerConfigurationOutput"]
    assert isinstance(got["createdTime"], datetime.datetime)
    assert isinstance(got["lastUpdatedTime"], datetime.datetime)
    assert got["lastUpdatedTime"] >= got["createdTime"]


def test_get_unknown_provider(control):
    expect_not_found(lambda: control.get_payment_credential_provider(
        name=unique_provider_name()))


def test_timestamps_are_epoch_seconds_on_the_wire(control, raw_request):
    p = create_provider(control)
    got = raw_request("POST", GET, body={"name": p["name"]})
    assert got.status == 200, got.text
    assert_epoch_seconds(got.json["createdTime"])
    assert_epoch_seconds(got.json["lastUpdatedTime"])
    upd = raw_request("POST", UPDATE, body={
        "name": p["name"], "credentialProviderVendor": "CoinbaseCDP",
        "providerConfigurationInput": coinbase_input()})
    assert upd.status == 200, upd.text
    assert_epoch_seconds(upd.json["createdTime"])
    assert_epoch_seconds(upd.json["lastUpdatedTime"])
    lst = raw_request("POST", LIST, body={"maxResults": 20})
    assert lst.status == 200, lst.text
    assert lst.json["credentialProviders"], lst.text
    for item in lst.json["credentialProviders"]:
        assert_epoch_seconds(item["createdTime"])
        assert_epoch_seconds(item["lastUpdatedTime"])


def test_create_answers_201_on_the_wire(raw_request):
    name = unique_provider_name()
    resp = raw_request("POST", CREATE, body={
        "name": name, "credentialProviderVendor": "CoinbaseCDP",
        "providerConfigurationInput": coinbase_input()})
    assert resp.status == 201, resp.text
    assert resp.json["credentialProviderArn"] == provider_arn(ACCOUNT_1, name)


# --------------------------------------------------------------- update


def test_update_provider(control):
    p = create_provider(control)
    before = control.get_payment_credential_provider(name=p["name"])
    new_cfg = coinbase_input()
    upd = control.update_payment_credential_provider(
        name=p["name"], credentialProviderVendor="CoinbaseCDP",
        providerConfigurationInput=new_cfg)
    assert http_status(upd) == 200
    assert upd["name"] == p["name"]
    assert upd["credentialProviderArn"] == p["credentialProviderArn"]
    cdp = upd["providerConfigurationOutput"]["coinbaseCdpConfiguration"]
    assert cdp["apiKeyId"] == new_cfg["coinbaseCdpConfiguration"]["apiKeyId"]
    assert SECRET_ARN_RE.fullmatch(cdp["apiKeySecretArn"]["secretArn"])
    assert upd["createdTime"] == before["createdTime"]
    assert upd["lastUpdatedTime"] >= before["lastUpdatedTime"]
    for secret in secret_values(new_cfg):
        assert secret not in dumps(upd)
    got = control.get_payment_credential_provider(name=p["name"])
    assert (got["providerConfigurationOutput"]["coinbaseCdpConfiguration"]["apiKeyId"]
            == new_cfg["coinbaseCdpConfiguration"]["apiKeyId"])


def test_update_stripe_provider(control):
    p = create_provider(control, vendor="StripePrivy")
    new_cfg = stripe_input()
    upd = control.update_payment_credential_provider(
        name=p["name"], credentialProviderVendor="StripePrivy",
        providerConfigurationInput=new_cfg)
    sp = upd["providerConfigurationOutput"]["stripePrivyConfiguration"]
    assert sp["appId"] == new_cfg["stripePrivyConfiguration"]["appId"]
    assert sp["authorizationId"] == new_cfg["stripePrivyConfiguration"]["authorizationId"]


def test_update_unknown_provider(control):
    expect_not_found(lambda: control.update_payment_credential_provider(
        name=unique_provider_name(), credentialProviderVendor="CoinbaseCDP",
        providerConfigurationInput=coinbase_input()))


def test_update_rejects_vendor_config_mismatch(control):
    p = create_provider(control)
    err = expect_validation(lambda: control.update_payment_credential_provider(
        name=p["name"], credentialProviderVendor="CoinbaseCDP",
        providerConfigurationInput=stripe_input()))
    assert any(n.startswith(("providerConfigurationInput", "credentialProviderVendor"))
               for n in field_names(err))


def test_update_rejects_bad_nested_value(control):
    p = create_provider(control)
    expect_validation(lambda: control.update_payment_credential_provider(
        name=p["name"], credentialProviderVendor="CoinbaseCDP",
        providerConfigurationInput=coinbase_input(apiKeyId="white space")),
        field="providerConfigurationInput.coinbaseCdpConfiguration.apiKeyId")


# ----------------------------------------------------------------- list


def test_list_pages_return_each_provider_once(control):
    names = [create_provider(control)["name"] for _ in range(25)]
    for page_size in (7, 20):
        pages = collect_pages(control.list_payment_credential_providers,
                              "credentialProviders", page_size)
        assert len(pages) >= 2
        found = [item["name"] for page in pages for item in page]
        assert_each_once(found, names)
    for item in (i for page in pages for i in page):
        assert item["credentialProviderArn"] == provider_arn(ACCOUNT_1, item["name"])
        assert item["credentialProviderVendor"] in ("CoinbaseCDP", "StripePrivy")
        assert isinstance(item["createdTime"], datetime.datetime)
        assert isinstance(item["lastUpdatedTime"], datetime.datetime)


def test_list_max_results_one(control):
    create_provider(control)
    create_provider(control)
    first = control.list_payment_credential_providers(maxResults=1)
    assert len(first["credentialProviders"]) == 1
    assert first.get("nextToken")
    second = control.list_payment_credential_providers(maxResults=1,
                                                       nextToken=first["nextToken"])
    assert len(second["credentialProviders"]) == 1
    assert second["credentialProviders"][0]["name"] != first["credentialProviders"][0]["name"]


def test_list_rejects_max_results_21(control):
    expect_validation(lambda: control.list_payment_credential_providers(maxResults=21),
                      field="maxResults")


def test_list_rejects_max_results_0(control_nv):
    expect_validation(lambda: control_nv.list_payment_credential_providers(maxResults=0),
                      field="maxResults")


def test_list_rejects_forged_next_token(control):
    expect_validation(lambda: control.list_payment_credential_providers(
        nextToken="forged-token-that-the-server-never-issued"), field="nextToken")


def test_list_is_per_account(control, control2):
    mine = create_provider(control)["name"]
    theirs = create_provider(control2)["name"]
    names1 = [i["name"] for p in collect_pages(control.list_payment_credential_providers,
                                               "credentialProviders", 20) for i in p]
    names2 = [i["name"] for p in collect_pages(control2.list_payment_credential_providers,
                                               "credentialProviders", 20) for i in p]
    assert mine in names1 and mine not in names2
    assert theirs in names2 and theirs not in names1


# --------------------------------------------------------------- delete


def test_delete_provider(control, raw_request):
    p = create_provider(control)
    resp = raw_request("POST", DELETE, body={"name": p["name"]})
    assert resp.status == 204, resp.text
    assert resp.body == b""
    expect_not_found(lambda: control.get_payment_credential_provider(name=p["name"]))
    expect_not_found(lambda: control.delete_payment_credential_provider(name=p["name"]))
    names = [i["name"] for pg in collect_pages(control.list_payment_credential_providers,
                                               "credentialProviders", 20) for i in pg]
    assert p["name"] not in names


def test_delete_provider_boto3(control):
    p = create_provider(control, vendor="StripePrivy")
    resp = control.delete_payment_credential_provider(name=p["name"])
    assert http_status(resp) == 204
    expect_not_found(lambda: control.get_payment_credential_provider(name=p["name"]))
    # The name is free again.
    again = create_provider(control, name=p["name"])
    assert again["credentialProviderArn"] == p["credentialProviderArn"]


def test_delete_unknown_provider(control):
    expect_not_found(lambda: control.delete_payment_credential_provider(
        name=unique_provider_name()))


# --------------------------------------------------------- cross-account


def test_other_account_cannot_touch_provider(control, control2):
    p = create_provider(control)
    expect_not_found(lambda: control2.get_payment_credential_provider(name=p["name"]))
    expect_not_found(lambda: control2.update_payment_credential_provider(
        name=p["name"], credentialProviderVendor="CoinbaseCDP",
        providerConfigurationInput=coinbase_input()))
    expect_not_found(lambda: control2.delete_payment_credential_provider(name=p["name"]))
    got = control.get_payment_credential_provider(name=p["name"])
    assert (got["providerConfigurationOutput"]["coinbaseCdpConfiguration"]["apiKeyId"]
            == p["_input"]["coinbaseCdpConfiguration"]["apiKeyId"])


# --------------------------------------------------------------- secrets


def test_secrets_never_leave_the_server(control, raw_request, purser):
    cb, sp = coinbase_input(), stripe_input()
    cb_name, sp_name = unique_provider_name(), unique_provider_name()
    bodies = []
    for name, vendor, cfg in ((cb_name, "CoinbaseCDP", cb), (sp_name, "StripePrivy", sp)):
        bodies.append(raw_request("POST", CREATE, body={
            "name": name, "credentialProviderVendor": vendor,
            "providerConfigurationInput": cfg}))
        bodies.append(raw_request("POST", GET, body={"name": name}))
    cb2 = coinbase_input()
    bodies.append(raw_request("POST", UPDATE, body={
        "name": cb_name, "credentialProviderVendor": "CoinbaseCDP",
        "providerConfigurationInput": cb2}))
    bodies.append(raw_request("POST", LIST, body={"maxResults": 20}))
    # A conflicting create repeats the secrets in the request: not in the error either.
    bodies.append(raw_request("POST", CREATE, body={
        "name": cb_name, "credentialProviderVendor": "CoinbaseCDP",
        "providerConfigurationInput": cb}))
    assert bodies[-1].status == 409
    for r in bodies[:-1]:
        assert r.status in (200, 201), r.text
    all_secrets = secret_values(cb) + secret_values(sp) + secret_values(cb2)
    for r in bodies:
        for s in all_secrets:
            assert s not in r.text, "a secret value was returned"
            assert s not in str(r.headers)
    log = purser.log_text()
    for s in all_secrets:
        assert s not in log, "a secret value was logged"


def test_secrets_are_not_stored_in_plaintext(control, purser):
    p = create_provider(control)
    q = create_provider(control, vendor="StripePrivy")
    needles = [s.encode() for s in secret_values(p["_input"]) + secret_values(q["_input"])]
    scanned = 0
    for root, _dirs, files in os.walk(purser.data_dir):
        for f in files:
            path = os.path.join(root, f)
            try:
                with open(path, "rb") as fh:
                    content = fh.read()
            except OSError:
                continue
            scanned += 1
            for n in needles:
                assert n not in content, f"secret found in plaintext in {path}"
    assert scanned > 0, "the data dir holds no files"
