"""Payment instruments on the data plane: create, get, list, delete, validation, key
custody (seeds 000 and 003; B10, B14-B17, B30-B32)."""

from __future__ import annotations

import datetime
import re
import secrets
import os
import sqlite3
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.register_assert_rewrite("chain_fixtures")

import chain_fixtures  # noqa: E402

from chain_fixtures import (  # noqa: E402
    b58decode,
    create_instrument,
    is_eip55,
    make_boto,
    new_connector,
    new_user,
    private_key_to_address,
    process_payment,
    record_bodies,
    run_concurrently,
    wallet_address,
    x402_requirement,
)
from compat_helpers import (  # noqa: E402
    ACCOUNT_1,
    assert_each_once,
    client_token,
    create_provider,
    expect_error,
    expect_not_found,
    expect_validation,
    http_status,
    provider_config,
)
from conftest import DATA  # noqa: E402

pytest_plugins = ["chain_fixtures"]

INSTRUMENT_ID_RE = re.compile(r"payment-instrument-[0-9a-zA-Z]{15}")
SUMMARY_KEYS = {"paymentInstrumentId", "paymentManagerArn", "paymentConnectorId", "userId",
                "paymentInstrumentType", "status", "createdAt", "updatedAt"}
WELL_FORMED_MISSING_ID = "payment-instrument-000000000000000"


def get(client, w, user_id, iid, **kw):
    return client.get_payment_instrument(userId=user_id, paymentManagerArn=w.manager_arn,
                                         paymentInstrumentId=iid, **kw)


def delete(client, w, user_id, iid, connector_id=None):
    return client.delete_payment_instrument(
        userId=user_id, paymentManagerArn=w.manager_arn,
        paymentConnectorId=connector_id or w.connector_id, paymentInstrumentId=iid)


def list_ids(client, w, user_id, **kw):
    resp = client.list_payment_instruments(userId=user_id, paymentManagerArn=w.manager_arn,
                                           **kw)
    return [i["paymentInstrumentId"] for i in resp["paymentInstruments"]], resp


def ms(ts: datetime.datetime) -> int:
    return round(ts.timestamp() * 1000)


def unique_email() -> str:
    return f"zq{uuid.uuid4().hex[:10]}@example.com"


def unique_phone() -> str:
    return "+1415" + "".join(secrets.choice("0123456789") for _ in range(7))


# ------------------------------------------------------------------- create


def test_create_ethereum_instrument(dp, wallet, user, dp_server):
    email = unique_email()
    with record_bodies(dp) as bodies:
        resp = create_instrument(dp, wallet, user, "ETHEREUM",
                                 linked=[{"email": {"emailAddress": email}}])
    assert http_status(resp) == 201
    inst = resp["paymentInstrument"]
    iid = inst["paymentInstrumentId"]
    assert INSTRUMENT_ID_RE.fullmatch(iid) and len(iid) == 34, iid
    assert inst["status"] == "ACTIVE"
    assert inst["userId"] == user
    assert inst["paymentManagerArn"] == wallet.manager_arn
    assert inst["paymentConnectorId"] == wallet.connector_id
    assert inst["paymentInstrumentType"] == "EMBEDDED_CRYPTO_WALLET"
    assert inst["createdAt"] == inst["updatedAt"]
    details = inst["paymentInstrumentDetails"]["embeddedCryptoWallet"]
    assert details["network"] == "ETHEREUM"
    addr = details["walletAddress"]
    assert is_eip55(addr), f"not an EIP-55 address: {addr}"
    masked = details["linkedAccounts"][0]["email"]["emailAddress"]
    assert masked == "z***@e***.com", masked

    with record_bodies(dp) as more:
        got = get(dp, wallet, user, iid)["paymentInstrument"]
        dp.list_payment_instruments(userId=user, paymentManagerArn=wallet.manager_arn)
    assert got["paymentInstrumentDetails"]["embeddedCryptoWallet"]["walletAddress"] == addr
    assert got["paymentInstrumentDetails"]["embeddedCryptoWallet"]["linkedAccounts"] == [
        {"email": {"emailAddress": "z***@e***.com"}}]
    assert got["createdAt"] == inst["createdAt"]
    for body in bodies + more:
        assert email.encode() not in body
        assert email.split("@")[0].encode() not in body
    assert email not in dp_server.log_text()
    assert email.split("@")[0] not in dp_server.log_text()


