/**
 * How many Applications one RollingSync ApplicationSet can carry, measured on the real API server
 * (kube-apiserver and etcd on loopback, Argo CD v3.6.2's ApplicationSet CRD). The ApplicationSet
 * controller writes the whole status in one update (applicationset_controller.go, Status().Update):
 * status.applicationStatus has one entry per Application, status.resources one per Application up
 * to --max-resources-status-count (applicationsetcontroller.status.max.resources.count). Past what
 * one etcd request holds the update is refused and RollingSync stops recording progress.
 *
 * THE TEST PLAYS THE APPLICATIONSET CONTROLLER: it writes statuses shaped as v3.6.2's controller
 * writes them (progressivesync/progressive_sync.go, status/status.go) for agentfleet's Applications
 * (tenant names at their longest, the longest status and message the controller writes), onto the
 * ApplicationSet the prod stack declares, and finds the largest count accepted by bisection.
 * Measured twice: with the cap the hub sets, and with Argo CD's default cap, which the hub replaces.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { APPSET_STATUS_RESOURCES_MAX, APPSET_STATUS_RESOURCES_PARAM } from "../components/argocd-hub";
import { AGENT_APP } from "../components/fleet-rollout";
import { ensureEngines } from "../engines/toolchain";
import { APPLICATIONSET_CEILING } from "../stacks/config";
import { type Obj, evaluated, objectsOf, releaseOf, rollingSyncEntry } from "../tests/helpers";
import { ARGOCD_NAMESPACE, configMapEnv, installArgoCdCrds } from "./harness/argocd";
import { LoopbackFleet } from "./harness/fleet";
import { type Credentials, KubeError, request } from "./harness/kube";
import { stopAll } from "./harness/processes";

/** The stack whose ApplicationSet is measured: prod's (notification subscriptions, three steps). */
const STACK = "prod";
/** Argo CD v3.6.2's default --max-resources-status-count (cmd/argocd-applicationset-controller). */
const ARGO_DEFAULT_RESOURCES_MAX = 5000;
/**
 * What the ceiling keeps in reserve below the measurement: the ApplicationSet's spec grows with
 * the stack (steps, shared labels, subscriptions; a few KB at most), and another API server or etcd
 * build may store a little more per object. 10% of the status is about 150 KB.
 */
const SAFETY_MARGIN = 0.1;
/** Bisection bounds: counts tried, and the upper end (far past both the etcd and the request-body limit). */
const MAX_PROBES = 30;
const UPPER = 40_000;

/** [status, message] pairs v3.6.2's RollingSync writes into applicationStatus (progressive_sync.go). */
const ROLLING_SYNC_MESSAGES: Array<[status: "Waiting" | "Pending" | "Progressing" | "Healthy", message: string]> = [
    ["Waiting", "No Application status found, defaulting status to Waiting"],
    ["Waiting", "Application has pending changes (revision and spec differ), setting status to Waiting"],
    ["Pending", "Application moved to Pending status, watching for the Application resource to start Progressing"],
    ["Progressing", "Application resource became Progressing, updating status from Pending to Progressing"],
    ["Progressing", "Application resource completed a sync successfully, updating status from Pending to Progressing"],
    ["Healthy", "Application resource became Healthy, updating status from Progressing to Healthy"],
];
/** The largest entry the controller writes, for every Application: the measurement is a lower bound. */
const [WORST_STATUS, WORST_MESSAGE] = [...ROLLING_SYNC_MESSAGES].sort((a, b) => b[0].length + b[1].length - (a[0].length + a[1].length))[0];
const REVISION = "4f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39";
const AT = "2026-12-05T04:40:17Z";

/** A tenant name as long as validation allows (a DNS label, 63 characters), unique by its number. */
const tenantName = (i: number) => `voice-agents-customer-tenant-in-region-europe-west-ring-${String(i).padStart(7, "0")}`.slice(-63);

const log = (line: string) => process.stderr.write(`e2e applicationset-ceiling: ${line}\n`);

