// Benchmark (not a test): a full install, ours (`pulumi up` of a DiskLayout and a NixosHost)
// against nixos-anywhere's own script, unmodified, on the QEMU test bed: the same rescue VM
// image, kexec tarball, layout and system, a fresh VM for every install, BENCH_REPEAT
// (default 4) pairs alternating which side goes first. Each side's time runs from its start
// until the installed system answers SSH from its disk (nixos-anywhere returns once the
// machine went down for the reboot; the wait for it to come back is added to its time).
//
// nixos-anywhere is not part of this repository: NIXOS_ANYWHERE_SRC names a checkout of
// https://github.com/nix-community/nixos-anywhere (its src/nixos-anywhere.sh and
// src/get-facts.sh are run as they are; measured with 91fc9b7). It runs with this machine's
// Nix (`nix copy` over `ssh://`, compress=true as it sets), its disko script is the layout's
// script rendered by this package (disko's own output for the layout, as
// test/unit/disk-disko-parity shows), added to the store as an executable file.
// Run: NIXOS_ANYWHERE_SRC=… flock /tmp/nixos-pulumi-heavy.lock node dist/bench/install.js
//      (result: bench/results/install.json)
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { DiskLayout, NixosHost } from "nixos-pulumi";
import { diskLayoutSchema, renderLayout } from "../provider/disk";
import { createTestStack } from "../test/harness/pulumi";
import { buildTestSystem, layoutSystemOptions } from "../test/harness/systems";
import { startVm, vmImages, type TestVm } from "../test/harness/vm";
import { tutorialLayout } from "../test/fixtures/layouts";
import { alternating, figure, startRun, summary, table, writeResult } from "./lib";

const REPEAT = Number(process.env["BENCH_REPEAT"] ?? 4);
const SRC = process.env["NIXOS_ANYWHERE_SRC"];
/** BENCH_ONLY=ours or =nixos-anywhere runs one side (to try a change); the ratio then is NaN. */
const ONLY = new Set((process.env["BENCH_ONLY"] ?? "ours,nixos-anywhere").split(","));
const DISK_MIB = 2048;
const BOOT_TIMEOUT_MS = 300_000;

type Phases = Record<string, number>;
/** Per install of ours: the compression `auto` chose for the copy into the installer, and why. */
const copyChoices: string[] = [];
const phaseSamples: Record<"ours" | "nixos-anywhere", Phases[]> = { ours: [], "nixos-anywhere": [] };

/** The layout, its system (declaring the layout's fileSystems), and the disko script as a store path. */
async function prepare(images: TestVm["images"]) {
  const layoutInput = tutorialLayout("/dev/vda", "ext4", "vfat");
  const { fstab } = await layoutSystemOptions(layoutInput);
  const toplevel = await buildTestSystem({
    label: "bench-install",
    kernelFile: images.kernel,
    initrdFile: `${images.dir}/stage1.cpio.gz`,
    vmRuntime: images.runtime,
    fstab,
  });
  const rendered = renderLayout(diskLayoutSchema.parse(layoutInput));
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-install-"));
  const script = path.join(dir, "disko-format-mount");
  // /bin/sh is bash on NixOS (and in the test installer); a real disko script names its bash in the store.
  writeFileSync(script, `#!/bin/sh\n${rendered.script}`);
  chmodSync(script, 0o755);
  const diskoScript = (await execa("nix-store", ["--add", script])).stdout.trim();
  return { layoutInput, toplevel, diskoScript };
}

