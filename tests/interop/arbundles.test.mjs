// Interop between vmnode and the arbundles / arweave npm clients:
// items signed by `vmnode item sign` must verify and read the same in
// arbundles 0.11.2, items signed by arbundles must pass `vmnode item verify`,
// and a real `vmnode serve` on loopback must take arbundles items over HTTP.
//
// Environment: BUILD (build dir holding vmnode, default "build", relative to
// the repo root), VN_SHARED (shared dir with vectors/, default ../shared
// relative to the repo root).
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import {
  DataItem,
  createData,
  EthereumSigner,
  ArweaveSigner,
  serializeTags,
  keccak256,
} from "arbundles";
import Arweave from "arweave";
import { freePort, sleep } from "./lib.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");
const BUILD = path.resolve(REPO, process.env.BUILD || "build");
const VMNODE = path.join(BUILD, "vmnode");
const SHARED = path.resolve(REPO, process.env.VN_SHARED || path.join("..", "shared"));
const KEYS = JSON.parse(fs.readFileSync(path.join(SHARED, "vectors", "ans104", "keys.json"), "utf8"));

const ETH1 = KEYS.secp256k1.find((k) => k.name === "eth_key_1");
const RSA1 = KEYS.arweave.find((k) => k.name === "arweave_jwk_1");
assert.ok(ETH1 && RSA1, "keys.json holds eth_key_1 and arweave_jwk_1");

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "vmnode-interop-"));
// The CLI writes its default wallet under XDG_CONFIG_HOME: keep it out of ~.
const ENV = { ...process.env, XDG_CONFIG_HOME: path.join(TMP, "xdg") };
let seq = 0;
const tmpfile = (name) => path.join(TMP, `${++seq}-${name}`);

const b64u = (buf) => Buffer.from(buf).toString("base64url");
const fromB64u = (s) => Buffer.from(s, "base64url");

// vmnode CLI: run synchronously, return {status, stdout, stderr}.
function vm(...args) {
  const r = spawnSync(VMNODE, args, { env: ENV, encoding: "utf8", timeout: 20000 });
  if (r.error) throw r.error;
  return r;
}
function vmOk(...args) {
  const r = vm(...args);
  assert.equal(r.status, 0, `vmnode ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}
// vmnode item verify --json FILE... → {status, reports[]}
function vmVerify(...files) {
  const r = vm("item", "verify", "--json", ...files);
  const reports = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  return { status: r.status, reports };
}
const vmShow = (file) => JSON.parse(vmOk("item", "show", file));

// EIP-55 address of an uncompressed secp256k1 owner (0x04||X||Y), computed
// here with arbundles' keccak256, independently of vmnode.
function ethAddress(owner) {
  assert.equal(owner.length, 65);
  assert.equal(owner[0], 4);
  const hex = keccak256(owner.subarray(1)).subarray(-20).toString("hex");
  const h = keccak256(Buffer.from(hex, "ascii")).toString("hex");
  let out = "0x";
  for (let i = 0; i < 40; i++) out += parseInt(h[i], 16) >= 8 ? hex[i].toUpperCase() : hex[i];
  return out;
}

const arweave = Arweave.init({});
const rsaJwkFile = path.join(TMP, "arweave_jwk_1.json");
fs.writeFileSync(rsaJwkFile, JSON.stringify(RSA1.jwk));

// Tags used by the signing tests: ASCII, unicode names and values, an empty
// value, a value holding '=' and a long one.
const TAGS = [
  { name: "Content-Type", value: "application/octet-stream" },
  { name: "App-Name", value: "vmnode-interop" },
  { name: "Ünïcødé-名前", value: "値 ✓ — ăâî 🚀" },
  { name: "Empty", value: "" },
  { name: "Eq", value: "a=b=c" },
  { name: "Long", value: "x".repeat(300) },
];
const tagArgs = (tags) => tags.flatMap((t) => ["--tag", `${t.name}=${t.value}`]);

// Rebuild the ANS-104 binary from the JSON form (vectors/hymx/README.md rule).
function binaryFromJson(j) {
  const u16 = Buffer.alloc(2);
  u16.writeUInt16LE(j.signatureType);
  const u64 = (n) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  const target = fromB64u(j.target || "");
  const anchor = fromB64u(j.anchor || "");
  const tagsBy = fromB64u(j.tagsBy || "");
  return Buffer.concat([
    u16,
    fromB64u(j.signature),
    fromB64u(j.owner),
    target.length ? Buffer.concat([Buffer.from([1]), target]) : Buffer.from([0]),
    anchor.length ? Buffer.concat([Buffer.from([1]), anchor]) : Buffer.from([0]),
    u64(j.tags.length),
    u64(tagsBy.length),
    tagsBy,
    fromB64u(j.data || ""),
  ]);
}

// Compare what arbundles reads from a binary with `vmnode item show`.
function assertSameView(item, shown) {
  assert.equal(item.id, shown.id, "id");
  assert.equal(item.signatureType, shown.signatureType, "signatureType");
  assert.equal(item.signature, shown.signature, "signature");
  assert.equal(item.owner, shown.owner, "owner");
  assert.equal(item.target, shown.target, "target");
  assert.equal(item.anchor, shown.anchor, "anchor");
  assert.deepEqual(item.tags, shown.tags, "tags");
  assert.equal(b64u(item.rawTags), shown.tagsBy, "raw tag bytes");
  assert.equal(item.data, shown.data, "data");
}

// VN_KEEP_TMP=1 keeps the temp dir (node log, signed items) for a look.
after(() => {
  if (process.env.VN_KEEP_TMP) console.log(`# interop temp dir kept: ${TMP}`);
  else fs.rmSync(TMP, { recursive: true, force: true });
});

