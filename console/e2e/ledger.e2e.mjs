import { readFileSync } from "node:fs";

// The history, spend and policy steps of console.e2e.mjs (the extension API's pages).
export async function ledgerSteps({ page, plan, run, expect, rowOf }) {
  await run("payments", async () => {
    await page.click("nav a[href='#/payments']");
    // the user named on the sessions page is still the filter: clear it to see everyone
    await page.fill("[data-testid=history-filters] input[name=userId]", "");
    await page.click("[data-testid=history-filters] button[type=submit]");
    // the boto3 payments of a moment before, newest first, both users
    await rowOf("payments", plan.paymentId).waitFor();
    await rowOf("payments", plan.otherPaymentId).waitFor();
    const text = await rowOf("payments", plan.paymentId).innerText();
    expect(text.includes(plan.user) && text.includes(plan.sessionId), `payment row: ${text}`);
    expect(text.includes(plan.payee) || text.toLowerCase().includes(plan.payee.toLowerCase()), "payee");
    expect(text.includes("0.100000"), `value in ${text}`);
  });

  await run("payments-by-user", async () => {
    await page.fill("[data-testid=history-filters] input[name=userId]", plan.user);
    await page.click("[data-testid=history-filters] button[type=submit]");
    await rowOf("payments", plan.otherPaymentId).waitFor({ state: "detached" });
    await rowOf("payments", plan.paymentId).waitFor();
    const users = await page.locator("[data-testid=payments] tbody tr td:nth-child(2)").allInnerTexts();
    expect(users.length > 0 && users.every((u) => u === plan.user), `users: ${users}`);
  });

  await run("payments-export", async () => {
    const [csv] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "CSV" }).click(),
    ]);
    expect(csv.suggestedFilename() === "purser-payments.csv", csv.suggestedFilename());
    const text = readFileSync(await csv.path(), "utf8");
    const lines = text.trim().split(/\r?\n/);
    expect(lines[0].startsWith("paymentId,"), `csv header: ${lines[0]}`);
    expect(lines.length === 2 && lines[1].startsWith(plan.paymentId), `csv: ${text}`);
    const [jsonl] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "JSON Lines" }).click(),
    ]);
    const rows = readFileSync(await jsonl.path(), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(rows.length === 1 && rows[0].paymentId === plan.paymentId && rows[0].userId === plan.user,
      `jsonl: ${JSON.stringify(rows)}`);
  });

  await run("payments-by-payee-none", async () => {
    await page.fill("[data-testid=history-filters] input[name=payee]", "0x000000000000000000000000000000000000dEaD");
    await page.click("[data-testid=history-filters] button[type=submit]");
    await page.locator("text=No payments.").waitFor();
    await page.fill("[data-testid=history-filters] input[name=payee]", "");
    await page.click("[data-testid=history-filters] button[type=submit]");
    await rowOf("payments", plan.paymentId).waitFor();
  });

  await run("spend-chart", async () => {
    await page.click("nav a[href='#/spend']");
    await page.getByTestId("spend-chart").waitFor();
    const bars = page.locator("[data-testid=spend-chart] rect.bar");
    expect((await bars.count()) >= 1, "no bar in the chart");
    const total = await page.getByTestId("spend-total").innerText();
    expect(total.includes(`${plan.managerPayments} payment(s)`), `total: ${total}`);
    expect(total.includes(`${plan.managerSpend} USD`), `total: ${total}`);
  });

  await run("policy", async () => {
    await page.click("nav a[href='#/policies']");
    const form = page.getByTestId("policy-manager");
    await form.waitFor();
    await form.locator("input[name=maxPerPayment]").fill(plan.policyMaxPerPayment);
    await form.getByRole("button", { name: "Save policy" }).click();
    await form.locator(".notice", { hasText: "Saved the policy" }).waitFor();
    await page.locator("[data-testid=policies] tbody tr", { hasText: "(whole manager)" }).waitFor();
    const row = await page.locator("[data-testid=policies] tbody tr", { hasText: "(whole manager)" }).innerText();
    expect(row.includes(plan.policyMaxPerPayment), `policy row: ${row}`);
  });
}
