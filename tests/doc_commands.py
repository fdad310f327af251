"""Every command README.md and docs/*.md show, and how a test runs it.

:func:`doc_blocks` reads them: each ```` ```bash ```` block of each page, one command per line
(continuation lines joined, comments dropped). :data:`COVERAGE` says, page by page, how each
command is covered:

- :class:`Run`: ``tests/test_installed.py`` runs it from the installed wheel, in an empty folder
  outside the checkout, in the order the page shows it. ``subs`` may change only what this
  machine lacks or shares (ports, the COCO folder, step counts: each must occur in the command),
  ``extra`` adds flags, ``before`` runs first, ``background`` starts a server and waits until
  that URL answers (stopped when the page is done).
- :class:`Checkout`: ``tests/test_docs_commands.py`` runs it in the checkout (the scripts a
  developer runs there), with the same kind of ``subs``.
- :class:`Elsewhere`: another test or CI runs it; ``evidence`` must be found in ``where``.
- :class:`NotHere`: it needs what no test machine has (Docker, a GPU, the internet); ``why``.

``tests/test_docs_commands.py`` fails when a page shows a command this table does not cover, or
the table covers one no page shows, so a doc example cannot go untested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")))
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_COMMENT = re.compile(r"\s+#\s.*$")


@dataclass(frozen=True)
class Run:
    subs: dict[str, str] = field(default_factory=dict)
    extra: str = ""
    before: str = ""
    background: str = ""  # a URL: the command is a server, started and waited for


@dataclass(frozen=True)
class Checkout:
    subs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Elsewhere:
    where: str  # a file of the checkout
    evidence: str  # text that file holds, showing it runs the command


@dataclass(frozen=True)
class NotHere:
    why: str


Cover = Run | Checkout | Elsewhere | NotHere


@dataclass(frozen=True)
class Block:
    page: str
    lang: str
    commands: tuple[str, ...]  # for bash, one per line; for python, the whole block as one


def doc_blocks() -> list[Block]:
    """Every page's bash blocks, in page order."""
    return [block for page in PAGES for block in _page_blocks(page) if block.lang == "bash"]


def _commands(body: str) -> tuple[str, ...]:
    commands, current = [], ""
    for line in body.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1].strip() + " "
            continue
        commands.append(_COMMENT.sub("", current + line.strip()).strip())
        current = ""
    return tuple(commands)


def shell_line(command: str, cover: Run | Checkout) -> str:
    """The line a runner executes for ``command``: the doc's text, changed only as ``cover`` says."""
    line = command
    for old, new in cover.subs.items():
        if old not in line:
            raise AssertionError(f"substitution {old!r} does not occur in {command!r}")
        line = line.replace(old, new)
    if isinstance(cover, Checkout):
        return line
    if cover.extra:
        line = f"{line} {cover.extra}"
    if cover.background:
        line = f'background "{cover.background}" {line}'  # double quotes: the URL holds a $PORT
    return f"{cover.before}\n{line}" if cover.before else line


