// Tier-1 test hosts: each a process tree in its own mount, PID and UTS namespace running a
// real sshd on its own loopback address, with its own /nix, /run, /etc, /root, /mnt, /boot,
// host key and optional loop-device disks visible as /dev/<name>.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes, randomInt } from "node:crypto";
import * as net from "node:net";
import * as path from "node:path";
import { execa } from "execa";
import { generateKeyPair, testClientKey } from "./keys";
import { currentRunDir, record, requireRoot, swapOffLoop } from "./run-dir";

export type HostState = "rescue" | "installer" | "nixos";

export interface HostOptions {
  name?: string;
  state?: HostState;
  /** For "nixos": the toplevel to install and activate (default: none, must be given). */
  system?: string;
  disks?: { name: string; sizeMiB: number }[];
  /** Allow root password login with this password. */
  rootPassword?: string;
  /** Also serve an RSA host key (sshd then offers ed25519 and RSA, as many servers do). */
  rsaHostKey?: boolean;
  /** The host's Nix (its nix-store, nix-env, ...): a wrapper dir of nix-versions.ts; default this machine's. */
  nixBin?: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface TestHost {
  name: string;
  /** The state it was started in (also in /etc/test-host-state inside it). */
  state: HostState;
  address: string;
  port: number;
  hostPublicKey: string;
  /** With rsaHostKey: the host's RSA public key ("ssh-rsa AAAA..."). */
  rsaHostPublicKey?: string;
  clientPrivateKey: string;
  clientPrivateKeyPath: string;
  stateDir: string;
  /** Host-side loop devices backing the host's disks, by disk name. */
  loopDevices: Record<string, string>;
  /** PID (in the deployer's namespace) of the host's init; all host processes die with it. */
  initPid: number;
  /**
   * There is no udev in a test host: after partitioning, tell the kernel the new table
   * (`partx -u /dev/<disk>`; this machine's kernel does not parse GPT itself) and create
   * the /dev/<disk>N nodes for the partitions it reports under /sys/class/block/<loop>/,
   * removing nodes of partitions that are gone (the disk script does the same itself).
   */
  syncPartitionNodes(): Promise<void>;
  /** Runs a shell command inside the host's namespaces, as root. */
  exec(command: string, stdin?: string | Buffer): Promise<ExecResult>;
  /** Like exec, but throws with the output when the command fails. */
  run(command: string, stdin?: string | Buffer): Promise<string>;
  stop(): Promise<void>;
}

/** The nixos-install and nixos-enter doubles an installer-state host has on its PATH. */
const INSTALLER_TOOLS = path.resolve(__dirname, "../../../test/fixtures/installer-tools");
const INIT_SCRIPT = path.resolve(__dirname, "../../../test/harness/host-init.sh");
let hostCounter = 0;

async function addressInUse(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(true));
    server.listen(port, address, () => server.close(() => resolve(false)));
  });
}

/**
 * Whether something listens on address:port, asked by connecting: a probe that bound the port
 * itself would, for its brief moment, make a starting sshd fail with "Address already in use".
 */
async function accepts(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function freeLoopbackAddress(): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const address = `127.${randomInt(64, 250)}.${randomInt(1, 250)}.${randomInt(1, 250)}`;
    if (!(await addressInUse(address, 22))) return address;
  }
  throw new Error("no free loopback address found for a test host");
}

async function childPid(parent: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const { stdout } = await execa("pgrep", ["-P", String(parent)], { reject: false });
    if (stdout.trim()) return Number(stdout.trim().split(/\s+/)[0]);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`test host init (child of unshare ${parent}) did not start`);
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function createDisk(stateDir: string, disk: { name: string; sizeMiB: number }): Promise<string> {
  const file = path.join(stateDir, `disk-${disk.name}.img`);
  await execa("truncate", ["-s", `${disk.sizeMiB}M`, file]);
  const { stdout } = await execa("losetup", ["--find", "--show", "--partscan", file]);
  const loop = stdout.trim();
  record(`loop ${loop} ${file}`);
  return loop;
}

/**
 * Shell code run inside a host: makes /dev/<disk><N> (or <disk>p<N> when the disk name ends
 * in a digit, as Linux names them) for every partition the kernel reports under
 * /sys/class/block/<loop>/, and removes nodes of partitions that are gone.
 */
function partitionNodesScript(disk: string, loop: string): string {
  const node = `/dev/${disk}${/[0-9]$/.test(disk) ? "p" : ""}`;
  return [
    `for p in /sys/class/block/${loop}/${loop}p*; do`,
    `  [ -e "$p/partition" ] || continue`,
    `  n=$(cat "$p/partition"); dev=$(cat "$p/dev")`,
    `  if [ -e ${node}$n ] && [ "$(stat -c '%t:%T' ${node}$n)" != "$(printf '%x:%x' \${dev%%:*} \${dev#*:})" ]; then rm -f ${node}$n; fi`,
    `  [ -e ${node}$n ] || mknod -m 660 ${node}$n b \${dev%%:*} \${dev#*:}`,
    `done`,
    `for d in ${node}[0-9]*; do`,
    `  [ -b "$d" ] || continue`,
    `  [ -e /sys/class/block/${loop}/${loop}p\${d#${node}}/partition ] || rm -f "$d"`,
    `done`,
  ].join("\n");
}

