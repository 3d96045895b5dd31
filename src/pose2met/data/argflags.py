"""Name the command-line flag behind an ``OSError`` of a data command (``--output o/x.h5: ...``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def path_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[tuple[str, Path]]:
    """``(option, value)`` of every path option given; options with ``choices`` or a non-string type
    are not paths."""
    found = []
    for action in parser._actions:  # argparse keeps no public list of actions
        value = getattr(args, action.dest, None)
        is_path = action.type in (None, str, Path, output_file) and action.choices is None
        if action.option_strings and is_path and isinstance(value, (str, os.PathLike)):
            found.append((action.option_strings[-1], Path(value)))
    return found


def flag_for_path(
    parser: argparse.ArgumentParser, args: argparse.Namespace, filename: object
) -> tuple[str, Path] | None:
    """``(option, value)`` of the path option behind ``filename``, the most specific match first: the
    option's path itself or the atomic writer's temp file beside it; a folder on the way to an
    option's path (the nearest); a file under an option's folder (the deepest). None when no path
    option matches; options with ``choices`` or a non-string type are not paths."""
    if not isinstance(filename, (str, bytes, os.PathLike)):
        return None
    failed = Path(os.fsdecode(filename)).absolute()
    best: tuple[tuple[int, int], tuple[str, Path]] | None = None
    for flag, path in path_options(parser, args):
        full = path.absolute()
        temp_file = failed.name.startswith((f".{full.name}.", f".{full.stem}.")) and ".tmp" in failed.name
        if failed == full or (failed.parent == full.parent and temp_file):
            return flag, path
        if failed in full.parents:  # a folder on the way to the option's path (mkdir): the nearest
            rank = (3, -len(full.parts))
        elif full in failed.parents:  # under the option's folder: the deepest such folder
            rank = (2, len(full.parts))
        else:
            continue
        if best is None or rank > best[0]:
            best = rank, (flag, path)
    return None if best is None else best[1]


def describe_os_error(err: OSError, parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """A one-line message naming the option (and its value) an ``OSError`` comes from, when one is found."""
    found = flag_for_path(parser, args, err.filename)
    if found is None:
        return str(err)
    flag, value = found
    failed = Path(os.fsdecode(err.filename))
    if failed.absolute() in value.absolute().parents and failed.is_file():
        return f"{flag} {value}: {failed} is a file, not a folder"
    reason = err.strerror or str(err)
    return f"{flag} {value}: {reason}" + ("" if failed.absolute() == value.absolute() else f" ({failed})")


def output_file(text: str) -> Path:
    """argparse ``type`` of ``--output FILE.h5``: a file path, not a folder (``.``, ``dir/``)."""
    if not text or text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise argparse.ArgumentTypeError(
            f"{text!r} names a folder; expected a file path such as data/name.h5"
        )
    return Path(text)


def output_problem(output: Path, parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """Why ``--output`` cannot be written, checked before any input is read: a folder, a location that
    cannot be created, or one of the command's own input files (``--overwrite`` would replace it)."""
    from pose2met.atomic import unwritable_reason  # noqa: PLC0415 - keeps this module import-light

    if output.is_dir():
        return f"--output {output}: is a folder; expected a file path such as {output / 'name.h5'}"
    reason = unwritable_reason(output)
    if reason:
        return f"--output {output}: cannot create it ({reason})"
    if output.exists():
        for flag, path in path_options(parser, args):
            if flag != "--output" and path.is_file() and os.path.samefile(path, output):
                return f"--output {output} is the input {flag} {path}; write the converted file elsewhere"
    return None
