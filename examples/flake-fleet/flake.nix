{
  description = "The fleet examples/flake-fleet installs: web1 and web2, one system each";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
  outputs = { nixpkgs, ... }:
    let
      host = name: nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          ./configuration.nix
          # Written by index.ts from disk-config.nix (diskLayoutNixosModule): fileSystems and
          # boot.loader.grub.devices, in place of disko's own module.
          ./disk-layout.nix
          { networking.hostName = name; }
        ];
      };
    in {
      nixosConfigurations = nixpkgs.lib.genAttrs [ "web1" "web2" ] host;
    };
}
