// Machines that already run NixOS, adopted: no diskLayout, so nothing is wiped. The first
// `pulumi up` switches each to the declared system (or only records it when it already runs
// it); later ones switch on every change, with rollback.
//
// Run it (a copy of this directory works the same; adjust nixos-pulumi's path in package.json):
//   (cd ../.. && npm ci && npm run build && npm pack)   # writes ../../nixos-pulumi-0.1.0.tgz
//   npm install
//   mkdir -p hosts/db1 && scp root@192.0.2.21:/etc/nixos/{configuration,hardware-configuration}.nix hosts/db1/
//   pulumi stack init dev
//   pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519
//   pulumi config set --path 'machines.db1.address' 192.0.2.21
//   pulumi config set --path 'machines.db1.hostKey' "$(ssh-keyscan -t ed25519 192.0.2.21 2>/dev/null | cut -d' ' -f2-)"
//   pulumi up
// flake.nix makes nixosConfigurations.<name> of every hosts/<name>/ directory. In a git
// repository, `git add` them: a flake sees only tracked files.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { NixosHost } from "nixos-pulumi";

const config = new pulumi.Config();
const sshPrivateKey = config.requireSecret("sshPrivateKey");
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
// Flakes are enabled for this one command, as the provider does for its own: no nix.conf change.
const lock = new command.local.Command("flake-lock", {
  create: "nix --extra-experimental-features 'nix-command flakes' flake metadata --json . | head -c 200",
});
export const flake = lock.stdout;
