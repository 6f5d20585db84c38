//! The data plane's payment instruments (B14-B18, seeds 000/003/004): self-custody
//! wallets created, read, listed, soft-deleted, and their USDC balances read from the
//! chain itself.
use std::sync::Arc;

use purser_chain::{BalanceReader, Chain, Family};
use purser_wallet::{KeyKind, Vault};
use time::OffsetDateTime;

use crate::clock::truncate_millis;
use crate::domain::*;
use crate::holder::{Contact, RemoteSigner, VendorAccess, Vendors};
use crate::paging::Paginator;
use crate::store::{Store, StoreError, Unique};
use crate::{Caller, Clock, CoreError, CoreResult, Idempotency};

/// Default and largest page of ListPaymentInstruments / ListPaymentSessions (B17).
pub const DATA_PAGE: usize = 100;

/// The header carrying the user id (B2), named in errors about it.
pub const USER_ID_HEADER: &str = "X-Amzn-Bedrock-AgentCore-Payments-User-Id";

/// Who acts on the data plane: the verified caller, the userId header as sent, and, for
/// a bearer request (CUSTOM_JWT), the verified token's identity.
#[derive(Clone, Debug)]
pub struct Actor {
    pub caller: Caller,
    pub user_id: Option<String>,
    pub token: Option<TokenIdentity>,
}

/// A bearer request whose token a CUSTOM_JWT manager's authorizer verified (B30, B33):
/// the manager and the token's subject, which is the payment user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenIdentity {
    pub manager_id: String,
    pub subject: String,
}

/// A data-plane request resolved against its manager: the manager and the user id.
#[derive(Clone, Debug)]
pub struct Owner {
    pub manager: Manager,
    pub user_id: String,
}

impl Owner {
    /// A session of this owner (sessions of other managers or users are invisible).
    pub(crate) fn owns_session(&self, s: &Session) -> bool {
        s.manager_id == self.manager.id && s.user_id == self.user_id
    }

    /// A live (not deleted) instrument of this owner.
    pub(crate) fn owns_live_instrument(&self, i: &Instrument) -> bool {
        i.status != InstrumentStatus::Deleted
            && i.manager_id == self.manager.id
            && i.user_id == self.user_id
    }
}

/// Input of CreatePaymentInstrument (after wire validation).
#[derive(Debug)]
pub struct NewInstrument {
    pub manager_arn: String,
    pub connector_id: String,
    pub network: Network,
    /// Plain wire encoding of the linked accounts, sealed at rest.
    pub linked_plain: String,
    /// Masked wire encoding, shown in replies.
    pub linked_masked: String,
    /// The email or phone linked account, for a vendor that keys its users by it.
    pub contact: Option<Contact>,
}

pub struct DataPlane {
    store: Arc<dyn Store>,
    vault: Vault,
    clock: Arc<dyn Clock>,
    pages: Paginator,
    chains: BalanceReader,
    ledger: tokio::sync::mpsc::Sender<crate::payments::Intent>,
    vendors: Arc<Vendors>,
}

/// Associated data binding a sealed wallet key to its instrument.
pub fn key_aad(account_id: &str, instrument_id: &str) -> Vec<u8> {
    format!("purser/instrument-key/{account_id}/{instrument_id}").into_bytes()
}

pub fn linked_aad(account_id: &str, instrument_id: &str) -> Vec<u8> {
    format!("purser/instrument-linked-accounts/{account_id}/{instrument_id}").into_bytes()
}

fn instrument_not_found(id: &str) -> CoreError {
    CoreError::NotFound(format!("Payment instrument '{id}' not found."))
}

impl DataPlane {
    /// Must be called inside a Tokio runtime: it starts the payment ledger writer.
    pub fn new(
        store: Arc<dyn Store>,
        vault: Vault,
        clock: Arc<dyn Clock>,
        chains: BalanceReader,
    ) -> Self {
        let pages = Paginator::new(*vault.derive_key("purser/pagination/v1"));
        let ledger = crate::payments::spawn_ledger(store.clone(), vault.clone());
        DataPlane {
            store,
            vault,
            clock,
            pages,
            chains,
            ledger,
            vendors: Arc::new(Vendors::default()),
        }
    }

    /// Use these vendor API clients (base URLs, timeouts) instead of the real vendors'.
    pub fn with_vendors(mut self, vendors: Vendors) -> Self {
        self.vendors = Arc::new(vendors);
        self
    }

