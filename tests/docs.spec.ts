/**
 * Specifications of the documentation: README.md is a front page, and every page under docs/ it
 * links says only true things about the project's commands.
 *
 * - The README stays short enough to read in five minutes and keeps the two set-up commands of a
 *   fresh machine, exactly, beside `npm run e2e`.
 * - Every relative link of README.md and docs/*.md reaches a file, and its #anchor a heading of
 *   that file (as GitHub makes anchors of headings), so moving a section never strands a link.
 * - Every `npm run <script> -- <flags>` they show names a script of package.json, and each flag
 *   is one the command's own `--help` lists.
 */
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { spawnSync } from "child_process";

const ROOT = path.resolve(__dirname, "..");
const README = "README.md";
const DOCS = fs.existsSync(path.join(ROOT, "docs")) ? fs.readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`) : [];
const PAGES = [README, ...DOCS];
/** Pages the README links that other branches add (the rollout gates, a real Argo CD): they appear at merge. */
const ADDED_BY_OTHER_BRANCHES = ["docs/real-argocd.md", "docs/rollout-gates.md"];
/** A front page read in five minutes: about 200 words a minute, and tables and code read slower. */
const FRONT_PAGE_MAX_WORDS = 1000;

const read = (page: string) => fs.readFileSync(path.join(ROOT, page), "utf8");

/** The text outside fenced code blocks (links and headings are only there). */
const prose = (text: string) => text.replace(/^```[\s\S]*?^```/gm, "");

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens; repeats get -1, -2. */
function anchorsOf(text: string): Set<string> {
    const anchors = new Set<string>();
    const seen = new Map<string, number>();
    for (const [, heading] of prose(text).matchAll(/^#{1,6}\s+(.+?)\s*$/gm)) {
        const slug = heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
        const n = seen.get(slug) ?? 0;
        seen.set(slug, n + 1);
        anchors.add(n === 0 ? slug : `${slug}-${n}`);
    }
    return anchors;
}

interface Link {
    page: string;
    target: string;
}

function relativeLinks(page: string): Link[] {
    return [...prose(read(page)).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((t) => !/^[a-z]+:/.test(t)).map((target) => ({ page, target }));
}

interface Invocation {
    page: string;
    script: string;
    flags: string[];
    text: string;
}

/** Every `npm run <script> [-- args]` of a page, in code blocks and inline code, flags after `--`. */
function invocations(page: string): Invocation[] {
    const text = read(page).replace(/\\\n\s*/g, " ");
    const found: Invocation[] = [];
    for (const m of text.matchAll(/npm run ([a-z0-9-]+)([^`|#\n&]*)/g)) {
        const [, script, rest] = m;
        const args = rest.trim().startsWith("--") ? rest.trim().replace(/^--\s*/, "") : "";
        const flags = [...args.matchAll(/(?:^|[\s[|(])(--[a-z][a-z0-9-]*)/g)].map((f) => f[1]);
        found.push({ page, script, flags, text: `npm run ${script}${rest}`.trim() });
    }
    return found;
}

const scripts = (): Record<string, string> => JSON.parse(read("package.json")).scripts;

/** The `--help` text of a script run by ts-node, the way npm runs it. */
function helpOf(script: string): string {
    const m = /^ts-node --transpile-only (\S+)$/.exec(scripts()[script] ?? "");
    assert.ok(m, `package.json's ${script} script is not a ts-node command; this spec does not know its flags`);
    const r = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(ROOT, m[1]), "--help"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    return `${r.stdout}${r.stderr}`;
}

describe("documentation", () => {
    describe("the README is a front page", () => {
        const readme = read(README);

        it(`reads in five minutes: at most ${FRONT_PAGE_MAX_WORDS} words`, () => {
            const words = readme.split(/\s+/).filter(Boolean).length;
            assert.ok(words <= FRONT_PAGE_MAX_WORDS, `README.md has ${words} words; move long material to a page under docs/ and link it`);
        });

        it("gives the two set-up commands of a fresh machine exactly, and npm run e2e beside them", () => {
            for (const command of ["npm ci && npm run plan -- --stack dev", "npm ci && npm test", "npm ci && npm run e2e"]) {
                assert.ok(readme.split("\n").some((line) => line.trim().startsWith(command)), `README.md has no line starting with \`${command}\``);
            }
        });

        it("says which commands need the Pulumi CLI, and links every page under docs/", () => {
            assert.match(readme, /Pulumi CLI/);
            const linked = new Set(relativeLinks(README).map((l) => l.target.split("#")[0]));
            for (const page of DOCS) assert.ok(linked.has(page), `README.md does not link ${page}`);
        });
    });

    describe("links", () => {
        it("every relative link of README.md and docs/ reaches a file, and its anchor a heading there", () => {
            const broken: string[] = [];
            for (const page of PAGES) {
                for (const { target } of relativeLinks(page)) {
                    const [file, anchor] = target.split("#");
                    const resolved = file ? path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, page)), file)) : page;
                    if (ADDED_BY_OTHER_BRANCHES.includes(resolved) && !fs.existsSync(path.join(ROOT, resolved))) continue;
                    if (!fs.existsSync(path.join(ROOT, resolved))) broken.push(`${page}: ${target} (no file ${resolved})`);
                    else if (anchor && !anchorsOf(read(resolved)).has(anchor)) broken.push(`${page}: ${target} (no heading #${anchor} in ${resolved})`);
                }
            }
            assert.deepStrictEqual(broken, []);
        });
    });

    describe("commands", () => {
        const all = PAGES.flatMap(invocations);

        it("every npm run names a script of package.json", () => {
            assert.ok(all.length > 20, `found only ${all.length} npm run commands: the pattern no longer matches the pages`);
            const unknown = all.filter((i) => !(i.script in scripts())).map((i) => `${i.page}: ${i.text}`);
            assert.deepStrictEqual(unknown, []);
        });

        it("every flag is handed to the command: after `--`, which npm would otherwise take for itself", () => {
            const misplaced = all.filter((i) => /^npm run [a-z0-9-]+\s+\[?--[a-z]/.test(i.text)).map((i) => `${i.page}: ${i.text}`);
            assert.deepStrictEqual(misplaced, []);
        });

        it("every flag shown is one the command's --help lists", function () {
            this.timeout(180_000);
            // npm test and npm run e2e are mocha: their flags are mocha's, not ours.
            const ours = [...new Set(all.filter((i) => i.flags.length > 0 && scripts()[i.script]?.startsWith("ts-node ")).map((i) => i.script))];
            const help = new Map(ours.map((s) => [s, helpOf(s)]));
            const unknown = all
                .filter((i) => help.has(i.script))
                .flatMap((i) => i.flags.filter((f) => !new RegExp(`${f}(?![a-z0-9-])`).test(help.get(i.script)!)).map((f) => `${i.page}: ${f} in \`${i.text}\``));
            assert.deepStrictEqual(unknown, []);
        });
    });
});
