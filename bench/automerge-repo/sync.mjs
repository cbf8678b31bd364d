#!/usr/bin/env node
// automerge-repo 2.x on the sync journeys of duet's `duet-sync-bench`.
//
//   node sync.mjs --items-json FILE --out RESULT.json [--rounds R] [--ip-bytes]
//                 [--timeout-s S] [--build handle|direct|auto] [--keep] [--work DIR]
//   node sync.mjs --gen-items N --out FILE [--seed S]     (items shaped like `duet export`)
//
// One orchestrating parent starts every peer as an OS process of its own (this same file with
// `--role ...`): a builder that writes the document into the server's storage, the server S
// (Repo + NodeFSStorageAdapter + WebSocketServerAdapter on 127.0.0.1), a fresh client C for each
// timed journey (Repo + NodeFSStorageAdapter + WebSocketClientAdapter), and an offline writer.
// See README.md for what is measured and how "in sync" is decided.

import { spawn, fork } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const SELF = fileURLToPath(import.meta.url);
const HERE = path.dirname(SELF);

/** Wall-clock time in ms with sub-ms resolution, comparable across processes on one machine. */
const wall = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------- small helpers

function parseArgs(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      out._.push(a);
      continue;
    }
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) out[key] = true;
    else {
      out[key] = next;
      i++;
    }
  }
  return out;
}

let failing = false;
let workDir = null; // the orchestrator's temp dir, left in place on failure for a look
const children = new Set();
function fail(msg) {
  if (!failing) {
    failing = true;
    process.stderr.write(`automerge-repo bench: FAILED: ${msg}${workDir ? ` (work dir kept: ${workDir})` : ""}\n`);
  }
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {}
  }
  process.exit(1);
}

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${(ms / 1000).toFixed(0)} s ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Index of the round whose time is the median (the lower middle one for an even count). */
function medianIndex(xs) {
  const order = xs.map((x, i) => [x, i]).sort((a, b) => a[0] - b[0]);
  return order[(order.length - 1) >> 1][1];
}

function headsEqual(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.every((h, i) => h === sb[i]);
}

/** Bytes received by the loopback interface (first number after `lo:` in /proc/net/dev). */
function loBytes() {
  const dev = fs.readFileSync("/proc/net/dev", "utf8");
  const line = dev.split("\n").find(l => l.trim().startsWith("lo:"));
  if (!line) throw new Error("no lo: line in /proc/net/dev");
  return Number(line.trim().slice(3).trim().split(/\s+/)[0]);
}

function dirBytes(dir) {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else if (e.isFile()) total += fs.statSync(p).size;
  }
  return total;
}

function byteLen(data) {
  if (data == null) return 0;
  if (typeof data === "string") return Buffer.byteLength(data);
  if (data.byteLength !== undefined) return data.byteLength;
  if (Array.isArray(data)) return data.reduce((n, d) => n + byteLen(d), 0);
  return 0;
}

// ---------------------------------------------------------------- items like `duet export`

/** mulberry32: a small seeded PRNG. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Everyday journal prose, most frequent first: the word list of duet's own generator, read from
// tests/generate.rs (one list for both), sampled Zipf-like (weight 1/rank) in sentences of 5-16
// words. Only `--gen-items` needs it; real runs take duet's own export.
function readWords() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const rust = fs.readFileSync(path.join(here, "..", "..", "tests", "generate.rs"), "utf8");
  const list = rust.match(/const WORDS: &\[&str\] = &\[([\s\S]*?)\];/);
  if (!list) throw new Error("no WORDS list in tests/generate.rs");
  return [...list[1].matchAll(/"([^"]+)"/g)].map((m) => m[1]);
}

const TAGS = ["walk", "dinner", "kids", "trip", "garden", "music", "sam", "home", "work", "weekend"];
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

function makeVocabulary() {
  const words = readWords();
  const cum = [];
  let s = 0;
  for (let i = 0; i < words.length; i++) cum.push((s += 1 / (i + 1)));
  return { words, cum, total: s };
}

function pickWord(v, r) {
  const x = r() * v.total;
  let lo = 0;
  let hi = v.cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v.cum[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return v.words[lo];
}

function makeId(r) {
  let id = "";
  for (let i = 0; i < 13; i++) id += ID_ALPHABET[Math.floor(r() * 32)];
  return id;
}

function makeBody(v, r, target = 600) {
  let s = "";
  while (s.length < target) {
    const n = 5 + Math.floor(r() * 12);
    for (let w = 0; w < n; w++) {
      const word = pickWord(v, r);
      if (w === 0) s += (s ? " " : "") + word[0].toUpperCase() + word.slice(1);
      else s += " " + word;
    }
    s += r() < 1 / 8 ? "!" : ".";
  }
  return s;
}

/** One item as `duet export --format json` writes it. */
function makeItem(v, r, createdAtMs, id = makeId(r)) {
  const x = r();
  const nTags = Math.floor(r() * 3);
  const tags = [];
  while (tags.length < nTags) {
    const t = TAGS[Math.floor(r() * TAGS.length)];
    if (!tags.includes(t)) tags.push(t);
  }
  return {
    id,
    kind: x < 0.1 ? "thanks" : "entry",
    author: "me",
    author_name: "Alex",
    body: makeBody(v, r),
    created_at: new Date(createdAtMs).toISOString(),
    tags,
    starred: r() < 0.05,
    mood: null,
    energy: null,
    question: null,
    re: null,
    private: false,
    edited_at: null,
    edited_after_reveal: false,
  };
}

