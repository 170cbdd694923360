import type * as pulumi from "@pulumi/pulumi";
import { diffHost, explainHostDiff } from "../host/diff";
import { hostInputIssues, parseHostInputs } from "../host/validate";
import type { HostFacts } from "../host/operations";
import type { RenderedLayout } from "../disk";
import { checkFailures, InputError } from "../errors";
import { expressionArgIssues } from "../nix/function-args";
import type { NixosHostSpec } from "../schema/nixos-host";
import { acceptEvaluation, rememberChecked } from "../nix/evaluation-input";
import { evaluateSystem } from "../nix/toplevel";
import { progressFor } from "../progress";
import { systemSchema } from "../schema/nixos-host";
import { containsUnknown, UNKNOWN } from "../util/unknown";
import { migrateHostState, NIXOS_HOST_STATE_VERSION } from "./nixos-host-state";
import { describeOwner, otherOwner, type HostOwner } from "../host/ownership";
import { LAYOUT_HASH_KEYS } from "../host/outputs";

// Loaded when first used: a no-op preview of hosts without a disk layout runs only `check`
// and `diff`, and the provider process Pulumi starts for it should not load the disk,
// install, switch and copy code (bench/fleet.ts, preview).
const layout = (): typeof import("../host/layout") => require("../host/layout");
const operations = (): typeof import("../host/operations") => require("../host/operations");
const createPlan = (): typeof import("../host/create-plan") => require("../host/create-plan");
const systemChangesOf = (): typeof import("../host/system-changes") => require("../host/system-changes");
const keysOf = (): typeof import("../keys") => require("../keys");

export { NIXOS_HOST_STATE_VERSION };

type Props = Record<string, unknown>;


/**
 * Validates inputs and computes what the engine diffs on: the toplevel and layout hash.
 * Bad input comes back as check failures (one line per field, printed once by the engine).
 */
export async function check(olds: Props, news: Props): Promise<pulumi.dynamic.CheckResult> {
  const inputs: Props = { ...news };
  for (const key of LAYOUT_HASH_KEYS) delete inputs[key];
  delete inputs["__preview"];
  let rendered: RenderedLayout | undefined;
  // The program hands in its evaluation (see NixosHost's constructor); evaluate here only
  // when it did not (a failed or skipped evaluation there, or another program).
  delete inputs["evaluation"];
  delete inputs["derivation"];
  delete inputs["toplevel"];
  try {
    refuseSecretSystem(news["evaluation"]);
    const issues = hostInputIssues(news);
    if (issues.length > 0) throw new InputError("NixosHost", issues);
    if (news["diskLayout"] !== undefined) {
      if (containsUnknown(news["diskLayout"])) for (const key of LAYOUT_HASH_KEYS) inputs[key] = news["diskLayout"];
      else {
        const checked = await layout().hostLayout(news["diskLayout"], containsUnknown(news["system"]) ? undefined : systemSchema.parse(news["system"]));
        Object.assign(inputs, checked.hashes);
        rendered = checked.rendered;
      }
    }
    if (news["keys"] !== undefined) inputs["keys"] = keysOf().checkedKeys(news["keys"]);
    // A value the program learns only from a resource not created yet: the system, and
    // with it the toplevel, is known when `up` gets there.
    if (containsUnknown(news["system"])) inputs["toplevel"] = UNKNOWN;
    else {
      const system = systemSchema.parse(news["system"]);
      if ("expression" in system) {
        const argIssues = await expressionArgIssues(system.expression);
        if (argIssues.length > 0) throw new InputError("NixosHost", argIssues);
      }
      const evaluation = acceptEvaluation(system, news["evaluation"]) ?? (await evaluateSystem(system));
      inputs["toplevel"] = evaluation.toplevel;
      if (evaluation.derivation) inputs["derivation"] = evaluation.derivation;
    }
  } catch (err) {
    return { inputs, failures: checkFailures(err) };
  }
  // A create is the check without old inputs. The engine calls check again in the update
  // that follows a preview, which the program marks as not a dry run: printed once.
  if (Object.keys(olds).length === 0 && news["__preview"] === true) {
    for (const line of createPlan().explainHostCreate(inputs, rendered)) process.stderr.write(`${nameOf(news)}: ${line}\n`);
  }
  return { inputs };
}

