import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { HEALTH_CHECKS_DIR, healthCheckCmValues, loadHealthChecks, type HealthCheck } from "../stacks/health-checks";
import { assertLua51, HEALTH_STATUSES, runHealthScript, type HealthStatus } from "./doubles/lua-vm";

/** One entry of Argo CD's health_test.yaml format (argo-cd util/lua IndividualTest). */
interface HealthTest {
    healthStatus: HealthStatus;
    inputPath: string;
}

function readHealthTests(check: HealthCheck): HealthTest[] {
    const file = path.join(check.dir, "health_test.yaml");
    const tests = (YAML.parse(fs.readFileSync(file, "utf8")) as { tests?: HealthTest[] }).tests;
    assert.ok(Array.isArray(tests) && tests.length > 0, `${file} has no tests`);
    return tests;
}

function readFixture(check: HealthCheck, inputPath: string): unknown {
    return YAML.parse(fs.readFileSync(path.join(check.dir, inputPath), "utf8"));
}

function assertValidHealth(result: HealthStatus, input: unknown): void {
    assert.ok((HEALTH_STATUSES as readonly string[]).includes(result.status), `invalid status for ${JSON.stringify(input)}`);
    assert.equal(typeof result.message, "string", `no message for ${JSON.stringify(input)}`);
}

function runOrExplain(script: string, input: unknown): HealthStatus {
    try {
        return runHealthScript(script, input);
    } catch (error) {
        throw new Error(`raised on ${JSON.stringify(input)}: ${(error as Error).message}`);
    }
}

const PROBE_GATE = "agentfleet.io/probe-gate";
const PROBE_REVISION = "agentfleet.io/probe-revision";
/** Set by the Deployment controller; raised only for a new pod template (a rollback included). */
const REVISION = "deployment.kubernetes.io/revision";
const PROBE_RESULT = "agentfleet.io/probe-result";

/** Objects a live cluster should never send, but a controller mid-upgrade or a stale cache might. */
const HOSTILE_INPUTS: unknown[] = [
    {},
    { metadata: null, spec: null, status: null },
    { metadata: {} },
    { metadata: { annotations: {} } },
    { metadata: { generation: 4 } },
    { metadata: { generation: 4 }, status: {} },
    { metadata: { generation: 4 }, status: { replicas: 1 } },
    { metadata: { annotations: { [PROBE_GATE]: "true" } } },
    { metadata: { annotations: { [PROBE_GATE]: "true", [PROBE_RESULT]: "fail" } }, spec: { replicas: 0 } },
    { metadata: { annotations: { [PROBE_GATE]: "true", [PROBE_REVISION]: "0", [PROBE_RESULT]: "pass" } }, spec: { replicas: 0 } },
    { spec: {} },
    { spec: { replicas: 0 } },
    { status: {} },
    { status: { conditions: [] } },
    { status: { conditions: [{}] } },
    { status: { conditions: [null, { type: "Progressing" }] } },
    { status: { loadBalancer: {} } },
    { status: { loadBalancer: { ingress: [] } } },
    { status: { loadBalancer: { ingress: [{}] } } },
];

/** Every combination of absent, empty and partial top-level fields. */
function fieldCombinations(): unknown[] {
    const metadatas = [
        undefined,
        {},
        { annotations: {} },
        { generation: 3, annotations: { [PROBE_GATE]: "true" } },
        { generation: 3, annotations: { [PROBE_GATE]: "true", [REVISION]: "2", [PROBE_REVISION]: "2", [PROBE_RESULT]: "pass" } },
        { name: "voice-agent", generation: 3, annotations: { [PROBE_GATE]: "true", [REVISION]: "2", [PROBE_REVISION]: "2", [PROBE_RESULT]: "fail" } },
        { generation: 3, annotations: { [PROBE_GATE]: "true", [REVISION]: 2, [PROBE_REVISION]: ["2"], [PROBE_RESULT]: "pass" } },
    ];
    const specs = [undefined, {}, { replicas: 0 }, { replicas: 2 }, { paused: true }];
    const statuses = [
        undefined,
        {},
        { conditions: [] },
        { observedGeneration: 3 },
        { observedGeneration: 3, replicas: 2, updatedReplicas: 2, availableReplicas: 2 },
        { observedGeneration: 3, conditions: [{ type: "Progressing", reason: "ProgressDeadlineExceeded" }] },
        { loadBalancer: {} },
        { loadBalancer: { ingress: [] } },
    ];
    return metadatas.flatMap((metadata) =>
        specs.flatMap((spec) => statuses.map((status) => ({ metadata, spec, status }))),
    );
}

