"""Options as they arrive from outside, parsed once and strictly.

Every front end that receives options as text or JSON (the web app's form, the TorchServe
handler's JSON, form fields and ``X-Stylekit-*`` headers, the CLI's arguments) turns them into
typed values here, so one rule holds on every path:

- sizes are integers written in ASCII digits: no floats (``1.5``), no signs (``+7``), no
  other scripts' digits (``٣``, which Python's ``int()`` accepts), within a stated range;
- fractions are finite numbers: ``nan``, ``inf`` and ``1e309`` (which JSON decodes to inf) are
  refused rather than passed on;
- on/off options are a bool, 0/1 or a word (true/false, yes/no, on/off);
- ``scale`` is a finite number from :data:`MIN_SCALE` to :data:`MAX_SCALE`;
- a style is a name (checked for length and printable characters, looked up by the caller in
  names and aliases only, never as a file) or a blend of names, written ``a=0.7,b=0.3``, as a
  JSON object, or as a mapping.

Every refusal is a :class:`~sdk.errors.BadOptionError` with one sentence, which servers
answer with 400. The value a message quotes is clipped, so a 10,000-character field never
comes back whole.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sdk.errors import BadOptionError
from sdk.formats import MIME, format_from_name

#: The longest side a caller may ask to scale to (``max_side``); larger images are refused by
#: :class:`sdk.imaging.ImageLimits` anyway.
MAX_SIDE = 20_000
#: A style name or alias is at most this long (the longest built-in is 20).
MAX_NAME_CHARS = 100
#: A blend names at most this many styles (the 26-style network has 26).
MAX_BLEND = 64
#: Blend weights are normalised; this bounds what a caller can write.
MAX_WEIGHT = 1_000_000.0
#: ``scale`` (stroke size: the network runs at the photo's size divided by it) is from
#: MIN_SCALE to MAX_SCALE. The network's working size is also held to the image limits.
MIN_SCALE = 0.25
MAX_SCALE = 8.0

_INT_RE = re.compile(r"[0-9]{1,9}", re.ASCII)
_FLOAT_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?", re.ASCII)
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})

StyleChoice = str | dict[str, float]
if TYPE_CHECKING:
    from sdk.imaging import ImageInput
T = TypeVar("T")


def shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` clipped to about ``limit`` characters, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _text(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise BadOptionError("An option is not valid UTF-8 text.") from None
    return value


def parse_int(name: str, value: object, low: int = 1, high: int = MAX_SIDE) -> int:
    """An integer option from ``low`` to ``high``: an int (not a bool) or ASCII digits."""
    value = _text(value)
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not low <= number <= high:
        raise BadOptionError(f"{name} must be a whole number from {low} to {high}, not {shown(value)}.")
    return number


def parse_float(name: str, value: object, low: float = 0.0, high: float = 1.0) -> float:
    """A finite number option from ``low`` to ``high``: an int or float (not a bool) or decimal text."""
    value = _text(value)
    number: float | None = None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
            number = float(value.strip())
    except OverflowError:  # an int too large for a float
        number = None
    if number is None or not math.isfinite(number) or not low <= number <= high:
        raise BadOptionError(f"{name} must be a number from {low:g} to {high:g}, not {shown(value)}.")
    return number


def _not_text(name: str, value: object) -> object:
    # Python callers pass numbers; text is what the parsers above are for.
    if isinstance(value, (str, bytes, bytearray)):
        raise BadOptionError(f"{name} must be a number, not the text {shown(value)}.")
    return value


def check_number(name: str, value: object, low: float, high: float) -> float:
    """A number from Python code (not text) in a range."""
    return parse_float(name, _not_text(name, value), low, high)


def check_int(name: str, value: object, low: int, high: int) -> int:
    """A whole number from Python code (not text) in a range."""
    return parse_int(name, _not_text(name, value), low, high)


def check_blend(value: Mapping[Any, Any]) -> dict[str, float]:
    """A blend from Python code: names and numbers (weights as numbers, not text)."""
    for weight in value.values():
        _not_text("A blend weight", weight)
    return parse_blend(value)


def parse_flag(name: str, value: object) -> bool:
    """An on/off option: a bool, 0/1, or a word (true/false, yes/no, on/off)."""
    value = _text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    raise BadOptionError(f"{name} must be true or false, not {shown(value)}.")


def parse_name(value: object) -> str:
    """A style name or alias as a caller wrote it (stripped); what it names is the caller's lookup."""
    value = _text(value)
    if not isinstance(value, str):
        raise BadOptionError(f"A style name must be text, not {type(value).__name__}.")
    name = value.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise BadOptionError(
            f"A style name is 1 to {MAX_NAME_CHARS} printable characters, not {shown(value)}."
        )
    return name


