-- Who holds an instrument's wallet key: NULL for Purser's vault (self-custody, the key
-- sealed in sealed_key), or "<vendor user id> <vendor wallet id>" for a wallet held by
-- Coinbase CDP or Privy (the connector's type names the vendor; sealed_key is empty).
ALTER TABLE instruments ADD COLUMN holder TEXT;