# What this machine lacks, said once.
_PORTS = {"127.0.0.1:8080": "127.0.0.1:$TS_PORT"}
_SERVE = "--port $TS_PORT --worker-port $TS_WORKER_PORT --timeout 300"  # a shared, slow machine
_NO_COCO = {"/data/coco/train2014": "photos"}
# VGG-19 from STYLEKIT_VGG_WEIGHTS (a random-init file: no download here), a few small steps.
_FEW_STEPS = "--steps 2 --batch-size 2 --image-size 64 --width 0.25 --log-every 1"
_NO_DOCKER = NotHere("no Docker or Kubernetes here; tests/test_serving_deploy.py checks their files")
_NO_GPU = NotHere("no GPU on the test machines; the GPU path is checked on a lent device machine")
_NO_NET = NotHere("no internet here (package registries only): COCO, VGG weights, download.pytorch.org")
_WHEEL = Elsewhere("tests/test_installed.py", "[all]")  # the venv gets the wheel of this clone with [all]
# docs/video.md's clip: 12 frames of a 3 px/frame pan over photo.jpg, made with the installed PyAV.
_MAKE_CLIP = (
    "python -c \"import av, numpy as np, PIL.Image as I; "
    "p = np.asarray(I.open('photo.jpg').convert('RGB').resize((160, 64))); "
    "o = av.open('clip.mp4', 'w'); s = o.add_stream('libx264', rate=24); s.width, s.height = 96, 64; "
    "[o.mux(s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(p[:, 3 * i:3 * i + 96]), "
    "format='rgb24'))) for i in range(12)]; o.mux(s.encode()); o.close()\""
)
# docs/video.md's masks: mask.png (the clip's right half) and masks/ (it moving, one per frame).
_MAKE_MASKS = (
    "python -c \"import os, PIL.Image as I, PIL.ImageDraw as D; m = I.new('L', (96, 64)); "
    "D.Draw(m).rectangle((48, 0, 95, 63), fill=255); m.save('mask.png'); "
    "os.makedirs('masks', exist_ok=True); "
    "[m.transform(m.size, I.Transform.AFFINE, (1, 0, -2 * i, 0, 1, 0)).save(f'masks/frame{i + 1}.png') "
    "for i in range(12)]\""
)
# README's mask.png: the right half of photo.jpg's shape, white.
_MAKE_MASK = (
    "python -c \"import PIL.Image as I; w, h = I.open('photo.jpg').size; m = I.new('L', (w, h)); "
    "m.paste(255, (w // 2, 0, w, h)); m.save('mask.png')\""
)
_EXTRAS = Elsewhere("tests/test_extras.py", "def test_a_missing_extra_is_one_line_that_names_it(")
_TRAIN_WAVE = (
    "stylekit train --style-image wave.jpg --data photos --name wave --out runs/wave "
    f"--loss-network mobilenet {_FEW_STEPS} --no-install"
)

