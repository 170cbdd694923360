// The README's tour of the root demo program, run as a user runs it: scripts/pulumi.sh (what
// `npm run up|preview|destroy` run after setup) with the real CLI, on its own backend, stack
// and VM directory. One install onto the local QEMU VM with per-phase progress, the printed
// SSH command and URL reach the installed system, a new system previews old → new and
// switches, a new layout previews a reinstall (preview only), destroy stops the VM.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { currentRunDir, record } from "../harness/run-dir";
import { vmImages } from "../harness/vm";
import { buildDemoSystem } from "../../examples/demo/demo-system";

const ROOT = path.resolve(__dirname, "../../..");
const work = path.join(currentRunDir(), "demo");
const vmDir = path.join(work, "vms");
const stackName = `demotest${process.pid}`;
const env = { PULUMI_BACKEND_URL: `file://${path.join(work, "state")}`, NIXOS_PULUMI_DEMO_DIR: vmDir, PULUMI_CONFIG_PASSPHRASE: "demo-test" };
let transcript = "";

/** One CLI command; stdout and stderr together, as the user's terminal shows them. */
async function pulumi(...args: string[]): Promise<string> {
  const started = Date.now();
  const r = await execa("bash", [path.join(ROOT, "scripts/pulumi.sh"), ...args, "--stack", stackName], { env, reject: false, all: true });
  transcript += `\n===== pulumi ${args.join(" ")} (${((Date.now() - started) / 1000).toFixed(0)}s, exit ${r.exitCode}) =====\n${r.all}`;
  if (r.exitCode !== 0) throw new Error(`pulumi ${args.join(" ")} failed:\n${String(r.all).slice(-4000)}`);
  return String(r.all);
}

async function outputs(): Promise<Record<string, string>> {
  const r = await execa("bash", [path.join(ROOT, "scripts/pulumi.sh"), "stack", "output", "--json", "--stack", stackName], { env });
  return JSON.parse(r.stdout) as Record<string, string>;
}

/** Supervisor and QEMU of the demo VMs in this test's directory (both name it on their command line). */
function demoProcesses(only: RegExp = /qemu-system|vm-supervisor/): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
        return cmd.includes(vmDir) && only.test(cmd);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The login the stack output `ssh` prints, run with a command and without prompts. */
async function sshRun(sshCommand: string, command: string): Promise<string> {
  const [bin, ...args] = sshCommand.split(" ");
  const login = args.pop()!;
  const r = await execa(bin!, [...args, "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", login, command]);
  return r.stdout.trim();
}

async function serviceAnswer(url: string): Promise<string> {
  return (await (await fetch(url, { signal: AbortSignal.timeout(20_000) })).text()).trim();
}

mkdirSync(work, { recursive: true });
// The harness ends recorded VMs however this process ends (and its sweeper after a crash).
// The supervisor boots a new QEMU after each guest reboot: record each one; a killed QEMU
// also ends its supervisor.
const recorded = new Set<number>();
setInterval(() => {
  for (const pid of demoProcesses(/qemu-system/)) {
    if (recorded.has(pid)) continue;
    recorded.add(pid);
    record(`vm ${pid}`);
  }
}, 1000).unref();

after(async (t) => {
  t.diagnostic(transcript.slice(-8000));
  if (existsSync(vmDir)) for (const d of readdirSync(vmDir)) {
    const log = path.join(vmDir, d, "console-history.log");
    if (existsSync(log)) t.diagnostic(`console (tail):\n${readFileSync(log, "utf8").slice(-2000)}`);
  }
  // A failed tour leaves its VM running: destroy it as the user would, then end whatever
  // of this test's VMs is left (their pids, found by this test's directory).
  if (demoProcesses().length > 0) await pulumi("destroy", "--yes").catch(() => undefined);
  for (const pid of demoProcesses()) process.kill(pid, "SIGKILL");
  await pulumi("stack", "rm", "--yes", "--force").catch(() => undefined);
  rmSync(path.join(ROOT, `Pulumi.${stackName}.yaml`), { force: true });
  rmSync(work, { recursive: true, force: true });
});

