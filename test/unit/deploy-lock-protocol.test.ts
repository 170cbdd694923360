// The deploy lock's protocol (provider/lock/protocol.ts) against its script
// (provider/lock/deploy-lock.sh), without SSH: the script runs here in a directory of its own
// standing in for /run/nixos-pulumi, and every line it prints parses, every exit code and
// stdin byte it uses is the one the protocol declares.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa, type ResultPromise } from "execa";
import { EXIT, MESSAGE_WORDS, TO_TARGET, breakTokenLine, parseLeaseRecord, parseLockLine, scriptPrelude, type LockMessage, type ScriptParams } from "../../provider/lock/protocol";
import { shellQuote } from "../../provider/util/shell-quote";

const script = readFileSync(path.resolve(__dirname, "../../../provider/lock/deploy-lock.sh"), "utf8");
const work = mkdtempSync(path.join(os.tmpdir(), "lock-protocol-"));
after(() => rmSync(work, { recursive: true, force: true }));

const params = (over: Partial<ScriptParams>): ScriptParams => ({ mode: "take", token: "m.1.a", holder: "stack a/dev, resource web1", waitSeconds: 5, leaseSeconds: 30, breakToken: "", ...over });

interface Run {
  child: ResultPromise;
  messages: LockMessage[];
  /** Resolves at the first message of `kind`. */
  until(kind: LockMessage["kind"]): Promise<void>;
}

function run(lockDir: string, p: ScriptParams, env: Record<string, string> = {}): Run {
  const child = execa("/bin/sh", ["-c", `${scriptPrelude(p, shellQuote, lockDir)}\n${script}`], { reject: false, env, stdin: "pipe", buffer: true });
  child.stdin!.write(breakTokenLine(p.breakToken));
  const messages: LockMessage[] = [];
  const waiters: Array<() => void> = [];
  let buffered = "";
  child.stdout!.on("data", (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      messages.push(parseLockLine(buffered.slice(0, nl)));
      buffered = buffered.slice(nl + 1);
      waiters.forEach((w) => w());
    }
  });
  const until = (kind: LockMessage["kind"]) =>
    new Promise<void>((resolve, reject) => {
      const check = () => messages.some((m) => m.kind === kind) && resolve();
      waiters.push(check);
      check();
      void child.then((r) => (messages.some((m) => m.kind === kind) ? resolve() : reject(new Error(`no "${kind}" before exit ${r.exitCode}: ${r.stderr}`))));
    });
  return { child, messages, until };
}

const lockDir = (name: string) => path.join(work, name);
const record = (dir: string) => parseLeaseRecord(readFileSync(path.join(dir, "deploy.lock.owner"), "utf8"));

test("take, confirm and release: the lease record names the holder, and a release leaves it with lease 0", async () => {
  const dir = lockDir("take");
  const first = run(dir, params({}));
  await first.until("locked");
  const held = record(dir)!;
  assert.equal(held.token, "m.1.a");
  assert.equal(held.holder, "stack a/dev, resource web1");
  assert.ok(held.leaseUntil > Date.now() / 1000, "the lease runs into the future");
  first.child.stdin!.write(TO_TARGET.confirm);
  await first.until("held");
  first.child.stdin!.end(TO_TARGET.release);
  const result = await first.child;
  assert.equal(result.exitCode, 0, String(result.stderr));
  assert.equal(record(dir)!.leaseUntil, 0);
  assert.deepEqual(first.messages.filter((m) => m.kind === "unknown"), []);
});

test("a second deployer is told who waits it, then refused with EXIT.refused naming the holder", async () => {
  const dir = lockDir("busy");
  const first = run(dir, params({}));
  await first.until("locked");
  const second = run(dir, params({ token: "m.2.b", holder: "stack b/prod, resource web1", waitSeconds: 1 }));
  const result = await second.child;
  first.child.stdin!.end(TO_TARGET.release);
  await first.child;
  assert.equal(result.exitCode, EXIT.refused, String(result.stderr));
  assert.deepEqual(second.messages.find((m) => m.kind === "busy"), { kind: "busy", holder: "stack a/dev, resource web1" });
  assert.deepEqual(second.messages.at(-1), { kind: "refused", holder: "stack a/dev, resource web1" });
  assert.deepEqual(second.messages.filter((m) => m.kind === "unknown"), []);
});

test("a resuming deployer that finds another's record is told it lost the machine, with EXIT.lost", async () => {
  const dir = lockDir("lost");
  const other = run(dir, params({ token: "m.3.c", holder: "stack c/dev, resource web1" }));
  await other.until("locked");
  other.child.stdin!.end(TO_TARGET.release);
  await other.child;
  const resumed = run(dir, params({ mode: "resume", token: "m.1.a" }));
  const result = await resumed.child;
  assert.equal(result.exitCode, EXIT.lost, String(result.stderr));
  const lost = resumed.messages.at(-1);
  assert.equal(lost?.kind, "lost");
  assert.ok(lost?.kind === "lost" && lost.holder === "stack c/dev, resource web1" && lost.since > 0, JSON.stringify(lost));
});

