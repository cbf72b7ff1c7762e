import { loadConfig } from "./stacks/config";
import { deployFleet } from "./stacks/fleet";

// The program is a function, so every run (and every test) evaluates a stack afresh.
export = async () => deployFleet(await loadConfig());
