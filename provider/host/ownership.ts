// Two stacks must not both manage one machine: the deploy lock only serialises them, and the
// last writer would win silently. A stack changes a machine only when the machine's owner
// record names it (or names nobody), or when its `takeOver` input names the recorded owner.
import { NixosPulumiError } from "../errors";
import { parseOwner, type HostOwner } from "../switch/owner-record";

export type { HostOwner } from "../switch/owner-record";

/** Who manages the machine if not `us` (undefined: nobody else, or `us`). */
export function otherOwner(recordLine: string, us: HostOwner | undefined): HostOwner | undefined {
  const recorded = parseOwner(recordLine);
  if (!recorded || !us) return undefined;
  if (recorded.resource && us.resource) return recorded.resource === us.resource ? undefined : recorded;
  return recorded.stack === us.stack ? undefined : recorded;
}

/** The value of `takeOver` that names `owner`: its stack, or its URN when it is a resource of our own stack. */
export function takeOverValue(owner: HostOwner, us: HostOwner | undefined): string {
  return us && owner.stack === us.stack && owner.resource ? owner.resource : owner.stack;
}

export function describeOwner(owner: HostOwner): string {
  return owner.resource ? `stack ${owner.stack} (resource ${owner.resource})` : `stack ${owner.stack}`;
}

/**
 * Before anything changes on the machine: refuses when another stack or resource manages
 * it and `takeOver` does not name that one. Returns the owner being taken over, if any.
 */
export function ensureMayManage(recordLine: string, us: HostOwner | undefined, takeOver: string | undefined, host: string): HostOwner | undefined {
  const other = otherOwner(recordLine, us);
  if (!other || !us) return undefined;
  if (takeOver !== undefined && (takeOver === other.stack || (other.resource !== "" && takeOver === other.resource))) return other;
  const value = takeOverValue(other, us);
  throw new NixosPulumiError(`this machine is managed by ${describeOwner(other)}; ${describeOwner(us)} changed nothing on it`, {
    step: "ownership",
    host,
    hint:
      `to move the machine to this stack on purpose, set takeOver: ${JSON.stringify(value)} on this NixosHost and run up again ` +
      `(${other.stack} then refuses to change it and says so at its next refresh)` +
      (takeOver !== undefined ? `; takeOver is ${JSON.stringify(takeOver)}, which names another stack` : "") +
      "; otherwise point connection at another machine",
  });
}
