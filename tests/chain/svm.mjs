#!/usr/bin/env node
// A loopback Solana JSON-RPC endpoint backed by an in-process SVM (npm `litesvm`), for
// Purser's tests: Purser reads blockhashes and balances from it, and the x402 reference
// facilitator (npm `@x402/svm`, svm_facilitator.mjs) simulates, sends and confirms
// transactions through it, so they all see ONE ledger state.
//
//   node svm.mjs [PORT]      listens on 127.0.0.1:PORT (0 or absent: a free port) and
//                            prints {"url": "http://127.0.0.1:N", "feePayer": "..."}
//                            as its first stdout line; runs until killed.
//
// Standard methods answered (the subset Purser, @solana/kit and the facilitator use):
// getLatestBlockhash, getTokenAccountsByOwner (jsonParsed), getAccountInfo (base64 or
// jsonParsed for token accounts), getBalance, getSlot, getBlockHeight, getMinimumBalanceForRentExemption,
// simulateTransaction (base64; sigVerify false by default, as the facilitator asks),
// sendTransaction (base64), getSignatureStatuses.
// Test-only methods (prefixed `test_`):
//   test_fundToken(owner, mint, amount)   sets owner's associated token account of mint
//                                         (classic SPL Token) to `amount` (decimal string)
//   test_tokenBalance(owner, mint)        that account's amount ("0" if absent)
//   test_feePayer()                       the facilitator's fee payer address
//   test_airdrop(owner, lamports)         credits owner with SOL (lamports, a number or
//                                         decimal string); returns its new balance
//   test_expireBlockhash()                moves to a new blockhash
//
// USDC mints (6 decimals, classic SPL Token) are installed at the real mainnet and devnet
// addresses. The facilitator key is derived from a fixed test seed and funded with SOL.
import http from "node:http";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import {
  address,
  getAddressEncoder,
  getAddressDecoder,
  getBase58Decoder,
  getBase64Encoder,
  getTransactionDecoder,
  getProgramDerivedAddress,
  createKeyPairSignerFromPrivateKeyBytes,
} from "@solana/kit";

// The litesvm native binding (npm `litesvm-linux-x64-gnu`, the package the `litesvm`
// wrapper loads on this platform; the wrapper itself is not installed because its
// lockfile entry would need every platform's binding, which the registry here lacks).
// PURSER_LITESVM_BINDING names another binding package or .node file.
const require = createRequire(import.meta.url);
const native = require(process.env.PURSER_LITESVM_BINDING ?? "litesvm-linux-x64-gnu");

export const TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
export const ATA_PROGRAM = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL";
export const USDC_MINTS = {
  solana: "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
  "solana-devnet": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
};
/** The facilitator's fee payer key: a fixed TEST seed (never a real key). */
export const FACILITATOR_SEED = new Uint8Array(32).fill(0x5a);

const enc = getAddressEncoder();
const dec = getAddressDecoder();

function u64le(v) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}

function mintData(authority) {
  const d = new Uint8Array(82);
  d.set([1, 0, 0, 0], 0); // COption::Some
  d.set(enc.encode(authority), 4);
  d.set(u64le(0), 36); // supply (not tracked)
  d[44] = 6; // decimals
  d[45] = 1; // initialized
  return d; // no freeze authority
}

function tokenAccountData(mint, owner, amount) {
  const d = new Uint8Array(165);
  d.set(enc.encode(mint), 0);
  d.set(enc.encode(owner), 32);
  d.set(u64le(amount), 64);
  d[108] = 1; // AccountState::Initialized
  return d;
}

function parseTokenAccount(data) {
  if (data.length !== 165) return null;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    mint: dec.decode(data.slice(0, 32)),
    owner: dec.decode(data.slice(32, 64)),
    amount: view.getBigUint64(64, true),
    state: data[108],
  };
}

/** The associated token account of `owner` for `mint` (classic SPL Token). */
export async function ata(owner, mint) {
  const [pda] = await getProgramDerivedAddress({
    programAddress: address(ATA_PROGRAM),
    seeds: [enc.encode(address(owner)), enc.encode(address(TOKEN_PROGRAM)), enc.encode(address(mint))],
  });
  return pda;
}

