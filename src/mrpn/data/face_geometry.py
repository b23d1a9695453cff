"""Face-crop geometry shared by training and serving (issue 9 item 3).

A face crop is the square around the detector's box with `margin` x the box's larger side added on
every side (`mrpn.data.faces.square_region`). FER2013 images are tight crops. Measured with one
detector on both kinds of picture (OpenCV's Haar cascade, the default of `mrpn prepare`/`predict`,
re-run on each 48x48 picture; `tools/fer_crop_geometry.py`, docs/results/fer2013/crop_geometry.json),
the face box spans, as a fraction of the picture's side (median):

    FER2013 training images                         0.974
    RAVDESS actor-1 video, serving crops, margin 0   0.896
    RAVDESS actor-1 video, serving crops, margin 0.25 (prepare's default)  0.609

so with margin 0.25 the face is 1.6x smaller than in FER2013 (hair, neck and background fill the
rest), while margin 0 is within 8 % of FER2013's scale, inside the pretraining's zoom augmentation
(0.85-1.15). A FER2013-pretrained F_v should therefore be fine-tuned and served on margin-0 crops.

The model remembers the margin of the crops it was trained on (`data.face_margin` in its config)
and `predict` cuts faces with it, so training and serving crops are the same kind of picture:
- a cache made by `mrpn prepare` records its margin in prepare.json: that margin is used;
- the paired benchmark feeds FER2013 faces: FER2013's geometry, FER_MARGIN.
"""
from __future__ import annotations

FER_MARGIN = 0.0        # the detector's box itself: the closest non-negative margin to FER2013's crops (above)


def training_face_margin(cfg, source) -> tuple[float, str | None]:
    """(margin of the faces the model is trained on, a note for the log or None)."""
    if cfg.data.dataset == "paired":
        return FER_MARGIN, None
    cache = getattr(source, "cache", None)
    info = cache.info if cache is not None else {}  # prepare.json (a property of Cache)
    margin = (info.get("prepare_config") or {}).get("margin")
    if margin is None:
        return float(cfg.data.face_margin), None
    margin = float(margin)
    note = None
    if cfg.train.pretrained_v and margin > 0.1:
        note = (f"the cache's faces were cut with margin {margin:g} (face at {1 / (1 + 2 * margin):.2f} of the crop); "
                f"FER2013-pretrained F_v saw tight crops (margin ~{FER_MARGIN:g}): `mrpn prepare --margin 0` "
                f"gives the same geometry")
    return margin, note
