"""Residual MADE: do residual blocks help, and should each block's second layer start at zero?

MoG-MADE 1x64 (K=5) on the breast-cancer table (the likelihood benchmark's split), trained
with the one training loop (Adam 3e-3, batch 100, up to 150 epochs, patience 20), 3 seeds;
prints the test NLL (nats) per seed and the mean. Run: ``python benchmarks/residual_init.py``.
"""
import sys, torch, statistics
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
torch.set_num_threads(1)
import bench_data, pyro_ar
from pyro_ar.conditionals import MixtureOfGaussians
from pyro_ar.program.training import train, evaluate_nll
data = bench_data.breast_cancer(0)
n = data["train"].shape[1]
res = {}
for zero in (True, False):
    for blocks in (0, 2):
        if blocks == 0 and not zero: continue
        vals = []
        for seed in range(3):
            torch.manual_seed(seed)
            net = pyro_ar.MADE(n, [64], residual_blocks=blocks, conditional=MixtureOfGaussians(5))
            if not zero:  # undo the zero start: default nn.Linear init of every block's second layer
                for layer in net.conditioner.residual_layers[1::2]:
                    layer.reset_parameters()
            train(net, data["train"], data["valid"], epochs=150, batch_size=100, lr=3e-3, patience=20, seed=seed, progress=False)
            vals.append(evaluate_nll(net, data["test"]))
        res[(blocks, zero)] = vals
        print(blocks, "zero-init" if zero else "default-init", [round(v, 2) for v in vals], round(statistics.mean(vals), 2), flush=True)
