// Drives Purser's vendor emulator with the vendors' own SDKs (@coinbase/cdp-sdk,
// @privy-io/node) and checks what comes back with viem / node:crypto.
//
//   node conformance.mjs OP < {"emulator": "http://127.0.0.1:PORT", "accounts": {...}, ...}
//
// Prints one JSON object: what each step saw (values, or {status, type} of an error), for
// tests/compat/test_vendor_emulator.py to assert on. Only loopback is ever contacted.
import crypto from "node:crypto";

// The CDP SDK reports usage and errors to Coinbase unless told not to.
process.env.DISABLE_CDP_ERROR_REPORTING = "true";
process.env.DISABLE_CDP_USAGE_TRACKING = "true";
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    throw new Error(`refusing to contact ${url.hostname}: tests talk to loopback only`);
  }
  return realFetch(input, init);
};

const { CdpClient } = await import("@coinbase/cdp-sdk");
const cdpAuth = await import("@coinbase/cdp-sdk/auth");
const { PrivyClient } = await import("@privy-io/node");
const viem = await import("viem");
const kit = await import("@solana/kit");

const op = process.argv[2];
const input = JSON.parse(await new Promise((resolve) => {
  let s = "";
  process.stdin.on("data", (d) => (s += d));
  process.stdin.on("end", () => resolve(s));
}));
const emulator = input.emulator;
if (new URL(emulator).hostname !== "127.0.0.1") throw new Error("the emulator must be on 127.0.0.1");
const accounts = input.accounts;
const cdpBase = `${emulator}/platform`;

function errorInfo(e) {
  return {
    ok: false,
    status: e?.statusCode ?? e?.status ?? null,
    type: e?.errorType ?? e?.error?.code ?? null,
    message: String(e?.errorMessage ?? e?.message ?? e),
  };
}

async function attempt(fn) {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    return errorInfo(e);
  }
}

