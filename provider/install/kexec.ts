import { createReadStream } from "node:fs";
import { NixosPulumiError } from "../errors";
import { readHostState } from "../switch";
import { bootIdOf, fingerprint, tail, waitForNewBoot } from "../ssh";
import { guarded } from "../ssh/private-paths";
import { singleDial, type InstallContext } from "./context";
import type { MachineFacts } from "./facts";
import { greetedDial } from "./greeted-dial";
import { installerHostKey } from "./installer-host-key";
import { ensureRootKeyLogin } from "./root-access";
import { INSTALL_DEFAULTS } from "../schema/nixos-host";

const DIR = "/root/kexec";

/**
 * Boots the machine into the installer of a kexec tarball in nixos-anywhere's format
 * (kexec/run, as nixos-images builds it), the way nixos-anywhere does: skipped when the
 * machine already runs the installer; `setsid --wait kexec/run` in the foreground, its exit
 * status and log shown on failure; then a new connection as root on port 22, pinned to the
 * key the machine showed before (the installer carries the host keys over), and nothing
 * goes on until the machine answers with a new boot id and VARIANT_ID=installer.
 */
export async function kexecPhase(ctx: InstallContext, facts: MachineFacts): Promise<void> {
  const host = ctx.spec.connection.host;
  if (facts.variantId === "installer") {
    ctx.progress("kexec: the machine already runs the NixOS installer (VARIANT_ID=installer); skipped");
    return;
  }
  const tarball = ctx.spec.install?.kexecTarball;
  if (!tarball) {
    throw new NixosPulumiError("the kexec phase needs install.kexecTarball", {
      step: "kexec",
      host,
      hint: 'give install.kexecTarball (a nixos-anywhere kexec tarball holding kexec/run), or leave "kexec" out of install.phases',
    });
  }
  const timeoutSeconds = (ctx.spec.install ?? INSTALL_DEFAULTS).timeouts.kexecSeconds;
  // Before anything changes: the key the installer will present, known now.
  const rescueKey = await installerHostKey(ctx);
  const root = await ensureRootKeyLogin(ctx.session, ctx.spec.connection, ctx.progress, (ctx.spec.install ?? INSTALL_DEFAULTS).postKexecSshPort);
  const unpack = tarball.endsWith(".zst") ? `zstd -dc | tar -C ${DIR} -xf -` : `tar -C ${DIR} -xzf -`;
  ctx.progress(`kexec: uploading ${tarball}`);
  // /root/kexec, made afresh (0700) under a /root only root can change: nixos-anywhere's place.
  await ctx.session.execOk(guarded(`np_fresh_dir ${DIR} && ${unpack}`), "kexec: upload", { stdin: createReadStream(tarball) });

  const oldBootId = await bootIdOf(ctx.session);
  ctx.progress("kexec: running kexec/run (loads the installer, then kexecs detached)");
  const run = await ctx.session.exec(`TMPDIR=${DIR} setsid --wait ${DIR}/kexec/run </dev/null >${DIR}/run.log 2>&1; code=$?; cat ${DIR}/run.log; exit $code`);
  if (run.code !== 0) {
    await root.revoke(ctx.session).catch(() => undefined);
    await ctx.session.exec(`rm -rf ${DIR}`).catch(() => undefined);
    throw new NixosPulumiError(`kexec/run failed (exit ${run.code ?? run.signal}); the machine was not changed`, {
      step: "kexec",
      host,
      output: tail(run.stdout + run.stderr, 40),
      hint: "check that the tarball fits this machine (architecture, kernel with kexec support) and that nothing blocks kexec_load (Secure Boot lockdown)",
    });
  }
  // kexec-run.sh runs under `set -eux`: its last lines are shell traces, not messages.
  const lastMessage = run.stdout.split("\n").filter((l) => l.trim() && !l.startsWith("+")).at(-1);
  ctx.progress(`kexec: ${lastMessage?.trim() || "kexec/run finished"}`);
  // The kexec clears /run: the lease holds the machine until then, and the lock is taken
  // again in the installer before anything else happens there.
  await ctx.lock?.keepUntilReboot();
  ctx.session.close();

  // After kexec: root on install.postKexecSshPort (22), the rescue system's (RSA or ed25519) host key, keys only.
  ctx.session = await waitForNewBoot(greetedDial(root.connection, () => ctx.connect(rescueKey, singleDial(root.connection))), oldBootId, {
    timeoutSeconds,
    step: "kexec",
    host,
    hint: "look at the machine's console; raise install.timeouts.kexecSeconds for slow machines",
    progress: ctx.progress,
  });
  const after = await readHostState(ctx.session);
  if (after.variantId !== "installer") {
    throw new NixosPulumiError("after kexec the machine does not run the NixOS installer (no VARIANT_ID=installer in /etc/os-release); nothing was partitioned", {
      step: "kexec",
      host,
      hint: "install.kexecTarball must be a NixOS kexec installer (nixos-images' nixos-kexec-installer)",
    });
  }
  const installerKey = ctx.session.hostKey;
  await ctx.lock?.retakeAfterBoot(() => ctx.connect(installerKey, root.connection));
  ctx.progress(`kexec: the installer is up (new boot, host key ${fingerprint(ctx.session.hostKey)}, the machine's own)`);
}
