// Builds the console into crates/server/console-dist (committed, embedded in the binary
// with include_bytes!) and stamps it with the digest of its sources; `--check` only
// tells whether the committed build is current. The digest is the one recomputed by the
// Rust test `console::assets::tests::the_committed_console_build_is_not_stale`.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const out = join(root, "..", "crates", "server", "console-dist");

function sourcesDigest() {
  const files = [];
  const walk = (d) =>
    readdirSync(d).forEach((n) => {
      const p = join(d, n);
      statSync(p).isDirectory() ? walk(p) : files.push(p);
    });
  walk(join(root, "src"));
  for (const f of ["build.mjs", "package.json", "package-lock.json"]) files.push(join(root, f));
  const named = files.map((p) => [relative(root, p), p]);
  named.sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
  const h = createHash("sha256");
  for (const [rel, p] of named) {
    const bytes = readFileSync(p);
    h.update(rel);
    h.update("\0");
    h.update(String(bytes.length));
    h.update("\0");
    h.update(bytes);
  }
  return h.digest("hex");
}

const digest = sourcesDigest();
if (process.argv.includes("--check")) {
  let stamp = "";
  try {
    stamp = readFileSync(join(out, "SOURCES.sha256"), "utf8").trim();
  } catch {}
  if (stamp !== digest) {
    console.error("crates/server/console-dist is stale: run `npm run build --prefix console`");
    process.exit(1);
  }
  console.log("crates/server/console-dist is current");
  process.exit(0);
}

mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: { app: join(root, "src", "main.jsx"), },
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  outdir: out,
  logLevel: "warning",
});
await esbuild.build({
  entryPoints: { app: join(root, "src", "style.css") },
  bundle: true,
  minify: true,
  outdir: out,
  logLevel: "warning",
});
copyFileSync(join(root, "src", "index.html"), join(out, "index.html"));
writeFileSync(join(out, "SOURCES.sha256"), digest + "\n");
console.log(`built ${relative(process.cwd(), out)} (sources ${digest.slice(0, 12)})`);
