// Where one operation's time goes, for the benchmarks (BENCH_TRACE=1): every SSH connection
// (dial to ready), every command channel (open to close, the command's first line), every
// local process started, and the provider's progress lines, each with its start and end in
// ms since `start()`. Counts of connections and channels come with it.
import type * as childProcess from "node:child_process";
import { Client } from "ssh2";

interface Event {
  kind: "connect" | "exec" | "spawn" | "progress";
  what: string;
  start: number;
  end?: number;
}

let events: Event[] | undefined;
let origin = 0;
let installed = false;

const now = () => performance.now() - origin;

function install(): void {
  if (installed) return;
  installed = true;
  const proto = Client.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const connect = proto["connect"]!;
  proto["connect"] = function (this: Client, ...args: unknown[]) {
    const config = args[0] as { host?: string; port?: number };
    const event: Event = { kind: "connect", what: `${config.host}:${config.port}`, start: now() };
    events?.push(event);
    this.once("ready", () => (event.end = now()));
    return connect.apply(this, args);
  };
  const exec = proto["exec"]!;
  proto["exec"] = function (this: Client, ...args: unknown[]) {
    const command = String(args[0]);
    const event: Event = { kind: "exec", what: firstLine(command), start: now() };
    events?.push(event);
    const callback = args[args.length - 1] as (err: Error | undefined, channel: NodeJS.EventEmitter) => void;
    args[args.length - 1] = (err: Error | undefined, channel: NodeJS.EventEmitter) => {
      if (err) event.end = now();
      else channel.once("close", () => (event.end = now()));
      callback(err, channel);
    };
    return exec.apply(this, args);
  };
  // The module object itself (an `import *` gives a copy with getters only).
  const cp = require("node:child_process") as Record<string, (...args: unknown[]) => childProcess.ChildProcess>;
  const spawn = cp["spawn"]!;
  cp["spawn"] = function (...args: unknown[]) {
    const event: Event = { kind: "spawn", what: `${String(args[0])} ${(Array.isArray(args[1]) ? (args[1] as string[]) : []).join(" ")}`.slice(0, 100), start: now() };
    events?.push(event);
    const child = spawn.apply(this, args);
    child.once("close", () => (event.end = now()));
    return child;
  };
}

function firstLine(command: string): string {
  const line = command.split("\n").find((l) => l.trim() && !l.startsWith("#")) ?? "";
  return line.length > 90 ? line.slice(0, 90) + "…" : line;
}

export const tracing = process.env["BENCH_TRACE"] === "1";

/** Starts recording (BENCH_TRACE=1 only; else a no-op). */
export function startTrace(): void {
  if (!tracing) return;
  install();
  events = [];
  origin = performance.now();
}

/** A progress callback that records each line. */
export function traceProgress(line: string): void {
  events?.push({ kind: "progress", what: line.length > 110 ? line.slice(0, 110) + "…" : line, start: now() });
}

/** Stops recording and prints the timeline with its counts to stderr. */
export function printTrace(title: string): void {
  if (!events) return;
  const list = events;
  events = undefined;
  const ms = (x: number | undefined) => (x === undefined ? "   ?" : x.toFixed(0).padStart(4));
  const lines = list.map((e) => `${ms(e.start)} ${e.kind === "progress" ? "    " : ms(e.end)} ${e.kind.padEnd(8)} ${e.what}`);
  const count = (k: Event["kind"]) => list.filter((e) => e.kind === k).length;
  console.error(`--- ${title}: ${count("connect")} connections, ${count("exec")} command channels, ${count("spawn")} local processes\n${lines.join("\n")}`);
}
