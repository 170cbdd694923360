// A fleet from one flake sharing one disk layout, kept in a disko file: one DiskLayout resource,
// many hosts. The toplevels are evaluated concurrently while the program runs; `pulumi up
// --parallel N` switches N hosts at a time, and `--continue-on-error` keeps one failure from
// stopping the rest.
//
// Run it (a copy of this directory works the same; adjust nixos-pulumi's path in package.json):
//   (cd ../.. && npm ci && npm run build && npm pack)   # writes ../../nixos-pulumi-0.1.0.tgz
//   npm install
//   for h in web1 web2; do ssh-keygen -t ed25519 -N '' -f keys/${h}_ed25519; done   # host keys
//   ssh-keygen -t ed25519 -N '' -f keys/deployer_ed25519     # your login (or use your own key)
//   curl -LO https://github.com/nix-community/nixos-images/releases/download/nixos-unstable/nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz
//   pulumi stack init dev
//   pulumi config set --secret sshPrivateKey < keys/deployer_ed25519
//   pulumi config set --path 'vms[0].name' web1; pulumi config set --path 'vms[0].address' 203.0.113.10
//   pulumi config set --path 'vms[0].id' vm-1    # what identifies the machine (a new one reinstalls)
//   ... the same for vms[1] (web2)
//   pulumi up
// The machines need a Linux with kexec whose root accepts keys/deployer_ed25519 and whose sshd
// serves keys/<name>_ed25519 (cloud-init's ssh_keys, as in ../hetzner). flake.nix defines the
// systems web1 and web2. In a git repository, `git add` the .nix files and keys/*.pub (never
// the private keys): a flake sees only tracked files.
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import type * as command from "@pulumi/command";
import { DiskLayout, NixosHost, diskLayoutNixosModule } from "nixos-pulumi";

export = async () => {
  const config = new pulumi.Config();
  const sshKey = config.requireSecret("sshPrivateKey");
  // In a real program these come from the VM resources' outputs (server.ipv4Address, server.id).
  const vms = config.requireObject<{ name: string; address: string; id: string }[]>("vms");

  // Your existing disko file; its NixOS side (fileSystems, grub devices) goes to disk-layout.nix,
  // which flake.nix imports for every host.
  fs.writeFileSync("disk-layout.nix", await diskLayoutNixosModule({ diskoFile: "./disk-config.nix" }));
  const layout = new DiskLayout("single-disk", { diskoFile: "./disk-config.nix" });

  return vms.map((vm) => {
    const hostKey = fs.readFileSync(`keys/${vm.name}_ed25519.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
    // One connection object serves @pulumi/command's remote.Command and NixosHost.
    const connection: command.types.input.remote.ConnectionArgs = { host: vm.address, privateKey: sshKey };
    const host = new NixosHost(vm.name, {
      connection: { ...connection, hostKey },
      system: { flake: `.#${vm.name}` },
      diskLayout: layout,
      install: {
        kexecTarball: "./nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz",
        hostKeys: { ed25519: { privateKey: fs.readFileSync(`keys/${vm.name}_ed25519`, "utf8"), publicKey: hostKey } },
      },
      switch: { rollback: "magic", healthChecks: ["systemctl is-active nginx"] },
      reinstallTriggers: { vm: vm.id },
    });
    return { name: vm.name, toplevel: host.toplevel, generation: host.generation };
  });
};
