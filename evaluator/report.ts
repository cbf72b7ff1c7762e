/**
 * How agentfleet's offline work talks to its user, from the commands, the evaluator and tenant
 * onboarding alike: a UserError is shown as its message alone, progress as elapsed-time lines on
 * stderr.
 */

/** A mistake of the user's (bad flag, unknown stack, unwritable folder): a message, never a trace. */
export class UserError extends Error {
    constructor(
        message: string,
        readonly exitCode = 1,
    ) {
        super(message);
        this.name = "UserError";
    }
}

/** Progress of long work on stderr, with the elapsed time: "[12.3s] rendering 40/300 tenants". */
export function progress(label: string, minIntervalMs = 1000): { step(message: string): void; done(message?: string): void } {
    const start = Date.now();
    const elapsed = () => `[${((Date.now() - start) / 1000).toFixed(1)}s]`;
    // Nothing for work that ends within the first interval (a quick refusal prints only its message).
    let last = minIntervalMs > 0 ? start : 0;
    return {
        step(message) {
            // At most about one line a second by default, so a 300-tenant run stays readable.
            if (Date.now() - last < minIntervalMs) return;
            last = Date.now();
            process.stderr.write(`${label}: ${elapsed()} ${message}\n`);
        },
        done(message = "done") {
            if (minIntervalMs > 0 && Date.now() - start < minIntervalMs) return;
            process.stderr.write(`${label}: ${elapsed()} ${message}\n`);
        },
    };
}