describe("vmnode-signed items read in arbundles", () => {
  test("type 3 (eth_key_1) with target, anchor, unicode tags, binary data", async () => {
    const target = b64u(randomBytes(32));
    const anchor = b64u(randomBytes(32));
    const data = randomBytes(4096);
    data[0] = 0; // make sure NUL bytes travel
    data[1] = 0xff;
    const dataFile = tmpfile("data.bin");
    fs.writeFileSync(dataFile, data);
    const out = tmpfile("eth.bin");
    const printedId = vmOk("item", "sign", "--prvkey", ETH1.private_key_hex, "--target", target,
      "--anchor", anchor, ...tagArgs(TAGS), "--data-file", dataFile, "-o", out).trim();

    const buf = fs.readFileSync(out);
    assert.equal(await DataItem.verify(buf), true, "DataItem.verify");
    const item = new DataItem(buf);
    assert.equal(await item.isValid(), true, "isValid");
    assert.equal(item.signatureType, 3);
    assert.equal(item.id, printedId, "id printed by item sign");
    assert.equal(item.rawOwner.toString("hex"), ETH1.public_key_hex.replace(/^0x/, ""), "owner = eth_key_1 public key");
    assert.equal(item.target, target);
    assert.equal(item.anchor, anchor);
    assert.deepEqual(item.tags, TAGS);
    assert.deepEqual(item.rawData, data);
    assert.deepEqual(item.rawTags, serializeTags(TAGS), "Avro tag bytes equal arbundles' own encoding");

    const shown = vmShow(out);
    assertSameView(item, shown);
    assert.equal(shown.ownerAddress, ETH1.address, "vmnode address = keys.json address");
    assert.equal(ethAddress(item.rawOwner), shown.ownerAddress, "vmnode address = EIP-55 of arbundles owner");
    assert.equal(shown.valid, true);
  });

  test("type 3 with no target, no anchor, no tags, empty data", async () => {
    const out = tmpfile("eth-empty.bin");
    const id = vmOk("item", "sign", "--prvkey", ETH1.private_key_hex, "--data", "", "-o", out).trim();
    const buf = fs.readFileSync(out);
    assert.equal(await DataItem.verify(buf), true);
    const item = new DataItem(buf);
    assert.equal(item.id, id);
    assert.equal(item.target, "");
    assert.equal(item.anchor, "");
    assert.deepEqual(item.tags, []);
    assert.equal(item.rawData.length, 0);
    assertSameView(item, vmShow(out));
  });

  test("type 1 (arweave_jwk_1 via --keyfile) verifies in arbundles", async () => {
    const target = b64u(randomBytes(32));
    const anchor = b64u(randomBytes(32));
    const out = tmpfile("rsa.bin");
    const id = vmOk("item", "sign", "--keyfile", rsaJwkFile, "--target", target, "--anchor", anchor,
      ...tagArgs(TAGS), "--data", "signed by vmnode with RSA-PSS ✓", "-o", out).trim();
    const buf = fs.readFileSync(out);
    assert.equal(await DataItem.verify(buf), true, "DataItem.verify");
    const item = new DataItem(buf);
    assert.equal(await item.isValid(), true);
    assert.equal(item.signatureType, 1);
    assert.equal(item.id, id);
    assert.equal(item.owner, RSA1.jwk.n, "owner = JWK modulus");
    assert.equal(item.target, target);
    assert.equal(item.anchor, anchor);
    assert.deepEqual(item.tags, TAGS);
    assert.equal(item.rawData.toString("utf8"), "signed by vmnode with RSA-PSS ✓");
    const shown = vmShow(out);
    assertSameView(item, shown);
    assert.equal(shown.ownerAddress, RSA1.address);
    assert.equal(await arweave.wallets.ownerToAddress(item.owner), shown.ownerAddress, "arweave-js address");
    assert.equal(await arweave.wallets.jwkToAddress(RSA1.jwk), shown.ownerAddress);
  });

  test("a vmnode item with a flipped signature bit fails in arbundles", async () => {
    const out = tmpfile("eth-flip.bin");
    vmOk("item", "sign", "--prvkey", ETH1.private_key_hex, "--tag", "A=b", "--data", "x", "-o", out);
    const buf = fs.readFileSync(out);
    assert.equal(await DataItem.verify(buf), true);
    buf[2 + 10] ^= 1;
    assert.equal(await DataItem.verify(buf), false);
  });
});

