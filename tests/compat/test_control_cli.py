"""The AWS CLI v1 against Purser (its own venv, its own botocore): the CLI only needs
--endpoint-url and the credentials in its environment."""

import json

from compat_helpers import (
    ACCOUNT_1,
    DISCOVERY_URL,
    ROLE_ARN,
    coinbase_input,
    create_manager,
    create_provider,
    id_pattern,
    manager_arn,
    provider_arn,
    secret_values,
    unique_manager_name,
    unique_provider_name,
    wait_for,
)

SERVICE = "bedrock-agentcore-control"


def run_json(run_cli, *args, **kwargs):
    result = run_cli(SERVICE, *args, **kwargs)
    assert result.returncode == 0, f"aws {' '.join(args)} failed:\n{result.stderr}"
    return json.loads(result.stdout) if result.stdout.strip() else {}


def test_cli_list_payment_managers(control, run_cli):
    ids = [create_manager(control, wait=False)["paymentManagerId"] for _ in range(3)]
    # --page-size makes the CLI follow nextToken across several pages.
    out = run_json(run_cli, "list-payment-managers", "--page-size", "2")
    listed = [m["paymentManagerId"] for m in out["paymentManagers"]]
    for mid in ids:
        assert listed.count(mid) == 1
    for m in out["paymentManagers"]:
        assert m["paymentManagerArn"] == manager_arn(ACCOUNT_1, m["paymentManagerId"])


def test_cli_create_payment_credential_provider(control, run_cli, purser):
    name = unique_provider_name("cli")
    cfg = coinbase_input()
    result = run_cli(SERVICE, "create-payment-credential-provider",
                     "--name", name,
                     "--credential-provider-vendor", "CoinbaseCDP",
                     "--provider-configuration-input", json.dumps(cfg))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["name"] == name
    assert out["credentialProviderVendor"] == "CoinbaseCDP"
    assert out["credentialProviderArn"] == provider_arn(ACCOUNT_1, name)
    cdp = out["providerConfigurationOutput"]["coinbaseCdpConfiguration"]
    assert cdp["apiKeyId"] == cfg["coinbaseCdpConfiguration"]["apiKeyId"]
    assert cdp["apiKeySecretArn"]["secretArn"].startswith("arn:aws:secretsmanager:")
    for secret in secret_values(cfg):
        assert secret not in result.stdout and secret not in result.stderr
        assert secret not in purser.log_text()
    got = control.get_payment_credential_provider(name=name)
    assert got["credentialProviderArn"] == out["credentialProviderArn"]


def test_cli_list_and_get_credential_providers(control, run_cli):
    p = create_provider(control, vendor="StripePrivy")
    out = run_json(run_cli, "list-payment-credential-providers", "--page-size", "5")
    names = [x["name"] for x in out["credentialProviders"]]
    assert names.count(p["name"]) == 1
    got = run_json(run_cli, "get-payment-credential-provider", "--name", p["name"])
    assert got["credentialProviderArn"] == p["credentialProviderArn"]
    assert "stripePrivyConfiguration" in got["providerConfigurationOutput"]


def test_cli_create_payment_manager_with_custom_jwt(control, run_cli):
    name = unique_manager_name("cli")
    auth = {"customJWTAuthorizer": {"discoveryUrl": DISCOVERY_URL,
                                    "allowedAudience": ["cli-tests"]}}
    out = run_json(run_cli, "create-payment-manager", "--name", name,
                   "--authorizer-type", "CUSTOM_JWT",
                   "--authorizer-configuration", json.dumps(auth),
                   "--role-arn", ROLE_ARN)
    assert out["status"] == "CREATING"
    assert id_pattern(name).fullmatch(out["paymentManagerId"])
    ready = wait_for(lambda: control.get_payment_manager(
        paymentManagerId=out["paymentManagerId"]), "READY")
    assert ready["authorizerConfiguration"]["customJWTAuthorizer"]["discoveryUrl"] == DISCOVERY_URL


def test_cli_reports_service_errors(run_cli):
    result = run_cli(SERVICE, "get-payment-manager",
                     "--payment-manager-id", "nosuchmanager-0123456789")
    assert result.returncode != 0
    assert "ResourceNotFoundException" in result.stderr, result.stderr

    result = run_cli(SERVICE, "create-payment-manager", "--name", "1bad",
                     "--authorizer-type", "AWS_IAM", "--role-arn", ROLE_ARN)
    assert result.returncode != 0
    assert "ValidationException" in result.stderr, result.stderr


def test_cli_with_wrong_secret(run_cli):
    result = run_cli(SERVICE, "list-payment-managers", secret_access_key="z" * 40)
    assert result.returncode != 0
    assert "InvalidSignatureException" in result.stderr, result.stderr


def test_cli_second_account(run_cli, purser, control):
    mine = create_manager(control, wait=False)["paymentManagerId"]
    out = run_json(run_cli, "list-payment-managers", creds=purser.creds2)
    assert mine not in [m["paymentManagerId"] for m in out["paymentManagers"]]
