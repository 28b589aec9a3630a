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
# # 5. Sequence models: RNN and Transformer
#
# FVSBN, NADE and MADE give every variable its own weights (or its own mask). The sequence
# models share one network across all steps: a **recurrent network** keeps a summary of
# the past and updates it after each variable, and a **causal Transformer** lets each step
# attend to all the earlier ones. Both are conditioners of the same `pyro_ar.Autoregressive`
# distribution, so log_prob, sampling, orders, contexts and checkpoints work as for the other
# models. This tutorial covers
#
# 1. the notes' **RNN update**, checked by hand against `pyro_ar.RNN(..., cell="tanh")`, and
#    what its pros and cons really are;
# 2. **vanishing and exploding gradients**, and how gated cells (GRU, LSTM) avoid them;
# 3. **teacher forcing**: why training (log_prob) is one pass while sampling is sequential,
#    and what causal **attention** computes;
# 4. **RNN, Transformer, MADE and NADE on English words**: test NLL, bits per character,
#    parameter counts and sampled words side by side;
# 5. **sampling time** with the RNN's state and the Transformer's key/value cache, against
#    rerunning the full pass per step.
#
# With `PYRO_AR_TUTORIAL_QUICK=1` (the test suite) the training runs are shortened.

# %%
# %matplotlib inline
import math
import os
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import pyro_ar
from pyro_ar.conditionals import Bernoulli, Categorical
from pyro_ar.nn.teacher_forcing import shifted_inputs
from pyro_ar.program.data_files import load_dataset
from pyro_ar.program.training import evaluate_nll, train

QUICK = os.environ.get("PYRO_AR_TUTORIAL_QUICK") == "1"  # set by the test suite
print(f"pyro_ar {pyro_ar.__version__}, torch {torch.__version__}: {'quick' if QUICK else 'full'} mode")
MAX_TRAIN = 2000 if QUICK else 20000  # training words (of 50,678): one CPU core, a few minutes
EPOCHS = 1 if QUICK else 10
torch.set_num_threads(1)
torch.manual_seed(0)
plt.rcParams.update({"figure.dpi": 72, "axes.grid": False})

# %% [markdown]
# ## The data: English words
#
# `--data words` ships with the package: 60,678 lower-case words of at most 12 letters, from
# the public-domain SCOWL list. Each word is $n = 13$ categorical codes: 1..26 for a..z, then
# 0, the **end symbol**, repeated as padding. So a model also learns where words end, and
# $p(x)$ is a distribution over words of any length up to 12.

# %%
data = load_dataset("words", "categorical", max_train=MAX_TRAIN)
n, K = data.event_size, data.preprocessing["levels"]
print(f"train {tuple(data.train.shape)}, valid {tuple(data.valid.shape)}, test {tuple(data.test.shape)}; "
      f"n = {n}, K = {K} symbols")
print("codes of the first test word:", data.test[0].tolist())
print("decoded:", data.decode(data.test[:8]))

# %% [markdown]
# ## 1. The RNN of the notes
#
# The lecture notes write the RNN as a summary $h_t$ of the inputs so far, updated by one shared
# map, and a readout:
#
# $$
# h_0 = b_0, \qquad h_{t+1} = \tanh\big(W_{hh}\, h_t + W_{xh}\, x_{t+1}\big), \qquad
# o_{t+1} = W_{hy}\, h_{t+1},
# $$
#
# where $o_{t+1}$ are the parameters (here the 27 logits) of the *next* variable, $x_{t+2}$.
# `pyro_ar.RNN(n, cell="tanh")` is this model, written in terms of steps: step $k$ predicts
# variable $\sigma_k$ of the order $\sigma$ (the identity by default) and its input is the value
# drawn at the step before (one-hot $e(x)$, through an embedding $W_e$), plus a learned vector
# $E_{\sigma_k}$ that tells the cell *which* variable it is asked for (so that every order works):
#
# $$
# u_k = W_e\, e(x_{\sigma_{k-1}}) + E_{\sigma_k} \quad (u_0 = s + E_{\sigma_0}), \qquad
# h_k = \tanh\big(W_{hh} h_{k-1} + W_{xh} u_k + b_h\big), \qquad
# \theta_{\sigma_k} = W_{hy} h_k + b_{\sigma_k},
# $$
#
# with $h_{-1} = b_0$ learned, a learned start vector $s$ and torch's cell biases $b_h$. Below,
# this computation by hand with the model's own parameters, against its one-pass output and its
# log_prob.

