"""`UnrolledConvLSTM`: a convolutional LSTM (Shi et al. 2015, without peepholes) unrolled over time
into plain 2-D convolutions, sigmoid/tanh and elementwise ops.

The twin of `unrolled_lstm.UnrolledLSTM` for feature maps: no recurrent operator reaches an
exported graph (no ConvLSTM exists in PyTorch anyway), only ``Conv2d``, which every edge toolchain
lowers and quantizes. For each step t, with ``*`` a 2-D convolution of kernel k ("same" padding)
and gates over channels:

    i = sigmoid(W_xi * x_t + W_hi * h + b_i)
    f = sigmoid(W_xf * x_t + W_hf * h + b_f)
    g = tanh(W_xg * x_t + W_hg * h + b_g)
    o = sigmoid(W_xo * x_t + W_ho * h + b_o)
    c = f . c + i . g
    h = o . tanh(c)

with ``h = c = 0`` before the first step (so step 0 skips the recurrent convolutions: ``c = i . g``,
the same numbers without a zeros tensor in the graph). The input convolutions of all T steps run
as one batched convolution. The common fused form (one convolution over ``cat([x, h])`` giving
``[i | f | g | o]``) loads with `load_from_fused_conv`; tests/test_fetal_models.py checks the
unrolled cell against such a reference loop to float precision.
"""
from __future__ import annotations

import torch
from torch import nn

#: Gate order of the fused form's output channels.
GATES = ("i", "f", "g", "o")


class UnrolledConvLSTM(nn.Module):
    """One ConvLSTM layer over a sequence of maps ``(B, T, C_in, H, W)``.

    Args:
        input_channels: Channels of each input map.
        hidden_channels: Channels of the hidden and cell states.
        kernel_size: Odd square kernel of every convolution ("same" padding).
    """

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"UnrolledConvLSTM: kernel_size must be odd ('same' padding), got {kernel_size}")
        self.input_channels, self.hidden_channels, self.kernel_size = input_channels, hidden_channels, kernel_size
        pad = kernel_size // 2
        for gate in GATES:
            # The bias lives on the input convolution only (one bias per gate, as in Shi et al.).
            setattr(self, f"W_x{gate}", nn.Conv2d(input_channels, hidden_channels, kernel_size, padding=pad))
            setattr(self, f"W_h{gate}", nn.Conv2d(hidden_channels, hidden_channels, kernel_size, padding=pad,
                                                  bias=False))
        with torch.no_grad():
            self.W_xf.bias.fill_(1.0)  # forget-gate bias 1: remember by default early in training

    def forward(self, x: torch.Tensor, sequence: bool = False):
        """Run the cell over the T maps (T is read from ``x``, a constant once exported).

        Args:
            x: ``(B, T, C_in, H, W)``.
            sequence: Also return every step's hidden map.

        Returns:
            ``(h, c)`` of the last step, each ``(B, C_h, H, W)``; with ``sequence``,
            ``(outputs (B, T, C_h, H, W), (h, c))``.
        """
        steps = x.shape[1]
        flat = x.flatten(0, 1)  # (B*T, C_in, H, W)
        # Input convolutions of every step at once; steps are then taken with narrow (a slice,
        # which XNNPACK lowers; select/unbind leave ops outside the delegate).
        xs = {g: getattr(self, f"W_x{g}")(flat).unflatten(0, (-1, steps)) for g in GATES}  # (B, T, C_h, H, W)
        h = c = None
        outputs = []
        for t in range(steps):
            pre = {g: xs[g].narrow(1, t, 1).flatten(1, 2) for g in GATES}  # (B, C_h, H, W)
            if h is not None:
                pre = {g: pre[g] + getattr(self, f"W_h{g}")(h) for g in GATES}
            i, g_, o = torch.sigmoid(pre["i"]), torch.tanh(pre["g"]), torch.sigmoid(pre["o"])
            c = i * g_ if c is None else torch.sigmoid(pre["f"]) * c + i * g_  # (B, C_h, H, W)
            h = o * torch.tanh(c)  # (B, C_h, H, W)
            if sequence:
                outputs.append(h.unsqueeze(1))
        if sequence:
            return torch.cat(outputs, dim=1), (h, c)  # (B, T, C_h, H, W)
        return h, c

    @torch.no_grad()
    def load_from_fused_conv(self, weight: torch.Tensor, bias: torch.Tensor | None) -> "UnrolledConvLSTM":
        """Copy the weights of the fused form: one convolution over ``cat([x, h], dim=1)``.

        Args:
            weight: ``(4 C_h, C_in + C_h, k, k)``, output channels ``[i | f | g | o]``.
            bias: ``(4 C_h,)`` or None (zeros).

        Returns:
            self, for chaining.
        """
        ch, cin, k = self.hidden_channels, self.input_channels, self.kernel_size
        if tuple(weight.shape) != (4 * ch, cin + ch, k, k):
            raise ValueError(f"load_from_fused_conv: weight {tuple(weight.shape)}, expected {(4 * ch, cin + ch, k, k)}")
        for n, gate in enumerate(GATES):
            rows = slice(n * ch, (n + 1) * ch)
            getattr(self, f"W_x{gate}").weight.copy_(weight[rows, :cin])
            getattr(self, f"W_h{gate}").weight.copy_(weight[rows, cin:])
            getattr(self, f"W_x{gate}").bias.copy_(bias[rows] if bias is not None else torch.zeros(ch))
        return self


__all__ = ["UnrolledConvLSTM", "GATES"]
