"""Detector math: target encoding/decoding round trip, model shapes, losses, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from perception.checkpoint import (
    FORMAT,
    CheckpointError,
    architecture,
    build_model,
    check_state_dict,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from perception.decode import (
    DecodeOptions,
    cell_boxes,
    check_peak_iou,
    check_snap_px,
    class_thresholds,
    decode,
    describe_thresh,
    encode_targets,
    snap_to_pixels,
    to_image_detections,
)
from perception.losses import box_inter_union, centre_boxes, detector_loss, masked_giou_loss
from perception.model import STRIDE, CenterNet, count_parameters
from perception.preprocess import Letterbox

torch.set_num_threads(1)
TINY = dict(widths=(8, 16, 16, 32), depths=(0, 0, 0, 0), neck_channels=16, head_channels=16)


def targets_as_outputs(t: dict, input_hw: tuple[int, int], stride: int = STRIDE):
    """Dense size/offset maps from the encoder's per-object targets (what a perfect model says)."""
    h, w = input_hw[0] // stride, input_hw[1] // stride
    size = torch.zeros(1, 2, h * w)
    offset = torch.zeros(1, 2, h * w)
    for k in np.flatnonzero(t["mask"]):
        size[0, :, t["index"][k]] = torch.from_numpy(t["size"][k])
        offset[0, :, t["index"][k]] = torch.from_numpy(t["offset"][k])
    heat = torch.from_numpy(t["heatmap"])[None]
    return heat, size.view(1, 2, h, w), offset.view(1, 2, h, w)


