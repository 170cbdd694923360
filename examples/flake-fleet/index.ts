// A fleet from one flake sharing one disk layout: one DiskLayout resource, many hosts. The
// toplevels are evaluated concurrently while the program runs; `pulumi up --parallel N` switches
// N hosts at a time, and `--continue-on-error` keeps one failure from stopping the rest.
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import type * as command from "@pulumi/command";
import { DiskLayout, NixosHost } from "nixos-pulumi";

const config = new pulumi.Config();
const sshKey = config.requireSecret("sshPrivateKey");
// e.g. `pulumi config set --path 'vms[0].address' 203.0.113.10`; in a real program these come
// from the VM resources' outputs (server.ipv4Address, server.id).
const vms = config.requireObject<{ name: string; address: string; id: string; hostKey: string }[]>("vms");

// The nix.dev tutorial's layout, or your existing disko file: new DiskLayout("x", { diskoFile: "./disk-config.nix" }).
const layout = new DiskLayout("single-disk", {
  disk: {
    main: {
      device: "/dev/sda",
      content: {
        type: "gpt",
        partitions: {
          MBR: { priority: 0, size: "1M", type: "EF02" },
          ESP: { priority: 1, size: "500M", type: "EF00", content: { type: "filesystem", format: "vfat", mountpoint: "/boot" } },
          root: { priority: 2, size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } },
        },
      },
    },
  },
});

export const hosts = vms.map((vm) => {
  // One connection object serves @pulumi/command's remote.Command and NixosHost.
  const connection: command.types.input.remote.ConnectionArgs = { host: vm.address, privateKey: sshKey, hostKey: vm.hostKey };
  const host = new NixosHost(vm.name, {
    connection,
    system: { flake: `.#${vm.name}` },
    diskLayout: layout,
    install: {
      kexecTarball: "./nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz",
      hostKeys: { ed25519: { privateKey: fs.readFileSync(`keys/${vm.name}_ed25519`, "utf8"), publicKey: vm.hostKey } },
    },
    switch: { rollback: "magic", healthChecks: ["systemctl is-active nginx"] },
    reinstallTriggers: { vm: vm.id },
  });
  return { name: vm.name, toplevel: host.toplevel, generation: host.generation };
});
