// The Purser web console: sign in with an access key, then browse the account's
// managers, connectors, instruments, sessions, payments and policies.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import * as api from "./api.js";
import { ErrorBox } from "./ui.jsx";
import { ConnectorsPage, InstrumentsPage, ManagersPage, SessionsPage } from "./resources.jsx";
import { LEDGER_PAGES } from "./ledger.jsx";

const PAGES = [
  ["managers", "Managers"],
  ["connectors", "Connectors"],
  ["instruments", "Instruments"],
  ["sessions", "Sessions"],
  ...LEDGER_PAGES.map((p) => [p.id, p.title]),
];

function useHash() {
  const read = () => (location.hash.replace(/^#\/?/, "") || "managers").split("?")[0];
  const [page, setPage] = useState(read());
  useEffect(() => {
    const on = () => setPage(read());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return page;
}

function Login({ onIn }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  return (
    <main class="login">
      <h1>Purser console</h1>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget);
          setBusy(true);
          setError(null);
          try {
            onIn(await api.login(String(f.get("accessKeyId")).trim(), String(f.get("secretAccessKey"))));
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <label>
          Access key id
          <input name="accessKeyId" autocomplete="username" required />
        </label>
        <label>
          Secret access key
          <input name="secretAccessKey" type="password" autocomplete="current-password" required />
        </label>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <ErrorBox error={error} />
      </form>
      <p class="muted">Sign in with an access key of this server's accounts.</p>
    </main>
  );
}

function ManagerPicker({ manager, setManager }) {
  const [list, setList] = useState([]);
  const [error, setError] = useState(null);
  useEffect(() => {
    // The picker offers the first page (100); the Managers page pages through all.
    api
      .call("ListPaymentManagers", { maxResults: 100 })
      .then((r) => {
        const ms = r.paymentManagers || [];
        setList(ms);
        if (!manager && ms.length) setManager(ms[0]);
      })
      .catch(setError);
  }, []);
  const options = manager && !list.some((m) => m.paymentManagerId === manager.paymentManagerId)
    ? [manager, ...list]
    : list;
  return (
    <label class="picker">
      Manager{" "}
      <select
        data-testid="manager-picker"
        value={manager ? manager.paymentManagerId : ""}
        onChange={(e) => setManager(options.find((m) => m.paymentManagerId === e.currentTarget.value))}
      >
        {options.map((m) => (
          <option key={m.paymentManagerId} value={m.paymentManagerId}>
            {m.name} ({m.paymentManagerId})
          </option>
        ))}
      </select>
      <ErrorBox error={error} />
    </label>
  );
}

function Console({ session, onOut }) {
  const page = useHash();
  const [manager, setManager] = useState(null);
  const [user, setUser] = useState("");
  const needsManager = page !== "managers";
  const ledger = LEDGER_PAGES.find((p) => p.id === page);
  let body;
  if (page === "managers") {
    body = (
      <ManagersPage
        onPick={(m) => {
          setManager(m);
          location.hash = "#/sessions";
        }}
      />
    );
  } else if (!manager) {
    body = <p class="muted">No payment manager yet.</p>;
  } else if (page === "connectors") {
    body = <ConnectorsPage manager={manager} />;
  } else if (page === "instruments") {
    body = <InstrumentsPage manager={manager} user={user} setUser={setUser} />;
  } else if (page === "sessions") {
    body = <SessionsPage manager={manager} user={user} setUser={setUser} />;
  } else if (ledger) {
    body = <ledger.Page manager={manager} user={user} setUser={setUser} />;
  } else {
    body = <p>Unknown page.</p>;
  }
  return (
    <div class="app">
      <header>
        <strong>Purser</strong>
        <nav>
          {PAGES.map(([id, title]) => (
            <a key={id} href={`#/${id}`} class={id === page ? "active" : ""}>
              {title}
            </a>
          ))}
        </nav>
        <span class="who" data-testid="who">
          account {session.accountId} · {session.accessKeyId}
        </span>
        <button
          type="button"
          onClick={async () => {
            try {
              await api.logout();
            } finally {
              onOut();
            }
          }}
        >
          Sign out
        </button>
      </header>
      {needsManager && <ManagerPicker manager={manager} setManager={setManager} />}
      <main>{body}</main>
    </div>
  );
}

function App() {
  const [session, setSession] = useState(undefined);
  useEffect(() => {
    api.currentSession().then(setSession, () => setSession(null));
  }, []);
  if (session === undefined) return <p class="muted">Loading…</p>;
  if (!session) return <Login onIn={setSession} />;
  return <Console session={session} onOut={() => setSession(null)} />;
}

render(<App />, document.getElementById("root"));
