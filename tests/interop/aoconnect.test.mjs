// @permaweb/aoconnect (legacy mode, MU_URL = CU_URL = GATEWAY_URL = the node)
// against a real `vmnode serve` on loopback: spawn() on the node's default
// Lua module (after aoconnect's GraphQL check of the module's tags),
// message() + result() with Eval and handlers, dryrun(), two processes
// talking through the node's outbox delivery, results() cursors, and the
// GraphQL queries aos makes. Signed with a fresh Arweave JWK through
// createDataItemSigner (RSA-PSS items, signature type 1).
//
// Environment: BUILD (build dir holding vmnode, default "build", relative to
// the repo root), VN_SHARED (shared dir with vectors/, default ../shared),
// VN_KEEP_TMP=1 keeps the temp dir (node log) for a look.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn as spawnProcess, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { connect, createDataItemSigner } from "@permaweb/aoconnect";
import Arweave from "arweave";
import { createData, ArweaveSigner } from "arbundles";
import { freePort, sleep } from "./lib.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");
const BUILD = path.resolve(REPO, process.env.BUILD || "build");
const VMNODE = path.join(BUILD, "vmnode");
const SHARED = path.resolve(REPO, process.env.VN_SHARED || path.join("..", "shared"));
const KEYS = JSON.parse(fs.readFileSync(path.join(SHARED, "vectors", "ans104", "keys.json"), "utf8"));
const STRANGER_JWK = KEYS.arweave.find((k) => k.name === "arweave_jwk_1").jwk;

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "vmnode-aoconnect-"));
const ENV = { ...process.env, XDG_CONFIG_HOME: path.join(TMP, "xdg") };

after(() => {
  if (process.env.VN_KEEP_TMP) console.log(`# aoconnect temp dir kept: ${TMP}`);
  else fs.rmSync(TMP, { recursive: true, force: true });
});


