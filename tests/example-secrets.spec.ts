import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { ROOT } from "../tools/evaluate";
import { STACKS } from "./helpers";

/** The passphrase the README documents for the example stacks, and only for them. */
const EXAMPLE_PASSPHRASE = "agentfleet-example-only";

/** Pulumi's passphrase secrets provider: PBKDF2-SHA256 (1,000,000 rounds) key, AES-256-GCM values `v1:<nonce>:<ciphertext+tag>`. */
function decrypter(encryptionSalt: string): (ciphertext: string) => string {
    const [, salt, ...check] = encryptionSalt.split(":");
    const key = crypto.pbkdf2Sync(EXAMPLE_PASSPHRASE, Buffer.from(salt, "base64"), 1_000_000, 32, "sha256");
    const decrypt = (ciphertext: string) => {
        const [version, nonce, data] = ciphertext.split(":");
        assert.strictEqual(version, "v1");
        const bytes = Buffer.from(data, "base64");
        const decipher = crypto.createDecipheriv("aes-256-gcm", key, Buffer.from(nonce, "base64"));
        decipher.setAuthTag(bytes.subarray(bytes.length - 16));
        return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]).toString("utf8");
    };
    assert.strictEqual(decrypt(check.join(":")), "pulumi", "the encryption salt does not match the example passphrase");
    return decrypt;
}

function secureValues(value: unknown, at: string, out: Array<[string, string]> = []): Array<[string, string]> {
    if (value && typeof value === "object" && !Array.isArray(value)) {
        const entries = Object.entries(value);
        if (entries.length === 1 && entries[0][0] === "secure") out.push([at, String(entries[0][1])]);
        else for (const [k, v] of entries) secureValues(v, `${at}.${k}`, out);
    } else if (Array.isArray(value)) value.forEach((v, i) => secureValues(v, `${at}[${i}]`, out));
    return out;
}

describe("the example stacks' secrets", function () {
    this.timeout(60000);
    for (const stack of STACKS) {
        it(`${stack}: decrypt with the documented example passphrase, and are example values only`, () => {
            const file = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8"));
            const decrypt = decrypter(file.encryptionsalt);
            const values = secureValues(file.config, "config");
            assert.ok(values.length > 0);
            for (const [at, ciphertext] of values) {
                const plain = decrypt(ciphertext);
                const decoded = Buffer.from(plain, "base64").toString("utf8");
                // Never print the value itself: only where it is.
                assert.ok(/example/i.test(plain) || /example/i.test(decoded), `${at} is not an obvious example value`);
            }
        });
    }
});
