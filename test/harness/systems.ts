// NixOS-shaped test systems (test/fixtures/system.nix), built by the local Nix.
import * as path from "node:path";
import { execa } from "execa";
import { renderDeclared } from "../../provider/disk";

export interface TestSystemOptions {
  label: string;
  variant?: "ok" | "fail" | "units-failed" | "cut-ssh" | "lose-ssh" | "init-changed" | "no-boot" | "pre-switch-fail";
  kernelVersion?: string;
  kernelFile?: string;
  initrdFile?: string;
  fillerCount?: number;
  fillerBytes?: number;
  /** QEMU guests: the runtime directory of the VM images (sshd, Nix). */
  vmRuntime?: string;
  /** The system's fileSystems as /etc/fstab lines; a system with a real initrd needs "/". */
  fstab?: string;
  /** boot.initrd.luks.devices: "name device keyFile allowDiscards" lines. */
  luksDevices?: string;
  /** boot.initrd.secrets: "dest source" lines. */
  initrdSecrets?: string;
  /**
   * Files under etc/systemd/system: path → text, or { link } for a symlink (wantedBy:
   * "multi-user.target.wants/x.service" → { link: "../x.service" }).
   */
  unitFiles?: Record<string, string | { link: string }>;
  /** QEMU guests with luksDevices: the images' cryptsetup package, linked into sw/bin. */
  cryptsetup?: string;
}

export const SYSTEM_NIX = path.resolve(__dirname, "../../../test/fixtures/system.nix");

export function testSystemArgs(options: TestSystemOptions): string[] {
  const args = ["--argstr", "label", options.label];
  if (options.variant) args.push("--argstr", "variant", options.variant);
  if (options.kernelVersion) args.push("--argstr", "kernelVersion", options.kernelVersion);
  if (options.kernelFile) args.push("--arg", "kernelFile", options.kernelFile);
  if (options.initrdFile) args.push("--arg", "initrdFile", options.initrdFile);
  if (options.fillerCount) args.push("--arg", "fillerCount", String(options.fillerCount));
  if (options.fillerBytes) args.push("--arg", "fillerBytes", String(options.fillerBytes));
  if (options.vmRuntime) args.push("--arg", "vmRuntime", options.vmRuntime);
  if (options.fstab) args.push("--argstr", "fstab", options.fstab);
  if (options.luksDevices) args.push("--argstr", "luksDevices", options.luksDevices);
  if (options.initrdSecrets) args.push("--argstr", "initrdSecrets", options.initrdSecrets);
  if (options.unitFiles) args.push("--argstr", "unitFiles", JSON.stringify(options.unitFiles));
  if (options.cryptsetup) args.push("--arg", "cryptsetup", options.cryptsetup);
  return args;
}

const built = new Map<string, Promise<string>>();

/** Builds a test toplevel and returns its store path (cached per options in this process). */
export function buildTestSystem(options: TestSystemOptions): Promise<string> {
  const key = JSON.stringify(options);
  let result = built.get(key);
  if (!result) {
    result = execa("nix-build", ["--no-out-link", SYSTEM_NIX, ...testSystemArgs(options)]).then((r) => r.stdout.trim().split("\n").pop()!);
    built.set(key, result);
  }
  return result;
}

/**
 * What a layout's NixOS module gives a system (as a flake importing it would): its
 * fileSystems as fstab lines and its boot.initrd.luks.devices.
 */
export async function layoutSystemOptions(layout: Record<string, unknown>): Promise<Pick<TestSystemOptions, "fstab" | "luksDevices">> {
  const { nixos } = await renderDeclared(layout);
  const fstab = Object.entries(nixos.fileSystems)
    .map(([mountpoint, fs]) => `${fs.device} ${mountpoint} ${fs.fsType} ${fs.options.join(",") || "defaults"} 0 ${mountpoint === "/" ? 1 : 2}\n`)
    .join("");
  const luksDevices = Object.entries(nixos.luksDevices)
    .map(([name, luks]) => `${name} ${String(luks["device"])} ${String(luks["keyFile"] ?? "-")} ${luks["allowDiscards"] === true}\n`)
    .join("");
  return { fstab, luksDevices };
}

