// Interop test: headless Chromium (driven by playwright-core) against the chat example.
//
// usage: node browser_chat.mjs CHAT_BASE_URL OUT_DIR [CHROMIUM_PATH]
//
// Opens the chat page in two pages, checks that each lists both in the room and counts 2
// connections (with a chart drawn), types a message in page 1 and sends it, checks that it
// arrives in page 2's log (and page 1's) and shows in the messages per second, and saves
// screenshots:
//   OUT_DIR/chat-page1.png, OUT_DIR/chat-page2.png and OUT_DIR/chat-two-pages.png (side by side).
// Prints `ok - ...` / `FAIL - ...` lines and a closing `N passed, N failed` line.

import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const [base, outDir, exe = "/usr/bin/chromium"] = process.argv.slice(2);
if (!base || !outDir) {
  console.error("usage: node browser_chat.mjs CHAT_BASE_URL OUT_DIR [CHROMIUM_PATH]");
  process.exit(2);
}
const T = 15_000; // ms: every wait is bounded by this
fs.mkdirSync(outDir, { recursive: true });
const userDataDir = fs.mkdtempSync(path.join(outDir, "chromium-profile-"));

let passed = 0;
let failed = 0;
let browser;
let context;

function ok(name) {
  passed++;
  console.log(`ok - chromium ${name}`);
}