# %%
rnn = pyro_ar.RNN(n, hidden_size=16, cell="tanh", conditional=Categorical(K))
c = rnn.conditioner
x = data.test[:1]  # one word, (1, n)
one_hot = F.one_hot(x[0], K).float()  # (n, K)
W_xh, W_hh = c.recurrent.weight_ih_l0, c.recurrent.weight_hh_l0  # torch's nn.RNN, tanh
b_h = c.recurrent.bias_ih_l0 + c.recurrent.bias_hh_l0
with torch.no_grad():
    h = c.initial_state[0, 0]  # h_{-1} = b_0
    logits = []
    for k in range(n):
        u = (c.start if k == 0 else c.value_embedding.weight @ one_hot[k - 1]) + c.variable_embedding[k]
        h = torch.tanh(W_hh @ h + W_xh @ u + b_h)
        logits.append(c.readout.weight @ h + c.output_bias[k])
    by_hand = torch.stack(logits)  # (n, K)
    one_pass = c(rnn.conditional.encode(x, torch.float32))[0]  # the conditioner, one call
    log_p_by_hand = by_hand.log_softmax(-1).gather(-1, x[0, :, None]).sum()
    print(f"largest |by hand - one pass| over the {n} x {K} logits: {(by_hand - one_pass).abs().max():.1e}")
    print(f"log p(x) by hand {log_p_by_hand:.5f}, rnn().log_prob(x) {rnn().log_prob(x).item():.5f}")

# %% [markdown]
# **What the notes say about the RNN, made precise.**
#
# - *Any length; parameters constant in $n$.* $W_{hh}, W_{xh}, W_{hy}$ are shared by all steps,
#   so the same cell runs on sequences of any length. `pyro_ar`'s distributions have a fixed
#   `event_size` (words are padded to 13 symbols), and its RNN adds two per-variable tables, the
#   variable embedding $E$ and the output bias $b_i$, which grow with $n$ (see the counts below);
#   the recurrent core does not.
# - *Sequential likelihood.* With teacher forcing (section 3) the likelihood needs no sampling
#   and is one call of torch's fused recurrent layer, parallel over the batch. But $h_k$ needs
#   $h_{k-1}$: inside that call the $n$ steps still run one after another. MADE's and the
#   Transformer's passes have no such chain.
# - *Sequential generation* holds for every AR model: $x_i$ needs $x_{<i}$. What differs is the
#   cost per step (section 5).
# - *Needs an ordering*: also true of every AR model; `order=` works for the RNN as for the others.
# - *Vanishing / exploding gradients* over long sequences (section 2).
# - *Universality* (any computable function has a finite RNN) is a statement about what the
#   architecture can represent, not about what gradient descent finds.
# - Sharing weights across steps is a *restriction* of the family of conditionals, not an
#   approximation of the likelihood: the chain rule stays exact, and so does log_prob.

# %%
def core_and_per_variable(net):
    per_variable = net.conditioner.variable_embedding.numel() + net.conditioner.output_bias.numel()
    return sum(p.numel() for p in net.parameters()) - per_variable, per_variable


for length in (n, 100, 1000):
    core, per_variable = core_and_per_variable(pyro_ar.RNN(length, hidden_size=128, conditional=Categorical(K)))
    print(f"GRU, H = 128, n = {length:4d}: shared by all steps {core:6d} parameters, per-variable tables {per_variable:6d}")

