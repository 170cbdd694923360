// What each NixosHost operation does on the machine, as a short list of steps over one SSH
// session: adopt (first switch, no wipe), switch (copy missing paths + activate), read.
import { INSTALL_PHASES, type NixosHostSpec } from "../schema/nixos-host";
import type { Progress } from "../progress";
import { NixosPulumiError } from "../errors";
import { buildOnTarget, copyClosure } from "../copy";
import { buildToplevel, closureOf } from "../nix";
import { substituteFromCache } from "../nix/binary-cache";
import { activate, readHostState, rebootInto, type HostState } from "../switch";
import { dialWhile, openSession } from "./session";
import { refuseDeployerMachine } from "../install/deployer-machine";
import { renderHostLayout } from "./layout";
import { connect, fingerprint } from "../ssh";
import { runInstall, type InstallContext } from "../install";
import { lockHost } from "./lock";
import { refuseNonNixosToplevel, refuseNonNixosToplevelOnTarget, systemField } from "../nix/nixos-toplevel";
import { describeOwner, ensureMayManage, type HostOwner } from "./ownership";
import { formatOwner, writeOwnerRecord } from "../switch/owner-record";
import type { DeployLock } from "../lock/deploy-lock";
import { describeLeftVerdict, removeLeftVerdicts, type LeftVerdict } from "../switch/left-verdicts";
import { beforeSwitchCommand, parseBeforeSwitch, readBeforeSwitch } from "../switch/before-switch";
import { watchEngine, whenEngineGone } from "../util/engine-lifetime";
import type { SshSession } from "../ssh";
import { applyKeys, hasKeyWork, keyDrift, planAllKeys, type KeyDrift, type KeyPlan } from "../keys";
import { ensureOwnersExist } from "../keys/remote";

// This module is loaded in the provider process when a host operation first runs: from then
// on the provider's work ends with the engine that started it (util/engine-lifetime.ts).
watchEngine();

/** What the outputs record of the machine after an operation. */
export interface HostFacts {
  currentSystem: string;
  bootedSystem: string;
  generation: number;
  hostKey: string;
  kernel: string;
  /** The declared system boots another kernel, initrd or module set than the running one. */
  needsReboot: boolean;
  /** After an install: the public host key written into the installed system. */
  installedHostKey?: string;
  /** Keys not on the machine after this operation (an install that did not reboot into the new system). */
  keyDrift?: Record<string, KeyDrift>;
}

/**
 * Create without a disk layout: the machine already runs NixOS; switch it, wipe nothing.
 * A machine already running the wanted system is only recorded, not switched again.
 */
export async function adoptHost(spec: NixosHostSpec, toplevel: string, progress: Progress, who?: string, owner?: HostOwner): Promise<HostFacts> {
  const session = await openSession(spec, undefined, progress);
  try {
    const state = await readHostState(session);
    if (state.isNixos && state.currentSystem === toplevel) {
      await refuseDeployerMachine(state, spec.connection.host);
      ensureMayManage(state.owner, owner, spec.takeOver, spec.connection.host);
      progress(`adopt: already running ${toplevel}; nothing to switch`);
      if (owner && state.owner !== formatOwner(owner)) await claimHost(spec, session.hostKey, progress, who ?? spec.connection.host, owner);
      const keys = planAllKeys(spec.keys, "new");
      if (hasKeyWork(keys)) await updateKeys(spec, keys, session.hostKey, progress, who ?? spec.connection.host, owner);
      return factsOf(state, session.hostKey, toplevel);
    }
  } finally {
    session.close();
  }
  return switchHost(spec, toplevel, undefined, progress, { adopting: true, keys: planAllKeys(spec.keys, "new"), ...(who ? { who } : {}), ...(owner ? { owner } : {}) });
}

/**
 * A change of keys alone: under the deploy lock, the keys are written and removed; the
 * system is not activated again.
 */
export async function updateKeys(spec: NixosHostSpec, plan: KeyPlan, pinnedHostKey: string | undefined, progress: Progress, who: string, owner?: HostOwner): Promise<string> {
  return underDeployLock(spec, pinnedHostKey, progress, who, owner, async (session) => {
    await applyKeys(session, plan, "all", progress);
    return session.hostKey;
  });
}

