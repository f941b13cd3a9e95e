"""Box drawing: every box is drawn; only boxes tall enough to read get a label."""

from __future__ import annotations

import numpy as np

from sim.annotate import CLASS_COLORS, draw_boxes


def test_every_box_is_drawn_but_only_tall_boxes_are_labelled():
    image = np.zeros((120, 200, 3), np.uint8)
    tall, short = np.array([[20, 40, 60, 90]], float), np.array([[120, 60, 124, 64]], float)
    for box in (tall, short):
        plain = draw_boxes(image, box, ["vehicle"])
        x0, y0, x1, y1 = box[0].astype(int)
        assert (plain[y0, x0:x1] == CLASS_COLORS["vehicle"]).all()  # the outline is there
    labelled_tall = draw_boxes(image, tall, ["vehicle"], ["vehicle 0.90"])
    assert (labelled_tall[:40] != 0).any()  # text above the box
    assert (labelled_tall != draw_boxes(image, tall, ["vehicle"])).any()
    # a 4 px box: the label would bury its neighbours at the horizon, so it is left out...
    labelled_short = draw_boxes(image, short, ["vehicle"], ["vehicle 0.90"])
    np.testing.assert_array_equal(labelled_short, draw_boxes(image, short, ["vehicle"]))
    # ...unless the drawing is scaled up enough to make it readable
    scaled = draw_boxes(image, short, ["vehicle"], ["vehicle 0.90"], scale=3)
    assert (scaled != draw_boxes(image, short, ["vehicle"], scale=3)).any()
