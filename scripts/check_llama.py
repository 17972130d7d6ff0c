"""Smoke test of the installed llama-cpp-python: one short chat completion with SmolLM2.

    python scripts/check_llama.py

Exits 0 when it works. A llama.cpp library compiled for instructions this machine cannot
run (a wheel from pip's cache built elsewhere, or AMX tiles the sandbox does not enable)
dies with a signal instead; ``make install`` then rebuilds it from source.
"""

from __future__ import annotations

from llama_cpp import Llama

from ehrqa.llm import smollm2_path

llm = Llama(model_path=str(smollm2_path()), n_ctx=256, n_threads=2, verbose=False)
reply = llm.create_chat_completion(
    messages=[{"role": "user", "content": "Name one colour of the rainbow."}], max_tokens=4
)
print("llama.cpp works:", repr(reply["choices"][0]["message"]["content"]))