/** Secret fields of `system` the program found (see system-secrets.ts): refused, never evaluated. */
function refuseSecretSystem(evaluation: unknown): void {
  const fields = (evaluation as { secretFields?: unknown } | undefined)?.secretFields;
  if (!Array.isArray(fields) || fields.length === 0) return;
  throw new InputError("NixosHost", fields.map((field) => ({
    path: String(field),
    message: "is a secret, and the system is evaluated into the Nix store, readable by every user of the machine: " +
      "give the machine secrets as files with the `keys` input (or install.extraFiles), outside the store, and pass the system only their paths",
  })));
}

/** The engine's verdict, and what it means for the machine, printed with the preview. */
export async function diff(_id: string, recorded: Props, news: Props): Promise<pulumi.dynamic.DiffResult> {
  const olds = await migrateHostState(recorded);
  let result = diffHost(olds, news);
  const lines = explainHostDiff(olds, news, result);
  const before = olds["toplevel"];
  const after = news["toplevel"];
  if (result.changes && (result.replaces ?? []).length === 0 && typeof before === "string" && typeof after === "string" && before !== after && !containsUnknown(after)) {
    const { systemChanges } = systemChangesOf();
    lines.push(...(await systemChanges(before, after).catch((err: Error) => [`(cannot tell what changes inside: ${err.message.split("\n")[0]})`])));
  }
  if ((result.replaces ?? []).length === 0) {
    const { planKeys, describeKeyPlan } = keysOf();
    const keys = planKeys(olds["keys"], news["keys"], olds["keyDrift"]);
    if (keys.changed) result = { ...result, changes: true };
    lines.push(...describeKeyPlan(keys, containsUnknown(after) || before !== after));
  }
  const name = nameOf(news, olds);
  for (const line of lines) process.stderr.write(`${name}: ${line}\n`);
  return result;
}

export async function create(inputs: Props): Promise<pulumi.dynamic.CreateResult> {
  const spec = parseHostInputs(inputs);
  const progress = progressFor(nameOf(inputs));
  const toplevel = String(inputs["toplevel"]);
  rememberChecked(spec.system, toplevel, inputs["derivation"]);
  const { adoptHost, installHost } = operations();
  const owner = ownerOf(inputs);
  const facts = spec.diskLayout || spec.install
    ? await installHost(spec, toplevel, progress, deployer(inputs), owner)
    : await adoptHost(spec, toplevel, progress, deployer(inputs), owner);
  return { id: `${spec.connection.host}:${spec.connection.port}`, outs: outputs(inputs, facts) };
}

export async function update(_id: string, recorded: Props, news: Props): Promise<pulumi.dynamic.UpdateResult> {
  const olds = await migrateHostState(recorded);
  const declared = parseHostInputs(news);
  const spec = pinInstalledSystem(declared, olds);
  const progress = progressFor(nameOf(news, olds));
  const toplevel = String(news["toplevel"]);
  rememberChecked(spec.system, toplevel, news["derivation"]);
  const pinned = typeof olds["hostKey"] === "string" && olds["hostKey"] ? olds["hostKey"] : undefined;
  const owner = ownerOf(news);
  const keys = keysOf().planKeys(olds["keys"], spec.keys, olds["keyDrift"]);
  if (olds["toplevel"] === toplevel) {
    // Nothing to switch. A new address or host key is proven with a handshake now, so a
    // wrong value fails here, not at the next switch; nothing runs on the machine.
    let hostKey = pinned;
    if (reachChanged(olds, declared)) hostKey = await operations().verifyReach(spec, pinned, progress);
    // Another stack manages the machine (seen at refresh), or takeOver asks for it: the
    // machine's own record decides, under the deploy lock; nothing else runs on it.
    if (owner && (typeof olds["managedBy"] === "string" || (spec.takeOver !== undefined && spec.takeOver !== olds["takeOver"]))) {
      await operations().claimHost(spec, hostKey, progress, deployer(news), owner);
    }
    // Keys alone: written and removed; the system is not activated again.
    if (keysOf().hasKeyWork(keys)) hostKey = await operations().updateKeys(spec, keys, hostKey, progress, deployer(news), owner);
    return { outs: outputs(news, { ...factsFromOutputs(olds), ...(hostKey ? { hostKey } : {}) }) };
  }
  const facts = await operations().switchHost(spec, toplevel, pinned, progress, { who: deployer(news), owner, keys });
  return { outs: outputs(news, { ...installedKeyOf(olds), ...facts }) };
}

