//! The operator's side of the ledger (issue 14): the payment history with filters and
//! keyset pagination, refusals, spend over time, and spending policies (see
//! `policies.rs` for how they are enforced). Served by the extension API
//! (`purser-server`'s `ext.rs`); always scoped to the caller's account.
use time::OffsetDateTime;

use crate::clock::{from_millis, to_millis};
use crate::domain::{Payment, Refusal, SpendingPolicy, StoredPolicy};
use crate::instruments::DataPlane;
use crate::money::{MICROS, parse_usd};
use crate::policies::{self, Effective};
use crate::store::{Keyset, PaymentFilter, RefusalFilter, SpendBucket};
use crate::{Caller, CoreError, CoreResult};

/// Default and largest page of the history's listings.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;
/// Largest number of buckets of one spend-over-time query.
pub const MAX_BUCKETS: i64 = 1000;

/// A page of a newest-first listing.
#[derive(Debug)]
pub struct HistoryPage<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Spend-over-time granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    pub fn parse(s: &str) -> Option<Bucket> {
        match s {
            "hour" => Some(Bucket::Hour),
            "day" => Some(Bucket::Day),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }
    pub fn millis(self) -> i64 {
        match self {
            Bucket::Hour => 3_600_000,
            Bucket::Day => 86_400_000,
        }
    }
}

/// The answer of a spend-over-time query.
#[derive(Debug)]
pub struct Spend {
    pub bucket: Bucket,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub points: Vec<SpendBucket>,
}

/// A user's effective policy and spend in its rolling windows, now.
#[derive(Debug)]
pub struct UserSpending {
    pub policy: SpendingPolicy,
    pub spent_day: i64,
    pub spent_month: i64,
}

fn check_user_scope(manager: &Option<String>, user: &Option<String>) -> CoreResult<()> {
    if user.is_some() && manager.is_none() {
        return Err(CoreError::validation(
            "userId",
            "userId requires managerId: payment users belong to a payment manager.",
        ));
    }
    Ok(())
}

fn check_range(from: Option<OffsetDateTime>, to: Option<OffsetDateTime>) -> CoreResult<()> {
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(CoreError::validation("from", "from must not be after to."));
    }
    Ok(())
}

fn page_size(max_results: Option<i64>) -> CoreResult<usize> {
    match max_results {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE as i64).contains(&n) => Ok(n as usize),
        Some(_) => Err(CoreError::validation(
            "maxResults",
            format!("maxResults must be between 1 and {MAX_PAGE}."),
        )),
    }
}

/// `<ms>:<id>`, the last row's position, carried by a pagination token.
fn keyset_text(at: OffsetDateTime, id: &str) -> String {
    format!("{}:{id}", to_millis(at))
}

fn keyset_parse(text: &str) -> CoreResult<Keyset> {
    let bad = || CoreError::validation("nextToken", "Invalid nextToken.");
    let (ms, id) = text.split_once(':').ok_or_else(bad)?;
    Ok(Keyset {
        created_at: from_millis(ms.parse().map_err(|_| bad())?),
        id: id.to_string(),
    })
}

fn payment_scope(caller: &Caller, f: &PaymentFilter) -> String {
    // Debug of the filter names every member: a token is valid for these filters only.
    format!("{}/ext/payments/{f:?}", caller.account_id)
}

fn refusal_scope(caller: &Caller, f: &RefusalFilter) -> String {
    format!("{}/ext/refusals/{f:?}", caller.account_id)
}

/// A policy amount in micro-USD: > 0, at most `max`, at most 6 decimals.
pub fn parse_policy_amount(field: &str, text: &str, max: i64) -> CoreResult<i64> {
    parse_usd(text)
        .filter(|v| *v > 0 && *v <= max)
        .ok_or_else(|| {
            CoreError::validation(
                field,
                format!(
                    "{field} must be a decimal number of USD greater than 0 and at most {}, with at most 6 decimal places.",
                    max / MICROS
                ),
            )
        })
}

