/**
 * A test double of the Lua runtime Argo CD gives argocd-cm health checks (argo-cd util/lua/lua.go),
 * built on fengari. fengari is Lua 5.3 with every library a script could wish for, while Argo CD
 * runs gopher-lua (Lua 5.1) with SkipOpenLibs, so this runner takes away what Argo CD does not
 * give: a script that passes here does not fail in the controller for lack of `string` or `math`.
 */
import { lauxlib, lua, lualib, to_jsstring, to_luastring, type LuaJsFunction, type LuaState } from "fengari";
import * as luaparse from "luaparse";

export const HEALTH_STATUSES = ["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"] as const;

export interface HealthStatus {
    status: string;
    message: string;
}

export interface RunOptions {
    /** Mirror `resource.customizations.useOpenLibs.<key>: "true"`: every standard library. */
    openLibs?: boolean;
    /** Argo CD cancels a script after 1 s. */
    timeoutMs?: number;
}

/**
 * Runs a health script with `obj` as the global `obj`, like the Argo CD controller.
 * Throws with the Lua error when the script fails, and when it returns anything but
 * `{status = <valid status>, message = <string>}`.
 */
export function runHealthScript(script: string, obj: unknown, opts: RunOptions = {}): HealthStatus {
    // fengari would accept 5.3 syntax that gopher-lua rejects.
    assertLua51(script);
    const L = lauxlib.luaL_newstate();
    try {
        if (opts.openLibs) {
            lualib.luaL_openlibs(L);
        } else {
            openArgoCdLibs(L);
        }
        runChunk(L, LUA51_COMPAT, "=lua51-compat", 0);
        pushJson(L, obj);
        lua.lua_setglobal(L, to_luastring("obj"));
        limitRunTime(L, opts.timeoutMs ?? 1000);
        runChunk(L, script, "=health.lua", 1);
        return readHealthStatus(L);
    } finally {
        lua.lua_close(L);
    }
}

/** Throws unless `script` is Lua 5.1 syntax, naming the newer construct when that is the cause. */
export function assertLua51(script: string): void {
    try {
        luaparse.parse(script, { luaVersion: "5.1", comments: false });
    } catch (error) {
        const newer = findNewerSyntax(script);
        if (newer.length > 0) {
            throw new Error(`Lua script uses syntax newer than Lua 5.1: ${newer.join(", ")}`);
        }
        throw new Error(`Lua script is not valid Lua 5.1: ${(error as Error).message}`);
    }
}

// goto and labels parse in gopher-lua, but are kept out so the scripts stay plain Lua 5.1.
const NEWER_STATEMENTS: Record<string, string> = { GotoStatement: "goto", LabelStatement: "label ::name::" };
const NEWER_OPERATORS: Record<string, string> = {
    "//": "integer division '//'",
    "&": "bitwise '&'",
    "|": "bitwise '|'",
    "~": "bitwise '~'",
    "<<": "shift '<<'",
    ">>": "shift '>>'",
};

function findNewerSyntax(script: string): string[] {
    let ast: luaparse.Node;
    try {
        ast = luaparse.parse(script, { luaVersion: "5.3", locations: true, comments: false });
    } catch {
        return [];
    }
    const found: string[] = [];
    const visit = (value: unknown): void => {
        if (Array.isArray(value)) {
            value.forEach(visit);
            return;
        }
        if (typeof value !== "object" || value === null) {
            return;
        }
        const node = value as luaparse.Node;
        const isOperator = node.type === "BinaryExpression" || node.type === "UnaryExpression";
        const what = isOperator ? NEWER_OPERATORS[node.operator ?? ""] : NEWER_STATEMENTS[node.type];
        if (what !== undefined) {
            found.push(`${what} (line ${node.loc?.start.line})`);
        }
        Object.values(value).forEach(visit);
    };
    visit(ast);
    return found;
}

/**
 * What argo-cd's runLua opens under SkipOpenLibs: package, base and table. Its OpenSafeOs
 * registers into the already-loaded `table` module and so adds nothing: the global `os` stays nil
 * and only `require("os")` reaches the safe subset, through the preloaded module.
 */
function openArgoCdLibs(L: LuaState): void {
    const libraries: [string, LuaJsFunction][] = [
        ["package", lualib.luaopen_package],
        ["_G", lualib.luaopen_base],
        ["table", lualib.luaopen_table],
    ];
    for (const [name, open] of libraries) {
        lauxlib.luaL_requiref(L, to_luastring(name), open, 1);
        lua.lua_pop(L, 1);
    }
    lauxlib.luaL_getsubtable(L, lua.LUA_REGISTRYINDEX, lauxlib.LUA_PRELOAD_TABLE);
    lua.lua_pushcfunction(L, openSafeOs);
    lua.lua_setfield(L, -2, to_luastring("os"));
    lua.lua_pop(L, 1);
}

