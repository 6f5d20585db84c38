"""The timing the official AgentCore SDK and its integration tests rely on (issue 10):
they update a manager or connector right after creating it, while it is still CREATING,
and their rollback (`PaymentClient.create_payment_manager_with_connector`) deletes the
connector, then the manager, then the credential provider, each right after the other.
On AgentCore every step succeeds; so it must here."""

from compat_helpers import (
    ROLE_ARN,
    create_provider,
    expect_error,
    expect_not_found,
    http_status,
    unique_connector_name,
    unique_manager_name,
    wait_for,
    wait_gone,
)


def get_manager(control, mid):
    return control.get_payment_manager(paymentManagerId=mid)


def get_connector(control, mid, cid):
    return control.get_payment_connector(paymentManagerId=mid, paymentConnectorId=cid)


def test_update_manager_while_it_is_still_creating(control):
    m = control.create_payment_manager(name=unique_manager_name(), authorizerType="AWS_IAM",
                                       roleArn=ROLE_ARN)
    mid = m["paymentManagerId"]
    assert m["status"] == "CREATING"
    resp = control.update_payment_manager(paymentManagerId=mid, description="updated")
    assert http_status(resp) == 202
    assert resp["status"] == "UPDATING"
    got = wait_for(lambda: get_manager(control, mid), "READY")
    assert got["description"] == "updated"


def test_update_connector_while_it_is_still_creating(control):
    m = control.create_payment_manager(name=unique_manager_name(), authorizerType="AWS_IAM",
                                       roleArn=ROLE_ARN)
    mid = m["paymentManagerId"]
    wait_for(lambda: get_manager(control, mid), "READY")
    c = control.create_payment_connector(paymentManagerId=mid, name=unique_connector_name(),
                                         type="SelfCustody",
                                         credentialProviderConfigurations=[])
    cid = c["paymentConnectorId"]
    assert c["status"] == "CREATING"
    resp = control.update_payment_connector(paymentManagerId=mid, paymentConnectorId=cid,
                                            description="updated")
    assert http_status(resp) == 202
    assert resp["status"] == "UPDATING"
    got = wait_for(lambda: get_connector(control, mid, cid), "READY")
    assert got["description"] == "updated"


def test_sdk_rollback_order_deletes_everything_at_once(control):
    """Provider, manager, connector created back to back (not waiting), then the SDK's
    rollback: delete connector, manager and provider without waiting in between."""
    p = create_provider(control, "CoinbaseCDP")
    m = control.create_payment_manager(name=unique_manager_name(), authorizerType="AWS_IAM",
                                       roleArn=ROLE_ARN)
    mid = m["paymentManagerId"]
    wait_for(lambda: get_manager(control, mid), "READY")
    c = control.create_payment_connector(
        paymentManagerId=mid, name=unique_connector_name(), type="CoinbaseCDP",
        credentialProviderConfigurations=[
            {"coinbaseCDP": {"credentialProviderArn": p["credentialProviderArn"]}}])
    cid = c["paymentConnectorId"]

    d = control.delete_payment_connector(paymentManagerId=mid, paymentConnectorId=cid)
    assert (http_status(d), d["status"]) == (202, "DELETING")
    d = control.delete_payment_manager(paymentManagerId=mid)
    assert (http_status(d), d["status"]) == (202, "DELETING")
    d = control.delete_payment_credential_provider(name=p["name"])
    assert http_status(d) == 204
    # The manager is removed once its connector is gone, never before.
    wait_gone(lambda: get_connector(control, mid, cid))
    wait_gone(lambda: get_manager(control, mid))
    expect_not_found(lambda: control.get_payment_credential_provider(name=p["name"]))
    # No connector can be created under the deleting (now deleted) manager.
    expect_not_found(lambda: control.create_payment_connector(
        paymentManagerId=mid, name=unique_connector_name(), type="SelfCustody",
        credentialProviderConfigurations=[]))


def test_a_live_connector_still_blocks_its_manager(control):
    m = control.create_payment_manager(name=unique_manager_name(), authorizerType="AWS_IAM",
                                       roleArn=ROLE_ARN)
    mid = m["paymentManagerId"]
    wait_for(lambda: get_manager(control, mid), "READY")
    c1 = control.create_payment_connector(paymentManagerId=mid, name=unique_connector_name(),
                                          type="SelfCustody",
                                          credentialProviderConfigurations=[])
    c2 = control.create_payment_connector(paymentManagerId=mid, name=unique_connector_name(),
                                          type="SelfCustody",
                                          credentialProviderConfigurations=[])
    control.delete_payment_connector(paymentManagerId=mid,
                                     paymentConnectorId=c1["paymentConnectorId"])
    err = expect_error(lambda: control.delete_payment_manager(paymentManagerId=mid),
                       "ConflictException", 409)
    assert "still has payment connectors" in err.response["Error"]["Message"]
    control.delete_payment_connector(paymentManagerId=mid,
                                     paymentConnectorId=c2["paymentConnectorId"])
    assert control.delete_payment_manager(paymentManagerId=mid)["status"] == "DELETING"
    wait_gone(lambda: get_manager(control, mid))