async function dev(method, path, body) {
  const r = await fetch(`${emulator}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.status === 204 ? null : r.json();
}

const rand = () => crypto.randomBytes(6).toString("hex");
const phone = () => `+1415${String(crypto.randomInt(0, 10_000_000)).padStart(7, "0")}`;

// EIP-3009 TransferWithAuthorization for Base Sepolia USDC: what an x402 payment signs.
function typedData(from) {
  return {
    domain: {
      name: "USDC",
      version: "2",
      chainId: 84532,
      verifyingContract: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    },
    types: {
      TransferWithAuthorization: [
        { name: "from", type: "address" },
        { name: "to", type: "address" },
        { name: "value", type: "uint256" },
        { name: "validAfter", type: "uint256" },
        { name: "validBefore", type: "uint256" },
        { name: "nonce", type: "bytes32" },
      ],
    },
    primaryType: "TransferWithAuthorization",
    message: {
      from,
      to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
      value: "10000",
      validAfter: "0",
      validBefore: "1900000000",
      nonce: `0x${crypto.randomBytes(32).toString("hex")}`,
    },
  };
}

async function recoverTyped(td, signature) {
  const message = {
    ...td.message,
    value: BigInt(td.message.value),
    validAfter: BigInt(td.message.validAfter),
    validBefore: BigInt(td.message.validBefore),
  };
  return viem.recoverTypedDataAddress({ ...td, message, signature });
}

// An unsigned EIP-1559 ERC-20 approve (what Permit2 payments need first).
function approveTx(nonce = 3) {
  const data = viem.encodeFunctionData({
    abi: viem.parseAbi(["function approve(address spender, uint256 amount) returns (bool)"]),
    functionName: "approve",
    args: ["0x000000000022D473030F116dDEE9F6B43aC78BA3", 2n ** 256n - 1n],
  });
  return {
    type: "eip1559",
    chainId: 84532,
    nonce,
    maxFeePerGas: 2_000_000_000n,
    maxPriorityFeePerGas: 1_000_000n,
    gas: 60_000n,
    to: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    value: 0n,
    data,
  };
}

async function checkSignedTx(unsigned, signedHex, address) {
  const parsed = viem.parseTransaction(signedHex);
  const recovered = await viem.recoverTransactionAddress({ serializedTransaction: signedHex });
  return {
    recovered,
    sameFields:
      parsed.to?.toLowerCase() === unsigned.to.toLowerCase() &&
      parsed.data === unsigned.data &&
      parsed.nonce === unsigned.nonce &&
      parsed.chainId === unsigned.chainId &&
      parsed.gas === unsigned.gas,
    address,
  };
}

// A v0 Solana transaction whose fee payer (the only signer) is `payer`.
async function solanaTx(payer) {
  const blockhash = kit.getBase58Decoder().decode(crypto.randomBytes(32));
  const message = kit.pipe(
    kit.createTransactionMessage({ version: 0 }),
    (m) => kit.setTransactionMessageFeePayer(kit.address(payer), m),
    (m) => kit.setTransactionMessageLifetimeUsingBlockhash({ blockhash, lastValidBlockHeight: 100n }, m),
    (m) => kit.appendTransactionMessageInstruction({
      programAddress: kit.address("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
      accounts: [],
      data: new TextEncoder().encode("purser vendor emulator"),
    }, m),
  );
  const tx = kit.compileTransaction(message);
  return kit.getBase64EncodedWireTransaction(tx);
}

function ed25519Verify(addressB58, message, signature) {
  const raw = Buffer.from(kit.getBase58Encoder().encode(addressB58));
  const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]);
  const key = crypto.createPublicKey({ key: spki, format: "der", type: "spki" });
  return crypto.verify(null, message, key, signature);
}

function checkSignedSolana(unsignedB64, signedB64, signer) {
  const decoder = kit.getTransactionDecoder();
  const before = decoder.decode(Buffer.from(unsignedB64, "base64"));
  const after = decoder.decode(Buffer.from(signedB64, "base64"));
  const sig = after.signatures[signer];
  return {
    sameMessage: Buffer.from(before.messageBytes).equals(Buffer.from(after.messageBytes)),
    verifies: !!sig && ed25519Verify(signer, Buffer.from(after.messageBytes), Buffer.from(sig)),
  };
}

function cdpClient(keyIndex = 0) {
  const key = accounts.cdp.apiKeys[keyIndex];
  return new CdpClient({
    apiKeyId: key.id,
    apiKeySecret: key.secret,
    walletSecret: accounts.cdp.walletSecrets[0],
    basePath: cdpBase,
  });
}

// ---------------------------------------------------------------- CDP: the whole flow
async function cdpFlow() {
  const out = {};
  const cdp = cdpClient(input.keyIndex ?? 0);
  const email = `dev-${rand()}@example.com`;
  const user = await cdp.endUser.createEndUser({
    authenticationMethods: [{ type: "email", email }],
    evmAccount: { createSmartAccount: false },
    solanaAccount: { createSmartAccount: false },
  });
  const evm = user.evmAccountObjects[0].address;
  const sol = user.solanaAccountObjects[0].address;
  out.created = { userId: user.userId, evm, sol, methods: user.authenticationMethods,
    evmAccounts: user.evmAccounts, solanaAccounts: user.solanaAccounts };
  const got = await cdp.endUser.getEndUser({ userId: user.userId });
  out.got = { userId: got.userId, evmAccounts: got.evmAccounts, solanaAccounts: got.solanaAccounts };
  const phoneNumber = phone();
  const smsUser = await cdp.endUser.createEndUser({
    authenticationMethods: [{ type: "sms", phoneNumber }],
    evmAccount: {},
  });
  out.sms = { userId: smsUser.userId, methods: smsUser.authenticationMethods, evm: smsUser.evmAccounts };
  out.duplicate = await attempt(() => cdp.endUser.createEndUser({
    authenticationMethods: [{ type: "email", email }],
  }));
  // Every end user, one per page.
  const seen = [];
  let page = await cdp.endUser.listEndUsers({ pageSize: 1 });
  out.firstPageSize = page.endUsers.length;
  for (;;) {
    seen.push(...page.endUsers.map((u) => u.userId));
    if (!page.nextPageToken) break;
    page = await cdp.endUser.listEndUsers({ pageSize: 1, pageToken: page.nextPageToken });
  }
  out.listed = [user.userId, smsUser.userId].every((id) => seen.includes(id));
  // Lookup by auth method: a request the SDK's auth helper signs (no high-level method).
  const lookup = async (query) => {
    const path = "/platform/v2/end-users/lookup";
    const headers = await cdpAuth.getAuthHeaders({
      apiKeyId: accounts.cdp.apiKeys[0].id, apiKeySecret: accounts.cdp.apiKeys[0].secret,
      requestMethod: "GET", requestHost: new URL(emulator).host, requestPath: path,
    });
    const r = await fetch(`${emulator}${path}?${new URLSearchParams(query)}`, { headers });
    return (await r.json()).endUsers.map((u) => u.userId);
  };
  out.lookupEmail = await lookup({ email });
  out.lookupPhone = await lookup({ phoneNumber });
  out.lookupNone = await lookup({ email: `nobody-${rand()}@example.com` });
  out.addedEvm = (await cdp.endUser.addEndUserEvmAccount({ userId: user.userId })).evmAccount.address;

  // Delegated signing: refused until the end user grants a delegation.
  const td = typedData(evm);
  out.beforeGrant = await attempt(() => cdp.endUser.signEvmTypedData({ userId: user.userId, address: evm, typedData: td }));
  out.getBeforeGrant = await attempt(() => cdp.endUser.getDelegationForEndUser({ userId: user.userId }));
  out.granted = await dev("POST", `/_emulator/cdp/end-users/${user.userId}/delegation`, {});
  out.delegation = await cdp.endUser.getDelegationForEndUser({ userId: user.userId });
  const signed = await cdp.endUser.signEvmTypedData({ userId: user.userId, address: evm, typedData: td });
  out.typedRecovered = await recoverTyped(td, signed.signature);
  out.typedSignatureLength = signed.signature.length;
  const unsigned = approveTx();
  const signedTx = await cdp.endUser.signEvmTransaction({
    userId: user.userId, address: evm, transaction: viem.serializeTransaction(unsigned),
  });
  out.tx = await checkSignedTx(unsigned, signedTx.signedTransaction, evm);
  const solUnsigned = await solanaTx(sol);
  const solSigned = await cdp.endUser.signSolanaTransaction({ userId: user.userId, address: sol, transaction: solUnsigned });
  out.solana = checkSignedSolana(solUnsigned, solSigned.signedTransaction, sol);
  out.wrongAddress = await attempt(() => cdp.endUser.signEvmTypedData({ userId: user.userId, address: smsUser.evmAccounts[0], typedData: td }));
  out.badTypedData = await attempt(() => cdp.endUser.signEvmTypedData({
    userId: user.userId, address: evm, typedData: { ...td, primaryType: "Missing" },
  }));
  out.malformedTx = await attempt(() => cdp.endUser.signEvmTransaction({ userId: user.userId, address: evm, transaction: "0x01c0" }));
  // The project-level switch.
  await dev("PUT", "/_emulator/cdp/settings", { delegatedSigningEnabled: false });
  out.projectDisabled = await attempt(() => cdp.endUser.signEvmTypedData({ userId: user.userId, address: evm, typedData: td }));
  await dev("PUT", "/_emulator/cdp/settings", { delegatedSigningEnabled: true });
  // The developer revokes it.
  await cdp.endUser.revokeDelegationForEndUser({ userId: user.userId });
  out.afterRevoke = await attempt(() => cdp.endUser.signEvmTypedData({ userId: user.userId, address: evm, typedData: td }));
  // Expired.
  await dev("POST", `/_emulator/cdp/end-users/${user.userId}/delegation`, { expiresAt: "2020-01-01T00:00:00Z" });
  out.afterExpiry = await attempt(() => cdp.endUser.signSolanaTransaction({ userId: user.userId, address: sol, transaction: solUnsigned }));

  // Idempotency keys: a replay answers the first reply; another body under the key is refused.
  const idem = crypto.randomUUID();
  const userId = `idem-${rand()}`;
  const first = await cdp.endUser.createEndUser({ userId, idempotencyKey: idem, authenticationMethods: [{ type: "email", email: `${userId}@example.com` }], evmAccount: {} });
  const again = await attempt(() => cdp.endUser.createEndUser({ userId, idempotencyKey: idem, authenticationMethods: [{ type: "email", email: `${userId}@example.com` }], evmAccount: {} }));
  out.idempotentReplay = again.ok && first.evmAccounts[0] === again.value.evmAccounts[0] && first.userId === again.value.userId;
  out.idempotentConflict = await attempt(() => cdp.endUser.createEndUser({ userId, idempotencyKey: idem, authenticationMethods: [{ type: "email", email: `other-${userId}@example.com` }] }));
  out.unknownUser = await attempt(() => cdp.endUser.getEndUser({ userId: `nobody-${rand()}` }));
  return out;
}

// ---------------------------------------------------------------- CDP: refused credentials
function b64url(x) {
  return Buffer.from(typeof x === "string" ? x : JSON.stringify(x)).toString("base64url");
}

function jwtES256(header, claims, pem) {
  const input = `${b64url(header)}.${b64url(claims)}`;
  const sig = crypto.sign("sha256", Buffer.from(input), { key: pem, dsaEncoding: "ieee-p1363" });
  return `${input}.${sig.toString("base64url")}`;
}

async function cdpAuthChecks() {
  const out = {};
  const key = accounts.cdp.apiKeys[0];
  const walletSecret = accounts.cdp.walletSecrets[0];
  const host = new URL(emulator).host;
  const path = "/platform/v2/end-users";
  const newBody = () => ({ userId: `auth-${rand()}`, authenticationMethods: [{ type: "email", email: `auth-${rand()}@example.com` }] });
  const send = async ({ bearer, wallet, body, sendPath = path }) => {
    const headers = { "content-type": "application/json" };
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    if (wallet) headers["x-wallet-auth"] = wallet;
    const r = await fetch(`${emulator}${sendPath}`, { method: "POST", headers, body: JSON.stringify(body) });
    const j = await r.json().catch(() => ({}));
    return { status: r.status, type: j.errorType ?? null, message: j.errorMessage ?? null };
  };
  const bearerFor = (k = key, p = path, method = "POST") => cdpAuth.generateJwt({
    apiKeyId: k.id, apiKeySecret: k.secret, requestMethod: method, requestHost: host, requestPath: p,
  });
  const walletFor = (data, p = path) => cdpAuth.generateWalletJwt({
    walletSecret, requestMethod: "POST", requestHost: host, requestPath: p, requestData: data,
  });
  let body = newBody();
  out.good = await send({ bearer: await bearerFor(), wallet: await walletFor(body), body });
  body = newBody();
  out.goodEd25519 = await send({ bearer: await bearerFor(accounts.cdp.apiKeys[1]), wallet: await walletFor(body), body });
  // Another key under a registered id.
  const { privateKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const strangerPem = privateKey.export({ type: "pkcs8", format: "pem" });
  body = newBody();
  out.wrongKey = await send({ bearer: await bearerFor({ id: key.id, secret: strangerPem }), wallet: await walletFor(body), body });
  out.unknownKeyId = await send({ bearer: await bearerFor({ id: crypto.randomUUID(), secret: key.secret }), wallet: await walletFor(body), body });
  out.wrongUris = await send({ bearer: await bearerFor(key, "/platform/v2/end-users/lookup"), wallet: await walletFor(body), body });
  out.wrongMethod = await send({ bearer: await bearerFor(key, path, "GET"), wallet: await walletFor(body), body });
  const now = Math.floor(Date.now() / 1000);
  const claims = (nbf, exp) => ({ sub: key.id, iss: "cdp", uris: [`POST ${host}${path}`], iat: nbf, nbf, exp });
  const header = { alg: "ES256", kid: key.id, typ: "JWT", nonce: rand() };
  body = newBody();
  out.handMadeGood = await send({ bearer: jwtES256(header, claims(now, now + 120), key.secret), wallet: await walletFor(body), body });
  body = newBody();
  out.expired = await send({ bearer: jwtES256(header, claims(now - 600, now - 480), key.secret), wallet: await walletFor(body), body });
  out.notYetValid = await send({ bearer: jwtES256(header, claims(now + 600, now + 720), key.secret), wallet: await walletFor(body), body });
  out.noBearer = await send({ wallet: await walletFor(body), body });
  // Wallet auth.
  out.noWalletAuth = await send({ bearer: await bearerFor(), body });
  out.badReqHash = await send({ bearer: await bearerFor(), wallet: await walletFor({ ...body, userId: "someone-else" }), body });
  out.walletWrongUris = await send({ bearer: await bearerFor(), wallet: await walletFor(body, "/platform/v2/end-users/x/evm"), body });
  const { privateKey: strangerWallet } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  out.wrongWalletSecret = await send({
    bearer: await bearerFor(),
    wallet: await cdpAuth.generateWalletJwt({
      walletSecret: strangerWallet.export({ type: "pkcs8", format: "der" }).toString("base64"),
      requestMethod: "POST", requestHost: host, requestPath: path, requestData: body,
    }),
    body,
  });
  const staleClaims = { uris: [`POST ${host}${path}`], iat: now - 300, nbf: now - 300, jti: rand(),
    reqHash: crypto.createHash("sha256").update(JSON.stringify(sortKeys(body))).digest("hex") };
  const walletPem = crypto.createPrivateKey({ key: Buffer.from(walletSecret, "base64"), format: "der", type: "pkcs8" });
  out.staleWalletAuth = await send({ bearer: await bearerFor(), wallet: jwtES256({ alg: "ES256", typ: "JWT" }, staleClaims, walletPem), body });
  body = newBody();
  const once = await walletFor(body);
  out.firstUse = await send({ bearer: await bearerFor(), wallet: once, body });
  out.replayedJti = await send({ bearer: await bearerFor(), wallet: once, body });
  return out;
}

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    return Object.keys(v).sort().reduce((o, k) => ((o[k] = sortKeys(v[k])), o), {});
  }
  return v;
}

// ---------------------------------------------------------------- faults
async function faults() {
  const out = {};
  const cdp = cdpClient(0);
  await dev("POST", "/_emulator/faults", { vendor: "cdp", kind: "429", count: 1 });
  out.rateLimited = await attempt(() => cdp.endUser.createEndUser({ authenticationMethods: [{ type: "email", email: `f-${rand()}@example.com` }] }));
  await dev("POST", "/_emulator/faults", { vendor: "cdp", kind: "500", count: 1, pathContains: "/end-users" });
  out.serverError = await attempt(() => cdp.endUser.createEndUser({ authenticationMethods: [{ type: "email", email: `f-${rand()}@example.com` }] }));
  out.afterFaults = await attempt(async () => (await cdp.endUser.createEndUser({ authenticationMethods: [{ type: "email", email: `f-${rand()}@example.com` }] })).userId);
  const privy = privyClient();
  await dev("POST", "/_emulator/faults", { vendor: "privy", kind: "503", count: 1 });
  out.privyUnavailable = await attempt(() => privy.users().create({ linked_accounts: [{ type: "email", address: `f-${rand()}@example.com` }] }));
  await dev("POST", "/_emulator/faults", { vendor: "privy", kind: "429", count: 1 });
  out.privyRateLimited = await attempt(() => privy.users().create({ linked_accounts: [{ type: "email", address: `f-${rand()}@example.com` }] }));
  // A vendor that does not answer in time: the SDK's own timeout fires.
  await dev("POST", "/_emulator/faults", { vendor: "privy", kind: "delay", delayMs: 3000, count: 1 });
  const app = accounts.privy.apps[0];
  const impatient = new PrivyClient({ appId: app.appId, appSecret: app.appSecret, apiUrl: emulator, maxRetries: 0, timeout: 300 });
  const slow = await attempt(() => impatient.users().create({ linked_accounts: [{ type: "email", address: `f-${rand()}@example.com` }] }));
  out.privyTimedOut = { ok: slow.ok, kind: slow.ok ? null : slow.message.toLowerCase().includes("timed out") };
  out.afterDelay = (await attempt(() => impatient.users().create({ linked_accounts: [{ type: "email", address: `f-${rand()}@example.com` }] }))).ok;
  return out;
}

// ---------------------------------------------------------------- Privy
function privyClient(secret) {
  const app = accounts.privy.apps[0];
  return new PrivyClient({ appId: app.appId, appSecret: secret ?? app.appSecret, apiUrl: emulator, maxRetries: 0 });
}

async function privyFlow() {
  const out = {};
  const app = accounts.privy.apps[0];
  const authKey = app.authorizationKeys[0];
  const privy = privyClient();
  const email = `dev-${rand()}@example.com`;
  const user = await privy.users().create({ linked_accounts: [{ type: "email", address: email }] });
  out.user = { id: user.id, linked: user.linked_accounts.map((a) => a.type) };
  const phoneNumber = phone();
  const phoneUser = await privy.users().create({
    linked_accounts: [{ type: "phone", number: phoneNumber }],
    wallets: [{ chain_type: "solana", additional_signers: [{ signer_id: authKey.id }] }],
  });
  out.phoneUser = { id: phoneUser.id, linked: phoneUser.linked_accounts.map((a) => a.type) };
  out.byEmail = (await privy.users().getByEmailAddress({ address: email })).id;
  out.byPhone = (await privy.users().getByPhoneNumber({ number: phoneNumber })).id;
  out.duplicate = await attempt(() => privy.users().create({ linked_accounts: [{ type: "email", address: email }] }));
  const ctx = { authorization_private_keys: [authKey.privateKey] };
  const evmWallet = await privy.wallets().create({
    chain_type: "ethereum",
    owner: { user_id: user.id },
    additional_signers: [{ signer_id: authKey.id }],
  });
  out.evmWallet = { id: evmWallet.id, address: evmWallet.address, signers: evmWallet.additional_signers };
  out.gotWallet = (await privy.wallets().get(evmWallet.id)).address;
  out.userWallets = (await privy.users()._get(user.id)).linked_accounts.filter((a) => a.type === "wallet").map((a) => a.address);
  const td = typedData(evmWallet.address);
  const tdPrivy = { domain: td.domain, types: td.types, primary_type: td.primaryType, message: td.message };
  const signed = await privy.wallets().ethereum().signTypedData(evmWallet.id, { params: { typed_data: tdPrivy }, authorization_context: ctx });
  out.typedRecovered = await recoverTyped(td, signed.signature);
  out.typedEncoding = signed.encoding;
  const unsigned = approveTx(9);
  const signedTx = await privy.wallets().ethereum().signTransaction(evmWallet.id, {
    params: { transaction: { type: 2, chain_id: unsigned.chainId, nonce: unsigned.nonce, to: unsigned.to, data: unsigned.data,
      gas_limit: `0x${unsigned.gas.toString(16)}`, max_fee_per_gas: `0x${unsigned.maxFeePerGas.toString(16)}`,
      max_priority_fee_per_gas: `0x${unsigned.maxPriorityFeePerGas.toString(16)}`, value: "0x0" } },
    authorization_context: ctx,
  });
  out.tx = await checkSignedTx(unsigned, signedTx.signed_transaction, evmWallet.address);
  // The phone user's Solana wallet, created with the user, the app key as its signer.
  const solWallet = phoneUser.linked_accounts.find((a) => a.type === "wallet" && a.chain_type === "solana");
  const solUnsigned = await solanaTx(solWallet.address);
  const solSigned = await privy.wallets().solana().signTransaction(solWallet.id, { transaction: solUnsigned, authorization_context: ctx });
  out.solana = checkSignedSolana(solUnsigned, solSigned.signed_transaction, solWallet.address);
  // A wallet owned by the authorization key itself.
  const keyOwned = await privy.wallets().create({ chain_type: "ethereum", owner: { public_key: authKey.publicKey } });
  const td2 = typedData(keyOwned.address);
  const signed2 = await privy.wallets().ethereum().signTypedData(keyOwned.id, {
    params: { typed_data: { domain: td2.domain, types: td2.types, primary_type: td2.primaryType, message: td2.message } },
    authorization_context: ctx,
  });
  out.keyOwnedRecovered = (await recoverTyped(td2, signed2.signature)) === keyOwned.address;
  // Refusals.
  const { privateKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const stranger = `wallet-auth:${privateKey.export({ type: "pkcs8", format: "der" }).toString("base64")}`;
  out.wrongAuthorizationKey = await attempt(() => privy.wallets().ethereum().signTypedData(evmWallet.id, { params: { typed_data: tdPrivy }, authorization_context: { authorization_private_keys: [stranger] } }));
  out.noAuthorizationSignature = await attempt(() => privy.wallets().ethereum().signTypedData(evmWallet.id, { params: { typed_data: tdPrivy } }));
  out.wrongSecret = await attempt(() => privyClient("wrong-secret").users().getByEmailAddress({ address: email }));
  out.unknownWallet = await attempt(() => privy.wallets().get(`nowallet${rand()}`));
  await dev("PUT", `/_emulator/privy/wallets/${evmWallet.id}/policy`, { deny: true });
  out.policyDenied = await attempt(() => privy.wallets().ethereum().signTypedData(evmWallet.id, { params: { typed_data: tdPrivy }, authorization_context: ctx }));
  await dev("PUT", `/_emulator/privy/wallets/${evmWallet.id}/policy`, { deny: false });
  out.afterPolicyLifted = await attempt(async () => (await privy.wallets().ethereum().signTypedData(evmWallet.id, { params: { typed_data: tdPrivy }, authorization_context: ctx })).encoding);
  // A request whose signature covers an expiry already past.
  out.expiredRequest = await attempt(() => privy.wallets().ethereum().signTypedData(evmWallet.id, {
    params: { typed_data: tdPrivy }, authorization_context: ctx, request_expiry: Date.now() - 1000,
  }));
  // Idempotency: the same key and body replay the first reply (the same new wallet);
  // the key with another body is refused.
  const idem = crypto.randomUUID();
  const spec = { chain_type: "solana", owner: { user_id: user.id }, "privy-idempotency-key": idem };
  const a = await privy.wallets().create(spec);
  const b = await privy.wallets().create(spec);
  out.idempotentReplay = a.id === b.id && a.address === b.address;
  out.idempotentConflict = await attempt(() => privy.wallets().create({ ...spec, chain_type: "ethereum" }));
  const sigIdem = crypto.randomUUID();
  await privy.wallets().ethereum().signTypedData(evmWallet.id, { params: { typed_data: tdPrivy }, authorization_context: ctx, idempotency_key: sigIdem });
  out.rpcIdempotencyConflict = await attempt(() => privy.wallets().ethereum().signTypedData(evmWallet.id, {
    params: { typed_data: { ...tdPrivy, message: { ...tdPrivy.message, value: "1" } } }, authorization_context: ctx, idempotency_key: sigIdem,
  }));
  return out;
}

// ---------------------------------------------------------------- restart
async function createOne() {
  const u = await cdpClient(0).endUser.createEndUser({
    authenticationMethods: [{ type: "email", email: `keep-${rand()}@example.com` }], evmAccount: {},
  });
  return { userId: u.userId, evm: u.evmAccounts[0] };
}

async function signPersisted() {
  const cdp = cdpClient(0);
  const u = await cdp.endUser.getEndUser({ userId: input.userId });
  await dev("POST", `/_emulator/cdp/end-users/${u.userId}/delegation`, {});
  const td = typedData(u.evmAccounts[0]);
  const s = await cdp.endUser.signEvmTypedData({ userId: u.userId, address: u.evmAccounts[0], typedData: td });
  return { evm: u.evmAccounts[0], recovered: await recoverTyped(td, s.signature) };
}

const ops = {
  cdp: cdpFlow, "cdp-auth": cdpAuthChecks, faults, privy: privyFlow,
  create: createOne, "sign-persisted": signPersisted,
};
if (!ops[op]) throw new Error(`unknown op ${op}`);
process.stdout.write(JSON.stringify(await ops[op]()));