/** A small facade over the native LiteSvm with base58 addresses. */
class Svm {
  constructor() {
    this.inner = new native.LiteSvm(); // builtins, default programs (SPL Token, Memo, ...), sysvars
  }
  account(addr) {
    const a = this.inner.getAccount(enc.encode(address(addr)));
    if (a === null) return null;
    return { lamports: a.lamports(), data: a.data(), owner: dec.decode(a.owner()), executable: a.executable() };
  }
  setAccount(addr, { lamports, data, owner, executable = false }) {
    this.inner.setAccount(enc.encode(address(addr)), new native.Account(BigInt(lamports), data, enc.encode(address(owner)), executable, 0n));
  }
  programAccounts(program) {
    return this.inner.getProgramAccounts(enc.encode(address(program))).map((x) => {
      const a = x.account();
      return { address: dec.decode(x.address), lamports: a.lamports(), data: a.data() };
    });
  }
  slot() {
    return Number(this.inner.getClock().slot);
  }
}

class RpcError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export async function createSvm() {
  const svm = new Svm();
  const feePayer = await createKeyPairSignerFromPrivateKeyBytes(FACILITATOR_SEED);
  svm.inner.airdrop(enc.encode(feePayer.address), 100_000_000_000n);
  const rentMint = svm.inner.minimumBalanceForRentExemption(82n);
  for (const mint of Object.values(USDC_MINTS)) {
    svm.setAccount(mint, { lamports: rentMint, data: mintData(feePayer.address), owner: TOKEN_PROGRAM });
  }
  return { svm, feePayer };
}

