// The disk layout, in its own module so test/unit/examples.test.ts can render it.
export const layoutSpec = {
  disk: {
    main: {
      device: "/dev/sda",
      content: {
        type: "gpt" as const,
        partitions: {
          MBR: { priority: 0, size: "1M", type: "EF02" },
          ESP: { priority: 1, size: "500M", type: "EF00", content: { type: "filesystem" as const, format: "vfat", mountpoint: "/boot" } },
          root: { priority: 2, size: "100%", content: { type: "filesystem" as const, format: "ext4", mountpoint: "/" } },
        },
      },
    },
  },
};