/** argo-cd oslib_safe.go: only os.time and os.date. */
const openSafeOs: LuaJsFunction = (L) => {
    lualib.luaopen_os(L);
    lua.lua_createtable(L, 0, 2);
    for (const name of ["time", "date"]) {
        lua.lua_getfield(L, -2, to_luastring(name));
        lua.lua_setfield(L, -2, to_luastring(name));
    }
    return 1;
};

/**
 * fengari's base and table libraries are 5.3's. gopher-lua has the 5.1 global `unpack` and none
 * of these, so a script that leans on them would fail in Argo CD.
 */
const LUA51_COMPAT = `
unpack = table.unpack
table.unpack, table.pack, table.move, rawlen = nil, nil, nil, nil
`;

function runChunk(L: LuaState, source: string, chunkname: string, results: number): void {
    if (lauxlib.luaL_loadbuffer(L, to_luastring(source), null, to_luastring(chunkname)) !== lua.LUA_OK) {
        throw new Error(`Lua script does not compile: ${errorText(L)}`);
    }
    if (lua.lua_pcall(L, 0, results, 0) !== lua.LUA_OK) {
        throw new Error(`Lua script failed: ${errorText(L)}`);
    }
}

function errorText(L: LuaState): string {
    lauxlib.luaL_tolstring(L, -1);
    return lua.lua_tojsstring(L, -1);
}

function limitRunTime(L: LuaState, timeoutMs: number): void {
    const deadline = Date.now() + timeoutMs;
    const checkDeadline = (state: LuaState): void => {
        if (Date.now() > deadline) {
            lauxlib.luaL_error(state, to_luastring(`script ran longer than ${timeoutMs} ms`));
        }
    };
    lua.lua_sethook(L, checkDeadline, lua.LUA_MASKCOUNT, 10_000);
}

// fengari integers are 32-bit; bigger whole numbers become floats (gopher-lua has only floats).
const isLuaInteger = (value: number): boolean => Number.isInteger(value) && (value | 0) === value;

/** Pushes parsed JSON/YAML the way argo-cd's decodeValue does. */
function pushJson(L: LuaState, value: unknown): void {
    // A live object nests deeper (managedFields) than the 20 free slots a C function starts with.
    lauxlib.luaL_checkstack(L, 3, to_luastring("object nested too deeply"));
    if (typeof value === "boolean") {
        lua.lua_pushboolean(L, value);
    } else if (typeof value === "number") {
        if (isLuaInteger(value)) {
            lua.lua_pushinteger(L, value);
        } else {
            lua.lua_pushnumber(L, value);
        }
    } else if (typeof value === "string") {
        lua.lua_pushstring(L, to_luastring(value));
    } else if (Array.isArray(value)) {
        // 1-based sequence; gopher-lua's Append skips nil, so nulls close up rather than leave holes.
        const items = value.filter((item) => item !== null && item !== undefined);
        lua.lua_createtable(L, items.length, 0);
        items.forEach((item, index) => {
            pushJson(L, item);
            lua.lua_rawseti(L, -2, index + 1);
        });
    } else if (typeof value === "object" && value !== null) {
        const entries = Object.entries(value).filter(([, item]) => item !== null && item !== undefined);
        lua.lua_createtable(L, 0, entries.length);
        for (const [key, item] of entries) {
            lua.lua_pushstring(L, to_luastring(key));
            pushJson(L, item);
            lua.lua_rawset(L, -3);
        }
    } else {
        lua.lua_pushnil(L);
    }
}

const VALID_STATUSES: ReadonlySet<string> = new Set(HEALTH_STATUSES);

function readHealthStatus(L: LuaState): HealthStatus {
    if (lua.lua_type(L, -1) !== lua.LUA_TTABLE) {
        throw new Error(`health script must return a table, not ${luaTypeName(L, -1)}`);
    }
    const status = readStringField(L, "status");
    if (status === undefined || !VALID_STATUSES.has(status)) {
        throw new Error(`health script returned an invalid status ${status ?? "(not a string)"}; valid: ${HEALTH_STATUSES.join(", ")}`);
    }
    const message = readStringField(L, "message");
    if (message === undefined) {
        throw new Error("health script returned a message that is not a string");
    }
    return { status, message };
}

function readStringField(L: LuaState, field: string): string | undefined {
    lua.lua_getfield(L, -1, to_luastring(field));
    const value = lua.lua_type(L, -1) === lua.LUA_TSTRING ? lua.lua_tojsstring(L, -1) : undefined;
    lua.lua_pop(L, 1);
    return value;
}

function luaTypeName(L: LuaState, index: number): string {
    return to_jsstring(lua.lua_typename(L, lua.lua_type(L, index)));
}
