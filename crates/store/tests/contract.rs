//! Store contract tests: every `Store` implementation must pass these. They run against
//! SQLite (a temporary file per test) and PostgreSQL (a fresh database per test on
//! `PURSER_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`;
//! skipped with a message when unreachable, a failure when the `CI` variable is set).
use std::sync::Arc;

use purser_core::domain::*;
use purser_core::store::*;
use purser_store::{PgStore, SqliteStore};
use time::{Duration, OffsetDateTime};

mod common;

async fn sqlite() -> Option<(Box<dyn std::any::Any + Send>, Arc<dyn Store>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("purser.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    Some((Box::new(dir), Arc::new(store)))
}

async fn postgres() -> Option<(Box<dyn std::any::Any + Send>, Arc<dyn Store>)> {
    let db = common::FreshPgDatabase::create().await?;
    let store = PgStore::open(&db.url, 4).await.unwrap();
    Some((Box::new(db), Arc::new(store)))
}

macro_rules! contract_tests {
    ($backend:ident) => {
fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn manager(account: &str, id: &str, name: &str) -> Manager {
    Manager {
        account_id: account.into(),
        id: id.into(),
        name: name.into(),
        description: None,
        authorizer_type: AuthorizerType::AwsIam,
        authorizer: None,
        role_arn: "arn:aws:iam::111122223333:role/r".into(),
        kms_key_arn: None,
        tags: [("k".to_string(), "v".to_string())].into(),
        status: ResourceStatus::Creating,
        created_at: t0(),
        updated_at: t0(),
        transition_at: Some(t0() + Duration::milliseconds(300)),
    }
}

fn connector(account: &str, manager_id: &str, id: &str) -> Connector {
    Connector {
        account_id: account.into(),
        manager_id: manager_id.into(),
        id: id.into(),
        name: id.into(),
        description: Some("d".into()),
        connector_type: ConnectorType::SelfCustody,
        provision_mode: None,
        credential: None,
        credentials_updated_at: None,
        status: ResourceStatus::Creating,
        created_at: t0(),
        updated_at: t0(),
        transition_at: Some(t0() + Duration::milliseconds(300)),
    }
}

fn idem<'a>(op: &'static str, token: &'a str, id: &'a str) -> IdempotencyWrite<'a> {
    IdempotencyWrite {
        operation: op,
        token,
        fingerprint: [1; 32],
        resource_id: id,
        at: t0(),
    }
}

#[tokio::test]
async fn manager_round_trip_names_and_tokens_are_unique() {
    let Some((_guard, s)) = $backend().await else { return };
    let m = manager("111122223333", "m1-aaaaaaaaaa", "m1");
    s.manager_insert(&m, Some(&idem("Create", "tok-1", &m.id)))
        .await
        .unwrap();
    assert_eq!(
        s.manager_get("111122223333", &m.id).await.unwrap(),
        Some(m.clone())
    );
    // other account sees nothing
    assert_eq!(s.manager_get("444455556666", &m.id).await.unwrap(), None);
    // same name in the account: duplicate name; the token is not recorded
    let dup = manager("111122223333", "m1-bbbbbbbbbb", "m1");
    assert!(matches!(
        s.manager_insert(&dup, Some(&idem("Create", "tok-2", &dup.id)))
            .await,
        Err(StoreError::Duplicate(Unique::Name))
    ));
    assert_eq!(
        s.idempotency_get("111122223333", "Create", "tok-2")
            .await
            .unwrap(),
        None
    );
    // same token: duplicate token, and the manager is not inserted
    let other = manager("111122223333", "m2-aaaaaaaaaa", "m2");
    assert!(matches!(
        s.manager_insert(&other, Some(&idem("Create", "tok-1", &other.id)))
            .await,
        Err(StoreError::Duplicate(Unique::ClientToken))
    ));
    assert_eq!(
        s.manager_get("111122223333", &other.id).await.unwrap(),
        None
    );
    let rec = s
        .idempotency_get("111122223333", "Create", "tok-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.resource_id, m.id);
    assert_eq!(rec.fingerprint, [1; 32]);
    // same name in another account is fine
    s.manager_insert(&manager("444455556666", "m1-cccccccccc", "m1"), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn manager_with_connectors_cannot_start_deleting() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    let m = manager(a, "m-aaaaaaaaaa", "m");
    s.manager_insert(&m, None).await.unwrap();
    let c = connector(a, &m.id, "c-aaaaaaaaaa");
    assert!(s.connector_insert(&c, None).await.unwrap());
    let later = t0() + Duration::seconds(1);
    assert_eq!(
        s.manager_start_delete(a, &m.id, later, later, None)
            .await
            .unwrap(),
        ManagerDelete::HasConnectors
    );
    assert!(
        s.connector_start_delete(a, &m.id, &c.id, later, later, None)
            .await
            .unwrap()
            .is_some()
    );
    // deleting twice: nothing to delete
    assert!(
        s.connector_start_delete(a, &m.id, &c.id, later, later, None)
            .await
            .unwrap()
            .is_none()
    );
    // A connector being deleted no longer blocks its manager's deletion (the SDK's
    // rollback deletes the connector and then the manager at once) ...
    let m_later = later + Duration::seconds(1);
    match s
        .manager_start_delete(a, &m.id, later, t0(), None)
        .await
        .unwrap()
    {
        ManagerDelete::Started(m) => assert_eq!(m.status, ResourceStatus::Deleting),
        other => panic!("{other:?}"),
    }
    // ... no connector may be created under a deleting manager ...
    assert!(
        !s.connector_insert(&connector(a, &m.id, "c2-aaaaaaaaaa"), None)
            .await
            .unwrap()
    );
    // ... and the manager is removed only once its connectors are gone: its own
    // transition is due (t0) before the connector's (later).
    s.complete_transitions(t0()).await.unwrap();
    assert!(s.connector_get(a, &m.id, &c.id).await.unwrap().is_some());
    assert_eq!(
        s.manager_get(a, &m.id).await.unwrap().map(|m| m.status),
        Some(ResourceStatus::Deleting)
    );
    s.complete_transitions(m_later).await.unwrap();
    assert_eq!(s.connector_get(a, &m.id, &c.id).await.unwrap(), None);
    assert_eq!(s.manager_get(a, &m.id).await.unwrap(), None);
    assert_eq!(
        s.manager_start_delete(a, &m.id, later, later, None)
            .await
            .unwrap(),
        ManagerDelete::NotFound
    );
}

#[tokio::test]
async fn transitions_complete_only_when_due() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    let m = manager(a, "m-aaaaaaaaaa", "m");
    s.manager_insert(&m, None).await.unwrap();
    assert_eq!(s.complete_transitions(t0()).await.unwrap(), 0);
    assert_eq!(
        s.manager_get(a, &m.id).await.unwrap().unwrap().status,
        ResourceStatus::Creating
    );
    let due = t0() + Duration::milliseconds(300);
    assert_eq!(s.complete_transitions(due).await.unwrap(), 1);
    let got = s.manager_get(a, &m.id).await.unwrap().unwrap();
    assert_eq!(got.status, ResourceStatus::Ready);
    assert_eq!(got.updated_at, due);
    assert_eq!(got.transition_at, None);
    assert_eq!(s.complete_transitions(due).await.unwrap(), 0);
}

#[tokio::test]
async fn lists_are_keyset_pages() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    for i in 0..7 {
        s.manager_insert(
            &manager(a, &format!("m{i}-aaaaaaaaaa"), &format!("m{i}")),
            None,
        )
        .await
        .unwrap();
    }
    s.manager_insert(&manager("444455556666", "x-aaaaaaaaaa", "x"), None)
        .await
        .unwrap();
    let p1 = s.manager_list(a, None, 3).await.unwrap();
    assert_eq!(
        p1.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["m0", "m1", "m2"]
    );
    // an insert between pages does not disturb the rest
    s.manager_insert(&manager(a, "m00-aaaaaaaaaa", "m00"), None)
        .await
        .unwrap();
    let p2 = s.manager_list(a, Some(&p1[2].id), 10).await.unwrap();
    assert_eq!(
        p2.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["m3", "m4", "m5", "m6"]
    );
}

#[tokio::test]
async fn provider_in_use_cannot_be_deleted() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    let p = CredentialProvider {
        account_id: a.into(),
        name: "cdp".into(),
        vendor: Vendor::CoinbaseCdp,
        key_id: "key".into(),
        authorization_id: None,
        secret_fields: vec!["apiKeySecret".into(), "walletSecret".into()],
        sealed_secrets: vec![1, 2, 3],
        tags: Tags::new(),
        created_at: t0(),
        updated_at: t0(),
    };
    s.provider_insert(&p).await.unwrap();
    assert!(matches!(
        s.provider_insert(&p).await,
        Err(StoreError::Duplicate(Unique::Name))
    ));
    assert_eq!(s.provider_get(a, "cdp").await.unwrap(), Some(p.clone()));
    let m = manager(a, "m-aaaaaaaaaa", "m");
    s.manager_insert(&m, None).await.unwrap();
    let mut c = connector(a, &m.id, "c-aaaaaaaaaa");
    c.connector_type = ConnectorType::CoinbaseCdp;
    c.credential = Some(CredentialRef {
        vendor: Vendor::CoinbaseCdp,
        arn: format!(
            "arn:aws:bedrock-agentcore:us-east-1:{a}:token-vault/default/paymentcredentialprovider/cdp"
        ),
    });
    assert!(s.connector_insert(&c, None).await.unwrap());
    assert_eq!(
        s.connector_get(a, &m.id, &c.id).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        s.provider_delete(a, "cdp").await.unwrap(),
        ProviderDelete::InUse
    );
    let later = t0() + Duration::seconds(1);
    s.connector_start_delete(a, &m.id, &c.id, later, later, None)
        .await
        .unwrap();
    s.complete_transitions(later).await.unwrap();
    assert_eq!(
        s.provider_delete(a, "cdp").await.unwrap(),
        ProviderDelete::Deleted
    );
    assert_eq!(
        s.provider_delete(a, "cdp").await.unwrap(),
        ProviderDelete::NotFound
    );
}

