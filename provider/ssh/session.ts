import { Client, type ClientChannel } from "ssh2";
import type { Readable } from "node:stream";
import { ConnectionLostError, NixosPulumiError } from "../errors";
import type { Connection } from "../schema/connection";
import { passwordLine, probeSudo, sudoCommand, type SudoMode } from "./sudo";
import { REFUSED_EXIT, uploadCommand, uploadFilesCommand } from "./private-paths";
import { MiB } from "../util/units";

export interface ExecOptions {
  stdin?: Readable | string | Buffer;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Keep at most this many characters of each stream in the result (default 1 MiB). */
  keep?: number;
  /** Run as root through sudo when the session's user is not root. */
  privileged?: boolean;
}

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

/** A file for SshSession.uploadFiles: where, what, its mode and (numeric) owner and group. */
export interface FileToUpload {
  path: string;
  content: string | Buffer;
  mode: string;
  owner?: number;
  group?: number;
}

/** One authenticated SSH connection, reused for every command of an operation. */
export class SshSession {
  private closed = false;
  private sudo: Promise<SudoMode> | undefined;
  /** The cipher negotiated from client to server. */
  cipher: string | undefined;

  constructor(
    private readonly client: Client,
    /** The host key the server presented ("ssh-ed25519 AAAA..."), verified or recorded. */
    readonly hostKey: string,
    /** host:port, for messages. */
    readonly target: string,
    private readonly useSudo: boolean,
    private readonly jump?: Client,
    /** The settings this session was dialled with (a copy's child process dials them again). */
    readonly connection?: Connection,
  ) {
    client.on("close", () => (this.closed = true));
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** How sudo runs commands as root here, found out before the first privileged command. */
  private sudoMode(): Promise<SudoMode> {
    const password = this.connection?.sudoPassword;
    return (this.sudo ??= probeSudo((command, stdin) => this.run(command, { ...(stdin ? { stdin } : {}) }), this.connection?.user ?? "the user", password, this.target));
  }

  /** Runs a command, as root (through sudo for a non-root user) unless `privileged: false`. */
  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (options.privileged === false || !this.useSudo) return this.run(command, options);
    const mode = await this.sudoMode();
    const password = mode === "password" ? passwordLine(this.connection!.sudoPassword!) : undefined;
    return this.run(sudoCommand(mode, command), options, password);
  }

  /** `first` goes to stdin before options.stdin (sudo -S's password line). */
  private run(full: string, options: ExecOptions, first?: Buffer): Promise<ExecResult> {
    const keep = options.keep ?? MiB;
    return new Promise((resolve, reject) => {
      if (this.closed) {
        return reject(new ConnectionLostError("the SSH connection is closed", { step: "exec", host: this.target }));
      }
      this.client.exec(full, (err, channel: ClientChannel) => {
        if (err) {
          // ssh2 fails the channels still opening when the connection closes ("No response from server").
          const Failure = this.closed ? ConnectionLostError : NixosPulumiError;
          return reject(new Failure(`could not start a command: ${err.message}`, { step: "exec", host: this.target }, { cause: err }));
        }
        let stdout = "";
        let stderr = "";
        channel.on("data", (chunk: Buffer) => {
          options.onStdout?.(chunk);
          if (stdout.length < keep) stdout += chunk.toString("utf8");
        });
        channel.stderr.on("data", (chunk: Buffer) => {
          options.onStderr?.(chunk);
          if (stderr.length < keep) stderr += chunk.toString("utf8");
        });
        let exit: { code: number | null; signal?: string } = { code: null };
        channel.on("exit", (code: number | null, signal?: string) => {
          exit = signal ? { code, signal } : { code };
        });
        channel.on("close", () => resolve({ ...exit, stdout, stderr }));
        channel.on("error", (e: Error) => {
          const Failure = this.closed ? ConnectionLostError : NixosPulumiError;
          reject(new Failure(`command channel failed: ${e.message}`, { step: "exec", host: this.target }, { cause: e }));
        });
        const { stdin } = options;
        if (stdin === undefined) channel.end(first);
        else if (typeof stdin === "string" || Buffer.isBuffer(stdin)) channel.end(first ? Buffer.concat([first, Buffer.from(stdin)]) : stdin);
        else {
          if (first) channel.write(first);
          stdin.on("error", () => channel.destroy());
          stdin.pipe(channel);
        }
      });
    });
  }

  /** Runs a command and throws, with its output, unless it exits 0. */
  async execOk(command: string, step: string, options: ExecOptions = {}): Promise<string> {
    const result = await this.exec(command, options);
    if (result.code !== 0) {
      // No exit status and no signal: the connection went away under the command.
      const Failure = result.code === null && result.signal === undefined ? ConnectionLostError : NixosPulumiError;
      throw new Failure(`\`${command.length > 200 ? command.slice(0, 200) + "…" : command}\` exited ${result.code ?? result.signal}`, {
        step,
        host: this.target,
        output: tail(result.stderr || result.stdout),
      });
    }
    return result.stdout;
  }

  /**
   * Writes a root-owned file on the target (as root with sudo), creating its directory; no
   * other account on the target can pre-create, replace or read it (see uploadCommand).
   */
  async upload(remotePath: string, content: string | Buffer, mode = "0600", field?: string): Promise<void> {
    const result = await this.exec(uploadCommand(remotePath, mode), { stdin: content });
    this.uploaded(result, field ? `${field} (${remotePath})` : remotePath);
  }

  /**
   * Several files written as upload() writes one, with their owners, in one command (one
   * round trip); `before` runs first. Stops at the first file refused or failed; the ones
   * before it are in place.
   */
  async uploadFiles(files: FileToUpload[], before = ""): Promise<void> {
    const contents = files.map((f) => Buffer.from(f.content));
    const command = uploadFilesCommand(
      files.map((f, i) => ({ path: f.path, mode: f.mode, bytes: contents[i]!.length, ...(f.owner !== undefined ? { owner: f.owner, group: f.group ?? 0 } : {}) })),
      before,
    );
    const result = await this.exec(command, { stdin: Buffer.concat(contents) });
    this.uploaded(result, files.map((f) => f.path).join(", "));
  }

  private uploaded(result: ExecResult, what: string): void {
    if (result.code === REFUSED_EXIT) {
      // The refusal's own line: sudo may print other lines first.
      const PREFIX = "nixos-pulumi refuses to write there: ";
      const why = result.stderr.split("\n").find((l) => l.startsWith(PREFIX))?.slice(PREFIX.length) ?? result.stderr.trim();
      throw new NixosPulumiError(`refused to write ${what}: ${why}`, {
        step: "upload",
        host: this.target,
        hint: "write it under a directory only root can change (e.g. /root or /run), or make the directory owned by root and not writable by other accounts",
      });
    }
    if (result.code !== 0) {
      throw new NixosPulumiError(`writing ${what} failed (exit ${result.code ?? result.signal})`, {
        step: "upload",
        host: this.target,
        output: tail(result.stderr),
        hint: "read the output above: the filesystem may be full or read-only there (check df -h), or the connection dropped; run again",
      });
    }
  }

  close(): void {
    this.client.end();
    this.jump?.end();
  }
}

export function tail(text: string, lines = 40): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