def parse_blend(value: Mapping[Any, Any]) -> dict[str, float]:
    """A blend ``{name: weight}``: 1 to :data:`MAX_BLEND` names, finite weights >= 0."""
    if not value:
        raise BadOptionError("A style blend needs at least one style name and weight.")
    if len(value) > MAX_BLEND:
        raise BadOptionError(f"A style blend names at most {MAX_BLEND} styles, not {len(value)}.")
    blend: dict[str, float] = {}
    for key, weight in value.items():
        name = parse_name(key)
        blend[name] = parse_float(f"The weight of {shown(name)}", weight, 0.0, MAX_WEIGHT)
    return blend


def parse_style(value: object) -> StyleChoice:
    """A style as a name, or a blend: ``"a=0.7,b=0.3"``, a JSON object (text) or a mapping."""
    value = _text(value)
    if isinstance(value, Mapping):
        return parse_blend(value)
    if not isinstance(value, str):
        raise BadOptionError(f"A style is a name or a blend of names, not {type(value).__name__}.")
    text = value.strip()
    if text.startswith("{"):
        try:
            # NaN and Infinity are not JSON; Python's decoder takes them unless told not to.
            decoded = json.loads(text, parse_constant=_no_constant)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise BadOptionError(f"The style blend {shown(text)} is not a valid JSON object.") from exc
        if not isinstance(decoded, Mapping):
            raise BadOptionError(f"The style blend {shown(text)} is not a JSON object.")
        return parse_blend(decoded)
    if "=" in text:
        return parse_blend(_blend_pairs(text))
    return parse_name(text)


def _no_constant(word: str) -> object:
    raise json.JSONDecodeError(f"{word} is not a number", word, 0)


def _blend_pairs(text: str) -> dict[str, str]:
    parts = text.split(",")
    if len(parts) > MAX_BLEND:
        raise BadOptionError(f"A style blend names at most {MAX_BLEND} styles, not {len(parts)}.")
    pairs: dict[str, str] = {}
    for part in parts:
        name, sep, weight = part.partition("=")
        if not sep or not name.strip():
            raise BadOptionError(
                f"Cannot read the blend {shown(text)}: write it as 'name=weight,name=weight'."
            )
        pairs[name.strip()] = weight
    return pairs


def parse_format(value: object) -> str:
    """An output format: ``png``, ``jpeg``/``jpg`` or ``webp``, any case -> ``PNG``, ``JPEG``, ``WEBP``."""
    value = _text(value)
    if not isinstance(value, str) or len(value.strip()) > 8 or "/" in value or "." in value:
        raise BadOptionError(f"format must be one of {', '.join(MIME)}, not {shown(value)}.")
    return format_from_name(value.strip())


@dataclass(frozen=True)
class StyleRequest:
    """One stylize request besides its photo: the style, the options, the style image, the
    mask. Checked when made, so whoever receives one (engine, handler, client, web app) checks
    nothing again.

    ``scale`` sets the stroke size: the network paints the photo at its size divided by
    ``scale`` and the result is brought back to the photo's size, guided by the photo's own
    edges (:func:`sdk.imaging.guided_upsample`); 1 is the photo's own resolution. ``mask`` is
    an image (any mode or size, brought to the photo's size): white takes the style, black
    (or transparent) keeps the photo, or ``outside``'s style when one is named; grey blends.

    Made by :func:`parse_options` from what arrived as text or JSON, or directly in Python
    (numbers as numbers: text is the parsers' job). :meth:`to_fields` is its wire form, which
    :func:`parse_options` reads back: the one encoding of a request, both ways.
    """

    style: StyleChoice | None = None  # None: the server's only style, or "arbitrary" with a painting
    strength: float = 1.0
    preserve_color: bool = False
    max_side: int | None = None
    format: str = "PNG"
    style_image: ImageInput | None = None  # the arbitrary kind's painting (bytes over the wire)
    scale: float = 1.0
    mask: ImageInput | None = None  # an image part over the wire, like style_image
    outside: StyleChoice | None = None  # the style where the mask is black; needs a mask

    def __post_init__(self) -> None:
        if self.style is not None:
            object.__setattr__(self, "style", _check_choice("style", self.style))
        object.__setattr__(self, "strength", check_number("strength", self.strength, 0.0, 1.0))
        if not isinstance(self.preserve_color, bool):
            raise BadOptionError(f"preserve_color must be True or False, not {shown(self.preserve_color)}.")
        if self.max_side is not None:
            object.__setattr__(self, "max_side", check_int("max_side", self.max_side, 1, MAX_SIDE))
        object.__setattr__(self, "format", parse_format(self.format))
        object.__setattr__(self, "scale", check_number("scale", self.scale, MIN_SCALE, MAX_SCALE))
        if self.outside is not None:
            object.__setattr__(self, "outside", _check_choice("outside", self.outside))
            if self.mask is None:
                raise BadOptionError("outside= names the style where the mask is black; give a mask too.")

    def to_fields(self) -> dict[str, str]:
        """The request's options as text fields (a form, or ``X-Stylekit-*`` headers)."""
        fields = {
            "strength": repr(self.strength),
            "preserve_color": "true" if self.preserve_color else "false",
            "format": self.format,
        }
        if self.style is not None:
            fields["style"] = encode_style(self.style)
        if self.max_side is not None:
            fields["max_side"] = str(self.max_side)
        if self.scale != 1.0:
            fields["scale"] = repr(self.scale)
        if self.outside is not None:
            fields["outside"] = encode_style(self.outside)
        return fields


