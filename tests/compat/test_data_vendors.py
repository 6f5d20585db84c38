"""CoinbaseCDP and StripePrivy connectors for real (issue 13), against `purser serve` with the
vendor emulator on (`PURSER_VENDOR_EMULATOR=1`: Purser's clients call the emulated CDP v2 and
Privy APIs over loopback, with the vendors' own authentication checks).

What AgentCore code does, unchanged: credential providers with the vendor's credentials,
connectors, instruments for email and phone linked accounts (the wallet is created at the
vendor, its address is the vendor's), ProcessPayment signed by the vendor through delegated
signing (the x402 reference facilitator verifies and settles it on anvil), balances,
delete. Vendor failures answer AgentCore's messages (B28) and never consume budget.
"""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest

pytest.register_assert_rewrite("chain_fixtures")

from chain_fixtures import (  # noqa: E402
    CONTROL,
    DATA,
    all_dead_rpc,
    anvil_mod,
    b58decode,
    dead_url,
    decode_header,
    error_message,
    facilitator,
    make_boto,
    payment_signature_header,
    process_payment,
    random_evm_address,
    start_purser,
    Wallet,
    wallet_address,
    x402_requirement,
)
from compat_helpers import (  # noqa: E402
    ACCOUNT_1,
    create_connector,
    create_manager,
    expect_error,
    expect_validation,
    provider_arn,
    provider_config,
    unique_provider_name,
)

pytest_plugins = ["chain_fixtures"]

DELEGATION_NOT_ACTIVE = ("Delegated signing grant is not active for the end user wallet. "
                         "Please redirect end user to the WalletHub to grant the permissions.")


class Vendors:
    """A Purser with the vendor emulator on, and the emulator's accounts."""

    def __init__(self, server, accounts: dict, url: str):
        self.server = server
        self.accounts = accounts
        self.url = url.strip().rstrip("/")
        self.cp = make_boto(server, CONTROL)
        self.dp = make_boto(server, DATA)

    def emu(self, method: str, path: str, body: dict | None = None) -> dict | None:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as r:
            text = r.read()
            return json.loads(text) if text else None

    def holder(self, instrument_id: str) -> tuple[str, str]:
        """(vendor user id, vendor wallet id) of an instrument, from Purser's database."""
        (row,) = self.server.query("SELECT holder FROM instruments WHERE id = ?", instrument_id)
        user_id, wallet_id = row["holder"].split(" ")
        return user_id, wallet_id

    def grant(self, instrument_id: str) -> None:
        user_id, _ = self.holder(instrument_id)
        self.emu("POST", f"/_emulator/cdp/end-users/{user_id}/delegation", {})

    def revoke(self, instrument_id: str) -> None:
        user_id, _ = self.holder(instrument_id)
        self.emu("DELETE", f"/_emulator/cdp/end-users/{user_id}/delegation")

    def fault(self, vendor: str, kind: str, count: int, **extra) -> None:
        self.emu("POST", "/_emulator/faults", {"vendor": vendor, "kind": kind, "count": count,
                                                **extra})

    def clear_faults(self) -> None:
        self.emu("DELETE", "/_emulator/faults")

    def provider_input(self, vendor: str) -> dict:
        if vendor == "CoinbaseCDP":
            cdp = self.accounts["cdp"]
            return {"coinbaseCdpConfiguration": {
                "apiKeyId": cdp["apiKeys"][0]["id"],
                "apiKeySecret": cdp["apiKeys"][0]["secret"],
                "walletSecret": cdp["walletSecrets"][0]}}
        app = self.accounts["privy"]["apps"][0]
        key = app["authorizationKeys"][0]
        return {"stripePrivyConfiguration": {
            "appId": app["appId"], "appSecret": app["appSecret"],
            "authorizationPrivateKey": key["privateKey"], "authorizationId": key["id"]}}

    def wallet(self, vendor: str) -> Wallet:
        """A READY manager and a READY MANUAL connector of `vendor` whose credential
        provider holds the emulator's credentials."""
        name = unique_provider_name()
        self.cp.create_payment_credential_provider(
            name=name, credentialProviderVendor=vendor,
            providerConfigurationInput=self.provider_input(vendor))
        m = create_manager(self.cp, roleArn=f"arn:aws:iam::{ACCOUNT_1}:role/test")
        member = "coinbaseCDP" if vendor == "CoinbaseCDP" else "stripePrivy"
        c = create_connector(self.cp, m["paymentManagerId"], type_=vendor,
                             configs=provider_config(member, provider_arn(ACCOUNT_1, name)),
                             name="conn" + uuid.uuid4().hex[:12])
        return Wallet(ACCOUNT_1, m["paymentManagerId"], m["paymentManagerArn"],
                      c["paymentConnectorId"], self.cp)


