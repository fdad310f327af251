"""Built-in style packages (package data), rebuilt by ``stylekit import-pretrained``."""

from pathlib import Path

BUILTIN_DIR = Path(__file__).resolve().parent
