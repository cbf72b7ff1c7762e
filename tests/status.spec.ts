/**
 * npm run status, its pure part: the staging stack's own ApplicationSet and the Applications Argo
 * CD generates from it, with the status Argo CD's controllers write at each moment of a rollout
 * (schema-valid per @kubernetes-models/argo-cd), turned into steps, tenants, the active step and
 * what it waits for. The command against a real API server is proven in e2e/status.e2e.ts.
 */
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { certificateProblem, hubConnection, hubGet, parseKubeconfig } from "../commands/hub-client";
import { validateObjects } from "./doubles/k8s-schema";
import { formatRolloutStatus, rolloutStatus } from "../commands/rollout-status";
import { type AppState, type Obj, applicationStatus, clusterParams, generatedApplication, objectsOf, rollingSyncEntry } from "./helpers";

const NEW = "4f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39";
const OLD = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
const NOW = new Date("2026-05-01T12:10:00Z");
const at = (hhmmss: string) => `2026-05-01T${hhmmss}Z`;
const ROLLED_OUT = "Application resource became Healthy, updating status from Progressing to Healthy";

type Moment = Record<string, { app: Partial<AppState>; rollout?: [status: "Waiting" | "Pending" | "Progressing" | "Healthy", message: string, at: string] }>;

/** The staging fleet at one moment: tenant -> what Argo CD reports for it. */
async function fleetAt(moment: Moment, edit: (appSet: Obj) => void = () => undefined) {
    const declared = structuredClone((await objectsOf("staging", { kind: "ApplicationSet" }))[0].object) as Obj;
    const appSet: Obj = { ...declared, metadata: { ...declared.metadata, uid: "5b0e6f0a-7c1d-4e43-9a51-3f0d2b7c8e11" } };
    edit(appSet);
    const steps: Obj[] = appSet.spec.strategy.rollingSync.steps;
    const apps = (await clusterParams("staging")).map((c) => {
        const app = generatedApplication(appSet, c);
        const m = moment[c.name];
        if (m) app.status = applicationStatus(app, { sync: "Synced", health: "Healthy", revision: NEW, at: at("12:00:00"), ...m.app });
        return app;
    });
    const entries = apps.flatMap((app) => {
        const r = moment[app.metadata.labels.tenant]?.rollout;
        const step = steps.findIndex((s) => s.matchExpressions.every((e: Obj) => e.values.includes(app.metadata.labels[e.key]))) + 1;
        return r ? [rollingSyncEntry(app, step || -1, r[0], r[1], r[2], app.status?.sync.revision ?? NEW)] : [];
    });
    const active = steps.findIndex((_, i) => entries.some((e) => e.step === String(i + 1) && e.status !== "Healthy")) + 1;
    appSet.status = {
        conditions: [
            active > 0
                ? { type: "RolloutProgressing", status: "True", reason: "ApplicationSetModified", message: `ApplicationSet is performing rollout of step ${active}`, lastTransitionTime: at("12:06:00") }
                : { type: "RolloutProgressing", status: "False", reason: "ApplicationSetRolloutComplete", message: "ApplicationSet Rollout has completed", lastTransitionTime: at("12:08:00") },
            { type: "ErrorOccurred", status: "False", reason: "ApplicationSetUpToDate", message: "All applications have been generated successfully", lastTransitionTime: at("11:00:00") },
        ],
        ...(entries.length > 0 ? { applicationStatus: entries } : {}),
    };
    if (entries.length === 0) delete appSet.status.applicationStatus;
    assert.deepStrictEqual(await validateObjects([appSet, ...apps]), [], "the test's Argo CD objects are not schema-valid");
    return { appSet, apps };
}

