"""Sampling a code from logits on the device, with settings held in device tensors.

The settings (temperature, top-k, top-p, greedy) live in tensors, so one captured CUDA graph
serves every setting. Random numbers come from a seeded generator that fills a noise buffer
before each frame (an exponential race: argmax(p / E) with E ~ Exp(1) draws exactly from p), so
a seed reproduces a take and the draw needs no host synchronisation.
"""

from __future__ import annotations

import math

import torch

from desktop_app.inference.engine import GenerationRequest


def filter_logits(
    logits: torch.Tensor,
    temperature: torch.Tensor,
    top_k: torch.Tensor,
    top_p: torch.Tensor,
) -> torch.Tensor:
    """transformers' temperature, top-k and top-p warpers, in that order, with tensor settings.

    ``top_k`` of 0 or at least the vocabulary, and ``top_p`` of 1, leave the logits as they are, as
    transformers does when it leaves those warpers out.
    """
    scores = logits / temperature
    vocab = scores.shape[-1]
    descending = torch.sort(scores, dim=-1, descending=True).values
    k = torch.where(top_k > 0, top_k.clamp(max=vocab), vocab) - 1
    kth = descending.gather(-1, k.expand(scores.shape[0], 1))
    scores = scores.masked_fill(scores < kth, -math.inf)
    ascending, order = torch.sort(scores, dim=-1)
    cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1:] = False
    remove = remove.scatter(-1, order, remove)
    return scores.masked_fill(remove, -math.inf)


class Sampler:
    """One code per row from logits: greedy, or drawn under temperature, top-k and top-p.

    Codes at or above ``allowed`` (the codec's specials, which Mimi cannot decode) are never
    chosen.
    """

    def __init__(self, vocab: int, allowed: int, device: torch.device) -> None:
        self.temperature = torch.ones(1, 1, dtype=torch.float32, device=device)
        self.top_k = torch.zeros(1, 1, dtype=torch.long, device=device)
        self.top_p = torch.ones(1, 1, dtype=torch.float32, device=device)
        self.greedy = torch.zeros(1, 1, dtype=torch.bool, device=device)
        self.suppress = torch.zeros(vocab, dtype=torch.bool, device=device)
        self.suppress[allowed:] = True
        self.device = device

    def use(self, request: GenerationRequest) -> None:
        """Take the request's settings (a temperature of 0 or less: greedy)."""
        greedy = request.temperature <= 0
        self.greedy.fill_(greedy)
        self.temperature.fill_(1.0 if greedy else float(request.temperature))
        self.top_k.fill_(max(0, int(request.top_k)))
        self.top_p.fill_(float(request.top_p))

    def generator(self, seed: int) -> torch.Generator:
        """A generator on the sampler's device, seeded: the noise of one take."""
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed)
        return generator

    def sample(self, logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One code per row of ``logits``; ``noise`` holds Exp(1) draws of the same shape."""
        logits = logits.to(torch.float32).masked_fill(self.suppress, -math.inf)
        greedy = logits.argmax(dim=-1)
        probs = filter_logits(logits, self.temperature, self.top_k, self.top_p).softmax(dim=-1)
        drawn = (probs / noise).argmax(dim=-1)
        return torch.where(self.greedy[:, 0], greedy, drawn)
