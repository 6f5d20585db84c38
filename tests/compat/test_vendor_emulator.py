"""The vendor emulator checked by the vendors' own SDKs (npm `@coinbase/cdp-sdk` 1.57.0 and
`@privy-io/node` 0.35.0, tests/vendor): end users / users and their EVM and Solana
wallets, typed-data and transaction signatures that recover to the wallet, and every
credential the vendor refuses refused the same way. Also `purser serve --vendor-emulator`:
off by default, on when asked, state of its own. The contract: crates/vendor-emu/API.md
(docs/vendor-emulator.md).
"""

from __future__ import annotations

import os
import stat
import subprocess
import time

import pytest

from conftest import CREDS_1, _find_binary, _free_port, _stop
from vendor_fixtures import (  # noqa: F401  (vendor_emulator is a fixture)
    emulator_healthy,
    start_vendor_emulator,
    vendor_emulator,
    vendor_sdk,
)


@pytest.fixture(scope="module")
def cdp_flow(vendor_emulator):
    return vendor_sdk("cdp", vendor_emulator.url, vendor_emulator.accounts)


@pytest.fixture(scope="module")
def privy_flow(vendor_emulator):
    return vendor_sdk("privy", vendor_emulator.url, vendor_emulator.accounts)


def refused(result: dict, status: int, type_: str | None = None) -> None:
    assert result["ok"] is False, result
    assert result["status"] == status, result
    if type_ is not None:
        assert result["type"] == type_, result


# ------------------------------------------------------------------ CDP, through the SDK

def test_cdp_end_users_with_email_and_sms_and_their_accounts(cdp_flow):
    c = cdp_flow["created"]
    assert c["evm"].startswith("0x") and len(c["evm"]) == 42
    assert c["evmAccounts"] == [c["evm"]] and c["solanaAccounts"] == [c["sol"]]
    assert c["methods"][0]["type"] == "email"
    assert cdp_flow["got"] == {"userId": c["userId"], "evmAccounts": [c["evm"]],
                               "solanaAccounts": [c["sol"]]}
    assert cdp_flow["sms"]["methods"][0]["type"] == "sms"
    assert len(cdp_flow["sms"]["evm"]) == 1
    refused(cdp_flow["duplicate"], 409, "already_exists")
    assert cdp_flow["firstPageSize"] == 1 and cdp_flow["listed"] is True
    assert cdp_flow["lookupEmail"] == [c["userId"]]
    assert cdp_flow["lookupPhone"] == [cdp_flow["sms"]["userId"]]
    assert cdp_flow["lookupNone"] == []
    assert cdp_flow["addedEvm"].startswith("0x") and cdp_flow["addedEvm"] != c["evm"]
    refused(cdp_flow["unknownUser"], 404, "not_found")


def test_cdp_delegated_signing_needs_the_end_users_delegation(cdp_flow):
    refused(cdp_flow["beforeGrant"], 403, "delegation_not_found")
    refused(cdp_flow["getBeforeGrant"], 404, "delegation_not_found")
    assert cdp_flow["granted"]["expiresAt"] == cdp_flow["delegation"]["expiresAt"]
    refused(cdp_flow["projectDisabled"], 403, "delegation_not_enabled")
    refused(cdp_flow["afterRevoke"], 403, "delegation_revoked")
    refused(cdp_flow["afterExpiry"], 403, "delegation_expired")


def test_cdp_signatures_recover_to_the_end_users_accounts(cdp_flow):
    evm = cdp_flow["created"]["evm"]
    assert cdp_flow["typedRecovered"] == evm
    assert cdp_flow["typedSignatureLength"] == 132  # 0x + r || s || v
    assert cdp_flow["tx"]["recovered"] == evm and cdp_flow["tx"]["sameFields"] is True
    assert cdp_flow["solana"] == {"sameMessage": True, "verifies": True}
    refused(cdp_flow["wrongAddress"], 404, "not_found")
    refused(cdp_flow["badTypedData"], 400, "invalid_request")
    refused(cdp_flow["malformedTx"], 400, "malformed_transaction")


