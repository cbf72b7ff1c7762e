/**
 * Reads raw configuration values with their key paths: every check records a problem naming the
 * stack file key (`agentfleet:hub.server`, or a tenant file and its key) and what to do, and reading goes on, so the
 * user sees every problem at once.
 */
// ---------------------------------------------------------------------------------------------
// Reading raw values with paths

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
export const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
export const SEMVER = /^v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?$/;
/** A release tag as Argo CD's images carry it: always v-prefixed (quay.io/argoproj/argocd:v3.4.7). */
export const V_TAG = /^v(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?$/;
export const PERCENT = /^(\d{1,3})%$/;
export const DURATION = /^(\d+h)?(\d+m)?(\d+s)?$/;

function editDistance(a: string, b: string): number {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
        let prev = row[0];
        row[0] = i;
        for (let j = 1; j <= b.length; j++) {
            const cur = row[j];
            row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
            prev = cur;
        }
    }
    return row[b.length];
}

/** "did you mean" hint for a likely typo, or "". */
export function suggestion(key: string, known: readonly string[]): string {
    const best = known.map((k) => ({ k, d: editDistance(key, k) })).sort((x, y) => x.d - y.d)[0];
    return best && best.d <= Math.max(2, Math.floor(key.length / 4)) ? ` (did you mean '${best.k}'?)` : "";
}

export const describeValue = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "object" ? "an object" : `${typeof v} ${JSON.stringify(v)}`);

/** Collects problems while reading raw configuration values. */
export class Reader {
    readonly problems: string[] = [];
    /** What a list entry is called, by its key path (`agentfleet:tenants[2]` -> `tenant acme`). */
    private readonly entryNames = new Map<string, string>();

    /**
     * Names the list entry at `path`: every problem at or below it then says which entry it is,
     * `agentfleet:tenants[2].server (tenant acme): ...`, since an index alone is hard to find.
     */
    name(path: string, what: string): void {
        this.entryNames.set(path, what);
    }

    /** `path`, with the name of the entry it lies in (see `name`). */
    named(path: string): string {
        const entry = [...this.entryNames.keys()].filter((e) => path === e || path.startsWith(`${e}.`) || path.startsWith(`${e}[`)).sort((a, b) => b.length - a.length)[0];
        return entry === undefined ? path : `${path} (${this.entryNames.get(entry)})`;
    }

    problem(path: string, message: string): void {
        this.problems.push(`${this.named(path)}: ${message}`);
    }

    /** A plain object; unknown keys are problems (likely typos). */
    object(path: string, value: unknown, known: readonly string[]): Record<string, unknown> | undefined {
        if (value === undefined) return undefined;
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
            this.problem(path, `expected an object with keys ${known.join(", ")}, got ${describeValue(value)}`);
            return undefined;
        }
        for (const key of Object.keys(value)) {
            if (!known.includes(key)) this.problem(`${path}.${key}`, `unknown key${suggestion(key, known)}; expected one of ${known.join(", ")}`);
        }
        return value as Record<string, unknown>;
    }

    required(path: string, value: unknown, expected: string): boolean {
        if (value === undefined || value === null || value === "") {
            this.problem(path, `is required: ${expected}`);
            return false;
        }
        return true;
    }

    string(path: string, value: unknown, expected: string, pattern?: RegExp): string | undefined {
        if (value === undefined) return undefined;
        if (typeof value !== "string") {
            this.problem(path, `expected ${expected}, got ${describeValue(value)}`);
            return undefined;
        }
        if (pattern && !pattern.test(value)) {
            this.problem(path, `${JSON.stringify(value)} is not ${expected}`);
            return undefined;
        }
        return value;
    }

    boolean(path: string, value: unknown): boolean | undefined {
        if (value === undefined) return undefined;
        if (value === true || value === "true") return true;
        if (value === false || value === "false") return false;
        this.problem(path, `expected true or false, got ${describeValue(value)}`);
        return undefined;
    }

    integer(path: string, value: unknown, min: number, max: number): number | undefined {
        if (value === undefined) return undefined;
        if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
            this.problem(path, `expected a whole number from ${min} to ${max}, got ${describeValue(value)}`);
            return undefined;
        }
        return value;
    }

    list(path: string, value: unknown, expected: string): unknown[] | undefined {
        if (value === undefined) return undefined;
        if (!Array.isArray(value)) {
            this.problem(path, `expected a list of ${expected}, got ${describeValue(value)}`);
            return undefined;
        }
        return value;
    }

    stringList(path: string, value: unknown, expected: string, pattern?: RegExp): string[] | undefined {
        const items = this.list(path, value, expected);
        if (!items) return undefined;
        const out = items.map((item, i) => this.string(`${path}[${i}]`, item, expected, pattern));
        return out.every((s) => s !== undefined) ? (out as string[]) : undefined;
    }

    labels(path: string, value: unknown): Record<string, string> | undefined {
        if (value === undefined) return undefined;
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
            this.problem(path, `expected a map of Kubernetes labels, got ${describeValue(value)}`);
            return undefined;
        }
        const out: Record<string, string> = {};
        for (const [key, v] of Object.entries(value)) {
            if (!isLabelKey(key)) this.problem(`${path}.${key}`, `is not a valid Kubernetes label key (optional DNS-subdomain prefix and '/', then at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric)`);
            const s = this.string(`${path}.${key}`, v, "a Kubernetes label value (at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric)", LABEL_VALUE);
            if (s !== undefined) out[key] = s;
        }
        return out;
    }
}

export function isLabelKey(key: string): boolean {
    const parts = key.split("/");
    if (parts.length > 2) return false;
    if (parts.length === 2 && !HOSTNAME.test(parts[0])) return false;
    return LABEL_NAME.test(parts[parts.length - 1]);
}

/**
 * A YAML parse error as one line, what is wrong and where ("... at line 7, column 1"), without the
 * excerpt of the source the library appends: that may be secret, and it left a dangling colon.
 */
export function yamlErrorText(err: Error & { linePos?: Array<{ line: number; col: number }> }): string {
    // Also drops what a message quotes after ": " (a tag, a block scalar header): it may be content.
    const what = err.message.split("\n")[0].replace(/ at line \d+, column \d+:?\s*$/, "").replace(/:(\s.*)?$/, "");
    const at = err.linePos?.[0];
    return at ? `${what} at line ${at.line}, column ${at.col}` : what;
}
