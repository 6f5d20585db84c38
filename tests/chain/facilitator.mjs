#!/usr/bin/env node
// The x402 reference facilitator (npm @x402/evm "exact" scheme, driven through
// @x402/core's x402Facilitator) pointed at a local anvil.
//
// As a library:   const { facilitator } = await createLocalFacilitator(anvilUrl);
//                 await facilitator.verify(paymentPayload, paymentRequirements);
//                 await facilitator.settle(paymentPayload, paymentRequirements);
//
// As a command (for Python tests), one request per process:
//   node facilitator.mjs verify [ANVIL_URL]  < request.json   > response.json
//   node facilitator.mjs settle [ANVIL_URL]  < request.json   > response.json
//   node facilitator.mjs supported [ANVIL_URL]
// request.json is the x402 facilitator request body
//   {"x402Version": 2, "paymentPayload": {...}, "paymentRequirements": {...}}
// and the VerifyResponse / SettleResponse JSON is printed on stdout (exit 0 even when
// isValid/success is false; exit 1 only when the facilitator itself threw).
//
// The facilitator's gas-paying key is $FACILITATOR_PRIVATE_KEY, or a fresh random key;
// either way it is funded with 100 ETH through anvil_setBalance.
import { fileURLToPath } from "node:url";
import { createWalletClient, publicActions, parseEther } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/facilitator";
import { anvilUrlFromArgs, connect, toJson } from "./chain.mjs";

/**
 * Builds the reference facilitator for the anvil at `url`.
 * Returns {facilitator, scheme, signer, account, network, ctx}.
 */
export async function createLocalFacilitator(url, { privateKey, ctx } = {}) {
  ctx = ctx ?? (await connect(url));
  const account = privateKeyToAccount(privateKey ?? process.env.FACILITATOR_PRIVATE_KEY ?? generatePrivateKey());
  await ctx.testClient.setBalance({ address: account.address, value: parseEther("100") });

  // A viem wallet client with a local account, extended with the public (read) actions:
  // it has readContract, getCode, writeContract, sendTransaction, waitForTransactionReceipt,
  // verifyTypedData. toFacilitatorEvmSigner wants `address` at the top level.
  const client = createWalletClient({ account, chain: ctx.chain, transport: ctx.transport }).extend(publicActions);
  const signer = toFacilitatorEvmSigner({ ...client, address: account.address }, { confirmationTimeoutMs: 30_000 });

  const network = `eip155:${ctx.chainId}`;
  const scheme = new ExactEvmScheme(signer); // config: {eip6492AllowedFactories?, simulateInSettle?}
  const facilitator = new x402Facilitator().register(network, scheme);
  return { facilitator, scheme, signer, account, network, ctx };
}

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

async function main() {
  const op = process.argv[2];
  if (!["verify", "settle", "supported"].includes(op)) {
    console.error("usage: node facilitator.mjs verify|settle|supported [ANVIL_URL] < request.json");
    process.exit(2);
  }
  const url = anvilUrlFromArgs(process.argv.slice(1));
  const { facilitator } = await createLocalFacilitator(url);
  if (op === "supported") {
    process.stdout.write(toJson(facilitator.getSupported()) + "\n");
    return;
  }
  const body = JSON.parse(await readStdin());
  const { paymentPayload, paymentRequirements } = body;
  if (!paymentPayload || !paymentRequirements) {
    throw new Error("request must be {x402Version, paymentPayload, paymentRequirements}");
  }
  const result =
    op === "verify"
      ? await facilitator.verify(paymentPayload, paymentRequirements)
      : await facilitator.settle(paymentPayload, paymentRequirements);
  process.stdout.write(toJson(result) + "\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    console.error(err?.stack ?? String(err));
    process.exit(1);
  });
}
