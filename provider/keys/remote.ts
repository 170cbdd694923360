// The commands that write, remove and inspect keys on the machine, run as root over the
// host's pinned connection. The machine may have other local accounts: a key is written
// into a fresh root-only directory next to its destination, given its owner, group and
// mode there, and renamed into place, so no one else can read or swap it on the way.
import { NixosPulumiError } from "../errors";
import { tail, type SshSession } from "../ssh";
import { guarded, REFUSED_EXIT } from "../ssh/private-paths";
import { shellQuote } from "../util/shell-quote";
import { bytesToUpload } from "./content";
import type { KeyDrift, KeyToRemove, KeyToWrite } from "./plan";
import { DEFAULT_KEY_DIR, keyPath, normalMode, type KeySpec } from "../schema/keys";

/**
 * NixOS mounts /run/keys as a ramfs, mode 0750, group `keys` (nixpkgs
 * nixos/modules/tasks/filesystems.nix, boot.specialFileSystems and its tmpfiles rules). Made
 * the same way when missing (a machine booted without it, or before the first activation).
 */
const MAKE_KEYS_DIR = `[ -d ${DEFAULT_KEY_DIR} ] || { mkdir -m 750 ${DEFAULT_KEY_DIR} && { chgrp keys ${DEFAULT_KEY_DIR} 2>/dev/null || true; }; }`;

/** A group exists: getent where the machine has it, else /etc/group. */
const GROUP_EXISTS = `np_group() { getent group "$1" >/dev/null 2>&1 || grep -q "^$1:" /etc/group 2>/dev/null; }`;

/**
 * Refuses, before any key is written, keys whose owner or group the machine lacks: one line
 * per missing name, naming the key and the field.
 */
export async function ensureOwnersExist(session: SshSession, keys: KeyToWrite[], when: string): Promise<void> {
  if (keys.length === 0) return;
  const checks = keys.flatMap(({ name, key }) => [
    `id -u ${shellQuote(key.owner)} >/dev/null 2>&1 || echo ${shellQuote(`keys["${name}"].owner: no user "${key.owner}"`)}`,
    `np_group ${shellQuote(key.group)} || echo ${shellQuote(`keys["${name}"].group: no group "${key.group}"`)}`,
  ]);
  const missing = (await session.execOk([GROUP_EXISTS, ...checks].join("\n"), "keys")).trim();
  if (!missing) return;
  const beforeActivation = keys.some(({ key }) => key.uploadAt === "pre-activation");
  throw new NixosPulumiError(`${when}, nothing written:\n${missing}`, {
    step: "keys",
    host: session.target,
    hint: beforeActivation
      ? "create the user or group in the system, or, if this deployment's activation creates it, set uploadAt: \"post-activation\" on the key"
      : "declare the user or group in the NixOS system (users.users / users.groups), or give one that exists",
  });
}

/** Writes one key: staged in a root-only directory next to its destination, renamed into place. */
export async function writeKey(session: SshSession, { name, key }: KeyToWrite): Promise<void> {
  const bytes = bytesToUpload(name, key);
  const dir = key.destDir.replace(/\/+$/, "") || "/";
  const dest = keyPath(name, key);
  const q = shellQuote(dest);
  const script = [
    "umask 077",
    dir === DEFAULT_KEY_DIR ? MAKE_KEYS_DIR : ":",
    `np_safe_dir ${shellQuote(dir)}`,
    `if [ -d ${q} ] && [ ! -L ${q} ]; then np_refuse ${shellQuote(`${dest} is a directory`)}; fi`,
    `np_s=$(mktemp -d ${shellQuote(`${dir === "/" ? "" : dir}/.nixos-pulumi-key.XXXXXXXX`)}) || exit 1`,
    `trap 'rm -rf "$np_s"' EXIT; trap 'exit 1' HUP INT TERM PIPE`,
    `cat > "$np_s/k" && chown ${shellQuote(`${key.owner}:${key.group}`)} "$np_s/k" && chmod ${normalMode(key.mode)} "$np_s/k" && mv -fT "$np_s/k" ${q}`,
  ].join("\n");
  const result = await session.exec(guarded(script), { stdin: bytes });
  if (result.code === REFUSED_EXIT) {
    throw new NixosPulumiError(`refused to write keys["${name}"] (${dest}): ${result.stderr.trim().replace(/^nixos-pulumi refuses to write there: /, "")}`, {
      step: "keys",
      host: session.target,
      hint: "give a destDir only root can change (e.g. /run/keys or /var/lib/secrets), not one another account owns or can write",
    });
  }
  if (result.code !== 0) {
    throw new NixosPulumiError(`writing keys["${name}"] to ${dest} failed (exit ${result.code ?? result.signal})`, {
      step: "keys",
      host: session.target,
      output: tail(result.stderr),
    });
  }
}

/** Removes a key the program dropped (or moved); a missing file or directory is fine. */
export async function removeKey(session: SshSession, { name, path }: KeyToRemove): Promise<void> {
  const dir = path.replace(/\/[^/]*$/, "") || "/";
  const script = `[ -d ${shellQuote(dir)} ] || exit 0\nnp_safe_dir ${shellQuote(dir)}\nrm -f ${shellQuote(path)}`;
  const result = await session.exec(guarded(script));
  if (result.code !== 0) {
    throw new NixosPulumiError(`removing keys["${name}"] (${path}) failed (exit ${result.code ?? result.signal})`, {
      step: "keys",
      host: session.target,
      output: tail(result.stderr),
    });
  }
}

/**
 * What refresh finds for each recorded key: nothing (as recorded), missing, or changed
 * (another digest, owner, group or mode). Only digests leave the machine, never content.
 */
export async function keyDrift(session: SshSession, keys: Record<string, KeySpec>): Promise<Record<string, KeyDrift>> {
  const names = Object.keys(keys);
  if (names.length === 0) return {};
  const script = names
    .map((name, i) => {
      const q = shellQuote(keyPath(name, keys[name]!));
      return `if [ -f ${q} ] && [ ! -L ${q} ]; then echo "${i} $(stat -c '%U %G %a' ${q}) $(sha256sum < ${q} | cut -d' ' -f1)"; else echo "${i} missing"; fi`;
    })
    .join("\n");
  const out = await session.execOk(script, "keys");
  const drift: Record<string, KeyDrift> = {};
  for (const line of out.trim().split("\n")) {
    const [index, ...seen] = line.trim().split(/\s+/);
    const name = names[Number(index)];
    if (name === undefined) continue;
    const key = keys[name]!;
    if (seen[0] === "missing") drift[name] = "missing";
    else if (seen.join(" ") !== `${key.owner} ${key.group} ${normalMode(key.mode)} ${key.digest ?? ""}`) drift[name] = "changed";
  }
  return drift;
}