const canaryDone: Moment = { "stg-canary": { app: {}, rollout: ["Healthy", ROLLED_OUT, at("12:05:30")] } };
const degradedAcme: Moment = {
    ...canaryDone,
    "stg-acme": { app: { health: "Degraded", healthMessage: "Agent prober failed revision 3: warm-up call timed out", operation: { phase: "Succeeded", message: "successfully synced (all tasks run)", startedAt: at("12:06:10") } }, rollout: ["Progressing", "Application resource completed a sync successfully, updating status from Pending to Progressing", at("12:06:20")] },
    "stg-initech": { app: { sync: "OutOfSync", revision: OLD }, rollout: ["Waiting", "Application has pending changes, setting status to Waiting", at("12:04:00")] },
};

describe("npm run status: a rollout as Argo CD reports it", () => {
    it("mid-rollout: the target revision, step 1 complete, step 2 active for the time since it started, and what each of its tenants waits for", async () => {
        const { appSet, apps } = await fleetAt({
            ...canaryDone,
            "stg-acme": { app: { health: "Progressing", healthMessage: "Waiting for rollout to finish: 1 of 2 updated replicas are available...", operation: { phase: "Succeeded", message: "successfully synced (all tasks run)", startedAt: at("12:06:10") } }, rollout: ["Progressing", "Application resource completed a sync successfully, updating status from Pending to Progressing", at("12:06:20")] },
            "stg-initech": { app: { sync: "OutOfSync", revision: OLD }, rollout: ["Waiting", "Application has pending changes, setting status to Waiting", at("12:04:00")] },
        });
        const s = rolloutStatus(appSet, apps, NOW);
        assert.strictEqual(s.state, "progressing");
        assert.strictEqual(s.targetRevision, "HEAD");
        assert.strictEqual(s.activeStep, 2);
        assert.strictEqual(s.activeForSeconds, 4 * 60);
        assert.deepStrictEqual(s.steps.map((step) => [step.step, step.state, step.tenants.map((t) => t.tenant)]), [[1, "complete", ["stg-canary"]], [2, "active", ["stg-acme", "stg-initech"]]]);
        assert.deepStrictEqual(s.waitingFor, ["stg-acme: Synced and Healthy (now Synced, Progressing: Deployment voice-agent: Waiting for rollout to finish: 1 of 2 updated replicas are available...)", "stg-initech: its turn to sync (maxUpdate 50%)"]);
        const acme = s.steps[1].tenants[0];
        assert.deepStrictEqual([acme.sync, acme.health, acme.revision, acme.rollout], ["Synced", "Progressing", NEW, "Progressing"]);
        const text = formatRolloutStatus(s);
        assert.match(text, /^ApplicationSet argocd\/voice-agent: target revision HEAD$/m);
        assert.match(text, /^Rollout: step 2 of 2 active for 4m00s$/m);
        assert.match(text, /^ {2}Step 2 of 2: ring In \(main\); maxUpdate 50%: ACTIVE for 4m00s$/m);
        assert.match(text, /^ {4}stg-acme +Progressing +3m40s +Synced +Progressing +4f1c2a9e8b7d +Deployment voice-agent: Waiting for rollout to finish/m);
        assert.match(text, /^ {4}stg-initech +Waiting +6m00s +OutOfSync +Healthy +0a1b2c3d4e5f/m);
    });

    it("complete: every Application Synced and Healthy at the target revision, no step active", async () => {
        const { appSet, apps } = await fleetAt({ ...canaryDone, "stg-acme": { app: {}, rollout: ["Healthy", ROLLED_OUT, at("12:07:00")] }, "stg-initech": { app: {}, rollout: ["Healthy", ROLLED_OUT, at("12:08:00")] } });
        const s = rolloutStatus(appSet, apps, NOW);
        assert.strictEqual(s.state, "complete");
        assert.strictEqual(s.activeStep, null);
        assert.deepStrictEqual(s.steps.map((step) => step.state), ["complete", "complete"]);
        assert.match(formatRolloutStatus(s), /^Rollout: COMPLETE: every Application is Synced and Healthy at HEAD$/m);
    });

    it("a Degraded Application fails the rollout, with its health message", async () => {
        const s = rolloutStatus(...Object.values(await fleetAt(degradedAcme)) as [Obj, Obj[]], NOW);
        assert.strictEqual(s.state, "failed");
        assert.deepStrictEqual(s.failures, ["stg-acme is Degraded: Deployment voice-agent: Agent prober failed revision 3: warm-up call timed out"]);
        assert.match(formatRolloutStatus(s), /^FAILED:\n {2}stg-acme is Degraded: Deployment voice-agent: Agent prober failed revision 3/m);
    });

    it("a sync that failed after its retries fails the rollout, with the operation's message", async () => {
        const { appSet, apps } = await fleetAt({
            ...degradedAcme,
            "stg-acme": { app: { sync: "OutOfSync", health: "Healthy", revision: OLD, operation: { phase: "Failed", message: "one or more objects failed to apply, reason: Job.batch \"voice-agent-migrate\" is invalid (retried 5 times)", startedAt: at("12:06:10") } }, rollout: ["Progressing", "Application resource completed a sync, updating status from Pending to Progressing", at("12:06:20")] },
        });
        const s = rolloutStatus(appSet, apps, NOW);
        assert.strictEqual(s.state, "failed");
        assert.deepStrictEqual(s.failures, ['stg-acme: sync Failed: one or more objects failed to apply, reason: Job.batch "voice-agent-migrate" is invalid (retried 5 times)']);
    });

    it("a maxUpdate 0 step waits for a manual sync", async () => {
        const { appSet, apps } = await fleetAt(
            { ...canaryDone, "stg-acme": { app: { sync: "OutOfSync", revision: OLD }, rollout: ["Waiting", "Application has pending changes, setting status to Waiting", at("12:04:00")] }, "stg-initech": { app: { sync: "OutOfSync", revision: OLD }, rollout: ["Waiting", "Application has pending changes, setting status to Waiting", at("12:04:00")] } },
            (a) => (a.spec.strategy.rollingSync.steps[1].maxUpdate = 0),
        );
        const s = rolloutStatus(appSet, apps, NOW);
        assert.strictEqual(s.activeStep, 2);
        assert.deepStrictEqual(s.waitingFor, ["stg-acme: a manual sync (maxUpdate 0: Argo CD does not sync this step itself)", "stg-initech: a manual sync (maxUpdate 0: Argo CD does not sync this step itself)"]);
    });

    it("an Application Synced and Healthy at another revision than the target is not done", async () => {
        const { appSet, apps } = await fleetAt({ ...canaryDone, "stg-acme": { app: {}, rollout: ["Healthy", ROLLED_OUT, at("12:07:00")] }, "stg-initech": { app: {}, rollout: ["Healthy", ROLLED_OUT, at("12:08:00")] } });
        const initech = apps.find((a) => a.metadata.labels.tenant === "stg-initech")!;
        initech.status.sync.comparedTo.source = { ...initech.status.sync.comparedTo.source, targetRevision: "v1.3.0" };
        const s = rolloutStatus(appSet, apps, NOW);
        assert.strictEqual(s.state, "progressing");
        assert.strictEqual(s.activeStep, 2);
        assert.deepStrictEqual(s.waitingFor, ["stg-initech: a sync to HEAD (now Synced, Healthy at 4f1c2a9e8b7d)"]);
    });

    it("an Application still Synced and Healthy at the old commit of a branch target is not done while Argo CD has it Pending", async () => {
        const { appSet, apps } = await fleetAt({
            ...canaryDone,
            "stg-acme": { app: { revision: OLD }, rollout: ["Pending", "Application moved to Pending status, watching for the Application resource to start Progressing", at("12:06:00")] },
            "stg-initech": { app: {}, rollout: ["Healthy", ROLLED_OUT, at("12:08:00")] },
        });
        const s = rolloutStatus(appSet, apps, NOW);
        assert.strictEqual(s.state, "progressing");
        assert.deepStrictEqual(s.waitingFor, ["stg-acme: Argo CD to start its sync"]);
    });

    // Argo CD v3.6.2 controller/sync.go: a deny window keeps the operation Running with this message, applying nothing.
    it("a sync a deny window blocks is shown as that, not as Argo CD yet to start it", async () => {
        const { appSet, apps } = await fleetAt({
            ...canaryDone,
            "stg-acme": { app: { sync: "OutOfSync", revision: OLD, operation: { phase: "Running", message: "Sync operation blocked by sync window", startedAt: at("12:06:10") } }, rollout: ["Pending", "Application moved to Pending status, watching for the Application resource to start Progressing", at("12:06:00")] },
            "stg-initech": { app: {}, rollout: ["Healthy", ROLLED_OUT, at("12:08:00")] },
        });
        const s = rolloutStatus(appSet, apps, NOW);
        assert.strictEqual(s.state, "progressing");
        assert.deepStrictEqual(s.waitingFor, ["stg-acme: a sync window to allow its sync (Argo CD started it; a deny window blocks it)"]);
    });

    // Argo CD v3.6.2 progressive_sync.go: steps come from the Applications the generator still produces;
    // one it no longer produces keeps its status entry with step -1, although its labels match a step.
    it("an Application left behind by a removed tenant is named as that, and does not hold the rollout", async () => {
        const { appSet, apps } = await fleetAt({ ...canaryDone, "stg-acme": { app: {}, rollout: ["Healthy", ROLLED_OUT, at("12:07:00")] }, "stg-initech": { app: {}, rollout: ["Healthy", ROLLED_OUT, at("12:08:00")] } });
        const removed = structuredClone(apps.find((a) => a.metadata.labels.tenant === "stg-initech")!);
        removed.metadata.name = "voice-agent-stg-gone";
        removed.metadata.labels.tenant = "stg-gone";
        removed.status.sync.revision = OLD;
        appSet.status.applicationStatus.push(rollingSyncEntry(removed, -1, "Healthy", ROLLED_OUT, at("11:00:00"), OLD));
        const s = rolloutStatus(appSet, [...apps, removed], NOW);
        assert.strictEqual(s.state, "complete", [...s.failures, ...s.waitingFor].join("\n"));
        assert.deepStrictEqual(s.unmatched, []);
        assert.ok(s.notes.some((n) => n.startsWith("stg-gone: Application voice-agent-stg-gone is left behind: the ApplicationSet no longer generates it") && n.includes("kubectl -n argocd delete application voice-agent-stg-gone")), s.notes.join("\n"));
        assert.ok(!formatRolloutStatus(s).includes("check its labels"));
    });

    it("without Argo CD's RollingSync status: steps from the Applications' labels, and a note that progressive syncs look off", async () => {
        const { appSet, apps } = await fleetAt({ "stg-canary": { app: { sync: "OutOfSync", revision: OLD } } });
        const s = rolloutStatus(appSet, apps, NOW);
        assert.deepStrictEqual(s.steps.map((step) => step.tenants.map((t) => t.tenant)), [["stg-canary"], ["stg-acme", "stg-initech"]]);
        assert.strictEqual(s.activeStep, 1);
        assert.ok(s.notes.some((n) => n.includes("applicationsetcontroller.enable.progressive.syncs")), s.notes.join("\n"));
    });

    it("an Application no step matches fails the rollout (Argo CD never syncs it); Applications of other ApplicationSets are not counted", async () => {
        const { appSet, apps } = await fleetAt({ ...canaryDone });
        const stray = apps.find((a) => a.metadata.labels.tenant === "stg-initech")!;
        stray.metadata.labels.ring = "beta";
        const foreign = structuredClone(apps[0]);
        foreign.metadata.name = "someone-elses-app";
        foreign.metadata.ownerReferences[0].name = "other-appset";
        const s = rolloutStatus(appSet, [...apps, foreign], NOW);
        assert.deepStrictEqual(s.unmatched.map((t) => t.tenant), ["stg-initech"]);
        assert.ok(s.failures.some((f) => f.startsWith("stg-initech matches no rollout step")), s.failures.join("\n"));
        assert.ok(!s.steps.flatMap((step) => step.tenants).some((t) => t.application === "someone-elses-app"));
    });
});

