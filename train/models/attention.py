"""`attention`: the paper's self-attention baseline over 16 tokens of 512.

Each of the T=4 frame vectors (D=2048) is cut into 4 tokens of 512 -> 16 tokens; a learned
position embedding says which frame/chunk a token is (attention alone is order-blind); 4-head
self-attention; mean over tokens -> FC 512->2048 -> ReLU -> dropout -> 2048->K (paper 2.2.1).

The attention is written out (Linear + matmul + softmax) rather than `nn.MultiheadAttention`,
whose fused kernels are not guaranteed to export/lower on every edge toolchain.
"""
from __future__ import annotations

import torch
from torch import nn

from echoweave.train.models.base import EchoModel
from echoweave.train.models.config import ModelConfig
from echoweave.train.models.registry import register_model
from echoweave.train.models.weaving import split_into_tokens


class MultiHeadSelfAttention(nn.Module):
    """Scaled dot-product self-attention with separate q/k/v/out projections.

    Args:
        dim: Token size E (divisible by heads).
        heads: Number of heads.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention token size {dim} is not divisible by {heads} heads")
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        # Heads folded into the batch: 3-d bmm lowers to XNNPACK, a 4-d matmul leaves an expand.
        x = x.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (B, heads, N, E/heads)
        return x.flatten(0, 1)  # (B*heads, N, E/heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Self-attention over tokens `(B, N, E)` -> `(B, N, E)`."""
        q, k, v = self._split_heads(self.q(x)), self._split_heads(self.k(x)), self._split_heads(self.v(x))
        attn = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * self.scale, dim=-1)  # (B*heads, N, N)
        y = torch.bmm(attn, v).unflatten(0, (-1, self.heads))  # (B, heads, N, E/heads)
        return self.out(y.transpose(1, 2).flatten(2))  # (B, N, E)


class AttentionClassifier(EchoModel):
    """CNN features -> 16 tokens -> multi-head self-attention -> pooled MLP head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.chunks = self.frames  # the paper: 4 frames x 4 chunks
        if self.feature_dim % self.chunks:
            raise ValueError(f"attention needs feature_dim divisible by {self.chunks}, got {self.feature_dim}")
        token_dim = self.feature_dim // self.chunks
        self.pos_embed = nn.Parameter(torch.zeros(1, self.frames * self.chunks, token_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.attn = MultiHeadSelfAttention(token_dim, cfg.attention_heads)
        self.fc = nn.Linear(token_dim, cfg.attention_fc_dim)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.attention_fc_dim, cfg.num_classes)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        tokens = split_into_tokens(features, self.chunks) + self.pos_embed  # (B, T*chunks, D/chunks)
        attended = self.attn(tokens).transpose(1, 2).unsqueeze(-1)  # (B, D/chunks, N, 1)
        # Token mean as a 4-d global average pool, the form XNNPACK's mean accepts.
        pooled = attended.mean(dim=(-2, -1), keepdim=True).flatten(1)  # (B, D/chunks)
        return self.head(self.dropout(self.act(self.fc(pooled))))  # (B, K)


@register_model("attention", "ResNet features -> 16 tokens of D/4 -> 4-head self-attention (baseline)")
def attention(cfg: ModelConfig) -> AttentionClassifier:
    """Self-attention baseline."""
    return AttentionClassifier(cfg)