@pytest.fixture(scope="module")
def vendors(tmp_path_factory, _anvil_or_reason, solana_shim):
    chain, _ = _anvil_or_reason
    rpc = all_dead_rpc()
    rpc["BASE_SEPOLIA"] = chain.url if chain is not None else dead_url()
    rpc["SOLANA_DEVNET"] = solana_shim.url
    server = start_purser(tmp_path_factory.mktemp("purser-vendors"), rpc=rpc,
                          extra_env={"PURSER_VENDOR_EMULATOR": "1",
                                     "PURSER_VENDOR_TIMEOUT_MS": "1500"})
    try:
        emu_dir = server.data_dir / "vendor-emulator"
        yield Vendors(server, json.loads((emu_dir / "accounts.json").read_text()),
                      (emu_dir / "url").read_text())
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cdp(vendors) -> Wallet:
    return vendors.wallet("CoinbaseCDP")


@pytest.fixture(scope="module")
def privy(vendors) -> Wallet:
    return vendors.wallet("StripePrivy")


def new_email() -> str:
    return f"buyer-{uuid.uuid4().hex[:10]}@example.org"


def new_phone() -> str:
    return "+1555" + str(uuid.uuid4().int)[:7]


def linked(kind: str) -> tuple[list, str]:
    if kind == "email":
        e = new_email()
        return [{"email": {"emailAddress": e}}], e
    p = new_phone()
    return [{"sms": {"phoneNumber": p}}], p


def instrument(v: Vendors, w: Wallet, user: str, network: str, accounts: list) -> dict:
    return v.dp.create_payment_instrument(
        userId=user, paymentManagerArn=w.manager_arn, paymentConnectorId=w.connector_id,
        paymentInstrumentType="EMBEDDED_CRYPTO_WALLET",
        paymentInstrumentDetails={"embeddedCryptoWallet": {
            "network": network, "linkedAccounts": accounts}})["paymentInstrument"]


def session(v: Vendors, w: Wallet, user: str, cap: str = "1.00") -> str:
    return v.dp.create_payment_session(
        userId=user, paymentManagerArn=w.manager_arn, expiryTimeInMinutes=60,
        limits={"maxSpendAmount": {"value": cap, "currency": "USD"}})[
        "paymentSession"]["paymentSessionId"]


def available(v: Vendors, w: Wallet, user: str, sid: str) -> str:
    s = v.dp.get_payment_session(userId=user, paymentManagerArn=w.manager_arn,
                                 paymentSessionId=sid)["paymentSession"]
    return s["availableLimits"]["availableSpendAmount"]["value"]


def balance(v: Vendors, w: Wallet, user: str, iid: str, chain: str = "BASE_SEPOLIA") -> int:
    r = v.dp.get_payment_instrument_balance(
        userId=user, paymentManagerArn=w.manager_arn, paymentConnectorId=w.connector_id,
        paymentInstrumentId=iid, chain=chain, token="USDC")
    return int(r["tokenBalance"]["amount"])


def settle_on_anvil(anvil, requirement: dict, out: dict) -> None:
    pp = decode_header(payment_signature_header(requirement, out["payload"]))
    verified = facilitator("verify", anvil, pp, pp["accepted"])
    assert verified.get("isValid") is True, verified
    settled = facilitator("settle", anvil, pp, pp["accepted"])
    assert settled.get("success") is True, settled


# ------------------------------------------------------------------------- CDP