// Call fn until it returns something truthy, at most `ms`.
async function eventually(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// The queries below are the shapes aoconnect 0.0.98 and aos send (see
// docs/api.md, "/graphql"), written out here.
const MODULE_QUERY = `
  query GetTransactions ($transactionIds: [ID!]!) {
    transactions(ids: $transactionIds) {
      edges { node { owner { address } tags { name value } block { id height timestamp } } }
    }
  }`;
const aosProcessQuery = (name) => `query ($owners: [String!]!) {
    transactions(
      first: 10,
      owners: $owners,
      tags: [
        { name: "Data-Protocol", values: ["ao"] },
        { name: "Type", values: ["Process"]},
        { name: "Name", values: ["${name}"]}
      ]
    ) { edges { node { id tags { name value } } } }
  }`;

describe("aoconnect against vmnode serve", { timeout: 100000 }, () => {
  let proc;
  let url;
  let logFile;
  let exited = false;
  let ao;
  const st = {}; // shared by the steps, which run in order

  before(async () => {
    logFile = path.join(TMP, "node.log");
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const log = fs.openSync(logFile, "a");
    proc = spawnProcess(VMNODE, ["serve", "--data-dir", path.join(TMP, "data"), "--port", `127.0.0.1:${port}`],
      { env: ENV, cwd: TMP, stdio: ["ignore", log, log] });
    fs.closeSync(log);
    proc.on("exit", () => { exited = true; });
    st.info = await eventually(async () => {
      if (exited) throw new Error(`node exited:\n${fs.readFileSync(logFile, "utf8").slice(-2000)}`);
      try {
        const r = await fetch(`${url}/info`, { signal: AbortSignal.timeout(1000) });
        return r.ok ? await r.json() : null;
      } catch {
        return null; // not up yet
      }
    }, 15000, "the node to start");
    st.scheduler = st.info.Node["Acc-Id"];
    st.module = st.info["Default-Module"];
    assert.match(st.module ?? "", /^[A-Za-z0-9_-]{43}$/, `GET /info has a Default-Module: ${JSON.stringify(st.info)}`);

    ao = connect({ MODE: "legacy", MU_URL: url, CU_URL: url, GATEWAY_URL: url });
    st.jwk = await Arweave.init({}).wallets.generate();
    st.address = await Arweave.init({}).wallets.jwkToAddress(st.jwk);
    st.signer = createDataItemSigner(st.jwk);
  });

  after(async () => {
    if (!proc || exited) return;
    const done = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await done;
    clearTimeout(t);
  });

  const graphql = async (query, variables) => {
    const r = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(5000),
    });
    return { status: r.status, body: await r.json() };
  };
  const nonce = async (pid) => Number(await (await fetch(`${url}/nonce/${pid}`)).text());
  const tagsOf = (node) => Object.fromEntries(node.tags.map((t) => [t.name, t.value]));
  const spawnNamed = (name) => ao.spawn({
    module: st.module, scheduler: st.scheduler, signer: st.signer, tags: [{ name: "Name", value: name }],
  });
  // message() then result(): the result of one message.
  async function send(pid, tags, data, signer = st.signer) {
    const id = await ao.message({ process: pid, signer, tags, data });
    assert.match(id, /^[A-Za-z0-9_-]{43}$/);
    return { id, result: await ao.result({ message: id, process: pid }) };
  }
  const evalIn = (pid, code, signer) => send(pid, [{ name: "Action", value: "Eval" }], code, signer);

  test("graphql: the default module's tags are what aoconnect's spawn() checks", async () => {
    const r = await graphql(MODULE_QUERY, { transactionIds: [st.module] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const edges = r.body.data.transactions.edges;
    assert.equal(edges.length, 1);
    const tags = tagsOf(edges[0].node);
    assert.equal(tags["Data-Protocol"], "ao");
    assert.equal(tags.Type, "Module");
    assert.equal(tags["Module-Format"], "vmnode.lua.ao.v1");
    assert.ok(tags["Input-Encoding"] && tags["Output-Encoding"], JSON.stringify(tags));
    assert.equal(edges[0].node.owner.address, st.scheduler, "the node signed its built-in module");
    assert.equal(typeof edges[0].node.block.timestamp, "number");
  });

  test("spawn() on the default module", async () => {
    st.pid = await spawnNamed("interop-calc");
    assert.match(st.pid, /^[A-Za-z0-9_-]{43}$/);
    const item = await (await fetch(`${url}/message/${st.pid}`)).json();
    const tags = tagsOf(item);
    assert.equal(tags.Type, "Process");
    assert.equal(tags.Module, st.module);
    assert.equal(tags.Scheduler, st.scheduler);
    assert.equal(tags.SDK, "aoconnect");
    assert.equal(item.signatureType, 1, "createDataItemSigner(jwk) signs RSA-PSS items");
    assert.equal(await nonce(st.pid), 0);
  });

  test("graphql: aos finds the process by owner + Name", async () => {
    assert.ok(st.pid);
    let r = await graphql(aosProcessQuery("interop-calc"), { owners: [st.address, ""] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.data.transactions.edges.map((e) => e.node.id), [st.pid]);
    assert.equal(tagsOf(r.body.data.transactions.edges[0].node).Variant, "ao.TN.1");
    r = await graphql(aosProcessQuery("no-such-name"), { owners: [st.address] });
    assert.deepEqual(r.body.data.transactions.edges, []);
    r = await graphql(aosProcessQuery("interop-calc"), { owners: [await Arweave.init({}).wallets.jwkToAddress(STRANGER_JWK)] });
    assert.deepEqual(r.body.data.transactions.edges, [], "another owner's processes are not listed");
  });

  test("Eval 1 + 1 → Output.data is \"2\"", async () => {
    assert.ok(st.pid);
    const { result } = await evalIn(st.pid, "1 + 1");
    assert.equal(result.Error ?? null, null, JSON.stringify(result));
    assert.equal(result.Output?.data, "2", JSON.stringify(result));
    assert.equal(await nonce(st.pid), 1);
  });

  test("a handler added by Eval answers a message: print and msg.reply", async () => {
    assert.ok(st.pid);
    const add = await evalIn(st.pid,
      'Handlers.add("Ping", "Ping", function(msg) print("got ping: " .. msg.Data); msg.reply({Data = "pong"}) end)');
    assert.equal(add.result.Error ?? null, null, JSON.stringify(add.result));
    const { result } = await send(st.pid, [{ name: "Action", value: "Ping" }], "hello");
    assert.equal(result.Error ?? null, null, JSON.stringify(result));
    assert.equal(result.Output?.data, "got ping: hello");
    assert.equal(result.Output?.print, true);
    assert.equal(result.Messages.length, 1, JSON.stringify(result.Messages));
    assert.equal(result.Messages[0].Data, "pong");
    assert.equal(result.Messages[0].Target, st.address, "the reply goes to the sender");
  });

  test("dryrun() runs the handler on the current state and stores nothing", async () => {
    assert.ok(st.pid);
    const before = await nonce(st.pid);
    const page = await ao.results({ process: st.pid, sort: "DESC", limit: 1 });
    const result = await ao.dryrun({ process: st.pid, tags: [{ name: "Action", value: "Ping" }], data: "dry" });
    assert.equal(result.Error ?? null, null, JSON.stringify(result));
    assert.equal(result.Output?.data, "got ping: dry");
    assert.equal(result.Messages[0]?.Data, "pong");
    assert.equal(await nonce(st.pid), before, "no nonce taken");
    const again = await ao.results({ process: st.pid, sort: "DESC", limit: 1 });
    assert.equal(again.edges[0].cursor, page.edges[0].cursor, "no result stored");
    // State is untouched too: a dry-run Eval by the owner leaves nothing behind.
    const dry = await ao.dryrun({ process: st.pid, tags: [{ name: "Action", value: "Eval" }], data: "Dry = 1; return Dry + 1", Owner: st.address });
    assert.equal(dry.Output?.data, "2", JSON.stringify(dry));
    const { result: check } = await evalIn(st.pid, "Dry == nil");
    assert.equal(check.Output?.data, "true", JSON.stringify(check));
  });

  test("an Eval error is reported in Error", async () => {
    assert.ok(st.pid);
    const { result } = await evalIn(st.pid, 'error("boom")');
    assert.match(String(result.Error), /boom/, JSON.stringify(result));
  });

  test("Eval by someone else than the owner is refused", async () => {
    assert.ok(st.pid);
    const { result } = await evalIn(st.pid, "Stolen = true", createDataItemSigner(STRANGER_JWK));
    assert.match(String(result.Error), /Eval refused/, JSON.stringify(result));
    const { result: check } = await evalIn(st.pid, "Stolen == nil");
    assert.equal(check.Output?.data, "true", JSON.stringify(check));
  });

  test("two processes: Send(...).receive() in one, msg.reply in the other, through the node's outbox", async () => {
    assert.ok(st.pid);
    const b = await spawnNamed("interop-kicker");
    const add = await evalIn(b, `Handlers.add("Kick", "Kick", function(msg)
        local r = Send({Target = "${st.pid}", Action = "Ping", Data = "from B"}).receive()
        print("reply: " .. r.Data .. " from " .. r.From)
      end)`);
    assert.equal(add.result.Error ?? null, null, JSON.stringify(add.result));
    const { result } = await send(b, [{ name: "Action", value: "Kick" }]);
    assert.equal(result.Error ?? null, null, JSON.stringify(result));
    assert.equal(result.Messages[0]?.Target, st.pid, "B's Send is in its result");
    // The node delivers B's message to A, A's reply to B; B's handler resumes there.
    const hit = await eventually(async () => {
      const page = await ao.results({ process: b, sort: "DESC", limit: 5 });
      return page.edges.find((e) => String(e.node.Output?.data ?? "").startsWith("reply:"));
    }, 15000, "B's handler to get A's reply");
    assert.equal(hit.node.Output.data, `reply: pong from ${st.pid}`);
    const a = await ao.results({ process: st.pid, sort: "DESC", limit: 5 });
    assert.ok(a.edges.some((e) => e.node.Output?.data === "got ping: from B"), JSON.stringify(a));
  });

  test("results(): cursors are standard base64 of JSON; from pages forward", async () => {
    assert.ok(st.pid);
    const page = await ao.results({ process: st.pid, limit: 2 });
    assert.equal(page.edges.length, 2);
    const ordinals = page.edges.map((e) => {
      assert.match(e.cursor, /^[A-Za-z0-9+/]+={0,2}$/, "standard base64 alphabet with padding");
      const c = JSON.parse(Buffer.from(e.cursor, "base64").toString("utf8"));
      assert.equal(typeof c.timestamp, "number");
      assert.equal(c.sort, "ASC");
      return Number(c.ordinate);
    });
    assert.deepEqual(ordinals, [0, 1]);
    assert.equal(page.edges[1].node.Output?.data, "2", "nonce 1 is the first Eval");
    const next = await ao.results({ process: st.pid, from: page.edges[1].cursor, limit: 1 });
    const c = JSON.parse(Buffer.from(next.edges[0].cursor, "base64").toString("utf8"));
    assert.equal(Number(c.ordinate), 2);
    const last = await ao.results({ process: st.pid, sort: "DESC", limit: 1 });
    const lc = JSON.parse(Buffer.from(last.edges[0].cursor, "base64").toString("utf8"));
    assert.equal(Number(lc.ordinate), await nonce(st.pid));
    assert.equal(lc.sort, "DESC");
  });

  test("spawn() checks the module through the gateway: a hymx module and an unknown id are refused", async () => {
    const out = spawnSync(VMNODE, ["module", "create", "--format", "vmnode.echo.v1", "--tag", "Input-Encoding=JSON-1",
      "--tag", "Output-Encoding=JSON-1", "--post", "--node", url, "-o", path.join(TMP, "mod")],
    { env: ENV, encoding: "utf8", timeout: 20000 });
    assert.equal(out.status, 0, out.stderr);
    const hymxModule = fs.readdirSync(path.join(TMP, "mod"))[0].replace(/^mod-|\.json$/g, "");
    await assert.rejects(
      ao.spawn({ module: hymxModule, scheduler: st.scheduler, signer: st.signer }),
      /Data-Protocol/, "Data-Protocol=hymx is not an ao module for aoconnect");
    await assert.rejects(ao.spawn({ module: "A".repeat(43), scheduler: st.scheduler, signer: st.signer }));
  });

  test("spawn() of an ao module on the echo VM; its process answers message()", async () => {
    const mod = createData("echo module", new ArweaveSigner(st.jwk), {
      tags: [{ name: "Data-Protocol", value: "ao" }, { name: "Variant", value: "ao.TN.1" },
        { name: "Type", value: "Module" }, { name: "Module-Format", value: "vmnode.echo.v1" },
        { name: "Input-Encoding", value: "JSON-1" }, { name: "Output-Encoding", value: "JSON-1" }],
    });
    await mod.sign(new ArweaveSigner(st.jwk));
    const r = await fetch(`${url}/`, { method: "POST", body: mod.getRaw(), headers: { "Content-Type": "application/octet-stream" } });
    assert.equal(r.status, 200, await r.text());
    const pid = await ao.spawn({ module: mod.id, scheduler: st.scheduler, signer: st.signer });
    const { result } = await send(pid, [{ name: "Action", value: "Echo" }], "hi echo");
    assert.equal(result.Output?.echo, "hi echo", JSON.stringify(result));
  });

  test("graphql: what the node does not serve is a 400 with errors[].message", async () => {
    for (const q of ["{ transactions(first: 5) { edges { node { id } } } }", "{ blocks { edges { node { id } } } }",
      "{ transactions(ids: [\"x\"] { edges } }", "mutation { x }"]) {
      const r = await graphql(q);
      assert.equal(r.status, 400, q);
      assert.equal(typeof r.body.errors?.[0]?.message, "string", JSON.stringify(r.body));
    }
  });
});