    /// The credentials of a vendor connector, opened from its credential provider.
    pub(crate) async fn vendor_access(&self, connector: &Connector) -> CoreResult<VendorAccess> {
        let no_provider = || {
            CoreError::validation(
                "paymentConnectorId",
                format!(
                    "Payment connector '{}' has no usable credential provider.",
                    connector.id
                ),
            )
        };
        let (Some(vendor), Some(cred)) = (connector.connector_type.vendor(), &connector.credential)
        else {
            return Err(no_provider());
        };
        let caller = Caller {
            account_id: connector.account_id.clone(),
            region: String::new(),
        };
        let name =
            crate::control::provider_name_from_arn(&caller, &cred.arn).ok_or_else(no_provider)?;
        let p = self
            .store
            .provider_get(&connector.account_id, name)
            .await?
            .filter(|p| p.vendor == vendor)
            .ok_or_else(no_provider)?;
        let secrets = crate::control::open_provider_secrets(&self.vault, &p)?;
        Ok(VendorAccess {
            vendor,
            key_id: p.key_id,
            authorization_id: p.authorization_id,
            secrets,
        })
    }

    /// The signer of a vendor-held instrument (None: the vault signs it in the ledger).
    pub(crate) async fn remote_signer(&self, i: &Instrument) -> CoreResult<Option<RemoteSigner>> {
        let WalletHolder::Vendor { user_id, wallet_id } = &i.holder else {
            return Ok(None);
        };
        let connector = self
            .store
            .connector_get(&i.account_id, &i.manager_id, &i.connector_id)
            .await?
            .ok_or_else(|| {
                CoreError::validation(
                    "paymentInstrumentId",
                    format!(
                        "The payment connector of payment instrument '{}' no longer exists.",
                        i.id
                    ),
                )
            })?;
        let access = self.vendor_access(&connector).await?;
        Ok(Some(RemoteSigner {
            vendors: self.vendors.clone(),
            access,
            wallet: purser_wallet::vendor::VendorWallet {
                user_id: user_id.clone(),
                wallet_id: wallet_id.clone(),
                address: i.wallet_address.clone(),
            },
        }))
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn vault(&self) -> &Vault {
        &self.vault
    }

    pub(crate) fn chains(&self) -> &BalanceReader {
        &self.chains
    }

    pub(crate) fn ledger(&self) -> &tokio::sync::mpsc::Sender<crate::payments::Intent> {
        &self.ledger
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        truncate_millis(self.clock.now())
    }

    pub(crate) fn pages(&self) -> &Paginator {
        &self.pages
    }

    /// Keyset pagination: the key to continue after and the page size.
    pub(crate) fn page_start(
        &self,
        scope: &str,
        max_results: Option<i32>,
        next_token: Option<&str>,
    ) -> CoreResult<(Option<String>, usize)> {
        let limit = page_size(max_results)?;
        let after = next_token
            .map(|t| self.pages.decode(scope, t, "nextToken"))
            .transpose()?;
        Ok((after, limit))
    }

    /// Keyset pagination: `items` were fetched with `limit + 1`.
    pub(crate) fn page_end<T>(
        &self,
        scope: &str,
        mut items: Vec<T>,
        limit: usize,
        key: impl Fn(&T) -> &str,
    ) -> Page<T> {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|i| self.pages.encode(scope, key(i)))
        } else {
            None
        };
        Page { items, next }
    }

    /// Resolve the manager named by `arn` for the caller (B30-B32): an ARN of another
    /// account or region is refused (403); the manager must exist (404) and be READY;
    /// under AWS_IAM the userId header is required; CUSTOM_JWT managers need a bearer token.
    pub async fn owner(&self, actor: &Actor, arn: &str) -> CoreResult<Owner> {
        let id = manager_id_of(&actor.caller, arn)?;
        let manager = self.store.manager_get(&actor.caller.account_id, id).await?;
        owner_from(actor, id, manager)
    }

    pub(crate) async fn replay(
        &self,
        caller: &Caller,
        op: &str,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Option<String>> {
        Idempotency::replay(idem, &*self.store, &caller.account_id, op).await
    }

    pub async fn create_instrument(
        &self,
        actor: &Actor,
        input: NewInstrument,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Instrument> {
        const OP: &str = "CreatePaymentInstrument";
        let owner = self.owner(actor, &input.manager_arn).await?;
        let caller = &actor.caller;
        if let Some(id) = self.replay(caller, OP, idem).await? {
            return self
                .store
                .instrument_get(&caller.account_id, &id)
                .await?
                .ok_or_else(|| instrument_not_found(&id));
        }
        let connector = self
            .store
            .connector_get(&caller.account_id, &owner.manager.id, &input.connector_id)
            .await?
            .filter(|c| c.status != ResourceStatus::Deleting)
            .ok_or_else(|| {
                CoreError::NotFound(format!(
                    "Payment connector '{}' not found in payment manager '{}'.",
                    input.connector_id, owner.manager.id
                ))
            })?;
        if connector.status == ResourceStatus::Creating {
            return Err(CoreError::validation(
                "paymentConnectorId",
                format!(
                    "Payment connector '{}' is not READY yet (status CREATING).",
                    connector.id
                ),
            ));
        }
        let id = crate::ids::instrument_id();
        // The wallet: a key in the vault, or a wallet at the connector's vendor (an HTTP
        // call, made here, before the record is written and outside any transaction).
        let (wallet_address, sealed_key, holder) = if connector.connector_type
            == ConnectorType::SelfCustody
        {
            let kind = match input.network {
                Network::Ethereum => KeyKind::Secp256k1,
                Network::Solana => KeyKind::Ed25519,
            };
            let wallet = self
                .vault
                .create_wallet(kind, &key_aad(&caller.account_id, &id));
            (wallet.address, wallet.sealed_key, WalletHolder::SelfCustody)
        } else {
            let contact = input.contact.as_ref().ok_or_else(|| {
                CoreError::validation(
                    "paymentInstrumentDetails.embeddedCryptoWallet.linkedAccounts",
                    format!(
                        "A {} payment instrument needs an email or sms linked account in linkedAccounts: the wallet provider keys its users by it.",
                        connector.connector_type.as_str()
                    ),
                )
            })?;
            let access = self.vendor_access(&connector).await?;
            let key = crate::ids::uuid_v4();
            let w = self
                .vendors
                .create_wallet(&access, contact, input.network, &key)
                .await?;
            (
                w.address,
                Vec::new(),
                WalletHolder::Vendor {
                    user_id: w.user_id,
                    wallet_id: w.wallet_id,
                },
            )
        };
        let now = self.now();
        let instrument = Instrument {
            account_id: caller.account_id.clone(),
            manager_id: owner.manager.id.clone(),
            connector_id: connector.id,
            user_id: owner.user_id,
            network: input.network,
            wallet_address,
            linked_accounts: LinkedAccounts {
                masked: input.linked_masked,
                sealed: self.vault.seal(
                    &linked_aad(&caller.account_id, &id),
                    input.linked_plain.as_bytes(),
                ),
            },
            sealed_key,
            holder,
            status: InstrumentStatus::Active,
            version: 1,
            created_at: now,
            updated_at: now,
            id,
        };
        let write = Idempotency::write(idem, OP, &instrument.id, now);
        match self
            .store
            .instrument_insert(&instrument, write.as_ref())
            .await
        {
            Ok(()) => Ok(instrument),
            Err(StoreError::Duplicate(Unique::ClientToken)) => {
                match self.replay(caller, OP, idem).await? {
                    Some(id) => self
                        .store
                        .instrument_get(&caller.account_id, &id)
                        .await?
                        .ok_or_else(|| instrument_not_found(&id)),
                    None => Err(CoreError::Internal("idempotency record vanished".into())),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A live instrument of the owner. Another user's, a deleted one or one under another
    /// connector is "not found" (B16).
    async fn owned_instrument(
        &self,
        owner: &Owner,
        connector_id: Option<&str>,
        id: &str,
    ) -> CoreResult<Instrument> {
        self.store
            .instrument_get(&owner.manager.account_id, id)
            .await?
            .filter(|i| {
                owner.owns_live_instrument(i) && connector_id.is_none_or(|c| c == i.connector_id)
            })
            .ok_or_else(|| instrument_not_found(id))
    }

    pub async fn get_instrument(
        &self,
        actor: &Actor,
        manager_arn: &str,
        connector_id: Option<&str>,
        id: &str,
    ) -> CoreResult<Instrument> {
        let owner = self.owner(actor, manager_arn).await?;
        self.owned_instrument(&owner, connector_id, id).await
    }

    pub async fn list_instruments(
        &self,
        actor: &Actor,
        manager_arn: &str,
        connector_id: Option<&str>,
        max_results: Option<i32>,
        next_token: Option<&str>,
    ) -> CoreResult<Page<InstrumentSummary>> {
        let owner = self.owner(actor, manager_arn).await?;
        let scope = format!(
            "{}/ListPaymentInstruments/{}/{}/{}",
            owner.manager.account_id,
            owner.manager.id,
            owner.user_id,
            connector_id.unwrap_or("")
        );
        let (after, limit) = self.page_start(&scope, max_results, next_token)?;
        let items = self
            .store
            .instrument_list(
                &owner.manager.account_id,
                &owner.manager.id,
                &owner.user_id,
                connector_id,
                after.as_deref(),
                limit + 1,
            )
            .await?;
        Ok(self.page_end(&scope, items, limit, |i| &i.id))
    }

    /// Soft delete (seed 000): 404 when missing or already deleted; 403 when the userId,
    /// manager or connector do not match the instrument; optimistic locking on `version`.
    pub async fn delete_instrument(
        &self,
        actor: &Actor,
        manager_arn: &str,
        connector_id: &str,
        id: &str,
    ) -> CoreResult<InstrumentStatus> {
        let owner = self.owner(actor, manager_arn).await?;
        let i = self
            .store
            .instrument_get(&owner.manager.account_id, id)
            .await?
            .filter(|i| i.status != InstrumentStatus::Deleted)
            .ok_or_else(|| instrument_not_found(id))?;
        if i.user_id != owner.user_id
            || i.manager_id != owner.manager.id
            || i.connector_id != connector_id
        {
            return Err(CoreError::AccessDenied(format!(
                "You are not authorized to delete payment instrument '{id}': the userId, payment manager and payment connector must match the instrument."
            )));
        }
        if !self
            .store
            .instrument_soft_delete(&i.account_id, id, i.version, self.now())
            .await?
        {
            return Err(instrument_not_found(id));
        }
        Ok(InstrumentStatus::Deleted)
    }

    /// USDC balance of the instrument's wallet on `chain`, read from the chain (seed 004).
    pub async fn balance(
        &self,
        actor: &Actor,
        manager_arn: &str,
        connector_id: &str,
        id: &str,
        chain: Chain,
    ) -> CoreResult<(Instrument, u128)> {
        let owner = self.owner(actor, manager_arn).await?;
        let i = self
            .owned_instrument(&owner, Some(connector_id), id)
            .await?;
        let family = match i.network {
            Network::Ethereum => Family::Ethereum,
            Network::Solana => Family::Solana,
        };
        if chain.family() != family {
            return Err(CoreError::validation(
                "chain",
                format!(
                    "Chain {} is not on network {} of payment instrument '{id}'.",
                    chain.as_str(),
                    i.network.as_str()
                ),
            ));
        }
        let amount = self
            .chains
            .usdc_balance(chain, &i.wallet_address)
            .await
            .map_err(|e| CoreError::Internal(e.message()))?;
        Ok((i, amount))
    }
}

/// Page size of data-plane lists: default and cap 100; below 1 is refused.
fn page_size(max_results: Option<i32>) -> CoreResult<usize> {
    match max_results {
        None => Ok(DATA_PAGE),
        Some(n) if n < 1 => Err(CoreError::validation(
            "maxResults",
            "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must be greater than or equal to 1",
        )),
        Some(n) => Ok((n as usize).min(DATA_PAGE)),
    }
}

/// The manager id a data-plane request names, if its ARN belongs to the caller's account
/// and region.
pub(crate) fn manager_id_of<'a>(caller: &Caller, arn: &'a str) -> CoreResult<&'a str> {
    let denied = || {
        CoreError::AccessDenied(format!(
            "The payment manager ARN does not belong to account {} in region {}.",
            caller.account_id, caller.region
        ))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, service, region, account, resource] = parts[..] else {
        return Err(denied());
    };
    if service != "bedrock-agentcore" || region != caller.region || account != caller.account_id {
        return Err(denied());
    }
    resource.strip_prefix("payment-manager/").ok_or_else(denied)
}

/// The owner of a data-plane request, given the manager it names (as read): the manager
/// must be usable and the caller must name a user.
pub(crate) fn owner_from(actor: &Actor, id: &str, manager: Option<Manager>) -> CoreResult<Owner> {
    let manager =
        manager.ok_or_else(|| CoreError::NotFound(format!("Payment manager '{id}' not found.")))?;
    match manager.status {
        ResourceStatus::Ready | ResourceStatus::Updating => {}
        ResourceStatus::Deleting => {
            return Err(CoreError::NotFound(format!(
                "Payment manager '{id}' not found."
            )));
        }
        ResourceStatus::Creating => {
            return Err(CoreError::validation(
                "paymentManagerArn",
                format!("Payment manager '{id}' is not READY yet (status CREATING)."),
            ));
        }
    }
    let user_id = match (manager.authorizer_type, &actor.token) {
        (AuthorizerType::CustomJwt, None) => {
            return Err(CoreError::AccessDenied(format!(
                "Payment manager '{id}' uses CUSTOM_JWT authorization; call it with a valid bearer token."
            )));
        }
        (AuthorizerType::AwsIam, Some(_)) => {
            return Err(CoreError::AccessDenied(format!(
                "Payment manager '{id}' uses AWS_IAM authorization; sign the request with SigV4 instead of a bearer token."
            )));
        }
        (AuthorizerType::CustomJwt, Some(token)) => {
            if token.manager_id != id {
                return Err(CoreError::AccessDenied(
                    "The bearer token was verified for another payment manager.".into(),
                ));
            }
            // The user is the token's subject. A userId header is not needed; one that
            // names somebody else is refused rather than silently ignored.
            if let Some(header) = actor.user_id.as_deref().filter(|u| !u.is_empty())
                && header != token.subject
            {
                return Err(CoreError::AccessDenied(format!(
                    "The {USER_ID_HEADER} header (userId) does not match the bearer token's subject (sub); omit it or send the subject."
                )));
            }
            token.subject.clone()
        }
        (AuthorizerType::AwsIam, None) => actor.user_id.clone().filter(|u| !u.is_empty()).ok_or_else(|| {
            CoreError::validation(
                "userId",
                format!("The {USER_ID_HEADER} header (userId) is required for payment managers with AWS_IAM authorization."),
            )
        })?,
    };
    Ok(Owner { manager, user_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager(t: AuthorizerType) -> Manager {
        let now = OffsetDateTime::UNIX_EPOCH;
        Manager {
            account_id: "123456789012".into(),
            id: "m-1".into(),
            name: "m".into(),
            description: None,
            authorizer_type: t,
            authorizer: None,
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            kms_key_arn: None,
            tags: Default::default(),
            status: ResourceStatus::Ready,
            created_at: now,
            updated_at: now,
            transition_at: None,
        }
    }

    fn actor(user: Option<&str>, token: Option<(&str, &str)>) -> Actor {
        Actor {
            caller: Caller {
                account_id: "123456789012".into(),
                region: "us-east-1".into(),
            },
            user_id: user.map(String::from),
            token: token.map(|(m, s)| TokenIdentity {
                manager_id: m.into(),
                subject: s.into(),
            }),
        }
    }

    #[test]
    fn custom_jwt_user_is_the_token_subject() {
        use AuthorizerType::*;
        let jwt = || Some(manager(CustomJwt));
        let o = owner_from(&actor(None, Some(("m-1", "sub-a"))), "m-1", jwt()).unwrap();
        assert_eq!(o.user_id, "sub-a");
        // The same user in the header is fine; another is refused.
        assert!(owner_from(&actor(Some("sub-a"), Some(("m-1", "sub-a"))), "m-1", jwt()).is_ok());
        let e = owner_from(&actor(Some("bob"), Some(("m-1", "sub-a"))), "m-1", jwt());
        assert!(matches!(e, Err(CoreError::AccessDenied(_))), "{e:?}");
        // A token verified for another manager does not open this one.
        let e = owner_from(&actor(None, Some(("m-2", "sub-a"))), "m-1", jwt());
        assert!(matches!(e, Err(CoreError::AccessDenied(_))), "{e:?}");
        // SigV4 on a CUSTOM_JWT manager, a token on an AWS_IAM manager: refused (B32).
        let e = owner_from(&actor(Some("alice"), None), "m-1", jwt());
        assert!(matches!(e, Err(CoreError::AccessDenied(_))), "{e:?}");
        let e = owner_from(
            &actor(None, Some(("m-1", "a"))),
            "m-1",
            Some(manager(AwsIam)),
        );
        assert!(matches!(e, Err(CoreError::AccessDenied(_))), "{e:?}");
        let o = owner_from(&actor(Some("alice"), None), "m-1", Some(manager(AwsIam))).unwrap();
        assert_eq!(o.user_id, "alice");
    }
}
