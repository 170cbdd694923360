// Machines that already run NixOS, adopted: no diskLayout, so nothing is wiped. The first
// `pulumi up` switches each to the declared system (or only records it when it already runs
// it); later ones switch on every change, with rollback.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { NixosHost } from "nixos-pulumi";

const config = new pulumi.Config();
const sshPrivateKey = config.requireSecret("sshPrivateKey");
// e.g. pulumi config set --path 'machines.db1.address' 192.0.2.21, ... .hostKey "ssh-ed25519 AAAA..."
const machines = config.requireObject<Record<string, { address: string; hostKey: string }>>("machines");

export const hosts = Object.entries(machines).map(([name, m]) => {
  const host = new NixosHost(name, {
    connection: { host: m.address, privateKey: sshPrivateKey, hostKey: m.hostKey },
    system: { flake: `.#${name}` },
    switch: { action: "switch", rollback: "magic", confirmTimeoutSeconds: 60 },
  });
  return { name, toplevel: host.toplevel, generation: host.generation, booted: host.bootedSystem };
});

// The deployer's own flake lock, shown next to the hosts (local.Command runs on this machine).
const lock = new command.local.Command("flake-lock", { create: "nix flake metadata --json . | head -c 200" });
export const flake = lock.stdout;
