"""Inference backends (torch, onnxruntime) behind one `Detector` that maps images to Detections."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate

from perception.checkpoint import CheckpointError, build_model, load_checkpoint
from perception.data import prepare_image
from perception.decode import DecodeOptions, Detections, to_image_detections
from perception.model import CenterNet, ExportWrapper, fuse_conv_bn
from roadsight.device import resolve_device_name
from roadsight.errors import ConfigError
from roadsight.io import atomic_write_bytes

log = logging.getLogger(__name__)
Outputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # heatmap probs, size, offset


def resolve_device(device: str = "auto") -> torch.device:
    """`device=` (auto | cpu | cuda | cuda:N) -> torch.device; ConfigError for any other value
    or a CUDA device this machine lacks."""
    return torch.device(resolve_device_name(device))


class TorchBackend:
    """(B, 3, H, W) float32 -> (heatmap probabilities, size, offset) on the CPU."""

    name = "torch"

    def __init__(self, model: CenterNet, device: str | torch.device = "auto"):
        self.device = resolve_device(device) if isinstance(device, str) else device
        # BatchNorm folded into the convs: same outputs, less time (training model untouched);
        # channels-last memory: the convs' fast path on CPU (about 0.8x the time, measured)
        self.model = ExportWrapper(fuse_conv_bn(model)).to(self.device).eval().to(
            memory_format=torch.channels_last)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> Outputs:
        out = self.model(self._input(x))
        return tuple(o.float().cpu().contiguous() for o in out)

    @torch.inference_mode()
    def with_features(self, x: torch.Tensor) -> tuple[Outputs, torch.Tensor]:
        """ONE forward: `__call__`'s outputs (on the CPU) and the neck feature map
        (B, C, H/s, W/s), left on the backend's device (the caller pools it there)."""
        out, feats = self.model.model(self._input(x), return_features=True)
        heads = (torch.sigmoid(out.heatmap), out.size, out.offset)  # as ExportWrapper
        return tuple(o.float().cpu().contiguous() for o in heads), feats.contiguous()


class OnnxBackend:
    """The same contract through onnxruntime on an exported `detector.onnx`."""

    name = "onnx"

    def __init__(self, path: str | Path, threads: int = 0):
        import onnxruntime as ort  # imported here: only this backend needs it

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        # idle threads sleep instead of spinning: in the training loop the env workers need the
        # cores between two forwards (spinning made onnx slower than torch there)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            raise CheckpointError(f"onnx model {path}: onnxruntime cannot load it: {e}") from e
        self.input_name = self.session.get_inputs()[0].name
        self.path = Path(path)

    def __call__(self, x: torch.Tensor) -> Outputs:
        outs = self.session.run(None, {self.input_name: x.cpu().numpy().astype(np.float32,
                                                                              copy=False)})
        return tuple(torch.from_numpy(o) for o in outs)


