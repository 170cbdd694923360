export { activate, type ActivateOptions, type ActivationResult } from "./activate";
export { readHostState, type HostState } from "./host-state";
export { activationArgs, activationScript } from "./activation-script";
export { rebootInto, type RebootOptions } from "./reboot";