function generateItems(n, seed) {
  const r = rng(seed);
  const v = makeVocabulary();
  const days = Math.min(Math.max(1, n / 3), 20 * 365);
  const start = Date.now() - days * 86400e3;
  const items = [];
  for (let i = 0; i < n; i++) items.push(makeItem(v, r, start + (i / n) * days * 86400e3));
  return items;
}

/** Fresh entries, written by a peer during the bench (~600 bytes of prose each). */
function freshItems(n, seed, ids = []) {
  const r = rng(seed);
  const v = makeVocabulary();
  const out = [];
  for (let i = 0; i < n; i++) out.push(makeItem(v, r, Date.now(), ids[i] ?? makeId(r)));
  return out;
}

// ---------------------------------------------------------------- the shared Automerge bits

let ImmutableString;

/** The document's value for one item: strings as ImmutableString (plain strings, not text). */
function docItem(it) {
  const s = x => (typeof x === "string" ? new ImmutableString(x) : x ?? null);
  return {
    kind: s(it.kind),
    author: s(it.author),
    created_at: s(it.created_at),
    body: s(it.body),
    tags: (it.tags ?? []).map(s),
    starred: !!it.starred,
    mood: s(it.mood),
    energy: s(it.energy),
  };
}

const countItems = doc => Object.keys(doc.items ?? {}).length;

/** A storage adapter that forwards to another and knows which writes are still in flight. */
function trackStorage(inner) {
  const pending = new Set();
  const track = p => {
    pending.add(p);
    p.then(
      () => pending.delete(p),
      () => pending.delete(p),
    );
    return p;
  };
  return {
    load: k => inner.load(k),
    loadRange: k => inner.loadRange(k),
    save: (k, d) => track(inner.save(k, d)),
    remove: k => track(inner.remove(k)),
    removeRange: k => track(inner.removeRange(k)),
    async idle() {
      while (pending.size) await Promise.allSettled([...pending]);
    },
  };
}

function newCounters() {
  return { sent: 0, received: 0, msgsSent: 0, msgsReceived: 0, lastFrame: 0, tOpen: null, tcp: null };
}

function snapshotCounters(c) {
  const tcp = c.tcp && !c.tcp.destroyed ? { read: c.tcp.bytesRead, written: c.tcp.bytesWritten } : c.tcpLast;
  return {
    sent: c.sent,
    received: c.received,
    messages_sent: c.msgsSent,
    messages_received: c.msgsReceived,
    tcp_sent: tcp ? tcp.written - (c.tcpBase?.written ?? 0) : null,
    tcp_received: tcp ? tcp.read - (c.tcpBase?.read ?? 0) : null,
  };
}

function resetCounters(c) {
  c.sent = c.received = c.msgsSent = c.msgsReceived = 0;
  c.tcpBase = c.tcp ? { read: c.tcp.bytesRead, written: c.tcp.bytesWritten } : null;
}

/** The websocket client adapter, counting every message payload sent and received. */
function countingClientAdapter(WebSocketClientAdapter, url, counters) {
  class CountingClientAdapter extends WebSocketClientAdapter {
    connect(peerId, peerMetadata) {
      super.connect(peerId, peerMetadata);
      const s = this.socket;
      if (!s || s.__counted) return;
      s.__counted = true;
      const send = s.send.bind(s);
      s.send = (data, ...rest) => {
        counters.sent += byteLen(data);
        counters.msgsSent++;
        counters.lastFrame = wall();
        return send(data, ...rest);
      };
      s.addEventListener("message", ev => {
        counters.received += byteLen(ev.data);
        counters.msgsReceived++;
        counters.lastFrame = wall();
      });
      s.addEventListener("open", () => {
        counters.tOpen ??= wall();
        counters.tcp = s._socket ?? null;
      });
    }
  }
  // retryInterval: the first attempt is the one timed; a retry would only come after 5 s.
  return new CountingClientAdapter(url, 5000);
}