COVERAGE: dict[str, dict[str, Cover]] = {
    "README.md": {
        "./scripts/demo.sh": Checkout(),
        "./scripts/test.sh": Elsewhere(".ci/run", "exec ./scripts/test.sh"),
        "pip install .": _EXTRAS,
        "pip install '.[serve]'": _EXTRAS,
        "pip install '.[web]'": _EXTRAS,
        "pip install '.[train]'": _EXTRAS,
        "pip install '.[export]'": _EXTRAS,
        "pip install '.[video]'": _EXTRAS,
        "pip install '.[all]'": _WHEEL,
        "stylekit styles --json 'starry*'": Run(),
        "stylekit stylize photo.jpg -s starry-night -o out.png": Run(),
        'stylekit stylize photos/ -s "starry-night=0.7,navy-dots=0.3" --strength 0.8 -o out/': Run(),
        "stylekit stylize photo.jpg -s arbitrary --style-image painting.jpg --max-side 1024 --json": Run(),
        "stylekit stylize photo.jpg -s starry-night --scale 2 -o big-strokes.png": Run(),
        "stylekit stylize photo.jpg -s starry-night --mask mask.png --outside ink-and-yellow -o regions.png":
            Run(before=_MAKE_MASK),
        "python benchmarks/stroke_scale.py --figure-only --figure docs/scales.jpg":
            Checkout({"docs/": "$RUNS/"}),
        "stylekit train --style-image starry.jpg --data /data/coco/train2014 --name starry --out runs/starry":
            Run(_NO_COCO, _FEW_STEPS),
        "torchrun --nproc_per_node 4 -m training --style-image starry.jpg --data /data/coco/train2014 "
        "--name starry": Run({"--nproc_per_node 4": "--nproc_per_node 2", **_NO_COCO},
                             f"{_FEW_STEPS} --out runs/starry-ddp --no-install"),
        "stylekit train --extend multistyle26 --style-image wave.jpg --data photos/ --name wave-cin":
            Run(extra=_FEW_STEPS.replace(" --width 0.25", "")),
        "stylekit plugin new stylekit-starry --from runs/starry/starry.pt --license CC0-1.0": Run(),
        "pip install ./stylekit-starry": Run(),
        "stylekit archive --all -o model_archives/": Run(),
        "stylekit serve start": Run(extra=_SERVE),
        "stylekit stylize photo.jpg -s starry-night --server http://127.0.0.1:8080 -o out.png": Run(_PORTS),
        "stylekit serve stop": Run(),
    },
    "docs/DEVELOPING.md": {},
    "docs/imaging.md": {},
    "docs/offline_training.md": {
        "stylekit train --extend multistyle26 --style-image wave.jpg --data photos/ --name wave-cin "
        "--loss-network mobilenet --image-size 192 --batch-size 4 --lr 0.01 --steps 200":
            Run({"--image-size 192": "--image-size 64", "--steps 200": "--steps 2"}),
        "stylekit stylize photo.jpg --style wave-cin -o photo-wave.png": Run(),
        "stylekit eval --painting wave.jpg --photos photo.jpg --style wave-cin --sheet wave-eval.jpg": Run(),
        "stylekit train --extend multistyle26 --style-image wave.jpg --data photos/ --name wave-distilled "
        "--loss-network mobilenet --image-size 192 --lr 0.01 --steps 200 --distill-weight 2000 "
        "--eval-photos photo.jpg --checkpoint-every 50 --keep-best": Run(
            {"--image-size 192": "--image-size 64", "--steps 200": "--steps 2",
             "--checkpoint-every 50": "--checkpoint-every 1"}
        ),
        # How docs/contact_sheet.jpg was made: run in the checkout with 2 steps, into a temp folder.
        'for spec in "starry-night starry_night" "wave wave" "composition-vii composition_vii"; do':
            Checkout(),
        "set -- $spec": Checkout(),
        "OMP_NUM_THREADS=1 nice -n 10 stylekit -v train --style-image ../shared/data/styles/$2.jpg "
        "--data ../shared/data/photos --name $1 --out runs/$1 --loss-network mobilenet --width 0.25 "
        "--image-size 192 --batch-size 4 --lr 2e-3 --steps 2000 --checkpoint-every 500 --log-every 100 "
        "--no-progress --no-install &": Checkout({"../shared/data": "$DATA", "runs/": "$RUNS/",
                                                  "--image-size 192": "--image-size 64",
                                                  "--steps 2000": "--steps 2"}),
        "done; wait": Checkout(),
        "python scripts/contact_sheet.py --row ../shared/data/styles/starry_night.jpg "
        "runs/starry-night/starry-night.pt ../shared/data/content/chicago.jpg "
        "--row ../shared/data/styles/wave.jpg runs/wave/wave.pt ../shared/data/content/golden_gate.jpg "
        "--row ../shared/data/styles/composition_vii.jpg runs/composition-vii/composition-vii.pt "
        "../shared/data/content/stata.jpg --out docs/contact_sheet.jpg --side 320":
            Checkout({"../shared/data": "$DATA", "runs/": "$RUNS/", "docs/": "$RUNS/"}),
    },
    "docs/pretrained.md": {
        'pip install -e ".[dev]"': Elsewhere("scripts/bootstrap.sh", 'pipi -e ".[all,dev]"'),
        "stylekit import-pretrained": Elsewhere(
            "tests/test_pretrained.py", "def test_import_pretrained_cli_rebuilds_the_shipped_packages("
        ),
        "stylekit import-pretrained --out /tmp/styles --source /path/to/onnx/folder": Elsewhere(
            "tests/test_pretrained.py", 'stylekit_main(["import-pretrained", "--out", str(tmp_path)])'
        ),
        ".venv/bin/pytest tests/test_pretrained.py -q": Elsewhere(".ci/run", "exec ./scripts/test.sh"),
    },
    "docs/sdk.md": {
        'stylekit plugin new stylekit-my-styles --from runs/wave/wave.pt --license CC0-1.0 --description '
        '"Hokusai\'s wave, trained here"': Run(before=_TRAIN_WAVE),
        "pip install ./stylekit-my-styles": Run(),
        "stylekit styles 'wave*'": Run(),
        "stylekit stylize photo.jpg -s wave -o out.png": Run(),
    },
    "docs/serving.md": {
        "pip install -e '.[serve]'": _WHEEL,
        "stylekit archive --all -o model_archives/": Run(),
        "stylekit serve start": Run(extra=_SERVE),
        "stylekit serve status": Run(),
        "stylekit stylize photo.jpg -s starry-night --server http://127.0.0.1:8080 -o out.png": Run(_PORTS),
        "stylekit serve stop": Run(),
        # The HTTP API section: a server again, then the block as written (its address changed).
        'KEYS="${STYLEKIT_HOME:-$HOME/.stylekit}/serve/key_file.json"':
            Run(before=f"stylekit serve start {_SERVE}"),
        "KEY=$(python3 -c \"import json,sys;print(json.load(open(sys.argv[1]))['inference']['key'])\" "
        '"$KEYS")': Run(),
        'curl -sSf -H "Authorization: Bearer $KEY" -H "Content-Type: image/jpeg" -H "X-Stylekit-Style: '
        'starry-night" -H "X-Stylekit-Strength: 0.8" --data-binary @photo.jpg '
        "http://127.0.0.1:8080/predictions/multistyle26 -o out.png": Run(_PORTS),
        'curl -sSf -H "Authorization: Bearer $KEY" -F image=@photo.jpg -F style_image=@painting.jpg '
        "-F format=jpeg http://127.0.0.1:8080/predictions/arbitrary -o out.jpg": Run(_PORTS),
        'printf \'{"image": "%s", "style": {"starry-night": 0.7, "red-storm": 0.3}}\' '
        '"$(base64 -w0 photo.jpg)" > request.json': Run(),
        'curl -sSf -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" -d @request.json '
        "http://127.0.0.1:8080/predictions/multistyle26 -o blend.png": Run(_PORTS),
        'curl -sSf -H "Authorization: Bearer $KEY" -F image=@photo.jpg -F mask=@photo.jpg '
        "-F style=starry-night -F outside=red-storm -F scale=2 "
        "http://127.0.0.1:8080/predictions/multistyle26 -o regions.png": Run(_PORTS),
        "pip install torch --index-url https://download.pytorch.org/whl/cu121": _NO_NET,
        "pip install 'stylekit[serve]'": _WHEEL,
        "stylekit serve start --gpu --models all": _NO_GPU,
        "docker build -f deploy/Dockerfile.gpu -t stylekit-serve:gpu .": _NO_DOCKER,
        "docker run --init --gpus all --name stylekit -p 127.0.0.1:8080:8080 -p 127.0.0.1:8081:8081 "
        "-p 127.0.0.1:8082:8082 stylekit-serve:gpu": _NO_DOCKER,
        "docker exec stylekit cat /home/model-server/key_file.json": _NO_DOCKER,
        "docker build -f deploy/Dockerfile.gpu -t registry.example.com/stylekit-serve:0.1.0-gpu .":
            _NO_DOCKER,
        "docker push registry.example.com/stylekit-serve:0.1.0-gpu": _NO_DOCKER,
        "kubectl apply -f deploy/kserve/inferenceservice.yaml": _NO_DOCKER,
        "kubectl get inferenceservice stylekit": _NO_DOCKER,
    },
    "docs/speed.md": {
        "stylekit export multistyle26 --format all --out exported/": Run(),
        "stylekit export exported/multistyle26.json --format pt2 --photo photo.jpg": Run(),
        "stylekit compile": Run(),
        "stylekit compile starry-night --device cuda": _NO_GPU,
        "stylekit stylize photo.jpg -s starry-night --runner compiled -o out.png": Run(),
        "STYLEKIT_RUNNER=torchscript stylekit stylize photo.jpg -s starry-night -o out-ts.png": Run(),
        "stylekit compile --list": Run(),
    },
    "docs/training.md": {
        "wget http://images.cocodataset.org/zips/train2014.zip && unzip -q train2014.zip -d /data/coco":
            _NO_NET,
        "stylekit train --style-image starry_night.jpg --data /data/coco/train2014 --name starry --epochs 2 "
        "--batch-size 4 --image-size 256 --out runs/starry": Run(
            {**_NO_COCO, "--epochs 2 --batch-size 4 --image-size 256": _FEW_STEPS}
        ),
        "stylekit stylize photo.jpg --style starry -o photo-starry.png": Run(),
        "tensorboard --logdir runs/starry/tensorboard": Run(extra="--port $TB_PORT",
                                                            background="http://127.0.0.1:$TB_PORT/"),
        "stylekit export runs/starry/checkpoints/last.pt --name starry-early --format pt2": Run(),
        "torchrun --nproc_per_node 4 -m training --style-image starry_night.jpg --data /data/coco/train2014 "
        "--name starry --epochs 2 --batch-size 4 --out runs/starry": Run(
            {"--nproc_per_node 4": "--nproc_per_node 2", **_NO_COCO, "--epochs 2 --batch-size 4": _FEW_STEPS,
             "runs/starry": "runs/starry-ddp"}, "--no-install"
        ),
        "torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 -m training "
        "...same flags...": NotHere("two machines with GPUs"),
        "python -c \"import torchvision; torchvision.models.vgg19(weights='IMAGENET1K_V1')\"": _NO_NET,
        "scp ~/.cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth offline:/models/": _NO_NET,
        "export STYLEKIT_VGG_WEIGHTS=/models/vgg19-dcbb9e9d.pth": Run({"/models/vgg19-dcbb9e9d.pth": "$VGG"}),
    },
    "docs/video.md": {
        "stylekit video clip.mp4 -s fiery-brushstrokes -o clip-styled.mp4 --max-side 320":
            Run(before=_MAKE_CLIP),
        "stylekit video clip.mp4 -s starry-night -o out.mp4 --device cuda": _NO_GPU,
        "stylekit video clip.mp4 -s fiery-brushstrokes -o big-strokes.mp4 --scale 2 --mask mask.png "
        "--outside starry-night": Run(before=_MAKE_MASKS),
        "stylekit video clip.mp4 -s fiery-brushstrokes -o masked.mp4 --mask masks/": Run(),
    },
    "docs/web.md": {
        "stylekit web": Run(extra="--port $WEB_PORT", background="http://127.0.0.1:$WEB_PORT/"),
        "stylekit web --port 8080 --device cuda": _NO_GPU,
        "stylekit serve start && stylekit web --server http://127.0.0.1:8080": Run(
            {"stylekit serve start": f"stylekit serve start {_SERVE}",
             "&& stylekit web": '&& background "http://127.0.0.1:$WEB2_PORT/" stylekit web', **_PORTS},
            extra="--port $WEB2_PORT", before="stylekit archive --all -o model_archives/",
        ),
        "curl -sS -F image=@photo.jpg -F style=pastel-sunset -F max_side=1024 -OJ "
        "http://127.0.0.1:8000/api/stylize": Run({"127.0.0.1:8000": "127.0.0.1:$WEB_PORT"}),
        "curl -sSf -F image=@photo.jpg -F mask=@photo.jpg -F style=pastel-sunset -F outside=ink-and-yellow "
        "-F scale=2 -o regions.png http://127.0.0.1:8000/api/stylize":
            Run({"127.0.0.1:8000": "127.0.0.1:$WEB_PORT"}),
    },
}

