export { DiskLayout, type DiskLayoutArgs } from "./resources/disk-layout";
export { NixosPulumiError, InputError } from "./errors";