@pytest.mark.parametrize("kind", ["email", "sms"])
def test_cdp_instrument_pays_once_the_end_user_grants_delegation(vendors, cdp, anvil_chain,
                                                                  usdc, kind):
    user = "user-" + uuid.uuid4().hex[:10]
    accounts, contact = linked(kind)
    inst = instrument(vendors, cdp, user, "ETHEREUM", accounts)
    iid, payer = inst["paymentInstrumentId"], wallet_address(inst)
    assert inst["status"] == "ACTIVE"
    # the wallet is the CDP end user's account, and the reply masks the linked account
    user_id, wallet_id = vendors.holder(iid)
    assert wallet_id == payer
    assert payer.startswith("0x") and len(payer) == 42
    assert contact not in json.dumps(inst, default=str)
    anvil_mod.mint(anvil_chain, usdc, payer, 1_000_000)
    assert balance(vendors, cdp, user, iid) == 1_000_000
    sid = session(vendors, cdp, user)
    req = x402_requirement("BASE_SEPOLIA", "2", "100000", random_evm_address())

    # no delegation yet: AgentCore's AccessDeniedException, no budget consumed
    err = expect_error(lambda: process_payment(vendors.dp, cdp, user, sid, iid, req),
                       "AccessDeniedException", 403)
    assert error_message(err) == DELEGATION_NOT_ACTIVE
    assert available(vendors, cdp, user, sid) == "1.00"

    vendors.grant(iid)
    out = process_payment(vendors.dp, cdp, user, sid, iid, req)
    assert out["status"] == "PROOF_GENERATED"
    assert available(vendors, cdp, user, sid) == "0.90"
    settle_on_anvil(anvil_chain, req, out["paymentOutput"]["cryptoX402"])
    assert balance(vendors, cdp, user, iid) == 900_000

    # revoked again: refused again, nothing charged
    vendors.revoke(iid)
    expect_error(lambda: process_payment(vendors.dp, cdp, user, sid, iid, req),
                 "AccessDeniedException", 403)
    assert available(vendors, cdp, user, sid) == "0.90"

    # delete: soft delete as for self-custody
    r = vendors.dp.delete_payment_instrument(
        userId=user, paymentManagerArn=cdp.manager_arn, paymentConnectorId=cdp.connector_id,
        paymentInstrumentId=iid)
    assert r["status"] == "DELETED"
    # no linked account in Purser's log
    assert contact not in vendors.server.log_text()


def test_the_same_linked_account_finds_its_cdp_end_user(vendors, cdp):
    """A second instrument for the same email (another network) reuses the vendor's end
    user (CDP refuses a second end user with the same authentication method)."""
    accounts, _ = linked("email")
    a = instrument(vendors, cdp, "user-" + uuid.uuid4().hex[:8], "ETHEREUM", accounts)
    b = instrument(vendors, cdp, "user-" + uuid.uuid4().hex[:8], "SOLANA", accounts)
    assert vendors.holder(a["paymentInstrumentId"])[0] == \
        vendors.holder(b["paymentInstrumentId"])[0]
    sol = wallet_address(b)
    assert not sol.startswith("0x") and len(b58decode(sol)) == 32


def test_delegated_signing_disabled_for_the_project(vendors, cdp, anvil_chain, usdc):
    user = "user-" + uuid.uuid4().hex[:10]
    inst = instrument(vendors, cdp, user, "ETHEREUM", linked("email")[0])
    iid = inst["paymentInstrumentId"]
    vendors.grant(iid)
    sid = session(vendors, cdp, user)
    req = x402_requirement("BASE_SEPOLIA", "2", "100000", random_evm_address())
    vendors.emu("PUT", "/_emulator/cdp/settings", {"delegatedSigningEnabled": False})
    try:
        err = expect_error(lambda: process_payment(vendors.dp, cdp, user, sid, iid, req),
                           "AccessDeniedException", 403)
        assert error_message(err).startswith(
            "Delegated signing is not enabled for your Coinbase project."), error_message(err)
    finally:
        vendors.emu("PUT", "/_emulator/cdp/settings", {"delegatedSigningEnabled": True})
    assert available(vendors, cdp, user, sid) == "1.00"


# ----------------------------------------------------------------------- Privy


