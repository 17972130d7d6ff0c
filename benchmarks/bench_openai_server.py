"""Latency of SmolLM2 in-process (llama.cpp) versus behind ``python -m llama_cpp.server``.

Asks the demo questions of the demo patient through :class:`ehrqa.qa.QASystem` in model
mode, once with the in-process llama.cpp backend and once with the OpenAI-compatible
backend talking to a local llama-cpp-python server on the same GGUF, and prints, per
backend: time to first chunk and total answer time (median and max over the questions),
and whether the two answers were identical (greedy decoding: they should be). Needs
``uvicorn fastapi sse-starlette starlette-context pydantic-settings``.

    python benchmarks/bench_openai_server.py [--questions 4] [--repeats 1]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ehrqa.core.config import EhrqaConfig
from ehrqa.ingest.files import ingest_paths
from ehrqa.lab.data.demo import DEMO_NOW, DEMO_PATIENT, DEMO_QUESTIONS, demo_dir
from ehrqa.llm import ChatModel, load_chat_model, smollm2_path
from ehrqa.qa import QASystem
from ehrqa.store import SqliteStore

N_CTX = 2048


@contextmanager
def llama_server(log: Path) -> Iterator[str]:
    """A ``llama_cpp.server`` on a free loopback port serving SmolLM2 as 'smollm2'."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path())]
    command += ["--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--n_ctx", str(N_CTX), "--interrupt_requests", "False"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        started = time.perf_counter()
        while time.perf_counter() - started < 120:
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.25)
        print(f"server ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def timed_ask(system: QASystem, question: str) -> tuple[float, float, str]:
    """Seconds to the first answer chunk and to the whole answer, and the answer."""
    first: list[float] = []

    def on_token(_chunk: str) -> None:
        if not first:
            first.append(time.perf_counter())

    started = time.perf_counter()
    result = system.ask(DEMO_PATIENT, question, now=DEMO_NOW, on_token=on_token)
    done = time.perf_counter()
    return (first[0] if first else done) - started, done - started, result.answer.text


def time_answers(
    system: QASystem, questions: list[str], repeats: int
) -> tuple[list[float], list[float], list[str]]:
    """:func:`timed_ask` over ``questions``, ``repeats`` times each; one answer each."""
    firsts, totals, texts = [], [], []
    for question in questions:
        for _ in range(repeats):
            first, total, text = timed_ask(system, question)
            firsts.append(first)
            totals.append(total)
        texts.append(text)
    return firsts, totals, texts


def summary(name: str, firsts: list[float], totals: list[float]) -> str:
    return (
        f"| {name} | {statistics.median(firsts) * 1000:.0f} | "
        f"{statistics.median(totals) * 1000:.0f} | {max(totals) * 1000:.0f} |"
    )


def main() -> None:
    """Run the comparison and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=4, help="how many demo questions")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per question")
    args = parser.parse_args()
    questions = list(DEMO_QUESTIONS[: args.questions])
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = SqliteStore(home / "store.sqlite3")
        ingest_paths(store, [demo_dir() / f"patient-{DEMO_PATIENT}.json.gz"])
        local: ChatModel = load_chat_model("smollm2", n_ctx=N_CTX)
        config = EhrqaConfig(home=tmp, model="smollm2", answer_mode="model")
        rows, answers = [], []
        in_process = time_answers(QASystem(config, store, model=local), questions, args.repeats)
        rows.append(summary("llama.cpp in-process", *in_process[:2]))
        answers.append(in_process[2])
        with llama_server(home / "server.log") as url:
            config = EhrqaConfig(home=tmp, model=f"{url}#smollm2", answer_mode="model")
            served = time_answers(QASystem(config, store), questions, args.repeats)
        rows.append(summary("llama_cpp.server over HTTP", *served[:2]))
        answers.append(served[2])
        store.close()
    same = sum(a == b for a, b in zip(*answers, strict=True))
    print(f"{args.repeats} timed runs per question", file=sys.stderr)
    print(f"{len(questions)} questions; identical answers: {same}/{len(questions)}")
    print("| backend | first chunk p50 (ms) | answer p50 (ms) | answer max (ms) |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
