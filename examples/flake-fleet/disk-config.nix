# The fleet's disk layout in disko's format (the nix.dev tutorial's single disk), read by
# DiskLayout({ diskoFile }) in index.ts.
{
  disko.devices = {
    disk.main = {
      device = "/dev/sda";
      type = "disk";
      content = {
        type = "gpt";
        partitions = {
          MBR = { priority = 0; size = "1M"; type = "EF02"; };
          ESP = {
            priority = 1;
            size = "500M";
            type = "EF00";
            content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; };
          };
          root = {
            priority = 2;
            size = "100%";
            content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; };
          };
        };
      };
    };
  };
}
