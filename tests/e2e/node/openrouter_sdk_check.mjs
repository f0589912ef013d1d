// Calls the gateway's /api/v1 with OpenRouter's own TypeScript SDK, which checks every
// answer against OpenRouter's zod schemas, and prints one JSON report on stdout:
// {"<call>": {"ok": true, "value": ...} | {"ok": false, "error": {name, message, detail}}}.
//
// Environment: SDK_DIR (the installed @openrouter/sdk folder), SERVER_URL
// ("<gateway>/api/v1"), API_KEY, MODEL ("author/slug", served by the fake upstream).
import path from "node:path";
import { pathToFileURL } from "node:url";

const sdkEntry = pathToFileURL(path.join(process.env.SDK_DIR, "esm", "index.js")).href;
const { OpenRouter } = await import(sdkEntry);

const serverURL = process.env.SERVER_URL;
const model = process.env.MODEL;
const [author, slug] = model.split("/");
const client = new OpenRouter({ apiKey: process.env.API_KEY, serverURL });

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    },
  },
};

function describe(error) {
  return {
    name: error?.constructor?.name ?? typeof error,
    message: String(error?.message ?? error),
    // ResponseValidationError.pretty() lists each zod issue with its path.
    detail: typeof error?.pretty === "function" ? error.pretty() : String(error?.stack ?? ""),
    status: error?.statusCode ?? error?.httpMeta?.response?.status ?? null,
  };
}

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const report = {};

async function check(name, call) {
  try {
    report[name] = { ok: true, value: await call() };
  } catch (error) {
    report[name] = { ok: false, error: describe(error) };
  }
}

let chatId = null;
await check("chat", async () => {
  const result = await client.chat.send({
    chatRequest: { model, messages: [{ role: "user", content: "hello there" }] },
  });
  chatId = result.id;
  return result;
});

await check("chat_stream", async () => {
  const stream = await client.chat.send({
    chatRequest: {
      model,
      messages: [{ role: "user", content: "stream this please" }],
      stream: true,
      streamOptions: { includeUsage: true },
    },
  });
  return collect(stream);
});

await check("chat_tools", async () =>
  client.chat.send({
    chatRequest: {
      model,
      messages: [{ role: "user", content: "weather in Paris?" }],
      tools: [weather],
      toolChoice: "required",
    },
  }),
);

await check("chat_tools_stream", async () => {
  const stream = await client.chat.send({
    chatRequest: {
      model,
      messages: [{ role: "user", content: "weather in Paris?" }],
      tools: [weather],
      toolChoice: "required",
      stream: true,
    },
  });
  return collect(stream);
});

await check("models_list", async () => {
  const pages = await client.models.list();
  const results = [];
  for await (const page of pages) results.push(page.result);
  return results;
});

// One model a page: the SDK follows the pages by offset until one comes back short.
await check("models_list_paged", async () => {
  const pages = await client.models.list({ limit: 1 });
  const results = [];
  for await (const page of pages) results.push(page.result);
  return results;
});

await check("models_count", async () => client.models.count());
await check("model_get", async () => client.models.get({ author, slug }));
await check("endpoints_list", async () => client.endpoints.list({ author, slug }));
await check("key", async () => client.apiKeys.getCurrentKeyMetadata());

// The ledger writer batches rows: ask until the chat call's row is there.
await check("generation", async () => {
  if (chatId === null) throw new Error("the chat call gave no id");
  for (let attempt = 0; ; attempt++) {
    try {
      return await client.generations.getGeneration({ id: chatId });
    } catch (error) {
      if (error?.constructor?.name !== "NotFoundResponseError" || attempt >= 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
});

await check("wrong_key", async () => {
  const stranger = new OpenRouter({ apiKey: "sk-not-a-key", serverURL });
  return stranger.chat.send({
    chatRequest: { model, messages: [{ role: "user", content: "hi" }] },
  });
});

process.stdout.write(JSON.stringify(report));