/** Refresh: what the machine runs now. A host switched by hand shows up as a changed toplevel. */
export async function read(id: string, recorded: Props): Promise<pulumi.dynamic.ReadResult> {
  const props = await migrateHostState(recorded);
  const spec = pinInstalledSystem(parseHostInputs(props), props);
  const pinned = typeof props["hostKey"] === "string" ? props["hostKey"] : undefined;
  const { converged, owner, ...facts } = await operations().readHost(spec, String(props["toplevel"] ?? ""), pinned);
  const out: Props = { ...outputs(props, facts), toplevel: converged || props["toplevel"] };
  const deployed = props["deployedToplevel"] ?? props["toplevel"];
  if (converged && converged !== deployed) out["deployedToplevel"] = deployed;
  else delete out["deployedToplevel"];
  if (!facts.keyDrift) delete out["keyDrift"];
  const other = otherOwner(owner, ownerOf(props));
  if (other) {
    out["managedBy"] = describeOwner(other);
    process.stderr.write(`${nameOf(props)}: this machine is now managed by ${describeOwner(other)}, which took it over; the next update of this stack refuses and changes nothing on it\n`);
  } else {
    delete out["managedBy"];
  }
  return { id, props: out };
}

/** Who this resource is, as the machine's owner record names its manager (state before __urn: the stack alone). */
function ownerOf(props: Props): HostOwner | undefined {
  const stack = props["__stack"];
  if (typeof stack !== "string" || !stack) return undefined;
  return { stack, resource: typeof props["__urn"] === "string" ? props["__urn"] : "" };
}

/** Who deploys, as the deploy lock names it to a second deployer of the same machine. */
function deployer(inputs: Props): string {
  return `stack ${String(inputs["__stack"] ?? inputs["stack"] ?? "?")}, resource ${nameOf(inputs)}`;
}

/** Forgetting a host never wipes or stops it. */
export async function remove(id: string, props: Props): Promise<void> {
  process.stderr.write(`${nameOf(props)}: forgotten; the machine ${id} was left running ${String(props["currentSystem"] || props["toplevel"] || "")} (nothing was wiped or stopped)\n`);
}

/** The resource's name for progress lines (state written before `__resourceName` had `resourceName`). */
function nameOf(...props: Props[]): string {
  for (const p of props) {
    const name = p["__resourceName"] ?? p["resourceName"];
    if (typeof name === "string" && name) return name;
  }
  const connection = props[0]?.["connection"] as { host?: unknown } | undefined;
  return String(connection?.host ?? "NixosHost");
}

function reachChanged(olds: Props, spec: NixosHostSpec): boolean {
  const before = (olds["connection"] ?? {}) as { host?: unknown; port?: unknown; hostKey?: unknown };
  return before.host !== spec.connection.host || (before.port ?? 22) !== spec.connection.port || (before.hostKey ?? undefined) !== spec.connection.hostKey;
}

/**
 * After an install, connection.hostKey (the key of the machine before it was installed)
 * gives way to the key recorded in the state (the installed system's, verified after the
 * reboot), until the user changes connection.hostKey.
 */
function pinInstalledSystem(spec: NixosHostSpec, olds: Props): NixosHostSpec {
  const before = ((olds["connection"] ?? {}) as { hostKey?: unknown }).hostKey;
  const recorded = olds["hostKey"];
  if (typeof olds["installedHostKey"] !== "string" || typeof recorded !== "string" || !recorded) return spec;
  if (spec.connection.hostKey === undefined || before !== spec.connection.hostKey || spec.connection.hostKey === recorded) return spec;
  return { ...spec, connection: { ...spec.connection, hostKey: undefined } };
}

function installedKeyOf(olds: Props): Props {
  return typeof olds["installedHostKey"] === "string" ? { installedHostKey: olds["installedHostKey"] } : {};
}

function outputs(inputs: Props, facts: HostFacts): Props {
  const out: Props = { ...inputs, ...facts, stateVersion: NIXOS_HOST_STATE_VERSION };
  for (const key of Object.keys(out)) if (out[key] === undefined) delete out[key];
  return out;
}

function factsFromOutputs(olds: Props): HostFacts {
  return {
    currentSystem: String(olds["currentSystem"] ?? ""),
    bootedSystem: String(olds["bootedSystem"] ?? ""),
    generation: Number(olds["generation"] ?? 0),
    hostKey: String(olds["hostKey"] ?? ""),
    kernel: String(olds["kernel"] ?? ""),
    needsReboot: olds["needsReboot"] === true,
    ...installedKeyOf(olds),
  };
}
