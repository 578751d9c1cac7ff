"""Residual vector quantizer: straight-through, commitment terms, k-means init, dead-code restart.

Quantization is per latent frame (stateless in time), so it streams as it is.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .streaming import pointwise


class QuantizerOutput(NamedTuple):
    """``quantized [B, D, T]`` (straight-through in training), ``codes [B, n_q, T]``, and losses."""

    quantized: torch.Tensor
    codes: torch.Tensor
    commitment_loss: torch.Tensor
    codebook_loss: torch.Tensor


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Under DDP every rank's ``[N, D]`` concatenated in rank order (``[world * N, D]``; each rank
    must pass the same ``N``), so k-means and restarts see the global batch, in the order a single
    process with that batch would; the rows themselves otherwise."""
    if not _distributed():
        return rows
    parts = [torch.empty_like(rows) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, rows.contiguous())
    return torch.cat(parts)


def _nearest(vectors: torch.Tensor, codebook: torch.Tensor,
             norms: torch.Tensor | None = None) -> torch.Tensor:
    """Index of the nearest code for each row: ``[N, D], [K, D] -> [N]`` (``norms``: ``|code|^2 [K]``)."""
    if norms is None:
        norms = (codebook * codebook).sum(1)
    return torch.addmm(norms, vectors, codebook.t(), alpha=-2.0).argmin(dim=1)


def kmeans(vectors: torch.Tensor, k: int, iterations: int = 10,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Lloyd's k-means on ``[N, D]`` returning ``[k, D]`` centroids (empty clusters keep theirs)."""
    n = vectors.shape[0]
    pick = torch.randint(n, (k,), generator=generator, device="cpu").to(vectors.device)
    centroids = vectors[pick].clone()
    for _ in range(iterations):
        assign = _nearest(vectors, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, assign, vectors)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1).to(vectors.dtype)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
    return centroids