/**
 * Records this stack as the machine's manager without switching it (an adopted machine that
 * already runs the system, or `takeOver` of one): under the deploy lock, refused like a switch
 * when another stack manages it and `takeOver` does not name that stack.
 */
export async function claimHost(spec: NixosHostSpec, pinnedHostKey: string | undefined, progress: Progress, who: string, owner: HostOwner): Promise<void> {
  await underDeployLock(spec, pinnedHostKey, progress, who, owner, async (session, previous) => {
    if (previous) progress(`ownership: took this machine over from ${describeOwner(previous)} (takeOver)`);
    await writeOwnerRecord(session, owner);
  });
}

/**
 * Runs `work` on a session of its own under the deploy lock, once the machine's owner record
 * allows this stack to manage it (`previous`: the stack it takes the machine over from).
 */
async function underDeployLock<T>(
  spec: NixosHostSpec,
  pinnedHostKey: string | undefined,
  progress: Progress,
  who: string,
  owner: HostOwner | undefined,
  work: (session: SshSession, previous: HostOwner | undefined) => Promise<T>,
): Promise<T> {
  const session = await openSession(spec, pinnedHostKey, progress);
  const lock = await lockHost(spec, session.hostKey, who, progress).catch((err: unknown) => {
    session.close();
    throw err;
  });
  try {
    const state = await readHostState(session);
    return await work(session, ensureMayManage(state.owner, owner, spec.takeOver, spec.connection.host));
  } finally {
    session.close();
    await lock.release();
  }
}

/**
 * A changed address or host key, proven by an SSH handshake (and login) before it is
 * recorded; nothing runs on the machine. Returns the host key the machine presented.
 */
export async function verifyReach(spec: NixosHostSpec, recordedHostKey: string | undefined, progress: Progress): Promise<string> {
  const session = await openSession(spec, recordedHostKey, progress);
  session.close();
  progress(`connect: ${spec.connection.host}:${spec.connection.port} presented ${fingerprint(session.hostKey)}${spec.connection.hostKey ? " (matches connection.hostKey)" : " (the recorded key)"}`);
  return session.hostKey;
}

