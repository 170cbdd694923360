import type * as pulumi from "@pulumi/pulumi";
import { diffHost } from "../host/diff";
import { hostLayoutHash } from "../host/layout";
import { checkKnownFields, parseHostInputs } from "../host/validate";
import { adoptHost, installHost, readHost, switchHost, type HostFacts } from "../host/operations";
import { acceptEvaluation, evaluateSystem, rememberChecked } from "../nix";
import { progressFor } from "../progress";
import { systemSchema } from "../schema/nixos-host";
import { containsUnknown } from "../util/unknown";

/** Bump when the shape of the outputs changes; `read`/`update` migrate older state. */
export const NIXOS_HOST_STATE_VERSION = 1;

type Props = Record<string, unknown>;

/** Validates inputs and computes what the engine diffs on: the toplevel and layout hash. */
export async function check(_olds: Props, news: Props): Promise<pulumi.dynamic.CheckResult> {
  checkKnownFields(news);
  const inputs: Props = { ...news };
  const known = !containsUnknown(news);
  const spec = known ? parseHostInputs(news) : undefined;
  delete inputs["layoutHash"];
  if (news["diskLayout"] !== undefined) inputs["layoutHash"] = containsUnknown(news["diskLayout"]) ? news["diskLayout"] : await hostLayoutHash(news["diskLayout"]);
  // The program hands in its evaluation (see NixosHost's constructor); evaluate here only
  // when it did not (a failed or skipped evaluation there, or another program).
  delete inputs["evaluation"];
  delete inputs["derivation"];
  if (!containsUnknown(news["system"])) {
    const system = spec?.system ?? systemSchema.parse(news["system"]);
    const evaluation = acceptEvaluation(system, news["evaluation"]) ?? (await evaluateSystem(system));
    inputs["toplevel"] = evaluation.toplevel;
    if (evaluation.derivation) inputs["derivation"] = evaluation.derivation;
  }
  return { inputs };
}

export async function diff(_id: string, olds: Props, news: Props): Promise<pulumi.dynamic.DiffResult> {
  return diffHost(olds, news);
}

export async function create(inputs: Props): Promise<pulumi.dynamic.CreateResult> {
  const spec = parseHostInputs(inputs);
  const progress = progressFor(String(inputs["resourceName"] ?? spec.connection.host));
  const toplevel = String(inputs["toplevel"]);
  rememberChecked(spec.system, toplevel, inputs["derivation"]);
  const facts = spec.diskLayout || spec.install
    ? await installHost(spec, toplevel, progress, deployer(inputs))
    : await adoptHost(spec, toplevel, progress, deployer(inputs));
  return { id: `${spec.connection.host}:${spec.connection.port}`, outs: outputs(inputs, facts) };
}

export async function update(_id: string, olds: Props, news: Props): Promise<pulumi.dynamic.UpdateResult> {
  const spec = parseHostInputs(news);
  const progress = progressFor(String(news["resourceName"] ?? spec.connection.host));
  const toplevel = String(news["toplevel"]);
  rememberChecked(spec.system, toplevel, news["derivation"]);
  const pinned = typeof olds["hostKey"] === "string" ? olds["hostKey"] : undefined;
  if (olds["toplevel"] === toplevel && olds["stateVersion"] === NIXOS_HOST_STATE_VERSION) {
    // Only how we connect (or switch settings for next time) changed: nothing runs on the machine.
    return { outs: outputs(news, factsFromOutputs(olds)) };
  }
  const facts = await switchHost(spec, toplevel, pinned, progress, { who: deployer(news) });
  return { outs: outputs(news, facts) };
}

/** Refresh: what the machine runs now. A host switched by hand shows up as a changed toplevel. */
export async function read(id: string, props: Props): Promise<pulumi.dynamic.ReadResult> {
  const spec = parseHostInputs(props);
  const pinned = typeof props["hostKey"] === "string" ? props["hostKey"] : undefined;
  const facts = await readHost(spec, pinned);
  return { id, props: { ...outputs(props, facts), toplevel: facts.currentSystem || props["toplevel"] } };
}

/** Who deploys, as the deploy lock names it to a second deployer of the same machine. */
function deployer(inputs: Props): string {
  return `stack ${String(inputs["stack"] ?? "?")}, resource ${String(inputs["resourceName"] ?? "?")}`;
}

/** Forgetting a host never wipes or stops it. */
export async function remove(_id: string, _props: Props): Promise<void> {}

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
  };
}
