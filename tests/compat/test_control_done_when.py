"""The control plane's "done when" script: what a boto3 user does on day one,
end to end, with the exact error shapes along the way."""

import pytest
from botocore.exceptions import ClientError

from compat_helpers import (
    ACCOUNT_1,
    ROLE_ARN,
    ROLE_ARN_2,
    coinbase_input,
    id_pattern,
    manager_arn,
    provider_arn,
    secret_values,
    unique_connector_name,
    unique_manager_name,
    unique_provider_name,
    wait_for,
    wait_gone,
)


def error_of(call):
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response


def assert_shape(resp, code, status):
    assert resp["Error"]["Code"] == code, resp["Error"]
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == status
    headers = resp["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-errortype"] == code
    assert headers.get("x-amzn-requestid")
    assert resp["ResponseMetadata"].get("RequestId") == headers["x-amzn-requestid"]
    assert resp["Error"]["Message"]


def test_done_when_script(control, make_client, purser):
    # 1. A credential provider.
    pname = unique_provider_name("done")
    pcfg = coinbase_input()
    prov = control.create_payment_credential_provider(
        name=pname, credentialProviderVendor="CoinbaseCDP", providerConfigurationInput=pcfg)
    assert prov["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert prov["credentialProviderArn"] == provider_arn(ACCOUNT_1, pname)

    # 2. A manager, READY by itself.
    mname = unique_manager_name("done")
    mgr = control.create_payment_manager(name=mname, authorizerType="AWS_IAM",
                                         roleArn=ROLE_ARN, description="done-when")
    assert mgr["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert mgr["status"] == "CREATING"
    mid = mgr["paymentManagerId"]
    assert id_pattern(mname).fullmatch(mid)
    assert mgr["paymentManagerArn"] == manager_arn(ACCOUNT_1, mid)
    wait_for(lambda: control.get_payment_manager(paymentManagerId=mid), "READY")

    # 3. A self-custody connector, READY by itself.
    cname = unique_connector_name("done")
    conn = control.create_payment_connector(paymentManagerId=mid, name=cname,
                                            type="SelfCustody",
                                            credentialProviderConfigurations=[])
    assert conn["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert conn["status"] == "CREATING"
    cid = conn["paymentConnectorId"]
    assert id_pattern(cname).fullmatch(cid)
    wait_for(lambda: control.get_payment_connector(paymentManagerId=mid,
                                                   paymentConnectorId=cid), "READY")

    # 4. Lists.
    providers = control.list_payment_credential_providers(maxResults=20)
    assert "credentialProviders" in providers
    managers = control.list_payment_managers(maxResults=100)
    assert "paymentManagers" in managers
    connectors = control.list_payment_connectors(paymentManagerId=mid)
    assert [c["paymentConnectorId"] for c in connectors["paymentConnectors"]] == [cid]

    # 5. Updates.
    upd = control.update_payment_manager(paymentManagerId=mid, description="updated",
                                         roleArn=ROLE_ARN_2)
    assert upd["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert upd["status"] == "UPDATING"
    got = wait_for(lambda: control.get_payment_manager(paymentManagerId=mid), "READY")
    assert got["description"] == "updated" and got["roleArn"] == ROLE_ARN_2
    upc = control.update_payment_connector(paymentManagerId=mid, paymentConnectorId=cid,
                                           description="updated connector")
    assert upc["ResponseMetadata"]["HTTPStatusCode"] == 202
    got = wait_for(lambda: control.get_payment_connector(paymentManagerId=mid,
                                                         paymentConnectorId=cid), "READY")
    assert got["description"] == "updated connector"
    upp = control.update_payment_credential_provider(
        name=pname, credentialProviderVendor="CoinbaseCDP",
        providerConfigurationInput=coinbase_input())
    assert upp["ResponseMetadata"]["HTTPStatusCode"] == 200

    # 6. Errors, exact shapes.
    bad = error_of(lambda: control.create_payment_manager(
        name="bad-name", authorizerType="AWS_IAM", roleArn=ROLE_ARN))
    assert_shape(bad, "ValidationException", 400)
    assert bad["reason"] == "FieldValidationFailed"
    assert [f["name"] for f in bad["fieldList"]] == ["name"]
    assert "name" in bad["Error"]["Message"]
    assert "[a-zA-Z][a-zA-Z0-9]{0,47}" in bad["Error"]["Message"]

    bad = error_of(lambda: control.create_payment_connector(
        paymentManagerId=mid, name=unique_connector_name(), type="CoinbaseCDP",
        credentialProviderConfigurations=[{"coinbaseCDP": {"credentialProviderArn": "x" * 70}}]))
    assert_shape(bad, "ValidationException", 400)
    field = "credentialProviderConfigurations[0].coinbaseCDP.credentialProviderArn"
    assert field in [f["name"] for f in bad["fieldList"]]
    assert field in bad["Error"]["Message"]

    for call in (
        lambda: control.get_payment_manager(paymentManagerId="nosuchmanager-0123456789"),
        lambda: control.get_payment_connector(paymentManagerId=mid,
                                              paymentConnectorId="nosuchconn-0123456789"),
        lambda: control.get_payment_credential_provider(name=unique_provider_name()),
    ):
        assert_shape(error_of(call), "ResourceNotFoundException", 404)

    forged = make_client(secret_access_key="f" * 40)
    assert_shape(error_of(lambda: forged.get_payment_manager(paymentManagerId=mid)),
                 "InvalidSignatureException", 403)
    stranger = make_client(access_key_id="AKIAPURSERSTRANGER01")
    assert_shape(error_of(lambda: stranger.list_payment_managers()),
                 "UnrecognizedClientException", 403)

    conflict = error_of(lambda: control.delete_payment_manager(paymentManagerId=mid))
    assert_shape(conflict, "ConflictException", 409)

    # 7. Delete everything.
    d = control.delete_payment_connector(paymentManagerId=mid, paymentConnectorId=cid)
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 202 and d["status"] == "DELETING"
    wait_gone(lambda: control.get_payment_connector(paymentManagerId=mid,
                                                    paymentConnectorId=cid))
    d = control.delete_payment_manager(paymentManagerId=mid)
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 202 and d["status"] == "DELETING"
    wait_gone(lambda: control.get_payment_manager(paymentManagerId=mid))
    d = control.delete_payment_credential_provider(name=pname)
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert_shape(error_of(lambda: control.get_payment_credential_provider(name=pname)),
                 "ResourceNotFoundException", 404)

    # The vendor secrets never surfaced.
    log = purser.log_text()
    for secret in secret_values(pcfg):
        assert secret not in log