/// A payee list as stored: each payee's key (`policies::payee_key`), checked.
pub fn parse_payee_list(field: &str, payees: Vec<String>) -> CoreResult<Vec<String>> {
    if payees.is_empty() || payees.len() > policies::MAX_PAYEES {
        return Err(CoreError::validation(
            field,
            format!(
                "{field} must hold between 1 and {} payees.",
                policies::MAX_PAYEES
            ),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(payees.len());
    for (i, p) in payees.iter().enumerate() {
        if p.is_empty()
            || p.len() > policies::MAX_PAYEE_LEN
            || p.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(CoreError::validation(
                &format!("{field}[{i}]"),
                format!(
                    "{field}[{i}] must be 1 to {} characters without spaces or control characters.",
                    policies::MAX_PAYEE_LEN
                ),
            ));
        }
        let key = policies::payee_key(p);
        if out.contains(&key) {
            return Err(CoreError::validation(
                &format!("{field}[{i}]"),
                format!("{field}[{i}] repeats payee '{p}'."),
            ));
        }
        out.push(key);
    }
    Ok(out)
}

impl DataPlane {
    /// The keyset a `nextToken` of `scope` stands for (None: the first page).
    fn keyset_before(&self, scope: &str, next_token: Option<&str>) -> CoreResult<Option<Keyset>> {
        next_token
            .map(|t| self.pages().decode(scope, t, "nextToken"))
            .transpose()?
            .map(|k| keyset_parse(&k))
            .transpose()
    }

    /// A page of `limit` rows out of `items` (read with `limit + 1`), with the token of
    /// the next page when there is one.
    fn page<T>(
        &self,
        scope: &str,
        mut items: Vec<T>,
        limit: usize,
        key: impl Fn(&T) -> (OffsetDateTime, &str),
    ) -> HistoryPage<T> {
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            let (at, id) = key(&items[limit - 1]);
            self.pages().encode(scope, &keyset_text(at, id))
        });
        HistoryPage { items, next }
    }

    /// One newest-first page of the account's payments.
    pub async fn history_payments(
        &self,
        caller: &Caller,
        filter: PaymentFilter,
        max_results: Option<i64>,
        next_token: Option<&str>,
    ) -> CoreResult<HistoryPage<Payment>> {
        check_user_scope(&filter.manager_id, &filter.user_id)?;
        check_range(filter.from, filter.to)?;
        let limit = page_size(max_results)?;
        let scope = payment_scope(caller, &filter);
        let before = self.keyset_before(&scope, next_token)?;
        let items = self
            .store()
            .payment_list(&caller.account_id, &filter, before.as_ref(), limit + 1)
            .await?;
        Ok(self.page(&scope, items, limit, |r| (r.created_at, &r.id)))
    }

    /// Every matching payment, newest first, a chunk at a time (for exports): the chunk
    /// after `before` (None: the first).
    pub async fn history_chunk(
        &self,
        caller: &Caller,
        filter: &PaymentFilter,
        before: Option<&Keyset>,
        size: usize,
    ) -> CoreResult<Vec<Payment>> {
        check_user_scope(&filter.manager_id, &filter.user_id)?;
        check_range(filter.from, filter.to)?;
        Ok(self
            .store()
            .payment_list(&caller.account_id, filter, before, size)
            .await?)
    }

    pub async fn history_refusals(
        &self,
        caller: &Caller,
        filter: RefusalFilter,
        max_results: Option<i64>,
        next_token: Option<&str>,
    ) -> CoreResult<HistoryPage<Refusal>> {
        check_user_scope(&filter.manager_id, &filter.user_id)?;
        check_range(filter.from, filter.to)?;
        let limit = page_size(max_results)?;
        let scope = refusal_scope(caller, &filter);
        let before = self.keyset_before(&scope, next_token)?;
        let items = self
            .store()
            .refusal_list(&caller.account_id, &filter, before.as_ref(), limit + 1)
            .await?;
        Ok(self.page(&scope, items, limit, |r| (r.created_at, &r.id)))
    }

    /// Spend per hour or day between `from` (default: 48 hours or 30 days before `to`)
    /// and `to` (default: now), both rounded out to whole buckets.
    pub async fn history_spend(
        &self,
        caller: &Caller,
        mut filter: PaymentFilter,
        bucket: Bucket,
    ) -> CoreResult<Spend> {
        check_user_scope(&filter.manager_id, &filter.user_id)?;
        check_range(filter.from, filter.to)?;
        let b = bucket.millis();
        let to = filter
            .to
            .map(to_millis)
            .unwrap_or_else(|| to_millis(self.now()));
        let to = to.div_euclid(b) * b + if to.rem_euclid(b) == 0 { 0 } else { b };
        let from = match filter.from {
            Some(f) => to_millis(f).div_euclid(b) * b,
            None => to - b * if bucket == Bucket::Hour { 48 } else { 30 },
        };
        if (to - from) / b > MAX_BUCKETS {
            return Err(CoreError::validation(
                "from",
                format!("At most {MAX_BUCKETS} buckets: narrow from/to or use a larger bucket."),
            ));
        }
        filter.from = Some(from_millis(from));
        filter.to = Some(from_millis(to));
        let points = self
            .store()
            .payment_buckets(&caller.account_id, &filter, b)
            .await?;
        Ok(Spend {
            bucket,
            from: from_millis(from),
            to: from_millis(to),
            points,
        })
    }

    async fn policy_manager(&self, caller: &Caller, manager_id: &str) -> CoreResult<()> {
        match self
            .store()
            .manager_get(&caller.account_id, manager_id)
            .await?
        {
            Some(_) => Ok(()),
            None => Err(CoreError::NotFound(format!(
                "Payment manager '{manager_id}' not found."
            ))),
        }
    }

    pub async fn policy_get(
        &self,
        caller: &Caller,
        manager_id: &str,
        user_id: Option<&str>,
    ) -> CoreResult<StoredPolicy> {
        self.store()
            .policy_get(&caller.account_id, manager_id, user_id)
            .await?
            .ok_or_else(|| no_policy(manager_id, user_id))
    }

    /// Set (replace) a policy. Takes effect for every payment the ledger handles after
    /// this returns, on every node: the ledger reads it from the database with each
    /// payment.
    pub async fn policy_put(
        &self,
        caller: &Caller,
        manager_id: &str,
        user_id: Option<&str>,
        policy: SpendingPolicy,
    ) -> CoreResult<StoredPolicy> {
        self.policy_manager(caller, manager_id).await?;
        let p = StoredPolicy {
            account_id: caller.account_id.clone(),
            manager_id: manager_id.to_string(),
            user_id: user_id.map(str::to_string),
            policy,
            updated_at: self.now(),
        };
        self.store().policy_put(&p).await?;
        Ok(p)
    }

    pub async fn policy_delete(
        &self,
        caller: &Caller,
        manager_id: &str,
        user_id: Option<&str>,
    ) -> CoreResult<()> {
        if self
            .store()
            .policy_delete(&caller.account_id, manager_id, user_id)
            .await?
        {
            Ok(())
        } else {
            Err(no_policy(manager_id, user_id))
        }
    }

    /// The manager's policy (first) and its users' policies, by user id.
    pub async fn policy_list(
        &self,
        caller: &Caller,
        manager_id: &str,
        max_results: Option<i64>,
        next_token: Option<&str>,
    ) -> CoreResult<HistoryPage<StoredPolicy>> {
        self.policy_manager(caller, manager_id).await?;
        let limit = page_size(max_results)?;
        let scope = format!("{}/ext/policies/{manager_id}", caller.account_id);
        let after = next_token
            .map(|t| self.pages().decode(&scope, t, "nextToken"))
            .transpose()?;
        let mut items = self
            .store()
            .policy_list(&caller.account_id, manager_id, after.as_deref(), limit + 1)
            .await?;
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            let last = items[limit - 1].user_id.as_deref().unwrap_or("");
            self.pages().encode(&scope, last)
        });
        Ok(HistoryPage { items, next })
    }

    /// What the effective policy of a user is and what they spent in its windows.
    pub async fn user_spending(
        &self,
        caller: &Caller,
        manager_id: &str,
        user_id: &str,
    ) -> CoreResult<UserSpending> {
        self.policy_manager(caller, manager_id).await?;
        let account = &caller.account_id;
        let m = self.store().policy_get(account, manager_id, None).await?;
        let u = self
            .store()
            .policy_get(account, manager_id, Some(user_id))
            .await?;
        let policy =
            Effective::of(m.as_ref().map(|p| &p.policy), u.as_ref().map(|p| &p.policy)).policy();
        let (day, month) = policies::windows(self.now());
        let (spent_day, spent_month) = self
            .store()
            .user_spent(account, manager_id, user_id, day, month)
            .await?;
        Ok(UserSpending {
            policy,
            spent_day,
            spent_month,
        })
    }
}

fn no_policy(manager_id: &str, user_id: Option<&str>) -> CoreError {
    CoreError::NotFound(match user_id {
        None => format!("No spending policy is set on payment manager '{manager_id}'."),
        Some(u) => {
            format!("No spending policy is set for user '{u}' of payment manager '{manager_id}'.")
        }
    })
}
