#!/usr/bin/env bash
# The paired-by-class fusion benchmark on the 12 folds of ravdess_paper12 with issue 9's extractors
# (configs/paired_v2.yaml; docs/RESULTS.md section 3). Every command resumes where it stopped, so the script
# can be run again after an interruption. FOLDS=1-6 bash tools/paired_benchmark.sh runs a part.
#   needs: cache/ravdess_audio (mrpn prepare ravdess ../shared/data/ravdess/audio16k --modality audio
#   --out cache/ravdess_audio), ../shared/data/fer2013, and docs/results/ravdess_am_recipe_v2/fold_XX/best.pt
set -euo pipefail
FOLDS=${FOLDS:-1-12}
OUT=${OUT:-docs/results/paired_v2}
# EXTRA: more arguments for every cv command, e.g. EXTRA="--set train.pretrained_a=OTHER_AM_RUN" (a fold whose
# AM checkpoint lives in another run folder)
read -ra EXTRA_ARGS <<< "${EXTRA:-}"
C=(--config configs/paired_v2.yaml --folds "$FOLDS" --quiet "${EXTRA_ARGS[@]}")
mrpn cv "${C[@]}" --model vm --name paired2_vm --set train.freeze_extractors=v
mrpn cv "${C[@]}" --model am --name paired2_am --set train.freeze_extractors=a
mrpn cv "${C[@]}" --model n0 --strategy late --name paired2_n0_late \
    --set train.unimodal_runs=v=runs/paired2_vm,a=runs/paired2_am
for m in n0 n1 n2; do
    mrpn cv "${C[@]}" --model $m --name paired2_${m}_e2e --set train.freeze_extractors=v,a
done
mrpn report runs/paired2_vm runs/paired2_am runs/paired2_n0_late runs/paired2_n0_e2e runs/paired2_n1_e2e \
    runs/paired2_n2_e2e --out "$OUT"
