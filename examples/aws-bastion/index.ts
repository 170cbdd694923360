// An EC2 instance in a private subnet, reached through a bastion: the connection's `proxy` is
// the jump host. A @pulumi/command remote.Command runs over the same connection settings.
//
// Run it (a copy of this directory works the same; adjust nixos-pulumi's path in package.json):
//   (cd ../.. && npm ci && npm run build && npm pack)   # writes ../../nixos-pulumi-0.1.0.tgz
//   npm install
//   ssh-keygen -t ed25519 -N '' -f keys/app_ed25519          # the instance's host key, made here
//   ssh-keygen -t ed25519 -N '' -f keys/deployer_ed25519     # your login (or use your own key)
//   curl -LO https://github.com/nix-community/nixos-images/releases/download/nixos-unstable/nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz
//   pulumi stack init dev
//   pulumi config set aws:region eu-central-1
//   pulumi config set sshPublicKey "$(cat keys/deployer_ed25519.pub)"
//   pulumi config set --secret sshPrivateKey < keys/deployer_ed25519
//   pulumi config set bastionHostKey "ssh-ed25519 AAAA..."   # read out of band (console, your records)
//   pulumi config set debianAmi ami-...                       # Debian 12 in your region
//   pulumi config set privateSubnetId subnet-...
//   pulumi up
// The kexec tarball is nixos-images' installer (nixos-anywhere downloads the same, pinned to a
// release tag such as nixos-25.05). In a git repository, `git add` the .nix files and
// keys/*.pub (never the private keys): a flake sees only tracked files.
import * as fs from "node:fs";
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { layoutSpec } from "./layout";
import { DiskLayout, NixosHost, diskLayoutNixosModule, type ConnectionArgs } from "nixos-pulumi";

export = async () => {
  const config = new pulumi.Config();
  const sshPrivateKey = config.requireSecret("sshPrivateKey");
  const bastionHostKey = config.require("bastionHostKey");
  const hostKey = {
    privateKey: fs.readFileSync("keys/app_ed25519", "utf8"), // NixosHost stores install.hostKeys encrypted
    publicKey: fs.readFileSync("keys/app_ed25519.pub", "utf8").trim().split(" ").slice(0, 2).join(" "),
  };

  // What the layout needs from the system (fileSystems, grub devices), imported by flake.nix.
  fs.writeFileSync("disk-layout.nix", await diskLayoutNixosModule(layoutSpec));

  const keyPair = new aws.ec2.KeyPair("deployer", { publicKey: config.require("sshPublicKey") });
  const bastion = aws.ec2.getInstanceOutput({ filters: [{ name: "tag:Name", values: ["bastion"] }] });

  const app = new aws.ec2.Instance("app", {
    ami: config.require("debianAmi"), // any Linux with sshd and kexec; it is replaced by NixOS
    instanceType: "t3.small",
    subnetId: config.require("privateSubnetId"),
    keyName: keyPair.keyName,
    rootBlockDevice: { volumeSize: 20 },
    // Carries the host's private key: a secret, so the state holds it encrypted.
    userData: pulumi.secret(`#cloud-config\nssh_keys:\n  ed25519_private: |\n${hostKey.privateKey.replace(/^/gm, "    ")}\n  ed25519_public: ${hostKey.publicKey}\n`),
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

  const layout = new DiskLayout("app-disk", layoutSpec);
  const host = new NixosHost("app", {
    connection,
    system: { flake: ".#app" },
    diskLayout: layout,
    install: { kexecTarball: "./nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz", hostKeys: { ed25519: hostKey } },
    reinstallTriggers: { instance: app.id },
  });

  // @pulumi/command's remote.Command after the install: root on NixOS, through the bastion.
  const uptime = new command.remote.Command("app-uptime", {
    connection: {
      host: app.privateIp,
      user: "root",
      privateKey: sshPrivateKey,
      proxy: { host: bastion.publicIp, user: "ec2-user", privateKey: sshPrivateKey },
    },
    create: "uptime",
    triggers: [host.toplevel],
  });

  return { appToplevel: host.toplevel, appUptime: uptime.stdout };
};
