// The shapes of a `system` input's strings, without zod: the schema validates with them, and
// the program (which does not load zod) gates its evaluation on them.

/** "<flake path or ref>#<name>" for nixosConfigurations.<name>. */
export const FLAKE_ATTR = /^[^#]+#[A-Za-z0-9_.'-]+$/;
export const STORE_PATH = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+._?=-]+$/;
