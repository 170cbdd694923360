import type * as pulumi from "@pulumi/pulumi";

/**
 * A dynamic provider whose methods load `implementation` (a module path by package name,
 * e.g. "nixos-pulumi/dist/provider/resources/nixos-host-impl") at call time. Pulumi stores
 * this object in the state: it serializes to these few lines and that one string, so the
 * provider process resolves the code from the program's node_modules.
 */
export function serializedProvider(implementation: string): pulumi.dynamic.ResourceProvider {
  return {
    async check(olds, news) {
      return require(implementation).check(olds, news);
    },
    async diff(id, olds, news) {
      return require(implementation).diff(id, olds, news);
    },
    async create(inputs) {
      return require(implementation).create(inputs);
    },
    async update(id, olds, news) {
      return require(implementation).update(id, olds, news);
    },
    async read(id, props) {
      const impl = require(implementation);
      return impl.read ? impl.read(id, props) : { id, props };
    },
    async delete(id, props) {
      const impl = require(implementation);
      if (impl.remove) await impl.remove(id, props);
    },
  };
}
