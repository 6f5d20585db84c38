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
        value: debited,
        agent_name: Some("shopper".into()),
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

fn sealed_instrument(vault: &purser_wallet::Vault, account: &str, id: &str, network: Network) -> Instrument {
    use purser_core::keycare::aad;
    let row = |kind| SealedRow {
        kind,
        account_id: account.into(),
        id: id.into(),
        value: Vec::new(),
        wallet: None,
    };
    let kind = match network {
        Network::Ethereum => purser_wallet::KeyKind::Secp256k1,
        Network::Solana => purser_wallet::KeyKind::Ed25519,
    };
    let wallet = vault.create_wallet(kind, &aad(&row(SealedKind::WalletKey)));
    let mut i = instrument(account, id, "alice");
    i.network = network;
    i.wallet_address = wallet.address;
    i.sealed_key = wallet.sealed_key;
    i.linked_accounts.sealed = vault.seal(&aad(&row(SealedKind::LinkedAccounts)), b"[{\"email\":\"a@example.com\"}]");
    i
}

/// A store with one sealed credential provider and `n` instruments (the last one
/// soft-deleted: its key must be re-sealed too), sealed under `vault`.
async fn sealed_fixture(s: &dyn Store, vault: &purser_wallet::Vault, n: usize) {
    let a = "111122223333";
    purser_core::check_master_key(s, vault).await.unwrap();
    let provider_row = SealedRow {
        kind: SealedKind::ProviderSecrets,
        account_id: a.into(),
        id: "cdp".into(),
        value: Vec::new(),
        wallet: None,
    };
    let p = CredentialProvider {
        account_id: a.into(),
        name: "cdp".into(),
        vendor: Vendor::CoinbaseCdp,
        key_id: "key".into(),
        authorization_id: None,
        secret_fields: vec!["apiKeySecret".into()],
        sealed_secrets: vault.seal(&purser_core::keycare::aad(&provider_row), b"secret"),
        tags: Tags::new(),
        created_at: t0(),
        updated_at: t0(),
    };
    s.provider_insert(&p).await.unwrap();
    for k in 0..n {
        let network = if k % 3 == 0 { Network::Solana } else { Network::Ethereum };
        let account = if k % 2 == 0 { a } else { "444455556666" };
        let i = sealed_instrument(vault, account, &format!("payment-instrument-{k:015}"), network);
        s.instrument_insert(&i, None).await.unwrap();
        if k == n - 1 {
            assert!(s.instrument_soft_delete(account, &i.id, 1, t0()).await.unwrap());
        }
    }
    // A wallet held by a vendor: its linked accounts are sealed, it has no key to seal.
    let mut held = sealed_instrument(vault, a, "payment-instrument-vendorheld0001", Network::Ethereum);
    held.sealed_key = Vec::new();
    held.holder = WalletHolder::Vendor {
        user_id: "end-user".into(),
        wallet_id: "wallet".into(),
    };
    s.instrument_insert(&held, None).await.unwrap();
}

