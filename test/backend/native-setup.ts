// Whether the native backend's tests run: always under CI (where .ci/run installs OpenBLAS, so a
// missing addon is a failed set-up and its tests must fail), and on a developer's machine only
// when the addon is built, saying loudly which command builds it when it is not.
import { loadNativeAddon, NATIVE_BUILD_HINT } from "../../src/backend/native-addon.ts"

const underCi = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false"
const loaded = loadNativeAddon()

export const nativeTestsRun = underCi || !("error" in loaded)

if (!nativeTestsRun) {
  process.stderr.write(`native backend tests skipped: ${"error" in loaded ? loaded.error : ""}; build it with: ${NATIVE_BUILD_HINT}\n`)
}
