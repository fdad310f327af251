"""The style registry: names, aliases, discovery, duplicates, paths, the register_style forms."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from plugin_fixture.stylekit_fixture_plugin import models

from sdk.errors import BadOptionError, DuplicateStyleError, StylePackageError, UnknownStyleError
from sdk.package import StylePackage, read_package
from sdk.registry import StyleRegistry, StyleSpec, default_registry, register_style
from sdk.settings import user_styles_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of real tiny packages (tints: multistyle, negative, mean-color: arbitrary)."""
    root = tmp_path_factory.mktemp("built")
    models.write_tints(root)
    models.write_negative(root)
    models.write_mean_color(root)
    return root


@pytest.fixture()
def builtin_dir(built: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "builtin"
    shutil.copytree(built, folder)
    return folder


def registry(builtin_dir: Path, user_dir: Path | None = None) -> StyleRegistry:
    # A group no distribution declares: these tests are about built-ins and the user folder.
    return StyleRegistry(
        discover=True,
        builtin_dir=builtin_dir,
        user_dir=user_dir or builtin_dir.parent / "no-user-styles",
        entry_point_group="stylekit.styles.none",
    )


def copy_package(pkg_dir: Path, stem: str, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for suffix in (".pt", ".json"):
        shutil.copy(pkg_dir / f"{stem}{suffix}", dest / f"{stem}{suffix}")


def test_builtins_one_spec_per_substyle_with_index_and_aliases(builtin_dir: Path) -> None:
    reg = registry(builtin_dir)
    names = [s.name for s in reg.list()]
    assert names == ["mean-color", "negative", "tint-red", "tint-green", "tint-blue"]
    green = reg.get("tint-green")
    assert green.kind == "multistyle"
    assert green.index == 1
    assert green.aliases == ("1",)
    assert green.metadata["package"] == "tints"
    assert green.metadata["license"] == "CC0-1.0"
    assert green.origin == "builtin"
    pkg = green.package()
    assert isinstance(pkg, StylePackage) and pkg.manifest.name == "tints"
    assert reg.get("mean-color").kind == "arbitrary"
    assert reg.errors == ()


def test_lookup_by_alias_is_case_insensitive(builtin_dir: Path) -> None:
    reg = registry(builtin_dir)
    assert reg.get("2").name == "tint-blue"
    assert reg.get("TINT-Blue").name == "tint-blue"
    assert reg.get(" negative ").name == "negative"
    assert "NEGATIVE" in reg and "nothing" not in reg


def test_unknown_style_suggests_close_matches(builtin_dir: Path) -> None:
    reg = registry(builtin_dir)
    with pytest.raises(UnknownStyleError, match="Did you mean 'tint-red'") as info:
        reg.get("tint-rde")
    assert info.value.http_status == 404
    with pytest.raises(UnknownStyleError, match="'stylekit styles' lists the 5 available styles"):
        reg.get("zzzzzz")


def test_unknown_style_on_an_empty_registry() -> None:
    with pytest.raises(UnknownStyleError, match="no styles are installed"):
        StyleRegistry().get("anything")


def test_list_with_glob_on_names_and_aliases(builtin_dir: Path) -> None:
    reg = registry(builtin_dir)
    assert [s.name for s in reg.list("tint-*")] == ["tint-red", "tint-green", "tint-blue"]
    assert [s.name for s in reg.list("*NEG*")] == ["negative"]
    assert [s.name for s in reg.list("0")] == ["tint-red"]
    assert reg.list("nope*") == []


def test_user_folder_is_discovered_and_rescanned(builtin_dir: Path, built: Path, tmp_path: Path) -> None:
    user = tmp_path / "home" / "styles"
    models.write_negative(user, "my-negative")
    reg = registry(builtin_dir, user)
    spec = reg.get("my-negative")
    assert spec.origin == f"user:{user / 'my-negative.json'}"
    # Installed after discovery ran (training in a long-lived process): found on lookup.
    models.write_negative(user, "later")
    assert reg.get("later").origin.startswith("user:")


def test_list_follows_the_user_folder(builtin_dir: Path, tmp_path: Path) -> None:
    """A long-lived process (the web app, a notebook) lists what the folder holds now."""
    user = tmp_path / "home" / "styles"
    reg = registry(builtin_dir, user)  # the folder does not exist yet
    assert len(reg.list()) == 5

    models.write_negative(user, "added")  # e.g. `stylekit train` finishing in another process
    models.write_tints(user, "my-tints", (("tint-cyan", (0.0, 1.0, 1.0)), ("tint-pink", (1.0, 0.5, 1.0))))
    listed = {s.name: s for s in reg.list()}
    assert listed["added"].origin == f"user:{user / 'added.json'}"
    assert [s.name for s in reg.list("tint-[cp]*")] == ["tint-cyan", "tint-pink"]

    for suffix in (".json", ".pt"):  # removed: gone from the list, and an unknown name again
        (user / f"my-tints{suffix}").unlink()
    assert [s.name for s in reg.list()][5:] == ["added"]
    with pytest.raises(UnknownStyleError, match="'tint-pink'"):
        reg.get("tint-pink")


def test_lookup_of_a_removed_user_style_is_unknown(builtin_dir: Path, tmp_path: Path) -> None:
    user = tmp_path / "styles"
    models.write_negative(user, "short-lived")
    reg = registry(builtin_dir, user)
    assert reg.get("short-lived").kind == "feedforward"
    (user / "short-lived.pt").unlink()  # without its model file a package is not a style
    with pytest.raises(UnknownStyleError):
        reg.get("short-lived")
    assert "short-lived" not in {s.name for s in reg.list()}


def test_rewritten_user_package_is_read_again(builtin_dir: Path, tmp_path: Path) -> None:
    user = tmp_path / "styles"
    models.write_negative(user, "mine")
    reg = registry(builtin_dir, user)
    assert reg.get("mine").kind == "feedforward"
    models.write_mean_color(user, "mine")  # exported again under the same name, another kind
    assert reg.get("mine").kind == "arbitrary"
    assert [s.kind for s in reg.list() if s.name == "mine"] == ["arbitrary"]
    assert reg.errors == ()


def test_broken_user_package_is_retried_once_complete(builtin_dir: Path, built: Path, tmp_path: Path) -> None:
    user = tmp_path / "styles"
    user.mkdir()
    # Copied in manifest first (what `cp x.json x.pt` does): the model file is missing at first.
    manifest = (built / "negative.json").read_text(encoding="utf-8").replace('"negative', '"copied')
    (user / "copied.json").write_text(manifest, encoding="utf-8")
    reg = registry(builtin_dir, user)
    assert "copied" not in {s.name for s in reg.list()}
    assert any("copied.pt" in e.message for e in reg.errors)
    shutil.copy(built / "negative.pt", user / "copied.pt")
    assert reg.get("copied").origin == f"user:{user / 'copied.json'}"
    assert reg.errors == ()  # fixed: its old problem is no longer reported


def test_a_removed_broken_user_package_is_no_longer_reported(builtin_dir: Path, tmp_path: Path) -> None:
    user = tmp_path / "styles"
    user.mkdir()
    (user / "junk.json").write_text("{not json", encoding="utf-8")
    reg = registry(builtin_dir, user)
    reg.list()
    (error,) = reg.errors
    assert isinstance(error, StylePackageError) and "junk.json" in error.message
    reg.list()
    assert [e.message for e in reg.errors] == [error.message]  # retried, reported once
    (user / "junk.json").unlink()
    reg.list()
    assert reg.errors == ()


def test_an_unchanged_user_folder_is_not_read_again(builtin_dir: Path, tmp_path: Path) -> None:
    """Listing costs one stat of the folder while its mtime is unchanged (and old enough to
    trust): a file slipped in with the folder's mtime put back is not seen until it changes."""
    user = tmp_path / "styles"
    models.write_negative(user, "first")
    old = user.stat().st_mtime_ns - 60 * 10**9
    os.utime(user, ns=(old, old))
    reg = registry(builtin_dir, user)
    assert "first" in {s.name for s in reg.list()}
    models.write_negative(user, "sneaky")
    os.utime(user, ns=(old, old))
    assert "sneaky" not in {s.name for s in reg.list()}
    os.utime(user)  # any real change to the folder's entries moves its mtime
    assert "sneaky" in {s.name for s in reg.list()}


def test_default_user_folder_follows_stylekit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLEKIT_HOME", str(tmp_path / "sk"))
    assert user_styles_dir() == tmp_path / "sk" / "styles"
    monkeypatch.delenv("STYLEKIT_HOME")
    assert user_styles_dir() == Path.home() / ".stylekit" / "styles"


def test_duplicate_in_discovery_is_reported_and_skipped(
    builtin_dir: Path, built: Path, tmp_path: Path
) -> None:
    user = tmp_path / "styles"
    copy_package(built, "negative", user)
    reg = registry(builtin_dir, user)
    assert reg.get("negative").origin == "builtin"  # the first claim keeps the name
    assert len(reg.list()) == 5
    (error,) = reg.errors
    assert isinstance(error, DuplicateStyleError)
    assert "'negative'" in error.message and "builtin" in error.message
    assert str(user / "negative.json") in error.message


def test_alias_clash_in_discovery_drops_only_the_alias(builtin_dir: Path, tmp_path: Path) -> None:
    user = tmp_path / "styles"
    models.write_tints(user, "more-tints", (("tint-cyan", (0.0, 1.0, 1.0)),))  # alias "0" is taken
    reg = registry(builtin_dir, user)
    assert reg.get("tint-cyan").aliases == ()
    assert reg.get("0").name == "tint-red"
    (error,) = reg.errors
    assert "Alias '0' of style 'tint-cyan'" in error.message and "'tint-red'" in error.message


def test_explicit_duplicate_raises_naming_both_origins(builtin_dir: Path, built: Path) -> None:
    reg = registry(builtin_dir)
    with pytest.raises(DuplicateStyleError, match=r"'negative' from registered:.*clashes.*builtin"):
        register_style(built / "negative.pt", registry=reg)
    spec = StyleSpec("other", "feedforward", lambda: read_package(built / "negative.json"), aliases=("1",))
    with pytest.raises(DuplicateStyleError, match=r"Alias '1' of style 'other'.*'tint-green'"):
        reg.register(spec)
    assert "other" not in reg


def test_missing_model_file_is_reported_by_name(builtin_dir: Path) -> None:
    (builtin_dir / "negative.pt").unlink()
    reg = registry(builtin_dir)
    assert "negative" not in reg
    (error,) = reg.errors
    assert isinstance(error, StylePackageError)
    assert str(builtin_dir / "negative.pt") in error.message
    assert reg.get("tint-red").name == "tint-red"  # the rest still loads


def test_bad_manifest_is_reported_and_skipped(builtin_dir: Path) -> None:
    (builtin_dir / "broken.json").write_text("{not json", encoding="utf-8")
    reg = registry(builtin_dir)
    assert len(reg.list()) == 5
    (error,) = reg.errors
    assert str(builtin_dir / "broken.json") in error.message


def test_package_path_resolves_without_registration(built: Path) -> None:
    reg = StyleRegistry()
    for given in (built / "negative.pt", str(built / "negative.json")):
        spec = reg.get(given)
        assert spec.name == "negative" and spec.kind == "feedforward"
        assert spec.origin == f"path:{built / 'negative.pt'}"
    assert reg.list() == []
    with pytest.raises(StylePackageError, match=r"nowhere/x\.pt does not exist"):
        reg.get("nowhere/x.pt")
    with pytest.raises(BadOptionError, match="multistyle network with 3 styles"):
        reg.get(built / "tints.pt")


def test_path_to_package_without_model_file(built: Path, tmp_path: Path) -> None:
    shutil.copy(built / "negative.json", tmp_path / "negative.json")
    with pytest.raises(StylePackageError, match=re.escape(str(tmp_path / "negative.pt"))):
        StyleRegistry().get(tmp_path / "negative.json")


def test_register_style_call_and_decorator_forms(built: Path) -> None:
    reg = StyleRegistry()
    (neg,) = register_style(str(built / "negative.pt"), registry=reg)
    assert neg.origin == f"registered:{built / 'negative.pt'}"
    subs = register_style(read_package(built / "tints.json"), registry=reg)
    assert [s.name for s in subs] == ["tint-red", "tint-green", "tint-blue"]
    spec = StyleSpec("mc", "arbitrary", lambda: read_package(built / "mean-color.json"))
    assert register_style(spec, registry=reg) is spec

    calls: list[int] = []

    @register_style(name="lazy-negative", description="built on first use", registry=reg)
    def lazy_negative() -> Path:
        calls.append(1)
        return built / "negative.pt"

    @register_style(registry=reg)
    def plain_name() -> StylePackage:
        return read_package(built / "negative.json")

    assert calls == []  # registering never calls the loader
    lazy = reg.get("lazy-negative")
    assert lazy.description == "built on first use"
    assert lazy.origin.endswith("lazy_negative")
    assert lazy.package().model_path == built / "negative.pt"
    assert calls == [1]
    assert reg.get("plain-name").package().manifest.name == "negative"
    assert lazy_negative() == built / "negative.pt"  # the decorator hands the function back


def test_register_all_is_all_or_nothing(built: Path) -> None:
    reg = StyleRegistry()
    register_style(built / "negative.pt", registry=reg)
    ok = StyleSpec("fresh", "feedforward", lambda: read_package(built / "negative.json"))
    clash = StyleSpec("negative", "feedforward", lambda: read_package(built / "negative.json"))
    with pytest.raises(DuplicateStyleError):
        reg.register_all([ok, clash])
    assert "fresh" not in reg


def test_loader_kind_mismatch_and_failures_are_style_package_errors(built: Path) -> None:
    wrong = StyleSpec("wrong", "arbitrary", lambda: read_package(built / "negative.json"))
    with pytest.raises(StylePackageError, match=r"registered as arbitrary but its package .* is feedforward"):
        wrong.package()

    def fails() -> StylePackage:
        raise OSError("disk on fire")

    with pytest.raises(StylePackageError, match=r"'bad' .* loading its package failed: disk on fire"):
        StyleSpec("bad", "feedforward", fails).package()


@pytest.mark.parametrize("name", ["Upper", "has space", "dot.ted", "", "-lead", "a/b"])
def test_invalid_names_are_rejected(name: str, built: Path) -> None:
    with pytest.raises(BadOptionError, match="Invalid style name"):
        StyleSpec(name, "feedforward", lambda: read_package(built / "negative.json"))


NAMES = ["Upper", "has space", "dot.ted", "", "-lead", "a/b", "x" * 101, "snake_case", "ok-1"]


@pytest.mark.parametrize("name", NAMES)
def test_training_and_the_registry_share_one_name_rule(name: str, built: Path) -> None:
    from training.config import TrainConfig

    def accepted(make: Callable[[], object]) -> bool:
        try:
            make()
            return True
        except BadOptionError:
            return False

    package = built / "negative.json"
    by_registry = accepted(lambda: StyleSpec(name, "feedforward", lambda: read_package(package)))
    by_training = accepted(lambda: TrainConfig(name=name, data=built, style_image=built / "x.jpg"))
    assert by_registry == by_training == (name in ("snake_case", "ok-1"))


def test_spec_is_frozen_hashable_and_normalised(built: Path) -> None:
    meta = {"license": "MIT"}
    spec = StyleSpec("s", "feedforward", lambda: read_package(built / "negative.json"), metadata=meta)
    meta["license"] = "changed"
    assert spec.metadata["license"] == "MIT"
    assert hash(spec) == hash(spec)
    with pytest.raises(AttributeError):
        spec.name = "t"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.metadata["license"] = "x"  # type: ignore[index]


def test_concurrent_first_use_discovers_once(builtin_dir: Path) -> None:
    reg = registry(builtin_dir)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        results.append(reg.get("tint-blue") if i % 2 else len(reg.list()))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    specs = [r for r in results if isinstance(r, StyleSpec)]
    assert len(results) == 8 and len({id(s) for s in specs}) == 1
    assert [r for r in results if not isinstance(r, StyleSpec)] == [5, 5, 5, 5]
    assert reg.errors == ()  # a second discovery would have reported every name as a duplicate


def test_default_registry_has_the_builtin_styles() -> None:
    reg = default_registry()
    assert reg is default_registry()
    multistyle = [s for s in reg.list() if s.origin == "builtin" and s.kind == "multistyle"]
    assert len(multistyle) == 26
    assert sorted(int(s.metadata["index"]) for s in multistyle) == list(range(26))
    for spec in multistyle:
        assert str(spec.index) in spec.aliases
        assert spec.metadata["license"]
        assert reg.get(str(spec.index)) is spec
    arbitrary = reg.get("arbitrary")
    assert arbitrary.kind == "arbitrary" and arbitrary.origin == "builtin"
    manifest = json.loads(Path(multistyle[0].metadata["path"]).with_suffix(".json").read_text())
    assert manifest["kind"] == "multistyle"
