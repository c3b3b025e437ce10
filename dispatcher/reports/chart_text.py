"""Persian text in charts: shaped, right-to-left, and drawn with a font that has the letters.

Matplotlib 3.11 lays text out with libraqm (HarfBuzz shaping, FriBidi bidi and bracket mirroring),
so Persian letters join and mixed text such as `Campaign 3 (کمپین پاییز) via ghasedak` reads right;
the `chart` extra requires it. Reshaping the text ourselves on top of that (arabic-reshaper +
python-bidi) would reverse it a second time: looked at, it draws the letters apart and backwards.
`shaped` therefore leaves text alone when matplotlib shapes (`matplotlib_shapes`), and only on an
older matplotlib without libraqm falls back to arabic-reshaper + python-bidi when they are installed
(then brackets next to Persian may point the wrong way: python-bidi's rules stop before mirroring).

The font is Noto Sans Arabic (SIL OFL 1.1), installed with the project from PyPI
(`fontpkg-noto-sans-arabic`, the `chart` extra), never assumed on the host; it covers Persian
letters and digits and Latin. `FONT_FAMILIES` puts matplotlib's own DejaVu Sans after it for any
character it lacks.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

PERSIAN_FAMILY = "Noto Sans Arabic"
FONT_FAMILIES = [PERSIAN_FAMILY, "DejaVu Sans"]
_FONT_PACKAGE = "fontpkg_noto_sans_arabic"
_ARABIC_SCRIPT = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")


def font_file() -> Path | None:
    """The Persian font's TTF shipped by its PyPI package; None when that package is not installed."""
    try:
        files = resources.files(_FONT_PACKAGE) / "files"
    except ModuleNotFoundError:
        return None
    found = sorted(Path(str(f)) for f in files.iterdir() if f.name.lower().endswith((".ttf", ".otf")))
    return found[0] if found else None


@lru_cache(maxsize=1)
def register_font() -> list[str]:
    """Add the Persian font to matplotlib's font manager (once); the font families to draw with."""
    from matplotlib import font_manager

    path = font_file()
    if path is None:
        return ["DejaVu Sans"]  # still shaped; DejaVu Sans (shipped with matplotlib) has the letters
    font_manager.fontManager.addfont(str(path))
    return FONT_FAMILIES


@lru_cache(maxsize=1)
def matplotlib_shapes() -> bool:
    """True when matplotlib lays text out with libraqm (3.11 and later): it shapes and orders Persian."""
    from matplotlib import ft2font

    return bool(getattr(ft2font, "__libraqm_version__", None))


def shaped(text: str, engine_shapes: bool | None = None) -> str:
    """`text` ready for matplotlib: unchanged when it shapes Arabic script itself (`engine_shapes`,
    default `matplotlib_shapes()`) or the text has none; else reshaped into joined presentation forms in
    visual order when arabic-reshaper and python-bidi are installed (unchanged when they are not)."""
    if not _ARABIC_SCRIPT.search(text):
        return text
    if matplotlib_shapes() if engine_shapes is None else engine_shapes:
        return text
    try:
        import arabic_reshaper
        from bidi.algorithm import get_display  # the rules with mirroring (L4)
    except ImportError:
        return text
    return get_display(arabic_reshaper.reshape(text))
