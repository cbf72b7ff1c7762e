/**
 * The stack file's lock (tenants/stack-lock.ts): concurrent `npm run tenant` commands are separate
 * processes, so most holders here are child processes running withStackLock; an interleaving that
 * timing alone would make rare is forced through the lock's `beforeTakeover` seam.
 */
import { strict as assert } from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { withStackLock } from "../tenants/stack-lock";

const LOCK_MODULE = path.resolve(__dirname, "..", "tenants", "stack-lock.ts");

/**
 * What a child process does with the lock on `file`, logging to `log`: `count` increments the
 * number in the file `rounds` times, each inside the lock; `hold` takes it and keeps it (until
 * killed, at most 20 s); `crash` takes it and dies inside it (SIGKILL).
 */
const CHILD = `
const fs = require("fs");
const { withStackLock, writeFileAtomic } = require(${JSON.stringify(LOCK_MODULE)});
const [file, log, mode, rounds] = process.argv.slice(1);
const note = (what) => fs.appendFileSync(log, what + " " + process.pid + "\\n");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
(async () => {
    for (let i = 0; i < Number(rounds); i++) {
        await withStackLock(file, async () => {
            note("enter");
            if (mode === "crash") { note("crash"); process.kill(process.pid, "SIGKILL"); }
            if (mode === "hold") { note("held"); await sleep(20000); }
            const count = Number(fs.readFileSync(file, "utf8"));
            await sleep(1);
            writeFileAtomic(file, String(count + 1));
            note("exit");
        }, { timeoutMs: 30000, retryMs: 10 });
    }
})().catch((err) => { console.error(err.message); process.exit(1); });
`;

interface Child {
    pid: number;
    exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
    kill(): Promise<void>;
}

function lockChild(file: string, log: string, mode: "count" | "hold" | "crash", rounds = 1): Child {
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", CHILD, file, log, mode, String(rounds)], { cwd: path.dirname(LOCK_MODULE), stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stderr })));
    return {
        pid: child.pid!,
        exited,
        async kill() {
            child.kill("SIGKILL");
            await exited;
        },
    };
}

/** Polls `check` every 20 ms until it holds; fails after `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs = 15000): Promise<void> {
    const start = Date.now();
    while (!check()) {
        if (Date.now() - start > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
}

const linesOf = (log: string) => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n").filter(Boolean) : []);

/** Asserts that the log's holders never overlapped: each enter comes when nobody is inside. */
function assertOneAtATime(lines: string[]): void {
    let inside: string | undefined;
    for (const [i, line] of lines.entries()) {
        const [what, pid] = line.split(" ");
        if (what === "enter") {
            assert.equal(inside, undefined, `line ${i + 1}: ${pid} entered while ${inside} was inside:\n${lines.join("\n")}`);
            inside = pid;
        } else if (what === "exit" || what === "crash") {
            assert.equal(inside, pid, `line ${i + 1}: ${line} without being inside`);
            inside = undefined;
        }
    }
}

/** Sets the file's modification time `ms` into the past. */
function age(file: string, ms: number): void {
    const then = new Date(Date.now() - ms);
    fs.utimesSync(file, then, then);
}