def test_create_solana_instrument(dp, wallet, user):
    resp = create_instrument(dp, wallet, user, "SOLANA")
    assert http_status(resp) == 201
    inst = resp["paymentInstrument"]
    details = inst["paymentInstrumentDetails"]["embeddedCryptoWallet"]
    assert details["network"] == "SOLANA"
    assert details["linkedAccounts"] == []
    addr = details["walletAddress"]
    assert re.fullmatch(r"[1-9A-HJ-NP-Za-km-z]{32,44}", addr), addr
    assert len(b58decode(addr)) == 32, addr
    assert inst["status"] == "ACTIVE"
    assert INSTRUMENT_ID_RE.fullmatch(inst["paymentInstrumentId"])


def test_phone_and_oauth_emails_are_masked(dp, wallet, user, dp_server):
    phone = unique_phone()
    with record_bodies(dp) as bodies:
        inst = create_instrument(dp, wallet, user, "ETHEREUM",
                                 linked=[{"sms": {"phoneNumber": phone}}])["paymentInstrument"]
        got = get(dp, wallet, user, inst["paymentInstrumentId"])["paymentInstrument"]
    for i in (inst, got):
        masked = i["paymentInstrumentDetails"]["embeddedCryptoWallet"]["linkedAccounts"][0]
        number = masked["sms"]["phoneNumber"]
        assert len(number) == len(phone)
        assert number[0] == phone[0] and number[-2:] == phone[-2:], number
        assert set(number[1:-2]) == {"*"}, number
    for body in bodies:
        assert phone.encode() not in body and phone[1:].encode() not in body
    assert phone not in dp_server.log_text() and phone[1:] not in dp_server.log_text()

    email = unique_email()
    with record_bodies(dp) as bodies:
        inst = create_instrument(dp, wallet, user, "SOLANA", linked=[
            {"oAuth2": {"google": {"sub": "g-123", "emailAddress": email}}}])["paymentInstrument"]
    google = inst["paymentInstrumentDetails"]["embeddedCryptoWallet"]["linkedAccounts"][0][
        "oAuth2"]["google"]
    assert google["sub"] == "g-123"
    assert google["emailAddress"] == "z***@e***.com"
    for body in bodies:
        assert email.encode() not in body
    assert email not in dp_server.log_text()


def test_linked_account_details_are_not_stored_in_clear(dp, wallet, user, dp_server):
    email, phone = unique_email(), unique_phone()
    create_instrument(dp, wallet, user, linked=[{"email": {"emailAddress": email}}])
    create_instrument(dp, wallet, user, linked=[{"sms": {"phoneNumber": phone}}])
    for suffix in ("", "-wal", "-shm"):
        path = dp_server.data_dir / f"purser.db{suffix}"
        if path.exists():
            raw = path.read_bytes()
            assert email.encode() not in raw, f"{path.name} holds the email in clear"
            assert email.split("@")[0].encode() not in raw
            assert phone.encode() not in raw, f"{path.name} holds the phone number in clear"


# ----------------------------------------------------------------------- get


