# Replace with db1's own /etc/nixos/configuration.nix (see index.ts).
{ ... }:
{
  networking.hostName = "db1";
  boot.loader.grub.enable = true;
  boot.loader.grub.device = "/dev/sda";
  services.openssh.enable = true;
  services.postgresql.enable = true;
  system.stateVersion = "25.05";
}
