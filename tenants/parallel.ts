/**
 * Runs one task per tenant with at most `parallel` at a time. Each tenant's outcome is its own:
 * a failure is recorded and the others go on. Progress goes to `log` with the elapsed time.
 */
export interface TenantOutcome<T> {
    tenant: string;
    ok: boolean;
    value?: T;
    /** One-line reason of a failure (never credential content: tasks throw user-facing messages). */
    error?: string;
    ms: number;
}

export interface RunOptions {
    parallel: number;
    /** Progress line sink (stderr). */
    log: (line: string) => void;
    /** What is being done, for progress lines ("bootstrap"). */
    action: string;
    /** Interval of the "still running" line, ms (0: none). */
    heartbeatMs?: number;
    now?: () => number;
}

/** An elapsed time for progress lines: 12.3s under a minute, else 26m59s (whole seconds, rounded before splitting, never "26m60s"). */
export const seconds = (ms: number): string => {
    if (ms < 59_950) return `${(ms / 1000).toFixed(1)}s`;
    const whole = Math.round(ms / 1000);
    return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`;
};

export async function forEachTenant<T>(tenants: string[], task: (tenant: string) => Promise<T>, options: RunOptions): Promise<Array<TenantOutcome<T>>> {
    const now = options.now ?? Date.now;
    const started = now();
    const stamp = () => `[${seconds(now() - started).padStart(6)}]`;
    const running = new Map<string, number>();
    const outcomes: Array<TenantOutcome<T>> = [];
    const bound = Math.max(1, Math.floor(options.parallel));
    options.log(`${stamp()} ${options.action}: ${tenants.length} tenant(s), at most ${bound} at a time`);
    const heartbeat =
        options.heartbeatMs && options.heartbeatMs > 0
            ? setInterval(() => {
                  const list = [...running].map(([t, at]) => `${t} (${seconds(now() - at)})`).join(", ");
                  if (list) options.log(`${stamp()} still running: ${list}; ${outcomes.length} of ${tenants.length} finished`);
              }, options.heartbeatMs)
            : undefined;
    let next = 0;
    const worker = async () => {
        while (next < tenants.length) {
            const tenant = tenants[next++];
            const at = now();
            running.set(tenant, at);
            options.log(`${stamp()} ${tenant}: ${options.action} started`);
            try {
                const value = await task(tenant);
                outcomes.push({ tenant, ok: true, value, ms: now() - at });
                options.log(`${stamp()} ${tenant}: done in ${seconds(now() - at)}`);
            } catch (err) {
                const error = (err as Error)?.message ?? String(err);
                outcomes.push({ tenant, ok: false, error, ms: now() - at });
                options.log(`${stamp()} ${tenant}: FAILED after ${seconds(now() - at)}: ${error.split("\n").join("\n    ")}`);
            } finally {
                running.delete(tenant);
            }
        }
    };
    try {
        await Promise.all(Array.from({ length: Math.min(bound, tenants.length) }, worker));
    } finally {
        if (heartbeat) clearInterval(heartbeat);
    }
    const failed = outcomes.filter((o) => !o.ok);
    options.log(
        `${stamp()} ${options.action}: ${outcomes.length - failed.length} of ${tenants.length} done` +
            (failed.length ? `; failed: ${failed.map((o) => o.tenant).join(", ")} (run the same command again to finish them: finished tenants are left as they are)` : ""),
    );
    // In the order given, whatever order they finished in.
    return tenants.map((t) => outcomes.find((o) => o.tenant === t)!);
}
