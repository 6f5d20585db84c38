// Small shared pieces: tables with server-side (keyset) pagination, errors, formatting.
import { useEffect, useState } from "preact/hooks";

export function fmtTime(t) {
  if (t === undefined || t === null || t === "") return "";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error.type ? `${error.type}: ` : ""}
      {error.message}
    </p>
  );
}

/**
 * Pages of a keyset-paginated list. `fetchPage(token)` returns {items, next}; the
 * tokens of the pages seen so far are kept so "Previous" goes back without the server
 * keeping anything. `deps` restarts from the first page.
 */
export function usePages(fetchPage, deps) {
  const [tokens, setTokens] = useState([null]);
  const [page, setPage] = useState({ items: [], next: null });
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);
  const [tick, setTick] = useState(0);
  const current = tokens[tokens.length - 1];

  useEffect(() => setTokens([null]), deps);
  useEffect(() => {
    let live = true;
    setLoading(true);
    setError(null);
    fetchPage(current)
      .then((p) => live && setPage(p))
      .catch((e) => live && (setError(e), setPage({ items: [], next: null })))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [current, tick, ...deps]);

  return {
    ...page,
    error,
    loading,
    pageNumber: tokens.length,
    hasPrev: tokens.length > 1,
    nextPage: () => page.next && setTokens([...tokens, page.next]),
    prevPage: () => tokens.length > 1 && setTokens(tokens.slice(0, -1)),
    reload: () => setTick(tick + 1),
  };
}

export function Pager({ p }) {
  return (
    <div class="pager">
      <button type="button" disabled={!p.hasPrev} onClick={p.prevPage}>
        ← Previous
      </button>
      <span>page {p.pageNumber}</span>
      <button type="button" disabled={!p.next} onClick={p.nextPage}>
        Next →
      </button>
      {p.loading && <span class="muted">loading…</span>}
    </div>
  );
}

/** A button that asks once more before it acts. */
export function ConfirmButton({ label, confirmLabel, onConfirm, testid }) {
  const [armed, setArmed] = useState(false);
  const [busy, setBusy] = useState(false);
  if (!armed) {
    return (
      <button type="button" class="danger" data-testid={testid} onClick={() => setArmed(true)}>
        {label}
      </button>
    );
  }
  return (
    <span class="confirm">
      <button
        type="button"
        class="danger"
        data-testid={testid && `${testid}-confirm`}
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          try {
            await onConfirm();
          } finally {
            setBusy(false);
            setArmed(false);
          }
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" onClick={() => setArmed(false)}>
        Cancel
      </button>
    </span>
  );
}

export function Empty({ p, what }) {
  if (p.loading || p.error || p.items.length) return null;
  return <p class="muted">No {what}.</p>;
}

/** A decimal USD string (at most 6 decimals) as integer micro-dollars (BigInt). */
export function micros(v) {
  const [i, f = ""] = String(v).split(".");
  return BigInt(i) * 1000000n + BigInt((f + "000000").slice(0, 6));
}

/** Micro-dollars as decimal USD with at least `places` decimals: 2 spells amounts as the
 * AgentCore API does ("4.90"), 6 as the extension API does ("0.350000"). */
export function formatUsd(m, places) {
  let n = BigInt(m);
  const neg = n < 0n;
  if (neg) n = -n;
  const f = (n % 1000000n).toString().padStart(6, "0").replace(/0+$/, "").padEnd(places, "0");
  return `${neg ? "-" : ""}${n / 1000000n}.${f}`;
}
