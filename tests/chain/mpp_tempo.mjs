#!/usr/bin/env node
// An MPP merchant for the `tempo` charge method, built entirely with the reference
// implementation (npm mppx 0.11.0, `tempo.charge` from mppx/server, viem 2.57's Tempo
// chain support) on a local anvil started with `--network tempo --hardfork T4` (chain
// id 42431, Tempo Moderato; pathUSD at 0x20c0...0000, dev accounts funded with it).
// mppx issues the HMAC-bound challenge; on payment it verifies the credential (Tempo
// envelope, the TIP-20 transferWithMemo of exactly the amount to the recipient, the
// attribution memo bound to the challenge, a simulation), adds its fee-payer signature
// when it sponsors the fee, broadcasts the transaction, waits for the receipt and checks
// its Transfer logs. The sponsor is anvil dev account 1.
//
//   node mpp_tempo.mjs challenge ANVIL_URL < {"secretKey", "realm", "recipient", "amount",
//        "feePayer"?: bool, "expires"?, "currency"?}
//     -> {"status": 402, "wwwAuthenticate": "Payment id=..."}
//   node mpp_tempo.mjs pay ANVIL_URL < {..., "credential": "Payment ..."}
//     -> {"status": 200, "receipt": "<Payment-Receipt>", "reference": "0x<tx hash>"}
//        or {"status": 402, "body": ...}
//
// `amount` is in display units ("0.25"; TIP-20 stablecoins have 6 decimals), as merchants
// configure mppx.
import { createClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { tempoModerato } from "viem/tempo/chains";
import { Mppx, tempo } from "mppx/server";
import { anvilUrlFromArgs, toJson } from "./chain.mjs";

export const PATH_USD = "0x20c0000000000000000000000000000000000000";
// anvil's well-known dev account 1 (a public test key), the merchant's fee payer.
const SPONSOR_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function main() {
  const op = process.argv[2];
  const url = anvilUrlFromArgs();
  const input = await readStdin();
  const chain = { ...tempoModerato, rpcUrls: { default: { http: [url] } } };
  const client = createClient({ chain, transport: http(url) });
  const mppx = Mppx.create({
    realm: input.realm,
    secretKey: input.secretKey,
    methods: [
      tempo.charge({
        currency: input.currency ?? PATH_USD,
        recipient: input.recipient,
        testnet: true,
        getClient: () => client,
        ...(input.feePayer ? { feePayer: privateKeyToAccount(SPONSOR_KEY) } : {}),
      }),
    ],
  });
  const options = { amount: input.amount, ...(input.expires ? { expires: input.expires } : {}) };
  const headers = input.credential ? { authorization: input.credential } : {};
  const response = await mppx.charge(options)(new Request("http://merchant.test/item", { headers }));
  if (op === "challenge" || response.status === 402) {
    const challenge = response.challenge;
    process.stdout.write(toJson({
      status: response.status,
      wwwAuthenticate: challenge.headers.get("www-authenticate"),
      body: await challenge.text(),
    }) + "\n");
    return;
  }
  const paid = response.withReceipt(new Response("ok"));
  const receipt = paid.headers.get("payment-receipt");
  const decoded = JSON.parse(Buffer.from(receipt, "base64url").toString("utf8"));
  process.stdout.write(toJson({ status: paid.status, receipt, reference: decoded.reference }) + "\n");
}

main().catch((e) => {
  console.error(e?.stack ?? String(e));
  process.exit(1);
});
