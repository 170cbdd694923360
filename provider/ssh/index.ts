export { connect, type ConnectOptions, type Endpoint } from "./connect";
export { SshSession, tail, type ExecOptions, type ExecResult, type FileToUpload } from "./session";
export { fingerprint, HostKeyMismatchError, hostKeyAlgorithmsFor, publicKeyLine, sameHostKey } from "./host-key";
export { bootIdOf, waitForNewBoot } from "./wait-for-boot";
export { shellJoin, shellQuote } from "../util/shell-quote";
export { generateEd25519KeyPair, type SshKeyPair } from "./openssh-key";
export { NoSshGreeting, sshGreetingSoon, sshGreetingWithin, type GreetingProbe } from "./greeting-probe";