fn instrument(account: &str, id: &str, user: &str) -> Instrument {
    Instrument {
        account_id: account.into(),
        manager_id: "m-aaaaaaaaaa".into(),
        connector_id: "c-aaaaaaaaaa".into(),
        id: id.into(),
        user_id: user.into(),
        network: Network::Ethereum,
        wallet_address: "0x0000000000000000000000000000000000000001".into(),
        linked_accounts: LinkedAccounts {
            masked: "[]".into(),
            sealed: vec![9; 40],
        },
        sealed_key: vec![7; 120],
        holder: WalletHolder::SelfCustody,
        status: InstrumentStatus::Active,
        version: 1,
        created_at: t0(),
        updated_at: t0(),
    }
}

#[tokio::test]
async fn a_vendor_held_instrument_keeps_its_holder() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    let m = manager(a, "m-aaaaaaaaaa", "m");
    s.manager_insert(&m, None).await.unwrap();
    let i = Instrument {
        sealed_key: Vec::new(),
        holder: WalletHolder::Vendor {
            user_id: "2f1c0b9e-user".into(),
            wallet_id: "wallet-id-1".into(),
        },
        manager_id: m.id.clone(),
        ..instrument(a, "payment-instrument-VVVVVVVVVVVVVVV", "alice")
    };
    s.instrument_insert(&i, None).await.unwrap();
    // every way of reading an instrument gives the holder back (payment_context is the
    // hot path's own read on SQLite)
    assert_eq!(s.instrument_get(a, &i.id).await.unwrap(), Some(i.clone()));
    let ctx = s.payment_context(a, &m.id, "none", &i.id, None).await.unwrap();
    assert_eq!(ctx.instrument, Some(i));
}

