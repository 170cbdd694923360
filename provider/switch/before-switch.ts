// What a switch reads before it changes anything, in one command (one round trip): the
// machine's state and the verdicts earlier runs left unread. Read-only: the verdicts' run
// directories are removed (removeLeftVerdicts) only once the switch may go on.
import type { SshSession } from "../ssh";
import { parseHostState, stateCommand, type HostState } from "./host-state";
import { leftVerdictsCommand, parseLeftVerdicts, type LeftVerdict } from "./left-verdicts";

const VERDICTS_MARKER = "@@@nixos-pulumi-left-verdicts";

export interface BeforeSwitch {
  state: HostState;
  left: LeftVerdict[];
}

/** The command: run alone (readBeforeSwitch) or by the deploy lock as soon as it is held. */
export function beforeSwitchCommand(): string {
  return `${stateCommand()}\necho ${VERDICTS_MARKER}\n${leftVerdictsCommand()}\ntrue`;
}

export async function readBeforeSwitch(session: SshSession): Promise<BeforeSwitch> {
  return parseBeforeSwitch(await session.execOk(beforeSwitchCommand(), "read state"));
}

export function parseBeforeSwitch(out: string): BeforeSwitch {
  const at = out.indexOf(`${VERDICTS_MARKER}\n`);
  return {
    state: parseHostState(at < 0 ? out : out.slice(0, at)),
    left: at < 0 ? [] : parseLeftVerdicts(out.slice(at + VERDICTS_MARKER.length + 1)),
  };
}
