// End to end through a real browser (Debian's chromium, driven by playwright-core):
// tests/compat/test_console.py prepares resources with boto3, runs this script with a
// JSON plan, then checks with boto3 what the clicks changed. Each step prints one line;
// any failure exits non-zero with the step's name. Screenshots go to plan.shots.
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));
mkdirSync(plan.shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: plan.chromium || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let step = "start";
let shot = 0;
const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, acceptDownloads: true });
const page = await context.newPage();
page.setDefaultTimeout(15000);
const consoleErrors = [];
// Refused API calls (401 before sign-in, the wrong secret) are logged by the browser as
// failed loads: expected. Anything else (a script error) fails the run.
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
    consoleErrors.push(m.text());
  }
});
page.on("pageerror", (e) => consoleErrors.push(String(e)));

async function snap(name) {
  shot += 1;
  const path = join(plan.shots, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot ${path}`);
}

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

async function run(name, fn) {
  step = name;
  await fn();
  await snap(name);
  console.log(`ok ${name}`);
}

const rowOf = (table, text) => page.locator(`[data-testid=${table}] tbody tr`, { hasText: text });

try {
  await run("login-refused", async () => {
    await page.goto(`${plan.endpoint}/console/`);
    await page.fill("input[name=accessKeyId]", plan.accessKeyId);
    await page.fill("input[name=secretAccessKey]", "wrong-" + plan.secretAccessKey);
    await page.click("button[type=submit]");
    await page.locator(".error").waitFor();
    expect((await page.locator(".error").innerText()).includes("not valid"), "no refusal shown");
    expect(!page.url().includes(plan.secretAccessKey), "secret in the URL");
  });

  await run("login", async () => {
    await page.fill("input[name=secretAccessKey]", plan.secretAccessKey);
    await page.click("button[type=submit]");
    await page.getByTestId("who").waitFor();
    expect((await page.getByTestId("who").innerText()).includes(plan.accountId), "account not shown");
    expect(!page.url().includes(plan.secretAccessKey), "secret in the URL");
    const cookies = await context.cookies();
    const c = cookies.find((c) => c.name === "purser_console");
    expect(c && c.httpOnly && c.sameSite === "Strict", `cookie flags ${JSON.stringify(c)}`);
    expect(
      (await page.evaluate(() => document.cookie)).indexOf("purser_console") < 0,
      "the session cookie is readable by scripts",
    );
  });

  await run("managers", async () => {
    await rowOf("managers", plan.managerName).waitFor();
    await rowOf("managers", plan.managerName).getByRole("button", { name: "Select" }).click();
    await page.waitForURL(/#\/sessions/);
  });

  await run("reload-keeps-session", async () => {
    await page.reload();
    await page.getByTestId("who").waitFor();
    await page.goto(`${plan.endpoint}/console/#/connectors`);
    await page.getByTestId("manager-picker").selectOption(plan.managerId);
    await rowOf("connectors", plan.connectorId).waitFor();
  });

  await run("instruments", async () => {
    await page.click("nav a[href='#/instruments']");
    await page.fill("input[name=userId]", plan.user);
    await page.click("form.filters button[type=submit]");
    const row = rowOf("instruments", plan.instrumentId);
    await row.waitFor();
    const text = await row.innerText();
    expect(text.includes(plan.maskedEmail), `masked email missing in ${text}`);
    expect(!text.includes(plan.email), "the linked email is shown in clear");
    expect(text.includes(plan.walletAddress), "wallet address missing");
  });

  await run("delete-instrument", async () => {
    await page.fill("input[name=userId]", plan.otherUser);
    await page.click("form.filters button[type=submit]");
    await rowOf("instruments", plan.otherInstrumentId).waitFor();
    await page.getByTestId(`delete-${plan.otherInstrumentId}`).click();
    await page.getByTestId(`delete-${plan.otherInstrumentId}-confirm`).click();
    await page.locator(".notice", { hasText: `Deleted instrument ${plan.otherInstrumentId}` }).waitFor();
    await rowOf("instruments", plan.otherInstrumentId).waitFor({ state: "detached" });
  });

  await run("sessions", async () => {
    await page.click("nav a[href='#/sessions']");
    await page.fill("input[name=userId]", plan.user);
    await page.click("form.filters button[type=submit]");
    const row = rowOf("sessions", plan.sessionId);
    await row.waitFor();
    const cells = await row.locator("td").allInnerTexts();
    // cap, spent, available: the boto3 payment a moment before is counted
    expect(cells[1] === plan.sessionCap, `cap ${cells[1]}`);
    expect(cells[2] === plan.sessionSpent, `spent ${cells[2]}`);
    expect(cells[3] === plan.sessionAvailable, `available ${cells[3]}`);
    await rowOf("sessions", plan.doomedSessionId).waitFor();
  });

  await run("delete-session", async () => {
    await page.getByTestId(`delete-${plan.doomedSessionId}`).click();
    await page.getByTestId(`delete-${plan.doomedSessionId}-confirm`).click();
    await page.locator(".notice", { hasText: `Deleted session ${plan.doomedSessionId}` }).waitFor();
    await rowOf("sessions", plan.doomedSessionId).waitFor({ state: "detached" });
    await rowOf("sessions", plan.sessionId).waitFor();
  });

  if (plan.ledger) {
    const { ledgerSteps } = await import("./ledger.e2e.mjs");
    await ledgerSteps({ page, plan, run, expect, rowOf });
  }

  await run("logout", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("input[name=accessKeyId]").waitFor();
    await page.reload();
    await page.locator("input[name=accessKeyId]").waitFor();
  });

  expect(consoleErrors.length === 0, `errors in the page: ${consoleErrors.join(" | ")}`);
  console.log("ALL OK");
  await browser.close();
} catch (e) {
  console.log(`FAILED at ${step}: ${e && e.message}`);
  try {
    await snap(`failed-${step}`);
  } catch {}
  await browser.close();
  process.exit(1);
}