@pytest.mark.parametrize("kind", ["email", "sms"])
def test_privy_instrument_pays_with_the_apps_authorization_key(vendors, privy, anvil_chain,
                                                                usdc, kind):
    user = "user-" + uuid.uuid4().hex[:10]
    accounts, contact = linked(kind)
    inst = instrument(vendors, privy, user, "ETHEREUM", accounts)
    iid, payer = inst["paymentInstrumentId"], wallet_address(inst)
    assert inst["status"] == "ACTIVE"
    user_id, wallet_id = vendors.holder(iid)
    assert user_id.startswith("did:privy:") and wallet_id
    anvil_mod.mint(anvil_chain, usdc, payer, 500_000)
    sid = session(vendors, privy, user)
    req = x402_requirement("BASE_SEPOLIA", "2", "250000", random_evm_address())
    out = process_payment(vendors.dp, privy, user, sid, iid, req)
    assert out["status"] == "PROOF_GENERATED"
    assert available(vendors, privy, user, sid) == "0.75"
    settle_on_anvil(anvil_chain, req, out["paymentOutput"]["cryptoX402"])
    assert balance(vendors, privy, user, iid) == 250_000
    # a wallet policy that denies: AgentCore's message, nothing charged
    vendors.emu("PUT", f"/_emulator/privy/wallets/{wallet_id}/policy", {"deny": True})
    err = expect_error(lambda: process_payment(vendors.dp, privy, user, sid, iid, req),
                       "AccessDeniedException", 403)
    assert error_message(err) == "Wallet policy denied the transaction"
    assert available(vendors, privy, user, sid) == "0.75"
    assert contact not in vendors.server.log_text()


def test_privy_credentials_that_the_vendor_refuses(vendors, anvil_chain):
    """A provider with a wrong app secret: the instrument cannot be created, with the
    message AgentCore gives (B28), and no 500."""
    name = unique_provider_name()
    cfg = vendors.provider_input("StripePrivy")
    cfg["stripePrivyConfiguration"]["appSecret"] = "wrong-" + uuid.uuid4().hex
    vendors.cp.create_payment_credential_provider(
        name=name, credentialProviderVendor="StripePrivy", providerConfigurationInput=cfg)
    m = create_manager(vendors.cp, roleArn=f"arn:aws:iam::{ACCOUNT_1}:role/test")
    c = create_connector(vendors.cp, m["paymentManagerId"], type_="StripePrivy",
                         configs=provider_config("stripePrivy", provider_arn(ACCOUNT_1, name)),
                         name="conn" + uuid.uuid4().hex[:12])
    w = Wallet(ACCOUNT_1, m["paymentManagerId"], m["paymentManagerArn"],
               c["paymentConnectorId"], vendors.cp)
    err = expect_error(lambda: instrument(vendors, w, "u-" + uuid.uuid4().hex[:8], "ETHEREUM",
                                          linked("email")[0]),
                       "AccessDeniedException", 403)
    assert error_message(err) == \
        "Privy credentials are invalid. Please verify the credential configuration."


# ------------------------------------------------------------- both vendors


@pytest.mark.parametrize("vendor", ["CoinbaseCDP", "StripePrivy"])
def test_a_vendor_instrument_needs_an_email_or_phone(vendors, cdp, privy, vendor):
    w = cdp if vendor == "CoinbaseCDP" else privy
    expect_validation(lambda: instrument(vendors, w, "u-" + uuid.uuid4().hex[:8], "ETHEREUM",
                                         []),
                      field="paymentInstrumentDetails.embeddedCryptoWallet.linkedAccounts")


@pytest.mark.parametrize("vendor,fault,code", [
    ("cdp", {"kind": "429", "count": 3}, "ThrottlingException"),
    ("cdp", {"kind": "500", "count": 3}, "ThrottlingException"),
    ("cdp", {"kind": "delay", "count": 3, "delayMs": 3000}, "ThrottlingException"),
    ("privy", {"kind": "429", "count": 3}, "ThrottlingException"),
    ("privy", {"kind": "503", "count": 3}, "ThrottlingException"),
])
def test_a_failing_vendor_costs_no_budget(vendors, cdp, privy, anvil_chain, usdc, vendor,
                                          fault, code):
    """429, 5xx and timeouts, after Purser's bounded retries: a ThrottlingException (429,
    retryable), never a 500, and the session keeps its budget; the next call succeeds."""
    w = cdp if vendor == "cdp" else privy
    user = "user-" + uuid.uuid4().hex[:10]
    inst = instrument(vendors, w, user, "ETHEREUM", linked("email")[0])
    iid = inst["paymentInstrumentId"]
    if vendor == "cdp":
        vendors.grant(iid)
    sid = session(vendors, w, user)
    req = x402_requirement("BASE_SEPOLIA", "2", "100000", random_evm_address())
    vendors.fault(vendor, pathContains="/sign" if vendor == "cdp" else "/rpc", **fault)
    try:
        err = expect_error(lambda: process_payment(vendors.dp, w, user, sid, iid, req),
                           code, 429)
        assert "retry" in error_message(err).lower() or "Rate limited" in error_message(err)
    finally:
        vendors.clear_faults()
    assert available(vendors, w, user, sid) == "1.00"
    assert process_payment(vendors.dp, w, user, sid, iid, req)["status"] == "PROOF_GENERATED"
    assert available(vendors, w, user, sid) == "0.90"


