"""The default embedded model answers plain questions, over the wire with the openai SDK.

The question set is the one bench/model_quality.py scores every built-in chat model on;
greedy answers are deterministic, so the score is a fixed number: 16 of 26 for SmolLM2 135M
Instruct when this was written (the base Gemma 3 270M, the old default, scored 2).
"""

from __future__ import annotations

import openai
from bench.model_quality import MAX_TOKENS, QUESTIONS

from tests.e2e.conftest import MODEL


def test_the_default_model_answers_most_plain_questions(client: openai.OpenAI) -> None:
    wrong = []
    for question, accepted in QUESTIONS:
        completion = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": question}],
            max_tokens=MAX_TOKENS,
            temperature=0,
        )
        answer = completion.choices[0].message.content or ""
        if not any(fact in answer.lower() for fact in accepted):
            wrong.append((question, answer))
    score = len(QUESTIONS) - len(wrong)
    assert score >= 15, f"{score}/{len(QUESTIONS)}; wrong: {wrong}"
