"""Code samples for the model page, filled with this gateway's URL and the model id.

Every chat model answers every chat front door: OpenAI chat completions and the OpenAI
Responses API under /v1, and the Anthropic Messages API at /v1/messages. The Anthropic SDKs
append /v1/messages to their base URL themselves, so theirs is the gateway's root; the
OpenAI SDKs take the /v1 prefix. An embedding model answers /v1/embeddings only.
"""

from __future__ import annotations

import json

QUESTION = "What is the meaning of life?"
TO_EMBED = "The quick brown fox jumps over the lazy dog"
ANTHROPIC_VERSION = "2023-06-01"
# Tab labels by sample name, in the order the page shows them.
LABELS = {
    "curl": "curl",
    "python": "Python",
    "javascript": "JavaScript",
    "responses-curl": "Responses curl",
    "responses-python": "Responses Python",
    "responses-typescript": "Responses TypeScript",
    "anthropic-curl": "Anthropic curl",
    "anthropic-python": "Anthropic Python",
    "anthropic-typescript": "Anthropic TypeScript",
}


def code_samples(base_url: str, model_id: str, *, embedding: bool = False) -> dict[str, str]:
    """The samples by tab name, in the order the page shows them: for an embedding model
    curl, Python and JavaScript calls of /v1/embeddings, for a chat model every front door."""
    root = base_url.rstrip("/")
    api, model = f"{root}/v1", json.dumps(model_id)
    if embedding:
        return _embeddings(api, model)
    return _openai(api, model) | _responses(api, model) | _anthropic(root, model)


def _embeddings(api: str, model: str) -> dict[str, str]:
    return {
        "curl": f"""curl {api}/embeddings \\
  -H "Authorization: Bearer $MODELYARD_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{{
    "model": {model},
    "input": "{TO_EMBED}"
  }}'""",
        "python": f"""import os
from openai import OpenAI

client = OpenAI(base_url="{api}", api_key=os.environ["MODELYARD_API_KEY"])
response = client.embeddings.create(
    model={model},
    input="{TO_EMBED}",
)
print(response.data[0].embedding)""",
        "javascript": f"""import OpenAI from "openai";

const client = new OpenAI({{
  baseURL: "{api}",
  apiKey: process.env.MODELYARD_API_KEY,
}});
const response = await client.embeddings.create({{
  model: {model},
  input: "{TO_EMBED}",
}});
console.log(response.data[0].embedding);""",
    }


def _openai(api: str, model: str) -> dict[str, str]:
    return {
        "curl": f"""curl {api}/chat/completions \\
  -H "Authorization: Bearer $MODELYARD_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{{
    "model": {model},
    "messages": [{{"role": "user", "content": "{QUESTION}"}}]
  }}'""",
        "python": f"""import os
from openai import OpenAI

client = OpenAI(base_url="{api}", api_key=os.environ["MODELYARD_API_KEY"])
completion = client.chat.completions.create(
    model={model},
    messages=[{{"role": "user", "content": "{QUESTION}"}}],
)
print(completion.choices[0].message.content)""",
        "javascript": f"""import OpenAI from "openai";

const client = new OpenAI({{
  baseURL: "{api}",
  apiKey: process.env.MODELYARD_API_KEY,
}});
const completion = await client.chat.completions.create({{
  model: {model},
  messages: [{{ role: "user", content: "{QUESTION}" }}],
}});
console.log(completion.choices[0].message.content);""",
    }


def _responses(api: str, model: str) -> dict[str, str]:
    return {
        "responses-curl": f"""curl {api}/responses \\
  -H "Authorization: Bearer $MODELYARD_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{{
    "model": {model},
    "input": "{QUESTION}"
  }}'""",
        "responses-python": f"""import os
from openai import OpenAI

client = OpenAI(base_url="{api}", api_key=os.environ["MODELYARD_API_KEY"])
response = client.responses.create(
    model={model},
    input="{QUESTION}",
)
print(response.output_text)""",
        "responses-typescript": f"""import OpenAI from "openai";

const client = new OpenAI({{
  baseURL: "{api}",
  apiKey: process.env.MODELYARD_API_KEY,
}});
const response = await client.responses.create({{
  model: {model},
  input: "{QUESTION}",
}});
console.log(response.output_text);""",
    }


def _anthropic(root: str, model: str) -> dict[str, str]:
    return {
        "anthropic-curl": f"""curl {root}/v1/messages \\
  -H "x-api-key: $MODELYARD_API_KEY" \\
  -H "anthropic-version: {ANTHROPIC_VERSION}" \\
  -H "Content-Type: application/json" \\
  -d '{{
    "model": {model},
    "max_tokens": 1024,
    "messages": [{{"role": "user", "content": "{QUESTION}"}}]
  }}'""",
        "anthropic-python": f"""import os
from anthropic import Anthropic

client = Anthropic(base_url="{root}", api_key=os.environ["MODELYARD_API_KEY"])
message = client.messages.create(
    model={model},
    max_tokens=1024,
    messages=[{{"role": "user", "content": "{QUESTION}"}}],
)
print(message.content[0].text)""",
        "anthropic-typescript": f"""import Anthropic from "@anthropic-ai/sdk";

const client = new Anthropic({{
  baseURL: "{root}",
  apiKey: process.env.MODELYARD_API_KEY,
}});
const message = await client.messages.create({{
  model: {model},
  max_tokens: 1024,
  messages: [{{ role: "user", content: "{QUESTION}" }}],
}});
for (const block of message.content) {{
  if (block.type === "text") console.log(block.text);
}}""",
    }
