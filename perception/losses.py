"""CenterNet losses: penalty-reduced focal loss on heatmaps, L1 on size and offset at centres."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from perception.model import HeadOutputs


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore: torch.Tensor | None = None,
    alpha: float = 2.0,
    beta: float = 4.0,
) -> torch.Tensor:
    """CenterNet's focal loss, summed and divided by the number of centres (>= 1).

    logits, target, ignore: (B, C, h, w); target 1 at object centres, a Gaussian around them.
    """
    logits, target = logits.float(), target.float()
    p = torch.sigmoid(logits)
    pos = (target >= 1.0).float()
    pos_loss = -((1 - p) ** alpha) * F.logsigmoid(logits) * pos
    neg_w = (1 - target) ** beta * (1 - pos)
    if ignore is not None:
        neg_w = neg_w * (1 - ignore.float())
    neg_loss = -(p**alpha) * F.logsigmoid(-logits) * neg_w
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1.0)


def gather_at(pred: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, 2, h, w) map, (B, K) flat cell indices -> (B, K, 2) values."""
    b, ch = pred.shape[:2]
    flat = pred.float().view(b, ch, -1)
    return flat.gather(2, index[:, None, :].expand(b, ch, index.shape[1])).transpose(1, 2)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean L1 over real objects; pred/target (B, K, 2), mask (B, K)."""
    m = mask[..., None].float()
    return (F.l1_loss(pred, target.float(), reduction="none") * m).sum() / (
        2 * m.sum()
    ).clamp(min=1.0)


def detector_loss(
    out: HeadOutputs,
    targets: dict[str, torch.Tensor],
    size_weight: float = 1.0,
    offset_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Loss terms and their weighted sum under key "total"."""
    hm = focal_loss(out.heatmap, targets["heatmap"], targets.get("ignore"))
    size = masked_l1(gather_at(out.size, targets["index"]), targets["size"], targets["mask"])
    off = masked_l1(gather_at(out.offset, targets["index"]), targets["offset"], targets["mask"])
    total = hm + size_weight * size + offset_weight * off
    return {"total": total, "heatmap": hm, "size": size, "offset": off}
