# Replace with db1's own /etc/nixos/hardware-configuration.nix (nixos-generate-config wrote it).
{ ... }:
{
  boot.initrd.availableKernelModules = [ "ata_piix" "virtio_pci" "virtio_scsi" "sd_mod" ];
  fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; };
}
