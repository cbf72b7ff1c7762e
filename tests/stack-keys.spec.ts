/**
 * Stack keys that must fail at configuration time rather than later (or never): an environment
 * without a chart value file, a time zone Argo CD does not know, and the agent's host and image.
 */
import * as assert from "assert";
import { assertProblem, configProblems, evaluated, key, objectsOf } from "./helpers";
import { evaluate } from "../evaluator/evaluate";
import { generateApplications, renderApplication } from "../evaluator/render";
import { fleetObjects } from "../evaluator/registrations";

const DIGEST = `sha256:${"ab12".repeat(16)}`;

describe("stack keys checked against the chart and the real world", function () {
    this.timeout(60000);

    it("refuses an environment with no values-<env>.yaml in the chart, naming the key and the valid ones", async () => {
        const problems = await configProblems("prod", (c) => (c["agentfleet:environment"] = "production"));
        assertProblem(problems, "agentfleet:environment", '"production" has no values-production.yaml in charts/voice-agent', "value files for dev, prod, staging");
    });

    it("refuses a tenant env with no value file, with a did-you-mean", async () => {
        const problems = await configProblems("dev", (c) => (key(c, "tenants")[0].env = "stagign"));
        assertProblem(problems, "fleet/dev/dev-acme.yaml: env", "no values-stagign.yaml", "did you mean 'staging'");
    });

    it("refuses a sync window time zone that is not in the IANA list, and accepts real ones", async () => {
        const window = (timeZone: string) => (c: Record<string, unknown>) => (key(c, "rollout").syncWindows = [{ kind: "deny", schedule: "0 22 * * *", duration: "8h", timeZone }]);
        assertProblem(await configProblems("dev", window("Europe/Berln")), "agentfleet:rollout.syncWindows[0].timeZone", '"Europe/Berln" is not an IANA time zone', "did you mean 'Europe/Berlin'");
        assertProblem(await configProblems("dev", window("europe/berlin")), "agentfleet:rollout.syncWindows[0].timeZone", "case matters");
        for (const zone of ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+5"]) await evaluate("dev", { edit: window(zone) });
    });

    it("requires the agent image to be pinned by digest", async () => {
        const image = (agentImage: unknown) => (c: Record<string, unknown>) => (key(c, "deploy").agentImage = agentImage);
        assertProblem(await configProblems("dev", image({ repository: "ghcr.io/acme/voice-agent", tag: "1.5.0" })), "agentfleet:deploy.agentImage.digest", "is required", "a tag can be moved");
        assertProblem(await configProblems("dev", image({ repository: "ghcr.io/acme/voice-agent", tag: "1.5.0", digest: "sha256:abc" })), "agentfleet:deploy.agentImage.digest", "is not a digest sha256:");
        assertProblem(await configProblems("dev", image({ repository: "ghcr.io/acme/voice-agent", tag: "latest", digest: DIGEST })), "agentfleet:deploy.agentImage.tag", "other than latest");
        assertProblem(await configProblems("dev", (c) => (key(c, "deploy").agentBaseDomain = "Agents_Example")), "agentfleet:deploy.agentBaseDomain", "is not a DNS domain");
    });

    it("wires deploy.agentBaseDomain and deploy.agentImage into every tenant's rendered chart", async () => {
        const ev = await evaluate("dev", {
            edit: (c) => Object.assign(key(c, "deploy"), { agentBaseDomain: "agents.acme.example.net", agentImage: { repository: "ghcr.io/acme/voice-agent", tag: "1.5.0", digest: DIGEST } }),
        });
        const apps = generateApplications(await fleetObjects(ev));
        assert.strictEqual(apps.length, 2);
        for (const app of apps) {
            const objects = await renderApplication(app.application, { repo: process.cwd() });
            const deployment = objects.find((o) => o.kind === "Deployment")!;
            assert.strictEqual(deployment.spec.template.spec.containers[0].image, `ghcr.io/acme/voice-agent:1.5.0@${DIGEST}`);
            const ingress = objects.find((o) => o.kind === "Ingress")!;
            assert.strictEqual(ingress.spec.rules[0].host, `${app.tenant}.agents.acme.example.net`);
        }
    });

    it("accepts a stack without agentfleet:notifications, as documented (no notifiers)", async () => {
        const ev = await evaluate("dev", { edit: (c) => delete c["agentfleet:notifications"] });
        assert.ok(ev.resources.length > 0);
    });

    it("leaves the chart's own values when the keys are unset", async () => {
        const [appSet] = await objectsOf("dev", { kind: "ApplicationSet" });
        assert.deepStrictEqual(Object.keys((appSet.object as any).spec.template.spec.source.helm.valuesObject), ["fleet"]);
        assert.ok(await evaluated("dev"));
    });
});