/**
 * Resolves when C is in sync with S, as the repo itself knows it: the heads S last announced in
 * a sync message (the repo's per-peer sync info, keyed by S's storage id) equal C's own heads.
 * S announces its heads in every sync message it sends, including after it has taken C's
 * changes, so this holds only once both sides hold the same changes.
 */
function waitInSync(repo, handle, ms) {
  return new Promise((resolve, reject) => {
    let timer;
    let poll;
    const done = err => {
      clearTimeout(timer);
      clearInterval(poll);
      handle.off("remote-heads", check);
      handle.off("heads-changed", check);
      err ? reject(err) : resolve();
    };
    function check() {
      if (!handle.isReady()) return;
      const mine = handle.heads();
      for (const peer of repo.peers) {
        const sid = repo.getStorageIdOfPeer(peer);
        const info = sid && handle.getSyncInfo(sid);
        if (info && headsEqual(info.lastHeads, mine)) return done();
      }
    }
    handle.on("remote-heads", check);
    handle.on("heads-changed", check);
    poll = setInterval(check, 5);
    timer = setTimeout(() => done(new Error(`timed out after ${ms / 1000} s waiting to be in sync with the server`)), ms);
    check();
  });
}

async function importRepo() {
  const repoMod = await import("@automerge/automerge-repo");
  const { NodeFSStorageAdapter } = await import("@automerge/automerge-repo-storage-nodefs");
  ImmutableString = repoMod.ImmutableString;
  return { Repo: repoMod.Repo, NodeFSStorageAdapter };
}

function reportAndExit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n", () => process.exit(0));
}

// ---------------------------------------------------------------- role: builder

async function roleBuilder(o) {
  const { Repo, NodeFSStorageAdapter } = await importRepo();
  const A = await import("@automerge/automerge");
  const items = JSON.parse(fs.readFileSync(o["items-json"], "utf8")).items;
  const storage = trackStorage(new NodeFSStorageAdapter(o.dir));
  const repo = new Repo({ storage, network: [] });
  const t0 = wall();
  let handle;
  let tLoop = null;
  if (o.build === "handle") {
    // One change per item, as every `duet write` is one change.
    handle = repo.create({ items: {} });
    for (const it of items) {
      handle.change(d => {
        d.items[it.id] = docItem(it);
      });
    }
  } else {
    // The same document (one change per item, one actor, the same values and types) written
    // through Automerge's low-level API, which skips materialising the JS object after each
    // change (O(items) per change for a map of N items), then imported into the repo.
    const base = A.from({ items: {} });
    const be = A.getBackend(base);
    const [type, itemsId] = be.getWithType("_root", "items");
    if (type !== "map") throw new Error("no items map");
    const scalar = (obj, key, v) => {
      if (typeof v === "string") be.put(obj, key, v, "str");
      else if (typeof v === "boolean") be.put(obj, key, v, "boolean");
      else if (typeof v === "number") be.put(obj, key, v, Number.isInteger(v) ? "int" : "f64");
      else be.put(obj, key, null, "null");
    };
    for (const it of items) {
      const v = docItem(it);
      const obj = be.putObject(itemsId, it.id, {});
      for (const [k, x] of Object.entries(v)) {
        if (Array.isArray(x)) {
          const list = be.putObject(obj, k, []);
          x.forEach((t, i) => be.insert(list, i, t.toString(), "str"));
        } else scalar(obj, k, x instanceof ImmutableString ? x.toString() : x);
      }
      be.commit(undefined, undefined);
    }
    tLoop = wall();
    handle = repo.import(be.save());
  }
  const tBuilt = wall();
  await repo.flush();
  await storage.idle();
  const tFlushed = wall();
  const doc = handle.doc();
  const docBytes = A.save(doc).byteLength;
  reportAndExit({
    url: handle.url,
    count: countItems(doc),
    heads: handle.heads(),
    doc_bytes: docBytes,
    build_ms: tBuilt - t0,
    build_changes_ms: tLoop ? tLoop - t0 : tBuilt - t0,
    flush_ms: tFlushed - tBuilt,
    max_rss_kib: process.resourceUsage().maxRSS,
  });
}

// ---------------------------------------------------------------- role: server (S)

