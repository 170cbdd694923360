export { buildOnTarget } from "./build-on-target";
export { copyClosure, type CopyOptions, type CopyResult } from "./copy";
