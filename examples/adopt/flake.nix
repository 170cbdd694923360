{
  description = "Machines adopted by examples/adopt: one nixosConfigurations.<name> per hosts/<name>/";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
  outputs = { nixpkgs, ... }:
    let
      names = builtins.attrNames (nixpkgs.lib.filterAttrs (_: type: type == "directory") (builtins.readDir ./hosts));
      host = name: nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        # The machine's own files, copied from its /etc/nixos: its fileSystems stay as they are.
        modules = [ ./hosts/${name}/configuration.nix ./hosts/${name}/hardware-configuration.nix ];
      };
    in {
      nixosConfigurations = nixpkgs.lib.genAttrs names host;
    };
}