async function roleServer(o) {
  const { Repo, NodeFSStorageAdapter } = await importRepo();
  const { WebSocketServerAdapter } = await import("@automerge/automerge-repo-network-websocket");
  const { WebSocketServer } = await import("ws");
  const A = await import("@automerge/automerge");
  process.on("disconnect", () => process.exit(0)); // the parent is gone
  const storage = trackStorage(new NodeFSStorageAdapter(o.dir));
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 1 << 30 });
  await once(wss, "listening");
  // A sync server shares a document only with peers that ask for it (as automerge-repo's
  // sync-server does); it still answers every request.
  const repo = new Repo({
    storage,
    network: [new WebSocketServerAdapter(wss)],
    sharePolicy: async () => false,
  });
  const t0 = wall();
  const handle = await repo.find(o.url);
  const loadMs = wall() - t0;
  let seq = 0;
  const seed = Number(o.seed ?? 1);
  const state = (withBytes = false) => ({
    count: countItems(handle.doc()),
    heads: handle.heads(),
    max_rss_kib: process.resourceUsage().maxRSS,
    doc_bytes: withBytes ? A.save(handle.doc()).byteLength : undefined,
  });
  process.on("message", async msg => {
    try {
      let reply;
      if (msg.cmd === "add") {
        const entries = freshItems(msg.n, seed * 1000003 + ++seq, msg.ids ?? []);
        let tChange = null;
        for (const e of entries) {
          tChange ??= wall();
          handle.change(d => {
            d.items[e.id] = docItem(e);
          });
        }
        reply = { t_change: tChange, ids: entries.map(e => e.id) };
        if (!msg.live) {
          await repo.flush();
          await storage.idle();
        }
        Object.assign(reply, state());
      } else if (msg.cmd === "state") {
        reply = state(!!msg.docBytes);
      } else if (msg.cmd === "quit") {
        await repo.shutdown();
        await storage.idle();
        reply = state();
        process.send({ id: msg.id, ok: true, ...reply }, () => process.exit(0));
        return;
      } else throw new Error(`unknown command ${msg.cmd}`);
      process.send({ id: msg.id, ok: true, ...reply });
    } catch (e) {
      process.send({ id: msg.id, ok: false, error: String(e?.stack ?? e) });
    }
  });
  process.send({ type: "ready", port: wss.address().port, load_ms: loadMs, ...state() });
}

// ---------------------------------------------------------------- role: client (C)

async function roleClient(o) {
  const timeoutMs = Number(o["timeout-s"] ?? 300) * 1000;
  const { Repo, NodeFSStorageAdapter } = await importRepo();
  const { WebSocketClientAdapter } = await import("@automerge/automerge-repo-network-websocket");
  const tImported = wall();
  const live = !!o.live;
  if (live) process.on("disconnect", () => process.exit(0));
  const counters = newCounters();
  const storage = trackStorage(new NodeFSStorageAdapter(o.dir));
  const adapter = countingClientAdapter(WebSocketClientAdapter, `ws://127.0.0.1:${o.port}`, counters);
  const repo = new Repo({ storage, network: [adapter] });
  const tFind = wall();
  const handle = await withTimeout(repo.find(o.url), timeoutMs, "loading the document (storage or network)");
  const tLoaded = wall();
  await waitInSync(repo, handle, timeoutMs);
  const tSynced = wall();
  const count = countItems(handle.doc());
  const expect = Number(o.expect);
  if (count !== expect) throw new Error(`client holds ${count} items after sync, expected ${expect}`);
  const base = {
    t_process_start: performance.timeOrigin,
    t_imported: tImported,
    t_find: tFind,
    t_loaded: tLoaded,
    t_open: counters.tOpen,
    t_synced: tSynced,
    load_ms: tLoaded - tFind,
    count,
    heads: handle.heads(),
  };

  if (!live) {
    const frames = snapshotCounters(counters);
    await repo.shutdown(); // closes the socket, then flushes the document to storage
    await storage.idle(); // and waits for writes still in flight (a throttled save, sync state)
    reportAndExit({ ...base, ...frames, t_done: wall(), max_rss_kib: process.resourceUsage().maxRSS });
    return;
  }

  // Live: stay up, report, and watch for entries pushed by S.
  let armed = null;
  handle.on("change", ({ doc }) => {
    if (armed && !armed.tEvent && doc.items?.[armed.id]) armed.tEvent = wall();
  });
  process.on("message", async msg => {
    try {
      if (msg.cmd === "arm") {
        resetCounters(counters);
        armed = { id: msg.entry, tEvent: null };
        process.send({ id: msg.id_req, ok: true });
      } else if (msg.cmd === "await") {
        const a = armed;
        const t0 = wall();
        while (!a.tEvent) {
          if (wall() - t0 > timeoutMs) throw new Error(`live push: entry ${a.id} did not arrive within ${timeoutMs / 1000} s`);
          await sleep(2);
        }
        // Then let the exchange finish: no frame either way for quietMs.
        const quietMs = Number(msg.quietMs ?? 500);
        while (wall() - Math.max(counters.lastFrame, a.tEvent) < quietMs) {
          if (wall() - t0 > timeoutMs) throw new Error("live push: the connection never went quiet");
          await sleep(20);
        }
        const c = countItems(handle.doc());
        if (c !== msg.expect) throw new Error(`live client holds ${c} items, expected ${msg.expect}`);
        process.send({ id: msg.id_req, ok: true, t_event: a.tEvent, count: c, heads: handle.heads(), ...snapshotCounters(counters) });
      } else if (msg.cmd === "quit") {
        const rss = process.resourceUsage().maxRSS;
        await repo.shutdown();
        await storage.idle();
        process.send({ id: msg.id_req, ok: true, max_rss_kib: rss }, () => process.exit(0));
      }
    } catch (e) {
      process.send({ id: msg.id_req, ok: false, error: String(e?.stack ?? e) });
    }
  });
  process.send({ type: "synced", ...base, ...snapshotCounters(counters), max_rss_kib: process.resourceUsage().maxRSS });
}

