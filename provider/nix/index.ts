export { buildToplevel, derivationOf, evalToplevel, evaluateSystem, type Evaluation } from "./toplevel";
export { acceptEvaluation, evaluateInProgram, rememberChecked, type EvaluationInput } from "./evaluation-input";
export { buildOnTarget } from "./build-on-target";
export { closureOf, type ClosurePath, type PathInfo } from "./closure";
export { copyClosure, type CopyOptions, type CopyResult } from "./copy";
