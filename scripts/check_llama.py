"""Smoke test of the installed llama-cpp-python with SmolLM2: it runs, and it is right.

    python scripts/check_llama.py

Exits 0 when a prompt evaluated in one batch gives the same logits as the same prompt
evaluated token by token, and a short chat completion works. A llama.cpp library compiled
for instructions this machine cannot run dies with a signal (AMX tiles the sandbox does
not enable); one whose batched kernels are wrong here fails the comparison (llamafile's
tinyBLAS did). ``make install`` then rebuilds llama-cpp-python from source.
"""

from __future__ import annotations

import sys

import numpy as np
from llama_cpp import Llama

from ehrqa.llm import smollm2_path

PROMPT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "What is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
)
TOLERANCE = 0.05  # batched and single-token kernels round differently, never by whole logits


def last_logits(batch: int) -> np.ndarray:
    """The logits after the prompt, evaluated ``batch`` tokens at a time."""
    llm = Llama(
        model_path=str(smollm2_path()),
        n_ctx=256,
        n_threads=2,
        n_batch=batch,
        n_ubatch=batch,
        logits_all=True,
        verbose=False,
    )
    tokens = llm.tokenize(PROMPT.encode(), special=True)
    llm.eval(tokens)
    return np.array(llm.scores[len(tokens) - 1])


gap = float(np.abs(last_logits(1) - last_logits(64)).max())
if gap > TOLERANCE:
    sys.exit(f"llama.cpp is wrong here: batched logits differ by {gap:.2f} from token by token")
llm = Llama(model_path=str(smollm2_path()), n_ctx=256, n_threads=2, verbose=False)
reply = llm.create_chat_completion(
    messages=[{"role": "user", "content": "Name one colour of the rainbow."}], max_tokens=4
)
print(
    f"llama.cpp works (batched logits within {gap:.4f}):",
    repr(reply["choices"][0]["message"]["content"]),
)