async function waitForInstalled(vm: TestVm): Promise<void> {
  const deadline = Date.now() + BOOT_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (vm.boots() > 1 && /stage 2: .* up/.test(vm.consoleText())) {
      const r = await vm.ssh("true").catch(() => ({ code: -1 }));
      if (r.code === 0) return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the installed system did not answer SSH within ${BOOT_TIMEOUT_MS / 1000} s`);
}

async function ours(images: TestVm["images"], prepared: Awaited<ReturnType<typeof prepare>>, round: number): Promise<number> {
  const vm = await startVm({ diskSizeMiB: DISK_MIB });
  try {
    await vm.waitForSsh(120_000);
    const stack = await createTestStack(`bench-install-${round}`, async () => {
      const layout = new DiskLayout("disk", prepared.layoutInput as never);
      const host = new NixosHost("vm", {
        connection: { host: vm.address, port: vm.sshPort, privateKey: images.clientPrivateKey, hostKey: images.rescueHostKey },
        system: { storePath: prepared.toplevel },
        diskLayout: layout,
        install: {
          kexecTarball: images.kexecTarball,
          extraFiles: { "/root/.ssh/authorized_keys": { content: images.clientPublicKey + "\n", mode: "0600" } },
          postKexecSshPort: vm.sshPort,
          timeouts: { kexecSeconds: 180, rebootSeconds: 180 },
        },
      });
      return { currentSystem: host.currentSystem };
    });
    try {
      const started = performance.now();
      await stack.up();
      const seconds = (performance.now() - started) / 1000;
      const phases: Phases = {};
      for (const m of stack.output().matchAll(/(kexec|disko|install|reboot): done in ([\d.]+)s/g)) phases[m[1]!] = Number(m[2]);
      phases["before kexec"] = seconds - Object.values(phases).reduce((a, b) => a + b, 0);
      phaseSamples.ours.push(phases);
      // What `auto` chose for the copy into the installer, and the rates it measured.
      // (The engine prints each diagnostic twice: as it happens and in the summary.)
      const chosen = [...new Set([...stack.output().matchAll(/copy: (link measured at [^\n]*|gzip took [^\n]*|zstd took [^\n]*)/g)].map((m) => m[1]!.trim()))];
      copyChoices.push(chosen.join("; "));
      console.error(`ours: ${seconds.toFixed(1)} s ${JSON.stringify(phases)}; copy: ${chosen.join("; ")}`);
      if (process.env["BENCH_TRACE"]) console.error(stack.output());
      return seconds;
    } finally {
      await stack.remove();
    }
  } finally {
    await vm.stop();
  }
}

async function nixosAnywhere(images: TestVm["images"], prepared: Awaited<ReturnType<typeof prepare>>): Promise<number> {
  const vm = await startVm({ diskSizeMiB: DISK_MIB });
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-nixos-anywhere-"));
  try {
    await vm.waitForSsh(120_000);
    const key = path.join(dir, "id_ed25519");
    writeFileSync(key, images.clientPrivateKey, { mode: 0o600 });
    const extra = path.join(dir, "extra-files");
    mkdirSync(path.join(extra, "root/.ssh"), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(extra, "root/.ssh/authorized_keys"), images.clientPublicKey + "\n", { mode: 0o600 });
    const started = performance.now();
    const steps: { name: string; at: number }[] = [];
    const child = execa(
      "bash",
      [
        path.join(SRC!, "src/nixos-anywhere.sh"),
        "--store-paths", prepared.diskoScript, prepared.toplevel,
        "--kexec", images.kexecTarball,
        "-i", key,
        "-p", String(vm.sshPort),
        "--post-kexec-ssh-port", String(vm.sshPort),
        "--extra-files", extra,
        // Nothing is built with --store-paths; "auto" would ask `nix config show`, which Nix
        // before 2.20 lacks.
        "--build-on", "local",
        `root@${vm.address}`,
      ],
      { all: true, env: { HOME: dir }, stdin: "ignore" },
    );
    child.all!.on("data", (chunk: Buffer) => {
      for (const m of String(chunk).matchAll(/### (.+?) ###/g)) steps.push({ name: m[1]!, at: (performance.now() - started) / 1000 });
    });
    const result = await child.catch((err: unknown) => err as { all?: string; exitCode?: number });
    if ("exitCode" in result && result.exitCode !== 0) throw new Error(`nixos-anywhere failed (exit ${result.exitCode}):\n${String(result.all).slice(-4000)}`);
    await waitForInstalled(vm);
    const seconds = (performance.now() - started) / 1000;
    phaseSamples["nixos-anywhere"].push(nixosAnywherePhases(steps, seconds));
    console.error(`nixos-anywhere: ${seconds.toFixed(1)} s ${JSON.stringify(phaseSamples["nixos-anywhere"].at(-1))}`);
    return seconds;
  } finally {
    await vm.stop();
  }
}

/** nixos-anywhere's steps, folded into the phases ours reports. */
function nixosAnywherePhases(steps: { name: string; at: number }[], end: number): Phases {
  const at = (pattern: RegExp) => steps.find((s) => pattern.test(s.name))?.at ?? NaN;
  const kexec = at(/Switching system into kexec/);
  const disko = at(/Formatting hard drive/);
  const upload = at(/Uploading the system closure/);
  const reboot = at(/^Rebooting/);
  return {
    kexec: disko - kexec,
    // nixos-anywhere copies the disko script before its "Formatting" step; counted in kexec here.
    disko: upload - disko,
    install: reboot - upload,
    reboot: end - reboot,
    "before kexec": kexec,
  };
}

function phaseTable(): (string | number)[][] {
  const names = ["before kexec", "kexec", "disko", "install", "reboot"];
  return names.map((n) => [
    n,
    summary(phaseSamples.ours.map((p) => p[n] ?? NaN), 1),
    summary(phaseSamples["nixos-anywhere"].map((p) => p[n] ?? NaN), 1),
  ]);
}

async function main() {
  if (!SRC || !existsSync(path.join(SRC, "src/nixos-anywhere.sh"))) {
    throw new Error("set NIXOS_ANYWHERE_SRC to a checkout of https://github.com/nix-community/nixos-anywhere (with src/nixos-anywhere.sh)");
  }
  const run = startRun("install");
  const images = await vmImages();
  const prepared = await prepare(images);
  let round = 0;
  const samples = await alternating(REPEAT, {
    ours: () => (ONLY.has("ours") ? ours(images, prepared, round++) : Promise.resolve(NaN)),
    "nixos-anywhere": () => (ONLY.has("nixos-anywhere") ? nixosAnywhere(images, prepared) : Promise.resolve(NaN)),
  });
  const ratios = samples.ours.map((o, i) => o / samples["nixos-anywhere"][i]!);
  console.log(
    table([
      ["install, rescue system to the installed system answering SSH", "ours (s)", "nixos-anywhere (s)", "ratio ours/nixos-anywhere (per pair)"],
      ["---", "---", "---", "---"],
      [`median (min–max), ${REPEAT} pairs`, summary(samples.ours, 1), summary(samples["nixos-anywhere"], 1), summary(ratios)],
    ]),
  );
  console.log("\n" + table([["phase (s)", "ours", "nixos-anywhere"], ["---", "---", "---"], ...phaseTable()]));
  writeResult(run, {
    repeat: REPEAT,
    nixosAnywhere: (await execa("git", ["-C", SRC, "rev-parse", "HEAD"]).catch(() => ({ stdout: "unknown" }))).stdout.trim(),
    seconds: { ours: figure(samples.ours), "nixos-anywhere": figure(samples["nixos-anywhere"]) },
    ratios: figure(ratios),
    phases: phaseSamples,
    oursCopyCompression: copyChoices,
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
