import { z } from "zod";

// Field names follow @pulumi/command's remote.ConnectionArgs, so one object serves both.
const sshConnectionFields = {
  host: z.string().trim().min(1, "give the machine's address or DNS name, e.g. host: vm.publicIp"),
  port: z.number().int().min(1, "ports run from 1 to 65535").max(65535, "ports run from 1 to 65535").default(22),
  user: z.string().min(1, "give a user name, or leave user out for root").default("root"),
  privateKey: z.string().refine((k) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(k), {
    message: "give the private key's contents (PEM / OpenSSH format), not its path: fs.readFileSync(path, 'utf8')",
  }).optional(),
  privateKeyPassword: z.string().optional(),
  password: z.string().optional(),
  agentSocketPath: z.string().min(1).optional(),
  hostKey: z
    .string()
    .regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$/, {
      message: 'give the public host key as in known_hosts without the host name, e.g. "ssh-ed25519 AAAAC3..."',
    })
    .optional(),
  dialErrorLimit: z.number().int().min(1, "dialErrorLimit is the number of dial attempts, at least 1").default(10),
  perDialTimeout: z.number().int().min(1, "perDialTimeout is in seconds, at least 1").default(15),
};

export const proxyConnectionSchema = z.object(sshConnectionFields).strict();

export const connectionSchema = z
  .object({
    ...sshConnectionFields,
    proxy: proxyConnectionSchema.optional(),
    sudo: z.boolean().default(false),
    /** For a sudo that asks for one (NixOS's default: security.sudo.wheelNeedsPassword); given to `sudo -S` on stdin. */
    sudoPassword: z.string().min(1, "give the user's password, or leave sudoPassword out").regex(/^[^\n\r]*$/, { message: "sudo reads the password as one line: it cannot hold a line break" }).optional(),
  })
  .strict()
  .refine((c) => c.user === "root" || c.sudo, {
    message: "a non-root user needs sudo: true (the provider sets the system profile and activates as root)",
    path: ["sudo"],
  })
  .refine((c) => c.sudoPassword === undefined || (c.user !== "root" && c.sudo), {
    message: "sudoPassword is used only with sudo: true and a non-root user; leave it out, or set sudo: true",
    path: ["sudoPassword"],
  });

export type ConnectionInput = z.input<typeof connectionSchema>;
export type Connection = z.output<typeof connectionSchema>;