def test_get_own_other_user_other_account(dp, dp2, wallet, wallet2, user, make_instrument):
    inst = make_instrument(wallet, user)
    iid = inst["paymentInstrumentId"]
    resp = get(dp, wallet, user, iid)
    assert http_status(resp) == 200
    assert resp["paymentInstrument"]["paymentInstrumentId"] == iid
    # with the right connector filter too; the wrong connector hides it
    assert get(dp, wallet, user, iid, paymentConnectorId=wallet.connector_id)
    expect_not_found(lambda: get(dp, wallet, user, iid,
                                 paymentConnectorId="otherconn-0123456789"))
    # another user of the same account and manager: 404 (B16)
    expect_not_found(lambda: get(dp, wallet, new_user(), iid))
    # another account naming account 1's manager ARN: 403 (B32, README)
    expect_error(lambda: get(dp2, wallet, user, iid), "AccessDeniedException", 403)
    # another account through its own manager: the instrument does not exist there
    expect_not_found(lambda: get(dp2, wallet2, user, iid))
    # a well-formed id that does not exist
    expect_not_found(lambda: get(dp, wallet, user, WELL_FORMED_MISSING_ID))


# ---------------------------------------------------------------------- list


def test_list_only_own(dp, wallet, user, make_instrument):
    mine = {make_instrument(wallet, user)["paymentInstrumentId"],
            make_instrument(wallet, user, "SOLANA")["paymentInstrumentId"]}
    other = new_user()
    theirs = make_instrument(wallet, other)["paymentInstrumentId"]
    ids, resp = list_ids(dp, wallet, user)
    assert http_status(resp) == 200
    assert set(ids) == mine and len(ids) == 2
    assert "nextToken" not in resp
    for item in resp["paymentInstruments"]:
        assert set(item) == SUMMARY_KEYS, sorted(item)  # no details in summaries (seed 003)
        assert item["userId"] == user
        assert item["status"] == "ACTIVE"
        assert item["paymentManagerArn"] == wallet.manager_arn
        assert item["paymentInstrumentType"] == "EMBEDDED_CRYPTO_WALLET"
        assert item["createdAt"] <= item["updatedAt"]
    ids, _ = list_ids(dp, wallet, other)
    assert ids == [theirs]
    assert list_ids(dp, wallet, new_user())[0] == []


def test_list_connector_filter(dp, cp, wallet, user, make_instrument):
    second = new_connector(cp, wallet.manager_id)["paymentConnectorId"]
    a = {make_instrument(wallet, user)["paymentInstrumentId"] for _ in range(2)}
    b = {make_instrument(wallet, user, connector_id=second)["paymentInstrumentId"]}
    assert set(list_ids(dp, wallet, user, paymentConnectorId=wallet.connector_id)[0]) == a
    only_b, resp = list_ids(dp, wallet, user, paymentConnectorId=second)
    assert set(only_b) == b
    assert resp["paymentInstruments"][0]["paymentConnectorId"] == second
    assert set(list_ids(dp, wallet, user)[0]) == a | b


def test_list_default_page_is_100_and_capped(dp, wallet, user):
    with ThreadPoolExecutor(16) as pool:
        created = list(pool.map(
            lambda _: create_instrument(dp, wallet, user)["paymentInstrument"][
                "paymentInstrumentId"], range(101)))
    ids, resp = list_ids(dp, wallet, user)
    assert len(ids) == 100 and resp.get("nextToken")
    ids_big, resp_big = list_ids(dp, wallet, user, maxResults=1000)
    assert len(ids_big) == 100 and resp_big.get("nextToken")
    rest, resp_rest = list_ids(dp, wallet, user, maxResults=1000,
                               nextToken=resp_big["nextToken"])
    assert len(rest) == 1 and "nextToken" not in resp_rest
    assert_each_once(ids_big + rest, created)


def test_list_pagination_stable_under_changes(dp, wallet, user, make_instrument):
    created = [make_instrument(wallet, user)["paymentInstrumentId"] for _ in range(7)]
    first, resp = list_ids(dp, wallet, user, maxResults=3)
    assert len(first) == 3 and resp.get("nextToken")
    token = resp["nextToken"]
    # between pages: one instrument created, one not yet listed deleted
    added = make_instrument(wallet, user)["paymentInstrumentId"]
    victim = next(i for i in created if i not in first)
    assert delete(dp, wallet, user, victim)["status"] == "DELETED"
    seen = list(first)
    pages = 1
    while token:
        ids, resp = list_ids(dp, wallet, user, maxResults=3, nextToken=token)
        assert len(ids) <= 3
        seen += ids
        token = resp.get("nextToken")
        pages += 1
        assert pages < 10
    expected = [i for i in created if i != victim]
    assert_each_once(seen, expected)
    assert victim not in seen[3:], "a deleted instrument was listed after its deletion"
    assert seen.count(added) <= 1
    assert set(seen) <= set(created) | {added}


