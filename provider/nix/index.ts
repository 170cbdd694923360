export { buildToplevel, derivationOf, evalToplevel, evaluateSystem, type Evaluation } from "./toplevel";
export { acceptEvaluation, evaluateInProgram, rememberChecked, type EvaluationInput } from "./evaluation-input";
export { closureOf, type ClosurePath, type PathInfo } from "./closure";
