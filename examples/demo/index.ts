// The root Pulumi.yaml program (`npm run up`): a local QEMU VM stands in for a cloud server
// in rescue mode, and a NixosHost installs a NixOS-shaped test system onto it (kexec, the
// nix.dev tutorial's disk layout, install, reboot from disk), then switches it on changes.
//   pulumi config set label v2     a new system: preview shows old → new, up switches it
//   pulumi config set espSize 300M a new layout: preview shows a reinstall
// NIXOS_PULUMI_DEMO_DIR moves the VM's disk and keys (default /var/lib/nixos-pulumi-demo).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { DiskLayout, NixosHost } from "nixos-pulumi";
import { buildDemoSystem } from "./demo-system";
import { tutorialLayout } from "../../test/fixtures/layouts";
import { LocalVm } from "./local-vm";

const ROOT = path.resolve(__dirname, "../../..");

export = async () => {
  const config = new pulumi.Config();
  const label = config.get("label") ?? "v1";
  const espSize = config.get("espSize") ?? "500M";
  const stateRoot = process.env["NIXOS_PULUMI_DEMO_DIR"] ?? "/var/lib/nixos-pulumi-demo";
  mkdirSync(stateRoot, { recursive: true });

  // The VM test tier's images: rescue system, kexec installer, the installed system's userland.
  const images = execFileSync("bash", [path.join(ROOT, "scripts/build-vm-images.sh")], { encoding: "utf8" }).trim().split("\n").pop()!;
  // The installed host key, generated once, so the deployer knows the host before it exists.
  const hostKeyFile = path.join(stateRoot, "host_ed25519");
  if (!existsSync(hostKeyFile)) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "nixos-pulumi-demo", "-f", hostKeyFile]);
  const hostKey = { privateKey: readFileSync(hostKeyFile, "utf8"), publicKey: readFileSync(`${hostKeyFile}.pub`, "utf8").trim() };
  const clientKeyFile = path.join(images, "client_ed25519");

  const system = await buildDemoSystem(images, label);

  const vm = new LocalVm("vm", { stateRoot, images });
  const layout = new DiskLayout("disk", tutorialLayout("/dev/vda", "ext4", "vfat", espSize) as never);
  const host = new NixosHost("demo", {
    connection: { host: "127.0.0.1", port: vm.sshPort, privateKey: pulumi.secret(readFileSync(clientKeyFile, "utf8")), hostKey: hostKey.publicKey },
    system: { storePath: system },
    diskLayout: layout,
    reinstallTriggers: { vm: vm.id },
    install: {
      kexecTarball: path.join(images, "nixos-kexec-installer-test.tar.gz"),
      hostKeys: { ed25519: { privateKey: hostKey.privateKey, publicKey: hostKey.publicKey } },
      // The VM's port 22 is forwarded to a loopback port: the installer is reached there too.
      postKexecSshPort: vm.sshPort,
      extraFiles: { "/root/.ssh/authorized_keys": { content: readFileSync(`${clientKeyFile}.pub`, "utf8").trim() + "\n", mode: "0600" } },
      timeouts: { kexecSeconds: 300, rebootSeconds: 300 },
    },
  });

  return {
    vm: vm.id,
    // Once the host is installed: the login, with its host key pinned.
    ssh: pulumi.all([vm.sshPort, host.currentSystem]).apply(([port]) => `ssh -F ${writeSshConfig(stateRoot, port, clientKeyFile, hostKey.publicKey)} demo`),
    url: pulumi.interpolate`http://127.0.0.1:${vm.httpPort}/`,
    currentSystem: host.currentSystem,
    layoutHash: layout.hash,
  };
};

/**
 * An SSH client configuration for the installed VM: host alias `demo`, the forwarded port,
 * the client key, and the installed host key pinned (no trust on first use). Returns its path.
 */
function writeSshConfig(stateRoot: string, port: number, identityFile: string, hostPublicKey: string): string {
  const knownHosts = path.join(stateRoot, "known_hosts");
  writeFileSync(knownHosts, `demo ${hostPublicKey.split(" ").slice(0, 2).join(" ")}\n`);
  const config = path.join(stateRoot, "ssh_config");
  writeFileSync(config, [
    "Host demo",
    "  HostName 127.0.0.1",
    `  Port ${port}`,
    "  User root",
    `  IdentityFile ${identityFile}`,
    "  IdentitiesOnly yes",
    `  UserKnownHostsFile ${knownHosts}`,
    "  HostKeyAlias demo",
    "  StrictHostKeyChecking yes",
    "",
  ].join("\n"));
  return config;
}