describe("npm run status: the hub connection", () => {
    const kubeconfig = (user: Obj) =>
        JSON.stringify({ apiVersion: "v1", kind: "Config", clusters: [{ name: "hub", cluster: { server: "https://127.0.0.1:1", "certificate-authority-data": Buffer.from("CA").toString("base64") } }], users: [{ name: "admin", user }], contexts: [{ name: "hub", context: { cluster: "hub", user: "admin" } }], "current-context": "hub" });

    it("reads a bearer token or a client certificate from the current context", () => {
        assert.strictEqual(parseKubeconfig(kubeconfig({ token: "tok-123" }), "test").token, "tok-123");
        const cert = parseKubeconfig(kubeconfig({ "client-certificate-data": Buffer.from("CERT").toString("base64"), "client-key-data": Buffer.from("KEY").toString("base64") }), "test");
        assert.deepStrictEqual([cert.server, cert.ca, cert.cert, cert.key], ["https://127.0.0.1:1", "CA", "CERT", "KEY"]);
    });

    it("reaches only the stack's hub: a kubeconfig pointing elsewhere is refused, and none at all names --kubeconfig and KUBECONFIG", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-status-"));
        try {
            const file = path.join(dir, "hub.yaml");
            fs.writeFileSync(file, kubeconfig({ token: "tok-elsewhere-1" }));
            assert.throws(
                () => hubConnection("dev", { file, source: file }),
                (err: Error) => err.message === `the kubeconfig from ${file} points at https://127.0.0.1:1, not at dev's hub https://hub.dev.agentfleet.example.net:6443 (agentfleet:hub.server); pass the kubeconfig of dev's hub`,
            );
            fs.writeFileSync(file, kubeconfig({ token: "tok-dev-1" }).replace("https://127.0.0.1:1", "https://hub.dev.agentfleet.example.net:6443/"));
            assert.strictEqual(hubConnection("dev", { file, source: file }).token, "tok-dev-1");
            assert.throws(() => hubConnection("dev", undefined), (err: Error) => err.message.startsWith("no hub kubeconfig: pass --kubeconfig FILE or set KUBECONFIG to the kubeconfig of dev's hub"));
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("refuses exec credential plugins clearly, without echoing the kubeconfig", () => {
        assert.throws(() => parseKubeconfig(kubeconfig({ exec: { command: "aws", args: ["--secret", "hunter2"] } }), "test"), (err: Error) => /uses exec credential plugins; npm run status needs a client certificate or a bearer token/.test(err.message) && !err.message.includes("hunter2"));
    });

    it("an unreachable hub is one line naming the server, never the token", async () => {
        const port = await new Promise<number>((resolve) => {
            const server = net.createServer().listen(0, "127.0.0.1", () => {
                const p = (server.address() as net.AddressInfo).port;
                server.close(() => resolve(p));
            });
        });
        const hub = { ...parseKubeconfig(kubeconfig({ token: "tok-secret-9" }), "hub.yaml"), server: `https://127.0.0.1:${port}` };
        await assert.rejects(hubGet(hub, "/apis"), (err: Error) => err.message === `the hub API server https://127.0.0.1:${port} is unreachable (ECONNREFUSED); kubeconfig from hub.yaml`);
    });

    describe("a hub whose certificate the kubeconfig does not trust is a certificate problem saying what to do, not 'unreachable'", () => {
        let dir: string;
        const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
        const servers: https.Server[] = [];

        before(() => {
            // Two CAs; serving certificates for 127.0.0.1 and for another host, signed by the first.
            dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-tls-"));
            const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
            const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
            for (const ca of ["ca", "other-ca"]) openssl("req", "-x509", ...ec, "-days", "1", "-subj", `/CN=${ca}`, "-keyout", `${ca}.key`, "-out", `${ca}.crt`);
            for (const [name, san] of [["serving", "IP:127.0.0.1"], ["wrong-host", "DNS:hub.example.net"]]) {
                openssl("req", ...ec, "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
                fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
                openssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", `${name}.ext`, "-out", `${name}.crt`);
            }
        });
        after(() => {
            for (const s of servers) s.close();
            fs.rmSync(dir, { recursive: true, force: true });
        });

        /** An API server on loopback answering every GET with an empty list, presenting `cert` (and `chain`). */
        const apiServer = (cert: string, key: string) =>
            new Promise<string>((resolve) => {
                const server = https.createServer({ cert, key }, (_req, res) => res.writeHead(200, { "Content-Type": "application/json" }).end('{"items":[]}'));
                servers.push(server);
                server.listen(0, "127.0.0.1", () => resolve(`https://127.0.0.1:${(server.address() as net.AddressInfo).port}`));
            });
        const hubTrusting = (server: string, ca: string) => ({ ...parseKubeconfig(kubeconfig({ token: "tok-secret-9" }), "hub.yaml"), server, ca });
        const refusal = (err: Error, ...fragments: string[]) => {
            assert.doesNotMatch(err.message, /unreachable/);
            assert.ok(!err.message.includes("tok-secret-9"), "the message repeats the token");
            for (const f of fragments) assert.ok(err.message.includes(f), `${JSON.stringify(f)} not in: ${err.message}`);
            return true;
        };

        it("trusted: the same server and CA answer (the set-up is right)", async () => {
            const server = await apiServer(read("serving.crt"), read("serving.key"));
            assert.deepStrictEqual(await hubGet(hubTrusting(server, read("ca.crt")), "/apis"), { items: [] });
        });

        it("signed by a CA the kubeconfig does not hold (UNABLE_TO_VERIFY_LEAF_SIGNATURE)", async () => {
            const server = await apiServer(read("serving.crt"), read("serving.key"));
            await assert.rejects(hubGet(hubTrusting(server, read("other-ca.crt")), "/apis"), (err: Error) =>
                refusal(err, `the hub API server ${server} presented a TLS certificate that the kubeconfig from hub.yaml does not trust (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`, "certificate-authority-data", "server-ca.crt"),
            );
        });

        it("a chain ending in a CA the kubeconfig does not hold (SELF_SIGNED_CERT_IN_CHAIN)", async () => {
            const server = await apiServer(read("serving.crt") + read("ca.crt"), read("serving.key"));
            await assert.rejects(hubGet(hubTrusting(server, read("other-ca.crt")), "/apis"), (err: Error) => refusal(err, "does not trust (SELF_SIGNED_CERT_IN_CHAIN)", "not signed by the kubeconfig's CA"));
        });

        it("a certificate for another host name (ERR_TLS_CERT_ALTNAME_INVALID)", async () => {
            const server = await apiServer(read("wrong-host.crt"), read("wrong-host.key"));
            await assert.rejects(hubGet(hubTrusting(server, read("ca.crt")), "/apis"), (err: Error) => refusal(err, "(ERR_TLS_CERT_ALTNAME_INVALID)", "does not name the host", "127.0.0.1", "--tls-san"));
        });

        it("an expired or not yet valid certificate, naming the clock", () => {
            const hub = { server: "https://hub.example.net:6443", source: "hub.yaml" };
            assert.match(certificateProblem(hub, Object.assign(new Error("certificate has expired"), { code: "CERT_HAS_EXPIRED" }))!, /does not trust \(CERT_HAS_EXPIRED\): it has expired\. Renew .*clock/);
            assert.match(certificateProblem(hub, Object.assign(new Error("certificate is not yet valid"), { code: "CERT_NOT_YET_VALID" }))!, /it is not valid yet\. .*clock/);
            assert.strictEqual(certificateProblem(hub, Object.assign(new Error("refused"), { code: "ECONNREFUSED" })), undefined);
        });
    });
});
