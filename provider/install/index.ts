export { runInstall } from "./pipeline";
export { expectedInstalledHostKey, type InstallContext, type Phase } from "./context";
export { LAYOUT_MARKER } from "./disko";
