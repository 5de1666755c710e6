"""`UnrolledGRU`: PyTorch's GRU equations written with one `nn.Linear` per gate.

Why not `nn.GRU`: exported from `torch.export` it stays one `aten.gru` node, which ExecuTorch
fp32 fragments into several delegates, PT2E int8 silently leaves in fp32, and Core ML cannot
convert (docs/TOOLCHAIN_NOTES.md "Pitfalls"). Per-gate linears plus sigmoid/tanh lower and quantize
everywhere. Weights load from an `nn.GRU` with `load_from_nn_gru`, and the result matches
`nn.GRU` to float precision (tests/test_unrolled_gru.py).

For each layer and step (PyTorch's documented equations, batch-first):
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h = (1 - z) * n + z * h
"""
from __future__ import annotations

import torch
from torch import nn


class GRULayer(nn.Module):
    """One GRU layer, unrolled over time; the six gate projections are separate `nn.Linear`s."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_ir = nn.Linear(input_size, hidden_size)
        self.W_iz = nn.Linear(input_size, hidden_size)
        self.W_in = nn.Linear(input_size, hidden_size)
        self.W_hr = nn.Linear(hidden_size, hidden_size)
        self.W_hz = nn.Linear(hidden_size, hidden_size)
        self.W_hn = nn.Linear(hidden_size, hidden_size)
        # nn.GRU's init: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)).
        bound = hidden_size ** -0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        # Non-persistent: not a weight, so state dicts keep exactly nn.GRU's parameters.
        self.register_buffer("zero_state", torch.zeros(1, 1, hidden_size), persistent=False)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the layer over a sequence (T is read from `x`, a constant once exported).

        Args:
            x: Input sequence `(B, T, input_size)`.
            h: Initial hidden state `(B, hidden_size)`; zeros when None.

        Returns:
            `(outputs (B, T, hidden_size), last hidden (B, hidden_size))`.
        """
        # Input projections for all steps at once: three matmuls instead of 3T small ones.
        xr, xz, xn = self.W_ir(x), self.W_iz(x), self.W_in(x)  # (B, T, H) each
        # h stays 3-d (B, 1, H) and steps are taken with narrow: slices, views and cat lower to
        # XNNPACK, whereas unbind/select leave a squeeze/select outside the delegate per layer.
        # The default h0 is a (1, 1, H) zeros buffer that broadcasts against the batch: no
        # zeros op whose size comes from the input (full_like does not delegate either).
        h = self.zero_state if h is None else h.unsqueeze(1)  # (1 or B, 1, H)
        outputs = []
        for t in range(x.shape[1]):
            x_r, x_z, x_n = xr.narrow(1, t, 1), xz.narrow(1, t, 1), xn.narrow(1, t, 1)  # (B, 1, H)
            r = torch.sigmoid(x_r + self.W_hr(h))  # (B, 1, H)
            z = torch.sigmoid(x_z + self.W_hz(h))  # (B, 1, H)
            n = torch.tanh(x_n + r * self.W_hn(h))  # (B, 1, H)
            # (1 - z) * n + z * h, written as ATen's GRU cell computes it; it also avoids the
            # scalar constant of `1 - z`, which ExecuTorch leaves as a copy outside the delegate.
            h = n + z * (h - n)  # (B, 1, H)
            outputs.append(h)
        return torch.cat(outputs, dim=1), h.flatten(1)  # (B, T, H), (B, H)


class UnrolledGRU(nn.Module):
    """A stacked, batch-first, unidirectional GRU equal to `nn.GRU(..., batch_first=True)`.

    Args:
        input_size: Features per step of the input sequence.
        hidden_size: Hidden state size H.
        num_layers: Stacked layers.
        dropout: Dropout on the outputs of every layer but the last, in training only (as nn.GRU).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.layers = nn.ModuleList(
            GRULayer(input_size if k == 0 else hidden_size, hidden_size) for k in range(num_layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Same call convention as `nn.GRU(batch_first=True)`.

        Args:
            x: Input sequence `(B, T, input_size)`.
            h0: Initial hidden states `(num_layers, B, H)`; zeros when None.

        Returns:
            `(output (B, T, H) of the last layer, h_n (num_layers, B, H))`.
        """
        last_hidden = []
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = self.dropout(x)  # inter-layer dropout, identity in eval
            x, h = layer(x, None if h0 is None else h0[k])  # (B, T, H), (B, H)
            last_hidden.append(h)
        return x, torch.stack(last_hidden, dim=0)  # (B, T, H), (L, B, H)

    @torch.no_grad()
    def load_from_nn_gru(self, gru: nn.GRU) -> "UnrolledGRU":
        """Copy the weights of a unidirectional `nn.GRU` of the same sizes into this module.

        `weight_ih_l{k}` is `(3H, I)` with rows `[r | z | n]`, likewise `weight_hh_l{k}` and the
        biases; a GRU built with `bias=False` loads zero biases.

        Returns:
            self, for chaining.
        """
        if gru.bidirectional:
            raise ValueError("load_from_nn_gru: bidirectional nn.GRU is not supported")
        if getattr(gru, "proj_size", 0):
            raise ValueError("load_from_nn_gru: nn.GRU with proj_size is not supported")
        ours = (self.input_size, self.hidden_size, self.num_layers)
        theirs = (gru.input_size, gru.hidden_size, gru.num_layers)
        if ours != theirs:
            raise ValueError(f"load_from_nn_gru: size mismatch (input, hidden, layers) "
                             f"{theirs} in nn.GRU vs {ours} here")
        for k, layer in enumerate(self.layers):
            w_ih = getattr(gru, f"weight_ih_l{k}").chunk(3, dim=0)  # [r | z | n], each (H, I)
            w_hh = getattr(gru, f"weight_hh_l{k}").chunk(3, dim=0)  # each (H, H)
            if gru.bias:
                b_ih = getattr(gru, f"bias_ih_l{k}").chunk(3, dim=0)
                b_hh = getattr(gru, f"bias_hh_l{k}").chunk(3, dim=0)
            else:
                b_ih = b_hh = (torch.zeros(self.hidden_size),) * 3
            for gate, i in (("r", 0), ("z", 1), ("n", 2)):
                getattr(layer, f"W_i{gate}").weight.copy_(w_ih[i])
                getattr(layer, f"W_i{gate}").bias.copy_(b_ih[i])
                getattr(layer, f"W_h{gate}").weight.copy_(w_hh[i])
                getattr(layer, f"W_h{gate}").bias.copy_(b_hh[i])
        return self
