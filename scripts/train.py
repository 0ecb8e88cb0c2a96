"""Train an hf_rnn recipe; the same entry point as `hf-rnn train`, runnable under `accelerate launch`.

Single process (CPU or one GPU):
    python scripts/train.py configs/recipes/quickstart.yaml

Data parallel on CPU (DDP over gloo; hf_rnn sets use_cpu when there is no accelerator, and accelerate 1.15's
`--cpu --num_processes 2` would start a single process; this is how multi-process training is tested here):
    accelerate launch --multi_gpu --num_processes 2 scripts/train.py quickstart
    torchrun --nproc_per_node 2 scripts/train.py quickstart

Several GPUs on one machine, or several machines (run `accelerate config` once on each):
    accelerate launch --multi_gpu --num_processes 8 scripts/train.py quickstart
    accelerate launch --num_machines 2 --machine_rank 0 --main_process_ip HOST --num_processes 16 \
        scripts/train.py quickstart

Each process reads the recipe and the data; the main process trains the tokenizer and writes the model directory.
`per_device_train_batch_size` is per process, so the effective batch grows with the number of processes.
"""

import sys

from hf_rnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