async function main() {
  const args = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ];
  // A persistent context gives Chromium the fresh --user-data-dir (playwright passes it).
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: exe,
    headless: true,
    args,
    timeout: T,
    viewport: { width: 560, height: 420 },
  });
  browser = context.browser();
  console.log(`    chromium ${browser ? browser.version() : "(persistent context)"} at ${exe}`);
  context.setDefaultTimeout(T);

  const consoleErrors = [];
  const page1 = context.pages()[0] || (await context.newPage());
  const page2 = await context.newPage();
  for (const [i, p] of [page1, page2].entries()) {
    p.on("console", (m) => {
      // The chat serves no favicon: the browser's request for it gets a 404, which is fine.
      if (m.type() === "error" && !/\/favicon\.ico$/.test(m.location().url || "")) {
        consoleErrors.push(`page${i + 1}: ${m.text()} (${m.location().url})`);
      }
    });
    p.on("pageerror", (e) => consoleErrors.push(`page${i + 1}: ${e.message}`));
  }

  await page1.goto(base, { timeout: T });
  await page2.goto(base, { timeout: T });
  for (const [i, p] of [page1, page2].entries()) {
    await p.locator("#status").filter({ hasText: /^connected$/ }).waitFor({ timeout: T });
    await p.locator("#log li.notice", { hasText: "welcome, you are" }).waitFor({ timeout: T });
    if ((await p.title()) !== "syncws chat") throw new Error(`page${i + 1}: unexpected title ${await p.title()}`);
  }
  ok("both pages load the chat and connect over WebSocket");
  // The chat runs with --deflate: the browser's offer is accepted.
  for (const [i, p] of [page1, page2].entries()) {
    const ext = await p.evaluate(() => ws.extensions);
    if (!/^permessage-deflate\b/.test(ext)) throw new Error(`page${i + 1}: ws.extensions is ${JSON.stringify(ext)}`);
  }
  ok("both pages negotiated permessage-deflate (ws.extensions)");

  const name1 = (await page1.locator("#log li.notice", { hasText: "welcome, you are" }).first().textContent()).replace(
    "welcome, you are ",
    "",
  );
  // Page 1 sees page 2 join.
  const name2 = (await page2.locator("#log li.notice", { hasText: "welcome, you are" }).first().textContent()).replace(
    "welcome, you are ",
    "",
  );
  await page1.locator("#log li.notice", { hasText: `${name2} joined` }).waitFor({ timeout: T });
  ok("page 1 is told that page 2 joined");

  for (const [i, p] of [page1, page2].entries()) {
    for (const name of [name1, name2]) {
      await p.locator("#members li", { hasText: name }).waitFor({ timeout: T });
    }
    await p.locator("#count").filter({ hasText: /^2$/ }).waitFor({ timeout: T });
    if ((await p.locator("#node").textContent()) !== "node single") throw new Error(`page${i + 1}: #node is ${await p.locator("#node").textContent()}`);
  }
  ok("both pages list both members of the room, and show the node");

  for (const [i, p] of [page1, page2].entries()) {
    await p.locator("#conns-node").filter({ hasText: /^2$/ }).waitFor({ timeout: T });
    await p.locator("#conns-cluster").filter({ hasText: /^2$/ }).waitFor({ timeout: T });
    // The chart has lines on it: some pixel is not transparent.
    const drawn = await p.evaluate(() => {
      const c = document.getElementById("chart-conns");
      return c.getContext("2d").getImageData(0, 0, c.width, c.height).data.some((v, k) => k % 4 === 3 && v > 0);
    });
    if (!drawn) throw new Error(`page${i + 1}: nothing drawn on #chart-conns`);
  }
  ok("both pages count 2 connections on the node and in the cluster, and draw the chart");

  const message = "Hello from page 1 — héllo ✓ <b>not bold</b>";
  await page1.locator("#text").fill(message);
  await page1.locator("#send").click();
  const line = `${name1}: ${message}`;
  await page2.locator("#log li", { hasText: line }).waitFor({ timeout: T });
  await page1.locator("#log li", { hasText: line }).waitFor({ timeout: T });
  if ((await page1.locator("#text").inputValue()) !== "") throw new Error("page 1's input was not cleared after sending");
  // The text is shown as text (textContent), not parsed as HTML.
  if ((await page2.locator("#log b").count()) !== 0) throw new Error("page 2 rendered the message as HTML");
  ok("a message typed and sent in page 1 arrives in page 2's log (and page 1's)");
  // That message shows in the next second's messages per second (0.9 and up: one message
  // over a tick a little longer than a second).
  await page2.locator("#rate").filter({ hasText: /^(0\.9|[1-9])/ }).waitFor({ timeout: T });
  ok("page 2 shows the message in the messages per second");

  // And back: page 2 answers with the Enter key.
  const reply = "Reply from page 2";
  await page2.locator("#text").fill(reply);
  await page2.locator("#text").press("Enter");
  await page1.locator("#log li", { hasText: `${name2}: ${reply}` }).waitFor({ timeout: T });
  await page2.locator("#log li", { hasText: `${name2}: ${reply}` }).waitFor({ timeout: T });
  ok("a reply sent with Enter in page 2 arrives in page 1's log");

  const shot1 = path.join(outDir, "chat-page1.png");
  const shot2 = path.join(outDir, "chat-page2.png");
  const png1 = await page1.screenshot({ path: shot1, timeout: T });
  const png2 = await page2.screenshot({ path: shot2, timeout: T });

  // One picture with both pages side by side, each under a caption.
  const both = await context.newPage();
  await both.setViewportSize({ width: 2 * 560 + 3 * 16, height: 420 + 60 });
  const img = (b) => `data:image/png;base64,${b.toString("base64")}`;
  await both.setContent(
    `<!doctype html><html><body style="margin:0;padding:8px 16px;background:#ddd;font:14px system-ui,sans-serif">
      <div style="display:flex;gap:16px">
        <figure style="margin:0"><figcaption>page 1 (${name1}) — typed and sent the message</figcaption>
          <img src="${img(png1)}" style="border:1px solid #888;display:block"></figure>
        <figure style="margin:0"><figcaption>page 2 (${name2}) — received it</figcaption>
          <img src="${img(png2)}" style="border:1px solid #888;display:block"></figure>
      </div></body></html>`,
    { timeout: T },
  );
  const combined = path.join(outDir, "chat-two-pages.png");
  await both.screenshot({ path: combined, fullPage: true, timeout: T });
  console.log(`    screenshots: ${combined} ${shot1} ${shot2}`);

  if (consoleErrors.length) throw new Error(`errors in the pages' console: ${consoleErrors.join(" | ")}`);
  ok("no errors in the pages' console");
}

const watchdog = setTimeout(() => {
  console.log("FAIL - chromium: the whole browser test took over 90s");
  process.exit(1);
}, 90_000);

try {
  await main();
} catch (e) {
  failed++;
  console.log(`FAIL - chromium chat in two pages\n  ${e && e.stack ? e.stack.replace(/\n/g, "\n  ") : e}`);
} finally {
  await Promise.race([context?.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  fs.rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
console.log(`chromium: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
