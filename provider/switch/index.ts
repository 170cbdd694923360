export { activate, type ActivateOptions, type ActivationResult } from "./activate";
export { readHostState, type HostState } from "./host-state";
export { activationScript } from "./activation-script";
export { rebootInto, type RebootOptions } from "./reboot";