export function makeHandler({ svm, feePayer }) {
  const statuses = new Map(); // signature -> {slot, err}
  const rentToken = svm.inner.minimumBalanceForRentExemption(165n);
  const context = () => ({ apiVersion: "2.2.0", slot: svm.slot() });

  function tokenAccountJson(pubkey, lamports, info) {
    return {
      pubkey,
      account: {
        data: {
          program: "spl-token",
          parsed: {
            type: "account",
            info: {
              isNative: false,
              mint: info.mint,
              owner: info.owner,
              state: "initialized",
              tokenAmount: {
                amount: info.amount.toString(),
                decimals: 6,
                uiAmount: Number(info.amount) / 1e6,
                uiAmountString: (Number(info.amount) / 1e6).toString(),
              },
            },
          },
          space: 165,
        },
        executable: false,
        lamports: Number(lamports),
        owner: TOKEN_PROGRAM,
        rentEpoch: 0,
        space: 165,
      },
    };
  }

  function txBytes(b64) {
    if (typeof b64 !== "string") throw new RpcError(-32602, "transaction must be a base64 string");
    const bytes = getBase64Encoder().encode(b64);
    getTransactionDecoder().decode(bytes); // must be a well-formed transaction
    return bytes;
  }

  const plain = (v) => JSON.parse(JSON.stringify(v ?? null, (_, x) => (typeof x === "bigint" ? x.toString() : x)));
  const errJson = (failed) => plain(failed.err()) ?? { failed: failed.toString() };

  const methods = {
    getLatestBlockhash: () => ({
      context: context(),
      value: { blockhash: svm.inner.latestBlockhash(), lastValidBlockHeight: svm.slot() + 150 },
    }),
    getSlot: () => svm.slot(),
    getBlockHeight: () => svm.slot(),
    getMinimumBalanceForRentExemption: ([len]) => Number(svm.inner.minimumBalanceForRentExemption(BigInt(len))),
    getBalance: ([addr]) => ({ context: context(), value: Number(svm.inner.getBalance(enc.encode(address(addr))) ?? 0n) }),
    getAccountInfo: ([addr, cfg]) => {
      const acct = svm.account(addr);
      if (!acct) return { context: context(), value: null };
      const info = acct.owner === TOKEN_PROGRAM ? parseTokenAccount(acct.data) : null;
      if (cfg?.encoding === "jsonParsed" && info) {
        return { context: context(), value: tokenAccountJson(addr, acct.lamports, info).account };
      }
      return {
        context: context(),
        value: {
          data: [Buffer.from(acct.data).toString("base64"), "base64"],
          executable: acct.executable,
          lamports: Number(acct.lamports),
          owner: acct.owner,
          rentEpoch: 0,
          space: acct.data.length,
        },
      };
    },
    getTokenAccountsByOwner: ([owner, filter, cfg]) => {
      if (!filter?.mint) throw new RpcError(-32602, "only the {mint} filter is implemented");
      if (cfg?.encoding !== "jsonParsed") throw new RpcError(-32602, "only jsonParsed is implemented");
      const value = [];
      for (const acct of svm.programAccounts(TOKEN_PROGRAM)) {
        const info = parseTokenAccount(acct.data);
        if (info && info.owner === owner && info.mint === filter.mint) {
          value.push(tokenAccountJson(acct.address, acct.lamports, info));
        }
      }
      return { context: context(), value };
    },
    simulateTransaction: ([b64, cfg]) => {
      const bytes = txBytes(b64);
      svm.inner.setSigverify(!!(cfg?.sigVerify ?? false));
      let r;
      try {
        r = svm.inner.simulateVersionedTransaction(bytes);
      } finally {
        svm.inner.setSigverify(true);
      }
      const failed = r instanceof native.FailedTransactionMetadata;
      const meta = r.meta();
      return {
        context: context(),
        value: { err: failed ? errJson(r) : null, logs: meta.logs(), accounts: null, unitsConsumed: Number(meta.computeUnitsConsumed()), returnData: null, innerInstructions: [] },
      };
    },
    sendTransaction: ([b64]) => {
      const bytes = txBytes(b64);
      const tx = getTransactionDecoder().decode(bytes);
      const first = Object.values(tx.signatures)[0];
      if (!first) throw new RpcError(-32602, "the fee payer has not signed");
      const signature = getBase58Decoder().decode(first);
      const r = svm.inner.sendVersionedTransaction(bytes);
      const failed = r instanceof native.FailedTransactionMetadata;
      statuses.set(signature, { slot: svm.slot(), err: failed ? errJson(r) : null });
      return signature;
    },
    getSignatureStatuses: ([sigs]) => ({
      context: context(),
      value: sigs.map((s) => {
        const st = statuses.get(s);
        return st ? { slot: st.slot, confirmations: null, err: st.err, status: st.err ? { Err: st.err } : { Ok: null }, confirmationStatus: "finalized" } : null;
      }),
    }),
    test_fundToken: async ([owner, mint, amount]) => {
      const account = await ata(owner, mint);
      svm.setAccount(account, { lamports: rentToken, data: tokenAccountData(mint, owner, BigInt(amount)), owner: TOKEN_PROGRAM });
      return account;
    },
    test_tokenBalance: async ([owner, mint]) => {
      const acct = svm.account(await ata(owner, mint));
      return acct ? parseTokenAccount(acct.data).amount.toString() : "0";
    },
    test_feePayer: () => feePayer.address,
    test_airdrop: ([owner, lamports]) => {
      svm.inner.airdrop(enc.encode(address(owner)), BigInt(lamports));
      return svm.account(owner).lamports.toString();
    },
    test_expireBlockhash: () => {
      svm.inner.expireBlockhash();
      return svm.inner.latestBlockhash();
    },
  };

  return async function answer(req) {
    const id = req?.id ?? null;
    try {
      if (!req || req.jsonrpc !== "2.0" || typeof req.method !== "string") {
        throw new RpcError(-32600, "not a JSON-RPC 2.0 request");
      }
      const fn = methods[req.method];
      if (!fn) throw new RpcError(-32601, `method ${req.method} is not implemented by svm.mjs`);
      const result = await fn(Array.isArray(req.params) ? req.params : []);
      return { jsonrpc: "2.0", id, result };
    } catch (e) {
      return { jsonrpc: "2.0", id, error: { code: e.code ?? -32603, message: String(e.message ?? e) } };
    }
  };
}

export async function serve(port = 0) {
  const state = await createSvm();
  const answer = makeHandler(state);
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      let body;
      try {
        const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        body = Array.isArray(parsed) ? await Promise.all(parsed.map(answer)) : await answer(parsed);
      } catch {
        body = { jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } };
      }
      const text = JSON.stringify(body);
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}`, ...state };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.argv[2] ?? 0);
  serve(port).then(({ url, feePayer }) => {
    process.stdout.write(JSON.stringify({ url, feePayer: feePayer.address }) + "\n");
  });
  for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
}
