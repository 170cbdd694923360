export { DiskLayout, diskLayoutNixosModule, type DiskLayoutArgs } from "./resources/disk-layout";
export { NixosHost, type NixosHostArgs, type ConnectionArgs } from "./resources/nixos-host";
export { NixosPulumiError, InputError } from "./errors";
