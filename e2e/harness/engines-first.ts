/**
 * A Mocha root hook of the real-engine suite (.mocharc.e2e.json): every engine is built, or found
 * built, once, before any suite starts, under its own time bound. A suite's `before` hook may take
 * 30 minutes (the suite timeout); a cold build on a loaded 2-core machine took longer, the hook timed
 * out with its build still running, and the next suite started the same build into the same folder
 * (seen on a cold CI run: three builds of the Kubernetes provider at once). After this, the suites'
 * own ensureEngines calls only find the stamps.
 */
import { ensureEngines } from "../../engines/toolchain";

/** A cold build of every engine measured about 25 minutes on an idle 2-core machine; three times that is a hang. */
const BUILD_BOUND_MS = 90 * 60_000;

export const mochaHooks = {
    async beforeAll(this: Mocha.Context) {
        this.timeout(BUILD_BOUND_MS);
        await ensureEngines({ log: (line) => process.stderr.write(`e2e ${line}\n`) });
    },
};