test("the README's tour: up installs the demo VM, a new system previews old → new and switches, a new layout previews a reinstall, destroy stops the VM", async () => {
  const images = await vmImages();
  const v1 = await buildDemoSystem(images.dir, "v1");
  const v2 = await buildDemoSystem(images.dir, "v2");

  // npm run up, fresh: the VM is created, then installed with each phase's progress.
  const up = await pulumi("up", "--yes");
  assert.match(up, /\+ +pulumi-nodejs:dynamic\/nixos-pulumi-demo:LocalVm +vm +created/);
  for (const phase of ["kexec", "disko", "install", "reboot"]) assert.match(up, new RegExp(`demo \\[[\\d.]+s\\] ${phase}: done in`), `progress of phase ${phase}`);
  assert.match(up, /\+ +pulumi-nodejs:dynamic\/nixos-pulumi:NixosHost +demo +created/);
  assert.match(up, new RegExp(`ssh +: +"ssh -F ${vmDir}/ssh_config demo"`), "up prints how to log in");
  assert.match(up, /url +: +"http:\/\/127\.0\.0\.1:\d+\/"/, "up prints the service's URL");
  let out = await outputs();
  assert.equal(out["currentSystem"], v1);
  assert.equal(await serviceAnswer(out["url"]!), "demo-v1", "the installed system's service answers on the printed URL");
  assert.equal(await sshRun(out["ssh"]!, "readlink /run/current-system"), v1, "the printed SSH command logs into the installed system");
  assert.equal(demoProcesses().length, 2, "the VM runs detached: its supervisor and QEMU");

  // A new demo system: the preview says old → new and what changes inside; up switches.
  await pulumi("config", "set", "label", "v2");
  const preview = await pulumi("preview");
  assert.match(preview, /~ +pulumi-nodejs:dynamic\/nixos-pulumi:NixosHost +demo +update/);
  assert.ok(preview.includes(`demo: switch: ${v1} → ${v2}`), "old → new store path");
  assert.match(preview, /demo: closure: [\d.]+ → [\d.]+ MiB/, "what changes inside the system");
  assert.doesNotMatch(preview, /LocalVm +vm +(update|replace)/, "the VM is untouched");
  assert.doesNotMatch(preview, /reinstall/);
  const vmId = out["vm"];
  const switched = await pulumi("up", "--yes");
  assert.match(switched, /~ +pulumi-nodejs:dynamic\/nixos-pulumi:NixosHost +demo +updated/);
  assert.doesNotMatch(switched, /kexec|disko/, "a switch, no reinstall");
  out = await outputs();
  assert.equal(out["currentSystem"], v2);
  assert.equal(out["vm"], vmId, "the same VM");
  assert.equal(await serviceAnswer(out["url"]!), "demo-v2");
  assert.equal(await sshRun(out["ssh"]!, "readlink /run/current-system"), v2);

  // A new layout: the preview says the host is replaced, i.e. reinstalled and its disk wiped.
  await pulumi("config", "set", "espSize", "300M");
  const layoutPreview = await pulumi("preview");
  assert.match(layoutPreview, /\+- +pulumi-nodejs:dynamic\/nixos-pulumi:NixosHost +demo +replace/);
  assert.match(layoutPreview, /demo: reinstall \(the disk layout changed[^)]*\): wipes \/dev\/vda and installs /);
  assert.doesNotMatch(layoutPreview, /LocalVm +vm +(update|replace)/, "the VM is kept");

  // npm run destroy: the VM is stopped and its disk removed; the host is forgotten.
  const destroyed = await pulumi("destroy", "--yes");
  assert.match(destroyed, /- +pulumi-nodejs:dynamic\/nixos-pulumi-demo:LocalVm +vm +deleted/);
  assert.deepEqual(demoProcesses(), [], "no process of the demo VM left");
  assert.deepEqual(readdirSync(vmDir).filter((d) => d.startsWith("demo-vm-")), [], "the VM's disk is removed");
});
