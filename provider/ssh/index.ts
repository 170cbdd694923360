export { connect, type ConnectOptions, type Endpoint } from "./connect";
export { SshSession, tail, type ExecOptions, type ExecResult } from "./session";
export { fingerprint, HostKeyMismatchError, publicKeyLine, sameHostKey } from "./host-key";
export { shellJoin, shellQuote } from "../util/shell-quote";
