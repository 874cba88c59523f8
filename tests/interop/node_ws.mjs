// Interop tests: the Node `ws` client against the echo and chat examples.
//
// usage: node node_ws.mjs ECHO_URL[,ECHO_URL...] CHAT_BASE_URL
//
// ECHO_URL is ws://HOST:PORT of an echo example (one per notify mode, labelled by the
// ?mode= query part if any); CHAT_BASE_URL is http://HOST:PORT/ of the chat example.
// Prints one `ok - ...` / `FAIL - ...` line per test and a closing `N passed, N failed` line.

import { createRequire } from "node:module";
import WebSocket from "ws";

const require = createRequire(import.meta.url);
const WS_VERSION = require("ws/package.json").version;
const T = 10_000; // ms: every wait is bounded by this

const [echoArg, chatBase] = process.argv.slice(2);
if (!echoArg || !chatBase) {
  console.error("usage: node node_ws.mjs ECHO_URL[,ECHO_URL...] CHAT_BASE_URL");
  process.exit(2);
}

let passed = 0;
let failed = 0;

async function test(name, fn) {
  const label = `node-ws ${WS_VERSION} ${name}`;
  const start = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok - ${label} (${((Date.now() - start) / 1000).toFixed(2)}s)`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${label}\n  ${e && e.stack ? e.stack.replace(/\n/g, "\n  ") : e}`);
  }
}

function assertEq(got, want, what) {
  const g = Buffer.isBuffer(got) ? `<Buffer ${got.length} bytes ${got.toString("hex", 0, 16)}>` : JSON.stringify(got);
  const w = Buffer.isBuffer(want) ? `<Buffer ${want.length} bytes ${want.toString("hex", 0, 16)}>` : JSON.stringify(want);
  const same = Buffer.isBuffer(got) && Buffer.isBuffer(want) ? got.equals(want) : g === w;
  if (!same) throw new Error(`${what}: got ${g.slice(0, 200)}, want ${w.slice(0, 200)}`);
}

