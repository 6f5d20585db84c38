"""Key care against the real binary: `purser admin rotate-master-key` killed with SIGKILL
at points spread over its run, `purser admin check`, and `purser admin backup` taken while
payments are being made.

Every instrument is made through boto3; after each killed rotation the database must open
with the old or the new key (the one `master.key` then holds), `admin check` must pass
(every sealed value opens and every wallet key gives its stored address), and after the
last one the instruments still sign payments that recover to their addresses."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import hmac
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytest.register_assert_rewrite("chain_fixtures")

from chain_fixtures import (  # noqa: E402
    CONTROL,
    DATA,
    EVM_CHAINS,
    _find_binary,
    ecrecover,
    make_boto,
    new_master_key,
    process_payment,
    run_concurrently,
    setup_wallet,
    transfer_with_authorization_digest,
    wallet_address,
    x402_requirement,
)
from compat_helpers import ACCOUNT_1, create_provider  # noqa: E402

pytest_plugins = ["chain_fixtures"]

INSTRUMENTS = 300
TRIALS = 20


def key_id(b64: str) -> str:
    """The public id Purser prints for a master key (HMAC-SHA256 of a label, 8 bytes)."""
    tag = hmac.new(base64.b64decode(b64), b"purser/master-key-id/v1", hashlib.sha256).digest()
    return "mk-" + tag[:8].hex()


def admin(server, *args: str, env: dict[str, str] | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `purser admin ...` with the server's configuration (data dir, config file)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PURSER_")}
    full_env.update(env or {})
    return subprocess.run(
        [str(_find_binary()), "admin", *args, "--data-dir", str(server.data_dir),
         "--config", str(server.tmp_dir / "purser.toml")],
        capture_output=True, text=True, env=full_env, timeout=timeout,
        stdin=subprocess.DEVNULL)


def assert_no_key_in(out: str, *keys: str) -> None:
    for k in keys:
        assert k not in out, "a master key was printed"
        assert k.rstrip("=")[:20] not in out


def check_passes(server, counts: tuple[int, int, int], env=None) -> str:
    r = admin(server, "check", env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    providers, wallets, linked = counts
    assert f"credential-provider secrets: {providers} checked, 0 failed" in out, out
    assert f"wallet keys: {wallets} checked, 0 failed" in out, out
    assert f"linked accounts: {linked} checked, 0 failed" in out, out
    assert "check passed" in out
    return out


def make_instruments(cp, dp, n: int):
    """A provider (sealed secrets), a manager + SelfCustody connector, and n instruments
    (ETHEREUM and SOLANA; every other one with a linked email), made concurrently."""
    create_provider(cp)
    w = setup_wallet(cp, ACCOUNT_1)

    def make(k: int) -> dict:
        network = "SOLANA" if k % 4 == 3 else "ETHEREUM"
        linked = [{"email": {"emailAddress": f"owner{k}@example.com"}}] if k % 2 else []
        return dp.create_payment_instrument(
            userId=f"user-{k % 10}", paymentManagerArn=w.manager_arn,
            paymentConnectorId=w.connector_id, paymentInstrumentType="EMBEDDED_CRYPTO_WALLET",
            paymentInstrumentDetails={"embeddedCryptoWallet": {
                "network": network, "linkedAccounts": linked}})["paymentInstrument"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        instruments = list(pool.map(make, range(n)))
    return w, instruments


def pay_and_verify(dp, w, inst: dict) -> None:
    """A ProcessPayment with the instrument; its EIP-3009 signature recovers to the
    instrument's address."""
    user = inst["userId"]
    sess = dp.create_payment_session(
        userId=user, paymentManagerArn=w.manager_arn, expiryTimeInMinutes=60,
        limits={"maxSpendAmount": {"value": "1.00", "currency": "USD"}})["paymentSession"]
    req = x402_requirement("BASE_SEPOLIA", "2", amount="1000")
    resp = process_payment(dp, w, user, sess["paymentSessionId"],
                           inst["paymentInstrumentId"], req)
    payload = resp["paymentOutput"]["cryptoX402"]["payload"]
    digest = transfer_with_authorization_digest(EVM_CHAINS["BASE_SEPOLIA"].domain(),
                                                payload["authorization"])
    sig = bytes.fromhex(payload["signature"][2:])
    assert ecrecover(digest, sig) == wallet_address(inst)