def _check_choice(what: str, value: object) -> StyleChoice:
    """A style from Python code: a non-empty name, or a blend with numeric weights."""
    if isinstance(value, str):
        if not value.strip():
            raise BadOptionError("A style name cannot be empty." if what == "style" else
                                 f"{what}= names a style; it cannot be empty.")  # fmt: skip
        return value
    if not isinstance(value, Mapping):
        raise BadOptionError(f"A style is a name or a blend of names, not {type(value).__name__}.")
    return check_blend(value)


#: The option fields every wire front end reads, by the same names.
OPTION_FIELDS = ("style", "strength", "preserve_color", "max_side", "format", "scale", "outside")
#: The image parts a request carries besides the photo, by the same names on every front end.
IMAGE_PARTS = ("style_image", "mask")


def parse_options(fields: Mapping[str, object], *, ignore: Iterable[str] = (),
                  style_image: bytes | None = None, mask: bytes | None = None) -> StyleRequest:  # fmt: skip
    """Options from named fields (form fields, a JSON object, headers): each parsed by its rule.

    A field that is absent, None or empty text takes its default; a name that is neither an
    option nor in ``ignore`` (the image fields) is refused, so a misspelt option never goes
    unnoticed.
    """
    given = {k: v for k, v in fields.items() if v is not None and not (isinstance(v, (str, bytes)) and not v)}
    unknown = sorted(str(k) for k in given if k not in OPTION_FIELDS and k not in set(ignore))
    if unknown:
        names = ", ".join(shown(k, 30) for k in unknown[:5])
        raise BadOptionError(f"Unknown option {names}; the options are {', '.join(OPTION_FIELDS)}.")
    def field(name: str, parse: Callable[[str, object], T], default: T) -> T:
        return parse(name, given[name]) if name in given else default

    return StyleRequest(
        style=parse_style(given["style"]) if "style" in given else None,
        strength=field("strength", parse_float, 1.0),
        preserve_color=field("preserve_color", parse_flag, False),
        max_side=field("max_side", parse_int, None),
        format=parse_format(given["format"]) if "format" in given else "PNG",
        style_image=style_image,
        scale=field("scale", lambda n, v: parse_float(n, v, MIN_SCALE, MAX_SCALE), 1.0),
        mask=mask,
        outside=parse_style(given["outside"]) if "outside" in given else None,
    )


def arg_type(parse: Callable[..., T], name: str, *bounds: Any) -> Callable[[str], T]:
    """An argparse ``type=`` that applies a parser of this module, so the CLI reads options as servers do."""

    def convert(text: str) -> T:
        try:
            return parse(name, text, *bounds)
        except BadOptionError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    convert.__name__ = name
    return convert


def unknown_style_message(style: str, index: Mapping[str, str], listed_by: str = "'stylekit styles'") -> str:
    """One sentence for a name that ``index`` (lowercased name or alias -> name) does not know.

    It depends on the name and the index alone, never on the file system, so it says the same
    whether or not a file of that name exists. ``listed_by`` says where the names are listed.
    """
    names_count = len(set(index.values()))
    if not names_count:
        return f"Unknown style {shown(style)}: no styles are installed."
    close = difflib.get_close_matches(style.strip().lower()[:200], list(index), n=5, cutoff=0.6)
    names = list(dict.fromkeys(index[c] for c in close))[:3]
    if names:
        hint = " or ".join(repr(n) for n in names)
        return f"Unknown style {shown(style)}. Did you mean {hint}? ({listed_by} lists them all.)"
    return f"Unknown style {shown(style)}; {listed_by} lists the {names_count} available styles."


def encode_style(style: StyleChoice) -> str:
    """The one wire form of a style: its name, or a blend as a JSON object (both read by parse_style)."""
    return style if isinstance(style, str) else json.dumps(style, allow_nan=False)


__all__ = [
    "IMAGE_PARTS",
    "MAX_BLEND",
    "MAX_NAME_CHARS",
    "MAX_SCALE",
    "MAX_SIDE",
    "MIN_SCALE",
    "OPTION_FIELDS",
    "StyleChoice",
    "StyleRequest",
    "arg_type",
    "check_blend",
    "check_int",
    "check_number",
    "encode_style",
    "parse_blend",
    "parse_flag",
    "parse_float",
    "parse_format",
    "parse_int",
    "parse_name",
    "parse_options",
    "parse_style",
    "shown",
    "unknown_style_message",
]
