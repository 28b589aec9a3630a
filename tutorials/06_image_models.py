# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. Image models: PixelCNN
#
# For images a convolutional network is the natural conditioner: the same small filter slides
# over every position, so the number of weights does not grow with the image. To keep the
# model autoregressive the filters are **masked**: when predicting a pixel, the pixels before
# it in raster order (above, and to the left in its row) may be used, the others not. This
# tutorial covers
#
# 1. **Masks** drawn as pictures, and the **blind spot** of a plain stack of masked
#    convolutions, which the gated PixelCNN's vertical and horizontal stacks remove;
# 2. **PixelCNN beside MADE and NADE** on the 8x8 digits: test NLL and samples;
# 3. a **class-conditional** PixelCNN, $p(x \mid \text{digit})$;
# 4. **sampling time** with the per-layer caches against rerunning the network per pixel.
#
# `pyro_ar.PixelCNN(image_shape, ...)` is a conditioner like any other: its distribution is a
# `pyro_ar.Autoregressive` over the image flattened as `x.reshape(*batch, -1)`. With
# `PYRO_AR_TUTORIAL_QUICK=1` (the test suite) the training runs are shortened.

# %%
# %matplotlib inline
import os
import time

import matplotlib.pyplot as plt
import torch
from torch.autograd.functional import jacobian

import pyro_ar
from pyro_ar.program.data_files import load_dataset
from pyro_ar.program.training import evaluate_nll, train

QUICK = os.environ.get("PYRO_AR_TUTORIAL_QUICK") == "1"  # set by the test suite
print(f"pyro_ar {pyro_ar.__version__}, torch {torch.__version__}: {'quick' if QUICK else 'full'} mode")
EPOCHS = 3 if QUICK else 25
torch.set_num_threads(1)
torch.manual_seed(0)
plt.rcParams.update({"figure.dpi": 72, "image.cmap": "gray_r", "axes.grid": False})

# %% [markdown]
# ## 1. Masks and the blind spot
#
# A masked $5 \times 5$ convolution sees the rows above and the pixels to the left. The first
# layer (type A) must not see the pixel itself; later layers (type B) may see their own
# position, which by then only holds information about earlier pixels. With colour images
# the masks also order the channels within a pixel (R, then G given R, then B given R and G).
# The gated PixelCNN splits the filter in two: a *vertical stack* over the rows above (its
# output shifted down one row) and a *horizontal stack* over the pixels to the left.

# %%
# Each masked layer keeps its mask as a buffer (output feature x input feature x kernel).
plain = pyro_ar.PixelCNN((8, 8), channels=1, num_layers=2, kernel_size=5, gated=False).conditioner
gated = pyro_ar.PixelCNN((8, 8), channels=1, num_layers=2, kernel_size=5).conditioner
pictures = {
    "type A, 5x5": plain.convs[0].mask[0, 0],
    "type B, 5x5": plain.convs[1].mask[0, 0],
    "vertical stack (3x5),\nthen shifted down": torch.ones(gated.vertical[0].weight.shape[-2:]),
    "horizontal stack (1x3),\ntype A": gated.horizontal[0].mask[0, 0],
}
fig, axes = plt.subplots(1, 4, figsize=(11, 2.8))
for ax, (title, mask) in zip(axes, pictures.items()):
    ax.imshow(mask.float(), vmin=0, vmax=1, cmap="Blues")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
plt.show()

# %% [markdown]
# Stacking plain masked convolutions does **not** give a pixel access to every earlier pixel.
# Below, the receptive field of the pixel marked in red, on a 9x9 image after 5 layers:
# the gradient of its logit with respect to every input. The plain stack misses a cone above
# and to the right (the blind spot); the gated stacks see every earlier pixel within reach.

# %%
def receptive_field(gated: bool, shape=(9, 9), target=(5, 4)) -> torch.Tensor:
    torch.manual_seed(0)
    net = pyro_ar.PixelCNN(shape, channels=16, num_layers=5, kernel_size=3, gated=gated).double()
    net.conditioner.activation = torch.nn.Softplus()  # no ReLU switched off: only the wiring shows
    index = target[0] * shape[1] + target[1]
    x = torch.randn(shape[0] * shape[1], 1, dtype=torch.float64)
    jac = jacobian(lambda v: net.conditioner(v)[index, 0], x)[:, 0]
    return (jac.abs() > 0).float().view(shape)


fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
for ax, gated in zip(axes, (False, True)):
    field = receptive_field(gated)
    ax.imshow(field, vmin=0, vmax=1, cmap="Blues")
    ax.scatter([4], [5], c="red", s=60)
    ax.set_title(("gated" if gated else "plain") + f": sees {int(field.sum())} pixels")
    ax.set_xticks([]), ax.set_yticks([])