#[tokio::test]
async fn key_rotation_reseals_every_value_in_one_transaction() {
    use purser_core::keycare::{self, Rotated, Sealing};
    use purser_wallet::{MasterKey, Vault};
    let Some((_guard, s)) = $backend().await else { return };
    let v1 = Vault::new(MasterKey::generate());
    let v2 = Vault::new(MasterKey::generate());
    sealed_fixture(&*s, &v1, 25).await;
    let counts = vec![
        (SealedKind::ProviderSecrets, 1),
        (SealedKind::WalletKey, 25),
        (SealedKind::LinkedAccounts, 26),
    ];
    let report = keycare::check(&*s, &v1).await.unwrap();
    assert_eq!(report.counts, counts);
    assert_eq!(report.failures, vec![]);
    assert_eq!(keycare::check(&*s, &v2).await.unwrap().failures.len(), 52);

    // keyset pages of sealed values, in (account, id) order
    let mut seen = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let page = s
            .sealed_page(SealedKind::WalletKey, after.as_ref().map(|(a, i)| (a.as_str(), i.as_str())), 10)
            .await
            .unwrap();
        seen.extend(page.iter().map(|r| (r.account_id.clone(), r.id.clone())));
        match page.last() {
            Some(l) if page.len() == 10 => after = Some((l.account_id.clone(), l.id.clone())),
            _ => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 25);

    // a re-seal that fails half-way changes nothing, not even the meta entries
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let failing = |row: &SealedRow| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 30 {
            Err("stop".to_string())
        } else {
            v1.rewrap(&keycare::aad(row), &row.value, &v2).map_err(|e| e.to_string())
        }
    };
    let err = s
        .reseal_all(&failing, &[("master-key-id", b"mk-bogus".to_vec())])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("stop"), "{err}");
    assert_eq!(keycare::check(&*s, &v1).await.unwrap().failures, vec![]);
    assert_eq!(
        s.meta_get("master-key-id").await.unwrap(),
        Some(v1.key_id().into_bytes())
    );

    assert_eq!(keycare::rotate(&*s, &v1, &v2).await.unwrap(), Rotated::Done(counts.clone()));
    let after_rotation = keycare::check(&*s, &v2).await.unwrap();
    assert_eq!(after_rotation.counts, counts);
    assert_eq!(after_rotation.failures, vec![]);
    assert_eq!(keycare::check(&*s, &v1).await.unwrap().failures.len(), 52);
    assert_eq!(keycare::sealing(&*s, &v2).await.unwrap(), Sealing::Opens);
    assert_eq!(
        keycare::sealing(&*s, &v1).await.unwrap(),
        Sealing::Other { key_id: Some(v2.key_id()) }
    );
    purser_core::check_master_key(&*s, &v2).await.unwrap();
    let refused = purser_core::check_master_key(&*s, &v1).await.unwrap_err();
    assert!(refused.contains(&v2.key_id()) && refused.contains(&v1.key_id()), "{refused}");
    // a rerun of the same rotation knows it is done; the old key cannot rotate again
    assert_eq!(keycare::rotate(&*s, &v1, &v2).await.unwrap(), Rotated::AlreadyUnderNewKey);
    let v3 = Vault::new(MasterKey::generate());
    assert!(matches!(
        keycare::rotate(&*s, &v1, &v3).await,
        Err(keycare::RotateError::WrongKey { .. })
    ));
}

#[tokio::test]
async fn key_rotation_refuses_a_value_that_does_not_open() {
    use purser_core::keycare::{self, RotateError};
    use purser_wallet::{MasterKey, Vault};
    let Some((_guard, s)) = $backend().await else { return };
    let v1 = Vault::new(MasterKey::generate());
    let v2 = Vault::new(MasterKey::generate());
    sealed_fixture(&*s, &v1, 4).await;
    // a wallet key sealed for another record does not open for this one
    let mut bad = sealed_instrument(&v1, "111122223333", "payment-instrument-bad", Network::Ethereum);
    bad.sealed_key = sealed_instrument(&v1, "111122223333", "payment-instrument-other", Network::Ethereum).sealed_key;
    s.instrument_insert(&bad, None).await.unwrap();
    let report = keycare::check(&*s, &v1).await.unwrap();
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].kind, SealedKind::WalletKey);
    assert_eq!(report.failures[0].id, "payment-instrument-bad");
    match keycare::rotate(&*s, &v1, &v2).await {
        Err(RotateError::Unreadable(f)) => assert_eq!(f, report.failures),
        other => panic!("{other:?}"),
    }
    assert_eq!(keycare::check(&*s, &v1).await.unwrap(), report);
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