def test_cdp_idempotency_keys(cdp_flow):
    assert cdp_flow["idempotentReplay"] is True
    refused(cdp_flow["idempotentConflict"], 409, "idempotency_error")


def test_cdp_refuses_the_credentials_cdp_refuses(vendor_emulator):
    r = vendor_sdk("cdp-auth", vendor_emulator.url, vendor_emulator.accounts)
    for ok in ("good", "goodEd25519", "handMadeGood", "firstUse"):
        assert r[ok]["status"] == 201, (ok, r[ok])
    for case in ("wrongKey", "unknownKeyId", "wrongUris", "wrongMethod", "expired",
                 "notYetValid", "noBearer", "noWalletAuth", "badReqHash", "walletWrongUris",
                 "wrongWalletSecret", "staleWalletAuth", "replayedJti"):
        assert r[case]["status"] == 401, (case, r[case])
        assert r[case]["type"] == "unauthorized", (case, r[case])
    assert "reqHash" in r["badReqHash"]["message"]
    assert "jti" in r["replayedJti"]["message"]
    assert "exp" in r["expired"]["message"]


# ------------------------------------------------------------------ Privy, through the SDK

def test_privy_users_wallets_and_lookups(privy_flow, vendor_emulator):
    assert privy_flow["user"]["id"].startswith("did:privy:")
    assert privy_flow["user"]["linked"] == ["email"]
    assert privy_flow["phoneUser"]["linked"] == ["phone", "wallet"]
    assert privy_flow["byEmail"] == privy_flow["user"]["id"]
    assert privy_flow["byPhone"] == privy_flow["phoneUser"]["id"]
    refused(privy_flow["duplicate"], 409)
    w = privy_flow["evmWallet"]
    assert privy_flow["gotWallet"] == w["address"]
    assert privy_flow["userWallets"] == [w["address"]]
    key_id = vendor_emulator.accounts["privy"]["apps"][0]["authorizationKeys"][0]["id"]
    assert [s["signer_id"] for s in w["signers"]] == [key_id]
    refused(privy_flow["unknownWallet"], 404)


def test_privy_signatures_recover_to_the_wallet(privy_flow):
    address = privy_flow["evmWallet"]["address"]
    assert privy_flow["typedRecovered"] == address
    assert privy_flow["typedEncoding"] == "hex"
    assert privy_flow["tx"]["recovered"] == address and privy_flow["tx"]["sameFields"] is True
    assert privy_flow["solana"] == {"sameMessage": True, "verifies": True}
    assert privy_flow["keyOwnedRecovered"] is True


def test_privy_idempotency_keys(privy_flow):
    assert privy_flow["idempotentReplay"] is True
    refused(privy_flow["idempotentConflict"], 400, "invalid_request")
    refused(privy_flow["rpcIdempotencyConflict"], 400, "invalid_request")


def test_privy_refuses_what_privy_refuses(privy_flow):
    refused(privy_flow["wrongAuthorizationKey"], 401, "zero_correct_authorization_signatures")
    refused(privy_flow["noAuthorizationSignature"], 401, "missing_or_empty_authorization_header")
    refused(privy_flow["wrongSecret"], 401)
    refused(privy_flow["expiredRequest"], 401, "request_expired")
    refused(privy_flow["policyDenied"], 400, "policy_violation")
    assert privy_flow["afterPolicyLifted"] == {"ok": True, "value": "hex"}


# ------------------------------------------------------------------ faults, restart

def test_injected_faults_reach_the_sdks_then_clear(vendor_emulator):
    r = vendor_sdk("faults", vendor_emulator.url, vendor_emulator.accounts)
    refused(r["rateLimited"], 429, "rate_limit_exceeded")
    refused(r["serverError"], 500, "internal_server_error")
    assert r["afterFaults"]["ok"] is True
    refused(r["privyUnavailable"], 503)
    refused(r["privyRateLimited"], 429)
    assert r["privyTimedOut"] == {"ok": False, "kind": True}
    assert r["afterDelay"] is True


