export { buildToplevel, evalToplevel } from "./toplevel";
export { closureOf, type ClosurePath } from "./closure";
export { copyClosure, missingOnTarget, type CopyOptions, type CopyResult } from "./copy";