describe("real engines: how many Applications one RollingSync ApplicationSet's status holds", function () {
    let runDir = "";
    let fleet: LoopbackFleet | undefined;
    let hub: Credentials;
    let appSet: Obj;
    let steps = 0;
    let hubResourcesMax = 0;
    let engineDir = "";
    const began = Date.now();
    const elapsed = () => `${((Date.now() - began) / 1000).toFixed(1)}s`;
    const statusPath = () => `/apis/argoproj.io/v1alpha1/namespaces/${ARGOCD_NAMESPACE}/applicationsets/${appSet.metadata.name}/status`;

    before(async function () {
        runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-e2e-ceiling-"));
        const engines = await ensureEngines({ only: ["etcd", "kubernetes", "kwok", "argocd"], log });
        fleet = new LoopbackFleet({ clusters: ["hub"], dir: path.join(runDir, "fleet"), bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin }, log });
        await fleet.start();
        hub = fleet.hub.admin;
        engineDir = engines.argocd.dir;
        await installArgoCdCrds(hub, engineDir);
        const declared = (await objectsOf(STACK, { kind: "ApplicationSet" }))[0].object as Obj;
        appSet = await request(hub, "POST", `/apis/argoproj.io/v1alpha1/namespaces/${ARGOCD_NAMESPACE}/applicationsets`, declared);
        steps = appSet.spec.strategy.rollingSync.steps.length;
        // The cap as the stack's hub sets it (argocd-cmd-params-cm through the chart's configs.params).
        hubResourcesMax = Number((releaseOf(await evaluated(STACK)).inputs.values as Obj).configs.params[APPSET_STATUS_RESOURCES_PARAM]);
        log(`${STACK}'s ApplicationSet created (${elapsed()}); entries: "${WORST_STATUS}" / "${WORST_MESSAGE}", Applications named like ${AGENT_APP}-${tenantName(0)}`);
    });

    after(async function () {
        await fleet?.stop();
        await stopAll();
        if (runDir && !process.env.E2E_KEEP) fs.rmSync(runDir, { recursive: true, force: true });
    });

    /** The status the ApplicationSet controller writes for `count` Applications, status.resources capped at `resourcesMax`. */
    function statusOf(count: number, resourcesMax: number): Obj {
        const names = Array.from({ length: count }, (_, i) => `${AGENT_APP}-${tenantName(i)}`).sort();
        const app = (name: string) => ({ metadata: { name } });
        return {
            conditions: [
                { type: "ErrorOccurred", status: "False", reason: "ApplicationSetUpToDate", message: "Successfully generated parameters for all Applications", lastTransitionTime: AT },
                { type: "ParametersGenerated", status: "True", reason: "ParametersGenerated", message: "Successfully generated parameters for all Applications", lastTransitionTime: AT },
                { type: "ResourcesUpToDate", status: "True", reason: "ApplicationSetUpToDate", message: "ApplicationSet up to date", lastTransitionTime: AT },
                { type: "RolloutProgressing", status: "True", reason: "ApplicationSetModified", message: `ApplicationSet is performing rollout of step ${steps}`, lastTransitionTime: AT },
                { type: "InvalidRolloutConfig", status: "False", reason: "ValidRolloutConfig", message: "Rolling Sync Configured correctly", lastTransitionTime: AT },
            ],
            // The last step's number: the most digits a step takes.
            applicationStatus: names.map((name) => rollingSyncEntry(app(name), steps, WORST_STATUS, WORST_MESSAGE, AT, REVISION)),
            // status.BuildResourceStatus: one per Application, sorted by name, truncated to the cap.
            resources: names.slice(0, resourcesMax).map((name) => ({ group: "argoproj.io", version: "v1alpha1", kind: "Application", namespace: ARGOCD_NAMESPACE, name, status: "OutOfSync", health: { status: "Progressing" } })),
            resourcesCount: count,
        };
    }

    /** Writes the status as the controller does (an update of the whole object); undefined if accepted, else the API server's refusal. */
    async function write(count: number, resourcesMax: number): Promise<{ code: number; message: string } | undefined> {
        const live = await request(hub, "GET", statusPath());
        const body = { ...live, status: statusOf(count, resourcesMax) };
        try {
            await request(hub, "PUT", `${statusPath()}?fieldManager=argocd-applicationset-controller`, body);
            return undefined;
        } catch (err) {
            if (!(err instanceof KubeError)) throw err;
            const message = (() => {
                try {
                    return String(JSON.parse(err.body).message);
                } catch {
                    return err.body.trim();
                }
            })();
            // Only a size refusal is the ceiling; anything else (a schema error) is a broken test.
            if (!/request is too large|Request entity too large/.test(message)) throw err;
            return { code: err.status, message };
        }
    }

    /** The largest count accepted, by bisection between a count that fits and UPPER; the first refused and why. */
    async function ceiling(resourcesMax: number): Promise<{ accepted: number; refused: number; code: number; message: string; bytes: number }> {
        let [low, high] = [1000, UPPER];
        assert.strictEqual(await write(low, resourcesMax), undefined, `${low} Applications were refused`);
        let refusal = await write(high, resourcesMax);
        assert.ok(refusal, `${high} Applications were accepted: raise UPPER`);
        for (let probes = 2; high - low > 1; probes++) {
            assert.ok(probes <= MAX_PROBES, `no ceiling after ${MAX_PROBES} writes (between ${low} and ${high})`);
            const middle = Math.floor((low + high) / 2);
            const refused = await write(middle, resourcesMax);
            log(`  resources cap ${resourcesMax}: ${middle} Applications ${refused ? `refused (HTTP ${refused.code})` : "accepted"} (${elapsed()})`);
            if (refused) [high, refusal] = [middle, refused];
            else low = middle;
        }
        // The accepted count is really stored: every entry, none pruned by the CRD's schema.
        assert.strictEqual(await write(low, resourcesMax), undefined);
        const stored = await request(hub, "GET", statusPath());
        assert.strictEqual(stored.status.applicationStatus.length, low);
        assert.strictEqual(stored.status.resources.length, Math.min(low, resourcesMax));
        assert.deepStrictEqual(stored.status.applicationStatus[0], statusOf(1, 0).applicationStatus[0]);
        return { accepted: low, refused: high, code: refusal!.code, message: refusal!.message, bytes: Buffer.byteLength(JSON.stringify(stored)) };
    }

    let hubCeiling: number;

    it(`with the hub's status.resources cap (${APPSET_STATUS_RESOURCES_MAX}), the status holds the ceiling plan enforces (${APPLICATIONSET_CEILING}) with a ${SAFETY_MARGIN * 100}% margin`, async function () {
        assert.strictEqual(hubResourcesMax, APPSET_STATUS_RESOURCES_MAX, `${STACK}'s hub sets ${APPSET_STATUS_RESOURCES_PARAM} to ${hubResourcesMax}`);
        // Argo CD v3.6.2's own manifests hand that key to the ApplicationSet controller (--max-resources-status-count).
        assert.strictEqual(configMapEnv(engineDir, "argocd-applicationset-controller").get("argocd-cmd-params-cm")?.get(APPSET_STATUS_RESOURCES_PARAM), "ARGOCD_APPLICATIONSET_CONTROLLER_MAX_RESOURCES_STATUS_COUNT");
        const r = await ceiling(hubResourcesMax);
        hubCeiling = r.accepted;
        log(`MEASURED (resources cap ${hubResourcesMax}): ${r.accepted} Applications accepted (stored object ${r.bytes} bytes, ${(r.bytes / r.accepted).toFixed(0)} bytes each), ${r.refused} refused: HTTP ${r.code} ${r.message} (${elapsed()})`);
        assert.ok(
            APPLICATIONSET_CEILING <= Math.floor(r.accepted * (1 - SAFETY_MARGIN)),
            `APPLICATIONSET_CEILING is ${APPLICATIONSET_CEILING}, but the real API server accepts ${r.accepted} Applications at most; with the ${SAFETY_MARGIN * 100}% margin the ceiling may be ${Math.floor(r.accepted * (1 - SAFETY_MARGIN))} at most`,
        );
    });

    it(`with Argo CD's default cap (${ARGO_DEFAULT_RESOURCES_MAX}), status.resources grows with the fleet and the status holds far fewer: the hub's cap is what raises the ceiling`, async function () {
        const r = await ceiling(ARGO_DEFAULT_RESOURCES_MAX);
        log(`MEASURED (resources cap ${ARGO_DEFAULT_RESOURCES_MAX}, Argo CD's default): ${r.accepted} Applications accepted (stored object ${r.bytes} bytes), ${r.refused} refused: HTTP ${r.code} ${r.message} (${elapsed()})`);
        assert.ok(r.accepted < APPLICATIONSET_CEILING, `with Argo CD's default cap ${r.accepted} Applications fit: the ceiling would not need the hub's cap`);
        assert.ok(hubCeiling > r.accepted * 1.5, `the hub's cap raises the ceiling only from ${r.accepted} to ${hubCeiling}`);
    });

    it("past the request-body limit the API server refuses the update itself, before etcd", async function () {
        const refused = await write(UPPER, ARGO_DEFAULT_RESOURCES_MAX);
        log(`MEASURED: ${UPPER} Applications (resources cap ${ARGO_DEFAULT_RESOURCES_MAX}): HTTP ${refused?.code} ${refused?.message} (${elapsed()})`);
        assert.strictEqual(refused?.code, 413);
        assert.match(refused!.message, /Request entity too large: limit is 3145728/);
    });
});
