/** Bytes in a mebibyte: every size the provider prints is in MiB. */
export const MiB = 1024 * 1024;

/** "12.3 MiB"-style figure for messages, `digits` after the point. */
export const mib = (bytes: number, digits = 0): string => (bytes / MiB).toFixed(digits);
