/**
 * Safe edits of a stack file when several commands run at once: an exclusive lock file
 * (`<file>.lock`) held for the whole read-check-write, bounded waiting, the lock of a holder that
 * died taken over, and atomic writes (temporary file, then rename), so a reader never sees half a
 * file and no edit is lost.
 *
 * Why at most one command is inside and none removes another's lock:
 * - A lock file is one holder's record (a random token, pid, process start time, host), written
 *   to a private temporary file and then hard-linked to its name: link fails when the name exists,
 *   and the record appears whole or not at all.
 * - A lock file is removed only by whoever creates `<file>.lock.claim-<its token>` (the same
 *   exclusive link) and then still finds that token in it: its holder on release, or a waiter that
 *   found the holder dead. While the claim exists, nobody else can remove that lock, nor create one
 *   (the name is taken), so nothing comes between the check and the removal. The claim goes after
 *   the lock, so a later claimant of the same token finds another lock, or none, and removes nothing.
 *   Judging, claiming and removing never rename a lock away, so a lock is never out of its place
 *   while it is still wanted.
 * - A holder counts as dead only when that is certain: on this machine, its process is gone, a
 *   zombie, or its pid belongs to a process started at another time (pid reuse); a lock from an
 *   earlier boot is dead. A holder the machine cannot ask (another host or pid namespace) is dead
 *   when its lock has not been refreshed for `staleMs`; every holder refreshes its own lock (by its
 *   open descriptor, so never another's). Age alone never ends a lock of a live local process.
 *   (The one judgement that can be wrong: a remote holder frozen for longer than `staleMs`; its
 *   release then finds its lock gone, leaves the new one and warns.)
 * - A claim whose claimant died between two system calls is removed the same way, under a claim on
 *   its own token.
 */