describe("JSON form (item sign --json)", () => {
  test("type 3: JSON and binary give the same id; vmnode verify accepts the JSON; rebuilt binary equals it", async () => {
    const anchor = b64u(randomBytes(32));
    const target = b64u(randomBytes(32));
    const data = randomBytes(200);
    const dataFile = tmpfile("json-data.bin");
    fs.writeFileSync(dataFile, data);
    const common = ["--prvkey", ETH1.private_key_hex, "--target", target, "--anchor", anchor,
      ...tagArgs(TAGS), "--data-file", dataFile];
    const binFile = tmpfile("j.bin");
    const jsonFile = tmpfile("j.json");
    const binId = vmOk("item", "sign", ...common, "-o", binFile).trim();
    const jsonId = vmOk("item", "sign", ...common, "-o", jsonFile, "--json").trim();
    assert.equal(jsonId, binId, "type-3 signing is deterministic: same id for both forms");

    const j = JSON.parse(fs.readFileSync(jsonFile, "utf8"));
    assert.equal(j.id, binId);
    assert.equal(j.signatureType, 3);
    assert.deepEqual(j.tags, TAGS);
    assert.equal(j.target, target);
    assert.equal(j.anchor, anchor);
    assert.deepEqual(fromB64u(j.data), data);
    assert.deepEqual(fromB64u(j.tagsBy), serializeTags(TAGS), "tagsBy = Avro of tags");

    const v = vmVerify(jsonFile, binFile);
    assert.equal(v.status, 0, JSON.stringify(v.reports));
    assert.equal(v.reports.length, 2);
    for (const r of v.reports) {
      assert.equal(r.valid, true);
      assert.equal(r.id, binId);
      assert.equal(r.owner, ETH1.address);
    }

    const rebuilt = binaryFromJson(j);
    assert.deepEqual(rebuilt, fs.readFileSync(binFile), "JSON → binary reproduces the binary byte for byte");
    assert.equal(await DataItem.verify(rebuilt), true);
    assert.equal(new DataItem(rebuilt).id, binId);
  });

  test("type 1: JSON form rebuilt to binary verifies in arbundles", async () => {
    const jsonFile = tmpfile("rsa.json");
    const id = vmOk("item", "sign", "--keyfile", rsaJwkFile, ...tagArgs(TAGS), "--data", "json rsa",
      "-o", jsonFile, "--json").trim();
    const j = JSON.parse(fs.readFileSync(jsonFile, "utf8"));
    assert.equal(j.id, id);
    const v = vmVerify(jsonFile);
    assert.equal(v.status, 0);
    assert.equal(v.reports[0].valid, true);
    assert.equal(v.reports[0].id, id);
    const rebuilt = binaryFromJson(j);
    assert.equal(await DataItem.verify(rebuilt), true);
    assert.equal(new DataItem(rebuilt).id, id);
  });

  test("an arbundles item turned into the JSON form passes vmnode verify", async () => {
    const signer = new EthereumSigner(ETH1.private_key_hex);
    const item = createData("to json", signer, { tags: TAGS, target: b64u(randomBytes(32)) });
    await item.sign(signer);
    const j = {
      signatureType: item.signatureType, signature: item.signature, owner: item.owner,
      target: item.target, anchor: item.anchor, tags: item.tags, data: item.data,
      id: item.id, tagsBy: b64u(item.rawTags),
    };
    const f = tmpfile("ab.json");
    fs.writeFileSync(f, JSON.stringify(j));
    const v = vmVerify(f);
    assert.equal(v.status, 0, JSON.stringify(v.reports));
    assert.equal(v.reports[0].valid, true);
    assert.equal(v.reports[0].id, item.id);
  });
});

