export { buildToplevel, derivationOf, evalToplevel } from "./toplevel";
export { buildOnTarget } from "./build-on-target";
export { closureOf, type ClosurePath } from "./closure";
export { copyClosure, missingOnTarget, type CopyOptions, type CopyResult } from "./copy";