# %% [markdown]
# ## 2. Vanishing and exploding gradients
#
# Backpropagating from the last output to the input of step $t$ multiplies $n - t$ Jacobians
# $\partial h_{k} / \partial h_{k-1} = \operatorname{diag}(\tanh') \, W_{hh}$. Their product
# shrinks or grows geometrically with the distance, unless it stays near norm 1. Below, the mean
# size of $\partial \theta_{n} / \partial x_t$ over $t$, for freshly built models on $n = 100$
# binary variables: a tanh cell at torch's initialization (gradients vanish), the same with
# $W_{hh}$ set to 3 times an orthogonal matrix (they explode), and a GRU. The GRU's update is
# a gated *average*, $h_k = (1 - z_k)\, \tilde h_k + z_k\, h_{k-1}$; when the update gate $z$
# is near 1 the old state passes through almost unchanged, and so does the gradient. At
# torch's initialization $z \approx 1/2$ and its gradient still vanishes; with the gate's bias
# set to keep the state (as training can learn, or as an initialization), each input moves
# the state less, but its effect, and its gradient, survive 100 steps. LSTMs do the same with
# their forget gate.

# %%
def gradient_by_distance(cell, tweak=None, length=100, hidden=64):
    torch.manual_seed(0)
    net = pyro_ar.RNN(length, hidden_size=hidden, cell=cell, conditional=Bernoulli())
    recurrent = net.conditioner.recurrent
    with torch.no_grad():
        if tweak == "W_hh x 3":
            torch.nn.init.orthogonal_(recurrent.weight_hh_l0).mul_(3)
        elif tweak == "keep gate":  # GRU gates are (reset, update, new): bias the update gate z
            recurrent.bias_ih_l0[hidden : 2 * hidden] = 4.0
    x = torch.bernoulli(torch.full((64, length, 1), 0.5)).requires_grad_()
    last = net.conditioner(x)[:, -1, 0].sum()  # the logit of the last variable
    (grad,) = torch.autograd.grad(last, x)
    return grad[..., 0].abs().mean(0).flip(0)[1:]  # by distance 1 .. length - 1


fig, ax = plt.subplots(figsize=(6.5, 3.5))
for cell, tweak in [("tanh", None), ("tanh", "W_hh x 3"), ("gru", None), ("gru", "keep gate")]:
    g = gradient_by_distance(cell, tweak)
    label = cell + (f", {tweak}" if tweak else "")
    ax.semilogy(range(1, len(g) + 1), g, label=label)
    print(f"{label:16s} |d theta_n / d x_t| at distance 1: {g[0]:.1e}, at distance {len(g)}: {g[-1]:.1e}")
ax.set_xlabel("distance n - t (steps back)")
ax.set_ylabel(r"mean $|\partial \theta_n / \partial x_t|$")
ax.legend(fontsize=9)
plt.show()

# %% [markdown]
# The words here are only 13 symbols long, so the decay matters much less than on long
# sequences, such as images flattened to $n = 784$; the word models below use GRU cells.
#
# ## 3. Teacher forcing: parallel training, sequential sampling
#
# Training maximizes $\log p(x) = \sum_k \log p(x_{\sigma_k} \mid x_{\sigma_{<k}})$ on data.
# Every conditional is asked about *known* values, the training word itself: step $k$ reads
# the true $x_{\sigma_{k-1}}$, not a sample (teacher forcing). So all $n$ conditionals come
# out of one pass over the shifted sequence, no sample enters the computation graph, and
# backpropagation never goes through a sampling step (which the notes point out would be
# infeasible). Sampling has no data to read: step $k$ needs the value just drawn at step
# $k-1$, so it feeds its own draws back, one step at a time, through an incremental state
# (`params(k)`, then `observe(k, value)`).
#
# The two are the same computation. Feeding the incremental state the word's own values
# instead of draws reproduces the one-pass parameters exactly, for both sequence models:

# %%
transformer = pyro_ar.Transformer(n, d_model=32, num_heads=4, num_layers=2, conditional=Categorical(K))
for name, net in {"RNN": rnn, "Transformer": transformer}.items():
    head, cond = net.conditional, net.conditioner
    with torch.no_grad():
        one_pass = cond(head.encode(x, torch.float32))  # (1, n, K): training's single pass
        state = cond.incremental(None, torch.Size([1]))
        steps = []
        for k in range(n):  # the sampling loop, fed the data instead of draws
            steps.append(state.params(k))
            state.observe(k, head.encode_one(x[:, k], torch.float32))
    gap = (torch.stack(steps, -2) - one_pass).abs().max()
    print(f"{name:11s}: step by step == one pass (largest difference {gap:.1e})")

