-- ListPaymentInstruments reads only the summary columns, and these indexes hold them all:
-- a page is a range of index entries in id order (an index-only scan), not one table
-- lookup per instrument at random places of a large table.
DROP INDEX instruments_owner;
DROP INDEX instruments_owner_connector;
CREATE INDEX instruments_owner_list ON instruments
    (account_id, manager_id, user_id, id, connector_id, status, created_at, updated_at)
    WHERE status <> 'DELETED';
CREATE INDEX instruments_owner_connector_list ON instruments
    (account_id, manager_id, user_id, connector_id, id, status, created_at, updated_at)
    WHERE status <> 'DELETED';