#[tokio::test]
async fn instrument_soft_delete_is_versioned_and_kept() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    let i = instrument(a, "payment-instrument-AAAAAAAAAAAAAAA", "alice");
    s.instrument_insert(&i, None).await.unwrap();
    assert_eq!(s.instrument_get(a, &i.id).await.unwrap(), Some(i.clone()));
    let later = t0() + Duration::seconds(5);
    // a stale version loses
    assert!(!s.instrument_soft_delete(a, &i.id, 0, later).await.unwrap());
    assert!(s.instrument_soft_delete(a, &i.id, 1, later).await.unwrap());
    // deleting again (same version read before) loses: one winner
    assert!(!s.instrument_soft_delete(a, &i.id, 1, later).await.unwrap());
    let kept = s.instrument_get(a, &i.id).await.unwrap().unwrap();
    assert_eq!(kept.status, InstrumentStatus::Deleted);
    assert_eq!(kept.version, 2);
    assert_eq!(kept.created_at, t0());
    assert_eq!(kept.updated_at, later);
    assert!(
        s.instrument_list(a, "m-aaaaaaaaaa", "alice", None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn instrument_lists_are_per_owner_and_connector() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    for n in 0..5 {
        let mut i = instrument(a, &format!("payment-instrument-AAAAAAAAAAAAAA{n}"), "alice");
        if n % 2 == 1 {
            i.connector_id = "other-aaaaaaaaaa".into();
        }
        s.instrument_insert(&i, None).await.unwrap();
    }
    s.instrument_insert(
        &instrument(a, "payment-instrument-BBBBBBBBBBBBBBB", "bob"),
        None,
    )
    .await
    .unwrap();
    let all = s
        .instrument_list(a, "m-aaaaaaaaaa", "alice", None, None, 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    // the summary columns, and nothing else, come back
    assert_eq!(
        all[0],
        InstrumentSummary {
            account_id: a.into(),
            id: "payment-instrument-AAAAAAAAAAAAAA0".into(),
            manager_id: "m-aaaaaaaaaa".into(),
            connector_id: "c-aaaaaaaaaa".into(),
            user_id: "alice".into(),
            status: InstrumentStatus::Active,
            created_at: t0(),
            updated_at: t0(),
        }
    );
    let page = s
        .instrument_list(a, "m-aaaaaaaaaa", "alice", None, Some(&all[1].id), 2)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|i| &i.id).collect::<Vec<_>>(),
        [&all[2].id, &all[3].id]
    );
    let filtered = s
        .instrument_list(
            a,
            "m-aaaaaaaaaa",
            "alice",
            Some("other-aaaaaaaaaa"),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(filtered.len(), 2);
    assert_eq!(
        s.instrument_list(a, "m-aaaaaaaaaa", "bob", None, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

fn session(account: &str, id: &str, cap: Option<i64>, expires_in: Duration) -> Session {
    Session {
        account_id: account.into(),
        id: id.into(),
        manager_id: "m-aaaaaaaaaa".into(),
        user_id: "alice".into(),
        expiry_minutes: 60,
        expires_at: t0() + expires_in,
        cap,
        spent: 0,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn payment(
    account: &str,
    session_id: &str,
    n: usize,
    token: Option<&str>,
    debited: i64,
) -> Payment {
    Payment {
        account_id: account.into(),
        id: format!("00000000-0000-4000-8000-{n:012}"),
        session_id: session_id.into(),
        instrument_id: "payment-instrument-AAAAAAAAAAAAAAA".into(),
        manager_id: "m-aaaaaaaaaa".into(),
        user_id: "alice".into(),
        client_token: token.map(str::to_string),
        fingerprint: token.map(|_| [3; 32]),
        payment_type: "CRYPTO_X402".into(),
        version: "2".into(),
        scheme: "exact".into(),
        network: "eip155:84532".into(),
        payer: "0x01".into(),
        payee: "0x02".into(),
        asset: "0x03".into(),
        amount: debited.to_string(),
        debited,
        output: "{}".into(),
        created_at: t0(),
    }
}

#[tokio::test]
async fn reserve_checks_budget_expiry_and_existence() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    s.session_insert(&session(a, "s1", Some(250_000), Duration::hours(1)), None)
        .await
        .unwrap();
    s.session_insert(&session(a, "s2", None, Duration::hours(1)), None)
        .await
        .unwrap();
    s.session_insert(&session(a, "old", Some(1), Duration::seconds(1)), None)
        .await
        .unwrap();
    let mut tx = s.begin_payments().await.unwrap();
    assert_eq!(
        tx.reserve(a, "s1", 100_000, t0()).await.unwrap(),
        Reserve::Reserved {
            remaining: Some(150_000)
        }
    );
    assert_eq!(
        tx.reserve(a, "s1", 100_000, t0()).await.unwrap(),
        Reserve::Reserved {
            remaining: Some(50_000)
        }
    );
    assert_eq!(
        tx.reserve(a, "s1", 100_000, t0()).await.unwrap(),
        Reserve::Insufficient { remaining: 50_000 }
    );
    tx.release(a, "s1", 100_000).await.unwrap();
    assert_eq!(
        tx.reserve(a, "s2", 0, t0()).await.unwrap(),
        Reserve::Reserved { remaining: None }
    );
    assert_eq!(
        tx.reserve(a, "old", 1, t0() + Duration::seconds(1))
            .await
            .unwrap(),
        Reserve::Expired
    );
    assert_eq!(
        tx.reserve(a, "nope", 1, t0()).await.unwrap(),
        Reserve::NotFound
    );
    assert_eq!(
        tx.reserve("444455556666", "s1", 1, t0()).await.unwrap(),
        Reserve::NotFound
    );
    assert_eq!(
        tx.record_all(&[
            payment(a, "s1", 1, Some("tok"), 100_000),
            payment(a, "s1", 3, Some("other"), 0)
        ])
        .await
        .unwrap(),
        [true, true]
    );
    // a used token is reported per payment, the others are recorded, the batch goes on
    assert_eq!(
        tx.record_all(&[
            payment(a, "s1", 4, None, 0),
            payment(a, "s1", 2, Some("tok"), 100_000),
            payment(a, "s1", 5, Some("fresh"), 0)
        ])
        .await
        .unwrap(),
        [true, false, true]
    );
    tx.commit().await.unwrap();
    assert_eq!(
        s.session_get(a, "s1").await.unwrap().unwrap().spent,
        100_000
    );
    assert_eq!(
        s.payment_by_token(a, "tok").await.unwrap().unwrap().id,
        payment(a, "s1", 1, None, 0).id
    );
    assert_eq!(s.payments_of_session(a, "s1").await.unwrap().len(), 4);
    // a dropped transaction changes nothing
    let mut tx = s.begin_payments().await.unwrap();
    tx.reserve(a, "s1", 100_000, t0()).await.unwrap();
    drop(tx);
    assert_eq!(
        s.session_get(a, "s1").await.unwrap().unwrap().spent,
        100_000
    );
    // sessions are hard-deleted, payments stay
    assert!(s.session_delete(a, "s1").await.unwrap());
    assert!(!s.session_delete(a, "s1").await.unwrap());
    assert_eq!(s.session_get(a, "s1").await.unwrap(), None);
    assert!(s.payment_by_token(a, "tok").await.unwrap().is_some());
}

#[tokio::test]
async fn payment_context_reads_manager_session_instrument_and_replay_at_once() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    let m = manager(a, "m-aaaaaaaaaa", "m");
    s.manager_insert(&m, None).await.unwrap();
    let sess = session(a, "s1", Some(5), Duration::hours(1));
    s.session_insert(&sess, None).await.unwrap();
    let inst = instrument(a, "i1", "alice");
    s.instrument_insert(&inst, None).await.unwrap();
    // other accounts hold the same ids
    s.manager_insert(&manager("444455556666", "m-aaaaaaaaaa", "m"), None)
        .await
        .unwrap();
    s.session_insert(&session("444455556666", "s2", None, Duration::hours(1)), None)
        .await
        .unwrap();

    // payments under clientTokens, one of them also used in the other account
    let paid = payment(a, "s1", 1, Some("tok"), 0);
    let elsewhere = payment("444455556666", "s2", 2, Some("tok-2"), 0);
    let mut tx = s.begin_payments().await.unwrap();
    let recorded = [paid.clone(), payment(a, "s1", 3, None, 0), elsewhere];
    assert_eq!(tx.record_all(&recorded).await.unwrap(), [true; 3]);
    tx.commit().await.unwrap();

    let all = s
        .payment_context(a, &m.id, "s1", "i1", Some("tok"))
        .await
        .unwrap();
    assert_eq!(all.manager.as_ref(), Some(&m));
    assert_eq!(all.session.as_ref(), Some(&sess));
    assert_eq!(all.instrument.as_ref(), Some(&inst));
    assert_eq!(all.replay.as_ref(), Some(&paid));
    // no token, an unknown token, another account's token: no replay
    for token in [None, Some("unknown"), Some("tok-2")] {
        let ctx = s.payment_context(a, &m.id, "s1", "i1", token).await.unwrap();
        assert_eq!(ctx.replay, None, "{token:?}");
        assert_eq!(ctx.session.as_ref(), Some(&sess));
    }

    let none = s
        .payment_context(a, &m.id, "s2", "nope", None)
        .await
        .unwrap();
    assert_eq!(none.manager.as_ref(), Some(&m));
    assert_eq!((none.session, none.instrument), (None, None));
    let only_instrument = s
        .payment_context(a, &m.id, "nope", "i1", Some("tok"))
        .await
        .unwrap();
    assert_eq!(only_instrument.session, None);
    assert_eq!(only_instrument.instrument.as_ref(), Some(&inst));
    assert_eq!(only_instrument.replay.as_ref(), Some(&paid));
    assert_eq!(
        s.payment_context(a, "m-bbbbbbbbbb", "s1", "i1", Some("tok"))
            .await
            .unwrap(),
        PaymentContext::default()
    );
}

#[tokio::test]
async fn meta_keeps_the_first_value() {
    let Some((_guard, s)) = $backend().await else { return };
    assert_eq!(s.meta_put_if_absent("k", b"first").await.unwrap(), b"first");
    assert_eq!(s.meta_put_if_absent("k", b"second").await.unwrap(), b"first");
    // the master-key check: same key passes, another key is refused
    let v1 = purser_wallet::Vault::new(purser_wallet::MasterKey::generate());
    let v2 = purser_wallet::Vault::new(purser_wallet::MasterKey::generate());
    purser_core::check_master_key(&*s, &v1).await.unwrap();
    purser_core::check_master_key(&*s, &v1).await.unwrap();
    let err = purser_core::check_master_key(&*s, &v2).await.unwrap_err();
    assert!(err.contains("master key does not match"), "{err}");
}

/// The concurrent-overspend property: however the reservations interleave, the total
/// reserved never exceeds the cap and exactly floor(cap / amount) succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_never_overspend() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    s.session_insert(&session(a, "s", Some(1_050_000), Duration::hours(1)), None)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = s.begin_payments().await.unwrap();
            let r = tx.reserve(a, "s", 100_000, t0()).await.unwrap();
            if matches!(r, Reserve::Reserved { .. }) {
                let recorded = tx.record_all(&[payment(a, "s", n, None, 100_000)]).await;
                assert_eq!(recorded.unwrap(), [true]);
            }
            tx.commit().await.unwrap();
            r
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Reserve::Reserved { .. }) {
            ok += 1;
        }
    }
    assert_eq!(ok, 10);
    let sess = s.session_get(a, "s").await.unwrap().unwrap();
    assert_eq!(sess.spent, 1_000_000);
    assert_eq!(s.payments_of_session(a, "s").await.unwrap().len(), 10);
}

    };
}

mod on_sqlite {
    use super::*;
    contract_tests!(sqlite);
}

mod on_postgres {
    use super::*;
    contract_tests!(postgres);
}