test("the script shows the lease record first and waits for the deployer's answer: a dead deployer's token, whose lock it then takes over", async () => {
  const dir = lockDir("break");
  const dead = run(dir, params({ token: "m.9.z", holder: "killed deployer" }));
  await dead.until("locked");
  const child = execa("/bin/sh", ["-c", `${scriptPrelude(params({ token: "m.1.a" }), shellQuote, dir)}\n${script}`], { reject: false, stdin: "pipe" });
  let printed = "";
  child.stdout!.on("data", (d: Buffer) => (printed += d.toString()));
  await new Promise((r) => setTimeout(r, 300));
  const shown = parseLockLine(printed.split("\n")[0]!);
  assert.ok(shown.kind === "record" && shown.record?.token === "m.9.z" && shown.record.holder.startsWith("killed deployer"), printed);
  assert.equal(printed.split("\n").length, 2, `nothing else is decided before the deployer's answer: ${printed}`);
  child.stdin!.write(breakTokenLine("m.9.z"));
  while (!printed.includes("locked\n")) await new Promise((r) => setTimeout(r, 20));
  assert.equal(record(dir)!.token, "m.1.a");
  assert.equal((await dead.child).signal, "SIGKILL", "the dead deployer's shell, still holding the flock, was ended");
  child.stdin!.end(TO_TARGET.release);
  assert.equal((await child).exitCode, 0);
});

test("a read under the lock runs once the lock is held: its lines come back after \"| \", before \"locked\"", async () => {
  const dir = lockDir("read");
  const reader = run(dir, params({ readWhenLocked: `cut -d" " -f1 "$LOCK_DIR/deploy.lock.owner"\necho "  two words"\necho "$NOT_SET|"\nprintf 'no newline'` }));
  await reader.until("locked");
  const reads = reader.messages.filter((m) => m.kind === "read").map((m) => (m.kind === "read" ? m.line : ""));
  assert.deepEqual(reads, ["m.1.a", "  two words", "|", "no newline"], "the record already named this holder; lines kept whole, an unset variable empty");
  assert.equal(reader.messages.findIndex((m) => m.kind === "locked"), reader.messages.length - 1);
  reader.child.stdin!.end(TO_TARGET.release);
  assert.equal((await reader.child).exitCode, 0);
});

test("without flock the script says so with EXIT.noFlock; a lock directory not owned by root gives EXIT.badRunDir", async () => {
  const bin = lockDir("bin");
  mkdirSync(bin);
  for (const tool of ["mkdir", "stat", "chmod"]) symlinkSync((await execa("sh", ["-c", `command -v ${tool}`])).stdout.trim(), path.join(bin, tool));
  const noFlock = run(lockDir("noflock"), params({}), { PATH: bin });
  assert.equal((await noFlock.child).exitCode, EXIT.noFlock);
  assert.deepEqual(noFlock.messages, [{ kind: "no-flock" }]);
  const planted = lockDir("planted");
  mkdirSync(planted);
  chownSync(planted, 4242, 4242);
  chmodSync(planted, 0o777);
  const refused = await run(planted, params({})).child;
  assert.equal(refused.exitCode, EXIT.badRunDir);
  assert.match(String(refused.stderr), /is not a directory owned by root/);
});

test("the script uses only the protocol's words, exit codes and stdin bytes", () => {
  const printed = [...script.matchAll(/^\s*(?:[^#\n]*[;{]\s*)?echo "([a-z-]+)/gm)].map((m) => m[1]!);
  assert.deepEqual([...new Set(printed)].filter((w) => !MESSAGE_WORDS.includes(w)), [], "every word the script prints is a LockMessage");
  const exits = [...script.matchAll(/\bexit ("?\$?[A-Z_0-9]+"?|\d+)/g)].map((m) => m[1]!.replace(/"/g, ""));
  const declared = scriptPrelude(params({}), shellQuote).split("\n").map((l) => `$${l.split("=")[0]}`);
  assert.deepEqual(exits.filter((e) => e !== "0" && !declared.includes(e)), [], "every exit code comes from the prelude's EXIT_* variables");
  const arms = [...script.matchAll(/^\s+([^\s*)]+)\) (?:now; )?write_owner/gm)].map((m) => m[1]!);
  assert.deepEqual(arms.sort(), [TO_TARGET.confirm, TO_TARGET.release].sort(), "the script reads the protocol's confirm and release bytes");
});
