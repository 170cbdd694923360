# app's system on EC2. The disk layout's part (fileSystems, grub device) is in ./disk-layout.nix.
{ ... }:
{
  # Nitro instances: NVMe disks, ENA network.
  boot.initrd.availableKernelModules = [ "nvme" "ena" ];
  networking.hostName = "app";
  boot.loader.grub.enable = true;
  services.openssh.enable = true;
  users.users.root.openssh.authorizedKeys.keyFiles = [ ./keys/deployer_ed25519.pub ];
  system.stateVersion = "25.05";
}
