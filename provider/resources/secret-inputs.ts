import * as pulumi from "@pulumi/pulumi";

// Inputs that hold secrets are wrapped in pulumi.secret() before they reach the engine, so
// the state stores them encrypted whatever the user passed. Plain objects keep their other
// fields readable in `pulumi preview`; an object that is itself an Output becomes secret whole.

const CONNECTION_SECRETS = ["privateKey", "privateKeyPassword", "password", "sudoPassword"] as const;

type Obj = Record<string, unknown>;

function markFields(value: Obj, fields: readonly string[], nested: (v: Obj) => Obj = (v) => v): Obj {
  const out: Obj = { ...value };
  for (const field of fields) {
    if (out[field] !== undefined) out[field] = pulumi.secret(out[field]);
  }
  return nested(out);
}

function mark<T>(input: pulumi.Input<T>, apply: (v: Obj) => Obj): pulumi.Input<T> {
  if (pulumi.Output.isInstance(input) || input instanceof Promise) {
    return pulumi.secret(pulumi.output(input)) as pulumi.Input<T>;
  }
  return apply(input as Obj) as pulumi.Input<T>;
}

export function markConnectionSecrets<T>(connection: pulumi.Input<T>): pulumi.Input<T> {
  return mark(connection, (c) =>
    markFields(c, CONNECTION_SECRETS, (v) => (v["proxy"] === undefined ? v : { ...v, proxy: markConnectionSecrets(v["proxy"]) })),
  );
}

export function markInstallSecrets<T>(install: pulumi.Input<T>): pulumi.Input<T> {
  return mark(install, (i) => {
    const out: Obj = { ...i };
    if (out["hostKeys"] !== undefined) out["hostKeys"] = pulumi.secret(out["hostKeys"]);
    if (out["extraFiles"] !== undefined) out["extraFiles"] = pulumi.secret(out["extraFiles"]);
    if (out["diskKeys"] !== undefined) out["diskKeys"] = pulumi.secret(out["diskKeys"]);
    return out;
  });
}

/**
 * Each key's entry secret whole (content, and the digest check adds next to it); names stay
 * readable so the preview can say which keys change.
 */
export function markKeySecrets<T>(keys: pulumi.Input<T>): pulumi.Input<T> {
  return mark(keys, (k) => Object.fromEntries(Object.entries(k).map(([name, key]) => [name, pulumi.secret(key)])));
}
