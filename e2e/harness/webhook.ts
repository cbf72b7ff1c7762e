/**
 * A webhook receiver on loopback for Argo CD's notifications: HTTPS with the fleet's serving
 * certificate (SAN 127.0.0.1; the notifications controller trusts the fleet CA), recording every
 * request. The stack's notifications.webhook.url points here, so no notification leaves the machine.
 */
import * as fs from "fs";
import * as https from "https";
import type * as net from "net";

export interface ReceivedRequest {
    at: Date;
    method: string;
    path: string;
    headers: Record<string, string | string[] | undefined>;
    body: string;
    /** The body parsed as JSON, or undefined when it is not JSON. */
    json?: any;
}

export interface WebhookReceiver {
    /** https://127.0.0.1:<port> */
    url: string;
    received: ReceivedRequest[];
    stop(): Promise<void>;
}

export async function startWebhookReceiver(tls: { certFile: string; keyFile: string }): Promise<WebhookReceiver> {
    const received: ReceivedRequest[] = [];
    const server = https.createServer({ cert: fs.readFileSync(tls.certFile), key: fs.readFileSync(tls.keyFile) }, (req, res) => {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
            let json: unknown;
            try {
                json = JSON.parse(body);
            } catch {
                json = undefined;
            }
            received.push({ at: new Date(), method: req.method ?? "", path: req.url ?? "", headers: req.headers, body, json });
            res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
        });
    });
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", () => resolve()));
    const { port } = server.address() as net.AddressInfo;
    return {
        url: `https://127.0.0.1:${port}`,
        received,
        stop: () => new Promise((resolve) => server.close(() => resolve())),
    };
}
