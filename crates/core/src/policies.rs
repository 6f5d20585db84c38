//! Spending policies: per-user rolling caps (24 hours, 30 days) across all of a user's
//! sessions under a manager, a per-payment maximum, payee allow/deny lists; set per
//! manager and optionally per user (a user's members override the manager's, member by
//! member).
//!
//! Where each rule is enforced:
//! * the per-payment maximum and the payee lists depend on the payment alone: ProcessPayment
//!   checks them before the ledger ([`Effective::check_payment`]), with the policies read in
//!   the same statement as the session (`Store::payment_context`), so a manager without
//!   policies pays nothing more;
//! * the rolling caps depend on every other payment of the user: the ledger checks them
//!   inside its write transaction, in the same atomic step as the session reservation,
//!   after taking the user's turn (`PaymentTx::lock_user_spent`), so no concurrency on one
//!   node or many can beat them ([`RollingCaps::refusal`]).
//!
//! A refusal is a ValidationException whose message names the policy, and consumes
//! nothing: no session budget, no cap.
use time::{Duration, OffsetDateTime};

use crate::CoreError;
use crate::domain::SpendingPolicy;
use crate::money::{MICROS, format_usd};

/// The rolling windows.
pub const DAY: Duration = Duration::hours(24);
pub const MONTH: Duration = Duration::days(30);

/// Largest rolling cap: 1,000,000 USD.
pub const MAX_ROLLING_CAP: i64 = 1_000_000 * MICROS;
/// Largest per-payment maximum: the payment ceiling, 10,000 USD.
pub const MAX_PER_PAYMENT: i64 = crate::money::MAX_PAYMENT;
/// Largest payee list.
pub const MAX_PAYEES: usize = 1000;
/// Longest payee.
pub const MAX_PAYEE_LEN: usize = 128;

/// Policy names, as refusal messages and the refusal log give them.
pub const DAILY_CAP: &str = "daily-user-cap";
pub const MONTHLY_CAP: &str = "monthly-user-cap";
pub const MAX_PAYMENT: &str = "max-per-payment";
pub const PAYEE_ALLOW: &str = "payee-allow-list";
pub const PAYEE_DENY: &str = "payee-deny-list";

/// How payees are compared: an EVM address (`0x` + 40 hex digits) in lower case,
/// anything else (Solana base58, ...) exactly as written.
pub fn payee_key(payee: &str) -> String {
    let b = payee.as_bytes();
    if b.len() == 42
        && b[0] == b'0'
        && (b[1] == b'x' || b[1] == b'X')
        && b[2..].iter().all(u8::is_ascii_hexdigit)
    {
        payee.to_ascii_lowercase()
    } else {
        payee.to_string()
    }
}

/// Where a member of the effective policy comes from (for messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Manager,
    User,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::Manager => "set on the payment manager",
            Source::User => "set for this user",
        }
    }
}

/// The policy that applies to one user's payments: the manager's, each member the user's
/// policy sets replaced by the user's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effective {
    pub daily_cap: Option<(i64, Source)>,
    pub monthly_cap: Option<(i64, Source)>,
    pub max_per_payment: Option<(i64, Source)>,
    pub payee_allow: Option<(Vec<String>, Source)>,
    pub payee_deny: Option<(Vec<String>, Source)>,
}

impl Effective {
    pub fn of(manager: Option<&SpendingPolicy>, user: Option<&SpendingPolicy>) -> Effective {
        fn pick<T: Clone>(
            m: Option<&SpendingPolicy>,
            u: Option<&SpendingPolicy>,
            f: impl Fn(&SpendingPolicy) -> &Option<T>,
        ) -> Option<(T, Source)> {
            u.and_then(|u| f(u).clone().map(|v| (v, Source::User)))
                .or_else(|| m.and_then(|m| f(m).clone().map(|v| (v, Source::Manager))))
        }
        Effective {
            daily_cap: pick(manager, user, |p| &p.daily_cap),
            monthly_cap: pick(manager, user, |p| &p.monthly_cap),
            max_per_payment: pick(manager, user, |p| &p.max_per_payment),
            payee_allow: pick(manager, user, |p| &p.payee_allow),
            payee_deny: pick(manager, user, |p| &p.payee_deny),
        }
    }

    /// The members as a plain policy (what the extension API shows).
    pub fn policy(&self) -> SpendingPolicy {
        SpendingPolicy {
            daily_cap: self.daily_cap.map(|c| c.0),
            monthly_cap: self.monthly_cap.map(|c| c.0),
            max_per_payment: self.max_per_payment.map(|c| c.0),
            payee_allow: self.payee_allow.as_ref().map(|l| l.0.clone()),
            payee_deny: self.payee_deny.as_ref().map(|l| l.0.clone()),
        }
    }

