/**
 * Pulumi's passphrase secrets provider, for stack files made without the CLI (generated fleets for
 * benchmarks and tests): a PBKDF2-SHA256 key (1,000,000 rounds) from the passphrase and the
 * stack's salt, and AES-256-GCM values written as `v1:<nonce>:<ciphertext+tag>` (base64).
 * `encryptionsalt` is `v1:<salt>:` followed by the encryption of "pulumi", which the CLI checks.
 */
import * as crypto from "crypto";

/** The passphrase of the committed example stacks (docs/configuration.md, "Example stacks"), and only of them. */
export const EXAMPLE_PASSPHRASE = "agentfleet-example-only";

export interface PassphraseCrypter {
    /** The stack file's `encryptionsalt`. */
    encryptionSalt: string;
    encrypt(plaintext: string): string;
    decrypt(ciphertext: string): string;
}

function crypter(passphrase: string, salt: Buffer, check?: string): PassphraseCrypter {
    const key = crypto.pbkdf2Sync(passphrase, salt, 1_000_000, 32, "sha256");
    const encrypt = (plaintext: string) => {
        const nonce = crypto.randomBytes(12);
        const cipher = crypto.createCipheriv("aes-256-gcm", key, nonce);
        const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
        return `v1:${nonce.toString("base64")}:${data.toString("base64")}`;
    };
    const decrypt = (ciphertext: string) => {
        const [version, nonce, data] = ciphertext.split(":");
        if (version !== "v1" || !nonce || !data) throw new Error("not a passphrase-provider ciphertext (v1:<nonce>:<data>)");
        const bytes = Buffer.from(data, "base64");
        const decipher = crypto.createDecipheriv("aes-256-gcm", key, Buffer.from(nonce, "base64"));
        decipher.setAuthTag(bytes.subarray(bytes.length - 16));
        return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]).toString("utf8");
    };
    const encryptionSalt = `v1:${salt.toString("base64")}:${check ?? encrypt("pulumi")}`;
    return { encryptionSalt, encrypt, decrypt };
}

/** A crypter for a new stack file, with a fresh salt. */
export function newPassphraseCrypter(passphrase: string): PassphraseCrypter {
    return crypter(passphrase, crypto.randomBytes(8));
}

/** The crypter of an existing stack file; throws if `passphrase` is not the one it was made with. */
export function passphraseCrypterFor(passphrase: string, encryptionSalt: string): PassphraseCrypter {
    const [version, salt, ...check] = encryptionSalt.split(":");
    if (version !== "v1" || !salt || check.length === 0) throw new Error("not a passphrase-provider encryptionsalt (v1:<salt>:<check>)");
    const c = crypter(passphrase, Buffer.from(salt, "base64"), check.join(":"));
    let verified: string;
    try {
        verified = c.decrypt(check.join(":"));
    } catch {
        verified = "";
    }
    if (verified !== "pulumi") throw new Error("the passphrase does not match this stack's encryptionsalt");
    return c;
}