/// A payment of the history: manager, user, session, payee and time as given.
#[allow(clippy::too_many_arguments)]
fn hist(
    account: &str,
    n: usize,
    manager: &str,
    user: &str,
    session: &str,
    payee: &str,
    at_secs: i64,
    value: i64,
) -> Payment {
    Payment {
        manager_id: manager.into(),
        user_id: user.into(),
        payee: payee.into(),
        created_at: t0() + Duration::seconds(at_secs),
        value,
        debited: 0,
        scheme: if n % 2 == 0 { "exact".into() } else { "upto".into() },
        ..payment(account, session, n, None, 0)
    }
}

async fn record(s: &Arc<dyn Store>, payments: &[Payment]) {
    let mut tx = s.begin_payments().await.unwrap();
    assert!(tx.record_all(payments).await.unwrap().iter().all(|b| *b));
    tx.commit().await.unwrap();
}

async fn ids(s: &Arc<dyn Store>, a: &str, f: &PaymentFilter) -> Vec<usize> {
    s.payment_list(a, f, None, 1000)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id[24..].parse().unwrap())
        .collect()
}

#[tokio::test]
async fn history_filters_and_pages_newest_first() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    let evm = "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01";
    record(
        &s,
        &[
            hist(a, 1, "m1", "alice", "s1", evm, 10, 100),
            hist(a, 2, "m1", "alice", "s2", "SoLPayee", 20, 200),
            hist(a, 3, "m1", "bob", "s3", evm, 30, 300),
            hist(a, 4, "m2", "alice", "s4", "SoLPayee", 30, 400),
            hist(a, 5, "m2", "carol", "s5", evm, 40, 500),
            hist("444455556666", 6, "m1", "alice", "s1", evm, 50, 600),
        ],
    )
    .await;
    let all = PaymentFilter::default();
    // newest first; equal times by id, descending
    assert_eq!(ids(&s, a, &all).await, [5, 4, 3, 2, 1]);
    let f = |g: fn(&mut PaymentFilter)| {
        let mut f = PaymentFilter::default();
        g(&mut f);
        f
    };
    assert_eq!(ids(&s, a, &f(|f| f.manager_id = Some("m1".into()))).await, [3, 2, 1]);
    assert_eq!(
        ids(&s, a, &f(|f| {
            f.manager_id = Some("m1".into());
            f.user_id = Some("alice".into());
        }))
        .await,
        [2, 1]
    );
    assert_eq!(ids(&s, a, &f(|f| f.session_id = Some("s3".into()))).await, [3]);
    // an EVM payee matches whatever its case; others exactly
    let lower = PaymentFilter { payee: Some(evm.to_lowercase()), ..Default::default() };
    assert_eq!(ids(&s, a, &lower).await, [5, 3, 1]);
    assert_eq!(ids(&s, a, &f(|f| f.payee = Some("SoLPayee".into()))).await, [4, 2]);
    assert_eq!(ids(&s, a, &f(|f| f.payee = Some("solpayee".into()))).await, [] as [usize; 0]);
    assert_eq!(ids(&s, a, &f(|f| f.scheme = Some("upto".into()))).await, [5, 3, 1]);
    assert_eq!(
        ids(&s, a, &f(|f| {
            f.from = Some(t0() + Duration::seconds(20));
            f.to = Some(t0() + Duration::seconds(40));
        }))
        .await,
        [4, 3, 2]
    );
    // keyset pages: each payment once, in order, also across equal times
    let mut seen = Vec::new();
    let mut before: Option<Keyset> = None;
    loop {
        let page = s.payment_list(a, &all, before.as_ref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        before = Some(Keyset {
            created_at: last.created_at,
            id: last.id.clone(),
        });
        seen.extend(page.iter().map(|p| p.id[24..].parse::<usize>().unwrap()));
    }
    assert_eq!(seen, [5, 4, 3, 2, 1]);
    // the recorded row carries what the history shows
    let p = &s.payment_list(a, &all, None, 1).await.unwrap()[0];
    assert_eq!((p.value, p.agent_name.as_deref()), (500, Some("shopper")));
    // spend per bucket of 20 s, aligned on the epoch
    let b = s.payment_buckets(a, &all, 20_000).await.unwrap();
    let got: Vec<(i64, i64, i64)> = b
        .iter()
        .map(|b| ((b.start - t0()).whole_seconds(), b.payments, b.value))
        .collect();
    assert_eq!(got, [(0, 1, 100), (20, 3, 900), (40, 1, 500)]);
    // a user's spend after two instants
    assert_eq!(
        s.user_spent(a, "m1", "alice", t0() + Duration::seconds(15), t0())
            .await
            .unwrap(),
        (200, 300)
    );
}