def test_list_rejects_forged_tokens_and_bad_max_results(dp, wallet, user, make_instrument):
    for _ in range(3):
        make_instrument(wallet, user)
    _, resp = list_ids(dp, wallet, user, maxResults=1)
    token = resp["nextToken"]
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (flipped, "forged" + token, "abc", "A" * 200):
        expect_validation(lambda bad=bad: list_ids(dp, wallet, user, maxResults=1,
                                                   nextToken=bad), field="nextToken")
    # a genuine token of another user's listing is refused as well
    expect_validation(lambda: list_ids(dp, wallet, new_user(), maxResults=1, nextToken=token),
                      field="nextToken")
    # ... and one of the same user with another connector filter
    expect_validation(lambda: list_ids(dp, wallet, user, maxResults=1, nextToken=token,
                                       paymentConnectorId="otherconn-0123456789"),
                      field="nextToken")
    for n in (0, -1):
        expect_validation(lambda n=n: list_ids(dp, wallet, user, maxResults=n),
                          field="maxResults")
    # the genuine token still works
    ids, _ = list_ids(dp, wallet, user, maxResults=1, nextToken=token)
    assert len(ids) == 1


# -------------------------------------------------------------------- delete


def test_delete_follows_the_seed(dp, dp2, cp, wallet, user, make_instrument, dp_server):
    inst = make_instrument(wallet, user)
    iid = inst["paymentInstrumentId"]
    # another user of the same manager: 403 (seed 000: userId must match)
    expect_error(lambda: delete(dp, wallet, new_user(), iid), "AccessDeniedException", 403)
    # a wrong connector id, existing or not: 403
    other_conn = new_connector(cp, wallet.manager_id)["paymentConnectorId"]
    expect_error(lambda: delete(dp, wallet, user, iid, connector_id=other_conn),
                 "AccessDeniedException", 403)
    expect_error(lambda: delete(dp, wallet, user, iid, connector_id="nosuchconn-0123456789"),
                 "AccessDeniedException", 403)
    # another account naming this manager's ARN: 403
    expect_error(lambda: delete(dp2, wallet, user, iid), "AccessDeniedException", 403)
    # nothing changed by the refusals
    assert get(dp, wallet, user, iid)["paymentInstrument"]["status"] == "ACTIVE"

    t0 = dp_server.now()
    resp = delete(dp, wallet, user, iid)
    t1 = dp_server.now()
    assert http_status(resp) == 200
    assert resp["status"] == "DELETED"
    body = {k: v for k, v in resp.items() if k != "ResponseMetadata"}
    assert body == {"status": "DELETED"}

    expect_not_found(lambda: get(dp, wallet, user, iid))
    assert iid not in list_ids(dp, wallet, user)[0]
    expect_not_found(lambda: delete(dp, wallet, user, iid))
    expect_not_found(lambda: delete(dp, wallet, user, WELL_FORMED_MISSING_ID))

    # the record stays for audit: soft delete, version incremented, createdAt kept
    rows = dp_server.query(
        "SELECT status, version, created_at, updated_at, user_id, wallet_address "
        "FROM instruments WHERE id = ?", iid)
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "DELETED"
    assert row["version"] == 2
    assert row["created_at"] == ms(inst["createdAt"])
    assert row["updated_at"] >= row["created_at"]
    assert t0 * 1000 - 1000 <= row["updated_at"] <= t1 * 1000 + 1000  # updatedAt = now
    assert row["user_id"] == user
    assert row["wallet_address"] == wallet_address(inst)


