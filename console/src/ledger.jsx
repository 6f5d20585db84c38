// Payment history, refusals, spend over time and spending policies: the extension API
// (/purser/v1/...), reached through /console/api/ext/ with the signed-in account.
import { useEffect, useState } from "preact/hooks";
import { download, ext } from "./api.js";
import { ConfirmButton, Empty, ErrorBox, Pager, fmtTime, formatUsd, micros, usePages } from "./ui.jsx";

const PAGE = 25;

function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** A datetime-local value (the browser's local time) as RFC 3339 UTC, or "". */
function toRfc3339(local) {
  if (!local) return "";
  const d = new Date(local);
  return isNaN(d) ? "" : d.toISOString();
}

function HistoryFilters({ filters, setFilters, user, setUser, fields }) {
  const [draft, setDraft] = useState({ ...filters, userId: user });
  const set = (k) => (e) => setDraft({ ...draft, [k]: e.currentTarget.value });
  return (
    <form
      class="filters"
      data-testid="history-filters"
      onSubmit={(e) => {
        e.preventDefault();
        setUser(draft.userId.trim());
        setFilters({ ...draft, userId: undefined });
      }}
    >
      <label>
        User id <input name="userId" value={draft.userId} onInput={set("userId")} />
      </label>
      <label>
        Session id <input name="sessionId" value={draft.sessionId} onInput={set("sessionId")} />
      </label>
      {fields.includes("payee") && (
        <label>
          Payee <input name="payee" value={draft.payee} onInput={set("payee")} />
        </label>
      )}
      <label>
        From <input name="from" type="datetime-local" value={draft.from} onInput={set("from")} />
      </label>
      <label>
        To <input name="to" type="datetime-local" value={draft.to} onInput={set("to")} />
      </label>
      <button type="submit">Filter</button>
    </form>
  );
}

const NO_FILTERS = { sessionId: "", payee: "", from: "", to: "" };

function historyQuery(manager, user, f) {
  return {
    managerId: manager.paymentManagerId,
    userId: user,
    sessionId: f.sessionId.trim(),
    payee: f.payee.trim(),
    from: toRfc3339(f.from),
    to: toRfc3339(f.to),
  };
}

function PaymentsPage({ manager, user, setUser }) {
  const [f, setF] = useState(NO_FILTERS);
  const q = historyQuery(manager, user, f);
  const p = usePages(async (nextToken) => {
    const r = await ext("GET", `payments${qs({ ...q, maxResults: PAGE, nextToken })}`);
    return { items: r.payments || [], next: r.nextToken || null };
  }, [JSON.stringify(q)]);
  return (
    <section>
      <h2>Payments of {manager.name}</h2>
      <HistoryFilters filters={f} setFilters={setF} user={user} setUser={setUser} fields={["payee"]} />
      <Export query={q} />
      <ErrorBox error={p.error} />
      <table data-testid="payments">
        <thead>
          <tr>
            <th>Time</th>
            <th>User</th>
            <th>Agent</th>
            <th>Payment</th>
            <th>Session</th>
            <th>Instrument</th>
            <th>Kind</th>
            <th>Network</th>
            <th>Payee</th>
            <th class="num">Amount (atomic)</th>
            <th class="num">USD</th>
            <th class="num">Debited</th>
          </tr>
        </thead>
        <tbody>
          {p.items.map((x) => (
            <tr key={x.paymentId} data-id={x.paymentId}>
              <td>{fmtTime(x.createdAt)}</td>
              <td>{x.userId}</td>
              <td>{x.agentName || "—"}</td>
              <td class="mono">{x.paymentId}</td>
              <td class="mono">{x.paymentSessionId}</td>
              <td class="mono">{x.paymentInstrumentId}</td>
              <td>
                {x.paymentType} {x.scheme}
              </td>
              <td>{x.network}</td>
              <td class="mono">{x.payee}</td>
              <td class="num">{x.amount}</td>
              <td class="num">{x.value}</td>
              <td class="num">{x.debited}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Empty p={p} what="payments" />
      <Pager p={p} />
    </section>
  );
}

/** Every payment matching the filters, streamed by the server as CSV or JSON Lines. */
function Export({ query }) {
  const [error, setError] = useState(null);
  const get = (format, ext_) => async () => {
    setError(null);
    try {
      await download(`payments/export${qs({ ...query, format })}`, `purser-payments.${ext_}`);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div class="pager">
      <span class="muted">Export what matches:</span>
      <button type="button" onClick={get("csv", "csv")}>
        CSV
      </button>
      <button type="button" onClick={get("jsonl", "jsonl")}>
        JSON Lines
      </button>
      <ErrorBox error={error} />
    </div>
  );
}

function RefusalsPage({ manager, user, setUser }) {
  const [f, setF] = useState(NO_FILTERS);
  const q = { ...historyQuery(manager, user, f), payee: undefined };
  const p = usePages(async (nextToken) => {
    const r = await ext("GET", `refusals${qs({ ...q, maxResults: PAGE, nextToken })}`);
    return { items: r.refusals || [], next: r.nextToken || null };
  }, [JSON.stringify(q)]);
  return (
    <section>
      <h2>Refused payments of {manager.name}</h2>
      <HistoryFilters filters={f} setFilters={setF} user={user} setUser={setUser} fields={[]} />
      <ErrorBox error={p.error} />
      <table data-testid="refusals">
        <thead>
          <tr>
            <th>Time</th>
            <th>User</th>
            <th>Session</th>
            <th>Reason</th>
            <th>Payee</th>
            <th class="num">USD</th>
            <th>Message</th>
          </tr>
        </thead>
        <tbody>
          {p.items.map((x) => (
            <tr key={x.refusalId}>
              <td>{fmtTime(x.createdAt)}</td>
              <td>{x.userId}</td>
              <td class="mono">{x.paymentSessionId}</td>
              <td>
                {x.reason}
                {x.policy ? ` (${x.policy})` : ""}
              </td>
              <td class="mono">{x.payee}</td>
              <td class="num">{x.value}</td>
              <td>{x.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Empty p={p} what="refusals" />
      <Pager p={p} />
    </section>
  );
}

/** Bars of USD per bucket, hand-drawn in SVG. Heights are for the eye only; every label is
 * the exact decimal the server sent. */
export function SpendChart({ data }) {
  const points = data.points || [];
  const W = 900;
  const H = 260;
  const pad = { l: 70, r: 10, t: 12, b: 40 };
  const from = Date.parse(data.from);
  const to = Date.parse(data.to);
  const step = data.bucket === "day" ? 86400000 : 3600000;
  const n = Math.max(1, Math.round((to - from) / step));
  const max = Math.max(...points.map((p) => Number(p.value)), 0);
  const top = max > 0 ? max : 1;
  const bw = (W - pad.l - pad.r) / n;
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / top);
  const ticks = [0, 0.5, 1].map((t) => t * top);
  return (
    <svg class="chart" data-testid="spend-chart" viewBox={`0 0 ${W} ${H}`} width="100%" role="img"
      aria-label={`spend per ${data.bucket}`}>
      {ticks.map((t) => (
        <g key={t}>
          <line x1={pad.l} x2={W - pad.r} y1={y(t)} y2={y(t)} />
          <text x={pad.l - 6} y={y(t) + 4} text-anchor="end">
            {t.toFixed(t >= 1 ? 2 : 6)}
          </text>
        </g>
      ))}
      {points.map((p) => {
        const i = Math.floor((Date.parse(p.start) - from) / step);
        const v = Number(p.value);
        return (
          <rect class="bar" key={p.start} data-start={p.start} data-value={p.value}
            x={pad.l + i * bw + 1} width={Math.max(1, bw - 2)} y={y(v)} height={Math.max(1, H - pad.b - y(v))}>
            <title>{`${fmtTime(p.start)}: ${p.value} USD in ${p.payments} payment(s)`}</title>
          </rect>
        );
      })}
      <text x={pad.l} y={H - 12}>{fmtTime(data.from)}</text>
      <text x={W - pad.r} y={H - 12} text-anchor="end">{fmtTime(data.to)}</text>
    </svg>
  );
}

function SpendPage({ manager, user, setUser }) {
  const [bucket, setBucket] = useState("hour");
  const [scope, setScope] = useState("manager");
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const userScoped = scope === "user" && user;
  useEffect(() => {
    setError(null);
    ext("GET", `spend${qs({ bucket, managerId: manager.paymentManagerId, userId: userScoped ? user : "" })}`)
      .then(setData, (e) => (setError(e), setData(null)));
  }, [bucket, manager.paymentManagerId, userScoped ? user : ""]);
  const total = data ? data.points.reduce((a, p) => a + micros(p.value), 0n) : 0n;
  const count = data ? data.points.reduce((a, p) => a + p.payments, 0) : 0;
  return (
    <section>
      <h2>Spend over time — {manager.name}</h2>
      <div class="filters">
        <label>
          Bucket{" "}
          <select name="bucket" value={bucket} onChange={(e) => setBucket(e.currentTarget.value)}>
            <option value="hour">hour (last 48 hours)</option>
            <option value="day">day (last 30 days)</option>
          </select>
        </label>
        <label>
          Scope{" "}
          <select name="scope" value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
            <option value="manager">whole manager</option>
            <option value="user">one user</option>
          </select>
        </label>
        {scope === "user" && (
          <label>
            User id{" "}
            <input name="userId" value={user} onChange={(e) => setUser(e.currentTarget.value.trim())} />
          </label>
        )}
      </div>
      <ErrorBox error={error} />
      {data && (
        <>
          <p data-testid="spend-total">
            {count} payment(s), {formatUsd(total, 6)} USD
          </p>
          <SpendChart data={data} />
        </>
      )}
    </section>
  );
}

const POLICY_FIELDS = [
  ["maxPerPayment", "Most per payment (USD)"],
  ["dailyCap", "Per user, rolling 24 hours (USD)"],
  ["monthlyCap", "Per user, rolling 30 days (USD)"],
];

function policyPath(manager, userId) {
  const m = encodeURIComponent(manager.paymentManagerId);
  return userId ? `managers/${m}/users/${encodeURIComponent(userId)}/policy` : `managers/${m}/policy`;
}

function PolicyEditor({ manager, userId, initial, onSaved }) {
  const [draft, setDraft] = useState(() => toDraft(initial));
  const [error, setError] = useState(null);
  const [note, setNote] = useState(null);
  useEffect(() => setDraft(toDraft(initial)), [initial]);
  const set = (k) => (e) => setDraft({ ...draft, [k]: e.currentTarget.value });
  const who = userId ? `user ${userId}` : "the whole manager";
  return (
    <form
      class="policy"
      data-testid={userId ? `policy-${userId}` : "policy-manager"}
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        setNote(null);
        try {
          await ext("PUT", policyPath(manager, userId), fromDraft(draft));
          setNote(`Saved the policy of ${who}.`);
          onSaved();
        } catch (err) {
          setError(err);
        }
      }}
    >
      <h3>Policy of {who}</h3>
      <div class="filters">
        {POLICY_FIELDS.map(([k, label]) => (
          <label key={k}>
            {label}
            <input name={k} value={draft[k]} onInput={set(k)} placeholder="no limit" inputmode="decimal" />
          </label>
        ))}
      </div>
      <div class="filters">
        <label>
          Payee allow-list (one per line; empty: any payee)
          <textarea name="payeeAllowList" rows="3" cols="48" value={draft.payeeAllowList} onInput={set("payeeAllowList")} />
        </label>
        <label>
          Payee deny-list (one per line)
          <textarea name="payeeDenyList" rows="3" cols="48" value={draft.payeeDenyList} onInput={set("payeeDenyList")} />
        </label>
      </div>
      <button type="submit">Save policy</button>{" "}
      {initial && (
        <ConfirmButton
          label="Remove policy"
          confirmLabel={`Remove the policy of ${who}`}
          testid={userId ? `remove-policy-${userId}` : "remove-policy-manager"}
          onConfirm={async () => {
            try {
              await ext("DELETE", policyPath(manager, userId));
              setNote(`Removed the policy of ${who}.`);
              onSaved();
            } catch (err) {
              setError(err);
            }
          }}
        />
      )}
      {note && <p class="notice">{note}</p>}
      <ErrorBox error={error} />
    </form>
  );
}

function toDraft(policy) {
  const p = policy || {};
  const d = {};
  for (const [k] of POLICY_FIELDS) d[k] = p[k] ? trimZeros(p[k]) : "";
  d.payeeAllowList = (p.payeeAllowList || []).join("\n");
  d.payeeDenyList = (p.payeeDenyList || []).join("\n");
  return d;
}

function trimZeros(v) {
  return String(v).includes(".") ? String(v).replace(/0+$/, "").replace(/\.$/, "") : String(v);
}

function fromDraft(d) {
  const out = {};
  for (const [k] of POLICY_FIELDS) if (d[k].trim()) out[k] = d[k].trim();
  const list = (s) => s.split(/\s+/).map((x) => x.trim()).filter(Boolean);
  if (list(d.payeeAllowList).length) out.payeeAllowList = list(d.payeeAllowList);
  if (list(d.payeeDenyList).length) out.payeeDenyList = list(d.payeeDenyList);
  return out;
}

function describe(policy) {
  const parts = [];
  for (const [k, label] of POLICY_FIELDS) if (policy[k]) parts.push(`${label}: ${trimZeros(policy[k])}`);
  if (policy.payeeAllowList) parts.push(`allow ${policy.payeeAllowList.length} payee(s)`);
  if (policy.payeeDenyList) parts.push(`deny ${policy.payeeDenyList.length} payee(s)`);
  return parts.join("; ") || "no limits";
}

function PoliciesPage({ manager, user, setUser }) {
  const [tick, setTick] = useState(0);
  const [editUser, setEditUser] = useState(user);
  const p = usePages(async (nextToken) => {
    const r = await ext("GET", `managers/${encodeURIComponent(manager.paymentManagerId)}/policies${qs({ maxResults: PAGE, nextToken })}`);
    return { items: r.policies || [], next: r.nextToken || null };
  }, [manager.paymentManagerId, tick]);
  const managerPolicy = p.items.find((x) => x.userId === null && !p.hasPrev);
  const [userPolicy, setUserPolicy] = useState(null);
  useEffect(() => {
    setUserPolicy(null);
    if (!user) return;
    ext("GET", policyPath(manager, user)).then(
      (r) => setUserPolicy(r.policy),
      () => setUserPolicy(null),
    );
  }, [manager.paymentManagerId, user, tick]);
  const saved = () => setTick(tick + 1);
  return (
    <section>
      <h2>Spending policies — {manager.name}</h2>
      <PolicyEditor manager={manager} userId={null} initial={managerPolicy ? managerPolicy.policy : null} onSaved={saved} />
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setUser(editUser.trim());
        }}
      >
        <label>
          Edit a user's policy: user id{" "}
          <input name="policyUser" value={editUser} onInput={(e) => setEditUser(e.currentTarget.value)} />
        </label>
        <button type="submit">Open</button>
      </form>
      {user && <PolicyEditor manager={manager} userId={user} initial={userPolicy} onSaved={saved} />}
      <h3>Every policy of this manager</h3>
      <ErrorBox error={p.error} />
      <table data-testid="policies">
        <thead>
          <tr>
            <th>User</th>
            <th>Policy</th>
            <th>Updated</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {p.items.map((x) => (
            <tr key={x.userId || "(manager)"}>
              <td>{x.userId || "(whole manager)"}</td>
              <td>{describe(x.policy)}</td>
              <td>{fmtTime(x.updatedAt)}</td>
              <td>
                {x.userId && (
                  <button type="button" onClick={() => (setEditUser(x.userId), setUser(x.userId))}>
                    Edit
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Empty p={p} what="policies" />
      <Pager p={p} />
    </section>
  );
}

export const LEDGER_PAGES = [
  { id: "payments", title: "Payments", Page: PaymentsPage },
  { id: "refusals", title: "Refusals", Page: RefusalsPage },
  { id: "spend", title: "Spend", Page: SpendPage },
  { id: "policies", title: "Policies", Page: PoliciesPage },
];