describe("arbundles-signed items pass vmnode item verify", () => {
  const signers = {
    ethereum: () => ({ signer: new EthereumSigner(ETH1.private_key_hex), address: ETH1.address, type: 3 }),
    "ethereum (key without 0x)": () => ({
      signer: new EthereumSigner(ETH1.private_key_hex.replace(/^0x/, "")), address: ETH1.address, type: 3,
    }),
    arweave: () => ({ signer: new ArweaveSigner(RSA1.jwk), address: RSA1.address, type: 1 }),
  };
  for (const [name, mk] of Object.entries(signers)) {
    test(`${name}: valid with the same id; bit flips → invalid_signature`, async () => {
      const { signer, address, type } = mk();
      const target = b64u(randomBytes(32));
      const anchor = "anchor-is-32-ascii-bytes-0123456"; // createData stores the UTF-8 bytes
      assert.equal(anchor.length, 32);
      const data = randomBytes(1000);
      const item = createData(data, signer, { target, anchor, tags: TAGS });
      await item.sign(signer);
      assert.equal(await item.isValid(), true);
      const raw = Buffer.from(item.getRaw());
      const f = tmpfile(`ab-${type}.bin`);
      fs.writeFileSync(f, raw);

      const v = vmVerify(f);
      assert.equal(v.status, 0, JSON.stringify(v.reports));
      assert.equal(v.reports.length, 1);
      assert.equal(v.reports[0].valid, true);
      assert.equal(v.reports[0].id, item.id);
      assert.equal(v.reports[0].owner, address);
      assert.equal(v.reports[0].signatureType, type);

      const shown = vmShow(f);
      assertSameView(item, shown);
      assert.equal(fromB64u(shown.anchor).toString("utf8"), anchor);

      // Signature bit flipped (changes the id too).
      const sigFlip = Buffer.from(raw);
      sigFlip[2 + 10] ^= 0x01;
      const fs1 = tmpfile(`ab-${type}-sigflip.bin`);
      fs.writeFileSync(fs1, sigFlip);
      // Data bit flipped (same id, the signature no longer covers the bytes).
      const dataFlip = Buffer.from(raw);
      dataFlip[raw.length - 17] ^= 0x80;
      const fs2 = tmpfile(`ab-${type}-dataflip.bin`);
      fs.writeFileSync(fs2, dataFlip);
      assert.equal(await DataItem.verify(sigFlip), false);
      assert.equal(await DataItem.verify(dataFlip), false);

      const bad = vmVerify(fs1, f, fs2);
      assert.equal(bad.status, 1, "exit 1 when any file is invalid");
      assert.equal(bad.reports.length, 3);
      assert.equal(bad.reports[0].valid, false);
      assert.equal(bad.reports[0].error, "invalid_signature", JSON.stringify(bad.reports[0]));
      assert.equal(bad.reports[1].valid, true);
      assert.equal(bad.reports[2].valid, false);
      assert.equal(bad.reports[2].error, "invalid_signature", JSON.stringify(bad.reports[2]));
    });
  }

  test("the shared ans104 vectors: arbundles and vmnode agree on every valid and invalid item", async () => {
    const dir = path.join(SHARED, "vectors", "ans104");
    const index = JSON.parse(fs.readFileSync(path.join(dir, "index.json"), "utf8"));
    const files = index.map((e) => path.join(dir, e.file));
    const v = vmVerify(...files);
    assert.equal(v.reports.length, index.length);
    for (let i = 0; i < index.length; i++) {
      const e = index[i];
      const ab = await DataItem.verify(fs.readFileSync(files[i])).catch(() => false);
      assert.equal(ab, e.valid, `arbundles on ${e.file}`);
      assert.equal(v.reports[i].valid, e.valid, `vmnode on ${e.file}: ${JSON.stringify(v.reports[i])}`);
      if (e.valid) assert.equal(v.reports[i].id, e.id, e.file);
    }
  });
});