// ---------------------------------------------------------------- role: writer (C, offline)

async function roleWriter(o) {
  const { Repo, NodeFSStorageAdapter } = await importRepo();
  const storage = trackStorage(new NodeFSStorageAdapter(o.dir));
  const repo = new Repo({ storage, network: [] }); // no network: the devices are apart
  const handle = await withTimeout(repo.find(o.url), 300e3, "loading the document from storage");
  const entries = freshItems(Number(o.n), Number(o.seed ?? 99));
  for (const e of entries) {
    handle.change(d => {
      d.items[e.id] = docItem(e);
    });
  }
  await repo.flush();
  await storage.idle();
  reportAndExit({ count: countItems(handle.doc()), heads: handle.heads() });
}

// ---------------------------------------------------------------- the orchestrating parent

/** Runs this file with a role as a child process; resolves with its JSON report and wall time. */
function runRole(role, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const argv = [SELF, "--role", role, ...Object.entries(args).flatMap(([k, v]) => [`--${k}`, String(v)])];
    const tSpawn = wall();
    const child = spawn(process.execPath, argv, { cwd: HERE, stdio: ["ignore", "pipe", "inherit"] });
    children.add(child);
    let out = "";
    let tExit = null;
    child.stdout.on("data", d => (out += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${role} process timed out after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on("exit", () => (tExit = wall()));
    child.on("error", reject);
    child.on("close", code => {
      clearTimeout(timer);
      children.delete(child);
      if (code !== 0) return reject(new Error(`${role} process exited with ${code}`));
      const line = out.trim().split("\n").pop();
      try {
        resolve({ report: JSON.parse(line), tSpawn, tExit, ms: tExit - tSpawn });
      } catch {
        reject(new Error(`${role} process printed no report: ${out.slice(0, 500)}`));
      }
    });
  });
}

