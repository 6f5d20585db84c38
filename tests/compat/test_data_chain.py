"""On-chain parts of the data plane against local chains: USDC balances read from anvil and
from a Solana JSON-RPC shim (seed 004, B18), and the DONE-WHEN loop: Purser signs x402
payments under a session cap, the x402 reference facilitator verifies and settles them
on anvil (B21, B22)."""

from __future__ import annotations

import socket
import time

import pytest

pytest.register_assert_rewrite("chain_fixtures")

from chain_fixtures import (  # noqa: E402
    anvil_mod,  # tests/chain/anvil.py
    CONTROL,
    DATA,
    EVM_CHAINS,
    all_dead_rpc,
    decode_header,
    error_message,
    facilitator,
    facilitator_v1,
    make_boto,
    new_user,
    payment_signature_header,
    process_payment,
    random_evm_address,
    setup_wallet,
    wallet_address,
    x402_requirement,
    x_payment_header,
)
from compat_helpers import (  # noqa: E402
    ACCOUNT_1,
    expect_error,
    expect_not_found,
    expect_validation,
    http_status,
)

pytest_plugins = ["chain_fixtures"]


def balance(client, w, user, iid, chain="BASE_SEPOLIA", token="USDC", connector_id=None):
    return client.get_payment_instrument_balance(
        userId=user, paymentManagerArn=w.manager_arn,
        paymentConnectorId=connector_id or w.connector_id, paymentInstrumentId=iid,
        chain=chain, token=token)


def test_eip712_domain_matches_the_token(anvil_chain, usdc):
    """The test's own EIP-712 code agrees with TestUSDC's DOMAIN_SEPARATOR()."""
    assert anvil_mod.domain_separator(anvil_chain, usdc) == \
        "0x" + EVM_CHAINS["BASE_SEPOLIA"].domain().hex()


# ------------------------------------------------------------------ balances


def test_evm_balance(dp, anvil_chain, usdc, wallet, user, make_instrument):
    inst = make_instrument(wallet, user)
    iid, addr = inst["paymentInstrumentId"], wallet_address(inst)
    anvil_mod.mint(anvil_chain, usdc, addr, 1_234_567)
    resp = balance(dp, wallet, user, iid)
    assert http_status(resp) == 200
    assert resp["paymentInstrumentId"] == iid
    assert resp["tokenBalance"] == {"amount": "1234567", "decimals": 6, "token": "USDC",
                                    "network": "ETHEREUM", "chain": "BASE_SEPOLIA"}
    # it is a read of the chain itself
    anvil_mod.mint(anvil_chain, usdc, addr, 1)
    assert balance(dp, wallet, user, iid)["tokenBalance"]["amount"] == "1234568"


def test_evm_balance_unfunded(dp, anvil_chain, wallet, user, make_instrument):
    iid = make_instrument(wallet, user)["paymentInstrumentId"]
    assert balance(dp, wallet, user, iid)["tokenBalance"]["amount"] == "0"


def test_balance_refusals(dp, dp2, dp_nv, wallet, user, make_instrument):
    inst = make_instrument(wallet, user)
    iid = inst["paymentInstrumentId"]
    for chain in ("SOLANA", "SOLANA_DEVNET"):
        err = expect_validation(lambda chain=chain: balance(dp, wallet, user, iid, chain),
                                field="chain")
        assert chain in error_message(err)
    expect_validation(lambda: balance(dp_nv, wallet, user, iid, token="EURC"), field="token")
    expect_validation(lambda: balance(dp_nv, wallet, user, iid, chain="POLYGON"),
                      field="chain")
    expect_not_found(lambda: balance(dp, wallet, new_user(), iid))
    expect_not_found(lambda: balance(dp, wallet, user, iid, connector_id="otherconn-0123456789"))
    expect_error(lambda: balance(dp2, wallet, user, iid), "AccessDeniedException", 403)
    sol = make_instrument(wallet, user, "SOLANA")["paymentInstrumentId"]
    for chain in ("BASE", "BASE_SEPOLIA", "ETHEREUM"):
        expect_validation(lambda chain=chain: balance(dp, wallet, user, sol, chain), field="chain")
    dp.delete_payment_instrument(userId=user, paymentManagerArn=wallet.manager_arn,
                                 paymentConnectorId=wallet.connector_id, paymentInstrumentId=iid)
    expect_not_found(lambda: balance(dp, wallet, user, iid))


