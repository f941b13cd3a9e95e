"""CenterNet losses: penalty-reduced focal loss on heatmaps, L1 on size and offset at centres,
and optionally a GIoU loss on the box decoded at each centre (scale-free: a 3 px box's
localisation counts as much as a 100 px one's)."""

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


def centre_boxes(log_size: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """(B, K, 2) log sizes and centre offsets [cells] -> (B, K, 4) xyxy relative to the cell."""
    half = log_size.clamp(-8.0, 8.0).exp() / 2
    return torch.cat([offset - half, offset + half], dim=-1)


def box_inter_union(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Intersection and union areas of paired (..., 4) xyxy boxes -> two (...) tensors."""
    lo, hi = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
    inter = (hi - lo).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).prod(-1)
    return inter, area_a + area_b - inter


def masked_giou_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean 1 - GIoU over real objects; pred/target (B, K, 4) xyxy, mask (B, K)."""
    inter, union = box_inter_union(pred, target)
    enclose = (torch.maximum(pred[..., 2:], target[..., 2:])
               - torch.minimum(pred[..., :2], target[..., :2])).prod(-1)
    eps = 1e-7
    giou = inter / (union + eps) - (enclose - union) / (enclose + eps)
    m = mask.float()
    return ((1 - giou) * m).sum() / m.sum().clamp(min=1.0)


def detector_loss(
    out: HeadOutputs,
    targets: dict[str, torch.Tensor],
    size_weight: float = 1.0,
    offset_weight: float = 1.0,
    giou_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Loss terms and their weighted sum under key "total" ("giou" only when giou_weight > 0)."""
    hm = focal_loss(out.heatmap, targets["heatmap"], targets.get("ignore"))
    size_pred = gather_at(out.size, targets["index"])
    off_pred = gather_at(out.offset, targets["index"])
    size = masked_l1(size_pred, targets["size"], targets["mask"])
    off = masked_l1(off_pred, targets["offset"], targets["mask"])
    total = hm + size_weight * size + offset_weight * off
    terms = {"heatmap": hm, "size": size, "offset": off}
    if giou_weight > 0:
        giou = masked_giou_loss(centre_boxes(size_pred, off_pred),
                                centre_boxes(targets["size"].float(), targets["offset"].float()),
                                targets["mask"])
        total = total + giou_weight * giou
        terms["giou"] = giou
    return {"total": total, **terms}
