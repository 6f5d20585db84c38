//! Purser's metrics: a small in-process registry rendered in the Prometheus text format
//! (version 0.0.4). Every metric Purser exports is declared here, once, so the list in the
//! README and what `/metrics` serves cannot drift apart.
//!
//! Recording takes one uncontended mutex and a map lookup; the hot paths record once per
//! request (the pipeline) or once per ledger batch, never per statement.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};

/// Latency buckets, seconds.
pub const LATENCY: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Ledger batch sizes (the ledger takes at most 256 payments per batch).
pub const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

#[derive(Debug)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram(&'static [f64]),
}

/// One metric family: its name, help text and kind.
#[derive(Debug)]
pub struct Metric {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

pub static REQUESTS: Metric = Metric {
    name: "purser_requests_total",
    help: "AgentCore requests answered, by operation (\"unknown\" when no operation matched) and HTTP status.",
    kind: Kind::Counter,
};
pub static REQUEST_SECONDS: Metric = Metric {
    name: "purser_request_duration_seconds",
    help: "Time from receiving an AgentCore request to its answer, by operation and HTTP status.",
    kind: Kind::Histogram(LATENCY),
};
pub static PAYMENTS: Metric = Metric {
    name: "purser_payments_total",
    help: "Payments signed and durably recorded, by payment type, scheme and network.",
    kind: Kind::Counter,
};
pub static PAYMENT_AMOUNT: Metric = Metric {
    name: "purser_payment_amount_atomic_total",
    help: "Sum of the amounts of signed payments in the asset's atomic units (USDC: 6 decimals), by payment type, scheme and network.",
    kind: Kind::Counter,
};
pub static REFUSALS: Metric = Metric {
    name: "purser_payment_refusals_total",
    help: "ProcessPayment requests refused (nothing signed, no budget used), by reason.",
    kind: Kind::Counter,
};
pub static LEDGER_BATCH: Metric = Metric {
    name: "purser_ledger_batch_size",
    help: "Payments per ledger batch (one write transaction, one durable commit).",
    kind: Kind::Histogram(BATCH),
};
pub static LEDGER_COMMIT_SECONDS: Metric = Metric {
    name: "purser_ledger_commit_seconds",
    help: "Time of the ledger's durable commit, per batch.",
    kind: Kind::Histogram(LATENCY),
};
pub static LEDGER_BATCH_SECONDS: Metric = Metric {
    name: "purser_ledger_batch_seconds",
    help: "Time of a whole ledger batch: reserve, sign, record, commit.",
    kind: Kind::Histogram(LATENCY),
};
pub static DB_POOL: Metric = Metric {
    name: "purser_db_pool_connections",
    help: "Connections of the database pool, by state (in_use, idle), when scraped.",
    kind: Kind::Gauge,
};
pub static DB_POOL_MAX: Metric = Metric {
    name: "purser_db_pool_max_connections",
    help: "Largest number of connections the database pool opens.",
    kind: Kind::Gauge,
};
pub static CHAIN_RPC_SECONDS: Metric = Metric {
    name: "purser_chain_rpc_duration_seconds",
    help: "Chain JSON-RPC calls (each attempt), by chain and method.",
    kind: Kind::Histogram(LATENCY),
};
pub static CHAIN_RPC_ERRORS: Metric = Metric {
    name: "purser_chain_rpc_errors_total",
    help: "Chain JSON-RPC calls that failed (unreachable, timeout, HTTP or JSON-RPC error, bad answer), by chain and method.",
    kind: Kind::Counter,
};
pub static JWKS_FETCHES: Metric = Metric {
    name: "purser_jwks_fetches_total",
    help: "CUSTOM_JWT issuer fetches (discovery document and JWKS), by result (ok, error).",
    kind: Kind::Counter,
};

/// Every family, in the order `/metrics` renders them.
pub static ALL: &[&Metric] = &[
    &REQUESTS,
    &REQUEST_SECONDS,
    &PAYMENTS,
    &PAYMENT_AMOUNT,
    &REFUSALS,
    &LEDGER_BATCH,
    &LEDGER_COMMIT_SECONDS,
    &LEDGER_BATCH_SECONDS,
    &DB_POOL,
    &DB_POOL_MAX,
    &CHAIN_RPC_SECONDS,
    &CHAIN_RPC_ERRORS,
    &JWKS_FETCHES,
];

type Labels = Vec<(&'static str, String)>;

enum Series {
    Counter(u128),
    Gauge(f64),
    Histogram {
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

static REGISTRY: LazyLock<Mutex<BTreeMap<&'static str, BTreeMap<Labels, Series>>>> =
    LazyLock::new(Default::default);

impl Metric {
    fn with(&self, labels: &[(&'static str, &str)], f: impl FnOnce(&mut Series)) {
        let key: Labels = labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        let series = reg
            .entry(self.name)
            .or_default()
            .entry(key)
            .or_insert_with(|| match self.kind {
                Kind::Counter => Series::Counter(0),
                Kind::Gauge => Series::Gauge(0.0),
                Kind::Histogram(b) => Series::Histogram {
                    counts: vec![0; b.len()],
                    sum: 0.0,
                    count: 0,
                },
            });
        f(series)
    }

    /// Add one to a counter.
    pub fn inc(&self, labels: &[(&'static str, &str)]) {
        self.add(labels, 1)
    }

    /// Add `n` to a counter.
    pub fn add(&self, labels: &[(&'static str, &str)], n: u128) {
        self.with(labels, |s| {
            if let Series::Counter(v) = s {
                *v = v.saturating_add(n)
            }
        })
    }

    /// Set a gauge.
    pub fn set(&self, labels: &[(&'static str, &str)], value: f64) {
        self.with(labels, |s| {
            if let Series::Gauge(v) = s {
                *v = value
            }
        })
    }

    /// Record one observation in a histogram.
    pub fn observe(&self, labels: &[(&'static str, &str)], value: f64) {
        let Kind::Histogram(bounds) = self.kind else {
            return;
        };
        self.with(labels, |s| {
            if let Series::Histogram { counts, sum, count } = s {
                if let Some(i) = bounds.iter().position(|b| value <= *b) {
                    counts[i] += 1;
                }
                *sum += value;
                *count += 1;
            }
        })
    }
}

/// Every family in the Prometheus text format.
pub fn render() -> String {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::with_capacity(8192);
    for m in ALL {
        let kind = match m.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram(_) => "histogram",
        };
        let _ = writeln!(out, "# HELP {} {}", m.name, m.help);
        let _ = writeln!(out, "# TYPE {} {kind}", m.name);
        let Some(family) = reg.get(m.name) else {
            continue;
        };
        for (labels, series) in family {
            match series {
                Series::Counter(v) => {
                    let _ = writeln!(out, "{}{} {v}", m.name, label_text(labels, None));
                }
                Series::Gauge(v) => {
                    let _ = writeln!(out, "{}{} {}", m.name, label_text(labels, None), num(*v));
                }
                Series::Histogram { counts, sum, count } => {
                    let Kind::Histogram(bounds) = m.kind else {
                        continue;
                    };
                    let mut cumulative = 0;
                    for (b, c) in bounds.iter().zip(counts) {
                        cumulative += c;
                        let le = num(*b);
                        let _ = writeln!(
                            out,
                            "{}_bucket{} {cumulative}",
                            m.name,
                            label_text(labels, Some(&le))
                        );
                    }
                    let _ = writeln!(
                        out,
                        "{}_bucket{} {count}",
                        m.name,
                        label_text(labels, Some("+Inf"))
                    );
                    let _ = writeln!(
                        out,
                        "{}_sum{} {}",
                        m.name,
                        label_text(labels, None),
                        num(*sum)
                    );
                    let _ = writeln!(out, "{}_count{} {count}", m.name, label_text(labels, None));
                }
            }
        }
    }
    out
}

fn num(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn label_text(labels: &Labels, le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut out = String::from("{");
    let mut first = true;
    let pairs = labels
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(le.map(|le| ("le", le)));
    for (k, v) in pairs {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    static TEST_COUNTER: Metric = Metric {
        name: "purser_requests_total",
        help: "",
        kind: Kind::Counter,
    };

    #[test]
    fn renders_counters_histograms_and_escapes() {
        TEST_COUNTER.inc(&[("operation", "Op\"x\\"), ("status", "200")]);
        TEST_COUNTER.add(&[("operation", "Op\"x\\"), ("status", "200")], 2);
        REQUEST_SECONDS.observe(&[("operation", "T"), ("status", "200")], 0.003);
        REQUEST_SECONDS.observe(&[("operation", "T"), ("status", "200")], 100.0);
        let text = render();
        assert!(
            text.contains("purser_requests_total{operation=\"Op\\\"x\\\\\",status=\"200\"} 3"),
            "{text}"
        );
        assert!(text.contains(
            "purser_request_duration_seconds_bucket{operation=\"T\",status=\"200\",le=\"0.0025\"} 0"
        ));
        assert!(text.contains(
            "purser_request_duration_seconds_bucket{operation=\"T\",status=\"200\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "purser_request_duration_seconds_bucket{operation=\"T\",status=\"200\",le=\"+Inf\"} 2"
        ));
        assert!(
            text.contains(
                "purser_request_duration_seconds_count{operation=\"T\",status=\"200\"} 2"
            )
        );
        assert!(text.contains("# TYPE purser_ledger_batch_size histogram"));
    }
}
