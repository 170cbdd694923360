// The demo VM's power supply, run detached by local-vm-impl: starts QEMU (software
// emulation, user networking with loopback-only forwards, restrict=on) and, when the guest
// reboots (-no-reboot makes QEMU exit 0), powers it on again from its disk the way the VM
// test tier does (readBootEntry). SIGTERM stops QEMU and then the supervisor.
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { readBootEntry, type Boot } from "../../test/harness/vm";
import type { SupervisorConfig } from "./local-vm-impl";

const dir = process.argv[2]!;
const config = JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8")) as SupervisorConfig;
const log = (line: string) => appendFileSync(path.join(dir, "supervisor.log"), `${new Date().toISOString()} ${line}\n`);
let qemu: ChildProcess | undefined;
let stopping = false;

function boot(how: Boot): void {
  qemu = spawn(
    "qemu-system-x86_64",
    [
      "-accel", "tcg", "-m", String(config.memoryMiB), "-smp", "1", "-no-reboot",
      "-kernel", how.kernel, "-initrd", how.initrd, "-append", how.append,
      "-drive", `file=${config.disk},format=raw,if=virtio`,
      "-netdev", `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${config.sshPort}-:22,hostfwd=tcp:127.0.0.1:${config.httpPort}-:8080`,
      "-device", "virtio-net-pci,netdev=n0",
      "-serial", `file:${config.consoleLog}`, "-monitor", "none", "-display", "none",
    ],
    { stdio: "ignore" },
  );
  writeFileSync(path.join(dir, "qemu.pid"), String(qemu.pid));
  log(`qemu ${qemu.pid} booting ${how.append}`);
  qemu.once("exit", (code, signal) => {
    rmSync(path.join(dir, "qemu.pid"), { force: true });
    if (stopping) return process.exit(0);
    if (code !== 0) {
      log(`qemu exited (${code ?? signal}); the VM stays off`);
      return process.exit(1);
    }
    // Each boot's console is appended to the one log (QEMU truncates its -serial file).
    appendFileSync(config.consoleHistory, readFileSync(config.consoleLog));
    readBootEntry(config.disk, dir)
      .then((next) => {
        log(`guest rebooted; booting from disk: ${next.append}`);
        boot(next);
      })
      .catch((err: Error) => {
        log(`could not boot from disk: ${err.message}`);
        process.exit(1);
      });
  });
}

process.on("SIGTERM", () => {
  stopping = true;
  if (qemu && qemu.exitCode === null && qemu.signalCode === null) qemu.kill("SIGKILL");
  else process.exit(0);
});
writeFileSync(path.join(dir, "supervisor.pid"), String(process.pid));
boot(config.firstBoot);
