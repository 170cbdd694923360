// A layout given as the system's own disko script (nixos-anywhere's --store-paths contract):
// hashed by evaluation without building (a changed script previews as a reinstall), then
// built, copied to the target and run by the disko phase.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { renderDeclared } from "../../provider/disk";
import { runInstall, type InstallContext } from "../../provider/install";
import { connect } from "../../provider/ssh";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";

const unique = `${process.pid}-${Date.now()}`;
let host: TestHost;
before(async () => {
  host = await startHost({ name: "disko-script", state: "installer", disks: [{ name: "vda", sizeMiB: 128 }] });
});
after(async () => {
  await host?.exec("umount /mnt/boot 2>/dev/null; findmnt -rn -o SOURCE -M /mnt | tail -n 1 | grep -q '^/dev/vda' && umount /mnt; true").catch(() => undefined);
  await host?.stop();
});

/** A flake whose system's diskoScript formats the whole disk and mounts it under /mnt. */
function flake(label: string): string {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), "disko-script-")), "flake");
  mkdirSync(dir);
  const script = `#!/bin/sh\nset -e\nmkfs.ext4 -F -q -L ${label} /dev/vda\nmkdir -p /mnt\nmount /dev/vda /mnt\necho disko-script-${label}\n`;
  writeFileSync(
    path.join(dir, "flake.nix"),
    `{ outputs = { self }: { nixosConfigurations.web.config.system.build.diskoScript = derivation {
      name = "disko-${unique}-${label}"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
      args = [ "-c" ${JSON.stringify(`printf '%s' '${script.replace(/'/g, "'\\''")}' > $out && chmod +x $out`)} ]; }; }; }`,
  );
  return `path:${dir}#web`;
}

test("the script is hashed by evaluation without building; a changed script changes the format hash", async () => {
  const a = await renderDeclared({ diskoScript: { flake: flake("one") } });
  const b = await renderDeclared({ diskoScript: { flake: flake("two") } });
  assert.notEqual(a.formatHash, b.formatHash);
  assert.equal((await execa("nix-store", ["--check-validity", a.diskoScript!.storePath], { reject: false })).exitCode, 1, "not built by preview");
  assert.ok(a.diskoScript!.derivation?.endsWith(".drv"));
});

test("the disko phase builds the script, copies it to the target and runs it", async () => {
  const layout = await renderDeclared({ diskoScript: { flake: flake("three") } });
  const toplevel = await buildTestSystem({ label: "disko-script" });
  const spec = nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: toplevel },
    diskLayout: { declared: {} },
  });
  const lines: string[] = [];
  const open = () => connect(spec.connection);
  const ctx: InstallContext = { spec, toplevel, layout, progress: (l) => lines.push(l), session: await open(), connect: open };
  try {
    await runInstall(ctx, ["disko"]);
  } finally {
    ctx.session.close();
  }
  assert.ok(lines.some((l) => l.includes("disko-script-three")), lines.join("\n"));
  assert.equal((await host.run(`test -x ${layout.diskoScript!.storePath} && echo present`)).trim(), "present", "the script is in the target's store");
  assert.equal((await host.run("findmnt -rn -o FSTYPE -M /mnt | tail -n 1")).trim(), "ext4");
  assert.equal((await host.run("blkid -s LABEL -o value /dev/vda")).trim(), "three");
});

test("with build.on target the disko phase builds the script in the installer, never on the deployer", async () => {
  const layout = await renderDeclared({ diskoScript: { flake: flake("four") } });
  const toplevel = await buildTestSystem({ label: "disko-script" });
  const spec = nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: toplevel },
    diskLayout: { declared: {} },
    build: { on: "target" },
  });
  await host.exec("umount /mnt/boot 2>/dev/null; findmnt -rn -o SOURCE -M /mnt | tail -n 1 | grep -q '^/dev/vda' && umount /mnt; true");
  const lines: string[] = [];
  const open = () => connect(spec.connection);
  const ctx: InstallContext = { spec, toplevel, layout, progress: (l) => lines.push(l), session: await open(), connect: open };
  try {
    await runInstall(ctx, ["disko"]);
  } finally {
    ctx.session.close();
  }
  assert.ok(lines.some((l) => /disko: build on target: nix-store --realise/.test(l)), lines.join("\n"));
  assert.ok(lines.some((l) => l.includes("disko-script-four")), lines.join("\n"));
  assert.equal((await execa("nix-store", ["--check-validity", layout.diskoScript!.storePath], { reject: false })).exitCode, 1, "the deployer never built it");
  assert.equal((await host.run(`test -x ${layout.diskoScript!.storePath} && echo present`)).trim(), "present");
  assert.equal((await host.run("blkid -s LABEL -o value /dev/vda")).trim(), "four");
});