class ResidualVectorQuantizer(nn.Module):
    """``n_q`` codebooks of ``codebook_size`` codes of ``codebook_dim``, applied to residuals.

    Input and output ``[B, dim, T]``; the latent is projected to ``codebook_dim`` and back
    (two pointwise convs). In training, codebooks are initialised by k-means on the first
    batch's residuals, codes whose usage EMA falls below ``dead_code_threshold`` are restarted
    from the batch's residuals, and with probability ``quantizer_dropout`` only a random
    number of the first quantizers is used (so fewer quantizers still decode at run time).
    """

    def __init__(self, dim: int, n_q: int, codebook_size: int, codebook_dim: int,
                 quantizer_dropout: float = 0.0, dead_code_threshold: float = 0.01,
                 usage_decay: float = 0.99) -> None:
        super().__init__()
        self.n_q = n_q
        self.codebook_size = codebook_size
        self.quantizer_dropout = quantizer_dropout
        self.dead_code_threshold = dead_code_threshold
        self.usage_decay = usage_decay
        self.project_in = nn.Conv1d(dim, codebook_dim, 1)
        self.project_out = nn.Conv1d(codebook_dim, dim, 1)
        self.codebooks = nn.Parameter(torch.randn(n_q, codebook_size, codebook_dim) / codebook_dim ** 0.5)
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("usage", torch.ones(n_q, codebook_size))
        # same seed on every rank: under DDP all ranks drop the same quantizers (their
        # dead-code restarts are collective, so they must run the same number of stages)
        self._dropout_rng = torch.Generator().manual_seed(0)
        self._norms_key: tuple[int, int] | None = None
        self._norms = torch.zeros(0)

    @property
    def dropout_generator(self) -> torch.Generator:
        """The CPU generator drawing quantizer dropout (training saves and restores its state)."""
        return self._dropout_rng

    def check_n_q(self, n_q: int | None) -> int:
        """The number of quantizers a call uses: ``n_q`` (``None``: all), checked to be 1..``self.n_q``."""
        n_q = self.n_q if n_q is None else n_q
        if not 1 <= n_q <= self.n_q:
            raise ValueError(f"n_q must be between 1 and {self.n_q}, got {n_q}")
        return n_q

    def forward(self, x: torch.Tensor, n_q: int | None = None) -> QuantizerOutput:
        n_q = self.check_n_q(n_q)
        z = pointwise(self.project_in, x)
        b, d, t = z.shape
        flat = z.transpose(1, 2).reshape(-1, d)
        if self.training:
            if not bool(self.initialized):
                self._kmeans_init(flat.detach())
            if self.quantizer_dropout > 0 and torch.rand((), generator=self._dropout_rng) < self.quantizer_dropout:
                n_q = int(torch.randint(1, n_q + 1, (), generator=self._dropout_rng))
        residual = flat
        total = torch.zeros_like(flat)
        codes = []
        commitment = flat.new_zeros(())
        codebook_loss = flat.new_zeros(())
        books = self.codebooks.detach()
        norms = self._code_norms()
        for i in range(n_q):
            codebook = self.codebooks[i]
            idx = _nearest(residual.detach(), books[i], norms[i])
            chosen = codebook[idx]
            if self.training:
                commitment = commitment + F.mse_loss(residual, chosen.detach())
                codebook_loss = codebook_loss + F.mse_loss(chosen, residual.detach())
                self._track_usage(i, idx, residual.detach())
            total = total + chosen
            residual = residual - chosen.detach()
            codes.append(idx)
        if self.training:
            total = flat + (total - flat).detach()  # straight-through estimator
        quantized = pointwise(self.project_out, total.reshape(b, t, d).transpose(1, 2))
        codes_t = torch.stack(codes, 0).reshape(n_q, b, t).transpose(0, 1)
        return QuantizerOutput(quantized, codes_t, commitment, codebook_loss)

    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """Codes of ``x [B, dim, T]``: ``[B, n_q, T]`` (int64)."""
        n_q = self.check_n_q(n_q)
        z = pointwise(self.project_in, x)
        b, d, t = z.shape
        residual = z.transpose(1, 2).reshape(-1, d)
        norms = self._code_norms()
        codes = []
        for i in range(n_q):
            idx = _nearest(residual, self.codebooks[i], norms[i])
            residual = residual - self.codebooks[i][idx]
            codes.append(idx)
        return torch.stack(codes, 0).reshape(n_q, b, t).transpose(0, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Latent of ``codes [B, n_q, T]``: ``[B, dim, T]``."""
        b, n_q, t = codes.shape
        self.check_n_q(n_q)
        total = sum(self.codebooks[i][codes[:, i]] for i in range(n_q))  # [B, T, D]
        return pointwise(self.project_out, total.transpose(1, 2))

    @torch.no_grad()
    def _code_norms(self) -> torch.Tensor:
        """``|code|^2`` of every code ``[n_q, K]``, cached until the codebooks change."""
        key = (self.codebooks._version, self.codebooks.data_ptr())
        if self._norms_key != key:
            books = self.codebooks.detach()
            self._norms = (books * books).sum(-1)
            self._norms_key = key
        return self._norms

    @torch.no_grad()
    def _kmeans_init(self, flat: torch.Tensor) -> None:
        residual = _gather_rows(flat)  # the global batch: every rank computes the same centroids
        for i in range(self.n_q):
            centroids = kmeans(residual, self.codebook_size)
            self.codebooks.data[i] = centroids
            residual = residual - centroids[_nearest(residual, centroids)]
        self.initialized.fill_(True)
        self._sync_codebooks()

    @torch.no_grad()
    def _track_usage(self, i: int, idx: torch.Tensor, residual: torch.Tensor) -> None:
        counts = torch.bincount(idx, minlength=self.codebook_size).to(self.usage.dtype)
        if _distributed():
            dist.all_reduce(counts)  # every rank sees the same usage, so restarts agree
        share = counts * (self.codebook_size / counts.sum().clamp(min=1))
        self.usage[i].mul_(self.usage_decay).add_(share, alpha=1 - self.usage_decay)
        dead = (self.usage[i] < self.dead_code_threshold).nonzero().squeeze(1)
        if dead.numel():  # the same codes on every rank (usage is reduced), so all ranks gather
            pool = _gather_rows(residual)
            pick = torch.randint(pool.shape[0], (dead.numel(),), device=pool.device)
            self.codebooks.data[i, dead] = pool[pick]
            self.usage[i, dead] = 1.0
            self._sync_codebooks()

    def _sync_codebooks(self) -> None:
        """Under DDP, every rank takes rank 0's codebooks after an init or a restart."""
        if _distributed():
            dist.broadcast(self.codebooks.data, 0)
            dist.broadcast(self.usage, 0)
