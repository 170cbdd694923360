/**
 * Pulumi's runtime records a stack trace on each of the four promises it makes per resource
 * property (read only when PULUMI_DEBUG_PROMISE_LEAKS is set). Its language host installs
 * source-map-support, which maps every frame of each trace: with a NixosHost's ~20
 * properties that was ~35 ms per host, most of what a no-op `pulumi preview` of a fleet cost
 * beyond Pulumi's own floor (bench/fleet.ts). Call before registering a resource and call the
 * result right after. Pulumi raises the limit itself where it records a resource's source
 * position, so that is unaffected.
 */
export function skipPromiseStackTraces(): () => void {
  if (process.env["PULUMI_DEBUG_PROMISE_LEAKS"]) return () => undefined;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  return () => {
    Error.stackTraceLimit = limit;
  };
}