/** Update: build, copy only the missing paths, set the profile and activate with rollback. */
export async function switchHost(
  spec: NixosHostSpec,
  toplevel: string,
  pinnedHostKey: string | undefined,
  progress: Progress,
  { adopting = false, who = spec.connection.host, owner, keys }: { adopting?: boolean; who?: string; owner?: HostOwner | undefined; keys?: KeyPlan } = {},
): Promise<HostFacts> {
  // Every session this switch opens, reconnects included: all are closed at its end, also
  // when a copy or activation that reconnected throws, and when the engine goes away.
  const sessions = new Set<SshSession>();
  const open = async (deadlineSeconds?: number, dialErrorLimit?: number) => {
    const dialled = dialErrorLimit ? { ...spec, connection: { ...spec.connection, dialErrorLimit } } : spec;
    // Reconnects are pinned to the key the first session verified.
    const opened = await openSession(dialled, session?.hostKey ?? pinnedHostKey, progress, deadlineSeconds);
    sessions.add(opened);
    return opened;
  };
  const closeAll = () => sessions.forEach((s) => s.close());
  let session: SshSession | undefined;
  const knownKey = spec.connection.hostKey ?? pinnedHostKey;
  const dialled = await dialWhile(open, knownKey ? () => openSession(spec, knownKey, progress) : undefined, async () => {
    if (spec.build.on === "local") await buildLocally(spec, toplevel, progress);
    // Read while the connections are made: the closure the copy sends (local, changes nothing).
    if (spec.build.on === "local" && !spec.binaryCache) closureOf(toplevel).catch(() => {});
  });
  session = dialled.session;
  const lockDial = dialled.lockSession;
  const stopOnEngineGone = whenEngineGone(closeAll);
  // On a machine this stack already switched, the copy asks what the target lacks (which
  // changes nothing there) while the lock is taken and the machine checked, and sends only once
  // they allow it (`sendCopy`). Not on a first switch: on a machine without a Nix store,
  // nix-store would create one before the checks refuse the machine.
  let sendCopy: (send: boolean) => void = () => {};
  const copyOptions = { progress, compress: spec.copy.compress, reconnect: () => open() };
  const copying =
    spec.build.on === "local" && !spec.binaryCache && !adopting
      ? copyClosure(session, toplevel, { ...copyOptions, sendAfter: new Promise<boolean>((r) => (sendCopy = r)) })
      : undefined;
  // Its error, if it fails before it is awaited, is thrown where it is (not an unhandled rejection).
  copying?.catch(() => undefined);
  // Ends a copy the switch does not go on to; its own error, if any, is not the switch's.
  const copyNotNeeded = async () => {
    sendCopy(false);
    await copying?.catch(() => undefined);
  };
  let runDirRemoved: Promise<void> = Promise.resolve();
  let lock: DeployLock;
  try {
    lock = await lockHost(spec, session.hostKey, who, progress, lockDial, beforeSwitchCommand());
  } catch (err) {
    await copyNotNeeded();
    stopOnEngineGone();
    closeAll();
    throw err;
  }
  try {
    // Read by the lock's own command once it was held; a machine without flock is read now.
    const { state: before, left } = lock.readUnderLock !== undefined ? parseBeforeSwitch(lock.readUnderLock) : await readBeforeSwitch(session);
    await refuseDeployerMachine(before, spec.connection.host);
    const previousOwner = ensureMayManage(before.owner, owner, spec.takeOver, spec.connection.host);
    // Read under the lock, under which alone it changes: a record that already names this stack stays as it is.
    const recordOwner = owner && before.owner !== formatOwner(owner) ? owner : undefined;
    if (adopting && !before.isNixos) {
      throw new NixosPulumiError("the machine does not run NixOS (no /run/current-system), and no diskLayout was given", {
        step: "adopt",
        host: spec.connection.host,
        hint: "pass diskLayout (and install options) to install NixOS on it, or point connection at a NixOS machine",
      });
    }
    // Owners of keys written before the activation must exist now, before anything is copied or written.
    if (keys) await ensureOwnersExist(session, keys.write.filter((w) => w.key.uploadAt === "pre-activation"), "keys uploaded before the activation name users or groups the machine lacks");
    if (await activatedByEarlierRun(session, spec, toplevel, before, left, progress)) {
      await copyNotNeeded();
      if (keys) await applyKeys(session, keys, "all", progress);
      if (recordOwner) await writeOwnerRecord(session, recordOwner);
      return factsOf(await readHostState(session, toplevel), session.hostKey, toplevel);
    }
    if (spec.build.on === "target") {
      await buildOnTarget(session, spec.system, toplevel, progress);
      await refuseNonNixosToplevelOnTarget(session, toplevel, systemField(spec.system));
    }
    else if (spec.binaryCache) await substituteFromCache(session, spec.binaryCache, toplevel, progress);
    else {
      // Another deployment ran while the lock was awaited: what the target lacks is asked again.
      sendCopy(!lock.waited);
      let copied = await copying;
      if (!copied || copied.withheld) copied = await copyClosure(copied?.session ?? session, toplevel, copyOptions);
      session = copied.session;
    }
    // The lock's connection may have dropped with the copy's: never activate unless it is still
    // ours. The activation's command makes its run directory meanwhile, and starts nothing before.
    const copied = session;
    const mayStart = (async () => {
      await lock.ensureHeld("activation");
      if (keys) await applyKeys(copied, keys, "pre-activation", progress);
    })();
    const activation = await activate(session, {
      toplevel,
      action: spec.switch.action,
      rollback: spec.switch.rollback,
      confirmTimeoutSeconds: spec.switch.confirmTimeoutSeconds,
      timeoutSeconds: spec.switch.timeoutSeconds,
      healthChecks: spec.switch.healthChecks,
      installBootloader: spec.switch.installBootloader ?? false,
      log: progress,
      // The activation may restart sshd or (magic rollback) cut the network until it rolls back.
      reconnect: () => open(spec.switch.confirmTimeoutSeconds + spec.switch.timeoutSeconds),
      startWhen: mayStart,
    }).catch(async (err: unknown) => {
      // Nothing of the switch goes on after it failed: the lock's confirmation and keys settle first.
      await mayStart.catch(() => undefined);
      throw err;
    });
    session = activation.session;
    runDirRemoved = activation.runDirRemoved;
    if (keys) await applyKeys(session, keys, "post-activation", progress);
    if (recordOwner) {
      await writeOwnerRecord(session, recordOwner);
      if (previousOwner) progress(`ownership: took this machine over from ${describeOwner(previousOwner)} (takeOver)`);
    }
    // Read with the verdict, over the session it came on (the first may have dropped).
    let after = activation.state;
    const needsReboot = activation.rebootRequired || after.needsReboot;
    if (needsReboot && spec.switch.rebootOnKernelChange && spec.switch.action !== "test") {
      await runDirRemoved; // before the reboot cuts its connection
      await lock.keepUntilReboot();
      ({ session, state: after } = await rebootInto(session, {
        toplevel,
        open: () => open(undefined, 1),
        timeoutSeconds: spec.switch.rebootTimeoutSeconds,
        step: "reboot",
        progress,
      }));
      // The reboot emptied /run/keys (in memory): every key is written again.
      const rewrite = planAllKeys(spec.keys, "the reboot emptied /run/keys");
      if (hasKeyWork(rewrite)) await applyKeys(session, rewrite, "all", progress);
    } else if (needsReboot) {
      progress(
        `reboot needed: ${activation.rebootRequired ? "the new system has another init" : "the kernel, initrd or kernel modules changed"}; ` +
          `the machine still boots into ${after.bootedSystem}. Reboot it, or set switch.rebootOnKernelChange: true`,
      );
    }
    return factsOf(after, session.hostKey, toplevel);
  } finally {
    await copyNotNeeded();
    stopOnEngineGone();
    // The lock is released while the activation's run directory is removed, then the sessions close.
    await Promise.all([runDirRemoved, lock.release()]);
    closeAll();
  }
}