# Python blocks the installed journeys run too (the client, from the installed wheel), by page
# and first line.
PYTHON_RUN = {("docs/serving.md", "import sdk\n\nclient = sdk.StyleClient()")}


def page_script(page: str, kind: type[Run] | type[Checkout]) -> str:
    """The page's bash blocks (and listed Python blocks), in order, as one script: each command of
    ``kind`` as :func:`shell_line` makes it, every other one left out."""
    covers = COVERAGE[page]
    parts: list[str] = []
    for block in _page_blocks(page):
        if block.lang == "python":
            if kind is Run:
                parts.append(f"python - <<'STYLEKIT_DOC_PYTHON'\n{block.commands[0]}STYLEKIT_DOC_PYTHON")
            continue
        parts += [shell_line(c, cover) for c in block.commands if isinstance(cover := covers[c], kind)]
    return "\n".join(parts) + "\n"


def _page_blocks(page: str) -> list[Block]:
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        lang, body = match.group(1), match.group(2)
        if lang == "bash":
            blocks.append(Block(page, lang, _commands(body)))
        elif lang == "python" and any(page == p and body.startswith(first) for p, first in PYTHON_RUN):
            blocks.append(Block(page, lang, (body,)))
    return blocks


def pages_with(kind: type[Run] | type[Checkout]) -> list[str]:
    return [page for page, covers in COVERAGE.items() if any(isinstance(c, kind) for c in covers.values())]