def test_concurrent_deletes_exactly_one_wins(dp, wallet, user, make_instrument):
    for _ in range(5):
        iid = make_instrument(wallet, user)["paymentInstrumentId"]
        results = run_concurrently(2, lambda _i: delete(dp, wallet, user, iid))
        oks = [r for kind, r in results if kind == "ok"]
        errs = [e for kind, e in results if kind == "err"]
        assert len(oks) == 1 and oks[0]["status"] == "DELETED", results
        assert len(errs) == 1, results
        assert errs[0].response["Error"]["Code"] == "ResourceNotFoundException", results
        assert http_status(errs[0]) == 404


# ---------------------------------------------------------------- validation


def _create_args(w, user, **over):
    args = dict(userId=user, paymentManagerArn=w.manager_arn,
                paymentConnectorId=w.connector_id,
                paymentInstrumentType="EMBEDDED_CRYPTO_WALLET",
                paymentInstrumentDetails={"embeddedCryptoWallet": {
                    "network": "ETHEREUM", "linkedAccounts": []}})
    args.update(over)
    return args


def _wallet_details(**over):
    d = {"network": "ETHEREUM", "linkedAccounts": []}
    d.update(over)
    return {"embeddedCryptoWallet": d}


WALLET_PATH = "paymentInstrumentDetails.embeddedCryptoWallet"


@pytest.mark.parametrize("over,field", [
    ({"paymentManagerArn":
      f"arn:aws:bedrock-agentcore:us-east-1:{ACCOUNT_1}:payment-manager/UPPER_case-0123456789"},
     "paymentManagerArn"),
    ({"paymentManagerArn": "arn:aws:bedrock-agentcore:us-east-1:1:payment-manager/x"},
     "paymentManagerArn"),
    ({"paymentConnectorId": "Bad_Connector-0123456789"}, "paymentConnectorId"),
    ({"paymentConnectorId": "short-1"}, "paymentConnectorId"),
    ({"paymentInstrumentType": "VIRTUAL_CARD"}, "paymentInstrumentType"),
    ({"paymentInstrumentDetails": _wallet_details(network="BITCOIN")}, f"{WALLET_PATH}.network"),
    ({"paymentInstrumentDetails": _wallet_details(linkedAccounts=[
        {"email": {"emailAddress": "a@example.com"}},
        {"email": {"emailAddress": "b@example.com"}}])}, f"{WALLET_PATH}.linkedAccounts"),
    ({"paymentInstrumentDetails": _wallet_details(linkedAccounts=[
        {"email": {"emailAddress": "not-an-email"}}])},
     f"{WALLET_PATH}.linkedAccounts[0].email.emailAddress"),
    ({"paymentInstrumentDetails": _wallet_details(linkedAccounts=[
        {"sms": {"phoneNumber": "4155550123"}}])},
     f"{WALLET_PATH}.linkedAccounts[0].sms.phoneNumber"),
    ({"paymentInstrumentDetails": _wallet_details(linkedAccounts=[
        {"sms": {"phoneNumber": "+0155550123"}}])},
     f"{WALLET_PATH}.linkedAccounts[0].sms.phoneNumber"),
    ({"paymentInstrumentDetails": _wallet_details(
        walletAddress="0x209693Bc6afc0C5328bA36FaF03C514EF312287C")},
     f"{WALLET_PATH}.walletAddress"),
], ids=["arn-pattern", "arn-length", "connector-pattern", "connector-length", "type-enum",
        "network-enum", "two-linked-accounts", "email-pattern", "phone-no-plus",
        "phone-leading-zero", "wallet-address-supplied"])
def test_create_validation(dp_nv, wallet, user, over, field):
    err = expect_validation(lambda: dp_nv.create_payment_instrument(
        **_create_args(wallet, user, **over)), field=field)
    message = err.response["Error"]["Message"]
    # sensitive values are not echoed
    assert "not-an-email" not in message and "4155550123" not in message


