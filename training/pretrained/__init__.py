"""Built-in styles from pretrained weights: our own PyTorch modules for the ONNX originals.

- :mod:`training.pretrained.multistyle`: the 26-style conditional-instance-norm network
  (Dumoulin et al. 2017), :class:`MultiStyleNet`.
- :mod:`training.pretrained.mobilenet`: the MobileNetV2 trunk of the arbitrary-style predictor,
  also usable as an eager feature extractor (:func:`load_trunk`).
- :mod:`training.pretrained.arbitrary`: the arbitrary-style pair (Ghiasi et al. 2017),
  :class:`ArbitraryStylizer`.
- :mod:`training.pretrained.layers`: reflect-padded conv, per-image affine instance norm,
  nearest 2x upsampling (shared by both generators).
- :mod:`training.pretrained.onnx_import`: reads the ONNX initializers (needs ``onnx``; only when
  importing, never at run time).
- :mod:`training.pretrained.catalog`: names and descriptions of the 26 styles, attribution, NOTICE.
- :mod:`training.commands.import_pretrained`: ``stylekit import-pretrained``, which writes the built-in
  style packages into ``sdk/styles``.
- :mod:`training.pretrained.parity`: measures the shipped packages against onnxruntime.

See ``docs/pretrained.md``.
"""
