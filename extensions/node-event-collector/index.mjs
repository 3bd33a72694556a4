// node-event-collector: on each INVOKE, PutObject {deadline_ms, request_id, invoked_function_arn}
// to s3://$EVENT_COLLECTOR_BUCKET/{AWS_LAMBDA_FUNCTION_NAME}/{unix ms}.json, awaited before
// calling next (the same logic as rust-event-collector). An S3 failure is logged; next is still
// called. Usage: node index.mjs [EXTENSION_NAME]  (the launcher passes its own file name).
//
// S3 settings come from the standard AWS environment (AWS_REGION, credentials,
// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL); a custom endpoint means path-style addressing.
import http from "node:http";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";

const name = process.argv[2] || "node-event-collector";
const log = (line) => console.log(`[${name}] ${line}`);
const fail = (line) => console.error(`[${name}] ${line}`);

// The Extensions API over node:http: /next blocks until the next event, so no timeout
// (fetch/undici would give up after 300 s without headers).
function call(method, path, headers, body) {
  const api = process.env.AWS_LAMBDA_RUNTIME_API;
  const [host, port] = api.split(":");
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port: Number(port), method, path: `/2020-01-01/extension${path}`, headers },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200) {
            reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${text}`));
          } else {
            resolve({ headers: res.headers, text });
          }
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function main() {
  const bucket = process.env.EVENT_COLLECTOR_BUCKET;
  if (!bucket) {
    fail("EVENT_COLLECTOR_BUCKET is not set: set it to the bucket to write to");
    process.exit(1);
  }
  if (!process.env.AWS_LAMBDA_RUNTIME_API) {
    fail("AWS_LAMBDA_RUNTIME_API is not set: run inside a Lambda environment");
    process.exit(1);
  }
  const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME || "unknown-function";
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL;
  const s3 = new S3Client({
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    // An invocation must never hang on S3.
    requestHandler: { connectionTimeout: 2000, requestTimeout: 5000 },
  });

  const registered = await call(
    "POST",
    "/register",
    { "Lambda-Extension-Name": name, "Content-Type": "application/json" },
    JSON.stringify({ events: ["INVOKE", "SHUTDOWN"] }),
  );
  const id = registered.headers["lambda-extension-identifier"];
  if (!id) throw new Error("register answered without Lambda-Extension-Identifier");

  for (;;) {
    const { text } = await call("GET", "/event/next", { "Lambda-Extension-Identifier": id });
    const event = JSON.parse(text);
    if (event.eventType === "SHUTDOWN") {
      log(`SHUTDOWN ${event.shutdownReason}`);
      process.exit(0);
    }
    log(`INVOKE ${event.requestId}`);
    const key = `${functionName}/${Date.now()}.json`;
    const body = JSON.stringify({
      deadline_ms: event.deadlineMs,
      request_id: event.requestId,
      invoked_function_arn: event.invokedFunctionArn,
    });
    try {
      await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: "application/json" }),
      );
    } catch (err) {
      fail(`PutObject s3://${bucket}/${key} failed: ${err.name}: ${err.message}`);
    }
  }
}

main().catch((err) => {
  fail(`fatal: ${err.stack || err}`);
  process.exit(1);
});
