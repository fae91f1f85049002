// README.md as a newcomer runs it after `make dev`: every marked shell and console block in
// order against the built worker seeded as `make dev` seeds it (tests/readme/examples.mjs), one
// test per block; the figures it quotes measured on this build; and proof that a broken example
// fails, saying what to do: an expected output changed, a variable left unset, a block left
// unmarked, an error answer not marked as intended.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { startGateway, ROOT, ADMIN_TOKEN, MASTER_KEY } from "../harness.mjs";
import { extract, markerProblem, Session, runAll, figures, checkFigures } from "../readme/examples.mjs";

const README = readFileSync(path.join(ROOT, "README.md"), "utf8");

/** A port nothing listens on now, for the listener `make listen` starts (bound again at once). */
async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** A gateway seeded as `make dev` seeds it, its demo destination at a free LISTEN_PORT. */
async function devGateway() {
  const listenPort = await freePort();
  const gw = await startGateway({ seedEnv: { LISTEN_PORT: String(listenPort) } });
  return { gw, options: { root: ROOT, gatewayUrl: gw.url.href, listenPort, adminToken: ADMIN_TOKEN, masterKey: MASTER_KEY } };
}

describe("README.md runs as written", () => {
  const { blocks, figures: quoted } = extract(README);
  let gw, session, failedAt = null;
  before(async () => {
    const dev = await devGateway();
    gw = dev.gw;
    session = new Session(dev.options);
  });
  after(async () => {
    await session?.close();
    await gw?.stop();
  });

  for (const block of blocks.filter((b) => b.kind !== null || markerProblem(b))) {
    test(`README.md:${block.line} ${block.kind ?? "unmarked"} ${block.arg}`.trim(), async (t) => {
      if (block.kind === "skip") return t.skip(block.arg);
      const problem = markerProblem(block);
      assert.equal(problem, null, `README.md:${block.line}: ${problem}`);
      // Later blocks build on earlier ones, as in one terminal: after a failure they cannot say much
      // (README_KEEP_GOING=1 runs them anyway, to see every failure at once).
      if (failedAt && !process.env.README_KEEP_GOING) return t.skip(`after the failure at README.md:${failedAt}`);
      try {
        await session.run(block);
      } catch (e) {
        failedAt = block.line;
        throw e;
      }
    });
  }

  test("the figures the README quotes are this build's", async () => {
    assert.ok(quoted.length >= 3, "the console's and the widget's size and the template count are measured");
    checkFigures("README.md", quoted, await figures(gw.url, path.join(ROOT, "console")));
  });
});

describe("a broken README example fails, naming its line", () => {
  let gw, options;
  before(async () => ({ gw, options } = await devGateway()));
  after(async () => gw?.stop());

  /** The line (1-based) of the first line of `text` that `pred` accepts. */
  const lineOf = (text, pred) => text.split("\n").findIndex(pred) + 1;

  test("a shell block without a marker", async () => {
    const lines = README.split("\n");
    const marker = lines.findIndex((l, i) => l === "<!-- example: run -->" && lines[i + 1] === "```sh");
    assert.ok(marker >= 0);
    const broken = [...lines.slice(0, marker), ...lines.slice(marker + 1)].join("\n");
    // Refused before anything runs: the fence is now on the marker's line.
    await assert.rejects(runAll(broken, options), (e) => {
      assert.match(e.message, new RegExp(`^README\\.md:${marker + 1}: a \`\`\`sh block without an .*the marker grammar is at the top of tests/readme/examples\\.mjs`, "m"));
      return true;
    });
  });

  test("a variable the README never sets", async () => {
    const setter = /^export ADMIN=\$\(grep ADMIN_TOKEN \.dev\.vars \| cut -d= -f2\)$/;
    assert.ok(README.split("\n").some((l) => setter.test(l)), "the README sets ADMIN once");
    const broken = README.split("\n").filter((l) => !setter.test(l)).join("\n");
    // The first runnable block that uses it fails (bash's `set -u`, or the admin API's 401).
    const { blocks } = extract(broken);
    const user = blocks.find((b) => b.kind === "run" && b.body.some((l) => l.text.includes("$ADMIN")));
    await assert.rejects(runAll(broken, options), (e) => {
      assert.match(e.message, new RegExp(`^README\\.md:${user.line}: the block exited`), e.message);
      assert.match(e.message, /ADMIN: unbound variable|401/, e.message);
      return true;
    });
  });

  test("an error answer the example does not mark as intended, with what to do", async () => {
    const lines = README.split("\n");
    const at = lines.findIndex((l) => l.trim() === "<!-- example: run allow-4xx -->");
    assert.ok(at >= 0, "the README shows one error answer on purpose");
    lines[at] = lines[at].replace(" allow-4xx", "");
    const command = lines.findIndex((l, i) => i > at && l.trim().startsWith("$ ")) + 1;
    await assert.rejects(runAll(lines.join("\n"), options), (e) => {
      assert.match(e.message, new RegExp(`^README\\.md:${command}: \`.*\` exited 22 \\(curl's exit for an HTTP status >= 400: .*\`<!-- example: run allow-4xx -->\`\\)`), e.message);
      return true;
    });
  });

  test("no gatewayctl to run the examples with", () => {
    assert.throws(() => new Session({ ...options, root: "/nonexistent" }), /run `cargo build --bin gatewayctl` first/);
  });

  test("an expected output the commands no longer print", async () => {
    const at = lineOf(README, (l) => l.includes('"received":1'));
    assert.ok(at > 0, 'the walk-through shows the sample\'s answer with "received":1');
    const lines = README.split("\n");
    lines[at - 1] = lines[at - 1].replace('"received":1', '"received":2');
    // The command is the line above its output; the diff shows both.
    await assert.rejects(runAll(lines.join("\n"), options), (e) => {
      assert.match(e.message, new RegExp(`^README\\.md:${at - 1}: \`.*\` printed other than the README says`), e.message);
      assert.match(e.message, /^- .*"received":2/m, e.message);
      assert.match(e.message, /^\+ .*"received":1/m, e.message);
      assert.match(e.message, /copy the `\+` lines into the README/, e.message);
      return true;
    });
  });
});
