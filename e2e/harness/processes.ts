/**
 * Child processes the real-engine suite starts: each logs to a file, and every one of them is
 * stopped by `stopAll` (also on exit and on SIGINT/SIGTERM), so a failing run leaves nothing behind.
 */
import { type ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";

export interface Started {
    name: string;
    child: ChildProcess;
    log: string;
}

const running = new Set<Started>();

/** Starts `bin` with `args`, its output going to `log`. */
export function start(name: string, bin: string, args: string[], log: string, env: NodeJS.ProcessEnv = process.env): Started {
    const out = fs.openSync(log, "a");
    const child = spawn(bin, args, { stdio: ["ignore", out, out], env });
    fs.closeSync(out);
    const started = { name, child, log };
    running.add(started);
    child.on("exit", () => running.delete(started));
    return started;
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** Stops one process: SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(p: Started, graceMs = 5000): Promise<void> {
    if (exited(p.child)) return void running.delete(p);
    const gone = new Promise<void>((resolve) => p.child.once("exit", () => resolve()));
    p.child.kill("SIGTERM");
    const timer = setTimeout(() => p.child.kill("SIGKILL"), graceMs);
    await gone;
    clearTimeout(timer);
    running.delete(p);
}

/** Stops every process still running, newest first (API servers before etcd). */
export async function stopAll(): Promise<void> {
    for (const p of [...running].reverse()) await stop(p);
}

/** The last lines of a process's log, for error messages. */
export function tail(p: Started, lines = 15): string {
    try {
        return fs.readFileSync(p.log, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
        return "(no log)";
    }
}

/** A process that should be running has exited: waiting longer cannot help. */
export class ProcessExited extends Error {}

/** Throws ProcessExited, with the log's tail, if the process has exited. */
export function assertRunning(p: Started): void {
    if (exited(p.child)) throw new ProcessExited(`${p.name} exited (${p.child.exitCode ?? p.child.signalCode}); its log ${p.log} ends:\n${tail(p)}`);
}

/** Ports the e2e stack files name for their tenants (Pulumi.e2e.yaml): never handed out by freePort. */
export const FIXED_PORTS = { from: 36400, to: 36499 };

const RESERVED_PORTS_FILE = "/proc/sys/net/ipv4/ip_local_reserved_ports";

/**
 * Keeps the kernel from giving FIXED_PORTS to outgoing connections as their local port: they lie in
 * Linux's ephemeral range (32768-60999), and one API server's connection to etcd once held 36446
 * when a tenant's API server had to listen there (EADDRINUSE). Best effort: it needs root, which CI
 * and the developers' machines have; elsewhere a collision stays as rare as it was.
 */
export function reserveFixedPorts(log: (line: string) => void = () => undefined): void {
    const range = `${FIXED_PORTS.from}-${FIXED_PORTS.to}`;
    try {
        const current = fs.readFileSync(RESERVED_PORTS_FILE, "utf8").trim();
        if (current.split(",").includes(range)) return;
        fs.writeFileSync(RESERVED_PORTS_FILE, current ? `${current},${range}` : range);
        log(`reserved ports ${range} from the kernel's ephemeral range (${RESERVED_PORTS_FILE})`);
    } catch (err) {
        log(`could not reserve ports ${range} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); an outgoing connection may rarely take one`);
    }
}

/** A free TCP port on 127.0.0.1 outside FIXED_PORTS (the kernel picks it; nothing listens on it afterwards). */
export async function freePort(): Promise<number> {
    for (let attempt = 0; attempt < 20; attempt++) {
        const port = await new Promise<number>((resolve, reject) => {
            const server = net.createServer();
            server.once("error", reject);
            server.listen(0, "127.0.0.1", () => {
                const { port } = server.address() as net.AddressInfo;
                server.close(() => resolve(port));
            });
        });
        if (port < FIXED_PORTS.from || port > FIXED_PORTS.to) return port;
    }
    throw new Error("no free loopback port outside the e2e stack's fixed ports after 20 tries");
}

/** Throws, naming the cluster, when something already listens on 127.0.0.1:`port`. */
export function assertPortFree(port: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", (err: NodeJS.ErrnoException) =>
            reject(new Error(`${what}: 127.0.0.1:${port} is taken (${err.code}); stop what listens there (ss -ltnp 'sport = :${port}') and run again`)),
        );
        server.listen(port, "127.0.0.1", () => server.close(() => resolve()));
    });
}

/** Polls `check` until it returns true: at most `attempts` times, `intervalMs` apart. */
export async function waitFor(what: string, check: () => Promise<boolean>, { attempts = 120, intervalMs = 500 } = {}): Promise<void> {
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
        try {
            if (await check()) return;
        } catch (err) {
            if (err instanceof ProcessExited) throw err;
            last = err;
        }
        await new Promise((r) => setTimeout(r, intervalMs));
    }
    throw new Error(`timed out after ${((attempts * intervalMs) / 1000).toFixed(0)}s waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

// Whatever happens to the test process, its children go with it.
process.once("exit", () => {
    for (const p of running) p.child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
        void stopAll().finally(() => process.exit(130));
    });
}