def test_solana_balance(dp, solana_shim, wallet, user, make_instrument):
    inst = make_instrument(wallet, user, "SOLANA")
    iid, owner = inst["paymentInstrumentId"], wallet_address(inst)
    solana_shim.accounts[owner] = ["1500000", "250000"]
    before = len(solana_shim.requests)
    resp = balance(dp, wallet, user, iid, "SOLANA_DEVNET")
    assert resp["paymentInstrumentId"] == iid
    assert resp["tokenBalance"] == {"amount": "1750000", "decimals": 6, "token": "USDC",
                                    "network": "SOLANA", "chain": "SOLANA_DEVNET"}
    assert not solana_shim.problems, solana_shim.problems
    sent = [r for r in solana_shim.requests[before:] if r["params"][0] == owner]
    assert len(sent) == 1, solana_shim.requests[before:]
    assert sent[0]["method"] == "getTokenAccountsByOwner"
    assert sent[0]["params"][1:] == [{"mint": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"},
                                     {"encoding": "jsonParsed"}]
    # an owner without token accounts has 0
    empty = make_instrument(wallet, user, "SOLANA")["paymentInstrumentId"]
    assert balance(dp, wallet, user, empty, "SOLANA_DEVNET")["tokenBalance"]["amount"] == "0"
    assert not solana_shim.problems, solana_shim.problems


def _instrument_on(server):
    control = make_boto(server, CONTROL)
    data = make_boto(server, DATA, audited=False)  # this server's answers are 500s
    w = setup_wallet(control, ACCOUNT_1)
    user = new_user()
    iid = data.create_payment_instrument(
        userId=user, paymentManagerArn=w.manager_arn, paymentConnectorId=w.connector_id,
        paymentInstrumentType="EMBEDDED_CRYPTO_WALLET",
        paymentInstrumentDetails={"embeddedCryptoWallet": {"network": "ETHEREUM",
                                                           "linkedAccounts": []}},
    )["paymentInstrument"]["paymentInstrumentId"]
    return data, w, user, iid


def _expect_internal(call, limit: float):
    start = time.monotonic()
    err = expect_error(call, "InternalServerException", 500)
    elapsed = time.monotonic() - start
    assert elapsed < limit, f"the answer took {elapsed:.1f}s"
    headers = err.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-amzn-requestid")
    return error_message(err)


def test_rpc_down_is_an_internal_error(start_server):
    server = start_server("rpc-down")  # every chain at a closed loopback port
    data, w, user, iid = _instrument_on(server)
    message = _expect_internal(lambda: balance(data, w, user, iid, "BASE"), 3.0)
    assert "BASE" in message and "BASE_SEPOLIA" not in message, message


def test_rpc_that_never_answers_times_out(start_server):
    # accepts TCP connections (kernel backlog) and never answers
    sink = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sink.bind(("127.0.0.1", 0))
    sink.listen(16)
    try:
        rpc = all_dead_rpc()
        rpc["ETHEREUM"] = f"http://127.0.0.1:{sink.getsockname()[1]}"
        server = start_server("rpc-hang", rpc=rpc, extra_env={"PURSER_RPC_TIMEOUT_SECS": "2"})
        data, w, user, iid = _instrument_on(server)
        message = _expect_internal(lambda: balance(data, w, user, iid, "ETHEREUM"), 4.0)
        assert "ETHEREUM" in message, message
    finally:
        sink.close()


# ----------------------------------------------------------- the DONE-WHEN loop


def test_done_when_loop(dp, anvil_chain, usdc, wallet, user, make_instrument, make_session):
    inst = make_instrument(wallet, user)
    iid, payer = inst["paymentInstrumentId"], wallet_address(inst)
    anvil_mod.mint(anvil_chain, usdc, payer, 1_000_000)
    payee = random_evm_address()
    sid = make_session(wallet, user, cap="1.00")["paymentSessionId"]

    req1 = x402_requirement("BASE_SEPOLIA", "1", "100000", payee)
    req2 = x402_requirement("BASE_SEPOLIA", "2", "100000", payee)
    out1 = process_payment(dp, wallet, user, sid, iid, req1, "1")["paymentOutput"]["cryptoX402"]
    out2 = process_payment(dp, wallet, user, sid, iid, req2, "2")["paymentOutput"]["cryptoX402"]
    assert (out1["version"], out2["version"]) == ("1", "2")

    # the headers a client sends, decoded as a facilitator would
    x_payment = x_payment_header(req1, out1["payload"])
    payment_signature = payment_signature_header(req2, out2["payload"])
    for header in (x_payment, payment_signature):
        assert "-" not in header and "_" not in header and len(header) % 4 == 0
    pp1, pp2 = decode_header(x_payment), decode_header(payment_signature)
    assert pp1 == {"x402Version": 1, "scheme": "exact", "network": "base-sepolia",
                   "payload": out1["payload"]}
    assert pp2["x402Version"] == 2 and pp2["payload"] == out2["payload"]
    assert pp2["resource"]["url"] == "https://shop.example/item"
    v2_requirements = pp2["accepted"]

    v1 = facilitator_v1("verify", anvil_chain, pp1, req1)
    assert v1.get("isValid") is True, v1
    v2 = facilitator("verify", anvil_chain, pp2, v2_requirements)
    assert v2.get("isValid") is True, v2
    assert v2.get("payer", payer).lower() == payer.lower()

    # settle the v2 payment on chain
    def purser_balance() -> int:
        return int(balance(dp, wallet, user, iid)["tokenBalance"]["amount"])

    assert purser_balance() == 1_000_000
    assert anvil_mod.balance_of(anvil_chain, usdc, payee) == 0
    settled = facilitator("settle", anvil_chain, pp2, v2_requirements)
    assert settled.get("success") is True, settled
    assert settled["network"] == "eip155:84532"
    assert purser_balance() == 900_000
    assert anvil_mod.balance_of(anvil_chain, usdc, payee) == 100_000
    # the same payload cannot be settled twice (the EIP-3009 nonce is used)
    again = facilitator("settle", anvil_chain, pp2, v2_requirements)
    assert again.get("success") is not True, again
    assert "nonce" in str(again.get("errorReason", "")) + str(again.get("errorMessage", "")), again
    assert purser_balance() == 900_000
    # and the v1 one settles too, through the v1 facilitator
    settled1 = facilitator_v1("settle", anvil_chain, pp1, req1)
    assert settled1.get("success") is True, settled1
    assert purser_balance() == 800_000
    assert anvil_mod.balance_of(anvil_chain, usdc, payee) == 200_000

    # keep paying until the cap says no: 0.80 left -> 8 more payments
    for i in range(8):
        r = process_payment(dp, wallet, user, sid, iid, req2, "2")
        assert r["status"] == "PROOF_GENERATED", i
    err = expect_validation(lambda: process_payment(dp, wallet, user, sid, iid, req2, "2"),
                            field=None, reason=None)
    msg = error_message(err)
    assert "Insufficient budget" in msg and "0.00" in msg and "0.10" in msg, msg
    s = dp.get_payment_session(userId=user, paymentManagerArn=wallet.manager_arn,
                               paymentSessionId=sid)["paymentSession"]
    assert s["availableLimits"]["availableSpendAmount"]["value"] == "0.00"


@pytest.mark.parametrize("version", ["1", "2"])
def test_facilitator_rejects_a_wrong_payee(dp, anvil_chain, usdc, wallet, user, make_instrument,
                                           make_session, version):
    """The signature binds payTo: the facilitator refuses it for another recipient."""
    inst = make_instrument(wallet, user)
    anvil_mod.mint(anvil_chain, usdc, wallet_address(inst), 200_000)
    sid = make_session(wallet, user, cap="1.00")["paymentSessionId"]
    req = x402_requirement("BASE_SEPOLIA", version, "100000", random_evm_address())
    out = process_payment(dp, wallet, user, sid, inst["paymentInstrumentId"], req, version)[
        "paymentOutput"]["cryptoX402"]
    other = dict(req, payTo=random_evm_address())
    if version == "1":
        result = facilitator_v1("verify", anvil_chain,
                                decode_header(x_payment_header(other, out["payload"])), other)
    else:
        pp = decode_header(payment_signature_header(other, out["payload"]))
        result = facilitator("verify", anvil_chain, pp, pp["accepted"])
    assert result.get("isValid") is False, result