/**
 * Reports and removes the verdicts earlier runs left unread on the machine (read before the
 * switch: a deployer that gave up waiting for it, or was killed during an activation); true when one of them already
 * activated `toplevel` and the machine runs it: then it is recorded, not switched again.
 */
async function activatedByEarlierRun(session: SshSession, spec: NixosHostSpec, toplevel: string, before: HostState, left: LeftVerdict[], progress: Progress): Promise<boolean> {
  for (const verdict of left) progress(describeLeftVerdict(verdict));
  await removeLeftVerdicts(session, left);
  const last = left.filter((v) => v.toplevel === toplevel).at(-1);
  if (!last || !["ok", "reboot-required"].includes(last.result)) return false;
  const runs = spec.switch.action === "boot" || last.result === "reboot-required" ? before.profileSystem : before.currentSystem;
  if (runs !== toplevel || (spec.switch.action !== "test" && before.profileSystem !== toplevel)) return false;
  progress(`activate: ${toplevel} is already active (an earlier run's activation succeeded); recording it without switching again`);
  return true;
}

async function buildLocally(spec: NixosHostSpec, toplevel: string, progress: Progress): Promise<void> {
  // build.on "target": the target builds (an install into /mnt's store); this machine needs
  // only the derivations, and may not even be able to build for the target's platform.
  if (spec.build.on === "target") return;
  progress(`build: realising ${toplevel}`);
  const built = await buildToplevel(spec.system);
  if (built !== toplevel) {
    throw new NixosPulumiError(`the system built to ${built}, but preview evaluated ${toplevel}`, {
      step: "build",
      host: spec.connection.host,
      hint: "the system changed between evaluation and build (an impure expression?); run `pulumi up` again",
    });
  }
  refuseNonNixosToplevel(built, systemField(spec.system));
}

/** Refresh: what the machine runs now, over a connection pinned to the recorded host key. */
export async function readHost(spec: NixosHostSpec, toplevel: string, pinnedHostKey: string | undefined): Promise<HostFacts & { converged: string; owner: string }> {
  const session = await openSession(spec, pinnedHostKey, () => {});
  try {
    const state = await readHostState(session, toplevel);
    // What the host is converged to: the running system, or for `action: "boot"` (and a
    // switch that waits for a reboot) the boot default, the system profile.
    const staged = spec.switch.action === "boot" || (state.profileSystem === toplevel && state.needsReboot);
    const drift = await keyDrift(session, spec.keys);
    return {
      ...factsOf(state, session.hostKey, toplevel),
      converged: (staged ? state.profileSystem : state.currentSystem) || "",
      owner: state.owner,
      ...(Object.keys(drift).length > 0 ? { keyDrift: drift } : {}),
    };
  } finally {
    session.close();
  }
}

