#!/usr/bin/env node
// Compiles contracts/TestUSDC.sol and contracts/TestMulticall.sol with the npm `solc`
// package (soljson bundled in the package: no compiler download, works offline) and
// writes contracts/<Name>.json = {contractName, solcVersion, settings, abi, bytecode,
// deployedBytecode, methodIdentifiers, storageLayout}.
//
// Usage (in tests/chain, after `npm ci`):  node build.mjs
// The generated JSON is checked in; rerun this only after editing the .sol file.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");

const here = dirname(fileURLToPath(import.meta.url));
const CONTRACTS = ["TestUSDC", "TestMulticall"];

const settings = {
  // Cancun is supported by every anvil hardfork default of recent years and by
  // Base/Ethereum; pinning it keeps the bytecode independent of solc's default.
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  // No IPFS/Swarm hash: bytecode does not change when only comments change.
  metadata: { bytecodeHash: "none" },
  outputSelection: {
    "*": {
      "*": [
        "abi",
        "evm.bytecode.object",
        "evm.deployedBytecode.object",
        "evm.methodIdentifiers",
        "storageLayout",
      ],
    },
  },
};

const input = {
  language: "Solidity",
  // A bare, stable source unit name keeps the output independent of where the
  // repository is checked out.
  sources: Object.fromEntries(
    CONTRACTS.map((n) => [`${n}.sol`, { content: readFileSync(join(here, "contracts", `${n}.sol`), "utf8") }]),
  ),
  settings,
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
const diagnostics = output.errors ?? [];
for (const d of diagnostics) {
  console.error(d.formattedMessage ?? d.message);
}
if (diagnostics.some((d) => d.severity === "error")) {
  console.error("build.mjs: compilation failed");
  process.exit(1);
}

for (const contractName of CONTRACTS) {
  const c = output.contracts[`${contractName}.sol`][contractName];
  const storageLayout = c.storageLayout.storage.map(({ label, slot, offset, type }) => ({
    label,
    slot: Number(slot),
    offset,
    type,
  }));
  const artifact = {
    contractName,
    solcVersion: solc.version(),
    settings: { evmVersion: settings.evmVersion, optimizer: settings.optimizer, metadata: settings.metadata },
    abi: c.abi,
    bytecode: "0x" + c.evm.bytecode.object,
    deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    methodIdentifiers: Object.fromEntries(
      Object.entries(c.evm.methodIdentifiers).map(([sig, sel]) => [sig, "0x" + sel]),
    ),
    storageLayout,
  };
  const outPath = join(here, "contracts", `${contractName}.json`);
  writeFileSync(outPath, JSON.stringify(artifact, null, 2) + "\n");
  console.log(
    `wrote ${outPath} (solc ${artifact.solcVersion}, deployed ${(artifact.deployedBytecode.length - 2) / 2} bytes)`,
  );
}
