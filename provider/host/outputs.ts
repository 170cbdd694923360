// What NixosHost records next to its inputs, declared once: the engine's and the resource
// class's own keys, what `check` adds, the facts an operation reads from the machine, and the
// provider's bookkeeping. The input check (validate.ts) ignores all of them; the resource
// class declares an output for each fact (test/unit/host-outputs.test.ts).
import type { HostFacts } from "./operations";

/** Added by the engine and the resource class. */
export const ENGINE_KEYS = ["__provider", "__resourceName", "resourceName", "__stack", "stack", "__urn", "__preview", "evaluation"] as const;

/** The disk layout's hashes, which `check` computes from NixosHost.diskLayout. */
export const LAYOUT_HASH_KEYS = ["layoutHash", "layoutFormatHash", "layoutMountHash"] as const;

/** Computed by `check`. */
export const CHECK_OUTPUTS = ["toplevel", "derivation", ...LAYOUT_HASH_KEYS] as const;

/** Read from the machine by an operation or a refresh (HostFacts). */
export const FACT_OUTPUTS = ["currentSystem", "bootedSystem", "generation", "hostKey", "installedHostKey", "kernel", "needsReboot", "keyDrift"] as const satisfies readonly (keyof HostFacts)[];

/** The provider's bookkeeping: the state's version, drift and ownership seen at refresh. */
export const RECORD_OUTPUTS = ["stateVersion", "deployedToplevel", "managedBy"] as const;

export const HOST_OUTPUTS: readonly string[] = [...CHECK_OUTPUTS, ...FACT_OUTPUTS, ...RECORD_OUTPUTS];

// Every HostFacts key is listed (the `satisfies` above checks the other direction).
type Unlisted = Exclude<keyof HostFacts, (typeof FACT_OUTPUTS)[number]>;
export const everyFactListed: [Unlisted] extends [never] ? true : Unlisted = true;