fn refusal(account: &str, n: usize, user: &str, reason: RefusalReason, at_secs: i64) -> Refusal {
    Refusal {
        account_id: account.into(),
        id: format!("00000000-0000-4000-9000-{n:012}"),
        manager_id: "m1".into(),
        user_id: user.into(),
        agent_name: None,
        session_id: format!("s{n}"),
        instrument_id: "i1".into(),
        reason,
        policy: (reason == RefusalReason::Policy).then(|| "daily-user-cap".to_string()),
        payment_type: "CRYPTO_X402".into(),
        scheme: "exact".into(),
        network: "eip155:84532".into(),
        payee: "0x02".into(),
        amount: "100".into(),
        value: 100,
        message: "Payment denied".into(),
        created_at: t0() + Duration::seconds(at_secs),
    }
}

#[tokio::test]
async fn refusals_are_listed_with_filters() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    let rs = [
        refusal(a, 1, "alice", RefusalReason::SessionBudget, 1),
        refusal(a, 2, "alice", RefusalReason::Policy, 2),
        refusal(a, 3, "bob", RefusalReason::SessionExpired, 3),
        refusal("444455556666", 4, "alice", RefusalReason::Policy, 4),
    ];
    for r in &rs {
        s.refusal_insert(r).await.unwrap();
    }
    let list = |f: RefusalFilter| {
        let s = s.clone();
        async move {
            s.refusal_list(a, &f, None, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id[24..].parse::<usize>().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(RefusalFilter::default()).await, [3, 2, 1]);
    assert_eq!(
        list(RefusalFilter {
            reason: Some(RefusalReason::Policy),
            ..Default::default()
        })
        .await,
        [2]
    );
    assert_eq!(
        list(RefusalFilter {
            manager_id: Some("m1".into()),
            user_id: Some("alice".into()),
            ..Default::default()
        })
        .await,
        [2, 1]
    );
    let got = s
        .refusal_list(a, &RefusalFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(got[1], rs[1]);
    let before = Keyset {
        created_at: got[0].created_at,
        id: got[0].id.clone(),
    };
    assert_eq!(
        s.refusal_list(a, &RefusalFilter::default(), Some(&before), 1)
            .await
            .unwrap()[0]
            .id,
        rs[1].id
    );
}

#[tokio::test]
async fn policies_round_trip_and_come_with_the_payment_context() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    let m = manager(a, "m-aaaaaaaaaa", "m");
    s.manager_insert(&m, None).await.unwrap();
    s.session_insert(&session(a, "s1", None, Duration::hours(1)), None)
        .await
        .unwrap();
    // no policy: the context says so
    let ctx = s.payment_context(a, &m.id, "s1", "i", None).await.unwrap();
    assert_eq!((ctx.manager_policy, ctx.user_policy), (None, None));
    let mp = StoredPolicy {
        account_id: a.into(),
        manager_id: m.id.clone(),
        user_id: None,
        policy: SpendingPolicy {
            daily_cap: Some(10),
            payee_deny: Some(vec!["0xdead".into()]),
            ..Default::default()
        },
        updated_at: t0(),
    };
    let up = StoredPolicy {
        user_id: Some("alice".into()),
        policy: SpendingPolicy {
            monthly_cap: Some(20),
            max_per_payment: Some(5),
            payee_allow: Some(vec!["0xbeef".into(), "Sol".into()]),
            ..Default::default()
        },
        ..mp.clone()
    };
    let other_user = StoredPolicy {
        user_id: Some("bob".into()),
        ..up.clone()
    };
    for p in [&mp, &up, &other_user] {
        s.policy_put(p).await.unwrap();
    }
    assert_eq!(s.policy_get(a, &m.id, None).await.unwrap().as_ref(), Some(&mp));
    assert_eq!(s.policy_get(a, &m.id, Some("alice")).await.unwrap().as_ref(), Some(&up));
    assert_eq!(s.policy_get("444455556666", &m.id, None).await.unwrap(), None);
    let ctx = s.payment_context(a, &m.id, "s1", "i", None).await.unwrap();
    assert_eq!(ctx.manager_policy.as_ref(), Some(&mp.policy));
    assert_eq!(ctx.user_policy.as_ref(), Some(&up.policy));
    // replaced, listed (the manager's first), deleted
    let changed = StoredPolicy {
        policy: SpendingPolicy::default(),
        updated_at: t0() + Duration::seconds(1),
        ..mp.clone()
    };
    s.policy_put(&changed).await.unwrap();
    assert_eq!(s.policy_get(a, &m.id, None).await.unwrap().as_ref(), Some(&changed));
    let all = s.policy_list(a, &m.id, None, 10).await.unwrap();
    let users: Vec<Option<&str>> = all.iter().map(|p| p.user_id.as_deref()).collect();
    assert_eq!(users, [None, Some("alice"), Some("bob")]);
    let next = s.policy_list(a, &m.id, Some(""), 1).await.unwrap();
    assert_eq!(next[0].user_id.as_deref(), Some("alice"));
    assert!(s.policy_delete(a, &m.id, Some("alice")).await.unwrap());
    assert!(!s.policy_delete(a, &m.id, Some("alice")).await.unwrap());
    let ctx = s.payment_context(a, &m.id, "s1", "i", None).await.unwrap();
    assert_eq!(ctx.user_policy, None);
}

/// Rolling caps under concurrency: transactions on many sessions of one user, each
/// taking the user's turn, summing, and recording only if the cap leaves room: exactly
/// floor(cap / amount) go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_users_turn_serializes_rolling_caps() {
    let Some((_guard, s)) = $backend().await else { return };
    let a = "111122223333";
    for n in 0..8 {
        s.session_insert(&session(a, &format!("s{n}"), None, Duration::hours(1)), None)
            .await
            .unwrap();
    }
    let cap = 1_050_000;
    let mut tasks = Vec::new();
    for n in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = s.begin_payments().await.unwrap();
            let now = t0() + Duration::seconds(5);
            let (day, _) = tx
                .lock_user_spent(a, "m-aaaaaaaaaa", "alice", now, now - Duration::hours(24), now - Duration::days(30))
                .await
                .unwrap();
            tokio::task::yield_now().await;
            let ok = day + 100_000 <= cap;
            if ok {
                let session = format!("s{}", n % 8);
                assert!(matches!(
                    tx.reserve(a, &session, 0, now).await.unwrap(),
                    Reserve::Reserved { .. }
                ));
                let p = Payment {
                    value: 100_000,
                    created_at: now,
                    ..payment(a, &session, n, None, 0)
                };
                assert_eq!(tx.record_all(&[p]).await.unwrap(), [true]);
            }
            tx.commit().await.unwrap();
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap() as usize;
    }
    assert_eq!(ok, 10);
    let now = t0() + Duration::seconds(6);
    assert_eq!(
        s.user_spent(a, "m-aaaaaaaaaa", "alice", now - Duration::hours(24), now - Duration::days(30))
            .await
            .unwrap(),
        (1_000_000, 1_000_000)
    );
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