plt.show()

# %% [markdown]
# ## 2. PixelCNN, MADE and NADE on the digits
#
# The binarized 8x8 digits (1,197 training images). Each model is trained by maximum
# likelihood with the package's training loop (early stopping on the validation split).

# %%
data = load_dataset("digits", "bernoulli", context="labels")
models = {
    "PixelCNN": pyro_ar.PixelCNN((8, 8), channels=16, num_layers=4, kernel_size=5),
    "MADE": pyro_ar.MADE(64, hidden_sizes=[256]),
    "NADE": pyro_ar.NADE(64, hidden_size=128),
}
learning_rates = {"PixelCNN": 3e-3, "MADE": 3e-3, "NADE": 1e-2}
nll = {}
for name, net in models.items():
    start = time.perf_counter()
    train(net, data.split("train"), data.split("valid"), epochs=EPOCHS, lr=learning_rates[name], progress=False)
    nll[name] = evaluate_nll(net, data.split("test"))
    print(f"{name:9s} test NLL {nll[name]:6.2f} nats  ({time.perf_counter() - start:4.1f} s)")

# %%
fig, axes = plt.subplots(3, 12, figsize=(12, 3.4))
for row, (name, net) in enumerate(models.items()):
    torch.manual_seed(1)
    with torch.no_grad():
        samples = net().sample((12,))
    for col in range(12):
        axes[row, col].imshow(samples[col].view(8, 8), vmin=0, vmax=1)
        axes[row, col].set_xticks([]), axes[row, col].set_yticks([])
    axes[row, 0].set_ylabel(f"{name}\n{nll[name]:.1f}", fontsize=9)
plt.show()

# %% [markdown]
# ## 3. A class-conditional PixelCNN
#
# With `context_size=10`, the one-hot class adds a learned bias to every gated layer (and to
# every output): $p(x \mid y)$. One row of samples per digit.

# %%
conditional = pyro_ar.PixelCNN((8, 8), channels=16, num_layers=4, kernel_size=5, context_size=10)
train(conditional, data.split("train"), data.split("valid"), train_context=data.context("train"),
      valid_context=data.context("valid"), epochs=EPOCHS, lr=3e-3, progress=False)
print(f"class-conditional test NLL {evaluate_nll(conditional, data.split('test'), context=data.context('test')):.2f} nats")
torch.manual_seed(2)
with torch.no_grad():
    per_class = conditional(torch.eye(10)).sample((8,))  # (8, 10, 64)
fig, axes = plt.subplots(10, 8, figsize=(5, 6.5))
for digit in range(10):
    for col in range(8):
        axes[digit, col].imshow(per_class[col, digit].view(8, 8), vmin=0, vmax=1)
        axes[digit, col].set_xticks([]), axes[digit, col].set_yticks([])
plt.show()

# %% [markdown]
# ## 4. Sampling with and without the caches
#
# Sampling is sequential: pixel $i$ needs pixels $< i$. Rerunning the whole network for each
# pixel costs $n$ passes. `pyro_ar` keeps every layer's feature maps instead: the vertical
# stack of a row is computed once the row is drawn, and each step evaluates only the one
# position it needs through every layer. Both give exactly the same sample from the same
# noise; here is their time on 28x28 images (a batch of 16; the naive sampler is timed over
# its first 10 pixels and scaled to 784).

# %%
net = pyro_ar.PixelCNN((28, 28), channels=32, num_layers=5, kernel_size=5)
d = net().expand((16,))
head, cond = d.conditional, d.conditioner
x = torch.zeros(16, 784)
with torch.no_grad():
    start = time.perf_counter()
    d.log_prob(x)
    log_prob = time.perf_counter() - start
    start = time.perf_counter()
    d.sample()
    cached = time.perf_counter() - start
    noise = head.draw_noise(torch.Size([16, 784]), torch.float32, torch.device("cpu"))
    steps = 10
    start = time.perf_counter()
    for step, i in enumerate(d.order.tolist()[:steps]):
        params = cond(head.encode(x, torch.float32))[..., i, :]
        x[..., i] = head.sample_from_noise(params, noise[..., step, :])
    naive = (time.perf_counter() - start) / steps * 784
print(f"one log_prob pass {1000 * log_prob:.0f} ms; cached sampler {cached:.2f} s "
      f"({cached / log_prob:.1f} passes); naive sampler about {naive:.0f} s ({naive / log_prob:.0f} passes)")

# %% [markdown]
# The cached sampler costs a few log_prob passes; the naive one costs one per pixel.
# `benchmarks/pixelcnn.py` measures the same at a batch of 100, and the test NLL targets on
# the digits and on binarized Fashion-MNIST (`benchmarks/README.md`).