class Detector:
    """Images -> Detections: shared preprocessing, a backend, peak decoding."""

    def __init__(self, backend: Callable[[torch.Tensor], Outputs], preprocessor: Callable,
                 options: DecodeOptions | None = None):
        self.backend, self.preprocessor = backend, preprocessor
        self.options = DecodeOptions() if options is None else options

    def detect_batch(self, x: torch.Tensor, letterboxes: Sequence) -> list[Detections]:
        """Already preprocessed (B, 3, H, W) batch and its letterboxes -> Detections per image."""
        return self._decode(self.backend(x), x, letterboxes)

    def _decode(self, outputs: Outputs, x: torch.Tensor, letterboxes: Sequence
                ) -> list[Detections]:
        heat, size, offset = outputs
        stride = x.shape[-2] // heat.shape[-2]  # the model's output stride, from the shapes
        decoded = self.options.decode(heat, size, offset, stride)
        return [to_image_detections(*d, lb, self.options.snap_px)
                for d, lb in zip(decoded, letterboxes, strict=True)]

    def prepare(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, list]:
        """(H, W, 3) uint8 RGB images -> the (B, 3, H', W') batch and its letterboxes."""
        prepared = [prepare_image(im, self.preprocessor) for im in images]
        return torch.stack([p[0] for p in prepared]), [p[1] for p in prepared]

    def __call__(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """(H, W, 3) uint8 RGB images (same input size after preprocessing) -> Detections."""
        return self.detect_batch(*self.prepare(images))

    def detect_with_features(self, images: Sequence[np.ndarray]
                             ) -> tuple[list[Detections], torch.Tensor]:
        """Detections and the neck feature map (B, C, h, w) (on the backend's device) from ONE
        forward pass; the torch backend only (an exported ONNX model has no feature output)."""
        if not hasattr(self.backend, "with_features"):
            raise ConfigError(f"the {getattr(self.backend, 'name', '?')} backend returns no "
                              f"feature map; use perception.backend=torch")
        x, letterboxes = self.prepare(images)
        outputs, feats = self.backend.with_features(x)
        return self._decode(outputs, x, letterboxes), feats


def input_hw(preprocessor) -> tuple[int, int]:
    """Network input (H, W) fixed by the preprocessor's resize/letterbox op."""
    size = getattr(preprocessor, "input_size", None)
    if size is None:
        raise ConfigError(f"{preprocessor!r} has no resize/letterbox op; the detector needs a "
                          f"fixed input size (multiples of 16)")
    return int(size[1]), int(size[0])


def load_detector(checkpoint: str | Path, backend: str = "torch",
                  onnx_path: str | Path | None = None, device: str = "auto",
                  options: DecodeOptions | None = None,
                  export_dir: str | Path | None = None) -> tuple[Detector, dict]:
    """Detector from a checkpoint (preprocessing from the checkpoint); returns it and the state.

    backend="onnx" runs `onnx_path` (from `roadsight export`) in onnxruntime; without it the
    checkpoint is exported to `export_dir`/detector.onnx first. `options` (default:
    `DecodeOptions()`) were checked when they were made, before anything is loaded; a null
    `score_thresh` becomes the checkpoint's stored thresholds, else 0.3.
    """
    state = load_checkpoint(checkpoint)
    preprocessor = instantiate(state["preprocess_cfg"])
    if backend == "torch":
        engine = TorchBackend(build_model(state, checkpoint), device)
    elif backend == "onnx":
        if onnx_path is None:
            if export_dir is None:
                raise ConfigError("backend=onnx needs onnx=PATH or an export directory")
            onnx_path = export_onnx(build_model(state, checkpoint),
                                    Path(export_dir) / "detector.onnx", input_hw(preprocessor))
        # as many threads as torch has in this process: the job's (or env worker's) share
        engine = OnnxBackend(onnx_path, threads=torch.get_num_threads())
    else:
        raise ConfigError(f"unknown backend {backend!r}; choose torch or onnx")
    # score_thresh None: the checkpoint's stored per-class thresholds (DecodeOptions.for_checkpoint)
    options = (DecodeOptions() if options is None else options).for_checkpoint(state)
    return Detector(engine, preprocessor, options), state


def export_onnx(model: CenterNet, path: str | Path, input_hw: tuple[int, int],
                opset: int = 17) -> Path:
    """Write `model` (eval mode) to ONNX: input "image" (B, 3, H, W) -> heatmap, size, offset.

    Batch, height and width are dynamic axes (a conv net; H and W must stay multiples of 16).
    Written to a temporary file first, then renamed.
    """
    wrapper = ExportWrapper(model).cpu().eval()
    dummy = torch.zeros(1, 3, *input_hw)
    axes = {0: "batch", 2: "height", 3: "width"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            wrapper, (dummy,), buf, dynamo=False, opset_version=opset,
            input_names=["image"], output_names=["heatmap", "size", "offset"],
            dynamic_axes={"image": axes, "heatmap": axes, "size": axes, "offset": axes},
        )
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def measure_latency(backend: Callable[[torch.Tensor], Outputs], input_hw: tuple[int, int],
                    batch: int = 1, repeats: int = 20, warmup: int = 3) -> dict:
    """Median wall time of one backend call on a (batch, 3, H, W) input: ms per call and frame."""
    import time

    x = torch.rand(batch, 3, *input_hw, generator=torch.Generator().manual_seed(0))
    for _ in range(warmup):
        backend(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        backend(x)
        times.append(time.perf_counter() - t0)
    ms = 1000 * float(np.median(times))
    return {"batch": batch, "input_hw": list(input_hw), "ms_per_call": ms,
            "ms_per_frame": ms / batch}
