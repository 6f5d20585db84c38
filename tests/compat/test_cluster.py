"""Several Purser nodes on one PostgreSQL database, and nodes killed with SIGKILL.

1. The session budget holds across nodes: 64 concurrent callers spread over 2 or 3 nodes
   spend a cap exactly (never a cent more, never a payment refused while budget remains).
2. State is shared: status transitions, pagination tokens and clientTokens work from any
   node.
3. Nodes started at once against a fresh database (migrations race) all come up.
4. kill -9 in the middle of a payment load loses no acknowledged payment and leaves the
   session's spent amount equal to the ledger (SQLite and PostgreSQL).

Money is compared as integers of micro-dollars or exact Decimals, never floats.
"""

from __future__ import annotations

import re
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

pytest.register_assert_rewrite("cluster_fixtures")

from cluster_fixtures import (  # noqa: E402
    Node,
    PaySetup,
    create_connector,
    create_instrument,
    create_manager,
    create_session,
    error_parts,
    micros_of,
    new_master_key,
    pay,
    session_available,
    setup_payments,
    signature_of,
    sql_text,
    start_cluster,
    usd,
)
from compat_helpers import ACCOUNT_1, wait_for, wait_gone  # noqa: E402

pytest_plugins = ["cluster_fixtures"]

PRICE = 100_000  # micro-dollars of one payment (0.10 USD, "amount": "100000")
INSUFFICIENT_RE = re.compile(
    r"Insufficient budget .*remaining (\d+(?:\.\d+)?) USD, requested (\d+(?:\.\d+)?) USD")


def new_user() -> str:
    return "u" + uuid.uuid4().hex[:12]


def pg_payment_rows(db, session_id: str) -> list[tuple[str, int, str, str]]:
    """(id, debited, amount, client_token) of every payment row of a session."""
    rows = db.query(
        "SELECT id, debited, amount, COALESCE(client_token, '') FROM payments "
        f"WHERE account_id = {sql_text(ACCOUNT_1)} AND session_id = {sql_text(session_id)}")
    return [(r[0], int(r[1]), r[2], r[3]) for r in rows]


def pg_session_spent(db, session_id: str) -> tuple[int, int]:
    """(cap, spent) of a session row, micro-dollars."""
    (row,) = db.query(f"SELECT cap, spent FROM sessions WHERE account_id = "
                      f"{sql_text(ACCOUNT_1)} AND id = {sql_text(session_id)}")
    return int(row[0]), int(row[1])


def check_refusal(message: str, requested: int) -> None:
    m = INSUFFICIENT_RE.search(message)
    assert m, f"not an 'Insufficient budget ... remaining X USD, requested Y USD' message: " \
              f"{message!r}"
    remaining, asked = Decimal(m.group(1)), Decimal(m.group(2))
    assert asked == usd(requested), message
    assert Decimal(0) <= remaining < asked, f"refused while budget remained: {message!r}"


