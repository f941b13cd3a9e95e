"""COCO loading and validation, targets with min_visible, one preprocessing path everywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from perception.backends import Detector
from perception.coco_eval import predict_records
from perception.data import (
    DatasetError,
    DetectionDataset,
    load_coco_dirs,
    prepare_image,
    read_image_rgb,
)
from perception.preprocess import LetterboxResize, Normalize, Preprocessor
from perception.synthetic import write_synthetic_coco
from perception.video import FrameSource, SourceError

torch.set_num_threads(1)


@pytest.fixture
def dataset_dir(tmp_path):
    return write_synthetic_coco(tmp_path / "ds", n_images=4, seed=3)


def edit_annotations(directory, fn):
    path = directory / "annotations.json"
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_several_dirs_load_with_unique_ids(tmp_path):
    a = write_synthetic_coco(tmp_path / "a", n_images=3, seed=1)
    b = write_synthetic_coco(tmp_path / "b", n_images=2, seed=2)
    records = load_coco_dirs([a, b])
    assert len(records) == 5 and len({r.id for r in records}) == 5
    assert records[3].path.parent.parent == b
    assert all(r.boxes.shape == (len(r.cls), 4) for r in records)


def _box_outside(d):
    d["annotations"][0]["bbox"] = [250.0, 10.0, 20.0, 5.0]


def _unknown_category_id(d):
    d["annotations"][0]["category_id"] = 7


def _unknown_category_name(d):
    d["categories"][2]["name"] = "bicycle"


def _missing_image(d):
    d["images"][0]["file_name"] = "images/nope.png"


@pytest.mark.parametrize("edit,match", [
    (_box_outside, r"annotations.json: annotation id=1: box .* outside its image"),
    (_unknown_category_id, r"annotations.json: annotation id=1: unknown category_id 7"),
    (_unknown_category_name, r"annotations.json: unknown category .*bicycle"),
    (_missing_image, r"annotations.json: image file .*nope.png is missing"),
])
def test_invalid_coco_names_file_and_problem(dataset_dir, edit, match):
    edit_annotations(dataset_dir, edit)
    with pytest.raises(DatasetError, match=match):
        load_coco_dirs(dataset_dir)


def test_missing_and_corrupt_annotation_files(tmp_path, dataset_dir):
    with pytest.raises(DatasetError, match=r"empty/annotations.json: missing"):
        load_coco_dirs(tmp_path / "empty")
    (dataset_dir / "annotations.json").write_text('{"images": [')
    with pytest.raises(DatasetError, match=r"annotations.json: corrupt JSON"):
        load_coco_dirs(dataset_dir)


def test_unreadable_image_names_the_file(dataset_dir):
    records = load_coco_dirs(dataset_dir)
    records[0].path.write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"000000.png: missing or not a readable image"):
        read_image_rgb(records[0].path)


def test_low_visibility_objects_are_ignored_not_targets(dataset_dir):
    records = load_coco_dirs(dataset_dir)
    r = next(r for r in records if (r.visible < 0.3).any())
    pre = Preprocessor([LetterboxResize(256, 128), Normalize()])
    _, t = DetectionDataset([r], pre, min_visible=0.3)[0]
    assert int(t["mask"].sum()) == int((r.visible >= 0.3).sum())
    assert t["ignore"].sum() > 0
    _, t_all = DetectionDataset([r], pre, min_visible=0.0)[0]
    assert int(t_all["mask"].sum()) == len(r.cls)


def test_dataset_passes_neighbour_weight_to_the_targets(dataset_dir):
    records = load_coco_dirs(dataset_dir)
    pre = Preprocessor([LetterboxResize(256, 128), Normalize()])
    r = next(r for r in records if len(r.cls))
    _, plain = DetectionDataset([r], pre, min_visible=0.0, max_objects=16)[0]
    _, ringed = DetectionDataset([r], pre, min_visible=0.0, max_objects=16,
                                 neighbour_weight=0.5)[0]
    assert plain["mask"].shape == (16,) and ringed["mask"].shape == (16 * 9,)
    assert torch.equal(ringed["mask"][:16], plain["mask"])
    assert set(ringed["mask"][16:].unique().tolist()) == {0.0, 0.5}


def test_augmentation_is_seeded_per_sample_and_flips_boxes(dataset_dir):
    from perception.corruptions import RandomCorruption
    from perception.data import Augment

    records = load_coco_dirs(dataset_dir)
    pre = Preprocessor([LetterboxResize(256, 128), Normalize()])
    aug = Augment(hflip=1.0, photometric=0.5, corruption=RandomCorruption(p=0.5))
    ds = DetectionDataset(records, pre, augment=aug, seed=5)
    x1, t1 = ds[1]
    x2, t2 = ds[1]
    assert torch.equal(x1, x2) and torch.equal(t1["heatmap"], t2["heatmap"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1][0], x1)
    img = np.zeros((10, 20, 3), np.uint8)
    _, boxes = Augment(hflip=1.0, photometric=0)(img, np.array([[2.0, 1, 5, 4]]),
                                                 np.random.default_rng(0))
    np.testing.assert_array_equal(boxes, [[15.0, 1, 18, 4]])


class RecordingBackend:
    """Stands in for a model: remembers its input, returns empty heatmaps."""

    def __call__(self, x):
        self.x = x.clone()
        b, _, h, w = x.shape
        return torch.zeros(b, 3, h // 4, w // 4), torch.zeros(b, 2, h // 4, w // 4), \
            torch.zeros(b, 2, h // 4, w // 4)


def test_preprocessing_identical_in_train_val_and_detect_paths(dataset_dir):
    records = load_coco_dirs(dataset_dir)
    pre = Preprocessor([LetterboxResize(320, 160), Normalize()])  # letterbox 256x128 -> 320x160
    train_x, _ = DetectionDataset(records, pre, augment=None)[0]

    backend = RecordingBackend()
    detector = Detector(backend, pre)
    first_frame = next(iter(FrameSource(dataset_dir / "images")))  # what `detect` reads
    detector([first_frame])
    detect_x = backend.x[0]
    predict_records(detector, records[:1])  # what val-detector feeds
    val_x = backend.x[0]

    direct, _ = prepare_image(read_image_rgb(records[0].path), pre)
    for x in (detect_x, val_x, direct):
        np.testing.assert_array_equal(train_x.numpy(), x.numpy())


def test_frame_source_errors_name_the_input(tmp_path):
    with pytest.raises(SourceError, match=r"image folder .*empty"):
        FrameSource(tmp_path)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError, match=r"video .*broken.mp4: unreadable"):
        FrameSource(bad)
    with pytest.raises(SourceError, match=r"nothere.avi: no such file"):
        FrameSource(tmp_path / "nothere.avi")


def test_mp4_writer_pads_odd_frames_and_writes_h264(tmp_path):
    import imageio.v2 as imageio

    from perception.video import Mp4Writer

    writer = Mp4Writer(tmp_path / "odd.mp4", fps=5)
    for i in range(3):
        writer.append(np.full((51, 101, 3), 40 * i, np.uint8))
    assert not (tmp_path / "odd.mp4").exists()  # only renamed into place on close
    writer.close()
    with imageio.get_reader(str(tmp_path / "odd.mp4")) as reader:
        frames = list(reader.iter_data())
    assert len(frames) == 3 and frames[0].shape == (52, 102, 3)
