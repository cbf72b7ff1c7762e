// Minimal declarations for the untyped Lua tooling used by tests/doubles/lua-vm.ts: only what it calls.

declare module "fengari" {
    /** A Lua state; opaque on the JS side. */
    export interface LuaState {
        readonly __luaState: unique symbol;
    }
    /** Lua strings are byte arrays in fengari. */
    export type LuaString = Uint8Array;
    export type LuaJsFunction = (L: LuaState) => number;
    export type LuaHook = (L: LuaState, ar: unknown) => void;

    export function to_luastring(value: string): LuaString;
    export function to_jsstring(value: LuaString): string;

    export const lua: {
        LUA_OK: number;
        LUA_MULTRET: number;
        LUA_MASKCOUNT: number;
        LUA_REGISTRYINDEX: number;
        LUA_TNIL: number;
        LUA_TSTRING: number;
        LUA_TTABLE: number;
        lua_close(L: LuaState): void;
        lua_createtable(L: LuaState, narr: number, nrec: number): void;
        lua_getfield(L: LuaState, index: number, key: LuaString): number;
        lua_getglobal(L: LuaState, name: LuaString): number;
        lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number;
        lua_pop(L: LuaState, n: number): void;
        lua_pushboolean(L: LuaState, value: boolean): void;
        lua_pushcfunction(L: LuaState, fn: LuaJsFunction): void;
        lua_pushinteger(L: LuaState, value: number): void;
        lua_pushnil(L: LuaState): void;
        lua_pushnumber(L: LuaState, value: number): void;
        lua_pushstring(L: LuaState, value: LuaString): void;
        lua_pushvalue(L: LuaState, index: number): void;
        lua_rawset(L: LuaState, index: number): void;
        lua_rawseti(L: LuaState, index: number, n: number): void;
        lua_setfield(L: LuaState, index: number, key: LuaString): void;
        lua_setglobal(L: LuaState, name: LuaString): void;
        lua_sethook(L: LuaState, hook: LuaHook | null, mask: number, count: number): void;
        lua_tojsstring(L: LuaState, index: number): string;
        lua_type(L: LuaState, index: number): number;
        lua_typename(L: LuaState, type: number): LuaString;
    };

    export const lauxlib: {
        LUA_PRELOAD_TABLE: LuaString;
        luaL_error(L: LuaState, fmt: LuaString, ...args: unknown[]): never;
        luaL_getsubtable(L: LuaState, index: number, name: LuaString): boolean;
        luaL_checkstack(L: LuaState, space: number, message: LuaString | null): void;
        luaL_loadbuffer(L: LuaState, buffer: LuaString, size: number | null, chunkname: LuaString): number;
        luaL_newstate(): LuaState;
        luaL_requiref(L: LuaState, name: LuaString, open: LuaJsFunction, global: number | boolean): void;
        luaL_tolstring(L: LuaState, index: number): LuaString;
    };

    export const lualib: {
        luaL_openlibs(L: LuaState): void;
        luaopen_base: LuaJsFunction;
        luaopen_os: LuaJsFunction;
        luaopen_package: LuaJsFunction;
        luaopen_table: LuaJsFunction;
    };
}

declare module "luaparse" {
    export interface ParseOptions {
        luaVersion?: "5.1" | "5.2" | "5.3" | "LuaJIT";
        locations?: boolean;
        scope?: boolean;
        comments?: boolean;
    }
    /** An AST node; only `type` and the optional `loc` are read. */
    export interface Node {
        type: string;
        operator?: string;
        loc?: { start: { line: number; column: number } };
    }
    /** Thrown on a syntax error; the message starts with "[line:column]". */
    export interface ParseError extends SyntaxError {
        line: number;
        column: number;
    }
    export function parse(code: string, options?: ParseOptions): Node;
}