const wants = (...units: string[]) => Object.fromEntries(units.map((u) => [`multi-user.target.wants/${u}`, { link: `../${u}` }]));
const service = (exec: string, extra = "", unit = "") => `[Unit]\nDescription=test unit\n${unit}\n[Service]\nExecStart=${exec}\n${extra}\n[Install]\nWantedBy=multi-user.target\n`;

/**
 * Two systems' unit files exercising switch-to-configuration-ng's rules, one unit per rule
 * (each unit's comment: what a switch from `before` to `after` does to it while active).
 */
export const UNIT_SCENARIO: { before: TestSystemOptions["unitFiles"]; after: TestSystemOptions["unitFiles"] } = {
  before: {
    "multi-user.target": "[Unit]\nDescription=Multi-User System\n",
    ...wants("web.service", "api.service", "worker.service", "cache.service", "db.service", "old.service", "keep.service", "sock.socket", "sock.service", "batch.timer", "desc.service", "dropin.service", "tmpl@one.service", "masked.service"),
    "web.service": service("/bin/web --port 1"), // changed: stopped, then started
    "api.service": service("/bin/api 1", "X-StopIfChanged=false"), // stopIfChanged = false: restarted
    "worker.service": service("/bin/worker 1", "X-RestartIfChanged=false"), // restartIfChanged = false: left running
    "cache.service": service("/bin/cache 1", "X-ReloadIfChanged=true"), // reloadIfChanged: reloaded
    "db.service": service("/bin/db", "", "X-Reload-Triggers=/nix/store/aaa-db.conf"), // only reload triggers changed: reloaded
    "old.service": service("/bin/old"), // removed: stopped
    "keep.service": service("/bin/keep", "", "X-StopOnRemoval=false"), // removed, stopOnRemoval = false: left running
    "sock.socket": "[Socket]\nListenStream=127.0.0.1:9\n",
    "sock.service": service("/bin/sock 1"), // socket-activated: it and its socket stopped, the socket started
    "batch.timer": "[Timer]\nOnCalendar=daily\n", // not a service: restarted
    "desc.service": service("/bin/desc"), // only Description changed: nothing
    "dropin.service": service("/bin/dropin"),
    "dropin.service.d/override.conf": "[Service]\nEnvironment=LEVEL=1\n", // a drop-in changed: stopped, started
    "tmpl@.service": service("/bin/tmpl %i 1"), // the template of an active instance changed
    "masked.service": service("/bin/masked"), // masked in the new system: stopped
    "idle.service": service("/bin/idle 1"), // changed, but nothing starts it at boot
  },
  after: {
    "multi-user.target": "[Unit]\nDescription=Multi-User System\n",
    ...wants("web.service", "api.service", "worker.service", "cache.service", "db.service", "sock.socket", "sock.service", "batch.timer", "desc.service", "dropin.service", "tmpl@one.service", "new.service"),
    "web.service": service("/bin/web --port 2"),
    "api.service": service("/bin/api 2", "X-StopIfChanged=false"),
    "worker.service": service("/bin/worker 2", "X-RestartIfChanged=false"),
    "cache.service": service("/bin/cache 2", "X-ReloadIfChanged=true"),
    "db.service": service("/bin/db", "", "X-Reload-Triggers=/nix/store/bbb-db.conf"),
    "sock.socket": "[Socket]\nListenStream=127.0.0.1:9\n",
    "sock.service": service("/bin/sock 2"),
    "batch.timer": "[Timer]\nOnCalendar=hourly\n",
    "desc.service": service("/bin/desc").replace("Description=test unit", "Description=renamed"),
    "dropin.service": service("/bin/dropin"),
    "dropin.service.d/override.conf": "[Service]\nEnvironment=LEVEL=2\n",
    "tmpl@.service": service("/bin/tmpl %i 2"),
    "masked.service": { link: "/dev/null" },
    "idle.service": service("/bin/idle 2"),
    "new.service": service("/bin/new"), // new and wanted: started with multi-user.target
  },
};

/** What -ng does with UNIT_SCENARIO's units (all of `before`'s boot units active). */
export const UNIT_SCENARIO_JOBS = {
  stop: ["dropin.service", "masked.service", "old.service", "sock.service", "sock.socket", "tmpl@one.service", "web.service"],
  skip: ["worker.service"],
  reload: ["cache.service", "db.service"],
  restart: ["api.service", "batch.timer"],
  start: ["dropin.service", "sock.socket", "tmpl@one.service", "web.service"],
  newUnits: ["new.service"],
};
