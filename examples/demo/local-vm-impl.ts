// The demo's "cloud VM" provider: a QEMU VM on this machine, powered by a detached
// supervisor (vm-supervisor.ts). Its state lives in <stateRoot>/<id>: disk, console, pids.
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { freePort, type Boot } from "../../test/harness/vm";

export interface LocalVmInputs {
  stateRoot: string;
  images: string;
  memoryMiB: number;
  diskSizeMiB: number;
}

export interface LocalVmOutputs extends LocalVmInputs {
  sshPort: number;
  httpPort: number;
  dir: string;
  consoleLog: string;
}

export interface SupervisorConfig {
  disk: string;
  memoryMiB: number;
  sshPort: number;
  httpPort: number;
  consoleLog: string;
  consoleHistory: string;
  firstBoot: Boot;
}

/** Resolves once something on the port greets with an SSH banner (QEMU accepts before the guest listens). */
function sshBanner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(3000, () => done(false));
    socket.once("data", (data) => done(data.toString().startsWith("SSH-")));
    socket.once("error", () => done(false));
    socket.once("close", () => done(false));
  });
}

function pidRunning(pid: number, what: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(what);
  } catch {
    return false;
  }
}

function readPid(dir: string, name: string): number | undefined {
  try {
    return Number(readFileSync(path.join(dir, name), "utf8").trim()) || undefined;
  } catch {
    return undefined;
  }
}

export async function check(_olds: unknown, news: LocalVmInputs) {
  return { inputs: news };
}

// A rebuilt image set (a new directory) matters only for the first boot: it replaces nothing.
export async function diff(_id: string, olds: LocalVmOutputs, news: LocalVmInputs) {
  const replaces = (["stateRoot", "memoryMiB", "diskSizeMiB"] as const).filter((k) => olds[k] !== news[k]);
  return { changes: replaces.length > 0, replaces, deleteBeforeReplace: true };
}

export async function create(inputs: LocalVmInputs) {
  const images = inputs.images;
  const id = `demo-vm-${randomBytes(4).toString("hex")}`;
  const dir = path.join(inputs.stateRoot, id);
  mkdirSync(dir, { recursive: true });
  const disk = path.join(dir, "vda.img");
  // A sparse disk image. No execa here: examples/node_modules (the examples' type-check)
  // holds an older execa that this file would resolve first.
  writeFileSync(disk, "");
  truncateSync(disk, inputs.diskSizeMiB * 1024 * 1024);
  const config: SupervisorConfig = {
    disk,
    memoryMiB: inputs.memoryMiB,
    sshPort: await freePort(),
    httpPort: await freePort(),
    consoleLog: path.join(dir, "console.log"),
    consoleHistory: path.join(dir, "console-history.log"),
    firstBoot: { kernel: path.join(images, "bzImage"), initrd: path.join(images, "rescue.cpio.gz"), append: "console=ttyS0 panic=10" },
  };
  writeFileSync(path.join(dir, "config.json"), JSON.stringify(config, null, 2));
  const out = openSync(path.join(dir, "supervisor.out"), "a");
  const supervisor = spawn(process.execPath, [path.join(__dirname, "vm-supervisor.js"), dir], { detached: true, stdio: ["ignore", out, out] });
  closeSync(out);
  supervisor.unref();
  const outputs: LocalVmOutputs = { ...inputs, sshPort: config.sshPort, httpPort: config.httpPort, dir, consoleLog: config.consoleLog };
  // The VM is ready when its rescue system's sshd answers.
  const deadline = Date.now() + 300_000;
  while (!(await sshBanner(config.sshPort))) {
    if (Date.now() > deadline || supervisor.exitCode !== null) {
      await stop(dir);
      throw new Error(`the demo VM did not answer SSH on 127.0.0.1:${config.sshPort} within 300s; console: ${config.consoleLog}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return { id, outs: outputs };
}

async function stop(dir: string): Promise<void> {
  const supervisorPid = readPid(dir, "supervisor.pid");
  const qemuPid = readPid(dir, "qemu.pid");
  if (supervisorPid && pidRunning(supervisorPid, "vm-supervisor")) process.kill(supervisorPid, "SIGTERM");
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && ((supervisorPid && pidRunning(supervisorPid, "vm-supervisor")) || (qemuPid && pidRunning(qemuPid, "qemu-system")))) {
    await new Promise((r) => setTimeout(r, 200));
  }
  // A supervisor that did not stop it: end the QEMU we started (its pid, its disk on the command line).
  if (qemuPid && pidRunning(qemuPid, path.join(dir, "vda.img"))) process.kill(qemuPid, "SIGKILL");
  if (supervisorPid && pidRunning(supervisorPid, "vm-supervisor")) process.kill(supervisorPid, "SIGKILL");
}

export async function read(id: string, props: LocalVmOutputs) {
  return { id, props };
}

export async function update(_id: string, olds: LocalVmOutputs, news: LocalVmInputs) {
  return { outs: { ...olds, ...news } };
}

export async function remove(_id: string, props: LocalVmOutputs) {
  if (!existsSync(props.dir)) return;
  await stop(props.dir);
  rmSync(props.dir, { recursive: true, force: true });
}