# %% [markdown]
# **Causal attention.** A Transformer computes for every position $k$ a query $q_k$, a key
# $k_j$ and a value $v_j$ (linear maps of the position's input), and returns
# $\sum_{j \le k} w_{kj} v_j$ with weights $w_{kj} = \operatorname{softmax}_j(q_k \cdot k_j /
# \sqrt{d})$ over $j \le k$ only: the **causal mask** is the AR property. Unlike the RNN's
# chain, all positions are computed at once; the price is that position $k$ looks at all
# $k + 1$ positions, $O(n^2)$ per sequence. Because the keys and values of earlier positions
# never change when later ones arrive, sampling can keep them (the key/value cache, section 5).
# Below, the first layer's weights (two of its four heads) of a still untrained model for the
# first test word, by hand and checked against `scaled_dot_product_attention(...,
# is_causal=True)`; column 0 is the start vector. The trained model's are in section 4.

# %%
def first_layer_attention(net, x):
    """The first block's causal attention weights for words ``x: (1, n)``: ``(heads, n, n)``,
    by hand, checked against ``scaled_dot_product_attention(..., is_causal=True)``."""
    tc, block = net.conditioner, net.conditioner.blocks[0]
    with torch.no_grad():
        encoded = net.conditional.encode(x, torch.float32)
        z = shifted_inputs(encoded, torch.Size([1]), tc.orders[0], tc.start, tc.value_embedding) + tc.position_terms(None)
        qkv = block.qkv(block.attention_norm(z)).unflatten(-1, (3, block.num_heads, block.head_size))
        q, keys, values = qkv.permute(2, 0, 3, 1, 4)  # each (1, heads, n, head_size)
        scores = q @ keys.transpose(-1, -2) / math.sqrt(block.head_size)  # (1, heads, n, n)
        causal = torch.ones(n, n, dtype=torch.bool).tril()  # position k sees j <= k
        weights = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        gap = (weights @ values - F.scaled_dot_product_attention(q, keys, values, is_causal=True)).abs().max()
    print(f"attention by hand == scaled_dot_product_attention(is_causal=True): largest difference {gap:.1e}")
    return weights[0]


def plot_attention(weights, x, title, heads=(0, 1)):
    word = data.decode(x)[0]
    targets = [*word, "end"] + ["pad"] * (n - len(word) - 1)  # what position k predicts
    inputs = ["start", *targets[:-1]]  # what it reads: the symbol before (teacher forcing)
    fig, axes = plt.subplots(1, len(heads), figsize=(4.5 * len(heads), 4))
    for h, ax in zip(heads, axes):
        ax.imshow(weights[h], cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), inputs, fontsize=8, rotation=90)
        ax.set_yticks(range(n), targets, fontsize=8)
        ax.set_xlabel("input of position j (the symbol before)")
        ax.set_title(f"{title}, head {h}: weights $w_{{kj}}$", fontsize=10)
    axes[0].set_ylabel("position k predicts")
    plt.tight_layout()
    plt.show()


plot_attention(first_layer_attention(transformer, x), x, "untrained")

# %% [markdown]
# ## 4. RNN, Transformer, MADE and NADE on the words
#
# Four models of about $10^5$ parameters each, trained with the package's training loop
# (`pyro_ar.program.training.train`: Adam, minibatches of 100, the best validation epoch kept),
# the same number of epochs each, on the first `MAX_TRAIN` training words (a subsample, so that
# the full run takes a few minutes on one CPU core). Test NLL is in nats per word; **bits per
# character** divides it by $\ln 2$ and by the mean number of symbols per test word, counting
# its letters and its end symbol (not the padding after it), as `pyro-ar fit --data words`
# reports it.