/** Create with a disk layout: the nixos-anywhere-style install, phase by phase. */
export async function installHost(spec: NixosHostSpec, toplevel: string, progress: Progress, who = spec.connection.host, owner?: HostOwner): Promise<HostFacts> {
  // The pin is chosen per phase: `hostKey` here, not connection.hostKey.
  const connectTo = (hostKey: string | undefined, connection = spec.connection) =>
    connect({ ...connection, hostKey: undefined }, { pinnedHostKey: hostKey, log: progress });
  const unpinned = { ...spec, connection: { ...spec.connection, hostKey: undefined } };
  // Before the reboot the machine shows its rescue or installer key. connection.hostKey pins
  // it, unless it is the pre-generated key of the system being installed.
  const declared = spec.connection.hostKey;
  const firstKey = declared && declared !== spec.install?.hostKeys?.ed25519?.publicKey ? declared : undefined;
  let layout;
  const { session, lockSession: lockDial } = await dialWhile(
    () => connectTo(firstKey),
    firstKey ? () => openSession(unpinned, firstKey, progress) : undefined,
    async () => {
      await buildLocally(spec, toplevel, progress);
      layout = spec.diskLayout ? await renderHostLayout(spec.diskLayout) : undefined;
    },
  );
  const phases = spec.install?.phases ?? [...INSTALL_PHASES];
  const ctx: InstallContext = { spec, toplevel, layout, progress, session, connect: connectTo };
  progress(`connect: ${spec.connection.host} presented ${fingerprint(ctx.session.hostKey)}${firstKey ? " (pinned)" : " (rescue/installer key, not pinned)"}`);
  // Held until the reboot: the lock lives in /run, so after the kexec it is taken again in the installer.
  const lock = await lockHost(unpinned, ctx.session.hostKey, who, progress, lockDial).catch((err: unknown) => {
    ctx.session.close();
    throw err;
  });
  ctx.lock = lock;
  try {
    // A machine another stack manages is not wiped by this one.
    const before = await readHostState(ctx.session);
    const previousOwner = ensureMayManage(before.owner, owner, spec.takeOver, spec.connection.host);
    await runInstall(ctx, phases, before);
    if (owner && (phases.includes("reboot") || phases.includes("install"))) {
      // Before the reboot the installed system is the one under /mnt.
      await writeOwnerRecord(ctx.session, owner, phases.includes("reboot") ? "" : "/mnt");
      if (previousOwner) progress(`ownership: took this machine over from ${describeOwner(previousOwner)} (takeOver)`);
    }
    const facts: HostFacts = factsOf(await readHostState(ctx.session, toplevel), ctx.session.hostKey, toplevel);
    const keys = await installKeys(ctx.session, spec, phases, progress);
    if (keys) facts.keyDrift = keys;
    return ctx.installedHostKey ? { ...facts, installedHostKey: ctx.installedHostKey } : facts;
  } finally {
    ctx.session.close();
    await lock.release();
  }
}

/**
 * Keys reach an installed machine once it has booted the installed system (/run/keys is in
 * memory: written before the reboot they would be gone). Without the reboot phase they are
 * recorded as missing, and the next up writes them.
 */
async function installKeys(session: SshSession, spec: NixosHostSpec, phases: string[], progress: Progress): Promise<Record<string, KeyDrift> | undefined> {
  const names = Object.keys(spec.keys);
  if (names.length === 0) return undefined;
  if (!phases.includes("reboot")) {
    progress(`keys: not written (${names.join(", ")}): the machine has not booted the installed system; the next up writes them`);
    return Object.fromEntries(names.map((n) => [n, "missing" as const]));
  }
  await applyKeys(session, planAllKeys(spec.keys, "new"), "all", progress);
  return undefined;
}

function factsOf(state: HostState, hostKey: string, toplevel: string): HostFacts {
  return {
    currentSystem: state.currentSystem,
    bootedSystem: state.bootedSystem,
    generation: state.generation,
    hostKey,
    kernel: state.kernel,
    // Before the first reboot of an install there is no booted system to compare with.
    needsReboot: state.needsReboot && state.bootedSystem !== toplevel,
  };
}