function withTimeout(promise, what, ms = T) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms}ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Opens a client and queues every message it receives, so none is missed between awaits. */
function open(url, opts = {}) {
  const ws = new WebSocket(url, { handshakeTimeout: T, ...opts });
  const queue = [];
  const waiters = [];
  ws.on("message", (data, isBinary) => {
    const m = { data: isBinary ? data : data.toString("utf8"), isBinary };
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  let closedWith = null;
  ws.closed = new Promise((resolve) =>
    ws.on("close", (code, reason) => {
      closedWith = { code, reason: reason.toString() };
      for (const w of waiters.splice(0)) w(null);
      resolve(closedWith);
    }),
  );
  ws.next = (what = "message") =>
    withTimeout(
      new Promise((resolve) => {
        const m = queue.shift();
        if (m || closedWith) resolve(m || null);
        else waiters.push(resolve);
      }),
      `${url}: ${what}`,
    ).then((m) => {
      if (!m) throw new Error(`${url}: ${what}: connection closed first (${JSON.stringify(closedWith)})`);
      return m;
    });
  return withTimeout(
    new Promise((resolve, reject) => {
      ws.once("open", () => resolve(ws));
      ws.once("error", reject);
    }),
    `${url}: open`,
  ).catch((e) => {
    ws.terminate();
    throw e;
  });
}

const echoUrls = echoArg.split(",");
for (const url of echoUrls) {
  const mode = new URL(url).searchParams.get("mode") || "echo";

  await test(`[${mode}] echo text and binary`, async () => {
    const ws = await open(url);
    try {
      for (const text of ["hello from node", "", "ünïcödé ✓ 🎉", "t".repeat(70_000)]) {
        ws.send(text);
        const m = await ws.next("text echo");
        assertEq(m.isBinary, false, "echo of text is text");
        assertEq(m.data, text, "text echo");
      }
      for (const bin of [Buffer.from([0, 1, 2, 255]), Buffer.alloc(0), Buffer.alloc(100_000, 0xab)]) {
        ws.send(bin);
        const m = await ws.next("binary echo");
        assertEq(m.isBinary, true, "echo of binary is binary");
        assertEq(m.data, bin, "binary echo");
      }
      // A fragmented message: ws sends fin=false frames followed by a final one.
      ws.send("part one, ", { fin: false });
      ws.send("part two, ", { fin: false });
      ws.send("the end", { fin: true });
      assertEq((await ws.next("fragmented echo")).data, "part one, part two, the end", "fragmented echo");
    } finally {
      ws.terminate();
    }
  });

  await test(`[${mode}] ping gets a pong`, async () => {
    const ws = await open(url);
    try {
      const pong = new Promise((resolve) => ws.once("pong", (data) => resolve(data.toString())));
      ws.ping("are you there");
      assertEq(await withTimeout(pong, "pong"), "are you there", "pong payload");
    } finally {
      ws.terminate();
    }
  });

  await test(`[${mode}] permessage-deflate ${mode === "deflate" ? "negotiated" : "offer declined"}`, async () => {
    // ws offers permessage-deflate when perMessageDeflate is on (its client default).
    const ws = await open(url, { perMessageDeflate: true });
    try {
      // ws.extensions names what was negotiated (its parameters are not shown).
      assertEq(ws.extensions, mode === "deflate" ? "permessage-deflate" : "", "negotiated extensions");
      for (const msg of ["squeeze me ".repeat(2000), "tiny", "ünïcödé ✓ ".repeat(500)]) {
        ws.send(msg);
        assertEq((await ws.next("echo")).data, msg, "echo");
      }
      const bin = Buffer.alloc(300_000, 7);
      ws.send(bin, { compress: true });
      assertEq((await ws.next("binary echo")).data, bin, "binary echo");
      // Fragmented and compressed: ws compresses each fragment of one message.
      ws.send("part one, ".repeat(200), { fin: false, compress: true });
      ws.send("the end", { fin: true, compress: true });
      assertEq((await ws.next("fragmented echo")).data, "part one, ".repeat(200) + "the end", "fragmented echo");
    } finally {
      ws.terminate();
    }
  });

  await test(`[${mode}] close with code 4001 and reason "bye"`, async () => {
    const ws = await open(url);
    ws.send("before close");
    assertEq((await ws.next("echo before close")).data, "before close", "echo before close");
    ws.close(4001, "bye");
    const { code, reason } = await withTimeout(ws.closed, "close handshake");
    // The server echoes the status code (RFC 6455 5.5.1); the reason is its own choice.
    assertEq(code, 4001, "close code received from the server");
    console.log(`    (server's close reason: ${JSON.stringify(reason)})`);
  });
}

function chatMessages(ws) {
  // Parses each text message of the chat as JSON; returns the next one matching `pred`.
  return async (pred, what) => {
    for (;;) {
      const m = await ws.next(what);
      const msg = JSON.parse(m.data);
      if (pred(msg)) return msg;
    }
  };
}

const chatUrl = new URL("chat", chatBase).href.replace(/^http/, "ws");

await test("[chat] broadcast between two clients", async () => {
  const a = await open(chatUrl);
  const b = await open(chatUrl);
  try {
    const nextA = chatMessages(a);
    const nextB = chatMessages(b);
    const welcomeA = await nextA((m) => m.kind === "welcome", "A's welcome");
    const welcomeB = await nextB((m) => m.kind === "welcome", "B's welcome");
    assertEq([welcomeA.room, welcomeA.node], ["lobby", "single"], "A's room and node");
    const nameA = welcomeA.name;
    const nameB = welcomeB.name;
    // A sees B join.
    await nextA((m) => m.kind === "notice" && m.text === `${nameB} joined`, "A sees B join");

    const text = `hello from A at ${Date.now()} — "quoted" \\ ✓`;
    a.send(text);
    const gotB = await nextB((m) => m.kind === "msg", "B receives A's message");
    const want = { kind: "msg", from: nameA, id: welcomeA.id, room: "lobby", text };
    assertEq(gotB, want, "message received by B");
    const gotA = await nextA((m) => m.kind === "msg", "A receives its own message");
    assertEq(gotA, want, "message echoed to A");

    // A direct message by id, and one to an id nobody holds.
    a.send(`/dm ${welcomeB.id} psst`);
    const dm = await nextB((m) => m.kind === "dm", "B receives A's dm");
    assertEq(dm, { kind: "dm", from: nameA, id: welcomeA.id, text: "psst" }, "dm");
    a.send("/dm 00000000-0000-4000-8000-000000000000 anyone?");
    await nextA((m) => m.kind === "error", "A is told the id is unknown");

    b.send("reply from B");
    assertEq((await nextA((m) => m.kind === "msg", "A receives B's reply")).text, "reply from B", "reply");

    // B leaves: A is told.
    b.close(1000);
    await withTimeout(b.closed, "B's close handshake");
    await nextA((m) => m.kind === "notice" && m.text === `${nameB} left`, "A sees B leave");
  } finally {
    a.terminate();
    b.terminate();
  }
});

await test("[chat] page served over HTTP on the same port", async () => {
  const res = await withTimeout(fetch(chatBase), "GET /");
  assertEq(res.status, 200, "status of GET /");
  const body = await res.text();
  if (!body.includes('id="log"') || !body.includes("new WebSocket")) throw new Error("GET / did not return the chat page");
  const missing = await withTimeout(fetch(new URL("no-such-page", chatBase)), "GET /no-such-page");
  assertEq(missing.status, 404, "status of GET /no-such-page");
});

console.log(`node-ws: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
