#!/usr/bin/env node
// An MPP merchant for the `solana` charge method (draft-solana-charge-00, pull mode with
// server-sponsored fees) on the litesvm-backed RPC of svm.mjs, for Purser's tests.
//
// The protocol layer is the reference implementation (npm mppx 0.11.0, `Mppx.create`):
// it issues the HMAC-bound challenge, parses the credential, checks that it echoes the
// challenge this merchant issued for this route, and answers 402 or the receipt. mppx has
// no `solana` method, so the method's server side is written here, following the draft's
// "Pull Mode Verification" and "Fee Sponsorship" sections:
//   * payload.type "transaction", the base64 wire transaction decoded with @solana/kit;
//   * no address lookup tables; the fee payer (first account) is this merchant's
//     feePayerKey when it sponsors fees, else the payer;
//   * only ComputeBudget (limit <= 200,000, price <= 5,000,000 micro-lamports), one SPL
//     Token TransferChecked of exactly `amount` (decimals 6) of the `currency` mint to the
//     recipient's associated token account, authority not the fee payer, and a Memo equal
//     to `externalId` when the request has one;
//   * the merchant co-signs as fee payer (the svm.mjs fixed test key), simulates with
//     signature verification, sends, and the SVM executes it (the SPL Token program moves
//     the tokens; a wrong payer signature fails there).
//
//   node mpp_svm.mjs challenge RPC_URL < {"secretKey", "realm", "recipient", "amount",
//        "network"?: "mainnet" | "devnet" (absent: not in the challenge,
//        the USDC mint of mainnet), "sponsor"?: true (false: the payer pays the fee), "externalId"?, "expires"?, "recentBlockhash"?: bool}
//     -> {"status": 402, "wwwAuthenticate": "Payment id=..."}
//   node mpp_svm.mjs pay RPC_URL < {..., "credential": "Payment ..."}
//     -> {"status": 200, "receipt", "signature"} or {"status": 402, "body"}
//
// `amount` is in base units (USDC: 6 decimals).
import {
  address,
  createKeyPairFromPrivateKeyBytes,
  getAddressEncoder,
  getBase58Decoder,
  getBase64EncodedWireTransaction,
  getBase64Encoder,
  getCompiledTransactionMessageDecoder,
  getProgramDerivedAddress,
  getTransactionDecoder,
  partiallySignTransaction,
  getAddressFromPublicKey,
} from "@solana/kit";
import { Method, Receipt, z } from "mppx";
import { Mppx } from "mppx/server";
import { ATA_PROGRAM, FACILITATOR_SEED, TOKEN_PROGRAM, USDC_MINTS } from "./svm.mjs";

const COMPUTE_BUDGET = "ComputeBudget111111111111111111111111111111";
const MEMO = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr";
const MINT_BY_NETWORK = { mainnet: USDC_MINTS.solana, devnet: USDC_MINTS["solana-devnet"] };

function loopback(url) {
  const u = new URL(url);
  if (u.hostname !== "127.0.0.1") throw new Error(`refusing a non-loopback RPC URL: ${url}`);
  return url;
}

async function rpc(url, method, params) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

const u32 = (d, o) => new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(o, true);
const u64 = (d, o) => new DataView(d.buffer, d.byteOffset, d.byteLength).getBigUint64(o, true);

async function ata(owner, mint) {
  const enc = getAddressEncoder();
  const [pda] = await getProgramDerivedAddress({
    programAddress: address(ATA_PROGRAM),
    seeds: [enc.encode(address(owner)), enc.encode(address(TOKEN_PROGRAM)), enc.encode(address(mint))],
  });
  return pda;
}

/** The draft's structural checks of a pull-mode transaction; throws on the first problem. */
async function checkTransaction(tx, request) {
  const message = getCompiledTransactionMessageDecoder().decode(tx.messageBytes);
  if (message.addressTableLookups?.length) throw new Error("address lookup tables are not allowed");
  const keys = message.staticAccounts;
  const details = request.methodDetails;
  const feePayer = keys[0];
  if (details.feePayer && feePayer !== details.feePayerKey) {
    throw new Error(`the fee payer is ${feePayer}, not the merchant's ${details.feePayerKey}`);
  }
  const expectedDestination = await ata(request.recipient, request.currency);
  let transfers = 0;
  let memos = 0;
  let payer = null;
  for (const ix of message.instructions) {
    const program = keys[ix.programAddressIndex];
    const data = ix.data ?? new Uint8Array();
    const accounts = (ix.accountIndices ?? []).map((i) => keys[i]);
    if (program === COMPUTE_BUDGET) {
      if (accounts.length) throw new Error("a compute budget instruction with accounts");
      if (data[0] === 2 && data.length === 5 && u32(data, 1) <= 200_000) continue;
      if (data[0] === 3 && data.length === 9 && u64(data, 1) <= 5_000_000n) continue;
      throw new Error("an unexpected compute budget instruction");
    }
    if (program === TOKEN_PROGRAM) {
      if (data[0] !== 12 || data.length !== 10) throw new Error("a token instruction other than TransferChecked");
      const [source, mint, destination, authority] = accounts;
      if (mint !== request.currency) throw new Error(`transfer of mint ${mint}, not ${request.currency}`);
      if (destination !== expectedDestination) throw new Error(`transfer to ${destination}, not the recipient's token account`);
      if (u64(data, 1) !== BigInt(request.amount)) throw new Error(`transfer of ${u64(data, 1)}, not ${request.amount}`);
      if (data[9] !== 6) throw new Error("decimals are not 6");
      if (authority === feePayer && details.feePayer) throw new Error("the fee payer authorizes the transfer");
      if (source !== (await ata(authority, mint))) throw new Error("the source is not the authority's token account");
      payer = authority;
      transfers += 1;
      continue;
    }
    if (program === MEMO) {
      if (new TextDecoder().decode(data) !== request.externalId) throw new Error("a memo other than externalId");
      memos += 1;
      continue;
    }
    throw new Error(`an unexpected program: ${program}`);
  }
  if (transfers !== 1) throw new Error(`${transfers} transfers instead of one`);
  if (request.externalId && memos !== 1) throw new Error("the externalId memo is missing");
  return { payer, feePayer };
}

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

