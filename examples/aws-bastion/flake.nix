{
  description = "app: the NixOS system examples/aws-bastion installs";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
  outputs = { nixpkgs, ... }: {
    nixosConfigurations.app = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [
        ./configuration.nix
        # Written by index.ts from the DiskLayout (diskLayoutNixosModule): fileSystems and
        # boot.loader.grub.devices, in place of disko's own module.
        ./disk-layout.nix
      ];
    };
  };
}