@pytest.mark.parametrize("stride", [4, 2])
def test_decode_recovers_encoded_boxes_exactly(stride):
    input_hw = (128, 256)
    boxes = np.array([[10.3, 20.7, 40.1, 41.9], [100.0, 60.5, 106.2, 67.0],
                      [180.5, 10.0, 250.0, 50.25], [60.0, 90.0, 64.0, 99.0]], np.float32)
    cls = np.array([0, 1, 2, 1])
    t = encode_targets(boxes, cls, input_hw, stride=stride)
    assert t["mask"].sum() == 4
    assert t["heatmap"].shape == (3, 128 // stride, 256 // stride)
    (got_boxes, got_cls, got_score), = decode(*targets_as_outputs(t, input_hw, stride),
                                              score_thresh=0.5, stride=stride)
    assert len(got_boxes) == 4
    order = np.lexsort((got_boxes[:, 0].numpy(),))
    want = np.lexsort((boxes[:, 0],))
    np.testing.assert_allclose(got_boxes.numpy()[order], boxes[want], atol=1e-3)
    np.testing.assert_array_equal(got_cls.numpy()[order], cls[want])
    np.testing.assert_allclose(got_score.numpy(), 1.0)


def test_per_class_score_thresholds_keep_each_class_at_its_own_score():
    input_hw = (64, 64)
    boxes = np.array([[4, 4, 20, 20], [40, 4, 48, 20], [4, 40, 20, 56]], np.float32)
    t = encode_targets(boxes, np.array([0, 1, 2]), input_hw)
    heat, size, offset = targets_as_outputs(t, input_hw)
    heat *= 0.4  # every peak scores 0.4
    (_, cls, _), = decode(heat, size, offset, score_thresh=0.3)
    assert sorted(cls.tolist()) == [0, 1, 2]
    per_class = {"vehicle": 0.3, "pedestrian": 0.5, "obstacle": 0.35}
    (_, cls, _), = decode(heat, size, offset, score_thresh=per_class)
    assert sorted(cls.tolist()) == [0, 2]  # the pedestrian needs 0.5
    assert describe_thresh(per_class) == "vehicle 0.3, pedestrian 0.5, obstacle 0.35"
    assert describe_thresh(0.3) == "0.3"
    np.testing.assert_allclose(class_thresholds(0.25).numpy(), [0.25] * 3)
    with pytest.raises(ValueError, match=r"one per class naming each of \['vehicle', "
                                         r"'pedestrian', 'obstacle'\]"):
        class_thresholds({"vehicle": 0.3})


@pytest.mark.parametrize("bad", [{"vehicle": 0.3, "pedestrian": 0.3},
                                 {"vehicle": 0.3, "pedestrian": 0.3, "obstacle": 0.3, "cat": 0.1},
                                 1.5, {"vehicle": 0.3, "pedestrian": -0.1, "obstacle": 0.3}])
def test_bad_score_thresholds_are_refused_naming_the_key(bad):
    with pytest.raises(ValueError, match=r"^score_thresh="):
        class_thresholds(bad)
    with pytest.raises(ValueError, match=r"score_thresh="):
        DecodeOptions(score_thresh=bad)


def _two_tiny_neighbours(stride: int = 2):
    """Two 2x2 px vehicles whose centres fall in adjacent cells, the right one weaker."""
    boxes = np.array([[9.0, 9.0, 11.0, 11.0], [11.0, 9.0, 13.0, 11.0]], np.float32)
    t = encode_targets(boxes, np.array([0, 0]), (32, 32), stride=stride)
    heat, size, offset = targets_as_outputs(t, (32, 32), stride)
    heat[0, 0, 5, 6] = 0.8  # a real detector scores the two unequally
    return boxes, heat, size, offset


def test_box_aware_peaks_keep_adjacent_small_objects_that_max_pool_merges():
    boxes, heat, size, offset = _two_tiny_neighbours()
    (pooled, _, _), = decode(heat, size, offset, score_thresh=0.5, stride=2)
    assert len(pooled) == 1  # CenterNet's 3x3 max-pool drops the weaker neighbour
    (kept, _, score), = decode(heat, size, offset, score_thresh=0.5, stride=2, peak_iou=0.5)
    np.testing.assert_allclose(kept.numpy(), boxes, atol=1e-4)
    np.testing.assert_allclose(score.numpy(), [1.0, 0.8])


def dense_boxes(size, offset, stride):
    """(B, 4, h, w) xyxy input px decoded at every cell: the reference the sparse decoding
    (cell_boxes at the judged cells only) must agree with."""
    b, _, h, w = size.shape
    grid = torch.meshgrid(*(torch.arange(n) for n in (b, h, w)), indexing="ij")
    return cell_boxes(size, offset, stride, *grid).permute(0, 3, 1, 2)


def _whole_map_peaks(heatmap, boxes, peak_iou):
    """The peak rules over every cell at once (the former implementation): the reference that
    find_peaks must agree with. peak_iou None: CenterNet's 3x3 max-pool."""
    import torch.nn.functional as F

    if peak_iou is None:
        return F.max_pool2d(heatmap, 3, stride=1, padding=1) == heatmap
    h, w = heatmap.shape[-2:]
    heat_pad = F.pad(heatmap, (1, 1, 1, 1), value=-1.0)
    box_pad = F.pad(boxes, (1, 1, 1, 1))
    keep = torch.ones_like(heatmap, dtype=torch.bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == dx == 0:
                continue
            window = (..., slice(1 + dy, 1 + dy + h), slice(1 + dx, 1 + dx + w))
            inter, union = box_inter_union(boxes.movedim(1, -1), box_pad[window].movedim(1, -1))
            overlap = inter / union.clamp(min=1e-9) > peak_iou
            keep &= ~((heat_pad[window] > heatmap) & overlap[:, None])
    return keep


@pytest.mark.parametrize("peak_iou", [0.3, None])
def test_peaks_judged_above_a_floor_are_those_of_the_whole_map(peak_iou):
    """find_peaks judges only the cells over the lowest class threshold (`floor`), decoding
    boxes there and at their neighbours only: for them, the same peaks, scores and boxes as
    judging every cell of the whole map."""
    from perception.decode import find_peaks

    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        heat = torch.rand(2, 3, 16, 32, generator=g) ** 4  # mostly low, some peaks
        size = torch.randn(2, 2, 16, 32, generator=g) * 0.5
        offset = torch.rand(2, 2, 16, 32, generator=g)
        boxes = dense_boxes(size, offset, 4)
        full = _whole_map_peaks(heat, boxes, peak_iou)
        for floor in (None, 0.2, 1.1):
            (b, c, y, x), score, got = find_peaks(heat, size, offset, 4, peak_iou, floor)
            mask = torch.zeros_like(full)
            mask[b, c, y, x] = True
            assert torch.equal(mask, full & (heat >= (floor or 0.0)))
            assert torch.equal(score, heat[b, c, y, x])
            assert torch.equal(got, boxes.permute(0, 2, 3, 1)[b, y, x])
        assert 0 < int(((heat >= 0.2) & full).sum()) < int(full.sum())


@pytest.mark.parametrize("stride", [4, 2])
def test_neighbour_targets_decode_the_same_box_and_box_aware_peaks_drop_them(stride):
    input_hw = (128, 256)
    boxes = np.array([[10.3, 20.7, 40.1, 41.9], [100.0, 60.5, 106.2, 67.0],
                      [180.5, 10.0, 250.0, 50.25], [60.0, 90.0, 64.0, 99.0]], np.float32)
    t = encode_targets(boxes, np.array([0, 1, 2, 1]), input_hw, stride=stride,
                       neighbour_weight=0.25)
    centre, around = t["mask"][:128], t["mask"][128:]
    assert (centre == 1).sum() == 4 and set(around[around > 0]) == {0.25}
    assert (around > 0).sum() == 4 * 8  # no cell is shared by two objects here
    heat, size, offset = targets_as_outputs(t, input_hw, stride)
    # a trained detector: its class scores high at the centre and on the ring around it only
    entry = torch.zeros(heat.shape[-2] * heat.shape[-1])
    entry[t["index"][128:][around > 0]] = 0.6
    entry[t["index"][:4]] = 1.0
    heat = torch.where(heat > 1e-3, entry.view(heat.shape[-2:]), 0.0)
    (got, _, _), = decode(heat, size, offset, score_thresh=0.5, stride=stride, peak_iou=0.5)
    np.testing.assert_allclose(got.numpy()[np.argsort(got[:, 0].numpy())],
                               boxes[np.argsort(boxes[:, 0])], atol=1e-3)
    # each neighbour cell alone decodes its object's box too
    every_cell = dense_boxes(size, offset, stride).view(4, -1).T.numpy()
    around_boxes = every_cell[t["index"][128:][around > 0]]
    assert min(max(_iou(d, b) for b in boxes) for d in around_boxes) > 0.9999


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_neighbour_cells_between_two_objects_get_no_box():
    boxes = np.array([[9.0, 9.0, 11.0, 11.0], [13.0, 9.0, 15.0, 11.0]], np.float32)
    t = encode_targets(boxes, np.array([0, 0]), (32, 32), stride=2, max_objects=2,
                       neighbour_weight=1.0)
    cells = t["index"][t["mask"] > 0].tolist()
    assert 5 * 16 + 6 not in cells[2:]  # cell (6, 5) touches both centres (5, 5) and (7, 5)
    assert len(cells) == 2 + 2 * 8 - 2 * 3  # each loses the 3 cells of the shared column


@pytest.mark.parametrize("bad", [1.0, -0.1, "high", True])
def test_bad_peak_iou_names_the_key(bad):
    with pytest.raises(ValueError, match="peak_iou"):
        check_peak_iou(bad)
    with pytest.raises(ValueError, match=r"^peak_iou="):
        DecodeOptions(peak_iou=bad)
    assert check_peak_iou(None) is None and check_peak_iou(0) == 0.0


@pytest.mark.parametrize("bad", [0, -5, 2.5, "100", True])
def test_bad_topk_names_the_key(bad):
    with pytest.raises(ValueError, match=r"^topk=.*whole number >= 1"):
        DecodeOptions(topk=bad)


def test_decode_options_come_from_a_config_and_overrides_are_checked():
    cfg = OmegaConf.create({"score_thresh": {"vehicle": 0.4, "pedestrian": 0.3, "obstacle": 0.5},
                            "topk": 50, "peak_iou": 0, "snap_px": False, "batch_size": 8})
    options = DecodeOptions.from_cfg(cfg)
    assert (options.topk, options.peak_iou, options.snap_px) == (50, 0.0, False)
    assert isinstance(options.peak_iou, float)
    assert class_thresholds(options.score_thresh).tolist() == pytest.approx([0.4, 0.3, 0.5])
    assert DecodeOptions.from_cfg(cfg, score_thresh=0.001).score_thresh == 0.001
    with pytest.raises(ValueError, match=r"^score_thresh="):
        DecodeOptions.from_cfg(cfg, score_thresh=2.0)
    with pytest.raises(ValueError, match=r"^snap_px="):
        DecodeOptions.from_cfg(OmegaConf.merge(cfg, {"snap_px": "yes"}))


def test_snap_to_pixels_rounds_edges_and_keeps_every_box_a_pixel_wide():
    boxes = np.array([[10.4, 5.6, 13.49, 8.51],  # edges within half a pixel of the grid
                      [3.2, 1.1, 3.4, 1.3],  # rounds to nothing: the pixel under its centre
                      [319.8, 159.7, 320.0, 160.0]], np.float32)  # same, at the image corner
    np.testing.assert_array_equal(snap_to_pixels(boxes, (320, 160)),
                                  [[10, 6, 13, 9], [3, 1, 4, 2], [319, 159, 320, 160]])
    assert snap_to_pixels(np.zeros((0, 4), np.float32), (320, 160)).shape == (0, 4)


def test_snapping_puts_a_tiny_box_placed_within_half_a_pixel_back_on_its_truth():
    truth = torch.tensor([[10.0, 10.0, 12.0, 12.0]])  # a 2x2 px far pedestrian
    regressed = torch.tensor([[10.4, 9.6, 12.4, 11.6]])  # each edge 0.4 px off: IoU 0.47
    lb = Letterbox.identity((64, 64))
    kw = dict(cls=torch.tensor([1]), score=torch.tensor([0.9]), letterbox=lb)
    raw = to_image_detections(regressed, **kw).boxes
    snapped = to_image_detections(regressed, **kw, snap_px=True).boxes

    def iou(b):
        inter, union = box_inter_union(torch.from_numpy(b), truth)
        return float(inter / union)

    assert iou(raw) < 0.5  # a miss at COCO's IoU 0.5
    assert iou(snapped) == 1.0


@pytest.mark.parametrize("bad", ["maybe", 1, None])
def test_bad_snap_px_names_the_key(bad):
    with pytest.raises(ValueError, match=r"^snap_px="):
        check_snap_px(bad)
    with pytest.raises(ValueError, match=r"^snap_px="):
        DecodeOptions(snap_px=bad)


def test_encoder_ignores_low_visibility_regions_but_not_real_objects():
    t = encode_targets(np.array([[0, 0, 16, 16]]), np.array([0]), (64, 64),
                       ignore_boxes=np.array([[32, 32, 48, 48], [0, 0, 16, 16]]),
                       ignore_cls=np.array([1, 0]))
    assert t["ignore"][1, 8:12, 8:12].all()  # the ignored pedestrian's cells
    assert t["ignore"][0, 2, 2] == 0  # never over a real object's centre


def test_model_shapes_and_features():
    model = CenterNet(**TINY).eval()
    x = torch.zeros(2, 3, 64, 128)
    out, feats = model(x, return_features=True)
    assert out.heatmap.shape == (2, 3, 16, 32)
    assert out.size.shape == out.offset.shape == (2, 2, 16, 32)
    assert feats.shape == (2, 16, 16, 32)
    assert torch.equal(model.features(x), feats)
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.zeros(1, 3, 60, 128))
    assert count_parameters(model) > 0


def test_stride_2_model_keeps_stride_4_weights_and_doubles_resolution():
    fine = CenterNet(**TINY, out_stride=2).eval()
    out, feats = fine(torch.zeros(1, 3, 64, 128), return_features=True)
    assert fine.stride == 2
    assert out.heatmap.shape == (1, 3, 32, 64) and feats.shape == (1, 16, 32, 64)
    # every stride-4 parameter exists under the same name, so old checkpoints still load
    coarse_keys = set(CenterNet(**TINY).state_dict())
    assert coarse_keys < set(fine.state_dict())
    with pytest.raises(ValueError, match=r"detector.out_stride=8: choose one of \(2, 4\)"):
        CenterNet(**TINY, out_stride=8)


def test_stride_1_stem_feeds_the_first_stage_and_is_off_by_default():
    plain, stem = CenterNet(**TINY, out_stride=2), CenterNet(**TINY, out_stride=2, stem_channels=8)
    assert len(plain.stem) == 0 and not any(k.startswith("stem") for k in plain.state_dict())
    assert stem.stem[0][0].weight.shape == (8, 3, 3, 3)  # full resolution: stride 1
    assert stem.stem[0][0].stride == (1, 1)
    assert stem.stages[0][0][0].weight.shape[1] == 8  # the stride-2 stage reads the stem
    out = stem.eval()(torch.zeros(1, 3, 64, 128))
    assert out.heatmap.shape == plain.eval()(torch.zeros(1, 3, 64, 128)).heatmap.shape
    # the stem changes what the first stage sees, so the rest of the weights are not shared
    with pytest.raises(CheckpointError, match="another architecture"):
        check_state_dict(stem, plain.state_dict(), "plain.pt")
    with pytest.raises(ValueError, match=r"detector.stem_channels=-1: choose 0 \(none\)"):
        CenterNet(**TINY, stem_channels=-1)


def test_configs_from_before_an_option_existed_are_the_same_architecture():
    old = {"_target_": "perception.model.CenterNet", **TINY, "out_stride": 2}
    assert architecture(old) == architecture({**old, "stem_channels": 0})
    assert architecture(old) != architecture({**old, "stem_channels": 8})
    assert architecture(old) != architecture({**old, "out_stride": 4})


def test_loss_falls_when_fitting_one_target():
    torch.manual_seed(0)
    model = CenterNet(**TINY)
    t = encode_targets(np.array([[8, 8, 40, 30], [70, 30, 80, 44]]), np.array([0, 1]), (64, 128))
    targets = {k: torch.from_numpy(v)[None] for k, v in t.items()}
    x = torch.rand(1, 3, 64, 128)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    losses = []
    for _ in range(30):
        loss = detector_loss(model(x), targets, giou_weight=1.0)
        opt.zero_grad()
        loss["total"].backward()
        opt.step()
        losses.append(loss["total"].item())
    assert losses[-1] < 0.3 * losses[0]


def test_giou_loss_is_zero_on_the_target_and_matches_a_hand_computed_shift():
    size = torch.log(torch.tensor([[[2.0, 2.0]]]))  # a 2x2-cell box
    target = centre_boxes(size, torch.tensor([[[0.5, 0.5]]]))
    torch.testing.assert_close(target, torch.tensor([[[-0.5, -0.5, 1.5, 1.5]]]))
    mask = torch.ones(1, 1)
    assert masked_giou_loss(target, target, mask).item() == pytest.approx(0.0, abs=1e-6)
    # shifted one cell right: intersection 2, union 6, enclosing box 6 -> GIoU 1/3
    shifted = centre_boxes(size, torch.tensor([[[1.5, 0.5]]]))
    assert masked_giou_loss(shifted, target, mask).item() == pytest.approx(2 / 3, abs=1e-6)
    # disjoint boxes go below IoU 0 (the enclosing-box penalty), padding slots count nothing
    far = centre_boxes(size, torch.tensor([[[4.5, 0.5]]]))
    assert masked_giou_loss(far, target, mask).item() > 1.0
    assert masked_giou_loss(far, target, torch.zeros(1, 1)).item() == 0.0


def test_giou_term_is_added_only_when_weighted():
    torch.manual_seed(0)
    model = CenterNet(**TINY)
    t = encode_targets(np.array([[8, 8, 40, 30], [70, 30, 80, 44]]), np.array([0, 1]), (64, 128))
    targets = {k: torch.from_numpy(v)[None] for k, v in t.items()}
    out = model(torch.rand(1, 3, 64, 128))
    plain = detector_loss(out, targets)
    with_giou = detector_loss(out, targets, giou_weight=2.0)
    assert "giou" not in plain and with_giou["giou"].item() > 0
    torch.testing.assert_close(with_giou["total"], plain["total"] + 2.0 * with_giou["giou"])


def _state(model, cfg):
    return {"format": FORMAT, "model_cfg": cfg, "state_dict": model.state_dict(),
            "classes": ["vehicle", "pedestrian", "obstacle"],
            "preprocess_cfg": {"_target_": "builtins.dict"}}


def test_checkpoint_round_trip_and_errors(tmp_path):
    cfg = {"_target_": "perception.model.CenterNet", **TINY}
    model = CenterNet(**TINY)
    path = tmp_path / "det.pt"
    save_checkpoint(path, _state(model, cfg))
    again = build_model(load_checkpoint(path), path)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)

    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt.pt.*not a readable torch file"):
        load_checkpoint(bad)

    other = tmp_path / "other_arch.pt"
    state = _state(CenterNet(**{**TINY, "neck_channels": 8}), cfg)  # weights don't fit cfg
    save_checkpoint(other, state)
    with pytest.raises(CheckpointError, match="other_arch.pt.*another architecture"):
        build_model(load_checkpoint(other), other)

    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt.*not a roadsight detector"):
        load_checkpoint(foreign)

    with pytest.raises(CheckpointError, match="missing.pt.*not found"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("camera", ["bev", "front", "surround"])
def test_every_camera_has_a_shipped_default(camera):
    path = resolve_checkpoint(None, camera=camera)
    assert path.name == f"detector_{camera}.pt" and path.is_file()


def test_a_relative_checkpoint_is_found_from_the_repo_root_too(monkeypatch, tmp_path):
    """detect / val-detector / export run from another directory find models/... of the repo;
    a file of that name in the working directory wins; a missing one stays as given."""
    from roadsight.paths import MODELS_DIR

    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("models/detector_bev_tiny.pt") == MODELS_DIR / "detector_bev_tiny.pt"
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "detector_bev_tiny.pt").write_bytes(b"local")
    assert resolve_checkpoint("models/detector_bev_tiny.pt") == Path("models/detector_bev_tiny.pt")
    assert resolve_checkpoint("models/none.pt") == Path("models/none.pt")


@pytest.mark.parametrize("camera", ["front", "surround"])
def test_missing_default_checkpoint_names_the_training_command(monkeypatch, tmp_path, camera):
    monkeypatch.setattr("perception.checkpoint.MODELS_DIR", tmp_path)
    with pytest.raises(CheckpointError, match=f"detector_{camera}.pt.*make datasets-{camera} "
                                              f"models/detector_{camera}.pt"):
        resolve_checkpoint(None, camera=camera)


def test_fused_inference_model_matches_the_original():
    from perception.model import fuse_conv_bn

    torch.manual_seed(0)
    model = CenterNet(**TINY)
    model.train()
    model(torch.rand(4, 3, 64, 64))  # non-trivial BatchNorm running stats
    model.eval()
    fused = fuse_conv_bn(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.rand(2, 3, 64, 128)
    with torch.no_grad():
        (a, fa), (b, fb) = model(x, return_features=True), fused(x, return_features=True)
    for u, v in zip((*a, fa), (*b, fb), strict=True):
        torch.testing.assert_close(u, v, atol=1e-5, rtol=1e-4)
    assert model.training is False and any(
        isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