const checks = loadHealthChecks();
const checkNamed = (key: string): HealthCheck => {
    const check = checks.find((candidate) => candidate.key === key);
    assert.ok(check, `no ${key} health check`);
    return check;
};

describe("custom Argo CD health checks", () => {
    it("override the Deployment and Ingress health checks", () => {
        assert.deepEqual(
            checks.map((check) => check.key),
            ["apps_Deployment", "networking.k8s.io_Ingress"],
        );
    });

    for (const check of checks) {
        describe(check.key, () => {
            it("is Lua 5.1 syntax, which gopher-lua in Argo CD accepts", () => {
                assertLua51(check.script);
            });

            it("runs from argocd-cm without Lua's standard libraries", () => {
                assert.equal(check.useOpenLibs, false);
            });

            describe("reports the health_test.yaml status and message exactly, in the restricted VM", () => {
                for (const test of readHealthTests(check)) {
                    it(`${path.basename(test.inputPath, ".yaml")}: ${test.healthStatus.status}`, () => {
                        const result = runHealthScript(check.script, readFixture(check, test.inputPath));
                        assert.deepEqual(result, test.healthStatus);
                    });
                }
            });

            it("has an expectation for every testdata file", () => {
                const referenced = new Set(readHealthTests(check).map((test) => path.normalize(test.inputPath)));
                const fixtures = fs.readdirSync(path.join(check.dir, "testdata")).map((name) => path.join("testdata", name));
                assert.deepEqual(fixtures.filter((fixture) => !referenced.has(fixture)), []);
            });

            it("returns a valid status for hostile inputs instead of raising", () => {
                for (const input of HOSTILE_INPUTS) {
                    assertValidHealth(runOrExplain(check.script, input), input);
                }
            });

            // A live Deployment's managedFields (fieldsV1) nest far deeper than any fixture.
            it("reads an object nested as deep as a live object's managedFields", () => {
                let fieldsV1: Record<string, unknown> = { ".": {} };
                for (let depth = 0; depth < 40; depth++) fieldsV1 = { [`f:level${depth}`]: fieldsV1 };
                const input = { metadata: { name: "voice-agent", generation: 2, managedFields: [{ manager: "kube-controller-manager", fieldsV1 }] }, spec: { replicas: 1 }, status: { observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1 } };
                assertValidHealth(runOrExplain(check.script, input), input);
            });

            it("returns a valid status for every mix of absent, empty and partial metadata, spec and status", () => {
                for (const input of fieldCombinations()) {
                    assertValidHealth(runOrExplain(check.script, input), input);
                }
            });
        });
    }

    describe("the Deployment probe gate", () => {
        const deployment = checkNamed("apps_Deployment");
        const rolledOut = (generation: number, annotations: Record<string, string>) => ({
            metadata: { name: "voice-agent", generation, annotations: { [PROBE_GATE]: "true", ...annotations } },
            spec: { replicas: 1 },
            status: { observedGeneration: generation, replicas: 1, updatedReplicas: 1, availableReplicas: 1 },
        });

        it("is Healthy only with a pass for exactly the current pod template revision", () => {
            const revisions = [1, 2, 9, 10, 11, 100];
            for (const revision of revisions) {
                for (const probed of revisions) {
                    for (const result of ["pass", "fail"]) {
                        const input = rolledOut(40, { [REVISION]: String(revision), [PROBE_REVISION]: String(probed), [PROBE_RESULT]: result });
                        const expected = probed !== revision ? "Progressing" : result === "pass" ? "Healthy" : "Degraded";
                        assert.equal(runHealthScript(deployment.script, input).status, expected, JSON.stringify(input));
                    }
                }
            }
        });

        // kubectl annotate bumps metadata.generation (Kubernetes pkg/registry/apps/deployment/strategy.go);
        // a verdict keyed on the generation would be stale the moment it is written.
        it("stays Healthy however often the prober's own writes bump metadata.generation", () => {
            const verdict = { [REVISION]: "3", [PROBE_REVISION]: "3", [PROBE_RESULT]: "pass" };
            for (const generation of [3, 4, 5, 17]) {
                assert.deepEqual(runHealthScript(deployment.script, rolledOut(generation, verdict)), { status: "Healthy", message: "Agent prober passed revision 3" });
            }
        });
    });

    describe("the restricted Lua VM, like argocd-cm without useOpenLibs", () => {
        const returning = (expression: string) => `return { status = "Healthy", message = ${expression} }`;

        it("has no string library", () => {
            assert.throws(() => runHealthScript(returning(`tostring(string.find("abc", "b"))`), {}), /global 'string'/);
        });

        it("has no math library", () => {
            assert.throws(() => runHealthScript(returning(`tostring(math.max(1, 2))`), {}), /global 'math'/);
        });

        it("has no string methods", () => {
            assert.throws(() => runHealthScript(returning(`("x"):upper()`), {}), /attempt to index a string value/);
        });

        it("has no io, debug, coroutine, utf8 or global os, and require('os') gives only time and date", () => {
            const script = returning(
                `tostring(io) .. tostring(debug) .. tostring(coroutine) .. tostring(utf8) .. tostring(os) .. " " ..
                 type(require("os").time) .. type(require("os").date) .. tostring(require("os").exit)`,
            );
            assert.equal(runHealthScript(script, {}).message, "nilnilnilnilnil functionfunctionnil");
        });

        it("gives every standard library with useOpenLibs", () => {
            const script = returning(`string.upper("x") .. tostring(math.max(1, 2))`);
            assert.equal(runHealthScript(script, {}, { openLibs: true }).message, "X2");
        });

        it("exposes obj with arrays as 1-based sequences, null as nil and whole numbers printed without a decimal point", () => {
            const script = returning(`tostring(#obj.list) .. obj.list[1] .. tostring(obj.gone) .. tostring(obj.n) .. "/" .. tostring(obj.x)`);
            const input = { list: ["a", null, "b"], gone: null, n: 7, x: 2.5 };
            assert.equal(runHealthScript(script, input).message, "2anil7/2.5");
        });

        it("raises the Lua error when a script indexes nil", () => {
            assert.throws(() => runHealthScript(returning(`obj.metadata.annotations["x"]`), {}), /attempt to index a nil value/);
        });

        it("rejects results Argo CD cannot use: no table, an unknown status, a message that is not a string", () => {
            assert.throws(() => runHealthScript(`return "Healthy"`, {}), /must return a table/);
            assert.throws(() => runHealthScript(`return { status = "Fine", message = "" }`, {}), /invalid status Fine/);
            assert.throws(() => runHealthScript(`return { status = "Healthy" }`, {}), /message that is not a string/);
            assert.throws(() => runHealthScript(`return { status = "Healthy", message = 1 }`, {}), /message that is not a string/);
        });

        it("stops a script that runs past its time limit", () => {
            assert.throws(() => runHealthScript(`while true do end`, {}, { timeoutMs: 50 }), /ran longer than 50 ms/);
        });
    });

    describe("assertLua51", () => {
        it("accepts Lua 5.1", () => {
            assertLua51(`local t = { 1, 2 }\nfor i, v in ipairs(t) do if v ~= i then return nil end end\nreturn #t % 2`);
        });

        it("rejects goto and labels", () => {
            assert.throws(() => assertLua51(`goto done\n::done::`), /newer than Lua 5.1.*goto \(line 1\), label ::name:: \(line 2\)/);
        });

        it("rejects integer division", () => {
            assert.throws(() => assertLua51(`local half = 7 // 2`), /integer division '\/\/'/);
        });

        it("rejects bitwise operators", () => {
            assert.throws(() => assertLua51(`local x = 1 & 2`), /bitwise '&'/);
            assert.throws(() => assertLua51(`local x = 1 | 2`), /bitwise '\|'/);
            assert.throws(() => assertLua51(`local x = ~1`), /bitwise '~'/);
            assert.throws(() => assertLua51(`local x = 1 << 2`), /shift '<<'/);
        });

        it("rejects plain syntax errors with their position", () => {
            assert.throws(() => assertLua51(`local x = = 1`), /not valid Lua 5.1: \[1:10\]/);
        });
    });

    describe("argocd-cm values", () => {
        const readScript = (key: string) => fs.readFileSync(path.join(HEALTH_CHECKS_DIR, key, "health.lua"), "utf8");

        it("loadHealthChecks returns each folder's health.lua verbatim, sorted by key", () => {
            assert.deepEqual(
                loadHealthChecks().map(({ key, script, dir }) => ({ key, script, dir })),
                ["apps_Deployment", "networking.k8s.io_Ingress"].map((key) => ({
                    key,
                    script: readScript(key),
                    dir: path.join(HEALTH_CHECKS_DIR, key),
                })),
            );
        });

        it("puts each script under its split key and asks for no open libraries", () => {
            assert.deepEqual(healthCheckCmValues(loadHealthChecks()), {
                "resource.customizations.health.apps_Deployment": readScript("apps_Deployment"),
                "resource.customizations.health.networking.k8s.io_Ingress": readScript("networking.k8s.io_Ingress"),
            });
        });

        describe("with options.yaml", () => {
            let root: string;
            const addCheck = (key: string, files: Record<string, string>) => {
                fs.mkdirSync(path.join(root, key));
                for (const [name, text] of Object.entries(files)) {
                    fs.writeFileSync(path.join(root, key, name), text);
                }
            };
            beforeEach(() => {
                root = fs.mkdtempSync(path.join(os.tmpdir(), "health-checks-"));
            });
            afterEach(() => {
                fs.rmSync(root, { recursive: true, force: true });
            });

            it("adds useOpenLibs only for the check that asks for it", () => {
                addCheck("Service", { "health.lua": "-- needs string\n", "options.yaml": "useOpenLibs: true\n" });
                addCheck("batch_Job", { "health.lua": "-- plain\n", "options.yaml": "useOpenLibs: false\n" });
                assert.deepEqual(healthCheckCmValues(loadHealthChecks(root)), {
                    "resource.customizations.health.Service": "-- needs string\n",
                    "resource.customizations.useOpenLibs.Service": "true",
                    "resource.customizations.health.batch_Job": "-- plain\n",
                });
            });

            it("rejects options other than a boolean useOpenLibs", () => {
                addCheck("apps_Deployment", { "health.lua": "", "options.yaml": "useOpenLibs: \"true\"\n" });
                assert.throws(() => loadHealthChecks(root), /must contain exactly "useOpenLibs: true"/);
            });

            it("rejects a folder without health.lua", () => {
                addCheck("apps_Deployment", { "health.Lua": "" });
                assert.throws(() => loadHealthChecks(root), /has no health.lua/);
            });

            it("rejects a folder that is not an argocd-cm key", () => {
                addCheck("apps-Deployment", { "health.lua": "" });
                assert.throws(() => loadHealthChecks(root), /not an argocd-cm key/);
            });
        });
    });
});
