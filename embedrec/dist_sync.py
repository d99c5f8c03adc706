"""Models replicated on every rank (the minibatch and hogwild trainers under torchrun): the gradient sums of one step
(``GradSync``) and the merge of tables each rank trained on its own shard (``RowAverage``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from embedrec.distributed import Group


class GradSync:
    """Sums the gradients of a model replicated on every rank, in place, before the optimiser step (what
    DistributedDataParallel does, written out because its buckets take dense gradients only and NCCL has no
    sparse all-reduce). Per step: one small all_reduce of a header (which parameters have a gradient on some
    rank, how many sparse rows each rank sends); one flat all_reduce of every dense gradient; one all_gather of
    every sparse embedding gradient's touched rows (row ids bit-packed beside the values), rebuilt as their
    sum. A parameter without a gradient on any rank stays without one (as in one process, the optimiser skips
    it)."""

    def __init__(self, g: Group, model):
        import torch

        sparse = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.sparse}
        self.g = g
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.sparse = [id(p) in sparse for p in self.params]

    def __call__(self) -> None:
        import torch

        g, n = self.g, len(self.params)
        if g.world == 1:
            return
        rows, packed = [], []
        for p, sp in zip(self.params, self.sparse):
            if sp and p.grad is not None:
                gr = p.grad.coalesce()
                ids, vals = gr.indices()[0], gr.values().reshape(gr.indices().shape[1], -1)
                # an int64 id is two float32 columns, bit for bit: the ids travel with the values
                packed.append(torch.cat([ids.contiguous().view(torch.float32).reshape(-1, 2), vals.float()], 1))
                rows.append(ids.shape[0])
            else:
                rows.append(0)
        flat = torch.cat([x.reshape(-1) for x in packed]) if packed else torch.zeros(0, device=g.device)
        head = torch.zeros((g.world, 1 + 2 * n), dtype=torch.int64, device=g.device)
        head[g.rank, 0] = flat.numel()
        head[g.rank, 1:n + 1] = torch.tensor([p.grad is not None for p in self.params], dtype=torch.int64)
        head[g.rank, n + 1:] = torch.tensor(rows, dtype=torch.int64)
        head = g.sum_(head).cpu()
        has = (head[:, 1:n + 1].max(0).values > 0).tolist()
        dense = [p for p, h, sp in zip(self.params, has, self.sparse) if h and not sp]
        if dense:
            total = g.sum_(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                                      for p in dense]))
            at = 0
            for p in dense:
                p.grad = total[at:at + p.numel()].view_as(p)
                at += p.numel()
        if any(h and sp for h, sp in zip(has, self.sparse)):
            self._sparse_sums(g.gather_all(flat, head[:, 0].tolist()), head[:, n + 1:].tolist(), has)

    def _sparse_sums(self, parts: list, rows: list, has: list) -> None:
        """Each sparse parameter's gradient: the rows every rank sent (``parts[r]``, parameter after parameter
        with ``rows[r][i]`` rows each), summed."""
        import torch

        ids = [[] for _ in self.params]
        vals = [[] for _ in self.params]
        for part, counts in zip(parts, rows):
            at = 0
            for i, (p, c) in enumerate(zip(self.params, counts)):
                if c:
                    width = 2 + p[0].numel()
                    block = part[at:at + c * width].reshape(c, width)
                    ids[i].append(block[:, :2].contiguous().view(torch.int64).reshape(-1))
                    vals[i].append(block[:, 2:])
                    at += c * width
        for i, (p, h, sp) in enumerate(zip(self.params, has, self.sparse)):
            if h and sp:
                idx = torch.cat(ids[i]) if ids[i] else torch.zeros(0, dtype=torch.int64, device=p.device)
                v = torch.cat(vals[i]) if vals[i] else p.new_zeros((0, p[0].numel()))
                p.grad = torch.sparse_coo_tensor(idx.unsqueeze(0), v.to(p.dtype).reshape(-1, *p.shape[1:]),
                                                 p.shape, check_invariants=False).coalesce()


class RowAverage:
    """Merges per-rank copies of tables that each rank trained on its own shard (hogwild on ranks): each row
    becomes the average of the ranks' copies weighted by how often each rank's examples touched it, so a row
    only one rank touched (a user, when ratings are sharded by user) is that rank's copy, and a popular movie
    the average of every rank's. ``weights``: per table, this rank's touches per row (rows nobody touched:
    the plain average)."""

    def __init__(self, g: Group, weights: list[np.ndarray]):
        import torch

        self.g, self.w = g, []
        for w in weights:
            mine = torch.from_numpy(np.asarray(w, np.float32)).to(g.device)
            total = g.sum_(mine.clone())
            none = total == 0
            mine[none], total[none] = 1.0, float(g.world)
            self.w.append((mine / total).unsqueeze(1))

    def __call__(self, tables: list) -> None:
        """Merge ``tables`` (the parameters, (rows, d), in the order of the weights) in place, on every rank."""
        import torch

        if self.g.world == 1:
            return
        with torch.no_grad():
            for t, w in zip(tables, self.w):
                if t is not None:
                    merged = self.g.sum_((t.to(self.g.device) * w).contiguous())
                    t.copy_(merged.to(t.device))
