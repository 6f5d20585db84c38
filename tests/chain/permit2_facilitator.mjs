#!/usr/bin/env node
// The x402 reference facilitator for Permit2 payments (npm @x402/evm 2.27.0: the `upto`
// facilitator scheme, and the `exact` scheme's Permit2 path) pointed at a local anvil,
// for Python tests. One request per process:
//
//   node permit2_facilitator.mjs verify [ANVIL_URL] < request.json > response.json
//   node permit2_facilitator.mjs address                # the facilitator's address
//
// request.json is {"x402Version": 2, "paymentPayload": {...}, "paymentRequirements": {...}}.
// The facilitator key is $FACILITATOR_PRIVATE_KEY (the upto witness names the
// facilitator, so the test must know its address before paying).
//
// What is real and what is not: the facilitator's own checks run unchanged (scheme,
// network, spender = the x402 proxy, witness.to = payTo, witness.facilitator = this
// facilitator, deadline, validAfter, permitted amount and token, the USDC contract on
// anvil, and the EIP-712 signature over the Permit2 domain, recovered against the
// payer). Permit2 (0x000000000022D473030F116dDEE9F6B43aC78BA3) and the x402 Permit2
// proxies are NOT on this chain: their Solidity sources are not published on npm, so
// they cannot be compiled here and placed with anvil_setCode. The facilitator's last
// step, an eth_call of the proxy's `settle` (a simulation of the transfer), is
// therefore answered "would succeed" by this script (and reported in `simulated`), and
// settlement is not attempted.
import { fileURLToPath } from "node:url";
import { getAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { x402Facilitator } from "@x402/core/facilitator";
import { UptoEvmScheme } from "@x402/evm/upto/facilitator";
import { ExactEvmScheme } from "@x402/evm/exact/facilitator";
import { createLocalFacilitator } from "./facilitator.mjs";
import { anvilUrlFromArgs, toJson } from "./chain.mjs";

const PROXIES = [
  getAddress("0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002"), // upto
  getAddress("0x402085c248EeA27D92E8b30b2C58ed07f9E20001"), // exact
];

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

async function main() {
  const op = process.argv[2];
  if (op === "address") {
    const key = process.env.FACILITATOR_PRIVATE_KEY;
    if (!key) throw new Error("FACILITATOR_PRIVATE_KEY is required");
    process.stdout.write(JSON.stringify({ address: privateKeyToAccount(key).address }) + "\n");
    return;
  }
  if (op !== "verify") {
    console.error("usage: node permit2_facilitator.mjs verify [ANVIL_URL] < request.json | address");
    process.exit(2);
  }
  if (!process.env.FACILITATOR_PRIVATE_KEY) throw new Error("FACILITATOR_PRIVATE_KEY is required");
  const url = anvilUrlFromArgs(process.argv.slice(1));
  const { signer, network } = await createLocalFacilitator(url);
  const simulated = [];
  const stubbed = {
    ...signer,
    readContract: async (args) => {
      if (PROXIES.includes(getAddress(args.address)) && String(args.functionName).startsWith("settle")) {
        simulated.push({ proxy: getAddress(args.address), functionName: args.functionName });
        return undefined;
      }
      return signer.readContract(args);
    },
  };
  const facilitator = new x402Facilitator()
    .register(network, new UptoEvmScheme(stubbed))
    .register(network, new ExactEvmScheme(stubbed));
  const { paymentPayload, paymentRequirements } = JSON.parse(await readStdin());
  const result = await facilitator.verify(paymentPayload, paymentRequirements);
  process.stdout.write(toJson({ ...result, simulated }) + "\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    console.error(err?.stack ?? String(err));
    process.exit(1);
  });
}
