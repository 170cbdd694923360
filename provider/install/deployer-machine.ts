import { readFile } from "node:fs/promises";
import { NixosPulumiError } from "../errors";

/**
 * Refuses to touch the machine the deployer runs on: a connection to "localhost", a
 * forwarded port or a DNS name that points home would otherwise let an install wipe the
 * deployer's own disks. The machine id identifies the installed system (a container or
 * namespace on this kernel shares the boot id but has its own machine id).
 */
export async function refuseDeployerMachine(target: { machineId?: string | undefined }, host: string): Promise<void> {
  const local = (await readFile("/etc/machine-id", "utf8").catch(() => "")).trim();
  if (local && target.machineId && target.machineId.trim() === local) {
    throw new NixosPulumiError(`${host} is the machine this deployment runs on (same /etc/machine-id ${local})`, {
      step: "facts",
      host,
      hint: "point connection.host at the target machine; nixos-pulumi never installs or switches the deployer itself",
    });
  }
}