    /// The rules that depend on the payment alone. Err: (policy name, the refusal).
    pub fn check_payment(&self, payee: &str, value: i64) -> Result<(), (&'static str, CoreError)> {
        if let Some((max, src)) = self.max_per_payment
            && value > max
        {
            return Err(denied(
                MAX_PAYMENT,
                format!(
                    "the payment of {} USD is above the maximum of {} USD per payment ({}).",
                    format_usd(value),
                    format_usd(max),
                    src.describe()
                ),
            ));
        }
        let key = payee_key(payee);
        if let Some((deny, src)) = &self.payee_deny
            && deny.iter().any(|d| *d == key)
        {
            return Err(denied(
                PAYEE_DENY,
                format!(
                    "payee '{payee}' is on the payee deny list ({}).",
                    src.describe()
                ),
            ));
        }
        if let Some((allow, src)) = &self.payee_allow
            && !allow.iter().any(|a| *a == key)
        {
            return Err(denied(
                PAYEE_ALLOW,
                format!(
                    "payee '{payee}' is not on the payee allow list ({}).",
                    src.describe()
                ),
            ));
        }
        Ok(())
    }

    /// The rules the ledger enforces in its transaction, if any.
    pub fn rolling(&self) -> Option<RollingCaps> {
        (self.daily_cap.is_some() || self.monthly_cap.is_some()).then_some(RollingCaps {
            daily: self.daily_cap,
            monthly: self.monthly_cap,
        })
    }
}

/// A user's rolling caps, checked by the ledger inside its write transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollingCaps {
    pub daily: Option<(i64, Source)>,
    pub monthly: Option<(i64, Source)>,
}

/// What a user has spent in each window, as the ledger's transaction sees it (committed
/// payments plus those reserved earlier in the same transaction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    pub day: i64,
    pub month: i64,
}

impl Spent {
    pub fn add(&mut self, value: i64) {
        self.day += value;
        self.month += value;
    }
}

impl RollingCaps {
    /// The refusal of a payment worth `value` by a user who has `spent` so far, if a cap
    /// does not leave room for it.
    pub fn refusal(
        &self,
        user_id: &str,
        spent: Spent,
        value: i64,
    ) -> Option<(&'static str, CoreError)> {
        for (cap, used, name, window) in [
            (self.daily, spent.day, DAILY_CAP, "24 hours"),
            (self.monthly, spent.month, MONTHLY_CAP, "30 days"),
        ] {
            if let Some((cap, src)) = cap
                && used.saturating_add(value) > cap
            {
                return Some(denied(
                    name,
                    format!(
                        "user '{user_id}' has spent {} USD in the last {window}; a payment of {} USD would exceed the cap of {} USD ({}).",
                        format_usd(used),
                        format_usd(value),
                        format_usd(cap),
                        src.describe()
                    ),
                ));
            }
        }
        None
    }
}

fn denied(name: &'static str, detail: String) -> (&'static str, CoreError) {
    (
        name,
        CoreError::rule(format!(
            "Payment denied by spending policy {name}: {detail}"
        )),
    )
}

/// The policy name a refusal message starts with, if it is a policy refusal.
pub fn policy_of(message: &str) -> Option<&'static str> {
    let rest = message.strip_prefix("Payment denied by spending policy ")?;
    [DAILY_CAP, MONTHLY_CAP, MAX_PAYMENT, PAYEE_ALLOW, PAYEE_DENY]
        .into_iter()
        .find(|n| rest.starts_with(&format!("{n}:")))
}

/// The start of each rolling window ending at `now` (payments strictly after count).
pub fn windows(now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    (now - DAY, now - MONTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(daily: Option<i64>, allow: Option<&[&str]>) -> SpendingPolicy {
        SpendingPolicy {
            daily_cap: daily,
            payee_allow: allow.map(|a| a.iter().map(|s| s.to_string()).collect()),
            ..SpendingPolicy::default()
        }
    }

    #[test]
    fn user_members_override_the_managers_one_by_one() {
        let m = p(Some(10), Some(&["a"]));
        let u = p(Some(20), None);
        let e = Effective::of(Some(&m), Some(&u));
        assert_eq!(e.daily_cap, Some((20, Source::User)));
        assert_eq!(
            e.payee_allow,
            Some((vec!["a".to_string()], Source::Manager))
        );
        assert_eq!(Effective::of(None, None), Effective::default());
        assert!(Effective::of(None, None).rolling().is_none());
    }

    #[test]
    fn rolling_caps_allow_exactly_up_to_the_cap() {
        let caps = RollingCaps {
            daily: Some((100, Source::Manager)),
            monthly: Some((150, Source::User)),
        };
        let spent = Spent { day: 60, month: 60 };
        assert!(caps.refusal("u", spent, 40).is_none());
        let e = caps.refusal("u", spent, 41).unwrap().1.to_string();
        assert!(
            e.starts_with("Payment denied by spending policy daily-user-cap: "),
            "{e}"
        );
        assert_eq!(policy_of(&e), Some(DAILY_CAP));
        let e = caps
            .refusal("u", Spent { day: 0, month: 120 }, 40)
            .unwrap()
            .1
            .to_string();
        assert_eq!(policy_of(&e), Some(MONTHLY_CAP));
    }

    #[test]
    fn payees_compare_evm_addresses_without_case() {
        let addr = "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01";
        assert_eq!(payee_key(addr), addr.to_lowercase());
        assert_eq!(payee_key("So1anaAddre55"), "So1anaAddre55");
        let e = Effective::of(Some(&p(None, Some(&[&addr.to_lowercase()]))), None);
        assert!(e.check_payment(addr, 1).is_ok());
        let (name, _) = e
            .check_payment("0x0000000000000000000000000000000000000001", 1)
            .unwrap_err();
        assert_eq!(name, PAYEE_ALLOW);
    }
}
