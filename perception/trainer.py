"""Detector training loop: AdamW + warmup-cosine, last.pt/best.pt, automatic resume, TensorBoard.

`train_detector(cfg, out_dir)` is what `roadsight train-detector` calls; tests call it directly.
"""

from __future__ import annotations

import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from perception.backends import Detector, TorchBackend, resolve_device
from perception.checkpoint import (
    FORMAT,
    check_architecture,
    load_checkpoint,
    save_checkpoint,
)
from perception.coco_eval import evaluate_detector
from perception.data import DetectionDataset, load_coco_dirs, make_loader
from perception.decode import DecodeOptions
from perception.losses import detector_loss
from perception.model import count_parameters
from perception.provenance import training_camera
from roadsight.device import set_torch_threads
from sim.types import CLASSES

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], np.uint32), *n[2:]))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def warmup_cosine(total_steps: int, warmup_steps: int, final_frac: float = 0.02):
    """Per-step LR factor: linear warmup, then cosine down to `final_frac` of the peak."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        p = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * p))
    return factor


@torch.no_grad()
def precise_bn(model: torch.nn.Module, loader, max_batches: int, device: torch.device) -> None:
    """Recompute BatchNorm running stats as a plain average over `max_batches` train batches.

    The EMA stats lag the weights when training is short or the LR is high, so eval-mode
    predictions (what val, detect and ONNX use) would differ from train mode.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or max_batches <= 0:
        return
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    model.train()
    for i, (x, _) in enumerate(loader):
        if i >= max_batches:
            break
        model(x.to(device, non_blocking=True))
    for bn, momentum in zip(bns, momenta, strict=True):
        bn.momentum = momentum


def init_weights(model: torch.nn.Module, path: str | Path, model_cfg: dict,
                 device: torch.device) -> None:
    """Start from another run's weights (fine-tuning): same architecture, fresh optimizer."""
    state = load_checkpoint(path, map_location=device)
    check_architecture(state, model_cfg, path, "start from it")
    model.load_state_dict(state["state_dict"])
    log.info("starting from the weights of %s", path)


