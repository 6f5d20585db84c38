//! Store contract tests: every `Store` implementation must pass these. They run against
//! SQLite here (a temporary file per test).
use std::sync::Arc;

use purser_core::domain::*;
use purser_core::store::*;
use purser_store::SqliteStore;
use time::{Duration, OffsetDateTime};

async fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("purser.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    (dir, Arc::new(store))
}

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
    let (_d, s) = sqlite().await;
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
    let (_d, s) = sqlite().await;
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
    // still there until the transition completes
    assert_eq!(
        s.manager_start_delete(a, &m.id, later, later, None)
            .await
            .unwrap(),
        ManagerDelete::HasConnectors
    );
    s.complete_transitions(later).await.unwrap();
    assert_eq!(s.connector_get(a, &m.id, &c.id).await.unwrap(), None);
    match s
        .manager_start_delete(a, &m.id, later, later, None)
        .await
        .unwrap()
    {
        ManagerDelete::Started(m) => assert_eq!(m.status, ResourceStatus::Deleting),
        other => panic!("{other:?}"),
    }
    // no connector may be created under a deleting manager
    assert!(
        !s.connector_insert(&connector(a, &m.id, "c2-aaaaaaaaaa"), None)
            .await
            .unwrap()
    );
    s.complete_transitions(later).await.unwrap();
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
    let (_d, s) = sqlite().await;
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
    let (_d, s) = sqlite().await;
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
    let (_d, s) = sqlite().await;
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