describe("the stack file's lock", () => {
    let dir: string;
    let file: string;
    let lockFile: string;
    let log: string;
    const children: Child[] = [];
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-lock-"));
        file = path.join(dir, "Pulumi.dev.yaml");
        lockFile = `${file}.lock`;
        log = path.join(dir, "holders.log");
        fs.writeFileSync(file, "0");
    });
    afterEach(async () => {
        await Promise.all(children.splice(0).map((c) => c.kill()));
        fs.rmSync(dir, { recursive: true, force: true });
    });
    const start = (mode: "count" | "hold" | "crash", rounds = 1) => {
        const child = lockChild(file, log, mode, rounds);
        children.push(child);
        return child;
    };

    it("a waiter that judged a lock stale does not take over the lock another waiter took meanwhile", async () => {
        // A holder that died: a process that has exited, long ago.
        fs.writeFileSync(lockFile, JSON.stringify({ pid: spawnSync("true").pid, since: "2020-01-01T00:00:00Z" }));
        age(lockFile, 60000);
        const events: string[] = [];
        let bEntered!: () => void;
        const bInside = new Promise<void>((resolve) => (bEntered = resolve));
        let aJudged!: () => void;
        const aStale = new Promise<void>((resolve) => (aJudged = resolve));
        let paused = false;
        // A judges the dead holder's lock stale and is held there until B has taken it over and is inside.
        const a = withStackLock(
            file,
            () => {
                events.push("enter A", "exit A");
            },
            {
                retryMs: 10,
                beforeTakeover: async (target) => {
                    if (paused || target !== lockFile) return;
                    paused = true;
                    aJudged();
                    await bInside;
                },
            },
        );
        await aStale;
        const b = withStackLock(
            file,
            async () => {
                events.push("enter B");
                bEntered();
                await new Promise((resolve) => setTimeout(resolve, 300));
                events.push("exit B");
            },
            { retryMs: 10 },
        );
        await Promise.all([a, b]);
        assert.deepEqual(events, ["enter B", "exit B", "enter A", "exit A"]);
        assert.ok(!fs.existsSync(lockFile), "the lock is released");
    });

    it("many processes incrementing the stack file, one of them dying inside the lock: the count is exact and no two holders overlap", async function () {
        this.timeout(60000);
        const [processes, rounds] = [6, 8];
        const counters = Array.from({ length: processes }, () => start("count", rounds));
        const crasher = start("crash");
        const results = await Promise.all(counters.map((c) => c.exited));
        results.forEach((r, i) => assert.equal(r.code, 0, `counter ${i}: ${r.stderr}`));
        assert.equal((await crasher.exited).signal, "SIGKILL");
        assert.equal(fs.readFileSync(file, "utf8"), String(processes * rounds));
        const lines = linesOf(log);
        assertOneAtATime(lines);
        assert.equal(lines.filter((l) => l.startsWith("enter")).length, processes * rounds + 1);
        assert.deepEqual(fs.readdirSync(dir).sort(), ["Pulumi.dev.yaml", "holders.log"], "no lock, claim or temporary file is left");
    });

    it("takes over at once the lock of a holder that died", async () => {
        const holder = start("hold");
        await until("the child to hold the lock", () => linesOf(log).some((l) => l.startsWith("held")));
        await holder.kill();
        age(lockFile, 0);
        const started = Date.now();
        await withStackLock(file, () => fs.writeFileSync(file, "taken over"), { timeoutMs: 2000, retryMs: 10 });
        assert.equal(fs.readFileSync(file, "utf8"), "taken over");
        assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
        assert.ok(!fs.existsSync(lockFile));
    });

    it("never takes over a live holder's lock, however old, and says who holds it", async () => {
        const holder = start("hold");
        await until("the child to hold the lock", () => linesOf(log).some((l) => l.startsWith("held")));
        age(lockFile, 3600000);
        await assert.rejects(
            withStackLock(file, () => assert.fail("ran while a live process held the lock"), { timeoutMs: 400, retryMs: 10, staleMs: 100 }),
            (err: Error) => {
                assert.match(err.message, /^Pulumi\.dev\.yaml is locked by another agentfleet command \(.*Pulumi\.dev\.yaml\.lock, \d+ attempts in \d+ s\)/);
                assert.ok(err.message.includes(`pid ${holder.pid} on ${os.hostname()}`), err.message);
                return true;
            },
        );
        assert.ok(fs.existsSync(lockFile), "the live holder's lock is still there");
    });

    it("takes over a lock whose pid now belongs to a process started later (pid reuse)", async () => {
        start("hold");
        await until("the child to hold the lock", () => linesOf(log).some((l) => l.startsWith("held")));
        // The same pid, started at another moment: the holder died and its pid went to another process.
        fs.writeFileSync(lockFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(lockFile, "utf8")), start: "1" }));
        await withStackLock(file, () => fs.writeFileSync(file, "taken over"), { timeoutMs: 1000, retryMs: 10 });
        assert.equal(fs.readFileSync(file, "utf8"), "taken over");
    });

    it("judges another host's lock by age, and a holder keeps its lock fresh while it holds it", async () => {
        const holder = start("hold");
        await until("the child to hold the lock", () => linesOf(log).some((l) => l.startsWith("held")));
        await holder.kill();
        // Its holder is on another machine: it cannot be asked, only its refreshes seen.
        fs.writeFileSync(lockFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(lockFile, "utf8")), host: "elsewhere.example.net" }));
        await assert.rejects(withStackLock(file, () => assert.fail("took a fresh lock of another host"), { timeoutMs: 300, retryMs: 10, staleMs: 5000 }), /held by pid \d+ on elsewhere\.example\.net/);
        age(lockFile, 6000);
        await withStackLock(
            file,
            async () => {
                age(lockFile, 6000);
                await new Promise((resolve) => setTimeout(resolve, 150));
                assert.ok(Date.now() - fs.statSync(lockFile).mtimeMs < 1000, "the holder refreshed its lock");
            },
            { timeoutMs: 1000, retryMs: 10, staleMs: 300 },
        );
    });

    it("a claim left by a process that died while taking over a lock does not block the next one", async () => {
        const holder = start("hold");
        await until("the child to hold the lock", () => linesOf(log).some((l) => l.startsWith("held")));
        await holder.kill();
        const { token } = JSON.parse(fs.readFileSync(lockFile, "utf8"));
        // The claimant (a process that has exited) died between claiming the lock and removing it.
        fs.writeFileSync(`${lockFile}.claim-${token}`, JSON.stringify({ token: "0123456789abcdef01234567", pid: spawnSync("true").pid, host: os.hostname(), since: new Date().toISOString() }));
        await withStackLock(file, () => fs.writeFileSync(file, "taken over"), { timeoutMs: 1000, retryMs: 10 });
        assert.equal(fs.readFileSync(file, "utf8"), "taken over");
        assert.deepEqual(fs.readdirSync(dir).sort(), ["Pulumi.dev.yaml", "holders.log"]);
    });

    it("on release, leaves a lock that is no longer its own and says so", async () => {
        const foreign = JSON.stringify({ token: "fedcba9876543210fedcba98", pid: process.pid, host: os.hostname(), since: new Date().toISOString() });
        const warnings: string[] = [];
        const write = process.stderr.write;
        process.stderr.write = ((chunk: string) => warnings.push(String(chunk)) > 0) as unknown as typeof process.stderr.write;
        try {
            await withStackLock(file, () => {
                // As if another command had judged this holder dead and taken the lock over.
                fs.writeFileSync(`${lockFile}.other`, foreign);
                fs.renameSync(`${lockFile}.other`, lockFile);
            });
        } finally {
            process.stderr.write = write;
        }
        assert.equal(fs.readFileSync(lockFile, "utf8"), foreign, "the other holder's lock is untouched");
        assert.match(warnings.join(""), /Pulumi\.dev\.yaml\.lock was removed or taken over by another command while this one held it; check Pulumi\.dev\.yaml for a lost edit/);
    });
});
