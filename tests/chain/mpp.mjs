#!/usr/bin/env node
// An MPP merchant built with the reference implementation (npm mppx 0.11.0): its server
// (`Mppx.create` with the `evm` charge method) issues HMAC-bound challenges and verifies
// credentials; settlement submits the EIP-3009 authorization to the USDC contract on
// the local anvil from an anvil dev account. The challenge id is an HMAC of its contents
// under `secretKey`, so issuing and verifying can happen in separate processes.
//
//   node mpp.mjs challenge ANVIL_URL < {"secretKey", "realm", "recipient", "amount", "expires"?}
//     -> {"status": 402, "wwwAuthenticate": "Payment id=..."}
//   node mpp.mjs pay ANVIL_URL < {..., "credential": "Payment ..."}
//     -> {"status": 200, "receipt": "<Payment-Receipt>"} or {"status": 402, "body": ...}
//
// `amount` is in USDC display units ("0.25"), as merchants configure mppx.
import { Mppx } from "mppx/server";
import { charge } from "mppx/evm/server";
import { abi, anvilUrlFromArgs, connect, toJson, USDC_BY_CHAIN } from "./chain.mjs";

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function main() {
  const op = process.argv[2];
  const ctx = await connect(anvilUrlFromArgs());
  const input = await readStdin();
  const usdc = USDC_BY_CHAIN[ctx.chainId];
  const settled = [];
  const mppx = Mppx.create({
    realm: input.realm,
    secretKey: input.secretKey,
    methods: [
      charge({
        currency: usdc.address,
        recipient: input.recipient,
        chainId: ctx.chainId,
        decimals: 6,
        authorization: { name: usdc.name, version: usdc.version },
        async settle({ payload }) {
          const wallet = ctx.devWallet(1);
          const hash = await wallet.writeContract({
            address: usdc.address,
            abi,
            functionName: "transferWithAuthorization",
            args: [payload.from, payload.to, BigInt(payload.value), BigInt(payload.validAfter),
              BigInt(payload.validBefore), payload.nonce, payload.signature],
          });
          const receipt = await ctx.publicClient.waitForTransactionReceipt({ hash });
          if (receipt.status !== "success") throw new Error(`settlement reverted: ${hash}`);
          settled.push(hash);
          return { reference: hash };
        },
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
  process.stdout.write(toJson({
    status: paid.status,
    receipt: paid.headers.get("payment-receipt"),
    settled,
  }) + "\n");
}

main().catch((e) => {
  console.error(e?.stack ?? String(e));
  process.exit(1);
});
