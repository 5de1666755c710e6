"""`UnrolledLSTM`: PyTorch's LSTM equations written with one `nn.Linear` per gate.

The twin of `unrolled_gru.UnrolledGRU`, for the same reason: exported with `torch.export` an
``nn.LSTM`` stays one ``aten.lstm`` node, which the edge toolchains fragment, leave in fp32 or
cannot convert (docs/TOOLCHAIN_NOTES.md "Pitfalls"); per-gate linears plus sigmoid/tanh lower and
quantize everywhere. Weights load from an ``nn.LSTM`` with `load_from_nn_lstm`, and the result
matches ``nn.LSTM`` to float precision (tests/test_stfm.py).

For each layer and step (PyTorch's documented equations, batch-first):
    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)
    f = sigmoid(W_if x + b_if + W_hf h + b_hf)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)
    o = sigmoid(W_io x + b_io + W_ho h + b_ho)
    c = f * c + i * g
    h = o * tanh(c)
"""
from __future__ import annotations

import torch
from torch import nn

#: Gate order of ``nn.LSTM``'s stacked weights (``weight_ih_l{k}`` rows ``[i | f | g | o]``).
GATES = ("i", "f", "g", "o")


class LSTMLayer(nn.Module):
    """One LSTM layer, unrolled over time; the eight gate projections are separate `nn.Linear`s."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        for gate in GATES:
            setattr(self, f"W_i{gate}", nn.Linear(input_size, hidden_size))
            setattr(self, f"W_h{gate}", nn.Linear(hidden_size, hidden_size))
        # nn.LSTM's init: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)).
        bound = hidden_size ** -0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        # Non-persistent: not a weight, so state dicts hold exactly nn.LSTM's parameters.
        self.register_buffer("zero_state", torch.zeros(1, 1, hidden_size), persistent=False)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run the layer over a sequence (T is read from `x`, a constant once exported).

        Args:
            x: Input sequence `(B, T, input_size)`.
            state: Initial `(h (B, H), c (B, H))`; zeros when None.

        Returns:
            `(outputs (B, T, H), (last h (B, H), last c (B, H)))`.
        """
        # Input projections for all steps at once: four matmuls instead of 4T small ones.
        xi, xf, xg, xo = self.W_ii(x), self.W_if(x), self.W_ig(x), self.W_io(x)  # (B, T, H) each
        # As in UnrolledGRU: the state stays 3-d (B, 1, H), steps are taken with narrow (slices
        # lower to XNNPACK, select/unbind do not), and the default state is a (1, 1, H) zeros
        # buffer broadcast against the batch (no zeros op sized from the input).
        if state is None:
            h = c = self.zero_state  # (1, 1, H)
        else:
            h, c = state[0].unsqueeze(1), state[1].unsqueeze(1)  # (B, 1, H)
        outputs = []
        for t in range(x.shape[1]):
            i = torch.sigmoid(xi.narrow(1, t, 1) + self.W_hi(h))  # (B, 1, H)
            f = torch.sigmoid(xf.narrow(1, t, 1) + self.W_hf(h))  # (B, 1, H)
            g = torch.tanh(xg.narrow(1, t, 1) + self.W_hg(h))  # (B, 1, H)
            o = torch.sigmoid(xo.narrow(1, t, 1) + self.W_ho(h))  # (B, 1, H)
            c = f * c + i * g  # (B, 1, H)
            h = o * torch.tanh(c)  # (B, 1, H)
            outputs.append(h)
        return torch.cat(outputs, dim=1), (h.flatten(1), c.flatten(1))  # (B, T, H), ((B, H), (B, H))


class UnrolledLSTM(nn.Module):
    """A stacked, batch-first, unidirectional LSTM equal to `nn.LSTM(..., batch_first=True)`.

    Args:
        input_size: Features per step of the input sequence.
        hidden_size: Hidden (and cell) state size H.
        num_layers: Stacked layers.
        dropout: Dropout on the outputs of every layer but the last, in training only (as nn.LSTM).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.layers = nn.ModuleList(
            LSTMLayer(input_size if k == 0 else hidden_size, hidden_size) for k in range(num_layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Same call convention as `nn.LSTM(batch_first=True)`.

        Args:
            x: Input sequence `(B, T, input_size)`.
            state: Initial `(h0, c0)`, each `(num_layers, B, H)`; zeros when None.

        Returns:
            `(output (B, T, H) of the last layer, (h_n, c_n) each (num_layers, B, H))`.
        """
        last_h, last_c = [], []
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = self.dropout(x)  # inter-layer dropout, identity in eval
            x, (h, c) = layer(x, None if state is None else (state[0][k], state[1][k]))  # (B, T, H)
            last_h.append(h)
            last_c.append(c)
        return x, (torch.stack(last_h, dim=0), torch.stack(last_c, dim=0))  # (B, T, H), (L, B, H) x 2

    @torch.no_grad()
    def load_from_nn_lstm(self, lstm: nn.LSTM) -> "UnrolledLSTM":
        """Copy the weights of a unidirectional `nn.LSTM` of the same sizes into this module.

        ``weight_ih_l{k}`` is ``(4H, I)`` with rows ``[i | f | g | o]``, likewise ``weight_hh_l{k}``
        and the biases; an LSTM built with ``bias=False`` loads zero biases.

        Returns:
            self, for chaining.
        """
        if lstm.bidirectional:
            raise ValueError("load_from_nn_lstm: bidirectional nn.LSTM is not supported")
        if getattr(lstm, "proj_size", 0):
            raise ValueError("load_from_nn_lstm: nn.LSTM with proj_size is not supported")
        ours = (self.input_size, self.hidden_size, self.num_layers)
        theirs = (lstm.input_size, lstm.hidden_size, lstm.num_layers)
        if ours != theirs:
            raise ValueError(f"load_from_nn_lstm: size mismatch (input, hidden, layers) "
                             f"{theirs} in nn.LSTM vs {ours} here")
        for k, layer in enumerate(self.layers):
            w_ih = getattr(lstm, f"weight_ih_l{k}").chunk(4, dim=0)  # [i | f | g | o], each (H, I)
            w_hh = getattr(lstm, f"weight_hh_l{k}").chunk(4, dim=0)  # each (H, H)
            if lstm.bias:
                b_ih = getattr(lstm, f"bias_ih_l{k}").chunk(4, dim=0)
                b_hh = getattr(lstm, f"bias_hh_l{k}").chunk(4, dim=0)
            else:
                b_ih = b_hh = (torch.zeros(self.hidden_size),) * 4
            for n, gate in enumerate(GATES):
                getattr(layer, f"W_i{gate}").weight.copy_(w_ih[n])
                getattr(layer, f"W_i{gate}").bias.copy_(b_ih[n])
                getattr(layer, f"W_h{gate}").weight.copy_(w_hh[n])
                getattr(layer, f"W_h{gate}").bias.copy_(b_hh[n])
        return self
