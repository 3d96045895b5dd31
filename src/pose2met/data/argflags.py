"""Name the command-line flag behind an ``OSError`` of a data command (``--output o/x.h5: ...``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def flag_for_path(
    parser: argparse.ArgumentParser, args: argparse.Namespace, filename: object
) -> tuple[str, Path] | None:
    """``(option, value)`` of the path option behind ``filename``: the option's path itself, a file
    under it, a folder above it, or the temp file written beside it; None when no option matches."""
    if not isinstance(filename, (str, bytes, os.PathLike)):
        return None
    failed = Path(os.fsdecode(filename)).absolute()
    near: tuple[str, Path] | None = None
    for action in parser._actions:  # argparse keeps no public list of actions
        value = getattr(args, action.dest, None)
        if not action.option_strings or not isinstance(value, (str, os.PathLike)):
            continue
        path = Path(value)
        full = path.absolute()
        if failed == full or full in failed.parents:
            return action.option_strings[-1], path
        beside = failed.parent == full.parent and failed.name.startswith(f".{full.name}")
        if near is None and (beside or failed in full.parents):
            near = action.option_strings[-1], path
    return near


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
