import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { ROOT } from "../evaluator/evaluate";
import { EXAMPLE_PASSPHRASE, newPassphraseCrypter, passphraseCrypterFor } from "./doubles/passphrase";
import { STACKS } from "./helpers";


function decrypter(encryptionSalt: string): (ciphertext: string) => string {
    return passphraseCrypterFor(EXAMPLE_PASSPHRASE, encryptionSalt).decrypt;
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

describe("the passphrase secrets provider helper", () => {
    it("decrypts what it encrypts, and refuses a wrong passphrase", () => {
        const made = newPassphraseCrypter(EXAMPLE_PASSPHRASE);
        const value = made.encrypt("example-only-token");
        assert.notStrictEqual(value, "example-only-token");
        assert.strictEqual(passphraseCrypterFor(EXAMPLE_PASSPHRASE, made.encryptionSalt).decrypt(value), "example-only-token");
        assert.throws(() => passphraseCrypterFor("another passphrase", made.encryptionSalt), /does not match/);
    });
});
