// A Hetzner Cloud server that becomes a NixOS host: the server's id is the reinstall trigger
// (a new server means a fresh install), the disk layout is the nix.dev tutorial's.
import * as fs from "node:fs";
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import { DiskLayout, NixosHost } from "nixos-pulumi";

const config = new pulumi.Config();
const sshPrivateKey = config.requireSecret("sshPrivateKey");
// Pre-generated host key (ssh-keygen -t ed25519 -N '' -f keys/web1_ed25519): cloud-init gives it
// to the server's first boot, the installer keeps it and NixOS gets it, so every connection,
// the first one included, is pinned to it.
const hostKey = {
  privateKey: fs.readFileSync("keys/web1_ed25519", "utf8"),
  publicKey: fs.readFileSync("keys/web1_ed25519.pub", "utf8").trim().split(" ").slice(0, 2).join(" "),
};

const deployerKey = new hcloud.SshKey("deployer", { publicKey: config.require("sshPublicKey") });

const server = new hcloud.Server("web1", {
  serverType: "cx22",
  image: "debian-12",
  location: "fsn1",
  sshKeys: [deployerKey.id],
  userData: pulumi.secret(
    `#cloud-config\nssh_keys:\n  ed25519_private: |\n${hostKey.privateKey.replace(/^/gm, "    ")}\n  ed25519_public: ${hostKey.publicKey}\n`,
  ),
});

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

const web1 = new NixosHost("web1", {
  connection: { host: server.ipv4Address, privateKey: sshPrivateKey, hostKey: hostKey.publicKey },
  system: { flake: ".#web1" }, // nixosConfigurations.web1 imports the layout's NixOS module
  diskLayout: layout,
  install: {
    kexecTarball: "./nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz",
    hostKeys: { ed25519: hostKey },
  },
  switch: { rollback: "magic", healthChecks: ["systemctl is-active nginx"] },
  reinstallTriggers: { server: server.id },
});

export const address = server.ipv4Address;
export const toplevel = web1.toplevel;
export const ssh = pulumi.interpolate`ssh root@${server.ipv4Address}`;