# %%
models = {
    "RNN": pyro_ar.RNN(n, hidden_size=128, cell="gru", conditional=Categorical(K)),
    "Transformer": pyro_ar.Transformer(n, d_model=64, num_heads=4, num_layers=2, conditional=Categorical(K)),
    "MADE": pyro_ar.MADE(n, hidden_sizes=[150], conditional=Categorical(K)),
    "NADE": pyro_ar.NADE(n, hidden_size=128, conditional=Categorical(K)),
}
learning_rates = {"RNN": 3e-3, "Transformer": 1e-3, "MADE": 3e-3, "NADE": 3e-3}
symbols = float(data.symbols_per_row(data.test).double().mean())
print(f"{len(data.train)} training words, epochs: {EPOCHS}; {symbols:.3f} symbols per test word (end included)")
results, histories = {}, {}
print(f"{'model':12s} {'parameters':>10s} {'train s':>8s} {'test NLL':>9s} {'bits/char':>9s}")
for name, net in models.items():
    start = time.perf_counter()
    histories[name] = train(net, data.train, data.valid, epochs=EPOCHS, lr=learning_rates[name], progress=False)
    seconds = time.perf_counter() - start
    nll = evaluate_nll(net, data.test)
    results[name] = {"parameters": sum(p.numel() for p in net.parameters()), "seconds": seconds,
                     "nll": nll, "bpc": nll / (math.log(2) * symbols)}
    r = results[name]
    print(f"{name:12s} {r['parameters']:10d} {seconds:8.1f} {nll:9.3f} {r['bpc']:9.4f}")
ranking = sorted(results, key=lambda m: results[m]["bpc"])
print("ranked by bits per character:", " < ".join(ranking))

