/**
 * Safe edits of a stack file when several commands run at once: an exclusive lock file
 * (`<file>.lock`, created with O_EXCL) held for the whole read-check-write, bounded waiting, stale
 * locks (a holder that died) taken over, and atomic writes (temporary file, then rename), so a
 * reader never sees half a file and no edit is lost.
 */
import * as fs from "fs";
import * as path from "path";
import { UserError } from "../evaluator/report";

export interface LockOptions {
    /** Give up after this long (default 30 s). */
    timeoutMs?: number;
    /** Pause between attempts (default 50 ms). */
    retryMs?: number;
    /** A lock older than this is stale even if its holder looks alive (default 10 min). */
    staleMs?: number;
    /** Test seam: awaited after a lock was judged stale and before it is taken over. */
    beforeTakeover?: (lockFile: string) => Promise<void> | void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function holderAlive(lockFile: string): boolean {
    let pid: number;
    try {
        pid = Number(JSON.parse(fs.readFileSync(lockFile, "utf8")).pid);
    } catch {
        // Being written right now, or unreadable: treat as held.
        return true;
    }
    try {
        process.kill(pid, 0);
        return true;
    } catch (err) {
        return (err as NodeJS.ErrnoException).code === "EPERM";
    }
}

/** Runs `edit` holding the stack file's lock; throws a UserError naming the lock when it cannot get it in time. */
export async function withStackLock<T>(file: string, edit: () => Promise<T> | T, options: LockOptions = {}): Promise<T> {
    const { timeoutMs = 30000, retryMs = 50, staleMs = 600000 } = options;
    const lockFile = `${file}.lock`;
    const start = Date.now();
    let attempts = 0;
    for (;;) {
        attempts++;
        try {
            const fd = fs.openSync(lockFile, "wx");
            fs.writeSync(fd, JSON.stringify({ pid: process.pid, since: new Date().toISOString() }));
            fs.closeSync(fd);
            break;
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw new UserError(`cannot lock ${path.basename(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): is the folder writable?`);
        }
        let age = 0;
        try {
            age = Date.now() - fs.statSync(lockFile).mtimeMs;
        } catch {
            continue; // released in between: try again at once
        }
        if (age > staleMs || (age > 1000 && !holderAlive(lockFile))) {
            await options.beforeTakeover?.(lockFile);
            // Stale: its holder died. Rename first, so two waiters cannot both remove a fresh lock.
            const claimed = `${lockFile}.stale-${process.pid}`;
            try {
                fs.renameSync(lockFile, claimed);
                fs.rmSync(claimed, { force: true });
            } catch {
                // Another waiter took it over first.
            }
            continue;
        }
        if (Date.now() - start > timeoutMs) {
            throw new UserError(`${path.basename(file)} is locked by another agentfleet command (${lockFile}, ${attempts} attempts in ${Math.round((Date.now() - start) / 1000)} s); try again when it has finished, or remove the lock file if no such command is running`);
        }
        await sleep(retryMs + Math.random() * retryMs);
    }
    try {
        return await edit();
    } finally {
        fs.rmSync(lockFile, { force: true });
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
