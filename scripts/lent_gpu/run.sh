#!/usr/bin/env bash
# Train the 16-channel DiT on a lent GPU (session 13: one H200) within BUDGET seconds; prepare .gpu/ first
# (make_parts.py), carry it, and fetch $OUT: the EMA weights exported every 500 steps, split in parts below
# 6 MB in case one file is over the transfer limit, the metrics and the log.
set -uo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH=$PWD/.gpu/site:$PWD
OUT=${OUT:-/tmp/gpu_out}; mkdir -p $OUT
BUDGET=${BUDGET:-330}  # training seconds; the set-up (render and encode 48,000 clips) took 170-200 s more on the H200
EXTRA=${EXTRA:-}
INIT=${INIT:-generator/weights/dit.safetensors}  # a carried fp16 export (runs/...) avoids the int8 rounding
{
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
df -h /dev/shm | tail -1; nproc
shm_kb=$(df -k /dev/shm | tail -1 | awk '{print $4}')
if [ "${shm_kb:-0}" -lt 8000000 ]; then mount -o remount,size=24G /dev/shm && df -h /dev/shm | tail -1; fi
shm_kb=$(df -k /dev/shm | tail -1 | awk '{print $4}')
W=12; [ "${shm_kb:-0}" -lt 4000000 ] && W=0
echo "workers $W"
python3 -c "import torch, lightning, tokenizers, yaml, safetensors, numpy; print(torch.__version__, lightning.__version__, numpy.__version__, torch.cuda.is_available())"
python3 scripts/lent_gpu/prep_minilm.py
# the run starts from the shipped DiT or INIT (session 13 started from the 4-channel one: configs/dit_vae16_gpu.yaml)
python3 -c "from generator.config import DiTTrainConfig, load_config; from generator.weights import dit_init_checkpoint; dit_init_checkpoint('$INIT', 'runs/dit16g_init.ckpt', model=load_config('configs/dit_vae16_gpu.yaml', DiTTrainConfig).model)"
timeout $((BUDGET + 240)) python3 -m generator.train dit --config configs/dit_vae16_gpu.yaml --set train.export_to=$OUT/dit.safetensors --set train.time_budget_s=$BUDGET --set data.num_workers=$W $EXTRA 2>&1 | grep -v -i "warn"
echo "train exit ${PIPESTATUS[0]}"
cp runs/dit16g/logs/version_0/metrics.csv $OUT/ 2>/dev/null
(cd $OUT && split -b 6000000 dit.safetensors dit.part.)
ls -la $OUT
} 2>&1 | tee $OUT/run.log
