// Managers, connectors, instruments and sessions: the AgentCore operations themselves,
// run through /console/api/call with the signed-in account.
import { useState } from "preact/hooks";
import { call } from "./api.js";
import { ConfirmButton, Empty, ErrorBox, Pager, fmtTime, formatUsd, micros, usePages } from "./ui.jsx";

const PAGE = 20;

export function ManagersPage({ onPick }) {
  const p = usePages(async (nextToken) => {
    const r = await call("ListPaymentManagers", { maxResults: PAGE, nextToken });
    return { items: r.paymentManagers || [], next: r.nextToken || null };
  }, []);
  return (
    <section>
      <h2>Payment managers</h2>
      <ErrorBox error={p.error} />
      <table data-testid="managers">
        <thead>
          <tr>
            <th>Name</th>
            <th>Id</th>
            <th>Authorizer</th>
            <th>Status</th>
            <th>Updated</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {p.items.map((m) => (
            <tr key={m.paymentManagerId}>
              <td>{m.name}</td>
              <td class="mono">{m.paymentManagerId}</td>
              <td>{m.authorizerType}</td>
              <td>{m.status}</td>
              <td>{fmtTime(m.lastUpdatedAt)}</td>
              <td>
                <button type="button" onClick={() => onPick(m)}>
                  Select
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Empty p={p} what="payment managers" />
      <Pager p={p} />
    </section>
  );
}

export function ConnectorsPage({ manager }) {
  const p = usePages(async (nextToken) => {
    const r = await call("ListPaymentConnectors", {
      paymentManagerId: manager.paymentManagerId,
      maxResults: PAGE,
      nextToken,
    });
    return { items: r.paymentConnectors || [], next: r.nextToken || null };
  }, [manager.paymentManagerId]);
  return (
    <section>
      <h2>Connectors of {manager.name}</h2>
      <ErrorBox error={p.error} />
      <table data-testid="connectors">
        <thead>
          <tr>
            <th>Name</th>
            <th>Id</th>
            <th>Type</th>
            <th>Status</th>
            <th>Updated</th>
          </tr>
        </thead>
        <tbody>
          {p.items.map((c) => (
            <tr key={c.paymentConnectorId}>
              <td>{c.name}</td>
              <td class="mono">{c.paymentConnectorId}</td>
              <td>{c.type}</td>
              <td>{c.status}</td>
              <td>{fmtTime(c.lastUpdatedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Empty p={p} what="connectors" />
      <Pager p={p} />
    </section>
  );
}

/** The masked linked accounts of an instrument, as the API returns them. */
function linkedText(list) {
  if (!list || !list.length) return "—";
  return list
    .map((entry) => {
      const [kind, v] = Object.entries(entry)[0] || ["", {}];
      const leaves = [];
      const walk = (x) =>
        x && typeof x === "object" ? Object.values(x).forEach(walk) : leaves.push(String(x));
      walk(v);
      return `${kind}: ${leaves.join(" ")}`;
    })
    .join(", ");
}

export function UserFilter({ user, setUser, label = "User id" }) {
  const [text, setText] = useState(user);
  return (
    <form
      class="filters"
      onSubmit={(e) => {
        e.preventDefault();
        setUser(text.trim());
      }}
    >
      <label>
        {label}{" "}
        <input name="userId" value={text} onInput={(e) => setText(e.currentTarget.value)} />
      </label>
      <button type="submit">Show</button>
    </form>
  );
}

export function InstrumentsPage({ manager, user, setUser }) {
  const [message, setMessage] = useState(null);
  const base = { paymentManagerArn: manager.paymentManagerArn, userId: user };
  const p = usePages(async (nextToken) => {
    if (!user) return { items: [], next: null };
    const r = await call("ListPaymentInstruments", { ...base, maxResults: PAGE, nextToken });
    // The list carries summaries; the page's rows are read in full (masked as the API masks).
    const items = await Promise.all(
      (r.paymentInstruments || []).map((s) =>
        call("GetPaymentInstrument", {
          ...base,
          paymentConnectorId: s.paymentConnectorId,
          paymentInstrumentId: s.paymentInstrumentId,
        }).then((g) => g.paymentInstrument),
      ),
    );
    return { items, next: r.nextToken || null };
  }, [manager.paymentManagerArn, user]);
  return (
    <section>
      <h2>Instruments of {manager.name}</h2>
      <UserFilter user={user} setUser={setUser} />
      {message && <p class="notice">{message}</p>}
      <ErrorBox error={p.error} />
      {user && (
        <table data-testid="instruments">
          <thead>
            <tr>
              <th>Id</th>
              <th>Connector</th>
              <th>Network</th>
              <th>Wallet</th>
              <th>Linked accounts</th>
              <th>Status</th>
              <th>Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {p.items.map((i) => {
              const w = i.paymentInstrumentDetails.embeddedCryptoWallet || {};
              return (
                <tr key={i.paymentInstrumentId} data-id={i.paymentInstrumentId}>
                  <td class="mono">{i.paymentInstrumentId}</td>
                  <td class="mono">{i.paymentConnectorId}</td>
                  <td>{w.network}</td>
                  <td class="mono">{w.walletAddress}</td>
                  <td>{linkedText(w.linkedAccounts)}</td>
                  <td>{i.status}</td>
                  <td>{fmtTime(i.createdAt)}</td>
                  <td>
                    <ConfirmButton
                      label="Delete"
                      confirmLabel="Delete this instrument"
                      testid={`delete-${i.paymentInstrumentId}`}
                      onConfirm={async () => {
                        try {
                          await call("DeletePaymentInstrument", {
                            ...base,
                            paymentConnectorId: i.paymentConnectorId,
                            paymentInstrumentId: i.paymentInstrumentId,
                          });
                          setMessage(`Deleted instrument ${i.paymentInstrumentId}.`);
                        } catch (e) {
                          setMessage(`Could not delete: ${e.message}`);
                        }
                        p.reload();
                      }}
                    />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {user ? <Empty p={p} what="instruments" /> : <p class="muted">Name a user to list.</p>}
      {user && <Pager p={p} />}
    </section>
  );
}

export function SessionsPage({ manager, user, setUser }) {
  const [message, setMessage] = useState(null);
  const base = { paymentManagerArn: manager.paymentManagerArn, userId: user };
  const p = usePages(async (nextToken) => {
    if (!user) return { items: [], next: null };
    const r = await call("ListPaymentSessions", { ...base, maxResults: PAGE, nextToken });
    const items = await Promise.all(
      (r.paymentSessions || []).map((s) =>
        call("GetPaymentSession", { ...base, paymentSessionId: s.paymentSessionId }).then(
          (g) => g.paymentSession,
        ),
      ),
    );
    return { items, next: r.nextToken || null };
  }, [manager.paymentManagerArn, user]);
  return (
    <section>
      <h2>Sessions of {manager.name}</h2>
      <UserFilter user={user} setUser={setUser} />
      {message && <p class="notice">{message}</p>}
      <ErrorBox error={p.error} />
      {user && (
        <table data-testid="sessions">
          <thead>
            <tr>
              <th>Id</th>
              <th>Cap (USD)</th>
              <th>Spent (USD)</th>
              <th>Available (USD)</th>
              <th>Expires</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {p.items.map((s) => {
              const cap = s.limits && s.limits.maxSpendAmount.value;
              const avail =
                s.availableLimits &&
                s.availableLimits.availableSpendAmount &&
                s.availableLimits.availableSpendAmount.value;
              const created = typeof s.createdAt === "number" ? s.createdAt : Date.parse(s.createdAt) / 1000;
              const expires = created + s.expiryTimeInMinutes * 60;
              const expired = expires * 1000 <= Date.now();
              return (
                <tr key={s.paymentSessionId} data-id={s.paymentSessionId}>
                  <td class="mono">{s.paymentSessionId}</td>
                  <td>{cap || "no cap"}</td>
                  <td>{cap ? usdMinus(cap, avail) : "—"}</td>
                  <td>{avail || "—"}</td>
                  <td class={expired ? "muted" : ""}>
                    {fmtTime(expires)}
                    {expired ? " (expired)" : ""}
                  </td>
                  <td>
                    <ConfirmButton
                      label="Delete"
                      confirmLabel="Delete this session"
                      testid={`delete-${s.paymentSessionId}`}
                      onConfirm={async () => {
                        try {
                          await call("DeletePaymentSession", {
                            ...base,
                            paymentSessionId: s.paymentSessionId,
                          });
                          setMessage(`Deleted session ${s.paymentSessionId}.`);
                        } catch (e) {
                          setMessage(`Could not delete: ${e.message}`);
                        }
                        p.reload();
                      }}
                    />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {user ? <Empty p={p} what="sessions" /> : <p class="muted">Name a user to list.</p>}
      {user && <Pager p={p} />}
    </section>
  );
}

/** Exact decimal USD subtraction (6 decimals), never through floats. */
function usdMinus(a, b) {
  return formatUsd(micros(a) - micros(b || "0"), 2);
}
