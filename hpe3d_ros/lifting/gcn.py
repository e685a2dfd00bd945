"""Graph-convolution encoder over the H36M-17 joint graph (in the spirit of SemGCN).

Zhao et al. 2019 ("Semantic Graph Convolutional Networks for 3D Human Pose Regression"):
each layer mixes a joint's features with its skeleton neighbours' through a *learned*
weighting of the graph's edges (a softmax over each joint's neighbours and itself), with
separate weights for the joint itself and for its neighbours. Here it replaces the
Martinez MLP trunk as the 2D encoder: per joint the input is (x, y, visible, confidence
[, noise level]) plus the person-level numbers (centre ray, log spread [, noise given])
repeated on every joint; residual blocks of two graph convolutions (batch norm, ReLU,
dropout); the 17 joint vectors are flattened into one ``width``-sized code, so the VAE
heads and decoders after it are the same as with the MLP.
"""

from __future__ import annotations

import torch
from torch import nn

from hpe3d_ros.lifting.normalize import N_FEATURES, N_JOINTS
from hpe3d_ros.skeleton import H36M_PARENTS


def skeleton_adjacency() -> torch.Tensor:
    """(17, 17) bool: skeleton edges both ways plus self-loops."""
    adj = torch.eye(N_JOINTS, dtype=torch.bool)
    for j, p in enumerate(H36M_PARENTS):
        if p >= 0:
            adj[j, p] = adj[p, j] = True
    return adj


class SemGraphConv(nn.Module):
    """X' = (M_self * A_hat) X W_self + (M_other * A_hat) X W_other + b, A_hat learned."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.w_self = nn.Linear(c_in, c_out, bias=False)
        self.w_other = nn.Linear(c_in, c_out)
        self.register_buffer("mask", skeleton_adjacency())
        self.register_buffer("eye", torch.eye(N_JOINTS))
        self.edge_logits = nn.Parameter(torch.zeros(N_JOINTS, N_JOINTS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 17, C_in) -> (B, 17, C_out)."""
        logits = self.edge_logits.masked_fill(~self.mask, -1e4)
        a = torch.softmax(logits, dim=-1)
        return (a * self.eye) @ self.w_self(x) + (a * (1.0 - self.eye)) @ self.w_other(x)


class _GraphLayer(nn.Module):
    """Graph conv, batch norm over channels, ReLU, dropout."""

    def __init__(self, c_in: int, c_out: int, dropout: float) -> None:
        super().__init__()
        self.conv = SemGraphConv(c_in, c_out)
        self.norm = nn.BatchNorm1d(c_out)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.conv(x).transpose(1, 2)).transpose(1, 2)
        return self.drop(torch.relu(h))


class GraphEncoder(nn.Module):
    """Lifter features (B, F) -> (B, width) through graph convolutions (module docstring)."""

    def __init__(
        self, n_in: int, channels: int, n_blocks: int, width: int, dropout: float
    ) -> None:
        super().__init__()
        self.noise = n_in > N_FEATURES  # noise-aware features (normalize.N_NOISE_FEATURES)
        per_joint = 4 + int(self.noise)
        n_global = 4 + int(self.noise)
        self.inp = _GraphLayer(per_joint + n_global, channels, dropout)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                _GraphLayer(channels, channels, dropout), _GraphLayer(channels, channels, dropout)
            )
            for _ in range(n_blocks)
        )
        self.out = nn.Sequential(
            nn.Linear(N_JOINTS * channels, width), nn.BatchNorm1d(width), nn.ReLU()
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        j = N_JOINTS
        xy = feats[:, : 2 * j].unflatten(1, (j, 2))
        parts = [xy, feats[:, 2 * j : 3 * j, None], feats[:, 3 * j : 4 * j, None]]
        glob = [feats[:, 4 * j : 4 * j + 4]]
        if self.noise:
            parts.append(feats[:, 4 * j + 4 : 5 * j + 4, None])
            glob.append(feats[:, 5 * j + 4 : 5 * j + 5])
        g = torch.cat(glob, dim=1)[:, None, :].expand(-1, j, -1)
        h = self.inp(torch.cat([*parts, g], dim=-1))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h.flatten(1))