async function deviceNumbers(device: string): Promise<string> {
  const { stdout } = await execa("stat", ["-L", "-c", "%t:%T", device]);
  const [major, minor] = stdout.trim().split(":").map((h) => parseInt(h, 16));
  return `${major}:${minor}`;
}

// Host keys of the types NixOS's sshd serves by default (services.openssh.hostKeys: RSA and
// ed25519), in every state: an "installer" host must never serve a type the real installer
// would not (no ECDSA), so a pin that only a lenient installer would match fails here too.
function sshdConfig(address: string, stateDir: string, rootPassword: boolean, rsa: boolean): string {
  return [
    `ListenAddress ${address}:22`,
    `HostKey ${stateDir}/ssh_host_ed25519_key`,
    ...(rsa ? [`HostKey ${stateDir}/ssh_host_rsa_key`] : []),
    "PidFile /run/sshd.pid",
    "AuthorizedKeysFile /root/.ssh/authorized_keys %h/.ssh/authorized_keys",
    `PermitRootLogin ${rootPassword ? "yes" : "prohibit-password"}`,
    "PasswordAuthentication yes",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    "StrictModes no",
    "UseDNS no",
    "AllowTcpForwarding yes",
    "MaxStartups 100",
    "MaxSessions 50",
    "Subsystem sftp internal-sftp",
    "",
  ].join("\n");
}

