// Runs Pulumi programs from tests through the Automation API with the real, pinned CLI:
// a local file backend and a fresh work directory per stack, placed inside the repo so that
// the dynamic-provider process resolves `nixos-pulumi` and `@pulumi/pulumi` from its node_modules.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as path from "node:path";
import {
  LocalWorkspace,
  type PulumiFn,
  type Stack,
  type UpResult,
  type PreviewResult,
  type DestroyResult,
  type RefreshResult,
} from "@pulumi/pulumi/automation";

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
const WORK_ROOT = path.join(REPO_ROOT, "test", ".work");

/** Environment every stack operation gets: no network, no update checks, no plugin downloads. */
export const PULUMI_ENV: Record<string, string> = {
  PULUMI_SKIP_UPDATE_CHECK: "true",
  PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
  PULUMI_CONFIG_PASSPHRASE: "test-passphrase",
};

export interface TestStack {
  stack: Stack;
  workDir: string;
  /** Everything the engine printed so far, for failure messages and assertions. */
  output(): string;
  /** The engine output of the last operation only. */
  lastOutput(): string;
  up(): Promise<UpResult>;
  /**
   * `pulumi up --debug -v=9 --logtostderr`, what users attach to bug reports: its whole
   * output and log, kept apart from the transcript.
   */
  upVerbose(): Promise<{ result: UpResult; log: string }>;
  preview(): Promise<PreviewResult>;
  refresh(): Promise<RefreshResult>;
  destroy(): Promise<DestroyResult>;
  /** Replaces the program the next operation runs. */
  setProgram(program: PulumiFn): void;
  /** The state file exactly as the backend stored it (secrets encrypted). */
  stateFile(): string;
  /** The state's resources, decrypted (the Automation API exports with --show-secrets). */
  resources(): Promise<StateResource[]>;
  remove(): Promise<void>;
}

export interface StateResource {
  urn: string;
  type: string;
  id?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

/** Creates a stack around an inline program. Call `remove()` in a `finally`/`t.after`. */
export async function createTestStack(name: string, program: PulumiFn): Promise<TestStack> {
  for (const [k, v] of Object.entries(PULUMI_ENV)) process.env[k] ??= v;
  mkdirSync(WORK_ROOT, { recursive: true });
  const workDir = mkdtempSync(path.join(WORK_ROOT, `${name}-`));
  const backend = path.join(workDir, "state");
  mkdirSync(backend);
  let transcript = "";
  const onOutput = (text: string) => {
    transcript += text;
  };
  let currentProgram = program;
  const projectName = `test-${name}`;
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: "test", projectName, program: () => currentProgram() },
    {
      workDir,
      envVars: { ...PULUMI_ENV, PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_HOME: path.join(workDir, "home") },
      projectSettings: { name: projectName, runtime: "nodejs", backend: { url: `file://${backend}` } },
      secretsProvider: "passphrase",
    },
  );

  const withTranscript = async <T>(op: string, run: () => Promise<T>): Promise<T> => {
    transcript += `\n===== pulumi ${op} =====\n`;
    try {
      return await run();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`pulumi ${op} failed: ${message}\n----- engine output -----\n${transcript}`);
    }
  };

  return {
    stack,
    workDir,
    output: () => transcript,
    lastOutput: () => transcript.slice(transcript.lastIndexOf("\n===== pulumi ")),
    up: () => withTranscript("up", () => stack.up({ onOutput, color: "never" })),
    upVerbose: () =>
      withTranscript("up --debug -v=9 --logtostderr", async () => {
        let log = "";
        const collect = (text: string) => (log += text);
        const result = await stack.up({ color: "never", debug: true, logVerbosity: 9, logToStdErr: true, onOutput: collect, onError: collect });
        return { result, log };
      }),
    preview: () => withTranscript("preview", () => stack.preview({ onOutput, color: "never", diff: true })),
    refresh: () => withTranscript("refresh", () => stack.refresh({ onOutput, color: "never" })),
    destroy: () => withTranscript("destroy", () => stack.destroy({ onOutput, color: "never" })),
    setProgram(next) {
      currentProgram = next;
    },
    stateFile() {
      const dir = path.join(backend, ".pulumi", "stacks", projectName);
      return readFileSync(path.join(dir, "test.json"), "utf8");
    },
    async resources() {
      const exported = await stack.exportStack();
      return (exported.deployment?.resources ?? []) as StateResource[];
    },
    async remove() {
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}