import { randomBytes, createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { UserError } from "../evaluator/report";

export interface LockOptions {
    /** Give up after this long (default 30 s). */
    timeoutMs?: number;
    /** Pause between attempts (default 50 ms). */
    retryMs?: number;
    /** A lock whose holder this machine cannot ask (another host) is stale when not refreshed for this long (default 10 min); holders refresh theirs every third of it. */
    staleMs?: number;
    /** Test seam: awaited after a lock (or claim) was judged stale and before it is taken over. */
    beforeTakeover?: (lockFile: string) => Promise<void> | void;
}

/** What a lock or claim file says about its holder. */
interface Holder {
    token: string;
    pid: number;
    /** The process's start time in clock ticks since boot (/proc/<pid>/stat), when known. */
    start?: string;
    host: string;
    boot?: string;
    pidNamespace?: string;
    since: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code;

function readOr<T>(read: () => T): T | undefined {
    try {
        return read();
    } catch {
        return undefined;
    }
}

/** A process's state and start time from /proc (Linux); undefined where there is no /proc or no such process. */
function processStat(pid: number | "self"): { state: string; start: string } | undefined {
    const stat = readOr(() => fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
    if (stat === undefined) return undefined;
    // Fields after the command name (which may hold spaces and parentheses): state is field 3, starttime field 22.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0], start: fields[19] };
}

const THIS_MACHINE = {
    host: os.hostname(),
    boot: readOr(() => fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()),
    pidNamespace: readOr(() => fs.readlinkSync("/proc/self/ns/pid")),
};
const THIS_START = processStat("self")?.start;

interface Seen {
    holder: Partial<Holder>;
    token: string;
    ageMs: number;
}

/** The lock or claim at `target` as it is now (record and age read from one open file), or undefined when there is none. */
function look(target: string): Seen | undefined {
    let fd: number;
    try {
        fd = fs.openSync(target, "r");
    } catch (err) {
        if (codeOf(err) === "ENOENT") return undefined;
        throw err;
    }
    try {
        const text = fs.readFileSync(fd, "utf8");
        const ageMs = Date.now() - fs.fstatSync(fd).mtimeMs;
        const holder: Partial<Holder> = readOr(() => JSON.parse(text)) ?? {};
        // A record without a token (an older agentfleet's, or damaged) is named by its content.
        const token = typeof holder.token === "string" && /^[0-9a-f]{8,64}$/.test(holder.token) ? holder.token : createHash("sha256").update(text).digest("hex").slice(0, 24);
        return { holder, token, ageMs };
    } finally {
        fs.closeSync(fd);
    }
}

/** True when the holder is certainly gone (see the scheme above). */
function holderDead({ holder, ageMs }: Seen, staleMs: number): boolean {
    const { pid, host = THIS_MACHINE.host, boot, pidNamespace, start } = holder;
    const differs = (theirs: string | undefined, ours: string | undefined) => theirs !== undefined && ours !== undefined && theirs !== ours;
    if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0) return ageMs > staleMs;
    if (host !== THIS_MACHINE.host) return ageMs > staleMs;
    if (differs(boot, THIS_MACHINE.boot)) return true;
    if (differs(pidNamespace, THIS_MACHINE.pidNamespace)) return ageMs > staleMs;
    try {
        process.kill(pid, 0);
    } catch (err) {
        if (codeOf(err) === "ESRCH") return true;
    }
    const now = processStat(pid);
    return now !== undefined && (now.state === "Z" || differs(start, now.start));
}

/** Creates `target` holding a new record of this process, unless it exists; returns the record and an open descriptor on it. */
function create(lockFile: string, target: string): { holder: Holder; fd: number } | undefined {
    const holder: Holder = { token: randomBytes(12).toString("hex"), pid: process.pid, start: THIS_START, ...THIS_MACHINE, since: new Date().toISOString() };
    const temporary = `${lockFile}.${holder.token}.tmp`;
    const fd = fs.openSync(temporary, "wx");
    try {
        fs.writeSync(fd, JSON.stringify(holder));
        fs.linkSync(temporary, target);
        return { holder, fd };
    } catch (err) {
        fs.closeSync(fd);
        if (codeOf(err) === "EEXIST") return undefined;
        throw err;
    } finally {
        fs.rmSync(temporary, { force: true });
    }
}

/** Bound on claims of claims, each left by a process that died mid-claim. */
const MAX_CLAIM_DEPTH = 4;

/**
 * One attempt to create `target` (the lock, or a claim), first removing it if its holder is dead.
 * `seen` is set to what held it when the attempt fails.
 */
async function attempt(lockFile: string, target: string, options: Required<Pick<LockOptions, "staleMs">> & LockOptions, depth: number): Promise<{ held?: { holder: Holder; fd: number }; seen?: Seen }> {
    const held = create(lockFile, target);
    if (held) return { held };
    const seen = look(target);
    if (!seen) return {};
    if (depth >= MAX_CLAIM_DEPTH || !holderDead(seen, options.staleMs)) return { seen };
    await options.beforeTakeover?.(target);
    await removeIfStill(lockFile, target, seen.token, options, depth);
    return { held: create(lockFile, target), seen };
}

/** Removes `target` if it still holds `token`, under that token's claim; false when the lock was not `token`'s any more or another process holds the claim. */
async function removeIfStill(lockFile: string, target: string, token: string, options: Required<Pick<LockOptions, "staleMs">> & LockOptions, depth: number): Promise<boolean> {
    const claim = `${lockFile}.claim-${token}`;
    const { held } = await attempt(lockFile, claim, options, depth + 1);
    if (!held) return false;
    fs.closeSync(held.fd);
    try {
        if (look(target)?.token !== token) return false;
        fs.rmSync(target, { force: true });
        return true;
    } finally {
        // Ours: a claim lives for a few system calls of a live process, so nobody judges it dead.
        fs.rmSync(claim, { force: true });
    }
}

/** Runs `edit` holding the stack file's lock; throws a UserError naming the lock when it cannot get it in time. */
export async function withStackLock<T>(file: string, edit: () => Promise<T> | T, options: LockOptions = {}): Promise<T> {
    const { timeoutMs = 30000, retryMs = 50, staleMs = 600000 } = options;
    const lockFile = `${file}.lock`;
    const start = Date.now();
    let attempts = 0;
    let held: { holder: Holder; fd: number } | undefined;
    for (;;) {
        attempts++;
        let seen: Seen | undefined;
        try {
            ({ held, seen } = await attempt(lockFile, lockFile, { ...options, staleMs }, 0));
        } catch (err) {
            throw new UserError(`cannot lock ${path.basename(file)} (${codeOf(err) ?? (err as Error).message}): is the folder writable?`);
        }
        if (held) break;
        if (Date.now() - start > timeoutMs) {
            const { pid, host, since } = seen?.holder ?? {};
            const who = pid !== undefined ? `held by pid ${pid} on ${host ?? THIS_MACHINE.host}${since ? ` since ${since}` : ""}; ` : "";
            throw new UserError(
                `${path.basename(file)} is locked by another agentfleet command (${lockFile}, ${attempts} attempts in ${Math.round((Date.now() - start) / 1000)} s): ${who}try again when it has finished, or remove the lock file if no such command is running`,
            );
        }
        // Released in between: try again at once.
        if (seen) await sleep(retryMs + Math.random() * retryMs);
    }
    const { holder, fd } = held;
    // Synchronous, so it never runs after the descriptor is closed (and its number reused).
    const refresh = setInterval(() => readOr(() => fs.futimesSync(fd, new Date(), new Date())), staleMs / 3);
    refresh.unref();
    try {
        return await edit();
    } finally {
        clearInterval(refresh);
        fs.closeSync(fd);
        if (!(await removeIfStill(lockFile, lockFile, holder.token, { ...options, staleMs }, 0))) {
            process.stderr.write(`warning: ${lockFile} was removed or taken over by another command while this one held it; check ${path.basename(file)} for a lost edit\n`);
        }
    }
}

/** Replaces `file` with `text` atomically: written to a temporary file in the same folder, then renamed over it. */
export function writeFileAtomic(file: string, text: string): void {
    const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
    try {
        fs.writeFileSync(temporary, text);
        fs.renameSync(temporary, file);
    } catch (err) {
        fs.rmSync(temporary, { force: true });
        throw new UserError(`cannot write ${path.basename(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
}