export async function startHost(options: HostOptions = {}): Promise<TestHost> {
  requireRoot();
  const state = options.state ?? "rescue";
  const name = options.name ?? `host${++hostCounter}`;
  const stateDir = path.join(currentRunDir(), `${name}-${randomBytes(3).toString("hex")}`);
  mkdirSync(stateDir, { recursive: true });
  const address = await freeLoopbackAddress();
  const client = await testClientKey();
  const hostKey = await generateKeyPair(`${name}-host`, "", stateDir, "ssh_host_ed25519_key");
  writeFileSync(path.join(stateDir, "authorized_keys"), client.publicKey + "\n");
  writeFileSync(path.join(stateDir, "machine-id"), randomBytes(16).toString("hex") + "\n");
  let rsaHostPublicKey: string | undefined;
  if (options.rsaHostKey) {
    await execa("ssh-keygen", ["-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", `${name}-host-rsa`, "-f", path.join(stateDir, "ssh_host_rsa_key")]);
    rsaHostPublicKey = readFileSync(path.join(stateDir, "ssh_host_rsa_key.pub"), "utf8").trim().split(" ").slice(0, 2).join(" ");
  }
  writeFileSync(path.join(stateDir, "sshd_config"), sshdConfig(address, stateDir, options.rootPassword !== undefined, !!options.rsaHostKey));

  const loopDevices: Record<string, string> = {};
  const diskSpecs: string[] = [];
  let child: ChildProcess | undefined;
  let initPid = 0;
  const host: TestHost = {
    name,
    state,
    address,
    port: 22,
    hostPublicKey: hostKey.publicKey.split(" ").slice(0, 2).join(" "),
    ...(rsaHostPublicKey ? { rsaHostPublicKey } : {}),
    clientPrivateKey: client.privateKey,
    clientPrivateKeyPath: client.privateKeyPath,
    stateDir,
    loopDevices,
    get initPid() {
      return initPid;
    },
    async exec(command, stdin) {
      const r = await execa("nsenter", ["-t", String(initPid), "-m", "-u", "-p", "--", "/bin/sh", "-c", command], {
        input: stdin ?? "",
        reject: false,
        env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root" },
        extendEnv: false,
        encoding: "utf8",
      });
      return { stdout: String(r.stdout), stderr: String(r.stderr), code: r.exitCode ?? -1 };
    },
    async run(command, stdin) {
      const r = await host.exec(command, stdin);
      if (r.code !== 0) throw new Error(`${name}: \`${command}\` exited ${r.code}\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    },
    async syncPartitionNodes() {
      for (const [disk, loop] of Object.entries(loopDevices)) {
        // This machine's kernel parses no partition tables (CONFIG_EFI_PARTITION and
        // CONFIG_MSDOS_PARTITION unset): partx reads the table and tells the kernel.
        await host.run(`partx -u /dev/${disk} 2>/dev/null || partx -a /dev/${disk} 2>/dev/null || true`);
        await host.run(partitionNodesScript(disk, path.basename(loop)));
      }
    },
    async stop() {
      await stopHost(initPid, child, loopDevices, stateDir);
    },
  } as TestHost;

  try {
    for (const disk of options.disks ?? []) {
      loopDevices[disk.name] = await createDisk(stateDir, disk);
      diskSpecs.push(`${disk.name}:${await deviceNumbers(loopDevices[disk.name]!)}`);
    }
    child = spawn("unshare", ["--mount", "--pid", "--uts", "--fork", "--mount-proc", "--propagation", "private", "/bin/sh", INIT_SCRIPT], {
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", STATE: stateDir, NAME: name, ADDRESS: address, HOST_STATE: state, DISKS: diskSpecs.join(" "), INSTALLER_TOOLS, NIX_BIN: options.nixBin ?? "" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let initErrors = "";
    child.stderr?.on("data", (d: Buffer) => (initErrors += d.toString()));
    record(`unshare ${child.pid}`);
    initPid = await childPid(child.pid!);
    record(`pid ${initPid}`);
    await waitFor(() => existsSync(path.join(stateDir, "ready")) || child!.exitCode !== null, `${name} to set up`);
    if (child.exitCode !== null) throw new Error(`${name}: host-init.sh failed while setting up the host's mounts and sshd: ${initErrors.trim()}`);
    await waitFor(() => accepts(address, 22), `${name}'s sshd on ${address}:22`).catch((err: Error) => {
      const log = existsSync(path.join(stateDir, "sshd.log")) ? readFileSync(path.join(stateDir, "sshd.log"), "utf8").trim() : "(no sshd.log)";
      throw new Error(`${err.message}; sshd said: ${log || "nothing"}; host init said: ${initErrors.trim() || "nothing"}`);
    });
    if (state !== "rescue") await host.run("nix-store --init");
    if (state === "rescue") await host.run("rm -rf /nix/* 2>/dev/null; true");
    if (state === "nixos") {
      if (!options.system) throw new Error(`${name}: state "nixos" needs options.system (a toplevel store path)`);
      await bootSystemDirectly(host, options.system);
    }
    return host;
  } catch (err) {
    await host.stop();
    throw err;
  }
}

/**
 * Makes the host look like a machine installed with `system` and booted into it: the
 * closure in its store, the profile set, the bootloader installed (as nixos-install does),
 * /run/booted-system, then what stage 2 of a NixOS boot runs: the activation script and
 * the system's service.
 */
export async function bootSystemDirectly(host: TestHost, toplevel: string): Promise<void> {
  await copyToHostStore(host, toplevel);
  await host.run(
    `nix-env -p /nix/var/nix/profiles/system --set ${toplevel} && ${toplevel}/activate && ln -sfn ${toplevel} /run/booted-system && ` +
      `NIXOS_INSTALL_BOOTLOADER=1 ${toplevel}/bin/switch-to-configuration boot && ${toplevel}/bin/test-service start`,
  );
}

/** Copies a toplevel into the (booted NixOS) host's store, sets the system profile and switches to it. */
export async function installSystemDirectly(host: TestHost, toplevel: string, action = "switch"): Promise<void> {
  await copyToHostStore(host, toplevel);
  await host.run(`nix-env -p /nix/var/nix/profiles/system --set ${toplevel} && ${toplevel}/bin/switch-to-configuration ${action}`);
}

/** `nix-store --export` of the closure on this machine, imported in the host's own store. */
export async function copyToHostStore(host: TestHost, storePath: string): Promise<void> {
  const { stdout: closure } = await execa("nix-store", ["-qR", storePath]);
  const exported = await execa("nix-store", ["--export", ...closure.split("\n")], { encoding: "buffer" });
  await host.run("nix-store --import >/dev/null", Buffer.from(exported.stdout));
}

async function stopHost(initPid: number, child: ChildProcess | undefined, loops: Record<string, string>, stateDir: string): Promise<void> {
  if (initPid > 0) {
    try {
      process.kill(initPid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  if (child && child.exitCode === null && child.signalCode === null) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  for (const loop of Object.values(loops)) {
    swapOffLoop(loop);
    await execa("losetup", ["-d", loop], { reject: false });
  }
  rmSync(stateDir, { recursive: true, force: true });
}

/** Starts `count` hosts (a few at a time); names are `${options.name}${i}` or host<N>. */
export async function startHosts(count: number, options: HostOptions = {}, concurrency = 4): Promise<TestHost[]> {
  const hosts: TestHost[] = [];
  const failures: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count && failures.length === 0) {
      const i = next++;
      try {
        hosts[i] = await startHost({ ...options, name: options.name ? `${options.name}${i + 1}` : undefined });
      } catch (err) {
        failures.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  if (failures.length > 0) {
    await Promise.all(hosts.filter(Boolean).map((h) => h.stop()));
    throw failures[0];
  }
  return hosts;
}
