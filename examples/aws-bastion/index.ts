// An EC2 instance in a private subnet, reached through a bastion: the connection's `proxy` is
// the jump host. The same connection object drives a @pulumi/command remote.Command.
import * as fs from "node:fs";
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { DiskLayout, NixosHost, type ConnectionArgs } from "nixos-pulumi";

const config = new pulumi.Config();
const sshPrivateKey = config.requireSecret("sshPrivateKey");
const bastionHostKey = config.require("bastionHostKey"); // "ssh-ed25519 AAAA...", checked out of band
const hostKey = {
  privateKey: fs.readFileSync("keys/app_ed25519", "utf8"),
  publicKey: fs.readFileSync("keys/app_ed25519.pub", "utf8").trim().split(" ").slice(0, 2).join(" "),
};

const keyPair = new aws.ec2.KeyPair("deployer", { publicKey: config.require("sshPublicKey") });
const bastion = aws.ec2.getInstanceOutput({ filters: [{ name: "tag:Name", values: ["bastion"] }] });

const app = new aws.ec2.Instance("app", {
  ami: config.require("debianAmi"), // any Linux with sshd and kexec; it is replaced by NixOS
  instanceType: "t3.small",
  subnetId: config.require("privateSubnetId"),
  keyName: keyPair.keyName,
  rootBlockDevice: { volumeSize: 20 },
  userData: `#cloud-config\nssh_keys:\n  ed25519_private: |\n${hostKey.privateKey.replace(/^/gm, "    ")}\n  ed25519_public: ${hostKey.publicKey}\n`,
  tags: { Name: "app" },
});

const connection: ConnectionArgs = {
  host: app.privateIp,
  user: "admin", // Debian's AMI user; NixOS is installed through sudo
  sudo: true,
  privateKey: sshPrivateKey,
  hostKey: hostKey.publicKey,
  proxy: { host: bastion.publicIp, user: "ec2-user", privateKey: sshPrivateKey, hostKey: bastionHostKey },
};

// Nitro instances name the root disk /dev/nvme0n1.
const layout = new DiskLayout("app-disk", {
  disk: {
    root: {
      device: "/dev/nvme0n1",
      content: {
        type: "gpt",
        partitions: {
          boot: { priority: 0, size: "1M", type: "EF02" },
          root: { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } },
        },
      },
    },
  },
});

const host = new NixosHost("app", {
  connection,
  system: { flake: ".#app" },
  diskLayout: layout,
  install: { kexecTarball: "./nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz", hostKeys: { ed25519: hostKey } },
  reinstallTriggers: { instance: app.id },
});

// @pulumi/command's remote.Command takes the same connection (after the install: root on NixOS).
const uptime = new command.remote.Command("app-uptime", {
  connection: { ...connection, user: "root" },
  create: "uptime",
  triggers: [host.toplevel],
});

export const appToplevel = host.toplevel;
export const appUptime = uptime.stdout;
