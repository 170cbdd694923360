// The README's table of inputs says each default as the schema declares it: the values come
// from parsing an input that leaves every optional field out.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { README } from "../harness/readme";
import { installSchema, nixosHostSchema } from "../../provider/schema/nixos-host";
import { keysSchema } from "../../provider/schema/keys";

const table = readFileSync(README, "utf8").split("\n").filter((l) => l.startsWith("| `") || l.startsWith("| other `connection`"));
const row = (input: string) => {
  const found = table.find((l) => l.startsWith(`| \`${input}\``) || (input === "other" && l.startsWith("| other `connection`")));
  assert.ok(found, `the README's input table has a row for ${input}`);
  return found.split("|")[2]!;
};

test("the README's defaults table says what the schema defaults to", () => {
  const d = nixosHostSchema.parse({ connection: { host: "192.0.2.1" }, system: { storePath: "/nix/store/00000000000000000000000000000000-nixos-system-x-1" } });
  const install = installSchema.parse({});
  assert.match(row("connection.host"), new RegExp(`port ${d.connection.port}\\b`));
  assert.match(row("other"), new RegExp(`user "${d.connection.user}", no sudo`));
  assert.ok(!d.connection.sudo);
  assert.match(row("install"), new RegExp(`phases ${install.phases.join(", ")}; kexec ${install.timeouts.kexecSeconds} s, reboot ${install.timeouts.rebootSeconds} s`));
  const s = d.switch;
  assert.deepEqual(s.healthChecks, []);
  assert.match(row("switch"), new RegExp(`${s.action}, ${s.rollback}, confirm ${s.confirmTimeoutSeconds} s, no health checks, timeout ${s.timeoutSeconds} s`));
  assert.match(row("build"), new RegExp(`\`on: "${d.build.on}"\``));
  assert.match(row("reinstallTriggers"), new RegExp(`\`${JSON.stringify(d.reinstallTriggers)}\``));
  const key = Object.values(keysSchema.parse({ k: { content: "x" } }) as Record<string, { destDir: string; owner: string; group: string; mode: string; uploadAt: string }>)[0]!;
  assert.match(row("keys"), new RegExp(`per key \`${key.destDir}\`, ${key.owner}, ${key.group}, \`${key.mode}\`, ${key.uploadAt}`));
});
