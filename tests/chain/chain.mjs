// Shared helpers for the node scripts in tests/chain: connect viem to a local anvil,
// make sure TestUSDC sits at the chain's real USDC address, mint, sign EIP-3009.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  getAddress,
  http,
} from "viem";

const here = dirname(fileURLToPath(import.meta.url));

/** chain id -> the real USDC deployment the tests impersonate (same table as anvil.py). */
export const USDC_BY_CHAIN = {
  84532: { address: getAddress("0x036CbD53842c5426634e7929541eC2318f3dCF7e"), name: "USDC", version: "2" },
  8453: { address: getAddress("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"), name: "USD Coin", version: "2" },
  1: { address: getAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"), name: "USD Coin", version: "2" },
};

export const TRANSFER_WITH_AUTHORIZATION_TYPES = {
  TransferWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
};

export const artifact = JSON.parse(readFileSync(join(here, "contracts", "TestUSDC.json"), "utf8"));
export const abi = artifact.abi;
export const multicallArtifact = JSON.parse(readFileSync(join(here, "contracts", "TestMulticall.json"), "utf8"));

/** Where the x402 facilitator looks for Multicall3 (only to diagnose failed simulations). */
export const MULTICALL3_ADDRESS = getAddress("0xcA11bde05977b3631167028862bE2a173976CA11");

/** The anvil URL from argv[2] (if it looks like a URL) or $ANVIL_URL. Only loopback is accepted. */
export function anvilUrlFromArgs(argv = process.argv) {
  const url = argv.slice(2).find((a) => /^https?:\/\//.test(a)) ?? process.env.ANVIL_URL;
  if (!url) {
    throw new Error(
      "no anvil URL: pass it as an argument or set ANVIL_URL (e.g. `python3 anvil.py exec -- node settle_check.mjs`)",
    );
  }
  const host = new URL(url).hostname;
  if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(host)) {
    throw new Error(`refusing non-loopback anvil URL ${url}`);
  }
  return url;
}

/** viem clients for an anvil at `url`; the chain id is read from the node. */
export async function connect(url) {
  const probe = createPublicClient({ transport: http(url) });
  const chainId = await probe.getChainId();
  const chain = defineChain({
    id: chainId,
    name: `anvil-${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url] } },
  });
  const transport = http(url);
  const publicClient = createPublicClient({ chain, transport });
  const testClient = createTestClient({ chain, transport, mode: "anvil" });
  const devAccounts = await publicClient.request({ method: "eth_accounts" });
  // Wallet client over an unlocked anvil dev account (eth_sendTransaction, no key here).
  const devWallet = (index = 0) =>
    createWalletClient({ chain, transport, account: getAddress(devAccounts[index]) });
  return { url, chain, chainId, transport, publicClient, testClient, devAccounts, devWallet };
}

/** Sends a contract write and waits for it; throws if it reverted. */
export async function write(ctx, wallet, request) {
  const hash = await wallet.writeContract(request);
  const receipt = await ctx.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${request.functionName} reverted in ${hash}`);
  return receipt;
}

/**
 * Makes sure TestUSDC is at the chain's USDC address with the right EIP-712 name/version:
 * anvil_setCode + initialize(name, version) if there is no code yet (and TestMulticall at the
 * Multicall3 address). Returns {address, name, version}.
 */
export async function ensureUsdc(ctx, usdc = USDC_BY_CHAIN[ctx.chainId]) {
  if (!usdc) throw new Error(`no USDC known for chain id ${ctx.chainId}`);
  await ensureMulticall(ctx);
  const code = await ctx.publicClient.getCode({ address: usdc.address });
  if (!code || code === "0x") {
    await ctx.testClient.setCode({ address: usdc.address, bytecode: artifact.deployedBytecode });
  }
  const initialized = await ctx.publicClient.readContract({ address: usdc.address, abi, functionName: "initialized" });
  if (!initialized) {
    await write(ctx, ctx.devWallet(0), {
      address: usdc.address,
      abi,
      functionName: "initialize",
      args: [usdc.name, usdc.version],
    });
  }
  const [name, version] = await Promise.all([
    ctx.publicClient.readContract({ address: usdc.address, abi, functionName: "name" }),
    ctx.publicClient.readContract({ address: usdc.address, abi, functionName: "version" }),
  ]);
  if (name !== usdc.name || version !== usdc.version) {
    throw new Error(`token at ${usdc.address} has domain ${name}/${version}, wanted ${usdc.name}/${usdc.version}`);
  }
  return usdc;
}

/** Installs TestMulticall at the Multicall3 address unless something is there already. */
export async function ensureMulticall(ctx) {
  const code = await ctx.publicClient.getCode({ address: MULTICALL3_ADDRESS });
  if (!code || code === "0x") {
    await ctx.testClient.setCode({ address: MULTICALL3_ADDRESS, bytecode: multicallArtifact.deployedBytecode });
  }
}

export async function mint(ctx, token, to, amount) {
  return write(ctx, ctx.devWallet(0), { address: token, abi, functionName: "mint", args: [to, BigInt(amount)] });
}

export async function balanceOf(ctx, token, owner) {
  return ctx.publicClient.readContract({ address: token, abi, functionName: "balanceOf", args: [owner] });
}

/** Latest block timestamp (anvil follows the wall clock unless told otherwise). */
export async function chainNow(ctx) {
  return (await ctx.publicClient.getBlock({ blockTag: "latest" })).timestamp;
}

/**
 * EIP-712 TransferWithAuthorization signature (65 bytes r||s||v, v in {27,28}) by a viem account.
 * `auth` = {from, to, value, validAfter, validBefore, nonce}; numbers may be bigint or decimal strings.
 */
export async function signTransferAuthorization(account, { chainId, token, name, version }, auth) {
  return account.signTypedData({
    domain: { name, version, chainId, verifyingContract: token },
    types: TRANSFER_WITH_AUTHORIZATION_TYPES,
    primaryType: "TransferWithAuthorization",
    message: {
      from: auth.from,
      to: auth.to,
      value: BigInt(auth.value),
      validAfter: BigInt(auth.validAfter),
      validBefore: BigInt(auth.validBefore),
      nonce: auth.nonce,
    },
  });
}

/** JSON.stringify that writes bigints as decimal strings. */
export function toJson(value, space) {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v), space);
}
