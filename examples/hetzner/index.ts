// A Hetzner Cloud server that becomes a NixOS host: the server's id is the reinstall trigger
// (a new server means a fresh install), the disk layout is the nix.dev tutorial's.
//
// Run it (a copy of this directory works the same; adjust nixos-pulumi's path in package.json):
//   (cd ../.. && npm ci && npm run build && npm pack)   # writes ../../nixos-pulumi-0.1.0.tgz
//   npm install
//   ssh-keygen -t ed25519 -N '' -f keys/web1_ed25519         # the server's host key, made here
//   ssh-keygen -t ed25519 -N '' -f keys/deployer_ed25519     # your login (or use your own key)
//   curl -LO https://github.com/nix-community/nixos-images/releases/download/nixos-unstable/nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz
//   pulumi stack init dev
//   pulumi config set hcloud:token --secret <token>
//   pulumi config set sshPublicKey "$(cat keys/deployer_ed25519.pub)"
//   pulumi config set --secret sshPrivateKey < keys/deployer_ed25519
//   pulumi up
// The kexec tarball is nixos-images' installer (the release nixos-anywhere downloads too, which
// pins a tag such as nixos-25.05 in place of nixos-unstable). In a git repository, `git add`
// the .nix files and keys/*.pub (never the private keys): a flake sees only tracked files.
import * as fs from "node:fs";
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import { layoutSpec } from "./layout";
import { DiskLayout, NixosHost, diskLayoutNixosModule } from "nixos-pulumi";

export = async () => {
  const config = new pulumi.Config();
  const sshPrivateKey = config.requireSecret("sshPrivateKey");
  // Pre-generated host key: cloud-init gives it to the server's first boot, the installer keeps
  // it and NixOS gets it, so every connection, the first one included, is pinned to it.
  const hostKey = {
    privateKey: fs.readFileSync("keys/web1_ed25519", "utf8"), // NixosHost stores install.hostKeys encrypted
    publicKey: fs.readFileSync("keys/web1_ed25519.pub", "utf8").trim().split(" ").slice(0, 2).join(" "),
  };

  // What the layout needs from the system (fileSystems, grub devices), imported by flake.nix.
  // Written before the NixosHost below evaluates the flake.
  fs.writeFileSync("disk-layout.nix", await diskLayoutNixosModule(layoutSpec));

  const deployerKey = new hcloud.SshKey("deployer", { publicKey: config.require("sshPublicKey") });
  const server = new hcloud.Server("web1", {
    serverType: "cx22",
    image: "debian-12",
    location: "fsn1",
    sshKeys: [deployerKey.id],
    // The host's private key: a secret, so the state holds it encrypted.
    userData: pulumi.secret(`#cloud-config\nssh_keys:\n  ed25519_private: |\n${hostKey.privateKey.replace(/^/gm, "    ")}\n  ed25519_public: ${hostKey.publicKey}\n`),
  });

  const layout = new DiskLayout("single-disk", layoutSpec);
  const web1 = new NixosHost("web1", {
    connection: { host: server.ipv4Address, privateKey: sshPrivateKey, hostKey: hostKey.publicKey },
    system: { flake: ".#web1" },
    diskLayout: layout,
    install: {
      kexecTarball: "./nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz",
      hostKeys: { ed25519: hostKey },
    },
    switch: { rollback: "magic", healthChecks: ["systemctl is-active nginx"] },
    reinstallTriggers: { server: server.id },
  });

  return {
    address: server.ipv4Address,
    toplevel: web1.toplevel,
    ssh: pulumi.interpolate`ssh -i keys/deployer_ed25519 root@${server.ipv4Address}`,
  };
};
