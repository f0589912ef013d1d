"""Code samples for the model page, filled with this gateway's URL and the model id."""

from __future__ import annotations

import json


def code_samples(base_url: str, model_id: str) -> dict[str, str]:
    api = f"{base_url.rstrip('/')}/v1"
    model = json.dumps(model_id)
    return {
        "curl": f"""curl {api}/chat/completions \\
  -H "Authorization: Bearer $MODELYARD_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{{
    "model": {model},
    "messages": [{{"role": "user", "content": "What is the meaning of life?"}}]
  }}'""",
        "python": f"""import os
from openai import OpenAI

client = OpenAI(base_url="{api}", api_key=os.environ["MODELYARD_API_KEY"])
completion = client.chat.completions.create(
    model={model},
    messages=[{{"role": "user", "content": "What is the meaning of life?"}}],
)
print(completion.choices[0].message.content)""",
        "javascript": f"""import OpenAI from "openai";

const client = new OpenAI({{
  baseURL: "{api}",
  apiKey: process.env.MODELYARD_API_KEY,
}});
const completion = await client.chat.completions.create({{
  model: {model},
  messages: [{{ role: "user", content: "What is the meaning of life?" }}],
}});
console.log(completion.choices[0].message.content);""",
    }
