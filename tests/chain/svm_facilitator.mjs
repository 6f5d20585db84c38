#!/usr/bin/env node
// The x402 reference SVM facilitator and client (npm @x402/svm 2.27.0, `exact`) pointed at
// the litesvm-backed RPC of svm.mjs. One request per process, for Python tests:
//
//   node svm_facilitator.mjs verify RPC_URL < request.json  > response.json
//   node svm_facilitator.mjs settle RPC_URL < request.json  > response.json
//       request.json: the facilitator HTTP body {x402Version, paymentPayload,
//       paymentRequirements}; x402Version 1 registers ExactSvmSchemeV1 for the network,
//       2 ExactSvmScheme. Prints the VerifyResponse / SettleResponse (exit 0 even when
//       isValid/success is false; 1 only when something threw).
//   node svm_facilitator.mjs client RPC_URL < {"x402Version", "requirements", "seed"}
//       the reference CLIENT's payment payload for `requirements`, signed by the key of
//       the 32-byte hex `seed` (to compare Purser's transaction with the reference's).
//
// The fee payer key is svm.mjs's fixed test key (funded there).
import { fileURLToPath } from "node:url";
import { createKeyPairSignerFromPrivateKeyBytes } from "@solana/kit";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorSvmSigner } from "@x402/svm";
import { ExactSvmScheme } from "@x402/svm/exact/facilitator";
import { ExactSvmSchemeV1 } from "@x402/svm/exact/v1/facilitator";
import { ExactSvmScheme as ExactSvmClient } from "@x402/svm/exact/client";
import { ExactSvmSchemeV1 as ExactSvmClientV1 } from "@x402/svm/exact/v1/client";
import { FACILITATOR_SEED } from "./svm.mjs";

function loopback(url) {
  const u = new URL(url);
  if (u.hostname !== "127.0.0.1") throw new Error(`refusing a non-loopback RPC URL: ${url}`);
  return url;
}

export async function createSvmFacilitator(rpcUrl, x402Version, network) {
  const keypair = await createKeyPairSignerFromPrivateKeyBytes(FACILITATOR_SEED);
  const signer = toFacilitatorSvmSigner(keypair, { defaultRpcUrl: loopback(rpcUrl) });
  const f = new x402Facilitator();
  if (x402Version === 1) f.registerV1(network, new ExactSvmSchemeV1(signer));
  else f.register(network, new ExactSvmScheme(signer));
  return f;
}

const toJson = (v) => JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x));

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function main() {
  const [op, url] = process.argv.slice(2);
  const body = await readStdin();
  if (op === "client") {
    const key = await createKeyPairSignerFromPrivateKeyBytes(Uint8Array.from(Buffer.from(body.seed, "hex")));
    const client = body.x402Version === 1
      ? new ExactSvmClientV1(key, { rpcUrl: loopback(url) })
      : new ExactSvmClient(key, { rpcUrl: loopback(url) });
    const payload = await client.createPaymentPayload(body.x402Version, body.requirements);
    process.stdout.write(toJson({ address: key.address, ...payload }) + "\n");
    return;
  }
  if (op !== "verify" && op !== "settle") {
    console.error("usage: node svm_facilitator.mjs verify|settle|client RPC_URL < body.json");
    process.exit(2);
  }
  const { x402Version, paymentPayload, paymentRequirements } = body;
  const f = await createSvmFacilitator(url, x402Version, paymentRequirements.network);
  const result = op === "verify"
    ? await f.verify(paymentPayload, paymentRequirements)
    : await f.settle(paymentPayload, paymentRequirements);
  process.stdout.write(toJson(result) + "\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    console.error(err?.stack ?? String(err));
    process.exit(1);
  });
}