def train_detector(cfg: DictConfig, out_dir: str | Path) -> dict:
    """Train (or resume from OUT/last.pt) and return the final metrics dict."""
    out_dir = Path(out_dir)
    device = resolve_device(cfg.device)
    set_torch_threads(cfg.get("threads"))
    seed_everything(cfg.seed)
    decode_options = DecodeOptions.from_cfg(cfg.eval)  # a bad eval value fails before any work
    data_dirs = cfg.data if OmegaConf.is_list(cfg.data) else [cfg.data]
    train_records = load_coco_dirs(list(data_dirs))
    val_dirs = (list(cfg.val_data) if OmegaConf.is_list(cfg.val_data) else cfg.val_data) \
        if cfg.val_data else None
    val_records = load_coco_dirs(val_dirs) if val_dirs else None
    camera = training_camera(list(data_dirs), val_dirs)  # recorded in every checkpoint
    preprocessor = instantiate(cfg.preprocess)
    model_cfg = OmegaConf.to_container(cfg.detector, resolve=True)
    model = instantiate(cfg.detector).to(device)
    augment = instantiate(cfg.augment) if cfg.augment else None
    dataset = DetectionDataset(train_records, preprocessor, cfg.min_visible, augment, cfg.seed,
                               cfg.max_objects, stride=model.stride,
                               neighbour_weight=cfg.neighbour_weight)
    loader = make_loader(dataset, cfg.batch_size, True, cfg.workers, cfg.seed, device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(steps, min(cfg.warmup_steps, max(steps // 5, 1))))
    amp = bool(cfg.amp) and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    start_epoch, best, history = 0, float("-inf"), []
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    val_metrics: dict = {}
    if last_path.exists():
        state = load_checkpoint(last_path, map_location=device)
        check_architecture(state, model_cfg, last_path, "resume",
                           "; use a fresh hydra.run.dir")
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start_epoch, best, history = state["epoch"] + 1, state["best_mAP50"], state["history"]
        val_metrics = state["metrics"]
        log.info("resuming from %s at epoch %d", last_path, start_epoch + 1)
    elif cfg.get("init"):
        init_weights(model, cfg.init, model_cfg, device)
    log.info("detector: %d parameters, %d train images, device %s",
             count_parameters(model), len(train_records), device)

    from torch.utils.tensorboard import SummaryWriter  # heavy import, only when training
    tb = SummaryWriter(str(out_dir / "tb"))
    # one bar over the whole run: its rate and ETA cover all remaining epochs
    bar = tqdm(total=cfg.epochs * len(loader), initial=start_epoch * len(loader), unit="batch",
               dynamic_ncols=True)
    try:
        for epoch in range(start_epoch, cfg.epochs):
            dataset.set_epoch(epoch)
            loader.generator.manual_seed(cfg.seed * 100_003 + epoch)  # same order on resume
            model.train()
            sums: dict[str, float] = {}
            t0 = time.perf_counter()
            bar.set_description(f"epoch {epoch + 1}/{cfg.epochs}")
            for i, (x, targets) in enumerate(loader):
                x = x.to(device, non_blocking=True)
                targets = {k: v.to(device, non_blocking=True) for k, v in targets.items()}
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    losses = detector_loss(model(x), targets, **cfg.loss)
                opt.zero_grad(set_to_none=True)
                scaler.scale(losses["total"]).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
                sched.step()
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v.item()
                bar.set_postfix({k: f"{v / (i + 1):.3f}" for k, v in sums.items()},
                                refresh=False)
                bar.update(1)
            precise_bn(model, loader, cfg.precise_bn_batches, device)
            step = (epoch + 1) * len(loader)
            train_losses = {k: v / len(loader) for k, v in sums.items()}
            for k, v in train_losses.items():
                tb.add_scalar(f"perception/loss_{k}", v, step)
            tb.add_scalar("perception/lr", sched.get_last_lr()[0], step)
            tb.add_scalar("perception/images_per_s",
                          len(dataset) / (time.perf_counter() - t0), step)
            do_val = val_records is not None and (
                (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs)
            if do_val:
                det = Detector(TorchBackend(model, device), preprocessor, decode_options)
                val_metrics = evaluate_detector(det, val_records, cfg.min_visible,
                                                batch_size=cfg.eval.batch_size).metrics
                model.train()
                for k in ("mAP50", "mAP50_95", "precision", "recall"):
                    if val_metrics[k] is not None:
                        tb.add_scalar(f"perception/val_{k}", val_metrics[k], step)
                for name, pc in val_metrics["per_class"].items():
                    if pc["AP50"] is not None:
                        tb.add_scalar(f"perception/val_AP50_{name}", pc["AP50"], step)
            if val_records is None:
                score = -train_losses["total"]
            else:  # epochs without validation never become best.pt
                score = (val_metrics.get("mAP50") or 0.0) if do_val else float("-inf")
            history.append({"epoch": epoch + 1,
                            **{f"loss_{k}": v for k, v in train_losses.items()},
                            "val_mAP50": val_metrics.get("mAP50") if do_val else None})
            log.info("epoch %d/%d %s%s", epoch + 1, cfg.epochs,
                     " ".join(f"loss_{k}={v:.4f}" for k, v in train_losses.items()),
                     f" val mAP50={val_metrics.get('mAP50')}" if do_val else "")
            is_best = score > best
            best = max(best, score)
            state = {"format": FORMAT, "model_cfg": model_cfg, "state_dict": model.state_dict(),
                     "classes": list(CLASSES),
                     "preprocess_cfg": OmegaConf.to_container(cfg.preprocess, resolve=True),
                     "camera": camera,
                     "metrics": val_metrics, "epoch": epoch, "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                     "rng": rng_state(), "best_mAP50": best, "history": history}
            if is_best:
                save_checkpoint(best_path, {k: v for k, v in state.items()
                                            if k not in ("optimizer", "scheduler", "scaler")})
            save_checkpoint(last_path, state)
    finally:
        bar.close()
        tb.close()
    return {"epochs": cfg.epochs, "best_mAP50": best if val_records is not None else None,
            "last": val_metrics, "history": history, "params": count_parameters(model),
            "train_images": len(train_records), "init": cfg.get("init")}