def test_missing_user_id_header(dp, wallet, make_instrument):
    iid = make_instrument(wallet, new_user())["paymentInstrumentId"]
    args = _create_args(wallet, "x")
    del args["userId"]
    expect_validation(lambda: dp.create_payment_instrument(**args), field="userId")
    expect_validation(lambda: dp.get_payment_instrument(
        paymentManagerArn=wallet.manager_arn, paymentInstrumentId=iid), field="userId")
    expect_validation(lambda: dp.list_payment_instruments(
        paymentManagerArn=wallet.manager_arn), field="userId")
    expect_validation(lambda: dp.delete_payment_instrument(
        paymentManagerArn=wallet.manager_arn, paymentConnectorId=wallet.connector_id,
        paymentInstrumentId=iid), field="userId")
    expect_validation(lambda: dp.get_payment_instrument(
        userId="", paymentManagerArn=wallet.manager_arn, paymentInstrumentId=iid),
        field="userId")


@pytest.mark.parametrize("bad_id", [
    "payment-instrument-short",
    "payment-instrument-!!!!!!!!!!!!!!!",
    "payment-instrumenX-000000000000000",
])
def test_instrument_id_validation(dp_nv, wallet, user, bad_id):
    expect_validation(lambda: dp_nv.get_payment_instrument(
        userId=user, paymentManagerArn=wallet.manager_arn, paymentInstrumentId=bad_id),
        field="paymentInstrumentId")
    expect_validation(lambda: dp_nv.delete_payment_instrument(
        userId=user, paymentManagerArn=wallet.manager_arn,
        paymentConnectorId=wallet.connector_id, paymentInstrumentId=bad_id),
        field="paymentInstrumentId")


def test_a_coinbase_instrument_needs_an_email_or_sms_linked_account(dp, cp, wallet, user):
    """The vendor keys its users by the linked account: without one, a ValidationException
    naming linkedAccounts, nothing created (test_data_vendors.py drives real ones)."""
    arn = create_provider(cp, vendor="CoinbaseCDP")["credentialProviderArn"]
    conn = new_connector(cp, wallet.manager_id, type_="CoinbaseCDP",
                            configs=provider_config("coinbaseCDP", arn))["paymentConnectorId"]
    err = expect_validation(lambda: create_instrument(dp, wallet, user, connector_id=conn),
                            field="paymentInstrumentDetails.embeddedCryptoWallet.linkedAccounts")
    message = err.response["Error"]["Message"]
    assert "CoinbaseCDP" in message and "email or sms" in message, message
    assert list_ids(dp, wallet, user)[0] == []


def test_create_idempotency(dp, wallet, user):
    token = client_token()
    a = create_instrument(dp, wallet, user, clientToken=token)["paymentInstrument"]
    b = create_instrument(dp, wallet, user, clientToken=token)["paymentInstrument"]
    assert a["paymentInstrumentId"] == b["paymentInstrumentId"]
    assert wallet_address(a) == wallet_address(b)
    # the agent name is observability only: not part of the request's identity
    c = create_instrument(dp, wallet, user, clientToken=token,
                          agentName="another-agent")["paymentInstrument"]
    assert c["paymentInstrumentId"] == a["paymentInstrumentId"]
    expect_validation(lambda: create_instrument(dp, wallet, user, "SOLANA", clientToken=token),
                      reason="IdempotentParameterMismatchException")
    assert list_ids(dp, wallet, user)[0] == [a["paymentInstrumentId"]]


# ---------------------------------------------------------------- key custody


def test_sealed_keys_are_not_keys(dp, wallet, user, make_instrument, dp_server):
    insts = [make_instrument(wallet, user) for _ in range(2)]
    sealed = {}
    for inst in insts:
        rows = dp_server.query("SELECT sealed_key, wallet_address, linked_sealed FROM "
                               "instruments WHERE id = ?", inst["paymentInstrumentId"])
        blob = bytes(rows[0]["sealed_key"])
        assert rows[0]["wallet_address"] == wallet_address(inst)
        assert len(blob) >= 100, f"sealed key of {len(blob)} bytes"
        sealed[inst["paymentInstrumentId"]] = blob
    blobs = list(sealed.values())
    assert len(set(blobs)) == len(blobs)
    # no 32-byte window of a sealed blob is the private key of the wallet's address
    for inst, blob in zip(insts, blobs):
        addr = wallet_address(inst)
        for off in range(len(blob) - 31):
            assert private_key_to_address(blob[off:off + 32]) != addr, (
                f"the wallet key is stored in clear at offset {off}")
    # and a sealed blob does not look like low-entropy data
    assert len(set(blobs[0])) > 60


