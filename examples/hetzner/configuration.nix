# web1's system. The disk layout's part (fileSystems, grub devices) is in ./disk-layout.nix.
{ modulesPath, ... }:
{
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];
  networking.hostName = "web1";
  boot.loader.grub = {
    enable = true;
    efiSupport = true;
    efiInstallAsRemovable = true;
  };
  services.openssh.enable = true;
  users.users.root.openssh.authorizedKeys.keyFiles = [ ./keys/deployer_ed25519.pub ];
  services.nginx.enable = true;
  networking.firewall.allowedTCPPorts = [ 80 ];
  system.stateVersion = "25.05";
}
