export { keysSchema, keyPath, type KeySpec, type KeysSpec, type KeyInput } from "../schema/keys";
export { planKeys, planAllKeys, describeKeyPlan, type KeyPlan, type KeyDrift } from "./plan";
export { applyKeys, hasKeyWork, type KeyPhase } from "./apply";
export { keyDrift } from "./remote";
export { checkedKeys } from "./check";