# %% [markdown]
# The same number of epochs is not the same time: MADE and NADE spend a fraction of the
# sequence models' time per epoch (the `train s` column). When this tutorial was written, four
# times the epochs (about the RNN's training time) improved them but left both behind the
# two sequence models; set `EPOCHS` above to try it.

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
for name, history in histories.items():
    ax.plot(history.valid_epochs, history.valid_nll, marker=".", label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("validation NLL (nats per word)")
ax.legend(fontsize=9)
plt.show()

# %% [markdown]
# Sampled words, one column per model (the first column: real test words), and two summaries of
# 1,000 samples per model: the share that are real words (in the whole list: train, valid and
# test) and the mean length. A real word is not the goal (a good model of English spelling also
# invents plausible new words), but it shows how much of the structure each model has caught.

# %%
dictionary = set(data.decode(data.split("all")))
torch.manual_seed(3)
columns = {"test words": data.decode(data.test[:12])}
summary = {}
with torch.no_grad():
    for name, net in models.items():
        words = data.decode(net().sample((1000,)))
        columns[name] = words[:12]
        summary[name] = (sum(w in dictionary for w in words) / len(words), sum(map(len, words)) / len(words))
print("  ".join(f"{name:>12s}" for name in columns))
for row in zip(*columns.values()):
    print("  ".join(f"{w:>12s}" for w in row))
print()
for name, (real, length) in summary.items():
    print(f"{name:12s} {100 * real:5.1f}% real words, mean length {length:.2f}")

# %% [markdown]
# The trained Transformer's first-layer attention on the same word as in section 3. Instead of
# spreading their weight over the past, the heads concentrate on particular positions, such as
# the symbol just before (the diagonal: position $k$ reads $x_{k-1}$) or, past the end of the
# word, the end symbol.

# %%
plot_attention(first_layer_attention(models["Transformer"], x), x, "trained")

# %% [markdown]
# ## 5. Sampling with and without the cache
#
# A naive sampler reruns the full one-pass conditioner on the partially drawn $x$ for every
# variable and keeps one row of its output: $n$ full passes. The RNN's sampling state is its
# recurrent state $h_k$: one cell step per variable, about one log_prob pass in all. The
# Transformer's is a **key/value cache** per layer: step $k$ runs one position through the
# blocks, its query attending over the $k + 1$ cached keys, instead of a full pass over all $n$
# positions.
#
# Both samplers draw exactly the same words from the same noise: `pyro_ar` draws all the noise
# up front (Gumbel noise for a categorical head) and each value is a deterministic function of
# its parameters and its noise. Checked here on the trained word models:

# %%
def naive_sample(d, noise):
    """Draw in ``d``'s order, rerunning the full conditioner at every step: ``noise: (B, n, S) -> (B, n)``."""
    head, cond = d.conditional, d.conditioner
    x = torch.zeros(noise.shape[:-1], dtype=head.sample_dtype(torch.float32))
    for step, i in enumerate(d.order.tolist()):
        params = cond(head.encode(x, torch.float32))[..., i, :]  # all n conditionals, one used
        x[..., i] = head.sample_from_noise(params, noise[..., step, :])
    return x


with torch.no_grad():
    for name, net in models.items():
        d = net().expand((200,))
        torch.manual_seed(4)
        cached = d.sample()
        torch.manual_seed(4)  # the same noise, drawn as the sampler draws it (steps in order)
        noise = d.conditional.draw_noise(torch.Size([200, n]), torch.float32, torch.device("cpu"))
        print(f"{name:12s}: cached sampler == naive sampler on 200 words: {torch.equal(cached, naive_sample(d, noise))}")

# %% [markdown]
# With $n = 13$ the difference is small; it grows with $n$. Timing on $n = 256$ binary
# variables (fresh models, a batch of 100): one log_prob pass, the cached sampler, and the
# naive sampler (timed over its first few steps and scaled to $n$), each the best of a few runs.

# %%
def best_time(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


length = 64 if QUICK else 256
naive_steps = 4
timed = {"RNN (GRU state)": pyro_ar.RNN(length, hidden_size=128),
         "Transformer (KV cache)": pyro_ar.Transformer(length, d_model=64, num_heads=4, num_layers=2)}
print(f"n = {length}, batch 100")
with torch.no_grad():
    for name, net in timed.items():
        d = net().expand((100,))
        values = d.sample()
        head, cond = d.conditional, d.conditioner
        log_prob = best_time(lambda: d.log_prob(values))
        sample = best_time(lambda: d.sample())
        # The naive sampler's steps all cost one full pass: time a few, scale to n.
        naive = best_time(lambda: [cond(head.encode(values, torch.float32)) for _ in range(naive_steps)]) / naive_steps * length
        print(f"{name:23s} log_prob {1000 * log_prob:7.1f} ms | cached sampler {1000 * sample:7.1f} ms "
              f"= {sample / log_prob:4.1f} log_prob passes | naive about {naive:6.1f} s = {naive / sample:5.0f}x the cached one")

# %% [markdown]
# The cached samplers cost a few log_prob passes; the naive one costs about one pass per
# variable. `benchmarks/sequence.py` measures the same at $n = 64$ and $n = 784$, with the
# targets, in `benchmarks/README.md`.
#
# ## What to pick when
#
# - **Transformer**: the most flexible conditioner: every step sees every earlier one
#   directly, and training is parallel over positions. Attention costs $O(n^2)$ per sequence,
#   so log_prob gets expensive for long sequences; sampling needs the key/value cache.
# - **RNN (GRU or LSTM)**: a fixed-size summary and a fixed cost per step, so sampling costs
#   about one log_prob pass, and its sampling state does not grow with $n$ (a Transformer's
#   cache does). Its log_prob runs the $n$ steps one after another, so on long sequences it is
#   many times slower than MADE's (`benchmarks/README.md`); prefer the gated cells over
#   `"tanh"`, whose gradients vanish (section 2).
# - **MADE / NADE**: the fastest log_prob by far (one masked MLP pass, or NADE's running sum),
#   hence the fastest training per epoch; good baselines, and the choice when density
#   evaluation dominates. On text their fixed per-position weights do not share what they
#   learn across positions.
# - Whichever wins on your data, compare them as here: same data, same loop, test NLL in bits
#   per symbol (the table in section 4 for these words; `pyro-ar fit --data words --model ...`
#   from the command line).