def run_together(n: int, fn) -> list[Any]:
    """fn(i) for i in range(n), in n threads released at once; results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - returned to the caller
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    return results


# ===================================================== 1. the budget across nodes


def drain(nodes: list[Node], s: PaySetup, session_id: str, callers: int = 64) -> list[list]:
    """`callers` threads released together, caller i on nodes[i % len(nodes)], each
    paying 0.10 until refused. Per caller, its outcomes in order:
    ("ok", node, reply) | ("refused", node, message) | ("error", node, description)."""
    barrier = threading.Barrier(callers)
    outcomes: list[list] = [[] for _ in range(callers)]

    def worker(i: int) -> None:
        node = nodes[i % len(nodes)]
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            outcomes[i].append(("error", node.name, "barrier broken"))
            return
        for _ in range(100):  # a bound: 100 successes of one caller is already wrong
            try:
                reply = pay(node, s, session_id)
            except ClientError as e:
                code, status, message = error_parts(e)
                if code == "ValidationException" and status == 400 and \
                        "Insufficient budget" in message:
                    outcomes[i].append(("refused", node.name, message))
                else:
                    outcomes[i].append(("error", node.name, f"{code}/{status}: {message}"))
                return
            except Exception as e:  # noqa: BLE001 - reported below
                outcomes[i].append(("error", node.name, repr(e)))
                return
            outcomes[i].append(("ok", node.name, reply))
        outcomes[i].append(("error", node.name, "never refused"))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    return outcomes


class TestOneDatabaseSeveralNodes:
    """Tests 1 and 2 on shared clusters (2 nodes, then 3): see `shared_clusters`."""

    @pytest.mark.parametrize("n_nodes,cap,expected,remaining", [
        (2, "2.00", 20, "0.00"),
        (2, "1.05", 10, "0.05"),
        (3, "2.00", 20, "0.00"),
        (3, "1.05", 10, "0.05"),
    ], ids=["2nodes-cap2.00", "2nodes-cap1.05", "3nodes-cap2.00", "3nodes-cap1.05"])
    def test_budget_is_exact_across_nodes(self, shared_clusters, n_nodes, cap, expected,
                                          remaining):
        cluster = shared_clusters(n_nodes)
        nodes, db = cluster.nodes, cluster.db
        s = setup_payments(nodes[0], user_id=new_user())
        session = create_session(nodes[0], s, cap)
        sid = session["paymentSessionId"]
        assert session["availableLimits"]["availableSpendAmount"]["value"] in (cap, cap.rstrip("0"))

        outcomes = drain(nodes, s, sid, callers=64)

        flat = [o for per in outcomes for o in per]
        errors = [o for o in flat if o[0] == "error"]
        assert not errors, f"answers that are neither a payment nor 'Insufficient budget': " \
                           f"{errors[:5]}"
        oks = [o for o in flat if o[0] == "ok"]
        refusals = [o for o in flat if o[0] == "refused"]
        assert len(oks) == expected, (
            f"{len(oks)} payments of 0.10 under a cap of {cap} (expected exactly {expected}); "
            f"per node: {Counter(o[1] for o in oks)}")
        # every caller stopped on exactly one refusal, its last answer
        assert len(refusals) == 64
        assert all(per[-1][0] == "refused" for per in outcomes)
        for _, _, message in refusals:
            check_refusal(message, PRICE)
        # each node answered (every caller ends with a refusal from its own node)
        assert set(o[1] for o in refusals) == {n.name for n in nodes}

        ids = [o[2]["processPaymentId"] for o in oks]
        assert len(set(ids)) == expected, "a processPaymentId was answered twice"
        for _, _, reply in oks:
            assert reply["status"] == "PROOF_GENERATED"
            assert reply["paymentSessionId"] == sid
            assert reply["paymentInstrumentId"] == s.instrument_id
            auth = reply["paymentOutput"]["cryptoX402"]["payload"]["authorization"]
            assert int(auth["value"]) == PRICE
        nonces = [o[2]["paymentOutput"]["cryptoX402"]["payload"]["authorization"]["nonce"]
                  for o in oks]
        assert len(set(nonces)) == expected, "two payments signed with the same EIP-3009 nonce"

        # every node agrees on what is left
        for node in nodes:
            assert session_available(node, s, sid) == remaining, node.name
        cap_micros = micros_of(cap)
        assert usd(cap_micros - expected * PRICE) == Decimal(remaining)

        # the ledger holds exactly the acknowledged payments, and the session row agrees
        rows = pg_payment_rows(db, sid)
        assert sorted(r[0] for r in rows) == sorted(ids)
        assert all(r[1] == PRICE and r[2] == str(PRICE) for r in rows), rows
        assert pg_session_spent(db, sid) == (cap_micros, expected * PRICE)

        # refused payments consumed nothing: one more is still refused everywhere
        for node in nodes:
            with pytest.raises(ClientError) as ei:
                pay(node, s, sid)
            code, status, message = error_parts(ei.value)
            assert (code, status) == ("ValidationException", 400)
            check_refusal(message, PRICE)

    # ----- 2. shared state

    def test_transitions_complete_on_every_node(self, shared_clusters, nodes):
        cluster = shared_clusters(3)
        n1, n2, n3 = cluster.nodes
        # created on node 1, read READY on node 2 / node 3
        m = create_manager(n1)
        wait_for(lambda: n2.control.get_payment_manager(paymentManagerId=m["paymentManagerId"]),
                 "READY", timeout=10)
        c = create_connector(n1, m["paymentManagerId"])
        got = wait_for(lambda: n3.control.get_payment_connector(
            paymentManagerId=m["paymentManagerId"], paymentConnectorId=c["paymentConnectorId"]),
            "READY", timeout=10)
        assert got["paymentConnectorId"] == c["paymentConnectorId"]
        assert n1.control.get_payment_manager(
            paymentManagerId=m["paymentManagerId"])["status"] == "READY"

        # created on a node that dies at once (SIGKILL): the OTHER nodes' sweeps finish it
        extra = nodes.start(cluster.db.url, cluster.master_key, name="short-lived")
        m2 = create_manager(extra)
        extra.kill(signal.SIGKILL)
        seen = []

        def get():
            r = n2.control.get_payment_manager(paymentManagerId=m2["paymentManagerId"])
            seen.append(r["status"])
            return r

        wait_for(get, "READY", timeout=10)
        assert set(seen) <= {"CREATING", "READY"}, seen
        assert n3.control.get_payment_manager(
            paymentManagerId=m2["paymentManagerId"])["status"] == "READY"

        # a deletion asked of node 3 completes, and every node sees it gone
        n3.control.delete_payment_manager(paymentManagerId=m2["paymentManagerId"])
        for node in (n1, n2, n3):
            wait_gone(lambda: node.control.get_payment_manager(
                paymentManagerId=m2["paymentManagerId"]), timeout=10)


    def test_pagination_tokens_work_on_other_nodes(self, shared_clusters):
        n1, n2, n3 = shared_clusters(3).nodes
        s = setup_payments(n1, user_id=new_user())
        made = {s.instrument_id}
        for _ in range(4):
            made.add(create_instrument(n1, s)["paymentInstrumentId"])
        assert len(made) == 5

        def page(node: Node, max_results: int, token: str | None = None) -> dict:
            args = dict(userId=s.user_id, paymentManagerArn=s.manager_arn,
                        paymentConnectorId=s.connector_id, maxResults=max_results)
            if token:
                args["nextToken"] = token
            return node.data.list_payment_instruments(**args)

        first = page(n1, 2)
        first_ids = [i["paymentInstrumentId"] for i in first["paymentInstruments"]]
        assert len(first_ids) == 2 and first.get("nextToken")

        # node 2 returns the rest, exactly once
        rest = page(n2, 100, first["nextToken"])
        rest_ids = [i["paymentInstrumentId"] for i in rest["paymentInstruments"]]
        assert not rest.get("nextToken")
        assert sorted(first_ids + rest_ids) == sorted(made), (first_ids, rest_ids)

        # the same token, on node 3, still means the same place; then hop node to node
        seen = list(first_ids)
        token = first["nextToken"]
        hops = [n3, n2, n1, n3]
        for hop in hops:
            p = page(hop, 2, token)
            seen += [i["paymentInstrumentId"] for i in p["paymentInstruments"]]
            token = p.get("nextToken")
            if not token:
                break
        assert not token, "paging did not end"
        assert sorted(seen) == sorted(made), seen


    def test_payment_client_token_across_nodes(self, shared_clusters):
        cluster = shared_clusters(3)
        n1, n2, n3 = cluster.nodes
        s = setup_payments(n1, user_id=new_user())
        sid = create_session(n1, s, "1.00")["paymentSessionId"]
        token = "tok" + uuid.uuid4().hex + uuid.uuid4().hex[:8]

        r1 = pay(n1, s, sid, clientToken=token)
        r2 = pay(n2, s, sid, clientToken=token)
        assert r2["processPaymentId"] == r1["processPaymentId"]
        assert signature_of(r2) == signature_of(r1)
        assert r2["paymentOutput"] == r1["paymentOutput"]
        for node in (n1, n2, n3):
            assert session_available(node, s, sid) == "0.90", node.name

        # the same token with another request: refused, nothing debited
        with pytest.raises(ClientError) as ei:
            pay(n3, s, sid, amount="200000", clientToken=token)
        code, status, message = error_parts(ei.value)
        assert (code, status) == ("ValidationException", 400), message
        assert ei.value.response.get("reason") == "IdempotentParameterMismatchException"
        assert session_available(n3, s, sid) == "0.90"

        rows = pg_payment_rows(cluster.db, sid)
        assert [(r[0], r[1], r[3]) for r in rows] == [(r1["processPaymentId"], PRICE, token)]

        # the same token sent by 12 callers at once to all three nodes: one payment
        token2 = "tok" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
        replies = run_together(12, lambda i: pay(cluster.nodes[i % 3], s, sid,
                                                 clientToken=token2))
        failures = [r for r in replies if not isinstance(r, dict)]
        assert not failures, f"concurrent replays of one clientToken failed: {failures[:3]}"
        assert len({r["processPaymentId"] for r in replies}) == 1
        assert len({signature_of(r) for r in replies}) == 1
        for node in (n1, n2, n3):
            assert session_available(node, s, sid) == "0.80", node.name
        rows = pg_payment_rows(cluster.db, sid)
        assert len(rows) == 2
        assert pg_session_spent(cluster.db, sid) == (1_000_000, 2 * PRICE)


    def test_manager_client_token_across_nodes(self, shared_clusters):
        n1, n2, n3 = shared_clusters(3).nodes
        name = "mgr" + uuid.uuid4().hex[:12]
        token = "tok" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
        args = dict(name=name, authorizerType="AWS_IAM",
                    roleArn=f"arn:aws:iam::{ACCOUNT_1}:role/t", clientToken=token)
        a = n1.control.create_payment_manager(**args)
        b = n3.control.create_payment_manager(**args)
        assert b["paymentManagerId"] == a["paymentManagerId"]
        assert b["paymentManagerArn"] == a["paymentManagerArn"]

        # concurrently from all three nodes, with a fresh token: one manager
        name2 = "mgr" + uuid.uuid4().hex[:12]
        token2 = "tok" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
        nodes = [n1, n2, n3]
        replies = run_together(9, lambda i: nodes[i % 3].control.create_payment_manager(
            name=name2, authorizerType="AWS_IAM",
            roleArn=f"arn:aws:iam::{ACCOUNT_1}:role/t", clientToken=token2))
        failures = [r for r in replies if not isinstance(r, dict)]
        assert not failures, f"concurrent CreatePaymentManager replays failed: {failures[:3]}"
        assert len({r["paymentManagerId"] for r in replies}) == 1
        listed = []
        token = None
        while True:
            kw = {"nextToken": token} if token else {}
            page = n2.control.list_payment_managers(maxResults=100, **kw)
            listed += [m["name"] for m in page["paymentManagers"]]
            token = page.get("nextToken")
            if not token:
                break
        assert listed.count(name) == 1 and listed.count(name2) == 1

    def test_instrument_and_session_client_tokens_across_nodes(self, shared_clusters):
        """The same clientToken sent at once through all three nodes creates ONE wallet
        (one key, one address) and ONE session."""
        n1, n2, n3 = shared_clusters(3).nodes
        nodes = [n1, n2, n3]
        s = setup_payments(n1, user_id=new_user())
        itoken = "tok" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
        stoken = "tok" + uuid.uuid4().hex + uuid.uuid4().hex[:8]

        def instrument(i: int) -> dict:
            return create_instrument(nodes[i % 3], s, clientToken=itoken)

        def session(i: int) -> dict:
            return create_session(nodes[i % 3], s, "3.00", clientToken=stoken)

        for call, key in ((instrument, "paymentInstrumentId"), (session, "paymentSessionId")):
            replies = run_together(9, call)
            failures = [r for r in replies if not isinstance(r, dict)]
            assert not failures, f"concurrent replays failed: {failures[:3]}"
            assert len({r[key] for r in replies}) == 1, [r[key] for r in replies]
            if key == "paymentInstrumentId":
                addrs = {r["paymentInstrumentDetails"]["embeddedCryptoWallet"]["walletAddress"]
                         for r in replies}
                assert len(addrs) == 1, addrs
        listed = n2.data.list_payment_instruments(
            userId=s.user_id, paymentManagerArn=s.manager_arn,
            paymentConnectorId=s.connector_id, maxResults=100)["paymentInstruments"]
        assert len(listed) == 2, [i["paymentInstrumentId"] for i in listed]
        sessions = n3.data.list_payment_sessions(
            userId=s.user_id, paymentManagerArn=s.manager_arn,
            maxResults=100)["paymentSessions"]
        assert len(sessions) == 1, sessions


# ================================================== 3. nodes starting together


def test_nodes_starting_at_once_on_a_fresh_database(make_pg_database, tmp_path):
    for round_ in range(2):
        db = make_pg_database()
        master_key = new_master_key()
        started = start_cluster(3, db.url, master_key, tmp_path / f"round{round_}")
        try:
            assert all(n.alive() for n in started)
            names = []
            for n in started:  # one request to each
                name = "mgr" + uuid.uuid4().hex[:12]
                n.control.create_payment_manager(
                    name=name, authorizerType="AWS_IAM",
                    roleArn=f"arn:aws:iam::{ACCOUNT_1}:role/t")
                names.append(name)
            for n in started:
                listed = {m["name"] for m in
                          n.control.list_payment_managers(maxResults=100)["paymentManagers"]}
                assert set(names) <= listed, n.name
            if round_ == 0:  # and the data plane: a payment through each node
                s = setup_payments(started[0], user_id=new_user())
                sid = create_session(started[0], s, "1.00")["paymentSessionId"]
                for n in started:
                    assert pay(n, s, sid)["status"] == "PROOF_GENERATED", n.name
                assert session_available(started[-1], s, sid) == "0.70"
            versions = [int(r[0]) for r in db.query(
                "SELECT version FROM purser_migrations ORDER BY version")]
            assert versions == list(range(1, len(versions) + 1)) and versions, versions
            # each migration was applied by exactly one of the racing nodes
            applied = Counter(m.group(1) for n in started for m in re.finditer(
                r"applied migration version=(\d+)", n.log_text()))
            assert applied == Counter(str(v) for v in versions), applied
            for n in started:
                log = n.log_text().lower()
                assert "panic" not in log, n.log_text()[-3000:]
        finally:
            for n in started:
                n.stop()


# ================================================================ 4. kill -9


@dataclass
class LoadResult:
    acked: list[tuple[str, str, int, float]] = field(default_factory=list)  # id, node, debit, t
    unknown: list[tuple[str, str]] = field(default_factory=list)   # node, error
    problems: list[str] = field(default_factory=list)


def payment_load(targets: list[Node], victim: Node, s: PaySetup, sid: str, threads: int,
                 amount: str, run_for: float, kill_after: float) -> tuple[LoadResult, float]:
    """`threads` callers (caller i on targets[i % len]) paying `amount` in a loop; the
    victim gets SIGKILL after `kill_after` seconds; everything stops after `run_for`.
    Returns what was acknowledged (HTTP 200) and the kill time (monotonic)."""
    result = LoadResult()
    lock = threading.Lock()
    stop = threading.Event()
    killed = threading.Event()
    debit = int(amount)

    def worker(i: int) -> None:
        node = targets[i % len(targets)]
        while not stop.is_set():
            try:
                reply = pay(node, s, sid, amount=amount)
            except ClientError as e:
                code, status, message = error_parts(e)
                with lock:
                    result.problems.append(f"{node.name}: {code}/{status}: {message}")
                return
            except BotoCoreError as e:
                # no reply: the node died under the request (or refuses connections)
                with lock:
                    if node is victim and killed.is_set():
                        result.unknown.append((node.name, type(e).__name__))
                    else:
                        result.problems.append(f"{node.name}: {e!r}")
                if node is victim:
                    return
                continue
            t = time.monotonic()
            with lock:
                result.acked.append((reply["processPaymentId"], node.name, debit, t))

    workers = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(threads)]
    for w in workers:
        w.start()
    time.sleep(kill_after)
    killed.set()
    victim.kill(signal.SIGKILL)
    t_kill = time.monotonic()
    time.sleep(max(0.0, run_for - kill_after))
    stop.set()
    for w in workers:
        w.join(timeout=60)
    assert not any(w.is_alive() for w in workers), "a load thread hung"
    return result, t_kill


@pytest.mark.parametrize("kind", ["sqlite-1node", "pg-1node", "pg-2nodes"])
def test_kill9_during_payments_loses_nothing(kind, nodes, make_pg_database):
    master_key = new_master_key()
    db = None
    if kind == "sqlite-1node":
        cluster = [nodes.start(None, master_key, name="sqlite")]
    else:
        db = make_pg_database()
        cluster = ([nodes.start(db.url, master_key)] if kind == "pg-1node"
                   else nodes.cluster(2, db.url, master_key))
    victim = cluster[0]
    s = setup_payments(victim, user_id=new_user())
    cap = "10000"
    sid = create_session(victim, s, cap)["paymentSessionId"]
    threads = 16
    amount = "1"  # 0.000001 USD

    load, t_kill = payment_load(cluster, victim, s, sid, threads=threads, amount=amount,
                                run_for=1.6, kill_after=1.0)
    assert not load.problems, load.problems[:5]
    assert victim.proc.returncode == -signal.SIGKILL
    victim_acks = [a for a in load.acked if a[1] == victim.name]
    assert victim_acks, "the victim acknowledged nothing before the kill: no load to test"
    if len(cluster) > 1:
        assert any(a[1] != victim.name and a[3] > t_kill + 0.2 for a in load.acked), \
            "the surviving node stopped paying when its peer died"

    victim.restart()

    if db is not None:
        rows = pg_payment_rows(db, sid)
        cap_micros, spent_col = pg_session_spent(db, sid)
    else:
        rows = [(r[0], int(r[1]), r[2], r[3] or "") for r in victim.sqlite_query(
            "SELECT id, debited, amount, client_token FROM payments "
            "WHERE account_id = ? AND session_id = ?", ACCOUNT_1, sid)]
        ((cap_db, spent_db),) = victim.sqlite_query(
            "SELECT cap, spent FROM sessions WHERE account_id = ? AND id = ?", ACCOUNT_1, sid)
        cap_micros, spent_col = int(cap_db), int(spent_db)

    row_ids = [r[0] for r in rows]
    assert len(row_ids) == len(set(row_ids))
    acked_ids = [a[0] for a in load.acked]
    assert len(acked_ids) == len(set(acked_ids))
    missing = set(acked_ids) - set(row_ids)
    assert not missing, f"{len(missing)} acknowledged payments are not in the ledger " \
                        f"after kill -9: {sorted(missing)[:5]}"
    # rows nobody saw acknowledged can only be requests that were in flight at the kill
    unacked_rows = len(row_ids) - len(acked_ids)
    assert 0 <= unacked_rows <= len(load.unknown), (unacked_rows, len(load.unknown))
    assert all(r[1] == int(amount) and r[2] == amount for r in rows)

    ledger_sum = sum(r[1] for r in rows)
    assert cap_micros == micros_of(cap)
    assert spent_col == ledger_sum, f"session spent {spent_col} != ledger {ledger_sum}"
    acked_sum = sum(a[2] for a in load.acked)
    assert ledger_sum >= acked_sum
    for node in cluster:  # the restarted node and its peer agree with the ledger
        available = Decimal(session_available(node, s, sid))
        assert Decimal(cap) - available == usd(ledger_sum), node.name

    # after the restart, new payments work on the restarted node
    r = pay(victim, s, sid, amount=amount)
    assert r["status"] == "PROOF_GENERATED"
    assert Decimal(cap) - Decimal(session_available(victim, s, sid)) == \
        usd(ledger_sum + int(amount))
    print(f"\n{kind}: {len(acked_ids)} acknowledged ({len(victim_acks)} by the victim), "
          f"{len(load.unknown)} without reply at the kill, {len(rows)} ledger rows")
