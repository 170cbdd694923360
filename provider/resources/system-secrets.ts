import * as pulumi from "@pulumi/pulumi";

// A system is evaluated into the Nix store, which every user of the machine (and of the
// deployer) can read: a secret given to it would lie there in plain text. The provider's
// `check` sees inputs with their secrecy stripped (a dynamic provider does not accept
// secrets), so the program finds the secret fields and hands their names to `check`, which
// refuses them before anything is evaluated.

/** The fields of a `system` input (e.g. "system.specialArgs.token") whose value is a secret Output. */
export async function secretSystemFields(system: unknown, at = "system"): Promise<string[]> {
  if (pulumi.Output.isInstance(system)) return (await pulumi.isSecret(system)) ? [at] : [];
  if (system instanceof Promise) return secretSystemFields(await system, at);
  if (Array.isArray(system)) return (await Promise.all(system.map((v, i) => secretSystemFields(v, `${at}[${i}]`)))).flat();
  if (system && typeof system === "object") {
    return (await Promise.all(Object.entries(system).map(([k, v]) => secretSystemFields(v, `${at}.${k}`)))).flat();
  }
  return [];
}

/**
 * The names `check` refuses: the secret fields found, or "system" when the input as a whole
 * is secret in a way the walk cannot see (an Output resolving to objects holding secrets).
 */
export async function refusedSystemFields(system: unknown): Promise<string[]> {
  const fields = await secretSystemFields(system);
  if (fields.length > 0) return fields;
  return (await pulumi.isSecret(pulumi.output(system))) ? ["system"] : [];
}
