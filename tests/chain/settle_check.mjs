#!/usr/bin/env node
// End-to-end check of TestUSDC's EIP-3009 support and of the x402 reference facilitator
// against it, on a local anvil.
//
//   node settle_check.mjs http://127.0.0.1:PORT        (or ANVIL_URL=... node settle_check.mjs)
//   python3 anvil.py exec -- node settle_check.mjs     (starts and stops its own anvil)
//
// It installs TestUSDC at the chain's USDC address if nothing is there yet.
import assert from "node:assert/strict";
import { getAddress, parseSignature, serializeSignature, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { ExactEvmScheme as ExactEvmClientScheme } from "@x402/evm/exact/client";
import {
  abi,
  anvilUrlFromArgs,
  balanceOf,
  chainNow,
  connect,
  ensureUsdc,
  mint,
  signTransferAuthorization,
  toJson,
  write,
} from "./chain.mjs";
import { createLocalFacilitator } from "./facilitator.mjs";

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const randomNonce = () => toHex(crypto.getRandomValues(new Uint8Array(32)));

let passed = 0;
function ok(what) {
  passed += 1;
  console.log(`ok ${passed} - ${what}`);
}

async function expectRevert(ctx, request, reason) {
  try {
    await ctx.publicClient.simulateContract(request);
  } catch (err) {
    const text = `${err?.shortMessage ?? ""}\n${err?.message ?? ""}`;
    assert.ok(text.includes(reason), `expected revert containing ${JSON.stringify(reason)}, got: ${err?.shortMessage}`);
    return;
  }
  assert.fail(`expected revert ${JSON.stringify(reason)}, but the call succeeded`);
}

async function main() {
  const url = anvilUrlFromArgs();
  const ctx = await connect(url);
  const usdc = await ensureUsdc(ctx);
  const domain = { chainId: ctx.chainId, token: usdc.address, name: usdc.name, version: usdc.version };
  console.log(`# anvil ${url} chain ${ctx.chainId}; TestUSDC at ${usdc.address} (${usdc.name}/${usdc.version})`);

  // The on-chain domain separator equals the one viem derives for this domain.
  const { hashDomain } = await import("viem");
  const onChainSeparator = await ctx.publicClient.readContract({ address: usdc.address, abi, functionName: "DOMAIN_SEPARATOR" });
  const expectedSeparator = hashDomain({
    domain: { name: usdc.name, version: usdc.version, chainId: ctx.chainId, verifyingContract: usdc.address },
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
    },
  });
  assert.equal(onChainSeparator, expectedSeparator);
  ok(`DOMAIN_SEPARATOR() matches viem's EIP-712 domain hash ${onChainSeparator}`);

  const payer = privateKeyToAccount(generatePrivateKey());
  const payee = privateKeyToAccount(generatePrivateKey()).address;
  const submitter = ctx.devWallet(1); // an unlocked anvil dev account, not the payer
  await mint(ctx, usdc.address, payer.address, 5_000_000n);
  assert.equal(await balanceOf(ctx, usdc.address, payer.address), 5_000_000n);
  ok(`minted 5.000000 USDC to random payer ${payer.address}`);

  const now = await chainNow(ctx);
  const authFor = (value, extra = {}) => ({
    from: payer.address,
    to: payee,
    value,
    validAfter: 0n,
    validBefore: now + 3600n,
    nonce: randomNonce(),
    ...extra,
  });
  const argsOf = (a) => [a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce];

  // 1. (v, r, s) overload, submitted by somebody else.
  const a1 = authFor(1_000_000n);
  const sig1 = await signTransferAuthorization(payer, domain, a1);
  const { r, s, v } = parseSignature(sig1);
  assert.ok(v === 27n || v === 28n);
  const vrsRequest = {
    account: submitter.account,
    address: usdc.address,
    abi,
    functionName: "transferWithAuthorization",
    args: [...argsOf(a1), Number(v), r, s],
  };
  await write(ctx, submitter, vrsRequest);
  assert.equal(await balanceOf(ctx, usdc.address, payer.address), 4_000_000n);
  assert.equal(await balanceOf(ctx, usdc.address, payee), 1_000_000n);
  assert.equal(
    await ctx.publicClient.readContract({ address: usdc.address, abi, functionName: "authorizationState", args: [payer.address, a1.nonce] }),
    true,
  );
  ok("transferWithAuthorization(..., v, r, s) moved exactly 1.000000 USDC; authorizationState is true");

  // Replay: simulated and also mined for real (with a fixed gas limit so it is not pre-rejected).
  await expectRevert(ctx, vrsRequest, "authorization is used or canceled");
  const replayHash = await submitter.writeContract({ ...vrsRequest, gas: 200_000n });
  const replayReceipt = await ctx.publicClient.waitForTransactionReceipt({ hash: replayHash });
  assert.equal(replayReceipt.status, "reverted");
  assert.equal(await balanceOf(ctx, usdc.address, payee), 1_000_000n);
  ok("replaying the same authorization reverts ('authorization is used or canceled'); balances unchanged");

  // 2. `bytes signature` overload.
  const a2 = authFor(250_000n);
  const sig2 = await signTransferAuthorization(payer, domain, a2);
  const bytesRequest = { account: submitter.account, address: usdc.address, abi, functionName: "transferWithAuthorization", args: [...argsOf(a2), sig2] };
  await write(ctx, submitter, bytesRequest);
  assert.equal(await balanceOf(ctx, usdc.address, payer.address), 3_750_000n);
  assert.equal(await balanceOf(ctx, usdc.address, payee), 1_250_000n);
  await expectRevert(ctx, bytesRequest, "authorization is used or canceled");
  ok("transferWithAuthorization(..., bytes signature) works and cannot be replayed");

  // 3. Rejections.
  const call = (a, sig) => ({ account: submitter.account, address: usdc.address, abi, functionName: "transferWithAuthorization", args: [...argsOf(a), sig] });
  const expired = authFor(1n, { validBefore: now - 1n });
  await expectRevert(ctx, call(expired, await signTransferAuthorization(payer, domain, expired)), "authorization is expired");
  const early = authFor(1n, { validAfter: now + 3600n, validBefore: now + 7200n });
  await expectRevert(ctx, call(early, await signTransferAuthorization(payer, domain, early)), "authorization is not yet valid");
  const wrongDomain = authFor(1n);
  await expectRevert(ctx, call(wrongDomain, await signTransferAuthorization(payer, { ...domain, version: "1" }, wrongDomain)), "invalid signature");
  const tooMuch = authFor(10_000_000n);
  await expectRevert(ctx, call(tooMuch, await signTransferAuthorization(payer, domain, tooMuch)), "transfer amount exceeds balance");
  const a3 = authFor(1n);
  const p3 = parseSignature(await signTransferAuthorization(payer, domain, a3));
  const highS = serializeSignature({ r: p3.r, s: toHex(SECP256K1_N - BigInt(p3.s), { size: 32 }), yParity: 1 - p3.yParity });
  await expectRevert(ctx, call(a3, highS), "invalid signature 's' value");
  const vZeroOne = serializeSignature({ r: p3.r, s: p3.s, yParity: p3.yParity }).slice(0, -2) + (p3.yParity ? "01" : "00");
  await expectRevert(ctx, call(a3, vZeroOne), "invalid signature 'v' value");
  await expectRevert(ctx, call(a3, "0x1234"), "invalid signature length");
  ok("expired / not-yet-valid / wrong-domain / over-balance / high-s / v∉{27,28} / bad-length all revert");

  // 4. The x402 reference facilitator (@x402/evm exact scheme) verifies and settles.
  const { facilitator, account: facilitatorAccount, network } = await createLocalFacilitator(url, { ctx });
  const payTo = getAddress(privateKeyToAccount(generatePrivateKey()).address);
  const requirements = {
    scheme: "exact",
    network,
    asset: usdc.address,
    amount: "125000",
    payTo,
    maxTimeoutSeconds: 300,
    extra: { name: usdc.name, version: usdc.version },
  };
  const a4 = authFor(125_000n, { to: payTo });
  const paymentPayload = {
    x402Version: 2,
    accepted: requirements,
    payload: {
      signature: await signTransferAuthorization(payer, domain, a4),
      authorization: {
        from: a4.from,
        to: a4.to,
        value: a4.value.toString(),
        validAfter: a4.validAfter.toString(),
        validBefore: a4.validBefore.toString(),
        nonce: a4.nonce,
      },
    },
  };
  const verified = await facilitator.verify(paymentPayload, requirements);
  assert.equal(verified.isValid, true, toJson(verified));
  assert.equal(getAddress(verified.payer), payer.address);
  ok(`facilitator.verify -> ${toJson(verified)}`);

  const payerBefore = await balanceOf(ctx, usdc.address, payer.address);
  const settled = await facilitator.settle(paymentPayload, requirements);
  assert.equal(settled.success, true, toJson(settled));
  assert.equal(settled.network, network);
  assert.match(settled.transaction, /^0x[0-9a-f]{64}$/);
  const tx = await ctx.publicClient.getTransaction({ hash: settled.transaction });
  assert.equal(getAddress(tx.from), facilitatorAccount.address);
  assert.equal(tx.input.slice(0, 10), "0xe3ee160e"); // the (v, r, s) overload
  assert.equal(await balanceOf(ctx, usdc.address, payTo), 125_000n);
  assert.equal(await balanceOf(ctx, usdc.address, payer.address), payerBefore - 125_000n);
  ok(`facilitator.settle -> ${toJson(settled)} (tx from the facilitator, selector 0xe3ee160e)`);

  const again = await facilitator.verify(paymentPayload, requirements);
  assert.equal(again.isValid, false);
  assert.equal(again.invalidReason, "invalid_exact_evm_nonce_already_used"); // via TestMulticall diagnostics
  const resettle = await facilitator.settle(paymentPayload, requirements);
  assert.equal(resettle.success, false);
  assert.equal(resettle.errorReason, "invalid_exact_evm_nonce_already_used"); // parsed from the revert reason
  assert.equal(await balanceOf(ctx, usdc.address, payTo), 125_000n);
  ok(`re-verify -> ${again.invalidReason}; re-settle -> ${resettle.errorReason}; nothing moved`);

  const forged = structuredClone(paymentPayload);
  forged.payload.signature = await signTransferAuthorization(privateKeyToAccount(generatePrivateKey()), domain, a4);
  const forgedResult = await facilitator.verify(forged, requirements);
  assert.equal(forgedResult.isValid, false);
  assert.equal(forgedResult.invalidReason, "invalid_exact_evm_signature");
  const wrongName = { ...requirements, extra: { name: "USD Coin", version: usdc.version } };
  const wrongNameResult = await facilitator.verify({ ...paymentPayload, accepted: wrongName }, wrongName);
  assert.equal(wrongNameResult.isValid, false);
  const bigRequirements = { ...requirements, amount: "1000000000" };
  const aBig = authFor(1_000_000_000n, { to: payTo });
  const bigPayload = {
    x402Version: 2,
    accepted: bigRequirements,
    payload: {
      signature: await signTransferAuthorization(payer, domain, aBig),
      authorization: { ...aBig, value: aBig.value.toString(), validAfter: "0", validBefore: aBig.validBefore.toString() },
    },
  };
  const bigResult = await facilitator.verify(bigPayload, bigRequirements);
  assert.equal(bigResult.invalidReason, "invalid_exact_evm_insufficient_balance");
  const amountMismatch = await facilitator.verify(paymentPayload, { ...requirements, amount: "125001" });
  assert.equal(amountMismatch.invalidReason, "invalid_exact_evm_payload_authorization_value_mismatch");
  ok(
    `another key -> ${forgedResult.invalidReason}; wrong domain name -> ${wrongNameResult.invalidReason}; ` +
      `over balance -> ${bigResult.invalidReason}; amount mismatch -> ${amountMismatch.invalidReason}`,
  );

  // 5. A payload made by x402's own client scheme settles the same way (reference shape).
  const x402Client = new ExactEvmClientScheme(payer);
  const created = await x402Client.createPaymentPayload(2, requirements);
  const clientPayload = { x402Version: created.x402Version, accepted: requirements, payload: created.payload };
  assert.deepEqual(Object.keys(created.payload.authorization).sort(), ["from", "nonce", "to", "validAfter", "validBefore", "value"]);
  const settled2 = await facilitator.settle(clientPayload, requirements);
  assert.equal(settled2.success, true, toJson(settled2));
  assert.equal(await balanceOf(ctx, usdc.address, payTo), 250_000n);
  ok(`x402 client payload ${toJson(created.payload.authorization)} settles too`);

  console.log(`${passed} passed, 0 failed`);
}

main().catch((err) => {
  console.error(err?.stack ?? String(err));
  console.log(`${passed} passed, 1 failed`);
  process.exit(1);
});
