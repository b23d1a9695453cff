#!/usr/bin/env bash
# The paired-by-class fusion benchmark on the 12 folds of ravdess_paper12 with issue 9's extractors
# (configs/paired_v2.yaml; docs/RESULTS.md section 3). Every command resumes where it stopped, so the script
# can be run again after an interruption. FOLDS=1-6 bash tools/paired_benchmark.sh runs a part.
# Environment: FOLDS, OUT, EXTRA, AGG, ONLY (below).
#   needs: cache/ravdess_audio (mrpn prepare ravdess ../shared/data/ravdess/audio16k --modality audio
#   --out cache/ravdess_audio), ../shared/data/fer2013, and docs/results/ravdess_am_recipe_v2/fold_XX/best.pt
set -euo pipefail
FOLDS=${FOLDS:-1-12}
# EXTRA: more arguments for every cv command, e.g. EXTRA="--set train.pretrained_a=OTHER_AM_RUN" (a fold whose
# AM checkpoint lives in another run folder)
read -ra EXTRA_ARGS <<< "${EXTRA:-}"
# AGG=transformer: the same benchmark with the shipped model's aggregator (model.aggregator) for A_v and A_a,
# run names paired2_vm_tf, paired2_am_tf, paired2_n0_late_tf, paired2_n0_e2e_tf, paired2_n1_tf, paired2_n2_tf
# (the names RESULTS section 3 used for its first two). Unset: the LSTM of configs/paired_v2.yaml.
AGG=${AGG:-}
if [[ -n "$AGG" ]]; then
    case "$AGG" in transformer) T=_tf ;; *) T=_$AGG ;; esac
    EXTRA_ARGS+=(--set "model.aggregator=$AGG")
    NAMES=(paired2_vm$T paired2_am$T paired2_n0_late$T paired2_n0_e2e$T paired2_n1$T paired2_n2$T)
else
    NAMES=(paired2_vm paired2_am paired2_n0_late paired2_n0_e2e paired2_n1_e2e paired2_n2_e2e)
fi
OUT=${OUT:-docs/results/paired_v2${T:-}}     # mrpn report's folder, when all six models ran
# ONLY=am,n0_late: a part of the six models (vm am n0_late n0_e2e n1 n2), e.g. two calls side by side
ALL=vm,am,n0_late,n0_e2e,n1,n2
ONLY=${ONLY:-$ALL}
for m in ${ONLY//,/ }; do
    [[ ",$ALL," == *",$m,"* ]] || { echo "ONLY: unknown model '$m' (known: $ALL)" >&2; exit 2; }
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }
C=(--config configs/paired_v2.yaml --folds "$FOLDS" --quiet "${EXTRA_ARGS[@]}")
want vm && mrpn cv "${C[@]}" --model vm --name "${NAMES[0]}" --set train.freeze_extractors=v
want am && mrpn cv "${C[@]}" --model am --name "${NAMES[1]}" --set train.freeze_extractors=a
want n0_late && mrpn cv "${C[@]}" --model n0 --strategy late --name "${NAMES[2]}" \
    --set "train.unimodal_runs=v=runs/${NAMES[0]},a=runs/${NAMES[1]}"
want n0_e2e && mrpn cv "${C[@]}" --model n0 --name "${NAMES[3]}" --set train.freeze_extractors=v,a
want n1 && mrpn cv "${C[@]}" --model n1 --name "${NAMES[4]}" --set train.freeze_extractors=v,a
want n2 && mrpn cv "${C[@]}" --model n2 --name "${NAMES[5]}" --set train.freeze_extractors=v,a
# the report, once all six models ran on all 12 folds (REPORT=1 forces it, REPORT=0 skips it)
if [[ -z "${REPORT:-}" ]]; then
    REPORT=$([[ $FOLDS == 1-12 ]] && echo 1 || echo 0)
    for m in ${ALL//,/ }; do want "$m" || REPORT=0; done
fi
if [[ $REPORT == 1 ]]; then
    mrpn report "${NAMES[@]/#/runs/}" --out "$OUT"
fi
