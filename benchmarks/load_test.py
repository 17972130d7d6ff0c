"""Load test of ``ehrqa serve`` on loopback: many questions at once, one shared model.

    python benchmarks/load_test.py [--questions 50] [--concurrency 50] [--answer-mode MODE]
                                   [--model smollm2] [--home DIR] [--port 8791]

It builds a data directory with the demo patients and an admin token, starts ``ehrqa
serve`` as a separate process, sends ``--questions`` questions as Server-Sent Event streams
with ``--concurrency`` of them in flight at once, and polls ``/healthz`` throughout to see
whether the server stays responsive. For each question it records when the first answer
reached the client (the ``answer`` event: the composed, checked answer a reader sees) and
when the stream ended (``result``). Without ``--answer-mode`` the server's default mode is
used. A model, when a mode calls one, is one llama.cpp context shared by every request
behind a lock, so questions that need it queue; composed answers and abstentions do not.
Writes ``reports/service/load_test.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from ehrqa.api.tokens import TokenStore
from ehrqa.ingest.files import ingest_paths
from ehrqa.lab.data.demo import DEMO_NOW, DEMO_QUESTIONS, demo_dir
from ehrqa.lab.eval.metrics import percentile
from ehrqa.lab.eval.provenance import git_commit, run_provenance
from ehrqa.store.sqlite import open_store

ROOT = Path(__file__).resolve().parents[1]
REPORT_DIR = ROOT / "reports" / "service"


def prepare(home: Path) -> tuple[str, list[str]]:
    """The demo patients in ``home``'s store, and a new admin token."""
    store = open_store(home)
    try:
        ingest_paths(store, [demo_dir()])
        patients = [p.id for p in store.patients()]
    finally:
        store.close()
    token = TokenStore.in_home(home).create(f"load-test-{int(time.time())}", admin=True)
    return token, patients


def start_server(home: Path, port: int, model: str) -> subprocess.Popen[bytes]:
    """``ehrqa serve`` in its own process, on loopback."""
    binary = Path(sys.executable).with_name("ehrqa")
    env = {**os.environ, "EHRQA_MODEL": model}
    command = [
        str(binary),
        "--home",
        str(home),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_healthy(base: str, seconds: float = 60) -> None:
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit(f"the server at {base} did not come up within {seconds:.0f} s")


async def ask(
    client: httpx.AsyncClient, gate: asyncio.Semaphore, patient: str, question: str, mode: str
) -> dict[str, Any]:
    body = {"question": question, "now": DEMO_NOW.isoformat()}
    if mode:
        body["answer_mode"] = mode
    async with gate:
        started = time.perf_counter()
        first: float | None = None
        status: int | str = "no result"
        source = None
        try:
            url = f"/v1/patients/{patient}/ask?stream=true"
            async with client.stream("POST", url, json=body) as response:
                event = None
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event in ("answer", "result"):
                        first = first if first is not None else time.perf_counter() - started
                        if event == "result":
                            status, source = response.status_code, json.loads(line[6:])["source"]
                    elif line.startswith("data: ") and event == "error":
                        status = json.loads(line[6:])["error"]
                if response.status_code != 200:
                    status = response.status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        return {
            "status": status,
            "source": source,
            "seconds": time.perf_counter() - started,
            "first_answer_seconds": first,
        }


async def poll_health(base: str, stop: asyncio.Event) -> list[float]:
    """Latencies of ``/healthz`` every half second until ``stop`` is set."""
    latencies = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            await client.get("/healthz")
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.5)
    return latencies


async def run_load(args: argparse.Namespace, base: str, token: str, patients: list[str]) -> dict:
    jobs = [
        (patients[i % len(patients)], DEMO_QUESTIONS[i % len(DEMO_QUESTIONS)])
        for i in range(args.questions)
    ]
    gate = asyncio.Semaphore(args.concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    stop = asyncio.Event()
    health = asyncio.create_task(poll_health(base, stop))
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=600, limits=limits
    ) as client:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(ask(client, gate, p, q, args.answer_mode) for p, q in jobs)
        )
        wall = time.perf_counter() - started
    stop.set()
    return {"results": results, "wall_seconds": wall, "health": await health}


def summarize(args: argparse.Namespace, run: dict) -> dict[str, Any]:
    results = run["results"]
    ok = [r["seconds"] for r in results if r["status"] == 200]
    first = [r["first_answer_seconds"] for r in results if r["first_answer_seconds"] is not None]
    health = run["health"]
    return {
        **run_provenance(git_commit()),
        "questions": args.questions,
        "concurrency": args.concurrency,
        "model": args.model,
        "answer_mode": args.answer_mode or "server default",
        "statuses": dict(Counter(str(r["status"]) for r in results)),
        "sources": dict(Counter(str(r["source"]) for r in results if r["source"])),
        "wall_seconds": round(run["wall_seconds"], 2),
        "throughput_per_s": round(len(ok) / run["wall_seconds"], 3),
        "latency_s": {
            p: round(percentile(ok, q), 2) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))
        }
        | {"max": round(max(ok, default=0.0), 2)},
        "first_answer_s": {p: round(percentile(first, q), 3) for p, q in (("p50", 50), ("p95", 95))}
        | {"max": round(max(first, default=0.0), 3)},
        "healthz_ms": {
            p: round(1000 * percentile(health, q), 1) for p, q in (("p50", 50), ("p95", 95))
        }
        | {"max": round(1000 * max(health, default=0.0), 1), "polls": len(health)},
    }


def write_report(summary: dict[str, Any]) -> None:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "load_test.json").write_text(json.dumps(summary, indent=2) + "\n")
    lat, health, first = summary["latency_s"], summary["healthz_ms"], summary["first_answer_s"]
    lines = [
        "# Load test: `ehrqa serve` on loopback",
        "",
        f"{summary['created']}, commit {summary['git_commit']}, {summary['machine']}. "
        f"{summary['questions']} questions about the demo patients, {summary['concurrency']} "
        f"in flight at once, model `{summary['model']}`, answer mode `{summary['answer_mode']}`. "
        "One model context is shared by all requests behind a lock.",
        "",
        "| questions | statuses | wall s | throughput q/s | first answer p50 / p95 s "
        "| done p50 / p95 / max s | /healthz p50 / p95 / max ms during load |",
        "|---|---|---|---|---|---|---|",
        f"| {summary['questions']} | {summary['statuses']} | {summary['wall_seconds']} | "
        f"{summary['throughput_per_s']} | {first['p50']} / {first['p95']} | "
        f"{lat['p50']} / {lat['p95']} / {lat['max']} | "
        f"{health['p50']} / {health['p95']} / {health['max']} |",
        "",
        f"Answer sources: {summary['sources']}.",
    ]
    (REPORT_DIR / "load_test.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--answer-mode", default="", help="default: the server's mode")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="ehrqa-load-"))
    home.mkdir(parents=True, exist_ok=True)
    token, patients = prepare(home)
    base = f"http://127.0.0.1:{args.port}"
    server = start_server(home, args.port, args.model)
    try:
        asyncio.run(wait_healthy(base))
        run = asyncio.run(run_load(args, base, token, patients))
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    summary = summarize(args, run)
    write_report(summary)
    print(json.dumps(summary, indent=2))
    if errors.strip():
        print(f"server stderr ({len(errors)} bytes):\n{errors.decode(errors='replace')[-2000:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