// ---------------------------------------------------------------------------
// A real node on loopback.


describe("a vmnode serve on loopback takes arbundles items", { timeout: 45000 }, () => {
  let proc;
  let url;
  let logFile;
  let accId;
  let exited = false;

  before(async () => {
    const dataDir = path.join(TMP, "node-data");
    logFile = path.join(TMP, "node.log");
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const log = fs.openSync(logFile, "a");
    proc = spawn(VMNODE, ["serve", "--data-dir", dataDir, "--port", `127.0.0.1:${port}`],
      { env: ENV, cwd: TMP, stdio: ["ignore", log, log] });
    fs.closeSync(log);
    proc.on("exit", () => { exited = true; });
    for (let i = 0; i < 200; i++) {
      if (exited) break;
      try {
        const r = await fetch(`${url}/info`, { signal: AbortSignal.timeout(1000) });
        if (r.ok) {
          accId = (await r.json()).Node["Acc-Id"];
          return;
        }
      } catch {
        /* not up yet */
      }
      await sleep(50);
    }
    throw new Error(`node did not start:\n${fs.readFileSync(logFile, "utf8").slice(-2000)}`);
  });

  after(async () => {
    if (!proc || exited) return;
    const done = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await done;
    clearTimeout(t);
  });

  async function post(raw) {
    const r = await fetch(`${url}/`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: raw,
      signal: AbortSignal.timeout(10000),
    });
    const text = await r.text();
    let body;
    try { body = JSON.parse(text); } catch { body = text; }
    return { status: r.status, body };
  }
  async function signed(signer, data, opts) {
    const item = createData(data, signer, opts);
    await item.sign(signer);
    assert.equal(await item.isValid(), true);
    return item;
  }
  const base = [{ name: "Data-Protocol", value: "ao" }, { name: "Variant", value: "ao.TN.1" }];

  const st = {}; // shared by the steps below, which run in order
  const getJson = async (p, ms = 5000) => {
    const r = await fetch(`${url}${p}`, { signal: AbortSignal.timeout(ms) });
    const text = await r.text();
    let body;
    try { body = JSON.parse(text); } catch { body = text; }
    return { status: r.status, body };
  };

  test("POST Module (Ethereum signer) and Process → 200 with the arbundles ids", async () => {
    assert.match(accId, /^0x[0-9a-fA-F]{40}$/);
    st.eth = new EthereumSigner(ETH1.private_key_hex);
    st.rsa = new ArweaveSigner(RSA1.jwk);
    const mod = await signed(st.eth, "vmnode interop echo module", {
      tags: [...base, { name: "Type", value: "Module" }, { name: "Module-Format", value: "vmnode.echo.v1" },
        { name: "Input-Encoding", value: "JSON-1" }, { name: "Output-Encoding", value: "JSON-1" }],
    });
    let r = await post(mod.getRaw());
    assert.equal(r.status, 200, `POST module: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.id, mod.id);

    const spawnItem = await signed(st.eth, "", {
      tags: [...base, { name: "Type", value: "Process" }, { name: "Module", value: mod.id },
        { name: "Scheduler", value: accId }, { name: "Name", value: "interop" }],
      anchor: randomBytes(16).toString("hex"),
    });
    r = await post(spawnItem.getRaw());
    assert.equal(r.status, 200, `POST process: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.id, spawnItem.id);
    st.pid = spawnItem.id;
  });

  test("POST Message (Arweave signer) → 200; /result?process-id= echoes its data", async () => {
    assert.ok(st.pid, "needs the process from the previous step");
    st.text = "hello from arbundles ✓ Ünïcødé";
    st.msg = await signed(st.rsa, st.text, {
      target: st.pid,
      tags: [...base, { name: "Type", value: "Message" }, { name: "Action", value: "Ping" }],
    });
    const r = await post(st.msg.getRaw());
    assert.equal(r.status, 200, `POST message: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.id, st.msg.id);
    const res = await getJson(`/result/${st.msg.id}?process-id=${st.pid}`, 15000);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.Output?.echo, st.text, `result: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.Nonce, 1);
    assert.equal(res.body["Item-Id"], st.msg.id);
  });

  test("a second Message (Ethereum signer, Data-Protocol=hymx) gets nonce 2", async () => {
    assert.ok(st.pid);
    const msg2 = await signed(st.eth, "second", {
      target: st.pid,
      tags: [{ name: "Data-Protocol", value: "hymx" }, { name: "Variant", value: "v0.1.0" },
        { name: "Type", value: "Message" }, { name: "Action", value: "Ping" }],
    });
    const r = await post(msg2.getRaw());
    assert.equal(r.status, 200, `POST message 2: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.id, msg2.id);
    const res = await getJson(`/result/${st.pid}/${msg2.id}`, 15000);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.Output?.echo, "second");
    assert.equal(res.body.Nonce, 2);
  });

  test("GET /message/:id of the arbundles message rebuilds to the posted bytes", async () => {
    assert.ok(st.msg);
    const res = await getJson(`/message/${st.msg.id}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const stored = res.body;
    assert.equal(stored.id, st.msg.id);
    assert.equal(stored.owner, st.msg.owner);
    assert.equal(stored.target, st.pid);
    assert.deepEqual(stored.tags, st.msg.tags);
    assert.deepEqual(binaryFromJson(stored), Buffer.from(st.msg.getRaw()));
  });

  test("the same message again → 400 duplicate_message", async () => {
    assert.ok(st.msg);
    const r = await post(st.msg.getRaw());
    assert.equal(r.status, 400, `re-POST: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, "duplicate_message");
  });

  test("the accepted message with a data bit flipped (same id) → 400 invalid_signature", async () => {
    assert.ok(st.msg);
    const dataFlip = Buffer.from(st.msg.getRaw());
    dataFlip[dataFlip.length - 1] ^= 0x01;
    const r = await post(dataFlip);
    assert.equal(r.status, 400, `data-flipped re-POST: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, "invalid_signature");
  });

  test("a new message with a signature bit flipped → 400 invalid_signature", async () => {
    assert.ok(st.pid);
    const msg3 = await signed(st.rsa, "flipped", {
      target: st.pid, tags: [...base, { name: "Type", value: "Message" }],
    });
    const sigFlip = Buffer.from(msg3.getRaw());
    sigFlip[2 + 200] ^= 0x08;
    const r = await post(sigFlip);
    assert.equal(r.status, 400, `bit-flipped: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, "invalid_signature");
  });

  test("a validly signed message with duplicate tag names → 400 duplicate_tag", async () => {
    assert.ok(st.pid);
    const dup = await signed(st.eth, "dup", {
      target: st.pid,
      tags: [...base, { name: "Type", value: "Message" }, { name: "Action", value: "A" },
        { name: "Action", value: "B" }],
    });
    const r = await post(dup.getRaw());
    assert.equal(r.status, 400, `duplicate tags: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, "duplicate_tag");
  });

  test("refused items took no nonce: /nonce is still 2", async () => {
    assert.ok(st.pid);
    const res = await getJson(`/nonce/${st.pid}`);
    assert.equal(res.status, 200);
    assert.equal(Number(res.body), 2);
  });
});