@pytest.mark.parametrize("vendor", ["cdp", "privy"])
def test_a_transient_vendor_error_is_retried(vendors, cdp, privy, vendor):
    """One 503 on signing: Purser retries (the same idempotency key) and the payment goes
    through on the first ProcessPayment."""
    w = cdp if vendor == "cdp" else privy
    user = "user-" + uuid.uuid4().hex[:10]
    inst = instrument(vendors, w, user, "ETHEREUM", linked("sms")[0])
    iid = inst["paymentInstrumentId"]
    if vendor == "cdp":
        vendors.grant(iid)
    sid = session(vendors, w, user)
    req = x402_requirement("BASE_SEPOLIA", "2", "100000", random_evm_address())
    vendors.fault(vendor, kind="503", count=1, pathContains="/sign" if vendor == "cdp" else "/rpc")
    try:
        assert process_payment(vendors.dp, w, user, sid, iid, req)["status"] == "PROOF_GENERATED"
    finally:
        vendors.clear_faults()
    assert available(vendors, w, user, sid) == "0.90"


def test_the_agentcore_sdk_pays_from_a_cdp_wallet(vendors, cdp, anvil_chain, usdc, monkeypatch):
    """The official SDK's PaymentManager, as AgentCore code calls it (SigV4, userId): a CDP
    instrument for an email, a session, ProcessPayment, and the proof settles on anvil."""
    import boto3
    from bedrock_agentcore.payments import manager as sdk_manager
    from conftest import CREDS_1

    monkeypatch.setattr(sdk_manager, "DP_ENDPOINT_OVERRIDE", vendors.server.endpoint)
    session = boto3.Session(aws_access_key_id=CREDS_1.access_key_id,
                            aws_secret_access_key=CREDS_1.secret_access_key,
                            region_name="us-east-1")
    pm = sdk_manager.PaymentManager(payment_manager_arn=cdp.manager_arn,
                                    region_name="us-east-1", boto3_session=session)
    user = "sdk-" + uuid.uuid4().hex[:8]
    inst = pm.create_payment_instrument(
        payment_connector_id=cdp.connector_id, user_id=user,
        payment_instrument_type="EMBEDDED_CRYPTO_WALLET",
        payment_instrument_details={"embeddedCryptoWallet": {
            "network": "ETHEREUM", "linkedAccounts": linked("email")[0]}})
    iid = inst["paymentInstrumentId"]
    anvil_mod.mint(anvil_chain, usdc, wallet_address(inst), 300_000)
    vendors.grant(iid)
    sess = pm.create_payment_session(expiry_time_in_minutes=60, user_id=user, limits={
        "maxSpendAmount": {"value": "2.00", "currency": "USD"}})
    req = x402_requirement("BASE_SEPOLIA", "2", "250000", random_evm_address())
    paid = pm.process_payment(
        payment_session_id=sess["paymentSessionId"], payment_instrument_id=iid,
        payment_type="CRYPTO_X402", user_id=user,
        payment_input={"cryptoX402": {"version": "2", "payload": req}})
    assert paid["status"] == "PROOF_GENERATED"
    out = paid["paymentOutput"]["cryptoX402"]
    assert out["payload"]["authorization"]["from"].lower() == wallet_address(inst).lower()
    settle_on_anvil(anvil_chain, req, out)
    assert balance(vendors, cdp, user, iid) == 50_000
