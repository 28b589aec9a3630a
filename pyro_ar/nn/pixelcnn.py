"""PixelCNN: masked convolutions over an image, in raster order, channels in turn within a pixel."""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyro_ar.nn.base import Conditioner, IncrementalState, check_positive_int
from pyro_ar.registry import register_conditioner

__all__ = ["PixelCNN", "raster_order", "check_image_shape", "small_image_shape"]


def check_image_shape(image_shape: Any) -> Tuple[int, int, int]:
    """``(H, W)`` or ``(C, H, W)`` of positive ints -> ``(C, H, W)``; ``ValueError`` naming it."""
    if isinstance(image_shape, (str, bytes)) or not isinstance(image_shape, (Sequence, torch.Size)):
        raise ValueError(f"image_shape must be (H, W) or (C, H, W), got {image_shape!r}")
    dims = list(image_shape)
    if len(dims) not in (2, 3):
        raise ValueError(f"image_shape must be (H, W) or (C, H, W), got {image_shape!r}")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(f"image_shape must hold positive ints, got {image_shape!r}")
    return tuple(([1] + dims)[-3:])  # type: ignore[return-value]


def small_image_shape(n: int) -> Tuple[int, int]:
    """The most nearly square ``(h, w)`` image with ``h w = n`` and ``h <= w`` (``6 -> (2, 3)``,
    ``5 -> (1, 5)``): how the test harness turns an event size into an image."""
    h = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return (h, n // h)


def raster_order(channels: int, height: int, width: int) -> Tensor:
    """The PixelCNN order over ``x.reshape(*batch, -1)`` of ``(C, H, W)`` images: pixels in
    raster order, channels in turn within a pixel. Step ``(h W + w) C + c`` draws the
    variable ``c H W + h W + w``. ``(n,)`` long."""
    return torch.arange(channels * height * width, device="cpu").view(channels, height, width).permute(1, 2, 0).flatten()


def _groups(size: int, channels: int) -> Tensor:
    """The image channel (group) each of ``size`` features belongs to, in contiguous blocks."""
    return torch.arange(size, device="cpu") * channels // size


def _group_mask(out_groups: Tensor, in_groups: Tensor, strict: bool) -> Tensor:
    """``(out, in)``: an output feature of group ``g`` may see input groups ``< g`` (type A,
    ``strict``) or ``<= g`` (type B)."""
    if strict:
        return in_groups.unsqueeze(0) < out_groups.unsqueeze(1)
    return in_groups.unsqueeze(0) <= out_groups.unsqueeze(1)


class _MaskedConv(nn.Conv2d):
    """A ``Conv2d`` whose weight is multiplied by a fixed mask buffer (``None``: no mask)."""

    def __init__(self, in_size: int, out_size: int, kernel: Tuple[int, int], mask: Optional[Tensor] = None):
        super().__init__(in_size, out_size, kernel)
        self.register_buffer("mask", None if mask is None else mask.to(torch.get_default_dtype()))

    def masked_weight(self) -> Tensor:
        return self.weight if self.mask is None else self.weight * self.mask.to(self.weight.dtype)

    def forward(self, x: Tensor) -> Tensor:  # x already padded
        if self.kernel_size == (1, 1):  # a channel mix: einsum is about twice as fast as conv2d on the CPU
            return torch.einsum("oi,bihw->bohw", self.masked_weight().flatten(1), x) + self.bias[:, None, None]
        return F.conv2d(x, self.masked_weight(), self.bias)

    def at(self, window: Tensor) -> Tensor:
        """The output at one position from its window ``(B, in, kh, kw)``: ``(B, out)``."""
        return F.linear(_saved(window.flatten(1)), self.masked_weight().flatten(1), self.bias)


def _saved(t: Tensor) -> Tensor:
    """A copy of a view into a sampling cache when autograd will save it (the cache is written
    in place later, which would invalidate the saved view: ``rsample`` through the chain)."""
    return t.clone() if torch.is_grad_enabled() else t


def _spatial_mask(out_groups: Tensor, in_groups: Tensor, kh: int, kw: int, strict: bool) -> Tensor:
    """``(out, in, kh, kw)``: a kernel centred at ``(kh // 2, kw // 2)`` for a square one, at its
    last column for a one-row left-only one: every tap before the centre in raster order, and
    at the centre the channel groups of :func:`_group_mask`."""
    row, col = (kh // 2, kw // 2) if kh > 1 else (0, kw - 1)
    # As large as the weight: built on the default device (the groups are small and on the CPU),
    # so that a model built on the meta device to measure it allocates nothing.
    here = torch.get_default_device()
    mask = torch.ones(out_groups.numel(), in_groups.numel(), kh, kw, dtype=torch.bool, device=here)
    mask[:, :, row + 1 :] = False
    mask[:, :, row, col:] = False
    mask[:, :, row, col] = _group_mask(out_groups.to(here), in_groups.to(here), strict)
    return mask


def _gate(a: Tensor) -> Tensor:
    f, g = a.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


class PixelCNN(Conditioner):
    r"""PixelCNN (van den Oord et al., 2016): masked convolutions over an image.

    The event is a ``(C, H, W)`` image flattened as ``x.reshape(*batch, -1)`` does (variable
    ``c H W + h W + w``). The order is fixed: pixels in raster order and, within a pixel,
    channel by channel (R, then G given R, then B given R and G):

    .. math:: p(x) = \prod_{h, w} \prod_{c} p(x_{c,h,w} \mid x_{:, <(h, w)},\, x_{<c, h, w}, \text{context})

    Channels are handled with type A / type B masks over channel groups: every hidden
    feature belongs to one image channel; at the current pixel a feature of group ``g`` sees
    inputs of channels ``< g`` (first layer, type A) and features of groups ``<= g`` (later
    layers, type B).

    ``gated=True`` (the default) is the gated PixelCNN (van den Oord et al., 2016, "Conditional
    image generation with PixelCNN decoders"): a vertical stack over the rows above (a
    ``(k//2 + 1) x k`` convolution, shifted down one row before it feeds the horizontal
    stack) and a horizontal stack over the pixels to the left in the row (``1 x (k//2 + 1)``),
    with gates ``tanh(.) * sigmoid(.)`` and residual connections in the horizontal stack. Its
    receptive field has no blind spot. ``gated=False`` is the original stack of masked
    ``k x k`` convolutions with ReLUs, whose receptive field has a *blind spot*: pixels above
    and to the right of a growing cone are never seen, however deep the stack (see
    ``tests/test_pixelcnn.py``). A context (e.g. a one-hot class) adds a learned bias to every
    layer (the conditional PixelCNN) and to every output.

    log_prob is one convolutional pass. Sampling keeps every layer's feature maps: the
    vertical stack of a row is computed once that row is drawn, and each step evaluates only
    the one position it needs through every layer, so a sample costs about ``C`` passes of
    arithmetic, not ``C H W``.

    Args:
        image_shape: ``(H, W)`` or ``(C, H, W)``; the event size is ``C H W``.
        channels: hidden feature maps per layer (at least ``C``; split into ``C`` groups).
        num_layers: masked (gated) convolution layers.
        kernel_size: odd ``k >= 3``; each layer widens the receptive field by ``k // 2``.
        gated: the gated PixelCNN with vertical and horizontal stacks (no blind spot), or the
            plain masked-convolution stack (with a blind spot).
        dropout: dropout rate in training on every layer's gated outputs (both stacks; the
            plain stack: every layer's output), in ``[0, 1)``; never in evaluation or sampling.
        **common: the arguments of every conditioner (:class:`~pyro_ar.nn.Conditioner`):
            ``input_size``, ``param_size``, ``context_size``, ``seed``, ``initial_bias``;
            ``order`` must be ``None`` (the raster order).

    Example:
        >>> net = PixelCNN(image_shape=(3, 4, 4), channels=6, num_layers=2)
        >>> net(torch.zeros(2, 48, 1)).shape
        torch.Size([2, 48, 1])
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        channels: int = 64,
        num_layers: int = 5,
        kernel_size: int = 5,
        gated: bool = True,
        dropout: float = 0.0,
        **common: Any,
    ):
        c, h, w = check_image_shape(image_shape)
        super().__init__(c * h * w, **common)
        if common.get("order") is not None:
            raise ValueError(
                f"PixelCNN's order is fixed (raster over pixels, channels in turn); order must be None, "
                f"got {common['order']!r}"
            )
        self.image_shape = (c, h, w)
        self.channels = check_positive_int("channels", channels)
        if channels < c:
            raise ValueError(f"channels must be at least the image's {c} channels (one group each), got {channels}")
        self.num_layers = check_positive_int("num_layers", num_layers)
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd int >= 3, got {kernel_size!r}")
        if not isinstance(gated, bool):
            raise ValueError(f"gated must be a bool, got {gated!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        self.kernel_size, self.gated, self.dropout = kernel_size, gated, float(dropout)
        self.register_buffer("orders", raster_order(c, h, w).unsqueeze(0))

        k, p, ch = kernel_size, kernel_size // 2, self.channels
        in_groups = _groups(c * self.input_size, c)
        hidden = _groups(ch, c)
        gate_groups = torch.cat([hidden, hidden])  # both halves of a gate share a group
        ctx = self.context_size
        if gated:
            self.vertical = nn.ModuleList()
            self.horizontal = nn.ModuleList()
            self.links = nn.ModuleList()
            self.residuals = nn.ModuleList()
            for layer in range(self.num_layers):
                size, groups = (c * self.input_size, in_groups) if layer == 0 else (ch, hidden)
                self.vertical.append(_MaskedConv(size, 2 * ch, (p + 1, k)))
                self.horizontal.append(
                    _MaskedConv(size, 2 * ch, (1, p + 1), _spatial_mask(gate_groups, groups, 1, p + 1, layer == 0))
                )
                self.links.append(_MaskedConv(2 * ch, 2 * ch, (1, 1)))
                self.residuals.append(_MaskedConv(ch, ch, (1, 1), _spatial_mask(hidden, hidden, 1, 1, False)))
            bias_size = 4 * ch
        else:
            self.convs = nn.ModuleList(
                _MaskedConv(
                    c * self.input_size if layer == 0 else ch, ch, (k, k),
                    _spatial_mask(hidden, in_groups if layer == 0 else hidden, k, k, layer == 0),
                )
                for layer in range(self.num_layers)
            )
            bias_size = ch
        self.context_to_layers = None if ctx is None else nn.Linear(ctx, self.num_layers * bias_size, bias=False)
        out_groups = _groups(c * self.param_size, c)
        self.out_hidden = _MaskedConv(ch, ch, (1, 1), _spatial_mask(hidden, hidden, 1, 1, False))
        self.out = _MaskedConv(ch, c * self.param_size, (1, 1), _spatial_mask(out_groups, hidden, 1, 1, False))
        #: The ReLU of the plain stack and of the output layers (a module, so that a test can
        #: swap in one with a positive derivative everywhere).
        self.activation = nn.ReLU()

    # ---- shapes --------------------------------------------------------------------------

    def layer_biases(self, context: Optional[Tensor]) -> Optional[List[Tensor]]:
        """The context's bias of each layer, ``(B, 4 ch)`` (gated: vertical, horizontal) or
        ``(B, ch)``, for a context ``(B, c)``; ``None`` without context."""
        if context is None or self.context_to_layers is None:
            return None
        return list(self.context_to_layers(context).chunk(self.num_layers, dim=-1))

    def _images(self, x: Tensor) -> Tensor:
        """``(B, n, I) -> (B, C I, H, W)``: each image channel's ``I`` features together."""
        c, h, w = self.image_shape
        return x.reshape(x.shape[0], c, h, w, self.input_size).permute(0, 1, 4, 2, 3).reshape(x.shape[0], c * self.input_size, h, w)

    def _params(self, out: Tensor) -> Tensor:
        """``(B, C P, H, W) -> (B, n, P)``."""
        c, h, w = self.image_shape
        b = out.shape[0]
        return out.reshape(b, c, self.param_size, h, w).permute(0, 1, 3, 4, 2).reshape(b, c * h * w, self.param_size)

    def _drop(self, t: Tensor) -> Tensor:
        """Dropout in training only (elementwise, so the masks' dependencies are kept)."""
        return F.dropout(t, self.dropout, self.training) if self.dropout > 0 else t

    def _head_out(self, features: Tensor) -> Tensor:
        return self.out(self.activation(self.out_hidden(self.activation(features))))

    # ---- one pass ------------------------------------------------------------------------

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        n, size = self.event_size, self.input_size
        batch = x.shape[:-2] if context is None else torch.broadcast_shapes(x.shape[:-2], context.shape[:-1])
        rows = batch.numel()
        images = self._images(x.expand(*batch, n, size).reshape(rows, n, size))
        flat_context = None if context is None else context.expand(*batch, context.shape[-1]).reshape(rows, context.shape[-1])
        biases = self.layer_biases(flat_context)
        features = self._gated(images, biases) if self.gated else self._plain(images, biases)
        out = self._params(self._head_out(features)).reshape(*batch, n, self.param_size)
        return out + self.output_offset(context)

    def _gated(self, x: Tensor, biases: Optional[List[Tensor]]) -> Tensor:
        p, height = self.kernel_size // 2, self.image_shape[1]
        v = h = x
        for layer in range(self.num_layers):
            v_pre = self.vertical[layer](F.pad(v, (p, p, p, 0)))  # rows r - p .. r at row r
            h_pre = self.horizontal[layer](F.pad(h, (p, 0, 0, 0)))  # columns w - p .. w
            if biases is not None:
                bv, bh = biases[layer][:, :, None, None].chunk(2, dim=1)
                v_pre, h_pre = v_pre + bv, h_pre + bh
            h_pre = h_pre + self.links[layer](F.pad(v_pre, (0, 0, 1, 0))[:, :, :height])  # rows above only
            if layer + 1 < self.num_layers:  # the last layer's vertical output feeds nothing
                v = self._drop(_gate(v_pre))
            res = self.residuals[layer](self._drop(_gate(h_pre)))
            h = res if layer == 0 else h + res
        return h

    def _plain(self, x: Tensor, biases: Optional[List[Tensor]]) -> Tensor:
        p = self.kernel_size // 2
        f = x
        for layer, conv in enumerate(self.convs):
            a = conv(F.pad(f, (p, p, p, p)))
            if biases is not None:
                a = a + biases[layer][:, :, None, None]
            f = self._drop(self.activation(a))
        return f

    def incremental(self, context: Optional[Tensor], batch_shape: torch.Size) -> IncrementalState:
        return _PixelCNNState(self, context, batch_shape)


class _PixelCNNState(IncrementalState):
    """Per-layer feature caches; each step evaluates one position through every layer
    (without dropout: sampling is evaluation).

    A feature at position ``q`` of any layer of the horizontal (or plain) stack depends only
    on pixels before ``q`` and, at ``q``, on channels below its own group. So when the
    sampler asks for channel ``c`` of pixel ``q``, the column of features at ``q`` is
    computed from the caches (its windows hold final values of earlier positions); its
    groups ``<= c`` are then exact, and after the last channel the whole column is, ready
    for the later positions that read it. The vertical stack at row ``r`` sees the whole
    row, so it is computed once per row, when row ``r + 1`` starts.

    Caches are padded with zeros as the convolutions pad: ``p = k // 2``.
    """

    def __init__(self, net: PixelCNN, context: Optional[Tensor], batch_shape: torch.Size):
        self.net, self.batch_shape = net, batch_shape
        self.rows = rows = batch_shape.numel()
        c, h, w = net.image_shape
        p, ch, size = net.kernel_size // 2, net.channels, net.input_size
        like = net.out.weight
        flat_context = None if context is None else context.expand(*batch_shape, context.shape[-1]).reshape(rows, context.shape[-1])
        self.biases = net.layer_biases(flat_context)
        self.offset = net.output_offset(context)
        if net.gated:
            # feats[l]: the input of layer l (layer 0: the image), padded p above, p left and right;
            # the vertical stack's input v and the horizontal stack's h.
            self.v = [like.new_zeros(rows, c * size if l == 0 else ch, h + p, w + 2 * p) for l in range(net.num_layers)]
            self.h = [self.v[0]] + [like.new_zeros(rows, ch, h + p, w + 2 * p) for _ in range(1, net.num_layers)]
            self.links = [None] * net.num_layers  # link terms of the current row, (B, 2ch, W)
        else:
            self.f = [like.new_zeros(rows, c * size if l == 0 else ch, h + 2 * p, w + 2 * p) for l in range(net.num_layers)]
        self.image = self.v[0] if net.gated else self.f[0]
        self.column = None

    def _vertical_row(self, row: int) -> None:
        """The link terms of ``row`` from the vertical stack at ``row - 1`` (all drawn), and
        that stack's outputs at ``row - 1`` written into the next layers' inputs."""
        net, p, width = self.net, self.net.kernel_size // 2, self.net.image_shape[2]
        for layer in range(net.num_layers):
            link = net.links[layer]
            if row == 0:  # the shifted input above the image is zero: the link's bias alone
                self.links[layer] = link.bias.view(1, -1, 1).expand(self.rows, -1, width)
                continue
            # Padded rows row - 1 .. row - 1 + p hold image rows row - 1 - p .. row - 1.
            slab = self.v[layer][:, :, row - 1 : row + p]
            v_pre = net.vertical[layer](_saved(slab))[:, :, 0]  # (B, 2ch, W)
            if self.biases is not None:
                v_pre = v_pre + self.biases[layer][:, : 2 * net.channels, None]
            self.links[layer] = torch.einsum("oi,biw->bow", link.weight[:, :, 0, 0], v_pre) + link.bias[:, None]
            if layer + 1 < net.num_layers:
                self.v[layer + 1][:, :, row - 1 + p, p : p + width] = _gate(v_pre)

    def _gated_column(self, row: int, col: int) -> Tensor:
        net, p, ch = self.net, self.net.kernel_size // 2, self.net.channels
        h = None
        for layer in range(net.num_layers):
            window = self.h[layer][:, :, row + p : row + p + 1, col : col + p + 1]
            h_pre = net.horizontal[layer].at(window) + self.links[layer][:, :, col]
            if self.biases is not None:
                h_pre = h_pre + self.biases[layer][:, 2 * ch :]
            res = net.residuals[layer].at(_gate(h_pre))
            h = res if layer == 0 else self.h[layer][:, :, row + p, col + p] + res
            if layer + 1 < net.num_layers:
                self.h[layer + 1][:, :, row + p, col + p] = h
        return h

    def _plain_column(self, row: int, col: int) -> Tensor:
        net, k, p = self.net, self.net.kernel_size, self.net.kernel_size // 2
        f = None
        for layer, conv in enumerate(net.convs):
            a = conv.at(self.f[layer][:, :, row : row + k, col : col + k])
            if self.biases is not None:
                a = a + self.biases[layer]
            f = net.activation(a)
            if layer + 1 < net.num_layers:
                self.f[layer + 1][:, :, row + p, col + p] = f
        return f

    def _where(self, step: int) -> Tuple[int, int, int]:
        c, _, w = self.net.image_shape
        pixel, channel = divmod(step, c)
        return pixel // w, pixel % w, channel

    def params(self, step: int) -> Tensor:
        net = self.net
        row, col, channel = self._where(step)
        if net.gated and col == 0 and channel == 0:
            self._vertical_row(row)
        features = self._gated_column(row, col) if net.gated else self._plain_column(row, col)
        out = net.out.at(net.activation(net.out_hidden.at(net.activation(features))))  # (B, C P)
        c, h, w = net.image_shape
        p_size = net.param_size
        params = out[:, channel * p_size : (channel + 1) * p_size].reshape(*self.batch_shape, p_size)
        variable = channel * h * w + row * w + col
        return params + self.offset[..., variable, :]

    def observe(self, step: int, value: Tensor) -> None:
        net = self.net
        row, col, channel = self._where(step)
        p, size = net.kernel_size // 2, net.input_size
        top = p  # the image's first row in the padded cache
        self.image[:, channel * size : (channel + 1) * size, row + top, col + p] = value.reshape(self.rows, size)


register_conditioner(
    PixelCNN,
    "pixelcnn",
    example={"channels": 8, "num_layers": 2, "kernel_size": 3},
    cli_defaults={"channels": 32, "num_layers": 5, "kernel_size": 5, "lr": 3e-3},
    event_argument="image_shape",
    example_event=small_image_shape,
    fixed_order=True,
)
