export { runInstall } from "./pipeline";
export { installedHostKey, type InstallContext, type Phase } from "./context";
export { LAYOUT_MARKER } from "./disko";