const toJson = (v) => JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x));

async function main() {
  const [op, url] = process.argv.slice(2);
  loopback(url);
  const input = await readStdin();
  // network absent: the challenge omits it (the draft's default, mainnet).
  const network = input.network ?? null;
  const currency = MINT_BY_NETWORK[network ?? "mainnet"];
  const feeKeys = await createKeyPairFromPrivateKeyBytes(FACILITATOR_SEED);
  const feePayerKey = await getAddressFromPublicKey(feeKeys.publicKey);
  const sponsor = input.sponsor !== false;
  let settledSignature = null;

  const chargeMethod = Method.from({
    intent: "charge",
    name: "solana",
    schema: {
      credential: {
        payload: z.object({ type: z.string(), transaction: z.optional(z.string()) }),
      },
      request: z.object({
        amount: z.string(),
        currency: z.string(),
        recipient: z.string(),
        externalId: z.optional(z.string()),
        methodDetails: z.object({
          network: z.optional(z.string()),
          decimals: z.optional(z.number()),
          tokenProgram: z.optional(z.string()),
          feePayer: z.optional(z.boolean()),
          feePayerKey: z.optional(z.string()),
          recentBlockhash: z.optional(z.string()),
        }),
      }),
    },
  });

  let recentBlockhash;
  if (op === "challenge" && input.recentBlockhash) {
    recentBlockhash = (await rpc(url, "getLatestBlockhash", [{ commitment: "confirmed" }])).value.blockhash;
  }

  const server = Method.toServer(chargeMethod, {
    defaults: { currency, recipient: input.recipient, methodDetails: {} },
    async request({ request }) {
      return {
        ...request,
        methodDetails: {
          ...(network ? { network } : {}),
          decimals: 6,
          tokenProgram: TOKEN_PROGRAM,
          ...(sponsor ? { feePayer: true, feePayerKey } : {}),
          ...(recentBlockhash ? { recentBlockhash } : {}),
        },
      };
    },
    async verify({ credential }) {
      const request = credential.challenge.request;
      if (credential.payload.type !== "transaction") throw new Error("payload.type must be \"transaction\"");
      const bytes = getBase64Encoder().encode(credential.payload.transaction);
      if (bytes.length > 1232) throw new Error("the transaction is larger than 1232 bytes");
      let tx = getTransactionDecoder().decode(bytes);
      const { payer, feePayer } = await checkTransaction(tx, request);
      if (credential.source && !credential.source.endsWith(`:${payer}`)) {
        throw new Error(`source ${credential.source} is not the payer ${payer}`);
      }
      if (request.methodDetails.feePayer) {
        if (tx.signatures[feePayer] !== null) throw new Error("the fee payer's slot is not empty");
        tx = await partiallySignTransaction([feeKeys], tx);
      }
      const wire = getBase64EncodedWireTransaction(tx);
      const sim = await rpc(url, "simulateTransaction", [wire, { encoding: "base64", sigVerify: true }]);
      if (sim.value.err) throw new Error(`simulation failed: ${JSON.stringify(sim.value.err)} ${sim.value.logs}`);
      const signature = await rpc(url, "sendTransaction", [wire, { encoding: "base64" }]);
      const status = (await rpc(url, "getSignatureStatuses", [[signature]])).value[0];
      if (!status || status.err) throw new Error(`transaction failed: ${JSON.stringify(status)}`);
      settledSignature = signature;
      return Receipt.from({ method: "solana", reference: signature, status: "success", timestamp: new Date().toISOString() });
    },
  });

  const mppx = Mppx.create({ realm: input.realm, secretKey: input.secretKey, methods: [server] });
  const options = {
    amount: input.amount,
    ...(input.externalId ? { externalId: input.externalId } : {}),
    ...(input.expires ? { expires: input.expires } : {}),
  };
  const headers = input.credential ? { authorization: input.credential } : {};
  const response = await mppx.charge(options)(new Request("http://merchant.test/item", { headers }));
  if (op === "challenge" || response.status === 402) {
    const challenge = response.challenge;
    process.stdout.write(toJson({
      status: response.status,
      wwwAuthenticate: challenge.headers.get("www-authenticate"),
      body: await challenge.text(),
      feePayerKey,
    }) + "\n");
    return;
  }
  const paid = response.withReceipt(new Response("ok"));
  process.stdout.write(toJson({
    status: paid.status,
    receipt: paid.headers.get("payment-receipt"),
    signature: settledSignature,
  }) + "\n");
}

main().catch((e) => {
  console.error(e?.stack ?? String(e));
  process.exit(1);
});
