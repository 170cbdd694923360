// The disk layout, in its own module so test/unit/examples.test.ts can render it.
// Nitro instances name the root disk /dev/nvme0n1; BIOS boot through grub's EF02 partition.
export const layoutSpec = {
  disk: {
    root: {
      device: "/dev/nvme0n1",
      content: {
        type: "gpt" as const,
        partitions: {
          boot: { priority: 0, size: "1M", type: "EF02" },
          root: { size: "100%", content: { type: "filesystem" as const, format: "ext4", mountpoint: "/" } },
        },
      },
    },
  },
};