/** A forked child speaking over IPC: requests with ids, each with a timeout. */
function ipcChild(role, args, readyType, timeoutMs) {
  const argv = ["--role", role, ...Object.entries(args).flatMap(([k, v]) => (v === true ? [`--${k}`] : [`--${k}`, String(v)]))];
  const child = fork(SELF, argv, { cwd: HERE, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.add(child);
  const waiting = new Map();
  let nextId = 1;
  let readyResolve, readyReject;
  const ready = new Promise((res, rej) => ((readyResolve = res), (readyReject = rej)));
  child.on("message", m => {
    if (m.type === readyType) return readyResolve(m);
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    m.ok ? w.resolve(m) : w.reject(new Error(`${role}: ${m.error}`));
  });
  child.on("exit", code => {
    children.delete(child);
    const err = new Error(`${role} process exited (${code}) unexpectedly`);
    readyReject(err);
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  });
  const request = (msg, ms = timeoutMs) => {
    const id = nextId++;
    const p = new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
    child.send({ ...msg, id, id_req: id });
    return withTimeout(p, ms, `waiting for ${role} to answer ${msg.cmd}`);
  };
  return {
    child,
    ready: withTimeout(ready, timeoutMs, `waiting for ${role} to start`),
    request,
    async quit() {
      const exited = once(child, "exit");
      const r = await request({ cmd: "quit" });
      await withTimeout(exited, timeoutMs, `waiting for ${role} to exit`);
      return r;
    },
  };
}

function summarize(rounds, { ipBytes }) {
  const ms = rounds.map(r => r.ms);
  const mi = medianIndex(ms);
  const m = rounds[mi];
  const pick = k => (m[k] === undefined ? null : m[k]);
  const optMedian = k => (rounds.every(r => typeof r[k] === "number") ? median(rounds.map(r => r[k])) : null);
  return {
    ms: ms.map(x => Math.round(x * 10) / 10),
    median_ms: median(ms),
    min_ms: Math.min(...ms),
    max_ms: Math.max(...ms),
    // Bytes, messages and IP bytes of the median round (by time).
    bytes_from_round: mi,
    sent: pick("sent"),
    received: pick("received"),
    messages: m.messages_sent + m.messages_received,
    messages_sent: m.messages_sent,
    messages_received: m.messages_received,
    tcp_sent: pick("tcp_sent"),
    tcp_received: pick("tcp_received"),
    ip_bytes: ipBytes ? pick("ip_bytes") : null,
    // Client process timeline (ms from spawn): node + module start-up until the Repo exists;
    // the websocket open; the document loaded (from its own storage, or for the first sync from
    // the network); in sync. The load and the connection overlap.
    startup_ms_median: optMedian("startup_ms"),
    before_connect_ms_median: optMedian("before_connect_ms"),
    load_ms_median: optMedian("load_ms"),
    loaded_at_ms_median: optMedian("loaded_at_ms"),
    synced_at_ms_median: optMedian("synced_at_ms"),
    client_max_rss_kib: Math.max(...rounds.map(r => r.client_max_rss_kib ?? 0)),
    server_max_rss_kib: null, // filled in by the journey
    rounds,
  };
}

async function orchestrate(o) {
  if (!o["items-json"] || !o.out) {
    process.stderr.write("usage: node sync.mjs --items-json FILE --out RESULT.json [--rounds R] [--ip-bytes]\n");
    process.exit(2);
  }
  const rounds = Math.max(1, Number(o.rounds ?? 5));
  const timeoutMs = Number(o["timeout-s"] ?? 300) * 1000;
  const ipBytes = !!o["ip-bytes"];
  const tAll = wall();
  if (ipBytes) {
    loBytes(); // fails loudly if there is no loopback line
    // A namespace made for the bench (unshare -n) has no interface but lo.
    const ifaces = fs.readFileSync("/proc/net/dev", "utf8").split("\n").slice(2).map(l => l.split(":")[0].trim()).filter(Boolean);
    if (ifaces.some(i => i !== "lo"))
      process.stderr.write(`warning: --ip-bytes with interfaces ${ifaces.join(", ")}: not a network namespace of its own, other loopback traffic may be counted too\n`);
  }
  const itemsFile = path.resolve(o["items-json"]);
  const exported = JSON.parse(fs.readFileSync(itemsFile, "utf8"));
  if (!Array.isArray(exported.items)) fail(`${itemsFile} has no "items" array (expected duet export --format json)`);
  const N = exported.items.length;
  const ids = new Set(exported.items.map(i => i.id));
  if (ids.size !== N) fail(`${itemsFile}: item ids are not unique`);

  const versions = {};
  for (const p of ["@automerge/automerge", "@automerge/automerge-repo", "@automerge/automerge-repo-storage-nodefs", "@automerge/automerge-repo-network-websocket", "ws"])
    versions[p] = JSON.parse(fs.readFileSync(path.join(HERE, "node_modules", p, "package.json"), "utf8")).version;
  versions.node = process.version;

  const work = o.work ? path.resolve(o.work) : fs.mkdtempSync(path.join(os.tmpdir(), "amrepo-bench-"));
  fs.mkdirSync(work, { recursive: true });
  workDir = work;
  const sdir = path.join(work, "server");
  const cdir = path.join(work, "client");
  for (const d of [sdir, cdir]) fs.rmSync(d, { recursive: true, force: true });
  const cleanup = () => {
    if (!o.keep && !o.work) fs.rmSync(work, { recursive: true, force: true });
  };
  process.on("exit", () => {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch {}
    }
  });

  const log = s => process.stdout.write(s + "\n");
  log(`automerge-repo ${versions["@automerge/automerge-repo"]} / automerge ${versions["@automerge/automerge"]}, ${N} items, ${rounds} rounds${ipBytes ? ", IP bytes counted" : ""}`);

  // Build the document once, one change per item, in S's storage.
  // --build handle: handle.change once per item (what an app does; O(items) per change in JS,
  // ~35 s at 10k and about an hour at 100k on 2 cores); --build direct: the same changes through
  // the low-level API. auto: handle up to 20,000 items.
  const buildMode = o.build && o.build !== "auto" ? o.build : N <= 20000 ? "handle" : "direct";
  if (!["handle", "direct"].includes(buildMode)) fail(`--build must be handle, direct or auto`);
  const built = await runRole("builder", { dir: sdir, "items-json": itemsFile, build: buildMode }, timeoutMs * 4);
  const b = built.report;
  if (b.count !== N) fail(`built document holds ${b.count} items, expected ${N}`);
  const serverStorageBytes = dirBytes(sdir);
  log(`built (${buildMode}): ${N} changes in ${(b.build_ms / 1000).toFixed(2)} s (+ ${(b.flush_ms / 1000).toFixed(2)} s flush; process ${(built.ms / 1000).toFixed(2)} s), Automerge.save = ${b.doc_bytes} bytes, server storage ${serverStorageBytes} bytes`);
  const url = b.url;
  let expected = N;
  let serverSeed = 1;

  const startServer = async () => {
    const s = ipcChild("server", { dir: sdir, url, seed: serverSeed++ }, "ready", timeoutMs);
    const r = await s.ready;
    if (r.count !== expected) fail(`server loaded ${r.count} items, expected ${expected}`);
    s.port = r.port;
    s.load_ms = r.load_ms;
    return s;
  };

  /** One timed client process; checks what it holds against S. */
  const timedClient = async (server, dir) => {
    const lo0 = ipBytes ? loBytes() : null;
    const run = await runRole("client", { dir, url, port: server.port, expect: expected, "timeout-s": timeoutMs / 1000 }, timeoutMs + 15e3);
    const lo1 = ipBytes ? loBytes() : null;
    const r = run.report;
    const s = await server.request({ cmd: "state" });
    if (s.count !== expected) fail(`server holds ${s.count} items after the sync, expected ${expected}`);
    if (!headsEqual(s.heads, r.heads)) fail(`client and server heads differ after the sync`);
    return {
      ms: run.ms,
      sent: r.sent,
      received: r.received,
      messages_sent: r.messages_sent,
      messages_received: r.messages_received,
      tcp_sent: r.tcp_sent,
      tcp_received: r.tcp_received,
      ip_bytes: ipBytes ? lo1 - lo0 : null,
      before_connect_ms: r.t_open ? r.t_open - run.tSpawn : null,
      load_ms: r.load_ms,
      startup_ms: r.t_find - run.tSpawn,
      loaded_at_ms: r.t_loaded - run.tSpawn,
      synced_at_ms: r.t_synced - run.tSpawn,
      client_max_rss_kib: r.max_rss_kib,
      items: r.count,
    };
  };

  const journeys = {};
  const line = (name, j) => {
    const kib = x => (x / 1024).toFixed(0);
    log(
      `${name.padEnd(16)} median ${j.median_ms.toFixed(0)} ms (${j.min_ms.toFixed(0)}-${j.max_ms.toFixed(0)})` +
        (j.loaded_at_ms_median != null
          ? ` [start-up ${j.startup_ms_median.toFixed(0)}, ws open ${j.before_connect_ms_median.toFixed(0)}, doc loaded ${j.loaded_at_ms_median.toFixed(0)}, in sync ${j.synced_at_ms_median.toFixed(0)} ms]`
          : "") +
        `; frames ${j.sent} B sent + ${j.received} B received = ${j.sent + j.received} B in ${j.messages} msgs` +
        (j.ip_bytes != null ? `; IP ${j.ip_bytes} B` : "") +
        `; RSS client ${kib(j.client_max_rss_kib)} MiB, server ${kib(j.server_max_rss_kib)} MiB`,
    );
  };

  // 1. First sync: C starts empty each round.
  {
    const server = await startServer();
    const rs = [];
    for (let i = 0; i < rounds; i++) {
      const dir = path.join(work, `client-first-${i}`);
      rs.push(await timedClient(server, dir));
      if (i < rounds - 1) fs.rmSync(dir, { recursive: true, force: true });
      else fs.renameSync(dir, cdir);
    }
    const q = await server.quit();
    journeys.first_sync = summarize(rs, { ipBytes });
    journeys.first_sync.server_max_rss_kib = q.max_rss_kib;
    journeys.first_sync.server_load_ms = server.load_ms;
    line("first_sync", journeys.first_sync);
  }

  // 2. Catch up one entry after a restart: S adds one while C is not running.
  {
    const server = await startServer();
    const rs = [];
    for (let i = 0; i < rounds; i++) {
      const a = await server.request({ cmd: "add", n: 1 });
      expected++;
      if (a.count !== expected) fail(`server holds ${a.count} after adding one, expected ${expected}`);
      rs.push(await timedClient(server, cdir));
    }
    const q = await server.quit();
    journeys.catch_up_one = summarize(rs, { ipBytes });
    journeys.catch_up_one.server_max_rss_kib = q.max_rss_kib;
    line("catch_up_one", journeys.catch_up_one);
  }

  // 3. Nothing changed.
  {
    const server = await startServer();
    const rs = [];
    for (let i = 0; i < rounds; i++) rs.push(await timedClient(server, cdir));
    const q = await server.quit();
    journeys.nothing_changed = summarize(rs, { ipBytes });
    journeys.nothing_changed.server_max_rss_kib = q.max_rss_kib;
    line("nothing_changed", journeys.nothing_changed);
  }

  // 4. Live push: S and a long-running C, both up and in sync; S adds one entry.
  {
    const server = await startServer();
    const live = ipcChild("client", { dir: cdir, url, port: server.port, expect: expected, "timeout-s": timeoutMs / 1000, live: true }, "synced", timeoutMs);
    const syncedReport = await live.ready;
    const rs = [];
    const r = rng(4242);
    for (let i = 0; i < rounds; i++) {
      await sleep(300); // let any earlier exchange settle
      const id = makeId(r);
      await live.request({ cmd: "arm", entry: id });
      const lo0 = ipBytes ? loBytes() : null;
      const a = await server.request({ cmd: "add", n: 1, ids: [id], live: true });
      expected++;
      const got = await live.request({ cmd: "await", expect: expected, quietMs: 500 }, timeoutMs + 5e3);
      const lo1 = ipBytes ? loBytes() : null;
      const s = await server.request({ cmd: "state" });
      if (s.count !== expected) fail(`server holds ${s.count} items, expected ${expected}`);
      if (!headsEqual(s.heads, got.heads)) fail("live push: client and server heads differ");
      rs.push({
        ms: got.t_event - a.t_change,
        sent: got.sent,
        received: got.received,
        messages_sent: got.messages_sent,
        messages_received: got.messages_received,
        tcp_sent: got.tcp_sent,
        tcp_received: got.tcp_received,
        ip_bytes: ipBytes ? lo1 - lo0 : null,
        items: got.count,
      });
    }
    const lq = await live.quit();
    const q = await server.quit();
    journeys.live_push = summarize(rs, { ipBytes });
    journeys.live_push.client_max_rss_kib = lq.max_rss_kib;
    journeys.live_push.server_max_rss_kib = q.max_rss_kib;
    journeys.live_push.initial_sync = {
      sent: syncedReport.sent,
      received: syncedReport.received,
      messages: syncedReport.messages_sent + syncedReport.messages_received,
    };
    line("live_push", journeys.live_push);
  }

  // 5. Apart, then meeting: 50 entries on S, 50 others in C's storage (offline), then C syncs.
  {
    const server = await startServer();
    const rs = [];
    for (let i = 0; i < rounds; i++) {
      const a = await server.request({ cmd: "add", n: 50 });
      if (a.count !== expected + 50) fail(`server holds ${a.count} after adding 50, expected ${expected + 50}`);
      const w = await runRole("writer", { dir: cdir, url, n: 50, seed: 5000 + i }, timeoutMs);
      if (w.report.count !== expected + 50) fail(`offline writer holds ${w.report.count}, expected ${expected + 50}`);
      expected += 100;
      const res = await timedClient(server, cdir);
      res.offline_write_ms = w.ms;
      rs.push(res);
    }
    const q = await server.quit();
    journeys.apart_50_each = summarize(rs, { ipBytes });
    journeys.apart_50_each.server_max_rss_kib = q.max_rss_kib;
    line("apart_50_each", journeys.apart_50_each);
  }

  const totalMs = wall() - tAll;
  const result = {
    tool: "automerge-repo",
    versions,
    items: N,
    items_json: itemsFile,
    rounds,
    doc_bytes: b.doc_bytes,
    server_storage_bytes_at_start: serverStorageBytes,
    build: { mode: buildMode, ms: b.build_ms, flush_ms: b.flush_ms, process_ms: built.ms, max_rss_kib: b.max_rss_kib },
    final_items: expected,
    ip_bytes_counted: ipBytes,
    in_sync_rule:
      "client's own heads == the heads the server last announced to it (repo sync info for the server's storage id); then repo.shutdown() (flush) and the storage's in-flight writes awaited; parent checks item count and heads against the server out of band",
    bytes_from: "median round by time (bytes_from_round)",
    total_wall_ms: totalMs,
    journeys,
  };
  fs.writeFileSync(path.resolve(o.out), JSON.stringify(result, null, 2) + "\n");
  log(`final: ${expected} items on both sides; total wall time ${(totalMs / 1000).toFixed(1)} s; wrote ${o.out}`);
  cleanup();
}

// ---------------------------------------------------------------- main

const opts = parseArgs(process.argv.slice(2));
process.on("unhandledRejection", e => fail(`${opts.role ?? "bench"}: ${e?.stack ?? e}`));

try {
  if (opts["gen-items"]) {
    const n = Number(opts["gen-items"]);
    if (!opts.out) throw new Error("--gen-items N needs --out FILE");
    const items = generateItems(n, Number(opts.seed ?? 7));
    fs.writeFileSync(opts.out, JSON.stringify({ format: "duet-export/1", me: "Alex", partner: null, items }, null, 2) + "\n");
    console.log(`wrote ${n} items to ${opts.out}`);
  } else if (opts.role === "builder") await roleBuilder(opts);
  else if (opts.role === "server") await roleServer(opts);
  else if (opts.role === "client") await roleClient(opts);
  else if (opts.role === "writer") await roleWriter(opts);
  else await orchestrate(opts);
} catch (e) {
  fail(`${opts.role ?? "bench"}: ${e?.message ?? e}`);
}