def test_dev_endpoints_validate_their_input(vendor_emulator):
    assert vendor_emulator.dev("POST", "/_emulator/faults", {"kind": "418"})[0] == 400
    assert vendor_emulator.dev("POST", "/_emulator/faults", {"kind": "delay"})[0] == 400
    assert vendor_emulator.dev("POST", "/_emulator/cdp/end-users/nobody-here/delegation",
                               {})[0] == 404
    assert vendor_emulator.dev("PUT", "/_emulator/privy/wallets/nowallet/policy",
                               {"deny": True})[0] == 404


def test_wallets_and_keys_survive_a_restart(tmp_path):
    state = tmp_path / "state"
    emu = start_vendor_emulator(state, tmp_path / "first.log")
    try:
        accounts = emu.accounts
        created = vendor_sdk("create", emu.url, accounts)
    finally:
        emu.stop()
    for private in ("accounts.json", "vendor-emulator.db", "emulator.key"):
        mode = stat.S_IMODE(os.stat(state / private).st_mode)
        assert mode == 0o600, (private, oct(mode))
    emu = start_vendor_emulator(state, tmp_path / "second.log")
    try:
        assert emu.accounts == accounts
        again = vendor_sdk("sign-persisted", emu.url, accounts, userId=created["userId"])
        assert again == {"evm": created["evm"], "recovered": created["evm"]}
        log = emu.log_text()
    finally:
        emu.stop()
    # It says what it is; it never logs a secret of its accounts.
    assert "DEVELOPMENT TOOL" in log
    for secret in (accounts["cdp"]["walletSecrets"][0], accounts["privy"]["apps"][0]["appSecret"],
                   accounts["cdp"]["apiKeys"][1]["secret"]):
        assert secret not in log


# ------------------------------------------------------------------ purser serve

def test_purser_serve_runs_no_emulator_by_default(purser):
    assert "vendor emulator" not in purser.log_text().lower()
    assert not (purser.data_dir / "vendor-emulator").exists()


def test_purser_serve_vendor_emulator_setting(tmp_path):
    binary = _find_binary()
    port, emu_port = _free_port(), _free_port()
    data_dir = tmp_path / "data"
    env = dict(os.environ)
    env.update({
        "PURSER_ACCESS_KEY_ID": CREDS_1.access_key_id,
        "PURSER_SECRET_ACCESS_KEY": CREDS_1.secret_access_key,
        "PURSER_ACCOUNT_ID": CREDS_1.account_id,
        "PURSER_VENDOR_EMULATOR": "1",
        "PURSER_VENDOR_EMULATOR_LISTEN": f"127.0.0.1:{emu_port}",
    })
    log_path = tmp_path / "purser.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=str(tmp_path))
    try:
        url = f"http://127.0.0.1:{emu_port}"
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline and not emulator_healthy(url):
            time.sleep(0.05)
        assert emulator_healthy(url), log_path.read_text()
        log_text = log_path.read_text()
        assert "DEVELOPMENT TOOL" in log_text
        assert f"{url}/platform" in log_text
        state = data_dir / "vendor-emulator"
        assert (state / "url").read_text().strip() == url
        assert (state / "accounts.json").is_file()
        assert stat.S_IMODE(os.stat(state / "accounts.json").st_mode) == 0o600
        # Its own database and key, nothing of Purser's.
        assert (state / "vendor-emulator.db").is_file() and (state / "emulator.key").is_file()
        assert (data_dir / "master.key").read_bytes() != (state / "emulator.key").read_bytes()
    finally:
        _stop(proc)


def test_help_says_it_is_a_development_tool():
    binary = _find_binary()
    out = subprocess.run([str(binary), "vendor-emulator", "--help"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0 and "DEVELOPMENT TOOL" in out.stdout
    out = subprocess.run([str(binary), "serve", "--help"], capture_output=True, text=True,
                         timeout=30)
    assert "DEVELOPMENT ONLY" in out.stdout
    out = subprocess.run([str(binary), "vendor-emulator", "--listen", "0.0.0.0:0"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "loopback" in out.stderr