def test_rotation_killed_at_any_point_loses_nothing(start_server):
    # The key lives in <data dir>/master.key (PURSER_MASTER_KEY unset).
    server = start_server("rotate", extra_env={"PURSER_MASTER_KEY": ""})
    cp, dp = make_boto(server, CONTROL), make_boto(server, DATA)
    w, instruments = make_instruments(cp, dp, INSTRUMENTS)
    evm = [i for i in instruments if
           i["paymentInstrumentDetails"]["embeddedCryptoWallet"]["network"] == "ETHEREUM"]
    pay_and_verify(dp, w, evm[0])
    server.stop()
    counts = (1, INSTRUMENTS, INSTRUMENTS)
    key_file = server.data_dir / "master.key"
    next_file = server.data_dir / "master.key.next"
    first_key = key_file.read_text().strip()
    check_passes(server, counts)

    # One full run first: how long a rotation takes here, to spread the kills over it.
    started = time.monotonic()
    r = admin(server, "rotate-master-key")
    duration = time.monotonic() - started
    assert r.returncode == 0, r.stdout + r.stderr
    second_key = key_file.read_text().strip()
    assert second_key != first_key and not next_file.exists()
    assert f"sealed under master key {key_id(second_key)} (was {key_id(first_key)})" in r.stdout
    assert_no_key_in(r.stdout + r.stderr, first_key, second_key)
    check_passes(server, counts)

    binary = str(_find_binary())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURSER_")}
    rng = random.Random(20261130)
    outcomes = {"old key": 0, "new key, renamed by check": 0, "rotation completed": 0}
    for trial in range(TRIALS):
        old = key_file.read_text().strip()
        # kill times spread evenly over 0..1.1 x the measured run, jittered
        delay = duration * 1.1 * (trial + rng.random()) / TRIALS
        proc = subprocess.Popen(
            [binary, "admin", "rotate-master-key", "--data-dir", str(server.data_dir),
             "--config", str(server.tmp_dir / "purser.toml")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
            stdin=subprocess.DEVNULL)
        time.sleep(delay)
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = proc.communicate(timeout=60)
        new = next_file.read_text().strip() if next_file.exists() else None
        before = key_file.read_text().strip()
        # The database opens with one of the two keys: `check` (which finishes a rename
        # the kill interrupted) passes with what master.key then holds.
        text = check_passes(server, counts)
        now = key_file.read_text().strip()
        if before != old:
            # the kill came after the rename: the rotation was complete
            assert now == before and not next_file.exists()
            outcomes["rotation completed"] += 1
        elif now == old:
            outcomes["old key"] += 1
        else:
            # killed between the commit and the rename: check finished the rename
            assert now == new, f"trial {trial}: master.key holds a key that was never written"
            outcomes["new key, renamed by check"] += 1
        assert f"configured master key: {key_id(now)}" in text
        assert "the database is sealed under it" in text
        assert_no_key_in(out.decode() + text, old, now)
    print(f"killed rotations: {outcomes} (run of {duration * 1000:.0f} ms)")

    # Then a rotation runs to its end, and every instrument still signs.
    before_last = key_file.read_text().strip()
    r = admin(server, "rotate-master-key")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not next_file.exists()
    check_passes(server, counts)

    # The narrow window between the commit and the rename (too short for a random kill
    # to hit): the database is under the new key, master.key still holds the old one and
    # master.key.next the new one. Whoever opens the database next finishes the rename:
    # here `purser serve` itself.
    last = key_file.read_text().strip()

    def killed_before_rename() -> None:
        next_file.write_text(last + "\n")
        os.chmod(next_file, 0o600)
        key_file.write_text(before_last + "\n")

    killed_before_rename()
    text = check_passes(server, counts)
    assert f"configured master key: {key_id(last)}" in text
    assert key_file.read_text().strip() == last and not next_file.exists()
    killed_before_rename()
    again = start_server("rotate-after", data_dir=server.data_dir,
                         extra_env={"PURSER_MASTER_KEY": ""})
    assert key_file.read_text().strip() == last and not next_file.exists()
    assert "finished an interrupted master-key rotation" in again.log_text()
    assert_no_key_in(again.log_text(), before_last, last)
    dp2 = make_boto(again, DATA)
    for inst in evm[:: max(1, len(evm) // 8)]:
        pay_and_verify(dp2, w, inst)
    got = dp2.get_payment_instrument(
        userId=evm[-1]["userId"], paymentManagerArn=w.manager_arn,
        paymentConnectorId=w.connector_id,
        paymentInstrumentId=evm[-1]["paymentInstrumentId"])["paymentInstrument"]
    assert wallet_address(got) == wallet_address(evm[-1])


def test_rotation_with_keys_in_the_environment(start_server):
    old = new_master_key()
    new = new_master_key()
    server = start_server("rotate-env", master_key=old)
    cp, dp = make_boto(server, CONTROL), make_boto(server, DATA)
    w, instruments = make_instruments(cp, dp, 6)
    server.stop()
    counts = (1, 6, 6)

    r = admin(server, "rotate-master-key", env={"PURSER_MASTER_KEY": old})
    assert r.returncode != 0
    assert "PURSER_NEW_MASTER_KEY" in r.stderr

    r = admin(server, "rotate-master-key",
              env={"PURSER_MASTER_KEY": old, "PURSER_NEW_MASTER_KEY": new})
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"sealed under master key {key_id(new)} (was {key_id(old)})" in r.stdout
    assert_no_key_in(r.stdout + r.stderr, old, new)
    # a rerun (as after a kill) knows the rotation happened
    r = admin(server, "rotate-master-key",
              env={"PURSER_MASTER_KEY": old, "PURSER_NEW_MASTER_KEY": new})
    assert r.returncode == 0 and "already sealed under the new master key" in r.stdout

    # the old key no longer opens it, and says which key does
    r = admin(server, "check", env={"PURSER_MASTER_KEY": old})
    assert r.returncode != 0
    assert f"sealed under another master key ({key_id(new)})" in r.stderr
    check_passes(server, counts, env={"PURSER_MASTER_KEY": new})

    again = start_server("rotate-env-after", master_key=new, data_dir=server.data_dir)
    dp2 = make_boto(again, DATA)
    for inst in instruments:
        if inst["paymentInstrumentDetails"]["embeddedCryptoWallet"]["network"] == "ETHEREUM":
            pay_and_verify(dp2, w, inst)


def test_backup_during_payments_is_consistent_and_checks_clean(start_server, tmp_path):
    server = start_server("backup")
    cp, dp = make_boto(server, CONTROL), make_boto(server, DATA)
    w, instruments = make_instruments(cp, dp, 8)
    evm = [i for i in instruments if
           i["paymentInstrumentDetails"]["embeddedCryptoWallet"]["network"] == "ETHEREUM"]
    sessions = []
    for inst in evm:
        s = dp.create_payment_session(
            userId=inst["userId"], paymentManagerArn=w.manager_arn, expiryTimeInMinutes=60,
            limits={"maxSpendAmount": {"value": "5.00", "currency": "USD"}})["paymentSession"]
        sessions.append((inst, s["paymentSessionId"]))
    env = {"PURSER_MASTER_KEY": server.master_key}
    backups = [tmp_path / f"backup-{n}.db" for n in range(3)]
    paid = [0]
    lock = threading.Lock()

    def work(k: int):
        if k < len(sessions):
            inst, sid = sessions[k]
            for _ in range(12):
                process_payment(dp, w, inst["userId"], sid, inst["paymentInstrumentId"],
                                x402_requirement("BASE_SEPOLIA", "2", amount="10000"))
                with lock:
                    paid[0] += 1
            return None
        # the other threads take backups while the payments go on: after 10, 25 and 40
        # of the 72 payments
        n = k - len(sessions)
        while True:
            with lock:
                if paid[0] >= 10 + 15 * n:
                    break
            time.sleep(0.005)
        return admin(server, "backup", "--to", str(backups[n]), env=env)

    results = run_concurrently(len(sessions) + len(backups), work)
    for kind, value in results:
        assert kind == "ok", value
        if value is not None:
            assert value.returncode == 0, value.stdout + value.stderr
    with lock:
        assert paid[0] == 12 * len(sessions)
    for path in backups:
        assert path.stat().st_mode & 0o777 == 0o600
        # consistent: every session's spend is exactly the sum of its recorded payments
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT s.id, s.spent, COALESCE(SUM(p.debited), 0) FROM sessions s "
                "LEFT JOIN payments p ON p.account_id = s.account_id AND p.session_id = s.id "
                "GROUP BY s.account_id, s.id").fetchall()
        finally:
            conn.close()
        assert len(rows) == len(sessions)
        for sid, spent, paid in rows:
            assert spent == paid, (sid, spent, paid)
        r = admin(server, "check", "--database-url", f"sqlite://{path}", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "wallet keys: 8 checked, 0 failed" in r.stdout

    # a file that exists is never overwritten; PostgreSQL is pg_dump's job
    r = admin(server, "backup", "--to", str(backups[0]), env=env)
    assert r.returncode != 0 and "exists" in r.stderr
    r = admin(server, "backup", "--to", str(tmp_path / "pg.db"),
              "--database-url", "postgres://nobody@127.0.0.1:1/none", env=env)
    assert r.returncode != 0 and "pg_dump" in r.stderr

    # a wallet key swapped onto another record is named by check, which then fails
    broken = tmp_path / "broken.db"
    broken.write_bytes(backups[0].read_bytes())
    a, b = evm[0]["paymentInstrumentId"], evm[1]["paymentInstrumentId"]
    conn = sqlite3.connect(str(broken))
    try:
        ka = conn.execute("SELECT sealed_key FROM instruments WHERE id = ?", (a,)).fetchone()[0]
        kb = conn.execute("SELECT sealed_key FROM instruments WHERE id = ?", (b,)).fetchone()[0]
        conn.execute("UPDATE instruments SET sealed_key = ? WHERE id = ?", (kb, a))
        conn.execute("UPDATE instruments SET sealed_key = ? WHERE id = ?", (ka, b))
        # and an address that is not the one of the key stored beside it
        conn.execute("UPDATE instruments SET wallet_address = ? WHERE id = ?",
                     (wallet_address(evm[0]), evm[2]["paymentInstrumentId"]))
        conn.commit()
    finally:
        conn.close()
    r = admin(server, "check", "--database-url", f"sqlite://{broken}", env=env)
    assert r.returncode != 0
    assert "wallet keys: 8 checked, 3 failed" in r.stdout
    assert f"FAILED wallet keys {ACCOUNT_1}/{a}: does not open" in r.stdout
    assert f"FAILED wallet keys {ACCOUNT_1}/{b}: does not open" in r.stdout
    assert (f"FAILED wallet keys {ACCOUNT_1}/{evm[2]['paymentInstrumentId']}: the key does "
            "not give the stored wallet address") in r.stdout
    assert "linked accounts: 8 checked, 0 failed" in r.stdout
    assert "check FAILED: 3 of 17 sealed values" in r.stderr
    assert_no_key_in(r.stdout + r.stderr, server.master_key)