def test_keys_need_the_master_key(dp, wallet, user, make_instrument, make_session,
                                  dp_server, start_server):
    inst = make_instrument(wallet, user)
    iid = inst["paymentInstrumentId"]
    session = make_session(wallet, user, cap="1.00")
    sid = session["paymentSessionId"]
    # the original server signs
    ok = process_payment(dp, wallet, user, sid, iid, x402_requirement())
    assert ok["status"] == "PROOF_GENERATED"

    # the same database under ANOTHER master key
    data_dir = dp_server.tmp_dir.parent / f"copy-{uuid.uuid4().hex[:8]}"
    data_dir.mkdir()
    dp_server.snapshot_db(data_dir / "purser.db")
    # A node with another master key refuses to start (the database holds a check value
    # sealed under the first master key), and says why without showing either key.
    wrong_key = chain_fixtures.new_master_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURSER_")}
    env.update({"PURSER_MASTER_KEY": wrong_key, "PURSER_ACCESS_KEY_ID": "AKIAREFUSEDSTART0001",
                "PURSER_SECRET_ACCESS_KEY": "x" * 40, "PURSER_ACCOUNT_ID": "111122223333"})
    refused = subprocess.run(
        [str(chain_fixtures._find_binary()), "serve", "--listen", "127.0.0.1:0",
         "--data-dir", str(data_dir)],
        env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "master key does not match" in output, output
    assert wrong_key not in output and dp_server.master_key not in output
    # Without the check value (a database from before it existed, or tampered with), the
    # node starts but cannot open any wallet key: signing fails safely.
    with sqlite3.connect(data_dir / "purser.db") as db:
        db.execute("DELETE FROM purser_meta")
    other = start_server("wrong-master-key", data_dir=data_dir)
    assert other.master_key != dp_server.master_key
    data_other = make_boto(other, DATA, audited=False)
    got = get(data_other, wallet, user, iid)["paymentInstrument"]
    assert wallet_address(got) == wallet_address(inst)
    before = data_other.get_payment_session(userId=user, paymentManagerArn=wallet.manager_arn,
                                            paymentSessionId=sid)["paymentSession"]
    err = expect_error(lambda: process_payment(data_other, wallet, user, sid, iid,
                                               x402_requirement()),
                       "InternalServerException", 500)
    message = err.response["Error"]["Message"]
    assert message and len(message) < 300, message
    for secret in (other.master_key, dp_server.master_key, wallet_address(inst)):
        assert secret not in message, message
    assert not re.search(r"[0-9a-fA-F]{64}", message), message
    headers = err.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-amzn-errortype") == "InternalServerException"
    assert headers.get("x-amzn-requestid")
    # the failed signature consumed no budget (B21: the reservation is released)
    after = data_other.get_payment_session(userId=user, paymentManagerArn=wallet.manager_arn,
                                           paymentSessionId=sid)["paymentSession"]
    assert after["availableLimits"]["availableSpendAmount"] == \
        before["availableLimits"]["availableSpendAmount"] == {"value": "0.90", "currency": "USD"}
    assert other.master_key not in other.log_text()
    # the other server still signs
    assert process_payment(dp, wallet, user, sid, iid, x402_requirement())["status"] == \
        "PROOF_GENERATED"


def test_wallet_addresses_are_distinct(dp, wallet, user):
    addrs = {wallet_address(create_instrument(dp, wallet, user)["paymentInstrument"])
             for _ in range(5)}
    assert len(addrs) == 5
    assert all(is_eip55(a) for a in addrs)
