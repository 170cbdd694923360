// The root Pulumi.yaml program (`npm run up`). It declares the nix.dev tutorial's disk layout.
import { DiskLayout } from "nixos-pulumi";

const layout = new DiskLayout("single-disk", {
  disk: {
    main: {
      device: "/dev/vda",
      content: {
        type: "gpt",
        partitions: {
          MBR: { priority: 0, size: "1M", type: "EF02" },
          ESP: { priority: 1, size: "500M", type: "EF00", content: { type: "filesystem", format: "vfat", mountpoint: "/boot" } },
          root: { priority: 2, size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } },
        },
      },
    },
  },
});

export const layoutHash = layout.hash;
